//! Explorer page rendering with 100,000 tasks indexed: `cargo bench -p verinfer-relayer --bench explorer`.
//!
//! Goals (issue #15, the 2-core machine, images excluded): a 16-image task page in ≤ 20 ms, the
//! overview in ≤ 50 ms. Each iteration is one whole request through the router (query, HTML,
//! response body) on SQLite; the PNGs the page links to are not fetched.
//!
//! Seeding: 100,000 three-node image tasks (created, started, three reveals, settled: the derived
//! tables), 1,000 slashes and the 16-image task stored as raw events like the indexer's, with
//! verified uploads of its three nodes. Under `cargo test --benches` (criterion's test mode) it
//! seeds 2,000 tasks only, to check the bench runs.

use std::time::Instant;

use alloy::sol_types::SolEvent;
use alloy_primitives::{Address, B256, U256, aliases::U96};
use axum::{body::Body, http::Request};
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;
use verinfer_abi::{SlashReason, TaskKind, TaskStatus, ValidationMode, Verinfer, VerinferEvent};
use verinfer_relayer::{
    ApiSettings, AppState,
    blobs::BlobStore,
    metrics::Metrics,
    router,
    store::{BlobMeta, ResultItem, ResultRecord, Store},
};

const BIG_TASK: u64 = 1;
const IMAGES: u8 = 16;
const SLASHES: u64 = 1_000;
const TASKS_PER_TX: u64 = 500;

fn nodes() -> [Address; 3] {
    [
        Address::repeat_byte(0x11),
        Address::repeat_byte(0x22),
        Address::repeat_byte(0x33),
    ]
}

