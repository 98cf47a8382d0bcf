//! The text decoder shared by Qwen2, Llama and Qwen2.5-VL's language model.
//!
//! Grouped-query attention, rotary position embedding (plain, or multimodal with
//! `mrope_section`: each third of the rotary frequencies follows its own position row), RMSNorm,
//! SwiGLU, optional q/k/v bias, tied or untied head. The attention never copies K/V per query
//! head: queries are grouped under their KV head instead, which is the same arithmetic.

use candle_core::{DType, Device, Tensor};

use crate::config::TextConfig;
use crate::error::Result;
use crate::lora::{LoraRuntime, Proj};
use crate::ops;
use crate::params::{Init, Params};

struct Layer {
    input_norm: Tensor,
    post_norm: Tensor,
    q: Proj,
    k: Proj,
    v: Proj,
    o: Proj,
    gate: Proj,
    up: Proj,
    down: Proj,
}

pub struct Decoder {
    cfg: TextConfig,
    embed: Tensor,
    layers: Vec<Layer>,
    norm: Tensor,
    lm_head: Tensor,
    inv_freq: Vec<f32>,
}

/// Keys and values of every layer for the tokens seen so far, in buffers `(B, kv_heads,
/// capacity, head_dim)` written in place: growing them by concatenation would allocate a new,
/// larger pair per layer and token (quadratic copying, and a fragmented heap several times the
/// cache's size). A buffer that fills up doubles.
#[derive(Default, Clone)]
pub struct KvCache {
    layers: Vec<Option<LayerCache>>,
    /// Positions to reserve at the first write (at least the first chunk's length).
    capacity: usize,
}

#[derive(Clone)]
struct LayerCache {
    k: Tensor,
    v: Tensor,
    len: usize,
}

impl LayerCache {
    /// Appends `(B, kv_heads, t, head_dim)` keys and values; returns views of everything cached.
    fn append(
        slot: &mut Option<LayerCache>,
        k: &Tensor,
        v: &Tensor,
        reserve: usize,
    ) -> Result<(Tensor, Tensor)> {
        let t = k.dim(2)?;
        let len = slot.as_ref().map_or(0, |c| c.len);
        let cap = slot.as_ref().map_or(0, |c| c.k.dim(2).unwrap_or(0));
        if len + t > cap {
            let new_cap = (len + t).max(reserve).max(2 * cap);
            let (b, n, _, hd) = k.dims4()?;
            let kb = Tensor::zeros((b, n, new_cap, hd), k.dtype(), k.device())?;
            let vb = Tensor::zeros((b, n, new_cap, hd), v.dtype(), v.device())?;
            if let Some(old) = slot.as_ref() {
                kb.slice_set(&old.k.narrow(2, 0, len)?.contiguous()?, 2, 0)?;
                vb.slice_set(&old.v.narrow(2, 0, len)?.contiguous()?, 2, 0)?;
            }
            *slot = Some(LayerCache { k: kb, v: vb, len });
        }
        let c = slot.as_mut().expect("allocated above");
        c.k.slice_set(&k.contiguous()?, 2, len)?;
        c.v.slice_set(&v.contiguous()?, 2, len)?;
        c.len = len + t;
        Ok((c.k.narrow(2, 0, c.len)?, c.v.narrow(2, 0, c.len)?))
    }
}

