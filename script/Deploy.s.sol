// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import {Verinfer} from "../contracts/src/Verinfer.sol";
import {VerinferExtension} from "../contracts/src/VerinferExtension.sol";
import {IVerinfer} from "../contracts/src/interfaces/IVerinfer.sol";
import {MockStakingToken} from "../contracts/src/mocks/MockStakingToken.sol";
import {VM} from "../contracts/test/Vm.sol";

/// @title Deploy
/// @notice Deploys the verinfer validation contract, registers the GPU models nodes may declare and
///         writes `deployments/<chainid>.json`.
/// @dev Every parameter comes from an environment variable with a default that works on anvil.
///      Amounts are token base units (18 decimals: 1e18 = one token), given as plain integers.
///      DEPLOYER_PRIVATE_KEY     deployer key (default: anvil account 0)
///      VERINFER_STAKING_TOKEN   ERC20 to stake and pay fees in (default: a MockStakingToken, anvil only)
///      VERINFER_OWNER           owner (default: deployer)         VERINFER_TREASURY  treasury (default: owner)
///      Parameter version 1 (`IVerinfer.Params`; the owner schedules later versions):
///      VERINFER_THRESHOLD       Hamming threshold in bits (10)    VERINFER_MIN_STAKE minimum stake (1000e18)
///      VERINFER_STAKE_PER_THRESHOLD_BIT (100e18)                  VERINFER_MIN_TEXT_POOL nodes, >= 3 (3)
///      VERINFER_SLASH_SHARE_BPS (5000)   VERINFER_SLASH_REWARD_BPS share of a slash paid to the agreeing nodes (5000)
///      VERINFER_PROTOCOL_FEE_BPS (500)   VERINFER_COMMIT_WINDOW s (300)   VERINFER_REVEAL_WINDOW s (300)
///      VERINFER_QUEUE_TIMEOUT   s a task may wait for nodes before it expires (86400)
///      VERINFER_MIN_TASK_FEE    smallest fee of any task (1e18)   VERINFER_MIN_IMAGE_FEE added per image (0.1e18)
///      VERINFER_SAMPLING_BPS    probability a sampled task is checked by two more nodes, bps 1..10000 (500)
///      VERINFER_PARAMS_DELAY    s between scheduling a parameter version and its effect, immutable, at most
///                               30 days (default: 172800 = 2 days; 0 on anvil, chain id 31337)
///      VERINFER_GPU_MODELS      GPU models to register, `name=vramMiB;name=vramMiB` (default: DEFAULT_GPU_MODELS;
///                               empty or `none`: none). Registering needs the owner's key: when VERINFER_OWNER is
///                               not the deployer the list is skipped (with a message) and the owner registers
///                               them (`addGpuModel`). Nodes may only join with a registered model.
///      VERINFER_MOCK_MINT       tokens minted to the deployer with the mock token (1e9 * 1e18)
///      VERINFER_DEPLOYMENTS_DIR where the JSON goes (default: <project>/deployments)
///      The JSON holds chainId, verinfer, stakingToken, mockToken, owner, treasury, deployBlock and paramsDelay.
///
///      GPU models. A node declares the name NVML reports for its GPU (`nvidia-smi --query-gpu=name`);
///      the contract normalises case and whitespace, and the VRAM of the model is the registry's
///      (NVML's total memory in MiB, `nvidia-smi --query-gpu=memory.total`). DEFAULT_GPU_MODELS:
///        NVIDIA H200 143771             NVIDIA H100 80GB HBM3 81559      NVIDIA H100 PCIe 81559
///        NVIDIA A100-SXM4-80GB 81920    NVIDIA A100 80GB PCIe 81920      NVIDIA A100-SXM4-40GB 40960
///        NVIDIA A100-PCIE-40GB 40960    NVIDIA L40S 46068                NVIDIA RTX A6000 49140
///        NVIDIA A10G 23028              NVIDIA A10 23028                 NVIDIA L4 23034
///        NVIDIA GeForce RTX 4090 24564  NVIDIA GeForce RTX 3090 24576    NVIDIA GeForce RTX 4080 16376
///        NVIDIA GeForce RTX 4060 8188   Tesla T4 15360
///      A node without an NVIDIA GPU declares `cpu:<CPU model>` (from /proc/cpuinfo) with its RAM as
///      VRAM: register such a model explicitly (`VERINFER_GPU_MODELS="cpu:AMD EPYC 7B13=257000"`).
///      At most 32 models are ever registered (the contract's MAX_GPU_MODELS).
contract Deploy {
    uint256 internal constant ANVIL_KEY_0 = 0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80;
    uint256 internal constant ANVIL_CHAIN_ID = 31337;
    /// @notice Default `paramsDelay` on real chains: users get two days' notice of a parameter change.
    uint256 internal constant DEFAULT_PARAMS_DELAY = 2 days;
    /// @notice GPU models registered when VERINFER_GPU_MODELS is not set (see the contract notes).
    string internal constant DEFAULT_GPU_MODELS = "NVIDIA H200=143771;" "NVIDIA H100 80GB HBM3=81559;"
        "NVIDIA H100 PCIe=81559;" "NVIDIA A100-SXM4-80GB=81920;" "NVIDIA A100 80GB PCIe=81920;"
        "NVIDIA A100-SXM4-40GB=40960;" "NVIDIA A100-PCIE-40GB=40960;" "NVIDIA L40S=46068;" "NVIDIA RTX A6000=49140;"
        "NVIDIA A10G=23028;" "NVIDIA A10=23028;" "NVIDIA L4=23034;" "NVIDIA GeForce RTX 4090=24564;"
        "NVIDIA GeForce RTX 3090=24576;" "NVIDIA GeForce RTX 4080=16376;" "NVIDIA GeForce RTX 4060=8188;"
        "Tesla T4=15360";
    /// @dev The console that forge scripts print through.
    address internal constant CONSOLE = 0x000000000000000000636F6e736F6c652e6c6f67;

    error MockTokenOutsideDevnet(uint256 chainId);
    error InvalidGpuModelEntry(string entry);

    struct GpuModelEntry {
        string name;
        uint32 vramMiB;
    }

    /// @notice Deploys and returns the contracts.
    function run() external returns (Verinfer verinfer, IERC20 token) {
        uint256 deployerKey = VM.envOr("DEPLOYER_PRIVATE_KEY", ANVIL_KEY_0);
        address deployer = VM.addr(deployerKey);
        address owner = VM.envOr("VERINFER_OWNER", deployer);
        address treasury = VM.envOr("VERINFER_TREASURY", owner);
        IVerinfer.Params memory params = _params();
        uint32 paramsDelay =
            uint32(VM.envOr("VERINFER_PARAMS_DELAY", block.chainid == ANVIL_CHAIN_ID ? 0 : DEFAULT_PARAMS_DELAY));
        GpuModelEntry[] memory models = _parseGpuModels(_envString("VERINFER_GPU_MODELS", DEFAULT_GPU_MODELS));
        address tokenAddress = VM.envOr("VERINFER_STAKING_TOKEN", address(0));
        bool mock = tokenAddress == address(0);
        if (mock && block.chainid != ANVIL_CHAIN_ID) revert MockTokenOutsideDevnet(block.chainid);
        bool register = models.length != 0 && owner == deployer;
        if (models.length != 0 && !register) {
            _log(
                string.concat(
                    "VERINFER_OWNER is not the deployer: ",
                    VM.toString(models.length),
                    " GPU model(s) NOT registered; the owner must call addGpuModel(name, vramMiB) for each before nodes can join"
                )
            );
        }
        uint256 deployBlock = block.number;

        VM.startBroadcast(deployerKey);
        if (mock) {
            MockStakingToken mockToken = new MockStakingToken();
            mockToken.mint(deployer, VM.envOr("VERINFER_MOCK_MINT", uint256(1e9 ether)));
            tokenAddress = address(mockToken);
        }
        token = IERC20(tokenAddress);
        verinfer = new Verinfer(token, params, paramsDelay, owner, treasury);
        if (register) {
            for (uint256 i; i < models.length; ++i) {
                VerinferExtension(address(verinfer)).addGpuModel(models[i].name, models[i].vramMiB);
            }
        }
        VM.stopBroadcast();
        if (register) _log(string.concat("registered ", VM.toString(models.length), " GPU model(s)"));

        _write(verinfer, tokenAddress, mock, owner, treasury, deployBlock, paramsDelay);
    }

    /// @dev Parameter version 1 from the environment.
    function _params() internal view returns (IVerinfer.Params memory) {
        return IVerinfer.Params({
            threshold: uint8(VM.envOr("VERINFER_THRESHOLD", uint256(10))),
            minTextPool: uint8(VM.envOr("VERINFER_MIN_TEXT_POOL", uint256(3))),
            slashShareBps: uint16(VM.envOr("VERINFER_SLASH_SHARE_BPS", uint256(5000))),
            slashRewardBps: uint16(VM.envOr("VERINFER_SLASH_REWARD_BPS", uint256(5000))),
            protocolFeeBps: uint16(VM.envOr("VERINFER_PROTOCOL_FEE_BPS", uint256(500))),
            commitWindow: uint32(VM.envOr("VERINFER_COMMIT_WINDOW", uint256(300))),
            revealWindow: uint32(VM.envOr("VERINFER_REVEAL_WINDOW", uint256(300))),
            queueTimeout: uint32(VM.envOr("VERINFER_QUEUE_TIMEOUT", uint256(86400))),
            minStake: uint96(VM.envOr("VERINFER_MIN_STAKE", uint256(1000 ether))),
            stakePerThresholdBit: uint96(VM.envOr("VERINFER_STAKE_PER_THRESHOLD_BIT", uint256(100 ether))),
            minTaskFee: uint96(VM.envOr("VERINFER_MIN_TASK_FEE", uint256(1 ether))),
            minImageFee: uint96(VM.envOr("VERINFER_MIN_IMAGE_FEE", uint256(0.1 ether))),
            samplingBps: uint16(VM.envOr("VERINFER_SAMPLING_BPS", uint256(500)))
        });
    }

    /// @dev Parses `name=vramMiB;name=vramMiB` (empty entries ignored; `none` or empty: no model).
    ///      The name is everything before the entry's last `=` (the contract normalises it).
    function _parseGpuModels(string memory list) internal pure returns (GpuModelEntry[] memory models) {
        bytes memory raw = bytes(list);
        if (keccak256(raw) == keccak256("none")) return models;
        uint256 count;
        for (uint256 i; i < raw.length; ++i) {
            if (raw[i] == ";") ++count;
        }
        models = new GpuModelEntry[](count + 1);
        uint256 found;
        uint256 start;
        for (uint256 i; i <= raw.length; ++i) {
            if (i < raw.length && raw[i] != ";") continue;
            (bool empty, GpuModelEntry memory entry) = _parseEntry(raw, start, i);
            if (!empty) models[found++] = entry;
            start = i + 1;
        }
        assembly ("memory-safe") {
            mstore(models, found)
        }
    }

    /// @dev One `name=vramMiB` entry of `raw[start:end]`; `empty` when it is only whitespace.
    function _parseEntry(bytes memory raw, uint256 start, uint256 end)
        internal
        pure
        returns (bool empty, GpuModelEntry memory entry)
    {
        while (start < end && (raw[start] == " " || raw[start] == "\t" || raw[start] == "\n")) ++start;
        while (end > start && (raw[end - 1] == " " || raw[end - 1] == "\t" || raw[end - 1] == "\n")) --end;
        if (start == end) return (true, entry);
        uint256 eq = end;
        for (uint256 i = end; i > start; --i) {
            if (raw[i - 1] == "=") {
                eq = i - 1;
                break;
            }
        }
        bytes memory text = new bytes(end - start);
        for (uint256 i; i < text.length; ++i) {
            text[i] = raw[start + i];
        }
        if (eq == end || eq == start) revert InvalidGpuModelEntry(string(text));
        bytes memory name = new bytes(eq - start);
        for (uint256 i; i < name.length; ++i) {
            name[i] = raw[start + i];
        }
        uint256 vram;
        uint256 digits;
        for (uint256 i = eq + 1; i < end; ++i) {
            bytes1 c = raw[i];
            if (c == " " && digits == 0) continue;
            if (c < "0" || c > "9" || vram > type(uint32).max) revert InvalidGpuModelEntry(string(text));
            vram = vram * 10 + (uint8(c) - 48);
            ++digits;
        }
        if (digits == 0 || vram > type(uint32).max) revert InvalidGpuModelEntry(string(text));
        entry = GpuModelEntry({name: string(name), vramMiB: uint32(vram)});
    }

    function _write(
        Verinfer verinfer,
        address token,
        bool mock,
        address owner,
        address treasury,
        uint256 deployBlock,
        uint32 paramsDelay
    ) internal {
        string memory key = "deployment";
        VM.serializeUint(key, "chainId", block.chainid);
        VM.serializeAddress(key, "verinfer", address(verinfer));
        VM.serializeAddress(key, "stakingToken", token);
        VM.serializeBool(key, "mockToken", mock);
        VM.serializeAddress(key, "owner", owner);
        VM.serializeAddress(key, "treasury", treasury);
        VM.serializeUint(key, "paramsDelay", paramsDelay);
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

    /// @dev Prints `message` in forge's output (console.log(string)); best effort.
    function _log(string memory message) internal view returns (bool printed) {
        (printed,) = CONSOLE.staticcall(abi.encodeWithSignature("log(string)", message));
    }
}
