//! The Qwen2.5-VL vision tower, as transformers' `Qwen2_5_VisionTransformerPretrainedModel`.
//!
//! 1. Patch embedding: a Conv3d with kernel = stride = `(temporal, patch, patch)` and no bias,
//!    which on the processor's flattened patches is one matmul with the reshaped kernel.
//! 2. 2-D rotary: the head dimension's first half rotates with the patch's row, the second half
//!    with its column (frequencies `1 / 10000^(2i / (head_dim/2))`).
//! 3. Window order: the merge units (`merge x merge` patches) are regrouped into windows of
//!    `window_size / merge / patch` units per side (partial windows at the right / bottom edge);
//!    patches and their rotary angles are permuted into that order.
//! 4. Blocks: pre-norm (RMSNorm, eps 1e-6) attention + SwiGLU MLP with biases. The blocks in
//!    `fullatt_block_indexes` attend within each image (each frame), the others within each
//!    window.
//! 5. Merger: RMSNorm, concatenate each merge unit's patches, Linear-GELU(erf)-Linear; then the
//!    window permutation is undone so the tokens come out image by image, merge units row-major.
//!
//! Every op has a backward when `grad` is true, so the tower can be trained.

use candle_core::{DType, Device, Tensor, D};

use crate::config::VisionConfig;
use crate::error::{ModelError, Result};
use crate::lora::{add_delta, Adapter, LoraRuntime};
use crate::ops;
use crate::params::{Init, Params};

const PREFIX: &str = "visual";

struct Block {
    norm1: Tensor,
    norm2: Tensor,
    qkv_w: Tensor,
    qkv_b: Tensor,
    proj_w: Tensor,
    proj_b: Tensor,
    gate_w: Tensor,
    gate_b: Tensor,
    up_w: Tensor,
    up_b: Tensor,
    down_w: Tensor,
    down_b: Tensor,
    /// LoRA adapters of `attn.qkv`, `attn.proj`, `mlp.gate_proj`, `mlp.up_proj`,
    /// `mlp.down_proj` (see [`crate::lora`]).
    lora: [Option<Adapter>; 5],
}

/// The vision tower. It holds handles on the weights of the [`Params`] it was built from (same
/// storage), so optimiser updates are seen; a weight frozen after the tower was built is still
/// differentiated by it (build the tower after freezing, or rebuild it).
pub struct VisionTower {
    cfg: VisionConfig,
    patch_w: Tensor,
    blocks: Vec<Block>,
    ln_q: Tensor,
    mlp0_w: Tensor,
    mlp0_b: Tensor,
    mlp2_w: Tensor,
    mlp2_b: Tensor,
}

/// Intermediate results of [`VisionTower::forward_traced`], every per-patch tensor in the
/// processor's patch order.
pub struct VisionTrace {
    /// `(num_patches, hidden)`: the patch embedding.
    pub patch_embeds: Tensor,
    /// `(num_patches, hidden)` per block: its output.
    pub blocks: Vec<Tensor>,
    /// `(num_patches / merge², out_hidden)`: the tower's output.
    pub embeds: Tensor,
}

/// Where the window attention's reordering puts things, for a list of grids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowIndex {
    /// For each merge unit in window order, its index in processor order.
    pub window_index: Vec<usize>,
    /// Cumulative window boundaries in patches (first 0, consecutive duplicates removed).
    pub cu_window_seqlens: Vec<usize>,
}

/// transformers' `get_window_index`: `window_index` and `cu_window_seqlens` for these grids.
pub fn window_index(
    grids: &[[usize; 3]],
    merge: usize,
    window_size: usize,
    patch_size: usize,
) -> WindowIndex {
    let ws = (window_size / merge / patch_size).max(1);
    let unit = merge * merge;
    let mut index = Vec::new();
    let mut cu = vec![0usize];
    let mut offset = 0usize;
    for g in grids {
        let (gt, lh, lw) = (g[0], g[1] / merge, g[2] / merge);
        // transformers pads by a whole window when the side is already a multiple of it; the
        // extra windows are empty and vanish in the dedup below.
        let nwh = (lh + ws - lh % ws) / ws;
        let nww = (lw + ws - lw % ws) / ws;
        for t in 0..gt {
            for wh in 0..nwh {
                for ww in 0..nww {
                    let mut count = 0usize;
                    for ih in 0..ws {
                        for iw in 0..ws {
                            let (r, c) = (wh * ws + ih, ww * ws + iw);
                            if r < lh && c < lw {
                                index.push(offset + t * lh * lw + r * lw + c);
                                count += 1;
                            }
                        }
                    }
                    let last = *cu.last().expect("non-empty");
                    cu.push(last + count * unit);
                }
            }
        }
        offset += gt * lh * lw;
    }
    cu.dedup();
    WindowIndex {
        window_index: index,
        cu_window_seqlens: cu,
    }
}

