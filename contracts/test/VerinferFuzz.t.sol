// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IVerinfer} from "../src/interfaces/IVerinfer.sol";
import {VM} from "./Vm.sol";
import {VerinferTestBase} from "./utils/VerinferTestBase.sol";

/// @notice Property tests of commit-reveal binding, the image verdict against random thresholds,
///         the parameter rule, the fee split and the VRAM requirement.
contract VerinferFuzzTest is VerinferTestBase {
    function _randomHashes(bytes32 seed, uint256 count) internal pure returns (uint64[] memory h) {
        h = new uint64[](count);
        for (uint256 i; i < count; ++i) {
            h[i] = uint64(uint256(keccak256(abi.encode(seed, i))));
        }
    }

    // ================================================================ commit-reveal binding

    /// @dev Node 0 commits correctly: a changed result or salt fails, the correct reveal succeeds.
    ///      Node 1 committed for another task id and node 2 under node 0's address: their
    ///      otherwise correct reveals fail.
    function testFuzz_CommitReveal_Image(bytes32 seed, bytes32 salt, uint8 imageCount, uint256 tweak) public {
        uint256 count = _bound(imageCount, 1, 16);
        _makeNodes(0, 3, H100, VRAM_80G);
        uint256 taskId = _createImageTask(uint8(count), 0, FEE);
        address[3] memory n = _nodesOf(taskId);
        uint64[] memory r = _randomHashes(seed, count);
        uint256 otherTask = taskId + 1 + (tweak % 1000);

        VM.prank(n[0]);
        verinfer.commit(taskId, _imageCommitment(taskId, n[0], r, salt));
        VM.prank(n[1]);
        verinfer.commit(taskId, _imageCommitment(otherTask, n[1], r, salt));
        VM.prank(n[2]);
        verinfer.commit(taskId, _imageCommitment(taskId, n[0], r, salt));

        uint64[] memory changed = _randomHashes(seed, count);
        uint256 image = tweak % count;
        changed[image] ^= uint64(uint256(1) << ((tweak >> 8) % 64));
        bytes memory mismatch0 = abi.encodeWithSelector(IVerinfer.CommitmentMismatch.selector, taskId, n[0]);
        VM.prank(n[0]);
        VM.expectRevert(mismatch0);
        verinfer.revealImage(taskId, changed, salt);
        VM.prank(n[0]);
        VM.expectRevert(mismatch0);
        verinfer.revealImage(taskId, r, salt ^ bytes32(uint256(1) << ((tweak >> 16) % 256)));
        VM.prank(n[1]);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.CommitmentMismatch.selector, taskId, n[1]));
        verinfer.revealImage(taskId, r, salt);
        VM.prank(n[2]);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.CommitmentMismatch.selector, taskId, n[2]));
        verinfer.revealImage(taskId, r, salt);

        VM.prank(n[0]);
        verinfer.revealImage(taskId, r, salt);
        VM.assertEq(verinfer.getTask(taskId).revealedMask, 1);
    }

    function testFuzz_CommitReveal_Text(bytes32 digest, bytes32 salt, uint256 tweak) public {
        _makeNodes(0, 3, H100, VRAM_80G);
        uint256 taskId = _createTextTask(H100, 0, FEE);
        address[3] memory n = _nodesOf(taskId);
        uint256 otherTask = taskId + 1 + (tweak % 1000);
        VM.prank(n[0]);
        verinfer.commit(taskId, _textCommitment(taskId, n[0], digest, salt));
        VM.prank(n[1]);
        verinfer.commit(taskId, _textCommitment(otherTask, n[1], digest, salt));
        VM.prank(n[2]);
        verinfer.commit(taskId, _textCommitment(taskId, n[0], digest, salt));

        bytes memory mismatch0 = abi.encodeWithSelector(IVerinfer.CommitmentMismatch.selector, taskId, n[0]);
        VM.prank(n[0]);
        VM.expectRevert(mismatch0);
        verinfer.revealText(taskId, digest ^ bytes32(uint256(1) << (tweak % 256)), salt);
        VM.prank(n[0]);
        VM.expectRevert(mismatch0);
        verinfer.revealText(taskId, digest, salt ^ bytes32(uint256(1) << ((tweak >> 8) % 256)));
        VM.prank(n[1]);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.CommitmentMismatch.selector, taskId, n[1]));
        verinfer.revealText(taskId, digest, salt);
        VM.prank(n[2]);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.CommitmentMismatch.selector, taskId, n[2]));
        verinfer.revealText(taskId, digest, salt);

        VM.prank(n[0]);
        verinfer.revealText(taskId, digest, salt);
        VM.assertEq(verinfer.getTask(taskId).revealedMask, 1);
    }

    // ================================================================ verdict against the threshold

    struct Verdict {
        uint256 count;
        uint8 agreeing;
        uint16[] distances;
    }

    /// @dev Reference verdict: pair (a, b) agrees iff every per-image distance is <= threshold.
    function _referenceVerdict(uint64[][3] memory r, uint256 threshold) internal pure returns (Verdict memory v) {
        v.count = r[0].length;
        v.distances = new uint16[](3 * v.count);
        for (uint256 p; p < 3; ++p) {
            (uint256 a, uint256 b) = p == 0 ? (0, 1) : (p == 1 ? (0, 2) : (1, 2));
            bool agree = true;
            for (uint256 k; k < v.count; ++k) {
                uint256 d = _naiveDistance64(r[a][k], r[b][k]);
                v.distances[p * v.count + k] = uint16(d);
                if (d > threshold) agree = false;
            }
            if (agree) v.agreeing |= uint8((1 << a) | (1 << b));
        }
    }

    /// @dev Three results around one base, each image perturbed by a random mask whose density the
    ///      fuzzer picks (1/2 .. 1/32 of the bits), so that distances fall on both sides of the
    ///      threshold; the reported distances, agreeing mask, outcome and slashes match the reference.
    function testFuzz_ThresholdVerdict(uint8 threshold, uint8 imageCount, bytes32 seed, uint8 density) public {
        uint256 t = _bound(threshold, 0, 64);
        uint256 count = _bound(imageCount, 1, 16);
        VM.prank(owner);
        verinfer.setValidationParams(uint8(t), MIN_STAKE, MIN_STAKE / 64);
        _makeNodes(0, 3, H100, VRAM_80G);
        uint256 taskId = _createImageTask(uint8(count), 0, FEE);

        uint64[] memory base = _randomHashes(seed, count);
        uint64[][3] memory r;
        uint256 ands = 1 + (density % 5);
        for (uint256 i; i < 3; ++i) {
            r[i] = new uint64[](count);
            for (uint256 k; k < count; ++k) {
                uint64 mask = type(uint64).max;
                for (uint256 j; j < ands; ++j) {
                    mask &= uint64(uint256(keccak256(abi.encode(seed, i, k, j))));
                }
                r[i][k] = base[k] ^ mask;
            }
        }
        Verdict memory expected = _referenceVerdict(r, t);

        VM.recordLogs();
        _runImageTask(taskId, r);
        Settled memory s = _findSettled(VM.getRecordedLogs(), taskId);
        VM.assertTrue(s.found, "settled");
        _assertDistances(s.distances, expected.distances);
        VM.assertEq(s.agreeingMask, expected.agreeing, "agreeing mask");
        VM.assertEq(s.threshold, t);
        IVerinfer.TaskStatus outcome =
            expected.agreeing == 0 ? IVerinfer.TaskStatus.Aborted : IVerinfer.TaskStatus.Validated;
        VM.assertEq(uint256(s.outcome), uint256(outcome), "outcome");
        address[3] memory n = _nodesOf(taskId);
        for (uint256 i; i < 3; ++i) {
            bool slashed = outcome == IVerinfer.TaskStatus.Validated && (expected.agreeing >> i) & 1 == 0;
            VM.assertEq(_stateOf(n[i]) == IVerinfer.NodeState.Kicked, slashed, "slashed iff outvoted");
        }
    }

    // ================================================================ parameter rule

    function testFuzz_SetValidationParams(uint8 threshold, uint96 minStake, uint96 perBit) public {
        bytes memory expectedError;
        if (threshold > 64) {
            expectedError = abi.encodeWithSelector(IVerinfer.ThresholdTooHigh.selector, threshold, uint8(64));
        } else if (minStake == 0) {
            expectedError = abi.encodeWithSelector(IVerinfer.ZeroAmount.selector);
        } else if (uint256(minStake) < uint256(perBit) * threshold) {
            expectedError =
                abi.encodeWithSelector(IVerinfer.StakeTooLowForThreshold.selector, minStake, perBit, threshold);
        }
        VM.prank(owner);
        if (expectedError.length != 0) {
            VM.expectRevert(expectedError);
            verinfer.setValidationParams(threshold, minStake, perBit);
            VM.assertEq(verinfer.threshold(), THRESHOLD, "unchanged");
            VM.assertEq(verinfer.minStake(), MIN_STAKE, "unchanged");
        } else {
            verinfer.setValidationParams(threshold, minStake, perBit);
            (uint8 t, uint96 m, uint96 p,,,,) = verinfer.params();
            VM.assertEq(t, threshold);
            VM.assertEq(m, minStake);
            VM.assertEq(p, perBit);
        }
        // Whatever happened, the rule holds.
        (uint8 t2, uint96 m2, uint96 p2,,,,) = verinfer.params();
        VM.assertGe(m2, uint256(p2) * t2, "minStake >= stakePerThresholdBit * threshold");
    }

    /// @dev Near the boundary: exactly on it passes, one below fails.
    function testFuzz_SetValidationParams_Boundary(uint8 threshold, uint96 perBit) public {
        uint256 t = _bound(threshold, 1, 64);
        uint256 p = _bound(perBit, 2, type(uint96).max / 64); // one below the boundary stays nonzero
        uint96 onBoundary = uint96(p * t);
        VM.startPrank(owner);
        verinfer.setValidationParams(uint8(t), onBoundary, uint96(p));
        VM.expectRevert(
            abi.encodeWithSelector(IVerinfer.StakeTooLowForThreshold.selector, onBoundary - 1, uint96(p), uint8(t))
        );
        verinfer.setValidationParams(uint8(t), onBoundary - 1, uint96(p));
        VM.stopPrank();
    }

    // ================================================================ fee split

    /// @dev The fee is fully accounted for: rewards to the agreeing nodes plus the treasury's share
    ///      (protocol fee and dust) equal it, and the contract's balance covers exactly stakes and
    ///      treasury afterwards.
    function testFuzz_FeeSplitConservesTheFee(uint96 fee, uint16 feeBps, bool twoAgree) public {
        fee = uint96(_bound(fee, 0, 1e30));
        feeBps = uint16(_bound(feeBps, 0, BPS));
        VM.prank(owner);
        verinfer.setProtocolFee(feeBps);
        _fund(creator, fee);
        _makeNodes(0, 3, H100, VRAM_80G);
        uint256 taskId = _createImageTask(1, 0, fee);
        address[3] memory n = _nodesOf(taskId);
        uint64[] memory good = _hashes(123);
        uint64[] memory bad = twoAgree ? _hashes(~uint64(123)) : good;
        _runImageTask(taskId, [good, good, bad]);

        uint256 payees = twoAgree ? 2 : 3;
        uint256 reward = (fee - (uint256(fee) * feeBps) / BPS) / payees;
        uint256 slashed = twoAgree ? (uint256(MIN_STAKE) * SLASH_BPS) / BPS : 0;
        VM.assertEq(_stakeOf(n[0]), MIN_STAKE + reward);
        VM.assertEq(_stakeOf(n[1]), MIN_STAKE + reward);
        VM.assertEq(verinfer.treasuryBalance(), fee - reward * payees + slashed, "treasury share");
        VM.assertLe(fee - reward * payees - (uint256(fee) * feeBps) / BPS, payees - 1, "dust below one wei per payee");
        uint256 stakes = uint256(_stakeOf(n[0])) + _stakeOf(n[1]) + _stakeOf(n[2]);
        VM.assertEq(token.balanceOf(address(verinfer)), stakes + verinfer.treasuryBalance(), "accounting");
    }

    // ================================================================ VRAM requirement

    /// @dev A node is offered a task only if it has at least the task's VRAM (safe), and always if
    ///      it has twice as much (the tier rounding costs at most a factor of two).
    function testFuzz_VramRequirementIsSafeAndAtMostTwofoldConservative(uint32 vram, uint32 minVram) public {
        vram = uint32(_bound(vram, verinfer.MIN_NODE_VRAM_MIB(), verinfer.MAX_NODE_VRAM_MIB()));
        minVram = uint32(_bound(minVram, 0, verinfer.MAX_TASK_VRAM_MIB()));
        _join(_nodeAddr(0), H100, vram, MIN_STAKE);
        bool offered = verinfer.availableNodes(bytes32(0), minVram) == 1;
        if (offered) VM.assertGe(vram, minVram, "offered only with enough VRAM");
        if (uint256(vram) >= 2 * uint256(minVram)) VM.assertTrue(offered, "offered with twice the VRAM");
    }
}
