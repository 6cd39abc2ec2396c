// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Verinfer} from "../src/Verinfer.sol";
import {IVerinfer} from "../src/interfaces/IVerinfer.sol";
import {VM} from "./Vm.sol";
import {VerinferTestBase} from "./utils/VerinferTestBase.sol";

/// @notice The gas a commit or reveal needs beyond its own estimate when another node's transaction
///         lands first. A node estimates its reveal while other reveals are missing, so the estimate
///         is for a reveal that does not settle; if the others land first (in an earlier block, or
///         earlier in the same one), its reveal is the last and settles the task: compares every
///         pair, pays, slashes and kicks, credits, releases nodes to their pools. A commit that
///         turns out to be the last opens the reveal phase. The node's gas limit adds these bounds
///         (`verinfer_abi::SETTLE_HEADROOM`, `LAST_COMMIT_HEADROOM`, which must equal the constants
///         below: a Rust test compares them) to the estimate, so that whoever ends up last does not
///         run out of gas.
///
///         Each figure is the least gas limit with which the transaction succeeds, found by
///         bisection, every attempt a transaction of its own (`isolate`), cold as on chain: the
///         worst case over the settlement's paths with the most work (16 images, a disagreeing
///         node slashed and kicked, leaving nodes paid out) minus the same transaction when it does
///         not settle.
contract GasHeadroomTest is VerinferTestBase {
    /// @dev Must equal `verinfer_abi::SETTLE_HEADROOM` (abi/src/lib.rs). Measured worst case:
    ///      251,227 (the last reveal of a 16-image task disagrees: slashed and kicked), snapshot
    ///      `snapshots/GasHeadroomTest.json`.
    uint256 internal constant SETTLE_HEADROOM = 300_000;
    /// @dev Must equal `verinfer_abi::LAST_COMMIT_HEADROOM` (abi/src/lib.rs). Measured: 7,919.
    uint256 internal constant LAST_COMMIT_HEADROOM = 10_000;

    uint8 internal constant MAX_IMAGES = 16;

    function setUp() public override {
        super.setUp();
        _makeNodes(0, 3, H100);
        // Steady state: the nodes have done a task before (their slates and pool slots are nonzero).
        _runHonestImageTask(_createImageTask());
        _nextBlock();
    }

    /// @dev The least gas limit with which `from` calling the contract with `data` succeeds; the
    ///      state is left as before the search.
    function _minGas(address from, bytes memory data) internal returns (uint256 lo) {
        lo = 21_000;
        uint256 hi = 5_000_000;
        while (lo < hi) {
            uint256 mid = (lo + hi) / 2;
            uint256 snapshot = VM.snapshotState();
            VM.prank(from);
            (bool ok,) = address(verinfer).call{gas: mid}(data);
            VM.revertToState(snapshot);
            if (ok) hi = mid;
            else lo = mid + 1;
        }
    }

    function _revealData(uint256 taskId, address node, uint64[] memory h) internal pure returns (bytes memory) {
        return abi.encodeCall(Verinfer.revealImage, (taskId, h, _salt(node, taskId)));
    }

    /// @dev A 16-image task with all three nodes committed (`results[i]`) and the first revealed;
    ///      `leaving` nodes called `leave` while it ran.
    function _imageTaskAwaitingTwoReveals(uint64[][3] memory results, bool leaving)
        internal
        returns (uint256 taskId, address[3] memory nodes)
    {
        taskId = _createImageTask(MAX_IMAGES, 0, FEE);
        nodes = _nodesOf(taskId);
        for (uint256 i; i < 3; ++i) {
            _commitImage(taskId, nodes[i], results[i]);
        }
        if (leaving) {
            for (uint256 i; i < 3; ++i) {
                VM.prank(nodes[i]);
                verinfer.leave();
            }
        }
        _nextBlock();
        _revealImage(taskId, nodes[0], results[0]);
        _nextBlock();
    }

    /// @dev Extra gas of the last reveal over the second one in a 16-image task.
    function _settleExtra(uint64[][3] memory results, bool leaving) internal returns (uint256 extra) {
        (uint256 taskId, address[3] memory nodes) = _imageTaskAwaitingTwoReveals(results, leaving);
        uint256 second = _minGas(nodes[1], _revealData(taskId, nodes[1], results[1]));
        _revealImage(taskId, nodes[1], results[1]);
        _nextBlock();
        uint256 last = _minGas(nodes[2], _revealData(taskId, nodes[2], results[2]));
        _revealImage(taskId, nodes[2], results[2]);
        VM.assertTrue(_status(taskId) != IVerinfer.TaskStatus.Revealing, "the last reveal settled");
        VM.snapshotValue("reveal_16_images_not_settling_min_gas", second);
        extra = last > second ? last - second : 0;
        VM.assertLe(extra, SETTLE_HEADROOM, "SETTLE_HEADROOM covers a reveal that settles");
    }

    /// forge-config: default.isolate = true
    /// forge-config: ci.isolate = true
    function test_settleHeadroom_allAgree() public {
        uint64[] memory h = _trueHashes(1, MAX_IMAGES);
        VM.snapshotValue("settle_extra_all_agree", _settleExtra([h, h, h], false));
    }

    /// forge-config: default.isolate = true
    /// forge-config: ci.isolate = true
    function test_settleHeadroom_lastDisagreesSlashedAndKicked() public {
        uint64[] memory h = _trueHashes(1, MAX_IMAGES);
        uint64[] memory bad = new uint64[](MAX_IMAGES);
        for (uint256 i; i < MAX_IMAGES; ++i) {
            bad[i] = ~h[i];
        }
        uint256 extra = _settleExtra([h, h, bad], false);
        VM.snapshotValue("settle_extra_disagree_kicked", extra);
    }

    /// forge-config: default.isolate = true
    /// forge-config: ci.isolate = true
    function test_settleHeadroom_leavingNodesPaidOutAndOneKicked() public {
        uint64[] memory h = _trueHashes(1, MAX_IMAGES);
        uint64[] memory bad = new uint64[](MAX_IMAGES);
        for (uint256 i; i < MAX_IMAGES; ++i) {
            bad[i] = ~h[i];
        }
        uint256 extra = _settleExtra([h, h, bad], true);
        VM.snapshotValue("settle_extra_leaving_and_kicked", extra);
    }

    /// forge-config: default.isolate = true
    /// forge-config: ci.isolate = true
    function test_lastCommitHeadroom() public {
        uint256 taskId = _createImageTask(MAX_IMAGES, 0, FEE);
        address[3] memory nodes = _nodesOf(taskId);
        uint64[] memory h = _trueHashes(taskId, MAX_IMAGES);
        _commitImage(taskId, nodes[0], h);
        _nextBlock();
        bytes32 c1 = _imageCommitment(taskId, nodes[1], h, _salt(nodes[1], taskId));
        uint256 second = _minGas(nodes[1], abi.encodeCall(Verinfer.commit, (taskId, c1)));
        _commitImage(taskId, nodes[1], h);
        _nextBlock();
        bytes32 c2 = _imageCommitment(taskId, nodes[2], h, _salt(nodes[2], taskId));
        uint256 last = _minGas(nodes[2], abi.encodeCall(Verinfer.commit, (taskId, c2)));
        _commitImage(taskId, nodes[2], h);
        _assertStatus(taskId, IVerinfer.TaskStatus.Revealing);
        uint256 extra = last > second ? last - second : 0;
        VM.snapshotValue("last_commit_extra", extra);
        VM.assertLe(extra, LAST_COMMIT_HEADROOM, "LAST_COMMIT_HEADROOM covers the commit that opens the reveal phase");
    }
}
