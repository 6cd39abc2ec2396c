//! Result uploads and their EIP-712 authentication (signed by nodes, checked by the relayer).
//!
//! A node that revealed a result on chain uploads the data behind it (the PNGs of an image task,
//! the [`TextOutput`] of a text task) signed with its node key. The signature is EIP-712 over
//! [`ResultUpload`] in the domain [`upload_domain`]:
//!
//! ```text
//! domain  = { name: "verinfer-relayer", version: "1", chainId, verifyingContract: Verinfer }
//! message = ResultUpload { uint256 chainId; address verinfer; uint256 taskId; bytes32 payloadHash; }
//! ```
//!
//! `payloadHash` is [`UploadPayload::payload_hash`]:
//! - image: `keccak256(abi.encode(bytes32[] pngHashes))` where `pngHashes[i] = keccak256(png_i)`
//!   over the exact PNG bytes, in image order;
//! - text: [`verinfer_task::text_digest`] of the output (the digest the node revealed).
//!
//! The relayer checks the signature here, and separately that the payload matches what the node
//! revealed on chain (pHash of every PNG, or the text digest).

use alloy::signers::Signer;
use alloy_primitives::{Address, B256, Bytes, Signature, U256, keccak256};
use alloy_sol_types::{Eip712Domain, SolStruct, SolValue, eip712_domain, sol};
use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use verinfer_task::{TaskKind, TextOutput, text_digest};

/// EIP-712 domain name of result uploads.
pub const UPLOAD_DOMAIN_NAME: &str = "verinfer-relayer";
/// EIP-712 domain version of result uploads.
pub const UPLOAD_DOMAIN_VERSION: &str = "1";

sol! {
    /// The EIP-712 message a node signs to upload the data behind its revealed result.
    #[derive(Debug, PartialEq, Eq)]
    struct ResultUpload {
        uint256 chainId;
        address verinfer;
        uint256 taskId;
        bytes32 payloadHash;
    }
}

/// Why an upload's signature could not be made or checked.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The signature is not 65 bytes `r || s || v` with a valid recovery id.
    #[error("signature is malformed: {0}")]
    MalformedSignature(String),
    /// The signature is well formed but no public key recovers from it.
    #[error("signature does not recover a signer: {0}")]
    Unrecoverable(String),
    /// The signature recovers a different address than the claimed node.
    #[error("signature was made by {recovered}, not by the claimed node {claimed}")]
    WrongSigner {
        /// The `node` field of the request.
        claimed: Address,
        /// The address the signature recovers to.
        recovered: Address,
    },
    /// The signer failed to sign.
    #[error("signing the result upload failed: {0}")]
    Signing(#[from] alloy::signers::Error),
}

/// The data behind a revealed result, as uploaded (`"kind"`-tagged JSON).
///
/// Image PNGs travel as standard base64 (with padding) in `images_png_base64`, in image order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum UploadPayload {
    /// `{"kind":"image","images_png_base64":["iVBORw0K...", ...]}`.
    Image {
        /// The PNG files, in image order.
        #[serde(with = "base64_list")]
        images_png_base64: Vec<Bytes>,
    },
    /// `{"kind":"text","output":{"text":...,"token_ids":[...],"finish_reason":"stop"}}`.
    Text {
        /// The text output whose digest was revealed.
        output: TextOutput,
    },
}

impl UploadPayload {
    /// An image payload from the exact PNG bytes, in image order.
    pub fn image(pngs: impl IntoIterator<Item = impl Into<Bytes>>) -> Self {
        Self::Image {
            images_png_base64: pngs.into_iter().map(Into::into).collect(),
        }
    }

    /// A text payload.
    pub fn text(output: TextOutput) -> Self {
        Self::Text { output }
    }

    /// The kind of task this payload answers.
    pub fn kind(&self) -> TaskKind {
        match self {
            Self::Image { .. } => TaskKind::Image,
            Self::Text { .. } => TaskKind::Text,
        }
    }

