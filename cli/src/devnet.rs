//! `verinfer devnet`: a whole verinfer network on this machine, and a demo run through it.
//!
//! Starts anvil (the npm binary, as a child process), deploys with `script/Deploy.s.sol`, runs
//! the relayer and a fleet of nodes in this process on tiny models, creates an image task and a
//! text task, waits for their validation and prints who computed what, the distances against the
//! threshold, the verdicts and the payouts. Exits when done (`--keep-running` keeps the network
//! up). Every child is stopped on exit, on error and on Ctrl-C; on Linux anvil is also killed by
//! the kernel if this process dies without cleaning up.

mod fleet;
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
use verinfer_abi::TaskStatus;
use verinfer_client::{ChainTask, Client, TaskReport};
use verinfer_devchain::{
    self as devchain, Anvil, AnvilOptions, Chain, Deploy, NodeEnv, ScriptParams, ServiceError,
    Services, TinyModels,
};
use verinfer_task::{
    ARGS_VERSION, ImageArgs, ModelRef, Precision, Sampling, Scheduler, TextArgs, TextInput,
};

use self::fleet::TEXT_GPU_MODEL;

/// Token base units per token.
const TOKEN: u128 = 1_000_000_000_000_000_000;
/// Tokens minted to each node (stake plus room) and to the task creator.
const NODE_FUNDS: u128 = 10_000 * TOKEN;
const CREATOR_FUNDS: u128 = 1_000 * TOKEN;
const IMAGE_FEE: u128 = 10 * TOKEN;
const TEXT_FEE: u128 = 5 * TOKEN;

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
    /// for it (and slashed).
    #[arg(long)]
    cheater: bool,
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
    /// More honest nodes (`devnet-gpu-b`, 8 GiB) beside the demo's four, for the load benchmark.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u16).range(0..=64))]
    extra_nodes: u16,
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
    /// How many nodes run.
    node_count: usize,
    services: Services,
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
        let anvil = start_anvil(args, &dirs, specs.len() + 2, started).await?;
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
        fund(&chain, node_keys, &creator).await?;
        let env = NodeEnv {
            rpc_url: chain.rpc_url(),
            deployment: *chain.deployment(),
            relayer_url: relayer_url.clone(),
            models_dir: models.dir.clone(),
        };
        register_gpu_models(&chain, &specs, started).await?;
        let nodes_dir = dirs.data.join("nodes");
        start_fleet(&mut services, &specs, node_keys, &env, &nodes_dir, started).await?;
        Ok(Self {
            chain,
            relayer_url,
            deployment_path,
            data_dir: dirs.data,
            models,
            creator,
            node_count: specs.len(),
            services,
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

    /// Creates the demo tasks, waits for them, fetches their results and prints the report.
    async fn demo(&self, args: &DevnetArgs, started: Instant) -> eyre::Result<()> {
        let client = self.client(Duration::from_millis(200));
        let image = create_image_task(&client, &self.models, args.cheater, started).await?;
        let text = create_text_task(&client, &self.models, started).await?;
        let timeout = Duration::from_secs(args.timeout_secs);
        let tasks = wait_settled(&client, [image, text], timeout, started).await?;
        let results_dir = self.data_dir.join("results");
        let (reports, written) = fetch_results(&client, &tasks, &results_dir, started).await?;
        print_report(&reports, &written);
        step(started, "demo complete");
        check_validated(&reports)?;
        check_cheater(args.cheater, &reports)
    }

    /// The load benchmark (`--load-tasks`): many image tasks at once, throughput measured.
    async fn load(&self, args: &DevnetArgs) -> eyre::Result<()> {
        // Tasks are created back to back: the nodes' daemons (and every later call) draw them.
        let client = self
            .client(Duration::from_millis(250))
            .with_draw_after_create(false);
        let relayer = verinfer_wire::RelayerClient::new(self.relayer_url.clone());
        println!();
        let report = load::run(
            &client,
            &relayer,
            &self.models.sd,
            args.load_tasks,
            self.node_count,
            // Every node can serve these (the cheater, if any, was kicked by the demo).
            fleet::image_min_vram_mib(false),
            Duration::from_secs(args.load_timeout_secs),
        )
        .await?;
        println!("{}", report.render());
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

/// With `--cheater`, the counterfeiting node must have been selected and slashed.
fn check_cheater(cheater: bool, reports: &[TaskReport]) -> eyre::Result<()> {
    if !cheater {
        return Ok(());
    }
    let slashed: u128 = reports.iter().map(TaskReport::total_slashed).sum();
    if slashed == 0 {
        bail!("--cheater: no node was slashed, the counterfeit result went unnoticed");
    }
    println!(
        "cheater caught: {} tokens of its stake slashed, and it was kicked",
        table::tokens(slashed)
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
    creator: &PrivateKeySigner,
) -> eyre::Result<()> {
    let grants = node_keys
        .iter()
        .map(|key| (key.address(), U256::from(NODE_FUNDS)))
        .chain([(creator.address(), U256::from(CREATOR_FUNDS))]);
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
    specs: &[fleet::NodeSpec],
    keys: &[PrivateKeySigner],
    env: &NodeEnv,
    nodes_dir: &Path,
    started: Instant,
) -> eyre::Result<()> {
    let configs = specs
        .iter()
        .zip(keys)
        .map(|(spec, key)| {
            (
                spec.name.clone(),
                fleet::node_config(spec, key, env, nodes_dir),
            )
        })
        .collect();
    let addresses = services.start_nodes(configs).await?;
    for (spec, address) in specs.iter().zip(addresses) {
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
            table::tokens(IMAGE_FEE),
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
    let args = TextArgs {
        version: ARGS_VERSION,
        model: models.llama.clone(),
        input: TextInput::Prompt("The lighthouse keeper wrote in the log:".to_owned()),
        max_tokens: 16,
        sampling: Sampling::Greedy {},
        seed: 7,
        stop: Vec::new(),
    };
    let text = client
        .create_text_task(args, Some(TEXT_FEE), 0, Some(TEXT_GPU_MODEL))
        .await
        .wrap_err("creating the text task")?;
    step(
        started,
        format_args!(
            "text task {} created (GPU model {TEXT_GPU_MODEL:?}, fee {} tokens){}",
            text.task_id,
            table::tokens(TEXT_FEE),
            if text.started {
                ", drawn"
            } else {
                ", queued until a draw finds three of its nodes free"
            }
        ),
    );
    Ok(text.task_id)
}

/// Waits for both tasks to settle, printing their progress; fails after `timeout`.
async fn wait_settled(
    client: &Client,
    [image, text]: [u64; 2],
    timeout: Duration,
    started: Instant,
) -> eyre::Result<[ChainTask; 2]> {
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
    let (image, text) =
        tokio::time::timeout(timeout, async { tokio::join!(wait(image), wait(text)) })
            .await
            .map_err(|_| {
                eyre!("the demo tasks did not settle within {timeout:?} (see the node logs above)")
            })?;
    Ok([image?, text?])
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
fn print_report(reports: &[TaskReport], written: &[Written]) {
    println!();
    for report in reports {
        print!("{}", table::render(report));
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
