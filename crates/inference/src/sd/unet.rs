//! The UNet (diffusers' `UNet2DConditionModel`).
//!
//! candle's `UNet2DConditionModel` has no SDXL micro-conditioning (`addition_embed_type:
//! "text_time"`: the pooled text embedding and the six size/crop ids added to the time
//! embedding), so this is its top level with that added; the down, mid and up blocks are
//! [`super::blocks`] (candle's differ from diffusers' formulas). No flash attention: plain
//! attention in f32 keeps results comparable.

use candle_core::{Module, Result, Tensor};
use candle_nn::{Conv2d, Conv2dConfig, GroupNorm, VarBuilder};
use candle_transformers::models::stable_diffusion::{
    embeddings::{TimestepEmbedding, Timesteps},
    unet_2d::BlockConfig,
};

use crate::sd::{
    blocks::{BlockSettings, DownBlock, MidBlock, UpBlock},
    config::UnetConfig,
};

/// SDXL's added conditioning.
#[derive(Debug)]
struct AddEmbedding {
    time_proj: Timesteps,
    embedding: TimestepEmbedding,
}

/// The conditional UNet.
#[derive(Debug)]
pub struct Unet {
    conv_in: Conv2d,
    time_proj: Timesteps,
    time_embedding: TimestepEmbedding,
    add_embedding: Option<AddEmbedding>,
    down_blocks: Vec<DownBlock>,
    mid_block: MidBlock,
    up_blocks: Vec<UpBlock>,
    conv_norm_out: GroupNorm,
    conv_out: Conv2d,
    config: UnetConfig,
}

/// SDXL conditioning beyond the text sequence.
#[derive(Debug, Clone)]
pub struct AddedConditions {
    /// Pooled, projected text embedding, `(batch, dim)`.
    pub text_embeds: Tensor,
    /// `(batch, 6)`: original height, width, crop top, left, target height, width.
    pub time_ids: Tensor,
}

impl Unet {
    /// Builds the UNet from `vb` (the root of `diffusion_pytorch_model.safetensors`).
    pub fn new(vb: VarBuilder, config: UnetConfig) -> Result<Self> {
        let n = config.blocks.len();
        let base = config.blocks[0].out_channels;
        let last = config.blocks[n - 1];
        let time_dim = base * 4;
        let padded = Conv2dConfig {
            padding: 1,
            ..Default::default()
        };
        let conv_in = candle_nn::conv2d(config.in_channels, base, 3, padded, vb.pp("conv_in"))?;
        let time_proj = Timesteps::new(base, config.flip_sin_to_cos, config.freq_shift);
        let time_embedding = TimestepEmbedding::new(vb.pp("time_embedding"), base, time_dim)?;
        let add_embedding = match config.text_time {
            None => None,
            Some(text_time) => Some(AddEmbedding {
                time_proj: Timesteps::new(
                    text_time.time_embed_dim,
                    config.flip_sin_to_cos,
                    config.freq_shift,
                ),
                embedding: TimestepEmbedding::new(
                    vb.pp("add_embedding"),
                    text_time.projection_input_dim,
                    time_dim,
                )?,
            }),
        };

        let settings = BlockSettings {
            temb_channels: time_dim,
            eps: config.norm_eps,
            groups: config.norm_num_groups,
            context_dim: config.cross_attention_dim,
            linear_projection: config.use_linear_projection,
        };
        let cross_attn = |block: &BlockConfig| {
            block
                .use_cross_attn
                .map(|depth| (block.attention_head_dim, depth))
        };
        let mut down_blocks = Vec::with_capacity(n);
        for (i, block) in config.blocks.iter().enumerate() {
            let in_channels = if i > 0 {
                config.blocks[i - 1].out_channels
            } else {
                base
            };
            down_blocks.push(DownBlock::new(
                vb.pp("down_blocks").pp(i),
                in_channels,
                block.out_channels,
                config.layers_per_block,
                cross_attn(block),
                (i < n - 1).then_some(config.downsample_padding),
                &settings,
            )?);
        }

        let mid_block = MidBlock::new(
            vb.pp("mid_block"),
            last.out_channels,
            last.attention_head_dim,
            last.use_cross_attn.unwrap_or(1),
            config.mid_block_scale_factor,
            &settings,
        )?;

        let mut up_blocks = Vec::with_capacity(n);
        for i in 0..n {
            let block = &config.blocks[n - 1 - i];
            let prev_out_channels = if i > 0 {
                config.blocks[n - i].out_channels
            } else {
                last.out_channels
            };
            let in_channels = config.blocks[if i == n - 1 { 0 } else { n - i - 2 }].out_channels;
            up_blocks.push(UpBlock::new(
                vb.pp("up_blocks").pp(i),
                in_channels,
                prev_out_channels,
                block.out_channels,
                config.layers_per_block + 1,
                cross_attn(block),
                i < n - 1,
                &settings,
            )?);
        }

        let conv_norm_out = candle_nn::group_norm(
            config.norm_num_groups,
            base,
            config.norm_eps,
            vb.pp("conv_norm_out"),
        )?;
        let conv_out = candle_nn::conv2d(base, config.out_channels, 3, padded, vb.pp("conv_out"))?;
        Ok(Self {
            conv_in,
            time_proj,
            time_embedding,
            add_embedding,
            down_blocks,
            mid_block,
            up_blocks,
            conv_norm_out,
            conv_out,
            config,
        })
    }

