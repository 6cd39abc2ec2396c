//! `verinfer devnet`: a whole verinfer network on this machine, and a demo run through it.
//!
//! Starts anvil (the npm binary, as a child process), deploys with `script/Deploy.s.sol`, runs
//! the relayer and a fleet of nodes in this process on tiny models, creates an image task and a
//! text task, waits for their validation and prints who computed what, the distances against the
//! threshold, the verdicts and the payouts. Exits when done (`--keep-running` keeps the network
//! up). Every child is stopped on exit, on error and on Ctrl-C; on Linux anvil is also killed by
//! the kernel if this process dies without cleaning up.

pub(crate) mod anvil;
mod deploy;
mod fleet;
mod load;
pub(crate) mod table;

use std::{
    net::{Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use alloy::{network::EthereumWallet, primitives::U256, providers::ProviderBuilder};
use clap::Args;
use eyre::{WrapErr, bail, eyre};
use tokio::{sync::watch, task::JoinSet};
use url::Url;
use verinfer_abi::{Deployment, TaskStatus};
use verinfer_client::{Client, TaskReport};
use verinfer_task::{
    ARGS_VERSION, ImageArgs, ModelRef, Precision, Sampling, Scheduler, TextArgs, TextInput,
};

use self::{anvil::Anvil, deploy::DeployParams, fleet::TEXT_GPU_MODEL};

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
    #[arg(long, default_value_os_t = verinfer_abi::devnet::repo_root())]
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
    anvil: Anvil,
    rpc_url: Url,
    relayer_url: Url,
    deployment: Deployment,
    deployment_path: PathBuf,
    data_dir: PathBuf,
    models: Models,
    creator: alloy::signers::local::PrivateKeySigner,
    /// How many nodes run.
    node_count: usize,
    stop_tx: watch::Sender<bool>,
    services: JoinSet<(String, eyre::Result<()>)>,
}

/// The tiny models and their digests.
struct Models {
    sd: ModelRef,
    llama: ModelRef,
    dir: PathBuf,
}

fn step(started: Instant, message: impl std::fmt::Display) {
    println!("[{:>5.1}s] {message}", started.elapsed().as_secs_f64());
}

impl Devnet {
    async fn start(args: &DevnetArgs, started: Instant) -> eyre::Result<Self> {
        let root = args.root.clone();
        let data_dir = args
            .data_dir
            .clone()
            .unwrap_or_else(|| root.join(".verinfer/devnet"));
        let models_dir = args
            .models_dir
            .clone()
            .unwrap_or_else(|| data_dir.join("models"));
        clear_state(&data_dir)?;
        // Checked before anything starts, so that a taken port fails fast and leaves nothing behind.
        if args.relayer_port != 0 {
            anvil::ensure_port_free(args.relayer_port, "--relayer-port")?;
        }

        let anvil_binary =
            verinfer_abi::devnet::foundry_tool(&root, verinfer_abi::devnet::FoundryTool::Anvil)?;
        let specs = fleet::fleet(args.cheater, args.extra_nodes);
        let anvil = Anvil::start(
            &anvil_binary,
            args.port,
            specs.len() + 2,
            &data_dir.join("anvil.log"),
        )
        .await?;
        let rpc_url = anvil.endpoint();
        step(
            started,
            format_args!(
                "anvil listening on {rpc_url} (pid {})",
                anvil.pid().unwrap_or_default()
            ),
        );
        let keys = anvil.keys().to_vec();
        let (deployer, creator) = (keys[0].clone(), keys[1].clone());

        let params = DeployParams {
            commit_window: args.commit_window,
            reveal_window: args.reveal_window,
            threshold: 10,
        };
        let (deployment, deployment_path) = deploy::deploy(
            &root,
            &rpc_url,
            &deployer,
            params,
            &data_dir.join("deployments"),
        )
        .await?;
        step(
            started,
            format_args!(
                "deployed with script/Deploy.s.sol: Verinfer {} staking {} (commit/reveal windows {}s/{}s) -> {}",
                deployment.verinfer,
                deployment.staking_token,
                args.commit_window,
                args.reveal_window,
                deployment_path.display()
            ),
        );

        // Models are made (or found) while the relayer starts.
        let models_task = tokio::task::spawn_blocking({
            let models_dir = models_dir.clone();
            move || tiny_models(&models_dir)
        });

        let (stop_tx, stop_rx) = watch::channel(false);
        let mut services = JoinSet::new();
        let relayer_url = start_relayer(
            &mut services,
            &stop_rx,
            args.relayer_port,
            &rpc_url,
            &deployment_path,
            &data_dir,
        )
        .await?;
        step(started, format_args!("relayer serving on {relayer_url}"));

        let models = models_task
            .await
            .map_err(|error| eyre!("model task failed: {error}"))??;
        step(
            started,
            format_args!("tiny models ready in {}", models.dir.display()),
        );

        // Fund the nodes and the creator from the deployer (the mock token's faucet).
        let provider = ProviderBuilder::new()
            .wallet(EthereumWallet::from(deployer.clone()))
            .connect_http(rpc_url.clone());
        let token = verinfer_abi::MockStakingToken::new(deployment.staking_token, &provider);
        let node_keys = &keys[2..2 + specs.len()];
        let mut funded = Vec::new();
        for (key, amount) in node_keys
            .iter()
            .map(|key| (key, NODE_FUNDS))
            .chain([(&creator, CREATOR_FUNDS)])
        {
            let pending = token
                .mint(key.address(), U256::from(amount))
                .send()
                .await
                .wrap_err("minting devnet tokens failed")?;
            funded.push(pending);
        }
        for pending in funded {
            let receipt = pending
                .get_receipt()
                .await
                .wrap_err("minting devnet tokens failed")?;
            if !receipt.status() {
                bail!(
                    "minting devnet tokens reverted (tx {})",
                    receipt.transaction_hash
                );
            }
        }
        drop(provider);

        let relayer = relayer_url.clone();
        let started_nodes = fleet::start_nodes(
            &specs,
            node_keys,
            fleet::NodeEnv {
                rpc_url: &rpc_url,
                relayer_url: &relayer,
                deployment_path: &deployment_path,
                models_dir: &models.dir,
                data_dir: &data_dir.join("nodes"),
            },
        )
        .await?;
        for (spec, node) in specs.iter().zip(started_nodes) {
            step(
                started,
                format_args!(
                    "node {:<9} {} joined as {:?} with {} GiB{}",
                    spec.name,
                    node.address(),
                    spec.gpu_model,
                    spec.vram_mib / 1024,
                    if spec.behaviour == verinfer_node::Behaviour::Honest {
                        String::new()
                    } else {
                        format!(" [{:?}]", spec.behaviour).to_lowercase()
                    }
                ),
            );
            let mut stop = stop_rx.clone();
            let name = spec.name.clone();
            services.spawn(async move {
                let result = node
                    .run(async move {
                        let _ = stop.wait_for(|stop| *stop).await;
                    })
                    .await
                    .map_err(eyre::Report::from);
                (name, result)
            });
        }

        Ok(Self {
            anvil,
            rpc_url,
            relayer_url,
            deployment,
            deployment_path,
            data_dir,
            models,
            creator,
            node_count: specs.len(),
            stop_tx,
            services,
        })
    }

    /// Creates the demo tasks, waits for them, fetches their results and prints the report.
    async fn demo(&self, args: &DevnetArgs, started: Instant) -> eyre::Result<()> {
        let client = Client::new(
            self.rpc_url.clone(),
            self.creator.clone(),
            self.deployment,
            self.relayer_url.clone(),
        )
        .with_poll_interval(Duration::from_millis(200));

        let image_args = tiny_image_args(&self.models.sd, "a lighthouse on a cliff at dusk", 2, 7);
        let text_args = TextArgs {
            version: ARGS_VERSION,
            model: self.models.llama.clone(),
            input: TextInput::Prompt("The lighthouse keeper wrote in the log:".to_owned()),
            max_tokens: 16,
            sampling: Sampling::Greedy {},
            seed: 7,
            stop: Vec::new(),
        };
        let image_vram = fleet::image_min_vram_mib(args.cheater);
        let image = client
            .create_image_task(image_args, IMAGE_FEE, image_vram)
            .await
            .wrap_err("creating the image task")?;
        step(
            started,
            format_args!(
                "image task {} created (2 images, fee {} tokens, min VRAM {} GiB){}",
                image.task_id,
                table::tokens(IMAGE_FEE),
                image_vram / 1024,
                if image.started { "" } else { ", queued" }
            ),
        );
        let text = client
            .create_text_task(text_args, TEXT_FEE, 0, Some(TEXT_GPU_MODEL))
            .await
            .wrap_err("creating the text task")?;
        step(
            started,
            format_args!(
                "text task {} created (GPU model {TEXT_GPU_MODEL:?}, fee {} tokens){}",
                text.task_id,
                table::tokens(TEXT_FEE),
                if text.started {
                    ""
                } else {
                    ", queued until three of its nodes are free"
                }
            ),
        );

        let timeout = Duration::from_secs(args.timeout_secs);
        let wait = |task_id: u64| {
            let client = &client;
            async move {
                client
                    .wait(task_id, |task| {
                        step(
                            started,
                            format_args!("task {task_id}: {}", crate::task::describe(task)),
                        )
                    })
                    .await
            }
        };
        let (image_task, text_task) = tokio::time::timeout(timeout, async {
            tokio::join!(wait(image.task_id), wait(text.task_id))
        })
        .await
        .map_err(|_| {
            eyre!("the demo tasks did not settle within {timeout:?} (see the node logs above)")
        })?;
        let (image_task, text_task) = (image_task?, text_task?);

        let results_dir = self.data_dir.join("results");
        let mut reports = Vec::new();
        let mut written = Vec::new();
        for task in [&image_task, &text_task] {
            let report = client.task_report(task.task_id).await?;
            if task.status == TaskStatus::Validated {
                let out = results_dir.join(format!("task-{}", task.task_id));
                let fetched = crate::task::fetch_when_uploaded(
                    &client,
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

        println!();
        for report in &reports {
            print!("{}", table::render(report));
            println!();
        }
        for (task_id, out, fetched) in &written {
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
        step(started, "demo complete");

        let failed: Vec<String> = reports
            .iter()
            .filter(|report| report.task.status != TaskStatus::Validated)
            .map(|report| format!("task {} ended {}", report.task.task_id, report.task.status))
            .collect();
        if !failed.is_empty() {
            bail!("the demo did not validate: {}", failed.join("; "));
        }
        check_cheater(args.cheater, &reports)
    }

    /// The load benchmark (`--load-tasks`): many image tasks at once, throughput measured.
    async fn load(&self, args: &DevnetArgs) -> eyre::Result<()> {
        let client = Client::new(
            self.rpc_url.clone(),
            self.creator.clone(),
            self.deployment,
            self.relayer_url.clone(),
        )
        .with_poll_interval(Duration::from_millis(250));
        let relayer = verinfer_relayer::RelayerClient::new(self.relayer_url.clone());
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
        println!("  RPC         {}", self.rpc_url);
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
            self.rpc_url,
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
            anvil,
            stop_tx,
            mut services,
            ..
        } = self;
        let _ = stop_tx.send(true);
        let drained = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(joined) = services.join_next().await {
                match joined {
                    Ok((name, Err(error))) => {
                        tracing::warn!(service = %name, "stopped with an error: {error:#}")
                    }
                    Ok((_, Ok(()))) => {}
                    Err(error) => tracing::warn!(%error, "a devnet service panicked"),
                }
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!("some nodes did not stop within 10 s; dropping them");
            services.abort_all();
        }
        anvil.stop().await;
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

/// Makes the tiny models when missing and digests them.
fn tiny_models(dir: &Path) -> eyre::Result<Models> {
    let made = verinfer_inference::make_tiny_models(dir, 0, false)
        .wrap_err_with(|| format!("cannot make the tiny models in {}", dir.display()))?;
    Ok(Models {
        sd: ModelRef::from_dir(&made.sd)?,
        llama: ModelRef::from_dir(&made.llama)?,
        dir: dir.to_path_buf(),
    })
}

/// Starts the relayer in this process on 127.0.0.1:`port`; returns its URL.
async fn start_relayer(
    services: &mut JoinSet<(String, eyre::Result<()>)>,
    stop_rx: &watch::Receiver<bool>,
    port: u16,
    rpc_url: &Url,
    deployment_path: &Path,
    data_dir: &Path,
) -> eyre::Result<Url> {
    let config = verinfer_relayer::RelayerConfig {
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        rpc_url: Some(rpc_url.clone()),
        deployment: Some(deployment_path.to_path_buf()),
        data_dir: data_dir.join("relayer"),
        poll_interval_ms: 200,
        confirmations: 0,
        ..verinfer_relayer::RelayerConfig::default()
    };
    let listener = tokio::net::TcpListener::bind(config.listen).await.map_err(|error| {
        if error.kind() == std::io::ErrorKind::AddrInUse {
            eyre!("port {port} is already in use on 127.0.0.1: choose another with --relayer-port (0 picks a free one)")
        } else {
            eyre!("cannot listen on {}: {error}", config.listen)
        }
    })?;
    let bound = listener.local_addr()?;
    let relayer = verinfer_relayer::Relayer::from_config(&config)
        .await
        .wrap_err("cannot start the relayer")?;
    let mut stop = stop_rx.clone();
    services.spawn(async move {
        let result = relayer
            .serve(listener, async move {
                let _ = stop.wait_for(|stop| *stop).await;
            })
            .await
            .map_err(eyre::Report::from);
        ("relayer".to_owned(), result)
    });
    Url::parse(&format!("http://{bound}")).wrap_err("relayer URL")
}
