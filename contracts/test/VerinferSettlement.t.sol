// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IVerinfer} from "../src/interfaces/IVerinfer.sol";
import {VerinferExtension} from "../src/VerinferExtension.sol";
import {VM, Vm} from "./Vm.sol";
import {VerinferTestBase} from "./utils/VerinferTestBase.sol";

/// @notice Settlement outcomes (Validated, Aborted, Errored), the fee split, slashing, kicking,
///         exits, the credits settlement makes instead of transfers (returned stakes, refunds, slash
///         rewards) and the distances reported in `TaskSettled`.
contract VerinferSettlementTest is VerinferTestBase {
    uint16 internal constant NR = type(uint16).max; // NO_RESULT

    uint256 internal taskId;
    address[3] internal nodes;
    uint64 internal h;

    function setUp() public override {
        super.setUp();
        _makeNodes(0, 3, H100);
        _startTask();
    }

    function _startTask() internal {
        taskId = _createImageTask();
        _assertStatus(taskId, IVerinfer.TaskStatus.Committing);
        nodes = _nodesOf(taskId);
        h = _trueHashes(taskId, 1)[0];
    }

    /// @dev Parameters apply to tasks created after they take effect: puts `p` in force, then runs
    ///      the test's task on three fresh nodes (the setUp task stays open on its own nodes).
    function _restartUnder(IVerinfer.Params memory p) internal {
        _setParams(p);
        _makeNodes(20, 3, H100);
        _startTask();
    }

    /// @dev Schedules `p`, starts the test's task (under version 1) on three fresh nodes shortly
    ///      before `p` takes effect, then moves to the time and block from which `p` is in force
    ///      (the next call activates it).
    function _startThenActivate(IVerinfer.Params memory p) internal {
        uint40 at = _scheduleParams(p);
        VM.warp(at - 100);
        _makeNodes(20, 3, H100);
        _startTask();
        VM.assertEq(_ext().getTask(taskId).paramsVersion, 1, "task runs under version 1");
        VM.warp(at);
        _nextBlock();
    }

    function _cut(uint96 fee) internal pure returns (uint96) {
        return uint96((uint256(fee) * PROTOCOL_FEE_BPS) / BPS);
    }

    function _slash(uint96 stake) internal pure returns (uint96) {
        return _slashOf(stake);
    }

    /// @dev The share of `slashed` paid to the nodes that were right (or the creator).
    function _slashReward(uint256 slashed) internal pure returns (uint256) {
        return (slashed * SLASH_REWARD_BPS) / BPS;
    }

    function _u16(uint16 a, uint16 b, uint16 c) internal pure returns (uint16[] memory d) {
        d = new uint16[](3);
        (d[0], d[1], d[2]) = (a, b, c);
    }

    /// @dev Commits all three results, reveals the first two, and leaves the last reveal to the
    ///      caller (so that event expectations can target the settling call).
    function _prepareLastReveal(uint64[][3] memory results) internal {
        for (uint256 i; i < 3; ++i) {
            _commitImage(taskId, nodes[i], results[i]);
        }
        _revealImage(taskId, nodes[0], results[0]);
        _revealImage(taskId, nodes[1], results[1]);
    }

    function _assertBalanceAccounting() internal view {
        _assertTokenAccounting();
    }

    // ================================================================ Validated

    function test_Validated_AllAgree_FeeSplitAndEvents() public {
        // Distances 3, 10 (= threshold) and 7: all within the threshold.
        uint64[][3] memory r = [_hashes(h), _hashes(_flipLow(h, 3)), _hashes(_flipLow(h, 10))];
        _prepareLastReveal(r);
        uint96 cut = _cut(FEE);
        uint96 reward = (FEE - cut) / 3;
        uint96 toTreasury = FEE - 3 * reward;
        VM.assertEq(toTreasury, cut + 2, "two wei of dust");
        bytes32 salt = _salt(nodes[2], taskId);

        VM.expectEmit(address(verinfer));
        emit IVerinfer.TaskSettled(taskId, IVerinfer.TaskStatus.Validated, 7, _u16(3, 10, 7), THRESHOLD, reward);
        for (uint256 i; i < 3; ++i) {
            VM.expectEmit(address(verinfer));
            emit IVerinfer.NodeRewarded(nodes[i], taskId, reward);
        }
        VM.expectEmit(address(verinfer));
        emit IVerinfer.TreasuryAccrued(taskId, toTreasury);
        VM.prank(nodes[2]);
        verinfer.revealImage(taskId, r[2], salt);

        _assertStatus(taskId, IVerinfer.TaskStatus.Validated);
        for (uint256 i; i < 3; ++i) {
            VM.assertEq(_stakeOf(nodes[i]), MIN_STAKE + reward, "reward paid into stake");
            _assertNodeState(nodes[i], IVerinfer.NodeState.Available);
            VM.assertEq(_ext().getNode(nodes[i]).taskId, 0);
        }
        VM.assertEq(verinfer.treasuryBalance(), toTreasury);
        VM.assertEq(_ext().availableNodes(bytes32(0), 0), 3, "nodes back in the pool");
        _assertBalanceAccounting();
    }

    function test_Validated_TwoAgree_ThirdSlashedAndKicked() public {
        // Node 2 is threshold + 1 away from both others.
        uint64[][3] memory r = [_hashes(h), _hashes(h), _hashes(_flipLow(h, THRESHOLD + 1))];
        _prepareLastReveal(r);
        uint96 cut = _cut(FEE);
        uint96 reward = (FEE - cut) / 2;
        uint96 slashed = _slash(MIN_STAKE);
        uint256 slashReward = _slashReward(slashed);
        uint256 toTreasury = FEE - 2 * reward + slashed - slashReward;
        bytes32 salt = _salt(nodes[2], taskId);

        VM.expectEmit(address(verinfer));
        emit IVerinfer.TaskSettled(taskId, IVerinfer.TaskStatus.Validated, 3, _u16(0, 11, 11), THRESHOLD, reward);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.NodeRewarded(nodes[0], taskId, reward);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.NodeRewarded(nodes[1], taskId, reward);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.NodeSlashed(nodes[2], taskId, IVerinfer.SlashReason.Disagreed, slashed);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.NodeKicked(nodes[2], taskId, MIN_STAKE - slashed);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.BalanceCredited(nodes[2], taskId, IVerinfer.CreditReason.StakeReturned, MIN_STAKE - slashed);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.BalanceCredited(nodes[0], taskId, IVerinfer.CreditReason.SlashReward, slashReward / 2);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.BalanceCredited(nodes[1], taskId, IVerinfer.CreditReason.SlashReward, slashReward / 2);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.TreasuryAccrued(taskId, toTreasury);
        VM.prank(nodes[2]);
        verinfer.revealImage(taskId, r[2], salt);

        VM.assertEq(_stakeOf(nodes[0]), MIN_STAKE + reward);
        VM.assertEq(_stakeOf(nodes[1]), MIN_STAKE + reward);
        VM.assertEq(verinfer.claimable(nodes[0]), slashReward / 2, "half the slash reward");
        VM.assertEq(verinfer.claimable(nodes[1]), slashReward / 2, "half the slash reward");
        IVerinfer.NodeInfo memory kicked = _ext().getNode(nodes[2]);
        VM.assertEq(uint256(kicked.state), uint256(IVerinfer.NodeState.Kicked));
        VM.assertEq(kicked.stake, 0);
        VM.assertEq(token.balanceOf(nodes[2]), 0, "settlement transfers nothing");
        VM.assertEq(verinfer.claimable(nodes[2]), MIN_STAKE - slashed, "kicked node is credited the rest");
        VM.assertEq(verinfer.treasuryBalance(), toTreasury);
        VM.assertEq(_ext().availableNodes(bytes32(0), 0), 2, "kicked node is out of the pools");
        _assertBalanceAccounting();

        // Each withdraws its own credit.
        VM.assertEq(_withdraw(nodes[2]), MIN_STAKE - slashed);
        VM.assertEq(token.balanceOf(nodes[2]), MIN_STAKE - slashed, "kicked node gets the rest of its stake");
        VM.assertEq(_withdraw(nodes[0]), slashReward / 2);
        VM.assertEq(token.balanceOf(nodes[0]), slashReward / 2);
        _assertBalanceAccounting();
    }

    function test_Validated_SlashShareApplies() public {
        IVerinfer.Params memory p = defaultParams();
        p.slashShareBps = 2500;
        _restartUnder(p);
        uint64[][3] memory r = [_hashes(h), _hashes(~h), _hashes(h)];
        _runImageTask(taskId, r);
        _assertStatus(taskId, IVerinfer.TaskStatus.Validated);
        VM.assertEq(verinfer.claimable(nodes[1]), MIN_STAKE - MIN_STAKE / 4, "25% slashed");
        uint256 each = _slashReward(MIN_STAKE / 4) / 2;
        VM.assertEq(verinfer.claimable(nodes[0]), each, "slash reward to the agreeing pair");
        VM.assertEq(verinfer.claimable(nodes[2]), each, "slash reward to the agreeing pair");
        _assertBalanceAccounting();
    }

    function test_Validated_WholeStakeSlashedAtFullShare() public {
        IVerinfer.Params memory p = defaultParams();
        p.slashShareBps = BPS;
        _restartUnder(p);
        _runImageTask(taskId, [_hashes(h), _hashes(~h), _hashes(h)]);
        VM.assertEq(verinfer.claimable(nodes[1]), 0, "nothing left to return");
        _assertNodeState(nodes[1], IVerinfer.NodeState.Kicked);
        VM.prank(nodes[1]);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.NothingToWithdraw.selector, nodes[1]));
        verinfer.withdraw();
        _assertBalanceAccounting();
    }

    /// @dev With no slash reward the whole slash goes to the treasury; with a full one, all of it
    ///      to the agreeing pair.
    function test_Validated_SlashRewardShareApplies() public {
        IVerinfer.Params memory p = defaultParams();
        p.slashRewardBps = 0;
        _restartUnder(p);
        _runImageTask(taskId, [_hashes(h), _hashes(~h), _hashes(h)]);
        VM.assertEq(verinfer.claimable(nodes[0]), 0);
        VM.assertEq(verinfer.treasuryBalance(), FEE - 2 * _rewardPerNode(FEE, 2) + _slash(MIN_STAKE));

        p.slashRewardBps = BPS;
        _setParams(p);
        _makeNodes(30, 3, H100);
        _startTask();
        uint256 treasuryBefore = verinfer.treasuryBalance();
        uint96 slashed = _slash(_stakeOf(nodes[2])); // it may have earned a reward in the first task
        uint256 credit0 = verinfer.claimable(nodes[0]);
        uint256 credit1 = verinfer.claimable(nodes[1]);
        _runImageTask(taskId, [_hashes(h), _hashes(h), _hashes(~h)]);
        VM.assertEq(verinfer.claimable(nodes[0]) - credit0, slashed / 2);
        VM.assertEq(verinfer.claimable(nodes[1]) - credit1, slashed / 2);
        VM.assertEq(
            verinfer.treasuryBalance() - treasuryBefore,
            FEE - 2 * _rewardPerNode(FEE, 2) + slashed % 2,
            "fee share (and the slash reward's odd wei) only"
        );
        _assertBalanceAccounting();
    }

    function test_Threshold_IsInclusive() public {
        _runImageTask(taskId, [_hashes(h), _hashes(_flipLow(h, THRESHOLD)), _hashes(~h)]);
        _assertStatus(taskId, IVerinfer.TaskStatus.Validated);
        _assertNodeState(nodes[0], IVerinfer.NodeState.Available);
        _assertNodeState(nodes[1], IVerinfer.NodeState.Available);
        _assertNodeState(nodes[2], IVerinfer.NodeState.Kicked);
    }

    function test_Validated_MinorityInvalidReportIsSlashed() public {
        uint64[] memory r = _hashes(h);
        _commitInvalid(taskId, nodes[0]);
        _commitImage(taskId, nodes[1], r);
        _commitImage(taskId, nodes[2], r);
        _reportInvalid(taskId, nodes[0]);
        _revealImage(taskId, nodes[1], r);
        bytes32 salt = _salt(nodes[2], taskId);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.TaskSettled(
            taskId, IVerinfer.TaskStatus.Validated, 6, _u16(NR, NR, 0), THRESHOLD, (FEE - _cut(FEE)) / 2
        );
        VM.expectEmit(address(verinfer));
        emit IVerinfer.NodeSlashed(nodes[0], taskId, IVerinfer.SlashReason.Disagreed, _slash(MIN_STAKE));
        VM.prank(nodes[2]);
        verinfer.revealImage(taskId, r, salt);
    }

    function test_Validated_ZeroProtocolFee() public {
        IVerinfer.Params memory p = defaultParams();
        p.protocolFeeBps = 0;
        _restartUnder(p);
        _runHonestImageTask(taskId);
        uint96 reward = FEE / 3;
        VM.assertEq(_stakeOf(nodes[0]), MIN_STAKE + reward);
        VM.assertEq(verinfer.treasuryBalance(), FEE - 3 * reward, "only the dust");
    }

    function test_Validated_FullProtocolFeePaysNoReward() public {
        IVerinfer.Params memory p = defaultParams();
        p.protocolFeeBps = BPS;
        _restartUnder(p);
        VM.recordLogs();
        _runHonestImageTask(taskId);
        Vm.Log[] memory logs = VM.getRecordedLogs();
        for (uint256 i; i < logs.length; ++i) {
            VM.assertTrue(logs[i].topics[0] != IVerinfer.NodeRewarded.selector, "no zero rewards emitted");
        }
        VM.assertEq(_settledReward(logs), 0);
        VM.assertEq(_stakeOf(nodes[0]), MIN_STAKE);
        VM.assertEq(verinfer.treasuryBalance(), FEE);
    }

    /// @dev With the minimum fees at zero, a 100 wei fee is split: 5 protocol fee, 95 / 3 = 31 each,
    ///      2 wei of dust to the treasury.
    function test_Validated_DustGoesToTreasury() public {
        IVerinfer.Params memory p = defaultParams();
        p.minTaskFee = 0;
        p.minImageFee = 0;
        _setParams(p);
        _makeNodes(10, 3, RTX4090);
        uint256 small = _createImageTask(1, 0, 100);
        _assertStatus(small, IVerinfer.TaskStatus.Committing);
        _runHonestImageTask(small);
        VM.assertEq(verinfer.treasuryBalance(), 7);
        VM.assertEq(_stakeOf(_nodesOf(small)[0]), MIN_STAKE + 31);
        _assertBalanceAccounting();
    }

    function _settledReward(Vm.Log[] memory logs) internal view returns (uint96) {
        Settled memory s = _findSettled(logs, taskId);
        VM.assertTrue(s.found, "TaskSettled emitted");
        return s.rewardPerNode;
    }

    // ================================================================ Aborted

    function test_Aborted_NoTwoAgree_RefundsAndSlashesNobody() public {
        uint64[][3] memory r = [_hashes(h), _hashes(_flipLow(h, 20)), _hashes(_flipLow(h, 40))];
        _prepareLastReveal(r);
        uint256 before = token.balanceOf(creator);
        bytes32 salt = _salt(nodes[2], taskId);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.TaskSettled(taskId, IVerinfer.TaskStatus.Aborted, 0, _u16(20, 40, 20), THRESHOLD, 0);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.BalanceCredited(creator, taskId, IVerinfer.CreditReason.FeeRefunded, FEE);
        VM.prank(nodes[2]);
        verinfer.revealImage(taskId, r[2], salt);
        _assertStatus(taskId, IVerinfer.TaskStatus.Aborted);
        VM.assertEq(verinfer.claimable(creator), FEE, "fee refunded (credited)");
        VM.assertEq(token.balanceOf(creator), before, "nothing transferred");
        for (uint256 i; i < 3; ++i) {
            VM.assertEq(_stakeOf(nodes[i]), MIN_STAKE, "nobody slashed");
            _assertNodeState(nodes[i], IVerinfer.NodeState.Available);
        }
        VM.assertEq(verinfer.treasuryBalance(), 0);
        _assertBalanceAccounting();
        VM.assertEq(_withdraw(creator), FEE);
        VM.assertEq(token.balanceOf(creator), before + FEE, "refund withdrawn");
        _assertBalanceAccounting();
    }

    /// @dev Nobody agreed, so the slash reward goes to the creator with its refund.
    function test_Aborted_OnlyOneRevealed_MissingSlashed() public {
        uint64[] memory r = _hashes(h);
        _commitAllImage(taskId, r);
        _revealImage(taskId, nodes[1], r);
        VM.warp(_ext().getTask(taskId).revealDeadline + 1);
        uint256 before = token.balanceOf(creator);
        VM.recordLogs();
        verinfer.settle(taskId);
        Settled memory s = _findSettled(VM.getRecordedLogs(), taskId);
        VM.assertEq(uint256(s.outcome), uint256(IVerinfer.TaskStatus.Aborted));
        _assertDistances(s.distances, _u16(NR, NR, NR));
        uint256 slashed = 2 * uint256(_slash(MIN_STAKE));
        VM.assertEq(token.balanceOf(creator), before);
        VM.assertEq(verinfer.claimable(creator), FEE + _slashReward(slashed), "refund and slash reward");
        VM.assertEq(verinfer.claimable(nodes[1]), 0, "a lone result earns nothing");
        VM.assertEq(verinfer.claimable(nodes[0]), MIN_STAKE - _slash(MIN_STAKE));
        _assertNodeState(nodes[0], IVerinfer.NodeState.Kicked);
        _assertNodeState(nodes[1], IVerinfer.NodeState.Available);
        _assertNodeState(nodes[2], IVerinfer.NodeState.Kicked);
        VM.assertEq(verinfer.treasuryBalance(), slashed - _slashReward(slashed));
        _assertBalanceAccounting();
    }

    // ================================================================ Errored

    function test_Errored_MajorityInvalidArgs_Refunds() public {
        uint64[] memory r = _hashes(h);
        _commitInvalid(taskId, nodes[0]);
        _commitImage(taskId, nodes[1], r);
        _commitInvalid(taskId, nodes[2]);
        _reportInvalid(taskId, nodes[0]);
        _revealImage(taskId, nodes[1], r);
        uint256 before = token.balanceOf(creator);
        bytes32 salt = _salt(nodes[2], taskId);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.InvalidArgsReported(taskId, nodes[2]);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.TaskSettled(taskId, IVerinfer.TaskStatus.Errored, 0, _u16(NR, NR, NR), THRESHOLD, 0);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.BalanceCredited(creator, taskId, IVerinfer.CreditReason.FeeRefunded, FEE);
        VM.prank(nodes[2]);
        verinfer.reportInvalidArgs(taskId, salt);
        _assertStatus(taskId, IVerinfer.TaskStatus.Errored);
        VM.assertEq(token.balanceOf(creator), before);
        VM.assertEq(verinfer.claimable(creator), FEE, "fee refunded (credited)");
        VM.assertEq(verinfer.treasuryBalance(), 0);
        for (uint256 i; i < 3; ++i) {
            VM.assertEq(_stakeOf(nodes[i]), MIN_STAKE, "nobody slashed");
            _assertNodeState(nodes[i], IVerinfer.NodeState.Available);
        }
        _assertBalanceAccounting();
    }

    function test_Errored_TextInvalidArgsThroughRevealText() public {
        _makeNodes(10, 3, RTX4090);
        uint256 text = _createTextTask(RTX4090, 0, FEE);
        bytes32 invalid = verinfer.INVALID_ARGS();
        _runTextTask(text, [invalid, _trueDigest(text), invalid]);
        _assertStatus(text, IVerinfer.TaskStatus.Errored);
        IVerinfer.TaskInfo memory t = _ext().getTask(text);
        VM.assertEq(t.invalidMask, 5);
    }

    function test_Errored_MissingNodeStillSlashed() public {
        _commitInvalid(taskId, nodes[0]);
        _commitInvalid(taskId, nodes[1]);
        VM.warp(_ext().getTask(taskId).commitDeadline + 1);
        _reportInvalid(taskId, nodes[0]);
        _reportInvalid(taskId, nodes[1]); // all committed nodes revealed: settles now
        _assertStatus(taskId, IVerinfer.TaskStatus.Errored);
        _assertNodeState(nodes[2], IVerinfer.NodeState.Kicked);
        _assertNodeState(nodes[0], IVerinfer.NodeState.Available);
        // Nobody agreed: the creator gets its fee and the slash reward.
        VM.assertEq(verinfer.claimable(creator), FEE + _slashReward(_slash(MIN_STAKE)));
        VM.assertEq(verinfer.claimable(nodes[2]), MIN_STAKE - _slash(MIN_STAKE));
        _assertBalanceAccounting();
    }

    // ================================================================ distances

    /// @dev Pair-major: (0,1) for every image, then (0,2), then (1,2); NO_RESULT where a side has
    ///      no result (node 1 never reveals).
    function test_Distances_PairMajorWithNoResult() public {
        _makeNodes(10, 3, RTX4090);
        uint256 t3 = _createImageTask(3, 0, FEE);
        address[3] memory n = _nodesOf(t3);
        uint64[] memory a = _hashes(1, 2, 3);
        uint64[] memory b = _hashes(1, 2, 3);
        uint64[] memory c = _hashes(1 ^ 0xff, 2 ^ 0x1, 3 ^ 0x3f);
        _commitImage(t3, n[0], a);
        _commitImage(t3, n[1], b);
        _commitImage(t3, n[2], c);
        _revealImage(t3, n[0], a);
        _revealImage(t3, n[2], c);
        VM.warp(_ext().getTask(t3).revealDeadline + 1);
        VM.recordLogs();
        verinfer.settle(t3);
        Settled memory s = _findSettled(VM.getRecordedLogs(), t3);
        uint16[] memory expected = new uint16[](9);
        (expected[0], expected[1], expected[2]) = (NR, NR, NR);
        (expected[3], expected[4], expected[5]) = (8, 1, 6);
        (expected[6], expected[7], expected[8]) = (NR, NR, NR);
        _assertDistances(s.distances, expected);
        VM.assertEq(uint256(s.outcome), uint256(IVerinfer.TaskStatus.Validated), "0 and 2 agree (8 <= 10)");
        VM.assertEq(s.agreeingMask, 5);
        VM.assertEq(s.threshold, THRESHOLD);
    }

    function test_Distances_AllPairsMultiImage() public {
        _makeNodes(10, 3, RTX4090);
        uint256 t2 = _createImageTask(2, 0, FEE);
        uint64[] memory a = new uint64[](2);
        uint64[] memory b = new uint64[](2);
        uint64[] memory c = new uint64[](2);
        (a[0], a[1]) = (0, type(uint64).max);
        (b[0], b[1]) = (0x3, type(uint64).max ^ 0x1);
        (c[0], c[1]) = (type(uint64).max, 0);
        VM.recordLogs();
        _runImageTask(t2, [a, b, c]);
        Settled memory s = _findSettled(VM.getRecordedLogs(), t2);
        uint16[] memory expected = new uint16[](6);
        (expected[0], expected[1]) = (2, 1); // (0,1) image 0, image 1
        (expected[2], expected[3]) = (64, 64); // (0,2)
        (expected[4], expected[5]) = (62, 63); // (1,2)
        _assertDistances(s.distances, expected);
        VM.assertEq(s.agreeingMask, 3);
    }

    /// @dev Image results agree only if every image is within the threshold.
    function test_Distances_OneImageOverThresholdDisagrees() public {
        _makeNodes(10, 3, RTX4090);
        uint256 t2 = _createImageTask(2, 0, FEE);
        uint64[] memory a = new uint64[](2);
        uint64[] memory b = new uint64[](2);
        (a[0], a[1]) = (7, 7);
        (b[0], b[1]) = (7, _flipLow(7, THRESHOLD + 1));
        _runImageTask(t2, [a, b, b]);
        address[3] memory n = _nodesOf(t2);
        _assertNodeState(n[0], IVerinfer.NodeState.Kicked);
        _assertNodeState(n[1], IVerinfer.NodeState.Available);
    }

    function test_Distances_Text() public {
        _makeNodes(10, 3, RTX4090);
        uint256 text = _createTextTask(RTX4090, 0, FEE);
        bytes32 d = _trueDigest(text);
        bytes32 off = d ^ bytes32(uint256(0x7) << 200);
        VM.recordLogs();
        _runTextTask(text, [d, d, off]);
        Settled memory s = _findSettled(VM.getRecordedLogs(), text);
        _assertDistances(s.distances, _u16(0, 3, 3));
        VM.assertEq(s.agreeingMask, 3);
        VM.assertEq(uint256(s.outcome), uint256(IVerinfer.TaskStatus.Validated));
        // Text must match exactly: a digest one bit off is slashed, whatever the image threshold.
        _assertNodeState(_nodesOf(text)[2], IVerinfer.NodeState.Kicked);
    }

    // ================================================================ exits at settlement

    /// @dev The three minimum-stake nodes of a task fall below a minimum raised while it runs (reward
    ///      included) and leave when the task ends, their stake credited. The task itself keeps its
    ///      version; the minimum a node must keep is the one in force.
    function test_BelowMinStake_NodeExitsAtSettlement() public {
        IVerinfer.Params memory p = defaultParams();
        p.minStake = 2 * MIN_STAKE;
        _startThenActivate(p);
        uint96 reward = (FEE - _cut(FEE)) / 3;
        uint64[] memory r = _hashes(h);
        _commitAllImage(taskId, r);
        _revealImage(taskId, nodes[0], r);
        _revealImage(taskId, nodes[1], r);
        bytes32 salt = _salt(nodes[2], taskId);
        VM.assertEq(_ext().paramsVersion(), 2, "the higher minimum is in force");
        for (uint256 i; i < 3; ++i) {
            VM.expectEmit(address(verinfer));
            emit IVerinfer.NodeExited(nodes[i], IVerinfer.ExitReason.BelowMinStake, MIN_STAKE + reward);
            VM.expectEmit(address(verinfer));
            emit IVerinfer.BalanceCredited(nodes[i], taskId, IVerinfer.CreditReason.StakeReturned, MIN_STAKE + reward);
        }
        VM.prank(nodes[2]);
        verinfer.revealImage(taskId, r, salt);
        _assertStatus(taskId, IVerinfer.TaskStatus.Validated);
        for (uint256 i; i < 3; ++i) {
            _assertNodeState(nodes[i], IVerinfer.NodeState.None);
            VM.assertEq(verinfer.claimable(nodes[i]), MIN_STAKE + reward, "stake and reward credited");
            VM.assertEq(_withdraw(nodes[i]), MIN_STAKE + reward);
        }
        VM.assertEq(_ext().availableNodes(bytes32(0), 0), 0);
        _assertBalanceAccounting();
    }

    function test_BelowMinStake_NodeWithEnoughStakeStays() public {
        IVerinfer.Params memory p = defaultParams();
        p.minStake = 2 * MIN_STAKE;
        _startThenActivate(p);
        address node = nodes[0];
        token.mint(node, MIN_STAKE);
        VM.prank(node);
        verinfer.addStake(MIN_STAKE);
        _runHonestImageTask(taskId);
        _assertNodeState(node, IVerinfer.NodeState.Available);
        _assertNodeState(nodes[1], IVerinfer.NodeState.None);
    }

    function test_LeavingNode_SlashedWhenItDisagrees() public {
        VM.prank(nodes[1]);
        verinfer.leave();
        _runImageTask(taskId, [_hashes(h), _hashes(~h), _hashes(h)]);
        _assertNodeState(nodes[1], IVerinfer.NodeState.Kicked);
        VM.assertEq(verinfer.claimable(nodes[1]), MIN_STAKE - _slash(MIN_STAKE), "slash applies to a leaving node");
        VM.assertEq(_withdraw(nodes[1]), MIN_STAKE - _slash(MIN_STAKE));
        _assertBalanceAccounting();
    }

    function test_KickedNode_CannotComeBack() public {
        _runImageTask(taskId, [_hashes(h), _hashes(~h), _hashes(h)]);
        address kicked = nodes[1];
        _fund(kicked, MIN_STAKE);
        VM.startPrank(kicked);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.NodeIsKicked.selector, kicked));
        verinfer.join(H100, 0, MIN_STAKE);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.NodeIsKicked.selector, kicked));
        verinfer.addStake(1);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.NotLeavable.selector, kicked, IVerinfer.NodeState.Kicked));
        verinfer.leave();
        VM.stopPrank();
    }
}
