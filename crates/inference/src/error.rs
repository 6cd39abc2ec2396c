//! Errors of this crate: every variant names the file, parameter or device at fault.

use std::path::PathBuf;

/// Why a model could not be loaded or a generation could not run.
#[derive(Debug, thiserror::Error)]
pub enum InferenceError {
    /// A file or directory could not be read or written.
    #[error("cannot access {path}: {source}")]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file the model layout requires is not there.
    #[error("{path} is missing: {what}")]
    MissingFile {
        /// The expected path.
        path: PathBuf,
        /// What the file is for.
        what: String,
    },
    /// A JSON file does not parse or does not fit the expected schema.
    #[error("{path} is not valid: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// serde_json's message, which names the field.
        source: serde_json::Error,
    },
    /// A configuration value this crate does not support, or inconsistent values.
    #[error("{path}: {message}")]
    Config {
        /// The configuration file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Weights that are missing a tensor, have a wrong shape or dtype, or do not parse.
    #[error("cannot load weights from {path}: {message}")]
    Weights {
        /// The weights file (or the directory of sharded weights).
        path: PathBuf,
        /// candle's message, which names the tensor.
        message: String,
    },
    /// The tokenizer files could not be loaded or used.
    #[error("tokenizer {path}: {message}")]
    Tokenizer {
        /// The tokenizer file or directory.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// The model's chat template could not be rendered.
    #[error("chat template of {path}: {message}")]
    ChatTemplate {
        /// The file holding the template.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// Generation parameters this model cannot serve (too long a prompt, bad image size, ...).
    #[error("invalid generation parameters: {0}")]
    InvalidParams(String),
    /// A device that cannot be used.
    #[error("device {spec}: {message}")]
    Device {
        /// The device as requested, e.g. `cuda:0`.
        spec: String,
        /// Why it cannot be used.
        message: String,
    },
    /// A tensor operation failed while generating.
    #[error("inference failed: {0}")]
    Compute(#[from] candle_core::Error),
    /// A generated image could not be encoded.
    #[error("cannot encode image: {0}")]
    Image(#[from] image::ImageError),
}

impl InferenceError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }

    pub(crate) fn config(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Config {
            path: path.into(),
            message: message.into(),
        }
    }

    pub(crate) fn weights(path: impl Into<PathBuf>, error: impl std::fmt::Display) -> Self {
        Self::Weights {
            path: path.into(),
            message: error.to_string(),
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = InferenceError> = std::result::Result<T, E>;