impl KvCache {
    pub fn new() -> KvCache {
        KvCache::default()
    }
    /// A cache that reserves room for `positions` tokens at its first write (prompt plus
    /// new tokens, when known), so decoding never reallocates.
    pub fn with_capacity(positions: usize) -> KvCache {
        KvCache {
            layers: Vec::new(),
            capacity: positions,
        }
    }
    /// Number of positions cached.
    pub fn len(&self) -> usize {
        self.layers
            .first()
            .and_then(|l| l.as_ref())
            .map(|c| c.len)
            .unwrap_or(0)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn layer_name(i: usize, rest: &str) -> String {
    format!("model.layers.{i}.{rest}")
}

impl Decoder {
    pub fn new(cfg: &TextConfig, params: &Params) -> Result<Decoder> {
        Decoder::with_lora(cfg, params, None)
    }

    /// A decoder whose projections pick up the LoRA adapters `params` holds for them.
    pub fn with_lora(
        cfg: &TextConfig,
        params: &Params,
        lora: Option<&LoraRuntime>,
    ) -> Result<Decoder> {
        let (h, hd, i) = (cfg.hidden_size, cfg.head_dim, cfg.intermediate_size);
        let (nh, nkv) = (cfg.num_attention_heads, cfg.num_key_value_heads);
        let embed = params.get_shaped("model.embed_tokens.weight", &[cfg.vocab_size, h])?;
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for l in 0..cfg.num_hidden_layers {
            let proj = |module: &str, out: usize, inp: usize, bias: bool| -> Result<Proj> {
                let module = layer_name(l, module);
                let w = params.get_shaped(&format!("{module}.weight"), &[out, inp])?;
                let b = if bias {
                    Some(params.get_shaped(&format!("{module}.bias"), &[out])?)
                } else {
                    None
                };
                let lora = match lora {
                    Some(rt) => rt.adapter(params, &module)?,
                    None => None,
                };
                Ok(Proj { w, b, lora })
            };
            let qkv_bias = cfg.qkv_bias;
            layers.push(Layer {
                input_norm: params.get_shaped(&layer_name(l, "input_layernorm.weight"), &[h])?,
                post_norm: params
                    .get_shaped(&layer_name(l, "post_attention_layernorm.weight"), &[h])?,
                q: proj("self_attn.q_proj", nh * hd, h, qkv_bias)?,
                k: proj("self_attn.k_proj", nkv * hd, h, qkv_bias)?,
                v: proj("self_attn.v_proj", nkv * hd, h, qkv_bias)?,
                o: proj("self_attn.o_proj", h, nh * hd, false)?,
                gate: proj("mlp.gate_proj", i, h, false)?,
                up: proj("mlp.up_proj", i, h, false)?,
                down: proj("mlp.down_proj", h, i, false)?,
            });
        }
        let norm = params.get_shaped("model.norm.weight", &[h])?;
        let lm_head = if cfg.tie_word_embeddings {
            embed.clone()
        } else {
            params.get_shaped("lm_head.weight", &[cfg.vocab_size, h])?
        };
        Ok(Decoder {
            cfg: cfg.clone(),
            embed,
            layers,
            norm,
            lm_head,
            inv_freq: ops::inv_freq(cfg.head_dim, cfg.rope_theta),
        })
    }

    /// Every decoder weight with its shape and initialiser, for building a model from scratch.
    pub fn param_specs(cfg: &TextConfig) -> Vec<(String, Vec<usize>, Init)> {
        let (h, hd, i) = (cfg.hidden_size, cfg.head_dim, cfg.intermediate_size);
        let (nh, nkv) = (cfg.num_attention_heads, cfg.num_key_value_heads);
        let w = Init::Normal(0.02);
        let mut specs = vec![(
            "model.embed_tokens.weight".to_string(),
            vec![cfg.vocab_size, h],
            w,
        )];
        for l in 0..cfg.num_hidden_layers {
            let mut add = |rest: &str, shape: Vec<usize>, init: Init| {
                specs.push((layer_name(l, rest), shape, init))
            };
            add("input_layernorm.weight", vec![h], Init::Const(1.0));
            add("post_attention_layernorm.weight", vec![h], Init::Const(1.0));
            for (name, out) in [
                ("q_proj", nh * hd),
                ("k_proj", nkv * hd),
                ("v_proj", nkv * hd),
            ] {
                add(&format!("self_attn.{name}.weight"), vec![out, h], w);
                if cfg.qkv_bias {
                    add(
                        &format!("self_attn.{name}.bias"),
                        vec![out],
                        Init::Const(0.0),
                    );
                }
            }
            add("self_attn.o_proj.weight", vec![h, nh * hd], w);
            add("mlp.gate_proj.weight", vec![i, h], w);
            add("mlp.up_proj.weight", vec![i, h], w);
            add("mlp.down_proj.weight", vec![h, i], w);
        }
        specs.push(("model.norm.weight".to_string(), vec![h], Init::Const(1.0)));
        if !cfg.tie_word_embeddings {
            specs.push(("lm_head.weight".to_string(), vec![cfg.vocab_size, h], w));
        }
        specs
    }

    pub fn config(&self) -> &TextConfig {
        &self.cfg
    }

    /// Token embeddings `(B, T, H)` for ids `(B, T)`.
    pub fn embed(&self, ids: &Tensor) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        Ok(self.embed.index_select(&ids.flatten_all()?, 0)?.reshape((
            b,
            t,
            self.cfg.hidden_size,
        ))?)
    }

    /// `cos`/`sin` of shape `(B, 1, T, head_dim)` from positions `(R, B, T)` (f32), where R is 1
    /// (plain rotary) or 3 (multimodal: temporal, height, width rows).
    fn rotary(&self, positions: &Tensor) -> Result<(Tensor, Tensor)> {
        let (rows, b, t) = positions.dims3()?;
        let half = self.cfg.head_dim / 2;
        let dev = positions.device();
        let sections: Vec<usize> = match (&self.cfg.mrope_section, rows) {
            (Some(s), 3) => s.clone(),
            _ => vec![half],
        };
        let mut parts = Vec::with_capacity(sections.len());
        let mut start = 0;
        for (c, len) in sections.iter().enumerate() {
            let row = positions.get(c.min(rows - 1))?.unsqueeze(2)?; // (B, T, 1)
            let freq = Tensor::from_slice(&self.inv_freq[start..start + len], (1, 1, *len), dev)?;
            parts.push(row.broadcast_mul(&freq)?);
            start += len;
        }
        let freqs = Tensor::cat(&parts, 2)?; // (B, T, half)
        let emb = Tensor::cat(&[&freqs, &freqs], 2)?.reshape((b, 1, t, 2 * half))?;
        let dtype = self.embed.dtype();
        Ok((emb.cos()?.to_dtype(dtype)?, emb.sin()?.to_dtype(dtype)?))
    }

    /// Runs the decoder on input embeddings `(B, T, H)`.
    ///
    /// `positions`: `(R, B, T)` f32 rotary positions. `key_valid`: `(B, S)` with 1 for real
    /// tokens and 0 for padding, over the cached plus the new positions (`S = cache + T`).
    /// Returns the final hidden states `(B, T, H)` (after the last norm).
    pub fn forward(
        &self,
        x: &Tensor,
        positions: &Tensor,
        key_valid: &[Vec<u8>],
        mut cache: Option<&mut KvCache>,
        grad: bool,
    ) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let past = cache.as_ref().map(|c| c.len()).unwrap_or(0);
        let (cos, sin) = self.rotary(positions)?;
        let mask = attention_mask(key_valid, past, t, x.dtype(), x.device())?;
        if let Some(c) = cache.as_deref_mut() {
            if c.layers.len() != self.layers.len() {
                c.layers = vec![None; self.layers.len()];
            }
        }
        let reserve = cache.as_ref().map_or(0, |c| c.capacity);
        let mut h = x.clone();
        for (li, layer) in self.layers.iter().enumerate() {
            let slot = cache.as_deref_mut().map(|c| (&mut c.layers[li], reserve));
            let normed = ops::rms_norm(&h, &layer.input_norm, self.cfg.rms_norm_eps, grad)?;
            let attn = self.attention(layer, &normed, &cos, &sin, &mask, slot, b, t, grad)?;
            h = (h + attn)?;
            let normed = ops::rms_norm(&h, &layer.post_norm, self.cfg.rms_norm_eps, grad)?;
            let g = layer.gate.forward(&normed, grad)?.silu()?;
            let u = layer.up.forward(&normed, grad)?;
            let mlp = layer.down.forward(&(g * u)?, grad)?;
            h = (h + mlp)?;
        }
        Ok(ops::rms_norm(&h, &self.norm, self.cfg.rms_norm_eps, grad)?)
    }

