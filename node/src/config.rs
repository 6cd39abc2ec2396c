//! `node.toml`: the node daemon's configuration, with `VERINFER_NODE__*` environment overrides.
//!
//! Precedence, lowest first: built-in defaults, the TOML file, environment variables
//! (`VERINFER_NODE__RPC_URL=http://…`, nested keys joined by `__`, e.g.
//! `VERINFER_NODE__IDENTITY__VRAM_MIB=24576`). Secrets never come from this file or from those
//! overrides: the key is a keystore (password in a file or `VERINFER_NODE_KEY_PASSWORD`), or a raw
//! private key in `VERINFER_NODE_KEY` (see [`KeyConfig`]). Every key is documented in
//! `node/node.example.toml`.

use std::{
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
    str::FromStr,
    time::Duration,
};

use alloy::{primitives::Address, signers::local::PrivateKeySigner};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use url::Url;
pub use verinfer_abi::ChainTarget;
use verinfer_abi::ChainTargetError;
use verinfer_config::{Layers, LoadError};

/// `node/node.example.toml`: every key with its meaning and default (shown by `--help`).
pub const CONFIG_REFERENCE: &str = include_str!("../node.example.toml");

/// Prefix of environment overrides (`VERINFER_NODE__RPC_URL`, `VERINFER_NODE__TESTING__BEHAVIOUR`).
pub const ENV_PREFIX: &str = "VERINFER_NODE__";
/// Defaults < `node.toml` < `VERINFER_NODE__*`, with messages naming the "node configuration".
const LAYERS: Layers = Layers::new("node", ENV_PREFIX);
/// Default environment variable holding a raw private key (when no keystore is configured).
pub const DEFAULT_KEY_ENV: &str = "VERINFER_NODE_KEY";
/// Environment variable holding the keystore password (when no password file is configured).
pub const KEYSTORE_PASSWORD_ENV: &str = "VERINFER_NODE_KEY_PASSWORD";
/// Smallest VRAM a registered GPU model may have, in MiB (`Verinfer.MIN_GPU_VRAM_MIB`).
pub const MIN_NODE_VRAM_MIB: u32 = 1024;
/// Largest VRAM a registered GPU model may have, in MiB (`Verinfer.MAX_GPU_VRAM_MIB`).
pub const MAX_NODE_VRAM_MIB: u32 = 1 << 24;
/// Highest fee tier (`Verinfer.MAX_FEE_TIER`): tier t serves tasks paying at least 2^t times the
/// network minimum.
pub const MAX_FEE_TIER: u8 = 7;

/// Why the configuration could not be loaded or is inconsistent.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configured file does not exist, or it or an environment override does not parse,
    /// has an unknown key or a value of the wrong type (the error names the file and the key).
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The chain id, contract or first block cannot be resolved (the deployment record is
    /// unreadable, a key is missing, or the keys contradict the record).
    #[error("invalid node configuration: {0}")]
    ChainTarget(#[from] ChainTargetError),
    /// A required key is missing or keys contradict each other.
    #[error("invalid node configuration: {0}")]
    Invalid(String),
}

/// Where the node's signing key comes from (`[key]`), defined once in `verinfer-config`: a
/// keystore (password in `key.password_file` or [`KEYSTORE_PASSWORD_ENV`]) or a raw key in the
/// variable `key.private_key_env` (default [`DEFAULT_KEY_ENV`], see [`default_key_config`]). A
/// signer set programmatically ([`NodeConfig::signer`]) wins over both.
pub use verinfer_config::key::KeyConfig;

/// The node's `[key]` default: no keystore, the raw key in [`DEFAULT_KEY_ENV`]
/// (`VERINFER_NODE_KEY`).
pub fn default_key_config() -> KeyConfig {
    KeyConfig::with_env(DEFAULT_KEY_ENV)
}

/// GPU identity used instead of the detected one (devnets where several nodes share one machine,
/// or text nodes that must share one declared model).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityOverride {
    /// GPU model name declared on chain, e.g. `"NVIDIA GeForce RTX 4090"` (the contract
    /// normalises case and spaces). The owner must have registered it.
    pub gpu_model: String,
    /// The VRAM this machine has, in MiB (`1024..=16777216`). The chain takes the model's VRAM
    /// from its registry; the node warns when this is less.
    pub vram_mib: u32,
}

