// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IVerinfer} from "../src/interfaces/IVerinfer.sol";
import {VerinferExtension} from "../src/VerinferExtension.sol";
import {GpuModels} from "../src/libraries/GpuModels.sol";
import {VM, Vm} from "./Vm.sol";
import {VerinferTestBase} from "./utils/VerinferTestBase.sol";

/// @notice Task creation, draws (node selection in a later block), per-class queues, cancel and expiry.
contract VerinferTasksTest is VerinferTestBase {
    /// @dev FEE (10 ether) against the default minimums (1 ether + 0.1 ether per image) pays for fee
    ///      tier 3 (8x the minimum) for the image counts used here.
    uint8 internal constant FEE_LEVEL = 3;

    // ================================================================ create and start

    function test_CreateImageTask_QueuesThenStartsInALaterBlock() public {
        _makeNodes(0, 5, H100);
        bytes32 argsHash = keccak256("args");
        uint256 createdAt = VM.getBlockNumber();
        uint256 creatorBefore = token.balanceOf(creator);

        VM.expectEmit(address(verinfer));
        emit IVerinfer.TaskCreated(1, creator, IMAGE, argsHash, 2, 4096, bytes32(0), FEE, IVerinfer.ValidationMode.Full);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.TaskQueued(1, _imageQueueKey(0, FEE_LEVEL));
        VM.prank(creator);
        uint256 taskId = verinfer.createTask(IMAGE, argsHash, 2, 4096, "", FEE);

        VM.assertEq(taskId, 1);
        VM.assertEq(verinfer.taskCount(), 1);
        VM.assertEq(token.balanceOf(creator), creatorBefore - FEE, "fee escrowed");
        VM.assertEq(token.balanceOf(address(verinfer)), 5 * uint256(MIN_STAKE) + FEE);
        IVerinfer.TaskInfo memory t = _ext().getTask(taskId);
        VM.assertEq(uint256(t.status), uint256(IVerinfer.TaskStatus.Queued), "createTask never starts a task");
        VM.assertEq(t.nodes[0], address(0));
        VM.assertEq(t.feeLevel, FEE_LEVEL);
        VM.assertEq(t.paramsVersion, 1);
        VM.assertEq(t.expiresAt, VM.getBlockTimestamp() + QUEUE_TIMEOUT);
        // Nothing draws again in the creating block.
        VM.assertFalse(_ext().drawDue(), "no draw due in the creating block");
        VM.assertEq(verinfer.drawTasks(), 0);
        _assertStatus(taskId, IVerinfer.TaskStatus.Queued);

        // The first call of a later block draws. Learn the selection, rewind, and expect exactly it.
        VM.warp(VM.getBlockTimestamp() + 12);
        _nextBlock();
        VM.assertTrue(_ext().drawDue());
        uint256 snap = VM.snapshotState();
        verinfer.drawTasks();
        address[3] memory picked = _nodesOf(taskId);
        VM.revertToState(snap);

        uint32 commitDeadline = uint32(VM.getBlockTimestamp()) + COMMIT_WINDOW;
        uint32 revealDeadline = commitDeadline + REVEAL_WINDOW;
        VM.expectEmit(address(verinfer));
        emit IVerinfer.TaskStarted(1, picked, commitDeadline, revealDeadline, createdAt);
        VM.prank(stranger);
        VM.assertEq(verinfer.drawTasks(), 1, "anybody's call starts it");

        t = _ext().getTask(taskId);
        VM.assertEq(t.creator, creator);
        VM.assertEq(uint256(t.kind), uint256(IMAGE));
        VM.assertEq(uint256(t.status), uint256(IVerinfer.TaskStatus.Committing));
        VM.assertEq(t.imageCount, 2);
        VM.assertEq(t.minVramMiB, 4096);
        VM.assertEq(t.argsHash, argsHash);
        VM.assertEq(t.gpuModel, bytes32(0));
        VM.assertEq(t.fee, FEE);
        VM.assertEq(t.commitDeadline, commitDeadline, "deadlines count from the start");
        VM.assertEq(t.revealDeadline, revealDeadline);
        VM.assertEq(t.committedMask, 0);
        VM.assertEq(t.revealedMask, 0);
        for (uint256 i; i < 3; ++i) {
            VM.assertEq(t.nodes[i], picked[i]);
            IVerinfer.NodeInfo memory n = _ext().getNode(picked[i]);
            VM.assertEq(uint256(n.state), uint256(IVerinfer.NodeState.Busy));
            VM.assertEq(n.taskId, taskId);
        }
        VM.assertEq(_ext().availableNodes(bytes32(0), 0), 2, "three nodes left the pool");
        VM.assertEq(verinfer.queuedTasks(), 0);
        VM.assertFalse(_ext().drawDue());
    }

    function test_CreateTask_RevertsOnBadInput() public {
        uint96 imageMin = MIN_TASK_FEE + MIN_IMAGE_FEE;
        VM.startPrank(creator);
        VM.expectRevert(IVerinfer.ZeroArgsHash.selector);
        verinfer.createTask(IMAGE, bytes32(0), 1, 0, "", FEE);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.InvalidImageCount.selector, IMAGE, uint8(0)));
        verinfer.createTask(IMAGE, keccak256("a"), 0, 0, "", FEE);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.InvalidImageCount.selector, IMAGE, uint8(17)));
        verinfer.createTask(IMAGE, keccak256("a"), 17, 0, "", FEE);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.InvalidImageCount.selector, TEXT, uint8(1)));
        verinfer.createTask(TEXT, keccak256("a"), 1, 0, H100, FEE);
        VM.expectRevert(IVerinfer.GpuModelNotAllowedForImages.selector);
        verinfer.createTask(IMAGE, keccak256("a"), 1, 0, H100, FEE);
        // Image tasks need some registered model with the VRAM.
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.NoGpuModelFits.selector, VRAM_80G + 1));
        verinfer.createTask(IMAGE, keccak256("a"), 1, VRAM_80G + 1, "", FEE);
        // Text tasks must name a registered model that has the VRAM.
        VM.expectRevert(IVerinfer.GpuModelRequiredForText.selector);
        verinfer.createTask(TEXT, keccak256("a"), 0, 0, "", FEE);
        VM.expectRevert(GpuModels.EmptyGpuModel.selector);
        verinfer.createTask(TEXT, keccak256("a"), 0, 0, "   ", FEE);
        VM.expectRevert(abi.encodeWithSelector(GpuModels.InvalidGpuModelCharacter.selector, 1, bytes1(0x00)));
        verinfer.createTask(TEXT, keccak256("a"), 0, 0, "H\x00", FEE);
        VM.expectRevert(
            abi.encodeWithSelector(IVerinfer.GpuModelNotRegistered.selector, _ext().gpuModelId("NVIDIA B200"))
        );
        verinfer.createTask(TEXT, keccak256("a"), 0, 0, "NVIDIA B200", FEE);
        VM.expectRevert(
            abi.encodeWithSelector(
                IVerinfer.GpuModelLacksVram.selector, _ext().gpuModelId(RTX4090), VRAM_24G, VRAM_24G + 1
            )
        );
        verinfer.createTask(TEXT, keccak256("a"), 0, VRAM_24G + 1, RTX4090, FEE);
        // Fees below the minimum (per task, plus per image).
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.FeeBelowMinimum.selector, imageMin - 1, imageMin));
        verinfer.createTask(IMAGE, keccak256("a"), 1, 0, "", imageMin - 1);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.FeeBelowMinimum.selector, MIN_TASK_FEE - 1, MIN_TASK_FEE));
        verinfer.createTask(TEXT, keccak256("a"), 0, 0, H100, MIN_TASK_FEE - 1);
        VM.expectRevert(
            abi.encodeWithSelector(
                IVerinfer.FeeBelowMinimum.selector,
                MIN_TASK_FEE + 16 * MIN_IMAGE_FEE - 1,
                MIN_TASK_FEE + 16 * MIN_IMAGE_FEE
            )
        );
        verinfer.createTask(IMAGE, keccak256("a"), 16, 0, "", MIN_TASK_FEE + 16 * MIN_IMAGE_FEE - 1);
        VM.stopPrank();
        VM.assertEq(verinfer.taskCount(), 0);
    }

    function test_CreateTask_AcceptsLimits() public {
        uint96 imageMin = uint96(_ext().minTaskFee(IMAGE, 16));
        uint96 textMin = uint96(_ext().minTaskFee(TEXT, 0));
        VM.assertEq(imageMin, MIN_TASK_FEE + 16 * MIN_IMAGE_FEE);
        VM.assertEq(textMin, MIN_TASK_FEE);
        uint256 a = _createImageTask(16, VRAM_80G, imageMin);
        uint256 b = _createTextTask(H100, VRAM_80G, textMin);
        _assertStatus(a, IVerinfer.TaskStatus.Queued);
        _assertStatus(b, IVerinfer.TaskStatus.Queued);
        VM.assertEq(_ext().getTask(a).imageCount, 16);
        VM.assertEq(_ext().getTask(a).feeLevel, 0, "the minimum pays for tier 0");
        VM.assertEq(_ext().getTask(b).feeLevel, 0);
    }

    /// @dev With both minimum fees at zero a free task is accepted and transfers nothing.
    function test_CreateTask_ZeroFeeWhenMinimumsAreZero() public {
        IVerinfer.Params memory p = defaultParams();
        p.minTaskFee = 0;
        p.minImageFee = 0;
        _setParams(p);
        _makeNodes(0, 3, H100);
        uint256 before = token.balanceOf(creator);
        uint256 taskId = _createImageTask(1, 0, 0);
        VM.assertEq(token.balanceOf(creator), before);
        _runHonestImageTask(taskId);
        _assertStatus(taskId, IVerinfer.TaskStatus.Validated);
        VM.assertEq(token.balanceOf(creator), before);
        VM.assertEq(verinfer.claimable(creator), 0);
    }

    function test_CreateTextTask_SelectsOnlyThatModel() public {
        _makeNodes(0, 3, RTX4090);
        _makeNodes(3, 4, H100);
        _makeNodes(7, 3, A100);
        bytes32 h100 = _ext().gpuModelId(H100);
        for (uint256 seed; seed < 8; ++seed) {
            uint256 snap = VM.snapshotState();
            VM.roll(VM.getBlockNumber() + 1 + seed); // another seed block
            uint256 taskId = _createTextTask("nvidia h100 80GB HBM3", 0, FEE);
            _assertStatus(taskId, IVerinfer.TaskStatus.Committing);
            VM.assertEq(_ext().getTask(taskId).gpuModel, h100);
            address[3] memory nodes = _nodesOf(taskId);
            for (uint256 i; i < 3; ++i) {
                VM.assertEq(_ext().getNode(nodes[i]).gpuModel, h100, "node of the required model");
            }
            VM.revertToState(snap);
        }
    }

    /// @dev A text task waits until `minTextPool` (3) nodes of its model are available; a node that
    ///      joins is a candidate from the next block on (the draw of its own call runs before it).
    function test_CreateTextTask_QueuedWithoutThreeOfItsModel() public {
        _makeNodes(0, 3, RTX4090);
        _makeNodes(3, 2, H100);
        bytes32 h100 = _ext().gpuModelId(H100);
        bytes32 queueKey = _textQueueKey(h100, FEE_LEVEL);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.TaskQueued(1, queueKey);
        VM.prank(creator);
        uint256 taskId = verinfer.createTask(TEXT, keccak256("text"), 0, 0, H100, FEE);
        VM.assertEq(_draw(), 0, "two H100 nodes: nothing starts");
        _assertStatus(taskId, IVerinfer.TaskStatus.Queued);
        VM.assertEq(_ext().queueLength(queueKey), 1);

        _nextBlock();
        _join(_nodeAddr(5), H100, MIN_STAKE);
        _assertStatus(taskId, IVerinfer.TaskStatus.Queued);
        VM.assertEq(_draw(), 1, "the next block's draw has three H100 nodes");
        _assertStatus(taskId, IVerinfer.TaskStatus.Committing);
        VM.assertEq(_ext().queueLength(queueKey), 0);
    }

    /// @dev Text tasks without a model no longer exist; instead a text pool must be at least
    ///      `minTextPool` nodes large before three of it are drawn.
    function test_CreateTextTask_WaitsForMinTextPool() public {
        IVerinfer.Params memory p = defaultParams();
        p.minTextPool = 4;
        _setParams(p);
        _makeNodes(0, 3, RTX4090);
        uint256 taskId = _createTextTask(RTX4090, 0, FEE);
        _assertStatus(taskId, IVerinfer.TaskStatus.Queued);
        _join(_nodeAddr(3), RTX4090, MIN_STAKE);
        _draw();
        _assertStatus(taskId, IVerinfer.TaskStatus.Committing);
        VM.assertEq(_ext().availableNodes(_ext().gpuModelId(RTX4090), 0), 1, "three of the four drawn");
    }

    function test_ThreeNodesAreDistinct() public {
        _makeNodes(0, 3, H100);
        for (uint256 seed; seed < 16; ++seed) {
            uint256 snap = VM.snapshotState();
            VM.roll(VM.getBlockNumber() + 1 + seed);
            address[3] memory nodes = _nodesOf(_createImageTask());
            VM.assertTrue(nodes[0] != nodes[1] && nodes[0] != nodes[2] && nodes[1] != nodes[2], "distinct nodes");
            VM.revertToState(snap);
        }
    }

    // ================================================================ draws

    function test_DrawTasks_OncePerBlockAndNeverReverts() public {
        VM.assertEq(verinfer.drawTasks(), 0, "nothing queued");
        uint256 taskId = _queueImageTask(1, 0, FEE);
        VM.assertFalse(_ext().drawDue(), "not in the creating block");
        _nextBlock();
        VM.assertTrue(_ext().drawDue());
        VM.assertEq(verinfer.drawTasks(), 0, "no nodes: nothing starts, and no revert");
        VM.assertFalse(_ext().drawDue(), "this block drew");
        VM.assertEq(verinfer.lastTouchBlock(), VM.getBlockNumber());
        _makeNodes(0, 3, H100);
        VM.assertEq(verinfer.drawTasks(), 0, "one draw per block");
        _assertStatus(taskId, IVerinfer.TaskStatus.Queued);
        _nextBlock();
        VM.prank(stranger);
        VM.assertEq(verinfer.drawTasks(), 1, "anybody may draw");
        _assertStatus(taskId, IVerinfer.TaskStatus.Committing);
    }

    /// @dev Any state-changing call of a later block draws first: here a fourth node's join starts
    ///      the task, with nodes that were available before the join (never the joining node).
    function test_Draw_RunsAtTheStartOfAnyCallOfALaterBlock() public {
        _makeNodes(0, 3, H100);
        uint256 createdAt = VM.getBlockNumber();
        uint256 taskId = _queueImageTask(1, 0, FEE);
        _nextBlock();
        address late = _nodeAddr(3);
        _fund(late, MIN_STAKE);
        address[3] memory none;
        VM.expectEmit(true, false, false, false, address(verinfer));
        emit IVerinfer.TaskStarted(taskId, none, 0, 0, createdAt);
        VM.prank(late);
        verinfer.join(H100, 0, MIN_STAKE);
        _assertStatus(taskId, IVerinfer.TaskStatus.Committing);
        address[3] memory picked = _nodesOf(taskId);
        for (uint256 i; i < 3; ++i) {
            VM.assertTrue(picked[i] != late, "a node joining in the drawing block is not a candidate");
        }
        _assertNodeState(late, IVerinfer.NodeState.Available);
    }

    /// @dev Dead entries (cancelled, expired) are skipped by the draws that meet them, at most
    ///      `MAX_DRAW_ATTEMPTS` steps (skips and start attempts) per draw: the next draw goes on.
    function test_Draw_SkipsCancelledEntries() public {
        _makeNodes(0, 3, H100);
        uint256 running = _createImageTask();
        bytes32 imageQueue = _imageQueueKey(0, FEE_LEVEL);
        uint256[12] memory queued;
        for (uint256 i; i < 12; ++i) {
            queued[i] = _queueImageTask(1, 0, FEE);
        }
        VM.startPrank(creator);
        for (uint256 i; i < 11; ++i) {
            verinfer.cancelTask(queued[i]);
        }
        VM.stopPrank();
        VM.assertEq(_ext().queueLength(imageQueue), 12, "cancel leaves the entry for a draw to skip");
        VM.assertEq(verinfer.queuedTasks(), 1);

        _draw();
        VM.assertEq(_ext().queueLength(imageQueue), 12 - verinfer.MAX_DRAW_ATTEMPTS(), "one draw's budget");
        _draw();
        VM.assertEq(_ext().queueLength(imageQueue), 1, "the next draw skipped the rest");
        _assertStatus(queued[11], IVerinfer.TaskStatus.Queued);

        _runHonestImageTask(running);
        _draw();
        _assertStatus(queued[11], IVerinfer.TaskStatus.Committing);
        VM.assertEq(_ext().queueLength(imageQueue), 0);
        VM.assertEq(verinfer.queuedTasks(), 0);
    }

    // ================================================================ queues

    function test_Queue_TaskWaitsWhenTooFewNodes() public {
        _makeNodes(0, 2, H100);
        bytes32 argsHash = keccak256("img");
        bytes32 queueKey = _imageQueueKey(0, FEE_LEVEL);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.TaskCreated(1, creator, IMAGE, argsHash, 1, 0, bytes32(0), FEE, IVerinfer.ValidationMode.Full);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.TaskQueued(1, queueKey);
        VM.prank(creator);
        uint256 taskId = verinfer.createTask(IMAGE, argsHash, 1, 0, "", FEE);
        VM.assertEq(_draw(), 0);

        IVerinfer.TaskInfo memory t = _ext().getTask(taskId);
        VM.assertEq(uint256(t.status), uint256(IVerinfer.TaskStatus.Queued));
        VM.assertEq(t.nodes[0], address(0));
        VM.assertEq(t.commitDeadline, 0);
        VM.assertEq(verinfer.queuedTasks(), 1);
        VM.assertEq(_ext().queueLength(queueKey), 1);
        VM.assertEq(token.balanceOf(address(verinfer)), 2 * uint256(MIN_STAKE) + FEE, "fee escrowed while queued");
        VM.assertEq(_ext().availableNodes(bytes32(0), 0), 2, "nodes untouched");
    }

    function test_Queue_StartsInFifoOrderAsNodesJoin() public {
        _makeNodes(0, 2, H100);
        uint256 a = _queueImageTask(1, 0, FEE);
        uint256 b = _queueImageTask(1, 0, FEE);
        VM.assertEq(_draw(), 0);
        _join(_nodeAddr(2), H100, MIN_STAKE);
        _assertStatus(a, IVerinfer.TaskStatus.Queued);

        VM.warp(VM.getBlockTimestamp() + 30);
        _nextBlock();
        address[3] memory none;
        VM.expectEmit(true, false, false, false, address(verinfer)); // the task id (selection is random)
        emit IVerinfer.TaskStarted(a, none, 0, 0, 0);
        VM.assertEq(verinfer.drawTasks(), 1);
        _assertStatus(a, IVerinfer.TaskStatus.Committing);
        _assertStatus(b, IVerinfer.TaskStatus.Queued);
        VM.assertEq(_ext().getTask(a).commitDeadline, VM.getBlockTimestamp() + COMMIT_WINDOW, "deadline from start");

        _join(_nodeAddr(3), H100, MIN_STAKE);
        _join(_nodeAddr(4), H100, MIN_STAKE);
        _draw();
        _assertStatus(b, IVerinfer.TaskStatus.Queued);
        _join(_nodeAddr(5), H100, MIN_STAKE);
        _draw();
        _assertStatus(b, IVerinfer.TaskStatus.Committing);
        VM.assertEq(verinfer.queuedTasks(), 0);
        VM.assertEq(_ext().queueLength(_imageQueueKey(0, FEE_LEVEL)), 0);
    }

    /// @dev Settlement starts nothing itself: the nodes it releases are drawn in a later block.
    function test_Queue_StartsWhenNodesFreeUp() public {
        _makeNodes(0, 3, H100);
        uint256 a = _createImageTask();
        uint256 b = _queueImageTask(1, 0, FEE);
        uint256 c = _queueImageTask(1, 0, FEE);
        _draw();
        _assertStatus(b, IVerinfer.TaskStatus.Queued);
        VM.warp(VM.getBlockTimestamp() + 100);

        address[3] memory n = _nodesOf(a);
        _runHonestImageTask(a);
        _assertStatus(a, IVerinfer.TaskStatus.Validated);
        _assertStatus(b, IVerinfer.TaskStatus.Queued);

        _nextBlock();
        address[3] memory none;
        VM.expectEmit(true, false, false, false, address(verinfer));
        emit IVerinfer.TaskStarted(b, none, 0, 0, 0);
        verinfer.drawTasks();
        address[3] memory m = _nodesOf(b);
        for (uint256 i; i < 3; ++i) {
            VM.assertTrue(m[i] == n[0] || m[i] == n[1] || m[i] == n[2], "the released nodes run the next task");
        }
        _assertStatus(b, IVerinfer.TaskStatus.Committing);
        _assertStatus(c, IVerinfer.TaskStatus.Queued);
        VM.assertEq(_ext().getTask(b).commitDeadline, VM.getBlockTimestamp() + COMMIT_WINDOW);
        _runHonestImageTask(b);
        _draw();
        _assertStatus(c, IVerinfer.TaskStatus.Committing);
    }

    function test_Queue_TextModelQueueIndependentOfImageQueue() public {
        _makeNodes(0, 3, RTX4090);
        uint256 text = _createTextTask(H100, 0, FEE);
        _assertStatus(text, IVerinfer.TaskStatus.Queued);
        // Image tasks are not blocked by the waiting text task.
        uint256 image = _createImageTask();
        _assertStatus(image, IVerinfer.TaskStatus.Committing);
        _makeNodes(3, 3, H100);
        _draw();
        _assertStatus(text, IVerinfer.TaskStatus.Committing);
    }

    /// @dev Each eligibility class has its queue: a head no node can serve (an 80 GiB task among
    ///      24 GiB nodes) holds back nothing else; once cancelled, a draw skips its entry.
    function test_Queue_UnservableClassDoesNotBlockOthers() public {
        uint256 big = _queueImageTask(1, VRAM_80G, FEE);
        uint256 b = _queueImageTask(1, 0, FEE);
        uint256 c = _queueImageTask(1, 0, FEE);
        _makeNodes(0, 9, RTX4090);
        _draw();
        _assertStatus(big, IVerinfer.TaskStatus.Queued);
        _assertStatus(b, IVerinfer.TaskStatus.Committing);
        _assertStatus(c, IVerinfer.TaskStatus.Committing);

        uint256 text = _createTextTask(RTX4090, 0, FEE);
        _assertStatus(text, IVerinfer.TaskStatus.Committing);
        uint256 d = _createImageTask();
        _assertStatus(d, IVerinfer.TaskStatus.Queued, "all nine nodes busy");

        bytes32 bigQueue = _imageQueueKey(VRAM_80G, FEE_LEVEL);
        VM.assertEq(_ext().queueLength(bigQueue), 1);
        VM.prank(creator);
        verinfer.cancelTask(big);
        _draw();
        VM.assertEq(_ext().queueLength(bigQueue), 0, "cancelled head skipped");
        VM.assertEq(_ext().queueLength(_imageQueueKey(0, FEE_LEVEL)), 1);
        VM.assertEq(verinfer.queuedTasks(), 1);
    }

    function _assertStatus(uint256 taskId, IVerinfer.TaskStatus expected, string memory why) internal view {
        VM.assertEq(uint256(_status(taskId)), uint256(expected), why);
    }

    // ================================================================ cancel

    function test_Cancel_QueuedTaskRefundsInFull() public {
        uint256 before = token.balanceOf(creator);
        uint256 taskId = _createImageTask(1, 0, FEE);
        VM.assertEq(token.balanceOf(creator), before - FEE);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.TaskCancelled(taskId);
        VM.prank(creator);
        verinfer.cancelTask(taskId);
        VM.assertEq(token.balanceOf(creator), before, "full refund, transferred (the creator's own call)");
        VM.assertEq(verinfer.claimable(creator), 0);
        VM.assertEq(token.balanceOf(address(verinfer)), 0);
        _assertStatus(taskId, IVerinfer.TaskStatus.Cancelled);
        VM.assertEq(verinfer.queuedTasks(), 0);
    }

    function test_Cancel_Reverts() public {
        VM.prank(creator);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.UnknownTask.selector, 1));
        verinfer.cancelTask(1);

        uint256 queued = _createImageTask();
        VM.prank(stranger);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.NotTaskCreator.selector, queued, stranger));
        verinfer.cancelTask(queued);

        VM.prank(creator);
        verinfer.cancelTask(queued);
        VM.prank(creator);
        VM.expectRevert(
            abi.encodeWithSelector(IVerinfer.TaskNotQueued.selector, queued, IVerinfer.TaskStatus.Cancelled)
        );
        verinfer.cancelTask(queued);

        uint256 expired = _createImageTask();
        VM.warp(_ext().getTask(expired).expiresAt);
        verinfer.expireTask(expired);
        VM.prank(creator);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.TaskNotQueued.selector, expired, IVerinfer.TaskStatus.Expired));
        verinfer.cancelTask(expired);

        _makeNodes(0, 3, H100);
        uint256 started = _createImageTask();
        VM.prank(creator);
        VM.expectRevert(
            abi.encodeWithSelector(IVerinfer.TaskNotQueued.selector, started, IVerinfer.TaskStatus.Committing)
        );
        verinfer.cancelTask(started);
    }

    function test_Cancel_EntriesAreSkipped() public {
        uint256 a = _queueImageTask(1, 0, FEE);
        uint256 b = _queueImageTask(1, 0, FEE);
        uint256 c = _queueImageTask(1, 0, FEE);
        VM.startPrank(creator);
        verinfer.cancelTask(a);
        verinfer.cancelTask(b);
        VM.stopPrank();
        bytes32 queueKey = _imageQueueKey(0, FEE_LEVEL);
        VM.assertEq(_ext().queueLength(queueKey), 3, "entries stay until a draw meets them");
        _makeNodes(0, 3, H100);
        _draw();
        _assertStatus(a, IVerinfer.TaskStatus.Cancelled);
        _assertStatus(b, IVerinfer.TaskStatus.Cancelled);
        _assertStatus(c, IVerinfer.TaskStatus.Committing);
        VM.assertEq(_ext().queueLength(queueKey), 0);
    }

    // ================================================================ expiry

    function test_Expire_QueuedTaskAfterTimeoutCreditsTheFee() public {
        uint256 taskId = _createImageTask();
        uint40 expiresAt = _ext().getTask(taskId).expiresAt;
        VM.assertEq(expiresAt, VM.getBlockTimestamp() + QUEUE_TIMEOUT);
        VM.warp(expiresAt - 1);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.TaskNotExpired.selector, taskId, expiresAt));
        verinfer.expireTask(taskId);

        VM.warp(expiresAt);
        uint256 before = token.balanceOf(creator);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.TaskExpired(taskId);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.BalanceCredited(creator, taskId, IVerinfer.CreditReason.FeeRefunded, FEE);
        VM.prank(stranger);
        verinfer.expireTask(taskId);
        _assertStatus(taskId, IVerinfer.TaskStatus.Expired);
        VM.assertEq(verinfer.queuedTasks(), 0);
        VM.assertEq(token.balanceOf(creator), before, "credited, not transferred");
        VM.assertEq(verinfer.claimable(creator), FEE);
        _assertTokenAccounting();
        VM.assertEq(_withdraw(creator), FEE);
        VM.assertEq(token.balanceOf(creator), before + FEE);

        // Expiring it again changes nothing (no second credit).
        VM.recordLogs();
        verinfer.expireTask(taskId);
        VM.assertEq(VM.getRecordedLogs().length, 0, "nothing emitted");
        VM.assertEq(verinfer.claimable(creator), 0);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.UnknownTask.selector, 99));
        verinfer.expireTask(99);
        _makeNodes(0, 3, H100);
        uint256 started = _createImageTask();
        VM.warp(VM.getBlockTimestamp() + QUEUE_TIMEOUT);
        VM.expectRevert(
            abi.encodeWithSelector(IVerinfer.TaskNotQueued.selector, started, IVerinfer.TaskStatus.Committing)
        );
        verinfer.expireTask(started);
    }

    /// @dev An expireTask whose own draw already expired the task succeeds without doing it twice.
    function test_Expire_TaskExpiredByTheCallsOwnDraw() public {
        uint256 taskId = _createImageTask();
        VM.warp(_ext().getTask(taskId).expiresAt);
        _nextBlock();
        VM.assertTrue(_ext().drawDue());
        VM.recordLogs();
        VM.prank(stranger);
        verinfer.expireTask(taskId);
        Vm.Log[] memory logs = VM.getRecordedLogs();
        uint256 expiredEvents;
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].topics[0] == IVerinfer.TaskExpired.selector) ++expiredEvents;
        }
        VM.assertEq(expiredEvents, 1, "expired once, by the draw");
        _assertStatus(taskId, IVerinfer.TaskStatus.Expired);
        VM.assertEq(verinfer.claimable(creator), FEE, "credited once");
        VM.assertEq(verinfer.queuedTasks(), 0);
        _assertTokenAccounting();
    }

    /// @dev A draw expires the heads it meets past their time, and serves the live task behind them.
    function test_Expire_DrawExpiresHeadsItMeets() public {
        uint256 old = _createImageTask();
        uint40 expiresAt = _ext().getTask(old).expiresAt;
        VM.warp(expiresAt - 10);
        uint256 fresh = _queueImageTask(1, 0, FEE);
        _makeNodes(0, 3, H100);
        VM.warp(expiresAt);
        _nextBlock();
        VM.expectEmit(address(verinfer));
        emit IVerinfer.TaskExpired(old);
        VM.assertEq(verinfer.drawTasks(), 1);
        _assertStatus(old, IVerinfer.TaskStatus.Expired);
        _assertStatus(fresh, IVerinfer.TaskStatus.Committing);
        VM.assertEq(verinfer.claimable(creator), FEE, "the expired task's fee is credited");
        VM.assertEq(verinfer.queuedTasks(), 0);
        _assertTokenAccounting();
    }
}
