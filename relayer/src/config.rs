//! `relayer.toml`: the relayer's configuration, with `VERINFER_RELAYER__*` environment overrides.
//!
//! Precedence, lowest first: built-in defaults, the TOML file, environment variables
//! (`VERINFER_RELAYER__LISTEN=0.0.0.0:8645`, nested keys joined by `__`, e.g.
//! `VERINFER_RELAYER__BLOBS__KIND=s3`). See `relayer/relayer.example.toml` for every key.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use alloy_primitives::Address;
use serde::{Deserialize, Serialize};
use url::Url;
pub use verinfer_abi::ChainTarget;
use verinfer_abi::ChainTargetError;
use verinfer_config::{Layers, LoadError};

/// Prefix of environment overrides (`VERINFER_RELAYER__LISTEN`, `VERINFER_RELAYER__BLOBS__PATH`).
pub const ENV_PREFIX: &str = "VERINFER_RELAYER__";
/// Defaults < `relayer.toml` < `VERINFER_RELAYER__*`, with messages naming the "relayer
/// configuration".
const LAYERS: Layers = Layers::new("relayer", ENV_PREFIX);

/// Why the configuration could not be loaded or is inconsistent.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configured file does not exist, or it or an environment override does not parse,
    /// has an unknown key or a value of the wrong type (the error names the file and the key).
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The chain id, contract or first block cannot be resolved (the deployment record is
    /// unreadable, a key is missing, or the keys contradict the record).
    #[error("invalid relayer configuration: {0}")]
    ChainTarget(#[from] ChainTargetError),
    /// A required key is missing or keys contradict each other.
    #[error("invalid relayer configuration: {0}")]
    Invalid(String),
}

/// Where blobs (args, PNGs, text outputs) are stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum BlobStoreConfig {
    /// A local directory (default: `<data_dir>/blobs`).
    Local {
        /// The directory; created when missing.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<PathBuf>,
    },
    /// An S3-compatible bucket (what relayer replicas share).
    S3 {
        /// Bucket name.
        bucket: String,
        /// Region (any value for most S3-compatible stores).
        #[serde(default = "default_region")]
        region: String,
        /// Endpoint URL of an S3-compatible store (empty: AWS).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        endpoint: Option<String>,
        /// Access key id (empty: from the AWS environment).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        access_key_id: Option<String>,
        /// Secret access key (empty: from the AWS environment).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret_access_key: Option<String>,
        /// Allow a plain-http endpoint (local MinIO and the like).
        #[serde(default)]
        allow_http: bool,
        /// Key prefix inside the bucket.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prefix: Option<String>,
    },
}

impl Default for BlobStoreConfig {
    fn default() -> Self {
        Self::Local { path: None }
    }
}

/// The relayer's configuration, as written in `relayer.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayerConfig {
    /// HTTP listen address.
    pub listen: SocketAddr,
    /// JSON-RPC endpoint of the chain to index (none: serve the API without indexing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpc_url: Option<Url>,
    /// An extra CA file (PEM, one or more certificates) trusted for an `https://` `rpc_url`
    /// besides the system's roots (`SSL_CERT_FILE` replaces those). PostgreSQL takes its CA from
    /// `sslrootcert` in `database_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// A `deployments/<chainid>.json` file giving `chainId`, `verinfer` and `deployBlock`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<PathBuf>,
    /// Chain id (overrides the deployment file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_id: Option<u64>,
    /// The Verinfer contract (overrides the deployment file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verinfer: Option<Address>,
    /// First block to index (overrides the deployment file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy_block: Option<u64>,
    /// Directory for the default SQLite database and the default local blob store.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…` (default `sqlite://<data_dir>/relayer.db`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// Blob store.
    pub blobs: BlobStoreConfig,
    /// Largest accepted `POST /v1/args` body, in bytes.
    pub max_args_bytes: usize,
    /// Largest accepted `POST /v1/tasks/{id}/results` body, in bytes.
    pub max_upload_bytes: usize,
    /// Validate uploaded args with the task-args schema (reject with 422 when invalid).
    pub validate_args: bool,
    /// Blocks to stay behind the chain head (0 on a devnet; 2+ on real chains).
    pub confirmations: u64,
    /// Pause between indexer polls, in milliseconds.
    pub poll_interval_ms: u64,
    /// Largest block range of one `eth_getLogs` call.
    pub max_block_range: u64,
}

