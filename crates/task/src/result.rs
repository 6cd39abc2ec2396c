//! Result digests: what a node commits to and reveals.
//!
//! Image tasks reveal the `uint64[]` of pHashes itself ([`ImageResult`]); text tasks reveal a
//! `bytes32` digest of the canonical text output ([`text_digest`]).

use alloy_primitives::{B256, keccak256};
use alloy_sol_types::{SolType, sol_data};
use serde::{Deserialize, Serialize};

/// Domain tag and version of the text digest encoding; a new encoding gets a new tag.
pub const TEXT_DIGEST_DOMAIN: &str = "verinfer.text.v1";

/// The result of an image task: one 64-bit pHash per image, in image order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ImageResult(pub Vec<u64>);

impl ImageResult {
    /// The pHashes, in image order.
    pub fn phashes(&self) -> &[u64] {
        &self.0
    }
}

/// Why text generation stopped. The `u8` value is part of the text digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum FinishReason {
    /// The model emitted its end-of-sequence token (code 0).
    Stop = 0,
    /// `max_tokens` tokens were generated (code 1).
    Length = 1,
    /// The text reached one of the args' stop sequences (code 2).
    StopSequence = 2,
}

impl FinishReason {
    /// The code hashed into the text digest.
    pub const fn code(self) -> u8 {
        self as u8
    }
}

/// The output of a text task, in the form that is digested (v1).
///
/// - `token_ids`: every token the model generated, in order, excluding the prompt and excluding
///   the end-of-sequence token that ended generation (finish `Stop`); with finish `Length` there
///   are exactly `max_tokens` of them; with finish `StopSequence` they end with the token that
///   completed the stop sequence.
/// - `text`: `token_ids` decoded by the model's tokenizer, skipping special tokens; with finish
///   `StopSequence` it is cut just before the earliest occurrence of any stop sequence.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextOutput {
    /// The generated text.
    pub text: String,
    /// The generated token ids.
    pub token_ids: Vec<u32>,
    /// Why generation stopped.
    pub finish_reason: FinishReason,
}

/// Solidity types of the text digest preimage: `(string, string, uint32[], uint8)`.
type TextDigestParams = (
    sol_data::String,
    sol_data::String,
    sol_data::Array<sol_data::Uint<32>>,
    sol_data::Uint<8>,
);

/// The ABI encoding the text digest hashes: `abi.encode("verinfer.text.v1", text, tokenIds,
/// uint8(finishReason))`, i.e. Solidity's `abi.encode(string, string, uint32[], uint8)`.
pub fn text_digest_preimage(output: &TextOutput) -> Vec<u8> {
    TextDigestParams::abi_encode_params(&(
        TEXT_DIGEST_DOMAIN,
        output.text.as_str(),
        output.token_ids.as_slice(),
        output.finish_reason.code(),
    ))
}

/// `keccak256(abi.encode(string "verinfer.text.v1", string text, uint32[] tokenIds,
/// uint8 finishReason))`: the `bytes32` a text task commits to and reveals.
pub fn text_digest(output: &TextOutput) -> B256 {
    keccak256(text_digest_preimage(output))
}