    #[allow(clippy::too_many_arguments)]
    fn attention(
        &self,
        layer: &Layer,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        mask: &Tensor,
        slot: Option<(&mut Option<LayerCache>, usize)>,
        b: usize,
        t: usize,
        grad: bool,
    ) -> Result<Tensor> {
        let (nh, nkv, hd) = (
            self.cfg.num_attention_heads,
            self.cfg.num_key_value_heads,
            self.cfg.head_dim,
        );
        let rep = nh / nkv;
        let heads = |y: Tensor, n: usize| -> Result<Tensor> {
            Ok(y.reshape((b, t, n, hd))?.transpose(1, 2)?.contiguous()?)
        };
        let q = heads(layer.q.forward(x, grad)?, nh)?;
        let k = heads(layer.k.forward(x, grad)?, nkv)?;
        let v = heads(layer.v.forward(x, grad)?, nkv)?;
        let q = ops::apply_rotary(&q, cos, sin)?;
        let k = ops::apply_rotary(&k, cos, sin)?;
        let (k, v) = match slot {
            Some((slot, reserve)) => LayerCache::append(slot, &k, &v, reserve)?,
            None => (k, v),
        };
        let s = k.dim(2)?;
        // Query heads h = kv * rep + r share KV head kv: group them as rows of one matmul.
        let q = q.reshape((b, nkv, rep * t, hd))?;
        let scale = 1.0 / (hd as f64).sqrt();
        let scores = (q.matmul(&k.t()?)? * scale)?.reshape((b, nkv, rep, t, s))?;
        let scores = scores.broadcast_add(mask)?;
        let probs = ops::softmax_last(&scores, grad)?.reshape((b, nkv, rep * t, s))?;
        let out = probs.matmul(&v)?; // (B, nkv, rep*T, hd)
        let out = out
            .reshape((b, nh, t, hd))?
            .transpose(1, 2)?
            .reshape((b, t, nh * hd))?;
        layer.o.forward(&out, grad)
    }

