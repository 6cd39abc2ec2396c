//! THE README WALKTHROUGH, RUN FOR REAL: the "Walkthrough" section of README.md (a. chain
//! deployer, b. node operator, c. dApp builder) as one test, with every command a real child
//! process — the test-profile `verinfer` binary, and anvil, forge and cast through
//! `scripts/foundry.sh` — exactly as a person would type them:
//!
//! 1. `scripts/foundry.sh anvil --port P --block-time 1 --mixed-mining`
//! 2. deployer: `scripts/foundry.sh forge script script/Deploy.s.sol --rpc-url R --broadcast` (env
//!    parameters), then as the owner (`VERINFER_OWNER_KEY`): `verinfer admin params show`,
//!    `admin params schedule --threshold 12 --min-stake 1200`, `admin params cancel` (nothing
//!    scheduled: refused), `admin gpu-model add --name operator-gpu --vram-mib 8192`,
//!    `admin gpu-model list`, and token transfers with `cast send`
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
//! 8. Ctrl-C (SIGINT) to two nodes, SIGTERM to the third and the relayer: each exits with
//!    status 0.
//! 9. operator, daemon stopped: `verinfer node add-stake --amount 5`, `verinfer node leave`,
//!    `verinfer node withdraw` (nothing credited: refused); dApp builder: `verinfer withdraw`
//!    (nothing credited: refused).
//!
//! It is one scenario, so it is one `#[test]`: it calls the steps in order, each a function named
//! for what it checks that takes the state earlier steps built ([`Scene`], [`Chain`],
//! [`Deployment`], [`Operators`], [`Daemons`], …) and returns what later steps need.
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
/// The prompt of the text task.
const TEXT_PROMPT: &str = "Once upon a time";
/// The prompt of the image task.
const IMAGE_PROMPT: &str = "a red bicycle";
/// Time limit of a command that talks to the chain or the relayer once.
const SHORT: Duration = Duration::from_secs(60);

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

