//! The official OpenAI Python SDK against the gateway of `verinfer devnet --keep-running`, and
//! its answers checked against the chain, independently of the gateway.
//!
//! 1. A virtual environment `target/openai-venv` with the `openai` version pinned in
//!    `tests/openai/requirements.txt` (made once, remade when the pin changes; `VERINFER_PYTHON`
//!    names another interpreter than `python3`).
//! 2. `verinfer devnet --keep-running` (state in a temp dir, the tiny models shared with
//!    tests/devnet.rs), up to its `export OPENAI_BASE_URL=... OPENAI_API_KEY=...` line.
//! 3. `tests/openai/sdk_check.py` with the SDK: the models list, a chat completion, the same
//!    streamed, two images as `b64_json`, one as a `url` (downloaded), and the SDK's exceptions
//!    for a wrong key (401), an unknown model (404) and invalid requests (400). It prints what it
//!    got as JSON.
//! 4. Each answer against the chain with `verinfer_client`: the text equals the output whose
//!    digest the agreeing nodes revealed (finish reason and completion tokens too), and every
//!    image's recomputed pHash equals an agreeing node's on-chain reveal.
//!
//! Needs `npm ci` (anvil, forge), Python 3 with `venv`, and PyPI the first time. Without Python
//! or PyPI the test says why and passes, unless `VERINFER_REQUIRE_OPENAI=1` (CI), where it fails.
//!
//! `cargo test -p verinfer --test gateway_openai -- --nocapture` shows the SDK's progress.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

mod support;

use support::KeptDevnet;

use alloy::{
    primitives::{Address, B256, U256},
    providers::Provider,
    signers::local::PrivateKeySigner,
};
use serde_json::Value;
use verinfer_client::{
    Client, Deployment, ResultReport, RevealedResult, TaskStatus, Validation, VerifiedResult,
};
use verinfer_task::{FinishReason, TextOutput};

/// With `1`, a missing Python, venv or PyPI fails the test instead of skipping it.
const REQUIRE: &str = "VERINFER_REQUIRE_OPENAI";

/// How long the SDK script may take in all (validation by three nodes on CPUs, four tasks).
const SDK_CHECK_TIMEOUT: Duration = Duration::from_secs(1500);

/// How long a validated task's result may take to reach the relayer.
const RESULT_TIMEOUT: Duration = Duration::from_secs(60);

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("cli/ is in the repository")
}

fn target_dir() -> &'static Path {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR is target/tmp")
}

fn requirements() -> PathBuf {
    repo_root().join("tests/openai/requirements.txt")
}

/// The exact `openai` version `requirements.txt` pins (`openai==X.Y.Z`).
fn pinned_version() -> String {
    let path = requirements();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    text.lines()
        .find_map(|line| line.trim().strip_prefix("openai=="))
        .map(|version| version.trim().to_owned())
        .unwrap_or_else(|| panic!("{} pins no `openai==<version>`", path.display()))
}

/// The `openai` version importable by `python`, if any.
fn installed_version(python: &Path) -> Option<String> {
    let output = Command::new(python)
        .args(["-c", "import openai; print(openai.__version__)"])
        .stdin(Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Skips the test (`None`) saying why, or fails it under `VERINFER_REQUIRE_OPENAI=1`.
fn unavailable<T>(why: &str) -> Option<T> {
    if std::env::var(REQUIRE).as_deref() == Ok("1") {
        panic!("{REQUIRE}=1 and {why}");
    }
    eprintln!("gateway OpenAI SDK test skipped: {why} (set {REQUIRE}=1 to fail instead)");
    None
}

/// Runs a set-up command; its failure (or absence) as text.
fn set_up(command: &mut Command, what: &str) -> Result<(), String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|error| format!("cannot run {what}: {error}"))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
    Err(format!(
        "{what} failed ({}):\n{}",
        output.status,
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    ))
}