    /// Logits `(…, vocab)` from final hidden states.
    pub fn logits(&self, hidden: &Tensor, grad: bool) -> Result<Tensor> {
        lin(hidden, &self.lm_head, None, grad)
    }
}

/// A projection: differentiable when `grad`, else the decoding fast path.
fn lin(x: &Tensor, w: &Tensor, b: Option<&Tensor>, grad: bool) -> Result<Tensor> {
    Ok(if grad {
        ops::linear(x, w, b)?
    } else {
        ops::linear_no_grad(x, w, b)?
    })
}

/// Additive mask `(B, 1, 1, T, S)`: query `i` (absolute position `past + i`) sees key `j` when
/// `j <= past + i` and key `j` is not padding. Fully masked rows (padding queries) get the
/// lowest finite value everywhere, so their softmax is uniform rather than NaN.
pub fn attention_mask(
    key_valid: &[Vec<u8>],
    past: usize,
    t: usize,
    dtype: DType,
    device: &Device,
) -> Result<Tensor> {
    let b = key_valid.len();
    let s = past + t;
    let neg = f32::MIN;
    let mut data = vec![0f32; b * t * s];
    for (bi, valid) in key_valid.iter().enumerate() {
        for i in 0..t {
            let row = &mut data[(bi * t + i) * s..(bi * t + i + 1) * s];
            for (j, v) in row.iter_mut().enumerate() {
                let ok = j <= past + i && valid.get(j).copied().unwrap_or(1) != 0;
                if !ok {
                    *v = neg;
                }
            }
        }
    }
    let m = Tensor::from_vec(data, (b, 1, 1, t, s), device)?;
    Ok(if dtype == DType::F32 {
        m
    } else {
        m.to_dtype(dtype)?
    })
}
