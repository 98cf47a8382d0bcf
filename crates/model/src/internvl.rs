//! InternVL's vision side, as transformers' `InternVLForConditionalGeneration` computes it
//! (InternVL3 / InternVL2.5 in the Hugging Face layout; the language model is the Qwen2
//! [`crate::decoder::Decoder`] with 1-D rotary).
//!
//! 1. InternViT embeddings: a Conv2d patch embedding with kernel = stride = patch (one matmul on
//!    the unfolded tile), a learned `[CLS]` token in front, absolute position embeddings added
//!    (bicubically interpolated, as torch's `interpolate(mode="bicubic")`, when the tile is not
//!    the config's `image_size`).
//! 2. Encoder layers: `x + lambda_1 * attn(norm(x))`, then `x + lambda_2 * mlp(norm(x))`, with
//!    LayerNorm or RMSNorm (`norm_type`), q/k/v bias when `attention_bias`, an RMSNorm over the
//!    whole q and k (before the head split) when `use_qk_norm`, full attention within each tile.
//! 3. Feature selection: `vision_feature_layer` -1 takes the last output (after the final
//!    LayerNorm when `use_mean_pooling` is false), any other index the hidden state of that
//!    index (0 = the embeddings); strategy `default` drops `[CLS]`.
//! 4. Pixel shuffle with `downsample_ratio` 1/k: each k x k block of patch features becomes one
//!    feature of k² times the width, in transformers' (transposed) order.
//! 5. Projector: LayerNorm (eps 1e-5), Linear, activation, Linear, to the text width.
//!
//! The features come out tile by tile, `(tile/patch * ratio)²` per tile; [`crate::model::Model`]
//! puts them at the `<IMG_CONTEXT>` positions. Every op has a backward when `grad` is true.
//!
//! Weights are named as transformers writes them (`vision_tower.*`, `multi_modal_projector.*`;
//! the newer `model.vision_tower.*` spelling is mapped to these on load).

use std::path::Path;

use candle_core::{DType, Device, Tensor};

use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
pub use crate::internvl_config::{
    Act, InternVitConfig, InternVlConfig, NormType, DEFAULT_IMAGE_TOKEN_ID, IMG_CONTEXT, IMG_END,
    IMG_START,
};
use crate::ops;
use crate::params::{Init, Params};

impl InternVlConfig {
    /// The InternVL settings of a model config (which keeps its JSON in `raw`).
    pub fn from_model_config(cfg: &ModelConfig) -> Result<InternVlConfig> {
        let raw = cfg.raw.as_ref().ok_or_else(|| {
            ModelError::invalid("an InternVL config needs its config.json (vision_config)")
        })?;
        InternVlConfig::from_json(raw, Path::new("config.json"))
    }
}

const VT: &str = "vision_tower";
const PROJ: &str = "multi_modal_projector";

struct Layer {
    ln1: (Tensor, Option<Tensor>),
    ln2: (Tensor, Option<Tensor>),
    q: (Tensor, Option<Tensor>),
    k: (Tensor, Option<Tensor>),
    v: (Tensor, Option<Tensor>),
    proj: (Tensor, Tensor),
    q_norm: Option<Tensor>,
    k_norm: Option<Tensor>,
    lambda1: Tensor,
    lambda2: Tensor,
    fc1: (Tensor, Tensor),
    fc2: (Tensor, Tensor),
}

/// The vision tower and projector. Holds handles on the [`Params`] weights it was built from
/// (rebuild it after freezing, as for the other layers).
pub struct InternVlVision {
    cfg: InternVlConfig,
    patch_w: Tensor,
    patch_b: Tensor,
    cls: Tensor,
    pos: Option<Tensor>,
    layers: Vec<Layer>,
    final_norm: Option<(Tensor, Tensor)>,
    proj_norm: (Tensor, Tensor),
    linear1: (Tensor, Tensor),
    linear2: (Tensor, Tensor),
}

/// torch's bicubic kernel (A = -0.75) weights for resampling `inp` samples to `out`
/// (`align_corners=False`, edge samples repeated): an `(out, inp)` row-major matrix.
fn bicubic_matrix(out: usize, inp: usize) -> Vec<f64> {
    const A: f64 = -0.75;
    let near = |x: f64| ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
    let far = |x: f64| ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A;
    let scale = inp as f64 / out as f64;
    let mut m = vec![0f64; out * inp];
    for i in 0..out {
        let real = (i as f64 + 0.5) * scale - 0.5;
        let idx = real.floor();
        let t = real - idx;
        let w = [far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)];
        for (k, wk) in w.iter().enumerate() {
            let j = (idx as i64 - 1 + k as i64).clamp(0, inp as i64 - 1) as usize;
            m[i * inp + j] += wk;
        }
    }
    m
}

