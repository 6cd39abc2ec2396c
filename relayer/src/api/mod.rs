//! The HTTP API (axum), versioned under `/v1`. See the crate docs for the routes.

mod error;
pub mod types;

use std::sync::Arc;

use alloy_primitives::{Address, B256};
use axum::{
    Json, Router,
    body::Bytes,
    extract::{
        DefaultBodyLimit, MatchedPath, Path, Query, Request, State,
        rejection::{BytesRejection, QueryRejection},
    },
    http::{HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use base64::Engine as _;
use serde::Deserialize;
use verinfer_abi::{TaskKind, TaskStatus};
use verinfer_task::{ArgsError, ResultMismatch, TaskArgs, TextOutput};
use verinfer_wire::{AuthError, UploadPayload, UploadRequest};

pub use error::{ApiError, ErrorBody, ErrorCode, ErrorDetail};
use types::{
    AccountView, ArgsUploaded, GpuModelsView, HealthView, ImageView, NodeResultView, NodesView,
    ParamsView, TaskContext, TaskResultsView, TaskView, UploadAccepted, account_view,
    gpu_model_view, node_view, params_view, phash_hex, task_view, validation_view,
};

use crate::{
    blobs::{BlobKind, BlobStore},
    indexer::{IndexerRole, IndexerStatus},
    metrics::Metrics,
    store::{BlobMeta, ResultInsert, ResultItem, ResultRecord, Store, TaskNodeRecord, TaskRecord},
};

/// Most nodes one `GET /v1/nodes` returns.
const MAX_NODES_PAGE: u64 = 1000;

/// Limits and chain identity the API enforces.
#[derive(Debug, Clone, Copy)]
pub struct ApiSettings {
    /// Chain id in upload signatures.
    pub chain_id: u64,
    /// Verinfer contract in upload signatures.
    pub verinfer: Address,
    /// Largest `POST /v1/args` body.
    pub max_args_bytes: usize,
    /// Largest `POST /v1/tasks/{id}/results` body.
    pub max_upload_bytes: usize,
    /// Validate args with [`TaskArgs::from_slice`].
    pub validate_args: bool,
}

/// Everything the handlers share.
#[derive(Debug, Clone)]
pub struct AppState(Arc<AppInner>);

/// The parts of [`AppState`].
#[derive(Debug)]
pub struct AppInner {
    /// Database.
    pub store: Store,
    /// Blob store.
    pub blobs: BlobStore,
    /// Limits and chain identity.
    pub settings: ApiSettings,
    /// Metrics.
    pub metrics: Metrics,
    /// The indexer's liveness (`None`: the relayer runs without an indexer).
    pub indexer: Option<Arc<IndexerStatus>>,
    /// The fee token's `decimals()`, once read from the chain (the explorer prints amounts in
    /// tokens with it, in base units before).
    pub token_decimals: std::sync::OnceLock<verinfer_abi::TokenDecimals>,
}

impl AppState {
    /// Shared state of the handlers.
    pub fn new(
        store: Store,
        blobs: BlobStore,
        settings: ApiSettings,
        metrics: Metrics,
        indexer: Option<Arc<IndexerStatus>>,
    ) -> Self {
        Self(Arc::new(AppInner {
            store,
            blobs,
            settings,
            metrics,
            indexer,
            token_decimals: std::sync::OnceLock::new(),
        }))
    }

    /// The parts.
    pub fn inner(&self) -> &AppInner {
        &self.0
    }
}

/// The API router: every route, JSON errors, request metrics.
pub fn router(state: AppState) -> Router {
    let settings = state.0.settings;
    Router::new()
        .route(
            "/v1/args",
            post(upload_args).layer(DefaultBodyLimit::max(settings.max_args_bytes)),
        )
        .route("/v1/args/{hash}", get(get_args))
        .route("/v1/tasks/{id}", get(get_task))
        .route("/v1/tasks/{id}/args", get(get_task_args))
        .route(
            "/v1/tasks/{id}/results",
            post(upload_result)
                .layer(DefaultBodyLimit::max(settings.max_upload_bytes))
                .get(get_results),
        )
        .route("/v1/blobs/{hash}", get(get_blob))
        .route("/v1/nodes", get(list_nodes))
        .route("/v1/accounts/{address}", get(get_account))
        .route("/v1/gpu-models", get(list_gpu_models))
        .route("/v1/params", get(get_params))
        .route("/v1/calibration", get(crate::calibration::get_calibration))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .merge(crate::explorer::routes())
        .fallback(|| async { ApiError::new(ErrorCode::NotFound, "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                ErrorCode::MethodNotAllowed,
                "this route does not take that method",
            )
        })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .with_state(state)
}

async fn count_requests(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    state
        .0
        .metrics
        .http_requests
        .with_label_values(&[route.as_str(), response.status().as_str()])
        .inc();
    response
}

// ---------------------------------------------------------------------- parsing helpers

fn body(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                ErrorCode::TooLarge,
                format!("request body is larger than the {limit}-byte limit"),
            )
        } else {
            ApiError::new(
                ErrorCode::BadRequest,
                format!("cannot read the request body: {rejection}"),
            )
        }
    })
}

