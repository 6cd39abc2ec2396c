//! `tiny-sd/` (Stable Diffusion 1.5-shaped) and `tiny-sdxl/` (SDXL-turbo-shaped: two text
//! encoders, the `text_time` micro-conditioning) diffusers directories with tiny random weights.

use std::path::Path;

use candle_transformers::models::stable_diffusion::vae::AutoEncoderKL;
use serde_json::{Value, json};

use super::{bpe, record, write_file, write_json, write_weights};
use crate::{
    error::{InferenceError, Result},
    sd::{
        clip::{ClipActivation, ClipConfig, ClipTextModel},
        config::{UnetJson, VaeJson},
        unet::Unet,
    },
};

const CLIP_HIDDEN: usize = 32;
const CLIP_MAX_POSITIONS: usize = 77;
const CLIP_MERGES: usize = 256;
const DIFFUSERS_VERSION: &str = "0.30.0";

/// Stable Diffusion 1.5 shape: one CLIP encoder, cross-attention in the first block.
pub(super) fn write(dir: &Path, seed: u64) -> Result<()> {
    write_json(
        &dir.join("model_index.json"),
        &json!({
            "_class_name": "StableDiffusionPipeline",
            "_diffusers_version": DIFFUSERS_VERSION,
            "feature_extractor": [null, null],
            "requires_safety_checker": false,
            "safety_checker": [null, null],
            "scheduler": ["diffusers", "DDIMScheduler"],
            "text_encoder": ["transformers", "CLIPTextModel"],
            "tokenizer": ["transformers", "CLIPTokenizer"],
            "unet": ["diffusers", "UNet2DConditionModel"],
            "vae": ["diffusers", "AutoencoderKL"]
        }),
    )?;
    write_json(
        &dir.join("scheduler/scheduler_config.json"),
        &json!({
            "_class_name": "DDIMScheduler",
            "_diffusers_version": DIFFUSERS_VERSION,
            "beta_end": 0.012,
            "beta_schedule": "scaled_linear",
            "beta_start": 0.00085,
            "clip_sample": false,
            "num_train_timesteps": 1000,
            "prediction_type": "epsilon",
            "set_alpha_to_one": false,
            "steps_offset": 1,
            "trained_betas": null
        }),
    )?;
    write_clip(
        dir,
        &Encoder {
            name: "text_encoder",
            tokenizer: "tokenizer",
            pad: bpe::CLIP_EOS,
            gelu: false,
            projected: false,
        },
        seed,
        10,
    )?;
    write_unet(
        dir,
        json!({
            "attention_head_dim": 2,
            "block_out_channels": [32, 64],
            "cross_attention_dim": CLIP_HIDDEN,
            "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
            "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
            "use_linear_projection": false
        }),
        seed,
    )?;
    write_vae(dir, json!({"scaling_factor": 0.18215}), seed)
}

