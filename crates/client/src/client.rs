//! [`Client`]: one account talking to one deployment and one relayer.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
    Deployment, Erc20Instance, IERC20, TaskKind, TaskStatus, Verinfer, VerinferEvent,
    VerinferInstance, padded_gas_limit,
};
use verinfer_task::{ImageArgs, TaskArgs, TextArgs};
use verinfer_wire::RelayerClient;

use crate::{
    error::ClientError,
    gpu_model::normalise_gpu_model,
    report::{
        ChainTask, NodeReport, RevealedResult, Settlement, Slash, TaskReport, TaskStatusReport,
    },
};

/// `Verinfer.MAX_TASK_VRAM_MIB`: the largest VRAM requirement a task may state.
pub const MAX_TASK_VRAM_MIB: u32 = 131_072;
/// Largest block range of one `eth_getLogs` call.
const MAX_LOG_RANGE: u64 = 10_000;
/// How long after a task's reveal deadline [`Client::wait`] settles it itself when no node did.
const SETTLE_GRACE: Duration = Duration::from_secs(10);

/// A task just created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreatedTask {
    /// Its id.
    pub task_id: u64,
    /// keccak256 of its args bytes (as uploaded to the relayer).
    pub args_hash: B256,
    /// The `createTask` transaction.
    pub tx: B256,
    /// Whether three nodes were selected at once (otherwise it waits in its queue).
    pub started: bool,
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
}

impl Client {
    /// A client sending transactions from `signer` to the contracts of `deployment` through
    /// `rpc_url`, and talking to the relayer at `relayer_url`. Connects lazily: the first call
    /// checks that the endpoint serves the deployment's chain.
    pub fn new(
        rpc_url: Url,
        signer: PrivateKeySigner,
        deployment: Deployment,
        relayer_url: Url,
    ) -> Self {
        let account = signer.address();
        let provider = ProviderBuilder::new()
            .wallet(EthereumWallet::from(signer))
            .connect_http(rpc_url)
            .erased();
        Self {
            verinfer: Verinfer::new(deployment.verinfer, provider.clone()),
            token: IERC20::new(deployment.staking_token, provider.clone()),
            provider,
            deployment,
            relayer: RelayerClient::new(relayer_url),
            account,
            poll_interval: Duration::from_millis(500),
        }
    }

