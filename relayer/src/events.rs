//! Contract logs as the relayer fetches and stores them ([`RawLog`]); they are decoded with
//! `verinfer-abi`'s one event decoder into [`VerinferEvent`], the input of the derived state.

use alloy::rpc::types::Log;
use alloy_primitives::{B256, Bytes, LogData};
pub use verinfer_abi::VerinferEvent;

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
}
