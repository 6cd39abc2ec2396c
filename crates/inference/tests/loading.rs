//! Loading: the tiny models have the real layouts, and broken models are refused with errors
//! that name the file.

mod common;

use std::{collections::BTreeMap, path::Path};

use candle_core::Device;
use common::{TINY_SEED, copy_dir, tiny};
use verinfer_inference::{ImagePipeline, Precision, TextPipeline, make_tiny_models};

fn tensor_names(path: &Path) -> Vec<String> {
    let bytes = std::fs::read(path).expect("read");
    let tensors = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
    let mut names: Vec<String> = tensors.names().into_iter().map(str::to_owned).collect();
    names.sort();
    names
}

#[test]
fn tiny_models_use_the_real_tensor_names() {
    let sd = &tiny().sd;
    let unet = tensor_names(&sd.join("unet/diffusion_pytorch_model.safetensors"));
    for name in [
        "conv_in.weight",
        "time_embedding.linear_1.weight",
        "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight",
        "down_blocks.0.resnets.0.time_emb_proj.weight",
        "down_blocks.0.downsamplers.0.conv.weight",
        "mid_block.attentions.0.proj_in.weight",
        "up_blocks.1.attentions.1.transformer_blocks.0.ff.net.0.proj.weight",
        "conv_norm_out.weight",
    ] {
        assert!(unet.iter().any(|n| n == name), "unet lacks {name}");
    }
    let vae = tensor_names(&sd.join("vae/diffusion_pytorch_model.safetensors"));
    for name in [
        "decoder.mid_block.attentions.0.to_q.weight",
        "decoder.up_blocks.0.upsamplers.0.conv.weight",
        "post_quant_conv.weight",
        "encoder.conv_out.weight",
    ] {
        assert!(vae.iter().any(|n| n == name), "vae lacks {name}");
    }
    let clip = tensor_names(&sd.join("text_encoder/model.safetensors"));
    assert!(
        clip.iter()
            .any(|n| n == "text_model.encoder.layers.1.self_attn.q_proj.weight")
    );
    assert!(
        clip.iter()
            .any(|n| n == "text_model.embeddings.position_embedding.weight")
    );
    let xl_unet = tensor_names(&tiny().sdxl.join("unet/diffusion_pytorch_model.safetensors"));
    for name in [
        "add_embedding.linear_1.weight",
        "down_blocks.1.attentions.0.transformer_blocks.1.attn1.to_q.weight",
        "down_blocks.1.attentions.0.proj_in.weight",
    ] {
        assert!(xl_unet.iter().any(|n| n == name), "sdxl unet lacks {name}");
    }
    let clip2 = tensor_names(&tiny().sdxl.join("text_encoder_2/model.safetensors"));
    assert!(clip2.iter().any(|n| n == "text_projection.weight"));
    let llama = tensor_names(&tiny().llama.join("model.safetensors"));
    for name in [
        "model.embed_tokens.weight",
        "model.layers.1.self_attn.k_proj.weight",
        "model.norm.weight",
        "lm_head.weight",
    ] {
        assert!(llama.iter().any(|n| n == name), "llama lacks {name}");
    }
    for file in [
        "model_index.json",
        "scheduler/scheduler_config.json",
        "tokenizer/vocab.json",
        "tokenizer/merges.txt",
        "unet/config.json",
        "vae/config.json",
        "text_encoder/config.json",
    ] {
        assert!(sd.join(file).is_file(), "tiny-sd lacks {file}");
    }
    for file in [
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "generation_config.json",
    ] {
        assert!(tiny().llama.join(file).is_file(), "tiny-llama lacks {file}");
    }
}

