// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IVerinfer} from "../src/interfaces/IVerinfer.sol";
import {VerinferExtension} from "../src/VerinferExtension.sol";
import {VM} from "./Vm.sol";
import {VerinferTestBase} from "./utils/VerinferTestBase.sol";

/// @notice Commit and reveal phases, their transitions and every revert on the way.
contract VerinferCommitRevealTest is VerinferTestBase {
    uint256 internal imageTask;
    uint256 internal textTask;
    address[3] internal imageNodes;
    address[3] internal textNodes;
    uint64[] internal result;

    function setUp() public override {
        super.setUp();
        _makeNodes(0, 3, H100);
        _makeNodes(3, 3, RTX4090);
        textTask = _createTextTask(RTX4090, 0, FEE);
        imageTask = _createImageTask(3, 0, FEE);
        imageNodes = _nodesOf(imageTask);
        textNodes = _nodesOf(textTask);
        result = _trueHashes(imageTask, 3);
    }

    // ================================================================ commit

    function test_Commit_RecordsAndEmits() public {
        address node = imageNodes[1];
        bytes32 c = _imageCommitment(imageTask, node, result, _salt(node, imageTask));
        VM.expectEmit(address(verinfer));
        emit IVerinfer.ResultCommitted(imageTask, node, c);
        VM.prank(node);
        verinfer.commit(imageTask, c);
        IVerinfer.TaskInfo memory t = _ext().getTask(imageTask);
        VM.assertEq(t.committedMask, 2, "slot 1 committed");
        VM.assertEq(uint256(t.status), uint256(IVerinfer.TaskStatus.Committing));
    }

    function test_Commit_AllThreeOpenRevealPhase() public {
        _commitImage(imageTask, imageNodes[0], result);
        _commitImage(imageTask, imageNodes[1], result);
        VM.warp(VM.getBlockTimestamp() + 100);
        address last = imageNodes[2];
        bytes32 c = _imageCommitment(imageTask, last, result, _salt(last, imageTask));
        uint32 revealDeadline = uint32(VM.getBlockTimestamp()) + REVEAL_WINDOW;
        VM.expectEmit(address(verinfer));
        emit IVerinfer.ResultCommitted(imageTask, last, c);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.RevealPhaseOpened(imageTask, revealDeadline);
        VM.prank(last);
        verinfer.commit(imageTask, c);
        IVerinfer.TaskInfo memory t = _ext().getTask(imageTask);
        VM.assertEq(uint256(t.status), uint256(IVerinfer.TaskStatus.Revealing));
        VM.assertEq(t.committedMask, 7);
        VM.assertEq(t.revealDeadline, revealDeadline, "reveal window runs from the last commit");
    }

    function test_Commit_RevertsOutsideCommitPhase() public {
        // Unknown task.
        VM.prank(imageNodes[0]);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.NotInCommitPhase.selector, 99));
        verinfer.commit(99, bytes32(uint256(1)));
        // Queued task.
        uint256 queued = _createImageTask();
        _assertStatus(queued, IVerinfer.TaskStatus.Queued);
        VM.prank(imageNodes[0]);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.NotInCommitPhase.selector, queued));
        verinfer.commit(queued, bytes32(uint256(1)));
        // Commit deadline passed (the deadline second itself is still open).
        VM.warp(_ext().getTask(imageTask).commitDeadline);
        _commitImage(imageTask, imageNodes[0], result);
        VM.warp(VM.getBlockTimestamp() + 1);
        bytes32 c = _imageCommitment(imageTask, imageNodes[1], result, _salt(imageNodes[1], imageTask));
        VM.prank(imageNodes[1]);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.NotInCommitPhase.selector, imageTask));
        verinfer.commit(imageTask, c);
    }

    function test_Commit_RevertsInRevealPhase() public {
        _commitAllImage(imageTask, result);
        VM.prank(imageNodes[0]);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.NotInCommitPhase.selector, imageTask));
        verinfer.commit(imageTask, bytes32(uint256(1)));
    }

    function test_Commit_RevertsOnZeroCommitment() public {
        VM.prank(imageNodes[0]);
        VM.expectRevert(IVerinfer.ZeroCommitment.selector);
        verinfer.commit(imageTask, bytes32(0));
    }

    function test_Commit_RevertsForNonSelectedCaller() public {
        // A stranger, and a registered node of another task.
        VM.prank(stranger);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.NotSelected.selector, imageTask, stranger));
        verinfer.commit(imageTask, bytes32(uint256(1)));
        VM.prank(textNodes[0]);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.NotSelected.selector, imageTask, textNodes[0]));
        verinfer.commit(imageTask, bytes32(uint256(1)));
    }

    function test_Commit_RevertsOnSecondCommit() public {
        _commitImage(imageTask, imageNodes[0], result);
        VM.prank(imageNodes[0]);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.AlreadyCommitted.selector, imageTask, imageNodes[0]));
        verinfer.commit(imageTask, bytes32(uint256(2)));
    }

    // ================================================================ reveal

    function test_RevealImage_RecordsAndEmits() public {
        _commitAllImage(imageTask, result);
        address node = imageNodes[0];
        bytes32 salt = _salt(node, imageTask);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.ImageResultRevealed(imageTask, node, result);
        VM.prank(node);
        verinfer.revealImage(imageTask, result, salt);
        IVerinfer.TaskInfo memory t = _ext().getTask(imageTask);
        VM.assertEq(t.revealedMask, 1);
        VM.assertEq(uint256(t.status), uint256(IVerinfer.TaskStatus.Revealing), "two reveals outstanding");
    }

    function test_RevealText_RecordsAndEmits() public {
        bytes32 d = _trueDigest(textTask);
        for (uint256 i; i < 3; ++i) {
            _commitText(textTask, textNodes[i], d);
        }
        bytes32 salt = _salt(textNodes[2], textTask);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.TextResultRevealed(textTask, textNodes[2], d);
        VM.prank(textNodes[2]);
        verinfer.revealText(textTask, d, salt);
        VM.assertEq(_ext().getTask(textTask).revealedMask, 4);
    }

    function test_Reveal_RevertsOnWrongKind() public {
        _commitAllImage(imageTask, result);
        VM.prank(imageNodes[0]);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.WrongResultKind.selector, imageTask, IMAGE));
        verinfer.revealText(imageTask, bytes32(uint256(1)), bytes32(0));
        VM.prank(textNodes[0]);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.WrongResultKind.selector, textTask, TEXT));
        verinfer.revealImage(textTask, result, bytes32(0));
    }

    function test_Reveal_RevertsOnWrongImageCount() public {
        _commitAllImage(imageTask, result);
        uint64[] memory two = new uint64[](2);
        VM.prank(imageNodes[0]);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.WrongImageCount.selector, imageTask, 3, 2));
        verinfer.revealImage(imageTask, two, _salt(imageNodes[0], imageTask));
    }

    function test_Reveal_RevertsBeforeRevealPhase() public {
        _commitImage(imageTask, imageNodes[0], result);
        bytes32 salt = _salt(imageNodes[0], imageTask);
        VM.prank(imageNodes[0]);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.NotInRevealPhase.selector, imageTask));
        verinfer.revealImage(imageTask, result, salt);
        // Unknown and queued tasks are never in a reveal phase.
        uint64[] memory none = new uint64[](0);
        VM.prank(imageNodes[0]);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.NotInRevealPhase.selector, 99));
        verinfer.revealImage(99, none, salt);
    }

    function test_Reveal_RevertsAfterRevealDeadline() public {
        _commitAllImage(imageTask, result);
        uint32 deadline = _ext().getTask(imageTask).revealDeadline;
        VM.warp(deadline);
        _revealImage(imageTask, imageNodes[0], result); // the deadline second is still open
        VM.warp(deadline + 1);
        bytes32 salt = _salt(imageNodes[1], imageTask);
        VM.prank(imageNodes[1]);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.NotInRevealPhase.selector, imageTask));
        verinfer.revealImage(imageTask, result, salt);
    }

    function test_Reveal_RevertsAfterSettlement() public {
        _runHonestImageTask(imageTask);
        bytes32 salt = _salt(imageNodes[0], imageTask);
        VM.prank(imageNodes[0]);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.NotInRevealPhase.selector, imageTask));
        verinfer.revealImage(imageTask, result, salt);
    }

    function test_Reveal_RevertsForNonSelectedCaller() public {
        _commitAllImage(imageTask, result);
        VM.prank(stranger);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.NotSelected.selector, imageTask, stranger));
        verinfer.revealImage(imageTask, result, bytes32(0));
    }

    function test_Reveal_RevertsWithoutCommit() public {
        _commitImage(imageTask, imageNodes[0], result);
        _commitImage(imageTask, imageNodes[1], result);
        VM.warp(_ext().getTask(imageTask).commitDeadline + 1);
        bytes32 salt = _salt(imageNodes[2], imageTask);
        VM.prank(imageNodes[2]);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.NotCommitted.selector, imageTask, imageNodes[2]));
        verinfer.revealImage(imageTask, result, salt);
    }

    function test_Reveal_RevertsOnSecondReveal() public {
        _commitAllImage(imageTask, result);
        _revealImage(imageTask, imageNodes[0], result);
        bytes32 salt = _salt(imageNodes[0], imageTask);
        VM.prank(imageNodes[0]);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.AlreadyRevealed.selector, imageTask, imageNodes[0]));
        verinfer.revealImage(imageTask, result, salt);
    }

    function test_Reveal_RevertsOnMismatch() public {
        _commitAllImage(imageTask, result);
        uint64[] memory other = _hashes(result[0], result[1], result[2] ^ 1);
        bytes32 salt = _salt(imageNodes[0], imageTask);
        VM.prank(imageNodes[0]);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.CommitmentMismatch.selector, imageTask, imageNodes[0]));
        verinfer.revealImage(imageTask, other, salt);
    }

    function test_ReportInvalidArgs_RevertsOnUnknownTaskAndMismatch() public {
        VM.prank(imageNodes[0]);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.UnknownTask.selector, 99));
        verinfer.reportInvalidArgs(99, bytes32(0));
        // Committed a result, not the invalid-args marker.
        _commitAllImage(imageTask, result);
        bytes32 salt = _salt(imageNodes[0], imageTask);
        VM.prank(imageNodes[0]);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.CommitmentMismatch.selector, imageTask, imageNodes[0]));
        verinfer.reportInvalidArgs(imageTask, salt);
    }

    function test_ReportInvalidArgs_Emits() public {
        _commitInvalid(imageTask, imageNodes[0]);
        _commitImage(imageTask, imageNodes[1], result);
        _commitImage(imageTask, imageNodes[2], result);
        bytes32 salt = _salt(imageNodes[0], imageTask);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.InvalidArgsReported(imageTask, imageNodes[0]);
        VM.prank(imageNodes[0]);
        verinfer.reportInvalidArgs(imageTask, salt);
        IVerinfer.TaskInfo memory t = _ext().getTask(imageTask);
        VM.assertEq(t.invalidMask, 1);
        VM.assertEq(t.revealedMask, 1);
    }

    function test_CommitmentViewsMatchTheFormula() public view {
        bytes32 salt = keccak256("s");
        VM.assertEq(
            _ext().imageCommitment(imageTask, imageNodes[0], result, salt),
            _imageCommitment(imageTask, imageNodes[0], result, salt)
        );
        VM.assertEq(
            _ext().textCommitment(textTask, textNodes[0], bytes32(uint256(5)), salt),
            _textCommitment(textTask, textNodes[0], bytes32(uint256(5)), salt)
        );
        VM.assertEq(verinfer.INVALID_ARGS(), keccak256("verinfer.invalid-args.v1"));
    }

    // ================================================================ phase transitions after the commit deadline

    /// @dev Two commit, the deadline passes: the two reveal (status still Committing) and the
    ///      second reveal settles at once; the node that never committed is slashed.
    function test_CommitDeadlinePassed_RevealsOpenAndLastRevealSettles() public {
        _commitImage(imageTask, imageNodes[0], result);
        _commitImage(imageTask, imageNodes[2], result);
        VM.warp(_ext().getTask(imageTask).commitDeadline + 1);
        _assertStatus(imageTask, IVerinfer.TaskStatus.Committing);
        _revealImage(imageTask, imageNodes[0], result);
        _assertStatus(imageTask, IVerinfer.TaskStatus.Committing);
        uint96 slashed = MIN_STAKE * SLASH_BPS / BPS;
        bytes32 salt = _salt(imageNodes[2], imageTask);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.NodeSlashed(imageNodes[1], imageTask, IVerinfer.SlashReason.MissedCommit, slashed);
        VM.prank(imageNodes[2]);
        verinfer.revealImage(imageTask, result, salt);
        _assertStatus(imageTask, IVerinfer.TaskStatus.Validated);
        _assertNodeState(imageNodes[1], IVerinfer.NodeState.Kicked);
    }

    // ================================================================ settle

    function test_Settle_RevertsWhenNotSettleable() public {
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.NotSettleable.selector, 99, IVerinfer.TaskStatus.None));
        verinfer.settle(99);
        uint256 queued = _createImageTask();
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.NotSettleable.selector, queued, IVerinfer.TaskStatus.Queued));
        verinfer.settle(queued);
        _runHonestImageTask(imageTask);
        VM.expectRevert(
            abi.encodeWithSelector(IVerinfer.NotSettleable.selector, imageTask, IVerinfer.TaskStatus.Validated)
        );
        verinfer.settle(imageTask);
    }

    function test_Settle_RevertsTooEarly() public {
        // Committing, before the commit deadline.
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.SettleTooEarly.selector, imageTask));
        verinfer.settle(imageTask);
        // Revealing, a node has not revealed, the reveal deadline has not passed.
        bytes32 d = _trueDigest(textTask);
        for (uint256 i; i < 3; ++i) {
            _commitText(textTask, textNodes[i], d);
        }
        _revealText(textTask, textNodes[0], d);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.SettleTooEarly.selector, textTask));
        verinfer.settle(textTask);
        // Committing after the commit deadline, a committed node has not revealed yet.
        _commitImage(imageTask, imageNodes[0], result);
        VM.warp(_ext().getTask(imageTask).commitDeadline + 1);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.SettleTooEarly.selector, imageTask));
        verinfer.settle(imageTask);
        // At the reveal deadline itself it is still too early; one second later it settles.
        VM.warp(_ext().getTask(imageTask).revealDeadline);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.SettleTooEarly.selector, imageTask));
        verinfer.settle(imageTask);
        VM.warp(VM.getBlockTimestamp() + 1);
        verinfer.settle(imageTask);
        _assertStatus(imageTask, IVerinfer.TaskStatus.Aborted);
    }

    /// @dev Nobody committed: settleable right after the commit deadline; all three slashed.
    function test_Settle_NobodyCommitted() public {
        VM.warp(_ext().getTask(imageTask).commitDeadline + 1);
        uint256 before = token.balanceOf(creator);
        VM.recordLogs();
        VM.prank(stranger);
        verinfer.settle(imageTask);
        Settled memory s = _findSettled(VM.getRecordedLogs(), imageTask);
        VM.assertTrue(s.found);
        VM.assertEq(uint256(s.outcome), uint256(IVerinfer.TaskStatus.Aborted));
        VM.assertEq(s.agreeingMask, 0);
        for (uint256 i; i < s.distances.length; ++i) {
            VM.assertEq(s.distances[i], verinfer.NO_RESULT());
        }
        for (uint256 i; i < 3; ++i) {
            _assertNodeState(imageNodes[i], IVerinfer.NodeState.Kicked);
            VM.assertEq(verinfer.claimable(imageNodes[i]), MIN_STAKE - _slashOf(MIN_STAKE), "rest credited");
        }
        // Nobody agreed: the creator is credited its fee and the slash reward.
        uint256 slashReward = (3 * uint256(_slashOf(MIN_STAKE)) * SLASH_REWARD_BPS) / BPS;
        VM.assertEq(token.balanceOf(creator), before, "settlement transfers nothing");
        VM.assertEq(verinfer.claimable(creator), FEE + slashReward, "fee refunded and slash reward");
        _assertTokenAccounting();
    }

    function test_Settle_AfterRevealDeadlineSlashesMissedReveal() public {
        _commitAllImage(imageTask, result);
        _revealImage(imageTask, imageNodes[0], result);
        _revealImage(imageTask, imageNodes[1], result);
        VM.warp(_ext().getTask(imageTask).revealDeadline + 1);
        uint96 slashed = MIN_STAKE * SLASH_BPS / BPS;
        VM.expectEmit(address(verinfer));
        emit IVerinfer.NodeSlashed(imageNodes[2], imageTask, IVerinfer.SlashReason.MissedReveal, slashed);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.NodeKicked(imageNodes[2], imageTask, MIN_STAKE - slashed);
        verinfer.settle(imageTask);
        _assertStatus(imageTask, IVerinfer.TaskStatus.Validated);
        VM.assertEq(verinfer.claimable(imageNodes[2]), MIN_STAKE - slashed, "remaining stake credited");
        VM.assertEq(_withdraw(imageNodes[2]), MIN_STAKE - slashed);
        VM.assertEq(token.balanceOf(imageNodes[2]), MIN_STAKE - slashed, "remaining stake returned");
        _assertTokenAccounting();
    }
}
