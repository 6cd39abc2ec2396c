//! `verinfer`: the one user-facing binary. Each subcommand lives in its own module.
//!
//! The binary edge: it may depend on every verinfer crate and reports errors with `eyre`; the
//! libraries it wraps never depend on it.

mod admin;
mod calibrate;
mod devnet;
mod gateway;
mod identity;
mod model;
mod node;
mod phash;
mod progress;
mod relayer;
mod report;
mod run_task;
mod signals;
mod task;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "verinfer",
    version,
    about = "Validation of decentralized AI inference, on-chain"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Model utilities: tiny test models, digests, precision comparison.
    #[command(subcommand)]
    Model(model::ModelCommand),
    /// Operate a node: run the daemon (`node run`), show its status (`node status`), add stake
    /// (`node add-stake`), leave the network (`node leave`) or withdraw its credited tokens
    /// (`node withdraw`).
    Node(node::NodeArgs),
    /// Print this node's hardware identity (GPU model and memory, or CPU).
    Identity(identity::IdentityArgs),
    /// Run one task locally and print its result digest.
    RunTask(run_task::RunTaskArgs),
    /// Print the perceptual hash (imagehash-compatible pHash) of image files.
    Phash(phash::PhashArgs),
    /// Run the relayer: stores task args and verified results off-chain, indexes the chain
    /// (`--config relayer.toml`).
    Relayer(relayer::RelayerArgs),
    /// Create tasks, follow them, cancel or expire queued ones, and fetch their results verified
    /// against the chain.
    Task(task::TaskArgsCli),
    /// Withdraw everything the contract credited to your account (refunds of aborted, errored
    /// and expired tasks, slash rewards, returned stakes), with the key in $VERINFER_KEY.
    Withdraw(task::WithdrawArgs),
    /// The contract owner's commands: the GPU model registry
    /// (`admin gpu-model add|list|set-active`) and protocol parameters
    /// (`admin params show|schedule|cancel`).
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// Run a local network (anvil, contracts, relayer, nodes on tiny models) and push an image
    /// task and a text task through it.
    Devnet(devnet::DevnetArgs),
    /// Show the relayer's calibration of the pHash threshold: distances between honest nodes'
    /// images by GPU-model pair and precision, against the threshold, and a suggested threshold.
    Calibrate(calibrate::CalibrateArgs),
    /// Run the OpenAI-compatible gateway (`--config gateway.toml`): chat completions and image
    /// generations computed by the network and verified against the chain, for the OpenAI SDKs.
    /// `--new-api-key` makes an API key.
    Gateway(gateway::GatewayArgs),
}

fn main() -> eyre::Result<()> {
    report::install();
    let cli = Cli::parse();
    // The devnet tells its story in its own progress lines; its services' logs (warnings and up
    // by default) stay on stderr for when something goes wrong. RUST_LOG overrides either.
    let default_level = if matches!(cli.command, Command::Devnet(_)) {
        "warn"
    } else {
        "info"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(report::stderr_color())
        .init();
    let result = match cli.command {
        Command::Model(command) => model::run(command),
        Command::Node(args) => node::run(args),
        Command::Identity(args) => identity::run(args),
        Command::RunTask(args) => run_task::run(args),
        Command::Phash(args) => phash::run(args),
        Command::Relayer(args) => relayer::run(args),
        Command::Task(args) => task::run(args),
        Command::Withdraw(args) => task::run_withdraw(args),
        Command::Admin(command) => admin::run(command),
        Command::Devnet(args) => devnet::run(args),
        Command::Calibrate(args) => calibrate::run(args),
        Command::Gateway(args) => gateway::run(args),
    };
    // A certificate failure deep in the chain ("error sending request" on top) leads the report.
    result.map_err(
        |report| match verinfer_wire::tls::tls_problem(report.as_ref()) {
            // Unless the message says it already (the relayer client's and RPC errors do).
            Some(problem) if !report.to_string().contains(&problem.to_string()) => {
                report.wrap_err(problem.to_string())
            }
            _ => report,
        },
    )
}
