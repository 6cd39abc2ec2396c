//! [`Client`]: one account talking to one deployment and one relayer.

use std::{
    sync::{Arc, OnceLock},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use alloy::{
    contract::{CallBuilder, CallDecoder},
    network::EthereumWallet,
    primitives::{Address, B256, U256, aliases::U96},
    providers::{DynProvider, Provider, ProviderBuilder},
    rpc::types::{Filter, Log, TransactionReceipt},
    signers::local::PrivateKeySigner,
    sol_types::SolEvent,
};
use url::Url;
use verinfer_abi::{
    Deployment, Erc20Instance, IERC20, TaskKind, TaskStatus, TokenDecimals, Validation,
    ValidationMode, Verinfer, VerinferEvent, VerinferInstance, padded_gas_limit,
};
use verinfer_task::{ImageArgs, TaskArgs, TextArgs};
use verinfer_wire::RelayerClient;

use crate::{
    error::ClientError,
    gpu_model::{GpuModelInfo, normalise_gpu_model},
    report::{
        ChainTask, NodeReport, RevealedResult, Settlement, Slash, TaskReport, TaskStatusReport,
    },
};

/// Largest block range of one `eth_getLogs` call.
const MAX_LOG_RANGE: u64 = 10_000;
/// How long after a task's reveal deadline [`Client::wait`] settles it itself when no node did.
const SETTLE_GRACE: Duration = Duration::from_secs(10);
/// How long [`Client::create_task`] waits for the block after `createTask`'s before it sends
/// `drawTasks()` itself (on a chain that mines only on demand no block comes by itself).
const DRAW_WAIT: Duration = Duration::from_secs(3);

/// How to create a task besides its args: fee, hardware, validation mode. The default is a full
/// task paying the network minimum, on any GPU model (image tasks) or the registered model with
/// the most available nodes (text tasks).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskOptions {
    /// Fee in token base units; `None` pays the network minimum for the task and mode
    /// (`minTaskFee`, or `sampledFeeRange`'s minimum for a sampled task).
    pub fee: Option<u128>,
    /// VRAM each node's GPU model must have, in MiB.
    pub min_vram_mib: u32,
    /// Text tasks: the registered GPU model every node must have (`None`: the client picks).
    /// Image tasks must leave it `None`.
    pub gpu_model: Option<String>,
    /// Full (three nodes at once, `createTask`) or sampled (one node, checked by two more with
    /// the network's probability p, `createSampledTask`).
    pub mode: ValidationMode,
}

impl TaskOptions {
    /// Full validation, the network minimum fee, no VRAM floor.
    pub fn new() -> Self {
        Self::default()
    }

    /// Pays `fee` token base units.
    pub fn with_fee(mut self, fee: u128) -> Self {
        self.fee = Some(fee);
        self
    }

    /// Needs `min_vram_mib` MiB of VRAM.
    pub fn with_min_vram_mib(mut self, min_vram_mib: u32) -> Self {
        self.min_vram_mib = min_vram_mib;
        self
    }

    /// Text tasks: runs on the registered GPU model `name`.
    pub fn with_gpu_model(mut self, name: impl Into<String>) -> Self {
        self.gpu_model = Some(name.into());
        self
    }

    /// Validated in `mode`.
    pub fn with_mode(mut self, mode: ValidationMode) -> Self {
        self.mode = mode;
        self
    }

    /// Sampled validation: one node computes, and two more check it with probability p.
    pub fn sampled(self) -> Self {
        self.with_mode(ValidationMode::Sampled)
    }
}

/// The fees a task may pay under the parameters in force now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeeRange {
    /// The smallest fee (`minTaskFee`, or for a sampled task `sampledFeeRange`'s minimum: the
    /// full minimum times (1 + 2p) / 3, rounded up).
    pub minimum: u128,
    /// Sampled tasks: the largest fee (`sampledFeeRange`'s maximum), above which a node staking
    /// the minimum could cheat profitably; `None` for full tasks (no maximum).
    pub maximum: Option<u128>,
}

impl FeeRange {
    /// Checks `fee` (`None`: the minimum) against the range and returns the fee to pay; an
    /// error writes the amounts with the token's `decimals`.
    pub fn check(&self, fee: Option<u128>, decimals: TokenDecimals) -> Result<u128, ClientError> {
        match (fee, self.maximum) {
            (_, Some(maximum)) if maximum < self.minimum => {
                Err(ClientError::FeeOutsideSampledRange {
                    fee: fee.unwrap_or(self.minimum),
                    minimum: self.minimum,
                    maximum,
                    decimals,
                })
            }
            (None, _) => Ok(self.minimum),
            (Some(fee), Some(maximum)) if fee < self.minimum || fee > maximum => {
                Err(ClientError::FeeOutsideSampledRange {
                    fee,
                    minimum: self.minimum,
                    maximum,
                    decimals,
                })
            }
            (Some(fee), _) if fee < self.minimum => Err(ClientError::FeeBelowMinimum {
                fee,
                minimum: self.minimum,
                decimals,
            }),
            (Some(fee), _) => Ok(fee),
        }
    }
}

/// What the sample draw of a sampled task says (see [`Client::sample_decision`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleDecision {
    /// The block whose hash decides is not sealed yet: decidable from block `decidable_at`.
    NotYet {
        /// The first block in which the draw can run.
        decidable_at: u64,
    },
    /// Two checkers will compute the task too. `recorded`: the draw ran on chain already
    /// (`SampleDecided`); otherwise it is what `resolveSample` would decide now.
    Checked {
        /// Whether the decision is on chain.
        recorded: bool,
    },
    /// The first node's result is accepted alone. `recorded` as for `Checked`.
    Unchecked {
        /// Whether the decision is on chain.
        recorded: bool,
    },
}

/// What [`Client::resolve_sample`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolvedSample {
    /// The task.
    pub task_id: u64,
    /// Whether the draw chose a check (the task now waits for two checkers); false: the first
    /// node may reveal and is paid alone.
    pub checked: bool,
    /// The `resolveSample` transaction.
    pub tx: B256,
}

