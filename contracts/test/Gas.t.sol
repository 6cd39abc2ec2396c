// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Verinfer} from "../src/Verinfer.sol";
import {Hamming} from "../src/libraries/Hamming.sol";
import {IVerinfer} from "../src/interfaces/IVerinfer.sol";
import {VerinferExtension} from "../src/VerinferExtension.sol";
import {VM} from "./Vm.sol";
import {VerinferTestBase} from "./utils/VerinferTestBase.sol";

/// @dev Measures the library's Hamming distance without any call overhead.
contract HammingGasProbe {
    /// @return used Gas of one `Hamming.distance64` (operands already on the stack), calibrated
    ///         against an empty measurement; `d` is returned so the optimiser cannot drop the work.
    function measure(uint64 a, uint64 b) external view returns (uint256 used, uint256 d) {
        uint256 g0 = gasleft();
        d = Hamming.distance64(a, b);
        uint256 g1 = gasleft();
        uint256 e0 = gasleft();
        uint256 e1 = gasleft();
        used = (g0 - g1) - (e0 - e1);
    }

    function measure256(bytes32 a, bytes32 b) external view returns (uint256 used, uint256 d) {
        uint256 g0 = gasleft();
        d = Hamming.distance256(a, b);
        uint256 g1 = gasleft();
        uint256 e0 = gasleft();
        uint256 e1 = gasleft();
        used = (g0 - g1) - (e0 - e1);
    }
}

