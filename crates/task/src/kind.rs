//! [`TaskKind`]: the one definition of a task's kind, for the args schema (`"kind"`), the chain
//! (`IVerinfer.TaskKind`, converted in `verinfer-abi`), the relayer's API and the node's state.
//!
//! It lives here rather than in `verinfer-abi` because the args schema needs it and this crate
//! must not pull in the contract bindings (the inference crate depends on it).

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

/// What a task computes. The discriminants are the contract's `IVerinfer.TaskKind` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum TaskKind {
    /// `ImageGeneration` (0): Stable Diffusion images, compared by 64-bit pHash under the
    /// Hamming threshold.
    Image = 0,
    /// `TextGeneration` (1): LLM text, compared by exact digest among nodes of one GPU model.
    Text = 1,
}

/// A task-kind value or name that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} is not a valid TaskKind")]
pub struct UnknownTaskKind(pub String);

impl TaskKind {
    /// Both kinds, in contract order.
    pub const ALL: &'static [Self] = &[Self::Image, Self::Text];

    /// `"image"` / `"text"`: the name in args, JSON and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Text => "text",
        }
    }

    /// The Solidity variant name (`ImageGeneration` / `TextGeneration`).
    pub const fn solidity_name(self) -> &'static str {
        match self {
            Self::Image => "ImageGeneration",
            Self::Text => "TextGeneration",
        }
    }

    /// The value the contract stores.
    pub const fn as_u8(self) -> u8 {
        self as u8
    }
}

impl TryFrom<u8> for TaskKind {
    type Error = UnknownTaskKind;

    fn try_from(value: u8) -> Result<Self, Self::Error> {
        match value {
            0 => Ok(Self::Image),
            1 => Ok(Self::Text),
            other => Err(UnknownTaskKind(other.to_string())),
        }
    }
}

impl From<TaskKind> for u8 {
    fn from(kind: TaskKind) -> Self {
        kind.as_u8()
    }
}

impl fmt::Display for TaskKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses `image` / `text` or the Solidity names, ignoring ASCII case.
impl FromStr for TaskKind {
    type Err = UnknownTaskKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|kind| {
                kind.as_str().eq_ignore_ascii_case(s)
                    || kind.solidity_name().eq_ignore_ascii_case(s)
            })
            .ok_or_else(|| UnknownTaskKind(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_names_and_json_agree() {
        assert_eq!(TaskKind::try_from(1), Ok(TaskKind::Text));
        assert_eq!(
            TaskKind::try_from(2).unwrap_err().to_string(),
            "2 is not a valid TaskKind"
        );
        assert_eq!("ImageGeneration".parse(), Ok(TaskKind::Image));
        assert_eq!("TEXT".parse(), Ok(TaskKind::Text));
        assert!("video".parse::<TaskKind>().is_err());
        assert_eq!(
            serde_json::to_string(&TaskKind::Image).unwrap(),
            "\"image\""
        );
        assert_eq!(TaskKind::Text.to_string(), "text");
    }
}
