//! Adversarial end-to-end scenarios on a real network (anvil, contracts, relayer, node daemons on
//! the tiny models): cheaters are slashed and kicked (their remaining stake credited to them),
//! honest nodes paid (and credited a share of the slash), bad args and unserved tasks refunded
//! (credited, then withdrawn); a lazy first node on sampled tasks is caught by the check.
//!
//! Each scenario gets a fresh network; they run one at a time (each is CPU-heavy on a small
//! machine, and the short commit/reveal windows must not be starved).

use std::time::Duration;

use alloy::primitives::Address;
use verinfer_abi::{NodeState, SlashReason, TaskStatus, Validation};
use verinfer_client::{ClientError, RevealedResult, TaskOptions, TaskReport};
use verinfer_e2e::{
    FUNDS, MIN_STAKE, Network, NetworkParams, NodeSpec, Result, TOKEN, slash_of, slash_reward_each,
};
use verinfer_node::Behaviour;
use verinfer_task::{
    ARGS_VERSION, ImageArgs, ModelRef, Precision, Sampling, Scheduler, TaskArgs, TextArgs,
    TextInput,
};

const GPU_A: &str = "e2e-gpu-a";
const GPU_B: &str = "e2e-gpu-b";
const FEE: u128 = 10 * TOKEN;
/// The protocol's 5 % cut.
const PAYOUT: u128 = FEE - FEE * 500 / 10_000;
/// Upper bound on any scenario's wait for settlement.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(120);

/// An async lock: the guard is held across the scenario's awaits (and, unlike std's, a failing
/// scenario does not poison it for the next).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    SERIAL.lock().await
}

fn image_args(model: &ModelRef) -> ImageArgs {
    ImageArgs {
        version: ARGS_VERSION,
        model: model.clone(),
        prompt: "a lighthouse on a cliff at dusk".into(),
        negative_prompt: None,
        width: 64,
        height: 64,
        steps: 4,
        guidance_scale: 7.5,
        scheduler: Scheduler::Ddim,
        num_images: 2,
        seed: 11,
        precision: Precision::F32,
    }
}

fn text_args(model: &ModelRef) -> TextArgs {
    TextArgs {
        version: ARGS_VERSION,
        model: model.clone(),
        input: TextInput::Prompt("The lighthouse keeper wrote in the log:".into()),
        max_tokens: 16,
        sampling: Sampling::Greedy {},
        seed: 11,
        stop: Vec::new(),
    }
}

async fn settled(net: &Network, task_id: u64) -> Result<TaskReport> {
    let client = net.client();
    tokio::time::timeout(SETTLE_TIMEOUT, client.wait(task_id, |_| {}))
        .await
        .map_err(|_| format!("task {task_id} did not settle within {SETTLE_TIMEOUT:?}"))??;
    Ok(client.task_report(task_id).await?)
}

fn node_of(report: &TaskReport, address: Address) -> &verinfer_client::NodeReport {
    report
        .nodes
        .iter()
        .find(|node| node.address == address)
        .expect("the node was selected")
}

