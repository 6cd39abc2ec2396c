// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Hamming} from "../src/libraries/Hamming.sol";
import {GpuModels} from "../src/libraries/GpuModels.sol";
import {VM} from "./Vm.sol";
import {VerinferTestBase} from "./utils/VerinferTestBase.sol";

/// @dev External wrapper so that library reverts can be expected.
contract GpuModelsHarness {
    function normalise(string calldata name) external pure returns (bytes32 id, string memory normal) {
        return GpuModels.normalise(name);
    }
}

/// @notice Hamming distances and popcounts against a per-bit reference; GPU model normalisation.
contract HammingTest is VerinferTestBase {
    GpuModelsHarness internal models;

    function setUp() public override {
        super.setUp();
        models = new GpuModelsHarness();
    }

    // ================================================================ Hamming

    function test_Distance64_Examples() public pure {
        VM.assertEq(Hamming.distance64(0, 0), 0);
        VM.assertEq(Hamming.distance64(0, type(uint64).max), 64);
        VM.assertEq(Hamming.distance64(0x8000000000000000, 0), 1);
        VM.assertEq(Hamming.distance64(0x0f0f0f0f0f0f0f0f, 0xf0f0f0f0f0f0f0f0), 64);
        VM.assertEq(Hamming.distance64(0x0123456789abcdef, 0x0123456789abcdee), 1);
        VM.assertEq(Hamming.distance64(0xffffffff00000000, 0x00000000ffffffff), 64);
        VM.assertEq(Hamming.distance64(0xaaaaaaaaaaaaaaaa, 0), 32);
    }

    function test_Popcount256_Examples() public pure {
        VM.assertEq(Hamming.popcount256(0), 0);
        VM.assertEq(Hamming.popcount256(type(uint256).max), 256);
        VM.assertEq(Hamming.popcount256(1 << 255), 1);
        VM.assertEq(Hamming.popcount256(type(uint128).max), 128);
        VM.assertEq(Hamming.distance256(bytes32(0), bytes32(type(uint256).max)), 256);
    }

    function testFuzz_Distance64MatchesNaive(uint64 a, uint64 b) public pure {
        VM.assertEq(Hamming.distance64(a, b), _naiveDistance64(a, b));
    }

    function testFuzz_Distance64IsSymmetricAndZeroOnlyForEqual(uint64 a, uint64 b) public pure {
        VM.assertEq(Hamming.distance64(a, b), Hamming.distance64(b, a));
        VM.assertEq(Hamming.distance64(a, a), 0);
        if (a != b) VM.assertGt(Hamming.distance64(a, b), 0);
    }

    /// @dev Sparse and dense inputs too (a uniform fuzz input is rarely near 0 or 64 bits set).
    function testFuzz_Distance64MatchesNaive_Skewed(uint64 a, uint64 r1, uint64 r2, uint8 mode) public pure {
        uint64 mask = mode % 3 == 0 ? r1 & r2 : (mode % 3 == 1 ? r1 | r2 : r1 & r2 & uint64(uint256(mode) << 56));
        VM.assertEq(Hamming.distance64(a, a ^ mask), _naivePopcount(mask));
    }

    function testFuzz_Popcount256MatchesNaive(uint256 v) public pure {
        VM.assertEq(Hamming.popcount256(v), _naivePopcount(v));
    }

    function testFuzz_Popcount256MatchesNaive_Skewed(uint256 r1, uint256 r2, uint256 r3) public pure {
        VM.assertEq(Hamming.popcount256(r1 & r2 & r3), _naivePopcount(r1 & r2 & r3));
        VM.assertEq(Hamming.popcount256(r1 | r2 | r3), _naivePopcount(r1 | r2 | r3));
    }

    function testFuzz_Distance256MatchesNaive(bytes32 a, bytes32 b) public pure {
        VM.assertEq(Hamming.distance256(a, b), _naivePopcount(uint256(a ^ b)));
    }

    // ================================================================ GPU model names

    /// @dev Reference normal form: ASCII lower case, whitespace runs collapsed, ends trimmed.
    function _referenceNormal(bytes memory raw) internal pure returns (bytes memory out) {
        out = new bytes(raw.length);
        uint256 n;
        bool space;
        for (uint256 i; i < raw.length; ++i) {
            bytes1 c = raw[i];
            if (c == " " || c == "\t") {
                space = n > 0;
                continue;
            }
            if (space) {
                out[n++] = " ";
                space = false;
            }
            out[n++] = (c >= "A" && c <= "Z") ? bytes1(uint8(c) + 32) : c;
        }
        assembly ("memory-safe") {
            mstore(out, n)
        }
    }

    /// @dev Random printable names, spaces and tabs: the id is keccak of the reference normal
    ///      form; random upper-casing and whitespace padding do not change it.
    function testFuzz_GpuModelNormalisation(bytes32 seed, uint8 length) public {
        uint256 len = _bound(length, 1, 60);
        bytes memory raw = new bytes(len);
        bytes memory variant = new bytes(len + 3);
        variant[0] = " ";
        variant[1] = "\t";
        for (uint256 i; i < len; ++i) {
            uint8 r = uint8(uint256(keccak256(abi.encode(seed, i))));
            bytes1 c = r % 5 == 0 ? bytes1(" ") : (r % 11 == 0 ? bytes1("\t") : bytes1(0x21 + (r % 94)));
            raw[i] = c;
            // The variant swaps the case of every letter and adds whitespace around the name.
            bool lower = c >= "a" && c <= "z";
            bool upper = c >= "A" && c <= "Z";
            variant[i + 2] = lower ? bytes1(uint8(c) - 32) : (upper ? bytes1(uint8(c) + 32) : c);
        }
        variant[len + 2] = " ";
        bytes memory normal = _referenceNormal(raw);
        if (normal.length == 0) {
            VM.expectRevert(GpuModels.EmptyGpuModel.selector);
            models.normalise(string(raw));
            return;
        }
        (bytes32 id, string memory got) = models.normalise(string(raw));
        VM.assertEq(got, string(normal));
        VM.assertEq(id, keccak256(normal));
        (bytes32 variantId,) = models.normalise(string(variant));
        VM.assertEq(variantId, id, "case and outer whitespace do not matter");
    }

    function testFuzz_GpuModelRejectsControlAndNonAscii(uint8 position, uint8 bad) public {
        bytes1 c = bytes1(bad);
        VM.assume(c != " " && c != "\t" && (uint8(c) < 0x21 || uint8(c) > 0x7e));
        bytes memory raw = bytes("nvidia h100");
        uint256 i = _bound(position, 0, raw.length - 1);
        raw[i] = c;
        VM.expectRevert(abi.encodeWithSelector(GpuModels.InvalidGpuModelCharacter.selector, i, c));
        models.normalise(string(raw));
    }
}
