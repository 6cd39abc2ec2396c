//! `verinfer node`: run the node daemon, or show a node's status.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use eyre::WrapErr as _;
use verinfer_node::{CONFIG_REFERENCE, Node, NodeConfig};

/// Run a verinfer node, or show its status.
#[derive(Debug, Args)]
pub struct NodeArgs {
    #[command(subcommand)]
    command: NodeCommand,
}

#[derive(Debug, Subcommand)]
enum NodeCommand {
    /// Run the node daemon: join the network if needed, then compute, commit, reveal, settle and
    /// upload every task that selects this node, until Ctrl-C or SIGTERM (which finish the
    /// current step; a second one exits at once). Prints a one-line summary of start-up on stdout.
    #[command(after_long_help = config_help())]
    Run(ConfigArg),
    /// Show the node's registration, balance and task records (safe while the daemon runs).
    #[command(after_long_help = config_help())]
    Status(ConfigArg),
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
    }
}

fn load(path: &PathBuf) -> eyre::Result<NodeConfig> {
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
    node.run(shutdown).await.wrap_err("the node stopped")?;
    Ok(())
}

