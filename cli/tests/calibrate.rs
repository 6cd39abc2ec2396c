//! `verinfer calibrate` against a relayer served on a loopback port (no chain: its database is
//! seeded with synthetic events), and against none.

use std::process::Command;

use alloy::primitives::{Address, B256};
use verinfer_abi::{TaskKind, TaskStatus, ValidationMode, VerinferEvent};
use verinfer_relayer::{Relayer, RelayerConfig};

const BIN: &str = env!("CARGO_BIN_EXE_verinfer");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn an_unreachable_relayer_is_said_so() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let output = Command::new(BIN)
        .args(["calibrate", "--relayer", &url])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("cannot reach the relayer at"), "{stderr}");
    assert!(stderr.contains(&url), "{stderr}");
}

/// 40 validated one-image tasks on two H100s and an RTX 4090 at distances 0, 3, 4.
async fn seed(relayer: &Relayer) {
    let store = &relayer.state().inner().store;
    let nodes = [
        Address::repeat_byte(1),
        Address::repeat_byte(2),
        Address::repeat_byte(3),
    ];
    let mut block = 1;
    let joins: Vec<_> = nodes
        .iter()
        .enumerate()
        .map(|(i, &node)| VerinferEvent::NodeJoined {
            node,
            node_id: i as u32 + 1,
            gpu_model: B256::repeat_byte(i as u8 / 2 + 1),
            gpu_model_name: if i < 2 { "h100" } else { "rtx 4090" }.into(),
            vram_mib: 24_564,
            stake: 1_000,
            fee_tier: 0,
        })
        .collect();
    store.apply_synthetic_events(block, &joins).await.unwrap();
    for task_id in 1..=40 {
        block += 1;
        let events = [
            VerinferEvent::TaskCreated {
                task_id,
                creator: Address::repeat_byte(0xcc),
                kind: TaskKind::Image,
                args_hash: B256::repeat_byte(0x42),
                image_count: 1,
                min_vram_mib: 16_384,
                gpu_model: B256::ZERO,
                fee: 10,
                mode: ValidationMode::Full,
            },
            VerinferEvent::TaskStarted {
                task_id,
                nodes,
                commit_deadline: 1_000,
                reveal_deadline: 2_000,
                seed_block: 1,
            },
            VerinferEvent::TaskSettled {
                task_id,
                outcome: TaskStatus::Validated,
                agreeing_mask: 0b111,
                distances: vec![0, 3, 4],
                threshold: 10,
                reward_per_node: 3,
            },
        ];
        store.apply_synthetic_events(block, &events).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prints_the_table_and_the_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    let config = RelayerConfig {
        data_dir: dir.path().to_path_buf(),
        chain_id: Some(31337),
        verinfer: Some(Address::repeat_byte(0x5a)),
        deploy_block: Some(0),
        ..RelayerConfig::default()
    };
    let relayer = Relayer::from_config(&config).await.unwrap();
    seed(&relayer).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(relayer.serve(listener, async move {
        let _ = stopped.await;
    }));

    let run = |json: bool| {
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            let mut command = Command::new(BIN);
            command.args(["calibrate", "--relayer", &url]);
            if json {
                command.arg("--json");
            }
            command.output().unwrap()
        })
    };
    let table = run(false).await.unwrap();
    let json = run(true).await.unwrap();
    let _ = stop.send(());
    server.await.unwrap().unwrap();

    let stdout = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&table.stderr)
    );
    println!("{stdout}");
    // No parameters indexed: the threshold is unknown, the suggestion still made.
    assert!(stdout.contains("threshold in force: unknown"), "{stdout}");
    assert!(
        stdout.contains("40 validated image task(s) read"),
        "{stdout}"
    );
    assert!(stdout.contains("h100 × h100"), "{stdout}");
    assert!(stdout.contains("h100 × rtx 4090"), "{stdout}");
    assert!(stdout.contains("0/0/0"), "{stdout}");
    assert!(stdout.contains("3/4/4"), "{stdout}");
    assert!(stdout.contains("suggested threshold: 4 bits"), "{stdout}");
    assert!(stdout.contains("rule: "), "{stdout}");

    assert!(json.status.success());
    let view: verinfer_wire::types::CalibrationView = serde_json::from_slice(&json.stdout)
        .unwrap_or_else(|error| panic!("{error}: {}", String::from_utf8_lossy(&json.stdout)));
    assert_eq!(view.tasks_read, 40);
    assert_eq!(view.pairs, 120);
    assert_eq!(view.suggestion.threshold, Some(4));
}