/// The dev accounts anvil prints in its banner: in order.
fn anvil_accounts(banner: &str) -> Vec<Account> {
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
        .map(|(address, key)| Account { address, key })
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

/// An account from anvil's banner.
#[derive(Clone)]
struct Account {
    address: String,
    key: String,
}

/// The test's temporary directory, its logs and its clock: every step runs its commands through
/// it. Declared first in the test, so dropped (the directory removed) last.
struct Scene {
    started: Instant,
    dir: PathBuf,
    logs: PathBuf,
    root: PathBuf,
    _temp: tempfile::TempDir,
}

impl Scene {
    fn new() -> Self {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().to_path_buf();
        let logs = dir.join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        Self {
            started: Instant::now(),
            dir,
            logs,
            root: repo_root(),
            _temp: temp,
        }
    }

    /// Prints a progress line with the time since the start.
    fn step(&self, what: &str) {
        eprintln!("[{:6.1}s] {what}", self.started.elapsed().as_secs_f64());
    }

    /// [`run`] with this scene's log directory.
    fn run(&self, name: &str, command: Command, timeout: Duration) -> Ran {
        run(name, command, &self.logs, timeout)
    }
}

/// anvil and its dev accounts: 0 deploys, 1 to 3 run the nodes, 4 creates the tasks.
struct Chain {
    anvil: Proc,
    rpc: String,
    deployer: Account,
    nodes: Vec<Account>,
    creator: Account,
}

impl Chain {
    /// `cast <args> --rpc-url <rpc>`, which must succeed.
    fn cast(&self, scene: &Scene, name: &str, args: &[&str]) -> Ran {
        let mut command = foundry("cast");
        command.args(args).args(["--rpc-url", &self.rpc]);
        scene.run(name, command, SHORT).ok(String::new)
    }
}

/// What the deploy script wrote: the record (copied into the scene) and two of its addresses.
struct Deployment {
    path: PathBuf,
    verinfer: String,
    token: String,
}

/// The relayer's files and address.
struct RelayerSetup {
    config: PathBuf,
    data_dir: PathBuf,
    listen: String,
    url: String,
}

/// Node 3's encrypted keystore and its password file.
struct Keystore {
    file: PathBuf,
    password_file: PathBuf,
}

/// The three node operators: their `nodeN.toml` files and how each starts `verinfer node`.
struct Operators {
    dir: PathBuf,
    configs: Vec<PathBuf>,
    accounts: Vec<Account>,
    /// Node 1's Prometheus listener.
    metrics: String,
}

impl Operators {
    /// `verinfer node <args> --config nodeN.toml` (`index` from 1) with node N's environment:
    /// node 1 a raw key, node 2 a raw key and its `[identity]` from `VERINFER_NODE__IDENTITY__*`,
    /// node 3 nothing (its keystore and password file are in its TOML).
    fn command(&self, index: usize, args: &[&str]) -> Command {
        let mut command = verinfer();
        command
            .current_dir(&self.dir)
            .arg("node")
            .args(args)
            .arg("--config")
            .arg(&self.configs[index - 1]);
        match index {
            1 => {
                command.env("VERINFER_NODE_KEY", &self.accounts[0].key);
            }
            2 => {
                command
                    .env("VERINFER_NODE_KEY", &self.accounts[1].key)
                    .env("VERINFER_NODE__IDENTITY__GPU_MODEL", GPU_MODEL)
                    .env("VERINFER_NODE__IDENTITY__VRAM_MIB", "8192");
            }
            _ => {}
        }
        command
    }

    /// `verinfer node status --config node1.toml`, which must succeed (`context` on failure).
    fn status_node1(&self, scene: &Scene, context: impl FnOnce() -> String) -> Ran {
        scene
            .run("node1-status", self.command(1, &["status"]), SHORT)
            .ok(context)
    }
}

/// The running daemons. Nodes first: they are killed before the relayer when dropped.
struct Daemons {
    nodes: Vec<Proc>,
    relayer: Proc,
}

impl Daemons {
    /// Every daemon's log tails, for assertion messages.
    fn tails(&self) -> String {
        self.nodes
            .iter()
            .chain([&self.relayer])
            .map(Proc::tails)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The dApp builder: `verinfer task …` with the connection in `VERINFER_*` variables.
struct DappBuilder {
    dir: PathBuf,
    creator: Account,
    rpc: String,
    relayer_url: String,
    deployment: PathBuf,
}

impl DappBuilder {
    fn task(&self, args: &[&str]) -> Command {
        let mut command = verinfer();
        command
            .current_dir(&self.dir)
            .arg("task")
            .args(args)
            .env("VERINFER_KEY", &self.creator.key)
            .env("VERINFER_RPC_URL", &self.rpc)
            .env("VERINFER_RELAYER_URL", &self.relayer_url)
            .env("VERINFER_DEPLOYMENT", &self.deployment);
        command
    }
}

/// A validated task and its result as `task result` verified it.
struct Validated {
    id: u64,
    output: Output,
}

enum Output {
    /// `output.txt`.
    Text(String),
    /// `image-0.png`.
    Image(Vec<u8>),
}

impl Validated {
    /// The relayer's `kind`.
    fn kind(&self) -> &'static str {
        match self.output {
            Output::Text(_) => "text",
            Output::Image(_) => "image",
        }
    }

    /// The prompt the task was created with.
    fn prompt(&self) -> &'static str {
        match self.output {
            Output::Text(_) => TEXT_PROMPT,
            Output::Image(_) => IMAGE_PROMPT,
        }
    }
}

#[test]
fn readme_walkthrough_deployer_operator_and_dapp_builder() {
    let scene = Scene::new();
    // a. chain deployer
    let chain = anvil_lists_the_dev_accounts(&scene);
    let deployment = deploy_script_writes_the_record(&scene, &chain);
    deployer_holds_the_mock_mint(&scene, &chain, &deployment);
    let min_stake = owner_schedules_params_with_verinfer_admin(&scene, &chain, &deployment);
    owner_registers_the_nodes_gpu_model(&scene, &chain, &deployment);
    deployer_funds_nodes_and_creator(&scene, &chain, &deployment);
    let models = model_make_tiny_and_model_digest_agree(&scene);
    identity_prints_the_gpu(&scene);
    // b. node operator: the relayer, then three nodes
    let example = relayer_prints_its_example_config(&scene);
    let setup = relayer_toml_from_the_example(&scene, &chain, &deployment, &example);
    relayer_check_merges_toml_and_env(&scene, &chain, &setup);
    let relayer = relayer_daemon_from_toml_and_env(&scene, &setup);
    let keystore = cast_wallet_import_writes_a_keystore(&scene, &chain);
    let operators = node_tomls(&scene, &chain, &deployment, &setup, &models, &keystore);
    let daemons = three_nodes_join_with_the_min_stake(&scene, &operators, relayer, &min_stake);
    node_status_shows_address_chain_stake_and_vram(&scene, &operators, &daemons, &min_stake);
    // c. dApp builder
    let dapp = DappBuilder {
        dir: scene.dir.clone(),
        creator: chain.creator.clone(),
        rpc: chain.rpc.clone(),
        relayer_url: setup.url.clone(),
        deployment: deployment.path.clone(),
    };
    let text_id = text_task_is_validated_by_three_agreeing_nodes(&scene, &dapp, &daemons, &models);
    task_status_shows_the_text_task(&scene, &dapp, text_id);
    let text = task_result_verifies_the_text_output(&scene, &dapp, &daemons, text_id);
    let image_id =
        image_task_is_validated_under_the_owners_threshold(&scene, &dapp, &daemons, &models);
    let image = task_status_and_result_verify_the_image(&scene, &dapp, &daemons, image_id);
    // The relayer's HTTP API and the nodes' view
    relayer_healthz_and_metrics(&setup, &daemons);
    for task in [&text, &image] {
        relayer_serves_the_task_and_its_args(&setup, &daemons, task, &chain.creator);
        relayer_holds_every_nodes_upload(&setup, &daemons, task);
    }
    task_status_counts_the_uploads(&scene, &dapp, text.id);
    relayer_lists_the_nodes_and_404s_an_unknown_task(&setup, &daemons, &chain.nodes);
    node_metrics_and_status_list_both_tasks(&scene, &operators, &daemons, [text.id, image.id]);
    ctrl_c_and_sigterm_stop_every_daemon(&scene, daemons);
    // b. node operator again, daemons stopped
    node_add_stake_raises_the_stake(&scene, &operators);
    node_leave_returns_the_stake_once(&scene, &operators);
    nothing_credited_means_nothing_to_withdraw(&scene, &operators, &dapp);
    drop(chain);
}

/// `anvil --port P --block-time 1 --mixed-mining` listens, and its first accounts are the ones
/// the deploy script and this walkthrough expect.
fn anvil_lists_the_dev_accounts(scene: &Scene) -> Chain {
    let port = free_port();
    let rpc = format!("http://127.0.0.1:{port}");
    let mut command = foundry("anvil");
    command.args([
        "--port",
        &port.to_string(),
        "--block-time",
        "1",
        "--mixed-mining",
    ]);
    let mut anvil = Proc::spawn("anvil", command, &scene.logs);
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
        accounts[0].key, ANVIL_KEY_0,
        "anvil's account 0 is the deploy script's default key"
    );
    assert_eq!(accounts[1].key, ANVIL_KEY_1);
    scene.step(&format!("anvil listening on {rpc}"));
    Chain {
        anvil,
        rpc,
        deployer: accounts[0].clone(),
        nodes: accounts[1..4].to_vec(),
        creator: accounts[4].clone(),
    }
}

