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
