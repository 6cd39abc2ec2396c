//! The HTTP service: routes, the task each request becomes, and the answers.

use std::{
    convert::Infallible,
    future::Future,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use alloy::{primitives::B256, signers::local::PrivateKeySigner};
use axum::{
    Json, Router,
    body::Bytes,
    extract::{MatchedPath, Path, Request, State},
    http::{HeaderMap, StatusCode, header},
    middleware::{self, Next},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
    routing::{get, post},
};
use base64::Engine as _;
use serde_json::{Value, json};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use url::Url;
use verinfer_abi::{Deployment, TaskStatus, TokenDecimals, ValidationMode};
use verinfer_client::{
    Client, ClientError, CreatedTask, FetchedResult, TaskOptions, VerifiedResult,
};
use verinfer_inference::{PromptEncoder, TextPrompt};
use verinfer_task::{FinishReason, ModelRef, TaskArgs};

use crate::{
    config::{GatewayConfig, ModelConfig, ModelKind, Tokens},
    error::ApiError,
    ledger::{Caller, Charge, Ledger, LedgerError},
    metrics::Metrics,
    openai::{ChatRequest, ImageFormat, ImageRequest},
};

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The deployment record is unusable.
    #[error(transparent)]
    Deployment(#[from] verinfer_abi::DeploymentError),
    /// The CA file is unusable.
    #[error(transparent)]
    Tls(#[from] verinfer_wire::tls::TlsError),
    /// The chain is unreachable or is not the deployment's.
    #[error("cannot reach the chain: {0}")]
    Chain(#[source] ClientError),
    /// A model could not be resolved.
    #[error("model {id:?}: {reason}")]
    Model {
        /// The model's id.
        id: String,
        /// Why.
        reason: String,
    },
    /// The API keys' state file.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The listen address.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("the gateway stopped serving: {0}")]
    Serve(#[source] std::io::Error),
}

/// One model as served: its configuration, what task args name it, and fees in base units.
#[derive(Debug)]
struct ServedModel {
    config: ModelConfig,
    model_ref: ModelRef,
    /// Text models with a `model_dir`: counts prompt tokens as nodes do.
    encoder: Option<Arc<PromptEncoder>>,
    fee_per_task: u128,
    fee_per_unit: u128,
}

#[derive(Debug)]
struct Inner {
    client: Client,
    ledger: Ledger,
    metrics: Metrics,
    models: Vec<ServedModel>,
    decimals: TokenDecimals,
    in_flight: Arc<Semaphore>,
    max_in_flight: usize,
    timeout: Duration,
    relayer: Url,
    public_relayer: Url,
}

/// A gateway ready to serve.
#[derive(Debug, Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
    listen: SocketAddr,
}

impl Gateway {
    /// Connects to the chain (checks it is the deployment's), reads the token's decimals,
    /// resolves the models (digests, tokenizers) and opens the API keys' state file.
    pub async fn new(
        config: &GatewayConfig,
        signer: PrivateKeySigner,
    ) -> Result<Self, GatewayError> {
        verinfer_wire::tls::install_crypto_provider();
        let http = verinfer_wire::tls::http_client(config.ca_file.as_deref())?;
        let deployment = Deployment::load(&config.deployment)?;
        let client = Client::with_http(
            config.rpc_url.clone(),
            signer,
            deployment,
            config.relayer_url.clone(),
            http,
        )
        .with_poll_interval(Duration::from_millis(config.poll_interval_ms));
        client.check_chain().await.map_err(GatewayError::Chain)?;
        let decimals = client.token_decimals().await.map_err(GatewayError::Chain)?;
        let mut models = Vec::new();
        for model in &config.models {
            models.push(serve_model(model, decimals).await?);
        }
        let ledger = Ledger::open(&config.api_keys, &config.state_file, decimals)?;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                ledger,
                metrics: Metrics::new(),
                models,
                decimals,
                in_flight: Arc::new(Semaphore::new(config.max_in_flight)),
                max_in_flight: config.max_in_flight,
                timeout: Duration::from_secs(config.request_timeout_secs),
                relayer: config.relayer_url.clone(),
                public_relayer: config.public_relayer_url().clone(),
            }),
            listen: config.listen,
        })
    }

    /// The account that pays the fees.
    pub fn account(&self) -> alloy::primitives::Address {
        self.inner.client.account()
    }

    /// The gateway's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Binds the configured listen address.
    pub async fn bind(&self) -> Result<tokio::net::TcpListener, GatewayError> {
        tokio::net::TcpListener::bind(self.listen)
            .await
            .map_err(|source| GatewayError::Listen {
                addr: self.listen,
                source,
            })
    }

    /// The routes.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/v1/models", get(list_models))
            .route("/v1/models/{id}", get(get_model))
            .route("/v1/chat/completions", post(chat_completions))
            .route("/v1/images/generations", post(image_generations))
            .route("/metrics", get(metrics))
            .route("/health", get(|| async { "ok" }))
            .fallback(|| async { ApiError::not_found("no such route on verinfer's gateway") })
            .layer(middleware::from_fn_with_state(
                self.inner.clone(),
                record_request,
            ))
            .with_state(self.inner.clone())
    }

    /// Serves on `listener` until `stop` resolves; requests in progress are finished first.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), GatewayError> {
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(%addr, account = %self.account(), models = self.inner.models.len(), "gateway serving");
        }
        axum::serve(listener, self.router())
            .with_graceful_shutdown(stop)
            .await
            .map_err(GatewayError::Serve)
    }
}