/// The venv's python with the pinned SDK: `target/openai-venv`, reused when it has the pin.
fn sdk_python() -> Option<PathBuf> {
    let pin = pinned_version();
    let venv = target_dir().join("openai-venv");
    let python = venv.join("bin").join("python");
    if installed_version(&python).as_deref() == Some(pin.as_str()) {
        return Some(python);
    }
    let base = std::env::var_os("VERINFER_PYTHON").unwrap_or_else(|| "python3".into());
    let base_name = base.to_string_lossy().into_owned();
    eprintln!(
        "making {} with openai=={pin} ({base_name} -m venv, pip install)",
        venv.display()
    );
    if let Err(why) = set_up(
        Command::new(&base)
            .args(["-m", "venv", "--clear"])
            .arg(&venv),
        &format!("`{base_name} -m venv` (Python 3 with venv)"),
    ) {
        return unavailable(&why);
    }
    if let Err(why) = set_up(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
                "-r",
            ])
            .arg(requirements()),
        &format!("`pip install openai=={pin}` (PyPI reachable?)"),
    ) {
        return unavailable(&why);
    }
    match installed_version(&python) {
        Some(version) if version == pin => Some(python),
        other => unavailable(&format!(
            "{} imports openai {other:?} after installing {pin}",
            python.display()
        )),
    }
}

/// The `NAME=value` words of a line the devnet printed (`  export A=1 B=2`), when it has all of
/// `names` (the line `OPENAI_BASE_URL=(\S+) OPENAI_API_KEY=(\S+)` is matched this way).
fn exports(line: &str, names: &[&str]) -> Option<Vec<(String, String)>> {
    let pairs: Vec<(String, String)> = line
        .split_whitespace()
        .filter_map(|word| {
            let (name, value) = word.split_once('=')?;
            let plain = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            (plain && !value.is_empty()).then(|| (name.to_owned(), value.to_owned()))
        })
        .collect();
    names
        .iter()
        .all(|name| pairs.iter().any(|(n, _)| n == name))
        .then_some(pairs)
}

/// `verinfer devnet --keep-running`, up to its two export lines (the verinfer connection and
/// the gateway's OpenAI one).
struct Devnet {
    /// Stopped when the test ends or fails.
    kept: KeptDevnet,
    /// `VERINFER_KEY`, `VERINFER_RPC_URL`, `VERINFER_RELAYER_URL`, `VERINFER_DEPLOYMENT`.
    verinfer: Vec<(String, String)>,
    /// `OPENAI_BASE_URL`, `OPENAI_API_KEY`.
    openai: Vec<(String, String)>,
}

const VERINFER_EXPORTS: [&str; 4] = [
    "VERINFER_KEY",
    "VERINFER_RPC_URL",
    "VERINFER_RELAYER_URL",
    "VERINFER_DEPLOYMENT",
];
const OPENAI_EXPORTS: [&str; 2] = ["OPENAI_BASE_URL", "OPENAI_API_KEY"];

impl Devnet {
    fn start(data: &Path) -> Devnet {
        let mut kept = KeptDevnet::start(data, &[]);
        let verinfer = kept
            .stdout
            .lines()
            .find_map(|line| exports(line, &VERINFER_EXPORTS))
            .unwrap_or_else(|| kept.failed("no `export VERINFER_KEY=...` line"));
        // The connection help is printed at once: once its verinfer part is out, the gateway's
        // line comes within seconds or not at all.
        let line = kept.read_until(
            |line| exports(line, &OPENAI_EXPORTS).is_some(),
            Duration::from_secs(20),
            "its connection help has no `export OPENAI_BASE_URL=... OPENAI_API_KEY=...` \
             line (does the devnet start `verinfer gateway`?)",
        );
        let openai = exports(&line, &OPENAI_EXPORTS).expect("read_until matched it");
        Devnet {
            kept,
            verinfer,
            openai,
        }
    }

    /// The value of `name` on one of the export lines.
    fn export(&self, name: &str) -> &str {
        self.verinfer
            .iter()
            .chain(&self.openai)
            .find(|(n, _)| n == name)
            .map(|(_, value)| value.as_str())
            .unwrap_or_else(|| panic!("no {name}= on the export lines:\n{}", self.kept.stdout))
    }

    /// The devnet's stderr so far, for failure messages.
    fn stderr(&self) -> String {
        self.kept.stderr()
    }

    /// A chain client from the printed `VERINFER_*` values (as `verinfer task` builds one).
    fn client(&self) -> Client {
        let deployment = Deployment::load(self.export("VERINFER_DEPLOYMENT"))
            .unwrap_or_else(|error| panic!("the printed deployment: {error}"));
        let signer: PrivateKeySigner = self
            .export("VERINFER_KEY")
            .parse()
            .expect("VERINFER_KEY is a hex key");
        Client::new(
            self.export("VERINFER_RPC_URL").parse().unwrap(),
            signer,
            deployment,
            self.export("VERINFER_RELAYER_URL").parse().unwrap(),
        )
    }
}

