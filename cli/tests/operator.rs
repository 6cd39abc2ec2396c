//! THE README WALKTHROUGH, RUN FOR REAL: the "Walkthrough" section of README.md (a. chain
//! deployer, b. node operator, c. dApp builder) as one test, with every command a real child
//! process — the test-profile `verinfer` binary, and anvil, forge and cast through
//! `scripts/foundry.sh` — exactly as a person would type them:
//!
//! 1. `scripts/foundry.sh anvil --port P --block-time 1 --mixed-mining`
//! 2. deployer: `scripts/foundry.sh forge script script/Deploy.s.sol --rpc-url R --broadcast` (env
//!    parameters), `cast call … params()`, `cast send … setValidationParams(…)`, token transfers
//! 3. `verinfer model make-tiny --out models`, `verinfer model digest models/tiny-sd`,
//!    `verinfer identity`
//! 4. relayer: `verinfer relayer --print-example-config > relayer.toml` (edited),
//!    `verinfer relayer --config relayer.toml --check`, `verinfer relayer --config relayer.toml`
//!    (listen address from `VERINFER_RELAYER__LISTEN`)
//! 5. three nodes: `VERINFER_NODE_KEY=… verinfer node run --config nodeN.toml` (one of them with
//!    a keystore made by `cast wallet import`, one with its `[identity]` from
//!    `VERINFER_NODE__IDENTITY__*`), then `verinfer node status --config node1.toml`
//! 6. dApp builder, connection from `VERINFER_KEY`, `VERINFER_RPC_URL`, `VERINFER_RELAYER_URL`,
//!    `VERINFER_DEPLOYMENT`: `verinfer task create --text … --wait`, `task status`,
//!    `task result --out`, then the same for `task create --image …`
//! 7. the relayer's HTTP routes (`/healthz`, `/metrics`, `/v1/tasks/{id}`, `…/args`,
//!    `…/results`, `/v1/blobs/{hash}`, `/v1/nodes`) and a node's `/metrics`
//! 8. Ctrl-C (SIGINT) to every node and the relayer: each exits with status 0.
//!
//! Needs `npm ci` (anvil, forge and cast from node_modules). Every child's stdout and stderr go to
//! files in the test's temporary directory; failures show their tails. Every child is killed when
//! the test panics (drop guards). The deployment record is written under
//! `deployments/.operator-test-<pid>/` (foundry.toml lets scripts write only under ./deployments)
//! and that directory is removed again.

use std::{
    fs::File,
    io::{Read as _, Write as _},
    net::{TcpListener, TcpStream, ToSocketAddrs as _},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

/// anvil's first dev key (the deployer; `script/Deploy.s.sol`'s default).
const ANVIL_KEY_0: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
/// anvil's second dev key (node 1).
const ANVIL_KEY_1: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
/// The GPU model all three nodes declare, so that a text task can take them.
const GPU_MODEL: &str = "operator-gpu";
/// Eighteen zeros: `format!("1000{TOKEN}")` is 1000 tokens in base units (18 decimals).
const TOKEN: &str = "000000000000000000";
/// Password of node 3's keystore.
const KEYSTORE_PASSWORD: &str = "walkthrough password";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A port that was free a moment ago on 127.0.0.1.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The last `lines` lines of a file (empty when unreadable).
fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A command with a clean `VERINFER_*` environment, no stdin, readable logs.
fn command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut command = Command::new(program);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("VERINFER_") {
            command.env_remove(name);
        }
    }
    command
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    command
}

fn verinfer() -> Command {
    command(env!("CARGO_BIN_EXE_verinfer"))
}

/// `bash scripts/foundry.sh <tool>`, run from the repository root.
fn foundry(tool: &str) -> Command {
    let mut command = command("bash");
    command
        .current_dir(repo_root())
        .arg("scripts/foundry.sh")
        .arg(tool);
    command
}

