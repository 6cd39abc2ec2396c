//! FAULT TEST (issue #14): a network of processes — anvil, a relayer (`verinfer relayer
//! --config`) and five node daemons (`verinfer node run --config`) on the tiny models — works
//! through a stream of image and text tasks while nodes and the relayer are killed (`kill -9`)
//! and restarted with the same data directory, and a node is stopped (`SIGSTOP`) and continued,
//! at points picked by watching the daemons' log lines:
//!
//! - a node killed while it runs inference (`running inference`),
//! - a node killed with its commit in flight (`result computed and persisted`: the commit is sent
//!   next),
//! - a node killed with its reveal in flight (the task's third `committed`: the reveals go next),
//! - a node killed during its upload (the task's third `revealed`: the last reveal settles, then
//!   every node uploads),
//! - the relayer killed while nodes compute (args fetched) or while they upload,
//! - a node stopped (`SIGSTOP`) for a few seconds while it computes, then continued.
//!
//! The plan (every kind twice, two more at random, shuffled), the pauses before each strike and
//! the downtimes (1–3 s) come from a seeded RNG: the seed is printed (`FAULTS_SEED=<n>` reruns
//! it). One fault at a time, each on a later task than the one before, on what the logs show
//! from the moment it is armed. Killed processes restart within seconds, far inside the commit
//! and reveal windows (45 s and 30 s). Tasks (alternately image and text, created with
//! `verinfer-client`, at most three ahead of the oldest running one) keep coming until every
//! planned fault has landed (at least 16, at most 80). At the end it asserts, reading the chain
//! and the relayer:
//!
//! - (a) no node was slashed or kicked (every node is honest; `NodeSlashed` / `NodeKicked`),
//! - (b) no transaction reverted: every block from the deployment to the head, every receipt;
//!   each reverted one is printed with its sender, function and gas,
//! - (c) the relayer's `/v1/tasks/{id}` agrees with the chain on every task (status, nodes,
//!   masks, deadlines, settlement),
//! - (d) no upload is lost: every validated task's result is fetched from the relayer and
//!   verified against the chain by `verinfer-client`, and every agreeing node's upload arrives,
//!
//! and every task ends validated and every planned fault landed. A summary line gives the figures (tasks, faults by kind,
//! slashes, transactions and reverts, uploads, wall time). Failures are collected, then reported
//! together with every daemon's log tail. Every child is killed when the test ends or panics
//! (drop guards); their logs are in the temporary directory (kept, and named, on failure).
//!
//! Needs the npm-installed anvil (`npm ci`).

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    fs::OpenOptions,
    io::Write as _,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use alloy::{
    primitives::{U256, hex},
    providers::Provider,
    signers::local::PrivateKeySigner,
};
use verinfer_abi::{ChainTask, IVerinfer, TaskStatus, Verinfer};
use verinfer_client::{Client, ClientError};
use verinfer_devchain::{AnvilOptions, Chain, Deploy, TinyModels, default_init_params};
use verinfer_task::{
    ARGS_VERSION, ImageArgs, Precision, Sampling, Scheduler, TaskArgs, TextArgs, TextInput,
};
use verinfer_wire::RelayerClient;

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const TOKEN: u128 = 1_000_000_000_000_000_000;
/// The GPU model every node declares (text tasks need three nodes of one model).
const GPU: &str = "faults-gpu";
/// Node daemons.
const NODES: usize = 5;
/// Tasks in the stream, alternately image and text: at least `MIN_TASKS`, more while faults
/// of the plan are still to land, at most `MAX_TASKS`.
const MIN_TASKS: u64 = 16;
const MAX_TASKS: u64 = 80;
/// Tasks created ahead of the oldest one still running (the stream is paced by the network).
const AHEAD: usize = 3;
/// Commit and reveal windows (seconds): a restart within a few seconds is far inside them.
const COMMIT_WINDOW: u32 = 45;
const REVEAL_WINDOW: u32 = 30;
/// How long the tasks may take, all together, to end.
const TASKS_TIMEOUT: Duration = Duration::from_secs(240);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `text` without ANSI escape sequences (`ESC [ … letter`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// xorshift64*: the fault plan's RNG (seeded, printed, reproducible).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value in `range` (end excluded).
    fn range(&mut self, range: std::ops::Range<u64>) -> u64 {
        range.start + self.next() % (range.end - range.start).max(1)
    }

    fn millis(&mut self, range: std::ops::Range<u64>) -> Duration {
        Duration::from_millis(self.range(range))
    }
}