/// Where inference runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Device {
    /// The CPU (`"cpu"`).
    #[default]
    Cpu,
    /// CUDA device N (`"cuda:N"`; `"cuda"` means `"cuda:0"`).
    Cuda(usize),
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(ordinal) => write!(f, "cuda:{ordinal}"),
        }
    }
}

impl FromStr for Device {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|ordinal| ordinal.parse().ok())
                .map(Self::Cuda)
                .ok_or_else(|| format!("device {s:?} is neither `cpu` nor `cuda:N`")),
        }
    }
}

impl Serialize for Device {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Device {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// How much to stake when joining.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StakeAmount {
    /// The contract's current `minStake` (`"min"`).
    #[default]
    Minimum,
    /// This many token base units: `"1500000000000000000000"` or `"1500e18"`.
    Exact(u128),
}

impl fmt::Display for StakeAmount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Minimum => f.write_str("min"),
            Self::Exact(amount) => write!(f, "{amount}"),
        }
    }
}

impl FromStr for StakeAmount {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s == "min" {
            return Ok(Self::Minimum);
        }
        let error = || {
            format!(
                "stake {s:?} is not `min`, a whole number of token base units, or `<n>e<decimals>`"
            )
        };
        let (mantissa, exponent) = match s.split_once(['e', 'E']) {
            Some((mantissa, exponent)) => (mantissa, exponent.parse::<u32>().map_err(|_| error())?),
            None => (s, 0),
        };
        if mantissa.is_empty() || !mantissa.bytes().all(|b| b.is_ascii_digit()) {
            return Err(error());
        }
        let mantissa: u128 = mantissa.parse().map_err(|_| error())?;
        let amount = 10u128
            .checked_pow(exponent)
            .and_then(|scale| mantissa.checked_mul(scale))
            .filter(|amount| *amount < (1u128 << 96))
            .ok_or_else(|| format!("stake {s:?} does not fit the contract's uint96"))?;
        Ok(Self::Exact(amount))
    }
}

impl Serialize for StakeAmount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for StakeAmount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Environment overrides arrive as numbers when they look like numbers: accept exact
        // integers, refuse floats (precision would be lost silently).
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = StakeAmount;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "`min`, a whole number of token base units, or a string `<n>e<decimals>`",
                )
            }

            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<StakeAmount, E> {
                value.parse().map_err(E::custom)
            }

            fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<StakeAmount, E> {
                Ok(StakeAmount::Exact(value.into()))
            }

            fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<StakeAmount, E> {
                u64::try_from(value)
                    .map(|value| StakeAmount::Exact(value.into()))
                    .map_err(|_| E::custom(format!("stake {value} is negative")))
            }

            fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<StakeAmount, E> {
                Err(E::custom(format!(
                    "stake {value} is a float; quote it as a string such as \"1500e18\" to keep it exact"
                )))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// How a node behaves in a task. Everything but `honest` is for adversarial tests and devnets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Behaviour {
    /// Computes, commits and reveals the true result.
    #[default]
    Honest,
    /// Commits and reveals a result of other work: images of another seed, or a digest of an
    /// altered text output. It disagrees with honest nodes and is slashed.
    Counterfeit,
    /// Commits the true result but never reveals it (slashed for a missed reveal).
    Lazy,
    /// Commits another selected node's commitment and later tries to reveal that node's result
    /// and salt; the contract rejects the reveal (the commitment binds the node's address).
    Copycat,
}

/// A point after which [`crate::run`] returns, as if the process had been killed (tests only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HaltPoint {
    /// Once a result and its salt are persisted, before the commitment is sent.
    Computed,
    /// Once the commitment landed on chain and the Committed state is persisted.
    Committed,
    /// A sampled task's first node: once the AwaitingSample state (the sample block) is
    /// persisted, before the draw is read.
    AwaitingSample,
    /// A sampled task's first node: once the check is on chain (`resolveSample`) and the Checked
    /// state is persisted, before the checkers commit.
    Checked,
    /// Once the reveal landed on chain and the Revealed state is persisted.
    Revealed,
}

