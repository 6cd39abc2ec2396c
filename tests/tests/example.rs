//! Runs `crates/client/examples/create_and_fetch.rs` as a user would (a child process with
//! `VERINFER_KEY` set and the README's arguments, in a fresh working directory) against a real
//! network of three honest nodes, and checks that it creates the task, sees it validated, and
//! writes images whose pHashes are what the chain recorded. The binary is the example's file
//! compiled as this crate's `create_and_fetch` bin (see tests/Cargo.toml), not `cargo run`.

use std::{
    process::{ExitStatus, Stdio},
    time::{Duration, Instant},
};

use tokio::{io::AsyncReadExt, process::Command};
use verinfer_abi::{TaskKind, TaskStatus};
use verinfer_client::RevealedResult;
use verinfer_e2e::{FUNDS, Network, NetworkParams, NodeSpec, Result, TOKEN};

/// The fee the example pays: none given, so the network minimum for two images (0.01 token +
/// 0.001 per image on the test network).
const EXAMPLE_FEE: u128 = TOKEN / 100 + 2 * TOKEN / 1_000;
/// The example's run: one task through the 30 s commit and 6 s reveal windows, plus the fetch.
const RUN_TIMEOUT: Duration = Duration::from_secs(240);

/// A child process in its own process group; the whole group is killed once the child exited, on
/// a timeout, and when this is dropped (a failed assertion, a panic), so that the example never
/// outlives the test.
struct Child {
    child: tokio::process::Child,
    pgid: Option<u32>,
    stdout: tokio::task::JoinHandle<String>,
    stderr: tokio::task::JoinHandle<String>,
}

/// What a finished child printed.
struct Output {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

impl Child {
    fn spawn(command: &mut Command) -> Result<Self> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()?;
        let pgid = child.id();
        let stdout = read_all(child.stdout.take().ok_or("no stdout pipe")?);
        let stderr = read_all(child.stderr.take().ok_or("no stderr pipe")?);
        Ok(Self {
            child,
            pgid,
            stdout,
            stderr,
        })
    }

    /// Waits for the child to exit; kills it (and its group) and fails the test after `timeout`.
    async fn wait(mut self, what: &str, timeout: Duration) -> Result<Output> {
        let started = Instant::now();
        let status = match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(status) => status?,
            Err(_) => {
                self.kill_group();
                let _ = self.child.wait().await;
                let (stdout, stderr) = self.output().await;
                panic!(
                    "{what} did not finish within {timeout:?}; killed it\n--- stdout\n{stdout}--- stderr\n{stderr}"
                );
            }
        };
        // The example has exited; its group may only hold strays now, and those go too.
        self.kill_group();
        let elapsed = started.elapsed();
        let (stdout, stderr) = self.output().await;
        Ok(Output {
            status,
            stdout,
            stderr,
            elapsed,
        })
    }

    async fn output(&mut self) -> (String, String) {
        let stdout = (&mut self.stdout).await.unwrap_or_default();
        let stderr = (&mut self.stderr).await.unwrap_or_default();
        (stdout, stderr)
    }

    fn kill_group(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pgid}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.kill_group();
    }
}

fn read_all(
    mut pipe: impl tokio::io::AsyncRead + Unpin + Send + 'static,
) -> tokio::task::JoinHandle<String> {
    tokio::spawn(async move {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes).await;
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn the_create_and_fetch_example_creates_waits_and_writes_images_the_chain_vouches_for()
-> Result<()> {
    let mut net = Network::start(NetworkParams::default()).await?;
    for gpu in ["e2e-gpu-a", "e2e-gpu-a", "e2e-gpu-b"] {
        net.add_node(NodeSpec::honest(gpu)).await?;
    }
    let cwd = tempfile::tempdir()?;
    let key = alloy::hex::encode_prefixed(net.creator_key().to_bytes());
    let deployment = net.deployment_path();
    let run = Child::spawn(
        Command::new(env!("CARGO_BIN_EXE_create_and_fetch"))
            .arg(net.rpc_url().as_str())
            .arg(net.relayer_url().as_str())
            .arg(&deployment)
            .arg(&net.models().sd.digest)
            .env("VERINFER_KEY", &key)
            .current_dir(cwd.path()),
    )?
    .wait("the create_and_fetch example", RUN_TIMEOUT)
    .await?;
    println!(
        "--- example stdout ({:.1?})\n{}--- example stderr\n{}",
        run.elapsed, run.stdout, run.stderr
    );
    assert!(
        run.status.success(),
        "the example failed: {}\n{}\n{}",
        run.status,
        run.stdout,
        run.stderr
    );

    // `task <id> created (fee <units> token units, tx 0x…)`, progress lines,
    // `task <id> is Validated`, the summary, `wrote …`.
    let task_id: u64 = run
        .stdout
        .lines()
        .find_map(|line| {
            line.strip_prefix("task ")?
                .split_once(&format!(" created (fee {EXAMPLE_FEE} token units, tx 0x"))?
                .0
                .parse()
                .ok()
        })
        .ok_or_else(|| format!("no `task <id> created` line:\n{}", run.stdout))?;
    assert!(
        run.stdout
            .lines()
            .any(|line| line == format!("task {task_id} is Validated")),
        "{}",
        run.stdout
    );
    let wrote: Vec<&str> = run
        .stdout
        .lines()
        .filter_map(|line| line.strip_prefix("wrote "))
        .collect();
    assert_eq!(
        wrote,
        ["task-images/image-0.png", "task-images/image-1.png"],
        "{}",
        run.stdout
    );

    // The chain: the example's task, created and paid for by the creator, validated by all three.
    let report = net.client().task_report(task_id).await?;
    assert_eq!(report.task.status, TaskStatus::Validated, "{report:#?}");
    assert_eq!(report.task.kind, TaskKind::Image);
    assert_eq!(
        (
            report.task.creator,
            report.task.fee,
            report.task.image_count
        ),
        (net.creator(), EXAMPLE_FEE, 2)
    );
    assert_eq!(report.nodes.len(), 3);
    assert!(
        report.nodes.iter().all(|node| node.agreed == Some(true)),
        "{report:#?}"
    );
    assert_eq!(
        net.balance(net.creator()).await?,
        FUNDS - EXAMPLE_FEE,
        "the creator paid the fee"
    );

    // The files: PNGs whose pHashes are the ones an agreeing node revealed on chain.
    let mut phashes = Vec::new();
    for index in 0..2 {
        let path = cwd.path().join(format!("task-images/image-{index}.png"));
        let png = std::fs::read(&path).map_err(|error| format!("{}: {error}", path.display()))?;
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n"),
            "{} is not a PNG",
            path.display()
        );
        phashes.push(verinfer_phash::phash_bytes(&png)?.0);
    }
    let revealed: Vec<&Vec<u64>> = report
        .nodes
        .iter()
        .filter_map(|node| match &node.revealed {
            Some(RevealedResult::Images(hashes)) => Some(hashes),
            _ => None,
        })
        .collect();
    assert_eq!(revealed.len(), 3, "{report:#?}");
    assert!(
        revealed.iter().any(|hashes| **hashes == phashes),
        "the written images' pHashes {phashes:016x?} are none of the revealed {revealed:016x?}"
    );
    let hex: Vec<String> = phashes.iter().map(|p| format!("{p:016x}")).collect();
    assert!(
        run.stdout
            .contains(&format!("(recomputed: {})", hex.join(", "))),
        "{}",
        run.stdout
    );

    net.stop().await;
    Ok(())
}