/// `forge script script/Deploy.s.sol --broadcast` with env parameters writes
/// `deployments/31337.json`: chain 31337, a mock token, the deployer as owner.
fn deploy_script_writes_the_record(scene: &Scene, chain: &Chain) -> Deployment {
    let staging = RemoveOnDrop(
        scene
            .root
            .join("deployments")
            .join(format!(".operator-test-{}", std::process::id())),
    );
    let _ = std::fs::remove_dir_all(&staging.0);
    let mut forge = foundry("forge");
    forge
        .args(["script", "script/Deploy.s.sol"])
        .args(["--rpc-url", &chain.rpc, "--broadcast"])
        .env("DEPLOYER_PRIVATE_KEY", &chain.deployer.key)
        .env("VERINFER_COMMIT_WINDOW", "60")
        .env("VERINFER_REVEAL_WINDOW", "60")
        .env("VERINFER_MOCK_MINT", mock_mint())
        .env("VERINFER_DEPLOYMENTS_DIR", &staging.0);
    let long = Duration::from_secs(300);
    scene
        .run("forge-script", forge, long)
        .ok(|| chain.anvil.tails());
    let written = staging.0.join("31337.json");
    assert!(written.is_file(), "forge wrote no {}", written.display());
    let deployments = scene.dir.join("deployments");
    std::fs::create_dir_all(&deployments).unwrap();
    let path = deployments.join("31337.json");
    std::fs::copy(&written, &path).unwrap();
    drop(staging);
    let record: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(record["chainId"], 31337, "{record}");
    assert_eq!(record["mockToken"], true, "{record}");
    assert_eq!(
        record["owner"].as_str().map(str::to_lowercase),
        Some(chain.deployer.address.to_lowercase()),
        "{record}"
    );
    let deployment = Deployment {
        path,
        verinfer: record["verinfer"].as_str().unwrap().to_owned(),
        token: record["stakingToken"].as_str().unwrap().to_owned(),
    };
    scene.step(&format!(
        "deployed: Verinfer {}, token {}",
        deployment.verinfer, deployment.token
    ));
    deployment
}

/// One million tokens, minted to the deployer by the mock token (`VERINFER_MOCK_MINT`).
fn mock_mint() -> String {
    format!("1000000{TOKEN}")
}

/// `cast call <token> balanceOf(deployer)`: `VERINFER_MOCK_MINT` went to the deployer.
fn deployer_holds_the_mock_mint(scene: &Scene, chain: &Chain, deployment: &Deployment) {
    let balance = chain.cast(
        scene,
        "cast-balance",
        &[
            "call",
            &deployment.token,
            "balanceOf(address)(uint256)",
            &chain.deployer.address,
        ],
    );
    assert_eq!(
        cast_values(&balance.stdout),
        [mock_mint()],
        "VERINFER_MOCK_MINT went to the deployer"
    );
}

/// `verinfer admin …` as the contract's owner (`VERINFER_OWNER_KEY`, the deployer's key),
/// against the deployment record.
fn admin(chain: &Chain, deployment: &Deployment, args: &[&str]) -> Command {
    let mut command = verinfer();
    command
        .arg("admin")
        .args(args)
        .arg("--deployment")
        .arg(&deployment.path)
        .args(["--rpc-url", &chain.rpc])
        .env("VERINFER_OWNER_KEY", &chain.deployer.key);
    command
}

/// The README's owner example: `verinfer admin params show` lists the defaults and the windows
/// given; `admin params schedule --threshold 12 --min-stake 1200` changes those two (in force at
/// once: anvil deployments have no params delay), the others keep their values; `admin params
/// cancel` with nothing scheduled is refused. Returns the new minimum stake in base units.
fn owner_schedules_params_with_verinfer_admin(
    scene: &Scene,
    chain: &Chain,
    deployment: &Deployment,
) -> String {
    let show = |name: &str| {
        scene
            .run(name, admin(chain, deployment, &["params", "show"]), SHORT)
            .ok(|| chain.anvil.tails())
    };
    let before = show("admin-params-show-before");
    for expected in [
        "in force: version 1",
        "  threshold               10 bits",
        "  min stake               1000 tokens",
        "  commit window           60 s",
        "  min task fee            1 tokens",
        "  min image fee           0.1 tokens per image",
        "scheduled: none (params delay 0 s)",
    ] {
        assert!(
            before.stdout.contains(expected),
            "{expected:?}\n{}",
            before.context()
        );
    }
    let schedule = admin(
        chain,
        deployment,
        &[
            "params",
            "schedule",
            "--threshold",
            "12",
            "--min-stake",
            "1200",
        ],
    );
    let scheduled = scene
        .run("admin-params-schedule", schedule, SHORT)
        .ok(|| chain.anvil.tails());
    for expected in [
        "parameter version 2 is in force now (tx 0x",
        "  threshold               10 bits -> 12 bits",
        "  min stake               1000 tokens -> 1200 tokens",
    ] {
        assert!(
            scheduled.stdout.contains(expected),
            "{expected:?}\n{}",
            scheduled.context()
        );
    }
    assert_eq!(
        scheduled.stdout.lines().count(),
        3,
        "only the two fields given change:\n{}",
        scheduled.context()
    );
    let after = show("admin-params-show-after");
    for expected in [
        "in force: version 2",
        "  threshold               12 bits",
        "  min stake               1200 tokens",
        "  commit window           60 s",
    ] {
        assert!(
            after.stdout.contains(expected),
            "{expected:?}\n{}",
            after.context()
        );
    }
    let cancel = admin(chain, deployment, &["params", "cancel"]);
    let refused = scene.run("admin-params-cancel", cancel, SHORT);
    assert!(!refused.status.success(), "{}", refused.context());
    assert!(
        refused.stderr.contains("no parameter version is scheduled"),
        "{}",
        refused.context()
    );
    format!("1200{TOKEN}")
}

/// `verinfer admin gpu-model add --name operator-gpu --vram-mib 8192` registers the nodes' model
/// (the deploy script registered only its common NVIDIA GPUs); `admin gpu-model list` shows it;
/// without the owner's key nothing is sent.
fn owner_registers_the_nodes_gpu_model(scene: &Scene, chain: &Chain, deployment: &Deployment) {
    let mut keyless = admin(
        chain,
        deployment,
        &[
            "gpu-model",
            "add",
            "--name",
            GPU_MODEL,
            "--vram-mib",
            "8192",
        ],
    );
    keyless.env_remove("VERINFER_OWNER_KEY");
    let refused = scene.run("admin-gpu-model-add-keyless", keyless, SHORT);
    assert!(!refused.status.success(), "{}", refused.context());
    assert!(
        refused.stderr.contains("set $VERINFER_OWNER_KEY"),
        "{}",
        refused.context()
    );
    let add = admin(
        chain,
        deployment,
        &[
            "gpu-model",
            "add",
            "--name",
            GPU_MODEL,
            "--vram-mib",
            "8192",
        ],
    );
    let added = scene
        .run("admin-gpu-model-add", add, SHORT)
        .ok(|| chain.anvil.tails());
    assert!(
        added.stdout.contains(&format!(
            "GPU model \"{GPU_MODEL}\" registered with 8192 MiB"
        )),
        "{}",
        added.context()
    );
    let list = admin(chain, deployment, &["gpu-model", "list"]);
    let listed = scene
        .run("admin-gpu-model-list", list, SHORT)
        .ok(String::new);
    let row = listed
        .stdout
        .lines()
        .find(|line| line.starts_with(GPU_MODEL))
        .unwrap_or_else(|| panic!("{}", listed.context()));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[1..4], ["8192", "yes", "0"], "{}", listed.context());
    assert!(
        listed.stdout.contains("nvidia geforce rtx 4090"),
        "the script's default models: {}",
        listed.context()
    );
}

