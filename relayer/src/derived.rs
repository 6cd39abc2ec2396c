//! Derived state: tasks, their nodes' commitments and reveals, nodes, withdrawable balances,
//! the GPU model registry and the parameter versions, folded from events in chain order. The
//! fold mirrors `Verinfer.sol`, including the state changes it makes without an event of their
//! own (a settled task's nodes become Available again, and so does a sampled task's first node
//! when its check expires; a sampled task the draw did not choose is Revealing) and what a task
//! takes from the parameters in force when it is created (its version, fee level, expiry and, for
//! a sampled task, the sampling rate).

use alloy_primitives::Address;
use sqlx::AnyConnection;
use verinfer_abi::{
    ChainTask, NodeState, Settlement, TaskKind, TaskStatus, ValidationMode, VerinferEvent,
};

use crate::{
    events::AdminEvent,
    store::{
        NodeRecord, ParamsState, StoreError, TaskNodeRecord, TaskRecord, active_params, add_credit,
        add_gpu_model, load_node, load_task, load_task_nodes, params_of_version, save_node,
        save_task, save_task_node, schedule_params, set_gpu_model_active, set_params_state,
        withdraw,
    },
};

/// Where an event happened: its block and, when known, that block's timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct At {
    /// Block number.
    pub block: u64,
    /// The block's timestamp, unix seconds.
    pub timestamp: Option<u64>,
}

/// Applies a registry or parameter event to the derived tables.
pub(crate) async fn apply_admin(
    conn: &mut AnyConnection,
    at: At,
    event: &AdminEvent,
) -> Result<(), StoreError> {
    match event {
        AdminEvent::GpuModelAdded { id, name, vram_mib } => {
            add_gpu_model(conn, *id, name, *vram_mib, at.block).await
        }
        AdminEvent::GpuModelActiveSet { id, active } => {
            set_gpu_model_active(conn, *id, *active, at.block).await
        }
        AdminEvent::ParamsScheduled {
            version,
            params,
            effective_at,
        } => schedule_params(conn, *version, params, *effective_at, at.block).await,
        AdminEvent::ParamsActivated { version } => {
            set_params_state(conn, *version, ParamsState::Active, at.block).await
        }
        AdminEvent::ParamsScheduleCancelled { version } => {
            set_params_state(conn, *version, ParamsState::Cancelled, at.block).await
        }
    }
}

/// Applies one event to the derived tables.
pub(crate) async fn apply(
    conn: &mut AnyConnection,
    at: At,
    event: &VerinferEvent,
) -> Result<(), StoreError> {
    use VerinferEvent as E;
    let block = at.block;
    match event {
        E::NodeJoined { .. }
        | E::FeeTierSet { .. }
        | E::StakeAdded { .. }
        | E::NodeLeaving { .. }
        | E::NodeExited { .. }
        | E::NodeSlashed { .. }
        | E::NodeKicked { .. }
        | E::NodeRewarded { .. } => apply_node_event(conn, block, event).await,
        E::TaskCreated { .. } => apply_task_created(conn, at, event).await,
        E::TaskStarted {
            task_id,
            nodes,
            commit_deadline,
            reveal_deadline,
            seed_block,
        } => {
            apply_task_started(
                conn,
                block,
                *task_id,
                nodes,
                (*commit_deadline, *reveal_deadline),
                *seed_block,
            )
            .await
        }
        E::CheckStarted {
            task_id,
            checkers,
            commit_deadline,
            reveal_deadline,
            seed_block,
        } => {
            apply_check_started(
                conn,
                block,
                *task_id,
                checkers,
                (*commit_deadline, *reveal_deadline),
                *seed_block,
            )
            .await
        }
        E::SampleDecided {
            task_id, checked, ..
        } => apply_sample_decided(conn, at, *task_id, *checked).await,
        E::TaskQueued { .. }
        | E::TaskCancelled { .. }
        | E::TaskExpired { .. }
        | E::RevealPhaseOpened { .. }
        | E::SampleCommitted { .. } => apply_task_phase(conn, block, event).await,
        E::ResultCommitted { .. }
        | E::ImageResultRevealed { .. }
        | E::TextResultRevealed { .. }
        | E::InvalidArgsReported { .. } => apply_node_result(conn, block, event).await,
        E::TaskSettled { .. } => apply_settlement(conn, block, event).await,
        E::BalanceCredited {
            account,
            task_id,
            reason,
            amount,
        } => add_credit(conn, *account, *task_id, *reason, *amount, block).await,
        E::Withdrawn { account, amount } => withdraw(conn, *account, *amount, block).await,
        E::Other { .. } => Ok(()),
    }
}

