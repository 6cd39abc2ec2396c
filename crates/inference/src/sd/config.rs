//! Diffusers `config.json` files mapped onto the pipeline's configuration.
//!
//! Only the keys that change the computation are read; values this crate cannot honour are
//! refused with a message naming the file and key instead of silently computing something else.

use std::path::Path;

use candle_transformers::models::stable_diffusion::unet_2d::BlockConfig;
use serde::Deserialize;

use crate::error::{InferenceError, Result};

/// `model_index.json`: which pipeline and components the directory holds.
#[derive(Debug, Clone, Deserialize)]
pub struct ModelIndexJson {
    /// `StableDiffusionPipeline`, `StableDiffusionXLPipeline`, ...
    #[serde(rename = "_class_name")]
    pub class_name: String,
    /// SDXL: encode an absent negative prompt as zeros instead of the empty prompt.
    #[serde(default)]
    pub force_zeros_for_empty_prompt: bool,
    /// Present (with a non-null value) when the pipeline has a second text encoder.
    #[serde(default)]
    pub text_encoder_2: Option<serde_json::Value>,
}

/// An `int` or a per-block list, as diffusers allows for several UNet keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum PerBlock {
    /// One value for every block.
    One(usize),
    /// One value per down block.
    Each(Vec<usize>),
}

impl PerBlock {
    fn expand(&self, blocks: usize, path: &Path, key: &str) -> Result<Vec<usize>> {
        match self {
            Self::One(value) => Ok(vec![*value; blocks]),
            Self::Each(values) if values.len() == blocks => Ok(values.clone()),
            Self::Each(values) => Err(InferenceError::config(
                path,
                format!(
                    "{key} has {} entries but there are {blocks} down blocks",
                    values.len()
                ),
            )),
        }
    }
}

/// `unet/config.json` (`UNet2DConditionModel`).
#[derive(Debug, Clone, Deserialize)]
pub struct UnetJson {
    /// Latent height and width the model was trained at (default 64).
    #[serde(default = "default_sample_size")]
    pub sample_size: usize,
    /// Channels of the input latents (default 4).
    #[serde(default = "default_latent_channels")]
    pub in_channels: usize,
    /// Channels of the predicted output (default 4).
    #[serde(default = "default_latent_channels")]
    pub out_channels: usize,
    /// Map input latents from [0, 1] to [-1, 1] (`2x - 1`) before `conv_in` (default false).
    #[serde(default)]
    pub center_input_sample: bool,
    /// Timestep embedding puts the cosines before the sines (default true).
    #[serde(default = "default_true")]
    pub flip_sin_to_cos: bool,
    /// Frequency shift of the sinusoidal timestep embedding (default 0).
    #[serde(default)]
    pub freq_shift: f64,
    /// Down block kinds, top to bottom: `CrossAttnDownBlock2D` or `DownBlock2D`.
    pub down_block_types: Vec<String>,
    /// Up block kinds, bottom to top; must mirror `down_block_types`.
    pub up_block_types: Vec<String>,
    /// Output channels of each UNet down block, top to bottom.
    pub block_out_channels: Vec<usize>,
    /// ResNet layers in each down block (up blocks get one more); default 2, must be uniform.
    #[serde(default = "default_layers_per_block")]
    pub layers_per_block: PerBlock,
    /// Padding of the down blocks' downsampling convolutions (default 1).
    #[serde(default = "default_one")]
    pub downsample_padding: usize,
    /// Output scale factor (divisor) of the mid block's resnets (default 1.0).
    #[serde(default = "default_one_f")]
    pub mid_block_scale_factor: f64,
    /// Mid block kind; only `UNetMidBlock2DCrossAttn` (assumed when absent) is supported.
    #[serde(default)]
    pub mid_block_type: Option<String>,
    /// Activation of the resnets; only `silu` (the default) is supported.
    #[serde(default = "default_silu")]
    pub act_fn: String,
    /// Groups of the group norms (default 32, the only value supported).
    #[serde(default = "default_groups")]
    pub norm_num_groups: usize,
    /// Epsilon of the group norms (default 1e-5).
    #[serde(default = "default_norm_eps")]
    pub norm_eps: f64,
    /// Width of the text-encoder states that cross-attention reads; the same for every block.
    pub cross_attention_dim: PerBlock,
    /// Attention head *count* of each block, despite the name (diffusers' misnaming); default 8.
    #[serde(default = "default_attention_head_dim")]
    pub attention_head_dim: PerBlock,
    /// Attention head count of each block; overrides `attention_head_dim` when set.
    #[serde(default)]
    pub num_attention_heads: Option<PerBlock>,
    /// Transformers project in and out with linear layers, not 1x1 convolutions (default false).
    #[serde(default)]
    pub use_linear_projection: bool,
    /// Transformer layers in each cross-attention block (default 1).
    #[serde(default = "default_transformer_layers")]
    pub transformer_layers_per_block: PerBlock,
    /// Extra conditioning added to the time embedding: absent, or `text_time` (SDXL).
    #[serde(default)]
    pub addition_embed_type: Option<String>,
    /// `text_time`: sinusoidal width of each of the six micro-conditioning time ids.
    #[serde(default)]
    pub addition_time_embed_dim: Option<usize>,
    /// `text_time`: input width of the added embedding (pooled width + 6 x time embed dim).
    #[serde(default)]
    pub projection_class_embeddings_input_dim: Option<usize>,
    /// Class-embedding kind; only absent/null is supported.
    #[serde(default)]
    pub class_embed_type: Option<String>,
    /// Projection applied to the encoder hidden states; only absent/null is supported.
    #[serde(default)]
    pub encoder_hid_dim_type: Option<String>,
    /// Timestep embedding kind; only `positional` (sinusoidal, assumed when absent) is supported.
    #[serde(default)]
    pub time_embedding_type: Option<String>,
    /// How resnets take the time embedding; only `default` (added; assumed when absent).
    #[serde(default)]
    pub resnet_time_scale_shift: Option<String>,
    /// Attention blocks without self-attention (bool or per block); only absent or `false`.
    #[serde(default)]
    pub only_cross_attention: Option<serde_json::Value>,
    /// Dual cross-attention (Versatile Diffusion); refused when true (default false).
    #[serde(default)]
    pub dual_cross_attention: bool,
    /// Kernel size of `conv_in`; only 3 (assumed when absent) is supported.
    #[serde(default)]
    pub conv_in_kernel: Option<usize>,
    /// Kernel size of `conv_out`; only 3 (assumed when absent) is supported.
    #[serde(default)]
    pub conv_out_kernel: Option<usize>,
}