/// Stake for the nodes and the fee for the creator, from the deployer's minted tokens
/// (`cast send <token> transfer(…)`).
fn deployer_funds_nodes_and_creator(scene: &Scene, chain: &Chain, deployment: &Deployment) {
    let transfer = |name: &str, to: &Account, amount: String| {
        let args = [
            "send",
            &deployment.token,
            "transfer(address,uint256)",
            &to.address,
            &amount,
            "--private-key",
            &chain.deployer.key,
        ];
        chain.cast(scene, name, &args);
    };
    for (index, node) in chain.nodes.iter().enumerate() {
        transfer(
            &format!("cast-fund-node{}", index + 1),
            node,
            format!("10000{TOKEN}"),
        );
    }
    transfer("cast-fund-creator", &chain.creator, format!("100{TOKEN}"));
    scene.step("parameters scheduled, GPU model registered, nodes and creator funded");
}

/// `verinfer model make-tiny --out models` writes the three tiny models and prints the same
/// digest that `verinfer model digest models/tiny-sd` prints. Returns the models directory.
fn model_make_tiny_and_model_digest_agree(scene: &Scene) -> PathBuf {
    let models = scene.dir.join("models");
    let mut make = verinfer();
    make.args(["model", "make-tiny", "--out"]).arg(&models);
    let made = scene
        .run("make-tiny", make, Duration::from_secs(120))
        .ok(String::new);
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
    let digest = scene.run("model-digest", digest, SHORT).ok(String::new);
    let sd_digest = digest.stdout.split_whitespace().next().unwrap_or_default();
    assert!(
        sd_digest.starts_with("sha256:") && sd_digest.len() == 7 + 64,
        "{}",
        digest.context()
    );
    assert!(
        made.stdout.contains(sd_digest),
        "make-tiny prints the same digests:\n{}",
        made.context()
    );
    models
}

/// `verinfer identity` prints the GPU model and VRAM a node would declare.
fn identity_prints_the_gpu(scene: &Scene) {
    let mut identity = verinfer();
    identity.arg("identity");
    let identity = scene.run("identity", identity, SHORT).ok(String::new);
    assert!(
        identity.stdout.contains("model: ") && identity.stdout.contains("vram_mib: "),
        "{}",
        identity.context()
    );
    scene.step("tiny models made");
}

/// `verinfer relayer --print-example-config` prints `relayer/relayer.example.toml`, which parses
/// as a relayer configuration.
fn relayer_prints_its_example_config(scene: &Scene) -> String {
    let mut example = verinfer();
    example.args(["relayer", "--print-example-config"]);
    let example = scene
        .run("relayer-print-example", example, SHORT)
        .ok(String::new);
    assert_eq!(
        example.stdout,
        std::fs::read_to_string(scene.root.join("relayer/relayer.example.toml")).unwrap(),
        "--print-example-config prints relayer/relayer.example.toml"
    );
    let parsed = verinfer_relayer::RelayerConfig::from_toml_str(&example.stdout)
        .unwrap_or_else(|error| panic!("the printed example does not parse: {error}"));
    assert_eq!(parsed.listen.to_string(), "127.0.0.1:8645");
    example.stdout
}

/// relayer.toml = the example with this network's values, each replacing a line the example
/// has; `listen` stays the example's (it is overridden through the environment later).
fn relayer_toml_from_the_example(
    scene: &Scene,
    chain: &Chain,
    deployment: &Deployment,
    example: &str,
) -> RelayerSetup {
    let data_dir = scene.dir.join("relayer-data");
    let mut toml = example.to_owned();
    for (line, value) in [
        (
            "rpc_url = \"http://127.0.0.1:8545\"",
            format!("rpc_url = {}", toml_string(&chain.rpc)),
        ),
        (
            "deployment = \"deployments/31337.json\"",
            format!(
                "deployment = {}",
                toml_string(deployment.path.to_str().unwrap())
            ),
        ),
        (
            "data_dir = \"relayer-data\"",
            format!("data_dir = {}", toml_string(data_dir.to_str().unwrap())),
        ),
        (
            "poll_interval_ms = 1000",
            "poll_interval_ms = 250".to_owned(),
        ),
    ] {
        assert!(toml.contains(line), "the example has no line {line:?}");
        toml = toml.replacen(line, &value, 1);
    }
    let config = scene.dir.join("relayer.toml");
    std::fs::write(&config, &toml).unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    RelayerSetup {
        config,
        data_dir,
        url: format!("http://{listen}"),
        listen,
    }
}