/// A node's own events: joins, stake changes, leaving, exits, slashes, kicks and rewards.
async fn apply_node_event(
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
            fee_tier,
        } => {
            let record = NodeRecord {
                address: *node,
                node_id: *node_id,
                state: NodeState::Available,
                stake: *stake,
                gpu_model: *gpu_model,
                gpu_model_name: gpu_model_name.clone(),
                vram_mib: *vram_mib,
                fee_tier: *fee_tier,
                task_id: 0,
                updated_block: block,
            };
            save_node(conn, &record).await
        }
        E::FeeTierSet { node, fee_tier } => {
            update_node(conn, *node, block, |n| n.fee_tier = *fee_tier).await
        }
        E::StakeAdded {
            node, new_stake, ..
        } => update_node(conn, *node, block, |n| n.stake = *new_stake).await,
        E::NodeLeaving { node, .. } => {
            update_node(conn, *node, block, |n| n.state = NodeState::Leaving).await
        }
        E::NodeExited { node, .. } | E::NodeKicked { node, .. } => {
            let state = if matches!(event, E::NodeKicked { .. }) {
                NodeState::Kicked
            } else {
                NodeState::None
            };
            update_node(conn, *node, block, |n| {
                n.state = state;
                n.stake = 0;
                n.task_id = 0;
            })
            .await
        }
        E::NodeSlashed { node, amount, .. } => {
            update_node(conn, *node, block, |n| {
                n.stake = n.stake.saturating_sub(*amount)
            })
            .await
        }
        E::NodeRewarded { node, amount, .. } => {
            update_node(conn, *node, block, |n| {
                n.stake = n.stake.saturating_add(*amount)
            })
            .await
        }
        _ => Ok(()),
    }
}

/// `TaskCreated`: a new task record (status `None` until its `TaskQueued`), under the parameter
/// version in force (the last one activated: activation runs before `createTask`'s own work).
async fn apply_task_created(
    conn: &mut AnyConnection,
    at: At,
    event: &VerinferEvent,
) -> Result<(), StoreError> {
    let VerinferEvent::TaskCreated {
        task_id,
        creator,
        kind,
        args_hash,
        image_count,
        min_vram_mib,
        gpu_model,
        fee,
        mode,
    } = event
    else {
        return Ok(());
    };
    let params = active_params(conn).await?;
    let (params_version, fee_level, expires_at, sampling_bps) = match &params {
        Some((version, params)) => {
            let minimum = params.minTaskFee.to::<u128>()
                + match kind {
                    TaskKind::Image => params.minImageFee.to::<u128>() * u128::from(*image_count),
                    TaskKind::Text => 0,
                };
            let (minimum, sampling_bps) = match mode {
                ValidationMode::Full => (minimum, None),
                ValidationMode::Sampled => (
                    sampled_minimum(minimum, params.samplingBps),
                    Some(params.samplingBps),
                ),
            };
            let expires_at = at
                .timestamp
                .map_or(0, |t| t + u64::from(params.queueTimeout));
            (*version, fee_level(*fee, minimum), expires_at, sampling_bps)
        }
        None => (0, 0, 0, None),
    };
    let chain = ChainTask {
        task_id: *task_id,
        creator: *creator,
        kind: *kind,
        status: TaskStatus::None,
        image_count: *image_count,
        min_vram_mib: *min_vram_mib,
        args_hash: *args_hash,
        gpu_model: *gpu_model,
        fee: *fee,
        nodes: [Address::ZERO; 3],
        committed_mask: 0,
        revealed_mask: 0,
        invalid_mask: 0,
        commit_deadline: 0,
        reveal_deadline: 0,
        fee_level,
        params_version,
        expires_at,
        mode: *mode,
        checked: false,
        sample_block: 0,
    };
    let record = TaskRecord {
        chain,
        queue_key: None,
        settlement: None,
        seed_block: None,
        created_block: at.block,
        updated_block: at.block,
        sampling_bps,
        sample_decided_block: None,
        check_seed_block: None,
    };
    save_task(conn, &record).await
}

