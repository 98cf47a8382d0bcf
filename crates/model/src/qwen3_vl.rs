//! Qwen3-VL's vision tower and DeepStack mergers, as transformers' `Qwen3VLVisionModel`.
//!
//! 1. Patch embedding: a Conv3d (kernel = stride = `(temporal, patch, patch)`, with bias), one
//!    matmul on the processor's flattened patches (patch 16, so a merged token covers 32 px).
//! 2. Learned position embedding: a square `side x side` table (`num_position_embeddings`)
//!    resampled to each image's patch grid by bilinear interpolation with aligned corners; each
//!    patch takes a weighted sum of four table rows, which keeps the table trainable.
//! 3. 2-D rotary (the same layout as Qwen2.5-VL's, theta from `rope_parameters`).
//! 4. Blocks: pre-norm LayerNorm (eps 1e-6, with bias) attention over each whole image, MLP
//!    `linear_fc1` - `gelu_pytorch_tanh` - `linear_fc2`.
//! 5. Merger: LayerNorm over each patch, concatenate a merge unit's patches, Linear-GELU(erf)-Linear.
//!    DeepStack mergers take the outputs of the blocks in `deepstack_visual_indexes`, concatenate
//!    first and LayerNorm the concatenation; their outputs are added to the hidden states of the
//!    first decoder layers at the image positions ([`crate::decoder::DeepStack`]).
//!
//! Tokens come out image by image, merge units row-major (the processor's order); no window
//! permutation as in Qwen2.5-VL. Every op has a backward when `grad` is true.

use candle_core::{DType, Device, Tensor};

use crate::error::{ModelError, Result};
use crate::lora::{LoraRuntime, Proj};
use crate::ops;
use crate::params::{Init, Params};
use crate::vision::{attend_segments, check_patches, patch_positions, rotary_2d};

pub use crate::qwen3_vl_config::Qwen3VlVisionConfig;

const PREFIX: &str = "visual";

struct Block {
    norm1: (Tensor, Tensor),
    norm2: (Tensor, Tensor),
    qkv: Proj,
    proj: Proj,
    fc1: Proj,
    fc2: Proj,
}

struct Merger {
    norm: (Tensor, Tensor),
    fc1: Proj,
    fc2: Proj,
    /// DeepStack mergers normalise the concatenated merge unit, the final one each patch.
    postshuffle: bool,
}

/// The tower's output: image tokens and one DeepStack feature tensor per entry of
/// `deepstack_visual_indexes`, each `(tokens, out_hidden)`.
pub struct Qwen3VlVisionOutput {
    pub embeds: Tensor,
    pub deepstack: Vec<Tensor>,
}

/// The Qwen3-VL vision tower. Like [`crate::vision::VisionTower`] it holds handles on the
/// weights of the [`Params`] it was built from.
pub struct Qwen3VlVision {
    cfg: Qwen3VlVisionConfig,
    /// The Conv3d kernel as stored `(hidden, channels, temporal, patch, patch)` (kept a variable
    /// so it trains; reshaped per forward) and its bias.
    patch_w: Tensor,
    patch_b: Tensor,
    pos_embed: Tensor,
    blocks: Vec<Block>,
    merger: Merger,
    deepstack: Vec<Merger>,
}

impl Qwen3VlVision {
    pub fn new(
        cfg: &Qwen3VlVisionConfig,
        params: &Params,
        lora: Option<&LoraRuntime>,
    ) -> Result<Qwen3VlVision> {
        cfg.validate().map_err(ModelError::Invalid)?;
        let get = params.shaped_by(Self::param_specs(cfg));
        let proj = |module: &str| -> Result<Proj> {
            Ok(Proj {
                w: get(&format!("{module}.weight"))?,
                b: Some(get(&format!("{module}.bias"))?),
                lora: match lora {
                    Some(rt) => rt.adapter(params, module)?,
                    None => None,
                },
            })
        };
        let norm = |module: &str| -> Result<(Tensor, Tensor)> {
            Ok((
                get(&format!("{module}.weight"))?,
                get(&format!("{module}.bias"))?,
            ))
        };
        let mut blocks = Vec::with_capacity(cfg.depth);
        for i in 0..cfg.depth {
            let p = format!("{PREFIX}.blocks.{i}");
            blocks.push(Block {
                norm1: norm(&format!("{p}.norm1"))?,
                norm2: norm(&format!("{p}.norm2"))?,
                qkv: proj(&format!("{p}.attn.qkv"))?,
                proj: proj(&format!("{p}.attn.proj"))?,
                fc1: proj(&format!("{p}.mlp.linear_fc1"))?,
                fc2: proj(&format!("{p}.mlp.linear_fc2"))?,
            });
        }
        let merger = |p: &str, postshuffle: bool| -> Result<Merger> {
            Ok(Merger {
                norm: norm(&format!("{p}.norm"))?,
                fc1: proj(&format!("{p}.linear_fc1"))?,
                fc2: proj(&format!("{p}.linear_fc2"))?,
                postshuffle,
            })
        };
        Ok(Qwen3VlVision {
            cfg: cfg.clone(),
            patch_w: get(&format!("{PREFIX}.patch_embed.proj.weight"))?,
            patch_b: get(&format!("{PREFIX}.patch_embed.proj.bias"))?,
            pos_embed: get(&format!("{PREFIX}.pos_embed.weight"))?,
            blocks,
            merger: merger(&format!("{PREFIX}.merger"), false)?,
            deepstack: (0..cfg.deepstack_visual_indexes.len())
                .map(|k| merger(&format!("{PREFIX}.deepstack_merger_list.{k}"), true))
                .collect::<Result<_>>()?,
        })
    }

