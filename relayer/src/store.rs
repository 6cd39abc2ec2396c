//! The relayer's database: SQLite by default, PostgreSQL by URL, through `sqlx::any` with
//! portable SQL (numbered `$n` parameters, BIGINT and TEXT columns only) and versioned
//! migrations from `relayer/migrations`.

use std::{str::FromStr, time::Duration};

use alloy_primitives::{Address, B256, LogData, aliases::U96};
use sqlx::{
    Any, AnyConnection, AnyPool, Row, Transaction,
    any::{AnyPoolOptions, AnyRow},
};
use verinfer_abi::{
    ChainTask, CreditReason, IVerinfer, NodeState, Settlement, TaskKind, TaskStatus,
    ValidationMode, VerinferEvent,
};
use verinfer_wire::types::ParamsValues;

use crate::{
    derived::{self, At},
    events::{AdminEvent, EventError, RawLog},
};

/// Why a database operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed.
    #[error("database error: {0}")]
    Database(sqlx::Error),
    /// A migration failed.
    #[error("database migration failed: {0}")]
    Migrate(sqlx::migrate::MigrateError),
    /// A stored value does not parse (a corrupted or foreign database).
    #[error("corrupt database value in {table}.{column}: {value:?}")]
    Corrupt {
        /// Table.
        table: &'static str,
        /// Column.
        column: &'static str,
        /// The value.
        value: String,
    },
    /// A stored log no longer decodes.
    #[error("stored event does not decode: {0}")]
    Event(#[from] EventError),
    /// The database indexes another chain or contract than configured.
    #[error(
        "database indexes chain {stored_chain} contract {stored_contract}, but the relayer is configured for chain {chain} contract {contract}"
    )]
    WrongChain {
        /// Stored chain id.
        stored_chain: u64,
        /// Stored contract.
        stored_contract: String,
        /// Configured chain id.
        chain: u64,
        /// Configured contract.
        contract: Address,
    },
}

// Manual `From`s: the message already shows the cause, so it is not chained a second time.
impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        Self::Database(err)
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(err: sqlx::migrate::MigrateError) -> Self {
        Self::Migrate(err)
    }
}

type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A stored task, derived from events: the chain's record of it as `getTask` would return it,
/// plus what only the events say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRecord {
    /// The task as the chain holds it (status [`TaskStatus::None`] between its `TaskCreated` and
    /// the `TaskQueued` / `TaskStarted` of the same transaction).
    pub chain: ChainTask,
    /// Queue key while queued.
    pub queue_key: Option<B256>,
    /// The settlement, once settled (its outcome is the task's status).
    pub settlement: Option<Settlement>,
    /// The block whose hash seeded the draw that started the task, once started.
    pub seed_block: Option<u64>,
    /// Block of `TaskCreated`.
    pub created_block: u64,
    /// Block of the latest event.
    pub updated_block: u64,
    /// Sampled tasks: the sampling rate p of the task's parameter version, basis points (`None`
    /// for full tasks, and when the index does not know the task's parameters).
    pub sampling_bps: Option<u16>,
    /// Sampled tasks: the block of the sample draw (`SampleDecided`), once drawn; its outcome is
    /// `chain.checked`.
    pub sample_decided_block: Option<u64>,
    /// Checked sampled tasks: the block whose hash seeded the draw of the two checkers
    /// (`CheckStarted`), once drawn.
    pub check_seed_block: Option<u64>,
}

impl TaskRecord {
    /// The selected nodes, once started (a sampled task's slots 1 and 2 stay zero until its
    /// checkers are drawn, and for good when it is not checked).
    pub fn nodes(&self) -> Option<[Address; 3]> {
        self.chain.started().then_some(self.chain.nodes)
    }

    /// Whether the task is checked by three nodes: `Some(true)` for a full task and for a sampled
    /// task the sample draw chose for a check, `Some(false)` for a sampled task it did not,
    /// `None` while a sampled task's draw is still to come.
    pub fn checked_by_three(&self) -> Option<bool> {
        match self.chain.mode {
            ValidationMode::Full => Some(true),
            ValidationMode::Sampled => self.sample_decided_block.map(|_| self.chain.checked),
        }
    }
}

/// What one selected node committed and revealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskNodeRecord {
    /// Task id.
    pub task_id: u64,
    /// Position 0..3 among the task's nodes.
    pub slot: u8,
    /// The node.
    pub node: Address,
    /// Its commitment.
    pub commitment: Option<B256>,
    /// Revealed pHashes (image tasks).
    pub phashes: Option<Vec<u64>>,
    /// Revealed digest (text tasks).
    pub text_digest: Option<B256>,
    /// It reported invalid args.
    pub invalid_args: bool,
}

/// A stored node (derived from events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    /// Staking address.
    pub address: Address,
    /// Node id.
    pub node_id: u32,
    /// State.
    pub state: NodeState,
    /// Current stake.
    pub stake: u128,
    /// Normalised GPU model id.
    pub gpu_model: B256,
    /// Normalised GPU model name.
    pub gpu_model_name: String,
    /// VRAM of its model (the registry's).
    pub vram_mib: u32,
    /// Fee tier (drawn only for tasks paying at least 2^tier times the minimum fee).
    pub fee_tier: u8,
    /// Current task (0: none).
    pub task_id: u64,
    /// Block of the latest event.
    pub updated_block: u64,
}

/// A registered GPU model (derived from the registry's events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuModelRecord {
    /// keccak256 of the normalised name.
    pub id: B256,
    /// Registration order (0 first).
    pub position: u32,
    /// Normalised name.
    pub name: String,
    /// VRAM of the model, MiB.
    pub vram_mib: u32,
    /// Open to new nodes.
    pub active: bool,
    /// Available nodes of the model (from the nodes table).
    pub available_nodes: u32,
}

/// Where a parameter version stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamsState {
    /// Announced, not activated.
    Scheduled,
    /// The last one activated.
    Active,
    /// Activated, then replaced by a later one.
    Superseded,
    /// Withdrawn (or replaced) before it was activated.
    Cancelled,
}

impl ParamsState {
    /// Storage form.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Active => "active",
            Self::Superseded => "superseded",
            Self::Cancelled => "cancelled",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [
            Self::Scheduled,
            Self::Active,
            Self::Superseded,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|state| state.as_str() == text)
    }
}

/// A parameter version (derived from `ParamsScheduled` / `ParamsActivated` /
/// `ParamsScheduleCancelled`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamsRecord {
    /// Version number.
    pub version: u32,
    /// Where it stands.
    pub state: ParamsState,
    /// Its values.
    pub params: IVerinfer::Params,
    /// When it takes (took) effect, unix seconds.
    pub effective_at: u64,
}

/// A credit to a withdrawable balance (`BalanceCredited`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditRecord {
    /// Who may withdraw it.
    pub account: Address,
    /// The task that caused it (0: none).
    pub task_id: u64,
    /// Why.
    pub reason: CreditReason,
    /// Amount.
    pub amount: u128,
    /// Block of the credit.
    pub block: u64,
}

/// An account's withdrawable balance (derived from `BalanceCredited` and `Withdrawn`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccountRecord {
    /// Withdrawable now.
    pub claimable: u128,
    /// Credited in total.
    pub credited: u128,
    /// Withdrawn in total.
    pub withdrawn: u128,
}