impl InternVlVision {
    pub fn new(cfg: &InternVlConfig, params: &Params) -> Result<InternVlVision> {
        let by_name = params.shaped_by(Self::param_specs(cfg));
        let get = |name: String| by_name(&name);
        let c = &cfg.vision;
        let e = format!("{VT}.embeddings");
        let mut layers = Vec::with_capacity(c.num_hidden_layers);
        for i in 0..c.num_hidden_layers {
            let p = format!("{VT}.encoder.layer.{i}");
            let norm = |n: &str| -> Result<(Tensor, Option<Tensor>)> {
                Ok((
                    get(format!("{p}.{n}.weight"))?,
                    match c.norm_type {
                        NormType::LayerNorm => Some(get(format!("{p}.{n}.bias"))?),
                        NormType::RmsNorm => None,
                    },
                ))
            };
            let qkv = |n: &str| -> Result<(Tensor, Option<Tensor>)> {
                Ok((
                    get(format!("{p}.attention.{n}.weight"))?,
                    if c.attention_bias {
                        Some(get(format!("{p}.attention.{n}.bias"))?)
                    } else {
                        None
                    },
                ))
            };
            let lin = |n: &str| -> Result<(Tensor, Tensor)> {
                Ok((
                    get(format!("{p}.{n}.weight"))?,
                    get(format!("{p}.{n}.bias"))?,
                ))
            };
            layers.push(Layer {
                ln1: norm("layernorm_before")?,
                ln2: norm("layernorm_after")?,
                q: qkv("q_proj")?,
                k: qkv("k_proj")?,
                v: qkv("v_proj")?,
                proj: lin("attention.projection_layer")?,
                q_norm: if c.use_qk_norm {
                    Some(get(format!("{p}.attention.q_norm.weight"))?)
                } else {
                    None
                },
                k_norm: if c.use_qk_norm {
                    Some(get(format!("{p}.attention.k_norm.weight"))?)
                } else {
                    None
                },
                lambda1: get(format!("{p}.lambda_1"))?,
                lambda2: get(format!("{p}.lambda_2"))?,
                fc1: lin("mlp.fc1")?,
                fc2: lin("mlp.fc2")?,
            });
        }
        let pair = |n: String| -> Result<(Tensor, Tensor)> {
            Ok((get(format!("{n}.weight"))?, get(format!("{n}.bias"))?))
        };
        Ok(InternVlVision {
            cfg: cfg.clone(),
            patch_w: get(format!("{e}.patch_embeddings.projection.weight"))?,
            patch_b: get(format!("{e}.patch_embeddings.projection.bias"))?,
            cls: get(format!("{e}.cls_token"))?,
            pos: if c.use_absolute_position_embeddings {
                Some(get(format!("{e}.position_embeddings"))?)
            } else {
                None
            },
            layers,
            final_norm: if c.use_mean_pooling {
                None
            } else {
                Some(pair(format!("{VT}.layernorm"))?)
            },
            proj_norm: pair(format!("{PROJ}.layer_norm"))?,
            linear1: pair(format!("{PROJ}.linear_1"))?,
            linear2: pair(format!("{PROJ}.linear_2"))?,
        })
    }

