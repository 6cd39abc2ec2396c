//! verinfer client for dApps: create image and text tasks, follow them, and fetch their results
//! verified against the chain.
//!
//! ```no_run
//! # async fn demo(client: verinfer_client::Client, args: verinfer_task::ImageArgs) -> Result<(), verinfer_client::ClientError> {
//! let created = client.create_image_task(args, 10u128.pow(18), 0).await?;
//! let task = client.wait(created.task_id, |task| println!("{}", task.status)).await?;
//! let out = std::path::Path::new("out");
//! let result = client.fetch_result_when_ready(task.task_id, out, std::time::Duration::from_secs(30)).await?;
//! println!("{}", result.summary());
//! # Ok(()) }
//! ```
//!
//! - [`Client::create_image_task`] / [`Client::create_text_task`] validate the args with
//!   `verinfer-task` before anything is sent, upload their canonical bytes to the relayer,
//!   approve the fee and call `createTask`.
//! - [`Client::cancel_task`] cancels a task still waiting in its queue (full refund).
//! - [`Client::task_status`], [`Client::wait`], [`Client::task_report`] read the chain (and the
//!   relayer's index next to it).
//! - [`Client::fetch_result`] downloads a validated result and recomputes every pHash (or the text
//!   digest) before writing a file: the relayer is not trusted.
//!   [`Client::fetch_result_when_ready`] also waits for the nodes' uploads, which land just after
//!   the task settles.
//!
//! The chain model (tasks, events, reverts) is `verinfer-abi`'s, the relayer's HTTP contract
//! `verinfer-wire`'s and the result check `verinfer-task`'s. This crate must not depend on the
//! relayer server, the node or the inference stack (no database, HTTP server or object store).

mod client;
mod error;
mod fetch;
mod gpu_model;
mod report;

pub use client::{CancelledTask, Client, CreatedTask, MAX_TASK_VRAM_MIB, checked_args_bytes};
pub use error::ClientError;
pub use fetch::{ResultReport, VerifiedResult};
pub use gpu_model::{MAX_GPU_MODEL_BYTES, normalise_gpu_model};
pub use report::{
    ChainTask, NodeReport, RevealedResult, Settlement, Slash, TaskReport, TaskStatusReport,
};
pub use verinfer_abi::{Deployment, SlashReason, TaskKind, TaskStatus};
