//! The API's error as the server answers it; the codes and the body are `verinfer-wire`'s.

use axum::{
    Json,
    response::{IntoResponse, Response},
};
pub use verinfer_wire::{ErrorBody, ErrorCode, ErrorDetail};

use crate::{blobs::BlobError, store::StoreError};

/// An API error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// What went wrong, as a stable code.
    pub code: ErrorCode,
    /// What went wrong, for a person.
    pub message: String,
}

impl ApiError {
    /// An error with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.code == ErrorCode::Internal {
            tracing::error!(message = %self.message, "internal error");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
            },
        };
        (self.code.status(), Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        Self::new(ErrorCode::Internal, err.to_string())
    }
}

impl From<BlobError> for ApiError {
    fn from(err: BlobError) -> Self {
        Self::new(ErrorCode::Internal, err.to_string())
    }
}
