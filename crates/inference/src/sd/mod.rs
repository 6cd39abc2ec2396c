//! Stable Diffusion (1.x, 2.x, SDXL / SDXL-turbo) from a diffusers directory.
//!
//! Layout read: `model_index.json`; `scheduler/scheduler_config.json`; `unet/`, `vae/`,
//! `text_encoder/` (and `text_encoder_2/` + `tokenizer_2/` for SDXL) each with `config.json`
//! and `diffusion_pytorch_model.safetensors` / `model.safetensors`; `tokenizer/` with
//! `vocab.json` + `merges.txt` or `tokenizer.json`. Architecture values come from those files.
//!
//! Determinism: the latents and all ancestral noise come from [`crate::noise`] (CPU, seeded),
//! attention is plain (no flash attention), reduced-precision GEMM is off on CUDA, the VAE
//! decodes one image at a time, and pixels are rounded the same way everywhere.

pub mod blocks;
pub mod clip;
pub mod config;
pub mod scheduler;
pub mod tokenizer;
pub mod unet;

use std::path::{Path, PathBuf};

use candle_core::{D, DType, Device, IndexOp, Tensor};
use candle_transformers::models::stable_diffusion::vae::AutoEncoderKL;
use image::RgbImage;

use crate::{
    device::Precision,
    error::{InferenceError, Result},
    noise::BatchNoise,
    weights::{WeightFiles, read_json},
};
use clip::{ClipActivation, ClipConfig, ClipTextModel};
use config::{ClipJson, ModelIndexJson, SchedulerJson, UnetConfig, UnetJson, VaeConfig, VaeJson};
use scheduler::{Scheduler, SchedulerKind};
use tokenizer::ClipTokenizer;
use unet::{AddedConditions, Unet};

/// Parameters of one image generation.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageGenParams {
    /// What to draw.
    pub prompt: String,
    /// What to steer away from; `None` is the empty prompt (zeros for SDXL, as diffusers does).
    pub negative_prompt: Option<String>,
    /// Image width in pixels, a multiple of the VAE's scale factor (8).
    pub width: u32,
    /// Image height in pixels, a multiple of the VAE's scale factor (8).
    pub height: u32,
    /// Denoising steps.
    pub steps: u32,
    /// Classifier-free guidance scale; guidance is off at `<= 1`.
    pub guidance_scale: f64,
    /// Sampling algorithm.
    pub scheduler: SchedulerKind,
    /// Images in the batch.
    pub num_images: u32,
    /// Seed of the latents and of all ancestral noise.
    pub seed: u64,
}

impl From<&verinfer_task::ImageArgs> for ImageGenParams {
    fn from(args: &verinfer_task::ImageArgs) -> Self {
        Self {
            prompt: args.prompt.clone(),
            negative_prompt: args.negative_prompt.clone(),
            width: args.width,
            height: args.height,
            steps: args.steps,
            guidance_scale: args.guidance_scale,
            scheduler: args.scheduler.into(),
            num_images: args.num_images,
            seed: args.seed,
        }
    }
}

/// Progress of a generation: `done` of `total` units (denoising steps, or generated tokens).
pub type Progress<'a> = &'a mut dyn FnMut(usize, usize);

#[derive(Debug)]
struct TextEncoder {
    tokenizer: ClipTokenizer,
    model: ClipTextModel,
    max_len: usize,
    hidden_size: usize,
}

impl TextEncoder {
    fn load(
        root: &Path,
        encoder_dir: &str,
        tokenizer_dir: &str,
        projected: bool,
        device: &Device,
    ) -> Result<Self> {
        let dir = root.join(encoder_dir);
        let config_path = dir.join("config.json");
        let json: ClipJson = read_json(&config_path, "text encoder configuration")?;
        let activation = ClipActivation::from_name(&json.hidden_act).ok_or_else(|| {
            InferenceError::config(
                &config_path,
                format!("hidden_act {:?} is not supported", json.hidden_act),
            )
        })?;
        if json.num_attention_heads == 0
            || !json.hidden_size.is_multiple_of(json.num_attention_heads)
        {
            return Err(InferenceError::config(
                &config_path,
                "hidden_size must be a multiple of num_attention_heads",
            ));
        }
        let projection_dim = if projected {
            Some(json.projection_dim.ok_or_else(|| {
                InferenceError::config(
                    &config_path,
                    "projection_dim is needed for the pooled embedding",
                )
            })?)
        } else {
            None
        };
        let config = ClipConfig {
            vocab_size: json.vocab_size,
            hidden_size: json.hidden_size,
            intermediate_size: json.intermediate_size,
            num_hidden_layers: json.num_hidden_layers,
            num_attention_heads: json.num_attention_heads,
            max_position_embeddings: json.max_position_embeddings,
            activation,
            layer_norm_eps: json.layer_norm_eps,
            projection_dim,
        };
        let weights = WeightFiles::find(&dir, "model")?;
        // Text encoders run in f32 whatever the UNet precision (cheap, and keeps prompts stable).
        let vb = weights.var_builder(DType::F32, device)?;
        let model = ClipTextModel::new(vb, &config)
            .map_err(|e| InferenceError::weights(&weights.origin, e))?;
        let tokenizer = ClipTokenizer::load(&root.join(tokenizer_dir))?;
        Ok(Self {
            tokenizer,
            model,
            max_len: json.max_position_embeddings,
            hidden_size: json.hidden_size,
        })
    }

