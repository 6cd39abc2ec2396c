//! Loads the node's signing key. Key material never reaches a log or an error message: errors
//! name the source (file, variable) and what is wrong with it, never its contents.

use std::path::{Path, PathBuf};

use alloy::signers::local::PrivateKeySigner;

use crate::config::{KEYSTORE_PASSWORD_ENV, NodeConfig};

/// Why the node's key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// No source is configured or set.
    #[error(
        "no node key: set `key.keystore` (with `key.password_file` or {KEYSTORE_PASSWORD_ENV}) or the environment variable {0}"
    )]
    Missing(String),
    /// The raw key in the environment is not a 32-byte hex private key.
    #[error("environment variable {0} does not hold a 32-byte hex private key")]
    BadRawKey(String),
    /// The keystore password is neither in a file nor in the environment.
    #[error("keystore {0} needs a password: set `key.password_file` or {KEYSTORE_PASSWORD_ENV}")]
    MissingPassword(PathBuf),
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

/// The node's signer, from the first configured source: [`NodeConfig::signer`], the keystore,
/// then the raw key in the environment variable `key.private_key_env`.
pub fn load_signer(config: &NodeConfig) -> Result<PrivateKeySigner, KeyError> {
    if let Some(signer) = &config.signer {
        return Ok(signer.clone());
    }
    if let Some(keystore) = &config.key.keystore {
        let password = keystore_password(keystore, config.key.password_file.as_deref())?;
        return PrivateKeySigner::decrypt_keystore(keystore, password.as_bytes()).map_err(
            |error| KeyError::Keystore {
                path: keystore.clone(),
                reason: error.to_string(),
            },
        );
    }
    let var = &config.key.private_key_env;
    match std::env::var(var) {
        Ok(raw) => parse_raw_key(&raw).ok_or_else(|| KeyError::BadRawKey(var.clone())),
        Err(_) => Err(KeyError::Missing(var.clone())),
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

fn keystore_password(keystore: &Path, password_file: Option<&Path>) -> Result<String, KeyError> {
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
        None => std::env::var(KEYSTORE_PASSWORD_ENV)
            .map_err(|_| KeyError::MissingPassword(keystore.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::KeyConfig;

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

        let config = NodeConfig {
            key: KeyConfig {
                private_key_env: "VERINFER_TEST_NO_SUCH_VARIABLE".into(),
                ..KeyConfig::default()
            },
            ..NodeConfig::default()
        };
        let error = load_signer(&config).unwrap_err().to_string();
        assert!(error.contains("VERINFER_TEST_NO_SUCH_VARIABLE"), "{error}");
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
        let mut config = NodeConfig {
            key: KeyConfig {
                keystore: Some(dir.path().join("node.json")),
                password_file: Some(password_file.clone()),
                ..KeyConfig::default()
            },
            ..NodeConfig::default()
        };
        assert_eq!(load_signer(&config).unwrap().address(), signer.address());

        std::fs::write(&password_file, "wrong").unwrap();
        let error = load_signer(&config).unwrap_err().to_string();
        assert!(
            error.contains("node.json") && !error.contains(ANVIL_KEY_1),
            "{error}"
        );

        config.key.password_file = Some(dir.path().join("missing"));
        assert!(matches!(
            load_signer(&config),
            Err(KeyError::PasswordFile { .. })
        ));
    }
}