fn parse_task_id(text: &str) -> Result<u64, ApiError> {
    text.parse::<u64>()
        .ok()
        .filter(|id| *id != 0)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::BadRequest,
                format!("task id {text:?} is not a positive integer"),
            )
        })
}

fn parse_hash(text: &str) -> Result<B256, ApiError> {
    let hex = text.strip_prefix("0x").unwrap_or(text);
    if hex.len() != 64 {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            format!("{text:?} is not a 32-byte hex hash"),
        ));
    }
    hex.parse::<B256>().map_err(|_| {
        ApiError::new(
            ErrorCode::BadRequest,
            format!("{text:?} is not a 32-byte hex hash"),
        )
    })
}

async fn known_task(state: &AppState, task_id: u64) -> Result<TaskRecord, ApiError> {
    state.0.store.task(task_id).await?.ok_or_else(|| {
        ApiError::new(
            ErrorCode::UnknownTask,
            format!("task {task_id} is unknown (not created, or not indexed yet)"),
        )
    })
}

fn bytes_response(content_type: &str, bytes: Bytes) -> Response {
    let mut response = bytes.into_response();
    if let Ok(value) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

// ---------------------------------------------------------------------- args

/// `POST /v1/args`: stores the exact bytes under their keccak256.
async fn upload_args(
    State(state): State<AppState>,
    payload: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let settings = state.0.settings;
    let bytes = body(payload, settings.max_args_bytes)?;
    if bytes.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidArgs,
            "the args body is empty",
        ));
    }
    // Args that do not parse are refused (or, with validation off, stored without their facts).
    let parsed = match TaskArgs::from_slice(&bytes) {
        Ok(args) => Some(args),
        Err(err) if settings.validate_args => {
            return Err(match err {
                ArgsError::TooLarge { .. } => ApiError::new(ErrorCode::TooLarge, err.to_string()),
                other => ApiError::new(ErrorCode::InvalidArgs, other.to_string()),
            });
        }
        Err(_) => None,
    };
    let size = bytes.len() as u64;
    let args_hash = state.0.blobs.put(BlobKind::Args, bytes).await?;
    let created = state
        .0
        .store
        .insert_blob(&BlobMeta {
            keccak: args_hash,
            kind: BlobKind::Args.as_str().to_owned(),
            content_type: BlobKind::Args.content_type().to_owned(),
            size,
        })
        .await?;
    if let Some(args) = &parsed {
        state.0.store.record_args_info(args_hash, args).await?;
    }
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(ArgsUploaded { args_hash, created })).into_response())
}

async fn args_bytes(state: &AppState, args_hash: B256) -> Result<Bytes, ApiError> {
    let meta = state.0.store.blob(args_hash).await?;
    if meta
        .as_ref()
        .is_none_or(|meta| meta.kind != BlobKind::Args.as_str())
    {
        return Err(ApiError::new(
            ErrorCode::UnknownArgs,
            format!("no args stored under {args_hash}"),
        ));
    }
    Ok(state.0.blobs.get(BlobKind::Args, args_hash).await?)
}

/// `GET /v1/args/{hash}`: the raw bytes.
async fn get_args(
    State(state): State<AppState>,
    Path(hash): Path<String>,
) -> Result<Response, ApiError> {
    let bytes = args_bytes(&state, parse_hash(&hash)?).await?;
    Ok(bytes_response(BlobKind::Args.content_type(), bytes))
}

