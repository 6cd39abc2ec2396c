// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IVerinfer} from "../src/interfaces/IVerinfer.sol";
import {VM, Vm} from "./Vm.sol";
import {VerinferTestBase} from "./utils/VerinferTestBase.sol";

/// @notice Helpers for sampled validation: creating sampled tasks, steering the sample draw through
///         the hash of the sample block, finding the start events, and token accounting that counts
///         the fees of the two new live statuses (AwaitingSample, CheckQueued).
abstract contract SampledTestBase is VerinferTestBase {
    uint8 internal constant CHECK_RING = 0;

    uint256 private _hashNonce;

    // ================================================================ tasks

    function _queueSampledImage(uint96 fee) internal returns (uint256) {
        bytes32 argsHash = _nextArgsHash();
        VM.prank(creator);
        return verinfer.createSampledTask(IMAGE, argsHash, 1, 0, "", fee);
    }

    function _queueSampledText(string memory model, uint96 fee) internal returns (uint256) {
        bytes32 argsHash = _nextArgsHash();
        VM.prank(creator);
        return verinfer.createSampledTask(TEXT, argsHash, 0, 0, model, fee);
    }

    /// @dev Creates a sampled 1-image task and runs the next block's draw; returns its first node.
    function _startSampledImage(uint96 fee) internal returns (uint256 taskId, address first) {
        taskId = _queueSampledImage(fee);
        _draw();
        _assertStatus(taskId, IVerinfer.TaskStatus.Committing);
        first = _nodesOf(taskId)[0];
    }

    /// @dev Starts a sampled 1-image task and has its first node commit `h`: status AwaitingSample.
    function _awaitingSample(uint64[] memory h) internal returns (uint256 taskId, address first) {
        (taskId, first) = _startSampledImage(FEE);
        _commitImage(taskId, first, h);
        _assertStatus(taskId, IVerinfer.TaskStatus.AwaitingSample);
    }

    // ================================================================ the sample draw

    /// @dev Whether the contract's rule checks task `taskId` when its sample block hashes to `h`.
    function _isChecked(bytes32 h, uint256 taskId, uint16 samplingBps) internal pure returns (bool) {
        return uint256(keccak256(abi.encode(h, taskId))) % BPS < samplingBps;
    }

    /// @dev A non-zero block hash whose sample draw for `taskId` at rate `samplingBps` gives `checked`.
    function _hashFor(uint256 taskId, bool checked, uint16 samplingBps) internal returns (bytes32 h) {
        for (uint256 i; i < 100_000; ++i) {
            h = keccak256(abi.encode("sample-hash", taskId, ++_hashNonce));
            if (h != bytes32(0) && _isChecked(h, taskId, samplingBps) == checked) return h;
        }
        revert("_hashFor: no hash found");
    }

    /// @dev Sets the hash of `taskId`'s sample block so that its draw gives `checked`, and mines
    ///      blocks until the draw is decidable.
    function _decide(uint256 taskId, bool checked) internal {
        IVerinfer.TaskInfo memory t = _ext().getTask(taskId);
        VM.assertEq(uint256(t.status), uint256(IVerinfer.TaskStatus.AwaitingSample), "awaiting sample");
        uint16 p = _ext().taskParams(taskId).samplingBps;
        while (VM.getBlockNumber() <= t.sampleBlock) {
            _nextBlock();
        }
        // (forge sets hashes of past blocks only.)
        VM.setBlockhash(t.sampleBlock, _hashFor(taskId, checked, p));
    }

    /// @dev Decides `taskId` checked, resolves it (CheckQueued) and runs the next draw (CheckStarted).
    function _startCheck(uint256 taskId) internal returns (address[3] memory nodes) {
        _decide(taskId, true);
        VM.assertTrue(verinfer.resolveSample(taskId), "resolveSample: checked");
        _assertStatus(taskId, IVerinfer.TaskStatus.CheckQueued);
        _draw();
        _assertStatus(taskId, IVerinfer.TaskStatus.Committing);
        nodes = _nodesOf(taskId);
    }

    /// @dev Every node of `all` but `keep` leaves (idle nodes: stakes returned at once).
    function _leaveAllBut(address[] memory all, address keep) internal {
        for (uint256 i; i < all.length; ++i) {
            if (all[i] == keep) continue;
            VM.prank(all[i]);
            verinfer.leave();
        }
    }

    /// @dev Gives the block whose hash seeds the next draw a fresh random hash, then draws.
    function _drawFresh() internal returns (uint256 started) {
        VM.setBlockhash(verinfer.lastTouchBlock(), keccak256(abi.encode("draw-seed", ++_hashNonce)));
        return _draw();
    }

    /// @dev The check queue of a 1-image task (VRAM class 0) at `feeLevel`.
    function _imageCheckQueueKey(uint8 feeLevel) internal pure returns (bytes32) {
        return keccak256(abi.encode(_imageQueueKey(0, feeLevel), uint256(CHECK_RING)));
    }

    // ================================================================ rules and accounting

    /// @dev The draw-time rule: p * s * stake >= (1 - p) * fee, in basis points.
    function _cheatingUnprofitable(uint256 stake, uint256 fee, uint256 p, uint256 s) internal pure returns (bool) {
        return p * s * stake >= (BPS - p) * uint256(BPS) * fee;
    }

    /// @dev The design's sampled fee bounds for a full minimum `fullMinimum`.
    function _expectedRange(uint256 fullMinimum, uint256 p, uint256 s, uint256 minStake)
        internal
        pure
        returns (uint256 minimum, uint256 maximum)
    {
        minimum = (fullMinimum * (BPS + 2 * p) + 3 * uint256(BPS) - 1) / (3 * uint256(BPS));
        if (p == BPS) {
            maximum = type(uint96).max;
        } else {
            maximum = (p * s * minStake) / ((BPS - p) * uint256(BPS));
            if (maximum > type(uint96).max) maximum = type(uint96).max;
        }
    }

    /// @dev `_assertTokenAccounting` counting also the escrowed fees of AwaitingSample and
    ///      CheckQueued tasks (the base helper predates them).
    function _assertAccounting() internal view {
        uint256 owed = verinfer.treasuryBalance() + verinfer.claimable(creator);
        uint256 nodes = verinfer.nodeCount();
        for (uint32 id = 1; id <= nodes; ++id) {
            address node = verinfer.nodeAddress(id);
            owed += uint256(_stakeOf(node)) + verinfer.claimable(node);
        }
        uint256 tasks = verinfer.taskCount();
        for (uint256 id = 1; id <= tasks; ++id) {
            IVerinfer.TaskInfo memory t = _ext().getTask(id);
            if (
                t.status == IVerinfer.TaskStatus.Queued || t.status == IVerinfer.TaskStatus.Committing
                    || t.status == IVerinfer.TaskStatus.Revealing || t.status == IVerinfer.TaskStatus.AwaitingSample
                    || t.status == IVerinfer.TaskStatus.CheckQueued
            ) owed += t.fee;
        }
        VM.assertEq(token.balanceOf(address(verinfer)), owed, "token balance == everything owed");
    }

    // ================================================================ logs

    /// @dev The nodes of the last `TaskStarted` of `taskId` among `logs` (found: false when none).
    function _findStarted(Vm.Log[] memory logs, uint256 taskId)
        internal
        view
        returns (bool found, address[3] memory nodes)
    {
        for (uint256 i; i < logs.length; ++i) {
            Vm.Log memory l = logs[i];
            if (
                l.emitter == address(verinfer) && l.topics.length == 2 && l.topics[0] == IVerinfer.TaskStarted.selector
                    && uint256(l.topics[1]) == taskId
            ) {
                found = true;
                (nodes,,,) = abi.decode(l.data, (address[3], uint32, uint32, uint256));
            }
        }
    }

    /// @dev The checkers of the last `CheckStarted` of `taskId` among `logs`.
    function _findCheckStarted(Vm.Log[] memory logs, uint256 taskId)
        internal
        view
        returns (bool found, address[2] memory checkers, uint32 commitDeadline)
    {
        for (uint256 i; i < logs.length; ++i) {
            Vm.Log memory l = logs[i];
            if (
                l.emitter == address(verinfer) && l.topics.length == 2 && l.topics[0] == IVerinfer.CheckStarted.selector
                    && uint256(l.topics[1]) == taskId
            ) {
                found = true;
                (checkers, commitDeadline,,) = abi.decode(l.data, (address[2], uint32, uint32, uint256));
            }
        }
    }

    function _uint16s(uint16 a, uint16 b, uint16 c) internal pure returns (uint16[] memory d) {
        d = new uint16[](3);
        (d[0], d[1], d[2]) = (a, b, c);
    }

    function _protocolCut(uint96 fee) internal pure returns (uint96) {
        return uint96((uint256(fee) * PROTOCOL_FEE_BPS) / BPS);
    }
}

