//! The memory plan of a GRPO run, from the model's `config.json` and the run's `TrainConfig`
//! alone: how many parameters there are and which train, and how many bytes the weights,
//! gradients, optimizer state, reference model, training activations and rollout KV cache take,
//! so a user can tell before a download which GPU a run needs (`mixed-r1 plan`,
//! `mixed-r1 train --dry-run`).
//!
//! # Parameters
//! Counted exactly from the shapes the model crate loads ([`mixed_r1_model::model::param_specs`]:
//! the same list `Model::random` allocates and `Model::load` checks), so a tied head is counted
//! once. LoRA adds `rank * (in + out)` per adapted projection, on exactly the modules
//! `LoraConfig::targets_module` selects (the rule `Model::add_lora` applies).
//!
//! # Bytes (`b` = bytes of the working dtype: 4 for f32, 2 for bf16 / f16)
//! - weights: `(all params + adapters) * b`.
//! - master weights: half precision keeps an f32 copy of every *trainable* weight
//!   (`mixed_r1_model::mixed`): `trainable * 4`; none under f32.
//! - gradients: backward returns `trainable * b`; half precision casts them to f32 sums
//!   (`trainable * 4` more); f32 with more than one micro-batch holds the running sum next to the
//!   new micro-batch's gradients (`2 * trainable * 4`).
//! - optimizer: AdamW's two moments in f32: `trainable * 8`.
//! - reference: with `beta > 0` full fine-tuning keeps a frozen copy (`all params * b`); LoRA
//!   uses the same weights with the adapters off (0).
//! - KV cache of the rollout: every completion of a step is generated in one batch, with room
//!   reserved for prompt + completion: `prompts * G * (P + C) * layers * 2 * kv_heads *
//!   head_dim * b`. The prefill adds a transient of one layer's attention scores and probabilities
//!   (`2 * n * heads * P^2 * b`, eager attention) plus its MLP (`3 * n * P * intermediate * b`).
//!
//! # Activations of the training forward (per micro-batch of `m` sequences of `T = P + C`)
//! Candle's autograd keeps every intermediate tensor that a later op reads until backward is
//! done, so the model counts the tensors the differentiable forward (`decoder.rs`, `ops.rs`)
//! creates, per token and layer, in units of `b` unless marked f32:
//! - two RMSNorms, each `3h` f32 (square, normalised, scaled; half precision normalises in f32
//!   and adds `2h` for the casts back);
//! - q/k/v projections `(q + 2kv)` for the matmul, again for the bias add (Qwen), again for the
//!   head-major copy; rotary on q and k `4.5 * (q + kv)` (two products, the negated half, the
//!   concatenation, the sum);
//! - attention: no flash attention, so per sequence `6 * heads * T^2` (scores, scaled, masked,
//!   minus max, exp, normalised), plus `2q` for the weighted values and their copy;
//! - output projection `h`, residual `h`; SwiGLU `4 * intermediate` (gate, silu, up, product),
//!   down `h`, residual `h`;
//! - LoRA on a projection `in -> out`: `rank + 3 * out` (the low-rank product, its up-projection,
//!   the scaled delta, the sum) (+ `2 * in` with dropout).
//!
//! Once per sequence: the embeddings `T * h`, the `T^2` mask, the final norm, the head input
//! `C * h` and the logits of the completion positions `C * V` (plus an f32 copy `C * V * 4`
//! under half precision: the log-prob is taken in f32).
//!
//! With gradient checkpointing only each layer's input (`T * h` per layer) is kept, and one
//! layer's activations exist at a time while backward recomputes it.
//!
//! Backward adds a working set of the larger of: the logits' gradient (`m * C * V * 4`, plus
//! `m * C * V * b` under half precision) or one layer's activation gradients (about one layer's
//! activations). With `beta > 0` the reference's no-grad forward of the same micro-batch runs
//! while the policy's activations are held: its logits plus one layer's attention and MLP.
//!
//! The vision tower's activations count only when it trains (`freeze_vision = false` or LoRA
//! on it), with `image_tokens` merged tokens per prompt (`merge^2` patches each); its windowed
//! blocks attend over `(window / patch)^2` patches, its full blocks over the whole image.
//!
//! # Peak
//! `persistent = weights + masters + optimizer + reference`;
//! `rollout = persistent + KV cache + prefill transient`;
//! `training = persistent + gradients + activations + max(backward working set, reference
//! forward)`; peak = the larger. A GPU size fits when the peak is at most
//! [`USABLE_FRACTION`] of it (the rest: CUDA context, allocator fragmentation).
//!
//! This is a model of this crate's forward, not a measurement: the README compares it with the
//! peak RSS of real CPU steps.

