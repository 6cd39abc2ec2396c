//! Rust bindings for the verinfer contracts.
//!
//! The bindings come from `abi/contracts/*.json` through alloy's `sol!` macro, with `#[sol(rpc)]`
//! instances for calls, transactions and deployment (`Verinfer::deploy`, `MockStakingToken::deploy`).
//! The JSON is committed and regenerated from `contracts/src` by the build script when forge is
//! installed (see `build.rs`); `scripts/check-abi.sh` verifies it in CI.
//!
//! Besides the bindings: [`Deployment`], the `deployments/<chainid>.json` record written by
//! `script/Deploy.s.sol`, and Rust enums ([`TaskKind`], [`TaskStatus`], [`NodeState`],
//! [`SlashReason`], [`ExitReason`], [`CreditReason`], [`ValidationMode`]) for the contract's enums, which the JSON ABI carries as
//! `uint8` user-defined value types ([`IVerinfer::TaskKind`] and so on). Dev chains (anvil, a
//! fresh deployment, funded accounts) are `verinfer-devchain`'s, not this crate's.
//!
//! The chain model is defined here once, for the relayer, the node, the client and the CLI:
//! [`ChainTask`] (a decoded `getTask`, with [`Validation`]: checked by three nodes or accepted
//! unchecked), [`VerinferEvent`] (a decoded log) and [`Revert`] (a
//! decoded revert).
//!
//! Token amounts are integer base units everywhere; people read and type them in the staking
//! token's own decimals ([`TokenDecimals`], read from its `decimals()`).
//!
//! This crate must not depend on any service (HTTP server, database, object store) nor on the
//! inference stack: a dApp's client compiles it.

mod amount;
mod deployment;
mod enums;
mod events;
mod revert;
mod task;

pub use amount::{
    AmountError, DecimalsError, IERC20Metadata, TokenAmount, TokenAmountText, TokenDecimals,
};
pub use deployment::{ChainTarget, ChainTargetError, Deployment, DeploymentError};
pub use enums::{
    CreditReason, ExitReason, NodeState, SlashReason, TaskKind, TaskStatus, UnknownEnumValue,
    UnknownTaskKind, ValidationMode,
};
pub use events::{EventError, VerinferEvent, task_event_signatures};
pub use revert::Revert;
pub use task::{ChainTask, SLOT_PAIRS, Settlement, Validation, format_bps};

/// The `sol!` expansions. Everything useful is re-exported at the crate root.
// Generated event constructors take one argument per field (`TaskCreated` has nine); the JSON
// ABI carries no NatSpec, so the generated items (the `IVerinfer` structs, every call and event
// type) cannot have docs: their documentation is the contract's NatSpec in `contracts/src`.
#[allow(clippy::too_many_arguments, missing_docs)]
pub mod bindings {
    alloy::sol!(
        /// The verinfer validation contract (with the `IVerinfer` types, events and errors).
        #[sol(rpc, all_derives)]
        Verinfer,
        "contracts/Verinfer.json"
    );

    alloy::sol!(
        /// The devnet staking token with an open faucet (`mint`). Never deploy it on a real network.
        #[sol(rpc, all_derives)]
        MockStakingToken,
        "contracts/MockStakingToken.json"
    );

    alloy::sol!(
        /// OpenZeppelin's ERC-20 interface, for any staking token (`approve`, `balanceOf`, ...).
        #[sol(rpc, all_derives)]
        IERC20,
        "contracts/IERC20.json"
    );
}

pub use bindings::{IERC20, IVerinfer, MockStakingToken, Verinfer};

/// A deployed (or to-be-deployed) `Verinfer` contract bound to a provider.
pub type VerinferInstance<P, N = alloy::network::Ethereum> = Verinfer::VerinferInstance<P, N>;
/// A `MockStakingToken` bound to a provider.
pub type MockStakingTokenInstance<P, N = alloy::network::Ethereum> =
    MockStakingToken::MockStakingTokenInstance<P, N>;
/// Any ERC-20 token bound to a provider.
pub type Erc20Instance<P, N = alloy::network::Ethereum> = IERC20::IERC20Instance<P, N>;

/// `Verinfer.NO_RESULT`: a `TaskSettled` distance where a side has no result.
pub const NO_RESULT: u16 = u16::MAX;
/// `Verinfer.MAX_IMAGES`: the largest image count of one task.
pub const MAX_IMAGES: u8 = 16;

/// A gas limit for a verinfer transaction, padded over `eth_estimateGas`'s `estimate`.
///
/// The first state-changing call of a block runs the block's draw (starting waiting tasks) before
/// its own work, so the gas of any verinfer transaction depends on whether it lands first in its
/// block, not only on what `eth_estimateGas` simulated; a reveal that happens to be last also
/// settles the task. Estimate at the pending block (where the draw is still due), not at `latest`
/// (where it already ran); then pad by 30 % plus 25 000, plus [`DRAW_HEADROOM`]: transactions that
/// land before this one can queue more tasks (or checks) than the estimate saw, and the draw of
/// its block then starts more of them (a create ran out of gas so in a sampled load run). Unused
/// gas is not charged; the headroom only raises the limit.
pub const fn padded_gas_limit(estimate: u64) -> u64 {
    estimate
        .saturating_add(estimate / 10 * 3)
        .saturating_add(25_000)
        .saturating_add(DRAW_HEADROOM)
}

/// A gas limit for a reveal (`revealImage`, `revealText`, `reportInvalidArgs`):
/// [`padded_gas_limit`] plus [`SETTLE_HEADROOM`]. The estimate is made while other reveals are
/// missing, so it is for a reveal that does not settle; if the others land first, this reveal is
/// the last and settles the task, whoever's it is.
pub const fn reveal_gas_limit(estimate: u64) -> u64 {
    padded_gas_limit(estimate).saturating_add(SETTLE_HEADROOM)
}

/// A gas limit for a commit: [`padded_gas_limit`] plus [`LAST_COMMIT_HEADROOM`] (a commit estimated
/// while others were missing may land last and open the reveal phase).
pub const fn commit_gas_limit(estimate: u64) -> u64 {
    padded_gas_limit(estimate).saturating_add(LAST_COMMIT_HEADROOM)
}

/// The most a reveal can cost beyond its estimate when it turns out to settle the task (compare
/// every pair, pay, slash and kick, credit, release the nodes): the least gas limit of the last
/// reveal minus that of the same reveal when not last, worst case measured 251,227 (16 images, the
/// last node disagrees and is slashed and kicked) by `contracts/test/GasHeadroom.t.sol`, which
/// asserts this bound for every path it measures (a test here checks the two constants agree).
pub const SETTLE_HEADROOM: u64 = 300_000;

/// The most a commit can cost beyond its estimate when it turns out to be the last one (it opens
/// the reveal phase): 7,919 measured by `contracts/test/GasHeadroom.t.sol`, which asserts this bound.
pub const LAST_COMMIT_HEADROOM: u64 = 10_000;

/// The most one block's draw can cost: `Verinfer.MAX_DRAW_ATTEMPTS` (8) steps; starting 8 tasks
/// over a full 32-model registry measured 1.40 M gas cold (`VerinferDraws.t.sol`).
pub const DRAW_HEADROOM: u64 = 1_500_000;