/// @notice The unchecked path of a sampled task, the sample draw's timing and errors, and the
///         first node's deadlines.
contract VerinferSampledUncheckedTest is SampledTestBase {
    address[] internal nodes;

    function setUp() public override {
        super.setUp();
        nodes = _makeNodes(0, 5, H100);
    }

    /// @notice Unchecked: a sampled task starts on one node (TaskStarted [first, 0, 0]), its commit
    ///         opens AwaitingSample (SampleCommitted at the next block), and its reveal in a later
    ///         block decides "unchecked" and settles Validated at once: agreeingMask 1, no distances,
    ///         the whole fee less the protocol cut into the first node's stake; tokens balance.
    function test_Unchecked_OneNodeComputesAndIsPaidAlone() public {
        uint256 id = _queueSampledImage(FEE);
        VM.recordLogs();
        _draw();
        (bool found, address[3] memory started) = _findStarted(VM.getRecordedLogs(), id);
        VM.assertTrue(found, "TaskStarted emitted");
        address first = started[0];
        VM.assertNotEq(first, address(0), "one node drawn");
        VM.assertEq(started[1], address(0), "no second node");
        VM.assertEq(started[2], address(0), "no third node");
        IVerinfer.TaskInfo memory t = _ext().getTask(id);
        VM.assertEq(uint256(t.mode), uint256(IVerinfer.ValidationMode.Sampled), "mode");
        VM.assertEq(t.nodes[0], first, "task's first node");
        VM.assertEq(t.nodes[1], address(0));
        VM.assertEq(t.nodes[2], address(0));
        _assertNodeState(first, IVerinfer.NodeState.Busy);
        uint256 busy;
        for (uint256 i; i < nodes.length; ++i) {
            if (_stateOf(nodes[i]) == IVerinfer.NodeState.Busy) ++busy;
        }
        VM.assertEq(busy, 1, "exactly one node busy");

        uint64[] memory h = _trueHashes(id, 1);
        uint256 sampleBlock = VM.getBlockNumber() + 1;
        VM.expectEmit(address(verinfer));
        emit IVerinfer.SampleCommitted(id, sampleBlock, uint32(VM.getBlockTimestamp()) + REVEAL_WINDOW);
        _commitImage(id, first, h);
        t = _ext().getTask(id);
        VM.assertEq(uint256(t.status), uint256(IVerinfer.TaskStatus.AwaitingSample), "awaiting sample");
        VM.assertEq(uint256(t.sampleBlock), sampleBlock, "sample block = commit block + 1");
        VM.assertEq(t.committedMask, 1);
        _assertAccounting();

        _decide(id, false);
        (bool decidable, bool checked) = _ext().sampleDecision(id);
        VM.assertTrue(decidable, "decidable");
        VM.assertFalse(checked, "unchecked");
        uint96 cut = _protocolCut(FEE);
        uint96 reward = FEE - cut;
        VM.expectEmit(address(verinfer));
        emit IVerinfer.SampleDecided(id, false, sampleBlock);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.TaskSettled(id, IVerinfer.TaskStatus.Validated, 1, new uint16[](0), THRESHOLD, reward);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.NodeRewarded(first, id, reward);
        _revealImage(id, first, h);

        t = _ext().getTask(id);
        VM.assertEq(uint256(t.status), uint256(IVerinfer.TaskStatus.Validated), "validated");
        VM.assertFalse(t.checked, "not checked");
        VM.assertEq(_stakeOf(first), MIN_STAKE + reward, "fee less protocol cut into the stake");
        VM.assertEq(verinfer.treasuryBalance(), cut, "treasury gets the protocol cut");
        VM.assertEq(verinfer.claimable(creator), 0, "nothing refunded");
        _assertNodeState(first, IVerinfer.NodeState.Available);
        VM.assertEq(verinfer.queuedTasks(), 0);
        _assertAccounting();
        _assertTokenAccounting();
    }

    /// @notice The first node cannot learn the draw before committing: its reveal in the commit
    ///         block and in the sample block itself reverts SampleNotDecidable (the sample block's
    ///         hash does not exist yet), and `sampleDecision` says "not decidable".
    function test_Reveal_RevertsBeforeSampleIsDecidable() public {
        uint64[] memory h = _trueHashes(1, 1);
        (uint256 id, address first) = _awaitingSample(h);
        uint256 sampleBlock = _ext().getTask(id).sampleBlock;
        // The commit block.
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.SampleNotDecidable.selector, id, sampleBlock + 1));
        _revealImage(id, first, h);
        (bool decidable, bool checked) = _ext().sampleDecision(id);
        VM.assertFalse(decidable, "not decidable in the commit block");
        VM.assertFalse(checked);
        // The sample block.
        _nextBlock();
        VM.assertEq(VM.getBlockNumber(), sampleBlock);
        VM.setBlockhash(sampleBlock, _hashFor(id, false, SAMPLING_BPS));
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.SampleNotDecidable.selector, id, sampleBlock + 1));
        _revealImage(id, first, h);
        (decidable,) = _ext().sampleDecision(id);
        VM.assertFalse(decidable, "not decidable in the sample block");
        // The block after: decidable, and the (unchecked) reveal settles.
        _nextBlock();
        (decidable, checked) = _ext().sampleDecision(id);
        VM.assertTrue(decidable);
        VM.assertFalse(checked);
        _revealImage(id, first, h);
        _assertStatus(id, IVerinfer.TaskStatus.Validated);
    }

    /// @notice Attack: a first node whose task is checked tries to reveal (which would show its
    ///         result to the checkers before they commit, and end the task unchecked): the reveal
    ///         reverts SampleChecked and the task still awaits its sample draw.
    function test_Reveal_RevertsWhenChecked() public {
        uint64[] memory h = _trueHashes(1, 1);
        (uint256 id, address first) = _awaitingSample(h);
        _decide(id, true);
        (bool decidable, bool checked) = _ext().sampleDecision(id);
        VM.assertTrue(decidable);
        VM.assertTrue(checked, "sampleDecision: checked");
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.SampleChecked.selector, id));
        _revealImage(id, first, h);
        IVerinfer.TaskInfo memory t = _ext().getTask(id);
        VM.assertEq(uint256(t.status), uint256(IVerinfer.TaskStatus.AwaitingSample), "still awaiting");
        VM.assertEq(t.revealedMask, 0, "nothing revealed");
        VM.assertFalse(t.checked, "the reverted reveal left no trace");
        _assertNodeState(first, IVerinfer.NodeState.Busy);
    }

    /// @notice `resolveSample` and `sampleDecision` refuse tasks that do not await their sample
    ///         draw (unknown, queued, committing, settled), and `resolveSample` refuses a draw whose
    ///         block is not sealed yet (SampleNotDecidable).
    function test_ResolveSample_Errors() public {
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.NotAwaitingSample.selector, 42, IVerinfer.TaskStatus.None));
        verinfer.resolveSample(42);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.NotAwaitingSample.selector, 42, IVerinfer.TaskStatus.None));
        _ext().sampleDecision(42);

        uint256 id = _queueSampledImage(FEE);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.NotAwaitingSample.selector, id, IVerinfer.TaskStatus.Queued));
        verinfer.resolveSample(id);
        _draw();
        VM.expectRevert(
            abi.encodeWithSelector(IVerinfer.NotAwaitingSample.selector, id, IVerinfer.TaskStatus.Committing)
        );
        verinfer.resolveSample(id);

        address first = _nodesOf(id)[0];
        uint64[] memory h = _trueHashes(id, 1);
        _commitImage(id, first, h);
        uint256 sampleBlock = _ext().getTask(id).sampleBlock;
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.SampleNotDecidable.selector, id, sampleBlock + 1));
        verinfer.resolveSample(id);
        _nextBlock();
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.SampleNotDecidable.selector, id, sampleBlock + 1));
        verinfer.resolveSample(id);

        _decide(id, false);
        _revealImage(id, first, h);
        VM.expectRevert(
            abi.encodeWithSelector(IVerinfer.NotAwaitingSample.selector, id, IVerinfer.TaskStatus.Validated)
        );
        verinfer.resolveSample(id);
        VM.expectRevert(
            abi.encodeWithSelector(IVerinfer.NotAwaitingSample.selector, id, IVerinfer.TaskStatus.Validated)
        );
        _ext().sampleDecision(id);
    }

    /// @notice Anybody may run an unchecked draw: `resolveSample` returns false and opens the first
    ///         node's reveal (status Revealing); a second call is refused; the reveal then settles.
    function test_ResolveSample_UncheckedOpensReveal() public {
        uint64[] memory h = _trueHashes(1, 1);
        (uint256 id, address first) = _awaitingSample(h);
        _decide(id, false);
        uint256 sampleBlock = _ext().getTask(id).sampleBlock;
        VM.expectEmit(address(verinfer));
        emit IVerinfer.SampleDecided(id, false, sampleBlock);
        VM.prank(stranger);
        VM.assertFalse(verinfer.resolveSample(id), "unchecked");
        _assertStatus(id, IVerinfer.TaskStatus.Revealing);
        VM.expectRevert(
            abi.encodeWithSelector(IVerinfer.NotAwaitingSample.selector, id, IVerinfer.TaskStatus.Revealing)
        );
        verinfer.resolveSample(id);
        _revealImage(id, first, h);
        _assertStatus(id, IVerinfer.TaskStatus.Validated);
        VM.assertEq(_stakeOf(first), MIN_STAKE + FEE - _protocolCut(FEE));
        _assertAccounting();
    }

    /// @notice Unchecked text task: the first node's digest is accepted alone and it is paid.
    function test_Unchecked_TextTaskSettlesOnFirstNode() public {
        _makeNodes(10, 3, RTX4090);
        uint256 id = _queueSampledText(RTX4090, FEE);
        _draw();
        address first = _nodesOf(id)[0];
        VM.assertEq(_ext().getNode(first).gpuModel, _ext().gpuModelId(RTX4090), "first node of the task's model");
        bytes32 d = _trueDigest(id);
        _commitText(id, first, d);
        _decide(id, false);
        VM.recordLogs();
        _revealText(id, first, d);
        Settled memory s = _findSettled(VM.getRecordedLogs(), id);
        VM.assertTrue(s.found);
        VM.assertEq(uint256(s.outcome), uint256(IVerinfer.TaskStatus.Validated));
        VM.assertEq(s.agreeingMask, 1);
        VM.assertEq(s.distances.length, 0, "no distances");
        VM.assertEq(s.rewardPerNode, FEE - _protocolCut(FEE));
        _assertAccounting();
    }

    /// @notice Unchecked, an INVALID_ARGS report ends the task Errored: fee refunded to the
    ///         creator, the first node neither paid nor slashed.
    function test_Unchecked_InvalidArgsReportRefunds() public {
        (uint256 id, address first) = _startSampledImage(FEE);
        _commitInvalid(id, first);
        _decide(id, false);
        _reportInvalid(id, first);
        _assertStatus(id, IVerinfer.TaskStatus.Errored);
        VM.assertEq(verinfer.claimable(creator), FEE, "fee refunded");
        VM.assertEq(_stakeOf(first), MIN_STAKE, "not paid, not slashed");
        VM.assertEq(verinfer.treasuryBalance(), 0);
        _assertNodeState(first, IVerinfer.NodeState.Available);
        _assertAccounting();
    }

    /// @notice Attack: a first node that commits and then never reveals (nor resolves). `settle`
    ///         is refused up to the reveal deadline, then slashes and kicks it (MissedReveal),
    ///         refunds the fee and pays the slash reward to the creator.
    function test_AwaitingSample_PastRevealDeadlineSlashesMissedReveal() public {
        (uint256 id, address first) = _awaitingSample(_trueHashes(1, 1));
        _decide(id, false);
        uint32 revealDeadline = _ext().getTask(id).revealDeadline;
        VM.warp(revealDeadline);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.SettleTooEarly.selector, id));
        verinfer.settle(id);
        VM.warp(uint256(revealDeadline) + 1);
        _nextBlock();
        uint96 slash = _slashOf(MIN_STAKE);
        uint256 slashReward = (uint256(slash) * SLASH_REWARD_BPS) / BPS;
        VM.expectEmit(address(verinfer));
        emit IVerinfer.NodeSlashed(first, id, IVerinfer.SlashReason.MissedReveal, slash);
        VM.prank(stranger);
        verinfer.settle(id);
        _assertStatus(id, IVerinfer.TaskStatus.Aborted);
        _assertNodeState(first, IVerinfer.NodeState.Kicked);
        VM.assertEq(verinfer.claimable(first), MIN_STAKE - slash, "rest of the stake credited");
        VM.assertEq(verinfer.claimable(creator), FEE + slashReward, "fee refunded plus slash reward");
        VM.assertEq(verinfer.treasuryBalance(), slash - slashReward);
        _assertAccounting();
    }

    /// @notice Attack (regression, succeeded before 1e40a66): a first node whose task came up
    ///         checked sits past its reveal deadline, then resolves the sample itself before anyone
    ///         settles, turning a certain MissedReveal slash into a fresh check with new deadlines.
    ///         Now the late resolution is refused and `settle` slashes it.
    function test_Attack_LateResolveCannotRescueASilentFirstNode() public {
        (uint256 id, address first) = _awaitingSample(_trueHashes(1, 1));
        _decide(id, true);
        uint32 revealDeadline = _ext().getTask(id).revealDeadline;
        VM.warp(uint256(revealDeadline) + 1);
        _nextBlock();
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.SampleDeadlinePassed.selector, id, revealDeadline));
        VM.prank(first);
        verinfer.resolveSample(id);
        VM.prank(stranger);
        verinfer.settle(id);
        _assertStatus(id, IVerinfer.TaskStatus.Aborted);
        _assertNodeState(first, IVerinfer.NodeState.Kicked);
        _assertAccounting();
    }

    /// @notice Attack: a first node drawn for a sampled task that never commits is slashed and
    ///         kicked (MissedCommit) once the commit deadline passed; the creator is refunded.
    function test_FirstNode_MissedCommitIsSlashed() public {
        (uint256 id, address first) = _startSampledImage(FEE);
        uint32 commitDeadline = _ext().getTask(id).commitDeadline;
        VM.warp(commitDeadline);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.SettleTooEarly.selector, id));
        verinfer.settle(id);
        VM.warp(uint256(commitDeadline) + 1);
        _nextBlock();
        uint96 slash = _slashOf(MIN_STAKE);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.NodeSlashed(first, id, IVerinfer.SlashReason.MissedCommit, slash);
        verinfer.settle(id);
        _assertStatus(id, IVerinfer.TaskStatus.Aborted);
        _assertNodeState(first, IVerinfer.NodeState.Kicked);
        VM.assertEq(
            verinfer.claimable(creator), FEE + (uint256(slash) * SLASH_REWARD_BPS) / BPS, "refund + slash reward"
        );
        _assertAccounting();
    }

    /// @notice A sample draw not made within 256 blocks counts as checked, even when the (no longer
    ///         readable) hash would have said unchecked: the first node cannot wait the hash out.
    function test_StaleBlockhash_CountsAsChecked() public {
        uint64[] memory h = _trueHashes(1, 1);
        (uint256 id, address first) = _awaitingSample(h);
        uint256 sampleBlock = _ext().getTask(id).sampleBlock;
        VM.roll(sampleBlock + 1);
        VM.setBlockhash(sampleBlock, _hashFor(id, false, SAMPLING_BPS));
        (, bool checked) = _ext().sampleDecision(id);
        VM.assertFalse(checked, "readable hash: unchecked");
        VM.roll(sampleBlock + 256);
        (, checked) = _ext().sampleDecision(id);
        VM.assertFalse(checked, "256 blocks later: still readable, unchecked");
        VM.roll(sampleBlock + 257);
        (bool decidable, bool checkedLate) = _ext().sampleDecision(id);
        VM.assertTrue(decidable);
        VM.assertTrue(checkedLate, "hash no longer readable: checked");
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.SampleChecked.selector, id));
        _revealImage(id, first, h);
        VM.assertTrue(verinfer.resolveSample(id), "resolveSample: checked");
        _assertStatus(id, IVerinfer.TaskStatus.CheckQueued);
        VM.assertTrue(_ext().getTask(id).checked);
    }

    /// @notice The creator cannot cancel a sampled task once its first node is drawn (committing,
    ///         awaiting the sample, or waiting for checkers): its fee stays escrowed.
    function test_Cancel_RefusedOnceStarted() public {
        (uint256 id, address first) = _startSampledImage(FEE);
        VM.prank(creator);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.TaskNotQueued.selector, id, IVerinfer.TaskStatus.Committing));
        verinfer.cancelTask(id);
        _commitImage(id, first, _trueHashes(id, 1));
        VM.prank(creator);
        VM.expectRevert(
            abi.encodeWithSelector(IVerinfer.TaskNotQueued.selector, id, IVerinfer.TaskStatus.AwaitingSample)
        );
        verinfer.cancelTask(id);
        _decide(id, true);
        verinfer.resolveSample(id);
        VM.prank(creator);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.TaskNotQueued.selector, id, IVerinfer.TaskStatus.CheckQueued));
        verinfer.cancelTask(id);
        _assertAccounting();
    }

    /// @notice A first node that leaves while awaiting an unchecked sample stays bound to the task
    ///         (Leaving, not drawn again) and, once it reveals, exits with stake plus reward credited.
    function test_Unchecked_LeavingFirstNodeExitsWithReward() public {
        uint64[] memory h = _trueHashes(1, 1);
        (uint256 id, address first) = _awaitingSample(h);
        VM.prank(first);
        verinfer.leave();
        _assertNodeState(first, IVerinfer.NodeState.Leaving);
        VM.assertEq(verinfer.claimable(first), 0, "nothing returned yet");
        _decide(id, false);
        _revealImage(id, first, h);
        _assertStatus(id, IVerinfer.TaskStatus.Validated);
        _assertNodeState(first, IVerinfer.NodeState.None);
        VM.assertEq(verinfer.claimable(first), MIN_STAKE + FEE - _protocolCut(FEE), "stake + reward credited");
        _assertAccounting();
    }
}

