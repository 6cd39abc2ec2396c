//! Contract logs as the relayer fetches and stores them ([`RawLog`]); they are decoded with
//! `verinfer-abi`'s one event decoder into [`VerinferEvent`], the input of the derived state, and
//! the owner's events that decoder keeps by name only (the GPU model registry and the parameter
//! versions) into [`AdminEvent`].
//!
//! Two events changed their signature with sampled validation: `TaskCreated` gained the task's
//! mode and `ParamsScheduled`'s parameters gained `samplingBps`. Logs of a contract from before
//! (stored in an older database, replayed after a reorg, or still indexed) are decoded by their
//! old signatures ([`decode_log`]): a full task, parameters with `samplingBps` 0.

use alloy::{rpc::types::Log, sol_types::SolEvent};
use alloy_primitives::{B256, Bytes, LogData};
pub use verinfer_abi::VerinferEvent;
use verinfer_abi::{IVerinfer, TaskKind, ValidationMode, Verinfer};

/// The signatures of the contract before sampled validation.
mod legacy {
    #![allow(missing_docs)]
    alloy_sol_types::sol! {
        struct Params {
            uint8 threshold;
            uint8 minTextPool;
            uint16 slashShareBps;
            uint16 slashRewardBps;
            uint16 protocolFeeBps;
            uint32 commitWindow;
            uint32 revealWindow;
            uint32 queueTimeout;
            uint96 minStake;
            uint96 stakePerThresholdBit;
            uint96 minTaskFee;
            uint96 minImageFee;
        }
        event TaskCreated(
            uint256 indexed taskId,
            address indexed creator,
            uint8 kind,
            bytes32 argsHash,
            uint8 imageCount,
            uint32 minVramMiB,
            bytes32 gpuModel,
            uint96 fee
        );
        event ParamsScheduled(uint24 indexed version, Params params, uint40 effectiveAt);
    }
}

