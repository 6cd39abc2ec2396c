//! `verinfer devnet`: a whole verinfer network on this machine, and a demo run through it.
//!
//! Starts anvil (the npm binary, as a child process), deploys with `script/Deploy.s.sol`, runs
//! the relayer and a fleet of nodes in this process on tiny models, creates an image task and a
//! text task (full validation: three nodes each) and a sampled text task (one node, checked by two
//! more with probability p, `--sampling-bps`), waits for their validation and prints who computed
//! what, the distances against the threshold, whether the sampled task was checked, the verdicts
//! and the payouts. `--cheater --sampled` first shows a lazy first node caught by a check. Exits
//! when done (`--keep-running` keeps the network up). Every child is stopped on exit, on error
//! and on Ctrl-C; on Linux anvil is also killed by the kernel if this process dies without
//! cleaning up.

mod fleet;
mod gateway;
mod load;
pub(crate) mod table;

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use alloy::{primitives::U256, signers::local::PrivateKeySigner};
use clap::Args;
use eyre::{WrapErr, bail, eyre};
use url::Url;
use verinfer_abi::{TaskKind, TaskStatus, TokenDecimals};
use verinfer_client::{ChainTask, Client, SampleDecision, TaskOptions, TaskReport};
use verinfer_devchain::{
    self as devchain, Anvil, AnvilOptions, Chain, Deploy, NodeEnv, ScriptParams, ServiceError,
    Services, TinyModels,
};
use verinfer_task::{
    ARGS_VERSION, ImageArgs, ModelRef, Precision, Sampling, Scheduler, TaskArgs, TextArgs,
    TextInput,
};

use self::fleet::TEXT_GPU_MODEL;

/// Base units per token of the devnet's mock staking token (its 18 decimals).
const TOKEN: u128 = devchain::TOKEN;
/// Tokens minted to each node (stake plus room) and to the task creator.
const NODE_FUNDS: u128 = 10_000 * TOKEN;
const CREATOR_FUNDS: u128 = 1_000 * TOKEN;
const IMAGE_FEE: u128 = 10 * TOKEN;
const TEXT_FEE: u128 = 5 * TOKEN;
/// Fee of the demo's sampled text task, when `sampledFeeRange` allows it.
const SAMPLED_TEXT_FEE: u128 = 2 * TOKEN;
/// The sampling rate of `--cheater --sampled` unless `--sampling-bps` says otherwise: 100 %, so
/// that the cheater's first sampled task is checked.
const LAZY_SAMPLING_BPS: u16 = 10_000;
/// At most this many sampled tasks in the cheater's round.
const LAZY_MAX_TASKS: u32 = 20;

/// Run a local verinfer network (anvil, contracts, relayer, nodes on tiny models), push an image
/// task and a text task through it, and print how they were validated.
#[derive(Debug, Args)]
pub(crate) struct DevnetArgs {
    /// anvil's port on 127.0.0.1 (0: a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// The relayer's port on 127.0.0.1 (0: a free one).
    #[arg(long, default_value_t = 0)]
    relayer_port: u16,
    /// Directory of the devnet's state: deployment record, relayer database, node state, results
    /// (cleared at start, except the models). Default: <repo>/.verinfer/devnet.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Directory of the tiny models (made when missing). Default: <data-dir>/models.
    #[arg(long)]
    models_dir: Option<PathBuf>,
    /// The verinfer repository (where node_modules/ and script/Deploy.s.sol are).
    #[arg(long, default_value_os_t = verinfer_devchain::repo_root())]
    root: PathBuf,
    /// Add a node that counterfeits its results; it shares the image task's pool and is selected
    /// for it (and slashed). With --sampled: a lazy first node on sampled tasks instead, caught
    /// when the sample draw checks one.
    #[arg(long)]
    cheater: bool,
    /// Sampled validation: the load tasks (--load-tasks) are sampled tasks (one node, checked by
    /// two more with probability p), and with --cheater the cheater is a lazy first node on
    /// sampled tasks (p defaults to 100 % then).
    #[arg(long)]
    sampled: bool,
    /// The sampling rate p of sampled tasks, in basis points (1..=10000; 1000 = 10 %), set right
    /// after the deployment (a parameter version in force at once: paramsDelay is 0 on the
    /// devnet). Default: the deploy script's 500 (5 %); 10000 with --cheater --sampled.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=10_000))]
    sampling_bps: Option<u16>,
    /// Keep the network up after the demo (until Ctrl-C) and print how to reach it.
    #[arg(long)]
    keep_running: bool,
    /// Commit window of the deployment, seconds.
    #[arg(long, default_value_t = 60)]
    commit_window: u32,
    /// Reveal window of the deployment, seconds.
    #[arg(long, default_value_t = 60)]
    reveal_window: u32,
    /// Give up when the demo tasks are not settled within this many seconds.
    #[arg(long, default_value_t = 300)]
    timeout_secs: u64,
    /// Load benchmark: after the demo, create this many one-image tasks at once and report
    /// tasks validated per minute and the relayer's verified uploads per second.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=900))]
    load_tasks: u32,
    /// More honest nodes (`devnet-gpu-c`, 8 GiB) beside the demo's five, for the load benchmark.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u16).range(0..=64))]
    extra_nodes: u16,
    /// The OpenAI-compatible gateway's port on 127.0.0.1 (0: a free one).
    #[arg(long, default_value_t = 0)]
    gateway_port: u16,
    /// Gateway benchmark: after the demo, send this many chat completions through the gateway
    /// and report the gateway's overhead beside the tasks' own time (p50/p99) and the most
    /// requests it had in flight.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=10_000))]
    gateway_requests: u32,
    /// How many of the benchmark's requests are sent at a time.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    gateway_concurrency: u32,
    /// Give up when the load tasks are not all settled within this many seconds.
    #[arg(long, default_value_t = 1800)]
    load_timeout_secs: u64,
}

