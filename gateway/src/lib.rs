//! verinfer's OpenAI-compatible gateway: apps built on the OpenAI SDKs (or anything that speaks
//! their HTTP API) point `base_url` here and get text and images that the verinfer network
//! computed and validated, without learning verinfer's task format.
//!
//! | route | |
//! |---|---|
//! | `GET /v1/models`, `GET /v1/models/{id}` | the configured models: kind, model digest, GPU model (text), validation mode, defaults, fees |
//! | `POST /v1/chat/completions` | a text task; OpenAI's `chat.completion` plus a `verinfer` object; `stream: true` answers server-sent `chat.completion.chunk`s, the text arriving once validated |
//! | `POST /v1/images/generations` | an image task; `data[].b64_json` or `data[].url` of PNGs verified against the chain, plus `verinfer` |
//! | `GET /metrics` | Prometheus: requests, latency, tasks by outcome, fees spent |
//! | `GET /health` | `ok` |
//!
//! Every request needs `Authorization: Bearer <API key>`; keys are configured by SHA-256 with a
//! budget each ([`ledger`]). A request becomes a task only after it is checked: a request the
//! gateway refuses (400, 401, 404, 429) sends no transaction and costs nothing. The answer comes
//! after the task is validated on chain and an agreeing node's upload is verified against what it
//! revealed on chain (pHash of every PNG, or the text digest): the relayer is not trusted.
//! Errors follow OpenAI's shape ([`error::ApiError`]).
//!
//! The gateway holds one creator key; its [`verinfer_client::Client`] sends one transaction at a
//! time, so many requests become many tasks without nonce collisions.

pub mod config;
pub mod error;
pub mod ledger;
pub mod metrics;
pub mod openai;
mod server;

pub use config::{CONFIG_REFERENCE, GatewayConfig, KEYSTORE_PASSWORD_ENV};
pub use ledger::{api_key_sha256, new_api_key};
pub use server::{Gateway, GatewayError};
