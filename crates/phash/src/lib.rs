//! 64-bit perceptual hash, bit-identical to Python `imagehash.phash` (imagehash 4.3,
//! defaults `hash_size=8`, `highfreq_factor=4`).
//!
//! Consensus code: it depends only on `image` (and optionally `image_hasher` for conversions),
//! never on the chain, HTTP or storage, so every node, the relayer and the client hash alike.
//!
//! Peers hash images in Python, and the contract compares hashes by Hamming distance,
//! so this crate reproduces every step of
//! `imagehash.phash(PIL.Image.open(path))` exactly rather than approximately:
//!
//! 1. decode like Pillow and `convert("L")` ([`to_luma8`]: integer ITU-R 601-2 luma,
//!    alpha dropped, Pillow's rules for 16-bit, palette and low-bit-depth files);
//! 2. `resize((32, 32), LANCZOS)` with Pillow's fixed-point two-pass resampler
//!    ([`resize_lanczos`]);
//! 3. `scipy.fftpack.dct` along axis 0 then axis 1, with pocketfft's exact operation
//!    order ([`dct2_32`]);
//! 4. top-left 8×8 block, numpy median, `bit = value > median`, row-major, first bit
//!    most significant ([`hash_luma32`]).
//!
//! `crates/phash/testdata/vectors.json` holds reference hashes computed by imagehash on
//! the committed test images; the integration test requires exact equality.

mod dct;
mod jpeg;
mod luma;
mod resample;
mod simd;

use std::{fmt, io::Cursor, path::Path, path::PathBuf, str::FromStr};

use image::{DynamicImage, GrayImage, ImageError};

pub use dct::{DCT_LEN, dct2_32, dct2d_low_frequencies};
pub use jpeg::{JpegError, decode_jpeg};
use luma::LumaRows;
pub use luma::{Gray16Alpha, luma_601, to_luma8, to_luma8_with};
pub use resample::{resize_lanczos, resize_lanczos_raw};

/// Side of the square the image is resized to (`hash_size * highfreq_factor`).
pub const RESIZED_SIDE: u32 = DCT_LEN as u32;
/// Side of the low-frequency DCT block that becomes the hash (`hash_size`).
pub const HASH_SIDE: usize = 8;

/// A 64-bit perceptual hash. Bit 63 is imagehash's first (top-left) bit, so the hex
/// form equals `str(imagehash.phash(img))`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct PHash(pub u64);

impl PHash {
    /// Number of differing bits.
    pub fn distance(self, other: PHash) -> u32 {
        hamming(self.0, other.0)
    }

    /// 16 lowercase hex digits, as imagehash prints it.
    pub fn to_hex(&self) -> String {
        format!("{self}")
    }
}

/// Number of differing bits between two 64-bit hashes.
pub fn hamming(a: u64, b: u64) -> u32 {
    (a ^ b).count_ones()
}

impl fmt::Display for PHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::LowerHex for PHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Why a string is not a pHash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParsePHashError {
    /// The string is all hex digits but not 16 of them; holds its length.
    #[error("a pHash is 16 hex digits, got {0} characters")]
    Length(usize),
    /// The string holds a character that is not a hex digit (the first such one).
    #[error("a pHash is 16 hex digits, found {0:?}")]
    NotHex(char),
}

impl FromStr for PHash {
    type Err = ParsePHashError;

    /// Parses exactly 16 hex digits (either case, no prefix).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(bad) = s.chars().find(|c| !c.is_ascii_hexdigit()) {
            return Err(ParsePHashError::NotHex(bad));
        }
        if s.len() != 16 {
            return Err(ParsePHashError::Length(s.len()));
        }
        u64::from_str_radix(s, 16)
            .map(PHash)
            .map_err(|_| ParsePHashError::Length(s.len()))
    }
}

/// Why an image could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum PhashError {
    /// The image file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file that could not be read.
        path: PathBuf,
        /// The I/O error reading it.
        #[source]
        source: std::io::Error,
    },
    /// In-memory image bytes could not be decoded.
    #[error("cannot decode image: {source}")]
    Decode {
        /// The decoder's error.
        #[source]
        source: ImageError,
    },
    /// The contents of an image file could not be decoded.
    #[error("cannot decode {}: {source}", path.display())]
    DecodeFile {
        /// The file whose contents could not be decoded.
        path: PathBuf,
        /// The decoder's error.
        #[source]
        source: ImageError,
    },
}

