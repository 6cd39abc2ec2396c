// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

import {Verinfer} from "../src/Verinfer.sol";
import {IVerinfer} from "../src/interfaces/IVerinfer.sol";
import {VerinferExtension} from "../src/VerinferExtension.sol";
import {GpuModels} from "../src/libraries/GpuModels.sol";
import {VM, Vm} from "./Vm.sol";
import {VerinferTestBase} from "./utils/VerinferTestBase.sol";

/// @notice Unit tests of the hardened machinery: when draws run and what seeds them, the per-class
///         queues and their round robin, minTextPool, uniformity of the draw, the GPU registry, fee
///         tiers, scheduled parameters, expiry and withdrawals. Seeds are explicit: the seed block's
///         hash is set with VM.setBlockhash before the draw reads it.
abstract contract VerinferDrawsBase is VerinferTestBase {
    uint32 internal constant VRAM_70G = 71_680;

    // ================================================================ helpers

    function _s(uint256 x) internal pure returns (string memory) {
        return VM.toString(x);
    }

    /// @dev console.log(string), printed by forge at -vv (forge-std's console is not a dependency).
    function _log(string memory message) internal view {
        (bool ok,) = address(0x000000000000000000636F6e736F6c652e6c6f67)
            .staticcall(abi.encodeWithSignature("log(string)", message));
        ok;
    }

    function _seedOf(uint256 blockNumber) internal pure returns (bytes32) {
        return keccak256(abi.encode("verinfer draws seed", blockNumber));
    }

    function _roll(uint256 blocks) internal {
        VM.roll(VM.getBlockNumber() + blocks);
    }

    /// @dev Mines a block, gives the seed block (the last touched one) a known hash and draws.
    function _seededDraw() internal returns (uint256 started) {
        uint256 seedBlock = verinfer.lastTouchBlock();
        _roll(1);
        VM.setBlockhash(seedBlock, _seedOf(seedBlock));
        VM.prank(stranger);
        started = verinfer.drawTasks();
    }

    function _at(uint256 timestamp) internal {
        VM.warp(timestamp);
        _roll(1);
    }

    function _contains(address[] memory set, address a) internal pure returns (bool) {
        for (uint256 i; i < set.length; ++i) {
            if (set[i] == a) return true;
        }
        return false;
    }

    function _countIn(address[3] memory drawn, address[] memory set) internal pure returns (uint256 k) {
        for (uint256 i; i < 3; ++i) {
            if (_contains(set, drawn[i])) ++k;
        }
    }

    /// @dev TaskStarted logs among `logs`: task ids in emission order and their seed blocks.
    function _started(Vm.Log[] memory logs) internal view returns (uint256[] memory ids, uint256[] memory seeds) {
        uint256 n;
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].emitter == address(verinfer) && logs[i].topics[0] == IVerinfer.TaskStarted.selector) ++n;
        }
        ids = new uint256[](n);
        seeds = new uint256[](n);
        n = 0;
        for (uint256 i; i < logs.length; ++i) {
            Vm.Log memory l = logs[i];
            if (l.emitter == address(verinfer) && l.topics[0] == IVerinfer.TaskStarted.selector) {
                ids[n] = uint256(l.topics[1]);
                (,,, seeds[n]) = abi.decode(l.data, (address[3], uint32, uint32, uint256));
                ++n;
            }
        }
    }

    /// @dev The draw of a task whose candidates are `pool` in pool order (nodes that joined in that
    ///      order at fee tier 0 and never left): three picks, each uniform among the remaining ones,
    ///      removal by swap-and-pop, randomness keccak(keccak(seedHash, taskId), pick, evictions).
    function _referenceDraw(address[] memory pool, bytes32 seedHash, uint256 taskId)
        internal
        pure
        returns (address[3] memory out)
    {
        address[] memory arr = new address[](pool.length);
        for (uint256 i; i < pool.length; ++i) {
            arr[i] = pool[i];
        }
        uint256 len = arr.length;
        uint256 seed = uint256(keccak256(abi.encode(seedHash, taskId)));
        for (uint256 picked; picked < 3; ++picked) {
            uint256 r = uint256(keccak256(abi.encode(seed, picked, uint256(0)))) % len;
            out[picked] = arr[r];
            arr[r] = arr[len - 1];
            --len;
        }
    }

    function _assertNodes(address[3] memory got, address[3] memory expected, string memory what) internal pure {
        for (uint256 k; k < 3; ++k) {
            VM.assertEq(got[k], expected[k], string.concat(what, ": slot ", VM.toString(k)));
        }
    }

    function _redeploy(uint32 paramsDelay_) internal {
        verinfer = new Verinfer(token, defaultParams(), paramsDelay_, owner, treasury);
        _registerDefaultModels();
        VM.prank(creator);
        token.approve(address(verinfer), type(uint256).max);
    }
}

