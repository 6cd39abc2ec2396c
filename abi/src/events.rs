//! [`VerinferEvent`]: the one decoder of the contract's logs into typed events, used by the
//! relayer's indexer, the node's scan of its tasks and the client's task report.
//!
//! Task ids become `u64`, uint96 amounts `u128`, enum values the Rust enums; a value out of range
//! is an [`EventError`], a log that is no Verinfer event is [`VerinferEvent::Other`].

use alloy::{
    primitives::{Address, B256, LogData, U256, aliases::U96},
    rpc::types::Log,
    sol_types::{SolEvent, SolEventInterface},
};

use crate::{
    CreditReason, ExitReason, SlashReason, TaskKind, TaskStatus, ValidationMode, Verinfer,
    Verinfer::VerinferEvents,
};

/// A Verinfer event with its values in Rust types. Parameter, registry, treasury and ownership
/// events are [`VerinferEvent::Other`], by name.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // the fields are the Solidity event's, in snake case
pub enum VerinferEvent {
    NodeJoined {
        node: Address,
        node_id: u32,
        gpu_model: B256,
        gpu_model_name: String,
        vram_mib: u32,
        stake: u128,
        fee_tier: u8,
    },
    FeeTierSet {
        node: Address,
        fee_tier: u8,
    },
    StakeAdded {
        node: Address,
        amount: u128,
        new_stake: u128,
    },
    NodeLeaving {
        node: Address,
        task_id: u64,
    },
    NodeExited {
        node: Address,
        stake_returned: u128,
        reason: ExitReason,
    },
    NodeSlashed {
        node: Address,
        task_id: u64,
        amount: u128,
        reason: SlashReason,
    },
    NodeKicked {
        node: Address,
        task_id: u64,
        stake_returned: u128,
    },
    NodeRewarded {
        node: Address,
        task_id: u64,
        amount: u128,
    },
    /// `amount` became withdrawable by `account`; `task_id` 0 when no task caused it (a node
    /// evicted below the minimum stake by a draw).
    BalanceCredited {
        account: Address,
        task_id: u64,
        reason: CreditReason,
        amount: u128,
    },
    Withdrawn {
        account: Address,
        amount: u128,
    },
    TaskCreated {
        task_id: u64,
        creator: Address,
        kind: TaskKind,
        args_hash: B256,
        image_count: u8,
        min_vram_mib: u32,
        gpu_model: B256,
        fee: u128,
        mode: ValidationMode,
    },
    TaskQueued {
        task_id: u64,
        queue_key: B256,
    },
    TaskStarted {
        task_id: u64,
        nodes: [Address; 3],
        commit_deadline: u32,
        reveal_deadline: u32,
        /// The block whose hash seeded the draw.
        seed_block: u64,
    },
    /// A sampled task's first node committed; block `sample_block`'s hash decides whether it is
    /// checked; it reveals (unchecked) or the check is started (`resolveSample`) by
    /// `reveal_deadline`.
    SampleCommitted {
        task_id: u64,
        sample_block: u64,
        reveal_deadline: u32,
    },
    /// The sample draw of a sampled task: `checked` (two checkers will be drawn) or its first
    /// node's result is accepted alone.
    SampleDecided {
        task_id: u64,
        checked: bool,
        sample_block: u64,
    },
    /// A checked task's two checkers (slots 1 and 2) were drawn.
    CheckStarted {
        task_id: u64,
        checkers: [Address; 2],
        commit_deadline: u32,
        reveal_deadline: u32,
        /// The block whose hash seeded the draw.
        seed_block: u64,
    },
    TaskCancelled {
        task_id: u64,
    },
    TaskExpired {
        task_id: u64,
    },
    ResultCommitted {
        task_id: u64,
        node: Address,
        commitment: B256,
    },
    RevealPhaseOpened {
        task_id: u64,
        reveal_deadline: u32,
    },
    ImageResultRevealed {
        task_id: u64,
        node: Address,
        phashes: Vec<u64>,
    },
    TextResultRevealed {
        task_id: u64,
        node: Address,
        digest: B256,
    },
    InvalidArgsReported {
        task_id: u64,
        node: Address,
    },
    TaskSettled {
        task_id: u64,
        outcome: TaskStatus,
        agreeing_mask: u8,
        distances: Vec<u16>,
        threshold: u8,
        reward_per_node: u128,
    },
    /// Any other log: a Verinfer event not listed above (by its Solidity name), or a log that is
    /// no Verinfer event (`unknown:<topic0>`, or `anonymous`).
    Other {
        name: String,
    },
}