use crate::config::TrainConfig;
use mixed_r1_model::config::{ModelConfig, VisionConfig};
use mixed_r1_model::lora::{is_adapter_tensor, LoraConfig};
use serde::Serialize;

/// GPU memory sizes (GiB) the plan reports a fit for.
pub const GPU_SIZES_GB: [u32; 5] = [24, 40, 48, 80, 141];

/// Share of a GPU's memory a run may plan to use.
pub const USABLE_FRACTION: f64 = 0.9;

const GIB: f64 = (1u64 << 30) as f64;

/// The working dtype of weights and activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    F32,
    Bf16,
    F16,
}

impl Precision {
    /// `model.dtype`'s names.
    pub fn parse(name: &str) -> Option<Precision> {
        match name {
            "f32" => Some(Precision::F32),
            "bf16" => Some(Precision::Bf16),
            "f16" => Some(Precision::F16),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
            Precision::F16 => "f16",
        }
    }
    pub fn bytes(self) -> u64 {
        match self {
            Precision::F32 => 4,
            Precision::Bf16 | Precision::F16 => 2,
        }
    }
    fn half(self) -> bool {
        self != Precision::F32
    }
}

/// Exact parameter counts of a config (and of its adapters, when LoRA is on).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParamCounts {
    /// The decoder: embeddings, layers, final norm, untied head.
    pub text: u64,
    /// The vision tower with its merger (0 for text models).
    pub vision: u64,
    pub total: u64,
    /// LoRA adapter parameters on the decoder / the vision tower.
    pub lora_text: u64,
    pub lora_vision: u64,
    /// Number of adapted projections.
    pub lora_modules: usize,
}

impl ParamCounts {
    pub fn lora(&self) -> u64 {
        self.lora_text + self.lora_vision
    }
}

/// Counts every weight the model crate would allocate for `cfg`, and the adapters `lora` adds.
pub fn param_counts(cfg: &ModelConfig, lora: Option<&LoraConfig>) -> ParamCounts {
    let mut c = ParamCounts {
        text: 0,
        vision: 0,
        total: 0,
        lora_text: 0,
        lora_vision: 0,
        lora_modules: 0,
    };
    for (name, shape, _) in mixed_r1_model::model::param_specs(cfg) {
        let n: u64 = shape.iter().map(|&d| d as u64).product();
        let vision = name.starts_with("visual.");
        if vision {
            c.vision += n;
        } else {
            c.text += n;
        }
        // The projections `Model::adaptable_modules` offers: 2-D weights of the blocks.
        let Some(lora) = lora.filter(|l| l.enabled()) else {
            continue;
        };
        let Some(module) = name.strip_suffix(".weight") else {
            continue;
        };
        let block = module.starts_with("model.layers.") || module.starts_with("visual.blocks.");
        if let ([out, inp], true) = (shape.as_slice(), block) {
            if !is_adapter_tensor(&name) && lora.targets_module(module) {
                let a = lora.rank as u64 * (*out as u64 + *inp as u64);
                if vision {
                    c.lora_vision += a;
                } else {
                    c.lora_text += a;
                }
                c.lora_modules += 1;
            }
        }
    }
    c.total = c.text + c.vision;
    c
}

/// What of a run's config shapes its memory.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunShape {
    pub batch_prompts: usize,
    pub group_size: usize,
    pub grad_accum: usize,
    pub max_prompt_len: usize,
    pub max_completion_len: usize,
    pub beta: f64,
    pub freeze_vision: bool,
    /// Merged image tokens per prompt (part of `max_prompt_len`); only the vision tower's own
    /// activations depend on it.
    pub image_tokens: usize,
}