/// @notice Gas figures, written by forge to `snapshots/GasTest.json`.
///
/// What the numbers are. The measuring tests run with `isolate = true`: every top-level call is a
/// transaction of its own (cold accounts and slots, EIP-2200 original values and refunds per
/// transaction), so `snapshotGasLastCall` records the transaction's gasUsed after refunds, which
/// includes the 21,000 intrinsic gas and the calldata gas. Entries ending in `_tx` are those
/// transaction figures (what the sender pays); entries without the suffix are the execution part
/// alone: `_tx` − 21,000 − calldata gas (16 per nonzero byte, 4 per zero byte; Cancun, no EIP-7623
/// floor). `*_task_full` sums the eight transactions of one task: create (which only queues), the
/// draw that starts it (`drawTasks`, the first call of the next block; any call would run it), 3
/// commits and 3 reveals, the last of which settles. Every step is sent in a block of its own, so
/// each pays what the first call of a block pays (recording the block; nothing is queued, so
/// nothing else is drawn).
///
/// Sampled tasks (`sampled_image_*`, one image): `_task_unchecked` sums four transactions (create,
/// the draw that starts one node, its commit, and its reveal, which runs the sample draw and
/// settles); `_task_checked` sums ten (the same create, draw and commit, `resolveSample`, the draw
/// of the two checkers, their two commits, three reveals); `_expected_per_task_p1pct` is
/// unchecked + 1 % x (checked - unchecked), the average at a sampling rate of 1 %.
///
/// The state measured is a steady state, not a fresh deployment: nine nodes of one model have each
/// done one task before (their node records, result slates and pool slots hold nonzero values, as
/// they would after their first task), the creator holds tokens and an unlimited allowance, the
/// treasury balance is nonzero, and no task is queued. The sampled measurements first run one
/// checked sampled task, unmeasured, so that the sampled task queue and the check queue have been
/// used before too (the first sampled task of a network pays about 37,000 more in its create and
/// in its `resolveSample` each, for queue slots written from zero).
contract GasTest is VerinferTestBase {
    uint256 internal constant TX_BASE = 21_000;
    /// @dev Ceiling for a full 1-image task: the gas of its contract calls (execution), as forge's
    ///      snapshot cheatcodes record a call, summed over the eight steps, each measured cold in a
    ///      transaction of its own (measured figure + about 3%). The pre-hardening design had a goal
    ///      of 450,000 here (419,513 measured at 53f1f66, seven steps); the hardened protocol does
    ///      not meet it: the task record and queue entry are written by the create and the
    ///      selection by a separate draw, and every step, being the first call of its block, records
    ///      the block (about 6,000 gas each). The transaction view adds what no contract can remove
    ///      while each node commits and reveals in its own transaction: 8 x 21,000 base gas plus
    ///      calldata.
    uint256 internal constant IMAGE_FULL_CEILING = 597_000;
    /// @dev Regression ceilings, transaction view (measured figure + about 3%).
    uint256 internal constant IMAGE_FULL_CEILING_TX = 778_000;
    uint256 internal constant TEXT_FULL_CEILING_TX = 815_000;
    uint256 internal constant HAMMING_GOAL = 150;
    /// @dev Regression ceilings of a sampled 1-image task, transaction view (measured figure + about
    ///      3%). The issue's goal for the unchecked task, 300,000 gas in transactions create to
    ///      settled, is not met: 482,280 measured (create 212,917, draw 107,363, commit 57,616,
    ///      reveal that settles 104,384), so it is not asserted.
    uint256 internal constant SAMPLED_UNCHECKED_CEILING_TX = 497_000;
    uint256 internal constant SAMPLED_CHECKED_CEILING_TX = 990_000;

    uint256 internal _sumTx;
    uint256 internal _sumExec;
    uint256 internal _lastTotalExec;

    function setUp() public override {
        super.setUp();
        _makeNodes(0, 9, H100);
        // Three concurrent tasks take all nine nodes, so every node does one task before measuring.
        uint256 a = _createImageTask();
        uint256 b = _createImageTask();
        uint256 c = _createImageTask();
        VM.assertEq(_ext().availableNodes(bytes32(0), 0), 0, "warm-up uses every node");
        _runHonestImageTask(a);
        _runHonestImageTask(b);
        _runHonestImageTask(c);
        VM.assertEq(_ext().availableNodes(bytes32(0), 0), 9, "all nodes back");
        // The image queue has been used before (its head/tail slot is nonzero); it is empty now.
        VM.assertEq(verinfer.queuedTasks(), 0);
        VM.warp(VM.getBlockTimestamp() + 1 hours);
        VM.roll(VM.getBlockNumber() + 100);
    }

    /// @dev Calldata gas of one transaction's input.
    function _calldataGas(bytes memory data) internal pure returns (uint256 g) {
        for (uint256 i; i < data.length; ++i) {
            g += data[i] == 0 ? 4 : 16;
        }
    }

    /// @dev Records the last call as `<name>_tx` (transaction gas) and `<name>` (execution only).
    function _record(string memory name, bytes memory data) internal returns (uint256 txGas) {
        txGas = VM.snapshotGasLastCall(string.concat(name, "_tx"));
        uint256 intrinsic = TX_BASE + _calldataGas(data);
        VM.assertGt(txGas, intrinsic, "isolated measurement includes the intrinsic gas");
        VM.snapshotValue(name, txGas - intrinsic);
        _sumTx += txGas;
        _sumExec += txGas - intrinsic;
    }

    /// @dev Adds the last call to the running sums without recording it (a step already recorded
    ///      under its own name by another measurement of the same test).
    function _count(bytes memory data) internal {
        uint256 txGas = VM.lastCallGas().gasTotalUsed;
        uint256 intrinsic = TX_BASE + _calldataGas(data);
        VM.assertGt(txGas, intrinsic, "isolated measurement includes the intrinsic gas");
        _sumTx += txGas;
        _sumExec += txGas - intrinsic;
    }

    /// @dev Records the sums of the steps recorded since the last total; keeps the execution sum in
    ///      `_lastTotalExec` (returning both overflows the measuring function's stack).
    function _recordTotal(string memory name) internal returns (uint256 totalTx) {
        _lastTotalExec = _sumExec;
        totalTx = _sumTx;
        VM.snapshotValue(name, _sumExec);
        VM.snapshotValue(string.concat(name, "_tx"), _sumTx);
        _sumTx = 0;
        _sumExec = 0;
    }

    /// @dev The next transaction is the first of a new block (a few seconds later).
    function _newBlock() internal {
        VM.roll(VM.getBlockNumber() + 1);
        VM.warp(VM.getBlockTimestamp() + 2);
    }

    /// @dev Creates a task in a new block, then draws it in the next one: `<prefix>_create` and
    ///      `<prefix>_draw`.
    function _createAndDraw(string memory prefix, IVerinfer.TaskKind kind, uint8 imageCount, string memory model)
        internal
        returns (uint256 taskId)
    {
        bytes32 argsHash = keccak256(abi.encode("gas", prefix));
        _newBlock();
        VM.prank(creator);
        taskId = verinfer.createTask(kind, argsHash, imageCount, 0, model, FEE);
        _record(
            string.concat(prefix, "_create"),
            abi.encodeCall(Verinfer.createTask, (kind, argsHash, imageCount, 0, model, FEE))
        );
        _assertStatus(taskId, IVerinfer.TaskStatus.Queued);
        _newBlock();
        verinfer.drawTasks();
        _record(string.concat(prefix, "_draw"), abi.encodeCall(Verinfer.drawTasks, ()));
    }

    /// @dev Create, draw, three commits, three reveals of one task, each step in a block of its own and
    ///      recorded as `<prefix>_<step>`.
    function _measureTask(string memory prefix, IVerinfer.TaskKind kind, uint8 imageCount, string memory model)
        internal
        returns (uint256 totalTx)
    {
        uint256 taskId = _createAndDraw(prefix, kind, imageCount, model);
        _assertStatus(taskId, IVerinfer.TaskStatus.Committing);

        address[3] memory nodes = _nodesOf(taskId);
        uint64[] memory h = _trueHashes(taskId, imageCount);
        bytes32 digest = _trueDigest(taskId);
        string[3] memory commitSteps = ["_commit_first", "_commit_second", "_commit_last_opens_reveal"];
        for (uint256 i; i < 3; ++i) {
            bytes32 salt = _salt(nodes[i], taskId);
            bytes32 c = kind == IMAGE
                ? _imageCommitment(taskId, nodes[i], h, salt)
                : _textCommitment(taskId, nodes[i], digest, salt);
            _newBlock();
            VM.prank(nodes[i]);
            verinfer.commit(taskId, c);
            _record(string.concat(prefix, commitSteps[i]), abi.encodeCall(Verinfer.commit, (taskId, c)));
        }
        _assertStatus(taskId, IVerinfer.TaskStatus.Revealing);

        string[3] memory revealSteps = ["_reveal_first", "_reveal_second", "_reveal_last_settles"];
        for (uint256 i; i < 3; ++i) {
            bytes32 salt = _salt(nodes[i], taskId);
            _newBlock();
            VM.prank(nodes[i]);
            bytes memory data;
            if (kind == IMAGE) {
                verinfer.revealImage(taskId, h, salt);
                data = abi.encodeCall(Verinfer.revealImage, (taskId, h, salt));
            } else {
                verinfer.revealText(taskId, digest, salt);
                data = abi.encodeCall(Verinfer.revealText, (taskId, digest, salt));
            }
            _record(string.concat(prefix, revealSteps[i]), data);
        }
        _assertStatus(taskId, IVerinfer.TaskStatus.Validated);
        totalTx = _recordTotal(string.concat(prefix, "_task_full"));
    }

    /// forge-config: default.isolate = true
    /// forge-config: ci.isolate = true
    function test_gas_imageTaskFull() public {
        uint256 totalTx = _measureTask("image", IMAGE, 1, "");
        VM.assertLe(_lastTotalExec, IMAGE_FULL_CEILING, "1-image task regressed (execution)");
        VM.assertLe(totalTx, IMAGE_FULL_CEILING_TX, "1-image task regressed (transaction view)");
    }

    /// forge-config: default.isolate = true
    /// forge-config: ci.isolate = true
    function test_gas_textTaskFull() public {
        uint256 totalTx = _measureTask("text", TEXT, 0, H100);
        VM.assertLe(totalTx, TEXT_FULL_CEILING_TX, "text task regressed (transaction view)");
    }

    /// @dev The largest image task. The warm-up tasks had one image, so three of the four result
    ///      words of each slate are written from zero here (as for a node's first 16-image task).
    /// forge-config: default.isolate = true
    /// forge-config: ci.isolate = true
    function test_gas_image16TaskFull() public {
        _measureTask("image16", IMAGE, 16, "");
    }

    /// @dev A task that cannot start (all nine nodes are busy with three other tasks): its create,
    ///      and the draw that finds no node for it and leaves it queued, which is what the first
    ///      caller of each block pays while it waits (the draw retries the queue head up to
    ///      `MAX_DRAW_ATTEMPTS` times).
    /// forge-config: default.isolate = true
    /// forge-config: ci.isolate = true
    function test_gas_imageCreateQueued() public {
        _createImageTask();
        _createImageTask();
        _createImageTask();
        VM.assertEq(_ext().availableNodes(bytes32(0), 0), 0, "every node busy");
        uint256 taskId = _createAndDraw("image_queued", IMAGE, 1, "");
        _assertStatus(taskId, IVerinfer.TaskStatus.Queued);
    }

    // ================================================================ sampled validation

    /// @dev A block hash that makes the sample draw of `taskId` come out `checked` (`samplingBps`
    ///      of the task's parameters; the default 10 % here).
    function _sampleHash(uint256 taskId, bool checked) internal view returns (bytes32 h) {
        uint256 p = _ext().taskParams(taskId).samplingBps;
        for (uint256 i;; ++i) {
            h = keccak256(abi.encode("gas-sample", i));
            if ((uint256(keccak256(abi.encode(h, taskId))) % BPS < p) == checked) return h;
        }
    }

    /// @dev The first part of a sampled 1-image task, common to both outcomes: create (queues), the
    ///      draw that starts it on one node, that node's commitment; then the sample block's hash is
    ///      set so that the draw says `checked`, and the chain moves to the block after it (the
    ///      first in which the sample can be decided). Recorded as `sampled_image_<step>` when
    ///      `record`, else only added to the sums.
    function _sampledStart(bool checked, bool record)
        internal
        returns (uint256 taskId, address first, uint64[] memory h)
    {
        bytes32 argsHash = keccak256(abi.encode("gas", "sampled_image"));
        _newBlock();
        VM.prank(creator);
        taskId = verinfer.createSampledTask(IMAGE, argsHash, 1, 0, "", FEE);
        bytes memory data = abi.encodeCall(Verinfer.createSampledTask, (IMAGE, argsHash, 1, 0, "", FEE));
        if (record) _record("sampled_image_create", data);
        else _count(data);
        _assertStatus(taskId, IVerinfer.TaskStatus.Queued);

        _newBlock();
        verinfer.drawTasks();
        data = abi.encodeCall(Verinfer.drawTasks, ());
        if (record) _record("sampled_image_draw", data);
        else _count(data);
        _assertStatus(taskId, IVerinfer.TaskStatus.Committing);
        address[3] memory nodes = _nodesOf(taskId);
        first = nodes[0];
        VM.assertTrue(first != address(0) && nodes[1] == address(0) && nodes[2] == address(0), "one node");

        h = _trueHashes(taskId, 1);
        bytes32 c = _imageCommitment(taskId, first, h, _salt(first, taskId));
        _newBlock();
        VM.prank(first);
        verinfer.commit(taskId, c);
        data = abi.encodeCall(Verinfer.commit, (taskId, c));
        if (record) _record("sampled_image_commit", data);
        else _count(data);
        _assertStatus(taskId, IVerinfer.TaskStatus.AwaitingSample);

        uint256 sampleBlock = _ext().getTask(taskId).sampleBlock;
        _newBlock();
        VM.assertEq(VM.getBlockNumber(), sampleBlock, "the sample block follows the commit");
        _newBlock();
        VM.setBlockhash(sampleBlock, _sampleHash(taskId, checked));
        (bool decidable, bool isChecked) = _ext().sampleDecision(taskId);
        VM.assertTrue(decidable, "decidable the block after the sample block");
        VM.assertEq(isChecked, checked, "sample outcome as set");
    }

    /// @dev An unchecked sampled 1-image task, create to settled: create, draw, commit, and the
    ///      first node's reveal, which runs the sample draw and settles (four transactions).
    function _measureSampledUnchecked() internal returns (uint256 totalTx) {
        (uint256 taskId, address first, uint64[] memory h) = _sampledStart(false, true);
        bytes32 salt = _salt(first, taskId);
        VM.prank(first);
        verinfer.revealImage(taskId, h, salt);
        _record("sampled_image_reveal_unchecked_settles", abi.encodeCall(Verinfer.revealImage, (taskId, h, salt)));
        _assertStatus(taskId, IVerinfer.TaskStatus.Validated);
        VM.assertFalse(_ext().getTask(taskId).checked, "unchecked");
        totalTx = _recordTotal("sampled_image_task_unchecked");
    }

    /// @dev A checked sampled 1-image task, create to settled: create, draw, commit (as unchecked,
    ///      added to the sums but not recorded again), `resolveSample` (the draw says checked: the
    ///      task joins the check queue), the draw that starts the two checkers, their two commits
    ///      (the last opens the reveals) and the three reveals (first node, then the checkers; the
    ///      last settles): ten transactions.
    function _measureSampledChecked() internal returns (uint256 totalTx) {
        (uint256 taskId, address first, uint64[] memory h) = _sampledStart(true, false);
        VM.prank(stranger);
        verinfer.resolveSample(taskId);
        _record("sampled_image_resolve_checked", abi.encodeCall(Verinfer.resolveSample, (taskId)));
        _assertStatus(taskId, IVerinfer.TaskStatus.CheckQueued);

        _newBlock();
        verinfer.drawTasks();
        _record("sampled_image_check_draw", abi.encodeCall(Verinfer.drawTasks, ()));
        _assertStatus(taskId, IVerinfer.TaskStatus.Committing);
        address[3] memory nodes = _nodesOf(taskId);
        VM.assertEq(nodes[0], first, "first node kept");
        VM.assertTrue(nodes[1] != first && nodes[2] != first && nodes[1] != nodes[2], "two other checkers");

        string[2] memory commitSteps = ["_check_commit_first", "_check_commit_last_opens_reveal"];
        for (uint256 i = 1; i < 3; ++i) {
            bytes32 c = _imageCommitment(taskId, nodes[i], h, _salt(nodes[i], taskId));
            _newBlock();
            VM.prank(nodes[i]);
            verinfer.commit(taskId, c);
            _record(string.concat("sampled_image", commitSteps[i - 1]), abi.encodeCall(Verinfer.commit, (taskId, c)));
        }
        _assertStatus(taskId, IVerinfer.TaskStatus.Revealing);

        string[3] memory revealSteps =
            ["_check_reveal_first_node", "_check_reveal_second", "_check_reveal_last_settles"];
        for (uint256 i; i < 3; ++i) {
            bytes32 salt = _salt(nodes[i], taskId);
            _newBlock();
            VM.prank(nodes[i]);
            verinfer.revealImage(taskId, h, salt);
            _record(
                string.concat("sampled_image", revealSteps[i]), abi.encodeCall(Verinfer.revealImage, (taskId, h, salt))
            );
        }
        _assertStatus(taskId, IVerinfer.TaskStatus.Validated);
        VM.assertTrue(_ext().getTask(taskId).checked, "checked");
        totalTx = _recordTotal("sampled_image_task_checked");
    }

    /// @dev One checked sampled 1-image task, unmeasured, so that the sampled task queue and the
    ///      check queue it uses have been used before (as `setUp` does for the full task queue):
    ///      the measurements then see the steady state, not the first sampled task of the network.
    function _warmUpSampled() internal {
        _newBlock();
        VM.prank(creator);
        uint256 taskId = verinfer.createSampledTask(IMAGE, keccak256("gas-sampled-warm-up"), 1, 0, "", FEE);
        _newBlock();
        verinfer.drawTasks();
        uint64[] memory h = _trueHashes(taskId, 1);
        _newBlock();
        _commitImage(taskId, _nodesOf(taskId)[0], h);
        uint256 sampleBlock = _ext().getTask(taskId).sampleBlock;
        _newBlock();
        _newBlock();
        VM.setBlockhash(sampleBlock, _sampleHash(taskId, true));
        verinfer.resolveSample(taskId);
        _newBlock();
        verinfer.drawTasks();
        address[3] memory nodes = _nodesOf(taskId);
        _newBlock();
        _commitImage(taskId, nodes[1], h);
        _commitImage(taskId, nodes[2], h);
        _newBlock();
        for (uint256 i; i < 3; ++i) {
            _revealImage(taskId, nodes[i], h);
        }
        _assertStatus(taskId, IVerinfer.TaskStatus.Validated);
        VM.assertEq(verinfer.queuedTasks(), 0);
        VM.warp(VM.getBlockTimestamp() + 1 hours);
        VM.roll(VM.getBlockNumber() + 100);
    }

    /// @dev A sampled 1-image task both ways from the same state (snapshot and revert in between),
    ///      and what a task costs on average at p = 1 %: unchecked + 1 % x (checked - unchecked).
    /// forge-config: default.isolate = true
    /// forge-config: ci.isolate = true
    function test_gas_imageTaskSampled() public {
        _warmUpSampled();
        uint256 state = VM.snapshotState();
        uint256 uncheckedTx = _measureSampledUnchecked();
        uint256 uncheckedExec = _lastTotalExec;
        VM.revertToState(state);
        uint256 checkedTx = _measureSampledChecked();
        uint256 checkedExec = _lastTotalExec;
        VM.snapshotValue("sampled_image_expected_per_task_p1pct", uncheckedExec + (checkedExec - uncheckedExec) / 100);
        VM.snapshotValue("sampled_image_expected_per_task_p1pct_tx", uncheckedTx + (checkedTx - uncheckedTx) / 100);
        VM.assertLe(uncheckedTx, SAMPLED_UNCHECKED_CEILING_TX, "unchecked sampled task regressed (transaction view)");
        VM.assertLe(checkedTx, SAMPLED_CHECKED_CEILING_TX, "checked sampled task regressed (transaction view)");
    }

    /// @dev Storage slots each step of a 1-image task touches (distinct slots of Verinfer; every
    ///      one is a cold access, 2,100 gas, in its own transaction): where the gas goes.
    function test_gas_imageTaskStorageAccesses() public {
        _newBlock();
        VM.record();
        uint256 taskId = _queueImageTask(1, 0, FEE);
        _snapshotAccesses("image_create");
        _newBlock();
        VM.record();
        verinfer.drawTasks();
        _snapshotAccesses("image_draw");
        address[3] memory nodes = _nodesOf(taskId);
        uint64[] memory h = _trueHashes(taskId, 1);
        _newBlock();
        VM.record();
        _commitImage(taskId, nodes[0], h);
        _snapshotAccesses("image_commit_first");
        _newBlock();
        _commitImage(taskId, nodes[1], h);
        _newBlock();
        VM.record();
        _commitImage(taskId, nodes[2], h);
        _snapshotAccesses("image_commit_last_opens_reveal");
        _newBlock();
        VM.record();
        _revealImage(taskId, nodes[0], h);
        _snapshotAccesses("image_reveal_first");
        _newBlock();
        _revealImage(taskId, nodes[1], h);
        _newBlock();
        VM.record();
        _revealImage(taskId, nodes[2], h);
        _snapshotAccesses("image_reveal_last_settles");
        _assertStatus(taskId, IVerinfer.TaskStatus.Validated);
    }

    function _snapshotAccesses(string memory step) internal {
        (bytes32[] memory reads, bytes32[] memory writes) = VM.accesses(address(verinfer));
        VM.snapshotValue(string.concat(step, "_slots_touched"), _distinct(reads, writes));
        VM.snapshotValue(string.concat(step, "_slots_written"), _distinct(writes, new bytes32[](0)));
    }

    function _distinct(bytes32[] memory a, bytes32[] memory b) internal pure returns (uint256 n) {
        bytes32[] memory seen = new bytes32[](a.length + b.length);
        for (uint256 i; i < a.length + b.length; ++i) {
            bytes32 x = i < a.length ? a[i] : b[i - a.length];
            bool dup;
            for (uint256 j; j < n && !dup; ++j) {
                dup = seen[j] == x;
            }
            if (!dup) seen[n++] = x;
        }
    }

    function test_gas_hammingDistance64() public {
        HammingGasProbe probe = new HammingGasProbe();
        (uint256 used, uint256 d) = probe.measure(0x0123456789abcdef, 0xfedcba9876543210);
        VM.assertEq(d, 64, "probe computes the distance");
        VM.snapshotValue("hamming_distance64", used);
        VM.assertLe(used, HAMMING_GOAL, "Hamming distance within 150 gas");
        (used, d) = probe.measure256(keccak256("a"), keccak256("b"));
        VM.assertEq(d, _naivePopcount(uint256(keccak256("a") ^ keccak256("b"))), "probe computes the distance");
        VM.snapshotValue("hamming_distance256", used);
    }
}

