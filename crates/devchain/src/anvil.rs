//! anvil as a child process: started on a free or given port, its dev keys read from its banner,
//! killed when dropped — and, on Linux, when this process dies however it dies.

use std::{
    net::{Ipv4Addr, SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use alloy::{network::EthereumWallet, primitives::Address, signers::local::PrivateKeySigner};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines},
    process::{Child, ChildStderr, ChildStdout, Command},
};
use url::Url;

use crate::{Error, FoundryTool, foundry_tool, repo_root};

/// How long anvil may take to print "Listening on".
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How to start anvil.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnvilOptions {
    /// The repository whose `node_modules/` holds anvil (default: [`repo_root`]).
    pub root: PathBuf,
    /// Port on 127.0.0.1; 0 lets anvil bind a free one (no race with other processes).
    pub port: u16,
    /// Funded dev accounts (anvil's default is 10).
    pub accounts: usize,
    /// Mine a block every this many seconds (`--block-time`), so that deadlines pass as on a real
    /// chain; `None` automines, one block per transaction and none otherwise.
    pub block_time_secs: Option<u64>,
    /// With a block time, also mine each transaction at once (`--mixed-mining`).
    pub mixed_mining: bool,
    /// Write anvil's output to this file (default: discarded).
    pub log: Option<PathBuf>,
}

impl Default for AnvilOptions {
    fn default() -> Self {
        Self {
            root: repo_root(),
            port: 0,
            accounts: 10,
            block_time_secs: None,
            mixed_mining: false,
            log: None,
        }
    }
}

impl AnvilOptions {
    /// The devnet's chain: transactions mine at once, and a block every second makes deadlines
    /// pass as on a real chain (nodes judge deadlines by the head block's timestamp).
    pub fn devnet() -> Self {
        Self {
            block_time_secs: Some(1),
            mixed_mining: true,
            ..Self::default()
        }
    }

    fn args(&self) -> Vec<String> {
        let mut args = vec![
            "--host".to_owned(),
            "127.0.0.1".to_owned(),
            "--port".to_owned(),
            self.port.to_string(),
            "--accounts".to_owned(),
            self.accounts.to_string(),
        ];
        if let Some(secs) = self.block_time_secs {
            args.extend(["--block-time".to_owned(), secs.to_string()]);
            if self.mixed_mining {
                args.push("--mixed-mining".to_owned());
            }
        }
        args
    }
}

/// A running anvil; killed when dropped.
#[derive(Debug)]
pub struct Anvil {
    child: Child,
    port: u16,
    keys: Vec<PrivateKeySigner>,
}

impl Anvil {
    /// Starts the npm-installed anvil of `options.root` and waits until it listens.
    pub async fn start(options: &AnvilOptions) -> Result<Self, Error> {
        // Checked first so that a taken port fails with a clear message.
        if options.port != 0 {
            ensure_port_free(options.port)?;
        }
        let binary = foundry_tool(&options.root, FoundryTool::Anvil)?;
        let mut child = spawn(&binary, options)?;
        let (stdout, stderr) = match (child.stdout.take(), child.stderr.take()) {
            (Some(stdout), Some(stderr)) => (stdout, stderr),
            _ => return Err(Error::AnvilBanner("its output is not captured".to_owned())),
        };
        let mut log = match &options.log {
            Some(path) => Some(
                tokio::fs::File::create(path)
                    .await
                    .map_err(Error::io(format!("cannot create {}", path.display())))?,
            ),
            None => None,
        };
        let mut lines = BufReader::new(stdout).lines();
        let banner = match read_banner(&mut lines, &mut log).await {
            Ok(banner) => banner,
            Err((why, banner)) => {
                return Err(failed_start(child, stderr, options.port, why, banner).await);
            }
        };
        let port = banner
            .last()
            .and_then(|line| line.rsplit(':').next())
            .and_then(|port| port.trim().parse::<u16>().ok())
            .ok_or_else(|| Error::AnvilBanner(format!("no port in {:?}", banner.last())))?;
        let keys = parse_private_keys(&banner)?;
        if keys.len() < options.accounts {
            return Err(Error::AnvilBanner(format!(
                "it printed {} private keys, {} were asked for",
                keys.len(),
                options.accounts
            )));
        }
        drain(lines, log, stderr);
        tracing::debug!(port, pid = ?child.id(), "anvil listening");
        Ok(Self { child, port, keys })
    }

