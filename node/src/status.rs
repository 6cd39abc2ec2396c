//! `verinfer node status`: the node's registration (GPU model from the registry, fee tier),
//! stake, claimable credit, balance and task records, read without disturbing a running daemon.

use std::{collections::BTreeMap, fmt, path::PathBuf, time::Duration};

use alloy::primitives::{Address, U256};

use verinfer_abi::{NodeState, TaskStatus, TokenDecimals};

use crate::{
    chain::{Chain, ChainNode, GpuModel, NodeOutcome},
    config::NodeConfig,
    error::NodeError,
    key::load_signer,
    state::{Role, Stage, StateStore, TaskRecord},
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
    /// The chain's status of each recorded task whose settlement the record lacks (a daemon
    /// that stopped, or was kicked, before recording it).
    pub chain_status: BTreeMap<u64, TaskStatus>,
    /// This node's rewards and slashes on chain (`NodeRewarded`, `NodeSlashed`) from its first
    /// recorded task on, and its slash when it is kicked.
    pub outcomes: Vec<NodeOutcome>,
}

impl NodeStatus {
    /// The slashes among [`outcomes`](Self::outcomes).
    pub fn slashes(&self) -> impl Iterator<Item = &crate::chain::Slash> {
        self.outcomes.iter().filter_map(|outcome| match outcome {
            NodeOutcome::Slashed(slash) => Some(slash),
            NodeOutcome::Rewarded { .. } => None,
        })
    }

    /// What the chain says a task paid or cost this node: "paid N tokens", "slashed N tokens
    /// (Reason)".
    fn task_outcomes(&self, task_id: u64) -> Vec<String> {
        self.outcomes
            .iter()
            .filter_map(|outcome| match outcome {
                NodeOutcome::Rewarded {
                    task_id: id,
                    amount,
                } if *id == task_id => {
                    Some(format!("paid {} tokens", self.decimals.format(*amount)))
                }
                NodeOutcome::Slashed(slash) if slash.task_id == task_id => Some(format!(
                    "slashed {} tokens ({})",
                    self.decimals.format(slash.amount),
                    slash.reason
                )),
                _ => None,
            })
            .collect()
    }
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
        write!(f, "state     {} (node #{}", r.state, r.id)?;
        if r.task_id != 0 {
            write!(f, ", task {}", r.task_id)?;
        }
        writeln!(f, ")")?;
        for slash in self.slashes() {
            writeln!(
                f,
                "slashed   {} tokens on task {} ({}){}",
                self.decimals.format(slash.amount),
                slash.task_id,
                slash.reason,
                if r.state == NodeState::Kicked {
                    ": kicked, it cannot join again with this key"
                } else {
                    ""
                }
            )?;
        }
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
            if record.settlement.is_none()
                && let Some(status) = self.chain_status.get(&record.task_id)
            {
                write!(f, "; on chain {}", status.wire_name())?;
            }
            let outcomes = self.task_outcomes(record.task_id);
            if !outcomes.is_empty() {
                write!(f, "; {}", outcomes.join(", "))?;
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
        config.max_block_range,
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
    let mut chain_status = BTreeMap::new();
    for record in records
        .iter()
        .filter(|record| record.settlement.is_none() && record.stage != Stage::Uploaded)
    {
        chain_status.insert(record.task_id, chain.task(record.task_id).await?.status);
    }
    let head = chain.head().await?;
    let mut outcomes = match records.iter().map(|record| record.started_block).min() {
        Some(from) => chain.node_outcomes(node, from, head.number).await?,
        None => Vec::new(),
    };
    let slashed = outcomes
        .iter()
        .any(|outcome| matches!(outcome, NodeOutcome::Slashed(_)));
    if registration.state == NodeState::Kicked
        && !slashed
        && let Some(slash) = chain
            .last_slash(node, target.deploy_block, head.number)
            .await?
    {
        outcomes.push(NodeOutcome::Slashed(slash));
    }
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
        chain_status,
        outcomes,
    })
}

#[cfg(test)]
mod tests {
    use alloy::primitives::B256;
    use verinfer_abi::SlashReason;
    use verinfer_task::TaskKind;

    use super::*;
    use crate::chain::Slash;

    const TOKEN: u128 = 1_000_000_000_000_000_000;

    /// A kicked node whose daemon stopped before recording the settlement that slashed it.
    fn kicked() -> NodeStatus {
        let me = Address::repeat_byte(1);
        let nodes = [me, Address::repeat_byte(2), Address::repeat_byte(3)];
        let mut paid = TaskRecord::assigned(11, TaskKind::Image, nodes, 40);
        paid.stage = Stage::Uploaded;
        NodeStatus {
            node: me,
            chain_id: 31337,
            verinfer: Address::repeat_byte(9),
            registration: ChainNode {
                state: NodeState::Kicked,
                id: 5,
                stake: 0,
                gpu_model: B256::repeat_byte(7),
                vram_mib: 24_576,
                fee_tier: 0,
                task_id: 0,
            },
            gpu_model: Some(GpuModel {
                id: B256::repeat_byte(7),
                name: "nvidia geforce rtx 4090".into(),
                vram_mib: 24_576,
                active: true,
                available_nodes: 2,
            }),
            claimable: 500 * TOKEN,
            balance: U256::ZERO,
            decimals: TokenDecimals::new(18).unwrap(),
            state_dir: PathBuf::from("/var/lib/verinfer/node"),
            cursor: Some(100),
            records: vec![paid, TaskRecord::assigned(12, TaskKind::Image, nodes, 60)],
            chain_status: BTreeMap::from([(12, TaskStatus::Validated)]),
            outcomes: vec![
                NodeOutcome::Rewarded {
                    task_id: 11,
                    amount: 9 * TOKEN,
                },
                NodeOutcome::Slashed(Slash {
                    task_id: 12,
                    reason: SlashReason::MissedReveal,
                    amount: 500 * TOKEN,
                    block: 90,
                }),
            ],
        }
    }

    #[test]
    fn a_kicked_node_shows_its_slash_each_task_outcome_and_its_gpu_model_name() {
        let text = kicked().to_string();
        for needle in [
            "state     Kicked (node #5)\n",
            "slashed   500 tokens on task 12 (MissedReveal): kicked",
            "gpu model nvidia geforce rtx 4090 (24576 MiB)",
        ] {
            assert!(text.contains(needle), "{needle:?} missing in\n{text}");
        }
        let line = |task: &str| {
            text.lines()
                .find(|line| line.trim_start().starts_with(task))
                .unwrap_or_else(|| panic!("no line of {task} in\n{text}"))
        };
        let paid = line("#11 ");
        assert!(
            paid.contains("uploaded") && paid.ends_with("; paid 9 tokens"),
            "{paid}"
        );
        let slashed = line("#12 ");
        assert!(
            slashed.contains("assigned")
                && slashed.ends_with("; on chain validated; slashed 500 tokens (MissedReveal)"),
            "{slashed}"
        );
        assert!(!text.contains("task 0"), "{text}");
        assert!(
            !text.contains("0x0707"),
            "the GPU model by name, not id: {text}"
        );
    }
}