/// Runs `tests/openai/sdk_check.py` against the gateway; its JSON answers.
fn run_sdk_check(python: &Path, devnet: &Devnet, dir: &Path) -> Value {
    let script = repo_root().join("tests/openai/sdk_check.py");
    let stdout_path = dir.join("sdk_check.stdout");
    let stderr_path = dir.join("sdk_check.stderr");
    let mut child = Command::new(python)
        .arg(&script)
        .env("OPENAI_BASE_URL", devnet.export("OPENAI_BASE_URL"))
        .env("OPENAI_API_KEY", devnet.export("OPENAI_API_KEY"))
        // Nothing from the caller's OpenAI set-up, and no proxy for the local gateway.
        .env_remove("OPENAI_ORG_ID")
        .env_remove("OPENAI_PROJECT_ID")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot run {}: {error}", python.display()));
    let deadline = Instant::now() + SDK_CHECK_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let stdout = std::fs::read_to_string(&stdout_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    eprintln!("{stderr}");
    let failed = |why: &str| -> ! {
        panic!(
            "{}: {why}\nits stderr:\n{stderr}\nits stdout:\n{stdout}\n\
             devnet stdout:\n{}\ndevnet stderr:\n{}",
            script.display(),
            devnet.kept.stdout,
            devnet.stderr()
        )
    };
    match status {
        None => failed(&format!(
            "still running after {SDK_CHECK_TIMEOUT:?}; killed"
        )),
        Some(status) if !status.success() => failed(&format!("failed ({status})")),
        Some(_) => {}
    }
    serde_json::from_str(&stdout).unwrap_or_else(|error| failed(&format!("not JSON: {error}")))
}

/// The OpenAI name of a finish reason (stop sequences are `stop` in OpenAI's API).
fn openai_finish_reason(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::Stop | FinishReason::StopSequence => "stop",
        FinishReason::Length => "length",
    }
}

/// Standard base64 (with or without padding) to bytes.
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("{:?} is not base64", char::from(c)),
        }
    };
    let digits: Vec<u8> = text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
        .collect();
    let mut bytes = Vec::with_capacity(digits.len() * 3 / 4);
    for group in digits.chunks(4) {
        let mut bits = 0u32;
        for (i, &c) in group.iter().enumerate() {
            bits |= value(c) << (18 - 6 * i);
        }
        let out = [(bits >> 16) as u8, (bits >> 8) as u8, bits as u8];
        bytes.extend_from_slice(&out[..group.len().saturating_sub(1)]);
    }
    bytes
}

fn str_field<'a>(value: &'a Value, field: &str, what: &str) -> &'a str {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: no string {field:?} in {value}"))
}

fn task_id(verinfer: &Value, what: &str) -> u64 {
    verinfer["task_id"]
        .as_u64()
        .unwrap_or_else(|| panic!("{what}: no task_id in {verinfer}"))
}

/// The result of `task_id` fetched from the relayer and verified against the chain by the client
/// (not the gateway), written under `dir`.
async fn verified_result(client: &Client, task_id: u64, dir: &Path, what: &str) -> ResultReport {
    let out = dir.join(format!("task-{task_id}"));
    let result = client
        .fetch_result_when_ready(task_id, &out, RESULT_TIMEOUT)
        .await
        .unwrap_or_else(|error| panic!("{what}: task {task_id}'s verified result: {error}"));
    assert_eq!(
        result.report.task.status,
        TaskStatus::Validated,
        "{what}: task {task_id} on chain"
    );
    result
}

/// Checks the `verinfer` object's `tx` and `nodes` against the chain.
async fn check_tx_and_nodes(client: &Client, verinfer: &Value, result: &ResultReport, what: &str) {
    let task_id = result.task_id;
    let tx: B256 = str_field(verinfer, "tx", what)
        .parse()
        .unwrap_or_else(|error| panic!("{what}: verinfer.tx: {error}"));
    let receipt = client
        .provider()
        .get_transaction_receipt(tx)
        .await
        .unwrap_or_else(|error| panic!("{what}: receipt of {tx}: {error}"))
        .unwrap_or_else(|| panic!("{what}: verinfer.tx {tx} is not on the chain"));
    assert!(receipt.status(), "{what}: verinfer.tx {tx} reverted");
    // Every task event indexes the task id first.
    let topic = B256::from(U256::from(task_id));
    assert!(
        receipt
            .logs()
            .iter()
            .any(|log| log.address() == client.deployment().verinfer
                && log.topics().get(1) == Some(&topic)),
        "{what}: verinfer.tx {tx} emitted no event of task {task_id}"
    );
    let selected = result.report.task.nodes;
    let nodes = verinfer["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: no verinfer.nodes in {verinfer}"));
    assert!(!nodes.is_empty(), "{what}: verinfer.nodes is empty");
    for node in nodes {
        let address: Address = node
            .as_str()
            .and_then(|node| node.parse().ok())
            .unwrap_or_else(|| panic!("{what}: verinfer.nodes holds {node}, not an address"));
        assert!(
            selected.contains(&address),
            "{what}: verinfer.nodes names {address}, not a node of task {task_id} ({selected:?})"
        );
    }
}

