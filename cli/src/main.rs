//! `verinfer`: the one user-facing binary. Each subcommand lives in its own module.

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "verinfer", version, about = "Validation of decentralized AI inference, on-chain")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {}

fn main() -> eyre::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {}
}
