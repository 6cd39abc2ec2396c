//! The relayer against a real anvil and the real contracts: a full image task served over
//! loopback, an indexer restart mid-stream, reorgs, and the hardened contract's registry, fee
//! tiers, parameter versions, expiry and credited balances. The index is compared with the
//! chain's own views (`getTask`, `getNode`, `claimable`) after each step.
//!
//! Needs the npm-installed anvil (`npm ci`).

mod common;

use std::time::Duration;

use alloy::{
    primitives::{Address, B256, U256, aliases::U96, keccak256},
    providers::{DynProvider, Provider, ProviderBuilder, ext::AnvilApi},
    rpc::types::Filter,
    signers::local::PrivateKeySigner,
};
use common::{gradient_png, phash, valid_image_args};
use verinfer_abi::{
    CreditReason, Deployment, IERC20, IVerinfer, TaskStatus, ValidationMode, Verinfer,
    VerinferInstance,
};
use verinfer_devchain::{AnvilOptions, Chain, Deploy, default_init_params};
use verinfer_relayer::{
    Relayer, RelayerConfig,
    indexer::{Indexer, IndexerConfig, catch_up},
    metrics::Metrics,
    store::{CountedTable, Store},
};
use verinfer_task::image_commitment;
use verinfer_wire::{ErrorCode, RelayerClient, UploadPayload, sign_result_upload};

const TOKEN: u128 = 1_000_000_000_000_000_000;
const STAKE: u128 = 1_000 * TOKEN;
const FEE: u128 = 30 * TOKEN;
const H100: &str = "NVIDIA H100 80GB HBM3";
const H100_VRAM_MIB: u32 = 81_559;
/// Explicit gas limit: the first call of a block runs the draw, so the gas a call takes depends
/// on its block, which differs between estimation and mining.
const GAS: u64 = 5_000_000;

/// anvil with the contracts deployed and the H100 registered; accounts 2.. are funded nodes,
/// account 9 the creator, account 1 (the treasury) sends the draws.
struct Devnet {
    chain: Chain,
    provider: DynProvider,
    deployment: Deployment,
    verinfer: VerinferInstance<DynProvider>,
    creator: Address,
}

impl Devnet {
    async fn start() -> Self {
        Self::start_with(default_init_params()).await
    }

    async fn start_with(params: IVerinfer::Params) -> Self {
        let deploy = Deploy::Bindings {
            params,
            treasury: 1,
        };
        let chain = Chain::start(&AnvilOptions::default(), deploy)
            .await
            .unwrap();
        let accounts = chain.anvil().addresses();
        chain
            .fund(accounts[2..].iter().map(|a| (*a, U256::from(10 * STAKE))))
            .await
            .unwrap();
        chain.add_gpu_models([(H100, H100_VRAM_MIB)]).await.unwrap();
        // Nonces fetched per transaction: a cached nonce would outlive a reorg and stall.
        let provider = ProviderBuilder::new()
            .disable_recommended_fillers()
            .with_gas_estimation()
            .with_simple_nonce_management()
            .fetch_chain_id()
            .wallet(chain.anvil().wallet())
            .connect_http(chain.rpc_url())
            .erased();
        let deployment = *chain.deployment();
        let verinfer = Verinfer::new(deployment.verinfer, provider.clone());
        Self {
            creator: accounts[9],
            chain,
            provider,
            deployment,
            verinfer,
        }
    }

    fn account(&self, index: usize) -> Address {
        self.chain.address(index).unwrap()
    }

    fn signer(&self, address: Address) -> PrivateKeySigner {
        self.chain
            .anvil()
            .keys()
            .iter()
            .find(|key| key.address() == address)
            .unwrap()
            .clone()
    }

    fn token(&self) -> IERC20::IERC20Instance<DynProvider> {
        IERC20::new(self.deployment.staking_token, self.provider.clone())
    }

    async fn join(&self, node: Address) {
        self.token()
            .approve(self.deployment.verinfer, U256::from(STAKE))
            .from(node)
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        let receipt = self
            .verinfer
            .join(H100.to_owned(), 0, U96::from(STAKE))
            .from(node)
            .gas(GAS)
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        assert!(receipt.status(), "join reverted");
    }

    /// Creates an image task and sends a draw in the next block (which starts it when three
    /// nodes are available); returns its id.
    async fn create_image_task(&self, args_hash: B256, image_count: u8) -> u64 {
        let task_id = self.queue_image_task(args_hash, image_count).await;
        self.draw().await;
        task_id
    }

    /// `drawTasks()` from account 1.
    async fn draw(&self) {
        let receipt = self
            .verinfer
            .drawTasks()
            .from(self.account(1))
            .gas(GAS)
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        assert!(receipt.status(), "drawTasks reverted");
    }

    /// Creates an image task, which waits in its queue; returns its id.
    async fn queue_image_task(&self, args_hash: B256, image_count: u8) -> u64 {
        self.queue_task(args_hash, image_count, FEE, ValidationMode::Full)
            .await
    }

    /// Creates an image task of `mode` paying `fee` (`createTask` or `createSampledTask`), which
    /// waits in its queue; returns its id.
    async fn queue_task(
        &self,
        args_hash: B256,
        image_count: u8,
        fee: u128,
        mode: ValidationMode,
    ) -> u64 {
        self.token()
            .approve(self.deployment.verinfer, U256::from(fee))
            .from(self.creator)
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        let kind = verinfer_abi::TaskKind::Image.into();
        let fee = U96::from(fee);
        let request = match mode {
            ValidationMode::Full => self
                .verinfer
                .createTask(kind, args_hash, image_count, 16_384, String::new(), fee)
                .from(self.creator)
                .gas(GAS)
                .into_transaction_request(),
            ValidationMode::Sampled => self
                .verinfer
                .createSampledTask(kind, args_hash, image_count, 16_384, String::new(), fee)
                .from(self.creator)
                .gas(GAS)
                .into_transaction_request(),
        };
        let receipt = self
            .provider
            .send_transaction(request)
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        assert!(
            receipt.status(),
            "createTask reverted: gas used {} of {:?}",
            receipt.gas_used,
            receipt
        );
        let created = receipt
            .logs()
            .iter()
            .find_map(|log| log.log_decode::<Verinfer::TaskCreated>().ok())
            .unwrap();
        created.inner.data.taskId.to::<u64>()
    }

