// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Verinfer} from "../../src/Verinfer.sol";
import {IVerinfer} from "../../src/interfaces/IVerinfer.sol";
import {VerinferExtension} from "../../src/VerinferExtension.sol";
import {MockStakingToken} from "../../src/mocks/MockStakingToken.sol";
import {VM, Vm} from "../Vm.sol";

/// @notice Drives Verinfer through random but well-formed protocol steps for the invariant tests:
///         nodes join (at a fee tier), add stake, change tier and leave; creators create (fully
///         validated or sampled tasks, the latter with fees inside `sampledFeeRange`), cancel and
///         expire tasks (and checks that found no checkers); selected nodes commit and reveal
///         (honest ones agree, dishonest ones lie, report invalid args or commit garbage they cannot
///         reveal), as the first node of a sampled task or as its checkers; anyone resolves sample
///         draws, settles, draws and withdraws what is credited to it; blocks are mined and time
///         passes; the owner schedules (and cancels) parameter versions and withdraws the treasury.
///         The outcome of each sample draw is chosen at random (checked or not, about half each)
///         by setting the hash of its sample block (`VM.setBlockhash`) before anybody can read it;
///         a draw left past 256 blocks finds no hash and is checked. Inputs are bounded so that
///         most calls do something and no call reverts.
///
///         Ghost state, checked after every step from the step's logs, records what the invariants
///         need: the first terminal status of every task and illegal status transitions; kicked
///         nodes seen in a later TaskStarted; draws that break the draw rules (a task started in its
///         creation block, a node drawn in the block it joined, an ineligible node); every account's
///         stake + credit, which may only change as the step's events say and only decrease by the
///         account's own leave or withdraw or by a justified slash; token transfers out of the
///         contract to anybody but the account acting; each started task's parameter version,
///         deadlines and parameters, as they were when it started; every terminal event
///         (TaskSettled, TaskCancelled, TaskExpired) per task; sample draws (the sample block is the
///         block after the commit, the decision comes later and matches the hash set for it);
///         checks (two distinct checkers, never the first node, eligible, drawn in a later block
///         than the one that queued the check); and the nodes paid by each task.
contract VerinferHandler {
    uint256 internal constant ACTORS = 12;
    uint256 internal constant DISHONEST_FROM = 8; // actors 8..11 cheat
    uint256 internal constant CREATORS = 3;
    uint256 internal constant MODELS = 3;

    Verinfer public immutable verinfer;

    /// @dev Verinfer's extension functions, called at Verinfer's address.
    function _ext() internal view returns (VerinferExtension) {
        return VerinferExtension(address(verinfer));
    }
    MockStakingToken public immutable token;
    address public immutable owner;

    address[] public actors;
    address[] public creators;
    uint256[] public taskIds;
    string[MODELS] public models = ["NVIDIA H100 80GB HBM3", "NVIDIA GeForce RTX 4090", "NVIDIA A100-SXM4-80GB"];
    uint32[MODELS] public modelVrams = [uint32(81_920), 24_576, 81_920];
    uint32[3] internal taskVrams = [uint32(0), 16_384, 65_536];

    uint256 public currentTime;
    uint256 public currentBlock;

    // ---------------------------------------------------------------- the step being run

    enum Step {
        None,
        Join,
        AddStake,
        Leave,
        SetFeeTier,
        CreateTask,
        CancelTask,
        ExpireTask,
        Commit,
        Reveal,
        Settle,
        Withdraw,
        DrawTasks,
        Time,
        ScheduleParams,
        WithdrawTreasury,
        CreateSampledTask,
        ResolveSample
    }

    Step internal _step;
    address internal _stepActor;

    // ---------------------------------------------------------------- ghost state

    mapping(uint256 taskId => IVerinfer.TaskStatus) public lastStatus;
    mapping(uint256 taskId => IVerinfer.TaskStatus) public terminalStatus;
    mapping(address node => bool) public everKicked;
    uint256 public terminalViolations;
    uint256 public illegalTransitions;
    uint256 public kickedNodeStarts;
    uint256 public kickedNodeRevived;

    /// @dev Draws that break a rule: started in the creating block, seeded by a block outside
    ///      [creation block, drawing block), a node drawn in the block it joined, or a node the task
    ///      may not have (model, VRAM, fee tier, stake).
    uint256 public drawViolations;

    /// @dev Every account's stake + credit as of the end of the last step.
    mapping(address account => uint256) public ghostStake;
    mapping(address account => uint256) public ghostClaimable;
    /// @dev Steps after which some account's stake + credit differed from what the events explain.
    uint256 public ledgerViolations;
    /// @dev Token transfers out of Verinfer to anybody but the account whose own call it was.
    uint256 public foreignPayouts;
    /// @dev Slashes not justified by the task (a deadline the node met, or an honest node outvoted),
    ///      or of another amount than the task's slash share of the node's stake.
    uint256 public unjustifiedSlashes;
    /// @dev Settlements judged with another threshold than the task's version's.
    uint256 public wrongThresholds;

    struct Started {
        bool started;
        uint24 paramsVersion;
        uint32 commitDeadline;
        uint32 revealDeadline;
        bytes32 paramsHash;
    }

    mapping(uint256 taskId => Started) internal _started;
    mapping(uint256 taskId => uint24) public versionAtCreation;
    mapping(uint256 taskId => uint256) public createdBlock;
    mapping(address node => uint256) public joinedBlock;
    /// @dev A task started with another parameter version than it was created with.
    uint256 public versionChanges;

    /// @dev Terminal events (TaskSettled, TaskCancelled, TaskExpired) seen per task, and the status
    ///      the first one announced.
    mapping(uint256 taskId => uint256) public terminalEvents;
    mapping(uint256 taskId => IVerinfer.TaskStatus) public terminalEventStatus;
    /// @dev Terminal events after a task's first one (a task settled, cancelled or expired twice).
    uint256 public repeatedTerminalEvents;

    /// @dev Sampled tasks: the node their TaskStarted drew (never changes after).
    mapping(uint256 taskId => address) public firstNode;
    mapping(uint256 taskId => bool) public sampled;
    /// @dev The block whose state change queued a check (SampleDecided checked).
    mapping(uint256 taskId => uint256) public checkQueuedBlock;
    /// @dev Checks whose checkers include the first node, a zero address, the same node twice, or
    ///      differ from the task's recorded nodes.
    uint256 public selfChecks;
    /// @dev Sample draws that break their rules: a sample block other than the block after the
    ///      commitment, a decision in or before the sample block, or a decision other than the hash
    ///      set for the sample block says (checked when it is no longer readable).
    uint256 public sampleViolations;
    /// @dev Settlements of unchecked sampled tasks that name other nodes than the first, report
    ///      distances, or pay another reward than the fee less the protocol cut.
    uint256 public uncheckedSettleViolations;
    /// @dev Per task: NodeRewarded events, the node last paid, and the settlement's agreeing mask
    ///      and reward per node.
    mapping(uint256 taskId => uint256) public nodesPaid;
    mapping(uint256 taskId => address) public lastPaid;
    mapping(uint256 taskId => uint8) public settledAgreeing;
    mapping(uint256 taskId => uint96) public settledReward;
    /// @dev NodeRewarded events of a task that is not settled in the same step, or to a node that
    ///      is not the task's.
    uint256 public strayRewards;

    /// @dev Sampled tasks whose sample block hash has not been set yet.
    uint256[] internal _awaitingHash;
    mapping(uint256 blockNumber => bytes32) public sampleHash;
    mapping(uint256 blockNumber => bool) public sampleHashSet;

    // Coverage counters: how often each step did something, and what the settlements produced.
    mapping(bytes32 action => uint256) public calls;
    mapping(IVerinfer.TaskStatus outcome => uint256) public outcomes;
    uint256 public kicks;
    uint256 public exits;
    uint256 public starts;
    uint256 public expiries;
    uint256 public withdrawals;
    uint256 public slashes;
    uint256 public activations;
    uint256 public sampledStarts;
    uint256 public sampledCommits;
    uint256 public sampledDecidedUnchecked;
    uint256 public sampledDecidedChecked;
    uint256 public sampledUnreadable;
    uint256 public sampledSettledUnchecked;
    uint256 public checksStarted;
    uint256 public checkedSettled;
    uint256 public checksExpired;

    enum ResultKind {
        Image,
        Text,
        Invalid,
        Garbage
    }

    struct Commitment {
        ResultKind kind;
        bytes32 salt;
        bytes32 digest;
        uint64[] hashes;
    }

    mapping(uint256 taskId => mapping(address node => Commitment)) internal _commitments;

    constructor(Verinfer verinfer_, MockStakingToken token_, address owner_) {
        verinfer = verinfer_;
        token = token_;
        owner = owner_;
        currentTime = VM.getBlockTimestamp();
        currentBlock = VM.getBlockNumber();
        for (uint256 i; i < ACTORS; ++i) {
            actors.push(address(uint160(0x2000_0000 + i)));
        }
        for (uint256 i; i < CREATORS; ++i) {
            address c = address(uint160(0x3000_0000 + i));
            creators.push(c);
            token.mint(c, 1e30);
            VM.prank(c);
            token.approve(address(verinfer_), type(uint256).max);
        }
    }

    // ================================================================ views for the invariants

    function actorCount() external view returns (uint256) {
        return actors.length;
    }

    function creatorCount() external view returns (uint256) {
        return creators.length;
    }

    function modelCount() external pure returns (uint256) {
        return MODELS;
    }

    function taskCount() external view returns (uint256) {
        return taskIds.length;
    }

    function started(uint256 taskId) external view returns (Started memory) {
        return _started[taskId];
    }

    // ================================================================ step framing

    function _begin(uint256 seed, Step step, address actor) internal {
        VM.warp(currentTime);
        VM.roll(currentBlock);
        VM.prevrandao(keccak256(abi.encode(seed, currentTime)));
        _setSampleHashes(seed);
        _step = step;
        _stepActor = actor;
        VM.recordLogs();
    }

    /// @dev Sets the hash of the sample block of every task awaiting its sample draw, once that
    ///      block is readable (the first step in a later block chooses it, before any call can read
    ///      it): for the first task waiting on that block, one that makes its draw come out checked
    ///      or unchecked as `seed` says (half each; at most 64 tries, so a rare outcome at an
    ///      extreme rate may not be found); other tasks sharing the block get what that hash says.
    ///      forge runs each handler call of an invariant campaign on a copy of the state that does
    ///      not keep block hashes set by cheatcodes, so the chosen hashes are kept here and set again
    ///      at the start of every step until the draw is made or the block is no longer readable.
    function _setSampleHashes(uint256 seed) internal {
        uint256 n = _awaitingHash.length;
        uint256 kept;
        for (uint256 i; i < n; ++i) {
            uint256 id = _awaitingHash[i];
            IVerinfer.TaskInfo memory t = _ext().getTask(id);
            if (t.status != IVerinfer.TaskStatus.AwaitingSample) continue; // decided or settled
            uint256 sb = t.sampleBlock;
            _awaitingHash[kept++] = id;
            if (currentBlock <= sb) continue; // not readable yet
            if (currentBlock - sb > 256) {
                --kept; // unreadable for good: the draw will say checked
                continue;
            }
            if (!sampleHashSet[sb]) {
                uint256 p = _ext().taskParams(id).samplingBps;
                bool want = uint256(keccak256(abi.encode(seed, id, "want"))) % 2 == 0;
                bytes32 h;
                for (uint256 k; k < 64; ++k) {
                    h = keccak256(abi.encode(seed, sb, k));
                    if (_checkedBy(h, id, p) == want) break;
                }
                sampleHash[sb] = h;
                sampleHashSet[sb] = true;
            }
            VM.setBlockhash(sb, sampleHash[sb]);
        }
        while (_awaitingHash.length > kept) {
            _awaitingHash.pop();
        }
    }

    /// @dev The sample draw's rule, restated: checked iff keccak256(hash, taskId) % 10000 < p.
    function _checkedBy(bytes32 h, uint256 taskId, uint256 samplingBps) internal pure returns (bool) {
        return uint256(keccak256(abi.encode(h, taskId))) % 10_000 < samplingBps;
    }

    /// @dev Runs the draw due in this block (if any) before an action whose target a draw can change
    ///      (it may start or expire a queued task, or evict an under-staked node), so that the action
    ///      finds its target as checked. Other actions leave the draw to the call itself.
    function _settleDraw() internal {
        if (_ext().drawDue()) verinfer.drawTasks();
    }

    struct Flows {
        uint256 increase;
        uint256 ownOutflow;
        uint256 slashed;
    }

    /// @dev After every step: read the logs, check the rules they must follow, and update the ghosts.
    function _end() internal {
        Vm.Log[] memory logs = VM.getRecordedLogs();
        uint256 n = actors.length + creators.length;
        Flows[] memory flows = new Flows[](n);
        for (uint256 i; i < logs.length; ++i) {
            Vm.Log memory l = logs[i];
            if (l.topics.length == 0) continue;
            if (l.emitter == address(token)) {
                _checkTransfer(l, flows);
            } else if (l.emitter == address(verinfer)) {
                _onEvent(l, flows);
            }
        }
        _checkLedger(flows);
        for (uint256 i; i < actors.length; ++i) {
            if (everKicked[actors[i]] && _ext().getNode(actors[i]).state != IVerinfer.NodeState.Kicked) {
                ++kickedNodeRevived;
            }
        }
        _syncStatuses();
        _step = Step.None;
        _stepActor = address(0);
    }

    function _accountIndex(address account) internal view returns (uint256) {
        for (uint256 i; i < actors.length; ++i) {
            if (actors[i] == account) return i;
        }
        for (uint256 i; i < creators.length; ++i) {
            if (creators[i] == account) return actors.length + i;
        }
        return type(uint256).max;
    }

    function _account(uint256 index) internal view returns (address) {
        return index < actors.length ? actors[index] : creators[index - actors.length];
    }

    /// @dev Tokens leave Verinfer only to the account whose own call it is: a withdraw or an idle
    ///      node's leave (both reduce its own balance), a cancel's refund to the creator, or a
    ///      treasury withdrawal (to the treasury address, by the owner).
    function _checkTransfer(Vm.Log memory l, Flows[] memory flows) internal {
        if (l.topics[0] != keccak256("Transfer(address,address,uint256)") || l.topics.length != 3) return;
        if (address(uint160(uint256(l.topics[1]))) != address(verinfer)) return;
        address to = address(uint160(uint256(l.topics[2])));
        uint256 amount = abi.decode(l.data, (uint256));
        if (_step == Step.WithdrawTreasury) {
            if (to != verinfer.treasury()) ++foreignPayouts;
            return;
        }
        if (to != _stepActor) {
            ++foreignPayouts;
            return;
        }
        if (_step == Step.Withdraw || _step == Step.Leave) {
            uint256 idx = _accountIndex(to);
            if (idx == type(uint256).max) ++foreignPayouts;
            else flows[idx].ownOutflow += amount;
        } else if (_step != Step.CancelTask) {
            ++foreignPayouts;
        }
    }

    function _onEvent(Vm.Log memory l, Flows[] memory flows) internal {
        bytes32 sig = l.topics[0];
        if (sig == IVerinfer.NodeKicked.selector) {
            everKicked[address(uint160(uint256(l.topics[1])))] = true;
            ++kicks;
        } else if (sig == IVerinfer.NodeExited.selector) {
            ++exits;
        } else if (sig == IVerinfer.NodeJoined.selector) {
            address node = address(uint160(uint256(l.topics[1])));
            (,, uint96 stake,) = abi.decode(l.data, (string, uint32, uint96, uint8));
            _addIncrease(flows, node, stake);
            joinedBlock[node] = VM.getBlockNumber();
        } else if (sig == IVerinfer.StakeAdded.selector) {
            (uint96 amount,) = abi.decode(l.data, (uint96, uint96));
            _addIncrease(flows, address(uint160(uint256(l.topics[1]))), amount);
        } else if (sig == IVerinfer.NodeRewarded.selector) {
            address node = address(uint160(uint256(l.topics[1])));
            _addIncrease(flows, node, abi.decode(l.data, (uint96)));
            _onRewarded(node, uint256(l.topics[2]));
        } else if (sig == IVerinfer.BalanceCredited.selector) {
            (IVerinfer.CreditReason reason, uint256 amount) = abi.decode(l.data, (IVerinfer.CreditReason, uint256));
            // A returned stake moves stake into credit; refunds and slash rewards are new to the account.
            if (reason != IVerinfer.CreditReason.StakeReturned) {
                _addIncrease(flows, address(uint160(uint256(l.topics[1]))), amount);
            }
        } else if (sig == IVerinfer.Withdrawn.selector) {
            ++withdrawals;
        } else if (sig == IVerinfer.NodeSlashed.selector) {
            _onSlash(l, flows);
        } else if (sig == IVerinfer.TaskSettled.selector) {
            _onSettled(l);
        } else if (sig == IVerinfer.TaskStarted.selector) {
            _onStarted(l);
        } else if (sig == IVerinfer.CheckStarted.selector) {
            _onCheckStarted(l);
        } else if (sig == IVerinfer.SampleCommitted.selector) {
            _onSampleCommitted(l);
        } else if (sig == IVerinfer.SampleDecided.selector) {
            _onSampleDecided(l);
        } else if (sig == IVerinfer.RevealPhaseOpened.selector) {
            _started[uint256(l.topics[1])].revealDeadline = abi.decode(l.data, (uint32));
        } else if (sig == IVerinfer.TaskCreated.selector) {
            uint256 id = uint256(l.topics[1]);
            createdBlock[id] = VM.getBlockNumber();
            IVerinfer.TaskInfo memory t = _ext().getTask(id);
            versionAtCreation[id] = t.paramsVersion;
            sampled[id] = t.mode == IVerinfer.ValidationMode.Sampled;
        } else if (sig == IVerinfer.TaskCancelled.selector) {
            _onTerminalEvent(uint256(l.topics[1]), IVerinfer.TaskStatus.Cancelled);
        } else if (sig == IVerinfer.TaskExpired.selector) {
            ++expiries;
            uint256 id = uint256(l.topics[1]);
            _onTerminalEvent(id, IVerinfer.TaskStatus.Expired);
            if (lastStatus[id] == IVerinfer.TaskStatus.CheckQueued) ++checksExpired;
        } else if (sig == IVerinfer.ParamsActivated.selector) {
            ++activations;
        }
    }

    function _addIncrease(Flows[] memory flows, address account, uint256 amount) internal view {
        uint256 idx = _accountIndex(account);
        if (idx != type(uint256).max) flows[idx].increase += amount;
    }

    /// @dev A slash must be the task's slash share of the node's stake, and deserved: a missed commit,
    ///      a missed reveal, or (only for a dishonest node: honest results always agree) a result
    ///      outvoted by an agreeing pair.
    function _onSlash(Vm.Log memory l, Flows[] memory flows) internal {
        ++slashes;
        address node = address(uint160(uint256(l.topics[1])));
        uint256 taskId = uint256(l.topics[2]);
        (IVerinfer.SlashReason reason, uint96 amount) = abi.decode(l.data, (IVerinfer.SlashReason, uint96));
        uint256 idx = _accountIndex(node);
        if (idx == type(uint256).max) {
            ++unjustifiedSlashes;
            return;
        }
        flows[idx].slashed += amount;
        IVerinfer.TaskInfo memory t = _ext().getTask(taskId);
        uint256 slot = 3;
        for (uint256 k; k < 3; ++k) {
            if (t.nodes[k] == node) slot = k;
        }
        if (slot == 3) {
            ++unjustifiedSlashes;
            return;
        }
        uint8 bit = uint8(1 << slot);
        bool justified;
        if (reason == IVerinfer.SlashReason.MissedCommit) {
            justified = t.committedMask & bit == 0;
        } else if (reason == IVerinfer.SlashReason.MissedReveal) {
            justified = t.committedMask & bit != 0 && t.revealedMask & bit == 0;
        } else {
            justified = t.revealedMask & bit != 0 && t.status == IVerinfer.TaskStatus.Validated && _isDishonest(node);
        }
        uint256 expected = (ghostStake[node] * _ext().taskParams(taskId).slashShareBps) / 10_000;
        if (!justified || amount != expected) ++unjustifiedSlashes;
    }

    function _onSettled(Vm.Log memory l) internal {
        uint256 taskId = uint256(l.topics[1]);
        (IVerinfer.TaskStatus outcome, uint8 agreeing, uint16[] memory distances, uint8 threshold, uint96 reward) =
            abi.decode(l.data, (IVerinfer.TaskStatus, uint8, uint16[], uint8, uint96));
        ++outcomes[outcome];
        _onTerminalEvent(taskId, outcome);
        settledAgreeing[taskId] = agreeing;
        settledReward[taskId] = reward;
        IVerinfer.Params memory p = _ext().taskParams(taskId);
        if (threshold != p.threshold) ++wrongThresholds;
        IVerinfer.TaskInfo memory t = _ext().getTask(taskId);
        if (!sampled[taskId]) return;
        if (t.checked) {
            ++checkedSettled;
            return;
        }
        // Unchecked: the first node alone, no comparison, the whole fee less the protocol cut.
        ++sampledSettledUnchecked;
        bool ok = agreeing & ~uint8(1) == 0 && distances.length == 0 && t.nodes[1] == address(0)
            && t.nodes[2] == address(0) && t.nodes[0] == firstNode[taskId];
        if (outcome == IVerinfer.TaskStatus.Validated) {
            ok = ok && agreeing == 1 && reward == t.fee - uint96((uint256(t.fee) * p.protocolFeeBps) / 10_000);
        } else {
            ok = ok && agreeing == 0 && reward == 0;
        }
        if (!ok) ++uncheckedSettleViolations;
    }

    /// @dev Counts a task's terminal events; only the first one counts as its end.
    function _onTerminalEvent(uint256 taskId, IVerinfer.TaskStatus status) internal {
        if (++terminalEvents[taskId] > 1) {
            ++repeatedTerminalEvents;
        } else {
            terminalEventStatus[taskId] = status;
        }
    }

    /// @dev A reward belongs to the settlement of a task in the same step, to one of its nodes.
    function _onRewarded(address node, uint256 taskId) internal {
        ++nodesPaid[taskId];
        lastPaid[taskId] = node;
        IVerinfer.TaskInfo memory t = _ext().getTask(taskId);
        bool settledNow = terminalEvents[taskId] == 1 && !_isTerminal(lastStatus[taskId]);
        if (!settledNow || (node != t.nodes[0] && node != t.nodes[1] && node != t.nodes[2])) {
            ++strayRewards;
        }
    }

    /// @dev The sample block is the block after the commitment; the reveal deadline restarts.
    function _onSampleCommitted(Vm.Log memory l) internal {
        uint256 taskId = uint256(l.topics[1]);
        (uint256 sampleBlock, uint32 revealDeadline) = abi.decode(l.data, (uint256, uint32));
        ++sampledCommits;
        if (!sampled[taskId] || sampleBlock != VM.getBlockNumber() + 1) ++sampleViolations;
        _started[taskId].revealDeadline = revealDeadline;
        _awaitingHash.push(taskId);
    }

    /// @dev The decision comes after the sample block and is what the hash set for it says
    ///      (checked when the hash is no longer readable).
    function _onSampleDecided(Vm.Log memory l) internal {
        uint256 taskId = uint256(l.topics[1]);
        (bool checked, uint256 sampleBlock) = abi.decode(l.data, (bool, uint256));
        uint256 now_ = VM.getBlockNumber();
        bool expected;
        if (now_ <= sampleBlock) {
            ++sampleViolations;
            return;
        }
        if (now_ - sampleBlock > 256) {
            expected = true;
            ++sampledUnreadable;
        } else if (!sampleHashSet[sampleBlock]) {
            ++sampleViolations; // the handler sets every readable sample block's hash first
            return;
        } else {
            expected = _checkedBy(sampleHash[sampleBlock], taskId, _ext().taskParams(taskId).samplingBps);
        }
        if (checked != expected || sampleBlock != _ext().getTask(taskId).sampleBlock) ++sampleViolations;
        if (checked) {
            ++sampledDecidedChecked;
            checkQueuedBlock[taskId] = now_;
        } else {
            ++sampledDecidedUnchecked;
        }
    }

    /// @dev Records the started task's version, deadlines and parameters; checks the draw's rules.
    function _onStarted(Vm.Log memory l) internal {
        ++starts;
        uint256 taskId = uint256(l.topics[1]);
        (address[3] memory nodes, uint32 commitDeadline, uint32 revealDeadline, uint256 seedBlock) =
            abi.decode(l.data, (address[3], uint32, uint32, uint256));
        IVerinfer.TaskInfo memory t = _ext().getTask(taskId);
        _started[taskId] = Started({
            started: true,
            paramsVersion: t.paramsVersion,
            commitDeadline: commitDeadline,
            revealDeadline: revealDeadline,
            paramsHash: keccak256(abi.encode(_ext().paramsAt(t.paramsVersion)))
        });
        if (t.paramsVersion != versionAtCreation[taskId]) ++versionChanges;
        uint256 created = createdBlock[taskId];
        if (created >= VM.getBlockNumber() || seedBlock < created || seedBlock >= VM.getBlockNumber()) {
            ++drawViolations;
        }
        if (sampled[taskId]) {
            // One node, which stakes enough that cheating does not pay under the task's parameters:
            // p * s * stake >= (1 - p) * fee (bps).
            ++sampledStarts;
            firstNode[taskId] = nodes[0];
            if (nodes[0] == address(0) || nodes[1] != address(0) || nodes[2] != address(0)) ++drawViolations;
            IVerinfer.Params memory p = _ext().taskParams(taskId);
            uint256 stake = _ext().getNode(nodes[0]).stake;
            if (uint256(p.samplingBps) * p.slashShareBps * stake < (10_000 - uint256(p.samplingBps)) * 10_000 * t.fee) {
                ++drawViolations;
            }
            _checkDrawn(nodes[0], t);
            return;
        }
        for (uint256 k; k < 3; ++k) {
            _checkDrawn(nodes[k], t);
        }
    }

    /// @dev A drawn node must be one the task may have: not kicked, not joined in this block, of the
    ///      task's VRAM (and model, for text), fee tier and the minimum stake.
    function _checkDrawn(address node, IVerinfer.TaskInfo memory t) internal {
        if (everKicked[node]) ++kickedNodeStarts;
        if (joinedBlock[node] >= VM.getBlockNumber()) ++drawViolations;
        IVerinfer.NodeInfo memory info = _ext().getNode(node);
        bool eligible = node != address(0) && info.vramMiB >= t.minVramMiB && info.stake >= _ext().params().minStake
            && (t.kind == IVerinfer.TaskKind.ImageGeneration || info.gpuModel == t.gpuModel);
        // A node may change its tier after the draw in the same step (its own setFeeTier).
        bool tierChanged = _step == Step.SetFeeTier && node == _stepActor;
        if (!tierChanged && info.feeTier > t.feeLevel) eligible = false;
        if (!eligible) ++drawViolations;
    }

    /// @dev A check starts in a block after the one that queued it, seeded by a block in between,
    ///      on two distinct eligible nodes other than the first node; its deadlines restart.
    function _onCheckStarted(Vm.Log memory l) internal {
        ++checksStarted;
        uint256 taskId = uint256(l.topics[1]);
        (address[2] memory checkers, uint32 commitDeadline, uint32 revealDeadline, uint256 seedBlock) =
            abi.decode(l.data, (address[2], uint32, uint32, uint256));
        IVerinfer.TaskInfo memory t = _ext().getTask(taskId);
        _started[taskId].commitDeadline = commitDeadline;
        _started[taskId].revealDeadline = revealDeadline;
        if (t.paramsVersion != _started[taskId].paramsVersion) ++versionChanges;
        address first = firstNode[taskId];
        if (
            first == address(0) || t.nodes[0] != first || checkers[0] == first || checkers[1] == first
                || checkers[0] == checkers[1] || checkers[0] == address(0) || checkers[1] == address(0)
                || t.nodes[1] != checkers[0] || t.nodes[2] != checkers[1]
        ) ++selfChecks;
        uint256 queued = checkQueuedBlock[taskId];
        if (
            !sampled[taskId] || !t.checked || queued == 0 || queued >= VM.getBlockNumber() || seedBlock < queued
                || seedBlock >= VM.getBlockNumber()
        ) ++drawViolations;
        _checkDrawn(checkers[0], t);
        _checkDrawn(checkers[1], t);
    }

    /// @dev Each account's stake + credit must equal its value after the last step, plus what the
    ///      step's events gave it, minus its own payouts and its justified slashes.
    function _checkLedger(Flows[] memory flows) internal {
        for (uint256 i; i < flows.length; ++i) {
            address account = _account(i);
            uint256 stake = _ext().getNode(account).stake;
            uint256 credit = verinfer.claimable(account);
            uint256 expected = ghostStake[account] + ghostClaimable[account] + flows[i].increase;
            uint256 decrease = flows[i].ownOutflow + flows[i].slashed;
            if (decrease > expected || stake + credit != expected - decrease) ++ledgerViolations;
            ghostStake[account] = stake;
            ghostClaimable[account] = credit;
        }
    }

    function _syncStatuses() internal {
        for (uint256 i; i < taskIds.length; ++i) {
            uint256 id = taskIds[i];
            IVerinfer.TaskInfo memory t = _ext().getTask(id);
            IVerinfer.TaskStatus s = t.status;
            IVerinfer.TaskStatus prev = lastStatus[id];
            if (s != prev && !_legal(sampled[id], t.checked, prev, s)) ++illegalTransitions;
            lastStatus[id] = s;
            IVerinfer.TaskStatus terminal = terminalStatus[id];
            if (terminal != IVerinfer.TaskStatus.None) {
                if (s != terminal) ++terminalViolations;
            } else if (_isTerminal(s)) {
                terminalStatus[id] = s;
            }
        }
    }

    function _isTerminal(IVerinfer.TaskStatus s) internal pure returns (bool) {
        return s == IVerinfer.TaskStatus.Validated || s == IVerinfer.TaskStatus.Aborted
            || s == IVerinfer.TaskStatus.Errored || s == IVerinfer.TaskStatus.Cancelled
            || s == IVerinfer.TaskStatus.Expired;
    }

    function _isSettled(IVerinfer.TaskStatus s) internal pure returns (bool) {
        return
            s == IVerinfer.TaskStatus.Validated || s == IVerinfer.TaskStatus.Aborted
                || s == IVerinfer.TaskStatus.Errored;
    }

    /// @dev Allowed changes between two observations (a single step may skip intermediate ones).
    ///      A created task is always observed Queued first: it never starts in its creating block.
    ///      Full tasks: Queued -> Committing -> Revealing -> settled, or Queued -> Cancelled /
    ///      Expired. Sampled tasks also: Committing -> AwaitingSample (the first node committed) ->
    ///      Revealing (unchecked, resolved) or settled (the unchecked reveal, or the deadline) or
    ///      CheckQueued -> Committing (checkers drawn) or Expired (none in time). A sampled task's
    ///      sample and check are decided in later blocks than its commit, so no step skips them.
    function _legal(bool sampled_, bool checked, IVerinfer.TaskStatus from, IVerinfer.TaskStatus to)
        internal
        pure
        returns (bool)
    {
        if (from == IVerinfer.TaskStatus.None) return to == IVerinfer.TaskStatus.Queued;
        if (from == IVerinfer.TaskStatus.Queued) {
            return to == IVerinfer.TaskStatus.Committing || (!sampled_ && to == IVerinfer.TaskStatus.Revealing)
                || to == IVerinfer.TaskStatus.Cancelled || to == IVerinfer.TaskStatus.Expired;
        }
        if (from == IVerinfer.TaskStatus.Committing) {
            // A sampled task commits once (AwaitingSample) in its first phase, and reaches the
            // reveal phase by commits only in its check.
            if (to == IVerinfer.TaskStatus.AwaitingSample) return sampled_ && !checked;
            return (to == IVerinfer.TaskStatus.Revealing && (!sampled_ || checked)) || _isSettled(to);
        }
        if (from == IVerinfer.TaskStatus.Revealing) return _isSettled(to);
        if (from == IVerinfer.TaskStatus.AwaitingSample) {
            if (to == IVerinfer.TaskStatus.CheckQueued) return checked;
            return !checked && (to == IVerinfer.TaskStatus.Revealing || _isSettled(to));
        }
        if (from == IVerinfer.TaskStatus.CheckQueued) {
            return checked && (to == IVerinfer.TaskStatus.Committing || to == IVerinfer.TaskStatus.Expired);
        }
        return false; // terminal states never change
    }

    function _actor(uint256 seed) internal view returns (address) {
        return actors[seed % actors.length];
    }

    function _isDishonest(address node) internal view returns (bool) {
        for (uint256 i = DISHONEST_FROM; i < actors.length; ++i) {
            if (actors[i] == node) return true;
        }
        return false;
    }

    /// @dev A dishonest node's lie: the truth with 32 bits flipped, a different half per node, so
    ///      that no lie is within any threshold (<= 20) of the truth or of another node's lie.
    function _lieMask(address node) internal view returns (uint64) {
        uint64[4] memory masks =
            [uint64(0xFFFFFFFF00000000), uint64(0x00000000FFFFFFFF), uint64(0xFFFF0000FFFF0000), 0x0000FFFF0000FFFF];
        for (uint256 i = DISHONEST_FROM; i < actors.length; ++i) {
            if (actors[i] == node) return masks[i - DISHONEST_FROM];
        }
        return 0;
    }

    enum Want {
        Queued,
        Expirable,
        Committable,
        Revealable,
        Settleable,
        Resolvable
    }

    /// @dev A task in the wanted condition, searched from a random starting point; 0 if none.
    function _findTask(uint256 seed, Want want) internal view returns (uint256) {
        uint256 n = taskIds.length;
        for (uint256 k; k < n; ++k) {
            uint256 id = taskIds[(seed % n + k) % n];
            if (_is(id, _ext().getTask(id), want)) return id;
        }
        return 0;
    }

    function _is(uint256 id, IVerinfer.TaskInfo memory t, Want want) internal view returns (bool) {
        if (want == Want.Queued) return t.status == IVerinfer.TaskStatus.Queued;
        if (want == Want.Expirable) {
            return (t.status == IVerinfer.TaskStatus.Queued || t.status == IVerinfer.TaskStatus.CheckQueued)
                && VM.getBlockTimestamp() >= t.expiresAt;
        }
        if (t.status == IVerinfer.TaskStatus.AwaitingSample) {
            // The sample can be drawn from the block after the sample block on; the first node
            // reveals when it says unchecked, anybody resolves it either way, and past the reveal
            // deadline anybody settles (the first node is slashed for the missed reveal).
            bool decidable = VM.getBlockNumber() > t.sampleBlock;
            // `resolveSample` is refused past the reveal deadline (then only `settle` remains).
            if (want == Want.Resolvable) return decidable && VM.getBlockTimestamp() <= t.revealDeadline;
            if (want == Want.Settleable) return VM.getBlockTimestamp() > t.revealDeadline;
            if (want != Want.Revealable || !decidable || VM.getBlockTimestamp() > t.revealDeadline) return false;
            (, bool checked) = _ext().sampleDecision(id);
            return !checked && _commitments[id][t.nodes[0]].kind != ResultKind.Garbage;
        }
        if (want == Want.Resolvable) return false;
        bool committing = t.status == IVerinfer.TaskStatus.Committing;
        bool revealing = t.status == IVerinfer.TaskStatus.Revealing;
        if (want == Want.Committable) return committing && VM.getBlockTimestamp() <= t.commitDeadline;
        bool commitOver = revealing || (committing && VM.getBlockTimestamp() > t.commitDeadline);
        if (want == Want.Revealable) {
            return commitOver && VM.getBlockTimestamp() <= t.revealDeadline && t.revealedMask != t.committedMask;
        }
        return (committing || revealing)
            && ((commitOver && t.revealedMask == t.committedMask) || VM.getBlockTimestamp() > t.revealDeadline);
    }

    /// @dev Honest nodes report invalid args for one task in eight.
    function _argsInvalid(bytes32 argsHash) internal pure returns (bool) {
        return uint256(argsHash) % 8 == 0;
    }

    // ================================================================ node actions

    function join(uint256 actorSeed, uint256 modelSeed, uint256 tierSeed, uint256 stakeSeed) external {
        address node = _actor(actorSeed);
        _begin(actorSeed, Step.Join, node);
        if (_ext().getNode(node).state == IVerinfer.NodeState.None) {
            uint96 minStake = _ext().params().minStake;
            uint96 stake = uint96(minStake + (stakeSeed % (2 * uint256(minStake))));
            token.mint(node, stake);
            VM.startPrank(node);
            token.approve(address(verinfer), stake);
            verinfer.join(models[modelSeed % MODELS], uint8(tierSeed % 3), stake);
            VM.stopPrank();
            ++calls["join"];
        }
        _end();
    }

    function addStake(uint256 actorSeed, uint96 amount) external {
        address node = _actor(actorSeed);
        _begin(actorSeed, Step.AddStake, node);
        _settleDraw();
        IVerinfer.NodeState s = _ext().getNode(node).state;
        amount = uint96(1 + (amount % 100 ether));
        if (s != IVerinfer.NodeState.None && s != IVerinfer.NodeState.Kicked) {
            token.mint(node, amount);
            VM.startPrank(node);
            token.approve(address(verinfer), amount);
            verinfer.addStake(amount);
            VM.stopPrank();
            ++calls["addStake"];
        }
        _end();
    }

    function setFeeTier(uint256 actorSeed, uint8 tier) external {
        address node = _actor(actorSeed);
        _begin(actorSeed, Step.SetFeeTier, node);
        _settleDraw();
        IVerinfer.NodeState s = _ext().getNode(node).state;
        if (s != IVerinfer.NodeState.None && s != IVerinfer.NodeState.Kicked) {
            VM.prank(node);
            verinfer.setFeeTier(tier % 3);
            ++calls["setFeeTier"];
        }
        _end();
    }

    function leave(uint256 actorSeed) external {
        address node = _actor(actorSeed);
        _begin(actorSeed, Step.Leave, node);
        _settleDraw();
        IVerinfer.NodeState s = _ext().getNode(node).state;
        if (s == IVerinfer.NodeState.Available || s == IVerinfer.NodeState.Busy) {
            VM.prank(node);
            verinfer.leave();
            ++calls["leave"];
        }
        _end();
    }

    /// @dev An account (node or creator) withdraws what is credited to it.
    function withdraw(uint256 accountSeed) external {
        uint256 n = actors.length + creators.length;
        address account;
        for (uint256 k; k < n && account == address(0); ++k) {
            address a = _account((accountSeed % n + k) % n);
            if (verinfer.claimable(a) != 0) account = a;
        }
        _begin(accountSeed, Step.Withdraw, account);
        if (account != address(0)) {
            VM.prank(account);
            verinfer.withdraw();
            ++calls["withdraw"];
        }
        _end();
    }

    // ================================================================ task actions

    function createTask(
        uint256 creatorSeed,
        bool image,
        uint8 imageCount,
        uint256 vramSeed,
        uint256 modelSeed,
        uint256 feeSeed
    ) external {
        address c = creators[creatorSeed % creators.length];
        _begin(creatorSeed, Step.CreateTask, c);
        bytes32 argsHash = keccak256(abi.encode("invariant-args", creatorSeed, taskIds.length));
        IVerinfer.TaskKind kind = image ? IVerinfer.TaskKind.ImageGeneration : IVerinfer.TaskKind.TextGeneration;
        uint8 count = image ? uint8(1 + (imageCount % 4)) : 0;
        uint256 modelIndex = modelSeed % MODELS;
        uint32 minVram = image ? taskVrams[vramSeed % 3] : (vramSeed % 2 == 0 ? 0 : modelVrams[modelIndex]);
        // From the minimum to about 8x it (fee levels 0..3).
        uint256 minimum = _ext().minTaskFee(kind, count);
        uint96 fee = uint96(minimum + (feeSeed % (7 * minimum + 1)));
        VM.prank(c);
        uint256 id = verinfer.createTask(kind, argsHash, count, minVram, image ? "" : models[modelIndex], fee);
        taskIds.push(id);
        ++calls["createTask"];
        _end();
    }

    /// @dev A sampled task, its fee in `sampledFeeRange` (up to 8x the minimum, one in four up to
    ///      100x);
    ///      nothing when the range is empty (a low sampling rate and slash share allow no fee).
    function createSampledTask(
        uint256 creatorSeed,
        bool image,
        uint8 imageCount,
        uint256 vramSeed,
        uint256 modelSeed,
        uint256 feeSeed
    ) external {
        address c = creators[creatorSeed % creators.length];
        _begin(creatorSeed, Step.CreateSampledTask, c);
        IVerinfer.TaskKind kind = image ? IVerinfer.TaskKind.ImageGeneration : IVerinfer.TaskKind.TextGeneration;
        uint8 count = image ? uint8(1 + (imageCount % 4)) : 0;
        // The range under the version this call's task gets (a due version counts).
        (uint256 minimum, uint256 maximum) = _ext().sampledFeeRange(kind, count);
        if (minimum <= maximum) {
            bytes32 argsHash = keccak256(abi.encode("invariant-args", creatorSeed, taskIds.length));
            uint256 modelIndex = modelSeed % MODELS;
            uint32 minVram = image ? taskVrams[vramSeed % 3] : (vramSeed % 2 == 0 ? 0 : modelVrams[modelIndex]);
            uint256 span = maximum - minimum;
            uint256 cap = (feeSeed % 4 == 0 ? 99 : 7) * minimum;
            if (span > cap) span = cap;
            uint96 fee = uint96(minimum + feeSeed % (span + 1));
            VM.prank(c);
            uint256 id =
                verinfer.createSampledTask(kind, argsHash, count, minVram, image ? "" : models[modelIndex], fee);
            taskIds.push(id);
            ++calls["createSampledTask"];
        }
        _end();
    }

    function cancelTask(uint256 taskSeed) external {
        _begin(taskSeed, Step.CancelTask, address(0));
        _settleDraw();
        uint256 id = _findTask(taskSeed, Want.Queued);
        if (id != 0) {
            address c = _ext().getTask(id).creator;
            _stepActor = c;
            VM.prank(c);
            verinfer.cancelTask(id);
            ++calls["cancelTask"];
        }
        _end();
    }

    /// @dev Anybody expires a queued task past its time (a creator here, so payouts stay attributable).
    function expireTask(uint256 taskSeed) external {
        _begin(taskSeed, Step.ExpireTask, address(0));
        _settleDraw();
        uint256 id = _findTask(taskSeed, Want.Expirable);
        if (id != 0) {
            verinfer.expireTask(id);
            ++calls["expireTask"];
        }
        _end();
    }

    /// @dev How many nodes act in one commit or reveal step: all of them half the time, else one or two.
    function _todo(uint256 count) internal pure returns (uint256) {
        return count % 2 == 0 ? 3 : 1 + ((count >> 1) % 2);
    }

    /// @dev Some of the task's nodes that have not committed yet commit now.
    function commit(uint256 taskSeed, uint256 count, uint256 behaviourSeed) external {
        _begin(taskSeed, Step.Commit, address(0));
        uint256 id = _findTask(taskSeed, Want.Committable);
        if (id != 0) {
            IVerinfer.TaskInfo memory t = _ext().getTask(id);
            uint256 todo = _todo(count);
            for (uint256 i; i < 3 && todo > 0; ++i) {
                // A sampled task's first phase has one node; its check adds two (the first node's
                // commitment stands).
                if (t.committedMask & (1 << i) != 0 || t.nodes[i] == address(0)) continue;
                _commitOne(id, t, t.nodes[i], uint256(keccak256(abi.encode(behaviourSeed, i))));
                --todo;
            }
            ++calls["commit"];
        }
        _end();
    }

    function _commitOne(uint256 id, IVerinfer.TaskInfo memory t, address node, uint256 seed) internal {
        Commitment storage c = _commitments[id][node];
        c.salt = keccak256(abi.encode("salt", seed, id, node));
        bool image = t.kind == IVerinfer.TaskKind.ImageGeneration;
        uint256 behaviour = _isDishonest(node) ? seed % 4 : 0;
        if (behaviour == 0 && _argsInvalid(t.argsHash)) behaviour = 1;
        bytes32 commitment;
        if (behaviour == 1) {
            c.kind = ResultKind.Invalid;
            c.digest = verinfer.INVALID_ARGS();
            commitment = keccak256(abi.encode(id, node, c.digest, c.salt));
        } else if (behaviour == 3) {
            c.kind = ResultKind.Garbage; // a commitment nobody can open: misses the reveal
            commitment = keccak256(abi.encode("garbage", seed));
        } else if (image) {
            c.kind = ResultKind.Image;
            delete c.hashes;
            for (uint256 k; k < t.imageCount; ++k) {
                uint64 truth = uint64(uint256(keccak256(abi.encode(t.argsHash, k))));
                // Honest: the truth with at most two low bits flipped (pairs stay within 2 bits).
                // Lying (behaviour 2): 32 bits off the truth and off every other liar.
                uint64 noise = uint64((seed >> (8 * k)) & 3);
                c.hashes.push(behaviour == 2 ? truth ^ _lieMask(node) ^ noise : truth ^ noise);
            }
            commitment = keccak256(abi.encode(id, node, c.hashes, c.salt));
        } else {
            c.kind = ResultKind.Text;
            c.digest = behaviour == 2 ? keccak256(abi.encode(seed, node)) : keccak256(abi.encode(t.argsHash, "text"));
            commitment = keccak256(abi.encode(id, node, c.digest, c.salt));
        }
        VM.prank(node);
        verinfer.commit(id, commitment);
    }

    /// @dev Some committed nodes of a task open for reveals reveal now.
    function reveal(uint256 taskSeed, uint256 count) external {
        _begin(taskSeed, Step.Reveal, address(0));
        uint256 id = _findTask(taskSeed, Want.Revealable);
        if (id != 0) {
            IVerinfer.TaskInfo memory t = _ext().getTask(id);
            uint256 todo = _todo(count);
            for (uint256 i; i < 3 && todo > 0; ++i) {
                uint8 bit = uint8(1 << i);
                if (t.committedMask & bit == 0 || t.revealedMask & bit != 0) continue;
                if (_revealOne(id, t.nodes[i])) --todo;
                // The last reveal may have settled the task.
                if (!_is(id, _ext().getTask(id), Want.Revealable)) break;
            }
            ++calls["reveal"];
        }
        _end();
    }

    function _revealOne(uint256 id, address node) internal returns (bool) {
        Commitment storage c = _commitments[id][node];
        if (c.kind == ResultKind.Garbage) return false; // cannot be opened
        VM.prank(node);
        if (c.kind == ResultKind.Image) {
            verinfer.revealImage(id, c.hashes, c.salt);
        } else if (c.kind == ResultKind.Text) {
            verinfer.revealText(id, c.digest, c.salt);
        } else {
            verinfer.reportInvalidArgs(id, c.salt);
        }
        return true;
    }

    /// @dev Moves on a sampled task whose sample block has passed: checked, its first node runs the
    ///      sample draw (`resolveSample`; the task waits for two checkers); unchecked, the first node
    ///      reveals (which draws and settles), or, one time in four or when it cannot open its
    ///      commitment, calls `resolveSample` and leaves the reveal to a later step.
    function resolveSample(uint256 taskSeed) external {
        _begin(taskSeed, Step.ResolveSample, address(0));
        uint256 id = _findTask(taskSeed, Want.Resolvable);
        if (id != 0) {
            address first = _ext().getTask(id).nodes[0];
            _stepActor = first;
            bool reveal_ = (taskSeed >> 128) % 4 != 0 && _is(id, _ext().getTask(id), Want.Revealable);
            if (reveal_) {
                _revealOne(id, first);
                ++calls["revealSampled"];
            } else {
                VM.prank(first);
                verinfer.resolveSample(id);
                ++calls["resolveSample"];
            }
        }
        _end();
    }

    function settle(uint256 taskSeed) external {
        _begin(taskSeed, Step.Settle, address(0));
        uint256 id = _findTask(taskSeed, Want.Settleable);
        if (id != 0) {
            verinfer.settle(id);
            ++calls["settle"];
        }
        _end();
    }

    /// @dev Anybody sends the draw (it does nothing when this block already drew or nothing waits).
    function drawTasks(uint256 seed) external {
        _begin(seed, Step.DrawTasks, address(0));
        if (verinfer.drawTasks() != 0) ++calls["drawTasks"];
        _end();
    }

    // ================================================================ blocks and time

    /// @dev Mines 1..3 blocks, two seconds apart.
    function roll(uint256 blocks) external {
        blocks = 1 + (blocks % 3);
        currentBlock += blocks;
        currentTime += 2 * blocks;
        _begin(blocks, Step.Time, address(0));
        ++calls["roll"];
        _end();
    }

    /// @dev Time passes (one block per 12 seconds, at least one): mostly short steps; one in four
    ///      long enough to pass a commit or reveal deadline; one in sixteen long enough to expire
    ///      queued tasks or bring a scheduled parameter version into force.
    function warp(uint256 secs) external {
        uint256 step = secs % 16 == 0 ? 1 + (secs % 7200) : (secs % 4 == 0 ? 1 + (secs % 700) : 1 + (secs % 60));
        currentTime += step;
        uint256 blocks = step / 12;
        currentBlock += blocks == 0 ? 1 : (blocks > 200 ? 200 : blocks);
        _begin(secs, Step.Time, address(0));
        ++calls["warp"];
        _end();
    }

    // ================================================================ owner actions

    /// @dev Schedules a random valid version (one time in four: cancels the pending one instead).
    ///      Thresholds stay >= 4 so that honest nodes (within 2 bits of each other) agree.
    function scheduleParams(uint256 seed) external {
        _begin(seed, Step.ScheduleParams, owner);
        (uint24 pending,,) = _ext().scheduledParams();
        VM.startPrank(owner);
        if (seed % 4 == 0 && pending != 0) {
            _ext().cancelScheduledParams();
            ++calls["cancelScheduledParams"];
        } else {
            uint8 threshold = uint8(4 + ((seed >> 8) % 17));
            // Mostly at or below the starting minimum (1000), sometimes above it: nodes then leave
            // with BelowMinStake when drawn or released.
            uint96 minStake = uint96(500 ether + ((seed >> 16) % 600) * 1 ether);
            _ext()
                .scheduleParams(
                    IVerinfer.Params({
                    threshold: threshold,
                    minTextPool: uint8(3 + ((seed >> 24) % 2)),
                    slashShareBps: uint16(1 + ((seed >> 32) % 10_000)),
                    slashRewardBps: uint16((seed >> 48) % 10_001),
                    protocolFeeBps: uint16((seed >> 64) % 10_001),
                    commitWindow: uint32(120 + ((seed >> 80) % 600)),
                    revealWindow: uint32(120 + ((seed >> 96) % 600)),
                    queueTimeout: uint32(600 + ((seed >> 112) % 7200)),
                    minStake: minStake,
                    stakePerThresholdBit: minStake / 64,
                    minTaskFee: uint96(0.5 ether + ((seed >> 128) % 2000) * 0.001 ether),
                    minImageFee: uint96(((seed >> 144) % 200) * 0.001 ether),
                    samplingBps: uint16(1 + (seed >> 160) % 10_000)
                })
                );
            ++calls["scheduleParams"];
        }
        VM.stopPrank();
        _end();
    }

    function withdrawTreasury(uint256 seed) external {
        _begin(seed, Step.WithdrawTreasury, owner);
        uint256 balance = verinfer.treasuryBalance();
        if (balance != 0) {
            VM.prank(owner);
            verinfer.withdrawTreasury(seed % (balance + 1));
            ++calls["withdrawTreasury"];
        }
        _end();
    }
}