/// `GET /v1/tasks/{id}/args`: the bytes whose keccak256 is the task's `argsHash`.
async fn get_task_args(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let task = known_task(&state, parse_task_id(&id)?).await?;
    let bytes = args_bytes(&state, task.chain.args_hash).await?;
    Ok(bytes_response(BlobKind::Args.content_type(), bytes))
}

// ---------------------------------------------------------------------- tasks and nodes

/// `GET /v1/tasks/{id}`.
async fn get_task(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<TaskView>, ApiError> {
    let task = known_task(&state, parse_task_id(&id)?).await?;
    let nodes = state.0.store.task_nodes(task.chain.task_id).await?;
    let uploaded: Vec<Address> = state
        .0
        .store
        .results(task.chain.task_id)
        .await?
        .iter()
        .map(|r| r.node)
        .collect();
    let args_available = state.0.store.blob(task.chain.args_hash).await?.is_some();
    let gpu_model_name = if task.chain.gpu_model.is_zero() {
        None
    } else {
        state.0.store.gpu_model_name(task.chain.gpu_model).await?
    };
    let context = TaskContext {
        gpu_model_name,
        credits: state.0.store.task_credits(task.chain.task_id).await?,
    };
    Ok(Json(task_view(
        &task,
        &nodes,
        &uploaded,
        args_available,
        &context,
    )))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Page {
    #[serde(default)]
    offset: u64,
    #[serde(default)]
    limit: Option<u64>,
}

/// `GET /v1/nodes?offset=&limit=`.
async fn list_nodes(
    State(state): State<AppState>,
    page: Result<Query<Page>, QueryRejection>,
) -> Result<Json<NodesView>, ApiError> {
    let Query(page) = page.map_err(|err| ApiError::new(ErrorCode::BadRequest, err.body_text()))?;
    let limit = page.limit.unwrap_or(MAX_NODES_PAGE).min(MAX_NODES_PAGE);
    let nodes = state
        .0
        .store
        .nodes_with_claimable(page.offset, limit)
        .await?;
    Ok(Json(NodesView {
        nodes: nodes
            .iter()
            .map(|(node, claimable)| node_view(node, *claimable))
            .collect(),
        offset: page.offset,
        limit,
    }))
}

/// `GET /v1/accounts/{address}`: withdrawable balance and credits (zero for any account never
/// credited).
async fn get_account(
    State(state): State<AppState>,
    Path(address): Path<String>,
) -> Result<Json<AccountView>, ApiError> {
    let address: Address = address.parse().map_err(|_| {
        ApiError::new(
            ErrorCode::BadRequest,
            format!("{address:?} is not a 20-byte hex address"),
        )
    })?;
    let account = state.0.store.account(address).await?;
    let credits = state.0.store.account_credits(address).await?;
    Ok(Json(account_view(address, &account, &credits)))
}

/// `GET /v1/gpu-models`: the registry, in registration order.
async fn list_gpu_models(State(state): State<AppState>) -> Result<Json<GpuModelsView>, ApiError> {
    let models = state.0.store.gpu_models().await?;
    Ok(Json(GpuModelsView {
        models: models.iter().map(gpu_model_view).collect(),
    }))
}

/// `GET /v1/params`: the parameter version in force and the scheduled one.
async fn get_params(State(state): State<AppState>) -> Result<Json<ParamsView>, ApiError> {
    let (active, scheduled) = state.0.store.params().await?;
    let now = u64::try_from(crate::store::now_unix()).unwrap_or_default();
    params_view(active.as_ref(), scheduled.as_ref(), now)
        .map(Json)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::NotFound,
                "no parameter version indexed yet (the relayer indexes from the deployment block)",
            )
        })
}

// ---------------------------------------------------------------------- results

/// What a verified upload stores.
struct VerifiedUpload {
    kind: TaskKind,
    payload_hash: B256,
    items: Vec<ResultItem>,
    blobs: Vec<(BlobKind, Bytes)>,
}

