//! `gateway.toml`: the gateway's configuration, with `VERINFER_GATEWAY__*` environment overrides.
//!
//! Precedence, lowest first: built-in defaults, the TOML file, environment variables
//! (`VERINFER_GATEWAY__LISTEN=0.0.0.0:8650`). The creator key is never in the file: a keystore
//! (password in a file or `VERINFER_GATEWAY_KEY_PASSWORD`) or a raw key in the environment
//! (`VERINFER_KEY` by default), as for a node. API keys are configured by their SHA-256 only.
//! See `gateway/gateway.example.toml` for every key.

use std::{
    collections::BTreeSet,
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
    str::FromStr,
};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use url::Url;
use verinfer_abi::{TokenAmountText, ValidationMode};
use verinfer_config::{Layers, LoadError, key::KeyConfig};
use verinfer_task::{Precision, Scheduler};

/// Prefix of environment overrides (`VERINFER_GATEWAY__LISTEN`).
pub const ENV_PREFIX: &str = "VERINFER_GATEWAY__";
/// Default environment variable holding the creator's raw private key (the CLI's, too).
pub const DEFAULT_KEY_ENV: &str = "VERINFER_KEY";
/// Environment variable holding the keystore password (when no password file is configured).
pub const KEYSTORE_PASSWORD_ENV: &str = "VERINFER_GATEWAY_KEY_PASSWORD";
/// `gateway/gateway.example.toml`: every key with its meaning and default.
pub const CONFIG_REFERENCE: &str = include_str!("../gateway.example.toml");

const LAYERS: Layers = Layers::new("gateway", ENV_PREFIX);

/// Why the configuration could not be loaded or is inconsistent.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file does not exist, or it or an environment override does not parse.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// A value is out of range or keys contradict each other.
    #[error("invalid gateway configuration: {0}")]
    Invalid(String),
}

/// A decimal number of tokens as written in the configuration (`"0.5"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokens(pub TokenAmountText);

impl Tokens {
    /// Zero tokens.
    pub fn zero() -> Self {
        Self("0".parse().expect("0 is a token amount"))
    }
}

impl fmt::Display for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for Tokens {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Tokens {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        TokenAmountText::from_str(&text)
            .map(Self)
            .map_err(serde::de::Error::custom)
    }
}

/// What a model does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// An LLM: `/v1/chat/completions`.
    Text,
    /// Stable Diffusion: `/v1/images/generations`.
    Image,
}

/// One model the gateway offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The name clients ask for (`model` in requests), e.g. `"tiny-llama"`.
    pub id: String,
    /// Text or image.
    pub kind: ModelKind,
    /// A local copy of the model (diffusers / Hugging Face layout): its name and digest are
    /// computed from it, and for text models its tokenizer counts prompt tokens. Give either
    /// this or `name` and `digest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_dir: Option<PathBuf>,
    /// Text models without `model_dir`: a directory with the model's `tokenizer.json` (and
    /// `tokenizer_config.json`, for its chat template), to count prompt tokens as nodes do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokenizer_dir: Option<PathBuf>,
    /// The model's name in task args (without `model_dir`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The model's digest, `sha256:…` (without `model_dir`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Text models: the registered GPU model all three nodes must have (empty: the registered
    /// model with the most available nodes, chosen per request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_model: Option<String>,
    /// VRAM every node's GPU model must have, MiB.
    #[serde(default)]
    pub min_vram_mib: u32,
    /// `full` (three nodes) or `sampled` (one node, checked by two more with probability p).
    #[serde(default = "default_validation", with = "validation_mode")]
    pub validation: ValidationMode,
    /// Fee paid per task, in tokens (the total is raised to the network's minimum).
    #[serde(default = "Tokens::zero")]
    pub fee_per_task: Tokens,
    /// Text models: fee per requested token (`max_tokens`), in tokens.
    #[serde(default = "Tokens::zero")]
    pub fee_per_token: Tokens,
    /// Image models: fee per image (`n`), in tokens.
    #[serde(default = "Tokens::zero")]
    pub fee_per_image: Tokens,
    /// Text models: `max_tokens` when a request gives none.
    #[serde(default = "default_max_tokens")]
    pub max_tokens: u32,
    /// Text models: `temperature` when a request gives none (OpenAI's default is 1; 0 is greedy).
    #[serde(default = "default_temperature")]
    pub temperature: f64,
    /// Image models: width and height when a request gives no `size`.
    #[serde(default = "default_image_side")]
    pub width: u32,
    /// See `width`.
    #[serde(default = "default_image_side")]
    pub height: u32,
    /// Image models: denoising steps when a request gives none.
    #[serde(default = "default_steps")]
    pub steps: u32,
    /// Image models: classifier-free guidance scale when a request gives none.
    #[serde(default = "default_guidance")]
    pub guidance_scale: f64,
    /// Image models: the scheduler.
    #[serde(default = "default_scheduler")]
    pub scheduler: Scheduler,
    /// The precision nodes run the model in.
    #[serde(default)]
    pub precision: Precision,
}

