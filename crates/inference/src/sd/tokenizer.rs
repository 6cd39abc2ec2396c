//! The CLIP tokenizer of a diffusers `tokenizer/` directory.
//!
//! Diffusers checkpoints ship the slow tokenizer's `vocab.json` + `merges.txt`; some also have a
//! `tokenizer.json`. With only the former, this builds the same fast tokenizer transformers'
//! `CLIPConverter` builds (NFC + whitespace collapsing + lowercase, CLIP's word regex, byte-level
//! BPE with the `</w>` end-of-word suffix, `<|startoftext|> ... <|endoftext|>` around the text).

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    str::FromStr,
};

use serde_json::{Value, json};
use tokenizers::Tokenizer;

use crate::{
    error::{InferenceError, Result},
    weights::read_required,
};

/// CLIP's word-splitting regex (transformers' `CLIPConverter`).
const CLIP_WORD_REGEX: &str = r"'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+";

/// A CLIP tokenizer that pads and truncates to the text encoder's context.
#[derive(Debug, Clone)]
pub struct ClipTokenizer {
    tokenizer: Tokenizer,
    dir: PathBuf,
    eos_id: u32,
    pad_id: u32,
}

/// One tokenized prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClipTokens {
    /// Exactly `max_len` ids: `<bos> text <eos> <pad>...`.
    pub ids: Vec<u32>,
    /// Index of the `<eos>` that ends the text.
    pub eos_position: usize,
    /// Whether the prompt was cut to fit.
    pub truncated: bool,
}

#[derive(Debug, Default, serde::Deserialize)]
struct SpecialTokens {
    bos_token: Option<TokenSpec>,
    eos_token: Option<TokenSpec>,
    pad_token: Option<TokenSpec>,
    unk_token: Option<TokenSpec>,
}

/// A special token as transformers writes it: a string or `{"content": ...}`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(untagged)]
pub(crate) enum TokenSpec {
    Plain(String),
    Added { content: String },
}

impl TokenSpec {
    pub(crate) fn content(&self) -> &str {
        match self {
            Self::Plain(content) | Self::Added { content } => content,
        }
    }
}

impl ClipTokenizer {
    /// Loads `dir` (a diffusers `tokenizer/` or `tokenizer_2/` directory).
    pub fn load(dir: &Path) -> Result<Self> {
        let specials = read_specials(dir)?;
        let token = |spec: &Option<TokenSpec>, default: &str| {
            spec.as_ref().map_or(default, TokenSpec::content).to_owned()
        };
        let bos = token(&specials.bos_token, "<|startoftext|>");
        let eos = token(&specials.eos_token, "<|endoftext|>");
        let unk = token(&specials.unk_token, &eos);
        let pad = token(&specials.pad_token, &eos);

        let fast = dir.join("tokenizer.json");
        let tokenizer = if fast.is_file() {
            Tokenizer::from_file(&fast).map_err(|e| tokenizer_error(&fast, e))?
        } else {
            build_from_vocab_and_merges(dir, &bos, &eos, &unk)?
        };
        let id = |token: &str| {
            tokenizer
                .token_to_id(token)
                .ok_or_else(|| InferenceError::Tokenizer {
                    path: dir.to_owned(),
                    message: format!("special token {token:?} is not in the vocabulary"),
                })
        };
        let eos_id = id(&eos)?;
        let pad_id = id(&pad)?;
        id(&bos)?;
        Ok(Self {
            tokenizer,
            dir: dir.to_owned(),
            eos_id,
            pad_id,
        })
    }

    /// Tokenizes `text` to exactly `max_len` ids, cutting it like transformers'
    /// `truncation=True` (the `<eos>` is kept) and padding with the pad token.
    pub fn encode(&self, text: &str, max_len: usize) -> Result<ClipTokens> {
        let encoding = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| tokenizer_error(&self.dir, e))?;
        let mut ids = encoding.get_ids().to_vec();
        if ids.last() != Some(&self.eos_id) {
            ids.push(self.eos_id);
        }
        let truncated = ids.len() > max_len;
        if truncated {
            ids.truncate(max_len.saturating_sub(1));
            ids.push(self.eos_id);
        }
        let eos_position = ids.len() - 1;
        ids.resize(max_len, self.pad_id);
        Ok(ClipTokens {
            ids,
            eos_position,
            truncated,
        })
    }
}

fn tokenizer_error(path: &Path, error: impl std::fmt::Display) -> InferenceError {
    InferenceError::Tokenizer {
        path: path.to_owned(),
        message: error.to_string(),
    }
}

fn read_specials(dir: &Path) -> Result<SpecialTokens> {
    // special_tokens_map.json wins over tokenizer_config.json, as in transformers.
    for name in ["special_tokens_map.json", "tokenizer_config.json"] {
        let path = dir.join(name);
        if path.is_file() {
            let bytes = read_required(&path, "tokenizer special tokens")?;
            return serde_json::from_slice(&bytes)
                .map_err(|source| InferenceError::Json { path, source });
        }
    }
    Ok(SpecialTokens::default())
}

fn build_from_vocab_and_merges(dir: &Path, bos: &str, eos: &str, unk: &str) -> Result<Tokenizer> {
    let vocab_path = dir.join("vocab.json");
    let merges_path = dir.join("merges.txt");
    let vocab_bytes = read_required(&vocab_path, "CLIP vocabulary (or a tokenizer.json)")?;
    let vocab: BTreeMap<String, u32> =
        serde_json::from_slice(&vocab_bytes).map_err(|source| InferenceError::Json {
            path: vocab_path.clone(),
            source,
        })?;
    let merges_bytes = read_required(&merges_path, "CLIP BPE merges (or a tokenizer.json)")?;
    let merges_text =
        String::from_utf8(merges_bytes).map_err(|_| tokenizer_error(&merges_path, "not UTF-8"))?;
    let mut merges = Vec::new();
    for (line_no, line) in merges_text.lines().enumerate() {
        if line.starts_with("#version") || line.trim().is_empty() {
            continue;
        }
        let mut parts = line.split(' ');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(a), Some(b), None) => merges.push(Value::String(format!("{a} {b}"))),
            _ => {
                return Err(tokenizer_error(
                    &merges_path,
                    format!("line {} is not two space-separated symbols", line_no + 1),
                ));
            }
        }
    }
    let special = |token: &str| -> Result<Value> {
        let id = vocab.get(token).ok_or_else(|| {
            tokenizer_error(&vocab_path, format!("special token {token:?} is missing"))
        })?;
        Ok(
            json!({"id": id, "content": token, "single_word": false, "lstrip": false, "rstrip": false, "normalized": true, "special": true}),
        )
    };
    let bos_id = vocab.get(bos).copied();
    let eos_id = vocab.get(eos).copied();
    let added = vec![special(bos)?, special(eos)?];
    let document = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "NFC"},
            {"type": "Replace", "pattern": {"Regex": r"\s+"}, "content": " "},
            {"type": "Lowercase"}
        ]},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": CLIP_WORD_REGEX}, "behavior": "Removed", "invert": true},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}
        ]},
        "post_processor": {"type": "RobertaProcessing", "sep": [eos, eos_id], "cls": [bos, bos_id], "trim_offsets": false, "add_prefix_space": false},
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": unk, "continuing_subword_prefix": "",
            "end_of_word_suffix": "</w>", "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": vocab, "merges": merges
        }
    });
    Tokenizer::from_str(&document.to_string()).map_err(|e| tokenizer_error(dir, e))
}