    async fn task_nodes(&self, task_id: u64) -> [Address; 3] {
        self.verinfer
            .getTask(U256::from(task_id))
            .call()
            .await
            .unwrap()
            .nodes
    }

    async fn commit_image(&self, task_id: u64, node: Address, phashes: &[u64]) {
        let commitment = image_commitment(U256::from(task_id), node, phashes, salt(node));
        let receipt = self
            .verinfer
            .commit(U256::from(task_id), commitment)
            .from(node)
            .gas(GAS)
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        assert!(receipt.status(), "commit reverted");
    }

    async fn reveal_image(&self, task_id: u64, node: Address, phashes: &[u64]) {
        let receipt = self
            .verinfer
            .revealImage(U256::from(task_id), phashes.to_vec(), salt(node))
            .from(node)
            .gas(GAS)
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        assert!(receipt.status(), "reveal reverted");
    }

    fn read_provider(&self) -> DynProvider {
        ProviderBuilder::new()
            .disable_recommended_fillers()
            .connect_http(self.chain.rpc_url())
            .erased()
    }

    fn indexer(&self, store: &Store, max_block_range: u64) -> Indexer {
        Indexer::new(
            self.read_provider(),
            store.clone(),
            IndexerConfig {
                chain_id: self.deployment.chain_id,
                verinfer: self.deployment.verinfer,
                start_block: self.deployment.deploy_block,
                confirmations: 0,
                max_block_range,
                poll_interval: Duration::from_millis(50),
            },
            Metrics::new(),
        )
    }

    /// Every Verinfer log on the chain now.
    async fn chain_log_count(&self) -> u64 {
        let filter = Filter::new()
            .address(self.deployment.verinfer)
            .from_block(self.deployment.deploy_block);
        self.provider.get_logs(&filter).await.unwrap().len() as u64
    }

    /// The index equals the chain: every task up to `taskCount` (and one past it) and every
    /// node in `nodes`, field by field against `getTask` / `getNode`.
    async fn assert_index_matches_chain(&self, store: &Store, nodes: &[Address]) {
        let task_count: u64 = self.verinfer.taskCount().call().await.unwrap().to::<u64>();
        for task_id in 1..=task_count + 1 {
            let chain = self
                .verinfer
                .getTask(U256::from(task_id))
                .call()
                .await
                .unwrap();
            let Some(ours) = store.task(task_id).await.unwrap() else {
                assert_eq!(
                    chain.status, 0,
                    "task {task_id} exists on chain, not in the index"
                );
                continue;
            };
            assert_eq!(
                ours.chain.status.as_u8(),
                chain.status,
                "task {task_id} status"
            );
            assert_eq!(ours.chain.creator, chain.creator, "task {task_id} creator");
            assert_eq!(ours.chain.kind as u8, chain.kind, "task {task_id} kind");
            assert_eq!(
                ours.chain.image_count, chain.imageCount,
                "task {task_id} imageCount"
            );
            assert_eq!(
                ours.chain.min_vram_mib, chain.minVramMiB,
                "task {task_id} minVramMiB"
            );
            assert_eq!(
                ours.chain.args_hash, chain.argsHash,
                "task {task_id} argsHash"
            );
            assert_eq!(
                ours.chain.gpu_model, chain.gpuModel,
                "task {task_id} gpuModel"
            );
            assert_eq!(ours.chain.fee, chain.fee.to::<u128>(), "task {task_id} fee");
            assert_eq!(
                ours.nodes().unwrap_or_default(),
                chain.nodes,
                "task {task_id} nodes"
            );
            assert_eq!(
                ours.chain.committed_mask, chain.committedMask,
                "task {task_id} committedMask"
            );
            assert_eq!(
                ours.chain.revealed_mask, chain.revealedMask,
                "task {task_id} revealedMask"
            );
            assert_eq!(
                ours.chain.invalid_mask, chain.invalidMask,
                "task {task_id} invalidMask"
            );
            assert_eq!(
                ours.chain.commit_deadline, chain.commitDeadline,
                "task {task_id} commitDeadline"
            );
            assert_eq!(
                ours.chain.reveal_deadline, chain.revealDeadline,
                "task {task_id} revealDeadline"
            );
            assert_eq!(
                ours.chain.fee_level, chain.feeLevel,
                "task {task_id} feeLevel"
            );
            assert_eq!(
                ours.chain.params_version,
                chain.paramsVersion.to::<u32>(),
                "task {task_id} paramsVersion"
            );
            assert_eq!(
                ours.chain.expires_at,
                chain.expiresAt.to::<u64>(),
                "task {task_id} expiresAt"
            );
            assert_eq!(ours.chain.mode.as_u8(), chain.mode, "task {task_id} mode");
            assert_eq!(ours.chain.checked, chain.checked, "task {task_id} checked");
            assert_eq!(
                ours.chain.sample_block,
                chain.sampleBlock.to::<u64>(),
                "task {task_id} sampleBlock"
            );
        }
        for &address in nodes {
            let chain = self.verinfer.getNode(address).call().await.unwrap();
            let Some(ours) = store.node(address).await.unwrap() else {
                assert_eq!(
                    (chain.state, chain.id),
                    (0, 0),
                    "node {address} exists on chain, not in the index"
                );
                continue;
            };
            assert_eq!(ours.state.as_u8(), chain.state, "node {address} state");
            assert_eq!(ours.node_id, chain.id, "node {address} id");
            assert_eq!(ours.stake, chain.stake.to::<u128>(), "node {address} stake");
            assert_eq!(ours.gpu_model, chain.gpuModel, "node {address} gpuModel");
            assert_eq!(ours.vram_mib, chain.vramMiB, "node {address} vramMiB");
            assert_eq!(ours.fee_tier, chain.feeTier, "node {address} feeTier");
            assert_eq!(
                ours.task_id,
                chain.taskId.to::<u64>(),
                "node {address} taskId"
            );
        }
        for account in nodes.iter().copied().chain([self.creator]) {
            assert_eq!(
                store.account(account).await.unwrap().claimable,
                self.verinfer
                    .claimable(account)
                    .call()
                    .await
                    .unwrap()
                    .to::<u128>(),
                "claimable of {account}"
            );
        }
        assert_eq!(
            store.count_rows(CountedTable::Events).await.unwrap(),
            self.chain_log_count().await,
            "one stored event per log"
        );
    }
}

