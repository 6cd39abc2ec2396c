//! Dev chains for `verinfer devnet` and the tests: the one place that starts anvil, deploys the
//! contracts, funds accounts, and runs a relayer and node daemons in this process.
//!
//! - [`Anvil`]: the npm-installed anvil (`npm ci`) as a child process, on a free or given port,
//!   automining or with a block time ([`AnvilOptions`]), killed when dropped and, on Linux, when
//!   this process dies however it dies.
//! - [`Chain`]: anvil with the contracts deployed, either through the bindings
//!   (`MockStakingToken` + `Verinfer` with [`default_init_params`] or given ones, parameter
//!   changes applying at once) or with the project's own `script/Deploy.s.sol` through forge
//!   ([`Deploy`]); [`Chain::fund`] mints the mock token to accounts, [`Chain::add_gpu_models`]
//!   registers GPU models, [`Chain::draw`] sends the draw that starts queued tasks.
//! - [`Services`]: the relayer ([`Services::start_relayer`]), nodes ([`Services::start_nodes`],
//!   which first registers the GPU models they declare: [`register_declared_gpu_models`]) and a
//!   drawer ([`Services::start_drawer`]) running in this process until [`Services::stop`].
//!
//! Tasks start in a later block than the one that created them: `createTask` only queues a task,
//! and the first call to the contract in a later block draws its nodes. On an automining chain
//! where nothing else is sent, something must send that call: [`Chain::draw`] once, the drawer
//! continuously, or any other transaction to the contract.
//! - [`TinyModels`]: the random-weight models the nodes serve in a fraction of a second.
//!
//! Who may depend on it: only the `verinfer` CLI (for `verinfer devnet`) and tests
//! (dev-dependencies and the `verinfer-e2e` harness). Libraries users ship — `verinfer-client`,
//! `verinfer-node`, `verinfer-relayer`, `verinfer-abi`, `verinfer-task` — must never depend on
//! it: it spawns processes, mints from an open faucet and deploys a mock token.

mod anvil;
mod chain;
mod contracts;
mod error;
mod models;
mod receipts;
mod script;
mod services;

use std::path::{Path, PathBuf};

pub use anvil::{Anvil, AnvilOptions, ensure_port_free};
pub use chain::{Chain, Deploy};
pub use contracts::{
    DEVNET_MIN_IMAGE_FEE, DEVNET_MIN_TASK_FEE, TOKEN, add_gpu_models, default_init_params,
    deploy_with_mock_token, draw, mint, script_default_params,
};
pub use error::{Error, ServiceError};
pub use models::TinyModels;
pub use receipts::{RevertedTx, TxScan, scan_transactions};
pub use script::{ScriptParams, deploy_with_script};
pub use services::{NodeEnv, ServiceExit, Services, register_declared_gpu_models, relayer_config};
pub use verinfer_abi_gen::foundry::{FoundryTool, ToolNotFound, tool as foundry_tool};

/// The repository root this crate was built in (`crates/devchain/../..`): where `node_modules/`
/// and `script/Deploy.s.sol` are.
pub fn repo_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .and_then(Path::parent)
        .unwrap_or(manifest_dir)
        .to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repo_root_holds_the_deploy_script() {
        assert!(repo_root().join("script/Deploy.s.sol").is_file());
    }
}
