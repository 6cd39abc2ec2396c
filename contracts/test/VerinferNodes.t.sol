// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import {Verinfer} from "../src/Verinfer.sol";
import {IVerinfer} from "../src/interfaces/IVerinfer.sol";
import {VerinferExtension} from "../src/VerinferExtension.sol";
import {GpuModels} from "../src/libraries/GpuModels.sol";
import {VM} from "./Vm.sol";
import {VerinferTestBase} from "./utils/VerinferTestBase.sol";

/// @notice Deployment, join, fee tiers, addStake, leave, GPU model names and the VRAM a model gives.
contract VerinferNodesTest is VerinferTestBase {
    // ================================================================ constructor

    function test_Constructor_SetsParamsAndEmits() public {
        IVerinfer.Params memory p = defaultParams();
        VM.expectEmit(false, false, false, true);
        emit Ownable.OwnershipTransferred(address(0), owner);
        VM.expectEmit(false, false, false, true);
        emit IVerinfer.ParamsScheduled(1, p, uint40(VM.getBlockTimestamp()));
        VM.expectEmit(false, false, false, true);
        emit IVerinfer.ParamsActivated(1);
        VM.expectEmit(false, false, false, true);
        emit IVerinfer.TreasurySet(treasury);
        Verinfer v = new Verinfer(token, p, PARAMS_DELAY, owner, treasury);

        _assertParams(VerinferExtension(address(v)).params(), p);
        _assertParams(VerinferExtension(address(v)).paramsAt(1), p);
        VM.assertEq(VerinferExtension(address(v)).paramsVersion(), 1);
        (uint24 pending,, uint40 at) = VerinferExtension(address(v)).scheduledParams();
        VM.assertEq(pending, 0, "nothing scheduled");
        VM.assertEq(at, 0);
        VM.assertEq(v.paramsDelay(), PARAMS_DELAY);
        VM.assertEq(v.owner(), owner);
        VM.assertEq(v.treasury(), treasury);
        VM.assertEq(address(v.token()), address(token));
        VM.assertEq(v.taskCount(), 0);
        VM.assertEq(v.nodeCount(), 0);
        VM.assertEq(VerinferExtension(address(v)).gpuModelCount(), 0, "the registry starts empty");
        VM.assertEq(v.lastTouchBlock(), VM.getBlockNumber());
        VM.assertEq(VerinferExtension(address(v)).minTaskFee(IMAGE, 2), MIN_TASK_FEE + 2 * MIN_IMAGE_FEE);
        VM.assertEq(VerinferExtension(address(v)).minTaskFee(TEXT, 0), MIN_TASK_FEE);
    }

    function test_Constructor_RevertsOnZeroAddresses() public {
        VM.expectRevert(IVerinfer.ZeroAddress.selector);
        new Verinfer(IERC20(address(0)), defaultParams(), PARAMS_DELAY, owner, treasury);
        VM.expectRevert(IVerinfer.ZeroAddress.selector);
        new Verinfer(token, defaultParams(), PARAMS_DELAY, owner, address(0));
        VM.expectRevert(abi.encodeWithSelector(Ownable.OwnableInvalidOwner.selector, address(0)));
        new Verinfer(token, defaultParams(), PARAMS_DELAY, address(0), treasury);
    }

    function test_Constructor_ParamsDelayAtMostThirtyDays() public {
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.ParamsDelayTooLong.selector, uint32(30 days + 1)));
        new Verinfer(token, defaultParams(), 30 days + 1, owner, treasury);
        VM.assertEq(new Verinfer(token, defaultParams(), 30 days, owner, treasury).paramsDelay(), 30 days);
        VM.assertEq(new Verinfer(token, defaultParams(), 0, owner, treasury).paramsDelay(), 0);
    }

    function test_Constructor_RevertsOnBadParams() public {
        IVerinfer.Params memory p = defaultParams();
        p.threshold = 65;
        p.stakePerThresholdBit = 0;
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.ThresholdTooHigh.selector, uint8(65), uint8(64)));
        new Verinfer(token, p, PARAMS_DELAY, owner, treasury);

        p = defaultParams();
        p.minStake = STAKE_PER_BIT * THRESHOLD - 1;
        VM.expectRevert(
            abi.encodeWithSelector(IVerinfer.StakeTooLowForThreshold.selector, p.minStake, STAKE_PER_BIT, THRESHOLD)
        );
        new Verinfer(token, p, PARAMS_DELAY, owner, treasury);

        p = defaultParams();
        p.slashShareBps = 0;
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.InvalidBps.selector, uint16(0)));
        new Verinfer(token, p, PARAMS_DELAY, owner, treasury);

        p = defaultParams();
        p.slashRewardBps = 10_001;
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.InvalidBps.selector, uint16(10_001)));
        new Verinfer(token, p, PARAMS_DELAY, owner, treasury);

        p = defaultParams();
        p.protocolFeeBps = 10_001;
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.InvalidBps.selector, uint16(10_001)));
        new Verinfer(token, p, PARAMS_DELAY, owner, treasury);

        p = defaultParams();
        p.revealWindow = 0;
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.InvalidWindow.selector, COMMIT_WINDOW, uint32(0)));
        new Verinfer(token, p, PARAMS_DELAY, owner, treasury);

        p = defaultParams();
        p.queueTimeout = 0;
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.InvalidQueueTimeout.selector, uint32(0)));
        new Verinfer(token, p, PARAMS_DELAY, owner, treasury);

        p = defaultParams();
        p.minTextPool = 2;
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.InvalidMinTextPool.selector, uint8(2)));
        new Verinfer(token, p, PARAMS_DELAY, owner, treasury);
    }

    function _assertParams(IVerinfer.Params memory got, IVerinfer.Params memory want) internal pure {
        VM.assertEq(keccak256(abi.encode(got)), keccak256(abi.encode(want)), "params");
    }

    // ================================================================ join

    function test_Join_RegistersAvailableNodeAndEmits() public {
        address node = _nodeAddr(0);
        _fund(node, MIN_STAKE);
        bytes32 modelId = _ext().gpuModelId(H100);

        VM.expectEmit(address(verinfer));
        emit IVerinfer.NodeJoined(node, 1, modelId, "nvidia h100 80gb hbm3", VRAM_80G, MIN_STAKE, 0);
        VM.prank(node);
        verinfer.join(H100, 0, MIN_STAKE);

        IVerinfer.NodeInfo memory info = _ext().getNode(node);
        VM.assertEq(uint256(info.state), uint256(IVerinfer.NodeState.Available));
        VM.assertEq(info.id, 1);
        VM.assertEq(info.stake, MIN_STAKE);
        VM.assertEq(info.gpuModel, modelId);
        VM.assertEq(info.vramMiB, VRAM_80G, "VRAM comes from the registry");
        VM.assertEq(info.feeTier, 0);
        VM.assertEq(info.taskId, 0);
        VM.assertEq(verinfer.nodeAddress(1), node);
        VM.assertEq(verinfer.nodeCount(), 1);
        VM.assertEq(token.balanceOf(node), 0, "stake pulled from the node");
        VM.assertEq(token.balanceOf(address(verinfer)), MIN_STAKE, "stake held by the contract");
        VM.assertEq(_ext().availableNodes(bytes32(0), 0), 1, "in the global pool");
        VM.assertEq(_ext().availableNodes(modelId, 0), 1, "in its model's pool");
        VM.assertEq(_ext().gpuModel(modelId).availableNodes, 1);
    }

    function test_Join_AboveMinimumStake() public {
        _join(_nodeAddr(0), H100, MIN_STAKE * 3);
        VM.assertEq(_stakeOf(_nodeAddr(0)), MIN_STAKE * 3);
    }

    function test_Join_RevertsBelowMinimumStake() public {
        address node = _nodeAddr(0);
        _fund(node, MIN_STAKE);
        VM.prank(node);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.StakeBelowMinimum.selector, MIN_STAKE - 1, MIN_STAKE));
        verinfer.join(H100, 0, MIN_STAKE - 1);
    }

    /// @dev Nodes no longer declare VRAM: the model must be in the owner's registry, and active.
    function test_Join_RevertsOnUnregisteredOrInactiveModel() public {
        address node = _nodeAddr(0);
        _fund(node, MIN_STAKE);
        bytes32 unknown = _ext().gpuModelId("NVIDIA B200");
        VM.prank(node);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.GpuModelNotRegistered.selector, unknown));
        verinfer.join("NVIDIA B200", 0, MIN_STAKE);

        bytes32 h100 = _ext().gpuModelId(H100);
        VM.prank(owner);
        _ext().setGpuModelActive(h100, false);
        VM.prank(node);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.GpuModelInactive.selector, h100));
        verinfer.join(H100, 0, MIN_STAKE);

        VM.prank(owner);
        _ext().setGpuModelActive(h100, true);
        VM.prank(node);
        verinfer.join(H100, 0, MIN_STAKE);
        _assertNodeState(node, IVerinfer.NodeState.Available);
    }

    function test_Join_RevertsOnFeeTierAboveMax() public {
        address node = _nodeAddr(0);
        _fund(node, MIN_STAKE);
        VM.prank(node);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.InvalidFeeTier.selector, uint8(8), uint8(7)));
        verinfer.join(H100, 8, MIN_STAKE);
        VM.prank(node);
        verinfer.join(H100, 7, MIN_STAKE);
        VM.assertEq(_ext().getNode(node).feeTier, 7);
    }

    function test_Join_RevertsWhenAlreadyRegistered() public {
        address node = _nodeAddr(0);
        _join(node, H100, MIN_STAKE);
        _fund(node, MIN_STAKE);
        VM.prank(node);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.AlreadyRegistered.selector, node));
        verinfer.join(H100, 0, MIN_STAKE);
    }

    function test_Join_RevertsWhileBusyOrLeaving() public {
        _makeNodes(0, 3, H100);
        uint256 taskId = _createImageTask();
        address node = _nodesOf(taskId)[0];
        _fund(node, MIN_STAKE);
        VM.prank(node);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.AlreadyRegistered.selector, node));
        verinfer.join(H100, 0, MIN_STAKE);
        VM.prank(node);
        verinfer.leave();
        VM.prank(node);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.AlreadyRegistered.selector, node));
        verinfer.join(H100, 0, MIN_STAKE);
    }

    function test_Join_RevertsOnBadGpuModelName() public {
        address node = _nodeAddr(0);
        _fund(node, MIN_STAKE);
        VM.startPrank(node);
        VM.expectRevert(GpuModels.EmptyGpuModel.selector);
        verinfer.join("", 0, MIN_STAKE);
        VM.expectRevert(GpuModels.EmptyGpuModel.selector);
        verinfer.join(" \t  ", 0, MIN_STAKE);
        string memory long = "nvidia h100 80gb hbm3 nvidia h100 80gb hbm3 nvidia h100 80gb hbm3";
        VM.expectRevert(abi.encodeWithSelector(GpuModels.GpuModelTooLong.selector, bytes(long).length, 64));
        verinfer.join(long, 0, MIN_STAKE);
        VM.expectRevert(abi.encodeWithSelector(GpuModels.InvalidGpuModelCharacter.selector, 6, bytes1(0x0a)));
        verinfer.join("NVIDIA\nH100", 0, MIN_STAKE);
        VM.expectRevert(abi.encodeWithSelector(GpuModels.InvalidGpuModelCharacter.selector, 4, bytes1(0x7f)));
        verinfer.join("H100\x7f", 0, MIN_STAKE);
        VM.expectRevert(abi.encodeWithSelector(GpuModels.InvalidGpuModelCharacter.selector, 0, bytes1(0xc3)));
        verinfer.join(unicode"é", 0, MIN_STAKE);
        VM.stopPrank();
    }

    function test_Join_AcceptsModelNameOfMaxLength() public {
        bytes memory name = new bytes(64);
        bytes memory lower = new bytes(64);
        for (uint256 i; i < 64; ++i) {
            name[i] = "A";
            lower[i] = "a";
        }
        VM.prank(owner);
        _ext().addGpuModel(string(name), VRAM_8G);
        _join(_nodeAddr(0), string(lower), MIN_STAKE);
        VM.assertEq(_ext().getNode(_nodeAddr(0)).gpuModel, keccak256(lower));
        VM.assertEq(_ext().getNode(_nodeAddr(0)).vramMiB, VRAM_8G);
    }

    // ================================================================ fee tiers

    function test_SetFeeTier_AvailableNodeMovesTier() public {
        address node = _nodeAddr(0);
        _join(node, H100, MIN_STAKE);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.FeeTierSet(node, 5);
        VM.prank(node);
        verinfer.setFeeTier(5);
        VM.assertEq(_ext().getNode(node).feeTier, 5);
        VM.assertEq(_ext().availableNodes(bytes32(0), 0), 1, "still available, in its new tier");
        _assertNodeState(node, IVerinfer.NodeState.Available);

        VM.prank(node);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.InvalidFeeTier.selector, uint8(8), uint8(7)));
        verinfer.setFeeTier(8);
        VM.prank(stranger);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.NotRegistered.selector, stranger));
        verinfer.setFeeTier(1);
    }

    /// @dev A node of fee tier t is drawn only for tasks paying at least 2^t times the minimum.
    function test_FeeTier_NodeDrawnOnlyForTasksPayingItsTier() public {
        _makeNodes(0, 2, H100);
        address pricey = _nodeAddr(2);
        _join(pricey, H100, 3, MIN_STAKE); // serves fees >= 8x the minimum
        uint96 minimum = uint96(_ext().minTaskFee(IMAGE, 1));

        uint256 cheap = _createImageTask(1, 0, 8 * minimum - 1);
        VM.assertEq(_ext().getTask(cheap).feeLevel, 2);
        _assertStatus(cheap, IVerinfer.TaskStatus.Queued);

        uint256 paying = _createImageTask(1, 0, 8 * minimum);
        VM.assertEq(_ext().getTask(paying).feeLevel, 3);
        _assertStatus(paying, IVerinfer.TaskStatus.Committing);
        _assertNodeState(pricey, IVerinfer.NodeState.Busy);
        _assertStatus(cheap, IVerinfer.TaskStatus.Queued);
    }

    /// @dev A busy node's new tier applies when it is released.
    function test_SetFeeTier_BusyNodeKeepsTierUntilReleased() public {
        _makeNodes(0, 3, H100);
        uint256 taskId = _createImageTask();
        address node = _nodesOf(taskId)[0];
        VM.prank(node);
        verinfer.setFeeTier(7);
        _assertNodeState(node, IVerinfer.NodeState.Busy);
        _runHonestImageTask(taskId);
        IVerinfer.NodeInfo memory info = _ext().getNode(node);
        VM.assertEq(info.feeTier, 7);
        VM.assertEq(uint256(info.state), uint256(IVerinfer.NodeState.Available));
        // FEE pays for tier 3 only: the tier-7 node is not drawn, so the task waits.
        uint256 next = _createImageTask();
        _assertStatus(next, IVerinfer.TaskStatus.Queued);
    }

    // ================================================================ GPU model normalisation

    function test_GpuModel_NormalisesCaseAndWhitespace() public view {
        bytes32 id = keccak256("nvidia h100");
        VM.assertEq(_ext().gpuModelId("nvidia h100"), id);
        VM.assertEq(_ext().gpuModelId("  NVIDIA  H100 "), id);
        VM.assertEq(_ext().gpuModelId("\tNvidia\t \tH100\t"), id);
        VM.assertEq(_ext().gpuModelId("NVIDIA H100"), id);
        VM.assertNotEq(_ext().gpuModelId("nvidiah100"), id);
        VM.assertNotEq(_ext().gpuModelId("nvidia h100 pcie"), id);
    }

    function test_GpuModel_NormalisedNamesShareAPool() public {
        VM.prank(owner);
        _ext().addGpuModel("NVIDIA H100", VRAM_80G);
        _join(_nodeAddr(0), "  NVIDIA  H100 ", MIN_STAKE);
        _join(_nodeAddr(1), "nvidia h100", MIN_STAKE);
        _join(_nodeAddr(2), "Nvidia\tH100", MIN_STAKE);
        bytes32 id = keccak256("nvidia h100");
        VM.assertEq(_ext().availableNodes(id, 0), 3);
        // A text task naming the model in yet another spelling is served by the three.
        uint256 taskId = _createTextTask("NVIDIA H100", 0, FEE);
        _assertStatus(taskId, IVerinfer.TaskStatus.Committing);
        VM.assertEq(_ext().getTask(taskId).gpuModel, id);
    }

    function test_GpuModel_JoinEventCarriesNormalForm() public {
        VM.prank(owner);
        _ext().addGpuModel("NVIDIA H100", VRAM_80G);
        address node = _nodeAddr(0);
        _fund(node, MIN_STAKE);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.NodeJoined(node, 1, keccak256("nvidia h100"), "nvidia h100", VRAM_80G, MIN_STAKE, 0);
        VM.prank(node);
        verinfer.join("  NVIDIA  H100 ", 0, MIN_STAKE);
    }

    // ================================================================ VRAM from the registry

    /// @dev A node's VRAM is its model's: an RTX 4090 (24 GiB) is offered exactly the tasks that need
    ///      at most 24 GiB (no rounding to tiers any more), whatever it might have claimed.
    function test_Vram_ComesFromTheModel() public {
        _makeNodes(0, 3, RTX4090);
        VM.assertEq(_ext().getNode(_nodeAddr(0)).vramMiB, VRAM_24G);
        VM.assertEq(_ext().availableNodes(bytes32(0), 0), 3);
        VM.assertEq(_ext().availableNodes(bytes32(0), 20_480), 3, "20 GiB task: 24 GiB nodes qualify");
        VM.assertEq(_ext().availableNodes(bytes32(0), VRAM_24G), 3, "exactly 24 GiB qualifies");
        VM.assertEq(_ext().availableNodes(bytes32(0), VRAM_24G + 1), 0, "just over 24 GiB: 80 GiB models only");

        uint256 queued = _createImageTask(1, VRAM_24G + 1, FEE);
        _assertStatus(queued, IVerinfer.TaskStatus.Queued);
        uint256 started = _createImageTask(1, VRAM_24G, FEE);
        _assertStatus(started, IVerinfer.TaskStatus.Committing);
    }

    function test_Vram_LargerModelServesSmallerTask() public {
        _join(_nodeAddr(0), H100, MIN_STAKE);
        _join(_nodeAddr(1), RTX4060, MIN_STAKE);
        _join(_nodeAddr(2), RTX4090, MIN_STAKE);
        VM.assertEq(_ext().availableNodes(bytes32(0), 1024), 3);
        VM.assertEq(_ext().availableNodes(bytes32(0), VRAM_8G), 3);
        VM.assertEq(_ext().availableNodes(bytes32(0), VRAM_8G + 1), 2);
        VM.assertEq(_ext().availableNodes(bytes32(0), VRAM_24G + 1), 1);
        VM.assertEq(_ext().availableNodes(bytes32(0), VRAM_80G), 1);
        VM.assertEq(_ext().availableNodes(bytes32(0), VRAM_80G + 1), 0);
        uint256 taskId = _createImageTask(1, 1024, FEE);
        _assertStatus(taskId, IVerinfer.TaskStatus.Committing);
    }

    // ================================================================ addStake

    function test_AddStake_IncreasesStakeAndEmits() public {
        address node = _nodeAddr(0);
        _join(node, H100, MIN_STAKE);
        token.mint(node, 5 ether);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.StakeAdded(node, 5 ether, MIN_STAKE + 5 ether);
        VM.prank(node);
        verinfer.addStake(5 ether);
        VM.assertEq(_stakeOf(node), MIN_STAKE + 5 ether);
        VM.assertEq(token.balanceOf(address(verinfer)), MIN_STAKE + 5 ether);
    }

    function test_AddStake_WorksWhileBusy() public {
        _makeNodes(0, 3, H100);
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
        _join(node, H100, huge);
        token.mint(node, 1);
        VM.prank(node);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.StakeOverflow.selector, node));
        verinfer.addStake(1);
    }

    // ================================================================ leave

    function test_Leave_IdleNodeGetsStakeBack() public {
        address node = _nodeAddr(0);
        _join(node, H100, MIN_STAKE + 7);
        VM.expectEmit(address(verinfer));
        emit IVerinfer.NodeExited(node, IVerinfer.ExitReason.Left, MIN_STAKE + 7);
        VM.prank(node);
        verinfer.leave();
        VM.assertEq(token.balanceOf(node), MIN_STAKE + 7, "stake returned at once (the node's own call)");
        VM.assertEq(verinfer.claimable(node), 0, "nothing credited");
        VM.assertEq(token.balanceOf(address(verinfer)), 0);
        IVerinfer.NodeInfo memory info = _ext().getNode(node);
        VM.assertEq(uint256(info.state), uint256(IVerinfer.NodeState.None));
        VM.assertEq(info.stake, 0);
        VM.assertEq(_ext().availableNodes(bytes32(0), 0), 0, "out of the global pool");
        VM.assertEq(_ext().availableNodes(info.gpuModel, 0), 0, "out of the model pool");
    }

    function test_Leave_ThenRejoinKeepsId() public {
        address node = _nodeAddr(0);
        _join(node, H100, MIN_STAKE);
        VM.prank(node);
        verinfer.leave();
        _join(node, RTX4090, 2, MIN_STAKE);
        IVerinfer.NodeInfo memory info = _ext().getNode(node);
        VM.assertEq(info.id, 1, "same id");
        VM.assertEq(verinfer.nodeCount(), 1);
        VM.assertEq(info.gpuModel, _ext().gpuModelId(RTX4090), "new model");
        VM.assertEq(info.vramMiB, VRAM_24G, "the new model's VRAM");
        VM.assertEq(info.feeTier, 2, "new fee tier");
        VM.assertEq(_ext().availableNodes(_ext().gpuModelId(H100), 0), 0);
        VM.assertEq(_ext().availableNodes(_ext().gpuModelId(RTX4090), 0), 1);
    }

    /// @dev Swap-and-pop removal keeps the pools consistent: after nodes in the middle leave,
    ///      every remaining node can still be selected, and no removed one is.
    function test_Leave_KeepsPoolsConsistent() public {
        address[] memory nodes = _makeNodes(0, 7, H100);
        VM.prank(nodes[2]);
        verinfer.leave();
        VM.prank(nodes[0]);
        verinfer.leave();
        VM.prank(nodes[6]);
        verinfer.leave();
        VM.assertEq(_ext().availableNodes(bytes32(0), 0), 4);
        uint256 a = _createTextTask(H100, 0, FEE);
        _assertStatus(a, IVerinfer.TaskStatus.Committing);
        uint256 b = _createImageTask();
        _assertStatus(b, IVerinfer.TaskStatus.Queued);
        address[3] memory picked = _nodesOf(a);
        for (uint256 i; i < 3; ++i) {
            VM.assertTrue(picked[i] != nodes[0] && picked[i] != nodes[2] && picked[i] != nodes[6], "left node picked");
            _assertNodeState(picked[i], IVerinfer.NodeState.Busy);
        }
        VM.assertEq(_ext().availableNodes(bytes32(0), 0), 1);
        VM.assertEq(_ext().availableNodes(_ext().gpuModelId(H100), 0), 1);
    }

    /// @dev A busy node that leaves is paid at settlement by a credit (settlement never transfers),
    ///      which it withdraws itself.
    function test_Leave_BusyNodeIsMarkedLeavingAndCreditedAtSettlement() public {
        _makeNodes(0, 3, H100);
        uint256 taskId = _createImageTask();
        address node = _nodesOf(taskId)[0];

        VM.expectEmit(address(verinfer));
        emit IVerinfer.NodeLeaving(node, taskId);
        VM.prank(node);
        verinfer.leave();
        _assertNodeState(node, IVerinfer.NodeState.Leaving);
        VM.assertEq(token.balanceOf(node), 0, "no transfer while the task runs");
        VM.assertEq(_ext().getNode(node).taskId, taskId);

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
        VM.expectEmit(address(verinfer));
        emit IVerinfer.BalanceCredited(node, taskId, IVerinfer.CreditReason.StakeReturned, MIN_STAKE + reward);
        _revealImage(taskId, node, h);

        VM.assertEq(token.balanceOf(node), 0, "settlement transfers nothing");
        VM.assertEq(verinfer.claimable(node), MIN_STAKE + reward, "stake and reward credited");
        _assertNodeState(node, IVerinfer.NodeState.None);
        VM.assertEq(_ext().availableNodes(bytes32(0), 0), 2, "the leaver is not back in the pool");
        _assertTokenAccounting();

        VM.expectEmit(address(verinfer));
        emit IVerinfer.Withdrawn(node, MIN_STAKE + reward);
        VM.assertEq(_withdraw(node), MIN_STAKE + reward);
        VM.assertEq(token.balanceOf(node), MIN_STAKE + reward, "withdrawn");
        VM.assertEq(verinfer.claimable(node), 0);
        VM.prank(node);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.NothingToWithdraw.selector, node));
        verinfer.withdraw();
        _assertTokenAccounting();
    }

    function test_Leave_Reverts() public {
        address node = _nodeAddr(0);
        VM.prank(node);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.NotLeavable.selector, node, IVerinfer.NodeState.None));
        verinfer.leave();

        _makeNodes(0, 3, H100);
        uint256 taskId = _createImageTask();
        address busy = _nodesOf(taskId)[0];
        VM.prank(busy);
        verinfer.leave();
        VM.prank(busy);
        VM.expectRevert(abi.encodeWithSelector(IVerinfer.NotLeavable.selector, busy, IVerinfer.NodeState.Leaving));
        verinfer.leave();
    }
}
