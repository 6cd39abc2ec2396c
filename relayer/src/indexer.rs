//! The chain indexer: polls the Verinfer contract's logs in bounded block ranges from a persisted
//! cursor, `confirmations` blocks behind the head, and survives reorgs.
//!
//! Each poll:
//! 1. checks the hash of the last indexed block against the chain; on a mismatch walks back over
//!    the stored block hashes to the highest block still canonical (the fork point) and rolls the
//!    events and derived state above it back (one transaction), then re-indexes from there;
//! 2. fetches the logs of `[cursor, min(cursor + max_block_range - 1, head - confirmations)]`,
//!    reads the range end's hash before and after (a reorg in between makes it retry), and stores
//!    the events, the block hashes and the new cursor in one transaction.
//!
//! Replicas: on PostgreSQL several relayer processes may share one database (and one blob
//! bucket). All serve the API; only the one holding the session-level advisory lock
//! [`INDEXER_LOCK_KEY`](crate::store::INDEXER_LOCK_KEY) on a dedicated connection indexes. The
//! others try to take it every [`STANDBY_RETRY`], so one takes over within seconds after the
//! holder dies (PostgreSQL drops a dead client's locks with its connection). The lock only saves
//! duplicate work: every write moves the cursor from the value the range was read at (compare and
//! set, on the cursor row first), and events are unique by block hash and log index, so even a
//! holder that lost its connection mid-range cannot store a range twice. On SQLite the one process
//! always indexes.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use alloy::{
    eips::BlockNumberOrTag,
    providers::{DynProvider, Provider},
    rpc::types::Filter,
};
use alloy_primitives::{Address, B256};
use tokio::sync::watch;

use crate::{
    events::{EventError, RawLog},
    metrics::Metrics,
    store::{IndexerLock, Store, StoreError},
};

/// Block hashes kept behind the cursor: the deepest reorg the indexer can undo.
pub const REORG_HISTORY_BLOCKS: u64 = 4096;

/// How often a standby replica tries to take the indexer lock.
pub const STANDBY_RETRY: Duration = Duration::from_secs(1);

/// What this process's indexer does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexerRole {
    /// Indexes: the only process (SQLite), or the replica holding the PostgreSQL lock.
    Indexing,
    /// Serves the API while another replica indexes; takes over when that one's lock goes.
    Standby,
}

/// Why a poll failed.
#[derive(Debug, thiserror::Error)]
pub enum IndexerError {
    /// The RPC failed.
    #[error("rpc error: {0}")]
    Rpc(alloy::transports::TransportError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A log could not be used.
    #[error(transparent)]
    Event(#[from] EventError),
    /// The chain has no block at a height it reported.
    #[error("the node has no block {0}")]
    MissingBlock(u64),
    /// The reorg is deeper than the stored block hashes.
    #[error(
        "reorg deeper than the {REORG_HISTORY_BLOCKS} stored block hashes below block {0}; re-index from scratch"
    )]
    ReorgTooDeep(u64),
}

impl From<alloy::transports::TransportError> for IndexerError {
    fn from(err: alloy::transports::TransportError) -> Self {
        Self::Rpc(err)
    }
}

/// Indexer settings.
#[derive(Debug, Clone, Copy)]
pub struct IndexerConfig {
    /// Chain id the database follows.
    pub chain_id: u64,
    /// The Verinfer contract.
    pub verinfer: Address,
    /// First block to index.
    pub start_block: u64,
    /// Blocks to stay behind the head.
    pub confirmations: u64,
    /// Largest `eth_getLogs` range.
    pub max_block_range: u64,
    /// Pause between polls when caught up.
    pub poll_interval: Duration,
}

/// The indexer's liveness, shared with `/healthz` and `/metrics`.
#[derive(Debug)]
pub struct IndexerStatus {
    last_success_ms: AtomicU64,
    indexed_head: AtomicU64,
    chain_head: AtomicU64,
    stale_after: Duration,
    last_error: Mutex<Option<String>>,
    standby: AtomicBool,
}