    /// The JSON-RPC endpoint.
    pub fn endpoint(&self) -> Url {
        http_url(SocketAddr::from((Ipv4Addr::LOCALHOST, self.port)))
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The dev accounts' keys, in anvil's order (their keys are public: never use them on a
    /// real network).
    pub fn keys(&self) -> &[PrivateKeySigner] {
        &self.keys
    }

    /// Dev account `index`'s key.
    pub fn key(&self, index: usize) -> Result<&PrivateKeySigner, Error> {
        self.keys.get(index).ok_or(Error::NoAccount(index))
    }

    /// The dev accounts' addresses, in anvil's order.
    pub fn addresses(&self) -> Vec<Address> {
        self.keys.iter().map(PrivateKeySigner::address).collect()
    }

    /// A wallet holding every dev key, account 0 the default signer.
    pub fn wallet(&self) -> EthereumWallet {
        let mut keys = self.keys.iter().cloned();
        let mut wallet = EthereumWallet::default();
        if let Some(first) = keys.next() {
            wallet = EthereumWallet::from(first);
        }
        for key in keys {
            wallet.register_signer(key);
        }
        wallet
    }

    /// The child's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Stops anvil and waits for it to exit.
    pub async fn stop(mut self) {
        if let Err(error) = self.child.kill().await {
            tracing::warn!(%error, "cannot stop anvil");
        }
    }
}

/// The URL of a service listening on `addr` (`http://<ip>:<port>/`).
pub(crate) fn http_url(addr: SocketAddr) -> Url {
    // A socket address always makes a valid http URL.
    Url::parse(&format!("http://{addr}")).expect("a socket address makes a valid URL")
}

fn spawn(binary: &Path, options: &AnvilOptions) -> Result<Child, Error> {
    let mut command = Command::new(binary);
    command
        .args(options.args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    die_with_parent(&mut command);
    command
        .spawn()
        .map_err(Error::io(format!("cannot start {}", binary.display())))
}

/// Reads anvil's output up to "Listening on" (logging it); on failure, why and what it printed.
async fn read_banner(
    lines: &mut Lines<BufReader<ChildStdout>>,
    log: &mut Option<tokio::fs::File>,
) -> Result<Vec<String>, (String, Vec<String>)> {
    let mut banner = Vec::new();
    let ready = tokio::time::timeout(START_TIMEOUT, async {
        while let Some(line) = lines.next_line().await? {
            if let Some(log) = log.as_mut() {
                log.write_all(line.as_bytes()).await?;
                log.write_all(b"\n").await?;
            }
            let listening = line.starts_with("Listening on");
            banner.push(line);
            if listening {
                return Ok(true);
            }
        }
        Ok::<_, std::io::Error>(false)
    })
    .await;
    match ready {
        Ok(Ok(true)) => Ok(banner),
        Err(_) => Err((
            format!("did not start listening within {START_TIMEOUT:?}"),
            banner,
        )),
        Ok(Ok(false) | Err(_)) => Err(("exited before listening".to_owned(), banner)),
    }
}

/// Kills a child that did not start and says why, from its stderr.
async fn failed_start(
    mut child: Child,
    stderr: ChildStderr,
    port: u16,
    why: String,
    banner: Vec<String>,
) -> Error {
    let mut errors = String::new();
    let mut stderr_lines = BufReader::new(stderr).lines();
    // anvil exits on a bind error: its stderr is complete then; never block on it.
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Ok(Some(line)) = stderr_lines.next_line().await {
            errors.push_str(&line);
            errors.push('\n');
        }
    })
    .await;
    let _ = child.kill().await;
    if errors.to_lowercase().contains("address already in use") {
        return Error::PortInUse { port };
    }
    Error::AnvilStart {
        why,
        output: format!("{}{}", banner.join("\n"), errors),
    }
}

/// Keeps draining anvil's output (to the log, if any) so that it never blocks on a full pipe;
/// its stderr goes to the warning log.
fn drain(
    mut lines: Lines<BufReader<ChildStdout>>,
    mut log: Option<tokio::fs::File>,
    stderr: ChildStderr,
) {
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(file) = log.as_mut()
                && (file.write_all(line.as_bytes()).await.is_err()
                    || file.write_all(b"\n").await.is_err())
            {
                log = None;
            }
        }
    });
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            tracing::warn!(target: "anvil", "{line}");
        }
    });
}

