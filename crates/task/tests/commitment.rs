//! Commitments and text digests against hand-written ABI encodings.

use alloy_primitives::{Address, B256, U256, address, b256, hex, keccak256};
use verinfer_task::{
    FinishReason, INVALID_ARGS, ImageResult, TaskResult, TextOutput, image_commitment,
    image_commitment_preimage, invalid_args_commitment, random_salt, text_commitment,
    text_commitment_preimage, text_digest, text_digest_preimage,
};

const NODE: Address = address!("0x1111111111111111111111111111111111111111");
const SALT: B256 = b256!("0x2222222222222222222222222222222222222222222222222222222222222222");
const DIGEST: B256 = b256!("0x3333333333333333333333333333333333333333333333333333333333333333");

/// Concatenates 32-byte words given as hex (left-padded with zeros when shorter).
fn words(words: &[&str]) -> Vec<u8> {
    words
        .iter()
        .flat_map(|word| {
            let padded = format!("{word:0>64}");
            assert_eq!(padded.len(), 64, "word too long: {word}");
            hex::decode(padded).unwrap()
        })
        .collect()
}

#[test]
fn invalid_args_marker_matches_the_contract() {
    assert_eq!(INVALID_ARGS, keccak256("verinfer.invalid-args.v1"));
}

#[test]
fn image_commitment_uses_abi_encode_with_a_dynamic_array() {
    let preimage = image_commitment_preimage(U256::from(1), NODE, &[0xdead_beef, 1], SALT);
    let expected = words(&[
        "1",                                                                // taskId
        "1111111111111111111111111111111111111111",                         // node, left-padded
        "80", // offset of pHashes: 4 head words
        "2222222222222222222222222222222222222222222222222222222222222222", // salt
        "2",  // pHashes.length
        "deadbeef", // pHashes[0]
        "1",  // pHashes[1]
    ]);
    assert_eq!(hex::encode(&preimage), hex::encode(&expected));
    assert_eq!(
        image_commitment(U256::from(1), NODE, &[0xdead_beef, 1], SALT),
        keccak256(&expected)
    );
}

#[test]
fn image_commitment_covers_the_full_u64_range_and_order() {
    let max = image_commitment_preimage(U256::MAX, NODE, &[u64::MAX], SALT);
    assert_eq!(&max[..32], &[0xff; 32]);
    assert_eq!(&max[5 * 32..5 * 32 + 24], &[0; 24], "uint64 is left-padded");
    assert_eq!(&max[5 * 32 + 24..], &[0xff; 8]);
    let task = U256::from(9);
    assert_ne!(
        image_commitment(task, NODE, &[1, 2], SALT),
        image_commitment(task, NODE, &[2, 1], SALT)
    );
    assert_ne!(
        image_commitment(task, NODE, &[1], SALT),
        image_commitment(task, NODE, &[1, 0], SALT)
    );
}

#[test]
fn text_commitment_is_four_static_words() {
    let preimage = text_commitment_preimage(U256::from(258), NODE, DIGEST, SALT);
    let expected = words(&[
        "102",
        "1111111111111111111111111111111111111111",
        "3333333333333333333333333333333333333333333333333333333333333333",
        "2222222222222222222222222222222222222222222222222222222222222222",
    ]);
    assert_eq!(preimage, expected);
    assert_eq!(
        text_commitment(U256::from(258), NODE, DIGEST, SALT),
        keccak256(&expected)
    );
}

#[test]
fn invalid_args_commitment_is_a_text_commitment_to_the_marker() {
    let task = U256::from(5);
    assert_eq!(
        invalid_args_commitment(task, NODE, SALT),
        text_commitment(task, NODE, INVALID_ARGS, SALT)
    );
    assert_eq!(
        TaskResult::InvalidArgs.commitment(task, NODE, SALT),
        invalid_args_commitment(task, NODE, SALT)
    );
    assert_eq!(
        TaskResult::Text(DIGEST).commitment(task, NODE, SALT),
        text_commitment(task, NODE, DIGEST, SALT)
    );
    assert_eq!(
        TaskResult::Image(ImageResult(vec![3, 4])).commitment(task, NODE, SALT),
        image_commitment(task, NODE, &[3, 4], SALT)
    );
    let other_node = address!("0x0000000000000000000000000000000000000001");
    assert_ne!(
        invalid_args_commitment(task, NODE, SALT),
        invalid_args_commitment(task, other_node, SALT)
    );
}

#[test]
fn text_digest_encoding_v1() {
    let output = TextOutput {
        text: "hi".into(),
        token_ids: vec![5, 7],
        finish_reason: FinishReason::Length,
    };
    let expected = words(&[
        "80",  // offset of "verinfer.text.v1"
        "c0",  // offset of text: 0x80 + length word + one data word
        "100", // offset of tokenIds: 0xc0 + length word + one data word
        "1",   // finishReason = Length
        "10",  // "verinfer.text.v1" is 16 bytes
        "766572696e6665722e746578742e763100000000000000000000000000000000",
        "2", // "hi" is 2 bytes
        "6869000000000000000000000000000000000000000000000000000000000000",
        "2", // tokenIds.length
        "5",
        "7",
    ]);
    assert_eq!(
        hex::encode(text_digest_preimage(&output)),
        hex::encode(&expected)
    );
    assert_eq!(text_digest(&output), keccak256(&expected));
}

#[test]
fn text_digest_separates_every_field() {
    let base = TextOutput {
        text: "Paris".into(),
        token_ids: vec![3681],
        finish_reason: FinishReason::Stop,
    };
    let digest = text_digest(&base);
    let variants = [
        TextOutput {
            text: "Paris.".into(),
            ..base.clone()
        },
        TextOutput {
            token_ids: vec![3681, 2],
            ..base.clone()
        },
        TextOutput {
            token_ids: vec![],
            ..base.clone()
        },
        TextOutput {
            finish_reason: FinishReason::Length,
            ..base.clone()
        },
        TextOutput {
            finish_reason: FinishReason::StopSequence,
            ..base.clone()
        },
    ];
    for variant in variants {
        assert_ne!(text_digest(&variant), digest, "{variant:?}");
    }
    assert_eq!(FinishReason::Stop.code(), 0);
    assert_eq!(FinishReason::Length.code(), 1);
    assert_eq!(FinishReason::StopSequence.code(), 2);
    assert_ne!(digest, INVALID_ARGS);
}

#[test]
fn salts_are_random() {
    let (a, b) = (random_salt().unwrap(), random_salt().unwrap());
    assert_ne!(a, b);
    assert_ne!(a, B256::ZERO);
}