    /// Every weight (names as transformers saves them), its shape and initialiser: `Normal(0.02)`
    /// for matrices, the patch kernel, `[CLS]` and the position embeddings; norms 1, biases 0,
    /// layer-scales `layer_scale_init_value`.
    pub fn param_specs(cfg: &InternVlConfig) -> Vec<(String, Vec<usize>, Init)> {
        let c = &cfg.vision;
        let (h, i) = (c.hidden_size, c.intermediate_size);
        let w = Init::Normal(0.02);
        let one = Init::Const(1.0);
        let zero = Init::Const(0.0);
        let e = format!("{VT}.embeddings");
        let p = c.patch_size;
        let mut out = vec![
            (format!("{e}.cls_token"), vec![1, 1, h], w),
            (
                format!("{e}.patch_embeddings.projection.weight"),
                vec![h, c.num_channels, p, p],
                w,
            ),
            (
                format!("{e}.patch_embeddings.projection.bias"),
                vec![h],
                zero,
            ),
        ];
        if c.use_absolute_position_embeddings {
            let n = (c.image_size[0] / p) * (c.image_size[1] / p);
            out.push((format!("{e}.position_embeddings"), vec![1, n + 1, h], w));
        }
        for l in 0..c.num_hidden_layers {
            let pre = format!("{VT}.encoder.layer.{l}");
            for n in ["layernorm_before", "layernorm_after"] {
                out.push((format!("{pre}.{n}.weight"), vec![h], one));
                if c.norm_type == NormType::LayerNorm {
                    out.push((format!("{pre}.{n}.bias"), vec![h], zero));
                }
            }
            for n in ["q_proj", "k_proj", "v_proj"] {
                out.push((format!("{pre}.attention.{n}.weight"), vec![h, h], w));
                if c.attention_bias {
                    out.push((format!("{pre}.attention.{n}.bias"), vec![h], zero));
                }
            }
            if c.use_qk_norm {
                out.push((format!("{pre}.attention.q_norm.weight"), vec![h], one));
                out.push((format!("{pre}.attention.k_norm.weight"), vec![h], one));
            }
            let ls = Init::Const(c.layer_scale_init_value as f32);
            out.extend([
                (
                    format!("{pre}.attention.projection_layer.weight"),
                    vec![h, h],
                    w,
                ),
                (
                    format!("{pre}.attention.projection_layer.bias"),
                    vec![h],
                    zero,
                ),
                (format!("{pre}.lambda_1"), vec![h], ls),
                (format!("{pre}.lambda_2"), vec![h], ls),
                (format!("{pre}.mlp.fc1.weight"), vec![i, h], w),
                (format!("{pre}.mlp.fc1.bias"), vec![i], zero),
                (format!("{pre}.mlp.fc2.weight"), vec![h, i], w),
                (format!("{pre}.mlp.fc2.bias"), vec![h], zero),
            ]);
        }
        if !c.use_mean_pooling {
            out.push((format!("{VT}.layernorm.weight"), vec![h], one));
            out.push((format!("{VT}.layernorm.bias"), vec![h], zero));
        }
        let s = cfg.shuffled_width();
        let t = cfg.text_hidden_size;
        out.extend([
            (format!("{PROJ}.layer_norm.weight"), vec![s], one),
            (format!("{PROJ}.layer_norm.bias"), vec![s], zero),
            (format!("{PROJ}.linear_1.weight"), vec![t, s], w),
            (format!("{PROJ}.linear_1.bias"), vec![t], zero),
            (format!("{PROJ}.linear_2.weight"), vec![t, t], w),
            (format!("{PROJ}.linear_2.bias"), vec![t], zero),
        ]);
        out
    }

    pub fn config(&self) -> &InternVlConfig {
        &self.cfg
    }

    fn device(&self) -> &Device {
        self.patch_w.device()
    }

    /// The position embeddings for a `gh x gw` patch grid `(1, 1 + gh*gw, hidden)`: as stored
    /// when the grid is the trained one and square, else the patch part resampled bicubically
    /// (the `[CLS]` row kept), as transformers' `interpolate_pos_encoding`.
    fn positions(&self, gh: usize, gw: usize) -> Result<Option<Tensor>> {
        let Some(pos) = &self.pos else {
            return Ok(None);
        };
        let n = pos.dim(1)? - 1;
        if n == gh * gw && gh == gw {
            return Ok(Some(pos.clone()));
        }
        let side = (n as f64).sqrt() as usize;
        if side * side != n {
            return Err(ModelError::invalid(format!(
                "{n} position embeddings are not a square grid; cannot interpolate to {gh}x{gw}"
            )));
        }
        let mh = bicubic_matrix(gh, side);
        let mw = bicubic_matrix(gw, side);
        // Kronecker product: row (i, j) of the new grid mixes row (a, b) of the old one.
        let mut m = vec![0f64; gh * gw * n];
        for i in 0..gh {
            for j in 0..gw {
                for a in 0..side {
                    let wa = mh[i * side + a];
                    if wa == 0.0 {
                        continue;
                    }
                    for b in 0..side {
                        m[(i * gw + j) * n + a * side + b] = wa * mw[j * side + b];
                    }
                }
            }
        }
        let dtype = pos.dtype();
        let m = Tensor::from_vec(m, (gh * gw, n), self.device())?.to_dtype(dtype)?;
        let patch = pos.narrow(1, 1, n)?.squeeze(0)?; // (n, hidden)
        let moved = m.matmul(&patch)?.unsqueeze(0)?;
        Ok(Some(Tensor::cat(&[&pos.narrow(1, 0, 1)?, &moved], 1)?))
    }