impl RunShape {
    pub fn from_config(cfg: &TrainConfig, image_tokens: usize) -> RunShape {
        RunShape {
            batch_prompts: cfg.batch_prompts,
            group_size: cfg.group_size,
            grad_accum: cfg.grad_accum,
            max_prompt_len: cfg.max_prompt_len,
            max_completion_len: cfg.max_completion_len,
            beta: cfg.beta,
            freeze_vision: cfg.freeze_vision,
            image_tokens,
        }
    }
    /// Completions per step (all generated in one batch).
    pub fn sequences(&self) -> usize {
        self.batch_prompts * self.group_size
    }
    /// Sequences per micro-batch, as the trainer splits them.
    pub fn micro_batch(&self) -> usize {
        let n = self.sequences().max(1);
        n.div_ceil(self.grad_accum.clamp(1, n))
    }
    pub fn micro_batches(&self) -> usize {
        let n = self.sequences().max(1);
        n.div_ceil(self.micro_batch())
    }
    /// Tokens of one sequence: the longest prompt plus the longest completion.
    pub fn seq_len(&self) -> usize {
        self.max_prompt_len + self.max_completion_len
    }
}

/// One way to run: dtype, LoRA or full, checkpointing or not.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scenario {
    pub name: String,
    pub dtype: Precision,
    /// LoRA settings when only adapters train; `None` = full fine-tuning.
    pub lora: Option<LoraConfig>,
    pub gradient_checkpointing: bool,
}

/// The five the README tabulates: full f32, full bf16, bf16 + checkpointing, LoRA bf16, LoRA bf16
/// + checkpointing (`lora` gives the adapters' rank and targets).
pub fn standard_scenarios(lora: &LoraConfig) -> Vec<Scenario> {
    let s = |name: &str, dtype, lora: Option<&LoraConfig>, ckpt| Scenario {
        name: name.to_string(),
        dtype,
        lora: lora.cloned(),
        gradient_checkpointing: ckpt,
    };
    vec![
        s("full f32", Precision::F32, None, false),
        s("full bf16", Precision::Bf16, None, false),
        s("full bf16+ckpt", Precision::Bf16, None, true),
        s("lora bf16", Precision::Bf16, Some(lora), false),
        s("lora bf16+ckpt", Precision::Bf16, Some(lora), true),
    ]
}

/// Bytes of each part, and the peaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Memory {
    pub weights: u64,
    pub master_weights: u64,
    pub gradients: u64,
    pub optimizer: u64,
    pub reference: u64,
    /// Saved for backward over one micro-batch, logits excluded.
    pub activations: u64,
    /// The completion logits (and their f32 copy) of one micro-batch.
    pub logits: u64,
    /// Backward's working set, or the reference forward's, whichever is larger.
    pub backward_transient: u64,
    pub kv_cache: u64,
    pub prefill_transient: u64,
    pub persistent: u64,
    pub rollout_peak: u64,
    pub training_peak: u64,
    pub peak: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GpuFit {
    pub gb: u32,
    pub fits: bool,
}

/// The plan of one scenario.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub scenario: Scenario,
    pub params: ParamCounts,
    pub trainable: u64,
    pub micro_batch: usize,
    pub memory: Memory,
    pub fits: Vec<GpuFit>,
}

impl Plan {
    /// The smallest of [`GPU_SIZES_GB`] that fits, if any.
    pub fn smallest_gpu(&self) -> Option<u32> {
        self.fits.iter().find(|f| f.fits).map(|f| f.gb)
    }
}

/// One transformer layer's shape, for the activation count.
struct LayerShape {
    h: u64,
    q: u64,
    kv: u64,
    heads: u64,
    inter: u64,
    qkv_bias: bool,
    mlp_bias: bool,
    /// `(in, out)` of each adapted projection.
    adapted: Vec<(u64, u64)>,
}

/// Bytes of one RMSNorm's saved tensors per token (`x` of width `h`).
fn norm_bytes(h: u64, p: Precision) -> u64 {
    3 * h * 4 + if p.half() { 2 * h * p.bytes() } else { 0 }
}

