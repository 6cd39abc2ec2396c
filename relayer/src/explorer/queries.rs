//! The explorer's reads: each page's rows in a few indexed queries (schema v4 adds the indexes:
//! tasks by status, events by name and by node, a node's tasks), so that pages stay fast with
//! hundreds of thousands of tasks indexed.

use alloy_primitives::{Address, B256};
use sqlx::{Row, any::AnyRow};
use verinfer_abi::{SlashReason, TaskStatus, VerinferEvent};

use crate::{
    events::RawLog,
    store::{
        NodeRecord, Store, StoreError, TASK_COLUMNS, TaskRecord, hex_address, int, node_row, parse,
        task_row, to_i64,
    },
};

type Result<T, E = StoreError> = std::result::Result<T, E>;

/// One indexed event, decoded, where and when it happened.
#[derive(Debug, Clone)]
pub struct TimelineEvent {
    /// Block number.
    pub block: u64,
    /// Position in the block.
    pub log_index: u64,
    /// The transaction that emitted it.
    pub tx_hash: B256,
    /// Block time, unix seconds (when the RPC gave one).
    pub timestamp: Option<u64>,
    /// The event.
    pub event: VerinferEvent,
}

/// One slash (`NodeSlashed`).
#[derive(Debug, Clone)]
pub struct SlashRow {
    /// The slashed node.
    pub node: Address,
    /// The task that caused it.
    pub task_id: u64,
    /// Amount taken from its stake.
    pub amount: u128,
    /// Why.
    pub reason: SlashReason,
    /// Block.
    pub block: u64,
    /// Transaction.
    pub tx_hash: B256,
}

/// A task a node was selected for, with its slot.
#[derive(Debug, Clone)]
pub struct NodeTaskRow {
    /// The task.
    pub task: TaskRecord,
    /// The node's slot (0..3).
    pub slot: u8,
}

impl NodeTaskRow {
    /// Whether the node was paid as agreeing (`None` until settled, or when not compared).
    pub fn agreed(&self) -> Option<bool> {
        self.task
            .settlement
            .as_ref()
            .map(|settlement| settlement.agreed(usize::from(self.slot)))
    }
}

/// How a node's settled tasks went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AgreementStats {
    /// Tasks it was selected for.
    pub selected: u64,
    /// Of those, settled.
    pub settled: u64,
    /// Of the settled ones, paid as agreeing.
    pub agreed: u64,
}

impl AgreementStats {
    /// Agreed / settled, in percent (`None` before any settled task).
    pub fn rate_percent(&self) -> Option<f64> {
        (self.settled > 0).then(|| self.agreed as f64 * 100.0 / self.settled as f64)
    }
}

/// The explorer's queries on a [`Store`].
#[derive(Debug, Clone, Copy)]
pub struct ExplorerQueries<'a> {
    store: &'a Store,
}

impl<'a> ExplorerQueries<'a> {
    /// Queries on `store`.
    pub fn new(store: &'a Store) -> Self {
        Self { store }
    }

    /// How many tasks are in each status (statuses without tasks are left out).
    pub async fn status_counts(&self) -> Result<Vec<(TaskStatus, u64)>> {
        let rows = sqlx::query("SELECT status, COUNT(*) FROM tasks GROUP BY status")
            .fetch_all(self.store.pool())
            .await?;
        let mut counts = rows
            .iter()
            .map(|row| {
                let status: String = row.try_get(0)?;
                let count: i64 = row.try_get(1)?;
                let status =
                    TaskStatus::from_wire_name(&status).ok_or_else(|| StoreError::Corrupt {
                        table: "tasks",
                        column: "status",
                        value: status.clone(),
                    })?;
                Ok((status, int("tasks", "count", count)?))
            })
            .collect::<Result<Vec<_>>>()?;
        counts.sort_by_key(|(status, _)| *status as u8);
        Ok(counts)
    }

