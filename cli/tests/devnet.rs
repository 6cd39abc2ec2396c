//! End-to-end runs of the built `verinfer devnet`: real anvil, forge deployment, relayer and nodes.
//!
//! Needs `npm ci` (anvil and forge from node_modules). The runs share one models directory and
//! run one at a time (each one is CPU-heavy on a small machine).

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    sync::Mutex,
    time::{Duration, Instant},
};

/// anvil's first dev key: the devnet's deployer and so the contract's owner.
const ANVIL_KEY_0: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

/// One devnet at a time: they share the models directory and the machine's cores.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("devnet-models")
}

fn devnet(data_dir: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_verinfer"));
    command
        .arg("devnet")
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--models-dir")
        .arg(models_dir())
        .args(["--timeout-secs", "240"])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    command
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The anvil pid the devnet printed (`anvil listening on ... (pid N)`).
fn anvil_pid(stdout: &str) -> Option<u32> {
    let line = stdout
        .lines()
        .find(|line| line.contains("anvil listening on"))?;
    line.rsplit("(pid ")
        .next()?
        .trim_end_matches(')')
        .parse()
        .ok()
}

/// Whether `pid` is a live process (zombies count as gone).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit(") ")
            .next()
            .is_some_and(|rest| !rest.starts_with('Z')),
        Err(_) => false,
    }
}

fn wait_gone(pid: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// The table line of a task: `task <id> | <kind> ... | <status> | fee ...`.
fn task_line<'a>(stdout: &'a str, kind: &str) -> Option<&'a str> {
    stdout
        .lines()
        .find(|line| line.starts_with("task ") && line.contains(&format!("| {kind}")))
}

