//! The kit's errors.

use std::{path::PathBuf, process::ExitStatus, time::Duration};

use alloy::primitives::B256;

/// Why a dev chain, its deployment or one of its services could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A Foundry binary is missing (run `npm ci`).
    #[error(transparent)]
    ToolNotFound(#[from] verinfer_abi_gen::foundry::ToolNotFound),
    /// A loopback port asked for is taken.
    #[error("port {port} is already in use on 127.0.0.1 (another devnet or anvil?)")]
    PortInUse {
        /// The port.
        port: u16,
    },
    /// A file, socket or process operation failed.
    #[error("{context}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// anvil exited, or never said it was listening.
    #[error("anvil {why}; its output: {output}")]
    AnvilStart {
        /// What went wrong.
        why: String,
        /// What it printed.
        output: String,
    },
    /// anvil's banner could not be read.
    #[error("cannot read anvil's banner: {0}")]
    AnvilBanner(String),
    /// `forge script` did not finish in time.
    #[error("forge script script/Deploy.s.sol did not finish within {0:?}")]
    ForgeTimeout(Duration),
    /// `forge script` failed.
    #[error("forge script script/Deploy.s.sol failed ({status}):\n{tail}")]
    ForgeFailed {
        /// Its exit status.
        status: ExitStatus,
        /// The last lines of its output.
        tail: String,
    },
    /// `forge script` succeeded but wrote no deployment record.
    #[error("forge wrote no deployment record into {}", .0.display())]
    NoDeploymentRecord(PathBuf),
    /// A deployment record could not be read or written.
    #[error(transparent)]
    Deployment(#[from] verinfer_abi::DeploymentError),
    /// A chain call or transaction failed.
    #[error("{context} failed")]
    Contract {
        /// What was being done.
        context: &'static str,
        /// The underlying error.
        #[source]
        source: Box<alloy::contract::Error>,
    },
    /// A JSON-RPC read failed.
    #[error("{context}")]
    Rpc {
        /// What was being read.
        context: String,
        /// The endpoint's error.
        #[source]
        source: Box<alloy::transports::TransportError>,
    },
    /// A transaction was mined but reverted.
    #[error("{what} reverted (tx {tx})")]
    Reverted {
        /// What was being done.
        what: &'static str,
        /// The transaction.
        tx: B256,
    },
    /// anvil has fewer dev accounts than asked for.
    #[error("anvil has no dev account {0}")]
    NoAccount(usize),
    /// The in-process relayer could not start.
    #[error("cannot start the relayer")]
    Relayer(#[source] Box<verinfer_relayer::RelayerError>),
    /// An in-process node could not start.
    #[error("cannot start node {name}")]
    Node {
        /// The node's name.
        name: String,
        /// The underlying error.
        #[source]
        source: Box<verinfer_node::NodeError>,
    },
    /// The tiny models could not be made.
    #[error("cannot make the tiny models in {}", dir.display())]
    Models {
        /// Their directory.
        dir: PathBuf,
        /// The underlying error.
        #[source]
        source: Box<verinfer_inference::InferenceError>,
    },
    /// A tiny model could not be digested.
    #[error(transparent)]
    ModelDigest(#[from] verinfer_task::ModelError),
    /// A start-up task panicked or was cancelled.
    #[error("a start-up task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

impl Error {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }

    pub(crate) fn contract(context: &'static str) -> impl FnOnce(alloy::contract::Error) -> Self {
        move |source| Self::Contract {
            context,
            source: Box::new(source),
        }
    }
}

/// How a relayer or node running in [`crate::Services`] ended.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The relayer stopped with an error.
    #[error(transparent)]
    Relayer(#[from] verinfer_relayer::RelayerError),
    /// The node stopped with an error.
    #[error(transparent)]
    Node(#[from] verinfer_node::NodeError),
    /// Another service (see `Services::run_service`) stopped with this error.
    #[error("{0}")]
    Failed(String),
    /// It panicked.
    #[error("panicked: {0}")]
    Panicked(String),
    /// It did not stop within the grace period and was aborted.
    #[error("did not stop within {0:?}")]
    TimedOut(Duration),
}
