//! Recomputes every vector in `testdata/vectors.json` (also checked against cast and solc by
//! `testdata/cross-check.sh`).

use std::{fs, path::Path};

use alloy_primitives::{Address, B256, U256, hex, keccak256};
use serde_json::Value;
use verinfer_task::{
    FinishReason, INVALID_ARGS, ModelDigest, TaskArgs, TextOutput, args_hash, image_commitment,
    image_commitment_preimage, invalid_args_commitment, model_digest, text_commitment,
    text_commitment_preimage, text_digest, text_digest_preimage,
};

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn vectors() -> Value {
    let path = crate_dir().join("testdata/vectors.json");
    serde_json::from_slice(&fs::read(&path).unwrap()).unwrap()
}

fn string(value: &Value, key: &str) -> String {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} missing in {value}"))
        .to_owned()
}

fn b256(value: &Value, key: &str) -> B256 {
    string(value, key).parse().unwrap()
}

fn u256(value: &Value, key: &str) -> U256 {
    string(value, key).parse().unwrap()
}

fn address(value: &Value, key: &str) -> Address {
    string(value, key).parse().unwrap()
}

fn hex_bytes(value: &Value, key: &str) -> Vec<u8> {
    hex::decode(string(value, key)).unwrap()
}

#[test]
fn invalid_args_vector() {
    let vector = &vectors()["invalid_args"];
    assert_eq!(
        keccak256(string(vector, "preimage_utf8")),
        b256(vector, "keccak256")
    );
    assert_eq!(INVALID_ARGS, b256(vector, "keccak256"));
}

#[test]
fn args_vectors() {
    let vectors = vectors();
    let list = vectors["args"].as_array().unwrap();
    assert_eq!(list.len(), 4);
    for vector in list {
        let expected = b256(vector, "keccak256");
        if let Some(file) = vector["file"].as_str() {
            let bytes = fs::read(crate_dir().join(file)).unwrap();
            TaskArgs::from_slice(&bytes).unwrap();
            assert_eq!(args_hash(&bytes), expected, "{file}");
        } else {
            let source = string(vector, "canonical_of");
            let canonical = string(vector, "canonical_utf8");
            let parsed =
                TaskArgs::from_slice(&fs::read(crate_dir().join(&source)).unwrap()).unwrap();
            assert_eq!(
                String::from_utf8(parsed.to_canonical_bytes()).unwrap(),
                canonical,
                "{source}"
            );
            assert_eq!(
                args_hash(canonical.as_bytes()),
                expected,
                "canonical {source}"
            );
        }
    }
}

#[test]
fn text_digest_vectors() {
    let vectors = vectors();
    let list = vectors["text_digests"].as_array().unwrap();
    assert_eq!(list.len(), 3);
    for vector in list {
        let output = TextOutput {
            text: string(vector, "text"),
            token_ids: serde_json::from_value(vector["token_ids"].clone()).unwrap(),
            finish_reason: serde_json::from_value::<FinishReason>(vector["finish_reason"].clone())
                .unwrap(),
        };
        assert_eq!(
            text_digest_preimage(&output),
            hex_bytes(vector, "abi_encoding"),
            "{}",
            output.text
        );
        assert_eq!(
            text_digest(&output),
            b256(vector, "digest"),
            "{}",
            output.text
        );
    }
}

#[test]
fn commitment_vectors() {
    let vectors = vectors();
    let list = vectors["commitments"].as_array().unwrap();
    assert_eq!(list.len(), 3);
    for vector in list {
        let (task_id, node, salt) = (
            u256(vector, "task_id"),
            address(vector, "node"),
            b256(vector, "salt"),
        );
        let expected = b256(vector, "commitment");
        let encoding = hex_bytes(vector, "abi_encoding");
        match vector["kind"].as_str().unwrap() {
            "image" => {
                let phashes: Vec<u64> = vector["phashes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| {
                        u64::from_str_radix(p.as_str().unwrap().trim_start_matches("0x"), 16)
                            .unwrap()
                    })
                    .collect();
                assert_eq!(
                    image_commitment_preimage(task_id, node, &phashes, salt),
                    encoding
                );
                assert_eq!(image_commitment(task_id, node, &phashes, salt), expected);
            }
            "text" => {
                let digest = b256(vector, "digest");
                assert_eq!(
                    text_commitment_preimage(task_id, node, digest, salt),
                    encoding
                );
                assert_eq!(text_commitment(task_id, node, digest, salt), expected);
            }
            "invalid_args" => {
                assert_eq!(
                    text_commitment_preimage(task_id, node, INVALID_ARGS, salt),
                    encoding
                );
                assert_eq!(invalid_args_commitment(task_id, node, salt), expected);
            }
            other => panic!("unknown commitment kind {other}"),
        }
        assert_eq!(keccak256(&encoding), expected);
    }
}

#[test]
fn model_digest_vectors() {
    let vectors = vectors();
    for vector in vectors["model_digests"].as_array().unwrap() {
        let dir = tempfile::tempdir().unwrap();
        for file in vector["files"].as_array().unwrap() {
            let path = dir.path().join(string(file, "path"));
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, string(file, "content_utf8")).unwrap();
        }
        let expected: ModelDigest = string(vector, "digest").parse().unwrap();
        assert_eq!(model_digest(dir.path()).unwrap(), expected);
    }
}
