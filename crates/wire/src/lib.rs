//! The relayer's HTTP contract, for everyone who talks to a relayer: the relayer server itself,
//! node daemons uploading results, and dApp clients.
//!
//! - [`types`]: the JSON bodies of the API's answers;
//! - [`ErrorCode`] / [`ErrorBody`]: its errors;
//! - [`upload`]: the EIP-712 signed result upload ([`UploadRequest`], [`sign_result_upload`]);
//! - [`RelayerClient`]: the HTTP client;
//! - [`tls`]: the one HTTP(S) client setup (rustls, system roots plus a CA file) every verinfer
//!   HTTP client uses.
//!
//! This crate must not depend on the server's stack (axum, sqlx, object_store, figment): a dApp
//! builder's client compiles it. The relayer depends on it, not the other way round.

mod client;
mod error;
pub mod tls;
pub mod types;
pub mod upload;

pub use client::{ClientError, RelayerClient};
pub use error::{ErrorBody, ErrorCode, ErrorDetail};
pub use upload::{
    AuthError, ResultUpload, UploadPayload, UploadRequest, image_payload_hash, sign_result_upload,
    upload_domain, upload_signing_hash,
};