/// A task just created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedTask {
    /// Its id.
    pub task_id: u64,
    /// keccak256 of its args bytes (as uploaded to the relayer).
    pub args_hash: B256,
    /// The `createTask` transaction.
    pub tx: B256,
    /// The fee escrowed, in token base units (the network minimum when none was given).
    pub fee: u128,
    /// The network's minimum fee for this task (`minTaskFee(kind, imageCount)`, or for a sampled
    /// task `sampledFeeRange`'s minimum) when it was created.
    pub min_fee: u128,
    /// Sampled tasks: the largest fee the task could have paid (`sampledFeeRange`'s maximum).
    pub max_fee: Option<u128>,
    /// Full or sampled validation.
    pub mode: ValidationMode,
    /// Text tasks: the registered GPU model the task names (chosen by the client when none was
    /// given); `None` for image tasks.
    pub gpu_model: Option<GpuModelInfo>,
    /// The `drawTasks()` transaction this client sent because the task still waited a block
    /// after its creation (`None` when something else drew first).
    pub draw_tx: Option<B256>,
    /// Whether a draw had started it (three nodes selected; a sampled task: its first node) when
    /// `create_task` returned; otherwise it waits in its queue for suitable nodes (until it
    /// expires).
    pub started: bool,
}

/// A queued task that outlived its queue timeout, ended by [`Client::expire_task`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiredTask {
    /// Its id.
    pub task_id: u64,
    /// The `expireTask` transaction.
    pub tx: B256,
    /// The fee credited back to its creator (see [`Client::withdraw`]).
    pub refunded: u128,
}

/// What [`Client::withdraw`] sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Withdrawal {
    /// The account.
    pub account: Address,
    /// The amount sent to it, in token base units.
    pub amount: u128,
    /// The `withdraw` transaction.
    pub tx: B256,
}

/// A queued task cancelled by its creator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CancelledTask {
    /// Its id.
    pub task_id: u64,
    /// The `cancelTask` transaction.
    pub tx: B256,
    /// The fee refunded to the creator, in token base units.
    pub refunded: u128,
}

/// A dApp's handle on verinfer: creates tasks from one account, follows them on chain and fetches
/// their results from the relayer, checked against the chain.
#[derive(Debug, Clone)]
pub struct Client {
    provider: DynProvider,
    verinfer: VerinferInstance<DynProvider>,
    token: Erc20Instance<DynProvider>,
    deployment: Deployment,
    relayer: RelayerClient,
    account: Address,
    poll_interval: Duration,
    draw_after_create: bool,
    /// The staking token's `decimals()`, read on first use.
    decimals: Arc<OnceLock<TokenDecimals>>,
    /// Held while one transaction is sent and mined: the clones of a client share one account,
    /// and two transactions filled at once would take the same nonce.
    tx_lock: Arc<tokio::sync::Mutex<()>>,
    /// Held from the allowance check to `createTask`: `approve` sets the allowance to one fee,
    /// so another task's approval in between would leave one of them without it.
    create_lock: Arc<tokio::sync::Mutex<()>>,
}

impl Client {
    /// A client sending transactions from `signer` to the contracts of `deployment` through
    /// `rpc_url`, and talking to the relayer at `relayer_url`. Connects lazily: the first call
    /// checks that the endpoint serves the deployment's chain. `https://` URLs are verified
    /// against the system's roots (plus `VERINFER_CA_FILE`'s certificates when it is set); see
    /// [`with_http`](Self::with_http) for another CA file.
    pub fn new(
        rpc_url: Url,
        signer: PrivateKeySigner,
        deployment: Deployment,
        relayer_url: Url,
    ) -> Self {
        let http = verinfer_wire::tls::default_http_client();
        Self::with_http(rpc_url, signer, deployment, relayer_url, http)
    }

    /// Like [`new`](Self::new), with the HTTP client for both URLs: one from
    /// [`verinfer_wire::tls::http_client`] trusts an extra CA file (PEM) besides the system's
    /// roots.
    pub fn with_http(
        rpc_url: Url,
        signer: PrivateKeySigner,
        deployment: Deployment,
        relayer_url: Url,
        http: reqwest::Client,
    ) -> Self {
        let account = signer.address();
        let provider = ProviderBuilder::new()
            .wallet(EthereumWallet::from(signer))
            .connect_reqwest(http.clone(), rpc_url)
            .erased();
        Self {
            verinfer: Verinfer::new(deployment.verinfer, provider.clone()),
            token: IERC20::new(deployment.staking_token, provider.clone()),
            provider,
            deployment,
            relayer: RelayerClient::with_http(relayer_url, http),
            account,
            poll_interval: Duration::from_millis(500),
            draw_after_create: true,
            decimals: Arc::default(),
            tx_lock: Arc::default(),
            create_lock: Arc::default(),
        }
    }

    /// Sets how often [`wait`](Self::wait) polls the chain (default 500 ms).
    pub fn with_poll_interval(mut self, poll_interval: Duration) -> Self {
        self.poll_interval = poll_interval;
        self
    }

    /// Whether [`create_task`](Self::create_task) waits for the next block and sends
    /// `drawTasks()` when its task still waits then (default true). Turn it off to create many
    /// tasks back to back where other accounts (node daemons) send the draws.
    pub fn with_draw_after_create(mut self, draw: bool) -> Self {
        self.draw_after_create = draw;
        self
    }

    /// The account that creates tasks and pays their fees.
    pub fn account(&self) -> Address {
        self.account
    }

    /// The deployment this client talks to.
    pub fn deployment(&self) -> &Deployment {
        &self.deployment
    }

    /// The relayer's API client.
    pub fn relayer(&self) -> &RelayerClient {
        &self.relayer
    }

    /// The provider (with this client's wallet).
    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    /// The `Verinfer` contract.
    pub fn verinfer(&self) -> &VerinferInstance<DynProvider> {
        &self.verinfer
    }

    /// Checks that the RPC endpoint serves the deployment's chain.
    pub async fn check_chain(&self) -> Result<(), ClientError> {
        let actual = self.provider.get_chain_id().await?;
        if actual != self.deployment.chain_id {
            return Err(ClientError::ChainMismatch {
                expected: self.deployment.chain_id,
                actual,
            });
        }
        Ok(())
    }

    /// The staking token's `decimals()` (read once, then remembered): how amounts in base units
    /// are written in tokens.
    pub async fn token_decimals(&self) -> Result<TokenDecimals, ClientError> {
        if let Some(decimals) = self.decimals.get() {
            return Ok(*decimals);
        }
        let decimals =
            TokenDecimals::read(self.provider.clone(), self.deployment.staking_token).await?;
        // Clones share the cell; a concurrent first read sets the same value.
        let _ = self.decimals.set(decimals);
        Ok(decimals)
    }

    /// The creator's balance of the staking token.
    pub async fn token_balance(&self) -> Result<u128, ClientError> {
        let balance = self
            .token
            .balanceOf(self.account)
            .call()
            .await
            .map_err(|error| ClientError::contract("balanceOf", error))?;
        Ok(u128::try_from(balance).unwrap_or(u128::MAX))
    }

