//! Task argument schemas (version 2), their validation rules and canonical bytes.
//!
//! The chain stores only `keccak256(args_bytes)` of the **exact bytes the dApp uploaded** to the
//! relayer; nodes hash the bytes they fetch, never a re-serialisation. [`TaskArgs::to_canonical_bytes`]
//! is the form the CLI produces (compact JSON, fields in declaration order, absent optional fields
//! omitted), so two clients that build the same args through this crate upload the same bytes.
//!
//! Validation is consensus-relevant: every node must reach the same verdict on the same bytes
//! (a node that rejects args commits [`INVALID_ARGS`](crate::INVALID_ARGS)). Changing any rule
//! therefore needs a new `version`.

use alloy_primitives::{B256, keccak256};
use serde::{Deserialize, Serialize};

use crate::{kind::TaskKind, model::ModelDigest};

/// The only args version this crate accepts. The version names the computation as well as the
/// schema: 2 has version 1's fields and rules, but nodes compute with the exact-GELU UNet
/// feed-forward and the project's own ChaCha20 token sampler (`docs/task-format.md`), whose
/// bytes differ from version 1's, so version 1 args are refused rather than run differently.
pub const ARGS_VERSION: u32 = 2;
/// Largest accepted args document, in bytes.
pub const MAX_ARGS_BYTES: usize = 64 * 1024;
/// Largest `model.name`, in bytes (UTF-8).
pub const MAX_MODEL_NAME_BYTES: usize = 128;
/// Largest image `prompt` / `negative_prompt`, in Unicode scalar values.
pub const MAX_PROMPT_CHARS: usize = 2000;
/// Largest image `prompt` / `negative_prompt`, in bytes (UTF-8): 2000 characters of any script
/// in Unicode's basic plane (at most 3 bytes each) fit; 2000 emoji (4 bytes each) do not.
pub const MAX_PROMPT_BYTES: usize = 6000;
/// Smallest image side, in pixels.
pub const MIN_IMAGE_SIDE: u32 = 64;
/// Largest image side, in pixels.
pub const MAX_IMAGE_SIDE: u32 = 2048;
/// Image sides must be multiples of this (the latent space is 8× smaller).
pub const IMAGE_SIDE_MULTIPLE: u32 = 8;
/// Pixel budget of a whole image task: `width * height * num_images` (16 images of 1024×1024).
pub const MAX_TOTAL_PIXELS: u64 = 16 * 1024 * 1024;
/// Largest number of denoising steps.
pub const MAX_STEPS: u32 = 150;
/// Largest number of images per task (the contract's `MAX_IMAGES`).
pub const MAX_IMAGES: u32 = 16;
/// Largest classifier-free guidance scale.
pub const MAX_GUIDANCE_SCALE: f64 = 30.0;
/// Largest seed: `2^53 - 1`, the largest integer a JavaScript JSON consumer reads exactly.
pub const MAX_SEED: u64 = (1 << 53) - 1;
/// Largest number of tokens a text task may generate.
pub const MAX_TOKENS: u32 = 4096;
/// Largest sampling temperature.
pub const MAX_TEMPERATURE: f64 = 2.0;
/// Largest number of stop sequences.
pub const MAX_STOP_SEQUENCES: usize = 4;
/// Largest stop sequence, in bytes (UTF-8).
pub const MAX_STOP_SEQUENCE_BYTES: usize = 64;
/// Largest number of chat messages.
pub const MAX_MESSAGES: usize = 64;
/// Largest text input (the prompt, or the sum of all message contents), in bytes (UTF-8).
pub const MAX_TEXT_INPUT_BYTES: usize = 32 * 1024;

/// Why task args were rejected. Every variant means "invalid args": a node that gets one for
/// bytes whose keccak matches the chain should report [`INVALID_ARGS`](crate::INVALID_ARGS).
#[derive(Debug, thiserror::Error)]
pub enum ArgsError {
    /// The document is larger than [`MAX_ARGS_BYTES`].
    #[error("task args are {len} bytes, more than the {max}-byte limit")]
    TooLarge {
        /// Size of the document.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not JSON, or JSON that does not fit the schema (unknown or duplicate field, wrong type,
    /// unknown `kind` / `scheduler` / ...). serde's message names the field or value.
    #[error("task args do not match the schema: {0}")]
    Schema(#[from] serde_json::Error),
    /// Well-formed args that break a validation rule.
    #[error("invalid task args: {message}")]
    Invalid {
        /// Path of the offending field, e.g. `width`, `model.digest`, `input.messages[2].content`.
        field: String,
        /// What is wrong, naming the field and the rule.
        message: String,
    },
}

impl ArgsError {
    /// Path of the field that broke a validation rule (`None` for size and schema errors).
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Invalid { field, .. } => Some(field),
            Self::TooLarge { .. } | Self::Schema(_) => None,
        }
    }

    fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// keccak256 of the exact args bytes: the `argsHash` the chain stores.
pub fn args_hash(bytes: &[u8]) -> B256 {
    keccak256(bytes)
}

/// Arguments of one task, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TaskArgs {
    /// `"kind": "image"`.
    Image(ImageArgs),
    /// `"kind": "text"`.
    Text(TextArgs),
}

/// A model, identified by its [`ModelDigest`]; the name is informational only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelRef {
    /// Human-readable name (not checked against anything), at most [`MAX_MODEL_NAME_BYTES`].
    pub name: String,
    /// `sha256:` + 64 lowercase hex digits, see [`crate::model_digest`].
    pub digest: String,
}

/// Stable Diffusion image generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageArgs {
    /// Schema version, must be [`ARGS_VERSION`].
    pub version: u32,
    /// The model to run.
    pub model: ModelRef,
    /// Non-empty after trimming; at most [`MAX_PROMPT_CHARS`] characters and [`MAX_PROMPT_BYTES`] bytes.
    pub prompt: String,
    /// Same length limits as `prompt`; may be empty. Omitted from canonical bytes when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative_prompt: Option<String>,
    /// Multiple of 8 in `64..=2048`.
    pub width: u32,
    /// Multiple of 8 in `64..=2048`.
    pub height: u32,
    /// Denoising steps, `1..=150`.
    pub steps: u32,
    /// Classifier-free guidance scale, finite and in `0..=30`.
    pub guidance_scale: f64,
    /// Noise scheduler.
    pub scheduler: Scheduler,
    /// Images to generate, `1..=16`; `width * height * num_images <= MAX_TOTAL_PIXELS`.
    pub num_images: u32,
    /// RNG seed, at most [`MAX_SEED`] (`2^53 - 1`) so JavaScript reads it exactly.
    pub seed: u64,
    /// Numeric precision of the run; defaults to `f32` when absent.
    #[serde(default)]
    pub precision: Precision,
}

/// Diffusion noise scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scheduler {
    /// `"ddim"`.
    Ddim,
    /// `"euler_ancestral"`.
    EulerAncestral,
    /// `"ddpm"`.
    Ddpm,
}

/// Floating-point precision the model runs in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// `"f32"` (the default).
    #[default]
    F32,
    /// `"f16"`.
    F16,
    /// `"bf16"`.
    Bf16,
}

/// LLM text generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextArgs {
    /// Schema version, must be [`ARGS_VERSION`].
    pub version: u32,
    /// The model to run.
    pub model: ModelRef,
    /// A raw prompt or a chat.
    pub input: TextInput,
    /// Most tokens to generate, `1..=4096`.
    pub max_tokens: u32,
    /// Greedy or sampled decoding.
    pub sampling: Sampling,
    /// RNG seed, at most [`MAX_SEED`] (`2^53 - 1`) so JavaScript reads it exactly.
    pub seed: u64,
    /// Stop sequences: at most 4, each non-empty and at most 64 bytes. `[]` when absent.
    #[serde(default)]
    pub stop: Vec<String>,
}

/// Text task input: `{"prompt": "..."}` or `{"messages": [...]}` (exactly one of the two keys).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", try_from = "RawTextInput")]
pub enum TextInput {
    /// A raw prompt, non-empty after trimming.
    Prompt(String),
    /// A chat, rendered with the model's chat template.
    Messages(Vec<ChatMessage>),
}

/// Wire shape of [`TextInput`]: lets serde name unknown keys, then we demand exactly one key.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTextInput {
    prompt: Option<String>,
    messages: Option<Vec<ChatMessage>>,
}

impl TryFrom<RawTextInput> for TextInput {
    type Error = String;

