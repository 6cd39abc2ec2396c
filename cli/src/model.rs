//! `verinfer model ...`: tiny test models, model digests, and the precision comparison.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use eyre::WrapErr;
use verinfer_inference::{
    DeviceSpec, ImageGenParams, ImagePipeline, Precision, SchedulerKind, make_tiny_models,
};

use crate::progress::StepProgress;

/// Model utilities.
#[derive(Debug, Subcommand)]
pub(crate) enum ModelCommand {
    /// Write tiny random-weight models (`tiny-sd/`, `tiny-sdxl/`, `tiny-llama/`) in the real layouts.
    MakeTiny(MakeTinyArgs),
    /// Print the digest (`sha256:...`) of a model directory, as task args reference it.
    Digest(DigestArgs),
    /// Run one image task in f32 and in a reduced precision, and with two seeds, and print
    /// the per-image pHash Hamming distances.
    ComparePrecision(ComparePrecisionArgs),
}

#[derive(Debug, Args)]
pub(crate) struct MakeTinyArgs {
    /// Directory to create `tiny-sd/`, `tiny-sdxl/` and `tiny-llama/` in.
    #[arg(long)]
    out: PathBuf,
    /// Seed of the random weights.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Overwrite models made with another seed.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Args)]
pub(crate) struct DigestArgs {
    /// The model directory.
    dir: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct ComparePrecisionArgs {
    /// A diffusers Stable Diffusion directory (e.g. `tiny-sd/` from `make-tiny`).
    #[arg(long)]
    model: PathBuf,
    /// Device: `cpu` or `cuda:N`.
    #[arg(long, default_value = "cpu")]
    device: DeviceSpec,
    /// The reduced precision to compare with f32: `bf16` or `f16` (default: bf16 on CUDA,
    /// f16 on the CPU, which has no bf16 matmul).
    #[arg(long, value_parser = parse_precision)]
    precision: Option<Precision>,
    /// Prompt.
    #[arg(long, default_value = "a photo of a cat sitting on a red chair")]
    prompt: String,
    /// Image side in pixels.
    #[arg(long, default_value_t = 64)]
    size: u32,
    /// Denoising steps.
    #[arg(long, default_value_t = 4)]
    steps: u32,
    /// Images per run.
    #[arg(long, default_value_t = 2)]
    num_images: u32,
    /// Guidance scale.
    #[arg(long, default_value_t = 7.5)]
    guidance_scale: f64,
    /// Seed of the reference run.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Seed of the "counterfeit" run.
    #[arg(long, default_value_t = 2)]
    other_seed: u64,
}

fn parse_precision(s: &str) -> Result<Precision, String> {
    match s {
        "f32" => Ok(Precision::F32),
        "f16" => Ok(Precision::F16),
        "bf16" => Ok(Precision::Bf16),
        other => Err(format!(
            "{other:?} is not a precision: expected f32, f16 or bf16"
        )),
    }
}

pub(crate) fn run(command: ModelCommand) -> eyre::Result<()> {
    match command {
        ModelCommand::MakeTiny(args) => {
            let started = std::time::Instant::now();
            let models = make_tiny_models(&args.out, args.seed, args.force)?;
            tracing::info!(
                elapsed_ms = started.elapsed().as_millis(),
                written = models.written,
                "tiny models ready"
            );
            for dir in [&models.sd, &models.sdxl, &models.llama] {
                let digest = verinfer_task::model_digest_cached(dir)?;
                println!("{digest} {}", dir.display());
            }
            Ok(())
        }
        ModelCommand::Digest(args) => {
            let digest = verinfer_task::model_digest_cached(&args.dir)
                .wrap_err_with(|| format!("cannot digest {}", args.dir.display()))?;
            println!("{digest}");
            Ok(())
        }
        ModelCommand::ComparePrecision(args) => compare_precision(args),
    }
}

fn compare_precision(args: ComparePrecisionArgs) -> eyre::Result<()> {
    let device = args.device.open()?;
    let precision = args.precision.unwrap_or(match args.device {
        DeviceSpec::Cpu => Precision::F16,
        DeviceSpec::Cuda(_) => Precision::Bf16,
    });
    let params = |seed| ImageGenParams {
        prompt: args.prompt.clone(),
        negative_prompt: None,
        width: args.size,
        height: args.size,
        steps: args.steps,
        guidance_scale: args.guidance_scale,
        scheduler: SchedulerKind::Ddim,
        num_images: args.num_images,
        seed,
    };
    let run = |pipeline: &ImagePipeline, seed: u64| -> eyre::Result<Vec<u64>> {
        let mut progress = StepProgress::new("step");
        let images = pipeline.generate(&params(seed), &mut |done, total| {
            progress.update(done, total)
        })?;
        progress.finish();
        Ok(images
            .into_iter()
            .map(|image| verinfer_phash::phash_image(&image.into()).0)
            .collect())
    };
    let reference = ImagePipeline::load(&args.model, &device, Precision::F32)?;
    let f32_hashes = run(&reference, args.seed)?;
    let other_seed_hashes = run(&reference, args.other_seed)?;
    drop(reference);
    let reduced = ImagePipeline::load(&args.model, &device, precision)?;
    let reduced_hashes = run(&reduced, args.seed)?;

    println!(
        "model: {}  device: {}  {}x{}  {} steps  ddim",
        args.model.display(),
        args.device,
        args.size,
        args.size,
        args.steps
    );
    println!(
        "image  f32 pHash          {:<4} pHash         f32-vs-{:<4}  seed {}-vs-{}",
        precision, precision, args.seed, args.other_seed
    );
    for (i, ((a, b), c)) in f32_hashes
        .iter()
        .zip(&reduced_hashes)
        .zip(&other_seed_hashes)
        .enumerate()
    {
        println!(
            "{i:>5}  {a:#018x} {b:#018x}  {:>11}  {:>10}",
            (a ^ b).count_ones(),
            (a ^ c).count_ones()
        );
    }
    Ok(())
}
