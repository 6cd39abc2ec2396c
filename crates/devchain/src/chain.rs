//! anvil with the contracts deployed.

use std::path::{Path, PathBuf};

use alloy::{
    primitives::{Address, U256},
    providers::{DynProvider, Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
};
use url::Url;
use verinfer_abi::{Deployment, IVerinfer};

use crate::{
    Anvil, AnvilOptions, Error, ScriptParams, deploy_with_mock_token, deploy_with_script, mint,
};

/// How to deploy the contracts on a fresh anvil. Dev account 0 deploys either way.
#[derive(Debug, Clone)]
pub enum Deploy {
    /// `MockStakingToken` + `Verinfer` through the bindings, owned by dev account 0, with fees to
    /// dev account `treasury` (fast: no forge, no compile).
    Bindings {
        /// The contract's parameters ([`crate::default_init_params`] or adjusted ones).
        params: IVerinfer::InitParams,
        /// The treasury's dev account index.
        treasury: usize,
    },
    /// The project's own `script/Deploy.s.sol` through forge, as an operator deploys.
    Script {
        /// The repository holding the script and `node_modules/`.
        root: PathBuf,
        /// The script's parameters.
        params: ScriptParams,
        /// Where the deployment record is copied (`<out_dir>/<chainid>.json`).
        out_dir: PathBuf,
    },
}

/// A running anvil with the contracts deployed; anvil stops when it is dropped.
#[derive(Debug)]
pub struct Chain {
    anvil: Anvil,
    provider: DynProvider,
    deployment: Deployment,
    deployment_path: Option<PathBuf>,
}

impl Chain {
    /// Starts anvil with `options`, then deploys as `deploy` says.
    pub async fn start(options: &AnvilOptions, deploy: Deploy) -> Result<Self, Error> {
        let anvil = Anvil::start(options).await?;
        Self::deploy(anvil, deploy).await
    }

    /// Deploys on an already started anvil (which is stopped if the deployment fails).
    pub async fn deploy(anvil: Anvil, deploy: Deploy) -> Result<Self, Error> {
        let provider = ProviderBuilder::new()
            .wallet(anvil.wallet())
            .connect_http(anvil.endpoint())
            .erased();
        let deployer = anvil.key(0)?.clone();
        let (deployment, deployment_path) = match deploy {
            Deploy::Bindings { params, treasury } => {
                let treasury = anvil.key(treasury)?.address();
                let deployer = deployer.address();
                let deployment =
                    deploy_with_mock_token(&provider, deployer, deployer, treasury, params).await?;
                (deployment, None)
            }
            Deploy::Script {
                root,
                params,
                out_dir,
            } => {
                let (deployment, path) =
                    deploy_with_script(&root, &anvil.endpoint(), &deployer, params, &out_dir)
                        .await?;
                (deployment, Some(path))
            }
        };
        Ok(Self {
            anvil,
            provider,
            deployment,
            deployment_path,
        })
    }

    /// anvil.
    pub fn anvil(&self) -> &Anvil {
        &self.anvil
    }

    /// anvil's JSON-RPC endpoint.
    pub fn rpc_url(&self) -> Url {
        self.anvil.endpoint()
    }

    /// A provider whose wallet holds every dev key (account 0 the default sender).
    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    /// The deployment.
    pub fn deployment(&self) -> &Deployment {
        &self.deployment
    }

    /// Where the deploy script's record was copied ([`Deploy::Script`] only).
    pub fn deployment_path(&self) -> Option<&Path> {
        self.deployment_path.as_deref()
    }

    /// Dev account `index`'s key.
    pub fn key(&self, index: usize) -> Result<PrivateKeySigner, Error> {
        self.anvil.key(index).cloned()
    }

    /// Dev account `index`'s address.
    pub fn address(&self, index: usize) -> Result<Address, Error> {
        Ok(self.anvil.key(index)?.address())
    }

    /// Mints each account of `grants` its amount of the mock staking token, from dev account 0.
    pub async fn fund(
        &self,
        grants: impl IntoIterator<Item = (Address, U256)>,
    ) -> Result<(), Error> {
        let deployer = self.address(0)?;
        mint(
            &self.provider,
            self.deployment.staking_token,
            deployer,
            grants,
        )
        .await
    }

    /// Stops anvil and waits for it to exit.
    pub async fn stop(self) {
        self.anvil.stop().await;
    }
}