    fn try_from(raw: RawTextInput) -> Result<Self, Self::Error> {
        match (raw.prompt, raw.messages) {
            (Some(prompt), None) => Ok(Self::Prompt(prompt)),
            (None, Some(messages)) => Ok(Self::Messages(messages)),
            (Some(_), Some(_)) => {
                Err("input has both `prompt` and `messages`; give exactly one".to_owned())
            }
            (None, None) => Err("input needs `prompt` or `messages`".to_owned()),
        }
    }
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatMessage {
    /// Who said it.
    pub role: Role,
    /// What was said; non-empty after trimming.
    pub content: String,
}

/// Chat message author.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// `"system"`.
    System,
    /// `"user"`.
    User,
    /// `"assistant"`.
    Assistant,
}

/// Token selection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum Sampling {
    /// `{"mode":"greedy"}`: always the most likely token. A struct variant (not a unit variant)
    /// so that serde rejects stray fields such as `temperature`.
    Greedy {},
    /// `{"mode":"sample", "temperature": t, "top_p"?: p, "top_k"?: k}`.
    Sample {
        /// `0 < temperature <= 2`.
        temperature: f64,
        /// Nucleus sampling mass, `0 < top_p <= 1`; omitted when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        top_p: Option<f64>,
        /// Keep the `top_k >= 1` most likely tokens; omitted when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        top_k: Option<u32>,
    },
}

impl TaskArgs {
    /// Parses and validates an args document (the exact bytes the chain hashed).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, ArgsError> {
        if bytes.len() > MAX_ARGS_BYTES {
            return Err(ArgsError::TooLarge {
                len: bytes.len(),
                max: MAX_ARGS_BYTES,
            });
        }
        let args: Self = serde_json::from_slice(bytes)?;
        args.validate()?;
        Ok(args)
    }

    /// Checks every validation rule; the error names the field and the rule broken.
    pub fn validate(&self) -> Result<(), ArgsError> {
        match self {
            Self::Image(image) => image.validate(),
            Self::Text(text) => text.validate(),
        }
    }

    /// Canonical bytes: compact JSON, `kind` first, then fields in declaration order, absent
    /// optional fields omitted, no trailing newline. This is what the CLI uploads; the chain
    /// hashes whatever bytes were uploaded, so re-serialising fetched args is never needed.
    ///
    /// Does not validate: call [`validate`](Self::validate) first (a NaN float, which JSON
    /// cannot hold, would be written as `null`).
    pub fn to_canonical_bytes(&self) -> Vec<u8> {
        // Serialising these plain structs (string keys, no maps, no fallible Serialize impls)
        // cannot fail; serde_json only errors on non-string map keys or failing impls.
        serde_json::to_vec(self).expect("task args serialise infallibly")
    }

    /// The task kind.
    pub const fn kind(&self) -> TaskKind {
        match self {
            Self::Image(_) => TaskKind::Image,
            Self::Text(_) => TaskKind::Text,
        }
    }

    /// Images the task produces: `num_images` for image tasks, 0 for text tasks (the chain's
    /// `imageCount`).
    pub const fn image_count(&self) -> u32 {
        match self {
            Self::Image(image) => image.num_images,
            Self::Text(_) => 0,
        }
    }

    /// The model the task runs.
    pub const fn model(&self) -> &ModelRef {
        match self {
            Self::Image(image) => &image.model,
            Self::Text(text) => &text.model,
        }
    }

    /// The task's RNG seed.
    pub const fn seed(&self) -> u64 {
        match self {
            Self::Image(image) => image.seed,
            Self::Text(text) => text.seed,
        }
    }

    /// Checks the args agree with what the task was created with on-chain (its kind and
    /// `imageCount`); a mismatch means the args are invalid for that task.
    pub fn check_matches_task(&self, kind: TaskKind, image_count: u32) -> Result<(), ArgsError> {
        if self.kind() != kind {
            return Err(ArgsError::invalid(
                "kind",
                format!(
                    "kind `{}` does not match the on-chain task kind `{kind}`",
                    self.kind()
                ),
            ));
        }
        if self.image_count() != image_count {
            return Err(ArgsError::invalid(
                "num_images",
                format!(
                    "num_images {} does not match the on-chain imageCount {image_count}",
                    self.image_count()
                ),
            ));
        }
        Ok(())
    }
}

