//! End-to-end checks of `verinfer-abi`'s bindings against the real contracts on a real anvil:
//! deploy, register a GPU model, join, create a task, draw it, commit, reveal, settle, withdraw
//! credits, and read the outcome back through views and events. They live here, not in `abi/tests`, because they deploy with this kit, which
//! depends on `verinfer-abi`.
//!
//! Needs the npm-installed anvil (`npm ci`); fails with that instruction when it is missing.

use std::error::Error;

use alloy::{
    contract::{CallBuilder, CallDecoder},
    primitives::{Address, B256, U256, aliases::U96, keccak256},
    providers::{DynProvider, Provider},
    rpc::types::TransactionReceipt,
    sol_types::{SolEvent, SolValue},
};
use verinfer_abi::{
    ChainTask, CreditReason, Deployment, IERC20, IVerinfer, MAX_IMAGES, NO_RESULT, NodeState,
    Settlement, SlashReason, TaskKind, TaskStatus, TokenDecimals, Validation, ValidationMode,
    Verinfer, VerinferEvent, VerinferInstance, padded_gas_limit,
};
use verinfer_devchain::{AnvilOptions, Chain, Deploy, default_init_params};

type TestResult = Result<(), Box<dyn Error>>;

const TOKEN: u128 = 1_000_000_000_000_000_000;
const STAKE: u128 = 1_000 * TOKEN;
const FEE: u128 = 30 * TOKEN;
const H100: &str = "NVIDIA H100 80GB HBM3";
const H100_VRAM_MIB: u32 = 81_559;

/// A fresh anvil with the contracts deployed and three funded node accounts and a creator.
struct Devnet {
    // Kept alive: dropping it stops anvil.
    chain: Chain,
    provider: DynProvider,
    deployment: Deployment,
    verinfer: VerinferInstance<DynProvider>,
    nodes: [Address; 3],
    creator: Address,
}

impl Devnet {
    async fn start() -> Result<Self, Box<dyn Error>> {
        Self::start_with(default_init_params()).await
    }

    async fn start_with(params: IVerinfer::Params) -> Result<Self, Box<dyn Error>> {
        let deploy = Deploy::Bindings {
            params,
            treasury: 1,
        };
        let chain = Chain::start(&AnvilOptions::default(), deploy).await?;
        let provider = chain.provider().clone();
        let accounts = chain.anvil().addresses();
        let nodes = [accounts[2], accounts[3], accounts[4]];
        let creator = accounts[5];
        let deployment = *chain.deployment();
        assert_eq!(deployment.chain_id, provider.get_chain_id().await?);
        assert_eq!(
            (deployment.owner, deployment.treasury),
            (accounts[0], accounts[1])
        );
        let mut funded = nodes.to_vec();
        funded.push(creator);
        chain
            .fund(funded.iter().map(|a| (*a, U256::from(10 * STAKE))))
            .await?;
        let added = chain.add_gpu_models([(H100, H100_VRAM_MIB)]).await?;
        assert_eq!(added.len(), 1);
        assert!(
            chain
                .add_gpu_models([(H100, H100_VRAM_MIB)])
                .await?
                .is_empty(),
            "a registered model is skipped"
        );
        let verinfer = Verinfer::new(deployment.verinfer, provider.clone());
        let model = verinfer.gpuModel(added[0]).call().await?;
        assert_eq!(
            (model.name.as_str(), model.vramMiB, model.active),
            ("nvidia h100 80gb hbm3", H100_VRAM_MIB, true)
        );
        assert_eq!(verinfer.paramsDelay().call().await?, 0);
        Ok(Self {
            chain,
            provider,
            deployment,
            verinfer,
            nodes,
            creator,
        })
    }

    fn token(&self) -> IERC20::IERC20Instance<DynProvider> {
        IERC20::new(self.deployment.staking_token, self.provider.clone())
    }

    /// approve + join for each node, all with `gpu_model`.
    async fn join_all(&self, gpu_model: &str) -> TestResult {
        for &node in &self.nodes {
            self.token()
                .approve(self.deployment.verinfer, U256::from(STAKE))
                .from(node)
                .send()
                .await?
                .get_receipt()
                .await?;
            let receipt = send_ok(
                self.verinfer
                    .join(gpu_model.to_owned(), 0, U96::from(STAKE))
                    .from(node),
            )
            .await?;
            let joined = decode_one::<Verinfer::NodeJoined>(&receipt)?;
            assert_eq!(joined.node, node);
            assert_eq!(
                (joined.vramMiB, joined.feeTier),
                (H100_VRAM_MIB, 0),
                "the registry gives the VRAM"
            );
            assert_eq!(
                joined.gpuModelName, "nvidia h100 80gb hbm3",
                "the contract normalises model names"
            );
            let info = self.verinfer.getNode(node).call().await?;
            assert_eq!(NodeState::try_from(info.state)?, NodeState::Available);
            assert_eq!(info.stake, U96::from(STAKE));
        }
        Ok(())
    }