/// @notice When draws run and what seeds them.
contract VerinferDrawsTimingTest is VerinferDrawsBase {
    // ================================================================ when draws run

    /// @dev createTask only queues; nothing in its block starts it; the first call of the next block does.
    function test_CreateTaskNeverStartsInItsBlock() public {
        _makeNodes(0, 3, H100);
        uint256 createdIn = VM.getBlockNumber();
        uint256 id = _queueImageTask(1, 0, FEE);
        _assertStatus(id, IVerinfer.TaskStatus.Queued);
        VM.assertEq(uint256(verinfer.queuedTasks()), 1, "queued");
        VM.assertFalse(_ext().drawDue(), "no draw due in the creating block");
        VM.prank(stranger);
        VM.assertEq(verinfer.drawTasks(), 0, "drawTasks in the creating block");
        _assertStatus(id, IVerinfer.TaskStatus.Queued);

        _roll(1);
        VM.assertTrue(_ext().drawDue(), "draw due in the next block");
        _assertStatus(id, IVerinfer.TaskStatus.Queued); // views never draw
        VM.setBlockhash(createdIn, _seedOf(createdIn));
        VM.recordLogs();
        VM.prank(stranger);
        VM.assertEq(verinfer.drawTasks(), 1, "started");
        _assertStatus(id, IVerinfer.TaskStatus.Committing);
        (uint256[] memory ids, uint256[] memory seeds) = _started(VM.getRecordedLogs());
        VM.assertEq(ids.length, 1, "one TaskStarted");
        VM.assertEq(seeds[0], createdIn, "seeded by the creating block");
        VM.assertFalse(_ext().drawDue(), "drawn");
        VM.assertEq(uint256(verinfer.lastTouchBlock()), VM.getBlockNumber(), "this block is the next seed block");
        IVerinfer.TaskInfo memory t = _ext().getTask(id);
        VM.assertEq(uint256(t.commitDeadline), VM.getBlockTimestamp() + COMMIT_WINDOW, "commit window from the start");
    }

    /// @dev The nodes drawn are exactly what the documented algorithm gives for blockhash(seed block)
    ///      and the task id: nothing else enters the seed.
    function test_DrawMatchesReferenceModel() public {
        address[] memory pool = _makeNodes(0, 10, H100);
        uint256 id = _queueImageTask(1, 0, FEE);
        uint256 seedBlock = VM.getBlockNumber();
        uint256 snap = VM.snapshotState();
        for (uint256 j; j < 5; ++j) {
            VM.revertToState(snap);
            bytes32 h = keccak256(abi.encode("reference", j));
            VM.roll(seedBlock + 1 + j * 50); // any later block within 256
            VM.setBlockhash(seedBlock, h);
            VM.prank(_nodeAddr(1000 + j)); // any sender
            verinfer.drawTasks();
            _assertNodes(_nodesOf(id), _referenceDraw(pool, h, id), string.concat("seed ", _s(j)));
        }
    }

    /// @dev The first call of a block draws before it changes anything: a node joining in that call is
    ///      not a candidate of that draw (only of the next block's).
    function test_FirstCallDrawsBeforeItsOwnJoin() public {
        _makeNodes(0, 2, H100);
        uint256 id = _queueImageTask(1, 0, FEE);
        _roll(1);
        uint256 joinBlock = VM.getBlockNumber();
        address late = _nodeAddr(2);
        _join(late, H100, MIN_STAKE); // draws first: two candidates, the task waits
        _assertStatus(id, IVerinfer.TaskStatus.Queued);
        VM.assertEq(verinfer.drawTasks(), 0, "one draw per block");

        _roll(1);
        VM.setBlockhash(joinBlock, _seedOf(joinBlock));
        VM.recordLogs();
        VM.assertEq(verinfer.drawTasks(), 1, "next block draws");
        (, uint256[] memory seeds) = _started(VM.getRecordedLogs());
        VM.assertEq(seeds[0], joinBlock, "seeded by the join's block");
        VM.assertEq(_countIn(_nodesOf(id), _makeList(late)), 1, "the late node drawn");
    }

    function _makeList(address a) internal pure returns (address[] memory l) {
        l = new address[](1);
        l[0] = a;
    }

    /// @dev ...and a node leaving in that call was still a candidate: it is drawn and becomes Leaving.
    function test_FirstCallDrawsBeforeItsOwnLeave() public {
        address[] memory nodes = _makeNodes(0, 3, H100);
        uint256 id = _queueImageTask(1, 0, FEE);
        _roll(1);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.NodeLeaving(nodes[0], id);
        VM.prank(nodes[0]);
        verinfer.leave();
        _assertStatus(id, IVerinfer.TaskStatus.Committing);
        _assertNodeState(nodes[0], IVerinfer.NodeState.Leaving);
    }

    /// @dev Every state-changing call draws when it is the first of a block; a call that reverts
    ///      draws nothing (its draw is undone with it).
    function test_AnyStateChangingCallDraws() public {
        address[] memory nodes = _makeNodes(0, 4, H100);
        uint256 id = _queueImageTask(1, 0, FEE);
        uint256 seedBlock = VM.getBlockNumber();
        token.mint(nodes[0], 1 ether);
        uint256 snap = VM.snapshotState();
        for (uint256 k; k < 7; ++k) {
            VM.revertToState(snap);
            VM.roll(seedBlock + 1);
            VM.setBlockhash(seedBlock, _seedOf(seedBlock));
            if (k == 0) {
                _queueTextTask(H100, 0, FEE);
            } else if (k == 1) {
                VM.prank(nodes[0]);
                verinfer.addStake(1 ether);
            } else if (k == 2) {
                VM.prank(nodes[1]);
                verinfer.setFeeTier(1);
            } else if (k == 3) {
                VM.prank(owner);
                verinfer.setTreasury(stranger);
            } else if (k == 4) {
                VM.prank(owner);
                _ext().addGpuModel("NVIDIA L4", 23_034);
            } else if (k == 5) {
                VM.prank(owner);
                _ext().scheduleParams(defaultParams());
            } else {
                VM.prank(treasury);
                verinfer.withdrawTreasury(0);
            }
            _assertStatus(id, IVerinfer.TaskStatus.Committing);
        }

        VM.revertToState(snap);
        VM.roll(seedBlock + 1);
        VM.prank(stranger);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.NothingToWithdraw.selector, stranger));
        verinfer.withdraw();
        _assertStatus(id, IVerinfer.TaskStatus.Queued);
        VM.assertTrue(_ext().drawDue(), "a reverted call leaves the draw due");
        VM.assertEq(uint256(verinfer.lastTouchBlock()), seedBlock, "and the seed block");
    }

    /// @dev One draw per block: a task created after the block's draw waits for the next block even
    ///      though enough nodes are free, whatever is called in the meantime.
    function test_OneDrawPerBlock() public {
        _makeNodes(0, 6, H100);
        uint256 a = _queueImageTask(1, 0, FEE);
        VM.assertEq(_seededDraw(), 1, "a started");
        uint256 drawBlock = VM.getBlockNumber();
        uint256 c = _queueImageTask(1, 0, FEE);
        VM.assertEq(verinfer.drawTasks(), 0, "second drawTasks in the block");
        _join(_nodeAddr(10), H100, MIN_STAKE);
        VM.assertFalse(_ext().drawDue(), "no second draw due");
        _assertStatus(c, IVerinfer.TaskStatus.Queued);
        VM.assertEq(_ext().availableNodes(bytes32(0), 0), 4, "nodes were free");

        VM.recordLogs();
        VM.assertEq(_seededDraw(), 1, "c started in the next block");
        (, uint256[] memory seeds) = _started(VM.getRecordedLogs());
        VM.assertEq(seeds[0], drawBlock, "seeded by the block it was created in");
        _assertStatus(a, IVerinfer.TaskStatus.Committing);
    }

    // ================================================================ stale seeds

    /// @dev blockhash of a block 257 or more blocks back reads 0: that call draws nothing, its block
    ///      becomes the seed block, and the next block draws.
    function test_SeedOlderThan256BlocksDrawsNothing() public {
        _makeNodes(0, 3, H100);
        uint256 id = _queueImageTask(1, 0, FEE);
        uint256 created = VM.getBlockNumber();
        VM.roll(created + 257);
        VM.prank(stranger);
        VM.assertEq(verinfer.drawTasks(), 0, "stale seed: nothing drawn");
        _assertStatus(id, IVerinfer.TaskStatus.Queued);
        VM.assertEq(uint256(verinfer.lastTouchBlock()), created + 257, "this block is the new seed block");
        VM.assertFalse(_ext().drawDue(), "nothing more in this block");

        VM.roll(created + 258);
        VM.setBlockhash(created + 257, _seedOf(created + 257));
        VM.recordLogs();
        VM.assertEq(verinfer.drawTasks(), 1, "next block draws");
        (, uint256[] memory seeds) = _started(VM.getRecordedLogs());
        VM.assertEq(seeds[0], created + 257, "seeded by the stale call's block");
    }

    /// @dev 256 blocks back is still readable: that call draws, seeded by the old block.
    function test_SeedExactly256BlocksOldStillDraws() public {
        address[] memory pool = _makeNodes(0, 5, H100);
        uint256 id = _queueImageTask(1, 0, FEE);
        uint256 created = VM.getBlockNumber();
        VM.roll(created + 256);
        bytes32 h = _seedOf(created);
        VM.setBlockhash(created, h);
        VM.assertEq(verinfer.drawTasks(), 1, "drawn 256 blocks later");
        _assertNodes(_nodesOf(id), _referenceDraw(pool, h, id), "seeded by blockhash(created)");
    }
}

