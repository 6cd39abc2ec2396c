//! The result check shared by the relayer and the client.

use alloy_primitives::B256;
use image::{ImageFormat, RgbImage};
use verinfer_task::{
    FinishReason, ResultMismatch, TextOutput, png_phash, text_digest, verify_images, verify_text,
};

fn gradient_png(seed: u8) -> Vec<u8> {
    let image = RgbImage::from_fn(64, 64, |x, y| {
        image::Rgb([
            (x as u8).wrapping_mul(4).wrapping_add(seed),
            (y as u8).wrapping_mul(4),
            ((x + y) as u8).wrapping_mul(seed | 1),
        ])
    });
    let mut png = std::io::Cursor::new(Vec::new());
    image.write_to(&mut png, ImageFormat::Png).unwrap();
    png.into_inner()
}

#[test]
fn images_match_only_their_revealed_phashes_in_order() {
    let pngs = [gradient_png(1), gradient_png(90)];
    let phashes: Vec<u64> = pngs
        .iter()
        .enumerate()
        .map(|(index, png)| png_phash(index, png).unwrap())
        .collect();
    assert_ne!(phashes[0], phashes[1]);
    verify_images(&pngs, &phashes).unwrap();

    let swapped = [phashes[1], phashes[0]];
    assert_eq!(
        verify_images(&pngs, &swapped),
        Err(ResultMismatch::PhashMismatch {
            index: 0,
            computed: phashes[0],
            revealed: phashes[1],
        })
    );
    assert_eq!(
        verify_images(&pngs[..1], &phashes),
        Err(ResultMismatch::ImageCount {
            revealed: 2,
            uploaded: 1
        })
    );
}

#[test]
fn malformed_images_are_named() {
    let not_png = b"GIF89a...".to_vec();
    let error = verify_images(&[not_png], &[0]).unwrap_err();
    assert_eq!(error, ResultMismatch::NotPng { index: 0 });
    assert!(error.is_malformed());

    let mut truncated = gradient_png(3);
    truncated.truncate(40);
    let error = verify_images(&[gradient_png(3), truncated], &[0, 0]).unwrap_err();
    // Image 0 is checked first and differs; the truncated one is reached only when 0 matches.
    assert!(matches!(
        error,
        ResultMismatch::PhashMismatch { index: 0, .. }
    ));
    let first = png_phash(0, &gradient_png(3)).unwrap();
    let mut truncated = gradient_png(3);
    truncated.truncate(40);
    let error = verify_images(&[gradient_png(3), truncated], &[first, 0]).unwrap_err();
    assert!(
        matches!(error, ResultMismatch::UndecodablePng { index: 1, .. }),
        "{error:?}"
    );
}

#[test]
fn text_matches_only_its_digest() {
    let output = TextOutput {
        text: "hello".to_owned(),
        token_ids: vec![1, 2, 3],
        finish_reason: FinishReason::Stop,
    };
    let digest = text_digest(&output);
    assert_eq!(verify_text(&output, digest), Ok(digest));
    let error = verify_text(&output, B256::ZERO).unwrap_err();
    assert_eq!(
        error,
        ResultMismatch::TextDigestMismatch {
            computed: digest,
            revealed: B256::ZERO
        }
    );
    assert!(!error.is_malformed());
}