/// A chat answer (`chat` or `stream` of the script's JSON) against the chain; the verified output.
async fn check_text(client: &Client, answer: &Value, dir: &Path, what: &str) -> TextOutput {
    let verinfer = &answer["verinfer"];
    let id = task_id(verinfer, what);
    let result = verified_result(client, id, dir, what).await;
    let VerifiedResult::Text { digest, output } = &result.verified else {
        panic!(
            "{what}: task {id} is not a text task: {:?}",
            result.verified
        );
    };
    assert_eq!(
        result.report.validation(),
        Validation::Full,
        "{what}: task {id}"
    );
    assert_eq!(
        str_field(answer, "text", what),
        output.text,
        "{what}: the SDK's text is not task {id}'s verified output"
    );
    assert_eq!(
        str_field(answer, "finish_reason", what),
        openai_finish_reason(output.finish_reason),
        "{what}: finish_reason against task {id}'s {:?}",
        output.finish_reason
    );
    let claimed: B256 = str_field(verinfer, "digest", what)
        .parse()
        .unwrap_or_else(|error| panic!("{what}: verinfer.digest: {error}"));
    assert_eq!(
        claimed, *digest,
        "{what}: verinfer.digest is not the digest revealed on chain"
    );
    if let Some(usage) = answer["usage"].as_object() {
        assert_eq!(
            usage["completion_tokens"].as_u64(),
            Some(output.token_ids.len() as u64),
            "{what}: usage.completion_tokens against task {id}'s {} tokens",
            output.token_ids.len()
        );
    }
    check_tx_and_nodes(client, verinfer, &result, what).await;
    output.clone()
}

/// PNG bytes: 64x64 (IHDR), and their pHash.
fn png_phash(png: &[u8], what: &str) -> u64 {
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{what}: not a PNG");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!((width, height), (64, 64), "{what}: size");
    verinfer_phash::phash_bytes(png)
        .unwrap_or_else(|error| panic!("{what}: {error}"))
        .0
}