async fn serve_model(
    model: &ModelConfig,
    decimals: TokenDecimals,
) -> Result<ServedModel, GatewayError> {
    let error = |reason: String| GatewayError::Model {
        id: model.id.clone(),
        reason,
    };
    let model_ref = match &model.model_dir {
        Some(dir) => {
            let dir = dir.clone();
            tokio::task::spawn_blocking(move || ModelRef::from_dir(&dir).map_err(|e| e.to_string()))
                .await
                .map_err(|e| error(e.to_string()))?
                .map_err(error)?
        }
        None => {
            let model_ref = ModelRef {
                name: model.name.clone().unwrap_or_default(),
                digest: model.digest.clone().unwrap_or_default(),
            };
            model_ref
                .parsed_digest()
                .map_err(|e| error(format!("digest {:?}: {e}", model_ref.digest)))?;
            model_ref
        }
    };
    let encoder = match (model.kind, model.tokenizer_dir()) {
        (ModelKind::Text, Some(dir)) => {
            let dir = dir.to_owned();
            let encoder = tokio::task::spawn_blocking(move || {
                PromptEncoder::load(&dir).map_err(|e| e.to_string())
            })
            .await
            .map_err(|e| error(e.to_string()))?
            .map_err(error)?;
            Some(Arc::new(encoder))
        }
        _ => None,
    };
    let units = |field: &str, tokens: &Tokens| {
        tokens
            .0
            .to_units(decimals)
            .map_err(|e| error(format!("{field} {tokens}: {e}")))
    };
    let fee_per_unit = match model.kind {
        ModelKind::Text => units("fee_per_token", &model.fee_per_token)?,
        ModelKind::Image => units("fee_per_image", &model.fee_per_image)?,
    };
    Ok(ServedModel {
        fee_per_task: units("fee_per_task", &model.fee_per_task)?,
        fee_per_unit,
        config: model.clone(),
        model_ref,
        encoder,
    })
}

/// Counts every request by route and status, and times it.
async fn record_request(State(inner): State<Arc<Inner>>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    inner
        .metrics
        .requests
        .with_label_values(&[route.as_str(), response.status().as_str()])
        .inc();
    inner
        .metrics
        .latency
        .with_label_values(&[route.as_str()])
        .observe(started.elapsed().as_secs_f64());
    response
}

async fn metrics(State(inner): State<Arc<Inner>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        inner.metrics.render(),
    )
}

fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
}

