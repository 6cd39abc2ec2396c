//! anvil as a child process: started on a free or given port, its dev keys read from its banner,
//! killed when dropped — and, on Linux, when this process dies however it dies.

use std::{
    net::{Ipv4Addr, SocketAddr, TcpListener},
    path::Path,
    process::Stdio,
    time::Duration,
};

use alloy::signers::local::PrivateKeySigner;
use eyre::{WrapErr, bail, eyre};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    process::{Child, Command},
};
use url::Url;

/// How long anvil may take to print "Listening on".
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running anvil.
pub(crate) struct Anvil {
    child: Child,
    port: u16,
    keys: Vec<PrivateKeySigner>,
}

impl Anvil {
    /// Starts `binary` on 127.0.0.1:`port` (0: a free port) with `accounts` funded dev accounts,
    /// logging its output to `log`.
    pub(crate) async fn start(
        binary: &Path,
        port: u16,
        accounts: usize,
        log: &Path,
    ) -> eyre::Result<Self> {
        // Port 0: anvil binds a free port itself and prints it (no race with other processes).
        if port != 0 {
            ensure_port_free(port, "--port")?;
        }
        let mut command = Command::new(binary);
        command
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--accounts",
                &accounts.to_string(),
            ])
            // Transactions mine at once, and a block every second makes deadlines pass as on a
            // real chain (nodes judge deadlines by the head block's timestamp).
            .args(["--block-time", "1", "--mixed-mining"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        die_with_parent(&mut command);
        let mut child = command
            .spawn()
            .wrap_err_with(|| format!("cannot start {}", binary.display()))?;

        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| eyre!("anvil's stdout is not captured"))?;
        let stderr = child
            .stderr
            .take()
            .ok_or_else(|| eyre!("anvil's stderr is not captured"))?;
        let mut log_file = tokio::fs::File::create(log)
            .await
            .wrap_err_with(|| format!("cannot create {}", log.display()))?;
        let mut lines = BufReader::new(stdout).lines();
        let mut banner = Vec::new();
        let ready = tokio::time::timeout(START_TIMEOUT, async {
            while let Some(line) = lines.next_line().await? {
                log_file.write_all(line.as_bytes()).await?;
                log_file.write_all(b"\n").await?;
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
            Ok(Ok(true)) => {}
            Ok(Ok(false)) | Ok(Err(_)) | Err(_) => {
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
                if errors.contains("Address already in use")
                    || errors.contains("address already in use")
                {
                    bail!(
                        "port {port} is already in use on 127.0.0.1 (another anvil?): stop it or choose another port with --port"
                    );
                }
                let why = match ready {
                    Err(_) => format!("did not start listening within {START_TIMEOUT:?}"),
                    _ => "exited before listening".to_owned(),
                };
                bail!("anvil {why}; its output: {}{}", banner.join("\n"), errors);
            }
        }
        let port = banner
            .last()
            .and_then(|line| line.rsplit(':').next())
            .and_then(|port| port.trim().parse::<u16>().ok())
            .ok_or_else(|| eyre!("cannot read the port from anvil's {:?}", banner.last()))?;
        let keys = parse_private_keys(&banner)?;
        if keys.len() < accounts {
            bail!(
                "anvil printed {} private keys, {accounts} were asked for",
                keys.len()
            );
        }
        // Keep draining its output so that it never blocks on a full pipe.
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if log_file.write_all(line.as_bytes()).await.is_err()
                    || log_file.write_all(b"\n").await.is_err()
                {
                    break;
                }
            }
        });
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::warn!(target: "anvil", "{line}");
            }
        });
        Ok(Self { child, port, keys })
    }

    /// The JSON-RPC endpoint.
    pub(crate) fn endpoint(&self) -> Url {
        // A literal loopback URL with a port always parses.
        Url::parse(&format!("http://127.0.0.1:{}", self.port)).expect("a valid loopback URL")
    }

    /// The dev accounts' keys, in anvil's order.
    pub(crate) fn keys(&self) -> &[PrivateKeySigner] {
        &self.keys
    }

    /// The child's process id.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Stops anvil and waits for it to exit.
    pub(crate) async fn stop(mut self) {
        if let Err(error) = self.child.kill().await {
            tracing::warn!(%error, "cannot stop anvil");
        }
    }
}

/// The keys of anvil's "Private Keys" banner section: lines `(i) 0x<64 hex>`.
fn parse_private_keys(banner: &[String]) -> eyre::Result<Vec<PrivateKeySigner>> {
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
            .map_err(|_| eyre!("anvil printed a malformed key line"))?;
        keys.push(key);
    }
    Ok(keys)
}

/// Fails with a clear message when `port` is taken on 127.0.0.1.
pub(crate) fn ensure_port_free(port: u16, flag: &str) -> eyre::Result<()> {
    match TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))) {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => bail!(
            "port {port} is already in use on 127.0.0.1 (another devnet or anvil?): stop it, or choose another port with {flag} (0 picks a free one)"
        ),
        Err(error) => Err(error).wrap_err_with(|| format!("cannot bind 127.0.0.1:{port}")),
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
    fn a_taken_port_is_reported_with_the_flag_to_change() {
        let taken = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).unwrap();
        let port = taken.local_addr().unwrap().port();
        let error = ensure_port_free(port, "--port").unwrap_err().to_string();
        assert!(
            error.contains(&format!("port {port} is already in use")),
            "{error}"
        );
        assert!(error.contains("--port"), "{error}");
    }
}
