//! The tiny random-weight models the devnet's nodes serve.

use std::path::{Path, PathBuf};

use verinfer_task::ModelRef;

use crate::Error;

/// The tiny models (made by `verinfer_inference::make_tiny_models`) and references to them for
/// task args.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TinyModels {
    /// Directory holding `tiny-sd/` and `tiny-llama/` (a node's `models_dir`).
    pub dir: PathBuf,
    /// The Stable Diffusion model.
    pub sd: ModelRef,
    /// The llama model.
    pub llama: ModelRef,
}

impl TinyModels {
    /// Makes the tiny models with weights from `seed` under `dir` when missing (kept otherwise:
    /// making them is deterministic) and digests them. Blocking: call it from `spawn_blocking`
    /// in async code.
    pub fn make(dir: &Path, seed: u64) -> Result<Self, Error> {
        let made = verinfer_inference::make_tiny_models(dir, seed, false).map_err(|source| {
            Error::Models {
                dir: dir.to_path_buf(),
                source: Box::new(source),
            }
        })?;
        Ok(Self {
            sd: ModelRef::from_dir(&made.sd)?,
            llama: ModelRef::from_dir(&made.llama)?,
            dir: dir.to_path_buf(),
        })
    }
}