/// `TaskStarted`: the task's nodes and deadlines, an empty slot record per node, nodes busy (a
/// sampled task starts on one node: slots 1 and 2 stay empty until a check draws them).
async fn apply_task_started(
    conn: &mut AnyConnection,
    block: u64,
    task_id: u64,
    nodes: &[Address; 3],
    (commit_deadline, reveal_deadline): (u32, u32),
    seed_block: u64,
) -> Result<(), StoreError> {
    update_task(conn, task_id, block, |t| {
        t.chain.status = TaskStatus::Committing;
        t.queue_key = None;
        t.seed_block = Some(seed_block);
        t.chain.nodes = *nodes;
        t.chain.commit_deadline = commit_deadline;
        t.chain.reveal_deadline = reveal_deadline;
    })
    .await?;
    assign_slots(conn, block, task_id, nodes.iter().copied().enumerate()).await
}

/// `CheckStarted`: the two checkers of a checked sampled task become its nodes 1 and 2 (its
/// first node keeps slot 0 and its commitment), with the check's deadlines; status Committing.
async fn apply_check_started(
    conn: &mut AnyConnection,
    block: u64,
    task_id: u64,
    checkers: &[Address; 2],
    (commit_deadline, reveal_deadline): (u32, u32),
    seed_block: u64,
) -> Result<(), StoreError> {
    update_task(conn, task_id, block, |t| {
        t.chain.status = TaskStatus::Committing;
        t.queue_key = None;
        t.check_seed_block = Some(seed_block);
        t.chain.nodes[1] = checkers[0];
        t.chain.nodes[2] = checkers[1];
        t.chain.commit_deadline = commit_deadline;
        t.chain.reveal_deadline = reveal_deadline;
    })
    .await?;
    assign_slots(
        conn,
        block,
        task_id,
        checkers
            .iter()
            .copied()
            .enumerate()
            .map(|(i, n)| (i + 1, n)),
    )
    .await
}

/// An empty slot record per drawn node, and the node busy with the task (zero addresses, the
/// empty slots of a sampled task, are skipped).
async fn assign_slots(
    conn: &mut AnyConnection,
    block: u64,
    task_id: u64,
    nodes: impl Iterator<Item = (usize, Address)>,
) -> Result<(), StoreError> {
    for (slot, node) in nodes {
        if node.is_zero() {
            continue;
        }
        let record = TaskNodeRecord {
            task_id,
            slot: u8::try_from(slot).unwrap_or(u8::MAX),
            node,
            commitment: None,
            phashes: None,
            text_digest: None,
            invalid_args: false,
        };
        save_task_node(conn, &record).await?;
        count_task(conn, node, 1, 0, 0).await?;
        update_node(conn, node, block, |n| {
            n.state = NodeState::Busy;
            n.task_id = task_id;
        })
        .await?;
    }
    Ok(())
}

/// `SampleDecided`: the sample draw of a sampled task. Unchecked, its first node may reveal
/// (status Revealing, no event of its own); checked, it waits for two checkers with a deadline of
/// its own, `queueTimeout` from now (its `TaskQueued` follows and makes it CheckQueued).
async fn apply_sample_decided(
    conn: &mut AnyConnection,
    at: At,
    task_id: u64,
    checked: bool,
) -> Result<(), StoreError> {
    let Some(task) = load_task(conn, task_id).await? else {
        tracing::warn!(task_id, "event for a task the index has not seen created");
        return Ok(());
    };
    let queue_timeout = if checked {
        params_of_version(conn, task.chain.params_version)
            .await?
            .map(|params| params.queueTimeout)
    } else {
        None
    };
    update_task(conn, task_id, at.block, |t| {
        t.sample_decided_block = Some(at.block);
        t.chain.checked = checked;
        if checked {
            t.chain.expires_at = match (at.timestamp, queue_timeout) {
                (Some(now), Some(timeout)) => now + u64::from(timeout),
                _ => 0,
            };
        } else {
            t.chain.status = TaskStatus::Revealing;
        }
    })
    .await?;
    Ok(())
}

