// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IVerinfer
/// @notice Types, events and errors of the verinfer validation contract.
interface IVerinfer {
    enum NodeState {
        None,
        Available,
        Busy,
        Leaving,
        Kicked
    }

    enum TaskKind {
        ImageGeneration,
        TextGeneration
    }

    enum TaskStatus {
        None,
        Queued,
        Committing,
        Revealing,
        Validated,
        Aborted,
        Errored,
        Cancelled,
        Expired,
        /// Sampled task: the first node committed; a later block's hash decides whether it is checked.
        AwaitingSample,
        /// Sampled task chosen for a check: waits (ahead of new tasks) for two checker nodes.
        CheckQueued
    }

    /// @notice How a task's result is validated.
    enum ValidationMode {
        /// Three nodes compute at once; majority of three.
        Full,
        /// One node computes; with probability `samplingBps` (decided after its commitment) two
        /// more nodes check it under the same majority rule.
        Sampled
    }

    /// @notice Why a node lost part of its stake.
    enum SlashReason {
        Disagreed,
        MissedCommit,
        MissedReveal
    }

    /// @notice Why a node's stake was returned.
    enum ExitReason {
        Left,
        BelowMinStake
    }

    /// @notice Why an account's withdrawable balance grew.
    enum CreditReason {
        /// A leaving, kicked or under-staked node's remaining stake.
        StakeReturned,
        /// A task's fee returned to its creator (aborted, errored or expired).
        FeeRefunded,
        /// A share of a slash paid to the nodes that were right, or to the creator.
        SlashReward
    }

    /// @notice Protocol parameters. A task runs under the version in force when it was created;
    ///         a new version takes effect `paramsDelay` seconds after the owner schedules it.
    struct Params {
        /// Hamming distance (bits) up to which two image pHashes count as the same image.
        uint8 threshold;
        /// Smallest text-model pool (available nodes of the task's GPU model and fee tier) a text
        /// task may be drawn from; at least 3.
        uint8 minTextPool;
        /// Share of its stake a misbehaving node loses, in basis points (1..10000).
        uint16 slashShareBps;
        /// Share of every slash paid to the nodes that agreed (or, when none did, to the creator).
        uint16 slashRewardBps;
        /// Protocol's share of a validated task's fee, in basis points.
        uint16 protocolFeeBps;
        /// Seconds the selected nodes have to commit, counted from the start.
        uint32 commitWindow;
        /// Seconds the nodes have to reveal, counted from the last commit (or the commit deadline).
        uint32 revealWindow;
        /// Seconds a task may wait for nodes before it expires and its fee is refunded.
        uint32 queueTimeout;
        /// Smallest stake a node may hold (join, and stay selectable).
        uint96 minStake;
        /// Stake that each bit of threshold costs: `minStake >= stakePerThresholdBit * threshold`.
        uint96 stakePerThresholdBit;
        /// Smallest fee of any task.
        uint96 minTaskFee;
        /// Smallest fee added per image of an image task.
        uint96 minImageFee;
        /// Probability that a sampled task is checked by two more nodes, in basis points (1..10000).
        uint16 samplingBps;
    }

    /// @notice A registered GPU model: the only models nodes may declare and text tasks may name.
    struct GpuModelInfo {
        bytes32 id;
        string name;
        uint32 vramMiB;
        bool active;
        /// Available nodes of this model, all fee tiers.
        uint32 availableNodes;
    }

    /// @notice A node as returned by `getNode`.
    struct NodeInfo {
        NodeState state;
        uint32 id;
        uint96 stake;
        bytes32 gpuModel;
        uint32 vramMiB;
        uint8 feeTier;
        uint40 taskId;
    }

    /// @notice A task as returned by `getTask`.
    struct TaskInfo {
        address creator;
        TaskKind kind;
        TaskStatus status;
        uint8 imageCount;
        uint32 minVramMiB;
        bytes32 argsHash;
        bytes32 gpuModel;
        uint96 fee;
        address[3] nodes;
        uint8 committedMask;
        uint8 revealedMask;
        uint8 invalidMask;
        uint32 commitDeadline;
        uint32 revealDeadline;
        /// Highest node fee tier the fee pays for (see `join`).
        uint8 feeLevel;
        /// The parameter version the task runs under (see `paramsAt`).
        uint24 paramsVersion;
        /// When a queued task expires (a check queued for checkers: when the check expires).
        uint40 expiresAt;
        ValidationMode mode;
        /// Sampled tasks: whether the sample draw chose a check (meaningful once decided).
        bool checked;
        /// Sampled tasks: the block whose hash decides the check (0 until the first node commits).
        uint48 sampleBlock;
    }