fn default_sample_size() -> usize {
    64
}
fn default_latent_channels() -> usize {
    4
}
fn default_true() -> bool {
    true
}
fn default_one() -> usize {
    1
}
fn default_one_f() -> f64 {
    1.0
}
fn default_layers_per_block() -> PerBlock {
    PerBlock::One(2)
}
fn default_silu() -> String {
    "silu".to_owned()
}
fn default_groups() -> usize {
    32
}
fn default_norm_eps() -> f64 {
    1e-5
}
fn default_attention_head_dim() -> PerBlock {
    PerBlock::One(8)
}
fn default_transformer_layers() -> PerBlock {
    PerBlock::One(1)
}

/// The SDXL micro-conditioning (`addition_embed_type: "text_time"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextTimeConfig {
    /// Sinusoidal width of each of the six time ids.
    pub time_embed_dim: usize,
    /// Width of the pooled text embedding plus `6 * time_embed_dim`.
    pub projection_input_dim: usize,
}

/// The UNet configuration, validated.
#[derive(Debug, Clone)]
pub struct UnetConfig {
    /// Latent height and width the model was trained at.
    pub sample_size: usize,
    /// Channels of the input latents.
    pub in_channels: usize,
    /// Channels of the predicted output.
    pub out_channels: usize,
    /// Map input latents from [0, 1] to [-1, 1] (`2x - 1`) before `conv_in`.
    pub center_input_sample: bool,
    /// Timestep embedding puts the cosines before the sines.
    pub flip_sin_to_cos: bool,
    /// Frequency shift of the sinusoidal timestep embedding.
    pub freq_shift: f64,
    /// Down blocks, top to bottom: channels, transformer layers if cross-attending, head count.
    pub blocks: Vec<BlockConfig>,
    /// ResNet layers in each down block (up blocks get one more).
    pub layers_per_block: usize,
    /// Padding of the down blocks' downsampling convolutions.
    pub downsample_padding: usize,
    /// Output scale factor (divisor) of the mid block's resnets.
    pub mid_block_scale_factor: f64,
    /// Groups of the group norms (always 32).
    pub norm_num_groups: usize,
    /// Epsilon of the group norms.
    pub norm_eps: f64,
    /// Width of the text-encoder states that cross-attention reads.
    pub cross_attention_dim: usize,
    /// Transformers project in and out with linear layers, not 1x1 convolutions.
    pub use_linear_projection: bool,
    /// The SDXL micro-conditioning, when `addition_embed_type` is `text_time`.
    pub text_time: Option<TextTimeConfig>,
}