pub(crate) fn run(args: DevnetArgs) -> eyre::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .wrap_err("cannot start the async runtime")?;
    let result = runtime.block_on(run_async(args));
    // Node and relayer tasks still running (after an error) are dropped with the runtime.
    runtime.shutdown_timeout(Duration::from_secs(2));
    result
}

async fn run_async(args: DevnetArgs) -> eyre::Result<()> {
    let started = Instant::now();
    let interrupted = crate::signals::stop_signal();
    tokio::pin!(interrupted);
    let devnet = tokio::select! {
        devnet = Devnet::start(&args, started) => devnet?,
        signal = &mut interrupted => bail!("{signal}: stopped while starting the devnet"),
    };
    let mut devnet = devnet;
    let outcome = tokio::select! {
        outcome = devnet.demo(&args, started) => outcome,
        signal = &mut interrupted => Err(eyre!("{signal}: stopped the devnet")),
    };
    let outcome = match outcome {
        Ok(()) if args.load_tasks > 0 => tokio::select! {
            outcome = devnet.load(&args) => outcome,
            signal = &mut interrupted => Err(eyre!("{signal}: stopped the load benchmark")),
        },
        outcome => outcome,
    };
    let outcome = match outcome {
        Ok(()) if args.gateway_requests > 0 => tokio::select! {
            outcome = gateway::bench(&devnet.gateway, args.gateway_requests, args.gateway_concurrency) => outcome,
            signal = &mut interrupted => Err(eyre!("{signal}: stopped the gateway benchmark")),
        },
        outcome => outcome,
    };
    if outcome.is_ok() && args.keep_running {
        devnet.print_connection_help();
        let signal = (&mut interrupted).await;
        println!("{signal}: stopping the devnet");
    }
    devnet.stop().await;
    outcome
}

/// A running devnet.
struct Devnet {
    chain: Chain,
    relayer_url: Url,
    deployment_path: PathBuf,
    data_dir: PathBuf,
    models: TinyModels,
    creator: PrivateKeySigner,
    /// How many nodes run (or will, with `--cheater --sampled`).
    node_count: usize,
    services: Services,
    /// The sampling rate `p` of sampled tasks created now, in basis points.
    sampling_bps: u16,
    /// With `--cheater --sampled`: the honest nodes, started once the cheater's first-node round
    /// drew a check (see [`Devnet::lazy_first_node_round`]).
    later: Vec<(fleet::NodeSpec, PrivateKeySigner)>,
    /// With `--cheater --sampled`: the cheater's address (it runs the lazy first-node round).
    lazy_cheater: Option<alloy::primitives::Address>,
    /// What a node needs to reach the network, and where nodes keep their state.
    node_env: NodeEnv,
    nodes_dir: PathBuf,
    /// The OpenAI-compatible gateway (its own account).
    gateway: gateway::DevnetGateway,
}

/// The cheater's round of `--cheater --sampled`: the sampled tasks it took as their first node.
struct LazyRound {
    /// Accepted unchecked: its counterfeit result was paid.
    unchecked: Vec<u64>,
    /// The task whose sample draw chose a check (none if the round ended without one).
    checked: Option<u64>,
    /// The cheater was caught as a checker of an honest first node (not as the first node).
    as_checker: bool,
}

/// The devnet's directories.
struct Dirs {
    /// The state, cleared at start except the models.
    data: PathBuf,
    /// The tiny models.
    models: PathBuf,
}

fn step(started: Instant, message: impl std::fmt::Display) {
    println!("[{:>5.1}s] {message}", started.elapsed().as_secs_f64());
}

/// A taken port as the user fixes it: with the flag that chooses another.
fn port_hint(flag: &'static str) -> impl FnOnce(devchain::Error) -> eyre::Report {
    move |error| match error {
        devchain::Error::PortInUse { .. } => {
            eyre!("{error}: stop it, or choose another port with {flag} (0 picks a free one)")
        }
        error => eyre::Report::new(error),
    }
}