/// The (row, column) of every patch, in the processor's order (merge unit by merge unit).
pub fn patch_positions(grids: &[[usize; 3]], merge: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for g in grids {
        let (gt, h, w) = (g[0], g[1], g[2]);
        for _ in 0..gt {
            for bh in 0..h / merge {
                for bw in 0..w / merge {
                    for mh in 0..merge {
                        for mw in 0..merge {
                            out.push((bh * merge + mh, bw * merge + mw));
                        }
                    }
                }
            }
        }
    }
    out
}

/// `x` in f32 when it is a 16-bit float (transformers computes rotary and softmax in f32).
fn upcast(x: &Tensor) -> Result<Tensor> {
    Ok(match x.dtype() {
        DType::BF16 | DType::F16 => x.to_dtype(DType::F32)?,
        _ => x.clone(),
    })
}

/// RMSNorm; f64 inputs stay in f64 (the shared helper computes in f32).
fn rms_norm(x: &Tensor, w: &Tensor, eps: f64, grad: bool) -> Result<Tensor> {
    if x.dtype() == DType::F64 {
        let var = x.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = x.broadcast_div(&(var + eps)?.sqrt()?)?;
        return Ok(normed.broadcast_mul(w)?);
    }
    Ok(ops::rms_norm(x, w, eps, grad)?)
}

impl VisionTower {
    /// Reads the `visual.*` weights, checking every shape against `cfg`.
    pub fn new(cfg: &VisionConfig, params: &Params) -> Result<VisionTower> {
        VisionTower::with_lora(cfg, params, None)
    }

    /// A tower whose block projections pick up the LoRA adapters `params` holds for them.
    pub fn with_lora(
        cfg: &VisionConfig,
        params: &Params,
        lora: Option<&LoraRuntime>,
    ) -> Result<VisionTower> {
        if cfg.num_heads == 0 || cfg.hidden_size % cfg.num_heads != 0 {
            return Err(ModelError::invalid(format!(
                "vision hidden_size {} is not a multiple of num_heads {}",
                cfg.hidden_size, cfg.num_heads
            )));
        }
        if (cfg.hidden_size / cfg.num_heads) % 4 != 0 {
            return Err(ModelError::invalid(format!(
                "vision head_dim {} must be a multiple of 4 for the 2-D rotary",
                cfg.hidden_size / cfg.num_heads
            )));
        }
        let get = params.shaped_by(Self::param_specs(cfg));
        let patch_w = get(&format!("{PREFIX}.patch_embed.proj.weight"))?;
        let mut blocks = Vec::with_capacity(cfg.depth);
        for i in 0..cfg.depth {
            let p = format!("{PREFIX}.blocks.{i}");
            let adapter = |m: &str| -> Result<Option<Adapter>> {
                match lora {
                    Some(rt) => rt.adapter(params, &format!("{p}.{m}")),
                    None => Ok(None),
                }
            };
            blocks.push(Block {
                lora: [
                    adapter("attn.qkv")?,
                    adapter("attn.proj")?,
                    adapter("mlp.gate_proj")?,
                    adapter("mlp.up_proj")?,
                    adapter("mlp.down_proj")?,
                ],
                norm1: get(&format!("{p}.norm1.weight"))?,
                norm2: get(&format!("{p}.norm2.weight"))?,
                qkv_w: get(&format!("{p}.attn.qkv.weight"))?,
                qkv_b: get(&format!("{p}.attn.qkv.bias"))?,
                proj_w: get(&format!("{p}.attn.proj.weight"))?,
                proj_b: get(&format!("{p}.attn.proj.bias"))?,
                gate_w: get(&format!("{p}.mlp.gate_proj.weight"))?,
                gate_b: get(&format!("{p}.mlp.gate_proj.bias"))?,
                up_w: get(&format!("{p}.mlp.up_proj.weight"))?,
                up_b: get(&format!("{p}.mlp.up_proj.bias"))?,
                down_w: get(&format!("{p}.mlp.down_proj.weight"))?,
                down_b: get(&format!("{p}.mlp.down_proj.bias"))?,
            });
        }
        Ok(VisionTower {
            cfg: cfg.clone(),
            patch_w,
            blocks,
            ln_q: get(&format!("{PREFIX}.merger.ln_q.weight"))?,
            mlp0_w: get(&format!("{PREFIX}.merger.mlp.0.weight"))?,
            mlp0_b: get(&format!("{PREFIX}.merger.mlp.0.bias"))?,
            mlp2_w: get(&format!("{PREFIX}.merger.mlp.2.weight"))?,
            mlp2_b: get(&format!("{PREFIX}.merger.mlp.2.bias"))?,
        })
    }

