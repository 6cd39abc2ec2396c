//! Rust enums for the contract's Solidity enums.
//!
//! A JSON ABI does not list enum variants, so `sol!` types them as `uint8` user-defined value
//! types (`IVerinfer::TaskStatus(u8)`); these enums give them names, `Display` and `FromStr`.
//! The variant order must match `IVerinfer.sol` (the anvil tests check values from the contract).
//! Each also has a lowercase wire name, its serde form in the relayer's JSON API and database.
//!
//! [`TaskKind`] is defined in `verinfer-task` (the args schema needs it, without the bindings) and
//! converted to and from `IVerinfer::TaskKind` here.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
pub use verinfer_task::{TaskKind, UnknownTaskKind};

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
        $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $value:literal => $wire:literal ),+ $(,)? }
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

            /// The lowercase name in the relayer's JSON API and database.
            pub const fn wire_name(self) -> &'static str {
                match self {
                    $( Self::$variant => $wire, )+
                }
            }

            /// Inverse of [`Self::wire_name`].
            pub fn from_wire_name(name: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|variant| variant.wire_name() == name)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.wire_name())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                Self::from_wire_name(&name).ok_or_else(|| {
                    serde::de::Error::unknown_variant(&name, &[$($wire),+])
                })
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
    /// Where a task is in its life (`IVerinfer.TaskStatus`).
    TaskStatus {
        /// No such task. In the relayer's index (wire name `created`): a task whose
        /// `TaskCreated` was applied before the `TaskQueued` / `TaskStarted` of its transaction.
        None = 0 => "created",
        /// Waiting in its FIFO queue for its nodes (three, or one for a sampled task).
        Queued = 1 => "queued",
        /// Nodes selected (three; a sampled task's first node; a check's two checkers);
        /// commitments being collected.
        Committing = 2 => "committing",
        /// All committed; results being revealed.
        Revealing = 3 => "revealing",
        /// Settled: a majority agreed and was paid (an unchecked sampled task: its one node's
        /// result was accepted).
        Validated = 4 => "validated",
        /// Settled: no two results agreed; the fee was refunded.
        Aborted = 5 => "aborted",
        /// Settled: a majority reported invalid args; the fee was refunded.
        Errored = 6 => "errored",
        /// Cancelled by its creator while queued; the fee was refunded.
        Cancelled = 7 => "cancelled",
        /// Waited longer than its queue timeout without nodes (a check: without checkers); the
        /// fee was credited back.
        Expired = 8 => "expired",
        /// A sampled task whose first node committed: a later block's hash decides whether two
        /// more nodes check it.
        AwaitingSample = 9 => "awaiting_sample",
        /// A sampled task chosen for a check: waiting (ahead of new tasks) for two checker nodes.
        CheckQueued = 10 => "check_queued",
    }
}

contract_enum! {
    /// How a task's result is validated (`IVerinfer.ValidationMode`).
    ValidationMode {
        /// Three nodes compute at once; majority of three.
        Full = 0 => "full",
        /// One node computes; with probability `samplingBps` (drawn after its commitment) two more
        /// nodes check it under the same majority rule, otherwise its result is accepted alone.
        Sampled = 1 => "sampled",
    }
}

contract_enum! {
    /// A node's registration state (`IVerinfer.NodeState`).
    NodeState {
        /// Not registered (or left).
        None = 0 => "none",
        /// Registered and waiting for a task.
        Available = 1 => "available",
        /// Working on a task.
        Busy = 2 => "busy",
        /// Working on a task, and leaves when it settles.
        Leaving = 3 => "leaving",
        /// Slashed and removed; cannot join again.
        Kicked = 4 => "kicked",
    }
}

contract_enum! {
    /// Why a node lost part of its stake (`IVerinfer.SlashReason`, in `NodeSlashed`).
    SlashReason {
        /// Its result disagreed with an agreeing pair.
        Disagreed = 0 => "disagreed",
        /// It did not commit before the commit deadline.
        MissedCommit = 1 => "missed_commit",
        /// It committed but did not reveal before the reveal deadline.
        MissedReveal = 2 => "missed_reveal",
    }
}

contract_enum! {
    /// Why an account's withdrawable balance grew (`IVerinfer.CreditReason`, in `BalanceCredited`).
    CreditReason {
        /// A leaving, kicked or under-staked node's remaining stake.
        StakeReturned = 0 => "stake_returned",
        /// A task's fee returned to its creator (aborted, errored or expired).
        FeeRefunded = 1 => "fee_refunded",
        /// A share of a slash paid to the nodes that were right, or to the creator.
        SlashReward = 2 => "slash_reward",
    }
}

