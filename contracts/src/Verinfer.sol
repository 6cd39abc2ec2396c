// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

import {VerinferState} from "./VerinferState.sol";
import {VerinferExtension} from "./VerinferExtension.sol";
import {Hamming} from "./libraries/Hamming.sol";
import {GpuModels} from "./libraries/GpuModels.sol";
import {TieredPool} from "./libraries/TieredPool.sol";

/// @title Verinfer
/// @notice Validation of decentralized AI inference. GPU nodes stake an ERC20 and declare a GPU model
///         from the owner's registry (which fixes their VRAM); each task is computed by three nodes
///         drawn at random, which commit, then reveal, their results. Image results (one 64-bit pHash
///         per image) agree when every per-image Hamming distance is within the task's threshold;
///         text results (a bytes32 digest) must be equal and come from three nodes of the GPU model
///         the task names. Nodes agreeing with a majority share the fee; a node that disagrees with
///         an agreeing pair, or misses a deadline, is slashed and kicked, and part of its slash goes
///         to the nodes that were right (or to the creator when none was).
/// @dev Selection. `createTask` never selects: every task waits in a queue and is started by a
///      *draw*, which runs at the start of the first state-changing call of a later block (any
///      call, or `drawTasks`, which anybody may send). Every draw of that call is seeded by the hash
///      of the last block in which the contract's state changed, and chooses among the nodes
///      available at the end of that block. So when a task, a node joining or leaving, or anything
///      else that can change a draw is submitted, the randomness of the draw does not exist yet;
///      the first call of the next block draws before it can change any state, so whoever triggers
///      the draw can neither choose its seed by choosing when (the seed is fixed once that block is
///      sealed) nor change the candidates after seeing the seed; a call that reverts after the draw
///      changes nothing, and the next call draws the same nodes. Nothing but the block hash and the
///      task id enters the seed. If no call arrives within 256 blocks the hash is no longer
///      readable: that call draws nothing and its own block becomes the seed block.
///      What a block builder can still bias: the builder of the seed block chooses its contents and
///      can try many hashes (extra data, transaction order) before publishing, so it can choose
///      among many draws for the tasks that wait when its block is sealed, and can sell that choice.
///      It cannot do so without building that very block. Deployments that must withstand their
///      block builders (or a centralised sequencer) should replace `_drawSeed` with a VRF.
///
///      Pools. Image tasks draw uniformly among all available nodes whose model has the VRAM the
///      task asks for and whose fee tier the fee pays for; text tasks draw uniformly among the
///      available nodes of the named model (and fee tier), and only while at least `minTextPool`
///      of them are available. An operator holding a share s of the eligible nodes therefore holds
///      two or more of a task's three slots with probability 3s^2 - 2s^3 (drawing without
///      replacement gives slightly less), for every kind of task.
///
///      Queues. One FIFO queue per class of identical eligibility (image: VRAM class and fee level;
///      text: model and fee level), so a task that cannot be served never holds back one that can.
///      Each draw takes at most `MAX_DRAW_ATTEMPTS` steps (start attempts and skipped dead
///      entries), round robin over the non-empty queues. A task that waits longer than its `queueTimeout` expires and its fee is refunded.
///
///      Payments. Nothing in settlement transfers tokens: returned stakes, refunds and slash shares
///      are credited and withdrawn by their owners (`withdraw`). Tokens are pulled only for the
///      exact amount: a token that delivers less (fee on transfer) is refused.
///
///      Parameters. A task runs under the parameter version in force when it was created; the
///      owner schedules a new version, which takes effect `paramsDelay` seconds later.
///
///      Sampled validation (`createSampledTask`). A draw starts the task on one node. Its
///      commitment fixes `sampleBlock` = its block + 1; once that block is sealed, the task is
///      checked with probability p (`samplingBps` of the task's parameters), decided by
///      keccak256(blockhash(sampleBlock), taskId). Nobody knows the outcome when the commitment is
///      made, and the outcome cannot be chosen by timing (the block is fixed; a hash no longer
///      readable after 256 blocks counts as checked). Unchecked: the first node reveals and is paid
///      the fee (less the protocol fee). Checked: the task joins a check queue, served by every
///      draw before new tasks; two checkers are drawn as any nodes are (never the first node, which
///      stays busy with the task and cannot leave it; for text, of the task's model); then all three
///      reveal and the majority rule of full tasks applies. A check that finds no checkers within
///      `queueTimeout` expires: fee refunded, first node released unpaid and unslashed (paying it
///      would reward starving checks).
///      Cheating does not pay: a first node that fakes its result gains at most the fee of each
///      unchecked task and loses s * stake (slashShareBps) when checked, so the contract requires
///      p * s * stake >= (1 - p) * fee: at creation against `minStake` (`FeeTooHighForSampling`),
///      and of the drawn node's own stake at the draw (a node that fails it is not drawn). Both use
///      the task's parameter version, so a later version cannot loosen a running task.
///      What a block builder can bias: the builder of `sampleBlock` chooses its contents and so its
///      hash, and can therefore choose whether a task committed in the block before is checked. A
///      first node that builds (or bribes the builder of) the very next block can escape the check
///      of that task. Without that, the outcome is as random as the hash. A VRF removes this too.
///
///      Known limit: two colluding nodes that both report `INVALID_ARGS` end a task Errored: the
///      creator is refunded, nobody is paid or slashed. They gain nothing but the third node's wasted
///      work; args validity is deterministic (verinfer-task's schema), and the relayer refuses args
///      that do not parse, so honest nodes never split on it and repeated splits identify the pair.
contract Verinfer is VerinferState {
    using SafeERC20 for IERC20;
    using TieredPool for TieredPool.Pool;

    /// @notice The token staked by nodes and paid as task fees.
    IERC20 public immutable token;
    /// @notice The extension this contract forwards the calls it does not implement to (see
    ///         `VerinferExtension`: views and the owner's registry and parameter functions).
    address public immutable extension;

    modifier touch() {
        _touch();
        _;
    }

    /// @param token_ Staking and fee token (a plain ERC20: tokens that deliver less than sent are refused).
    /// @param initParams Parameter version 1, in force at once.
    /// @param paramsDelay_ Seconds between scheduling a parameter version and its effect (<= 30 days;
    ///        0 gives users no notice and suits only devnets).
    /// @param owner_ Owner (parameters, GPU registry, two-step transfer).
    /// @param treasury_ Receiver of protocol fees and slashed stake.
    constructor(IERC20 token_, Params memory initParams, uint32 paramsDelay_, address owner_, address treasury_)
        Ownable(owner_)
    {
        if (address(token_) == address(0) || treasury_ == address(0)) revert ZeroAddress();
        if (paramsDelay_ > MAX_PARAMS_DELAY) revert ParamsDelayTooLong(paramsDelay_);
        _validateParams(initParams);
        token = token_;
        paramsDelay = paramsDelay_;
        extension = address(new VerinferExtension());
        _params[1] = initParams;
        _paramsVersion = 1;
        lastTouchBlock = uint48(block.number);
        treasury = treasury_;
        emit ParamsScheduled(1, initParams, uint40(block.timestamp));
        emit ParamsActivated(1);
        emit TreasurySet(treasury_);
    }

    /// @notice Forwards every call this contract does not implement to the extension, by
    ///         `delegatecall`, so that its functions run on this contract's storage.
    fallback() external {
        address target = extension;
        assembly ("memory-safe") {
            calldatacopy(0, 0, calldatasize())
            let ok := delegatecall(gas(), target, 0, calldatasize(), 0, 0)
            returndatacopy(0, 0, returndatasize())
            if iszero(ok) { revert(0, returndatasize()) }
            return(0, returndatasize())
        }
    }

    // ================================================================ nodes

    /// @notice Registers the caller as a node: stakes `amount` (>= minStake, approved beforehand) and
    ///         declares its GPU model, which must be registered and active; the model fixes the VRAM.
    ///         The node becomes Available at once and can be drawn from the next block on.
    /// @param gpuModelName Declared GPU model; normalised (case, whitespace) into the model id.
    /// @param feeTier The node serves tasks whose fee is at least 2^feeTier times the network
    ///        minimum for that task (0 = any task); cheaper tasks are never drawn onto it.
    /// @param amount Stake to transfer from the caller.
    function join(string calldata gpuModelName, uint8 feeTier, uint96 amount) external touch {
        Node storage node = _nodes[msg.sender];
        NodeState state = node.state;
        if (state == NodeState.Kicked) revert NodeIsKicked(msg.sender);
        if (state != NodeState.None) revert AlreadyRegistered(msg.sender);
        uint96 minStake_ = _params[_paramsVersion].minStake;
        if (amount < minStake_) revert StakeBelowMinimum(amount, minStake_);
        if (feeTier > MAX_FEE_TIER) revert InvalidFeeTier(feeTier, MAX_FEE_TIER);
        (bytes32 modelId, string memory normal) = GpuModels.normalise(gpuModelName);
        GpuModel memory model = _gpuModels[modelId];
        if (!model.registered) revert GpuModelNotRegistered(modelId);
        if (!model.active) revert GpuModelInactive(modelId);

        uint32 id = node.id;
        if (id == 0) {
            id = ++nodeCount;
            node.id = id;
            nodeAddress[id] = msg.sender;
        }
        node.stake = amount;
        node.model = model.index;
        node.feeTier = feeTier;
        emit NodeJoined(msg.sender, id, modelId, normal, _modelVram[model.index], amount, feeTier);
        _makeAvailable(node, msg.sender);

        _pull(msg.sender, amount);
    }

    /// @notice Sets the caller's fee tier (see `join`); applies to draws from the next block on.
    function setFeeTier(uint8 feeTier) external touch {
        if (feeTier > MAX_FEE_TIER) revert InvalidFeeTier(feeTier, MAX_FEE_TIER);
        Node storage node = _nodes[msg.sender];
        NodeState state = node.state;
        if (state == NodeState.None) revert NotRegistered(msg.sender);
        if (state == NodeState.Kicked) revert NodeIsKicked(msg.sender);
        if (state == NodeState.Available) {
            _removeFromPools(node);
            node.feeTier = feeTier;
            _makeAvailable(node, msg.sender);
        } else {
            node.feeTier = feeTier; // a busy node re-enters its pools with it when released
        }
        emit FeeTierSet(msg.sender, feeTier);
    }

    /// @notice Adds `amount` to the caller's stake (any time while registered and not kicked).
    function addStake(uint96 amount) external touch {
        if (amount == 0) revert ZeroAmount();
        Node storage node = _nodes[msg.sender];
        NodeState state = node.state;
        if (state == NodeState.None) revert NotRegistered(msg.sender);
        if (state == NodeState.Kicked) revert NodeIsKicked(msg.sender);
        uint256 newStake = uint256(node.stake) + amount;
        if (newStake > type(uint96).max) revert StakeOverflow(msg.sender);
        node.stake = uint96(newStake);
        emit StakeAdded(msg.sender, amount, uint96(newStake));
        _pull(msg.sender, amount);
    }

    /// @notice Leaves the network. An idle node gets its stake back now; a node in a task is marked
    ///         Leaving and its stake (with the task's reward, or less any slash) is credited to it
    ///         when the task ends (see `withdraw`).
    function leave() external touch {
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

    /// @notice Sends the caller everything credited to it (returned stakes, refunds, slash rewards).
    /// @return amount The amount sent.
    function withdraw() external touch returns (uint256 amount) {
        amount = claimable[msg.sender];
        if (amount == 0) revert NothingToWithdraw(msg.sender);
        claimable[msg.sender] = 0;
        emit Withdrawn(msg.sender, amount);
        token.safeTransfer(msg.sender, amount);
    }

    // ================================================================ tasks

    /// @notice Creates a task and escrows `fee` (approved beforehand). The task waits in its queue
    ///         until a draw in a later block selects its three nodes (see the contract's notes).
    /// @param kind ImageGeneration or TextGeneration.
    /// @param argsHash keccak256 of the task's argument bytes (stored off-chain).
    /// @param imageCount Images to generate (1..MAX_IMAGES) for image tasks; 0 for text tasks.
    /// @param minVramMiB VRAM each node's GPU model must have, in MiB.
    /// @param gpuModelName Text tasks: the registered GPU model all three nodes must have (required).
    ///        Image tasks: empty.
    /// @param fee Fee escrowed now (>= `minTaskFee(kind, imageCount)`), paid to agreeing nodes (less
    ///        the protocol fee) on validation, refunded otherwise.
    /// @return taskId The new task's id (ids start at 1).
    function createTask(
        TaskKind kind,
        bytes32 argsHash,
        uint8 imageCount,
        uint32 minVramMiB,
        string calldata gpuModelName,
        uint96 fee
    ) external touch returns (uint256 taskId) {
        return _createTask(kind, argsHash, imageCount, minVramMiB, gpuModelName, fee, ValidationMode.Full);
    }

    /// @notice Creates a task validated by sampling and escrows `fee`: a draw starts it on one node;
    ///         after that node's commitment, the hash of the next block decides, with probability
    ///         `samplingBps`, whether two more nodes check it (majority of three, as `createTask`).
    ///         Unchecked, the first node's result is accepted and it is paid the fee (less the
    ///         protocol fee); checked, the agreeing nodes share it. Arguments as `createTask`; the fee
    ///         must lie within `sampledFeeRange(kind, imageCount)`.
    /// @return taskId The new task's id.
    function createSampledTask(
        TaskKind kind,
        bytes32 argsHash,
        uint8 imageCount,
        uint32 minVramMiB,
        string calldata gpuModelName,
        uint96 fee
    ) external touch returns (uint256 taskId) {
        return _createTask(kind, argsHash, imageCount, minVramMiB, gpuModelName, fee, ValidationMode.Sampled);
    }

    function _createTask(
        TaskKind kind,
        bytes32 argsHash,
        uint8 imageCount,
        uint32 minVramMiB,
        string calldata gpuModelName,
        uint96 fee,
        ValidationMode mode
    ) internal returns (uint256 taskId) {
        if (argsHash == bytes32(0)) revert ZeroArgsHash();
        (bytes32 queueClass, bytes32 modelId, uint8 textModel) = _taskClass(kind, imageCount, minVramMiB, gpuModelName);
        taskId = ++taskCount;
        Task storage task = _tasks[taskId];
        {
            uint24 version = _paramsVersion;
            Params storage p = _params[version];
            uint256 minimum = _minimumFee(p, kind, mode, imageCount);
            if (fee < minimum) revert FeeBelowMinimum(fee, uint96(minimum));
            if (mode == ValidationMode.Sampled) {
                uint256 maxFee = _maxSampledFee(p);
                if (fee > maxFee) revert FeeTooHighForSampling(fee, uint96(maxFee));
                task.mode = mode;
            }
            task.feeLevel = _feeLevel(fee, minimum);
            task.paramsVersion = version;
            task.expiresAt = uint40(block.timestamp + _params[version].queueTimeout);
        }
        task.creator = msg.sender;
        task.kind = kind;
        task.imageCount = imageCount;
        task.argsHash = argsHash;
        task.fee = fee;
        task.minVramMiB = minVramMiB;
        task.textModel = textModel;
        emit TaskCreated(taskId, msg.sender, kind, argsHash, imageCount, minVramMiB, modelId, fee, mode);
        _enqueue(TASK_RING, _queueKey(kind, queueClass, task.feeLevel), taskId, task, TaskStatus.Queued);

        if (fee != 0) _pull(msg.sender, fee);
    }

    /// @notice Cancels a task still waiting in its queue and refunds its fee in full.
    function cancelTask(uint256 taskId) external touch {
        Task storage task = _tasks[taskId];
        if (task.status == TaskStatus.None) revert UnknownTask(taskId);
        if (task.creator != msg.sender) revert NotTaskCreator(taskId, msg.sender);
        if (task.status != TaskStatus.Queued) revert TaskNotQueued(taskId, task.status);
        task.status = TaskStatus.Cancelled;
        --queuedTasks;
        emit TaskCancelled(taskId);
        uint96 fee = task.fee;
        if (fee != 0) token.safeTransfer(msg.sender, fee);
    }

    /// @notice Ends a queued task whose `expiresAt` has passed and credits its fee to its creator.
    ///         Anybody may call it (draws also expire the tasks they meet); a task already expired
    ///         (by this call's own draw, say) is left as it is.
    function expireTask(uint256 taskId) external touch {
        Task storage task = _tasks[taskId];
        TaskStatus status = task.status;
        if (status == TaskStatus.Expired) return;
        if (status == TaskStatus.None) revert UnknownTask(taskId);
        if (status != TaskStatus.Queued && status != TaskStatus.CheckQueued) revert TaskNotQueued(taskId, status);
        if (block.timestamp < task.expiresAt) revert TaskNotExpired(taskId, task.expiresAt);
        _expire(task, taskId);
    }

    /// @notice Runs the draw that the first state-changing call of a block runs anyway (see the
    ///         contract's notes). Anybody may call it; it does nothing when this block already drew.
    /// @return started How many tasks started.
    function drawTasks() external returns (uint256 started) {
        return _touch();
    }

    /// @notice Commits the caller's result: `keccak256(abi.encode(taskId, node, result, salt))` where
    ///         result is `uint64[]` (image), `bytes32` digest (text) or `INVALID_ARGS` (as bytes32).
    function commit(uint256 taskId, bytes32 commitment) external touch {
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
        if (committed == _present(task)) {
            uint32 revealDeadline = uint32(block.timestamp) + _params[task.paramsVersion].revealWindow;
            task.revealDeadline = revealDeadline;
            if (committed == 1) {
                // A sampled task's first node: the next block's hash decides whether it is checked.
                uint256 sampleBlock = block.number + 1;
                task.status = TaskStatus.AwaitingSample;
                task.sampleBlock = uint48(sampleBlock);
                emit SampleCommitted(taskId, sampleBlock, revealDeadline);
            } else {
                task.status = TaskStatus.Revealing;
                emit RevealPhaseOpened(taskId, revealDeadline);
            }
        }
    }

    /// @notice Reveals an image result: one pHash per image, in image order, and the commitment's salt.
    function revealImage(uint256 taskId, uint64[] calldata pHashes, bytes32 salt) external touch {
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
    function revealText(uint256 taskId, bytes32 digest, bytes32 salt) external touch {
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
    function reportInvalidArgs(uint256 taskId, bytes32 salt) external touch {
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
    function settle(uint256 taskId) external touch {
        Task storage task = _tasks[taskId];
        TaskStatus status = task.status;
        if (status == TaskStatus.AwaitingSample) {
            // The first node neither revealed (unchecked) nor had the check started (checked) in time.
            if (block.timestamp <= task.revealDeadline) revert SettleTooEarly(taskId);
            _settle(task, taskId);
            return;
        }
        if (status != TaskStatus.Committing && status != TaskStatus.Revealing) revert NotSettleable(taskId, status);
        bool commitOver = status == TaskStatus.Revealing || block.timestamp > task.commitDeadline;
        bool allRevealed = commitOver && task.revealedMask == task.committedMask;
        if (!allRevealed && block.timestamp <= task.revealDeadline) revert SettleTooEarly(taskId);
        _settle(task, taskId);
    }

    /// @notice Runs the sample draw of a sampled task whose first node committed, once the block
    ///         after the commitment is sealed. Checked: the task waits (ahead of new tasks) for two
    ///         checkers, drawn as any draw is, until its `queueTimeout`; the first node must not
    ///         reveal before they commit. Unchecked: the first node reveals (its reveal also runs
    ///         the draw, so it need not call this). Anybody may call it, until the first node's
    ///         reveal deadline (then `settle`).
    /// @return checked Whether the task is checked.
    function resolveSample(uint256 taskId) external touch returns (bool checked) {
        Task storage task = _tasks[taskId];
        TaskStatus status = task.status;
        if (status != TaskStatus.AwaitingSample) revert NotAwaitingSample(taskId, status);
        // Past the first node's reveal deadline only `settle` remains (it slashes the first node):
        // a late resolution would let a node that sat on a checked task escape that slash.
        if (block.timestamp > task.revealDeadline) revert SampleDeadlinePassed(taskId, task.revealDeadline);
        return _resolveSample(task, taskId);
    }

    // ================================================================ owner

    /// @notice Sets the address that receives treasury withdrawals.
    function setTreasury(address treasury_) external onlyOwner touch {
        if (treasury_ == address(0)) revert ZeroAddress();
        treasury = treasury_;
        emit TreasurySet(treasury_);
    }

    /// @notice Sends `amount` of accrued protocol fees and slashes to the treasury address.
    ///         Callable by the owner or the treasury.
    function withdrawTreasury(uint256 amount) external touch {
        address to = treasury;
        if (msg.sender != to && msg.sender != owner()) revert NotTreasuryOrOwner(msg.sender);
        uint256 balance = treasuryBalance;
        if (amount > balance) revert InsufficientTreasury(amount, balance);
        treasuryBalance = balance - amount;
        emit TreasuryWithdrawn(to, amount);
        token.safeTransfer(to, amount);
    }

    /// @notice Disabled: the registry and the parameters need an owner, and a contract without one
    ///         could never add a GPU model. Transfer ownership (two steps) instead.
    function renounceOwnership() public view override onlyOwner {
        revert OwnershipCannotBeRenounced();
    }

    // ================================================================ internal: reveal and settle

    function _checkReveal(Task storage task, uint256 taskId) internal returns (uint256 slot) {
        TaskStatus status = task.status;
        if (status == TaskStatus.AwaitingSample) {
            // The first node reveals once the sample draw says unchecked; checked, it must wait for
            // the checkers' commitments (`resolveSample`), or its result could be copied.
            if (_resolveSample(task, taskId)) revert SampleChecked(taskId);
            status = TaskStatus.Revealing;
        }
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
        if (revealed == committed && (committed == _present(task) || block.timestamp > task.commitDeadline)) {
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
        uint8 present;
        uint8 slashMask;
        uint16 slashBps;
        uint96 reward;
        uint96 minStake;
        uint256 slashed;
        uint256 toTreasury;
        address[3] addrs;
    }

    function _settle(Task storage task, uint256 taskId) internal {
        Params storage p = _params[task.paramsVersion];
        Settlement memory s;
        s.taskId = taskId;
        s.committed = task.committedMask;
        s.revealed = task.revealedMask;
        uint8 invalid = task.invalidMask;
        s.addrs = [nodeAddress[task.node0], nodeAddress[task.node1], nodeAddress[task.node2]];
        s.present = _present(task);
        uint8 threshold_ = p.threshold;

        uint16[] memory distances;
        if (s.present == 7) {
            (distances, s.agreeing) = _compare(task, s.revealed & ~invalid, s.addrs, threshold_);
        } else {
            // An unchecked sampled task: the first node's valid result is accepted alone.
            s.agreeing = s.revealed & ~invalid & 1;
            if (invalid != 0) invalid = 3; // its invalid-args report ends the task Errored
        }

        s.slashMask = s.present & ~s.revealed; // missed a deadline
        if (_popcount3(invalid) >= 2) {
            s.outcome = TaskStatus.Errored;
        } else if (s.agreeing != 0) {
            s.outcome = TaskStatus.Validated;
            s.slashMask |= s.present & ~s.agreeing;
        } else {
            s.outcome = TaskStatus.Aborted;
        }
        task.status = s.outcome;

        uint96 fee = task.fee;
        uint8 payees = _popcount3(s.agreeing);
        if (s.outcome == TaskStatus.Validated) {
            uint96 protocolCut = uint96((uint256(fee) * p.protocolFeeBps) / BPS);
            s.reward = (fee - protocolCut) / payees;
            s.toTreasury = fee - uint256(s.reward) * payees;
        }
        emit TaskSettled(taskId, s.outcome, s.agreeing, distances, threshold_, s.reward);

        s.slashBps = p.slashShareBps;
        s.minStake = _params[_paramsVersion].minStake;
        for (uint256 i; i < 3; ++i) {
            if (s.present & (1 << i) != 0) _releaseNode(s, i);
        }

        // A share of the slashes goes to the nodes that were right, or to the creator if none was.
        uint256 slashReward = (s.slashed * p.slashRewardBps) / BPS;
        s.toTreasury += s.slashed - slashReward;
        if (slashReward != 0) {
            if (s.outcome == TaskStatus.Validated) {
                uint256 each = slashReward / payees;
                for (uint256 i; i < 3; ++i) {
                    if (s.agreeing & (1 << i) != 0) _credit(s.addrs[i], taskId, CreditReason.SlashReward, each);
                }
                s.toTreasury += slashReward - each * payees;
            } else {
                _credit(task.creator, taskId, CreditReason.SlashReward, slashReward);
            }
        }
        if (s.outcome != TaskStatus.Validated && fee != 0) {
            _credit(task.creator, taskId, CreditReason.FeeRefunded, fee);
        }
        if (s.toTreasury != 0) {
            treasuryBalance += s.toTreasury;
            emit TreasuryAccrued(taskId, s.toTreasury);
        }
    }

    /// @dev Slashes, pays or releases node `i` of a settling task. Stakes leaving the network are
    ///      credited, never transferred, so no receiver can block a settlement.
    function _releaseNode(Settlement memory s, uint256 i) internal {
        address account = s.addrs[i];
        Node storage node = _nodes[account];
        uint256 bit = 1 << i;
        if (s.slashMask & bit != 0) {
            SlashReason reason = s.committed & bit == 0
                ? SlashReason.MissedCommit
                : (s.revealed & bit == 0 ? SlashReason.MissedReveal : SlashReason.Disagreed);
            (uint96 slashed, uint96 remaining) = _slashAndKick(node, account, s.taskId, reason, s.slashBps);
            s.slashed += slashed;
            if (remaining != 0) _credit(account, s.taskId, CreditReason.StakeReturned, remaining);
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
        _release(node, account, s.taskId, s.minStake);
    }

    /// @dev Ends a node's task: a leaving or under-staked node exits (stake credited), any other
    ///      becomes available again.
    function _release(Node storage node, address account, uint256 taskId, uint96 minStake_) internal {
        if (node.state == NodeState.Leaving) {
            _credit(account, taskId, CreditReason.StakeReturned, _exit(node, account, ExitReason.Left));
        } else if (node.stake < minStake_) {
            _credit(account, taskId, CreditReason.StakeReturned, _exit(node, account, ExitReason.BelowMinStake));
        } else {
            _makeAvailable(node, account);
        }
    }

    /// @dev Slots of `task` that have nodes: the first node only while a sampled task is unchecked.
    function _present(Task storage task) internal view returns (uint8) {
        return task.mode == ValidationMode.Sampled && !task.checked ? 1 : 7;
    }

    /// @dev Runs the sample draw (see `_sampleChecked`). Checked: the task joins its class's check
    ///      queue, with its own deadline (`queueTimeout` from now). Unchecked: the first node may reveal.
    function _resolveSample(Task storage task, uint256 taskId) internal returns (bool checked) {
        checked = _sampleChecked(task, taskId);
        emit SampleDecided(taskId, checked, task.sampleBlock);
        if (!checked) {
            task.status = TaskStatus.Revealing;
            return false;
        }
        task.checked = true;
        task.expiresAt = uint40(block.timestamp + _params[task.paramsVersion].queueTimeout);
        bytes32 class_ =
            task.textModel != 0 ? _modelIds[task.textModel - 1] : bytes32(uint256(_vramClass(task.minVramMiB)));
        _enqueue(CHECK_RING, _queueKey(task.kind, class_, task.feeLevel), taskId, task, TaskStatus.CheckQueued);
    }

    /// @dev Pairwise comparison of the valid results; returns the distances and who agrees with whom.
    function _compare(Task storage task, uint8 valid, address[3] memory addrs, uint256 threshold_)
        internal
        view
        returns (uint16[] memory distances, uint8 agreeing)
    {
        bool isImage = task.kind == TaskKind.ImageGeneration;
        uint256 perPair = isImage ? task.imageCount : 1;
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

    /// @dev Deregisters the node; the caller transfers or credits the returned stake.
    function _exit(Node storage node, address account, ExitReason reason) internal returns (uint96 stake) {
        stake = node.stake;
        node.stake = 0;
        node.state = NodeState.None;
        node.taskId = 0;
        emit NodeExited(account, reason, stake);
    }

    function _credit(address account, uint256 taskId, CreditReason reason, uint256 amount) internal {
        claimable[account] += amount;
        emit BalanceCredited(account, taskId, reason, amount);
    }

    /// @dev Ends a queued task, or a check that found no checkers in time, and refunds its fee.
    ///      An expired check releases the first node unpaid and unslashed: its result was never
    ///      verified, and paying it would reward starving checks.
    function _expire(Task storage task, uint256 taskId) internal {
        bool check = task.status == TaskStatus.CheckQueued;
        task.status = TaskStatus.Expired;
        --queuedTasks;
        emit TaskExpired(taskId);
        if (check) {
            address first = nodeAddress[task.node0];
            _release(_nodes[first], first, taskId, _params[_paramsVersion].minStake);
        }
        uint96 fee = task.fee;
        if (fee != 0) _credit(task.creator, taskId, CreditReason.FeeRefunded, fee);
    }

    /// @dev Pulls exactly `amount` from `from`; refuses tokens that deliver less (fee on transfer),
    ///      which would otherwise leave the contract owing more than it holds.
    function _pull(address from, uint256 amount) internal {
        uint256 before = token.balanceOf(address(this));
        token.safeTransferFrom(from, address(this), amount);
        uint256 received = token.balanceOf(address(this)) - before;
        if (received != amount) revert TokenTransferShortfall(amount, received);
    }

    // ================================================================ internal: draws and queues

    /// @dev Runs at the start of every state-changing call: the first call of a block activates a
    ///      due parameter version and draws, seeded by the hash of the previous touched block, before
    ///      anything else in the block can change the candidates.
    function _touch() internal returns (uint256 started) {
        uint256 last = lastTouchBlock;
        if (block.number == last) return 0;
        lastTouchBlock = uint48(block.number);
        if (_scheduledAt != 0 && block.timestamp >= _scheduledAt) _activateScheduledParams();
        if (queuedTasks == 0 || block.number - last > BLOCKHASH_WINDOW) return 0;
        bytes32 seedHash = _drawSeed(last);
        // Checks of sampled tasks first: they hold a node and the creator waits on them.
        uint256 steps;
        (started, steps) = _draw(CHECK_RING, seedHash, last, MAX_DRAW_ATTEMPTS);
        if (steps < MAX_DRAW_ATTEMPTS) {
            (uint256 more,) = _draw(TASK_RING, seedHash, last, MAX_DRAW_ATTEMPTS - steps);
            started += more;
        }
    }

    /// @dev The randomness of the draws of a block: the hash of the last block that changed state.
    function _drawSeed(uint256 seedBlock) internal view returns (bytes32) {
        return blockhash(seedBlock);
    }

    /// @dev Spends at most `budget` steps — a start attempt, or a cancelled or expired entry
    ///      skipped — on the queue heads of draw ring `ring`, round robin over its non-empty
    ///      queues, so the gas the drawing call pays is bounded whatever is queued.
    function _draw(uint256 ring, bytes32 seedHash, uint256 seedBlock, uint256 budget)
        internal
        returns (uint256 started, uint256 steps)
    {
        bytes32 prev = _drawCursors[ring];
        bytes32 failedFirst; // the first queue that failed since the last start: a round without starts ends there
        while (prev != bytes32(0) && steps < budget) {
            bytes32 key = _queues[prev].next;
            if (key == failedFirst) break; // same seed, same candidates: another try would fail again
            Queue storage queue = _queues[key];
            (bool empty, bool didStart, uint256 used) = _serveHead(queue, seedHash, seedBlock, budget - steps);
            steps += used;
            if (didStart) {
                ++started;
                failedFirst = bytes32(0);
            } else if (!empty && failedFirst == bytes32(0)) {
                failedFirst = key;
            }
            if (!empty) {
                prev = key;
            } else {
                queue.linked = false;
                if (key == prev) {
                    prev = bytes32(0); // the ring is empty
                } else {
                    _queues[prev].next = queue.next;
                }
            }
        }
        _drawCursors[ring] = prev;
    }

    /// @dev Skips (and expires) dead entries at the head, then tries to start the live head, within
    ///      `budget` steps.
    function _serveHead(Queue storage queue, bytes32 seedHash, uint256 seedBlock, uint256 budget)
        internal
        returns (bool empty, bool started, uint256 used)
    {
        uint64 head = queue.head;
        uint64 tail = queue.tail;
        while (head != tail && used < budget) {
            ++used;
            uint256 taskId = queue.items[head];
            Task storage task = _tasks[taskId];
            TaskStatus status = task.status;
            bool live = status == TaskStatus.Queued || status == TaskStatus.CheckQueued;
            if (live && block.timestamp >= task.expiresAt) {
                _expire(task, taskId);
                live = false;
            }
            if (!live) {
                ++head;
                continue;
            }
            started = _tryStart(taskId, task, seedHash, seedBlock);
            if (started) {
                ++head;
                --queuedTasks;
            }
            break;
        }
        if (used == 0) used = 1; // a linked queue is never empty; never loop without progress
        if (head != queue.head) queue.head = head;
        empty = head == tail;
    }

    /// @dev Appends a task (status `Queued`) or a check (status `CheckQueued`, its own queue keys,
    ///      `CHECK_RING`) to a queue, linking the queue into its ring when it was empty.
    function _enqueue(uint256 ring, bytes32 queueKey, uint256 taskId, Task storage task, TaskStatus status) internal {
        if (ring == CHECK_RING) queueKey = keccak256(abi.encode(queueKey, CHECK_RING));
        Queue storage queue = _queues[queueKey];
        uint64 tail = queue.tail;
        queue.items[tail] = uint40(taskId);
        queue.tail = tail + 1;
        task.status = status;
        ++queuedTasks;
        emit TaskQueued(taskId, queueKey);
        if (!queue.linked) {
            queue.linked = true;
            bytes32 cursor = _drawCursors[ring];
            if (cursor == bytes32(0)) {
                queue.next = queueKey;
                _drawCursors[ring] = queueKey;
            } else {
                queue.next = _queues[cursor].next;
                _queues[cursor].next = queueKey;
            }
        }
    }

    /// @dev Draws three distinct eligible nodes for `task` and opens its commit phase; false (and no
    ///      change but evictions) when too few are eligible.
    function _tryStart(uint256 taskId, Task storage task, bytes32 seedHash, uint256 seedBlock) internal returns (bool) {
        if (task.status == TaskStatus.CheckQueued) return _tryStartCheck(taskId, task, seedHash, seedBlock);
        bool sampled = task.mode == ValidationMode.Sampled;
        (bool ok, address[3] memory addrs, uint32[3] memory ids) =
            _drawNodes(task, uint256(keccak256(abi.encode(seedHash, taskId))), sampled ? 1 : 3, 0);
        if (!ok) return false;
        if (sampled) {
            _assign(addrs[0], taskId);
            task.node0 = ids[0];
            _openCommitPhase(task, taskId, addrs, seedBlock);
            return true;
        }
        // Removal makes repeats impossible; the check guards that property against future edits.
        if (ids[0] == ids[1] || ids[0] == ids[2]) revert DuplicateNodeSelected(ids[0]);
        if (ids[1] == ids[2]) revert DuplicateNodeSelected(ids[1]);
        for (uint256 k; k < 3; ++k) {
            _assign(addrs[k], taskId);
        }
        task.node0 = ids[0];
        task.node1 = ids[1];
        task.node2 = ids[2];
        _openCommitPhase(task, taskId, addrs, seedBlock);
        return true;
    }

    /// @dev Draws a checked task's two checkers (never its first node, which is busy with it; for
    ///      text, of its model) and opens their commit phase.
    function _tryStartCheck(uint256 taskId, Task storage task, bytes32 seedHash, uint256 seedBlock)
        internal
        returns (bool)
    {
        (bool ok, address[3] memory addrs, uint32[3] memory ids) =
            _drawNodes(task, uint256(keccak256(abi.encode(seedHash, taskId, CHECK_RING))), 2, 1);
        if (!ok) return false;
        if (ids[0] == ids[1]) revert DuplicateNodeSelected(ids[0]);
        _assign(addrs[0], taskId);
        _assign(addrs[1], taskId);
        task.node1 = ids[0];
        task.node2 = ids[1];
        _openCommitPhase(task, taskId, addrs, seedBlock);
        return true;
    }

    function _assign(address account, uint256 taskId) internal {
        Node storage node = _nodes[account];
        node.state = NodeState.Busy;
        node.taskId = uint40(taskId);
    }

    /// @dev Sets the commit and reveal deadlines of a task whose nodes were just drawn (`drawn`:
    ///      all three, the first node of a sampled task, or a check's two checkers).
    function _openCommitPhase(Task storage task, uint256 taskId, address[3] memory drawn, uint256 seedBlock) internal {
        Params storage p = _params[task.paramsVersion];
        uint32 commitDeadline = uint32(block.timestamp) + p.commitWindow;
        uint32 revealDeadline = commitDeadline + p.revealWindow;
        task.commitDeadline = commitDeadline;
        task.revealDeadline = revealDeadline;
        bool check = task.status == TaskStatus.CheckQueued;
        task.status = TaskStatus.Committing;
        if (check) {
            emit CheckStarted(taskId, [drawn[0], drawn[1]], commitDeadline, revealDeadline, seedBlock);
        } else {
            emit TaskStarted(taskId, drawn, commitDeadline, revealDeadline, seedBlock);
        }
    }

    /// @dev Takes three nodes out of the pools, each uniform among `task`'s remaining candidates.
    ///      A drawn node whose stake fell below the current minimum is evicted (its stake credited)
    ///      and another one drawn. On failure the drawn nodes go back and `ok` is false.
    /// @dev Takes `count` nodes out of the pools, each uniform among `task`'s remaining candidates
    ///      (`assigned` of its nodes are already busy with it: a check's first node), when at least
    ///      `3 - assigned` candidates (for text `minTextPool - assigned`) are available. A drawn node
    ///      whose stake fell below the current minimum is evicted (its stake credited) and another
    ///      one drawn. A sampled task's first node must also stake enough that cheating does not
    ///      pay (`_cheatingUnprofitable` under the task's parameters); a node that does not is put
    ///      back and another one drawn (rejection keeps the draw uniform among those that do). On
    ///      failure the drawn nodes go back and `ok` is false.
    function _drawNodes(Task storage task, uint256 seed, uint256 count, uint256 assigned)
        internal
        returns (bool ok, address[3] memory addrs, uint32[3] memory ids)
    {
        Draw memory d;
        d.level = task.feeLevel;
        // Three candidates, counting those already assigned: a sampled task's first node starts
        // only while two more could check it, and a check needs two. So a check waits for two
        // free nodes while no new task can take one of them (nodes put back by the stake rule
        // below still count: they may check): single freed nodes are left to the
        // checks (served first) instead of piling up as first nodes whose checks never start.
        d.needed = 3 - assigned;
        Params storage p = _params[task.paramsVersion];
        if (task.kind == TaskKind.TextGeneration) {
            // A text task's pool, first node included, must hold `minTextPool` nodes of its model.
            uint256 minPool = p.minTextPool - assigned;
            if (minPool > d.needed) d.needed = minPool;
        }
        if (task.mode == ValidationMode.Sampled && count == 1) {
            d.checkStake = true;
            d.fee = task.fee;
            d.samplingBps = p.samplingBps;
            d.slashShareBps = p.slashShareBps;
        }
        d.minStake = _params[_paramsVersion].minStake;
        while (d.picked < count) {
            uint256 candidates = _candidates(task, d.level);
            if (
                candidates == 0 || candidates + d.picked + d.rejections < d.needed
                    || d.evictions + d.rejections > MAX_EVICTIONS
            ) {
                for (uint256 j; j < d.picked; ++j) {
                    _makeAvailable(_nodes[addrs[j]], addrs[j]); // undo: the task waits
                }
                break;
            }
            uint256 r = uint256(keccak256(abi.encode(seed, d.picked, d.evictions + d.rejections))) % candidates;
            address account = _candidateAt(task, d.level, r);
            Node storage node = _nodes[account];
            _removeFromPools(node);
            if (node.stake < d.minStake) {
                ++d.evictions;
                _credit(account, 0, CreditReason.StakeReturned, _exit(node, account, ExitReason.BelowMinStake));
                continue;
            }
            if (d.checkStake && !_cheatingUnprofitable(node.stake, d.fee, d.samplingBps, d.slashShareBps)) {
                d.rejected[d.rejections++] = account;
                continue;
            }
            ids[d.picked] = node.id;
            addrs[d.picked] = account;
            ++d.picked;
        }
        for (uint256 j; j < d.rejections; ++j) {
            _makeAvailable(_nodes[d.rejected[j]], d.rejected[j]);
        }
        ok = d.picked == count;
    }

    /// @dev Working state of `_drawNodes` (kept in memory: too many values for the stack).
    struct Draw {
        uint256 level;
        uint256 needed;
        uint256 picked;
        uint256 evictions;
        uint256 rejections;
        uint96 minStake;
        bool checkStake;
        uint96 fee;
        uint16 samplingBps;
        uint16 slashShareBps;
        address[MAX_EVICTIONS + 1] rejected;
    }

    /// @dev Available nodes `task` may draw at fee tiers up to `level`.
    function _candidates(Task storage task, uint256 level) internal view returns (uint256) {
        uint256 textModel = task.textModel;
        if (textModel != 0) return _pools[textModel].countTo(level);
        return _imageCandidates(task.minVramMiB, level);
    }

    /// @dev The `r`-th candidate of `task` (models in registry order, then fee tiers, then index).
    function _candidateAt(Task storage task, uint256 level, uint256 r) internal view returns (address account) {
        uint256 textModel = task.textModel;
        if (textModel != 0) {
            (account,,) = _pools[textModel].at(level, r);
            return account;
        }
        uint32 minVramMiB = task.minVramMiB;
        if (minVramMiB <= _minModelVram) {
            (account,,) = _pools[GLOBAL_POOL].at(level, r);
            return account;
        }
        uint256 n = _gpuModelCount;
        for (uint256 i; i < n; ++i) {
            if (_modelVram[i] < minVramMiB) continue;
            TieredPool.Pool storage pool = _pools[i + 1];
            uint256 c = pool.countTo(level);
            if (r < c) {
                (account,,) = pool.at(level, r);
                return account;
            }
            r -= c;
        }
    }

    function _makeAvailable(Node storage node, address account) internal {
        uint256 tier = node.feeTier;
        node.globalIndex = uint24(_pools[GLOBAL_POOL].add(tier, account));
        node.modelIndex = uint24(_pools[uint256(node.model) + 1].add(tier, account));
        node.state = NodeState.Available;
        node.taskId = 0;
    }

    /// @dev Swap-and-pop in both pools; the node moved into the freed index learns its new index.
    function _removeFromPools(Node storage node) internal {
        uint256 tier = node.feeTier;
        address moved = _pools[GLOBAL_POOL].remove(tier, node.globalIndex);
        if (moved != address(0)) _nodes[moved].globalIndex = node.globalIndex;
        moved = _pools[uint256(node.model) + 1].remove(tier, node.modelIndex);
        if (moved != address(0)) _nodes[moved].modelIndex = node.modelIndex;
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

    /// @dev Checks a new task's shape; returns its queue class, its text model id and registry index + 1.
    function _taskClass(TaskKind kind, uint8 imageCount, uint32 minVramMiB, string calldata gpuModelName)
        internal
        view
        returns (bytes32 queueClass, bytes32 modelId, uint8 textModel)
    {
        if (kind == TaskKind.ImageGeneration) {
            if (imageCount == 0 || imageCount > MAX_IMAGES) revert InvalidImageCount(kind, imageCount);
            if (bytes(gpuModelName).length != 0) revert GpuModelNotAllowedForImages();
            return (bytes32(uint256(_vramClass(minVramMiB))), bytes32(0), 0);
        }
        if (imageCount != 0) revert InvalidImageCount(kind, imageCount);
        if (bytes(gpuModelName).length == 0) revert GpuModelRequiredForText();
        (modelId,) = GpuModels.normalise(gpuModelName);
        GpuModel memory model = _gpuModels[modelId];
        if (!model.registered) revert GpuModelNotRegistered(modelId);
        uint32 vram = _modelVram[model.index];
        if (vram < minVramMiB) revert GpuModelLacksVram(modelId, vram, minVramMiB);
        return (modelId, modelId, model.index + 1);
    }

    /// @dev Image tasks are queued by VRAM class: the smallest registered VRAM that meets the
    ///      requirement (0 when every model does), so tasks of one queue have the same candidates.
    function _vramClass(uint32 minVramMiB) internal view returns (uint32 vramClass) {
        if (minVramMiB <= _minModelVram) return 0;
        uint256 n = _gpuModelCount;
        for (uint256 i; i < n; ++i) {
            uint32 vram = _modelVram[i];
            if (vram >= minVramMiB && (vramClass == 0 || vram < vramClass)) vramClass = vram;
        }
        if (vramClass == 0) revert NoGpuModelFits(minVramMiB);
    }

    function _queueKey(TaskKind kind, bytes32 class_, uint8 feeLevel) internal pure returns (bytes32) {
        return keccak256(abi.encode(kind, class_, feeLevel));
    }

    // ================================================================ internal: parameters and math

    /// @dev Highest fee tier t (<= MAX_FEE_TIER) with fee >= 2^t * minimum.
    function _feeLevel(uint96 fee, uint256 minimum) internal pure returns (uint8 level) {
        if (minimum == 0) return MAX_FEE_TIER;
        while (level < MAX_FEE_TIER && uint256(fee) >= minimum << (level + 1)) {
            ++level;
        }
    }

    function _popcount3(uint8 mask) internal pure returns (uint8) {
        return (mask & 1) + ((mask >> 1) & 1) + ((mask >> 2) & 1);
    }
}
