//! Reverted transactions of a block range: every transaction a sender paid for and lost. The
//! load benchmark and the fault test count them (their goal is none); a reverted transaction is
//! named by its sender and the function it called, so a count is never the end of the story.

use std::fmt;

use alloy::{
    consensus::Transaction as _,
    eips::BlockNumberOrTag,
    network::TransactionResponse as _,
    primitives::{Address, B256},
    providers::Provider,
};

use crate::Error;

/// One transaction that was mined and reverted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevertedTx {
    /// Its hash.
    pub tx: B256,
    /// The block it is in.
    pub block: u64,
    /// Who sent (and paid for) it.
    pub from: Address,
    /// What it called: the contract function's name when the selector is one of `Verinfer`'s or
    /// the staking token's, else the selector in hex (or `transfer` for a plain value transfer).
    pub call: String,
    /// Its gas limit.
    pub gas_limit: u64,
    /// Gas it used: equal to the limit when it ran out of gas.
    pub gas_used: u64,
}

impl RevertedTx {
    /// Whether it ran out of gas (used its whole limit), rather than reverting with a reason.
    pub fn out_of_gas(&self) -> bool {
        self.gas_used >= self.gas_limit
    }
}

impl fmt::Display for RevertedTx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} in block {} from {}: {} used {} of {} gas{}",
            self.tx,
            self.block,
            self.from,
            self.call,
            self.gas_used,
            self.gas_limit,
            if self.out_of_gas() {
                " (out of gas)"
            } else {
                ""
            }
        )
    }
}

/// What [`scan_transactions`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TxScan {
    /// Transactions mined in the range.
    pub transactions: usize,
    /// Those that reverted, in chain order.
    pub reverted: Vec<RevertedTx>,
}

/// Every transaction of blocks `from..=to` counted, and every reverted one named.
pub async fn scan_transactions<P: Provider>(
    provider: &P,
    from: u64,
    to: u64,
) -> Result<TxScan, Error> {
    let mut transactions = 0;
    let mut reverted = Vec::new();
    for number in from..=to {
        let receipts = provider
            .get_block_receipts(BlockNumberOrTag::Number(number).into())
            .await
            .map_err(|error| Error::Rpc {
                context: format!("reading the receipts of block {number}"),
                source: Box::new(error),
            })?
            .unwrap_or_default();
        transactions += receipts.len();
        for receipt in receipts.iter().filter(|receipt| !receipt.status()) {
            let tx = provider
                .get_transaction_by_hash(receipt.transaction_hash)
                .await
                .map_err(|error| Error::Rpc {
                    context: format!("reading transaction {}", receipt.transaction_hash),
                    source: Box::new(error),
                })?;
            let (call, gas_limit) = match &tx {
                Some(tx) => (call_name(tx.input()), tx.gas_limit()),
                None => ("unknown".to_owned(), 0),
            };
            reverted.push(RevertedTx {
                tx: receipt.transaction_hash,
                block: number,
                from: tx.as_ref().map_or(receipt.from, |tx| tx.from()),
                call,
                gas_limit,
                gas_used: receipt.gas_used,
            });
        }
    }
    Ok(TxScan {
        transactions,
        reverted,
    })
}

/// The name of the function `input` calls, from the project's bindings.
fn call_name(input: &[u8]) -> String {
    let Some(selector) = input.get(..4).and_then(|s| <[u8; 4]>::try_from(s).ok()) else {
        return "transfer".to_owned();
    };
    verinfer_abi::Verinfer::VerinferCalls::name_by_selector(selector)
        .or_else(|| {
            verinfer_abi::MockStakingToken::MockStakingTokenCalls::name_by_selector(selector)
        })
        .map_or_else(
            || format!("0x{}", alloy::hex::encode(selector)),
            str::to_owned,
        )
}

#[cfg(test)]
mod tests {
    use alloy::sol_types::SolCall as _;

    use super::*;

    #[test]
    fn calls_are_named_from_the_bindings() {
        assert_eq!(
            call_name(&verinfer_abi::Verinfer::settleCall::SELECTOR),
            "settle"
        );
        assert_eq!(
            call_name(&verinfer_abi::MockStakingToken::approveCall::SELECTOR),
            "approve"
        );
        assert_eq!(call_name(&[0xde, 0xad, 0xbe, 0xef, 0]), "0xdeadbeef");
        assert_eq!(call_name(&[]), "transfer");
    }
}
