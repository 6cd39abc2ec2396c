//! The relayer API's errors on the wire: a status and a JSON body
//! `{"error": {"code": "...", "message": "..."}}`.

use http::StatusCode;
use serde::{Deserialize, Serialize};

/// Every error code the API answers with (the `code` field), with its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: the body is not the JSON the route expects.
    MalformedJson,
    /// 400: a path or query parameter does not parse.
    BadRequest,
    /// 413: the body is larger than the route's limit.
    TooLarge,
    /// 422: the args fail schema validation.
    InvalidArgs,
    /// 404: no such route.
    NotFound,
    /// 405: the route exists, not with this method.
    MethodNotAllowed,
    /// 404: the task is not (yet) indexed.
    UnknownTask,
    /// 404: no args stored under that hash.
    UnknownArgs,
    /// 404: no blob stored under that hash.
    UnknownBlob,
    /// 409: the task has no selected nodes yet.
    TaskNotStarted,
    /// 422: an image payload for a text task or the reverse.
    WrongPayloadKind,
    /// 403: the uploading node is not one of the task's selected nodes.
    NotSelected,
    /// 401: the signature is malformed or not the claimed node's.
    BadSignature,
    /// 409: the node has not revealed on chain (or the relayer has not indexed it yet).
    NotRevealed,
    /// 409: the node revealed an invalid-args report, so there is no result to upload.
    ReportedInvalidArgs,
    /// 422: the number of PNGs differs from the task's image count.
    WrongImageCount,
    /// 422: an uploaded image is not a decodable PNG.
    BadPng,
    /// 422: the recomputed pHashes / text digest differ from what the node revealed.
    DigestMismatch,
    /// 409: this node already uploaded a different payload for the task.
    AlreadyUploaded,
    /// 409: the task is not validated (yet), so it has no results to serve.
    TaskNotValidated,
    /// 503: a dependency (database, indexer) is unhealthy.
    Unavailable,
    /// 500: an internal failure (database, blob store).
    Internal,
}

impl ErrorCode {
    /// The HTTP status of this code.
    pub fn status(self) -> StatusCode {
        use ErrorCode as C;
        match self {
            C::MalformedJson | C::BadRequest => StatusCode::BAD_REQUEST,
            C::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            C::InvalidArgs
            | C::WrongPayloadKind
            | C::WrongImageCount
            | C::BadPng
            | C::DigestMismatch => StatusCode::UNPROCESSABLE_ENTITY,
            C::NotFound | C::UnknownTask | C::UnknownArgs | C::UnknownBlob => StatusCode::NOT_FOUND,
            C::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            C::TaskNotStarted
            | C::NotRevealed
            | C::ReportedInvalidArgs
            | C::AlreadyUploaded
            | C::TaskNotValidated => StatusCode::CONFLICT,
            C::NotSelected => StatusCode::FORBIDDEN,
            C::BadSignature => StatusCode::UNAUTHORIZED,
            C::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            C::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The JSON error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// `{"code": ..., "message": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable code.
    pub code: ErrorCode,
    /// Human-readable message.
    pub message: String,
}