/// `verinfer relayer --config relayer.toml --check` prints the effective configuration: the
/// file's values over the defaults, and `VERINFER_RELAYER__LISTEN` over the file.
fn relayer_check_merges_toml_and_env(scene: &Scene, chain: &Chain, setup: &RelayerSetup) {
    let check = |name: &str, listen_override: Option<&str>| {
        let mut check = verinfer();
        check
            .current_dir(&scene.dir)
            .args(["relayer", "--config"])
            .arg(&setup.config)
            .arg("--check");
        if let Some(listen) = listen_override {
            check.env("VERINFER_RELAYER__LISTEN", listen);
        }
        let ran = scene.run(name, check, SHORT).ok(|| chain.anvil.tails());
        let effective: serde_json::Value = serde_json::from_str(&ran.stdout)
            .unwrap_or_else(|error| panic!("--check prints no JSON ({error})\n{}", ran.context()));
        assert!(ran.stderr.contains("configuration ok"), "{}", ran.context());
        effective
    };
    let effective = check("relayer-check-file", None);
    assert_eq!(effective["listen"], "127.0.0.1:8645", "{effective}");
    assert_eq!(
        effective["rpc_url"]
            .as_str()
            .map(|url| url.trim_end_matches('/')),
        Some(chain.rpc.as_str()),
        "{effective}"
    );
    assert_eq!(effective["poll_interval_ms"], 250, "{effective}");
    assert_eq!(
        effective["data_dir"],
        setup.data_dir.to_str().unwrap(),
        "{effective}"
    );
    let effective = check("relayer-check-env", Some(&setup.listen));
    assert_eq!(
        effective["listen"],
        setup.listen.as_str(),
        "VERINFER_RELAYER__LISTEN overrides the file: {effective}"
    );
}

/// `verinfer relayer --config relayer.toml` with `VERINFER_RELAYER__LISTEN` serves `/healthz`
/// on the overridden address, its indexer running.
fn relayer_daemon_from_toml_and_env(scene: &Scene, setup: &RelayerSetup) -> Proc {
    let mut serve = verinfer();
    serve
        .current_dir(&scene.dir)
        .args(["relayer", "--config"])
        .arg(&setup.config)
        .env("VERINFER_RELAYER__LISTEN", &setup.listen);
    let relayer = Proc::spawn("relayer", serve, &scene.logs);
    let health = wait_for(Duration::from_secs(30), || {
        match http_get(&setup.url, "/healthz") {
            Ok((200, body)) => Some(body),
            _ => None,
        }
    })
    .unwrap_or_else(|| panic!("GET /healthz never answered 200\n{}", relayer.tails()));
    let health: serde_json::Value = serde_json::from_slice(&health).unwrap();
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["indexer"], "ok", "{health}");
    scene.step(&format!("relayer serving on {}", setup.url));
    relayer
}

/// `cast wallet import node3 --keystore-dir keystores` writes node 3's encrypted keystore; its
/// password goes to a file.
fn cast_wallet_import_writes_a_keystore(scene: &Scene, chain: &Chain) -> Keystore {
    let keystores = scene.dir.join("keystores");
    std::fs::create_dir_all(&keystores).unwrap();
    let mut import = foundry("cast");
    import
        .args(["wallet", "import", "node3", "--keystore-dir"])
        .arg(&keystores)
        .args([
            "--private-key",
            &chain.nodes[2].key,
            "--unsafe-password",
            KEYSTORE_PASSWORD,
        ]);
    scene
        .run("cast-wallet-import", import, SHORT)
        .ok(String::new);
    let file = keystores.join("node3");
    assert!(
        file.is_file(),
        "cast wallet import wrote no {}",
        file.display()
    );
    let password_file = scene.dir.join("node3.password");
    std::fs::write(&password_file, format!("{KEYSTORE_PASSWORD}\n")).unwrap();
    Keystore {
        file,
        password_file,
    }
}