/// Test-only behaviours (`[testing]`). Off by default; never set them on a real network: every
/// non-default value gets the node slashed or stops it mid-task.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestingConfig {
    /// `honest` (default), `counterfeit`, `lazy` or `copycat`.
    pub behaviour: Behaviour,
    /// Stands for other hardware: runs inference on a different numeric path (bf16 on CUDA or
    /// f16 on the CPU instead of f32; f32 instead of a requested reduced precision), and on text
    /// also skews the logits by ±5 % (the drift another GPU accumulates over a long generation,
    /// made certain on the tiny test models), so that its text digests differ from its peers'.
    pub numerics_skew: bool,
    /// Make the daemon return right after this state is persisted (crash tests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub halt_after: Option<HaltPoint>,
}

/// The node daemon's configuration, as written in `node.toml`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// JSON-RPC endpoint of the chain.
    pub rpc_url: Url,
    /// A `deployments/<chainid>.json` file giving `chainId`, `verinfer` and `deployBlock`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<PathBuf>,
    /// Chain id (overrides the deployment file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_id: Option<u64>,
    /// The Verinfer contract (overrides the deployment file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verinfer: Option<Address>,
    /// First block to scan for task events (overrides the deployment file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy_block: Option<u64>,
    /// Base URL of the relayer (task args in, results out).
    pub relayer_url: Url,
    /// An extra CA file (PEM, one or more certificates) trusted for `https://` RPC and relayer
    /// URLs besides the system's roots (`SSL_CERT_FILE` replaces those).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// The node's signing key.
    pub key: KeyConfig,
    /// Directory whose subdirectories are models, found by digest.
    pub models_dir: PathBuf,
    /// Directory of persisted state (per-task records, salts, results, the block cursor).
    pub data_dir: PathBuf,
    /// Stake to join with: `"min"` or token base units.
    pub stake: StakeAmount,
    /// The node's minimum price: it is drawn only for tasks paying at least `2^fee_tier` times
    /// the network's minimum fee for that task (`0..=7`; 0 serves every task).
    pub fee_tier: u8,
    /// Declared GPU identity instead of the detected one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<IdentityOverride>,
    /// `"cpu"` or `"cuda:N"`.
    pub device: Device,
    /// Pause between chain polls, in milliseconds.
    pub poll_interval_ms: u64,
    /// Largest block range of one `eth_getLogs` call.
    pub max_block_range: u64,
    /// Stop waiting for task args this many seconds before the commit deadline and commit an
    /// invalid-args report instead (a dApp that never uploads its args must not get honest nodes
    /// slashed).
    pub args_deadline_margin_secs: u64,
    /// How long to wait for one transaction's receipt, in seconds.
    pub tx_timeout_secs: u64,
    /// Where to serve Prometheus `/metrics` (absent: no listener).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<SocketAddr>,
    /// Test-only behaviours.
    pub testing: TestingConfig,
    /// A signer given programmatically (in-process devnets); never read from files.
    #[serde(skip)]
    pub signer: Option<PrivateKeySigner>,
}

