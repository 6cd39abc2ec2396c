//! The node's view of the chain and the transactions it sends, through the `verinfer-abi`
//! bindings. Reads are retried with backoff; a transaction is sent once per call and its
//! receipt awaited (the daemon re-plans from the chain state after any failure, so a failed send
//! is retried only if it is still needed).

use std::time::Duration;

use alloy::{
    consensus::Transaction as _,
    eips::BlockNumberOrTag,
    network::EthereumWallet,
    primitives::{Address, B256, Bytes, U256},
    providers::{DynProvider, Provider, ProviderBuilder},
    rpc::types::{Filter, Log},
    signers::local::PrivateKeySigner,
    sol_types::{SolCall as _, SolEvent as _},
};
use url::Url;
pub use verinfer_abi::{ChainTask, NodeState};
use verinfer_abi::{
    IERC20, IERC20Metadata, Revert, SlashReason, TaskStatus, TokenDecimals, Verinfer,
    Verinfer::VerinferErrors, VerinferEvent, VerinferInstance,
};

use crate::{retry::Backoff, state::SettledOutcome};

/// A chain call that failed.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The RPC endpoint failed or could not be reached (after retries).
    #[error("RPC call {call} failed: {message}")]
    Rpc {
        /// What was being done.
        call: &'static str,
        /// The error.
        message: String,
    },
    /// The contract rejected a transaction (at estimation or on chain).
    #[error("{call} reverted: {reason}")]
    Reverted {
        /// The function called.
        call: &'static str,
        /// The decoded contract error, or the raw revert.
        reason: String,
        /// The decoded contract error, when it is one of Verinfer's.
        error: Option<Box<VerinferErrors>>,
    },
    /// A transaction was sent but no receipt came within the timeout.
    #[error("{call} transaction {tx} has no receipt after {timeout:?}")]
    NoReceipt {
        /// The function called.
        call: &'static str,
        /// The transaction hash.
        tx: B256,
        /// How long the node waited.
        timeout: Duration,
    },
    /// The chain returned something this node cannot interpret.
    #[error("unexpected chain data: {0}")]
    Unexpected(String),
}

impl ChainError {
    /// The contract error that made a transaction revert, when it is one of Verinfer's.
    pub fn contract_error(&self) -> Option<&VerinferErrors> {
        match self {
            Self::Reverted { error, .. } => error.as_deref(),
            _ => None,
        }
    }
}

/// The latest block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Block number.
    pub number: u64,
    /// Block timestamp: the chain's time.
    pub timestamp: u64,
}

/// A node as `getNode` returns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainNode {
    /// State.
    pub state: NodeState,
    /// Node id (0 before the first join).
    pub id: u32,
    /// Stake in token base units.
    pub stake: u128,
    /// Declared GPU model id.
    pub gpu_model: B256,
    /// The registry's VRAM of its GPU model, in MiB.
    pub vram_mib: u32,
    /// Fee tier: it is drawn only for tasks paying at least 2^fee_tier x the network minimum.
    pub fee_tier: u8,
    /// Current task (0: none).
    pub task_id: u64,
}

/// A registered GPU model (`gpuModel(id)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuModel {
    /// Its id (keccak256 of the normalised name).
    pub id: B256,
    /// Its normalised name.
    pub name: String,
    /// The VRAM every card of the model has, in MiB.
    pub vram_mib: u32,
    /// Whether new nodes may declare it.
    pub active: bool,
    /// Available nodes of the model (all fee tiers).
    pub available_nodes: u32,
}

/// A `TaskStarted` event, or a `CheckStarted` one (`check`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartedTask {
    /// The task.
    pub task_id: u64,
    /// The selected nodes: three for a full task, `[first, 0x0, 0x0]` for a sampled one, and
    /// `[0x0, checker, checker]` for a check (the first node is the task's slot 0).
    pub nodes: [Address; 3],
    /// Block of the event.
    pub block: u64,
    /// Whether this is a `CheckStarted`: the two checkers of a checked sampled task were drawn.
    pub check: bool,
}

/// A `TaskSettled` event, as far as a node needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettledTask {
    /// Validated, Aborted or Errored.
    pub outcome: SettledOutcome,
    /// Bit i: node i agreed (and was paid).
    pub agreeing_mask: u8,
}

/// A `NodeSlashed` event: the node lost `amount` of its stake over `task_id` (the contract kicks
/// every node it slashes: a `NodeKicked` follows in the same transaction).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slash {
    /// The task.
    pub task_id: u64,
    /// Why.
    pub reason: SlashReason,
    /// Slashed, in token base units.
    pub amount: u128,
    /// Block of the event.
    pub block: u64,
}

