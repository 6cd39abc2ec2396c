//! The deployment record `script/Deploy.s.sol` writes to `deployments/<chainid>.json`.

use std::{
    fs,
    path::{Path, PathBuf},
};

use alloy::primitives::Address;
use serde::{Deserialize, Serialize};

/// Where the verinfer contracts of one chain live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    /// The chain they are deployed on.
    pub chain_id: u64,
    /// The `Verinfer` contract.
    pub verinfer: Address,
    /// The ERC-20 staked by nodes and paid as task fees.
    pub staking_token: Address,
    /// Whether the staking token is a `MockStakingToken` (devnet faucet).
    pub mock_token: bool,
    /// The contract owner.
    pub owner: Address,
    /// Receiver of protocol fees and slashed stake.
    pub treasury: Address,
    /// Block number the deployment started at: where event scans begin.
    pub deploy_block: u64,
}

/// Why a deployment record could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DeploymentError {
    /// The file could not be read.
    #[error("cannot read deployment record {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file could not be written.
    #[error("cannot write deployment record {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a deployment record.
    #[error("invalid deployment record {}: {source}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The underlying error (names the missing or malformed field and its position).
        #[source]
        source: serde_json::Error,
    },
    /// An address field is the zero address.
    #[error("invalid deployment record {}: `{field}` is the zero address", path.display())]
    ZeroAddress {
        /// The file.
        path: PathBuf,
        /// The JSON field.
        field: &'static str,
    },
    /// The record is for another chain than the one asked for.
    #[error("deployment record {} is for chain {found}, expected chain {expected}", path.display())]
    ChainMismatch {
        /// The file.
        path: PathBuf,
        /// The chain asked for.
        expected: u64,
        /// The chain the record names.
        found: u64,
    },
}

/// The chain a node or relayer works on: chain id, Verinfer contract and first block to scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainTarget {
    /// Chain id the RPC endpoint must report (and part of every upload signature).
    pub chain_id: u64,
    /// The Verinfer contract.
    pub verinfer: Address,
    /// First block to scan for the contract's events.
    pub deploy_block: u64,
}

/// Why a [`ChainTarget`] could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ChainTargetError {
    /// The deployment record could not be loaded.
    #[error(transparent)]
    Deployment(#[from] DeploymentError),
    /// Neither `chain_id` nor a deployment record gives the chain id.
    #[error("the chain id is unknown: set `chain_id` or `deployment`")]
    UnknownChainId,
    /// Neither `verinfer` nor a deployment record gives the contract.
    #[error("the Verinfer address is unknown: set `verinfer` or `deployment`")]
    UnknownVerinfer,
    /// The explicit chain id is not the deployment record's.
    #[error("chain_id {configured} contradicts the deployment file's chainId {recorded}")]
    ChainIdContradicts {
        /// The explicit `chain_id`.
        configured: u64,
        /// The record's `chainId`.
        recorded: u64,
    },
}

impl ChainTarget {
    /// Resolves explicit settings over the deployment record at `deployment` (when given):
    /// an explicit value wins, except a chain id that contradicts the record, which is an error;
    /// the first block defaults to 0.
    pub fn resolve(
        chain_id: Option<u64>,
        verinfer: Option<Address>,
        deploy_block: Option<u64>,
        deployment: Option<&Path>,
    ) -> Result<Self, ChainTargetError> {
        let deployment = deployment.map(Deployment::load).transpose()?;
        let chain_id = chain_id
            .or(deployment.map(|d| d.chain_id))
            .ok_or(ChainTargetError::UnknownChainId)?;
        let verinfer = verinfer
            .or(deployment.map(|d| d.verinfer))
            .ok_or(ChainTargetError::UnknownVerinfer)?;
        if let Some(d) = deployment
            && d.chain_id != chain_id
        {
            return Err(ChainTargetError::ChainIdContradicts {
                configured: chain_id,
                recorded: d.chain_id,
            });
        }
        let deploy_block = deploy_block
            .or(deployment.map(|d| d.deploy_block))
            .unwrap_or(0);
        Ok(Self {
            chain_id,
            verinfer,
            deploy_block,
        })
    }
}

impl Deployment {
    /// The record's path for `chain_id` inside a deployments directory: `<dir>/<chain_id>.json`.
    pub fn path_for(deployments_dir: impl AsRef<Path>, chain_id: u64) -> PathBuf {
        deployments_dir.as_ref().join(format!("{chain_id}.json"))
    }

