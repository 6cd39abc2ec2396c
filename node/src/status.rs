//! `verinfer node status`: the node's registration (GPU model from the registry, fee tier),
//! stake, claimable credit, balance and task records, read without disturbing a running daemon.

use std::{fmt, path::PathBuf, time::Duration};

use alloy::primitives::{Address, U256};

use verinfer_abi::TokenDecimals;

use crate::{
    chain::{Chain, ChainNode, GpuModel},
    config::NodeConfig,
    error::NodeError,
    key::load_signer,
    state::{Role, StateStore, TaskRecord},
};

/// A node's status.
#[derive(Debug, Clone)]
pub struct NodeStatus {
    /// The node's address.
    pub node: Address,
    /// The chain.
    pub chain_id: u64,
    /// The Verinfer contract.
    pub verinfer: Address,
    /// `getNode`.
    pub registration: ChainNode,
    /// The registry's record of the node's GPU model (`None` before the first join).
    pub gpu_model: Option<GpuModel>,
    /// Tokens credited to the node (`claimable`): stakes returned after it left or was kicked,
    /// slash rewards. `verinfer node withdraw` sends them.
    pub claimable: u128,
    /// Staking token balance (not staked).
    pub balance: U256,
    /// The staking token's `decimals()`, for writing the amounts in tokens.
    pub decimals: TokenDecimals,
    /// The state directory.
    pub state_dir: PathBuf,
    /// The next block the task scan reads (`None` before the first run).
    pub cursor: Option<u64>,
    /// Every task record, by task id.
    pub records: Vec<TaskRecord>,
}

impl fmt::Display for NodeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.registration;
        writeln!(f, "node      {}", self.node)?;
        writeln!(
            f,
            "chain     {} (Verinfer {})",
            self.chain_id, self.verinfer
        )?;
        writeln!(
            f,
            "state     {} (node #{}, task {})",
            r.state, r.id, r.task_id
        )?;
        writeln!(
            f,
            "stake     {} ({} tokens)",
            r.stake,
            self.decimals.format(r.stake)
        )?;
        write!(
            f,
            "claimable {} ({} tokens)",
            self.claimable,
            self.decimals.format(self.claimable)
        )?;
        if self.claimable != 0 {
            write!(f, ": `verinfer node withdraw` sends it")?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "balance   {} ({} tokens)",
            self.balance,
            self.decimals.format_u256(self.balance)
        )?;
        match &self.gpu_model {
            Some(model) => writeln!(
                f,
                "gpu model {} ({} MiB{})",
                model.name,
                model.vram_mib,
                if model.active {
                    ""
                } else {
                    "; inactive: closed to new nodes"
                }
            )?,
            None if r.id == 0 => writeln!(f, "gpu model none (never joined)")?,
            None => writeln!(f, "gpu model {} ({} MiB)", r.gpu_model, r.vram_mib)?,
        }
        writeln!(
            f,
            "fee tier  {} (drawn only for tasks paying at least {}x the network minimum)",
            r.fee_tier,
            1u32 << r.fee_tier.min(31)
        )?;
        writeln!(f, "state dir {}", self.state_dir.display())?;
        match self.cursor {
            Some(block) => writeln!(f, "scanned   up to block {}", block.saturating_sub(1))?,
            None => writeln!(f, "scanned   nothing yet")?,
        }
        if self.records.is_empty() {
            return write!(f, "tasks     none");
        }
        write!(f, "tasks")?;
        for record in &self.records {
            write!(
                f,
                "\n  #{:<8} {:<10} {:<9}",
                record.task_id,
                record.stage.as_str(),
                record.kind.to_string()
            )?;
            match (record.role, record.checked) {
                (Role::Full, _) => {}
                (Role::First, None) => write!(f, " sampled")?,
                (Role::First, Some(true)) => write!(f, " sampled, checked")?,
                (Role::First, Some(false)) => write!(f, " sampled, unchecked")?,
                (Role::Checker, _) => write!(f, " checker")?,
            }
            if let Some(settlement) = record.settlement {
                write!(
                    f,
                    " {}{}",
                    settlement.outcome.as_str(),
                    if settlement.agreed {
                        ", agreed"
                    } else {
                        ", did not agree"
                    }
                )?;
            }
            if let Some(reason) = &record.closed_reason {
                write!(f, " ({reason})")?;
            }
        }
        Ok(())
    }
}

/// Reads the status of the node `config` describes: its key's address on chain, and its state
/// directory (read-only: works while the daemon runs).
pub async fn status(config: &NodeConfig) -> Result<NodeStatus, NodeError> {
    config.validate()?;
    let signer = load_signer(config)?;
    let node = signer.address();
    let target = config.chain_target()?;
    let chain = Chain::connect(
        config.http_client()?,
        config.rpc_url.clone(),
        signer,
        target.verinfer,
        Duration::from_secs(1),
        1,
    );
    let actual = chain.chain_id().await?;
    if actual != target.chain_id {
        return Err(NodeError::ChainMismatch {
            configured: target.chain_id,
            actual,
        });
    }
    let registration = chain.node_info(node).await?;
    let gpu_model = if registration.gpu_model.is_zero() {
        None
    } else {
        chain.gpu_model(registration.gpu_model).await?
    };
    let claimable = chain.claimable(node).await?;
    let token = chain.token().await?;
    let balance = chain.token_balance(token, node).await?;
    let decimals = chain.token_decimals().await?;
    let state_dir = crate::daemon::state_dir(config, &target, node);
    let (cursor, records) = match StateStore::open_for_reading(&state_dir)? {
        Some(store) => (store.cursor()?, store.records()?),
        None => (None, Vec::new()),
    };
    Ok(NodeStatus {
        node,
        chain_id: target.chain_id,
        verinfer: target.verinfer,
        registration,
        gpu_model,
        claimable,
        balance,
        decimals,
        state_dir,
        cursor,
        records,
    })
}
