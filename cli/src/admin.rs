//! `verinfer admin ...`: the contract owner's commands: the GPU model registry
//! (`gpu-model add|list|set-active`) and the parameter schedule (`params show|schedule|cancel`).

use std::{
    path::PathBuf,
    time::{SystemTime, UNIX_EPOCH},
};

use alloy::{primitives::aliases::U96, signers::local::PrivateKeySigner};
use clap::{Args, Subcommand};
use eyre::{WrapErr, bail, eyre};
use url::Url;
use verinfer_abi::{TokenAmountText, TokenDecimals, format_bps};
use verinfer_client::{
    Client, Deployment, Params,
    admin::{ParamsScheduled, ScheduledParams},
};

/// The contract owner's commands: register GPU models, open or close them to new nodes, and show,
/// schedule or cancel protocol parameters.
#[derive(Debug, Subcommand)]
pub(crate) enum AdminCommand {
    /// The GPU model registry: `add`, `list`, `set-active`.
    #[command(subcommand)]
    GpuModel(GpuModelCommand),
    /// Protocol parameters: `show` (in force and scheduled), `schedule`, `cancel`.
    #[command(subcommand)]
    Params(ParamsCommand),
}

#[derive(Debug, Subcommand)]
pub(crate) enum GpuModelCommand {
    /// Register a GPU model (owner): nodes may then join declaring it, and text tasks name it.
    /// Its VRAM is fixed for good; at most 32 models.
    Add {
        /// The model's name; the contract normalises case and whitespace
        /// ("NVIDIA  GeForce RTX 4090" is "nvidia geforce rtx 4090").
        #[arg(long)]
        name: String,
        /// The VRAM every card of the model has, in MiB (1024..=16777216).
        #[arg(long)]
        vram_mib: u32,
        #[command(flatten)]
        connection: OwnerConnection,
    },
    /// List the registered GPU models with their VRAM and available nodes (no key needed).
    List {
        #[command(flatten)]
        connection: OwnerConnection,
    },
    /// Open (`--active true`) or close (`--active false`) a registered model to new nodes
    /// (owner). Nodes registered with it keep serving; tasks may still name it.
    SetActive {
        /// The model's name (any spelling that normalises to it).
        #[arg(long)]
        name: String,
        /// `true` or `false`.
        #[arg(long, action = clap::ArgAction::Set)]
        active: bool,
        #[command(flatten)]
        connection: OwnerConnection,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ParamsCommand {
    /// Show the parameters in force (what new tasks get) and the version scheduled, if any (no
    /// key needed).
    Show {
        #[command(flatten)]
        connection: OwnerConnection,
    },
    /// Schedule a new parameter version (owner): the fields given change, the others keep their
    /// values in force now. It takes effect the contract's `paramsDelay` seconds from now (at
    /// once when that is 0) and replaces a version scheduled before; tasks created before keep
    /// their version.
    Schedule(Box<ScheduleArgs>),
    /// Withdraw the scheduled version before it takes effect (owner).
    Cancel {
        #[command(flatten)]
        connection: OwnerConnection,
    },
}

/// The parameter fields `params schedule` may change.
#[derive(Debug, Args)]
pub(crate) struct ScheduleArgs {
    /// Hamming distance (bits) up to which two image pHashes count as the same image (0..=64).
    #[arg(long)]
    threshold: Option<u8>,
    /// Smallest text pool (available nodes of the task's model and fee tier) a text task is
    /// drawn from (>= 3).
    #[arg(long)]
    min_text_pool: Option<u8>,
    /// Share of its stake a misbehaving node loses, in basis points (1..=10000).
    #[arg(long)]
    slash_share_bps: Option<u16>,
    /// Share of every slash paid to the agreeing nodes (or the creator), in basis points.
    #[arg(long)]
    slash_reward_bps: Option<u16>,
    /// Protocol's share of a validated task's fee, in basis points.
    #[arg(long)]
    protocol_fee_bps: Option<u16>,
    /// Seconds the selected nodes have to commit.
    #[arg(long)]
    commit_window: Option<u32>,
    /// Seconds the nodes have to reveal.
    #[arg(long)]
    reveal_window: Option<u32>,
    /// Seconds a task may wait in its queue before it expires (fee refunded).
    #[arg(long)]
    queue_timeout: Option<u32>,
    /// Smallest stake a node may hold, in tokens (with the staking token's decimals, e.g. `1000`
    /// or `0.5`; the same for the amounts below).
    #[arg(long)]
    min_stake: Option<TokenAmountText>,
    /// Stake each bit of threshold costs, in tokens (min stake >= this x threshold).
    #[arg(long)]
    stake_per_threshold_bit: Option<TokenAmountText>,
    /// Smallest fee of any task, in tokens.
    #[arg(long)]
    min_task_fee: Option<TokenAmountText>,
    /// Smallest fee added per image of an image task, in tokens.
    #[arg(long)]
    min_image_fee: Option<TokenAmountText>,
    /// Sampling rate p, in basis points (1..=10000): the chance that two more nodes check a
    /// sampled task's result. Sampled tasks pay at least the full minimum x (1 + 2p) / 3 and at
    /// most p x slash share x min stake / (1 - p).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=10_000))]
    sampling_bps: Option<u16>,
    #[command(flatten)]
    connection: OwnerConnection,
}

/// Where the contract is, and the owner's key.
#[derive(Debug, Args)]
pub(crate) struct OwnerConnection {
    /// JSON-RPC endpoint of the chain.
    #[arg(
        long,
        env = "VERINFER_RPC_URL",
        default_value = "http://127.0.0.1:8545"
    )]
    rpc_url: Url,
    /// The deployment record written by script/Deploy.s.sol (`deployments/<chainid>.json`).
    #[arg(long, env = "VERINFER_DEPLOYMENT")]
    deployment: PathBuf,
    /// Name of the environment variable holding the contract owner's private key (hex). Needed to
    /// change anything; showing works without it.
    #[arg(long, default_value = "VERINFER_OWNER_KEY")]
    key_env: String,
    /// An extra CA file (PEM, one or more certificates) trusted for https:// URLs besides the
    /// system's roots (SSL_CERT_FILE replaces those).
    #[arg(long, env = "VERINFER_CA_FILE", value_name = "PEM")]
    ca_file: Option<PathBuf>,
}