contract_enum! {
    /// Why a node's stake was returned (`IVerinfer.ExitReason`, in `NodeExited`).
    ExitReason {
        /// The node left.
        Left = 0 => "left",
        /// Its stake fell below the minimum after a task.
        BelowMinStake = 1 => "below_min_stake",
    }
}

impl From<UnknownTaskKind> for UnknownEnumValue {
    fn from(error: UnknownTaskKind) -> Self {
        Self {
            enum_name: "TaskKind",
            value: error.0,
        }
    }
}

impl TryFrom<IVerinfer::TaskKind> for TaskKind {
    type Error = UnknownEnumValue;

    fn try_from(value: IVerinfer::TaskKind) -> Result<Self, Self::Error> {
        let value = value.into_underlying();
        Self::try_from(value).map_err(|_| UnknownEnumValue {
            enum_name: "TaskKind",
            value: value.to_string(),
        })
    }
}

impl From<TaskKind> for IVerinfer::TaskKind {
    fn from(value: TaskKind) -> Self {
        Self::from_underlying(value.as_u8())
    }
}

/// `Full`: what `createTask` creates.
impl Default for ValidationMode {
    fn default() -> Self {
        Self::Full
    }
}

impl TaskStatus {
    /// Whether the task has ended (no further state changes).
    pub const fn is_final(self) -> bool {
        matches!(
            self,
            Self::Validated | Self::Aborted | Self::Errored | Self::Cancelled | Self::Expired
        )
    }

    /// Whether a node works on the task now: started (committing, revealing, awaiting the sample
    /// draw, or a check waiting for checkers) and not final.
    pub const fn is_started(self) -> bool {
        matches!(
            self,
            Self::Committing | Self::Revealing | Self::AwaitingSample | Self::CheckQueued
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
        assert_eq!(TaskStatus::ALL.len(), 11);
        assert_eq!(TaskStatus::try_from(9), Ok(TaskStatus::AwaitingSample));
        assert_eq!(TaskStatus::try_from(10), Ok(TaskStatus::CheckQueued));
        assert!(TaskStatus::try_from(11).is_err());
        for &mode in ValidationMode::ALL {
            assert_eq!(
                ValidationMode::try_from(IVerinfer::ValidationMode::from(mode)),
                Ok(mode)
            );
        }
        assert_eq!(ValidationMode::try_from(1), Ok(ValidationMode::Sampled));
        assert!(ValidationMode::try_from(2).is_err());
        assert_eq!(NodeState::ALL.len(), 5);
        let error = NodeState::try_from(5).unwrap_err();
        assert_eq!(error.to_string(), "5 is not a valid NodeState");
        assert!(TaskKind::try_from(IVerinfer::TaskKind::from_underlying(2)).is_err());
    }

    #[test]
    fn names_display_and_parse_case_insensitively() {
        assert_eq!(TaskStatus::Validated.to_string(), "Validated");
        assert_eq!("imagegeneration".parse(), Ok(TaskKind::Image));
        assert_eq!("MissedReveal".parse(), Ok(SlashReason::MissedReveal));
        let error = "Done".parse::<TaskStatus>().unwrap_err();
        assert_eq!(error.to_string(), "Done is not a valid TaskStatus");
        assert!(TaskStatus::Cancelled.is_final() && !TaskStatus::Revealing.is_final());
        for status in [TaskStatus::AwaitingSample, TaskStatus::CheckQueued] {
            assert!(!status.is_final() && status.is_started(), "{status}");
        }
        assert!(!TaskStatus::Queued.is_started() && !TaskStatus::Validated.is_started());
        assert_eq!("sampled".parse(), Ok(ValidationMode::Sampled));
        assert_eq!(ValidationMode::Full.wire_name(), "full");
    }

    #[test]
    fn wire_names_are_the_serde_form() {
        assert_eq!(
            serde_json::to_string(&TaskStatus::None).unwrap(),
            "\"created\""
        );
        assert_eq!(
            serde_json::from_str::<NodeState>("\"leaving\"").unwrap(),
            NodeState::Leaving
        );
        assert_eq!(SlashReason::MissedReveal.wire_name(), "missed_reveal");
        assert_eq!(
            TaskStatus::from_wire_name("validated"),
            Some(TaskStatus::Validated)
        );
        assert!(serde_json::from_str::<TaskStatus>("\"done\"").is_err());
        assert_eq!(
            serde_json::to_string(&TaskStatus::AwaitingSample).unwrap(),
            "\"awaiting_sample\""
        );
        assert_eq!(
            serde_json::from_str::<ValidationMode>("\"sampled\"").unwrap(),
            ValidationMode::Sampled
        );
        assert_eq!(
            TaskKind::try_from(IVerinfer::TaskKind::from(TaskKind::Text)),
            Ok(TaskKind::Text)
        );
    }
}