/// Why a Verinfer log could not be decoded into a [`VerinferEvent`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// A value does not fit (a task id beyond u64, an enum value this crate does not know).
    #[error("{event}: {message}")]
    OutOfRange {
        /// Event name.
        event: &'static str,
        /// What does not fit.
        message: String,
    },
}

impl VerinferEvent {
    /// Decodes a log's topics and data. Logs that are not Verinfer events (or fail to decode)
    /// become [`VerinferEvent::Other`], so one foreign log never stops a scan.
    pub fn decode(data: &LogData) -> Result<Self, EventError> {
        match VerinferEvents::decode_raw_log(data.topics(), &data.data) {
            Ok(event) => convert(event),
            Err(_) => Ok(Self::Other {
                name: data
                    .topics()
                    .first()
                    .map_or_else(|| "anonymous".to_owned(), |t| format!("unknown:{t}")),
            }),
        }
    }

    /// Decodes an RPC log (see [`decode`](Self::decode)).
    pub fn from_log(log: &Log) -> Result<Self, EventError> {
        Self::decode(&log.inner.data)
    }

    /// The Solidity event name.
    pub fn name(&self) -> &str {
        match self {
            Self::NodeJoined { .. } => "NodeJoined",
            Self::FeeTierSet { .. } => "FeeTierSet",
            Self::BalanceCredited { .. } => "BalanceCredited",
            Self::Withdrawn { .. } => "Withdrawn",
            Self::TaskExpired { .. } => "TaskExpired",
            Self::StakeAdded { .. } => "StakeAdded",
            Self::NodeLeaving { .. } => "NodeLeaving",
            Self::NodeExited { .. } => "NodeExited",
            Self::NodeSlashed { .. } => "NodeSlashed",
            Self::NodeKicked { .. } => "NodeKicked",
            Self::NodeRewarded { .. } => "NodeRewarded",
            Self::TaskCreated { .. } => "TaskCreated",
            Self::TaskQueued { .. } => "TaskQueued",
            Self::TaskStarted { .. } => "TaskStarted",
            Self::SampleCommitted { .. } => "SampleCommitted",
            Self::SampleDecided { .. } => "SampleDecided",
            Self::CheckStarted { .. } => "CheckStarted",
            Self::TaskCancelled { .. } => "TaskCancelled",
            Self::ResultCommitted { .. } => "ResultCommitted",
            Self::RevealPhaseOpened { .. } => "RevealPhaseOpened",
            Self::ImageResultRevealed { .. } => "ImageResultRevealed",
            Self::TextResultRevealed { .. } => "TextResultRevealed",
            Self::InvalidArgsReported { .. } => "InvalidArgsReported",
            Self::TaskSettled { .. } => "TaskSettled",
            Self::Other { name } => name,
        }
    }

    /// The task this event is about, if any.
    pub fn task_id(&self) -> Option<u64> {
        match self {
            Self::NodeLeaving { task_id, .. }
            | Self::NodeSlashed { task_id, .. }
            | Self::NodeKicked { task_id, .. }
            | Self::NodeRewarded { task_id, .. }
            | Self::TaskCreated { task_id, .. }
            | Self::TaskQueued { task_id, .. }
            | Self::TaskStarted { task_id, .. }
            | Self::SampleCommitted { task_id, .. }
            | Self::SampleDecided { task_id, .. }
            | Self::CheckStarted { task_id, .. }
            | Self::TaskCancelled { task_id }
            | Self::TaskExpired { task_id }
            | Self::ResultCommitted { task_id, .. }
            | Self::RevealPhaseOpened { task_id, .. }
            | Self::ImageResultRevealed { task_id, .. }
            | Self::TextResultRevealed { task_id, .. }
            | Self::InvalidArgsReported { task_id, .. }
            | Self::TaskSettled { task_id, .. } => Some(*task_id),
            Self::BalanceCredited { task_id, .. } if *task_id != 0 => Some(*task_id),
            _ => None,
        }
    }

