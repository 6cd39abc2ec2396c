//! Shared test support: a relayer on a temporary SQLite database and blob directory (or, when
//! the environment names them, a fresh PostgreSQL database and a fresh prefix of an S3 bucket),
//! task state seeded through synthetic events, and real PNGs.
#![allow(dead_code)]

use std::io::Cursor;

use alloy::signers::local::PrivateKeySigner;
use alloy_primitives::{Address, B256};
use axum::{
    Router,
    body::Body,
    http::{Request, StatusCode},
};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;
use verinfer_abi::{TaskKind, TaskStatus, ValidationMode, VerinferEvent};
use verinfer_relayer::{
    ApiSettings, AppState, RelayerConfig,
    blobs::BlobStore,
    config::BlobStoreConfig,
    metrics::Metrics,
    router,
    store::{CountedTable, Store},
};

pub const CHAIN_ID: u64 = 31337;
pub const VERINFER: Address = Address::new([0x5a; 20]);
pub const STAKE: u128 = 1_000_000_000_000_000_000_000;
pub const FEE: u128 = 30_000_000_000_000_000_000;
/// The sampling rate of [`test_params`], basis points (5 %).
pub const SAMPLING_BPS: u16 = 500;
/// The fee of [`Harness::start_sampled_task`]'s tasks (10 tokens): within the sampled fee range
/// of [`test_params`]`(FEE / 8)`, below the largest fee sampling allows at [`STAKE`]
/// (p s stake / (1 - p) = 26.3 tokens).
pub const SAMPLED_FEE: u128 = FEE / 3;
/// The block whose hash decides [`Harness::start_sampled_task`]'s check.
pub const SAMPLE_BLOCK: u64 = 77;

/// Parameter values like the devnet's, with minimum task fee `min_task_fee` (and a tenth of it
/// per image), queue timeout 3,600 s and sampling rate [`SAMPLING_BPS`].
pub fn test_params(min_task_fee: u128) -> verinfer_abi::IVerinfer::Params {
    use alloy_primitives::aliases::U96;
    verinfer_abi::IVerinfer::Params {
        threshold: 10,
        minTextPool: 3,
        slashShareBps: 5_000,
        slashRewardBps: 5_000,
        protocolFeeBps: 500,
        commitWindow: 300,
        revealWindow: 300,
        queueTimeout: 3_600,
        minStake: U96::from(STAKE),
        stakePerThresholdBit: U96::from(STAKE / 10),
        minTaskFee: U96::from(min_task_fee),
        minImageFee: U96::from(min_task_fee / 10),
        samplingBps: SAMPLING_BPS,
    }
}

/// Environment variable naming a PostgreSQL server (admin URL, e.g.
/// `postgres://postgres@127.0.0.1:5432/postgres`): when set, every harness gets a fresh database
/// there instead of a temporary SQLite file, so the same suite checks both backends.
pub const POSTGRES_ENV: &str = "VERINFER_RELAYER_TEST_POSTGRES";

/// A fresh database: SQLite in `dir`, or a new PostgreSQL database when [`POSTGRES_ENV`] is set.
pub async fn test_database_url(dir: &tempfile::TempDir) -> String {
    let Ok(admin) = std::env::var(POSTGRES_ENV) else {
        return format!("sqlite://{}", dir.path().join("relayer.db").display());
    };
    use sqlx::Connection as _;
    sqlx::any::install_default_drivers();
    let name = format!("relayer_test_{:016x}", rand_u64());
    let mut conn = sqlx::AnyConnection::connect(&admin).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let base = admin
        .rsplit_once('/')
        .map_or(admin.as_str(), |(base, _)| base);
    format!("{base}/{name}")
}