/// Decodes a Verinfer log with [`VerinferEvent::decode`], and a `TaskCreated` of the contract
/// before sampled validation as a full task's.
pub fn decode_log(data: &LogData) -> Result<VerinferEvent, EventError> {
    let event = VerinferEvent::decode(data)?;
    if !matches!(event, VerinferEvent::Other { .. })
        || data.topics().first() != Some(&legacy::TaskCreated::SIGNATURE_HASH)
    {
        return Ok(event);
    }
    let Ok(e) = legacy::TaskCreated::decode_log_data(data) else {
        return Ok(event);
    };
    let out_of_range = |message: String| {
        EventError::Decode(verinfer_abi::EventError::OutOfRange {
            event: "TaskCreated",
            message,
        })
    };
    Ok(VerinferEvent::TaskCreated {
        task_id: u64::try_from(e.taskId)
            .map_err(|_| out_of_range(format!("task id {} exceeds u64", e.taskId)))?,
        creator: e.creator,
        kind: TaskKind::try_from(e.kind)
            .map_err(|_| out_of_range(format!("{} is not a valid TaskKind", e.kind)))?,
        args_hash: e.argsHash,
        image_count: e.imageCount,
        min_vram_mib: e.minVramMiB,
        gpu_model: e.gpuModel,
        fee: e.fee.to::<u128>(),
        mode: ValidationMode::Full,
    })
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
            legacy::ParamsScheduled::SIGNATURE_HASH => {
                let e = legacy::ParamsScheduled::decode_log_data(data).ok()?;
                let p = e.params;
                Self::ParamsScheduled {
                    version: e.version.to::<u32>(),
                    params: IVerinfer::Params {
                        threshold: p.threshold,
                        minTextPool: p.minTextPool,
                        slashShareBps: p.slashShareBps,
                        slashRewardBps: p.slashRewardBps,
                        protocolFeeBps: p.protocolFeeBps,
                        commitWindow: p.commitWindow,
                        revealWindow: p.revealWindow,
                        queueTimeout: p.queueTimeout,
                        minStake: p.minStake,
                        stakePerThresholdBit: p.stakePerThresholdBit,
                        minTaskFee: p.minTaskFee,
                        minImageFee: p.minImageFee,
                        samplingBps: 0,
                    },
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

    /// Decodes the event with [`decode_log`]. Logs that are not Verinfer events (or fail to
    /// decode) become [`VerinferEvent::Other`], so they never stop the indexer.
    pub fn decode(&self) -> Result<VerinferEvent, EventError> {
        decode_log(&self.data)
    }

    /// Whether this is a `TaskCreated` log (whose block's timestamp the derived state needs).
    pub fn is_task_created(&self) -> bool {
        matches!(
            self.data.topics().first(),
            Some(&Verinfer::TaskCreated::SIGNATURE_HASH | &legacy::TaskCreated::SIGNATURE_HASH)
        )
    }

    /// Whether the derived state needs this log's block timestamp: a task's expiry counts from
    /// its `TaskCreated`, a check's from its `SampleDecided`.
    pub fn needs_block_timestamp(&self) -> bool {
        self.is_task_created()
            || self.data.topics().first() == Some(&Verinfer::SampleDecided::SIGNATURE_HASH)
    }
}

#[cfg(test)]
mod tests {
    use alloy_primitives::{
        Address, U256,
        aliases::{U24, U40, U96},
    };

    use super::*;

    #[test]
    fn logs_of_the_contract_before_sampling_decode_as_full_tasks() {
        let old = legacy::TaskCreated {
            taskId: U256::from(4),
            creator: Address::repeat_byte(1),
            kind: 1,
            argsHash: B256::repeat_byte(2),
            imageCount: 0,
            minVramMiB: 0,
            gpuModel: B256::repeat_byte(3),
            fee: U96::from(500),
        }
        .encode_log_data();
        assert_ne!(
            old.topics()[0],
            Verinfer::TaskCreated::SIGNATURE_HASH,
            "the signature changed"
        );
        assert_eq!(
            decode_log(&old).unwrap(),
            VerinferEvent::TaskCreated {
                task_id: 4,
                creator: Address::repeat_byte(1),
                kind: TaskKind::Text,
                args_hash: B256::repeat_byte(2),
                image_count: 0,
                min_vram_mib: 0,
                gpu_model: B256::repeat_byte(3),
                fee: 500,
                mode: ValidationMode::Full,
            }
        );
        let bad_kind = legacy::TaskCreated {
            taskId: U256::from(4),
            creator: Address::ZERO,
            kind: 7,
            argsHash: B256::ZERO,
            imageCount: 0,
            minVramMiB: 0,
            gpuModel: B256::ZERO,
            fee: U96::ZERO,
        }
        .encode_log_data();
        assert!(decode_log(&bad_kind).is_err());

        let scheduled = legacy::ParamsScheduled {
            version: U24::from(2),
            params: legacy::Params {
                threshold: 10,
                minTextPool: 3,
                slashShareBps: 5_000,
                slashRewardBps: 5_000,
                protocolFeeBps: 500,
                commitWindow: 300,
                revealWindow: 300,
                queueTimeout: 60,
                minStake: U96::from(1_000),
                stakePerThresholdBit: U96::from(100),
                minTaskFee: U96::from(10),
                minImageFee: U96::from(1),
            },
            effectiveAt: U40::from(99),
        }
        .encode_log_data();
        let Some(AdminEvent::ParamsScheduled {
            version,
            params,
            effective_at,
        }) = AdminEvent::decode(&scheduled)
        else {
            panic!("legacy ParamsScheduled not decoded");
        };
        assert_eq!((version, effective_at), (2, 99));
        assert_eq!(
            (params.queueTimeout, params.samplingBps, params.minTaskFee),
            (60, 0, U96::from(10))
        );
    }
}
