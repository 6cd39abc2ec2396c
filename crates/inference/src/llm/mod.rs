//! LLM text generation (llama and qwen2 families) from a Hugging Face directory:
//! `config.json`, `tokenizer.json`, `model.safetensors` (or an index with shards), optionally
//! `generation_config.json` (extra EOS ids) and `tokenizer_config.json` (chat template).
//!
//! Batch size is always 1 and the KV cache is rebuilt per generation, so a generation depends
//! only on its parameters. Tokens are picked by [`sampler::TokenSampler`] on the host from the
//! `f32` logits: greedy argmax, or sampling from a ChaCha20 stream keyed by the task seed, an
//! algorithm this crate pins (task format v2) rather than a dependency's RNG.

pub mod chat;
pub mod sampler;

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use candle_core::{DType, Device, Tensor};
use candle_transformers::models::{llama, qwen2};
use serde::Deserialize;
use tokenizers::Tokenizer;

use crate::{
    device::Precision,
    error::{InferenceError, Result},
    sd::Progress,
    weights::{WeightFiles, read_json, read_required},
};
use chat::{ChatMessage, ChatTemplate, TokenizerConfigJson};
use sampler::{SamplerError, TokenSampler};

/// What the model is asked.
#[derive(Debug, Clone, PartialEq)]
pub enum TextPrompt {
    /// Raw text, tokenized with the tokenizer's special tokens (e.g. BOS).
    Prompt(String),
    /// A chat, rendered with the model's chat template and tokenized as is.
    Chat(Vec<ChatMessage>),
}

/// How tokens are picked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TextSampling {
    /// Always the most likely token.
    Greedy,
    /// Sample from the distribution at `temperature`, optionally cut to the `top_k` most likely
    /// tokens and then to the `top_p` probability mass (see [`sampler`] for the exact algorithm).
    Sample {
        /// Softmax temperature, `> 0`.
        temperature: f64,
        /// Nucleus mass in `(0, 1]`.
        top_p: Option<f64>,
        /// Keep this many most likely tokens, `>= 1`.
        top_k: Option<u32>,
    },
}

/// Parameters of one text generation.
#[derive(Debug, Clone, PartialEq)]
pub struct TextGenParams {
    /// The input.
    pub input: TextPrompt,
    /// Most tokens to generate.
    pub max_tokens: u32,
    /// Token selection.
    pub sampling: TextSampling,
    /// Seed of the sampler (unused when greedy).
    pub seed: u64,
    /// Generation stops once the text contains one of these.
    pub stop: Vec<String>,
}

impl From<&verinfer_task::TextInput> for TextPrompt {
    fn from(input: &verinfer_task::TextInput) -> Self {
        match input {
            verinfer_task::TextInput::Prompt(prompt) => Self::Prompt(prompt.clone()),
            verinfer_task::TextInput::Messages(messages) => Self::Chat(
                messages
                    .iter()
                    .map(|m| ChatMessage {
                        role: m.role.into(),
                        content: m.content.clone(),
                    })
                    .collect(),
            ),
        }
    }
}

impl From<&verinfer_task::TextArgs> for TextGenParams {
    fn from(args: &verinfer_task::TextArgs) -> Self {
        let input = TextPrompt::from(&args.input);
        let sampling = match args.sampling {
            verinfer_task::Sampling::Greedy {} => TextSampling::Greedy,
            verinfer_task::Sampling::Sample {
                temperature,
                top_p,
                top_k,
            } => TextSampling::Sample {
                temperature,
                top_p,
                top_k,
            },
        };
        Self {
            input,
            max_tokens: args.max_tokens,
            sampling,
            seed: args.seed,
            stop: args.stop.clone(),
        }
    }
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FinishReason {
    /// The model emitted an end-of-sequence token.
    Stop,
    /// `max_tokens` tokens were generated.
    Length,
    /// The text reached a stop sequence.
    StopSequence,
}

impl From<FinishReason> for verinfer_task::FinishReason {
    fn from(reason: FinishReason) -> Self {
        match reason {
            FinishReason::Stop => Self::Stop,
            FinishReason::Length => Self::Length,
            FinishReason::StopSequence => Self::StopSequence,
        }
    }
}

/// The result of a generation, in the form `verinfer_task::TextOutput` digests:
/// `token_ids` exclude the prompt and the final EOS; with `StopSequence` they end with the
/// token that completed the stop sequence, and `text` is cut just before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextGeneration {
    /// Generated tokens decoded without special tokens (cut at a stop sequence).
    pub text: String,
    /// Generated token ids.
    pub token_ids: Vec<u32>,
    /// Why generation ended.
    pub finish_reason: FinishReason,
    /// Tokens in the prompt (informational).
    pub prompt_tokens: usize,
}