    /// Every tower weight (canonical names, `visual.*`), its shape and initialiser.
    pub fn param_specs(cfg: &Qwen3VlVisionConfig) -> Vec<(String, Vec<usize>, Init)> {
        let e = cfg.hidden_size;
        let i = cfg.intermediate_size;
        let m = e * cfg.spatial_merge_size * cfg.spatial_merge_size;
        let w = Init::Normal(0.02);
        let one = Init::Const(1.0);
        let zero = Init::Const(0.0);
        let mut out = vec![
            (
                format!("{PREFIX}.patch_embed.proj.weight"),
                vec![
                    e,
                    cfg.in_channels,
                    cfg.temporal_patch_size,
                    cfg.patch_size,
                    cfg.patch_size,
                ],
                w,
            ),
            (format!("{PREFIX}.patch_embed.proj.bias"), vec![e], zero),
            (
                format!("{PREFIX}.pos_embed.weight"),
                vec![cfg.num_position_embeddings, e],
                w,
            ),
        ];
        let lin = |out: &mut Vec<(String, Vec<usize>, Init)>, name: String, o: usize, i: usize| {
            out.push((format!("{name}.weight"), vec![o, i], w));
            out.push((format!("{name}.bias"), vec![o], zero));
        };
        for b in 0..cfg.depth {
            let p = format!("{PREFIX}.blocks.{b}");
            for n in ["norm1", "norm2"] {
                out.push((format!("{p}.{n}.weight"), vec![e], one));
                out.push((format!("{p}.{n}.bias"), vec![e], zero));
            }
            lin(&mut out, format!("{p}.attn.qkv"), 3 * e, e);
            lin(&mut out, format!("{p}.attn.proj"), e, e);
            lin(&mut out, format!("{p}.mlp.linear_fc1"), i, e);
            lin(&mut out, format!("{p}.mlp.linear_fc2"), e, i);
        }
        let mut merger = |p: String, norm_dim: usize| {
            out.push((format!("{p}.norm.weight"), vec![norm_dim], one));
            out.push((format!("{p}.norm.bias"), vec![norm_dim], zero));
            lin(&mut out, format!("{p}.linear_fc1"), m, m);
            lin(&mut out, format!("{p}.linear_fc2"), cfg.out_hidden_size, m);
        };
        merger(format!("{PREFIX}.merger"), e);
        for k in 0..cfg.deepstack_visual_indexes.len() {
            merger(format!("{PREFIX}.deepstack_merger_list.{k}"), m);
        }
        out
    }

    pub fn config(&self) -> &Qwen3VlVisionConfig {
        &self.cfg
    }

    fn device(&self) -> &Device {
        self.pos_embed.device()
    }

    /// The learned position grid resampled to every patch (see the module docs): indices
    /// `(patches * 4)` into the table and weights `(patches, 4)`, as transformers'
    /// `get_vision_interpolation_indices_and_weights(mode="bilinear", align_corners=True)`.
    fn interpolation(&self, grids: &[[usize; 3]]) -> (Vec<u32>, Vec<f32>) {
        let side = self.cfg.grid_side();
        let m = self.cfg.spatial_merge_size;
        let taps = |index: usize, size: usize| -> [(usize, f32); 2] {
            // Computed in f32 as torch does: src = index * (side - 1) / max(size - 1, 1).
            let src = index as f32 * (side as f32 - 1.0) / ((size.max(2) - 1) as f32);
            let floor = src.floor();
            std::array::from_fn(|o| {
                let tap = (floor as i64 + o as i64).clamp(0, side as i64 - 1) as usize;
                let distance = (src - floor - o as f32).abs();
                (tap, (1.0 - distance).max(0.0))
            })
        };
        let mut idx = Vec::new();
        let mut wts = Vec::new();
        for g in grids {
            let (h, w) = (g[1], g[2]);
            for (row, col) in patch_positions(&[*g], m) {
                let th = taps(row, h);
                let tw = taps(col, w);
                for (hi, hw) in th {
                    for (wi, ww) in tw {
                        idx.push((hi * side + wi) as u32);
                        wts.push(hw * ww);
                    }
                }
            }
        }
        (idx, wts)
    }