const UNSET: u64 = u64::MAX;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl IndexerStatus {
    /// A status that counts as stale when no poll succeeded for `stale_after`.
    pub fn new(stale_after: Duration) -> Self {
        Self {
            last_success_ms: AtomicU64::new(UNSET),
            indexed_head: AtomicU64::new(UNSET),
            chain_head: AtomicU64::new(UNSET),
            stale_after,
            last_error: Mutex::new(None),
            standby: AtomicBool::new(false),
        }
    }

    /// Whether this process indexes or stands by.
    pub fn role(&self) -> IndexerRole {
        if self.standby.load(Ordering::Relaxed) {
            IndexerRole::Standby
        } else {
            IndexerRole::Indexing
        }
    }

    fn set_role(&self, role: IndexerRole) {
        self.standby
            .store(role == IndexerRole::Standby, Ordering::Relaxed);
        if role == IndexerRole::Indexing {
            // Staleness counts from taking over, not from an earlier term.
            self.last_success_ms.store(UNSET, Ordering::Relaxed);
        }
    }

    /// `Ok` when a poll succeeded within `stale_after` (or this replica stands by), else why not.
    pub fn health(&self) -> Result<(), String> {
        if self.role() == IndexerRole::Standby {
            return Ok(());
        }
        let last = self.last_success_ms.load(Ordering::Relaxed);
        let error = self.last_error.lock().ok().and_then(|guard| guard.clone());
        if last == UNSET {
            return Err(error.map_or_else(
                || "no successful poll yet".to_owned(),
                |e| format!("no successful poll yet: {e}"),
            ));
        }
        let age = Duration::from_millis(now_ms().saturating_sub(last));
        if age > self.stale_after {
            let why = error.map_or_else(String::new, |e| format!(": {e}"));
            return Err(format!("last successful poll {}s ago{why}", age.as_secs()));
        }
        Ok(())
    }

    /// Last indexed block.
    pub fn indexed_head(&self) -> Option<u64> {
        Some(self.indexed_head.load(Ordering::Relaxed)).filter(|v| *v != UNSET)
    }

    /// Chain head at the last poll.
    pub fn chain_head(&self) -> Option<u64> {
        Some(self.chain_head.load(Ordering::Relaxed)).filter(|v| *v != UNSET)
    }

    fn record_success(&self, chain_head: u64, indexed_head: Option<u64>) {
        self.chain_head.store(chain_head, Ordering::Relaxed);
        if let Some(head) = indexed_head {
            self.indexed_head.store(head, Ordering::Relaxed);
        }
        self.last_success_ms.store(now_ms(), Ordering::Relaxed);
        if let Ok(mut error) = self.last_error.lock() {
            *error = None;
        }
    }

    fn record_error(&self, error: &IndexerError) {
        if let Ok(mut slot) = self.last_error.lock() {
            *slot = Some(error.to_string());
        }
    }
}

/// How an indexing term ended.
enum Term {
    Shutdown,
    LockLost,
}

/// What one poll did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PollOutcome {
    /// Events newly stored.
    pub events: usize,
    /// Blocks rolled back by a reorg (0: none).
    pub rolled_back_to: Option<u64>,
    /// The last indexed block after the poll.
    pub indexed_head: Option<u64>,
    /// `true` when the index reached `head - confirmations`.
    pub caught_up: bool,
}

/// The chain indexer.
#[derive(Debug, Clone)]
pub struct Indexer {
    provider: DynProvider,
    store: Store,
    config: IndexerConfig,
    metrics: Metrics,
    status: Arc<IndexerStatus>,
}

impl Indexer {
    /// An indexer over `provider` writing into `store`.
    pub fn new(
        provider: DynProvider,
        store: Store,
        config: IndexerConfig,
        metrics: Metrics,
    ) -> Self {
        let stale_after = (config.poll_interval * 10).max(Duration::from_secs(30));
        let status = IndexerStatus::new(stale_after);
        if store.is_postgres() {
            // A replica stands by until it holds the indexer lock.
            status.set_role(IndexerRole::Standby);
        }
        Self {
            provider,
            store,
            config,
            metrics,
            status: Arc::new(status),
        }
    }

    /// Liveness, for `/healthz`.
    pub fn status(&self) -> Arc<IndexerStatus> {
        self.status.clone()
    }

    /// Polls until `shutdown` turns true; errors are logged and retried after the poll interval.
    /// On PostgreSQL it polls only while holding the indexer lock and stands by otherwise (see
    /// the module documentation).
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> Result<(), IndexerError> {
        self.store
            .init_cursor(
                self.config.chain_id,
                self.config.verinfer,
                self.config.start_block,
            )
            .await?;
        if !self.store.is_postgres() {
            self.metrics.indexing.set(1);
            return self.index(None, &mut shutdown).await.map(|_| ());
        }
        self.status.set_role(IndexerRole::Standby);
        loop {
            let Some(mut lock) = self.take_lock(&mut shutdown).await else {
                return Ok(());
            };
            tracing::info!("this replica took the indexer lock and indexes");
            self.status.set_role(IndexerRole::Indexing);
            self.metrics.indexing.set(1);
            let indexed = self.index(Some(&mut lock), &mut shutdown).await;
            self.metrics.indexing.set(0);
            self.status.set_role(IndexerRole::Standby);
            match indexed {
                Ok(Term::Shutdown) => {
                    lock.release().await;
                    return Ok(());
                }
                Ok(Term::LockLost) => {
                    tracing::warn!("lost the indexer lock's connection; standing by");
                }
                Err(err) => {
                    lock.release().await;
                    return Err(err);
                }
            }
        }
    }