impl Devnet {
    /// Starts anvil, deploys, starts the relayer, funds the accounts and starts the nodes,
    /// printing each step.
    async fn start(args: &DevnetArgs, started: Instant) -> eyre::Result<Self> {
        let dirs = prepare_dirs(args)?;
        let specs = fleet::fleet(args.cheater, args.extra_nodes);
        // Accounts: the owner, the creator, the nodes, the gateway.
        let anvil = start_anvil(args, &dirs, specs.len() + 3, started).await?;
        let chain = deploy(anvil, args, &dirs, started).await?;
        let deployment_path = chain
            .deployment_path()
            .ok_or_else(|| eyre!("the deploy script's record has no path"))?
            .to_path_buf();
        // Models are made (or found) while the relayer starts.
        let models_task = tokio::task::spawn_blocking({
            let models_dir = dirs.models.clone();
            move || TinyModels::make(&models_dir, 0)
        });
        let mut services = Services::new();
        let relayer_url = start_relayer(&mut services, &chain, args, &dirs, started).await?;
        let models = models_task
            .await
            .map_err(|error| eyre!("model task failed: {error}"))??;
        step(
            started,
            format_args!("tiny models ready in {}", models.dir.display()),
        );

        let keys = chain.anvil().keys();
        let (creator, node_keys) = (keys[1].clone(), &keys[2..2 + specs.len()]);
        let gateway_key = keys[2 + specs.len()].clone();
        fund(&chain, node_keys, &[&creator, &gateway_key]).await?;
        let env = NodeEnv {
            rpc_url: chain.rpc_url(),
            deployment: *chain.deployment(),
            relayer_url: relayer_url.clone(),
            models_dir: models.dir.clone(),
        };
        register_gpu_models(&chain, &specs, started).await?;
        let lazy_first = args.cheater && args.sampled;
        let rate = args
            .sampling_bps
            .or(lazy_first.then_some(LAZY_SAMPLING_BPS));
        let sampling_bps = set_sampling_rate(&chain, rate, started).await?;
        let nodes_dir = dirs.data.join("nodes");
        let node_count = specs.len();
        let (now, later): (Vec<_>, Vec<_>) = specs
            .into_iter()
            .zip(node_keys.iter().cloned())
            .partition(|(spec, _)| {
                // With --cheater --sampled, the cheater starts with the honest nodes that can
                // check its tasks: a sampled task's first node is drawn only while two more
                // nodes could check it.
                !lazy_first
                    || spec.behaviour != verinfer_node::Behaviour::Honest
                    || spec.vram_mib >= fleet::image_min_vram_mib(true)
            });
        let lazy_cheater = lazy_first
            .then(|| {
                now.iter()
                    .find(|(spec, _)| spec.behaviour != verinfer_node::Behaviour::Honest)
                    .map(|(_, key)| key.address())
            })
            .flatten();
        start_fleet(&mut services, &now, &env, &nodes_dir, started).await?;
        let gateway = gateway::start(
            &mut services,
            &chain.rpc_url(),
            &relayer_url,
            &deployment_path,
            &models,
            &dirs.data,
            args.gateway_port,
            gateway_key,
        )
        .await?;
        step(
            started,
            format_args!(
                "OpenAI-compatible gateway serving on {} (models tiny-llama, tiny-sd)",
                gateway.base_url
            ),
        );
        Ok(Self {
            chain,
            relayer_url,
            deployment_path,
            data_dir: dirs.data,
            models,
            creator,
            node_count,
            services,
            sampling_bps,
            later,
            lazy_cheater,
            node_env: env,
            nodes_dir,
            gateway,
        })
    }

    /// The task creator's client.
    fn client(&self, poll_interval: Duration) -> Client {
        Client::new(
            self.chain.rpc_url(),
            self.creator.clone(),
            *self.chain.deployment(),
            self.relayer_url.clone(),
        )
        .with_poll_interval(poll_interval)
    }

    /// Creates the demo tasks (an image task and a text task, fully validated, and a sampled text
    /// task), waits for them, fetches their results and prints the report. With `--cheater
    /// --sampled`, first runs the cheater's round as a lazy first node.
    async fn demo(&mut self, args: &DevnetArgs, started: Instant) -> eyre::Result<()> {
        let client = self.client(Duration::from_millis(200));
        let decimals = client.token_decimals().await?;
        let timeout = Duration::from_secs(args.timeout_secs);
        let lazy = if let Some(cheater) = self.lazy_cheater {
            let round = self
                .lazy_first_node_round(&client, cheater, timeout, started)
                .await?;
            // The other honest nodes once the check has started. A join that lands first in its
            // block runs the block's draw, and one that starts the check costs more gas than its
            // estimate foresaw (it would run out).
            let others = std::mem::take(&mut self.later);
            if let Some(task_id) = round.checked {
                tokio::time::timeout(timeout, check_started(&client, task_id))
                    .await
                    .map_err(|_| {
                        eyre!("the check of task {task_id} did not start within {timeout:?}")
                    })??;
            }
            step(started, "starting the other honest nodes");
            start_fleet(
                &mut self.services,
                &others,
                &self.node_env,
                &self.nodes_dir,
                started,
            )
            .await?;
            Some(round)
        } else {
            None
        };
        // The full image task needs the cheater's VRAM floor only when the cheater is to join it.
        let cheater_in_image = args.cheater && lazy.is_none();
        let image = create_image_task(&client, &self.models, cheater_in_image, started).await?;
        let text = create_text_task(&client, &self.models, started).await?;
        let sampled =
            create_sampled_text_task(&client, &self.models, self.sampling_bps, started).await?;
        let mut ids = vec![image, text, sampled];
        ids.extend(lazy.as_ref().and_then(|round| round.checked));
        let tasks = wait_settled(&client, &ids, timeout, started).await?;
        let results_dir = self.data_dir.join("results");
        let (demo_tasks, lazy_tasks) = tasks.split_at(3);
        let (reports, written) = fetch_results(&client, demo_tasks, &results_dir, started).await?;
        let mut lazy_reports = Vec::new();
        if let Some(round) = &lazy {
            for &task_id in &round.unchecked {
                lazy_reports.push(client.task_report(task_id).await?);
            }
        }
        for task in lazy_tasks {
            lazy_reports.push(client.task_report(task.task_id).await?);
        }
        print_report(lazy_reports.iter().chain(&reports), &written, decimals);
        step(started, "demo complete");
        check_validated(&reports)?;
        match &lazy {
            Some(round) => check_lazy_first_node(round, &lazy_reports, self.sampling_bps, decimals),
            None => check_cheater(args.cheater, &reports, decimals),
        }
    }

