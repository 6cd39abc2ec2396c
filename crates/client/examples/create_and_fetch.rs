//! Creates an image task on a running verinfer network, waits for it, and fetches its images
//! verified against the chain.
//!
//! ```sh
//! cargo run --locked -p verinfer -- devnet --keep-running --port 8545 --relayer-port 8645   # prints the values below
//! VERINFER_KEY=0x... cargo run -p verinfer-client --example create_and_fetch -- \
//!     http://127.0.0.1:8545 http://127.0.0.1:8645 .verinfer/devnet/deployments/31337.json sha256:...
//! ```
//!
//! `VERINFER_KEY` is the creator key the devnet prints and `sha256:...` the tiny-sd digest it
//! prints (without `--port`/`--relayer-port` it picks free ports: pass the URLs it prints). The
//! images are written to `task-images/` in the current directory.

use std::{error::Error, path::Path, time::Duration};

use verinfer_client::{Client, Deployment};
use verinfer_task::{ImageArgs, ModelRef, Precision, Scheduler};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let mut argv = std::env::args().skip(1);
    let usage = "usage: create_and_fetch <rpc-url> <relayer-url> <deployment.json> <model digest>";
    let rpc_url = argv.next().ok_or(usage)?.parse()?;
    let relayer_url = argv.next().ok_or(usage)?.parse()?;
    let deployment = Deployment::load(argv.next().ok_or(usage)?)?;
    let digest = argv.next().ok_or(usage)?;
    let signer = std::env::var("VERINFER_KEY")
        .map_err(|_| "set VERINFER_KEY to the creator's private key")?
        .parse()?;

    let client = Client::new(rpc_url, signer, deployment, relayer_url);
    let args = ImageArgs {
        version: verinfer_task::ARGS_VERSION,
        model: ModelRef {
            name: "tiny-sd".into(),
            digest,
        },
        prompt: "a lighthouse at dusk".into(),
        negative_prompt: None,
        width: 64,
        height: 64,
        steps: 4,
        guidance_scale: 7.5,
        scheduler: Scheduler::Ddim,
        num_images: 2,
        seed: 42,
        precision: Precision::F32,
    };
    // Invalid args fail here, before any gas is spent. No fee given: the network's minimum.
    let created = client.create_image_task(args, None, 0).await?;
    println!(
        "task {} created (fee {} token units, tx {})",
        created.task_id, created.fee, created.tx
    );

    let task = client
        .wait(created.task_id, |task| {
            println!("task {}: {}", task.task_id, task.status)
        })
        .await?;
    println!("task {} is {}", task.task_id, task.status);

    // Nodes upload once the task is settled: wait up to 30 s for their images to arrive.
    let result = client
        .fetch_result_when_ready(
            task.task_id,
            Path::new("task-images"),
            Duration::from_secs(30),
        )
        .await?;
    println!("{}", result.summary());
    for file in &result.files {
        println!("wrote {}", file.display());
    }
    Ok(())
}
