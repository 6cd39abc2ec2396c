// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

import {VerinferState} from "./VerinferState.sol";
import {GpuModels} from "./libraries/GpuModels.sol";
import {TieredPool} from "./libraries/TieredPool.sol";

/// @notice What the extension calls back on Verinfer.
interface IVerinferDraw {
    function drawTasks() external returns (uint256 started);
}

/// @title VerinferExtension
/// @notice The views of `Verinfer` and the owner's registry and parameter functions. Verinfer
///         deploys one in its constructor and forwards every call it does not implement itself
///         here by `delegatecall`, so these functions run on Verinfer's storage and are called at
///         Verinfer's address (its ABI lists them). This keeps Verinfer's runtime code under the
///         24,576-byte limit.
/// @dev Called directly (not through Verinfer) it works on its own, empty, storage and owner.
contract VerinferExtension is VerinferState {
    using TieredPool for TieredPool.Pool;

    /// @dev What Verinfer's `touch` does: the first state-changing call of a block draws first.
    ///      Verinfer's draw code lives there; an external call to itself runs it.
    modifier touch() {
        if (block.number != lastTouchBlock) IVerinferDraw(address(this)).drawTasks();
        _;
    }

    constructor() Ownable(msg.sender) {}

    // ================================================================ owner

    /// @notice Schedules parameter version `paramsVersion() + 1`, in force `paramsDelay` seconds from
    ///         now (at once when the delay is 0) for tasks created from then on. Replaces a version
    ///         scheduled earlier and not yet in force. Running and queued tasks keep their version.
    function scheduleParams(Params calldata newParams) external onlyOwner touch {
        _validateParams(newParams);
        uint24 pending = _scheduledVersion;
        if (pending != 0) emit ParamsScheduleCancelled(pending);
        uint24 version = _paramsVersion + 1;
        uint40 effectiveAt = uint40(block.timestamp + paramsDelay);
        _params[version] = newParams;
        _scheduledVersion = version;
        _scheduledAt = effectiveAt;
        emit ParamsScheduled(version, newParams, effectiveAt);
        if (paramsDelay == 0) _activateScheduledParams();
    }

    /// @notice Withdraws the scheduled parameter version before it takes effect.
    function cancelScheduledParams() external onlyOwner touch {
        uint24 pending = _scheduledVersion;
        if (pending == 0) revert NoScheduledParams();
        _scheduledVersion = 0;
        _scheduledAt = 0;
        emit ParamsScheduleCancelled(pending);
    }

    /// @notice Registers a GPU model nodes may declare: its name (normalised into its id) and the
    ///         VRAM every card of that model has, in MiB. At most `MAX_GPU_MODELS`; never removed.
    function addGpuModel(string calldata name, uint32 vramMiB) external onlyOwner touch {
        if (vramMiB < MIN_GPU_VRAM_MIB) revert VramTooSmall(vramMiB, MIN_GPU_VRAM_MIB);
        if (vramMiB > MAX_GPU_VRAM_MIB) revert VramTooLarge(vramMiB, MAX_GPU_VRAM_MIB);
        (bytes32 id, string memory normal) = GpuModels.normalise(name);
        if (_gpuModels[id].registered) revert GpuModelAlreadyRegistered(id);
        uint8 index = _gpuModelCount;
        if (index >= MAX_GPU_MODELS) revert TooManyGpuModels(MAX_GPU_MODELS);
        _gpuModels[id] = GpuModel({registered: true, active: true, index: index});
        _modelIds[index] = id;
        _modelVram[index] = vramMiB;
        _modelNames[id] = normal;
        _gpuModelCount = index + 1;
        if (index == 0 || vramMiB < _minModelVram) _minModelVram = vramMiB;
        emit GpuModelAdded(id, normal, vramMiB);
    }

    /// @notice Opens or closes a registered GPU model to new nodes. Nodes already registered with
    ///         it keep serving; tasks may still name it.
    function setGpuModelActive(bytes32 id, bool active) external onlyOwner touch {
        GpuModel storage model = _gpuModels[id];
        if (!model.registered) revert GpuModelNotRegistered(id);
        model.active = active;
        emit GpuModelActiveSet(id, active);
    }

    // ================================================================ views

    /// @notice The parameters new tasks get now (a scheduled version counts once its time has come).
    function params() external view returns (Params memory) {
        return _params[paramsVersion()];
    }

    /// @notice The version number of `params()`.
    function paramsVersion() public view returns (uint24) {
        uint40 at = _scheduledAt;
        return at != 0 && block.timestamp >= at ? _scheduledVersion : _paramsVersion;
    }

    /// @notice Parameter version `version` (what tasks created under it run with).
    function paramsAt(uint24 version) external view returns (Params memory) {
        return _params[version];
    }

    /// @notice The scheduled version not yet in force: its number (0 = none), values and start.
    function scheduledParams() external view returns (uint24 version, Params memory values, uint40 effectiveAt) {
        uint40 at = _scheduledAt;
        if (at == 0 || block.timestamp >= at) return (0, values, 0);
        version = _scheduledVersion;
        return (version, _params[version], at);
    }

    /// @notice Smallest fee a task of this kind and image count may pay now.
    function minTaskFee(TaskKind kind, uint8 imageCount) external view returns (uint256) {
        return _minimumFee(_params[paramsVersion()], kind, ValidationMode.Full, imageCount);
    }

    /// @notice The fees a sampled task of this kind and image count may pay now: at least
    ///         `minimum` (the full minimum times (1 + 2p) / 3) and at most `maximum` (the largest
    ///         fee for which `p * s * minStake >= (1 - p) * fee`, so that cheating does not pay).
    function sampledFeeRange(TaskKind kind, uint8 imageCount) external view returns (uint256 minimum, uint256 maximum) {
        Params storage p = _params[paramsVersion()];
        return (_minimumFee(p, kind, ValidationMode.Sampled, imageCount), _maxSampledFee(p));
    }

    /// @notice Whether a sampled task awaiting its sample draw can be decided now, and if so whether
    ///         it is checked (what `resolveSample`, or the first node's reveal, would decide).
    function sampleDecision(uint256 taskId) external view returns (bool decidable, bool checked) {
        Task storage t = _tasks[taskId];
        if (t.status != TaskStatus.AwaitingSample) revert NotAwaitingSample(taskId, t.status);
        if (block.number <= t.sampleBlock) return (false, false);
        return (true, _sampleChecked(t, taskId));
    }

    /// @notice How many GPU models are registered (see `gpuModelAt`).
    function gpuModelCount() external view returns (uint256) {
        return _gpuModelCount;
    }

    /// @notice The registered GPU model at `index` (registration order; reverts past the end).
    function gpuModelAt(uint256 index) external view returns (GpuModelInfo memory) {
        if (index >= _gpuModelCount) revert GpuModelNotRegistered(bytes32(index));
        return _gpuModelInfo(_modelIds[index]);
    }

    /// @notice One registered GPU model by id (reverts when not registered).
    function gpuModel(bytes32 id) external view returns (GpuModelInfo memory) {
        if (!_gpuModels[id].registered) revert GpuModelNotRegistered(id);
        return _gpuModelInfo(id);
    }

    /// @notice A node's record (state None for unknown addresses).
    function getNode(address node) external view returns (NodeInfo memory info) {
        Node storage n = _nodes[node];
        info.state = n.state;
        info.id = n.id;
        info.stake = n.stake;
        info.feeTier = n.feeTier;
        info.taskId = n.taskId;
        if (n.id != 0) {
            info.gpuModel = _modelIds[n.model];
            info.vramMiB = _modelVram[n.model];
        }
    }

    /// @notice A task's record (status None for unknown ids).
    function getTask(uint256 taskId) external view returns (TaskInfo memory info) {
        Task storage t = _tasks[taskId];
        info.creator = t.creator;
        info.kind = t.kind;
        info.status = t.status;
        info.imageCount = t.imageCount;
        info.minVramMiB = t.minVramMiB;
        info.argsHash = t.argsHash;
        if (t.textModel != 0) info.gpuModel = _modelIds[t.textModel - 1];
        info.fee = t.fee;
        info.nodes = [nodeAddress[t.node0], nodeAddress[t.node1], nodeAddress[t.node2]];
        info.committedMask = t.committedMask;
        info.revealedMask = t.revealedMask;
        info.invalidMask = t.invalidMask;
        info.commitDeadline = t.commitDeadline;
        info.revealDeadline = t.revealDeadline;
        info.feeLevel = t.feeLevel;
        info.paramsVersion = t.paramsVersion;
        info.expiresAt = t.expiresAt;
        info.mode = t.mode;
        info.checked = t.checked;
        info.sampleBlock = t.sampleBlock;
    }

    /// @notice The parameters task `taskId` runs under.
    function taskParams(uint256 taskId) external view returns (Params memory) {
        Task storage t = _tasks[taskId];
        if (t.status == TaskStatus.None) revert UnknownTask(taskId);
        return _params[t.paramsVersion];
    }

    /// @notice Available nodes (any fee tier) whose model has `minVramMiB`: of every model
    ///         (`gpuModel` = 0) or of one model id.
    function availableNodes(bytes32 gpuModel_, uint32 minVramMiB) external view returns (uint256) {
        if (gpuModel_ == bytes32(0)) return _imageCandidates(minVramMiB, MAX_FEE_TIER);
        GpuModel memory model = _gpuModels[gpuModel_];
        if (!model.registered || _modelVram[model.index] < minVramMiB) return 0;
        return _pools[uint256(model.index) + 1].countTo(MAX_FEE_TIER);
    }

    /// @notice Whether a call sent now would run a draw (a task waits and this block has not drawn).
    function drawDue() external view returns (bool) {
        return queuedTasks != 0 && block.number > lastTouchBlock;
    }

    /// @notice Tasks in queue `queueKey`, cancelled and expired ones not yet skipped included.
    function queueLength(bytes32 queueKey) external view returns (uint256) {
        Queue storage q = _queues[queueKey];
        return q.tail - q.head;
    }

    /// @notice The id a GPU model name normalises to (reverts on an invalid name).
    function gpuModelId(string calldata gpuModelName) external pure returns (bytes32 id) {
        (id,) = GpuModels.normalise(gpuModelName);
    }

    /// @notice The commitment a node must submit for an image result.
    function imageCommitment(uint256 taskId, address node, uint64[] calldata pHashes, bytes32 salt)
        external
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(taskId, node, pHashes, salt));
    }

    /// @notice The commitment a node must submit for a text digest (or `INVALID_ARGS`).
    function textCommitment(uint256 taskId, address node, bytes32 digest, bytes32 salt)
        external
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(taskId, node, digest, salt));
    }

    function _gpuModelInfo(bytes32 id) internal view returns (GpuModelInfo memory info) {
        GpuModel memory model = _gpuModels[id];
        info.id = id;
        info.name = _modelNames[id];
        info.vramMiB = _modelVram[model.index];
        info.active = model.active;
        info.availableNodes = uint32(_pools[uint256(model.index) + 1].countTo(MAX_FEE_TIER));
    }
}
