//! What the process-level tests that run `verinfer devnet --keep-running` share: free ports, a
//! child process stopped when dropped, and the devnet read up to its connection help.
//!
//! Each test file includes it with `mod support;`; a file may use only part of it.
#![allow(dead_code)]

use std::{
    io::{BufRead, BufReader},
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed (SIGINT, then SIGKILL after `grace`) and reaped when dropped, so that a
/// failing assertion leaves nothing running.
pub struct Proc {
    pub name: &'static str,
    pub child: Child,
    pub grace: Duration,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGINT, then waits up to `grace` before SIGKILL.
    pub fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill")
            .args(["-INT", &self.pid().to_string()])
            .status();
        let deadline = Instant::now() + self.grace;
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_)) | Err(_)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("{} did not stop on SIGINT; killing it", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How long a devnet may take to print its connection help (a cold first run makes the models and
/// compiles the contracts).
const START_TIMEOUT: Duration = Duration::from_secs(420);

/// `verinfer devnet --keep-running`, read up to the `verinfer task result` line of its connection
/// help; lines printed after it can be read with [`KeptDevnet::read_until`].
pub struct KeptDevnet {
    /// Stopped (SIGINT, then SIGKILL) when the test ends or fails.
    pub proc: Proc,
    /// Everything it printed so far.
    pub stdout: String,
    pub stderr_log: PathBuf,
    extra: Vec<String>,
    lines: mpsc::Receiver<String>,
}

impl KeptDevnet {
    /// Starts it with its state under `data` (the tiny models shared with tests/devnet.rs, free
    /// ports) and `extra` arguments.
    pub fn start(data: &Path, extra: &[&str]) -> Self {
        let stderr_log = data.join("devnet.stderr.log");
        let child = Command::new(env!("CARGO_BIN_EXE_verinfer"))
            .arg("devnet")
            .arg("--keep-running")
            .arg("--data-dir")
            .arg(data.join("devnet"))
            // The tiny models are shared with tests/devnet.rs (made once).
            .arg("--models-dir")
            .arg(Path::new(env!("CARGO_TARGET_TMPDIR")).join("devnet-models"))
            .args(["--port", &free_port().to_string()])
            .args(["--relayer-port", &free_port().to_string()])
            .args(["--timeout-secs", "240"])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_log).unwrap())
            .spawn()
            .unwrap();
        let mut proc = Proc {
            name: "verinfer devnet",
            child,
            grace: Duration::from_secs(20),
        };
        let (lines_tx, lines) = mpsc::channel();
        let stdout = proc.child.stdout.take().unwrap();
        // Reads to the end, so that the devnet never writes into a closed pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines_tx.send(line);
            }
        });
        let mut devnet = Self {
            proc,
            stdout: String::new(),
            stderr_log,
            extra: extra.iter().map(|arg| (*arg).to_owned()).collect(),
            lines,
        };
        devnet.read_until(
            |line| line.contains("verinfer task result"),
            START_TIMEOUT,
            "no connection help within 420 s",
        );
        devnet
    }

    /// Reads printed lines until one satisfies `done` (returned), failing with `why`, what it
    /// printed and its stderr when none does within `timeout`.
    pub fn read_until(
        &mut self,
        done: impl Fn(&str) -> bool,
        timeout: Duration,
        why: &str,
    ) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) => {
                    self.stdout.push_str(&line);
                    self.stdout.push('\n');
                    if done(&line) {
                        return line;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => self.failed(why),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.proc.child.wait();
                    self.failed(&format!("exited ({status:?}) before it was up"))
                }
            }
        }
    }

    /// Fails the test with `why`, what the devnet printed and its stderr.
    pub fn failed(&self, why: &str) -> ! {
        panic!(
            "verinfer devnet --keep-running {:?}: {why}\nstdout:\n{}\nstderr:\n{}",
            self.extra,
            self.stdout,
            self.stderr()
        )
    }

    /// The devnet's stderr so far, for failure messages.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }
}
