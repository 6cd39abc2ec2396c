//! Where `npm ci` puts the Foundry binaries (forge, anvil, cast).
//!
//! Prefer the platform package's native binary: npm's `node_modules/.bin/<tool>` is a Node
//! launcher that does not pass the tool's exit status on (it exits 0 even when forge fails).

use std::path::{Path, PathBuf};

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
pub fn tool(root: &Path, which: FoundryTool) -> Result<PathBuf, ToolNotFound> {
    let name = which.name();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_tools_say_to_run_npm_ci() {
        let dir = tempfile::tempdir().unwrap();
        let error = tool(dir.path(), FoundryTool::Anvil).unwrap_err();
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
        assert_eq!(tool(dir.path(), FoundryTool::Forge).unwrap(), launcher);
        if let Some(platform) = npm_platform() {
            let native = dir.path().join(format!(
                "node_modules/@foundry-rs/forge-{platform}/bin/forge"
            ));
            std::fs::create_dir_all(native.parent().unwrap()).unwrap();
            std::fs::write(&native, "ELF").unwrap();
            assert_eq!(tool(dir.path(), FoundryTool::Forge).unwrap(), native);
        }
    }
}