impl From<TextGeneration> for verinfer_task::TextOutput {
    fn from(generation: TextGeneration) -> Self {
        Self {
            text: generation.text,
            token_ids: generation.token_ids,
            finish_reason: generation.finish_reason.into(),
        }
    }
}

#[derive(Debug)]
enum CausalLm {
    Llama {
        model: llama::Llama,
        config: llama::Config,
    },
    Qwen2(qwen2::ModelForCausalLM),
}

/// A model directory's prompt tokenization without its weights: `tokenizer.json` and the chat
/// template of `tokenizer_config.json` (if any). [`TextPipeline`] tokenizes its prompts with one,
/// so a prompt's ids (and their count) are the same with or without the model loaded.
#[derive(Debug)]
pub struct PromptEncoder {
    dir: PathBuf,
    tokenizer: Tokenizer,
    chat_template: ChatTemplate,
}

impl PromptEncoder {
    /// Loads the tokenizer and chat template of the model directory `dir` (no weights, no
    /// `config.json`).
    pub fn load(dir: &Path) -> Result<Self> {
        let tokenizer_path = dir.join("tokenizer.json");
        if !tokenizer_path.is_file() {
            return Err(InferenceError::MissingFile {
                path: tokenizer_path,
                what: "tokenizer".to_owned(),
            });
        }
        let tokenizer =
            Tokenizer::from_file(&tokenizer_path).map_err(|e| InferenceError::Tokenizer {
                path: tokenizer_path.clone(),
                message: e.to_string(),
            })?;
        let tokenizer_config_path = dir.join("tokenizer_config.json");
        let tokenizer_config = if tokenizer_config_path.is_file() {
            read_json(&tokenizer_config_path, "tokenizer configuration")?
        } else {
            TokenizerConfigJson::default()
        };
        let chat_template = ChatTemplate::from_config(&tokenizer_config_path, &tokenizer_config)?;
        Ok(Self {
            dir: dir.to_owned(),
            tokenizer,
            chat_template,
        })
    }

    /// The model directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The prompt token ids for `input`: a raw prompt with the tokenizer's special tokens (e.g.
    /// BOS), a chat rendered with the chat template and tokenized as is.
    pub fn prompt_ids(&self, input: &TextPrompt) -> Result<Vec<u32>> {
        let (text, add_special) = match input {
            TextPrompt::Prompt(prompt) => (prompt.clone(), true),
            // The rendered template already holds BOS and role markers.
            TextPrompt::Chat(messages) => (self.chat_template.render(messages)?, false),
        };
        let encoding = self
            .tokenizer
            .encode(text, add_special)
            .map_err(|e| self.tokenizer_error(e))?;
        Ok(encoding.get_ids().to_vec())
    }

    fn tokenizer_error(&self, error: impl std::fmt::Display) -> InferenceError {
        InferenceError::Tokenizer {
            path: self.dir.join("tokenizer.json"),
            message: error.to_string(),
        }
    }

    fn decode(&self, ids: &[u32]) -> Result<String> {
        self.tokenizer
            .decode(ids, true)
            .map_err(|e| self.tokenizer_error(e))
    }
}

/// A loaded language model.
#[derive(Debug)]
pub struct TextPipeline {
    device: Device,
    dtype: DType,
    model: CausalLm,
    prompt: PromptEncoder,
    eos_ids: BTreeSet<u32>,
    max_positions: usize,
    /// Test stand-in for other hardware; 0 = off. See [`TextPipeline::with_logit_skew`].
    logit_skew: f32,
}

#[derive(Debug, Deserialize)]
struct ArchitectureJson {
    #[serde(default)]
    model_type: Option<String>,
    #[serde(default)]
    head_dim: Option<usize>,
}

/// `eos_token_id`: one id or several.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum EosIds {
    One(u32),
    Many(Vec<u32>),
}