    /// `--cheater --sampled`: sampled image tasks one after another, asking for 16 GiB, so that
    /// the cheater, `b1` and `b2` are their only candidates (a first node is drawn only while two
    /// more could check it). As a first node the cheater counterfeits its result, betting that
    /// the sample draw leaves it unchecked; an unchecked one is accepted and paid. The round ends
    /// when the draw checks one of the cheater's tasks (at once at p = 100 %; `b1` and `b2` check
    /// it), or when an honest first node's check draws the cheater as a checker (caught as one:
    /// at p = 100 % whenever the cheater is not drawn first), or after [`LAZY_MAX_TASKS`].
    async fn lazy_first_node_round(
        &self,
        client: &Client,
        cheater: alloy::primitives::Address,
        timeout: Duration,
        started: Instant,
    ) -> eyre::Result<LazyRound> {
        let rate = verinfer_abi::format_bps(self.sampling_bps);
        let fee = sampled_fee(client, TaskKind::Image, 1, IMAGE_FEE).await?;
        let min_vram = fleet::image_min_vram_mib(true);
        let mut unchecked = Vec::new();
        for index in 0..LAZY_MAX_TASKS {
            let args = tiny_image_args(
                &self.models.sd,
                "a lighthouse on a cliff at dusk",
                1,
                500 + u64::from(index),
            );
            let options = TaskOptions::new()
                .with_fee(fee)
                .with_min_vram_mib(min_vram)
                .sampled();
            let task_id = client
                .create(&TaskArgs::Image(args), &options)
                .await
                .wrap_err("creating a sampled task for the cheater")?
                .task_id;
            step(
                started,
                format_args!(
                    "sampled image task {task_id} created (fee {} tokens, p = {rate})",
                    client.token_decimals().await?.format(fee)
                ),
            );
            let first = tokio::time::timeout(timeout, first_node(client, task_id))
                .await
                .map_err(|_| {
                    eyre!("sampled task {task_id} drew no first node within {timeout:?}")
                })??;
            if first != cheater {
                let task = tokio::time::timeout(timeout, client.wait(task_id, |_| {}))
                    .await
                    .map_err(|_| {
                        eyre!("sampled task {task_id} did not settle within {timeout:?}")
                    })??;
                let report = client.task_report(task_id).await?;
                if report.nodes.iter().any(|node| node.address == cheater) {
                    step(
                        started,
                        format_args!(
                            "task {task_id}: an honest first node ({first}); the cheater was drawn as a checker: {}",
                            task.status
                        ),
                    );
                    return Ok(LazyRound {
                        unchecked,
                        checked: Some(task_id),
                        as_checker: true,
                    });
                }
                step(
                    started,
                    format_args!(
                        "task {task_id}: an honest first node ({first}), not checked: {}",
                        task.status
                    ),
                );
                continue;
            }
            step(
                started,
                format_args!("task {task_id}: the cheater is its first node"),
            );
            let checked = tokio::time::timeout(timeout, sample_drawn(client, task_id))
                .await
                .map_err(|_| eyre!("the cheater's sampled task {task_id} did not reach its sample draw within {timeout:?}"))??;
            if checked {
                step(
                    started,
                    format_args!("task {task_id}: the sample draw chose a check (p = {rate})"),
                );
                // The first node's reveal now reverts; anyone may queue the check (the node
                // normally does, and then this call is refused: harmless).
                if let Err(error) = client.resolve_sample(task_id).await {
                    tracing::debug!(task_id, %error, "resolveSample not sent");
                }
                return Ok(LazyRound {
                    unchecked,
                    checked: Some(task_id),
                    as_checker: false,
                });
            }
            let task = tokio::time::timeout(timeout, client.wait(task_id, |_| {}))
                .await
                .map_err(|_| {
                    eyre!("the cheater's sampled task {task_id} did not settle within {timeout:?}")
                })??;
            step(
                started,
                format_args!(
                    "task {task_id}: not checked (p = {rate}): {}, the counterfeit result accepted",
                    task.status
                ),
            );
            unchecked.push(task_id);
        }
        step(
            started,
            format_args!("no check drawn in {LAZY_MAX_TASKS} sampled tasks at p = {rate}"),
        );
        Ok(LazyRound {
            unchecked,
            checked: None,
            as_checker: false,
        })
    }

    /// The load benchmark (`--load-tasks`): many image tasks at once, throughput measured.
    async fn load(&self, args: &DevnetArgs) -> eyre::Result<()> {
        // Tasks are created back to back: the nodes' daemons (and every later call) draw them.
        let client = self
            .client(Duration::from_millis(250))
            .with_draw_after_create(false);
        let relayer = verinfer_wire::RelayerClient::new(self.relayer_url.clone());
        println!();
        let mode = if args.sampled {
            load::LoadMode::Sampled {
                sampling_bps: self.sampling_bps,
            }
        } else {
            load::LoadMode::Full
        };
        let report = load::run(
            &client,
            &relayer,
            &self.models.sd,
            mode,
            args.load_tasks,
            self.node_count,
            // Every node can serve these (the cheater, if any, was kicked by the demo).
            fleet::image_min_vram_mib(false),
            Duration::from_secs(args.load_timeout_secs),
        )
        .await?;
        println!("{}", report.render());
        if !report.reverted.is_empty() {
            bail!(
                "{} transactions reverted during the load run (listed above): gas paid for nothing",
                report.reverted.len()
            );
        }
        if report.validated != report.tasks {
            bail!(
                "{} of {} load tasks did not validate",
                report.tasks - report.validated,
                report.tasks
            );
        }
        Ok(())
    }