    /// Whether [`forward`](Self::forward) needs [`AddedConditions`].
    pub fn needs_added_conditions(&self) -> bool {
        self.add_embedding.is_some()
    }

    /// Predicts the noise (or v / x0) for `xs` at `timestep` given the text `context`.
    pub fn forward(
        &self,
        xs: &Tensor,
        timestep: f64,
        context: &Tensor,
        added: Option<&AddedConditions>,
    ) -> Result<Tensor> {
        let (batch, _, height, width) = xs.dims4()?;
        let device = xs.device();
        let n = self.config.blocks.len();
        let up_factor = 1usize << (n - 1);
        let odd_size = height % up_factor != 0 || width % up_factor != 0;
        let xs = if self.config.center_input_sample {
            ((xs * 2.0)? - 1.0)?
        } else {
            xs.clone()
        };

        let emb = (Tensor::ones(batch, xs.dtype(), device)? * timestep)?;
        let mut emb = self
            .time_embedding
            .forward(&self.time_proj.forward(&emb)?)?;
        if let Some(add) = &self.add_embedding {
            let Some(added) = added else {
                candle_core::bail!(
                    "this UNet (addition_embed_type \"text_time\") needs pooled text embeddings and time ids"
                );
            };
            let time_ids = added.time_ids.flatten_all()?.to_dtype(xs.dtype())?;
            let time_embeds = add.time_proj.forward(&time_ids)?.reshape((batch, ()))?;
            let add_input =
                Tensor::cat(&[&added.text_embeds.to_dtype(xs.dtype())?, &time_embeds], 1)?;
            emb = (emb + add.embedding.forward(&add_input)?)?;
        }

        let xs = self.conv_in.forward(&xs)?;
        let mut residuals = vec![xs.clone()];
        let mut xs = xs;
        for block in &self.down_blocks {
            let (next, block_residuals) = block.forward(&xs, &emb, context)?;
            residuals.extend(block_residuals);
            xs = next;
        }
        let mut xs = self.mid_block.forward(&xs, &emb, context)?;
        for (i, block) in self.up_blocks.iter().enumerate() {
            let block_residuals = residuals.split_off(residuals.len() - block.resnet_count());
            let upsample_size = match residuals.last() {
                Some(next) if i < n - 1 && odd_size => {
                    let (_, _, h, w) = next.dims4()?;
                    Some((h, w))
                }
                _ => None,
            };
            xs = block.forward(&xs, &block_residuals, &emb, context, upsample_size)?;
        }
        let xs = candle_nn::ops::silu(&self.conv_norm_out.forward(&xs)?)?;
        self.conv_out.forward(&xs)
    }
}