    /// approve fee + createTask (which queues the task) + a draw in the next block (which starts
    /// it); returns the task id and its nodes in slot order.
    async fn create_task(
        &self,
        kind: TaskKind,
        image_count: u8,
        gpu_model: &str,
    ) -> Result<(U256, [Address; 3]), Box<dyn Error>> {
        self.token()
            .approve(self.deployment.verinfer, U256::from(FEE))
            .from(self.creator)
            .send()
            .await?
            .get_receipt()
            .await?;
        let args_hash = keccak256(b"{\"prompt\":\"a lighthouse at dusk\"}");
        let receipt = send_ok(
            self.verinfer
                .createTask(
                    kind.into(),
                    args_hash,
                    image_count,
                    16_384,
                    gpu_model.to_owned(),
                    U96::from(FEE),
                )
                .from(self.creator),
        )
        .await?;
        let created = decode_one::<Verinfer::TaskCreated>(&receipt)?;
        decode_one::<Verinfer::TaskQueued>(&receipt)?;
        assert!(
            decode_all::<Verinfer::TaskStarted>(&receipt).is_empty(),
            "createTask never starts a task"
        );
        let queued = self.verinfer.getTask(created.taskId).call().await?;
        assert_eq!(TaskStatus::try_from(queued.status)?, TaskStatus::Queued);
        let due_latest = self.verinfer.drawDue().call().await?;
        let due_pending = self
            .verinfer
            .drawDue()
            .block(alloy::eips::BlockId::pending())
            .call()
            .await?;
        assert!(
            due_pending && !due_latest,
            "a draw is due in the next block, not in the one that queued the task"
        );

        let drawn = self.chain.draw().await?;
        assert_eq!(
            drawn,
            [created.taskId.to::<u64>()],
            "the next block's draw starts it"
        );
        let started_logs = self
            .provider
            .get_logs(
                &alloy::rpc::types::Filter::new()
                    .address(self.deployment.verinfer)
                    .event_signature(Verinfer::TaskStarted::SIGNATURE_HASH),
            )
            .await?;
        let started = started_logs
            .last()
            .ok_or("no TaskStarted log")?
            .log_decode::<Verinfer::TaskStarted>()?
            .inner
            .data;
        assert_eq!(started.taskId, created.taskId);
        assert_eq!(
            started.seedBlock,
            U256::from(receipt.block_number.ok_or("no block number")?),
            "seeded by the hash of the block that queued it"
        );

        let task = self.verinfer.getTask(created.taskId).call().await?;
        assert_eq!(TaskStatus::try_from(task.status)?, TaskStatus::Committing);
        assert_eq!(TaskKind::try_from(task.kind)?, kind);
        assert_eq!(task.nodes, started.nodes);
        let mut selected = task.nodes.to_vec();
        selected.sort();
        let mut ours = self.nodes.to_vec();
        ours.sort();
        assert_eq!(selected, ours, "the only three nodes are the ones selected");
        Ok((created.taskId, task.nodes))
    }

    async fn stake_of(&self, node: Address) -> Result<U96, Box<dyn Error>> {
        Ok(self.verinfer.getNode(node).call().await?.stake)
    }
}

/// Sends `call` with a padded gas limit (node selection makes gas depend on the block) and waits
/// for a successful receipt.
async fn send_ok<D: CallDecoder>(
    call: CallBuilder<&DynProvider, D>,
) -> Result<TransactionReceipt, Box<dyn Error>> {
    let estimate = call.estimate_gas().await?;
    let receipt = call
        .gas(padded_gas_limit(estimate))
        .send()
        .await?
        .get_receipt()
        .await?;
    if !receipt.status() {
        return Err(format!("transaction {} reverted", receipt.transaction_hash).into());
    }
    Ok(receipt)
}