    /// keccak256 of every PNG, in image order (empty for text payloads).
    pub fn png_hashes(&self) -> Vec<B256> {
        match self {
            Self::Image { images_png_base64 } => images_png_base64.iter().map(keccak256).collect(),
            Self::Text { .. } => Vec::new(),
        }
    }

    /// The `payloadHash` signed in [`ResultUpload`] (see the module docs for the encoding).
    pub fn payload_hash(&self) -> B256 {
        match self {
            Self::Image { .. } => image_payload_hash(&self.png_hashes()),
            Self::Text { output } => text_digest(output),
        }
    }
}

/// `keccak256(abi.encode(bytes32[] pngHashes))`: the payload hash of an image upload.
pub fn image_payload_hash(png_hashes: &[B256]) -> B256 {
    keccak256(png_hashes.abi_encode())
}

/// The EIP-712 domain of result uploads for one Verinfer deployment.
pub fn upload_domain(chain_id: u64, verinfer: Address) -> Eip712Domain {
    eip712_domain! {
        name: UPLOAD_DOMAIN_NAME,
        version: UPLOAD_DOMAIN_VERSION,
        chain_id: chain_id,
        verifying_contract: verinfer,
    }
}

/// The EIP-712 signing hash of an upload of `payload_hash` for `task_id`.
pub fn upload_signing_hash(
    chain_id: u64,
    verinfer: Address,
    task_id: u64,
    payload_hash: B256,
) -> B256 {
    let message = ResultUpload {
        chainId: U256::from(chain_id),
        verinfer,
        taskId: U256::from(task_id),
        payloadHash: payload_hash,
    };
    message.eip712_signing_hash(&upload_domain(chain_id, verinfer))
}

/// The JSON body of `POST /v1/tasks/{id}/results`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadRequest {
    /// The node (its staking address) that revealed the result.
    pub node: Address,
    /// 65-byte `r || s || v` EIP-712 signature over [`ResultUpload`], `0x`-hex.
    pub signature: Bytes,
    /// The data behind the revealed result.
    pub payload: UploadPayload,
}

impl UploadRequest {
    /// Recovers the signer of this upload for `task_id` and checks that it is [`Self::node`].
    /// Says nothing about whether the payload matches the chain: the relayer checks that apart.
    pub fn verify_signer(
        &self,
        chain_id: u64,
        verinfer: Address,
        task_id: u64,
    ) -> Result<(), AuthError> {
        let signature = parse_signature(&self.signature)?;
        let hash = upload_signing_hash(chain_id, verinfer, task_id, self.payload.payload_hash());
        let recovered = signature
            .recover_address_from_prehash(&hash)
            .map_err(|err| AuthError::Unrecoverable(err.to_string()))?;
        if recovered != self.node {
            return Err(AuthError::WrongSigner {
                claimed: self.node,
                recovered,
            });
        }
        Ok(())
    }
}

/// Signs an upload of `payload` for `task_id` with the node key `signer`; the result is the
/// request body to `POST /v1/tasks/{task_id}/results` (see [`crate::RelayerClient`]).
pub async fn sign_result_upload<S: Signer + ?Sized>(
    signer: &S,
    chain_id: u64,
    verinfer: Address,
    task_id: u64,
    payload: &UploadPayload,
) -> Result<UploadRequest, AuthError> {
    let hash = upload_signing_hash(chain_id, verinfer, task_id, payload.payload_hash());
    let signature = signer.sign_hash(&hash).await?;
    Ok(UploadRequest {
        node: signer.address(),
        signature: Bytes::from(signature.as_bytes().to_vec()),
        payload: payload.clone(),
    })
}

fn parse_signature(bytes: &[u8]) -> Result<Signature, AuthError> {
    if bytes.len() != 65 {
        return Err(AuthError::MalformedSignature(format!(
            "expected 65 bytes, got {}",
            bytes.len()
        )));
    }
    Signature::try_from(bytes).map_err(|err| AuthError::MalformedSignature(err.to_string()))
}