/// Status changes without node data: queued (a new task, or a check), cancelled, expired,
/// reveal phase opened, a sampled task's first node committed.
async fn apply_task_phase(
    conn: &mut AnyConnection,
    block: u64,
    event: &VerinferEvent,
) -> Result<(), StoreError> {
    use VerinferEvent as E;
    match event {
        E::TaskQueued { task_id, queue_key } => {
            update_task(conn, *task_id, block, |t| {
                // A sampled task the sample draw chose for a check queues again, for checkers.
                t.chain.status = if t.chain.mode == ValidationMode::Sampled && t.chain.checked {
                    TaskStatus::CheckQueued
                } else {
                    TaskStatus::Queued
                };
                t.queue_key = Some(*queue_key);
            })
            .await?;
        }
        E::TaskCancelled { task_id } => {
            update_task(conn, *task_id, block, |t| {
                t.chain.status = TaskStatus::Cancelled;
                t.queue_key = None;
            })
            .await?;
        }
        E::TaskExpired { task_id } => {
            let task = update_task(conn, *task_id, block, |t| {
                t.chain.status = TaskStatus::Expired;
                t.queue_key = None;
            })
            .await?;
            // A check that found no checkers in time releases the first node, unpaid (no event
            // of its own unless it exits).
            release_nodes(conn, block, *task_id, task.as_ref()).await?;
        }
        E::RevealPhaseOpened {
            task_id,
            reveal_deadline,
        } => {
            update_task(conn, *task_id, block, |t| {
                t.chain.status = TaskStatus::Revealing;
                t.chain.reveal_deadline = *reveal_deadline;
            })
            .await?;
        }
        E::SampleCommitted {
            task_id,
            sample_block,
            reveal_deadline,
        } => {
            update_task(conn, *task_id, block, |t| {
                t.chain.status = TaskStatus::AwaitingSample;
                t.chain.sample_block = *sample_block;
                t.chain.reveal_deadline = *reveal_deadline;
            })
            .await?;
        }
        _ => {}
    }
    Ok(())
}

/// A node's commitment or reveal: its slot record, and the task's mask bits.
async fn apply_node_result(
    conn: &mut AnyConnection,
    block: u64,
    event: &VerinferEvent,
) -> Result<(), StoreError> {
    use VerinferEvent as E;
    let (Some(task_id), Some(node)) = (event.task_id(), event.node()) else {
        return Ok(());
    };
    let slot = update_slot(conn, task_id, node, |r| match event {
        E::ResultCommitted { commitment, .. } => r.commitment = Some(*commitment),
        E::ImageResultRevealed { phashes, .. } => r.phashes = Some(phashes.clone()),
        E::TextResultRevealed { digest, .. } => r.text_digest = Some(*digest),
        // `reportInvalidArgs` emits no reveal event of its own: this one is the reveal.
        E::InvalidArgsReported { .. } => r.invalid_args = true,
        _ => {}
    })
    .await?;
    update_task(conn, task_id, block, |t| match event {
        E::ResultCommitted { .. } => t.chain.committed_mask |= bit(slot),
        E::InvalidArgsReported { .. } => {
            t.chain.revealed_mask |= bit(slot);
            t.chain.invalid_mask |= bit(slot);
        }
        _ => t.chain.revealed_mask |= bit(slot),
    })
    .await?;
    Ok(())
}