/// Bytes per token of one layer's saved tensors, attention matrices excluded.
fn layer_token_bytes(l: &LayerShape, p: Precision, lora: Option<&LoraConfig>) -> u64 {
    let b = p.bytes();
    let qkv = l.q + 2 * l.kv;
    let mut elems = 0u64;
    elems += qkv * if l.qkv_bias { 3 } else { 2 }; // matmul, bias add, head-major copy
    elems += (9 * (l.q + l.kv)).div_ceil(2); // rotary on q and k
    elems += 2 * l.q; // weighted values and their token-major copy
    elems += 2 * l.h; // output projection, residual
    elems += 4 * l.inter + if l.mlp_bias { 3 * l.inter } else { 0 }; // gate, silu, up, product
    elems += 2 * l.h + if l.mlp_bias { l.h } else { 0 }; // down, residual
    if let Some(lora) = lora {
        let r = lora.rank as u64;
        for &(inp, out) in &l.adapted {
            elems += r + 3 * out;
            if lora.dropout > 0.0 {
                elems += 2 * inp;
            }
        }
    }
    elems * b + 2 * norm_bytes(l.h, p)
}

/// Bytes of one layer's attention matrices for one sequence attending over `span` keys per
/// query (`tokens` queries).
fn attention_bytes(heads: u64, tokens: u64, span: u64, p: Precision) -> u64 {
    6 * heads * tokens * span * p.bytes()
}

fn decoder_layer(cfg: &ModelConfig) -> LayerShape {
    let t = &cfg.text;
    LayerShape {
        h: t.hidden_size as u64,
        q: (t.num_attention_heads * t.head_dim) as u64,
        kv: (t.num_key_value_heads * t.head_dim) as u64,
        heads: t.num_attention_heads as u64,
        inter: t.intermediate_size as u64,
        qkv_bias: t.qkv_bias,
        mlp_bias: false,
        adapted: Vec::new(),
    }
}

/// `(in, out)` of every decoder projection `lora` adapts (all layers).
fn adapted_decoder_modules(cfg: &ModelConfig, lora: &LoraConfig) -> Vec<(u64, u64)> {
    mixed_r1_model::decoder::Decoder::param_specs(&cfg.text)
        .into_iter()
        .filter_map(|(name, shape, _)| {
            let module = name.strip_suffix(".weight")?.to_string();
            match shape.as_slice() {
                [out, inp]
                    if module.starts_with("model.layers.") && lora.targets_module(&module) =>
                {
                    Some((*inp as u64, *out as u64))
                }
                _ => None,
            }
        })
        .collect()
}

fn vision_block(v: &VisionConfig, lora: Option<&LoraConfig>) -> LayerShape {
    let (e, i) = (v.hidden_size as u64, v.intermediate_size as u64);
    let adapted = match lora {
        Some(l) if l.vision => vec![(e, 3 * e), (e, e), (e, i), (e, i), (i, e)],
        _ => Vec::new(),
    };
    LayerShape {
        h: e,
        q: e,
        kv: e,
        heads: v.num_heads as u64,
        inter: i,
        qkv_bias: true,
        mlp_bias: true,
        adapted,
    }
}

/// Saved activation bytes of the vision tower for `m` images of `image_tokens` merged tokens,
/// and one block's share (for checkpointing and the backward working set).
fn vision_activations(
    v: &VisionConfig,
    m: u64,
    image_tokens: u64,
    p: Precision,
    lora: Option<&LoraConfig>,
) -> (u64, u64) {
    let unit = (v.spatial_merge_size * v.spatial_merge_size) as u64;
    let patches = image_tokens * unit;
    if patches == 0 {
        return (0, 0);
    }
    let blk = vision_block(v, lora);
    let per_patch = layer_token_bytes(&blk, p, lora);
    let window = ((v.window_size / v.patch_size.max(1)).pow(2) as u64).clamp(1, patches);
    let mut total = 0u64;
    let mut largest = 0u64;
    for i in 0..v.depth {
        let span = if v.fullatt_block_indexes.contains(&i) {
            patches
        } else {
            window
        };
        let one = m * (patches * per_patch + attention_bytes(blk.heads, patches, span, p));
        total += one;
        largest = largest.max(one);
    }
    // Patch embedding and merger (norm, two projections, GELU).
    let e = v.hidden_size as u64;
    total += m * patches * (e * p.bytes() + norm_bytes(e, p));
    total += m * image_tokens * (3 * unit * e + v.out_hidden_size as u64) * p.bytes();
    (total, largest)
}

