//! `verinfer task ...`: create tasks, follow them and fetch their verified results against any
//! RPC endpoint and relayer.

use std::{
    io::IsTerminal,
    path::{Path, PathBuf},
    time::Duration,
};

use alloy::signers::local::PrivateKeySigner;
use clap::{Args, Subcommand};
use eyre::{WrapErr, bail, eyre};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use url::Url;
use verinfer_abi::{TokenAmountText, TokenDecimals, format_bps};
use verinfer_client::{
    ChainTask, Client, ClientError, CreatedTask, Deployment, SampleDecision, TaskOptions,
    TaskStatus, ValidationMode,
};
use verinfer_task::{
    ARGS_VERSION, ImageArgs, ModelRef, Precision, Sampling, Scheduler, TaskArgs, TextArgs,
    TextInput,
};

use crate::devnet::table;

/// Create tasks, follow them and fetch their results.
#[derive(Debug, Args)]
pub(crate) struct TaskArgsCli {
    #[command(subcommand)]
    command: TaskCommand,
}

#[derive(Debug, Subcommand)]
enum TaskCommand {
    /// Create a task: validate its args and check its fee and GPU model against the chain
    /// (refusing bad ones before any gas is spent), upload the args to the relayer, approve the fee
    /// and call createTask (createSampledTask with --sampled); the task then waits for a draw in a
    /// later block, which this command sends itself when nothing else did a block later. Prints
    /// the task id, fee, validation mode and GPU model.
    Create(Box<CreateArgs>),
    /// Show a task: its chain record, how it is validated (by three nodes, or sampled: checked
    /// or accepted unchecked at rate p), nodes, reveals, settlement and payouts.
    Status(StatusArgs),
    /// Run the sample draw of a sampled task whose first node committed (resolveSample; anybody
    /// may): checked, two checkers are drawn next; unchecked, the first node's reveal settles
    /// it. The first node normally does this itself. Refused before any gas is spent when the
    /// draw cannot run yet or ran already.
    ResolveSample(CancelArgs),
    /// Cancel a task of yours that still waits in its queue; its fee is refunded in full.
    Cancel(CancelArgs),
    /// End a task that waited in its queue past its queue timeout (anybody may); its fee is
    /// credited to its creator (`verinfer withdraw` sends it).
    Expire(CancelArgs),
    /// Download a validated task's result, verify it against the digests revealed on chain, and
    /// write it to a directory.
    Result(ResultArgs),
}

/// Where the network is.
#[derive(Debug, Args)]
pub(crate) struct Connection {
    /// JSON-RPC endpoint of the chain.
    #[arg(
        long,
        env = "VERINFER_RPC_URL",
        default_value = "http://127.0.0.1:8545"
    )]
    rpc_url: Url,
    /// Base URL of the relayer.
    #[arg(
        long,
        env = "VERINFER_RELAYER_URL",
        default_value = "http://127.0.0.1:8645"
    )]
    relayer: Url,
    /// The deployment record written by script/Deploy.s.sol (`deployments/<chainid>.json`).
    #[arg(long, env = "VERINFER_DEPLOYMENT")]
    deployment: PathBuf,
    /// Name of the environment variable holding the creator's private key (hex). Needed to create
    /// tasks; reading them works without it.
    #[arg(long, default_value = "VERINFER_KEY")]
    key_env: String,
    /// An extra CA file (PEM, one or more certificates) trusted for https:// URLs besides the
    /// system's roots (SSL_CERT_FILE replaces those).
    #[arg(long, env = "VERINFER_CA_FILE", value_name = "PEM")]
    ca_file: Option<PathBuf>,
}

impl Connection {
    /// A client; `need_key` makes a missing key an error (otherwise a throwaway read-only key).
    pub(crate) fn client(&self, need_key: bool) -> eyre::Result<Client> {
        let deployment = Deployment::load(&self.deployment)?;
        // Without a key: never signs anything (status and result only read).
        let signer = signer_from_env(&self.key_env, need_key, "the account's")?
            .unwrap_or_else(PrivateKeySigner::random);
        Ok(Client::with_http(
            self.rpc_url.clone(),
            signer,
            deployment,
            self.relayer.clone(),
            verinfer_client::tls::http_client(self.ca_file.as_deref())?,
        ))
    }
}

