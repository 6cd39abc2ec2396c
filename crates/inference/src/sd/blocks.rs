//! The UNet's down, mid and up blocks and their transformers, following diffusers'
//! `unet_2d_blocks.py`, `transformer_2d.py` and `attention.py`.
//!
//! candle's versions differ from diffusers in two ways that change images: its `GeGlu`
//! feed-forward gates with the tanh approximation of GELU where diffusers uses the exact, erf
//! one, and its `DownBlock2D` / `UpBlock2D` ignore `resnet_groups` (always 32 groups). Both are
//! fixed here; candle's `ResnetBlock2D` and `CrossAttention` are reused as they are. Tensor
//! names are diffusers' (`down_blocks.0.attentions.0.transformer_blocks.0.ff.net.0.proj`...).

use candle_core::{D, Module, Result, Tensor};
use candle_nn::{Conv2d, Conv2dConfig, GroupNorm, LayerNorm, Linear, VarBuilder};
use candle_transformers::models::stable_diffusion::{
    attention::CrossAttention,
    resnet::{ResnetBlock2D, ResnetBlock2DConfig},
};

/// diffusers' `GEGLU`: `proj(x) = [h, gate]`, output `h * gelu(gate)` with the exact GELU.
#[derive(Debug)]
struct GeGlu {
    proj: Linear,
}

impl Module for GeGlu {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let projected = self.proj.forward(xs)?.chunk(2, D::Minus1)?;
        // diffusers' F.gelu(gate) is the erf form; candle's `gelu` is the tanh approximation.
        &projected[0] * projected[1].gelu_erf()?
    }
}

/// diffusers' `FeedForward` with `activation_fn = "geglu"`, `mult = 4` (`net.0`, `net.2`).
#[derive(Debug)]
struct FeedForward {
    project_in: GeGlu,
    project_out: Linear,
}

impl FeedForward {
    fn new(vb: VarBuilder, dim: usize) -> Result<Self> {
        let inner = 4 * dim;
        let vb = vb.pp("net");
        Ok(Self {
            project_in: GeGlu {
                proj: candle_nn::linear(dim, 2 * inner, vb.pp("0").pp("proj"))?,
            },
            project_out: candle_nn::linear(inner, dim, vb.pp("2"))?,
        })
    }
}

impl Module for FeedForward {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        self.project_out.forward(&self.project_in.forward(xs)?)
    }
}

/// diffusers' `BasicTransformerBlock` (`norm_type = "layer_norm"`, eps 1e-5): self-attention,
/// cross-attention, feed-forward, each pre-normed and residual.
#[derive(Debug)]
struct TransformerBlock {
    norm1: LayerNorm,
    attn1: CrossAttention,
    norm2: LayerNorm,
    attn2: CrossAttention,
    norm3: LayerNorm,
    ff: FeedForward,
}

impl TransformerBlock {
    fn new(vb: VarBuilder, dim: usize, heads: usize, context_dim: usize) -> Result<Self> {
        let head_dim = dim / heads;
        Ok(Self {
            norm1: candle_nn::layer_norm(dim, 1e-5, vb.pp("norm1"))?,
            attn1: CrossAttention::new(vb.pp("attn1"), dim, None, heads, head_dim, None, false)?,
            norm2: candle_nn::layer_norm(dim, 1e-5, vb.pp("norm2"))?,
            attn2: CrossAttention::new(
                vb.pp("attn2"),
                dim,
                Some(context_dim),
                heads,
                head_dim,
                None,
                false,
            )?,
            norm3: candle_nn::layer_norm(dim, 1e-5, vb.pp("norm3"))?,
            ff: FeedForward::new(vb.pp("ff"), dim)?,
        })
    }

    fn forward(&self, xs: &Tensor, context: &Tensor) -> Result<Tensor> {
        let xs = (self.attn1.forward(&self.norm1.forward(xs)?, None)? + xs)?;
        let xs = (self
            .attn2
            .forward(&self.norm2.forward(&xs)?, Some(context))?
            + xs)?;
        self.ff.forward(&self.norm3.forward(&xs)?)? + xs
    }
}