impl ModelRef {
    /// The model in directory `dir`: named after the directory, with its (cached) digest.
    pub fn from_dir(dir: &std::path::Path) -> Result<Self, crate::model::ModelError> {
        let digest = crate::model::model_digest_cached(dir)?;
        let name = dir
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| dir.display().to_string());
        Ok(Self {
            name,
            digest: digest.to_string(),
        })
    }

    /// The parsed digest (fails only for refs that were not validated).
    pub fn parsed_digest(&self) -> Result<ModelDigest, crate::model::ModelDigestParseError> {
        self.digest.parse()
    }

    fn validate(&self) -> Result<(), ArgsError> {
        if self.name.trim().is_empty() {
            return Err(ArgsError::invalid("model.name", "model.name is empty"));
        }
        if self.name.len() > MAX_MODEL_NAME_BYTES {
            return Err(ArgsError::invalid(
                "model.name",
                format!(
                    "model.name is {} bytes, more than {MAX_MODEL_NAME_BYTES}",
                    self.name.len()
                ),
            ));
        }
        if self.parsed_digest().is_err() {
            return Err(ArgsError::invalid(
                "model.digest",
                format!(
                    "model.digest {:?} is not `sha256:` followed by 64 lowercase hex digits",
                    self.digest
                ),
            ));
        }
        Ok(())
    }
}

impl ImageArgs {
    fn validate(&self) -> Result<(), ArgsError> {
        check_version(self.version)?;
        self.model.validate()?;
        check_prompt("prompt", &self.prompt, false)?;
        if let Some(negative) = &self.negative_prompt {
            check_prompt("negative_prompt", negative, true)?;
        }
        check_side("width", self.width)?;
        check_side("height", self.height)?;
        check_range("steps", self.steps, 1, MAX_STEPS)?;
        if !self.guidance_scale.is_finite() {
            return Err(ArgsError::invalid(
                "guidance_scale",
                format!(
                    "guidance_scale {} is not a finite number",
                    self.guidance_scale
                ),
            ));
        }
        if !(0.0..=MAX_GUIDANCE_SCALE).contains(&self.guidance_scale) {
            return Err(ArgsError::invalid(
                "guidance_scale",
                format!(
                    "guidance_scale {} is outside 0..={MAX_GUIDANCE_SCALE}",
                    self.guidance_scale
                ),
            ));
        }
        check_range("num_images", self.num_images, 1, MAX_IMAGES)?;
        let pixels = u64::from(self.width) * u64::from(self.height) * u64::from(self.num_images);
        if pixels > MAX_TOTAL_PIXELS {
            return Err(ArgsError::invalid(
                "num_images",
                format!(
                    "num_images {} of {}x{} is {pixels} pixels, more than the {MAX_TOTAL_PIXELS}-pixel task budget",
                    self.num_images, self.width, self.height
                ),
            ));
        }
        check_seed(self.seed)
    }
}