impl OwnerConnection {
    /// A client; `need_key` makes a missing key an error (otherwise a throwaway read-only key).
    fn client(&self, need_key: bool) -> eyre::Result<Client> {
        let deployment = Deployment::load(&self.deployment)?;
        let signer = crate::task::signer_from_env(&self.key_env, need_key, "the contract owner's")?;
        // The owner's calls never reach the relayer: any URL does.
        let relayer = Url::parse("http://127.0.0.1:8645").expect("a valid literal URL");
        Ok(Client::with_http(
            self.rpc_url.clone(),
            signer.unwrap_or_else(PrivateKeySigner::random),
            deployment,
            relayer,
            verinfer_client::tls::http_client(self.ca_file.as_deref())?,
        ))
    }
}

/// Runs `verinfer admin ...`.
pub(crate) fn run(command: AdminCommand) -> eyre::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .wrap_err("cannot start the async runtime")?;
    runtime.block_on(async {
        match command {
            AdminCommand::GpuModel(command) => gpu_model(command).await,
            AdminCommand::Params(command) => params(command).await,
        }
    })
}

async fn gpu_model(command: GpuModelCommand) -> eyre::Result<()> {
    match command {
        GpuModelCommand::Add {
            name,
            vram_mib,
            connection,
        } => {
            let client = connection.client(true)?;
            let (model, tx) = client
                .add_gpu_model(&name, vram_mib)
                .await
                .wrap_err_with(|| format!("cannot register GPU model {name:?}"))?;
            println!(
                "GPU model {:?} registered with {} MiB (id {}; tx {tx}); nodes may now join declaring it",
                model.name, model.vram_mib, model.id
            );
        }
        GpuModelCommand::List { connection } => {
            let client = connection.client(false)?;
            let models = client.gpu_models().await?;
            if models.is_empty() {
                println!(
                    "no GPU model is registered: `verinfer admin gpu-model add --name NAME --vram-mib N` registers one"
                );
                return Ok(());
            }
            let width = models
                .iter()
                .map(|model| model.name.len())
                .max()
                .unwrap_or(0)
                .max("name".len());
            println!(
                "{:<width$}  {:>10}  {:>6}  {:>9}  id",
                "name", "VRAM MiB", "active", "available"
            );
            for model in models {
                println!(
                    "{:<width$}  {:>10}  {:>6}  {:>9}  {}",
                    model.name,
                    model.vram_mib,
                    if model.active { "yes" } else { "no" },
                    model.available_nodes,
                    model.id
                );
            }
        }
        GpuModelCommand::SetActive {
            name,
            active,
            connection,
        } => {
            let client = connection.client(true)?;
            let (model, tx) = client
                .set_gpu_model_active(&name, active)
                .await
                .wrap_err_with(|| format!("cannot change GPU model {name:?}"))?;
            println!(
                "GPU model {:?} is {} (tx {tx})",
                model.name,
                if model.active {
                    "active: open to new nodes"
                } else {
                    "inactive: closed to new nodes (its nodes keep serving)"
                }
            );
        }
    }
    Ok(())
}

