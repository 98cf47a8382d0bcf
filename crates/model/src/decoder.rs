//! The text decoder shared by Qwen2, Llama and Qwen2.5-VL's language model.
//!
//! Grouped-query attention, rotary position embedding (plain, or multimodal with
//! `mrope_section`: each third of the rotary frequencies follows its own position row), RMSNorm,
//! SwiGLU, optional q/k/v bias, tied or untied head. Qwen3-VL adds a per-head RMSNorm on queries and
//! keys (`qk_norm`), interleaved M-RoPE (`mrope_interleaved`) and DeepStack: visual features
//! added to the hidden states of the first layers at the image positions ([`DeepStack`]). The attention never copies K/V per query
//! head: queries are grouped under their KV head instead, which is the same arithmetic.
//!
//! Gradient checkpointing (`set_gradient_checkpointing`): candle has no
//! `torch.utils.checkpoint`, so the training forward runs the layers without keeping their
//! graphs (each layer's output is detached; only the layer inputs are kept) and joins the
//! result to the graph with a custom op ([`Checkpointed`]) whose backward walks the layers in
//! reverse: it recomputes layer `i` from its saved input (made a `Var`), backpropagates the
//! incoming gradient through it (`(out_i * grad_i).sum()`), keeps the gradients of the layer's
//! weights and hands the input's gradient to layer `i - 1`. The op's own backward can only
//! return a gradient for its inputs, so the weights' gradients go to a side store that
//! [`crate::model::Model::backward`] merges into the `GradStore`. Peak memory holds one
//! layer's activations instead of all of them; each layer's forward runs twice.

use std::sync::{Arc, Mutex};

use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, CustomOp2, DType, Device, Layout, Shape, Tensor, Var};

use crate::config::TextConfig;
use crate::error::Result;
use crate::lora::{LoraRuntime, Proj};
use crate::ops;
use crate::params::{Init, Params};

