//! The layered configuration loader of the verinfer daemons (`verinfer node`, `verinfer relayer`):
//! one place that reads a configuration struct from, lowest precedence first,
//!
//! 1. its built-in defaults (the struct's `Default`, serialised),
//! 2. a TOML file (optional; when one is named it must exist),
//! 3. environment overrides `<PREFIX><KEY>`, nested keys joined by `__`
//!    (`VERINFER_NODE__IDENTITY__VRAM_MIB=24576` sets `identity.vram_mib`).
//!
//! Each daemon names itself and its prefix once in a [`Layers`] and keeps its own struct, its own
//! validation and its own error type (which wraps [`LoadError`]). A failure names what is wrong:
//! the missing file, or the key and where its value came from (file or environment).
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use verinfer_config::Layers;
//!
//! #[derive(Default, Serialize, Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct ExampleConfig {
//!     port: u16,
//! }
//!
//! const LAYERS: Layers = Layers::new("example", "VERINFER_EXAMPLE__");
//! // `LAYERS.load(ExampleConfig::default(), Some(path))` adds the environment on top.
//! let config = LAYERS.from_toml_str(ExampleConfig::default(), "port = 8080")?;
//! assert_eq!(config.port, 8080);
//! let error = LAYERS
//!     .from_toml_str(ExampleConfig::default(), "prot = 1")
//!     .err()
//!     .unwrap();
//! assert!(error.to_string().starts_with("invalid example configuration: "));
//! assert_eq!(error.key().as_deref(), Some("prot"));
//! # Ok::<(), verinfer_config::LoadError>(())
//! ```
//!
//! With the feature `signer`, the module `key` is the daemons' signing key, defined once: the
//! `[key]` table (`key::KeyConfig`: a keystore with its password file, or a raw key in an
//! environment variable) and `key::load_signer`, each daemon passing its own variable names.
//!
//! Keep this crate small: it depends on serde, figment and thiserror only, plus alloy's local
//! signer (`signer-local`, `signer-keystore`) with the feature `signer`, and nothing but the
//! daemons uses it. Libraries for dApp builders (`verinfer-client`, the wire and ABI crates) must
//! never depend on it, so that they do not compile a configuration framework.

#[cfg(feature = "signer")]
pub mod key;

use std::path::{Path, PathBuf};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use serde::{Serialize, de::DeserializeOwned};

/// Why a configuration could not be loaded.
///
/// The messages are `"<what> configuration file <path> does not exist"` and
/// `"invalid <what> configuration: <figment's message>"`, where figment's message names the key
/// and the file or environment variables the bad value came from.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The named TOML file does not exist.
    #[error("{what} configuration file {path} does not exist")]
    MissingFile {
        /// Whose configuration (`"node"`, `"relayer"`).
        what: &'static str,
        /// The file that was asked for.
        path: PathBuf,
    },
    /// The TOML file or an environment override does not parse, has an unknown key, or a value
    /// of the wrong type.
    #[error("invalid {what} configuration: {source}")]
    Invalid {
        /// Whose configuration (`"node"`, `"relayer"`).
        what: &'static str,
        /// figment's error: the key, the reason and the value's origin.
        source: Box<figment::Error>,
    },
}

impl LoadError {
    /// The dotted key that is wrong (`"identity.vram_mib"`, or an unknown `"identity.vram"`),
    /// when known.
    pub fn key(&self) -> Option<String> {
        match self {
            Self::MissingFile { .. } => None,
            Self::Invalid { source, .. } => {
                (!source.path.is_empty()).then(|| source.path.join("."))
            }
        }
    }

    /// The file at fault: the missing file, or the TOML file the bad value came from (`None` when
    /// it came from the environment or from a string).
    pub fn file(&self) -> Option<&Path> {
        match self {
            Self::MissingFile { path, .. } => Some(path),
            Self::Invalid { source, .. } => source
                .metadata
                .as_ref()
                .and_then(|metadata| metadata.source.as_ref())
                .and_then(|source| source.file_path()),
        }
    }
}

/// Whose configuration is loaded and which environment variables override it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layers {
    what: &'static str,
    env_prefix: &'static str,
}

impl Layers {
    /// `what` names the configuration in messages (`"node"`); `env_prefix` is the prefix of its
    /// environment overrides, separator included (`"VERINFER_NODE__"`).
    pub const fn new(what: &'static str, env_prefix: &'static str) -> Self {
        Self { what, env_prefix }
    }

