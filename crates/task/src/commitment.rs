//! Commit-reveal commitments, byte-for-byte what `Verinfer.sol` recomputes on reveal:
//! `keccak256(abi.encode(uint256 taskId, address node, <result>, bytes32 salt))`, where
//! `<result>` is `uint64[] pHashes` (image), `bytes32 digest` (text) or `bytes32 INVALID_ARGS`.
//!
//! `abi.encode` of several values is the standard (non-packed) encoding of their tuple without
//! an outer offset: for image results the `uint64[]` is a 32-byte offset in the head (`0x80`)
//! followed, after the salt, by its length and one 32-byte word per pHash.

use alloy_primitives::{Address, B256, U256, b256, keccak256};
use alloy_sol_types::{SolType, sol_data};

use crate::result::ImageResult;

/// `keccak256("verinfer.invalid-args.v1")`: the result a node commits when a task's args are
/// invalid (the contract's `INVALID_ARGS`).
pub const INVALID_ARGS: B256 =
    b256!("0x45974798b0fd748fb52c0ba5c3c54e6709c946834659bc9925c90e6e70256791");

type ImageCommitmentParams = (
    sol_data::Uint<256>,
    sol_data::Address,
    sol_data::Array<sol_data::Uint<64>>,
    sol_data::FixedBytes<32>,
);
type DigestCommitmentParams = (
    sol_data::Uint<256>,
    sol_data::Address,
    sol_data::FixedBytes<32>,
    sol_data::FixedBytes<32>,
);

/// `abi.encode(taskId, node, pHashes, salt)` with `pHashes` a `uint64[]`.
pub fn image_commitment_preimage(
    task_id: U256,
    node: Address,
    phashes: &[u64],
    salt: B256,
) -> Vec<u8> {
    ImageCommitmentParams::abi_encode_params(&(task_id, node, phashes, salt))
}

/// `keccak256(abi.encode(uint256 taskId, address node, uint64[] pHashes, bytes32 salt))`.
pub fn image_commitment(task_id: U256, node: Address, phashes: &[u64], salt: B256) -> B256 {
    keccak256(image_commitment_preimage(task_id, node, phashes, salt))
}

/// `abi.encode(taskId, node, digest, salt)` with `digest` a `bytes32`.
pub fn text_commitment_preimage(task_id: U256, node: Address, digest: B256, salt: B256) -> Vec<u8> {
    DigestCommitmentParams::abi_encode_params(&(task_id, node, digest, salt))
}

/// `keccak256(abi.encode(uint256 taskId, address node, bytes32 digest, bytes32 salt))`.
pub fn text_commitment(task_id: U256, node: Address, digest: B256, salt: B256) -> B256 {
    keccak256(text_commitment_preimage(task_id, node, digest, salt))
}

/// The commitment to an invalid-args report: [`text_commitment`] over [`INVALID_ARGS`], for
/// image and text tasks alike.
pub fn invalid_args_commitment(task_id: U256, node: Address, salt: B256) -> B256 {
    text_commitment(task_id, node, INVALID_ARGS, salt)
}

/// What a node commits to for one task.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TaskResult {
    /// An image task's pHashes.
    Image(ImageResult),
    /// A text task's [`text_digest`](crate::text_digest).
    Text(B256),
    /// The task's args are invalid.
    InvalidArgs,
}

impl TaskResult {
    /// The commitment to this result by `node` for `task_id` with `salt`.
    pub fn commitment(&self, task_id: U256, node: Address, salt: B256) -> B256 {
        match self {
            Self::Image(image) => image_commitment(task_id, node, image.phashes(), salt),
            Self::Text(digest) => text_commitment(task_id, node, *digest, salt),
            Self::InvalidArgs => invalid_args_commitment(task_id, node, salt),
        }
    }
}

/// The operating system's random number generator failed.
#[derive(Debug, thiserror::Error)]
#[error("the OS random number generator failed: {0}")]
pub struct SaltError(#[from] rand::rand_core::OsError);

/// A fresh 32-byte commitment salt from the operating system's CSPRNG. Never reuse a salt: it
/// is what keeps a commitment from revealing the result before the reveal phase.
pub fn random_salt() -> Result<B256, SaltError> {
    use rand::{TryRngCore, rngs::OsRng};
    let mut salt = B256::ZERO;
    OsRng.try_fill_bytes(salt.as_mut_slice())?;
    Ok(salt)
}
