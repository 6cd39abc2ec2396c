//! Shared fixtures: the tiny models, generated once per test binary by `make_tiny_models`.

#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    sync::OnceLock,
};

use verinfer_inference::{
    ChatMessage, ChatRole, ImageGenParams, SchedulerKind, TextGenParams, TextPrompt, TextSampling,
    TinyModels, make_tiny_models,
};

pub const TINY_SEED: u64 = 7;

pub fn tiny() -> &'static TinyModels {
    static MODELS: OnceLock<(tempfile::TempDir, TinyModels)> = OnceLock::new();
    let (_, models) = MODELS.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let models = make_tiny_models(dir.path(), TINY_SEED, false).expect("tiny models");
        (dir, models)
    });
    models
}

pub fn image_params(seed: u64, scheduler: SchedulerKind) -> ImageGenParams {
    ImageGenParams {
        prompt: "a photo of a cat sitting on a red chair".to_owned(),
        negative_prompt: Some("blurry".to_owned()),
        width: 64,
        height: 64,
        steps: 3,
        guidance_scale: 7.5,
        scheduler,
        num_images: 2,
        seed,
    }
}

pub fn text_params(seed: u64, sampling: TextSampling) -> TextGenParams {
    TextGenParams {
        input: TextPrompt::Chat(vec![
            ChatMessage {
                role: ChatRole::System,
                content: "You are a helpful assistant.".to_owned(),
            },
            ChatMessage {
                role: ChatRole::User,
                content: "Tell me a story about a robot.".to_owned(),
            },
        ]),
        max_tokens: 32,
        sampling,
        seed,
        stop: Vec::new(),
    }
}

pub fn sampled() -> TextSampling {
    TextSampling::Sample {
        temperature: 1.0,
        top_p: Some(0.95),
        top_k: Some(50),
    }
}

/// Copies a model directory (to break it without touching the shared fixture).
pub fn copy_dir(from: &Path, to: &Path) -> PathBuf {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
    to.to_owned()
}