/// A restartable child process; stdout and stderr appended to one log file across restarts.
/// Killed when dropped.
struct Proc {
    name: String,
    log: PathBuf,
    make: Box<dyn Fn() -> Command + Send>,
    child: Option<Child>,
    starts: usize,
    stopped: bool,
}

impl Proc {
    fn spawn(name: &str, log: PathBuf, make: Box<dyn Fn() -> Command + Send>) -> Self {
        let mut proc = Self {
            name: name.to_owned(),
            log,
            make,
            child: None,
            starts: 0,
            stopped: false,
        };
        proc.start();
        proc
    }

    fn start(&mut self) {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        writeln!(file, "==== faults test: start #{} ====", self.starts + 1).unwrap();
        let err = file.try_clone().unwrap();
        let mut command = (self.make)();
        let child = command
            .stdout(file)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {} ({command:?}): {error}", self.name));
        self.child = Some(child);
        self.starts += 1;
        self.stopped = false;
    }

    /// `kill -9`, and reaps it.
    fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.stopped = false;
    }

    fn signal(&mut self, signal: &str) {
        let Some(child) = &self.child else { return };
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal} {} failed", self.name);
        self.stopped = signal == "-STOP";
    }

    /// Still running (not exited)?
    fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| child.try_wait().ok().flatten().is_none())
    }

    fn text(&self) -> String {
        strip_ansi(&std::fs::read_to_string(&self.log).unwrap_or_default())
    }

    fn tail(&self, lines: usize) -> String {
        let text = self.text();
        let all: Vec<&str> = text.lines().collect();
        format!(
            "--- {} ({}) tail ---\n{}\n",
            self.name,
            self.log.display(),
            all[all.len().saturating_sub(lines)..].join("\n")
        )
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.stopped {
            self.signal("-CONT");
        }
        self.kill9();
    }
}

/// The relayer and the nodes.
struct Fleet {
    relayer: Proc,
    nodes: Vec<Proc>,
    /// Set when the test ends: nothing starts again.
    closed: bool,
}

impl Fleet {
    fn tails(&self) -> String {
        self.nodes
            .iter()
            .chain([&self.relayer])
            .map(|proc| proc.tail(30))
            .collect()
    }

    fn kill_all(&mut self) {
        self.closed = true;
        for proc in self.nodes.iter_mut().chain([&mut self.relayer]) {
            if proc.stopped {
                proc.signal("-CONT");
            }
            proc.kill9();
        }
    }
}

type SharedFleet = Arc<Mutex<Fleet>>;

fn lock(fleet: &SharedFleet) -> MutexGuard<'_, Fleet> {
    fleet
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Kills every child and stops the fault driver when the test ends, panicking or not.
struct Guard {
    fleet: SharedFleet,
    done: Arc<AtomicBool>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
        lock(&self.fleet).kill_all();
    }
}

/// What a node log line says, for one task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ev {
    Inference,
    Persisted,
    Committed,
    Revealed,
    Uploaded,
}

/// Every `(event, task)` a node's log shows, in order.
fn node_events(log: &str) -> Vec<(Ev, u64)> {
    let patterns = [
        (": running inference task=", Ev::Inference),
        (": result computed and persisted task=", Ev::Persisted),
        (": committed task=", Ev::Committed),
        (": revealed task=", Ev::Revealed),
        (": result uploaded task=", Ev::Uploaded),
    ];
    let mut events = Vec::new();
    for line in log.lines() {
        for (pattern, ev) in patterns {
            if let Some((_, rest)) = line.split_once(pattern) {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                if let Ok(task) = digits.parse() {
                    events.push((ev, task));
                }
            }
        }
    }
    events
}

/// How many times the node's log says it started (`node started`).
fn node_starts(log: &str) -> usize {
    log.lines()
        .filter(|line| line.contains(": node started"))
        .count()
}

/// The kinds of fault injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Fault {
    KillNodeCompute,
    KillNodeCommit,
    KillNodeReveal,
    KillNodeUpload,
    KillRelayerCompute,
    KillRelayerUpload,
    StopNode,
}

impl Fault {
    const ALL: [Self; 7] = [
        Self::KillNodeCompute,
        Self::KillNodeCommit,
        Self::KillNodeReveal,
        Self::KillNodeUpload,
        Self::KillRelayerCompute,
        Self::KillRelayerUpload,
        Self::StopNode,
    ];

