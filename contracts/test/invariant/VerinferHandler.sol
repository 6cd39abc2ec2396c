// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Verinfer} from "../../src/Verinfer.sol";
import {IVerinfer} from "../../src/interfaces/IVerinfer.sol";
import {VerinferExtension} from "../../src/VerinferExtension.sol";
import {MockStakingToken} from "../../src/mocks/MockStakingToken.sol";
import {VM, Vm} from "../Vm.sol";

/// @notice Drives Verinfer through random but well-formed protocol steps for the invariant tests:
///         nodes join (at a fee tier), add stake, change tier and leave; creators create, cancel
///         and expire tasks; selected nodes commit and reveal (honest ones agree, dishonest ones lie,
///         report invalid args or commit garbage they cannot reveal); anyone settles, draws and
///         withdraws what is credited to it; blocks are mined and time passes; the owner schedules
///         (and cancels) parameter versions and withdraws the treasury. Inputs are bounded so that
///         most calls do something and no call reverts.
///
///         Ghost state, checked after every step from the step's logs, records what the invariants
///         need: the first terminal status of every task and illegal status transitions; kicked
///         nodes seen in a later TaskStarted; draws that break the draw rules (a task started in its
///         creation block, a node drawn in the block it joined, an ineligible node); every account's
///         stake + credit, which may only change as the step's events say and only decrease by the
///         account's own leave or withdraw or by a justified slash; token transfers out of the
///         contract to anybody but the account acting; and each started task's parameter version,
///         deadlines and parameters, as they were when it started.
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
        WithdrawTreasury
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
        _step = step;
        _stepActor = actor;
        VM.recordLogs();
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
            _addIncrease(flows, address(uint160(uint256(l.topics[1]))), abi.decode(l.data, (uint96)));
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
        } else if (sig == IVerinfer.RevealPhaseOpened.selector) {
            _started[uint256(l.topics[1])].revealDeadline = abi.decode(l.data, (uint32));
        } else if (sig == IVerinfer.TaskCreated.selector) {
            uint256 id = uint256(l.topics[1]);
            createdBlock[id] = VM.getBlockNumber();
            versionAtCreation[id] = _ext().getTask(id).paramsVersion;
        } else if (sig == IVerinfer.TaskExpired.selector) {
            ++expiries;
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
        (IVerinfer.TaskStatus outcome,,, uint8 threshold,) =
            abi.decode(l.data, (IVerinfer.TaskStatus, uint8, uint16[], uint8, uint96));
        ++outcomes[outcome];
        if (threshold != _ext().taskParams(taskId).threshold) ++wrongThresholds;
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
        uint96 minStake = _ext().params().minStake;
        for (uint256 k; k < 3; ++k) {
            address node = nodes[k];
            if (everKicked[node]) ++kickedNodeStarts;
            if (joinedBlock[node] >= VM.getBlockNumber()) ++drawViolations;
            IVerinfer.NodeInfo memory info = _ext().getNode(node);
            bool eligible = info.vramMiB >= t.minVramMiB && info.stake >= minStake
                && (t.kind == IVerinfer.TaskKind.ImageGeneration || info.gpuModel == t.gpuModel);
            // A node may change its tier after the draw in the same step (its own setFeeTier).
            bool tierChanged = _step == Step.SetFeeTier && node == _stepActor;
            if (!tierChanged && info.feeTier > t.feeLevel) eligible = false;
            if (!eligible) ++drawViolations;
        }
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
            IVerinfer.TaskStatus s = _ext().getTask(id).status;
            IVerinfer.TaskStatus prev = lastStatus[id];
            if (s != prev && !_legal(prev, s)) ++illegalTransitions;
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
    function _legal(IVerinfer.TaskStatus from, IVerinfer.TaskStatus to) internal pure returns (bool) {
        if (from == IVerinfer.TaskStatus.None) return to == IVerinfer.TaskStatus.Queued;
        if (from == IVerinfer.TaskStatus.Queued) {
            return to == IVerinfer.TaskStatus.Committing || to == IVerinfer.TaskStatus.Revealing
                || to == IVerinfer.TaskStatus.Cancelled || to == IVerinfer.TaskStatus.Expired;
        }
        if (from == IVerinfer.TaskStatus.Committing) return to == IVerinfer.TaskStatus.Revealing || _isSettled(to);
        if (from == IVerinfer.TaskStatus.Revealing) return _isSettled(to);
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
        Settleable
    }

    /// @dev A task in the wanted condition, searched from a random starting point; 0 if none.
    function _findTask(uint256 seed, Want want) internal view returns (uint256) {
        uint256 n = taskIds.length;
        for (uint256 k; k < n; ++k) {
            uint256 id = taskIds[(seed % n + k) % n];
            if (_is(_ext().getTask(id), want)) return id;
        }
        return 0;
    }

    function _is(IVerinfer.TaskInfo memory t, Want want) internal view returns (bool) {
        if (want == Want.Queued) return t.status == IVerinfer.TaskStatus.Queued;
        if (want == Want.Expirable) {
            return t.status == IVerinfer.TaskStatus.Queued && VM.getBlockTimestamp() >= t.expiresAt;
        }
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
                if (t.committedMask & (1 << i) != 0) continue;
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
                if (!_is(_ext().getTask(id), Want.Revealable)) break;
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
            _ext().scheduleParams(
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