impl fmt::Debug for NodeConfig {
    // Spelled out so that a signer can never reach a log through `{:?}` (alloy's Debug already
    // hides the key; this keeps it so if the field type ever changes).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeConfig")
            .field("rpc_url", &self.rpc_url.as_str())
            .field("deployment", &self.deployment)
            .field("chain_id", &self.chain_id)
            .field("verinfer", &self.verinfer)
            .field("deploy_block", &self.deploy_block)
            .field("relayer_url", &self.relayer_url.as_str())
            .field("ca_file", &self.ca_file)
            .field("key", &self.key)
            .field("models_dir", &self.models_dir)
            .field("data_dir", &self.data_dir)
            .field("stake", &self.stake)
            .field("fee_tier", &self.fee_tier)
            .field("identity", &self.identity)
            .field("device", &self.device)
            .field("poll_interval_ms", &self.poll_interval_ms)
            .field("max_block_range", &self.max_block_range)
            .field("args_deadline_margin_secs", &self.args_deadline_margin_secs)
            .field("tx_timeout_secs", &self.tx_timeout_secs)
            .field("metrics_listen", &self.metrics_listen)
            .field("testing", &self.testing)
            .field(
                "signer",
                &self.signer.as_ref().map(|signer| signer.address()),
            )
            .finish()
    }
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            rpc_url: Url::parse("http://127.0.0.1:8545").expect("a valid literal URL"),
            deployment: None,
            chain_id: None,
            verinfer: None,
            deploy_block: None,
            relayer_url: Url::parse("http://127.0.0.1:8645").expect("a valid literal URL"),
            ca_file: None,
            key: default_key_config(),
            models_dir: PathBuf::from("models"),
            data_dir: PathBuf::from("node-data"),
            stake: StakeAmount::Minimum,
            fee_tier: 0,
            identity: None,
            device: Device::Cpu,
            poll_interval_ms: 2000,
            max_block_range: 2000,
            args_deadline_margin_secs: 20,
            tx_timeout_secs: 60,
            metrics_listen: None,
            testing: TestingConfig::default(),
            signer: None,
        }
    }
}