/// A child process whose stdout and stderr go to `<logs>/<name>.stdout|stderr`; killed when
/// dropped while still running.
struct Proc {
    name: String,
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Proc {
    fn spawn(name: &str, mut command: Command, logs: &Path) -> Self {
        let stdout = logs.join(format!("{name}.stdout"));
        let stderr = logs.join(format!("{name}.stderr"));
        let child = command
            .stdout(File::create(&stdout).unwrap())
            .stderr(File::create(&stderr).unwrap())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {name} ({command:?}): {error}"));
        Self {
            name: name.to_owned(),
            child,
            stdout,
            stderr,
        }
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Both tails, for assertion messages.
    fn tails(&self) -> String {
        format!(
            "--- {} stdout (tail) ---\n{}\n--- {} stderr (tail) ---\n{}\n",
            self.name,
            tail(&self.stdout, 40),
            self.name,
            tail(&self.stderr, 40)
        )
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// Waits up to `timeout` for the process to exit.
    fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Ctrl-C (`kill -INT <pid>`) or a service manager's stop (`kill -TERM <pid>`).
    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(
            status.success(),
            "kill {signal} {} ({}) failed",
            self.child.id(),
            self.name
        );
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What a finished command printed.
struct Ran {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    line: String,
}

impl Ran {
    fn context(&self) -> String {
        let lines = |text: &str| {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(40)..].join("\n")
        };
        format!(
            "command: {}\nstatus: {}\n--- stdout (tail) ---\n{}\n--- stderr (tail) ---\n{}",
            self.line,
            self.status,
            lines(&self.stdout),
            lines(&self.stderr)
        )
    }

    /// Panics (with both outputs and `extra`) unless the command exited 0.
    fn ok(self, extra: impl FnOnce() -> String) -> Self {
        assert!(self.status.success(), "{}\n{}", self.context(), extra());
        self
    }
}

/// Runs a command to completion (at most `timeout`), its output logged under `logs/<name>.*`.
fn run(name: &str, command: Command, logs: &Path, timeout: Duration) -> Ran {
    let line = format!("{command:?}");
    let mut proc = Proc::spawn(name, command, logs);
    let status = proc
        .wait_timeout(timeout)
        .unwrap_or_else(|| panic!("{line} did not finish within {timeout:?}\n{}", proc.tails()));
    Ran {
        status,
        stdout: proc.stdout(),
        stderr: proc.stderr(),
        line,
    }
}

/// Polls `check` every 200 ms until it gives a value or `timeout` passes.
fn wait_for<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A plain HTTP/1.1 GET (`Connection: close`): the status code and the body.
fn http_get(base: &str, path: &str) -> std::io::Result<(u16, Vec<u8>)> {
    let authority = base
        .strip_prefix("http://")
        .expect("an http:// URL")
        .trim_end_matches('/');
    let address = authority
        .to_socket_addrs()?
        .next()
        .expect("a socket address");
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let split = response
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no end of headers"))?;
    let head = String::from_utf8_lossy(&response[..split]).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line in {head:?}")))?;
    let mut body = response[split + 4..].to_vec();
    if head
        .lines()
        .any(|line| line.starts_with("transfer-encoding:") && line.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Ok((status, body))
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    while let Some(end) = data.windows(2).position(|window| window == b"\r\n") {
        let size_text = String::from_utf8_lossy(&data[..end]);
        let size =
            usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = end + 2;
        body.extend_from_slice(&data[start..(start + size).min(data.len())]);
        data = &data[(start + size + 2).min(data.len())..];
    }
    body
}

/// GET that must answer 200 with JSON.
fn get_json(base: &str, path: &str, context: &dyn Fn() -> String) -> serde_json::Value {
    let (status, body) = http_get(base, path)
        .unwrap_or_else(|error| panic!("GET {base}{path}: {error}\n{}", context()));
    assert_eq!(
        status,
        200,
        "GET {path}: {}\n{}",
        String::from_utf8_lossy(&body),
        context()
    );
    serde_json::from_slice(&body).unwrap_or_else(|error| {
        panic!(
            "GET {path} is not JSON ({error}): {}",
            String::from_utf8_lossy(&body)
        )
    })
}

/// The dev accounts anvil prints in its banner: (address, private key), in order.
fn anvil_accounts(banner: &str) -> Vec<(String, String)> {
    let section = |title: &str| -> Vec<String> {
        banner
            .lines()
            .skip_while(|line| line.trim() != title)
            .skip(1)
            .map(str::trim)
            .skip_while(|line| line.is_empty() || line.starts_with('='))
            .take_while(|line| line.starts_with('('))
            .filter_map(|line| line.split_whitespace().nth(1).map(str::to_owned))
            .collect()
    };
    section("Available Accounts")
        .into_iter()
        .zip(section("Private Keys"))
        .collect()
}

/// The first whitespace-separated word of every line of `cast call`'s output (it appends
/// `[1.2e21]` to large numbers).
fn cast_values(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// `task <id> created (...)`: the id.
fn created_id(stdout: &str) -> Option<u64> {
    stdout.lines().find_map(|line| {
        line.strip_prefix("task ")?
            .split_once(" created (")?
            .0
            .parse()
            .ok()
    })
}

/// Removes a directory when dropped (the deployment staging directory under the repository).
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// TOML basic string (paths and URLs here hold no quotes or backslashes).
fn toml_string(value: impl AsRef<str>) -> String {
    let value = value.as_ref();
    assert!(!value.contains(['"', '\\']), "{value}");
    format!("\"{value}\"")
}

#[test]
fn readme_walkthrough_deployer_operator_and_dapp_builder() {
    let started = Instant::now();
    let step = |what: &str| eprintln!("[{:6.1}s] {what}", started.elapsed().as_secs_f64());
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let root = repo_root();
    let short = Duration::from_secs(60);

    // ---------------------------------------------------------------- anvil
    let anvil_port = free_port();
    let rpc = format!("http://127.0.0.1:{anvil_port}");
    let mut anvil_command = foundry("anvil");
    anvil_command.args([
        "--port",
        &anvil_port.to_string(),
        "--block-time",
        "1",
        "--mixed-mining",
    ]);
    // Declared first: dropped (killed) last, after every node and the relayer.
    let mut anvil = Proc::spawn("anvil", anvil_command, &logs);
    wait_for(Duration::from_secs(30), || {
        anvil.stdout().contains("Listening on").then_some(())
    })
    .unwrap_or_else(|| panic!("anvil is not listening after 30 s\n{}", anvil.tails()));
    assert!(anvil.exited().is_none(), "anvil exited\n{}", anvil.tails());
    let accounts = anvil_accounts(&anvil.stdout());
    assert!(
        accounts.len() >= 5,
        "anvil's banner lists fewer than 5 accounts:\n{}",
        anvil.stdout()
    );
    assert_eq!(
        accounts[0].1, ANVIL_KEY_0,
        "anvil's account 0 is the deploy script's default key"
    );
    assert_eq!(accounts[1].1, ANVIL_KEY_1);
    let (deployer, deployer_key) = accounts[0].clone();
    let nodes_accounts = accounts[1..4].to_vec();
    let (creator, creator_key) = accounts[4].clone();
    step(&format!("anvil listening on {rpc}"));

    // ---------------------------------------------------------------- a. chain deployer
    let staging = RemoveOnDrop(
        root.join("deployments")
            .join(format!(".operator-test-{}", std::process::id())),
    );
    let _ = std::fs::remove_dir_all(&staging.0);
    let mock_mint = format!("1000000{TOKEN}"); // one million tokens to the deployer
    let mut forge = foundry("forge");
    forge
        .args([
            "script",
            "script/Deploy.s.sol",
            "--rpc-url",
            &rpc,
            "--broadcast",
        ])
        .env("DEPLOYER_PRIVATE_KEY", &deployer_key)
        .env("VERINFER_COMMIT_WINDOW", "60")
        .env("VERINFER_REVEAL_WINDOW", "60")
        .env("VERINFER_MOCK_MINT", &mock_mint)
        .env("VERINFER_DEPLOYMENTS_DIR", &staging.0);
    run("forge-script", forge, &logs, Duration::from_secs(300)).ok(|| anvil.tails());
    let written = staging.0.join("31337.json");
    assert!(written.is_file(), "forge wrote no {}", written.display());
    let deployments = dir.join("deployments");
    std::fs::create_dir_all(&deployments).unwrap();
    let deployment_path = deployments.join("31337.json");
    std::fs::copy(&written, &deployment_path).unwrap();
    drop(staging);
    let deployment: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&deployment_path).unwrap()).unwrap();
    assert_eq!(deployment["chainId"], 31337, "{deployment}");
    assert_eq!(deployment["mockToken"], true, "{deployment}");
    assert_eq!(
        deployment["owner"].as_str().map(str::to_lowercase),
        Some(deployer.to_lowercase()),
        "{deployment}"
    );
    let verinfer_address = deployment["verinfer"].as_str().unwrap().to_owned();
    let token = deployment["stakingToken"].as_str().unwrap().to_owned();
    step(&format!(
        "deployed: Verinfer {verinfer_address}, token {token}"
    ));

    let cast = |name: &str, args: &[&str]| {
        let mut command = foundry("cast");
        command.args(args).args(["--rpc-url", &rpc]);
        run(name, command, &logs, short).ok(String::new)
    };
    let balance = cast(
        "cast-balance",
        &["call", &token, "balanceOf(address)(uint256)", &deployer],
    );
    assert_eq!(
        cast_values(&balance.stdout),
        std::slice::from_ref(&mock_mint),
        "VERINFER_MOCK_MINT went to the deployer"
    );

    // The README's owner example, verbatim values: threshold 12, minStake 1200e18, 100e18 per bit.
    let params_signature = "params()(uint8,uint96,uint96,uint16,uint16,uint32,uint32)";
    let params = cast(
        "cast-params-before",
        &["call", &verinfer_address, params_signature],
    );
    assert_eq!(
        cast_values(&params.stdout),
        [
            "10",
            &format!("1000{TOKEN}"),
            &format!("100{TOKEN}"),
            "5000",
            "500",
            "60",
            "60"
        ],
        "deployed with the defaults and the windows given"
    );
    let min_stake = format!("1200{TOKEN}");
    cast(
        "cast-set-validation-params",
        &[
            "send",
            &verinfer_address,
            "setValidationParams(uint8,uint96,uint96)",
            "12",
            &min_stake,
            &format!("100{TOKEN}"),
            "--private-key",
            &deployer_key,
        ],
    );
    let params = cast(
        "cast-params-after",
        &["call", &verinfer_address, params_signature],
    );
    assert_eq!(
        cast_values(&params.stdout)[..3],
        ["12".to_owned(), min_stake.clone(), format!("100{TOKEN}")]
    );

    // Stake for the nodes and the fee for the creator, from the deployer's minted tokens.
    for (index, (address, _)) in nodes_accounts.iter().enumerate() {
        let amount = format!("10000{TOKEN}");
        let args = [
            "send",
            &token,
            "transfer(address,uint256)",
            address,
            &amount,
            "--private-key",
            &deployer_key,
        ];
        cast(&format!("cast-fund-node{}", index + 1), &args);
    }
    let creator_funds = format!("100{TOKEN}");
    let args = [
        "send",
        &token,
        "transfer(address,uint256)",
        &creator,
        &creator_funds,
        "--private-key",
        &deployer_key,
    ];
    cast("cast-fund-creator", &args);
    step("validation params set, nodes and creator funded");

    // ---------------------------------------------------------------- models
    let models = dir.join("models");
    let mut make = verinfer();
    make.args(["model", "make-tiny", "--out"]).arg(&models);
    let made = run("make-tiny", make, &logs, Duration::from_secs(120)).ok(String::new);
    for name in ["tiny-sd", "tiny-sdxl", "tiny-llama"] {
        assert!(
            models.join(name).is_dir(),
            "make-tiny wrote no {name}:\n{}",
            made.context()
        );
    }
    let mut digest = verinfer();
    digest
        .arg("model")
        .arg("digest")
        .arg(models.join("tiny-sd"));
    let digest = run("model-digest", digest, &logs, short).ok(String::new);
    let sd_digest = digest
        .stdout
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    assert!(
        sd_digest.starts_with("sha256:") && sd_digest.len() == 7 + 64,
        "{}",
        digest.context()
    );
    assert!(
        made.stdout.contains(&sd_digest),
        "make-tiny prints the same digests:\n{}",
        made.context()
    );
    let mut identity = verinfer();
    identity.arg("identity");
    let identity = run("identity", identity, &logs, short).ok(String::new);
    assert!(
        identity.stdout.contains("model: ") && identity.stdout.contains("vram_mib: "),
        "{}",
        identity.context()
    );
    step("tiny models made");

    // ---------------------------------------------------------------- b. relayer
    let mut example = verinfer();
    example.args(["relayer", "--print-example-config"]);
    let example = run("relayer-print-example", example, &logs, short).ok(String::new);
    assert_eq!(
        example.stdout,
        std::fs::read_to_string(root.join("relayer/relayer.example.toml")).unwrap(),
        "--print-example-config prints relayer/relayer.example.toml"
    );
    let parsed = verinfer_relayer::RelayerConfig::from_toml_str(&example.stdout)
        .unwrap_or_else(|error| panic!("the printed example does not parse: {error}"));
    assert_eq!(parsed.listen.to_string(), "127.0.0.1:8645");
    // relayer.toml = the example with this network's values; `listen` stays the example's and is
    // overridden through the environment below.
    let relayer_data = dir.join("relayer-data");
    let mut relayer_toml = example.stdout.clone();
    for (line, value) in [
        (
            "rpc_url = \"http://127.0.0.1:8545\"",
            format!("rpc_url = {}", toml_string(&rpc)),
        ),
        (
            "deployment = \"deployments/31337.json\"",
            format!(
                "deployment = {}",
                toml_string(deployment_path.to_str().unwrap())
            ),
        ),
        (
            "data_dir = \"relayer-data\"",
            format!("data_dir = {}", toml_string(relayer_data.to_str().unwrap())),
        ),
        (
            "poll_interval_ms = 1000",
            "poll_interval_ms = 250".to_owned(),
        ),
    ] {
        assert!(
            relayer_toml.contains(line),
            "the example has no line {line:?}"
        );
        relayer_toml = relayer_toml.replacen(line, &value, 1);
    }
    let relayer_config = dir.join("relayer.toml");
    std::fs::write(&relayer_config, &relayer_toml).unwrap();
    let relayer_port = free_port();
    let relayer_listen = format!("127.0.0.1:{relayer_port}");
    let relayer_url = format!("http://{relayer_listen}");

    let relayer_check = |name: &str, listen_override: Option<&str>| {
        let mut check = verinfer();
        check
            .current_dir(dir)
            .args(["relayer", "--config"])
            .arg(&relayer_config)
            .arg("--check");
        if let Some(listen) = listen_override {
            check.env("VERINFER_RELAYER__LISTEN", listen);
        }
        let ran = run(name, check, &logs, short).ok(|| anvil.tails());
        let effective: serde_json::Value = serde_json::from_str(&ran.stdout)
            .unwrap_or_else(|error| panic!("--check prints no JSON ({error})\n{}", ran.context()));
        assert!(ran.stderr.contains("configuration ok"), "{}", ran.context());
        effective
    };
    let effective = relayer_check("relayer-check-file", None);
    assert_eq!(effective["listen"], "127.0.0.1:8645", "{effective}");
    assert_eq!(
        effective["rpc_url"]
            .as_str()
            .map(|url| url.trim_end_matches('/')),
        Some(rpc.as_str()),
        "{effective}"
    );
    assert_eq!(effective["poll_interval_ms"], 250, "{effective}");
    assert_eq!(
        effective["data_dir"],
        relayer_data.to_str().unwrap(),
        "{effective}"
    );
    let effective = relayer_check("relayer-check-env", Some(&relayer_listen));
    assert_eq!(
        effective["listen"],
        relayer_listen.as_str(),
        "VERINFER_RELAYER__LISTEN overrides the file: {effective}"
    );

    let mut serve = verinfer();
    serve
        .current_dir(dir)
        .args(["relayer", "--config"])
        .arg(&relayer_config)
        .env("VERINFER_RELAYER__LISTEN", &relayer_listen);
    let mut relayer = Proc::spawn("relayer", serve, &logs);
    let health = wait_for(Duration::from_secs(30), || {
        match http_get(&relayer_url, "/healthz") {
            Ok((200, body)) => Some(body),
            _ => None,
        }
    })
    .unwrap_or_else(|| panic!("GET /healthz never answered 200\n{}", relayer.tails()));
    let health: serde_json::Value = serde_json::from_slice(&health).unwrap();
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["indexer"], "ok", "{health}");
    step(&format!("relayer serving on {relayer_url}"));

    // ---------------------------------------------------------------- b. nodes
    // node1 and node2: raw key in VERINFER_NODE_KEY; node3: an encrypted keystore. node2 declares
    // its GPU through VERINFER_NODE__IDENTITY__* instead of the file.
    let keystores = dir.join("keystores");
    std::fs::create_dir_all(&keystores).unwrap();
    let mut import = foundry("cast");
    import
        .args(["wallet", "import", "node3", "--keystore-dir"])
        .arg(&keystores)
        .args([
            "--private-key",
            &nodes_accounts[2].1,
            "--unsafe-password",
            KEYSTORE_PASSWORD,
        ]);
    run("cast-wallet-import", import, &logs, short).ok(String::new);
    let keystore = keystores.join("node3");
    assert!(
        keystore.is_file(),
        "cast wallet import wrote no {}",
        keystore.display()
    );
    let password_file = dir.join("node3.password");
    std::fs::write(&password_file, format!("{KEYSTORE_PASSWORD}\n")).unwrap();

    let node_metrics = format!("127.0.0.1:{}", free_port());
    let node_config = |index: usize| -> PathBuf {
        let mut toml = format!(
            "rpc_url = {}\ndeployment = {}\nrelayer_url = {}\nmodels_dir = {}\ndata_dir = {}\npoll_interval_ms = 500\n",
            toml_string(&rpc),
            toml_string(deployment_path.to_str().unwrap()),
            toml_string(&relayer_url),
            toml_string(models.to_str().unwrap()),
            toml_string(dir.join(format!("node{index}-data")).to_str().unwrap()),
        );
        if index == 1 {
            toml.push_str(&format!(
                "metrics_listen = {}\n",
                toml_string(&node_metrics)
            ));
        }
        if index == 3 {
            toml.push_str(&format!(
                "\n[key]\nkeystore = {}\npassword_file = {}\n",
                toml_string(keystore.to_str().unwrap()),
                toml_string(password_file.to_str().unwrap())
            ));
        } else {
            toml.push_str("\n[key]\nprivate_key_env = \"VERINFER_NODE_KEY\"\n");
        }
        if index != 2 {
            toml.push_str(&format!(
                "\n[identity]\ngpu_model = {}\nvram_mib = 8192\n",
                toml_string(GPU_MODEL)
            ));
        }
        let path = dir.join(format!("node{index}.toml"));
        std::fs::write(&path, toml).unwrap();
        path
    };
    let node_command = |index: usize, args: &[&str]| -> Command {
        let mut command = verinfer();
        command
            .current_dir(dir)
            .arg("node")
            .args(args)
            .arg("--config")
            .arg(node_config(index));
        match index {
            1 => {
                command.env("VERINFER_NODE_KEY", &nodes_accounts[0].1);
            }
            2 => {
                command
                    .env("VERINFER_NODE_KEY", &nodes_accounts[1].1)
                    .env("VERINFER_NODE__IDENTITY__GPU_MODEL", GPU_MODEL)
                    .env("VERINFER_NODE__IDENTITY__VRAM_MIB", "8192");
            }
            _ => {}
        }
        command
    };
    let mut nodes: Vec<Proc> = (1..=3)
        .map(|index| {
            Proc::spawn(
                &format!("node{index}"),
                node_command(index, &["run"]),
                &logs,
            )
        })
        .collect();
    let daemon_tails = |nodes: &[Proc], relayer: &Proc| -> String {
        nodes
            .iter()
            .chain([relayer])
            .map(Proc::tails)
            .collect::<Vec<_>>()
            .join("\n")
    };
    for (node, (address, _)) in nodes.iter_mut().zip(&nodes_accounts) {
        let summary = wait_for(Duration::from_secs(120), || {
            node.stdout()
                .lines()
                .find(|line| line.starts_with("node 0x"))
                .map(str::to_owned)
        });
        let summary = match summary {
            Some(summary) => summary,
            None => {
                let exited = node.exited();
                panic!(
                    "{} printed no start-up summary (exited: {exited:?})\n{}",
                    node.name,
                    node.tails()
                )
            }
        };
        assert!(
            summary.starts_with(&format!("node {address} on chain 31337 (Verinfer ")),
            "{summary}"
        );
        assert!(summary.contains(": joined as node #"), "{summary}");
        assert!(
            summary.contains(&format!("staking {min_stake} (tx 0x")),
            "joins with minStake: {summary}"
        );
        assert!(
            summary.contains(&format!(
                "declared \"{GPU_MODEL}\" with 8192 MiB; 3 model(s)"
            )),
            "{summary}"
        );
    }
    step("three nodes joined");

    let status_node1 = || {
        let ran = run("node1-status", node_command(1, &["status"]), &logs, short);
        ran.ok(|| daemon_tails(&nodes, &relayer))
    };
    let status = status_node1();
    assert!(
        status
            .stdout
            .contains(&format!("node      {}", nodes_accounts[0].0)),
        "{}",
        status.context()
    );
    assert!(
        status.stdout.contains("chain     31337 (Verinfer "),
        "{}",
        status.context()
    );
    assert!(
        status.stdout.contains(&format!("stake     {min_stake}")),
        "{}",
        status.context()
    );
    assert!(status.stdout.contains("(8192 MiB)"), "{}", status.context());

    // ---------------------------------------------------------------- c. dApp builder
    let task_command = |args: &[&str]| -> Command {
        let mut command = verinfer();
        command
            .current_dir(dir)
            .arg("task")
            .args(args)
            .env("VERINFER_KEY", &creator_key)
            .env("VERINFER_RPC_URL", &rpc)
            .env("VERINFER_RELAYER_URL", &relayer_url)
            .env("VERINFER_DEPLOYMENT", &deployment_path);
        command
    };
    let task_timeout = Duration::from_secs(150);
    let llama = models.join("tiny-llama");
    let text_args = [
        "create",
        "--text",
        "--prompt",
        "Once upon a time",
        "--model",
        llama.to_str().unwrap(),
        "--max-tokens",
        "16",
        "--gpu-model",
        GPU_MODEL,
        "--fee",
        "1",
        "--wait",
    ];
    let created = run(
        "task-create-text",
        task_command(&text_args),
        &logs,
        task_timeout,
    )
    .ok(|| daemon_tails(&nodes, &relayer));
    let text_id = created_id(&created.stdout).unwrap_or_else(|| panic!("{}", created.context()));
    assert!(
        created
            .stdout
            .contains(&format!("task {text_id} | text | Validated | fee 1 tokens")),
        "{}\n{}",
        created.context(),
        daemon_tails(&nodes, &relayer)
    );
    assert!(
        created.stdout.contains("equal: agree"),
        "{}",
        created.context()
    );
    step(&format!("text task {text_id} validated"));

    let status = run(
        "task-status-text",
        task_command(&["status", &text_id.to_string()]),
        &logs,
        short,
    )
    .ok(String::new);
    assert!(
        status
            .stdout
            .contains(&format!("task {text_id} | text | Validated |")),
        "{}",
        status.context()
    );
    assert!(status.stdout.contains(GPU_MODEL), "{}", status.context());
    assert!(
        status.stdout.contains("relayer: indexed as"),
        "{}",
        status.context()
    );

    let text_out = dir.join("result-text");
    let mut fetch = task_command(&["result", &text_id.to_string(), "--out"]);
    fetch.arg(&text_out);
    let fetched =
        run("task-result-text", fetch, &logs, short).ok(|| daemon_tails(&nodes, &relayer));
    assert!(
        fetched
            .stdout
            .contains(&format!("verified the text output of task {text_id}")),
        "{}",
        fetched.context()
    );
    let output: serde_json::Value =
        serde_json::from_slice(&std::fs::read(text_out.join("output.json")).unwrap()).unwrap();
    let plain = std::fs::read_to_string(text_out.join("output.txt")).unwrap();
    assert_eq!(output["text"].as_str(), Some(plain.as_str()));
    assert!(
        output["token_ids"]
            .as_array()
            .is_some_and(|tokens| tokens.len() <= 16),
        "{output}"
    );

    let sd = models.join("tiny-sd");
    let image_args = [
        "create",
        "--image",
        "--prompt",
        "a red bicycle",
        "--model",
        sd.to_str().unwrap(),
        "--width",
        "64",
        "--height",
        "64",
        "--steps",
        "4",
        "--num-images",
        "1",
        "--fee",
        "1",
        "--wait",
    ];
    let created = run(
        "task-create-image",
        task_command(&image_args),
        &logs,
        task_timeout,
    )
    .ok(|| daemon_tails(&nodes, &relayer));
    let image_id = created_id(&created.stdout).unwrap_or_else(|| panic!("{}", created.context()));
    assert!(
        created.stdout.contains(&format!(
            "task {image_id} | image (1 image) | Validated | fee 1 tokens"
        )),
        "{}\n{}",
        created.context(),
        daemon_tails(&nodes, &relayer)
    );
    assert!(
        created.stdout.contains("all <= 12: agree"),
        "the owner's threshold 12 applies:\n{}",
        created.context()
    );
    step(&format!("image task {image_id} validated"));

    let status = run(
        "task-status-image",
        task_command(&["status", &image_id.to_string()]),
        &logs,
        short,
    )
    .ok(String::new);
    assert!(
        status
            .stdout
            .contains(&format!("task {image_id} | image (1 image) | Validated |")),
        "{}",
        status.context()
    );
    let image_out = dir.join("result-image");
    let mut fetch = task_command(&["result", &image_id.to_string(), "--out"]);
    fetch.arg(&image_out);
    let fetched =
        run("task-result-image", fetch, &logs, short).ok(|| daemon_tails(&nodes, &relayer));
    assert!(
        fetched
            .stdout
            .contains(&format!("verified 1 image(s) of task {image_id}")),
        "{}",
        fetched.context()
    );
    let png = std::fs::read(image_out.join("image-0.png")).unwrap();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "image-0.png is not a PNG"
    );

    // ---------------------------------------------------------------- relayer HTTP API
    let context = || daemon_tails(&nodes, &relayer);
    let health = get_json(&relayer_url, "/healthz", &context);
    assert_eq!(
        (health["status"].as_str(), health["database"].as_str()),
        (Some("ok"), Some("ok")),
        "{health}"
    );
    assert!(health["indexed_head"].as_u64().is_some(), "{health}");

    let (code, metrics) = http_get(&relayer_url, "/metrics").unwrap();
    let metrics = String::from_utf8_lossy(&metrics);
    assert_eq!(code, 200, "{metrics}");
    assert!(
        metrics.contains("verinfer_relayer_upload_verifications_total"),
        "{metrics}"
    );

    for (id, kind) in [(text_id, "text"), (image_id, "image")] {
        let task = get_json(&relayer_url, &format!("/v1/tasks/{id}"), &context);
        assert_eq!(
            (task["task_id"].as_u64(), task["kind"].as_str()),
            (Some(id), Some(kind)),
            "{task}"
        );
        assert_eq!(task["status"], "validated", "{task}");
        assert_eq!(task["args_available"], true, "{task}");
        assert_eq!(task["nodes"].as_array().map(Vec::len), Some(3), "{task}");
        assert_eq!(task["settlement"]["threshold"], 12, "{task}");
        assert_eq!(
            task["creator"].as_str().map(str::to_lowercase),
            Some(creator.to_lowercase()),
            "{task}"
        );

        let (code, args) = http_get(&relayer_url, &format!("/v1/tasks/{id}/args")).unwrap();
        assert_eq!(code, 200);
        let args: serde_json::Value = serde_json::from_slice(&args).unwrap();
        // Image args hold `prompt`, text args `input.prompt` (docs/task-format.md).
        let prompt = args.get("prompt").or_else(|| args["input"].get("prompt"));
        let expected = if kind == "text" {
            "Once upon a time"
        } else {
            "a red bicycle"
        };
        assert_eq!(
            prompt.and_then(|prompt| prompt.as_str()),
            Some(expected),
            "{args}"
        );

        // Every agreeing node uploads right after its reveal: wait until none is pending.
        let results = wait_for(Duration::from_secs(30), || {
            let results = get_json(&relayer_url, &format!("/v1/tasks/{id}/results"), &context);
            results["pending_nodes"]
                .as_array()
                .is_some_and(Vec::is_empty)
                .then_some(results)
        })
        .unwrap_or_else(|| panic!("task {id}: uploads still pending after 30 s\n{}", context()));
        assert_eq!(results["kind"], kind, "{results}");
        let uploads = results["results"].as_array().unwrap();
        assert_eq!(
            uploads.len(),
            3,
            "all three nodes agreed and uploaded: {results}"
        );
        if kind == "text" {
            assert_eq!(
                uploads[0]["output"]["text"].as_str(),
                Some(plain.as_str()),
                "{results}"
            );
        } else {
            let url = uploads[0]["images"][0]["url"].as_str().unwrap();
            assert!(url.starts_with("/v1/blobs/0x"), "{url}");
            let (code, blob) = http_get(&relayer_url, url).unwrap();
            assert_eq!(code, 200);
            assert_eq!(blob, png, "the relayer's blob is the verified image-0.png");
        }
        let task = get_json(&relayer_url, &format!("/v1/tasks/{id}"), &context);
        for node in task["nodes"].as_array().unwrap() {
            assert_eq!(
                (node["agreed"].as_bool(), node["uploaded"].as_bool()),
                (Some(true), Some(true)),
                "{task}"
            );
        }
    }
    // The relayer's view in `task status` now counts the uploads too.
    let status = run(
        "task-status-text-uploaded",
        task_command(&["status", &text_id.to_string()]),
        &logs,
        short,
    )
    .ok(String::new);
    assert!(
        status
            .stdout
            .contains("args held; uploads from 3 of 3 nodes"),
        "{}",
        status.context()
    );
    let (code, missing) = http_get(&relayer_url, "/v1/tasks/999").unwrap();
    assert_eq!(code, 404, "{}", String::from_utf8_lossy(&missing));
    let missing: serde_json::Value = serde_json::from_slice(&missing).unwrap();
    assert!(missing["error"]["code"].is_string(), "{missing}");

    let listed = get_json(&relayer_url, "/v1/nodes?offset=0&limit=100", &context);
    let listed_nodes = listed["nodes"].as_array().unwrap();
    assert_eq!(listed_nodes.len(), 3, "{listed}");
    for (address, _) in &nodes_accounts {
        let node = listed_nodes
            .iter()
            .find(|node| {
                node["address"]
                    .as_str()
                    .is_some_and(|a| a.eq_ignore_ascii_case(address))
            })
            .unwrap_or_else(|| panic!("{address} is not in /v1/nodes: {listed}"));
        assert_eq!(
            (node["gpu_model_name"].as_str(), node["vram_mib"].as_u64()),
            (Some(GPU_MODEL), Some(8192)),
            "{node}"
        );
    }

    let node_metrics_url = format!("http://{node_metrics}");
    let (code, metrics) = http_get(&node_metrics_url, "/metrics").unwrap();
    let metrics = String::from_utf8_lossy(&metrics);
    assert_eq!(code, 200, "{metrics}");
    assert!(metrics.contains("verinfer_node_tasks_total"), "{metrics}");

    // `node status` now lists both tasks.
    let status = status_node1();
    for id in [text_id, image_id] {
        assert!(
            status.stdout.contains(&format!("#{id} ")),
            "node status lists task {id}:\n{}",
            status.context()
        );
    }
    assert!(
        status.stdout.contains("validated, agreed"),
        "{}",
        status.context()
    );
    step("relayer routes and node status checked");

    // ------------------------------------------------- Ctrl-C, and SIGTERM
    // The first two nodes get Ctrl-C, the third node and the relayer SIGTERM (systemd's stop).
    for (index, proc) in nodes.iter_mut().chain([&mut relayer]).enumerate() {
        assert!(
            proc.exited().is_none(),
            "{} exited early\n{}",
            proc.name,
            proc.tails()
        );
        proc.signal(if index < 2 { "-INT" } else { "-TERM" });
    }
    for proc in nodes.iter_mut().chain([&mut relayer]) {
        let status = proc
            .wait_timeout(Duration::from_secs(20))
            .unwrap_or_else(|| {
                panic!(
                    "{} still runs 20 s after Ctrl-C / SIGTERM\n{}",
                    proc.name,
                    proc.tails()
                )
            });
        assert!(
            status.success(),
            "{} exited with {status} after Ctrl-C / SIGTERM\n{}",
            proc.name,
            proc.tails()
        );
    }
    step("nodes and relayer stopped by Ctrl-C");

    // ------------------------------------------------- operator: add stake, leave
    let stake_of = |stdout: &str| -> u128 {
        stdout
            .lines()
            .find_map(|line| line.strip_prefix("stake     "))
            .and_then(|stake| stake.trim().parse().ok())
            .unwrap_or_else(|| panic!("no stake line in:\n{stdout}"))
    };
    // The daemons are stopped: the closure above borrows them, this one does not.
    let status_node1 =
        || run("node1-status", node_command(1, &["status"]), &logs, short).ok(String::new);
    let before = stake_of(&status_node1().stdout);
    let ran = run(
        "node1-add-stake",
        node_command(1, &["add-stake", "--amount", "5"]),
        &logs,
        short,
    )
    .ok(String::new);
    assert!(
        ran.stdout.contains(&format!(
            "node {} added 5 tokens to its stake, now ",
            nodes_accounts[0].0
        )),
        "{}",
        ran.context()
    );
    let after = stake_of(&status_node1().stdout);
    assert_eq!(
        after,
        before + 5 * 10u128.pow(18),
        "addStake added 5 tokens"
    );
    let ran = run(
        "node1-add-stake-zero",
        node_command(1, &["add-stake", "--amount", "0"]),
        &logs,
        short,
    );
    assert!(!ran.status.success(), "{}", ran.context());
    assert!(
        ran.stderr
            .contains("the amount to add to the stake is zero"),
        "{}",
        ran.context()
    );
    let ran = run("node1-leave", node_command(1, &["leave"]), &logs, short).ok(String::new);
    assert!(
        ran.stdout.contains(&format!(
            "node {} left the network; stake of ",
            nodes_accounts[0].0
        )) && ran.stdout.contains("tokens returned (tx 0x"),
        "{}",
        ran.context()
    );
    let status = status_node1();
    assert!(
        status.stdout.contains("state     None"),
        "{}",
        status.context()
    );
    assert!(
        status.stdout.contains("stake     0"),
        "{}",
        status.context()
    );
    let ran = run(
        "node1-leave-again",
        node_command(1, &["leave"]),
        &logs,
        short,
    );
    assert!(!ran.status.success(), "{}", ran.context());
    assert!(
        ran.stderr
            .contains("cannot leave: it is None (only an Available or Busy node can)"),
        "{}",
        ran.context()
    );
    step("node1 added stake and left");
    drop(anvil);
}
