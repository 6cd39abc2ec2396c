//! Device selection (`cpu`, `cuda:N`) and the numeric settings that keep runs reproducible.

use std::{fmt, str::FromStr};

use candle_core::{DType, Device};

use crate::error::{InferenceError, Result};

/// Where a model runs: `cpu` or `cuda:N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DeviceSpec {
    /// The CPU (candle's CPU backend).
    #[default]
    Cpu,
    /// The CUDA GPU with this ordinal; needs the `cuda` feature.
    Cuda(usize),
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(ordinal) => write!(f, "cuda:{ordinal}"),
        }
    }
}

/// A device string that is neither `cpu` nor `cuda:N`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a device: expected `cpu` or `cuda:N` (N a GPU ordinal, e.g. `cuda:0`)")]
pub struct DeviceSpecParseError(pub String);

impl FromStr for DeviceSpec {
    type Err = DeviceSpecParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "cpu" {
            return Ok(Self::Cpu);
        }
        s.strip_prefix("cuda:")
            .and_then(|ordinal| ordinal.parse().ok())
            .map(Self::Cuda)
            .ok_or_else(|| DeviceSpecParseError(s.to_owned()))
    }
}

impl DeviceSpec {
    /// Whether this build can use CUDA devices (the `cuda` feature).
    pub const CUDA_COMPILED: bool = cfg!(feature = "cuda");

    /// Opens the device and pins the reproducibility settings: on CUDA, reduced-precision GEMM
    /// accumulation (TF32 and friends) is switched off for every dtype.
    pub fn open(&self) -> Result<Device> {
        match *self {
            Self::Cpu => Ok(Device::Cpu),
            Self::Cuda(ordinal) => open_cuda(ordinal, &self.to_string()),
        }
    }
}

#[cfg(feature = "cuda")]
fn open_cuda(ordinal: usize, spec: &str) -> Result<Device> {
    // Reduced-precision accumulation depends on the kernel cuBLAS picks; leave it off so the
    // same GPU model always computes the same sums.
    candle_core::cuda::set_gemm_reduced_precision_f32(false);
    candle_core::cuda::set_gemm_reduced_precision_f16(false);
    candle_core::cuda::set_gemm_reduced_precision_bf16(false);
    Device::new_cuda(ordinal).map_err(|error| InferenceError::Device {
        spec: spec.to_owned(),
        message: error.to_string(),
    })
}

#[cfg(not(feature = "cuda"))]
fn open_cuda(_ordinal: usize, spec: &str) -> Result<Device> {
    Err(InferenceError::Device {
        spec: spec.to_owned(),
        message: "this build has no CUDA support; rebuild with `--features cuda`".to_owned(),
    })
}

/// Numeric precision of the model weights and activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Precision {
    /// 32-bit floats (the default, and the reference).
    #[default]
    F32,
    /// IEEE half precision.
    F16,
    /// bfloat16.
    Bf16,
}

impl Precision {
    /// The candle dtype.
    pub const fn dtype(self) -> DType {
        match self {
            Self::F32 => DType::F32,
            Self::F16 => DType::F16,
            Self::Bf16 => DType::BF16,
        }
    }
}

/// Refuses precisions the device cannot run: candle's CPU backend has no bf16 matmul, so a
/// bf16 model on the CPU would fail at its first layer.
pub(crate) fn check_precision(device: &Device, precision: Precision) -> Result<()> {
    if device.is_cpu() && precision == Precision::Bf16 {
        return Err(InferenceError::Device {
            spec: "cpu".to_owned(),
            message: "bf16 is not supported on the CPU (candle has no CPU bf16 matmul); use f32, f16 or a CUDA device".to_owned(),
        });
    }
    Ok(())
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
            Self::Bf16 => "bf16",
        })
    }
}

impl From<verinfer_task::Precision> for Precision {
    fn from(precision: verinfer_task::Precision) -> Self {
        match precision {
            verinfer_task::Precision::F32 => Self::F32,
            verinfer_task::Precision::F16 => Self::F16,
            verinfer_task::Precision::Bf16 => Self::Bf16,
        }
    }
}