    // ---------------------------------------------------------------- events: nodes

    event NodeJoined(
        address indexed node,
        uint32 indexed nodeId,
        bytes32 indexed gpuModel,
        string gpuModelName,
        uint32 vramMiB,
        uint96 stake,
        uint8 feeTier
    );
    event FeeTierSet(address indexed node, uint8 feeTier);
    event StakeAdded(address indexed node, uint96 amount, uint96 newStake);
    event NodeLeaving(address indexed node, uint256 indexed taskId);
    event NodeExited(address indexed node, ExitReason reason, uint96 stakeReturned);
    event NodeSlashed(address indexed node, uint256 indexed taskId, SlashReason reason, uint96 amount);
    event NodeKicked(address indexed node, uint256 indexed taskId, uint96 stakeReturned);
    event NodeRewarded(address indexed node, uint256 indexed taskId, uint96 amount);

    // ---------------------------------------------------------------- events: balances

    /// @notice `amount` became withdrawable by `account` (see `withdraw`).
    event BalanceCredited(address indexed account, uint256 indexed taskId, CreditReason reason, uint256 amount);
    event Withdrawn(address indexed account, uint256 amount);

    // ---------------------------------------------------------------- events: tasks

    event TaskCreated(
        uint256 indexed taskId,
        address indexed creator,
        TaskKind kind,
        bytes32 argsHash,
        uint8 imageCount,
        uint32 minVramMiB,
        bytes32 gpuModel,
        uint96 fee,
        ValidationMode mode
    );
    /// @notice The task waits in queue `queueKey` until a draw starts it (the draw runs in a later block).
    event TaskQueued(uint256 indexed taskId, bytes32 indexed queueKey);
    /// @param seedBlock The block whose hash seeded the draw.
    event TaskStarted(
        uint256 indexed taskId, address[3] nodes, uint32 commitDeadline, uint32 revealDeadline, uint256 seedBlock
    );
    /// @notice A sampled task's first node committed: the hash of block `sampleBlock` decides
    ///         whether it is checked; the first node reveals (unchecked) or anybody calls
    ///         `resolveSample` (checked) by `revealDeadline`.
    event SampleCommitted(uint256 indexed taskId, uint256 sampleBlock, uint32 revealDeadline);
    /// @notice The sample draw of a sampled task: checked (two checkers will be drawn) or accepted
    ///         on the first node's result alone.
    event SampleDecided(uint256 indexed taskId, bool checked, uint256 sampleBlock);
    /// @notice A checked task's two checkers were drawn; they commit by `commitDeadline`, then all
    ///         three reveal.
    /// @param seedBlock The block whose hash seeded the draw.
    event CheckStarted(
        uint256 indexed taskId, address[2] checkers, uint32 commitDeadline, uint32 revealDeadline, uint256 seedBlock
    );
    event TaskCancelled(uint256 indexed taskId);
    event TaskExpired(uint256 indexed taskId);
    event ResultCommitted(uint256 indexed taskId, address indexed node, bytes32 commitment);
    event RevealPhaseOpened(uint256 indexed taskId, uint32 revealDeadline);
    event ImageResultRevealed(uint256 indexed taskId, address indexed node, uint64[] pHashes);
    event TextResultRevealed(uint256 indexed taskId, address indexed node, bytes32 digest);
    event InvalidArgsReported(uint256 indexed taskId, address indexed node);
    /// @notice Emitted once per task when it is settled.
    /// @param outcome Validated, Aborted (no two results agree) or Errored (a majority reported invalid args).
    /// @param agreeingMask Bit i set when node i agreed with at least one other node (and was paid).
    /// @param distances Pairwise distances, pairs (0,1), (0,2), (1,2) in that order; for images one
    ///        entry per image per pair (pair-major), for text one entry per pair (0 = equal digests,
    ///        otherwise the Hamming distance of the digests). `NO_RESULT` where a side has no result.
    ///        Empty for a sampled task accepted unchecked (one result, nothing to compare).
    /// @param threshold The Hamming threshold the image distances were judged against (the task's).
    /// @param rewardPerNode Fee share paid into each agreeing node's stake.
    event TaskSettled(
        uint256 indexed taskId,
        TaskStatus outcome,
        uint8 agreeingMask,
        uint16[] distances,
        uint8 threshold,
        uint96 rewardPerNode
    );