    fn norm(&self, x: &Tensor, n: &(Tensor, Option<Tensor>), grad: bool) -> Result<Tensor> {
        let eps = self.cfg.vision.layer_norm_eps;
        Ok(match &n.1 {
            Some(b) => ops::layer_norm(x, &n.0, b, eps, grad)?,
            None => ops::rms_norm(x, &n.0, eps, grad)?,
        })
    }

    fn layer(&self, x: &Tensor, l: &Layer, grad: bool) -> Result<Tensor> {
        let c = &self.cfg.vision;
        let (b, s, h) = x.dims3()?;
        let heads = c.num_attention_heads;
        let hd = h / heads;
        let y = self.norm(x, &l.ln1, grad)?;
        let proj = |w: &(Tensor, Option<Tensor>)| ops::linear(&y, &w.0, w.1.as_ref());
        let (mut q, mut k, v) = (proj(&l.q)?, proj(&l.k)?, proj(&l.v)?);
        // InternVLVisionRMSNorm over the whole width, with its own default eps.
        if let Some(w) = &l.q_norm {
            q = ops::rms_norm(&q, w, 1e-6, grad)?;
        }
        if let Some(w) = &l.k_norm {
            k = ops::rms_norm(&k, w, 1e-6, grad)?;
        }
        let split = |t: Tensor| -> Result<Tensor> {
            Ok(t.reshape((b, s, heads, hd))?
                .transpose(1, 2)?
                .contiguous()?)
        };
        let (q, k, v) = (split(q)?, split(k)?, split(v)?);
        let scale = (hd as f64).powf(-0.5);
        let att = (q.matmul(&k.transpose(2, 3)?.contiguous()?)? * scale)?;
        let att = ops::softmax_last(&att, grad)?;
        let o = att.matmul(&v)?.transpose(1, 2)?.reshape((b, s, h))?;
        let o = ops::linear(&o, &l.proj.0, Some(&l.proj.1))?;
        let x = x.add(&o.broadcast_mul(&l.lambda1)?)?;
        let y = self.norm(&x, &l.ln2, grad)?;
        let y = ops::linear(&y, &l.fc1.0, Some(&l.fc1.1))?;
        let y = c.hidden_act.apply(&y)?;
        let y = ops::linear(&y, &l.fc2.0, Some(&l.fc2.1))?;
        Ok(x.add(&y.broadcast_mul(&l.lambda2)?)?)
    }

    /// The selected InternViT hidden state `(tiles, 1 + patches, hidden)` for `pixel_values`
    /// `(tiles, channels, height, width)`.
    pub fn vision_features(&self, pixel_values: &Tensor, grad: bool) -> Result<Tensor> {
        let c = &self.cfg.vision;
        let (n, ch, ht, wd) = pixel_values.dims4().map_err(|_| {
            ModelError::invalid(format!(
                "InternVL pixel_values must be (tiles, channels, height, width), not {:?}",
                pixel_values.dims()
            ))
        })?;
        let p = c.patch_size;
        if ch != c.num_channels || ht % p != 0 || wd % p != 0 || n == 0 {
            return Err(ModelError::invalid(format!(
                "InternVL pixel_values {:?}: need {} channels and sides that are multiples of {p}",
                pixel_values.dims(),
                c.num_channels
            )));
        }
        let (gh, gw) = (ht / p, wd / p);
        let h = c.hidden_size;
        let x = pixel_values.to_dtype(self.patch_w.dtype())?;
        // Conv2d with kernel = stride = patch: unfold each tile into patches (row-major over the
        // grid, each patch channel-major as the kernel is laid out) and multiply.
        let x = x
            .reshape((n, ch, gh, p, gw, p))?
            .permute((0, 2, 4, 1, 3, 5))?
            .contiguous()?
            .reshape((n, gh * gw, ch * p * p))?;
        // A plain matmul, not ops::linear: the reshaped kernel is no longer the variable itself,
        // and ops::linear takes a weight that is not a variable for a frozen one (no gradient).
        let w = self.patch_w.reshape((h, ch * p * p))?;
        let x = x
            .reshape((n * gh * gw, ch * p * p))?
            .matmul(&w.t()?)?
            .broadcast_add(&self.patch_b)?
            .reshape((n, gh * gw, h))?;
        let cls = self.cls.broadcast_as((n, 1, h))?;
        let mut x = Tensor::cat(&[&cls, &x], 1)?;
        if let Some(pos) = self.positions(gh, gw)? {
            x = x.broadcast_add(&pos)?;
        }
        let layers = c.num_hidden_layers as i64;
        let fl = self.cfg.vision_feature_layer;
        if fl == -1 {
            for l in &self.layers {
                x = self.layer(&x, l, grad)?;
            }
            if let Some((w, b)) = &self.final_norm {
                x = ops::layer_norm(&x, w, b, c.layer_norm_eps, grad)?;
            }
            return Ok(x);
        }
        // hidden_states[k]: the embeddings for k = 0, else the output of layer k - 1.
        let k = if fl < 0 { layers + 1 + fl } else { fl } as usize;
        for l in &self.layers[..k] {
            x = self.layer(&x, l, grad)?;
        }
        Ok(x)
    }