/// `TaskSettled`: the outcome, and the task's nodes released.
async fn apply_settlement(
    conn: &mut AnyConnection,
    block: u64,
    event: &VerinferEvent,
) -> Result<(), StoreError> {
    let VerinferEvent::TaskSettled {
        task_id,
        outcome,
        agreeing_mask,
        distances,
        threshold,
        reward_per_node,
    } = event
    else {
        return Ok(());
    };
    let task = update_task(conn, *task_id, block, |t| {
        t.chain.status = *outcome;
        t.settlement = Some(Settlement {
            outcome: *outcome,
            agreeing_mask: *agreeing_mask,
            distances: distances.clone(),
            threshold: *threshold,
            reward_per_node: *reward_per_node,
        });
    })
    .await?;
    if let Some(nodes) = task.as_ref().and_then(TaskRecord::nodes) {
        for (slot, node) in nodes.into_iter().enumerate() {
            if !node.is_zero() {
                let agreed = i64::from(agreeing_mask >> slot & 1);
                count_task(conn, node, 0, 1, agreed).await?;
            }
        }
    }
    // The contract releases every node still busy with this task (no event); slashes, kicks and
    // exits follow as their own events and override this.
    release_nodes(conn, block, *task_id, task.as_ref()).await
}

/// Adds to a node's task counters (`node_stats`): drawn, settled, paid as agreeing.
async fn count_task(
    conn: &mut AnyConnection,
    node: Address,
    selected: i64,
    settled: i64,
    agreed: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO node_stats (address, selected, settled, agreed) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (address) DO UPDATE SET selected = node_stats.selected + $2, \
         settled = node_stats.settled + $3, agreed = node_stats.agreed + $4",
    )
    .bind(crate::store::hex_address(&node))
    .bind(selected)
    .bind(settled)
    .bind(agreed)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Makes the nodes still busy with `task` available again (the contract does so without an
/// event when a task settles or a check expires); empty slots are skipped.
async fn release_nodes(
    conn: &mut AnyConnection,
    block: u64,
    task_id: u64,
    task: Option<&TaskRecord>,
) -> Result<(), StoreError> {
    let Some(nodes) = task.and_then(TaskRecord::nodes) else {
        return Ok(());
    };
    for node in nodes {
        if node.is_zero() {
            continue;
        }
        update_node(conn, node, block, |n| {
            if n.state == NodeState::Busy && n.task_id == task_id {
                n.state = NodeState::Available;
                n.task_id = 0;
            }
        })
        .await?;
    }
    Ok(())
}

/// `VerinferState._minimumFee` of a sampled task: the full minimum times `(1 + 2p) / 3`, rounded
/// up (`sampling_bps` = p in basis points).
pub(crate) fn sampled_minimum(full_minimum: u128, sampling_bps: u16) -> u128 {
    const BPS: u128 = 10_000;
    let denominator = 3 * BPS;
    full_minimum
        .saturating_mul(BPS + 2 * u128::from(sampling_bps))
        .saturating_add(denominator - 1)
        / denominator
}

/// `Verinfer._feeLevel`: the highest fee tier t (at most 7) with `fee >= 2^t * minimum`.
pub(crate) fn fee_level(fee: u128, minimum: u128) -> u8 {
    const MAX_FEE_TIER: u8 = 7;
    if minimum == 0 {
        return MAX_FEE_TIER;
    }
    let mut level = 0;
    while level < MAX_FEE_TIER
        && minimum
            .checked_shl(u32::from(level) + 1)
            .is_some_and(|bound| fee >= bound)
    {
        level += 1;
    }
    level
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fee_levels_double_like_the_contracts() {
        let min = 1_000;
        assert_eq!(fee_level(1_000, min), 0);
        assert_eq!(fee_level(1_999, min), 0);
        assert_eq!(fee_level(2_000, min), 1);
        assert_eq!(fee_level(4_000, min), 2);
        assert_eq!(fee_level(127_999, min), 6);
        assert_eq!(fee_level(128_000, min), 7);
        assert_eq!(fee_level(u128::MAX, min), 7);
        assert_eq!(fee_level(0, 0), 7);
    }

    #[test]
    fn sampled_minimum_rounds_up_like_the_contract() {
        // p = 5 %: (10000 + 1000) / 30000 of the full minimum.
        assert_eq!(sampled_minimum(30_000, 500), 11_000);
        assert_eq!(sampled_minimum(30_001, 500), 11_001);
        assert_eq!(sampled_minimum(1, 1), 1);
        // p = 100 %: three nodes always, the full minimum.
        assert_eq!(sampled_minimum(1_000, 10_000), 1_000);
        assert_eq!(sampled_minimum(0, 500), 0);
    }
}
