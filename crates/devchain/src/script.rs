//! Deploying with the project's own `script/Deploy.s.sol` through forge.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use alloy::{hex, signers::local::PrivateKeySigner};
use tokio::process::Command;
use url::Url;
use verinfer_abi::Deployment;

use crate::{DEVNET_MIN_IMAGE_FEE, DEVNET_MIN_TASK_FEE, Error, FoundryTool, foundry_tool};

/// How long forge may take: a cold `via_ir` compile of the contracts with solc-js takes 5–7
/// minutes on 2 cores, and more on a busy machine (300 s was seen to run out while tests ran
/// beside it); the limit is only there to catch a hung forge.
const FORGE_TIMEOUT: Duration = Duration::from_secs(900);

/// Contract parameters of a script deployment (the script's environment variables). The
/// minimum fees are the kit's devnet ones ([`crate::DEVNET_MIN_TASK_FEE`],
/// [`crate::DEVNET_MIN_IMAGE_FEE`]) and parameter changes apply at once (`paramsDelay` 0); the
/// others keep the script's defaults, its default GPU models included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScriptParams {
    /// `VERINFER_COMMIT_WINDOW`, seconds.
    pub commit_window: u32,
    /// `VERINFER_REVEAL_WINDOW`, seconds.
    pub reveal_window: u32,
    /// `VERINFER_THRESHOLD`, bits.
    pub threshold: u8,
}

/// Runs `forge script script/Deploy.s.sol --broadcast` of the repository at `root` against
/// `rpc_url` with `deployer`'s key, and copies the record it writes to `<out_dir>/<chainid>.json`.
/// Returns the record and that path.
pub async fn deploy_with_script(
    root: &Path,
    rpc_url: &Url,
    deployer: &PrivateKeySigner,
    params: ScriptParams,
    out_dir: &Path,
) -> Result<(Deployment, PathBuf), Error> {
    let forge = foundry_tool(root, FoundryTool::Forge)?;
    // foundry.toml lets scripts write only under ./deployments: forge writes into a private
    // directory there, which is copied to `out_dir` right after.
    let staging = StagingDir::new(
        root.join("deployments")
            .join(format!(".devnet-{}", std::process::id())),
    )?;
    if let Err(error) = run_forge(
        &forge,
        root,
        rpc_url,
        deployer,
        params,
        &staging.path,
        false,
    )
    .await
    {
        // forge skips the compile when its cache lists artifacts that out/ lacks (left so by
        // another forge run in the same root), then finds no script: compile again, forced.
        match error {
            Error::ForgeFailed { ref tail, .. }
                if tail.contains("Could not find target contract") =>
            {
                tracing::info!("forge found no compiled script; recompiling with --force");
                run_forge(&forge, root, rpc_url, deployer, params, &staging.path, true).await?;
            }
            error => return Err(error),
        }
    }
    std::fs::create_dir_all(out_dir)
        .map_err(Error::io(format!("cannot create {}", out_dir.display())))?;
    let written = std::fs::read_dir(&staging.path)
        .map_err(|_| Error::NoDeploymentRecord(staging.path.clone()))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| path.extension().is_some_and(|ext| ext == "json"))
        .ok_or_else(|| Error::NoDeploymentRecord(staging.path.clone()))?;
    let deployment = Deployment::load(&written)?;
    let path = Deployment::path_for(out_dir, deployment.chain_id);
    std::fs::copy(&written, &path).map_err(Error::io(format!(
        "cannot copy {} to {}",
        written.display(),
        path.display()
    )))?;
    Ok((deployment, path))
}

/// Runs forge with the script's environment; fails with the tail of its output.
async fn run_forge(
    forge: &Path,
    root: &Path,
    rpc_url: &Url,
    deployer: &PrivateKeySigner,
    params: ScriptParams,
    staging: &Path,
    force: bool,
) -> Result<(), Error> {
    let mut command = Command::new(forge);
    command
        .current_dir(root)
        .args(["script", "script/Deploy.s.sol", "--root"])
        .arg(root)
        .args(["--rpc-url", rpc_url.as_str(), "--broadcast"])
        .args(force.then_some("--force"))
        .env(
            "DEPLOYER_PRIVATE_KEY",
            format!("0x{}", hex::encode(deployer.to_bytes())),
        )
        .env("VERINFER_COMMIT_WINDOW", params.commit_window.to_string())
        .env("VERINFER_REVEAL_WINDOW", params.reveal_window.to_string())
        .env("VERINFER_THRESHOLD", params.threshold.to_string())
        .env("VERINFER_MIN_TASK_FEE", DEVNET_MIN_TASK_FEE.to_string())
        .env("VERINFER_MIN_IMAGE_FEE", DEVNET_MIN_IMAGE_FEE.to_string())
        .env("VERINFER_PARAMS_DELAY", "0")
        .env("VERINFER_DEPLOYMENTS_DIR", staging)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    tracing::info!(forge = %forge.display(), "deploying with script/Deploy.s.sol");
    let output = tokio::time::timeout(FORGE_TIMEOUT, command.output())
        .await
        .map_err(|_| Error::ForgeTimeout(FORGE_TIMEOUT))?
        .map_err(Error::io(format!("cannot run {}", forge.display())))?;
    if output.status.success() {
        return Ok(());
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let tail: Vec<&str> = stdout
        .lines()
        .chain(stderr.lines())
        .rev()
        .take(25)
        .collect();
    Err(Error::ForgeFailed {
        status: output.status,
        tail: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
    })
}

/// A directory removed when dropped.
struct StagingDir {
    path: PathBuf,
}

impl StagingDir {
    fn new(path: PathBuf) -> Result<Self, Error> {
        if path.exists() {
            std::fs::remove_dir_all(&path)
                .map_err(Error::io(format!("cannot clear {}", path.display())))?;
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