/// pHash of a decoded image, as imagehash computes it for the image Pillow would have
/// opened from the same file (see [`to_luma8`] for how buffer types map to Pillow modes).
pub fn phash_image(img: &DynamicImage) -> PHash {
    phash_rows(&LumaRows::new(img, Gray16Alpha::default()))
}

/// pHash of an 8-bit grayscale image (Pillow mode "L").
pub fn phash_luma(gray: &GrayImage) -> PHash {
    phash_rows(&resample::GrayRowsOf(gray))
}

fn phash_image_with(img: &DynamicImage, gray16_alpha: Gray16Alpha) -> PHash {
    phash_rows(&LumaRows::new(img, gray16_alpha))
}

/// Luma conversion streams row by row into the resampler: no full-size gray copy.
fn phash_rows<S: resample::GrayRows>(rows: &S) -> PHash {
    let side = RESIZED_SIDE as usize;
    let small = resample::resize_rows(rows, side, side);
    let pixels: &[u8; DCT_LEN * DCT_LEN] = small
        .as_slice()
        .try_into()
        .unwrap_or_else(|_| unreachable!("resized to 32x32"));
    hash_luma32(pixels)
}

/// Steps 3 and 4 on an already resized 32×32 row-major grayscale image: 2-D DCT,
/// numpy median of the 8×8 low frequencies, `bit = coefficient > median`.
pub fn hash_luma32(pixels: &[u8; DCT_LEN * DCT_LEN]) -> PHash {
    let low = dct2d_low_frequencies(pixels);
    let median = numpy_median(&low);
    PHash(
        low.iter()
            .fold(0u64, |bits, &v| (bits << 1) | u64::from(v > median)),
    )
}

/// `numpy.median` of an even-length sample: the mean of the two middle values,
/// computed as `(a + b) / 2` like numpy's `mean` of two elements.
fn numpy_median(values: &[f64; HASH_SIDE * HASH_SIDE]) -> f64 {
    let mut sorted = *values;
    sorted.sort_unstable_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    (sorted[mid - 1] + sorted[mid]) / 2.0
}

/// pHash of encoded image bytes (PNG or JPEG).
pub fn phash_bytes(bytes: &[u8]) -> Result<PHash, PhashError> {
    decode_and_hash(bytes).map_err(|source| PhashError::Decode { source })
}

/// pHash of an image file (PNG or JPEG). Errors name the file.
pub fn phash_file(path: &Path) -> Result<PHash, PhashError> {
    let bytes = std::fs::read(path).map_err(|source| PhashError::Read {
        path: path.to_owned(),
        source,
    })?;
    decode_and_hash(&bytes).map_err(|source| PhashError::DecodeFile {
        path: path.to_owned(),
        source,
    })
}

fn decode_and_hash(bytes: &[u8]) -> Result<PHash, ImageError> {
    match decode_jpeg(bytes) {
        Ok(img) => return Ok(phash_image(&img)),
        // CMYK, arithmetic coding, ...: the `image` crate decodes those (not bit-exact).
        Err(JpegError::NotJpeg | JpegError::Unsupported(_)) => {}
        Err(err) => {
            return Err(ImageError::Decoding(image::error::DecodingError::new(
                image::ImageFormat::Jpeg.into(),
                err,
            )));
        }
    }
    let img = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()?
        .decode()?;
    let gray16_alpha = if is_png_gray16(bytes) {
        Gray16Alpha::Clamp
    } else {
        Gray16Alpha::HighByte
    };
    Ok(phash_image_with(&img, gray16_alpha))
}

/// Whether `bytes` is a PNG whose header says 16-bit grayscale (colour type 0); the
/// `image` crate expands its `tRNS` into an alpha channel, Pillow does not.
fn is_png_gray16(bytes: &[u8]) -> bool {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    // Signature, IHDR length and tag, width, height, then bit depth and colour type.
    bytes.starts_with(SIGNATURE)
        && bytes.get(12..16) == Some(b"IHDR")
        && bytes.get(24..26) == Some(&[16, 0])
}