    /// Creates an image task: validates `args` (before anything is sent), uploads their
    /// canonical bytes to the relayer, approves the fee and calls `createTask`; see
    /// [`create_task`](Self::create_task). `fee` `None` pays the network minimum.
    pub async fn create_image_task(
        &self,
        args: ImageArgs,
        fee: Option<u128>,
        min_vram_mib: u32,
    ) -> Result<CreatedTask, ClientError> {
        self.create_task(&TaskArgs::Image(args), fee, min_vram_mib, None)
            .await
    }

    /// Creates a text task on one registered GPU model (all three nodes have it: text results
    /// only match across identical hardware); `None` picks the registered model with the most
    /// available nodes that has `min_vram_mib`. See [`create_task`](Self::create_task).
    pub async fn create_text_task(
        &self,
        args: TextArgs,
        fee: Option<u128>,
        min_vram_mib: u32,
        gpu_model: Option<&str>,
    ) -> Result<CreatedTask, ClientError> {
        self.create_task(&TaskArgs::Text(args), fee, min_vram_mib, gpu_model)
            .await
    }

    /// Creates a full task of either kind: [`create`](Self::create) with `fee`, `min_vram_mib`
    /// and `gpu_model` as [`TaskOptions`].
    pub async fn create_task(
        &self,
        args: &TaskArgs,
        fee: Option<u128>,
        min_vram_mib: u32,
        gpu_model: Option<&str>,
    ) -> Result<CreatedTask, ClientError> {
        let options = TaskOptions {
            fee,
            min_vram_mib,
            gpu_model: gpu_model.map(str::to_owned),
            mode: ValidationMode::Full,
        };
        self.create(args, &options).await
    }

    /// Creates a task of either kind in either validation mode. Before anything is sent:
    /// validates `args`, checks the fee against the network's range for the task and mode
    /// (full: at least `minTaskFee(kind, imageCount)`; sampled: within
    /// `sampledFeeRange(kind, imageCount)`; `None` pays exactly the minimum), and checks the GPU
    /// model against the registry (text tasks: the named one must be registered with
    /// `min_vram_mib`, and `None` picks the registered model with the most available nodes that
    /// has it; image tasks: some registered model must have `min_vram_mib`). Then uploads the
    /// args' canonical bytes to the relayer, approves the fee and calls `createTask` (full) or
    /// `createSampledTask` (sampled).
    ///
    /// Creating only queues the task: a draw in a later block starts it. When the task still
    /// waits one block later (or after a few seconds on a chain that mines only on demand),
    /// sends `drawTasks()` once (unless [`with_draw_after_create`](Self::with_draw_after_create)
    /// turned that off); [`wait`](Self::wait) then follows it.
    pub async fn create(
        &self,
        args: &TaskArgs,
        options: &TaskOptions,
    ) -> Result<CreatedTask, ClientError> {
        let mode = options.mode;
        let fee = options.fee;
        let min_vram_mib = options.min_vram_mib;
        let gpu_model = options.gpu_model.as_deref();
        let bytes = checked_args_bytes(args)?;
        let request = TaskRequest::new(args, fee, gpu_model)?;
        self.check_chain().await?;
        let range = self
            .fee_range(request.kind, request.image_count, mode)
            .await?;
        let decimals = self.token_decimals().await?;
        let fee = range.check(fee, decimals)?;
        if fee >= 1u128 << 96 {
            return Err(ClientError::InvalidRequest(format!(
                "fee {fee} does not fit the contract's uint96"
            )));
        }
        let balance = self.token_balance().await?;
        if balance < fee {
            return Err(ClientError::InsufficientBalance {
                account: self.account,
                balance,
                fee,
                decimals,
            });
        }
        let gpu_model = self
            .task_gpu_model(request.kind, min_vram_mib, request.gpu_model.as_deref())
            .await?;

        let local_hash = verinfer_task::args_hash(&bytes);
        let uploaded = self.relayer.upload_args(bytes).await?;
        if uploaded.args_hash != local_hash {
            return Err(ClientError::ArgsHashMismatch {
                local: local_hash,
                relayer: uploaded.args_hash,
            });
        }
        tracing::debug!(args_hash = %local_hash, created = uploaded.created, "args uploaded to the relayer");

        // Until createTask has spent this task's allowance (see `create_lock`).
        let approved = self.create_lock.lock().await;
        if fee != 0 {
            self.ensure_allowance(fee).await?;
        }
        let model_name = gpu_model
            .as_ref()
            .map(|model| model.name.clone())
            .unwrap_or_default();
        let (action, receipt) = match mode {
            ValidationMode::Full => {
                let call = self.verinfer.createTask(
                    request.kind.into(),
                    local_hash,
                    request.image_count,
                    min_vram_mib,
                    model_name,
                    U96::from(fee),
                );
                ("createTask", self.send("createTask", call).await?)
            }
            ValidationMode::Sampled => {
                let call = self.verinfer.createSampledTask(
                    request.kind.into(),
                    local_hash,
                    request.image_count,
                    min_vram_mib,
                    model_name,
                    U96::from(fee),
                );
                (
                    "createSampledTask",
                    self.send("createSampledTask", call).await?,
                )
            }
        };
        drop(approved);
        let tx = receipt.transaction_hash;
        let events = self.receipt_events(&receipt)?;
        let task_id = events
            .iter()
            .find_map(|event| match event {
                VerinferEvent::TaskCreated { task_id, .. } => Some(*task_id),
                _ => None,
            })
            .ok_or(ClientError::MissingEvent {
                action,
                tx,
                event: "TaskCreated",
            })?;
        tracing::info!(task_id, %tx, fee, %mode, gpu_model = ?gpu_model.as_ref().map(|m| &m.name), "task created (queued until a draw starts it)");
        let (draw_tx, started) = if self.draw_after_create {
            let block = receipt.block_number.unwrap_or_default();
            // The task exists and its fee is paid: a failed draw leaves it queued for the next
            // draw anybody sends (nodes do), it does not fail the creation.
            match self.draw_after(task_id, block).await {
                Ok(drawn) => drawn,
                Err(error) => {
                    tracing::warn!(task_id, %error, "task created, but sending drawTasks failed; it waits for the next draw");
                    (None, false)
                }
            }
        } else {
            (None, false)
        };
        Ok(CreatedTask {
            task_id,
            args_hash: local_hash,
            tx,
            fee,
            min_fee: range.minimum,
            max_fee: range.maximum,
            mode,
            gpu_model,
            draw_tx,
            started,
        })
    }