async fn params(command: ParamsCommand) -> eyre::Result<()> {
    match command {
        ParamsCommand::Show { connection } => {
            let client = connection.client(false)?;
            let decimals = client.token_decimals().await?;
            let (version, in_force) = client.params().await?;
            let delay = client.params_delay().await?;
            println!("in force: version {version} (new tasks run under it)");
            print!("{}", render_params(&in_force, None, decimals));
            match client.scheduled_params().await? {
                None => println!("scheduled: none (params delay {delay} s)"),
                Some(scheduled) => {
                    println!(
                        "scheduled: version {} from {} (params delay {delay} s); changes:",
                        scheduled.version,
                        when(scheduled.effective_at)
                    );
                    print!(
                        "{}",
                        render_params(&scheduled.params, Some(&in_force), decimals)
                    );
                }
            }
        }
        ParamsCommand::Schedule(args) => {
            let client = args.connection.client(true)?;
            let decimals = client.token_decimals().await?;
            let (_, current) = client.params().await?;
            let next = args.apply(&current, decimals)?;
            let replaced = client.scheduled_params().await?;
            let ParamsScheduled {
                version,
                effective_at,
                in_force,
                tx,
            } = client
                .schedule_params(next.clone())
                .await
                .wrap_err("cannot schedule the parameters")?;
            if let Some(ScheduledParams {
                version: replaced, ..
            }) = replaced
            {
                println!("version {replaced}, scheduled before, is replaced");
            }
            if in_force {
                println!("parameter version {version} is in force now (tx {tx}); changes:");
            } else {
                println!(
                    "parameter version {version} scheduled (tx {tx}): in force from {}; cancel before with `verinfer admin params cancel`; changes:",
                    when(effective_at)
                );
            }
            print!("{}", render_params(&next, Some(&current), decimals));
        }
        ParamsCommand::Cancel { connection } => {
            let client = connection.client(true)?;
            let (version, tx) = client
                .cancel_scheduled_params()
                .await
                .wrap_err("cannot cancel the scheduled parameters")?;
            println!("scheduled parameter version {version} cancelled (tx {tx})");
        }
    }
    Ok(())
}

