//! anvil with the contracts deployed.

use std::{
    path::{Path, PathBuf},
    sync::Mutex,
};

use alloy::{
    primitives::{Address, B256, U256},
    providers::{DynProvider, Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
};
use url::Url;
use verinfer_abi::{Deployment, IVerinfer, Verinfer, VerinferInstance};

use crate::{
    Anvil, AnvilOptions, Error, ScriptParams, add_gpu_models, deploy_with_mock_token,
    deploy_with_script, draw, mint,
};

/// How to deploy the contracts on a fresh anvil. Dev account 0 deploys either way.
#[derive(Debug, Clone)]
pub enum Deploy {
    /// `MockStakingToken` + `Verinfer` through the bindings, owned by dev account 0, with fees to
    /// dev account `treasury` (fast: no forge, no compile). Parameter changes apply at once
    /// (`paramsDelay` 0); no GPU model is registered ([`Chain::add_gpu_models`], or
    /// [`crate::Services`] registering what its nodes declare).
    Bindings {
        /// The contract's parameters ([`crate::default_init_params`] or adjusted ones).
        params: IVerinfer::Params,
        /// The treasury's dev account index.
        treasury: usize,
    },
    /// The project's own `script/Deploy.s.sol` through forge, as an operator deploys (the script
    /// registers its default GPU models; parameter changes apply at once on anvil).
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
    _shared: SharedProvider,
}

/// The providers of the running [`Chain`]s of this process, by RPC endpoint, so that the kit's
/// other parts ([`crate::Services`] registering GPU models) send as dev account 0 through the
/// chain's own provider: its nonce manager caches nonces, and a transaction from account 0 sent
/// through another provider would leave it behind ("nonce too low").
static PROVIDERS: Mutex<Vec<(Url, DynProvider)>> = Mutex::new(Vec::new());

/// The provider of the running [`Chain`] at `rpc_url`, if this process runs one.
pub(crate) fn chain_provider(rpc_url: &Url) -> Option<DynProvider> {
    let providers = PROVIDERS.lock().unwrap_or_else(|p| p.into_inner());
    providers
        .iter()
        .find(|(url, _)| url == rpc_url)
        .map(|(_, provider)| provider.clone())
}

/// [`Chain`]'s entry in [`PROVIDERS`], removed when the chain goes.
#[derive(Debug)]
struct SharedProvider(Url);

impl SharedProvider {
    fn new(rpc_url: Url, provider: DynProvider) -> Self {
        let mut providers = PROVIDERS.lock().unwrap_or_else(|p| p.into_inner());
        providers.retain(|(url, _)| *url != rpc_url);
        providers.push((rpc_url.clone(), provider));
        Self(rpc_url)
    }
}

impl Drop for SharedProvider {
    fn drop(&mut self) {
        let mut providers = PROVIDERS.lock().unwrap_or_else(|p| p.into_inner());
        providers.retain(|(url, _)| *url != self.0);
    }
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
            .connect_reqwest(verinfer_wire::tls::default_http_client(), anvil.endpoint())
            .erased();
        let deployer = anvil.key(0)?.clone();
        let (deployment, deployment_path) = match deploy {
            Deploy::Bindings { params, treasury } => {
                let treasury = anvil.key(treasury)?.address();
                let deployer = deployer.address();
                let deployment =
                    deploy_with_mock_token(&provider, deployer, deployer, treasury, params, 0)
                        .await?;
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
        let shared = SharedProvider::new(anvil.endpoint(), provider.clone());
        Ok(Self {
            anvil,
            provider,
            deployment,
            deployment_path,
            _shared: shared,
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

    /// The `Verinfer` contract on [`Self::provider`].
    pub fn verinfer(&self) -> VerinferInstance<DynProvider> {
        Verinfer::new(self.deployment.verinfer, self.provider.clone())
    }

    /// Registers, from dev account 0 (the owner of every deployment this kit makes), each GPU
    /// model of `models` (name, VRAM in MiB) not registered yet; names already registered are
    /// skipped. Returns the ids of the models added. Nodes may join only with registered models,
    /// and text tasks must name one.
    pub async fn add_gpu_models<S: AsRef<str>>(
        &self,
        models: impl IntoIterator<Item = (S, u32)>,
    ) -> Result<Vec<B256>, Error> {
        add_gpu_models(
            &self.provider,
            self.deployment.verinfer,
            self.address(0)?,
            models,
        )
        .await
    }

    /// Sends `drawTasks()` from dev account 0 and waits for it; returns the ids of the tasks it
    /// started. `createTask` only queues a task: the draw that starts it runs in a later block's
    /// first call, so on an automining chain, where nothing else is sent, call this after the
    /// `createTask` receipt (any other transaction to the contract draws as well).
    pub async fn draw(&self) -> Result<Vec<u64>, Error> {
        draw(&self.provider, self.deployment.verinfer, self.address(0)?).await
    }

    /// Stops anvil and waits for it to exit.
    pub async fn stop(self) {
        let Self { anvil, _shared, .. } = self;
        drop(_shared);
        anvil.stop().await;
    }
}