    /// `defaults`, then `path` (when given; it must exist), then the environment overrides.
    pub fn load<T: Serialize + DeserializeOwned>(
        &self,
        defaults: T,
        path: Option<&Path>,
    ) -> Result<T, LoadError> {
        let mut figment = Figment::from(Serialized::defaults(defaults));
        if let Some(path) = path {
            if !path.exists() {
                return Err(LoadError::MissingFile {
                    what: self.what,
                    path: path.to_owned(),
                });
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        self.extract(figment.merge(Env::prefixed(self.env_prefix).split("__")))
    }

    /// `defaults`, then the TOML document `toml`; no environment (tests, printed examples).
    pub fn from_toml_str<T: Serialize + DeserializeOwned>(
        &self,
        defaults: T,
        toml: &str,
    ) -> Result<T, LoadError> {
        self.extract(Figment::from(Serialized::defaults(defaults)).merge(Toml::string(toml)))
    }

    fn extract<T: DeserializeOwned>(&self, figment: Figment) -> Result<T, LoadError> {
        figment.extract().map_err(|source| LoadError::Invalid {
            what: self.what,
            source: Box::new(source),
        })
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        name: String,
        port: u16,
        inner: Inner,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        depth: u32,
        flag: bool,
    }

    impl Default for Sample {
        fn default() -> Self {
            Self {
                name: "default".into(),
                port: 1,
                inner: Inner {
                    depth: 2,
                    flag: false,
                },
            }
        }
    }

    /// Sets environment variables for one test. Every test uses its own prefix, so tests running
    /// in parallel never see each other's variables.
    fn set_env(vars: &[(&str, &str)]) {
        for (name, value) in vars {
            // SAFETY: only Rust code in this test binary reads the environment, through std's
            // lock; no C code calls getenv concurrently.
            unsafe { std::env::set_var(name, value) };
        }
    }

    #[test]
    fn defaults_then_file_then_environment() {
        const LAYERS: Layers = Layers::new("sample", "VERINFER_CONFIG_TEST_ORDER__");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sample.toml");
        std::fs::write(&path, "name = \"file\"\nport = 2\n[inner]\ndepth = 3\n").unwrap();

        assert_eq!(
            LAYERS.load(Sample::default(), None).unwrap(),
            Sample::default()
        );
        let from_file = LAYERS.load(Sample::default(), Some(&path)).unwrap();
        assert_eq!((from_file.name.as_str(), from_file.port), ("file", 2));
        assert_eq!((from_file.inner.depth, from_file.inner.flag), (3, false));

        set_env(&[
            ("VERINFER_CONFIG_TEST_ORDER__PORT", "9"),
            ("VERINFER_CONFIG_TEST_ORDER__INNER__FLAG", "true"),
        ]);
        let overridden = LAYERS.load(Sample::default(), Some(&path)).unwrap();
        assert_eq!((overridden.name.as_str(), overridden.port), ("file", 9));
        assert_eq!((overridden.inner.depth, overridden.inner.flag), (3, true));
        // A TOML string never reads the environment.
        let from_string = LAYERS
            .from_toml_str(Sample::default(), "name = \"string\"")
            .unwrap();
        assert_eq!((from_string.name.as_str(), from_string.port), ("string", 1));
    }

    #[test]
    fn a_missing_file_is_named() {
        let layers = Layers::new("sample", "VERINFER_CONFIG_TEST_MISSING__");
        let path = Path::new("/nonexistent/sample.toml");
        let error = layers.load(Sample::default(), Some(path)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "sample configuration file /nonexistent/sample.toml does not exist"
        );
        assert_eq!(error.file(), Some(path));
        assert_eq!(error.key(), None);
    }

    #[test]
    fn a_bad_value_in_the_file_names_key_and_file() {
        let layers = Layers::new("sample", "VERINFER_CONFIG_TEST_FILE__");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sample.toml");
        std::fs::write(&path, "[inner]\ndepth = \"deep\"\n").unwrap();
        let error = layers.load(Sample::default(), Some(&path)).unwrap_err();
        let message = error.to_string();
        assert!(
            message.starts_with("invalid sample configuration: "),
            "{message}"
        );
        assert!(message.contains("inner.depth"), "{message}");
        assert!(message.contains(path.to_str().unwrap()), "{message}");
        assert_eq!(error.key().as_deref(), Some("inner.depth"));
        assert_eq!(error.file(), Some(path.as_path()));
    }

    #[test]
    fn a_bad_environment_override_names_the_variable() {
        let layers = Layers::new("sample", "VERINFER_CONFIG_TEST_ENV__");
        set_env(&[("VERINFER_CONFIG_TEST_ENV__PORT", "not-a-port")]);
        let error = layers.load(Sample::default(), None).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("PORT"), "{message}");
        assert!(
            message.contains("`VERINFER_CONFIG_TEST_ENV__` environment variable(s)"),
            "{message}"
        );
        assert_eq!(error.key().as_deref(), Some("port"));
        assert_eq!(error.file(), None);
    }

    #[test]
    fn an_unknown_key_is_named() {
        let layers = Layers::new("sample", "VERINFER_CONFIG_TEST_UNKNOWN__");
        let error = layers
            .from_toml_str(Sample::default(), "[inner]\ndepht = 1\n")
            .unwrap_err();
        let message = error.to_string();
        assert!(message.contains("depht"), "{message}");
        assert_eq!(error.key().as_deref(), Some("inner.depht"));
    }
}
