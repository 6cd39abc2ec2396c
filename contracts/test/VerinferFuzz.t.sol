// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IVerinfer} from "../src/interfaces/IVerinfer.sol";
import {VerinferExtension} from "../src/VerinferExtension.sol";
import {VM} from "./Vm.sol";
import {VerinferTestBase} from "./utils/VerinferTestBase.sol";

/// @notice Property tests of commit-reveal binding, the image verdict against random thresholds,
///         the parameter rule, the fee split (and the slash reward split), fee levels and the VRAM
///         requirement.
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
        _makeNodes(0, 3, H100);
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
        VM.assertEq(_ext().getTask(taskId).revealedMask, 1);
    }

    function testFuzz_CommitReveal_Text(bytes32 digest, bytes32 salt, uint256 tweak) public {
        _makeNodes(0, 3, H100);
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
        VM.assertEq(_ext().getTask(taskId).revealedMask, 1);
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
        IVerinfer.Params memory p = defaultParams();
        p.threshold = uint8(t);
        p.stakePerThresholdBit = MIN_STAKE / 64;
        _setParams(p);
        _makeNodes(0, 3, H100);
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

    /// @dev Any (threshold, minStake, stakePerThresholdBit) is scheduled iff it satisfies the rule;
    ///      whatever happens, the parameters in force afterwards satisfy it.
    function testFuzz_ScheduleParams_StakeRule(uint8 threshold, uint96 minStake, uint96 perBit) public {
        IVerinfer.Params memory p = defaultParams();
        (p.threshold, p.minStake, p.stakePerThresholdBit) = (threshold, minStake, perBit);
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
            _ext().scheduleParams(p);
            (uint24 pending,,) = _ext().scheduledParams();
            VM.assertEq(pending, 0, "nothing scheduled");
        } else {
            _ext().scheduleParams(p);
            (uint24 pending, IVerinfer.Params memory scheduled,) = _ext().scheduledParams();
            VM.assertEq(pending, 2);
            VM.assertEq(keccak256(abi.encode(scheduled)), keccak256(abi.encode(p)), "scheduled as given");
        }
        // Whatever happened, the rule holds for the parameters in force once the delay has passed.
        VM.warp(VM.getBlockTimestamp() + PARAMS_DELAY);
        IVerinfer.Params memory now_ = _ext().params();
        VM.assertEq(now_.threshold, expectedError.length == 0 ? threshold : THRESHOLD);
        VM.assertGe(
            now_.minStake, uint256(now_.stakePerThresholdBit) * now_.threshold, "minStake >= perBit * threshold"
        );
    }

    /// @dev Near the boundary: exactly on it passes, one below fails.
    function testFuzz_ScheduleParams_Boundary(uint8 threshold, uint96 perBit) public {
        uint256 t = _bound(threshold, 1, 64);
        uint256 pb = _bound(perBit, 2, type(uint96).max / 64); // one below the boundary stays nonzero
        IVerinfer.Params memory p = defaultParams();
        (p.threshold, p.minStake, p.stakePerThresholdBit) = (uint8(t), uint96(pb * t), uint96(pb));
        VM.startPrank(owner);
        _ext().scheduleParams(p);
        p.minStake -= 1;
        VM.expectRevert(
            abi.encodeWithSelector(IVerinfer.StakeTooLowForThreshold.selector, p.minStake, uint96(pb), uint8(t))
        );
        _ext().scheduleParams(p);
        VM.stopPrank();
    }

    // ================================================================ fee split

    /// @dev The fee and the slash are fully accounted for: rewards to the agreeing nodes plus the
    ///      treasury's share (protocol fee and dust) equal the fee; the slash reward credited to the
    ///      agreeing nodes plus the treasury's part equal the slash; the contract's balance covers
    ///      exactly stakes, credits and treasury afterwards.
    function testFuzz_FeeSplitConservesTheFee(uint96 fee, uint16 feeBps, uint16 rewardBps, bool twoAgree) public {
        fee = uint96(_bound(fee, MIN_TASK_FEE + MIN_IMAGE_FEE, 1e30));
        IVerinfer.Params memory p = defaultParams();
        p.protocolFeeBps = uint16(_bound(feeBps, 0, BPS));
        p.slashRewardBps = uint16(_bound(rewardBps, 0, BPS));
        _setParams(p);
        _fund(creator, fee);
        _makeNodes(0, 3, H100);
        uint256 taskId = _createImageTask(1, 0, fee);
        address[3] memory n = _nodesOf(taskId);
        uint64[] memory good = _hashes(123);
        uint64[] memory bad = twoAgree ? _hashes(~uint64(123)) : good;
        _runImageTask(taskId, [good, good, bad]);

        uint256 payees = twoAgree ? 2 : 3;
        uint256 reward = (fee - (uint256(fee) * p.protocolFeeBps) / BPS) / payees;
        uint256 slashed = twoAgree ? (uint256(MIN_STAKE) * SLASH_BPS) / BPS : 0;
        uint256 each = (slashed * p.slashRewardBps) / BPS / payees;
        VM.assertEq(_stakeOf(n[0]), MIN_STAKE + reward);
        VM.assertEq(_stakeOf(n[1]), MIN_STAKE + reward);
        VM.assertEq(verinfer.claimable(n[0]), each, "slash reward share");
        VM.assertEq(verinfer.claimable(n[1]), each, "slash reward share");
        VM.assertEq(verinfer.claimable(n[2]), twoAgree ? MIN_STAKE - slashed : 0, "rest of the slashed stake");
        VM.assertEq(verinfer.treasuryBalance(), fee - reward * payees + slashed - each * payees, "treasury share");
        VM.assertLe(
            fee - reward * payees - (uint256(fee) * p.protocolFeeBps) / BPS, payees - 1, "dust below one wei per payee"
        );
        _assertTokenAccounting();
    }

    // ================================================================ fee levels

    /// @dev A task's fee level is the highest tier t <= 7 with fee >= 2^t times its minimum.
    function testFuzz_FeeLevel(uint96 fee, uint8 imageCount, bool text) public {
        uint8 count = text ? 0 : uint8(_bound(imageCount, 1, 16));
        uint256 minimum = _ext().minTaskFee(text ? TEXT : IMAGE, count);
        fee = uint96(_bound(fee, minimum, 1000 * minimum));
        _fund(creator, fee);
        uint256 taskId = text ? _queueTextTask(H100, 0, fee) : _queueImageTask(count, 0, fee);
        uint8 level = _ext().getTask(taskId).feeLevel;
        VM.assertEq(level, _feeLevel(fee, minimum));
        VM.assertGe(fee, minimum << level, "the fee pays for its level");
        if (level < 7) VM.assertLt(fee, minimum << (level + 1), "and not for the next");
    }

    // ================================================================ VRAM requirement

    /// @dev VRAM comes from the registry and is matched exactly: a node of a model with `vram` MiB is
    ///      offered a task iff the task needs at most `vram`; an image task needing more than every
    ///      registered model has cannot be created.
    function testFuzz_VramRequirementIsExact(uint32 vram, uint32 minVram) public {
        vram = uint32(_bound(vram, verinfer.MIN_GPU_VRAM_MIB(), verinfer.MAX_GPU_VRAM_MIB()));
        minVram = uint32(_bound(minVram, 0, verinfer.MAX_GPU_VRAM_MIB()));
        VM.prank(owner);
        _ext().addGpuModel("fuzz gpu", vram);
        _join(_nodeAddr(0), "fuzz gpu", MIN_STAKE);
        VM.assertEq(_ext().availableNodes(bytes32(0), minVram) == 1, vram >= minVram, "offered iff enough VRAM");
        uint32 largest = vram > VRAM_80G ? vram : VRAM_80G;
        VM.prank(creator);
        if (minVram > largest) {
            VM.expectRevert(abi.encodeWithSelector(IVerinfer.NoGpuModelFits.selector, minVram));
            verinfer.createTask(IMAGE, keccak256("v"), 1, minVram, "", FEE);
        } else {
            verinfer.createTask(IMAGE, keccak256("v"), 1, minVram, "", FEE);
        }
    }
}
