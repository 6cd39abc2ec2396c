//! End-to-end test harness: a real verinfer network in one process, a thin layer over
//! `verinfer-devchain`.
//!
//! [`Network::start`] runs anvil (the npm binary, automining plus a block every second so that
//! deadlines pass as on a real chain), deploys the contracts with short commit and reveal
//! windows, and serves the relayer in-process; [`Network::add_node`] starts a node daemon (any
//! declared GPU, registered first when the registry lacks it; any test behaviour) on the tiny
//! models; [`Network::client`] is the task creator's [`Client`]. Tasks start by draws the
//! creator's client and the node daemons send. Everything stops when the `Network` is dropped.

use std::{
    path::{Path, PathBuf},
    sync::Mutex,
    time::Duration,
};

use alloy::{
    primitives::{Address, U256},
    providers::{DynProvider, Provider},
    signers::local::PrivateKeySigner,
};
use url::Url;
use verinfer_abi::{Deployment, IERC20, IVerinfer, NodeState, Verinfer};
use verinfer_client::Client;
use verinfer_devchain::{
    AnvilOptions, Chain, Deploy, NodeEnv, Services, TinyModels, default_init_params, relayer_config,
};
use verinfer_node::{Behaviour, IdentityOverride, NodeConfig, TestingConfig};

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
pub type Models = TinyModels;

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
    let models = TinyModels::make(&dir, 0)?;
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
    /// Seconds a task may wait in its queue before it expires.
    pub queue_timeout: u32,
    /// The sampling rate `p` of sampled tasks, in basis points (1..=10,000): the chance that a
    /// sampled task's first result is checked by two more nodes.
    pub sampling_bps: u16,
}

