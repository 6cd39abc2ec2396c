//! The node daemon end to end: a real anvil (1 s blocks, 30 s windows), the contracts deployed
//! through the `verinfer-abi` bindings, the relayer in-process on loopback, tiny models from
//! `verinfer-inference`, and three in-process nodes per task. The tests create tasks with plain
//! `createTask` (or `createSampledTask`) calls and send no draw themselves: the nodes' daemons send
//! `drawTasks()` when a draw is due (a sampled task's check waiting for checkers included).
//!
//! Needs the npm-installed anvil (`npm ci`).

use std::{sync::OnceLock, time::Duration};

use alloy::{
    primitives::{Address, U256, aliases::U96},
    providers::DynProvider,
    signers::local::PrivateKeySigner,
};
use url::Url;
use verinfer_abi::{
    Deployment, IERC20, IVerinfer, NodeState, TaskKind, TaskStatus, ValidationMode, Verinfer,
    VerinferInstance,
};
use verinfer_devchain::{
    AnvilOptions, Chain, Deploy, NodeEnv, Services, TinyModels, default_init_params, relayer_config,
};
use verinfer_node::{
    Behaviour, HaltPoint, IdentityOverride, Node, NodeConfig, NodeError, TestingConfig,
    state::{Role, Stage, TaskRecord},
};
use verinfer_task::{ImageArgs, Precision, Sampling, Scheduler, TaskArgs, TextArgs, TextInput};
use verinfer_wire::{RelayerClient, types::TaskResultsView};

const TOKEN: u128 = 1_000_000_000_000_000_000;
const STAKE: u128 = 1_000 * TOKEN;
const FEE: u128 = 30 * TOKEN;
const WINDOW_SECS: u32 = 30;
/// Longest a task may take from creation to uploads (commit + reveal windows and slack).
const TASK_TIMEOUT: Duration = Duration::from_secs(100);
/// The GPU identity the text nodes share (text tasks pair nodes of one declared model).
const SHARED_GPU: &str = "NVIDIA GeForce RTX 4090";

/// Node logs on the test's output (shown for failing tests; `RUST_LOG` filters, default info).
fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("verinfer_node=info")),
        )
        .with_test_writer()
        .try_init();
}

/// The tiny models, made once per test binary.
fn models() -> &'static TinyModels {
    static MODELS: OnceLock<(tempfile::TempDir, TinyModels)> = OnceLock::new();
    &MODELS
        .get_or_init(|| {
            let dir = tempfile::tempdir().expect("tempdir");
            let models = TinyModels::make(dir.path(), 11).expect("tiny models");
            (dir, models)
        })
        .1
}

fn image_args(seed: u64) -> TaskArgs {
    TaskArgs::Image(ImageArgs {
        version: verinfer_task::ARGS_VERSION,
        model: models().sd.clone(),
        prompt: "a lighthouse on a rocky coast at dusk".to_owned(),
        negative_prompt: None,
        width: 64,
        height: 64,
        steps: 2,
        guidance_scale: 7.5,
        scheduler: Scheduler::Ddim,
        num_images: 2,
        seed,
        precision: Precision::F32,
    })
}

fn text_args(sampling: Sampling) -> TaskArgs {
    TaskArgs::Text(TextArgs {
        version: verinfer_task::ARGS_VERSION,
        model: models().llama.clone(),
        input: TextInput::Prompt("Once upon a time".to_owned()),
        max_tokens: 24,
        sampling,
        seed: 5,
        stop: Vec::new(),
    })
}

/// A fresh chain with the contracts, a funded creator and six funded node accounts, and a relayer.
struct Devnet {
    chain: Chain,
    provider: DynProvider,
    deployment: Deployment,
    verinfer: VerinferInstance<DynProvider>,
    relayer: RelayerClient,
    relayer_url: Url,
    services: Services,
    creator: Address,
    dir: tempfile::TempDir,
}

impl Devnet {
    async fn start() -> Self {
        Self::start_sampling(None).await
    }

    /// [`start`](Self::start), checking sampled tasks with probability `sampling_bps` / 10,000
    /// when given (the devnet default otherwise).
    async fn start_sampling(sampling_bps: Option<u16>) -> Self {
        Self::start_with(|params| {
            if let Some(bps) = sampling_bps {
                params.samplingBps = bps;
            }
        })
        .await
    }

    /// [`start`](Self::start) with the parameters `adjust` makes of the test's.
    async fn start_with(adjust: impl FnOnce(&mut IVerinfer::Params)) -> Self {
        let anvil = AnvilOptions {
            block_time_secs: Some(1),
            ..AnvilOptions::default()
        };
        let mut params: IVerinfer::Params = default_init_params();
        params.commitWindow = WINDOW_SECS;
        params.revealWindow = WINDOW_SECS;
        adjust(&mut params);
        let chain = Chain::start(
            &anvil,
            Deploy::Bindings {
                params,
                treasury: 1,
            },
        )
        .await
        .expect("anvil (run `npm ci`) and the deployment");
        let accounts = chain.anvil().addresses();
        let creator = accounts[8];
        // Minted in parallel: one block for all.
        chain
            .fund(accounts[2..=8].iter().map(|a| (*a, U256::from(10 * STAKE))))
            .await
            .expect("mint");

        let dir = tempfile::tempdir().expect("tempdir");
        let deployment = *chain.deployment();
        let config = relayer_config(
            &chain.rpc_url(),
            &deployment,
            &dir.path().join("relayer"),
            0,
        );
        let mut services = Services::new();
        let relayer_url = services.start_relayer(&config).await.expect("relayer");
        let provider = chain.provider().clone();
        let verinfer = Verinfer::new(deployment.verinfer, provider.clone());
        Self {
            chain,
            provider,
            deployment,
            verinfer,
            relayer: RelayerClient::new(relayer_url.clone()),
            relayer_url,
            services,
            creator,
            dir,
        }
    }

    /// Stops the relayer (and anvil, when dropped).
    async fn stop(self) {
        self.services.stop(Duration::from_secs(5)).await;
    }

    fn signer(&self, account: usize) -> PrivateKeySigner {
        self.chain.key(account).expect("a dev account")
    }

    /// A node on anvil account `account` (2..=7), with its own data directory.
    fn node_config(&self, account: usize, identity: Option<&str>) -> NodeConfig {
        let env = NodeEnv {
            rpc_url: self.chain.rpc_url(),
            deployment: self.deployment,
            relayer_url: self.relayer_url.clone(),
            models_dir: models().dir.clone(),
        };
        let identity = identity.map(|gpu_model| IdentityOverride {
            gpu_model: gpu_model.to_owned(),
            vram_mib: 24_576,
        });
        NodeConfig {
            poll_interval_ms: 250,
            args_deadline_margin_secs: 5,
            tx_timeout_secs: 30,
            ..env.node_config(
                self.signer(account),
                self.dir.path().join(format!("node-{account}")),
                identity,
            )
        }
    }

    /// Uploads the args to the relayer, then creates the task on chain; returns its id.
    async fn create_task(&self, args: &TaskArgs) -> u64 {
        let bytes = args.to_canonical_bytes();
        let uploaded = self.relayer.upload_args(bytes).await.expect("upload args");
        let kind = match args {
            TaskArgs::Image(_) => TaskKind::Image,
            TaskArgs::Text(_) => TaskKind::Text,
        };
        let image_count = u8::try_from(args.image_count()).expect("few images");
        // Text tasks name the GPU model their nodes share; image tasks none.
        let gpu_model = match kind {
            TaskKind::Image => String::new(),
            TaskKind::Text => SHARED_GPU.to_owned(),
        };
        self.create_task_paying(kind, uploaded.args_hash, image_count, gpu_model, FEE)
            .await
    }

    /// Uploads the args to the relayer, then creates a sampled task (`createSampledTask`) paying
    /// `fee`; returns its id.
    async fn create_sampled_task(&self, args: &TaskArgs, fee: u128) -> u64 {
        let bytes = args.to_canonical_bytes();
        let uploaded = self.relayer.upload_args(bytes).await.expect("upload args");
        let (kind, gpu_model) = match args {
            TaskArgs::Image(_) => (TaskKind::Image, String::new()),
            TaskArgs::Text(_) => (TaskKind::Text, SHARED_GPU.to_owned()),
        };
        let image_count = u8::try_from(args.image_count()).expect("few images");
        self.create_task_in(
            ValidationMode::Sampled,
            kind,
            uploaded.args_hash,
            image_count,
            gpu_model,
            fee,
        )
        .await
    }

