//! Every committed test image must hash exactly to the value Python's
//! `imagehash.phash` computed for it (`testdata/vectors.json`, from `generate.py`).

use std::{collections::BTreeMap, path::PathBuf};

use verinfer_phash::{PHash, phash_bytes, phash_file};

fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

fn vectors() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(testdata().join("vectors.json")).expect("read vectors.json");
    serde_json::from_str(&text).expect("vectors.json is a map of file name to hex")
}

#[test]
fn matches_imagehash_on_every_vector() {
    let vectors = vectors();
    assert!(
        vectors.len() >= 50,
        "expected the full vector set, found {}",
        vectors.len()
    );
    let mut mismatches = Vec::new();
    for (name, hex) in &vectors {
        let expected: PHash = hex
            .parse()
            .unwrap_or_else(|e| panic!("{name}: bad vector {hex:?}: {e}"));
        let got = match phash_file(&testdata().join("images").join(name)) {
            Ok(got) => got,
            Err(e) => {
                mismatches.push(format!("{name}: error {e}"));
                continue;
            }
        };
        if got != expected {
            mismatches.push(format!(
                "{name}: expected {expected}, got {got}, distance {}",
                expected.distance(got)
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} vectors differ:\n{}",
        mismatches.len(),
        vectors.len(),
        mismatches.join("\n")
    );
}

#[test]
fn every_committed_image_has_a_vector() {
    let vectors = vectors();
    for entry in std::fs::read_dir(testdata().join("images")).expect("list images") {
        let name = entry
            .expect("dir entry")
            .file_name()
            .into_string()
            .expect("utf-8 name");
        assert!(
            vectors.contains_key(&name),
            "{name} has no vector; re-run generate.py"
        );
    }
}

#[test]
fn bytes_and_file_agree() {
    let path = testdata().join("images").join("jpeg_q90_420.jpg");
    let bytes = std::fs::read(&path).expect("read image");
    assert_eq!(
        phash_bytes(&bytes).expect("hash bytes"),
        phash_file(&path).expect("hash file")
    );
}