    /// Sets how often [`wait`](Self::wait) polls the chain (default 500 ms).
    pub fn with_poll_interval(mut self, poll_interval: Duration) -> Self {
        self.poll_interval = poll_interval;
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
    /// canonical bytes to the relayer, approves `fee` and calls `createTask`.
    pub async fn create_image_task(
        &self,
        args: ImageArgs,
        fee: u128,
        min_vram_mib: u32,
    ) -> Result<CreatedTask, ClientError> {
        self.create_task(&TaskArgs::Image(args), fee, min_vram_mib, None)
            .await
    }

    /// Creates a text task, optionally for one GPU model (all three nodes then declared it; text
    /// results only match across identical hardware).
    pub async fn create_text_task(
        &self,
        args: TextArgs,
        fee: u128,
        min_vram_mib: u32,
        gpu_model: Option<&str>,
    ) -> Result<CreatedTask, ClientError> {
        self.create_task(&TaskArgs::Text(args), fee, min_vram_mib, gpu_model)
            .await
    }

    /// Creates a task of either kind; see [`create_image_task`](Self::create_image_task).
    pub async fn create_task(
        &self,
        args: &TaskArgs,
        fee: u128,
        min_vram_mib: u32,
        gpu_model: Option<&str>,
    ) -> Result<CreatedTask, ClientError> {
        let bytes = checked_args_bytes(args)?;
        let request = TaskRequest::new(args, fee, min_vram_mib, gpu_model)?;
        self.check_chain().await?;
        let balance = self.token_balance().await?;
        if balance < fee {
            return Err(ClientError::InsufficientBalance {
                account: self.account,
                balance,
                fee,
            });
        }

        let local_hash = verinfer_task::args_hash(&bytes);
        let uploaded = self.relayer.upload_args(bytes).await?;
        if uploaded.args_hash != local_hash {
            return Err(ClientError::ArgsHashMismatch {
                local: local_hash,
                relayer: uploaded.args_hash,
            });
        }
        tracing::debug!(args_hash = %local_hash, created = uploaded.created, "args uploaded to the relayer");

        if fee != 0 {
            self.ensure_allowance(fee).await?;
        }
        let call = self.verinfer.createTask(
            request.kind.into(),
            local_hash,
            request.image_count,
            min_vram_mib,
            request.gpu_model,
            U96::from(fee),
        );
        let receipt = send("createTask", call).await?;
        let tx = receipt.transaction_hash;
        let events = self.receipt_events(&receipt)?;
        let task_id = events
            .iter()
            .find_map(|event| match event {
                VerinferEvent::TaskCreated { task_id, .. } => Some(*task_id),
                _ => None,
            })
            .ok_or(ClientError::MissingEvent {
                action: "createTask",
                tx,
                event: "TaskCreated",
            })?;
        let started = events
            .iter()
            .any(|event| matches!(event, VerinferEvent::TaskStarted { .. }));
        tracing::info!(task_id, %tx, started, "task created");
        Ok(CreatedTask {
            task_id,
            args_hash: local_hash,
            tx,
            started,
        })
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
        let receipt = send("cancelTask", self.verinfer.cancelTask(U256::from(task_id))).await?;
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
        send(
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
        let relayer = self
            .relayer
            .task(task_id)
            .await
            .map_err(|error| error.to_string());
        Ok(TaskStatusReport { chain, relayer })
    }

    /// Polls the chain until the task is final, calling `on_progress` whenever its record
    /// changes. When no node settles a task well after its reveal deadline (all of them went
    /// away), settles it itself so the fee comes back.
    pub async fn wait<F>(&self, task_id: u64, mut on_progress: F) -> Result<ChainTask, ClientError>
    where
        F: FnMut(&ChainTask),
    {
        let mut last: Option<ChainTask> = None;
        let mut settle_tried = false;
        loop {
            let task = self.chain_task(task_id).await?;
            if last.as_ref() != Some(&task) {
                on_progress(&task);
            }
            if task.is_terminal() {
                return Ok(task);
            }
            if task.started()
                && !settle_tried
                && unix_now() > u64::from(task.reveal_deadline) + SETTLE_GRACE.as_secs()
            {
                settle_tried = true;
                match send("settle", self.verinfer.settle(U256::from(task_id))).await {
                    Ok(receipt) => {
                        tracing::info!(task_id, tx = %receipt.transaction_hash, "settled the task past its deadline")
                    }
                    Err(error) => {
                        tracing::warn!(task_id, %error, "could not settle the task past its deadline")
                    }
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
        if !task.started() {
            return Ok(TaskReport {
                task,
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
                    .map(|node| node.into_word())
                    .collect::<Vec<_>>(),
            );

        let mut nodes: Vec<NodeReport> = task
            .nodes
            .iter()
            .enumerate()
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
            let slot = event.node().and_then(|node| task.slot_of(node));
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
                node.agreed = Some(settlement.agreeing_mask & (1 << node.slot) != 0);
            }
        }
        Ok(TaskReport {
            task,
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
    gpu_model: String,
}

impl TaskRequest {
    fn new(
        args: &TaskArgs,
        fee: u128,
        min_vram_mib: u32,
        gpu_model: Option<&str>,
    ) -> Result<Self, ClientError> {
        if fee >= 1u128 << 96 {
            return Err(ClientError::InvalidRequest(format!(
                "fee {fee} does not fit the contract's uint96"
            )));
        }
        if min_vram_mib > MAX_TASK_VRAM_MIB {
            return Err(ClientError::InvalidRequest(format!(
                "min VRAM {min_vram_mib} MiB is more than the contract's {MAX_TASK_VRAM_MIB} MiB"
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
                name.to_owned()
            }
            None => String::new(),
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

/// Sends `call` with a padded gas limit (node selection makes gas depend on the block) and waits
/// for a successful receipt.
async fn send<D: CallDecoder>(
    action: &'static str,
    call: CallBuilder<&DynProvider, D>,
) -> Result<TransactionReceipt, ClientError> {
    let estimate = call
        .estimate_gas()
        .await
        .map_err(|error| ClientError::contract(action, error))?;
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

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