    fn print_connection_help(&self) {
        let key = alloy::hex::encode_prefixed(self.creator.to_bytes());
        println!();
        println!("devnet running (Ctrl-C stops it):");
        println!("  RPC         {}", self.chain.rpc_url());
        println!("  relayer     {}", self.relayer_url);
        println!("  explorer    {}explorer", self.relayer_url);
        println!(
            "  gateway     {} (OpenAI-compatible: tiny-llama, tiny-sd)",
            self.gateway.base_url
        );
        println!("  deployment  {}", self.deployment_path.display());
        println!(
            "  models      {} ({}, {})",
            self.models.dir.display(),
            self.models.sd.digest,
            self.models.llama.digest
        );
        println!(
            "  creator     {} (anvil dev account 1; its key is public)",
            self.creator.address()
        );
        println!();
        println!(
            "  export VERINFER_KEY={key} VERINFER_RPC_URL={} VERINFER_RELAYER_URL={} VERINFER_DEPLOYMENT={}",
            self.chain.rpc_url(),
            self.relayer_url,
            self.deployment_path.display()
        );
        println!(
            "  verinfer task create --text --prompt 'Once upon a time' --model {} --max-tokens 16 --gpu-model {TEXT_GPU_MODEL} --fee 1 --wait",
            self.models.dir.join("tiny-llama").display()
        );
        println!(
            "  verinfer task create --image --prompt 'a red bicycle' --model {} --width 64 --height 64 --steps 4 --num-images 1 --fee 1 --wait",
            self.models.dir.join("tiny-sd").display()
        );
        println!("  verinfer task result <ID> --out ./result");
        println!();
        println!("  OpenAI SDKs (Python: pip install openai) through the gateway:");
        println!(
            "  export OPENAI_BASE_URL={} OPENAI_API_KEY={}",
            self.gateway.base_url, self.gateway.api_key
        );
    }

    /// Stops the nodes and the relayer, then anvil.
    async fn stop(self) {
        let Self {
            chain, services, ..
        } = self;
        let grace = Duration::from_secs(10);
        for exit in services.stop(grace).await {
            // Errors were logged when the service stopped with them.
            match exit.outcome {
                Err(ServiceError::TimedOut(_)) => {
                    tracing::warn!(service = %exit.name, "did not stop within 10 s; dropped")
                }
                Err(ServiceError::Panicked(error)) => {
                    tracing::warn!(service = %exit.name, %error, "a devnet service panicked")
                }
                _ => {}
            }
        }
        chain.stop().await;
    }
}

/// With `--cheater --sampled`: the cheater, first node of sampled tasks, must have been caught by
/// a check and slashed; what its unchecked tasks earned it is said too.
fn check_lazy_first_node(
    round: &LazyRound,
    reports: &[TaskReport],
    sampling_bps: u16,
    decimals: TokenDecimals,
) -> eyre::Result<()> {
    let rate = verinfer_abi::format_bps(sampling_bps);
    let paid: u128 = reports
        .iter()
        .filter(|report| round.unchecked.contains(&report.task.task_id))
        .flat_map(|report| &report.nodes)
        .map(|node| node.reward)
        .sum();
    if !round.unchecked.is_empty() {
        println!(
            "cheater's unchecked sampled tasks: {} accepted at p = {rate}, {} tokens paid for counterfeit results",
            round.unchecked.len(),
            decimals.format(paid)
        );
    }
    let Some(checked) = round.checked else {
        bail!(
            "--cheater --sampled: no sample draw chose a check in {LAZY_MAX_TASKS} tasks at p = {rate}; raise --sampling-bps"
        );
    };
    let slashed: u128 = reports.iter().map(TaskReport::total_slashed).sum();
    if slashed == 0 {
        bail!("--cheater --sampled: the check of task {checked} slashed nobody");
    }
    if round.as_checker {
        println!(
            "cheater caught as a checker of task {checked} (an honest first node, p = {rate}): {} tokens of its stake slashed, and it was kicked",
            decimals.format(slashed)
        );
        return Ok(());
    }
    println!(
        "lazy first node caught: task {checked} checked at p = {rate}, {} tokens of the cheater's stake slashed, and it was kicked",
        decimals.format(slashed)
    );
    Ok(())
}

/// With `--cheater`, the counterfeiting node must have been selected and slashed.
fn check_cheater(
    cheater: bool,
    reports: &[TaskReport],
    decimals: TokenDecimals,
) -> eyre::Result<()> {
    if !cheater {
        return Ok(());
    }
    let slashed: u128 = reports.iter().map(TaskReport::total_slashed).sum();
    if slashed == 0 {
        bail!("--cheater: no node was slashed, the counterfeit result went unnoticed");
    }
    println!(
        "cheater caught: {} tokens of its stake slashed, and it was kicked",
        decimals.format(slashed)
    );
    Ok(())
}

/// Image args the tiny models serve in a fraction of a second: 64×64, 4 DDIM steps, f32.
pub(crate) fn tiny_image_args(
    model: &ModelRef,
    prompt: &str,
    num_images: u32,
    seed: u64,
) -> ImageArgs {
    ImageArgs {
        version: ARGS_VERSION,
        model: model.clone(),
        prompt: prompt.to_owned(),
        negative_prompt: None,
        width: 64,
        height: 64,
        steps: 4,
        guidance_scale: 7.5,
        scheduler: Scheduler::Ddim,
        num_images,
        seed,
        precision: Precision::F32,
    }
}

