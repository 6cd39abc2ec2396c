//! The contract owner's calls on a [`Client`] whose account owns the contract: the GPU model
//! registry (`addGpuModel`, `setGpuModelActive`) and the parameter schedule (`scheduleParams`,
//! `cancelScheduledParams`), plus the views they need. Each checks the caller is the owner, and
//! what it can of the contract's rules, before any transaction.

use alloy::primitives::{Address, B256};
use verinfer_abi::{IVerinfer::Params, TokenDecimals};

use crate::{Client, ClientError, GpuModelInfo, gpu_model::normalise_gpu_model};

/// Smallest VRAM a registered GPU model may have, in MiB (`Verinfer.MIN_GPU_VRAM_MIB`).
pub const MIN_GPU_VRAM_MIB: u32 = 1024;
/// Largest VRAM a registered GPU model may have, in MiB (`Verinfer.MAX_GPU_VRAM_MIB`).
pub const MAX_GPU_VRAM_MIB: u32 = 1 << 24;

/// Highest Hamming threshold (`Verinfer.MAX_THRESHOLD`).
pub const MAX_THRESHOLD: u8 = 64;
/// Smallest `minTextPool` (`Verinfer.MIN_TEXT_POOL`).
pub const MIN_TEXT_POOL: u8 = 3;
/// Longest commit or reveal window, seconds (7 days).
pub const MAX_WINDOW_SECS: u32 = 7 * 86_400;
/// Longest queue timeout, seconds (365 days).
pub const MAX_QUEUE_TIMEOUT_SECS: u32 = 365 * 86_400;
/// Basis points denominator.
const BPS: u16 = 10_000;

/// The contract's rules for a parameter version (`Verinfer._validateParams`): an `Err` here is a
/// revert there. Amounts in the message are written with the token's `decimals`.
pub fn check_params(p: &Params, decimals: TokenDecimals) -> Result<(), String> {
    if p.threshold > MAX_THRESHOLD {
        return Err(format!(
            "threshold {} is above {MAX_THRESHOLD} bits",
            p.threshold
        ));
    }
    let min_stake = p.minStake.to::<u128>();
    let per_bit = p.stakePerThresholdBit.to::<u128>();
    if min_stake == 0 {
        return Err("the minimum stake is zero".to_owned());
    }
    if min_stake < per_bit.saturating_mul(u128::from(p.threshold)) {
        return Err(format!(
            "the minimum stake {} tokens is below threshold {} x stake per threshold bit {} tokens",
            decimals.format(min_stake),
            p.threshold,
            decimals.format(per_bit)
        ));
    }
    if p.slashShareBps == 0 || p.slashShareBps > BPS {
        return Err(format!(
            "slash share {} bps is outside 1..={BPS}",
            p.slashShareBps
        ));
    }
    for (name, bps) in [
        ("slash reward", p.slashRewardBps),
        ("protocol fee", p.protocolFeeBps),
    ] {
        if bps > BPS {
            return Err(format!("{name} {bps} bps is above {BPS}"));
        }
    }
    for (name, secs) in [
        ("commit window", p.commitWindow),
        ("reveal window", p.revealWindow),
    ] {
        if secs == 0 || secs > MAX_WINDOW_SECS {
            return Err(format!(
                "{name} {secs} s is outside 1..={MAX_WINDOW_SECS} s"
            ));
        }
    }
    if p.queueTimeout == 0 || p.queueTimeout > MAX_QUEUE_TIMEOUT_SECS {
        return Err(format!(
            "queue timeout {} s is outside 1..={MAX_QUEUE_TIMEOUT_SECS} s",
            p.queueTimeout
        ));
    }
    if p.minTextPool < MIN_TEXT_POOL {
        return Err(format!(
            "minimum text pool {} is below {MIN_TEXT_POOL}",
            p.minTextPool
        ));
    }
    if p.samplingBps == 0 || p.samplingBps > BPS {
        return Err(format!(
            "sampling rate {} bps is outside 1..={BPS}",
            p.samplingBps
        ));
    }
    Ok(())
}

/// A parameter version that is scheduled and not in force yet (`scheduledParams()`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledParams {
    /// Its version number.
    pub version: u32,
    /// Its values.
    pub params: Params,
    /// When it takes effect, unix seconds.
    pub effective_at: u64,
}

/// What [`Client::schedule_params`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamsScheduled {
    /// The new version's number.
    pub version: u32,
    /// When it takes effect, unix seconds.
    pub effective_at: u64,
    /// Whether it is in force already (the contract's `paramsDelay` is 0).
    pub in_force: bool,
    /// The `scheduleParams` transaction.
    pub tx: B256,
}

