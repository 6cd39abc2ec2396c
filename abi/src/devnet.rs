//! Local devnet helpers for tests and tools: find the npm-installed Foundry binaries and deploy a
//! fresh `MockStakingToken` + `Verinfer` pair with `Deploy.s.sol`'s default parameters.

use std::path::{Path, PathBuf};

use alloy::{
    network::Ethereum,
    primitives::{Address, U256, aliases::U96},
    providers::Provider,
};

use crate::{Deployment, IVerinfer, MockStakingToken, Verinfer};

pub use verinfer_abi_gen::foundry::{FoundryTool, ToolNotFound, tool as foundry_tool};

/// The repository root this crate was built in (`abi/..`); where `node_modules/` lives.
pub fn repo_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
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
