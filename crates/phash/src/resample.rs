//! Pillow's `Image.resize(size, Image.Resampling.LANCZOS)` for 8-bit grayscale (mode "L").
//!
//! Mirrors `libImaging/Resample.c`: separable two-pass convolution, the pass order
//! Pillow picks, per-output coefficients computed in f64 and normalised to sum 1, then
//! converted to fixed point with `PRECISION_BITS = 22` and accumulated in i32 with a
//! rounding bias of `1 << 21`, the result clipped to 0..=255. Every step matches
//! Pillow's integer results exactly.

use image::GrayImage;

/// Fixed-point precision of the 8-bit resampler (`32 - 8 - 2` in Pillow).
const PRECISION_BITS: u32 = 32 - 8 - 2;
/// Lanczos window radius (a = 3) before scaling by the downscale factor.
const LANCZOS_SUPPORT: f64 = 3.0;

/// Resize an 8-bit grayscale image with Pillow's LANCZOS filter, bit-identical to
/// `Image.resize((width, height), Image.Resampling.LANCZOS)` on an "L" image.
pub fn resize_lanczos(src: &GrayImage, width: u32, height: u32) -> GrayImage {
    let (in_w, in_h) = src.dimensions();
    let pixels = resize_lanczos_raw(src.as_raw(), in_w as usize, in_h as usize, width as usize, height as usize);
    GrayImage::from_raw(width, height, pixels).unwrap_or_else(|| unreachable!("buffer is width * height bytes"))
}

/// Same as [`resize_lanczos`] on a raw row-major buffer of `in_w * in_h` bytes.
///
/// # Panics
/// If `src.len() != in_w * in_h`.
pub fn resize_lanczos_raw(src: &[u8], in_w: usize, in_h: usize, out_w: usize, out_h: usize) -> Vec<u8> {
    assert_eq!(src.len(), in_w * in_h, "source buffer must hold in_w * in_h pixels");
    let need_horizontal = out_w != in_w;
    let need_vertical = out_h != in_h;
    if !need_horizontal && !need_vertical {
        return src.to_vec();
    }

    // Pillow runs the vertical pass first only when the height shrinks by more than
    // twice as much as the width; the order changes the intermediate rounding.
    let (in_w_i, in_h_i, out_w_i, out_h_i) = (in_w as i64, in_h as i64, out_w as i64, out_h as i64);
    let horizontal_first = !(in_h_i - out_h_i > 0 && in_h_i - out_h_i > (in_w_i - out_w_i) * 2);

    if horizontal_first {
        let vertical = Kernel::new(in_h, out_h);
        if !need_horizontal {
            return vertical_pass(src, in_w, &vertical, 0);
        }
        // Only the source rows the vertical pass will read get the horizontal pass.
        let first_row = vertical.bounds.first().map_or(0, |b| b.start);
        let end_row = vertical.bounds.last().map_or(0, |b| b.start + b.len);
        let horizontal = Kernel::new(in_w, out_w);
        let rows = &src[first_row * in_w..end_row * in_w];
        let tmp = horizontal_pass(rows, in_w, end_row - first_row, &horizontal);
        if !need_vertical {
            return tmp;
        }
        vertical_pass(&tmp, out_w, &vertical, first_row)
    } else {
        let vertical = Kernel::new(in_h, out_h);
        let tmp = vertical_pass(src, in_w, &vertical, 0);
        if !need_horizontal {
            return tmp;
        }
        horizontal_pass(&tmp, in_w, out_h, &Kernel::new(in_w, out_w))
    }
}

/// Source span of one output sample.
#[derive(Clone, Copy, Debug)]
struct Span {
    start: usize,
    len: usize,
}

/// Fixed-point filter taps for one axis: output `i` reads `bounds[i]` and uses
/// `weights[i * stride..][..bounds[i].len]`.
struct Kernel {
    stride: usize,
    bounds: Vec<Span>,
    weights: Vec<i32>,
}