    /// `pixel_values` `(patches, channels * temporal * patch * patch)` as the processor lays
    /// them out and each image's `[t, h, w]` grid: the image tokens and DeepStack features.
    pub fn forward(
        &self,
        pixel_values: &Tensor,
        grids: &[[usize; 3]],
        grad: bool,
    ) -> Result<Qwen3VlVisionOutput> {
        let c = &self.cfg;
        let row = c.in_channels * c.temporal_patch_size * c.patch_size * c.patch_size;
        check_patches(pixel_values, grids, c.spatial_merge_size, row)?;
        let m = c.spatial_merge_size;
        let e = c.hidden_size;
        let heads = c.num_heads;
        let hd = e / heads;
        let dtype = self.pos_embed.dtype();
        let dev = self.device().clone();
        let wt = |t: &Tensor| if grad { t.clone() } else { t.detach() };

        let x = pixel_values.to_device(&dev)?.to_dtype(dtype)?;
        let n = x.dim(0)?;
        let kernel = wt(&self.patch_w).reshape((e, ()))?;
        let x = x.matmul(&kernel.t()?)?.broadcast_add(&wt(&self.patch_b))?;
        let (idx, wts) = self.interpolation(grids);
        let table = wt(&self.pos_embed)
            .index_select(&Tensor::from_vec(idx, 4 * n, &dev)?, 0)?
            .reshape((n, 4, e))?;
        let weights = Tensor::from_vec(wts, (n, 4, 1), &dev)?.to_dtype(dtype)?;
        let mut x = (x + table.broadcast_mul(&weights)?.sum(1)?)?;

        let rot_dtype = if dtype == DType::F64 {
            DType::F64
        } else {
            DType::F32
        };
        let (cos, sin) = rotary_2d(
            &patch_positions(grids, m),
            hd,
            c.rope_theta,
            rot_dtype,
            &dev,
        )?;
        let (cos, sin) = (cos.unsqueeze(1)?, sin.unsqueeze(1)?);
        let mut segs = vec![0usize];
        for g in grids {
            for _ in 0..g[0] {
                let last = *segs.last().expect("non-empty");
                segs.push(last + g[1] * g[2]);
            }
        }

        let mut deepstack = Vec::with_capacity(self.deepstack.len());
        for (i, blk) in self.blocks.iter().enumerate() {
            let h = ops::layer_norm(&x, &wt(&blk.norm1.0), &wt(&blk.norm1.1), 1e-6, grad)?;
            let qkv = blk.qkv.forward(&h, grad)?.reshape((n, 3, heads, hd))?;
            let rope = |t: Tensor| -> Result<Tensor> {
                let t32 = match t.dtype() {
                    DType::BF16 | DType::F16 => t.to_dtype(DType::F32)?,
                    _ => t,
                };
                Ok(ops::apply_rotary(&t32, &cos, &sin)?.to_dtype(dtype)?)
            };
            let q = rope(qkv.narrow(1, 0, 1)?.squeeze(1)?)?;
            let k = rope(qkv.narrow(1, 1, 1)?.squeeze(1)?)?;
            let v = qkv.narrow(1, 2, 1)?.squeeze(1)?;
            let o = attend_segments(&q, &k, &v, &segs, heads, grad)?;
            x = (x + blk.proj.forward(&o, grad)?)?;
            let h = ops::layer_norm(&x, &wt(&blk.norm2.0), &wt(&blk.norm2.1), 1e-6, grad)?;
            let h = blk.fc1.forward(&h, grad)?;
            let h = if c.tanh_gelu {
                h.gelu()?
            } else {
                h.gelu_erf()?
            };
            x = (x + blk.fc2.forward(&h, grad)?)?;
            if let Some(k) = c.deepstack_visual_indexes.iter().position(|&d| d == i) {
                deepstack.push(self.merge(&self.deepstack[k], &x, grad)?);
            }
        }
        Ok(Qwen3VlVisionOutput {
            embeds: self.merge(&self.merger, &x, grad)?,
            deepstack,
        })
    }

    fn merge(&self, mg: &Merger, x: &Tensor, grad: bool) -> Result<Tensor> {
        let unit = self.cfg.spatial_merge_size * self.cfg.spatial_merge_size;
        let (n, e) = x.dims2()?;
        let wt = |t: &Tensor| if grad { t.clone() } else { t.detach() };
        let (w, b) = (wt(&mg.norm.0), wt(&mg.norm.1));
        let h = if mg.postshuffle {
            ops::layer_norm(&x.reshape((n / unit, e * unit))?, &w, &b, 1e-6, grad)?
        } else {
            ops::layer_norm(x, &w, &b, 1e-6, grad)?.reshape((n / unit, e * unit))?
        };
        let h = mg.fc1.forward(&h, grad)?.gelu_erf()?;
        mg.fc2.forward(&h, grad)
    }
}