#[cfg(feature = "image-hasher")]
mod image_hasher_compat {
    //! Conversions to `image_hasher`'s hash type, laid out like image_hasher's
    //! `BitOrder::MsbFirst` (imagehash-compatible) 8×8 hashes.

    use super::PHash;

    impl From<PHash> for image_hasher::ImageHash<[u8; 8]> {
        fn from(hash: PHash) -> Self {
            // Eight bytes always fit `[u8; 8]`.
            Self::from_bytes(&hash.0.to_be_bytes())
                .unwrap_or_else(|_| unreachable!("8 bytes fit [u8; 8]"))
        }
    }

    impl From<&image_hasher::ImageHash<[u8; 8]>> for PHash {
        fn from(hash: &image_hasher::ImageHash<[u8; 8]>) -> Self {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(hash.as_bytes());
            PHash(u64::from_be_bytes(bytes))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_format() {
        let h = PHash(0x8000_0000_0000_00ff);
        assert_eq!(h.to_hex(), "80000000000000ff");
        assert_eq!(format!("{h}"), "80000000000000ff");
        assert_eq!(format!("{h:x}"), "80000000000000ff");
        assert_eq!(PHash(1).to_hex(), "0000000000000001");
        assert_eq!("80000000000000ff".parse::<PHash>(), Ok(h));
        assert_eq!("80000000000000FF".parse::<PHash>(), Ok(h));
    }

    #[test]
    fn parse_rejects_malformed() {
        assert_eq!("123".parse::<PHash>(), Err(ParsePHashError::Length(3)));
        assert_eq!(
            "0123456789abcdef0".parse::<PHash>(),
            Err(ParsePHashError::Length(17))
        );
        assert_eq!(
            "+123456789abcdef".parse::<PHash>(),
            Err(ParsePHashError::NotHex('+'))
        );
        assert_eq!(
            "0x23456789abcdef".parse::<PHash>(),
            Err(ParsePHashError::NotHex('x'))
        );
        assert_eq!("".parse::<PHash>(), Err(ParsePHashError::Length(0)));
    }

    #[test]
    fn distances() {
        assert_eq!(hamming(0, u64::MAX), 64);
        assert_eq!(hamming(0b1011, 0b0001), 2);
        assert_eq!(PHash(0xff).distance(PHash(0x0f)), 4);
        assert_eq!(PHash(42).distance(PHash(42)), 0);
    }

    #[test]
    fn numpy_median_averages_middle_pair() {
        let mut v = [0.0; 64];
        for (i, x) in v.iter_mut().enumerate() {
            *x = (63 - i) as f64;
        }
        assert_eq!(numpy_median(&v), 31.5);
    }

    #[test]
    fn flat_image_hash_is_dc_only() {
        // Every AC coefficient is exactly 0, the median is 0, only DC is above it.
        assert_eq!(hash_luma32(&[128; 1024]), PHash(1 << 63));
        assert_eq!(hash_luma32(&[0; 1024]), PHash(0));
    }

    #[cfg(feature = "image-hasher")]
    #[test]
    fn image_hasher_round_trip() {
        let hash = PHash(0x8000_0000_0000_00ff);
        let converted: image_hasher::ImageHash<[u8; 8]> = hash.into();
        assert_eq!(converted.as_bytes(), &[0x80, 0, 0, 0, 0, 0, 0, 0xff]);
        assert_eq!(PHash::from(&converted), hash);
        assert_eq!(converted.dist(&PHash(0).into()), hash.distance(PHash(0)));
    }

    #[test]
    fn detects_png_gray16_header() {
        let mut header = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\0\0\x01\0\0\0\x01".to_vec();
        header.extend([16, 0, 0, 0, 0]);
        assert!(is_png_gray16(&header));
        header[25] = 4;
        assert!(!is_png_gray16(&header));
        assert!(!is_png_gray16(b"\xff\xd8\xff"));
    }
}