impl UnetJson {
    /// Validates and maps onto [`UnetConfig`]; `path` is named in errors.
    pub fn resolve(&self, path: &Path) -> Result<UnetConfig> {
        let unsupported = |key: &str, value: &dyn std::fmt::Debug| {
            InferenceError::config(path, format!("{key} = {value:?} is not supported"))
        };
        let n = self.block_out_channels.len();
        if n == 0 {
            return Err(InferenceError::config(path, "block_out_channels is empty"));
        }
        if self.down_block_types.len() != n || self.up_block_types.len() != n {
            return Err(InferenceError::config(
                path,
                format!(
                    "{} down_block_types and {} up_block_types for {n} block_out_channels",
                    self.down_block_types.len(),
                    self.up_block_types.len()
                ),
            ));
        }
        let mut cross_attn = Vec::with_capacity(n);
        for (i, kind) in self.down_block_types.iter().enumerate() {
            let with_attention = match kind.as_str() {
                "CrossAttnDownBlock2D" => true,
                "DownBlock2D" => false,
                other => return Err(unsupported(&format!("down_block_types[{i}]"), &other)),
            };
            // The up path mirrors the down path (candle builds it that way, as do all SD models).
            let expected_up = if with_attention {
                "CrossAttnUpBlock2D"
            } else {
                "UpBlock2D"
            };
            if self.up_block_types[n - 1 - i] != expected_up {
                return Err(InferenceError::config(
                    path,
                    format!(
                        "up_block_types[{}] is {:?} but must mirror down_block_types[{i}] ({expected_up:?})",
                        n - 1 - i,
                        self.up_block_types[n - 1 - i]
                    ),
                ));
            }
            cross_attn.push(with_attention);
        }
        let layers = self.layers_per_block.expand(n, path, "layers_per_block")?;
        if layers.iter().any(|&l| l != layers[0]) {
            return Err(unsupported("layers_per_block", &layers));
        }
        let cross_dims = self
            .cross_attention_dim
            .expand(n, path, "cross_attention_dim")?;
        if cross_dims.iter().any(|&d| d != cross_dims[0]) {
            return Err(unsupported("cross_attention_dim", &cross_dims));
        }
        // diffusers: `num_attention_heads or attention_head_dim` is the head *count*
        // (the historical misnaming); candle's `attention_head_dim` means the same.
        let heads = self
            .num_attention_heads
            .as_ref()
            .unwrap_or(&self.attention_head_dim);
        let heads = heads.expand(n, path, "attention_head_dim")?;
        let transformer_layers =
            self.transformer_layers_per_block
                .expand(n, path, "transformer_layers_per_block")?;
        for (i, (&channels, &head_count)) in self.block_out_channels.iter().zip(&heads).enumerate()
        {
            if head_count == 0 || channels % head_count != 0 {
                return Err(InferenceError::config(
                    path,
                    format!(
                        "block {i}: {channels} channels cannot be split into {head_count} attention heads"
                    ),
                ));
            }
        }
        // candle's down/up blocks build their resnets with 32 groups whatever the config says.
        if self.norm_num_groups != 32 {
            return Err(unsupported(
                "norm_num_groups (only 32)",
                &self.norm_num_groups,
            ));
        }
        if let Some(&bad) = self.block_out_channels.iter().find(|&&c| c % 32 != 0) {
            return Err(InferenceError::config(
                path,
                format!("block_out_channels entry {bad} is not a multiple of norm_num_groups 32"),
            ));
        }
        if self.act_fn != "silu" {
            return Err(unsupported("act_fn", &self.act_fn));
        }
        if let Some(kind) = &self.mid_block_type
            && kind != "UNetMidBlock2DCrossAttn"
        {
            return Err(unsupported("mid_block_type", kind));
        }
        if let Some(kind) = &self.class_embed_type {
            return Err(unsupported("class_embed_type", kind));
        }
        if let Some(kind) = &self.encoder_hid_dim_type {
            return Err(unsupported("encoder_hid_dim_type", kind));
        }
        if let Some(kind) = &self.time_embedding_type
            && kind != "positional"
        {
            return Err(unsupported("time_embedding_type", kind));
        }
        if let Some(kind) = &self.resnet_time_scale_shift
            && kind != "default"
        {
            return Err(unsupported("resnet_time_scale_shift", kind));
        }
        match &self.only_cross_attention {
            None | Some(serde_json::Value::Bool(false)) => {}
            Some(value) => return Err(unsupported("only_cross_attention", value)),
        }
        if self.dual_cross_attention {
            return Err(unsupported("dual_cross_attention", &true));
        }
        for (key, kernel) in [
            ("conv_in_kernel", self.conv_in_kernel),
            ("conv_out_kernel", self.conv_out_kernel),
        ] {
            if let Some(k) = kernel
                && k != 3
            {
                return Err(unsupported(key, &k));
            }
        }
        let text_time = match self.addition_embed_type.as_deref() {
            None => None,
            Some("text_time") => {
                let time_embed_dim = self.addition_time_embed_dim.ok_or_else(|| {
                    InferenceError::config(
                        path,
                        "addition_embed_type \"text_time\" needs addition_time_embed_dim",
                    )
                })?;
                let projection_input_dim = self.projection_class_embeddings_input_dim.ok_or_else(|| {
                    InferenceError::config(path, "addition_embed_type \"text_time\" needs projection_class_embeddings_input_dim")
                })?;
                Some(TextTimeConfig {
                    time_embed_dim,
                    projection_input_dim,
                })
            }
            Some(other) => return Err(unsupported("addition_embed_type", &other)),
        };
        let blocks = (0..n)
            .map(|i| BlockConfig {
                out_channels: self.block_out_channels[i],
                use_cross_attn: cross_attn[i].then_some(transformer_layers[i]),
                attention_head_dim: heads[i],
            })
            .collect();
        Ok(UnetConfig {
            sample_size: self.sample_size,
            in_channels: self.in_channels,
            out_channels: self.out_channels,
            center_input_sample: self.center_input_sample,
            flip_sin_to_cos: self.flip_sin_to_cos,
            freq_shift: self.freq_shift,
            blocks,
            layers_per_block: layers[0],
            downsample_padding: self.downsample_padding,
            mid_block_scale_factor: self.mid_block_scale_factor,
            norm_num_groups: self.norm_num_groups,
            norm_eps: self.norm_eps,
            cross_attention_dim: cross_dims[0],
            use_linear_projection: self.use_linear_projection,
            text_time,
        })
    }
}

