//! Contract logs as the relayer fetches and stores them ([`RawLog`]); they are decoded with
//! `verinfer-abi`'s one event decoder into [`VerinferEvent`], the input of the derived state, and
//! the owner's events that decoder keeps by name only (the GPU model registry and the parameter
//! versions) into [`AdminEvent`].

use alloy::{rpc::types::Log, sol_types::SolEvent};
use alloy_primitives::{B256, Bytes, LogData};
pub use verinfer_abi::VerinferEvent;
use verinfer_abi::{IVerinfer, Verinfer};

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
    /// The block's timestamp (unix seconds), when the RPC gave it or the indexer read it.
    pub block_timestamp: Option<u64>,
    /// Topics and data.
    pub data: LogData,
}

/// An owner's event of the registry or the parameters (these are [`VerinferEvent::Other`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminEvent {
    /// `GpuModelAdded(id, name, vramMiB)`: a GPU model nodes may declare (active).
    GpuModelAdded {
        /// The normalised name's keccak256.
        id: B256,
        /// The normalised name.
        name: String,
        /// VRAM of every card of the model, MiB.
        vram_mib: u32,
    },
    /// `GpuModelActiveSet(id, active)`: the model opened or closed to new nodes.
    GpuModelActiveSet {
        /// Model id.
        id: B256,
        /// Open to new nodes.
        active: bool,
    },
    /// `ParamsScheduled(version, params, effectiveAt)`.
    ParamsScheduled {
        /// Version number.
        version: u32,
        /// Its values.
        params: IVerinfer::Params,
        /// When it takes effect (unix seconds).
        effective_at: u64,
    },
    /// `ParamsActivated(version)`: in force for tasks created from now on.
    ParamsActivated {
        /// Version number.
        version: u32,
    },
    /// `ParamsScheduleCancelled(version)`: withdrawn, or replaced by a newer schedule.
    ParamsScheduleCancelled {
        /// Version number.
        version: u32,
    },
}

impl AdminEvent {
    /// Decodes a registry or parameter event; `None` for any other log.
    pub fn decode(data: &LogData) -> Option<Self> {
        let topic = *data.topics().first()?;
        Some(match topic {
            Verinfer::GpuModelAdded::SIGNATURE_HASH => {
                let e = Verinfer::GpuModelAdded::decode_log_data(data).ok()?;
                Self::GpuModelAdded {
                    id: e.id,
                    name: e.name,
                    vram_mib: e.vramMiB,
                }
            }
            Verinfer::GpuModelActiveSet::SIGNATURE_HASH => {
                let e = Verinfer::GpuModelActiveSet::decode_log_data(data).ok()?;
                Self::GpuModelActiveSet {
                    id: e.id,
                    active: e.active,
                }
            }
            Verinfer::ParamsScheduled::SIGNATURE_HASH => {
                let e = Verinfer::ParamsScheduled::decode_log_data(data).ok()?;
                Self::ParamsScheduled {
                    version: e.version.to::<u32>(),
                    params: e.params,
                    effective_at: e.effectiveAt.to::<u64>(),
                }
            }
            Verinfer::ParamsActivated::SIGNATURE_HASH => {
                let e = Verinfer::ParamsActivated::decode_log_data(data).ok()?;
                Self::ParamsActivated {
                    version: e.version.to::<u32>(),
                }
            }
            Verinfer::ParamsScheduleCancelled::SIGNATURE_HASH => {
                let e = Verinfer::ParamsScheduleCancelled::decode_log_data(data).ok()?;
                Self::ParamsScheduleCancelled {
                    version: e.version.to::<u32>(),
                }
            }
            _ => return None,
        })
    }
}

/// Why a log could not be used.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// The RPC returned a log without its position (a pending log).
    #[error("log has no {0} (pending logs cannot be indexed)")]
    MissingPosition(&'static str),
    /// A value does not fit (a task id beyond u64, an enum value the relayer does not know).
    #[error(transparent)]
    Decode(#[from] verinfer_abi::EventError),
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
            block_timestamp: log.block_timestamp,
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

    /// Decodes the event with [`VerinferEvent::decode`]. Logs that are not Verinfer events (or
    /// fail to decode) become [`VerinferEvent::Other`], so they never stop the indexer.
    pub fn decode(&self) -> Result<VerinferEvent, EventError> {
        Ok(VerinferEvent::decode(&self.data)?)
    }

    /// Whether this is a `TaskCreated` log (whose block's timestamp the derived state needs).
    pub fn is_task_created(&self) -> bool {
        self.data.topics().first() == Some(&Verinfer::TaskCreated::SIGNATURE_HASH)
    }
}
