//! HTTP client of the relayer API, for the node daemon, the dApp client, the CLI and tests.

use alloy_primitives::{Address, B256};
use bytes::Bytes;
use reqwest::StatusCode;
use url::Url;

use crate::{
    ErrorBody, ErrorCode,
    types::{
        AccountView, ArgsUploaded, CalibrationView, GpuModelsView, HealthView, NodesView,
        ParamsView, TaskResultsView, TaskView, UploadAccepted,
    },
    upload::UploadRequest,
};

/// Why a relayer call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The relayer answered with its JSON error.
    #[error("relayer answered {status}: {code:?}: {message}")]
    Api {
        /// HTTP status.
        status: StatusCode,
        /// Error code.
        code: ErrorCode,
        /// Message.
        message: String,
    },
    /// The relayer answered with a non-JSON error.
    #[error("relayer answered {status}: {body}")]
    Http {
        /// HTTP status.
        status: StatusCode,
        /// Body (truncated).
        body: String,
    },
    /// The request could not be made or the answer not read.
    #[error("relayer request failed: {}", crate::tls::explain(.0))]
    Transport(#[from] reqwest::Error),
    /// The URL could not be built.
    #[error("invalid relayer URL: {0}")]
    Url(#[from] url::ParseError),
    /// The fetched args do not hash to the task's `argsHash`.
    #[error("relayer returned args hashing to {got}, not the task's argsHash {expected}")]
    ArgsHashMismatch {
        /// The task's argsHash.
        expected: B256,
        /// keccak256 of the returned bytes.
        got: B256,
    },
}

impl ClientError {
    /// The API error code, when the relayer answered with one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether the relayer refused because it has not indexed (yet) what the call is about:
    /// the task ([`ErrorCode::UnknownTask`], [`ErrorCode::TaskNotStarted`]) or a node's reveal
    /// ([`ErrorCode::NotRevealed`]). Such a call succeeds once the relayer's indexer catches up.
    pub fn is_not_indexed(&self) -> bool {
        matches!(
            self.code(),
            Some(ErrorCode::UnknownTask | ErrorCode::TaskNotStarted | ErrorCode::NotRevealed)
        )
    }
}

/// A relayer API client.
#[derive(Debug, Clone)]
pub struct RelayerClient {
    base: Url,
    http: reqwest::Client,
}

impl RelayerClient {
    /// A client of the relayer at `base` (e.g. `http://127.0.0.1:8645`), trusting the system's
    /// TLS roots ([`tls::default_http_client`](crate::tls::default_http_client)).
    pub fn new(base: Url) -> Self {
        Self::with_http(base, crate::tls::default_http_client())
    }

    /// A client sharing `http`'s connection pool (and its TLS roots: build it with
    /// [`tls::http_client`](crate::tls::http_client)).
    pub fn with_http(base: Url, http: reqwest::Client) -> Self {
        Self { base, http }
    }

    /// The relayer's base URL.
    pub fn base(&self) -> &Url {
        &self.base
    }

    fn url(&self, path: &str) -> Result<Url, ClientError> {
        Ok(self.base.join(path)?)
    }

    async fn check(response: reqwest::Response) -> Result<reqwest::Response, ClientError> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.bytes().await?;
        match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(error) => Err(ClientError::Api {
                status,
                code: error.error.code,
                message: error.error.message,
            }),
            Err(_) => Err(ClientError::Http {
                status,
                body: String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned(),
            }),
        }
    }

    /// `POST /v1/args`: uploads args bytes; returns their hash.
    pub async fn upload_args(&self, bytes: impl Into<Bytes>) -> Result<ArgsUploaded, ClientError> {
        let response = self
            .http
            .post(self.url("v1/args")?)
            .body(bytes.into())
            .send()
            .await?;
        Ok(Self::check(response).await?.json().await?)
    }

    /// `GET /v1/args/{hash}`, checked to hash to `args_hash`.
    pub async fn args(&self, args_hash: B256) -> Result<Bytes, ClientError> {
        let response = self
            .http
            .get(self.url(&format!("v1/args/{args_hash}"))?)
            .send()
            .await?;
        let bytes = Self::check(response).await?.bytes().await?;
        check_args_hash(args_hash, bytes)
    }

    /// `GET /v1/tasks/{id}/args`, checked to hash to `expected_args_hash` (the task's on-chain
    /// `argsHash`, which a node reads from the chain, not from the relayer).
    pub async fn task_args(
        &self,
        task_id: u64,
        expected_args_hash: B256,
    ) -> Result<Bytes, ClientError> {
        let response = self
            .http
            .get(self.url(&format!("v1/tasks/{task_id}/args"))?)
            .send()
            .await?;
        let bytes = Self::check(response).await?.bytes().await?;
        check_args_hash(expected_args_hash, bytes)
    }

    /// `GET /v1/tasks/{id}`.
    pub async fn task(&self, task_id: u64) -> Result<TaskView, ClientError> {
        let response = self
            .http
            .get(self.url(&format!("v1/tasks/{task_id}"))?)
            .send()
            .await?;
        Ok(Self::check(response).await?.json().await?)
    }

    /// `POST /v1/tasks/{id}/results` with a request from [`crate::sign_result_upload`].
    pub async fn upload_result(
        &self,
        task_id: u64,
        request: &UploadRequest,
    ) -> Result<UploadAccepted, ClientError> {
        let response = self
            .http
            .post(self.url(&format!("v1/tasks/{task_id}/results"))?)
            .json(request)
            .send()
            .await?;
        Ok(Self::check(response).await?.json().await?)
    }

    /// `GET /v1/tasks/{id}/results[?inline=true]`.
    pub async fn results(
        &self,
        task_id: u64,
        inline: bool,
    ) -> Result<TaskResultsView, ClientError> {
        let path = format!(
            "v1/tasks/{task_id}/results{}",
            if inline { "?inline=true" } else { "" }
        );
        let response = self.http.get(self.url(&path)?).send().await?;
        Ok(Self::check(response).await?.json().await?)
    }

    /// `GET /v1/blobs/{keccak256}`.
    pub async fn blob(&self, keccak: B256) -> Result<Bytes, ClientError> {
        let response = self
            .http
            .get(self.url(&format!("v1/blobs/{keccak}"))?)
            .send()
            .await?;
        Ok(Self::check(response).await?.bytes().await?)
    }

    /// `GET /healthz`: the health view, whether healthy (200) or not (503).
    pub async fn health(&self) -> Result<HealthView, ClientError> {
        let response = self.http.get(self.url("healthz")?).send().await?;
        let status = response.status();
        if status == StatusCode::OK || status == StatusCode::SERVICE_UNAVAILABLE {
            return Ok(response.json().await?);
        }
        Err(Self::check(response)
            .await
            .err()
            .unwrap_or(ClientError::Http {
                status,
                body: String::new(),
            }))
    }

    /// `GET /v1/nodes`.
    pub async fn nodes(&self, offset: u64, limit: u64) -> Result<NodesView, ClientError> {
        let response = self
            .http
            .get(self.url(&format!("v1/nodes?offset={offset}&limit={limit}"))?)
            .send()
            .await?;
        Ok(Self::check(response).await?.json().await?)
    }

    /// `GET /v1/accounts/{address}`: withdrawable balance and credits.
    pub async fn account(&self, address: Address) -> Result<AccountView, ClientError> {
        let response = self
            .http
            .get(self.url(&format!("v1/accounts/{address}"))?)
            .send()
            .await?;
        Ok(Self::check(response).await?.json().await?)
    }

    /// `GET /v1/gpu-models`: the GPU model registry.
    pub async fn gpu_models(&self) -> Result<GpuModelsView, ClientError> {
        let response = self.http.get(self.url("v1/gpu-models")?).send().await?;
        Ok(Self::check(response).await?.json().await?)
    }

    /// `GET /v1/params`: the parameters in force and the scheduled ones.
    pub async fn params(&self) -> Result<ParamsView, ClientError> {
        let response = self.http.get(self.url("v1/params")?).send().await?;
        Ok(Self::check(response).await?.json().await?)
    }

    /// `GET /v1/calibration`: pairwise pHash distances of recent validated image tasks by GPU
    /// model pair and precision, against the threshold in force, and a suggested threshold.
    pub async fn calibration(&self) -> Result<CalibrationView, ClientError> {
        let response = self.http.get(self.url("v1/calibration")?).send().await?;
        Ok(Self::check(response).await?.json().await?)
    }
}

fn check_args_hash(expected: B256, bytes: Bytes) -> Result<Bytes, ClientError> {
    let got = alloy_primitives::keccak256(&bytes);
    if got != expected {
        return Err(ClientError::ArgsHashMismatch { expected, got });
    }
    Ok(bytes)
}