/// `vae/config.json` (`AutoencoderKL`).
#[derive(Debug, Clone, Deserialize)]
pub struct VaeJson {
    /// Channels of the images the encoder takes (default 3).
    #[serde(default = "default_rgb")]
    pub in_channels: usize,
    /// Channels of the images the decoder yields (default 3).
    #[serde(default = "default_rgb")]
    pub out_channels: usize,
    /// Encoder block kinds, top to bottom; only `DownEncoderBlock2D` is supported.
    pub down_block_types: Vec<String>,
    /// Decoder block kinds; only `UpDecoderBlock2D` is supported.
    pub up_block_types: Vec<String>,
    /// Output channels of each encoder block, top to bottom (the decoder mirrors them).
    pub block_out_channels: Vec<usize>,
    /// ResNet layers in each encoder block (decoder blocks get one more); default 1.
    #[serde(default = "default_one")]
    pub layers_per_block: usize,
    /// Activation; only `silu` (the default) is supported.
    #[serde(default = "default_silu")]
    pub act_fn: String,
    /// Channels of the latent space (default 4).
    #[serde(default = "default_latent_channels")]
    pub latent_channels: usize,
    /// Groups of the group norms (default 32); must divide every `block_out_channels` entry.
    #[serde(default = "default_groups")]
    pub norm_num_groups: usize,
    /// Latents are this times the VAE's; they are divided by it before decoding (default 0.18215).
    #[serde(default = "default_scaling_factor")]
    pub scaling_factor: f64,
    /// Latent shift (SD3, Flux); only absent or 0 is supported.
    #[serde(default)]
    pub shift_factor: Option<f64>,
    /// Keep the VAE in f32 when the pipeline runs in f16 (default false; SDXL sets it).
    #[serde(default)]
    pub force_upcast: bool,
    /// The encoder ends with a `quant_conv` (default true).
    #[serde(default = "default_true")]
    pub use_quant_conv: bool,
    /// The decoder starts with a `post_quant_conv` (default true).
    #[serde(default = "default_true")]
    pub use_post_quant_conv: bool,
    /// Attention in the mid blocks; only absent or `true` (diffusers' default) is supported.
    #[serde(default)]
    pub mid_block_add_attention: Option<bool>,
}

