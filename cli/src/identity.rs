//! `verinfer identity`: the hardware this node is pooled by.

use clap::Args;
use verinfer_inference::GpuIdentity;

/// Print this node's GPU model and memory (NVML), or its CPU model and RAM without a GPU.
#[derive(Debug, Args)]
pub(crate) struct IdentityArgs {
    /// Print JSON (`{"model": ..., "vram_mib": ...}`) instead of text.
    #[arg(long)]
    json: bool,
    /// Describe this GPU ordinal instead of GPU 0 / the CPU fallback.
    #[arg(long)]
    gpu: Option<u32>,
}

pub(crate) fn run(args: IdentityArgs) -> eyre::Result<()> {
    let identity = match args.gpu {
        Some(ordinal) => GpuIdentity::gpu(ordinal)?,
        None => GpuIdentity::detect()?,
    };
    if args.json {
        println!("{}", serde_json::to_string(&identity)?);
    } else {
        println!("model: {}", identity.model);
        println!("vram_mib: {}", identity.vram_mib);
    }
    Ok(())
}