impl Client {
    /// The contract's owner.
    pub async fn owner(&self) -> Result<Address, ClientError> {
        self.verinfer()
            .owner()
            .call()
            .await
            .map_err(|error| ClientError::contract("owner", error))
    }

    /// Refuses (before any transaction) when this client's account does not own the contract.
    async fn check_owner(&self, action: &'static str) -> Result<(), ClientError> {
        self.check_chain().await?;
        let owner = self.owner().await?;
        if owner != self.account() {
            return Err(ClientError::NotOwner {
                action,
                owner,
                account: self.account(),
            });
        }
        Ok(())
    }

    /// Registers the GPU model `name` (normalised by the contract) with the VRAM every card of it
    /// has; nodes may then join with it and text tasks name it. Returns its record and the
    /// transaction.
    pub async fn add_gpu_model(
        &self,
        name: &str,
        vram_mib: u32,
    ) -> Result<(GpuModelInfo, B256), ClientError> {
        let (_, normal) = normalise_gpu_model(name).map_err(ClientError::InvalidRequest)?;
        if !(MIN_GPU_VRAM_MIB..=MAX_GPU_VRAM_MIB).contains(&vram_mib) {
            return Err(ClientError::InvalidRequest(format!(
                "VRAM {vram_mib} MiB is outside the contract's {MIN_GPU_VRAM_MIB}..={MAX_GPU_VRAM_MIB} MiB"
            )));
        }
        self.check_owner("addGpuModel").await?;
        if let Some(known) = self.gpu_model(name).await? {
            return Err(ClientError::InvalidRequest(format!(
                "GPU model {:?} is registered already (with {} MiB); a model's VRAM never changes",
                known.name, known.vram_mib
            )));
        }
        let receipt = self
            .send(
                "addGpuModel",
                self.verinfer().addGpuModel(name.to_owned(), vram_mib),
            )
            .await?;
        let model = self
            .gpu_model(name)
            .await?
            .ok_or_else(|| ClientError::GpuModelNotRegistered(normal))?;
        Ok((model, receipt.transaction_hash))
    }

    /// Opens (`active`) or closes the registered GPU model `name` to new nodes. Nodes already
    /// registered with it keep serving, and tasks may still name it.
    pub async fn set_gpu_model_active(
        &self,
        name: &str,
        active: bool,
    ) -> Result<(GpuModelInfo, B256), ClientError> {
        self.check_owner("setGpuModelActive").await?;
        let model = self
            .gpu_model(name)
            .await?
            .ok_or_else(|| ClientError::GpuModelNotRegistered(name.to_owned()))?;
        let receipt = self
            .send(
                "setGpuModelActive",
                self.verinfer().setGpuModelActive(model.id, active),
            )
            .await?;
        let model = self
            .gpu_model(name)
            .await?
            .ok_or_else(|| ClientError::GpuModelNotRegistered(name.to_owned()))?;
        Ok((model, receipt.transaction_hash))
    }

    /// The parameters in force now (what new tasks get) and their version number.
    pub async fn params(&self) -> Result<(u32, Params), ClientError> {
        let version = self
            .verinfer()
            .paramsVersion()
            .call()
            .await
            .map_err(|error| ClientError::contract("paramsVersion", error))?;
        let params = self
            .verinfer()
            .paramsAt(version)
            .call()
            .await
            .map_err(|error| ClientError::contract("paramsAt", error))?;
        Ok((version.to::<u32>(), params))
    }

    /// The version scheduled and not in force yet, if any.
    pub async fn scheduled_params(&self) -> Result<Option<ScheduledParams>, ClientError> {
        let scheduled = self
            .verinfer()
            .scheduledParams()
            .call()
            .await
            .map_err(|error| ClientError::contract("scheduledParams", error))?;
        let version = scheduled.version.to::<u32>();
        Ok((version != 0).then(|| ScheduledParams {
            version,
            params: scheduled.values,
            effective_at: scheduled.effectiveAt.to::<u64>(),
        }))
    }

    /// Seconds between scheduling a parameter version and its taking effect (fixed at
    /// deployment).
    pub async fn params_delay(&self) -> Result<u32, ClientError> {
        self.verinfer()
            .paramsDelay()
            .call()
            .await
            .map_err(|error| ClientError::contract("paramsDelay", error))
    }

