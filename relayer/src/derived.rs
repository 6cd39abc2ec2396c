//! Derived state: tasks, their nodes' commitments and reveals, and nodes, folded from events in
//! chain order. The fold mirrors `Verinfer.sol`, including the state changes it makes without an
//! event of their own (a settled task's nodes become Available again).

use alloy_primitives::{Address, B256};
use sqlx::AnyConnection;

use crate::{
    events::{NodeState, TaskStatus, VerinferEvent},
    store::{
        NodeRecord, Settlement, StoreError, TaskNodeRecord, TaskRecord, load_node, load_task,
        load_task_nodes, save_node, save_task, save_task_node,
    },
};

/// The contract's `INVALID_ARGS`: `keccak256("verinfer.invalid-args.v1")`.
pub fn invalid_args_digest() -> B256 {
    alloy_primitives::keccak256("verinfer.invalid-args.v1")
}

/// Applies one event at `block` to the derived tables.
pub(crate) async fn apply(
    conn: &mut AnyConnection,
    block: u64,
    event: &VerinferEvent,
) -> Result<(), StoreError> {
    use VerinferEvent as E;
    match event {
        E::NodeJoined {
            node,
            node_id,
            gpu_model,
            gpu_model_name,
            vram_mib,
            stake,
        } => {
            save_node(
                conn,
                &NodeRecord {
                    address: *node,
                    node_id: *node_id,
                    state: NodeState::Available,
                    stake: *stake,
                    gpu_model: *gpu_model,
                    gpu_model_name: gpu_model_name.clone(),
                    vram_mib: *vram_mib,
                    task_id: 0,
                    updated_block: block,
                },
            )
            .await?;
        }
        E::StakeAdded {
            node, new_stake, ..
        } => {
            update_node(conn, *node, block, |n| n.stake = *new_stake).await?;
        }
        E::NodeLeaving { node, .. } => {
            update_node(conn, *node, block, |n| n.state = NodeState::Leaving).await?;
        }
        E::NodeExited { node, .. } => {
            update_node(conn, *node, block, |n| {
                n.state = NodeState::None;
                n.stake = 0;
                n.task_id = 0;
            })
            .await?;
        }
        E::NodeSlashed { node, amount, .. } => {
            update_node(conn, *node, block, |n| {
                n.stake = n.stake.saturating_sub(*amount)
            })
            .await?;
        }
        E::NodeKicked { node, .. } => {
            update_node(conn, *node, block, |n| {
                n.state = NodeState::Kicked;
                n.stake = 0;
                n.task_id = 0;
            })
            .await?;
        }
        E::NodeRewarded { node, amount, .. } => {
            update_node(conn, *node, block, |n| {
                n.stake = n.stake.saturating_add(*amount)
            })
            .await?;
        }
        E::TaskCreated {
            task_id,
            creator,
            kind,
            args_hash,
            image_count,
            min_vram_mib,
            gpu_model,
            fee,
        } => {
            save_task(
                conn,
                &TaskRecord {
                    task_id: *task_id,
                    creator: *creator,
                    kind: *kind,
                    status: TaskStatus::Created,
                    image_count: *image_count,
                    min_vram_mib: *min_vram_mib,
                    args_hash: *args_hash,
                    gpu_model: *gpu_model,
                    fee: *fee,
                    queue_key: None,
                    nodes: None,
                    committed_mask: 0,
                    revealed_mask: 0,
                    invalid_mask: 0,
                    commit_deadline: 0,
                    reveal_deadline: 0,
                    settlement: None,
                    created_block: block,
                    updated_block: block,
                },
            )
            .await?;
        }
        E::TaskQueued { task_id, queue_key } => {
            update_task(conn, *task_id, block, |t| {
                t.status = TaskStatus::Queued;
                t.queue_key = Some(*queue_key);
            })
            .await?;
        }
        E::TaskStarted {
            task_id,
            nodes,
            commit_deadline,
            reveal_deadline,
        } => {
            update_task(conn, *task_id, block, |t| {
                t.status = TaskStatus::Committing;
                t.queue_key = None;
                t.nodes = Some(*nodes);
                t.commit_deadline = *commit_deadline;
                t.reveal_deadline = *reveal_deadline;
            })
            .await?;
            for (slot, node) in nodes.iter().enumerate() {
                save_task_node(
                    conn,
                    &TaskNodeRecord {
                        task_id: *task_id,
                        slot: slot as u8,
                        node: *node,
                        commitment: None,
                        phashes: None,
                        text_digest: None,
                        invalid_args: false,
                    },
                )
                .await?;
                update_node(conn, *node, block, |n| {
                    n.state = NodeState::Busy;
                    n.task_id = *task_id;
                })
                .await?;
            }
        }
        E::TaskCancelled { task_id } => {
            update_task(conn, *task_id, block, |t| {
                t.status = TaskStatus::Cancelled;
                t.queue_key = None;
            })
            .await?;
        }
        E::ResultCommitted {
            task_id,
            node,
            commitment,
        } => {
            let slot =
                update_slot(conn, *task_id, *node, |r| r.commitment = Some(*commitment)).await?;
            update_task(conn, *task_id, block, |t| t.committed_mask |= bit(slot)).await?;
        }
        E::RevealPhaseOpened {
            task_id,
            reveal_deadline,
        } => {
            update_task(conn, *task_id, block, |t| {
                t.status = TaskStatus::Revealing;
                t.reveal_deadline = *reveal_deadline;
            })
            .await?;
        }
        E::ImageResultRevealed {
            task_id,
            node,
            phashes,
        } => {
            let slot =
                update_slot(conn, *task_id, *node, |r| r.phashes = Some(phashes.clone())).await?;
            update_task(conn, *task_id, block, |t| t.revealed_mask |= bit(slot)).await?;
        }
        E::TextResultRevealed {
            task_id,
            node,
            digest,
        } => {
            let slot =
                update_slot(conn, *task_id, *node, |r| r.text_digest = Some(*digest)).await?;
            update_task(conn, *task_id, block, |t| t.revealed_mask |= bit(slot)).await?;
        }
        E::InvalidArgsReported { task_id, node } => {
            // `reportInvalidArgs` emits no reveal event of its own: this one is the reveal.
            let slot = update_slot(conn, *task_id, *node, |r| r.invalid_args = true).await?;
            update_task(conn, *task_id, block, |t| {
                t.revealed_mask |= bit(slot);
                t.invalid_mask |= bit(slot);
            })
            .await?;
        }
        E::TaskSettled {
            task_id,
            outcome,
            agreeing_mask,
            distances,
            threshold,
            reward_per_node,
        } => {
            let task = update_task(conn, *task_id, block, |t| {
                t.status = *outcome;
                t.settlement = Some(Settlement {
                    agreeing_mask: *agreeing_mask,
                    distances: distances.clone(),
                    threshold: *threshold,
                    reward_per_node: *reward_per_node,
                });
            })
            .await?;
            // The contract releases every node still busy with this task (no event); slashes,
            // kicks and exits follow as their own events and override this.
            if let Some(nodes) = task.and_then(|t| t.nodes) {
                for node in nodes {
                    update_node(conn, node, block, |n| {
                        if n.state == NodeState::Busy && n.task_id == *task_id {
                            n.state = NodeState::Available;
                            n.task_id = 0;
                        }
                    })
                    .await?;
                }
            }
        }
        E::Other { .. } => {}
    }
    Ok(())
}

