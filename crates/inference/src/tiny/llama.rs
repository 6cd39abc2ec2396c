//! `tiny-llama/`: a Llama-3-shaped Hugging Face directory with tiny random weights.

use std::{path::Path, str::FromStr};

use candle_transformers::models::llama;
use serde_json::json;

use super::{bpe, record, write_file, write_json, write_weights};
use crate::error::{InferenceError, Result};

const MERGES: usize = 256;
const SPECIALS: [&str; 5] = [
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
];
/// A Llama 3 style chat template (with the features real templates use).
const CHAT_TEMPLATE: &str = "{{ bos_token }}{% for message in messages %}{% if message['role'] not in ['system', 'user', 'assistant'] %}{{ raise_exception('unknown role') }}{% endif %}<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n{{ message['content'] | trim }}<|eot_id|>{% endfor %}{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}";

pub(super) fn write(dir: &Path, seed: u64) -> Result<()> {
    let (mut vocab, merges) = bpe::byte_level_bpe(MERGES);
    let first_special = vocab.len();
    vocab.extend(SPECIALS.iter().map(|s| (*s).to_owned()));
    let id = |token: &str| first_special + SPECIALS.iter().position(|s| *s == token).unwrap_or(0);
    let (bos, eos, eot) = (id(SPECIALS[0]), id(SPECIALS[1]), id(SPECIALS[4]));
    // Round the embedding up, as real checkpoints often pad their vocabulary.
    let vocab_size = vocab.len().next_multiple_of(64);

    let vocab_map: serde_json::Map<String, serde_json::Value> = vocab
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), json!(i)))
        .collect();
    let added: Vec<serde_json::Value> = SPECIALS
        .iter()
        .map(|s| json!({"id": id(s), "content": s, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}))
        .collect();
    let document = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": SPECIALS[0], "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [
                {"SpecialToken": {"id": SPECIALS[0], "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                {"SpecialToken": {"id": SPECIALS[0], "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}
            ],
            "special_tokens": {SPECIALS[0]: {"id": SPECIALS[0], "ids": [bos], "tokens": [SPECIALS[0]]}}
        },
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": vocab_map,
            "merges": merges.iter().map(|(a, b)| format!("{a} {b}")).collect::<Vec<_>>()
        }
    });
    // Round-trip through the tokenizers crate: proves it loads and writes its canonical form.
    let tokenizer = tokenizers::Tokenizer::from_str(&document.to_string())
        .map_err(|e| InferenceError::InvalidParams(format!("tiny llama tokenizer: {e}")))?;
    let canonical = tokenizer
        .to_string(true)
        .map_err(|e| InferenceError::InvalidParams(format!("tiny llama tokenizer: {e}")))?;
    write_file(&dir.join("tokenizer.json"), canonical.as_bytes())?;
    write_json(
        &dir.join("tokenizer_config.json"),
        &json!({
            "bos_token": SPECIALS[0],
            "eos_token": SPECIALS[4],
            "chat_template": CHAT_TEMPLATE,
            "clean_up_tokenization_spaces": true,
            "model_max_length": 256,
            "tokenizer_class": "PreTrainedTokenizerFast"
        }),
    )?;

    let config_json = json!({
        "architectures": ["LlamaForCausalLM"],
        "attention_bias": false,
        "bos_token_id": bos,
        "eos_token_id": eos,
        "hidden_act": "silu",
        "hidden_size": 64,
        "initializer_range": 0.02,
        "intermediate_size": 128,
        "max_position_embeddings": 256,
        "model_type": "llama",
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        "num_key_value_heads": 2,
        "rms_norm_eps": 1e-5,
        "rope_scaling": null,
        "rope_theta": 10000.0,
        "tie_word_embeddings": false,
        "torch_dtype": "float32",
        "vocab_size": vocab_size
    });
    write_json(&dir.join("config.json"), &config_json)?;
    write_json(
        &dir.join("generation_config.json"),
        &json!({"bos_token_id": bos, "eos_token_id": [eos, eot], "do_sample": false}),
    )?;
    let config: llama::LlamaConfig = serde_json::from_value(config_json)
        .map_err(|e| InferenceError::InvalidParams(format!("tiny llama config: {e}")))?;
    let config = config.into_config(false);
    let tensors = record(|vb| llama::Llama::load(vb, &config))?;
    // A larger gain than 1 makes the random logits peaked enough to give varied text.
    write_weights(&dir.join("model.safetensors"), &tensors, seed, 20, 2.0)?;
    Ok(())
}