    /// The node this event is about, if one.
    pub fn node(&self) -> Option<Address> {
        match self {
            Self::NodeJoined { node, .. }
            | Self::FeeTierSet { node, .. }
            | Self::StakeAdded { node, .. }
            | Self::NodeLeaving { node, .. }
            | Self::NodeExited { node, .. }
            | Self::NodeSlashed { node, .. }
            | Self::NodeKicked { node, .. }
            | Self::NodeRewarded { node, .. }
            | Self::ResultCommitted { node, .. }
            | Self::ImageResultRevealed { node, .. }
            | Self::TextResultRevealed { node, .. }
            | Self::InvalidArgsReported { node, .. } => Some(*node),
            _ => None,
        }
    }
}

/// The `topic0` of the events of a task's run (start, sample draw, check, commitments, reveals,
/// settlement) whose first indexed topic is the task id, for log filters.
pub fn task_event_signatures() -> Vec<B256> {
    vec![
        Verinfer::TaskStarted::SIGNATURE_HASH,
        Verinfer::SampleCommitted::SIGNATURE_HASH,
        Verinfer::SampleDecided::SIGNATURE_HASH,
        Verinfer::CheckStarted::SIGNATURE_HASH,
        Verinfer::ResultCommitted::SIGNATURE_HASH,
        Verinfer::ImageResultRevealed::SIGNATURE_HASH,
        Verinfer::TextResultRevealed::SIGNATURE_HASH,
        Verinfer::InvalidArgsReported::SIGNATURE_HASH,
        Verinfer::TaskSettled::SIGNATURE_HASH,
    ]
}

fn task_id(event: &'static str, value: U256) -> Result<u64, EventError> {
    u64::try_from(value).map_err(|_| EventError::OutOfRange {
        event,
        message: format!("task id {value} exceeds u64"),
    })
}

fn block_number(event: &'static str, value: U256) -> Result<u64, EventError> {
    u64::try_from(value).map_err(|_| EventError::OutOfRange {
        event,
        message: format!("block number {value} exceeds u64"),
    })
}

fn amount(value: U96) -> u128 {
    value.to::<u128>()
}

/// Credits and withdrawals are uint256 on chain (sums of uint96 amounts); they fit u128 for any
/// token whose supply does.
fn wide_amount(event: &'static str, value: U256) -> Result<u128, EventError> {
    u128::try_from(value).map_err(|_| EventError::OutOfRange {
        event,
        message: format!("amount {value} exceeds u128"),
    })
}

fn known<T, E: std::fmt::Display>(
    event: &'static str,
    value: Result<T, E>,
) -> Result<T, EventError> {
    value.map_err(|error| EventError::OutOfRange {
        event,
        message: error.to_string(),
    })
}

