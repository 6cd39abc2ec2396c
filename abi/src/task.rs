//! [`ChainTask`]: a task as `getTask` returns it, and [`Settlement`]: how it was settled
//! (`TaskSettled`), decoded once for the relayer, the node, the client and the CLI.

use alloy::primitives::{Address, B256};

use crate::{IVerinfer, TaskKind, TaskStatus, UnknownEnumValue};

/// A task as `getTask` returns it, with the contract's enums and integer types decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainTask {
    /// The task id.
    pub task_id: u64,
    /// Who created (and paid for) it.
    pub creator: Address,
    /// Image or text generation.
    pub kind: TaskKind,
    /// Current status ([`TaskStatus::None`]: no such task).
    pub status: TaskStatus,
    /// Images to generate (0 for text tasks).
    pub image_count: u8,
    /// VRAM each node needs, in MiB.
    pub min_vram_mib: u32,
    /// keccak256 of the args bytes.
    pub args_hash: B256,
    /// GPU model id all three nodes share (text tasks naming a model; zero otherwise).
    pub gpu_model: B256,
    /// Escrowed fee, in token base units.
    pub fee: u128,
    /// The selected nodes in slot order (zero addresses before the task starts).
    pub nodes: [Address; 3],
    /// Bit i: node i committed.
    pub committed_mask: u8,
    /// Bit i: node i revealed.
    pub revealed_mask: u8,
    /// Bit i: node i reported invalid args.
    pub invalid_mask: u8,
    /// Commit deadline, unix seconds (0 before start).
    pub commit_deadline: u32,
    /// Reveal deadline, unix seconds (0 before start).
    pub reveal_deadline: u32,
    /// Highest node fee tier the fee pays for (a node of tier t serves fees >= 2^t x the minimum).
    pub fee_level: u8,
    /// The parameter version the task runs under (`paramsAt`).
    pub params_version: u32,
    /// When the task expires if still queued, unix seconds.
    pub expires_at: u64,
}

impl ChainTask {
    /// Decodes `getTask(task_id)`'s answer; fails on an enum value this crate does not know.
    pub fn from_info(task_id: u64, info: IVerinfer::TaskInfo) -> Result<Self, UnknownEnumValue> {
        Ok(Self {
            task_id,
            creator: info.creator,
            kind: TaskKind::try_from(info.kind)?,
            status: TaskStatus::try_from(info.status)?,
            image_count: info.imageCount,
            min_vram_mib: info.minVramMiB,
            args_hash: info.argsHash,
            gpu_model: info.gpuModel,
            fee: info.fee.to::<u128>(),
            nodes: info.nodes,
            committed_mask: info.committedMask,
            revealed_mask: info.revealedMask,
            invalid_mask: info.invalidMask,
            commit_deadline: info.commitDeadline,
            reveal_deadline: info.revealDeadline,
            fee_level: info.feeLevel,
            params_version: info.paramsVersion.to::<u32>(),
            expires_at: info.expiresAt.to::<u64>(),
        })
    }

    /// Whether a task with this id exists.
    pub fn exists(&self) -> bool {
        self.status != TaskStatus::None
    }

    /// Whether the task reached a final status (validated, aborted, errored, cancelled or expired).
    pub fn is_terminal(&self) -> bool {
        self.status.is_final()
    }

    /// Whether three nodes were selected.
    pub fn started(&self) -> bool {
        !self.nodes[0].is_zero()
    }

    /// Nodes that committed.
    pub fn committed(&self) -> u32 {
        self.committed_mask.count_ones()
    }

    /// Nodes that revealed.
    pub fn revealed(&self) -> u32 {
        self.revealed_mask.count_ones()
    }

    /// The slot (0..3) of `node` in this task, if it was selected.
    pub fn slot_of(&self, node: Address) -> Option<usize> {
        self.nodes.iter().position(|&selected| selected == node)
    }
}

/// The settlement of a task (`TaskSettled`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    /// Validated, Aborted or Errored.
    pub outcome: TaskStatus,
    /// Bit i: node i agreed with another node and was paid.
    pub agreeing_mask: u8,
    /// Pairwise distances, pairs (0,1), (0,2), (1,2); per image (pair-major) for image tasks,
    /// one per pair for text tasks; [`crate::NO_RESULT`] where a side has no result.
    pub distances: Vec<u16>,
    /// The Hamming threshold image distances were judged against.
    pub threshold: u8,
    /// Fee share paid into each agreeing node's stake.
    pub reward_per_node: u128,
}

impl Settlement {
    /// Distances of the pair `(a, b)` (`a < b`, slots 0..3): one per image, or one for text.
    pub fn pair_distances(&self, a: usize, b: usize) -> &[u16] {
        let pair = match (a, b) {
            (0, 1) => 0,
            (0, 2) => 1,
            (1, 2) => 2,
            _ => return &[],
        };
        let per_pair = self.distances.len() / 3;
        self.distances
            .get(pair * per_pair..(pair + 1) * per_pair)
            .unwrap_or(&[])
    }
}
