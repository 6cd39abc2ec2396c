//! The one definition of verinfer's task formats, shared by the node, the relayer, the CLI and
//! the tests (see `docs/task-format.md`):
//!
//! - [`TaskArgs`]: the args schemas, their validation rules, canonical bytes and [`args_hash`];
//! - [`ModelDigest`], [`model_digest`], [`model_digest_cached`] and [`ModelStore`]: which model a
//!   task runs and where this node keeps it;
//! - [`ImageResult`], [`TextOutput`] and [`text_digest`]: what a node reveals;
//! - [`image_commitment`], [`text_commitment`], [`invalid_args_commitment`] and
//!   [`random_salt`]: what a node commits, matching `Verinfer.sol`;
//! - [`TaskKind`]: the kind of a task, defined once for the args, the chain and the APIs;
//! - [`verify_images`] and [`verify_text`]: the one check that a result's data matches what its
//!   node revealed on chain (used by the relayer and the client).
//!
//! It must stay free of chain access, HTTP and storage: the inference crate and every service
//! depend on it.

mod args;
mod commitment;
mod kind;
mod model;
mod result;
mod verify;

pub use args::*;
pub use commitment::*;
pub use kind::{TaskKind, UnknownTaskKind};
pub use model::*;
pub use result::*;
pub use verify::{
    PNG_SIGNATURE, ResultMismatch, png_phash, verify_image, verify_images, verify_text,
};