/// Removes the previous run's state (anvil restarts from genesis with the same addresses, so old
/// node records would describe another chain). Models are kept.
fn clear_state(data_dir: &Path) -> eyre::Result<()> {
    std::fs::create_dir_all(data_dir)
        .wrap_err_with(|| format!("cannot create {}", data_dir.display()))?;
    for name in ["deployments", "relayer", "nodes", "results", "anvil.log"] {
        let path = data_dir.join(name);
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else if path.exists() {
            std::fs::remove_file(&path)
        } else {
            Ok(())
        };
        removed.wrap_err_with(|| format!("cannot clear {}", path.display()))?;
    }
    Ok(())
}

/// The data and models directories (defaults under the repository), the previous run's state
/// cleared, and the relayer's port checked: a taken port fails before anything starts.
fn prepare_dirs(args: &DevnetArgs) -> eyre::Result<Dirs> {
    let data = args
        .data_dir
        .clone()
        .unwrap_or_else(|| args.root.join(".verinfer/devnet"));
    let models = args
        .models_dir
        .clone()
        .unwrap_or_else(|| data.join("models"));
    clear_state(&data)?;
    if args.relayer_port != 0 {
        devchain::ensure_port_free(args.relayer_port).map_err(port_hint("--relayer-port"))?;
    }
    Ok(Dirs { data, models })
}

/// Starts anvil with `accounts` dev accounts, logging to `<data>/anvil.log`.
async fn start_anvil(
    args: &DevnetArgs,
    dirs: &Dirs,
    accounts: usize,
    started: Instant,
) -> eyre::Result<Anvil> {
    let options = AnvilOptions {
        root: args.root.clone(),
        port: args.port,
        accounts,
        log: Some(dirs.data.join("anvil.log")),
        ..AnvilOptions::devnet()
    };
    let anvil = Anvil::start(&options).await.map_err(port_hint("--port"))?;
    step(
        started,
        format_args!(
            "anvil listening on {} (pid {})",
            anvil.endpoint(),
            anvil.pid().unwrap_or_default()
        ),
    );
    Ok(anvil)
}

/// Deploys with `script/Deploy.s.sol`, the record into `<data>/deployments`.
async fn deploy(
    anvil: Anvil,
    args: &DevnetArgs,
    dirs: &Dirs,
    started: Instant,
) -> eyre::Result<Chain> {
    let deploy = Deploy::Script {
        root: args.root.clone(),
        params: ScriptParams {
            commit_window: args.commit_window,
            reveal_window: args.reveal_window,
            threshold: 10,
        },
        out_dir: dirs.data.join("deployments"),
    };
    let chain = Chain::deploy(anvil, deploy).await?;
    let deployment = chain.deployment();
    step(
        started,
        format_args!(
            "deployed with script/Deploy.s.sol: Verinfer {} staking {} (commit/reveal windows {}s/{}s) -> {}",
            deployment.verinfer,
            deployment.staking_token,
            args.commit_window,
            args.reveal_window,
            chain.deployment_path().unwrap_or(Path::new("?")).display()
        ),
    );
    Ok(chain)
}

/// Starts the relayer in this process on 127.0.0.1:`--relayer-port`; returns its URL.
async fn start_relayer(
    services: &mut Services,
    chain: &Chain,
    args: &DevnetArgs,
    dirs: &Dirs,
    started: Instant,
) -> eyre::Result<Url> {
    let config = devchain::relayer_config(
        &chain.rpc_url(),
        chain.deployment(),
        &dirs.data.join("relayer"),
        args.relayer_port,
    );
    let relayer_url = services
        .start_relayer(&config)
        .await
        .map_err(port_hint("--relayer-port"))?;
    step(started, format_args!("relayer serving on {relayer_url}"));
    Ok(relayer_url)
}

/// Mints the nodes' and the creator's tokens from the deployer (the mock token's faucet).
async fn fund(
    chain: &Chain,
    node_keys: &[PrivateKeySigner],
    creators: &[&PrivateKeySigner],
) -> eyre::Result<()> {
    let grants = node_keys
        .iter()
        .map(|key| (key.address(), U256::from(NODE_FUNDS)))
        .chain(
            creators
                .iter()
                .map(|key| (key.address(), U256::from(CREATOR_FUNDS))),
        );
    chain.fund(grants).await?;
    Ok(())
}

/// Registers (as the contract's owner, dev account 0) the GPU models the fleet declares that the
/// deploy script did not: nodes can join only with registered models.
async fn register_gpu_models(
    chain: &Chain,
    specs: &[fleet::NodeSpec],
    started: Instant,
) -> eyre::Result<()> {
    let models = fleet::gpu_models(specs);
    chain.add_gpu_models(models.iter().copied()).await?;
    let listed: Vec<String> = models
        .iter()
        .map(|(name, vram_mib)| format!("{name} ({} GiB)", vram_mib / 1024))
        .collect();
    step(
        started,
        format_args!("GPU models registered: {}", listed.join(", ")),
    );
    Ok(())
}

/// Starts (and so registers on chain) every node of `specs` with the matching key, concurrently,
/// and prints each one's identity.
async fn start_fleet(
    services: &mut Services,
    nodes: &[(fleet::NodeSpec, PrivateKeySigner)],
    env: &NodeEnv,
    nodes_dir: &Path,
    started: Instant,
) -> eyre::Result<()> {
    let configs = nodes
        .iter()
        .map(|(spec, key)| {
            (
                spec.name.clone(),
                fleet::node_config(spec, key, env, nodes_dir),
            )
        })
        .collect();
    let addresses = services.start_nodes(configs).await?;
    for ((spec, _), address) in nodes.iter().zip(addresses) {
        step(
            started,
            format_args!(
                "node {:<9} {address} joined as {:?} with {} GiB{}",
                spec.name,
                spec.gpu_model,
                spec.vram_mib / 1024,
                if spec.behaviour == verinfer_node::Behaviour::Honest {
                    String::new()
                } else {
                    format!(" [{:?}]", spec.behaviour).to_lowercase()
                }
            ),
        );
    }
    Ok(())
}