impl ModelConfig {
    /// Where the tokenizer of a text model is: `tokenizer_dir`, else `model_dir`.
    pub fn tokenizer_dir(&self) -> Option<&Path> {
        self.tokenizer_dir.as_deref().or(self.model_dir.as_deref())
    }
}

fn default_validation() -> ValidationMode {
    ValidationMode::Full
}
fn default_max_tokens() -> u32 {
    256
}
fn default_temperature() -> f64 {
    1.0
}
fn default_image_side() -> u32 {
    512
}
fn default_steps() -> u32 {
    30
}
fn default_guidance() -> f64 {
    7.5
}
fn default_scheduler() -> Scheduler {
    Scheduler::Ddim
}

/// `validation = "full" | "sampled"`.
mod validation_mode {
    use serde::{Deserialize, Deserializer, Serializer};
    use verinfer_abi::ValidationMode;

    pub fn serialize<S: Serializer>(mode: &ValidationMode, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match mode {
            ValidationMode::Full => "full",
            ValidationMode::Sampled => "sampled",
        })
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ValidationMode, D::Error> {
        match String::deserialize(d)?.as_str() {
            "full" => Ok(ValidationMode::Full),
            "sampled" => Ok(ValidationMode::Sampled),
            other => Err(serde::de::Error::custom(format!(
                "validation {other:?} is neither \"full\" nor \"sampled\""
            ))),
        }
    }
}

/// How much an API key may spend on fees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Budget {
    /// Tokens per UTC day.
    PerDay(Tokens),
    /// Tokens in total, over the gateway's lifetime (kept in `state_file`).
    Total(Tokens),
}

/// One API key, known by its SHA-256 (`verinfer gateway --new-api-key` makes a key and its hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// A name for logs and metrics (never the key).
    pub name: String,
    /// Hex SHA-256 of the key.
    pub sha256: String,
    /// Its spending limit.
    pub budget: Budget,
}

/// The gateway's configuration, as written in `gateway.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// HTTP listen address.
    pub listen: SocketAddr,
    /// JSON-RPC endpoint of the chain.
    pub rpc_url: Url,
    /// The relayer the network's nodes upload to.
    pub relayer_url: Url,
    /// Base of the image URLs returned for `response_format = "url"` (the relayer's verified
    /// blobs); default `relayer_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_relayer_url: Option<Url>,
    /// The deployment record (`deployments/<chainid>.json`).
    pub deployment: PathBuf,
    /// An extra CA file (PEM) trusted for `https://` URLs besides the system's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Where the API keys' spending is kept, so that budgets survive restarts.
    pub state_file: PathBuf,
    /// Give up on a request (504) when its task is not validated and fetched within this many
    /// seconds; the task goes on on chain.
    pub request_timeout_secs: u64,
    /// Most requests served at once; more get 429.
    pub max_in_flight: usize,
    /// Pause between polls of a task's status, in milliseconds.
    pub poll_interval_ms: u64,
    /// The creator key (funded with the staking token).
    pub key: KeyConfig,
    /// The models offered.
    #[serde(default)]
    pub models: Vec<ModelConfig>,
    /// The API keys allowed to spend.
    #[serde(default)]
    pub api_keys: Vec<ApiKeyConfig>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8650)),
            rpc_url: Url::parse("http://127.0.0.1:8545").expect("static URL"),
            relayer_url: Url::parse("http://127.0.0.1:8645/").expect("static URL"),
            public_relayer_url: None,
            deployment: PathBuf::from("deployments/31337.json"),
            ca_file: None,
            state_file: PathBuf::from("gateway-state.json"),
            request_timeout_secs: 600,
            max_in_flight: 64,
            poll_interval_ms: 500,
            key: KeyConfig::with_env(DEFAULT_KEY_ENV),
            models: Vec::new(),
            api_keys: Vec::new(),
        }
    }
}