/// The one `E` log of `receipt`.
fn decode_one<E: SolEvent>(receipt: &TransactionReceipt) -> Result<E, Box<dyn Error>> {
    let mut found: Vec<E> = decode_all(receipt);
    match found.len() {
        1 => Ok(found.remove(0)),
        n => Err(format!("expected one {} event, found {n}", E::SIGNATURE).into()),
    }
}

fn decode_all<E: SolEvent>(receipt: &TransactionReceipt) -> Vec<E> {
    receipt
        .logs()
        .iter()
        .filter_map(|log| log.log_decode::<E>().ok())
        .map(|log| log.inner.data)
        .collect()
}

/// `keccak256(abi.encode(uint256 taskId, address node, uint64[] pHashes, bytes32 salt))`, computed
/// here independently of the contract.
fn image_commitment(task_id: U256, node: Address, phashes: &[u64], salt: B256) -> B256 {
    keccak256((task_id, node, phashes.to_vec(), salt).abi_encode_params())
}

/// `keccak256(abi.encode(uint256 taskId, address node, bytes32 digest, bytes32 salt))`.
fn text_commitment(task_id: U256, node: Address, digest: B256, salt: B256) -> B256 {
    keccak256((task_id, node, digest, salt).abi_encode_params())
}

fn salt(i: usize) -> B256 {
    keccak256(format!("salt-{i}"))
}

/// Fee share of each of `payees` agreeing nodes after the 5 % protocol fee.
fn reward_per_node(payees: u128) -> u128 {
    (FEE - FEE * 500 / 10_000) / payees
}

#[tokio::test]
async fn the_staking_tokens_decimals_are_read_from_the_token() -> TestResult {
    let net = Devnet::start().await?;
    let token = net.deployment.staking_token;
    let decimals = TokenDecimals::read(net.provider.clone(), token).await?;
    // The mock token keeps OpenZeppelin's 18 decimals: TOKEN base units are one token.
    assert_eq!(decimals.get(), 18);
    assert_eq!(decimals.format(STAKE + TOKEN / 2), "1000.5");
    assert_eq!(decimals.parse("1000.5")?, STAKE + TOKEN / 2);
    // A contract without ERC-20's `decimals()`: the error names the address.
    let error = TokenDecimals::read(net.provider.clone(), net.deployment.verinfer)
        .await
        .expect_err("Verinfer has no decimals()");
    assert!(
        error
            .to_string()
            .contains(&net.deployment.verinfer.to_string()),
        "{error}"
    );
    Ok(())
}

#[tokio::test]
async fn image_task_with_three_agreeing_nodes_is_validated_and_paid() -> TestResult {
    let net = Devnet::start().await?;
    assert_eq!(net.verinfer.NO_RESULT().call().await?, NO_RESULT);
    assert_eq!(
        net.verinfer.MAX_IMAGES().call().await?,
        U256::from(MAX_IMAGES)
    );
    assert_eq!(net.verinfer.params().call().await?.threshold, 10);

    net.join_all(H100).await?;
    let (task_id, slots) = net.create_task(TaskKind::Image, 1, "").await?;

    // Two identical pHashes and one 3 bits away: within the threshold of 10, all three agree.
    let base: u64 = 0xd1c3_a5f0_0f5a_3c1d;
    let phashes = [base, base, base ^ 0b1011];
    for (slot, &node) in slots.iter().enumerate() {
        let result = vec![phashes[slot]];
        let ours = image_commitment(task_id, node, &result, salt(slot));
        let contracts = net
            .verinfer
            .imageCommitment(task_id, node, result.clone(), salt(slot))
            .call()
            .await?;
        assert_eq!(ours, contracts, "Rust and Solidity commitments differ");
        send_ok(net.verinfer.commit(task_id, ours).from(node)).await?;
    }
    assert_eq!(
        TaskStatus::try_from(net.verinfer.getTask(task_id).call().await?.status)?,
        TaskStatus::Revealing
    );

    let mut last = None;
    for (slot, &node) in slots.iter().enumerate() {
        last = Some(
            send_ok(
                net.verinfer
                    .revealImage(task_id, vec![phashes[slot]], salt(slot))
                    .from(node),
            )
            .await?,
        );
    }
    let receipt = last.ok_or("no reveal sent")?;

    let task = net.verinfer.getTask(task_id).call().await?;
    assert_eq!(TaskStatus::try_from(task.status)?, TaskStatus::Validated);
    assert_eq!(task.revealedMask, 0b111);

    let settled = decode_one::<Verinfer::TaskSettled>(&receipt)?;
    assert_eq!(settled.taskId, task_id);
    assert_eq!(
        TaskStatus::try_from(settled.outcome)?,
        TaskStatus::Validated
    );
    assert_eq!(settled.agreeingMask, 0b111);
    assert_eq!(settled.threshold, 10);
    let distance = |a: usize, b: usize| (phashes[a] ^ phashes[b]).count_ones() as u16;
    assert_eq!(
        settled.distances,
        [distance(0, 1), distance(0, 2), distance(1, 2)]
    );
    assert_eq!(
        settled.distances.iter().filter(|&&d| d == 3).count(),
        2,
        "one node is 3 bits off"
    );
    let reward = reward_per_node(3);
    assert_eq!(settled.rewardPerNode, U96::from(reward));

    let rewarded = decode_all::<Verinfer::NodeRewarded>(&receipt);
    assert_eq!(rewarded.len(), 3);
    for &node in &slots {
        assert_eq!(
            net.stake_of(node).await?,
            U96::from(STAKE + reward),
            "stake grows by the reward"
        );
        let info = net.verinfer.getNode(node).call().await?;
        assert_eq!(
            NodeState::try_from(info.state)?,
            NodeState::Available,
            "released for the next task"
        );
    }
    // Nothing was refunded: the creator paid exactly the fee.
    let creator_balance = net.token().balanceOf(net.creator).call().await?;
    assert_eq!(creator_balance, U256::from(10 * STAKE - FEE));
    assert_eq!(
        net.verinfer.treasuryBalance().call().await?,
        U256::from(FEE - 3 * reward)
    );
    Ok(())
}

