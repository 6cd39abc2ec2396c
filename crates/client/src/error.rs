//! Errors of the client.

use std::path::PathBuf;

use alloy::primitives::{Address, B256};
use verinfer_abi::{TaskStatus, TokenDecimals};

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The task args break a rule of the task format; nothing was sent.
    #[error("{0} (nothing was sent, no gas spent)")]
    InvalidArgs(#[from] verinfer_task::ArgsError),
    /// A task parameter outside the args is out of range; nothing was sent.
    #[error("{0} (nothing was sent, no gas spent)")]
    InvalidRequest(String),
    /// The fee is below the network's minimum for the task (`minTaskFee`); nothing was sent.
    #[error(
        "fee {} tokens is below the network's minimum of {} tokens for this task (leave the fee out to pay the minimum; nothing was sent, no gas spent)",
        decimals.format(*fee),
        decimals.format(*minimum)
    )]
    FeeBelowMinimum {
        /// The fee asked for, in base units.
        fee: u128,
        /// `minTaskFee(kind, imageCount)`, in base units.
        minimum: u128,
        /// The staking token's decimals, for the message.
        decimals: TokenDecimals,
    },
    /// A sampled task's fee is outside the network's range for it (`sampledFeeRange`); nothing
    /// was sent. Below the minimum the expected GPU runs are underpaid; above the maximum a node
    /// staking the minimum could cheat profitably (p x slash share x stake < (1 - p) x fee).
    #[error(
        "fee {} tokens is outside the network's range for this sampled task: minimum {} tokens, maximum {} tokens{} (leave the fee out to pay the minimum; nothing was sent, no gas spent)",
        decimals.format(*fee),
        decimals.format(*minimum),
        decimals.format(*maximum),
        if maximum < minimum { ": the maximum is below the minimum, so no sampled task of this size can be created now (create a full task instead)" } else { "" }
    )]
    FeeOutsideSampledRange {
        /// The fee asked for (the minimum when none was).
        fee: u128,
        /// `sampledFeeRange(kind, imageCount).minimum`.
        minimum: u128,
        /// `sampledFeeRange(kind, imageCount).maximum`.
        maximum: u128,
        /// The staking token's decimals, for the message.
        decimals: TokenDecimals,
    },
    /// The task has no sample draw to read or run (a full task, a sampled task whose first node
    /// has not committed, or one that ended before the draw).
    #[error("task {task_id} has no sample draw: {why}")]
    NoSampleDraw {
        /// The task.
        task_id: u64,
        /// Why.
        why: String,
    },
    /// The text task's GPU model is not in the registry; nothing was sent.
    #[error(
        "GPU model {0:?} is not registered on this network (`verinfer admin gpu-model list` shows the registered ones; nothing was sent, no gas spent)"
    )]
    GpuModelNotRegistered(String),
    /// The text task's GPU model has less VRAM than the task asks for; nothing was sent.
    #[error(
        "GPU model {name:?} has {vram_mib} MiB, less than the task's minimum of {min_vram_mib} MiB (nothing was sent, no gas spent)"
    )]
    GpuModelLacksVram {
        /// The model's normalised name.
        name: String,
        /// Its VRAM in the registry.
        vram_mib: u32,
        /// The task's requirement.
        min_vram_mib: u32,
    },
    /// No registered GPU model has the VRAM the task asks for; nothing was sent.
    #[error(
        "no registered GPU model has {min_vram_mib} MiB of VRAM (`verinfer admin gpu-model list` shows them; nothing was sent, no gas spent)"
    )]
    NoGpuModelFits {
        /// The task's requirement.
        min_vram_mib: u32,
    },
    /// An owner's call from an account that does not own the contract; nothing was sent.
    #[error(
        "{action} is the contract owner's: the owner is {owner}, this key is {account} (nothing was sent, no gas spent)"
    )]
    NotOwner {
        /// The call.
        action: &'static str,
        /// The contract's owner.
        owner: Address,
        /// This client's account.
        account: Address,
    },
    /// `withdraw` with nothing credited to the account; nothing was sent.
    #[error("nothing to withdraw: the contract holds no credited tokens for {0}")]
    NothingToWithdraw(Address),
    /// The creator's token balance cannot pay the fee; nothing was sent.
    #[error(
        "fee {} tokens exceeds the balance of {account}: {} tokens of the staking token (nothing was sent, no gas spent)",
        decimals.format(*fee),
        decimals.format(*balance)
    )]
    InsufficientBalance {
        /// The paying account.
        account: Address,
        /// Its balance, in base units.
        balance: u128,
        /// The fee asked for, in base units.
        fee: u128,
        /// The staking token's decimals, for the message.
        decimals: TokenDecimals,
    },
    /// The RPC endpoint serves another chain than the deployment record names.
    #[error(
        "the RPC endpoint serves chain {actual}, the deployment record is for chain {expected}"
    )]
    ChainMismatch {
        /// The deployment's chain.
        expected: u64,
        /// The endpoint's chain.
        actual: u64,
    },
    /// The staking token's `decimals()` could not be read.
    #[error(transparent)]
    TokenDecimals(#[from] verinfer_abi::DecimalsError),
    /// A JSON-RPC call failed.
    #[error("rpc error: {}", verinfer_wire::tls::explain(.0))]
    Rpc(#[from] alloy::transports::TransportError),
    /// A contract call or transaction failed (the message names the contract error when known).
    #[error("{action} failed: {message}")]
    Contract {
        /// What was being done (`createTask`, `approve`, ...).
        action: &'static str,
        /// The decoded contract error, or the transport's message.
        message: String,
    },
    /// A transaction was mined but reverted.
    #[error("{action} transaction {tx} reverted")]
    Reverted {
        /// What was being done.
        action: &'static str,
        /// The transaction.
        tx: B256,
    },
    /// A receipt lacks an event it must carry.
    #[error("{action} receipt {tx} has no {event} event")]
    MissingEvent {
        /// What was being done.
        action: &'static str,
        /// The transaction.
        tx: B256,
        /// The event's name.
        event: &'static str,
    },
    /// The relayer refused or failed a call.
    #[error(transparent)]
    Relayer(#[from] verinfer_wire::ClientError),
    /// The relayer stored args under another hash than ours.
    #[error("the relayer stored the args under {relayer}, but they hash to {local}")]
    ArgsHashMismatch {
        /// keccak256 computed here.
        local: B256,
        /// What the relayer answered.
        relayer: B256,
    },
    /// No task with this id exists on chain.
    #[error("task {0} does not exist on chain")]
    UnknownTask(u64),
    /// The chain holds a value this client does not know (a newer contract?).
    #[error("unexpected value from the contract: {0}")]
    UnexpectedValue(#[from] verinfer_abi::UnknownEnumValue),
    /// A contract log does not decode (a value out of range: a newer contract?).
    #[error("unexpected contract event: {0}")]
    Event(#[source] verinfer_abi::EventError),
    /// The task did not end validated: there is no result to fetch.
    #[error("task {task_id} is {status}: only validated tasks have a result")]
    NotValidated {
        /// The task.
        task_id: u64,
        /// Its status.
        status: TaskStatus,
    },
    /// No agreeing node has uploaded its result to the relayer (yet: it may never come, if the
    /// nodes that could upload it lost their data).
    #[error(
        "task {task_id} is validated{} but the relayer holds no upload of its result: {} (a node that lost its result data cannot upload it)",
        settled_block.map(|block| format!(" (settled by block {block})")).unwrap_or_default(),
        uploaders(pending)
    )]
    ResultsNotReady {
        /// The task.
        task_id: u64,
        /// Agreeing nodes whose upload is missing: the only nodes that can upload the result.
        pending: Vec<Address>,
        /// The block of the relayer's latest event of the task (its settlement), when known.
        settled_block: Option<u64>,
    },
    /// Every upload the relayer served failed verification against the chain.
    #[error("no result of task {task_id} matches the chain: {reasons}")]
    Unverified {
        /// The task.
        task_id: u64,
        /// Why each node's upload was rejected.
        reasons: String,
    },
    /// Writing the result files failed.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Who can upload a validated task's result, and that none has.
fn uploaders(pending: &[Address]) -> String {
    let list = pending
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    match pending.len() {
        0 => "the relayer lists no agreeing node that could upload it".to_owned(),
        1 => format!("only the agreeing node {list} can upload it, and it has not"),
        n => format!("only its {n} agreeing nodes ({list}) can upload it, and none has"),
    }
}

impl ClientError {
    pub(crate) fn contract(action: &'static str, error: alloy::contract::Error) -> Self {
        let message = match verinfer_abi::Revert::from_error(&error) {
            Some(revert @ verinfer_abi::Revert::Verinfer(_)) => {
                format!("the contract reverted with {revert}")
            }
            _ => verinfer_wire::tls::explain(&error),
        };
        Self::Contract { action, message }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_upload_says_who_can_upload_it_without_promising_it() {
        let error = ClientError::ResultsNotReady {
            task_id: 7,
            pending: vec![Address::repeat_byte(0xab)],
            settled_block: Some(1234),
        };
        let message = error.to_string();
        assert_eq!(
            message,
            format!(
                "task 7 is validated (settled by block 1234) but the relayer holds no upload of \
                 its result: only the agreeing node {} can upload it, and it has not (a node that \
                 lost its result data cannot upload it)",
                Address::repeat_byte(0xab)
            )
        );
        assert!(!message.contains("yet"), "{message}");
        let two = ClientError::ResultsNotReady {
            task_id: 7,
            pending: vec![Address::repeat_byte(1), Address::repeat_byte(2)],
            settled_block: None,
        };
        assert!(
            two.to_string()
                .contains("only its 2 agreeing nodes (0x0101"),
            "{two}"
        );
    }
}