/// Environment variables naming an S3-compatible server (`scripts/ci-services.sh start` prints
/// them): when [`S3_ENDPOINT_ENV`] is set, every harness stores its blobs in that bucket under a
/// fresh key prefix instead of a temporary directory. Unset: local files.
pub const S3_ENDPOINT_ENV: &str = "VERINFER_RELAYER_TEST_S3_ENDPOINT";
/// The bucket (it must exist).
pub const S3_BUCKET_ENV: &str = "VERINFER_RELAYER_TEST_S3_BUCKET";
/// Access key id.
pub const S3_ACCESS_KEY_ENV: &str = "VERINFER_RELAYER_TEST_S3_ACCESS_KEY";
/// Secret access key.
pub const S3_SECRET_KEY_ENV: &str = "VERINFER_RELAYER_TEST_S3_SECRET_KEY";

/// The blob store configuration of a test: a fresh prefix of the [`S3_ENDPOINT_ENV`] bucket
/// when set, else `<dir>/blobs`.
pub fn test_blob_config(dir: &tempfile::TempDir) -> BlobStoreConfig {
    let Ok(endpoint) = std::env::var(S3_ENDPOINT_ENV) else {
        return BlobStoreConfig::Local {
            path: Some(dir.path().join("blobs")),
        };
    };
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| panic!("{S3_ENDPOINT_ENV} is set, {name} is not"))
    };
    BlobStoreConfig::S3 {
        bucket: var(S3_BUCKET_ENV),
        region: "us-east-1".into(),
        endpoint: Some(endpoint),
        access_key_id: Some(var(S3_ACCESS_KEY_ENV)),
        secret_access_key: Some(var(S3_SECRET_KEY_ENV)),
        allow_http: true,
        prefix: Some(format!("test-{:016x}", rand_u64())),
    }
}

/// The blob store of [`test_blob_config`].
pub fn test_blob_store(dir: &tempfile::TempDir) -> BlobStore {
    let config = RelayerConfig {
        data_dir: dir.path().to_path_buf(),
        blobs: test_blob_config(dir),
        ..RelayerConfig::default()
    };
    BlobStore::from_config(&config).unwrap()
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    hasher.finish()
}

/// A relayer's state on temporary storage.
pub struct Harness {
    pub dir: tempfile::TempDir,
    pub state: AppState,
    pub nodes: [PrivateKeySigner; 3],
    pub outsider: PrivateKeySigner,
    next_block: std::sync::atomic::AtomicU64,
}

pub fn default_settings() -> ApiSettings {
    ApiSettings {
        chain_id: CHAIN_ID,
        verinfer: VERINFER,
        max_args_bytes: 64 * 1024,
        max_upload_bytes: 8 * 1024 * 1024,
        validate_args: true,
    }
}

impl Harness {
    pub async fn new() -> Self {
        Self::with_settings(default_settings()).await
    }