/// @notice Per-class queues: round robin, the step budget, text pools, expiry.
contract VerinferDrawsQueuesTest is VerinferDrawsBase {
    // ================================================================ queues

    /// @dev One draw takes at most MAX_DRAW_ATTEMPTS steps (start attempts); a queue is FIFO.
    function test_DrawVisitsAtMostMaxDrawAttemptsHeads() public {
        _makeNodes(0, 30, H100);
        VM.assertEq(verinfer.MAX_DRAW_ATTEMPTS(), 8, "MAX_DRAW_ATTEMPTS");
        uint256[] memory ids = new uint256[](10);
        for (uint256 i; i < 10; ++i) {
            ids[i] = _queueImageTask(1, 0, FEE);
        }
        VM.assertEq(_seededDraw(), 8, "first draw");
        for (uint256 i; i < 10; ++i) {
            _assertStatus(ids[i], i < 8 ? IVerinfer.TaskStatus.Committing : IVerinfer.TaskStatus.Queued);
        }
        VM.assertEq(_seededDraw(), 2, "second draw");
        VM.assertEq(uint256(verinfer.queuedTasks()), 0, "none left");
    }

    /// @dev Cancelled and expired entries skipped at a head are steps too: behind ten cancelled tasks a
    ///      live one waits one draw (8 skips), and starts in the next (2 skips and the start).
    function test_DeadEntriesCountAgainstTheStepBudget() public {
        _makeNodes(0, 3, H100);
        uint256[] memory dead = new uint256[](10);
        for (uint256 i; i < 10; ++i) {
            dead[i] = _queueImageTask(1, 0, FEE);
        }
        uint256 live = _queueImageTask(1, 0, FEE);
        VM.startPrank(creator);
        for (uint256 i; i < 10; ++i) {
            verinfer.cancelTask(dead[i]);
        }
        VM.stopPrank();
        bytes32 key = keccak256(abi.encode(IMAGE, bytes32(0), uint8(3))); // class 0, fee level 3
        VM.assertEq(_ext().queueLength(key), 11, "ten dead entries and the live one");
        VM.assertEq(_seededDraw(), 0, "first draw: eight skips");
        VM.assertEq(_ext().queueLength(key), 3, "two dead entries left");
        _assertStatus(live, IVerinfer.TaskStatus.Queued);
        VM.assertEq(_seededDraw(), 1, "second draw: two skips and the start");
        _assertStatus(live, IVerinfer.TaskStatus.Committing);
        VM.assertEq(_ext().queueLength(key), 0, "queue empty");
    }

    /// @dev Three queues (image any VRAM, text H100, image 80 GB class) of four tasks: a draw visits them
    ///      in turn, so its 8 starts are 3/3/2 and each round of three covers the three queues.
    function test_DrawIsRoundRobinOverQueues() public {
        _makeNodes(0, 45, H100);
        uint256[12] memory ids;
        for (uint256 i; i < 4; ++i) {
            ids[i] = _queueImageTask(1, 0, FEE);
        }
        for (uint256 i; i < 4; ++i) {
            ids[4 + i] = _queueTextTask(H100, 0, FEE);
        }
        for (uint256 i; i < 4; ++i) {
            ids[8 + i] = _queueImageTask(1, VRAM_70G, FEE);
        }
        VM.recordLogs();
        VM.assertEq(_seededDraw(), 8, "first draw");
        (uint256[] memory order,) = _started(VM.getRecordedLogs());
        uint256[3] memory perQueue;
        for (uint256 i; i < order.length; ++i) {
            ++perQueue[(order[i] - 1) / 4];
        }
        for (uint256 q; q < 3; ++q) {
            VM.assertGe(perQueue[q], 2, "queue served at least twice");
            VM.assertLe(perQueue[q], 3, "queue served at most three times");
        }
        for (uint256 round; round < 2; ++round) {
            uint256 a = (order[3 * round] - 1) / 4;
            uint256 b = (order[3 * round + 1] - 1) / 4;
            uint256 c = (order[3 * round + 2] - 1) / 4;
            VM.assertTrue(a != b && b != c && a != c, "a round visits every queue");
        }
        // within a queue, FIFO
        uint256[3] memory last;
        for (uint256 i; i < order.length; ++i) {
            uint256 q = (order[i] - 1) / 4;
            VM.assertGt(order[i], last[q], "FIFO within a queue");
            last[q] = order[i];
        }
        VM.assertEq(_seededDraw(), 4, "second draw");
        for (uint256 i; i < 12; ++i) {
            _assertStatus(ids[i], IVerinfer.TaskStatus.Committing);
        }
    }

    /// @dev Ten queues whose heads cannot start but one: the round robin reaches the servable one within
    ///      ceil(10 / MAX_DRAW_ATTEMPTS) = 2 draws, wherever it sits in the ring.
    function test_RoundRobinReachesEveryQueue() public {
        _makeNodes(0, 3, H100);
        uint256 servable = _queueImageTask(1, 0, FEE);
        for (uint256 level; level < 8; ++level) {
            _queueTextTask(RTX4060, 0, uint96(uint256(MIN_TASK_FEE) << level)); // 8 classes (fee levels), no nodes
        }
        _queueTextTask(RTX4090, 0, FEE);
        uint256 draws;
        while (_status(servable) == IVerinfer.TaskStatus.Queued && draws < 5) {
            _seededDraw();
            ++draws;
        }
        _assertStatus(servable, IVerinfer.TaskStatus.Committing);
        VM.assertLe(draws, 2, "reached within 2 draws");
        _log(string.concat("servable head behind 9 unservable queues started at draw ", _s(draws)));
    }

    // ================================================================ text pools

    /// @dev A text task draws only nodes of its model, and only while minTextPool of them (at the task's
    ///      fee level) are available; a queued task keeps the minTextPool of its parameter version.
    function test_TextTaskNeedsMinTextPool() public {
        // Tasks t1..t4 pay the text minimum (fee level 0); t5 pays 8x (level 3).
        _makeNodes(0, 2, H100);
        _makeNodes(10, 6, RTX4090);
        _makeNodes(20, 3, A100);
        uint256 t1 = _queueTextTask(H100, 0, MIN_TASK_FEE);
        _seededDraw();
        _assertStatus(t1, IVerinfer.TaskStatus.Queued); // 2 H100s < 3, whatever else is free
        _join(_nodeAddr(2), H100, MIN_STAKE);
        _seededDraw();
        _assertStatus(t1, IVerinfer.TaskStatus.Committing);
        address[3] memory n = _nodesOf(t1);
        bytes32 h100Id = _ext().gpuModelId(H100);
        for (uint256 k; k < 3; ++k) {
            VM.assertEq(_ext().getNode(n[k]).gpuModel, h100Id, "H100 node");
        }
        _runHonestTextTask(t1);

        // Version 2 (minTextPool 5) is scheduled; 100 s before it takes effect t2 starts on the three
        // H100s and t3 (version 1) queues behind it.
        IVerinfer.Params memory p = defaultParams();
        p.minTextPool = 5;
        VM.prank(owner);
        _ext().scheduleParams(p);
        uint256 effectiveAt = VM.getBlockTimestamp() + PARAMS_DELAY;
        _at(effectiveAt - 100);
        uint256 t2 = _queueTextTask(H100, 0, MIN_TASK_FEE);
        _seededDraw();
        _assertStatus(t2, IVerinfer.TaskStatus.Committing);
        uint256 t3 = _queueTextTask(H100, 0, MIN_TASK_FEE);
        _at(effectiveAt + 1);
        uint256 t4 = _queueTextTask(H100, 0, MIN_TASK_FEE); // activates version 2 first
        VM.assertEq(uint256(_ext().getTask(t3).paramsVersion), 1, "t3 under version 1");
        VM.assertEq(uint256(_ext().getTask(t4).paramsVersion), 2, "t4 under version 2");
        _runHonestTextTask(t2);
        _seededDraw();
        _assertStatus(t3, IVerinfer.TaskStatus.Committing); // 3 available: its minTextPool is 3
        _assertStatus(t4, IVerinfer.TaskStatus.Queued);
        _runHonestTextTask(t3);
        _seededDraw();
        _assertStatus(t4, IVerinfer.TaskStatus.Queued); // 3 available < 5
        _join(_nodeAddr(3), H100, MIN_STAKE);
        _seededDraw();
        _assertStatus(t4, IVerinfer.TaskStatus.Queued); // 4 < 5
        // Nodes priced above the task's fee level do not count toward its pool.
        _join(_nodeAddr(4), H100, 3, MIN_STAKE);
        _seededDraw();
        _assertStatus(t4, IVerinfer.TaskStatus.Queued); // 4 at level 0 < 5
        uint256 t5 = _queueTextTask(H100, 0, 8 * MIN_TASK_FEE); // level 3: 5 candidates
        _seededDraw();
        _assertStatus(t5, IVerinfer.TaskStatus.Committing);
        _assertStatus(t4, IVerinfer.TaskStatus.Queued);
    }
}

