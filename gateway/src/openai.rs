//! The OpenAI request shapes the gateway accepts and how they become verinfer task args.
//!
//! Everything here runs before any transaction: a request that cannot become a valid task is a
//! 400 naming the field. Parameters verinfer cannot honour (tools, logprobs, `n > 1` for chat,
//! penalties) are refused rather than silently ignored; a few that change nothing (`user`,
//! `metadata`, `store`, `service_tier`) are accepted.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;
use verinfer_task::{
    ARGS_VERSION, ArgsError, ChatMessage, ImageArgs, MAX_SEED, ModelRef, Role, Sampling, TaskArgs,
    TextArgs, TextInput,
};

use crate::{config::ModelConfig, error::ApiError};

/// Fields that are accepted and change nothing.
const IGNORED: &[&str] = &["user", "metadata", "store", "service_tier"];

/// `POST /v1/chat/completions`.
#[derive(Debug, Deserialize)]
pub struct ChatRequest {
    /// The model id.
    pub model: String,
    /// The conversation.
    pub messages: Vec<ChatMessageIn>,
    /// Most tokens to generate (legacy name).
    pub max_tokens: Option<u32>,
    /// Most tokens to generate.
    pub max_completion_tokens: Option<u32>,
    /// 0: greedy; otherwise sampled at this temperature (`0 < t <= 2`).
    pub temperature: Option<f64>,
    /// Nucleus sampling mass.
    pub top_p: Option<f64>,
    /// The task seed (random when absent).
    pub seed: Option<i64>,
    /// Stop sequences.
    pub stop: Option<Stop>,
    /// Answer server-sent events.
    #[serde(default)]
    pub stream: bool,
    /// `{"include_usage": true}` adds a usage chunk to a stream.
    pub stream_options: Option<StreamOptions>,
    /// Only 1 is supported.
    pub n: Option<u32>,
    /// Anything else (refused unless in [`IGNORED`] or null).
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// `stream_options`.
#[derive(Debug, Deserialize)]
pub struct StreamOptions {
    /// Send a last chunk with `usage`.
    #[serde(default)]
    pub include_usage: bool,
}

/// `stop`: one string or several.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    /// One sequence.
    One(String),
    /// Several.
    Many(Vec<String>),
}

