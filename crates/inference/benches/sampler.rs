//! Host-side cost of picking one token from a Qwen2-sized vocabulary (151,936 logits): the
//! project's sampler against candle's `LogitsProcessor` it replaced, for the same settings.
//! Run: `cargo bench -p verinfer-inference --bench sampler`.

use std::hint::black_box;

use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use criterion::{Criterion, criterion_group, criterion_main};
use verinfer_inference::{TextSampling, llm::sampler::TokenSampler, noise::NoiseStream};

const VOCAB: usize = 151_936;

fn bench(c: &mut Criterion) {
    // Roughly the spread of a real model's logits: normal with σ = 3.
    let logits: Vec<f32> = NoiseStream::new(1, 0)
        .normals(VOCAB)
        .into_iter()
        .map(|v| 3.0 * v)
        .collect();
    let tensor = Tensor::new(logits.as_slice(), &Device::Cpu).expect("tensor");
    let mut group = c.benchmark_group("sampler_151936");
    let cases = [
        ("greedy", TextSampling::Greedy, Sampling::ArgMax),
        (
            "t0.8",
            TextSampling::Sample {
                temperature: 0.8,
                top_p: None,
                top_k: None,
            },
            Sampling::All { temperature: 0.8 },
        ),
        (
            "t0.8_p0.9",
            TextSampling::Sample {
                temperature: 0.8,
                top_p: Some(0.9),
                top_k: None,
            },
            Sampling::TopP {
                p: 0.9,
                temperature: 0.8,
            },
        ),
        (
            "t0.8_k40_p0.9",
            TextSampling::Sample {
                temperature: 0.8,
                top_p: Some(0.9),
                top_k: Some(40),
            },
            Sampling::TopKThenTopP {
                k: 40,
                p: 0.9,
                temperature: 0.8,
            },
        ),
    ];
    for (name, ours, theirs) in cases {
        let mut sampler = TokenSampler::new(7, ours).expect("sampler");
        group.bench_function(format!("verinfer_{name}"), |b| {
            b.iter(|| black_box(sampler.next_token(black_box(&logits)).expect("token")))
        });
        let mut processor = LogitsProcessor::from_sampling(7, theirs);
        group.bench_function(format!("candle_{name}"), |b| {
            b.iter(|| black_box(processor.sample(black_box(&tensor)).expect("token")))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
