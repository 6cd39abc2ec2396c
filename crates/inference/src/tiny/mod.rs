//! Tiny random-weight models in the real on-disk layouts, for tests and demos without
//! downloads: `tiny-sd/` (a diffusers Stable Diffusion 1.5-shaped directory), `tiny-sdxl/`
//! (SDXL-turbo-shaped: two text encoders and the `text_time` conditioning) and `tiny-llama/`
//! (a Hugging Face llama directory).
//!
//! The tensor names and shapes are not written down here: each component is built once with
//! a recording [`VarBuilder`] backend through the same constructors that load real models, and
//! exactly the tensors they ask for are written. Values are deterministic from the seed:
//! constants where the layer's init is constant (norm weights 1, norm biases 0), otherwise
//! normals scaled by `gain / sqrt(fan_in)` (biases: `0.02`), drawn per component from
//! [`NoiseStream`] in tensor-name order.

mod bpe;
mod llama;
mod sd;

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    sync::Mutex,
};

use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::{Init, VarBuilder, var_builder::SimpleBackend};
use serde::{Deserialize, Serialize};

use crate::{
    error::{InferenceError, Result},
    noise::NoiseStream,
};

/// Directory name of the tiny Stable Diffusion model.
pub const TINY_SD_DIR: &str = "tiny-sd";
/// Directory name of the tiny SDXL model.
pub const TINY_SDXL_DIR: &str = "tiny-sdxl";
/// Directory name of the tiny llama model.
pub const TINY_LLAMA_DIR: &str = "tiny-llama";
/// Marker recording how a tiny model was made (hidden, so not part of the model digest).
const MARKER_FILE: &str = ".verinfer-tiny.json";
/// Bumped whenever the generated files change, so stale directories are regenerated.
const TINY_FORMAT_VERSION: u32 = 1;

/// Where [`make_tiny_models`] put the models.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TinyModels {
    /// The SD 1.5-shaped diffusers directory.
    pub sd: PathBuf,
    /// The SDXL-shaped diffusers directory.
    pub sdxl: PathBuf,
    /// The llama directory.
    pub llama: PathBuf,
    /// Whether anything was written (false when all were already there with this seed).
    pub written: bool,
}

#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Marker {
    version: u32,
    seed: u64,
}

/// Writes `out/tiny-sd`, `out/tiny-sdxl` and `out/tiny-llama` from `seed`. A model already there with the same
/// seed is kept; one made with another seed (or by an older version) is an error unless `force`,
/// which regenerates it.
pub fn make_tiny_models(out: &Path, seed: u64, force: bool) -> Result<TinyModels> {
    fs::create_dir_all(out).map_err(InferenceError::io(out))?;
    let sd = out.join(TINY_SD_DIR);
    let sdxl = out.join(TINY_SDXL_DIR);
    let llama = out.join(TINY_LLAMA_DIR);
    let mut written = false;
    written |= make_one(&sd, seed, force, sd::write)?;
    written |= make_one(&sdxl, seed, force, sd::write_xl)?;
    written |= make_one(&llama, seed, force, llama::write)?;
    Ok(TinyModels {
        sd,
        sdxl,
        llama,
        written,
    })
}

fn make_one(
    dir: &Path,
    seed: u64,
    force: bool,
    write: fn(&Path, u64) -> Result<()>,
) -> Result<bool> {
    let marker_path = dir.join(MARKER_FILE);
    let wanted = Marker {
        version: TINY_FORMAT_VERSION,
        seed,
    };
    if dir.exists() {
        let existing = fs::read(&marker_path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Marker>(&b).ok());
        if existing.as_ref() == Some(&wanted) && !force {
            tracing::info!(dir = %dir.display(), seed, "tiny model already present");
            return Ok(false);
        }
        if !force {
            let what = match existing {
                Some(marker) => format!(
                    "it was made with seed {} (format {})",
                    marker.seed, marker.version
                ),
                None => "it is not a tiny model made by this tool".to_owned(),
            };
            return Err(InferenceError::InvalidParams(format!(
                "{} already exists and {what}; pass --force to overwrite it",
                dir.display()
            )));
        }
        fs::remove_dir_all(dir).map_err(InferenceError::io(dir))?;
    }
    // Build next to the target and rename, so a crash never leaves a half-written model.
    let staging = dir.with_file_name(format!(
        ".{}.partial-{}",
        dir.file_name().and_then(|n| n.to_str()).unwrap_or("tiny"),
        std::process::id()
    ));
    if staging.exists() {
        fs::remove_dir_all(&staging).map_err(InferenceError::io(&staging))?;
    }
    fs::create_dir_all(&staging).map_err(InferenceError::io(&staging))?;
    let result = write(&staging, seed).and_then(|()| {
        write_file(
            &staging.join(MARKER_FILE),
            &serde_json::to_vec(&wanted)
                .map_err(|e| InferenceError::InvalidParams(e.to_string()))?,
        )
    });
    if let Err(error) = result {
        let _ = fs::remove_dir_all(&staging);
        return Err(error);
    }
    fs::rename(&staging, dir).map_err(InferenceError::io(dir))?;
    tracing::info!(dir = %dir.display(), seed, "wrote tiny model");
    Ok(true)
}

pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(InferenceError::io(parent))?;
    }
    fs::write(path, bytes).map_err(InferenceError::io(path))
}

pub(crate) fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| InferenceError::InvalidParams(e.to_string()))?;
    bytes.push(b'\n');
    write_file(path, &bytes)
}

/// The tensors a model constructor asks for: name → (shape, init hint).
type Recorded = BTreeMap<String, (Vec<usize>, Init)>;

/// A [`SimpleBackend`] that hands out zeros and remembers what was asked for.
struct Recorder {
    tensors: Mutex<Recorded>,
}

impl SimpleBackend for Recorder {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        hint: Init,
        dtype: DType,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        if let Ok(mut tensors) = self.tensors.lock() {
            tensors.insert(name.to_owned(), (shape.dims().to_vec(), hint));
        }
        Tensor::zeros(shape, dtype, device)
    }

    fn get_unchecked(
        &self,
        name: &str,
        _dtype: DType,
        _device: &Device,
    ) -> candle_core::Result<Tensor> {
        candle_core::bail!(
            "tensor {name} requested without a shape; the tiny-model recorder needs shapes"
        )
    }

    fn contains_tensor(&self, _name: &str) -> bool {
        // Makes loaders that probe for alternative layouts pick the current diffusers names.
        true
    }
}

/// Runs `build` against a recorder and returns every tensor it requested.
pub(crate) fn record<T>(
    build: impl FnOnce(VarBuilder<'_>) -> candle_core::Result<T>,
) -> Result<Recorded> {
    let recorder = std::sync::Arc::new(Recorder {
        tensors: Mutex::new(BTreeMap::new()),
    });
    struct Shared(std::sync::Arc<Recorder>);
    impl SimpleBackend for Shared {
        fn get(
            &self,
            s: Shape,
            n: &str,
            h: Init,
            d: DType,
            dev: &Device,
        ) -> candle_core::Result<Tensor> {
            self.0.get(s, n, h, d, dev)
        }
        fn get_unchecked(&self, n: &str, d: DType, dev: &Device) -> candle_core::Result<Tensor> {
            self.0.get_unchecked(n, d, dev)
        }
        fn contains_tensor(&self, n: &str) -> bool {
            self.0.contains_tensor(n)
        }
    }
    let vb = VarBuilder::from_backend(Box::new(Shared(recorder.clone())), DType::F32, Device::Cpu);
    build(vb)
        .map_err(|e| InferenceError::InvalidParams(format!("recording tiny model tensors: {e}")))?;
    let tensors = recorder
        .tensors
        .lock()
        .map_err(|_| InferenceError::InvalidParams("recorder poisoned".to_owned()))?;
    Ok(tensors.clone())
}

/// Writes `tensors` with deterministic values to a safetensors file.
pub(crate) fn write_weights(
    path: &Path,
    tensors: &Recorded,
    seed: u64,
    stream: u64,
    gain: f64,
) -> Result<()> {
    let mut noise = NoiseStream::new(seed, stream);
    let mut data: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::with_capacity(tensors.len());
    for (name, (shape, init)) in tensors {
        let len: usize = shape.iter().product();
        let values: Vec<f32> = match *init {
            Init::Const(value) => vec![value as f32; len],
            _ if shape.len() == 1 => noise.normals(len).into_iter().map(|v| v * 0.02).collect(),
            _ => {
                let fan_in: usize = shape[1..].iter().product();
                let scale = (gain / (fan_in.max(1) as f64).sqrt()) as f32;
                noise.normals(len).into_iter().map(|v| v * scale).collect()
            }
        };
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        data.push((name.clone(), shape.clone(), bytes));
    }
    let views = data
        .iter()
        .map(|(name, shape, bytes)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)
                .map(|view| (name.clone(), view))
                .map_err(|e| InferenceError::weights(path, e))
        })
        .collect::<Result<Vec<_>>>()?;
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(InferenceError::io(parent))?;
    }
    safetensors::serialize_to_file(views, None, path).map_err(|e| InferenceError::weights(path, e))
}
