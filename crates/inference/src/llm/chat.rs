//! Chat prompts: the model's own Jinja chat template from `tokenizer_config.json`, rendered
//! like transformers' `apply_chat_template(..., add_generation_prompt=True)`, or a documented
//! fallback template for models without one.
//!
//! Only `tokenizer_config.json` is read (not a separate `chat_template.jinja`): it is part of
//! the model digest, so every node holding the model renders the same prompt. No
//! non-deterministic helpers (such as `strftime_now`) are offered to templates.

use std::path::{Path, PathBuf};

use minijinja::{Environment, ErrorKind, context};
use serde::Serialize;

use crate::error::{InferenceError, Result};

/// The template used when the model has none: each message as `<|role|>\n` + content + `\n`,
/// then `<|assistant|>\n`, after the BOS token when the tokenizer has one.
pub const FALLBACK_CHAT_TEMPLATE: &str = "{{ bos_token }}{% for message in messages %}<|{{ message.role }}|>\n{{ message.content }}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}";

/// Who wrote a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatRole {
    /// Instructions.
    System,
    /// The user.
    User,
    /// The model.
    Assistant,
}

impl From<verinfer_task::Role> for ChatRole {
    fn from(role: verinfer_task::Role) -> Self {
        match role {
            verinfer_task::Role::System => Self::System,
            verinfer_task::Role::User => Self::User,
            verinfer_task::Role::Assistant => Self::Assistant,
        }
    }
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatMessage {
    /// Who wrote it.
    pub role: ChatRole,
    /// What was written.
    pub content: String,
}

/// A model's chat template.
#[derive(Debug, Clone)]
pub struct ChatTemplate {
    source: String,
    origin: PathBuf,
    bos_token: String,
    eos_token: String,
}

#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct TokenizerConfigJson {
    #[serde(default)]
    pub(crate) chat_template: Option<TemplateField>,
    #[serde(default)]
    pub(crate) bos_token: Option<crate::sd::tokenizer::TokenSpec>,
    #[serde(default)]
    pub(crate) eos_token: Option<crate::sd::tokenizer::TokenSpec>,
}

/// `chat_template`: one template, or named templates (the `default` one is used).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(untagged)]
pub(crate) enum TemplateField {
    One(String),
    Named(Vec<NamedTemplate>),
}

#[derive(Debug, Clone, serde::Deserialize)]
pub(crate) struct NamedTemplate {
    name: String,
    template: String,
}

impl ChatTemplate {
    /// The template of `tokenizer_config.json` (at `path`, already parsed as `config`), or the
    /// fallback when it has none.
    pub(crate) fn from_config(path: &Path, config: &TokenizerConfigJson) -> Result<Self> {
        let source = match &config.chat_template {
            None => FALLBACK_CHAT_TEMPLATE.to_owned(),
            Some(TemplateField::One(source)) => source.clone(),
            Some(TemplateField::Named(named)) => named
                .iter()
                .find(|t| t.name == "default")
                .map(|t| t.template.clone())
                .ok_or_else(|| InferenceError::ChatTemplate {
                    path: path.to_owned(),
                    message: "chat_template lists named templates but none is called \"default\""
                        .to_owned(),
                })?,
        };
        let token = |spec: &Option<crate::sd::tokenizer::TokenSpec>| {
            spec.as_ref()
                .map(|s| s.content().to_owned())
                .unwrap_or_default()
        };
        let template = Self {
            source,
            origin: path.to_owned(),
            bos_token: token(&config.bos_token),
            eos_token: token(&config.eos_token),
        };
        // Compile now so a broken template is reported at load time.
        template.environment()?;
        Ok(template)
    }

    /// Whether this is [`FALLBACK_CHAT_TEMPLATE`].
    pub fn is_fallback(&self) -> bool {
        self.source == FALLBACK_CHAT_TEMPLATE
    }

    fn environment(&self) -> Result<Environment<'static>> {
        let mut env = Environment::new();
        // transformers renders with trim_blocks and lstrip_blocks.
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |message: String| -> std::result::Result<String, minijinja::Error> {
                Err(minijinja::Error::new(ErrorKind::InvalidOperation, message))
            },
        );
        env.add_template_owned("chat", self.source.clone())
            .map_err(|e| self.error(e))?;
        Ok(env)
    }

    fn error(&self, error: minijinja::Error) -> InferenceError {
        let mut message = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            message.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        InferenceError::ChatTemplate {
            path: self.origin.clone(),
            message,
        }
    }

    /// Renders `messages` followed by the assistant's turn prompt.
    pub fn render(&self, messages: &[ChatMessage]) -> Result<String> {
        let env = self.environment()?;
        let template = env.get_template("chat").map_err(|e| self.error(e))?;
        template
            .render(context! {
                messages => messages,
                add_generation_prompt => true,
                bos_token => &self.bos_token,
                eos_token => &self.eos_token,
            })
            .map_err(|e| self.error(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(json: &str) -> Result<ChatTemplate> {
        let config: TokenizerConfigJson = serde_json::from_str(json).expect("parses");
        ChatTemplate::from_config(Path::new("tokenizer_config.json"), &config)
    }

    fn chat() -> Vec<ChatMessage> {
        vec![
            ChatMessage {
                role: ChatRole::System,
                content: "Be brief.".into(),
            },
            ChatMessage {
                role: ChatRole::User,
                content: "Hi".into(),
            },
        ]
    }

    #[test]
    fn fallback_template() {
        let t = template(r#"{"bos_token": "<s>"}"#).expect("fallback");
        assert!(t.is_fallback());
        assert_eq!(
            t.render(&chat()).expect("renders"),
            "<s><|system|>\nBe brief.\n<|user|>\nHi\n<|assistant|>\n"
        );
    }

    #[test]
    fn model_template_with_python_methods_and_trimmed_blocks() {
        let json = r#"{"bos_token": {"content": "<s>"}, "eos_token": "</s>", "chat_template":
            "{{ bos_token }}{% for m in messages %}\n{% if m['role'] == 'user' %}[INST] {{ m['content'].strip() }} [/INST]{% elif m['role'] == 'system' %}<<SYS>>{{ m.content | upper }}<</SYS>>{% endif %}\n{% endfor %}"}"#;
        let t = template(json).expect("valid");
        assert_eq!(
            t.render(&chat()).expect("renders"),
            "<s><<SYS>>BE BRIEF.<</SYS>>[INST] Hi [/INST]"
        );
    }

    #[test]
    fn raise_exception_and_syntax_errors_are_reported() {
        let t = template(r#"{"chat_template": "{{ raise_exception('roles must alternate') }}"}"#)
            .expect("compiles");
        let error = t.render(&chat()).expect_err("raises");
        assert!(
            error.to_string().contains("roles must alternate"),
            "{error}"
        );
        let error = template(r#"{"chat_template": "{% for %}"}"#).expect_err("syntax");
        assert!(
            error.to_string().contains("tokenizer_config.json"),
            "{error}"
        );
    }
}