#[tokio::test]
async fn text_task_slashes_and_kicks_the_node_with_a_different_digest() -> TestResult {
    let net = Devnet::start().await?;
    net.join_all(H100).await?;
    // The task names the model in another spelling: the contract normalises both.
    let (task_id, slots) = net
        .create_task(TaskKind::Text, 0, "nvidia  H100 80gb hbm3")
        .await?;
    let model_id = net.verinfer.gpuModelId(H100.to_owned()).call().await?;
    assert_eq!(
        net.verinfer.getTask(task_id).call().await?.gpuModel,
        model_id
    );

    let honest = keccak256("the lighthouse keeper's log");
    let odd = keccak256("a different completion");
    let digests = [honest, odd, honest];
    for (slot, &node) in slots.iter().enumerate() {
        let ours = text_commitment(task_id, node, digests[slot], salt(slot));
        let contracts = net
            .verinfer
            .textCommitment(task_id, node, digests[slot], salt(slot))
            .call()
            .await?;
        assert_eq!(ours, contracts, "Rust and Solidity commitments differ");
        send_ok(net.verinfer.commit(task_id, ours).from(node)).await?;
    }
    let cheater = slots[1];
    let cheater_balance_before = net.token().balanceOf(cheater).call().await?;
    let mut last = None;
    for (slot, &node) in slots.iter().enumerate() {
        last = Some(
            send_ok(
                net.verinfer
                    .revealText(task_id, digests[slot], salt(slot))
                    .from(node),
            )
            .await?,
        );
    }
    let receipt = last.ok_or("no reveal sent")?;

    let task = net.verinfer.getTask(task_id).call().await?;
    assert_eq!(TaskStatus::try_from(task.status)?, TaskStatus::Validated);

    let settled = decode_one::<Verinfer::TaskSettled>(&receipt)?;
    assert_eq!(settled.agreeingMask, 0b101, "slots 0 and 2 agree");
    let digest_distance: u16 = (honest ^ odd).iter().map(|b| b.count_ones() as u16).sum();
    assert_eq!(settled.distances, [digest_distance, 0, digest_distance]);
    assert!(!settled.distances.contains(&NO_RESULT));
    let reward = reward_per_node(2);
    assert_eq!(settled.rewardPerNode, U96::from(reward));

    let slashed = decode_one::<Verinfer::NodeSlashed>(&receipt)?;
    assert_eq!(slashed.node, cheater);
    assert_eq!(slashed.taskId, task_id);
    assert_eq!(
        SlashReason::try_from(slashed.reason)?,
        SlashReason::Disagreed
    );
    let slash = STAKE / 2; // slashShareBps 5000
    assert_eq!(slashed.amount, U96::from(slash));
    let kicked = decode_one::<Verinfer::NodeKicked>(&receipt)?;
    assert_eq!(
        (kicked.node, kicked.stakeReturned),
        (cheater, U96::from(STAKE - slash))
    );

    let cheater_info = net.verinfer.getNode(cheater).call().await?;
    assert_eq!(NodeState::try_from(cheater_info.state)?, NodeState::Kicked);
    assert_eq!(cheater_info.stake, U96::ZERO);

    // Nothing is transferred in settlement: the unslashed rest of the stake is credited to the
    // cheater, and half of the slash (slashRewardBps 5000) to the two nodes that were right.
    let slash_reward = slash / 2;
    let credits = decode_all::<Verinfer::BalanceCredited>(&receipt);
    let credited = |account: Address| {
        credits
            .iter()
            .filter(|c| c.account == account)
            .map(|c| (CreditReason::try_from(c.reason).ok(), c.amount))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        credited(cheater),
        [(Some(CreditReason::StakeReturned), U256::from(STAKE - slash))]
    );
    for node in [slots[0], slots[2]] {
        assert_eq!(
            credited(node),
            [(
                Some(CreditReason::SlashReward),
                U256::from(slash_reward / 2)
            )]
        );
        assert_eq!(net.stake_of(node).await?, U96::from(STAKE + reward));
    }
    assert_eq!(
        net.token().balanceOf(cheater).call().await?,
        cheater_balance_before,
        "credited, not transferred"
    );
    assert_eq!(
        net.verinfer.claimable(cheater).call().await?,
        U256::from(STAKE - slash)
    );
    let withdrawn = send_ok(net.verinfer.withdraw().from(cheater)).await?;
    let event = decode_one::<Verinfer::Withdrawn>(&withdrawn)?;
    assert_eq!(
        (event.account, event.amount),
        (cheater, U256::from(STAKE - slash))
    );
    assert_eq!(
        net.token().balanceOf(cheater).call().await?,
        cheater_balance_before + U256::from(STAKE - slash),
        "the unslashed rest of the stake is withdrawn"
    );
    assert_eq!(net.verinfer.claimable(cheater).call().await?, U256::ZERO);
    assert_eq!(
        net.verinfer.treasuryBalance().call().await?,
        U256::from(FEE - 2 * reward + slash - slash_reward)
    );

    // A kicked node cannot come back.
    net.token()
        .approve(net.deployment.verinfer, U256::from(STAKE))
        .from(cheater)
        .send()
        .await?
        .get_receipt()
        .await?;
    let rejoin = net
        .verinfer
        .join(H100.to_owned(), 0, U96::from(STAKE))
        .from(cheater)
        .call()
        .await;
    let Err(error) = rejoin else {
        return Err("a kicked node must not rejoin".into());
    };
    let decoded = error.as_decoded_interface_error::<Verinfer::VerinferErrors>();
    assert!(
        matches!(decoded, Some(Verinfer::VerinferErrors::NodeIsKicked(ref e)) if e.node == cheater),
        "unexpected error: {error}"
    );
    Ok(())
}