/// @notice The checked path: the check queue, the checkers' draw, and the majority of three.
contract VerinferSampledCheckedTest is SampledTestBase {
    address[] internal nodes;

    function setUp() public override {
        super.setUp();
        nodes = _makeNodes(0, 6, H100);
    }

    /// @notice Checked: `resolveSample` emits SampleDecided(true) and queues the check in its own
    ///         check queue with a fresh deadline; the next draw starts it (CheckStarted) on two
    ///         distinct checkers, neither of them the first node, over many tasks and seeds.
    function test_Checked_DrawsTwoCheckersNeverTheFirstNode() public {
        for (uint256 round; round < 6; ++round) {
            uint64[] memory h = _trueHashes(round, 1);
            (uint256 id, address first) = _awaitingSample(h);
            _decide(id, true);
            IVerinfer.TaskInfo memory t = _ext().getTask(id);
            uint256 expiresAt = VM.getBlockTimestamp() + QUEUE_TIMEOUT;
            VM.expectEmit(address(verinfer));
            emit IVerinfer.SampleDecided(id, true, t.sampleBlock);
            VM.expectEmit(address(verinfer));
            emit IVerinfer.TaskQueued(id, _imageCheckQueueKey(t.feeLevel));
            VM.prank(stranger);
            VM.assertTrue(verinfer.resolveSample(id));
            t = _ext().getTask(id);
            VM.assertEq(uint256(t.status), uint256(IVerinfer.TaskStatus.CheckQueued));
            VM.assertTrue(t.checked, "checked");
            VM.assertEq(uint256(t.expiresAt), expiresAt, "check deadline from the resolution");
            _assertNodeState(first, IVerinfer.NodeState.Busy);
            _assertAccounting();

            VM.recordLogs();
            _drawFresh();
            (bool found, address[2] memory checkers,) = _findCheckStarted(VM.getRecordedLogs(), id);
            VM.assertTrue(found, "CheckStarted");
            t = _ext().getTask(id);
            VM.assertEq(uint256(t.status), uint256(IVerinfer.TaskStatus.Committing));
            VM.assertEq(t.nodes[0], first, "first node kept");
            VM.assertEq(t.nodes[1], checkers[0]);
            VM.assertEq(t.nodes[2], checkers[1]);
            VM.assertNotEq(checkers[0], first, "checker 1 is not the first node");
            VM.assertNotEq(checkers[1], first, "checker 2 is not the first node");
            VM.assertNotEq(checkers[0], checkers[1], "two distinct checkers");
            VM.assertNotEq(checkers[0], address(0));
            VM.assertNotEq(checkers[1], address(0));
            VM.assertEq(t.committedMask, 1, "the first node's commitment stands");
            _assertNodeState(checkers[0], IVerinfer.NodeState.Busy);
            _assertNodeState(checkers[1], IVerinfer.NodeState.Busy);
            _runCheckHonest(id, h);
        }
    }

    /// @notice Attack: the first node of a checked task tries to commit again (to swap its result
    ///         after seeing the check) or to reveal before the checkers committed (so they could
    ///         copy it): AlreadyCommitted and NotInRevealPhase.
    function test_Checked_FirstNodeCannotRecommitOrRevealEarly() public {
        uint64[] memory h = _trueHashes(7, 1);
        (uint256 id, address first) = _awaitingSample(h);
        address[3] memory n = _startCheck(id);
        bytes32 c = _imageCommitment(id, first, h, keccak256("another salt"));
        VM.prank(first);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.AlreadyCommitted.selector, id, first));
        verinfer.commit(id, c);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.NotInRevealPhase.selector, id));
        _revealImage(id, first, h);
        _commitImage(id, n[1], h);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.NotInRevealPhase.selector, id));
        _revealImage(id, first, h);
        _assertStatus(id, IVerinfer.TaskStatus.Committing);
    }

    /// @notice Checked, all honest: the checkers' commitments open the reveal phase
    ///         (RevealPhaseOpened), the three reveals settle Validated with three zero distances and
    ///         the fee (less the protocol cut) is split three ways; tokens balance.
    function test_Checked_AllHonestSplitFeeThreeWays() public {
        uint64[] memory h = _trueHashes(7, 1);
        (uint256 id, address first) = _awaitingSample(h);
        address[3] memory n = _startCheck(id);
        _commitImage(id, n[1], h);
        _assertStatus(id, IVerinfer.TaskStatus.Committing);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.RevealPhaseOpened(id, uint32(VM.getBlockTimestamp()) + REVEAL_WINDOW);
        _commitImage(id, n[2], h);
        _assertStatus(id, IVerinfer.TaskStatus.Revealing);
        _assertAccounting();
        uint96 reward = _rewardPerNode(FEE, 3);
        _revealImage(id, n[0], h);
        _revealImage(id, n[1], h);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.TaskSettled(id, IVerinfer.TaskStatus.Validated, 7, _uint16s(0, 0, 0), THRESHOLD, reward);
        _revealImage(id, n[2], h);
        _assertStatus(id, IVerinfer.TaskStatus.Validated);
        for (uint256 i; i < 3; ++i) {
            VM.assertEq(_stakeOf(n[i]), MIN_STAKE + reward, "each paid a third");
            _assertNodeState(n[i], IVerinfer.NodeState.Available);
        }
        VM.assertEq(_stakeOf(first), MIN_STAKE + reward);
        VM.assertEq(verinfer.treasuryBalance(), FEE - 3 * uint256(reward), "cut + rounding to treasury");
        _assertAccounting();
    }

    /// @notice Attack (the lazy first node): it commits a counterfeit pHash, far from the true one;
    ///         the check catches it: slashed (Disagreed) and kicked, the two checkers share the fee
    ///         and the slash reward.
    function test_Checked_LazyFirstNodeSlashedCheckersPaid() public {
        uint64[] memory truth = _trueHashes(9, 1);
        uint64[] memory fake = _hashes(_flipLow(truth[0], 32));
        (uint256 id, address first) = _awaitingSample(fake);
        address[3] memory n = _startCheck(id);
        _commitImage(id, n[1], truth);
        _commitImage(id, n[2], truth);
        uint96 reward = _rewardPerNode(FEE, 2);
        uint96 slash = _slashOf(MIN_STAKE);
        uint256 slashReward = (uint256(slash) * SLASH_REWARD_BPS) / BPS;
        _revealImage(id, first, fake);
        _revealImage(id, n[1], truth);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.TaskSettled(id, IVerinfer.TaskStatus.Validated, 6, _uint16s(32, 32, 0), THRESHOLD, reward);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.NodeSlashed(first, id, IVerinfer.SlashReason.Disagreed, slash);
        _revealImage(id, n[2], truth);
        _assertStatus(id, IVerinfer.TaskStatus.Validated);
        _assertNodeState(first, IVerinfer.NodeState.Kicked);
        VM.assertEq(_stakeOf(first), 0);
        VM.assertEq(verinfer.claimable(first), MIN_STAKE - slash, "kicked: the rest credited");
        for (uint256 i = 1; i < 3; ++i) {
            VM.assertEq(_stakeOf(n[i]), MIN_STAKE + reward, "checker paid half the fee");
            VM.assertEq(verinfer.claimable(n[i]), slashReward / 2, "checker gets half the slash reward");
        }
        VM.assertEq(verinfer.claimable(creator), 0, "no refund");
        _assertAccounting();
    }

    /// @notice Honest first node, one lazy checker: the lazy checker is slashed and kicked; the
    ///         first node and the honest checker are paid.
    function test_Checked_LazyCheckerSlashedHonestFirstPaid() public {
        uint64[] memory truth = _trueHashes(11, 1);
        uint64[] memory fake = _hashes(_flipLow(truth[0], 40));
        (uint256 id, address first) = _awaitingSample(truth);
        address[3] memory n = _startCheck(id);
        _commitImage(id, n[1], fake);
        _commitImage(id, n[2], truth);
        uint96 reward = _rewardPerNode(FEE, 2);
        _revealImage(id, n[2], truth);
        _revealImage(id, n[1], fake);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.TaskSettled(id, IVerinfer.TaskStatus.Validated, 5, _uint16s(40, 0, 40), THRESHOLD, reward);
        _revealImage(id, first, truth);
        _assertNodeState(n[1], IVerinfer.NodeState.Kicked);
        _assertNodeState(first, IVerinfer.NodeState.Available);
        VM.assertEq(_stakeOf(first), MIN_STAKE + reward, "honest first node paid");
        VM.assertEq(_stakeOf(n[2]), MIN_STAKE + reward, "honest checker paid");
        VM.assertEq(verinfer.claimable(n[1]), MIN_STAKE - _slashOf(MIN_STAKE));
        _assertAccounting();
    }

    /// @notice A checker that never commits is slashed (MissedCommit) once the commit deadline
    ///         passed; the first node and the other checker still validate and are paid.
    function test_Checked_CheckerMissingCommitSlashed() public {
        uint64[] memory h = _trueHashes(12, 1);
        (uint256 id, address first) = _awaitingSample(h);
        address[3] memory n = _startCheck(id);
        _commitImage(id, n[2], h);
        VM.warp(uint256(_ext().getTask(id).commitDeadline) + 1);
        _nextBlock();
        _revealImage(id, first, h);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.NodeSlashed(n[1], id, IVerinfer.SlashReason.MissedCommit, _slashOf(MIN_STAKE));
        _revealImage(id, n[2], h);
        _assertStatus(id, IVerinfer.TaskStatus.Validated);
        _assertNodeState(n[1], IVerinfer.NodeState.Kicked);
        VM.assertEq(_stakeOf(first), MIN_STAKE + _rewardPerNode(FEE, 2));
        VM.assertEq(_stakeOf(n[2]), MIN_STAKE + _rewardPerNode(FEE, 2));
        _assertAccounting();
    }

    /// @notice Attack (escape by leaving): a first node that calls `leave` while awaiting its sample
    ///         becomes Leaving, is still checked, and when caught is slashed and kicked like anyone.
    function test_Checked_LeavingDuringAwaitingSampleStillSlashed() public {
        uint64[] memory truth = _trueHashes(13, 1);
        uint64[] memory fake = _hashes(_flipLow(truth[0], 30));
        (uint256 id, address first) = _awaitingSample(fake);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.NodeLeaving(first, id);
        VM.prank(first);
        verinfer.leave();
        _assertNodeState(first, IVerinfer.NodeState.Leaving);
        address[3] memory n = _startCheck(id);
        _assertNodeState(first, IVerinfer.NodeState.Leaving);
        _commitImage(id, n[1], truth);
        _commitImage(id, n[2], truth);
        _revealImage(id, n[1], truth);
        _revealImage(id, n[2], truth);
        _revealImage(id, first, fake);
        _assertNodeState(first, IVerinfer.NodeState.Kicked);
        VM.assertEq(verinfer.claimable(first), MIN_STAKE - _slashOf(MIN_STAKE), "slashed despite leaving");
        _assertAccounting();
    }

    /// @notice A first node that leaves while its check waits for checkers (CheckQueued) is not
    ///         released early: it cannot leave twice, is never drawn elsewhere, and is credited its
    ///         stake plus its share when the check settles.
    function test_Checked_LeavingDuringCheckQueuedCreditedAtEnd() public {
        uint64[] memory h = _trueHashes(14, 1);
        (uint256 id, address first) = _awaitingSample(h);
        _decide(id, true);
        verinfer.resolveSample(id);
        _assertStatus(id, IVerinfer.TaskStatus.CheckQueued);
        VM.prank(first);
        verinfer.leave();
        _assertNodeState(first, IVerinfer.NodeState.Leaving);
        VM.assertEq(verinfer.claimable(first), 0);
        VM.prank(first);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.NotLeavable.selector, first, IVerinfer.NodeState.Leaving));
        verinfer.leave();
        _draw();
        address[3] memory n = _nodesOf(id);
        _commitImage(id, n[1], h);
        _commitImage(id, n[2], h);
        for (uint256 i; i < 3; ++i) {
            _revealImage(id, n[i], h);
        }
        _assertStatus(id, IVerinfer.TaskStatus.Validated);
        _assertNodeState(first, IVerinfer.NodeState.None);
        VM.assertEq(verinfer.claimable(first), MIN_STAKE + _rewardPerNode(FEE, 3), "stake + share credited");
        _assertAccounting();
    }

    /// @notice Attack (dodging a check by silence): a caught first node that never reveals is
    ///         slashed (MissedReveal) when the check is settled after its reveal deadline; the two
    ///         agreeing checkers are paid the fee and the slash reward.
    function test_Checked_SilentFirstNodeSlashedCheckersPaid() public {
        uint64[] memory truth = _trueHashes(15, 1);
        (uint256 id, address first) = _awaitingSample(_hashes(_flipLow(truth[0], 20)));
        address[3] memory n = _startCheck(id);
        _commitImage(id, n[1], truth);
        _commitImage(id, n[2], truth);
        _revealImage(id, n[1], truth);
        _revealImage(id, n[2], truth);
        _assertStatus(id, IVerinfer.TaskStatus.Revealing);
        uint32 revealDeadline = _ext().getTask(id).revealDeadline;
        VM.warp(revealDeadline);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.SettleTooEarly.selector, id));
        verinfer.settle(id);
        VM.warp(uint256(revealDeadline) + 1);
        _nextBlock();
        uint96 slash = _slashOf(MIN_STAKE);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.NodeSlashed(first, id, IVerinfer.SlashReason.MissedReveal, slash);
        verinfer.settle(id);
        _assertStatus(id, IVerinfer.TaskStatus.Validated);
        _assertNodeState(first, IVerinfer.NodeState.Kicked);
        uint256 slashReward = (uint256(slash) * SLASH_REWARD_BPS) / BPS;
        for (uint256 i = 1; i < 3; ++i) {
            VM.assertEq(_stakeOf(n[i]), MIN_STAKE + _rewardPerNode(FEE, 2), "checker paid");
            VM.assertEq(verinfer.claimable(n[i]), slashReward / 2, "checker's slash reward");
        }
        _assertAccounting();
    }

    /// @notice Checkers that never commit are both slashed (MissedCommit); the first node's lone
    ///         result validates nothing: the task is Aborted, the creator refunded (plus the slash
    ///         reward) and the first node released unpaid and unslashed.
    function test_Checked_BothCheckersMissCommitAborts() public {
        uint64[] memory h = _trueHashes(16, 1);
        (uint256 id, address first) = _awaitingSample(h);
        address[3] memory n = _startCheck(id);
        VM.warp(uint256(_ext().getTask(id).commitDeadline) + 1);
        _nextBlock();
        _revealImage(id, first, h); // all committed nodes revealed after the commit deadline: settles
        _assertStatus(id, IVerinfer.TaskStatus.Aborted);
        _assertNodeState(n[1], IVerinfer.NodeState.Kicked);
        _assertNodeState(n[2], IVerinfer.NodeState.Kicked);
        _assertNodeState(first, IVerinfer.NodeState.Available);
        VM.assertEq(_stakeOf(first), MIN_STAKE, "first node unpaid, unslashed");
        uint96 slash = _slashOf(MIN_STAKE);
        VM.assertEq(
            verinfer.claimable(creator), FEE + (2 * uint256(slash) * SLASH_REWARD_BPS) / BPS, "refund + slash reward"
        );
        _assertAccounting();
    }

    /// @dev The checkers commit `h` and all three reveal it (the first node committed `h` too).
    function _runCheckHonest(uint256 id, uint64[] memory h) internal {
        address[3] memory n = _nodesOf(id);
        _commitImage(id, n[1], h);
        _commitImage(id, n[2], h);
        for (uint256 i; i < 3; ++i) {
            _revealImage(id, n[i], h);
        }
        _assertStatus(id, IVerinfer.TaskStatus.Validated);
    }
}

