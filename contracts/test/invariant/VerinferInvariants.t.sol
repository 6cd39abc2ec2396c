// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Verinfer} from "../../src/Verinfer.sol";
import {IVerinfer} from "../../src/interfaces/IVerinfer.sol";
import {VerinferExtension} from "../../src/VerinferExtension.sol";
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

    /// @dev Verinfer's extension functions, called at Verinfer's address.
    function _ext() internal view returns (VerinferExtension) {
        return VerinferExtension(address(verinfer));
    }
    VerinferHandler internal handler;
    address internal owner = address(uint160(0xA11CE));
    address internal treasury = address(uint160(0x7EA5));

    /// @dev Short delays and timeouts, so that scheduled versions take effect and queued tasks expire
    ///      within a run.
    uint32 internal constant PARAMS_DELAY = 600;

    function setUp() public {
        VM.warp(1_700_000_000);
        VM.roll(1000);
        token = new MockStakingToken();
        verinfer = new Verinfer(
            token,
            IVerinfer.Params({
                threshold: 10,
                minTextPool: 3,
                slashShareBps: 5000,
                slashRewardBps: 5000,
                protocolFeeBps: 500,
                commitWindow: 300,
                revealWindow: 300,
                queueTimeout: 3600,
                minStake: 1000 ether,
                stakePerThresholdBit: 100 ether,
                minTaskFee: 1 ether,
                minImageFee: 0.1 ether,
                samplingBps: 1000
            }),
            PARAMS_DELAY,
            owner,
            treasury
        );
        handler = new VerinferHandler(verinfer, token, owner);
        VM.startPrank(owner);
        for (uint256 i; i < handler.modelCount(); ++i) {
            _ext().addGpuModel(handler.models(i), handler.modelVrams(i));
        }
        VM.stopPrank();
        // Ten nodes to start with, three or four per model, fee tier 0: actors 2..11, so four of
        // them dishonest. Three full tasks and a sampled one created and drawn, so that every run
        // starts with work in progress.
        for (uint256 i = 2; i < 12; ++i) {
            handler.join(i, i, 0, i);
        }
        handler.createTask(0, true, 0, 0, 0, 0);
        handler.createTask(1, true, 1, 2, 0, 1);
        handler.createTask(2, false, 0, 0, 1, 2);
        handler.createSampledTask(0, true, 0, 0, 0, 0);
        handler.roll(0);
        handler.drawTasks(0);
    }

    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    /// @dev Task steps are listed several times: forge draws selectors uniformly from this list,
    ///      so this weights the draw towards tasks that get created, committed, revealed, settled.
    function targetSelectors() public view returns (FuzzSelector[] memory targets) {
        bytes4[] memory selectors = new bytes4[](32);
        selectors[0] = VerinferHandler.join.selector;
        selectors[1] = VerinferHandler.addStake.selector;
        selectors[2] = VerinferHandler.leave.selector;
        selectors[3] = VerinferHandler.setFeeTier.selector;
        selectors[4] = VerinferHandler.cancelTask.selector;
        selectors[5] = VerinferHandler.expireTask.selector;
        selectors[6] = VerinferHandler.drawTasks.selector;
        selectors[7] = VerinferHandler.scheduleParams.selector;
        selectors[8] = VerinferHandler.withdrawTreasury.selector;
        selectors[9] = VerinferHandler.withdraw.selector;
        for (uint256 i; i < 3; ++i) {
            selectors[10 + i] = VerinferHandler.createTask.selector;
            selectors[13 + i] = VerinferHandler.commit.selector;
            selectors[16 + i] = VerinferHandler.reveal.selector;
        }
        selectors[19] = VerinferHandler.settle.selector;
        selectors[20] = VerinferHandler.settle.selector;
        selectors[21] = VerinferHandler.warp.selector;
        selectors[22] = VerinferHandler.warp.selector;
        selectors[23] = VerinferHandler.roll.selector;
        selectors[24] = VerinferHandler.roll.selector;
        selectors[25] = VerinferHandler.withdraw.selector;
        selectors[26] = VerinferHandler.createSampledTask.selector;
        selectors[27] = VerinferHandler.createSampledTask.selector;
        selectors[28] = VerinferHandler.resolveSample.selector;
        selectors[29] = VerinferHandler.resolveSample.selector;
        selectors[30] = VerinferHandler.expireTask.selector;
        selectors[31] = VerinferHandler.createSampledTask.selector;
        targets = new FuzzSelector[](1);
        targets[0] = FuzzSelector({addr: address(handler), selectors: selectors});
    }

    /// @dev Statuses in which a task holds nodes (a sampled task holds its first node from its
    ///      start through the sample draw and any check to its end) and its fee in escrow.
    function _isLive(IVerinfer.TaskStatus s) internal pure returns (bool) {
        return s == IVerinfer.TaskStatus.Committing || s == IVerinfer.TaskStatus.Revealing
            || s == IVerinfer.TaskStatus.AwaitingSample || s == IVerinfer.TaskStatus.CheckQueued;
    }

    function _isTerminal(IVerinfer.TaskStatus s) internal pure returns (bool) {
        return s == IVerinfer.TaskStatus.Validated || s == IVerinfer.TaskStatus.Aborted
            || s == IVerinfer.TaskStatus.Errored || s == IVerinfer.TaskStatus.Cancelled
            || s == IVerinfer.TaskStatus.Expired;
    }

    /// @dev (a) Solvency: the contract holds at least the node stakes, the fees of unfinished tasks,
    ///      every account's credit and the treasury balance; and (nobody sends it tokens outside the
    ///      protocol here) exactly that: nothing is created or lost by any sequence of steps.
    /// forge-config: default.invariant.fail-on-revert = true
    /// forge-config: ci.invariant.fail-on-revert = true
    function invariant_solvency() public view {
        uint256 owed = verinfer.treasuryBalance() + verinfer.claimable(treasury) + verinfer.claimable(owner);
        uint256 actors = handler.actorCount();
        for (uint256 i; i < actors; ++i) {
            address node = handler.actors(i);
            owed += uint256(_ext().getNode(node).stake) + verinfer.claimable(node);
        }
        uint256 creators = handler.creatorCount();
        for (uint256 i; i < creators; ++i) {
            owed += verinfer.claimable(handler.creators(i));
        }
        uint256 tasks = verinfer.taskCount();
        for (uint256 id = 1; id <= tasks; ++id) {
            IVerinfer.TaskInfo memory t = _ext().getTask(id);
            if (t.status == IVerinfer.TaskStatus.Queued || _isLive(t.status)) owed += t.fee;
        }
        uint256 balance = token.balanceOf(address(verinfer));
        VM.assertGe(balance, owed, "balance >= stakes + escrowed fees + credits + treasury");
        VM.assertEq(balance, owed, "balance == stakes + escrowed fees + credits + treasury");
    }

    /// @dev (b) No balance is taken except by its owner: every account's stake + credit changes only
    ///      as the events of each step say (joins, stake added, rewards, refunds, slash rewards),
    ///      decreases only by its own leave or withdraw or by a slash the task justifies (a missed
    ///      commit or reveal, or a dishonest result outvoted), of exactly the task's slash share;
    ///      and tokens leave the contract only to the account whose own call it is.
    /// forge-config: default.invariant.fail-on-revert = true
    /// forge-config: ci.invariant.fail-on-revert = true
    function invariant_balancesMoveOnlyByTheirOwnersOrJustifiedSlashes() public view {
        VM.assertEq(handler.ledgerViolations(), 0, "a stake or credit changed without cause");
        VM.assertEq(handler.foreignPayouts(), 0, "tokens paid to somebody other than the caller");
        VM.assertEq(handler.unjustifiedSlashes(), 0, "a slash the task does not justify");
        uint256 actors = handler.actorCount();
        for (uint256 i; i < actors; ++i) {
            address node = handler.actors(i);
            VM.assertEq(_ext().getNode(node).stake, handler.ghostStake(node), "ghost stake in sync");
            VM.assertEq(verinfer.claimable(node), handler.ghostClaimable(node), "ghost credit in sync");
        }
    }

    /// @dev (c) A task's parameters never change after its start: its version, its commit deadline,
    ///      its reveal deadline (as set at the start, or when the reveal phase opened) and the
    ///      parameters of its version are what they were; it started under the version it was
    ///      created with, and was settled with that version's threshold.
    /// forge-config: default.invariant.fail-on-revert = true
    /// forge-config: ci.invariant.fail-on-revert = true
    function invariant_taskParamsFixedAtStart() public view {
        VM.assertEq(handler.versionChanges(), 0, "a task started under another version than its own");
        VM.assertEq(handler.wrongThresholds(), 0, "a task settled with another threshold than its version's");
        uint256 tasks = handler.taskCount();
        for (uint256 i; i < tasks; ++i) {
            uint256 id = handler.taskIds(i);
            IVerinfer.TaskInfo memory t = _ext().getTask(id);
            VM.assertEq(t.paramsVersion, handler.versionAtCreation(id), "version fixed at creation");
            VerinferHandler.Started memory s = handler.started(id);
            if (!s.started) continue;
            VM.assertEq(t.paramsVersion, s.paramsVersion, "version");
            VM.assertEq(t.commitDeadline, s.commitDeadline, "commit deadline");
            VM.assertEq(t.revealDeadline, s.revealDeadline, "reveal deadline");
            VM.assertEq(keccak256(abi.encode(_ext().paramsAt(s.paramsVersion))), s.paramsHash, "version's params");
            VM.assertEq(keccak256(abi.encode(_ext().taskParams(id))), s.paramsHash, "the params the task runs under");
        }
    }

    /// @dev (d) The queued-task counter that gates the draws equals the number of Queued tasks and
    ///      queued checks, and the queues (task and check queues) hold at least that many entries
    ///      (cancelled, expired and started ones wait to be skipped).
    /// forge-config: default.invariant.fail-on-revert = true
    /// forge-config: ci.invariant.fail-on-revert = true
    function invariant_queueAccounting() public view {
        uint256 queued;
        uint256 tasks = verinfer.taskCount();
        for (uint256 id = 1; id <= tasks; ++id) {
            IVerinfer.TaskStatus s = _ext().getTask(id).status;
            if (s == IVerinfer.TaskStatus.Queued || s == IVerinfer.TaskStatus.CheckQueued) ++queued;
        }
        VM.assertEq(verinfer.queuedTasks(), queued, "queuedTasks == Queued tasks + queued checks");
        VM.assertEq(_ext().drawDue(), queued != 0 && VM.getBlockNumber() > verinfer.lastTouchBlock(), "drawDue");
        uint256 entries;
        uint32[3] memory vramClasses = [uint32(0), 24_576, 81_920];
        uint256 models = handler.modelCount();
        for (uint8 level; level < 8; ++level) {
            for (uint256 c; c < 3; ++c) {
                entries += _queueEntries(
                    keccak256(abi.encode(IVerinfer.TaskKind.ImageGeneration, bytes32(uint256(vramClasses[c])), level))
                );
            }
            for (uint256 m; m < models; ++m) {
                bytes32 model = _ext().gpuModelId(handler.models(m));
                entries += _queueEntries(keccak256(abi.encode(IVerinfer.TaskKind.TextGeneration, model, level)));
            }
        }
        VM.assertGe(entries, queued, "every Queued task and queued check has a queue entry");
    }

    /// @dev Entries of a task queue and of its check queue (key hashed with the check ring, 0).
    function _queueEntries(bytes32 key) internal view returns (uint256) {
        return _ext().queueLength(key) + _ext().queueLength(keccak256(abi.encode(key, uint256(0))));
    }

    /// @dev A node is in at most one task: every Busy or Leaving node points at a live task that
    ///      lists it; no other node is listed by a live task; no two live tasks share a node.
    /// forge-config: default.invariant.fail-on-revert = true
    /// forge-config: ci.invariant.fail-on-revert = true
    function invariant_nodeInAtMostOneTask() public view {
        uint256 actors = handler.actorCount();
        uint256 tasks = verinfer.taskCount();
        for (uint256 i; i < actors; ++i) {
            address node = handler.actors(i);
            IVerinfer.NodeInfo memory n = _ext().getNode(node);
            uint256 listedIn;
            uint256 listingTask;
            for (uint256 id = 1; id <= tasks; ++id) {
                IVerinfer.TaskInfo memory t = _ext().getTask(id);
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
        // Live full tasks and checks have three distinct, registered nodes; a sampled task before
        // its check (or unchecked) has its first node only.
        for (uint256 id = 1; id <= tasks; ++id) {
            IVerinfer.TaskInfo memory t = _ext().getTask(id);
            if (!_isLive(t.status)) continue;
            VM.assertTrue(t.nodes[0] != address(0), "live task has nodes");
            bool oneNode = t.mode == IVerinfer.ValidationMode.Sampled
                && (!t.checked || t.status == IVerinfer.TaskStatus.CheckQueued);
            if (oneNode) {
                VM.assertTrue(t.nodes[1] == address(0) && t.nodes[2] == address(0), "first node only");
            } else {
                VM.assertTrue(
                    t.nodes[0] != t.nodes[1] && t.nodes[0] != t.nodes[2] && t.nodes[1] != t.nodes[2], "distinct nodes"
                );
            }
        }
    }

    /// @dev Every task reaches at most one terminal state and never leaves it; statuses only move
    ///      forward (Queued -> Committing -> Revealing -> settled, or Queued -> Cancelled / Expired;
    ///      sampled tasks: Committing -> AwaitingSample -> settled, Revealing, or CheckQueued ->
    ///      Committing / Expired, see `VerinferHandler._legal`), and a task is never seen started in
    ///      the step (block) that created it.
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
                VM.assertEq(uint256(_ext().getTask(id).status), uint256(terminal), "terminal status kept");
            }
        }
    }

    /// @dev One terminal state per task, with both modes mixed: a task that reached Validated,
    ///      Aborted, Errored, Cancelled or Expired never changes status again, and it announced its
    ///      end exactly once (one TaskSettled, TaskCancelled or TaskExpired event over the whole
    ///      run, naming the status it has); a task not ended announced none.
    /// forge-config: default.invariant.fail-on-revert = true
    /// forge-config: ci.invariant.fail-on-revert = true
    function invariant_oneTerminalStatePerTask() public view {
        VM.assertEq(handler.terminalViolations(), 0, "a terminal task changed status");
        VM.assertEq(handler.repeatedTerminalEvents(), 0, "a task settled, cancelled or expired twice");
        uint256 tasks = handler.taskCount();
        for (uint256 i; i < tasks; ++i) {
            uint256 id = handler.taskIds(i);
            IVerinfer.TaskStatus s = _ext().getTask(id).status;
            if (_isTerminal(s)) {
                VM.assertEq(handler.terminalEvents(id), 1, "an ended task announced its end once");
                VM.assertEq(uint256(handler.terminalEventStatus(id)), uint256(s), "the end it announced");
            } else {
                VM.assertEq(handler.terminalEvents(id), 0, "a task not ended announced no end");
            }
        }
    }

    /// @dev A sampled task's first node is never one of its checkers: every check drew two distinct
    ///      nodes other than the first, which stays the task's node 0 from its start to its end.
    ///      And the sample draw follows its rules: its block is the one after the commitment, it is
    ///      decided in a later block, as that block's hash says (checked once unreadable).
    /// forge-config: default.invariant.fail-on-revert = true
    /// forge-config: ci.invariant.fail-on-revert = true
    function invariant_firstNodeIsNeverItsOwnChecker() public view {
        VM.assertEq(handler.selfChecks(), 0, "a check drew the first node, or one node twice");
        VM.assertEq(handler.sampleViolations(), 0, "a sample draw broke its rules");
        uint256 tasks = handler.taskCount();
        for (uint256 i; i < tasks; ++i) {
            uint256 id = handler.taskIds(i);
            if (!handler.sampled(id) || !handler.started(id).started) continue;
            IVerinfer.TaskInfo memory t = _ext().getTask(id);
            VM.assertEq(t.nodes[0], handler.firstNode(id), "the first node stays node 0");
            if (t.nodes[1] != address(0) || t.nodes[2] != address(0)) {
                VM.assertTrue(t.checked, "only a checked task has checkers");
                VM.assertTrue(t.nodes[1] != t.nodes[0] && t.nodes[2] != t.nodes[0], "first node is no checker");
            }
        }
    }

    /// @dev An unchecked sampled task pays exactly one node: settled Validated, its first node alone
    ///      (agreeing mask 1, no distances), the fee less the protocol cut, one NodeRewarded; settled
    ///      otherwise, nobody. Every reward belongs to its task's settlement, and a settled task
    ///      pays each agreeing node once.
    /// forge-config: default.invariant.fail-on-revert = true
    /// forge-config: ci.invariant.fail-on-revert = true
    function invariant_uncheckedSampledTaskPaysOneNode() public view {
        VM.assertEq(handler.uncheckedSettleViolations(), 0, "an unchecked settlement named more than its node");
        VM.assertEq(handler.strayRewards(), 0, "a reward outside its task's settlement");
        uint256 tasks = handler.taskCount();
        for (uint256 i; i < tasks; ++i) {
            uint256 id = handler.taskIds(i);
            IVerinfer.TaskInfo memory t = _ext().getTask(id);
            bool settled = t.status == IVerinfer.TaskStatus.Validated || t.status == IVerinfer.TaskStatus.Aborted
                || t.status == IVerinfer.TaskStatus.Errored;
            if (!settled) {
                VM.assertEq(handler.nodesPaid(id), 0, "no reward before settlement");
                continue;
            }
            bool paying = t.status == IVerinfer.TaskStatus.Validated && handler.settledReward(id) != 0;
            uint8 agreeing = handler.settledAgreeing(id);
            uint256 payees = (agreeing & 1) + ((agreeing >> 1) & 1) + ((agreeing >> 2) & 1);
            VM.assertEq(handler.nodesPaid(id), paying ? payees : 0, "each agreeing node paid once");
            if (t.mode == IVerinfer.ValidationMode.Sampled && !t.checked) {
                VM.assertTrue(t.nodes[1] == address(0) && t.nodes[2] == address(0), "unchecked: one node");
                VM.assertEq(handler.nodesPaid(id), paying ? 1 : 0, "unchecked: exactly one node paid");
                if (paying) VM.assertEq(handler.lastPaid(id), t.nodes[0], "unchecked: the first node paid");
            }
        }
    }

    /// @dev A checked task has three distinct nodes: once its check started (Committing, Revealing
    ///      or settled after the sample draw chose a check), its first node and two checkers, all
    ///      registered and distinct; likewise every full task that started.
    /// forge-config: default.invariant.fail-on-revert = true
    /// forge-config: ci.invariant.fail-on-revert = true
    function invariant_checkedTaskHasThreeDistinctNodes() public view {
        uint256 tasks = handler.taskCount();
        for (uint256 i; i < tasks; ++i) {
            uint256 id = handler.taskIds(i);
            if (!handler.started(id).started) continue;
            IVerinfer.TaskInfo memory t = _ext().getTask(id);
            bool three = t.mode == IVerinfer.ValidationMode.Full
                || (t.checked
                    && t.status != IVerinfer.TaskStatus.CheckQueued
                    && t.status != IVerinfer.TaskStatus.Expired);
            if (!three) continue;
            VM.assertTrue(
                t.nodes[0] != address(0) && t.nodes[1] != address(0) && t.nodes[2] != address(0), "three nodes"
            );
            VM.assertTrue(
                t.nodes[0] != t.nodes[1] && t.nodes[0] != t.nodes[2] && t.nodes[1] != t.nodes[2], "distinct nodes"
            );
        }
    }

    /// @dev Draws follow their rules: a task starts only in a block after its creation, seeded by a
    ///      block in between, with nodes that were available before the drawing block and that the
    ///      task may have (its model for text, its VRAM, its fee level, the minimum stake); a sampled
    ///      task starts on one node whose stake makes cheating unprofitable (p * s * stake >=
    ///      (1 - p) * fee); a check starts in a block after the one that queued it, seeded in between.
    /// forge-config: default.invariant.fail-on-revert = true
    /// forge-config: ci.invariant.fail-on-revert = true
    function invariant_drawsFollowTheRules() public view {
        VM.assertEq(handler.drawViolations(), 0, "a draw broke its rules");
    }

    /// @dev A kicked node never gets a task again and stays kicked, with no stake.
    /// forge-config: default.invariant.fail-on-revert = true
    /// forge-config: ci.invariant.fail-on-revert = true
    function invariant_kickedNodesNeverReturn() public view {
        VM.assertEq(handler.kickedNodeStarts(), 0, "a kicked node appeared in a TaskStarted");
        VM.assertEq(handler.kickedNodeRevived(), 0, "a kicked node left the Kicked state");
        uint256 actors = handler.actorCount();
        for (uint256 i; i < actors; ++i) {
            address node = handler.actors(i);
            if (handler.everKicked(node)) {
                IVerinfer.NodeInfo memory n = _ext().getNode(node);
                VM.assertEq(uint256(n.state), uint256(IVerinfer.NodeState.Kicked), "still kicked");
                VM.assertEq(n.stake, 0, "kicked node holds no stake");
            }
        }
    }

    /// @dev Pool counts agree with node states: the global pool holds exactly the Available nodes.
    /// forge-config: default.invariant.fail-on-revert = true
    /// forge-config: ci.invariant.fail-on-revert = true
    function invariant_poolsMatchAvailableNodes() public view {
        uint256 actors = handler.actorCount();
        uint256 available;
        for (uint256 i; i < actors; ++i) {
            if (_ext().getNode(handler.actors(i)).state == IVerinfer.NodeState.Available) ++available;
        }
        VM.assertEq(_ext().availableNodes(bytes32(0), 0), available, "global pool == Available nodes");
    }

    function _log(string memory label, uint256 value) internal view {
        (bool ok,) = address(0x000000000000000000636F6e736F6c652e6c6f67)
            .staticcall(abi.encodeWithSignature("log(string,uint256)", label, value));
        ok;
    }

    function afterInvariant() public view {
        _log("tasks", handler.taskCount());
        _log("started", handler.starts());
        _log("validated", handler.outcomes(IVerinfer.TaskStatus.Validated));
        _log("aborted", handler.outcomes(IVerinfer.TaskStatus.Aborted));
        _log("errored", handler.outcomes(IVerinfer.TaskStatus.Errored));
        _log("expired", handler.expiries());
        _log("cancel", handler.calls("cancelTask"));
        _log("commit", handler.calls("commit"));
        _log("reveal", handler.calls("reveal"));
        _log("settle", handler.calls("settle"));
        _log("kicks", handler.kicks());
        _log("exits", handler.exits());
        _log("withdrawals", handler.withdrawals());
        _log("activations", handler.activations());
        _log("sampled created", handler.calls("createSampledTask"));
        _log("sampled started", handler.sampledStarts());
        _log("sampled committed", handler.sampledCommits());
        _log("sample unchecked", handler.sampledDecidedUnchecked());
        _log("sample checked", handler.sampledDecidedChecked());
        _log("sample unreadable", handler.sampledUnreadable());
        _log("settled unchecked", handler.sampledSettledUnchecked());
        _log("checks started", handler.checksStarted());
        _log("checked settled", handler.checkedSettled());
        _log("checks expired", handler.checksExpired());
    }

    /// @dev The handler is not vacuous: a deterministic pseudo-random walk of the kind the
    ///      invariant runs take (same step weights, 48 steps from the same start, repeated) reaches
    ///      every settlement outcome, expiry, cancels, kicks, exits, withdrawals, slashes and
    ///      parameter activations; and for sampled tasks, both sample outcomes, unchecked
    ///      settlements and started checks.
    function test_HandlerReachesEveryOutcome() public {
        uint256[21] memory totals = _walk(32, 48);
        for (uint256 i; i < 15; ++i) {
            VM.assertGt(totals[i], 0, string.concat("outcome reached: ", _walkNames()[i]));
        }
    }

    /// @dev A checked sampled task needs about ten steps after its creation (draw, commit, a later
    ///      block, resolve, the checkers' draw, two commits, three reveals): longer walks of the same
    ///      kind (128 steps) settle checks too.
    function test_HandlerSettlesSampledChecks() public {
        uint256[21] memory totals = _walk(16, 128);
        for (uint256 i = 11; i < 16; ++i) {
            VM.assertGt(totals[i], 0, string.concat("outcome reached: ", _walkNames()[i]));
        }
    }

    function _walkNames() internal pure returns (string[21] memory) {
        return [
            "validated",
            "aborted",
            "errored",
            "cancelled",
            "expired",
            "kicks",
            "exits",
            "withdrawals",
            "slashes",
            "activations",
            "starts",
            "sample unchecked",
            "sample checked",
            "settled unchecked",
            "checks started",
            "checked settled",
            "checks expired",
            "sample unreadable",
            "sampled created",
            "sampled started",
            "sampled committed"
        ];
    }

    /// @dev `runs` walks of `depth` steps from the state after `setUp`; returns (and logs) the sums.
    function _walk(uint256 runs, uint256 depth) internal returns (uint256[21] memory totals) {
        bytes4[] memory steps = targetSelectors()[0].selectors;
        uint256 snap = VM.snapshotState();
        for (uint256 run; run < runs; ++run) {
            for (uint256 d; d < depth; ++d) {
                uint256 r = uint256(keccak256(abi.encode(run, d)));
                bytes4 step = steps[r % steps.length];
                (bool ok,) = address(handler).call(_callFor(step, uint256(keccak256(abi.encode(r)))));
                VM.assertTrue(ok, "handler steps do not revert");
            }
            uint256[21] memory t = [
                handler.outcomes(IVerinfer.TaskStatus.Validated),
                handler.outcomes(IVerinfer.TaskStatus.Aborted),
                handler.outcomes(IVerinfer.TaskStatus.Errored),
                handler.calls("cancelTask"),
                handler.expiries(),
                handler.kicks(),
                handler.exits(),
                handler.withdrawals(),
                handler.slashes(),
                handler.activations(),
                handler.starts(),
                handler.sampledDecidedUnchecked(),
                handler.sampledDecidedChecked(),
                handler.sampledSettledUnchecked(),
                handler.checksStarted(),
                handler.checkedSettled(),
                handler.checksExpired(),
                handler.sampledUnreadable(),
                handler.calls("createSampledTask"),
                handler.sampledStarts(),
                handler.sampledCommits()
            ];
            for (uint256 i; i < 21; ++i) {
                totals[i] += t[i];
            }
            VM.revertToState(snap);
        }
        string[21] memory names = _walkNames();
        for (uint256 i; i < 21; ++i) {
            _log(names[i], totals[i]);
        }
    }

    function _callFor(bytes4 step, uint256 r) internal pure returns (bytes memory) {
        if (step == VerinferHandler.createTask.selector || step == VerinferHandler.createSampledTask.selector) {
            return abi.encodeWithSelector(step, r, r % 2 == 0, uint8(r >> 8), r >> 16, r >> 24, r >> 32);
        }
        if (step == VerinferHandler.join.selector) return abi.encodeWithSelector(step, r, r >> 8, r >> 16, r >> 24);
        if (step == VerinferHandler.addStake.selector) return abi.encodeWithSelector(step, r, uint96(r >> 8));
        if (step == VerinferHandler.setFeeTier.selector) return abi.encodeWithSelector(step, r, uint8(r >> 8));
        if (step == VerinferHandler.commit.selector) return abi.encodeWithSelector(step, r, r >> 8, r >> 16);
        if (step == VerinferHandler.reveal.selector) return abi.encodeWithSelector(step, r, r >> 8);
        return abi.encodeWithSelector(step, r);
    }
}