    pub async fn with_settings(settings: ApiSettings) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&test_database_url(&dir).await)
            .await
            .unwrap();
        let blobs = test_blob_store(&dir);
        let state = AppState::new(store, blobs, settings, Metrics::new(), None);
        let nodes = [
            PrivateKeySigner::random(),
            PrivateKeySigner::random(),
            PrivateKeySigner::random(),
        ];
        let harness = Self {
            dir,
            state,
            nodes,
            outsider: PrivateKeySigner::random(),
            next_block: std::sync::atomic::AtomicU64::new(1),
        };
        // Joined through raw logs, so that the events table holds them as the indexer's would.
        let joins: Vec<alloy_primitives::LogData> = harness
            .nodes
            .iter()
            .enumerate()
            .map(|(i, signer)| {
                use alloy::sol_types::SolEvent;
                verinfer_abi::Verinfer::NodeJoined {
                    node: signer.address(),
                    nodeId: i as u32 + 1,
                    gpuModel: B256::repeat_byte(0xaa),
                    gpuModelName: "nvidia h100 80gb hbm3".into(),
                    vramMiB: 81_559,
                    stake: alloy_primitives::aliases::U96::from(STAKE),
                    feeTier: 0,
                }
                .encode_log_data()
            })
            .collect();
        harness.apply_logs(None, &joins).await;
        harness
    }

    pub fn store(&self) -> &Store {
        &self.state.inner().store
    }

    pub fn router(&self) -> Router {
        router(self.state.clone())
    }

    pub fn node_addresses(&self) -> [Address; 3] {
        [
            self.nodes[0].address(),
            self.nodes[1].address(),
            self.nodes[2].address(),
        ]
    }

    pub async fn apply(&self, events: &[VerinferEvent]) {
        let block = self
            .next_block
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.store()
            .apply_synthetic_events(block, events)
            .await
            .unwrap();
    }

    /// Applies raw logs (the registry's and the parameters' events included) in the next block,
    /// made at `timestamp`.
    pub async fn apply_logs(&self, timestamp: Option<u64>, logs: &[alloy_primitives::LogData]) {
        let block = self
            .next_block
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.store()
            .apply_synthetic_logs(block, timestamp, logs)
            .await
            .unwrap();
    }

    /// Creates and starts a task with the harness's three nodes.
    pub async fn start_task(&self, task_id: u64, kind: TaskKind, image_count: u8, args_hash: B256) {
        self.apply(&created_and_started(
            task_id,
            kind,
            image_count,
            args_hash,
            self.node_addresses(),
        ))
        .await;
        let commits: Vec<_> = self
            .node_addresses()
            .into_iter()
            .map(|node| VerinferEvent::ResultCommitted {
                task_id,
                node,
                commitment: B256::repeat_byte(7),
            })
            .collect();
        self.apply(&commits).await;
        self.apply(&[VerinferEvent::RevealPhaseOpened {
            task_id,
            reveal_deadline: 1_500,
        }])
        .await;
    }

    /// Activates parameter version 1 (the devnet's, sampling rate [`SAMPLING_BPS`]) at unix time
    /// `timestamp`, as a deployment does.
    pub async fn activate_params(&self, timestamp: u64) {
        use alloy::sol_types::SolEvent;
        use alloy_primitives::aliases::{U24, U40};
        use verinfer_abi::Verinfer;
        self.apply_logs(
            Some(timestamp),
            &[
                Verinfer::ParamsScheduled {
                    version: U24::from(1),
                    params: test_params(FEE / 8),
                    effectiveAt: U40::from(timestamp),
                }
                .encode_log_data(),
                Verinfer::ParamsActivated {
                    version: U24::from(1),
                }
                .encode_log_data(),
            ],
        )
        .await;
    }

    /// Creates a sampled task at unix time `created_at` (under the parameters in force), starts it
    /// on node 0 and has node 0 commit: the task awaits its sample draw, decided by the hash of
    /// block [`SAMPLE_BLOCK`].
    pub async fn start_sampled_task(
        &self,
        task_id: u64,
        kind: TaskKind,
        image_count: u8,
        args_hash: B256,
        created_at: u64,
    ) {
        use alloy::sol_types::SolEvent;
        use alloy_primitives::{U256, aliases::U96};
        use verinfer_abi::Verinfer;
        self.apply_logs(
            Some(created_at),
            &[
                Verinfer::TaskCreated {
                    taskId: U256::from(task_id),
                    creator: Address::repeat_byte(0xcc),
                    kind: kind.into(),
                    argsHash: args_hash,
                    imageCount: image_count,
                    minVramMiB: 16_384,
                    gpuModel: B256::ZERO,
                    fee: U96::from(SAMPLED_FEE),
                    mode: ValidationMode::Sampled.into(),
                }
                .encode_log_data(),
                Verinfer::TaskQueued {
                    taskId: U256::from(task_id),
                    queueKey: B256::repeat_byte(0x51),
                }
                .encode_log_data(),
            ],
        )
        .await;
        let first = self.nodes[0].address();
        self.apply(&[VerinferEvent::TaskStarted {
            task_id,
            nodes: [first, Address::ZERO, Address::ZERO],
            commit_deadline: 1_000,
            reveal_deadline: 2_000,
            seed_block: 1,
        }])
        .await;
        self.apply(&[
            VerinferEvent::ResultCommitted {
                task_id,
                node: first,
                commitment: B256::repeat_byte(7),
            },
            VerinferEvent::SampleCommitted {
                task_id,
                sample_block: SAMPLE_BLOCK,
                reveal_deadline: 1_300,
            },
        ])
        .await;
    }

    pub async fn reveal_image(&self, task_id: u64, slot: usize, phashes: Vec<u64>) {
        let node = self.nodes[slot].address();
        self.apply(&[VerinferEvent::ImageResultRevealed {
            task_id,
            node,
            phashes,
        }])
        .await;
    }

    pub async fn reveal_text(&self, task_id: u64, slot: usize, digest: B256) {
        let node = self.nodes[slot].address();
        self.apply(&[VerinferEvent::TextResultRevealed {
            task_id,
            node,
            digest,
        }])
        .await;
    }

    pub async fn settle(
        &self,
        task_id: u64,
        outcome: TaskStatus,
        agreeing_mask: u8,
        per_pair: usize,
    ) {
        self.apply(&[VerinferEvent::TaskSettled {
            task_id,
            outcome,
            agreeing_mask,
            distances: vec![0; 3 * per_pair],
            threshold: 10,
            reward_per_node: FEE / 3,
        }])
        .await;
    }

    /// An image task revealed by all three nodes with the pHashes of `pngs`, settled as validated.
    pub async fn validated_image_task(&self, task_id: u64, pngs: &[Vec<u8>]) {
        self.start_task(
            task_id,
            TaskKind::Image,
            pngs.len() as u8,
            B256::repeat_byte(0x42),
        )
        .await;
        let phashes: Vec<u64> = pngs.iter().map(|png| phash(png)).collect();
        for slot in 0..3 {
            self.reveal_image(task_id, slot, phashes.clone()).await;
        }
        self.settle(task_id, TaskStatus::Validated, 0b111, pngs.len())
            .await;
    }

    /// Stored rows and blob files: what a rejected request must leave unchanged.
    pub async fn stored(&self) -> Stored {
        Stored {
            blobs: self.store().count_rows(CountedTable::Blobs).await.unwrap(),
            results: self
                .store()
                .count_rows(CountedTable::Results)
                .await
                .unwrap(),
            result_items: self
                .store()
                .count_rows(CountedTable::ResultItems)
                .await
                .unwrap(),
            // Objects in the harness's store: local files or its prefix of the S3 bucket.
            blob_files: self.state.inner().blobs.count().await.unwrap(),
        }
    }

    pub async fn send(
        &self,
        method: &str,
        uri: &str,
        body: impl Into<Body>,
    ) -> (StatusCode, Vec<u8>) {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .body(body.into())
            .unwrap();
        let response = self.router().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        (status, bytes)
    }

    pub async fn send_json(
        &self,
        method: &str,
        uri: &str,
        body: impl Into<Body>,
    ) -> (StatusCode, serde_json::Value) {
        let (status, bytes) = self.send(method, uri, body).await;
        let value = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!(
                "{method} {uri}: body is not JSON: {}",
                String::from_utf8_lossy(&bytes)
            )
        });
        (status, value)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    pub blobs: u64,
    pub results: u64,
    pub result_items: u64,
    pub blob_files: usize,
}

