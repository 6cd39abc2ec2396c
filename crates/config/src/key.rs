//! A daemon's signing key (feature `signer`): where it comes from ([`KeyConfig`], the `[key]`
//! table of the daemon's configuration) and how it is loaded ([`load_signer`]). Every daemon that
//! signs (the node, the gateway) loads its key here, each with its own variable names.
//!
//! Key material never reaches a log or an error message: errors name the source (file,
//! variable) and what is wrong with it, never its contents.

use std::path::{Path, PathBuf};

use alloy::signers::local::PrivateKeySigner;
use serde::{Deserialize, Serialize};

/// Where a daemon's signing key comes from. Exactly one source is used, in this order: the
/// keystore, the raw key in the environment variable `private_key_env`.
///
/// There is no `Default`: each daemon names its own variable, e.g.
/// `KeyConfig::with_env("VERINFER_NODE_KEY")`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// An encrypted JSON keystore (Web3 Secret Storage, as written by `cast wallet new`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keystore: Option<PathBuf>,
    /// File holding the keystore password (trailing newline ignored); without it the password
    /// is read from the daemon's password variable (the `password_env` of [`load_signer`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// Environment variable holding a raw hex private key, used when no keystore is configured.
    pub private_key_env: String,
}

impl KeyConfig {
    /// No keystore: the raw key is read from the environment variable `private_key_env`.
    pub fn with_env(private_key_env: impl Into<String>) -> Self {
        Self {
            keystore: None,
            password_file: None,
            private_key_env: private_key_env.into(),
        }
    }
}

/// Why a daemon's key could not be loaded. The variants carry the variable names they print.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// No source is configured or set.
    #[error(
        "no signing key: set `key.keystore` (with `key.password_file` or {password_env}) or the environment variable {key_env}"
    )]
    Missing {
        /// The raw key's variable (`key.private_key_env`), unset.
        key_env: String,
        /// The keystore password's variable.
        password_env: String,
    },
    /// The raw key in the environment is not a 32-byte hex private key.
    #[error("environment variable {0} does not hold a 32-byte hex private key")]
    BadRawKey(String),
    /// The keystore password is neither in a file nor in the environment.
    #[error("keystore {keystore} needs a password: set `key.password_file` or {password_env}")]
    MissingPassword {
        /// The keystore file.
        keystore: PathBuf,
        /// The keystore password's variable, unset.
        password_env: String,
    },
    /// The password file could not be read.
    #[error("cannot read the keystore password file {path}: {source}")]
    PasswordFile {
        /// The file.
        path: PathBuf,
        /// The read error.
        source: std::io::Error,
    },
    /// The keystore does not exist, does not parse, or the password is wrong.
    #[error("cannot decrypt keystore {path}: {reason}")]
    Keystore {
        /// The keystore file.
        path: PathBuf,
        /// What failed (the keystore library's message, which holds no key material).
        reason: String,
    },
}

/// The signer of `key`'s first configured source: the keystore (its password from
/// `key.password_file`, else from the environment variable `password_env`), then the raw key in
/// the environment variable `key.private_key_env`.
pub fn load_signer(key: &KeyConfig, password_env: &str) -> Result<PrivateKeySigner, KeyError> {
    if let Some(keystore) = &key.keystore {
        let password = keystore_password(keystore, key.password_file.as_deref(), password_env)?;
        return PrivateKeySigner::decrypt_keystore(keystore, password.as_bytes()).map_err(
            |error| KeyError::Keystore {
                path: keystore.clone(),
                reason: error.to_string(),
            },
        );
    }
    let var = &key.private_key_env;
    match std::env::var(var) {
        Ok(raw) => parse_raw_key(&raw).ok_or_else(|| KeyError::BadRawKey(var.clone())),
        Err(_) => Err(KeyError::Missing {
            key_env: var.clone(),
            password_env: password_env.to_owned(),
        }),
    }
}

/// A hex private key, with or without `0x`; `None` when malformed (the reason is dropped: the
/// parser's message could echo the input).
fn parse_raw_key(raw: &str) -> Option<PrivateKeySigner> {
    let hex = raw.trim();
    let hex = hex.strip_prefix("0x").unwrap_or(hex);
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    hex.parse().ok()
}