    // ---------------------------------------------------------------- events: owner

    /// @notice Parameter version `version` takes effect at `effectiveAt` (unless cancelled first).
    event ParamsScheduled(uint24 indexed version, Params params, uint40 effectiveAt);
    event ParamsScheduleCancelled(uint24 indexed version);
    /// @notice Parameter version `version` is in force for tasks created from now on.
    event ParamsActivated(uint24 indexed version);
    event GpuModelAdded(bytes32 indexed id, string name, uint32 vramMiB);
    event GpuModelActiveSet(bytes32 indexed id, bool active);
    event TreasurySet(address indexed treasury);
    event TreasuryAccrued(uint256 indexed taskId, uint256 amount);
    event TreasuryWithdrawn(address indexed to, uint256 amount);

    // ---------------------------------------------------------------- errors

    error ZeroAddress();
    error ZeroAmount();
    error ThresholdTooHigh(uint8 threshold, uint8 max);
    error StakeTooLowForThreshold(uint96 minStake, uint96 stakePerThresholdBit, uint8 threshold);
    error InvalidBps(uint16 bps);
    error InvalidWindow(uint32 commitWindow, uint32 revealWindow);
    error InvalidQueueTimeout(uint32 queueTimeout);
    error InvalidMinTextPool(uint8 minTextPool);
    error InvalidSamplingBps(uint16 samplingBps);
    error FeeTooHighForSampling(uint96 fee, uint96 maxFee);
    error NotAwaitingSample(uint256 taskId, TaskStatus status);
    error SampleNotDecidable(uint256 taskId, uint256 decidableAtBlock);
    error SampleChecked(uint256 taskId);
    error SampleDeadlinePassed(uint256 taskId, uint32 revealDeadline);
    error ParamsDelayTooLong(uint32 paramsDelay);
    error NoScheduledParams();
    error OwnershipCannotBeRenounced();
    error StakeBelowMinimum(uint96 stake, uint96 minStake);
    error VramTooSmall(uint32 vramMiB, uint32 minVramMiB);
    error VramTooLarge(uint32 vramMiB, uint32 maxVramMiB);
    error GpuModelNotRegistered(bytes32 id);
    error GpuModelAlreadyRegistered(bytes32 id);
    error GpuModelInactive(bytes32 id);
    error TooManyGpuModels(uint256 max);
    error GpuModelRequiredForText();
    error GpuModelLacksVram(bytes32 id, uint32 vramMiB, uint32 minVramMiB);
    error NoGpuModelFits(uint32 minVramMiB);
    error InvalidFeeTier(uint8 feeTier, uint8 maxFeeTier);
    error FeeBelowMinimum(uint96 fee, uint96 minimum);
    error TokenTransferShortfall(uint256 expected, uint256 received);
    error AlreadyRegistered(address node);
    error NodeIsKicked(address node);
    error NotRegistered(address node);
    error NotLeavable(address node, NodeState state);
    error StakeOverflow(address node);
    error InvalidImageCount(TaskKind kind, uint8 imageCount);
    error GpuModelNotAllowedForImages();
    error ZeroArgsHash();
    error UnknownTask(uint256 taskId);
    error NotTaskCreator(uint256 taskId, address caller);
    error TaskNotQueued(uint256 taskId, TaskStatus status);
    error TaskNotExpired(uint256 taskId, uint40 expiresAt);
    error NotInCommitPhase(uint256 taskId);
    error NotInRevealPhase(uint256 taskId);
    error NotSelected(uint256 taskId, address caller);
    error ZeroCommitment();
    error AlreadyCommitted(uint256 taskId, address node);
    error NotCommitted(uint256 taskId, address node);
    error AlreadyRevealed(uint256 taskId, address node);
    error CommitmentMismatch(uint256 taskId, address node);
    error WrongResultKind(uint256 taskId, TaskKind kind);
    error WrongImageCount(uint256 taskId, uint256 expected, uint256 got);
    error SettleTooEarly(uint256 taskId);
    error NotSettleable(uint256 taskId, TaskStatus status);
    error DuplicateNodeSelected(uint32 nodeId);
    error NotTreasuryOrOwner(address caller);
    error InsufficientTreasury(uint256 requested, uint256 available);
    error NothingToWithdraw(address account);
}