impl Inner {
    fn model(&self, id: &str, kind: ModelKind) -> Result<&ServedModel, ApiError> {
        let offered = || {
            self.models
                .iter()
                .filter(|m| m.config.kind == kind)
                .map(|m| m.config.id.as_str())
                .collect::<Vec<_>>()
        };
        let model = self
            .models
            .iter()
            .find(|m| m.config.id == id)
            .ok_or_else(|| ApiError::unknown_model(id, &offered()))?;
        if model.config.kind != kind {
            let route = match kind {
                ModelKind::Text => "/v1/images/generations",
                ModelKind::Image => "/v1/chat/completions",
            };
            return Err(ApiError::invalid(
                Some("model"),
                format!(
                    "the model `{id}` is a{} model: use {route}",
                    match model.config.kind {
                        ModelKind::Text => " text",
                        ModelKind::Image => "n image",
                    }
                ),
            ));
        }
        Ok(model)
    }

    /// The caller and the request, in OpenAI's order of checks: the key (401), the model (404,
    /// read before the rest so that an unknown model is a 404 even when the rest does not parse),
    /// then the body (400).
    fn read_request<T: serde::de::DeserializeOwned>(
        &self,
        headers: &HeaderMap,
        body: &Bytes,
        kind: ModelKind,
    ) -> Result<(Caller, T), ApiError> {
        let caller = self.ledger.authenticate(authorization(headers))?;
        if let Some(id) = model_field(body) {
            self.model(&id, kind)?;
        }
        Ok((caller, parse_body(body)?))
    }

    /// A place among the requests in flight, or 429.
    fn admit(&self) -> Result<InFlight, ApiError> {
        let permit = self.in_flight.clone().try_acquire_owned().map_err(|_| {
            ApiError::busy(format!(
                "{} requests are in flight, this gateway's limit; retry shortly",
                self.max_in_flight
            ))
        })?;
        self.metrics.enter();
        Ok(InFlight {
            _permit: permit,
            metrics: self.metrics.clone(),
        })
    }

    fn model_json(&self, model: &ServedModel) -> Value {
        let config = &model.config;
        let defaults = match config.kind {
            ModelKind::Text => json!({
                "max_tokens": config.max_tokens,
                "temperature": config.temperature,
                "precision": config.precision,
            }),
            ModelKind::Image => json!({
                "size": format!("{}x{}", config.width, config.height),
                "steps": config.steps,
                "guidance_scale": config.guidance_scale,
                "scheduler": config.scheduler,
                "precision": config.precision,
            }),
        };
        let per_unit = match config.kind {
            ModelKind::Text => "per_token",
            ModelKind::Image => "per_image",
        };
        json!({
            "id": config.id,
            "object": "model",
            "created": 0,
            "owned_by": "verinfer",
            "verinfer": {
                "kind": config.kind,
                "model": {"name": model.model_ref.name, "digest": model.model_ref.digest},
                "gpu_model": config.gpu_model,
                "min_vram_mib": config.min_vram_mib,
                "validation": mode_name(config.validation),
                "defaults": defaults,
                "fee": {
                    "per_task": self.decimals.format(model.fee_per_task),
                    per_unit: self.decimals.format(model.fee_per_unit),
                    "note": "in tokens; raised to the network's minimum fee when lower",
                },
            },
        })
    }
}

/// A request in flight: holds its place and the gauge until dropped.
struct InFlight {
    _permit: OwnedSemaphorePermit,
    metrics: Metrics,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.metrics.in_flight.dec();
    }
}

fn mode_name(mode: ValidationMode) -> &'static str {
    match mode {
        ValidationMode::Full => "full",
        ValidationMode::Sampled => "sampled",
    }
}

async fn list_models(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    inner.ledger.authenticate(authorization(&headers))?;
    let data: Vec<Value> = inner.models.iter().map(|m| inner.model_json(m)).collect();
    Ok(Json(json!({"object": "list", "data": data})))
}

async fn get_model(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    inner.ledger.authenticate(authorization(&headers))?;
    let model = inner
        .models
        .iter()
        .find(|m| m.config.id == id)
        .ok_or_else(|| {
            let offered: Vec<_> = inner.models.iter().map(|m| m.config.id.as_str()).collect();
            ApiError::unknown_model(&id, &offered)
        })?;
    Ok(Json(inner.model_json(model)))
}

/// Parses a JSON body; a 400 names what serde could not read.
fn parse_body<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|error| {
        ApiError::invalid(
            None,
            format!("the request body is not valid JSON for this route: {error}"),
        )
    })
}