/// @notice Where checks come from: text checkers of the task's model, checks served before new
///         tasks, and checks that find no checkers in time.
contract VerinferSampledCheckSchedulingTest is SampledTestBase {
    /// @notice Attack (regression, deadlocked before this fix): a burst of sampled tasks at
    ///         p = 100 % on five nodes. Before, each freed or idle node was taken as the first node
    ///         of the next task, so all five held checked tasks whose checks, needing two free nodes,
    ///         could never start: nothing settled until `queueTimeout`. Now a sampled task starts
    ///         only while two more nodes could check it, every check starts and all tasks validate.
    function test_Attack_SampledBurstCannotDeadlockItsChecks() public {
        IVerinfer.Params memory p = defaultParams();
        p.samplingBps = BPS;
        _setParams(p);
        _makeNodes(0, 5, H100);
        uint64[] memory h = _trueHashes(1, 1);
        uint256 n = 5;
        uint256[] memory ids = new uint256[](n);
        for (uint256 i; i < n; ++i) {
            ids[i] = _queueSampledImage(FEE);
        }
        uint256 validated;
        for (uint256 round; round < 40 && validated < n; ++round) {
            _drawFresh();
            // Every first node commits; every decidable sample is resolved (all checked at 100 %).
            _nextBlock();
            _nextBlock();
            for (uint256 i; i < n; ++i) {
                IVerinfer.TaskInfo memory t = _ext().getTask(ids[i]);
                if (t.status == IVerinfer.TaskStatus.Committing && !t.checked && t.committedMask == 0) {
                    _commitImage(ids[i], t.nodes[0], h);
                }
            }
            _nextBlock();
            _nextBlock();
            for (uint256 i; i < n; ++i) {
                if (_status(ids[i]) == IVerinfer.TaskStatus.AwaitingSample) verinfer.resolveSample(ids[i]);
            }
            // Checkers commit, then all three reveal.
            for (uint256 i; i < n; ++i) {
                IVerinfer.TaskInfo memory t = _ext().getTask(ids[i]);
                if (t.status != IVerinfer.TaskStatus.Committing || !t.checked) continue;
                _commitImage(ids[i], t.nodes[1], h);
                _commitImage(ids[i], t.nodes[2], h);
                for (uint256 k; k < 3; ++k) {
                    _revealImage(ids[i], t.nodes[k], h);
                }
                ++validated;
            }
        }
        for (uint256 i; i < n; ++i) {
            _assertStatus(ids[i], IVerinfer.TaskStatus.Validated);
        }
        _assertAccounting();
    }

    /// @notice Text: the checkers of a checked text task have the task's GPU model, although nodes
    ///         of another model with the same VRAM outnumber them eight to one; the check settles on
    ///         the three equal digests.
    function test_Checked_TextCheckersHaveTheTaskModel() public {
        _makeNodes(0, 8, A100);
        _makeNodes(8, 3, H100);
        _makeNodes(11, 8, A100);
        bytes32 h100 = _ext().gpuModelId(H100);
        uint256 id = _queueSampledText(H100, FEE);
        _drawFresh();
        address first = _nodesOf(id)[0];
        VM.assertEq(_ext().getNode(first).gpuModel, h100, "first node of the task's model");
        bytes32 d = _trueDigest(id);
        _commitText(id, first, d);
        _decide(id, true);
        verinfer.resolveSample(id);
        VM.recordLogs();
        _drawFresh();
        (bool found, address[2] memory checkers,) = _findCheckStarted(VM.getRecordedLogs(), id);
        VM.assertTrue(found, "check started");
        for (uint256 i; i < 2; ++i) {
            VM.assertEq(_ext().getNode(checkers[i]).gpuModel, h100, "checker of the task's model");
            VM.assertNotEq(checkers[i], first, "checker is not the first node");
        }
        address[3] memory n = _nodesOf(id);
        _commitText(id, n[1], d);
        _commitText(id, n[2], d);
        _revealText(id, n[0], d);
        _revealText(id, n[1], d);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.TaskSettled(
            id, IVerinfer.TaskStatus.Validated, 7, _uint16s(0, 0, 0), THRESHOLD, _rewardPerNode(FEE, 3)
        );
        _revealText(id, n[2], d);
        _assertAccounting();
    }

    /// @notice A text check waits while its model has fewer than two other available nodes, even
    ///         when nodes of other models are idle, and starts once a node of its model is free.
    function test_Checked_TextCheckWaitsForItsModel() public {
        _makeNodes(0, 6, A100);
        address[] memory h100s = _makeNodes(6, 3, H100);
        uint256 id = _queueSampledText(H100, FEE);
        _drawFresh();
        address first = _nodesOf(id)[0];
        // Another H100 node leaves: only one other H100 remains.
        address gone = h100s[0] == first ? h100s[1] : h100s[0];
        VM.prank(gone);
        verinfer.leave();
        bytes32 d = _trueDigest(id);
        _commitText(id, first, d);
        _decide(id, true);
        verinfer.resolveSample(id);
        for (uint256 i; i < 3; ++i) {
            VM.assertEq(_drawFresh(), 0, "no check without two H100 checkers");
            _assertStatus(id, IVerinfer.TaskStatus.CheckQueued);
        }
        _join(_nodeAddr(100), H100, MIN_STAKE);
        VM.assertEq(_drawFresh(), 1, "check starts");
        address[3] memory n = _nodesOf(id);
        VM.assertEq(_ext().getNode(n[1]).gpuModel, _ext().gpuModelId(H100));
        VM.assertEq(_ext().getNode(n[2]).gpuModel, _ext().gpuModelId(H100));
    }

    /// @notice Checks wait ahead of new tasks: with four nodes, one busy as a first node, an older
    ///         queued full task (needs three) and a newer check (needs two) compete for the three
    ///         free nodes; the draw starts the check, the full task keeps waiting.
    function test_Checked_CheckServedBeforeOlderQueuedTask() public {
        _makeNodes(0, 4, H100);
        uint64[] memory h = _trueHashes(1, 1);
        (uint256 id, address first) = _awaitingSample(h);
        _nextBlock();
        _nextBlock();
        uint256 older = _queueImageTask(1, 0, FEE); // queued in this block, before the check
        IVerinfer.TaskInfo memory t = _ext().getTask(id);
        VM.setBlockhash(t.sampleBlock, _hashFor(id, true, SAMPLING_BPS));
        verinfer.resolveSample(id);
        _assertStatus(older, IVerinfer.TaskStatus.Queued);
        _assertStatus(id, IVerinfer.TaskStatus.CheckQueued);
        VM.assertEq(verinfer.queuedTasks(), 2, "both wait");
        VM.assertFalse(_ext().drawDue(), "this block drew already");
        _nextBlock();
        VM.assertTrue(_ext().drawDue(), "a draw is due in the next block");

        VM.recordLogs();
        VM.assertEq(_drawFresh(), 1, "one start");
        Vm.Log[] memory logs = VM.getRecordedLogs();
        (bool checkFound,,) = _findCheckStarted(logs, id);
        (bool olderFound,) = _findStarted(logs, older);
        VM.assertTrue(checkFound, "the check started");
        VM.assertFalse(olderFound, "the older task did not");
        _assertStatus(older, IVerinfer.TaskStatus.Queued);
        _assertStatus(id, IVerinfer.TaskStatus.Committing);
        VM.assertEq(_nodesOf(id)[0], first);

        // Once the check settles, the older task gets its three nodes.
        address[3] memory n = _nodesOf(id);
        _commitImage(id, n[1], h);
        _commitImage(id, n[2], h);
        for (uint256 i; i < 3; ++i) {
            _revealImage(id, n[i], h);
        }
        _drawFresh();
        _assertStatus(older, IVerinfer.TaskStatus.Committing);
        _assertAccounting();
    }

    /// @notice A check that finds no two checkers before its deadline expires: TaskExpired, the fee
    ///         refunded to the creator, the first node Available again, neither paid nor slashed.
    function test_Checked_ExpiresWithoutCheckersRefundsCreator() public {
        address[] memory all = _makeNodes(0, 3, H100); // a sampled task starts while two more could check it
        (uint256 id, address first) = _awaitingSample(_trueHashes(1, 1));
        VM.prank(all[0] == first ? all[1] : all[0]);
        verinfer.leave(); // one other node remains: no check
        _decide(id, true);
        verinfer.resolveSample(id);
        uint40 expiresAt = _ext().getTask(id).expiresAt;
        VM.assertEq(uint256(expiresAt), VM.getBlockTimestamp() + QUEUE_TIMEOUT);
        VM.assertEq(_drawFresh(), 0, "one other node: no check");
        VM.warp(uint256(expiresAt) - 1);
        VM.assertEq(_drawFresh(), 0);
        _assertStatus(id, IVerinfer.TaskStatus.CheckQueued);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.TaskNotExpired.selector, id, expiresAt));
        verinfer.expireTask(id);
        _assertAccounting();

        VM.warp(expiresAt);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.TaskExpired(id);
        _drawFresh();
        _assertStatus(id, IVerinfer.TaskStatus.Expired);
        VM.assertEq(verinfer.claimable(creator), FEE, "fee refunded");
        _assertNodeState(first, IVerinfer.NodeState.Available);
        VM.assertEq(_stakeOf(first), MIN_STAKE, "first node unpaid and unslashed");
        VM.assertEq(verinfer.claimable(first), 0);
        VM.assertEq(verinfer.treasuryBalance(), 0);
        VM.assertEq(verinfer.queuedTasks(), 0);
        VM.assertFalse(_ext().drawDue());
        _assertAccounting();
        _assertTokenAccounting();
    }

    /// @notice `expireTask` ends a starving check too (anyone, after its deadline); a first node
    ///         that had asked to leave is then credited its whole stake.
    function test_Checked_ExpireTaskReleasesLeavingFirstNode() public {
        address[] memory all = _makeNodes(0, 3, H100); // a sampled task starts while two more could check it
        (uint256 id, address first) = _awaitingSample(_trueHashes(1, 1));
        _leaveAllBut(all, first); // then no checker remains
        _decide(id, true);
        verinfer.resolveSample(id);
        VM.prank(first);
        verinfer.leave();
        VM.warp(_ext().getTask(id).expiresAt);
        VM.prank(stranger);
        verinfer.expireTask(id);
        _assertStatus(id, IVerinfer.TaskStatus.Expired);
        _assertNodeState(first, IVerinfer.NodeState.None);
        VM.assertEq(verinfer.claimable(first), MIN_STAKE, "whole stake credited");
        VM.assertEq(verinfer.claimable(creator), FEE, "fee refunded");
        _assertAccounting();
    }
}