impl Kernel {
    /// Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for box `(0, in_size)`.
    fn new(in_size: usize, out_size: usize) -> Self {
        // Pillow receives the box as C floats; `in1 - in0` is a float subtraction.
        let (in0, in1) = (0.0f32, in_size as f32);
        let scale = f64::from(in1 - in0) / out_size as f64;
        let filterscale = scale.max(1.0);
        let support = LANCZOS_SUPPORT * filterscale;
        let stride = support.ceil() as usize * 2 + 1;
        let inv_filterscale = 1.0 / filterscale;

        let mut bounds = Vec::with_capacity(out_size);
        let mut weights = vec![0i32; out_size * stride];
        let mut taps = vec![0f64; stride];
        for (xx, out) in weights.chunks_exact_mut(stride).enumerate() {
            let center = f64::from(in0) + (xx as f64 + 0.5) * scale;
            // C truncating casts, exactly as Pillow rounds the window ends.
            let xmin = ((center - support + 0.5) as i64).max(0);
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64);
            let len = (xmax - xmin).max(0) as usize;
            let xmin = xmin as usize;

            let mut total = 0.0;
            for (x, tap) in taps[..len].iter_mut().enumerate() {
                let w = lanczos(((x + xmin) as f64 - center + 0.5) * inv_filterscale);
                *tap = w;
                total += w;
            }
            if total != 0.0 {
                for tap in &mut taps[..len] {
                    *tap /= total;
                }
            }
            for (fixed, &tap) in out.iter_mut().zip(&taps[..len]) {
                *fixed = to_fixed(tap);
            }
            bounds.push(Span { start: xmin, len });
        }
        Self { stride, bounds, weights }
    }

    fn taps(&self, out: usize) -> (Span, &[i32]) {
        let span = self.bounds[out];
        (span, &self.weights[out * self.stride..][..span.len])
    }
}

/// Pillow's `normalize_coeffs_8bpc`: round half away from zero, then truncate.
fn to_fixed(tap: f64) -> i32 {
    let scaled = tap * f64::from(1u32 << PRECISION_BITS);
    if tap < 0.0 { (-0.5 + scaled) as i32 } else { (0.5 + scaled) as i32 }
}

fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        return 1.0;
    }
    let x = x * std::f64::consts::PI;
    x.sin() / x
}

fn lanczos(x: f64) -> f64 {
    if (-LANCZOS_SUPPORT..LANCZOS_SUPPORT).contains(&x) { sinc(x) * sinc(x / 3.0) } else { 0.0 }
}

/// Pillow's `clip8`: drop the fraction bits (arithmetic shift), clamp to a byte.
#[inline(always)]
fn clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

const ROUNDING_BIAS: i32 = 1 << (PRECISION_BITS - 1);

/// Resample `rows` rows of `src` (each `in_w` bytes) horizontally.
fn horizontal_pass(src: &[u8], in_w: usize, rows: usize, kernel: &Kernel) -> Vec<u8> {
    let out_w = kernel.bounds.len();
    let mut out = vec![0u8; out_w * rows];
    if out_w == 0 {
        return out;
    }
    for (y, out_row) in out.chunks_exact_mut(out_w).enumerate() {
        let row = &src[y * in_w..(y + 1) * in_w];
        for (xx, px) in out_row.iter_mut().enumerate() {
            let (span, taps) = kernel.taps(xx);
            let acc = dot(&row[span.start..span.start + span.len], taps);
            *px = clip8(ROUNDING_BIAS.wrapping_add(acc));
        }
    }
    out
}

/// Integer dot product; the true sum always fits in i32 (Pillow relies on it too), so
/// wrapping adds in any order give Pillow's result.
#[inline(always)]
fn dot(pixels: &[u8], taps: &[i32]) -> i32 {
    pixels.iter().zip(taps).fold(0i32, |acc, (&p, &k)| acc.wrapping_add(i32::from(p).wrapping_mul(k)))
}

/// Resample columns: output row `yy` combines rows `bounds[yy]` of `src` (rows of `width`
/// bytes), whose first row is source row `row_offset`.
fn vertical_pass(src: &[u8], width: usize, kernel: &Kernel, row_offset: usize) -> Vec<u8> {
    let out_h = kernel.bounds.len();
    let mut out = vec![0u8; width * out_h];
    let mut acc = vec![0i32; width];
    if width == 0 {
        return out;
    }
    for (yy, out_row) in out.chunks_exact_mut(width).enumerate() {
        let (span, taps) = kernel.taps(yy);
        acc.fill(ROUNDING_BIAS);
        for (y, &k) in taps.iter().enumerate() {
            let row = &src[(span.start - row_offset + y) * width..][..width];
            for (a, &p) in acc.iter_mut().zip(row) {
                *a = a.wrapping_add(i32::from(p).wrapping_mul(k));
            }
        }
        for (px, &a) in out_row.iter_mut().zip(&acc) {
            *px = clip8(a);
        }
    }
    out
}