    /// Reads and checks a deployment record (all fields present, no zero addresses).
    pub fn load(path: impl AsRef<Path>) -> Result<Self, DeploymentError> {
        let path = path.as_ref();
        let text = fs::read_to_string(path).map_err(|source| DeploymentError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_json(&text, path)
    }

    /// Loads `<deployments_dir>/<chain_id>.json` and checks it names `chain_id`.
    pub fn load_for_chain(
        deployments_dir: impl AsRef<Path>,
        chain_id: u64,
    ) -> Result<Self, DeploymentError> {
        let path = Self::path_for(deployments_dir, chain_id);
        let deployment = Self::load(&path)?;
        if deployment.chain_id != chain_id {
            return Err(DeploymentError::ChainMismatch {
                path,
                expected: chain_id,
                found: deployment.chain_id,
            });
        }
        Ok(deployment)
    }

    /// Parses a record; `path` only names the source in errors.
    pub fn from_json(text: &str, path: impl AsRef<Path>) -> Result<Self, DeploymentError> {
        let path = path.as_ref();
        let deployment: Self =
            serde_json::from_str(text).map_err(|source| DeploymentError::Parse {
                path: path.to_path_buf(),
                source,
            })?;
        let addresses = [
            ("verinfer", deployment.verinfer),
            ("stakingToken", deployment.staking_token),
            ("owner", deployment.owner),
            ("treasury", deployment.treasury),
        ];
        if let Some((field, _)) = addresses.iter().find(|(_, address)| address.is_zero()) {
            return Err(DeploymentError::ZeroAddress {
                path: path.to_path_buf(),
                field,
            });
        }
        Ok(deployment)
    }

    /// Writes the record as pretty JSON (the same shape `Deploy.s.sol` writes).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), DeploymentError> {
        let path = path.as_ref();
        let write_error = |source| DeploymentError::Write {
            path: path.to_path_buf(),
            source,
        };
        let mut text = serde_json::to_string_pretty(self)
            .map_err(|e| write_error(std::io::Error::other(e)))?;
        text.push('\n');
        fs::write(path, text).map_err(write_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::address;

    /// What `forge script script/Deploy.s.sol` wrote on anvil.
    const ANVIL_RECORD: &str = r#"{
  "chainId": 31337,
  "deployBlock": 0,
  "mockToken": true,
  "owner": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
  "stakingToken": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
  "treasury": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
  "verinfer": "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0"
}"#;

    #[test]
    fn chain_targets_resolve_explicit_keys_over_the_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = Deployment::path_for(dir.path(), 31337);
        fs::write(
            &path,
            ANVIL_RECORD.replace("\"deployBlock\": 0", "\"deployBlock\": 7"),
        )
        .unwrap();
        let recorded = address!("0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0");
        let other = address!("0x5FbDB2315678afecb367f032d93F642f64180aa3");

        let from_record = ChainTarget::resolve(None, None, None, Some(&path)).unwrap();
        assert_eq!(
            from_record,
            ChainTarget {
                chain_id: 31337,
                verinfer: recorded,
                deploy_block: 7
            }
        );
        let explicit =
            ChainTarget::resolve(Some(31337), Some(other), Some(9), Some(&path)).unwrap();
        assert_eq!((explicit.verinfer, explicit.deploy_block), (other, 9));
        let no_record = ChainTarget::resolve(Some(5), Some(other), None, None).unwrap();
        assert_eq!((no_record.chain_id, no_record.deploy_block), (5, 0));

        let error = ChainTarget::resolve(Some(1), None, None, Some(&path)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "chain_id 1 contradicts the deployment file's chainId 31337"
        );
        let error = ChainTarget::resolve(None, Some(other), None, None).unwrap_err();
        assert!(matches!(error, ChainTargetError::UnknownChainId), "{error}");
        let error = ChainTarget::resolve(Some(5), None, None, None).unwrap_err();
        assert!(
            matches!(error, ChainTargetError::UnknownVerinfer),
            "{error}"
        );
        let missing = dir.path().join("missing.json");
        let error = ChainTarget::resolve(None, None, None, Some(&missing)).unwrap_err();
        assert!(
            matches!(
                error,
                ChainTargetError::Deployment(DeploymentError::Read { .. })
            ),
            "{error}"
        );
    }

    #[test]
    fn loads_the_record_deploy_script_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = Deployment::path_for(dir.path(), 31337);
        fs::write(&path, ANVIL_RECORD).unwrap();
        let deployment = Deployment::load_for_chain(dir.path(), 31337).unwrap();
        assert_eq!(
            deployment,
            Deployment {
                chain_id: 31337,
                verinfer: address!("0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0"),
                staking_token: address!("0x5FbDB2315678afecb367f032d93F642f64180aa3"),
                mock_token: true,
                owner: address!("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"),
                treasury: address!("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"),
                deploy_block: 0,
            }
        );

        let copy = dir.path().join("copy.json");
        deployment.save(&copy).unwrap();
        assert_eq!(Deployment::load(&copy).unwrap(), deployment);
    }

    #[test]
    fn errors_name_the_file_and_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let missing = Deployment::load(dir.path().join("1.json")).unwrap_err();
        assert!(matches!(missing, DeploymentError::Read { .. }));
        assert!(missing.to_string().contains("1.json"), "{missing}");

        let no_owner = ANVIL_RECORD.replace("\"owner\"", "\"ownr\"");
        let error = Deployment::from_json(&no_owner, "x.json").unwrap_err();
        assert!(
            error.to_string().contains("missing field `owner`"),
            "{error}"
        );

        let zero = ANVIL_RECORD.replace(
            "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0",
            "0x0000000000000000000000000000000000000000",
        );
        let error = Deployment::from_json(&zero, "x.json").unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid deployment record x.json: `verinfer` is the zero address"
        );

        fs::write(Deployment::path_for(dir.path(), 1), ANVIL_RECORD).unwrap();
        let error = Deployment::load_for_chain(dir.path(), 1).unwrap_err();
        assert!(matches!(
            error,
            DeploymentError::ChainMismatch {
                expected: 1,
                found: 31337,
                ..
            }
        ));
    }
}