/// Creates the demo's image task (two images; with the cheater, a VRAM floor that selects it).
async fn create_image_task(
    client: &Client,
    models: &TinyModels,
    cheater: bool,
    started: Instant,
) -> eyre::Result<u64> {
    let args = tiny_image_args(&models.sd, "a lighthouse on a cliff at dusk", 2, 7);
    let vram = fleet::image_min_vram_mib(cheater);
    let image = client
        .create_image_task(args, Some(IMAGE_FEE), vram)
        .await
        .wrap_err("creating the image task")?;
    step(
        started,
        format_args!(
            "image task {} created (2 images, fee {} tokens, min VRAM {} GiB){}",
            image.task_id,
            client.token_decimals().await?.format(IMAGE_FEE),
            vram / 1024,
            if image.started {
                ", drawn"
            } else {
                ", queued until a draw"
            }
        ),
    );
    Ok(image.task_id)
}

/// Creates the demo's text task, for three nodes of [`TEXT_GPU_MODEL`].
async fn create_text_task(
    client: &Client,
    models: &TinyModels,
    started: Instant,
) -> eyre::Result<u64> {
    let args = demo_text_args(models, "The lighthouse keeper wrote in the log:");
    let text = client
        .create_text_task(args, Some(TEXT_FEE), 0, Some(TEXT_GPU_MODEL))
        .await
        .wrap_err("creating the text task")?;
    step(
        started,
        format_args!(
            "text task {} created (GPU model {TEXT_GPU_MODEL:?}, fee {} tokens){}",
            text.task_id,
            client.token_decimals().await?.format(TEXT_FEE),
            if text.started {
                ", drawn"
            } else {
                ", queued until a draw finds three of its nodes free"
            }
        ),
    );
    Ok(text.task_id)
}

/// The demo's text args: 16 greedy tokens of tiny-llama after `prompt`.
fn demo_text_args(models: &TinyModels, prompt: &str) -> TextArgs {
    TextArgs {
        version: ARGS_VERSION,
        model: models.llama.clone(),
        input: TextInput::Prompt(prompt.to_owned()),
        max_tokens: 16,
        sampling: Sampling::Greedy {},
        seed: 7,
        stop: Vec::new(),
    }
}

/// Creates the demo's sampled text task, on [`TEXT_GPU_MODEL`]: one node computes it, and two
/// more of that model check it when the sample draw (probability p, `sampling_bps`) says so.
async fn create_sampled_text_task(
    client: &Client,
    models: &TinyModels,
    sampling_bps: u16,
    started: Instant,
) -> eyre::Result<u64> {
    let fee = sampled_fee(client, TaskKind::Text, 0, SAMPLED_TEXT_FEE).await?;
    let args = demo_text_args(models, "The ship's log, on the third night, reads:");
    let options = TaskOptions::new()
        .with_fee(fee)
        .with_gpu_model(TEXT_GPU_MODEL)
        .sampled();
    let text = client
        .create(&TaskArgs::Text(args), &options)
        .await
        .wrap_err("creating the sampled text task")?;
    step(
        started,
        format_args!(
            "sampled text task {} created (GPU model {TEXT_GPU_MODEL:?}, fee {} tokens; one node computes it, two more check it with probability p = {}){}",
            text.task_id,
            client.token_decimals().await?.format(fee),
            verinfer_abi::format_bps(sampling_bps),
            if text.started {
                ", drawn"
            } else {
                ", queued until a draw finds its nodes free"
            }
        ),
    );
    Ok(text.task_id)
}

/// Waits for every task of `ids` to settle, printing their progress; fails after `timeout`.
async fn wait_settled(
    client: &Client,
    ids: &[u64],
    timeout: Duration,
    started: Instant,
) -> eyre::Result<Vec<ChainTask>> {
    let wait = |task_id: u64| async move {
        client
            .wait(task_id, |task| {
                step(
                    started,
                    format_args!("task {task_id}: {}", crate::task::describe(task)),
                )
            })
            .await
    };
    let tasks = tokio::time::timeout(
        timeout,
        futures_util::future::join_all(ids.iter().map(|&id| wait(id))),
    )
    .await
    .map_err(|_| {
        eyre!("the demo tasks did not settle within {timeout:?} (see the node logs above)")
    })?;
    Ok(tasks.into_iter().collect::<Result<_, _>>()?)
}