/// @notice Each eligible node is drawn about equally often.
contract VerinferDrawsUniformityTest is VerinferDrawsBase {
    // ================================================================ uniformity

    /// @dev Draws `taskId` (queued in the last touched block) under `trials` seed hashes; counts how
    ///      often each of `eligible` is drawn; fails if any other node is drawn.
    function _tally(uint256 taskId, address[] memory eligible, uint256 trials)
        internal
        returns (uint256[] memory counts)
    {
        uint256 seedBlock = verinfer.lastTouchBlock();
        uint256 snap = VM.snapshotState();
        counts = new uint256[](eligible.length);
        for (uint256 t; t < trials; ++t) {
            VM.revertToState(snap);
            VM.roll(seedBlock + 1);
            VM.setBlockhash(seedBlock, keccak256(abi.encode("uniformity", t)));
            VM.assertEq(verinfer.drawTasks(), 1, "started");
            address[3] memory n = _nodesOf(taskId);
            for (uint256 k; k < 3; ++k) {
                bool found;
                for (uint256 i; i < eligible.length; ++i) {
                    if (eligible[i] == n[k]) {
                        ++counts[i];
                        found = true;
                        break;
                    }
                }
                VM.assertTrue(found, "an ineligible node was drawn");
            }
        }
        VM.revertToState(snap);
    }

    /// @dev Pearson's statistic x 1000 of `counts` against 3 * trials / N each:
    ///      sum (c*N - 3T)^2 / (N * 3T). (Three distinct picks per draw make the counts less spread than
    ///      a multinomial, so chi-square quantiles with N - 1 degrees of freedom are conservative.)
    function _chi2Milli(uint256[] memory counts, uint256 trials) internal pure returns (uint256 stat) {
        uint256 n = counts.length;
        uint256 total = 3 * trials;
        for (uint256 i; i < n; ++i) {
            uint256 scaled = counts[i] * n;
            uint256 diff = scaled > total ? scaled - total : total - scaled;
            stat += diff * diff * 1000 / (n * total);
        }
    }

    function _report(string memory what, uint256[] memory counts, uint256 trials, uint256 boundMilli) internal view {
        uint256 stat = _chi2Milli(counts, trials);
        uint256 lo = type(uint256).max;
        uint256 hi;
        for (uint256 i; i < counts.length; ++i) {
            if (counts[i] < lo) lo = counts[i];
            if (counts[i] > hi) hi = counts[i];
        }
        string memory line = string.concat(
            what,
            ": ",
            _s(trials),
            " draws over ",
            _s(counts.length),
            " nodes, expected ",
            _s(3 * trials / counts.length),
            " each, min ",
            _s(lo),
            " max ",
            _s(hi),
            ", chi2 ",
            _s(stat / 1000),
            ".",
            _s(stat % 1000 / 100),
            " (bound ",
            _s(boundMilli / 1000),
            ".",
            _s(boundMilli % 1000 / 100),
            ")"
        );
        _log(line);
        VM.assertLt(stat, boundMilli, line);
    }

    /// @dev Ten nodes of one model: each is drawn about equally often. Bound: chi-square(9) at p = 0.001.
    function test_UniformDrawOverOneModel() public {
        address[] memory nodes = _makeNodes(0, 10, H100);
        uint256 id = _queueImageTask(1, 0, FEE);
        uint256 trials = 1000;
        _report("image, one model", _tally(id, nodes, trials), trials, 27_877);
    }

    /// @dev An 80 GB image task paying fee level 1 over two 80 GB models and two fee tiers; 24 GB nodes
    ///      and tier-3 nodes never drawn, the 8 eligible ones about equally. Bound: chi-square(7), p = 0.001.
    function test_UniformDrawAcrossModelsAndFeeTiers() public {
        address[] memory eligible = new address[](8);
        for (uint256 i; i < 3; ++i) {
            eligible[i] = _nodeAddr(i);
            _join(eligible[i], H100, 0, MIN_STAKE);
        }
        _makeNodes(10, 4, RTX4090); // too little VRAM
        for (uint256 i; i < 3; ++i) {
            eligible[3 + i] = _nodeAddr(20 + i);
            _join(eligible[3 + i], A100, 1, MIN_STAKE);
        }
        for (uint256 i; i < 2; ++i) {
            _join(_nodeAddr(30 + i), A100, 3, MIN_STAKE); // priced above the task
        }
        for (uint256 i; i < 2; ++i) {
            eligible[6 + i] = _nodeAddr(40 + i);
            _join(eligible[6 + i], H100, 1, MIN_STAKE);
        }
        uint96 fee = uint96(2 * _ext().minTaskFee(IMAGE, 1));
        uint256 id = _queueImageTask(1, VRAM_70G, fee);
        VM.assertEq(uint256(_ext().getTask(id).feeLevel), 1, "fee level 1");
        uint256 trials = 1000;
        _report("image, 80 GB over two models and tiers", _tally(id, eligible, trials), trials, 24_322);
    }

    /// @dev A text task on H100 with as many A100s (same VRAM) available: only the H100s, uniformly.
    ///      Bound: chi-square(5), p = 0.001.
    function test_UniformTextDraw() public {
        address[] memory h100 = _makeNodes(0, 6, H100);
        _makeNodes(10, 6, A100);
        uint256 id = _queueTextTask(H100, 0, FEE);
        uint256 trials = 600;
        _report("text, H100 only", _tally(id, h100, trials), trials, 20_515);
    }
}

