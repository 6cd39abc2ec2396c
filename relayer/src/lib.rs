//! verinfer relayer: stores task args and verified results off-chain, indexes the Verinfer
//! contract, and refuses anything forged.
//!
//! The server: it owns the database (sqlx), the HTTP server (axum) and the blob store
//! (object_store). Nothing a node or a dApp compiles may depend on this crate; they use
//! `verinfer-wire`.
//!
//! # HTTP API (JSON errors `{"error":{"code","message"}}`, see [`api::ErrorCode`])
//!
//! | route | does |
//! | --- | --- |
//! | `POST /v1/args` | body: the exact args bytes (≤ `max_args_bytes`, else 413); validated with `TaskArgs::from_slice` (422 `invalid_args`) unless `validate_args = false`; stored under keccak256; answers `{"args_hash","created"}` (201 new, 200 known) |
//! | `GET /v1/args/{hash}` | the raw bytes (404 `unknown_args`) |
//! | `GET /v1/tasks/{id}/args` | the bytes whose keccak256 is the task's on-chain `argsHash` (404 `unknown_task` / `unknown_args`) |
//! | `POST /v1/tasks/{id}/results` | a selected node's [`verinfer_wire::UploadRequest`], EIP-712 signed; accepted only when the recomputed pHashes / text digest equal the node's on-chain reveal; answers [`api::types::UploadAccepted`] |
//! | `GET /v1/tasks/{id}/results[?inline=true]` | [`api::types::TaskResultsView`]: the agreeing nodes' verified uploads (409 `task_not_validated` before validation); PNGs as `/v1/blobs/{keccak256}` URLs, or inline base64 with `?inline=true` |
//! | `GET /v1/blobs/{keccak256}` | a stored blob (PNG `image/png`, text output `application/json`, args) |
//! | `GET /v1/tasks/{id}` | [`api::types::TaskView`]: status, nodes, reveals, settlement, parameter version, fee level, expiry, seed block, credits, and [`api::types::ValidationView`]: checked by three nodes, or (sampled tasks) accepted unchecked at rate p |
//! | `GET /v1/nodes[?offset=&limit=]` | [`api::types::NodesView`]: with each node's fee tier and claimable balance |
//! | `GET /v1/accounts/{address}` | [`api::types::AccountView`]: withdrawable balance and credits |
//! | `GET /v1/gpu-models` | [`api::types::GpuModelsView`]: the GPU model registry |
//! | `GET /v1/params` | [`api::types::ParamsView`]: the parameter version in force and the scheduled one (404 `not_found` before any is indexed) |
//! | `GET /v1/calibration` | [`verinfer_wire::types::CalibrationView`]: pairwise pHash distances of the latest 20,000 validated image tasks by GPU-model pair and precision, against the threshold in force, and a suggested threshold with its reason and the min stake it needs (see [`calibration`]) |
//! | `GET /healthz` | 200 when the database answers and the indexer polled recently (or, a replica, stands by: `indexer` is `standby`), else 503 |
//! | `GET /metrics` | Prometheus text |
//! | `GET /explorer`, `/explorer/tasks/{id}`, `/explorer/nodes/{address}`, `/explorer/calibration`, `/explorer/search?q=` | the explorer: server-rendered HTML pages over the same data (see [`explorer`]); `GET /` redirects to it |
//!
//! The request and answer types, the error codes, the EIP-712 upload and the HTTP client are in
//! `verinfer-wire`, which nodes and dApp clients use without compiling this server: nodes sign
//! uploads with `verinfer_wire::sign_result_upload` and send them with
//! `verinfer_wire::RelayerClient::upload_result`. Uploads are checked with `verinfer-task`'s
//! result verifier, the same one the client runs again on what it downloads.

pub mod api;
pub mod blobs;
pub mod calibration;
pub mod config;
mod derived;
pub mod events;
pub mod explorer;
pub mod indexer;
pub mod metrics;
pub mod store;

use std::{future::Future, net::SocketAddr, time::Duration};

use alloy::providers::{Provider, ProviderBuilder};
pub use api::{ApiSettings, AppState, router};
pub use config::RelayerConfig;
use tokio::sync::watch;