/// Every Verinfer event of `receipt`, decoded by `verinfer-abi`.
fn events(receipt: &TransactionReceipt) -> Result<Vec<VerinferEvent>, Box<dyn Error>> {
    Ok(receipt
        .logs()
        .iter()
        .map(VerinferEvent::from_log)
        .collect::<Result<Vec<_>, _>>()?)
}

/// `getTask` decoded by `verinfer-abi`.
async fn chain_task(net: &Devnet, task_id: U256) -> Result<ChainTask, Box<dyn Error>> {
    let info = net.verinfer.getTask(task_id).call().await?;
    Ok(ChainTask::from_info(task_id.to::<u64>(), info)?)
}

/// A sampled 1-image task at the sampled minimum fee, drawn, and its first node's commitment of
/// `phash`; returns the task id, its fee and the first node.
async fn sampled_task_committed(
    net: &Devnet,
    phash: u64,
) -> Result<(U256, u128, Address), Box<dyn Error>> {
    net.join_all(H100).await?;
    let range = net
        .verinfer
        .sampledFeeRange(TaskKind::Image.into(), 1)
        .call()
        .await?;
    let fee = range.minimum.to::<u128>();
    assert!(range.maximum >= range.minimum, "{range:?}");
    net.token()
        .approve(net.deployment.verinfer, U256::from(fee))
        .from(net.creator)
        .send()
        .await?
        .get_receipt()
        .await?;
    let receipt = send_ok(
        net.verinfer
            .createSampledTask(
                TaskKind::Image.into(),
                keccak256(b"{\"prompt\":\"a sampled lighthouse\"}"),
                1,
                16_384,
                String::new(),
                U96::from(fee),
            )
            .from(net.creator),
    )
    .await?;
    let task_id = events(&receipt)?
        .into_iter()
        .find_map(|event| match event {
            VerinferEvent::TaskCreated { task_id, mode, .. } => {
                assert_eq!(mode, ValidationMode::Sampled);
                Some(task_id)
            }
            _ => None,
        })
        .ok_or("no TaskCreated")?;
    let queued = chain_task(net, U256::from(task_id)).await?;
    assert_eq!(
        (queued.mode, queued.validation()),
        (ValidationMode::Sampled, Validation::SampledPending)
    );
    assert_eq!(net.chain.draw().await?, [task_id], "the draw starts it");
    let task_id = U256::from(task_id);
    let started = chain_task(net, task_id).await?;
    assert_eq!(started.status, TaskStatus::Committing);
    assert!(started.started() && started.status.is_started());
    assert_eq!(started.node_slots(), 1);
    let first = started.nodes[0];
    assert_eq!(
        started.nodes[1..],
        [Address::ZERO; 2],
        "one node only, until a check"
    );

    let commitment = image_commitment(task_id, first, &[phash], salt(0));
    let receipt = send_ok(net.verinfer.commit(task_id, commitment).from(first)).await?;
    let commit_block = receipt.block_number.ok_or("no block number")?;
    let sample_block = events(&receipt)?
        .into_iter()
        .find_map(|event| match event {
            VerinferEvent::SampleCommitted { sample_block, .. } => Some(sample_block),
            _ => None,
        })
        .ok_or("no SampleCommitted")?;
    assert_eq!(sample_block, commit_block + 1, "decided by the next block");
    let awaiting = chain_task(net, task_id).await?;
    assert_eq!(awaiting.status, TaskStatus::AwaitingSample);
    assert_eq!(awaiting.sample_block, sample_block);
    assert_eq!(awaiting.validation(), Validation::SampledPending);
    let decision = net.verinfer.sampleDecision(task_id).call().await?;
    assert!(!decision.decidable, "the sample block is not sealed yet");
    // Any transaction mines a block: after the sample block, the draw is decidable.
    net.chain.draw().await?;
    net.chain.draw().await?;
    assert!(net.verinfer.sampleDecision(task_id).call().await?.decidable);
    Ok((task_id, fee, first))
}