fn default_rgb() -> usize {
    3
}
fn default_scaling_factor() -> f64 {
    0.18215
}

/// The VAE configuration, validated.
#[derive(Debug, Clone)]
pub struct VaeConfig {
    /// The configuration candle's `AutoEncoderKL` is built from.
    pub candle: candle_transformers::models::stable_diffusion::vae::AutoEncoderKLConfig,
    /// Channels of the images the encoder takes.
    pub in_channels: usize,
    /// Channels of the images the decoder yields.
    pub out_channels: usize,
    /// Latents are this times the VAE's; they are divided by it before decoding.
    pub scaling_factor: f64,
    /// Keep the VAE in f32 when the pipeline runs in f16.
    pub force_upcast: bool,
    /// Image pixels per latent pixel along a side: `2^(blocks - 1)`.
    pub scale_factor: usize,
}

impl VaeJson {
    /// Validates and maps onto [`VaeConfig`]; `path` is named in errors.
    pub fn resolve(&self, path: &Path) -> Result<VaeConfig> {
        let n = self.block_out_channels.len();
        if n == 0 || self.down_block_types.len() != n || self.up_block_types.len() != n {
            return Err(InferenceError::config(
                path,
                "block_out_channels, down_block_types and up_block_types must be non-empty and of equal length",
            ));
        }
        if let Some(bad) = self
            .down_block_types
            .iter()
            .find(|t| *t != "DownEncoderBlock2D")
        {
            return Err(InferenceError::config(
                path,
                format!("down_block_types entry {bad:?} is not supported"),
            ));
        }
        if let Some(bad) = self
            .up_block_types
            .iter()
            .find(|t| *t != "UpDecoderBlock2D")
        {
            return Err(InferenceError::config(
                path,
                format!("up_block_types entry {bad:?} is not supported"),
            ));
        }
        if self.act_fn != "silu" {
            return Err(InferenceError::config(
                path,
                format!("act_fn = {:?} is not supported", self.act_fn),
            ));
        }
        if self.shift_factor.is_some_and(|s| s != 0.0) {
            return Err(InferenceError::config(
                path,
                "shift_factor is not supported",
            ));
        }
        if self.mid_block_add_attention == Some(false) {
            return Err(InferenceError::config(
                path,
                "mid_block_add_attention = false is not supported",
            ));
        }
        if let Some(&bad) = self
            .block_out_channels
            .iter()
            .find(|&&c| self.norm_num_groups == 0 || c % self.norm_num_groups != 0)
        {
            return Err(InferenceError::config(
                path,
                format!(
                    "block_out_channels entry {bad} is not a multiple of norm_num_groups {}",
                    self.norm_num_groups
                ),
            ));
        }
        if !(self.scaling_factor.is_finite() && self.scaling_factor > 0.0) {
            return Err(InferenceError::config(
                path,
                format!("scaling_factor {} must be positive", self.scaling_factor),
            ));
        }
        Ok(VaeConfig {
            candle: candle_transformers::models::stable_diffusion::vae::AutoEncoderKLConfig {
                block_out_channels: self.block_out_channels.clone(),
                layers_per_block: self.layers_per_block,
                latent_channels: self.latent_channels,
                norm_num_groups: self.norm_num_groups,
                use_quant_conv: self.use_quant_conv,
                use_post_quant_conv: self.use_post_quant_conv,
            },
            in_channels: self.in_channels,
            out_channels: self.out_channels,
            scaling_factor: self.scaling_factor,
            force_upcast: self.force_upcast,
            scale_factor: 1 << (n - 1),
        })
    }
}

