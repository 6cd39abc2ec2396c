//! The contract's GPU model normal form (`GpuModels.normalise`), checked before any gas is spent,
//! and the registry's records of GPU models.

use alloy::primitives::{B256, keccak256};
use verinfer_abi::IVerinfer;

/// A GPU model of the contract owner's registry (`gpuModel(id)`, `gpuModelAt(i)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuModelInfo {
    /// Its id: keccak256 of the normalised name.
    pub id: B256,
    /// The normalised name.
    pub name: String,
    /// The VRAM every card of the model has, in MiB (what draws match tasks' `minVramMiB`
    /// against).
    pub vram_mib: u32,
    /// Whether new nodes may join with it (nodes already registered keep serving either way,
    /// and tasks may still name it).
    pub active: bool,
    /// Available nodes of the model now, all fee tiers.
    pub available_nodes: u32,
}

impl From<IVerinfer::GpuModelInfo> for GpuModelInfo {
    fn from(info: IVerinfer::GpuModelInfo) -> Self {
        Self {
            id: info.id,
            name: info.name,
            vram_mib: info.vramMiB,
            active: info.active,
            available_nodes: info.availableNodes,
        }
    }
}

/// Longest GPU model name the contract accepts, in bytes.
pub const MAX_GPU_MODEL_BYTES: usize = 64;

/// The normal form of a GPU model name and its on-chain id (keccak256 of the normal form):
/// ASCII lower case, surrounding whitespace removed, inner runs of spaces and tabs collapsed to
/// one space; only printable ASCII. Mirrors `GpuModels.normalise`, so an `Err` here is a revert
/// there.
pub fn normalise_gpu_model(name: &str) -> Result<(B256, String), String> {
    if name.len() > MAX_GPU_MODEL_BYTES {
        return Err(format!(
            "GPU model {name:?} is {} bytes, more than {MAX_GPU_MODEL_BYTES}",
            name.len()
        ));
    }
    let mut normal = String::with_capacity(name.len());
    let mut pending_space = false;
    for (index, byte) in name.bytes().enumerate() {
        if byte == b' ' || byte == b'\t' {
            pending_space = !normal.is_empty();
            continue;
        }
        if !(0x21..=0x7e).contains(&byte) {
            return Err(format!(
                "GPU model {name:?} has a character other than printable ASCII at byte {index}"
            ));
        }
        if pending_space {
            normal.push(' ');
            pending_space = false;
        }
        normal.push(char::from(byte.to_ascii_lowercase()));
    }
    if normal.is_empty() {
        return Err("GPU model name is empty".to_owned());
    }
    Ok((keccak256(normal.as_bytes()), normal))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_model_share_an_id() {
        let (id, normal) = normalise_gpu_model("  NVIDIA \t H100 80GB  HBM3 ").unwrap();
        assert_eq!(normal, "nvidia h100 80gb hbm3");
        assert_eq!(id, normalise_gpu_model("nvidia h100 80gb hbm3").unwrap().0);
        assert_ne!(id, normalise_gpu_model("nvidia h100").unwrap().0);
    }

    #[test]
    fn names_the_contract_rejects_are_rejected() {
        assert!(normalise_gpu_model(" \t ").unwrap_err().contains("empty"));
        assert!(
            normalise_gpu_model(&"a".repeat(65))
                .unwrap_err()
                .contains("more than 64")
        );
        assert!(
            normalise_gpu_model("rtx\u{e9}")
                .unwrap_err()
                .contains("printable ASCII at byte 3")
        );
        assert!(normalise_gpu_model(&"a".repeat(64)).is_ok());
    }
}