    /// Registered nodes (of any state) per GPU model name and state: `(model, state, count)`.
    pub async fn nodes_by_model(&self) -> Result<Vec<(String, String, u64)>> {
        let rows = sqlx::query(
            "SELECT gpu_model_name, state, COUNT(*) FROM nodes GROUP BY gpu_model_name, state \
             ORDER BY gpu_model_name, state",
        )
        .fetch_all(self.store.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let count: i64 = row.try_get(2)?;
                Ok((
                    row.try_get(0)?,
                    row.try_get(1)?,
                    int("nodes", "count", count)?,
                ))
            })
            .collect()
    }

    /// The newest tasks with an id below `before` (all when `None`), newest first.
    pub async fn latest_tasks(&self, before: Option<u64>, limit: u64) -> Result<Vec<TaskRecord>> {
        let sql = format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE task_id < $1 ORDER BY task_id DESC LIMIT $2"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(before.map_or(i64::MAX, to_i64))
            .bind(to_i64(limit))
            .fetch_all(self.store.pool())
            .await?;
        rows.iter().map(task_row).collect()
    }

    /// The latest slashes, newest first.
    pub async fn latest_slashes(&self, limit: u64) -> Result<Vec<SlashRow>> {
        let rows = sqlx::query(
            "SELECT block_number, log_index, tx_hash, block_timestamp, topics, data FROM events \
             WHERE name = 'NodeSlashed' ORDER BY block_number DESC, log_index DESC LIMIT $1",
        )
        .bind(to_i64(limit))
        .fetch_all(self.store.pool())
        .await?;
        slashes_of(&rows)
    }

    /// Every indexed event of a task, in chain order.
    pub async fn task_events(&self, task_id: u64) -> Result<Vec<TimelineEvent>> {
        let rows = sqlx::query(
            "SELECT block_number, log_index, tx_hash, block_timestamp, topics, data FROM events \
             WHERE task_id = $1 ORDER BY block_number, log_index",
        )
        .bind(to_i64(task_id))
        .fetch_all(self.store.pool())
        .await?;
        rows.iter().map(event_row).collect()
    }

    /// A node's events that change its stake or state (joined, stake added, rewarded, slashed,
    /// leaving, exited, kicked), in chain order: the newest `limit` of them.
    pub async fn node_stake_events(&self, node: Address, limit: u64) -> Result<Vec<TimelineEvent>> {
        let rows = sqlx::query(
            "SELECT block_number, log_index, tx_hash, block_timestamp, topics, data FROM events \
             WHERE node = $1 AND name IN ('NodeJoined', 'StakeAdded', 'NodeRewarded', 'NodeSlashed', \
             'NodeLeaving', 'NodeExited', 'NodeKicked') \
             ORDER BY block_number DESC, log_index DESC LIMIT $2",
        )
        .bind(hex_address(&node))
        .bind(to_i64(limit))
        .fetch_all(self.store.pool())
        .await?;
        let mut events = rows.iter().map(event_row).collect::<Result<Vec<_>>>()?;
        events.reverse();
        Ok(events)
    }

    /// A node's slashes, newest first, at most `limit`.
    pub async fn node_slashes(&self, node: Address, limit: u64) -> Result<Vec<SlashRow>> {
        let rows = sqlx::query(
            "SELECT block_number, log_index, tx_hash, block_timestamp, topics, data FROM events \
             WHERE node = $1 AND name = 'NodeSlashed' ORDER BY block_number DESC, log_index DESC LIMIT $2",
        )
        .bind(hex_address(&node))
        .bind(to_i64(limit))
        .fetch_all(self.store.pool())
        .await?;
        slashes_of(&rows)
    }

    /// The tasks a node was selected for with an id below `before`, newest first.
    pub async fn node_tasks(
        &self,
        node: Address,
        before: Option<u64>,
        limit: u64,
    ) -> Result<Vec<NodeTaskRow>> {
        let columns = TASK_COLUMNS
            .split(", ")
            .map(|column| format!("t.{}", column.trim()))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {columns}, n.slot FROM task_nodes n JOIN tasks t ON t.task_id = n.task_id \
             WHERE n.node = $1 AND n.task_id < $2 ORDER BY n.task_id DESC LIMIT $3"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(hex_address(&node))
            .bind(before.map_or(i64::MAX, to_i64))
            .bind(to_i64(limit))
            .fetch_all(self.store.pool())
            .await?;
        rows.iter()
            .map(|row| {
                let slot: i64 = row.try_get("slot")?;
                Ok(NodeTaskRow {
                    task: task_row(row)?,
                    slot: int("task_nodes", "slot", slot)?,
                })
            })
            .collect()
    }

    /// How many times a node was slashed.
    pub async fn node_slash_count(&self, node: Address) -> Result<u64> {
        let row =
            sqlx::query("SELECT COUNT(*) FROM events WHERE node = $1 AND name = 'NodeSlashed'")
                .bind(hex_address(&node))
                .fetch_one(self.store.pool())
                .await?;
        let count: i64 = row.try_get(0)?;
        int("events", "count", count)
    }

    /// How a node's tasks went: selected, settled, agreed (derived counters, so the node page
    /// does not scan a busy node's tasks).
    pub async fn node_agreement(&self, node: Address) -> Result<AgreementStats> {
        let row =
            sqlx::query("SELECT selected, settled, agreed FROM node_stats WHERE address = $1")
                .bind(hex_address(&node))
                .fetch_optional(self.store.pool())
                .await?;
        let Some(row) = row else {
            return Ok(AgreementStats::default());
        };
        let count = |index: usize| -> Result<u64> {
            let value: i64 = row.try_get(index)?;
            int("node_stats", "count", value)
        };
        Ok(AgreementStats {
            selected: count(0)?,
            settled: count(1)?,
            agreed: count(2)?,
        })
    }

    /// A node's record, if it ever joined.
    pub async fn node(&self, node: Address) -> Result<Option<NodeRecord>> {
        let row = sqlx::query(
            "SELECT address, node_id, state, stake, gpu_model, gpu_model_name, vram_mib, task_id, \
             updated_block, fee_tier FROM nodes WHERE address = $1",
        )
        .bind(hex_address(&node))
        .fetch_optional(self.store.pool())
        .await?;
        row.map(|row| node_row(&row)).transpose()
    }

    /// The records of several nodes (those that exist), in no particular order.
    pub async fn nodes_of(&self, nodes: &[Address]) -> Result<Vec<NodeRecord>> {
        let mut records = Vec::with_capacity(nodes.len());
        for node in nodes {
            if let Some(record) = self.node(*node).await? {
                records.push(record);
            }
        }
        Ok(records)
    }
}