    /// Every vision weight (Hugging Face names), its shape and how a fresh one is initialised:
    /// `Normal(0.02)` for matrices and the patch kernel, `Const(1.0)` for norms, `Const(0.0)` for
    /// biases. The order is the order [`VisionTower::new`] reads them.
    pub fn param_specs(cfg: &VisionConfig) -> Vec<(String, Vec<usize>, Init)> {
        let e = cfg.hidden_size;
        let i = cfg.intermediate_size;
        let m = e * cfg.spatial_merge_size * cfg.spatial_merge_size;
        let w = Init::Normal(0.02);
        let one = Init::Const(1.0);
        let zero = Init::Const(0.0);
        let mut out = vec![(
            format!("{PREFIX}.patch_embed.proj.weight"),
            vec![
                e,
                cfg.in_channels,
                cfg.temporal_patch_size,
                cfg.patch_size,
                cfg.patch_size,
            ],
            w,
        )];
        for b in 0..cfg.depth {
            let p = format!("{PREFIX}.blocks.{b}");
            out.extend([
                (format!("{p}.norm1.weight"), vec![e], one),
                (format!("{p}.norm2.weight"), vec![e], one),
                (format!("{p}.attn.qkv.weight"), vec![3 * e, e], w),
                (format!("{p}.attn.qkv.bias"), vec![3 * e], zero),
                (format!("{p}.attn.proj.weight"), vec![e, e], w),
                (format!("{p}.attn.proj.bias"), vec![e], zero),
                (format!("{p}.mlp.gate_proj.weight"), vec![i, e], w),
                (format!("{p}.mlp.gate_proj.bias"), vec![i], zero),
                (format!("{p}.mlp.up_proj.weight"), vec![i, e], w),
                (format!("{p}.mlp.up_proj.bias"), vec![i], zero),
                (format!("{p}.mlp.down_proj.weight"), vec![e, i], w),
                (format!("{p}.mlp.down_proj.bias"), vec![e], zero),
            ]);
        }
        out.extend([
            (format!("{PREFIX}.merger.ln_q.weight"), vec![e], one),
            (format!("{PREFIX}.merger.mlp.0.weight"), vec![m, m], w),
            (format!("{PREFIX}.merger.mlp.0.bias"), vec![m], zero),
            (
                format!("{PREFIX}.merger.mlp.2.weight"),
                vec![cfg.out_hidden_size, m],
                w,
            ),
            (
                format!("{PREFIX}.merger.mlp.2.bias"),
                vec![cfg.out_hidden_size],
                zero,
            ),
        ]);
        out
    }

    pub fn config(&self) -> &VisionConfig {
        &self.cfg
    }

    pub fn dtype(&self) -> DType {
        self.patch_w.dtype()
    }

    pub fn device(&self) -> &Device {
        self.patch_w.device()
    }

    /// How many tokens (rows of the output) these grids give: `sum t*h*w / merge²`.
    pub fn num_tokens(&self, grids: &[[usize; 3]]) -> usize {
        let m2 = self.cfg.spatial_merge_size * self.cfg.spatial_merge_size;
        grids.iter().map(|g| g[0] * g[1] * g[2] / m2).sum()
    }

    /// `pixel_values` `(num_patches, channels * temporal * patch * patch)` as the processor lays
    /// them out, `grids` the `[t, h, w]` of each image: `(num_patches / merge², out_hidden)`,
    /// image by image, each image's merge units row-major (transformers' order). The output is
    /// differentiable in every weight when `grad` is true; otherwise no graph is recorded.
    pub fn forward(
        &self,
        pixel_values: &Tensor,
        grids: &[[usize; 3]],
        grad: bool,
    ) -> Result<Tensor> {
        Ok(self.run(pixel_values, grids, grad, false)?.embeds)
    }