/// The one misbehaving node lost half its stake for `reason`, was kicked, and the two others were
/// paid half the fee (less the protocol cut) each.
async fn assert_one_slashed(
    net: &Network,
    report: &TaskReport,
    bad: Address,
    reason: SlashReason,
) -> Result<()> {
    assert_eq!(report.task.status, TaskStatus::Validated, "{report:#?}");
    let cheater = node_of(report, bad);
    let slash = cheater.slash.expect("the misbehaving node is slashed");
    assert_eq!(slash.reason, reason);
    assert_eq!(slash.amount, slash_of(MIN_STAKE));
    assert_eq!(
        slash.returned,
        Some(MIN_STAKE - slash_of(MIN_STAKE)),
        "the rest of the stake goes back"
    );
    assert_eq!(cheater.reward, 0);
    assert_eq!(net.node(bad).await?, (NodeState::Kicked, 0));
    assert_eq!(
        net.claimable(bad).await?,
        MIN_STAKE - slash_of(MIN_STAKE),
        "credited, to withdraw"
    );
    for node in report.nodes.iter().filter(|node| node.address != bad) {
        assert_eq!(node.agreed, Some(true));
        assert_eq!(node.slash, None);
        assert_eq!(
            node.reward,
            PAYOUT / 2,
            "each honest node gets half the payout"
        );
        assert_eq!(
            net.node(node.address).await?,
            (NodeState::Available, MIN_STAKE + PAYOUT / 2)
        );
        assert_eq!(
            net.claimable(node.address).await?,
            slash_reward_each(slash_of(MIN_STAKE), 2),
            "the honest pair shares the slash reward"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_counterfeit_image_node_is_slashed_and_only_honest_results_are_served() -> Result<()> {
    let _serial = serial().await;
    let mut net = Network::start(NetworkParams::default()).await?;
    net.add_node(NodeSpec::honest(GPU_A)).await?;
    net.add_node(NodeSpec::honest(GPU_B)).await?;
    let cheater = net
        .add_node(NodeSpec::behaving(GPU_B, Behaviour::Counterfeit))
        .await?;

    let client = net.client();
    let created = client
        .create_image_task(image_args(&net.models().sd), Some(FEE), 0)
        .await?;
    assert!(created.started, "three nodes are available");
    let report = settled(&net, created.task_id).await?;
    assert_one_slashed(&net, &report, cheater, SlashReason::Disagreed).await?;
    let settlement = report.settlement.as_ref().unwrap();
    let cheater_slot = usize::from(node_of(&report, cheater).slot);
    for (a, b) in [(0, 1), (0, 2), (1, 2)] {
        let distances = settlement.pair_distances(a, b);
        if a == cheater_slot || b == cheater_slot {
            assert!(
                distances.iter().any(|&d| d > 10),
                "the counterfeit images are far off: {distances:?}"
            );
        } else {
            assert!(distances.iter().all(|&d| d <= 10), "{distances:?}");
        }
    }

    // The relayer serves the agreeing nodes' uploads only, and the client verifies them.
    let out = tempfile::tempdir()?;
    let fetched = client
        .fetch_result_when_ready(created.task_id, out.path(), Duration::from_secs(30))
        .await?;
    assert_ne!(fetched.node, cheater);
    assert_eq!(fetched.files.len(), 2);
    let served = client.relayer().results(created.task_id, false).await?;
    assert!(
        served.results.iter().all(|result| result.node != cheater),
        "{served:?}"
    );
    assert!(!served.pending_nodes.contains(&cheater));
    assert_eq!(
        net.balance(net.creator()).await?,
        FUNDS - FEE,
        "the creator paid the fee"
    );
    net.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lazy_node_is_slashed_after_the_reveal_deadline_and_the_task_still_validates()
-> Result<()> {
    let _serial = serial().await;
    let mut net = Network::start(NetworkParams {
        commit_window: 30,
        reveal_window: 4,
        ..NetworkParams::default()
    })
    .await?;
    net.add_node(NodeSpec::honest(GPU_A)).await?;
    net.add_node(NodeSpec::honest(GPU_A)).await?;
    let lazy = net
        .add_node(NodeSpec::behaving(GPU_B, Behaviour::Lazy))
        .await?;

    let created = net
        .client()
        .create_image_task(image_args(&net.models().sd), Some(FEE), 0)
        .await?;
    let report = settled(&net, created.task_id).await?;
    assert!(node_of(&report, lazy).committed, "the lazy node commits");
    assert_eq!(node_of(&report, lazy).revealed, None, "but never reveals");
    assert_one_slashed(&net, &report, lazy, SlashReason::MissedReveal).await?;
    net.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_copycat_is_rejected_and_slashed_at_the_deadline() -> Result<()> {
    let _serial = serial().await;
    let mut net = Network::start(NetworkParams {
        commit_window: 30,
        reveal_window: 4,
        ..NetworkParams::default()
    })
    .await?;
    net.add_node(NodeSpec::honest(GPU_A)).await?;
    net.add_node(NodeSpec::honest(GPU_B)).await?;
    let copycat = net
        .add_node(NodeSpec::behaving(GPU_B, Behaviour::Copycat))
        .await?;

    let created = net
        .client()
        .create_image_task(image_args(&net.models().sd), Some(FEE), 0)
        .await?;
    let report = settled(&net, created.task_id).await?;
    assert!(
        node_of(&report, copycat).committed,
        "the copycat committed a copied commitment"
    );
    assert_eq!(
        node_of(&report, copycat).revealed,
        None,
        "the contract rejected its copied reveal"
    );
    assert_one_slashed(&net, &report, copycat, SlashReason::MissedReveal).await?;
    net.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_false_gpu_claim_is_slashed_on_a_text_task() -> Result<()> {
    let _serial = serial().await;
    let mut net = Network::start(NetworkParams::default()).await?;
    net.add_node(NodeSpec::honest(GPU_A)).await?;
    net.add_node(NodeSpec::honest(GPU_A)).await?;
    let impostor = net.add_node(NodeSpec::skewed(GPU_A)).await?;

    let created = net
        .client()
        .create_text_task(text_args(&net.models().llama), Some(FEE), 0, Some(GPU_A))
        .await?;
    let report = settled(&net, created.task_id).await?;
    assert_one_slashed(&net, &report, impostor, SlashReason::Disagreed).await?;
    let honest: Vec<_> = report
        .nodes
        .iter()
        .filter(|node| node.address != impostor)
        .collect();
    assert_eq!(
        honest[0].revealed, honest[1].revealed,
        "honest text digests are identical"
    );
    assert!(matches!(honest[0].revealed, Some(RevealedResult::Text(_))));
    net.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn when_all_three_disagree_the_task_aborts_and_the_creator_is_refunded() -> Result<()> {
    let _serial = serial().await;
    let mut net = Network::start(NetworkParams::default()).await?;
    net.add_node(NodeSpec::honest(GPU_A)).await?;
    net.add_node(NodeSpec::skewed(GPU_A)).await?;
    net.add_node(NodeSpec::behaving(GPU_A, Behaviour::Counterfeit))
        .await?;

    let created = net
        .client()
        .create_text_task(text_args(&net.models().llama), Some(FEE), 0, Some(GPU_A))
        .await?;
    let report = settled(&net, created.task_id).await?;
    assert_eq!(report.task.status, TaskStatus::Aborted, "{report:#?}");
    let digests: Vec<_> = report
        .nodes
        .iter()
        .map(|node| node.revealed.clone())
        .collect();
    assert!(
        digests[0] != digests[1] && digests[0] != digests[2] && digests[1] != digests[2],
        "{digests:?}"
    );
    for node in &report.nodes {
        assert_eq!(
            (node.slash, node.reward),
            (None, 0),
            "nobody is slashed or paid when nobody agrees"
        );
        assert_eq!(
            net.node(node.address).await?,
            (NodeState::Available, MIN_STAKE)
        );
    }
    assert_eq!(
        net.balance(net.creator()).await?,
        FUNDS - FEE,
        "the refund is credited, not sent"
    );
    assert_eq!(net.claimable(net.creator()).await?, FEE);
    let withdrawn = net.client().withdraw().await?;
    assert_eq!(withdrawn.amount, FEE);
    assert_eq!(
        net.balance(net.creator()).await?,
        FUNDS,
        "the fee came back"
    );
    net.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_text_task_waits_for_three_nodes_of_its_gpu_model() -> Result<()> {
    let _serial = serial().await;
    let mut net = Network::start(NetworkParams::default()).await?;
    net.add_node(NodeSpec::honest(GPU_A)).await?;
    net.add_node(NodeSpec::honest(GPU_A)).await?;
    net.add_node(NodeSpec::honest(GPU_B)).await?;

    let client = net.client();
    let created = client
        .create_text_task(text_args(&net.models().llama), Some(FEE), 0, Some(GPU_A))
        .await?;
    assert!(!created.started, "only two nodes declare {GPU_A}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        client.chain_task(created.task_id).await?.status,
        TaskStatus::Queued
    );

    let third = net.add_node(NodeSpec::honest(GPU_A)).await?;
    let report = settled(&net, created.task_id).await?;
    assert_eq!(report.task.status, TaskStatus::Validated);
    assert!(
        report.nodes.iter().any(|node| node.address == third),
        "the joining node completes the trio"
    );
    for node in &report.nodes {
        assert_eq!(node.gpu_model_name.as_deref(), Some(GPU_A));
    }
    net.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_args_are_refused_before_any_transaction() -> Result<()> {
    let _serial = serial().await;
    let net = Network::start(NetworkParams::default()).await?;
    let client = net.client();
    let nonce = net.nonce(net.creator()).await?;

    let mut odd_width = image_args(&net.models().sd);
    odd_width.width = 65;
    let error = client
        .create_image_task(odd_width, Some(FEE), 0)
        .await
        .unwrap_err();
    assert!(matches!(error, ClientError::InvalidArgs(_)), "{error}");
    assert!(error.to_string().contains("width"), "{error}");
    assert!(error.to_string().contains("no gas spent"), "{error}");

    let mut no_prompt = text_args(&net.models().llama);
    no_prompt.input = TextInput::Prompt("   ".into());
    let error = client
        .create_text_task(no_prompt, Some(FEE), 0, None)
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("input.prompt is empty"),
        "{error}"
    );

    let error = client
        .create_text_task(text_args(&net.models().llama), Some(FEE), 0, Some(" \t"))
        .await
        .unwrap_err();
    assert!(matches!(error, ClientError::InvalidRequest(_)), "{error}");
    let error = client
        .create_image_task(image_args(&net.models().sd), Some(FUNDS + 1), 0)
        .await
        .unwrap_err();
    assert!(
        matches!(error, ClientError::InsufficientBalance { .. }),
        "{error}"
    );

    // A fee below the network minimum (0.01 token + 0.001 per image on this network).
    let error = client
        .create_image_task(image_args(&net.models().sd), Some(1), 0)
        .await
        .unwrap_err();
    assert!(
        matches!(error, ClientError::FeeBelowMinimum { fee: 1, minimum, .. } if minimum == TOKEN / 100 + 2 * TOKEN / 1_000),
        "{error}"
    );
    assert!(
        error.to_string().contains("minimum of 0.012 tokens"),
        "{error}"
    );
    // No GPU model is registered yet: a text task names none it could run on.
    let error = client
        .create_text_task(text_args(&net.models().llama), None, 0, Some(GPU_A))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ClientError::GpuModelNotRegistered(name) if name == GPU_A),
        "{error}"
    );
    let error = client
        .create_text_task(text_args(&net.models().llama), None, 0, None)
        .await
        .unwrap_err();
    assert!(
        matches!(error, ClientError::NoGpuModelFits { min_vram_mib: 0 }),
        "{error}"
    );

    assert_eq!(net.nonce(net.creator()).await?, nonce, "nothing was sent");
    assert_eq!(net.balance(net.creator()).await?, FUNDS);
    net.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn args_no_node_can_run_end_errored_and_refunded() -> Result<()> {
    let _serial = serial().await;
    let mut net = Network::start(NetworkParams::default()).await?;
    for _ in 0..3 {
        net.add_node(NodeSpec::honest(GPU_A)).await?;
    }
    // Well-formed args naming a model nobody holds: they pass the client, the nodes report them.
    let mut args = text_args(&net.models().llama);
    args.model = ModelRef {
        name: "missing".into(),
        digest: format!("sha256:{}", "ab".repeat(32)),
    };
    // No GPU model named: the client picks the registered one with the most available nodes.
    let created = net
        .client()
        .create_text_task(args, Some(FEE), 0, None)
        .await?;
    assert_eq!(
        created.gpu_model.as_ref().map(|model| model.name.as_str()),
        Some(GPU_A)
    );
    let report = settled(&net, created.task_id).await?;
    assert_eq!(report.task.status, TaskStatus::Errored, "{report:#?}");
    for node in &report.nodes {
        assert_eq!(node.revealed, Some(RevealedResult::InvalidArgs));
        assert_eq!(node.slash, None);
        assert_eq!(
            net.node(node.address).await?,
            (NodeState::Available, MIN_STAKE)
        );
    }
    assert_eq!(net.balance(net.creator()).await?, FUNDS - FEE);
    assert_eq!(
        net.claimable(net.creator()).await?,
        FEE,
        "the fee is credited back"
    );
    net.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_no_draw_can_serve_expires_and_its_fee_is_withdrawn() -> Result<()> {
    let _serial = serial().await;
    let mut net = Network::start(NetworkParams {
        queue_timeout: 8,
        ..NetworkParams::default()
    })
    .await?;
    // Two nodes of the model: below the minimum text pool of three, so no draw starts the task.
    net.add_node(NodeSpec::honest(GPU_A)).await?;
    net.add_node(NodeSpec::honest(GPU_A)).await?;
    let client = net.client();
    let created = client
        .create_text_task(text_args(&net.models().llama), Some(FEE), 0, Some(GPU_A))
        .await?;
    assert!(!created.started);
    // `wait` expires it once its queue timeout has passed (or a draw did).
    let task = tokio::time::timeout(SETTLE_TIMEOUT, client.wait(created.task_id, |_| {}))
        .await
        .map_err(|_| "the task did not expire")??;
    assert_eq!(task.status, TaskStatus::Expired, "{task:?}");
    assert!(!task.started(), "never drawn");
    assert_eq!(net.balance(net.creator()).await?, FUNDS - FEE);
    assert_eq!(client.claimable().await?, FEE, "the fee is credited back");
    let withdrawn = client.withdraw().await?;
    assert_eq!((withdrawn.account, withdrawn.amount), (net.creator(), FEE));
    assert_eq!(net.balance(net.creator()).await?, FUNDS);
    let error = client.withdraw().await.unwrap_err();
    assert!(
        matches!(error, ClientError::NothingToWithdraw(account) if account == net.creator()),
        "{error}"
    );
    net.stop().await;
    Ok(())
}

/// Sampled tasks after the cheater's: each is checked (p = 100 %) by the two honest nodes that are
/// not its first node.
const HONEST_SAMPLED_TASKS: u64 = 4;

/// Creates a sampled image task (fee `FEE`, within `sampledFeeRange`) with args of its own seed.
async fn create_sampled(net: &Network, seed: u64) -> Result<u64> {
    let mut args = image_args(&net.models().sd);
    args.seed = seed;
    let options = TaskOptions::new().with_fee(FEE).sampled();
    let created = net
        .client()
        .create(&TaskArgs::Image(args), &options)
        .await?;
    Ok(created.task_id)
}

/// Waits until a draw started `task_id` on its first node; returns that node.
async fn first_node(net: &Network, task_id: u64) -> Result<Address> {
    let client = net.client();
    tokio::time::timeout(SETTLE_TIMEOUT, async {
        loop {
            let task = client.chain_task(task_id).await?;
            if task.started() {
                return Ok::<_, verinfer_e2e::Error>(task.nodes[0]);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .map_err(|_| format!("task {task_id} was not drawn within {SETTLE_TIMEOUT:?}"))?
}

/// A lazy first node: it counterfeits its pHashes, betting that the sample draw leaves its
/// sampled tasks unchecked. At a test rate of 100 % every sampled task is checked: the cheater
/// is caught on its first one (slashed and kicked), its two honest checkers are paid and share the
/// slash reward, and the honest first nodes of the sampled tasks that follow are checked and paid
/// without any honest node ever being slashed.
#[tokio::test(flavor = "multi_thread")]
async fn a_lazy_first_node_on_sampled_tasks_is_caught_and_honest_checkers_are_paid() -> Result<()> {
    let _serial = serial().await;
    // A sampled task's first node is drawn only while two more nodes could check it, so the
    // cheater never starts alone: it joins with two honest nodes and is the first node of the
    // first sampled task with probability 1/3. Otherwise it is drawn as a checker (and caught as
    // one), so the network is started afresh; the chance that every try misses is (2/3)^20.
    const TRIES: u64 = 20;
    let mut found = None;
    for attempt in 0..TRIES {
        let mut net = Network::start(NetworkParams {
            sampling_bps: 10_000,
            ..NetworkParams::default()
        })
        .await?;
        let cheater = net
            .add_node(NodeSpec::behaving(GPU_B, Behaviour::Counterfeit))
            .await?;
        let mut honest = Vec::new();
        for _ in 0..2 {
            honest.push(net.add_node(NodeSpec::honest(GPU_B)).await?);
        }
        let cheated = create_sampled(&net, 100 + attempt).await?;
        if first_node(&net, cheated).await? == cheater {
            found = Some((net, cheater, honest, cheated));
            break;
        }
        net.stop().await;
    }
    let Some((mut net, cheater, mut honest, cheated)) = found else {
        panic!("the cheater was never drawn as the first node in {TRIES} tries");
    };
    // A third honest node, so that each later sampled task finds its two checkers among the
    // nodes other than its first.
    honest.push(net.add_node(NodeSpec::honest(GPU_B)).await?);

    let report = settled(&net, cheated).await?;
    assert!(report.task.is_sampled(), "{report:#?}");
    assert_eq!(
        report.task.validation(),
        Validation::SampledChecked,
        "p = 100 %: the draw checks every sampled task"
    );
    assert_eq!(
        report.nodes[0].address, cheater,
        "the cheater is the first node"
    );
    assert!(report.settlement.as_ref().is_some_and(|s| s.compared()));
    // Caught: half its stake slashed, kicked; the two checkers paid half the payout each and
    // credited the slash reward.
    assert_one_slashed(&net, &report, cheater, SlashReason::Disagreed).await?;
    let mut earned: std::collections::HashMap<Address, u128> = report
        .nodes
        .iter()
        .filter(|node| node.address != cheater)
        .map(|node| (node.address, node.reward))
        .collect();

    // The honest first nodes: one sampled task at a time (a first node stays busy with its task
    // until its two checkers are drawn among the other honest nodes).
    let mut firsts = std::collections::HashSet::new();
    for seed in 0..HONEST_SAMPLED_TASKS {
        let task_id = create_sampled(&net, 200 + seed).await?;
        let report = settled(&net, task_id).await?;
        assert_eq!(report.task.status, TaskStatus::Validated, "{report:#?}");
        assert_eq!(report.task.validation(), Validation::SampledChecked);
        assert_eq!(report.nodes.len(), 3, "first node and two checkers");
        firsts.insert(report.nodes[0].address);
        let settlement = report.settlement.as_ref().expect("settled");
        assert_eq!(settlement.agreeing_slots(), [0, 1, 2], "{report:#?}");
        assert!(settlement.reward_per_node * 3 <= PAYOUT);
        for node in &report.nodes {
            assert!(honest.contains(&node.address), "the cheater was kicked");
            assert_eq!(node.slash, None, "an honest node was slashed: {report:#?}");
            assert_eq!(node.agreed, Some(true));
            assert_eq!(node.reward, settlement.reward_per_node);
            *earned.entry(node.address).or_default() += node.reward;
        }
    }
    assert!(!firsts.is_empty());

    // No honest node was ever slashed: each is available with its stake plus all it earned.
    for &node in &honest {
        assert_eq!(
            net.node(node).await?,
            (
                NodeState::Available,
                MIN_STAKE + earned.get(&node).copied().unwrap_or_default()
            )
        );
    }
    assert_eq!(net.node(cheater).await?, (NodeState::Kicked, 0));
    assert_eq!(
        net.balance(net.creator()).await?,
        FUNDS - FEE * u128::from(1 + HONEST_SAMPLED_TASKS),
        "the creator paid each fee once"
    );
    net.stop().await;
    Ok(())
}
