//! `verinfer relayer`: runs the relayer (HTTP API + chain indexer) from `relayer.toml`.

use std::path::PathBuf;

use eyre::WrapErr as _;
use verinfer_relayer::{Relayer, RelayerConfig};

const CONFIG_HELP: &str = "\
CONFIGURATION (relayer.toml; every key also as VERINFER_RELAYER__<KEY>, nested keys joined by \"__\"):
  listen            HTTP listen address [default: 127.0.0.1:8645]
  rpc_url           JSON-RPC endpoint of the chain to index; without it the API runs without an indexer
  deployment        deployments/<chainid>.json giving chainId, verinfer and deployBlock
  chain_id          chain id (wins over the deployment file); part of every upload signature
  verinfer          Verinfer contract address (wins over the deployment file)
  deploy_block      first block to index (wins over the deployment file) [default: 0]
  data_dir          directory of the default database and blob store [default: relayer-data]
  database_url      sqlite://PATH or postgres://USER:PASS@HOST/DB [default: sqlite://<data_dir>/relayer.db]
  max_args_bytes    largest POST /v1/args body; larger gets 413 [default: 65536]
  max_upload_bytes  largest POST /v1/tasks/{id}/results body [default: 67108864]
  validate_args     reject args that fail the task-args schema with 422 [default: true]
  confirmations     blocks to stay behind the head: 0 on a devnet, 2+ on real chains [default: 0]
  poll_interval_ms  pause between indexer polls when caught up [default: 1000]
  max_block_range   largest block range of one eth_getLogs call [default: 2000]
  [blobs] kind = \"local\", path = DIR              blob directory [default: <data_dir>/blobs]
  [blobs] kind = \"s3\", bucket, region, endpoint, access_key_id, secret_access_key, allow_http, prefix
                    S3-compatible bucket (shared by relayer replicas)

See relayer/relayer.example.toml (printed by --print-example-config).";

/// Arguments of `verinfer relayer`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = CONFIG_HELP)]
pub struct RelayerArgs {
    /// The relayer.toml to read (defaults and VERINFER_RELAYER__* variables apply without one).
    #[arg(long, short, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Load the configuration, open the database and blob store, print the effective configuration (JSON), and exit.
    #[arg(long)]
    check: bool,
    /// Print a commented example relayer.toml and exit.
    #[arg(long, conflicts_with_all = ["config", "check"])]
    print_example_config: bool,
}

/// Runs `verinfer relayer`.
pub fn run(args: RelayerArgs) -> eyre::Result<()> {
    if args.print_example_config {
        print!("{}", include_str!("../../relayer/relayer.example.toml"));
        return Ok(());
    }
    let config = RelayerConfig::load(args.config.as_deref())
        .wrap_err("cannot load the relayer configuration")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .wrap_err("cannot start tokio")?;
    runtime.block_on(async move {
        let relayer = Relayer::from_config(&config)
            .await
            .wrap_err("cannot start the relayer")?;
        if args.check {
            let text = effective_config_json(&config)?;
            println!("{text}");
            eprintln!("configuration ok");
            return Ok(());
        }
        relayer
            .run(shutdown_signal())
            .await
            .wrap_err("relayer stopped")
    })
}

fn effective_config_json(config: &RelayerConfig) -> eyre::Result<String> {
    let value = serde_json::to_value(config).wrap_err("cannot show the configuration")?;
    Ok(serde_json::to_string_pretty(&value)?)
}

async fn shutdown_signal() {
    let signal = crate::signals::stop_signal().await;
    tracing::info!(signal, "shutting down");
}
