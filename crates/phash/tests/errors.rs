//! Bad input gets a clear error that names the problem (and the file, for `phash_file`).

use std::path::PathBuf;

use verinfer_phash::{JpegError, PhashError, decode_jpeg, phash_bytes, phash_file};

fn image(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/images")
        .join(name)
}

#[test]
fn missing_file_names_the_file() {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("no-such-image.png");
    let err = phash_file(&path).expect_err("missing file");
    assert!(matches!(err, PhashError::Read { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("no-such-image.png") && message.contains("cannot read"),
        "{message}"
    );
}

#[test]
fn not_an_image() {
    let err = phash_bytes(b"definitely not pixels").expect_err("text is not an image");
    assert!(err.to_string().contains("cannot decode"), "{err}");

    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("notes.png");
    std::fs::write(&path, b"definitely not pixels").expect("write");
    let err = phash_file(&path).expect_err("text is not an image");
    assert!(matches!(err, PhashError::DecodeFile { .. }), "{err:?}");
    assert!(err.to_string().contains("notes.png"), "{err}");
}

#[test]
fn truncated_png_and_jpeg_are_errors() {
    for name in ["scene_3_257x193.png", "jpeg_q90_420.jpg"] {
        let bytes = std::fs::read(image(name)).expect("read image");
        for cut in [bytes.len() / 3, bytes.len() - 40] {
            let err = phash_bytes(&bytes[..cut]).expect_err("truncated input");
            assert!(
                err.to_string().contains("cannot decode"),
                "{name} cut at {cut}: {err}"
            );
        }
    }
    // Like Pillow ("image file is truncated"): no image from a cut-off JPEG scan.
    let bytes = std::fs::read(image("jpeg_q90_420.jpg")).expect("read image");
    assert_eq!(
        decode_jpeg(&bytes[..bytes.len() / 2]),
        Err(JpegError::Malformed("truncated image data"))
    );
}

#[test]
fn empty_input() {
    assert!(phash_bytes(&[]).is_err());
    assert_eq!(decode_jpeg(&[]), Err(JpegError::NotJpeg));
}

#[test]
fn partially_refined_progressive_jpeg_is_left_to_the_fallback_decoder() {
    // libjpeg block-smooths such files; that is not reproduced, so `decode_jpeg` says
    // so and `phash_bytes` hashes the `image` crate's decode instead.
    let bytes = std::fs::read(image("jpeg_progressive_partial.jpg")).expect("read image");
    assert!(matches!(
        decode_jpeg(&bytes),
        Err(JpegError::Unsupported(_))
    ));
    assert!(phash_bytes(&bytes).is_ok());
}