/// The `model` field of a body, when it has one.
fn model_field(body: &Bytes) -> Option<String> {
    serde_json::from_slice::<Value>(body)
        .ok()?
        .get("model")?
        .as_str()
        .map(str::to_owned)
}

/// A task created for a request, with what the answer needs.
struct Submitted {
    created: CreatedTask,
    charge: Charge,
    caller: Caller,
    /// When the request arrived.
    received: Instant,
    /// When the gateway started sending (the network's share of the time starts here).
    submitted: Instant,
    deadline: tokio::time::Instant,
}

/// The validated, verified result of a submitted task.
struct Finished {
    fetched: FetchedResult,
    /// From the first transaction to the verified result.
    network: Duration,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn status_name(status: TaskStatus) -> String {
    status.to_string().to_ascii_lowercase()
}

impl Inner {
    /// The fee of a task of `model` with `units` tokens or images: the configured fee, raised to
    /// the network's minimum and capped at a sampled task's maximum.
    async fn fee(
        &self,
        model: &ServedModel,
        args: &TaskArgs,
        units: u32,
    ) -> Result<u128, ApiError> {
        let count = u8::try_from(args.image_count()).unwrap_or(u8::MAX);
        let range = self
            .client
            .fee_range(args.kind(), count, model.config.validation)
            .await
            .map_err(|error| upstream("reading the network's fees", &error))?;
        let configured = model
            .fee_per_task
            .saturating_add(model.fee_per_unit.saturating_mul(u128::from(units)));
        let fee = configured.max(range.minimum);
        Ok(range.maximum.map_or(fee, |maximum| fee.min(maximum)))
    }

    /// Reserves the fee against the caller's budget and creates the task (nothing is spent when
    /// this fails before `createTask` is mined).
    async fn submit(
        &self,
        caller: Caller,
        model: &ServedModel,
        args: TaskArgs,
        units: u32,
        received: Instant,
    ) -> Result<Submitted, ApiError> {
        let deadline = tokio::time::Instant::from_std(received) + self.timeout;
        let fee = self.fee(model, &args, units).await?;
        let reservation = self.ledger.reserve(&caller, fee)?;
        let options = TaskOptions {
            fee: Some(fee),
            min_vram_mib: model.config.min_vram_mib,
            gpu_model: model.config.gpu_model.clone(),
            mode: model.config.validation,
        };
        let submitted = Instant::now();
        let created =
            match tokio::time::timeout_at(deadline, self.client.create(&args, &options)).await {
                Ok(Ok(created)) => created,
                Ok(Err(error)) => {
                    self.ledger.release(reservation);
                    self.count_task(&args, "failed");
                    return Err(create_error(&error));
                }
                Err(_) => {
                    // The transaction may still be mined: keep the reservation's fee counted.
                    let _ = self.ledger.charge(reservation);
                    self.count_task(&args, "timeout");
                    return Err(ApiError::timeout(format!(
                        "creating the task took longer than the gateway's {} s request timeout",
                        self.timeout.as_secs()
                    )));
                }
            };
        let charge = self.ledger.charge(reservation).map_err(|error| {
            ApiError::upstream(format!("task {} was created, but {error}", created.task_id))
        })?;
        self.metrics
            .fees
            .with_label_values(&[caller.name.as_str()])
            .inc_by(self.tokens(fee));
        tracing::info!(key = %caller.name, task_id = created.task_id, tx = %created.tx, fee = %self.decimals.format(fee), model = %model.config.id, "task created");
        Ok(Submitted {
            created,
            charge,
            caller,
            received,
            submitted,
            deadline,
        })
    }

    /// Base units as (approximate) tokens, for metrics.
    fn tokens(&self, units: u128) -> f64 {
        units as f64 / 10f64.powi(i32::from(self.decimals.get()))
    }

    fn count_task(&self, args: &TaskArgs, outcome: &str) {
        let kind = match args {
            TaskArgs::Text(_) => "text",
            TaskArgs::Image(_) => "image",
        };
        self.metrics.tasks.with_label_values(&[kind, outcome]).inc();
    }