/// SDXL-turbo shape: two encoders (the second projected), `text_time`, linear projections,
/// several transformer layers per block, Euler ancestral with trailing timesteps.
pub(super) fn write_xl(dir: &Path, seed: u64) -> Result<()> {
    write_json(
        &dir.join("model_index.json"),
        &json!({
            "_class_name": "StableDiffusionXLPipeline",
            "_diffusers_version": DIFFUSERS_VERSION,
            "feature_extractor": [null, null],
            "force_zeros_for_empty_prompt": true,
            "image_encoder": [null, null],
            "scheduler": ["diffusers", "EulerAncestralDiscreteScheduler"],
            "text_encoder": ["transformers", "CLIPTextModel"],
            "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
            "tokenizer": ["transformers", "CLIPTokenizer"],
            "tokenizer_2": ["transformers", "CLIPTokenizer"],
            "unet": ["diffusers", "UNet2DConditionModel"],
            "vae": ["diffusers", "AutoencoderKL"]
        }),
    )?;
    write_json(
        &dir.join("scheduler/scheduler_config.json"),
        &json!({
            "_class_name": "EulerAncestralDiscreteScheduler",
            "_diffusers_version": DIFFUSERS_VERSION,
            "beta_end": 0.012,
            "beta_schedule": "scaled_linear",
            "beta_start": 0.00085,
            "clip_sample": false,
            "interpolation_type": "linear",
            "num_train_timesteps": 1000,
            "prediction_type": "epsilon",
            "sample_max_value": 1.0,
            "set_alpha_to_one": false,
            "skip_prk_steps": true,
            "steps_offset": 1,
            "timestep_spacing": "trailing",
            "trained_betas": null
        }),
    )?;
    write_clip(
        dir,
        &Encoder {
            name: "text_encoder",
            tokenizer: "tokenizer",
            pad: bpe::CLIP_EOS,
            gelu: false,
            projected: false,
        },
        seed,
        10,
    )?;
    write_clip(
        dir,
        &Encoder {
            name: "text_encoder_2",
            tokenizer: "tokenizer_2",
            pad: "!",
            gelu: true,
            projected: true,
        },
        seed,
        13,
    )?;
    const TIME_IDS_DIM: usize = 8;
    write_unet(
        dir,
        json!({
            "addition_embed_type": "text_time",
            "addition_time_embed_dim": TIME_IDS_DIM,
            "attention_head_dim": [2, 4],
            "block_out_channels": [32, 64],
            "cross_attention_dim": 2 * CLIP_HIDDEN,
            "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"],
            "projection_class_embeddings_input_dim": CLIP_HIDDEN + 6 * TIME_IDS_DIM,
            "transformer_layers_per_block": [1, 2],
            "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D"],
            "use_linear_projection": true
        }),
        seed,
    )?;
    write_vae(
        dir,
        json!({"scaling_factor": 0.13025, "force_upcast": true}),
        seed,
    )
}

struct Encoder {
    name: &'static str,
    tokenizer: &'static str,
    pad: &'static str,
    gelu: bool,
    projected: bool,
}

/// A CLIP text encoder and its tokenizer (slow-tokenizer files, as real checkpoints ship).
fn write_clip(dir: &Path, encoder: &Encoder, seed: u64, stream: u64) -> Result<()> {
    let tokenizer_dir = dir.join(encoder.tokenizer);
    let clip_bpe = bpe::clip_bpe(CLIP_MERGES);
    let vocab: serde_json::Map<String, Value> = clip_bpe
        .vocab
        .iter()
        .enumerate()
        .map(|(id, token)| (token.clone(), json!(id)))
        .collect();
    let bos_id = clip_bpe.vocab.len() - 2;
    let eos_id = clip_bpe.vocab.len() - 1;
    write_json(&tokenizer_dir.join("vocab.json"), &Value::Object(vocab))?;
    let mut merges = String::from("#version: 0.2\n");
    for (a, b) in &clip_bpe.merges {
        merges.push_str(&format!("{a} {b}\n"));
    }
    write_file(&tokenizer_dir.join("merges.txt"), merges.as_bytes())?;
    let special = |content: &str| json!({"content": content, "lstrip": false, "normalized": true, "rstrip": false, "single_word": false});
    write_json(
        &tokenizer_dir.join("special_tokens_map.json"),
        &json!({
            "bos_token": special(bpe::CLIP_BOS),
            "eos_token": special(bpe::CLIP_EOS),
            "pad_token": encoder.pad,
            "unk_token": special(bpe::CLIP_EOS)
        }),
    )?;
    write_json(
        &tokenizer_dir.join("tokenizer_config.json"),
        &json!({
            "add_prefix_space": false,
            "bos_token": bpe::CLIP_BOS,
            "clean_up_tokenization_spaces": true,
            "do_lower_case": true,
            "eos_token": bpe::CLIP_EOS,
            "errors": "replace",
            "model_max_length": CLIP_MAX_POSITIONS,
            "pad_token": encoder.pad,
            "tokenizer_class": "CLIPTokenizer",
            "unk_token": bpe::CLIP_EOS
        }),
    )?;

    let config = ClipConfig {
        vocab_size: clip_bpe.vocab.len(),
        hidden_size: CLIP_HIDDEN,
        intermediate_size: 64,
        num_hidden_layers: 2,
        num_attention_heads: 2,
        max_position_embeddings: CLIP_MAX_POSITIONS,
        activation: if encoder.gelu {
            ClipActivation::Gelu
        } else {
            ClipActivation::QuickGelu
        },
        layer_norm_eps: 1e-5,
        projection_dim: encoder.projected.then_some(CLIP_HIDDEN),
    };
    let encoder_dir = dir.join(encoder.name);
    write_json(
        &encoder_dir.join("config.json"),
        &json!({
            "architectures": [if encoder.projected { "CLIPTextModelWithProjection" } else { "CLIPTextModel" }],
            "attention_dropout": 0.0,
            "bos_token_id": bos_id,
            "eos_token_id": eos_id,
            "hidden_act": if encoder.gelu { "gelu" } else { "quick_gelu" },
            "hidden_size": config.hidden_size,
            "initializer_factor": 1.0,
            "initializer_range": 0.02,
            "intermediate_size": config.intermediate_size,
            "layer_norm_eps": 1e-5,
            "max_position_embeddings": CLIP_MAX_POSITIONS,
            "model_type": "clip_text_model",
            "num_attention_heads": config.num_attention_heads,
            "num_hidden_layers": config.num_hidden_layers,
            "pad_token_id": 1,
            "projection_dim": CLIP_HIDDEN,
            "torch_dtype": "float32",
            "vocab_size": config.vocab_size
        }),
    )?;
    let tensors = record(|vb| ClipTextModel::new(vb, &config))?;
    write_weights(
        &encoder_dir.join("model.safetensors"),
        &tensors,
        seed,
        stream,
        1.0,
    )
}