/// The hex private key in the environment variable `key_env`; `None` when it is unset and not
/// `needed` (an error naming the variable, `whose` key it should hold and `--key-env`, when it is).
pub(crate) fn signer_from_env(
    key_env: &str,
    needed: bool,
    whose: &str,
) -> eyre::Result<Option<PrivateKeySigner>> {
    match std::env::var(key_env) {
        Ok(key) => key
            .trim()
            .parse::<PrivateKeySigner>()
            .map(Some)
            .map_err(|_| eyre!("${key_env} does not hold a hex private key")),
        Err(_) if needed => bail!(
            "set ${key_env} to {whose} private key (hex), or name another variable with --key-env"
        ),
        Err(_) => Ok(None),
    }
}

/// `verinfer withdraw`: send the account everything the contract credited to it.
#[derive(Debug, Args)]
pub(crate) struct WithdrawArgs {
    #[command(flatten)]
    connection: Connection,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("kind").args(["image", "text"])))]
struct CreateArgs {
    /// An image generation task (Stable Diffusion).
    #[arg(long)]
    image: bool,
    /// A text generation task (LLM).
    #[arg(long)]
    text: bool,
    /// The complete args document (JSON, docs/task-format.md). Overrides the args flags below.
    #[arg(long, value_name = "FILE")]
    args: Option<PathBuf>,
    /// Prompt (without --args).
    #[arg(long)]
    prompt: Option<String>,
    /// Model directory: its digest is computed and its directory name used as the model name.
    #[arg(long, value_name = "DIR", conflicts_with = "model_digest")]
    model: Option<PathBuf>,
    /// Model digest (`sha256:` + 64 hex digits), instead of --model.
    #[arg(long, requires = "model_name")]
    model_digest: Option<String>,
    /// Model name to go with --model-digest (informational).
    #[arg(long)]
    model_name: Option<String>,
    /// RNG seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Images to generate (image tasks).
    #[arg(long, default_value_t = 1)]
    num_images: u32,
    /// Image width in pixels (multiple of 8).
    #[arg(long, default_value_t = 512)]
    width: u32,
    /// Image height in pixels (multiple of 8).
    #[arg(long, default_value_t = 512)]
    height: u32,
    /// Denoising steps (image tasks).
    #[arg(long, default_value_t = 25)]
    steps: u32,
    /// Guidance scale (image tasks).
    #[arg(long, default_value_t = 7.5)]
    guidance_scale: f64,
    /// Most tokens to generate (text tasks; greedy decoding).
    #[arg(long, default_value_t = 128)]
    max_tokens: u32,
    /// Fee in tokens, e.g. `10` or `0.5`, with at most as many decimals as the staking token has
    /// (its `decimals()`); at least the network's minimum for the task. Default: that minimum
    /// (`minTaskFee`; `verinfer admin params show` lists its parts; with --sampled the sampled
    /// range's minimum, `sampledFeeRange`). Nodes of fee tier t are drawn only for fees of at
    /// least 2^t times the minimum.
    #[arg(long)]
    fee: Option<TokenAmountText>,
    /// Sampled validation: one node computes; after its commitment a later block's hash decides,
    /// with the network's probability p, whether two more nodes check it (majority of three);
    /// otherwise its result is accepted unchecked. Costs about (1 + 2p) / 3 of a full task; the
    /// fee must lie within the network's sampled range (the maximum keeps cheating unprofitable
    /// for a node staking the minimum).
    #[arg(long)]
    sampled: bool,
    /// VRAM each node's GPU model must have, in MiB (the registry's VRAM of the model).
    #[arg(long, default_value_t = 0)]
    min_vram_mib: u32,
    /// Text tasks: the registered GPU model all three nodes must have (`verinfer admin gpu-model
    /// list`). Default: the registered model with the most available nodes that has
    /// --min-vram-mib.
    #[arg(long)]
    gpu_model: Option<String>,
    /// Wait for the task to end, showing its progress, and print its report.
    #[arg(long)]
    wait: bool,
    #[command(flatten)]
    connection: Connection,
}

