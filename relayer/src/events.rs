//! Verinfer events as the relayer keeps them: decoded from raw logs with the `verinfer-abi`
//! bindings into [`VerinferEvent`], a plain enum the derived state is built from.

use alloy::rpc::types::Log;
use alloy_primitives::{Address, B256, Bytes, LogData, U256};
use alloy_sol_types::SolEventInterface;
use serde::{Deserialize, Serialize};
use verinfer_abi::Verinfer::VerinferEvents;

/// A task's kind, as the chain's `TaskKind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// `ImageGeneration` (0).
    Image,
    /// `TextGeneration` (1).
    Text,
}

impl TaskKind {
    /// The chain's enum value.
    pub fn from_u8(value: u8) -> Option<Self> {
        match value {
            0 => Some(Self::Image),
            1 => Some(Self::Text),
            _ => None,
        }
    }

    /// `"image"` / `"text"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Text => "text",
        }
    }

    /// Inverse of [`Self::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "image" => Some(Self::Image),
            "text" => Some(Self::Text),
            _ => None,
        }
    }
}

/// A task's status, as the chain's `TaskStatus` (`Created` only exists between a `TaskCreated`
/// and the `TaskQueued` / `TaskStarted` of the same transaction).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Chain `None` (0): created, not yet queued or started.
    Created,
    /// Waiting for nodes.
    Queued,
    /// Nodes are committing.
    Committing,
    /// Nodes are revealing.
    Revealing,
    /// Settled: at least two results agree.
    Validated,
    /// Settled: no two results agree.
    Aborted,
    /// Settled: a majority reported invalid args.
    Errored,
    /// Cancelled by its creator while queued.
    Cancelled,
}

impl TaskStatus {
    /// The chain's enum value (`Created` maps to `None` = 0).
    pub fn from_u8(value: u8) -> Option<Self> {
        Some(match value {
            0 => Self::Created,
            1 => Self::Queued,
            2 => Self::Committing,
            3 => Self::Revealing,
            4 => Self::Validated,
            5 => Self::Aborted,
            6 => Self::Errored,
            7 => Self::Cancelled,
            _ => return None,
        })
    }

    /// The chain's enum value.
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Queued => "queued",
            Self::Committing => "committing",
            Self::Revealing => "revealing",
            Self::Validated => "validated",
            Self::Aborted => "aborted",
            Self::Errored => "errored",
            Self::Cancelled => "cancelled",
        }
    }

    /// Inverse of [`Self::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        (0..=7)
            .filter_map(Self::from_u8)
            .find(|status| status.as_str() == text)
    }
}

/// A node's state, as the chain's `NodeState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    /// Not registered (never joined, or exited).
    None,
    /// Waiting for a task.
    Available,
    /// In a task.
    Busy,
    /// In a task, leaving when it ends.
    Leaving,
    /// Slashed and kicked for good.
    Kicked,
}

impl NodeState {
    /// The chain's enum value.
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Available => "available",
            Self::Busy => "busy",
            Self::Leaving => "leaving",
            Self::Kicked => "kicked",
        }
    }

    /// Inverse of [`Self::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::None,
            Self::Available,
            Self::Busy,
            Self::Leaving,
            Self::Kicked,
        ]
        .into_iter()
        .find(|state| state.as_str() == text)
    }
}

