//! Errors in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}` with the status
//! code the SDKs map to their exception classes (400 `BadRequestError`, 401
//! `AuthenticationError`, 404 `NotFoundError`, 429 `RateLimitError`, 5xx `InternalServerError`).

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;

/// A request that failed, with what to tell the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// OpenAI's `type`.
    pub kind: &'static str,
    /// OpenAI's `code`.
    pub code: Option<&'static str>,
    /// The request field at fault.
    pub param: Option<String>,
    /// What went wrong, for a person.
    pub message: String,
    /// Seconds after which a retry may succeed (429).
    pub retry_after: Option<u64>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: Option<&'a str>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            code: None,
            param: None,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400: the request is malformed or asks for something impossible (nothing was sent).
    pub fn invalid(param: Option<&str>, message: impl Into<String>) -> Self {
        Self {
            param: param.map(str::to_owned),
            ..Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
        }
    }

    /// 401: no API key, or one the gateway does not know.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self {
            code: Some("invalid_api_key"),
            ..Self::new(StatusCode::UNAUTHORIZED, "invalid_request_error", message)
        }
    }

    /// 404: the model is not offered.
    pub fn unknown_model(model: &str, offered: &[&str]) -> Self {
        Self {
            code: Some("model_not_found"),
            param: Some("model".to_owned()),
            ..Self::new(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                format!(
                    "the model `{model}` does not exist on this gateway; it offers: {}",
                    offered.join(", ")
                ),
            )
        }
    }

    /// 404: no such route.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "invalid_request_error", message)
    }

    /// 429: the API key's budget does not cover the request's fee.
    pub fn over_budget(message: impl Into<String>) -> Self {
        Self {
            code: Some("insufficient_quota"),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, "insufficient_quota", message)
        }
    }

    /// 429: too many requests in flight.
    pub fn busy(message: impl Into<String>) -> Self {
        Self {
            code: Some("rate_limit_exceeded"),
            retry_after: Some(1),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, "requests", message)
        }
    }

    /// 502: the network, the chain or the relayer failed (or the task did not validate).
    pub fn upstream(message: impl Into<String>) -> Self {
        Self {
            code: Some("upstream_error"),
            ..Self::new(StatusCode::BAD_GATEWAY, "api_error", message)
        }
    }

    /// 504: the task was not validated in time.
    pub fn timeout(message: impl Into<String>) -> Self {
        Self {
            code: Some("timeout"),
            ..Self::new(StatusCode::GATEWAY_TIMEOUT, "api_error", message)
        }
    }

    /// The JSON body (also sent as a server-sent event when a stream fails).
    pub fn body(&self) -> serde_json::Value {
        serde_json::to_value(Body {
            error: Inner {
                message: &self.message,
                kind: self.kind,
                param: self.param.as_deref(),
                code: self.code,
            },
        })
        .unwrap_or_default()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_str(&seconds.to_string()).expect("digits"),
            );
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
