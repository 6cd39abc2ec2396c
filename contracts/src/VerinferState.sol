// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";

import {IVerinfer} from "./interfaces/IVerinfer.sol";
import {TieredPool} from "./libraries/TieredPool.sol";

/// @title VerinferState
/// @notice The storage, constants and shared read helpers of `Verinfer` and of its views extension
///         `VerinferViews`. Both inherit it, so that the extension, reached by `delegatecall` from
///         Verinfer's fallback, reads Verinfer's storage with the same layout.
abstract contract VerinferState is IVerinfer, Ownable2Step {
    using TieredPool for TieredPool.Pool;

    /// @notice Largest image count of one task (bounds reveal and validation gas).
    uint256 public constant MAX_IMAGES = 16;
    /// @notice Basis points denominator.
    uint16 public constant BPS = 10_000;
    /// @notice Largest Hamming threshold (a 64-bit hash).
    uint8 public constant MAX_THRESHOLD = 64;
    /// @notice Smallest VRAM a registered GPU model may have, in MiB.
    uint32 public constant MIN_GPU_VRAM_MIB = 1024;
    /// @notice Largest VRAM a registered GPU model may have, in MiB (16 TiB).
    uint32 public constant MAX_GPU_VRAM_MIB = 1 << 24;
    /// @notice Most GPU models the registry holds (bounds the image draw's loop).
    uint256 public constant MAX_GPU_MODELS = 32;
    /// @notice Highest node fee tier: a node of tier t serves tasks paying at least 2^t times the minimum.
    uint8 public constant MAX_FEE_TIER = 7;
    /// @notice Smallest `minTextPool`.
    uint8 public constant MIN_TEXT_POOL = 3;
    /// @notice Longest delay the constructor accepts before a scheduled parameter version applies.
    uint32 public constant MAX_PARAMS_DELAY = 30 days;
    /// @notice Steps one draw takes at most — a start attempt, or a cancelled or expired task
    ///         skipped — which bounds the gas the drawing call pays.
    uint256 public constant MAX_DRAW_ATTEMPTS = 8;
    /// @notice Result a node commits and reveals to report that the task's args are invalid.
    bytes32 public constant INVALID_ARGS = keccak256("verinfer.invalid-args.v1");
    /// @notice Marks a missing distance in `TaskSettled` (a side has no result).
    uint16 public constant NO_RESULT = type(uint16).max;

    uint256 internal constant GLOBAL_POOL = 0;
    uint256 internal constant MAX_EVICTIONS = 3;
    uint256 internal constant BLOCKHASH_WINDOW = 256;
    uint256 internal constant MAX_RESULT_WORDS = MAX_IMAGES / 4;
    uint256 internal constant CHECK_RING = 0;
    uint256 internal constant TASK_RING = 1;

    struct Node {
        uint96 stake;
        uint32 id;
        uint8 model; // registry index
        uint8 feeTier;
        NodeState state;
        uint40 taskId;
        uint24 globalIndex;
        uint24 modelIndex;
    }

    struct Task {
        address creator;
        TaskKind kind;
        TaskStatus status;
        uint8 imageCount;
        uint8 committedMask;
        uint8 revealedMask;
        uint8 invalidMask;
        uint8 feeLevel;
        uint24 paramsVersion;
        ValidationMode mode; // read with the status by every step: same slot
        bool checked; // sampled: the sample draw chose a check
        bytes32 argsHash;
        uint96 fee;
        uint32 node0;
        uint32 node1;
        uint32 node2;
        uint32 commitDeadline;
        uint32 revealDeadline;
        uint32 minVramMiB;
        uint40 expiresAt;
        uint8 textModel; // registry index + 1; 0 for image tasks
        uint48 sampleBlock; // sampled: the block whose hash decides the check
    }

    struct Queue {
        uint64 head;
        uint64 tail;
        bool linked;
        bytes32 next; // the next non-empty queue in the draw ring
        mapping(uint256 position => uint40 taskId) items;
    }

    struct GpuModel {
        bool registered;
        bool active;
        uint8 index;
    }

    /// @dev A node's commitment, then (after reveal) its result packed four pHashes per word.
    ///      One slate per node, reused from task to task: a node is in at most one task at a time.
    struct Slate {
        bytes32[MAX_RESULT_WORDS] words;
    }

    uint40 public taskCount;
    uint32 public nodeCount;
    uint40 public queuedTasks;
    /// @notice Last block in which a call changed the contract's state; its hash seeds the next draw.
    uint48 public lastTouchBlock;
    uint24 internal _paramsVersion;
    uint24 internal _scheduledVersion;
    uint40 internal _scheduledAt;
    // slot
    address public treasury;
    /// @notice Seconds between scheduling a parameter version and its taking effect (set once).
    uint32 public paramsDelay;
    uint8 internal _gpuModelCount;
    uint32 internal _minModelVram;

    uint256 public treasuryBalance;
    /// @dev Draw rings: `CHECK_RING` (checks of sampled tasks, served first) and `TASK_RING`.
    bytes32[2] internal _drawCursors;
    bytes32[MAX_GPU_MODELS] internal _modelIds;
    uint32[MAX_GPU_MODELS] internal _modelVram;

    mapping(bytes32 modelId => GpuModel) internal _gpuModels;
    mapping(bytes32 modelId => string) internal _modelNames;
    mapping(uint24 version => Params) internal _params;
    mapping(address node => Node) internal _nodes;
    mapping(uint32 nodeId => address node) public nodeAddress;
    mapping(uint256 taskId => Task) internal _tasks;
    mapping(address node => Slate) internal _slates;
    /// @dev Key 0: every available node; key i + 1: the available nodes of registry model i.
    mapping(uint256 poolKey => TieredPool.Pool) internal _pools;
    mapping(bytes32 queueKey => Queue) internal _queues;
    /// @notice Tokens `account` may withdraw (returned stakes, refunds, slash rewards).
    mapping(address account => uint256) public claimable;

    // ================================================================ shared read helpers

    function _imageCandidates(uint32 minVramMiB, uint256 level) internal view returns (uint256 total) {
        if (minVramMiB <= _minModelVram) return _pools[GLOBAL_POOL].countTo(level);
        uint256 n = _gpuModelCount;
        for (uint256 i; i < n; ++i) {
            if (_modelVram[i] >= minVramMiB) total += _pools[i + 1].countTo(level);
        }
    }

    /// @dev Smallest fee of a task: `minTaskFee` (+ `minImageFee` per image) for full validation;
    ///      for sampled validation that minimum times `(1 + 2p) / 3` (rounded up), so that each
    ///      expected GPU run (one, plus two with probability p) is paid as in a full task.
    function _minimumFee(Params storage p, TaskKind kind, ValidationMode mode, uint8 imageCount)
        internal
        view
        returns (uint256 minimum)
    {
        minimum = p.minTaskFee;
        if (kind == TaskKind.ImageGeneration) minimum += uint256(p.minImageFee) * imageCount;
        if (mode == ValidationMode.Sampled) {
            uint256 denominator = 3 * uint256(BPS);
            minimum = (minimum * (uint256(BPS) + 2 * uint256(p.samplingBps)) + denominator - 1) / denominator;
        }
    }

    /// @dev Whether a first node staking `stake` may take a sampled task paying `fee`: cheating
    ///      gains at most the fee of each unchecked task and loses `s * stake` when checked, so
    ///      `p * s * stake >= (1 - p) * fee` (p, s in basis points) makes cheating's expected value
    ///      at most zero.
    function _cheatingUnprofitable(uint256 stake, uint256 fee, uint16 samplingBps, uint16 slashShareBps)
        internal
        pure
        returns (bool)
    {
        return uint256(samplingBps) * slashShareBps * stake >= (uint256(BPS) - samplingBps) * BPS * fee;
    }

    /// @dev Largest fee a sampled task may pay under `p`, so that every node staking `minStake`
    ///      passes `_cheatingUnprofitable`.
    function _maxSampledFee(Params storage p) internal view returns (uint256) {
        uint256 unchecked_ = uint256(BPS) - p.samplingBps;
        if (unchecked_ == 0) return type(uint96).max;
        uint256 maxFee = (uint256(p.samplingBps) * p.slashShareBps * p.minStake) / (unchecked_ * BPS);
        return maxFee > type(uint96).max ? type(uint96).max : maxFee;
    }

    /// @dev The sample draw of a sampled task: checked with probability `samplingBps`, decided by
    ///      the hash of `sampleBlock` (the block after the first node's commitment), so nobody
    ///      knows it when the commitment is made. A hash no longer readable (256 blocks) means checked.
    function _sampleChecked(Task storage task, uint256 taskId) internal view returns (bool) {
        uint256 sampleBlock = task.sampleBlock;
        if (block.number <= sampleBlock) revert SampleNotDecidable(taskId, sampleBlock + 1);
        bytes32 hash = blockhash(sampleBlock);
        if (hash == bytes32(0)) return true;
        return uint256(keccak256(abi.encode(hash, taskId))) % BPS < _params[task.paramsVersion].samplingBps;
    }

    // ================================================================ shared parameter helpers

    function _activateScheduledParams() internal {
        uint24 version = _scheduledVersion;
        _paramsVersion = version;
        _scheduledVersion = 0;
        _scheduledAt = 0;
        emit ParamsActivated(version);
    }

    function _validateParams(Params memory p) internal pure {
        if (p.threshold > MAX_THRESHOLD) revert ThresholdTooHigh(p.threshold, MAX_THRESHOLD);
        if (p.minStake == 0) revert ZeroAmount();
        if (uint256(p.minStake) < uint256(p.stakePerThresholdBit) * p.threshold) {
            revert StakeTooLowForThreshold(p.minStake, p.stakePerThresholdBit, p.threshold);
        }
        if (p.slashShareBps == 0 || p.slashShareBps > BPS) revert InvalidBps(p.slashShareBps);
        if (p.slashRewardBps > BPS) revert InvalidBps(p.slashRewardBps);
        if (p.protocolFeeBps > BPS) revert InvalidBps(p.protocolFeeBps);
        if (p.commitWindow == 0 || p.revealWindow == 0 || p.commitWindow > 7 days || p.revealWindow > 7 days) {
            revert InvalidWindow(p.commitWindow, p.revealWindow);
        }
        if (p.queueTimeout == 0 || p.queueTimeout > 365 days) revert InvalidQueueTimeout(p.queueTimeout);
        if (p.minTextPool < MIN_TEXT_POOL) revert InvalidMinTextPool(p.minTextPool);
        if (p.samplingBps == 0 || p.samplingBps > BPS) revert InvalidSamplingBps(p.samplingBps);
    }
}