/// The Verinfer events the relayer derives state from; parameter and treasury events are kept
/// raw in the event log as [`VerinferEvent::Other`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum VerinferEvent {
    NodeJoined {
        node: Address,
        node_id: u32,
        gpu_model: B256,
        gpu_model_name: String,
        vram_mib: u32,
        stake: u128,
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
    },
    NodeSlashed {
        node: Address,
        task_id: u64,
        amount: u128,
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
    TaskCreated {
        task_id: u64,
        creator: Address,
        kind: TaskKind,
        args_hash: B256,
        image_count: u8,
        min_vram_mib: u32,
        gpu_model: B256,
        fee: u128,
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
    },
    TaskCancelled {
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
    /// Any other log of the contract (parameters, treasury, ownership), by event name.
    Other {
        name: String,
    },
}

impl VerinferEvent {
    /// The Solidity event name.
    pub fn name(&self) -> &str {
        match self {
            Self::NodeJoined { .. } => "NodeJoined",
            Self::StakeAdded { .. } => "StakeAdded",
            Self::NodeLeaving { .. } => "NodeLeaving",
            Self::NodeExited { .. } => "NodeExited",
            Self::NodeSlashed { .. } => "NodeSlashed",
            Self::NodeKicked { .. } => "NodeKicked",
            Self::NodeRewarded { .. } => "NodeRewarded",
            Self::TaskCreated { .. } => "TaskCreated",
            Self::TaskQueued { .. } => "TaskQueued",
            Self::TaskStarted { .. } => "TaskStarted",
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
            | Self::TaskCancelled { task_id }
            | Self::ResultCommitted { task_id, .. }
            | Self::RevealPhaseOpened { task_id, .. }
            | Self::ImageResultRevealed { task_id, .. }
            | Self::TextResultRevealed { task_id, .. }
            | Self::InvalidArgsReported { task_id, .. }
            | Self::TaskSettled { task_id, .. } => Some(*task_id),
            _ => None,
        }
    }

    /// The node this event is about, if one.
    pub fn node(&self) -> Option<Address> {
        match self {
            Self::NodeJoined { node, .. }
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

/// A contract log with its position in the chain, as fetched and as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawLog {
    /// Block number.
    pub block_number: u64,
    /// Block hash.
    pub block_hash: B256,
    /// Index of the log in its block.
    pub log_index: u64,
    /// Transaction hash.
    pub tx_hash: B256,
    /// Topics and data.
    pub data: LogData,
}

/// Why a log could not be used.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// The RPC returned a log without its position (a pending log).
    #[error("log has no {0} (pending logs cannot be indexed)")]
    MissingPosition(&'static str),
    /// A value does not fit (a task id beyond u64, an enum value the relayer does not know).
    #[error("{event}: {message}")]
    OutOfRange {
        /// Event name.
        event: &'static str,
        /// What does not fit.
        message: String,
    },
}

impl RawLog {
    /// Takes a log from `eth_getLogs`.
    pub fn from_rpc(log: &Log) -> Result<Self, EventError> {
        Ok(Self {
            block_number: log
                .block_number
                .ok_or(EventError::MissingPosition("block number"))?,
            block_hash: log
                .block_hash
                .ok_or(EventError::MissingPosition("block hash"))?,
            log_index: log
                .log_index
                .ok_or(EventError::MissingPosition("log index"))?,
            tx_hash: log
                .transaction_hash
                .ok_or(EventError::MissingPosition("transaction hash"))?,
            data: log.inner.data.clone(),
        })
    }

    /// Topics as comma-joined 0x-hex (storage form).
    pub fn topics_text(&self) -> String {
        self.data
            .topics()
            .iter()
            .map(|topic| topic.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Data as 0x-hex (storage form).
    pub fn data_text(&self) -> String {
        self.data.data.to_string()
    }

    /// Rebuilds the log data from its storage form.
    pub fn parse_data(topics: &str, data: &str) -> Option<LogData> {
        let topics = if topics.is_empty() {
            Vec::new()
        } else {
            topics
                .split(',')
                .map(|topic| topic.parse::<B256>().ok())
                .collect::<Option<Vec<_>>>()?
        };
        let data = data.parse::<Bytes>().ok()?;
        LogData::new(topics, data)
    }

    /// Decodes the event. Logs that are not Verinfer events (or fail to decode) become
    /// [`VerinferEvent::Other`] named by their first topic, so they never stop the indexer.
    pub fn decode(&self) -> Result<VerinferEvent, EventError> {
        match VerinferEvents::decode_raw_log(self.data.topics(), &self.data.data) {
            Ok(event) => convert(event),
            Err(_) => Ok(VerinferEvent::Other {
                name: self
                    .data
                    .topics()
                    .first()
                    .map_or_else(|| "anonymous".to_owned(), |t| format!("unknown:{t}")),
            }),
        }
    }
}

fn task_id(event: &'static str, value: U256) -> Result<u64, EventError> {
    u64::try_from(value).map_err(|_| EventError::OutOfRange {
        event,
        message: format!("task id {value} exceeds u64"),
    })
}

fn amount(value: alloy_primitives::Uint<96, 2>) -> u128 {
    value.to::<u128>()
}

fn convert(event: VerinferEvents) -> Result<VerinferEvent, EventError> {
    use VerinferEvents as E;
    Ok(match event {
        E::NodeJoined(e) => VerinferEvent::NodeJoined {
            node: e.node,
            node_id: e.nodeId,
            gpu_model: e.gpuModel,
            gpu_model_name: e.gpuModelName,
            vram_mib: e.vramMiB,
            stake: amount(e.stake),
        },
        E::StakeAdded(e) => VerinferEvent::StakeAdded {
            node: e.node,
            amount: amount(e.amount),
            new_stake: amount(e.newStake),
        },
        E::NodeLeaving(e) => VerinferEvent::NodeLeaving {
            node: e.node,
            task_id: task_id("NodeLeaving", e.taskId)?,
        },
        E::NodeExited(e) => VerinferEvent::NodeExited {
            node: e.node,
            stake_returned: amount(e.stakeReturned),
        },
        E::NodeSlashed(e) => VerinferEvent::NodeSlashed {
            node: e.node,
            task_id: task_id("NodeSlashed", e.taskId)?,
            amount: amount(e.amount),
        },
        E::NodeKicked(e) => VerinferEvent::NodeKicked {
            node: e.node,
            task_id: task_id("NodeKicked", e.taskId)?,
            stake_returned: amount(e.stakeReturned),
        },
        E::NodeRewarded(e) => VerinferEvent::NodeRewarded {
            node: e.node,
            task_id: task_id("NodeRewarded", e.taskId)?,
            amount: amount(e.amount),
        },
        E::TaskCreated(e) => VerinferEvent::TaskCreated {
            task_id: task_id("TaskCreated", e.taskId)?,
            creator: e.creator,
            kind: TaskKind::from_u8(e.kind).ok_or_else(|| EventError::OutOfRange {
                event: "TaskCreated",
                message: format!("unknown task kind {}", e.kind),
            })?,
            args_hash: e.argsHash,
            image_count: e.imageCount,
            min_vram_mib: e.minVramMiB,
            gpu_model: e.gpuModel,
            fee: amount(e.fee),
        },
        E::TaskQueued(e) => VerinferEvent::TaskQueued {
            task_id: task_id("TaskQueued", e.taskId)?,
            queue_key: e.queueKey,
        },
        E::TaskStarted(e) => VerinferEvent::TaskStarted {
            task_id: task_id("TaskStarted", e.taskId)?,
            nodes: e.nodes,
            commit_deadline: e.commitDeadline,
            reveal_deadline: e.revealDeadline,
        },
        E::TaskCancelled(e) => VerinferEvent::TaskCancelled {
            task_id: task_id("TaskCancelled", e.taskId)?,
        },
        E::ResultCommitted(e) => VerinferEvent::ResultCommitted {
            task_id: task_id("ResultCommitted", e.taskId)?,
            node: e.node,
            commitment: e.commitment,
        },
        E::RevealPhaseOpened(e) => VerinferEvent::RevealPhaseOpened {
            task_id: task_id("RevealPhaseOpened", e.taskId)?,
            reveal_deadline: e.revealDeadline,
        },
        E::ImageResultRevealed(e) => VerinferEvent::ImageResultRevealed {
            task_id: task_id("ImageResultRevealed", e.taskId)?,
            node: e.node,
            phashes: e.pHashes,
        },
        E::TextResultRevealed(e) => VerinferEvent::TextResultRevealed {
            task_id: task_id("TextResultRevealed", e.taskId)?,
            node: e.node,
            digest: e.digest,
        },
        E::InvalidArgsReported(e) => VerinferEvent::InvalidArgsReported {
            task_id: task_id("InvalidArgsReported", e.taskId)?,
            node: e.node,
        },
        E::TaskSettled(e) => VerinferEvent::TaskSettled {
            task_id: task_id("TaskSettled", e.taskId)?,
            outcome: TaskStatus::from_u8(e.outcome).ok_or_else(|| EventError::OutOfRange {
                event: "TaskSettled",
                message: format!("unknown outcome {}", e.outcome),
            })?,
            agreeing_mask: e.agreeingMask,
            distances: e.distances,
            threshold: e.threshold,
            reward_per_node: amount(e.rewardPerNode),
        },
        other => VerinferEvent::Other {
            name: other_name(&other),
        },
    })
}

/// Name of an event the relayer keeps raw, from its Debug form (`Variant(..)`).
fn other_name(event: &VerinferEvents) -> String {
    let debug = format!("{event:?}");
    debug
        .split(['(', ' ', '{'])
        .next()
        .unwrap_or("Other")
        .to_owned()
}