    /// After `createTask` mined in `block`: waits for a later block (at most [`DRAW_WAIT`]); when
    /// the task still waits then and a draw is due, sends `drawTasks()` once. Returns that
    /// transaction and whether the task has started.
    async fn draw_after(
        &self,
        task_id: u64,
        block: u64,
    ) -> Result<(Option<B256>, bool), ClientError> {
        let deadline = tokio::time::Instant::now() + DRAW_WAIT;
        while self.provider.get_block_number().await? <= block
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(self.poll_interval.min(Duration::from_millis(250))).await;
        }
        let task = self.chain_task(task_id).await?;
        if task.status != TaskStatus::Queued || !self.draw_due().await? {
            return Ok((None, task.started()));
        }
        let (tx, _) = self.draw_tasks().await?;
        let started = self.chain_task(task_id).await?.started();
        tracing::info!(task_id, %tx, started, "sent drawTasks");
        Ok((Some(tx), started))
    }

    /// `drawDue()` as a transaction sent now would see it: a task waits for a draw that no call
    /// of the coming block has run yet (read at the pending block; at the latest block when the
    /// endpoint cannot read the pending one).
    pub async fn draw_due(&self) -> Result<bool, ClientError> {
        match self
            .verinfer
            .drawDue()
            .block(alloy::eips::BlockId::pending())
            .call()
            .await
        {
            Ok(due) => Ok(due),
            Err(error) => {
                tracing::debug!(%error, "drawDue at the pending block failed; reading the latest");
                self.verinfer
                    .drawDue()
                    .call()
                    .await
                    .map_err(|error| ClientError::contract("drawDue", error))
            }
        }
    }

    /// Sends `drawTasks()`: the draw that starts waiting tasks, which runs in the first call of
    /// any block after the one that queued them (anybody may send it; it never reverts).
    /// Returns the transaction and the ids of the tasks it started.
    pub async fn draw_tasks(&self) -> Result<(B256, Vec<u64>), ClientError> {
        let receipt = self.send("drawTasks", self.verinfer.drawTasks()).await?;
        let started = self
            .receipt_events(&receipt)?
            .into_iter()
            .filter_map(|event| match event {
                VerinferEvent::TaskStarted { task_id, .. } => Some(task_id),
                _ => None,
            })
            .collect();
        Ok((receipt.transaction_hash, started))
    }

    /// `minTaskFee(kind, imageCount)`: the smallest fee such a task may pay now, in token base
    /// units.
    pub async fn min_task_fee(&self, kind: TaskKind, image_count: u8) -> Result<u128, ClientError> {
        let fee = self
            .verinfer
            .minTaskFee(kind.into(), image_count)
            .call()
            .await
            .map_err(|error| ClientError::contract("minTaskFee", error))?;
        Ok(u128::try_from(fee).unwrap_or(u128::MAX))
    }

    /// `sampledFeeRange(kind, imageCount)`: the smallest and largest fee a sampled task may pay
    /// now, in token base units.
    pub async fn sampled_fee_range(
        &self,
        kind: TaskKind,
        image_count: u8,
    ) -> Result<(u128, u128), ClientError> {
        let range = self
            .verinfer
            .sampledFeeRange(kind.into(), image_count)
            .call()
            .await
            .map_err(|error| ClientError::contract("sampledFeeRange", error))?;
        Ok((
            u128::try_from(range.minimum).unwrap_or(u128::MAX),
            u128::try_from(range.maximum).unwrap_or(u128::MAX),
        ))
    }

    /// The fees a task of `kind` in `mode` may pay now.
    pub async fn fee_range(
        &self,
        kind: TaskKind,
        image_count: u8,
        mode: ValidationMode,
    ) -> Result<FeeRange, ClientError> {
        Ok(match mode {
            ValidationMode::Full => FeeRange {
                minimum: self.min_task_fee(kind, image_count).await?,
                maximum: None,
            },
            ValidationMode::Sampled => {
                let (minimum, maximum) = self.sampled_fee_range(kind, image_count).await?;
                FeeRange {
                    minimum,
                    maximum: Some(maximum),
                }
            }
        })
    }

    /// The sampling rate p of the parameters task `task_id` runs under
    /// (`taskParams(taskId).samplingBps`), in basis points.
    pub async fn task_sampling_bps(&self, task_id: u64) -> Result<u16, ClientError> {
        let params = self
            .verinfer
            .taskParams(U256::from(task_id))
            .call()
            .await
            .map_err(|error| ClientError::contract("taskParams", error))?;
        Ok(params.samplingBps)
    }

    /// The sampling rate of a sampled task (`None` for a full task, which has none).
    async fn sampling_bps_of(&self, task: &ChainTask) -> Result<Option<u16>, ClientError> {
        if task.is_sampled() {
            Ok(Some(self.task_sampling_bps(task.task_id).await?))
        } else {
            Ok(None)
        }
    }

    /// What the sample draw of sampled task `task_id` says: read from the task record once it
    /// ran on chain, otherwise `sampleDecision(taskId)` as a transaction sent now would see it
    /// (at the pending block; at the latest when the endpoint cannot read the pending one).
    /// Fails for a full task, and for a sampled task whose first node has not committed (or
    /// that ended before the draw).
    pub async fn sample_decision(&self, task_id: u64) -> Result<SampleDecision, ClientError> {
        let task = self.chain_task(task_id).await?;
        match task.validation() {
            Validation::SampledChecked => return Ok(SampleDecision::Checked { recorded: true }),
            Validation::SampledUnchecked => {
                return Ok(SampleDecision::Unchecked { recorded: true });
            }
            Validation::Full => {
                return Err(ClientError::NoSampleDraw {
                    task_id,
                    why: "it is a full task (three nodes at once)".to_owned(),
                });
            }
            Validation::SampledUndrawn => {
                return Err(ClientError::NoSampleDraw {
                    task_id,
                    why: format!("it ended {} before the draw", task.status),
                });
            }
            Validation::SampledPending => {}
        }
        if task.status != TaskStatus::AwaitingSample {
            return Err(ClientError::NoSampleDraw {
                task_id,
                why: format!(
                    "it is {}: the draw follows its first node's commitment",
                    task.status
                ),
            });
        }
        let call = self.verinfer.sampleDecision(U256::from(task_id));
        let decision = match call
            .clone()
            .block(alloy::eips::BlockId::pending())
            .call()
            .await
        {
            Ok(decision) => decision,
            Err(error) if verinfer_abi::Revert::from_error(&error).is_some() => {
                return Err(ClientError::contract("sampleDecision", error));
            }
            Err(error) => {
                tracing::debug!(%error, "sampleDecision at the pending block failed; reading the latest");
                call.call()
                    .await
                    .map_err(|error| ClientError::contract("sampleDecision", error))?
            }
        };
        Ok(match (decision.decidable, decision.checked) {
            (false, _) => SampleDecision::NotYet {
                decidable_at: task.sample_block + 1,
            },
            (true, true) => SampleDecision::Checked { recorded: false },
            (true, false) => SampleDecision::Unchecked { recorded: false },
        })
    }

    /// Runs the sample draw of a sampled task awaiting it (`resolveSample`, anybody may send
    /// it). Checked: the task waits (ahead of new tasks) for two checkers. Unchecked: nothing
    /// else changes; the first node's reveal settles the task. Refused before any transaction
    /// when the task does not await its draw or the block that decides is not sealed yet.
    pub async fn resolve_sample(&self, task_id: u64) -> Result<ResolvedSample, ClientError> {
        match self.sample_decision(task_id).await? {
            SampleDecision::NotYet { decidable_at } => {
                return Err(ClientError::InvalidRequest(format!(
                    "task {task_id}'s sample draw is decidable from block {decidable_at} on"
                )));
            }
            SampleDecision::Checked { recorded: true }
            | SampleDecision::Unchecked { recorded: true } => {
                return Err(ClientError::InvalidRequest(format!(
                    "task {task_id}'s sample draw ran already"
                )));
            }
            SampleDecision::Checked { recorded: false }
            | SampleDecision::Unchecked { recorded: false } => {}
        }
        let receipt = self
            .send(
                "resolveSample",
                self.verinfer.resolveSample(U256::from(task_id)),
            )
            .await?;
        let tx = receipt.transaction_hash;
        let checked = self
            .receipt_events(&receipt)?
            .into_iter()
            .find_map(|event| match event {
                VerinferEvent::SampleDecided {
                    task_id: decided,
                    checked,
                    ..
                } if decided == task_id => Some(checked),
                _ => None,
            })
            .ok_or(ClientError::MissingEvent {
                action: "resolveSample",
                tx,
                event: "SampleDecided",
            })?;
        tracing::info!(task_id, %tx, checked, "sample draw resolved");
        Ok(ResolvedSample {
            task_id,
            checked,
            tx,
        })
    }

    /// Every registered GPU model, in registration order (`gpuModelCount`, `gpuModelAt`).
    pub async fn gpu_models(&self) -> Result<Vec<GpuModelInfo>, ClientError> {
        let count = self
            .verinfer
            .gpuModelCount()
            .call()
            .await
            .map_err(|error| ClientError::contract("gpuModelCount", error))?;
        let mut models = Vec::new();
        for index in 0..count.to::<u64>() {
            let info = self
                .verinfer
                .gpuModelAt(U256::from(index))
                .call()
                .await
                .map_err(|error| ClientError::contract("gpuModelAt", error))?;
            models.push(GpuModelInfo::from(info));
        }
        Ok(models)
    }

    /// The registered GPU model `name` (any spelling of it), or `None` when it is not
    /// registered; an error when the name is not one the contract accepts.
    pub async fn gpu_model(&self, name: &str) -> Result<Option<GpuModelInfo>, ClientError> {
        let (id, _) = normalise_gpu_model(name).map_err(ClientError::InvalidRequest)?;
        match self.verinfer.gpuModel(id).call().await {
            Ok(info) => Ok(Some(GpuModelInfo::from(info))),
            Err(error) => match verinfer_abi::Revert::from_error(&error)
                .as_ref()
                .and_then(verinfer_abi::Revert::verinfer)
            {
                Some(Verinfer::VerinferErrors::GpuModelNotRegistered(_)) => Ok(None),
                _ => Err(ClientError::contract("gpuModel", error)),
            },
        }
    }

    /// The GPU model a task of `kind` will name: for text, `named` checked against the registry,
    /// or the registered model with the most available nodes that has `min_vram_mib`; for
    /// images none (but some registered model must have `min_vram_mib`).
    async fn task_gpu_model(
        &self,
        kind: TaskKind,
        min_vram_mib: u32,
        named: Option<&str>,
    ) -> Result<Option<GpuModelInfo>, ClientError> {
        if let Some(name) = named {
            let model = self
                .gpu_model(name)
                .await?
                .ok_or_else(|| ClientError::GpuModelNotRegistered(name.to_owned()))?;
            if model.vram_mib < min_vram_mib {
                return Err(ClientError::GpuModelLacksVram {
                    name: model.name,
                    vram_mib: model.vram_mib,
                    min_vram_mib,
                });
            }
            return Ok(Some(model));
        }
        let fitting: Vec<GpuModelInfo> = self
            .gpu_models()
            .await?
            .into_iter()
            .filter(|model| model.vram_mib >= min_vram_mib)
            .collect();
        if fitting.is_empty() {
            return Err(ClientError::NoGpuModelFits { min_vram_mib });
        }
        if kind == TaskKind::Image {
            return Ok(None);
        }
        // The most available nodes; the first registered among equals.
        let chosen = fitting
            .into_iter()
            .rev()
            .max_by_key(|model| model.available_nodes)
            .expect("not empty");
        tracing::info!(gpu_model = %chosen.name, available_nodes = chosen.available_nodes, "chose the text task's GPU model");
        Ok(Some(chosen))
    }

    /// Tokens the contract holds for this account (`claimable`): refunds of its aborted, errored
    /// and expired tasks, slash rewards, and returned stakes. [`withdraw`](Self::withdraw) sends
    /// them.
    pub async fn claimable(&self) -> Result<u128, ClientError> {
        self.claimable_of(self.account).await
    }

    /// Tokens the contract holds for `account` (`claimable`).
    pub async fn claimable_of(&self, account: Address) -> Result<u128, ClientError> {
        let amount = self
            .verinfer
            .claimable(account)
            .call()
            .await
            .map_err(|error| ClientError::contract("claimable", error))?;
        Ok(u128::try_from(amount).unwrap_or(u128::MAX))
    }

    /// Sends this account everything credited to it (`withdraw()`); refused before any
    /// transaction when nothing is.
    pub async fn withdraw(&self) -> Result<Withdrawal, ClientError> {
        self.check_chain().await?;
        let amount = self.claimable().await?;
        if amount == 0 {
            return Err(ClientError::NothingToWithdraw(self.account));
        }
        let receipt = self.send("withdraw", self.verinfer.withdraw()).await?;
        let amount = self
            .receipt_events(&receipt)?
            .into_iter()
            .find_map(|event| match event {
                VerinferEvent::Withdrawn { amount, .. } => Some(amount),
                _ => None,
            })
            .unwrap_or(amount);
        tracing::info!(amount, tx = %receipt.transaction_hash, "withdrew");
        Ok(Withdrawal {
            account: self.account,
            amount,
            tx: receipt.transaction_hash,
        })
    }

    /// Ends a queued task (or a check still waiting for checkers) whose queue timeout has passed
    /// (`expireTask`, anybody may send it); its fee is credited to its creator. Refused before any transaction when the task is not
    /// queued or has not expired yet (by the latest block's time).
    pub async fn expire_task(&self, task_id: u64) -> Result<ExpiredTask, ClientError> {
        let task = self.chain_task(task_id).await?;
        if !matches!(task.status, TaskStatus::Queued | TaskStatus::CheckQueued) {
            return Err(ClientError::InvalidRequest(format!(
                "task {task_id} is {}: only a task still queued (or a check waiting for checkers) can expire",
                task.status
            )));
        }
        let now = self.chain_time().await?;
        if now < task.expires_at {
            return Err(ClientError::InvalidRequest(format!(
                "task {task_id} expires at {} (unix time), {} s from the latest block",
                task.expires_at,
                task.expires_at - now
            )));
        }
        let receipt = self
            .send("expireTask", self.verinfer.expireTask(U256::from(task_id)))
            .await?;
        tracing::info!(task_id, tx = %receipt.transaction_hash, "task expired");
        Ok(ExpiredTask {
            task_id,
            tx: receipt.transaction_hash,
            refunded: task.fee,
        })
    }

    /// The latest block's timestamp: the chain's time.
    async fn chain_time(&self) -> Result<u64, ClientError> {
        let block = self
            .provider
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await?
            .ok_or_else(|| {
                ClientError::InvalidRequest("the endpoint has no latest block".into())
            })?;
        Ok(block.header.timestamp)
    }

    /// Cancels a task of this account that still waits in its queue; the contract refunds the
    /// whole fee. Refused before any transaction when the task is not this account's or has
    /// already started or ended.
    pub async fn cancel_task(&self, task_id: u64) -> Result<CancelledTask, ClientError> {
        let task = self.chain_task(task_id).await?;
        if task.creator != self.account {
            return Err(ClientError::InvalidRequest(format!(
                "task {task_id} was created by {}, not by {}: only its creator can cancel it",
                task.creator, self.account
            )));
        }
        if task.status != TaskStatus::Queued {
            return Err(ClientError::InvalidRequest(format!(
                "task {task_id} is {}: only a task still queued can be cancelled",
                task.status
            )));
        }
        let receipt = self
            .send("cancelTask", self.verinfer.cancelTask(U256::from(task_id)))
            .await?;
        tracing::info!(task_id, tx = %receipt.transaction_hash, "task cancelled");
        Ok(CancelledTask {
            task_id,
            tx: receipt.transaction_hash,
            refunded: task.fee,
        })
    }

    async fn ensure_allowance(&self, fee: u128) -> Result<(), ClientError> {
        let allowance = self
            .token
            .allowance(self.account, self.deployment.verinfer)
            .call()
            .await
            .map_err(|error| ClientError::contract("allowance", error))?;
        if allowance >= U256::from(fee) {
            return Ok(());
        }
        self.send(
            "approve",
            self.token
                .approve(self.deployment.verinfer, U256::from(fee)),
        )
        .await?;
        Ok(())
    }

    /// The task's record from `getTask`.
    pub async fn chain_task(&self, task_id: u64) -> Result<ChainTask, ClientError> {
        let info = self
            .verinfer
            .getTask(U256::from(task_id))
            .call()
            .await
            .map_err(|error| ClientError::contract("getTask", error))?;
        let task = ChainTask::from_info(task_id, info)?;
        if !task.exists() {
            return Err(ClientError::UnknownTask(task_id));
        }
        Ok(task)
    }

    /// The task on chain, with the relayer's view next to it.
    pub async fn task_status(&self, task_id: u64) -> Result<TaskStatusReport, ClientError> {
        let chain = self.chain_task(task_id).await?;
        let sampling_bps = self.sampling_bps_of(&chain).await?;
        let relayer = self
            .relayer
            .task(task_id)
            .await
            .map_err(|error| error.to_string());
        Ok(TaskStatusReport {
            chain,
            sampling_bps,
            relayer,
        })
    }

    /// Polls the chain until the task is final, calling `on_progress` whenever its record
    /// changes. When no node settles a task well after its reveal deadline (all of them went
    /// away), settles it itself so the fee comes back; when a queued task (or a check waiting for
    /// checkers) outlives its queue timeout, expires it (its fee is credited back: see
    /// [`claimable`](Self::claimable)). A sampled task whose draw chose a check but that nobody
    /// moved on (the first node calls `resolveSample`) for a while: resolves it itself, so the
    /// checkers are drawn.
    pub async fn wait<F>(&self, task_id: u64, mut on_progress: F) -> Result<ChainTask, ClientError>
    where
        F: FnMut(&ChainTask),
    {
        let mut last: Option<ChainTask> = None;
        // The deadline a settle was tried for (a check starts with new deadlines).
        let mut settle_tried: Option<u32> = None;
        let mut expire_tried: Option<u64> = None;
        let mut resolve_tried = false;
        // When the draw of an awaiting sampled task was first seen to say "checked".
        let mut checked_since: Option<tokio::time::Instant> = None;
        loop {
            let task = self.chain_task(task_id).await?;
            if last.as_ref() != Some(&task) {
                on_progress(&task);
            }
            if task.is_terminal() {
                return Ok(task);
            }
            let settleable = matches!(
                task.status,
                TaskStatus::Committing | TaskStatus::Revealing | TaskStatus::AwaitingSample
            );
            if settleable
                && settle_tried != Some(task.reveal_deadline)
                && unix_now() > u64::from(task.reveal_deadline) + SETTLE_GRACE.as_secs()
            {
                settle_tried = Some(task.reveal_deadline);
                match self
                    .send("settle", self.verinfer.settle(U256::from(task_id)))
                    .await
                {
                    Ok(receipt) => {
                        tracing::info!(task_id, tx = %receipt.transaction_hash, "settled the task past its deadline")
                    }
                    Err(error) => {
                        tracing::warn!(task_id, %error, "could not settle the task past its deadline")
                    }
                }
            }
            if matches!(task.status, TaskStatus::Queued | TaskStatus::CheckQueued)
                && expire_tried != Some(task.expires_at)
                && unix_now() >= task.expires_at
                && self.chain_time().await? >= task.expires_at
            {
                expire_tried = Some(task.expires_at);
                match self
                    .send("expireTask", self.verinfer.expireTask(U256::from(task_id)))
                    .await
                {
                    Ok(receipt) => {
                        tracing::info!(task_id, tx = %receipt.transaction_hash, "expired the task past its queue timeout")
                    }
                    Err(error) => {
                        tracing::warn!(task_id, %error, "could not expire the task past its queue timeout")
                    }
                }
            }
            if task.status == TaskStatus::AwaitingSample && !resolve_tried {
                match self.sample_decision(task_id).await {
                    Ok(SampleDecision::Checked { recorded: false }) => {
                        let since = *checked_since.get_or_insert_with(tokio::time::Instant::now);
                        if since.elapsed() >= SETTLE_GRACE {
                            resolve_tried = true;
                            match self.resolve_sample(task_id).await {
                                Ok(resolved) => {
                                    tracing::info!(task_id, tx = %resolved.tx, "started the check nobody started")
                                }
                                Err(error) => {
                                    tracing::warn!(task_id, %error, "could not start the check")
                                }
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(error) => tracing::debug!(task_id, %error, "sample decision unreadable"),
                }
            }
            last = Some(task);
            tokio::time::sleep(self.poll_interval).await;
        }
    }

    /// Everything the chain records about a task: its nodes with their declared GPUs, what each
    /// revealed, the settlement, rewards and slashes.
    pub async fn task_report(&self, task_id: u64) -> Result<TaskReport, ClientError> {
        let task = self.chain_task(task_id).await?;
        let sampling_bps = self.sampling_bps_of(&task).await?;
        if !task.started() {
            return Ok(TaskReport {
                task,
                sampling_bps,
                nodes: Vec::new(),
                settlement: None,
            });
        }
        let id_topic = B256::from(U256::from(task_id));
        let address = self.deployment.verinfer;

        let by_task = Filter::new()
            .address(address)
            .event_signature(vec![
                Verinfer::ImageResultRevealed::SIGNATURE_HASH,
                Verinfer::TextResultRevealed::SIGNATURE_HASH,
                Verinfer::InvalidArgsReported::SIGNATURE_HASH,
                Verinfer::TaskSettled::SIGNATURE_HASH,
            ])
            .topic1(id_topic);
        let payouts = Filter::new()
            .address(address)
            .event_signature(vec![
                Verinfer::NodeRewarded::SIGNATURE_HASH,
                Verinfer::NodeSlashed::SIGNATURE_HASH,
                Verinfer::NodeKicked::SIGNATURE_HASH,
            ])
            .topic2(id_topic);
        let joins = Filter::new()
            .address(address)
            .event_signature(Verinfer::NodeJoined::SIGNATURE_HASH)
            .topic1(
                task.nodes
                    .iter()
                    .filter(|node| !node.is_zero())
                    .map(|node| node.into_word())
                    .collect::<Vec<_>>(),
            );

        // Slots with nodes: all three, or a sampled task's first node until its check starts
        // (checkers fill slots 1 and 2 together).
        let mut nodes: Vec<NodeReport> = task
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, address)| !address.is_zero())
            .map(|(slot, &address)| NodeReport {
                slot: slot as u8,
                address,
                gpu_model_name: None,
                vram_mib: None,
                committed: task.committed_mask & (1 << slot) != 0,
                revealed: None,
                agreed: None,
                reward: 0,
                slash: None,
            })
            .collect();
        let mut settlement = None;
        let mut logs = self.logs(&joins).await?;
        logs.extend(self.logs(&by_task).await?);
        logs.extend(self.logs(&payouts).await?);
        for log in logs {
            let event = VerinferEvent::from_log(&log).map_err(ClientError::Event)?;
            let slot = event
                .node()
                .filter(|node| !node.is_zero())
                .and_then(|node| task.slot_of(node))
                .filter(|&slot| slot < nodes.len());
            match (event, slot) {
                (
                    VerinferEvent::NodeJoined {
                        gpu_model_name,
                        vram_mib,
                        ..
                    },
                    Some(slot),
                ) => {
                    // A node that left and rejoined: the latest join holds.
                    nodes[slot].gpu_model_name = Some(gpu_model_name);
                    nodes[slot].vram_mib = Some(vram_mib);
                }
                (VerinferEvent::ImageResultRevealed { phashes, .. }, Some(slot)) => {
                    nodes[slot].revealed = Some(RevealedResult::Images(phashes));
                }
                (VerinferEvent::TextResultRevealed { digest, .. }, Some(slot)) => {
                    nodes[slot].revealed = Some(if digest == verinfer_task::INVALID_ARGS {
                        RevealedResult::InvalidArgs
                    } else {
                        RevealedResult::Text(digest)
                    });
                }
                (VerinferEvent::InvalidArgsReported { .. }, Some(slot)) => {
                    nodes[slot].revealed = Some(RevealedResult::InvalidArgs);
                }
                (VerinferEvent::NodeRewarded { amount, .. }, Some(slot)) => {
                    nodes[slot].reward += amount;
                }
                (VerinferEvent::NodeSlashed { amount, reason, .. }, Some(slot)) => {
                    nodes[slot].slash = Some(Slash {
                        reason,
                        amount,
                        returned: None,
                    });
                }
                (VerinferEvent::NodeKicked { stake_returned, .. }, Some(slot)) => {
                    if let Some(slash) = nodes[slot].slash.as_mut() {
                        slash.returned = Some(stake_returned);
                    }
                }
                (
                    VerinferEvent::TaskSettled {
                        outcome,
                        agreeing_mask,
                        distances,
                        threshold,
                        reward_per_node,
                        ..
                    },
                    _,
                ) => {
                    settlement = Some(Settlement {
                        outcome,
                        agreeing_mask,
                        distances,
                        threshold,
                        reward_per_node,
                    });
                }
                _ => {}
            }
        }
        if let Some(settlement) = &settlement {
            for node in &mut nodes {
                node.agreed = Some(settlement.agreed(usize::from(node.slot)));
            }
        }
        Ok(TaskReport {
            task,
            sampling_bps,
            nodes,
            settlement,
        })
    }

    /// The Verinfer events of a receipt (logs of other contracts, such as the token's, skipped).
    fn receipt_events(
        &self,
        receipt: &TransactionReceipt,
    ) -> Result<Vec<VerinferEvent>, ClientError> {
        receipt
            .logs()
            .iter()
            .filter(|log| log.address() == self.deployment.verinfer)
            .map(|log| VerinferEvent::from_log(log).map_err(ClientError::Event))
            .collect()
    }

    /// `eth_getLogs` from the deployment block to the head, in ranges the endpoint accepts.
    async fn logs(&self, filter: &Filter) -> Result<Vec<Log>, ClientError> {
        let head = self.provider.get_block_number().await?;
        let mut logs = Vec::new();
        let mut from = self.deployment.deploy_block;
        while from <= head {
            let to = head.min(from.saturating_add(MAX_LOG_RANGE - 1));
            logs.extend(
                self.provider
                    .get_logs(&filter.clone().from_block(from).to_block(to))
                    .await?,
            );
            from = to + 1;
        }
        Ok(logs)
    }
}