impl GatewayConfig {
    /// Defaults, then `path` (when given; it must exist), then `VERINFER_GATEWAY__*` variables.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        Self::validated(LAYERS.load(Self::default(), path)?)
    }

    /// Parses a TOML document over the defaults (no environment), e.g. for tests.
    pub fn from_toml_str(toml: &str) -> Result<Self, ConfigError> {
        Self::validated(LAYERS.from_toml_str(Self::default(), toml)?)
    }

    /// Checks the rules serde cannot express.
    pub fn validated(config: Self) -> Result<Self, ConfigError> {
        let invalid = |message: String| Err(ConfigError::Invalid(message));
        if config.request_timeout_secs == 0 {
            return invalid("request_timeout_secs must be positive".into());
        }
        if config.max_in_flight == 0 {
            return invalid("max_in_flight must be positive".into());
        }
        if config.poll_interval_ms == 0 {
            return invalid("poll_interval_ms must be positive".into());
        }
        if config.models.is_empty() {
            return invalid("no [[models]]: the gateway would offer nothing".into());
        }
        let mut ids = BTreeSet::new();
        for model in &config.models {
            if model.id.trim().is_empty() {
                return invalid("a model has an empty `id`".into());
            }
            if !ids.insert(model.id.as_str()) {
                return invalid(format!("model id {:?} is configured twice", model.id));
            }
            match (&model.model_dir, &model.name, &model.digest) {
                (Some(_), None, None) | (None, Some(_), Some(_)) => {}
                _ => {
                    return invalid(format!(
                        "model {:?}: give either `model_dir` or both `name` and `digest`",
                        model.id
                    ));
                }
            }
            if model.kind == ModelKind::Text && model.tokenizer_dir().is_none() {
                return invalid(format!(
                    "model {:?}: a text model needs `model_dir` or `tokenizer_dir` (its tokenizer counts `usage.prompt_tokens`)",
                    model.id
                ));
            }
            if model.kind == ModelKind::Image && model.tokenizer_dir.is_some() {
                return invalid(format!(
                    "model {:?}: `tokenizer_dir` is for text models",
                    model.id
                ));
            }
            if model.kind == ModelKind::Image && model.gpu_model.is_some() {
                return invalid(format!(
                    "model {:?}: image models run on any GPU model; remove `gpu_model`",
                    model.id
                ));
            }
        }
        if config.api_keys.is_empty() {
            return invalid(
                "no [[api_keys]]: nobody could use the gateway (`verinfer gateway --new-api-key` makes one)"
                    .into(),
            );
        }
        let mut names = BTreeSet::new();
        let mut hashes = BTreeSet::new();
        for key in &config.api_keys {
            if !names.insert(key.name.as_str()) {
                return invalid(format!("API key name {:?} is configured twice", key.name));
            }
            let hash = key.sha256.trim().to_ascii_lowercase();
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return invalid(format!(
                    "API key {:?}: `sha256` must be 64 hex digits (the key's SHA-256, not the key)",
                    key.name
                ));
            }
            if !hashes.insert(hash) {
                return invalid(format!(
                    "API key {:?} has the same sha256 as another key",
                    key.name
                ));
            }
        }
        Ok(config)
    }

    /// Where image URLs point: `public_relayer_url`, else `relayer_url`.
    pub fn public_relayer_url(&self) -> &Url {
        self.public_relayer_url
            .as_ref()
            .unwrap_or(&self.relayer_url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_parses() {
        let config = GatewayConfig::from_toml_str(CONFIG_REFERENCE).unwrap();
        assert_eq!(config.models.len(), 2);
        assert_eq!(config.api_keys.len(), 2);
        assert_eq!(config.key.private_key_env, DEFAULT_KEY_ENV);
    }

    #[test]
    fn mistakes_are_named() {
        let base = r#"
            [[models]]
            id = "m"
            kind = "text"
            tokenizer_dir = "t"
            name = "m"
            digest = "sha256:00"
            [[api_keys]]
            name = "a"
            sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
            budget = { total = "1" }
        "#;
        GatewayConfig::from_toml_str(base).unwrap();
        let error = GatewayConfig::from_toml_str(&base.replace("name = \"m\"\n", ""))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("`model_dir` or both `name` and `digest`"),
            "{error}"
        );
        let error = GatewayConfig::from_toml_str(&base.replace("0000000000000000", "vk-"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("64 hex digits"), "{error}");
        let error = GatewayConfig::from_toml_str(&base.replace("total = \"1\"", "total = \"x\""))
            .unwrap_err()
            .to_string();
        assert!(error.contains("budget"), "{error}");
    }
}
