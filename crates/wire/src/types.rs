//! JSON bodies of the relayer API's answers, shared by the server and [`crate::RelayerClient`].
//!
//! Token amounts (uint96) are decimal strings and pHashes are `0x` + 16 hex digits, so JavaScript
//! clients read them exactly.

use alloy_primitives::{Address, B256};
use serde::{Deserialize, Serialize};
use verinfer_abi::{CreditReason, IVerinfer, NodeState, TaskKind, TaskStatus, ValidationMode};
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
    /// The registered name of [`Self::gpu_model`] (text tasks; `None` for image tasks, or when
    /// the relayer has not indexed the registry).
    #[serde(default)]
    pub gpu_model_name: Option<String>,
    /// Highest node fee tier the fee pays for (a node of tier t is drawn only for fees of at
    /// least 2^t times the minimum; `None` when the relayer does not know the task's parameters).
    #[serde(default)]
    pub fee_level: Option<u8>,
    /// The parameter version the task runs under (`None`: not indexed).
    #[serde(default)]
    pub params_version: Option<u32>,
    /// When the task expires if it is still queued then (unix seconds; `None`: not known).
    #[serde(default)]
    pub expires_at: Option<u64>,
    /// The block whose hash seeded the draw that started the task (once started).
    #[serde(default)]
    pub seed_block: Option<u64>,
    /// What settling or expiring the task credited, in chain order: the refunded fee (aborted,
    /// errored, expired), returned stakes of the nodes it slashed or that left, slash rewards.
    /// Credits are withdrawn by their accounts (`withdraw`).
    #[serde(default)]
    pub credits: Vec<CreditView>,
    /// How the result is (or was) validated: by three nodes, or by one node accepted unchecked
    /// at sampling rate p (`None`: a relayer from before sampled validation).
    #[serde(default)]
    pub validation: Option<ValidationView>,
}

/// How a task's result is validated, in `GET /v1/tasks/{id}` and `GET /v1/tasks/{id}/results`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationView {
    /// `full` (three nodes compute from the start) or `sampled` (one node computes; after its
    /// commitment a later block's hash decides, with probability p, whether two more check it).
    pub mode: ValidationMode,
    /// Whether the result is (or was) compared among three nodes: `true` for every full task and
    /// for a sampled task chosen for a check, `false` for a sampled task accepted unchecked (one
    /// node's result), `None` while a sampled task's draw is still to come (or never ran).
    pub checked: Option<bool>,
    /// Sampled tasks: the sampling rate p of the task's parameter version, basis points (`None`
    /// for full tasks, or when the relayer has not indexed the task's parameters).
    pub sampling_bps: Option<u16>,
    /// Sampled tasks: the block whose hash decides the check, once the first node committed.
    pub sample_block: Option<u64>,
    /// Sampled tasks: the block of the sample draw, once it ran.
    pub decided_block: Option<u64>,
    /// Checked sampled tasks: the two checkers (the task's nodes 1 and 2), once drawn.
    pub checkers: Vec<Address>,
    /// Checked sampled tasks: the block whose hash seeded the checkers' draw.
    pub check_seed_block: Option<u64>,
    /// The same in a plain sentence, for example `checked by three nodes (full validation)` or
    /// `sampled at p = 5%: accepted unchecked (one node's result, not compared)`.
    pub summary: String,
}

/// One credit to a withdrawable balance (`BalanceCredited`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditView {
    /// Who may withdraw it.
    pub account: Address,
    /// The task that caused it (`None`: a node evicted below the minimum stake by a draw).
    pub task_id: Option<u64>,
    /// `stake_returned`, `fee_refunded` or `slash_reward`.
    pub reason: CreditReason,
    /// Amount (decimal).
    pub amount: String,
    /// Block of the credit.
    pub block: u64,
}

/// `GET /v1/accounts/{address}` answer: an account's withdrawable balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountView {
    /// The account.
    pub address: Address,
    /// Withdrawable now (`claimable(address)`; decimal).
    pub claimable: String,
    /// Credited in total (decimal).
    pub credited: String,
    /// Withdrawn in total (decimal).
    pub withdrawn: String,
    /// Every credit, in chain order.
    pub credits: Vec<CreditView>,
}