impl NodeRecord {
    /// The VRAM class: class t holds `[2^t GiB, 2^(t+1) GiB)`, the top class (7) open ended.
    pub fn tier(&self) -> u8 {
        let mut gib = self.vram_mib >> 10;
        let mut tier = 0u8;
        while gib > 1 && tier < 7 {
            gib >>= 1;
            tier += 1;
        }
        tier
    }
}

/// Metadata of a stored blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobMeta {
    /// keccak256 of the bytes (the blob's name).
    pub keccak: B256,
    /// `args`, `png` or `text`.
    pub kind: String,
    /// MIME type served with it.
    pub content_type: String,
    /// Size in bytes.
    pub size: u64,
}

/// An accepted result upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultRecord {
    /// Task id.
    pub task_id: u64,
    /// Uploading node.
    pub node: Address,
    /// `image` or `text`.
    pub kind: TaskKind,
    /// The signed payload hash.
    pub payload_hash: B256,
    /// The node's signature, 0x-hex.
    pub signature: String,
    /// Blobs in order, with the pHash of each PNG.
    pub items: Vec<ResultItem>,
}

/// One blob of a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultItem {
    /// keccak256 of the blob.
    pub blob: B256,
    /// pHash (PNGs only).
    pub phash: Option<u64>,
}

/// Outcome of storing a result upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultInsert {
    /// Stored now.
    Stored,
    /// This node's upload with the same payload hash was already stored.
    AlreadyStored,
    /// This node already uploaded a different payload (with the same revealed digest).
    Conflict,
}

/// The relayer database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    postgres: bool,
}

/// Key of the PostgreSQL advisory lock held by the replica that indexes ("verinfer" in ASCII).
pub const INDEXER_LOCK_KEY: i64 = 0x7665_7269_6e66_6572;

/// A dedicated PostgreSQL connection on which a replica takes the session-level indexer lock
/// ([`INDEXER_LOCK_KEY`]). The lock lives exactly as long as the connection: PostgreSQL releases
/// it when the holder closes it, dies or loses the connection, so another replica can take over.
#[derive(Debug)]
pub struct IndexerLock {
    conn: AnyConnection,
}

impl IndexerLock {
    /// Tries once to take the lock (`pg_try_advisory_lock`, never waits): `true` when this
    /// connection now holds it. Call it only while not holding the lock (session locks stack).
    pub async fn try_acquire(&mut self) -> Result<bool> {
        let row = sqlx::query("SELECT pg_try_advisory_lock($1)")
            .bind(INDEXER_LOCK_KEY)
            .fetch_one(&mut self.conn)
            .await?;
        Ok(row.try_get::<bool, _>(0)?)
    }

    /// Checks that the connection, and so the lock, is still alive.
    pub async fn check(&mut self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&mut self.conn).await?;
        Ok(())
    }

    /// Closes the connection, which releases the lock.
    pub async fn release(self) {
        use sqlx::Connection as _;
        if let Err(error) = self.conn.close().await {
            tracing::debug!(%error, "closing the indexer lock connection failed; the server drops it");
        }
    }
}

pub(crate) fn hex_address(address: &Address) -> String {
    format!("{address:#x}")
}

pub(crate) fn hex_b256(hash: &B256) -> String {
    format!("{hash:#x}")
}

pub(crate) fn parse<T: FromStr>(
    table: &'static str,
    column: &'static str,
    value: String,
) -> Result<T> {
    value.parse().map_err(|_| StoreError::Corrupt {
        table,
        column,
        value,
    })
}

pub(crate) fn int<T: TryFrom<i64>>(
    table: &'static str,
    column: &'static str,
    value: i64,
) -> Result<T> {
    T::try_from(value).map_err(|_| StoreError::Corrupt {
        table,
        column,
        value: value.to_string(),
    })
}

pub(crate) fn to_i64(value: u64) -> i64 {
    // Block numbers, task ids and unix times stay far below 2^63.
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub(crate) fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| to_i64(d.as_secs()))
}

