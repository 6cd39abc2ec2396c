//! Result-upload throughput over loopback: `cargo bench -p verinfer-relayer --bench upload`.
//!
//! Each upload carries three 64×64 PNGs and goes through the whole path: HTTP, JSON, EIP-712
//! signature recovery, pHash of every PNG, the reveal lookup, blob writes and the DB transaction.
//! Concurrent clients (reqwest, same process) post pre-signed uploads for fresh (task, node)
//! pairs seeded as validated image tasks; seeding and signing are outside the timed region.
//! Criterion reports uploads per second (elements/s).

use std::{
    io::Cursor,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use alloy::signers::local::PrivateKeySigner;
use alloy_primitives::{Address, B256};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use verinfer_abi::{TaskKind, TaskStatus, ValidationMode, VerinferEvent};
use verinfer_relayer::{
    ApiSettings, AppState, blobs::BlobStore, metrics::Metrics, router, store::Store,
};
use verinfer_wire::{UploadPayload, sign_result_upload};

const CHAIN_ID: u64 = 31337;
const VERINFER: Address = Address::new([0x5a; 20]);
const CONCURRENCY: usize = 16;
const PNG_SETS: u8 = 32;

fn gradient_png(seed: u8) -> Vec<u8> {
    let size = 64u32;
    let image = image::RgbImage::from_fn(size, size, |x, y| {
        let s = u32::from(seed);
        image::Rgb([
            ((x * (3 + s % 7) + y) * 255 / (size * (4 + s % 7))) as u8,
            ((y * (2 + s % 5) + x * (s % 3)) * 255 / (size * (3 + s % 5 + s % 3))) as u8,
            (((x ^ y) + s * 17) % 256) as u8,
        ])
    });
    let mut out = Cursor::new(Vec::new());
    image
        .write_to(&mut out, image::ImageFormat::Png)
        .expect("encoding a PNG in memory");
    out.into_inner()
}

struct Bench {
    _dir: tempfile::TempDir,
    store: Store,
    base: String,
    http: reqwest::Client,
    nodes: [PrivateKeySigner; 3],
    png_sets: Vec<(Vec<Vec<u8>>, Vec<u64>)>,
    next_task: AtomicU64,
}

impl Bench {
    async fn start() -> Arc<Self> {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::connect(&format!(
            "sqlite://{}",
            dir.path().join("relayer.db").display()
        ))
        .await
        .expect("db");
        let blobs = BlobStore::local(&dir.path().join("blobs")).expect("blob dir");
        let settings = ApiSettings {
            chain_id: CHAIN_ID,
            verinfer: VERINFER,
            max_args_bytes: 64 * 1024,
            max_upload_bytes: 8 << 20,
            validate_args: true,
        };
        let state = AppState::new(store.clone(), blobs, settings, Metrics::new(), None);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("loopback listener");
        let base = format!("http://{}", listener.local_addr().expect("local addr"));
        tokio::spawn(axum::serve(listener, router(state)).into_future());

        let nodes = [
            PrivateKeySigner::random(),
            PrivateKeySigner::random(),
            PrivateKeySigner::random(),
        ];
        let joins: Vec<_> = nodes
            .iter()
            .enumerate()
            .map(|(i, node)| VerinferEvent::NodeJoined {
                node: node.address(),
                node_id: i as u32 + 1,
                gpu_model: B256::repeat_byte(1),
                gpu_model_name: "bench gpu".into(),
                vram_mib: 24_576,
                stake: 1,
                fee_tier: 0,
            })
            .collect();
        store
            .apply_synthetic_events(1, &joins)
            .await
            .expect("seed nodes");
        let png_sets = (0..PNG_SETS)
            .map(|set| {
                let pngs: Vec<Vec<u8>> = (0..3)
                    .map(|i| gradient_png(set.wrapping_mul(7).wrapping_add(i * 80)))
                    .collect();
                let phashes = pngs
                    .iter()
                    .map(|png| {
                        verinfer_phash::phash_bytes(png)
                            .expect("pHash of a valid PNG")
                            .0
                    })
                    .collect();
                (pngs, phashes)
            })
            .collect();
        Arc::new(Self {
            _dir: dir,
            store,
            base,
            http: {
                // reqwest is built without a crypto provider of its own.
                verinfer_wire::tls::install_crypto_provider();
                reqwest::Client::builder()
            }
            .pool_max_idle_per_host(CONCURRENCY)
            .build()
            .expect("http client"),
            nodes,
            png_sets,
            next_task: AtomicU64::new(1),
        })
    }

    /// Seeds validated tasks for `uploads` uploads and signs them (untimed).
    async fn prepare(&self, uploads: u64) -> Vec<(u64, Vec<u8>)> {
        let tasks = uploads.div_ceil(3);
        let mut bodies = Vec::with_capacity(uploads as usize);
        let addresses = self.nodes.each_ref().map(|n| n.address());
        for _ in 0..tasks {
            let task_id = self.next_task.fetch_add(1, Ordering::Relaxed);
            let (pngs, phashes) = &self.png_sets[(task_id % u64::from(PNG_SETS)) as usize];
            let mut events = vec![
                VerinferEvent::TaskCreated {
                    task_id,
                    creator: Address::repeat_byte(9),
                    kind: TaskKind::Image,
                    args_hash: B256::repeat_byte(2),
                    image_count: 3,
                    min_vram_mib: 0,
                    gpu_model: B256::ZERO,
                    fee: 0,
                    mode: ValidationMode::Full,
                },
                VerinferEvent::TaskStarted {
                    task_id,
                    nodes: addresses,
                    commit_deadline: 1,
                    reveal_deadline: 2,
                    seed_block: 0,
                },
            ];
            for node in addresses {
                events.push(VerinferEvent::ImageResultRevealed {
                    task_id,
                    node,
                    phashes: phashes.clone(),
                });
            }
            events.push(VerinferEvent::TaskSettled {
                task_id,
                outcome: TaskStatus::Validated,
                agreeing_mask: 7,
                distances: vec![0; 9],
                threshold: 10,
                reward_per_node: 0,
            });
            self.store
                .apply_synthetic_events(task_id + 1, &events)
                .await
                .expect("seed task");
            let payload = UploadPayload::image(pngs.clone());
            for node in &self.nodes {
                let request = sign_result_upload(node, CHAIN_ID, VERINFER, task_id, &payload)
                    .await
                    .expect("signing");
                bodies.push((task_id, serde_json::to_vec(&request).expect("JSON")));
            }
        }
        bodies.truncate(uploads as usize);
        bodies
    }

    /// Posts `bodies` with [`CONCURRENCY`] clients; returns the elapsed time.
    async fn upload_all(self: &Arc<Self>, bodies: Vec<(u64, Vec<u8>)>) -> Duration {
        let queue = Arc::new(std::sync::Mutex::new(bodies));
        let start = Instant::now();
        let workers: Vec<_> = (0..CONCURRENCY)
            .map(|_| {
                let queue = queue.clone();
                let bench = self.clone();
                tokio::spawn(async move {
                    loop {
                        let next = queue.lock().expect("queue lock").pop();
                        let Some((task_id, body)) = next else { break };
                        let url = format!("{}/v1/tasks/{task_id}/results", bench.base);
                        let response = bench
                            .http
                            .post(url)
                            .body(body)
                            .send()
                            .await
                            .expect("upload request");
                        assert_eq!(
                            response.status(),
                            reqwest::StatusCode::CREATED,
                            "upload refused"
                        );
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.await.expect("upload worker");
        }
        start.elapsed()
    }
}

fn uploads(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let bench = runtime.block_on(Bench::start());
    let mut group = c.benchmark_group("relayer");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(15));
    group.bench_function("upload_3x64px_png_verified", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let bodies = bench.prepare(iters).await;
                bench.upload_all(bodies).await
            })
        });
    });
    group.finish();
}

criterion_group!(benches, uploads);
criterion_main!(benches);