fn convert(event: VerinferEvents) -> Result<VerinferEvent, EventError> {
    use VerinferEvent as V;
    use VerinferEvents as E;
    Ok(match event {
        E::NodeJoined(e) => V::NodeJoined {
            node: e.node,
            node_id: e.nodeId,
            gpu_model: e.gpuModel,
            gpu_model_name: e.gpuModelName,
            vram_mib: e.vramMiB,
            stake: amount(e.stake),
            fee_tier: e.feeTier,
        },
        E::FeeTierSet(e) => V::FeeTierSet {
            node: e.node,
            fee_tier: e.feeTier,
        },
        E::BalanceCredited(e) => V::BalanceCredited {
            account: e.account,
            task_id: task_id("BalanceCredited", e.taskId)?,
            reason: known("BalanceCredited", CreditReason::try_from(e.reason))?,
            amount: wide_amount("BalanceCredited", e.amount)?,
        },
        E::Withdrawn(e) => V::Withdrawn {
            account: e.account,
            amount: wide_amount("Withdrawn", e.amount)?,
        },
        E::TaskExpired(e) => V::TaskExpired {
            task_id: task_id("TaskExpired", e.taskId)?,
        },
        E::StakeAdded(e) => V::StakeAdded {
            node: e.node,
            amount: amount(e.amount),
            new_stake: amount(e.newStake),
        },
        E::NodeLeaving(e) => V::NodeLeaving {
            node: e.node,
            task_id: task_id("NodeLeaving", e.taskId)?,
        },
        E::NodeExited(e) => V::NodeExited {
            node: e.node,
            stake_returned: amount(e.stakeReturned),
            reason: known("NodeExited", ExitReason::try_from(e.reason))?,
        },
        E::NodeSlashed(e) => V::NodeSlashed {
            node: e.node,
            task_id: task_id("NodeSlashed", e.taskId)?,
            amount: amount(e.amount),
            reason: known("NodeSlashed", SlashReason::try_from(e.reason))?,
        },
        E::NodeKicked(e) => V::NodeKicked {
            node: e.node,
            task_id: task_id("NodeKicked", e.taskId)?,
            stake_returned: amount(e.stakeReturned),
        },
        E::NodeRewarded(e) => V::NodeRewarded {
            node: e.node,
            task_id: task_id("NodeRewarded", e.taskId)?,
            amount: amount(e.amount),
        },
        E::TaskCreated(e) => V::TaskCreated {
            task_id: task_id("TaskCreated", e.taskId)?,
            creator: e.creator,
            kind: known("TaskCreated", TaskKind::try_from(e.kind))?,
            args_hash: e.argsHash,
            image_count: e.imageCount,
            min_vram_mib: e.minVramMiB,
            gpu_model: e.gpuModel,
            fee: amount(e.fee),
            mode: known("TaskCreated", ValidationMode::try_from(e.mode))?,
        },
        E::TaskQueued(e) => V::TaskQueued {
            task_id: task_id("TaskQueued", e.taskId)?,
            queue_key: e.queueKey,
        },
        E::TaskStarted(e) => V::TaskStarted {
            task_id: task_id("TaskStarted", e.taskId)?,
            nodes: e.nodes,
            commit_deadline: e.commitDeadline,
            reveal_deadline: e.revealDeadline,
            seed_block: block_number("TaskStarted", e.seedBlock)?,
        },
        E::SampleCommitted(e) => V::SampleCommitted {
            task_id: task_id("SampleCommitted", e.taskId)?,
            sample_block: block_number("SampleCommitted", e.sampleBlock)?,
            reveal_deadline: e.revealDeadline,
        },
        E::SampleDecided(e) => V::SampleDecided {
            task_id: task_id("SampleDecided", e.taskId)?,
            checked: e.checked,
            sample_block: block_number("SampleDecided", e.sampleBlock)?,
        },
        E::CheckStarted(e) => V::CheckStarted {
            task_id: task_id("CheckStarted", e.taskId)?,
            checkers: e.checkers,
            commit_deadline: e.commitDeadline,
            reveal_deadline: e.revealDeadline,
            seed_block: block_number("CheckStarted", e.seedBlock)?,
        },
        E::TaskCancelled(e) => V::TaskCancelled {
            task_id: task_id("TaskCancelled", e.taskId)?,
        },
        E::ResultCommitted(e) => V::ResultCommitted {
            task_id: task_id("ResultCommitted", e.taskId)?,
            node: e.node,
            commitment: e.commitment,
        },
        E::RevealPhaseOpened(e) => V::RevealPhaseOpened {
            task_id: task_id("RevealPhaseOpened", e.taskId)?,
            reveal_deadline: e.revealDeadline,
        },
        E::ImageResultRevealed(e) => V::ImageResultRevealed {
            task_id: task_id("ImageResultRevealed", e.taskId)?,
            node: e.node,
            phashes: e.pHashes,
        },
        E::TextResultRevealed(e) => V::TextResultRevealed {
            task_id: task_id("TextResultRevealed", e.taskId)?,
            node: e.node,
            digest: e.digest,
        },
        E::InvalidArgsReported(e) => V::InvalidArgsReported {
            task_id: task_id("InvalidArgsReported", e.taskId)?,
            node: e.node,
        },
        E::TaskSettled(e) => V::TaskSettled {
            task_id: task_id("TaskSettled", e.taskId)?,
            outcome: known("TaskSettled", TaskStatus::try_from(e.outcome))?,
            agreeing_mask: e.agreeingMask,
            distances: e.distances,
            threshold: e.threshold,
            reward_per_node: amount(e.rewardPerNode),
        },
        other => V::Other {
            name: other_name(&other),
        },
    })
}