impl NodeConfig {
    /// Defaults, then `path` (when given; it must exist), then `VERINFER_NODE__*` variables.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        Self::validated(LAYERS.load(Self::default(), path)?)
    }

    /// Parses a TOML document over the defaults (no environment), e.g. for tests.
    pub fn from_toml_str(toml: &str) -> Result<Self, ConfigError> {
        Self::validated(LAYERS.from_toml_str(Self::default(), toml)?)
    }

    fn validated(config: Self) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(config)
    }

    /// Checks the rules serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |message: String| Err(ConfigError::Invalid(message));
        if self.poll_interval_ms == 0 {
            return invalid("poll_interval_ms must be positive".into());
        }
        if self.max_block_range == 0 {
            return invalid("max_block_range must be positive".into());
        }
        if self.tx_timeout_secs == 0 {
            return invalid("tx_timeout_secs must be positive".into());
        }
        if self.fee_tier > MAX_FEE_TIER {
            return invalid(format!(
                "fee_tier {} is above the contract's highest fee tier {MAX_FEE_TIER} (a node of tier t serves tasks paying at least 2^t times the network minimum)",
                self.fee_tier
            ));
        }
        if let Some(identity) = &self.identity {
            if identity.gpu_model.trim().is_empty() {
                return invalid("identity.gpu_model is empty".into());
            }
            if !(MIN_NODE_VRAM_MIB..=MAX_NODE_VRAM_MIB).contains(&identity.vram_mib) {
                return invalid(format!(
                    "identity.vram_mib {} is outside the contract's {MIN_NODE_VRAM_MIB}..={MAX_NODE_VRAM_MIB} MiB",
                    identity.vram_mib
                ));
            }
        }
        if self.key.private_key_env.trim().is_empty() {
            return invalid("key.private_key_env is empty".into());
        }
        Ok(())
    }

    /// The HTTP client for `rpc_url` and `relayer_url`: the system's TLS roots plus `ca_file`
    /// (else `VERINFER_CA_FILE`'s).
    pub fn http_client(&self) -> Result<reqwest::Client, verinfer_wire::tls::TlsError> {
        verinfer_wire::tls::http_client(self.ca_file.as_deref())
    }

    /// Pause between chain polls.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
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
    fn defaults_parse_and_overrides_apply() {
        let config = NodeConfig::from_toml_str("").unwrap();
        assert_eq!(config.rpc_url.as_str(), "http://127.0.0.1:8545/");
        assert_eq!(config.stake, StakeAmount::Minimum);
        assert_eq!(config.device, Device::Cpu);
        assert_eq!(config.testing.behaviour, Behaviour::Honest);
        assert!(!config.testing.numerics_skew);

        let config = NodeConfig::from_toml_str(
            r#"
            rpc_url = "http://10.0.0.1:8545"
            chain_id = 5
            verinfer = "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0"
            stake = "1500e18"
            fee_tier = 3
            device = "cuda:1"
            metrics_listen = "127.0.0.1:9464"
            [identity]
            gpu_model = "NVIDIA H100 80GB HBM3"
            vram_mib = 81559
            [testing]
            behaviour = "lazy"
            numerics_skew = true
            halt_after = "committed"
            "#,
        )
        .unwrap();
        assert_eq!(config.stake, StakeAmount::Exact(1500 * 10u128.pow(18)));
        assert_eq!(config.fee_tier, 3);
        assert_eq!(config.device, Device::Cuda(1));
        assert_eq!(config.testing.behaviour, Behaviour::Lazy);
        assert_eq!(config.testing.halt_after, Some(HaltPoint::Committed));
        assert_eq!(config.identity.as_ref().map(|i| i.vram_mib), Some(81559));
        let target = config.chain_target().unwrap();
        assert_eq!((target.chain_id, target.deploy_block), (5, 0));
    }

    #[test]
    fn bad_values_are_named() {
        for (toml, needle) in [
            ("rpc_ur = \"x\"", "rpc_ur"),
            ("device = \"gpu\"", "gpu"),
            ("stake = \"12.5\"", "12.5"),
            ("stake = \"1e30\"", "uint96"),
            ("poll_interval_ms = 0", "poll_interval_ms"),
            ("fee_tier = 8", "fee_tier 8"),
            ("fee_tier = -1", "fee_tier"),
            ("[identity]\ngpu_model = \"x\"\nvram_mib = 512", "vram_mib"),
            ("[testing]\nbehaviour = \"evil\"", "evil"),
        ] {
            let error = NodeConfig::from_toml_str(toml).unwrap_err().to_string();
            assert!(error.contains(needle), "{toml:?}: {error}");
        }
        let error = NodeConfig::from_toml_str("")
            .unwrap()
            .chain_target()
            .unwrap_err()
            .to_string();
        assert!(error.contains("chain id"), "{error}");
    }

    #[test]
    fn the_example_parses_and_documents_every_key() {
        let example = NodeConfig::from_toml_str(CONFIG_REFERENCE).unwrap();
        assert_eq!(example.key, default_key_config());
        // Every key of a fully populated configuration appears in the reference.
        let full = NodeConfig {
            deployment: Some("d.json".into()),
            chain_id: Some(1),
            verinfer: Some(Address::repeat_byte(1)),
            deploy_block: Some(1),
            ca_file: Some("ca.pem".into()),
            key: KeyConfig {
                keystore: Some("k".into()),
                password_file: Some("p".into()),
                ..default_key_config()
            },
            identity: Some(IdentityOverride {
                gpu_model: "g".into(),
                vram_mib: 2048,
            }),
            metrics_listen: Some("127.0.0.1:1".parse().unwrap()),
            testing: TestingConfig {
                halt_after: Some(HaltPoint::Computed),
                ..TestingConfig::default()
            },
            ..NodeConfig::default()
        };
        let serde_json::Value::Object(top) = serde_json::to_value(&full).unwrap() else {
            panic!("not a table")
        };
        for (key, value) in top {
            match value {
                serde_json::Value::Object(table) => {
                    assert!(
                        CONFIG_REFERENCE.contains(&format!("[{key}]")),
                        "table [{key}] is not documented"
                    );
                    for nested in table.keys() {
                        assert!(
                            CONFIG_REFERENCE.contains(&format!("{nested} =")),
                            "{key}.{nested} is not documented"
                        );
                    }
                }
                _ => assert!(
                    CONFIG_REFERENCE.contains(&format!("{key} =")),
                    "{key} is not documented"
                ),
            }
        }
    }

    #[test]
    fn debug_never_shows_the_key() {
        let signer = PrivateKeySigner::random();
        let secret = hex::encode(signer.credential().to_bytes());
        let config = NodeConfig {
            signer: Some(signer),
            ..NodeConfig::default()
        };
        let debug = format!("{config:?}");
        assert!(!debug.contains(&secret), "{debug}");
    }
}
