//! The relayer and node daemons running in this process, stopped together.

use std::{
    collections::HashMap,
    net::{Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    time::Duration,
};

use alloy::{
    primitives::{Address, b256},
    providers::{Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
};
use tokio::{
    sync::watch,
    task::{Id, JoinError, JoinSet},
};
use url::Url;
use verinfer_abi::{Deployment, Verinfer, padded_gas_limit};
use verinfer_node::{IdentityOverride, Node, NodeConfig};
use verinfer_relayer::{Relayer, RelayerConfig};

use crate::{Error, ServiceError, add_gpu_models, anvil::http_url};

/// anvil's dev account 0 (the first key of its default mnemonic): the deployer and owner of every
/// deployment this kit makes, so the one that registers GPU models.
const ANVIL_KEY_0: alloy::primitives::B256 =
    b256!("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80");
/// anvil's chain id.
const ANVIL_CHAIN_ID: u64 = 31_337;

/// The devnet relayer's configuration: listening on 127.0.0.1:`port` (0: a free one), indexing
/// `deployment` on `rpc_url` with no confirmations and 200 ms polls, storing under `data_dir`.
pub fn relayer_config(
    rpc_url: &Url,
    deployment: &Deployment,
    data_dir: &Path,
    port: u16,
) -> RelayerConfig {
    RelayerConfig {
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        rpc_url: Some(rpc_url.clone()),
        chain_id: Some(deployment.chain_id),
        verinfer: Some(deployment.verinfer),
        deploy_block: Some(deployment.deploy_block),
        data_dir: data_dir.to_path_buf(),
        poll_interval_ms: 200,
        confirmations: 0,
        ..RelayerConfig::default()
    }
}

/// What every node of one devnet shares: the chain, the deployment, the relayer and the models.
#[derive(Debug, Clone)]
pub struct NodeEnv {
    /// anvil's JSON-RPC endpoint.
    pub rpc_url: Url,
    /// The contracts.
    pub deployment: Deployment,
    /// The relayer's base URL.
    pub relayer_url: Url,
    /// The directory holding the tiny models.
    pub models_dir: PathBuf,
}

impl NodeEnv {
    /// A node's configuration: signing with `signer`, keeping its state in `data_dir`, declaring
    /// `identity` (`None`: the detected GPU), polling every 200 ms, otherwise the defaults.
    /// Adjust fields (test behaviours, margins) with struct update syntax.
    pub fn node_config(
        &self,
        signer: PrivateKeySigner,
        data_dir: PathBuf,
        identity: Option<IdentityOverride>,
    ) -> NodeConfig {
        NodeConfig {
            rpc_url: self.rpc_url.clone(),
            chain_id: Some(self.deployment.chain_id),
            verinfer: Some(self.deployment.verinfer),
            deploy_block: Some(self.deployment.deploy_block),
            relayer_url: self.relayer_url.clone(),
            models_dir: self.models_dir.clone(),
            data_dir,
            identity,
            poll_interval_ms: 200,
            signer: Some(signer),
            ..NodeConfig::default()
        }
    }
}

/// Sends `drawTasks()` when `drawDue()` (evaluated on the pending block: the block a transaction
/// sent now lands in).
async fn draw_if_due<P: Provider>(
    verinfer: &verinfer_abi::VerinferInstance<P>,
) -> Result<(), String> {
    let due = verinfer
        .drawDue()
        .block(alloy::eips::BlockId::pending())
        .call()
        .await
        .map_err(|error| format!("drawDue: {error}"))?;
    if !due {
        return Ok(());
    }
    let call = verinfer.drawTasks().block(alloy::eips::BlockId::pending());
    let gas = call
        .estimate_gas()
        .await
        .map_err(|error| format!("estimating drawTasks: {error}"))?;
    let receipt = call
        .gas(padded_gas_limit(gas))
        .send()
        .await
        .map_err(|error| format!("sending drawTasks: {error}"))?
        .get_receipt()
        .await
        .map_err(|error| format!("drawTasks receipt: {error}"))?;
    let started = receipt
        .logs()
        .iter()
        .filter(|log| log.log_decode::<Verinfer::TaskStarted>().is_ok())
        .count();
    tracing::debug!(started, tx = %receipt.transaction_hash, "drew");
    Ok(())
}

/// Registers the GPU models that `nodes` (name, configuration) declare — their
/// [`NodeConfig::identity`], or what [`verinfer_node::detect_identity`] finds for the node's
/// device (`cpu:<model>` with the RAM on a machine without an NVIDIA GPU) — with the VRAM they
/// declare, when the registry lacks them. Only on anvil deployments owned by anvil's dev account
/// 0 (every deployment of this kit): elsewhere nothing is sent and a node with an unregistered
/// model fails to join. Where two nodes declare one model with different VRAM, the first one's
/// is registered (and a warning logged): on chain a model has one VRAM.
pub async fn register_declared_gpu_models<'a>(
    nodes: impl IntoIterator<Item = (&'a str, &'a NodeConfig)>,
) -> Result<(), Error> {
    // Per RPC endpoint and contract: the models (name, VRAM), in order.
    type Models = Vec<(String, u32)>;
    // Each target with the HTTP client of its first node (the node's `ca_file`).
    let mut targets: Vec<((Url, Address), Models, reqwest::Client)> = Vec::new();
    for (name, config) in nodes {
        let Some(verinfer) = config.chain_target().ok().map(|target| target.verinfer) else {
            continue;
        };
        let (gpu_model, vram_mib) = match &config.identity {
            Some(identity) => (identity.gpu_model.clone(), identity.vram_mib),
            None => {
                let detected = verinfer_node::detect_identity(config.device).map_err(|source| {
                    Error::Node {
                        name: name.to_owned(),
                        source: Box::new(source),
                    }
                })?;
                (detected.gpu_model, detected.vram_mib)
            }
        };
        let key = (config.rpc_url.clone(), verinfer);
        match targets.iter_mut().find(|(target, ..)| *target == key) {
            Some((_, models, _)) => models.push((gpu_model, vram_mib)),
            None => {
                let http = config.http_client().map_err(|source| Error::Node {
                    name: name.to_owned(),
                    source: Box::new(source.into()),
                })?;
                targets.push((key, vec![(gpu_model, vram_mib)], http));
            }
        }
    }
    let owner_key = PrivateKeySigner::from_bytes(&ANVIL_KEY_0).expect("a valid key");
    let owner = owner_key.address();
    for ((rpc_url, verinfer), models, http) in targets {
        // The running chain's own provider when this process runs it (its nonce cache must see
        // account 0's transactions), else one of our own.
        let provider = crate::chain::chain_provider(&rpc_url).unwrap_or_else(|| {
            ProviderBuilder::new()
                .wallet(owner_key.clone())
                .connect_reqwest(http, rpc_url)
                .erased()
        });
        let context = "reading the contract's owner";
        let chain_id = provider
            .get_chain_id()
            .await
            .map_err(|error| Error::contract(context)(error.into()))?;
        let contract_owner = Verinfer::new(verinfer, &provider)
            .owner()
            .call()
            .await
            .map_err(Error::contract(context))?;
        if chain_id != ANVIL_CHAIN_ID || contract_owner != owner {
            tracing::info!(
                %verinfer,
                %contract_owner,
                "not an anvil deployment owned by dev account 0: the nodes' GPU models are not registered"
            );
            continue;
        }
        add_gpu_models(&provider, verinfer, owner, models).await?;
    }
    Ok(())
}

/// How one service ended.
#[derive(Debug)]
pub struct ServiceExit {
    /// Its name (`relayer`, or the node's name).
    pub name: String,
    /// Its outcome.
    pub outcome: Result<(), ServiceError>,
}

/// A relayer and nodes running in this process until [`Services::stop`] (or until dropped, which
/// aborts them).
#[derive(Debug)]
pub struct Services {
    stop: watch::Sender<bool>,
    running: JoinSet<ServiceExit>,
    names: HashMap<Id, String>,
}

impl Default for Services {
    fn default() -> Self {
        Self::new()
    }
}

impl Services {
    /// No services yet.
    pub fn new() -> Self {
        Self {
            stop: watch::channel(false).0,
            running: JoinSet::new(),
            names: HashMap::new(),
        }
    }

    /// How many services run (or ran and were not yet collected by [`Self::stop`]).
    pub fn len(&self) -> usize {
        self.running.len()
    }

    /// Whether none runs.
    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }

    /// Binds `config.listen`, opens the relayer's store and serves it (and its indexer);
    /// returns its base URL.
    pub async fn start_relayer(&mut self, config: &RelayerConfig) -> Result<Url, Error> {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|error| match error.kind() {
                std::io::ErrorKind::AddrInUse => Error::PortInUse {
                    port: config.listen.port(),
                },
                _ => Error::io(format!("cannot listen on {}", config.listen))(error),
            })?;
        let bound = listener
            .local_addr()
            .map_err(Error::io("cannot read the relayer's address"))?;
        let relayer = Relayer::from_config(config)
            .await
            .map_err(|error| Error::Relayer(Box::new(error)))?;
        let stop = self.stopped();
        self.spawn("relayer".to_owned(), async move {
            relayer
                .serve(listener, stop)
                .await
                .map_err(ServiceError::from)
        });
        Ok(http_url(bound))
    }

    /// Starts (and so registers on chain) the node `name` and runs it; returns its address.
    /// The GPU model it declares is registered first when missing (see
    /// [`register_declared_gpu_models`]).
    pub async fn start_node(&mut self, name: &str, config: NodeConfig) -> Result<Address, Error> {
        register_declared_gpu_models([(name, &config)]).await?;
        let node = Node::start(config).await.map_err(|source| Error::Node {
            name: name.to_owned(),
            source: Box::new(source),
        })?;
        Ok(self.run_node(name.to_owned(), node))
    }

    /// Starts every node of `nodes` (name, configuration) concurrently, so that their joins
    /// share blocks, then runs them; returns their addresses in `nodes` order. The GPU models
    /// they declare are registered first when missing, in `nodes` order (see
    /// [`register_declared_gpu_models`]).
    pub async fn start_nodes(
        &mut self,
        nodes: Vec<(String, NodeConfig)>,
    ) -> Result<Vec<Address>, Error> {
        register_declared_gpu_models(nodes.iter().map(|(name, config)| (name.as_str(), config)))
            .await?;
        let mut starting = JoinSet::new();
        for (index, (name, config)) in nodes.into_iter().enumerate() {
            starting.spawn(async move {
                let started = Node::start(config).await;
                (index, name, started)
            });
        }
        let mut started: Vec<Option<(String, Node)>> = Vec::new();
        started.resize_with(starting.len(), || None);
        while let Some(joined) = starting.join_next().await {
            let (index, name, node) = joined?;
            let node = node.map_err(|source| Error::Node {
                name: name.clone(),
                source: Box::new(source),
            })?;
            started[index] = Some((name, node));
        }
        Ok(started
            .into_iter()
            .flatten()
            .map(|(name, node)| self.run_node(name, node))
            .collect())
    }

    /// Runs an already started node until the services stop; returns its address.
    pub fn run_node(&mut self, name: String, node: Node) -> Address {
        let address = node.address();
        let stop = self.stopped();
        self.spawn(name, async move {
            node.run(stop).await.map_err(ServiceError::from)
        });
        address
    }

    /// Runs a drawer until the services stop: every `interval`, when `drawDue()` says a queued task
    /// waits for a draw that no call of this block has run yet, sends `drawTasks()` from
    /// `signer`. `createTask` only queues a task and the draw that starts it runs in a later
    /// block's first call, so on an automining chain with nothing else to send this is what
    /// starts tasks. Use an account nothing else sends from at the same time (nonces). Errors are
    /// logged and retried; the drawer never stops on its own.
    pub fn start_drawer(
        &mut self,
        rpc_url: &Url,
        verinfer: Address,
        signer: PrivateKeySigner,
        interval: Duration,
    ) {
        let provider = ProviderBuilder::new()
            .wallet(signer)
            .connect_reqwest(verinfer_wire::tls::default_http_client(), rpc_url.clone());
        let stop = self.stopped();
        self.spawn("drawer".to_owned(), async move {
            let verinfer = Verinfer::new(verinfer, provider);
            let draws = async {
                loop {
                    tokio::time::sleep(interval).await;
                    if let Err(error) = draw_if_due(&verinfer).await {
                        tracing::warn!("drawer: {error}");
                    }
                }
            };
            tokio::select! {
                () = draws => {}
                () = stop => {}
            }
            Ok(())
        });
    }

    /// Runs another service as `name` (a gateway, say) until the services stop: `service` gets
    /// the future that resolves then and returns the service's future; an error it ends with is
    /// logged and reported by [`Self::stop`].
    pub fn run_service<Fut, E>(
        &mut self,
        name: &str,
        service: impl FnOnce(std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) -> Fut,
    ) where
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: std::fmt::Display,
    {
        let running = service(Box::pin(self.stopped()));
        self.spawn(name.to_owned(), async move {
            running
                .await
                .map_err(|error| ServiceError::Failed(error.to_string()))
        });
    }

    /// Tells every service to stop and waits up to `grace` for them; those still running then
    /// are aborted. Returns how each ended.
    pub async fn stop(mut self, grace: Duration) -> Vec<ServiceExit> {
        let _ = self.stop.send(true);
        let deadline = tokio::time::Instant::now() + grace;
        let mut exits = Vec::new();
        loop {
            match tokio::time::timeout_at(deadline, self.running.join_next_with_id()).await {
                Ok(Some(joined)) => exits.push(self.exit_of(joined, grace)),
                Ok(None) => break,
                Err(_) => {
                    self.running.abort_all();
                    while let Some(joined) = self.running.join_next_with_id().await {
                        exits.push(self.exit_of(joined, grace));
                    }
                    break;
                }
            }
        }
        exits
    }

    /// A future that resolves when the services are told to stop.
    fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut stop = self.stop.subscribe();
        async move {
            let _ = stop.wait_for(|stop| *stop).await;
        }
    }

    /// Runs `service` as `name`, logging an error it stops with when it stops.
    fn spawn(
        &mut self,
        name: String,
        service: impl Future<Output = Result<(), ServiceError>> + Send + 'static,
    ) {
        let task_name = name.clone();
        let handle = self.running.spawn(async move {
            let outcome = service.await;
            if let Err(error) = &outcome {
                tracing::warn!(service = %task_name, "stopped with an error: {error:#}");
            }
            ServiceExit {
                name: task_name,
                outcome,
            }
        });
        self.names.insert(handle.id(), name);
    }

    fn exit_of(
        &mut self,
        joined: Result<(Id, ServiceExit), JoinError>,
        grace: Duration,
    ) -> ServiceExit {
        match joined {
            Ok((id, exit)) => {
                self.names.remove(&id);
                exit
            }
            Err(error) => {
                let name = self.names.remove(&error.id()).unwrap_or_default();
                let outcome = if error.is_cancelled() {
                    Err(ServiceError::TimedOut(grace))
                } else {
                    Err(ServiceError::Panicked(error.to_string()))
                };
                ServiceExit { name, outcome }
            }
        }
    }
}
