//! Inference as the daemon sees it: validated args and a model directory in, PNGs or a text
//! output out. [`CandleEngine`] runs `verinfer-inference`'s deterministic pipelines; the trait
//! lets an embedder bring its own (e.g. one that keeps models loaded between tasks).

use std::{
    fmt,
    path::PathBuf,
    sync::{Arc, Mutex},
};

use verinfer_inference::{
    DeviceSpec, GpuIdentity, ImageGenParams, ImagePipeline, Precision, TextGenParams, TextPipeline,
    encode_png,
};
use verinfer_task::{TaskArgs, TextOutput};

use crate::{
    NodeError,
    config::{Device, MAX_NODE_VRAM_MIB, MIN_NODE_VRAM_MIB},
};

/// Longest GPU model name the contract accepts, in bytes (`GpuModels.MAX_LENGTH`).
pub const MAX_GPU_MODEL_BYTES: usize = 64;

/// One inference run.
#[derive(Debug, Clone)]
pub struct InferenceJob {
    /// The task (for logs).
    pub task_id: u64,
    /// Validated args. Test behaviours may have altered them (see [`crate::config::TestingConfig`]).
    pub args: TaskArgs,
    /// The directory of the model the args name.
    pub model_dir: PathBuf,
    /// Where to run.
    pub device: Device,
    /// Run on a different numeric path than the args ask for (test-only, stands for other
    /// hardware): a reduced precision (bf16 on CUDA, f16 on the CPU) instead of f32, or f32
    /// instead of a reduced one.
    pub numerics_skew: bool,
}

/// What a run produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InferenceOutput {
    /// PNG files, in image order.
    Images(Vec<Vec<u8>>),
    /// The generated text.
    Text(TextOutput),
}

/// Runs inference. Called on a blocking thread; may take minutes.
pub trait InferenceEngine: Send + Sync + 'static {
    /// Runs `job`. Errors are the engine's (files, device, memory), never the args': args were
    /// validated before.
    fn run(&self, job: &InferenceJob) -> Result<InferenceOutput, String>;
}

/// The GPU identity a node declares on chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// GPU model name (the contract normalises case and whitespace).
    pub gpu_model: String,
    /// VRAM in MiB.
    pub vram_mib: u32,
}

/// Runs `verinfer-inference`'s pipelines, keeping the last loaded model of each kind so that
/// consecutive tasks on one model skip the load.
#[derive(Default)]
pub struct CandleEngine {
    image: Mutex<Option<(PipelineKey, ImagePipeline)>>,
    text: Mutex<Option<(PipelineKey, TextPipeline)>>,
}

impl fmt::Debug for CandleEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CandleEngine").finish_non_exhaustive()
    }
}

/// What a loaded pipeline was loaded for.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PipelineKey {
    dir: PathBuf,
    device: Device,
    precision: Precision,
}

impl CandleEngine {
    /// An engine with nothing loaded.
    pub fn new() -> Self {
        Self::default()
    }
}

impl InferenceEngine for CandleEngine {
    fn run(&self, job: &InferenceJob) -> Result<InferenceOutput, String> {
        let device = match job.device {
            Device::Cpu => DeviceSpec::Cpu,
            Device::Cuda(ordinal) => DeviceSpec::Cuda(ordinal),
        };
        let candle_device = device.open().map_err(|error| error.to_string())?;
        let task = job.task_id;
        match &job.args {
            TaskArgs::Image(args) => {
                let requested: Precision = args.precision.into();
                let precision = if job.numerics_skew {
                    skewed(requested, job.device)
                } else {
                    requested
                };
                let key = PipelineKey {
                    dir: job.model_dir.clone(),
                    device: job.device,
                    precision,
                };
                let mut slot = self
                    .image
                    .lock()
                    .map_err(|_| "the image pipeline lock is poisoned".to_owned())?;
                if slot.as_ref().is_none_or(|(loaded, _)| *loaded != key) {
                    *slot = None; // free the old model before loading the new one
                    let pipeline = ImagePipeline::load(&key.dir, &candle_device, precision)
                        .map_err(|e| e.to_string())?;
                    *slot = Some((key, pipeline));
                }
                let (_, pipeline) = slot.as_ref().ok_or("image pipeline missing after load")?;
                let mut progress =
                    |done: usize, total: usize| tracing::debug!(task, done, total, "denoising");
                let images = pipeline
                    .generate(&ImageGenParams::from(args), &mut progress)
                    .map_err(|e| e.to_string())?;
                let pngs = images
                    .iter()
                    .map(encode_png)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| e.to_string())?;
                Ok(InferenceOutput::Images(pngs))
            }
            TaskArgs::Text(args) => {
                // Text args carry no precision: the reference is f32.
                let precision = if job.numerics_skew {
                    skewed(Precision::F32, job.device)
                } else {
                    Precision::F32
                };
                let key = PipelineKey {
                    dir: job.model_dir.clone(),
                    device: job.device,
                    precision,
                };
                let mut slot = self
                    .text
                    .lock()
                    .map_err(|_| "the text pipeline lock is poisoned".to_owned())?;
                if slot.as_ref().is_none_or(|(loaded, _)| *loaded != key) {
                    *slot = None;
                    let mut pipeline = TextPipeline::load(&key.dir, &candle_device, precision)
                        .map_err(|e| e.to_string())?;
                    // Text is only ever run below f32 by the skew, so the key tells them apart.
                    if job.numerics_skew {
                        pipeline = pipeline.with_logit_skew(TEXT_LOGIT_SKEW);
                    }
                    *slot = Some((key, pipeline));
                }
                let (_, pipeline) = slot.as_mut().ok_or("text pipeline missing after load")?;
                let mut progress =
                    |done: usize, total: usize| tracing::trace!(task, done, total, "generating");
                let generation = pipeline
                    .generate(&TextGenParams::from(args), &mut progress)
                    .map_err(|e| e.to_string())?;
                Ok(InferenceOutput::Text(generation.into()))
            }
        }
    }
}

