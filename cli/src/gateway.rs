//! `verinfer gateway`: the OpenAI-compatible gateway (`gateway.toml`), and its API keys.

use std::{io::Read as _, path::PathBuf};

use eyre::WrapErr as _;
use verinfer_gateway::{
    CONFIG_REFERENCE, Gateway, GatewayConfig, KEYSTORE_PASSWORD_ENV, api_key_sha256, new_api_key,
};

/// Arguments of `verinfer gateway`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = config_help())]
pub struct GatewayArgs {
    /// The gateway.toml to read (every key is listed below). Keys can be overridden by
    /// VERINFER_GATEWAY__<KEY> environment variables.
    #[arg(
        long,
        short,
        env = "VERINFER_GATEWAY_CONFIG",
        default_value = "gateway.toml"
    )]
    config: PathBuf,
    /// Print a new API key and the `[[api_keys]]` entry (its SHA-256) to add to gateway.toml,
    /// then exit. The key is shown once; the gateway keeps only its hash.
    #[arg(long, conflicts_with_all = ["hash_api_key", "print_example_config"])]
    new_api_key: bool,
    /// Read an API key on standard input and print its SHA-256 (the `sha256` of its entry).
    #[arg(long, conflicts_with = "print_example_config")]
    hash_api_key: bool,
    /// Print the commented example gateway.toml and exit.
    #[arg(long)]
    print_example_config: bool,
}

fn config_help() -> String {
    format!("Configuration reference (gateway.example.toml):\n\n{CONFIG_REFERENCE}")
}

/// Runs `verinfer gateway`.
pub fn run(args: GatewayArgs) -> eyre::Result<()> {
    if args.print_example_config {
        print!("{CONFIG_REFERENCE}");
        return Ok(());
    }
    if args.new_api_key {
        let key = new_api_key();
        println!("API key (give it to its user; it is not stored): {key}");
        println!();
        println!("[[api_keys]]");
        println!("name = \"CHANGE-ME\"");
        println!("sha256 = \"{}\"", api_key_sha256(&key));
        println!("budget = {{ per_day = \"100\" }}");
        return Ok(());
    }
    if args.hash_api_key {
        let mut key = String::new();
        std::io::stdin()
            .read_to_string(&mut key)
            .wrap_err("cannot read the API key on standard input")?;
        let key = key.trim();
        eyre::ensure!(!key.is_empty(), "no API key on standard input");
        println!("{}", api_key_sha256(key));
        return Ok(());
    }
    let config = GatewayConfig::load(Some(&args.config))
        .wrap_err("cannot load the gateway configuration")?;
    let signer = verinfer_config::key::load_signer(&config.key, KEYSTORE_PASSWORD_ENV)
        .wrap_err("cannot load the gateway's creator key")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .wrap_err("cannot start tokio")?;
    runtime.block_on(async move {
        let gateway = Gateway::new(&config, signer)
            .await
            .wrap_err("cannot start the gateway")?;
        let listener = gateway.bind().await?;
        let addr = listener.local_addr()?;
        println!(
            "gateway serving on http://{addr}/v1 (account {}); OPENAI_BASE_URL=http://{addr}/v1",
            gateway.account()
        );
        gateway
            .serve(listener, async {
                let signal = crate::signals::stop_signal().await;
                tracing::info!(signal, "shutting down");
            })
            .await
            .wrap_err("gateway stopped")
    })
}
