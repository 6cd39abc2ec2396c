// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import {Verinfer} from "../contracts/src/Verinfer.sol";
import {IVerinfer} from "../contracts/src/interfaces/IVerinfer.sol";
import {MockStakingToken} from "../contracts/src/mocks/MockStakingToken.sol";
import {VM} from "../contracts/test/Vm.sol";

/// @title Deploy
/// @notice Deploys the verinfer validation contract and writes `deployments/<chainid>.json`.
/// @dev Every parameter comes from an environment variable with a default that works on anvil:
///      DEPLOYER_PRIVATE_KEY     deployer key (default: anvil account 0)
///      VERINFER_STAKING_TOKEN   ERC20 to stake and pay fees in (default: a MockStakingToken, anvil only)
///      VERINFER_OWNER           owner (default: deployer)         VERINFER_TREASURY  treasury (default: owner)
///      VERINFER_THRESHOLD       Hamming threshold in bits (10)    VERINFER_MIN_STAKE minimum stake (1000e18)
///      VERINFER_STAKE_PER_THRESHOLD_BIT (100e18)                  VERINFER_SLASH_SHARE_BPS (5000)
///      VERINFER_PROTOCOL_FEE_BPS (500)   VERINFER_COMMIT_WINDOW s (300)   VERINFER_REVEAL_WINDOW s (300)
///      VERINFER_MOCK_MINT       tokens minted to the deployer with the mock token (1e9 * 1e18)
///      VERINFER_DEPLOYMENTS_DIR where the JSON goes (default: <project>/deployments)
contract Deploy {
    uint256 internal constant ANVIL_KEY_0 = 0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80;
    uint256 internal constant ANVIL_CHAIN_ID = 31337;

    error MockTokenOutsideDevnet(uint256 chainId);

    /// @notice Deploys and returns the contracts.
    function run() external returns (Verinfer verinfer, IERC20 token) {
        uint256 deployerKey = VM.envOr("DEPLOYER_PRIVATE_KEY", ANVIL_KEY_0);
        address deployer = VM.addr(deployerKey);
        address owner = VM.envOr("VERINFER_OWNER", deployer);
        address treasury = VM.envOr("VERINFER_TREASURY", owner);
        IVerinfer.InitParams memory params = IVerinfer.InitParams({
            threshold: uint8(VM.envOr("VERINFER_THRESHOLD", uint256(10))),
            minStake: uint96(VM.envOr("VERINFER_MIN_STAKE", uint256(1000 ether))),
            stakePerThresholdBit: uint96(VM.envOr("VERINFER_STAKE_PER_THRESHOLD_BIT", uint256(100 ether))),
            slashShareBps: uint16(VM.envOr("VERINFER_SLASH_SHARE_BPS", uint256(5000))),
            protocolFeeBps: uint16(VM.envOr("VERINFER_PROTOCOL_FEE_BPS", uint256(500))),
            commitWindow: uint32(VM.envOr("VERINFER_COMMIT_WINDOW", uint256(300))),
            revealWindow: uint32(VM.envOr("VERINFER_REVEAL_WINDOW", uint256(300)))
        });
        address tokenAddress = VM.envOr("VERINFER_STAKING_TOKEN", address(0));
        bool mock = tokenAddress == address(0);
        if (mock && block.chainid != ANVIL_CHAIN_ID) revert MockTokenOutsideDevnet(block.chainid);
        uint256 deployBlock = block.number;

        VM.startBroadcast(deployerKey);
        if (mock) {
            MockStakingToken mockToken = new MockStakingToken();
            mockToken.mint(deployer, VM.envOr("VERINFER_MOCK_MINT", uint256(1e9 ether)));
            tokenAddress = address(mockToken);
        }
        token = IERC20(tokenAddress);
        verinfer = new Verinfer(token, params, owner, treasury);
        VM.stopBroadcast();

        _write(verinfer, tokenAddress, mock, owner, treasury, deployBlock);
    }

    function _write(Verinfer verinfer, address token, bool mock, address owner, address treasury, uint256 deployBlock)
        internal
    {
        string memory key = "deployment";
        VM.serializeUint(key, "chainId", block.chainid);
        VM.serializeAddress(key, "verinfer", address(verinfer));
        VM.serializeAddress(key, "stakingToken", token);
        VM.serializeBool(key, "mockToken", mock);
        VM.serializeAddress(key, "owner", owner);
        VM.serializeAddress(key, "treasury", treasury);
        string memory json = VM.serializeUint(key, "deployBlock", deployBlock);
        string memory dir = string.concat(VM.projectRoot(), "/deployments");
        dir = _envString("VERINFER_DEPLOYMENTS_DIR", dir);
        VM.createDir(dir, true);
        VM.writeJson(json, string.concat(dir, "/", VM.toString(block.chainid), ".json"));
    }

    function _envString(string memory name, string memory fallback_) internal view returns (string memory) {
        (bool ok, bytes memory ret) =
            address(VM).staticcall(abi.encodeWithSignature("envOr(string,string)", name, fallback_));
        return ok ? abi.decode(ret, (string)) : fallback_;
    }
}