/// Checks the signature and recomputes the payload's digest against the node's reveal.
/// CPU-bound (signature recovery, PNG decoding): runs on the blocking pool.
fn verify_upload(
    settings: ApiSettings,
    task: &TaskRecord,
    reveal: &TaskNodeRecord,
    request: UploadRequest,
) -> Result<VerifiedUpload, ApiError> {
    request
        .verify_signer(settings.chain_id, settings.verinfer, task.chain.task_id)
        .map_err(|err| match err {
            AuthError::WrongSigner { .. }
            | AuthError::MalformedSignature(_)
            | AuthError::Unrecoverable(_) => {
                ApiError::new(ErrorCode::BadSignature, err.to_string())
            }
            AuthError::Signing(_) => ApiError::new(ErrorCode::Internal, err.to_string()),
        })?;
    let payload_hash = request.payload.payload_hash();
    let node = request.node;
    let mismatch = |error: ResultMismatch| {
        let code = match error {
            ResultMismatch::ImageCount { .. } => ErrorCode::WrongImageCount,
            ResultMismatch::NotPng { .. } | ResultMismatch::UndecodablePng { .. } => {
                ErrorCode::BadPng
            }
            ResultMismatch::PhashMismatch { .. } | ResultMismatch::TextDigestMismatch { .. } => {
                ErrorCode::DigestMismatch
            }
        };
        ApiError::new(
            code,
            format!("task {}, node {node}: {error}", task.chain.task_id),
        )
    };
    match request.payload {
        UploadPayload::Image {
            images_png_base64: pngs,
        } => {
            let revealed = reveal.phashes.as_deref().unwrap_or_default();
            verinfer_task::verify_images(&pngs, revealed).map_err(mismatch)?;
            let items = pngs
                .iter()
                .zip(revealed)
                .map(|(png, &phash)| ResultItem {
                    blob: alloy_primitives::keccak256(png),
                    phash: Some(phash),
                })
                .collect();
            let blobs = pngs.into_iter().map(|png| (BlobKind::Png, png.0)).collect();
            Ok(VerifiedUpload {
                kind: TaskKind::Image,
                payload_hash,
                items,
                blobs,
            })
        }
        UploadPayload::Text { output } => {
            let revealed = reveal.text_digest.unwrap_or_default();
            verinfer_task::verify_text(&output, revealed).map_err(mismatch)?;
            let json = serde_json::to_vec(&output).map_err(|err| {
                ApiError::new(
                    ErrorCode::Internal,
                    format!("cannot encode the text output: {err}"),
                )
            })?;
            let json = Bytes::from(json);
            let items = vec![ResultItem {
                blob: alloy_primitives::keccak256(&json),
                phash: None,
            }];
            Ok(VerifiedUpload {
                kind: TaskKind::Text,
                payload_hash,
                items,
                blobs: vec![(BlobKind::Text, json)],
            })
        }
    }
}

/// `POST /v1/tasks/{id}/results`: a selected node's signed upload, verified against its reveal.
async fn upload_result(
    State(state): State<AppState>,
    Path(id): Path<String>,
    payload: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let settings = state.0.settings;
    let task_id = parse_task_id(&id)?;
    let bytes = body(payload, settings.max_upload_bytes)?;
    let request: UploadRequest = serde_json::from_slice(&bytes).map_err(|err| {
        ApiError::new(
            ErrorCode::MalformedJson,
            format!("invalid upload body: {err}"),
        )
    })?;
    drop(bytes);
    let metrics = state.0.metrics.upload_verifications.clone();
    let outcome = accept_upload(&state, task_id, request).await;
    let label = match &outcome {
        Ok(_) => "ok",
        Err(err) if err.code == ErrorCode::Internal => "error",
        // "Not yet", not "invalid": the upload raced this relayer's indexing of the task or of
        // the node's reveal, and the node uploads again once it is indexed.
        Err(err)
            if matches!(
                err.code,
                ErrorCode::NotRevealed | ErrorCode::TaskNotStarted | ErrorCode::UnknownTask
            ) =>
        {
            "not_indexed"
        }
        Err(_) => "failed",
    };
    metrics.with_label_values(&[label]).inc();
    outcome
}

