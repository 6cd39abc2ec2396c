//! Local devnet helpers for tests and tools: find the npm-installed Foundry binaries and deploy a
//! fresh `MockStakingToken` + `Verinfer` pair with `Deploy.s.sol`'s default parameters.

use std::path::{Path, PathBuf};

use alloy::{
    network::Ethereum,
    primitives::{Address, U256, aliases::U96},
    providers::Provider,
};

use crate::{Deployment, IVerinfer, MockStakingToken, Verinfer};

/// The repository root this crate was built in (`abi/..`); where `node_modules/` lives.
pub fn repo_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// A Foundry tool shipped by npm (`npm ci` installs them under `node_modules/@foundry-rs/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FoundryTool {
    /// The local Ethereum node.
    Anvil,
    /// The Solidity build and test tool.
    Forge,
    /// The RPC command-line client.
    Cast,
}

impl FoundryTool {
    /// The binary's name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Anvil => "anvil",
            Self::Forge => "forge",
            Self::Cast => "cast",
        }
    }
}

/// A Foundry binary is missing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{tool} not found (looked for {}): run `npm ci` in {}", tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "), root.display())]
pub struct ToolNotFound {
    /// The binary's name.
    pub tool: &'static str,
    /// The repository root.
    pub root: PathBuf,
    /// Every path tried, in order.
    pub tried: Vec<PathBuf>,
}

/// Path of a Foundry binary under `<root>/node_modules`: the platform package's native binary
/// (`@foundry-rs/<tool>-<os>-<arch>/bin/<tool>`), else npm's `node_modules/.bin/<tool>` launcher.
pub fn foundry_tool(root: &Path, tool: FoundryTool) -> Result<PathBuf, ToolNotFound> {
    let name = tool.name();
    let mut tried = Vec::with_capacity(2);
    if let Some(platform) = npm_platform() {
        tried.push(root.join(format!(
            "node_modules/@foundry-rs/{name}-{platform}/bin/{name}"
        )));
    }
    tried.push(root.join("node_modules/.bin").join(name));
    match tried.iter().find(|path| path.is_file()) {
        Some(path) => Ok(path.clone()),
        None => Err(ToolNotFound {
            tool: name,
            root: root.to_path_buf(),
            tried,
        }),
    }
}

/// The `<os>-<arch>` suffix of `@foundry-rs` platform packages, if they publish one for this host.
fn npm_platform() -> Option<&'static str> {
    match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "x86_64") => Some("linux-amd64"),
        ("linux", "aarch64") => Some("linux-arm64"),
        ("macos", "x86_64") => Some("darwin-amd64"),
        ("macos", "aarch64") => Some("darwin-arm64"),
        ("windows", "x86_64") => Some("win32-amd64"),
        _ => None,
    }
}

/// `script/Deploy.s.sol`'s defaults: threshold 10 bits, minimum stake 1000 tokens, 100 tokens
/// per threshold bit, 50 % slash, 5 % protocol fee, 300 s commit and reveal windows.
pub fn default_init_params() -> IVerinfer::InitParams {
    const TOKEN: u128 = 1_000_000_000_000_000_000;
    IVerinfer::InitParams {
        threshold: 10,
        minStake: U96::from(1_000 * TOKEN),
        stakePerThresholdBit: U96::from(100 * TOKEN),
        slashShareBps: 5_000,
        protocolFeeBps: 500,
        commitWindow: 300,
        revealWindow: 300,
    }
}

/// Deploys a `MockStakingToken` and a `Verinfer` staking it from `deployer` (whose key the
/// provider's wallet must hold), owned by `owner` with fees to `treasury`. Returns the record
/// `Deploy.s.sol` would write.
pub async fn deploy_with_mock_token<P: Provider<Ethereum>>(
    provider: &P,
    deployer: Address,
    owner: Address,
    treasury: Address,
    params: IVerinfer::InitParams,
) -> Result<Deployment, alloy::contract::Error> {
    let chain_id = provider.get_chain_id().await?;
    let deploy_block = provider.get_block_number().await?;
    let token = MockStakingToken::deploy_builder(provider)
        .from(deployer)
        .deploy()
        .await?;
    let verinfer = Verinfer::deploy_builder(provider, token, params, owner, treasury)
        .from(deployer)
        .deploy()
        .await?;
    Ok(Deployment {
        chain_id,
        verinfer,
        staking_token: token,
        mock_token: true,
        owner,
        treasury,
        deploy_block,
    })
}

/// Mints `amount` mock tokens to each of `accounts` (the faucet is open; any sender works).
pub async fn mint<P: Provider<Ethereum>>(
    provider: &P,
    token: Address,
    from: Address,
    accounts: &[Address],
    amount: U256,
) -> Result<(), alloy::contract::Error> {
    let token = MockStakingToken::new(token, provider);
    for &account in accounts {
        token
            .mint(account, amount)
            .from(from)
            .send()
            .await?
            .get_receipt()
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_tools_say_to_run_npm_ci() {
        let dir = tempfile::tempdir().unwrap();
        let error = foundry_tool(dir.path(), FoundryTool::Anvil).unwrap_err();
        let message = error.to_string();
        assert!(message.starts_with("anvil not found"), "{message}");
        assert!(message.contains("run `npm ci`"), "{message}");
        assert!(message.contains("node_modules/.bin/anvil"), "{message}");
    }

    #[test]
    fn the_platform_binary_is_preferred_over_the_npm_launcher() {
        let dir = tempfile::tempdir().unwrap();
        let launcher = dir.path().join("node_modules/.bin/forge");
        std::fs::create_dir_all(launcher.parent().unwrap()).unwrap();
        std::fs::write(&launcher, "#!/bin/sh\n").unwrap();
        assert_eq!(
            foundry_tool(dir.path(), FoundryTool::Forge).unwrap(),
            launcher
        );
        if let Some(platform) = npm_platform() {
            let native = dir.path().join(format!(
                "node_modules/@foundry-rs/forge-{platform}/bin/forge"
            ));
            std::fs::create_dir_all(native.parent().unwrap()).unwrap();
            std::fs::write(&native, "ELF").unwrap();
            assert_eq!(
                foundry_tool(dir.path(), FoundryTool::Forge).unwrap(),
                native
            );
        }
    }

    #[test]
    fn default_params_match_the_deploy_script() {
        let params = default_init_params();
        assert_eq!(params.threshold, 10);
        assert_eq!(params.minStake.to_string(), "1000000000000000000000");
        assert_eq!(
            params.stakePerThresholdBit.to_string(),
            "100000000000000000000"
        );
        assert_eq!((params.slashShareBps, params.protocolFeeBps), (5_000, 500));
        assert_eq!((params.commitWindow, params.revealWindow), (300, 300));
    }
}