fn event_row(row: &AnyRow) -> Result<TimelineEvent> {
    const T: &str = "events";
    let block: i64 = row.try_get(0)?;
    let log_index: i64 = row.try_get(1)?;
    let tx_hash: String = row.try_get(2)?;
    let timestamp: Option<i64> = row.try_get(3)?;
    let topics: String = row.try_get(4)?;
    let data: String = row.try_get(5)?;
    let log = RawLog::parse_data(&topics, &data).ok_or(StoreError::Corrupt {
        table: T,
        column: "topics/data",
        value: topics,
    })?;
    Ok(TimelineEvent {
        block: int(T, "block_number", block)?,
        log_index: int(T, "log_index", log_index)?,
        tx_hash: parse(T, "tx_hash", tx_hash)?,
        timestamp: timestamp
            .map(|t| int(T, "block_timestamp", t))
            .transpose()?,
        event: crate::events::decode_log(&log)?,
    })
}

fn slashes_of(rows: &[AnyRow]) -> Result<Vec<SlashRow>> {
    Ok(rows
        .iter()
        .map(event_row)
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .filter_map(slash_of)
        .collect())
}

fn slash_of(event: TimelineEvent) -> Option<SlashRow> {
    match event.event {
        VerinferEvent::NodeSlashed {
            node,
            task_id,
            amount,
            reason,
        } => Some(SlashRow {
            node,
            task_id,
            amount,
            reason,
            block: event.block,
            tx_hash: event.tx_hash,
        }),
        _ => None,
    }
}