    /// Image features `(tiles * tokens_per_tile, text_hidden)` for `pixel_values`
    /// `(tiles, channels, height, width)`, tile by tile.
    pub fn forward(&self, pixel_values: &Tensor, grad: bool) -> Result<Tensor> {
        let feats = self.vision_features(pixel_values, grad)?;
        let (n, s, h) = feats.dims3()?;
        let (ht, wd) = (pixel_values.dim(2)?, pixel_values.dim(3)?);
        let p = self.cfg.vision.patch_size;
        let (gh, gw) = (ht / p, wd / p);
        let k = self.cfg.shuffle;
        // transformers reshapes the patch features to a square side `int(sqrt(patches))`.
        if gh != gw || s != gh * gw + 1 {
            return Err(ModelError::invalid(format!(
                "InternVL tiles must be square; got {ht}x{wd}"
            )));
        }
        if gh % k != 0 {
            return Err(ModelError::invalid(format!(
                "the {gh}x{gw} patch grid of a tile cannot be pixel-shuffled by {k}"
            )));
        }
        let x = feats.narrow(1, 1, s - 1)?.reshape((n, gh, gw, h))?;
        let x = pixel_shuffle(&x, k)?;
        let (_, a, b, cdim) = x.dims4()?;
        let x = x.reshape((n * a * b, cdim))?;
        let x = ops::layer_norm(&x, &self.proj_norm.0, &self.proj_norm.1, 1e-5, grad)?;
        let x = ops::linear(&x, &self.linear1.0, Some(&self.linear1.1))?;
        let x = self.cfg.projector_hidden_act.apply(&x)?;
        Ok(ops::linear(&x, &self.linear2.0, Some(&self.linear2.1))?)
    }

    pub fn dtype(&self) -> DType {
        self.patch_w.dtype()
    }
}

/// transformers' `InternVLModel.pixel_shuffle` for `scale_factor = 1/k` on `(n, a, b, c)`:
/// `(n, a/k, b/k, c*k²)`. Its two transposes leave the grid transposed: feature `(i, j)` is the
/// k x k block at block row `j`, block column `i`, concatenated row-major.
pub fn pixel_shuffle(x: &Tensor, k: usize) -> Result<Tensor> {
    let (n, a, b, c) = x.dims4()?;
    if a % k != 0 || b % k != 0 {
        return Err(ModelError::invalid(format!(
            "pixel shuffle: {a}x{b} is not divisible by {k}"
        )));
    }
    let x = x.reshape((n, a, b / k, c * k))?;
    let x = x.transpose(1, 2)?.contiguous()?; // (n, b/k, a, ck)
    let x = x.reshape((n, b / k, a / k, c * k * k))?;
    Ok(x.transpose(1, 2)?.contiguous()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bicubic_identity_and_partition_of_unity() {
        let m = bicubic_matrix(4, 4);
        for i in 0..4 {
            for j in 0..4 {
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((m[i * 4 + j] - want).abs() < 1e-12);
            }
        }
        let m = bicubic_matrix(6, 4);
        for i in 0..6 {
            let s: f64 = m[i * 4..i * 4 + 4].iter().sum();
            assert!((s - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn pixel_shuffle_matches_transformers_order() {
        // transformers on a (1, 4, 4, 1) grid 0..16: feature (i, j) holds the 2x2 block at
        // block row j, block column i, row-major within the block.
        let x = Tensor::arange(0f32, 16.0, &Device::Cpu)
            .unwrap()
            .reshape((1, 4, 4, 1))
            .unwrap();
        let y = pixel_shuffle(&x, 2).unwrap().flatten_all().unwrap();
        let want = [
            0., 1., 4., 5., 2., 3., 6., 7., 8., 9., 12., 13., 10., 11., 14., 15.,
        ];
        assert_eq!(y.to_vec1::<f32>().unwrap(), want.to_vec());
    }
}