fn bit(slot: u8) -> u8 {
    1u8.checked_shl(u32::from(slot)).unwrap_or(0)
}

async fn update_task(
    conn: &mut AnyConnection,
    task_id: u64,
    block: u64,
    change: impl FnOnce(&mut TaskRecord),
) -> Result<Option<TaskRecord>, StoreError> {
    let Some(mut task) = load_task(conn, task_id).await? else {
        // Only when indexing started after the task was created: nothing to update.
        tracing::warn!(task_id, "event for a task the index has not seen created");
        return Ok(None);
    };
    change(&mut task);
    task.updated_block = block;
    save_task(conn, &task).await?;
    Ok(Some(task))
}

async fn update_node(
    conn: &mut AnyConnection,
    address: Address,
    block: u64,
    change: impl FnOnce(&mut NodeRecord),
) -> Result<(), StoreError> {
    let Some(mut node) = load_node(conn, address).await? else {
        tracing::warn!(%address, "event for a node the index has not seen join");
        return Ok(());
    };
    change(&mut node);
    node.updated_block = block;
    save_node(conn, &node).await
}

/// Updates `node`'s slot record of `task_id`; returns the slot (8 = not one of its nodes, which
/// sets no mask bit).
async fn update_slot(
    conn: &mut AnyConnection,
    task_id: u64,
    node: Address,
    change: impl FnOnce(&mut TaskNodeRecord),
) -> Result<u8, StoreError> {
    let records = load_task_nodes(conn, task_id).await?;
    let Some(mut record) = records.into_iter().find(|record| record.node == node) else {
        tracing::warn!(task_id, %node, "event from a node the index has not seen selected");
        return Ok(8);
    };
    change(&mut record);
    save_task_node(conn, &record).await?;
    Ok(record.slot)
}