/// Writes node1.toml to node3.toml. Nodes 1 and 2 read a raw key from `VERINFER_NODE_KEY`,
/// node 3 the keystore; node 2 declares its GPU through `VERINFER_NODE__IDENTITY__*` instead of
/// the file; node 1 serves `/metrics`.
fn node_tomls(
    scene: &Scene,
    chain: &Chain,
    deployment: &Deployment,
    relayer: &RelayerSetup,
    models: &Path,
    keystore: &Keystore,
) -> Operators {
    let metrics = format!("127.0.0.1:{}", free_port());
    let path = |path: &Path| toml_string(path.to_str().unwrap());
    let configs = (1..=3)
        .map(|index| {
            let mut toml = format!(
                "rpc_url = {}\ndeployment = {}\nrelayer_url = {}\nmodels_dir = {}\ndata_dir = {}\npoll_interval_ms = 500\n",
                toml_string(&chain.rpc),
                path(&deployment.path),
                toml_string(&relayer.url),
                path(models),
                path(&scene.dir.join(format!("node{index}-data"))),
            );
            if index == 1 {
                toml.push_str(&format!("metrics_listen = {}\n", toml_string(&metrics)));
            }
            if index == 3 {
                toml.push_str(&format!(
                    "\n[key]\nkeystore = {}\npassword_file = {}\n",
                    path(&keystore.file),
                    path(&keystore.password_file)
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
            let config = scene.dir.join(format!("node{index}.toml"));
            std::fs::write(&config, toml).unwrap();
            config
        })
        .collect();
    Operators {
        dir: scene.dir.clone(),
        configs,
        accounts: chain.nodes.clone(),
        metrics,
    }
}

/// `verinfer node run --config nodeN.toml` for the three nodes: each prints a start-up summary
/// saying it joined with the owner's minimum stake and the declared GPU, from the TOML file or
/// the environment.
fn three_nodes_join_with_the_min_stake(
    scene: &Scene,
    operators: &Operators,
    relayer: Proc,
    min_stake: &str,
) -> Daemons {
    let mut nodes: Vec<Proc> = (1..=3)
        .map(|index| {
            let name = format!("node{index}");
            Proc::spawn(&name, operators.command(index, &["run"]), &scene.logs)
        })
        .collect();
    for (node, account) in nodes.iter_mut().zip(&operators.accounts) {
        let summary = wait_for(Duration::from_secs(120), || {
            node.stdout()
                .lines()
                .find(|line| line.starts_with("node 0x"))
                .map(str::to_owned)
        });
        let Some(summary) = summary else {
            let exited = node.exited();
            panic!(
                "{} printed no start-up summary (exited: {exited:?})\n{}",
                node.name,
                node.tails()
            )
        };
        assert!(
            summary.starts_with(&format!(
                "node {} on chain 31337 (Verinfer ",
                account.address
            )),
            "{summary}"
        );
        assert!(summary.contains(": joined as node #"), "{summary}");
        assert!(
            summary.contains(&format!("staking {min_stake} (tx 0x")),
            "joins with minStake: {summary}"
        );
        assert!(
            summary.contains(&format!(
                "GPU model \"{GPU_MODEL}\" (8192 MiB in the registry; this machine 8192 MiB); fee tier 0 (tasks paying at least 1x the minimum); 3 model(s)"
            )),
            "{summary}"
        );
    }
    scene.step("three nodes joined");
    Daemons { nodes, relayer }
}

/// `verinfer node status --config node1.toml` shows the node's address, chain, stake and VRAM.
fn node_status_shows_address_chain_stake_and_vram(
    scene: &Scene,
    operators: &Operators,
    daemons: &Daemons,
    min_stake: &str,
) {
    let status = operators.status_node1(scene, || daemons.tails());
    for expected in [
        format!("node      {}", operators.accounts[0].address),
        "chain     31337 (Verinfer ".to_owned(),
        format!("stake     {min_stake} (1200 tokens)"),
        format!("gpu model {GPU_MODEL} (8192 MiB)"),
        "fee tier  0 (".to_owned(),
        "claimable 0 (0 tokens)".to_owned(),
    ] {
        assert!(status.stdout.contains(&expected), "{}", status.context());
    }
}

/// `verinfer task create --text … --wait` ends with the task validated: the three nodes'
/// digests are equal. Returns the task id.
fn text_task_is_validated_by_three_agreeing_nodes(
    scene: &Scene,
    dapp: &DappBuilder,
    daemons: &Daemons,
    models: &Path,
) -> u64 {
    let llama = models.join("tiny-llama");
    let create = dapp.task(&[
        "create",
        "--text",
        "--prompt",
        TEXT_PROMPT,
        "--model",
        llama.to_str().unwrap(),
        "--max-tokens",
        "16",
        "--gpu-model",
        GPU_MODEL,
        "--fee",
        "1",
        "--wait",
    ]);
    let (id, created) = create_and_wait(scene, "task-create-text", create, daemons, "text", "1");
    assert!(
        created.stdout.contains("equal: agree"),
        "{}",
        created.context()
    );
    scene.step(&format!("text task {id} validated"));
    id
}

/// `verinfer task status <id>` shows the text task validated, the GPU model its nodes declared
/// and the relayer's view.
fn task_status_shows_the_text_task(scene: &Scene, dapp: &DappBuilder, id: u64) {
    let status = task_status(scene, dapp, "task-status-text", id);
    assert!(
        status
            .stdout
            .contains(&format!("task {id} | text | Validated |")),
        "{}",
        status.context()
    );
    assert!(status.stdout.contains(GPU_MODEL), "{}", status.context());
    assert!(
        status.stdout.contains("relayer: indexed as"),
        "{}",
        status.context()
    );
}

/// `verinfer task result <id> --out DIR` verifies the text output against the digest and writes
/// `output.json` (at most 16 tokens) and `output.txt` (its text).
fn task_result_verifies_the_text_output(
    scene: &Scene,
    dapp: &DappBuilder,
    daemons: &Daemons,
    id: u64,
) -> Validated {
    let (out, fetched) = task_result(scene, dapp, daemons, "task-result-text", id);
    assert!(
        fetched
            .stdout
            .contains(&format!("verified the text output of task {id}")),
        "{}",
        fetched.context()
    );
    let output: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("output.json")).unwrap()).unwrap();
    let plain = std::fs::read_to_string(out.join("output.txt")).unwrap();
    assert_eq!(output["text"].as_str(), Some(plain.as_str()));
    assert!(
        output["token_ids"]
            .as_array()
            .is_some_and(|tokens| tokens.len() <= 16),
        "{output}"
    );
    Validated {
        id,
        output: Output::Text(plain),
    }
}

/// `verinfer task create --image … --wait` without `--fee` pays the network minimum and ends with
/// the task validated, every pHash within the owner's threshold 12 (not the default 10). Returns
/// the task id.
fn image_task_is_validated_under_the_owners_threshold(
    scene: &Scene,
    dapp: &DappBuilder,
    daemons: &Daemons,
    models: &Path,
) -> u64 {
    let sd = models.join("tiny-sd");
    let create = dapp.task(&[
        "create",
        "--image",
        "--prompt",
        IMAGE_PROMPT,
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
        "--wait",
    ]);
    let kind = "image (1 image)";
    let (id, created) = create_and_wait(scene, "task-create-image", create, daemons, kind, "1.1");
    assert!(
        created
            .stdout
            .contains("fee 1.1 tokens: the network minimum"),
        "no --fee: the minimum (1 token + 0.1 per image):\n{}",
        created.context()
    );
    assert!(
        created.stdout.contains("all <= 12: agree"),
        "the owner's threshold 12 applies:\n{}",
        created.context()
    );
    scene.step(&format!("image task {id} validated"));
    id
}

/// `verinfer task status <id>` shows the image task validated; `task result <id> --out DIR`
/// verifies the image against the revealed pHashes and writes `image-0.png`.
fn task_status_and_result_verify_the_image(
    scene: &Scene,
    dapp: &DappBuilder,
    daemons: &Daemons,
    id: u64,
) -> Validated {
    let status = task_status(scene, dapp, "task-status-image", id);
    assert!(
        status
            .stdout
            .contains(&format!("task {id} | image (1 image) | Validated |")),
        "{}",
        status.context()
    );
    let (out, fetched) = task_result(scene, dapp, daemons, "task-result-image", id);
    assert!(
        fetched
            .stdout
            .contains(&format!("verified 1 image(s) of task {id}")),
        "{}",
        fetched.context()
    );
    let png = std::fs::read(out.join("image-0.png")).unwrap();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "image-0.png is not a PNG"
    );
    Validated {
        id,
        output: Output::Image(png),
    }
}

/// Runs `task create … --wait`, which must succeed and print the task validated with its `kind`
/// and `fee` (tokens). Returns the task id and the run.
fn create_and_wait(
    scene: &Scene,
    name: &str,
    create: Command,
    daemons: &Daemons,
    kind: &str,
    fee: &str,
) -> (u64, Ran) {
    let created = scene
        .run(name, create, Duration::from_secs(150))
        .ok(|| daemons.tails());
    let id = created_id(&created.stdout).unwrap_or_else(|| panic!("{}", created.context()));
    assert!(
        created.stdout.contains(&format!(
            "task {id} | {kind} | Validated | fee {fee} tokens"
        )),
        "{}\n{}",
        created.context(),
        daemons.tails()
    );
    (id, created)
}

