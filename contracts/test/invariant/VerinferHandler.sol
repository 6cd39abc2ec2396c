// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Verinfer} from "../../src/Verinfer.sol";
import {IVerinfer} from "../../src/interfaces/IVerinfer.sol";
import {MockStakingToken} from "../../src/mocks/MockStakingToken.sol";
import {VM, Vm} from "../Vm.sol";

/// @notice Drives Verinfer through random but well-formed protocol steps for the invariant tests:
///         nodes join, add stake and leave; creators create and cancel tasks; selected nodes
///         commit and reveal (honest ones agree, dishonest ones lie, report invalid args or commit
///         garbage they cannot reveal); anyone settles and dispatches; time passes; the owner
///         changes parameters and withdraws the treasury. Inputs are bounded so that most calls do
///         something. Ghost state records what the invariants need: the first terminal status of
///         every task, illegal status transitions, and kicked nodes seen in a later TaskStarted.
contract VerinferHandler {
    uint256 internal constant ACTORS = 12;
    uint256 internal constant DISHONEST_FROM = 8; // actors 8..11 cheat
    uint256 internal constant CREATORS = 3;

    Verinfer public immutable verinfer;
    MockStakingToken public immutable token;
    address public immutable owner;

    address[] public actors;
    address[] public creators;
    uint256[] public taskIds;
    string[3] public models = ["NVIDIA H100 80GB HBM3", "NVIDIA GeForce RTX 4090", "NVIDIA A100-SXM4-80GB"];
    uint32[3] internal vrams = [uint32(8192), 24_576, 81_920];
    uint32[3] internal taskVrams = [uint32(0), 16_384, 65_536];

    uint256 public currentTime;

    // ---------------------------------------------------------------- ghost state

    mapping(uint256 taskId => IVerinfer.TaskStatus) public lastStatus;
    mapping(uint256 taskId => IVerinfer.TaskStatus) public terminalStatus;
    mapping(address node => bool) public everKicked;
    uint256 public terminalViolations;
    uint256 public illegalTransitions;
    uint256 public kickedNodeStarts;
    uint256 public kickedNodeRevived;

    // Coverage counters: how often each step did something, and what the settlements produced.
    mapping(bytes32 action => uint256) public calls;
    mapping(IVerinfer.TaskStatus outcome => uint256) public outcomes;
    uint256 public kicks;
    uint256 public exits;

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
        currentTime = block.timestamp;
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

    // ================================================================ helpers

    function actorCount() external view returns (uint256) {
        return actors.length;
    }

    function modelCount() external pure returns (uint256) {
        return 3;
    }

    function taskCount() external view returns (uint256) {
        return taskIds.length;
    }

    function _begin(uint256 seed) internal {
        VM.warp(currentTime);
        VM.prevrandao(keccak256(abi.encode(seed, currentTime)));
        VM.recordLogs();
    }

    /// @dev After every step: check the logs for kicked nodes drawn again, and record statuses.
    function _end() internal {
        Vm.Log[] memory logs = VM.getRecordedLogs();
        for (uint256 i; i < logs.length; ++i) {
            Vm.Log memory l = logs[i];
            if (l.emitter != address(verinfer) || l.topics.length == 0) continue;
            if (l.topics[0] == IVerinfer.NodeKicked.selector) {
                everKicked[address(uint160(uint256(l.topics[1])))] = true;
                ++kicks;
            } else if (l.topics[0] == IVerinfer.NodeExited.selector) {
                ++exits;
            } else if (l.topics[0] == IVerinfer.TaskSettled.selector) {
                (IVerinfer.TaskStatus outcome) = abi.decode(l.data, (IVerinfer.TaskStatus));
                ++outcomes[outcome];
            } else if (l.topics[0] == IVerinfer.TaskStarted.selector) {
                (address[3] memory started,,) = abi.decode(l.data, (address[3], uint32, uint32));
                for (uint256 k; k < 3; ++k) {
                    if (everKicked[started[k]]) ++kickedNodeStarts;
                }
            }
        }
        for (uint256 i; i < actors.length; ++i) {
            if (everKicked[actors[i]] && verinfer.getNode(actors[i]).state != IVerinfer.NodeState.Kicked) {
                ++kickedNodeRevived;
            }
        }
        _syncStatuses();
    }

    function _syncStatuses() internal {
        for (uint256 i; i < taskIds.length; ++i) {
            uint256 id = taskIds[i];
            IVerinfer.TaskStatus s = verinfer.getTask(id).status;
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
            || s == IVerinfer.TaskStatus.Errored || s == IVerinfer.TaskStatus.Cancelled;
    }

    /// @dev Allowed changes between two observations (a single step may skip intermediate ones,
    ///      e.g. a task created and started in the same call, observed first as Committing).
    function _legal(IVerinfer.TaskStatus from, IVerinfer.TaskStatus to) internal pure returns (bool) {
        if (from == IVerinfer.TaskStatus.None) return to != IVerinfer.TaskStatus.None;
        if (from == IVerinfer.TaskStatus.Queued) return to != IVerinfer.TaskStatus.None;
        if (from == IVerinfer.TaskStatus.Committing) {
            return to == IVerinfer.TaskStatus.Revealing || (_isTerminal(to) && to != IVerinfer.TaskStatus.Cancelled);
        }
        if (from == IVerinfer.TaskStatus.Revealing) {
            return _isTerminal(to) && to != IVerinfer.TaskStatus.Cancelled;
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

    enum Want {
        Queued,
        Committable,
        Revealable,
        Settleable
    }

    /// @dev A task in the wanted condition, searched from a random starting point; 0 if none.
    function _findTask(uint256 seed, Want want) internal view returns (uint256) {
        uint256 n = taskIds.length;
        for (uint256 k; k < n; ++k) {
            uint256 id = taskIds[(seed % n + k) % n];
            if (_is(verinfer.getTask(id), want)) return id;
        }
        return 0;
    }

    function _is(IVerinfer.TaskInfo memory t, Want want) internal view returns (bool) {
        if (want == Want.Queued) return t.status == IVerinfer.TaskStatus.Queued;
        bool committing = t.status == IVerinfer.TaskStatus.Committing;
        bool revealing = t.status == IVerinfer.TaskStatus.Revealing;
        if (want == Want.Committable) return committing && block.timestamp <= t.commitDeadline;
        bool commitOver = revealing || (committing && block.timestamp > t.commitDeadline);
        if (want == Want.Revealable) {
            return commitOver && block.timestamp <= t.revealDeadline && t.revealedMask != t.committedMask;
        }
        return (committing || revealing)
            && ((commitOver && t.revealedMask == t.committedMask) || block.timestamp > t.revealDeadline);
    }

    /// @dev Honest nodes report invalid args for one task in eight.
    function _argsInvalid(bytes32 argsHash) internal pure returns (bool) {
        return uint256(argsHash) % 8 == 0;
    }

    // ================================================================ node actions

    function join(uint256 actorSeed, uint256 modelSeed, uint256 vramSeed, uint256 stakeSeed) external {
        _begin(actorSeed);
        address node = _actor(actorSeed);
        if (verinfer.getNode(node).state == IVerinfer.NodeState.None) {
            uint96 minStake = verinfer.minStake();
            uint96 stake = uint96(minStake + (stakeSeed % (2 * uint256(minStake))));
            token.mint(node, stake);
            VM.startPrank(node);
            token.approve(address(verinfer), stake);
            verinfer.join(models[modelSeed % 3], vrams[vramSeed % 3], stake);
            VM.stopPrank();
            ++calls["join"];
        }
        _end();
    }

    function addStake(uint256 actorSeed, uint96 amount) external {
        _begin(actorSeed);
        address node = _actor(actorSeed);
        IVerinfer.NodeState s = verinfer.getNode(node).state;
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

    function leave(uint256 actorSeed) external {
        _begin(actorSeed);
        address node = _actor(actorSeed);
        IVerinfer.NodeState s = verinfer.getNode(node).state;
        if (s == IVerinfer.NodeState.Available || s == IVerinfer.NodeState.Busy) {
            VM.prank(node);
            verinfer.leave();
            ++calls["leave"];
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
        uint96 fee
    ) external {
        _begin(creatorSeed);
        address c = creators[creatorSeed % creators.length];
        bytes32 argsHash = keccak256(abi.encode("invariant-args", creatorSeed, taskIds.length));
        fee = uint96(fee % 100 ether);
        uint32 minVram = taskVrams[vramSeed % 3];
        string memory model = image || modelSeed % 4 == 3 ? "" : models[modelSeed % 4];
        VM.prank(c);
        uint256 id = verinfer.createTask(
            image ? IVerinfer.TaskKind.ImageGeneration : IVerinfer.TaskKind.TextGeneration,
            argsHash,
            image ? uint8(1 + (imageCount % 4)) : 0,
            minVram,
            model,
            fee
        );
        taskIds.push(id);
        ++calls["createTask"];
        _end();
    }

    function cancelTask(uint256 taskSeed) external {
        _begin(taskSeed);
        uint256 id = _findTask(taskSeed, Want.Queued);
        if (id != 0) {
            VM.prank(verinfer.getTask(id).creator);
            verinfer.cancelTask(id);
            ++calls["cancelTask"];
        }
        _end();
    }

    /// @dev Up to `count` of the task's nodes that have not committed yet commit now.
    function commit(uint256 taskSeed, uint256 count, uint256 behaviourSeed) external {
        _begin(taskSeed);
        uint256 id = _findTask(taskSeed, Want.Committable);
        if (id != 0) {
            IVerinfer.TaskInfo memory t = verinfer.getTask(id);
            uint256 todo = 1 + (count % 3);
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
                // Honest: the truth with at most two low bits flipped (pairs stay within 4 bits).
                // Lying (behaviour 2): unrelated hashes.
                c.hashes
                    .push(
                        behaviour == 2
                            ? uint64(uint256(keccak256(abi.encode(seed, k))))
                            : truth ^ uint64((seed >> (8 * k)) & 3)
                    );
            }
            commitment = keccak256(abi.encode(id, node, c.hashes, c.salt));
        } else {
            c.kind = ResultKind.Text;
            c.digest = behaviour == 2 ? keccak256(abi.encode(seed)) : keccak256(abi.encode(t.argsHash, "text"));
            commitment = keccak256(abi.encode(id, node, c.digest, c.salt));
        }
        VM.prank(node);
        verinfer.commit(id, commitment);
    }

    /// @dev Up to `count` committed nodes of a task open for reveals reveal now.
    function reveal(uint256 taskSeed, uint256 count) external {
        _begin(taskSeed);
        uint256 id = _findTask(taskSeed, Want.Revealable);
        if (id != 0) {
            IVerinfer.TaskInfo memory t = verinfer.getTask(id);
            uint256 todo = 1 + (count % 3);
            for (uint256 i; i < 3 && todo > 0; ++i) {
                uint8 bit = uint8(1 << i);
                if (t.committedMask & bit == 0 || t.revealedMask & bit != 0) continue;
                if (_revealOne(id, t.nodes[i])) --todo;
                // The last reveal may have settled the task.
                if (!_is(verinfer.getTask(id), Want.Revealable)) break;
            }
            ++calls["reveal"];
        }
        _end();
    }

    function _revealOne(uint256 id, address node) internal returns (bool) {
        Commitment storage c = _commitments[id][node];
        VM.prank(node);
        if (c.kind == ResultKind.Image) {
            verinfer.revealImage(id, c.hashes, c.salt);
        } else if (c.kind == ResultKind.Text) {
            verinfer.revealText(id, c.digest, c.salt);
        } else if (c.kind == ResultKind.Invalid) {
            verinfer.reportInvalidArgs(id, c.salt);
        } else {
            return false; // garbage: cannot be opened
        }
        return true;
    }

    function settle(uint256 taskSeed) external {
        _begin(taskSeed);
        uint256 id = _findTask(taskSeed, Want.Settleable);
        if (id != 0) {
            verinfer.settle(id);
            ++calls["settle"];
        }
        _end();
    }

    function dispatch(uint256 queueSeed, uint256 maxStarts) external {
        _begin(queueSeed);
        bytes32 key = queueSeed % 5 == 0
            ? verinfer.imageQueueKey()
            : (queueSeed % 5 == 4 ? verinfer.textQueueKey(bytes32(0)) : verinfer.gpuModelId(models[queueSeed % 3]));
        if (verinfer.dispatch(key, 1 + (maxStarts % 16)) != 0) ++calls["dispatch"];
        _end();
    }

    function warp(uint256 secs) external {
        // Mostly short steps; one in four long enough to pass a commit or reveal deadline.
        currentTime += secs % 4 == 0 ? 1 + (secs % 700) : 1 + (secs % 60);
        _begin(secs);
        ++calls["warp"];
        _end();
    }

    // ================================================================ owner actions

    function setParams(uint256 seed) external {
        _begin(seed);
        VM.startPrank(owner);
        uint256 which = seed % 3;
        if (which == 0) {
            // Thresholds stay >= 4 so that honest nodes (within 4 bits of each other) agree.
            uint8 threshold = uint8(4 + ((seed >> 8) % 17));
            uint96 minStake = uint96(500 ether + ((seed >> 16) % 1000) * 1 ether);
            verinfer.setValidationParams(threshold, minStake, minStake / 64);
        } else if (which == 1) {
            verinfer.setSlashShare(uint16(1 + ((seed >> 8) % 10_000)));
        } else {
            verinfer.setProtocolFee(uint16((seed >> 8) % 10_001));
        }
        VM.stopPrank();
        ++calls["setParams"];
        _end();
    }

    function withdrawTreasury(uint256 seed) external {
        _begin(seed);
        uint96 balance = verinfer.treasuryBalance();
        if (balance != 0) {
            VM.prank(owner);
            verinfer.withdrawTreasury(uint96(seed % (uint256(balance) + 1)));
            ++calls["withdrawTreasury"];
        }
        _end();
    }
}