/// The error code of a JSON error body.
pub fn error_code(body: &serde_json::Value) -> &str {
    body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error body: {body}"))
}

/// A `size`×`size` RGB gradient PNG; `seed` changes the pattern (and so the pHash).
pub fn gradient_png(seed: u8, size: u32) -> Vec<u8> {
    gradient_png_with(seed, size, image::codecs::png::CompressionType::Default)
}

/// Like [`gradient_png`] with another PNG compression: same pixels (and pHash), other bytes.
pub fn gradient_png_with(
    seed: u8,
    size: u32,
    compression: image::codecs::png::CompressionType,
) -> Vec<u8> {
    let image = image::RgbImage::from_fn(size, size, |x, y| {
        let s = u32::from(seed);
        let r = ((x * (3 + s) + y * s) * 255 / (size * (4 + s))) as u8;
        let g = (((size - 1 - y) * (2 + s % 5) + x * (s % 3)) * 255 / (size * (3 + s % 5 + s % 3)))
            as u8;
        let b = (((x ^ y) + s * 17) % 256) as u8;
        image::Rgb([r, g, b])
    });
    let mut out = Cursor::new(Vec::new());
    let encoder = image::codecs::png::PngEncoder::new_with_quality(
        &mut out,
        compression,
        image::codecs::png::FilterType::Adaptive,
    );
    image::ImageEncoder::write_image(
        encoder,
        image.as_raw(),
        size,
        size,
        image::ExtendedColorType::Rgb8,
    )
    .unwrap();
    out.into_inner()
}