/// One message as the SDKs send it.
#[derive(Debug, Deserialize)]
pub struct ChatMessageIn {
    /// `system`, `developer`, `user` or `assistant`.
    pub role: String,
    /// A string, or an array of content parts (`{"type": "text", "text": …}` only).
    pub content: Option<Value>,
    /// Anything else (`name` is accepted; tool calls are refused).
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// `POST /v1/images/generations`.
#[derive(Debug, Deserialize)]
pub struct ImageRequest {
    /// The model id (default: the only image model, when there is one).
    pub model: Option<String>,
    /// What to draw.
    pub prompt: String,
    /// Images, 1..=16.
    pub n: Option<u32>,
    /// `"WIDTHxHEIGHT"` (or `"auto"`: the model's default).
    pub size: Option<String>,
    /// `"url"` (default) or `"b64_json"`.
    pub response_format: Option<String>,
    /// verinfer: the task seed (random when absent).
    pub seed: Option<i64>,
    /// verinfer: denoising steps.
    pub steps: Option<u32>,
    /// verinfer: classifier-free guidance scale.
    pub guidance_scale: Option<f64>,
    /// verinfer: what not to draw.
    pub negative_prompt: Option<String>,
    /// Anything else (refused unless in [`IGNORED`] or null; `quality` and `style` only as
    /// `"standard"`/`"auto"`).
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// How images are answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    /// A URL of the relayer's verified blob.
    Url,
    /// The PNG in base64.
    B64Json,
}

/// Refuses unknown parameters that carry a value.
fn refuse_unknown(
    other: &BTreeMap<String, Value>,
    also_ok: &[(&str, &[&str])],
) -> Result<(), ApiError> {
    for (name, value) in other {
        if value.is_null() || IGNORED.contains(&name.as_str()) {
            continue;
        }
        if let Some((_, allowed)) = also_ok.iter().find(|(field, _)| *field == name.as_str())
            && value.as_str().is_some_and(|v| allowed.contains(&v))
        {
            continue;
        }
        return Err(ApiError::invalid(
            Some(name),
            format!(
                "`{name}` is not supported by verinfer's gateway (its results are validated by recomputation; see /v1/models)"
            ),
        ));
    }
    Ok(())
}

/// A seed in `0..=MAX_SEED`, or a fresh random one.
fn seed(seed: Option<i64>) -> Result<u64, ApiError> {
    match seed {
        Some(seed) => u64::try_from(seed)
            .ok()
            .filter(|&s| s <= MAX_SEED)
            .ok_or_else(|| {
                ApiError::invalid(
                    Some("seed"),
                    format!("seed {seed} is outside 0..={MAX_SEED} (2^53 - 1)"),
                )
            }),
        None => Ok(rand::random::<u64>() & MAX_SEED),
    }
}

/// An [`ArgsError`] as a 400 naming the request field it came from.
pub fn args_error(error: &ArgsError) -> ApiError {
    let param = error.field().map(|field| {
        let field = field.strip_prefix("input.").unwrap_or(field);
        match field {
            "input" => "messages".to_owned(),
            "sampling.temperature" => "temperature".to_owned(),
            "sampling.top_p" => "top_p".to_owned(),
            "width" | "height" => "size".to_owned(),
            "num_images" => "n".to_owned(),
            other => other.to_owned(),
        }
    });
    ApiError::invalid(param.as_deref(), error.to_string())
}

impl ChatRequest {
    /// The task args this request asks for, validated.
    pub fn to_args(&self, model: &ModelConfig, model_ref: &ModelRef) -> Result<TextArgs, ApiError> {
        refuse_unknown(&self.other, &[])?;
        if self.n.is_some_and(|n| n != 1) {
            return Err(ApiError::invalid(
                Some("n"),
                "only n = 1 is supported: one task computes one completion",
            ));
        }
        if self.messages.is_empty() {
            return Err(ApiError::invalid(Some("messages"), "`messages` is empty"));
        }
        let messages = self
            .messages
            .iter()
            .enumerate()
            .map(|(index, message)| message.to_task(index))
            .collect::<Result<Vec<_>, _>>()?;
        let max_tokens = match (self.max_completion_tokens, self.max_tokens) {
            (Some(a), Some(b)) if a != b => {
                return Err(ApiError::invalid(
                    Some("max_completion_tokens"),
                    format!("max_completion_tokens {a} and max_tokens {b} disagree; give one"),
                ));
            }
            (Some(n), _) | (None, Some(n)) => n,
            (None, None) => model.max_tokens,
        };
        let temperature = self.temperature.unwrap_or(model.temperature);
        let sampling = if temperature == 0.0 {
            Sampling::Greedy {}
        } else {
            Sampling::Sample {
                temperature,
                top_p: self.top_p,
                top_k: None,
            }
        };
        let stop = match &self.stop {
            None => Vec::new(),
            Some(Stop::One(one)) => vec![one.clone()],
            Some(Stop::Many(many)) => many.clone(),
        };
        let args = TextArgs {
            version: ARGS_VERSION,
            model: model_ref.clone(),
            input: TextInput::Messages(messages),
            max_tokens,
            sampling,
            seed: seed(self.seed)?,
            stop,
        };
        TaskArgs::Text(args.clone())
            .validate()
            .map_err(|error| args_error(&error))?;
        Ok(args)
    }
}

impl ChatMessageIn {
    fn to_task(&self, index: usize) -> Result<ChatMessage, ApiError> {
        let param = format!("messages[{index}]");
        let role = match self.role.as_str() {
            "system" | "developer" => Role::System,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            other => {
                return Err(ApiError::invalid(
                    Some(&format!("{param}.role")),
                    format!("role {other:?} is not supported (system, developer, user, assistant)"),
                ));
            }
        };
        for (name, value) in &self.other {
            if name != "name" && !value.is_null() {
                return Err(ApiError::invalid(
                    Some(&format!("{param}.{name}")),
                    format!("`{name}` in a message is not supported (no tool calls)"),
                ));
            }
        }
        let content = match &self.content {
            Some(Value::String(text)) => text.clone(),
            Some(Value::Array(parts)) => {
                let mut text = String::new();
                for part in parts {
                    match (part.get("type").and_then(Value::as_str), part.get("text")) {
                        (Some("text"), Some(Value::String(piece))) => text.push_str(piece),
                        (kind, _) => {
                            return Err(ApiError::invalid(
                                Some(&format!("{param}.content")),
                                format!(
                                    "content part of type {} is not supported (text only)",
                                    kind.unwrap_or("?")
                                ),
                            ));
                        }
                    }
                }
                text
            }
            _ => {
                return Err(ApiError::invalid(
                    Some(&format!("{param}.content")),
                    "a message needs text `content`",
                ));
            }
        };
        Ok(ChatMessage { role, content })
    }
}

impl ImageRequest {
    /// The task args this request asks for, validated, and how to answer.
    pub fn to_args(
        &self,
        model: &ModelConfig,
        model_ref: &ModelRef,
    ) -> Result<(ImageArgs, ImageFormat), ApiError> {
        refuse_unknown(
            &self.other,
            &[
                ("quality", &["standard", "auto"]),
                ("style", &["natural", "vivid"]),
            ],
        )?;
        let format = match self.response_format.as_deref() {
            None | Some("url") => ImageFormat::Url,
            Some("b64_json") => ImageFormat::B64Json,
            Some(other) => {
                return Err(ApiError::invalid(
                    Some("response_format"),
                    format!("response_format {other:?} is neither \"url\" nor \"b64_json\""),
                ));
            }
        };
        let (width, height) = match self.size.as_deref() {
            None | Some("auto") => (model.width, model.height),
            Some(size) => parse_size(size).ok_or_else(|| {
                ApiError::invalid(
                    Some("size"),
                    format!("size {size:?} is not WIDTHxHEIGHT (e.g. \"512x512\")"),
                )
            })?,
        };
        let args = ImageArgs {
            version: verinfer_task::ARGS_VERSION,
            model: model_ref.clone(),
            prompt: self.prompt.clone(),
            negative_prompt: self.negative_prompt.clone(),
            width,
            height,
            steps: self.steps.unwrap_or(model.steps),
            guidance_scale: self.guidance_scale.unwrap_or(model.guidance_scale),
            scheduler: model.scheduler,
            num_images: self.n.unwrap_or(1),
            seed: seed(self.seed)?,
            precision: model.precision,
        };
        TaskArgs::Image(args.clone())
            .validate()
            .map_err(|error| args_error(&error))?;
        Ok((args, format))
    }
}

/// `"512x768"` → (512, 768).
fn parse_size(size: &str) -> Option<(u32, u32)> {
    let (width, height) = size.split_once(['x', 'X'])?;
    Some((width.trim().parse().ok()?, height.trim().parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("512x768"), Some((512, 768)));
        assert_eq!(parse_size("64X64"), Some((64, 64)));
        assert_eq!(parse_size("512"), None);
        assert_eq!(parse_size("ax1"), None);
    }

    #[test]
    fn seeds_are_checked_or_drawn() {
        assert_eq!(seed(Some(7)).unwrap(), 7);
        assert!(seed(Some(-1)).is_err());
        assert!(seed(Some(1 << 53)).is_err());
        assert!(seed(None).unwrap() <= MAX_SEED);
    }
}
