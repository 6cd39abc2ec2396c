//! The verinfer node daemon.
//!
//! A node stakes on the Verinfer contract (declaring a GPU model of the owner's registry and a fee
//! tier), sends the draw that starts waiting tasks when one is due, learns of the tasks the draws
//! select it for from chain events, fetches their args from the relayer, runs inference,
//! commits, reveals, settles when nobody else does, and uploads the result behind a validated
//! reveal to the relayer. It exits once it left the network or was kicked and has nothing left
//! to do, saying what it can withdraw. It takes every role a draw gives it: one of a full task's
//! three nodes; a sampled task's one node, which commits, waits for the sample block, then reveals
//! alone (unchecked) or sends `resolveSample` and reveals only once the check's checkers committed
//! (checked); and a checker of a checked task. Every step is
//! persisted before the next one is sent, so a node that crashes or restarts at any point
//! resumes from disk and the chain, and is never slashed for restarting.
//!
//! Embed it with [`run`] (or [`Node::start`] + [`Node::run`] to read the start-up summary first);
//! configure it with [`NodeConfig`] (`node.toml`, see `node/node.example.toml`).
//!
//! It talks to the relayer through `verinfer-wire` only: it must not depend on the relayer
//! server (no database, HTTP server or object store in a node).

mod chain;
mod config;
mod daemon;
mod engine;
mod error;
mod key;
mod metrics;
pub mod plan;
mod retry;
mod stake;
pub mod state;
mod status;

pub use chain::{
    Chain, ChainError, ChainNode, ChainTask, CommitSeen, GpuModel, Head, NodeOutcome, NodeState,
    ObservedReveal, SettledTask, Slash, StartedTask, Submitted, TxState,
};
pub use config::{
    Behaviour, CONFIG_REFERENCE, ChainTarget, ConfigError, DEFAULT_KEY_ENV, Device, ENV_PREFIX,
    HaltPoint, IdentityOverride, KEYSTORE_PASSWORD_ENV, KeyConfig, MAX_FEE_TIER, NodeConfig,
    StakeAmount, TestingConfig, default_key_config,
};
pub use daemon::{Node, NodeExit, Registration, StartupSummary, run};
pub use engine::{
    CandleEngine, Identity, InferenceEngine, InferenceJob, InferenceOutput, detect_identity,
};
pub use error::{NodeError, SlashNotice};
pub use key::{KeyError, load_signer};
pub use metrics::Metrics;
pub use retry::Backoff;
pub use stake::{LeaveOutcome, StakeAdded, Withdrawal, add_stake, leave, token_decimals, withdraw};
pub use status::{NodeStatus, status};
