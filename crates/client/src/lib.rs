//! verinfer client for dApps: create image and text tasks, follow them, and fetch their results
//! verified against the chain.
//!
//! ```no_run
//! # async fn demo(client: verinfer_client::Client, args: verinfer_task::ImageArgs) -> Result<(), verinfer_client::ClientError> {
//! // No fee given: the network's minimum for the task.
//! let created = client.create_image_task(args, None, 0).await?;
//! let task = client.wait(created.task_id, |task| println!("{}", task.status)).await?;
//! let out = std::path::Path::new("out");
//! let result = client.fetch_result_when_ready(task.task_id, out, std::time::Duration::from_secs(30)).await?;
//! println!("{}", result.summary());
//! # Ok(()) }
//! ```
//!
//! - [`Client::create_image_task`] / [`Client::create_text_task`] validate the args with
//!   `verinfer-task` and check the fee (default: the network minimum) and the GPU model (text
//!   tasks: default the registered model with the most available nodes) before anything is sent,
//!   upload the args' canonical bytes to the relayer, approve the fee and call `createTask`;
//!   the task waits in its queue until a draw in a later block starts it, which they send
//!   (`drawTasks`) when nothing else did a block later.
//! - [`Client::create`] takes [`TaskOptions`]: the same with the validation mode, `Full` (three
//!   nodes at once, `createTask`) or `Sampled` (one node, checked by two more with the network's
//!   probability p, `createSampledTask`; the fee must lie within `sampledFeeRange`, default its
//!   minimum). [`Client::sample_decision`] tells whether a sampled task's draw chose a check,
//!   [`Client::resolve_sample`] runs it (`resolveSample`).
//! - [`Client::cancel_task`] cancels a task still waiting in its queue (full refund);
//!   [`Client::expire_task`] ends one that outlived its queue timeout.
//! - [`Client::claimable`] / [`Client::withdraw`]: refunds of aborted, errored and expired tasks
//!   are credited to the creator, not sent; `withdraw` sends them.
//! - [`Client::gpu_models`], [`Client::min_task_fee`], and the owner's calls in [`admin`]
//!   (GPU model registry, parameter schedule).
//! - [`Client::task_status`], [`Client::wait`], [`Client::task_report`] read the chain (and the
//!   relayer's index next to it); their `validation_line()` says plainly whether the result was
//!   checked by three nodes or accepted unchecked at rate p.
//! - [`Client::fetch_result`] downloads a validated result and recomputes every pHash (or the text
//!   digest) before writing a file: the relayer is not trusted.
//!   [`Client::fetch_result_when_ready`] also waits for the nodes' uploads, which land just after
//!   the task settles; [`Client::fetch_verified`] keeps the verified result in memory.
//! - A [`Client`] and its clones may serve many tasks at once: their transactions are sent one at
//!   a time (one account, one nonce sequence), and an approval and its `createTask` are never
//!   split by another task's.
//!
//! The chain model (tasks, events, reverts) is `verinfer-abi`'s, the relayer's HTTP contract
//! `verinfer-wire`'s and the result check `verinfer-task`'s. This crate must not depend on the
//! relayer server, the node or the inference stack (no database, HTTP server or object store).

pub mod admin;
mod client;
mod error;
mod fetch;
mod gpu_model;
mod report;

pub use client::{
    CancelledTask, Client, CreatedTask, ExpiredTask, FeeRange, ResolvedSample, SampleDecision,
    TaskOptions, Withdrawal, checked_args_bytes,
};
pub use error::ClientError;
pub use fetch::{FetchedResult, ResultReport, VerifiedResult};
pub use gpu_model::{GpuModelInfo, MAX_GPU_MODEL_BYTES, normalise_gpu_model};
pub use report::{
    ChainTask, NodeReport, RevealedResult, Settlement, Slash, TaskReport, TaskStatusReport,
};
pub use verinfer_abi::{
    AmountError, Deployment, IVerinfer::Params, SlashReason, TaskKind, TaskStatus, TokenAmount,
    TokenAmountText, TokenDecimals, Validation, ValidationMode,
};
/// The HTTPS setup of [`Client::with_http`]: system roots plus an extra CA file.
pub use verinfer_wire::tls;
