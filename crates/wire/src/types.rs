//! JSON bodies of the relayer API's answers, shared by the server and [`crate::RelayerClient`].
//!
//! Token amounts (uint96) are decimal strings and pHashes are `0x` + 16 hex digits, so JavaScript
//! clients read them exactly.

use alloy_primitives::{Address, B256};
use serde::{Deserialize, Serialize};
use verinfer_abi::{NodeState, TaskKind, TaskStatus};
use verinfer_task::TextOutput;

/// `0x` + 16 lowercase hex digits.
pub fn phash_hex(phash: u64) -> String {
    format!("{phash:#018x}")
}

/// `POST /v1/args` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArgsUploaded {
    /// keccak256 of the uploaded bytes: the `argsHash` to create the task with.
    pub args_hash: B256,
    /// `false` when the same bytes were stored before.
    pub created: bool,
}

/// `POST /v1/tasks/{id}/results` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadAccepted {
    /// Task id.
    pub task_id: u64,
    /// The node whose upload was accepted.
    pub node: Address,
    /// The signed payload hash.
    pub payload_hash: B256,
    /// `false` when this exact upload was stored before.
    pub created: bool,
}

/// One selected node of a task, in `GET /v1/tasks/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskNodeView {
    /// Position 0..3.
    pub slot: u8,
    /// The node.
    pub node: Address,
    /// Its commitment, once committed.
    pub commitment: Option<B256>,
    /// Revealed pHashes (image tasks).
    pub phashes: Option<Vec<String>>,
    /// Revealed digest (text tasks).
    pub text_digest: Option<B256>,
    /// It reported invalid args.
    pub invalid_args: bool,
    /// Agreed with another node (`None` until settled).
    pub agreed: Option<bool>,
    /// The relayer holds its verified upload.
    pub uploaded: bool,
}

/// A task's settlement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettlementView {
    /// `validated`, `aborted` or `errored`.
    pub outcome: TaskStatus,
    /// Bit i: node i agreed and was paid.
    pub agreeing_mask: u8,
    /// Pairwise distances (pairs (0,1), (0,2), (1,2); per image for image tasks; 65535 = no result).
    pub distances: Vec<u16>,
    /// Hamming threshold used.
    pub threshold: u8,
    /// Reward paid to each agreeing node (decimal).
    pub reward_per_node: String,
}

/// `GET /v1/tasks/{id}` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskView {
    /// Task id.
    pub task_id: u64,
    /// `image` or `text`.
    pub kind: TaskKind,
    /// Current status.
    pub status: TaskStatus,
    /// Creator.
    pub creator: Address,
    /// Images (0 for text).
    pub image_count: u8,
    /// VRAM each node needs.
    pub min_vram_mib: u32,
    /// keccak256 of the args bytes.
    pub args_hash: B256,
    /// The relayer holds the args bytes.
    pub args_available: bool,
    /// GPU model id required of text tasks (zero: any).
    pub gpu_model: B256,
    /// Escrowed fee (decimal).
    pub fee: String,
    /// Queue key while queued.
    pub queue_key: Option<B256>,
    /// Selected nodes with their commitments and reveals.
    pub nodes: Vec<TaskNodeView>,
    /// Bit i: node i committed.
    pub committed_mask: u8,
    /// Bit i: node i revealed.
    pub revealed_mask: u8,
    /// Bit i: node i reported invalid args.
    pub invalid_mask: u8,
    /// Commit deadline (unix seconds, 0 before start).
    pub commit_deadline: u32,
    /// Reveal deadline (unix seconds, 0 before start).
    pub reveal_deadline: u32,
    /// Settlement, once settled.
    pub settlement: Option<SettlementView>,
    /// Block of `TaskCreated`.
    pub created_block: u64,
    /// Block of the latest event.
    pub updated_block: u64,
}

/// A node in `GET /v1/nodes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeView {
    /// Staking address.
    pub address: Address,
    /// Node id.
    pub node_id: u32,
    /// State.
    pub state: NodeState,
    /// Stake (decimal).
    pub stake: String,
    /// Normalised GPU model id.
    pub gpu_model: B256,
    /// Normalised GPU model name.
    pub gpu_model_name: String,
    /// Declared VRAM.
    pub vram_mib: u32,
    /// VRAM tier.
    pub tier: u8,
    /// Current task, if busy.
    pub task_id: Option<u64>,
    /// Block of the latest event.
    pub updated_block: u64,
}

/// `GET /v1/nodes` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodesView {
    /// Nodes ordered by id.
    pub nodes: Vec<NodeView>,
    /// Offset asked for.
    pub offset: u64,
    /// Limit applied.
    pub limit: u64,
}

/// One image of a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageView {
    /// keccak256 of the PNG bytes.
    pub keccak256: B256,
    /// Its pHash (equal to the node's revealed one).
    pub phash: String,
    /// Where to download the PNG: `/v1/blobs/{keccak256}`.
    pub url: String,
    /// The PNG, base64, when asked for with `?inline=true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub png_base64: Option<String>,
}

/// One agreeing node's verified upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeResultView {
    /// The node.
    pub node: Address,
    /// Its slot.
    pub slot: u8,
    /// Signed payload hash.
    pub payload_hash: B256,
    /// The node's EIP-712 signature.
    pub signature: String,
    /// Revealed pHashes (image tasks).
    pub revealed_phashes: Option<Vec<String>>,
    /// Revealed digest (text tasks).
    pub revealed_digest: Option<B256>,
    /// The PNGs (image tasks).
    pub images: Option<Vec<ImageView>>,
    /// The text output (text tasks).
    pub output: Option<TextOutput>,
}

/// `GET /v1/tasks/{id}/results` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskResultsView {
    /// Task id.
    pub task_id: u64,
    /// `image` or `text`.
    pub kind: TaskKind,
    /// Agreeing nodes' verified uploads, by slot.
    pub results: Vec<NodeResultView>,
    /// Agreeing nodes whose upload the relayer does not hold yet.
    pub pending_nodes: Vec<Address>,
}

/// `GET /healthz` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthView {
    /// `ok` or `unhealthy`.
    pub status: String,
    /// `ok` or the database error.
    pub database: String,
    /// `ok`, `disabled` (no rpc_url) or why it is unhealthy.
    pub indexer: String,
    /// Last indexed block.
    pub indexed_head: Option<u64>,
    /// Chain head seen at the last poll.
    pub chain_head: Option<u64>,
}