fn task_events(task_id: u64, images: u8, phash_seed: u64) -> Vec<VerinferEvent> {
    let nodes = nodes();
    let phashes: Vec<u64> = (0..u64::from(images))
        .map(|i| (phash_seed ^ i).wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .collect();
    let mut events = vec![
        VerinferEvent::TaskCreated {
            task_id,
            creator: Address::repeat_byte(0xcc),
            kind: TaskKind::Image,
            args_hash: B256::repeat_byte(0x42),
            image_count: images,
            min_vram_mib: 8_192,
            gpu_model: B256::ZERO,
            fee: 1_000_000,
            mode: ValidationMode::Full,
        },
        VerinferEvent::TaskStarted {
            task_id,
            nodes,
            commit_deadline: 1_000,
            reveal_deadline: 2_000,
            seed_block: 1,
        },
    ];
    for (slot, node) in nodes.into_iter().enumerate() {
        let mut mine = phashes.clone();
        // The third node is a bit off on its first image: a real diff grid.
        if slot == 2 {
            mine[0] ^= 0b101;
        }
        events.push(VerinferEvent::ImageResultRevealed {
            task_id,
            node,
            phashes: mine,
        });
    }
    let mut distances = vec![0u16; 3 * usize::from(images)];
    distances[usize::from(images)] = 2;
    distances[2 * usize::from(images)] = 2;
    events.push(VerinferEvent::TaskSettled {
        task_id,
        outcome: TaskStatus::Validated,
        agreeing_mask: 0b111,
        distances,
        threshold: 6,
        reward_per_node: 300_000,
    });
    events
}

async fn seed(tasks: u64) -> (tempfile::TempDir, AppState) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::connect(&format!(
        "sqlite://{}",
        dir.path().join("relayer.db").display()
    ))
    .await
    .expect("db");
    let blobs = BlobStore::local(&dir.path().join("blobs")).expect("blob dir");
    let started = Instant::now();
    let mut block = 1;
    // Nodes and the big task as raw logs (the timeline and the node pages read them).
    let joins: Vec<_> = nodes()
        .into_iter()
        .enumerate()
        .map(|(i, node)| {
            Verinfer::NodeJoined {
                node,
                nodeId: i as u32 + 1,
                gpuModel: B256::repeat_byte(0xaa),
                gpuModelName: "nvidia h100 80gb hbm3".into(),
                vramMiB: 81_559,
                stake: U96::from(10u128.pow(21)),
                feeTier: 0,
            }
            .encode_log_data()
        })
        .collect();
    store
        .apply_synthetic_logs(block, Some(1_700_000_000), &joins)
        .await
        .expect("joins");
    block += 1;
    store
        .apply_synthetic_events(block, &task_events(BIG_TASK, IMAGES, 7))
        .await
        .expect("big task");
    block += 1;
    // Its uploads: three nodes' 16 PNGs (metadata only: the page links to the blobs).
    for (slot, node) in nodes().into_iter().enumerate() {
        let items: Vec<ResultItem> = (0..u64::from(IMAGES))
            .map(|i| ResultItem {
                blob: alloy_primitives::keccak256((slot as u64 * 100 + i).to_be_bytes()),
                phash: Some(i),
            })
            .collect();
        let metas: Vec<BlobMeta> = items
            .iter()
            .map(|item| BlobMeta {
                keccak: item.blob,
                kind: "png".into(),
                content_type: "image/png".into(),
                size: 1,
            })
            .collect();
        store
            .insert_result(
                &ResultRecord {
                    task_id: BIG_TASK,
                    node,
                    kind: TaskKind::Image,
                    payload_hash: B256::repeat_byte(slot as u8),
                    signature: "0x00".into(),
                    items,
                },
                &metas,
            )
            .await
            .expect("upload");
    }
    // The rest of the tasks, a transaction per batch.
    let mut task_id = BIG_TASK + 1;
    while task_id <= tasks {
        let end = (task_id + TASKS_PER_TX).min(tasks + 1);
        let events: Vec<VerinferEvent> = (task_id..end)
            .flat_map(|id| task_events(id, 1, id))
            .collect();
        store
            .apply_synthetic_events(block, &events)
            .await
            .expect("tasks");
        block += 1;
        task_id = end;
    }
    let slashes: Vec<_> = (0..SLASHES)
        .map(|i| {
            Verinfer::NodeSlashed {
                node: nodes()[(i % 3) as usize],
                taskId: U256::from(2 + i),
                reason: SlashReason::Disagreed as u8,
                amount: U96::from(1_000u64),
            }
            .encode_log_data()
        })
        .collect();
    for chunk in slashes.chunks(100) {
        store
            .apply_synthetic_logs(block, Some(1_700_000_100), chunk)
            .await
            .expect("slashes");
        block += 1;
    }
    eprintln!(
        "seeded {tasks} tasks and {SLASHES} slashes in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let settings = ApiSettings {
        chain_id: 31337,
        verinfer: Address::repeat_byte(0x5a),
        max_args_bytes: 64 * 1024,
        max_upload_bytes: 8 << 20,
        validate_args: true,
    };
    (
        dir,
        AppState::new(store, blobs, settings, Metrics::new(), None),
    )
}

async fn get(state: &AppState, uri: &str) -> usize {
    let response = router(state.clone())
        .oneshot(Request::get(uri).body(Body::empty()).expect("request"))
        .await
        .expect("response");
    assert!(
        response.status().is_success(),
        "GET {uri}: {}",
        response.status()
    );
    response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .len()
}

fn pages(c: &mut Criterion) {
    let full = std::env::args().any(|arg| arg == "--bench");
    let tasks = if full { 100_000 } else { 2_000 };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (_dir, state) = runtime.block_on(seed(tasks));
    let task_uri = format!("/explorer/tasks/{BIG_TASK}");
    let node_uri = format!("/explorer/nodes/{}", nodes()[2]);
    for uri in ["/explorer", task_uri.as_str(), node_uri.as_str()] {
        let bytes = runtime.block_on(get(&state, uri));
        eprintln!("GET {uri}: {bytes} bytes of HTML");
    }
    let mut group = c.benchmark_group(format!("explorer ({tasks} tasks)"));
    group.bench_function("overview", |b| {
        b.iter(|| runtime.block_on(get(&state, "/explorer")));
    });
    group.bench_function("task page, 16 images", |b| {
        b.iter(|| runtime.block_on(get(&state, &task_uri)));
    });
    group.bench_function("node page", |b| {
        b.iter(|| runtime.block_on(get(&state, &node_uri)));
    });
    group.finish();
}

criterion_group!(benches, pages);
criterion_main!(benches);