fn salt(node: Address) -> B256 {
    keccak256(node)
}

/// SQLite in `dir`, or PostgreSQL when `VERINFER_RELAYER_TEST_POSTGRES` is set.
async fn temp_database(dir: &tempfile::TempDir) -> String {
    common::test_database_url(dir).await
}

#[tokio::test]
async fn image_task_from_chain_to_verified_results_over_loopback() {
    let net = Devnet::start().await;
    let node_accounts = [net.account(2), net.account(3), net.account(4)];
    for node in node_accounts {
        net.join(node).await;
    }

    // The relayer as `verinfer relayer` runs it, on a loopback port.
    let dir = tempfile::tempdir().unwrap();
    let config = RelayerConfig {
        rpc_url: Some(net.chain.rpc_url()),
        chain_id: Some(net.deployment.chain_id),
        verinfer: Some(net.deployment.verinfer),
        deploy_block: Some(net.deployment.deploy_block),
        data_dir: dir.path().to_path_buf(),
        blobs: common::test_blob_config(&dir),
        database_url: Some(temp_database(&dir).await),
        poll_interval_ms: 50,
        ..RelayerConfig::default()
    };
    let relayer = Relayer::from_config(&config).await.unwrap();
    let store = relayer.state().inner().store.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client_base = format!("http://{}/", listener.local_addr().unwrap());
    let client = RelayerClient::new(client_base.parse().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(relayer.serve(listener, async {
        let _ = stopped.await;
    }));

    // The dApp uploads the args, then creates the task with their hash.
    let args = valid_image_args();
    let uploaded = client.upload_args(args.clone()).await.unwrap();
    let pngs: Vec<Vec<u8>> = (0..4).map(|i| gradient_png(i * 50 + 3, 64)).collect();
    let phashes: Vec<u64> = pngs.iter().map(|png| phash(png)).collect();
    let task_id = net
        .create_image_task(uploaded.args_hash, pngs.len() as u8)
        .await;
    let slots = net.task_nodes(task_id).await;
    for node in slots {
        net.commit_image(task_id, node, &phashes).await;
    }
    for node in slots {
        net.reveal_image(task_id, node, &phashes).await;
    }

    let view = wait_for(|| async {
        client
            .task(task_id)
            .await
            .ok()
            .filter(|t| t.status == verinfer_abi::TaskStatus::Validated)
    })
    .await;
    assert_eq!(view.settlement.as_ref().unwrap().agreeing_mask, 0b111);
    assert_eq!(
        client
            .task_args(task_id, uploaded.args_hash)
            .await
            .unwrap()
            .as_ref(),
        args.as_slice()
    );

    // Forged uploads are refused and store nothing.
    let before = (
        store.count_rows(CountedTable::Results).await.unwrap(),
        store.count_rows(CountedTable::Blobs).await.unwrap(),
    );
    let payload = UploadPayload::image(pngs.clone());
    let outsider = net.signer(net.account(7));
    let wrong_node = sign_result_upload(
        &outsider,
        net.deployment.chain_id,
        net.deployment.verinfer,
        task_id,
        &payload,
    )
    .await
    .unwrap();
    assert_eq!(
        client
            .upload_result(task_id, &wrong_node)
            .await
            .unwrap_err()
            .code(),
        Some(ErrorCode::NotSelected)
    );
    let mut bad_signature = wrong_node.clone();
    bad_signature.node = slots[0];
    assert_eq!(
        client
            .upload_result(task_id, &bad_signature)
            .await
            .unwrap_err()
            .code(),
        Some(ErrorCode::BadSignature)
    );
    let mut forged_pngs = pngs.clone();
    forged_pngs[1] = gradient_png(250, 64);
    let forged = sign_result_upload(
        &net.signer(slots[1]),
        net.deployment.chain_id,
        net.deployment.verinfer,
        task_id,
        &UploadPayload::image(forged_pngs),
    )
    .await
    .unwrap();
    assert_eq!(
        client
            .upload_result(task_id, &forged)
            .await
            .unwrap_err()
            .code(),
        Some(ErrorCode::DigestMismatch)
    );
    let after = (
        store.count_rows(CountedTable::Results).await.unwrap(),
        store.count_rows(CountedTable::Blobs).await.unwrap(),
    );
    assert_eq!(before, after, "a refused upload stored something");

    // Each selected node uploads its PNGs.
    for node in slots {
        let request = sign_result_upload(
            &net.signer(node),
            net.deployment.chain_id,
            net.deployment.verinfer,
            task_id,
            &payload,
        )
        .await
        .unwrap();
        assert!(
            client
                .upload_result(task_id, &request)
                .await
                .unwrap()
                .created
        );
    }

    // The results: every agreeing node's PNGs, whose recomputed pHashes are what the chain holds.
    let results = client.results(task_id, false).await.unwrap();
    assert_eq!(results.results.len(), 3);
    assert!(results.pending_nodes.is_empty());
    for result in &results.results {
        let images = result.images.as_ref().unwrap();
        assert_eq!(images.len(), pngs.len());
        for (index, image) in images.iter().enumerate() {
            let png = client.blob(image.keccak256).await.unwrap();
            assert_eq!(
                phash(&png),
                phashes[index],
                "recomputed pHash equals the revealed one"
            );
            assert_eq!(
                result.revealed_phashes.as_ref().unwrap()[index],
                format!("{:#018x}", phashes[index])
            );
        }
    }
    net.assert_index_matches_chain(&store, &node_accounts).await;

    // Health and metrics reflect the running indexer.
    let health = client.health().await.unwrap();
    assert_eq!(
        (health.status.as_str(), health.indexer.as_str()),
        ("ok", "ok"),
        "{health:?}"
    );
    let head = net.provider.get_block_number().await.unwrap();
    assert_eq!(health.chain_head, Some(head));
    let metrics_url = format!("{}metrics", client_base);
    let metrics = reqwest::get(metrics_url)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(&format!("verinfer_relayer_indexed_head {head}")),
        "{metrics}"
    );
    assert!(
        metrics.contains("verinfer_relayer_indexer_lag_blocks 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("verinfer_relayer_upload_verifications_total{outcome=\"failed\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("verinfer_relayer_upload_verifications_total{outcome=\"ok\"} 3"),
        "{metrics}"
    );

    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn indexer_restart_resumes_from_the_persisted_cursor() {
    let net = Devnet::start().await;
    let nodes: Vec<Address> = (2..8).map(|i| net.account(i)).collect();
    let dir = tempfile::tempdir().unwrap();
    let database = temp_database(&dir).await;

    for &node in &nodes[..3] {
        net.join(node).await;
    }
    let first = net.create_image_task(B256::repeat_byte(1), 1).await;

    // First run: small ranges, stopped before it caught up.
    {
        let store = Store::connect(&database).await.unwrap();
        let indexer = net.indexer(&store, 2);
        let outcome = indexer.poll().await.unwrap();
        assert!(!outcome.caught_up);
        indexer.poll().await.unwrap();
        assert!(
            store.count_rows(CountedTable::Events).await.unwrap() < net.chain_log_count().await
        );
        store.pool().close().await;
    }

    // More events while the relayer is down: the task runs to settlement, another one queues,
    // more nodes join (and start it), one node leaves.
    let phashes = [0x0123_4567_89ab_cdefu64];
    let slots = net.task_nodes(first).await;
    for node in slots {
        net.commit_image(first, node, &phashes).await;
    }
    for node in slots {
        net.reveal_image(first, node, &phashes).await;
    }
    let busy = net.create_image_task(B256::repeat_byte(2), 1).await;
    let queued = net.create_image_task(B256::repeat_byte(3), 1).await;
    for &node in &nodes[3..] {
        net.join(node).await;
    }
    // One node leaves: an idle one exits at once, a busy one is marked Leaving.
    let receipt = net
        .verinfer
        .leave()
        .from(nodes[0])
        .gas(GAS)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status(), "leave reverted");
    assert!(busy < queued);

    // Second run from the same database: resumes at the cursor, misses nothing, counts nothing twice.
    let store = Store::connect(&database).await.unwrap();
    let indexer = net.indexer(&store, 2);
    let outcome = catch_up(&indexer, 1000).await.unwrap();
    assert!(outcome.caught_up);
    net.assert_index_matches_chain(&store, &nodes).await;

    // Re-committing an already stored range (a crash after commit, before the cursor was seen)
    // stores no duplicate.
    let filter = Filter::new()
        .address(net.deployment.verinfer)
        .from_block(net.deployment.deploy_block);
    let logs: Vec<_> = net
        .provider
        .get_logs(&filter)
        .await
        .unwrap()
        .iter()
        .map(|log| verinfer_relayer::events::RawLog::from_rpc(log).unwrap())
        .collect();
    let head = net.provider.get_block_number().await.unwrap();
    let head_hash = net
        .provider
        .get_block_by_number(head.into())
        .await
        .unwrap()
        .unwrap()
        .header
        .hash;
    assert_eq!(
        store.commit_range((head, head_hash), &logs).await.unwrap(),
        0
    );
    net.assert_index_matches_chain(&store, &nodes).await;
}

#[tokio::test]
async fn reorgs_are_rolled_back_and_reindexed() {
    let net = Devnet::start().await;
    let nodes: Vec<Address> = (2..7).map(|i| net.account(i)).collect();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&temp_database(&dir).await).await.unwrap();
    let indexer = net.indexer(&store, 1000);

    for &node in &nodes[..3] {
        net.join(node).await;
    }
    catch_up(&indexer, 100).await.unwrap();
    let snapshot = net.provider.anvil_snapshot().await.unwrap();

    // Branch A: a task starts with the three nodes and two of them commit.
    let task = net.create_image_task(B256::repeat_byte(0xa), 1).await;
    let slots = net.task_nodes(task).await;
    net.commit_image(task, slots[0], &[1]).await;
    net.commit_image(task, slots[1], &[1]).await;
    catch_up(&indexer, 100).await.unwrap();
    assert!(store.task(task).await.unwrap().is_some());
    net.assert_index_matches_chain(&store, &nodes).await;
    let branch_a_head = net.provider.get_block_number().await.unwrap();

    // Branch B replaces A from the snapshot: one block only, shorter than A.
    assert!(net.provider.anvil_revert(snapshot).await.unwrap());
    net.join(nodes[3]).await;
    assert!(net.provider.get_block_number().await.unwrap() < branch_a_head);
    let outcome = catch_up(&indexer, 100).await.unwrap();
    assert!(outcome.rolled_back_to.is_some(), "the reorg went unnoticed");
    assert!(
        store.task(task).await.unwrap().is_none(),
        "branch A's task survived the reorg"
    );
    net.assert_index_matches_chain(&store, &nodes).await;

    // Branch B grows past A's height with other events, at the same heights A had.
    net.join(nodes[4]).await;
    let other = net.create_image_task(B256::repeat_byte(0xb), 2).await;
    assert_eq!(other, task, "branch B reuses the task id");
    net.provider.anvil_mine(Some(3), None).await.unwrap();
    catch_up(&indexer, 100).await.unwrap();
    net.assert_index_matches_chain(&store, &nodes).await;
    assert_eq!(
        store.task(other).await.unwrap().unwrap().chain.args_hash,
        B256::repeat_byte(0xb)
    );

    // anvil's own reorg: replace the last 3 blocks (which hold no tx) with one holding a leave.
    let head_before = net.provider.get_block_number().await.unwrap();
    let idle = {
        let mut idle = None;
        for &node in &nodes {
            if net.verinfer.getNode(node).call().await.unwrap().state == 1 {
                idle = Some(node);
            }
        }
        idle.unwrap()
    };
    let leave = net
        .verinfer
        .leave()
        .from(idle)
        .gas(GAS)
        .into_transaction_request();
    net.provider
        .anvil_reorg(alloy::rpc::types::anvil::ReorgOptions {
            depth: 3,
            tx_block_pairs: vec![(alloy::rpc::types::anvil::TransactionData::JSON(leave), 0)],
        })
        .await
        .unwrap();
    assert_eq!(net.provider.get_block_number().await.unwrap(), head_before);
    let outcome = catch_up(&indexer, 100).await.unwrap();
    assert!(
        outcome.rolled_back_to.is_some(),
        "anvil_reorg went unnoticed"
    );
    assert_eq!(
        net.verinfer.getNode(idle).call().await.unwrap().state,
        0,
        "the leave landed"
    );
    net.assert_index_matches_chain(&store, &nodes).await;
}

#[tokio::test]
async fn registry_fee_tiers_params_expiry_and_credits_from_the_chain() {
    let net = Devnet::start_with(IVerinfer::Params {
        queueTimeout: 60,
        ..default_init_params()
    })
    .await;
    let nodes = [net.account(2), net.account(3)];
    for node in nodes {
        net.join(node).await;
    }
    let owner = net.chain.verinfer();
    let t4 = net
        .chain
        .add_gpu_models([("Tesla T4", 15_360)])
        .await
        .unwrap()[0];
    owner
        .setGpuModelActive(t4, false)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let receipt = net
        .verinfer
        .setFeeTier(2)
        .from(nodes[0])
        .gas(GAS)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status());
    // paramsDelay 0: version 2 applies at once.
    let v2 = IVerinfer::Params {
        minTaskFee: U96::from(TOKEN),
        queueTimeout: 60,
        ..default_init_params()
    };
    owner
        .scheduleParams(v2.clone())
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();

    // Two nodes only: the task waits, then expires, and its fee is credited back.
    let task_id = net.create_image_task(B256::repeat_byte(5), 1).await;
    net.provider.anvil_increase_time(61).await.unwrap();
    net.provider.anvil_mine(Some(1), None).await.unwrap();
    // The next call's draw meets the expired task at its queue's head and expires it (an
    // `expireTask` would revert after that draw: the task is no longer queued).
    net.draw().await;

    let dir = tempfile::tempdir().unwrap();
    let config = RelayerConfig {
        rpc_url: Some(net.chain.rpc_url()),
        chain_id: Some(net.deployment.chain_id),
        verinfer: Some(net.deployment.verinfer),
        deploy_block: Some(net.deployment.deploy_block),
        data_dir: dir.path().to_path_buf(),
        blobs: common::test_blob_config(&dir),
        database_url: Some(temp_database(&dir).await),
        poll_interval_ms: 50,
        ..RelayerConfig::default()
    };
    let relayer = Relayer::from_config(&config).await.unwrap();
    let store = relayer.state().inner().store.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = RelayerClient::new(
        format!("http://{}/", listener.local_addr().unwrap())
            .parse()
            .unwrap(),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(relayer.serve(listener, async {
        let _ = stopped.await;
    }));

    let task = wait_for(|| async {
        client
            .task(task_id)
            .await
            .ok()
            .filter(|t| t.status == TaskStatus::Expired)
    })
    .await;
    let chain_task = net
        .verinfer
        .getTask(U256::from(task_id))
        .call()
        .await
        .unwrap();
    assert_eq!(task.params_version, Some(2));
    assert_eq!(task.fee_level, Some(chain_task.feeLevel));
    assert_eq!(task.expires_at, Some(chain_task.expiresAt.to::<u64>()));
    assert_eq!(task.seed_block, None, "never started");
    assert_eq!(task.credits.len(), 1);
    assert_eq!(
        (
            task.credits[0].account,
            task.credits[0].reason,
            task.credits[0].amount.as_str()
        ),
        (
            net.creator,
            CreditReason::FeeRefunded,
            FEE.to_string().as_str()
        )
    );

    let params = client.params().await.unwrap();
    assert_eq!(params.in_force.version, 2);
    assert_eq!(params.in_force.params.min_task_fee, TOKEN.to_string());
    assert_eq!(params.scheduled, None);

    let models = client.gpu_models().await.unwrap().models;
    assert_eq!(models.len(), 2);
    assert_eq!(
        (
            models[0].name.as_str(),
            models[0].vram_mib,
            models[0].active,
            models[0].available_nodes
        ),
        ("nvidia h100 80gb hbm3", H100_VRAM_MIB, true, 2)
    );
    assert_eq!((models[1].id, models[1].active), (t4, false));

    let listed = client.nodes(0, 10).await.unwrap().nodes;
    assert_eq!(
        listed.iter().map(|n| n.fee_tier).collect::<Vec<_>>(),
        [2, 0]
    );

    // The creator withdraws the refund.
    let receipt = net
        .verinfer
        .withdraw()
        .from(net.creator)
        .gas(GAS)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status(), "withdraw reverted");
    let account = wait_for(|| async {
        client
            .account(net.creator)
            .await
            .ok()
            .filter(|a| a.withdrawn != "0")
    })
    .await;
    assert_eq!(
        (
            account.claimable.as_str(),
            account.credited.as_str(),
            account.withdrawn.as_str()
        ),
        ("0", FEE.to_string().as_str(), FEE.to_string().as_str())
    );
    net.assert_index_matches_chain(&store, &nodes).await;

    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

/// A sampled task at p = 0.01 % (accepted unchecked, one node paid) and, after a parameter
/// version at p = 100 %, one chosen for a check (two checkers drawn, three results compared): the
/// relayer's task view says which, and its index equals `getTask`.
#[tokio::test]
async fn sampled_tasks_unchecked_and_checked_from_the_chain() {
    let net = Devnet::start_with(IVerinfer::Params {
        samplingBps: 1,
        ..default_init_params()
    })
    .await;
    let nodes = [net.account(2), net.account(3), net.account(4)];
    for node in nodes {
        net.join(node).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = RelayerConfig {
        rpc_url: Some(net.chain.rpc_url()),
        chain_id: Some(net.deployment.chain_id),
        verinfer: Some(net.deployment.verinfer),
        deploy_block: Some(net.deployment.deploy_block),
        data_dir: dir.path().to_path_buf(),
        blobs: common::test_blob_config(&dir),
        database_url: Some(temp_database(&dir).await),
        poll_interval_ms: 50,
        ..RelayerConfig::default()
    };
    let relayer = Relayer::from_config(&config).await.unwrap();
    let store = relayer.state().inner().store.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = RelayerClient::new(
        format!("http://{}/", listener.local_addr().unwrap())
            .parse()
            .unwrap(),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(relayer.serve(listener, async {
        let _ = stopped.await;
    }));
    let pngs: Vec<Vec<u8>> = (0..2).map(|i| gradient_png(i * 70 + 5, 64)).collect();
    let phashes: Vec<u64> = pngs.iter().map(|png| phash(png)).collect();

    // p = 0.01 %: the largest fee sampling allows at the minimum stake is 0.05 token.
    let unchecked = net
        .queue_task(
            B256::repeat_byte(0x51),
            2,
            TOKEN / 100,
            ValidationMode::Sampled,
        )
        .await;
    net.draw().await;
    let slots = net.task_nodes(unchecked).await;
    assert!(
        slots[1].is_zero() && slots[2].is_zero(),
        "one node: {slots:?}"
    );
    let first = slots[0];
    net.commit_image(unchecked, first, &phashes).await;
    let awaiting = wait_for(|| async {
        client
            .task(unchecked)
            .await
            .ok()
            .filter(|t| t.status == TaskStatus::AwaitingSample)
    })
    .await;
    let validation = awaiting.validation.unwrap();
    assert_eq!(
        (validation.mode, validation.checked, validation.sampling_bps),
        (ValidationMode::Sampled, None, Some(1))
    );
    let sample_block = validation.sample_block.unwrap();
    // The block after the commitment decides: once it is sealed and another one on top (the
    // view runs in the latest block), the view tells the outcome; then the first node reveals.
    net.provider.anvil_mine(Some(2), None).await.unwrap();
    let decision = net
        .verinfer
        .sampleDecision(U256::from(unchecked))
        .call()
        .await
        .unwrap();
    assert!(decision.decidable, "block {sample_block} is sealed");
    assert!(
        !decision.checked,
        "p = 0.01 %: this run's sample block chose a check (1 in 10,000)"
    );
    net.reveal_image(unchecked, first, &phashes).await;
    let view = wait_for(|| async {
        client
            .task(unchecked)
            .await
            .ok()
            .filter(|t| t.status == TaskStatus::Validated)
    })
    .await;
    let validation = view.validation.clone().unwrap();
    assert_eq!(validation.checked, Some(false), "{view:?}");
    assert_eq!(validation.sample_block, Some(sample_block));
    assert!(validation.decided_block.is_some() && validation.checkers.is_empty());
    assert_eq!(
        validation.summary,
        "sampled at p = 0.01%: accepted unchecked (one node's result, not compared)"
    );
    let settlement = view.settlement.unwrap();
    assert_eq!(
        (settlement.agreeing_mask, settlement.distances.len()),
        (1, 0)
    );
    let upload = sign_result_upload(
        &net.signer(first),
        net.deployment.chain_id,
        net.deployment.verinfer,
        unchecked,
        &UploadPayload::image(pngs.clone()),
    )
    .await
    .unwrap();
    assert!(
        client
            .upload_result(unchecked, &upload)
            .await
            .unwrap()
            .created
    );
    let results = client.results(unchecked, false).await.unwrap();
    assert_eq!(results.results.len(), 1);
    assert_eq!(results.validation.unwrap().checked, Some(false));

    // Version 2 at p = 100 % (paramsDelay 0: in force from the next call): always checked.
    net.chain
        .verinfer()
        .scheduleParams(IVerinfer::Params {
            samplingBps: 10_000,
            ..default_init_params()
        })
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let checked = net
        .queue_task(B256::repeat_byte(0x52), 2, FEE, ValidationMode::Sampled)
        .await;
    net.draw().await;
    let first = net.task_nodes(checked).await[0];
    net.commit_image(checked, first, &phashes).await;
    net.provider.anvil_mine(Some(1), None).await.unwrap();
    let receipt = net
        .verinfer
        .resolveSample(U256::from(checked))
        .from(net.account(1))
        .gas(GAS)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status(), "resolveSample reverted");
    let queued = wait_for(|| async {
        client
            .task(checked)
            .await
            .ok()
            .filter(|t| t.status == TaskStatus::CheckQueued)
    })
    .await;
    let chain_task = net
        .verinfer
        .getTask(U256::from(checked))
        .call()
        .await
        .unwrap();
    assert_eq!(queued.expires_at, Some(chain_task.expiresAt.to::<u64>()));
    assert_eq!(queued.validation.unwrap().checked, Some(true));

    // The next block's draw takes the two other nodes as checkers.
    net.draw().await;
    let slots = net.task_nodes(checked).await;
    assert_eq!(slots[0], first);
    let checkers = [slots[1], slots[2]];
    assert!(checkers.iter().all(|c| nodes.contains(c) && *c != first));
    for node in checkers {
        net.commit_image(checked, node, &phashes).await;
    }
    for node in slots {
        net.reveal_image(checked, node, &phashes).await;
    }
    let view = wait_for(|| async {
        client
            .task(checked)
            .await
            .ok()
            .filter(|t| t.status == TaskStatus::Validated)
    })
    .await;
    let validation = view.validation.clone().unwrap();
    assert_eq!(
        (
            validation.checked,
            validation.sampling_bps,
            validation.checkers.as_slice()
        ),
        (Some(true), Some(10_000), checkers.as_slice()),
        "{view:?}"
    );
    assert!(validation.check_seed_block.is_some());
    assert_eq!(
        validation.summary,
        "sampled at p = 100%: checked by three nodes (first node and two checkers)"
    );
    assert_eq!(view.settlement.unwrap().agreeing_mask, 0b111);
    assert_eq!(view.nodes.len(), 3);
    net.assert_index_matches_chain(&store, &nodes).await;

    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

async fn wait_for<T, F, Fut>(mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..200 {
        if let Some(value) = probe().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("condition not reached within 10 s");
}

/// Names the relayer.toml a [`replica_process`] child runs.
const REPLICA_CONFIG_ENV: &str = "VERINFER_RELAYER_TEST_REPLICA_CONFIG";

/// Child process of [`replicas_share_one_database_and_one_bucket`]: a relayer run from the
/// relayer.toml that [`REPLICA_CONFIG_ENV`] names (as `verinfer relayer --config` runs it) until
/// it is killed. Ignored because the parent test starts it (`--ignored --exact`); without the
/// variable it returns at once.
#[test]
#[ignore = "child process of replicas_share_one_database_and_one_bucket"]
fn replica_process() {
    let Some(path) = std::env::var_os(REPLICA_CONFIG_ENV) else {
        return;
    };
    let config = RelayerConfig::load(Some(std::path::Path::new(&path))).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let relayer = Relayer::from_config(&config).await.unwrap();
        relayer.run(std::future::pending()).await.unwrap();
    });
}

/// A relayer replica process, killed (SIGKILL) when dropped.
struct Replica {
    child: std::process::Child,
    client: RelayerClient,
    base: String,
}

impl Replica {
    fn spawn(config: &std::path::Path, port: u16) -> Self {
        let child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["replica_process", "--exact", "--ignored", "--nocapture"])
            .env(REPLICA_CONFIG_ENV, config)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}/");
        Self {
            child,
            client: RelayerClient::new(base.parse().unwrap()),
            base,
        }
    }

    /// `kill -9`.
    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// `(indexer, indexed_head)` from `/healthz`; `None` while it does not answer.
    async fn health(&self) -> Option<(String, Option<u64>)> {
        let view = self.client.health().await.ok()?;
        Some((view.indexer, view.indexed_head))
    }

    async fn metric(&self, name: &str) -> Option<i64> {
        let text = reqwest::get(format!("{}metrics", self.base))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until exactly one live replica (of those not in `dead`) indexes and every other one
/// stands by; checks on the way that two never index at once. Returns its position.
async fn the_indexing_replica(replicas: &[Replica], dead: &[usize], within: Duration) -> usize {
    let deadline = std::time::Instant::now() + within;
    loop {
        let mut indexing = Vec::new();
        let mut standing_by = 0;
        for (i, replica) in replicas.iter().enumerate() {
            if dead.contains(&i) {
                continue;
            }
            match replica.health().await {
                Some((indexer, _)) if indexer == "ok" => indexing.push(i),
                Some((indexer, _)) if indexer == "standby" => standing_by += 1,
                _ => {}
            }
        }
        assert!(indexing.len() <= 1, "replicas {indexing:?} index at once");
        if indexing.len() == 1 && standing_by + 1 + dead.len() == replicas.len() {
            return indexing[0];
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no single indexing replica within {within:?} (indexing: {indexing:?}, standing by: {standing_by})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the shared database holds every log of the chain.
async fn wait_indexed(net: &Devnet, store: &Store, within: Duration) {
    let deadline = std::time::Instant::now() + within;
    loop {
        let head = net.provider.get_block_number().await.unwrap();
        let next = store.next_block().await.unwrap().unwrap_or(0);
        if next > head {
            let stored = store.count_rows(CountedTable::Events).await.unwrap();
            assert_eq!(
                stored,
                net.chain_log_count().await,
                "one stored event per log"
            );
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "index at block {next}, chain at {head} after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Relayer replicas: three `relayer` processes on one PostgreSQL database and one S3 bucket serve
/// the same API; exactly one indexes (the PostgreSQL advisory lock), and when it is killed with
/// SIGKILL another takes over within seconds, twice over, with events made while nobody indexed;
/// the final index equals the chain's (no event lost or stored twice).
///
/// Needs `VERINFER_RELAYER_TEST_POSTGRES` and `VERINFER_RELAYER_TEST_S3_*` (`eval "$(bash
/// scripts/ci-services.sh start)"`); skipped, saying so, when they are unset.
#[tokio::test]
async fn replicas_share_one_database_and_one_bucket() {
    if std::env::var_os(common::POSTGRES_ENV).is_none()
        || std::env::var_os(common::S3_ENDPOINT_ENV).is_none()
    {
        eprintln!(
            "SKIPPED replicas_share_one_database_and_one_bucket: set {} and {}* (scripts/ci-services.sh start prints them)",
            common::POSTGRES_ENV,
            common::S3_ENDPOINT_ENV.trim_end_matches("ENDPOINT"),
        );
        return;
    }
    let net = Devnet::start().await;
    let nodes: Vec<Address> = (2..8).map(|i| net.account(i)).collect();
    for node in &nodes[..2] {
        net.join(*node).await;
    }

    // One database (migrated here first) and one bucket prefix for all replicas.
    let dir = tempfile::tempdir().unwrap();
    let database_url = temp_database(&dir).await;
    let store = Store::connect(&database_url).await.unwrap();
    let verinfer_relayer::config::BlobStoreConfig::S3 {
        bucket,
        endpoint: Some(endpoint),
        access_key_id: Some(access_key),
        secret_access_key: Some(secret_key),
        prefix: Some(prefix),
        ..
    } = common::test_blob_config(&dir)
    else {
        panic!("the S3 test configuration names an endpoint, keys and a prefix");
    };
    let mut replicas = Vec::new();
    for i in 0..3 {
        let port = free_port();
        let data_dir = dir.path().join(format!("replica-{i}"));
        let config = format!(
            "listen = \"127.0.0.1:{port}\"\nrpc_url = \"{rpc}\"\nchain_id = {chain}\nverinfer = \"{verinfer}\"\n\
             deploy_block = {block}\ndata_dir = \"{data}\"\ndatabase_url = \"{database_url}\"\npoll_interval_ms = 100\n\
             [blobs]\nkind = \"s3\"\nbucket = \"{bucket}\"\nendpoint = \"{endpoint}\"\naccess_key_id = \"{access_key}\"\n\
             secret_access_key = \"{secret_key}\"\nallow_http = true\nprefix = \"{prefix}\"\n",
            rpc = net.chain.rpc_url(),
            chain = net.deployment.chain_id,
            verinfer = net.deployment.verinfer,
            block = net.deployment.deploy_block,
            data = data_dir.display(),
        );
        let path = dir.path().join(format!("relayer-{i}.toml"));
        std::fs::write(&path, config).unwrap();
        replicas.push(Replica::spawn(&path, port));
    }
    let mut dead = Vec::new();
    let first = the_indexing_replica(&replicas, &dead, Duration::from_secs(60)).await;
    assert_eq!(
        replicas[first].metric("verinfer_relayer_indexing").await,
        Some(1)
    );
    let standby = (first + 1) % replicas.len();
    assert_eq!(
        replicas[standby].metric("verinfer_relayer_indexing").await,
        Some(0)
    );

    // The same API on every replica: args uploaded to one are served by the others (one bucket,
    // one database).
    let args = valid_image_args();
    let uploaded = replicas[standby]
        .client
        .upload_args(args.clone())
        .await
        .unwrap();
    for replica in &replicas {
        assert_eq!(replica.client.args(uploaded.args_hash).await.unwrap(), args);
    }
    net.join(nodes[2]).await;
    let task = net.create_image_task(uploaded.args_hash, 1).await;
    wait_indexed(&net, &store, Duration::from_secs(30)).await;
    for replica in &replicas {
        assert_eq!(
            replica.client.task(task).await.unwrap().args_hash,
            uploaded.args_hash
        );
    }

    // Kill the indexing replica twice over; events are made while nobody indexes.
    let mut indexing = first;
    for round in 0..2 {
        replicas[indexing].kill();
        let killed = std::time::Instant::now();
        dead.push(indexing);
        net.join(nodes[3 + round]).await;
        net.queue_image_task(B256::repeat_byte(0x70 + round as u8), 1)
            .await;
        indexing = the_indexing_replica(&replicas, &dead, Duration::from_secs(30)).await;
        let takeover = killed.elapsed();
        eprintln!(
            "replica {indexing} took over {takeover:?} after replica {} was killed",
            dead[round]
        );
        assert!(
            takeover < Duration::from_secs(10),
            "takeover took {takeover:?}"
        );
        wait_indexed(&net, &store, Duration::from_secs(30)).await;
    }
    net.join(nodes[5]).await;
    wait_indexed(&net, &store, Duration::from_secs(30)).await;
    net.assert_index_matches_chain(&store, &nodes).await;
}
