//! The one definition of verinfer's task formats, shared by the node, the relayer, the CLI and
//! the tests (see `docs/task-format.md`):
//!
//! - [`TaskArgs`]: the args schemas, their validation rules, canonical bytes and [`args_hash`];
//! - [`ModelDigest`], [`model_digest`], [`model_digest_cached`] and [`ModelStore`]: which model a
//!   task runs and where this node keeps it;
//! - [`ImageResult`], [`TextOutput`] and [`text_digest`]: what a node reveals;
//! - [`image_commitment`], [`text_commitment`], [`invalid_args_commitment`] and
//!   [`random_salt`]: what a node commits, matching `Verinfer.sol`.

mod args;
mod commitment;
mod model;
mod result;

pub use args::*;
pub use commitment::*;
pub use model::*;
pub use result::*;