#[tokio::test]
async fn sampled_task_at_a_tiny_rate_is_accepted_unchecked_with_no_distances() -> TestResult {
    let net = Devnet::start_with(IVerinfer::Params {
        samplingBps: 1,
        ..default_init_params()
    })
    .await?;
    let phash: u64 = 0x0123_4567_89ab_cdef;
    let (task_id, fee, first) = sampled_task_committed(&net, phash).await?;
    let decision = net.verinfer.sampleDecision(task_id).call().await?;
    if decision.checked {
        // Checked with probability 1 in 10,000: the checked path is the next test's.
        let receipt = send_ok(net.verinfer.resolveSample(task_id)).await?;
        assert!(
            events(&receipt)?
                .iter()
                .any(|event| matches!(event, VerinferEvent::SampleDecided { checked: true, .. }))
        );
        let task = chain_task(&net, task_id).await?;
        assert_eq!(task.status, TaskStatus::CheckQueued);
        assert_eq!(task.validation(), Validation::SampledChecked);
        return Ok(());
    }
    let receipt = send_ok(
        net.verinfer
            .revealImage(task_id, vec![phash], salt(0))
            .from(first),
    )
    .await?;
    let events = events(&receipt)?;
    assert!(
        events
            .iter()
            .any(|event| matches!(event, VerinferEvent::SampleDecided { checked: false, .. }))
    );
    let settlement = events
        .into_iter()
        .find_map(|event| match event {
            VerinferEvent::TaskSettled {
                outcome,
                agreeing_mask,
                distances,
                threshold,
                reward_per_node,
                ..
            } => Some(Settlement {
                outcome,
                agreeing_mask,
                distances,
                threshold,
                reward_per_node,
            }),
            _ => None,
        })
        .ok_or("no TaskSettled")?;
    assert_eq!(settlement.outcome, TaskStatus::Validated);
    assert!(!settlement.compared(), "{settlement:?}");
    assert_eq!(settlement.agreeing_slots(), [0]);
    assert!(settlement.pair_distances(0, 1).is_empty());
    assert_eq!(settlement.reward_per_node, fee - fee * 500 / 10_000);

    let task = chain_task(&net, task_id).await?;
    assert_eq!(task.status, TaskStatus::Validated);
    assert!(!task.checked && task.is_terminal());
    assert_eq!(task.validation(), Validation::SampledUnchecked);
    let rate = net.verinfer.taskParams(task_id).call().await?.samplingBps;
    assert_eq!(
        task.validation().describe(Some(rate)),
        "sampled at p = 0.01%: accepted unchecked (one node's result, not compared)"
    );
    Ok(())
}

