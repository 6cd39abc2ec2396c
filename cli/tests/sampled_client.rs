//! `verinfer-client`'s sampled tasks on a real anvil with the relayer in-process: the fee range
//! (an error naming both bounds, the minimum by default), the sample decision before and after
//! the block that decides, `resolve_sample`, and the report's validation line (checked by three
//! nodes, or accepted unchecked at rate p). The nodes are played through the bindings.
//!
//! Needs the npm-installed anvil (`npm ci`).

use std::{error::Error, time::Duration};

use alloy::{
    primitives::{Address, B256, U256, aliases::U96, keccak256},
    providers::DynProvider,
    sol_types::SolValue,
};
use verinfer_abi::{IERC20, IVerinfer, TaskStatus, Validation, ValidationMode, Verinfer};
use verinfer_client::{Client, ClientError, SampleDecision, TaskOptions};
use verinfer_devchain::{
    AnvilOptions, Chain, Deploy, Services, default_init_params, relayer_config,
};
use verinfer_task::{ARGS_VERSION, ImageArgs, ModelRef, Precision, Scheduler, TaskArgs};

type TestResult = Result<(), Box<dyn Error>>;

const TOKEN: u128 = 1_000_000_000_000_000_000;
const STAKE: u128 = 1_000 * TOKEN;
const GPU: &str = "devnet-gpu-a";

/// A chain at sampling rate `sampling_bps` with three joined nodes, a relayer and a client for
/// a funded creator.
struct Net {
    chain: Chain,
    // Kept alive: the relayer serves the client.
    _services: Services,
    _dir: tempfile::TempDir,
    client: Client,
    nodes: Vec<Address>,
}

impl Net {
    async fn start(sampling_bps: u16) -> Result<Self, Box<dyn Error>> {
        let deploy = Deploy::Bindings {
            params: IVerinfer::Params {
                samplingBps: sampling_bps,
                ..default_init_params()
            },
            treasury: 1,
        };
        let chain = Chain::start(&AnvilOptions::default(), deploy).await?;
        let deployment = *chain.deployment();
        let nodes: Vec<Address> = (2..5).map(|i| chain.address(i)).collect::<Result<_, _>>()?;
        let creator = chain.anvil().keys()[5].clone();
        let mut funded: Vec<(Address, U256)> =
            nodes.iter().map(|&n| (n, U256::from(STAKE))).collect();
        funded.push((creator.address(), U256::from(100 * TOKEN)));
        chain.fund(funded).await?;
        chain.add_gpu_models([(GPU, 8_192)]).await?;
        let verinfer = Verinfer::new(deployment.verinfer, chain.provider().clone());
        let token = IERC20::new(deployment.staking_token, chain.provider().clone());
        for &node in &nodes {
            token
                .approve(deployment.verinfer, U256::from(STAKE))
                .from(node)
                .send()
                .await?
                .get_receipt()
                .await?;
            let receipt = verinfer
                .join(GPU.to_owned(), 0, U96::from(STAKE))
                .from(node)
                .gas(2_000_000)
                .send()
                .await?
                .get_receipt()
                .await?;
            assert!(receipt.status(), "join");
        }
        let dir = tempfile::tempdir()?;
        let mut services = Services::new();
        let config = relayer_config(&chain.rpc_url(), &deployment, dir.path(), 0);
        let relayer = services.start_relayer(&config).await?;
        let client = Client::new(chain.rpc_url(), creator, deployment, relayer)
            .with_poll_interval(Duration::from_millis(100));
        Ok(Self {
            chain,
            _services: services,
            _dir: dir,
            client,
            nodes,
        })
    }

    fn verinfer(&self) -> Verinfer::VerinferInstance<DynProvider> {
        Verinfer::new(
            self.chain.deployment().verinfer,
            self.chain.provider().clone(),
        )
    }

    /// Sends `call` from a dev account with a generous gas limit; fails when it reverts.
    async fn send<D: alloy::contract::CallDecoder>(
        &self,
        call: alloy::contract::CallBuilder<&DynProvider, D>,
    ) -> TestResult {
        let receipt = call.gas(3_000_000).send().await?.get_receipt().await?;
        if !receipt.status() {
            return Err(format!("transaction {} reverted", receipt.transaction_hash).into());
        }
        Ok(())
    }
}

fn image_args() -> TaskArgs {
    TaskArgs::Image(ImageArgs {
        version: ARGS_VERSION,
        model: ModelRef {
            name: "tiny-sd".to_owned(),
            digest: format!("sha256:{}", "ab".repeat(32)),
        },
        prompt: "a sampled lighthouse".to_owned(),
        negative_prompt: None,
        width: 64,
        height: 64,
        steps: 2,
        guidance_scale: 7.5,
        scheduler: Scheduler::Ddim,
        num_images: 1,
        seed: 7,
        precision: Precision::F32,
    })
}

fn commitment(task_id: u64, node: Address, phash: u64, salt: B256) -> B256 {
    keccak256((U256::from(task_id), node, vec![phash], salt).abi_encode_params())
}