#[test]
fn make_tiny_is_deterministic_and_idempotent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let again = make_tiny_models(dir.path(), TINY_SEED, false).expect("make");
    assert!(again.written);
    for (a, b) in [
        (&tiny().sd, &again.sd),
        (&tiny().sdxl, &again.sdxl),
        (&tiny().llama, &again.llama),
    ] {
        assert_eq!(
            verinfer_task::model_digest(a).expect("digest"),
            verinfer_task::model_digest(b).expect("digest")
        );
    }
    let digest_before = verinfer_task::model_digest(&again.sd).expect("digest");
    let skipped = make_tiny_models(dir.path(), TINY_SEED, false).expect("idempotent");
    assert!(!skipped.written);
    let error =
        make_tiny_models(dir.path(), TINY_SEED + 1, false).expect_err("other seed without --force");
    assert!(error.to_string().contains("--force"), "{error}");
    let forced = make_tiny_models(dir.path(), TINY_SEED + 1, true).expect("force");
    assert!(forced.written);
    assert_ne!(
        verinfer_task::model_digest(&forced.sd).expect("digest"),
        digest_before
    );
}

fn sd_error(dir: &Path) -> String {
    ImagePipeline::load(dir, &Device::Cpu, Precision::F32)
        .expect_err("broken model loaded")
        .to_string()
}

fn llama_error(dir: &Path) -> String {
    TextPipeline::load(dir, &Device::Cpu, Precision::F32)
        .expect_err("broken model loaded")
        .to_string()
}

#[test]
fn missing_files_are_named() {
    let work = tempfile::tempdir().expect("tempdir");
    let sd = copy_dir(&tiny().sd, &work.path().join("sd"));
    std::fs::remove_file(sd.join("unet/config.json")).expect("rm");
    let error = sd_error(&sd);
    assert!(
        error.contains("unet/config.json") && error.contains("missing"),
        "{error}"
    );

    let sd = copy_dir(&tiny().sd, &work.path().join("sd2"));
    std::fs::remove_file(sd.join("tokenizer/merges.txt")).expect("rm");
    let error = sd_error(&sd);
    assert!(error.contains("tokenizer/merges.txt"), "{error}");

    let sd = copy_dir(&tiny().sd, &work.path().join("sd3"));
    std::fs::remove_file(sd.join("vae/diffusion_pytorch_model.safetensors")).expect("rm");
    let error = sd_error(&sd);
    assert!(
        error.contains("vae/diffusion_pytorch_model.safetensors"),
        "{error}"
    );

    let llama = copy_dir(&tiny().llama, &work.path().join("llama"));
    std::fs::remove_file(llama.join("tokenizer.json")).expect("rm");
    let error = llama_error(&llama);
    assert!(error.contains("tokenizer.json"), "{error}");
}

/// Rewrites `file` with tensor `name` reshaped to `shape` (same data, first `len` values).
fn reshape_tensor(file: &Path, name: &str, shape: Vec<usize>) {
    let bytes = std::fs::read(file).expect("read");
    let tensors = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
    let mut owned: BTreeMap<String, (Vec<usize>, Vec<u8>)> = BTreeMap::new();
    for (tensor_name, view) in tensors.tensors() {
        let (tensor_shape, data) = if tensor_name == name {
            let len: usize = shape.iter().product::<usize>() * 4;
            let mut data = view.data().to_vec();
            data.resize(len, 0);
            (shape.clone(), data)
        } else {
            (view.shape().to_vec(), view.data().to_vec())
        };
        owned.insert(tensor_name, (tensor_shape, data));
    }
    assert!(owned.contains_key(name), "{name} not in {}", file.display());
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = owned
        .iter()
        .map(|(n, (s, d))| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), d)
                    .expect("view"),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, file).expect("write");
}

#[test]
fn wrong_tensor_shapes_are_named() {
    let work = tempfile::tempdir().expect("tempdir");
    let sd = copy_dir(&tiny().sd, &work.path().join("sd"));
    reshape_tensor(
        &sd.join("unet/diffusion_pytorch_model.safetensors"),
        "conv_in.weight",
        vec![32, 4, 3, 2],
    );
    let error = sd_error(&sd);
    assert!(
        error.contains("unet/diffusion_pytorch_model.safetensors")
            && error.contains("conv_in.weight"),
        "{error}"
    );

    let sd = copy_dir(&tiny().sd, &work.path().join("sd2"));
    reshape_tensor(
        &sd.join("text_encoder/model.safetensors"),
        "text_model.final_layer_norm.weight",
        vec![31],
    );
    let error = sd_error(&sd);
    assert!(
        error.contains("text_encoder/model.safetensors") && error.contains("final_layer_norm"),
        "{error}"
    );

    let llama = copy_dir(&tiny().llama, &work.path().join("llama"));
    reshape_tensor(
        &llama.join("model.safetensors"),
        "model.layers.1.mlp.up_proj.weight",
        vec![64, 64],
    );
    let error = llama_error(&llama);
    assert!(
        error.contains("model.safetensors") && error.contains("model.layers.1.mlp.up_proj.weight"),
        "{error}"
    );
}