#[derive(Debug, Args)]
struct StatusArgs {
    /// The task id.
    id: u64,
    #[command(flatten)]
    connection: Connection,
}

#[derive(Debug, Args)]
struct CancelArgs {
    /// The task id.
    id: u64,
    #[command(flatten)]
    connection: Connection,
}

#[derive(Debug, Args)]
struct ResultArgs {
    /// The task id.
    id: u64,
    /// Directory to write the images (`image-<i>.png`) or the text (`output.json`, `output.txt`) to.
    #[arg(long)]
    out: PathBuf,
    /// How long to wait for the nodes' uploads to reach the relayer, in seconds.
    #[arg(long, default_value_t = 30)]
    upload_timeout_secs: u64,
    #[command(flatten)]
    connection: Connection,
}

pub(crate) fn run(cli: TaskArgsCli) -> eyre::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .wrap_err("cannot start the async runtime")?;
    runtime.block_on(async {
        match cli.command {
            TaskCommand::Create(args) => create(*args).await,
            TaskCommand::Status(args) => status(args).await,
            TaskCommand::ResolveSample(args) => resolve_sample(args).await,
            TaskCommand::Cancel(args) => cancel(args).await,
            TaskCommand::Expire(args) => expire(args).await,
            TaskCommand::Result(args) => result(args).await,
        }
    })
}

async fn create(cli: CreateArgs) -> eyre::Result<()> {
    // Args first: bad args are refused before connecting, let alone spending gas.
    let args = build_args(&cli)?;
    let bytes = verinfer_client::checked_args_bytes(&args).wrap_err("refusing the task")?;
    let client = cli.connection.client(true)?;
    let decimals = client.token_decimals().await?;
    let options = task_options(&cli, decimals)?;
    tracing::info!(args_hash = %verinfer_task::args_hash(&bytes), kind = %args.kind(), "creating task");
    let created = client
        .create(&args, &options)
        .await
        .wrap_err("cannot create the task")?;
    println!(
        "{}",
        created_line(
            &created,
            cli.fee.is_none(),
            cli.gpu_model.is_none(),
            decimals
        )
    );
    if cli.wait {
        let task = wait_with_progress(&client, created.task_id).await?;
        let report = client.task_report(task.task_id).await?;
        print!("{}", table::render(&report, decimals));
        if !report.task.is_sampled() {
            // A sampled task's table has its validation line already.
            println!("validation: {}", report.validation_line());
        }
        if task.status == TaskStatus::Validated {
            println!(
                "fetch the result with: verinfer task result {} --out DIR --deployment {}",
                task.task_id,
                cli.connection.deployment.display()
            );
        }
        if let Some(line) = refund_line(&client, &task).await? {
            println!("{line}");
        }
    }
    Ok(())
}

/// The client's options from the command line, the fee in base units of `decimals`.
fn task_options(cli: &CreateArgs, decimals: TokenDecimals) -> eyre::Result<TaskOptions> {
    let fee = match &cli.fee {
        Some(fee) => Some(fee.to_units(decimals).wrap_err("--fee")?),
        None => None,
    };
    Ok(TaskOptions {
        fee,
        min_vram_mib: cli.min_vram_mib,
        gpu_model: cli.gpu_model.clone(),
        mode: if cli.sampled {
            ValidationMode::Sampled
        } else {
            ValidationMode::Full
        },
    })
}