/// `verinfer task status <id>`, which must succeed.
fn task_status(scene: &Scene, dapp: &DappBuilder, name: &str, id: u64) -> Ran {
    let status = dapp.task(&["status", &id.to_string()]);
    scene.run(name, status, SHORT).ok(String::new)
}

/// `verinfer task result <id> --out <scene>/<name without "task-">`, which must succeed.
/// Returns the output directory and the run.
fn task_result(
    scene: &Scene,
    dapp: &DappBuilder,
    daemons: &Daemons,
    name: &str,
    id: u64,
) -> (PathBuf, Ran) {
    let out = scene.dir.join(name.trim_start_matches("task-"));
    let mut fetch = dapp.task(&["result", &id.to_string(), "--out"]);
    fetch.arg(&out);
    let fetched = scene.run(name, fetch, SHORT).ok(|| daemons.tails());
    (out, fetched)
}

/// The relayer's `/healthz` reports the database ok and an indexed head; `/metrics` counts
/// upload verifications.
fn relayer_healthz_and_metrics(relayer: &RelayerSetup, daemons: &Daemons) {
    let health = get_json(&relayer.url, "/healthz", &|| daemons.tails());
    assert_eq!(
        (health["status"].as_str(), health["database"].as_str()),
        (Some("ok"), Some("ok")),
        "{health}"
    );
    assert!(health["indexed_head"].as_u64().is_some(), "{health}");

    let (code, metrics) = http_get(&relayer.url, "/metrics").unwrap();
    let metrics = String::from_utf8_lossy(&metrics);
    assert_eq!(code, 200, "{metrics}");
    assert!(
        metrics.contains("verinfer_relayer_upload_verifications_total"),
        "{metrics}"
    );
}

/// `GET /v1/tasks/{id}`: the task validated with its kind, creator, three nodes and the owner's
/// threshold; `GET /v1/tasks/{id}/args`: the args with the prompt it was created with.
fn relayer_serves_the_task_and_its_args(
    relayer: &RelayerSetup,
    daemons: &Daemons,
    task: &Validated,
    creator: &Account,
) {
    let (id, kind) = (task.id, task.kind());
    let view = get_json(&relayer.url, &format!("/v1/tasks/{id}"), &|| {
        daemons.tails()
    });
    assert_eq!(
        (view["task_id"].as_u64(), view["kind"].as_str()),
        (Some(id), Some(kind)),
        "{view}"
    );
    assert_eq!(view["status"], "validated", "{view}");
    assert_eq!(view["args_available"], true, "{view}");
    assert_eq!(view["nodes"].as_array().map(Vec::len), Some(3), "{view}");
    assert_eq!(view["settlement"]["threshold"], 12, "{view}");
    assert_eq!(
        view["creator"].as_str().map(str::to_lowercase),
        Some(creator.address.to_lowercase()),
        "{view}"
    );

    let (code, args) = http_get(&relayer.url, &format!("/v1/tasks/{id}/args")).unwrap();
    assert_eq!(code, 200);
    let args: serde_json::Value = serde_json::from_slice(&args).unwrap();
    // Image args hold `prompt`, text args `input.prompt` (docs/task-format.md).
    let prompt = args.get("prompt").or_else(|| args["input"].get("prompt"));
    assert_eq!(
        prompt.and_then(|prompt| prompt.as_str()),
        Some(task.prompt()),
        "{args}"
    );
}

/// Every agreeing node uploads right after its reveal: `GET /v1/tasks/{id}/results` ends with
/// none pending and three uploads, the first equal to what `task result` verified (the text, or
/// the PNG served at `/v1/blobs/0x…`); `GET /v1/tasks/{id}` then marks every node agreed and
/// uploaded.
fn relayer_holds_every_nodes_upload(relayer: &RelayerSetup, daemons: &Daemons, task: &Validated) {
    let (id, url) = (task.id, relayer.url.as_str());
    let context = || daemons.tails();
    let results = wait_for(Duration::from_secs(30), || {
        let results = get_json(url, &format!("/v1/tasks/{id}/results"), &context);
        results["pending_nodes"]
            .as_array()
            .is_some_and(Vec::is_empty)
            .then_some(results)
    })
    .unwrap_or_else(|| panic!("task {id}: uploads still pending after 30 s\n{}", context()));
    assert_eq!(results["kind"], task.kind(), "{results}");
    let uploads = results["results"].as_array().unwrap();
    assert_eq!(
        uploads.len(),
        3,
        "all three nodes agreed and uploaded: {results}"
    );
    match &task.output {
        Output::Text(plain) => assert_eq!(
            uploads[0]["output"]["text"].as_str(),
            Some(plain.as_str()),
            "{results}"
        ),
        Output::Image(png) => {
            let blob_url = uploads[0]["images"][0]["url"].as_str().unwrap();
            assert!(blob_url.starts_with("/v1/blobs/0x"), "{blob_url}");
            let (code, blob) = http_get(url, blob_url).unwrap();
            assert_eq!(code, 200);
            assert_eq!(&blob, png, "the relayer's blob is the verified image-0.png");
        }
    }
    let view = get_json(url, &format!("/v1/tasks/{id}"), &context);
    for node in view["nodes"].as_array().unwrap() {
        assert_eq!(
            (node["agreed"].as_bool(), node["uploaded"].as_bool()),
            (Some(true), Some(true)),
            "{view}"
        );
    }
}

/// The relayer's view in `verinfer task status` now counts the uploads too.
fn task_status_counts_the_uploads(scene: &Scene, dapp: &DappBuilder, id: u64) {
    let status = task_status(scene, dapp, "task-status-text-uploaded", id);
    assert!(
        status
            .stdout
            .contains("args held; uploads from 3 of the 3 agreeing nodes"),
        "{}",
        status.context()
    );
}