    /// [`VisionTower::forward`] that also returns the patch embedding and each block's output
    /// (in processor order), for comparing with a reference.
    pub fn forward_traced(
        &self,
        pixel_values: &Tensor,
        grids: &[[usize; 3]],
        grad: bool,
    ) -> Result<VisionTrace> {
        self.run(pixel_values, grids, grad, true)
    }

    fn check_input(&self, pixel_values: &Tensor, grids: &[[usize; 3]]) -> Result<()> {
        let c = &self.cfg;
        let row = c.in_channels * c.temporal_patch_size * c.patch_size * c.patch_size;
        check_patches(pixel_values, grids, c.spatial_merge_size, row)
    }

    /// cos / sin `(num_patches, head_dim)` for patches at `pos` (already in window order).
    fn rotary(&self, pos: &[(usize, usize)], dtype: DType) -> Result<(Tensor, Tensor)> {
        let head_dim = self.cfg.hidden_size / self.cfg.num_heads;
        rotary_2d(pos, head_dim, 10_000.0, dtype, self.device())
    }

    fn run(
        &self,
        pixel_values: &Tensor,
        grids: &[[usize; 3]],
        grad: bool,
        trace: bool,
    ) -> Result<VisionTrace> {
        self.check_input(pixel_values, grids)?;
        let c = &self.cfg;
        let m = c.spatial_merge_size;
        let unit = m * m;
        let e = c.hidden_size;
        let dtype = self.dtype();
        let dev = self.device().clone();
        // Weights: tracked for gradients, or detached so that no graph is kept.
        let w = |t: &Tensor| if grad { t.clone() } else { t.detach() };

        // 1. Patch embedding.
        let x = pixel_values.to_device(&dev)?.to_dtype(dtype)?;
        let n = x.dim(0)?;
        let kernel = w(&self.patch_w).reshape((e, ()))?;
        let x = x.matmul(&kernel.t()?)?;
        let patch_embeds = if trace { Some(x.clone()) } else { None };

        // 2-3. Window order and rotary angles.
        let wi = window_index(grids, m, c.window_size, c.patch_size);
        let perm: Vec<u32> = wi
            .window_index
            .iter()
            .flat_map(|&u| (0..unit).map(move |k| (u * unit + k) as u32))
            .collect();
        let inv_perm = {
            let mut v = vec![0u32; perm.len()];
            for (i, &p) in perm.iter().enumerate() {
                v[p as usize] = i as u32;
            }
            v
        };
        let positions = patch_positions(grids, m);
        let pos_win: Vec<(usize, usize)> = perm.iter().map(|&p| positions[p as usize]).collect();
        let rot_dtype = if dtype == DType::F64 {
            DType::F64
        } else {
            DType::F32
        };
        let (cos, sin) = self.rotary(&pos_win, rot_dtype)?;
        let perm_t = Tensor::from_vec(perm, n, &dev)?;
        let inv_perm_t = Tensor::from_vec(inv_perm, n, &dev)?;
        let mut x = x.index_select(&perm_t, 0)?;

        let mut cu_full = vec![0usize];
        for g in grids {
            for _ in 0..g[0] {
                let last = *cu_full.last().expect("non-empty");
                cu_full.push(last + g[1] * g[2]);
            }
        }

        // 4. Blocks.
        let mut block_outs = Vec::new();
        for (i, blk) in self.blocks.iter().enumerate() {
            let segs = if c.fullatt_block_indexes.contains(&i) {
                &cu_full
            } else {
                &wi.cu_window_seqlens
            };
            let h = rms_norm(&x, &w(&blk.norm1), c.rms_norm_eps, grad)?;
            let a = self.attention(&h, blk, segs, &cos, &sin, grad, &w)?;
            x = (x + a)?;
            let h = rms_norm(&x, &w(&blk.norm2), c.rms_norm_eps, grad)?;
            let f = if blk.lora[2..].iter().all(Option::is_none) {
                ops::swiglu_mlp(
                    &h,
                    (&w(&blk.gate_w), Some(&w(&blk.gate_b))),
                    (&w(&blk.up_w), Some(&w(&blk.up_b))),
                    (&w(&blk.down_w), Some(&w(&blk.down_b))),
                )?
            } else {
                let proj = |x: &Tensor, wt: &Tensor, b: &Tensor, k: usize| -> Result<Tensor> {
                    let y = ops::linear(x, &w(wt), Some(&w(b)))?;
                    match &blk.lora[k] {
                        Some(ad) => add_delta(y, ad.delta(x, grad)?),
                        None => Ok(y),
                    }
                };
                let g = proj(&h, &blk.gate_w, &blk.gate_b, 2)?.silu()?;
                let u = proj(&h, &blk.up_w, &blk.up_b, 3)?;
                proj(&(g * u)?, &blk.down_w, &blk.down_b, 4)?
            };
            x = (x + f)?;
            if trace {
                block_outs.push(x.index_select(&inv_perm_t, 0)?);
            }
        }

        // 5. Merger, then back to processor order (merge units).
        let h = rms_norm(&x, &w(&self.ln_q), 1e-6, grad)?;
        let h = h.reshape((n / unit, e * unit))?;
        let h = ops::linear(&h, &w(&self.mlp0_w), Some(&w(&self.mlp0_b)))?.gelu_erf()?;
        let h = ops::linear(&h, &w(&self.mlp2_w), Some(&w(&self.mlp2_b)))?;
        let mut inv_units = vec![0u32; wi.window_index.len()];
        for (i, &u) in wi.window_index.iter().enumerate() {
            inv_units[u] = i as u32;
        }
        let inv_units = Tensor::from_vec(inv_units, n / unit, &dev)?;
        let embeds = h.index_select(&inv_units, 0)?;
        Ok(VisionTrace {
            patch_embeds: match patch_embeds {
                Some(p) => p,
                None => Tensor::zeros(0, dtype, &dev)?,
            },
            blocks: block_outs,
            embeds,
        })
    }