/// `text_encoder*/config.json` (`CLIPTextModel`, `CLIPTextModelWithProjection`).
#[derive(Debug, Clone, Deserialize)]
pub struct ClipJson {
    /// Size of the token vocabulary (rows of the token embedding).
    pub vocab_size: usize,
    /// Width of the hidden states.
    pub hidden_size: usize,
    /// Hidden width of each layer's MLP.
    pub intermediate_size: usize,
    /// Number of transformer layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer; must divide `hidden_size`.
    pub num_attention_heads: usize,
    /// Longest token sequence (rows of the position embedding).
    pub max_position_embeddings: usize,
    /// MLP activation, by transformers' name (default `quick_gelu`).
    #[serde(default = "default_quick_gelu")]
    pub hidden_act: String,
    /// Epsilon of the layer norms (default 1e-5).
    #[serde(default = "default_clip_eps")]
    pub layer_norm_eps: f64,
    /// Width of `text_projection` (`CLIPTextModelWithProjection`); needed for the pooled embedding.
    #[serde(default)]
    pub projection_dim: Option<usize>,
    /// Id of the end-of-text token, when the file gives one.
    #[serde(default)]
    pub eos_token_id: Option<u32>,
    /// transformers class names, e.g. `CLIPTextModelWithProjection` (default empty).
    #[serde(default)]
    pub architectures: Vec<String>,
}

fn default_quick_gelu() -> String {
    "quick_gelu".to_owned()
}
fn default_clip_eps() -> f64 {
    1e-5
}

/// `scheduler/scheduler_config.json`: the noise schedule the model was trained with. The
/// sampling algorithm itself is the task's choice; these values configure it (like diffusers'
/// `Scheduler.from_config`).
#[derive(Debug, Clone, Deserialize)]
pub struct SchedulerJson {
    /// Diffusion timesteps the model was trained with (default 1000).
    #[serde(default = "default_train_timesteps")]
    pub num_train_timesteps: usize,
    /// First beta of the noise schedule (default 0.0001).
    #[serde(default = "default_beta_start")]
    pub beta_start: f64,
    /// Last beta of the noise schedule (default 0.02).
    #[serde(default = "default_beta_end")]
    pub beta_end: f64,
    /// Beta curve: `linear` (default), `scaled_linear` or `squaredcos_cap_v2`.
    #[serde(default = "default_beta_schedule")]
    pub beta_schedule: String,
    /// Explicit betas, one per training timestep; they replace `beta_schedule` when given.
    #[serde(default)]
    pub trained_betas: Option<Vec<f64>>,
    /// What the UNet predicts: `epsilon` (the noise; default), `v_prediction` or `sample`.
    #[serde(default = "default_prediction_type")]
    pub prediction_type: String,
    /// Added to every `leading`-spaced timestep (default 0).
    #[serde(default)]
    pub steps_offset: usize,
    /// Absent: each scheduler's own diffusers default (`leading` for DDIM and DDPM,
    /// `linspace` for Euler ancestral).
    #[serde(default)]
    pub timestep_spacing: Option<String>,
    /// DDIM: the last step steps to alpha-cumprod 1, not to that of timestep 0 (default true).
    #[serde(default = "default_true")]
    pub set_alpha_to_one: bool,
    /// Absent: diffusers' default, `true`, for DDIM and DDPM.
    #[serde(default)]
    pub clip_sample: Option<bool>,
    /// DDPM posterior variance: `fixed_small` (assumed when absent) or `fixed_large`.
    #[serde(default)]
    pub variance_type: Option<String>,
    /// Bound the predicted clean sample is clipped to, when `clip_sample` (default 1.0).
    #[serde(default = "default_one_f")]
    pub clip_sample_range: f64,
    /// Dynamic thresholding; refused when true (default false).
    #[serde(default)]
    pub thresholding: bool,
    /// Rescale betas to zero terminal SNR; refused when true (default false).
    #[serde(default)]
    pub rescale_betas_zero_snr: bool,
}

