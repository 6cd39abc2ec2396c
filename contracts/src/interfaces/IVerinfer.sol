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
        Cancelled
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

    /// @notice Deployment-time parameters (all owner-settable later).
    struct InitParams {
        uint8 threshold;
        uint96 minStake;
        uint96 stakePerThresholdBit;
        uint16 slashShareBps;
        uint16 protocolFeeBps;
        uint32 commitWindow;
        uint32 revealWindow;
    }

    /// @notice A node as returned by `getNode`.
    struct NodeInfo {
        NodeState state;
        uint32 id;
        uint96 stake;
        bytes32 gpuModel;
        uint32 vramMiB;
        uint8 tier;
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
    }

    // ---------------------------------------------------------------- events: nodes

    event NodeJoined(
        address indexed node,
        uint32 indexed nodeId,
        bytes32 indexed gpuModel,
        string gpuModelName,
        uint32 vramMiB,
        uint96 stake
    );
    event StakeAdded(address indexed node, uint96 amount, uint96 newStake);
    event NodeLeaving(address indexed node, uint256 indexed taskId);
    event NodeExited(address indexed node, ExitReason reason, uint96 stakeReturned);
    event NodeSlashed(address indexed node, uint256 indexed taskId, SlashReason reason, uint96 amount);
    event NodeKicked(address indexed node, uint256 indexed taskId, uint96 stakeReturned);
    event NodeRewarded(address indexed node, uint256 indexed taskId, uint96 amount);

    // ---------------------------------------------------------------- events: tasks

    event TaskCreated(
        uint256 indexed taskId,
        address indexed creator,
        TaskKind kind,
        bytes32 argsHash,
        uint8 imageCount,
        uint32 minVramMiB,
        bytes32 gpuModel,
        uint96 fee
    );
    event TaskQueued(uint256 indexed taskId, bytes32 indexed queueKey);
    event TaskStarted(uint256 indexed taskId, address[3] nodes, uint32 commitDeadline, uint32 revealDeadline);
    event TaskCancelled(uint256 indexed taskId);
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
    /// @param threshold The Hamming threshold the image distances were judged against.
    /// @param rewardPerNode Fee share paid into each agreeing node's stake.
    event TaskSettled(
        uint256 indexed taskId,
        TaskStatus outcome,
        uint8 agreeingMask,
        uint16[] distances,
        uint8 threshold,
        uint96 rewardPerNode
    );

    // ---------------------------------------------------------------- events: parameters

    event ValidationParamsSet(uint8 threshold, uint96 minStake, uint96 stakePerThresholdBit);
    event SlashShareSet(uint16 slashShareBps);
    event WindowsSet(uint32 commitWindow, uint32 revealWindow);
    event ProtocolFeeSet(uint16 protocolFeeBps);
    event TreasurySet(address treasury);
    event TreasuryAccrued(uint256 indexed taskId, uint96 amount);
    event TreasuryWithdrawn(address indexed to, uint96 amount);

    // ---------------------------------------------------------------- errors

    error ZeroAddress();
    error ZeroAmount();
    error ThresholdTooHigh(uint8 threshold, uint8 max);
    error StakeTooLowForThreshold(uint96 minStake, uint96 stakePerThresholdBit, uint8 threshold);
    error InvalidBps(uint16 bps);
    error InvalidWindow(uint32 commitWindow, uint32 revealWindow);
    error StakeBelowMinimum(uint96 stake, uint96 minStake);
    error VramTooSmall(uint32 vramMiB, uint32 minVramMiB);
    error VramTooLarge(uint32 vramMiB, uint32 maxVramMiB);
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
    error InsufficientTreasury(uint96 requested, uint96 available);
    error MaxStartsOutOfRange(uint256 maxStarts);
}