/// Relative logit skew of `numerics_skew` on text: a reduced precision alone rarely changes a
/// token of the tiny test models within a short generation (see
/// [`TextPipeline::with_logit_skew`]).
const TEXT_LOGIT_SKEW: f32 = 0.05;

/// The reduced precision `numerics_skew` runs instead of `requested`: bf16 on CUDA, f16 on the
/// CPU (candle's CPU backend has no bf16 matmul); f32 when the args already ask for a reduced one.
fn skewed(requested: Precision, device: Device) -> Precision {
    match (requested, device) {
        (Precision::F32, Device::Cuda(_)) => Precision::Bf16,
        (Precision::F32, Device::Cpu) => Precision::F16,
        (Precision::F16 | Precision::Bf16, _) => Precision::F32,
    }
}

/// The default engine: a fresh [`CandleEngine`].
pub fn candle_engine() -> Arc<dyn InferenceEngine> {
    Arc::new(CandleEngine::new())
}

/// The identity of the hardware `device` computes on: the GPU through NVML for `cuda:N`, the
/// CPU (`cpu:<model>`, RAM) for `cpu`. Made fit for the contract: printable ASCII, at most 64
/// bytes, VRAM clamped to the contract's range.
pub fn detect_identity(device: Device) -> Result<Identity, NodeError> {
    let detected = match device {
        Device::Cpu => GpuIdentity::cpu(),
        Device::Cuda(ordinal) => {
            let ordinal = u32::try_from(ordinal)
                .map_err(|_| NodeError::Identity(format!("GPU ordinal {ordinal} is too large")))?;
            GpuIdentity::gpu(ordinal)
        }
    }
    .map_err(|error| NodeError::Identity(error.to_string()))?;
    let gpu_model = contract_model_name(&detected.model);
    if gpu_model.is_empty() {
        return Err(NodeError::Identity(format!(
            "the detected model name {:?} has no printable ASCII",
            detected.model
        )));
    }
    let vram_mib = u32::try_from(detected.vram_mib)
        .unwrap_or(u32::MAX)
        .min(MAX_NODE_VRAM_MIB);
    if vram_mib < MIN_NODE_VRAM_MIB {
        return Err(NodeError::Identity(format!(
            "{} has {vram_mib} MiB, below the contract's minimum of {MIN_NODE_VRAM_MIB} MiB",
            detected.model
        )));
    }
    Ok(Identity {
        gpu_model,
        vram_mib,
    })
}

/// `name` as the contract accepts it: printable ASCII only, at most 64 bytes.
fn contract_model_name(name: &str) -> String {
    let mut cleaned: String = name
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .collect();
    cleaned = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
    cleaned.truncate(MAX_GPU_MODEL_BYTES);
    cleaned.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_are_made_contract_safe() {
        assert_eq!(
            contract_model_name("cpu:Intel(R) Xeon(R)  CPU @ 2.90GHz"),
            "cpu:Intel(R) Xeon(R) CPU @ 2.90GHz"
        );
        assert_eq!(
            contract_model_name("cpu:AMD EPYC\u{2122} 7B13"),
            "cpu:AMD EPYC 7B13"
        );
        let long = "x".repeat(100);
        assert_eq!(contract_model_name(&long).len(), MAX_GPU_MODEL_BYTES);
    }

    #[test]
    fn this_machine_has_an_identity() {
        let identity = detect_identity(Device::Cpu).unwrap();
        assert!(identity.gpu_model.starts_with("cpu:"), "{identity:?}");
        assert!(identity.vram_mib >= MIN_NODE_VRAM_MIB);
    }
}
