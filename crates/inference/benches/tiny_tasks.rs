//! End-to-end task cost on the tiny models (goal: each well under 2 s on a 2-core CPU):
//! writing the tiny models, one image task (64x64, 4 steps, 2 images, with model loading) and
//! one text task (32 tokens, with model loading).
//! Run: `cargo bench -p verinfer-inference --bench tiny_tasks`.

use std::hint::black_box;

use candle_core::Device;
use criterion::{Criterion, criterion_group, criterion_main};
use verinfer_inference::{
    ImageGenParams, ImagePipeline, Precision, SchedulerKind, TextGenParams, TextPipeline,
    TextPrompt, TextSampling, make_tiny_models,
};

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let models = make_tiny_models(dir.path(), 0, false).expect("tiny models");
    let mut group = c.benchmark_group("tiny_tasks");
    group.sample_size(10);

    group.bench_function("make_tiny_models", |b| {
        b.iter(|| {
            let out = tempfile::tempdir().expect("temp dir");
            black_box(make_tiny_models(out.path(), 0, false).expect("tiny models"))
        })
    });

    let image = ImageGenParams {
        prompt: "a photo of a cat sitting on a red chair".to_owned(),
        negative_prompt: None,
        width: 64,
        height: 64,
        steps: 4,
        guidance_scale: 7.5,
        scheduler: SchedulerKind::EulerAncestral,
        num_images: 2,
        seed: 42,
    };
    group.bench_function("image_task_64px_4steps_2images", |b| {
        b.iter(|| {
            let pipeline =
                ImagePipeline::load(&models.sd, &Device::Cpu, Precision::F32).expect("load");
            black_box(pipeline.generate(&image, &mut |_, _| {}).expect("generate"))
        })
    });

    let text = TextGenParams {
        input: TextPrompt::Prompt("once upon a time".to_owned()),
        max_tokens: 32,
        sampling: TextSampling::Sample {
            temperature: 0.8,
            top_p: Some(0.9),
            top_k: None,
        },
        seed: 7,
        stop: Vec::new(),
    };
    group.bench_function("text_task_32_tokens", |b| {
        b.iter(|| {
            let mut pipeline =
                TextPipeline::load(&models.llama, &Device::Cpu, Precision::F32).expect("load");
            black_box(pipeline.generate(&text, &mut |_, _| {}).expect("generate"))
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