/// A registered GPU model in `GET /v1/gpu-models`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuModelView {
    /// keccak256 of the normalised name.
    pub id: B256,
    /// The normalised name (what nodes declare and text tasks name, in any case and spacing).
    pub name: String,
    /// VRAM every card of the model has, MiB.
    pub vram_mib: u32,
    /// Open to new nodes.
    pub active: bool,
    /// Available nodes of the model (all fee tiers).
    pub available_nodes: u32,
}

/// `GET /v1/gpu-models` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuModelsView {
    /// The registry in registration order.
    pub models: Vec<GpuModelView>,
}

/// A parameter version's values (`IVerinfer.Params`); amounts are decimal strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamsValues {
    /// Hamming threshold of image results, bits.
    pub threshold: u8,
    /// Smallest pool of available nodes a text task is drawn from.
    pub min_text_pool: u8,
    /// Share of its stake a misbehaving node loses, basis points.
    pub slash_share_bps: u16,
    /// Share of each slash paid to the agreeing nodes (or the creator), basis points.
    pub slash_reward_bps: u16,
    /// Protocol's share of a validated task's fee, basis points.
    pub protocol_fee_bps: u16,
    /// Seconds to commit, from the start.
    pub commit_window: u32,
    /// Seconds to reveal, from the last commit (or the commit deadline).
    pub reveal_window: u32,
    /// Seconds a task may wait for nodes before it expires.
    pub queue_timeout: u32,
    /// Smallest stake of a node.
    pub min_stake: String,
    /// Stake each bit of threshold costs.
    pub stake_per_threshold_bit: String,
    /// Smallest fee of any task.
    pub min_task_fee: String,
    /// Smallest fee added per image.
    pub min_image_fee: String,
    /// Sampling rate p of sampled tasks, basis points: the chance that two more nodes check a
    /// sampled task's result (0 in a version from before sampled validation).
    #[serde(default)]
    pub sampling_bps: u16,
}

impl From<&IVerinfer::Params> for ParamsValues {
    fn from(p: &IVerinfer::Params) -> Self {
        Self {
            threshold: p.threshold,
            min_text_pool: p.minTextPool,
            slash_share_bps: p.slashShareBps,
            slash_reward_bps: p.slashRewardBps,
            protocol_fee_bps: p.protocolFeeBps,
            commit_window: p.commitWindow,
            reveal_window: p.revealWindow,
            queue_timeout: p.queueTimeout,
            min_stake: p.minStake.to_string(),
            stake_per_threshold_bit: p.stakePerThresholdBit.to_string(),
            min_task_fee: p.minTaskFee.to_string(),
            min_image_fee: p.minImageFee.to_string(),
            sampling_bps: p.samplingBps,
        }
    }
}

impl ParamsValues {
    /// The smallest fee of a task of `kind` with `image_count` images under these values
    /// (`minTaskFee(kind, imageCount)`); `None` when an amount does not parse.
    pub fn min_fee(&self, kind: TaskKind, image_count: u8) -> Option<u128> {
        let task: u128 = self.min_task_fee.parse().ok()?;
        let image: u128 = self.min_image_fee.parse().ok()?;
        Some(match kind {
            TaskKind::Image => task + image * u128::from(image_count),
            TaskKind::Text => task,
        })
    }
}

/// One parameter version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamsVersionView {
    /// Version number (1: the constructor's).
    pub version: u32,
    /// Its values.
    pub params: ParamsValues,
    /// When it took or takes effect (unix seconds).
    pub effective_at: u64,
}

/// `GET /v1/params` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamsView {
    /// The version tasks created now run under (as the contract's `params()`: a scheduled
    /// version counts from its effective time, before the first call after it activates it).
    pub in_force: ParamsVersionView,
    /// The version announced and not in force yet (`scheduledParams()`).
    pub scheduled: Option<ParamsVersionView>,
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
    /// Normalised GPU model name (the registry's).
    pub gpu_model_name: String,
    /// VRAM of the model (the registry's).
    pub vram_mib: u32,
    /// VRAM class, log2 of the GiB (0..=7).
    pub tier: u8,
    /// Current task, if busy.
    pub task_id: Option<u64>,
    /// Block of the latest event.
    pub updated_block: u64,
    /// Fee tier: drawn only for tasks paying at least 2^fee_tier times the minimum fee.
    #[serde(default)]
    pub fee_tier: u8,
    /// What the node's account may withdraw (returned stake, slash rewards; decimal).
    #[serde(default = "zero")]
    pub claimable: String,
}

