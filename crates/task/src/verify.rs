//! The one result check: does the data behind a result match what its node revealed on chain?
//!
//! Image results are PNG files whose pHashes ([`verinfer_phash`], bit-exact with Python's
//! imagehash) must equal the revealed ones, image by image; text results are [`TextOutput`]s whose
//! [`text_digest`] must equal the revealed digest. The relayer runs it before it stores an upload;
//! the client runs it again on what the relayer serves, since the relayer is not trusted.

use alloy_primitives::B256;

use crate::{TextOutput, text_digest};

/// The eight bytes every PNG file starts with.
pub const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// Why a result does not match its reveal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResultMismatch {
    /// A different number of images than pHashes revealed.
    #[error("{uploaded} images for {revealed} revealed pHashes")]
    ImageCount {
        /// pHashes revealed on chain.
        revealed: usize,
        /// Images given.
        uploaded: usize,
    },
    /// An image is not a PNG file (wrong signature).
    #[error("image {index} is not a PNG file")]
    NotPng {
        /// Image index.
        index: usize,
    },
    /// An image has the PNG signature but does not decode.
    #[error("image {index}: {reason}")]
    UndecodablePng {
        /// Image index.
        index: usize,
        /// The decoder's message.
        reason: String,
    },
    /// An image's pHash differs from the revealed one.
    #[error(
        "image {index} has pHash {computed:#018x}, but the node revealed {revealed:#018x} on chain"
    )]
    PhashMismatch {
        /// Image index.
        index: usize,
        /// pHash of the given PNG.
        computed: u64,
        /// pHash revealed on chain.
        revealed: u64,
    },
    /// The text output's digest differs from the revealed one.
    #[error("the text output digests to {computed}, but the node revealed {revealed} on chain")]
    TextDigestMismatch {
        /// [`text_digest`] of the given output.
        computed: B256,
        /// Digest revealed on chain.
        revealed: B256,
    },
}

impl ResultMismatch {
    /// Whether the data is malformed (not a PNG, undecodable) rather than merely different.
    pub const fn is_malformed(&self) -> bool {
        matches!(self, Self::NotPng { .. } | Self::UndecodablePng { .. })
    }
}

/// The pHash of image `index` of a result, checked to be a decodable PNG.
pub fn png_phash(index: usize, png: &[u8]) -> Result<u64, ResultMismatch> {
    if !png.starts_with(PNG_SIGNATURE) {
        return Err(ResultMismatch::NotPng { index });
    }
    verinfer_phash::phash_bytes(png)
        .map(|hash| hash.0)
        .map_err(|error| ResultMismatch::UndecodablePng {
            index,
            reason: error.to_string(),
        })
}

/// Checks image `index` against the pHash revealed for it.
pub fn verify_image(index: usize, png: &[u8], revealed: u64) -> Result<(), ResultMismatch> {
    let computed = png_phash(index, png)?;
    if computed != revealed {
        return Err(ResultMismatch::PhashMismatch {
            index,
            computed,
            revealed,
        });
    }
    Ok(())
}

/// Checks the count of images, then each image in order, against the revealed pHashes.
pub fn verify_images<P: AsRef<[u8]>>(pngs: &[P], revealed: &[u64]) -> Result<(), ResultMismatch> {
    if pngs.len() != revealed.len() {
        return Err(ResultMismatch::ImageCount {
            revealed: revealed.len(),
            uploaded: pngs.len(),
        });
    }
    for (index, (png, &phash)) in pngs.iter().zip(revealed).enumerate() {
        verify_image(index, png.as_ref(), phash)?;
    }
    Ok(())
}

/// Checks a text output against the revealed digest; returns the digest.
pub fn verify_text(output: &TextOutput, revealed: B256) -> Result<B256, ResultMismatch> {
    let computed = text_digest(output);
    if computed != revealed {
        return Err(ResultMismatch::TextDigestMismatch { computed, revealed });
    }
    Ok(computed)
}