/// What a task paid or cost one node, from its `NodeRewarded` and `NodeSlashed` events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeOutcome {
    /// Paid `amount` (added to its stake) for `task_id`.
    Rewarded {
        /// The task.
        task_id: u64,
        /// Base units.
        amount: u128,
    },
    /// Slashed (and kicked).
    Slashed(Slash),
}

/// This node's `ResultCommitted` event for a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitSeen {
    /// The commitment on chain.
    pub commitment: B256,
    /// The transaction that carried it.
    pub tx: Option<B256>,
    /// Its block.
    pub block: u64,
}

/// A reveal another node sent, decoded from its transaction (for the copycat test behaviour).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObservedReveal {
    /// `revealImage(taskId, pHashes, salt)`.
    Image {
        /// The revealed pHashes.
        phashes: Vec<u64>,
        /// The salt.
        salt: B256,
    },
    /// `revealText(taskId, digest, salt)`.
    Text {
        /// The revealed digest.
        digest: B256,
        /// The salt.
        salt: B256,
    },
    /// `reportInvalidArgs(taskId, salt)`.
    InvalidArgs {
        /// The salt.
        salt: B256,
    },
}

/// The node's connection to the chain: a provider that signs with the node key, and the
/// Verinfer contract.
#[derive(Debug, Clone)]
pub struct Chain {
    provider: DynProvider,
    verinfer: VerinferInstance<DynProvider>,
    node: Address,
    tx_timeout: Duration,
    max_block_range: u64,
}

impl Chain {
    /// Connects to `rpc_url` through `http` (see [`NodeConfig::http_client`](crate::NodeConfig::http_client)),
    /// signing with `signer`. No request is made yet.
    pub fn connect(
        http: reqwest::Client,
        rpc_url: Url,
        signer: PrivateKeySigner,
        verinfer: Address,
        tx_timeout: Duration,
        max_block_range: u64,
    ) -> Self {
        let node = signer.address();
        // Nonces come from the node's pending transaction count each time (not a local cache):
        // a send that fails before reaching the mempool must not leave a nonce gap.
        let provider = ProviderBuilder::default()
            .with_gas_estimation()
            .with_simple_nonce_management()
            .fetch_chain_id()
            .wallet(EthereumWallet::from(signer))
            .connect_reqwest(http, rpc_url)
            .erased();
        let verinfer = Verinfer::new(verinfer, provider.clone());
        Self {
            provider,
            verinfer,
            node,
            tx_timeout,
            max_block_range: max_block_range.max(1),
        }
    }

    /// The node's address.
    pub const fn node(&self) -> Address {
        self.node
    }

    /// The Verinfer contract's address.
    pub fn verinfer(&self) -> Address {
        *self.verinfer.address()
    }

    /// The provider (signing with the node key).
    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    /// The chain id the endpoint reports.
    pub async fn chain_id(&self) -> Result<u64, ChainError> {
        read("eth_chainId", || self.provider.get_chain_id()).await
    }

    /// The latest block's number and timestamp.
    pub async fn head(&self) -> Result<Head, ChainError> {
        let block = read("eth_getBlockByNumber", || async {
            self.provider
                .get_block_by_number(BlockNumberOrTag::Latest)
                .await
        })
        .await?
        .ok_or_else(|| ChainError::Unexpected("the endpoint has no latest block".into()))?;
        Ok(Head {
            number: block.header.number,
            timestamp: block.header.timestamp,
        })
    }

    /// `getTask(taskId)`, decoded ([`ChainError::Unexpected`] for values this node does not
    /// know).
    pub async fn task(&self, task_id: u64) -> Result<ChainTask, ChainError> {
        let info = read("getTask", || async {
            self.verinfer.getTask(U256::from(task_id)).call().await
        })
        .await?;
        ChainTask::from_info(task_id, info)
            .map_err(|error| ChainError::Unexpected(format!("task {task_id}: {error}")))
    }

    /// `getNode(node)`.
    pub async fn node_info(&self, node: Address) -> Result<ChainNode, ChainError> {
        let info = read("getNode", || async {
            self.verinfer.getNode(node).call().await
        })
        .await?;
        let state = NodeState::try_from(info.state)
            .map_err(|error| ChainError::Unexpected(format!("node {node}: {error}")))?;
        Ok(ChainNode {
            state,
            id: info.id,
            stake: info.stake.to::<u128>(),
            gpu_model: info.gpuModel,
            vram_mib: info.vramMiB,
            fee_tier: info.feeTier,
            task_id: info.taskId.to::<u64>(),
        })
    }

    /// `params().minStake`: the smallest stake a node may join with now.
    pub async fn min_stake(&self) -> Result<u128, ChainError> {
        let params = read("params", || async { self.verinfer.params().call().await }).await?;
        Ok(params.minStake.to::<u128>())
    }