/// `task N created (...)`: the validation mode, the fee and GPU model, saying which were
/// defaults, and whether a draw started it; amounts in tokens of `decimals`.
fn created_line(
    created: &CreatedTask,
    default_fee: bool,
    default_model: bool,
    decimals: TokenDecimals,
) -> String {
    let format_tokens = |units| decimals.format(units);
    let sampled = created.mode == ValidationMode::Sampled;
    let minimum = if sampled {
        "the network minimum for a sampled task"
    } else {
        "the network minimum"
    };
    let mut fee = if default_fee {
        format!("fee {} tokens: {minimum}", format_tokens(created.fee))
    } else {
        format!(
            "fee {} tokens, {}x {minimum} of {} tokens",
            format_tokens(created.fee),
            fee_multiple(created.fee, created.min_fee),
            format_tokens(created.min_fee)
        )
    };
    if let Some(maximum) = created.max_fee {
        fee.push_str(&format!(" (maximum {} tokens)", format_tokens(maximum)));
    }
    let mode = if sampled {
        "sampled validation: one node computes, two more check it with probability p"
    } else {
        "full validation: three nodes"
    };
    let model = match &created.gpu_model {
        Some(model) if default_model => format!(
            "; GPU model {:?} ({} MiB), chosen: the registered model with the most available nodes ({})",
            model.name, model.vram_mib, model.available_nodes
        ),
        Some(model) => format!("; GPU model {:?} ({} MiB)", model.name, model.vram_mib),
        None => String::new(),
    };
    let state = match (created.started, sampled) {
        (true, false) => "drawn: three nodes selected",
        (true, true) => "drawn: its first node selected",
        (false, false) => "queued until a draw finds three suitable nodes",
        (false, true) => "queued until a draw finds a suitable node",
    };
    format!(
        "task {} created ({mode}; {fee}{model}; {state}; tx {}{}; args {})",
        created.task_id,
        created.tx,
        created
            .draw_tx
            .map(|tx| format!(", drawTasks tx {tx}"))
            .unwrap_or_default(),
        created.args_hash
    )
}

/// `fee / minimum` with two decimals ("1.00" at the minimum).
fn fee_multiple(fee: u128, minimum: u128) -> String {
    if minimum == 0 {
        return "any".to_owned();
    }
    let hundredths = fee.saturating_mul(100) / minimum;
    format!("{}.{:02}", hundredths / 100, hundredths % 100)
}

/// For a task that ended without validation (its fee credited back, not sent): what the
/// account can withdraw and how.
pub(crate) async fn refund_line(client: &Client, task: &ChainTask) -> eyre::Result<Option<String>> {
    let why = match (task.status, task.is_sampled() && !task.checked) {
        (TaskStatus::Expired, _) if task.checked => {
            "expired waiting for checkers (no draw found two suitable checkers in time; its first node was released unpaid)"
        }
        (TaskStatus::Expired, _) => "expired in its queue (no draw found suitable nodes in time)",
        (TaskStatus::Aborted, true) => {
            "was aborted (its node did not commit, or neither revealed nor had the check started, in time)"
        }
        (TaskStatus::Aborted, false) => "was aborted (no two results agreed)",
        (TaskStatus::Errored, _) => "ended errored (its args were reported invalid)",
        _ => return Ok(None),
    };
    let claimable = client.claimable_of(task.creator).await?;
    let decimals = client.token_decimals().await?;
    Ok(Some(format!(
        "task {} {why}: its fee of {} tokens was credited to its creator {}, who can withdraw {} tokens in all with `verinfer withdraw`",
        task.task_id,
        decimals.format(task.fee),
        task.creator,
        decimals.format(claimable)
    )))
}

async fn status(cli: StatusArgs) -> eyre::Result<()> {
    let client = cli.connection.client(false)?;
    let status = client.task_status(cli.id).await?;
    let report = client.task_report(cli.id).await?;
    print!("{}", table::render(&report, client.token_decimals().await?));
    if let Some(line) = refund_line(&client, &status.chain).await? {
        println!("{line}");
    }
    if !status.chain.is_sampled() {
        // A sampled task's table has its validation line already.
        println!("validation: {}", status.validation_line());
    }
    match &status.relayer {
        Ok(view) => println!(
            "relayer: indexed as {:?} at block {}; args {}; {}",
            view.status,
            view.updated_block,
            if view.args_available {
                "held"
            } else {
                "missing"
            },
            uploads_phrase(
                view.settlement
                    .as_ref()
                    .map(|settlement| settlement.outcome),
                &view.nodes
            )
        ),
        Err(error) => println!("relayer: {error}"),
    }
    Ok(())
}