async fn accept_upload(
    state: &AppState,
    task_id: u64,
    request: UploadRequest,
) -> Result<Response, ApiError> {
    let settings = state.0.settings;
    let task = known_task(state, task_id).await?;
    if request.payload.kind() != task.chain.kind {
        return Err(ApiError::new(
            ErrorCode::WrongPayloadKind,
            format!(
                "task {task_id} is a {} task, the upload is a {} payload",
                task.chain.kind.as_str(),
                request.payload.kind()
            ),
        ));
    }
    let Some(nodes) = task.nodes() else {
        return Err(ApiError::new(
            ErrorCode::TaskNotStarted,
            format!("task {task_id} has no selected nodes yet"),
        ));
    };
    if !nodes.contains(&request.node) {
        return Err(ApiError::new(
            ErrorCode::NotSelected,
            format!(
                "{} is not one of task {task_id}'s selected nodes",
                request.node
            ),
        ));
    }
    let reveal = state
        .0
        .store
        .task_nodes(task_id)
        .await?
        .into_iter()
        .find(|record| record.node == request.node)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::Internal,
                format!("task {task_id} lacks the record of {}", request.node),
            )
        })?;
    if reveal.invalid_args {
        return Err(ApiError::new(
            ErrorCode::ReportedInvalidArgs,
            format!(
                "node {} reported task {task_id}'s args invalid; there is no result to upload",
                request.node
            ),
        ));
    }
    if reveal.phashes.is_none() && reveal.text_digest.is_none() {
        return Err(ApiError::new(
            ErrorCode::NotRevealed,
            format!(
                "node {} has not revealed a result for task {task_id} on chain (or the relayer has not indexed it yet)",
                request.node
            ),
        ));
    }
    let node = request.node;
    let signature = request.signature.to_string();
    let verified = {
        let task = task.clone();
        tokio::task::spawn_blocking(move || verify_upload(settings, &task, &reveal, request))
            .await
            .map_err(|err| {
                ApiError::new(
                    ErrorCode::Internal,
                    format!("verification task failed: {err}"),
                )
            })??
    };

    // Verified. Refuse a second, different upload before writing anything.
    if let Some(existing) = state.0.store.result_payload_hash(task_id, node).await? {
        return if existing == verified.payload_hash {
            Ok(accepted(task_id, node, existing, false))
        } else {
            Err(already_uploaded(task_id, node))
        };
    }
    // Blobs first, then the rows that reference them (one transaction): a crash in between leaves
    // at most an unreferenced content-addressed blob, never a row without its bytes.
    let mut metas = Vec::with_capacity(verified.blobs.len());
    for (kind, bytes) in verified.blobs {
        let size = bytes.len() as u64;
        let keccak = state.0.blobs.put(kind, bytes).await?;
        metas.push(BlobMeta {
            keccak,
            kind: kind.as_str().to_owned(),
            content_type: kind.content_type().to_owned(),
            size,
        });
    }
    let record = ResultRecord {
        task_id,
        node,
        kind: verified.kind,
        payload_hash: verified.payload_hash,
        signature,
        items: verified.items,
    };
    match state.0.store.insert_result(&record, &metas).await? {
        ResultInsert::Stored => Ok(accepted(task_id, node, verified.payload_hash, true)),
        ResultInsert::AlreadyStored => Ok(accepted(task_id, node, verified.payload_hash, false)),
        ResultInsert::Conflict => Err(already_uploaded(task_id, node)),
    }
}

fn accepted(task_id: u64, node: Address, payload_hash: B256, created: bool) -> Response {
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    (
        status,
        Json(UploadAccepted {
            task_id,
            node,
            payload_hash,
            created,
        }),
    )
        .into_response()
}

