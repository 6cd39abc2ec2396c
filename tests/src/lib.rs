//! End-to-end test harness: a real verinfer network in one process.
//!
//! [`Network::start`] runs anvil (the npm binary, automining plus a block every second so that
//! deadlines pass as on a real chain), deploys the contracts with short commit and reveal
//! windows, and serves the relayer in-process; [`Network::add_node`] starts a node daemon (any
//! declared GPU, any test behaviour) on the tiny models; [`Network::client`] is the task
//! creator's [`Client`]. Everything stops when the `Network` is dropped.

use std::{
    net::{Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    sync::Mutex,
    time::Duration,
};

use alloy::{
    network::EthereumWallet,
    node_bindings::{Anvil, AnvilInstance},
    primitives::{Address, U256},
    providers::{DynProvider, Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
};
use tokio::{sync::watch, task::JoinSet};
use url::Url;
use verinfer_abi::{Deployment, IERC20, IVerinfer, NodeState, Verinfer, devnet};
use verinfer_client::Client;
use verinfer_node::{Behaviour, IdentityOverride, Node, NodeConfig, TestingConfig};
use verinfer_task::ModelRef;

/// Errors of the harness (it is test code: any error fails the test with its message).
pub type Error = Box<dyn std::error::Error + Send + Sync>;
/// Result of the harness.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Token base units per token.
pub const TOKEN: u128 = 1_000_000_000_000_000_000;
/// The minimum stake nodes join with (the deploy script's default).
pub const MIN_STAKE: u128 = 1_000 * TOKEN;
/// Tokens minted to each node and to the creator.
pub const FUNDS: u128 = 10_000 * TOKEN;
/// The contract's slash share (50 %).
pub const SLASH_BPS: u128 = 5_000;

/// The deployment record's file name in the network's data directory.
const DEPLOYMENT_FILE: &str = "deployment.json";

/// The tiny models, made once per test binary.
static MODELS: Mutex<Option<Models>> = Mutex::new(None);

/// The tiny models and references to them for task args.
#[derive(Debug, Clone)]
pub struct Models {
    /// Directory holding `tiny-sd/` and `tiny-llama/`.
    pub dir: PathBuf,
    /// The Stable Diffusion model.
    pub sd: ModelRef,
    /// The llama model.
    pub llama: ModelRef,
}

/// Makes (once per process; kept across runs, as make-tiny is deterministic) and returns the tiny
/// models under `target/e2e-models` of this workspace.
pub fn models() -> Result<Models> {
    let mut slot = MODELS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(models) = slot.as_ref() {
        return Ok(models.clone());
    }
    // CARGO_TARGET_TMPDIR is only given to test and bench targets, not to this library.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/e2e-models");
    let made = verinfer_inference::make_tiny_models(&dir, 0, false)?;
    let models = Models {
        sd: ModelRef::from_dir(&made.sd)?,
        llama: ModelRef::from_dir(&made.llama)?,
        dir,
    };
    *slot = Some(models.clone());
    Ok(models)
}

/// Deployment parameters of a test network.
#[derive(Debug, Clone, Copy)]
pub struct NetworkParams {
    /// Commit window, seconds.
    pub commit_window: u32,
    /// Reveal window, seconds.
    pub reveal_window: u32,
}

impl Default for NetworkParams {
    fn default() -> Self {
        Self {
            commit_window: 30,
            reveal_window: 6,
        }
    }
}

/// A node to add.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    /// Declared GPU model.
    pub gpu_model: &'static str,
    /// Declared VRAM, MiB.
    pub vram_mib: u32,
    /// Test behaviour.
    pub behaviour: Behaviour,
    /// Run on bf16 instead of the requested precision (stands for other hardware).
    pub numerics_skew: bool,
}

impl NodeSpec {
    /// An honest node declaring `gpu_model` with 24 GiB.
    pub fn honest(gpu_model: &'static str) -> Self {
        Self {
            gpu_model,
            vram_mib: 24 * 1024,
            behaviour: Behaviour::Honest,
            numerics_skew: false,
        }
    }

    /// A node of `gpu_model` with `behaviour`.
    pub fn behaving(gpu_model: &'static str, behaviour: Behaviour) -> Self {
        Self {
            behaviour,
            ..Self::honest(gpu_model)
        }
    }

    /// A node that claims `gpu_model` but computes on other numerics.
    pub fn skewed(gpu_model: &'static str) -> Self {
        Self {
            numerics_skew: true,
            ..Self::honest(gpu_model)
        }
    }
}

/// A running test network.
pub struct Network {
    anvil: AnvilInstance,
    provider: DynProvider,
    deployment: Deployment,
    relayer_url: Url,
    models: Models,
    data: tempfile::TempDir,
    next_key: usize,
    stop_tx: watch::Sender<bool>,
    services: JoinSet<()>,
}

impl Network {
    /// Starts anvil, deploys, funds the creator and starts the relayer.
    pub async fn start(params: NetworkParams) -> Result<Self> {
        let models = tokio::task::spawn_blocking(models).await??;
        let anvil_path = devnet::foundry_tool(&devnet::repo_root(), devnet::FoundryTool::Anvil)?;
        let anvil = Anvil::at(anvil_path)
            .block_time(1)
            .arg("--mixed-mining")
            .arg("--accounts")
            .arg("12")
            .try_spawn()?;
        let wallet: EthereumWallet = anvil.wallet().ok_or("anvil reported no dev keys")?;
        let provider = ProviderBuilder::new()
            .wallet(wallet)
            .connect_http(anvil.endpoint_url())
            .erased();
        let deployer = anvil.addresses()[0];
        let init = IVerinfer::InitParams {
            commitWindow: params.commit_window,
            revealWindow: params.reveal_window,
            ..devnet::default_init_params()
        };
        let deployment =
            devnet::deploy_with_mock_token(&provider, deployer, deployer, deployer, init).await?;
        let data = tempfile::tempdir()?;
        let deployment_path = data.path().join(DEPLOYMENT_FILE);
        deployment.save(&deployment_path)?;
        devnet::mint(
            &provider,
            deployment.staking_token,
            deployer,
            &[anvil.addresses()[1]],
            U256::from(FUNDS),
        )
        .await?;

        let (stop_tx, stop_rx) = watch::channel(false);
        let mut services = JoinSet::new();
        let config = verinfer_relayer::RelayerConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            rpc_url: Some(anvil.endpoint_url()),
            deployment: Some(deployment_path),
            data_dir: data.path().join("relayer"),
            poll_interval_ms: 200,
            confirmations: 0,
            ..verinfer_relayer::RelayerConfig::default()
        };
        let listener = tokio::net::TcpListener::bind(config.listen).await?;
        let relayer_url = Url::parse(&format!("http://{}", listener.local_addr()?))?;
        let relayer = verinfer_relayer::Relayer::from_config(&config).await?;
        let mut stop = stop_rx.clone();
        services.spawn(async move {
            let served = relayer.serve(listener, async move {
                let _ = stop.wait_for(|stop| *stop).await;
            });
            if let Err(error) = served.await {
                tracing::error!(%error, "relayer stopped");
            }
        });
        Ok(Self {
            anvil,
            provider,
            deployment,
            relayer_url,
            models,
            data,
            next_key: 2,
            stop_tx,
            services,
        })
    }

    /// The tiny models.
    pub fn models(&self) -> &Models {
        &self.models
    }

    /// The deployment.
    pub fn deployment(&self) -> &Deployment {
        &self.deployment
    }

    /// A provider holding every dev key.
    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    /// The task creator (anvil account 1, funded with [`FUNDS`]).
    pub fn creator(&self) -> Address {
        self.anvil.addresses()[1]
    }

    /// The creator's key (anvil dev account 1, whose key is public).
    pub fn creator_key(&self) -> PrivateKeySigner {
        PrivateKeySigner::from_signing_key(self.anvil.keys()[1].clone().into())
    }

    /// anvil's JSON-RPC endpoint.
    pub fn rpc_url(&self) -> Url {
        self.anvil.endpoint_url()
    }

    /// The relayer's base URL.
    pub fn relayer_url(&self) -> &Url {
        &self.relayer_url
    }

    /// The deployment record on disk (what `Deployment::load` reads; the relayer reads it too).
    pub fn deployment_path(&self) -> PathBuf {
        self.data.path().join(DEPLOYMENT_FILE)
    }

    /// The creator's client.
    pub fn client(&self) -> Client {
        Client::new(
            self.rpc_url(),
            self.creator_key(),
            self.deployment,
            self.relayer_url.clone(),
        )
        .with_poll_interval(Duration::from_millis(200))
    }

    /// Funds a fresh account and starts a node on it (it joins with the minimum stake).
    pub async fn add_node(&mut self, spec: NodeSpec) -> Result<Address> {
        let index = self.next_key;
        let secret = self
            .anvil
            .keys()
            .get(index)
            .ok_or("no dev key left for another node")?
            .clone();
        self.next_key += 1;
        let key = PrivateKeySigner::from_signing_key(secret.into());
        let address = key.address();
        devnet::mint(
            &self.provider,
            self.deployment.staking_token,
            self.anvil.addresses()[0],
            &[address],
            U256::from(FUNDS),
        )
        .await?;
        let config = NodeConfig {
            rpc_url: self.anvil.endpoint_url(),
            chain_id: Some(self.deployment.chain_id),
            verinfer: Some(self.deployment.verinfer),
            deploy_block: Some(self.deployment.deploy_block),
            relayer_url: self.relayer_url.clone(),
            models_dir: self.models.dir.clone(),
            data_dir: self.data.path().join(format!("node-{index}")),
            identity: Some(IdentityOverride {
                gpu_model: spec.gpu_model.to_owned(),
                vram_mib: spec.vram_mib,
            }),
            poll_interval_ms: 200,
            args_deadline_margin_secs: 2,
            testing: TestingConfig {
                behaviour: spec.behaviour,
                numerics_skew: spec.numerics_skew,
                ..TestingConfig::default()
            },
            signer: Some(key),
            ..NodeConfig::default()
        };
        let node = Node::start(config).await?;
        let mut stop = self.stop_tx.subscribe();
        self.services.spawn(async move {
            let run = node.run(async move {
                let _ = stop.wait_for(|stop| *stop).await;
            });
            if let Err(error) = run.await {
                tracing::error!(%address, %error, "node stopped");
            }
        });
        Ok(address)
    }

    /// A token balance.
    pub async fn balance(&self, account: Address) -> Result<u128> {
        let balance = IERC20::new(self.deployment.staking_token, &self.provider)
            .balanceOf(account)
            .call()
            .await?;
        Ok(balance.to::<u128>())
    }

    /// A node's state and stake on chain.
    pub async fn node(&self, node: Address) -> Result<(NodeState, u128)> {
        let info = Verinfer::new(self.deployment.verinfer, &self.provider)
            .getNode(node)
            .call()
            .await?;
        Ok((NodeState::try_from(info.state)?, info.stake.to::<u128>()))
    }

    /// The account's transaction count (to prove nothing was sent).
    pub async fn nonce(&self, account: Address) -> Result<u64> {
        Ok(self.provider.get_transaction_count(account).await?)
    }

    /// Stops the nodes and the relayer (anvil stops when the network is dropped).
    pub async fn stop(mut self) {
        let _ = self.stop_tx.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(10), async {
            while self.services.join_next().await.is_some() {}
        })
        .await;
        self.services.abort_all();
    }
}

/// Half the stake: what a misbehaving node loses.
pub const fn slash_of(stake: u128) -> u128 {
    stake * SLASH_BPS / 10_000
}