/// @notice The owner-kept GPU registry.
contract VerinferDrawsRegistryTest is VerinferDrawsBase {
    // ================================================================ GPU registry

    function test_AddGpuModel_VramLimits() public {
        VM.startPrank(owner);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.VramTooSmall.selector, uint32(1023), uint32(1024)));
        _ext().addGpuModel("tiny", 1023);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.VramTooLarge.selector, uint32((1 << 24) + 1), uint32(1 << 24)));
        _ext().addGpuModel("huge", (1 << 24) + 1);
        _ext().addGpuModel("smallest", 1024);
        _ext().addGpuModel("largest", 1 << 24);
        VM.stopPrank();
        VM.assertEq(uint256(_ext().gpuModel(_ext().gpuModelId("smallest")).vramMiB), 1024, "smallest");
        VM.assertEq(uint256(_ext().gpuModel(_ext().gpuModelId("largest")).vramMiB), 1 << 24, "largest");

        VM.prank(stranger);
        VM.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, stranger));
        _ext().addGpuModel("mine", 8192);
    }

    function test_AddGpuModel_NormalisesAndRefusesDuplicates() public {
        bytes32 id = _ext().gpuModelId(H100);
        VM.prank(owner);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.GpuModelAlreadyRegistered.selector, id));
        _ext().addGpuModel("  nvidia   H100 80gb\tHBM3 ", 40_960);
        VM.prank(owner);
        VM.expectRevert(GpuModels.EmptyGpuModel.selector);
        _ext().addGpuModel("   ", 8192);

        IVerinfer.GpuModelInfo memory info = _ext().gpuModel(id);
        VM.assertEq(info.id, id, "id");
        VM.assertEq(info.name, "nvidia h100 80gb hbm3", "normal name");
        VM.assertEq(uint256(info.vramMiB), VRAM_80G, "VRAM unchanged");
        VM.assertTrue(info.active, "active");

        bytes32 l4 = _ext().gpuModelId("NVIDIA L4");
        VM.expectEmit(address(verinfer));
        emit IVerinfer.GpuModelAdded(l4, "nvidia l4", 23_034);
        VM.prank(owner);
        _ext().addGpuModel("NVIDIA   L4", 23_034);
        VM.assertEq(_ext().gpuModelCount(), 5, "five models");
        VM.assertEq(_ext().gpuModelAt(4).id, l4, "registration order");
        // A node declaring it in another spelling joins it.
        _join(_nodeAddr(0), "nvidia l4", MIN_STAKE);
        VM.assertEq(_ext().getNode(_nodeAddr(0)).gpuModel, l4, "same model");
        VM.assertEq(uint256(_ext().getNode(_nodeAddr(0)).vramMiB), 23_034, "registry VRAM");
    }

    function test_AddGpuModel_AtMostMaxGpuModels() public {
        uint256 max = verinfer.MAX_GPU_MODELS();
        VM.assertEq(max, 32, "MAX_GPU_MODELS");
        VM.startPrank(owner);
        for (uint256 i = _ext().gpuModelCount(); i < max; ++i) {
            _ext().addGpuModel(string.concat("gpu model ", _s(i)), uint32(2048 * (i + 1)));
        }
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.TooManyGpuModels.selector, max));
        _ext().addGpuModel("one too many", 8192);
        VM.stopPrank();
        VM.assertEq(_ext().gpuModelCount(), max, "32 models");
        VM.assertEq(_ext().gpuModelAt(max - 1).name, "gpu model 31", "last");
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.GpuModelNotRegistered.selector, bytes32(max)));
        _ext().gpuModelAt(max);

        // A draw over the full registry: an image task only the last model can serve.
        string memory last = "gpu model 31";
        address[] memory nodes = _makeNodes(0, 3, last);
        _makeNodes(10, 6, RTX4090);
        uint256 id = _queueImageTask(1, 2048 * 32, FEE);
        uint256 seedBlock = verinfer.lastTouchBlock();
        _roll(1);
        VM.setBlockhash(seedBlock, _seedOf(seedBlock));
        uint256 gasBefore = gasleft();
        verinfer.drawTasks();
        uint256 gasUsed = gasBefore - gasleft();
        _assertStatus(id, IVerinfer.TaskStatus.Committing);
        VM.assertEq(_countIn(_nodesOf(id), nodes), 3, "the last model's nodes");
        _log(string.concat("draw of a 64 GiB task over 32 registered models: ", _s(gasUsed), " gas"));
    }

    /// @dev What the first call of a block may pay for the draw: eight image tasks started at once, each
    ///      counting candidates over the full registry of 32 models (only the last one qualifies).
    ///      Measured: 0.87 M gas in one test transaction (warm slots), 1.40 M with `--isolate` (cold).
    function test_DrawGasEightStartsOverFullRegistry() public {
        VM.startPrank(owner);
        for (uint256 i = _ext().gpuModelCount(); i < 32; ++i) {
            _ext().addGpuModel(string.concat("gpu model ", _s(i)), uint32(2048 * (i + 1)));
        }
        VM.stopPrank();
        _makeNodes(0, 24, "gpu model 31");
        _makeNodes(100, 10, RTX4090);
        for (uint256 i; i < 8; ++i) {
            _queueImageTask(16, 2048 * 32, 10 * FEE);
        }
        uint256 seedBlock = verinfer.lastTouchBlock();
        _roll(1);
        VM.setBlockhash(seedBlock, _seedOf(seedBlock));
        uint256 gasBefore = gasleft();
        uint256 started = verinfer.drawTasks();
        uint256 gasUsed = gasBefore - gasleft();
        VM.assertEq(started, 8, "eight started");
        _log(string.concat("draw starting 8 tasks over 32 registered models: ", _s(gasUsed), " gas"));
        VM.assertLt(gasUsed, 2_000_000, "draw gas");
    }

    function test_InactiveModelRefusesJoinsButKeepsItsNodes() public {
        bytes32 id = _ext().gpuModelId(RTX4090);
        address[] memory nodes = _makeNodes(0, 3, RTX4090);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.GpuModelActiveSet(id, false);
        VM.prank(owner);
        _ext().setGpuModelActive(id, false);
        VM.assertFalse(_ext().gpuModel(id).active, "inactive");

        address late = _nodeAddr(3);
        _fund(late, MIN_STAKE);
        VM.prank(late);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.GpuModelInactive.selector, id));
        verinfer.join(RTX4090, 0, MIN_STAKE);

        // Its nodes keep serving, and text tasks may still name it.
        uint256 t = _queueTextTask(RTX4090, 0, FEE);
        _seededDraw();
        _assertStatus(t, IVerinfer.TaskStatus.Committing);
        VM.assertEq(_countIn(_nodesOf(t), nodes), 3, "its nodes drawn");

        VM.prank(owner);
        _ext().setGpuModelActive(id, true);
        VM.prank(late);
        verinfer.join(RTX4090, 0, MIN_STAKE);
        _assertNodeState(late, IVerinfer.NodeState.Available);

        bytes32 unknown = _ext().gpuModelId("unknown gpu");
        VM.prank(owner);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.GpuModelNotRegistered.selector, unknown));
        _ext().setGpuModelActive(unknown, true);
        VM.prank(stranger);
        VM.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, stranger));
        _ext().setGpuModelActive(id, false);
    }

    function test_TaskShapeChecksAgainstRegistry() public {
        bytes32 unknown = _ext().gpuModelId("unknown gpu");
        bytes32 rtx4060 = _ext().gpuModelId(RTX4060);
        VM.startPrank(creator);
        VM.expectRevert(IVerinfer.GpuModelRequiredForText.selector);
        verinfer.createTask(TEXT, keccak256("a"), 0, 0, "", FEE);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.GpuModelNotRegistered.selector, unknown));
        verinfer.createTask(TEXT, keccak256("a"), 0, 0, "unknown gpu", FEE);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.GpuModelLacksVram.selector, rtx4060, VRAM_8G, uint32(16_384)));
        verinfer.createTask(TEXT, keccak256("a"), 0, 16_384, RTX4060, FEE);
        VM.expectRevert(IVerinfer.GpuModelNotAllowedForImages.selector);
        verinfer.createTask(IMAGE, keccak256("a"), 1, 0, H100, FEE);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.NoGpuModelFits.selector, uint32(VRAM_80G + 1)));
        verinfer.createTask(IMAGE, keccak256("a"), 1, VRAM_80G + 1, "", FEE);
        VM.stopPrank();
        // An image task exactly at the largest registered VRAM is accepted.
        uint256 id = _queueImageTask(1, VRAM_80G, FEE);
        _assertStatus(id, IVerinfer.TaskStatus.Queued);
    }

    function test_RegistryViewsCountAvailableNodes() public {
        _makeNodes(0, 3, H100);
        _makeNodes(10, 2, A100);
        _makeNodes(20, 4, RTX4060);
        _join(_nodeAddr(30), H100, 5, MIN_STAKE);
        bytes32 h100 = _ext().gpuModelId(H100);
        VM.assertEq(uint256(_ext().gpuModel(h100).availableNodes), 4, "all fee tiers");
        VM.assertEq(_ext().availableNodes(h100, 0), 4, "H100");
        VM.assertEq(_ext().availableNodes(h100, VRAM_80G + 1), 0, "H100 lacks the VRAM");
        VM.assertEq(_ext().availableNodes(bytes32(0), 0), 10, "everybody");
        VM.assertEq(_ext().availableNodes(bytes32(0), VRAM_70G), 6, "80 GB nodes");
        VM.assertEq(_ext().availableNodes(_ext().gpuModelId("unknown gpu"), 0), 0, "unknown model");
        bytes32 unknown = _ext().gpuModelId("unknown gpu");
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.GpuModelNotRegistered.selector, unknown));
        _ext().gpuModel(unknown);
        _createImageTask(); // three of them busy
        VM.assertEq(_ext().availableNodes(bytes32(0), 0), 7, "three busy");
    }
}

