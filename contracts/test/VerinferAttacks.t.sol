// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IVerinfer} from "../src/interfaces/IVerinfer.sol";
import {VerinferExtension} from "../src/VerinferExtension.sol";
import {VM} from "./Vm.sol";
import {VerinferTestBase} from "./utils/VerinferTestBase.sol";

/// @notice One test per attack on the protocol: what the attacker tries and why it fails.
contract VerinferAttacksTest is VerinferTestBase {
    uint256 internal taskId;
    address[3] internal nodes;
    uint64[] internal result;

    function setUp() public override {
        super.setUp();
        _makeNodes(0, 3, H100);
        taskId = _createImageTask();
        nodes = _nodesOf(taskId);
        result = _trueHashes(taskId, 1);
    }

    /// @dev A lazy node copies an honest node's commitment and, once the honest node reveals,
    ///      replays its result and salt. The commitment binds the committing node's address, so
    ///      the reveal does not match; the copier is slashed for the missed reveal.
    function test_Attack_ReplayedCommitmentCannotBeRevealed() public {
        (address honest, address copier) = (nodes[0], nodes[1]);
        bytes32 salt = _salt(honest, taskId);
        bytes32 honestCommitment = _imageCommitment(taskId, honest, result, salt);
        VM.prank(honest);
        verinfer.commit(taskId, honestCommitment);
        VM.prank(copier);
        verinfer.commit(taskId, honestCommitment); // accepted: commitments are opaque
        _commitImage(taskId, nodes[2], result);

        _revealImage(taskId, honest, result);
        VM.prank(copier);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.CommitmentMismatch.selector, taskId, copier));
        verinfer.revealImage(taskId, result, salt);

        _revealImage(taskId, nodes[2], result);
        VM.warp(_ext().getTask(taskId).revealDeadline + 1);
        verinfer.settle(taskId);
        _assertStatus(taskId, IVerinfer.TaskStatus.Validated);
        _assertNodeState(copier, IVerinfer.NodeState.Kicked);
        VM.assertEq(verinfer.claimable(copier), MIN_STAKE - MIN_STAKE * SLASH_BPS / BPS);
        VM.assertGt(verinfer.claimable(honest), 0, "the honest node shares the copier's slash");
    }

    /// @dev A node that skipped the commit cannot reveal (and so cannot copy revealed results).
    function test_Attack_RevealWithoutCommit() public {
        _commitImage(taskId, nodes[0], result);
        _commitImage(taskId, nodes[1], result);
        VM.warp(_ext().getTask(taskId).commitDeadline + 1);
        _revealImage(taskId, nodes[0], result);
        bytes32 salt = _salt(nodes[2], taskId);
        VM.prank(nodes[2]);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.NotCommitted.selector, taskId, nodes[2]));
        verinfer.revealImage(taskId, result, salt);
    }

    /// @dev Seeing the others' reveals, a node tries to reveal something other than it committed.
    function test_Attack_RevealDiffersFromCommitment() public {
        uint64[] memory garbage = _hashes(~result[0]);
        _commitImage(taskId, nodes[0], result);
        _commitImage(taskId, nodes[1], result);
        _commitImage(taskId, nodes[2], garbage);
        _revealImage(taskId, nodes[0], result);
        bytes32 salt = _salt(nodes[2], taskId);
        VM.prank(nodes[2]);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.CommitmentMismatch.selector, taskId, nodes[2]));
        verinfer.revealImage(taskId, result, salt);
        // Nor with another salt.
        VM.prank(nodes[2]);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.CommitmentMismatch.selector, taskId, nodes[2]));
        verinfer.revealImage(taskId, garbage, bytes32(uint256(salt) ^ 1));
    }

    /// @dev Registered nodes outside the task, and unregistered addresses, cannot take part.
    function test_Attack_NonSelectedCommit() public {
        address outsider = _nodeAddr(50);
        _join(outsider, H100, MIN_STAKE);
        VM.prank(outsider);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.NotSelected.selector, taskId, outsider));
        verinfer.commit(taskId, keccak256("x"));
        VM.prank(stranger);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.NotSelected.selector, taskId, stranger));
        verinfer.commit(taskId, keccak256("x"));
    }

    function test_Attack_DoubleCommit() public {
        _commitImage(taskId, nodes[0], result);
        VM.prank(nodes[0]);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.AlreadyCommitted.selector, taskId, nodes[0]));
        verinfer.commit(taskId, keccak256("second thoughts"));
    }

    function test_Attack_DoubleReveal() public {
        _commitAllImage(taskId, result);
        _revealImage(taskId, nodes[0], result);
        bytes32 salt = _salt(nodes[0], taskId);
        VM.prank(nodes[0]);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.AlreadyRevealed.selector, taskId, nodes[0]));
        verinfer.revealImage(taskId, result, salt);
    }

    /// @dev Settling early would slash nodes that still have time to act.
    function test_Attack_SettleBeforeDeadline() public {
        VM.prank(stranger);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.SettleTooEarly.selector, taskId));
        verinfer.settle(taskId);
        _commitAllImage(taskId, result);
        _revealImage(taskId, nodes[0], result);
        VM.warp(_ext().getTask(taskId).revealDeadline);
        VM.prank(stranger);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.SettleTooEarly.selector, taskId));
        verinfer.settle(taskId);
    }

    /// @dev A node declares a GPU model it does not have. On a text task of that model its output
    ///      differs from the honest pair's: it is slashed and kicked, the honest pair is paid (and
    ///      shares the slash reward).
    function test_Attack_FalseGpuModelDisagreesOnText() public {
        address honestA = _nodeAddr(10);
        address honestB = _nodeAddr(11);
        address liar = _nodeAddr(12); // really an RTX 4090
        _join(honestA, A100, MIN_STAKE);
        _join(honestB, A100, MIN_STAKE);
        _join(liar, A100, MIN_STAKE);
        uint256 text = _createTextTask("nvidia a100 80gb pcie", 0, FEE);
        address[3] memory n = _nodesOf(text);
        bytes32 a100Output = _trueDigest(text);
        bytes32 rtxOutput = keccak256("different numerics on another GPU");
        bytes32[3] memory digests;
        for (uint256 i; i < 3; ++i) {
            digests[i] = n[i] == liar ? rtxOutput : a100Output;
        }
        _runTextTask(text, digests);

        _assertStatus(text, IVerinfer.TaskStatus.Validated);
        uint96 reward = (FEE - FEE * PROTOCOL_FEE_BPS / BPS) / 2;
        VM.assertEq(_stakeOf(honestA), MIN_STAKE + reward, "honest node paid");
        VM.assertEq(_stakeOf(honestB), MIN_STAKE + reward, "honest node paid");
        _assertNodeState(liar, IVerinfer.NodeState.Kicked);
        uint96 slashed = MIN_STAKE * SLASH_BPS / BPS;
        VM.assertEq(verinfer.claimable(liar), MIN_STAKE - slashed, "liar slashed");
        uint256 share = (uint256(slashed) * SLASH_REWARD_BPS) / BPS / 2;
        VM.assertEq(verinfer.claimable(honestA), share, "honest node shares the slash");
        VM.assertEq(verinfer.claimable(honestB), share, "honest node shares the slash");
    }

    /// @dev Committing and then withholding the reveal (e.g. after seeing it would lose) costs stake.
    function test_Attack_CommitThenWithholdReveal() public {
        _commitAllImage(taskId, result);
        _revealImage(taskId, nodes[0], result);
        _revealImage(taskId, nodes[2], result);
        VM.warp(_ext().getTask(taskId).revealDeadline + 1);
        uint96 slashed = MIN_STAKE * SLASH_BPS / BPS;
        VM.expectEmit(address(verinfer));
        emit IVerinfer.NodeSlashed(nodes[1], taskId, IVerinfer.SlashReason.MissedReveal, slashed);
        verinfer.settle(taskId);
        _assertNodeState(nodes[1], IVerinfer.NodeState.Kicked);
    }

    /// @dev A node in a task cannot pull its stake out to escape a slash: leave only marks it
    ///      Leaving, nothing is transferred until settlement, and the slash still applies.
    function test_Attack_WithdrawStakeWhileBusy() public {
        address cheat = nodes[1];
        uint256 contractBalance = token.balanceOf(address(verinfer));
        VM.prank(cheat);
        verinfer.leave();
        _assertNodeState(cheat, IVerinfer.NodeState.Leaving);
        VM.assertEq(token.balanceOf(cheat), 0, "nothing paid out");
        VM.assertEq(token.balanceOf(address(verinfer)), contractBalance);
        VM.prank(cheat);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.NotLeavable.selector, cheat, IVerinfer.NodeState.Leaving));
        verinfer.leave();

        VM.prank(cheat);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.NothingToWithdraw.selector, cheat));
        verinfer.withdraw();

        _runImageTask(taskId, [result, _hashes(~result[0]), result]);
        _assertNodeState(cheat, IVerinfer.NodeState.Kicked);
        VM.assertEq(token.balanceOf(cheat), 0, "settlement transfers nothing");
        VM.assertEq(verinfer.claimable(cheat), MIN_STAKE - MIN_STAKE * SLASH_BPS / BPS, "slashed though leaving");
        VM.assertEq(_withdraw(cheat), MIN_STAKE - MIN_STAKE * SLASH_BPS / BPS);
        VM.assertEq(token.balanceOf(cheat), MIN_STAKE - MIN_STAKE * SLASH_BPS / BPS);
    }

    /// @dev Nobody can move another account's credit: `withdraw` pays the caller only, and a caller
    ///      with nothing credited gets nothing.
    function test_Attack_WithdrawSomebodyElsesCredit() public {
        _runImageTask(taskId, [result, _hashes(~result[0]), result]);
        address kicked = nodes[1];
        uint256 credit = verinfer.claimable(kicked);
        VM.assertGt(credit, 0);
        VM.prank(stranger);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.NothingToWithdraw.selector, stranger));
        verinfer.withdraw();
        VM.prank(treasury);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.NothingToWithdraw.selector, treasury));
        verinfer.withdraw();
        VM.assertEq(verinfer.claimable(kicked), credit, "credit untouched");
        VM.assertEq(_withdraw(kicked), credit);
        VM.assertEq(token.balanceOf(stranger), 0);
    }

    /// @dev The three nodes of a task are distinct, whatever the draw.
    function test_Attack_SameNodeTwiceInATask() public {
        _makeNodes(10, 4, H100);
        for (uint256 seed; seed < 24; ++seed) {
            uint256 snap = VM.snapshotState();
            VM.roll(VM.getBlockNumber() + 1 + seed); // another seed block
            address[3] memory n = _nodesOf(_createImageTask());
            VM.assertTrue(n[0] != n[1] && n[0] != n[2] && n[1] != n[2], "three distinct nodes");
            VM.revertToState(snap);
        }
    }

    /// @dev A creator cannot steer which nodes run its task through what it controls in the task:
    ///      drawn from the same seed block, different args, creator, fee, image count and VRAM
    ///      requirement select the same nodes; nor does the caller that triggers the draw, nor
    ///      prevrandao. (The seed block does matter: tasks created in other blocks get other nodes.)
    function test_Attack_SelectionIndependentOfTaskInputs() public {
        _makeNodes(10, 12, H100);
        address otherCreator = address(uint160(0xC0FFEE2));
        _fund(otherCreator, 100 ether);
        _nextBlock();

        uint256 snap = VM.snapshotState();
        address[3] memory first = _drawnFor(creator, keccak256("args A"), 1, 0, FEE, stranger);
        VM.revertToState(snap);
        VM.prevrandao(bytes32(uint256(42)));
        address[3] memory second = _drawnFor(otherCreator, keccak256("args B"), 7, 2048, 2 ether, otherCreator);
        for (uint256 i; i < 3; ++i) {
            VM.assertEq(first[i], second[i], "same selection for different inputs");
        }

        bool differs;
        for (uint256 r = 1; r < 8 && !differs; ++r) {
            VM.revertToState(snap);
            VM.roll(VM.getBlockNumber() + r);
            address[3] memory other = _drawnFor(creator, keccak256("args A"), 1, 0, FEE, stranger);
            differs = other[0] != first[0] || other[1] != first[1] || other[2] != first[2];
        }
        VM.assertTrue(differs, "the seed block's hash drives the selection");
    }

    /// @dev Creates an image task as `from`, has `drawer` send the next block's first call, and
    ///      returns the nodes drawn.
    function _drawnFor(address from, bytes32 argsHash, uint8 images, uint32 minVram, uint96 fee, address drawer)
        internal
        returns (address[3] memory)
    {
        VM.prank(from);
        uint256 id = verinfer.createTask(IMAGE, argsHash, images, minVram, "", fee);
        _nextBlock();
        VM.prank(drawer);
        verinfer.drawTasks();
        _assertStatus(id, IVerinfer.TaskStatus.Committing);
        return _nodesOf(id);
    }

    /// @dev Whoever sends the first call of a block cannot add a candidate before the draw it runs:
    ///      a node that joins in that call (or later in the block) is not drawn.
    function test_Attack_JoinInTheDrawingCallIsTooLate() public {
        _makeNodes(10, 3, H100);
        for (uint256 seed; seed < 8; ++seed) {
            uint256 snap = VM.snapshotState();
            VM.roll(VM.getBlockNumber() + 1 + seed);
            uint256 id = _queueImageTask(1, 0, FEE);
            _nextBlock();
            address sybil = _nodeAddr(100 + seed);
            _join(sybil, H100, MIN_STAKE); // its own call runs the draw first
            _assertStatus(id, IVerinfer.TaskStatus.Committing);
            address[3] memory n = _nodesOf(id);
            for (uint256 i; i < 3; ++i) {
                VM.assertTrue(n[i] != sybil, "joined too late for this draw");
            }
            VM.revertToState(snap);
        }
    }

    /// @dev A busy node is never drawn for a second task: with three nodes busy, the next task
    ///      waits even though the nodes are registered.
    function test_Attack_BusyNodeNotDrawnAgain() public {
        uint256 second = _createImageTask();
        _assertStatus(second, IVerinfer.TaskStatus.Queued);
        VM.assertEq(_ext().availableNodes(bytes32(0), 0), 0);
    }

    /// @dev A node that would rather not be drawn for cheap tasks raises its fee tier; it cannot be
    ///      made to serve a task below it, whoever creates it.
    function test_Attack_CheapTaskCannotDrawHighTierNodes() public {
        _runHonestImageTask(taskId);
        for (uint256 i; i < 3; ++i) {
            VM.prank(nodes[i]);
            verinfer.setFeeTier(1);
        }
        uint96 minimum = uint96(_ext().minTaskFee(IMAGE, 1));
        uint256 cheap = _createImageTask(1, 0, 2 * minimum - 1);
        _assertStatus(cheap, IVerinfer.TaskStatus.Queued);
        uint256 paying = _createImageTask(1, 0, 2 * minimum);
        _assertStatus(paying, IVerinfer.TaskStatus.Committing);
    }
}