    /// Waits for the task to end and fetches its verified result (502 when it did not validate,
    /// 504 at the deadline).
    async fn finish(&self, submitted: &Submitted, args: &TaskArgs) -> Result<Finished, ApiError> {
        let task_id = submitted.created.task_id;
        let waited = tokio::time::timeout_at(submitted.deadline, async {
            let task = self
                .client
                .wait(task_id, |_| {})
                .await
                .map_err(|error| Ok(upstream(&format!("following task {task_id}"), &error)))?;
            if task.status != TaskStatus::Validated {
                return Err(Err(task.status));
            }
            let remaining = submitted
                .deadline
                .saturating_duration_since(tokio::time::Instant::now());
            self.client
                .fetch_verified_when_ready(task_id, remaining)
                .await
                .map_err(|error| {
                    Ok(upstream(
                        &format!("fetching task {task_id}'s result"),
                        &error,
                    ))
                })
        })
        .await;
        let explorer = self.explorer(task_id);
        match waited {
            Ok(Ok(fetched)) => {
                self.count_task(args, "validated");
                Ok(Finished {
                    fetched,
                    network: submitted.submitted.elapsed(),
                })
            }
            Ok(Err(Err(status))) => {
                self.count_task(args, &status_name(status));
                let refunded = matches!(
                    status,
                    TaskStatus::Aborted
                        | TaskStatus::Errored
                        | TaskStatus::Expired
                        | TaskStatus::Cancelled
                );
                if refunded {
                    if let Err(error) = self.ledger.refund(&submitted.charge) {
                        tracing::warn!(%error, task_id, "could not record the refund");
                    }
                    self.metrics
                        .refunds
                        .with_label_values(&[submitted.caller.name.as_str()])
                        .inc_by(self.tokens(submitted.created.fee));
                }
                Err(ApiError::upstream(format!(
                    "task {task_id} ended {} instead of validated{}; see {explorer}",
                    status_name(status),
                    if refunded {
                        " (its fee was refunded)"
                    } else {
                        ""
                    }
                )))
            }
            Ok(Err(Ok(error))) => {
                self.count_task(args, "unverified");
                Err(error)
            }
            Err(_) => {
                self.count_task(args, "timeout");
                Err(ApiError::timeout(format!(
                    "task {task_id} was not validated within the gateway's {} s request timeout; it goes on on chain: see {explorer}",
                    self.timeout.as_secs()
                )))
            }
        }
    }

    fn explorer(&self, task_id: u64) -> String {
        format!("{}explorer/tasks/{task_id}", self.relayer)
    }

    /// The `verinfer` object of an answer.
    fn verinfer_json(&self, submitted: &Submitted, finished: &Finished, args: &TaskArgs) -> Value {
        let report = &finished.fetched.report;
        let validation = report.validation();
        let created = &submitted.created;
        let mut object = json!({
            "task_id": created.task_id,
            "tx": created.tx,
            "outcome": status_name(report.task.status),
            "validation": mode_name(created.mode),
            "checked": validation.by_three_nodes(),
            "validation_line": report.validation_line(),
            "node": finished.fetched.node,
            "nodes": report.nodes.iter().map(|n| n.address).collect::<Vec<_>>(),
            "agreeing": report.nodes.iter().filter(|n| n.agreed == Some(true)).map(|n| n.address).collect::<Vec<_>>(),
            "model": {"name": args.model().name, "digest": args.model().digest},
            "seed": args.seed(),
            "fee": self.decimals.format(created.fee),
            "fee_base_units": created.fee.to_string(),
            "explorer": self.explorer(created.task_id),
            "timing_ms": {
                "total": submitted.received.elapsed().as_millis() as u64,
                "network": finished.network.as_millis() as u64,
            },
        });
        if let Some(model) = &created.gpu_model {
            object["gpu_model"] = json!(model.name);
        }
        match &finished.fetched.verified {
            VerifiedResult::Text { digest, .. } => object["digest"] = json!(digest),
            VerifiedResult::Images { phashes, keccak256 } => {
                object["phashes"] = json!(
                    phashes
                        .iter()
                        .map(|p| format!("{p:016x}"))
                        .collect::<Vec<_>>()
                );
                object["keccak256"] = json!(keccak256);
            }
        }
        object
    }
}

/// A client error while creating: 400 when the request could never be a task, 502 otherwise.
fn create_error(error: &ClientError) -> ApiError {
    match error {
        ClientError::InvalidArgs(error) => crate::openai::args_error(error),
        ClientError::InvalidRequest(message) => ApiError::invalid(None, message.clone()),
        ClientError::GpuModelLacksVram { .. } | ClientError::NoGpuModelFits { .. } => {
            ApiError::invalid(None, error.to_string())
        }
        other => upstream("creating the task", other),
    }
}

fn upstream(what: &str, error: &ClientError) -> ApiError {
    tracing::warn!(%error, "{what} failed");
    ApiError::upstream(format!("{what} failed: {error}"))
}

fn finish_reason(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::Length => "length",
        FinishReason::Stop | FinishReason::StopSequence => "stop",
    }
}

