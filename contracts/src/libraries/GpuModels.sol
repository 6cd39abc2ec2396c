// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title GpuModels
/// @notice Normalises a declared GPU model name into a stable id so that "NVIDIA  H100 80GB HBM3"
///         and "nvidia h100 80gb hbm3" pair for text tasks.
/// @dev Normal form: ASCII lower case, leading/trailing whitespace removed, inner whitespace runs
///      collapsed to one space. Only printable ASCII is accepted; the loop is bounded by MAX_LENGTH.
library GpuModels {
    uint256 internal constant MAX_LENGTH = 64;

    error EmptyGpuModel();
    error GpuModelTooLong(uint256 length, uint256 maxLength);
    error InvalidGpuModelCharacter(uint256 index, bytes1 character);

    /// @notice Returns the normal form of `name` and its id (keccak256 of the normal form).
    function normalise(string calldata name) internal pure returns (bytes32 id, string memory normal) {
        bytes calldata raw = bytes(name);
        if (raw.length > MAX_LENGTH) revert GpuModelTooLong(raw.length, MAX_LENGTH);
        bytes memory out = new bytes(raw.length);
        uint256 n;
        bool pendingSpace;
        for (uint256 i; i < raw.length; ++i) {
            bytes1 c = raw[i];
            if (c == 0x20 || c == 0x09) {
                pendingSpace = n != 0;
                continue;
            }
            if (c < 0x21 || c > 0x7e) revert InvalidGpuModelCharacter(i, c);
            if (c >= 0x41 && c <= 0x5a) c = bytes1(uint8(c) + 32);
            if (pendingSpace) {
                out[n++] = 0x20;
                pendingSpace = false;
            }
            out[n++] = c;
        }
        if (n == 0) revert EmptyGpuModel();
        assembly ("memory-safe") {
            mstore(out, n)
        }
        return (keccak256(out), string(out));
    }
}