impl EosIds {
    fn ids(&self) -> Vec<u32> {
        match self {
            Self::One(id) => vec![*id],
            Self::Many(ids) => ids.clone(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct EosJson {
    #[serde(default)]
    eos_token_id: Option<EosIds>,
}

impl TextPipeline {
    /// Loads the model directory `dir` onto `device` in `precision`.
    pub fn load(dir: &Path, device: &Device, precision: Precision) -> Result<Self> {
        crate::device::check_precision(device, precision)?;
        let dtype = precision.dtype();
        let config_path = dir.join("config.json");
        let config_bytes = read_required(&config_path, "model configuration")?;
        let parse_error = |source| InferenceError::Json {
            path: config_path.clone(),
            source,
        };
        let arch: ArchitectureJson = serde_json::from_slice(&config_bytes).map_err(parse_error)?;
        let weights = WeightFiles::find(dir, "model")?;
        let mut eos_ids: BTreeSet<u32> = serde_json::from_slice::<EosJson>(&config_bytes)
            .map_err(parse_error)?
            .eos_token_id
            .map(|e| e.ids())
            .unwrap_or_default()
            .into_iter()
            .collect();
        tracing::info!(dir = %dir.display(), model_type = ?arch.model_type, %precision, "loading language model");

        let (model, max_positions) = match arch.model_type.as_deref() {
            Some("llama") => {
                let json: llama::LlamaConfig =
                    serde_json::from_slice(&config_bytes).map_err(parse_error)?;
                let config = json.into_config(false);
                check_heads(
                    &config_path,
                    config.hidden_size,
                    config.num_attention_heads,
                    config.num_key_value_heads,
                    arch.head_dim,
                )?;
                weights.check_shapes(&decoder_tensors(&DecoderShape {
                    vocab: config.vocab_size,
                    hidden: config.hidden_size,
                    intermediate: config.intermediate_size,
                    layers: config.num_hidden_layers,
                    kv: config.num_key_value_heads
                        * (config.hidden_size / config.num_attention_heads),
                    qkv_bias: false,
                    lm_head: !config.tie_word_embeddings,
                }))?;
                let vb = weights.var_builder(dtype, device)?;
                let model = llama::Llama::load(vb, &config)
                    .map_err(|e| InferenceError::weights(&weights.origin, e))?;
                let max_positions = config.max_position_embeddings;
                (CausalLm::Llama { model, config }, max_positions)
            }
            Some("qwen2") => {
                let config: qwen2::Config =
                    serde_json::from_slice(&config_bytes).map_err(parse_error)?;
                check_heads(
                    &config_path,
                    config.hidden_size,
                    config.num_attention_heads,
                    config.num_key_value_heads,
                    arch.head_dim,
                )?;
                let shapes = weights.shapes()?;
                weights.check_shapes(&decoder_tensors(&DecoderShape {
                    vocab: config.vocab_size,
                    hidden: config.hidden_size,
                    intermediate: config.intermediate_size,
                    layers: config.num_hidden_layers,
                    kv: config.num_key_value_heads
                        * (config.hidden_size / config.num_attention_heads),
                    qkv_bias: true,
                    lm_head: shapes.contains_key("lm_head.weight"),
                }))?;
                let vb = weights.var_builder(dtype, device)?;
                let model = qwen2::ModelForCausalLM::new(&config, vb)
                    .map_err(|e| InferenceError::weights(&weights.origin, e))?;
                (CausalLm::Qwen2(model), config.max_position_embeddings)
            }
            other => {
                return Err(InferenceError::config(
                    &config_path,
                    format!(
                        "model_type {other:?} is not supported (supported: \"llama\", \"qwen2\")"
                    ),
                ));
            }
        };

        let generation_path = dir.join("generation_config.json");
        if generation_path.is_file() {
            let generation: EosJson = read_json(&generation_path, "generation configuration")?;
            eos_ids.extend(generation.eos_token_id.map(|e| e.ids()).unwrap_or_default());
        }
        let prompt = PromptEncoder::load(dir)?;
        if eos_ids.is_empty() {
            tracing::warn!(dir = %dir.display(), "model declares no eos_token_id; generation stops only at max_tokens or stop sequences");
        }
        Ok(Self {
            device: device.clone(),
            dtype,
            model,
            prompt,
            eos_ids,
            max_positions,
            logit_skew: 0.0,
        })
    }

    /// **Test only: stands for different hardware.** Scales every logit by `1 ± relative` (the
    /// sign a fixed pattern of token id and step) before sampling. Kernels of another GPU model
    /// drift the logits by far less, but over a real model's long generations such drift ends
    /// in a different token; on the tiny random test models a few rounding differences rarely
    /// flip a token within a short generation, so adversarial tests use this to get "the same
    /// program on other hardware" reliably. Never set it on a node of a real network.
    pub fn with_logit_skew(mut self, relative: f32) -> Self {
        self.logit_skew = relative;
        self
    }

    /// The model directory.
    pub fn dir(&self) -> &Path {
        self.prompt.dir()
    }

    /// Token ids that end generation.
    pub fn eos_ids(&self) -> &BTreeSet<u32> {
        &self.eos_ids
    }

    /// The prompt token ids for `input` (see [`PromptEncoder::prompt_ids`]).
    pub fn prompt_ids(&self, input: &TextPrompt) -> Result<Vec<u32>> {
        self.prompt.prompt_ids(input)
    }

    fn decode(&self, ids: &[u32]) -> Result<String> {
        self.prompt.decode(ids)
    }

    /// Generates text. `progress` is called after every token with `(generated, max_tokens)`.
    pub fn generate(
        &mut self,
        params: &TextGenParams,
        progress: Progress<'_>,
    ) -> Result<TextGeneration> {
        let max_tokens = params.max_tokens as usize;
        if max_tokens == 0 {
            return Err(InferenceError::InvalidParams("max_tokens is 0".to_owned()));
        }
        let mut sampler = TokenSampler::new(params.seed, params.sampling).map_err(sampler_error)?;
        let prompt = self.prompt_ids(&params.input)?;
        if prompt.is_empty() {
            return Err(InferenceError::InvalidParams(
                "the prompt tokenizes to nothing".to_owned(),
            ));
        }
        if prompt.len() + max_tokens > self.max_positions {
            return Err(InferenceError::InvalidParams(format!(
                "{} prompt tokens + max_tokens {max_tokens} exceed the model's {} positions",
                prompt.len(),
                self.max_positions
            )));
        }
        let mut llama_cache = match &self.model {
            CausalLm::Llama { config, .. } => {
                Some(llama::Cache::new(true, self.dtype, config, &self.device)?)
            }
            CausalLm::Qwen2(_) => None,
        };
        if let CausalLm::Qwen2(model) = &mut self.model {
            model.clear_kv_cache();
        }

        let mut generated: Vec<u32> = Vec::with_capacity(max_tokens);
        let mut input = prompt.clone();
        let mut position = 0;
        let finish = loop {
            let ids = Tensor::new(input.as_slice(), &self.device)?.unsqueeze(0)?;
            let logits = match (&mut self.model, llama_cache.as_mut()) {
                (CausalLm::Llama { model, .. }, Some(cache)) => {
                    model.forward(&ids, position, cache)?
                }
                (CausalLm::Qwen2(model), _) => model.forward(&ids, position)?,
                (CausalLm::Llama { .. }, None) => unreachable!("llama always has a cache"),
            };
            let mut logits = logits
                .flatten_all()?
                .to_dtype(DType::F32)?
                .to_vec1::<f32>()?;
            if self.logit_skew != 0.0 {
                skew_logits(&mut logits, self.logit_skew, generated.len());
            }
            position += input.len();
            let token = sampler.next_token(&logits).map_err(sampler_error)?;
            if self.eos_ids.contains(&token) {
                break FinishReason::Stop;
            }
            generated.push(token);
            progress(generated.len(), max_tokens);
            if !params.stop.is_empty() && self.stop_position(&generated, &params.stop)?.is_some() {
                break FinishReason::StopSequence;
            }
            if generated.len() == max_tokens {
                break FinishReason::Length;
            }
            input = vec![token];
        };
        let mut text = self.decode(&generated)?;
        if finish == FinishReason::StopSequence
            && let Some(cut) = earliest_stop(&text, &params.stop)
        {
            text.truncate(cut);
        }
        tracing::debug!(
            tokens = generated.len(),
            ?finish,
            "text generation finished"
        );
        Ok(TextGeneration {
            text,
            token_ids: generated,
            finish_reason: finish,
            prompt_tokens: prompt.len(),
        })
    }

    fn stop_position(&self, generated: &[u32], stop: &[String]) -> Result<Option<usize>> {
        Ok(earliest_stop(&self.decode(generated)?, stop))
    }
}

/// `logits[i] × (1 ± relative)`, the sign from a fixed hash of `(i, step)`.
fn skew_logits(logits: &mut [f32], relative: f32, step: usize) {
    for (i, value) in logits.iter_mut().enumerate() {
        let mix = (i as u64 ^ ((step as u64) << 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let sign = if mix >> 63 == 0 { 1.0 } else { -1.0 };
        *value *= 1.0 + sign * relative;
    }
}

/// Bad parameters are the caller's; bad logits are a failed computation.
fn sampler_error(error: SamplerError) -> InferenceError {
    if error.is_params() {
        InferenceError::InvalidParams(error.to_string())
    } else {
        InferenceError::Compute(candle_core::Error::Msg(error.to_string()))
    }
}

/// Byte offset of the earliest occurrence of any stop sequence in `text`.
fn earliest_stop(text: &str, stop: &[String]) -> Option<usize> {
    stop.iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| text.find(s.as_str()))
        .min()
}

fn check_heads(
    path: &Path,
    hidden: usize,
    heads: usize,
    kv_heads: usize,
    head_dim: Option<usize>,
) -> Result<()> {
    if heads == 0
        || kv_heads == 0
        || !hidden.is_multiple_of(heads)
        || !heads.is_multiple_of(kv_heads)
    {
        return Err(InferenceError::config(
            path,
            format!(
                "hidden_size {hidden}, num_attention_heads {heads} and num_key_value_heads {kv_heads} are inconsistent"
            ),
        ));
    }
    if let Some(dim) = head_dim
        && dim != hidden / heads
    {
        return Err(InferenceError::config(
            path,
            format!("head_dim {dim} != hidden_size / num_attention_heads is not supported"),
        ));
    }
    Ok(())
}

/// Sizes of a llama-style decoder.
pub(crate) struct DecoderShape {
    pub(crate) vocab: usize,
    pub(crate) hidden: usize,
    pub(crate) intermediate: usize,
    pub(crate) layers: usize,
    /// Width of the K and V projections.
    pub(crate) kv: usize,
    pub(crate) qkv_bias: bool,
    pub(crate) lm_head: bool,
}

/// Every tensor of a llama-style checkpoint with its shape.
pub(crate) fn decoder_tensors(s: &DecoderShape) -> Vec<(String, Vec<usize>)> {
    let mut tensors = vec![(
        "model.embed_tokens.weight".to_owned(),
        vec![s.vocab, s.hidden],
    )];
    for i in 0..s.layers {
        let p = format!("model.layers.{i}");
        tensors.extend([
            (
                format!("{p}.self_attn.q_proj.weight"),
                vec![s.hidden, s.hidden],
            ),
            (format!("{p}.self_attn.k_proj.weight"), vec![s.kv, s.hidden]),
            (format!("{p}.self_attn.v_proj.weight"), vec![s.kv, s.hidden]),
            (
                format!("{p}.self_attn.o_proj.weight"),
                vec![s.hidden, s.hidden],
            ),
            (
                format!("{p}.mlp.gate_proj.weight"),
                vec![s.intermediate, s.hidden],
            ),
            (
                format!("{p}.mlp.up_proj.weight"),
                vec![s.intermediate, s.hidden],
            ),
            (
                format!("{p}.mlp.down_proj.weight"),
                vec![s.hidden, s.intermediate],
            ),
            (format!("{p}.input_layernorm.weight"), vec![s.hidden]),
            (
                format!("{p}.post_attention_layernorm.weight"),
                vec![s.hidden],
            ),
        ]);
        if s.qkv_bias {
            tensors.extend([
                (format!("{p}.self_attn.q_proj.bias"), vec![s.hidden]),
                (format!("{p}.self_attn.k_proj.bias"), vec![s.kv]),
                (format!("{p}.self_attn.v_proj.bias"), vec![s.kv]),
            ]);
        }
    }
    tensors.push(("model.norm.weight".to_owned(), vec![s.hidden]));
    if s.lm_head {
        tensors.push(("lm_head.weight".to_owned(), vec![s.vocab, s.hidden]));
    }
    tensors
}

#[cfg(test)]
mod tests {
    use super::earliest_stop;

    #[test]
    fn earliest_stop_sequence_wins() {
        let stops = vec!["END".to_owned(), "\n\n".to_owned()];
        assert_eq!(earliest_stop("abc\n\nxyz END", &stops), Some(3));
        assert_eq!(earliest_stop("abc END\n\n", &stops), Some(4));
        assert_eq!(earliest_stop("abc", &stops), None);
    }
}