fn zero() -> String {
    "0".to_owned()
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
    /// How the results were validated: compared among three nodes, or one node's result
    /// accepted unchecked at sampling rate p (`None`: a relayer from before sampled validation).
    #[serde(default)]
    pub validation: Option<ValidationView>,
}

/// `GET /healthz` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthView {
    /// `ok` or `unhealthy`.
    pub status: String,
    /// `ok` or the database error.
    pub database: String,
    /// `ok` (this process indexes), `standby` (another relayer replica on the same PostgreSQL
    /// database indexes), `disabled` (no rpc_url) or why it is unhealthy.
    pub indexer: String,
    /// Last indexed block.
    pub indexed_head: Option<u64>,
    /// Chain head seen at the last poll.
    pub chain_head: Option<u64>,
}

/// `GET /v1/calibration` answer: the pairwise pHash distances of recent validated image tasks,
/// grouped by the pair of GPU models (and the precision) that produced them, against the
/// threshold in force, and the threshold the data suggest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalibrationView {
    /// Hamming threshold in force, bits: two images agree when their pHashes differ in at most
    /// this many bits (`None` before any parameter version is indexed).
    pub threshold: Option<u8>,
    /// Stake each bit of threshold costs (decimal; `None` like `threshold`): the contract requires
    /// `minStake >= stakePerThresholdBit * threshold`.
    pub stake_per_threshold_bit: Option<String>,
    /// Smallest stake of a node in force (decimal; `None` like `threshold`).
    pub min_stake: Option<String>,
    /// Validated image tasks read (the most recent ones, by task id).
    pub tasks_read: u64,
    /// Most tasks one calibration reads.
    pub max_tasks: u64,
    /// Whether more validated image tasks exist than were read (`tasks_read == max_tasks`).
    pub capped: bool,
    /// Distances counted, over all groups (pairs where a side had no result are left out).
    pub pairs: u64,
    /// One entry per (GPU model pair, precision), most pairs first.
    pub groups: Vec<CalibrationGroup>,
    /// The threshold the data suggest, and why.
    pub suggestion: ThresholdSuggestion,
}

/// The distances between the results of one pair of GPU models at one precision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalibrationGroup {
    /// The two nodes' GPU model names (the registry's), sorted; equal when both nodes run the same
    /// model. `unknown` for a node the index does not know.
    pub gpu_models: [String; 2],
    /// The args' precision (`f32`, `f16`, `bf16`); `None` when the relayer did not read the args
    /// (uploaded before it recorded precisions, or never uploaded to it).
    pub precision: Option<String>,
    /// Distances counted (one per image and pair of nodes).
    pub pairs: u64,
    /// `histogram[d]`: pairs at distance `d` bits, for `d` in `0..=64` (65 counts).
    pub histogram: Vec<u64>,
    /// Pairs farther apart than the threshold in force (0 when it is unknown): results of the
    /// same task the contract judges as disagreeing.
    pub above_threshold: u64,
    /// Pairs at distance at most 20 bits: taken as renderings of the same image (pHashes of
    /// unrelated images lie about 32 ± 4 bits apart).
    pub same_image_pairs: u64,
    /// Median distance, bits.
    pub p50: u8,
    /// 90th percentile of the distance, bits.
    pub p90: u8,
    /// 99th percentile of the distance, bits.
    pub p99: u8,
    /// Largest distance, bits.
    pub max: u8,
    /// This group's own suggestion: the smallest threshold accepting at least 99.9 % of its
    /// same-image pairs (`None` with fewer than 30 of them).
    pub suggested_threshold: Option<u8>,
}

/// The threshold suggested by `GET /v1/calibration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThresholdSuggestion {
    /// The suggested threshold, bits (`None` when too few pairs were read to suggest one).
    pub threshold: Option<u8>,
    /// The rule, in words.
    pub rule: String,
    /// Why this value (which group decides it, how it compares with the threshold in force), or
    /// why there is none.
    pub reason: String,
    /// The minimum stake the suggested threshold needs, `stakePerThresholdBit * threshold`
    /// (decimal; `None` without a suggestion or known parameters).
    pub min_stake_needed: Option<String>,
    /// Whether the `minStake` in force already covers `min_stake_needed` (`None` like it); when
    /// `false`, the parameter version raising the threshold must raise `minStake` too.
    pub min_stake_sufficient: Option<bool>,
}
