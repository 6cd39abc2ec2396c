//! The API's answers: the types are `verinfer-wire`'s (shared with every client); this module
//! builds them from the stored records.

use alloy_primitives::Address;
pub use verinfer_wire::types::*;

use crate::store::{NodeRecord, TaskNodeRecord, TaskRecord};

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

/// `GET /v1/tasks/{id}`'s answer from the stored records.
pub fn task_view(
    task: &TaskRecord,
    nodes: &[TaskNodeRecord],
    uploaded: &[Address],
    args_available: bool,
) -> TaskView {
    let settled_mask = task.settlement.as_ref().map(|s| s.agreeing_mask);
    TaskView {
        task_id: task.task_id,
        kind: task.kind,
        status: task.status,
        creator: task.creator,
        image_count: task.image_count,
        min_vram_mib: task.min_vram_mib,
        args_hash: task.args_hash,
        args_available,
        gpu_model: task.gpu_model,
        fee: task.fee.to_string(),
        queue_key: task.queue_key,
        nodes: nodes
            .iter()
            .map(|record| task_node_view(record, settled_mask, uploaded.contains(&record.node)))
            .collect(),
        committed_mask: task.committed_mask,
        revealed_mask: task.revealed_mask,
        invalid_mask: task.invalid_mask,
        commit_deadline: task.commit_deadline,
        reveal_deadline: task.reveal_deadline,
        settlement: task.settlement.as_ref().map(|s| SettlementView {
            outcome: task.status,
            agreeing_mask: s.agreeing_mask,
            distances: s.distances.clone(),
            threshold: s.threshold,
            reward_per_node: s.reward_per_node.to_string(),
        }),
        created_block: task.created_block,
        updated_block: task.updated_block,
    }
}

/// A node in `GET /v1/nodes`, from its stored record.
pub fn node_view(node: &NodeRecord) -> NodeView {
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
    }
}
