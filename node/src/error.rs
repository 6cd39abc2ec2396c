//! The daemon's error type.

use std::fmt;

use alloy::primitives::Address;
use verinfer_abi::{SlashReason, TokenAmount};

use crate::{chain::ChainError, config::ConfigError, key::KeyError, state::StateError};

/// Why the node could not start, or why a step failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The key could not be loaded.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A chain read or transaction failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The HTTPS client could not be set up (the CA file).
    #[error(transparent)]
    Tls(#[from] verinfer_wire::tls::TlsError),
    /// Persisted state could not be read or written.
    #[error(transparent)]
    State(#[from] StateError),
    /// The models directory could not be read.
    #[error("models: {0}")]
    Models(#[from] verinfer_task::ModelError),
    /// The RPC endpoint serves another chain than configured.
    #[error("rpc_url serves chain {actual}, the configuration says chain {configured}")]
    ChainMismatch {
        /// Configured chain id.
        configured: u64,
        /// The endpoint's chain id.
        actual: u64,
    },
    /// The GPU identity could not be detected.
    #[error(
        "cannot detect this machine's GPU identity ({0}); set [identity] gpu_model and vram_mib"
    )]
    Identity(String),
    /// The node was slashed and kicked; it can never join again with this key.
    #[error("node {node} {}", kicked_message(slash.as_ref(), *claimable))]
    Kicked {
        /// The node.
        node: Address,
        /// The slash that kicked it (`None` when its event was not found).
        slash: Option<SlashNotice>,
        /// What the contract holds for it (`claimable`): its stake after the slash, and any
        /// slash rewards.
        claimable: TokenAmount,
    },
    /// The declared GPU model is not in the contract's registry: the node cannot join.
    #[error(
        "GPU model {name:?} is not registered on this network, so the node cannot join with it: the contract owner registers it with `verinfer admin gpu-model add --name {name:?} --vram-mib <MiB>` (`verinfer admin gpu-model list` shows the registered models; a node declares one with [identity] gpu_model)"
    )]
    GpuModelNotRegistered {
        /// The declared name.
        name: String,
    },
    /// The declared GPU model is registered but closed to new nodes.
    #[error(
        "GPU model {name:?} is registered but inactive (closed to new nodes), so the node cannot join with it: the contract owner reopens it with `verinfer admin gpu-model set-active --name {name:?} --active true`"
    )]
    GpuModelInactive {
        /// The declared name.
        name: String,
    },
    /// `leave` needs an Available or Busy node.
    #[error("node {node} cannot leave: it is {state} (only an Available or Busy node can)")]
    NotLeavable {
        /// The node.
        node: Address,
        /// Its state.
        state: crate::chain::NodeState,
    },
    /// The key's address is not a registered node.
    #[error("node {0} is not registered: `verinfer node run` joins the network")]
    NotRegistered(Address),
    /// `withdraw` with nothing credited to the node.
    #[error("nothing to withdraw: the contract holds no credited tokens for {0}")]
    NothingToWithdraw(Address),
    /// A stake top-up of zero.
    #[error("the amount to add to the stake is zero")]
    ZeroStakeTopUp,
    /// The stake after a top-up would not fit the contract's uint96.
    #[error("stake {stake} plus {amount} does not fit the contract's uint96")]
    StakeOverflow {
        /// Current stake.
        stake: u128,
        /// Amount to add.
        amount: u128,
    },
    /// The configured stake is below the contract's minimum.
    #[error("stake {stake} is below the contract's minimum stake {minimum}")]
    StakeBelowMinimum {
        /// Configured stake.
        stake: u128,
        /// The contract's `minStake`.
        minimum: u128,
    },
    /// The node's token balance cannot cover the stake.
    #[error("node {node} holds {balance} of token {token}, less than the stake {stake}")]
    InsufficientBalance {
        /// The node.
        node: Address,
        /// The staking token.
        token: Address,
        /// The node's balance.
        balance: alloy::primitives::U256,
        /// The stake to join with.
        stake: u128,
    },
    /// Inference failed (not the args' fault: the model files, the device, memory).
    #[error("inference failed: {0}")]
    Inference(String),
    /// A computed image is not a PNG that can be hashed.
    #[error("cannot pHash image {index}: {message}")]
    Phash {
        /// Image index.
        index: usize,
        /// What failed.
        message: String,
    },
    /// The relayer failed.
    #[error(transparent)]
    Relayer(#[from] verinfer_wire::ClientError),
    /// Signing a result upload failed.
    #[error(transparent)]
    Signing(#[from] verinfer_wire::AuthError),
    /// The OS random number generator failed.
    #[error(transparent)]
    Salt(#[from] verinfer_task::SaltError),
    /// A persisted record contradicts itself (e.g. a committed result without its salt).
    #[error("task {task_id}: {message}")]
    InconsistentRecord {
        /// The task.
        task_id: u64,
        /// What is missing or wrong.
        message: String,
    },
    /// The metrics listener could not bind.
    #[error("cannot serve metrics on {listen}: {source}")]
    Metrics {
        /// The configured address.
        listen: std::net::SocketAddr,
        /// The bind error.
        source: std::io::Error,
    },
    /// A blocking task panicked or was cancelled.
    #[error("background work failed: {0}")]
    Join(String),
}

impl NodeError {
    /// A short label for the `verinfer_node_errors_total{kind}` metric.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Chain(ChainError::Reverted { .. }) => "tx_reverted",
            Self::Chain(ChainError::NoReceipt { .. }) => "tx_timeout",
            Self::Chain(_) | Self::ChainMismatch { .. } => "rpc",
            Self::State(_) | Self::InconsistentRecord { .. } => "state",
            Self::Relayer(_) | Self::Signing(_) => "relayer",
            Self::Inference(_) | Self::Phash { .. } | Self::Models(_) => "inference",
            Self::Config(_)
            | Self::Tls(_)
            | Self::Key(_)
            | Self::Identity(_)
            | Self::Kicked { .. }
            | Self::GpuModelNotRegistered { .. }
            | Self::GpuModelInactive { .. }
            | Self::StakeBelowMinimum { .. }
            | Self::InsufficientBalance { .. }
            | Self::Metrics { .. } => "startup",
            Self::NotLeavable { .. }
            | Self::NotRegistered(_)
            | Self::ZeroStakeTopUp
            | Self::NothingToWithdraw(_)
            | Self::StakeOverflow { .. } => "stake_management",
            Self::Salt(_) | Self::Join(_) => "internal",
        }
    }
}