/// The memory plan of `run` under `scenario` for the model `cfg`.
pub fn plan(cfg: &ModelConfig, run: &RunShape, scenario: &Scenario) -> Plan {
    let p = scenario.dtype;
    let b = p.bytes();
    let lora = scenario.lora.as_ref().filter(|l| l.enabled());
    let params = param_counts(cfg, lora);
    let vision_trains = cfg.vision.is_some()
        && match lora {
            Some(l) => l.vision,
            None => !run.freeze_vision,
        };
    let trainable = match lora {
        Some(_) => params.lora(),
        None => params.text + if vision_trains { params.vision } else { 0 },
    };
    let t = &cfg.text;
    let layer = decoder_layer(cfg);
    let layers = t.num_hidden_layers as u64;
    let n = run.sequences() as u64;
    let m = run.micro_batch() as u64;
    let (pl, cl) = (run.max_prompt_len as u64, run.max_completion_len as u64);
    let seq = pl + cl;
    let (h, vocab) = (t.hidden_size as u64, t.vocab_size as u64);
    let kv = (t.num_key_value_heads * t.head_dim) as u64;
    let (heads, inter) = (layer.heads, layer.inter);

    let weights = (params.total + params.lora()) * b;
    let master_weights = if p.half() { trainable * 4 } else { 0 };
    let gradients = if p.half() {
        trainable * (b + 4)
    } else if run.micro_batches() > 1 {
        trainable * 8
    } else {
        trainable * 4
    };
    let optimizer = trainable * 8;
    let reference = if lora.is_none() && run.beta > 0.0 {
        params.total * b
    } else {
        0
    };

    // Training forward, one micro-batch.
    // LoRA's extra tensors over all layers (targets may name some layers only), per token.
    let lora_all_layers = match lora {
        Some(l) => {
            let shape = LayerShape {
                adapted: adapted_decoder_modules(cfg, l),
                ..decoder_layer(cfg)
            };
            layer_token_bytes(&shape, p, Some(l)) - layer_token_bytes(&layer, p, None)
        }
        None => 0,
    };
    let one_layer = m
        * (seq * (layer_token_bytes(&layer, p, None) + lora_all_layers / layers.max(1))
            + attention_bytes(heads, seq, seq, p));
    let layer_inputs = layers * m * seq * h * b;
    let once = m
        * (seq * h * b // embeddings
        + seq * seq * b // mask
        + seq * norm_bytes(h, p) // final norm
        + cl * h * b); // head input
    let (vision_total, vision_block) = match (&cfg.vision, vision_trains) {
        (Some(v), true) => vision_activations(v, m, run.image_tokens as u64, p, lora),
        _ => (0, 0),
    };
    let activations = if scenario.gradient_checkpointing {
        let vision_ckpt = match &cfg.vision {
            Some(v) if vision_total > 0 => {
                let patches = run.image_tokens as u64 * (v.spatial_merge_size as u64).pow(2);
                v.depth as u64 * m * patches * v.hidden_size as u64 * b + vision_block
            }
            _ => 0,
        };
        layer_inputs + one_layer + once + vision_ckpt
    } else {
        layers
            * m
            * (seq * layer_token_bytes(&layer, p, None) + attention_bytes(heads, seq, seq, p))
            + m * seq * lora_all_layers
            + once
            + vision_total
    };
    let logit_elems = m * cl * vocab;
    let logits = logit_elems * b + if p.half() { logit_elems * 4 } else { 0 };
    let logits_grad = logit_elems * 4 + if p.half() { logit_elems * b } else { 0 };
    let backward = logits_grad.max(one_layer).max(vision_block);
    let needs_ref_forward = run.beta > 0.0;
    let ref_forward = if needs_ref_forward {
        logits + m * (2 * heads * seq * seq + 3 * seq * inter) * b
    } else {
        0
    };
    let backward_transient = backward.max(ref_forward);

    // Rollout.
    let kv_cache = n * seq * layers * 2 * kv * b;
    let prefill_transient = n * (2 * heads * pl * pl + 3 * pl * inter) * b + n * vocab * 4;

    let persistent = weights + master_weights + optimizer + reference;
    let rollout_peak = persistent + kv_cache + prefill_transient;
    let training_peak = persistent + gradients + activations + logits + backward_transient;
    let peak = rollout_peak.max(training_peak);
    let fits = GPU_SIZES_GB
        .iter()
        .map(|&gb| GpuFit {
            gb,
            fits: peak as f64 <= gb as f64 * GIB * USABLE_FRACTION,
        })
        .collect();
    Plan {
        scenario: scenario.clone(),
        params,
        trainable,
        micro_batch: m as usize,
        memory: Memory {
            weights,
            master_weights,
            gradients,
            optimizer,
            reference,
            activations,
            logits,
            backward_transient,
            kv_cache,
            prefill_transient,
            persistent,
            rollout_peak,
            training_peak,
            peak,
        },
        fits,
    }
}