impl ScheduleArgs {
    /// `current` with the fields given changed, amounts in tokens of `decimals`; an error when
    /// none is.
    fn apply(&self, current: &Params, decimals: TokenDecimals) -> eyre::Result<Params> {
        let tokens =
            |amount: &Option<TokenAmountText>, old: U96, name: &str| -> eyre::Result<U96> {
                match amount {
                    None => Ok(old),
                    Some(amount) => {
                        let units = amount
                            .to_units(decimals)
                            .wrap_err_with(|| format!("--{name}"))?;
                        U96::try_from(units)
                            .map_err(|_| eyre!("--{name} does not fit the contract's uint96"))
                    }
                }
            };
        let next = Params {
            threshold: self.threshold.unwrap_or(current.threshold),
            minTextPool: self.min_text_pool.unwrap_or(current.minTextPool),
            slashShareBps: self.slash_share_bps.unwrap_or(current.slashShareBps),
            slashRewardBps: self.slash_reward_bps.unwrap_or(current.slashRewardBps),
            protocolFeeBps: self.protocol_fee_bps.unwrap_or(current.protocolFeeBps),
            commitWindow: self.commit_window.unwrap_or(current.commitWindow),
            revealWindow: self.reveal_window.unwrap_or(current.revealWindow),
            queueTimeout: self.queue_timeout.unwrap_or(current.queueTimeout),
            minStake: tokens(&self.min_stake, current.minStake, "min-stake")?,
            stakePerThresholdBit: tokens(
                &self.stake_per_threshold_bit,
                current.stakePerThresholdBit,
                "stake-per-threshold-bit",
            )?,
            minTaskFee: tokens(&self.min_task_fee, current.minTaskFee, "min-task-fee")?,
            minImageFee: tokens(&self.min_image_fee, current.minImageFee, "min-image-fee")?,
            samplingBps: self.sampling_bps.unwrap_or(current.samplingBps),
        };
        if next == *current {
            bail!(
                "nothing to schedule: give at least one field that changes (--threshold, --min-text-pool, --slash-share-bps, --slash-reward-bps, --protocol-fee-bps, --commit-window, --reveal-window, --queue-timeout, --min-stake, --stake-per-threshold-bit, --min-task-fee, --min-image-fee, --sampling-bps)"
            );
        }
        Ok(next)
    }
}

/// One line per field, amounts in tokens of `decimals`; with `before`, only the fields that
/// differ, as `old -> new`.
fn render_params(params: &Params, before: Option<&Params>, decimals: TokenDecimals) -> String {
    let format_tokens = |units: U96| decimals.format(units.to::<u128>());
    let rows = |p: &Params| -> Vec<(&'static str, String)> {
        vec![
            ("threshold", format!("{} bits", p.threshold)),
            ("min text pool", format!("{} nodes", p.minTextPool)),
            ("slash share", format!("{} bps", p.slashShareBps)),
            (
                "slash reward",
                format!("{} bps of each slash", p.slashRewardBps),
            ),
            ("protocol fee", format!("{} bps", p.protocolFeeBps)),
            ("commit window", format!("{} s", p.commitWindow)),
            ("reveal window", format!("{} s", p.revealWindow)),
            ("queue timeout", format!("{} s", p.queueTimeout)),
            ("min stake", format!("{} tokens", format_tokens(p.minStake))),
            (
                "stake per threshold bit",
                format!("{} tokens", format_tokens(p.stakePerThresholdBit)),
            ),
            (
                "min task fee",
                format!("{} tokens", format_tokens(p.minTaskFee)),
            ),
            (
                "min image fee",
                format!("{} tokens per image", format_tokens(p.minImageFee)),
            ),
            (
                "sampling rate",
                format!(
                    "{} bps (p = {}: chance a sampled task is checked)",
                    p.samplingBps,
                    format_bps(p.samplingBps)
                ),
            ),
        ]
    };
    let mut out = String::new();
    let after = rows(params);
    match before {
        None => {
            for (name, value) in after {
                out.push_str(&format!("  {name:<24}{value}\n"));
            }
        }
        Some(before) => {
            for ((name, new), (_, old)) in after.into_iter().zip(rows(before)) {
                if new != old {
                    out.push_str(&format!("  {name:<24}{old} -> {new}\n"));
                }
            }
        }
    }
    out
}