/// @notice Node fee tiers and task fee levels.
contract VerinferDrawsFeeTierTest is VerinferDrawsBase {
    // ================================================================ fee tiers

    function test_FeeLevelOfTasks() public {
        uint96 min = uint96(_ext().minTaskFee(IMAGE, 1));
        uint96[8] memory fees = [min, 2 * min - 1, 2 * min, 3 * min, 4 * min, 128 * min - 1, 128 * min, 1000 * min];
        uint8[8] memory levels = [0, 0, 1, 1, 2, 6, 7, 7];
        for (uint256 i; i < 8; ++i) {
            uint256 id = _queueImageTask(1, 0, fees[i]);
            VM.assertEq(uint256(_ext().getTask(id).feeLevel), levels[i], string.concat("fee #", _s(i)));
        }
        uint256 t = _queueTextTask(H100, 0, 4 * MIN_TASK_FEE);
        VM.assertEq(uint256(_ext().getTask(t).feeLevel), 2, "text: 4x the text minimum");
    }

    function test_FeeTierBounds() public {
        address node = _nodeAddr(0);
        _fund(node, MIN_STAKE);
        VM.prank(node);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.InvalidFeeTier.selector, uint8(8), uint8(7)));
        verinfer.join(H100, 8, MIN_STAKE);
        VM.prank(node);
        verinfer.join(H100, 7, MIN_STAKE);
        VM.assertEq(uint256(_ext().getNode(node).feeTier), 7, "tier 7");
        VM.prank(node);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.InvalidFeeTier.selector, uint8(8), uint8(7)));
        verinfer.setFeeTier(8);
        VM.prank(stranger);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.NotRegistered.selector, stranger));
        verinfer.setFeeTier(1);
    }

    /// @dev Nodes of tier 1 only: a task at the minimum waits, one paying twice starts.
    function test_PricedNodesServeOnlyPayingTasks() public {
        for (uint256 i; i < 3; ++i) {
            _join(_nodeAddr(i), H100, 1, MIN_STAKE);
        }
        uint96 min = uint96(_ext().minTaskFee(IMAGE, 1));
        uint256 cheap = _queueImageTask(1, 0, min);
        uint256 paying = _queueImageTask(1, 0, 2 * min);
        _seededDraw();
        _assertStatus(cheap, IVerinfer.TaskStatus.Queued);
        _assertStatus(paying, IVerinfer.TaskStatus.Committing);
    }

    /// @dev setFeeTier of an available node applies to the next block's draws; a busy node keeps its
    ///      task and re-enters the pools at the new tier; a kicked node cannot set one.
    function test_SetFeeTier() public {
        address[] memory nodes = _makeNodes(0, 4, H100);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.FeeTierSet(nodes[0], 3);
        VM.prank(nodes[0]);
        verinfer.setFeeTier(3);
        VM.assertEq(uint256(_ext().getNode(nodes[0]).feeTier), 3, "tier 3");
        uint256 a = _queueImageTask(1, 0, FEE / 4); // level 1 (10/4 = 2.5 >= 2 x 1.1)
        _seededDraw();
        VM.assertEq(_countIn(_nodesOf(a), _list3(nodes[1], nodes[2], nodes[3])), 3, "tier-3 node not drawn");
        _runHonestImageTask(a);

        // The first call of a block draws before its own tier change.
        VM.prank(nodes[0]);
        verinfer.setFeeTier(0);
        uint256 b = _queueImageTask(1, 0, FEE / 4);
        _roll(1);
        VM.prank(nodes[1]);
        verinfer.setFeeTier(7); // draws first (4 candidates), then changes its tier
        _assertStatus(b, IVerinfer.TaskStatus.Committing);
        VM.assertEq(uint256(_ext().getNode(nodes[1]).feeTier), 7, "tier recorded");
        _runHonestImageTask(b);
        _assertNodeState(nodes[1], IVerinfer.NodeState.Available);

        // Now a level-1 task never draws nodes[1].
        uint256 c = _queueImageTask(1, 0, FEE / 4);
        _seededDraw();
        VM.assertEq(_countIn(_nodesOf(c), _list3(nodes[0], nodes[2], nodes[3])), 3, "tier-7 node not drawn");

        // A kicked node cannot set a tier.
        uint256 d = _queueImageTask(1, 0, FEE);
        _runHonestImageTask(c);
        _seededDraw();
        address[3] memory n = _nodesOf(d);
        uint64[] memory h = _trueHashes(d, 1);
        _runImageTask(d, [h, h, _hashes(~h[0])]);
        _assertNodeState(n[2], IVerinfer.NodeState.Kicked);
        VM.prank(n[2]);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.NodeIsKicked.selector, n[2]));
        verinfer.setFeeTier(0);
    }

    function _list3(address a, address b, address c) internal pure returns (address[] memory l) {
        l = new address[](3);
        (l[0], l[1], l[2]) = (a, b, c);
    }
}

