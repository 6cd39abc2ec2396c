// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import {Verinfer} from "../src/Verinfer.sol";
import {IVerinfer} from "../src/interfaces/IVerinfer.sol";
import {GpuModels} from "../src/libraries/GpuModels.sol";
import {VM} from "./Vm.sol";
import {VerinferTestBase} from "./utils/VerinferTestBase.sol";

/// @notice Deployment, join, addStake, leave, GPU model names and VRAM tiers.
contract VerinferNodesTest is VerinferTestBase {
    // ================================================================ constructor

    function test_Constructor_SetsParamsAndEmits() public {
        VM.expectEmit(false, false, false, true);
        emit Ownable.OwnershipTransferred(address(0), owner);
        VM.expectEmit(false, false, false, true);
        emit IVerinfer.ValidationParamsSet(THRESHOLD, MIN_STAKE, STAKE_PER_BIT);
        VM.expectEmit(false, false, false, true);
        emit IVerinfer.SlashShareSet(SLASH_BPS);
        VM.expectEmit(false, false, false, true);
        emit IVerinfer.ProtocolFeeSet(PROTOCOL_FEE_BPS);
        VM.expectEmit(false, false, false, true);
        emit IVerinfer.WindowsSet(COMMIT_WINDOW, REVEAL_WINDOW);
        VM.expectEmit(false, false, false, true);
        emit IVerinfer.TreasurySet(treasury);
        Verinfer v = new Verinfer(token, defaultParams(), owner, treasury);

        (uint8 t, uint96 minStake, uint96 perBit, uint16 slashBps, uint16 feeBps, uint32 cw, uint32 rw) = v.params();
        VM.assertEq(t, THRESHOLD);
        VM.assertEq(minStake, MIN_STAKE);
        VM.assertEq(perBit, STAKE_PER_BIT);
        VM.assertEq(slashBps, SLASH_BPS);
        VM.assertEq(feeBps, PROTOCOL_FEE_BPS);
        VM.assertEq(cw, COMMIT_WINDOW);
        VM.assertEq(rw, REVEAL_WINDOW);
        VM.assertEq(v.threshold(), THRESHOLD);
        VM.assertEq(v.minStake(), MIN_STAKE);
        VM.assertEq(v.owner(), owner);
        VM.assertEq(v.treasury(), treasury);
        VM.assertEq(address(v.token()), address(token));
        VM.assertEq(v.taskCount(), 0);
        VM.assertEq(v.nodeCount(), 0);
    }

    function test_Constructor_RevertsOnZeroAddresses() public {
        VM.expectRevert(IVerinfer.ZeroAddress.selector);
        new Verinfer(IERC20(address(0)), defaultParams(), owner, treasury);
        VM.expectRevert(IVerinfer.ZeroAddress.selector);
        new Verinfer(token, defaultParams(), owner, address(0));
        VM.expectRevert(abi.encodeWithSelector(Ownable.OwnableInvalidOwner.selector, address(0)));
        new Verinfer(token, defaultParams(), address(0), treasury);
    }

    function test_Constructor_RevertsOnBadParams() public {
        IVerinfer.InitParams memory p = defaultParams();
        p.threshold = 65;
        p.stakePerThresholdBit = 0;
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.ThresholdTooHigh.selector, uint8(65), uint8(64)));
        new Verinfer(token, p, owner, treasury);

        p = defaultParams();
        p.minStake = STAKE_PER_BIT * THRESHOLD - 1;
        VM.expectRevert(
            abi.encodeWithSelector(IVerinfer.StakeTooLowForThreshold.selector, p.minStake, STAKE_PER_BIT, THRESHOLD)
        );
        new Verinfer(token, p, owner, treasury);

        p = defaultParams();
        p.slashShareBps = 0;
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.InvalidBps.selector, uint16(0)));
        new Verinfer(token, p, owner, treasury);

        p = defaultParams();
        p.protocolFeeBps = 10_001;
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.InvalidBps.selector, uint16(10_001)));
        new Verinfer(token, p, owner, treasury);

        p = defaultParams();
        p.revealWindow = 0;
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.InvalidWindow.selector, COMMIT_WINDOW, uint32(0)));
        new Verinfer(token, p, owner, treasury);
    }

    // ================================================================ join

    function test_Join_RegistersAvailableNodeAndEmits() public {
        address node = _nodeAddr(0);
        _fund(node, MIN_STAKE);
        bytes32 modelId = verinfer.gpuModelId(H100);

        VM.expectEmit(address(verinfer));
        emit IVerinfer.NodeJoined(node, 1, modelId, "nvidia h100 80gb hbm3", VRAM_80G, MIN_STAKE);
        VM.prank(node);
        verinfer.join(H100, VRAM_80G, MIN_STAKE);

        IVerinfer.NodeInfo memory info = verinfer.getNode(node);
        VM.assertEq(uint256(info.state), uint256(IVerinfer.NodeState.Available));
        VM.assertEq(info.id, 1);
        VM.assertEq(info.stake, MIN_STAKE);
        VM.assertEq(info.gpuModel, modelId);
        VM.assertEq(info.vramMiB, VRAM_80G);
        VM.assertEq(info.tier, 6);
        VM.assertEq(info.taskId, 0);
        VM.assertEq(verinfer.nodeAddress(1), node);
        VM.assertEq(verinfer.nodeCount(), 1);
        VM.assertEq(token.balanceOf(node), 0, "stake pulled from the node");
        VM.assertEq(token.balanceOf(address(verinfer)), MIN_STAKE, "stake held by the contract");
        VM.assertEq(verinfer.availableNodes(bytes32(0), 0), 1, "in the global pool");
        VM.assertEq(verinfer.availableNodes(modelId, 0), 1, "in its model's pool");
    }

    function test_Join_AboveMinimumStake() public {
        _join(_nodeAddr(0), H100, VRAM_80G, MIN_STAKE * 3);
        VM.assertEq(_stakeOf(_nodeAddr(0)), MIN_STAKE * 3);
    }

    function test_Join_RevertsBelowMinimumStake() public {
        address node = _nodeAddr(0);
        _fund(node, MIN_STAKE);
        VM.prank(node);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.StakeBelowMinimum.selector, MIN_STAKE - 1, MIN_STAKE));
        verinfer.join(H100, VRAM_80G, MIN_STAKE - 1);
    }

    function test_Join_RevertsOnVramOutOfRange() public {
        address node = _nodeAddr(0);
        _fund(node, MIN_STAKE);
        uint32 min = verinfer.MIN_NODE_VRAM_MIB();
        uint32 max = verinfer.MAX_NODE_VRAM_MIB();
        VM.prank(node);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.VramTooSmall.selector, min - 1, min));
        verinfer.join(H100, min - 1, MIN_STAKE);
        VM.prank(node);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.VramTooLarge.selector, max + 1, max));
        verinfer.join(H100, max + 1, MIN_STAKE);
        // Both ends are accepted.
        VM.prank(node);
        verinfer.join(H100, max, MIN_STAKE);
        _join(_nodeAddr(1), H100, min, MIN_STAKE);
    }

    function test_Join_RevertsWhenAlreadyRegistered() public {
        address node = _nodeAddr(0);
        _join(node, H100, VRAM_80G, MIN_STAKE);
        _fund(node, MIN_STAKE);
        VM.prank(node);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.AlreadyRegistered.selector, node));
        verinfer.join(H100, VRAM_80G, MIN_STAKE);
    }

    function test_Join_RevertsWhileBusyOrLeaving() public {
        _makeNodes(0, 3, H100, VRAM_80G);
        uint256 taskId = _createImageTask();
        address node = _nodesOf(taskId)[0];
        _fund(node, MIN_STAKE);
        VM.prank(node);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.AlreadyRegistered.selector, node));
        verinfer.join(H100, VRAM_80G, MIN_STAKE);
        VM.prank(node);
        verinfer.leave();
        VM.prank(node);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.AlreadyRegistered.selector, node));
        verinfer.join(H100, VRAM_80G, MIN_STAKE);
    }

    function test_Join_RevertsOnBadGpuModelName() public {
        address node = _nodeAddr(0);
        _fund(node, MIN_STAKE);
        VM.startPrank(node);
        VM.expectRevert(GpuModels.EmptyGpuModel.selector);
        verinfer.join("", VRAM_80G, MIN_STAKE);
        VM.expectRevert(GpuModels.EmptyGpuModel.selector);
        verinfer.join(" \t  ", VRAM_80G, MIN_STAKE);
        string memory long = "nvidia h100 80gb hbm3 nvidia h100 80gb hbm3 nvidia h100 80gb hbm3";
        VM.expectRevert(abi.encodeWithSelector(GpuModels.GpuModelTooLong.selector, bytes(long).length, 64));
        verinfer.join(long, VRAM_80G, MIN_STAKE);
        VM.expectRevert(abi.encodeWithSelector(GpuModels.InvalidGpuModelCharacter.selector, 6, bytes1(0x0a)));
        verinfer.join("NVIDIA\nH100", VRAM_80G, MIN_STAKE);
        VM.expectRevert(abi.encodeWithSelector(GpuModels.InvalidGpuModelCharacter.selector, 4, bytes1(0x7f)));
        verinfer.join("H100\x7f", VRAM_80G, MIN_STAKE);
        VM.expectRevert(abi.encodeWithSelector(GpuModels.InvalidGpuModelCharacter.selector, 0, bytes1(0xc3)));
        verinfer.join(unicode"é", VRAM_80G, MIN_STAKE);
        VM.stopPrank();
    }

    function test_Join_AcceptsModelNameOfMaxLength() public {
        bytes memory name = new bytes(64);
        for (uint256 i; i < 64; ++i) {
            name[i] = "A";
        }
        _join(_nodeAddr(0), string(name), VRAM_8G, MIN_STAKE);
        bytes memory lower = new bytes(64);
        for (uint256 i; i < 64; ++i) {
            lower[i] = "a";
        }
        VM.assertEq(verinfer.getNode(_nodeAddr(0)).gpuModel, keccak256(lower));
    }

    // ================================================================ GPU model normalisation

    function test_GpuModel_NormalisesCaseAndWhitespace() public view {
        bytes32 id = keccak256("nvidia h100");
        VM.assertEq(verinfer.gpuModelId("nvidia h100"), id);
        VM.assertEq(verinfer.gpuModelId("  NVIDIA  H100 "), id);
        VM.assertEq(verinfer.gpuModelId("\tNvidia\t \tH100\t"), id);
        VM.assertEq(verinfer.gpuModelId("NVIDIA H100"), id);
        VM.assertNotEq(verinfer.gpuModelId("nvidiah100"), id);
        VM.assertNotEq(verinfer.gpuModelId("nvidia h100 pcie"), id);
    }

    function test_GpuModel_NormalisedNamesShareAPool() public {
        _join(_nodeAddr(0), "  NVIDIA  H100 ", VRAM_80G, MIN_STAKE);
        _join(_nodeAddr(1), "nvidia h100", VRAM_80G, MIN_STAKE);
        _join(_nodeAddr(2), "Nvidia\tH100", VRAM_80G, MIN_STAKE);
        bytes32 id = keccak256("nvidia h100");
        VM.assertEq(verinfer.availableNodes(id, 0), 3);
        // A text task naming the model in yet another spelling is served by the three.
        uint256 taskId = _createTextTask("NVIDIA H100", 0, FEE);
        _assertStatus(taskId, IVerinfer.TaskStatus.Committing);
        VM.assertEq(verinfer.getTask(taskId).gpuModel, id);
    }

    function test_GpuModel_JoinEventCarriesNormalForm() public {
        address node = _nodeAddr(0);
        _fund(node, MIN_STAKE);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.NodeJoined(node, 1, keccak256("nvidia h100"), "nvidia h100", VRAM_80G, MIN_STAKE);
        VM.prank(node);
        verinfer.join("  NVIDIA  H100 ", VRAM_80G, MIN_STAKE);
    }

    // ================================================================ VRAM tiers

    function test_VramTiers() public {
        uint32[11] memory vram =
            [uint32(1024), 2047, 2048, 4095, 8192, 16_384, 24_576, 32_768, 81_920, 131_072, 16_777_215];
        uint8[11] memory tier = [uint8(0), 0, 1, 1, 3, 4, 4, 5, 6, 7, 7];
        for (uint256 i; i < vram.length; ++i) {
            _join(_nodeAddr(i), H100, vram[i], MIN_STAKE);
            VM.assertEq(verinfer.getNode(_nodeAddr(i)).tier, tier[i], string.concat("tier of ", VM.toString(vram[i])));
        }
    }

    /// @dev A task's requirement rounds up to a whole tier: a 24 GiB node (tier 4, from 16 GiB)
    ///      is not offered a task needing 20 GiB (tier 5), though it has enough memory.
    function test_VramRequirementIsConservative() public {
        _makeNodes(0, 3, RTX4090, VRAM_24G);
        VM.assertEq(verinfer.availableNodes(bytes32(0), 16_384), 3, "16 GiB task: tier 4 nodes qualify");
        VM.assertEq(verinfer.availableNodes(bytes32(0), 16_385), 0, "just over 16 GiB: tier 5 needed");
        VM.assertEq(verinfer.availableNodes(bytes32(0), 20_480), 0, "20 GiB task: 24 GiB nodes not offered");
        VM.assertEq(verinfer.availableNodes(bytes32(0), 0), 3);
        VM.assertEq(verinfer.availableNodes(bytes32(0), 1024), 3);

        uint256 queued = _createImageTask(1, 20_480, FEE);
        _assertStatus(queued, IVerinfer.TaskStatus.Queued);
        uint256 started = _createImageTask(1, 16_384, FEE);
        _assertStatus(started, IVerinfer.TaskStatus.Committing);
    }

    function test_VramRequirement_HigherTierServesLowerTask() public {
        _join(_nodeAddr(0), H100, VRAM_80G, MIN_STAKE);
        _join(_nodeAddr(1), H100, VRAM_8G, MIN_STAKE);
        _join(_nodeAddr(2), H100, 1024, MIN_STAKE);
        VM.assertEq(verinfer.availableNodes(bytes32(0), 1024), 3);
        VM.assertEq(verinfer.availableNodes(bytes32(0), 1025), 2);
        VM.assertEq(verinfer.availableNodes(bytes32(0), 8192), 2);
        VM.assertEq(verinfer.availableNodes(bytes32(0), 8193), 1);
        VM.assertEq(verinfer.availableNodes(bytes32(0), 65_536), 1);
        VM.assertEq(verinfer.availableNodes(bytes32(0), 65_537), 0);
        uint256 taskId = _createImageTask(1, 1024, FEE);
        _assertStatus(taskId, IVerinfer.TaskStatus.Committing);
    }

    // ================================================================ addStake

    function test_AddStake_IncreasesStakeAndEmits() public {
        address node = _nodeAddr(0);
        _join(node, H100, VRAM_80G, MIN_STAKE);
        token.mint(node, 5 ether);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.StakeAdded(node, 5 ether, MIN_STAKE + 5 ether);
        VM.prank(node);
        verinfer.addStake(5 ether);
        VM.assertEq(_stakeOf(node), MIN_STAKE + 5 ether);
        VM.assertEq(token.balanceOf(address(verinfer)), MIN_STAKE + 5 ether);
    }

    function test_AddStake_WorksWhileBusy() public {
        _makeNodes(0, 3, H100, VRAM_80G);
        uint256 taskId = _createImageTask();
        address node = _nodesOf(taskId)[1];
        token.mint(node, 1 ether);
        VM.prank(node);
        verinfer.addStake(1 ether);
        VM.assertEq(_stakeOf(node), MIN_STAKE + 1 ether);
        _assertNodeState(node, IVerinfer.NodeState.Busy);
    }

    function test_AddStake_Reverts() public {
        address node = _nodeAddr(0);
        VM.prank(node);
        VM.expectRevert(IVerinfer.ZeroAmount.selector);
        verinfer.addStake(0);
        VM.prank(node);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.NotRegistered.selector, node));
        verinfer.addStake(1);
    }

    function test_AddStake_RevertsOnOverflow() public {
        address node = _nodeAddr(0);
        uint96 huge = type(uint96).max;
        _join(node, H100, VRAM_80G, huge);
        token.mint(node, 1);
        VM.prank(node);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.StakeOverflow.selector, node));
        verinfer.addStake(1);
    }

    // ================================================================ leave

    function test_Leave_IdleNodeGetsStakeBack() public {
        address node = _nodeAddr(0);
        _join(node, H100, VRAM_80G, MIN_STAKE + 7);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.NodeExited(node, IVerinfer.ExitReason.Left, MIN_STAKE + 7);
        VM.prank(node);
        verinfer.leave();
        VM.assertEq(token.balanceOf(node), MIN_STAKE + 7, "stake returned");
        VM.assertEq(token.balanceOf(address(verinfer)), 0);
        IVerinfer.NodeInfo memory info = verinfer.getNode(node);
        VM.assertEq(uint256(info.state), uint256(IVerinfer.NodeState.None));
        VM.assertEq(info.stake, 0);
        VM.assertEq(verinfer.availableNodes(bytes32(0), 0), 0, "out of the global pool");
        VM.assertEq(verinfer.availableNodes(info.gpuModel, 0), 0, "out of the model pool");
    }

    function test_Leave_ThenRejoinKeepsId() public {
        address node = _nodeAddr(0);
        _join(node, H100, VRAM_80G, MIN_STAKE);
        VM.prank(node);
        verinfer.leave();
        _join(node, RTX4090, VRAM_24G, MIN_STAKE);
        IVerinfer.NodeInfo memory info = verinfer.getNode(node);
        VM.assertEq(info.id, 1, "same id");
        VM.assertEq(verinfer.nodeCount(), 1);
        VM.assertEq(info.gpuModel, verinfer.gpuModelId(RTX4090), "new model");
        VM.assertEq(info.tier, 4);
        VM.assertEq(verinfer.availableNodes(verinfer.gpuModelId(H100), 0), 0);
        VM.assertEq(verinfer.availableNodes(verinfer.gpuModelId(RTX4090), 0), 1);
    }

    /// @dev Swap-and-pop removal keeps the pools consistent: after nodes in the middle leave,
    ///      every remaining node can still be selected, and no removed one is.
    function test_Leave_KeepsPoolsConsistent() public {
        address[] memory nodes = _makeNodes(0, 7, H100, VRAM_80G);
        VM.prank(nodes[2]);
        verinfer.leave();
        VM.prank(nodes[0]);
        verinfer.leave();
        VM.prank(nodes[6]);
        verinfer.leave();
        VM.assertEq(verinfer.availableNodes(bytes32(0), 0), 4);
        uint256 a = _createTextTask(H100, 0, FEE);
        _assertStatus(a, IVerinfer.TaskStatus.Committing);
        uint256 b = _createImageTask();
        _assertStatus(b, IVerinfer.TaskStatus.Queued);
        address[3] memory picked = _nodesOf(a);
        for (uint256 i; i < 3; ++i) {
            VM.assertTrue(picked[i] != nodes[0] && picked[i] != nodes[2] && picked[i] != nodes[6], "left node picked");
            _assertNodeState(picked[i], IVerinfer.NodeState.Busy);
        }
        VM.assertEq(verinfer.availableNodes(bytes32(0), 0), 1);
        VM.assertEq(verinfer.availableNodes(verinfer.gpuModelId(H100), 0), 1);
    }

    function test_Leave_BusyNodeIsMarkedLeavingAndPaidAtSettlement() public {
        _makeNodes(0, 3, H100, VRAM_80G);
        uint256 taskId = _createImageTask();
        address node = _nodesOf(taskId)[0];

        VM.expectEmit(address(verinfer));
        emit IVerinfer.NodeLeaving(node, taskId);
        VM.prank(node);
        verinfer.leave();
        _assertNodeState(node, IVerinfer.NodeState.Leaving);
        VM.assertEq(token.balanceOf(node), 0, "no transfer while the task runs");
        VM.assertEq(verinfer.getNode(node).taskId, taskId);

        uint96 reward = _rewardPerNode(FEE, 3);
        address[3] memory nodes = _nodesOf(taskId);
        uint64[] memory h = _trueHashes(taskId, 1);
        _commitAllImage(taskId, h);
        _revealImage(taskId, nodes[1], h);
        _revealImage(taskId, nodes[2], h);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.NodeRewarded(node, taskId, reward);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.NodeExited(node, IVerinfer.ExitReason.Left, MIN_STAKE + reward);
        _revealImage(taskId, node, h);

        VM.assertEq(token.balanceOf(node), MIN_STAKE + reward, "stake and reward returned");
        _assertNodeState(node, IVerinfer.NodeState.None);
        VM.assertEq(verinfer.availableNodes(bytes32(0), 0), 2, "the leaver is not back in the pool");
    }

    function test_Leave_Reverts() public {
        address node = _nodeAddr(0);
        VM.prank(node);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.NotLeavable.selector, node, IVerinfer.NodeState.None));
        verinfer.leave();

        _makeNodes(0, 3, H100, VRAM_80G);
        uint256 taskId = _createImageTask();
        address busy = _nodesOf(taskId)[0];
        VM.prank(busy);
        verinfer.leave();
        VM.prank(busy);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.NotLeavable.selector, busy, IVerinfer.NodeState.Leaving));
        verinfer.leave();
    }

    function _rewardPerNode(uint96 fee, uint96 payees) internal pure returns (uint96) {
        return (fee - (fee * PROTOCOL_FEE_BPS) / BPS) / payees;
    }
}
