//! The API's answers: the types are `verinfer-wire`'s (shared with every client); this module
//! builds them from the stored records.

use alloy_primitives::Address;
use verinfer_abi::{TaskStatus, Validation, ValidationMode, format_bps};
pub use verinfer_wire::types::*;

use crate::store::{
    AccountRecord, CreditRecord, GpuModelRecord, NodeRecord, ParamsRecord, TaskNodeRecord,
    TaskRecord,
};

/// One selected node of a task, from its stored record.
pub fn task_node_view(
    record: &TaskNodeRecord,
    settled_mask: Option<u8>,
    uploaded: bool,
) -> TaskNodeView {
    TaskNodeView {
        slot: record.slot,
        node: record.node,
        commitment: record.commitment,
        phashes: record
            .phashes
            .as_ref()
            .map(|phashes| phashes.iter().copied().map(phash_hex).collect()),
        text_digest: record.text_digest,
        invalid_args: record.invalid_args,
        agreed: settled_mask.map(|mask| mask & (1 << record.slot) != 0),
        uploaded,
    }
}

/// What `GET /v1/tasks/{id}` shows beside the task's own record.
#[derive(Debug, Clone, Default)]
pub struct TaskContext {
    /// The registered name of the task's GPU model.
    pub gpu_model_name: Option<String>,
    /// What settling or expiring the task credited.
    pub credits: Vec<CreditRecord>,
}

/// One credit.
pub fn credit_view(credit: &CreditRecord) -> CreditView {
    CreditView {
        account: credit.account,
        task_id: (credit.task_id != 0).then_some(credit.task_id),
        reason: credit.reason,
        amount: credit.amount.to_string(),
        block: credit.block,
    }
}

/// `GET /v1/accounts/{address}`'s answer.
pub fn account_view(
    address: Address,
    account: &AccountRecord,
    credits: &[CreditRecord],
) -> AccountView {
    AccountView {
        address,
        claimable: account.claimable.to_string(),
        credited: account.credited.to_string(),
        withdrawn: account.withdrawn.to_string(),
        credits: credits.iter().map(credit_view).collect(),
    }
}

/// A registered GPU model.
pub fn gpu_model_view(model: &GpuModelRecord) -> GpuModelView {
    GpuModelView {
        id: model.id,
        name: model.name.clone(),
        vram_mib: model.vram_mib,
        active: model.active,
        available_nodes: model.available_nodes,
    }
}

/// A parameter version.
pub fn params_version_view(record: &ParamsRecord) -> ParamsVersionView {
    ParamsVersionView {
        version: record.version,
        params: ParamsValues::from(&record.params),
        effective_at: record.effective_at,
    }
}

/// `GET /v1/params`'s answer at unix time `now`: the scheduled version is in force once its
/// effective time has come, as the contract's `params()` says (it is activated by the first
/// call after that); `None` when no version is indexed.
pub fn params_view(
    active: Option<&ParamsRecord>,
    scheduled: Option<&ParamsRecord>,
    now: u64,
) -> Option<ParamsView> {
    match (active, scheduled) {
        (_, Some(scheduled)) if scheduled.effective_at <= now => Some(ParamsView {
            in_force: params_version_view(scheduled),
            scheduled: None,
        }),
        (Some(active), scheduled) => Some(ParamsView {
            in_force: params_version_view(active),
            scheduled: scheduled.map(params_version_view),
        }),
        (None, _) => None,
    }
}

/// `GET /v1/tasks/{id}`'s answer from the stored records.
pub fn task_view(
    task: &TaskRecord,
    nodes: &[TaskNodeRecord],
    uploaded: &[Address],
    args_available: bool,
    context: &TaskContext,
) -> TaskView {
    let settled_mask = task.settlement.as_ref().map(|s| s.agreeing_mask);
    let chain = &task.chain;
    TaskView {
        task_id: chain.task_id,
        kind: chain.kind,
        status: chain.status,
        creator: chain.creator,
        image_count: chain.image_count,
        min_vram_mib: chain.min_vram_mib,
        args_hash: chain.args_hash,
        args_available,
        gpu_model: chain.gpu_model,
        fee: chain.fee.to_string(),
        queue_key: task.queue_key,
        nodes: nodes
            .iter()
            .map(|record| task_node_view(record, settled_mask, uploaded.contains(&record.node)))
            .collect(),
        committed_mask: chain.committed_mask,
        revealed_mask: chain.revealed_mask,
        invalid_mask: chain.invalid_mask,
        commit_deadline: chain.commit_deadline,
        reveal_deadline: chain.reveal_deadline,
        settlement: task.settlement.as_ref().map(|s| SettlementView {
            outcome: s.outcome,
            agreeing_mask: s.agreeing_mask,
            distances: s.distances.clone(),
            threshold: s.threshold,
            reward_per_node: s.reward_per_node.to_string(),
        }),
        created_block: task.created_block,
        updated_block: task.updated_block,
        gpu_model_name: context.gpu_model_name.clone(),
        fee_level: (chain.params_version != 0).then_some(chain.fee_level),
        params_version: (chain.params_version != 0).then_some(chain.params_version),
        expires_at: (chain.expires_at != 0).then_some(chain.expires_at),
        seed_block: task.seed_block,
        credits: context.credits.iter().map(credit_view).collect(),
        validation: Some(validation_view(task)),
    }
}