/// @notice Scheduled parameter versions.
contract VerinferDrawsParamsTest is VerinferDrawsBase {
    // ================================================================ parameters

    function _params2() internal pure returns (IVerinfer.Params memory p) {
        p = defaultParams();
        p.threshold = 7;
        p.commitWindow = 600;
        p.minTaskFee = 2 ether;
    }

    function _assertParams(IVerinfer.Params memory got, IVerinfer.Params memory expected, string memory what)
        internal
        pure
    {
        VM.assertEq(keccak256(abi.encode(got)), keccak256(abi.encode(expected)), what);
    }

    function test_ScheduleParams_TakesEffectAfterDelay() public {
        IVerinfer.Params memory p2 = _params2();
        uint256 at = VM.getBlockTimestamp() + PARAMS_DELAY;
        VM.expectEmit(address(verinfer));
        emit IVerinfer.ParamsScheduled(2, p2, uint40(at));
        VM.prank(owner);
        _ext().scheduleParams(p2);
        (uint24 version, IVerinfer.Params memory scheduled, uint40 effectiveAt) = _ext().scheduledParams();
        VM.assertEq(uint256(version), 2, "scheduled version");
        VM.assertEq(uint256(effectiveAt), at, "effective at");
        _assertParams(scheduled, p2, "scheduled values");
        _assertParams(_ext().params(), defaultParams(), "version 1 in force");
        VM.assertEq(_ext().minTaskFee(TEXT, 0), MIN_TASK_FEE, "v1 minimum");

        _at(at - 1);
        VM.assertEq(uint256(_ext().paramsVersion()), 1, "one second before");
        uint256 early = _queueImageTask(1, 0, FEE); // waits: no nodes yet
        VM.assertEq(uint256(_ext().getTask(early).paramsVersion), 1, "created under version 1");

        _at(at);
        VM.assertEq(uint256(_ext().paramsVersion()), 2, "in force at effectiveAt (view)");
        (version,,) = _ext().scheduledParams();
        VM.assertEq(uint256(version), 0, "nothing scheduled any more");
        VM.assertEq(_ext().minTaskFee(TEXT, 0), 2 ether, "v2 minimum");
        VM.expectEmit(address(verinfer));
        emit IVerinfer.ParamsActivated(2);
        VM.prank(stranger);
        verinfer.drawTasks(); // the block's first call activates version 2
        _makeNodes(0, 6, H100);
        uint256 late = _queueImageTask(1, 0, FEE);
        VM.assertEq(uint256(_ext().getTask(late).paramsVersion), 2, "created under version 2");
        _assertParams(_ext().paramsAt(1), defaultParams(), "version 1 kept");
        _assertParams(_ext().params(), p2, "version 2 in force");

        // The early task starts under version 2 but runs under version 1 (300 s commit window).
        _seededDraw();
        _assertStatus(early, IVerinfer.TaskStatus.Committing);
        VM.assertEq(
            uint256(_ext().getTask(early).commitDeadline), VM.getBlockTimestamp() + COMMIT_WINDOW, "v1 commit window"
        );
        _assertParams(_ext().taskParams(early), defaultParams(), "taskParams");
    }

    function test_ScheduleParams_ReplacesPending() public {
        VM.prank(owner);
        _ext().scheduleParams(_params2());
        _roll(1);
        IVerinfer.Params memory p3 = defaultParams();
        p3.threshold = 3;
        VM.expectEmit(address(verinfer));
        emit IVerinfer.ParamsScheduleCancelled(2);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.ParamsScheduled(2, p3, uint40(VM.getBlockTimestamp() + PARAMS_DELAY));
        VM.prank(owner);
        _ext().scheduleParams(p3);
        _at(VM.getBlockTimestamp() + PARAMS_DELAY);
        VM.prank(stranger);
        verinfer.drawTasks();
        VM.assertEq(uint256(_ext().paramsVersion()), 2, "version 2");
        _assertParams(_ext().params(), p3, "the replacement");
    }

    function test_CancelScheduledParams() public {
        VM.prank(stranger);
        VM.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, stranger));
        _ext().cancelScheduledParams();
        VM.prank(owner);
        VM.expectRevert(IVerinfer.NoScheduledParams.selector);
        _ext().cancelScheduledParams();

        VM.prank(owner);
        _ext().scheduleParams(_params2());
        VM.expectEmit(address(verinfer));
        emit IVerinfer.ParamsScheduleCancelled(2);
        VM.prank(owner);
        _ext().cancelScheduledParams();
        (uint24 version,,) = _ext().scheduledParams();
        VM.assertEq(uint256(version), 0, "cancelled");
        _at(VM.getBlockTimestamp() + PARAMS_DELAY + 1);
        VM.prank(stranger);
        verinfer.drawTasks();
        VM.assertEq(uint256(_ext().paramsVersion()), 1, "still version 1");
        _assertParams(_ext().params(), defaultParams(), "still version 1");

        // Once its time has come, a scheduled version cannot be cancelled (the call activates it first).
        VM.prank(owner);
        _ext().scheduleParams(_params2());
        _at(VM.getBlockTimestamp() + PARAMS_DELAY);
        VM.prank(owner);
        VM.expectRevert(IVerinfer.NoScheduledParams.selector);
        _ext().cancelScheduledParams();
        VM.assertEq(uint256(_ext().paramsVersion()), 2, "in force");
    }

    function test_ScheduleParams_Validation() public {
        VM.prank(stranger);
        VM.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, stranger));
        _ext().scheduleParams(defaultParams());

        IVerinfer.Params[] memory bad = new IVerinfer.Params[](10);
        bytes[] memory errors = new bytes[](10);
        for (uint256 i; i < 10; ++i) {
            bad[i] = defaultParams();
        }
        bad[0].minTextPool = 2;
        errors[0] = abi.encodeWithSelector(IVerinfer.InvalidMinTextPool.selector, uint8(2));
        bad[1].threshold = 65;
        errors[1] = abi.encodeWithSelector(IVerinfer.ThresholdTooHigh.selector, uint8(65), uint8(64));
        bad[2].slashShareBps = 0;
        errors[2] = abi.encodeWithSelector(IVerinfer.InvalidBps.selector, uint16(0));
        bad[3].slashRewardBps = BPS + 1;
        errors[3] = abi.encodeWithSelector(IVerinfer.InvalidBps.selector, uint16(BPS + 1));
        bad[4].protocolFeeBps = BPS + 1;
        errors[4] = abi.encodeWithSelector(IVerinfer.InvalidBps.selector, uint16(BPS + 1));
        bad[5].commitWindow = 0;
        errors[5] = abi.encodeWithSelector(IVerinfer.InvalidWindow.selector, uint32(0), REVEAL_WINDOW);
        bad[6].revealWindow = 7 days + 1;
        errors[6] = abi.encodeWithSelector(IVerinfer.InvalidWindow.selector, COMMIT_WINDOW, uint32(7 days + 1));
        bad[7].queueTimeout = 0;
        errors[7] = abi.encodeWithSelector(IVerinfer.InvalidQueueTimeout.selector, uint32(0));
        bad[8].minStake = 0;
        errors[8] = abi.encodeWithSelector(IVerinfer.ZeroAmount.selector);
        bad[9].stakePerThresholdBit = MIN_STAKE; // 10 bits x 1000 > 1000
        errors[9] = abi.encodeWithSelector(IVerinfer.StakeTooLowForThreshold.selector, MIN_STAKE, MIN_STAKE, THRESHOLD);
        for (uint256 i; i < 10; ++i) {
            VM.prank(owner);
            VM.expectRevert(errors[i]);
            _ext().scheduleParams(bad[i]);
        }
        IVerinfer.Params memory edge = defaultParams();
        edge.slashShareBps = BPS;
        edge.slashRewardBps = BPS;
        edge.threshold = 64;
        edge.stakePerThresholdBit = 0;
        edge.queueTimeout = 365 days;
        VM.prank(owner);
        _ext().scheduleParams(edge);
    }

    function test_ParamsDelayLimits() public {
        uint32 max = verinfer.MAX_PARAMS_DELAY();
        VM.assertEq(uint256(max), 30 days, "MAX_PARAMS_DELAY");
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.ParamsDelayTooLong.selector, max + 1));
        new Verinfer(token, defaultParams(), max + 1, owner, treasury);
        Verinfer v = new Verinfer(token, defaultParams(), max, owner, treasury);
        VM.assertEq(uint256(v.paramsDelay()), 30 days, "30 days accepted");
        VM.assertEq(uint256(verinfer.paramsDelay()), PARAMS_DELAY, "fixture delay");
    }

    function test_ZeroParamsDelayAppliesAtOnce() public {
        _redeploy(0);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.ParamsActivated(2);
        VM.prank(owner);
        _ext().scheduleParams(_params2());
        VM.assertEq(uint256(_ext().paramsVersion()), 2, "in force at once");
        _assertParams(_ext().params(), _params2(), "values");
        uint256 id = _queueImageTask(1, 0, FEE);
        VM.assertEq(uint256(_ext().getTask(id).paramsVersion), 2, "same-transaction task");
    }
}