/// @notice Node selection cost against pool size, recorded in the GasTest group
///         (`snapshots/GasTest.json`): gas of the draw transaction (isolated, as above: `drawTasks`
///         in the block after the create) that selects three nodes of a text task's GPU model, when
///         that model has 10 available nodes and when it has 10,000; `_create` entries are the
///         createTask transactions before them. Both pools are real: every node joined through
///         `join` (in setUp, unmetered: 10,010 joins exceed the 2^30 test gas limit), and both
///         measurements start from the same state (snapshot and revert in between). Unlike GasTest
///         these are the first task after deployment (task counter, queues and the nodes' state
///         slots partly zero), so compare the two figures with each other, not with `image_draw`.
contract GasSelectionTest is VerinferTestBase {
    /// @dev Selection never iterates over members, but swap-and-pop does vary: a picked node that
    ///      is not its tier's last member moves the last one (one more member slot and one more
    ///      node record to update), which is likelier in a large pool. Bound for that spread.
    uint256 internal constant SELECTION_SPREAD = 15_000;

    function setUp() public override {
        super.setUp();
        VM.pauseGasMetering();
        for (uint256 i; i < 10; ++i) {
            _join(_nodeAddr(i), A100, MIN_STAKE);
        }
        for (uint256 i = 10; i < 10_010; ++i) {
            _join(_nodeAddr(i), H100, MIN_STAKE);
        }
        VM.resumeGasMetering();
        VM.assertEq(_ext().availableNodes(_ext().gpuModelId(A100), 0), 10, "A100 pool");
        VM.assertEq(_ext().availableNodes(_ext().gpuModelId(H100), 0), 10_000, "H100 pool");
        VM.warp(VM.getBlockTimestamp() + 1 hours);
        VM.roll(VM.getBlockNumber() + 100);
    }

    function _measureSelection(string memory model, string memory name) internal returns (uint256 txGas) {
        bytes32 argsHash = keccak256("select");
        VM.prank(creator);
        uint256 taskId = verinfer.createTask(TEXT, argsHash, 0, 0, model, FEE);
        VM.snapshotGasLastCall("GasTest", string.concat(name, "_create"));
        VM.roll(VM.getBlockNumber() + 1);
        verinfer.drawTasks();
        txGas = VM.snapshotGasLastCall("GasTest", name);
        _assertStatus(taskId, IVerinfer.TaskStatus.Committing);
        bytes32 modelId = _ext().gpuModelId(model);
        address[3] memory nodes = _nodesOf(taskId);
        for (uint256 i; i < 3; ++i) {
            VM.assertEq(_ext().getNode(nodes[i]).gpuModel, modelId, "node of the task's model");
        }
    }

    /// forge-config: default.isolate = true
    /// forge-config: ci.isolate = true
    function test_gas_selectionFlatInNodeCount() public {
        uint256 state = VM.snapshotState();
        uint256 small = _measureSelection(A100, "select_3_of_10_nodes");
        VM.revertToState(state);
        uint256 large = _measureSelection(H100, "select_3_of_10000_nodes");
        uint256 spread = large > small ? large - small : small - large;
        VM.assertLe(spread, SELECTION_SPREAD, "selection flat in node count");
    }
}
