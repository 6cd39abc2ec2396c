//! Pillow's `Image.convert("L")` for the images the `image` crate decodes.
//!
//! Pillow's luma is the integer ITU-R 601-2 transform
//! `L = (R * 19595 + G * 38470 + B * 7471 + 0x8000) >> 16`; alpha is dropped, never
//! composited. How Pillow *opens* a file decides the source mode, so each `image`
//! buffer type maps to the Pillow mode the same file would have:
//!
//! | file / `DynamicImage`            | Pillow mode      | `convert("L")`           |
//! |----------------------------------|------------------|--------------------------|
//! | 8-bit gray (`Luma8`)             | L                | unchanged                |
//! | 1/2/4-bit gray (expanded)        | 1, L (scaled)    | unchanged                |
//! | gray + alpha (`LumaA8`)          | LA               | gray channel             |
//! | RGB, RGBA, palette (expanded)    | RGB, RGBA, P     | luma of R, G, B          |
//! | 16-bit gray (`Luma16`)           | I;16             | `min(value, 255)`        |
//! | 16-bit gray + alpha (`LumaA16`)  | RGBA via LA;16B  | high byte of gray        |
//! | 16-bit RGB(A) (`Rgb16`/`Rgba16`) | RGB(A), high byte| luma of high bytes       |
//!
//! A 16-bit grayscale PNG with a `tRNS` chunk decodes to `LumaA16` here but stays
//! "I;16" in Pillow (clamped, not high byte); [`crate::phash_bytes`] detects that case
//! from the PNG header and uses [`Gray16Alpha::Clamp`].

use image::{DynamicImage, GrayImage};

/// How to read the gray channel of a 16-bit gray + alpha buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Gray16Alpha {
    /// A PNG of colour type 4 (gray + alpha), 16-bit: Pillow keeps the high byte.
    #[default]
    HighByte,
    /// A 16-bit gray PNG whose `tRNS` chunk was expanded to alpha: Pillow opens it as
    /// "I;16" and clamps each value to 255.
    Clamp,
}

/// Pillow's integer ITU-R 601-2 luma of one RGB pixel.
#[inline(always)]
pub fn luma_601(r: u8, g: u8, b: u8) -> u8 {
    ((u32::from(r) * 19595 + u32::from(g) * 38470 + u32::from(b) * 7471 + 0x8000) >> 16) as u8
}

/// `Image.convert("L")` of the image Pillow would have opened from the same file.
///
/// Float images (`Rgb32F`, `Rgba32F`), which PNG and JPEG never produce, are first
/// converted to 8-bit RGB by the `image` crate; Pillow has no equivalent.
pub fn to_luma8(img: &DynamicImage) -> GrayImage {
    to_luma8_with(img, Gray16Alpha::default())
}

/// [`to_luma8`] with an explicit reading of 16-bit gray + alpha buffers.
pub fn to_luma8_with(img: &DynamicImage, gray16_alpha: Gray16Alpha) -> GrayImage {
    let (w, h) = (img.width(), img.height());
    let pixels: Vec<u8> = match img {
        DynamicImage::ImageLuma8(buf) => buf.as_raw().clone(),
        DynamicImage::ImageLumaA8(buf) => buf.as_raw().chunks_exact(2).map(|p| p[0]).collect(),
        DynamicImage::ImageRgb8(buf) => rgb_luma(buf.as_raw(), 3),
        DynamicImage::ImageRgba8(buf) => rgb_luma(buf.as_raw(), 4),
        DynamicImage::ImageLuma16(buf) => buf.as_raw().iter().map(|&v| clamp16(v)).collect(),
        DynamicImage::ImageLumaA16(buf) => match gray16_alpha {
            Gray16Alpha::HighByte => buf.as_raw().chunks_exact(2).map(|p| high_byte(p[0])).collect(),
            Gray16Alpha::Clamp => buf.as_raw().chunks_exact(2).map(|p| clamp16(p[0])).collect(),
        },
        DynamicImage::ImageRgb16(buf) => rgb16_luma(buf.as_raw(), 3),
        DynamicImage::ImageRgba16(buf) => rgb16_luma(buf.as_raw(), 4),
        other => rgb_luma(other.to_rgb8().as_raw(), 3),
    };
    GrayImage::from_raw(w, h, pixels).unwrap_or_else(|| unreachable!("one luma byte per pixel"))
}

fn rgb_luma(raw: &[u8], channels: usize) -> Vec<u8> {
    raw.chunks_exact(channels).map(|p| luma_601(p[0], p[1], p[2])).collect()
}

fn rgb16_luma(raw: &[u16], channels: usize) -> Vec<u8> {
    raw.chunks_exact(channels).map(|p| luma_601(high_byte(p[0]), high_byte(p[1]), high_byte(p[2]))).collect()
}

/// Pillow's 16-bit rawmodes ("RGB;16B", "LA;16B", ...) keep the most significant byte.
#[inline(always)]
fn high_byte(v: u16) -> u8 {
    (v >> 8) as u8
}

/// Pillow's "I;16" to "L": values above 255 saturate.
#[inline(always)]
fn clamp16(v: u16) -> u8 {
    v.min(255) as u8
}