    /// Schedules `params` as the next version: it takes effect `paramsDelay` seconds from now (at
    /// once when the delay is 0) and replaces any version scheduled before. Tasks created before
    /// it takes effect keep the version they were created under.
    pub async fn schedule_params(&self, params: Params) -> Result<ParamsScheduled, ClientError> {
        check_params(&params, self.token_decimals().await?).map_err(ClientError::InvalidRequest)?;
        self.check_owner("scheduleParams").await?;
        let receipt = self
            .send("scheduleParams", self.verinfer().scheduleParams(params))
            .await?;
        let tx = receipt.transaction_hash;
        let mut scheduled = None;
        let mut in_force = false;
        for log in receipt
            .logs()
            .iter()
            .filter(|log| log.address() == self.deployment().verinfer)
        {
            if let Ok(event) = log.log_decode::<verinfer_abi::Verinfer::ParamsScheduled>() {
                scheduled = Some((
                    event.inner.data.version.to::<u32>(),
                    event.inner.data.effectiveAt.to::<u64>(),
                ));
            }
            if log
                .log_decode::<verinfer_abi::Verinfer::ParamsActivated>()
                .is_ok()
            {
                in_force = true;
            }
        }
        let (version, effective_at) = scheduled.ok_or(ClientError::MissingEvent {
            action: "scheduleParams",
            tx,
            event: "ParamsScheduled",
        })?;
        Ok(ParamsScheduled {
            version,
            effective_at,
            in_force,
            tx,
        })
    }

    /// Withdraws the scheduled version before it takes effect; returns its number and the
    /// transaction. Refused before any transaction when none is scheduled.
    pub async fn cancel_scheduled_params(&self) -> Result<(u32, B256), ClientError> {
        self.check_owner("cancelScheduledParams").await?;
        let Some(scheduled) = self.scheduled_params().await? else {
            return Err(ClientError::InvalidRequest(
                "no parameter version is scheduled (or the scheduled one is in force already)"
                    .to_owned(),
            ));
        };
        let receipt = self
            .send(
                "cancelScheduledParams",
                self.verinfer().cancelScheduledParams(),
            )
            .await?;
        Ok((scheduled.version, receipt.transaction_hash))
    }
}

#[cfg(test)]
mod tests {
    use alloy::primitives::aliases::U96;

    use super::*;

    fn valid() -> Params {
        Params {
            threshold: 10,
            minTextPool: 3,
            slashShareBps: 5_000,
            slashRewardBps: 5_000,
            protocolFeeBps: 500,
            commitWindow: 300,
            revealWindow: 300,
            queueTimeout: 86_400,
            minStake: U96::from(1_000u64),
            stakePerThresholdBit: U96::from(100u64),
            minTaskFee: U96::from(1u64),
            minImageFee: U96::ZERO,
            samplingBps: 500,
        }
    }

    #[test]
    fn the_contracts_parameter_rules_are_checked() {
        let decimals = TokenDecimals::new(18).expect("at most 77");
        assert_eq!(check_params(&valid(), decimals), Ok(()));
        for (params, needle) in [
            (
                Params {
                    threshold: 65,
                    ..valid()
                },
                "threshold 65",
            ),
            (
                Params {
                    threshold: 11,
                    ..valid()
                },
                "below threshold 11",
            ),
            (
                Params {
                    minStake: U96::ZERO,
                    ..valid()
                },
                "zero",
            ),
            (
                Params {
                    slashShareBps: 0,
                    ..valid()
                },
                "slash share 0",
            ),
            (
                Params {
                    slashRewardBps: 10_001,
                    ..valid()
                },
                "slash reward",
            ),
            (
                Params {
                    protocolFeeBps: 10_001,
                    ..valid()
                },
                "protocol fee",
            ),
            (
                Params {
                    commitWindow: 0,
                    ..valid()
                },
                "commit window",
            ),
            (
                Params {
                    revealWindow: MAX_WINDOW_SECS + 1,
                    ..valid()
                },
                "reveal window",
            ),
            (
                Params {
                    queueTimeout: 0,
                    ..valid()
                },
                "queue timeout",
            ),
            (
                Params {
                    minTextPool: 2,
                    ..valid()
                },
                "text pool 2",
            ),
            (
                Params {
                    samplingBps: 0,
                    ..valid()
                },
                "sampling rate 0 bps",
            ),
            (
                Params {
                    samplingBps: 10_001,
                    ..valid()
                },
                "sampling rate 10001 bps",
            ),
        ] {
            let error = check_params(&params, decimals).unwrap_err();
            assert!(error.contains(needle), "{needle:?} not in {error:?}");
        }
    }
}