/// `GET /v1/tasks/999` answers 404 with an error code; `GET /v1/nodes` lists the three nodes
/// with the GPU they declared.
fn relayer_lists_the_nodes_and_404s_an_unknown_task(
    relayer: &RelayerSetup,
    daemons: &Daemons,
    accounts: &[Account],
) {
    let (code, missing) = http_get(&relayer.url, "/v1/tasks/999").unwrap();
    assert_eq!(code, 404, "{}", String::from_utf8_lossy(&missing));
    let missing: serde_json::Value = serde_json::from_slice(&missing).unwrap();
    assert!(missing["error"]["code"].is_string(), "{missing}");

    let nodes_page = "/v1/nodes?offset=0&limit=100";
    let listed = get_json(&relayer.url, nodes_page, &|| daemons.tails());
    let listed_nodes = listed["nodes"].as_array().unwrap();
    assert_eq!(listed_nodes.len(), 3, "{listed}");
    for account in accounts {
        let address = &account.address;
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
}

/// Node 1's `/metrics` counts tasks, and `verinfer node status` lists both tasks, validated and
/// agreed.
fn node_metrics_and_status_list_both_tasks(
    scene: &Scene,
    operators: &Operators,
    daemons: &Daemons,
    ids: [u64; 2],
) {
    let node_metrics_url = format!("http://{}", operators.metrics);
    let (code, metrics) = http_get(&node_metrics_url, "/metrics").unwrap();
    let metrics = String::from_utf8_lossy(&metrics);
    assert_eq!(code, 200, "{metrics}");
    assert!(metrics.contains("verinfer_node_tasks_total"), "{metrics}");

    let status = operators.status_node1(scene, || daemons.tails());
    for id in ids {
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
    scene.step("relayer routes and node status checked");
}

/// The first two nodes get Ctrl-C (SIGINT), the third node and the relayer SIGTERM (systemd's
/// stop): each was still running and exits with status 0 within 20 s.
fn ctrl_c_and_sigterm_stop_every_daemon(scene: &Scene, mut daemons: Daemons) {
    let Daemons { nodes, relayer } = &mut daemons;
    for (index, proc) in nodes.iter_mut().chain([&mut *relayer]).enumerate() {
        assert!(
            proc.exited().is_none(),
            "{} exited early\n{}",
            proc.name,
            proc.tails()
        );
        proc.signal(if index < 2 { "-INT" } else { "-TERM" });
    }
    for proc in nodes.iter_mut().chain([&mut *relayer]) {
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
    scene.step("nodes and relayer stopped by Ctrl-C");
}

/// The `stake     N (T tokens)` line of `verinfer node status`: N.
fn stake_of(stdout: &str) -> u128 {
    stdout
        .lines()
        .find_map(|line| line.strip_prefix("stake     "))
        .and_then(|stake| stake.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no stake line in:\n{stdout}"))
}

/// `verinfer node add-stake --amount 5` (daemon stopped) adds 5 tokens, as `node status` shows;
/// `--amount 0` is refused.
fn node_add_stake_raises_the_stake(scene: &Scene, operators: &Operators) {
    let before = stake_of(&operators.status_node1(scene, String::new).stdout);
    let add = operators.command(1, &["add-stake", "--amount", "5"]);
    let ran = scene.run("node1-add-stake", add, SHORT).ok(String::new);
    assert!(
        ran.stdout.contains(&format!(
            "node {} added 5 tokens to its stake, now ",
            operators.accounts[0].address
        )),
        "{}",
        ran.context()
    );
    let after = stake_of(&operators.status_node1(scene, String::new).stdout);
    assert_eq!(
        after,
        before + 5 * 10u128.pow(18),
        "addStake added 5 tokens"
    );
    let zero = operators.command(1, &["add-stake", "--amount", "0"]);
    let ran = scene.run("node1-add-stake-zero", zero, SHORT);
    assert!(!ran.status.success(), "{}", ran.context());
    assert!(
        ran.stderr
            .contains("the amount to add to the stake is zero"),
        "{}",
        ran.context()
    );
}

/// `verinfer node leave` returns the whole stake (`node status`: state None, stake 0); leaving
/// again is refused.
fn node_leave_returns_the_stake_once(scene: &Scene, operators: &Operators) {
    let leave = operators.command(1, &["leave"]);
    let ran = scene.run("node1-leave", leave, SHORT).ok(String::new);
    assert!(
        ran.stdout.contains(&format!(
            "node {} left the network; stake of ",
            operators.accounts[0].address
        )) && ran.stdout.contains("tokens returned (tx 0x"),
        "{}",
        ran.context()
    );
    let status = operators.status_node1(scene, String::new);
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
    let leave_again = operators.command(1, &["leave"]);
    let ran = scene.run("node1-leave-again", leave_again, SHORT);
    assert!(!ran.status.success(), "{}", ran.context());
    assert!(
        ran.stderr
            .contains("cannot leave: it is None (only an Available or Busy node can)"),
        "{}",
        ran.context()
    );
    scene.step("node1 added stake and left");
}

/// With nothing credited (node 1 left while idle: its stake came back at once; every task
/// validated: no refund), `verinfer node withdraw` and `verinfer withdraw` are refused before
/// any transaction.
fn nothing_credited_means_nothing_to_withdraw(
    scene: &Scene,
    operators: &Operators,
    dapp: &DappBuilder,
) {
    let node = operators.command(1, &["withdraw"]);
    let ran = scene.run("node1-withdraw", node, SHORT);
    assert!(!ran.status.success(), "{}", ran.context());
    assert!(
        ran.stderr.contains("nothing to withdraw"),
        "{}",
        ran.context()
    );
    let mut creator = verinfer();
    creator
        .current_dir(&dapp.dir)
        .arg("withdraw")
        .env("VERINFER_KEY", &dapp.creator.key)
        .env("VERINFER_RPC_URL", &dapp.rpc)
        .env("VERINFER_RELAYER_URL", &dapp.relayer_url)
        .env("VERINFER_DEPLOYMENT", &dapp.deployment);
    let ran = scene.run("creator-withdraw", creator, SHORT);
    assert!(!ran.status.success(), "{}", ran.context());
    assert!(
        ran.stderr.contains("nothing to withdraw"),
        "{}",
        ran.context()
    );
    scene.step("nothing to withdraw, refused");
}