/// "N tokens are claimable: `verinfer node withdraw` sends them", or that nothing is.
pub(crate) fn claimable_hint(claimable: TokenAmount) -> String {
    if claimable.units == 0 {
        "nothing is left to withdraw".to_owned()
    } else {
        format!(
            "{claimable} tokens are claimable: `verinfer node withdraw` sends them to the node's account"
        )
    }
}

/// The slash that kicked a node (every slash kicks), its amount in tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlashNotice {
    /// The task it was slashed over.
    pub task_id: u64,
    /// Why.
    pub reason: SlashReason,
    /// How much of its stake it lost.
    pub amount: TokenAmount,
}

impl fmt::Display for SlashNotice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "slashed {} tokens on task {} ({}: {})",
            self.amount,
            self.task_id,
            self.reason,
            match self.reason {
                SlashReason::Disagreed => "its result disagreed with the agreeing nodes",
                SlashReason::MissedCommit => "it did not commit before the commit deadline",
                SlashReason::MissedReveal => "it did not reveal before the reveal deadline",
            }
        )
    }
}

/// What happened to a kicked node and what its operator can do: "was slashed ... and kicked
/// ...; N tokens are claimable: `verinfer node withdraw` ...; to serve again ...".
pub(crate) fn kicked_message(slash: Option<&SlashNotice>, claimable: TokenAmount) -> String {
    let what = match slash {
        Some(slash) => format!("was {slash} and kicked from the network"),
        None => "was slashed and kicked from the network".to_owned(),
    };
    format!(
        "{what}: it cannot join again with this key; {}; to serve again, join with a new key (a new key in the node configuration, staked anew by `verinfer node run`)",
        claimable_hint(claimable)
    )
}