/// The keys of anvil's "Private Keys" banner section: lines `(i) 0x<64 hex>`.
fn parse_private_keys(banner: &[String]) -> Result<Vec<PrivateKeySigner>, Error> {
    let mut keys = Vec::new();
    let mut in_section = false;
    for line in banner {
        let line = line.trim();
        if line.starts_with("Private Keys") {
            in_section = true;
            continue;
        }
        if !in_section || line.starts_with('=') || line.is_empty() {
            continue;
        }
        let Some(rest) = line.strip_prefix('(') else {
            if !keys.is_empty() {
                break;
            }
            continue;
        };
        let Some((_, key)) = rest.split_once(") ") else {
            continue;
        };
        let key: PrivateKeySigner = key
            .trim()
            .parse()
            .map_err(|_| Error::AnvilBanner("a malformed key line".to_owned()))?;
        keys.push(key);
    }
    Ok(keys)
}

/// Fails with [`Error::PortInUse`] when `port` is taken on 127.0.0.1.
pub fn ensure_port_free(port: u16) -> Result<(), Error> {
    match TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))) {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => {
            Err(Error::PortInUse { port })
        }
        Err(error) => Err(Error::io(format!("cannot bind 127.0.0.1:{port}"))(error)),
    }
}

/// Asks the kernel to kill the child when this process dies, even by SIGKILL, so that no anvil
/// outlives a crashed or killed devnet.
#[cfg(target_os = "linux")]
fn die_with_parent(command: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec and only calls prctl(2), which is
    // async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_command: &mut Command) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_keys_of_anvils_banner() {
        let banner: Vec<String> = [
            "Available Accounts",
            "==================",
            "(0) 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266 (10000.000000000000000000 ETH)",
            "",
            "Private Keys",
            "==================",
            "",
            "(0) 0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
            "(1) 0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
            "",
            "Wallet",
            "Listening on 127.0.0.1:8545",
        ]
        .map(String::from)
        .to_vec();
        let keys = parse_private_keys(&banner).unwrap();
        let addresses: Vec<String> = keys.iter().map(|key| key.address().to_string()).collect();
        assert_eq!(
            addresses,
            [
                "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
                "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
            ]
        );
    }

    #[test]
    fn a_taken_port_is_reported_as_in_use() {
        let taken = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).unwrap();
        let port = taken.local_addr().unwrap().port();
        let error = ensure_port_free(port).unwrap_err();
        assert!(
            matches!(error, Error::PortInUse { port: p } if p == port),
            "{error}"
        );
        assert!(
            error
                .to_string()
                .contains(&format!("port {port} is already in use on 127.0.0.1")),
            "{error}"
        );
    }

    #[test]
    fn options_name_the_mining_mode() {
        let devnet = AnvilOptions::devnet().args().join(" ");
        assert!(
            devnet.ends_with("--block-time 1 --mixed-mining"),
            "{devnet}"
        );
        let automine = AnvilOptions::default().args().join(" ");
        assert_eq!(automine, "--host 127.0.0.1 --port 0 --accounts 10");
    }
}