/// A unix time, with how far it is from now.
fn when(unix: u64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if unix >= now {
        format!("unix time {unix} (in {} s)", unix - now)
    } else {
        format!("unix time {unix} ({} s ago)", now - unix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn current() -> Params {
        Params {
            threshold: 10,
            minTextPool: 3,
            slashShareBps: 5_000,
            slashRewardBps: 5_000,
            protocolFeeBps: 500,
            commitWindow: 300,
            revealWindow: 300,
            queueTimeout: 86_400,
            minStake: U96::from(1_000u64),
            stakePerThresholdBit: U96::from(100u64),
            minTaskFee: U96::from(1u64),
            minImageFee: U96::ZERO,
            samplingBps: 500,
        }
    }

    fn d18() -> TokenDecimals {
        TokenDecimals::new(18).expect("at most 77")
    }

    #[test]
    fn amounts_are_scheduled_and_shown_in_the_tokens_decimals() {
        // A staking token of 6 decimals.
        let d6 = TokenDecimals::new(6).expect("at most 77");
        let next = schedule(&["--min-stake", "2500.25", "--min-image-fee", "0.000001"])
            .apply(&current(), d6)
            .unwrap();
        assert_eq!(next.minStake, U96::from(2_500_250_000u64));
        assert_eq!(next.minImageFee, U96::from(1u64));
        let shown = render_params(&next, Some(&current()), d6);
        assert!(
            shown.contains("min stake               0.001 tokens -> 2500.25 tokens"),
            "{shown}"
        );
        let error = schedule(&["--min-task-fee", "0.0000005"])
            .apply(&current(), d6)
            .unwrap_err();
        let message = format!("{error:#}");
        assert!(
            message.contains("--min-task-fee")
                && message.contains("has 7 decimals but the token has only 6"),
            "{message}"
        );
    }

    fn schedule(argv: &[&str]) -> ScheduleArgs {
        #[derive(Debug, clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: ScheduleArgs,
        }
        let mut full = vec!["schedule", "--deployment", "d.json"];
        full.extend_from_slice(argv);
        <Cli as clap::Parser>::try_parse_from(full)
            .expect("parses")
            .args
    }

    #[test]
    fn schedule_changes_only_the_fields_given() {
        let next = schedule(&["--threshold", "12", "--min-task-fee", "0.5"])
            .apply(&current(), d18())
            .unwrap();
        assert_eq!(next.threshold, 12);
        assert_eq!(next.minTaskFee, U96::from(500_000_000_000_000_000u128));
        assert_eq!(
            Params {
                threshold: 10,
                minTaskFee: U96::from(1u64),
                ..next.clone()
            },
            current()
        );
        let shown = render_params(&next, Some(&current()), d18());
        assert!(
            shown.contains("threshold               10 bits -> 12 bits"),
            "{shown}"
        );
        assert_eq!(shown.lines().count(), 2, "{shown}");
    }

    #[test]
    fn sampling_rate_is_scheduled_and_shown_as_a_percentage() {
        let next = schedule(&["--sampling-bps", "1000"])
            .apply(&current(), d18())
            .unwrap();
        assert_eq!(next.samplingBps, 1_000);
        let shown = render_params(&next, Some(&current()), d18());
        assert!(
            shown.contains("sampling rate           500 bps (p = 5%: chance a sampled task is checked) -> 1000 bps (p = 10%"),
            "{shown}"
        );
        assert_eq!(shown.lines().count(), 1, "{shown}");
        #[derive(Debug, clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: ScheduleArgs,
        }
        for out_of_range in ["0", "10001"] {
            let parsed = <Cli as clap::Parser>::try_parse_from([
                "schedule",
                "--deployment",
                "d.json",
                "--sampling-bps",
                out_of_range,
            ]);
            assert!(parsed.is_err(), "{out_of_range} accepted");
        }
    }

    #[test]
    fn schedule_without_a_change_is_refused() {
        let error = schedule(&[])
            .apply(&current(), d18())
            .unwrap_err()
            .to_string();
        assert!(error.contains("nothing to schedule"), "{error}");
        let error = schedule(&["--threshold", "10"])
            .apply(&current(), d18())
            .unwrap_err()
            .to_string();
        assert!(error.contains("nothing to schedule"), "{error}");
    }
}