/// serde for `Vec<Bytes>` as a JSON list of standard base64 strings.
mod base64_list {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    pub(super) fn serialize<S: Serializer>(
        items: &[Bytes],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(items.iter().map(|item| STANDARD.encode(item)))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<Bytes>, D::Error> {
        let encoded = Vec::<String>::deserialize(deserializer)?;
        encoded
            .iter()
            .enumerate()
            .map(|(index, text)| {
                STANDARD.decode(text).map(Bytes::from).map_err(|err| {
                    serde::de::Error::custom(format!(
                        "images_png_base64[{index}] is not valid base64: {err}"
                    ))
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::signers::local::PrivateKeySigner;
    use verinfer_task::FinishReason;

    const VERINFER: Address = Address::new([0x11; 20]);

    #[test]
    fn image_payload_hash_is_abi_encode_of_bytes32_array() {
        let hashes = [B256::repeat_byte(1), B256::repeat_byte(2)];
        // abi.encode(bytes32[]) = offset 0x20 || length || elements.
        let mut expected = Vec::new();
        expected.extend_from_slice(&U256::from(32).to_be_bytes::<32>());
        expected.extend_from_slice(&U256::from(2).to_be_bytes::<32>());
        expected.extend_from_slice(hashes[0].as_slice());
        expected.extend_from_slice(hashes[1].as_slice());
        assert_eq!(image_payload_hash(&hashes), keccak256(&expected));
    }

    #[test]
    fn text_payload_hash_is_the_text_digest() {
        let output = TextOutput {
            text: "hi".into(),
            token_ids: vec![1, 2],
            finish_reason: FinishReason::Stop,
        };
        assert_eq!(
            UploadPayload::text(output.clone()).payload_hash(),
            text_digest(&output)
        );
    }

    #[tokio::test]
    async fn signed_upload_verifies_and_tampering_is_detected() {
        let signer = PrivateKeySigner::random();
        let payload = UploadPayload::image([b"png-a".to_vec(), b"png-b".to_vec()]);
        let request = sign_result_upload(&signer, 31337, VERINFER, 7, &payload)
            .await
            .unwrap();
        assert_eq!(request.node, signer.address());
        request.verify_signer(31337, VERINFER, 7).unwrap();

        // Another task, chain, contract or payload recovers someone else.
        for (chain, contract, task) in [
            (31337, VERINFER, 8),
            (1, VERINFER, 7),
            (31337, Address::ZERO, 7),
        ] {
            assert!(matches!(
                request.verify_signer(chain, contract, task),
                Err(AuthError::WrongSigner { .. })
            ));
        }
        let mut swapped = request.clone();
        swapped.payload = UploadPayload::image([b"png-b".to_vec(), b"png-a".to_vec()]);
        assert!(matches!(
            swapped.verify_signer(31337, VERINFER, 7),
            Err(AuthError::WrongSigner { .. })
        ));

        let mut short = request.clone();
        short.signature = Bytes::from(vec![0u8; 64]);
        assert!(matches!(
            short.verify_signer(31337, VERINFER, 7),
            Err(AuthError::MalformedSignature(_))
        ));
    }

    #[test]
    fn payload_json_round_trips_with_base64() {
        let payload = UploadPayload::image([vec![0u8, 255, 1]]);
        let json = serde_json::to_value(&payload).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": "image", "images_png_base64": ["AP8B"]})
        );
        assert_eq!(
            serde_json::from_value::<UploadPayload>(json).unwrap(),
            payload
        );
        let bad = serde_json::json!({"kind": "image", "images_png_base64": ["not base64!"]});
        let err = serde_json::from_value::<UploadPayload>(bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains("images_png_base64[0]"), "{err}");
    }
}