/// Why the relayer could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum RelayerError {
    /// Configuration.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// Database.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// Blob store.
    #[error(transparent)]
    Blobs(#[from] blobs::BlobError),
    /// The indexer stopped.
    #[error("indexer stopped: {0}")]
    Indexer(indexer::IndexerError),
    /// The HTTPS client of `rpc_url` could not be set up (`ca_file`).
    #[error(transparent)]
    Tls(#[from] verinfer_wire::tls::TlsError),
    /// The listener or the data directory.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The RPC endpoint serves another chain than configured.
    #[error("rpc_url serves chain {actual}, the configuration says chain {configured}")]
    ChainMismatch {
        /// Configured chain id.
        configured: u64,
        /// The endpoint's chain id.
        actual: u64,
    },
    /// The RPC endpoint failed at startup.
    #[error("rpc error: {}", verinfer_wire::tls::explain(.0))]
    Rpc(alloy::transports::TransportError),
}

impl From<indexer::IndexerError> for RelayerError {
    fn from(err: indexer::IndexerError) -> Self {
        Self::Indexer(err)
    }
}

impl From<alloy::transports::TransportError> for RelayerError {
    fn from(err: alloy::transports::TransportError) -> Self {
        Self::Rpc(err)
    }
}

/// The fee token's `decimals()`: the token is the Verinfer contract's `token()`.
async fn read_token_decimals(
    provider: &alloy::providers::DynProvider,
    verinfer: alloy_primitives::Address,
) -> Result<verinfer_abi::TokenDecimals, String> {
    let token = verinfer_abi::Verinfer::new(verinfer, provider.clone())
        .token()
        .call()
        .await
        .map_err(|error| format!("Verinfer.token() failed: {error}"))?;
    verinfer_abi::TokenDecimals::read(provider.clone(), token)
        .await
        .map_err(|error| error.to_string())
}

/// A configured relayer: API state plus, when `rpc_url` is set, the indexer.
#[derive(Debug)]
pub struct Relayer {
    state: AppState,
    indexer: Option<indexer::Indexer>,
    listen: SocketAddr,
}

impl Relayer {
    /// Opens the database and blob store and connects the indexer's RPC endpoint.
    pub async fn from_config(config: &RelayerConfig) -> Result<Self, RelayerError> {
        let target = config.chain_target()?;
        if config.database_url.is_none() || config.local_blob_dir().is_some() {
            std::fs::create_dir_all(&config.data_dir).map_err(|source| RelayerError::Io {
                context: format!("cannot create data_dir {}", config.data_dir.display()),
                source,
            })?;
        }
        let store = store::Store::connect(&config.database_url()).await?;
        let blobs = blobs::BlobStore::from_config(config)?;
        let metrics = metrics::Metrics::new();
        let mut token_provider = None;
        let indexer = match &config.rpc_url {
            Some(url) => {
                let provider = ProviderBuilder::new()
                    .disable_recommended_fillers()
                    .connect_reqwest(
                        verinfer_wire::tls::http_client(config.ca_file.as_deref())?,
                        url.clone(),
                    )
                    .erased();
                let actual = provider.get_chain_id().await?;
                token_provider = Some(provider.clone());
                if actual != target.chain_id {
                    return Err(RelayerError::ChainMismatch {
                        configured: target.chain_id,
                        actual,
                    });
                }
                Some(indexer::Indexer::new(
                    provider,
                    store.clone(),
                    indexer::IndexerConfig {
                        chain_id: target.chain_id,
                        verinfer: target.verinfer,
                        start_block: target.deploy_block,
                        confirmations: config.confirmations,
                        max_block_range: config.max_block_range,
                        poll_interval: Duration::from_millis(config.poll_interval_ms),
                    },
                    metrics.clone(),
                ))
            }
            None => None,
        };
        let settings = ApiSettings {
            chain_id: target.chain_id,
            verinfer: target.verinfer,
            max_args_bytes: config.max_args_bytes,
            max_upload_bytes: config.max_upload_bytes,
            validate_args: config.validate_args,
        };
        let state = AppState::new(
            store,
            blobs,
            settings,
            metrics,
            indexer.as_ref().map(indexer::Indexer::status),
        );
        if let Some(provider) = &token_provider {
            // Only the explorer's display depends on it: a failure is logged, not fatal.
            match read_token_decimals(provider, target.verinfer).await {
                Ok(decimals) => {
                    let _ = state.inner().token_decimals.set(decimals);
                }
                Err(error) => tracing::warn!(
                    %error,
                    "cannot read the fee token's decimals(); the explorer shows amounts in base units"
                ),
            }
        }
        Ok(Self {
            state,
            indexer,
            listen: config.listen,
        })
    }

    /// The API state (database, blob store, metrics).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The indexer, when `rpc_url` is set.
    pub fn indexer(&self) -> Option<&indexer::Indexer> {
        self.indexer.as_ref()
    }

    /// Binds the listen address and serves the API (and runs the indexer) until `shutdown`
    /// resolves or the indexer fails for good.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), RelayerError> {
        let listener = tokio::net::TcpListener::bind(self.listen)
            .await
            .map_err(|source| RelayerError::Io {
                context: format!("cannot listen on {}", self.listen),
                source,
            })?;
        self.serve(listener, shutdown).await
    }

    /// Like [`Self::run`] on an already bound listener (tests bind port 0).
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), RelayerError> {
        match listener.local_addr() {
            Ok(local) => {
                tracing::info!(listen = %local, indexer = self.indexer.is_some(), "relayer serving")
            }
            Err(error) => {
                tracing::info!(%error, indexer = self.indexer.is_some(), "relayer serving (address unknown)")
            }
        }
        let (stop_tx, stop_rx) = watch::channel(false);
        let indexer_task = self
            .indexer
            .map(|indexer| tokio::spawn(indexer.run(stop_rx.clone())));
        let mut server_stop = stop_rx.clone();
        let server = axum::serve(listener, router(self.state)).with_graceful_shutdown(async move {
            let _ = server_stop.wait_for(|stop| *stop).await;
        });
        let server_task = tokio::spawn(async move { server.await });
        let stop_on_signal = stop_tx.clone();
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_on_signal.send(true);
        });

        let server_result = |joined: Result<std::io::Result<()>, tokio::task::JoinError>| {
            joined
                .map_err(|join| RelayerError::Io {
                    context: "server task panicked".into(),
                    source: std::io::Error::other(join),
                })?
                .map_err(|source| RelayerError::Io {
                    context: "HTTP server failed".into(),
                    source,
                })
        };
        let Some(indexer_task) = indexer_task else {
            return server_result(server_task.await);
        };
        // The indexer returns on shutdown or on a fatal error: either way stop serving.
        let indexed = match indexer_task.await {
            Ok(result) => result.map_err(RelayerError::from),
            Err(join) => Err(RelayerError::Io {
                context: "indexer task panicked".into(),
                source: std::io::Error::other(join),
            }),
        };
        let _ = stop_tx.send(true);
        server_result(server_task.await)?;
        indexed
    }
}