/// The relayer's uploads of a task, counted among the nodes that can upload: the agreeing ones
/// of a validated task (the relayer serves no other result).
fn uploads_phrase(
    outcome: Option<TaskStatus>,
    nodes: &[verinfer_wire::types::TaskNodeView],
) -> String {
    match outcome {
        None => return "uploads once the task is validated".to_owned(),
        Some(TaskStatus::Validated) => {}
        Some(_) => return "no result to upload".to_owned(),
    }
    let agreeing: Vec<_> = nodes
        .iter()
        .filter(|node| node.agreed == Some(true))
        .collect();
    let uploaded = agreeing.iter().filter(|node| node.uploaded).count();
    match agreeing.len() {
        1 => format!("uploads from {uploaded} of the 1 agreeing node"),
        n => format!("uploads from {uploaded} of the {n} agreeing nodes"),
    }
}

async fn resolve_sample(cli: CancelArgs) -> eyre::Result<()> {
    let client = cli.connection.client(true)?;
    match client.sample_decision(cli.id).await {
        Ok(SampleDecision::NotYet { decidable_at }) => bail!(
            "task {}'s sample draw cannot run before block {decidable_at} (the block after its first node's commitment must be sealed first); nothing was sent",
            cli.id
        ),
        Ok(SampleDecision::Checked { recorded: true }) => {
            println!("task {}: the sample draw ran already: checked", cli.id);
            return Ok(());
        }
        Ok(SampleDecision::Unchecked { recorded: true }) => {
            println!(
                "task {}: the sample draw ran already: accepted unchecked",
                cli.id
            );
            return Ok(());
        }
        Ok(_) => {}
        Err(error) => return Err(error).wrap_err(format!("cannot resolve task {}", cli.id)),
    }
    let resolved = client
        .resolve_sample(cli.id)
        .await
        .wrap_err_with(|| format!("cannot resolve task {}", cli.id))?;
    let p = client
        .task_sampling_bps(cli.id)
        .await
        .map(|bps| format!(" (p = {})", format_bps(bps)))
        .unwrap_or_default();
    println!(
        "{}",
        resolved_line(resolved.task_id, resolved.checked, &p, resolved.tx)
    );
    Ok(())
}

/// What `resolve-sample` did, in words.
fn resolved_line(task_id: u64, checked: bool, p: &str, tx: alloy::primitives::B256) -> String {
    if checked {
        format!(
            "task {task_id}: the sample draw{p} chose a check (tx {tx}): two checkers will be drawn, compute and commit, then all three reveal"
        )
    } else {
        format!(
            "task {task_id}: the sample draw{p} chose no check (tx {tx}): its first node's reveal settles it, accepted unchecked"
        )
    }
}

async fn cancel(cli: CancelArgs) -> eyre::Result<()> {
    let client = cli.connection.client(true)?;
    let cancelled = client
        .cancel_task(cli.id)
        .await
        .wrap_err_with(|| format!("cannot cancel task {}", cli.id))?;
    println!(
        "task {} cancelled (tx {}); fee of {} tokens refunded",
        cancelled.task_id,
        cancelled.tx,
        client.token_decimals().await?.format(cancelled.refunded)
    );
    Ok(())
}

async fn expire(cli: CancelArgs) -> eyre::Result<()> {
    let client = cli.connection.client(true)?;
    let expired = client
        .expire_task(cli.id)
        .await
        .wrap_err_with(|| format!("cannot expire task {}", cli.id))?;
    let task = client.chain_task(cli.id).await?;
    println!(
        "task {} expired (tx {}); its fee of {} tokens was credited to its creator {}: `verinfer withdraw` with its key sends it",
        expired.task_id,
        expired.tx,
        client.token_decimals().await?.format(expired.refunded),
        task.creator
    );
    Ok(())
}

