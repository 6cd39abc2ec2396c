//! `tiny-sd/`: a Stable Diffusion 1.5-shaped diffusers directory with tiny random weights.

use std::path::Path;

use candle_transformers::models::stable_diffusion::vae::AutoEncoderKL;
use serde_json::json;

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

pub(super) fn write(dir: &Path, seed: u64) -> Result<()> {
    write_json(
        &dir.join("model_index.json"),
        &json!({
            "_class_name": "StableDiffusionPipeline",
            "_diffusers_version": "0.30.0",
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
            "_diffusers_version": "0.30.0",
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

    // Tokenizer: CLIP's slow-tokenizer files, as in real SD checkpoints.
    let clip_bpe = bpe::clip_bpe(CLIP_MERGES);
    let vocab: serde_json::Map<String, serde_json::Value> =
        clip_bpe.vocab.iter().enumerate().map(|(id, token)| (token.clone(), json!(id))).collect();
    let bos_id = clip_bpe.vocab.len() - 2;
    let eos_id = clip_bpe.vocab.len() - 1;
    write_json(&dir.join("tokenizer/vocab.json"), &serde_json::Value::Object(vocab))?;
    let mut merges = String::from("#version: 0.2\n");
    for (a, b) in &clip_bpe.merges {
        merges.push_str(&format!("{a} {b}\n"));
    }
    write_file(&dir.join("tokenizer/merges.txt"), merges.as_bytes())?;
    let special = |content: &str| json!({"content": content, "lstrip": false, "normalized": true, "rstrip": false, "single_word": false});
    write_json(
        &dir.join("tokenizer/special_tokens_map.json"),
        &json!({
            "bos_token": special(bpe::CLIP_BOS),
            "eos_token": special(bpe::CLIP_EOS),
            "pad_token": bpe::CLIP_EOS,
            "unk_token": special(bpe::CLIP_EOS)
        }),
    )?;
    write_json(
        &dir.join("tokenizer/tokenizer_config.json"),
        &json!({
            "add_prefix_space": false,
            "bos_token": bpe::CLIP_BOS,
            "clean_up_tokenization_spaces": true,
            "do_lower_case": true,
            "eos_token": bpe::CLIP_EOS,
            "errors": "replace",
            "model_max_length": CLIP_MAX_POSITIONS,
            "pad_token": bpe::CLIP_EOS,
            "tokenizer_class": "CLIPTokenizer",
            "unk_token": bpe::CLIP_EOS
        }),
    )?;

    // Text encoder.
    let clip_config = ClipConfig {
        vocab_size: clip_bpe.vocab.len(),
        hidden_size: CLIP_HIDDEN,
        intermediate_size: 64,
        num_hidden_layers: 2,
        num_attention_heads: 2,
        max_position_embeddings: CLIP_MAX_POSITIONS,
        activation: ClipActivation::QuickGelu,
        layer_norm_eps: 1e-5,
        projection_dim: None,
    };
    write_json(
        &dir.join("text_encoder/config.json"),
        &json!({
            "architectures": ["CLIPTextModel"],
            "attention_dropout": 0.0,
            "bos_token_id": bos_id,
            "eos_token_id": eos_id,
            "hidden_act": "quick_gelu",
            "hidden_size": clip_config.hidden_size,
            "initializer_factor": 1.0,
            "initializer_range": 0.02,
            "intermediate_size": clip_config.intermediate_size,
            "layer_norm_eps": 1e-5,
            "max_position_embeddings": CLIP_MAX_POSITIONS,
            "model_type": "clip_text_model",
            "num_attention_heads": clip_config.num_attention_heads,
            "num_hidden_layers": clip_config.num_hidden_layers,
            "pad_token_id": 1,
            "projection_dim": clip_config.hidden_size,
            "torch_dtype": "float32",
            "vocab_size": clip_config.vocab_size
        }),
    )?;
    let tensors = record(|vb| ClipTextModel::new(vb, &clip_config))?;
    write_weights(&dir.join("text_encoder/model.safetensors"), &tensors, seed, 10, 1.0)?;

    // UNet.
    let unet_json = json!({
        "_class_name": "UNet2DConditionModel",
        "_diffusers_version": "0.30.0",
        "act_fn": "silu",
        "attention_head_dim": 2,
        "block_out_channels": [32, 64],
        "center_input_sample": false,
        "cross_attention_dim": CLIP_HIDDEN,
        "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
        "downsample_padding": 1,
        "flip_sin_to_cos": true,
        "freq_shift": 0,
        "in_channels": 4,
        "layers_per_block": 1,
        "mid_block_scale_factor": 1,
        "norm_eps": 1e-5,
        "norm_num_groups": 32,
        "out_channels": 4,
        "sample_size": 8,
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
        "use_linear_projection": false
    });
    let unet_path = dir.join("unet/config.json");
    write_json(&unet_path, &unet_json)?;
    let unet_config = parse::<UnetJson>(&unet_json)?.resolve(&unet_path)?;
    let tensors = record(|vb| Unet::new(vb, unet_config))?;
    write_weights(&dir.join("unet/diffusion_pytorch_model.safetensors"), &tensors, seed, 11, 1.0)?;

    // VAE: four blocks, so latents are 8x smaller than images, as in every SD model.
    let vae_json = json!({
        "_class_name": "AutoencoderKL",
        "_diffusers_version": "0.30.0",
        "act_fn": "silu",
        "block_out_channels": [16, 16, 32, 32],
        "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
        "in_channels": 3,
        "latent_channels": 4,
        "layers_per_block": 1,
        "norm_num_groups": 8,
        "out_channels": 3,
        "sample_size": 64,
        "scaling_factor": 0.18215,
        "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"]
    });
    let vae_path = dir.join("vae/config.json");
    write_json(&vae_path, &vae_json)?;
    let vae_config = parse::<VaeJson>(&vae_json)?.resolve(&vae_path)?;
    let tensors = record(|vb| AutoEncoderKL::new(vb, 3, 3, vae_config.candle.clone()))?;
    write_weights(&dir.join("vae/diffusion_pytorch_model.safetensors"), &tensors, seed, 12, 1.0)?;
    Ok(())
}

fn parse<T: serde::de::DeserializeOwned>(value: &serde_json::Value) -> Result<T> {
    serde_json::from_value(value.clone()).map_err(|e| InferenceError::InvalidParams(format!("tiny model config: {e}")))
}