/// Creates a sampled task through the client (default fee) and commits for its first node;
/// returns the task id and the first node.
async fn create_and_commit(net: &Net, phash: u64) -> Result<(u64, Address), Box<dyn Error>> {
    let (minimum, maximum) = net
        .client
        .sampled_fee_range(verinfer_abi::TaskKind::Image, 1)
        .await?;
    let created = net
        .client
        .create(&image_args(), &TaskOptions::new().sampled())
        .await?;
    assert_eq!(created.mode, ValidationMode::Sampled);
    assert_eq!((created.fee, created.min_fee), (minimum, minimum));
    assert_eq!(created.max_fee, Some(maximum));
    assert!(created.started, "the client's draw started it");
    let task = net.client.chain_task(created.task_id).await?;
    assert_eq!(task.validation(), Validation::SampledPending);
    let first = task.nodes[0];
    assert!(net.nodes.contains(&first));
    assert!(matches!(
        net.client.sample_decision(created.task_id).await,
        Err(ClientError::NoSampleDraw { .. })
    ));
    let salt = B256::repeat_byte(9);
    net.send(
        net.verinfer()
            .commit(
                U256::from(created.task_id),
                commitment(created.task_id, first, phash, salt),
            )
            .from(first),
    )
    .await?;
    // The block after the commitment's decides; a transaction sent now would land in it.
    let sample_block = net.client.chain_task(created.task_id).await?.sample_block;
    assert_eq!(
        net.client.sample_decision(created.task_id).await?,
        SampleDecision::NotYet {
            decidable_at: sample_block + 1
        }
    );
    // Two more blocks: the sample block is sealed.
    net.chain.draw().await?;
    net.chain.draw().await?;
    Ok((created.task_id, first))
}

#[test]
fn sampled_fees_outside_the_range_are_refused_and_an_unchecked_result_says_so() -> TestResult {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let net = Net::start(1).await?;
        let (minimum, maximum) = net
            .client
            .sampled_fee_range(verinfer_abi::TaskKind::Image, 1)
            .await?;
        let error = net
            .client
            .create(&image_args(), &TaskOptions::new().sampled().with_fee(TOKEN))
            .await
            .err()
            .ok_or("a fee above the sampled maximum was accepted")?;
        let message = error.to_string();
        let decimals = net.client.token_decimals().await?;
        assert_eq!(decimals.get(), 18, "the devnet's mock token");
        assert!(
            matches!(error, ClientError::FeeOutsideSampledRange { .. })
                && message.contains(&format!("minimum {} tokens", decimals.format(minimum)))
                && message.contains(&format!("maximum {} tokens", decimals.format(maximum))),
            "{message}"
        );

        let phash = 0x1234_5678_9abc_def0;
        let (task_id, first) = create_and_commit(&net, phash).await?;
        match net.client.sample_decision(task_id).await? {
            SampleDecision::Unchecked { recorded: false } => {}
            // Checked with probability 1 in 10,000: the other test covers that path.
            SampleDecision::Checked { recorded: false } => return Ok(()),
            other => return Err(format!("unexpected decision {other:?}").into()),
        }
        net.send(
            net.verinfer()
                .revealImage(U256::from(task_id), vec![phash], B256::repeat_byte(9))
                .from(first),
        )
        .await?;
        assert_eq!(
            net.client.sample_decision(task_id).await?,
            SampleDecision::Unchecked { recorded: true }
        );
        let report = net.client.task_report(task_id).await?;
        assert_eq!(report.task.status, TaskStatus::Validated);
        assert_eq!(report.sampling_bps, Some(1));
        assert_eq!(
            report.validation_line(),
            "sampled at p = 0.01%: accepted unchecked (one node's result, not compared)"
        );
        assert_eq!(report.nodes.len(), 1, "{:?}", report.nodes);
        assert_eq!(report.nodes[0].agreed, Some(true));
        assert!(report.nodes[0].reward > 0);
        let settlement = report.settlement.ok_or("no settlement")?;
        assert!(!settlement.compared());
        let status = net.client.task_status(task_id).await?;
        assert_eq!(status.validation_line(), report_line(1));
        Ok(())
    })
}

fn report_line(bps: u16) -> String {
    Validation::SampledUnchecked.describe(Some(bps))
}

#[test]
fn resolve_sample_starts_the_check_and_the_report_says_three_nodes() -> TestResult {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let net = Net::start(10_000).await?;
        let (task_id, first) = create_and_commit(&net, 0x0bad_cafe_0bad_cafe).await?;
        assert_eq!(
            net.client.sample_decision(task_id).await?,
            SampleDecision::Checked { recorded: false }
        );
        let resolved = net.client.resolve_sample(task_id).await?;
        assert!(resolved.checked);
        let again = net.client.resolve_sample(task_id).await;
        assert!(
            matches!(again, Err(ClientError::InvalidRequest(ref m)) if m.contains("ran already")),
            "{again:?}"
        );
        let status = net.client.task_status(task_id).await?;
        assert!(matches!(
            status.chain.status,
            TaskStatus::CheckQueued | TaskStatus::Committing
        ));
        let line = status.validation_line();
        assert!(
            line.starts_with("sampled at p = 100%: chosen for a check: "),
            "{line}"
        );
        // The checkers are drawn in a later block.
        net.chain.draw().await?;
        let report = net.client.task_report(task_id).await?;
        assert_eq!(report.task.status, TaskStatus::Committing);
        assert_eq!(report.nodes.len(), 3);
        assert_eq!(report.nodes[0].address, first);
        assert!(report.nodes[0].committed && !report.nodes[1].committed);
        assert_eq!(
            report.validation_line(),
            "sampled at p = 100%: chosen for a check: two checker nodes compute it, then the \
             three results are compared"
        );
        Ok(())
    })
}