#[tokio::test]
async fn sampled_task_at_rate_one_is_checked_by_two_more_nodes() -> TestResult {
    let net = Devnet::start_with(IVerinfer::Params {
        samplingBps: 10_000,
        ..default_init_params()
    })
    .await?;
    let phash: u64 = 0x0f0f_f0f0_1234_4321;
    let (task_id, _, first) = sampled_task_committed(&net, phash).await?;
    assert!(net.verinfer.sampleDecision(task_id).call().await?.checked);
    // Checked: the first node must not reveal before the checkers commit.
    let Err(early) = net
        .verinfer
        .revealImage(task_id, vec![phash], salt(0))
        .from(first)
        .call()
        .await
    else {
        return Err("a checked first node revealed before the checkers committed".into());
    };
    assert!(
        matches!(
            verinfer_abi::Revert::from_error(&early).and_then(|r| r.into_verinfer()),
            Some(Verinfer::VerinferErrors::SampleChecked(_))
        ),
        "{early}"
    );
    let receipt = send_ok(net.verinfer.resolveSample(task_id)).await?;
    assert!(
        events(&receipt)?
            .iter()
            .any(|event| matches!(event, VerinferEvent::SampleDecided { checked: true, .. }))
    );
    let queued = chain_task(&net, task_id).await?;
    assert_eq!(queued.status, TaskStatus::CheckQueued);
    assert!(queued.status.is_started() && !queued.is_terminal());
    assert_eq!(queued.validation(), Validation::SampledChecked);
    assert_eq!(queued.node_slots(), 3);

    net.chain.draw().await?;
    let checking = chain_task(&net, task_id).await?;
    assert_eq!(checking.status, TaskStatus::Committing);
    assert_eq!(checking.nodes[0], first);
    let checkers = [checking.nodes[1], checking.nodes[2]];
    assert!(!checkers.contains(&first) && !checkers.contains(&Address::ZERO));
    let check_logs = net
        .provider
        .get_logs(
            &alloy::rpc::types::Filter::new()
                .address(net.deployment.verinfer)
                .event_signature(Verinfer::CheckStarted::SIGNATURE_HASH),
        )
        .await?;
    let started = VerinferEvent::from_log(check_logs.last().ok_or("no CheckStarted")?)?;
    assert!(
        matches!(started, VerinferEvent::CheckStarted { checkers: drawn, .. } if drawn == checkers),
        "{started:?}"
    );
    assert_eq!(started.task_id(), Some(task_id.to::<u64>()));

    for (slot, &checker) in checkers.iter().enumerate() {
        let commitment = image_commitment(task_id, checker, &[phash], salt(slot + 1));
        send_ok(net.verinfer.commit(task_id, commitment).from(checker)).await?;
    }
    assert_eq!(
        chain_task(&net, task_id).await?.status,
        TaskStatus::Revealing
    );
    let mut last = None;
    for (slot, &node) in checking.nodes.iter().enumerate() {
        last = Some(
            send_ok(
                net.verinfer
                    .revealImage(task_id, vec![phash], salt(slot))
                    .from(node),
            )
            .await?,
        );
    }
    let settled = decode_one::<Verinfer::TaskSettled>(&last.ok_or("no reveal")?)?;
    assert_eq!(settled.agreeingMask, 0b111);
    assert_eq!(settled.distances, [0, 0, 0], "three nodes compared");
    let task = chain_task(&net, task_id).await?;
    assert_eq!(task.status, TaskStatus::Validated);
    assert_eq!(
        task.validation().describe(Some(10_000)),
        "sampled at p = 100%: checked by three nodes (first node and two checkers)"
    );
    Ok(())
}