fn default_region() -> String {
    "us-east-1".to_owned()
}

impl Default for RelayerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8645)),
            rpc_url: None,
            ca_file: None,
            deployment: None,
            chain_id: None,
            verinfer: None,
            deploy_block: None,
            data_dir: PathBuf::from("relayer-data"),
            database_url: None,
            blobs: BlobStoreConfig::default(),
            max_args_bytes: 64 * 1024,
            max_upload_bytes: 64 * 1024 * 1024,
            validate_args: true,
            confirmations: 0,
            poll_interval_ms: 1000,
            max_block_range: 2000,
        }
    }
}

impl RelayerConfig {
    /// Defaults, then `path` (when given; it must exist), then `VERINFER_RELAYER__*` variables.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        Self::validated(LAYERS.load(Self::default(), path)?)
    }

    /// Parses a TOML document over the defaults (no environment), e.g. for tests.
    pub fn from_toml_str(toml: &str) -> Result<Self, ConfigError> {
        Self::validated(LAYERS.from_toml_str(Self::default(), toml)?)
    }

    /// Checks the rules serde cannot express.
    fn validated(config: Self) -> Result<Self, ConfigError> {
        if config.max_args_bytes == 0 || config.max_upload_bytes == 0 {
            return Err(ConfigError::Invalid(
                "max_args_bytes and max_upload_bytes must be positive".into(),
            ));
        }
        if config.max_block_range == 0 {
            return Err(ConfigError::Invalid(
                "max_block_range must be positive".into(),
            ));
        }
        if config.poll_interval_ms == 0 {
            return Err(ConfigError::Invalid(
                "poll_interval_ms must be positive".into(),
            ));
        }
        Ok(config)
    }

    /// The database URL: `database_url`, or SQLite at `<data_dir>/relayer.db`.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("relayer.db").display()),
        }
    }

    /// The local blob directory when the blob store is local.
    pub fn local_blob_dir(&self) -> Option<PathBuf> {
        match &self.blobs {
            BlobStoreConfig::Local { path } => {
                Some(path.clone().unwrap_or_else(|| self.data_dir.join("blobs")))
            }
            BlobStoreConfig::S3 { .. } => None,
        }
    }

    /// Chain id, contract and first block: explicit keys win over the deployment file.
    pub fn chain_target(&self) -> Result<ChainTarget, ConfigError> {
        let deployment = self.deployment.as_deref();
        Ok(ChainTarget::resolve(
            self.chain_id,
            self.verinfer,
            self.deploy_block,
            deployment,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let config = RelayerConfig::from_toml_str("").unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8645");
        assert_eq!(config.max_args_bytes, 65536);
        assert!(config.validate_args);
        assert_eq!(config.database_url(), "sqlite://relayer-data/relayer.db");
        assert_eq!(
            config.local_blob_dir(),
            Some(PathBuf::from("relayer-data/blobs"))
        );

        let config = RelayerConfig::from_toml_str(
            "listen = \"0.0.0.0:9000\"\nconfirmations = 3\nchain_id = 5\nverinfer = \"0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0\"\n[blobs]\nkind = \"s3\"\nbucket = \"b\"\n",
        )
        .unwrap();
        assert_eq!(config.confirmations, 3);
        assert!(matches!(config.blobs, BlobStoreConfig::S3 { ref bucket, .. } if bucket == "b"));
        let target = config.chain_target().unwrap();
        assert_eq!((target.chain_id, target.deploy_block), (5, 0));
    }

    #[test]
    fn unknown_keys_and_missing_chain_are_errors() {
        let err = RelayerConfig::from_toml_str("listn = \"x\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("listn"), "{err}");
        let err = RelayerConfig::from_toml_str("")
            .unwrap()
            .chain_target()
            .unwrap_err()
            .to_string();
        assert!(err.contains("chain_id"), "{err}");
    }

    #[test]
    fn reads_the_deployment_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("31337.json");
        std::fs::write(
            &path,
            r#"{"chainId":31337,"deployBlock":4,"mockToken":true,"owner":"0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266","stakingToken":"0x5FbDB2315678afecb367f032d93F642f64180aa3","treasury":"0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266","verinfer":"0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0"}"#,
        )
        .unwrap();
        let config = RelayerConfig {
            deployment: Some(path),
            ..RelayerConfig::default()
        };
        let target = config.chain_target().unwrap();
        assert_eq!((target.chain_id, target.deploy_block), (31337, 4));
    }
}
