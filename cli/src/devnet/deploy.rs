//! Deploying with the project's own `script/Deploy.s.sol` through forge.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use alloy::{hex, signers::local::PrivateKeySigner};
use eyre::{WrapErr, bail};
use tokio::process::Command;
use url::Url;
use verinfer_abi::{
    Deployment,
    devnet::{FoundryTool, foundry_tool},
};

/// How long forge may take (a cold compile of the contracts with solc-js included).
const FORGE_TIMEOUT: Duration = Duration::from_secs(300);

/// Contract parameters of a devnet deployment (the script's environment variables).
#[derive(Debug, Clone, Copy)]
pub(crate) struct DeployParams {
    /// `VERINFER_COMMIT_WINDOW`, seconds.
    pub(crate) commit_window: u32,
    /// `VERINFER_REVEAL_WINDOW`, seconds.
    pub(crate) reveal_window: u32,
    /// `VERINFER_THRESHOLD`, bits.
    pub(crate) threshold: u8,
}

/// Runs `forge script script/Deploy.s.sol --broadcast` against `rpc_url` and moves the record it
/// writes to `<out_dir>/<chainid>.json`.
pub(crate) async fn deploy(
    root: &Path,
    rpc_url: &Url,
    deployer: &PrivateKeySigner,
    params: DeployParams,
    out_dir: &Path,
) -> eyre::Result<(Deployment, PathBuf)> {
    let forge = foundry_tool(root, FoundryTool::Forge)?;
    // foundry.toml lets scripts write only under ./deployments: forge writes into a private
    // directory there, which is moved to the devnet's data directory right after.
    let staging = StagingDir::new(
        root.join("deployments")
            .join(format!(".devnet-{}", std::process::id())),
    )?;
    let mut command = Command::new(&forge);
    command
        .current_dir(root)
        .args(["script", "script/Deploy.s.sol", "--root"])
        .arg(root)
        .args(["--rpc-url", rpc_url.as_str(), "--broadcast"])
        .env(
            "DEPLOYER_PRIVATE_KEY",
            format!("0x{}", hex::encode(deployer.to_bytes())),
        )
        .env("VERINFER_COMMIT_WINDOW", params.commit_window.to_string())
        .env("VERINFER_REVEAL_WINDOW", params.reveal_window.to_string())
        .env("VERINFER_THRESHOLD", params.threshold.to_string())
        .env("VERINFER_DEPLOYMENTS_DIR", &staging.path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    tracing::info!(forge = %forge.display(), "deploying with script/Deploy.s.sol");
    let output = tokio::time::timeout(FORGE_TIMEOUT, command.output())
        .await
        .map_err(|_| eyre::eyre!("forge script did not finish within {FORGE_TIMEOUT:?}"))?
        .wrap_err_with(|| format!("cannot run {}", forge.display()))?;
    if !output.status.success() {
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stdout
            .lines()
            .chain(stderr.lines())
            .rev()
            .take(25)
            .collect();
        bail!(
            "forge script script/Deploy.s.sol failed ({}):\n{}",
            output.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }

    std::fs::create_dir_all(out_dir)
        .wrap_err_with(|| format!("cannot create {}", out_dir.display()))?;
    let written = std::fs::read_dir(&staging.path)
        .wrap_err_with(|| {
            format!(
                "forge wrote no deployment record into {}",
                staging.path.display()
            )
        })?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| path.extension().is_some_and(|ext| ext == "json"))
        .ok_or_else(|| {
            eyre::eyre!(
                "forge wrote no deployment record into {}",
                staging.path.display()
            )
        })?;
    let deployment = Deployment::load(&written)?;
    let path = Deployment::path_for(out_dir, deployment.chain_id);
    std::fs::copy(&written, &path)
        .wrap_err_with(|| format!("cannot copy {} to {}", written.display(), path.display()))?;
    Ok((deployment, path))
}

/// A directory removed when dropped.
struct StagingDir {
    path: PathBuf,
}

impl StagingDir {
    fn new(path: PathBuf) -> eyre::Result<Self> {
        if path.exists() {
            std::fs::remove_dir_all(&path)
                .wrap_err_with(|| format!("cannot clear {}", path.display()))?;
        }
        Ok(Self { path })
    }
}

impl Drop for StagingDir {
    fn drop(&mut self) {
        if self.path.exists()
            && let Err(error) = std::fs::remove_dir_all(&self.path)
        {
            tracing::warn!(path = %self.path.display(), %error, "cannot remove the staging directory");
        }
    }
}
