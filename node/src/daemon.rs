//! The daemon: registration at start, then a poll loop that scans for tasks selecting this node
//! and drives each one through its persisted state machine (see [`crate::plan`]).

use std::{
    collections::HashMap,
    fmt,
    future::Future,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use alloy::{
    primitives::{Address, B256, U256},
    signers::local::PrivateKeySigner,
};
use tokio::sync::watch;
use verinfer_abi::{
    NodeState, TaskStatus as ChainStatus, TokenAmount, ValidationMode, Verinfer::VerinferErrors,
};
use verinfer_task::{ModelStore, TaskArgs, TaskKind, random_salt, text_digest};
use verinfer_wire::{
    ClientError, ErrorCode, RelayerClient, UploadPayload, sign_result_upload,
    types::{TaskNodeView, TaskView},
};

use crate::{
    chain::{
        Chain, ChainError, ChainTask, GpuModel, Head, ObservedReveal, Slash, Submitted, TxState,
    },
    config::{Behaviour, ChainTarget, HaltPoint, NodeConfig, StakeAmount},
    engine::{Identity, InferenceEngine, InferenceJob, InferenceOutput},
    error::{NodeError, SlashNotice, claimable_hint, kicked_message},
    key::load_signer,
    metrics::Metrics,
    plan::{Action, ChainView, CloseReason, next_action, wait_description},
    retry::{Backoff, WaitLog, utc_clock},
    state::{
        Payload, Role, SettledOutcome, Settlement, Stage, StateError, StateStore, StoredResult,
        TaskRecord,
    },
};

/// Most plan-act rounds for one task in one poll (each round normally advances a stage; the
/// bound only guards against a chain that keeps contradicting itself).
const MAX_ROUNDS_PER_POLL: usize = 12;
/// Per-task retry delays after a failed step; capped well under a commit or reveal window so
/// that a passing RPC or relayer outage never costs a deadline.
const STEP_BACKOFF: Backoff = Backoff {
    initial: Duration::from_secs(1),
    max: Duration::from_secs(8),
    factor: 2.0,
    max_attempts: u32::MAX,
};
/// How long an upload waits for the relayer to index the node's reveal before the wait is
/// logged as a warning (it goes on: the result is kept and checked for at every poll).
const UPLOAD_INDEX_PATIENCE: Duration = Duration::from_secs(120);
/// Poll-loop retry delays after a failed poll (RPC down).
const POLL_BACKOFF: Backoff = Backoff {
    initial: Duration::from_millis(500),
    max: Duration::from_secs(8),
    factor: 2.0,
    max_attempts: u32::MAX,
};

/// How often a busy node checks whether a draw is due (an idle one checks at every poll).
const DRAW_CHECK_PERIOD: Duration = Duration::from_secs(10);
/// Longest random pause before sending `drawTasks()`, so that the nodes that saw the same due
/// draw do not all send one (the first one in a block draws; the others then do nothing).
const DRAW_JITTER_MAX: Duration = Duration::from_millis(1_500);
/// After a `drawTasks()` that started nothing (the waiting tasks have no suitable nodes), the
/// node waits this long before the next, doubling up to [`DRAW_BACKOFF_MAX`], until a new task
/// is created, a draw starts one, or the node becomes idle: a task nobody can serve must not make
/// every node send a draw every block until it expires.
const DRAW_BACKOFF_MIN: Duration = Duration::from_secs(5);
/// Longest pause between two fruitless draws of this node.
const DRAW_BACKOFF_MAX: Duration = Duration::from_secs(300);
/// How often the daemon checks that the node is still registered (not left, not kicked).
const STATE_CHECK_PERIOD: Duration = Duration::from_secs(5);

/// How the node stands on chain after start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registration {
    /// It joined now.
    Joined {
        /// Its node id.
        node_id: u32,
        /// The stake it joined with.
        stake: u128,
        /// The `approve` transaction, when one was needed.
        approve_tx: Option<B256>,
        /// The `join` transaction.
        join_tx: B256,
    },
    /// It was registered already.
    Registered {
        /// Its node id.
        node_id: u32,
        /// Its state.
        state: NodeState,
        /// Its stake.
        stake: u128,
    },
}

/// What start-up found and did; `Display` gives the one-line summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartupSummary {
    /// The node's address.
    pub node: Address,
    /// The chain.
    pub chain_id: u64,
    /// The Verinfer contract.
    pub verinfer: Address,
    /// The GPU identity: the declared model name and this machine's VRAM.
    pub identity: Identity,
    /// The registry's record of the node's GPU model (its VRAM is the one the chain uses).
    pub gpu_model: GpuModel,
    /// The node's fee tier on chain (the configured one).
    pub fee_tier: u8,
    /// The `setFeeTier` transaction, when start-up changed the tier on chain.
    pub fee_tier_tx: Option<B256>,
    /// Models found in `models_dir`.
    pub models: usize,
    /// Registration.
    pub registration: Registration,
    /// Tasks with unfinished records, resumed.
    pub resumed_tasks: Vec<u64>,
    /// The state directory.
    pub state_dir: PathBuf,
}

impl fmt::Display for StartupSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "node {} on chain {} (Verinfer {}): ",
            self.node, self.chain_id, self.verinfer
        )?;
        match &self.registration {
            Registration::Joined {
                node_id,
                stake,
                join_tx,
                ..
            } => write!(
                f,
                "joined as node #{node_id} staking {stake} (tx {join_tx})"
            )?,
            Registration::Registered {
                node_id,
                state,
                stake,
            } => write!(f, "registered as node #{node_id}, {state}, stake {stake}")?,
        }
        write!(
            f,
            "; GPU model {:?} ({} MiB in the registry; this machine {} MiB); fee tier {} (tasks paying at least {}x the minimum{}); {} model(s)",
            self.gpu_model.name,
            self.gpu_model.vram_mib,
            self.identity.vram_mib,
            self.fee_tier,
            1u32 << self.fee_tier.min(31),
            match self.fee_tier_tx {
                Some(tx) => format!(", set now: tx {tx}"),
                None => String::new(),
            },
            self.models
        )?;
        if !self.resumed_tasks.is_empty() {
            write!(f, "; resuming task(s) {:?}", self.resumed_tasks)?;
        }
        Ok(())
    }
}

/// A started node: registered on chain, state directory locked, ready to [`run`](Self::run).
pub struct Node {
    config: NodeConfig,
    target: ChainTarget,
    signer: PrivateKeySigner,
    chain: Chain,
    store: StateStore,
    models: Arc<ModelStore>,
    relayer: RelayerClient,
    engine: Arc<dyn InferenceEngine>,
    metrics: Metrics,
    summary: StartupSummary,
    /// Per task: failures in a row and when to try again.
    retry_at: HashMap<u64, (u32, Instant)>,
    /// Per task whose upload waits for the relayer to index the reveal: since when, and whether
    /// the wait was warned about.
    upload_waits: HashMap<u64, (Instant, bool)>,
    /// Per waiting task: the wait last logged (`plan::wait_description`'s key), so that each
    /// wait is said once at info level, not at every poll.
    waits: HashMap<u64, &'static str>,
    /// When a busy node next checks for a due draw.
    next_draw_check: Instant,
    /// Draw backoff: the pause after the last fruitless draw, when the next may be sent, and
    /// the task count and idleness it was judged at (a change of either ends it).
    draw_backoff: DrawBackoff,
    /// When the daemon next checks that the node is still registered.
    next_state_check: Instant,
    /// Set by a poll that found a task of this node waiting in a check queue for its checkers:
    /// the node then looks for a due draw as an idle node does (its task needs one).
    check_waits: bool,
    /// Set by the scan that found this node's `NodeSlashed` event (every slash kicks): the
    /// daemon takes no more work and exits at the end of that poll.
    kicked: Option<SlashNotice>,
}

/// When this node may send its next `drawTasks()` (see [`DRAW_BACKOFF_MIN`]).
#[derive(Debug, Clone, Copy, Default)]
struct DrawBackoff {
    /// The pause after the last fruitless draw (zero: none).
    pause: Duration,
    /// No draw before this.
    until: Option<Instant>,
    /// `taskCount()` when the pause began.
    task_count: u64,
    /// Whether the node was idle when the pause began.
    idle: bool,
}

impl DrawBackoff {
    /// Whether a draw may be sent now, given the task count and idleness: a new task or the
    /// node becoming idle ends the pause.
    fn allows(&mut self, now: Instant, task_count: u64, idle: bool) -> bool {
        if task_count != self.task_count || (idle && !self.idle) {
            *self = Self::default();
        }
        self.until.is_none_or(|until| now >= until)
    }