/// Images the SDK got against the pHashes the agreeing nodes revealed on chain; returns them.
async fn check_images(
    client: &Client,
    pngs: &[Vec<u8>],
    verinfer: &Value,
    dir: &Path,
    what: &str,
) -> Vec<u64> {
    let id = task_id(verinfer, what);
    let result = verified_result(client, id, dir, what).await;
    let VerifiedResult::Images {
        phashes: verified, ..
    } = &result.verified
    else {
        panic!(
            "{what}: task {id} is not an image task: {:?}",
            result.verified
        );
    };
    let computed: Vec<u64> = pngs
        .iter()
        .enumerate()
        .map(|(i, png)| png_phash(png, &format!("{what}: image {i}")))
        .collect();
    let agreeing: Vec<(Address, &Vec<u64>)> = result
        .report
        .nodes
        .iter()
        .filter(|node| node.agreed == Some(true))
        .filter_map(|node| match &node.revealed {
            Some(RevealedResult::Images(phashes)) => Some((node.address, phashes)),
            _ => None,
        })
        .collect();
    assert!(
        !agreeing.is_empty(),
        "{what}: task {id} has no agreeing node"
    );
    let hex = |phashes: &[u64]| {
        phashes
            .iter()
            .map(|p| format!("{p:016x}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    assert!(
        agreeing.iter().any(|(_, revealed)| **revealed == computed),
        "{what}: the SDK's images hash to [{}], which no agreeing node of task {id} revealed: {}",
        hex(&computed),
        agreeing
            .iter()
            .map(|(node, revealed)| format!("{node}: [{}]", hex(revealed)))
            .collect::<Vec<_>>()
            .join("; ")
    );
    let claimed: Vec<u64> = verinfer["phashes"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: no verinfer.phashes in {verinfer}"))
        .iter()
        .map(|phash| {
            phash
                .as_str()
                .and_then(|phash| u64::from_str_radix(phash, 16).ok())
                .unwrap_or_else(|| panic!("{what}: verinfer.phashes holds {phash}"))
        })
        .collect();
    assert_eq!(
        hex(&claimed),
        hex(&computed),
        "{what}: verinfer.phashes against the images' recomputed pHashes"
    );
    eprintln!(
        "{what}: task {id}: pHashes [{}] = an agreeing node's reveal (the client verified [{}])",
        hex(&computed),
        hex(verified)
    );
    check_tx_and_nodes(client, verinfer, &result, what).await;
    computed
}

#[test]
fn the_openai_sdk_gets_answers_the_chain_validated() {
    let Some(python) = sdk_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let devnet = Devnet::start(dir.path());
    let base_url = devnet.export("OPENAI_BASE_URL");
    assert!(
        base_url.starts_with("http://127.0.0.1:") && base_url.ends_with("/v1"),
        "OPENAI_BASE_URL={base_url}"
    );
    let answers = run_sdk_check(&python, &devnet, dir.path());

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = devnet.client();

        // (b) and (c): the text, plain and streamed, is the output the nodes revealed.
        let output = check_text(&client, &answers["chat"], dir.path(), "chat completion").await;
        let streamed = check_text(
            &client,
            &answers["stream"],
            dir.path(),
            "streamed chat completion",
        )
        .await;
        assert_eq!(
            streamed, output,
            "the same request (temperature 0, seed 7) streamed gave another output"
        );
        assert_eq!(
            answers["stream"]["usage"], answers["chat"]["usage"],
            "usage of the same request, plain and streamed (include_usage)"
        );
        eprintln!(
            "chat: tasks {} and {}: {:?} ({:?}, {} tokens), verified on chain",
            answers["chat"]["verinfer"]["task_id"],
            answers["stream"]["verinfer"]["task_id"],
            output.text,
            output.finish_reason,
            output.token_ids.len()
        );

        // (d): two images as b64_json.
        let images = &answers["images"];
        let pngs: Vec<Vec<u8>> = images["b64_json"]
            .as_array()
            .unwrap_or_else(|| panic!("no images.b64_json in {images}"))
            .iter()
            .map(|image| base64_decode(image.as_str().expect("b64_json strings")))
            .collect();
        assert_eq!(pngs.len(), 2, "n=2");
        check_images(
            &client,
            &pngs,
            &images["verinfer"],
            dir.path(),
            "images (b64_json)",
        )
        .await;

        // (e): one image by URL, as downloaded.
        let by_url = &answers["image_url"];
        let png = base64_decode(str_field(by_url, "png_b64", "image (url)"));
        check_images(
            &client,
            &[png],
            &by_url["verinfer"],
            dir.path(),
            "image (url)",
        )
        .await;
    });

    // (f): the SDK raised the right exceptions (checked by the script; said here).
    for (case, status) in [
        ("wrong_api_key", 401),
        ("unknown_model", 404),
        ("max_tokens_0", 400),
        ("size_65x64", 400),
    ] {
        assert_eq!(
            answers["errors"][case]["status"].as_u64(),
            Some(status),
            "{case}: {}",
            answers["errors"][case]
        );
    }
}

#[test]
fn base64_decodes_padded_and_unpadded() {
    assert_eq!(base64_decode("aGVsbG8="), b"hello");
    assert_eq!(base64_decode("aGVsbG8"), b"hello");
    assert_eq!(base64_decode("aGk="), b"hi");
    assert_eq!(base64_decode("aGV5"), b"hey");
    assert_eq!(base64_decode(""), b"");
}

#[test]
fn export_lines_parse() {
    let line = "  export OPENAI_BASE_URL=http://127.0.0.1:4242/v1 OPENAI_API_KEY=vk-abc";
    assert_eq!(
        exports(line, &["OPENAI_BASE_URL", "OPENAI_API_KEY"]),
        Some(vec![
            ("OPENAI_BASE_URL".into(), "http://127.0.0.1:4242/v1".into()),
            ("OPENAI_API_KEY".into(), "vk-abc".into()),
        ])
    );
    // A log line naming the URL alone is not the export line.
    let log =
        "gateway serving on http://127.0.0.1:4242/v1; OPENAI_BASE_URL=http://127.0.0.1:4242/v1";
    assert_eq!(exports(log, &["OPENAI_BASE_URL", "OPENAI_API_KEY"]), None);
}