/// @notice Sampled fee bounds, the sampling rate's validation, and the draw-time stake rule.
contract VerinferSampledEconomicsTest is SampledTestBase {
    /// @notice `sampledFeeRange` follows the design's formulas: minimum ceil(full * (1 + 2p) / 3),
    ///         maximum floor(p * s * minStake / ((1 - p) * BPS)), for images of 1..16 and text, under
    ///         the defaults and under other parameters (p = 100 %: no maximum).
    function test_SampledFeeRange_MatchesDesignFormulas() public {
        _checkRange(SAMPLING_BPS, SLASH_BPS, MIN_STAKE);
        // Concrete values at the defaults: 1 image: full 1.1 -> 0.44; max 55.55...
        (uint256 lo, uint256 hi) = _ext().sampledFeeRange(IMAGE, 1);
        VM.assertEq(lo, 0.44 ether, "1-image minimum at p = 10 %");
        VM.assertEq(hi, uint256(1000 * 5000) * 1000 ether / (9000 * 10_000), "maximum at p = 10 %");

        uint16[4] memory ps = [uint16(1), 333, 9999, 10_000];
        uint16[4] memory ss = [uint16(10_000), 1, 7777, 5000];
        for (uint256 i; i < 4; ++i) {
            IVerinfer.Params memory p = defaultParams();
            p.samplingBps = ps[i];
            p.slashShareBps = ss[i];
            p.minStake = uint96(3000 ether + i);
            p.minTaskFee = uint96(1 ether + 7 * i);
            p.minImageFee = uint96(0.3 ether + 3 * i);
            _setParams(p);
            _checkRange(ps[i], ss[i], p.minStake);
        }
        (, hi) = _ext().sampledFeeRange(TEXT, 0);
        VM.assertEq(hi, type(uint96).max, "p = 100 %: cheating is always caught");
    }

    function _checkRange(uint256 p, uint256 s, uint256 minStake) internal view {
        for (uint8 images; images <= 16; ++images) {
            IVerinfer.TaskKind kind = images == 0 ? TEXT : IMAGE;
            uint256 full = _ext().minTaskFee(kind, images);
            (uint256 lo, uint256 hi) = _ext().sampledFeeRange(kind, images);
            (uint256 eLo, uint256 eHi) = _expectedRange(full, p, s, minStake);
            VM.assertEq(lo, eLo, "sampled minimum");
            VM.assertEq(hi, eHi, "sampled maximum");
            VM.assertLe(lo, full, "sampled minimum never above the full one");
        }
    }

    /// @notice Fee bounds at creation: one wei under the sampled minimum reverts FeeBelowMinimum,
    ///         one wei over the maximum reverts FeeTooHighForSampling; both bounds are accepted and
    ///         TaskCreated says Sampled. (A sampled minimum is below the full one.)
    function test_CreateSampled_FeeBounds() public {
        (uint256 lo, uint256 hi) = _ext().sampledFeeRange(IMAGE, 2);
        VM.assertLt(lo, _ext().minTaskFee(IMAGE, 2));
        bytes32 argsHash = _nextArgsHash();
        VM.startPrank(creator);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.FeeBelowMinimum.selector, uint96(lo - 1), uint96(lo)));
        verinfer.createSampledTask(IMAGE, argsHash, 2, 0, "", uint96(lo - 1));
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.FeeTooHighForSampling.selector, uint96(hi + 1), uint96(hi)));
        verinfer.createSampledTask(IMAGE, argsHash, 2, 0, "", uint96(hi + 1));
        // The full mode has no such maximum.
        verinfer.createTask(IMAGE, argsHash, 2, 0, "", uint96(hi + 1));
        VM.expectEmit(address(verinfer));
        emit IVerinfer.TaskCreated(
            2, creator, IMAGE, argsHash, 2, 0, bytes32(0), uint96(lo), IVerinfer.ValidationMode.Sampled
        );
        uint256 a = verinfer.createSampledTask(IMAGE, argsHash, 2, 0, "", uint96(lo));
        uint256 b = verinfer.createSampledTask(IMAGE, argsHash, 2, 0, "", uint96(hi));
        VM.stopPrank();
        VM.assertEq(uint256(_ext().getTask(a).mode), uint256(IVerinfer.ValidationMode.Sampled));
        VM.assertEq(uint256(_ext().getTask(b).mode), uint256(IVerinfer.ValidationMode.Sampled));
        VM.assertEq(uint256(_ext().getTask(1).mode), uint256(IVerinfer.ValidationMode.Full));
        (uint256 tlo, uint256 thi) = _ext().sampledFeeRange(TEXT, 0);
        VM.prank(creator);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.FeeBelowMinimum.selector, uint96(tlo - 1), uint96(tlo)));
        verinfer.createSampledTask(TEXT, argsHash, 0, 0, H100, uint96(tlo - 1));
        VM.prank(creator);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.FeeTooHighForSampling.selector, uint96(thi + 1), uint96(thi)));
        verinfer.createSampledTask(TEXT, argsHash, 0, 0, H100, uint96(thi + 1));
        _assertAccounting();
    }

    /// @notice The owner cannot set a sampling rate of 0 (no task ever checked) or above 100 %:
    ///         InvalidSamplingBps; 1 and 10,000 are accepted.
    function test_ScheduleParams_RejectsInvalidSamplingBps() public {
        IVerinfer.Params memory p = defaultParams();
        p.samplingBps = 0;
        VM.prank(owner);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.InvalidSamplingBps.selector, uint16(0)));
        _ext().scheduleParams(p);
        p.samplingBps = 10_001;
        VM.prank(owner);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.InvalidSamplingBps.selector, uint16(10_001)));
        _ext().scheduleParams(p);
        p.samplingBps = type(uint16).max;
        VM.prank(owner);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.InvalidSamplingBps.selector, type(uint16).max));
        _ext().scheduleParams(p);
        p.samplingBps = 1;
        _scheduleParams(p);
        p.samplingBps = 10_000;
        _setParams(p);
        VM.assertEq(_ext().params().samplingBps, 10_000);
    }

    /// @notice Draw-time stake rule: after the owner lowers minStake, nodes whose stake is below
    ///         what a queued sampled task's fee needs (p * s * stake >= (1 - p) * fee: 900 tokens
    ///         for a fee of 50 at p = 10 %, s = 50 %) are never drawn as its first node, whatever
    ///         the seed, while a node staking exactly 900 is; the same nodes do serve a full task.
    function test_DrawStakeRule_UnderStakedNodeNeverFirstNode() public {
        IVerinfer.Params memory p = defaultParams();
        p.queueTimeout = 30 days;
        _setParams(p);
        uint96 fee = 50 ether;
        uint256[] memory ids = new uint256[](3);
        for (uint256 i; i < 3; ++i) {
            ids[i] = _queueSampledImage(fee);
        }
        p.minStake = 100 ether;
        p.stakePerThresholdBit = 10 ether;
        _setParams(p);
        VM.assertFalse(_cheatingUnprofitable(900 ether - 1, fee, SAMPLING_BPS, SLASH_BPS), "899.99.. fails");
        VM.assertTrue(_cheatingUnprofitable(900 ether, fee, SAMPLING_BPS, SLASH_BPS), "900 passes");
        address[3] memory poor = [_nodeAddr(0), _nodeAddr(1), _nodeAddr(2)];
        _join(poor[0], H100, 100 ether);
        _join(poor[1], H100, 500 ether);
        _join(poor[2], H100, 900 ether - 1);
        address rich = _nodeAddr(3);
        _join(rich, H100, 900 ether);

        for (uint256 k; k < 3; ++k) {
            // Several draws with fresh seeds: exactly one task runs, always on the rich node.
            for (uint256 d; d < 4; ++d) {
                _drawFresh();
                for (uint256 j; j < 3; ++j) {
                    _assertNodeState(poor[j], IVerinfer.NodeState.Available);
                }
            }
            uint256 id = ids[k];
            _assertStatus(id, IVerinfer.TaskStatus.Committing);
            VM.assertEq(_nodesOf(id)[0], rich, "only the node staking enough is drawn");
            for (uint256 j = k + 1; j < 3; ++j) {
                _assertStatus(ids[j], IVerinfer.TaskStatus.Queued);
            }
            uint64[] memory h = _trueHashes(id, 1);
            _commitImage(id, rich, h);
            _decide(id, false);
            _revealImage(id, rich, h);
            _assertStatus(id, IVerinfer.TaskStatus.Validated);
        }
        // The under-staked nodes are eligible otherwise: a full task starts on them.
        _join(_nodeAddr(4), H100, 100 ether);
        VM.prank(rich);
        verinfer.leave();
        uint256 full = _queueImageTask(1, 0, FEE);
        _drawFresh();
        _assertStatus(full, IVerinfer.TaskStatus.Committing);
        _assertAccounting();
    }

    /// @notice When every available node stakes too little for a queued sampled task's fee, the
    ///         task waits (no node is drawn, none is evicted) and starts once a node staking enough
    ///         joins.
    function test_DrawStakeRule_TaskWaitsForEnoughStake() public {
        IVerinfer.Params memory p = defaultParams();
        p.queueTimeout = 30 days;
        _setParams(p);
        uint256 id = _queueSampledImage(50 ether);
        p.minStake = 100 ether;
        p.stakePerThresholdBit = 10 ether;
        _setParams(p);
        address[] memory poor = new address[](6);
        for (uint256 i; i < 6; ++i) {
            poor[i] = _nodeAddr(i);
            _join(poor[i], H100, uint96(100 ether + 100 ether * i));
        }
        for (uint256 d; d < 5; ++d) {
            VM.assertEq(_drawFresh(), 0, "no node may take it");
        }
        _assertStatus(id, IVerinfer.TaskStatus.Queued);
        for (uint256 i; i < 6; ++i) {
            _assertNodeState(poor[i], IVerinfer.NodeState.Available);
        }
        _join(_nodeAddr(9), H100, 1000 ether);
        for (uint256 d; d < 20 && _status(id) == IVerinfer.TaskStatus.Queued; ++d) {
            _drawFresh(); // up to four rejections per draw: the rich node may need a few seeds
        }
        _assertStatus(id, IVerinfer.TaskStatus.Committing);
        VM.assertEq(_nodesOf(id)[0], _nodeAddr(9));
        _assertAccounting();
    }

    /// @notice FUZZ: for random p, s, minStake and fee, either `createSampledTask` refuses the task,
    ///         or every node the draw may hand it to as first node — also after the owner lowered
    ///         minStake and nodes with random stakes joined — satisfies p * s * stake >= (1 - p) * fee,
    ///         i.e. cheating's expected value (1 - p) * fee - p * s * stake is at most zero.
    function testFuzz_refusesEverySampledTaskWhereCheatingPays(
        uint256 pRaw,
        uint256 sRaw,
        uint256 minStakeRaw,
        uint256 feeRaw,
        uint256 lowMinRaw,
        uint256 seed
    ) public {
        uint256 ps = _bound(pRaw, 1, BPS);
        uint256 ss = _bound(sRaw, 1, BPS);
        IVerinfer.Params memory p = defaultParams();
        p.samplingBps = uint16(ps);
        p.slashShareBps = uint16(ss);
        p.minStake = uint96(_bound(minStakeRaw, 1 ether, 1e9 ether));
        p.stakePerThresholdBit = 0;
        p.queueTimeout = 30 days;
        _setParams(p);

        (uint256 lo, uint256 hi) = _expectedRange(_ext().minTaskFee(IMAGE, 1), ps, ss, p.minStake);
        uint256 span = hi > type(uint96).max / 4 ? type(uint96).max / 4 : hi;
        uint96 fee = uint96(_bound(feeRaw, 0, 2 * (span > lo ? span : lo) + 1));
        _fund(creator, fee);
        bytes32 argsHash = _nextArgsHash();
        VM.prank(creator);
        try verinfer.createSampledTask(IMAGE, argsHash, 1, 0, "", fee) returns (uint256 id) {
            VM.assertGe(fee, lo, "created: fee >= sampled minimum");
            VM.assertLe(fee, hi, "created: fee <= maximum");
            VM.assertTrue(
                _cheatingUnprofitable(p.minStake, fee, ps, ss), "created: a node at the task's minStake may take it"
            );
            _runDraws(id, p, fee, lowMinRaw, seed);
        } catch (bytes memory err) {
            bytes4 sel = bytes4(err);
            if (sel == IVerinfer.FeeBelowMinimum.selector) {
                VM.assertLt(fee, lo, "refused as too cheap only below the minimum");
            } else {
                VM.assertEq(sel, IVerinfer.FeeTooHighForSampling.selector, "refused for the fee");
                VM.assertGt(fee, hi, "refused as too high only above the maximum");
                VM.assertFalse(_cheatingUnprofitable(p.minStake, fee, ps, ss), "cheating would pay at minStake");
            }
        }
    }

    function _runDraws(uint256 id, IVerinfer.Params memory p, uint96 fee, uint256 lowMinRaw, uint256 seed) internal {
        uint96 taskMinStake = p.minStake;
        p.minStake = uint96(_bound(lowMinRaw, 1, taskMinStake));
        _setParams(p);
        for (uint256 i; i < 5; ++i) {
            uint256 r = uint256(keccak256(abi.encode(seed, i)));
            uint96 stake = uint96(_bound(r, p.minStake, uint256(taskMinStake) * 2));
            _join(_nodeAddr(i), H100, stake);
        }
        for (uint256 d; d < 4; ++d) {
            _drawFresh();
            if (_status(id) != IVerinfer.TaskStatus.Queued) break;
        }
        if (_status(id) == IVerinfer.TaskStatus.Queued) return;
        _assertStatus(id, IVerinfer.TaskStatus.Committing);
        uint256 stakeOfFirst = _stakeOf(_nodesOf(id)[0]);
        // Expected value of cheating, in token-bps^2: gain (1 - p) * fee, loss p * s * stake.
        int256 gain = int256((BPS - uint256(p.samplingBps)) * uint256(BPS) * fee);
        int256 loss = int256(uint256(p.samplingBps) * p.slashShareBps * stakeOfFirst);
        VM.assertTrue(gain <= loss, "drawn first node: cheating has positive expected value");
        _assertAccounting();
    }

    /// @notice FUZZ (statistical): over 600 random sample-block hashes the share of checked draws
    ///         follows p: within six standard deviations of 600 * p, for random p.
    function testFuzz_checkFrequencyFollowsSamplingRate(uint256 pRaw, uint256 salt) public {
        uint256 ps = _bound(pRaw, 1, BPS);
        IVerinfer.Params memory p = defaultParams();
        p.samplingBps = uint16(ps);
        p.minStake = 1e6 ether;
        _setParams(p);
        for (uint256 i; i < 3; ++i) {
            _join(_nodeAddr(i), H100, p.minStake); // a sampled task starts while two more could check it
        }
        (uint256 lo,) = _ext().sampledFeeRange(IMAGE, 1);
        (uint256 id, address first) = _startSampledImage(uint96(lo));
        _commitImage(id, first, _trueHashes(id, 1));
        uint256 sampleBlock = _ext().getTask(id).sampleBlock;
        _nextBlock();
        _nextBlock();
        uint256 n = 600;
        uint256 checked;
        for (uint256 i; i < n; ++i) {
            bytes32 h = keccak256(abi.encode(salt, i));
            VM.setBlockhash(sampleBlock, h);
            (bool decidable, bool c) = _ext().sampleDecision(id);
            VM.assertTrue(decidable);
            VM.assertEq(c, h == bytes32(0) || _isChecked(h, id, uint16(ps)), "decision follows the hash");
            if (c) ++checked;
        }
        // In units of 1/BPS of a check, so that a small p's mean and deviation (0.6 and 0.77 checks
        // at p = 0.1 %) are not floored to 0: mean + 6 sd + 2 checks is a tail below 1e-6.
        uint256 meanScaled = n * ps;
        uint256 sdScaled = _sqrt(n * ps * (BPS - ps));
        uint256 tolScaled = 6 * sdScaled + 2 * uint256(BPS);
        VM.assertLe(checked * BPS, meanScaled + tolScaled, "not checked far more often than p");
        VM.assertGe(checked * BPS + tolScaled, meanScaled, "not checked far less often than p");
    }

    function _sqrt(uint256 x) internal pure returns (uint256 y) {
        if (x == 0) return 0;
        y = x;
        uint256 z = (x + 1) / 2;
        while (z < y) {
            y = z;
            z = (x / z + z) / 2;
        }
    }
}