#[derive(Clone)]
struct Layer {
    input_norm: Tensor,
    post_norm: Tensor,
    /// Qwen3's per-head RMSNorm of queries / keys (`head_dim` weights), when `qk_norm`.
    q_norm: Option<Tensor>,
    k_norm: Option<Tensor>,
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
    layers: Arc<Vec<Layer>>,
    norm: Tensor,
    lm_head: Tensor,
    inv_freq: Vec<f32>,
    /// Recompute the layers in backward instead of keeping their activations.
    checkpointing: bool,
    /// The LoRA switch and dropout stream, restored when a checkpointed layer is recomputed.
    lora_state: Option<Arc<crate::lora::LoraState>>,
    /// Weight gradients of checkpointed layers, filled during backward (see the module docs).
    checkpoint_grads: Arc<Mutex<Option<GradStore>>>,
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
            let head_norm = |name: &str| -> Result<Option<Tensor>> {
                match cfg.qk_norm {
                    true => Ok(Some(params.get_shaped(&layer_name(l, name), &[hd])?)),
                    false => Ok(None),
                }
            };
            layers.push(Layer {
                q_norm: head_norm("self_attn.q_norm.weight")?,
                k_norm: head_norm("self_attn.k_norm.weight")?,
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
            layers: Arc::new(layers),
            norm,
            lm_head,
            inv_freq: ops::inv_freq(cfg.head_dim, cfg.rope_theta),
            checkpointing: false,
            lora_state: lora.map(|l| l.state.clone()),
            checkpoint_grads: Arc::new(Mutex::new(None)),
        })
    }

    pub fn set_gradient_checkpointing(&mut self, on: bool) {
        self.checkpointing = on;
    }

    pub fn gradient_checkpointing(&self) -> bool {
        self.checkpointing
    }

    /// The weight gradients the checkpointed layers produced in the last backward(s), taken
    /// out of the side store.
    pub fn take_checkpoint_grads(&self) -> Option<GradStore> {
        self.checkpoint_grads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
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
            if cfg.qk_norm {
                add("self_attn.q_norm.weight", vec![hd], Init::Const(1.0));
                add("self_attn.k_norm.weight", vec![hd], Init::Const(1.0));
            }
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
        if let (true, Some(s), 3) = (self.cfg.mrope_interleaved, &self.cfg.mrope_section, rows) {
            return self.rotary_interleaved(positions, s);
        }
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

    /// Interleaved M-RoPE (Qwen3-VL): frequency `j` takes the height row when `j % 3 == 1` and
    /// `j < 3 * sections[1]`, the width row when `j % 3 == 2` and `j < 3 * sections[2]`, else
    /// the temporal row. Each row contributes its position times the frequencies it owns (zero
    /// elsewhere), so the sum is exactly one product per frequency.
    fn rotary_interleaved(&self, positions: &Tensor, s: &[usize]) -> Result<(Tensor, Tensor)> {
        let (_, b, t) = positions.dims3()?;
        let half = self.cfg.head_dim / 2;
        let dev = positions.device();
        let owner = |j: usize| -> usize {
            if j % 3 == 1 && j < 3 * s[1] {
                1
            } else if j % 3 == 2 && j < 3 * s[2] {
                2
            } else {
                0
            }
        };
        let mut freqs: Option<Tensor> = None;
        for r in 0..3 {
            let own: Vec<f32> = (0..half)
                .map(|j| if owner(j) == r { self.inv_freq[j] } else { 0.0 })
                .collect();
            let f = Tensor::from_vec(own, (1, 1, half), dev)?;
            let part = positions.get(r)?.unsqueeze(2)?.broadcast_mul(&f)?;
            freqs = Some(match freqs {
                Some(acc) => (acc + part)?,
                None => part,
            });
        }
        let freqs = freqs.expect("three rows");
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
        cache: Option<&mut KvCache>,
        grad: bool,
    ) -> Result<Tensor> {
        self.forward_with(x, positions, key_valid, cache, grad, None)
    }

    /// [`Decoder::forward`] with DeepStack features added after the first layers.
    pub fn forward_with(
        &self,
        x: &Tensor,
        positions: &Tensor,
        key_valid: &[Vec<u8>],
        mut cache: Option<&mut KvCache>,
        grad: bool,
        deepstack: Option<&DeepStack>,
    ) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let stacked = deepstack.map_or(0, |d| d.features.len());
        if stacked > self.layers.len() {
            return Err(crate::error::ModelError::invalid(format!(
                "{stacked} DeepStack features for a decoder of {} layers",
                self.layers.len()
            )));
        }
        let past = cache.as_ref().map(|c| c.len()).unwrap_or(0);
        let (cos, sin) = self.rotary(positions)?;
        let mask = attention_mask(key_valid, past, t, x.dtype(), x.device())?;
        if let Some(c) = cache.as_deref_mut() {
            if c.layers.len() != self.layers.len() {
                c.layers = vec![None; self.layers.len()];
            }
        }
        let reserve = cache.as_ref().map_or(0, |c| c.capacity);
        // Under checkpointing the layers that take DeepStack features run plainly (their
        // additions need a graph), the rest are recomputed in backward.
        let checkpoint = grad && cache.is_none() && self.checkpointing;
        let plain = if checkpoint {
            stacked
        } else {
            self.layers.len()
        };
        let mut h = x.clone();
        for (li, layer) in self.layers.iter().enumerate().take(plain) {
            let slot = cache.as_deref_mut().map(|c| (&mut c.layers[li], reserve));
            h = layer_forward(&self.cfg, layer, &h, &cos, &sin, &mask, slot, b, t, grad)?;
            if let Some(d) = deepstack.filter(|_| li < stacked) {
                h = d.add_to(&h, li)?;
            }
        }
        if plain < self.layers.len() {
            h = self.checkpointed_layers(&h, plain, &cos, &sin, &mask)?;
        }
        Ok(ops::rms_norm(&h, &self.norm, self.cfg.rms_norm_eps, grad)?)
    }

    /// Layers `start..` of a training forward under gradient checkpointing (see the module docs).
    fn checkpointed_layers(
        &self,
        x: &Tensor,
        start: usize,
        cos: &Tensor,
        sin: &Tensor,
        mask: &Tensor,
    ) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let n = self.layers.len() - start;
        let mut inputs = Vec::with_capacity(n);
        let mut states = Vec::with_capacity(n);
        let mut h = x.detach();
        for layer in self.layers.iter().skip(start) {
            inputs.push(h.clone());
            states.push(self.lora_state.as_ref().map(|s| s.snapshot()));
            // The same differentiable ops as the plain path (so the recompute gives the same
            // numbers); detaching the output drops this layer's graph and activations.
            h = layer_forward(&self.cfg, layer, &h, cos, sin, mask, None, b, t, true)?.detach();
        }
        // The op joins `x`'s graph only if `x` is tracked; a frozen embedding (LoRA) gives an
        // untracked `x`, which a fresh leaf stands in for so backward still reaches the layers.
        let x = if x.track_op() {
            x.clone()
        } else {
            Var::from_tensor(&x.detach())?.as_tensor().clone()
        };
        let op = Checkpointed {
            cfg: self.cfg.clone(),
            layers: self.layers.clone(),
            start,
            inputs,
            states,
            lora_state: self.lora_state.clone(),
            cos: cos.clone(),
            sin: sin.clone(),
            mask: mask.clone(),
            grads: self.checkpoint_grads.clone(),
        };
        Ok(x.apply_op2(&h, op)?)
    }
}

