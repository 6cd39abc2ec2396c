//! Determinism of the pipelines on the tiny models: same parameters → identical bytes and
//! tokens, whatever the thread count; different seeds → different outputs.

mod common;

use std::{collections::BTreeMap, path::Path, process::Command};

use candle_core::Device;
use common::{image_params, sampled, text_params, tiny};
use verinfer_inference::{
    ImagePipeline, Precision, SchedulerKind, TextPipeline, TextSampling, encode_png,
};

fn pngs(seed: u64, scheduler: SchedulerKind) -> Vec<Vec<u8>> {
    let pipeline =
        ImagePipeline::load(&tiny().sd, &Device::Cpu, Precision::F32).expect("load tiny-sd");
    let images = pipeline
        .generate(&image_params(seed, scheduler), &mut |_, _| {})
        .expect("generate");
    images
        .iter()
        .map(|image| encode_png(image).expect("png"))
        .collect()
}

#[test]
fn images_are_reproducible_byte_for_byte() {
    for scheduler in [
        SchedulerKind::Ddim,
        SchedulerKind::EulerAncestral,
        SchedulerKind::Ddpm,
    ] {
        let first = pngs(11, scheduler);
        let second = pngs(11, scheduler);
        assert_eq!(first.len(), 2);
        assert_eq!(first, second, "{scheduler:?} is not reproducible");
        assert_ne!(
            first[0], first[1],
            "{scheduler:?}: the two images of a batch are identical"
        );
    }
}

#[test]
fn images_are_varied_and_seed_dependent() {
    let pipeline =
        ImagePipeline::load(&tiny().sd, &Device::Cpu, Precision::F32).expect("load tiny-sd");
    let a = pipeline
        .generate(
            &image_params(1, SchedulerKind::EulerAncestral),
            &mut |_, _| {},
        )
        .expect("generate");
    let b = pipeline
        .generate(
            &image_params(2, SchedulerKind::EulerAncestral),
            &mut |_, _| {},
        )
        .expect("generate");
    assert_eq!((a[0].width(), a[0].height()), (64, 64));
    assert_ne!(
        a[0].as_raw(),
        b[0].as_raw(),
        "different seeds gave the same image"
    );
    // Not a flat image: pixel values spread.
    let values: Vec<f64> = a[0].as_raw().iter().map(|&v| f64::from(v)).collect();
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64).sqrt();
    assert!(std > 5.0, "image is nearly constant (std {std:.2})");
}

#[test]
fn image_noise_does_not_depend_on_batch_size() {
    let pipeline =
        ImagePipeline::load(&tiny().sd, &Device::Cpu, Precision::F32).expect("load tiny-sd");
    let mut one = image_params(5, SchedulerKind::Ddim);
    one.num_images = 1;
    let single = pipeline.generate(&one, &mut |_, _| {}).expect("generate");
    let batch = pipeline
        .generate(&image_params(5, SchedulerKind::Ddim), &mut |_, _| {})
        .expect("generate");
    // Same stream for image 0; batched GEMMs may round differently, so compare loosely.
    let diff: u64 = single[0]
        .as_raw()
        .iter()
        .zip(batch[0].as_raw())
        .map(|(a, b)| u64::from(a.abs_diff(*b)))
        .sum();
    let mean_abs = diff as f64 / single[0].as_raw().len() as f64;
    assert!(
        mean_abs < 2.0,
        "image 0 changed with the batch size (mean abs diff {mean_abs:.2})"
    );
}

#[test]
fn sdxl_with_text_time_is_reproducible_and_seed_dependent() {
    let pipeline =
        ImagePipeline::load(&tiny().sdxl, &Device::Cpu, Precision::F32).expect("load tiny-sdxl");
    // Turbo-style (no guidance), and guided with an absent negative prompt (zeroed uncond).
    let mut unguided = image_params(21, SchedulerKind::EulerAncestral);
    unguided.guidance_scale = 0.0;
    let mut guided = image_params(21, SchedulerKind::Ddim);
    guided.negative_prompt = None;
    for params in [unguided, guided] {
        let a = pipeline
            .generate(&params, &mut |_, _| {})
            .expect("generate");
        let b = pipeline
            .generate(&params, &mut |_, _| {})
            .expect("generate");
        assert_eq!(a, b, "{:?} is not reproducible", params.scheduler);
        let mut other = params.clone();
        other.seed += 1;
        let c = pipeline.generate(&other, &mut |_, _| {}).expect("generate");
        assert_ne!(a[0].as_raw(), c[0].as_raw());
    }
    // The prompt reaches the UNet through both encoders and the pooled embedding.
    let mut params = image_params(21, SchedulerKind::Ddim);
    let base = pipeline
        .generate(&params, &mut |_, _| {})
        .expect("generate");
    params.prompt = "an astronaut riding a horse on the moon".to_owned();
    let changed = pipeline
        .generate(&params, &mut |_, _| {})
        .expect("generate");
    assert_ne!(
        base[0].as_raw(),
        changed[0].as_raw(),
        "the prompt has no effect"
    );
}

#[test]
fn progress_is_reported_per_step() {
    let pipeline =
        ImagePipeline::load(&tiny().sd, &Device::Cpu, Precision::F32).expect("load tiny-sd");
    let mut seen = Vec::new();
    pipeline
        .generate(&image_params(3, SchedulerKind::Ddim), &mut |done, total| {
            seen.push((done, total))
        })
        .expect("generate");
    assert_eq!(seen, vec![(1, 3), (2, 3), (3, 3)]);
}

fn generate_text(seed: u64, sampling: TextSampling) -> verinfer_inference::TextGeneration {
    let mut pipeline =
        TextPipeline::load(&tiny().llama, &Device::Cpu, Precision::F32).expect("load tiny-llama");
    pipeline
        .generate(&text_params(seed, sampling), &mut |_, _| {})
        .expect("generate")
}