impl Store {
    /// Connects (creating a SQLite file when missing) and runs pending migrations.
    pub async fn connect(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let is_sqlite = url.starts_with("sqlite:");
        let url = if is_sqlite && !url.contains("mode=") {
            format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
        } else {
            url.to_owned()
        };
        let options = AnyPoolOptions::new()
            .max_connections(if is_sqlite { 4 } else { 16 })
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if is_sqlite {
                        // WAL: readers never block the indexer's writes; busy_timeout: writers queue.
                        sqlx::query("PRAGMA journal_mode = WAL")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA synchronous = NORMAL")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA busy_timeout = 10000")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA foreign_keys = ON")
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            });
        let pool = options.connect(&url).await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self {
            pool,
            postgres: !is_sqlite,
        })
    }

    /// Whether the database is PostgreSQL, which replicas may share (SQLite serves one process).
    pub fn is_postgres(&self) -> bool {
        self.postgres
    }

    /// A dedicated connection (outside the pool) for the indexer lock. PostgreSQL only: SQLite
    /// has no advisory locks (its one relayer process always indexes), so taking it fails there.
    pub async fn indexer_lock(&self) -> Result<IndexerLock> {
        let conn = self.pool.acquire().await?.detach();
        Ok(IndexerLock { conn })
    }

    /// The connection pool.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Checks the database answers.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Rows in `table` (one of the relayer's tables), for tests and diagnostics.
    pub async fn count_rows(&self, table: CountedTable) -> Result<u64> {
        let sql = match table {
            CountedTable::Events => "SELECT COUNT(*) FROM events",
            CountedTable::Tasks => "SELECT COUNT(*) FROM tasks",
            CountedTable::Nodes => "SELECT COUNT(*) FROM nodes",
            CountedTable::Blobs => "SELECT COUNT(*) FROM blobs",
            CountedTable::Results => "SELECT COUNT(*) FROM results",
            CountedTable::ResultItems => "SELECT COUNT(*) FROM result_items",
        };
        let count: i64 = sqlx::query(sql).fetch_one(&self.pool).await?.try_get(0)?;
        int("count", "count", count)
    }

    // ------------------------------------------------------------------ index cursor

    /// The next block to index; initialises the cursor at `start_block` on first use and checks
    /// that the database follows this chain and contract.
    pub async fn init_cursor(
        &self,
        chain_id: u64,
        contract: Address,
        start_block: u64,
    ) -> Result<u64> {
        sqlx::query(
            "INSERT INTO index_cursor (id, chain_id, contract, next_block) VALUES (1, $1, $2, $3) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(to_i64(chain_id))
        .bind(hex_address(&contract))
        .bind(to_i64(start_block))
        .execute(&self.pool)
        .await?;
        let row =
            sqlx::query("SELECT chain_id, contract, next_block FROM index_cursor WHERE id = 1")
                .fetch_one(&self.pool)
                .await?;
        let stored_chain: u64 = int("index_cursor", "chain_id", row.try_get(0)?)?;
        let stored_contract: String = row.try_get(1)?;
        if stored_chain != chain_id || stored_contract != hex_address(&contract) {
            return Err(StoreError::WrongChain {
                stored_chain,
                stored_contract,
                chain: chain_id,
                contract,
            });
        }
        int("index_cursor", "next_block", row.try_get(2)?)
    }

    /// The next block to index (`None` before [`Self::init_cursor`]).
    pub async fn next_block(&self) -> Result<Option<u64>> {
        let row = sqlx::query("SELECT next_block FROM index_cursor WHERE id = 1")
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| int("index_cursor", "next_block", row.try_get(0)?))
            .transpose()
    }

    /// The highest indexed block with its hash.
    pub async fn last_indexed_block(&self) -> Result<Option<(u64, B256)>> {
        let row =
            sqlx::query("SELECT number, hash FROM indexed_blocks ORDER BY number DESC LIMIT 1")
                .fetch_optional(&self.pool)
                .await?;
        row.map(|row| block_row(&row)).transpose()
    }

    /// Indexed blocks below `below`, highest first, at most `limit`.
    pub async fn indexed_blocks_below(&self, below: u64, limit: u32) -> Result<Vec<(u64, B256)>> {
        let rows = sqlx::query("SELECT number, hash FROM indexed_blocks WHERE number < $1 ORDER BY number DESC LIMIT $2")
            .bind(to_i64(below))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(block_row).collect()
    }

    /// Stores the logs of blocks `..=range_end.0` and moves the cursor past it, in one
    /// transaction: a log already stored (same block hash and log index) is skipped, so a retried
    /// range never counts an event twice. Returns how many new events were applied.
    pub async fn commit_range(&self, range_end: (u64, B256), logs: &[RawLog]) -> Result<usize> {
        let applied = self.commit_range_inner(None, range_end, logs).await?;
        Ok(applied.unwrap_or(0))
    }

    /// Like [`Self::commit_range`] for the range starting at `next`, only while the cursor is
    /// still `next`: `None` (nothing written) when another indexer moved it. The cursor row is
    /// updated first, so concurrent indexers queue on its row lock and only one commits a range.
    pub async fn commit_range_from(
        &self,
        next: u64,
        range_end: (u64, B256),
        logs: &[RawLog],
    ) -> Result<Option<usize>> {
        self.commit_range_inner(Some(next), range_end, logs).await
    }

    async fn commit_range_inner(
        &self,
        expected_next: Option<u64>,
        range_end: (u64, B256),
        logs: &[RawLog],
    ) -> Result<Option<usize>> {
        let mut tx = self.pool.begin().await?;
        if !move_cursor(&mut tx, expected_next, range_end.0 + 1).await? {
            tx.rollback().await?;
            return Ok(None);
        }
        let mut applied = 0;
        for log in logs {
            let event = log.decode()?;
            if insert_event(&mut tx, log, &event).await? {
                let at = At {
                    block: log.block_number,
                    timestamp: log.block_timestamp,
                };
                apply_event(&mut tx, at, &event, &log.data).await?;
                applied += 1;
            }
            record_block(&mut tx, log.block_number, &log.block_hash).await?;
        }
        record_block(&mut tx, range_end.0, &range_end.1).await?;
        tx.commit().await?;
        Ok(Some(applied))
    }

    /// Undoes everything above block `fork` (the highest block still on the canonical chain):
    /// deletes its events and block hashes, rebuilds the derived state from the remaining events
    /// and moves the cursor to `fork + 1`, in one transaction. Uploaded results and blobs stay.
    pub async fn roll_back_above(&self, fork: u64) -> Result<u64> {
        let removed = self.roll_back_inner(None, fork).await?;
        Ok(removed.unwrap_or(0))
    }

    /// Like [`Self::roll_back_above`], only while the cursor is still `next`: `None` (nothing
    /// changed) when another indexer moved it.
    pub async fn roll_back_above_from(&self, next: u64, fork: u64) -> Result<Option<u64>> {
        self.roll_back_inner(Some(next), fork).await
    }

    async fn roll_back_inner(&self, expected_next: Option<u64>, fork: u64) -> Result<Option<u64>> {
        let mut tx = self.pool.begin().await?;
        if !move_cursor(&mut tx, expected_next, fork + 1).await? {
            tx.rollback().await?;
            return Ok(None);
        }
        let removed = sqlx::query("DELETE FROM events WHERE block_number > $1")
            .bind(to_i64(fork))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM indexed_blocks WHERE number > $1")
            .bind(to_i64(fork))
            .execute(&mut *tx)
            .await?;
        rebuild_derived(&mut tx).await?;
        tx.commit().await?;
        Ok(Some(removed))
    }

    /// Forgets block hashes below `below` (reorgs deeper than that are not recoverable).
    pub async fn prune_block_hashes(&self, below: u64) -> Result<()> {
        sqlx::query("DELETE FROM indexed_blocks WHERE number < $1")
            .bind(to_i64(below))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Test and benchmark support: applies events as if they were indexed from consecutive
    /// synthetic blocks after the cursor (no chain needed). Production code indexes via
    /// [`Self::commit_range`].
    pub async fn apply_synthetic_events(
        &self,
        block_number: u64,
        events: &[VerinferEvent],
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let at = At {
            block: block_number,
            timestamp: None,
        };
        for event in events {
            derived::apply(&mut tx, at, event).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Test and benchmark support: like [`Self::apply_synthetic_events`] for raw logs, stored and
    /// decoded as the indexer stores and decodes them (the registry's and the parameters' events
    /// included), in a block made at `timestamp`.
    pub async fn apply_synthetic_logs(
        &self,
        block_number: u64,
        timestamp: Option<u64>,
        logs: &[LogData],
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let at = At {
            block: block_number,
            timestamp,
        };
        // Stored as the indexer stores them (the explorer reads the raw events), in a block whose
        // hash and transactions are made up from its number.
        let block_hash = alloy_primitives::keccak256(block_number.to_be_bytes());
        for (index, data) in logs.iter().enumerate() {
            let log = RawLog {
                block_number,
                block_hash,
                log_index: index as u64,
                tx_hash: alloy_primitives::keccak256(
                    [block_hash.as_slice(), &index.to_be_bytes()].concat(),
                ),
                block_timestamp: timestamp,
                data: data.clone(),
            };
            let event = log.decode()?;
            insert_event(&mut tx, &log, &event).await?;
            apply_event(&mut tx, at, &event, data).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records what uploaded args say that the chain does not (kind, precision), for the
    /// explorer's calibration page; a second upload of the same args changes nothing.
    pub async fn record_args_info(
        &self,
        args_hash: B256,
        args: &verinfer_task::TaskArgs,
    ) -> Result<()> {
        let precision = match args {
            verinfer_task::TaskArgs::Image(image) => image.precision,
            verinfer_task::TaskArgs::Text(_) => verinfer_task::Precision::F32,
        };
        let precision = match precision {
            verinfer_task::Precision::F32 => "f32",
            verinfer_task::Precision::F16 => "f16",
            verinfer_task::Precision::Bf16 => "bf16",
        };
        sqlx::query(
            "INSERT INTO args_info (args_hash, kind, precision) VALUES ($1, $2, $3) \
             ON CONFLICT (args_hash) DO NOTHING",
        )
        .bind(hex_b256(&args_hash))
        .bind(args.kind().as_str())
        .bind(precision)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    // ------------------------------------------------------------------ derived reads

    /// A task.
    pub async fn task(&self, task_id: u64) -> Result<Option<TaskRecord>> {
        let mut conn = self.pool.acquire().await?;
        load_task(&mut conn, task_id).await
    }

    /// A task's selected nodes with their commitments and reveals, by slot.
    pub async fn task_nodes(&self, task_id: u64) -> Result<Vec<TaskNodeRecord>> {
        let mut conn = self.pool.acquire().await?;
        load_task_nodes(&mut conn, task_id).await
    }

    /// A node.
    pub async fn node(&self, address: Address) -> Result<Option<NodeRecord>> {
        let mut conn = self.pool.acquire().await?;
        load_node(&mut conn, address).await
    }

    /// Nodes ordered by node id.
    pub async fn nodes(&self, offset: u64, limit: u64) -> Result<Vec<NodeRecord>> {
        Ok(self
            .nodes_with_claimable(offset, limit)
            .await?
            .into_iter()
            .map(|(node, _)| node)
            .collect())
    }

    /// Nodes ordered by node id, each with what its account may withdraw.
    pub async fn nodes_with_claimable(
        &self,
        offset: u64,
        limit: u64,
    ) -> Result<Vec<(NodeRecord, u128)>> {
        let rows = sqlx::query(
            "SELECT nodes.address, node_id, state, stake, gpu_model, gpu_model_name, vram_mib, task_id, \
             nodes.updated_block, fee_tier, accounts.claimable FROM nodes \
             LEFT JOIN accounts ON accounts.address = nodes.address ORDER BY node_id LIMIT $1 OFFSET $2",
        )
        .bind(to_i64(limit))
        .bind(to_i64(offset))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let claimable: Option<String> = row.try_get(10)?;
                let claimable = claimable
                    .map(|text| parse("accounts", "claimable", text))
                    .transpose()?
                    .unwrap_or(0);
                Ok((node_row(row)?, claimable))
            })
            .collect()
    }

    /// An account's withdrawable balance (zero for an account never credited).
    pub async fn account(&self, address: Address) -> Result<AccountRecord> {
        let mut conn = self.pool.acquire().await?;
        Ok(load_account(&mut conn, address).await?.unwrap_or_default())
    }

    /// Credits of `task_id`'s settlement or expiry, in chain order.
    pub async fn task_credits(&self, task_id: u64) -> Result<Vec<CreditRecord>> {
        let rows = sqlx::query(
            "SELECT account, task_id, reason, amount, block_number FROM credits WHERE task_id = $1 ORDER BY seq",
        )
        .bind(to_i64(task_id))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(credit_row).collect()
    }

    /// Credits of `account`, in chain order.
    pub async fn account_credits(&self, account: Address) -> Result<Vec<CreditRecord>> {
        let rows = sqlx::query(
            "SELECT account, task_id, reason, amount, block_number FROM credits WHERE account = $1 ORDER BY seq",
        )
        .bind(hex_address(&account))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(credit_row).collect()
    }

    /// The GPU model registry in registration order, with each model's available nodes.
    pub async fn gpu_models(&self) -> Result<Vec<GpuModelRecord>> {
        let rows = sqlx::query(
            "SELECT id, position, name, vram_mib, active, \
             (SELECT COUNT(*) FROM nodes WHERE nodes.gpu_model = gpu_models.id AND nodes.state = $1) \
             FROM gpu_models ORDER BY position",
        )
        .bind(NodeState::Available.wire_name())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                const T: &str = "gpu_models";
                Ok(GpuModelRecord {
                    id: parse(T, "id", row.try_get(0)?)?,
                    position: int(T, "position", row.try_get(1)?)?,
                    name: row.try_get(2)?,
                    vram_mib: int(T, "vram_mib", row.try_get(3)?)?,
                    active: row.try_get::<i64, _>(4)? != 0,
                    available_nodes: int(T, "available_nodes", row.try_get(5)?)?,
                })
            })
            .collect()
    }

    /// The registered name of GPU model `id`.
    pub async fn gpu_model_name(&self, id: B256) -> Result<Option<String>> {
        let row = sqlx::query("SELECT name FROM gpu_models WHERE id = $1")
            .bind(hex_b256(&id))
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|row| row.try_get(0)).transpose()?)
    }

    /// The last activated parameter version and the scheduled one, if any.
    pub async fn params(&self) -> Result<(Option<ParamsRecord>, Option<ParamsRecord>)> {
        let rows = sqlx::query(
            "SELECT version, state, params, effective_at FROM params_versions WHERE state = $1 OR state = $2 \
             ORDER BY version",
        )
        .bind(ParamsState::Active.as_str())
        .bind(ParamsState::Scheduled.as_str())
        .fetch_all(&self.pool)
        .await?;
        let mut active = None;
        let mut scheduled = None;
        for row in &rows {
            let record = params_row(row)?;
            match record.state {
                ParamsState::Active => active = Some(record),
                _ => scheduled = Some(record),
            }
        }
        Ok((active, scheduled))
    }

    /// Number of stored events (all kinds).
    pub async fn event_count(&self) -> Result<u64> {
        self.count_rows(CountedTable::Events).await
    }

    // ------------------------------------------------------------------ blobs and results

    /// A blob's metadata.
    pub async fn blob(&self, keccak: B256) -> Result<Option<BlobMeta>> {
        let row =
            sqlx::query("SELECT keccak, kind, content_type, size FROM blobs WHERE keccak = $1")
                .bind(hex_b256(&keccak))
                .fetch_optional(&self.pool)
                .await?;
        row.map(|row| {
            Ok(BlobMeta {
                keccak: parse("blobs", "keccak", row.try_get(0)?)?,
                kind: row.try_get(1)?,
                content_type: row.try_get(2)?,
                size: int("blobs", "size", row.try_get(3)?)?,
            })
        })
        .transpose()
    }

    /// Records a blob (after its bytes were written); `false` when it was already recorded.
    pub async fn insert_blob(&self, meta: &BlobMeta) -> Result<bool> {
        let mut conn = self.pool.acquire().await?;
        insert_blob(&mut conn, meta).await
    }

    /// Records an accepted upload with its blobs, in one transaction.
    pub async fn insert_result(
        &self,
        result: &ResultRecord,
        blobs: &[BlobMeta],
    ) -> Result<ResultInsert> {
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO results (task_id, node, kind, payload_hash, signature, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (task_id, node) DO NOTHING",
        )
        .bind(to_i64(result.task_id))
        .bind(hex_address(&result.node))
        .bind(result.kind.as_str())
        .bind(hex_b256(&result.payload_hash))
        .bind(result.signature.clone())
        .bind(now_unix())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            let existing: String =
                sqlx::query("SELECT payload_hash FROM results WHERE task_id = $1 AND node = $2")
                    .bind(to_i64(result.task_id))
                    .bind(hex_address(&result.node))
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get(0)?;
            return Ok(if existing == hex_b256(&result.payload_hash) {
                ResultInsert::AlreadyStored
            } else {
                ResultInsert::Conflict
            });
        }
        for meta in blobs {
            insert_blob(&mut tx, meta).await?;
        }
        for (position, item) in result.items.iter().enumerate() {
            sqlx::query(
                "INSERT INTO result_items (task_id, node, position, blob, phash) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(to_i64(result.task_id))
            .bind(hex_address(&result.node))
            .bind(to_i64(position as u64))
            .bind(hex_b256(&item.blob))
            .bind(item.phash.map(|phash| format!("{phash:#018x}")))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(ResultInsert::Stored)
    }

    /// The payload hash of `node`'s stored upload for `task_id`.
    pub async fn result_payload_hash(&self, task_id: u64, node: Address) -> Result<Option<B256>> {
        let row = sqlx::query("SELECT payload_hash FROM results WHERE task_id = $1 AND node = $2")
            .bind(to_i64(task_id))
            .bind(hex_address(&node))
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| parse("results", "payload_hash", row.try_get(0)?))
            .transpose()
    }

    /// Every stored upload of a task.
    pub async fn results(&self, task_id: u64) -> Result<Vec<ResultRecord>> {
        let rows = sqlx::query(
            "SELECT node, kind, payload_hash, signature FROM results WHERE task_id = $1 ORDER BY node",
        )
        .bind(to_i64(task_id))
        .fetch_all(&self.pool)
        .await?;
        let mut results = Vec::with_capacity(rows.len());
        for row in rows {
            let node: Address = parse("results", "node", row.try_get(0)?)?;
            let kind_text: String = row.try_get(1)?;
            let kind = kind_text
                .parse::<TaskKind>()
                .ok()
                .ok_or(StoreError::Corrupt {
                    table: "results",
                    column: "kind",
                    value: kind_text,
                })?;
            let items = sqlx::query(
                "SELECT blob, phash FROM result_items WHERE task_id = $1 AND node = $2 ORDER BY position",
            )
            .bind(to_i64(task_id))
            .bind(hex_address(&node))
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(|item| {
                let phash: Option<String> = item.try_get(1)?;
                Ok(ResultItem {
                    blob: parse("result_items", "blob", item.try_get(0)?)?,
                    phash: phash.map(|text| parse_phash("result_items", "phash", text)).transpose()?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
            results.push(ResultRecord {
                task_id,
                node,
                kind,
                payload_hash: parse("results", "payload_hash", row.try_get(2)?)?,
                signature: row.try_get(3)?,
                items,
            });
        }
        Ok(results)
    }
}

/// Tables whose rows tests count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum CountedTable {
    Events,
    Tasks,
    Nodes,
    Blobs,
    Results,
    ResultItems,
}

fn block_row(row: &AnyRow) -> Result<(u64, B256)> {
    Ok((
        int("indexed_blocks", "number", row.try_get(0)?)?,
        parse("indexed_blocks", "hash", row.try_get(1)?)?,
    ))
}

fn parse_phash(table: &'static str, column: &'static str, text: String) -> Result<u64> {
    text.strip_prefix("0x")
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        .ok_or(StoreError::Corrupt {
            table,
            column,
            value: text,
        })
}

/// Sets the cursor to `to`, first (in its transaction) so that the row lock orders concurrent
/// indexers; with `expected`, only when the cursor is still there. `false`: it was not.
async fn move_cursor(conn: &mut AnyConnection, expected: Option<u64>, to: u64) -> Result<bool> {
    let updated = match expected {
        Some(expected) => {
            sqlx::query("UPDATE index_cursor SET next_block = $1 WHERE id = 1 AND next_block = $2")
                .bind(to_i64(to))
                .bind(to_i64(expected))
                .execute(&mut *conn)
                .await?
        }
        None => {
            sqlx::query("UPDATE index_cursor SET next_block = $1 WHERE id = 1")
                .bind(to_i64(to))
                .execute(&mut *conn)
                .await?
        }
    };
    Ok(expected.is_none() || updated.rows_affected() == 1)
}

async fn record_block(conn: &mut AnyConnection, number: u64, hash: &B256) -> Result<()> {
    sqlx::query("INSERT INTO indexed_blocks (number, hash) VALUES ($1, $2) ON CONFLICT (number) DO UPDATE SET hash = $2")
        .bind(to_i64(number))
        .bind(hex_b256(hash))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn insert_blob(conn: &mut AnyConnection, meta: &BlobMeta) -> Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO blobs (keccak, kind, content_type, size, created_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (keccak) DO NOTHING",
    )
    .bind(hex_b256(&meta.keccak))
    .bind(meta.kind.clone())
    .bind(meta.content_type.clone())
    .bind(to_i64(meta.size))
    .bind(now_unix())
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Folds one decoded log into the derived tables: a [`VerinferEvent`], or for the events it keeps
/// by name only, the registry's and the parameters' ([`AdminEvent`]).
/// Stores one raw log; `false` when it was already stored (same block hash and log index).
async fn insert_event(
    conn: &mut AnyConnection,
    log: &RawLog,
    event: &VerinferEvent,
) -> Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO events (block_number, block_hash, log_index, tx_hash, name, task_id, node, topics, data, block_timestamp) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (block_hash, log_index) DO NOTHING",
    )
    .bind(to_i64(log.block_number))
    .bind(hex_b256(&log.block_hash))
    .bind(to_i64(log.log_index))
    .bind(hex_b256(&log.tx_hash))
    .bind(event.name().to_owned())
    .bind(event.task_id().map(to_i64))
    .bind(event.node().map(|node| hex_address(&node)))
    .bind(log.topics_text())
    .bind(log.data_text())
    .bind(log.block_timestamp.map(to_i64))
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

async fn apply_event(
    conn: &mut AnyConnection,
    at: At,
    event: &VerinferEvent,
    data: &LogData,
) -> Result<()> {
    match event {
        VerinferEvent::Other { .. } => match AdminEvent::decode(data) {
            Some(admin) => derived::apply_admin(conn, at, &admin).await,
            None => Ok(()),
        },
        event => derived::apply(conn, at, event).await,
    }
}

/// Replays every stored event, in chain order, into empty derived tables.
async fn rebuild_derived(tx: &mut Transaction<'static, Any>) -> Result<()> {
    for table in [
        "DELETE FROM tasks",
        "DELETE FROM task_nodes",
        "DELETE FROM nodes",
        "DELETE FROM gpu_models",
        "DELETE FROM params_versions",
        "DELETE FROM accounts",
        "DELETE FROM credits",
        "DELETE FROM node_stats",
    ] {
        sqlx::query(table).execute(&mut **tx).await?;
    }
    const PAGE: i64 = 2000;
    let mut after: (i64, i64) = (-1, -1);
    loop {
        let rows = sqlx::query(
            "SELECT block_number, log_index, topics, data, block_timestamp FROM events \
             WHERE block_number > $1 OR (block_number = $1 AND log_index > $2) \
             ORDER BY block_number, log_index LIMIT $3",
        )
        .bind(after.0)
        .bind(after.1)
        .bind(PAGE)
        .fetch_all(&mut **tx)
        .await?;
        let Some(last) = rows.last() else { break };
        after = (last.try_get(0)?, last.try_get(1)?);
        let page_len = rows.len();
        for row in rows {
            let block: i64 = row.try_get(0)?;
            let topics: String = row.try_get(2)?;
            let data: String = row.try_get(3)?;
            let log_data = RawLog::parse_data(&topics, &data).ok_or(StoreError::Corrupt {
                table: "events",
                column: "topics/data",
                value: topics.clone(),
            })?;
            let timestamp: Option<i64> = row.try_get(4)?;
            let raw = RawLog {
                block_number: int("events", "block_number", block)?,
                block_hash: B256::ZERO,
                log_index: int("events", "log_index", row.try_get(1)?)?,
                tx_hash: B256::ZERO,
                block_timestamp: timestamp
                    .map(|t| int("events", "block_timestamp", t))
                    .transpose()?,
                data: log_data,
            };
            let at = At {
                block: raw.block_number,
                timestamp: raw.block_timestamp,
            };
            apply_event(tx, at, &raw.decode()?, &raw.data).await?;
        }
        if page_len < PAGE as usize {
            break;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------- row mapping

pub(crate) const TASK_COLUMNS: &str = "task_id, creator, kind, status, image_count, min_vram_mib, args_hash, gpu_model, fee, \
     queue_key, node0, node1, node2, committed_mask, revealed_mask, invalid_mask, commit_deadline, reveal_deadline, \
     agreeing_mask, distances, threshold, reward_per_node, created_block, updated_block, seed_block, fee_level, \
     params_version, expires_at, mode, sampling_bps, sample_block, sample_decided_block, checked, check_seed_block";

pub(crate) async fn load_task(
    conn: &mut AnyConnection,
    task_id: u64,
) -> Result<Option<TaskRecord>> {
    let sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE task_id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(to_i64(task_id))
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|row| task_row(&row)).transpose()
}

pub(crate) fn task_row(row: &AnyRow) -> Result<TaskRecord> {
    const T: &str = "tasks";
    let kind_text: String = row.try_get("kind")?;
    let status_text: String = row.try_get("status")?;
    let node0: Option<String> = row.try_get("node0")?;
    let node1: Option<String> = row.try_get("node1")?;
    let node2: Option<String> = row.try_get("node2")?;
    let nodes = match (node0, node1, node2) {
        (Some(a), Some(b), Some(c)) => [
            parse(T, "node0", a)?,
            parse(T, "node1", b)?,
            parse(T, "node2", c)?,
        ],
        _ => [Address::ZERO; 3],
    };
    let status = TaskStatus::from_wire_name(&status_text).ok_or(StoreError::Corrupt {
        table: T,
        column: "status",
        value: status_text,
    })?;
    let agreeing: Option<i64> = row.try_get("agreeing_mask")?;
    let settlement = match agreeing {
        Some(mask) => {
            let distances_text: Option<String> = row.try_get("distances")?;
            let distances_text = distances_text.unwrap_or_default();
            let distances =
                serde_json::from_str(&distances_text).map_err(|_| StoreError::Corrupt {
                    table: T,
                    column: "distances",
                    value: distances_text,
                })?;
            let threshold: Option<i64> = row.try_get("threshold")?;
            let reward: Option<String> = row.try_get("reward_per_node")?;
            Some(Settlement {
                outcome: status,
                agreeing_mask: int(T, "agreeing_mask", mask)?,
                distances,
                threshold: int(T, "threshold", threshold.unwrap_or(-1))?,
                reward_per_node: parse(T, "reward_per_node", reward.unwrap_or_default())?,
            })
        }
        None => None,
    };
    let queue_key: Option<String> = row.try_get("queue_key")?;
    let mode_text: String = row.try_get("mode")?;
    let mode = ValidationMode::from_wire_name(&mode_text).ok_or(StoreError::Corrupt {
        table: T,
        column: "mode",
        value: mode_text,
    })?;
    let chain = ChainTask {
        task_id: int(T, "task_id", row.try_get("task_id")?)?,
        creator: parse(T, "creator", row.try_get("creator")?)?,
        kind: kind_text
            .parse::<TaskKind>()
            .ok()
            .ok_or(StoreError::Corrupt {
                table: T,
                column: "kind",
                value: kind_text,
            })?,
        status,
        image_count: int(T, "image_count", row.try_get("image_count")?)?,
        min_vram_mib: int(T, "min_vram_mib", row.try_get("min_vram_mib")?)?,
        args_hash: parse(T, "args_hash", row.try_get("args_hash")?)?,
        gpu_model: parse(T, "gpu_model", row.try_get("gpu_model")?)?,
        fee: parse(T, "fee", row.try_get("fee")?)?,
        nodes,
        committed_mask: int(T, "committed_mask", row.try_get("committed_mask")?)?,
        revealed_mask: int(T, "revealed_mask", row.try_get("revealed_mask")?)?,
        invalid_mask: int(T, "invalid_mask", row.try_get("invalid_mask")?)?,
        commit_deadline: int(T, "commit_deadline", row.try_get("commit_deadline")?)?,
        reveal_deadline: int(T, "reveal_deadline", row.try_get("reveal_deadline")?)?,
        fee_level: int(T, "fee_level", row.try_get("fee_level")?)?,
        params_version: int(T, "params_version", row.try_get("params_version")?)?,
        expires_at: int(T, "expires_at", row.try_get("expires_at")?)?,
        mode,
        checked: row.try_get::<i64, _>("checked")? != 0,
        sample_block: int(T, "sample_block", row.try_get("sample_block")?)?,
    };
    let seed_block: Option<i64> = row.try_get("seed_block")?;
    let sampling_bps: Option<i64> = row.try_get("sampling_bps")?;
    let sample_decided_block: Option<i64> = row.try_get("sample_decided_block")?;
    let check_seed_block: Option<i64> = row.try_get("check_seed_block")?;
    Ok(TaskRecord {
        chain,
        queue_key: queue_key
            .map(|key| parse(T, "queue_key", key))
            .transpose()?,
        settlement,
        seed_block: seed_block
            .map(|block| int(T, "seed_block", block))
            .transpose()?,
        created_block: int(T, "created_block", row.try_get("created_block")?)?,
        updated_block: int(T, "updated_block", row.try_get("updated_block")?)?,
        sampling_bps: sampling_bps
            .map(|bps| int(T, "sampling_bps", bps))
            .transpose()?,
        sample_decided_block: sample_decided_block
            .map(|block| int(T, "sample_decided_block", block))
            .transpose()?,
        check_seed_block: check_seed_block
            .map(|block| int(T, "check_seed_block", block))
            .transpose()?,
    })
}

pub(crate) async fn save_task(conn: &mut AnyConnection, task: &TaskRecord) -> Result<()> {
    let nodes = task
        .nodes()
        .map(|nodes| nodes.map(|node| hex_address(&node)));
    let [node0, node1, node2] =
        nodes.map_or([None, None, None], |[a, b, c]| [Some(a), Some(b), Some(c)]);
    let settlement = task.settlement.as_ref();
    let sql = format!(
        "INSERT INTO tasks ({TASK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
         $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33, $34) ON CONFLICT (task_id) DO UPDATE SET creator = $2, kind = $3, \
         status = $4, image_count = $5, min_vram_mib = $6, args_hash = $7, gpu_model = $8, fee = $9, queue_key = $10, \
         node0 = $11, node1 = $12, node2 = $13, committed_mask = $14, revealed_mask = $15, invalid_mask = $16, \
         commit_deadline = $17, reveal_deadline = $18, agreeing_mask = $19, distances = $20, threshold = $21, \
         reward_per_node = $22, created_block = $23, updated_block = $24, seed_block = $25, fee_level = $26, \
         params_version = $27, expires_at = $28, mode = $29, sampling_bps = $30, sample_block = $31, \
         sample_decided_block = $32, checked = $33, check_seed_block = $34"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(to_i64(task.chain.task_id))
        .bind(hex_address(&task.chain.creator))
        .bind(task.chain.kind.as_str())
        .bind(task.chain.status.wire_name())
        .bind(i64::from(task.chain.image_count))
        .bind(i64::from(task.chain.min_vram_mib))
        .bind(hex_b256(&task.chain.args_hash))
        .bind(hex_b256(&task.chain.gpu_model))
        .bind(task.chain.fee.to_string())
        .bind(task.queue_key.as_ref().map(hex_b256))
        .bind(node0)
        .bind(node1)
        .bind(node2)
        .bind(i64::from(task.chain.committed_mask))
        .bind(i64::from(task.chain.revealed_mask))
        .bind(i64::from(task.chain.invalid_mask))
        .bind(i64::from(task.chain.commit_deadline))
        .bind(i64::from(task.chain.reveal_deadline))
        .bind(settlement.map(|s| i64::from(s.agreeing_mask)))
        .bind(settlement.map(|s| serde_json::to_string(&s.distances).unwrap_or_default()))
        .bind(settlement.map(|s| i64::from(s.threshold)))
        .bind(settlement.map(|s| s.reward_per_node.to_string()))
        .bind(to_i64(task.created_block))
        .bind(to_i64(task.updated_block))
        .bind(task.seed_block.map(to_i64))
        .bind(i64::from(task.chain.fee_level))
        .bind(i64::from(task.chain.params_version))
        .bind(to_i64(task.chain.expires_at))
        .bind(task.chain.mode.wire_name())
        .bind(task.sampling_bps.map(i64::from))
        .bind(to_i64(task.chain.sample_block))
        .bind(task.sample_decided_block.map(to_i64))
        .bind(i64::from(task.chain.checked))
        .bind(task.check_seed_block.map(to_i64))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub(crate) async fn load_task_nodes(
    conn: &mut AnyConnection,
    task_id: u64,
) -> Result<Vec<TaskNodeRecord>> {
    let rows = sqlx::query(
        "SELECT task_id, slot, node, commitment, phashes, text_digest, invalid_args FROM task_nodes \
         WHERE task_id = $1 ORDER BY slot",
    )
    .bind(to_i64(task_id))
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            const T: &str = "task_nodes";
            let commitment: Option<String> = row.try_get(3)?;
            let phashes: Option<String> = row.try_get(4)?;
            let digest: Option<String> = row.try_get(5)?;
            let phashes = phashes
                .map(|text| {
                    let hexes: Vec<String> =
                        serde_json::from_str(&text).map_err(|_| StoreError::Corrupt {
                            table: T,
                            column: "phashes",
                            value: text.clone(),
                        })?;
                    hexes
                        .into_iter()
                        .map(|hex| parse_phash(T, "phashes", hex))
                        .collect::<Result<Vec<u64>>>()
                })
                .transpose()?;
            Ok(TaskNodeRecord {
                task_id: int(T, "task_id", row.try_get(0)?)?,
                slot: int(T, "slot", row.try_get(1)?)?,
                node: parse(T, "node", row.try_get(2)?)?,
                commitment: commitment.map(|c| parse(T, "commitment", c)).transpose()?,
                phashes,
                text_digest: digest.map(|d| parse(T, "text_digest", d)).transpose()?,
                invalid_args: row.try_get::<i64, _>(6)? != 0,
            })
        })
        .collect()
}

pub(crate) async fn save_task_node(
    conn: &mut AnyConnection,
    record: &TaskNodeRecord,
) -> Result<()> {
    let phashes = record.phashes.as_ref().map(|phashes| {
        serde_json::to_string(
            &phashes
                .iter()
                .map(|phash| format!("{phash:#018x}"))
                .collect::<Vec<_>>(),
        )
        .unwrap_or_default()
    });
    sqlx::query(
        "INSERT INTO task_nodes (task_id, slot, node, commitment, phashes, text_digest, invalid_args) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (task_id, slot) DO UPDATE SET node = $3, commitment = $4, \
         phashes = $5, text_digest = $6, invalid_args = $7",
    )
    .bind(to_i64(record.task_id))
    .bind(i64::from(record.slot))
    .bind(hex_address(&record.node))
    .bind(record.commitment.as_ref().map(hex_b256))
    .bind(phashes)
    .bind(record.text_digest.as_ref().map(hex_b256))
    .bind(i64::from(record.invalid_args))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(crate) async fn load_node(
    conn: &mut AnyConnection,
    address: Address,
) -> Result<Option<NodeRecord>> {
    let row = sqlx::query(
        "SELECT address, node_id, state, stake, gpu_model, gpu_model_name, vram_mib, task_id, updated_block, fee_tier \
         FROM nodes WHERE address = $1",
    )
    .bind(hex_address(&address))
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|row| node_row(&row)).transpose()
}

pub(crate) fn node_row(row: &AnyRow) -> Result<NodeRecord> {
    const T: &str = "nodes";
    let state_text: String = row.try_get(2)?;
    Ok(NodeRecord {
        address: parse(T, "address", row.try_get(0)?)?,
        node_id: int(T, "node_id", row.try_get(1)?)?,
        state: NodeState::from_wire_name(&state_text).ok_or(StoreError::Corrupt {
            table: T,
            column: "state",
            value: state_text,
        })?,
        stake: parse(T, "stake", row.try_get(3)?)?,
        gpu_model: parse(T, "gpu_model", row.try_get(4)?)?,
        gpu_model_name: row.try_get(5)?,
        vram_mib: int(T, "vram_mib", row.try_get(6)?)?,
        task_id: int(T, "task_id", row.try_get(7)?)?,
        updated_block: int(T, "updated_block", row.try_get(8)?)?,
        fee_tier: int(T, "fee_tier", row.try_get(9)?)?,
    })
}

pub(crate) async fn save_node(conn: &mut AnyConnection, node: &NodeRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO nodes (address, node_id, state, stake, gpu_model, gpu_model_name, vram_mib, task_id, updated_block, fee_tier) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (address) DO UPDATE SET node_id = $2, state = $3, \
         stake = $4, gpu_model = $5, gpu_model_name = $6, vram_mib = $7, task_id = $8, updated_block = $9, fee_tier = $10",
    )
    .bind(hex_address(&node.address))
    .bind(i64::from(node.node_id))
    .bind(node.state.wire_name())
    .bind(node.stake.to_string())
    .bind(hex_b256(&node.gpu_model))
    .bind(node.gpu_model_name.clone())
    .bind(i64::from(node.vram_mib))
    .bind(to_i64(node.task_id))
    .bind(to_i64(node.updated_block))
    .bind(i64::from(node.fee_tier))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------- balances

async fn load_account(conn: &mut AnyConnection, address: Address) -> Result<Option<AccountRecord>> {
    const T: &str = "accounts";
    let row = sqlx::query("SELECT claimable, credited, withdrawn FROM accounts WHERE address = $1")
        .bind(hex_address(&address))
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|row| {
        Ok(AccountRecord {
            claimable: parse(T, "claimable", row.try_get(0)?)?,
            credited: parse(T, "credited", row.try_get(1)?)?,
            withdrawn: parse(T, "withdrawn", row.try_get(2)?)?,
        })
    })
    .transpose()
}

async fn save_account(
    conn: &mut AnyConnection,
    address: Address,
    account: &AccountRecord,
    block: u64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO accounts (address, claimable, credited, withdrawn, updated_block) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (address) DO UPDATE SET claimable = $2, credited = $3, withdrawn = $4, updated_block = $5",
    )
    .bind(hex_address(&address))
    .bind(account.claimable.to_string())
    .bind(account.credited.to_string())
    .bind(account.withdrawn.to_string())
    .bind(to_i64(block))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// `BalanceCredited`: the account's balance grows, and the credit is recorded.
pub(crate) async fn add_credit(
    conn: &mut AnyConnection,
    account: Address,
    task_id: u64,
    reason: CreditReason,
    amount: u128,
    block: u64,
) -> Result<()> {
    let mut balance = load_account(conn, account).await?.unwrap_or_default();
    balance.claimable = balance.claimable.saturating_add(amount);
    balance.credited = balance.credited.saturating_add(amount);
    save_account(conn, account, &balance, block).await?;
    sqlx::query(
        "INSERT INTO credits (seq, account, task_id, reason, amount, block_number) \
         VALUES ((SELECT COALESCE(MAX(seq), 0) + 1 FROM credits), $1, $2, $3, $4, $5)",
    )
    .bind(hex_address(&account))
    .bind(to_i64(task_id))
    .bind(reason.wire_name())
    .bind(amount.to_string())
    .bind(to_i64(block))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// `Withdrawn`: the account took `amount` (all it had).
pub(crate) async fn withdraw(
    conn: &mut AnyConnection,
    account: Address,
    amount: u128,
    block: u64,
) -> Result<()> {
    let mut balance = load_account(conn, account).await?.unwrap_or_default();
    balance.claimable = balance.claimable.saturating_sub(amount);
    balance.withdrawn = balance.withdrawn.saturating_add(amount);
    save_account(conn, account, &balance, block).await
}

fn credit_row(row: &AnyRow) -> Result<CreditRecord> {
    const T: &str = "credits";
    let reason: String = row.try_get(2)?;
    Ok(CreditRecord {
        account: parse(T, "account", row.try_get(0)?)?,
        task_id: int(T, "task_id", row.try_get(1)?)?,
        reason: CreditReason::from_wire_name(&reason).ok_or(StoreError::Corrupt {
            table: T,
            column: "reason",
            value: reason,
        })?,
        amount: parse(T, "amount", row.try_get(3)?)?,
        block: int(T, "block_number", row.try_get(4)?)?,
    })
}

// ---------------------------------------------------------------------- GPU model registry

/// `GpuModelAdded`: the next registry entry, open to new nodes.
pub(crate) async fn add_gpu_model(
    conn: &mut AnyConnection,
    id: B256,
    name: &str,
    vram_mib: u32,
    block: u64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO gpu_models (id, position, name, vram_mib, active, added_block, updated_block) \
         VALUES ($1, (SELECT COUNT(*) FROM gpu_models), $2, $3, 1, $4, $4) ON CONFLICT (id) DO NOTHING",
    )
    .bind(hex_b256(&id))
    .bind(name.to_owned())
    .bind(i64::from(vram_mib))
    .bind(to_i64(block))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// `GpuModelActiveSet`.
pub(crate) async fn set_gpu_model_active(
    conn: &mut AnyConnection,
    id: B256,
    active: bool,
    block: u64,
) -> Result<()> {
    sqlx::query("UPDATE gpu_models SET active = $1, updated_block = $2 WHERE id = $3")
        .bind(i64::from(active))
        .bind(to_i64(block))
        .bind(hex_b256(&id))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

// ---------------------------------------------------------------------- parameter versions

/// `ParamsScheduled`: version `version` announced (a version number scheduled again replaces the
/// cancelled schedule).
pub(crate) async fn schedule_params(
    conn: &mut AnyConnection,
    version: u32,
    params: &IVerinfer::Params,
    effective_at: u64,
    block: u64,
) -> Result<()> {
    let json = serde_json::to_string(&ParamsValues::from(params)).unwrap_or_default();
    sqlx::query(
        "INSERT INTO params_versions (version, state, params, effective_at, scheduled_block, activated_block) \
         VALUES ($1, $2, $3, $4, $5, NULL) ON CONFLICT (version) DO UPDATE SET state = $2, params = $3, \
         effective_at = $4, scheduled_block = $5, activated_block = NULL",
    )
    .bind(i64::from(version))
    .bind(ParamsState::Scheduled.as_str())
    .bind(json)
    .bind(to_i64(effective_at))
    .bind(to_i64(block))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// `ParamsActivated` ([`ParamsState::Active`]: the previous active version is superseded) or
/// `ParamsScheduleCancelled` ([`ParamsState::Cancelled`], of a scheduled version only).
pub(crate) async fn set_params_state(
    conn: &mut AnyConnection,
    version: u32,
    state: ParamsState,
    block: u64,
) -> Result<()> {
    if state == ParamsState::Active {
        sqlx::query("UPDATE params_versions SET state = $1 WHERE state = $2")
            .bind(ParamsState::Superseded.as_str())
            .bind(ParamsState::Active.as_str())
            .execute(&mut *conn)
            .await?;
        sqlx::query(
            "UPDATE params_versions SET state = $1, activated_block = $2 WHERE version = $3",
        )
        .bind(ParamsState::Active.as_str())
        .bind(to_i64(block))
        .bind(i64::from(version))
        .execute(&mut *conn)
        .await?;
    } else {
        sqlx::query("UPDATE params_versions SET state = $1 WHERE version = $2 AND state = $3")
            .bind(state.as_str())
            .bind(i64::from(version))
            .bind(ParamsState::Scheduled.as_str())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The last activated parameter version: the one `createTask` uses (activation runs first).
pub(crate) async fn active_params(
    conn: &mut AnyConnection,
) -> Result<Option<(u32, IVerinfer::Params)>> {
    let row = sqlx::query(
        "SELECT version, state, params, effective_at FROM params_versions WHERE state = $1",
    )
    .bind(ParamsState::Active.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|row| params_row(&row).map(|record| (record.version, record.params)))
        .transpose()
}

/// Parameter version `version` (a task's own: checks take their queue timeout from it).
pub(crate) async fn params_of_version(
    conn: &mut AnyConnection,
    version: u32,
) -> Result<Option<IVerinfer::Params>> {
    let row = sqlx::query(
        "SELECT version, state, params, effective_at FROM params_versions WHERE version = $1",
    )
    .bind(i64::from(version))
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|row| params_row(&row).map(|record| record.params))
        .transpose()
}

fn params_row(row: &AnyRow) -> Result<ParamsRecord> {
    const T: &str = "params_versions";
    let state: String = row.try_get(1)?;
    let json: String = row.try_get(2)?;
    let corrupt = |column: &'static str, value: String| StoreError::Corrupt {
        table: T,
        column,
        value,
    };
    let values: ParamsValues =
        serde_json::from_str(&json).map_err(|_| corrupt("params", json.clone()))?;
    Ok(ParamsRecord {
        version: int(T, "version", row.try_get(0)?)?,
        state: ParamsState::parse(&state).ok_or_else(|| corrupt("state", state.clone()))?,
        params: params_of(&values).ok_or_else(|| corrupt("params", json.clone()))?,
        effective_at: int(T, "effective_at", row.try_get(3)?)?,
    })
}

/// The contract's `Params` from their stored form.
fn params_of(values: &ParamsValues) -> Option<IVerinfer::Params> {
    let amount = |text: &str| text.parse::<U96>().ok();
    Some(IVerinfer::Params {
        threshold: values.threshold,
        minTextPool: values.min_text_pool,
        slashShareBps: values.slash_share_bps,
        slashRewardBps: values.slash_reward_bps,
        protocolFeeBps: values.protocol_fee_bps,
        commitWindow: values.commit_window,
        revealWindow: values.reveal_window,
        queueTimeout: values.queue_timeout,
        minStake: amount(&values.min_stake)?,
        stakePerThresholdBit: amount(&values.stake_per_threshold_bit)?,
        minTaskFee: amount(&values.min_task_fee)?,
        minImageFee: amount(&values.min_image_fee)?,
        samplingBps: values.sampling_bps,
    })
}
