//! `verinfer node`: run the node daemon, show a node's status, leave, add stake, or withdraw its
//! credited tokens.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use eyre::WrapErr as _;
use verinfer_abi::TokenAmountText;
use verinfer_node::{CONFIG_REFERENCE, LeaveOutcome, Node, NodeConfig, NodeExit};

/// Run a verinfer node (`run`), show its status (`status`), add to its stake (`add-stake`), leave
/// the network (`leave`) or withdraw what the contract credited to it (`withdraw`).
#[derive(Debug, Args)]
pub struct NodeArgs {
    #[command(subcommand)]
    command: NodeCommand,
}

#[derive(Debug, Subcommand)]
enum NodeCommand {
    /// Run the node daemon: join the network if needed (with a GPU model the contract owner
    /// registered, at the configured fee tier; a differing fee tier is set on chain), then send the
    /// draws waiting tasks are due, and compute, commit, reveal, settle and upload every task that
    /// selects this node, until Ctrl-C or SIGTERM (which finish the current step; a second one
    /// exits at once), or until the node left or was kicked and finished its tasks (it then says
    /// what it can withdraw). Prints a one-line summary of start-up on stdout.
    #[command(after_long_help = config_help())]
    Run(ConfigArg),
    /// Show the node's registration (GPU model and VRAM from the registry, fee tier), stake,
    /// claimable credit, balance and task records (safe while the daemon runs).
    #[command(after_long_help = config_help())]
    Status(ConfigArg),
    /// Leave the network with the node's key. An idle node gets its stake back at once; a node in
    /// a task leaves when that task settles (keep its daemon running until then) and its stake is
    /// then credited to it (`verinfer node withdraw` sends it).
    #[command(after_long_help = config_help())]
    Leave(ConfigArg),
    /// Send the node's account everything the contract credited to it: its stake after it left
    /// during a task or was kicked, and slash rewards (`claimable` in `node status`).
    #[command(after_long_help = config_help())]
    Withdraw(ConfigArg),
    /// Add tokens to the node's stake (approving the contract for them first when needed).
    #[command(after_long_help = config_help())]
    AddStake {
        #[command(flatten)]
        config: ConfigArg,
        /// Tokens to add, e.g. `500` or `0.5`: a decimal number of tokens with at most as many
        /// decimals as the staking token has (its `decimals()`).
        #[arg(long)]
        amount: TokenAmountText,
    },
}

#[derive(Debug, Args)]
struct ConfigArg {
    /// The node configuration file (TOML; every key is listed below). Keys can be overridden by
    /// VERINFER_NODE__<KEY> environment variables.
    #[arg(long, short, env = "VERINFER_NODE_CONFIG", default_value = "node.toml")]
    config: PathBuf,
}

fn config_help() -> String {
    format!("Configuration reference (node.example.toml):\n\n{CONFIG_REFERENCE}")
}

/// Runs `verinfer node ...`.
pub fn run(args: NodeArgs) -> eyre::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .wrap_err("cannot start the async runtime")?;
    match args.command {
        NodeCommand::Run(ConfigArg { config }) => runtime.block_on(run_daemon(config)),
        NodeCommand::Status(ConfigArg { config }) => runtime.block_on(async {
            let config = load(&config)?;
            let status = verinfer_node::status(&config).await?;
            println!("{status}");
            Ok(())
        }),
        NodeCommand::Leave(ConfigArg { config }) => runtime.block_on(async {
            let config = load(&config)?;
            let decimals = token_decimals(&config).await?;
            match verinfer_node::leave(&config)
                .await
                .wrap_err("cannot leave")?
            {
                LeaveOutcome::Left { node, returned, tx } => println!(
                    "node {node} left the network; stake of {} tokens returned (tx {tx}). \
                     Its daemon exits by itself; `verinfer node run` would join again.",
                    decimals.format(returned)
                ),
                LeaveOutcome::LeavingAfterTask { node, task_id, tx } => println!(
                    "node {node} is leaving (tx {tx}): it leaves when task {task_id} settles and \
                     its stake is credited to it then (`verinfer node withdraw` sends it). Keep \
                     its daemon running until then, or it misses the task's deadlines and is \
                     slashed; the daemon exits by itself once done."
                ),
            }
            Ok(())
        }),
        NodeCommand::Withdraw(ConfigArg { config }) => runtime.block_on(async {
            let config = load(&config)?;
            let decimals = token_decimals(&config).await?;
            let withdrawn = verinfer_node::withdraw(&config)
                .await
                .wrap_err("cannot withdraw")?;
            println!(
                "node {} withdrew {} tokens to its account (tx {})",
                withdrawn.node,
                decimals.format(withdrawn.amount),
                withdrawn.tx
            );
            Ok(())
        }),
        NodeCommand::AddStake { config, amount } => runtime.block_on(async {
            let config = load(&config.config)?;
            let decimals = token_decimals(&config).await?;
            let amount = amount.to_units(decimals).wrap_err("--amount")?;
            let added = verinfer_node::add_stake(&config, amount)
                .await
                .wrap_err("cannot add stake")?;
            let approve = added
                .approve_tx
                .map(|tx| format!("; approve tx {tx}"))
                .unwrap_or_default();
            println!(
                "node {} added {} tokens to its stake, now {} tokens (tx {}{approve})",
                added.node,
                decimals.format(added.added),
                decimals.format(added.stake),
                added.tx
            );
            Ok(())
        }),
    }
}

/// The staking token's decimals, to read and write amounts in tokens.
async fn token_decimals(config: &NodeConfig) -> eyre::Result<verinfer_abi::TokenDecimals> {
    verinfer_node::token_decimals(config)
        .await
        .wrap_err("cannot read the staking token's decimals")
}

fn load(path: &Path) -> eyre::Result<NodeConfig> {
    NodeConfig::load(Some(path)).wrap_err_with(|| format!("loading {}", path.display()))
}

async fn run_daemon(config_path: PathBuf) -> eyre::Result<()> {
    let config = load(&config_path)?;
    let node = Node::start(config)
        .await
        .wrap_err("the node could not start")?;
    println!("{}", node.summary());
    // Ctrl-C or SIGTERM (how service managers stop a daemon) finishes the current step; a
    // second one exits at once.
    let shutdown = async {
        crate::signals::stop_signal().await;
        tokio::spawn(async {
            crate::signals::stop_signal().await;
            tracing::warn!("second stop signal: exiting without finishing the current step");
            std::process::exit(130);
        });
    };
    let exit = node
        .run_to_exit(shutdown)
        .await
        .wrap_err("the node stopped")?;
    match exit {
        NodeExit::Left { .. } => println!("{exit}"),
        NodeExit::Kicked { .. } => return Err(eyre::eyre!("{exit}")),
        NodeExit::Stopped | NodeExit::Halted => {}
    }
    Ok(())
}
