//! Which hardware this node runs on: the GPU model and its memory via NVML, or the CPU model
//! and RAM when there is no NVIDIA GPU. Nodes are pooled by this identity, since only the same
//! GPU model reproduces text bit for bit.

use std::{fmt, fs, path::Path};

use serde::{Deserialize, Serialize};

/// Prefix of CPU identities.
pub const CPU_PREFIX: &str = "cpu:";

/// A node's compute hardware.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GpuIdentity {
    /// The GPU name NVML reports (e.g. `NVIDIA H100 80GB HBM3`), or `cpu:` + the CPU model.
    pub model: String,
    /// GPU memory (or, for CPUs, total RAM) in MiB.
    pub vram_mib: u64,
}

impl fmt::Display for GpuIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} MiB)", self.model, self.vram_mib)
    }
}

/// Why the hardware could not be identified.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// NVML failed for a GPU that was asked for explicitly.
    #[error("NVML cannot describe GPU {ordinal}: {message}")]
    Nvml {
        /// The GPU ordinal.
        ordinal: u32,
        /// NVML's message.
        message: String,
    },
    /// `/proc/cpuinfo` or `/proc/meminfo` could not be read or parsed.
    #[error("cannot identify the CPU from {path}: {message}")]
    Proc {
        /// The file.
        path: String,
        /// What failed.
        message: String,
    },
}

impl GpuIdentity {
    /// GPU 0 through NVML when an NVIDIA driver is present, else the CPU.
    pub fn detect() -> Result<Self, IdentityError> {
        match Self::gpu(0) {
            Ok(identity) => Ok(identity),
            Err(error) => {
                tracing::debug!(%error, "no NVIDIA GPU through NVML; identifying the CPU");
                Self::cpu()
            }
        }
    }

    /// GPU `ordinal` through NVML (libnvidia-ml is loaded at run time).
    pub fn gpu(ordinal: u32) -> Result<Self, IdentityError> {
        let nvml_error = |error: nvml_wrapper::error::NvmlError| IdentityError::Nvml {
            ordinal,
            message: error.to_string(),
        };
        let nvml = nvml_wrapper::Nvml::init().map_err(nvml_error)?;
        let device = nvml.device_by_index(ordinal).map_err(nvml_error)?;
        let model = device.name().map_err(nvml_error)?;
        let memory = device.memory_info().map_err(nvml_error)?;
        Ok(Self {
            model: collapse_whitespace(&model),
            vram_mib: memory.total / (1024 * 1024),
        })
    }

    /// The CPU model (`cpu:` + `/proc/cpuinfo`'s first `model name`) and total RAM.
    pub fn cpu() -> Result<Self, IdentityError> {
        let cpuinfo = read_proc(Path::new("/proc/cpuinfo"))?;
        let meminfo = read_proc(Path::new("/proc/meminfo"))?;
        let model = cpu_model(&cpuinfo).ok_or_else(|| IdentityError::Proc {
            path: "/proc/cpuinfo".to_owned(),
            message: "no `model name` line".to_owned(),
        })?;
        let vram_mib = total_ram_mib(&meminfo).ok_or_else(|| IdentityError::Proc {
            path: "/proc/meminfo".to_owned(),
            message: "no `MemTotal: <n> kB` line".to_owned(),
        })?;
        Ok(Self {
            model: format!("{CPU_PREFIX}{model}"),
            vram_mib,
        })
    }

    /// Whether this identity is a CPU.
    pub fn is_cpu(&self) -> bool {
        self.model.starts_with(CPU_PREFIX)
    }
}

fn read_proc(path: &Path) -> Result<String, IdentityError> {
    fs::read_to_string(path).map_err(|error| IdentityError::Proc {
        path: path.display().to_string(),
        message: error.to_string(),
    })
}

fn collapse_whitespace(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The first `model name` of a `/proc/cpuinfo`, trimmed, whitespace collapsed.
fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        let value = collapse_whitespace(value);
        (key.trim() == "model name" && !value.is_empty()).then_some(value)
    })
}

/// `MemTotal` of a `/proc/meminfo`, in MiB.
fn total_ram_mib(meminfo: &str) -> Option<u64> {
    meminfo.lines().find_map(|line| {
        let rest = line.strip_prefix("MemTotal:")?;
        let kib: u64 = rest.trim().strip_suffix("kB")?.trim().parse().ok()?;
        Some(kib / 1024)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_model_and_ram() {
        let cpuinfo = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t:   AMD EPYC   9654 96-Core Processor  \nmodel name\t: other\n";
        assert_eq!(
            cpu_model(cpuinfo).as_deref(),
            Some("AMD EPYC 9654 96-Core Processor")
        );
        assert_eq!(cpu_model("processor : 0\n"), None);
        assert_eq!(
            total_ram_mib("MemTotal:       24609640 kB\nMemFree: 1 kB\n"),
            Some(24032)
        );
        assert_eq!(total_ram_mib("MemFree: 1 kB\n"), None);
    }

    #[test]
    fn detect_gives_an_identity_here() {
        let identity = GpuIdentity::detect().expect("this machine has /proc or a GPU");
        assert!(!identity.model.is_empty());
        assert!(identity.vram_mib > 0);
    }
}