    /// Attention within each segment `[segs[i], segs[i+1])` of the (window-ordered) patches.
    #[allow(clippy::too_many_arguments)]
    fn attention(
        &self,
        x: &Tensor,
        blk: &Block,
        segs: &[usize],
        cos: &Tensor,
        sin: &Tensor,
        grad: bool,
        w: &dyn Fn(&Tensor) -> Tensor,
    ) -> Result<Tensor> {
        let c = &self.cfg;
        let (n, e) = x.dims2()?;
        let heads = c.num_heads;
        let hd = e / heads;
        let dtype = x.dtype();
        let qkv = ops::linear(x, &w(&blk.qkv_w), Some(&w(&blk.qkv_b)))?;
        let qkv = match &blk.lora[0] {
            Some(ad) => add_delta(qkv, ad.delta(x, grad)?)?,
            None => qkv,
        }
        .reshape((n, 3, heads, hd))?;
        let cos = cos.unsqueeze(1)?;
        let sin = sin.unsqueeze(1)?;
        let rope = |t: Tensor| -> Result<Tensor> {
            let t32 = upcast(&t)?;
            Ok(ops::apply_rotary(&t32, &cos, &sin)?.to_dtype(dtype)?)
        };
        let q = rope(qkv.narrow(1, 0, 1)?.squeeze(1)?)?;
        let k = rope(qkv.narrow(1, 1, 1)?.squeeze(1)?)?;
        let v = qkv.narrow(1, 2, 1)?.squeeze(1)?;
        let o = attend_segments(&q, &k, &v, segs, heads, grad)?;
        let y = ops::linear(&o, &w(&blk.proj_w), Some(&w(&blk.proj_b)))?;
        match &blk.lora[1] {
            Some(ad) => add_delta(y, ad.delta(&o, grad)?),
            None => Ok(y),
        }
    }
}

/// Checks a vision forward's input (Qwen2.5-VL and Qwen3-VL): non-empty grids that are multiples
/// of the merge size `m`, and `pixel_values` of `(sum t*h*w, row)`.
pub(crate) fn check_patches(
    pixel_values: &Tensor,
    grids: &[[usize; 3]],
    m: usize,
    row: usize,
) -> Result<()> {
    if grids.is_empty() {
        return Err(ModelError::invalid("vision forward: no image grid given"));
    }
    for g in grids {
        if g.contains(&0) || g[1] % m != 0 || g[2] % m != 0 {
            return Err(ModelError::invalid(format!(
                "vision forward: grid {g:?} is not a non-empty multiple of the merge size {m}"
            )));
        }
    }
    let patches: usize = grids.iter().map(|g| g[0] * g[1] * g[2]).sum();
    if pixel_values.dims() != [patches, row] {
        return Err(ModelError::invalid(format!(
            "vision forward: pixel_values has shape {:?}, the grids {grids:?} need [{patches}, {row}]",
            pixel_values.dims()
        )));
    }
    Ok(())
}

