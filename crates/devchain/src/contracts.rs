//! Deploying `MockStakingToken` + `Verinfer` through the bindings, minting the mock token, and
//! registering GPU models.

use alloy::{
    eips::BlockId,
    network::Ethereum,
    primitives::{Address, B256, U256, aliases::U96},
    providers::Provider,
};
use verinfer_abi::{Deployment, IVerinfer, MockStakingToken, Verinfer, padded_gas_limit};

use crate::Error;

/// Base units per token of the devnet's `MockStakingToken` (OpenZeppelin's 18 decimals; tools
/// read them from the token with `verinfer_abi::TokenDecimals::read`).
pub const TOKEN: u128 = 1_000_000_000_000_000_000;

/// The dev chains' smallest task fee: 0.01 token (`script/Deploy.s.sol` defaults to 1 token).
pub const DEVNET_MIN_TASK_FEE: u128 = TOKEN / 100;
/// The dev chains' smallest fee per image: 0.001 token (the script defaults to 0.1 token).
pub const DEVNET_MIN_IMAGE_FEE: u128 = TOKEN / 1_000;

/// The dev chains' parameters: `script/Deploy.s.sol`'s defaults (threshold 10 bits, minimum stake
/// 1000 tokens, 100 tokens per threshold bit, 50 % slash of which 50 % rewards the agreeing
/// nodes, 5 % protocol fee, 300 s commit and reveal windows, a one-day queue timeout, text pools
/// of at least 3 nodes, sampled tasks checked with probability 5 %) except the minimum fees,
/// which are small but not zero ([`DEVNET_MIN_TASK_FEE`] per task plus [`DEVNET_MIN_IMAGE_FEE`]
/// per image) so that any fee of a hundredth of a token or more is accepted. [`script_default_params`] are the script's own.
pub fn default_init_params() -> IVerinfer::Params {
    IVerinfer::Params {
        minTaskFee: U96::from(DEVNET_MIN_TASK_FEE),
        minImageFee: U96::from(DEVNET_MIN_IMAGE_FEE),
        ..script_default_params()
    }
}

/// `script/Deploy.s.sol`'s defaults, exactly (minimum fees 1 token per task plus 0.1 token per
/// image).
pub fn script_default_params() -> IVerinfer::Params {
    IVerinfer::Params {
        threshold: 10,
        minTextPool: 3,
        slashShareBps: 5_000,
        slashRewardBps: 5_000,
        protocolFeeBps: 500,
        commitWindow: 300,
        revealWindow: 300,
        queueTimeout: 86_400,
        minStake: U96::from(1_000 * TOKEN),
        stakePerThresholdBit: U96::from(100 * TOKEN),
        minTaskFee: U96::from(TOKEN),
        minImageFee: U96::from(TOKEN / 10),
        samplingBps: 500,
    }
}

