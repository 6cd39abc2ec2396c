//! Model digests: a sha256 over a canonical listing of a model directory, a cache so the GBs of
//! weights are hashed only when they change, and a [`ModelStore`] that resolves a [`ModelRef`].
//!
//! # Digest algorithm (v1)
//!
//! 1. Walk `dir` recursively. Skip every entry whose name starts with `.` (hidden files and
//!    directories, which includes the cache file). Symlinks are followed (Hugging Face cache
//!    snapshots are symlinks into a blob store); a symlink cycle is an error.
//! 2. Keep the regular files whose name ends (case-sensitively) in `.json`, `.safetensors`,
//!    `.txt` or `.model`. Their path relative to `dir`, with `/` separators, must be UTF-8.
//! 3. Sort them by relative path, bytewise.
//! 4. sha256 over, for each file in order: the relative path bytes, one `0x00` byte, the file
//!    length as a big-endian u64, then the file content.
//!
//! A directory without any such file is an error, not the digest of nothing.

use std::{
    collections::BTreeMap,
    fmt,
    fs::{self, File},
    io::{self, Read, Write},
    path::{Path, PathBuf},
    str::FromStr,
    time::SystemTime,
};

use alloy_primitives::hex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::args::ModelRef;

/// File extensions that make up a model (weights, configs, tokenizers).
pub const MODEL_FILE_EXTENSIONS: [&str; 4] = [".json", ".safetensors", ".txt", ".model"];
/// Name of the digest cache written into each model directory.
pub const DIGEST_CACHE_FILE: &str = ".verinfer-digest.json";

const DIGEST_PREFIX: &str = "sha256:";
const CACHE_VERSION: u32 = 1;
const READ_BUFFER_BYTES: usize = 1 << 20;

/// sha256 model digest; displayed and parsed as `sha256:<64 lowercase hex>`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ModelDigest([u8; 32]);

impl ModelDigest {
    /// Wraps raw digest bytes.
    pub const fn new(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw digest bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for ModelDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{DIGEST_PREFIX}{}", hex::encode(self.0))
    }
}

impl fmt::Debug for ModelDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ModelDigest({self})")
    }
}

/// A string that is not `sha256:` followed by 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a model digest: expected `sha256:` followed by 64 lowercase hex digits")]
pub struct ModelDigestParseError {
    /// The rejected input.
    pub input: String,
}

impl FromStr for ModelDigest {
    type Err = ModelDigestParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let error = || ModelDigestParseError {
            input: s.to_owned(),
        };
        let hex_digits = s.strip_prefix(DIGEST_PREFIX).ok_or_else(error)?;
        // Only the lowercase form is canonical, so one model has exactly one digest string.
        if hex_digits.len() != 64
            || !hex_digits
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(error());
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(hex_digits, &mut bytes).map_err(|_| error())?;
        Ok(Self(bytes))
    }
}

impl Serialize for ModelDigest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ModelDigest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Failure to digest a model directory or resolve a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file or directory could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The directory holds no `*.json`, `*.safetensors`, `*.txt` or `*.model` file.
    #[error("{dir} holds no model files (*.json, *.safetensors, *.txt, *.model)")]
    NoModelFiles {
        /// The model directory.
        dir: PathBuf,
    },
    /// A model file or directory name is not UTF-8, so it has no canonical relative path.
    #[error("{path} is not a UTF-8 path; model file paths must be UTF-8 to be digested")]
    NonUtf8Path {
        /// The offending path.
        path: PathBuf,
    },
    /// A symlink leads back into one of its own ancestors.
    #[error("symlink cycle at {path}")]
    SymlinkCycle {
        /// The directory that was already being walked.
        path: PathBuf,
    },
    /// A file's size changed between listing and hashing.
    #[error("{path} changed while it was being hashed (listed as {expected} bytes)")]
    FileChanged {
        /// The file.
        path: PathBuf,
        /// Its size when listed.
        expected: u64,
    },
    /// A model reference whose digest does not parse (args that skipped validation).
    #[error("model {name}: {source}")]
    BadDigest {
        /// The model's informational name.
        name: String,
        /// The parse error.
        source: ModelDigestParseError,
    },
    /// No model directory in the store has this digest.
    #[error("this node does not hold model {name} ({digest})")]
    ModelNotHeld {
        /// The model's informational name.
        name: String,
        /// The requested digest.
        digest: String,
    },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> ModelError + '_ {
    move |source| ModelError::Io {
        path: path.to_owned(),
        source,
    }
}

/// One file of a model, as listed.
#[derive(Debug)]
struct ModelFile {
    relative: String,
    absolute: PathBuf,
    len: u64,
    modified: Option<SystemTime>,
}

/// The digest of the model directory `dir` (see the module docs for the algorithm). Streams
/// every file; for repeated calls prefer [`model_digest_cached`].
pub fn model_digest(dir: &Path) -> Result<ModelDigest, ModelError> {
    let files = list_model_files(dir)?;
    hash_files(&files)
}

