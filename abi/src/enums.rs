//! Rust enums for the contract's Solidity enums.
//!
//! A JSON ABI does not list enum variants, so `sol!` types them as `uint8` user-defined value
//! types (`IVerinfer::TaskStatus(u8)`); these enums give them names, `Display` and `FromStr`.
//! The variant order must match `IVerinfer.sol` (the anvil tests check values from the contract).

use std::{fmt, str::FromStr};

use crate::IVerinfer;

/// A value that is not a variant of the named contract enum (a newer contract, or bad input).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value} is not a valid {enum_name}")]
pub struct UnknownEnumValue {
    /// The enum's Solidity name.
    pub enum_name: &'static str,
    /// The offending value, as text (a number from the chain, or a name given to `FromStr`).
    pub value: String,
}

macro_rules! contract_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $value:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum $name {
            $( $(#[$vmeta])* $variant = $value, )+
        }

        impl $name {
            /// Every variant, in Solidity order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The Solidity variant name.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( Self::$variant => stringify!($variant), )+
                }
            }

            /// The value the contract stores.
            pub const fn as_u8(self) -> u8 {
                self as u8
            }
        }

        impl TryFrom<u8> for $name {
            type Error = UnknownEnumValue;

            fn try_from(value: u8) -> Result<Self, Self::Error> {
                match value {
                    $( $value => Ok(Self::$variant), )+
                    _ => Err(UnknownEnumValue {
                        enum_name: stringify!($name),
                        value: value.to_string(),
                    }),
                }
            }
        }

        impl TryFrom<IVerinfer::$name> for $name {
            type Error = UnknownEnumValue;

            fn try_from(value: IVerinfer::$name) -> Result<Self, Self::Error> {
                Self::try_from(value.into_underlying())
            }
        }

        impl From<$name> for IVerinfer::$name {
            fn from(value: $name) -> Self {
                Self::from_underlying(value.as_u8())
            }
        }

        impl From<$name> for u8 {
            fn from(value: $name) -> Self {
                value.as_u8()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        /// Parses the Solidity variant name, ignoring ASCII case.
        impl FromStr for $name {
            type Err = UnknownEnumValue;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|variant| variant.as_str().eq_ignore_ascii_case(s))
                    .ok_or_else(|| UnknownEnumValue { enum_name: stringify!($name), value: s.to_owned() })
            }
        }
    };
}

contract_enum! {
    /// What a task computes (`IVerinfer.TaskKind`).
    TaskKind {
        /// Stable Diffusion images, compared by 64-bit pHash under the Hamming threshold.
        ImageGeneration = 0,
        /// LLM text, compared by exact digest among nodes of one GPU model.
        TextGeneration = 1,
    }
}

contract_enum! {
    /// Where a task is in its life (`IVerinfer.TaskStatus`).
    TaskStatus {
        /// No such task.
        None = 0,
        /// Waiting in its FIFO queue for three nodes.
        Queued = 1,
        /// Three nodes selected; commitments being collected.
        Committing = 2,
        /// All committed; results being revealed.
        Revealing = 3,
        /// Settled: a majority agreed and was paid.
        Validated = 4,
        /// Settled: no two results agreed; the fee was refunded.
        Aborted = 5,
        /// Settled: a majority reported invalid args; the fee was refunded.
        Errored = 6,
        /// Cancelled by its creator while queued; the fee was refunded.
        Cancelled = 7,
    }
}

contract_enum! {
    /// A node's registration state (`IVerinfer.NodeState`).
    NodeState {
        /// Not registered (or left).
        None = 0,
        /// Registered and waiting for a task.
        Available = 1,
        /// Working on a task.
        Busy = 2,
        /// Working on a task, and leaves when it settles.
        Leaving = 3,
        /// Slashed and removed; cannot join again.
        Kicked = 4,
    }
}

contract_enum! {
    /// Why a node lost part of its stake (`IVerinfer.SlashReason`, in `NodeSlashed`).
    SlashReason {
        /// Its result disagreed with an agreeing pair.
        Disagreed = 0,
        /// It did not commit before the commit deadline.
        MissedCommit = 1,
        /// It committed but did not reveal before the reveal deadline.
        MissedReveal = 2,
    }
}

contract_enum! {
    /// Why a node's stake was returned (`IVerinfer.ExitReason`, in `NodeExited`).
    ExitReason {
        /// The node left.
        Left = 0,
        /// Its stake fell below the minimum after a task.
        BelowMinStake = 1,
    }
}

impl TaskStatus {
    /// Whether the task has ended (no further state changes).
    pub const fn is_final(self) -> bool {
        matches!(
            self,
            Self::Validated | Self::Aborted | Self::Errored | Self::Cancelled
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_out_of_range_values_are_named() {
        for &status in TaskStatus::ALL {
            assert_eq!(TaskStatus::try_from(status.as_u8()), Ok(status));
            assert_eq!(
                TaskStatus::try_from(IVerinfer::TaskStatus::from(status)),
                Ok(status)
            );
        }
        assert_eq!(TaskStatus::ALL.len(), 8);
        assert_eq!(NodeState::ALL.len(), 5);
        let error = NodeState::try_from(5).unwrap_err();
        assert_eq!(error.to_string(), "5 is not a valid NodeState");
        assert!(TaskKind::try_from(IVerinfer::TaskKind::from_underlying(2)).is_err());
    }

    #[test]
    fn names_display_and_parse_case_insensitively() {
        assert_eq!(TaskStatus::Validated.to_string(), "Validated");
        assert_eq!("imagegeneration".parse(), Ok(TaskKind::ImageGeneration));
        assert_eq!("MissedReveal".parse(), Ok(SlashReason::MissedReveal));
        let error = "Done".parse::<TaskStatus>().unwrap_err();
        assert_eq!(error.to_string(), "Done is not a valid TaskStatus");
        assert!(TaskStatus::Cancelled.is_final() && !TaskStatus::Revealing.is_final());
    }
}