/// What a chat answer is made of.
struct ChatAnswer {
    id: String,
    created: u64,
    model: String,
    text: String,
    finish_reason: &'static str,
    usage: Value,
    verinfer: Value,
    fingerprint: String,
}

impl ChatAnswer {
    fn new(
        inner: &Inner,
        submitted: &Submitted,
        finished: &Finished,
        args: &TaskArgs,
        model: &ServedModel,
        prompt_tokens: Option<usize>,
    ) -> Result<Self, ApiError> {
        let VerifiedResult::Text { output, .. } = &finished.fetched.verified else {
            return Err(ApiError::upstream("the task's result is not text"));
        };
        let completion = output.token_ids.len();
        let prompt = prompt_tokens
            .ok_or_else(|| ApiError::upstream("the prompt's tokens could not be counted"))?;
        let usage = json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion});
        Ok(Self {
            id: format!("chatcmpl-verinfer-{}", submitted.created.task_id),
            created: unix_now(),
            model: model.config.id.clone(),
            text: output.text.clone(),
            finish_reason: finish_reason(output.finish_reason),
            usage,
            verinfer: inner.verinfer_json(submitted, finished, args),
            fingerprint: model.model_ref.digest.clone(),
        })
    }

    fn completion(&self) -> Value {
        json!({
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": self.fingerprint,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": self.text, "refusal": null},
                "logprobs": null,
                "finish_reason": self.finish_reason,
            }],
            "usage": self.usage,
            "verinfer": self.verinfer,
        })
    }

    fn chunk(&self, delta: Value, finish_reason: Option<&str>) -> Value {
        json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": self.fingerprint,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}],
            "verinfer": self.verinfer,
        })
    }
}

/// Prompt tokens as nodes count them (`None` without a tokenizer).
async fn prompt_tokens(model: &ServedModel, args: &TaskArgs) -> Option<usize> {
    let (encoder, TaskArgs::Text(text)) = (model.encoder.clone()?, args) else {
        return None;
    };
    let prompt = TextPrompt::from(&text.input);
    tokio::task::spawn_blocking(move || encoder.prompt_ids(&prompt).map(|ids| ids.len()))
        .await
        .ok()?
        .map_err(|error| tracing::warn!(%error, "could not count prompt tokens"))
        .ok()
}