    fn describe(self) -> &'static str {
        match self {
            Self::KillNodeCompute => "kill -9 node during compute",
            Self::KillNodeCommit => "kill -9 node with its commit in flight",
            Self::KillNodeReveal => "kill -9 node with its reveal in flight",
            Self::KillNodeUpload => "kill -9 node during upload",
            Self::KillRelayerCompute => "kill -9 relayer while nodes compute",
            Self::KillRelayerUpload => "kill -9 relayer during uploads",
            Self::StopNode => "SIGSTOP/SIGCONT node during compute",
        }
    }

    fn short(self) -> &'static str {
        match self {
            Self::KillNodeCompute => "node-compute",
            Self::KillNodeCommit => "node-commit",
            Self::KillNodeReveal => "node-reveal",
            Self::KillNodeUpload => "node-upload",
            Self::KillRelayerCompute => "relayer-compute",
            Self::KillRelayerUpload => "relayer-upload",
            Self::StopNode => "node-sigstop",
        }
    }

    /// The pause between seeing the trigger and striking.
    fn delay(self, rng: &mut Rng) -> Duration {
        match self {
            Self::KillNodeCompute | Self::StopNode => rng.millis(0..300),
            Self::KillNodeCommit => rng.millis(0..20),
            Self::KillNodeReveal | Self::KillNodeUpload => rng.millis(0..150),
            Self::KillRelayerCompute | Self::KillRelayerUpload => rng.millis(0..200),
        }
    }
}

/// A fault that landed.
#[derive(Debug)]
struct Injected {
    fault: Fault,
    task: u64,
    victim: String,
    at: Duration,
}

/// Where a fault strikes: a task after `after` and the victim (`None`: the relayer), judged
/// from the nodes' `events` of which only those from index `fresh[node]` on are new (logged
/// since the fault was armed): a fault strikes on what happens now, not on old lines.
fn find_target(
    fault: Fault,
    events: &[Vec<(Ev, u64)>],
    fresh: &[usize],
    after: u64,
) -> Option<(u64, Option<usize>)> {
    let has = |node: usize, ev: Ev, task: u64| events[node].contains(&(ev, task));
    let new_events = |node: usize| events[node][fresh[node].min(events[node].len())..].iter();
    // The earliest task after `after` with a new `ev` in some node's log: (task, first node).
    let first_with = |ev: Ev| {
        (0..events.len())
            .flat_map(|node| {
                new_events(node)
                    .filter(move |(e, t)| *e == ev && *t > after)
                    .map(move |(_, t)| (*t, node))
            })
            .min()
    };
    // The earliest task after `after` where a new `ev` made three nodes that logged `ev`, with
    // a node of it that has not logged `next` yet (the victim) when `victim` is asked for.
    let all_three = |ev: Ev, next: Ev, victim: bool| {
        let mut tasks: Vec<u64> = (0..events.len())
            .flat_map(new_events)
            .filter(|(e, t)| *e == ev && *t > after)
            .map(|(_, t)| *t)
            .collect();
        tasks.sort_unstable();
        tasks.dedup();
        tasks.into_iter().find_map(|task| {
            let nodes: Vec<usize> = (0..events.len()).filter(|&n| has(n, ev, task)).collect();
            if nodes.len() < 3 {
                return None;
            }
            match nodes.into_iter().find(|&n| !has(n, next, task)) {
                Some(node) => Some((task, Some(node))),
                None if !victim => Some((task, None)),
                None => None,
            }
        })
    };
    match fault {
        Fault::KillNodeCompute | Fault::StopNode => {
            first_with(Ev::Inference).map(|(task, node)| (task, Some(node)))
        }
        Fault::KillNodeCommit => first_with(Ev::Persisted).map(|(task, node)| (task, Some(node))),
        Fault::KillRelayerCompute => first_with(Ev::Inference).map(|(task, _)| (task, None)),
        Fault::KillNodeReveal => all_three(Ev::Committed, Ev::Revealed, true),
        Fault::KillNodeUpload => all_three(Ev::Revealed, Ev::Uploaded, true),
        Fault::KillRelayerUpload => {
            all_three(Ev::Revealed, Ev::Uploaded, false).map(|(task, _)| (task, None))
        }
    }
}

