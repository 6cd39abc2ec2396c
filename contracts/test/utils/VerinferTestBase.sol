// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Verinfer} from "../../src/Verinfer.sol";
import {IVerinfer} from "../../src/interfaces/IVerinfer.sol";
import {VerinferExtension} from "../../src/VerinferExtension.sol";
import {MockStakingToken} from "../../src/mocks/MockStakingToken.sol";
import {VM, Vm} from "../Vm.sol";

/// @notice Shared fixture for the Verinfer tests: a token, a Verinfer deployed with the deploy
///         script's default parameters, and helpers to register nodes, create tasks and run the
///         commit-reveal protocol. forge-std is not a dependency: cheatcodes and assertions go
///         through `VM` (see Vm.sol).
abstract contract VerinferTestBase {
    // Parameters (the deploy script's defaults).
    uint8 internal constant THRESHOLD = 10;
    uint96 internal constant MIN_STAKE = 1000 ether;
    uint96 internal constant STAKE_PER_BIT = 100 ether;
    uint16 internal constant SLASH_BPS = 5000;
    uint16 internal constant PROTOCOL_FEE_BPS = 500;
    uint32 internal constant COMMIT_WINDOW = 300;
    uint32 internal constant REVEAL_WINDOW = 300;
    uint16 internal constant SLASH_REWARD_BPS = 5000;
    uint32 internal constant QUEUE_TIMEOUT = 1 days;
    uint96 internal constant MIN_TASK_FEE = 1 ether;
    uint96 internal constant MIN_IMAGE_FEE = 0.1 ether;
    uint8 internal constant MIN_TEXT_POOL = 3;
    uint32 internal constant PARAMS_DELAY = 1 days;
    uint16 internal constant BPS = 10_000;
    uint16 internal constant SAMPLING_BPS = 1000;

    uint96 internal constant FEE = 10 ether;
    uint256 internal constant START_TIME = 1_700_000_000;

    string internal constant H100 = "NVIDIA H100 80GB HBM3";
    string internal constant RTX4090 = "NVIDIA GeForce RTX 4090";
    string internal constant A100 = "NVIDIA A100 80GB PCIe";
    string internal constant RTX4060 = "NVIDIA GeForce RTX 4060";
    uint32 internal constant VRAM_80G = 81_920;
    uint32 internal constant VRAM_24G = 24_576;
    uint32 internal constant VRAM_8G = 8192;

    IVerinfer.TaskKind internal constant IMAGE = IVerinfer.TaskKind.ImageGeneration;
    IVerinfer.TaskKind internal constant TEXT = IVerinfer.TaskKind.TextGeneration;

    MockStakingToken internal token;
    Verinfer internal verinfer;
    address internal owner = address(uint160(0xA11CE));
    address internal treasury = address(uint160(0x7EA5));
    address internal creator = address(uint160(0xC0FFEE));
    address internal stranger = address(uint160(0xBAD));

    uint256 private _argsNonce;

    function setUp() public virtual {
        VM.warp(START_TIME);
        VM.roll(1000);
        VM.prevrandao(bytes32(uint256(0x5eed)));
        token = new MockStakingToken();
        verinfer = new Verinfer(token, defaultParams(), PARAMS_DELAY, owner, treasury);
        _registerDefaultModels();
        VM.label(address(verinfer), "Verinfer");
        VM.label(address(token), "Token");
        VM.label(owner, "owner");
        VM.label(treasury, "treasury");
        VM.label(creator, "creator");
        VM.label(stranger, "stranger");
        _fund(creator, 1_000_000 ether);
    }

    function defaultParams() internal pure returns (IVerinfer.Params memory) {
        return IVerinfer.Params({
            threshold: THRESHOLD,
            minTextPool: MIN_TEXT_POOL,
            slashShareBps: SLASH_BPS,
            slashRewardBps: SLASH_REWARD_BPS,
            protocolFeeBps: PROTOCOL_FEE_BPS,
            commitWindow: COMMIT_WINDOW,
            revealWindow: REVEAL_WINDOW,
            queueTimeout: QUEUE_TIMEOUT,
            minStake: MIN_STAKE,
            stakePerThresholdBit: STAKE_PER_BIT,
            minTaskFee: MIN_TASK_FEE,
            minImageFee: MIN_IMAGE_FEE,
            samplingBps: SAMPLING_BPS
        });
    }

    /// @dev The GPU registry every test starts with (VRAM as NVML reports it, rounded to the card).
    function _registerDefaultModels() internal {
        VM.startPrank(owner);
        _ext().addGpuModel(H100, VRAM_80G);
        _ext().addGpuModel(RTX4090, VRAM_24G);
        _ext().addGpuModel(A100, VRAM_80G);
        _ext().addGpuModel(RTX4060, VRAM_8G);
        VM.stopPrank();
    }

    /// @dev Verinfer's extension functions (views, registry, parameters), called at Verinfer's address.
    function _ext() internal view returns (VerinferExtension) {
        return VerinferExtension(address(verinfer));
    }

    /// @dev Schedules `p` and waits out the delay, so that tasks created from now on run under it.
    function _setParams(IVerinfer.Params memory p) internal {
        VM.prank(owner);
        _ext().scheduleParams(p);
        VM.warp(VM.getBlockTimestamp() + PARAMS_DELAY);
        _nextBlock();
    }

    /// @dev Mines a block, so that the next state-changing call draws. (Reads the block number through
    ///      the cheatcode: with via_ir the optimiser may reuse a `block.number` read before a roll.)
    function _nextBlock() internal {
        VM.roll(VM.getBlockNumber() + 1);
    }

    /// @dev Runs the next block's draw (what any call in a new block does first).
    function _draw() internal returns (uint256 started) {
        _nextBlock();
        started = verinfer.drawTasks();
    }

    /// @dev Schedules `p` without waiting: returns when it takes effect. Tasks created before then
    ///      run under the version in force now.
    function _scheduleParams(IVerinfer.Params memory p) internal returns (uint40 effectiveAt) {
        VM.prank(owner);
        _ext().scheduleParams(p);
        (,, effectiveAt) = _ext().scheduledParams();
    }

    // ================================================================ math

    /// @dev forge-std's `bound` is not available: maps `x` into [lo, hi] (identity when already inside).
    function _bound(uint256 x, uint256 lo, uint256 hi) internal pure returns (uint256) {
        require(lo <= hi, "_bound: lo > hi");
        if (x >= lo && x <= hi) return x;
        uint256 size = hi - lo;
        if (size == type(uint256).max) return x;
        return lo + (x % (size + 1));
    }

    /// @dev Reference popcount: one bit at a time.
    function _naivePopcount(uint256 v) internal pure returns (uint256 c) {
        for (uint256 i; i < 256; ++i) {
            c += (v >> i) & 1;
        }
    }

    function _naiveDistance64(uint64 a, uint64 b) internal pure returns (uint256) {
        return _naivePopcount(uint256(a ^ b));
    }

    /// @dev `h` with its lowest `bits` bits flipped: exactly `bits` away from `h`.
    function _flipLow(uint64 h, uint256 bits) internal pure returns (uint64) {
        uint64 mask = bits >= 64 ? type(uint64).max : uint64((uint256(1) << bits) - 1);
        return h ^ mask;
    }

    // ================================================================ accounts and nodes

    function _nodeAddr(uint256 i) internal pure returns (address) {
        return address(uint160(0x1000_0000 + i));
    }

    /// @dev Mints `amount` to `who` and approves Verinfer for everything.
    function _fund(address who, uint256 amount) internal {
        token.mint(who, amount);
        VM.prank(who);
        token.approve(address(verinfer), type(uint256).max);
    }

    /// @dev Joins `node` with `model` (registered), fee tier 0 and `stake`.
    function _join(address node, string memory model, uint96 stake) internal {
        _join(node, model, 0, stake);
    }

    function _join(address node, string memory model, uint8 feeTier, uint96 stake) internal {
        _fund(node, stake);
        VM.prank(node);
        verinfer.join(model, feeTier, stake);
    }

    /// @dev Registers nodes `_nodeAddr(from) .. _nodeAddr(from + n - 1)` with the minimum stake.
    function _makeNodes(uint256 from, uint256 n, string memory model) internal returns (address[] memory nodes) {
        nodes = new address[](n);
        for (uint256 i; i < n; ++i) {
            nodes[i] = _nodeAddr(from + i);
            _join(nodes[i], model, MIN_STAKE);
        }
    }

    function _stakeOf(address node) internal view returns (uint96) {
        return _ext().getNode(node).stake;
    }

    function _stateOf(address node) internal view returns (IVerinfer.NodeState) {
        return _ext().getNode(node).state;
    }

    /// @dev Sends `account` everything credited to it; returns the amount.
    function _withdraw(address account) internal returns (uint256 amount) {
        VM.prank(account);
        amount = verinfer.withdraw();
    }

    /// @dev The contract owes exactly what it holds: every registered node's stake and credit, the
    ///      creator's credit, the fees of queued and running tasks, and the treasury balance. (Tests
    ///      whose tasks come from other creators add their credit through `others`.)
    function _assertTokenAccounting(address[] memory others) internal view {
        uint256 owed = verinfer.treasuryBalance() + verinfer.claimable(creator);
        uint256 nodes = verinfer.nodeCount();
        for (uint32 id = 1; id <= nodes; ++id) {
            address node = verinfer.nodeAddress(id);
            owed += uint256(_stakeOf(node)) + verinfer.claimable(node);
        }
        for (uint256 i; i < others.length; ++i) {
            owed += verinfer.claimable(others[i]);
        }
        uint256 tasks = verinfer.taskCount();
        for (uint256 id = 1; id <= tasks; ++id) {
            IVerinfer.TaskInfo memory t = _ext().getTask(id);
            if (
                t.status == IVerinfer.TaskStatus.Queued || t.status == IVerinfer.TaskStatus.Committing
                    || t.status == IVerinfer.TaskStatus.Revealing
            ) owed += t.fee;
        }
        VM.assertEq(token.balanceOf(address(verinfer)), owed, "token balance == everything owed");
    }

    function _assertTokenAccounting() internal view {
        _assertTokenAccounting(new address[](0));
    }

    // ================================================================ tasks

    function _nextArgsHash() internal returns (bytes32) {
        return keccak256(abi.encode("verinfer-test-args", ++_argsNonce));
    }

    /// @dev Creates an image task; it waits for the next block's draw.
    function _queueImageTask(uint8 imageCount, uint32 minVramMiB, uint96 fee) internal returns (uint256) {
        bytes32 argsHash = _nextArgsHash();
        VM.prank(creator);
        return verinfer.createTask(IMAGE, argsHash, imageCount, minVramMiB, "", fee);
    }

    /// @dev Creates a text task; it waits for the next block's draw.
    function _queueTextTask(string memory model, uint32 minVramMiB, uint96 fee) internal returns (uint256) {
        bytes32 argsHash = _nextArgsHash();
        VM.prank(creator);
        return verinfer.createTask(TEXT, argsHash, 0, minVramMiB, model, fee);
    }

    /// @dev Creates an image task and runs the next block's draw (which starts it when nodes can).
    function _createImageTask(uint8 imageCount, uint32 minVramMiB, uint96 fee) internal returns (uint256 taskId) {
        taskId = _queueImageTask(imageCount, minVramMiB, fee);
        _draw();
    }

    function _createImageTask() internal returns (uint256) {
        return _createImageTask(1, 0, FEE);
    }

    /// @dev Creates a text task and runs the next block's draw.
    function _createTextTask(string memory model, uint32 minVramMiB, uint96 fee) internal returns (uint256 taskId) {
        taskId = _queueTextTask(model, minVramMiB, fee);
        _draw();
    }

    /// @dev Queue of image tasks of VRAM class `vramClass` (0: every model fits) and fee level `feeLevel`.
    function _imageQueueKey(uint32 vramClass, uint8 feeLevel) internal pure returns (bytes32) {
        return keccak256(abi.encode(IMAGE, bytes32(uint256(vramClass)), feeLevel));
    }

    /// @dev Queue of text tasks on GPU model `modelId` at fee level `feeLevel`.
    function _textQueueKey(bytes32 modelId, uint8 feeLevel) internal pure returns (bytes32) {
        return keccak256(abi.encode(TEXT, modelId, feeLevel));
    }

    /// @dev Reference fee level: the highest tier t <= 7 with fee >= 2^t * minimum.
    function _feeLevel(uint256 fee, uint256 minimum) internal pure returns (uint8 level) {
        if (minimum == 0) return 7;
        while (level < 7 && fee >= minimum << (level + 1)) {
            ++level;
        }
    }

    /// @dev Fee share of each of `payees` agreeing nodes of a validated task (default protocol fee).
    function _rewardPerNode(uint96 fee, uint256 payees) internal pure returns (uint96) {
        return uint96((fee - (uint256(fee) * PROTOCOL_FEE_BPS) / BPS) / payees);
    }

    /// @dev What a slash at the default share takes from `stake`.
    function _slashOf(uint96 stake) internal pure returns (uint96) {
        return uint96((uint256(stake) * SLASH_BPS) / BPS);
    }

    function _status(uint256 taskId) internal view returns (IVerinfer.TaskStatus) {
        return _ext().getTask(taskId).status;
    }

    function _nodesOf(uint256 taskId) internal view returns (address[3] memory) {
        return _ext().getTask(taskId).nodes;
    }

    function _assertStatus(uint256 taskId, IVerinfer.TaskStatus expected) internal view {
        VM.assertEq(uint256(_status(taskId)), uint256(expected), "task status");
    }

    function _assertNodeState(address node, IVerinfer.NodeState expected) internal view {
        VM.assertEq(uint256(_stateOf(node)), uint256(expected), "node state");
    }

    // ================================================================ results, commit, reveal

    function _salt(address node, uint256 taskId) internal pure returns (bytes32) {
        return keccak256(abi.encode("salt", node, taskId));
    }

    function _hashes(uint64 a) internal pure returns (uint64[] memory h) {
        h = new uint64[](1);
        h[0] = a;
    }

    function _hashes(uint64 a, uint64 b, uint64 c) internal pure returns (uint64[] memory h) {
        h = new uint64[](3);
        (h[0], h[1], h[2]) = (a, b, c);
    }

    /// @dev A deterministic "true" image result for a task: one pHash per image.
    function _trueHashes(uint256 taskId, uint256 imageCount) internal pure returns (uint64[] memory h) {
        h = new uint64[](imageCount);
        for (uint256 i; i < imageCount; ++i) {
            h[i] = uint64(uint256(keccak256(abi.encode("phash", taskId, i))));
        }
    }

    function _trueDigest(uint256 taskId) internal pure returns (bytes32) {
        return keccak256(abi.encode("digest", taskId));
    }

    /// @dev The commitment formula, computed locally (not through the contract's view).
    function _imageCommitment(uint256 taskId, address node, uint64[] memory pHashes, bytes32 salt)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(taskId, node, pHashes, salt));
    }

    function _textCommitment(uint256 taskId, address node, bytes32 digest, bytes32 salt)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(taskId, node, digest, salt));
    }

    function _commitImage(uint256 taskId, address node, uint64[] memory pHashes) internal {
        bytes32 c = _imageCommitment(taskId, node, pHashes, _salt(node, taskId));
        VM.prank(node);
        verinfer.commit(taskId, c);
    }

    function _revealImage(uint256 taskId, address node, uint64[] memory pHashes) internal {
        bytes32 salt = _salt(node, taskId);
        VM.prank(node);
        verinfer.revealImage(taskId, pHashes, salt);
    }

    function _commitText(uint256 taskId, address node, bytes32 digest) internal {
        bytes32 c = _textCommitment(taskId, node, digest, _salt(node, taskId));
        VM.prank(node);
        verinfer.commit(taskId, c);
    }

    function _revealText(uint256 taskId, address node, bytes32 digest) internal {
        bytes32 salt = _salt(node, taskId);
        VM.prank(node);
        verinfer.revealText(taskId, digest, salt);
    }

    function _commitInvalid(uint256 taskId, address node) internal {
        _commitText(taskId, node, verinfer.INVALID_ARGS());
    }

    function _reportInvalid(uint256 taskId, address node) internal {
        bytes32 salt = _salt(node, taskId);
        VM.prank(node);
        verinfer.reportInvalidArgs(taskId, salt);
    }

    /// @dev The three nodes of `taskId` commit the same image result.
    function _commitAllImage(uint256 taskId, uint64[] memory pHashes) internal {
        address[3] memory nodes = _nodesOf(taskId);
        for (uint256 i; i < 3; ++i) {
            _commitImage(taskId, nodes[i], pHashes);
        }
    }

    /// @dev The three nodes of `taskId` commit `results[i]`, then reveal them in order.
    function _runImageTask(uint256 taskId, uint64[][3] memory results) internal {
        address[3] memory nodes = _nodesOf(taskId);
        for (uint256 i; i < 3; ++i) {
            _commitImage(taskId, nodes[i], results[i]);
        }
        for (uint256 i; i < 3; ++i) {
            _revealImage(taskId, nodes[i], results[i]);
        }
    }

    /// @dev All three nodes commit and reveal the same (true) result; the task settles Validated.
    function _runHonestImageTask(uint256 taskId) internal {
        uint64[] memory h = _trueHashes(taskId, _ext().getTask(taskId).imageCount);
        _runImageTask(taskId, [h, h, h]);
    }

    function _runTextTask(uint256 taskId, bytes32[3] memory digests) internal {
        address[3] memory nodes = _nodesOf(taskId);
        for (uint256 i; i < 3; ++i) {
            _commitText(taskId, nodes[i], digests[i]);
        }
        for (uint256 i; i < 3; ++i) {
            _revealText(taskId, nodes[i], digests[i]);
        }
    }

    function _runHonestTextTask(uint256 taskId) internal {
        bytes32 d = _trueDigest(taskId);
        _runTextTask(taskId, [d, d, d]);
    }

    // ================================================================ logs

    struct Settled {
        bool found;
        IVerinfer.TaskStatus outcome;
        uint8 agreeingMask;
        uint16[] distances;
        uint8 threshold;
        uint96 rewardPerNode;
    }

    /// @dev Finds the `TaskSettled` event of `taskId` among recorded logs (call `VM.recordLogs()` first).
    function _findSettled(Vm.Log[] memory logs, uint256 taskId) internal view returns (Settled memory s) {
        for (uint256 i; i < logs.length; ++i) {
            Vm.Log memory l = logs[i];
            if (
                l.emitter == address(verinfer) && l.topics.length == 2 && l.topics[0] == IVerinfer.TaskSettled.selector
                    && uint256(l.topics[1]) == taskId
            ) {
                s.found = true;
                (s.outcome, s.agreeingMask, s.distances, s.threshold, s.rewardPerNode) =
                    abi.decode(l.data, (IVerinfer.TaskStatus, uint8, uint16[], uint8, uint96));
            }
        }
    }

    function _assertDistances(uint16[] memory got, uint16[] memory expected) internal pure {
        VM.assertEq(got.length, expected.length, "distances length");
        for (uint256 i; i < got.length; ++i) {
            VM.assertEq(uint256(got[i]), uint256(expected[i]), string.concat("distance #", VM.toString(i)));
        }
    }
}