/// Deploys a `MockStakingToken` and a `Verinfer` staking it from `deployer` (whose key the
/// provider's wallet must hold), owned by `owner` with fees to `treasury`, parameter version 1
/// `params` and `params_delay` seconds between scheduling parameters and their effect (0 on dev
/// chains: changes apply at once). No GPU model is registered (see [`add_gpu_models`]). Returns
/// the record `Deploy.s.sol` would write.
pub async fn deploy_with_mock_token<P: Provider<Ethereum>>(
    provider: &P,
    deployer: Address,
    owner: Address,
    treasury: Address,
    params: IVerinfer::Params,
    params_delay: u32,
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
    let verinfer = Verinfer::deploy_builder(provider, token, params, params_delay, owner, treasury)
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

/// Registers each GPU model of `models` (name, VRAM in MiB) that the registry of `verinfer` does
/// not hold yet, sent by `owner` (the contract's owner, whose key the provider's wallet holds),
/// one transaction after the other. A name already registered is skipped, whatever VRAM it was
/// registered with (a warning is logged when that differs); so is a name given twice. Returns the
/// ids of the models it added.
pub async fn add_gpu_models<P: Provider<Ethereum>, S: AsRef<str>>(
    provider: &P,
    verinfer: Address,
    owner: Address,
    models: impl IntoIterator<Item = (S, u32)>,
) -> Result<Vec<B256>, Error> {
    let context = "registering GPU models";
    let verinfer = Verinfer::new(verinfer, provider);
    let mut registered = registry(&verinfer).await?;
    let mut added = Vec::new();
    for (name, vram_mib) in models {
        let name = name.as_ref();
        let id = verinfer
            .gpuModelId(name.to_owned())
            .call()
            .await
            .map_err(Error::contract(context))?;
        if let Some((_, known_vram)) = registered.iter().find(|(known, _)| *known == id) {
            if *known_vram != vram_mib {
                tracing::warn!(
                    gpu_model = name,
                    vram_mib,
                    registered_vram_mib = known_vram,
                    "GPU model already registered with another VRAM; kept"
                );
            }
            continue;
        }
        // Estimated on the pending block: the first call of a block runs the draw first, which
        // an estimate on `latest` (whose block already drew) leaves out.
        let call = verinfer
            .addGpuModel(name.to_owned(), vram_mib)
            .from(owner)
            .block(BlockId::pending());
        send_padded(call, context).await?;
        tracing::debug!(gpu_model = name, vram_mib, %id, "GPU model registered");
        registered.push((id, vram_mib));
        added.push(id);
    }
    Ok(added)
}

/// The registered GPU models' ids and VRAM.
async fn registry<P: Provider<Ethereum>>(
    verinfer: &verinfer_abi::VerinferInstance<P>,
) -> Result<Vec<(B256, u32)>, Error> {
    let context = "reading the GPU model registry";
    let count = verinfer
        .gpuModelCount()
        .call()
        .await
        .map_err(Error::contract(context))?;
    let mut models = Vec::new();
    for index in 0..count.to::<u64>() {
        let model = verinfer
            .gpuModelAt(U256::from(index))
            .call()
            .await
            .map_err(Error::contract(context))?;
        models.push((model.id, model.vramMiB));
    }
    Ok(models)
}

/// Sends `drawTasks()` from `from` and waits for it: the draw that starts queued tasks, which
/// runs only in a block after the one that queued them (see the contract's notes). Returns the
/// ids of the tasks it started (none when nothing was due, or no nodes fit).
pub async fn draw<P: Provider<Ethereum>>(
    provider: &P,
    verinfer: Address,
    from: Address,
) -> Result<Vec<u64>, Error> {
    let context = "drawing tasks";
    let verinfer = Verinfer::new(verinfer, provider);
    // Estimated on the pending block, the one the draw runs in (on `latest`, whose block already
    // drew, `drawTasks` does nothing and costs little).
    let call = verinfer.drawTasks().from(from).block(BlockId::pending());
    let receipt = send_padded(call, context).await?;
    Ok(receipt
        .logs()
        .iter()
        .filter_map(|log| log.log_decode::<Verinfer::TaskStarted>().ok())
        .filter_map(|log| u64::try_from(log.inner.data.taskId).ok())
        .collect())
}

/// Sends `call` (already aimed at the pending block, where the block's draw still runs) with its
/// gas estimate padded, and fails when it reverts.
async fn send_padded<P: Provider, D: alloy::contract::CallDecoder>(
    call: alloy::contract::CallBuilder<P, D>,
    context: &'static str,
) -> Result<alloy::rpc::types::TransactionReceipt, Error> {
    let gas = call
        .estimate_gas()
        .await
        .map_err(Error::contract(context))?;
    let receipt = call
        .gas(padded_gas_limit(gas))
        .send()
        .await
        .map_err(Error::contract(context))?
        .get_receipt()
        .await
        .map_err(|error| Error::contract(context)(error.into()))?;
    if !receipt.status() {
        return Err(Error::Reverted {
            what: context,
            tx: receipt.transaction_hash,
        });
    }
    Ok(receipt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_params_match_the_deploy_script() {
        let params = script_default_params();
        assert_eq!((params.threshold, params.minTextPool), (10, 3));
        assert_eq!(params.minStake.to_string(), "1000000000000000000000");
        assert_eq!(
            params.stakePerThresholdBit.to_string(),
            "100000000000000000000"
        );
        assert_eq!(
            (
                params.slashShareBps,
                params.slashRewardBps,
                params.protocolFeeBps
            ),
            (5_000, 5_000, 500)
        );
        assert_eq!(
            (
                params.commitWindow,
                params.revealWindow,
                params.queueTimeout
            ),
            (300, 300, 86_400)
        );
        assert_eq!(params.minTaskFee.to_string(), "1000000000000000000");
        assert_eq!(params.minImageFee.to_string(), "100000000000000000");
        assert_eq!(params.samplingBps, 500);
        let script = std::fs::read_to_string(crate::repo_root().join("script/Deploy.s.sol"))
            .expect("the deploy script");
        for default in [
            "\"VERINFER_THRESHOLD\", uint256(10)",
            "\"VERINFER_MIN_TEXT_POOL\", uint256(3)",
            "\"VERINFER_SLASH_SHARE_BPS\", uint256(5000)",
            "\"VERINFER_SLASH_REWARD_BPS\", uint256(5000)",
            "\"VERINFER_PROTOCOL_FEE_BPS\", uint256(500)",
            "\"VERINFER_COMMIT_WINDOW\", uint256(300)",
            "\"VERINFER_REVEAL_WINDOW\", uint256(300)",
            "\"VERINFER_QUEUE_TIMEOUT\", uint256(86400)",
            "\"VERINFER_MIN_STAKE\", uint256(1000 ether)",
            "\"VERINFER_STAKE_PER_THRESHOLD_BIT\", uint256(100 ether)",
            "\"VERINFER_MIN_TASK_FEE\", uint256(1 ether)",
            "\"VERINFER_MIN_IMAGE_FEE\", uint256(0.1 ether)",
            "\"VERINFER_SAMPLING_BPS\", uint256(500)",
        ] {
            assert!(script.contains(default), "Deploy.s.sol lacks {default}");
        }
    }

    #[test]
    fn devnet_params_differ_only_in_small_nonzero_minimum_fees() {
        let devnet = default_init_params();
        assert_eq!(devnet.minTaskFee, U96::from(DEVNET_MIN_TASK_FEE));
        assert_eq!(devnet.minImageFee, U96::from(DEVNET_MIN_IMAGE_FEE));
        const { assert!(DEVNET_MIN_IMAGE_FEE > 0) };
        assert_eq!(
            IVerinfer::Params {
                minTaskFee: U96::from(TOKEN),
                minImageFee: U96::from(TOKEN / 10),
                ..devnet
            },
            script_default_params()
        );
    }
}
