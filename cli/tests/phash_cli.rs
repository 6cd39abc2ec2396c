//! `verinfer phash FILE...`: hashes per file on stdout, errors per file on stderr.

use std::{path::PathBuf, process::Command};

const BIN: &str = env!("CARGO_BIN_EXE_verinfer");

fn image(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/phash/testdata/images")
        .join(name)
}

#[test]
fn hashes_good_files_and_reports_bad_ones() {
    let scratch = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("phash-cli-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).expect("scratch dir");
    let not_an_image = scratch.join("notes.png");
    std::fs::write(&not_an_image, b"these are not pixels").expect("write bad file");
    let missing = scratch.join("missing.png");
    let (flat, scene) = (image("flat_gray_128.png"), image("scene_0_512x512.png"));

    let output = Command::new(BIN)
        .arg("phash")
        .args([&flat, &not_an_image, &scene, &missing])
        .env("RUST_LOG", "warn")
        .output()
        .expect("run verinfer");

    let stdout = String::from_utf8(output.stdout).expect("utf-8 stdout");
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Good files in argument order, with imagehash's hashes (testdata/vectors.json).
    assert_eq!(
        stdout,
        format!(
            "{}\t8000000000000000\n{}\tb8b13c4ec638b3c5\n",
            flat.display(),
            scene.display()
        ),
        "stderr: {stderr}"
    );
    assert!(
        !output.status.success(),
        "a failed file must fail the command"
    );
    assert!(
        stderr.contains(&not_an_image.display().to_string()),
        "names the undecodable file: {stderr}"
    );
    assert!(
        stderr.contains(&missing.display().to_string()),
        "names the missing file: {stderr}"
    );
    assert!(stderr.contains("2 of 4 files"), "{stderr}");
}

#[test]
fn all_good_files_succeed() {
    let output = Command::new(BIN)
        .arg("phash")
        .arg(image("tiny_1x1.png"))
        .output()
        .expect("run verinfer");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).ends_with("tiny_1x1.png\t8000000000000000\n"));
}