/// The task's chain parameters, checked against the contract's rules before any gas is spent.
struct TaskRequest {
    kind: TaskKind,
    image_count: u8,
    gpu_model: Option<String>,
}

impl TaskRequest {
    fn new(
        args: &TaskArgs,
        fee: Option<u128>,
        gpu_model: Option<&str>,
    ) -> Result<Self, ClientError> {
        if let Some(fee) = fee
            && fee >= 1u128 << 96
        {
            return Err(ClientError::InvalidRequest(format!(
                "fee {fee} does not fit the contract's uint96"
            )));
        }
        let (kind, image_count) = match args {
            TaskArgs::Image(image) => {
                if gpu_model.is_some() {
                    return Err(ClientError::InvalidRequest(
                        "image tasks cannot require a GPU model (images are compared across hardware)".to_owned(),
                    ));
                }
                // Validation bounds num_images to 1..=16.
                (
                    TaskKind::Image,
                    u8::try_from(image.num_images).unwrap_or(u8::MAX),
                )
            }
            TaskArgs::Text(_) => (TaskKind::Text, 0),
        };
        let gpu_model = match gpu_model {
            Some(name) => {
                normalise_gpu_model(name).map_err(ClientError::InvalidRequest)?;
                Some(name.to_owned())
            }
            None => None,
        };
        Ok(Self {
            kind,
            image_count,
            gpu_model,
        })
    }
}