#[test]
fn text_is_reproducible_token_for_token() {
    for sampling in [TextSampling::Greedy, sampled()] {
        let first = generate_text(9, sampling);
        let second = generate_text(9, sampling);
        assert_eq!(first, second, "{sampling:?} is not reproducible");
        assert!(!first.token_ids.is_empty());
    }
}

#[test]
fn sampled_text_depends_on_the_seed_and_greedy_does_not() {
    let a = generate_text(1, sampled());
    let b = generate_text(2, sampled());
    assert_ne!(
        a.token_ids, b.token_ids,
        "different seeds sampled the same tokens"
    );
    assert_eq!(
        generate_text(1, TextSampling::Greedy),
        generate_text(2, TextSampling::Greedy)
    );
}

#[test]
fn text_finish_reasons_follow_the_digest_rules() {
    use verinfer_inference::FinishReason;
    let mut pipeline =
        TextPipeline::load(&tiny().llama, &Device::Cpu, Precision::F32).expect("load tiny-llama");
    let mut params = text_params(4, sampled());
    let full = pipeline
        .generate(&params, &mut |_, _| {})
        .expect("generate");
    match full.finish_reason {
        FinishReason::Length => assert_eq!(full.token_ids.len(), 32),
        FinishReason::Stop => assert!(full.token_ids.len() < 32),
        FinishReason::StopSequence => panic!("no stop sequences were given"),
    }
    assert!(
        full.token_ids
            .iter()
            .all(|id| !pipeline.eos_ids().contains(id))
    );
    // Stop at a piece of text the unconstrained run produced: the same tokens up to there.
    let Some(stop) = full
        .text
        .char_indices()
        .nth(6)
        .map(|(i, _)| full.text[i..].chars().take(3).collect::<String>())
    else {
        return;
    };
    if stop.trim().is_empty() {
        return;
    }
    params.stop = vec![stop.clone()];
    let cut = pipeline
        .generate(&params, &mut |_, _| {})
        .expect("generate");
    assert_eq!(cut.finish_reason, FinishReason::StopSequence);
    assert!(full.token_ids.starts_with(&cut.token_ids));
    assert!(
        !cut.text.contains(&stop),
        "text {:?} still contains {stop:?}",
        cut.text
    );
    assert!(full.text.starts_with(&cut.text));
}

/// What the child process computes with a given thread count.
fn child_outputs(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .expect("child output")
        .map(|e| {
            let e = e.expect("entry");
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).expect("read"),
            )
        })
        .collect()
}

fn run_child(threads: usize, out: &Path) -> usize {
    let status = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "thread_count_child",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env("CANDLE_NUM_THREADS", threads.to_string())
        .env("RAYON_NUM_THREADS", threads.to_string())
        .env(
            "VERINFER_CHILD_MODELS",
            tiny().sd.parent().expect("models root"),
        )
        .env("VERINFER_CHILD_OUT", out)
        .status()
        .expect("spawn child");
    assert!(status.success(), "child with {threads} threads failed");
    std::fs::read_to_string(out.join("threads"))
        .expect("thread count")
        .trim()
        .parse()
        .expect("number")
}

/// candle's CPU backend sizes its thread pools from `CANDLE_NUM_THREADS` / `RAYON_NUM_THREADS`
/// once per process, so each thread count runs in its own process.
#[test]
fn thread_count_does_not_change_outputs() {
    let one = tempfile::tempdir().expect("tempdir");
    let two = tempfile::tempdir().expect("tempdir");
    let threads_one = run_child(1, one.path());
    let threads_two = run_child(2, two.path());
    assert!(
        threads_one < threads_two,
        "the thread settings had no effect ({threads_one} vs {threads_two} OS threads)"
    );
    let (mut a, mut b) = (child_outputs(one.path()), child_outputs(two.path()));
    a.remove("threads");
    b.remove("threads");
    assert!(a.len() >= 3, "child wrote {:?}", a.keys());
    assert_eq!(a, b, "outputs differ between 1 and 2 threads");
}

/// Runs in a child process of `thread_count_does_not_change_outputs`.
#[test]
#[ignore = "helper: run by thread_count_does_not_change_outputs in a child process"]
fn thread_count_child() {
    let models = std::path::PathBuf::from(
        std::env::var_os("VERINFER_CHILD_MODELS").expect("VERINFER_CHILD_MODELS"),
    );
    let out = std::path::PathBuf::from(
        std::env::var_os("VERINFER_CHILD_OUT").expect("VERINFER_CHILD_OUT"),
    );
    let pipeline =
        ImagePipeline::load(&models.join("tiny-sd"), &Device::Cpu, Precision::F32).expect("load");
    let images = pipeline
        .generate(
            &image_params(11, SchedulerKind::EulerAncestral),
            &mut |_, _| {},
        )
        .expect("generate");
    for (i, image) in images.iter().enumerate() {
        std::fs::write(
            out.join(format!("image-{i}.png")),
            encode_png(image).expect("png"),
        )
        .expect("write");
    }
    let mut text =
        TextPipeline::load(&models.join("tiny-llama"), &Device::Cpu, Precision::F32).expect("load");
    let generation = text
        .generate(&text_params(9, sampled()), &mut |_, _| {})
        .expect("generate");
    let ids: Vec<u8> = generation
        .token_ids
        .iter()
        .flat_map(|id| id.to_le_bytes())
        .collect();
    std::fs::write(out.join("tokens"), ids).expect("write");
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    let threads = status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .expect("Threads line")
        .trim()
        .to_owned();
    std::fs::write(out.join("threads"), threads).expect("write");
}