    /// Waits for the indexer lock, trying every [`STANDBY_RETRY`] (and reconnecting after
    /// errors); `None` on shutdown.
    async fn take_lock(&self, shutdown: &mut watch::Receiver<bool>) -> Option<IndexerLock> {
        let mut lock: Option<IndexerLock> = None;
        loop {
            if *shutdown.borrow() {
                return None;
            }
            let attempt = match lock.as_mut() {
                Some(held) => held.try_acquire().await,
                None => match self.store.indexer_lock().await {
                    Ok(mut fresh) => {
                        let taken = fresh.try_acquire().await;
                        lock = Some(fresh);
                        taken
                    }
                    Err(err) => Err(err),
                },
            };
            match attempt {
                Ok(true) => return lock,
                Ok(false) => {}
                Err(err) => {
                    tracing::warn!(error = %err, "cannot try the indexer lock; retrying");
                    self.status.record_error(&IndexerError::Store(err));
                    lock = None;
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(STANDBY_RETRY) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// Polls while `lock` (when given) stays alive: returns how the term ended.
    async fn index(
        &self,
        mut lock: Option<&mut IndexerLock>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Term, IndexerError> {
        loop {
            if *shutdown.borrow() {
                return Ok(Term::Shutdown);
            }
            if let Some(lock) = lock.as_deref_mut()
                && let Err(err) = lock.check().await
            {
                tracing::warn!(error = %err, "the indexer lock's connection failed");
                self.status.record_error(&IndexerError::Store(err));
                return Ok(Term::LockLost);
            }
            let caught_up = match self.poll().await {
                Ok(outcome) => outcome.caught_up,
                Err(err @ IndexerError::ReorgTooDeep(_)) => {
                    self.status.record_error(&err);
                    return Err(err);
                }
                Err(err) => {
                    tracing::warn!(error = %err, "indexer poll failed; retrying");
                    self.status.record_error(&err);
                    true
                }
            };
            if caught_up {
                tokio::select! {
                    _ = tokio::time::sleep(self.config.poll_interval) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    }

    async fn block_hash(&self, number: u64) -> Result<Option<B256>, IndexerError> {
        let block = self
            .provider
            .get_block_by_number(BlockNumberOrTag::Number(number))
            .await?;
        Ok(block.map(|block| block.header.hash))
    }

    /// One poll: reorg check, then at most one block range.
    pub async fn poll(&self) -> Result<PollOutcome, IndexerError> {
        let mut outcome = PollOutcome::default();
        let next = self
            .store
            .init_cursor(
                self.config.chain_id,
                self.config.verinfer,
                self.config.start_block,
            )
            .await?;
        let head = self.provider.get_block_number().await?;

        let mut next = next;
        if let Some((number, hash)) = self.store.last_indexed_block().await?
            && self.block_hash(number).await? != Some(hash)
        {
            let fork = self.find_fork_point(number).await?;
            let Some(removed) = self.store.roll_back_above_from(next, fork).await? else {
                return Ok(self.cursor_moved(head, next));
            };
            tracing::warn!(
                fork,
                removed_events = removed,
                "chain reorganised; rolled back above the fork point"
            );
            self.metrics.reorgs.inc();
            outcome.rolled_back_to = Some(fork);
            next = fork + 1;
        }

        let safe_head = head.saturating_sub(self.config.confirmations);
        if next > safe_head {
            outcome.caught_up = true;
            outcome.indexed_head = next.checked_sub(1);
            self.finish(head, outcome.indexed_head);
            return Ok(outcome);
        }
        let to = safe_head.min(next.saturating_add(self.config.max_block_range - 1));
        let to_hash = self
            .block_hash(to)
            .await?
            .ok_or(IndexerError::MissingBlock(to))?;
        let filter = Filter::new()
            .address(self.config.verinfer)
            .from_block(next)
            .to_block(to);
        let logs = self.provider.get_logs(&filter).await?;
        if self
            .block_hash(to)
            .await?
            .ok_or(IndexerError::MissingBlock(to))?
            != to_hash
        {
            // The chain moved under the range while reading it: retry on the next poll.
            self.finish(head, next.checked_sub(1));
            return Ok(outcome);
        }
        let mut raw = logs
            .iter()
            .filter(|log| log.inner.address == self.config.verinfer && !log.removed)
            .map(RawLog::from_rpc)
            .collect::<Result<Vec<_>, _>>()?;
        self.fill_timestamps(&mut raw).await?;
        let Some(applied) = self
            .store
            .commit_range_from(next, (to, to_hash), &raw)
            .await?
        else {
            return Ok(self.cursor_moved(head, next));
        };
        if to % 256 == 0 || to == safe_head {
            self.store
                .prune_block_hashes(to.saturating_sub(REORG_HISTORY_BLOCKS))
                .await?;
        }
        self.metrics.indexed_events.inc_by(applied as u64);
        outcome.events = applied;
        outcome.indexed_head = Some(to);
        outcome.caught_up = to == safe_head;
        self.finish(head, Some(to));
        tracing::debug!(from = next, to, events = applied, "indexed block range");
        Ok(outcome)
    }

    /// Reads the timestamp of the blocks of `TaskCreated` and `SampleDecided` logs the RPC gave
    /// without one (a task's expiry is its creation time plus the queue timeout, a check's the
    /// time of its sample draw plus the queue timeout); other logs keep what the RPC gave.
    async fn fill_timestamps(&self, logs: &mut [RawLog]) -> Result<(), IndexerError> {
        let mut known: Vec<(u64, u64)> = Vec::new();
        for log in logs.iter_mut() {
            if log.block_timestamp.is_some() || !log.needs_block_timestamp() {
                continue;
            }
            let number = log.block_number;
            let timestamp = match known.iter().find(|(block, _)| *block == number) {
                Some((_, timestamp)) => *timestamp,
                None => {
                    let block = self
                        .provider
                        .get_block_by_number(BlockNumberOrTag::Number(number))
                        .await?
                        .ok_or(IndexerError::MissingBlock(number))?;
                    if block.header.hash != log.block_hash {
                        // Reorganised while reading: the range end check retries the range.
                        continue;
                    }
                    known.push((number, block.header.timestamp));
                    block.header.timestamp
                }
            };
            log.block_timestamp = Some(timestamp);
        }
        Ok(())
    }

    /// Another indexer moved the cursor since this poll read it (a replica that took over while
    /// this one lost its lock): nothing was written; pause, then read the cursor again.
    fn cursor_moved(&self, head: u64, next: u64) -> PollOutcome {
        tracing::warn!(
            next,
            "another indexer moved the cursor; this poll wrote nothing"
        );
        let indexed_head = next.checked_sub(1);
        self.finish(head, indexed_head);
        PollOutcome {
            caught_up: true,
            indexed_head,
            ..PollOutcome::default()
        }
    }

    fn finish(&self, head: u64, indexed: Option<u64>) {
        self.status.record_success(head, indexed);
        if let Some(indexed) = indexed {
            self.metrics
                .indexed_head
                .set(i64::try_from(indexed).unwrap_or(i64::MAX));
            self.metrics
                .indexer_lag_blocks
                .set(i64::try_from(head.saturating_sub(indexed)).unwrap_or(i64::MAX));
        }
    }

    /// The highest stored block at or below `mismatch` whose hash the chain still has.
    async fn find_fork_point(&self, mismatch: u64) -> Result<u64, IndexerError> {
        let mut below = mismatch;
        loop {
            let stored = self.store.indexed_blocks_below(below, 64).await?;
            if stored.is_empty() {
                // No stored block is canonical: everything since the start is suspect.
                return if mismatch.saturating_sub(self.config.start_block) <= REORG_HISTORY_BLOCKS {
                    Ok(self.config.start_block.saturating_sub(1))
                } else {
                    Err(IndexerError::ReorgTooDeep(mismatch))
                };
            }
            for (number, hash) in &stored {
                if self.block_hash(*number).await? == Some(*hash) {
                    return Ok(*number);
                }
            }
            below = stored.last().map_or(0, |(number, _)| *number);
        }
    }
}

/// Polls until caught up (tests and one-shot tools): at most `max_polls` polls.
pub async fn catch_up(indexer: &Indexer, max_polls: usize) -> Result<PollOutcome, IndexerError> {
    let mut total = PollOutcome::default();
    for _ in 0..max_polls {
        let outcome = indexer.poll().await?;
        total.events += outcome.events;
        total.rolled_back_to = total.rolled_back_to.or(outcome.rolled_back_to);
        total.indexed_head = outcome.indexed_head;
        if outcome.caught_up {
            total.caught_up = true;
            break;
        }
    }
    Ok(total)
}
