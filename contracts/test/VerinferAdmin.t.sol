// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

import {Verinfer} from "../src/Verinfer.sol";
import {IVerinfer} from "../src/interfaces/IVerinfer.sol";
import {VerinferExtension} from "../src/VerinferExtension.sol";
import {GpuModels} from "../src/libraries/GpuModels.sol";
import {VM, Vm} from "./Vm.sol";
import {VerinferTestBase} from "./utils/VerinferTestBase.sol";

/// @notice Owner-only actions: scheduled parameter versions, the GPU registry, the treasury, and
///         two-step ownership (which cannot be renounced).
contract VerinferAdminTest is VerinferTestBase {
    function _unauthorized(address who) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, who);
    }

    function _hash(IVerinfer.Params memory p) internal pure returns (bytes32) {
        return keccak256(abi.encode(p));
    }

    function test_OwnerOnly_AllSettersRevertForOthers() public {
        IVerinfer.Params memory p = defaultParams();
        bytes32 h100 = _ext().gpuModelId(H100);
        VM.startPrank(stranger);
        VM.expectRevert(_unauthorized(stranger));
        _ext().scheduleParams(p);
        VM.expectRevert(_unauthorized(stranger));
        _ext().cancelScheduledParams();
        VM.expectRevert(_unauthorized(stranger));
        _ext().addGpuModel("NVIDIA B200", 184_320);
        VM.expectRevert(_unauthorized(stranger));
        _ext().setGpuModelActive(h100, false);
        VM.expectRevert(_unauthorized(stranger));
        verinfer.setTreasury(stranger);
        VM.expectRevert(_unauthorized(stranger));
        verinfer.transferOwnership(stranger);
        VM.expectRevert(_unauthorized(stranger));
        verinfer.renounceOwnership();
        VM.stopPrank();
        // The treasury is not the owner either.
        VM.prank(treasury);
        VM.expectRevert(_unauthorized(treasury));
        _ext().scheduleParams(p);
    }

    // ================================================================ scheduled parameters

    function test_ScheduleParams_TakesEffectAfterTheDelay() public {
        IVerinfer.Params memory old = defaultParams();
        IVerinfer.Params memory p = defaultParams();
        p.threshold = 12;
        p.minStake = 2400 ether;
        p.stakePerThresholdBit = 200 ether;
        p.commitWindow = 60;
        uint40 at = uint40(VM.getBlockTimestamp() + PARAMS_DELAY);

        VM.expectEmit(address(verinfer));
        emit IVerinfer.ParamsScheduled(2, p, at);
        VM.prank(owner);
        _ext().scheduleParams(p);

        (uint24 version, IVerinfer.Params memory pending, uint40 effectiveAt) = _ext().scheduledParams();
        VM.assertEq(version, 2);
        VM.assertEq(_hash(pending), _hash(p));
        VM.assertEq(effectiveAt, at);
        VM.assertEq(_ext().paramsVersion(), 1, "not yet");
        VM.assertEq(_hash(_ext().params()), _hash(old));
        VM.assertEq(_hash(_ext().paramsAt(2)), _hash(p));

        VM.warp(at - 1);
        VM.assertEq(_ext().paramsVersion(), 1, "one second early");
        VM.warp(at);
        VM.assertEq(_ext().paramsVersion(), 2, "in force once its time has come");
        VM.assertEq(_hash(_ext().params()), _hash(p));
        (version,,) = _ext().scheduledParams();
        VM.assertEq(version, 0, "no longer pending");
        VM.assertEq(_hash(_ext().paramsAt(1)), _hash(old), "older versions stay readable");

        // The first call of a later block activates it.
        _nextBlock();
        VM.expectEmit(address(verinfer));
        emit IVerinfer.ParamsActivated(2);
        verinfer.drawTasks();
        VM.assertEq(_ext().paramsVersion(), 2);
        uint256 taskId = _queueImageTask(1, 0, FEE);
        VM.assertEq(_ext().getTask(taskId).paramsVersion, 2, "new tasks run under it");
        VM.assertEq(_ext().taskParams(taskId).commitWindow, 60);
    }

    function test_ScheduleParams_MinimumsApplyOnceInForce() public {
        IVerinfer.Params memory p = defaultParams();
        p.minStake = 2 * MIN_STAKE;
        p.minTaskFee = 5 ether;
        _setParams(p);
        address node = _nodeAddr(0);
        _fund(node, MIN_STAKE);
        VM.prank(node);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.StakeBelowMinimum.selector, MIN_STAKE, 2 * MIN_STAKE));
        verinfer.join(H100, 0, MIN_STAKE);
        VM.assertEq(_ext().minTaskFee(TEXT, 0), 5 ether);
        VM.prank(creator);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.FeeBelowMinimum.selector, uint96(4 ether), uint96(5 ether)));
        verinfer.createTask(TEXT, keccak256("t"), 0, 0, H100, 4 ether);
    }

    /// @dev `minStake >= stakePerThresholdBit * threshold`: raising the threshold alone, or
    ///      lowering the minimum stake alone, breaks it and reverts.
    function test_ScheduleParams_EnforcesStakeRule() public {
        IVerinfer.Params memory p = defaultParams();
        VM.startPrank(owner);
        p.threshold = 11;
        VM.expectRevert(
            abi.encodeWithSelector(IVerinfer.StakeTooLowForThreshold.selector, MIN_STAKE, STAKE_PER_BIT, uint8(11))
        );
        _ext().scheduleParams(p);
        p = defaultParams();
        p.minStake = MIN_STAKE - 1;
        VM.expectRevert(
            abi.encodeWithSelector(IVerinfer.StakeTooLowForThreshold.selector, MIN_STAKE - 1, STAKE_PER_BIT, THRESHOLD)
        );
        _ext().scheduleParams(p);
        p = defaultParams();
        p.stakePerThresholdBit = STAKE_PER_BIT + 1;
        VM.expectRevert(
            abi.encodeWithSelector(IVerinfer.StakeTooLowForThreshold.selector, MIN_STAKE, STAKE_PER_BIT + 1, THRESHOLD)
        );
        _ext().scheduleParams(p);
        // Raising both together is fine, and so is equality.
        p = defaultParams();
        p.threshold = 11;
        p.minStake = 1100 ether;
        _ext().scheduleParams(p);
        p.threshold = 0;
        p.minStake = 1;
        p.stakePerThresholdBit = type(uint96).max;
        _ext().scheduleParams(p);
        VM.stopPrank();
        (, IVerinfer.Params memory pending,) = _ext().scheduledParams();
        VM.assertEq(pending.threshold, 0);
    }

    function test_ScheduleParams_RevertsOnBadValues() public {
        VM.startPrank(owner);
        IVerinfer.Params memory p = defaultParams();
        p.threshold = 65;
        p.minStake = type(uint96).max;
        p.stakePerThresholdBit = 0;
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.ThresholdTooHigh.selector, uint8(65), uint8(64)));
        _ext().scheduleParams(p);
        p = defaultParams();
        p.threshold = 0;
        p.minStake = 0;
        VM.expectRevert(IVerinfer.ZeroAmount.selector);
        _ext().scheduleParams(p);

        p = defaultParams();
        p.slashShareBps = 0;
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.InvalidBps.selector, uint16(0)));
        _ext().scheduleParams(p);
        p.slashShareBps = 10_001;
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.InvalidBps.selector, uint16(10_001)));
        _ext().scheduleParams(p);

        p = defaultParams();
        p.slashRewardBps = 10_001;
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.InvalidBps.selector, uint16(10_001)));
        _ext().scheduleParams(p);
        p = defaultParams();
        p.protocolFeeBps = 10_001;
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.InvalidBps.selector, uint16(10_001)));
        _ext().scheduleParams(p);

        p = defaultParams();
        (p.commitWindow, p.revealWindow) = (0, 60);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.InvalidWindow.selector, uint32(0), uint32(60)));
        _ext().scheduleParams(p);
        (p.commitWindow, p.revealWindow) = (60, 0);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.InvalidWindow.selector, uint32(60), uint32(0)));
        _ext().scheduleParams(p);
        (p.commitWindow, p.revealWindow) = (7 days + 1, 60);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.InvalidWindow.selector, uint32(7 days + 1), uint32(60)));
        _ext().scheduleParams(p);
        (p.commitWindow, p.revealWindow) = (60, 7 days + 1);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.InvalidWindow.selector, uint32(60), uint32(7 days + 1)));
        _ext().scheduleParams(p);

        p = defaultParams();
        p.queueTimeout = 0;
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.InvalidQueueTimeout.selector, uint32(0)));
        _ext().scheduleParams(p);
        p.queueTimeout = 365 days + 1;
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.InvalidQueueTimeout.selector, uint32(365 days + 1)));
        _ext().scheduleParams(p);

        p = defaultParams();
        p.minTextPool = 2;
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.InvalidMinTextPool.selector, uint8(2)));
        _ext().scheduleParams(p);

        // Every limit itself is accepted.
        p = IVerinfer.Params({
            threshold: 64,
            minTextPool: 3,
            slashShareBps: BPS,
            slashRewardBps: BPS,
            protocolFeeBps: BPS,
            commitWindow: 7 days,
            revealWindow: 7 days,
            queueTimeout: 365 days,
            minStake: 64,
            stakePerThresholdBit: 1,
            minTaskFee: 0,
            minImageFee: 0,
            samplingBps: 1
        });
        _ext().scheduleParams(p);
        p.slashShareBps = 1;
        p.slashRewardBps = 0;
        p.protocolFeeBps = 0;
        (p.commitWindow, p.revealWindow, p.queueTimeout) = (1, 1, 1);
        _ext().scheduleParams(p);
        VM.stopPrank();
        VM.assertEq(_ext().paramsVersion(), 1, "nothing in force yet");
    }

    /// @dev Scheduling again replaces the pending version (same number); cancelling withdraws it.
    function test_ScheduleParams_ReplaceAndCancel() public {
        IVerinfer.Params memory p = defaultParams();
        p.protocolFeeBps = 0;
        VM.prank(owner);
        _ext().scheduleParams(p);

        VM.warp(VM.getBlockTimestamp() + 100);
        p.protocolFeeBps = 100;
        VM.expectEmit(address(verinfer));
        emit IVerinfer.ParamsScheduleCancelled(2);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.ParamsScheduled(2, p, uint40(VM.getBlockTimestamp() + PARAMS_DELAY));
        VM.prank(owner);
        _ext().scheduleParams(p);
        (uint24 version, IVerinfer.Params memory pending, uint40 at) = _ext().scheduledParams();
        VM.assertEq(version, 2);
        VM.assertEq(pending.protocolFeeBps, 100);
        VM.assertEq(at, VM.getBlockTimestamp() + PARAMS_DELAY, "the delay restarts");

        VM.expectEmit(address(verinfer));
        emit IVerinfer.ParamsScheduleCancelled(2);
        VM.prank(owner);
        _ext().cancelScheduledParams();
        (version,,) = _ext().scheduledParams();
        VM.assertEq(version, 0);
        VM.prank(owner);
        VM.expectRevert(IVerinfer.NoScheduledParams.selector);
        _ext().cancelScheduledParams();

        VM.warp(at + 1);
        _nextBlock();
        verinfer.drawTasks();
        VM.assertEq(_ext().paramsVersion(), 1, "a cancelled version never applies");
        VM.assertEq(_ext().params().protocolFeeBps, PROTOCOL_FEE_BPS);
    }

    /// @dev A task runs under the version in force when it was created: a threshold raised while it
    ///      runs does not judge it; the tasks created afterwards get the new one.
    function test_ScheduleParams_RunningTaskKeepsItsVersion() public {
        _makeNodes(0, 6, H100);
        IVerinfer.Params memory p = defaultParams();
        p.threshold = 12;
        p.stakePerThresholdBit = 50 ether;
        uint40 at = _scheduleParams(p);
        VM.warp(at - 100);
        uint256 before = _createImageTask();
        VM.warp(at);
        _nextBlock();
        uint256 later = _createImageTask();
        VM.assertEq(_ext().getTask(before).paramsVersion, 1);
        VM.assertEq(_ext().getTask(later).paramsVersion, 2);
        VM.assertEq(_ext().taskParams(before).threshold, THRESHOLD);
        VM.assertEq(_ext().taskParams(later).threshold, 12);

        uint64 h = 0xabcdef;
        // 12 bits apart: over the old threshold, within the new one.
        VM.recordLogs();
        _runImageTask(before, [_hashes(h), _hashes(_flipLow(h, 12)), _hashes(h)]);
        _runImageTask(later, [_hashes(h), _hashes(_flipLow(h, 12)), _hashes(h)]);
        Vm.Log[] memory logs = VM.getRecordedLogs();
        Settled memory s = _findSettled(logs, before);
        VM.assertEq(s.threshold, THRESHOLD, "judged with its own threshold");
        VM.assertEq(s.agreeingMask, 5, "12 bits is too far under version 1");
        _assertNodeState(_nodesOf(before)[1], IVerinfer.NodeState.Kicked);
        s = _findSettled(logs, later);
        VM.assertEq(s.threshold, 12);
        VM.assertEq(s.agreeingMask, 7, "12 bits agree under version 2");
        _assertStatus(later, IVerinfer.TaskStatus.Validated);
    }

    /// @dev Windows are the task's version's: the deadlines of a task created under new windows.
    function test_ScheduleParams_WindowsApplyToTasksCreatedLater() public {
        _makeNodes(0, 3, H100);
        IVerinfer.Params memory p = defaultParams();
        (p.commitWindow, p.revealWindow) = (60, 120);
        _setParams(p);
        uint256 taskId = _createImageTask();
        IVerinfer.TaskInfo memory t = _ext().getTask(taskId);
        VM.assertEq(t.commitDeadline, VM.getBlockTimestamp() + 60);
        VM.assertEq(t.revealDeadline, VM.getBlockTimestamp() + 180);
    }

    /// @dev With a zero delay (devnets) a scheduled version is in force at once.
    function test_ScheduleParams_ZeroDelayAppliesAtOnce() public {
        verinfer = new Verinfer(token, defaultParams(), 0, owner, treasury);
        IVerinfer.Params memory p = defaultParams();
        p.threshold = 3;
        VM.expectEmit(address(verinfer));
        emit IVerinfer.ParamsActivated(2);
        VM.prank(owner);
        _ext().scheduleParams(p);
        VM.assertEq(_ext().paramsVersion(), 2);
        VM.assertEq(_ext().params().threshold, 3);
        (uint24 version,,) = _ext().scheduledParams();
        VM.assertEq(version, 0);
    }

    // ================================================================ GPU registry

    function test_AddGpuModel_RegistersAndEmits() public {
        bytes32 id = _ext().gpuModelId("NVIDIA B200");
        VM.expectEmit(address(verinfer));
        emit IVerinfer.GpuModelAdded(id, "nvidia b200", 184_320);
        VM.prank(owner);
        _ext().addGpuModel("  NVIDIA B200 ", 184_320);
        VM.assertEq(_ext().gpuModelCount(), 5);
        IVerinfer.GpuModelInfo memory info = _ext().gpuModelAt(4);
        VM.assertEq(info.id, id);
        VM.assertEq(info.name, "nvidia b200");
        VM.assertEq(info.vramMiB, 184_320);
        VM.assertTrue(info.active);
        VM.assertEq(info.availableNodes, 0);
        info = _ext().gpuModel(_ext().gpuModelId(RTX4090));
        VM.assertEq(info.vramMiB, VRAM_24G);
        VM.assertEq(info.name, "nvidia geforce rtx 4090");
        // The default registry, in order.
        VM.assertEq(_ext().gpuModelAt(0).id, _ext().gpuModelId(H100));
        VM.assertEq(_ext().gpuModelAt(3).vramMiB, VRAM_8G);
        // A node of the new model can join; image tasks may now ask for its VRAM.
        _join(_nodeAddr(0), "nvidia b200", MIN_STAKE);
        VM.assertEq(_ext().getNode(_nodeAddr(0)).vramMiB, 184_320);
        VM.assertEq(_ext().gpuModel(id).availableNodes, 1);
        _queueImageTask(1, 184_320, FEE);
    }

    function test_AddGpuModel_Reverts() public {
        VM.startPrank(owner);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.VramTooSmall.selector, uint32(1023), uint32(1024)));
        _ext().addGpuModel("tiny", 1023);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.VramTooLarge.selector, uint32((1 << 24) + 1), uint32(1 << 24)));
        _ext().addGpuModel("huge", (1 << 24) + 1);
        bytes32 h100 = _ext().gpuModelId(H100);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.GpuModelAlreadyRegistered.selector, h100));
        _ext().addGpuModel("nvidia  H100 80gb hbm3", VRAM_80G);
        VM.expectRevert(GpuModels.EmptyGpuModel.selector);
        _ext().addGpuModel(" ", VRAM_80G);
        // Both VRAM ends are accepted; at most 32 models.
        _ext().addGpuModel("tiny", 1024);
        _ext().addGpuModel("huge", 1 << 24);
        for (uint256 i = 6; i < 32; ++i) {
            _ext().addGpuModel(string.concat("model ", VM.toString(i)), VRAM_8G);
        }
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.TooManyGpuModels.selector, 32));
        _ext().addGpuModel("one too many", VRAM_8G);
        VM.stopPrank();
        VM.assertEq(_ext().gpuModelCount(), 32);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.GpuModelNotRegistered.selector, bytes32(uint256(32))));
        _ext().gpuModelAt(32);
        bytes32 unknown = _ext().gpuModelId("one too many");
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.GpuModelNotRegistered.selector, unknown));
        _ext().gpuModel(unknown);
    }

    /// @dev The smallest registered VRAM is the class every image task up to it shares: a new,
    ///      smaller model lowers it.
    function test_AddGpuModel_SmallerModelServesSmallTasks() public {
        VM.prank(owner);
        _ext().addGpuModel("NVIDIA T400", 2048);
        _makeNodes(0, 3, "nvidia t400");
        VM.assertEq(_ext().availableNodes(bytes32(0), 2048), 3);
        VM.assertEq(_ext().availableNodes(bytes32(0), 2049), 0);
        uint256 taskId = _createImageTask(1, 2048, FEE);
        _assertStatus(taskId, IVerinfer.TaskStatus.Committing);
    }

    /// @dev Closing a model stops new joins; its nodes keep serving and text tasks may still name it.
    function test_SetGpuModelActive() public {
        bytes32 h100 = _ext().gpuModelId(H100);
        _makeNodes(0, 3, H100);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.GpuModelActiveSet(h100, false);
        VM.prank(owner);
        _ext().setGpuModelActive(h100, false);
        VM.assertFalse(_ext().gpuModel(h100).active);

        address late = _nodeAddr(3);
        _fund(late, MIN_STAKE);
        VM.prank(late);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.GpuModelInactive.selector, h100));
        verinfer.join(H100, 0, MIN_STAKE);

        uint256 taskId = _createTextTask(H100, 0, FEE);
        _assertStatus(taskId, IVerinfer.TaskStatus.Committing);
        _runHonestTextTask(taskId);
        _assertStatus(taskId, IVerinfer.TaskStatus.Validated);

        VM.prank(owner);
        _ext().setGpuModelActive(h100, true);
        VM.prank(late);
        verinfer.join(H100, 0, MIN_STAKE);

        bytes32 unknown = _ext().gpuModelId("NVIDIA B200");
        VM.prank(owner);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.GpuModelNotRegistered.selector, unknown));
        _ext().setGpuModelActive(unknown, true);
    }

    // ================================================================ treasury

    function test_SetTreasury() public {
        address next = address(uint160(0x7EA6));
        VM.expectEmit(true, false, false, true, address(verinfer));
        emit IVerinfer.TreasurySet(next);
        VM.prank(owner);
        verinfer.setTreasury(next);
        VM.assertEq(verinfer.treasury(), next);
        VM.prank(owner);
        VM.expectRevert(IVerinfer.ZeroAddress.selector);
        verinfer.setTreasury(address(0));
    }

    /// @dev A disagreeing node's slash (less the agreeing pair's share) and the protocol fee accrue.
    function _accrue() internal returns (uint256 balance) {
        _makeNodes(0, 3, H100);
        uint256 taskId = _createImageTask();
        _runImageTask(taskId, [_hashes(1), _hashes(1), _hashes(~uint64(1))]);
        balance = verinfer.treasuryBalance();
        uint256 slashed = _slashOf(MIN_STAKE);
        VM.assertEq(balance, FEE - 2 * _rewardPerNode(FEE, 2) + slashed - (slashed * SLASH_REWARD_BPS) / BPS);
    }

    function test_WithdrawTreasury_ByTreasuryAndOwner() public {
        uint256 balance = _accrue();
        VM.expectEmit(address(verinfer));
        emit IVerinfer.TreasuryWithdrawn(treasury, 100);
        VM.prank(treasury);
        verinfer.withdrawTreasury(100);
        VM.assertEq(token.balanceOf(treasury), 100);
        VM.assertEq(verinfer.treasuryBalance(), balance - 100);
        // The owner may trigger it too; the tokens still go to the treasury address.
        VM.prank(owner);
        verinfer.withdrawTreasury(balance - 100);
        VM.assertEq(token.balanceOf(treasury), balance);
        VM.assertEq(token.balanceOf(owner), 0);
        VM.assertEq(verinfer.treasuryBalance(), 0);
        _assertTokenAccounting();
    }

    function test_WithdrawTreasury_Reverts() public {
        uint256 balance = _accrue();
        VM.prank(stranger);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.NotTreasuryOrOwner.selector, stranger));
        verinfer.withdrawTreasury(1);
        VM.prank(treasury);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.InsufficientTreasury.selector, balance + 1, balance));
        verinfer.withdrawTreasury(balance + 1);
    }

    /// @dev Withdrawing can never reach into node stakes, escrowed fees or credited balances.
    function test_WithdrawTreasury_CannotTakeStakesFeesOrCredits() public {
        _makeNodes(0, 3, H100);
        uint256 taskId = _createImageTask();
        _queueImageTask(1, 0, FEE);
        VM.prank(owner);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.InsufficientTreasury.selector, uint256(1), uint256(0)));
        verinfer.withdrawTreasury(1);
        // An aborted task credits its creator; the treasury still has nothing.
        _runImageTask(taskId, [_hashes(0), _hashes(_flipLow(0, 20)), _hashes(_flipLow(0, 40))]);
        _assertStatus(taskId, IVerinfer.TaskStatus.Aborted);
        VM.assertEq(verinfer.claimable(creator), FEE);
        VM.prank(owner);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.InsufficientTreasury.selector, uint256(1), uint256(0)));
        verinfer.withdrawTreasury(1);
        _assertTokenAccounting();
    }

    // ================================================================ ownership

    function test_Ownership_TwoStepTransfer() public {
        address next = address(uint160(0x0E1));
        VM.prank(owner);
        verinfer.transferOwnership(next);
        VM.assertEq(verinfer.owner(), owner, "not yet");
        VM.assertEq(verinfer.pendingOwner(), next);
        VM.prank(stranger);
        VM.expectRevert(_unauthorized(stranger));
        verinfer.acceptOwnership();
        VM.prank(next);
        verinfer.acceptOwnership();
        VM.assertEq(verinfer.owner(), next);
        IVerinfer.Params memory p = defaultParams();
        VM.prank(owner);
        VM.expectRevert(_unauthorized(owner));
        _ext().scheduleParams(p);
        VM.prank(next);
        _ext().scheduleParams(p);
    }

    /// @dev The registry and the parameters need an owner: renouncing is disabled.
    function test_Ownership_CannotBeRenounced() public {
        VM.prank(owner);
        VM.expectRevert(IVerinfer.OwnershipCannotBeRenounced.selector);
        verinfer.renounceOwnership();
        VM.assertEq(verinfer.owner(), owner);
    }
}