/// Validates `args` and returns their canonical bytes, re-parsed with the nodes' strict parser so
/// that what is uploaded is exactly what nodes accept.
pub fn checked_args_bytes(args: &TaskArgs) -> Result<Vec<u8>, ClientError> {
    args.validate()?;
    let bytes = args.to_canonical_bytes();
    TaskArgs::from_slice(&bytes)?;
    Ok(bytes)
}

impl Client {
    /// Sends `call` with a padded gas limit and waits for a successful receipt, one transaction
    /// of this account at a time (see `tx_lock`). The block's draw runs in its first call, so
    /// gas depends on where the transaction lands: the estimate is made in the pending block
    /// (where a transaction sent now lands, first in its block on an automining chain), so that
    /// it includes that draw; at the latest block the draw has run already.
    pub(crate) async fn send<D: CallDecoder + Clone>(
        &self,
        action: &'static str,
        call: CallBuilder<&DynProvider, D>,
    ) -> Result<TransactionReceipt, ClientError> {
        let _one_at_a_time = self.tx_lock.lock().await;
        let estimate = match call
            .clone()
            .block(alloy::eips::BlockId::pending())
            .estimate_gas()
            .await
        {
            Ok(gas) => gas,
            Err(error) if verinfer_abi::Revert::from_error(&error).is_some() => {
                return Err(ClientError::contract(action, error));
            }
            Err(error) => {
                tracing::debug!(%error, "estimating in the pending block failed; estimating in the latest");
                call.estimate_gas()
                    .await
                    .map_err(|error| ClientError::contract(action, error))?
            }
        };
        let pending = call
            .gas(padded_gas_limit(estimate))
            .send()
            .await
            .map_err(|error| ClientError::contract(action, error))?;
        let receipt = pending
            .get_receipt()
            .await
            .map_err(|error| ClientError::Contract {
                action,
                message: error.to_string(),
            })?;
        if !receipt.status() {
            return Err(ClientError::Reverted {
                action,
                tx: receipt.transaction_hash,
            });
        }
        Ok(receipt)
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_fees_have_a_minimum_only() {
        let full = FeeRange {
            minimum: 10,
            maximum: None,
        };
        let decimals = TokenDecimals::new(18).expect("at most 77");
        assert_eq!(full.check(None, decimals).unwrap(), 10);
        assert_eq!(full.check(Some(1 << 80), decimals).unwrap(), 1 << 80);
        let error = full.check(Some(9), decimals).unwrap_err();
        assert!(matches!(
            error,
            ClientError::FeeBelowMinimum {
                fee: 9,
                minimum: 10,
                ..
            }
        ));
    }

    #[test]
    fn sampled_fees_outside_the_range_name_both_bounds() {
        // A token of 6 decimals (as USDC has): the message writes its amounts so.
        let decimals = TokenDecimals::new(6).expect("at most 77");
        let tokens = 1_000_000;
        let sampled = FeeRange {
            minimum: 4 * tokens,
            maximum: Some(50 * tokens),
        };
        assert_eq!(sampled.check(None, decimals).unwrap(), 4 * tokens);
        assert_eq!(
            sampled.check(Some(50 * tokens), decimals).unwrap(),
            50 * tokens
        );
        for (fee, written) in [
            (3 * tokens, "fee 3 tokens"),
            (50 * tokens + 1, "fee 50.000001 tokens"),
        ] {
            let message = sampled.check(Some(fee), decimals).unwrap_err().to_string();
            assert!(
                message.contains(written)
                    && message.contains("minimum 4 tokens")
                    && message.contains("maximum 50 tokens"),
                "{message}"
            );
        }
        let impossible = FeeRange {
            minimum: 4 * tokens,
            maximum: Some(tokens),
        };
        let message = impossible.check(None, decimals).unwrap_err().to_string();
        assert!(
            message.contains("no sampled task of this size"),
            "{message}"
        );
    }

    #[test]
    fn options_default_to_a_full_task_at_the_minimum() {
        let options = TaskOptions::new();
        assert_eq!(options.mode, ValidationMode::Full);
        assert_eq!(options.fee, None);
        let sampled = TaskOptions::new()
            .with_fee(5)
            .with_min_vram_mib(8192)
            .with_gpu_model("devnet-gpu-a")
            .sampled();
        assert_eq!(sampled.mode, ValidationMode::Sampled);
        assert_eq!(
            (
                sampled.fee,
                sampled.min_vram_mib,
                sampled.gpu_model.as_deref()
            ),
            (Some(5), 8192, Some("devnet-gpu-a"))
        );
    }
}
