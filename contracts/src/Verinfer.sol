// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";

import {IVerinfer} from "./interfaces/IVerinfer.sol";
import {Hamming} from "./libraries/Hamming.sol";
import {GpuModels} from "./libraries/GpuModels.sol";
import {TieredPool} from "./libraries/TieredPool.sol";

/// @title Verinfer
/// @notice Validation of decentralized AI inference. GPU nodes stake an ERC20 and declare their GPU
///         model; each task is computed by three randomly selected nodes that commit, then reveal,
///         their results. Image results (one 64-bit pHash per image) agree when every per-image
///         Hamming distance is within `threshold`; text results (a bytes32 digest) must be equal and
///         come from three nodes of one declared GPU model. Nodes agreeing with a majority share the
///         fee; a node that disagrees with an agreeing pair, or misses a deadline, is slashed and kicked.
/// @dev Node selection randomness is `block.prevrandao` mixed with a nonce. Its limits: the block
///      proposer knows it in advance and can withhold a block (bias of one bit per forfeited block),
///      and anyone can predict the selection of a transaction landing in a known block, so a creator
///      could choose to submit or not. Anyone can also advance the nonce (every start attempt draws a
///      fresh seed), so a block builder who orders transactions can choose among a few draws for a
///      victim's task. The creator cannot steer the draw through the task's inputs: the seed contains
///      neither the args, the fee nor the creator. A deployment facing stronger adversaries should
///      swap `_seed` for a VRF or a commit to a future block's randomness.
///
///      Queues: a task starts at creation when three suitable nodes are available; otherwise it
///      waits in a FIFO queue per class (image tasks; text tasks of one GPU model; text tasks of any
///      model). When nodes join or come back, the heads of the queues they can serve are retried
///      before anything else can take those nodes (at most one start per queue per event); anybody
///      may call `dispatch` to retry more. A head that needs more VRAM than is available blocks only
///      its own queue, until nodes that can serve it appear or its creator cancels it.
contract Verinfer is IVerinfer, Ownable2Step {
    using SafeERC20 for IERC20;
    using TieredPool for TieredPool.Pool;

    /// @notice Largest image count of one task (bounds reveal and validation gas).
    uint256 public constant MAX_IMAGES = 16;
    /// @notice Basis points denominator.
    uint16 public constant BPS = 10_000;
    /// @notice Largest Hamming threshold (a 64-bit hash).
    uint8 public constant MAX_THRESHOLD = 64;
    /// @notice Smallest VRAM a node may declare, in MiB.
    uint32 public constant MIN_NODE_VRAM_MIB = 1024;
    /// @notice Largest VRAM requirement a task may state, in MiB (top tier starts at 128 GiB).
    uint32 public constant MAX_TASK_VRAM_MIB = 131_072;
    /// @notice Largest VRAM a node may declare, in MiB (fits the packed node record).
    uint32 public constant MAX_NODE_VRAM_MIB = type(uint24).max;
    /// @notice Result a node commits and reveals to report that the task's args are invalid.
    bytes32 public constant INVALID_ARGS = keccak256("verinfer.invalid-args.v1");
    /// @notice Marks a missing distance in `TaskSettled` (a side has no result).
    uint16 public constant NO_RESULT = type(uint16).max;

    bytes32 internal constant GLOBAL_POOL = bytes32(0);
    bytes32 internal constant IMAGE_QUEUE = bytes32(uint256(1));
    bytes32 internal constant TEXT_ANY_QUEUE = bytes32(uint256(2));
    uint256 internal constant MAX_QUEUE_SKIPS = 8;
    uint256 internal constant TEXT_ANY_ATTEMPTS = 3;
    uint256 internal constant MAX_RESULT_WORDS = MAX_IMAGES / 4;

    /// @notice The token staked by nodes and paid as task fees.
    IERC20 public immutable token;

    struct Node {
        uint96 stake;
        uint32 id;
        uint24 vramMiB;
        uint8 tier;
        NodeState state;
        uint40 taskId;
        uint24 globalIndex;
        uint24 modelIndex;
        bytes32 gpuModel;
    }

    struct Task {
        address creator;
        TaskKind kind;
        TaskStatus status;
        uint8 imageCount;
        uint8 minTier;
        uint8 committedMask;
        uint8 revealedMask;
        uint8 invalidMask;
        uint24 minVramMiB;
        bytes32 argsHash;
        bytes32 gpuModel;
        uint96 fee;
        uint32 node0;
        uint32 node1;
        uint32 node2;
        uint32 commitDeadline;
        uint32 revealDeadline;
    }

    struct Queue {
        uint64 head;
        uint64 tail;
        mapping(uint256 position => uint40 taskId) items;
    }

    /// @dev A node's commitment, then (after reveal) its result packed four pHashes per word.
    ///      One slate per node, reused from task to task: a node is in at most one task at a time.
    struct Slate {
        bytes32[MAX_RESULT_WORDS] words;
    }

    // slot: validation parameters read together at settlement
    uint96 internal _minStake;
    uint96 internal _stakePerThresholdBit;
    uint8 internal _threshold;
    uint16 internal _slashShareBps;
    uint16 internal _protocolFeeBps;
    // slot: timing and treasury
    uint32 internal _commitWindow;
    uint32 internal _revealWindow;
    address public treasury;
    // slot: counters
    uint40 public taskCount;
    uint32 public nodeCount;
    uint64 internal _selectionNonce;
    uint40 public queuedTasks;
    uint96 public treasuryBalance;

    mapping(address node => Node) internal _nodes;
    mapping(uint32 nodeId => address node) public nodeAddress;
    mapping(uint256 taskId => Task) internal _tasks;
    mapping(address node => Slate) internal _slates;
    mapping(bytes32 poolKey => TieredPool.Pool) internal _pools;
    mapping(bytes32 queueKey => Queue) internal _queues;

    /// @param token_ Staking and fee token.
    /// @param initParams Initial parameters; `minStake >= stakePerThresholdBit * threshold` must hold.
    /// @param owner_ Owner (parameter changes, two-step transfer).
    /// @param treasury_ Receiver of protocol fees and slashed stake.
    constructor(IERC20 token_, InitParams memory initParams, address owner_, address treasury_) Ownable(owner_) {
        if (address(token_) == address(0) || treasury_ == address(0)) revert ZeroAddress();
        token = token_;
        _setValidationParams(initParams.threshold, initParams.minStake, initParams.stakePerThresholdBit);
        _setSlashShare(initParams.slashShareBps);
        _setProtocolFee(initParams.protocolFeeBps);
        _setWindows(initParams.commitWindow, initParams.revealWindow);
        treasury = treasury_;
        emit TreasurySet(treasury_);
    }

    // ================================================================ nodes

    /// @notice Registers the caller as a node: stakes `amount` (>= minStake, approved beforehand) and
    ///         declares its GPU model and VRAM. The node becomes Available at once.
    /// @param gpuModelName Declared GPU model; normalised (case, whitespace) into the model id.
    /// @param vramMiB Declared VRAM in MiB (>= MIN_NODE_VRAM_MIB).
    /// @param amount Stake to transfer from the caller.
    function join(string calldata gpuModelName, uint32 vramMiB, uint96 amount) external {
        Node storage node = _nodes[msg.sender];
        NodeState state = node.state;
        if (state == NodeState.Kicked) revert NodeIsKicked(msg.sender);
        if (state != NodeState.None) revert AlreadyRegistered(msg.sender);
        if (amount < _minStake) revert StakeBelowMinimum(amount, _minStake);
        if (vramMiB < MIN_NODE_VRAM_MIB) revert VramTooSmall(vramMiB, MIN_NODE_VRAM_MIB);
        if (vramMiB > MAX_NODE_VRAM_MIB) revert VramTooLarge(vramMiB, MAX_NODE_VRAM_MIB);
        (bytes32 modelId, string memory normal) = GpuModels.normalise(gpuModelName);

        uint32 id = node.id;
        if (id == 0) {
            id = ++nodeCount;
            node.id = id;
            nodeAddress[id] = msg.sender;
        }
        node.stake = amount;
        node.vramMiB = uint24(vramMiB);
        node.tier = uint8(_nodeTier(vramMiB));
        node.gpuModel = modelId;
        node.taskId = 0;
        emit NodeJoined(msg.sender, id, modelId, normal, vramMiB, amount);
        _makeAvailable(node, msg.sender);
        _dispatchFor(modelId);

        token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @notice Adds `amount` to the caller's stake (any time while registered and not kicked).
    function addStake(uint96 amount) external {
        if (amount == 0) revert ZeroAmount();
        Node storage node = _nodes[msg.sender];
        NodeState state = node.state;
        if (state == NodeState.None) revert NotRegistered(msg.sender);
        if (state == NodeState.Kicked) revert NodeIsKicked(msg.sender);
        uint256 newStake = uint256(node.stake) + amount;
        if (newStake > type(uint96).max) revert StakeOverflow(msg.sender);
        node.stake = uint96(newStake);
        emit StakeAdded(msg.sender, amount, uint96(newStake));
        token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @notice Leaves the network. An idle node gets its stake back now; a node in a task is marked
    ///         Leaving and gets its stake (with the task's reward, or less any slash) when the task ends.
    function leave() external {
        Node storage node = _nodes[msg.sender];
        NodeState state = node.state;
        if (state == NodeState.Available) {
            _removeFromPools(node);
            uint96 stake = _exit(node, msg.sender, ExitReason.Left);
            token.safeTransfer(msg.sender, stake);
        } else if (state == NodeState.Busy) {
            node.state = NodeState.Leaving;
            emit NodeLeaving(msg.sender, node.taskId);
        } else {
            revert NotLeavable(msg.sender, state);
        }
    }

    // ================================================================ tasks

    /// @notice Creates a task and escrows `fee` (approved beforehand). Three nodes are selected at
    ///         once if available; otherwise the task waits in its FIFO queue.
    /// @param kind ImageGeneration or TextGeneration.
    /// @param argsHash keccak256 of the task's argument bytes (stored off-chain).
    /// @param imageCount Images to generate (1..MAX_IMAGES) for image tasks; 0 for text tasks.
    /// @param minVramMiB VRAM each node needs, in MiB (<= MAX_TASK_VRAM_MIB).
    /// @param gpuModelName Text tasks only, optional: the GPU model all three nodes must have ("" = any).
    /// @param fee Fee escrowed now, paid to agreeing nodes (less the protocol fee) on validation.
    /// @return taskId The new task's id (ids start at 1).
    function createTask(
        TaskKind kind,
        bytes32 argsHash,
        uint8 imageCount,
        uint32 minVramMiB,
        string calldata gpuModelName,
        uint96 fee
    ) external returns (uint256 taskId) {
        if (argsHash == bytes32(0)) revert ZeroArgsHash();
        bytes32 modelId;
        if (kind == TaskKind.ImageGeneration) {
            if (imageCount == 0 || imageCount > MAX_IMAGES) revert InvalidImageCount(kind, imageCount);
            if (bytes(gpuModelName).length != 0) revert GpuModelNotAllowedForImages();
        } else {
            if (imageCount != 0) revert InvalidImageCount(kind, imageCount);
            if (bytes(gpuModelName).length != 0) (modelId,) = GpuModels.normalise(gpuModelName);
        }
        if (minVramMiB > MAX_TASK_VRAM_MIB) revert VramTooLarge(minVramMiB, MAX_TASK_VRAM_MIB);

        taskId = ++taskCount;
        Task storage task = _tasks[taskId];
        task.creator = msg.sender;
        task.kind = kind;
        task.imageCount = imageCount;
        task.minTier = uint8(_requiredTier(minVramMiB));
        task.minVramMiB = uint24(minVramMiB);
        task.argsHash = argsHash;
        if (modelId != bytes32(0)) task.gpuModel = modelId;
        task.fee = fee;
        emit TaskCreated(taskId, msg.sender, kind, argsHash, imageCount, minVramMiB, modelId, fee);

        // Work-conserving: start now if nodes can serve the task, else wait in its class's FIFO queue.
        if (!_tryStart(taskId, task)) {
            bytes32 queueKey = _queueKey(kind, modelId);
            _enqueue(_queues[queueKey], queueKey, taskId, task);
        }

        if (fee != 0) token.safeTransferFrom(msg.sender, address(this), fee);
    }

    /// @notice Cancels a task still waiting in its queue and refunds its fee in full.
    function cancelTask(uint256 taskId) external {
        Task storage task = _tasks[taskId];
        if (task.status == TaskStatus.None) revert UnknownTask(taskId);
        if (task.creator != msg.sender) revert NotTaskCreator(taskId, msg.sender);
        if (task.status != TaskStatus.Queued) revert TaskNotQueued(taskId, task.status);
        task.status = TaskStatus.Cancelled;
        --queuedTasks;
        emit TaskCancelled(taskId);
        // The cancelled task may have been the head blocking its queue.
        _tryStartHead(_queueKey(task.kind, task.gpuModel));
        uint96 fee = task.fee;
        if (fee != 0) token.safeTransfer(msg.sender, fee);
    }

    /// @notice Commits the caller's result: `keccak256(abi.encode(taskId, node, result, salt))` where
    ///         result is `uint64[]` (image), `bytes32` digest (text) or `INVALID_ARGS` (as bytes32).
    function commit(uint256 taskId, bytes32 commitment) external {
        Task storage task = _tasks[taskId];
        if (task.status != TaskStatus.Committing || block.timestamp > task.commitDeadline) {
            revert NotInCommitPhase(taskId);
        }
        if (commitment == bytes32(0)) revert ZeroCommitment();
        uint256 bit = 1 << _slotOf(task, taskId, msg.sender);
        uint8 committed = task.committedMask;
        if (committed & bit != 0) revert AlreadyCommitted(taskId, msg.sender);
        committed |= uint8(bit);
        task.committedMask = committed;
        _slates[msg.sender].words[0] = commitment;
        emit ResultCommitted(taskId, msg.sender, commitment);
        if (committed == 7) {
            uint32 revealDeadline = uint32(block.timestamp) + _revealWindow;
            task.status = TaskStatus.Revealing;
            task.revealDeadline = revealDeadline;
            emit RevealPhaseOpened(taskId, revealDeadline);
        }
    }

    /// @notice Reveals an image result: one pHash per image, in image order, and the commitment's salt.
    function revealImage(uint256 taskId, uint64[] calldata pHashes, bytes32 salt) external {
        Task storage task = _tasks[taskId];
        if (task.kind != TaskKind.ImageGeneration) revert WrongResultKind(taskId, task.kind);
        if (pHashes.length != task.imageCount) revert WrongImageCount(taskId, task.imageCount, pHashes.length);
        uint256 slot = _checkReveal(task, taskId);
        Slate storage slate = _slates[msg.sender];
        if (slate.words[0] != keccak256(abi.encode(taskId, msg.sender, pHashes, salt))) {
            revert CommitmentMismatch(taskId, msg.sender);
        }
        uint256 words = (pHashes.length + 3) / 4;
        for (uint256 w; w < words; ++w) {
            uint256 packed;
            for (uint256 j; j < 4; ++j) {
                uint256 i = w * 4 + j;
                if (i < pHashes.length) packed |= uint256(pHashes[i]) << (64 * j);
            }
            slate.words[w] = bytes32(packed);
        }
        emit ImageResultRevealed(taskId, msg.sender, pHashes);
        _afterReveal(task, taskId, slot, false);
    }

    /// @notice Reveals a text result digest and the commitment's salt.
    function revealText(uint256 taskId, bytes32 digest, bytes32 salt) external {
        Task storage task = _tasks[taskId];
        if (task.kind != TaskKind.TextGeneration) revert WrongResultKind(taskId, task.kind);
        uint256 slot = _checkReveal(task, taskId);
        Slate storage slate = _slates[msg.sender];
        if (slate.words[0] != keccak256(abi.encode(taskId, msg.sender, digest, salt))) {
            revert CommitmentMismatch(taskId, msg.sender);
        }
        slate.words[0] = digest;
        emit TextResultRevealed(taskId, msg.sender, digest);
        _afterReveal(task, taskId, slot, digest == INVALID_ARGS);
    }

    /// @notice Reveals a committed report that the task's args are invalid (commitment over
    ///         `INVALID_ARGS` as bytes32). If a majority reports so, the task ends Errored and is refunded.
    function reportInvalidArgs(uint256 taskId, bytes32 salt) external {
        Task storage task = _tasks[taskId];
        if (task.status == TaskStatus.None) revert UnknownTask(taskId);
        uint256 slot = _checkReveal(task, taskId);
        if (_slates[msg.sender].words[0] != keccak256(abi.encode(taskId, msg.sender, INVALID_ARGS, salt))) {
            revert CommitmentMismatch(taskId, msg.sender);
        }
        _afterReveal(task, taskId, slot, true);
    }

    /// @notice Settles a task whose deadline passed (or whose committed nodes all revealed after the
    ///         commit deadline). Anybody may call it; missing nodes are slashed.
    function settle(uint256 taskId) external {
        Task storage task = _tasks[taskId];
        TaskStatus status = task.status;
        if (status != TaskStatus.Committing && status != TaskStatus.Revealing) revert NotSettleable(taskId, status);
        bool commitOver = status == TaskStatus.Revealing || block.timestamp > task.commitDeadline;
        bool allRevealed = commitOver && task.revealedMask == task.committedMask;
        if (!allRevealed && block.timestamp <= task.revealDeadline) revert SettleTooEarly(taskId);
        _settle(task, taskId);
    }

    /// @notice Retries starting up to `maxStarts` tasks waiting in the queue `queueKey`
    ///         (see `imageQueueKey`, `textQueueKey`). Anybody may call it.
    /// @return started How many tasks started.
    function dispatch(bytes32 queueKey, uint256 maxStarts) external returns (uint256 started) {
        if (maxStarts == 0 || maxStarts > 16) revert MaxStartsOutOfRange(maxStarts);
        for (; started < maxStarts; ++started) {
            if (!_tryStartHead(queueKey)) break;
        }
    }

    // ================================================================ owner

    /// @notice Sets the Hamming threshold and the stakes that pay for it, in one call so that
    ///         `minStake >= stakePerThresholdBit * threshold` always holds.
    function setValidationParams(uint8 newThreshold, uint96 newMinStake, uint96 newStakePerThresholdBit)
        external
        onlyOwner
    {
        _setValidationParams(newThreshold, newMinStake, newStakePerThresholdBit);
    }

    /// @notice Sets the share of its stake a misbehaving node loses, in basis points (1..10000).
    function setSlashShare(uint16 slashShareBps) external onlyOwner {
        _setSlashShare(slashShareBps);
    }

    /// @notice Sets the commit and reveal windows, in seconds (each 1 s .. 7 days).
    function setWindows(uint32 commitWindow, uint32 revealWindow) external onlyOwner {
        _setWindows(commitWindow, revealWindow);
    }

    /// @notice Sets the protocol's share of a validated task's fee, in basis points (0..10000).
    function setProtocolFee(uint16 protocolFeeBps) external onlyOwner {
        _setProtocolFee(protocolFeeBps);
    }

    /// @notice Sets the address that receives treasury withdrawals.
    function setTreasury(address treasury_) external onlyOwner {
        if (treasury_ == address(0)) revert ZeroAddress();
        treasury = treasury_;
        emit TreasurySet(treasury_);
    }

    /// @notice Sends `amount` of accrued protocol fees and slashes to the treasury address.
    ///         Callable by the owner or the treasury.
    function withdrawTreasury(uint96 amount) external {
        address to = treasury;
        if (msg.sender != to && msg.sender != owner()) revert NotTreasuryOrOwner(msg.sender);
        uint96 balance = treasuryBalance;
        if (amount > balance) revert InsufficientTreasury(amount, balance);
        treasuryBalance = balance - amount;
        emit TreasuryWithdrawn(to, amount);
        token.safeTransfer(to, amount);
    }

    // ================================================================ views

    /// @notice Current parameters.
    function params()
        external
        view
        returns (
            uint8 threshold_,
            uint96 minStake_,
            uint96 stakePerThresholdBit,
            uint16 slashShareBps,
            uint16 protocolFeeBps,
            uint32 commitWindow,
            uint32 revealWindow
        )
    {
        return (
            _threshold, _minStake, _stakePerThresholdBit, _slashShareBps, _protocolFeeBps, _commitWindow, _revealWindow
        );
    }

    /// @notice The Hamming threshold (bits) under which two image pHashes count as the same image.
    function threshold() external view returns (uint8) {
        return _threshold;
    }

    /// @notice Smallest stake a node can join with.
    function minStake() external view returns (uint96) {
        return _minStake;
    }

    /// @notice A node's record (state None for unknown addresses).
    function getNode(address node) external view returns (NodeInfo memory info) {
        Node storage n = _nodes[node];
        info = NodeInfo(n.state, n.id, n.stake, n.gpuModel, n.vramMiB, n.tier, n.taskId);
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
        info.gpuModel = t.gpuModel;
        info.fee = t.fee;
        info.nodes = [nodeAddress[t.node0], nodeAddress[t.node1], nodeAddress[t.node2]];
        info.committedMask = t.committedMask;
        info.revealedMask = t.revealedMask;
        info.invalidMask = t.invalidMask;
        info.commitDeadline = t.commitDeadline;
        info.revealDeadline = t.revealDeadline;
    }

    /// @notice Available nodes able to serve `minVramMiB`, in all models (`gpuModel` = 0) or one model id.
    function availableNodes(bytes32 gpuModel, uint32 minVramMiB) external view returns (uint256) {
        return _pools[gpuModel].countFrom(_requiredTier(minVramMiB));
    }

    /// @notice Tasks in queue `queueKey`, cancelled ones not yet skipped included.
    function queueLength(bytes32 queueKey) external view returns (uint256) {
        Queue storage q = _queues[queueKey];
        return q.tail - q.head;
    }

    /// @notice Queue of image tasks.
    function imageQueueKey() external pure returns (bytes32) {
        return IMAGE_QUEUE;
    }

    /// @notice Queue of text tasks for GPU model id `gpuModel` (0 = text tasks of any model).
    function textQueueKey(bytes32 gpuModel) external pure returns (bytes32) {
        return _queueKey(TaskKind.TextGeneration, gpuModel);
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

    /// @notice Hamming distance of two 64-bit pHashes, as the contract computes it.
    function hammingDistance(uint64 a, uint64 b) external pure returns (uint256) {
        return Hamming.distance64(a, b);
    }

    // ================================================================ internal: reveal and settle

    function _checkReveal(Task storage task, uint256 taskId) internal view returns (uint256 slot) {
        TaskStatus status = task.status;
        bool open = status == TaskStatus.Revealing
            || (status == TaskStatus.Committing && block.timestamp > task.commitDeadline);
        if (!open || block.timestamp > task.revealDeadline) revert NotInRevealPhase(taskId);
        slot = _slotOf(task, taskId, msg.sender);
        uint256 bit = 1 << slot;
        if (task.committedMask & bit == 0) revert NotCommitted(taskId, msg.sender);
        if (task.revealedMask & bit != 0) revert AlreadyRevealed(taskId, msg.sender);
    }

    function _afterReveal(Task storage task, uint256 taskId, uint256 slot, bool invalid) internal {
        uint8 revealed = task.revealedMask | uint8(1 << slot);
        task.revealedMask = revealed;
        if (invalid) {
            task.invalidMask |= uint8(1 << slot);
            emit InvalidArgsReported(taskId, msg.sender);
        }
        uint8 committed = task.committedMask;
        if (revealed == committed && (committed == 7 || block.timestamp > task.commitDeadline)) {
            _settle(task, taskId);
        }
    }

    /// @dev Working state of one settlement (kept in memory: too many values for the stack).
    struct Settlement {
        uint256 taskId;
        TaskStatus outcome;
        uint8 committed;
        uint8 revealed;
        uint8 agreeing;
        uint8 slashMask;
        uint96 reward;
        uint96 toTreasury;
        uint16 slashBps;
        uint96 minStake;
        address[3] addrs;
        uint96[3] payouts;
        bytes32[3] releasedModels;
    }

    function _settle(Task storage task, uint256 taskId) internal {
        Settlement memory s;
        s.taskId = taskId;
        s.committed = task.committedMask;
        s.revealed = task.revealedMask;
        uint8 invalid = task.invalidMask;
        s.addrs = [nodeAddress[task.node0], nodeAddress[task.node1], nodeAddress[task.node2]];

        uint16[] memory distances;
        (distances, s.agreeing) = _compare(task, s.revealed & ~invalid, s.addrs);

        s.slashMask = 7 & ~s.revealed; // missed a deadline
        if (_popcount3(invalid) >= 2) {
            s.outcome = TaskStatus.Errored;
        } else if (s.agreeing != 0) {
            s.outcome = TaskStatus.Validated;
            s.slashMask |= 7 & ~s.agreeing;
        } else {
            s.outcome = TaskStatus.Aborted;
        }
        task.status = s.outcome;

        uint96 fee = task.fee;
        if (s.outcome == TaskStatus.Validated) {
            uint96 protocolCut = uint96((uint256(fee) * _protocolFeeBps) / BPS);
            uint8 payees = _popcount3(s.agreeing);
            s.reward = (fee - protocolCut) / payees;
            s.toTreasury = fee - s.reward * payees;
        }
        emit TaskSettled(taskId, s.outcome, s.agreeing, distances, _threshold, s.reward);

        s.slashBps = _slashShareBps;
        s.minStake = _minStake;
        for (uint256 i; i < 3; ++i) {
            _releaseNode(s, i);
        }
        if (s.toTreasury != 0) {
            treasuryBalance += s.toTreasury;
            emit TreasuryAccrued(taskId, s.toTreasury);
        }

        _dispatchReleased(s.releasedModels);

        // Interactions last: stakes returned to leaving or kicked nodes, refund to the creator.
        for (uint256 i; i < 3; ++i) {
            if (s.payouts[i] != 0) token.safeTransfer(s.addrs[i], s.payouts[i]);
        }
        if (s.outcome != TaskStatus.Validated && fee != 0) token.safeTransfer(task.creator, fee);
    }

    /// @dev Slashes, pays or releases node `i` of a settling task.
    function _releaseNode(Settlement memory s, uint256 i) internal {
        address account = s.addrs[i];
        Node storage node = _nodes[account];
        uint256 bit = 1 << i;
        if (s.slashMask & bit != 0) {
            SlashReason reason = s.committed & bit == 0
                ? SlashReason.MissedCommit
                : (s.revealed & bit == 0 ? SlashReason.MissedReveal : SlashReason.Disagreed);
            uint96 slashed;
            (slashed, s.payouts[i]) = _slashAndKick(node, account, s.taskId, reason, s.slashBps);
            s.toTreasury += slashed;
            return;
        }
        if (s.reward != 0 && s.agreeing & bit != 0) {
            uint256 newStake = uint256(node.stake) + s.reward;
            // Unreachable for sane token supplies; never let it block settlement.
            if (newStake > type(uint96).max) {
                s.toTreasury += s.reward;
            } else {
                node.stake = uint96(newStake);
                emit NodeRewarded(account, s.taskId, s.reward);
            }
        }
        if (node.state == NodeState.Leaving) {
            s.payouts[i] = _exit(node, account, ExitReason.Left);
        } else if (node.stake < s.minStake) {
            s.payouts[i] = _exit(node, account, ExitReason.BelowMinStake);
        } else {
            _makeAvailable(node, account);
            s.releasedModels[i] = node.gpuModel;
        }
    }

    /// @dev After a settlement: retry the queue heads that the released nodes can serve.
    function _dispatchReleased(bytes32[3] memory releasedModels) internal {
        if (queuedTasks != 0) {
            for (uint256 i; i < 3; ++i) {
                bytes32 m = releasedModels[i];
                if (m == bytes32(0) || (i > 0 && m == releasedModels[0]) || (i > 1 && m == releasedModels[1])) {
                    continue;
                }
                _tryStartHead(m);
            }
            _tryStartHead(TEXT_ANY_QUEUE);
            _tryStartHead(IMAGE_QUEUE);
        }
    }

    /// @dev Pairwise comparison of the valid results; returns the distances and who agrees with whom.
    function _compare(Task storage task, uint8 valid, address[3] memory addrs)
        internal
        view
        returns (uint16[] memory distances, uint8 agreeing)
    {
        bool isImage = task.kind == TaskKind.ImageGeneration;
        uint256 perPair = isImage ? task.imageCount : 1;
        uint256 threshold_ = _threshold;
        distances = new uint16[](3 * perPair);
        for (uint256 p; p < 3; ++p) {
            (uint256 a, uint256 b) = p == 0 ? (0, 1) : (p == 1 ? (0, 2) : (1, 2));
            if (valid & (1 << a) == 0 || valid & (1 << b) == 0) {
                for (uint256 k; k < perPair; ++k) {
                    distances[p * perPair + k] = NO_RESULT;
                }
                continue;
            }
            bool agree = isImage
                ? _compareImages(_slates[addrs[a]], _slates[addrs[b]], distances, p * perPair, perPair, threshold_)
                : _compareText(_slates[addrs[a]], _slates[addrs[b]], distances, p);
            if (agree) agreeing |= uint8((1 << a) | (1 << b));
        }
    }

    function _compareImages(
        Slate storage sa,
        Slate storage sb,
        uint16[] memory distances,
        uint256 offset,
        uint256 count,
        uint256 threshold_
    ) internal view returns (bool agree) {
        agree = true;
        uint256 wa;
        uint256 wb;
        for (uint256 k; k < count; ++k) {
            if (k % 4 == 0) {
                wa = uint256(sa.words[k / 4]);
                wb = uint256(sb.words[k / 4]);
            }
            uint256 shift = 64 * (k % 4);
            uint256 d = Hamming.distance64(uint64(wa >> shift), uint64(wb >> shift));
            distances[offset + k] = uint16(d);
            if (d > threshold_) agree = false;
        }
    }

    function _compareText(Slate storage sa, Slate storage sb, uint16[] memory distances, uint256 pair)
        internal
        view
        returns (bool)
    {
        bytes32 da = sa.words[0];
        bytes32 db = sb.words[0];
        distances[pair] = uint16(Hamming.distance256(da, db));
        return da == db;
    }

    function _slashAndKick(Node storage node, address account, uint256 taskId, SlashReason reason, uint16 slashBps)
        internal
        returns (uint96 slashed, uint96 remaining)
    {
        uint96 stake = node.stake;
        slashed = uint96((uint256(stake) * slashBps) / BPS);
        remaining = stake - slashed;
        node.stake = 0;
        node.state = NodeState.Kicked;
        node.taskId = 0;
        emit NodeSlashed(account, taskId, reason, slashed);
        emit NodeKicked(account, taskId, remaining);
    }

    /// @dev Deregisters the node; the caller transfers the returned stake.
    function _exit(Node storage node, address account, ExitReason reason) internal returns (uint96 stake) {
        stake = node.stake;
        node.stake = 0;
        node.state = NodeState.None;
        node.taskId = 0;
        emit NodeExited(account, reason, stake);
    }

    // ================================================================ internal: selection and queues

    function _tryStartHead(bytes32 queueKey) internal returns (bool) {
        Queue storage queue = _queues[queueKey];
        uint64 head = queue.head;
        uint64 tail = queue.tail;
        for (uint256 skips; head != tail && skips < MAX_QUEUE_SKIPS; ++skips) {
            uint256 taskId = queue.items[head];
            Task storage task = _tasks[taskId];
            if (task.status != TaskStatus.Queued) {
                ++head; // cancelled while waiting
                continue;
            }
            if (!_tryStart(taskId, task)) break;
            queue.head = head + 1;
            --queuedTasks;
            return true;
        }
        if (queue.head != head) queue.head = head;
        return false;
    }

    function _enqueue(Queue storage queue, bytes32 queueKey, uint256 taskId, Task storage task) internal {
        uint64 tail = queue.tail;
        queue.items[tail] = uint40(taskId);
        queue.tail = tail + 1;
        task.status = TaskStatus.Queued;
        ++queuedTasks;
        emit TaskQueued(taskId, queueKey);
    }

    /// @dev Selects three distinct available nodes for `task` and opens its commit phase.
    function _tryStart(uint256 taskId, Task storage task) internal returns (bool) {
        uint256 minTier = task.minTier;
        bytes32 poolKey = GLOBAL_POOL;
        uint256 seed = _seed();
        if (task.kind == TaskKind.TextGeneration) {
            poolKey = task.gpuModel;
            if (poolKey == bytes32(0)) {
                // Any model: draw a node and take its model if three of that model can serve.
                TieredPool.Pool storage global = _pools[GLOBAL_POOL];
                if (global.countFrom(minTier) < 3) return false;
                for (uint256 attempt; attempt < TEXT_ANY_ATTEMPTS; ++attempt) {
                    (address probe,,) = global.pick(minTier, uint256(keccak256(abi.encode(seed, attempt, "model"))));
                    bytes32 model = _nodes[probe].gpuModel;
                    if (_pools[model].countFrom(minTier) >= 3) {
                        poolKey = model;
                        break;
                    }
                }
                if (poolKey == bytes32(0)) return false;
            }
        }
        TieredPool.Pool storage pool = _pools[poolKey];
        if (pool.countFrom(minTier) < 3) return false;

        uint32[3] memory ids;
        address[3] memory addrs;
        for (uint256 k; k < 3; ++k) {
            (address account,,) = pool.pick(minTier, uint256(keccak256(abi.encode(seed, k))));
            Node storage node = _nodes[account];
            _removeFromPools(node);
            node.state = NodeState.Busy;
            node.taskId = uint40(taskId);
            ids[k] = node.id;
            addrs[k] = account;
        }
        // Removal makes repeats impossible; the check guards that property against future edits.
        if (ids[0] == ids[1] || ids[0] == ids[2]) revert DuplicateNodeSelected(ids[0]);
        if (ids[1] == ids[2]) revert DuplicateNodeSelected(ids[1]);

        uint32 commitDeadline = uint32(block.timestamp) + _commitWindow;
        uint32 revealDeadline = commitDeadline + _revealWindow;
        task.node0 = ids[0];
        task.node1 = ids[1];
        task.node2 = ids[2];
        task.commitDeadline = commitDeadline;
        task.revealDeadline = revealDeadline;
        task.status = TaskStatus.Committing;
        emit TaskStarted(taskId, addrs, commitDeadline, revealDeadline);
        return true;
    }

    function _makeAvailable(Node storage node, address account) internal {
        uint256 tier = node.tier;
        node.globalIndex = uint24(_pools[GLOBAL_POOL].add(tier, account));
        node.modelIndex = uint24(_pools[node.gpuModel].add(tier, account));
        node.state = NodeState.Available;
        node.taskId = 0;
    }

    /// @dev Swap-and-pop in both pools; the node moved into the freed index learns its new index.
    function _removeFromPools(Node storage node) internal {
        uint256 tier = node.tier;
        address moved = _pools[GLOBAL_POOL].remove(tier, node.globalIndex);
        if (moved != address(0)) _nodes[moved].globalIndex = node.globalIndex;
        moved = _pools[node.gpuModel].remove(tier, node.modelIndex);
        if (moved != address(0)) _nodes[moved].modelIndex = node.modelIndex;
    }

    function _dispatchFor(bytes32 gpuModel) internal {
        if (queuedTasks == 0) return;
        _tryStartHead(gpuModel);
        _tryStartHead(TEXT_ANY_QUEUE);
        _tryStartHead(IMAGE_QUEUE);
    }

    function _seed() internal returns (uint256) {
        return uint256(keccak256(abi.encode(block.prevrandao, ++_selectionNonce, address(this))));
    }

    /// @dev Index of `account` among the task's three nodes; reverts when it is not one of them.
    function _slotOf(Task storage task, uint256 taskId, address account) internal view returns (uint256) {
        uint32 id = _nodes[account].id;
        if (id != 0) {
            if (id == task.node0) return 0;
            if (id == task.node1) return 1;
            if (id == task.node2) return 2;
        }
        revert NotSelected(taskId, account);
    }

    // ================================================================ internal: parameters and math

    function _setValidationParams(uint8 threshold_, uint96 minStake_, uint96 stakePerThresholdBit_) internal {
        if (threshold_ > MAX_THRESHOLD) revert ThresholdTooHigh(threshold_, MAX_THRESHOLD);
        if (minStake_ == 0) revert ZeroAmount();
        if (uint256(minStake_) < uint256(stakePerThresholdBit_) * threshold_) {
            revert StakeTooLowForThreshold(minStake_, stakePerThresholdBit_, threshold_);
        }
        _threshold = threshold_;
        _minStake = minStake_;
        _stakePerThresholdBit = stakePerThresholdBit_;
        emit ValidationParamsSet(threshold_, minStake_, stakePerThresholdBit_);
    }

    function _setSlashShare(uint16 bps) internal {
        if (bps == 0 || bps > BPS) revert InvalidBps(bps);
        _slashShareBps = bps;
        emit SlashShareSet(bps);
    }

    function _setProtocolFee(uint16 bps) internal {
        if (bps > BPS) revert InvalidBps(bps);
        _protocolFeeBps = bps;
        emit ProtocolFeeSet(bps);
    }

    function _setWindows(uint32 commitWindow, uint32 revealWindow) internal {
        if (commitWindow == 0 || revealWindow == 0 || commitWindow > 7 days || revealWindow > 7 days) {
            revert InvalidWindow(commitWindow, revealWindow);
        }
        _commitWindow = commitWindow;
        _revealWindow = revealWindow;
        emit WindowsSet(commitWindow, revealWindow);
    }

    function _queueKey(TaskKind kind, bytes32 gpuModel) internal pure returns (bytes32) {
        if (kind == TaskKind.ImageGeneration) return IMAGE_QUEUE;
        return gpuModel == bytes32(0) ? TEXT_ANY_QUEUE : gpuModel;
    }

    /// @dev Tier t holds VRAM in [2^t GiB, 2^(t+1) GiB); the top tier is open ended.
    function _nodeTier(uint256 vramMiB) internal pure returns (uint256 tier) {
        uint256 gib = vramMiB >> 10;
        while (gib > 1 && tier < TieredPool.TIERS - 1) {
            gib >>= 1;
            ++tier;
        }
    }

    /// @dev Smallest tier whose every member has at least `minVramMiB`. Conservative: a node of
    ///      24 GiB (tier 4, from 16 GiB) is not offered a task needing 20 GiB (tier 5).
    function _requiredTier(uint256 minVramMiB) internal pure returns (uint256 tier) {
        while (tier < TieredPool.TIERS - 1 && (uint256(1024) << tier) < minVramMiB) {
            ++tier;
        }
    }

    function _popcount3(uint8 mask) internal pure returns (uint8) {
        return (mask & 1) + ((mask >> 1) & 1) + ((mask >> 2) & 1);
    }
}