/// Like [`model_digest`], but reuses `<dir>/.verinfer-digest.json` when every model file still
/// has the recorded relative path, size and modification time (nanoseconds). A missing,
/// corrupt or stale cache is recomputed and rewritten; failing to write it (read-only model
/// directory) is logged, never an error.
///
/// Like `make`, this trusts modification times: a rewrite that keeps both size and mtime is
/// not noticed. Use [`model_digest`] to force a full rehash.
pub fn model_digest_cached(dir: &Path) -> Result<ModelDigest, ModelError> {
    let files = list_model_files(dir)?;
    let Some(stamps) = stamps(&files) else {
        tracing::debug!(dir = %dir.display(), "file modification times unavailable; not caching the model digest");
        return hash_files(&files);
    };
    let cache_path = dir.join(DIGEST_CACHE_FILE);
    if let Some(digest) = read_cache(&cache_path, &stamps) {
        tracing::debug!(dir = %dir.display(), %digest, "model digest cache hit");
        return Ok(digest);
    }
    tracing::info!(dir = %dir.display(), files = files.len(), "hashing model directory");
    let digest = hash_files(&files)?;
    let cache = DigestCache {
        version: CACHE_VERSION,
        digest,
        files: stamps,
    };
    if let Err(error) = write_cache(&cache_path, &cache) {
        tracing::warn!(path = %cache_path.display(), %error, "could not write the model digest cache");
    }
    Ok(digest)
}

/// Cache file contents.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DigestCache {
    version: u32,
    digest: ModelDigest,
    files: Vec<FileStamp>,
}

#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileStamp {
    path: String,
    size: u64,
    /// Nanoseconds since the Unix epoch, negative before it.
    mtime_nanos: i128,
}

fn stamps(files: &[ModelFile]) -> Option<Vec<FileStamp>> {
    files
        .iter()
        .map(|file| {
            let mtime_nanos = match file.modified?.duration_since(SystemTime::UNIX_EPOCH) {
                Ok(after) => i128::try_from(after.as_nanos()).ok()?,
                Err(before) => -i128::try_from(before.duration().as_nanos()).ok()?,
            };
            Some(FileStamp {
                path: file.relative.clone(),
                size: file.len,
                mtime_nanos,
            })
        })
        .collect()
}

fn read_cache(path: &Path, stamps: &[FileStamp]) -> Option<ModelDigest> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return None,
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "could not read the model digest cache; rehashing");
            return None;
        }
    };
    match serde_json::from_slice::<DigestCache>(&bytes) {
        Ok(cache) if cache.version == CACHE_VERSION && cache.files == stamps => Some(cache.digest),
        Ok(_) => {
            tracing::debug!(path = %path.display(), "model files changed since the digest was cached");
            None
        }
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "ignoring a corrupt model digest cache");
            None
        }
    }
}

fn write_cache(path: &Path, cache: &DigestCache) -> io::Result<()> {
    let bytes = serde_json::to_vec_pretty(cache).map_err(io::Error::other)?;
    // Write then rename, so a crash never leaves a half-written cache behind. The temporary
    // name is hidden, so a concurrent digest never lists it.
    let tmp = path.with_file_name(format!("{DIGEST_CACHE_FILE}.{}.tmp", std::process::id()));
    let result = File::create(&tmp)
        .and_then(|mut file| file.write_all(&bytes))
        .and_then(|()| fs::rename(&tmp, path));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn list_model_files(dir: &Path) -> Result<Vec<ModelFile>, ModelError> {
    let mut files = Vec::new();
    let mut ancestors = Vec::new();
    walk(dir, "", &mut ancestors, &mut files)?;
    if files.is_empty() {
        return Err(ModelError::NoModelFiles {
            dir: dir.to_owned(),
        });
    }
    files.sort_unstable_by(|a, b| a.relative.as_bytes().cmp(b.relative.as_bytes()));
    Ok(files)
}

fn walk(
    dir: &Path,
    prefix: &str,
    ancestors: &mut Vec<PathBuf>,
    files: &mut Vec<ModelFile>,
) -> Result<(), ModelError> {
    let canonical = fs::canonicalize(dir).map_err(io_error(dir))?;
    if ancestors.contains(&canonical) {
        return Err(ModelError::SymlinkCycle {
            path: dir.to_owned(),
        });
    }
    ancestors.push(canonical);
    for entry in fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        let path = entry.path();
        let name = entry.file_name();
        let name_bytes = name.as_encoded_bytes();
        if name_bytes.starts_with(b".") {
            continue;
        }
        let is_model_file = MODEL_FILE_EXTENSIONS
            .iter()
            .any(|ext| name_bytes.ends_with(ext.as_bytes()));
        // Follows symlinks; a dangling link only matters if it claims to be a model file.
        let metadata = match fs::metadata(&path) {
            Ok(metadata) => metadata,
            Err(_) if !is_model_file && entry.file_type().is_ok_and(|t| t.is_symlink()) => continue,
            Err(source) => return Err(ModelError::Io { path, source }),
        };
        let wanted = metadata.is_dir() || (metadata.is_file() && is_model_file);
        if !wanted {
            continue;
        }
        let Some(name) = name.to_str() else {
            return Err(ModelError::NonUtf8Path { path });
        };
        let relative = if prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{prefix}/{name}")
        };
        if metadata.is_dir() {
            walk(&path, &relative, ancestors, files)?;
        } else {
            files.push(ModelFile {
                relative,
                absolute: path,
                len: metadata.len(),
                modified: metadata.modified().ok(),
            });
        }
    }
    ancestors.pop();
    Ok(())
}