/// One decoder layer: attention and SwiGLU MLP, each with its pre-norm and residual.
#[allow(clippy::too_many_arguments)]
fn layer_forward(
    cfg: &TextConfig,
    layer: &Layer,
    h: &Tensor,
    cos: &Tensor,
    sin: &Tensor,
    mask: &Tensor,
    slot: Option<(&mut Option<LayerCache>, usize)>,
    b: usize,
    t: usize,
    grad: bool,
) -> Result<Tensor> {
    let normed = ops::rms_norm(h, &layer.input_norm, cfg.rms_norm_eps, grad)?;
    let attn = attention(cfg, layer, &normed, cos, sin, mask, slot, b, t, grad)?;
    let h = (h + attn)?;
    let normed = ops::rms_norm(&h, &layer.post_norm, cfg.rms_norm_eps, grad)?;
    let g = layer.gate.forward(&normed, grad)?.silu()?;
    let u = layer.up.forward(&normed, grad)?;
    let mlp = layer.down.forward(&(g * u)?, grad)?;
    Ok((h + mlp)?)
}

impl Layer {
    /// The layer's weights that take a gradient (variables), adapters included.
    fn variables(&self) -> Vec<&Tensor> {
        let mut out = vec![&self.input_norm, &self.post_norm];
        out.extend(self.q_norm.iter().chain(self.k_norm.iter()));
        for p in [
            &self.q, &self.k, &self.v, &self.o, &self.gate, &self.up, &self.down,
        ] {
            out.push(&p.w);
            out.extend(p.b.as_ref());
            if let Some(a) = &p.lora {
                out.extend(a.tensors());
            }
        }
        out.retain(|t| t.is_variable());
        out
    }
}

/// The checkpointed segment of the decoder as one op: `arg1` is the layers' input (the
/// embeddings), `arg2` their output computed without a graph; forward returns `arg2`, backward
/// recomputes the layers (see the module docs).
struct Checkpointed {
    cfg: TextConfig,
    layers: Arc<Vec<Layer>>,
    /// The first checkpointed layer (the ones before it ran plainly).
    start: usize,
    /// Input of every checkpointed layer, detached.
    inputs: Vec<Tensor>,
    /// The LoRA state before every layer's forward.
    states: Vec<Option<(bool, u64, u64)>>,
    lora_state: Option<Arc<crate::lora::LoraState>>,
    cos: Tensor,
    sin: Tensor,
    mask: Tensor,
    grads: Arc<Mutex<Option<GradStore>>>,
}