/// Bytes as GiB with two decimals.
pub fn gib(bytes: u64) -> String {
    format!("{:.2}", bytes as f64 / GIB)
}

/// A count with thousands separators.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// One row of the table: its label and how a plan fills its cell.
type Row = (&'static str, Box<dyn Fn(&Plan) -> String>);

/// The plans as a text table: one column per scenario, one row per part, then the GPU sizes.
pub fn render_table(plans: &[Plan]) -> String {
    let rows: Vec<Row> = vec![
        ("trainable params", Box::new(|p| thousands(p.trainable))),
        (
            "micro-batch (seqs)",
            Box::new(|p| p.micro_batch.to_string()),
        ),
        ("weights", Box::new(|p| gib(p.memory.weights))),
        (
            "f32 master weights",
            Box::new(|p| gib(p.memory.master_weights)),
        ),
        ("gradients", Box::new(|p| gib(p.memory.gradients))),
        ("AdamW state (f32)", Box::new(|p| gib(p.memory.optimizer))),
        ("KL reference", Box::new(|p| gib(p.memory.reference))),
        ("activations", Box::new(|p| gib(p.memory.activations))),
        ("logits", Box::new(|p| gib(p.memory.logits))),
        (
            "backward / ref working set",
            Box::new(|p| gib(p.memory.backward_transient)),
        ),
        ("rollout KV cache", Box::new(|p| gib(p.memory.kv_cache))),
        (
            "rollout prefill",
            Box::new(|p| gib(p.memory.prefill_transient)),
        ),
        ("peak: rollout", Box::new(|p| gib(p.memory.rollout_peak))),
        ("peak: training", Box::new(|p| gib(p.memory.training_peak))),
        ("PEAK (GiB)", Box::new(|p| gib(p.memory.peak))),
    ];
    let mut table: Vec<Vec<String>> = Vec::new();
    let mut header = vec![String::new()];
    header.extend(plans.iter().map(|p| p.scenario.name.clone()));
    table.push(header);
    for (label, f) in &rows {
        let mut r = vec![label.to_string()];
        r.extend(plans.iter().map(f));
        table.push(r);
    }
    for (i, gb) in GPU_SIZES_GB.iter().enumerate() {
        let mut r = vec![format!("fits {gb} GB")];
        r.extend(
            plans
                .iter()
                .map(|p| if p.fits[i].fits { "yes" } else { "no" }.to_string()),
        );
        table.push(r);
    }
    let cols = table[0].len();
    let widths: Vec<usize> = (0..cols)
        .map(|c| table.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (ri, r) in table.iter().enumerate() {
        let cells: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(c, s)| {
                if c == 0 {
                    format!("{s:<w$}", w = widths[c])
                } else {
                    format!("{s:>w$}", w = widths[c])
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
        if ri == 0 {
            let total: usize = widths.iter().sum::<usize>() + 2 * (cols - 1);
            out.push_str(&"-".repeat(total));
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(3_754_622_976), "3,754,622,976");
    }

    #[test]
    fn micro_batches_split_as_the_trainer_does() {
        let mut r = RunShape {
            batch_prompts: 3,
            group_size: 4,
            grad_accum: 5,
            max_prompt_len: 8,
            max_completion_len: 8,
            beta: 0.0,
            freeze_vision: true,
            image_tokens: 0,
        };
        // 12 sequences in 5 requested micro-batches: ceil(12 / 5) = 3 each, 4 micro-batches.
        assert_eq!(r.micro_batch(), 3);
        assert_eq!(r.micro_batches(), 4);
        r.grad_accum = 100;
        assert_eq!(r.micro_batch(), 1);
        assert_eq!(r.micro_batches(), 12);
    }
}