/// @notice Expiry, dead queue entries and withdrawals.
contract VerinferDrawsWithdrawTest is VerinferDrawsBase {
    // ================================================================ expiry and withdrawals

    function test_ExpireTask() public {
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.UnknownTask.selector, 99));
        verinfer.expireTask(99);
        uint256 id = _queueImageTask(1, 0, FEE); // no nodes
        uint40 expiresAt = _ext().getTask(id).expiresAt;
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.TaskNotExpired.selector, id, expiresAt));
        verinfer.expireTask(id);

        VM.warp(expiresAt);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.TaskExpired(id);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.BalanceCredited(creator, id, IVerinfer.CreditReason.FeeRefunded, FEE);
        VM.prank(stranger);
        verinfer.expireTask(id); // same block as the creation: no draw runs first
        _assertStatus(id, IVerinfer.TaskStatus.Expired);
        VM.assertEq(uint256(verinfer.queuedTasks()), 0, "not queued");
        // Expiring it again does nothing (no second refund).
        VM.recordLogs();
        verinfer.expireTask(id);
        VM.assertEq(VM.getRecordedLogs().length, 0, "no event the second time");
        VM.assertEq(verinfer.claimable(creator), FEE, "refunded once");
        VM.prank(creator);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.TaskNotQueued.selector, id, IVerinfer.TaskStatus.Expired));
        verinfer.cancelTask(id);

        // A draw skips it (and the queue it was in empties).
        _makeNodes(0, 3, H100);
        VM.assertEq(_seededDraw(), 0, "nothing to start");
        VM.assertEq(verinfer.claimable(creator), FEE, "still refunded once");
    }

    /// @dev expireTask as the first call of a block whose draw meets the expired task first: the call
    ///      succeeds (it does not undo its own draw's expiry) and the fee is refunded once.
    function test_ExpireTaskAfterItsOwnDrawExpiredIt() public {
        _makeNodes(0, 3, RTX4090);
        uint256 id = _queueImageTask(1, VRAM_70G, FEE); // nobody has 80 GB
        _seededDraw();
        _assertStatus(id, IVerinfer.TaskStatus.Queued);
        _at(_ext().getTask(id).expiresAt);
        VM.assertTrue(_ext().drawDue(), "the call will draw first");
        VM.recordLogs();
        VM.prank(stranger);
        verinfer.expireTask(id);
        _assertStatus(id, IVerinfer.TaskStatus.Expired);
        Vm.Log[] memory logs = VM.getRecordedLogs();
        uint256 expired;
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].topics[0] == IVerinfer.TaskExpired.selector) ++expired;
        }
        VM.assertEq(expired, 1, "one TaskExpired");
        VM.assertEq(verinfer.claimable(creator), FEE, "refunded once");
    }

    /// @dev Cancelled and expired heads are skipped by draws; the live task behind them starts.
    function test_DrawSkipsDeadHeads() public {
        uint256 a = _queueImageTask(1, 0, FEE);
        uint256 b = _queueImageTask(1, 0, FEE);
        uint256 c = _queueImageTask(1, 0, FEE);
        VM.prank(creator);
        verinfer.cancelTask(a);
        _at(VM.getBlockTimestamp() + QUEUE_TIMEOUT / 2);
        uint256 d = _queueImageTask(1, 0, FEE);
        _at(VM.getBlockTimestamp() + QUEUE_TIMEOUT / 2); // b and c expired, d not
        _makeNodes(0, 3, H100); // this block's first call: the draw expires b and c (d cannot start: no nodes yet)
        _assertStatus(b, IVerinfer.TaskStatus.Expired);
        _assertStatus(c, IVerinfer.TaskStatus.Expired);
        _assertStatus(d, IVerinfer.TaskStatus.Queued);
        VM.assertEq(_seededDraw(), 1, "d starts");
        _assertStatus(d, IVerinfer.TaskStatus.Committing);
        VM.assertEq(verinfer.claimable(creator), 2 * uint256(FEE), "b and c refunded");
    }

    function test_WithdrawNothing() public {
        VM.prank(stranger);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.NothingToWithdraw.selector, stranger));
        verinfer.withdraw();
    }

    /// @dev Credits of every reason accumulate; withdraw sends them all at once and zeroes the balance.
    function test_WithdrawSendsEverythingCredited() public {
        _makeNodes(0, 3, H100);
        uint256 id = _createImageTask();
        address[3] memory n = _nodesOf(id);
        uint64[] memory h = _trueHashes(id, 1);
        VM.recordLogs();
        _runImageTask(id, [h, h, _hashes(~h[0])]);
        Vm.Log[] memory logs = VM.getRecordedLogs();
        uint256 slashed = uint256(MIN_STAKE) * SLASH_BPS / BPS;
        uint256 rewardEach = slashed * SLASH_REWARD_BPS / BPS / 2;
        uint256 credits;
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].topics[0] == IVerinfer.BalanceCredited.selector) {
                ++credits;
                (IVerinfer.CreditReason reason, uint256 amount) =
                    abi.decode(logs[i].data, (IVerinfer.CreditReason, uint256));
                address account = address(uint160(uint256(logs[i].topics[1])));
                if (account == n[2]) {
                    VM.assertEq(uint256(reason), uint256(IVerinfer.CreditReason.StakeReturned), "kicked: stake");
                    VM.assertEq(amount, MIN_STAKE - slashed, "kicked: amount");
                } else {
                    VM.assertEq(uint256(reason), uint256(IVerinfer.CreditReason.SlashReward), "agreeing: reward");
                    VM.assertEq(amount, rewardEach, "agreeing: amount");
                }
            }
        }
        VM.assertEq(credits, 3, "three credits");

        // n[0] also gets a refund as creator of an expired task.
        token.mint(n[0], FEE);
        VM.prank(n[0]);
        uint256 own = verinfer.createTask(IMAGE, keccak256("own"), 1, VRAM_80G, "", FEE); // 80 GB: nobody free
        VM.warp(VM.getBlockTimestamp() + QUEUE_TIMEOUT);
        VM.prank(n[0]);
        verinfer.expireTask(own);
        uint256 total = rewardEach + FEE;
        VM.assertEq(verinfer.claimable(n[0]), total, "reward + refund");
        uint256 before = token.balanceOf(n[0]);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.Withdrawn(n[0], total);
        VM.prank(n[0]);
        VM.assertEq(verinfer.withdraw(), total, "withdrawn");
        VM.assertEq(token.balanceOf(n[0]) - before, total, "received");
        VM.assertEq(verinfer.claimable(n[0]), 0, "zeroed");
        _assertNodeState(n[0], IVerinfer.NodeState.Available); // withdrawing credits leaves the stake alone
        VM.assertGt(_stakeOf(n[0]), MIN_STAKE, "stake (with the fee reward) untouched");
        VM.prank(n[0]);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.NothingToWithdraw.selector, n[0]));
        verinfer.withdraw();
    }
}