fn keystore_password(
    keystore: &Path,
    password_file: Option<&Path>,
    password_env: &str,
) -> Result<String, KeyError> {
    match password_file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| KeyError::PasswordFile {
                path: path.to_owned(),
                source,
            })?;
            // Editors and `echo` add a final newline that is not part of the password.
            Ok(text
                .strip_suffix('\n')
                .map(|t| t.strip_suffix('\r').unwrap_or(t))
                .unwrap_or(&text)
                .to_owned())
        }
        None => std::env::var(password_env).map_err(|_| KeyError::MissingPassword {
            keystore: keystore.to_owned(),
            password_env: password_env.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANVIL_KEY_1: &str = "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";

    #[test]
    fn raw_keys_parse_with_or_without_prefix_and_errors_hide_them() {
        let with_prefix = parse_raw_key(&format!("0x{ANVIL_KEY_1}\n")).unwrap();
        let without = parse_raw_key(ANVIL_KEY_1).unwrap();
        assert_eq!(with_prefix.address(), without.address());
        assert_eq!(
            without.address().to_string(),
            "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
        );
        assert!(parse_raw_key(&ANVIL_KEY_1[1..]).is_none());
        assert!(parse_raw_key(&format!("{}zz", &ANVIL_KEY_1[2..])).is_none());

        let key = KeyConfig::with_env("VERINFER_TEST_NO_SUCH_VARIABLE");
        let error = load_signer(&key, "VERINFER_TEST_NO_SUCH_PASSWORD")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("VERINFER_TEST_NO_SUCH_VARIABLE")
                && error.contains("VERINFER_TEST_NO_SUCH_PASSWORD"),
            "{error}"
        );
    }

    #[test]
    fn keystore_with_password_file_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let key = hex::decode(ANVIL_KEY_1).unwrap();
        let (signer, _uuid) = PrivateKeySigner::encrypt_keystore(
            dir.path(),
            &mut rand_08::thread_rng(),
            &key,
            "correct horse",
            Some("node.json"),
        )
        .unwrap();
        let password_file = dir.path().join("password");
        std::fs::write(&password_file, "correct horse\n").unwrap();
        let mut config = KeyConfig {
            keystore: Some(dir.path().join("node.json")),
            password_file: Some(password_file.clone()),
            ..KeyConfig::with_env("VERINFER_TEST_NO_SUCH_VARIABLE")
        };
        const PASSWORD_ENV: &str = "VERINFER_TEST_NO_SUCH_PASSWORD";
        assert_eq!(
            load_signer(&config, PASSWORD_ENV).unwrap().address(),
            signer.address()
        );

        std::fs::write(&password_file, "wrong").unwrap();
        let error = load_signer(&config, PASSWORD_ENV).unwrap_err();
        let (message, debug) = (error.to_string(), format!("{error:?}"));
        for shown in [&message, &debug] {
            assert!(
                shown.contains("node.json") && !shown.contains(ANVIL_KEY_1),
                "{shown}"
            );
        }

        config.password_file = Some(dir.path().join("missing"));
        assert!(matches!(
            load_signer(&config, PASSWORD_ENV),
            Err(KeyError::PasswordFile { .. })
        ));

        config.password_file = None;
        let error = load_signer(&config, PASSWORD_ENV).unwrap_err();
        assert!(
            matches!(&error, KeyError::MissingPassword { password_env, .. } if password_env == PASSWORD_ENV),
            "{error}"
        );
        assert!(error.to_string().contains(PASSWORD_ENV), "{error}");
    }

    #[test]
    fn serde_keeps_the_table_shape() {
        let key: KeyConfig =
            serde_json::from_str(r#"{"keystore": "k.json", "private_key_env": "X"}"#).unwrap();
        assert_eq!(
            key,
            KeyConfig {
                keystore: Some("k.json".into()),
                ..KeyConfig::with_env("X")
            }
        );
        assert_eq!(
            serde_json::to_string(&KeyConfig::with_env("X")).unwrap(),
            r#"{"private_key_env":"X"}"#
        );
        assert!(
            serde_json::from_str::<KeyConfig>(r#"{"private_key_env": "X", "seed": 1}"#).is_err()
        );
    }
}
