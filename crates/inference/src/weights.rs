//! Finding a component's safetensors files, reading configs, and opening weights with errors
//! that name the file.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
};

use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use serde::de::DeserializeOwned;

use crate::error::{InferenceError, Result};

/// Reads and parses a JSON file; a missing file is [`InferenceError::MissingFile`].
pub(crate) fn read_json<T: DeserializeOwned>(path: &Path, what: &str) -> Result<T> {
    let bytes = read_required(path, what)?;
    serde_json::from_slice(&bytes).map_err(|source| InferenceError::Json {
        path: path.to_owned(),
        source,
    })
}

/// Reads a file the layout requires.
pub(crate) fn read_required(path: &Path, what: &str) -> Result<Vec<u8>> {
    match fs::read(path) {
        Ok(bytes) => Ok(bytes),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            Err(InferenceError::MissingFile {
                path: path.to_owned(),
                what: what.to_owned(),
            })
        }
        Err(source) => Err(InferenceError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// The safetensors files of one model component, in load order.
#[derive(Debug, Clone)]
pub(crate) struct WeightFiles {
    /// What errors name: the single file, or the index of a sharded checkpoint.
    pub(crate) origin: PathBuf,
    pub(crate) files: Vec<PathBuf>,
}

impl WeightFiles {
    /// Finds `<dir>/<stem>.safetensors`, else the shards listed by
    /// `<dir>/<stem>.safetensors.index.json`, else `<dir>/<stem>.fp16.safetensors`.
    pub(crate) fn find(dir: &Path, stem: &str) -> Result<Self> {
        let single = dir.join(format!("{stem}.safetensors"));
        if single.is_file() {
            return Ok(Self {
                origin: single.clone(),
                files: vec![single],
            });
        }
        let index = dir.join(format!("{stem}.safetensors.index.json"));
        if index.is_file() {
            #[derive(serde::Deserialize)]
            struct Index {
                weight_map: BTreeMap<String, String>,
            }
            let parsed: Index = read_json(&index, "sharded weights index")?;
            let mut shards: Vec<String> = parsed.weight_map.into_values().collect();
            shards.sort();
            shards.dedup();
            let mut files = Vec::with_capacity(shards.len());
            for shard in shards {
                if shard.contains('/') || shard.contains('\\') || shard.starts_with('.') {
                    return Err(InferenceError::config(
                        &index,
                        format!("shard name {shard:?} is not a plain file name"),
                    ));
                }
                let path = dir.join(&shard);
                if !path.is_file() {
                    return Err(InferenceError::MissingFile {
                        path,
                        what: format!("weight shard listed in {}", index.display()),
                    });
                }
                files.push(path);
            }
            if files.is_empty() {
                return Err(InferenceError::config(
                    &index,
                    "the weight_map lists no shard",
                ));
            }
            return Ok(Self {
                origin: index,
                files,
            });
        }
        let fp16 = dir.join(format!("{stem}.fp16.safetensors"));
        if fp16.is_file() {
            return Ok(Self {
                origin: fp16.clone(),
                files: vec![fp16],
            });
        }
        Err(InferenceError::MissingFile {
            path: single,
            what: format!(
                "model weights (or {stem}.safetensors.index.json with shards, or {stem}.fp16.safetensors)"
            ),
        })
    }

    /// Memory-maps the files into a [`VarBuilder`] that converts tensors to `dtype`.
    pub(crate) fn var_builder(&self, dtype: DType, device: &Device) -> Result<VarBuilder<'static>> {
        // SAFETY: memory-mapping is only unsound if the file is modified while mapped; model
        // files are not written while a node serves them (the same contract as candle's loaders).
        unsafe { VarBuilder::from_mmaped_safetensors(&self.files, dtype, device) }
            .map_err(|error| InferenceError::weights(&self.origin, error))
    }

    /// Name → shape of every tensor, read from the safetensors headers only.
    pub(crate) fn shapes(&self) -> Result<BTreeMap<String, Vec<usize>>> {
        let mut shapes = BTreeMap::new();
        for file in &self.files {
            let header = read_header(file)?;
            for (name, info) in header.tensors() {
                shapes.insert(name, info.shape.clone());
            }
        }
        Ok(shapes)
    }

    /// Checks that every `(name, shape)` is present with that shape, so a mismatched checkpoint
    /// is refused with a message naming the tensor and the file (some candle loaders panic).
    pub(crate) fn check_shapes(&self, expected: &[(String, Vec<usize>)]) -> Result<()> {
        let shapes = self.shapes()?;
        for (name, shape) in expected {
            match shapes.get(name) {
                None => {
                    return Err(InferenceError::weights(
                        &self.origin,
                        format!("tensor {name} is missing"),
                    ));
                }
                Some(found) if found != shape => {
                    return Err(InferenceError::weights(
                        &self.origin,
                        format!(
                            "tensor {name} has shape {found:?}, expected {shape:?} from the config"
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

fn read_header(path: &Path) -> Result<safetensors::tensor::Metadata> {
    use std::io::Read;
    let mut file = fs::File::open(path).map_err(InferenceError::io(path))?;
    let mut len_bytes = [0u8; 8];
    file.read_exact(&mut len_bytes).map_err(|_| {
        InferenceError::weights(path, "not a safetensors file (shorter than 8 bytes)")
    })?;
    let len = u64::from_le_bytes(len_bytes);
    // safetensors caps headers at 100 MB.
    if len > 100_000_000 {
        return Err(InferenceError::weights(
            path,
            format!("safetensors header of {len} bytes is too large"),
        ));
    }
    let mut header = vec![0u8; len as usize];
    file.read_exact(&mut header)
        .map_err(|_| InferenceError::weights(path, "truncated safetensors header"))?;
    serde_json::from_slice(&header)
        .map_err(|error| InferenceError::weights(path, format!("bad safetensors header: {error}")))
}