#[test]
fn devnet_validates_an_image_task_and_a_text_task() {
    let _serial = serial();
    let data = tempfile::tempdir().unwrap();
    let output = devnet(data.path(), &[]).output().unwrap();
    let (stdout, stderr) = text(&output);
    assert!(
        output.status.success(),
        "devnet failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );

    let image =
        task_line(&stdout, "image").unwrap_or_else(|| panic!("no image task line:\n{stdout}"));
    assert!(
        image.contains("| image (2 images) | Validated |"),
        "{image}"
    );
    let text_task =
        task_line(&stdout, "text").unwrap_or_else(|| panic!("no text task line:\n{stdout}"));
    assert!(text_task.contains("| text | Validated |"), "{text_task}");
    assert!(
        stdout.contains("pairwise pHash Hamming distances per image (threshold 10 bits)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("verdict: Validated (nodes 0, 1, 2 agree"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("kicked"),
        "an honest devnet slashes nobody:\n{stdout}"
    );
    assert!(stdout.contains("devnet-gpu-a"), "{stdout}");

    // The image task's verified images, written where the devnet said.
    let written = stdout
        .lines()
        .find(|line| line.contains("verified result written to") && line.contains("image-0.png"))
        .unwrap_or_else(|| panic!("no images written:\n{stdout}"));
    let dir = written
        .split("written to ")
        .nth(1)
        .and_then(|rest| rest.split(" (").next())
        .unwrap();
    for name in ["image-0.png", "image-1.png"] {
        let png = std::fs::read(Path::new(dir).join(name)).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{name} is not a PNG");
    }

    let pid = anvil_pid(&stdout).expect("the devnet prints anvil's pid");
    assert!(wait_gone(pid), "anvil {pid} outlived the devnet");
}

#[test]
fn devnet_with_a_cheater_slashes_it() {
    let _serial = serial();
    let data = tempfile::tempdir().unwrap();
    let output = devnet(data.path(), &["--cheater"]).output().unwrap();
    let (stdout, stderr) = text(&output);
    assert!(
        output.status.success(),
        "devnet --cheater failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );

    let image = task_line(&stdout, "image").unwrap();
    assert!(
        image.contains("Validated"),
        "two honest nodes still validate the image task: {image}"
    );
    let cheater_row = stdout
        .lines()
        .find(|line| line.contains("(Disagreed, kicked)"))
        .unwrap_or_else(|| panic!("no slashed node in the table:\n{stdout}"));
    // Half of the 1000-token minimum stake (slash share 50 %).
    assert!(
        cheater_row.contains(" 500 (Disagreed, kicked)"),
        "{cheater_row}"
    );
    assert!(
        cheater_row.contains("devnet-gpu-b (24 GiB)"),
        "{cheater_row}"
    );
    assert!(stdout.contains("some > 10: disagree"), "{stdout}");
    assert!(stdout.contains("cheater caught: 500 tokens"), "{stdout}");
    assert!(
        task_line(&stdout, "text").unwrap().contains("Validated"),
        "{stdout}"
    );
}

#[test]
fn a_taken_port_fails_with_a_clear_message_and_starts_nothing() {
    let _serial = serial();
    let data = tempfile::tempdir().unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let output = devnet(data.path(), &["--port", &port]).output().unwrap();
    let (stdout, stderr) = text(&output);
    assert!(
        !output.status.success(),
        "must fail on a taken port\n{stdout}"
    );
    assert!(
        stderr.contains(&format!("port {port} is already in use on 127.0.0.1")),
        "{stderr}"
    );
    assert!(stderr.contains("--port"), "{stderr}");
    assert!(
        anvil_pid(&stdout).is_none(),
        "no anvil may start:\n{stdout}"
    );

    let output = devnet(data.path(), &["--relayer-port", &port])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert!(!output.status.success());
    assert!(
        stderr.contains(&format!("port {port} is already in use"))
            && stderr.contains("--relayer-port"),
        "{stderr}"
    );
    assert!(
        anvil_pid(&stdout).is_none(),
        "no anvil may start:\n{stdout}"
    );
}

#[test]
fn a_failure_after_anvil_started_stops_anvil() {
    let _serial = serial();
    let data = tempfile::tempdir().unwrap();
    // The contract refuses a zero commit window: the deployment fails after anvil is up.
    let output = devnet(data.path(), &["--commit-window", "0"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert!(!output.status.success(), "must fail\n{stdout}");
    assert!(
        stderr.contains("forge script script/Deploy.s.sol failed"),
        "{stderr}"
    );
    let pid = anvil_pid(&stdout).unwrap_or_else(|| panic!("anvil should have started:\n{stdout}"));
    assert!(
        wait_gone(pid),
        "anvil {pid} was left running after the failure"
    );
}

/// Runs the devnet until anvil is up, then sends `signal`; anvil must be gone afterwards.
fn stop_with_signal(signal: &str) {
    use std::io::{BufRead, BufReader};
    let data = tempfile::tempdir().unwrap();
    let mut child = devnet(data.path(), &["--keep-running"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let pid = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| anvil_pid(&line));
    // Keep reading so that the devnet never writes into a closed pipe.
    let drain = std::thread::spawn(move || lines.for_each(drop));
    let pid = pid.expect("the devnet prints anvil's pid");
    assert!(alive(pid));
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    child.wait().unwrap();
    drain.join().unwrap();
    assert!(
        wait_gone(pid),
        "anvil {pid} survived {signal} of the devnet"
    );
}

#[test]
fn ctrl_c_stops_anvil() {
    let _serial = serial();
    stop_with_signal("-INT");
}

#[test]
fn a_killed_devnet_takes_anvil_with_it() {
    let _serial = serial();
    stop_with_signal("-KILL");
}

/// The value after `label` on the devnet's `--keep-running` help lines (`  RPC         http://...`).
fn field(lines: &[String], label: &str) -> String {
    lines
        .iter()
        .find_map(|line| {
            line.trim_start()
                .strip_prefix(label)
                .map(|rest| rest.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no {label:?} line in {lines:#?}"))
}

fn cast_nonce(rpc: &str, address: &str) -> String {
    let root = verinfer_devchain::repo_root();
    let cast = verinfer_devchain::foundry_tool(&root, verinfer_devchain::FoundryTool::Cast)
        .expect("cast (run `npm ci`)");
    let output = Command::new(cast)
        .args(["nonce", address, "--rpc-url", rpc])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

#[test]
fn task_commands_create_follow_and_fetch_verified_results_on_a_running_devnet() {
    use std::io::{BufRead, BufReader};
    let _serial = serial();
    let data = tempfile::tempdir().unwrap();
    let mut devnet_process = devnet(data.path(), &["--keep-running"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(devnet_process.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok);
    let mut help = Vec::new();
    for line in lines.by_ref() {
        let done = line.contains("verinfer task result");
        help.push(line);
        if done {
            break;
        }
    }
    let drain = std::thread::spawn(move || lines.for_each(drop));
    let rpc = field(&help, "RPC");
    let relayer = field(&help, "relayer");
    let deployment = field(&help, "deployment");
    let creator = field(&help, "creator")
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let key = help
        .iter()
        .find_map(|line| {
            line.trim()
                .strip_prefix("export VERINFER_KEY=")
                .map(|rest| rest.split_whitespace().next().unwrap().to_owned())
        })
        .expect("the devnet prints the creator's key");
    let task = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_verinfer"))
            .arg("task")
            .args(args)
            .args([
                "--rpc-url",
                &rpc,
                "--relayer",
                &relayer,
                "--deployment",
                &deployment,
            ])
            .env("VERINFER_KEY", &key)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    };
    let admin = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_verinfer"))
            .arg("admin")
            .args(args)
            .args(["--rpc-url", &rpc, "--deployment", &deployment])
            .env("VERINFER_OWNER_KEY", ANVIL_KEY_0)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    };
    let llama = models_dir().join("tiny-llama");
    let sd = models_dir().join("tiny-sd");

    // The registry: the deploy script's models and the fleet's, with their available nodes.
    let listed = admin(&["gpu-model", "list"]);
    let (stdout, stderr) = text(&listed);
    assert!(listed.status.success(), "{stdout}\n{stderr}");
    let row = |name: &str| -> Vec<String> {
        stdout
            .lines()
            .find(|line| line.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in {stdout}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(row("devnet-gpu-a")[1..4], ["8192", "yes", "3"], "{stdout}");
    assert_eq!(row("devnet-gpu-b")[1..4], ["24576", "yes", "2"], "{stdout}");
    let shown = admin(&["params", "show"]);
    let (stdout, _) = text(&shown);
    assert!(
        shown.status.success()
            && stdout.contains("  min task fee            0.01 tokens")
            && stdout.contains("  min image fee           0.001 tokens per image"),
        "{stdout}"
    );

    // Bad args: refused before anything is sent.
    let nonce = cast_nonce(&rpc, &creator);
    let refused = task(&[
        "create",
        "--image",
        "--prompt",
        "a red bicycle",
        "--model",
        sd.to_str().unwrap(),
        "--width",
        "65",
    ]);
    let (stdout, stderr) = text(&refused);
    assert!(!refused.status.success(), "{stdout}");
    assert!(
        stderr.contains("width") && stderr.contains("before any gas is spent"),
        "{stderr}"
    );
    let refused = task(&[
        "create",
        "--text",
        "--prompt",
        "hi",
        "--model",
        llama.to_str().unwrap(),
        "--max-tokens",
        "0",
    ]);
    assert!(!refused.status.success());
    assert!(
        text(&refused).1.contains("max_tokens"),
        "{}",
        text(&refused).1
    );
    assert_eq!(
        cast_nonce(&rpc, &creator),
        nonce,
        "a refused task sends no transaction"
    );

    // A fee below the network minimum: refused before anything is sent.
    let refused = task(&[
        "create",
        "--text",
        "--prompt",
        "hi",
        "--model",
        llama.to_str().unwrap(),
        "--fee",
        "0.001",
    ]);
    assert!(!refused.status.success());
    assert!(
        text(&refused)
            .1
            .contains("fee 0.001 tokens is below the network's minimum of 0.01 tokens"),
        "{}",
        text(&refused).1
    );
    assert_eq!(cast_nonce(&rpc, &creator), nonce);

    // A text task through the CLI, waited for; no --gpu-model: the registered model with the
    // most available nodes (devnet-gpu-a, three nodes) is chosen.
    let created = task(&[
        "create",
        "--text",
        "--prompt",
        "Once upon a time",
        "--model",
        llama.to_str().unwrap(),
        "--max-tokens",
        "8",
        "--fee",
        "1.5",
        "--wait",
    ]);
    let (stdout, stderr) = text(&created);
    assert!(created.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("fee 1.5 tokens, 150.00x the network minimum of 0.01 tokens")
            && stdout.contains(
                "GPU model \"devnet-gpu-a\" (8192 MiB), chosen: the registered model with the most available nodes (3)"
            ),
        "{stdout}"
    );
    let id = stdout
        .lines()
        .find_map(|line| {
            line.strip_prefix("task ")
                .and_then(|rest| rest.split(" created").next())
        })
        .and_then(|id| id.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no task id in {stdout}"));
    assert!(
        stdout.contains(&format!("task {id} | text | Validated | fee 1.5 tokens")),
        "{stdout}"
    );

    let status = task(&["status", &id.to_string()]);
    let (stdout, _) = text(&status);
    assert!(status.status.success());
    assert!(
        stdout.contains("| text | Validated |") && stdout.contains("devnet-gpu-a"),
        "{stdout}"
    );
    assert!(stdout.contains("relayer: indexed as"), "{stdout}");

    let out = data.path().join("fetched");
    let fetched = task(&["result", &id.to_string(), "--out", out.to_str().unwrap()]);
    let (stdout, stderr) = text(&fetched);
    assert!(fetched.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("verified the text output of task {id}")),
        "{stdout}"
    );
    let output: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("output.json")).unwrap()).unwrap();
    let tokens = output["token_ids"]
        .as_array()
        .map(Vec::len)
        .unwrap_or_default();
    assert!(tokens <= 8, "at most --max-tokens tokens: {output}");
    let plain = std::fs::read_to_string(out.join("output.txt")).unwrap();
    assert_eq!(output["text"].as_str(), Some(plain.as_str()));

    // A task no node can serve (its model is registered, no node has it) waits in its queue;
    // it has not expired yet; its creator cancels it and gets the fee back. No --fee: the
    // network minimum.
    let unregistered = task(&[
        "create",
        "--text",
        "--prompt",
        "nobody runs this",
        "--model",
        llama.to_str().unwrap(),
        "--gpu-model",
        "gpu-nobody-has",
    ]);
    assert!(!unregistered.status.success());
    assert!(
        text(&unregistered)
            .1
            .contains("GPU model \"gpu-nobody-has\" is not registered"),
        "{}",
        text(&unregistered).1
    );
    let added = admin(&[
        "gpu-model",
        "add",
        "--name",
        "gpu-nobody-has",
        "--vram-mib",
        "4096",
    ]);
    assert!(added.status.success(), "{}", text(&added).1);
    let queued = task(&[
        "create",
        "--text",
        "--prompt",
        "nobody runs this",
        "--model",
        llama.to_str().unwrap(),
        "--max-tokens",
        "4",
        "--gpu-model",
        "gpu-nobody-has",
    ]);
    let (stdout, stderr) = text(&queued);
    assert!(queued.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("fee 0.01 tokens: the network minimum")
            && stdout.contains("queued until a draw finds three suitable nodes"),
        "{stdout}"
    );
    let queued_id = stdout
        .lines()
        .find_map(|line| {
            line.strip_prefix("task ")
                .and_then(|rest| rest.split(" created").next())
        })
        .and_then(|id| id.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no task id in {stdout}"));
    let early = task(&["expire", &queued_id.to_string()]);
    assert!(!early.status.success());
    assert!(
        text(&early)
            .1
            .contains(&format!("task {queued_id} expires at")),
        "{}",
        text(&early).1
    );
    let cancelled = task(&["cancel", &queued_id.to_string()]);
    let (stdout, stderr) = text(&cancelled);
    assert!(cancelled.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("task {queued_id} cancelled"))
            && stdout.contains("fee of 0.01 tokens refunded"),
        "{stdout}"
    );
    // Cancelling sends the fee back at once: nothing is credited, nothing to withdraw.
    let withdraw = Command::new(env!("CARGO_BIN_EXE_verinfer"))
        .arg("withdraw")
        .args(["--rpc-url", &rpc, "--deployment", &deployment])
        .env("VERINFER_KEY", &key)
        .output()
        .unwrap();
    assert!(!withdraw.status.success());
    assert!(
        text(&withdraw).1.contains("nothing to withdraw"),
        "{}",
        text(&withdraw).1
    );
    let status = task(&["status", &queued_id.to_string()]);
    assert!(
        text(&status)
            .0
            .contains(&format!("task {queued_id} | text | Cancelled |")),
        "{}",
        text(&status).0
    );
    let again = task(&["cancel", &queued_id.to_string()]);
    assert!(!again.status.success());
    assert!(
        text(&again)
            .1
            .contains("only a task still queued can be cancelled"),
        "{}",
        text(&again).1
    );
    let validated = task(&["cancel", &id.to_string()]);
    assert!(
        !validated.status.success(),
        "a validated task cannot be cancelled"
    );

    let missing = task(&["status", "999"]);
    assert!(!missing.status.success());
    assert!(
        text(&missing)
            .1
            .contains("task 999 does not exist on chain"),
        "{}",
        text(&missing).1
    );

    Command::new("kill")
        .args(["-INT", &devnet_process.id().to_string()])
        .status()
        .unwrap();
    assert!(
        devnet_process.wait().unwrap().success(),
        "Ctrl-C after --keep-running is a clean exit"
    );
    drain.join().unwrap();
}

#[test]
fn the_load_benchmark_validates_every_task_and_reports_throughput() {
    let _serial = serial();
    let data = tempfile::tempdir().unwrap();
    let output = devnet(data.path(), &["--load-tasks", "5", "--extra-nodes", "2"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert!(
        output.status.success(),
        "devnet --load-tasks failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert_eq!(
        stdout.matches(" joined as ").count(),
        7,
        "five demo nodes and two extra ones\n{stdout}"
    );
    let summary = stdout
        .lines()
        .find(|line| line.starts_with("load: 5 image tasks (1 image"))
        .unwrap_or_else(|| panic!("no load summary in\n{stdout}"));
    assert!(summary.contains("on 7 nodes: 5 validated in"), "{summary}");
    assert!(summary.contains("tasks validated per minute"), "{summary}");
    // Three agreeing nodes upload each validated task's images.
    assert!(
        summary.contains("relayer verified 15 result uploads"),
        "{summary}"
    );
    // No node (nor the creator) paid for a transaction that failed: the reveal that happens to be
    // last settles the task, and its gas limit covers that whoever it is.
    assert!(summary.ends_with("; 0 reverted transactions"), "{summary}");

    let refused = devnet(data.path(), &["--load-tasks", "901"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        text(&refused).1.contains("--load-tasks"),
        "{}",
        text(&refused).1
    );
}
