//! Deploying `MockStakingToken` + `Verinfer` through the bindings, and minting the mock token.

use alloy::{
    network::Ethereum,
    primitives::{Address, U256, aliases::U96},
    providers::Provider,
};
use verinfer_abi::{Deployment, IVerinfer, MockStakingToken, Verinfer};

use crate::Error;

/// Token base units per token (18 decimals).
pub const TOKEN: u128 = 1_000_000_000_000_000_000;

/// `script/Deploy.s.sol`'s defaults: threshold 10 bits, minimum stake 1000 tokens, 100 tokens
/// per threshold bit, 50 % slash, 5 % protocol fee, 300 s commit and reveal windows.
pub fn default_init_params() -> IVerinfer::InitParams {
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
) -> Result<Deployment, Error> {
    let context = "deploying the contracts";
    let chain_id = provider
        .get_chain_id()
        .await
        .map_err(|error| Error::contract(context)(error.into()))?;
    let deploy_block = provider
        .get_block_number()
        .await
        .map_err(|error| Error::contract(context)(error.into()))?;
    let token = MockStakingToken::deploy_builder(provider)
        .from(deployer)
        .deploy()
        .await
        .map_err(Error::contract(context))?;
    let verinfer = Verinfer::deploy_builder(provider, token, params, owner, treasury)
        .from(deployer)
        .deploy()
        .await
        .map_err(Error::contract(context))?;
    tracing::debug!(%verinfer, staking_token = %token, "deployed with the bindings");
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

/// Mints mock tokens, `amount` to each account of `grants`, sent by `from` (the faucet is open;
/// any sender the provider's wallet holds works). Every mint is sent before any receipt is
/// awaited, so that on an interval-mining chain they share one block.
pub async fn mint<P: Provider<Ethereum>>(
    provider: &P,
    token: Address,
    from: Address,
    grants: impl IntoIterator<Item = (Address, U256)>,
) -> Result<(), Error> {
    let context = "minting devnet tokens";
    let token = MockStakingToken::new(token, provider);
    let mut pending = Vec::new();
    for (account, amount) in grants {
        pending.push(
            token
                .mint(account, amount)
                .from(from)
                .send()
                .await
                .map_err(Error::contract(context))?,
        );
    }
    for pending in pending {
        let receipt = pending
            .get_receipt()
            .await
            .map_err(|error| Error::contract(context)(error.into()))?;
        if !receipt.status() {
            return Err(Error::Reverted {
                what: context,
                tx: receipt.transaction_hash,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