#[derive(Debug)]
enum Projection {
    /// 1x1 convolution on `(batch, channels, h, w)` (SD 1.x).
    Conv(Conv2d),
    /// Linear on `(batch, h*w, channels)` (`use_linear_projection`, SD 2.x / SDXL).
    Linear(Linear),
}

impl Projection {
    fn new(vb: VarBuilder, from: usize, to: usize, linear: bool) -> Result<Self> {
        Ok(if linear {
            Self::Linear(candle_nn::linear(from, to, vb)?)
        } else {
            Self::Conv(candle_nn::conv2d(from, to, 1, Conv2dConfig::default(), vb)?)
        })
    }
}

/// diffusers' `Transformer2DModel` for continuous inputs: group norm (eps 1e-6), `proj_in`,
/// `depth` transformer blocks, `proj_out`, plus the input.
#[derive(Debug)]
struct SpatialTransformer {
    norm: GroupNorm,
    proj_in: Projection,
    blocks: Vec<TransformerBlock>,
    proj_out: Projection,
}

/// What a [`SpatialTransformer`] is built from.
#[derive(Debug, Clone, Copy)]
struct TransformerConfig {
    heads: usize,
    depth: usize,
    groups: usize,
    context_dim: usize,
    linear_projection: bool,
}

impl SpatialTransformer {
    fn new(vb: VarBuilder, channels: usize, c: TransformerConfig) -> Result<Self> {
        // diffusers: inner_dim = heads * (channels // heads).
        let inner = c.heads * (channels / c.heads);
        let blocks_vb = vb.pp("transformer_blocks");
        Ok(Self {
            norm: candle_nn::group_norm(c.groups, channels, 1e-6, vb.pp("norm"))?,
            proj_in: Projection::new(vb.pp("proj_in"), channels, inner, c.linear_projection)?,
            blocks: (0..c.depth)
                .map(|i| TransformerBlock::new(blocks_vb.pp(i), inner, c.heads, c.context_dim))
                .collect::<Result<_>>()?,
            proj_out: Projection::new(vb.pp("proj_out"), inner, channels, c.linear_projection)?,
        })
    }

    fn forward(&self, xs: &Tensor, context: &Tensor) -> Result<Tensor> {
        let (batch, _, height, width) = xs.dims4()?;
        let hidden = self.norm.forward(xs)?;
        // (b, c, h, w) -> (b, h*w, c)
        let to_sequence = |t: &Tensor| -> Result<Tensor> {
            let channels = t.dim(1)?;
            t.permute((0, 2, 3, 1))?
                .reshape((batch, height * width, channels))
        };
        let mut hidden = match &self.proj_in {
            Projection::Conv(conv) => to_sequence(&conv.forward(&hidden)?)?,
            Projection::Linear(linear) => linear.forward(&to_sequence(&hidden)?)?,
        };
        for block in &self.blocks {
            hidden = block.forward(&hidden, context)?;
        }
        // (b, h*w, c) -> (b, c, h, w)
        let to_image = |t: &Tensor| -> Result<Tensor> {
            let channels = t.dim(2)?;
            t.reshape((batch, height, width, channels))?
                .permute((0, 3, 1, 2))?
                .contiguous()
        };
        let hidden = match &self.proj_out {
            Projection::Conv(conv) => conv.forward(&to_image(&hidden)?)?,
            Projection::Linear(linear) => to_image(&linear.forward(&hidden)?)?,
        };
        hidden + xs
    }
}

/// Settings shared by every block of one UNet.
#[derive(Debug, Clone, Copy)]
pub struct BlockSettings {
    /// Width of the time embedding fed to every resnet.
    pub temb_channels: usize,
    /// `norm_eps` (resnets).
    pub eps: f64,
    /// `norm_num_groups` (resnets and transformers).
    pub groups: usize,
    /// Width of the text context (`cross_attention_dim`).
    pub context_dim: usize,
    /// `use_linear_projection`.
    pub linear_projection: bool,
}