    fn encode(&self, text: &str, device: &Device) -> Result<clip::ClipOutput> {
        let tokens = self.tokenizer.encode(text, self.max_len)?;
        if tokens.truncated {
            tracing::warn!(
                max_tokens = self.max_len,
                "prompt truncated to the text encoder's context"
            );
        }
        let ids = Tensor::new(tokens.ids.as_slice(), device)?.unsqueeze(0)?;
        Ok(self.model.forward(&ids, &[tokens.eos_position])?)
    }
}

/// A loaded Stable Diffusion model.
#[derive(Debug)]
pub struct ImagePipeline {
    dir: PathBuf,
    device: Device,
    dtype: DType,
    encoders: Vec<TextEncoder>,
    unet: Unet,
    unet_config: UnetConfig,
    vae: AutoEncoderKL,
    vae_config: VaeConfig,
    vae_dtype: DType,
    scheduler_config: SchedulerJson,
    scheduler_path: PathBuf,
    force_zeros_for_empty_prompt: bool,
}

impl ImagePipeline {
    /// Loads the diffusers directory `dir` onto `device` with UNet weights in `precision`.
    pub fn load(dir: &Path, device: &Device, precision: Precision) -> Result<Self> {
        crate::device::check_precision(device, precision)?;
        let dtype = precision.dtype();
        let index: ModelIndexJson =
            read_json(&dir.join("model_index.json"), "diffusers pipeline index")?;
        let dual = index.text_encoder_2.as_ref().is_some_and(|v| !v.is_null());
        tracing::info!(dir = %dir.display(), pipeline = %index.class_name, %precision, "loading Stable Diffusion");

        let unet_dir = dir.join("unet");
        let unet_config_path = unet_dir.join("config.json");
        let unet_config = read_json::<UnetJson>(&unet_config_path, "UNet configuration")?
            .resolve(&unet_config_path)?;

        let mut encoders = vec![TextEncoder::load(
            dir,
            "text_encoder",
            "tokenizer",
            false,
            device,
        )?];
        if dual {
            encoders.push(TextEncoder::load(
                dir,
                "text_encoder_2",
                "tokenizer_2",
                unet_config.text_time.is_some(),
                device,
            )?);
        }
        let context_dim: usize = encoders.iter().map(|e| e.hidden_size).sum();
        if context_dim != unet_config.cross_attention_dim {
            return Err(InferenceError::config(
                &unet_config_path,
                format!(
                    "cross_attention_dim {} does not match the text encoders' hidden size {context_dim}",
                    unet_config.cross_attention_dim
                ),
            ));
        }
        if let Some(text_time) = unet_config.text_time {
            let Some(second) = encoders.get(1) else {
                return Err(InferenceError::config(
                    &unet_config_path,
                    "addition_embed_type \"text_time\" needs text_encoder_2 (SDXL)",
                ));
            };
            let pooled = second.model.projection_dim().unwrap_or(0);
            if pooled + 6 * text_time.time_embed_dim != text_time.projection_input_dim {
                return Err(InferenceError::config(
                    &unet_config_path,
                    format!(
                        "projection_class_embeddings_input_dim {} is not text_encoder_2's projection_dim {pooled} + 6 x addition_time_embed_dim {}",
                        text_time.projection_input_dim, text_time.time_embed_dim
                    ),
                ));
            }
        }
        let unet_weights = WeightFiles::find(&unet_dir, "diffusion_pytorch_model")?;
        let unet = Unet::new(
            unet_weights.var_builder(dtype, device)?,
            unet_config.clone(),
        )
        .map_err(|e| InferenceError::weights(&unet_weights.origin, e))?;

        let vae_dir = dir.join("vae");
        let vae_config_path = vae_dir.join("config.json");
        let vae_config = read_json::<VaeJson>(&vae_config_path, "VAE configuration")?
            .resolve(&vae_config_path)?;
        if vae_config.candle.latent_channels != unet_config.in_channels
            || unet_config.in_channels != unet_config.out_channels
        {
            return Err(InferenceError::config(
                &vae_config_path,
                format!(
                    "latent_channels {} does not match the UNet's in/out channels {}/{}",
                    vae_config.candle.latent_channels,
                    unet_config.in_channels,
                    unet_config.out_channels
                ),
            ));
        }
        // diffusers keeps a `force_upcast` VAE (SDXL's) in f32 when the pipeline runs in f16.
        let vae_dtype = if dtype == DType::F16 && vae_config.force_upcast {
            DType::F32
        } else {
            dtype
        };
        let vae_weights = WeightFiles::find(&vae_dir, "diffusion_pytorch_model")?;
        let vae = AutoEncoderKL::new(
            vae_weights.var_builder(vae_dtype, device)?,
            vae_config.in_channels,
            vae_config.out_channels,
            vae_config.candle.clone(),
        )
        .map_err(|e| InferenceError::weights(&vae_weights.origin, e))?;

        let scheduler_path = dir.join("scheduler").join("scheduler_config.json");
        let scheduler_config: SchedulerJson =
            read_json(&scheduler_path, "scheduler configuration")?;
        Ok(Self {
            dir: dir.to_owned(),
            device: device.clone(),
            dtype,
            encoders,
            unet,
            unet_config,
            vae,
            vae_config,
            vae_dtype,
            scheduler_config,
            scheduler_path,
            force_zeros_for_empty_prompt: index.force_zeros_for_empty_prompt,
        })
    }

