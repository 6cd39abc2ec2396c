//! `verinfer run-task`: run one task's args against this node's models and print the result
//! digest (what the node would commit to).

use std::{fs, path::PathBuf};

use clap::Args;
use eyre::{WrapErr, bail};
use verinfer_inference::{
    DeviceSpec, ImageGenParams, ImagePipeline, TextGenParams, TextPipeline, encode_png,
};
use verinfer_task::{ModelStore, TaskArgs, TextOutput, text_digest};

use crate::progress::StepProgress;

/// Run a task locally: validate its args, find the model by digest, generate, write the
/// outputs and print the result digest (image tasks: one pHash per line; text tasks: the
/// bytes32 text digest).
#[derive(Debug, Args)]
pub(crate) struct RunTaskArgs {
    /// The task args file (the exact bytes whose keccak256 the chain holds).
    #[arg(long)]
    args: PathBuf,
    /// Directory whose subdirectories are the models this node holds.
    #[arg(long)]
    models: PathBuf,
    /// Output directory: `image-0.png`, ... or `output.json`.
    #[arg(long)]
    out: PathBuf,
    /// Device: `cpu` or `cuda:N`.
    #[arg(long, default_value = "cpu")]
    device: DeviceSpec,
}

pub(crate) fn run(cli: RunTaskArgs) -> eyre::Result<()> {
    let bytes =
        fs::read(&cli.args).wrap_err_with(|| format!("cannot read {}", cli.args.display()))?;
    let args = TaskArgs::from_slice(&bytes)
        .wrap_err_with(|| format!("{} is not valid task args", cli.args.display()))?;
    let store = ModelStore::open([&cli.models])?;
    let model_dir = store.resolve(args.model())?.to_owned();
    tracing::info!(model = %args.model().name, dir = %model_dir.display(), kind = %args.kind(), "running task");
    let device = cli.device.open()?;
    fs::create_dir_all(&cli.out)
        .wrap_err_with(|| format!("cannot create {}", cli.out.display()))?;

    match &args {
        TaskArgs::Image(image_args) => {
            let pipeline = ImagePipeline::load(&model_dir, &device, image_args.precision.into())?;
            let mut progress = StepProgress::new("step");
            let images = pipeline
                .generate(&ImageGenParams::from(image_args), &mut |done, total| {
                    progress.update(done, total)
                })?;
            progress.finish();
            if images.len() != image_args.num_images as usize {
                bail!(
                    "generated {} images for num_images {}",
                    images.len(),
                    image_args.num_images
                );
            }
            let mut phashes = Vec::with_capacity(images.len());
            for (i, image) in images.into_iter().enumerate() {
                let path = cli.out.join(format!("image-{i}.png"));
                fs::write(&path, encode_png(&image)?)
                    .wrap_err_with(|| format!("cannot write {}", path.display()))?;
                phashes.push(verinfer_phash::phash_image(&image.into()).0);
            }
            for phash in phashes {
                println!("{phash:#018x}");
            }
        }
        TaskArgs::Text(text_args) => {
            let mut pipeline =
                TextPipeline::load(&model_dir, &device, verinfer_inference::Precision::F32)?;
            let mut progress = StepProgress::new("token");
            let generation = pipeline
                .generate(&TextGenParams::from(text_args), &mut |done, total| {
                    progress.update(done, total)
                })?;
            progress.finish();
            let output = TextOutput::from(generation);
            let path = cli.out.join("output.json");
            let mut json = serde_json::to_vec_pretty(&output)?;
            json.push(b'\n');
            fs::write(&path, json).wrap_err_with(|| format!("cannot write {}", path.display()))?;
            println!("{}", text_digest(&output));
        }
    }
    Ok(())
}