/// pHash as the relayer computes it.
pub fn phash(png: &[u8]) -> u64 {
    verinfer_phash::phash_bytes(png).unwrap().0
}

/// The example image args of `verinfer-task` (valid under its schema).
pub fn valid_image_args() -> Vec<u8> {
    include_bytes!("../../../crates/task/examples/image_args.json").to_vec()
}

/// A database migrated only up to schema `version` (an older relayer's), holding one validated
/// one-image task 7 (schema v2 columns) run by `nodes` with `agreeing_mask` and `distances`
/// (JSON); returns the temp dir keeping it and its URL, for tests of later migrations.
pub async fn old_database_with_task(
    version: i64,
    nodes: [Address; 3],
    agreeing_mask: u8,
    distances: &str,
) -> (tempfile::TempDir, String) {
    use sqlx::Connection as _;
    let dir = tempfile::tempdir().unwrap();
    let url = test_database_url(&dir).await;
    sqlx::any::install_default_drivers();
    let url = if url.starts_with("sqlite:") {
        format!("{url}?mode=rwc")
    } else {
        url
    };
    let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
    sqlx::migrate!("./migrations")
        .run_to(version, &mut conn)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO tasks (task_id, creator, kind, status, image_count, min_vram_mib, args_hash, gpu_model, fee, \
         node0, node1, node2, committed_mask, revealed_mask, invalid_mask, commit_deadline, reveal_deadline, \
         agreeing_mask, distances, threshold, reward_per_node, created_block, updated_block, seed_block, fee_level, \
         params_version, expires_at) VALUES (7, $1, 'image', 'validated', 1, 8192, $2, $2, '100', $3, $4, $5, 7, 7, 0, \
         10, 20, $6, $7, 10, '31', 3, 9, 2, 1, 1, 5000)",
    )
    .bind(format!("{:#x}", Address::repeat_byte(0xcc)))
    .bind(format!("{:#x}", B256::repeat_byte(1)))
    .bind(format!("{:#x}", nodes[0]))
    .bind(format!("{:#x}", nodes[1]))
    .bind(format!("{:#x}", nodes[2]))
    .bind(i64::from(agreeing_mask))
    .bind(distances)
    .execute(&mut conn)
    .await
    .unwrap();
    for (slot, node) in nodes.iter().enumerate() {
        sqlx::query(
            "INSERT INTO task_nodes (task_id, slot, node, invalid_args) VALUES (7, $1, $2, 0)",
        )
        .bind(slot as i64)
        .bind(format!("{node:#x}"))
        .execute(&mut conn)
        .await
        .unwrap();
    }
    conn.close().await.unwrap();
    (dir, url)
}

/// A full task's `TaskCreated` (fee [`FEE`]) and its `TaskStarted` on `nodes`.
pub fn created_and_started(
    task_id: u64,
    kind: TaskKind,
    image_count: u8,
    args_hash: B256,
    nodes: [Address; 3],
) -> [VerinferEvent; 2] {
    [
        VerinferEvent::TaskCreated {
            task_id,
            creator: Address::repeat_byte(0xcc),
            kind,
            args_hash,
            image_count,
            min_vram_mib: 16_384,
            gpu_model: B256::ZERO,
            fee: FEE,
            mode: ValidationMode::Full,
        },
        VerinferEvent::TaskStarted {
            task_id,
            nodes,
            commit_deadline: 1_000,
            reveal_deadline: 2_000,
            seed_block: 1,
        },
    ]
}