    /// `minTaskFee(kind, imageCount)`: the smallest fee of such a task now.
    pub async fn min_task_fee(
        &self,
        kind: verinfer_abi::TaskKind,
        image_count: u8,
    ) -> Result<u128, ChainError> {
        let fee = read("minTaskFee", || async {
            self.verinfer
                .minTaskFee(kind.into(), image_count)
                .call()
                .await
        })
        .await?;
        Ok(u128::try_from(fee).unwrap_or(u128::MAX))
    }

    /// The registered GPU model `id` (`gpuModel(id)`); `None` when it is not registered.
    pub async fn gpu_model(&self, id: B256) -> Result<Option<GpuModel>, ChainError> {
        match read("gpuModel", || async {
            self.verinfer.gpuModel(id).call().await
        })
        .await
        {
            Ok(info) => Ok(Some(GpuModel {
                id: info.id,
                name: info.name,
                vram_mib: info.vramMiB,
                active: info.active,
                available_nodes: info.availableNodes,
            })),
            Err(error)
                if matches!(
                    error.contract_error(),
                    Some(VerinferErrors::GpuModelNotRegistered(_))
                ) =>
            {
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    /// `claimable(account)`: tokens credited to `account` (returned stakes, refunds, slash
    /// rewards) that `withdraw()` sends it.
    pub async fn claimable(&self, account: Address) -> Result<u128, ChainError> {
        let amount = read("claimable", || async {
            self.verinfer.claimable(account).call().await
        })
        .await?;
        Ok(u128::try_from(amount).unwrap_or(u128::MAX))
    }

    /// `drawDue()` as a transaction sent now would see it (read at the pending block, where it
    /// would land; at the latest block when the endpoint cannot read the pending one).
    pub async fn draw_due(&self) -> Result<bool, ChainError> {
        let pending = self
            .verinfer
            .drawDue()
            .block(alloy::eips::BlockId::pending())
            .call()
            .await;
        match pending {
            Ok(due) => Ok(due),
            Err(error) => {
                tracing::debug!(%error, "drawDue at the pending block failed; reading the latest");
                read("drawDue", || async { self.verinfer.drawDue().call().await }).await
            }
        }
    }

    /// `gpuModelId(name)`: the id the contract stores for a declared GPU model name.
    pub async fn gpu_model_id(&self, name: &str) -> Result<B256, ChainError> {
        let name = name.to_owned();
        self.verinfer
            .gpuModelId(name)
            .call()
            .await
            .map_err(|error| contract_error("gpuModelId", &error))
    }

    /// The contract's logs matching `filter` in `from..=to`, in chunks of at most
    /// `max_block_range` blocks, each decoded with the one event decoder.
    async fn events(
        &self,
        call: &'static str,
        filter: Filter,
        from: u64,
        to: u64,
    ) -> Result<Vec<(Log, VerinferEvent)>, ChainError> {
        let filter = filter.address(self.verinfer());
        let mut events = Vec::new();
        for (start, end) in chunks(from, to, self.max_block_range) {
            let chunk = filter.clone().from_block(start).to_block(end);
            let logs = read(call, || self.provider.get_logs(&chunk)).await?;
            for log in logs {
                let event = VerinferEvent::from_log(&log)
                    .map_err(|error| ChainError::Unexpected(error.to_string()))?;
                events.push((log, event));
            }
        }
        Ok(events)
    }

    /// `TaskStarted` events in `from..=to`.
    pub async fn started_tasks(&self, from: u64, to: u64) -> Result<Vec<StartedTask>, ChainError> {
        Ok(self
            .assignments(from, to)
            .await?
            .into_iter()
            .filter(|started| !started.check)
            .collect())
    }

    /// `TaskStarted` and `CheckStarted` events in `from..=to`, in chain order: every draw that
    /// may have selected a node.
    pub async fn assignments(&self, from: u64, to: u64) -> Result<Vec<StartedTask>, ChainError> {
        let filter = Filter::new().event_signature(vec![
            Verinfer::TaskStarted::SIGNATURE_HASH,
            Verinfer::CheckStarted::SIGNATURE_HASH,
        ]);
        let mut started = Vec::new();
        for (log, event) in self
            .events("eth_getLogs(TaskStarted, CheckStarted)", filter, from, to)
            .await?
        {
            match event {
                VerinferEvent::TaskStarted { task_id, nodes, .. } => started.push(StartedTask {
                    task_id,
                    nodes,
                    block: log_block(&log)?,
                    check: false,
                }),
                VerinferEvent::CheckStarted {
                    task_id, checkers, ..
                } => started.push(StartedTask {
                    task_id,
                    nodes: [Address::ZERO, checkers[0], checkers[1]],
                    block: log_block(&log)?,
                    check: true,
                }),
                _ => {}
            }
        }
        Ok(started)
    }

    /// `sampleDecision(taskId)`: once the sampled task's sample block is sealed, whether its
    /// draw chose a check; `None` before, or when the task no longer awaits its draw.
    pub async fn sample_decision(&self, task_id: u64) -> Result<Option<bool>, ChainError> {
        match read("sampleDecision", || async {
            self.verinfer
                .sampleDecision(U256::from(task_id))
                .call()
                .await
        })
        .await
        {
            Ok(decision) => Ok(decision.decidable.then_some(decision.checked)),
            Err(error)
                if matches!(
                    error.contract_error(),
                    Some(VerinferErrors::NotAwaitingSample(_))
                ) =>
            {
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    /// The `TaskSettled` event of `task_id`, searched from `from` to `to`.
    pub async fn settlement(
        &self,
        task_id: u64,
        from: u64,
        to: u64,
    ) -> Result<Option<SettledTask>, ChainError> {
        let filter = Filter::new()
            .event_signature(Verinfer::TaskSettled::SIGNATURE_HASH)
            .topic1(U256::from(task_id));
        let events = self
            .events("eth_getLogs(TaskSettled)", filter, from, to)
            .await?;
        for (_, event) in events {
            if let VerinferEvent::TaskSettled {
                outcome,
                agreeing_mask,
                ..
            } = event
            {
                let outcome = match outcome {
                    TaskStatus::Validated => SettledOutcome::Validated,
                    TaskStatus::Aborted => SettledOutcome::Aborted,
                    TaskStatus::Errored => SettledOutcome::Errored,
                    other => {
                        return Err(ChainError::Unexpected(format!(
                            "task {task_id} settled with outcome {other}"
                        )));
                    }
                };
                return Ok(Some(SettledTask {
                    outcome,
                    agreeing_mask,
                }));
            }
        }
        Ok(None)
    }

    /// Commitments other nodes made to `task_id` (`ResultCommitted` events), in event order.
    pub async fn commitments(
        &self,
        task_id: u64,
        from: u64,
        to: u64,
    ) -> Result<Vec<(Address, B256)>, ChainError> {
        let filter = Filter::new()
            .event_signature(Verinfer::ResultCommitted::SIGNATURE_HASH)
            .topic1(U256::from(task_id));
        let events = self
            .events("eth_getLogs(ResultCommitted)", filter, from, to)
            .await?;
        Ok(events
            .into_iter()
            .filter_map(|(_, event)| match event {
                VerinferEvent::ResultCommitted {
                    node, commitment, ..
                } => Some((node, commitment)),
                _ => None,
            })
            .collect())
    }

    /// `node`'s `ResultCommitted` event for `task_id`, searched from `from` to `to`.
    pub async fn commitment_of(
        &self,
        task_id: u64,
        node: Address,
        from: u64,
        to: u64,
    ) -> Result<Option<CommitSeen>, ChainError> {
        let filter = Filter::new()
            .event_signature(Verinfer::ResultCommitted::SIGNATURE_HASH)
            .topic1(U256::from(task_id))
            .topic2(node.into_word());
        for (log, event) in self
            .events("eth_getLogs(ResultCommitted)", filter, from, to)
            .await?
        {
            if let VerinferEvent::ResultCommitted { commitment, .. } = event {
                return Ok(Some(CommitSeen {
                    commitment,
                    tx: log.transaction_hash,
                    block: log_block(&log)?,
                }));
            }
        }
        Ok(None)
    }

    /// `node`'s `NodeRewarded` and `NodeSlashed` events in `from..=to`, in chain order.
    pub async fn node_outcomes(
        &self,
        node: Address,
        from: u64,
        to: u64,
    ) -> Result<Vec<NodeOutcome>, ChainError> {
        let filter = Filter::new()
            .event_signature(vec![
                Verinfer::NodeRewarded::SIGNATURE_HASH,
                Verinfer::NodeSlashed::SIGNATURE_HASH,
            ])
            .topic1(node.into_word());
        let mut outcomes = Vec::new();
        for (log, event) in self
            .events("eth_getLogs(NodeRewarded, NodeSlashed)", filter, from, to)
            .await?
        {
            match event {
                VerinferEvent::NodeRewarded {
                    task_id, amount, ..
                } => outcomes.push(NodeOutcome::Rewarded { task_id, amount }),
                VerinferEvent::NodeSlashed {
                    task_id,
                    amount,
                    reason,
                    ..
                } => outcomes.push(NodeOutcome::Slashed(Slash {
                    task_id,
                    reason,
                    amount,
                    block: log_block(&log)?,
                })),
                _ => {}
            }
        }
        Ok(outcomes)
    }

    /// `node`'s `NodeSlashed` events in `from..=to`, in chain order.
    pub async fn slashes(
        &self,
        node: Address,
        from: u64,
        to: u64,
    ) -> Result<Vec<Slash>, ChainError> {
        let filter = Filter::new()
            .event_signature(Verinfer::NodeSlashed::SIGNATURE_HASH)
            .topic1(node.into_word());
        let mut slashes = Vec::new();
        for (log, event) in self
            .events("eth_getLogs(NodeSlashed)", filter, from, to)
            .await?
        {
            if let VerinferEvent::NodeSlashed {
                task_id,
                amount,
                reason,
                ..
            } = event
            {
                slashes.push(Slash {
                    task_id,
                    reason,
                    amount,
                    block: log_block(&log)?,
                });
            }
        }
        Ok(slashes)
    }

    /// `node`'s latest `NodeSlashed` event in `from..=to`, searched from `to` backwards (a kicked
    /// node was slashed once, usually recently).
    pub async fn last_slash(
        &self,
        node: Address,
        from: u64,
        to: u64,
    ) -> Result<Option<Slash>, ChainError> {
        let ranges: Vec<(u64, u64)> = chunks(from, to, self.max_block_range).collect();
        for (start, end) in ranges.into_iter().rev() {
            if let Some(slash) = self.slashes(node, start, end).await?.pop() {
                return Ok(Some(slash));
            }
        }
        Ok(None)
    }

    /// The reveal `node` sent for `task_id`, decoded from its transaction's calldata.
    pub async fn observed_reveal(
        &self,
        task_id: u64,
        node: Address,
        from: u64,
        to: u64,
    ) -> Result<Option<ObservedReveal>, ChainError> {
        let filter = Filter::new()
            .event_signature(vec![
                Verinfer::ImageResultRevealed::SIGNATURE_HASH,
                Verinfer::TextResultRevealed::SIGNATURE_HASH,
                Verinfer::InvalidArgsReported::SIGNATURE_HASH,
            ])
            .topic1(U256::from(task_id))
            .topic2(node.into_word());
        let events = self
            .events("eth_getLogs(reveals)", filter, from, to)
            .await?;
        let Some((log, _)) = events.into_iter().next() else {
            return Ok(None);
        };
        let tx = log.transaction_hash.ok_or_else(|| {
            ChainError::Unexpected("a reveal log without a transaction hash".into())
        })?;
        self.decode_reveal(tx).await.map(Some)
    }

    async fn decode_reveal(&self, tx: B256) -> Result<ObservedReveal, ChainError> {
        let transaction = read("eth_getTransactionByHash", || {
            self.provider.get_transaction_by_hash(tx)
        })
        .await?
        .ok_or_else(|| ChainError::Unexpected(format!("transaction {tx} not found")))?;
        let input: Bytes = transaction.input().clone();
        if let Ok(call) = Verinfer::revealImageCall::abi_decode(&input) {
            return Ok(ObservedReveal::Image {
                phashes: call.pHashes,
                salt: call.salt,
            });
        }
        if let Ok(call) = Verinfer::revealTextCall::abi_decode(&input) {
            return Ok(ObservedReveal::Text {
                digest: call.digest,
                salt: call.salt,
            });
        }
        if let Ok(call) = Verinfer::reportInvalidArgsCall::abi_decode(&input) {
            return Ok(ObservedReveal::InvalidArgs { salt: call.salt });
        }
        Err(ChainError::Unexpected(format!(
            "transaction {tx} is not a direct reveal call"
        )))
    }

    // ------------------------------------------------------------------ transactions

    /// Sends `commit(taskId, commitment)`; [`confirm`](Self::confirm) awaits its receipt.
    pub async fn commit(&self, task_id: u64, commitment: B256) -> Result<Submitted, ChainError> {
        self.submit_with(
            "commit",
            self.verinfer.commit(U256::from(task_id), commitment),
            verinfer_abi::commit_gas_limit,
        )
        .await
    }

    /// Sends `revealImage(taskId, pHashes, salt)`.
    pub async fn reveal_image(
        &self,
        task_id: u64,
        phashes: Vec<u64>,
        salt: B256,
    ) -> Result<Submitted, ChainError> {
        self.submit_with(
            "revealImage",
            self.verinfer
                .revealImage(U256::from(task_id), phashes, salt),
            verinfer_abi::reveal_gas_limit,
        )
        .await
    }

    /// Sends `revealText(taskId, digest, salt)`.
    pub async fn reveal_text(
        &self,
        task_id: u64,
        digest: B256,
        salt: B256,
    ) -> Result<Submitted, ChainError> {
        self.submit_with(
            "revealText",
            self.verinfer.revealText(U256::from(task_id), digest, salt),
            verinfer_abi::reveal_gas_limit,
        )
        .await
    }

    /// Sends `reportInvalidArgs(taskId, salt)`.
    pub async fn report_invalid_args(
        &self,
        task_id: u64,
        salt: B256,
    ) -> Result<Submitted, ChainError> {
        self.submit_with(
            "reportInvalidArgs",
            self.verinfer.reportInvalidArgs(U256::from(task_id), salt),
            verinfer_abi::reveal_gas_limit,
        )
        .await
    }

    /// Sends `resolveSample(taskId)`: runs a sampled task's sample draw, queueing its check when
    /// the draw chose one.
    pub async fn resolve_sample(&self, task_id: u64) -> Result<Submitted, ChainError> {
        self.submit(
            "resolveSample",
            self.verinfer.resolveSample(U256::from(task_id)),
        )
        .await
    }

    /// `settle(taskId)`, awaiting its receipt.
    pub async fn settle(&self, task_id: u64) -> Result<B256, ChainError> {
        let submitted = self
            .submit("settle", self.verinfer.settle(U256::from(task_id)))
            .await?;
        self.confirm(submitted).await
    }

    /// Where an earlier transaction of this node stands.
    pub async fn tx_state(&self, tx: B256) -> Result<TxState, ChainError> {
        let receipt = read("eth_getTransactionReceipt", || async {
            self.provider.get_transaction_receipt(tx).await
        })
        .await?;
        if let Some(receipt) = receipt {
            return Ok(TxState::Mined {
                success: receipt.status(),
            });
        }
        let transaction = read("eth_getTransactionByHash", || async {
            self.provider.get_transaction_by_hash(tx).await
        })
        .await?;
        Ok(if transaction.is_some() {
            TxState::Pending
        } else {
            TxState::Unknown
        })
    }

    /// `join(gpuModelName, feeTier, amount)`.
    pub async fn join(
        &self,
        gpu_model: &str,
        fee_tier: u8,
        stake: u128,
    ) -> Result<B256, ChainError> {
        let amount = alloy::primitives::Uint::<96, 2>::try_from(stake)
            .map_err(|_| ChainError::Unexpected(format!("stake {stake} does not fit uint96")))?;
        let submitted = self
            .submit(
                "join",
                self.verinfer.join(gpu_model.to_owned(), fee_tier, amount),
            )
            .await?;
        self.confirm(submitted).await
    }

    /// `setFeeTier(feeTier)`.
    pub async fn set_fee_tier(&self, fee_tier: u8) -> Result<B256, ChainError> {
        let submitted = self
            .submit("setFeeTier", self.verinfer.setFeeTier(fee_tier))
            .await?;
        self.confirm(submitted).await
    }

    /// `drawTasks()`: runs the draw a later block owes the waiting tasks (never reverts).
    /// Returns the transaction and how many tasks it started.
    pub async fn draw_tasks(&self) -> Result<(B256, usize), ChainError> {
        let submitted = self.submit("drawTasks", self.verinfer.drawTasks()).await?;
        let receipt = self.receipt(submitted).await?;
        let started = receipt
            .logs()
            .iter()
            .filter(|log| log.address() == self.verinfer())
            .filter(|log| log.topic0() == Some(&Verinfer::TaskStarted::SIGNATURE_HASH))
            .count();
        Ok((receipt.transaction_hash, started))
    }

    /// `taskCount()`: how many tasks were ever created (the newest task's id).
    pub async fn task_count(&self) -> Result<u64, ChainError> {
        let count = read("taskCount", || async {
            self.verinfer.taskCount().call().await
        })
        .await?;
        Ok(u64::try_from(count).unwrap_or(u64::MAX))
    }

    /// `withdraw()`: sends the node everything credited to it.
    pub async fn withdraw(&self) -> Result<B256, ChainError> {
        let submitted = self.submit("withdraw", self.verinfer.withdraw()).await?;
        self.confirm(submitted).await
    }

    /// `leave()`.
    pub async fn leave(&self) -> Result<B256, ChainError> {
        let submitted = self.submit("leave", self.verinfer.leave()).await?;
        self.confirm(submitted).await
    }

    /// `addStake(amount)`.
    pub async fn add_stake(&self, amount: u128) -> Result<B256, ChainError> {
        let amount = alloy::primitives::Uint::<96, 2>::try_from(amount)
            .map_err(|_| ChainError::Unexpected(format!("amount {amount} does not fit uint96")))?;
        let submitted = self
            .submit("addStake", self.verinfer.addStake(amount))
            .await?;
        self.confirm(submitted).await
    }

    /// The staking token's address.
    pub async fn token(&self) -> Result<Address, ChainError> {
        read("token", || async { self.verinfer.token().call().await }).await
    }

    /// The staking token's `decimals()`, for writing amounts to people.
    pub async fn token_decimals(&self) -> Result<TokenDecimals, ChainError> {
        let token = self.token().await?;
        let metadata = IERC20Metadata::new(token, self.provider.clone());
        let decimals = read("decimals", || async { metadata.decimals().call().await }).await?;
        TokenDecimals::new(decimals).ok_or_else(|| {
            ChainError::Unexpected(format!(
                "the staking token {token} says it has {decimals} decimals; at most 77 are supported"
            ))
        })
    }

    /// `token.balanceOf(owner)`.
    pub async fn token_balance(&self, token: Address, owner: Address) -> Result<U256, ChainError> {
        let erc20 = IERC20::new(token, self.provider.clone());
        read("balanceOf", || async {
            erc20.balanceOf(owner).call().await
        })
        .await
    }

    /// `token.allowance(node, verinfer)`.
    pub async fn allowance(&self, token: Address) -> Result<U256, ChainError> {
        let erc20 = IERC20::new(token, self.provider.clone());
        let spender = self.verinfer();
        read("allowance", || async {
            erc20.allowance(self.node, spender).call().await
        })
        .await
    }

    /// `token.approve(verinfer, amount)`.
    pub async fn approve(&self, token: Address, amount: U256) -> Result<B256, ChainError> {
        let erc20 = IERC20::new(token, self.provider.clone());
        let spender = self.verinfer();
        let call = erc20.approve(spender, amount);
        let estimate = call
            .estimate_gas()
            .await
            .map_err(|error| contract_error("approve", &error))?;
        let pending = call
            .gas(verinfer_abi::padded_gas_limit(estimate))
            .send()
            .await
            .map_err(|error| contract_error("approve", &error))?;
        self.confirm(Submitted {
            call: "approve",
            pending,
        })
        .await
    }

    /// Estimates, pads the gas limit ([`verinfer_abi::padded_gas_limit`]), and sends; returns
    /// once the endpoint accepted the transaction (its hash is known), before it is mined.
    async fn submit<C>(
        &self,
        call: &'static str,
        builder: alloy::contract::CallBuilder<&DynProvider, std::marker::PhantomData<C>>,
    ) -> Result<Submitted, ChainError>
    where
        C: alloy::sol_types::SolCall,
    {
        self.submit_with(call, builder, verinfer_abi::padded_gas_limit)
            .await
    }

    /// [`submit`](Self::submit) with the gas limit `limit` makes of the estimate: a commit or a
    /// reveal adds what it costs when it turns out to be the last (the estimate cannot know).
    async fn submit_with<C>(
        &self,
        call: &'static str,
        builder: alloy::contract::CallBuilder<&DynProvider, std::marker::PhantomData<C>>,
        limit: fn(u64) -> u64,
    ) -> Result<Submitted, ChainError>
    where
        C: alloy::sol_types::SolCall,
    {
        // The first call of a block runs the block's draw, so gas depends on where the
        // transaction lands: estimate it in the pending block, as the next block's first call,
        // and pad the estimate (which also surfaces reverts, decoded).
        let estimate = estimate_pending(&builder)
            .await
            .map_err(|error| contract_error(call, &error))?;
        let pending = builder
            .gas(limit(estimate))
            .send()
            .await
            .map_err(|error| contract_error(call, &error))?;
        tracing::debug!(call, tx = %pending.tx_hash(), "sent transaction");
        Ok(Submitted { call, pending })
    }

    /// Waits for a sent transaction's receipt; an on-chain revert is an error.
    pub async fn confirm(&self, submitted: Submitted) -> Result<B256, ChainError> {
        Ok(self.receipt(submitted).await?.transaction_hash)
    }

    /// [`confirm`](Self::confirm), returning the receipt.
    async fn receipt(
        &self,
        submitted: Submitted,
    ) -> Result<alloy::rpc::types::TransactionReceipt, ChainError> {
        let Submitted { call, pending } = submitted;
        let tx = *pending.tx_hash();
        let receipt = pending
            .with_timeout(Some(self.tx_timeout))
            .get_receipt()
            .await
            .map_err(|error| match error {
                alloy::providers::PendingTransactionError::TxWatcher(_) => ChainError::NoReceipt {
                    call,
                    tx,
                    timeout: self.tx_timeout,
                },
                other => ChainError::Rpc {
                    call,
                    message: verinfer_wire::tls::explain(&other),
                },
            })?;
        if !receipt.status() {
            return Err(ChainError::Reverted {
                call,
                reason: format!("transaction {tx} reverted on chain"),
                error: None,
            });
        }
        Ok(receipt)
    }
}

/// A transaction the endpoint accepted; [`Chain::confirm`] awaits its receipt.
#[derive(Debug)]
pub struct Submitted {
    call: &'static str,
    pending: alloy::providers::PendingTransactionBuilder<alloy::network::Ethereum>,
}

impl Submitted {
    /// The transaction hash.
    pub fn tx_hash(&self) -> B256 {
        *self.pending.tx_hash()
    }
}

/// Where a transaction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxState {
    /// In the endpoint's mempool.
    Pending,
    /// In a block; `success` is the receipt status.
    Mined {
        /// Whether it succeeded.
        success: bool,
    },
    /// The endpoint does not know it (dropped, or never sent).
    Unknown,
}

/// `eth_estimateGas` of `builder` in the pending block: where a transaction sent now lands, so
/// the estimate includes the draw its block owes when it is that block's first call (at the
/// latest block the draw has run already and the estimate would miss it). Falls back to the
/// latest block when the endpoint cannot estimate in the pending one.
pub(crate) async fn estimate_pending<D>(
    builder: &alloy::contract::CallBuilder<&DynProvider, D>,
) -> Result<u64, alloy::contract::Error>
where
    D: alloy::contract::CallDecoder + Clone,
{
    match builder
        .clone()
        .block(alloy::eips::BlockId::pending())
        .estimate_gas()
        .await
    {
        Ok(gas) => Ok(gas),
        Err(error) if Revert::from_error(&error).is_some() => Err(error),
        Err(error) => {
            tracing::debug!(%error, "estimating in the pending block failed; estimating in the latest");
            builder.estimate_gas().await
        }
    }
}

/// Block ranges `[start, end]` covering `from..=to`, each at most `size` blocks.
fn chunks(from: u64, to: u64, size: u64) -> impl Iterator<Item = (u64, u64)> {
    let size = size.max(1);
    let mut next = Some(from).filter(|from| *from <= to);
    std::iter::from_fn(move || {
        let start = next?;
        let end = start.saturating_add(size - 1).min(to);
        next = end.checked_add(1).filter(|n| *n <= to);
        Some((start, end))
    })
}

fn log_block(log: &Log) -> Result<u64, ChainError> {
    log.block_number
        .ok_or_else(|| ChainError::Unexpected("a log without a block number".into()))
}

/// Runs a read with [`Backoff::RPC`], retrying transport failures but not reverts.
async fn read<T, E, Fut>(
    call: &'static str,
    operation: impl FnMut() -> Fut,
) -> Result<T, ChainError>
where
    Fut: std::future::Future<Output = Result<T, E>>,
    E: std::fmt::Display + IntoChainError,
{
    Backoff::RPC
        .retry(call, operation, |error: &E| error.is_transient())
        .await
        .map_err(|error| error.into_chain_error(call))
}

/// Errors of reads: transport errors are retried, contract reverts are not.
trait IntoChainError {
    fn is_transient(&self) -> bool;
    fn into_chain_error(self, call: &'static str) -> ChainError;
}

impl IntoChainError for alloy::transports::TransportError {
    fn is_transient(&self) -> bool {
        // A JSON-RPC error response is the node's answer, not a transport hiccup; anything else
        // (connection refused, timeout, bad gateway) may pass.
        !matches!(self, alloy::transports::RpcError::ErrorResp(_))
    }

    fn into_chain_error(self, call: &'static str) -> ChainError {
        ChainError::Rpc {
            call,
            message: verinfer_wire::tls::explain(&self),
        }
    }
}

impl IntoChainError for alloy::contract::Error {
    fn is_transient(&self) -> bool {
        match self {
            Self::TransportError(error) => error.is_transient(),
            _ => false,
        }
    }

    fn into_chain_error(self, call: &'static str) -> ChainError {
        contract_error(call, &self)
    }
}

/// Maps a contract call error: reverts (decoded by [`Revert`]) become [`ChainError::Reverted`],
/// the rest [`ChainError::Rpc`].
fn contract_error(call: &'static str, error: &alloy::contract::Error) -> ChainError {
    match Revert::from_error(error) {
        Some(revert) => ChainError::Reverted {
            call,
            reason: revert.to_string(),
            error: revert.into_verinfer().map(Box::new),
        },
        None => ChainError::Rpc {
            call,
            message: verinfer_wire::tls::explain(error),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_range_without_overlap() {
        assert_eq!(
            chunks(0, 4, 2).collect::<Vec<_>>(),
            [(0, 1), (2, 3), (4, 4)]
        );
        assert_eq!(chunks(5, 5, 100).collect::<Vec<_>>(), [(5, 5)]);
        assert_eq!(chunks(6, 5, 100).count(), 0);
        assert_eq!(
            chunks(u64::MAX - 1, u64::MAX, 10).collect::<Vec<_>>(),
            [(u64::MAX - 1, u64::MAX)]
        );
    }
}
