//! What the chain says about a task: its record plus the events of its reveals and settlement.

use alloy::primitives::{Address, B256};
use verinfer_abi::SlashReason;
pub use verinfer_abi::{ChainTask, Settlement, Validation};

/// The chain's view of a task together with the relayer's, as `task_status` returns it.
#[derive(Debug, Clone)]
pub struct TaskStatusReport {
    /// From `getTask` (authoritative).
    pub chain: ChainTask,
    /// Sampled tasks: the sampling rate p of the task's parameters
    /// (`taskParams(taskId).samplingBps`), in basis points; `None` for full tasks.
    pub sampling_bps: Option<u16>,
    /// From the relayer's index, or why it could not be read (the chain view does not need it).
    pub relayer: Result<verinfer_wire::types::TaskView, String>,
}

impl TaskStatusReport {
    /// How the result is (or was) validated: by three nodes, or accepted unchecked at rate p.
    pub fn validation(&self) -> Validation {
        self.chain.validation()
    }

    /// The plain validation line, e.g. `sampled at p = 5%: accepted unchecked (one node's
    /// result, not compared)` (see [`ChainTask::validation_line`]).
    pub fn validation_line(&self) -> String {
        self.chain.validation_line(self.sampling_bps)
    }
}

/// What a node revealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevealedResult {
    /// One pHash per image, in image order.
    Images(Vec<u64>),
    /// A text digest.
    Text(B256),
    /// A report that the args are invalid.
    InvalidArgs,
}

/// A slash (`NodeSlashed`, followed by `NodeKicked`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slash {
    /// Why.
    pub reason: SlashReason,
    /// Stake taken, in token base units.
    pub amount: u128,
    /// Stake returned to the kicked node.
    pub returned: Option<u128>,
}

/// One selected node of a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeReport {
    /// Position 0..3 in the task.
    pub slot: u8,
    /// The node's address.
    pub address: Address,
    /// The GPU model name it declared when it joined (normalised by the contract).
    pub gpu_model_name: Option<String>,
    /// The VRAM it declared, in MiB.
    pub vram_mib: Option<u32>,
    /// It committed.
    pub committed: bool,
    /// What it revealed, if it did.
    pub revealed: Option<RevealedResult>,
    /// Whether it agreed with another node (`None` before settlement).
    pub agreed: Option<bool>,
    /// Its reward (`NodeRewarded`), in token base units.
    pub reward: u128,
    /// Its slash, if any.
    pub slash: Option<Slash>,
}

/// Everything the chain records about one task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskReport {
    /// The task record.
    pub task: ChainTask,
    /// Sampled tasks: the sampling rate p of the task's parameters
    /// (`taskParams(taskId).samplingBps`), in basis points; `None` for full tasks.
    pub sampling_bps: Option<u16>,
    /// The selected nodes in slot order (empty before the task starts; a sampled task: its first
    /// node, and its two checkers once a check started).
    pub nodes: Vec<NodeReport>,
    /// The settlement, once settled.
    pub settlement: Option<Settlement>,
}

impl TaskReport {
    /// The node in `slot`.
    pub fn node(&self, slot: usize) -> Option<&NodeReport> {
        self.nodes
            .iter()
            .find(|node| usize::from(node.slot) == slot)
    }

    /// How the result is (or was) validated: by three nodes, or accepted unchecked at rate p.
    pub fn validation(&self) -> Validation {
        self.task.validation()
    }

    /// The plain validation line, e.g. `sampled at p = 5%: checked by three nodes (first node
    /// and two checkers)` (see [`ChainTask::validation_line`]).
    pub fn validation_line(&self) -> String {
        self.task.validation_line(self.sampling_bps)
    }

    /// Stake slashed in this task, summed over nodes.
    pub fn total_slashed(&self) -> u128 {
        self.nodes
            .iter()
            .filter_map(|node| node.slash.map(|slash| slash.amount))
            .sum()
    }
}
