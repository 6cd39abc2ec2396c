//! Loads the node's signing key with `verinfer-config`'s loader (shared with the other daemons),
//! under the node's variable names. Key material never reaches a log or an error message: errors
//! name the source (file, variable) and what is wrong with it, never its contents.

use alloy::signers::local::PrivateKeySigner;
pub use verinfer_config::key::KeyError;

use crate::config::{KEYSTORE_PASSWORD_ENV, NodeConfig};

/// The node's signer, from the first configured source: [`NodeConfig::signer`], the keystore
/// (its password from `key.password_file`, else from `VERINFER_NODE_KEY_PASSWORD`), then the raw
/// key in the environment variable `key.private_key_env`.
pub fn load_signer(config: &NodeConfig) -> Result<PrivateKeySigner, KeyError> {
    if let Some(signer) = &config.signer {
        return Ok(signer.clone());
    }
    verinfer_config::key::load_signer(&config.key, KEYSTORE_PASSWORD_ENV)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{KeyConfig, default_key_config};

    const ANVIL_KEY_1: &str = "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";

    #[test]
    fn missing_keys_name_the_nodes_variables_and_a_set_signer_wins() {
        let mut config = NodeConfig {
            key: KeyConfig {
                private_key_env: "VERINFER_TEST_NO_SUCH_VARIABLE".into(),
                ..default_key_config()
            },
            ..NodeConfig::default()
        };
        let error = load_signer(&config).unwrap_err().to_string();
        assert!(
            error.contains("VERINFER_TEST_NO_SUCH_VARIABLE")
                && error.contains(KEYSTORE_PASSWORD_ENV),
            "{error}"
        );

        let signer: PrivateKeySigner = ANVIL_KEY_1.parse().unwrap();
        config.signer = Some(signer.clone());
        assert_eq!(load_signer(&config).unwrap().address(), signer.address());
    }

    #[test]
    fn a_keystore_without_password_names_the_nodes_password_variable() {
        // The keystore itself (decryption, password files, no key material in errors) is tested
        // with the loader in `verinfer-config`; here only the node's wiring.
        let config = NodeConfig {
            key: KeyConfig {
                keystore: Some("node-keystore.json".into()),
                ..default_key_config()
            },
            ..NodeConfig::default()
        };
        match load_signer(&config) {
            Err(error @ KeyError::MissingPassword { .. }) => {
                let message = error.to_string();
                assert!(
                    message.contains(KEYSTORE_PASSWORD_ENV)
                        && message.contains("node-keystore.json"),
                    "{message}"
                );
            }
            other => panic!("expected MissingPassword, got {other:?}"),
        }
    }
}