impl TextArgs {
    fn validate(&self) -> Result<(), ArgsError> {
        check_version(self.version)?;
        self.model.validate()?;
        self.input.validate()?;
        check_range("max_tokens", self.max_tokens, 1, MAX_TOKENS)?;
        self.sampling.validate()?;
        check_seed(self.seed)?;
        if self.stop.len() > MAX_STOP_SEQUENCES {
            return Err(ArgsError::invalid(
                "stop",
                format!(
                    "stop has {} sequences, more than {MAX_STOP_SEQUENCES}",
                    self.stop.len()
                ),
            ));
        }
        for (i, stop) in self.stop.iter().enumerate() {
            let field = format!("stop[{i}]");
            if stop.is_empty() {
                return Err(ArgsError::invalid(&field, format!("{field} is empty")));
            }
            if stop.len() > MAX_STOP_SEQUENCE_BYTES {
                return Err(ArgsError::invalid(
                    &field,
                    format!(
                        "{field} is {} bytes, more than {MAX_STOP_SEQUENCE_BYTES}",
                        stop.len()
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl TextInput {
    fn validate(&self) -> Result<(), ArgsError> {
        match self {
            Self::Prompt(prompt) => {
                if prompt.trim().is_empty() {
                    return Err(ArgsError::invalid("input.prompt", "input.prompt is empty"));
                }
                if prompt.len() > MAX_TEXT_INPUT_BYTES {
                    return Err(ArgsError::invalid(
                        "input.prompt",
                        format!(
                            "input.prompt is {} bytes, more than {MAX_TEXT_INPUT_BYTES}",
                            prompt.len()
                        ),
                    ));
                }
            }
            Self::Messages(messages) => {
                if messages.is_empty() {
                    return Err(ArgsError::invalid(
                        "input.messages",
                        "input.messages is empty",
                    ));
                }
                if messages.len() > MAX_MESSAGES {
                    return Err(ArgsError::invalid(
                        "input.messages",
                        format!(
                            "input.messages has {} messages, more than {MAX_MESSAGES}",
                            messages.len()
                        ),
                    ));
                }
                for (i, message) in messages.iter().enumerate() {
                    if message.content.trim().is_empty() {
                        let field = format!("input.messages[{i}].content");
                        return Err(ArgsError::invalid(&field, format!("{field} is empty")));
                    }
                }
                let total: usize = messages.iter().map(|m| m.content.len()).sum();
                if total > MAX_TEXT_INPUT_BYTES {
                    return Err(ArgsError::invalid(
                        "input.messages",
                        format!(
                            "input.messages contents total {total} bytes, more than {MAX_TEXT_INPUT_BYTES}"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

impl Sampling {
    fn validate(&self) -> Result<(), ArgsError> {
        let Self::Sample {
            temperature,
            top_p,
            top_k,
        } = *self
        else {
            return Ok(());
        };
        // `!(x > 0.0)` also rejects NaN.
        if !(temperature > 0.0 && temperature <= MAX_TEMPERATURE) {
            return Err(ArgsError::invalid(
                "sampling.temperature",
                format!("sampling.temperature {temperature} is outside (0, {MAX_TEMPERATURE}]"),
            ));
        }
        if let Some(top_p) = top_p
            && !(top_p > 0.0 && top_p <= 1.0)
        {
            return Err(ArgsError::invalid(
                "sampling.top_p",
                format!("sampling.top_p {top_p} is outside (0, 1]"),
            ));
        }
        if top_k == Some(0) {
            return Err(ArgsError::invalid(
                "sampling.top_k",
                "sampling.top_k is 0; it must be at least 1",
            ));
        }
        Ok(())
    }
}

fn check_version(version: u32) -> Result<(), ArgsError> {
    if version != ARGS_VERSION {
        return Err(ArgsError::invalid(
            "version",
            format!("version {version} is not supported (expected {ARGS_VERSION})"),
        ));
    }
    Ok(())
}

fn check_prompt(field: &str, prompt: &str, may_be_empty: bool) -> Result<(), ArgsError> {
    if !may_be_empty && prompt.trim().is_empty() {
        return Err(ArgsError::invalid(field, format!("{field} is empty")));
    }
    let chars = prompt.chars().count();
    if chars > MAX_PROMPT_CHARS {
        return Err(ArgsError::invalid(
            field,
            format!("{field} is {chars} characters, more than {MAX_PROMPT_CHARS}"),
        ));
    }
    if prompt.len() > MAX_PROMPT_BYTES {
        return Err(ArgsError::invalid(
            field,
            format!(
                "{field} is {} bytes, more than {MAX_PROMPT_BYTES}",
                prompt.len()
            ),
        ));
    }
    Ok(())
}

fn check_side(field: &str, side: u32) -> Result<(), ArgsError> {
    if !side.is_multiple_of(IMAGE_SIDE_MULTIPLE) {
        return Err(ArgsError::invalid(
            field,
            format!("{field} {side} is not a multiple of {IMAGE_SIDE_MULTIPLE}"),
        ));
    }
    check_range(field, side, MIN_IMAGE_SIDE, MAX_IMAGE_SIDE)
}

fn check_range(field: &str, value: u32, min: u32, max: u32) -> Result<(), ArgsError> {
    if !(min..=max).contains(&value) {
        return Err(ArgsError::invalid(
            field,
            format!("{field} {value} is outside {min}..={max}"),
        ));
    }
    Ok(())
}

fn check_seed(seed: u64) -> Result<(), ArgsError> {
    if seed > MAX_SEED {
        return Err(ArgsError::invalid(
            "seed",
            format!(
                "seed {seed} is above 2^53-1 ({MAX_SEED}), the largest integer JavaScript JSON consumers read exactly"
            ),
        ));
    }
    Ok(())
}
