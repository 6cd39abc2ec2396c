// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IVerinfer} from "../src/interfaces/IVerinfer.sol";
import {GpuModels} from "../src/libraries/GpuModels.sol";
import {VM} from "./Vm.sol";
import {VerinferTestBase} from "./utils/VerinferTestBase.sol";

/// @notice Task creation, node selection, queues, cancel and dispatch.
contract VerinferTasksTest is VerinferTestBase {
    string internal constant A100 = "NVIDIA A100-SXM4-80GB";

    // ================================================================ create and start

    function test_CreateImageTask_StartsWithThreeNodesAndEscrowsFee() public {
        _makeNodes(0, 5, H100, VRAM_80G);
        bytes32 argsHash = keccak256("args");

        // Learn the selection, rewind, and expect exactly it.
        uint256 snap = VM.snapshotState();
        VM.prank(creator);
        uint256 probe = verinfer.createTask(IMAGE, argsHash, 2, 4096, "", FEE);
        address[3] memory picked = _nodesOf(probe);
        VM.revertToState(snap);

        uint32 commitDeadline = uint32(block.timestamp) + COMMIT_WINDOW;
        uint32 revealDeadline = commitDeadline + REVEAL_WINDOW;
        uint256 creatorBefore = token.balanceOf(creator);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.TaskCreated(1, creator, IMAGE, argsHash, 2, 4096, bytes32(0), FEE);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.TaskStarted(1, picked, commitDeadline, revealDeadline);
        VM.prank(creator);
        uint256 taskId = verinfer.createTask(IMAGE, argsHash, 2, 4096, "", FEE);

        VM.assertEq(taskId, 1);
        VM.assertEq(verinfer.taskCount(), 1);
        VM.assertEq(token.balanceOf(creator), creatorBefore - FEE, "fee escrowed");
        VM.assertEq(token.balanceOf(address(verinfer)), 5 * uint256(MIN_STAKE) + FEE);

        IVerinfer.TaskInfo memory t = verinfer.getTask(taskId);
        VM.assertEq(t.creator, creator);
        VM.assertEq(uint256(t.kind), uint256(IMAGE));
        VM.assertEq(uint256(t.status), uint256(IVerinfer.TaskStatus.Committing));
        VM.assertEq(t.imageCount, 2);
        VM.assertEq(t.minVramMiB, 4096);
        VM.assertEq(t.argsHash, argsHash);
        VM.assertEq(t.gpuModel, bytes32(0));
        VM.assertEq(t.fee, FEE);
        VM.assertEq(t.commitDeadline, commitDeadline);
        VM.assertEq(t.revealDeadline, revealDeadline);
        VM.assertEq(t.committedMask, 0);
        VM.assertEq(t.revealedMask, 0);
        for (uint256 i; i < 3; ++i) {
            VM.assertEq(t.nodes[i], picked[i]);
            IVerinfer.NodeInfo memory n = verinfer.getNode(picked[i]);
            VM.assertEq(uint256(n.state), uint256(IVerinfer.NodeState.Busy));
            VM.assertEq(n.taskId, taskId);
        }
        VM.assertEq(verinfer.availableNodes(bytes32(0), 0), 2, "three nodes left the pool");
    }

    function test_CreateTask_RevertsOnBadInput() public {
        VM.startPrank(creator);
        VM.expectRevert(IVerinfer.ZeroArgsHash.selector);
        verinfer.createTask(IMAGE, bytes32(0), 1, 0, "", FEE);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.InvalidImageCount.selector, IMAGE, uint8(0)));
        verinfer.createTask(IMAGE, keccak256("a"), 0, 0, "", FEE);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.InvalidImageCount.selector, IMAGE, uint8(17)));
        verinfer.createTask(IMAGE, keccak256("a"), 17, 0, "", FEE);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.InvalidImageCount.selector, TEXT, uint8(1)));
        verinfer.createTask(TEXT, keccak256("a"), 1, 0, "", FEE);
        VM.expectRevert(IVerinfer.GpuModelNotAllowedForImages.selector);
        verinfer.createTask(IMAGE, keccak256("a"), 1, 0, H100, FEE);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.VramTooLarge.selector, uint32(131_073), uint32(131_072)));
        verinfer.createTask(IMAGE, keccak256("a"), 1, 131_073, "", FEE);
        VM.expectRevert(GpuModels.EmptyGpuModel.selector);
        verinfer.createTask(TEXT, keccak256("a"), 0, 0, "   ", FEE);
        VM.expectRevert(abi.encodeWithSelector(GpuModels.InvalidGpuModelCharacter.selector, 1, bytes1(0x00)));
        verinfer.createTask(TEXT, keccak256("a"), 0, 0, "H\x00", FEE);
        VM.stopPrank();
        VM.assertEq(verinfer.taskCount(), 0);
    }

    function test_CreateTask_AcceptsLimits() public {
        uint256 a = _createImageTask(16, 131_072, 0);
        uint256 b = _createTextTask("", 131_072, 0);
        _assertStatus(a, IVerinfer.TaskStatus.Queued);
        _assertStatus(b, IVerinfer.TaskStatus.Queued);
        VM.assertEq(verinfer.getTask(a).imageCount, 16);
    }

    function test_CreateTask_ZeroFeeTransfersNothing() public {
        _makeNodes(0, 3, H100, VRAM_80G);
        uint256 before = token.balanceOf(creator);
        uint256 taskId = _createImageTask(1, 0, 0);
        VM.assertEq(token.balanceOf(creator), before);
        _runHonestImageTask(taskId);
        _assertStatus(taskId, IVerinfer.TaskStatus.Validated);
        VM.assertEq(token.balanceOf(creator), before);
    }

    function test_CreateTextTask_WithModel_SelectsOnlyThatModel() public {
        _makeNodes(0, 3, RTX4090, VRAM_24G);
        _makeNodes(3, 3, H100, VRAM_80G);
        _makeNodes(6, 3, A100, VRAM_80G);
        bytes32 h100 = verinfer.gpuModelId(H100);
        for (uint256 seed; seed < 8; ++seed) {
            uint256 snap = VM.snapshotState();
            VM.prevrandao(bytes32(seed));
            uint256 taskId = _createTextTask("nvidia h100 80GB HBM3", 0, FEE);
            _assertStatus(taskId, IVerinfer.TaskStatus.Committing);
            VM.assertEq(verinfer.getTask(taskId).gpuModel, h100);
            address[3] memory nodes = _nodesOf(taskId);
            for (uint256 i; i < 3; ++i) {
                VM.assertEq(verinfer.getNode(nodes[i]).gpuModel, h100, "node of the required model");
            }
            VM.revertToState(snap);
        }
    }

    function test_CreateTextTask_WithModel_QueuedWithoutThreeOfIt() public {
        _makeNodes(0, 3, RTX4090, VRAM_24G);
        _makeNodes(3, 2, H100, VRAM_80G);
        bytes32 h100 = verinfer.gpuModelId(H100);
        bytes32 argsHash = keccak256("text");
        bytes32 queueKey = verinfer.textQueueKey(h100);
        VM.assertEq(queueKey, h100, "a model's text queue is keyed by the model id");
        VM.expectEmit(address(verinfer));
        emit IVerinfer.TaskQueued(1, queueKey);
        VM.prank(creator);
        uint256 taskId = verinfer.createTask(TEXT, argsHash, 0, 0, H100, FEE);
        _assertStatus(taskId, IVerinfer.TaskStatus.Queued);
        VM.assertEq(verinfer.queueLength(verinfer.textQueueKey(h100)), 1);
        // The third H100 starts it, on its join.
        _join(_nodeAddr(5), H100, VRAM_80G, MIN_STAKE);
        _assertStatus(taskId, IVerinfer.TaskStatus.Committing);
        VM.assertEq(verinfer.queueLength(verinfer.textQueueKey(h100)), 0);
    }

    /// @dev Without a required model, the three nodes still share one model.
    function test_CreateTextTask_AnyModel_ThreeNodesOfOneModel() public {
        _makeNodes(0, 3, RTX4090, VRAM_24G);
        _makeNodes(3, 4, H100, VRAM_80G);
        for (uint256 seed; seed < 8; ++seed) {
            uint256 snap = VM.snapshotState();
            VM.prevrandao(bytes32(seed));
            uint256 taskId = _createTextTask("", 0, FEE);
            _assertStatus(taskId, IVerinfer.TaskStatus.Committing);
            VM.assertEq(verinfer.getTask(taskId).gpuModel, bytes32(0), "no model required");
            address[3] memory nodes = _nodesOf(taskId);
            bytes32 model = verinfer.getNode(nodes[0]).gpuModel;
            VM.assertEq(verinfer.getNode(nodes[1]).gpuModel, model, "same model");
            VM.assertEq(verinfer.getNode(nodes[2]).gpuModel, model, "same model");
            VM.revertToState(snap);
        }
    }

    /// @dev Models with fewer than three nodes never serve an any-model text task. (The model is
    ///      found by probing up to three random nodes, so the task may also wait when a model with
    ///      three nodes exists but was not probed; then it starts on a later event or dispatch.)
    function test_CreateTextTask_AnyModel_NeverMixesModels() public {
        _makeNodes(0, 2, RTX4090, VRAM_24G);
        _makeNodes(2, 2, A100, VRAM_80G);
        _makeNodes(4, 3, H100, VRAM_80G);
        bytes32 h100 = verinfer.gpuModelId(H100);
        uint256 started;
        for (uint256 seed; seed < 16; ++seed) {
            uint256 snap = VM.snapshotState();
            VM.prevrandao(bytes32(seed));
            uint256 taskId = _createTextTask("", 0, FEE);
            if (_status(taskId) == IVerinfer.TaskStatus.Committing) {
                ++started;
                address[3] memory nodes = _nodesOf(taskId);
                for (uint256 i; i < 3; ++i) {
                    VM.assertEq(verinfer.getNode(nodes[i]).gpuModel, h100, "only H100 has three nodes");
                }
            } else {
                _assertStatus(taskId, IVerinfer.TaskStatus.Queued);
            }
            VM.revertToState(snap);
        }
        VM.assertGt(started, 0, "some draws start the task");
    }

    function test_CreateTextTask_AnyModel_QueuedWhenNoModelHasThree() public {
        _makeNodes(0, 2, RTX4090, VRAM_24G);
        _makeNodes(2, 2, H100, VRAM_80G);
        bytes32 argsHash = keccak256("text");
        bytes32 queueKey = verinfer.textQueueKey(bytes32(0));
        VM.expectEmit(address(verinfer));
        emit IVerinfer.TaskQueued(1, queueKey);
        VM.prank(creator);
        uint256 taskId = verinfer.createTask(TEXT, argsHash, 0, 0, "", FEE);
        _assertStatus(taskId, IVerinfer.TaskStatus.Queued);
        // A third RTX 4090 makes a model with three nodes; its join starts the task.
        _join(_nodeAddr(4), RTX4090, VRAM_24G, MIN_STAKE);
        _assertStatus(taskId, IVerinfer.TaskStatus.Committing);
        bytes32 rtx = verinfer.gpuModelId(RTX4090);
        address[3] memory nodes = _nodesOf(taskId);
        for (uint256 i; i < 3; ++i) {
            VM.assertEq(verinfer.getNode(nodes[i]).gpuModel, rtx);
        }
    }

    function test_ThreeNodesAreDistinct() public {
        _makeNodes(0, 3, H100, VRAM_80G);
        for (uint256 seed; seed < 16; ++seed) {
            uint256 snap = VM.snapshotState();
            VM.prevrandao(keccak256(abi.encode(seed)));
            address[3] memory nodes = _nodesOf(_createImageTask());
            VM.assertTrue(nodes[0] != nodes[1] && nodes[0] != nodes[2] && nodes[1] != nodes[2], "distinct nodes");
            VM.revertToState(snap);
        }
    }

    // ================================================================ queues

    function test_Queue_TaskWaitsWhenTooFewNodes() public {
        _makeNodes(0, 2, H100, VRAM_80G);
        bytes32 argsHash = keccak256("img");
        bytes32 queueKey = verinfer.imageQueueKey();
        VM.expectEmit(address(verinfer));
        emit IVerinfer.TaskCreated(1, creator, IMAGE, argsHash, 1, 0, bytes32(0), FEE);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.TaskQueued(1, queueKey);
        VM.prank(creator);
        uint256 taskId = verinfer.createTask(IMAGE, argsHash, 1, 0, "", FEE);

        IVerinfer.TaskInfo memory t = verinfer.getTask(taskId);
        VM.assertEq(uint256(t.status), uint256(IVerinfer.TaskStatus.Queued));
        VM.assertEq(t.nodes[0], address(0));
        VM.assertEq(t.commitDeadline, 0);
        VM.assertEq(verinfer.queuedTasks(), 1);
        VM.assertEq(verinfer.queueLength(verinfer.imageQueueKey()), 1);
        VM.assertEq(token.balanceOf(address(verinfer)), 2 * uint256(MIN_STAKE) + FEE, "fee escrowed while queued");
        VM.assertEq(verinfer.availableNodes(bytes32(0), 0), 2, "nodes untouched");
    }

    function test_Queue_StartsInFifoOrderAsNodesJoin() public {
        _makeNodes(0, 2, H100, VRAM_80G);
        uint256 a = _createImageTask();
        uint256 b = _createImageTask();
        _assertStatus(a, IVerinfer.TaskStatus.Queued);
        _assertStatus(b, IVerinfer.TaskStatus.Queued);

        address third = _nodeAddr(2);
        _fund(third, MIN_STAKE);
        address[3] memory none;
        VM.expectEmit(true, false, false, false, address(verinfer)); // the task id (selection is random)
        emit IVerinfer.TaskStarted(a, none, 0, 0);
        VM.prank(third);
        verinfer.join(H100, VRAM_80G, MIN_STAKE);
        _assertStatus(a, IVerinfer.TaskStatus.Committing);
        _assertStatus(b, IVerinfer.TaskStatus.Queued);
        VM.assertEq(verinfer.getTask(a).commitDeadline, block.timestamp + COMMIT_WINDOW, "deadline from start");

        _join(_nodeAddr(3), H100, VRAM_80G, MIN_STAKE);
        _join(_nodeAddr(4), H100, VRAM_80G, MIN_STAKE);
        _assertStatus(b, IVerinfer.TaskStatus.Queued);
        _join(_nodeAddr(5), H100, VRAM_80G, MIN_STAKE);
        _assertStatus(b, IVerinfer.TaskStatus.Committing);
        VM.assertEq(verinfer.queuedTasks(), 0);
        VM.assertEq(verinfer.queueLength(verinfer.imageQueueKey()), 0);
    }

    function test_Queue_StartsWhenNodesFreeUp() public {
        _makeNodes(0, 3, H100, VRAM_80G);
        uint256 a = _createImageTask();
        uint256 b = _createImageTask();
        uint256 c = _createImageTask();
        _assertStatus(b, IVerinfer.TaskStatus.Queued);
        VM.warp(block.timestamp + 100);

        uint64[] memory h = _trueHashes(a, 1);
        address[3] memory n = _nodesOf(a);
        _commitAllImage(a, h);
        _revealImage(a, n[0], h);
        _revealImage(a, n[1], h);
        // The settlement releases the three nodes and starts the head of the queue with them.
        address[3] memory none;
        VM.expectEmit(true, false, false, false, address(verinfer));
        emit IVerinfer.TaskStarted(b, none, 0, 0);
        _revealImage(a, n[2], h);
        _assertStatus(a, IVerinfer.TaskStatus.Validated);
        address[3] memory m = _nodesOf(b);
        for (uint256 i; i < 3; ++i) {
            VM.assertTrue(m[i] == n[0] || m[i] == n[1] || m[i] == n[2], "the released nodes run the next task");
        }
        _assertStatus(b, IVerinfer.TaskStatus.Committing);
        _assertStatus(c, IVerinfer.TaskStatus.Queued);
        VM.assertEq(verinfer.getTask(b).commitDeadline, block.timestamp + COMMIT_WINDOW);
        _runHonestImageTask(b);
        _assertStatus(c, IVerinfer.TaskStatus.Committing);
    }

    function test_Queue_TextModelQueueIndependentOfImageQueue() public {
        _makeNodes(0, 3, RTX4090, VRAM_24G);
        uint256 text = _createTextTask(H100, 0, FEE);
        _assertStatus(text, IVerinfer.TaskStatus.Queued);
        // Image tasks are not blocked by the waiting text task.
        uint256 image = _createImageTask();
        _assertStatus(image, IVerinfer.TaskStatus.Committing);
        _makeNodes(3, 3, H100, VRAM_80G);
        _assertStatus(text, IVerinfer.TaskStatus.Committing);
    }

    /// @dev A head needing more VRAM than any node has blocks its own queue only; new tasks that
    ///      can be served start at creation; once the head is cancelled, `dispatch` starts the rest.
    function test_Queue_BlockedHeadThenCancelAndDispatch() public {
        uint256 big = _createImageTask(1, 131_072, FEE);
        uint256 b = _createImageTask();
        uint256 c = _createImageTask();
        _makeNodes(0, 9, H100, VRAM_80G);
        _assertStatus(big, IVerinfer.TaskStatus.Queued);
        _assertStatus(b, IVerinfer.TaskStatus.Queued);
        _assertStatus(c, IVerinfer.TaskStatus.Queued);

        uint256 text = _createTextTask("", 0, FEE);
        _assertStatus(text, IVerinfer.TaskStatus.Committing);
        uint256 d = _createImageTask();
        _assertStatus(d, IVerinfer.TaskStatus.Committing);

        // Cancelling the blocking head retries the queue at once: b takes the three free nodes.
        VM.prank(creator);
        verinfer.cancelTask(big);
        bytes32 imageQueue = verinfer.imageQueueKey();
        _assertStatus(b, IVerinfer.TaskStatus.Committing);
        _assertStatus(c, IVerinfer.TaskStatus.Queued);
        VM.assertEq(verinfer.dispatch(imageQueue, 16), 0, "no free nodes");
        VM.assertEq(verinfer.queueLength(imageQueue), 1);
    }

    function test_Dispatch_RevertsOnMaxStartsOutOfRange() public {
        bytes32 q = verinfer.imageQueueKey();
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.MaxStartsOutOfRange.selector, 0));
        verinfer.dispatch(q, 0);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.MaxStartsOutOfRange.selector, 17));
        verinfer.dispatch(q, 17);
        VM.assertEq(verinfer.dispatch(q, 16), 0, "empty queue");
    }

    /// @dev Retrying a queue skips at most eight cancelled entries per attempt (bounded gas); the
    ///      next retry (a release, a join, a cancel or `dispatch`) continues where it stopped.
    function test_Dispatch_ContinuesPastManyCancelledEntries() public {
        _makeNodes(0, 3, H100, VRAM_80G);
        uint256 running = _createImageTask();
        uint256[12] memory queued;
        for (uint256 i; i < 12; ++i) {
            queued[i] = _createImageTask();
        }
        bytes32 imageQueue = verinfer.imageQueueKey();
        VM.startPrank(creator);
        for (uint256 i = 1; i < 11; ++i) {
            verinfer.cancelTask(queued[i]); // behind a live head: nothing is skipped yet
        }
        VM.assertEq(verinfer.queueLength(imageQueue), 12);
        verinfer.cancelTask(queued[0]); // head cancelled: the retry skips eight entries, then stops
        VM.stopPrank();
        VM.assertEq(verinfer.queueLength(imageQueue), 4, "skips are bounded");
        VM.assertEq(verinfer.queuedTasks(), 1);
        _assertStatus(queued[11], IVerinfer.TaskStatus.Queued);

        _runHonestImageTask(running);
        _assertStatus(queued[11], IVerinfer.TaskStatus.Committing);
        VM.assertEq(verinfer.queueLength(imageQueue), 0);
        VM.assertEq(verinfer.queuedTasks(), 0);
        VM.assertEq(verinfer.dispatch(imageQueue, 1), 0, "nothing left to start");
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
        VM.assertEq(token.balanceOf(creator), before, "full refund");
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

        _makeNodes(0, 3, H100, VRAM_80G);
        uint256 started = _createImageTask();
        VM.prank(creator);
        VM.expectRevert(
            abi.encodeWithSelector(IVerinfer.TaskNotQueued.selector, started, IVerinfer.TaskStatus.Committing)
        );
        verinfer.cancelTask(started);
    }

    function test_Cancel_EntriesAreSkipped() public {
        uint256 a = _createImageTask();
        uint256 b = _createImageTask();
        uint256 c = _createImageTask();
        VM.startPrank(creator);
        verinfer.cancelTask(a);
        verinfer.cancelTask(b);
        VM.stopPrank();
        VM.assertEq(verinfer.queueLength(verinfer.imageQueueKey()), 1, "cancelled heads are skipped on cancel");
        _makeNodes(0, 3, H100, VRAM_80G);
        _assertStatus(a, IVerinfer.TaskStatus.Cancelled);
        _assertStatus(b, IVerinfer.TaskStatus.Cancelled);
        _assertStatus(c, IVerinfer.TaskStatus.Committing);
        VM.assertEq(verinfer.queueLength(verinfer.imageQueueKey()), 0);
    }
}