impl CustomOp2 for Checkpointed {
    fn name(&self) -> &'static str {
        "checkpointed-decoder-layers"
    }

    fn cpu_fwd(
        &self,
        _s1: &CpuStorage,
        _l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let Some((a, z)) = l2.contiguous_offsets() else {
            candle_core::bail!("checkpointed layers: the output is not contiguous");
        };
        let out = match s2 {
            CpuStorage::F32(v) => CpuStorage::F32(v[a..z].to_vec()),
            CpuStorage::BF16(v) => CpuStorage::BF16(v[a..z].to_vec()),
            CpuStorage::F16(v) => CpuStorage::F16(v[a..z].to_vec()),
            CpuStorage::F64(v) => CpuStorage::F64(v[a..z].to_vec()),
            _ => candle_core::bail!("checkpointed layers: a float output is expected"),
        };
        Ok((out, l2.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        _s1: &candle_core::CudaStorage,
        _l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        use candle_core::backend::BackendStorage;
        // The output is a fresh residual sum: contiguous from offset 0, so a clone is a copy.
        if !l2.is_contiguous() || l2.start_offset() != 0 {
            candle_core::bail!("checkpointed layers: the output is not a fresh contiguous tensor");
        }
        Ok((s2.try_clone(l2)?, l2.shape().clone()))
    }

    fn bwd(
        &self,
        _arg1: &Tensor,
        _arg2: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let before = self.lora_state.as_ref().map(|s| s.snapshot());
        let result = self.recompute(grad_res);
        if let (Some(s), Some(b)) = (&self.lora_state, before) {
            s.restore(b);
        }
        let (g, store) = result.map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        let mut slot = self.grads.lock().unwrap_or_else(|e| e.into_inner());
        match slot.as_mut() {
            Some(acc) => acc.extend(store)?,
            None => *slot = Some(store),
        }
        Ok((Some(g), None))
    }
}

impl Checkpointed {
    /// Walks the layers in reverse: returns the gradient of the first layer's input and the
    /// weights' gradients.
    fn recompute(&self, grad_out: &Tensor) -> Result<(Tensor, GradStore)> {
        let mut store = GradStore::default();
        let mut g = grad_out.clone();
        for (i, layer) in self.layers.iter().skip(self.start).enumerate().rev() {
            if let (Some(s), Some(snap)) = (&self.lora_state, self.states[i]) {
                s.restore(snap);
            }
            let input = Var::from_tensor(&self.inputs[i])?;
            let x = input.as_tensor();
            let (b, t, _) = x.dims3()?;
            let y = layer_forward(
                &self.cfg, layer, x, &self.cos, &self.sin, &self.mask, None, b, t, true,
            )?;
            // d/dy of sum(y * g) is g: backward of this scalar is backward of the layer at g.
            let grads = (y * &g)?.sum_all()?.backward()?;
            for w in layer.variables() {
                if let Some(gw) = grads.get(w) {
                    store.insert(w, gw.clone());
                }
            }
            g = match grads.get(x) {
                Some(gx) => gx.clone(),
                None => x.zeros_like()?,
            };
        }
        Ok((g, store))
    }
}

#[allow(clippy::too_many_arguments)]
fn attention(
    cfg: &TextConfig,
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
        cfg.num_attention_heads,
        cfg.num_key_value_heads,
        cfg.head_dim,
    );
    let rep = nh / nkv;
    let heads = |y: Tensor, n: usize| -> Result<Tensor> {
        Ok(y.reshape((b, t, n, hd))?.transpose(1, 2)?.contiguous()?)
    };
    // Qwen3's q/k norms act on each head's vector, before the rotary.
    let normed = |y: Tensor, n: &Option<Tensor>| -> Result<Tensor> {
        match n {
            Some(w) => Ok(
                ops::rms_norm(&y.reshape((b, t, (), hd))?, w, cfg.rms_norm_eps, grad)?
                    .reshape((b, t, ()))?,
            ),
            None => Ok(y),
        }
    };
    let q = heads(normed(layer.q.forward(x, grad)?, &layer.q_norm)?, nh)?;
    let k = heads(normed(layer.k.forward(x, grad)?, &layer.k_norm)?, nkv)?;
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

/// DeepStack (Qwen3-VL): visual features from intermediate vision layers, one `(n_visual, H)`
/// tensor per decoder layer from the first, added to that layer's output at the image-token
/// positions (in order of appearance).
pub struct DeepStack {
    /// One per decoder layer from layer 0.
    pub features: Vec<Tensor>,
    /// For each of the batch's `B * T` positions, its row in a feature tensor, or `n_visual`
    /// (an appended zero row) for a text position.
    pick: Tensor,
    batch: usize,
    len: usize,
}

impl DeepStack {
    /// `visual[b][t]` marks the image-token positions; their count must equal the features' rows.
    pub fn new(features: Vec<Tensor>, visual: &[Vec<bool>]) -> Result<DeepStack> {
        let batch = visual.len();
        let len = visual.first().map_or(0, Vec::len);
        let rows = match features.first() {
            Some(f) => f.dim(0)?,
            None => 0,
        };
        let mut pick = Vec::with_capacity(batch * len);
        let mut k = 0u32;
        for row in visual {
            for &v in row {
                if v {
                    pick.push(k);
                    k += 1;
                } else {
                    pick.push(rows as u32);
                }
            }
        }
        if k as usize != rows {
            return Err(crate::error::ModelError::invalid(format!(
                "DeepStack: {k} image positions but {rows} feature rows"
            )));
        }
        let dev = match features.first() {
            Some(f) => f.device().clone(),
            None => Device::Cpu,
        };
        Ok(DeepStack {
            features,
            pick: Tensor::from_vec(pick, batch * len, &dev)?,
            batch,
            len,
        })
    }

    /// `h + features[layer]` at the image positions (differentiable in both).
    fn add_to(&self, h: &Tensor, layer: usize) -> Result<Tensor> {
        let f = &self.features[layer];
        let hid = h.dim(2)?;
        let zero = Tensor::zeros((1, hid), f.dtype(), f.device())?;
        let placed = Tensor::cat(&[f, &zero], 0)?
            .index_select(&self.pick, 0)?
            .reshape((self.batch, self.len, hid))?
            .to_dtype(h.dtype())?;
        Ok((h + placed)?)
    }
}

impl Decoder {
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
    // The lowest finite value of the mask's dtype: f32::MIN rounds to -inf in bf16, and a fully
    // masked row of -inf gives a NaN softmax.
    let neg = match dtype {
        DType::BF16 => half::bf16::MIN.to_f32(),
        DType::F16 => half::f16::MIN.to_f32(),
        _ => f32::MIN,
    };
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
