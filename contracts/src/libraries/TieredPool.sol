// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title TieredPool
/// @notice A set of node addresses split into eight tiers, with O(1) insert, remove and uniform
///         random pick among the tiers up to a given one.
/// @dev Verinfer keys the tiers by node fee tier: a task whose fee pays for tier `t` may draw any
///      node of tiers 0..t. The eight tier sizes are packed into one word, so counting the
///      candidates for a task is one SLOAD and a pick never loops over members. Removal is swap-and-pop; popped slots are not
///      zeroed on purpose (re-adding a node then costs a nonzero-to-nonzero write).
library TieredPool {
    uint256 internal constant TIERS = 8;
    uint256 private constant COUNT_BITS = 32;
    uint256 private constant COUNT_MASK = 0xffffffff;
    /// @notice Members one tier can hold (node records store their index in 24 bits).
    uint256 internal constant MAX_MEMBERS_PER_TIER = (1 << 24) - 1;

    struct Pool {
        uint256 counts;
        mapping(uint256 key => address node) members;
    }

    error PoolTierFull(uint256 tier);

    /// @notice Members of tier `tier`.
    function count(Pool storage pool, uint256 tier) internal view returns (uint256) {
        return (pool.counts >> (tier * COUNT_BITS)) & COUNT_MASK;
    }

    /// @notice Members in tiers 0..`maxTier`.
    function countTo(Pool storage pool, uint256 maxTier) internal view returns (uint256 total) {
        uint256 counts = pool.counts;
        for (uint256 t; t <= maxTier; ++t) {
            total += counts & COUNT_MASK;
            counts >>= COUNT_BITS;
        }
    }

    /// @notice Adds `node` to `tier`; returns its index inside the tier.
    function add(Pool storage pool, uint256 tier, address node) internal returns (uint256 index) {
        uint256 counts = pool.counts;
        index = (counts >> (tier * COUNT_BITS)) & COUNT_MASK;
        if (index >= MAX_MEMBERS_PER_TIER) revert PoolTierFull(tier);
        pool.members[_key(tier, index)] = node;
        pool.counts = counts + (1 << (tier * COUNT_BITS));
    }

    /// @notice Removes the member at `index` of `tier` by moving the tier's last member into its place.
    /// @return moved The node now stored at `index` (zero when the removed member was the last one).
    function remove(Pool storage pool, uint256 tier, uint256 index) internal returns (address moved) {
        uint256 counts = pool.counts;
        uint256 last = ((counts >> (tier * COUNT_BITS)) & COUNT_MASK) - 1;
        if (index != last) {
            moved = pool.members[_key(tier, last)];
            pool.members[_key(tier, index)] = moved;
        }
        pool.counts = counts - (1 << (tier * COUNT_BITS));
    }

    /// @notice The `r`-th member (0-based) of tiers 0..`maxTier`, counting tier by tier.
    /// @dev Caller must have checked `r < countTo(pool, maxTier)`; a uniform `r` gives a uniform pick.
    function at(Pool storage pool, uint256 maxTier, uint256 r)
        internal
        view
        returns (address node, uint256 tier, uint256 index)
    {
        uint256 counts = pool.counts;
        for (tier = 0; tier <= maxTier; ++tier) {
            uint256 c = (counts >> (tier * COUNT_BITS)) & COUNT_MASK;
            if (r < c) {
                index = r;
                node = pool.members[_key(tier, index)];
                return (node, tier, index);
            }
            r -= c;
        }
    }

    function _key(uint256 tier, uint256 index) private pure returns (uint256) {
        return (tier << 32) | index;
    }
}