/// How the task's result is (or was) validated: by three nodes, or by one node accepted
/// unchecked at sampling rate p, with a plain sentence saying which.
pub fn validation_view(task: &TaskRecord) -> ValidationView {
    let chain = &task.chain;
    let sampled = chain.mode == ValidationMode::Sampled;
    let checkers = if sampled && chain.checked {
        chain.nodes[1..]
            .iter()
            .copied()
            .filter(|node| !node.is_zero())
            .collect()
    } else {
        Vec::new()
    };
    ValidationView {
        mode: chain.mode,
        checked: task.checked_by_three(),
        sampling_bps: task.sampling_bps.filter(|_| sampled),
        sample_block: (sampled && chain.sample_block != 0).then_some(chain.sample_block),
        decided_block: task.sample_decided_block.filter(|_| sampled),
        checkers,
        check_seed_block: task.check_seed_block.filter(|_| sampled),
        summary: validation_summary(task),
    }
}

/// The plain sentence of [`validation_view`]: `verinfer-abi`'s wording
/// ([`Validation::describe`], which the client and the CLI show too) where it says all, more
/// where the index knows more (the block that decides, a check waiting or expired, a draw that
/// ran before the task ended).
fn validation_summary(task: &TaskRecord) -> String {
    let chain = &task.chain;
    let validation = chain.validation();
    if chain.mode == ValidationMode::Full {
        return validation.describe(None);
    }
    let prefix = task.sampling_bps.map_or_else(
        || "sampled".to_owned(),
        |bps| format!("sampled at p = {}", format_bps(bps)),
    );
    let status = chain.status;
    let decided = task.sample_decided_block.is_some();
    let detail = match (decided, chain.checked, status) {
        (_, true, TaskStatus::CheckQueued) => {
            "chosen for a check; waiting for two checker nodes, after which the three results \
             are compared"
                .to_owned()
        }
        (_, true, TaskStatus::Committing | TaskStatus::Revealing) => {
            "chosen for a check; two checker nodes compute it, then the three results are \
             compared"
                .to_owned()
        }
        (_, true, TaskStatus::Expired) => "chosen for a check, but no two checkers were found \
             before it expired: no result was accepted and the fee was refunded"
            .to_owned(),
        (_, true, _) => return validation.describe(task.sampling_bps),
        (true, false, TaskStatus::Validated) => {
            return Validation::SampledUnchecked.describe(task.sampling_bps);
        }
        (true, false, TaskStatus::Revealing) => "not chosen for a check: the first node's \
             result will be accepted unchecked (one node's result, not compared) once revealed"
            .to_owned(),
        (true, false, status) => format!(
            "not chosen for a check; ended {} without an accepted result",
            status.wire_name()
        ),
        (false, false, TaskStatus::AwaitingSample) if chain.sample_block != 0 => format!(
            "the first node committed; the hash of block {} decides whether two more nodes \
             check it",
            chain.sample_block
        ),
        (false, false, TaskStatus::None | TaskStatus::Queued | TaskStatus::Committing) => {
            "one node computes; after its commitment a later block's hash decides whether two \
             more nodes check it"
                .to_owned()
        }
        _ => return validation.describe(task.sampling_bps),
    };
    format!("{prefix}: {detail}")
}

/// A node in `GET /v1/nodes`, from its stored record and what its account may withdraw.
pub fn node_view(node: &NodeRecord, claimable: u128) -> NodeView {
    NodeView {
        address: node.address,
        node_id: node.node_id,
        state: node.state,
        stake: node.stake.to_string(),
        gpu_model: node.gpu_model,
        gpu_model_name: node.gpu_model_name.clone(),
        vram_mib: node.vram_mib,
        tier: node.tier(),
        task_id: (node.task_id != 0).then_some(node.task_id),
        updated_block: node.updated_block,
        fee_tier: node.fee_tier,
        claimable: claimable.to_string(),
    }
}
