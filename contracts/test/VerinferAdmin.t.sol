// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

import {IVerinfer} from "../src/interfaces/IVerinfer.sol";
import {VM} from "./Vm.sol";
import {VerinferTestBase} from "./utils/VerinferTestBase.sol";

/// @notice Owner-only parameter setters, the treasury, and two-step ownership.
contract VerinferAdminTest is VerinferTestBase {
    function _unauthorized(address who) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, who);
    }

    function test_OwnerOnly_AllSettersRevertForOthers() public {
        VM.startPrank(stranger);
        VM.expectRevert(_unauthorized(stranger));
        verinfer.setValidationParams(5, MIN_STAKE, STAKE_PER_BIT);
        VM.expectRevert(_unauthorized(stranger));
        verinfer.setSlashShare(100);
        VM.expectRevert(_unauthorized(stranger));
        verinfer.setWindows(60, 60);
        VM.expectRevert(_unauthorized(stranger));
        verinfer.setProtocolFee(0);
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
        verinfer.setProtocolFee(0);
    }

    // ================================================================ validation parameters

    function test_SetValidationParams_UpdatesAndEmits() public {
        VM.expectEmit(address(verinfer));
        emit IVerinfer.ValidationParamsSet(12, 2400 ether, 200 ether);
        VM.prank(owner);
        verinfer.setValidationParams(12, 2400 ether, 200 ether);
        (uint8 t, uint96 minStake, uint96 perBit,,,,) = verinfer.params();
        VM.assertEq(t, 12);
        VM.assertEq(minStake, 2400 ether);
        VM.assertEq(perBit, 200 ether);
        VM.assertEq(verinfer.threshold(), 12);
        VM.assertEq(verinfer.minStake(), 2400 ether);
    }

    /// @dev `minStake >= stakePerThresholdBit * threshold`: raising the threshold alone, or
    ///      lowering the minimum stake alone, breaks it and reverts.
    function test_SetValidationParams_EnforcesStakeRule() public {
        VM.startPrank(owner);
        VM.expectRevert(
            abi.encodeWithSelector(IVerinfer.StakeTooLowForThreshold.selector, MIN_STAKE, STAKE_PER_BIT, uint8(11))
        );
        verinfer.setValidationParams(11, MIN_STAKE, STAKE_PER_BIT);
        VM.expectRevert(
            abi.encodeWithSelector(IVerinfer.StakeTooLowForThreshold.selector, MIN_STAKE - 1, STAKE_PER_BIT, THRESHOLD)
        );
        verinfer.setValidationParams(THRESHOLD, MIN_STAKE - 1, STAKE_PER_BIT);
        VM.expectRevert(
            abi.encodeWithSelector(IVerinfer.StakeTooLowForThreshold.selector, MIN_STAKE, STAKE_PER_BIT + 1, THRESHOLD)
        );
        verinfer.setValidationParams(THRESHOLD, MIN_STAKE, STAKE_PER_BIT + 1);
        // Raising both together is fine, and so is equality.
        verinfer.setValidationParams(11, 1100 ether, STAKE_PER_BIT);
        verinfer.setValidationParams(0, 1, type(uint96).max);
        VM.stopPrank();
        VM.assertEq(verinfer.threshold(), 0);
    }

    function test_SetValidationParams_RevertsOnBadValues() public {
        VM.startPrank(owner);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.ThresholdTooHigh.selector, uint8(65), uint8(64)));
        verinfer.setValidationParams(65, type(uint96).max, 0);
        VM.expectRevert(IVerinfer.ZeroAmount.selector);
        verinfer.setValidationParams(0, 0, 0);
        verinfer.setValidationParams(64, 64, 1);
        VM.stopPrank();
    }

    function test_SetValidationParams_NewThresholdJudgesLaterSettlements() public {
        _makeNodes(0, 3, H100, VRAM_80G);
        uint256 taskId = _createImageTask();
        VM.prank(owner);
        verinfer.setValidationParams(12, 1200 ether, STAKE_PER_BIT);
        uint64 h = 0xabcdef;
        // 12 bits apart: over the old threshold, within the new one.
        _runImageTask(taskId, [_hashes(h), _hashes(_flipLow(h, 12)), _hashes(h)]);
        _assertStatus(taskId, IVerinfer.TaskStatus.Validated);
        address[3] memory n = _nodesOf(taskId);
        // The minimum stake rose to 1200 ether: the nodes (1000 + reward) leave with BelowMinStake.
        _assertNodeState(n[1], IVerinfer.NodeState.None);
    }

    // ================================================================ slash share, fee, windows

    function test_SetSlashShare() public {
        VM.expectEmit(address(verinfer));
        emit IVerinfer.SlashShareSet(1);
        VM.prank(owner);
        verinfer.setSlashShare(1);
        VM.prank(owner);
        verinfer.setSlashShare(BPS);
        (,,, uint16 slashBps,,,) = verinfer.params();
        VM.assertEq(slashBps, BPS);
        VM.startPrank(owner);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.InvalidBps.selector, uint16(0)));
        verinfer.setSlashShare(0);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.InvalidBps.selector, uint16(10_001)));
        verinfer.setSlashShare(10_001);
        VM.stopPrank();
    }

    function test_SetProtocolFee() public {
        VM.expectEmit(address(verinfer));
        emit IVerinfer.ProtocolFeeSet(0);
        VM.prank(owner);
        verinfer.setProtocolFee(0);
        VM.prank(owner);
        verinfer.setProtocolFee(BPS);
        (,,,, uint16 feeBps,,) = verinfer.params();
        VM.assertEq(feeBps, BPS);
        VM.prank(owner);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.InvalidBps.selector, uint16(10_001)));
        verinfer.setProtocolFee(10_001);
    }

    function test_SetWindows() public {
        VM.expectEmit(address(verinfer));
        emit IVerinfer.WindowsSet(1, 7 days);
        VM.prank(owner);
        verinfer.setWindows(1, 7 days);
        (,,,,, uint32 cw, uint32 rw) = verinfer.params();
        VM.assertEq(cw, 1);
        VM.assertEq(rw, 7 days);
        VM.startPrank(owner);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.InvalidWindow.selector, uint32(0), uint32(60)));
        verinfer.setWindows(0, 60);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.InvalidWindow.selector, uint32(60), uint32(0)));
        verinfer.setWindows(60, 0);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.InvalidWindow.selector, uint32(7 days + 1), uint32(60)));
        verinfer.setWindows(7 days + 1, 60);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.InvalidWindow.selector, uint32(60), uint32(7 days + 1)));
        verinfer.setWindows(60, 7 days + 1);
        VM.stopPrank();
    }

    function test_SetWindows_AppliesToTasksStartedLater() public {
        _makeNodes(0, 3, H100, VRAM_80G);
        VM.prank(owner);
        verinfer.setWindows(60, 120);
        uint256 taskId = _createImageTask();
        IVerinfer.TaskInfo memory t = verinfer.getTask(taskId);
        VM.assertEq(t.commitDeadline, block.timestamp + 60);
        VM.assertEq(t.revealDeadline, block.timestamp + 180);
    }

    // ================================================================ treasury

    function test_SetTreasury() public {
        address next = address(uint160(0x7EA6));
        VM.expectEmit(address(verinfer));
        emit IVerinfer.TreasurySet(next);
        VM.prank(owner);
        verinfer.setTreasury(next);
        VM.assertEq(verinfer.treasury(), next);
        VM.prank(owner);
        VM.expectRevert(IVerinfer.ZeroAddress.selector);
        verinfer.setTreasury(address(0));
    }

    function _accrue() internal returns (uint96 balance) {
        _makeNodes(0, 3, H100, VRAM_80G);
        uint256 taskId = _createImageTask();
        _runImageTask(taskId, [_hashes(1), _hashes(1), _hashes(~uint64(1))]);
        balance = verinfer.treasuryBalance();
        VM.assertGt(balance, MIN_STAKE / 2, "slash and protocol fee accrued");
    }

    function test_WithdrawTreasury_ByTreasuryAndOwner() public {
        uint96 balance = _accrue();
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
    }

    function test_WithdrawTreasury_Reverts() public {
        uint96 balance = _accrue();
        VM.prank(stranger);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.NotTreasuryOrOwner.selector, stranger));
        verinfer.withdrawTreasury(1);
        VM.prank(treasury);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.InsufficientTreasury.selector, balance + 1, balance));
        verinfer.withdrawTreasury(balance + 1);
    }

    /// @dev Withdrawing can never reach into node stakes or escrowed fees.
    function test_WithdrawTreasury_CannotTakeStakes() public {
        _makeNodes(0, 3, H100, VRAM_80G);
        _createImageTask();
        VM.prank(owner);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.InsufficientTreasury.selector, uint96(1), uint96(0)));
        verinfer.withdrawTreasury(1);
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
        VM.prank(owner);
        VM.expectRevert(_unauthorized(owner));
        verinfer.setProtocolFee(0);
        VM.prank(next);
        verinfer.setProtocolFee(0);
    }
}