fn default_train_timesteps() -> usize {
    1000
}
fn default_beta_start() -> f64 {
    0.0001
}
fn default_beta_end() -> f64 {
    0.02
}
fn default_beta_schedule() -> String {
    "linear".to_owned()
}
fn default_prediction_type() -> String {
    "epsilon".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unet(json: &str) -> Result<UnetConfig> {
        serde_json::from_str::<UnetJson>(json)
            .expect("parses")
            .resolve(Path::new("unet/config.json"))
    }

    // Abridged from stabilityai/sdxl-turbo unet/config.json.
    const SDXL_UNET: &str = r#"{
        "_class_name": "UNet2DConditionModel", "act_fn": "silu",
        "addition_embed_type": "text_time", "addition_embed_type_num_heads": 64,
        "addition_time_embed_dim": 256, "attention_head_dim": [5, 10, 20],
        "block_out_channels": [320, 640, 1280], "center_input_sample": false,
        "class_embed_type": null, "class_embeddings_concat": false, "conv_in_kernel": 3,
        "conv_out_kernel": 3, "cross_attention_dim": 2048, "cross_attention_norm": null,
        "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
        "downsample_padding": 1, "dual_cross_attention": false, "encoder_hid_dim": null,
        "encoder_hid_dim_type": null, "flip_sin_to_cos": true, "freq_shift": 0, "in_channels": 4,
        "layers_per_block": 2, "mid_block_only_cross_attention": null, "mid_block_scale_factor": 1,
        "mid_block_type": "UNetMidBlock2DCrossAttn", "norm_eps": 1e-05, "norm_num_groups": 32,
        "num_attention_heads": null, "num_class_embeds": null, "only_cross_attention": false,
        "out_channels": 4, "projection_class_embeddings_input_dim": 2816,
        "resnet_out_scale_factor": 1.0, "resnet_skip_time_act": false,
        "resnet_time_scale_shift": "default", "sample_size": 64, "time_cond_proj_dim": null,
        "time_embedding_act_fn": null, "time_embedding_dim": null, "time_embedding_type": "positional",
        "timestep_post_act": null, "transformer_layers_per_block": [1, 2, 10],
        "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
        "upcast_attention": null, "use_linear_projection": true
    }"#;

    #[test]
    fn sdxl_unet_maps_heads_layers_and_text_time() {
        let config = unet(SDXL_UNET).expect("valid");
        let blocks: Vec<_> = config
            .blocks
            .iter()
            .map(|b| (b.out_channels, b.use_cross_attn, b.attention_head_dim))
            .collect();
        assert_eq!(
            blocks,
            vec![(320, None, 5), (640, Some(2), 10), (1280, Some(10), 20)]
        );
        assert_eq!(config.cross_attention_dim, 2048);
        assert!(config.use_linear_projection);
        assert_eq!(
            config.text_time,
            Some(TextTimeConfig {
                time_embed_dim: 256,
                projection_input_dim: 2816
            })
        );
    }

    #[test]
    fn sd15_unet_defaults() {
        let json = r#"{"block_out_channels": [320, 640, 1280, 1280], "cross_attention_dim": 768,
            "attention_head_dim": 8,
            "down_block_types": ["CrossAttnDownBlock2D","CrossAttnDownBlock2D","CrossAttnDownBlock2D","DownBlock2D"],
            "up_block_types": ["UpBlock2D","CrossAttnUpBlock2D","CrossAttnUpBlock2D","CrossAttnUpBlock2D"]}"#;
        let config = unet(json).expect("valid");
        assert_eq!(config.blocks.len(), 4);
        assert_eq!(config.blocks[3].use_cross_attn, None);
        assert_eq!(config.blocks[0].use_cross_attn, Some(1));
        assert_eq!(config.layers_per_block, 2);
        assert_eq!(config.text_time, None);
    }

    #[test]
    fn asymmetric_up_blocks_are_refused() {
        let json = r#"{"block_out_channels": [32, 64], "cross_attention_dim": 32,
            "down_block_types": ["CrossAttnDownBlock2D","DownBlock2D"],
            "up_block_types": ["CrossAttnUpBlock2D","UpBlock2D"]}"#;
        let error = unet(json).expect_err("asymmetric");
        assert!(error.to_string().contains("up_block_types[1]"), "{error}");
    }

    #[test]
    fn unsupported_values_are_named() {
        let json = SDXL_UNET.replace(
            "\"class_embed_type\": null",
            "\"class_embed_type\": \"timestep\"",
        );
        let error = unet(&json).expect_err("class embeddings");
        assert!(error.to_string().contains("class_embed_type"), "{error}");
        let json = SDXL_UNET.replace(
            "\"attention_head_dim\": [5, 10, 20]",
            "\"attention_head_dim\": [5, 10]",
        );
        let error = unet(&json).expect_err("length");
        assert!(
            error
                .to_string()
                .contains("attention_head_dim has 2 entries"),
            "{error}"
        );
    }
}