    /// The model directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Image pixels per latent pixel along a side (8 for every released SD model).
    pub fn vae_scale_factor(&self) -> usize {
        self.vae_config.scale_factor
    }

    /// The UNet.
    pub fn unet(&self) -> &Unet {
        &self.unet
    }

    /// The VAE.
    pub fn vae(&self) -> &AutoEncoderKL {
        &self.vae
    }

    /// The text conditioning of `params`, one row per prompt: `(rows, tokens, dim)` hidden
    /// states (the negative prompt's row first when guidance is on) and, for SDXL, the pooled
    /// embeddings `(rows, dim)`.
    pub fn text_conditioning(&self, params: &ImageGenParams) -> Result<(Tensor, Option<Tensor>)> {
        self.condition(params, params.guidance_scale > 1.0, 1)
    }

    /// Generates `params.num_images` images. `progress` is called after every denoising step.
    pub fn generate(
        &self,
        params: &ImageGenParams,
        progress: Progress<'_>,
    ) -> Result<Vec<RgbImage>> {
        let scale = self.vae_config.scale_factor;
        for (name, side) in [("width", params.width), ("height", params.height)] {
            if side == 0 || !(side as usize).is_multiple_of(scale) {
                return Err(InferenceError::InvalidParams(format!(
                    "{name} {side} is not a positive multiple of {scale}"
                )));
            }
        }
        if params.num_images == 0 {
            return Err(InferenceError::InvalidParams("num_images is 0".to_owned()));
        }
        if !params.guidance_scale.is_finite() {
            return Err(InferenceError::InvalidParams(format!(
                "guidance_scale {} is not finite",
                params.guidance_scale
            )));
        }
        let scheduler = Scheduler::new(
            params.scheduler,
            &self.scheduler_config,
            params.steps as usize,
            &self.scheduler_path,
        )?;
        let batch = params.num_images as usize;
        let guided = params.guidance_scale > 1.0;

        let (context, pooled) = self.condition(params, guided, batch)?;
        let added = match pooled {
            None => None,
            Some(text_embeds) => {
                let (h, w) = (f64::from(params.height), f64::from(params.width));
                let rows = if guided { 2 * batch } else { batch };
                let ids: Vec<f32> = (0..rows)
                    .flat_map(|_| [h, w, 0.0, 0.0, h, w])
                    .map(|v| v as f32)
                    .collect();
                let time_ids =
                    Tensor::from_vec(ids, (rows, 6), &self.device)?.to_dtype(self.dtype)?;
                Some(AddedConditions {
                    text_embeds,
                    time_ids,
                })
            }
        };

        let latent_shape = [
            self.unet_config.in_channels,
            params.height as usize / scale,
            params.width as usize / scale,
        ];
        let mut noise = BatchNoise::new(params.seed, batch);
        let mut latents = (noise.sample(&latent_shape, &self.device, self.dtype)?
            * scheduler.init_noise_sigma())?;
        let total = scheduler.timesteps().len();
        for (index, &timestep) in scheduler.timesteps().iter().enumerate() {
            let input = if guided {
                Tensor::cat(&[&latents, &latents], 0)?
            } else {
                latents.clone()
            };
            let input = scheduler.scale_model_input(&input, index)?;
            let prediction = self
                .unet
                .forward(&input, timestep, &context, added.as_ref())?;
            let prediction = if guided {
                let uncond = prediction.i(..batch)?;
                let cond = prediction.i(batch..)?;
                (&uncond + ((cond - &uncond)? * params.guidance_scale)?)?
            } else {
                prediction
            };
            let step_noise = if scheduler.is_ancestral() {
                Some(noise.sample(&latent_shape, &self.device, self.dtype)?)
            } else {
                None
            };
            latents = scheduler.step(&prediction, index, &latents, step_noise.as_ref())?;
            tracing::debug!(step = index + 1, total, timestep, "denoising step");
            progress(index + 1, total);
        }

        let latents = (latents / self.vae_config.scaling_factor)?.to_dtype(self.vae_dtype)?;
        (0..batch)
            .map(|i| self.decode(&latents.i(i..i + 1)?))
            .collect()
    }