/// Waits until the sample draw of sampled task `task_id` is decided (its first node committed, and
/// a later block's hash decided); returns whether it is checked.
async fn sample_drawn(client: &Client, task_id: u64) -> eyre::Result<bool> {
    loop {
        let task = client.chain_task(task_id).await?;
        if task.status == TaskStatus::AwaitingSample || task.checked || task.is_terminal() {
            match client.sample_decision(task_id).await? {
                SampleDecision::NotYet { .. } => {}
                SampleDecision::Checked { .. } => return Ok(true),
                SampleDecision::Unchecked { .. } => return Ok(false),
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The first node of task `task_id`, once drawn.
async fn first_node(client: &Client, task_id: u64) -> eyre::Result<alloy::primitives::Address> {
    loop {
        let task = client.chain_task(task_id).await?;
        if task.started() {
            return Ok(task.nodes[0]);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until the check of sampled task `task_id` has started (its two checkers drawn) or the
/// task ended, sending `drawTasks()` when a draw is due and nobody sent one for a while.
async fn check_started(client: &Client, task_id: u64) -> eyre::Result<()> {
    let mut polls = 0u32;
    loop {
        let task = client.chain_task(task_id).await?;
        if task.is_terminal() || (task.checked && task.status != TaskStatus::CheckQueued) {
            return Ok(());
        }
        polls += 1;
        if polls.is_multiple_of(15) && client.draw_due().await? {
            client.draw_tasks().await?;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The fee for a sampled task of `kind` and `image_count` images: `wanted`, moved into
/// `sampledFeeRange` (at least the sampled minimum; at most what keeps cheating unprofitable at
/// the rate in force: `p * slashShare * minStake / (1 - p)`).
pub(crate) async fn sampled_fee(
    client: &Client,
    kind: TaskKind,
    image_count: u8,
    wanted: u128,
) -> eyre::Result<u128> {
    let (minimum, maximum) = client
        .sampled_fee_range(kind, image_count)
        .await
        .wrap_err("reading sampledFeeRange")?;
    if minimum > maximum {
        let decimals = client.token_decimals().await?;
        bail!(
            "no fee is allowed for sampled tasks at this sampling rate (minimum {} > maximum {} tokens)",
            decimals.format(minimum),
            decimals.format(maximum)
        );
    }
    Ok(wanted.clamp(minimum, maximum))
}

/// Sets the sampling rate of sampled tasks to `bps` (when given and different) by scheduling a
/// parameter version as the owner (dev account 0): the devnet deploys with `paramsDelay` 0, so it
/// is in force at once. Returns the rate in force.
async fn set_sampling_rate(chain: &Chain, bps: Option<u16>, started: Instant) -> eyre::Result<u16> {
    let verinfer = chain.verinfer();
    let version = verinfer
        .paramsVersion()
        .call()
        .await
        .wrap_err("reading paramsVersion")?;
    let mut params = verinfer
        .paramsAt(version)
        .call()
        .await
        .wrap_err("reading the parameters in force")?;
    let deployed = params.samplingBps;
    let Some(bps) = bps.filter(|&bps| bps != deployed) else {
        step(
            started,
            format_args!(
                "sampled tasks: p = {} (the deployment's samplingBps {deployed})",
                verinfer_abi::format_bps(deployed),
            ),
        );
        return Ok(deployed);
    };
    params.samplingBps = bps;
    let receipt = verinfer
        .scheduleParams(params)
        .send()
        .await
        .wrap_err("scheduling the sampling rate")?
        .get_receipt()
        .await
        .wrap_err("scheduling the sampling rate")?;
    if !receipt.status() {
        bail!(
            "scheduleParams with samplingBps {bps} reverted (tx {})",
            receipt.transaction_hash
        );
    }
    let now = verinfer
        .paramsVersion()
        .call()
        .await
        .wrap_err("reading paramsVersion")?;
    step(
        started,
        format_args!(
            "sampled tasks: p = {} (samplingBps {bps} instead of the deployment's {deployed}: parameter version {now}, in force at once)",
            verinfer_abi::format_bps(bps)
        ),
    );
    Ok(bps)
}

/// A verified result written to disk: task id, directory, what was fetched.
type Written = (u64, PathBuf, verinfer_client::ResultReport);

/// Each task's report, and for each validated one its verified result, fetched into
/// `<results_dir>/task-<id>`.
async fn fetch_results(
    client: &Client,
    tasks: &[ChainTask],
    results_dir: &Path,
    started: Instant,
) -> eyre::Result<(Vec<TaskReport>, Vec<Written>)> {
    let mut reports = Vec::new();
    let mut written = Vec::new();
    for task in tasks {
        let report = client.task_report(task.task_id).await?;
        if task.status == TaskStatus::Validated {
            let out = results_dir.join(format!("task-{}", task.task_id));
            let fetched = crate::task::fetch_when_uploaded(
                client,
                task.task_id,
                &out,
                Duration::from_secs(30),
            )
            .await
            .wrap_err_with(|| format!("fetching the result of task {}", task.task_id))?;
            step(started, fetched.summary());
            written.push((task.task_id, out, fetched));
        }
        reports.push(report);
    }
    Ok((reports, written))
}

/// Prints one table per task, then where each verified result was written (and the text).
fn print_report<'a>(
    reports: impl IntoIterator<Item = &'a TaskReport>,
    written: &[Written],
    decimals: TokenDecimals,
) {
    println!();
    for report in reports {
        print!("{}", table::render(report, decimals));
        println!();
    }
    for (task_id, out, fetched) in written {
        let files: Vec<String> = fetched
            .files
            .iter()
            .filter_map(|file| {
                file.file_name()
                    .map(|name| name.to_string_lossy().into_owned())
            })
            .collect();
        println!(
            "task {task_id}: verified result written to {} ({})",
            out.display(),
            files.join(", ")
        );
        if let verinfer_client::VerifiedResult::Text { output, .. } = &fetched.verified {
            println!("task {task_id}: generated text {:?}", output.text);
        }
    }
}

/// Fails unless every demo task was validated.
fn check_validated(reports: &[TaskReport]) -> eyre::Result<()> {
    let failed: Vec<String> = reports
        .iter()
        .filter(|report| report.task.status != TaskStatus::Validated)
        .map(|report| format!("task {} ended {}", report.task.task_id, report.task.status))
        .collect();
    if !failed.is_empty() {
        bail!("the demo did not validate: {}", failed.join("; "));
    }
    Ok(())
}
