// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title MockStakingToken
/// @notice Test and devnet token with an open faucet. Never deploy it on a real network: anybody can mint.
contract MockStakingToken is ERC20 {
    /// @notice Emitted when the faucet mints.
    event Minted(address indexed to, uint256 amount);

    constructor() ERC20("verinfer devnet stake", "VSTAKE") {}

    /// @notice Mints `amount` to `to` (open faucet, devnet only).
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
        emit Minted(to, amount);
    }
}