async fn chat_completions(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let received = Instant::now();
    let (caller, request) = inner.read_request::<ChatRequest>(&headers, &body, ModelKind::Text)?;
    let model = inner.model(&request.model, ModelKind::Text)?;
    let text_args = request.to_args(&model.config, &model.model_ref)?;
    let units = text_args.max_tokens;
    let args = TaskArgs::Text(text_args);
    let in_flight = inner.admit()?;
    let prompt_tokens = prompt_tokens(model, &args).await;
    let submitted = inner
        .submit(caller, model, args.clone(), units, received)
        .await?;
    if !request.stream {
        let finished = inner.finish(&submitted, &args).await?;
        let answer = ChatAnswer::new(&inner, &submitted, &finished, &args, model, prompt_tokens)?;
        drop(in_flight);
        return Ok(Json(answer.completion()).into_response());
    }
    // Streamed: the task exists; the text arrives once it is validated and verified (a result
    // is only known whole, so it comes as one content chunk). Keep-alive comments until then.
    let include_usage = request
        .stream_options
        .as_ref()
        .is_some_and(|options| options.include_usage);
    let (sender, receiver) = tokio::sync::mpsc::channel::<Event>(8);
    let model_index = inner
        .models
        .iter()
        .position(|m| m.config.id == model.config.id)
        .unwrap_or_default();
    let task_inner = inner.clone();
    tokio::spawn(async move {
        let _in_flight = in_flight;
        let inner = task_inner;
        let model = &inner.models[model_index];
        let answer = match inner.finish(&submitted, &args).await {
            Ok(finished) => {
                ChatAnswer::new(&inner, &submitted, &finished, &args, model, prompt_tokens)
            }
            Err(error) => Err(error),
        };
        let events = match answer {
            Ok(answer) => {
                let mut events = vec![
                    answer.chunk(json!({"role": "assistant", "content": ""}), None),
                    answer.chunk(json!({"content": answer.text}), None),
                    answer.chunk(json!({}), Some(answer.finish_reason)),
                ];
                if include_usage {
                    let mut usage = answer.chunk(json!({}), None);
                    usage["choices"] = json!([]);
                    usage["usage"] = answer.usage.clone();
                    events.push(usage);
                }
                events
                    .into_iter()
                    .map(|chunk| Event::default().data(chunk.to_string()))
                    .chain([Event::default().data("[DONE]")])
                    .collect::<Vec<_>>()
            }
            Err(error) => vec![Event::default().data(error.body().to_string())],
        };
        for event in events {
            if sender.send(event).await.is_err() {
                break;
            }
        }
    });
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver
            .recv()
            .await
            .map(|event| (Ok::<_, Infallible>(event), receiver))
    });
    Ok(Sse::new(stream)
        .keep_alive(
            KeepAlive::new()
                .interval(Duration::from_secs(5))
                .text("verinfer: the task runs; the text comes once it is validated"),
        )
        .into_response())
}

async fn image_generations(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let received = Instant::now();
    let (caller, request) =
        inner.read_request::<ImageRequest>(&headers, &body, ModelKind::Image)?;
    let model = match &request.model {
        Some(id) => inner.model(id, ModelKind::Image)?,
        None => {
            let mut images = inner
                .models
                .iter()
                .filter(|m| m.config.kind == ModelKind::Image);
            match (images.next(), images.next()) {
                (Some(only), None) => only,
                _ => {
                    return Err(ApiError::invalid(
                        Some("model"),
                        "give `model`: this gateway does not have exactly one image model",
                    ));
                }
            }
        }
    };
    let (image_args, format) = request.to_args(&model.config, &model.model_ref)?;
    let units = image_args.num_images;
    let args = TaskArgs::Image(image_args);
    let in_flight = inner.admit()?;
    let submitted = inner
        .submit(caller, model, args.clone(), units, received)
        .await?;
    let finished = inner.finish(&submitted, &args).await?;
    drop(in_flight);
    let VerifiedResult::Images { keccak256, .. } = &finished.fetched.verified else {
        return Err(ApiError::upstream("the task's result is not images"));
    };
    let data = match format {
        ImageFormat::B64Json => finished
            .fetched
            .images
            .iter()
            .map(|png| json!({"b64_json": base64::engine::general_purpose::STANDARD.encode(png)}))
            .collect::<Vec<_>>(),
        ImageFormat::Url => keccak256
            .iter()
            .map(|hash| json!({"url": blob_url(&inner.public_relayer, *hash)}))
            .collect(),
    };
    let verinfer = inner.verinfer_json(&submitted, &finished, &args);
    Ok((
        StatusCode::OK,
        Json(json!({"created": unix_now(), "data": data, "verinfer": verinfer})),
    )
        .into_response())
}

fn blob_url(base: &Url, keccak: B256) -> String {
    base.join(&format!("v1/blobs/{keccak}"))
        .map(String::from)
        .unwrap_or_else(|_| format!("{base}v1/blobs/{keccak}"))
}
