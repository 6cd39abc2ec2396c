// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Verinfer} from "../../src/Verinfer.sol";
import {IVerinfer} from "../../src/interfaces/IVerinfer.sol";
import {MockStakingToken} from "../../src/mocks/MockStakingToken.sol";
import {VM} from "../Vm.sol";
import {VerinferHandler} from "./VerinferHandler.sol";

/// @notice Invariants of Verinfer under random protocol traffic (see VerinferHandler).
/// @dev forge-std is not a dependency: forge reads `targetContracts()` and `targetSelectors()`
///      from the test contract itself.
contract VerinferInvariantsTest {
    struct FuzzSelector {
        address addr;
        bytes4[] selectors;
    }

    MockStakingToken internal token;
    Verinfer internal verinfer;
    VerinferHandler internal handler;
    address internal owner = address(uint160(0xA11CE));

    function setUp() public {
        VM.warp(1_700_000_000);
        token = new MockStakingToken();
        verinfer = new Verinfer(
            token,
            IVerinfer.InitParams({
                threshold: 10,
                minStake: 1000 ether,
                stakePerThresholdBit: 100 ether,
                slashShareBps: 5000,
                protocolFeeBps: 500,
                commitWindow: 300,
                revealWindow: 300
            }),
            owner,
            address(uint160(0x7EA5))
        );
        handler = new VerinferHandler(verinfer, token, owner);
        // Nine nodes to start with, three per model.
        for (uint256 i; i < 9; ++i) {
            handler.join(i, i, 2, i);
        }
    }

    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    /// @dev Task steps are listed several times: forge draws selectors uniformly from this list,
    ///      so this weights the draw towards tasks that get created, committed, revealed, settled.
    function targetSelectors() public view returns (FuzzSelector[] memory targets) {
        bytes4[] memory selectors = new bytes4[](20);
        selectors[0] = VerinferHandler.join.selector;
        selectors[1] = VerinferHandler.addStake.selector;
        selectors[2] = VerinferHandler.leave.selector;
        selectors[3] = VerinferHandler.cancelTask.selector;
        selectors[4] = VerinferHandler.dispatch.selector;
        selectors[5] = VerinferHandler.setParams.selector;
        selectors[6] = VerinferHandler.withdrawTreasury.selector;
        for (uint256 i; i < 3; ++i) {
            selectors[7 + i] = VerinferHandler.createTask.selector;
            selectors[10 + i] = VerinferHandler.commit.selector;
            selectors[13 + i] = VerinferHandler.reveal.selector;
        }
        selectors[16] = VerinferHandler.settle.selector;
        selectors[17] = VerinferHandler.settle.selector;
        selectors[18] = VerinferHandler.warp.selector;
        selectors[19] = VerinferHandler.warp.selector;
        targets = new FuzzSelector[](1);
        targets[0] = FuzzSelector({addr: address(handler), selectors: selectors});
    }

    function _isLive(IVerinfer.TaskStatus s) internal pure returns (bool) {
        return s == IVerinfer.TaskStatus.Committing || s == IVerinfer.TaskStatus.Revealing;
    }

    /// @dev (a) The contract holds exactly the node stakes, the fees of unfinished tasks and the
    ///      treasury balance: nothing is created or lost by any sequence of steps.
    /// forge-config: default.invariant.fail-on-revert = true
    /// forge-config: ci.invariant.fail-on-revert = true
    function invariant_tokenBalanceEqualsStakesFeesAndTreasury() public view {
        uint256 stakes;
        uint256 actors = handler.actorCount();
        for (uint256 i; i < actors; ++i) {
            stakes += verinfer.getNode(handler.actors(i)).stake;
        }
        uint256 escrow;
        uint256 tasks = verinfer.taskCount();
        for (uint256 id = 1; id <= tasks; ++id) {
            IVerinfer.TaskInfo memory t = verinfer.getTask(id);
            if (t.status == IVerinfer.TaskStatus.Queued || _isLive(t.status)) escrow += t.fee;
        }
        VM.assertEq(
            token.balanceOf(address(verinfer)),
            stakes + escrow + verinfer.treasuryBalance(),
            "balance == stakes + escrowed fees + treasury"
        );
    }

    /// @dev (b) A node is in at most one task: every Busy or Leaving node points at a live task
    ///      that lists it; no other node is listed by a live task; no two live tasks share a node.
    /// forge-config: default.invariant.fail-on-revert = true
    /// forge-config: ci.invariant.fail-on-revert = true
    function invariant_nodeInAtMostOneTask() public view {
        uint256 actors = handler.actorCount();
        uint256 tasks = verinfer.taskCount();
        for (uint256 i; i < actors; ++i) {
            address node = handler.actors(i);
            IVerinfer.NodeInfo memory n = verinfer.getNode(node);
            uint256 listedIn;
            uint256 listingTask;
            for (uint256 id = 1; id <= tasks; ++id) {
                IVerinfer.TaskInfo memory t = verinfer.getTask(id);
                if (!_isLive(t.status)) continue;
                for (uint256 k; k < 3; ++k) {
                    if (t.nodes[k] == node) {
                        ++listedIn;
                        listingTask = id;
                    }
                }
            }
            VM.assertLe(listedIn, 1, "node listed by at most one live task, once");
            if (n.state == IVerinfer.NodeState.Busy || n.state == IVerinfer.NodeState.Leaving) {
                VM.assertEq(listedIn, 1, "busy node is in a live task");
                VM.assertEq(n.taskId, listingTask, "busy node points at the task that lists it");
            } else {
                VM.assertEq(listedIn, 0, "idle, exited or kicked node is in no live task");
                VM.assertEq(n.taskId, 0, "no task id when idle");
            }
        }
        // Live tasks have three distinct, registered nodes.
        for (uint256 id = 1; id <= tasks; ++id) {
            IVerinfer.TaskInfo memory t = verinfer.getTask(id);
            if (!_isLive(t.status)) continue;
            VM.assertTrue(
                t.nodes[0] != t.nodes[1] && t.nodes[0] != t.nodes[2] && t.nodes[1] != t.nodes[2], "distinct nodes"
            );
            VM.assertTrue(t.nodes[0] != address(0), "live task has nodes");
        }
    }

    /// @dev (c) Every task reaches at most one terminal state and never leaves it; statuses only
    ///      move forward (Queued -> Committing -> Revealing -> terminal, or Queued -> Cancelled).
    /// forge-config: default.invariant.fail-on-revert = true
    /// forge-config: ci.invariant.fail-on-revert = true
    function invariant_terminalStatesAreFinal() public view {
        VM.assertEq(handler.terminalViolations(), 0, "a terminal task changed status");
        VM.assertEq(handler.illegalTransitions(), 0, "illegal status transition");
        uint256 tasks = handler.taskCount();
        for (uint256 i; i < tasks; ++i) {
            uint256 id = handler.taskIds(i);
            IVerinfer.TaskStatus terminal = handler.terminalStatus(id);
            if (terminal != IVerinfer.TaskStatus.None) {
                VM.assertEq(uint256(verinfer.getTask(id).status), uint256(terminal), "terminal status kept");
            }
        }
    }

    /// @dev (d) A kicked node never gets a task again and stays kicked, with no stake.
    /// forge-config: default.invariant.fail-on-revert = true
    /// forge-config: ci.invariant.fail-on-revert = true
    function invariant_kickedNodesNeverReturn() public view {
        VM.assertEq(handler.kickedNodeStarts(), 0, "a kicked node appeared in a TaskStarted");
        VM.assertEq(handler.kickedNodeRevived(), 0, "a kicked node left the Kicked state");
        uint256 actors = handler.actorCount();
        for (uint256 i; i < actors; ++i) {
            address node = handler.actors(i);
            if (handler.everKicked(node)) {
                IVerinfer.NodeInfo memory n = verinfer.getNode(node);
                VM.assertEq(uint256(n.state), uint256(IVerinfer.NodeState.Kicked), "still kicked");
                VM.assertEq(n.stake, 0, "kicked node holds no stake");
            }
        }
    }

    function _log(string memory label, uint256 value) internal view {
        (bool ok,) = address(0x000000000000000000636F6e736F6c652e6c6f67)
            .staticcall(abi.encodeWithSignature("log(string,uint256)", label, value));
        ok;
    }

    function afterInvariant() public view {
        _log("tasks", handler.taskCount());
        _log("validated", handler.outcomes(IVerinfer.TaskStatus.Validated));
        _log("aborted", handler.outcomes(IVerinfer.TaskStatus.Aborted));
        _log("errored", handler.outcomes(IVerinfer.TaskStatus.Errored));
        _log("cancel", handler.calls("cancelTask"));
        _log("commit", handler.calls("commit"));
        _log("reveal", handler.calls("reveal"));
        _log("settle", handler.calls("settle"));
        _log("kicks", handler.kicks());
        _log("exits", handler.exits());
        _log("dispatch", handler.calls("dispatch"));
    }

    /// @dev The handler is not vacuous: a deterministic pseudo-random walk of the kind the
    ///      invariant runs take (same step weights, 32 steps from the same start, repeated) reaches
    ///      every settlement outcome, kicks, exits, cancels and queue starts.
    function test_HandlerReachesEveryOutcome() public {
        bytes4[] memory steps = targetSelectors()[0].selectors;
        uint256 snap = VM.snapshotState();
        uint256[6] memory totals;
        for (uint256 run; run < 24; ++run) {
            for (uint256 depth; depth < 32; ++depth) {
                uint256 r = uint256(keccak256(abi.encode(run, depth)));
                bytes4 step = steps[r % steps.length];
                (bool ok,) = address(handler).call(_callFor(step, uint256(keccak256(abi.encode(r)))));
                VM.assertTrue(ok, "handler steps do not revert");
            }
            totals[0] += handler.outcomes(IVerinfer.TaskStatus.Validated);
            totals[1] += handler.outcomes(IVerinfer.TaskStatus.Aborted);
            totals[2] += handler.outcomes(IVerinfer.TaskStatus.Errored);
            totals[3] += handler.calls("cancelTask");
            totals[4] += handler.kicks();
            totals[5] += handler.exits();
            VM.revertToState(snap);
        }
        _log("validated", totals[0]);
        _log("aborted", totals[1]);
        _log("errored", totals[2]);
        _log("cancelled", totals[3]);
        _log("kicks", totals[4]);
        _log("exits", totals[5]);
        for (uint256 i; i < 6; ++i) {
            VM.assertGt(totals[i], 0, "outcome reached");
        }
    }

    function _callFor(bytes4 step, uint256 r) internal pure returns (bytes memory) {
        if (step == VerinferHandler.createTask.selector) {
            return abi.encodeWithSelector(step, r, r % 2 == 0, uint8(r >> 8), r >> 16, r >> 24, uint96(r >> 32));
        }
        if (step == VerinferHandler.join.selector) return abi.encodeWithSelector(step, r, r >> 8, r >> 16, r >> 24);
        if (step == VerinferHandler.addStake.selector) return abi.encodeWithSelector(step, r, uint96(r >> 8));
        if (step == VerinferHandler.commit.selector) return abi.encodeWithSelector(step, r, r >> 8, r >> 16);
        if (step == VerinferHandler.reveal.selector || step == VerinferHandler.dispatch.selector) {
            return abi.encodeWithSelector(step, r, r >> 8);
        }
        return abi.encodeWithSelector(step, r);
    }

    /// @dev The queued-task counter that gates dispatching equals the number of Queued tasks, and
    ///      the queues hold at least that many entries (cancelled ones wait to be skipped).
    /// forge-config: default.invariant.fail-on-revert = true
    /// forge-config: ci.invariant.fail-on-revert = true
    function invariant_queueAccounting() public view {
        uint256 queued;
        uint256 tasks = verinfer.taskCount();
        for (uint256 id = 1; id <= tasks; ++id) {
            if (verinfer.getTask(id).status == IVerinfer.TaskStatus.Queued) ++queued;
        }
        VM.assertEq(verinfer.queuedTasks(), queued, "queuedTasks == Queued tasks");
        uint256 entries =
            verinfer.queueLength(verinfer.imageQueueKey()) + verinfer.queueLength(verinfer.textQueueKey(bytes32(0)));
        uint256 models = handler.modelCount();
        for (uint256 i; i < models; ++i) {
            entries += verinfer.queueLength(verinfer.gpuModelId(handler.models(i)));
        }
        VM.assertGe(entries, queued, "every Queued task has a queue entry");
    }

    /// @dev Pool counts agree with node states: the global pool holds exactly the Available nodes.
    /// forge-config: default.invariant.fail-on-revert = true
    /// forge-config: ci.invariant.fail-on-revert = true
    function invariant_poolsMatchAvailableNodes() public view {
        uint256 actors = handler.actorCount();
        uint256 available;
        for (uint256 i; i < actors; ++i) {
            if (verinfer.getNode(handler.actors(i)).state == IVerinfer.NodeState.Available) ++available;
        }
        VM.assertEq(verinfer.availableNodes(bytes32(0), 0), available, "global pool == Available nodes");
    }
}