fn already_uploaded(task_id: u64, node: Address) -> ApiError {
    ApiError::new(
        ErrorCode::AlreadyUploaded,
        format!("node {node} already uploaded a different payload for task {task_id}"),
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResultsQuery {
    #[serde(default)]
    inline: bool,
}

/// `GET /v1/tasks/{id}/results[?inline=true]`: the agreeing nodes' verified uploads.
async fn get_results(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<ResultsQuery>, QueryRejection>,
) -> Result<Json<TaskResultsView>, ApiError> {
    let Query(query) =
        query.map_err(|err| ApiError::new(ErrorCode::BadRequest, err.body_text()))?;
    let task = known_task(&state, parse_task_id(&id)?).await?;
    let (TaskStatus::Validated, Some(settlement)) = (task.chain.status, task.settlement.as_ref())
    else {
        return Err(ApiError::new(
            ErrorCode::TaskNotValidated,
            format!(
                "task {} is {}, not validated: it has no results to serve",
                task.chain.task_id,
                task.chain.status.wire_name()
            ),
        ));
    };
    let reveals = state.0.store.task_nodes(task.chain.task_id).await?;
    let uploads = state.0.store.results(task.chain.task_id).await?;
    let mut results = Vec::new();
    let mut pending_nodes = Vec::new();
    for reveal in reveals
        .iter()
        .filter(|reveal| settlement.agreeing_mask & (1 << reveal.slot) != 0)
    {
        let Some(upload) = uploads.iter().find(|upload| upload.node == reveal.node) else {
            pending_nodes.push(reveal.node);
            continue;
        };
        let (images, output) = match task.chain.kind {
            TaskKind::Image => {
                let mut images = Vec::with_capacity(upload.items.len());
                for item in &upload.items {
                    let png_base64 = if query.inline {
                        let bytes = state.0.blobs.get(BlobKind::Png, item.blob).await?;
                        Some(base64::engine::general_purpose::STANDARD.encode(&bytes))
                    } else {
                        None
                    };
                    images.push(ImageView {
                        keccak256: item.blob,
                        phash: phash_hex(item.phash.unwrap_or_default()),
                        url: format!("/v1/blobs/{}", item.blob),
                        png_base64,
                    });
                }
                (Some(images), None)
            }
            TaskKind::Text => {
                let blob = upload
                    .items
                    .first()
                    .map(|item| item.blob)
                    .unwrap_or_default();
                let bytes = state.0.blobs.get(BlobKind::Text, blob).await?;
                let output: TextOutput = serde_json::from_slice(&bytes).map_err(|err| {
                    ApiError::new(
                        ErrorCode::Internal,
                        format!("stored text output {blob} does not parse: {err}"),
                    )
                })?;
                (None, Some(output))
            }
        };
        results.push(NodeResultView {
            node: reveal.node,
            slot: reveal.slot,
            payload_hash: upload.payload_hash,
            signature: upload.signature.clone(),
            revealed_phashes: reveal
                .phashes
                .as_ref()
                .map(|p| p.iter().copied().map(phash_hex).collect()),
            revealed_digest: reveal.text_digest,
            images,
            output,
        });
    }
    Ok(Json(TaskResultsView {
        task_id: task.chain.task_id,
        kind: task.chain.kind,
        results,
        pending_nodes,
        validation: Some(validation_view(&task)),
    }))
}

/// `GET /v1/blobs/{keccak256}`: a stored blob (PNG, text output or args) with its content type.
async fn get_blob(
    State(state): State<AppState>,
    Path(hash): Path<String>,
) -> Result<Response, ApiError> {
    let keccak = parse_hash(&hash)?;
    let meta = state.0.store.blob(keccak).await?.ok_or_else(|| {
        ApiError::new(
            ErrorCode::UnknownBlob,
            format!("no blob stored under {keccak}"),
        )
    })?;
    let kind = BlobKind::parse(&meta.kind).ok_or_else(|| {
        ApiError::new(
            ErrorCode::Internal,
            format!("blob {keccak} has unknown kind {}", meta.kind),
        )
    })?;
    let bytes = state.0.blobs.get(kind, keccak).await?;
    Ok(bytes_response(&meta.content_type, bytes))
}

// ---------------------------------------------------------------------- operations

/// `GET /healthz`: 200 when the database answers and the indexer polled recently (or this
/// replica stands by while another indexes: `indexer` reads `standby`).
async fn healthz(State(state): State<AppState>) -> Response {
    let database = match state.0.store.ping().await {
        Ok(()) => "ok".to_owned(),
        Err(err) => err.to_string(),
    };
    let (indexer, indexed_head, chain_head) = match &state.0.indexer {
        None => ("disabled".to_owned(), None, None),
        Some(status) if status.role() == IndexerRole::Standby => {
            // The indexing replica's progress, as the shared database records it.
            let indexed = state.0.store.next_block().await.ok().flatten();
            (
                "standby".to_owned(),
                indexed.and_then(|next| next.checked_sub(1)),
                None,
            )
        }
        Some(status) => (
            status
                .health()
                .map_or_else(|reason| reason, |()| "ok".to_owned()),
            status.indexed_head(),
            status.chain_head(),
        ),
    };
    let healthy = database == "ok" && matches!(indexer.as_str(), "ok" | "disabled" | "standby");
    let view = HealthView {
        status: if healthy { "ok" } else { "unhealthy" }.to_owned(),
        database,
        indexer,
        indexed_head,
        chain_head,
    };
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(view)).into_response()
}

/// `GET /metrics`: Prometheus text format.
async fn metrics(State(state): State<AppState>) -> Response {
    bytes_response(
        "text/plain; version=0.0.4; charset=utf-8",
        Bytes::from(state.0.metrics.render()),
    )
}
