//! Pillow's `Image.convert("L")` for the images the `image` crate decodes.
//!
//! Pillow's luma is the integer ITU-R 601-2 transform
//! `L = (R * 19595 + G * 38470 + B * 7471 + 0x8000) >> 16`; alpha is dropped, never
//! composited. How Pillow *opens* a file decides the source mode, so each `image`
//! buffer type maps to the Pillow mode the same file would have:
//!
//! | file / `DynamicImage`            | Pillow mode       | `convert("L")`        |
//! |----------------------------------|-------------------|-----------------------|
//! | 8-bit gray (`Luma8`)             | L                 | unchanged             |
//! | 1/2/4-bit gray (expanded)        | 1, L (scaled)     | unchanged             |
//! | gray + alpha (`LumaA8`)          | LA                | gray channel          |
//! | RGB, RGBA, palette (expanded)    | RGB, RGBA, P      | luma of R, G, B       |
//! | 16-bit gray (`Luma16`)           | I;16              | `min(value, 255)`     |
//! | 16-bit gray + alpha (`LumaA16`)  | RGBA via LA;16B   | high byte of gray     |
//! | 16-bit RGB(A) (`Rgb16`/`Rgba16`) | RGB(A), high byte | luma of high bytes    |
//!
//! A 16-bit grayscale PNG with a `tRNS` chunk decodes to `LumaA16` here but stays
//! "I;16" in Pillow (clamped, not high byte); [`crate::phash_bytes`] detects that case
//! from the PNG header and uses [`Gray16Alpha::Clamp`].

use image::{DynamicImage, GrayImage};

use crate::{resample::GrayRows, simd::dispatch};

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
    let pixels = luma_pixels(&LumaRows::new(img, gray16_alpha));
    GrayImage::from_raw(img.width(), img.height(), pixels)
        .unwrap_or_else(|| unreachable!("one byte per pixel"))
}

dispatch! {
    fn luma_pixels(rows: &LumaRows<'_>) -> Vec<u8> => luma_pixels_inline
}

#[inline(always)]
fn luma_pixels_inline(rows: &LumaRows<'_>) -> Vec<u8> {
    let w = rows.width();
    let mut pixels = vec![0u8; w * rows.height()];
    if w > 0 {
        let mut scratch = vec![0u8; w];
        for (y, dst) in pixels.chunks_exact_mut(w).enumerate() {
            dst.copy_from_slice(rows.row(y, &mut scratch));
        }
    }
    pixels
}

/// Luma rows of a decoded image, converted on demand.
pub(crate) struct LumaRows<'a> {
    img: &'a DynamicImage,
    gray16_alpha: Gray16Alpha,
    /// 8-bit RGB copy of float images, which have no Pillow counterpart.
    fallback_rgb: Option<image::RgbImage>,
}

impl<'a> LumaRows<'a> {
    pub(crate) fn new(img: &'a DynamicImage, gray16_alpha: Gray16Alpha) -> Self {
        let fallback_rgb = match img {
            DynamicImage::ImageLuma8(_)
            | DynamicImage::ImageLumaA8(_)
            | DynamicImage::ImageRgb8(_)
            | DynamicImage::ImageRgba8(_)
            | DynamicImage::ImageLuma16(_)
            | DynamicImage::ImageLumaA16(_)
            | DynamicImage::ImageRgb16(_)
            | DynamicImage::ImageRgba16(_) => None,
            other => Some(other.to_rgb8()),
        };
        Self {
            img,
            gray16_alpha,
            fallback_rgb,
        }
    }
}

impl GrayRows for LumaRows<'_> {
    fn width(&self) -> usize {
        self.img.width() as usize
    }

    fn height(&self) -> usize {
        self.img.height() as usize
    }

    #[inline(always)]
    fn row<'b>(&'b self, y: usize, scratch: &'b mut [u8]) -> &'b [u8] {
        let w = self.width();
        let out = &mut scratch[..w];
        match self.img {
            DynamicImage::ImageLuma8(buf) => return &buf.as_raw()[y * w..(y + 1) * w],
            DynamicImage::ImageLumaA8(buf) => {
                for (o, p) in out
                    .iter_mut()
                    .zip(buf.as_raw()[y * w * 2..(y + 1) * w * 2].chunks_exact(2))
                {
                    *o = p[0];
                }
            }
            DynamicImage::ImageRgb8(buf) => {
                rgb_row::<3>(&buf.as_raw()[y * w * 3..(y + 1) * w * 3], out)
            }
            DynamicImage::ImageRgba8(buf) => {
                rgb_row::<4>(&buf.as_raw()[y * w * 4..(y + 1) * w * 4], out)
            }
            DynamicImage::ImageLuma16(buf) => {
                for (o, &v) in out.iter_mut().zip(&buf.as_raw()[y * w..(y + 1) * w]) {
                    *o = clamp16(v);
                }
            }
            DynamicImage::ImageLumaA16(buf) => {
                let row = buf.as_raw()[y * w * 2..(y + 1) * w * 2].chunks_exact(2);
                match self.gray16_alpha {
                    Gray16Alpha::HighByte => out
                        .iter_mut()
                        .zip(row)
                        .for_each(|(o, p)| *o = high_byte(p[0])),
                    Gray16Alpha::Clamp => out
                        .iter_mut()
                        .zip(row)
                        .for_each(|(o, p)| *o = clamp16(p[0])),
                }
            }
            DynamicImage::ImageRgb16(buf) => {
                rgb16_row::<3>(&buf.as_raw()[y * w * 3..(y + 1) * w * 3], out)
            }
            DynamicImage::ImageRgba16(buf) => {
                rgb16_row::<4>(&buf.as_raw()[y * w * 4..(y + 1) * w * 4], out)
            }
            _ => match &self.fallback_rgb {
                Some(rgb) => rgb_row::<3>(&rgb.as_raw()[y * w * 3..(y + 1) * w * 3], out),
                None => unreachable!("LumaRows::new converts every other buffer type"),
            },
        }
        out
    }
}

#[inline(always)]
fn rgb_row<const CHANNELS: usize>(raw: &[u8], out: &mut [u8]) {
    for (o, p) in out.iter_mut().zip(raw.chunks_exact(CHANNELS)) {
        *o = luma_601(p[0], p[1], p[2]);
    }
}

#[inline(always)]
fn rgb16_row<const CHANNELS: usize>(raw: &[u16], out: &mut [u8]) {
    for (o, p) in out.iter_mut().zip(raw.chunks_exact(CHANNELS)) {
        *o = luma_601(high_byte(p[0]), high_byte(p[1]), high_byte(p[2]));
    }
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
