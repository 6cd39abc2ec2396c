//! `verinfer node leave`, `verinfer node add-stake` and `verinfer node withdraw`: an operator's
//! stake management, sent with the node's own key from its configuration. Both check the node's state first, so a command that
//! the contract would refuse fails with a plain reason before any gas is spent.

use std::time::Duration;

use alloy::primitives::{Address, B256, U256};
use verinfer_abi::TokenDecimals;

use crate::{
    chain::{Chain, NodeState},
    config::{ChainTarget, NodeConfig},
    error::NodeError,
    key::load_signer,
};

/// What `leave` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaveOutcome {
    /// The node was idle: it is deregistered and its stake is back in its account (`leave` of an
    /// idle node transfers it at once).
    Left {
        /// The node.
        node: Address,
        /// The stake returned.
        returned: u128,
        /// The `leave` transaction.
        tx: B256,
    },
    /// The node is in a task: it leaves when that task settles, and its stake (with the task's
    /// reward, or less a slash) is then credited to it (`verinfer node withdraw` sends it). A
    /// running daemon finishes the task.
    LeavingAfterTask {
        /// The node.
        node: Address,
        /// The task it finishes first.
        task_id: u64,
        /// The `leave` transaction.
        tx: B256,
    },
}

/// What `add_stake` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StakeAdded {
    /// The node.
    pub node: Address,
    /// The amount added.
    pub added: u128,
    /// The stake after the top-up.
    pub stake: u128,
    /// The `approve` transaction, when the allowance was too small.
    pub approve_tx: Option<B256>,
    /// The `addStake` transaction.
    pub tx: B256,
}

/// What `withdraw` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Withdrawal {
    /// The node.
    pub node: Address,
    /// The amount sent to the node's account.
    pub amount: u128,
    /// The `withdraw` transaction.
    pub tx: B256,
}

/// Sends the node everything credited to it (`withdraw()`); refused before any transaction when
/// nothing is.
pub async fn withdraw(config: &NodeConfig) -> Result<Withdrawal, NodeError> {
    let (chain, node) = connect(config).await?;
    let amount = chain.claimable(node).await?;
    if amount == 0 {
        return Err(NodeError::NothingToWithdraw(node));
    }
    let tx = chain.withdraw().await?;
    tracing::info!(%tx, amount, "withdrew");
    Ok(Withdrawal { node, amount, tx })
}

/// Leaves the network with the key of the node `config` describes.
pub async fn leave(config: &NodeConfig) -> Result<LeaveOutcome, NodeError> {
    let (chain, node) = connect(config).await?;
    let before = chain.node_info(node).await?;
    match before.state {
        NodeState::Available | NodeState::Busy => {}
        state => return Err(NodeError::NotLeavable { node, state }),
    }
    let tx = chain.leave().await?;
    let after = chain.node_info(node).await?;
    Ok(match after.state {
        NodeState::Leaving => LeaveOutcome::LeavingAfterTask {
            node,
            task_id: after.task_id,
            tx,
        },
        // The node was Available, or its task settled between the read and the transaction.
        _ => LeaveOutcome::Left {
            node,
            returned: before.stake,
            tx,
        },
    })
}

/// Adds `amount` token base units to the stake of the node `config` describes, approving the
/// contract for it first when the allowance is too small.
pub async fn add_stake(config: &NodeConfig, amount: u128) -> Result<StakeAdded, NodeError> {
    if amount == 0 {
        return Err(NodeError::ZeroStakeTopUp);
    }
    let (chain, node) = connect(config).await?;
    let info = chain.node_info(node).await?;
    match info.state {
        NodeState::None => return Err(NodeError::NotRegistered(node)),
        NodeState::Kicked => {
            return Err(NodeError::Kicked {
                node,
                slash: None,
                claimable: chain
                    .token_decimals()
                    .await?
                    .amount(chain.claimable(node).await?),
            });
        }
        _ => {}
    }
    if info
        .stake
        .checked_add(amount)
        .is_none_or(|stake| stake >= 1u128 << 96)
    {
        return Err(NodeError::StakeOverflow {
            stake: info.stake,
            amount,
        });
    }
    let token = chain.token().await?;
    let balance = chain.token_balance(token, node).await?;
    if balance < U256::from(amount) {
        return Err(NodeError::InsufficientBalance {
            node,
            token,
            balance,
            stake: amount,
        });
    }
    let approve_tx = if chain.allowance(token).await? < U256::from(amount) {
        Some(chain.approve(token, U256::from(amount)).await?)
    } else {
        None
    };
    let tx = chain.add_stake(amount).await?;
    let stake = chain.node_info(node).await?.stake;
    tracing::info!(%tx, amount, stake, "added stake");
    Ok(StakeAdded {
        node,
        added: amount,
        stake,
        approve_tx,
        tx,
    })
}

/// The node's chain client, after checking that the endpoint serves the configured chain.
/// The staking token's `decimals()` on the chain `config` names: how token amounts are typed and
/// written for the node's operator.
pub async fn token_decimals(config: &NodeConfig) -> Result<TokenDecimals, NodeError> {
    let (chain, _) = connect(config).await?;
    Ok(chain.token_decimals().await?)
}

async fn connect(config: &NodeConfig) -> Result<(Chain, Address), NodeError> {
    config.validate()?;
    let signer = load_signer(config)?;
    let node = signer.address();
    let ChainTarget {
        chain_id, verinfer, ..
    } = config.chain_target()?;
    let chain = Chain::connect(
        config.http_client()?,
        config.rpc_url.clone(),
        signer,
        verinfer,
        Duration::from_secs(config.tx_timeout_secs),
        config.max_block_range,
    );
    let actual = chain.chain_id().await?;
    if actual != chain_id {
        return Err(NodeError::ChainMismatch {
            configured: chain_id,
            actual,
        });
    }
    Ok((chain, node))
}