    /// Text conditioning for the UNet: `(context, pooled)`, rows `[uncond * batch, cond * batch]`
    /// when guided.
    fn condition(
        &self,
        params: &ImageGenParams,
        guided: bool,
        batch: usize,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let (cond, cond_pooled) = self.encode_prompt(&params.prompt)?;
        let (mut rows, mut pooled_rows) = (vec![], vec![]);
        if guided {
            let zeros = params.negative_prompt.is_none() && self.force_zeros_for_empty_prompt;
            let (uncond, uncond_pooled) = if zeros {
                (
                    cond.zeros_like()?,
                    cond_pooled.as_ref().map(Tensor::zeros_like).transpose()?,
                )
            } else {
                self.encode_prompt(params.negative_prompt.as_deref().unwrap_or(""))?
            };
            rows.push(uncond.repeat((batch, 1, 1))?);
            pooled_rows.extend(uncond_pooled.map(|p| p.repeat((batch, 1))).transpose()?);
        }
        rows.push(cond.repeat((batch, 1, 1))?);
        pooled_rows.extend(cond_pooled.map(|p| p.repeat((batch, 1))).transpose()?);
        let context = Tensor::cat(&rows, 0)?.to_dtype(self.dtype)?;
        let pooled = if pooled_rows.is_empty() {
            None
        } else {
            Some(Tensor::cat(&pooled_rows, 0)?.to_dtype(self.dtype)?)
        };
        Ok((context, pooled))
    }

    /// One prompt through the text encoder(s): `(1, 77, dim)` context and, for SDXL, the pooled
    /// embedding of the second encoder.
    fn encode_prompt(&self, text: &str) -> Result<(Tensor, Option<Tensor>)> {
        if let [only] = self.encoders.as_slice() {
            return Ok((only.encode(text, &self.device)?.last_hidden_state, None));
        }
        // SDXL: penultimate hidden states of both encoders, concatenated along features.
        let mut states = Vec::with_capacity(self.encoders.len());
        let mut pooled = None;
        for encoder in &self.encoders {
            let output = encoder.encode(text, &self.device)?;
            states.push(output.penultimate_hidden_state);
            pooled = output.text_embeds.or(pooled);
        }
        Ok((Tensor::cat(&states, D::Minus1)?, pooled))
    }

    fn decode(&self, latent: &Tensor) -> Result<RgbImage> {
        let image = self.vae.decode(latent)?;
        let image = ((image.to_device(&Device::Cpu)?.to_dtype(DType::F32)? / 2.0)? + 0.5)?;
        let image = (image.clamp(0f32, 1f32)? * 255.0)?;
        let (_, channels, height, width) = image.dims4()?;
        if channels != 3 {
            return Err(InferenceError::config(
                self.dir.join("vae/config.json"),
                format!("out_channels {channels} is not 3 (RGB)"),
            ));
        }
        let values = image
            .squeeze(0)?
            .permute((1, 2, 0))?
            .flatten_all()?
            .to_vec1::<f32>()?;
        // diffusers rounds with numpy (`numpy_to_pil`), which rounds halves to even.
        let pixels = values.iter().map(|v| v.round_ties_even() as u8).collect();
        RgbImage::from_raw(width as u32, height as u32, pixels).ok_or_else(|| {
            InferenceError::InvalidParams("decoded image has an unexpected size".to_owned())
        })
    }
}

/// PNG bytes of `image`: RGB8, default compression, adaptive filtering, no metadata, so the
/// same pixels always give the same bytes.
pub fn encode_png(image: &RgbImage) -> Result<Vec<u8>> {
    use image::{
        ExtendedColorType, ImageEncoder,
        codecs::png::{CompressionType, FilterType, PngEncoder},
    };
    let mut bytes = Vec::new();
    PngEncoder::new_with_quality(&mut bytes, CompressionType::Default, FilterType::Adaptive)
        .write_image(
            image.as_raw(),
            image.width(),
            image.height(),
            ExtendedColorType::Rgb8,
        )?;
    Ok(bytes)
}