impl Default for NetworkParams {
    fn default() -> Self {
        Self {
            commit_window: 30,
            reveal_window: 6,
            queue_timeout: 3_600,
            sampling_bps: 500,
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
    chain: Chain,
    creator: PrivateKeySigner,
    relayer_url: Url,
    models: Models,
    data: tempfile::TempDir,
    next_key: usize,
    services: Services,
}

impl Network {
    /// Starts anvil, deploys, funds the creator and starts the relayer.
    pub async fn start(params: NetworkParams) -> Result<Self> {
        let models = tokio::task::spawn_blocking(models).await??;
        let anvil = AnvilOptions {
            accounts: 12,
            ..AnvilOptions::devnet()
        };
        let deploy = Deploy::Bindings {
            params: IVerinfer::Params {
                commitWindow: params.commit_window,
                revealWindow: params.reveal_window,
                queueTimeout: params.queue_timeout,
                samplingBps: params.sampling_bps,
                ..default_init_params()
            },
            treasury: 0,
        };
        let chain = Chain::start(&anvil, deploy).await?;
        let data = tempfile::tempdir()?;
        chain.deployment().save(data.path().join(DEPLOYMENT_FILE))?;
        let creator = chain.key(1)?;
        chain.fund([(creator.address(), U256::from(FUNDS))]).await?;

        let mut services = Services::new();
        let config = relayer_config(
            &chain.rpc_url(),
            chain.deployment(),
            &data.path().join("relayer"),
            0,
        );
        let relayer_url = services.start_relayer(&config).await?;
        Ok(Self {
            chain,
            creator,
            relayer_url,
            models,
            data,
            next_key: 2,
            services,
        })
    }

    /// The tiny models.
    pub fn models(&self) -> &Models {
        &self.models
    }

    /// The deployment.
    pub fn deployment(&self) -> &Deployment {
        self.chain.deployment()
    }

    /// A provider holding every dev key.
    pub fn provider(&self) -> &DynProvider {
        self.chain.provider()
    }

    /// The task creator (anvil account 1, funded with [`FUNDS`]).
    pub fn creator(&self) -> Address {
        self.creator.address()
    }

    /// The creator's key (anvil dev account 1, whose key is public).
    pub fn creator_key(&self) -> PrivateKeySigner {
        self.creator.clone()
    }

    /// anvil's JSON-RPC endpoint.
    pub fn rpc_url(&self) -> Url {
        self.chain.rpc_url()
    }

    /// The relayer's base URL.
    pub fn relayer_url(&self) -> &Url {
        &self.relayer_url
    }

    /// The deployment record on disk (what `Deployment::load` reads).
    pub fn deployment_path(&self) -> PathBuf {
        self.data.path().join(DEPLOYMENT_FILE)
    }

    /// The creator's client.
    pub fn client(&self) -> Client {
        Client::new(
            self.rpc_url(),
            self.creator_key(),
            *self.deployment(),
            self.relayer_url.clone(),
        )
        .with_poll_interval(Duration::from_millis(200))
    }

    /// Funds a fresh account and starts a node on it (it joins with the minimum stake).
    pub async fn add_node(&mut self, spec: NodeSpec) -> Result<Address> {
        let index = self.next_key;
        let key = self
            .chain
            .key(index)
            .map_err(|_| "no dev key left for another node")?;
        self.next_key += 1;
        let address = key.address();
        self.chain.fund([(address, U256::from(FUNDS))]).await?;
        let env = NodeEnv {
            rpc_url: self.rpc_url(),
            deployment: *self.deployment(),
            relayer_url: self.relayer_url.clone(),
            models_dir: self.models.dir.clone(),
        };
        let identity = IdentityOverride {
            gpu_model: spec.gpu_model.to_owned(),
            vram_mib: spec.vram_mib,
        };
        let data_dir = self.data.path().join(format!("node-{index}"));
        let config = NodeConfig {
            args_deadline_margin_secs: 2,
            testing: TestingConfig {
                behaviour: spec.behaviour,
                numerics_skew: spec.numerics_skew,
                ..TestingConfig::default()
            },
            ..env.node_config(key, data_dir, Some(identity))
        };
        self.services
            .start_node(&format!("node-{index}"), config)
            .await?;
        Ok(address)
    }

    /// A token balance.
    pub async fn balance(&self, account: Address) -> Result<u128> {
        let balance = IERC20::new(self.deployment().staking_token, self.provider())
            .balanceOf(account)
            .call()
            .await?;
        Ok(balance.to::<u128>())
    }

    /// Tokens the contract credited to `account` (`claimable`): refunds, slash rewards, returned
    /// stakes.
    pub async fn claimable(&self, account: Address) -> Result<u128> {
        let amount = Verinfer::new(self.deployment().verinfer, self.provider())
            .claimable(account)
            .call()
            .await?;
        Ok(amount.to::<u128>())
    }

    /// A node's state and stake on chain.
    pub async fn node(&self, node: Address) -> Result<(NodeState, u128)> {
        let info = Verinfer::new(self.deployment().verinfer, self.provider())
            .getNode(node)
            .call()
            .await?;
        Ok((NodeState::try_from(info.state)?, info.stake.to::<u128>()))
    }

    /// The account's transaction count (to prove nothing was sent).
    pub async fn nonce(&self, account: Address) -> Result<u64> {
        Ok(self.provider().get_transaction_count(account).await?)
    }

    /// Stops the nodes and the relayer (anvil stops when the network is dropped).
    pub async fn stop(self) {
        self.services.stop(Duration::from_secs(10)).await;
    }
}

/// Half the stake: what a misbehaving node loses.
pub const fn slash_of(stake: u128) -> u128 {
    stake * SLASH_BPS / 10_000
}

/// The contract's slash reward share (50 % of every slash goes to the agreeing nodes, or to the
/// creator when none agreed).
pub const SLASH_REWARD_BPS: u128 = 5_000;

/// What each of `payees` agreeing nodes is credited from a slash of `slashed`.
pub const fn slash_reward_each(slashed: u128, payees: u128) -> u128 {
    slashed * SLASH_REWARD_BPS / 10_000 / payees
}
