//! verinfer's inference: deterministic Stable Diffusion and LLM pipelines on candle, tiny
//! random-weight models in the real layouts, and the node's hardware identity.
//!
//! Only node operators compile it (through `verinfer-node` and the CLI): it must not depend on
//! the chain bindings, the relayer or any network service; its one protocol dependency is
//! `verinfer-task`.
//!
//! - [`ImagePipeline`] + [`ImageGenParams`]: diffusers directories (SD 1.x, 2.x, SDXL);
//!   the images other nodes reproduce within a few pHash bits.
//! - [`TextPipeline`] + [`TextGenParams`]: llama / qwen2 directories; text other nodes on the
//!   same GPU model reproduce bit for bit.
//! - [`make_tiny_models`]: `tiny-sd/`, `tiny-sdxl/` and `tiny-llama/` from a seed, for tests.
//! - [`GpuIdentity`]: NVML GPU name and memory, or the CPU.
//! - [`DeviceSpec`] (`cpu`, `cuda:N`) and [`Precision`].
//!
//! Everything the chain compares is deterministic given the parameters: the diffusion noise
//! comes from a seeded CPU stream ([`noise`]), not from candle's RNGs, and no kernel with
//! run-to-run variation (flash attention, reduced-precision GEMM) is used.

mod device;
mod error;
mod identity;
pub mod llm;
pub mod noise;
pub mod sd;
pub mod tiny;
mod weights;

pub use device::{DeviceSpec, DeviceSpecParseError, Precision};
pub use error::{InferenceError, Result};
pub use identity::{CPU_PREFIX, GpuIdentity, IdentityError};
pub use llm::{
    FinishReason, PromptEncoder, TextGenParams, TextGeneration, TextPipeline, TextPrompt,
    TextSampling,
    chat::{ChatMessage, ChatRole},
};
pub use sd::{ImageGenParams, ImagePipeline, Progress, encode_png, scheduler::SchedulerKind};
pub use tiny::{TinyModels, make_tiny_models};
