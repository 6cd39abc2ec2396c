//! The CLIP text encoder of Stable Diffusion.
//!
//! candle's `stable_diffusion::clip` can only be configured from its built-in presets (its
//! config fields are private), so this is the same transformer with a config read from
//! `config.json`, plus the outputs SDXL needs: the penultimate hidden states and the pooled,
//! projected embedding. Weight names are those of transformers' `CLIPTextModel`
//! (`text_model.*`) and `CLIPTextModelWithProjection` (`text_projection.weight`).

use candle_core::{DType, Device, IndexOp, Module, Result, Tensor};
use candle_nn::{Embedding, LayerNorm, Linear, VarBuilder};

/// CLIP activation (`hidden_act`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClipActivation {
    /// `quick_gelu`: `x * sigmoid(1.702 x)`.
    QuickGelu,
    /// `gelu`: the exact, erf-based GELU.
    Gelu,
    /// `gelu_new` / `gelu_pytorch_tanh`: the tanh approximation.
    GeluTanh,
}

impl ClipActivation {
    /// Parses transformers' `hidden_act` names.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "quick_gelu" => Some(Self::QuickGelu),
            "gelu" => Some(Self::Gelu),
            "gelu_new" | "gelu_pytorch_tanh" => Some(Self::GeluTanh),
            _ => None,
        }
    }

    fn apply(self, xs: &Tensor) -> Result<Tensor> {
        match self {
            Self::QuickGelu => xs * candle_nn::ops::sigmoid(&(xs * 1.702f64)?)?,
            Self::Gelu => xs.gelu_erf(),
            Self::GeluTanh => xs.gelu(),
        }
    }
}

/// CLIP text transformer configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipConfig {
    /// Size of the token vocabulary (rows of the token embedding).
    pub vocab_size: usize,
    /// Width of the hidden states.
    pub hidden_size: usize,
    /// Hidden width of each layer's MLP.
    pub intermediate_size: usize,
    /// Number of transformer layers (at least 2).
    pub num_hidden_layers: usize,
    /// Attention heads per layer; must divide `hidden_size`.
    pub num_attention_heads: usize,
    /// Longest token sequence (rows of the position embedding).
    pub max_position_embeddings: usize,
    /// Activation of each layer's MLP.
    pub activation: ClipActivation,
    /// Epsilon of the layer norms.
    pub layer_norm_eps: f64,
    /// Width of `text_projection`, when the checkpoint has one and it is used.
    pub projection_dim: Option<usize>,
}

/// What one forward pass yields.
#[derive(Debug)]
pub struct ClipOutput {
    /// Final hidden states after the final layer norm, `(batch, seq, hidden)`.
    pub last_hidden_state: Tensor,
    /// Output of the second-to-last layer, without the final norm (SDXL conditions on it).
    pub penultimate_hidden_state: Tensor,
    /// `text_projection(last_hidden_state[eos])`, `(batch, projection_dim)`, when projected.
    pub text_embeds: Option<Tensor>,
}

#[derive(Debug)]
struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    out_proj: Linear,
    heads: usize,
    head_dim: usize,
}

impl Attention {
    fn new(vb: VarBuilder, c: &ClipConfig) -> Result<Self> {
        let h = c.hidden_size;
        Ok(Self {
            q_proj: candle_nn::linear(h, h, vb.pp("q_proj"))?,
            k_proj: candle_nn::linear(h, h, vb.pp("k_proj"))?,
            v_proj: candle_nn::linear(h, h, vb.pp("v_proj"))?,
            out_proj: candle_nn::linear(h, h, vb.pp("out_proj"))?,
            heads: c.num_attention_heads,
            head_dim: h / c.num_attention_heads,
        })
    }

    fn split_heads(&self, xs: &Tensor, batch: usize, seq: usize) -> Result<Tensor> {
        xs.reshape((batch, seq, self.heads, self.head_dim))?
            .transpose(1, 2)?
            .contiguous()?
            .to_dtype(DType::F32)
    }

    fn forward(&self, xs: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let dtype = xs.dtype();
        let (batch, seq, hidden) = xs.dims3()?;
        let scale = (self.head_dim as f64).powf(-0.5);
        let q = self.split_heads(&(self.q_proj.forward(xs)? * scale)?, batch, seq)?;
        let k = self.split_heads(&self.k_proj.forward(xs)?, batch, seq)?;
        let v = self.split_heads(&self.v_proj.forward(xs)?, batch, seq)?;
        // Attention in f32 whatever the model dtype, as candle's CLIP does.
        let weights = q
            .matmul(&k.transpose(2, 3)?.contiguous()?)?
            .broadcast_add(mask)?;
        let weights = candle_nn::ops::softmax_last_dim(&weights)?;
        let out = weights
            .matmul(&v)?
            .to_dtype(dtype)?
            .transpose(1, 2)?
            .reshape((batch, seq, hidden))?;
        self.out_proj.forward(&out)
    }
}

#[derive(Debug)]
struct EncoderLayer {
    self_attn: Attention,
    layer_norm1: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    layer_norm2: LayerNorm,
    activation: ClipActivation,
}