/// Runs `verinfer withdraw`.
pub(crate) fn run_withdraw(cli: WithdrawArgs) -> eyre::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .wrap_err("cannot start the async runtime")?;
    runtime.block_on(async {
        let client = cli.connection.client(true)?;
        let withdrawn = client.withdraw().await.wrap_err("cannot withdraw")?;
        println!(
            "withdrew {} tokens to {} (tx {})",
            client.token_decimals().await?.format(withdrawn.amount),
            withdrawn.account,
            withdrawn.tx
        );
        Ok(())
    })
}

async fn result(cli: ResultArgs) -> eyre::Result<()> {
    let client = cli.connection.client(false)?;
    let report = fetch_when_uploaded(
        &client,
        cli.id,
        &cli.out,
        Duration::from_secs(cli.upload_timeout_secs),
    )
    .await?;
    println!("{}", report.summary());
    for file in &report.files {
        println!("wrote {}", file.display());
    }
    for (node, why) in &report.skipped {
        println!("not used: node {node}: {why}");
    }
    Ok(())
}

/// [`Client::fetch_result`], retried while the validated task's uploads have not reached the
/// relayer yet (nodes upload right after their reveal; the relayer indexes it first).
pub(crate) async fn fetch_when_uploaded(
    client: &Client,
    task_id: u64,
    out: &Path,
    timeout: Duration,
) -> eyre::Result<verinfer_client::ResultReport> {
    match client.fetch_result_when_ready(task_id, out, timeout).await {
        Err(error @ ClientError::ResultsNotReady { .. }) => {
            Err(error).wrap_err(format!("no upload reached the relayer within {timeout:?}"))
        }
        result => Ok(result?),
    }
}