/// A UNet with the shared tiny settings plus `specific` keys.
fn write_unet(dir: &Path, specific: Value, seed: u64) -> Result<()> {
    let mut unet = json!({
        "_class_name": "UNet2DConditionModel",
        "_diffusers_version": DIFFUSERS_VERSION,
        "act_fn": "silu",
        "center_input_sample": false,
        "downsample_padding": 1,
        "flip_sin_to_cos": true,
        "freq_shift": 0,
        "in_channels": 4,
        "layers_per_block": 1,
        "mid_block_scale_factor": 1,
        "norm_eps": 1e-5,
        "norm_num_groups": 32,
        "out_channels": 4,
        "sample_size": 8
    });
    merge(&mut unet, specific);
    let path = dir.join("unet/config.json");
    write_json(&path, &unet)?;
    let config = parse::<UnetJson>(&unet)?.resolve(&path)?;
    let tensors = record(|vb| Unet::new(vb, config))?;
    write_weights(
        &dir.join("unet/diffusion_pytorch_model.safetensors"),
        &tensors,
        seed,
        11,
        1.0,
    )
}

/// A four-block VAE (latents 8x smaller than images, as in every SD model).
fn write_vae(dir: &Path, specific: Value, seed: u64) -> Result<()> {
    let mut vae = json!({
        "_class_name": "AutoencoderKL",
        "_diffusers_version": DIFFUSERS_VERSION,
        "act_fn": "silu",
        "block_out_channels": [16, 16, 32, 32],
        "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
        "in_channels": 3,
        "latent_channels": 4,
        "layers_per_block": 1,
        "norm_num_groups": 8,
        "out_channels": 3,
        "sample_size": 64,
        "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"]
    });
    merge(&mut vae, specific);
    let path = dir.join("vae/config.json");
    write_json(&path, &vae)?;
    let config = parse::<VaeJson>(&vae)?.resolve(&path)?;
    let tensors = record(|vb| AutoEncoderKL::new(vb, 3, 3, config.candle.clone()))?;
    write_weights(
        &dir.join("vae/diffusion_pytorch_model.safetensors"),
        &tensors,
        seed,
        12,
        1.0,
    )
}

fn merge(base: &mut Value, extra: Value) {
    if let (Value::Object(base), Value::Object(extra)) = (base, extra) {
        base.extend(extra);
    }
}

fn parse<T: serde::de::DeserializeOwned>(value: &Value) -> Result<T> {
    serde_json::from_value(value.clone())
        .map_err(|e| InferenceError::InvalidParams(format!("tiny model config: {e}")))
}