impl EncoderLayer {
    fn new(vb: VarBuilder, c: &ClipConfig) -> Result<Self> {
        let h = c.hidden_size;
        Ok(Self {
            self_attn: Attention::new(vb.pp("self_attn"), c)?,
            layer_norm1: candle_nn::layer_norm(h, c.layer_norm_eps, vb.pp("layer_norm1"))?,
            fc1: candle_nn::linear(h, c.intermediate_size, vb.pp("mlp").pp("fc1"))?,
            fc2: candle_nn::linear(c.intermediate_size, h, vb.pp("mlp").pp("fc2"))?,
            layer_norm2: candle_nn::layer_norm(h, c.layer_norm_eps, vb.pp("layer_norm2"))?,
            activation: c.activation,
        })
    }

    fn forward(&self, xs: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let attended = self
            .self_attn
            .forward(&self.layer_norm1.forward(xs)?, mask)?;
        let xs = (attended + xs)?;
        let hidden = self.fc1.forward(&self.layer_norm2.forward(&xs)?)?;
        let hidden = self.fc2.forward(&self.activation.apply(&hidden)?)?;
        hidden + xs
    }
}

/// The CLIP text transformer.
#[derive(Debug)]
pub struct ClipTextModel {
    token_embedding: Embedding,
    position_embedding: Embedding,
    layers: Vec<EncoderLayer>,
    final_layer_norm: LayerNorm,
    text_projection: Option<Linear>,
    projection_dim: Option<usize>,
    max_positions: usize,
}

impl ClipTextModel {
    /// Builds the model from `vb` (the root of the checkpoint).
    pub fn new(vb: VarBuilder, c: &ClipConfig) -> Result<Self> {
        if c.num_hidden_layers < 2 {
            candle_core::bail!(
                "CLIP needs at least 2 layers (SDXL reads the penultimate one), config has {}",
                c.num_hidden_layers
            );
        }
        let text = vb.pp("text_model");
        let embeddings = text.pp("embeddings");
        let layers = (0..c.num_hidden_layers)
            .map(|i| EncoderLayer::new(text.pp("encoder").pp("layers").pp(i), c))
            .collect::<Result<Vec<_>>>()?;
        let text_projection = match c.projection_dim {
            Some(dim) => Some(candle_nn::linear_no_bias(
                c.hidden_size,
                dim,
                vb.pp("text_projection"),
            )?),
            None => None,
        };
        Ok(Self {
            token_embedding: candle_nn::embedding(
                c.vocab_size,
                c.hidden_size,
                embeddings.pp("token_embedding"),
            )?,
            position_embedding: candle_nn::embedding(
                c.max_position_embeddings,
                c.hidden_size,
                embeddings.pp("position_embedding"),
            )?,
            layers,
            final_layer_norm: candle_nn::layer_norm(
                c.hidden_size,
                c.layer_norm_eps,
                text.pp("final_layer_norm"),
            )?,
            text_projection,
            projection_dim: c.projection_dim,
            max_positions: c.max_position_embeddings,
        })
    }

    /// Width of the pooled, projected embedding, when the model has a projection.
    pub fn projection_dim(&self) -> Option<usize> {
        self.projection_dim
    }

    /// Encodes `(batch, seq)` token ids; `eos_positions[b]` is where sequence `b`'s
    /// end-of-text token sits (the pooled output is read there).
    pub fn forward(&self, ids: &Tensor, eos_positions: &[usize]) -> Result<ClipOutput> {
        let (batch, seq) = ids.dims2()?;
        if seq > self.max_positions {
            candle_core::bail!(
                "{seq} tokens exceed CLIP's {} positions",
                self.max_positions
            );
        }
        let device = ids.device();
        let positions = Tensor::arange(0u32, seq as u32, device)?;
        let mut xs = self
            .token_embedding
            .forward(ids)?
            .broadcast_add(&self.position_embedding.forward(&positions)?)?;
        let mask = causal_mask(seq, device)?;
        let mut penultimate = None;
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            if i == last {
                penultimate = Some(xs.clone());
            }
            xs = layer.forward(&xs, &mask)?;
        }
        let last_hidden_state = self.final_layer_norm.forward(&xs)?;
        let text_embeds = match &self.text_projection {
            None => None,
            Some(projection) => {
                let pooled = eos_positions
                    .iter()
                    .take(batch)
                    .enumerate()
                    .map(|(b, &p)| last_hidden_state.i((b, p)))
                    .collect::<Result<Vec<_>>>()?;
                Some(projection.forward(&Tensor::stack(&pooled, 0)?)?)
            }
        };
        Ok(ClipOutput {
            last_hidden_state,
            penultimate_hidden_state: penultimate.unwrap_or_else(|| xs.clone()),
            text_embeds,
        })
    }
}

fn causal_mask(seq: usize, device: &Device) -> Result<Tensor> {
    let mask: Vec<f32> = (0..seq)
        .flat_map(|i| (0..seq).map(move |j| if j > i { f32::MIN } else { 0.0 }))
        .collect();
    Tensor::from_vec(mask, (1, 1, seq, seq), device)
}