    /// Records a sent draw that started `started` tasks.
    fn drew(&mut self, now: Instant, started: usize, task_count: u64, idle: bool) {
        if started > 0 {
            *self = Self::default();
            return;
        }
        self.pause = (self.pause * 2).clamp(DRAW_BACKOFF_MIN, DRAW_BACKOFF_MAX);
        self.until = Some(now + self.pause);
        self.task_count = task_count;
        self.idle = idle;
    }
}

/// Why [`Node::run_to_exit`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeExit {
    /// Shut down as asked.
    Stopped,
    /// A `[testing] halt_after` point was reached.
    Halted,
    /// The node left the network (`verinfer node leave`) and finished its tasks.
    Left {
        /// Tokens credited to it (its stake when it left during a task, rewards of slashes):
        /// `verinfer node withdraw` sends them.
        claimable: TokenAmount,
    },
    /// The node was slashed and kicked (every slash kicks): it takes no more work.
    Kicked {
        /// The slash (`None` when its event was not found).
        slash: Option<SlashNotice>,
        /// Tokens credited to it (its stake after the slash).
        claimable: TokenAmount,
    },
}

impl fmt::Display for NodeExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stopped => f.write_str("stopped"),
            Self::Halted => f.write_str("halted at the configured [testing] halt_after point"),
            Self::Left { claimable } => write!(
                f,
                "the node left the network and has no task left; {}",
                claimable_hint(*claimable)
            ),
            Self::Kicked { slash, claimable } => {
                write!(f, "the node {}", kicked_message(slash.as_ref(), *claimable))
            }
        }
    }
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("summary", &self.summary)
            .finish_non_exhaustive()
    }
}

/// Whether the poll loop goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    /// A `[testing] halt_after` point was reached.
    Halt,
    /// The node is no longer registered and has nothing left to do.
    Exit(NodeExit),
}

/// The result of one action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The record or the chain changed: plan again now.
    Advanced,
    /// Nothing to do until later.
    Wait,
}

/// Which transaction [`Node::finish_tx`] finishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TxKind {
    Commit,
    Reveal,
}

enum ArgsFetch {
    Fetched(Vec<u8>),
    Invalid(String),
    Stopped,
}

impl Node {
    /// Loads the key, connects, opens the state and models, detects the identity and joins the
    /// network when not registered, using `verinfer-inference` for inference.
    pub async fn start(config: NodeConfig) -> Result<Self, NodeError> {
        Self::start_with_engine(config, crate::engine::candle_engine()).await
    }

    /// Like [`start`](Self::start) with another inference engine.
    pub async fn start_with_engine(
        config: NodeConfig,
        engine: Arc<dyn InferenceEngine>,
    ) -> Result<Self, NodeError> {
        config.validate()?;
        let signer = load_signer(&config)?;
        let node = signer.address();
        let target = config.chain_target()?;
        let http = config.http_client()?;
        let chain = Chain::connect(
            http.clone(),
            config.rpc_url.clone(),
            signer.clone(),
            target.verinfer,
            Duration::from_secs(config.tx_timeout_secs),
            config.max_block_range,
        );
        let actual = chain.chain_id().await?;
        if actual != target.chain_id {
            return Err(NodeError::ChainMismatch {
                configured: target.chain_id,
                actual,
            });
        }
        let state_dir = state_dir(&config, &target, node);
        let store = StateStore::open(&state_dir)?;

        let models_dir = config.models_dir.clone();
        let models = tokio::task::spawn_blocking(move || ModelStore::open([models_dir]))
            .await
            .map_err(|error| NodeError::Join(error.to_string()))??;
        for model in models.models() {
            tracing::info!(digest = %model.digest, path = %model.path.display(), "holding model");
        }
        let identity = match &config.identity {
            Some(identity) => Identity {
                gpu_model: identity.gpu_model.clone(),
                vram_mib: identity.vram_mib,
            },
            None => crate::engine::detect_identity(config.device)?,
        };

        let metrics = Metrics::new();
        let Registered {
            registration,
            gpu_model,
            fee_tier_tx,
        } = register(&chain, &store, &config, &identity, target.deploy_block).await?;
        let resumed_tasks = store
            .active_records()?
            .iter()
            .map(|record| record.task_id)
            .collect();
        let summary = StartupSummary {
            node,
            chain_id: target.chain_id,
            verinfer: target.verinfer,
            identity,
            gpu_model,
            fee_tier: config.fee_tier,
            fee_tier_tx,
            models: models.len(),
            registration,
            resumed_tasks,
            state_dir,
        };
        tracing::info!(%summary, "node started");
        Ok(Self {
            relayer: RelayerClient::with_http(base_url(&config.relayer_url), http),
            config,
            target,
            signer,
            chain,
            store,
            models: Arc::new(models),
            engine,
            metrics,
            summary,
            retry_at: HashMap::new(),
            upload_waits: HashMap::new(),
            waits: HashMap::new(),
            next_draw_check: Instant::now(),
            draw_backoff: DrawBackoff::default(),
            next_state_check: Instant::now(),
            check_waits: false,
            kicked: None,
        })
    }

    /// What start-up found and did.
    pub fn summary(&self) -> &StartupSummary {
        &self.summary
    }

    /// The node's address.
    pub fn address(&self) -> Address {
        self.summary.node
    }