#[test]
fn inconsistent_configs_are_refused() {
    let work = tempfile::tempdir().expect("tempdir");
    let sd = copy_dir(&tiny().sd, &work.path().join("sd"));
    let path = sd.join("unet/config.json");
    let config = std::fs::read_to_string(&path)
        .expect("read")
        .replace("\"cross_attention_dim\": 32", "\"cross_attention_dim\": 48");
    std::fs::write(&path, config).expect("write");
    let error = sd_error(&sd);
    assert!(
        error.contains("unet/config.json") && error.contains("cross_attention_dim 48"),
        "{error}"
    );

    let llama = copy_dir(&tiny().llama, &work.path().join("llama"));
    let path = llama.join("config.json");
    let config = std::fs::read_to_string(&path)
        .expect("read")
        .replace("\"model_type\": \"llama\"", "\"model_type\": \"mamba\"");
    std::fs::write(&path, config).expect("write");
    let error = llama_error(&llama);
    assert!(
        error.contains("config.json") && error.contains("mamba"),
        "{error}"
    );
}

#[test]
fn oversized_requests_are_refused() {
    let mut pipeline =
        TextPipeline::load(&tiny().llama, &Device::Cpu, Precision::F32).expect("load");
    let mut params = common::text_params(1, verinfer_inference::TextSampling::Greedy);
    params.max_tokens = 4096;
    let error = pipeline
        .generate(&params, &mut |_, _| {})
        .expect_err("beyond the context");
    assert!(error.to_string().contains("positions"), "{error}");

    let image = ImagePipeline::load(&tiny().sd, &Device::Cpu, Precision::F32).expect("load");
    let mut params = common::image_params(1, verinfer_inference::SchedulerKind::Ddim);
    params.width = 60;
    let error = image
        .generate(&params, &mut |_, _| {})
        .expect_err("not a multiple of 8");
    assert!(error.to_string().contains("width 60"), "{error}");
}

#[test]
fn bf16_on_the_cpu_is_refused_up_front() {
    let error = ImagePipeline::load(&tiny().sd, &Device::Cpu, Precision::Bf16)
        .expect_err("no CPU bf16 matmul");
    assert!(error.to_string().contains("bf16"), "{error}");
    let error = TextPipeline::load(&tiny().llama, &Device::Cpu, Precision::Bf16)
        .expect_err("no CPU bf16 matmul");
    assert!(error.to_string().contains("bf16"), "{error}");
}

#[test]
fn f16_runs_on_the_cpu() {
    let pipeline = ImagePipeline::load(&tiny().sd, &Device::Cpu, Precision::F16).expect("load f16");
    let images = pipeline
        .generate(
            &common::image_params(1, verinfer_inference::SchedulerKind::Ddim),
            &mut |_, _| {},
        )
        .expect("generate");
    assert_eq!(images.len(), 2);
}

#[test]
fn logit_skew_changes_greedy_text_and_zero_skew_does_not() {
    let mut params = common::text_params(1, verinfer_inference::TextSampling::Greedy);
    params.max_tokens = 16;
    params.stop.clear();
    let generate = |skew: f32| {
        let mut pipeline = TextPipeline::load(&tiny().llama, &Device::Cpu, Precision::F32)
            .expect("load")
            .with_logit_skew(skew);
        pipeline
            .generate(&params, &mut |_, _| {})
            .expect("generate")
            .token_ids
    };
    let reference = generate(0.0);
    assert_eq!(generate(0.0), reference, "no skew: the reference");
    assert_ne!(
        generate(0.05),
        reference,
        "the test stand-in for other hardware changes the tokens"
    );
}