/// Name of an event kept by name only, from its Debug form (`Variant(..)`).
fn other_name(event: &VerinferEvents) -> String {
    let debug = format!("{event:?}");
    debug
        .split(['(', ' ', '{'])
        .next()
        .unwrap_or("Other")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{Bytes, address};

    #[test]
    fn events_decode_to_rust_types_and_foreign_logs_to_other() {
        let settled = Verinfer::TaskSettled {
            taskId: U256::from(7),
            outcome: TaskStatus::Validated.into(),
            agreeingMask: 0b011,
            distances: vec![1, 2, 3],
            threshold: 10,
            rewardPerNode: U96::from(5),
        };
        let event = VerinferEvent::decode(&settled.encode_log_data()).unwrap();
        assert_eq!(
            event,
            VerinferEvent::TaskSettled {
                task_id: 7,
                outcome: TaskStatus::Validated,
                agreeing_mask: 0b011,
                distances: vec![1, 2, 3],
                threshold: 10,
                reward_per_node: 5,
            }
        );
        assert_eq!((event.name(), event.task_id()), ("TaskSettled", Some(7)));

        let slashed = Verinfer::NodeSlashed {
            node: address!("0x00000000000000000000000000000000000000aa"),
            taskId: U256::from(3),
            amount: U96::from(9),
            reason: SlashReason::MissedReveal.into(),
        };
        let event = VerinferEvent::decode(&slashed.encode_log_data()).unwrap();
        assert!(matches!(
            event,
            VerinferEvent::NodeSlashed {
                reason: SlashReason::MissedReveal,
                task_id: 3,
                amount: 9,
                ..
            }
        ));

        let foreign = LogData::new_unchecked(vec![B256::repeat_byte(1)], Bytes::new());
        assert_eq!(
            VerinferEvent::decode(&foreign).unwrap().name(),
            format!("unknown:{}", B256::repeat_byte(1))
        );
        let huge = Verinfer::TaskCancelled { taskId: U256::MAX };
        assert!(VerinferEvent::decode(&huge.encode_log_data()).is_err());
    }

    #[test]
    fn sampled_validation_events_decode() {
        let created = Verinfer::TaskCreated {
            taskId: U256::from(2),
            creator: Address::repeat_byte(1),
            kind: TaskKind::Image.into(),
            argsHash: B256::repeat_byte(2),
            imageCount: 1,
            minVramMiB: 8192,
            gpuModel: B256::ZERO,
            fee: U96::from(10),
            mode: ValidationMode::Sampled.into(),
        };
        assert!(matches!(
            VerinferEvent::decode(&created.encode_log_data()).unwrap(),
            VerinferEvent::TaskCreated {
                task_id: 2,
                mode: ValidationMode::Sampled,
                ..
            }
        ));

        let committed = Verinfer::SampleCommitted {
            taskId: U256::from(2),
            sampleBlock: U256::from(41),
            revealDeadline: 99,
        };
        let event = VerinferEvent::decode(&committed.encode_log_data()).unwrap();
        assert_eq!(
            event,
            VerinferEvent::SampleCommitted {
                task_id: 2,
                sample_block: 41,
                reveal_deadline: 99
            }
        );
        assert_eq!(
            (event.name(), event.task_id()),
            ("SampleCommitted", Some(2))
        );

        let decided = Verinfer::SampleDecided {
            taskId: U256::from(2),
            checked: true,
            sampleBlock: U256::from(41),
        };
        let event = VerinferEvent::decode(&decided.encode_log_data()).unwrap();
        assert_eq!(
            event,
            VerinferEvent::SampleDecided {
                task_id: 2,
                checked: true,
                sample_block: 41
            }
        );

        let checkers = [Address::repeat_byte(3), Address::repeat_byte(4)];
        let started = Verinfer::CheckStarted {
            taskId: U256::from(2),
            checkers,
            commitDeadline: 5,
            revealDeadline: 6,
            seedBlock: U256::from(43),
        };
        let event = VerinferEvent::decode(&started.encode_log_data()).unwrap();
        assert_eq!(
            event,
            VerinferEvent::CheckStarted {
                task_id: 2,
                checkers,
                commit_deadline: 5,
                reveal_deadline: 6,
                seed_block: 43
            }
        );
        assert_eq!(
            (event.name(), event.task_id(), event.node()),
            ("CheckStarted", Some(2), None)
        );
        for signature in [
            Verinfer::SampleCommitted::SIGNATURE_HASH,
            Verinfer::SampleDecided::SIGNATURE_HASH,
            Verinfer::CheckStarted::SIGNATURE_HASH,
        ] {
            assert!(task_event_signatures().contains(&signature));
        }
        let far = Verinfer::SampleDecided {
            taskId: U256::from(2),
            checked: false,
            sampleBlock: U256::MAX,
        };
        assert!(VerinferEvent::decode(&far.encode_log_data()).is_err());
    }
}