/// Injects the planned faults one after another, each on a later task than the one before,
/// until the plan is done or `done` is set. Returns what landed and the problems seen
/// (a process that did not come back).
fn drive_faults(
    fleet: SharedFleet,
    plan: Vec<Fault>,
    mut rng: Rng,
    done: Arc<AtomicBool>,
    started: Instant,
) -> (Vec<Injected>, Vec<String>) {
    let mut injected = Vec::new();
    let mut problems = Vec::new();
    let mut after = 0u64;
    let sleep_unless_done = |duration: Duration| {
        let until = Instant::now() + duration;
        while Instant::now() < until && !done.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    for (index, fault) in plan.iter().copied().enumerate() {
        // Arm: only what the nodes log from now on triggers it.
        let fresh: Vec<usize> = lock(&fleet)
            .nodes
            .iter()
            .map(|node| node_events(&node.text()).len())
            .collect();
        let target = loop {
            if done.load(Ordering::SeqCst) {
                return (injected, problems);
            }
            let events: Vec<Vec<(Ev, u64)>> = lock(&fleet)
                .nodes
                .iter()
                .map(|node| node_events(&node.text()))
                .collect();
            if let Some(target) = find_target(fault, &events, &fresh, after) {
                break target;
            }
            std::thread::sleep(Duration::from_millis(25));
        };
        let (task, victim) = target;
        std::thread::sleep(fault.delay(&mut rng));
        let downtime = rng.millis(1_000..3_000);
        let name;
        let at = started.elapsed();
        {
            let mut fleet = lock(&fleet);
            let proc = match victim {
                Some(node) => &mut fleet.nodes[node],
                None => &mut fleet.relayer,
            };
            name = proc.name.clone();
            if fault == Fault::StopNode {
                proc.signal("-STOP");
            } else {
                proc.kill9();
            }
        }
        eprintln!(
            "[{:6.1}s] fault {}/{}: {} ({name}, task {task}); back in {:.1} s",
            at.as_secs_f64(),
            index + 1,
            plan.len(),
            fault.describe(),
            downtime.as_secs_f64()
        );
        injected.push(Injected {
            fault,
            task,
            victim: name.clone(),
            at,
        });
        // Back within the windows, even when the test is ending (it checks the network after).
        let until = Instant::now() + downtime;
        while Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        let expected_starts = {
            let mut fleet = lock(&fleet);
            if fleet.closed {
                return (injected, problems);
            }
            let proc = match victim {
                Some(node) => &mut fleet.nodes[node],
                None => &mut fleet.relayer,
            };
            if fault == Fault::StopNode {
                proc.signal("-CONT");
                None
            } else {
                proc.start();
                Some(proc.starts)
            }
        };
        // Wait until a restarted node says it started again (the relayer: a moment).
        if let (Some(starts), Some(node)) = (expected_starts, victim) {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let mut fleet = lock(&fleet);
                let proc = &mut fleet.nodes[node];
                if node_starts(&proc.text()) >= starts {
                    break;
                }
                if !proc.running() || Instant::now() >= deadline {
                    problems.push(format!(
                        "{name} did not start again after {} (running: {})\n{}",
                        fault.describe(),
                        proc.running(),
                        proc.tail(40)
                    ));
                    break;
                }
                drop(fleet);
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        after = task;
        sleep_unless_done(rng.millis(500..2_000));
    }
    (injected, problems)
}

/// The fault plan: every kind twice, then two more drawn at random, shuffled.
fn fault_plan(rng: &mut Rng) -> Vec<Fault> {
    let mut plan = Fault::ALL.to_vec();
    plan.extend(Fault::ALL);
    for _ in 0..2 {
        plan.push(Fault::ALL[rng.range(0..Fault::ALL.len() as u64) as usize]);
    }
    for i in (1..plan.len()).rev() {
        let j = rng.range(0..i as u64 + 1) as usize;
        plan.swap(i, j);
    }
    plan
}

fn image_args(models: &TinyModels, index: u64) -> TaskArgs {
    TaskArgs::Image(ImageArgs {
        version: ARGS_VERSION,
        model: models.sd.clone(),
        prompt: format!("a lighthouse in a storm, take {index}"),
        negative_prompt: None,
        width: 64,
        height: 64,
        steps: 2,
        guidance_scale: 7.5,
        scheduler: Scheduler::Ddim,
        num_images: 1,
        seed: index,
        precision: Precision::F32,
    })
}

fn text_args(models: &TinyModels, index: u64) -> TaskArgs {
    TaskArgs::Text(TextArgs {
        version: ARGS_VERSION,
        model: models.llama.clone(),
        input: TextInput::Prompt(format!("Once upon a time, take {index}")),
        max_tokens: 8,
        sampling: Sampling::Greedy {},
        seed: index,
        stop: Vec::new(),
    })
}

/// A command with a clean `VERINFER_*` environment and plain logs.
fn verinfer() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_verinfer"));
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

fn toml_path(path: &Path) -> String {
    let path = path.to_str().unwrap();
    assert!(!path.contains(['"', '\\']), "{path}");
    format!("\"{path}\"")
}

/// Creates a task, retrying while the relayer is down (a fault may have killed it).
async fn create(client: &Client, args: &TaskArgs) -> TestResult<u64> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut said = false;
    loop {
        let gpu = matches!(args, TaskArgs::Text(_)).then_some(GPU);
        match client.create_task(args, None, 0, gpu).await {
            Ok(created) => return Ok(created.task_id),
            Err(ClientError::Relayer(error)) if tokio::time::Instant::now() < deadline => {
                if !said {
                    eprintln!("creating a task: relayer error ({error}); retrying");
                    said = true;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_and_relayer_killed_and_restarted_over_a_task_stream() -> TestResult {
    let started = Instant::now();
    let step = |what: &str| eprintln!("[{:6.1}s] {what}", started.elapsed().as_secs_f64());
    let seed = std::env::var("FAULTS_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                % 1_000_000_007
        });
    let mut rng = Rng::new(seed);
    let plan = fault_plan(&mut rng);
    eprintln!(
        "fault seed {seed} (rerun: FAULTS_SEED={seed}); plan: {}",
        plan.iter()
            .map(|f| f.short())
            .collect::<Vec<_>>()
            .join(", ")
    );

    let temp = tempfile::tempdir()?;
    let dir = temp.path().to_path_buf();
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs)?;
    eprintln!("logs in {}", logs.display());

    // Chain: anvil (1 s blocks, transactions mined at once), contracts, GPU model, tokens.
    let models_dir = repo_root().join("target/e2e-models");
    let models = tokio::task::spawn_blocking(move || TinyModels::make(&models_dir, 0)).await??;
    let anvil = AnvilOptions {
        accounts: 10,
        log: Some(logs.join("anvil.log")),
        ..AnvilOptions::devnet()
    };
    let deploy = Deploy::Bindings {
        params: IVerinfer::Params {
            commitWindow: COMMIT_WINDOW,
            revealWindow: REVEAL_WINDOW,
            ..default_init_params()
        },
        treasury: 0,
    };
    let chain = Chain::start(&anvil, deploy).await?;
    let deployment = *chain.deployment();
    let deployment_path = dir.join("deployment.json");
    deployment.save(&deployment_path)?;
    chain.add_gpu_models([(GPU, 8_192)]).await?;
    let creator = chain.key(1)?;
    let node_keys: Vec<PrivateKeySigner> = (2..2 + NODES)
        .map(|i| chain.key(i))
        .collect::<Result<_, _>>()?;
    let mut grants = vec![(creator.address(), U256::from(1_000 * TOKEN))];
    grants.extend(
        node_keys
            .iter()
            .map(|key| (key.address(), U256::from(10_000 * TOKEN))),
    );
    chain.fund(grants).await?;
    let rpc = chain.rpc_url();
    step(&format!("anvil on {rpc}, Verinfer {}", deployment.verinfer));

    // The relayer, as a process.
    let relayer_listen = format!("127.0.0.1:{}", free_port());
    let relayer_url = url::Url::parse(&format!("http://{relayer_listen}/"))?;
    let relayer_toml = dir.join("relayer.toml");
    std::fs::write(
        &relayer_toml,
        format!(
            "listen = \"{relayer_listen}\"\nrpc_url = \"{rpc}\"\ndeployment = {}\ndata_dir = {}\npoll_interval_ms = 250\n",
            toml_path(&deployment_path),
            toml_path(&dir.join("relayer-data")),
        ),
    )?;
    let relayer = {
        let (config, cwd) = (relayer_toml.clone(), dir.clone());
        Proc::spawn(
            "relayer",
            logs.join("relayer.log"),
            Box::new(move || {
                let mut command = verinfer();
                command
                    .current_dir(&cwd)
                    .args(["relayer", "--config"])
                    .arg(&config);
                command
            }),
        )
    };
    let fleet: SharedFleet = Arc::new(Mutex::new(Fleet {
        relayer,
        nodes: Vec::new(),
        closed: false,
    }));
    let done = Arc::new(AtomicBool::new(false));
    let _guard = Guard {
        fleet: fleet.clone(),
        done: done.clone(),
    };
    let relayer_client = RelayerClient::new(relayer_url.clone());
    let deadline = Instant::now() + Duration::from_secs(60);
    while !matches!(relayer_client.health().await, Ok(health) if health.status == "ok") {
        assert!(
            Instant::now() < deadline,
            "the relayer is not healthy after 60 s\n{}",
            lock(&fleet).tails()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    step(&format!("relayer serving on {relayer_url}"));

    // Five node daemons, as processes.
    for (index, key) in node_keys.iter().enumerate() {
        let name = format!("node{}", index + 1);
        let config = dir.join(format!("{name}.toml"));
        std::fs::write(
            &config,
            format!(
                "rpc_url = \"{rpc}\"\ndeployment = {}\nrelayer_url = \"{relayer_url}\"\nmodels_dir = {}\ndata_dir = {}\npoll_interval_ms = 300\nargs_deadline_margin_secs = 10\ntx_timeout_secs = 30\n\n[key]\nprivate_key_env = \"VERINFER_NODE_KEY\"\n\n[identity]\ngpu_model = \"{GPU}\"\nvram_mib = 8192\n",
                toml_path(&deployment_path),
                toml_path(&models.dir),
                toml_path(&dir.join(format!("{name}-data"))),
            ),
        )?;
        let hex_key = format!("0x{}", hex::encode(key.to_bytes()));
        let cwd = dir.clone();
        let proc = Proc::spawn(
            &name,
            logs.join(format!("{name}.log")),
            Box::new(move || {
                let mut command = verinfer();
                command
                    .current_dir(&cwd)
                    .args(["node", "run", "--config"])
                    .arg(&config)
                    .env("VERINFER_NODE_KEY", &hex_key);
                command
            }),
        );
        lock(&fleet).nodes.push(proc);
    }
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        {
            let mut fleet = lock(&fleet);
            if fleet
                .nodes
                .iter()
                .all(|node| node_starts(&node.text()) >= 1)
            {
                break;
            }
            let exited: Vec<String> = fleet
                .nodes
                .iter_mut()
                .filter_map(|node| (!node.running()).then(|| node.name.clone()))
                .collect();
            assert!(
                exited.is_empty() && Instant::now() < deadline,
                "nodes not started (exited: {exited:?})\n{}",
                fleet.tails()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    step(&format!("{NODES} nodes joined and running"));

    // The fault driver, on its own thread, while the tasks run.
    let planned = plan.len();
    let plan_done = Arc::new(AtomicBool::new(false));
    let driver = {
        let (fleet, done, plan_done) = (fleet.clone(), done.clone(), plan_done.clone());
        std::thread::spawn(move || {
            let outcome = drive_faults(fleet, plan, rng, done, started);
            plan_done.store(true, Ordering::SeqCst);
            outcome
        })
    };

    // The task stream: created back to back (the nodes draw them), alternately image and text.
    let client = Client::new(rpc.clone(), creator, deployment, relayer_url.clone())
        .with_poll_interval(Duration::from_millis(250))
        .with_draw_after_create(false);
    let mut failures: Vec<String> = Vec::new();
    let deadline = Instant::now() + TASKS_TIMEOUT;
    let mut ids = Vec::new();
    let mut index = 0;
    'stream: while index < MAX_TASKS && (index < MIN_TASKS || !plan_done.load(Ordering::SeqCst)) {
        if ids.len() >= AHEAD {
            let oldest = ids[ids.len() - AHEAD];
            while !client.chain_task(oldest).await?.is_terminal() {
                if Instant::now() >= deadline {
                    failures.push(format!("task {oldest} not over after {TASKS_TIMEOUT:?}"));
                    break 'stream;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
        let args = if index % 2 == 0 {
            image_args(&models, index)
        } else {
            text_args(&models, index)
        };
        ids.push(create(&client, &args).await?);
        index += 1;
    }
    step(&format!("{} tasks created", ids.len()));

    let mut tasks: BTreeMap<u64, ChainTask> = BTreeMap::new();
    loop {
        for &id in &ids {
            tasks.insert(id, client.chain_task(id).await?);
        }
        if tasks.values().all(ChainTask::is_terminal) {
            break;
        }
        if Instant::now() >= deadline {
            failures.push(format!(
                "tasks not over after {TASKS_TIMEOUT:?}: {:?}",
                tasks
                    .values()
                    .filter(|task| !task.is_terminal())
                    .map(|task| (task.task_id, task.status))
                    .collect::<Vec<_>>()
            ));
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    step("every task is over");
    done.store(true, Ordering::SeqCst);
    let (injected, problems) = driver.join().map_err(|_| "the fault driver panicked")?;
    failures.extend(problems);
    {
        let mut guard = lock(&fleet);
        let fleet = &mut *guard;
        for proc in fleet.nodes.iter_mut().chain([&mut fleet.relayer]) {
            if !proc.running() {
                failures.push(format!("{} is not running at the end", proc.name));
            }
        }
    }
    if injected.len() < planned {
        failures.push(format!(
            "only {} of the {planned} planned faults landed",
            injected.len()
        ));
    }
    let not_validated: Vec<(u64, TaskStatus)> = tasks
        .values()
        .filter(|task| task.status != TaskStatus::Validated)
        .map(|task| (task.task_id, task.status))
        .collect();
    if !not_validated.is_empty() {
        failures.push(format!("tasks not validated: {not_validated:?}"));
    }

    // (d) no lost uploads: each validated task's result verifies, every agreeing node uploaded.
    let (mut uploads, mut expected_uploads) = (0usize, 0usize);
    for task in tasks
        .values()
        .filter(|task| task.status == TaskStatus::Validated)
    {
        let id = task.task_id;
        let out = dir.join("results").join(id.to_string());
        if let Err(error) = client
            .fetch_result_when_ready(id, &out, Duration::from_secs(60))
            .await
        {
            failures.push(format!(
                "(d) task {id}: the result does not verify: {error}"
            ));
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match relayer_client.results(id, false).await {
                Ok(results) if results.pending_nodes.is_empty() || Instant::now() >= deadline => {
                    uploads += results.results.len();
                    expected_uploads += results.results.len() + results.pending_nodes.len();
                    if !results.pending_nodes.is_empty() {
                        failures.push(format!(
                            "(d) task {id}: uploads never arrived from {:?}",
                            results.pending_nodes
                        ));
                    }
                    break;
                }
                Err(error) if Instant::now() >= deadline => {
                    failures.push(format!("(d) task {id}: GET results: {error}"));
                    break;
                }
                _ => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
    }
    step("results fetched and verified");

    // (c) the relayer agrees with the chain on every task.
    for &id in &ids {
        let report = client.task_report(id).await?;
        let chain_task = &report.task;
        let deadline = Instant::now() + Duration::from_secs(30);
        let view = loop {
            match relayer_client.task(id).await {
                Ok(view)
                    if view.status == chain_task.status
                        && view.settlement.is_some() == report.settlement.is_some() =>
                {
                    break Ok(view);
                }
                other if Instant::now() >= deadline => break Err(other),
                _ => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        };
        let view = match view {
            Ok(view) => view,
            Err(other) => {
                failures.push(format!(
                    "(c) task {id}: the relayer never caught up with the chain ({:?}): {other:?}",
                    chain_task.status
                ));
                continue;
            }
        };
        let mut differences = Vec::new();
        let nodes: Vec<_> = view.nodes.iter().map(|node| node.node).collect();
        let chain_nodes: Vec<_> = report.nodes.iter().map(|node| node.address).collect();
        let checks = [
            ("kind", view.kind == chain_task.kind),
            ("creator", view.creator == chain_task.creator),
            ("args_hash", view.args_hash == chain_task.args_hash),
            ("nodes", nodes == chain_nodes),
            (
                "committed_mask",
                view.committed_mask == chain_task.committed_mask,
            ),
            (
                "revealed_mask",
                view.revealed_mask == chain_task.revealed_mask,
            ),
            ("invalid_mask", view.invalid_mask == chain_task.invalid_mask),
            (
                "commit_deadline",
                view.commit_deadline == chain_task.commit_deadline,
            ),
            (
                "reveal_deadline",
                view.reveal_deadline == chain_task.reveal_deadline,
            ),
        ];
        differences.extend(checks.iter().filter(|(_, ok)| !ok).map(|(what, _)| *what));
        if let (Some(relayer), Some(chain)) = (&view.settlement, &report.settlement)
            && (relayer.outcome != chain.outcome
                || relayer.agreeing_mask != chain.agreeing_mask
                || relayer.distances != chain.distances
                || relayer.threshold != chain.threshold
                || relayer.reward_per_node != chain.reward_per_node.to_string())
        {
            differences.push("settlement");
        }
        for (node_view, node) in view.nodes.iter().zip(&report.nodes) {
            if node_view.agreed != node.agreed {
                differences.push("agreed");
            }
        }
        if !differences.is_empty() {
            failures.push(format!(
                "(c) task {id}: relayer and chain differ in {differences:?}\nrelayer: {view:?}\nchain: {report:?}"
            ));
        }
    }
    step("relayer and chain compared");

    // (a) no slash, no kick.
    let provider = chain.provider().clone();
    let verinfer = Verinfer::new(deployment.verinfer, provider.clone());
    let slashes = verinfer
        .NodeSlashed_filter()
        .from_block(deployment.deploy_block)
        .query()
        .await?;
    let kicks = verinfer
        .NodeKicked_filter()
        .from_block(deployment.deploy_block)
        .query()
        .await?;
    for (slash, log) in &slashes {
        failures.push(format!(
            "(a) node {} slashed in task {} ({:?}, {} base units; block {:?})",
            slash.node, slash.taskId, slash.reason, slash.amount, log.block_number
        ));
    }
    for (kick, _) in &kicks {
        failures.push(format!(
            "(a) node {} kicked in task {}",
            kick.node, kick.taskId
        ));
    }

    // (b) no reverted transaction, in any block since the deployment.
    let head = provider.get_block_number().await?;
    let scan =
        verinfer_devchain::scan_transactions(&provider, deployment.deploy_block, head).await?;
    let transactions = scan.transactions;
    let mut reverted: BTreeMap<String, usize> = BTreeMap::new();
    let mut reverted_lines = Vec::new();
    for tx in &scan.reverted {
        reverted_lines.push(format!(
            "reverted: {tx} ({})",
            fleet_name(&node_keys, tx.from)
        ));
        *reverted.entry(tx.call.clone()).or_default() += 1;
    }
    let reverts: usize = reverted.values().sum();
    for line in &reverted_lines {
        eprintln!("{line}");
    }
    if reverts != 0 {
        failures.push(format!(
            "(b) {reverts} of {transactions} transactions reverted: {reverted:?}"
        ));
    }

    // The figures.
    let mut by_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for fault in &injected {
        *by_kind.entry(fault.fault.short()).or_default() += 1;
    }
    let images = tasks
        .values()
        .filter(|task| task.kind == verinfer_abi::TaskKind::Image)
        .count();
    let validated = tasks
        .values()
        .filter(|task| task.status == TaskStatus::Validated)
        .count();
    let mut summary = format!(
        "faults summary: seed {seed}; tasks {} ({images} image, {} text; {validated} validated); faults {} (",
        tasks.len(),
        tasks.len() - images,
        injected.len()
    );
    summary.push_str(
        &by_kind
            .iter()
            .map(|(kind, count)| format!("{kind} {count}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    let _ = write!(
        summary,
        "); slashes {}, kicks {}; transactions {transactions}, reverted {reverts}{}; uploads {uploads}/{expected_uploads}; wall {:.0} s",
        slashes.len(),
        kicks.len(),
        if reverted.is_empty() {
            String::new()
        } else {
            format!(" {reverted:?}")
        },
        started.elapsed().as_secs_f64()
    );
    for fault in &injected {
        eprintln!(
            "  fault at {:6.1}s: {} ({}, task {})",
            fault.at.as_secs_f64(),
            fault.fault.describe(),
            fault.victim,
            fault.task
        );
    }
    eprintln!("{summary}");
    println!("{summary}");

    if !failures.is_empty() {
        let tails = lock(&fleet).tails();
        let kept = temp.keep();
        panic!(
            "{} failure(s):\n{}\n\n{summary}\nlogs kept in {}\n{tails}",
            failures.len(),
            failures.join("\n"),
            kept.join("logs").display()
        );
    }
    Ok(())
}

/// `nodeN`, `creator` or `deployer` for a dev account.
fn fleet_name(node_keys: &[PrivateKeySigner], address: alloy::primitives::Address) -> String {
    node_keys
        .iter()
        .position(|key| key.address() == address)
        .map_or_else(
            || "creator or deployer".to_owned(),
            |i| format!("node{}", i + 1),
        )
}
