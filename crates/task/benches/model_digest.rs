//! Model digest throughput (sha256 streaming over the weights) and the cost of a cache hit.
//! Run: `cargo bench -p verinfer-task --bench model_digest`.

use std::{fs, hint::black_box};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use verinfer_task::{model_digest, model_digest_cached};

const WEIGHTS_BYTES: usize = 256 << 20;

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    // Non-constant content so no layer below can shortcut it.
    let weights: Vec<u8> = (0..WEIGHTS_BYTES)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761) as u8)
        .collect();
    fs::write(dir.path().join("model.safetensors"), &weights).expect("write weights");
    fs::write(dir.path().join("config.json"), br#"{"hidden_size":4096}"#).expect("write config");
    drop(weights);

    let mut group = c.benchmark_group("model_digest");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(WEIGHTS_BYTES as u64));
    group.bench_function("full_hash_256MiB", |b| {
        b.iter(|| black_box(model_digest(dir.path()).expect("digest")))
    });
    group.finish();

    model_digest_cached(dir.path()).expect("prime the cache");
    c.bench_function("model_digest_cached/hit", |b| {
        b.iter(|| black_box(model_digest_cached(dir.path()).expect("digest")))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