fn hash_files(files: &[ModelFile]) -> Result<ModelDigest, ModelError> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; READ_BUFFER_BYTES];
    for file in files {
        hasher.update(file.relative.as_bytes());
        hasher.update([0u8]);
        hasher.update(file.len.to_be_bytes());
        let mut reader = File::open(&file.absolute).map_err(io_error(&file.absolute))?;
        let mut remaining = file.len;
        loop {
            let read = match reader.read(&mut buffer) {
                Ok(0) => break,
                Ok(read) => read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(ModelError::Io {
                        path: file.absolute.clone(),
                        source,
                    });
                }
            };
            // The length was already hashed: content of any other length would make the
            // digest describe no actual state of the file.
            remaining =
                remaining
                    .checked_sub(read as u64)
                    .ok_or_else(|| ModelError::FileChanged {
                        path: file.absolute.clone(),
                        expected: file.len,
                    })?;
            hasher.update(&buffer[..read]);
        }
        if remaining != 0 {
            return Err(ModelError::FileChanged {
                path: file.absolute.clone(),
                expected: file.len,
            });
        }
    }
    Ok(ModelDigest(hasher.finalize().into()))
}

/// A model this node holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldModel {
    /// Its digest.
    pub digest: ModelDigest,
    /// Its directory.
    pub path: PathBuf,
}

/// The models a node holds: every non-hidden subdirectory of each model root that contains
/// model files, indexed by digest.
#[derive(Debug, Clone, Default)]
pub struct ModelStore {
    by_digest: BTreeMap<ModelDigest, PathBuf>,
}

impl ModelStore {
    /// Digests (with the cache) every model directory under `roots`. A root that cannot be
    /// read is an error; a subdirectory without model files is skipped with a warning. When
    /// two directories hold the same model, the first one found is used.
    pub fn open<P: AsRef<Path>>(roots: impl IntoIterator<Item = P>) -> Result<Self, ModelError> {
        let mut by_digest: BTreeMap<ModelDigest, PathBuf> = BTreeMap::new();
        for root in roots {
            let root = root.as_ref();
            let mut dirs = Vec::new();
            for entry in fs::read_dir(root).map_err(io_error(root))? {
                let entry = entry.map_err(io_error(root))?;
                let path = entry.path();
                if entry.file_name().as_encoded_bytes().starts_with(b".") {
                    continue;
                }
                // `Path::is_dir` follows symlinks, so linked model directories count.
                if path.is_dir() {
                    dirs.push(path);
                }
            }
            dirs.sort();
            for dir in dirs {
                let digest = match model_digest_cached(&dir) {
                    Ok(digest) => digest,
                    Err(ModelError::NoModelFiles { dir }) => {
                        tracing::warn!(dir = %dir.display(), "skipping a directory without model files");
                        continue;
                    }
                    Err(error) => return Err(error),
                };
                tracing::debug!(dir = %dir.display(), %digest, "holding model");
                if let Some(first) = by_digest.get(&digest) {
                    tracing::warn!(dir = %dir.display(), first = %first.display(), %digest, "duplicate model; using the first copy");
                    continue;
                }
                by_digest.insert(digest, dir);
            }
        }
        Ok(Self { by_digest })
    }

    /// The directory of the model `model` refers to, or [`ModelError::ModelNotHeld`].
    pub fn resolve(&self, model: &ModelRef) -> Result<&Path, ModelError> {
        let digest = model
            .parsed_digest()
            .map_err(|source| ModelError::BadDigest {
                name: model.name.clone(),
                source,
            })?;
        self.get(&digest).ok_or_else(|| ModelError::ModelNotHeld {
            name: model.name.clone(),
            digest: model.digest.clone(),
        })
    }

    /// The directory of the model with this digest, if held.
    pub fn get(&self, digest: &ModelDigest) -> Option<&Path> {
        self.by_digest.get(digest).map(PathBuf::as_path)
    }

    /// Every held model, ordered by digest.
    pub fn models(&self) -> impl Iterator<Item = HeldModel> + '_ {
        self.by_digest.iter().map(|(digest, path)| HeldModel {
            digest: *digest,
            path: path.clone(),
        })
    }

    /// Number of models held.
    pub fn len(&self) -> usize {
        self.by_digest.len()
    }

    /// Whether no model is held.
    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }
}
