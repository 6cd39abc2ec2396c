//! `phash_image` on a decoded 512×512 RGB image: luma, Lanczos resize, DCT, median.
//!
//! Compare with `benches/imagehash_baseline.py` (Python imagehash on the same kind of
//! image); the goal is at least 5× faster.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use image::{DynamicImage, RgbImage};
use verinfer_phash::phash_image;

/// Deterministic photo-like content (smooth gradients plus a little texture), so the
/// resampler sees realistic data; the cost does not depend on pixel values.
fn test_image() -> DynamicImage {
    let img = RgbImage::from_fn(512, 512, |x, y| {
        let texture = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)) >> 27;
        image::Rgb([(x / 2) as u8, (y / 2) as u8, ((x + y) / 4 + texture) as u8])
    });
    DynamicImage::ImageRgb8(img)
}

fn bench_phash(c: &mut Criterion) {
    let img = test_image();
    c.bench_function("phash_image 512x512 rgb", |b| {
        b.iter(|| phash_image(black_box(&img)))
    });
}

criterion_group!(benches, bench_phash);
criterion_main!(benches);
