// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Hamming
/// @notice Constant-gas population counts and Hamming distances for 64-bit pHashes and 256-bit digests.
/// @dev SWAR popcount: no per-bit loop, so the cost does not depend on the input.
library Hamming {
    /// @notice Number of differing bits between two 64-bit perceptual hashes (0..64).
    function distance64(uint64 a, uint64 b) internal pure returns (uint256 d) {
        assembly ("memory-safe") {
            let x := xor(a, b)
            x := sub(x, and(shr(1, x), 0x5555555555555555))
            x := add(and(x, 0x3333333333333333), and(shr(2, x), 0x3333333333333333))
            x := and(add(x, shr(4, x)), 0x0f0f0f0f0f0f0f0f)
            // Sum of the eight byte counts lands in bits 56..63 of the product.
            d := and(shr(56, mul(x, 0x0101010101010101)), 0xff)
        }
    }

    /// @notice Number of set bits in a 256-bit word (0..256).
    function popcount256(uint256 v) internal pure returns (uint256 c) {
        assembly ("memory-safe") {
            let m1 := 0x5555555555555555555555555555555555555555555555555555555555555555
            let m2 := 0x3333333333333333333333333333333333333333333333333333333333333333
            let m4 := 0x0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f
            let m8 := 0x00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff
            let x := sub(v, and(shr(1, v), m1))
            x := add(and(x, m2), and(shr(2, x), m2))
            x := and(add(x, shr(4, x)), m4)
            // Widen to 16-bit lanes first: 256 does not fit in a byte.
            x := and(add(x, shr(8, x)), m8)
            c := shr(240, mul(x, 0x0001000100010001000100010001000100010001000100010001000100010001))
        }
    }

    /// @notice Number of differing bits between two 256-bit words (0..256).
    function distance256(bytes32 a, bytes32 b) internal pure returns (uint256) {
        return popcount256(uint256(a ^ b));
    }
}