    /// `createTask` (approving `fee` first) with the given chain parameters; returns the id.
    async fn create_task_paying(
        &self,
        kind: TaskKind,
        args_hash: alloy::primitives::B256,
        image_count: u8,
        gpu_model: String,
        fee: u128,
    ) -> u64 {
        self.create_task_in(
            ValidationMode::Full,
            kind,
            args_hash,
            image_count,
            gpu_model,
            fee,
        )
        .await
    }

    /// `createTask` (full) or `createSampledTask` (approving `fee` first); returns the id.
    async fn create_task_in(
        &self,
        mode: ValidationMode,
        kind: TaskKind,
        args_hash: alloy::primitives::B256,
        image_count: u8,
        gpu_model: String,
        fee: u128,
    ) -> u64 {
        let token = IERC20::new(self.deployment.staking_token, self.provider.clone());
        let approve = token
            .approve(self.deployment.verinfer, U256::from(fee))
            .from(self.creator);
        assert!(
            approve
                .send()
                .await
                .expect("approve")
                .get_receipt()
                .await
                .expect("receipt")
                .status()
        );
        match mode {
            ValidationMode::Full => {
                send_create(
                    self.verinfer
                        .createTask(
                            kind.into(),
                            args_hash,
                            image_count,
                            4_096,
                            gpu_model,
                            U96::from(fee),
                        )
                        .from(self.creator),
                )
                .await
            }
            ValidationMode::Sampled => {
                send_create(
                    self.verinfer
                        .createSampledTask(
                            kind.into(),
                            args_hash,
                            image_count,
                            4_096,
                            gpu_model,
                            U96::from(fee),
                        )
                        .from(self.creator),
                )
                .await
            }
        }
        let task_id = self.verinfer.taskCount().call().await.expect("taskCount");
        u64::try_from(task_id).expect("small id")
    }

    async fn task(&self, task_id: u64) -> IVerinfer::TaskInfo {
        self.verinfer
            .getTask(U256::from(task_id))
            .call()
            .await
            .expect("getTask")
    }