impl BlockSettings {
    fn resnet(&self, out_channels: usize, output_scale_factor: f64) -> ResnetBlock2DConfig {
        ResnetBlock2DConfig {
            out_channels: Some(out_channels),
            temb_channels: Some(self.temb_channels),
            groups: self.groups,
            groups_out: None,
            eps: self.eps,
            use_in_shortcut: None,
            output_scale_factor,
        }
    }

    fn transformer(&self, heads: usize, depth: usize) -> TransformerConfig {
        TransformerConfig {
            heads,
            depth,
            groups: self.groups,
            context_dim: self.context_dim,
            linear_projection: self.linear_projection,
        }
    }
}

/// Cross-attention of a block: `(attention heads, transformer layers per block)`.
pub type CrossAttn = Option<(usize, usize)>;

/// `DownBlock2D` or, with attentions, `CrossAttnDownBlock2D`.
#[derive(Debug)]
pub struct DownBlock {
    resnets: Vec<ResnetBlock2D>,
    attentions: Vec<SpatialTransformer>,
    downsampler: Option<Conv2d>,
}

impl DownBlock {
    /// Builds down block `vb` with `layers` resnets; `downsample_padding` is diffusers' (0 pads
    /// the right and bottom by one before the stride-2 convolution).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        vb: VarBuilder,
        in_channels: usize,
        out_channels: usize,
        layers: usize,
        cross_attn: CrossAttn,
        add_downsample: Option<usize>,
        s: &BlockSettings,
    ) -> Result<Self> {
        let resnets_vb = vb.pp("resnets");
        let resnets = (0..layers)
            .map(|i| {
                let from = if i == 0 { in_channels } else { out_channels };
                ResnetBlock2D::new(resnets_vb.pp(i), from, s.resnet(out_channels, 1.0))
            })
            .collect::<Result<_>>()?;
        let attentions = attentions(&vb, out_channels, layers, cross_attn, s)?;
        let downsampler = match add_downsample {
            None => None,
            Some(padding) => Some(candle_nn::conv2d(
                out_channels,
                out_channels,
                3,
                Conv2dConfig {
                    stride: 2,
                    padding,
                    ..Default::default()
                },
                vb.pp("downsamplers").pp(0).pp("conv"),
            )?),
        };
        Ok(Self {
            resnets,
            attentions,
            downsampler,
        })
    }

    /// The block's output and the states kept for the skip connections.
    pub fn forward(
        &self,
        xs: &Tensor,
        temb: &Tensor,
        context: &Tensor,
    ) -> Result<(Tensor, Vec<Tensor>)> {
        let mut xs = xs.clone();
        let mut states = Vec::with_capacity(self.resnets.len() + 1);
        for (i, resnet) in self.resnets.iter().enumerate() {
            xs = resnet.forward(&xs, Some(temb))?;
            if let Some(attention) = self.attentions.get(i) {
                xs = attention.forward(&xs, context)?;
            }
            states.push(xs.clone());
        }
        if let Some(conv) = &self.downsampler {
            if conv.config().padding == 0 {
                xs = xs
                    .pad_with_zeros(D::Minus1, 0, 1)?
                    .pad_with_zeros(D::Minus2, 0, 1)?;
            }
            xs = conv.forward(&xs)?;
            states.push(xs.clone());
        }
        Ok((xs, states))
    }
}

/// `UpBlock2D` or, with attentions, `CrossAttnUpBlock2D`.
#[derive(Debug)]
pub struct UpBlock {
    resnets: Vec<ResnetBlock2D>,
    attentions: Vec<SpatialTransformer>,
    upsampler: Option<Conv2d>,
}