/// Waits for the task to end, with a spinner on a terminal (log lines otherwise).
pub(crate) async fn wait_with_progress(client: &Client, task_id: u64) -> eyre::Result<ChainTask> {
    let terminal = std::io::stderr().is_terminal();
    let bar = ProgressBar::with_draw_target(
        None,
        if terminal {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    if let Ok(style) = ProgressStyle::with_template("{spinner} task {prefix}: {msg} [{elapsed}]") {
        bar.set_style(style);
    }
    bar.set_prefix(task_id.to_string());
    bar.enable_steady_tick(Duration::from_millis(120));
    let task = client
        .wait(task_id, |task| {
            let message = describe(task);
            if !terminal {
                tracing::info!(task_id, "{message}");
            }
            bar.set_message(message);
        })
        .await?;
    bar.finish_with_message(describe(&task));
    Ok(task)
}

/// One line of progress.
pub(crate) fn describe(task: &ChainTask) -> String {
    let slots = task.node_slots();
    match task.status {
        TaskStatus::Queued if task.is_sampled() => {
            "queued (sampled): waiting for a draw to find a suitable node".to_owned()
        }
        TaskStatus::Queued => "queued: waiting for a draw to find three suitable nodes".to_owned(),
        TaskStatus::Committing if task.is_sampled() && task.checked => format!(
            "checked: the checkers compute and commit ({}/3 committed)",
            task.committed()
        ),
        TaskStatus::Committing => format!(
            "computing and committing ({}/{slots} committed)",
            task.committed()
        ),
        TaskStatus::Revealing => format!("revealing ({}/{slots} revealed)", task.revealed()),
        TaskStatus::AwaitingSample => format!(
            "committed; block {}'s hash decides whether two more nodes check it",
            task.sample_block
        ),
        TaskStatus::CheckQueued => {
            "chosen for a check: waiting for a draw to find two checkers".to_owned()
        }
        status => status.to_string(),
    }
}

fn build_args(cli: &CreateArgs) -> eyre::Result<TaskArgs> {
    if let Some(path) = &cli.args {
        let bytes =
            std::fs::read(path).wrap_err_with(|| format!("cannot read {}", path.display()))?;
        let args = TaskArgs::from_slice(&bytes).wrap_err_with(|| {
            format!(
                "{} holds invalid task args; refusing the task before any gas is spent",
                path.display()
            )
        })?;
        let flag_kind = match (cli.image, cli.text) {
            (true, _) => Some(verinfer_task::TaskKind::Image),
            (_, true) => Some(verinfer_task::TaskKind::Text),
            _ => None,
        };
        if let Some(kind) = flag_kind
            && kind != args.kind()
        {
            bail!(
                "{} holds {} args but --{kind} was given",
                path.display(),
                args.kind()
            );
        }
        return Ok(args);
    }
    if !cli.image && !cli.text {
        bail!("say --image or --text (or give the whole args document with --args FILE)");
    }
    let prompt = cli
        .prompt
        .clone()
        .ok_or_else(|| eyre!("--prompt is needed without --args"))?;
    let model = model_ref(cli)?;
    let args = if cli.image {
        TaskArgs::Image(ImageArgs {
            version: ARGS_VERSION,
            model,
            prompt,
            negative_prompt: None,
            width: cli.width,
            height: cli.height,
            steps: cli.steps,
            guidance_scale: cli.guidance_scale,
            scheduler: Scheduler::Ddim,
            num_images: cli.num_images,
            seed: cli.seed,
            precision: Precision::F32,
        })
    } else {
        TaskArgs::Text(TextArgs {
            version: ARGS_VERSION,
            model,
            input: TextInput::Prompt(prompt),
            max_tokens: cli.max_tokens,
            sampling: Sampling::Greedy {},
            seed: cli.seed,
            stop: Vec::new(),
        })
    };
    args.validate()
        .wrap_err("refusing the task before any gas is spent")?;
    Ok(args)
}

fn model_ref(cli: &CreateArgs) -> eyre::Result<ModelRef> {
    if let Some(dir) = &cli.model {
        return ModelRef::from_dir(dir)
            .wrap_err_with(|| format!("cannot digest the model directory {}", dir.display()));
    }
    match (&cli.model_digest, &cli.model_name) {
        (Some(digest), Some(name)) => Ok(ModelRef {
            name: name.clone(),
            digest: digest.clone(),
        }),
        _ => bail!("name the model: --model DIR, or --model-digest sha256:... --model-name NAME"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One token of 18 decimals (the devnet's mock token), in base units.
    const TOKEN: u128 = 1_000_000_000_000_000_000;

    fn decimals(n: u8) -> TokenDecimals {
        TokenDecimals::new(n).expect("at most 77")
    }

    #[test]
    fn uploads_are_counted_among_the_agreeing_nodes() {
        use alloy::primitives::Address;
        let node = |agreed: bool, uploaded: bool| verinfer_wire::types::TaskNodeView {
            slot: 0,
            node: Address::ZERO,
            commitment: None,
            phashes: None,
            text_digest: None,
            invalid_args: false,
            agreed: Some(agreed),
            uploaded,
        };
        let nodes = [node(true, true), node(true, true), node(false, false)];
        assert_eq!(
            uploads_phrase(Some(TaskStatus::Validated), &nodes),
            "uploads from 2 of the 2 agreeing nodes"
        );
        assert_eq!(
            uploads_phrase(Some(TaskStatus::Validated), &[node(true, false)]),
            "uploads from 0 of the 1 agreeing node"
        );
        assert_eq!(
            uploads_phrase(None, &nodes),
            "uploads once the task is validated"
        );
        assert_eq!(
            uploads_phrase(Some(TaskStatus::Aborted), &nodes),
            "no result to upload"
        );
    }

    #[test]
    fn fee_multiples_show_two_decimals() {
        assert_eq!(fee_multiple(10, 10), "1.00");
        assert_eq!(fee_multiple(25, 10), "2.50");
        assert_eq!(fee_multiple(1, 3), "0.33");
        assert_eq!(fee_multiple(5, 0), "any");
    }

    fn create(argv: &[&str]) -> CreateArgs {
        #[derive(Debug, clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: CreateArgs,
        }
        let mut full = vec!["create", "--deployment", "d.json"];
        full.extend_from_slice(argv);
        <Cli as clap::Parser>::try_parse_from(full)
            .expect("parses")
            .args
    }

    fn created(mode: ValidationMode, max_fee: Option<u128>) -> CreatedTask {
        CreatedTask {
            task_id: 4,
            args_hash: alloy::primitives::B256::ZERO,
            tx: alloy::primitives::B256::ZERO,
            fee: 4 * TOKEN,
            min_fee: 4 * TOKEN,
            max_fee,
            mode,
            gpu_model: None,
            draw_tx: None,
            started: true,
        }
    }

    #[test]
    fn sampled_flag_selects_sampled_validation() {
        let d18 = decimals(18);
        assert_eq!(
            task_options(&create(&["--image"]), d18).unwrap().mode,
            ValidationMode::Full
        );
        let options = task_options(&create(&["--image", "--sampled", "--fee", "4"]), d18).unwrap();
        assert_eq!(options.mode, ValidationMode::Sampled);
        assert_eq!(options.fee, Some(4 * TOKEN));
    }

    #[test]
    fn created_lines_name_the_validation_mode() {
        let line = created_line(
            &created(ValidationMode::Sampled, Some(50 * TOKEN)),
            true,
            true,
            decimals(18),
        );
        assert!(line.contains("sampled validation"), "{line}");
        assert!(
            line.contains(
                "fee 4 tokens: the network minimum for a sampled task (maximum 50 tokens)"
            ),
            "{line}"
        );
        assert!(line.contains("its first node selected"), "{line}");
        let line = created_line(
            &created(ValidationMode::Full, None),
            true,
            true,
            decimals(18),
        );
        assert!(line.contains("full validation: three nodes"), "{line}");
        assert!(
            line.contains("three nodes selected") && !line.contains("maximum"),
            "{line}"
        );
    }

    #[test]
    fn resolved_lines_say_what_comes_next() {
        let tx = alloy::primitives::B256::ZERO;
        let line = resolved_line(3, true, " (p = 5%)", tx);
        assert!(line.contains("draw (p = 5%) chose a check"), "{line}");
        assert!(resolved_line(3, false, "", tx).contains("accepted unchecked"));
    }

    #[test]
    fn fees_are_read_in_the_tokens_decimals() {
        // A staking token of 6 decimals: `--fee 1.5` is 1.5 of its tokens.
        let d6 = decimals(6);
        let options = task_options(&create(&["--image", "--fee", "1.5"]), d6).unwrap();
        assert_eq!(options.fee, Some(1_500_000));
        let error = task_options(&create(&["--image", "--fee", "0.0000001"]), d6).unwrap_err();
        let message = format!("{error:#}");
        assert!(
            message.contains("--fee")
                && message.contains("has 7 decimals but the token has only 6"),
            "{message}"
        );
        // The same text with 18 decimals is exact.
        let options =
            task_options(&create(&["--image", "--fee", "0.0000001"]), decimals(18)).unwrap();
        assert_eq!(options.fee, Some(TOKEN / 10_000_000));
        let line = created_line(
            &CreatedTask {
                fee: 2_500_000,
                min_fee: 1_000_000,
                ..created(ValidationMode::Full, None)
            },
            false,
            true,
            d6,
        );
        assert!(
            line.contains("fee 2.5 tokens, 2.50x the network minimum of 1 tokens"),
            "{line}"
        );
    }

    #[test]
    fn malformed_fees_are_refused_while_parsing() {
        #[derive(Debug, clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: CreateArgs,
        }
        for fee in ["1e3", ".", "ten", "+1"] {
            let parsed = <Cli as clap::Parser>::try_parse_from([
                "create",
                "--deployment",
                "d.json",
                "--image",
                "--fee",
                fee,
            ]);
            let error = parsed.expect_err("refused").to_string();
            assert!(error.contains("is not a token amount"), "{fee}: {error}");
        }
    }
}
