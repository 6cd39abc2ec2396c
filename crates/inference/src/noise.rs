//! The diffusion noise: a seeded, device-independent Gaussian stream per image.
//!
//! Every node must start from the same latents and add the same per-step noise, whatever its
//! device or thread count, so noise never comes from candle's RNGs (the CPU one cannot be
//! seeded, the CUDA one differs from it). It is drawn here, on the CPU, and copied to the device.
//!
//! # Algorithm (v1, consensus-relevant)
//!
//! - Image `i` of a task with seed `s` reads ChaCha20 (`rand_chacha::ChaCha20Rng`) with the key
//!   `s` as 8 little-endian bytes followed by 24 zero bytes, on stream `i`. Image `i` therefore
//!   gets the same noise whatever `num_images` is.
//! - Each pair of standard normals comes from two `u64` words `a`, `b` by Box–Muller in f64:
//!   `u1 = 1 - (a >> 11) / 2^53` (in `(0, 1]`), `u2 = (b >> 11) / 2^53`,
//!   `r = sqrt(-2 ln u1)`, giving `r cos(2π u2)` then `r sin(2π u2)`, each rounded to f32.
//!   `ln`, `cos` and `sin` are the pure-Rust `libm` ones, so the platform's libm cannot differ.
//! - Values are consumed in order: the initial latents (channel, row, column), then, for
//!   ancestral schedulers, one latent-shaped draw per denoising step. An odd-sized request
//!   keeps the unused second normal for the next request.

use candle_core::{DType, Device, Tensor};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

use crate::error::Result;

/// Stream `stream` of ChaCha20 keyed by a task seed: the key is the seed's 8 little-endian bytes
/// followed by 24 zero bytes. Consensus bytes: the image noise (stream = image index) and the text
/// sampler's uniforms (stream 0) both read it, so it is written once.
pub(crate) fn seeded_chacha20(seed: u64, stream: u64) -> ChaCha20Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    let mut rng = ChaCha20Rng::from_seed(key);
    rng.set_stream(stream);
    rng
}

/// Gaussian noise for one image.
#[derive(Debug, Clone)]
pub struct NoiseStream {
    rng: ChaCha20Rng,
    spare: Option<f32>,
}

impl NoiseStream {
    /// The stream of image `image_index` of a task seeded with `seed`.
    pub fn new(seed: u64, image_index: u64) -> Self {
        Self {
            rng: seeded_chacha20(seed, image_index),
            spare: None,
        }
    }

    /// The next standard normal value.
    pub fn next_normal(&mut self) -> f32 {
        if let Some(spare) = self.spare.take() {
            return spare;
        }
        const SCALE: f64 = 1.0 / (1u64 << 53) as f64;
        let u1 = 1.0 - (self.rng.next_u64() >> 11) as f64 * SCALE;
        let u2 = (self.rng.next_u64() >> 11) as f64 * SCALE;
        let radius = libm::sqrt(-2.0 * libm::log(u1));
        let angle = 2.0 * std::f64::consts::PI * u2;
        self.spare = Some((radius * libm::sin(angle)) as f32);
        (radius * libm::cos(angle)) as f32
    }

    /// `len` standard normal values.
    pub fn normals(&mut self, len: usize) -> Vec<f32> {
        (0..len).map(|_| self.next_normal()).collect()
    }
}

/// Noise for a batch: one [`NoiseStream`] per image.
#[derive(Debug, Clone)]
pub struct BatchNoise {
    streams: Vec<NoiseStream>,
}

impl BatchNoise {
    /// Streams for images `0..num_images` of a task seeded with `seed`.
    pub fn new(seed: u64, num_images: usize) -> Self {
        Self {
            streams: (0..num_images as u64)
                .map(|i| NoiseStream::new(seed, i))
                .collect(),
        }
    }

    /// A `(num_images, dims...)` tensor of standard normals on `device`, in `dtype`: image `i`'s
    /// slice comes from stream `i`. Drawn in f32 on the CPU, then converted and copied.
    pub fn sample(&mut self, per_image: &[usize], device: &Device, dtype: DType) -> Result<Tensor> {
        let len: usize = per_image.iter().product();
        let mut values = Vec::with_capacity(len * self.streams.len());
        for stream in &mut self.streams {
            values.extend(stream.normals(len));
        }
        let mut shape = Vec::with_capacity(per_image.len() + 1);
        shape.push(self.streams.len());
        shape.extend_from_slice(per_image);
        Ok(Tensor::from_vec(values, shape, &Device::Cpu)?
            .to_dtype(dtype)?
            .to_device(device)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_streams_differ() {
        let a = NoiseStream::new(7, 0).normals(64);
        assert_eq!(a, NoiseStream::new(7, 0).normals(64));
        assert_ne!(a, NoiseStream::new(7, 1).normals(64));
        assert_ne!(a, NoiseStream::new(8, 0).normals(64));
    }

    #[test]
    fn odd_requests_continue_the_same_sequence() {
        let whole = NoiseStream::new(3, 2).normals(10);
        let mut split = NoiseStream::new(3, 2);
        let mut parts = split.normals(3);
        parts.extend(split.normals(7));
        assert_eq!(whole, parts);
    }

    #[test]
    fn values_look_standard_normal() {
        let values = NoiseStream::new(42, 0).normals(100_000);
        let n = values.len() as f64;
        let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let var = values
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / n;
        assert!(mean.abs() < 0.02, "mean {mean}");
        assert!((var - 1.0).abs() < 0.03, "variance {var}");
        assert!(values.iter().all(|v| v.is_finite()));
    }

    /// Pins the algorithm: a change here changes every node's images, so it needs a new version.
    #[test]
    fn known_values() {
        let values = NoiseStream::new(0, 0).normals(4);
        let bits: Vec<u32> = values.iter().map(|v| v.to_bits()).collect();
        assert_eq!(bits, KNOWN_BITS, "values {values:?}");
    }

    const KNOWN_BITS: [u32; 4] = [1060248470, 1066052370, 1034309015, 3203254456];
}