impl UpBlock {
    /// Builds up block `vb` with `layers` resnets: `prev_channels` come from below, the skip
    /// connections have `out_channels` except the last, which has `in_channels`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        vb: VarBuilder,
        in_channels: usize,
        prev_channels: usize,
        out_channels: usize,
        layers: usize,
        cross_attn: CrossAttn,
        add_upsample: bool,
        s: &BlockSettings,
    ) -> Result<Self> {
        let resnets_vb = vb.pp("resnets");
        let resnets = (0..layers)
            .map(|i| {
                let skip = if i == layers - 1 {
                    in_channels
                } else {
                    out_channels
                };
                let from = if i == 0 { prev_channels } else { out_channels };
                ResnetBlock2D::new(resnets_vb.pp(i), from + skip, s.resnet(out_channels, 1.0))
            })
            .collect::<Result<_>>()?;
        let attentions = attentions(&vb, out_channels, layers, cross_attn, s)?;
        let upsampler = if add_upsample {
            Some(candle_nn::conv2d(
                out_channels,
                out_channels,
                3,
                Conv2dConfig {
                    padding: 1,
                    ..Default::default()
                },
                vb.pp("upsamplers").pp(0).pp("conv"),
            )?)
        } else {
            None
        };
        Ok(Self {
            resnets,
            attentions,
            upsampler,
        })
    }

    /// Resnets in this block (skip states it consumes).
    pub fn resnet_count(&self) -> usize {
        self.resnets.len()
    }

    /// Consumes `skips` from the last; `upsample_size` overrides the 2x nearest upsampling
    /// (odd latent sizes).
    pub fn forward(
        &self,
        xs: &Tensor,
        skips: &[Tensor],
        temb: &Tensor,
        context: &Tensor,
        upsample_size: Option<(usize, usize)>,
    ) -> Result<Tensor> {
        let mut xs = xs.clone();
        for (i, resnet) in self.resnets.iter().enumerate() {
            let skip = &skips[skips.len() - i - 1];
            xs = Tensor::cat(&[&xs, skip], 1)?;
            xs = resnet.forward(&xs, Some(temb))?;
            if let Some(attention) = self.attentions.get(i) {
                xs = attention.forward(&xs, context)?;
            }
        }
        match &self.upsampler {
            None => Ok(xs),
            Some(conv) => {
                let (h, w) = match upsample_size {
                    Some(size) => size,
                    None => {
                        let (_, _, h, w) = xs.dims4()?;
                        (2 * h, 2 * w)
                    }
                };
                conv.forward(&xs.upsample_nearest2d(h, w)?)
            }
        }
    }
}

/// `UNetMidBlock2DCrossAttn`: resnet, then (transformer, resnet) once.
#[derive(Debug)]
pub struct MidBlock {
    first: ResnetBlock2D,
    attention: SpatialTransformer,
    second: ResnetBlock2D,
}

impl MidBlock {
    /// Builds the mid block `vb` on `channels` channels.
    pub fn new(
        vb: VarBuilder,
        channels: usize,
        heads: usize,
        depth: usize,
        output_scale_factor: f64,
        s: &BlockSettings,
    ) -> Result<Self> {
        let resnet = s.resnet(channels, output_scale_factor);
        Ok(Self {
            first: ResnetBlock2D::new(vb.pp("resnets").pp(0), channels, resnet)?,
            attention: SpatialTransformer::new(
                vb.pp("attentions").pp(0),
                channels,
                s.transformer(heads, depth),
            )?,
            second: ResnetBlock2D::new(vb.pp("resnets").pp(1), channels, resnet)?,
        })
    }

    /// The mid block's output.
    pub fn forward(&self, xs: &Tensor, temb: &Tensor, context: &Tensor) -> Result<Tensor> {
        let xs = self.first.forward(xs, Some(temb))?;
        let xs = self.attention.forward(&xs, context)?;
        self.second.forward(&xs, Some(temb))
    }
}

fn attentions(
    vb: &VarBuilder,
    channels: usize,
    layers: usize,
    cross_attn: CrossAttn,
    s: &BlockSettings,
) -> Result<Vec<SpatialTransformer>> {
    let Some((heads, depth)) = cross_attn else {
        return Ok(Vec::new());
    };
    let vb = vb.pp("attentions");
    (0..layers)
        .map(|i| SpatialTransformer::new(vb.pp(i), channels, s.transformer(heads, depth)))
        .collect()
}