    /// Waits until `done` holds for the task, failing after [`TASK_TIMEOUT`].
    async fn wait_task(
        &self,
        task_id: u64,
        what: &str,
        done: impl Fn(&IVerinfer::TaskInfo) -> bool,
    ) -> IVerinfer::TaskInfo {
        let deadline = tokio::time::Instant::now() + TASK_TIMEOUT;
        loop {
            let task = self.task(task_id).await;
            if done(&task) {
                return task;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "task {task_id}: timed out waiting for {what}: {task:?}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Waits until the relayer holds `count` verified uploads of the task.
    /// Waits for `task_id` to settle and asserts it was validated.
    async fn wait_validated(&self, task_id: u64) -> IVerinfer::TaskInfo {
        let task = self.wait_task(task_id, "settlement", settled).await;
        assert_eq!(
            TaskStatus::try_from(task.status).unwrap(),
            TaskStatus::Validated,
            "{task:?}"
        );
        task
    }

    async fn wait_uploads(&self, task_id: u64, count: usize) -> TaskResultsView {
        let deadline = tokio::time::Instant::now() + TASK_TIMEOUT;
        loop {
            if let Ok(results) = self.relayer.results(task_id, true).await
                && results.results.len() >= count
            {
                return results;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "task {task_id}: timed out waiting for {count} uploads"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn stake(&self, node: Address) -> u128 {
        self.verinfer
            .getNode(node)
            .call()
            .await
            .expect("getNode")
            .stake
            .to::<u128>()
    }

    /// Tokens credited to `account` (`claimable`).
    async fn claimable(&self, account: Address) -> u128 {
        self.verinfer
            .claimable(account)
            .call()
            .await
            .expect("claimable")
            .to::<u128>()
    }

    async fn node_state(&self, node: Address) -> NodeState {
        NodeState::try_from(
            self.verinfer
                .getNode(node)
                .call()
                .await
                .expect("getNode")
                .state,
        )
        .expect("known state")
    }
}

/// Sends a task creation with a padded gas limit and checks it did not revert.
async fn send_create<D: alloy::contract::CallDecoder>(
    create: alloy::contract::CallBuilder<&DynProvider, D>,
) {
    let gas =
        verinfer_abi::padded_gas_limit(create.estimate_gas().await.expect("estimate the create"));
    let receipt = create
        .gas(gas)
        .send()
        .await
        .expect("create")
        .get_receipt()
        .await
        .expect("receipt");
    assert!(receipt.status(), "the create reverted");
}

/// Nodes running in this process, stopped together.
struct Nodes {
    services: Services,
}

impl Nodes {
    fn new() -> Self {
        Self {
            services: Services::new(),
        }
    }

    /// Starts (joins, if needed) and runs a node; returns its address.
    async fn spawn(&mut self, config: NodeConfig) -> Address {
        let name = node_name(&config);
        self.services
            .start_node(&name, config)
            .await
            .expect("node starts")
    }

    /// Starts several nodes concurrently (their joins share blocks).
    async fn spawn_all(&mut self, configs: Vec<NodeConfig>) -> Vec<Address> {
        let named = configs
            .into_iter()
            .map(|config| (node_name(&config), config))
            .collect();
        self.services.start_nodes(named).await.expect("node starts")
    }

    /// Stops every node; each must exit cleanly.
    async fn stop(self) {
        for exit in self.services.stop(Duration::from_secs(30)).await {
            assert!(
                exit.outcome.is_ok(),
                "node {} did not stop cleanly: {:?}",
                exit.name,
                exit.outcome
            );
        }
    }
}

/// A node's name: its data directory's (`node-<account>`).
fn node_name(config: &NodeConfig) -> String {
    config
        .data_dir
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The persisted record of `task_id` in a node's state directory.
async fn record(config: &NodeConfig, task_id: u64) -> TaskRecord {
    let status = verinfer_node::status(config).await.expect("status");
    status
        .records
        .into_iter()
        .find(|record| record.task_id == task_id)
        .expect("a record of the task")
}

/// The node's record of the task once it reaches `stage` (a node records its upload just after
/// the relayer accepted it, so the relayer can show an upload a moment before the record does).
async fn record_at(config: &NodeConfig, task_id: u64, stage: Stage) -> TaskRecord {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let found = record(config, task_id).await;
        if found.stage == stage || tokio::time::Instant::now() >= deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn reward_per_node(payees: u128) -> u128 {
    (FEE - FEE * 500 / 10_000) / payees
}

fn slot_bit(task: &IVerinfer::TaskInfo, node: Address) -> u8 {
    1 << task
        .nodes
        .iter()
        .position(|n| *n == node)
        .expect("node is selected")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn image_task_runs_to_validated_and_every_node_uploads() {
    init_logs();
    let net = Devnet::start().await;
    let configs: Vec<NodeConfig> = (2..=4)
        .map(|account| net.node_config(account, None))
        .collect();
    let mut nodes = Nodes::new();
    let addresses = nodes.spawn_all(configs.clone()).await;
    for &node in &addresses {
        assert_eq!(
            net.node_state(node).await,
            NodeState::Available,
            "joined at start-up"
        );
        assert_eq!(net.stake(node).await, STAKE);
    }

    let task_id = net.create_task(&image_args(42)).await;
    let task = net.wait_validated(task_id).await;
    assert_eq!(task.revealedMask, 0b111);

    let results = net.wait_uploads(task_id, 3).await;
    assert!(results.pending_nodes.is_empty());
    let phashes: Vec<_> = results
        .results
        .iter()
        .map(|r| r.revealed_phashes.clone().expect("image result"))
        .collect();
    assert_eq!(phashes[0].len(), 2, "one pHash per image");
    for (&node, config) in addresses.iter().zip(&configs) {
        assert_eq!(
            net.stake(node).await,
            STAKE + reward_per_node(3),
            "node {node} was paid"
        );
        let record = record_at(config, task_id, Stage::Uploaded).await;
        assert_eq!(record.stage, Stage::Uploaded, "{record:?}");
        assert!(record.commit_tx.is_some() && record.reveal_tx.is_some());
    }
    nodes.stop().await;
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn text_task_on_one_shared_gpu_model_runs_to_validated() {
    init_logs();
    let net = Devnet::start().await;
    let configs: Vec<NodeConfig> = (2..=4)
        .map(|account| net.node_config(account, Some(SHARED_GPU)))
        .collect();
    let mut nodes = Nodes::new();
    let addresses = nodes.spawn_all(configs.clone()).await;

    let task_id = net.create_task(&text_args(Sampling::Greedy {})).await;
    net.wait_validated(task_id).await;

    let results = net.wait_uploads(task_id, 3).await;
    let digests: Vec<_> = results
        .results
        .iter()
        .map(|r| r.revealed_digest.expect("text result"))
        .collect();
    assert!(
        digests.iter().all(|d| *d == digests[0]),
        "identical text digests: {digests:?}"
    );
    let output = results.results[0]
        .output
        .clone()
        .expect("inline text output");
    assert_eq!(verinfer_task::text_digest(&output), digests[0]);
    assert!(!output.token_ids.is_empty());
    for &node in &addresses {
        assert_eq!(net.stake(node).await, STAKE + reward_per_node(3));
    }
    nodes.stop().await;
    net.stop().await;
}

/// An image task (seed `seed`) on nodes of accounts 2..=4, where account 2's node stops right
/// after committing (its run has returned) and the other two keep running in `nodes`.
struct HaltedAfterCommit {
    config: NodeConfig,
    address: Address,
    task_id: u64,
    nodes: Nodes,
}

async fn halted_after_commit(net: &Devnet, seed: u64) -> HaltedAfterCommit {
    let mut config = net.node_config(2, None);
    config.testing = TestingConfig {
        halt_after: Some(HaltPoint::Committed),
        ..TestingConfig::default()
    };
    let honest: Vec<NodeConfig> = (3..=4)
        .map(|account| net.node_config(account, None))
        .collect();
    // The halting node runs on its own so that the test sees its run return (its GPU model
    // registered first, as `Services` does for the others).
    verinfer_devchain::register_declared_gpu_models([("node-2", &config)])
        .await
        .expect("GPU model registered");
    let halting = Node::start(config.clone()).await.expect("node starts");
    let address = halting.address();
    let halted = tokio::spawn(halting.run(std::future::pending()));
    let mut nodes = Nodes::new();
    nodes.spawn_all(honest).await;

    let task_id = net.create_task(&image_args(seed)).await;
    tokio::time::timeout(TASK_TIMEOUT, halted)
        .await
        .expect("the halting node returns after committing")
        .expect("no panic")
        .expect("halting is a clean return");
    HaltedAfterCommit {
        config,
        address,
        task_id,
        nodes,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_stopped_right_after_committing_resumes_reveals_and_is_paid() {
    init_logs();
    let net = Devnet::start().await;
    let HaltedAfterCommit {
        config: mut crashing,
        address: crashing_address,
        task_id,
        mut nodes,
    } = halted_after_commit(&net, 7).await;
    let halted = record(&crashing, task_id).await;
    assert_eq!(halted.stage, Stage::Committed, "{halted:?}");
    assert!(
        halted.salt.is_some() && halted.result.is_some(),
        "the salt and result survive the stop"
    );

    // The others reveal; the task waits for the stopped node.
    let task = net
        .wait_task(task_id, "the two others to reveal", |t| {
            t.revealedMask.count_ones() == 2
        })
        .await;
    let crashed_bit = slot_bit(&task, crashing_address);
    assert_eq!(task.committedMask, 0b111);
    assert_eq!(task.revealedMask & crashed_bit, 0);
    assert_eq!(
        TaskStatus::try_from(task.status).unwrap(),
        TaskStatus::Revealing
    );

    // Restarted without the halt: it reveals in time from its persisted state.
    crashing.testing = TestingConfig::default();
    let resumed = nodes.spawn(crashing.clone()).await;
    assert_eq!(resumed, crashing_address);
    let task = net.wait_validated(task_id).await;
    assert_eq!(task.revealedMask, 0b111);
    net.wait_uploads(task_id, 3).await;
    assert_eq!(
        net.stake(crashing_address).await,
        STAKE + reward_per_node(3),
        "the restarted node was paid"
    );
    assert_eq!(
        net.node_state(crashing_address).await,
        NodeState::Available,
        "not slashed, not kicked"
    );
    let resumed_record = record_at(&crashing, task_id, Stage::Uploaded).await;
    assert_eq!(resumed_record.stage, Stage::Uploaded);
    assert_eq!(
        resumed_record.commit_tx, halted.commit_tx,
        "the commitment was not sent twice"
    );
    nodes.stop().await;
    net.stop().await;
}

/// `verinfer node leave` while the node is in a task: it is marked Leaving, finishes the task
/// (here after a restart), is paid, leaves at settlement with its stake and reward credited (not
/// sent), its daemon exits by itself saying so, and `verinfer node withdraw` sends the credit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_leaving_mid_task_finishes_it_exits_and_withdraws_stake_and_reward() {
    init_logs();
    let net = Devnet::start().await;
    let HaltedAfterCommit {
        config: mut leaving,
        address,
        task_id,
        nodes,
    } = halted_after_commit(&net, 11).await;
    let token = IERC20::new(net.deployment.staking_token, net.provider.clone());
    let balance = || async { token.balanceOf(address).call().await.expect("balanceOf") };
    let balance_in_task = balance().await;

    match verinfer_node::leave(&leaving).await.expect("leave") {
        verinfer_node::LeaveOutcome::LeavingAfterTask {
            node,
            task_id: busy_with,
            ..
        } => {
            assert_eq!((node, busy_with), (address, task_id));
        }
        other => panic!("a node in a task leaves after it: {other:?}"),
    }
    assert_eq!(net.node_state(address).await, NodeState::Leaving);
    // Refused up front while leaving: a second leave.
    match verinfer_node::leave(&leaving).await {
        Err(NodeError::NotLeavable { state, .. }) => assert_eq!(state, NodeState::Leaving),
        other => panic!("a second leave is refused: {other:?}"),
    }

    // The restarted daemon finishes the task it committed to, then exits by itself.
    leaving.testing = TestingConfig::default();
    let restarted = Node::start(leaving.clone()).await.expect("node starts");
    let daemon = tokio::spawn(restarted.run_to_exit(std::future::pending()));
    net.wait_validated(task_id).await;
    let exit = tokio::time::timeout(TASK_TIMEOUT, daemon)
        .await
        .expect("the daemon of a node that left exits by itself")
        .expect("no panic")
        .expect("a clean exit");
    let returned = STAKE + reward_per_node(3);
    assert!(
        matches!(exit, verinfer_node::NodeExit::Left { claimable } if claimable.units == returned),
        "{exit:?}"
    );
    assert!(
        exit.to_string().contains("verinfer node withdraw"),
        "{exit}"
    );
    assert_eq!(
        record(&leaving, task_id).await.stage,
        Stage::Uploaded,
        "it uploaded before exiting"
    );
    assert_eq!(
        net.node_state(address).await,
        NodeState::None,
        "left at settlement"
    );
    assert_eq!(net.stake(address).await, 0);
    assert_eq!(
        balance().await,
        balance_in_task,
        "settlement credits the stake, it sends nothing"
    );
    assert_eq!(net.claimable(address).await, returned, "stake and reward");
    let status = verinfer_node::status(&leaving).await.expect("status");
    assert_eq!(status.claimable, returned);
    assert!(
        status.to_string().contains("verinfer node withdraw"),
        "{status}"
    );

    let withdrawn = verinfer_node::withdraw(&leaving).await.expect("withdraw");
    assert_eq!((withdrawn.node, withdrawn.amount), (address, returned));
    assert_eq!(balance().await, balance_in_task + U256::from(returned));
    assert_eq!(net.claimable(address).await, 0);
    match verinfer_node::withdraw(&leaving).await {
        Err(NodeError::NothingToWithdraw(node)) => assert_eq!(node, address),
        other => panic!("nothing left to withdraw: {other:?}"),
    }
    match verinfer_node::add_stake(&leaving, TOKEN).await {
        Err(NodeError::NotRegistered(node)) => assert_eq!(node, address),
        other => panic!("a node that left cannot add stake: {other:?}"),
    }
    nodes.stop().await;
    net.stop().await;
}

/// `[testing] numerics_skew` stands for other hardware: same args, another text digest; without
/// it the engine is deterministic.
#[test]
fn numerics_skew_changes_the_text_digest() {
    use verinfer_node::InferenceEngine as _;
    let engine = verinfer_node::CandleEngine::new();
    let job = |numerics_skew| verinfer_node::InferenceJob {
        task_id: 1,
        // Sampled: a perturbed distribution changes the draws at once (greedy decoding of the
        // tiny model keeps its argmax for the first ~30 tokens).
        args: text_args(Sampling::Sample {
            temperature: 1.0,
            top_p: None,
            top_k: None,
        }),
        model_dir: models().dir.join("tiny-llama"),
        device: verinfer_node::Device::Cpu,
        numerics_skew,
    };
    let digest = |output| match output {
        verinfer_node::InferenceOutput::Text(output) => verinfer_task::text_digest(&output),
        other => panic!("text args gave {other:?}"),
    };
    let reference = digest(engine.run(&job(false)).expect("f32 run"));
    assert_eq!(
        digest(engine.run(&job(false)).expect("f32 run")),
        reference,
        "deterministic"
    );
    let skewed = digest(engine.run(&job(true)).expect("skewed run"));
    assert_ne!(
        skewed, reference,
        "the skewed numeric path must change the digest"
    );
}

/// Configs for accounts 2, 3, 4 with `behaviour` on account 4; returns them and the odd one out.
fn with_one_misbehaving(net: &Devnet, behaviour: Behaviour) -> (Vec<NodeConfig>, Address) {
    let mut configs: Vec<NodeConfig> = (2..=4)
        .map(|account| net.node_config(account, None))
        .collect();
    configs[2].testing = TestingConfig {
        behaviour,
        ..TestingConfig::default()
    };
    (configs, net.signer(4).address())
}

/// Runs one image task with the given nodes to settlement; returns it.
async fn run_image_task(
    net: &Devnet,
    configs: Vec<NodeConfig>,
) -> (Nodes, u64, IVerinfer::TaskInfo) {
    let mut nodes = Nodes::new();
    nodes.spawn_all(configs).await;
    let task_id = net.create_task(&image_args(3)).await;
    let task = net.wait_task(task_id, "settlement", settled).await;
    (nodes, task_id, task)
}

/// Checks the two honest nodes (accounts 2 and 3) agreed, were paid and uploaded, and the
/// misbehaving one was slashed and kicked.
async fn assert_honest_pair_paid_and_cheat_kicked(
    net: &Devnet,
    task_id: u64,
    task: &IVerinfer::TaskInfo,
    cheat: Address,
) {
    assert_eq!(
        TaskStatus::try_from(task.status).unwrap(),
        TaskStatus::Validated,
        "{task:?}"
    );
    let honest = [net.signer(2).address(), net.signer(3).address()];
    let results = net.wait_uploads(task_id, 2).await;
    let uploaded: Vec<Address> = results.results.iter().map(|r| r.node).collect();
    for node in honest {
        assert!(uploaded.contains(&node), "{node} uploaded");
        assert_eq!(
            net.stake(node).await,
            STAKE + reward_per_node(2),
            "{node} was paid"
        );
        assert_eq!(net.node_state(node).await, NodeState::Available);
    }
    assert!(!uploaded.contains(&cheat));
    assert_eq!(
        net.node_state(cheat).await,
        NodeState::Kicked,
        "the misbehaving node is kicked"
    );
    // Half its stake slashed; the rest credited to it. Half the slash rewards the honest pair.
    let slashed = STAKE / 2;
    assert_eq!(net.claimable(cheat).await, STAKE - slashed);
    for node in honest {
        assert_eq!(
            net.claimable(node).await,
            slashed / 2 / 2,
            "{node}'s slash reward"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_counterfeit_node_disagrees_and_is_kicked() {
    init_logs();
    let net = Devnet::start().await;
    let (configs, cheat) = with_one_misbehaving(&net, Behaviour::Counterfeit);
    let (nodes, task_id, task) = run_image_task(&net, configs).await;
    assert_eq!(
        task.revealedMask, 0b111,
        "the counterfeit node revealed (its own commitment)"
    );
    assert_honest_pair_paid_and_cheat_kicked(&net, task_id, &task, cheat).await;
    nodes.stop().await;
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lazy_node_misses_its_reveal_and_the_others_settle_after_the_deadline() {
    init_logs();
    let net = Devnet::start().await;
    let (configs, lazy) = with_one_misbehaving(&net, Behaviour::Lazy);
    let lazy_config = configs[2].clone();
    let (nodes, task_id, task) = run_image_task(&net, configs).await;
    assert_eq!(task.committedMask, 0b111);
    assert_eq!(
        task.revealedMask & slot_bit(&task, lazy),
        0,
        "the lazy node never revealed"
    );
    assert_honest_pair_paid_and_cheat_kicked(&net, task_id, &task, lazy).await;
    let lazy_record = record(&lazy_config, task_id).await;
    assert!(lazy_record.skip_reveal.is_some(), "{lazy_record:?}");
    nodes.stop().await;
    net.stop().await;
}

/// A lazy node (commits, never reveals) is slashed `MissedReveal` at settlement: its daemon sees
/// its own slash, counts it, and exits by itself at once, saying the task, the reason, the amount
/// in tokens and what its operator can do; `node status` and a restart say the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slashed_node_says_why_counts_it_and_its_daemon_exits_at_once() {
    init_logs();
    let net = Devnet::start().await;
    let (configs, lazy) = with_one_misbehaving(&net, Behaviour::Lazy);
    let lazy_config = configs[2].clone();
    verinfer_devchain::register_declared_gpu_models([("node-4", &lazy_config)])
        .await
        .expect("GPU model registered");
    let node = Node::start(lazy_config.clone()).await.expect("node starts");
    assert_eq!(node.address(), lazy);
    let metrics = node.metrics().clone();
    let daemon = tokio::spawn(node.run_to_exit(std::future::pending()));
    let mut nodes = Nodes::new();
    nodes.spawn_all(configs[..2].to_vec()).await;
    let task_id = net.create_task(&image_args(3)).await;
    let task = net.wait_task(task_id, "settlement", settled).await;
    assert_eq!(status_of(&task), TaskStatus::Validated);
    let exit = tokio::time::timeout(Duration::from_secs(10), daemon)
        .await
        .expect("the kicked daemon exits within a few polls of its slash")
        .expect("no panic")
        .expect("an exit, not an error");
    let slashed = STAKE / 2;
    match exit {
        verinfer_node::NodeExit::Kicked {
            slash: Some(slash),
            claimable,
        } => {
            assert_eq!(
                (slash.task_id, slash.reason, slash.amount.units),
                (task_id, verinfer_abi::SlashReason::MissedReveal, slashed)
            );
            assert_eq!(claimable.units, STAKE - slashed);
        }
        other => panic!("kicked, with its slash: {other:?}"),
    }
    let message = exit.to_string();
    for needle in [
        format!("slashed 500 tokens on task {task_id} (MissedReveal"),
        "verinfer node withdraw".to_owned(),
        "new key".to_owned(),
    ] {
        assert!(message.contains(&needle), "{needle:?} missing in {message}");
    }
    let text = metrics.render();
    for needle in [
        "verinfer_node_slashes_total{reason=\"MissedReveal\"} 1",
        "verinfer_node_kicked 1",
    ] {
        assert!(text.contains(needle), "{needle:?} missing in\n{text}");
    }
    let status = verinfer_node::status(&lazy_config)
        .await
        .expect("status")
        .to_string();
    assert!(
        status.contains(&format!(
            "slashed   500 tokens on task {task_id} (MissedReveal)"
        )),
        "{status}"
    );
    match Node::start(lazy_config).await {
        Err(error @ NodeError::Kicked { slash: Some(_), .. }) => {
            let message = error.to_string();
            assert!(
                message.contains(&format!("task {task_id} (MissedReveal")),
                "{message}"
            );
        }
        other => panic!("a kicked node cannot start, and says why: {other:?}"),
    }
    nodes.stop().await;
    net.stop().await;
}

/// A node whose data directory is lost right after it committed, restarted on an empty one:
/// it finds its commitment on chain without the salt, says so once (counted), sends no reveal
/// (none reverts), is slashed `MissedReveal` when the reveal window closes, and exits saying so.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_restarted_without_its_salt_says_so_once_and_sends_no_reveal() {
    init_logs();
    let net = Devnet::start().await;
    let HaltedAfterCommit {
        config,
        address,
        task_id,
        nodes,
    } = halted_after_commit(&net, 13).await;
    std::fs::remove_dir_all(&config.data_dir).expect("lose the data directory");
    let restarted = Node::start(plain(&config)).await.expect("node starts");
    let metrics = restarted.metrics().clone();
    let daemon = tokio::spawn(restarted.run_to_exit(std::future::pending()));
    let task = net.wait_task(task_id, "settlement", settled).await;
    assert_eq!(status_of(&task), TaskStatus::Validated);
    assert_eq!(task.revealedMask & slot_bit(&task, address), 0);
    let exit = tokio::time::timeout(Duration::from_secs(10), daemon)
        .await
        .expect("the kicked daemon exits by itself")
        .expect("no panic")
        .expect("an exit, not an error");
    assert!(
        matches!(
            exit,
            verinfer_node::NodeExit::Kicked { slash: Some(slash), .. }
                if slash.task_id == task_id
                    && slash.reason == verinfer_abi::SlashReason::MissedReveal
        ),
        "{exit:?}"
    );
    let text = metrics.render();
    assert!(
        text.contains("verinfer_node_errors_total{kind=\"salt_lost\"} 1"),
        "the lost salt is said once:\n{text}"
    );
    assert!(
        !text.contains("tx_reverted"),
        "no reveal that must revert was sent:\n{text}"
    );
    assert!(
        text.contains("verinfer_node_slashes_total{reason=\"MissedReveal\"} 1"),
        "its slash is counted:\n{text}"
    );
    let lost = record(&config, task_id).await;
    assert!(
        lost.skip_reveal.is_some() && lost.reveal_tx.is_none(),
        "{lost:?}"
    );
    assert_ne!(
        lost.closed_reason.as_deref(),
        Some("the commit window closed before this node committed")
    );
    nodes.stop().await;
    net.stop().await;
}

/// A node restarted on an empty data directory after its tasks settled scans the chain from the
/// deployment again: it adopts no settled task (no record, no "selected for a task"), and keeps
/// working.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_restarted_on_an_empty_state_does_not_adopt_settled_tasks() {
    init_logs();
    let net = Devnet::start().await;
    let configs: Vec<NodeConfig> = (2..=4)
        .map(|account| net.node_config(account, None))
        .collect();
    let mut nodes = Nodes::new();
    nodes.spawn_all(configs.clone()).await;
    let task_id = net.create_task(&image_args(5)).await;
    net.wait_validated(task_id).await;
    net.wait_uploads(task_id, 3).await;
    nodes.stop().await;

    let config = configs[0].clone();
    assert!(
        !verinfer_node::status(&config)
            .await
            .expect("status")
            .records
            .is_empty()
    );
    std::fs::remove_dir_all(&config.data_dir).expect("lose the data directory");
    let mut solos = start_solos(vec![config.clone()]).await;
    // Long enough for several polls of the whole chain.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let status = verinfer_node::status(&config).await.expect("status");
    assert!(status.cursor.is_some(), "the scan ran: {status}");
    assert!(
        status.records.is_empty(),
        "a settled task is not adopted: {status}"
    );
    solos.remove(0).stop().await;
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_copycat_reveal_is_rejected_by_the_contract() {
    init_logs();
    let net = Devnet::start().await;
    let (configs, copycat) = with_one_misbehaving(&net, Behaviour::Copycat);
    let copycat_config = configs[2].clone();
    let (nodes, task_id, task) = run_image_task(&net, configs).await;
    assert_eq!(
        task.committedMask, 0b111,
        "the copied commitment was accepted"
    );
    assert_eq!(
        task.revealedMask & slot_bit(&task, copycat),
        0,
        "the copied reveal was not"
    );
    assert_honest_pair_paid_and_cheat_kicked(&net, task_id, &task, copycat).await;
    let copycat_record = record(&copycat_config, task_id).await;
    let rejection = copycat_record.skip_reveal.clone().unwrap_or_default();
    assert!(
        rejection.contains("CommitmentMismatch"),
        "{copycat_record:?}"
    );
    assert!(
        copycat_record
            .copied_from
            .is_some_and(|victim| victim != copycat)
    );
    nodes.stop().await;
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn args_naming_a_model_no_node_holds_are_reported_invalid_and_refunded() {
    init_logs();
    let net = Devnet::start().await;
    let configs: Vec<NodeConfig> = (2..=4)
        .map(|account| net.node_config(account, None))
        .collect();
    let mut nodes = Nodes::new();
    let addresses = nodes.spawn_all(configs.clone()).await;
    let mut args = image_args(1);
    if let TaskArgs::Image(image) = &mut args {
        image.model.digest = format!("sha256:{}", "ab".repeat(32));
    }
    let token = IERC20::new(net.deployment.staking_token, net.provider.clone());
    let balance_before = token.balanceOf(net.creator).call().await.unwrap();
    let task_id = net.create_task(&args).await;
    let task = net.wait_task(task_id, "settlement", settled).await;
    assert_eq!(
        TaskStatus::try_from(task.status).unwrap(),
        TaskStatus::Errored,
        "{task:?}"
    );
    assert_eq!(task.invalidMask, 0b111);
    assert_eq!(
        token.balanceOf(net.creator).call().await.unwrap(),
        balance_before - U256::from(FEE),
        "the refund is credited, not sent"
    );
    assert_eq!(net.claimable(net.creator).await, FEE, "the fee is refunded");
    for (&node, config) in addresses.iter().zip(&configs) {
        assert_eq!(
            net.stake(node).await,
            STAKE,
            "nobody is slashed for invalid args"
        );
        assert_eq!(net.node_state(node).await, NodeState::Available);
        let record = record_at(config, task_id, Stage::Closed).await;
        assert_eq!(record.stage, Stage::Closed, "{record:?}");
        assert!(record.result.as_ref().is_some_and(|r| r.is_invalid_args()));
    }
    nodes.stop().await;
    net.stop().await;
}

/// A node declaring a GPU model the owner has not registered, or has closed to new nodes,
/// refuses to join with an error naming the model and the owner's command, before sending
/// anything; a bad fee tier is refused before connecting. With a registered model it joins at
/// its configured fee tier, and a restart with another tier sets it on chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unregistered_or_inactive_gpu_models_cannot_join_and_the_fee_tier_follows_the_config() {
    init_logs();
    let net = Devnet::start().await;
    let node = net.signer(2).address();
    let nonce = || async {
        alloy::providers::Provider::get_transaction_count(&net.provider, node)
            .await
            .expect("nonce")
    };
    let before = nonce().await;

    // `Node::start` directly: `Services` would register the declared model first.
    let unregistered = net.node_config(2, Some("Unlisted GPU 9000"));
    let error = Node::start(unregistered).await.expect_err("not registered");
    match &error {
        NodeError::GpuModelNotRegistered { name } => assert_eq!(name, "Unlisted GPU 9000"),
        other => panic!("{other:?}"),
    }
    let message = error.to_string();
    assert!(
        message.contains("verinfer admin gpu-model add --name \"Unlisted GPU 9000\" --vram-mib"),
        "{message}"
    );

    let closed = "closed-gpu";
    let ids = net
        .chain
        .add_gpu_models([(closed, 24_576)])
        .await
        .expect("register");
    let set = net
        .verinfer
        .setGpuModelActive(ids[0], false)
        .send()
        .await
        .expect("setGpuModelActive")
        .get_receipt()
        .await
        .expect("receipt");
    assert!(set.status());
    let error = Node::start(net.node_config(2, Some(closed)))
        .await
        .expect_err("inactive");
    assert!(
        matches!(&error, NodeError::GpuModelInactive { name } if name == closed),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("verinfer admin gpu-model set-active --name \"closed-gpu\" --active true"),
        "{error}"
    );
    assert_eq!(nonce().await, before, "nothing was sent");

    let mut config = net.node_config(2, Some(SHARED_GPU));
    config.fee_tier = 8;
    assert!(
        matches!(Node::start(config.clone()).await, Err(NodeError::Config(_))),
        "fee tier 8 is refused"
    );

    // Registered: joins at tier 3; restarted at tier 0, it sets the tier on chain.
    net.chain
        .add_gpu_models([(SHARED_GPU, 24_576)])
        .await
        .expect("register");
    config.fee_tier = 3;
    let started = Node::start(config.clone()).await.expect("joins");
    assert_eq!(started.summary().fee_tier, 3);
    assert_eq!(started.summary().gpu_model.vram_mib, 24_576);
    assert!(started.summary().fee_tier_tx.is_none());
    let info = net.verinfer.getNode(node).call().await.expect("getNode");
    assert_eq!((info.feeTier, info.vramMiB), (3, 24_576));
    drop(started);

    config.fee_tier = 0;
    let restarted = Node::start(config.clone()).await.expect("restarts");
    assert!(restarted.summary().fee_tier_tx.is_some(), "setFeeTier sent");
    assert!(
        restarted.summary().to_string().contains("fee tier 0"),
        "{}",
        restarted.summary()
    );
    assert_eq!(net.verinfer.getNode(node).call().await.unwrap().feeTier, 0);
    let status = verinfer_node::status(&config).await.expect("status");
    let shown = status.to_string();
    assert!(
        shown.contains("gpu model nvidia geforce rtx 4090 (24576 MiB)")
            && shown.contains("fee tier  0"),
        "{shown}"
    );
    drop(restarted);
    net.stop().await;
}

/// Nodes of fee tier 1 are never drawn for a task paying less than twice the network minimum:
/// it waits in its queue (nobody is slashed for it) while a task paying twice the minimum is
/// drawn onto them and validated; the creator then cancels the cheap one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tasks_below_the_nodes_fee_tier_wait_while_those_paying_it_run() {
    init_logs();
    let net = Devnet::start().await;
    let configs: Vec<NodeConfig> = (2..=4)
        .map(|account| NodeConfig {
            fee_tier: 1,
            ..net.node_config(account, None)
        })
        .collect();
    let mut nodes = Nodes::new();
    let addresses = nodes.spawn_all(configs).await;
    for &node in &addresses {
        assert_eq!(net.verinfer.getNode(node).call().await.unwrap().feeTier, 1);
    }
    let minimum = net
        .verinfer
        .minTaskFee(TaskKind::Image.into(), 2)
        .call()
        .await
        .expect("minTaskFee")
        .to::<u128>();

    let relayer = &net.relayer;
    let upload = |seed| async move {
        let bytes = image_args(seed).to_canonical_bytes();
        relayer
            .upload_args(bytes)
            .await
            .expect("upload args")
            .args_hash
    };
    let cheap_hash = upload(21).await;
    let cheap = net
        .create_task_paying(TaskKind::Image, cheap_hash, 2, String::new(), minimum)
        .await;
    // The nodes' draws (and the next task's creation) pass it over.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let task = net.task(cheap).await;
    assert_eq!(
        TaskStatus::try_from(task.status).unwrap(),
        TaskStatus::Queued,
        "{task:?}"
    );
    assert_eq!(task.feeLevel, 0);

    let paying_hash = upload(22).await;
    let paying = net
        .create_task_paying(TaskKind::Image, paying_hash, 2, String::new(), 2 * minimum)
        .await;
    let task = net.wait_validated(paying).await;
    assert_eq!(task.feeLevel, 1);
    let task = net.task(cheap).await;
    assert_eq!(
        TaskStatus::try_from(task.status).unwrap(),
        TaskStatus::Queued,
        "still never drawn: {task:?}"
    );
    for &node in &addresses {
        assert_eq!(net.node_state(node).await, NodeState::Available);
    }
    let cancel = net
        .verinfer
        .cancelTask(U256::from(cheap))
        .from(net.creator)
        .send()
        .await
        .expect("cancelTask")
        .get_receipt()
        .await
        .expect("receipt");
    assert!(cancel.status());
    nodes.stop().await;
    net.stop().await;
}

// ---------------------------------------------------------------------------- sampled tasks

/// A sampled task's fee under the cap of a 1 bps sampling rate: p * s * minStake / (1 - p) =
/// 1/10,000 * 50 % * 1000 tokens / 0.9999 ≈ 0.05 tokens.
const SAMPLED_FEE_AT_1_BPS: u128 = TOKEN / 25;

/// A node daemon run on its own (not in [`Nodes`]), so that the test sees it return at its
/// `halt_after` point, or stops it.
struct Solo {
    config: NodeConfig,
    address: Address,
    stop: tokio::sync::oneshot::Sender<()>,
    run: tokio::task::JoinHandle<Result<(), NodeError>>,
}

impl Solo {
    /// Stops the daemon (it must exit cleanly); returns its configuration.
    async fn stop(self) -> NodeConfig {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(30), self.run)
            .await
            .expect("the node stops")
            .expect("no panic")
            .expect("a clean stop");
        self.config
    }
}

/// A node whose daemon returned at its halt point.
struct Halted {
    config: NodeConfig,
    address: Address,
}

/// Starts one daemon per configuration, concurrently (their joins share blocks), each on its own.
async fn start_solos(configs: Vec<NodeConfig>) -> Vec<Solo> {
    let named: Vec<(String, NodeConfig)> = configs
        .into_iter()
        .map(|config| (node_name(&config), config))
        .collect();
    verinfer_devchain::register_declared_gpu_models(
        named.iter().map(|(name, config)| (name.as_str(), config)),
    )
    .await
    .expect("GPU models registered");
    let mut starting = Vec::new();
    for (_, config) in named {
        starting.push(tokio::spawn(async move {
            let node = Node::start(config.clone()).await.expect("node starts");
            let address = node.address();
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let run = tokio::spawn(node.run(async move {
                let _ = stopped.await;
            }));
            Solo {
                config,
                address,
                stop,
                run,
            }
        }));
    }
    let mut solos = Vec::new();
    for started in starting {
        solos.push(started.await.expect("no panic"));
    }
    solos
}

/// Configurations of the nodes of `accounts`, halting at `halt_after`.
fn halting_configs(net: &Devnet, accounts: &[usize], halt_after: HaltPoint) -> Vec<NodeConfig> {
    accounts
        .iter()
        .map(|&account| NodeConfig {
            testing: TestingConfig {
                halt_after: Some(halt_after),
                ..TestingConfig::default()
            },
            ..net.node_config(account, None)
        })
        .collect()
}

/// Waits until one of `solos` returns at its halt point; takes it out of `solos`.
async fn next_halted(solos: &mut Vec<Solo>) -> Halted {
    let deadline = tokio::time::Instant::now() + TASK_TIMEOUT;
    loop {
        if let Some(index) = solos.iter().position(|solo| solo.run.is_finished()) {
            let solo = solos.remove(index);
            solo.run
                .await
                .expect("no panic")
                .expect("halting is a clean return");
            return Halted {
                config: solo.config,
                address: solo.address,
            };
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for a node to halt"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `config` without test behaviours.
fn plain(config: &NodeConfig) -> NodeConfig {
    NodeConfig {
        testing: TestingConfig::default(),
        ..config.clone()
    }
}

/// Whether the task reached a final status (settled, cancelled or expired). Not a comparison
/// of status numbers: a sampled task's `AwaitingSample` and `CheckQueued` come after `Expired`.
fn settled(task: &IVerinfer::TaskInfo) -> bool {
    TaskStatus::try_from(task.status).is_ok_and(TaskStatus::is_final)
}

fn status_of(task: &IVerinfer::TaskInfo) -> TaskStatus {
    TaskStatus::try_from(task.status).expect("known status")
}

/// A sampled task the draw leaves unchecked (1 bps): one node computes, commits, and once the
/// sample block is sealed reveals alone, which settles the task and pays it the fee less the
/// protocol's; no other node works on it. The first node is stopped right after persisting
/// `AwaitingSample` and resumes from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unchecked_sampled_task_is_settled_by_its_first_node_alone_across_a_restart() {
    init_logs();
    let net = Devnet::start_sampling(Some(1)).await;
    let mut solos = start_solos(halting_configs(&net, &[2, 3, 4], HaltPoint::AwaitingSample)).await;
    let task_id = net
        .create_sampled_task(&image_args(17), SAMPLED_FEE_AT_1_BPS)
        .await;

    let first = next_halted(&mut solos).await;
    let halted = record(&first.config, task_id).await;
    assert_eq!(
        (halted.stage, halted.role),
        (Stage::AwaitingSample, Role::First),
        "{halted:?}"
    );
    assert_eq!(halted.nodes, [first.address, Address::ZERO, Address::ZERO]);
    let task = net.task(task_id).await;
    assert_eq!(status_of(&task), TaskStatus::AwaitingSample, "{task:?}");
    assert_eq!(halted.sample_block, Some(task.sampleBlock.to::<u64>()));
    assert!(halted.commit_tx.is_some() && halted.salt.is_some());

    let mut nodes = Nodes::new();
    let resumed_config = plain(&first.config);
    nodes.spawn(resumed_config.clone()).await;
    let task = net.wait_validated(task_id).await;
    assert!(!task.checked, "1 bps: unchecked");
    assert_eq!((task.committedMask, task.revealedMask), (0b001, 0b001));
    assert_eq!(task.nodes[1..], [Address::ZERO, Address::ZERO]);
    assert_eq!(
        net.stake(first.address).await,
        STAKE + SAMPLED_FEE_AT_1_BPS - SAMPLED_FEE_AT_1_BPS * 500 / 10_000,
        "the first node is paid the fee less the protocol fee"
    );
    let results = net.wait_uploads(task_id, 1).await;
    assert_eq!(results.results[0].node, first.address);
    let resumed = record_at(&resumed_config, task_id, Stage::Uploaded).await;
    assert_eq!(resumed.stage, Stage::Uploaded, "{resumed:?}");
    assert_eq!(resumed.checked, Some(false));
    assert_eq!(resumed.commit_tx, halted.commit_tx, "committed once");
    assert!(resumed.resolve_tx.is_none() && resumed.reveal_tx.is_some());

    for solo in solos {
        let config = solo.stop().await;
        let status = verinfer_node::status(&config).await.expect("status");
        assert!(
            status.records.iter().all(|r| r.task_id != task_id),
            "only the first node works on an unchecked task"
        );
    }
    nodes.stop().await;
    net.stop().await;
}

/// A sampled task the draw checks (10,000 bps), with every node stopped at a new state and
/// restarted: the first node after persisting `AwaitingSample` (it then sends `resolveSample`)
/// and after persisting `Checked`; the two checkers after committing. All three reveal, the task
/// is validated by three, everyone is paid and nothing was sent twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_checked_sampled_task_survives_restarts_of_its_first_node_and_checkers() {
    init_logs();
    let net = Devnet::start_sampling(Some(10_000)).await;
    let mut solos = start_solos(halting_configs(&net, &[2, 3, 4], HaltPoint::AwaitingSample)).await;
    let task_id = net.create_sampled_task(&image_args(19), FEE).await;

    let first = next_halted(&mut solos).await;
    let awaiting = record(&first.config, task_id).await;
    assert_eq!(
        (awaiting.stage, awaiting.role),
        (Stage::AwaitingSample, Role::First),
        "{awaiting:?}"
    );
    // The two others come back halting after their commitment: they will be the checkers.
    let mut checker_configs = Vec::new();
    for solo in solos {
        let config = solo.stop().await;
        checker_configs.push(NodeConfig {
            testing: TestingConfig {
                halt_after: Some(HaltPoint::Committed),
                ..TestingConfig::default()
            },
            ..config
        });
    }
    let mut checkers = start_solos(checker_configs).await;
    // The first node comes back, resolves the draw (checked) and halts once Checked is persisted.
    let mut firsts = start_solos(vec![NodeConfig {
        testing: TestingConfig {
            halt_after: Some(HaltPoint::Checked),
            ..TestingConfig::default()
        },
        ..first.config.clone()
    }])
    .await;
    next_halted(&mut firsts).await;
    let checked = record(&first.config, task_id).await;
    assert_eq!(checked.stage, Stage::Checked, "{checked:?}");
    assert_eq!(checked.checked, Some(true));
    assert!(checked.resolve_tx.is_some(), "this node resolved the draw");
    assert_eq!(checked.commit_tx, awaiting.commit_tx);
    let task = net.task(task_id).await;
    assert!(task.checked, "{task:?}");
    assert!(
        matches!(
            status_of(&task),
            TaskStatus::CheckQueued | TaskStatus::Committing | TaskStatus::Revealing
        ),
        "{task:?}"
    );
    assert_eq!(
        task.revealedMask, 0,
        "nobody revealed before the checkers committed"
    );

    // Both checkers are drawn (the check is served by their draw), commit and halt.
    let mut halted_checkers = Vec::new();
    for _ in 0..2 {
        let checker = next_halted(&mut checkers).await;
        let committed = record(&checker.config, task_id).await;
        assert_eq!(
            (committed.stage, committed.role),
            (Stage::Committed, Role::Checker),
            "{committed:?}"
        );
        assert_eq!(committed.nodes[0], first.address);
        halted_checkers.push((checker, committed));
    }
    let task = net.task(task_id).await;
    assert_eq!(status_of(&task), TaskStatus::Revealing, "{task:?}");
    assert_eq!((task.committedMask, task.revealedMask), (0b111, 0));
    assert_eq!(task.nodes[0], first.address);

    // Everyone restarts without halting: all three reveal in time.
    let mut configs = vec![plain(&first.config)];
    configs.extend(halted_checkers.iter().map(|(c, _)| plain(&c.config)));
    let mut nodes = Nodes::new();
    nodes.spawn_all(configs.clone()).await;
    let task = net.wait_validated(task_id).await;
    assert_eq!(task.revealedMask, 0b111);
    net.wait_uploads(task_id, 3).await;
    for address in task.nodes {
        assert_eq!(
            net.stake(address).await,
            STAKE + reward_per_node(3),
            "{address} was paid"
        );
        assert_eq!(net.node_state(address).await, NodeState::Available);
    }
    let done = record_at(&configs[0], task_id, Stage::Uploaded).await;
    assert_eq!(done.stage, Stage::Uploaded, "{done:?}");
    assert_eq!(done.nodes, task.nodes, "the checkers recorded");
    assert_eq!(
        (done.commit_tx, done.resolve_tx),
        (checked.commit_tx, checked.resolve_tx),
        "nothing sent twice"
    );
    for ((_, committed), config) in halted_checkers.iter().zip(&configs[1..]) {
        let done = record_at(config, task_id, Stage::Uploaded).await;
        assert_eq!(done.stage, Stage::Uploaded, "{done:?}");
        assert_eq!(done.commit_tx, committed.commit_tx, "committed once");
    }
    nodes.stop().await;
    net.stop().await;
}

/// A counterfeit node (images of another seed) is caught by the check in either role, at a
/// 10,000 bps sampling rate. Drawn first: three counterfeit nodes are the three available nodes
/// (a first node needs two that could check it); the first halts once `AwaitingSample` is
/// persisted, the two others leave, and the honest pair joins and checks it. Drawn as a checker:
/// three honest nodes are available, the first halts likewise, one of the two others leaves, and
/// the counterfeit node joining now checks with the remaining one. Each time the honest pair
/// agrees and is paid, the cheat is slashed and kicked, and no honest node is slashed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_counterfeit_node_is_caught_by_the_check_as_first_node_and_as_checker() {
    init_logs();
    let net = Devnet::start_sampling(Some(10_000)).await;
    let counterfeit = |account| NodeConfig {
        testing: TestingConfig {
            behaviour: Behaviour::Counterfeit,
            ..TestingConfig::default()
        },
        ..net.node_config(account, None)
    };
    let honest_configs: Vec<NodeConfig> = (2..=3)
        .map(|account| net.node_config(account, None))
        .collect();
    let honest = [net.signer(2).address(), net.signer(3).address()];
    let slash_reward = STAKE / 2 / 2 / 2;

    // Three counterfeit nodes available: the first node is a cheat; the two others leave and
    // the honest pair checks it.
    let mut cheats = start_solos(
        [4, 5, 6]
            .into_iter()
            .map(|account| NodeConfig {
                testing: TestingConfig {
                    behaviour: Behaviour::Counterfeit,
                    halt_after: Some(HaltPoint::AwaitingSample),
                    ..TestingConfig::default()
                },
                ..net.node_config(account, None)
            })
            .collect(),
    )
    .await;
    let first_task = net.create_sampled_task(&image_args(23), FEE).await;
    let halted = next_halted(&mut cheats).await;
    let cheat_first = halted.address;
    for solo in cheats {
        let config = solo.stop().await;
        verinfer_node::leave(&config).await.expect("leave");
    }
    let mut nodes = Nodes::new();
    nodes.spawn_all(honest_configs.clone()).await;
    nodes
        .spawn(NodeConfig {
            testing: TestingConfig {
                behaviour: Behaviour::Counterfeit,
                ..TestingConfig::default()
            },
            ..halted.config.clone()
        })
        .await;
    let task = net.wait_task(first_task, "settlement", settled).await;
    assert_eq!(status_of(&task), TaskStatus::Validated, "{task:?}");
    assert!(task.checked && task.revealedMask == 0b111, "{task:?}");
    assert_eq!(task.nodes[0], cheat_first, "{task:?}");
    assert_eq!(net.node_state(cheat_first).await, NodeState::Kicked);
    assert_eq!(net.claimable(cheat_first).await, STAKE - STAKE / 2);
    for (node, config) in honest.iter().zip(&honest_configs) {
        assert_eq!(net.stake(*node).await, STAKE + reward_per_node(2));
        assert_eq!(net.claimable(*node).await, slash_reward);
        let done = record_at(config, first_task, Stage::Uploaded).await;
        assert_eq!((done.stage, done.role), (Stage::Uploaded, Role::Checker));
    }
    nodes.stop().await;

    // Three honest nodes available: an honest node takes the next task; one of the two others
    // leaves, and the counterfeit node joining now checks it with the remaining one.
    let mut solos = start_solos(halting_configs(&net, &[2, 3, 7], HaltPoint::AwaitingSample)).await;
    let second_task = net.create_sampled_task(&image_args(29), FEE).await;
    let first = next_halted(&mut solos).await;
    let honest_first = first.address;
    let leaver = solos.pop().expect("three nodes").stop().await;
    let checker_config = plain(&solos.pop().expect("three nodes").stop().await);
    verinfer_node::leave(&leaver).await.expect("leave");
    let first_config = plain(&first.config);
    let cheat_account = 9;
    net.chain
        .fund([(net.signer(cheat_account).address(), U256::from(10 * STAKE))].into_iter())
        .await
        .expect("mint");
    let mut nodes = Nodes::new();
    nodes
        .spawn_all(vec![first_config.clone(), checker_config.clone()])
        .await;
    let cheat_checker = nodes.spawn(counterfeit(cheat_account)).await;
    let task = net.wait_task(second_task, "settlement", settled).await;
    assert_eq!(status_of(&task), TaskStatus::Validated, "{task:?}");
    assert_eq!(task.nodes[0], honest_first, "{task:?}");
    assert!(
        task.checked && task.nodes[1..].contains(&cheat_checker),
        "{task:?}"
    );
    assert_eq!(net.node_state(cheat_checker).await, NodeState::Kicked);
    assert_eq!(net.claimable(cheat_checker).await, STAKE - STAKE / 2);
    for (config, role) in [
        (&first_config, Role::First),
        (&checker_config, Role::Checker),
    ] {
        let node = net.signer(account_of(config)).address();
        // Paid and credited for the first task too when it checked it.
        let before = u128::from(honest.contains(&node));
        assert_eq!(
            net.stake(node).await,
            STAKE + (before + 1) * reward_per_node(2)
        );
        assert_eq!(net.claimable(node).await, (before + 1) * slash_reward);
        assert_eq!(net.node_state(node).await, NodeState::Available);
        let done = record_at(config, second_task, Stage::Uploaded).await;
        assert_eq!((done.stage, done.role), (Stage::Uploaded, role), "{done:?}");
        if role == Role::First {
            assert_eq!(done.checked, Some(true));
        }
    }
    nodes.stop().await;
    net.stop().await;
}

/// A checked sampled task whose check finds no checkers expires after the queue timeout. Its
/// first node is drawn while three nodes are available (a first node needs two that could check
/// it); it halts once `AwaitingSample` is persisted, the two others leave, and the first node
/// resumes alone: it itself sends the draws that expire the check (a node whose check waits looks
/// for due draws), is released unpaid and unslashed, and closes its record; the creator's fee is
/// credited back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_check_without_checkers_expires_and_releases_the_first_node_unpaid() {
    init_logs();
    let net = Devnet::start_with(|params| {
        params.samplingBps = 10_000;
        params.queueTimeout = 15;
    })
    .await;
    let mut solos = start_solos(halting_configs(&net, &[2, 3, 4], HaltPoint::AwaitingSample)).await;
    let task_id = net.create_sampled_task(&image_args(31), FEE).await;
    let halted = next_halted(&mut solos).await;
    let first = halted.address;
    // The two others leave (idle: deregistered at once), so the check finds no checkers.
    for solo in solos {
        let config = solo.stop().await;
        verinfer_node::leave(&config).await.expect("leave");
        assert_ne!(
            net.node_state(net.signer(account_of(&config)).address())
                .await,
            NodeState::Available
        );
    }
    let config = plain(&halted.config);
    let mut nodes = Nodes::new();
    nodes.spawn(config.clone()).await;
    let task = net.wait_task(task_id, "the check to expire", settled).await;
    assert_eq!(status_of(&task), TaskStatus::Expired, "{task:?}");
    assert!(task.checked && task.nodes[0] == first, "{task:?}");
    assert_eq!(
        net.claimable(net.creator).await,
        FEE,
        "the fee is credited back"
    );
    assert_eq!(net.stake(first).await, STAKE, "neither paid nor slashed");
    assert_eq!(net.node_state(first).await, NodeState::Available);
    let closed = record_at(&config, task_id, Stage::Closed).await;
    assert_eq!(closed.stage, Stage::Closed, "{closed:?}");
    assert_eq!(closed.checked, Some(true));
    assert!(
        closed
            .closed_reason
            .as_deref()
            .is_some_and(|reason| reason.contains("no checkers")),
        "{closed:?}"
    );
    nodes.stop().await;
    net.stop().await;
}

/// The anvil account of a node's configuration (its data directory is `node-<account>`).
fn account_of(config: &NodeConfig) -> usize {
    node_name(config)
        .trim_start_matches("node-")
        .parse()
        .expect("node-<account>")
}

/// A checked sampled text task: the checkers are drawn among the nodes of the task's GPU model,
/// and the three identical digests validate it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_checked_sampled_text_task_is_validated_by_three_nodes_of_its_model() {
    init_logs();
    let net = Devnet::start_sampling(Some(10_000)).await;
    let configs: Vec<NodeConfig> = (2..=4)
        .map(|account| net.node_config(account, Some(SHARED_GPU)))
        .collect();
    let mut nodes = Nodes::new();
    nodes.spawn_all(configs.clone()).await;
    let task_id = net
        .create_sampled_task(&text_args(Sampling::Greedy {}), FEE)
        .await;
    let task = net.wait_validated(task_id).await;
    assert!(task.checked && task.revealedMask == 0b111, "{task:?}");
    let results = net.wait_uploads(task_id, 3).await;
    let digests: Vec<_> = results
        .results
        .iter()
        .map(|r| r.revealed_digest.expect("text result"))
        .collect();
    assert!(digests.iter().all(|d| *d == digests[0]), "{digests:?}");
    let mut roles = Vec::new();
    for config in &configs {
        let done = record_at(config, task_id, Stage::Uploaded).await;
        assert_eq!(done.stage, Stage::Uploaded, "{done:?}");
        roles.push(done.role);
    }
    roles.sort_by_key(|role| role.as_str());
    assert_eq!(roles, [Role::Checker, Role::Checker, Role::First]);
    for address in task.nodes {
        assert_eq!(net.stake(address).await, STAKE + reward_per_node(3));
    }
    nodes.stop().await;
    net.stop().await;
}

/// A lazy first node (commits, never reveals) of a sampled task the draw leaves unchecked: past
/// the reveal deadline the task is settled (by the lazy node's own daemon, as for any missed
/// reveal), aborted, the node slashed and kicked, and the creator refunded with the slash reward.
/// Three nodes are available at the draw (a first node needs two that could check it), all lazy:
/// whichever is drawn first is the lazy first node; the others get no work.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lazy_first_node_of_an_unchecked_sampled_task_is_slashed_after_its_deadline() {
    init_logs();
    let net = Devnet::start_sampling(Some(1)).await;
    let configs: Vec<NodeConfig> = (2..=4)
        .map(|account| NodeConfig {
            testing: TestingConfig {
                behaviour: Behaviour::Lazy,
                ..TestingConfig::default()
            },
            ..net.node_config(account, None)
        })
        .collect();
    let mut nodes = Nodes::new();
    let addresses = nodes.spawn_all(configs.clone()).await;
    let task_id = net
        .create_sampled_task(&image_args(37), SAMPLED_FEE_AT_1_BPS)
        .await;
    let task = net.wait_task(task_id, "settlement", settled).await;
    assert_eq!(status_of(&task), TaskStatus::Aborted, "{task:?}");
    assert_eq!((task.committedMask, task.revealedMask), (0b001, 0));
    let lazy = task.nodes[0];
    let index = addresses
        .iter()
        .position(|a| *a == lazy)
        .expect("one of the nodes is first");
    let config = &configs[index];
    assert_eq!(net.node_state(lazy).await, NodeState::Kicked);
    assert_eq!(net.claimable(lazy).await, STAKE - STAKE / 2);
    assert_eq!(
        net.claimable(net.creator).await,
        SAMPLED_FEE_AT_1_BPS + STAKE / 2 / 2,
        "fee refunded and the slash reward"
    );
    let closed = record_at(config, task_id, Stage::Closed).await;
    assert_eq!(closed.stage, Stage::Closed, "{closed:?}");
    assert_eq!(closed.checked, Some(false));
    assert!(closed.skip_reveal.is_some() && closed.settle_tx.is_some());
    nodes.stop().await;
    net.stop().await;
}