/// The 2-D vision rotary of Qwen2.5-VL and Qwen3-VL: cos / sin `(patches, head_dim)` where each
/// half of the head dimension holds the row angles then the column angles, with frequencies
/// `1 / theta^(2i / (head_dim / 2))`. In f64 for f64 towers (gradient checks), else in f32 as
/// torch computes them.
pub(crate) fn rotary_2d(
    pos: &[(usize, usize)],
    head_dim: usize,
    theta: f64,
    dtype: DType,
    dev: &Device,
) -> Result<(Tensor, Tensor)> {
    let rot = head_dim / 2;
    let n_freq = rot / 2;
    if dtype == DType::F64 {
        let inv: Vec<f64> = (0..n_freq)
            .map(|i| 1.0 / theta.powf((2 * i) as f64 / rot as f64))
            .collect();
        return rotary_2d_table(pos, &inv, head_dim, dev, |p, f| {
            let a = p as f64 * f;
            (a.cos(), a.sin())
        });
    }
    // f32, as torch: inv_freq = 1 / theta^(arange(0, rot, 2) / rot) in f32, angle = pos * f.
    let theta = theta as f32;
    let inv: Vec<f32> = (0..n_freq)
        .map(|i| 1.0 / theta.powf((2 * i) as f32 / rot as f32))
        .collect();
    rotary_2d_table(pos, &inv, head_dim, dev, |p, f| {
        let a = p as f32 * f;
        (a.cos(), a.sin())
    })
}

/// The cos / sin rows of [`rotary_2d`] in the precision of `inv` (the inverse frequencies):
/// per patch, twice over, the row angles then the column angles.
fn rotary_2d_table<T: candle_core::WithDType>(
    pos: &[(usize, usize)],
    inv: &[T],
    head_dim: usize,
    dev: &Device,
    cos_sin: impl Fn(usize, T) -> (T, T),
) -> Result<(Tensor, Tensor)> {
    let n = pos.len();
    let mut cos = Vec::with_capacity(n * head_dim);
    let mut sin = Vec::with_capacity(n * head_dim);
    for &(h, w) in pos {
        for _ in 0..2 {
            for p in [h, w] {
                for &f in inv {
                    let (c, s) = cos_sin(p, f);
                    cos.push(c);
                    sin.push(s);
                }
            }
        }
    }
    Ok((
        Tensor::from_vec(cos, (n, head_dim), dev)?,
        Tensor::from_vec(sin, (n, head_dim), dev)?,
    ))
}

/// Attention of `q`, `k`, `v` `(patches, heads, head_dim)` within each segment
/// `[segs[i], segs[i+1])`; returns `(patches, heads * head_dim)`.
pub(crate) fn attend_segments(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    segs: &[usize],
    heads: usize,
    grad: bool,
) -> Result<Tensor> {
    let hd = q.dim(2)?;
    let e = heads * hd;
    let dtype = q.dtype();
    let scale = (hd as f64).powf(-0.5);
    // Consecutive segments of equal length are batched together.
    let mut outs = Vec::new();
    let mut i = 0usize;
    while i + 1 < segs.len() {
        let start = segs[i];
        let len = segs[i + 1] - segs[i];
        let mut j = i + 1;
        while j + 1 < segs.len() && segs[j + 1] - segs[j] == len {
            j += 1;
        }
        let count = j - i;
        let take = |t: &Tensor| -> Result<Tensor> {
            Ok(t.narrow(0, start, count * len)?
                .reshape((count, len, heads, hd))?
                .transpose(1, 2)?
                .contiguous()?)
        };
        let (qs, ks, vs) = (take(q)?, take(k)?, take(v)?);
        let att = (qs.matmul(&ks.transpose(2, 3)?.contiguous()?)? * scale)?;
        let att = ops::softmax_last(&upcast(&att)?, grad)?.to_dtype(dtype)?;
        let o = att.matmul(&vs)?; // (count, heads, len, hd)
        outs.push(o.transpose(1, 2)?.reshape((count * len, e))?);
        i = j;
    }
    let o = if outs.len() == 1 {
        outs.pop().expect("one")
    } else {
        Tensor::cat(&outs, 0)?
    };
    Ok(o)
}