    /// The node's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Works until `shutdown` resolves (then finishes the current step and returns), a
    /// `[testing] halt_after` point is reached, the node is no longer registered (it left or was
    /// kicked) and has finished its tasks, or the metrics listener cannot bind.
    /// [`run_to_exit`](Self::run_to_exit) says which.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), NodeError> {
        self.run_to_exit(shutdown).await.map(|_| ())
    }

    /// [`run`](Self::run), returning why the daemon stopped.
    pub async fn run_to_exit(
        self,
        shutdown: impl Future<Output = ()>,
    ) -> Result<NodeExit, NodeError> {
        let (stop_tx, stop_rx) = watch::channel(false);
        if let Some(listen) = self.config.metrics_listen {
            let mut stopped = stop_rx.clone();
            let bound = self
                .metrics
                .clone()
                .serve(listen, async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                })
                .await
                .map_err(|source| NodeError::Metrics { listen, source })?;
            tracing::info!(%bound, "serving metrics");
        }
        let worker = self.work(stop_rx);
        tokio::pin!(worker);
        tokio::pin!(shutdown);
        let result = tokio::select! {
            result = &mut worker => result,
            () = &mut shutdown => {
                tracing::info!("shutdown requested: finishing the current step");
                let _ = stop_tx.send(true);
                worker.await
            }
        };
        let _ = stop_tx.send(true);
        result
    }

    async fn work(mut self, mut stop: watch::Receiver<bool>) -> Result<NodeExit, NodeError> {
        let mut failures = 0u32;
        loop {
            if *stop.borrow() {
                tracing::info!("stopped");
                return Ok(NodeExit::Stopped);
            }
            let delay = match self.poll(&stop).await {
                Ok(Flow::Halt) => {
                    tracing::warn!("halting at the configured [testing] halt_after point");
                    return Ok(NodeExit::Halted);
                }
                Ok(Flow::Exit(exit)) => {
                    match exit {
                        NodeExit::Kicked { .. } => tracing::error!("exiting: {exit}"),
                        _ => tracing::info!("exiting: {exit}"),
                    }
                    return Ok(exit);
                }
                Ok(Flow::Continue) => {
                    failures = 0;
                    self.config.poll_interval()
                }
                Err(error) => {
                    self.metrics.error(error.kind());
                    tracing::warn!(%error, failures, "poll failed; retrying");
                    failures = failures.saturating_add(1);
                    POLL_BACKOFF
                        .delay(failures - 1)
                        .max(self.config.poll_interval())
                }
            };
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// One poll: scan for new tasks, drive every unfinished record, then start waiting tasks
    /// when a draw is due, and exit once the node left or was kicked and has nothing left to do.
    async fn poll(&mut self, stop: &watch::Receiver<bool>) -> Result<Flow, NodeError> {
        let head = self.chain.head().await?;
        self.scan(head).await?;
        self.check_waits = false;
        let flow = self.drive_all(stop).await?;
        if flow != Flow::Continue || *stop.borrow() {
            return Ok(flow);
        }
        if let Some(slash) = self.kicked {
            // Kicked: no task can select it any more and it draws nothing; this poll recorded
            // the settlement that kicked it.
            let unfinished: Vec<u64> = self
                .store
                .active_records()?
                .iter()
                .map(|record| record.task_id)
                .collect();
            if !unfinished.is_empty() {
                tracing::warn!(tasks = ?unfinished, "kicked: leaving these task records unfinished");
            }
            let exit = NodeExit::Kicked {
                slash: Some(slash),
                claimable: self.claimable().await?,
            };
            return Ok(Flow::Exit(exit));
        }
        let active = self.store.active_records()?;
        // A first node whose check waits for checkers is busy, but its task needs a draw.
        let idle = active.iter().all(|record| record.stage >= Stage::Settled) || self.check_waits;
        if let Some(exit) = self.unregistered(active.is_empty()).await? {
            return Ok(Flow::Exit(exit));
        }
        self.draw_if_due(idle, stop).await;
        Ok(Flow::Continue)
    }

    /// When the node is no longer registered (it left, or was kicked) and `finished` (no task
    /// record left to drive): why the daemon should exit. Checked every [`STATE_CHECK_PERIOD`].
    async fn unregistered(&mut self, finished: bool) -> Result<Option<NodeExit>, NodeError> {
        if !finished || Instant::now() < self.next_state_check {
            return Ok(None);
        }
        self.next_state_check = Instant::now() + STATE_CHECK_PERIOD;
        let me = self.address();
        let state = self.chain.node_info(me).await?.state;
        let exit = match state {
            NodeState::None => NodeExit::Left {
                claimable: self.claimable().await?,
            },
            // The scan normally sees the slash first (a settlement landing between the scan
            // and this check is seen here): report it the same way.
            NodeState::Kicked => {
                if self.kicked.is_none() {
                    let head = self.chain.head().await?;
                    if let Some(slash) = self
                        .chain
                        .last_slash(me, self.target.deploy_block, head.number)
                        .await?
                    {
                        self.on_slash(slash).await?;
                    }
                }
                NodeExit::Kicked {
                    slash: self.kicked,
                    claimable: self.claimable().await?,
                }
            }
            NodeState::Available | NodeState::Busy | NodeState::Leaving => return Ok(None),
        };
        Ok(Some(exit))
    }

    /// Tokens the contract credited to this node (`claimable`), in tokens.
    async fn claimable(&self) -> Result<TokenAmount, NodeError> {
        let decimals = self.chain.token_decimals().await?;
        Ok(decimals.amount(self.chain.claimable(self.address()).await?))
    }

    /// This node's slash, seen on chain by the scan: says so at error level with the task,
    /// reason and amount, counts it, and marks the daemon kicked (it exits after this poll).
    async fn on_slash(&mut self, slash: Slash) -> Result<(), NodeError> {
        let notice = slash_notice(&self.chain, slash).await?;
        self.metrics.slashed(slash.reason);
        self.metrics.set_kicked();
        tracing::error!(
            task = slash.task_id,
            reason = %slash.reason,
            amount = %notice.amount,
            block = slash.block,
            "this node was {notice} and kicked from the network: it takes no more work"
        );
        self.kicked = Some(notice);
        Ok(())
    }

    /// Sends `drawTasks()` when `drawDue()` says waiting tasks need a draw that no call of the
    /// coming block has run yet: checked at every poll while the node is idle, every
    /// [`DRAW_CHECK_PERIOD`] while it works, after a random pause of up to [`DRAW_JITTER_MAX`]
    /// (checked again after it), so that the nodes do not all send one; after a draw that started
    /// nothing, backs off (see [`DRAW_BACKOFF_MIN`]). Failures are logged only: any other call
    /// draws as well.
    async fn draw_if_due(&mut self, idle: bool, stop: &watch::Receiver<bool>) {
        let now = Instant::now();
        if !idle && now < self.next_draw_check {
            return;
        }
        self.next_draw_check = now + DRAW_CHECK_PERIOD;
        let due = async {
            if !self.chain.draw_due().await? {
                return Ok::<_, ChainError>(None);
            }
            Ok(Some(self.chain.task_count().await?))
        };
        let task_count = match due.await {
            Ok(Some(task_count)) => task_count,
            Ok(None) => return,
            Err(error) => {
                tracing::debug!(%error, "cannot read drawDue");
                return;
            }
        };
        if !self.draw_backoff.allows(now, task_count, idle) {
            return;
        }
        let jitter = DRAW_JITTER_MAX.min(self.config.poll_interval());
        let pause = Duration::from_millis(rand::random_range(0..=jitter.as_millis() as u64));
        let mut stopped = stop.clone();
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = stopped.wait_for(|stop| *stop) => return,
        }
        if !matches!(self.chain.draw_due().await, Ok(true)) {
            return;
        }
        match self.chain.draw_tasks().await {
            Ok((tx, started)) => {
                self.draw_backoff
                    .drew(Instant::now(), started, task_count, idle);
                tracing::info!(%tx, started, "sent drawTasks: waiting tasks were due a draw");
                self.metrics.step("draw", now.elapsed());
            }
            Err(error) => {
                let error = NodeError::from(error);
                self.metrics.error(error.kind());
                tracing::warn!(%error, "drawTasks failed (any later call draws as well)");
            }
        }
    }

    /// Drives every unfinished record.
    async fn drive_all(&mut self, stop: &watch::Receiver<bool>) -> Result<Flow, NodeError> {
        let mut current = 0;
        for mut record in self.store.active_records()? {
            if *stop.borrow() {
                break;
            }
            let task_id = record.task_id;
            if let Some((_, at)) = self.retry_at.get(&task_id)
                && Instant::now() < *at
            {
                continue;
            }
            if record.stage < Stage::Settled && current == 0 {
                current = task_id;
                self.metrics.set_current_task(task_id);
            }
            match self.drive(&mut record, stop).await {
                Ok(flow) => {
                    self.retry_at.remove(&task_id);
                    if flow != Flow::Continue {
                        return Ok(flow);
                    }
                }
                Err(error) => {
                    self.metrics.error(error.kind());
                    let failures = self
                        .retry_at
                        .get(&task_id)
                        .map_or(0, |(failures, _)| *failures);
                    let delay = STEP_BACKOFF.delay(failures);
                    self.retry_at.insert(
                        task_id,
                        (failures.saturating_add(1), Instant::now() + delay),
                    );
                    tracing::warn!(task = task_id, stage = record.stage.as_str(), %error, ?delay, "task step failed; will retry");
                }
            }
        }
        if current == 0 {
            self.metrics.set_current_task(0);
        }
        Ok(Flow::Continue)
    }

    /// Records every task started since the cursor that selected this node: as one of a full
    /// task's three nodes, as a sampled task's first node (`TaskStarted` naming it alone), or as
    /// a checker (`CheckStarted`).
    async fn scan(&mut self, head: Head) -> Result<(), NodeError> {
        let mut from = self.store.cursor()?.unwrap_or(self.target.deploy_block);
        let me = self.address();
        while from <= head.number {
            let to = from
                .saturating_add(self.config.max_block_range - 1)
                .min(head.number);
            for slash in self.chain.slashes(me, from, to).await? {
                self.on_slash(slash).await?;
            }
            for started in self.chain.assignments(from, to).await? {
                if self.kicked.is_some()
                    || !started.nodes.contains(&me)
                    || self.store.load(started.task_id)?.is_some()
                {
                    continue;
                }
                let task = match self.chain.task(started.task_id).await {
                    Ok(task) => task,
                    Err(ChainError::Unexpected(reason)) => {
                        tracing::warn!(task = started.task_id, %reason, "ignoring a task this node cannot decode");
                        continue;
                    }
                    Err(error) => return Err(error.into()),
                };
                // A task that ended without a record of this node (it was down all along, or
                // its state directory was lost and the scan starts over): nothing to do for it,
                // and nothing to announce. Slashes are reported from their own events.
                if !task.status.is_started() {
                    tracing::debug!(
                        task = started.task_id,
                        status = %task.status,
                        "skipping a task of this node that ended before it was recorded"
                    );
                    continue;
                }
                let (role, nodes) = if started.check {
                    // The first node is the task's slot 0; the event names the checkers.
                    let mut nodes = started.nodes;
                    nodes[0] = task.nodes[0];
                    (Role::Checker, nodes)
                } else if task.mode == ValidationMode::Sampled {
                    (Role::First, started.nodes)
                } else {
                    (Role::Full, started.nodes)
                };
                let kind = task.kind;
                let record =
                    TaskRecord::assigned_as(role, started.task_id, kind, nodes, started.block);
                self.store.save(&record)?;
                tracing::info!(
                    task = started.task_id,
                    ?kind,
                    role = role.as_str(),
                    commit_deadline = task.commit_deadline,
                    "selected for a task"
                );
            }
            self.store.set_cursor(to + 1)?;
            self.metrics.set_scanned_block(to + 1);
            from = to + 1;
        }
        Ok(())
    }

    /// Plans and acts on one task until it has to wait.
    async fn drive(
        &mut self,
        record: &mut TaskRecord,
        stop: &watch::Receiver<bool>,
    ) -> Result<Flow, NodeError> {
        for _ in 0..MAX_ROUNDS_PER_POLL {
            let head = self.chain.head().await?;
            let task = self.chain.task(record.task_id).await?;
            let mut view = ChainView::of(&task, head.number, head.timestamp);
            if record.role == Role::First && view.sample_decidable() {
                view.sample_decision = self.chain.sample_decision(record.task_id).await?;
            }
            let action = next_action(record, self.address(), &view);
            self.log_wait(record.task_id, &action, &view);
            tracing::debug!(
                task = record.task_id,
                stage = record.stage.as_str(),
                ?action,
                now = head.timestamp,
                "plan"
            );
            let before = record.stage;
            let started = Instant::now();
            let (name, step) = match action {
                Action::Compute => ("compute", self.compute(record, &task, head, stop).await?),
                Action::Commit => ("commit", self.commit(record).await?),
                Action::AdoptCommit => ("adopt_commit", self.adopt_commit(record, head).await?),
                Action::SaltLost => ("salt_lost", self.salt_lost(record, &view, head).await?),
                Action::Reveal => ("reveal", self.reveal(record, head).await?),
                Action::AdoptReveal => ("adopt_reveal", self.advance(record, Stage::Revealed)?),
                Action::AwaitSample => ("await_sample", self.await_sample(record, &view)?),
                Action::RevealUnchecked => {
                    tracing::info!(
                        task = record.task_id,
                        sample_block = view.sample_block,
                        "the sample draw left the task unchecked: revealing"
                    );
                    record.checked = Some(false);
                    self.store.save(record)?;
                    ("reveal", self.reveal(record, head).await?)
                }
                Action::ResolveSample => ("resolve_sample", self.resolve_sample(record).await?),
                Action::AdoptCheck => ("adopt_check", self.adopt_check(record, &view)?),
                Action::RecordCheckers => ("record_checkers", self.record_checkers(record, &view)?),
                Action::WaitForCheck => {
                    self.check_waits = true;
                    return Ok(Flow::Continue);
                }
                Action::Settle => ("settle", self.settle(record).await?),
                Action::RecordSettlement => (
                    "record_settlement",
                    self.record_settlement(record, head).await?,
                ),
                Action::Upload => ("upload", self.upload(record).await?),
                Action::Close(reason) => ("close", self.close(record, &reason)?),
                Action::WaitForSample
                | Action::WaitForRevealPhase
                | Action::WaitForSettlement
                | Action::Done => {
                    return Ok(Flow::Continue);
                }
            };
            self.metrics.step(name, started.elapsed());
            if record.stage != before && self.halts_at(record.stage) {
                return Ok(Flow::Halt);
            }
            if step == Step::Wait || record.stage.is_terminal() || *stop.borrow() {
                return Ok(Flow::Continue);
            }
        }
        Ok(Flow::Continue)
    }

    /// Says at info level what a task waits for and until when, once per wait.
    fn log_wait(&mut self, task_id: u64, action: &Action, view: &ChainView) {
        match wait_description(action, self.address(), view) {
            Some((key, line)) => {
                if self.waits.insert(task_id, key) != Some(key) {
                    tracing::info!(task = task_id, "task {task_id}: {line}");
                }
            }
            None => {
                self.waits.remove(&task_id);
            }
        }
    }

    fn halts_at(&self, stage: Stage) -> bool {
        matches!(
            (self.config.testing.halt_after, stage),
            (Some(HaltPoint::Computed), Stage::Computed)
                | (Some(HaltPoint::Committed), Stage::Committed)
                | (Some(HaltPoint::AwaitingSample), Stage::AwaitingSample)
                | (Some(HaltPoint::Checked), Stage::Checked)
                | (Some(HaltPoint::Revealed), Stage::Revealed)
        )
    }

    fn advance(&self, record: &mut TaskRecord, stage: Stage) -> Result<Step, NodeError> {
        tracing::info!(
            task = record.task_id,
            from = record.stage.as_str(),
            to = stage.as_str(),
            "already on chain"
        );
        record.stage = stage;
        self.store.save(record)?;
        Ok(Step::Advanced)
    }

    /// The chain shows this node's commitment: adopts it when it is the record's, and treats it
    /// as a lost salt when it is not (a commitment sent before the state directory was lost,
    /// landing after the record was made anew): its reveal would revert `CommitmentMismatch`.
    async fn adopt_commit(
        &mut self,
        record: &mut TaskRecord,
        head: Head,
    ) -> Result<Step, NodeError> {
        let seen = self.own_commitment(record, head).await?;
        if let Some(seen) = seen
            && record.commitment != Some(seen.commitment)
        {
            let task = self.chain.task(record.task_id).await?;
            let view = ChainView::of(&task, head.number, head.timestamp);
            return self.lost_salt(record, &view, head, Some(seen));
        }
        self.advance(record, Stage::Committed)
    }

    /// This node's commitment to `record`'s task on chain, if any (searched from the task's start
    /// to `head`).
    async fn own_commitment(
        &self,
        record: &TaskRecord,
        head: Head,
    ) -> Result<Option<crate::chain::CommitSeen>, NodeError> {
        Ok(self
            .chain
            .commitment_of(
                record.task_id,
                self.address(),
                record.started_block,
                head.number,
            )
            .await?)
    }

    /// The chain holds this node's commitment but the record has no salt for it (the state
    /// directory was lost after it committed): says so once, plainly, and records that it will
    /// not reveal, so that it sends no reveal that must revert and waits for the slash.
    async fn salt_lost(
        &mut self,
        record: &mut TaskRecord,
        view: &ChainView,
        head: Head,
    ) -> Result<Step, NodeError> {
        let seen = self.own_commitment(record, head).await?;
        self.lost_salt(record, view, head, seen)
    }

    fn lost_salt(
        &mut self,
        record: &mut TaskRecord,
        view: &ChainView,
        head: Head,
        seen: Option<crate::chain::CommitSeen>,
    ) -> Result<Step, NodeError> {
        let committed = match seen {
            Some(seen) => format!(
                " (tx {}, block {})",
                seen.tx
                    .map_or_else(|| "unknown".to_owned(), |tx| tx.to_string()),
                seen.block
            ),
            None => String::new(),
        };
        let closes = if view.reveal_deadline > head.timestamp {
            format!(
                "when its reveal window closes at chain time {} (in about {} s)",
                view.reveal_deadline,
                view.reveal_deadline - head.timestamp
            )
        } else {
            format!(
                "now that its reveal window closed at chain time {}",
                view.reveal_deadline
            )
        };
        tracing::error!(
            task = record.task_id,
            reveal_deadline = view.reveal_deadline,
            "task {}: this node committed on chain{committed} but the salt of its commitment is not in {} (was the data directory lost?): it cannot reveal, and will be slashed MissedReveal {closes}",
            record.task_id,
            self.store.dir().display(),
        );
        self.metrics.error("salt_lost");
        record.stage = Stage::Committed;
        record.commit_tx = seen.and_then(|seen| seen.tx);
        record.commitment = seen.map(|seen| seen.commitment);
        record.result = None;
        record.salt = None;
        record.skip_reveal = Some(
            "the salt of this node's commitment on chain is lost (state directory lost after it committed)"
                .into(),
        );
        self.store.save(record)?;
        Ok(Step::Advanced)
    }

    // ------------------------------------------------------------------ sampled tasks

    /// A sampled task's first node committed: records the block whose hash decides the check.
    fn await_sample(&self, record: &mut TaskRecord, view: &ChainView) -> Result<Step, NodeError> {
        record.sample_block = Some(view.sample_block);
        record.stage = Stage::AwaitingSample;
        self.store.save(record)?;
        tracing::info!(
            task = record.task_id,
            sample_block = view.sample_block,
            reveal_deadline = view.reveal_deadline,
            "committed; awaiting the sample draw"
        );
        Ok(Step::Advanced)
    }

    /// The sample draw chose a check: sends `resolveSample` (once: a pending one is awaited),
    /// which queues the check; the next plan adopts it from the chain.
    async fn resolve_sample(&mut self, record: &mut TaskRecord) -> Result<Step, NodeError> {
        if self.earlier_tx_in_flight(record.resolve_tx).await? {
            return Ok(Step::Wait);
        }
        let submitted = match self.chain.resolve_sample(record.task_id).await {
            Ok(submitted) => submitted,
            // Someone resolved it first: the next plan sees the check (or the reveal phase).
            Err(error)
                if matches!(
                    error.contract_error(),
                    Some(VerinferErrors::NotAwaitingSample(_))
                ) =>
            {
                tracing::debug!(task = record.task_id, %error, "the sample draw was resolved already");
                return Ok(Step::Advanced);
            }
            // The estimate ran at a block before the sample block's successor: try again later.
            Err(error)
                if matches!(
                    error.contract_error(),
                    Some(VerinferErrors::SampleNotDecidable(_))
                ) =>
            {
                tracing::debug!(task = record.task_id, %error, "the sample draw is not readable yet");
                return Ok(Step::Wait);
            }
            Err(error) => return Err(error.into()),
        };
        let tx = submitted.tx_hash();
        record.resolve_tx = Some(tx);
        self.store.save(record)?;
        self.chain.confirm(submitted).await?;
        tracing::info!(task = record.task_id, %tx, "the sample draw chose a check: resolved it, the check is queued");
        Ok(Step::Advanced)
    }

    /// The chain shows the task checked: waits for the checkers' commitments before revealing.
    fn adopt_check(&self, record: &mut TaskRecord, view: &ChainView) -> Result<Step, NodeError> {
        record.checked = Some(true);
        record.stage = Stage::Checked;
        if view.status != ChainStatus::CheckQueued {
            record.nodes = view.nodes;
        }
        self.store.save(record)?;
        tracing::info!(
            task = record.task_id,
            status = %view.status,
            "the task is checked: waiting for two checkers to commit before revealing"
        );
        Ok(Step::Advanced)
    }

    /// The check's checkers were drawn: records them.
    fn record_checkers(
        &self,
        record: &mut TaskRecord,
        view: &ChainView,
    ) -> Result<Step, NodeError> {
        record.nodes = view.nodes;
        self.store.save(record)?;
        tracing::info!(
            task = record.task_id,
            checkers = ?[view.nodes[1], view.nodes[2]],
            commit_deadline = view.commit_deadline,
            "the check started"
        );
        Ok(Step::Advanced)
    }

    // ------------------------------------------------------------------ compute

    async fn compute(
        &mut self,
        record: &mut TaskRecord,
        task: &ChainTask,
        head: Head,
        stop: &watch::Receiver<bool>,
    ) -> Result<Step, NodeError> {
        if self.config.testing.behaviour == Behaviour::Copycat {
            return self.copy_commitment(record, task, head).await;
        }
        let (result, payload) = match self.fetch_args(record.task_id, task, stop).await? {
            ArgsFetch::Stopped => return Ok(Step::Wait),
            ArgsFetch::Invalid(reason) => (StoredResult::InvalidArgs { reason }, None),
            ArgsFetch::Fetched(bytes) => match self.check_args(&bytes, record.kind, task) {
                Err(reason) => (StoredResult::InvalidArgs { reason }, None),
                Ok((args, model_dir)) => {
                    let output = self.infer(record.task_id, args, model_dir).await?;
                    let (result, payload) = self.result_of(output)?;
                    (result, Some(payload))
                }
            },
        };
        if let StoredResult::InvalidArgs { reason } = &result {
            tracing::warn!(task = record.task_id, %reason, "reporting invalid args");
        }
        let salt = random_salt()?;
        let commitment =
            result
                .to_task_result()
                .commitment(U256::from(record.task_id), self.address(), salt);
        // Payload and salt reach the disk before the commitment can be sent.
        if let Some(payload) = &payload {
            record.payload_files = self.store.write_payload(record.task_id, payload)?;
        }
        record.result = Some(result);
        record.salt = Some(salt);
        record.commitment = Some(commitment);
        record.stage = Stage::Computed;
        self.store.save(record)?;
        tracing::info!(task = record.task_id, %commitment, "result computed and persisted");
        Ok(Step::Advanced)
    }

    /// Fetches the task's args by their on-chain hash, retrying until the args deadline.
    async fn fetch_args(
        &self,
        task_id: u64,
        task: &ChainTask,
        stop: &watch::Receiver<bool>,
    ) -> Result<ArgsFetch, NodeError> {
        let started = Instant::now();
        let mut attempt = 0u32;
        let mut wait = WaitLog::default();
        // The chain time at which the node stops waiting and reports the args invalid.
        let give_up_at =
            u64::from(task.commit_deadline).saturating_sub(self.config.args_deadline_margin_secs);
        loop {
            let error = match self.relayer.args(task.args_hash).await {
                Ok(bytes) => {
                    self.metrics.step("fetch_args", started.elapsed());
                    if wait.waited() {
                        tracing::info!(
                            task = task_id,
                            attempts = attempt + 1,
                            waited = ?started.elapsed(),
                            "task {task_id}: the relayer served the args"
                        );
                    }
                    return Ok(ArgsFetch::Fetched(bytes.to_vec()));
                }
                Err(ClientError::ArgsHashMismatch { expected, got }) => {
                    return Ok(ArgsFetch::Invalid(format!(
                        "the relayer's args hash to {got}, not the task's argsHash {expected}"
                    )));
                }
                Err(error) => {
                    self.metrics.error("relayer");
                    error
                }
            };
            let now = self.chain.head().await?.timestamp;
            if now >= give_up_at {
                return Ok(ArgsFetch::Invalid(format!(
                    "the relayer did not serve args {} within {}s of the commit deadline \
                     ({} attempts; last: {error})",
                    task.args_hash,
                    self.config.args_deadline_margin_secs,
                    attempt + 1
                )));
            }
            let delay = STEP_BACKOFF
                .delay(attempt)
                .min(self.config.poll_interval().max(Duration::from_millis(200)));
            attempt = attempt.saturating_add(1);
            if wait.changed(&wait_cause(&error)) {
                tracing::info!(
                    task = task_id,
                    relayer = %self.relayer.base(),
                    attempt,
                    ?delay,
                    give_up_at,
                    "task {task_id}: waiting for the relayer at {} to serve the args (attempt \
                     {attempt}, retrying in {:.1} s, giving up at {} chain time, {}s before \
                     the commit deadline): {error}",
                    self.relayer.base(),
                    delay.as_secs_f64(),
                    utc_clock(give_up_at),
                    self.config.args_deadline_margin_secs,
                );
            } else {
                tracing::debug!(task = task_id, attempt, %error, "args not available yet");
            }
            let mut stop = stop.clone();
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                _ = stop.wait_for(|stop| *stop) => return Ok(ArgsFetch::Stopped),
            }
        }
    }

    /// Validates fetched args against the chain and the models held; `Err` is the invalid-args
    /// reason.
    fn check_args(
        &self,
        bytes: &[u8],
        kind: TaskKind,
        task: &ChainTask,
    ) -> Result<(TaskArgs, PathBuf), String> {
        let hash = verinfer_task::args_hash(bytes);
        if hash != task.args_hash {
            return Err(format!(
                "args hash to {hash}, not the task's argsHash {}",
                task.args_hash
            ));
        }
        let args = TaskArgs::from_slice(bytes).map_err(|error| error.to_string())?;
        args.check_matches_task(kind, task.image_count.into())
            .map_err(|error| error.to_string())?;
        let model_dir = self
            .models
            .resolve(args.model())
            .map_err(|error| error.to_string())?;
        Ok((args, model_dir.to_owned()))
    }

    async fn infer(
        &self,
        task_id: u64,
        mut args: TaskArgs,
        model_dir: PathBuf,
    ) -> Result<InferenceOutput, NodeError> {
        if self.config.testing.behaviour == Behaviour::Counterfeit
            && let TaskArgs::Image(image) = &mut args
        {
            // Other work than asked for: the images of the next seed.
            image.seed = (image.seed + 1) % (verinfer_task::MAX_SEED + 1);
        }
        let job = InferenceJob {
            task_id,
            args,
            model_dir,
            device: self.config.device,
            numerics_skew: self.config.testing.numerics_skew,
        };
        let engine = Arc::clone(&self.engine);
        let started = Instant::now();
        tracing::info!(task = task_id, device = %job.device, "running inference");
        let output = tokio::task::spawn_blocking(move || engine.run(&job))
            .await
            .map_err(|error| NodeError::Join(error.to_string()))?
            .map_err(NodeError::Inference)?;
        self.metrics.step("inference", started.elapsed());
        Ok(output)
    }

    fn result_of(&self, output: InferenceOutput) -> Result<(StoredResult, Payload), NodeError> {
        match output {
            InferenceOutput::Images(pngs) => {
                let phashes = pngs
                    .iter()
                    .enumerate()
                    .map(|(index, png)| {
                        verinfer_task::png_phash(index, png).map_err(|error| NodeError::Phash {
                            index,
                            message: error.to_string(),
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((StoredResult::Image { phashes }, Payload::Images(pngs)))
            }
            InferenceOutput::Text(mut output) => {
                if self.config.testing.behaviour == Behaviour::Counterfeit {
                    // A digest of other text than the model produced.
                    output.text.push_str(" [counterfeit]");
                }
                Ok((
                    StoredResult::Text {
                        digest: text_digest(&output),
                    },
                    Payload::Text(output),
                ))
            }
        }
    }

    /// Copycat (test-only): takes another selected node's commitment as its own.
    async fn copy_commitment(
        &mut self,
        record: &mut TaskRecord,
        task: &ChainTask,
        head: Head,
    ) -> Result<Step, NodeError> {
        let me = self.address();
        let commitments = self
            .chain
            .commitments(record.task_id, record.started_block, head.number)
            .await?;
        let Some((victim, commitment)) = commitments
            .into_iter()
            .find(|(node, _)| *node != me && task.nodes.contains(node))
        else {
            tracing::debug!(task = record.task_id, "copycat: no commitment to copy yet");
            return Ok(Step::Wait);
        };
        tracing::warn!(task = record.task_id, %victim, "copycat: committing another node's commitment");
        record.copied_from = Some(victim);
        record.commitment = Some(commitment);
        record.stage = Stage::Computed;
        self.store.save(record)?;
        Ok(Step::Advanced)
    }

    // ------------------------------------------------------------------ commit and reveal

    async fn commit(&mut self, record: &mut TaskRecord) -> Result<Step, NodeError> {
        let commitment = record
            .commitment
            .ok_or_else(|| inconsistent(record, "computed without a commitment"))?;
        if self.earlier_tx_in_flight(record.commit_tx).await? {
            return Ok(Step::Wait);
        }
        let sent = self.chain.commit(record.task_id, commitment).await;
        self.finish_tx(record, sent, TxKind::Commit).await
    }

    async fn reveal(&mut self, record: &mut TaskRecord, head: Head) -> Result<Step, NodeError> {
        match self.config.testing.behaviour {
            Behaviour::Lazy => {
                tracing::warn!(task = record.task_id, "lazy: not revealing");
                record.skip_reveal = Some("testing behaviour `lazy` never reveals".into());
                self.store.save(record)?;
                return Ok(Step::Advanced);
            }
            Behaviour::Copycat => return self.copy_reveal(record, head).await,
            Behaviour::Honest | Behaviour::Counterfeit => {}
        }
        let task_id = record.task_id;
        let salt = record
            .salt
            .ok_or_else(|| inconsistent(record, "committed without a salt"))?;
        if self.earlier_tx_in_flight(record.reveal_tx).await? {
            return Ok(Step::Wait);
        }
        let sent = match record
            .result
            .as_ref()
            .ok_or_else(|| inconsistent(record, "committed without a result"))?
        {
            StoredResult::Image { phashes } => {
                self.chain
                    .reveal_image(task_id, phashes.clone(), salt)
                    .await
            }
            StoredResult::Text { digest } => self.chain.reveal_text(task_id, *digest, salt).await,
            StoredResult::InvalidArgs { .. } => self.chain.report_invalid_args(task_id, salt).await,
        };
        self.finish_tx(record, sent, TxKind::Reveal).await
    }

    /// Whether a commit or reveal this node sent before (possibly before a restart) is still
    /// waiting in the mempool: then sending again would only make a duplicate that reverts.
    /// A mined one shows in the chain view at the next plan.
    async fn earlier_tx_in_flight(&self, tx: Option<B256>) -> Result<bool, NodeError> {
        let Some(tx) = tx else { return Ok(false) };
        Ok(match self.chain.tx_state(tx).await? {
            TxState::Pending => {
                tracing::info!(%tx, "an earlier transaction is still pending; waiting for it");
                true
            }
            TxState::Mined { success: true } => true,
            TxState::Mined { success: false } | TxState::Unknown => false,
        })
    }

    /// Persists the hash of a sent commit or reveal, awaits its receipt, and advances the stage.
    async fn finish_tx(
        &mut self,
        record: &mut TaskRecord,
        sent: Result<Submitted, ChainError>,
        kind: TxKind,
    ) -> Result<Step, NodeError> {
        let submitted = match sent {
            Ok(submitted) => submitted,
            // Landed before (a receipt lost to a crash or timeout): the next plan adopts it.
            Err(error)
                if matches!(
                    error.contract_error(),
                    Some(VerinferErrors::AlreadyCommitted(_) | VerinferErrors::AlreadyRevealed(_))
                ) =>
            {
                return Ok(Step::Advanced);
            }
            // The chain's commitment is not this record's (a record made anew after the state
            // was lost): every retry would revert the same way.
            Err(error)
                if kind == TxKind::Reveal
                    && matches!(
                        error.contract_error(),
                        Some(VerinferErrors::CommitmentMismatch(_))
                    ) =>
            {
                let head = self.chain.head().await?;
                let task = self.chain.task(record.task_id).await?;
                let view = ChainView::of(&task, head.number, head.timestamp);
                let seen = self
                    .chain
                    .commitment_of(
                        record.task_id,
                        self.address(),
                        record.started_block,
                        head.number,
                    )
                    .await?;
                return self.lost_salt(record, &view, head, seen);
            }
            // A sampled task the draw checks after all (its sample block's hash aged out since
            // the draw was read): the next plan resolves it instead.
            Err(error)
                if matches!(
                    error.contract_error(),
                    Some(VerinferErrors::SampleChecked(_))
                ) =>
            {
                tracing::warn!(task = record.task_id, %error, "the reveal was refused: the task is checked");
                record.checked = None;
                self.store.save(record)?;
                return Ok(Step::Wait);
            }
            Err(error) => return Err(error.into()),
        };
        let tx = submitted.tx_hash();
        let (slot, stage, what) = match kind {
            TxKind::Commit => (&mut record.commit_tx, Stage::Committed, "committed"),
            TxKind::Reveal => (&mut record.reveal_tx, Stage::Revealed, "revealed"),
        };
        *slot = Some(tx);
        self.store.save(record)?;
        self.chain.confirm(submitted).await?;
        record.stage = stage;
        self.store.save(record)?;
        tracing::info!(task = record.task_id, %tx, "{what}");
        Ok(Step::Advanced)
    }

    /// Copycat (test-only): replays the copied node's reveal from this node; the contract
    /// rejects it because the commitment binds the copied node's address.
    async fn copy_reveal(
        &mut self,
        record: &mut TaskRecord,
        head: Head,
    ) -> Result<Step, NodeError> {
        let task_id = record.task_id;
        let victim = record
            .copied_from
            .ok_or_else(|| inconsistent(record, "copycat record without a copied node"))?;
        let Some(observed) = self
            .chain
            .observed_reveal(task_id, victim, record.started_block, head.number)
            .await?
        else {
            return Ok(Step::Wait);
        };
        let sent = match observed {
            ObservedReveal::Image { phashes, salt } => {
                self.chain.reveal_image(task_id, phashes, salt).await
            }
            ObservedReveal::Text { digest, salt } => {
                self.chain.reveal_text(task_id, digest, salt).await
            }
            ObservedReveal::InvalidArgs { salt } => {
                self.chain.report_invalid_args(task_id, salt).await
            }
        };
        let sent = match sent {
            Ok(submitted) => self.chain.confirm(submitted).await,
            Err(error) => Err(error),
        };
        match sent {
            Ok(tx) => {
                // Would mean the contract accepted a copied reveal: loud, and recorded as is.
                tracing::error!(task = task_id, %tx, "copycat: the contract accepted a copied reveal");
                record.reveal_tx = Some(tx);
                record.stage = Stage::Revealed;
            }
            Err(ChainError::Reverted { reason, .. }) => {
                tracing::warn!(task = task_id, %reason, "copycat: the contract rejected the copied reveal");
                self.metrics.error("copycat_rejected");
                record.skip_reveal =
                    Some(format!("copied reveal rejected by the contract: {reason}"));
            }
            Err(error) => return Err(error.into()),
        }
        self.store.save(record)?;
        Ok(Step::Advanced)
    }

    // ------------------------------------------------------------------ settlement and upload

    async fn settle(&mut self, record: &mut TaskRecord) -> Result<Step, NodeError> {
        match self.chain.settle(record.task_id).await {
            Ok(tx) => {
                tracing::info!(task = record.task_id, %tx, "settled the task");
                record.settle_tx = Some(tx);
                self.store.save(record)?;
                Ok(Step::Advanced)
            }
            // Someone else settled first, or this node's clock view ran ahead of the next block.
            Err(error)
                if matches!(
                    error.contract_error(),
                    Some(VerinferErrors::NotSettleable(_) | VerinferErrors::SettleTooEarly(_))
                ) =>
            {
                tracing::debug!(task = record.task_id, %error, "settle not needed now");
                Ok(Step::Wait)
            }
            Err(error) => Err(error.into()),
        }
    }

    async fn record_settlement(
        &mut self,
        record: &mut TaskRecord,
        head: Head,
    ) -> Result<Step, NodeError> {
        let Some(settled) = self
            .chain
            .settlement(record.task_id, record.started_block, head.number)
            .await?
        else {
            tracing::debug!(
                task = record.task_id,
                "settled on chain; its event is not visible yet"
            );
            return Ok(Step::Wait);
        };
        let agreed = record
            .slot_of(self.address())
            .is_some_and(|slot| settled.agreeing_mask & (1 << slot) != 0);
        record.settlement = Some(Settlement {
            outcome: settled.outcome,
            agreed,
        });
        record.stage = Stage::Settled;
        self.store.save(record)?;
        let label = match (settled.outcome, agreed) {
            (SettledOutcome::Validated, true) => "validated_agreed",
            (SettledOutcome::Validated, false) => "validated_disagreed",
            (SettledOutcome::Aborted, _) => "aborted",
            (SettledOutcome::Errored, _) => "errored",
        };
        self.metrics.task_finished(label);
        tracing::info!(
            task = record.task_id,
            outcome = settled.outcome.as_str(),
            agreed,
            role = record.role.as_str(),
            checked = ?record.checked,
            "task settled"
        );
        Ok(Step::Advanced)
    }

    async fn upload(&mut self, record: &mut TaskRecord) -> Result<Step, NodeError> {
        let payload = match self.store.read_payload(record) {
            Ok(payload) => payload,
            Err(StateError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return self
                    .close(record, &CloseReason::NothingToUpload)
                    .map(|_| Step::Advanced);
            }
            Err(error) => return Err(error.into()),
        };
        let payload = match payload {
            Payload::Images(pngs) => UploadPayload::image(pngs),
            Payload::Text(output) => UploadPayload::text(output),
        };
        // The relayer checks an upload against the reveal it indexed: wait until it has indexed
        // this node's (it may lag the chain by a poll or more) rather than fail into a 409.
        match self.relayer.task(record.task_id).await {
            Ok(view) if reveal_indexed(&view, self.address()) => {}
            Ok(_) => return Ok(self.await_reveal_indexed(record.task_id)),
            Err(error) if error.is_not_indexed() => {
                return Ok(self.await_reveal_indexed(record.task_id));
            }
            Err(error) => return Err(error.into()),
        }
        let request = sign_result_upload(
            &self.signer,
            self.target.chain_id,
            self.target.verinfer,
            record.task_id,
            &payload,
        )
        .await?;
        match self.relayer.upload_result(record.task_id, &request).await {
            Ok(accepted) => {
                record.stage = Stage::Uploaded;
                self.store.save(record)?;
                let waited = self
                    .upload_waits
                    .remove(&record.task_id)
                    .map(|(since, _)| since.elapsed());
                tracing::info!(task = record.task_id, payload_hash = %accepted.payload_hash, ?waited, "result uploaded");
                Ok(Step::Advanced)
            }
            // Indexed between the check and the upload by a replica that lags: not yet.
            Err(error) if error.is_not_indexed() => Ok(self.await_reveal_indexed(record.task_id)),
            Err(error) if upload_is_final(&error) => {
                tracing::error!(task = record.task_id, %error, "the relayer refused the upload for good");
                self.metrics.error("upload_refused");
                record.stage = Stage::Closed;
                record.closed_reason = Some(format!("the relayer refused the upload: {error}"));
                self.store.save(record)?;
                Ok(Step::Advanced)
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Waits (until the next poll) for the relayer to index this node's reveal of `task_id`:
    /// logged at info when the wait starts, and once at warn if it lasts past
    /// [`UPLOAD_INDEX_PATIENCE`] (the relayer's indexer is then stuck or far behind).
    fn await_reveal_indexed(&mut self, task_id: u64) -> Step {
        let now = Instant::now();
        let relayer = self.relayer.base();
        match self.upload_waits.get_mut(&task_id) {
            None => {
                self.upload_waits.insert(task_id, (now, false));
                tracing::info!(
                    task = task_id,
                    %relayer,
                    "task {task_id}: waiting for the relayer at {relayer} to index the reveal of \
                     task {task_id} before uploading its result (checking at every poll)"
                );
            }
            Some((since, warned))
                if !*warned && now.duration_since(*since) >= UPLOAD_INDEX_PATIENCE =>
            {
                *warned = true;
                tracing::warn!(
                    task = task_id,
                    %relayer,
                    waited = ?now.duration_since(*since),
                    "task {task_id}: the relayer at {relayer} has still not indexed this node's \
                     reveal; is its indexer running? (the node keeps the result and keeps checking)"
                );
            }
            Some(_) => {}
        }
        Step::Wait
    }

    fn close(&mut self, record: &mut TaskRecord, reason: &CloseReason) -> Result<Step, NodeError> {
        match reason {
            CloseReason::NothingToUpload => {
                tracing::info!(task = record.task_id, %reason, "task done")
            }
            other => {
                tracing::warn!(task = record.task_id, stage = record.stage.as_str(), reason = %other, "closing task");
                self.metrics.task_finished(match other {
                    CloseReason::CommitWindowMissed => "missed_commit",
                    CloseReason::CheckExpired => "check_expired",
                    CloseReason::ResultLost => "result_lost",
                    _ => "dropped",
                });
            }
        }
        record.stage = Stage::Closed;
        record.closed_reason = Some(reason.to_string());
        self.store.save(record)?;
        Ok(Step::Advanced)
    }
}

/// Whether the relayer's view of a task holds `node`'s reveal (a result or an invalid-args
/// report), which it checks an upload against.
fn reveal_indexed(view: &TaskView, node: Address) -> bool {
    reveal_among(&view.nodes, node)
}

fn reveal_among(nodes: &[TaskNodeView], node: Address) -> bool {
    nodes.iter().any(|entry| {
        entry.node == node
            && (entry.phashes.is_some() || entry.text_digest.is_some() || entry.invalid_args)
    })
}

/// A short, stable name of why a relayer call failed, so that a wait is logged again only when
/// its cause changes (see [`WaitLog`]).
fn wait_cause(error: &ClientError) -> String {
    match error {
        ClientError::Api { code, .. } => format!("{code:?}"),
        ClientError::Http { status, .. } => status.as_str().to_owned(),
        ClientError::Transport(_) => "unreachable".to_owned(),
        other => other.to_string(),
    }
}

/// Whether an upload error will not go away by retrying (the relayer judged the upload itself).
fn upload_is_final(error: &ClientError) -> bool {
    matches!(
        error.code(),
        Some(
            ErrorCode::WrongPayloadKind
                | ErrorCode::NotSelected
                | ErrorCode::BadSignature
                | ErrorCode::ReportedInvalidArgs
                | ErrorCode::WrongImageCount
                | ErrorCode::BadPng
                | ErrorCode::DigestMismatch
                | ErrorCode::AlreadyUploaded
                | ErrorCode::TooLarge
                | ErrorCode::MalformedJson
        )
    )
}

/// `url` with a trailing slash, so that joining API paths keeps its last path segment
/// (`http://host/relayer` + `v1/args` must be `http://host/relayer/v1/args`).
fn base_url(url: &url::Url) -> url::Url {
    let mut base = url.clone();
    if !base.path().ends_with('/') {
        let path = format!("{}/", base.path());
        base.set_path(&path);
    }
    base
}

fn inconsistent(record: &TaskRecord, message: &str) -> NodeError {
    NodeError::InconsistentRecord {
        task_id: record.task_id,
        message: message.to_owned(),
    }
}

/// `<data_dir>/<chain id>-<verinfer>/<node>`: one directory per node and deployment.
pub(crate) fn state_dir(config: &NodeConfig, target: &ChainTarget, node: Address) -> PathBuf {
    config
        .data_dir
        .join(format!("{}-{}", target.chain_id, target.verinfer))
        .join(node.to_string())
}

/// What [`register`] found or did.
struct Registered {
    registration: Registration,
    gpu_model: GpuModel,
    fee_tier_tx: Option<B256>,
}

/// Joins the network when the node is not registered (refusing a GPU model the registry does not
/// hold, or holds inactive), or sets its fee tier on chain when it differs from the
/// configuration; reports what it found or did.
async fn register(
    chain: &Chain,
    store: &StateStore,
    config: &NodeConfig,
    identity: &Identity,
    deploy_block: u64,
) -> Result<Registered, NodeError> {
    let me = chain.node();
    let info = chain.node_info(me).await?;
    match info.state {
        NodeState::Kicked => {
            let head = chain.head().await?;
            let slash = match chain.last_slash(me, deploy_block, head.number).await? {
                Some(slash) => Some(slash_notice(chain, slash).await?),
                None => None,
            };
            return Err(NodeError::Kicked {
                node: me,
                slash,
                claimable: chain
                    .token_decimals()
                    .await?
                    .amount(chain.claimable(me).await?),
            });
        }
        NodeState::None => {}
        state => {
            let declared = chain.gpu_model_id(&identity.gpu_model).await?;
            if declared != info.gpu_model {
                tracing::warn!(
                    gpu_model = %identity.gpu_model,
                    "this node is registered with another GPU model than it would declare now; leave and join again to change it"
                );
            }
            let gpu_model = chain.gpu_model(info.gpu_model).await?.ok_or_else(|| {
                ChainError::Unexpected(format!(
                    "node {me} is registered with GPU model {} which the registry does not hold",
                    info.gpu_model
                ))
            })?;
            warn_if_less_vram(identity, &gpu_model);
            let fee_tier_tx = if info.fee_tier != config.fee_tier && state != NodeState::Leaving {
                let tx = chain.set_fee_tier(config.fee_tier).await?;
                tracing::info!(%tx, from = info.fee_tier, to = config.fee_tier, "set the fee tier");
                Some(tx)
            } else {
                None
            };
            return Ok(Registered {
                registration: Registration::Registered {
                    node_id: info.id,
                    state,
                    stake: info.stake,
                },
                gpu_model,
                fee_tier_tx,
            });
        }
    }

    let gpu_model = registered_gpu_model(chain, &identity.gpu_model).await?;
    warn_if_less_vram(identity, &gpu_model);
    let minimum = chain.min_stake().await?;
    let stake = match config.stake {
        StakeAmount::Minimum => minimum,
        StakeAmount::Exact(stake) if stake < minimum => {
            return Err(NodeError::StakeBelowMinimum { stake, minimum });
        }
        StakeAmount::Exact(stake) => stake,
    };
    let token = chain.token().await?;
    let balance = chain.token_balance(token, me).await?;
    if balance < U256::from(stake) {
        return Err(NodeError::InsufficientBalance {
            node: me,
            token,
            balance,
            stake,
        });
    }
    // A node joining now cannot be in any earlier task: start the scan here.
    if store.cursor()?.is_none() {
        store.set_cursor(chain.head().await?.number)?;
    }
    let approve_tx = if chain.allowance(token).await? < U256::from(stake) {
        let tx = chain.approve(token, U256::from(stake)).await?;
        tracing::info!(%tx, stake, "approved the stake");
        Some(tx)
    } else {
        None
    };
    let join_tx = chain
        .join(&identity.gpu_model, config.fee_tier, stake)
        .await?;
    let node_id = chain.node_info(me).await?.id;
    tracing::info!(%join_tx, node_id, stake, gpu_model = %gpu_model.name, vram_mib = gpu_model.vram_mib, fee_tier = config.fee_tier, "joined");
    Ok(Registered {
        registration: Registration::Joined {
            node_id,
            stake,
            approve_tx,
            join_tx,
        },
        gpu_model,
        fee_tier_tx: None,
    })
}

/// `slash` with its amount in tokens.
async fn slash_notice(chain: &Chain, slash: Slash) -> Result<SlashNotice, NodeError> {
    Ok(SlashNotice {
        task_id: slash.task_id,
        reason: slash.reason,
        amount: chain.token_decimals().await?.amount(slash.amount),
    })
}

/// The registry's record of the GPU model `name`; an error naming the model and the owner's
/// command when it is not registered, or inactive (a node cannot join with it).
async fn registered_gpu_model(chain: &Chain, name: &str) -> Result<GpuModel, NodeError> {
    let id = chain.gpu_model_id(name).await?;
    match chain.gpu_model(id).await? {
        None => Err(NodeError::GpuModelNotRegistered {
            name: name.to_owned(),
        }),
        Some(model) if !model.active => Err(NodeError::GpuModelInactive {
            name: name.to_owned(),
        }),
        Some(model) => Ok(model),
    }
}

/// Warns when this machine has less VRAM than the registry says every card of its model has
/// (tasks are drawn onto the node by the registry's VRAM).
fn warn_if_less_vram(identity: &Identity, model: &GpuModel) {
    if identity.vram_mib < model.vram_mib {
        tracing::warn!(
            gpu_model = %model.name,
            local_vram_mib = identity.vram_mib,
            registry_vram_mib = model.vram_mib,
            "this machine has less VRAM than the registry's VRAM for its GPU model: tasks needing up to the registry's VRAM may be drawn onto it and fail"
        );
    }
}

/// Runs a node until `shutdown` resolves: [`Node::start`] then [`Node::run`].
pub async fn run(config: NodeConfig, shutdown: impl Future<Output = ()>) -> Result<(), NodeError> {
    Node::start(config).await?.run(shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relayer_base_urls_keep_their_path() {
        for (given, joined) in [
            ("http://127.0.0.1:8645", "http://127.0.0.1:8645/v1/args"),
            ("http://host/relayer", "http://host/relayer/v1/args"),
            ("http://host/relayer/", "http://host/relayer/v1/args"),
        ] {
            let base = base_url(&given.parse().unwrap());
            assert_eq!(base.join("v1/args").unwrap().as_str(), joined);
        }
    }

    #[test]
    fn fruitless_draws_back_off_until_a_new_task_or_idleness() {
        let start = Instant::now();
        let mut backoff = DrawBackoff::default();
        assert!(backoff.allows(start, 1, true));
        backoff.drew(start, 0, 1, true);
        assert!(!backoff.allows(start + Duration::from_secs(4), 1, true));
        assert!(backoff.allows(start + DRAW_BACKOFF_MIN, 1, true));
        backoff.drew(start, 0, 1, true);
        assert_eq!(backoff.pause, DRAW_BACKOFF_MIN * 2, "doubles");
        for _ in 0..20 {
            backoff.drew(start, 0, 1, true);
        }
        assert_eq!(backoff.pause, DRAW_BACKOFF_MAX, "capped");
        assert!(backoff.allows(start, 2, true), "a new task ends the pause");
        backoff.drew(start, 0, 2, false);
        assert!(!backoff.allows(start, 2, false));
        assert!(backoff.allows(start, 2, true), "becoming idle ends it");
        backoff.drew(start, 0, 2, true);
        backoff.drew(start, 1, 2, true);
        assert!(backoff.allows(start, 2, true), "a fruitful draw ends it");
    }

    #[test]
    fn the_summary_is_one_line() {
        let summary = StartupSummary {
            node: Address::repeat_byte(1),
            chain_id: 31337,
            verinfer: Address::repeat_byte(2),
            identity: Identity {
                gpu_model: "NVIDIA H100".into(),
                vram_mib: 81_559,
            },
            gpu_model: GpuModel {
                id: B256::repeat_byte(9),
                name: "nvidia h100".into(),
                vram_mib: 81_920,
                active: true,
                available_nodes: 3,
            },
            fee_tier: 2,
            fee_tier_tx: None,
            models: 2,
            registration: Registration::Joined {
                node_id: 4,
                stake: 1000,
                approve_tx: None,
                join_tx: B256::repeat_byte(3),
            },
            resumed_tasks: vec![7],
            state_dir: PathBuf::from("/tmp/x"),
        };
        let line = summary.to_string();
        assert!(!line.contains('\n'), "{line}");
        for needle in [
            "joined as node #4",
            "staking 1000",
            "GPU model \"nvidia h100\" (81920 MiB in the registry; this machine 81559 MiB)",
            "fee tier 2 (tasks paying at least 4x the minimum)",
            "resuming task(s) [7]",
        ] {
            assert!(line.contains(needle), "{needle:?} missing in {line}");
        }
    }

    #[test]
    fn an_upload_waits_until_the_relayer_indexed_the_reveal() {
        let me = Address::repeat_byte(1);
        let entry = |node, revealed: bool| TaskNodeView {
            slot: 0,
            node,
            commitment: Some(B256::repeat_byte(9)),
            phashes: revealed.then(|| vec!["0x0000000000000001".to_owned()]),
            text_digest: None,
            invalid_args: false,
            agreed: None,
            uploaded: false,
        };
        // Only another node's reveal indexed: wait.
        let nodes = vec![entry(me, false), entry(Address::repeat_byte(2), true)];
        assert!(!reveal_among(&nodes, me));
        assert!(!reveal_among(&[], me));
        assert!(reveal_among(&[entry(me, true)], me));

        // A NotRevealed answer is "not yet", like an unknown task, not a refusal for good.
        let not_revealed = ClientError::Api {
            status: reqwest::StatusCode::CONFLICT,
            code: ErrorCode::NotRevealed,
            message: "not indexed".into(),
        };
        assert!(not_revealed.is_not_indexed());
        assert!(!upload_is_final(&not_revealed));
        assert_eq!(wait_cause(&not_revealed), "NotRevealed");
    }
}
