//! LoRA: low-rank adapters on the projections of the decoder (and, optionally, the vision
//! tower), saved and loaded in PEFT's layout.
//!
//! An adapted projection computes `x W^T + b + s * (drop(x) A^T) B^T` with `A: (r, in)`,
//! `B: (out, r)` and `s = alpha / r` (`alpha / sqrt(r)` with rsLoRA), exactly as PEFT's
//! `lora.Linear` does. `A` starts Kaiming-uniform and `B` at zero (PEFT's default), so a fresh
//! adapter leaves the model's outputs unchanged.
//!
//! The adapters live in the same [`Params`] store as the base weights, under the module's name
//! plus `.lora_A.weight` / `.lora_B.weight`; adding them freezes every base weight, so the
//! optimiser only ever sees adapter tensors. Switching the adapters off ([`LoraState`]) gives
//! the base model back without a second copy of its weights: that is the reference policy of the
//! KL term.
//!
//! On disk: `adapter_config.json` + `adapter_model.safetensors` with PEFT's tensor names
//! (`base_model.model.<module>.lora_A.weight`), which `peft.PeftModel.from_pretrained` loads
//! onto the transformers model.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use candle_core::{DType, Tensor};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};
use crate::params::Params;

/// The file names of a PEFT adapter folder (`adapter_config.json` marks one).
pub const ADAPTER_CONFIG: &str = "adapter_config.json";
pub const ADAPTER_WEIGHTS: &str = "adapter_model.safetensors";

/// The projections PEFT users target on Qwen2 / Llama: attention and MLP of every layer.
pub const DEFAULT_TARGETS: [&str; 7] = [
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
];

/// The vision tower's projections (Qwen2.5-VL block names), adapted when `vision = true`.
pub const VISION_TARGETS: [&str; 7] = [
    "qkv",
    "proj",
    "gate_proj",
    "up_proj",
    "down_proj",
    // Qwen3-VL's vision MLP.
    "linear_fc1",
    "linear_fc2",
];

/// The `[lora]` section of a run: which modules get adapters, and their shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoraConfig {
    /// `r`, the adapter rank (0 = no LoRA: full fine-tuning).
    pub rank: usize,
    /// `lora_alpha`: the update is scaled by `alpha / rank`.
    pub alpha: f64,
    /// Dropout on the adapter's input while training (0 = off, the RL default).
    pub dropout: f64,
    /// Module names, as PEFT's `target_modules` list: `q_proj` matches every module whose
    /// name is or ends in `.q_proj`; a name with `*` is a glob over the whole dotted name
    /// (`model.layers.*.self_attn.q_proj`).
    pub targets: Vec<String>,
    /// Also adapt the vision tower's blocks (`attn.qkv`, `attn.proj`, the MLP).
    pub vision: bool,
    /// rsLoRA: scale by `alpha / sqrt(rank)`.
    pub rslora: bool,
    /// Seed of the `A` initialisation.
    pub seed: u64,
}

impl Default for LoraConfig {
    fn default() -> Self {
        LoraConfig {
            rank: 0,
            alpha: 16.0,
            dropout: 0.0,
            targets: DEFAULT_TARGETS.iter().map(|s| s.to_string()).collect(),
            vision: false,
            rslora: false,
            seed: 0,
        }
    }
}

impl LoraConfig {
    pub fn enabled(&self) -> bool {
        self.rank > 0
    }

    /// The factor PEFT multiplies the low-rank product by.
    pub fn scaling(&self) -> f64 {
        if self.rslora {
            self.alpha / (self.rank as f64).sqrt()
        } else {
            self.alpha / self.rank as f64
        }
    }

    /// Rejects settings no run can use; the message names the key.
    pub fn validate(&self) -> Result<()> {
        if !self.enabled() {
            return Ok(());
        }
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return Err(ModelError::invalid(format!(
                "lora.alpha: must be a positive number, got {}",
                self.alpha
            )));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(ModelError::invalid(format!(
                "lora.dropout: must be in [0, 1), got {}",
                self.dropout
            )));
        }
        if self.targets.is_empty() || self.targets.iter().any(|t| t.trim().is_empty()) {
            return Err(ModelError::invalid(
                "lora.targets: needs at least one module name (e.g. [\"q_proj\", \"v_proj\"])",
            ));
        }
        Ok(())
    }

    /// Whether the module `name` (our canonical dotted name) gets an adapter.
    pub fn targets_module(&self, name: &str) -> bool {
        let is_vision = name.starts_with("visual.");
        if is_vision && !self.vision {
            return false;
        }
        if is_vision && !name.starts_with("visual.blocks.") {
            return false;
        }
        let targets: Vec<&str> = if is_vision {
            VISION_TARGETS.to_vec()
        } else {
            self.targets.iter().map(String::as_str).collect()
        };
        targets.iter().any(|t| module_matches(name, t))
    }
}

/// PEFT's list matching (`name == t` or `name` ends in `.t`), or a `*` glob over the whole name.
pub fn module_matches(name: &str, target: &str) -> bool {
    if target.contains('*') {
        return glob(name.as_bytes(), target.as_bytes());
    }
    name == target
        || (name.len() > target.len()
            && name.ends_with(target)
            && name.as_bytes()[name.len() - target.len() - 1] == b'.')
}

/// `*` matches any run of characters (dots included).
fn glob(s: &[u8], p: &[u8]) -> bool {
    let (mut si, mut pi) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while si < s.len() {
        if pi < p.len() && p[pi] != b'*' && p[pi] == s[si] {
            si += 1;
            pi += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// Names of the adapter tensors of a module.
pub fn a_name(module: &str) -> String {
    format!("{module}.lora_A.weight")
}
pub fn b_name(module: &str) -> String {
    format!("{module}.lora_B.weight")
}

/// Whether a weight name is an adapter tensor.
pub fn is_adapter_tensor(name: &str) -> bool {
    name.ends_with(".lora_A.weight") || name.ends_with(".lora_B.weight")
}

/// What the layers consult at run time: adapters on or off, and the dropout stream. Shared by
/// the decoder and the vision tower of one model.
#[derive(Debug, Default)]
pub struct LoraState {
    disabled: AtomicBool,
    dropout_seed: AtomicU64,
    dropout_calls: AtomicU64,
}

impl LoraState {
    pub fn enabled(&self) -> bool {
        !self.disabled.load(Ordering::Relaxed)
    }
    pub fn set_enabled(&self, on: bool) {
        self.disabled.store(!on, Ordering::Relaxed)
    }
    /// Restarts the dropout masks from `seed` (the trainer sets one per micro-batch, so a
    /// resumed run draws the same masks).
    pub fn reseed_dropout(&self, seed: u64) {
        self.dropout_seed.store(seed, Ordering::Relaxed);
        self.dropout_calls.store(0, Ordering::Relaxed);
    }
    /// The adapters' switch and the dropout stream's position: gradient checkpointing takes
    /// one before each layer's forward and restores it to recompute that layer in backward
    /// with the same dropout masks.
    pub(crate) fn snapshot(&self) -> (bool, u64, u64) {
        (
            self.enabled(),
            self.dropout_seed.load(Ordering::Relaxed),
            self.dropout_calls.load(Ordering::Relaxed),
        )
    }
    pub(crate) fn restore(&self, (on, seed, calls): (bool, u64, u64)) {
        self.set_enabled(on);
        self.dropout_seed.store(seed, Ordering::Relaxed);
        self.dropout_calls.store(calls, Ordering::Relaxed);
    }
    fn next_dropout_seed(&self) -> u64 {
        let call = self.dropout_calls.fetch_add(1, Ordering::Relaxed);
        self.dropout_seed.load(Ordering::Relaxed) ^ call.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
}

/// The adapters of a model as the layers see them.
#[derive(Debug, Clone)]
pub struct LoraRuntime {
    pub config: LoraConfig,
    pub state: Arc<LoraState>,
}

impl LoraRuntime {
    pub fn new(config: LoraConfig) -> LoraRuntime {
        LoraRuntime {
            config,
            state: Arc::new(LoraState::default()),
        }
    }

    /// The adapter of `module`, if the store holds one.
    pub fn adapter(&self, params: &Params, module: &str) -> Result<Option<Adapter>> {
        let (an, bn) = (a_name(module), b_name(module));
        match (params.get_opt(&an)?, params.get_opt(&bn)?) {
            (Some(a), Some(b)) => Ok(Some(Adapter {
                a,
                b,
                scale: self.config.scaling(),
                dropout: self.config.dropout,
                state: self.state.clone(),
            })),
            (None, None) => Ok(None),
            _ => Err(ModelError::Tensor {
                name: module.to_string(),
                msg: "has only one of lora_A / lora_B".into(),
            }),
        }
    }
}

/// One module's adapter: `scale * B (A drop(x))`.
#[derive(Debug, Clone)]
pub struct Adapter {
    a: Tensor,
    b: Tensor,
    scale: f64,
    dropout: f64,
    state: Arc<LoraState>,
}

impl Adapter {
    /// `A` and `B`, as the layers hold them.
    pub(crate) fn tensors(&self) -> [&Tensor; 2] {
        [&self.a, &self.b]
    }

    /// The adapter's contribution to `x`'s projection, or `None` while adapters are off.
    /// Dropout applies only when a gradient is taken (training), never to rollouts.
    pub fn delta(&self, x: &Tensor, grad: bool) -> Result<Option<Tensor>> {
        if !self.state.enabled() {
            return Ok(None);
        }
        let input = if grad && self.dropout > 0.0 {
            self.dropout_mask(x)?
        } else {
            x.clone()
        };
        let lin = |x: &Tensor, w: &Tensor| {
            if grad {
                crate::ops::linear(x, w, None)
            } else {
                crate::ops::linear_no_grad(x, w, None)
            }
        };
        let (a, b) = if grad {
            (self.a.clone(), self.b.clone())
        } else {
            (self.a.detach(), self.b.detach())
        };
        let low = lin(&input, &a)?;
        Ok(Some((lin(&low, &b)? * self.scale)?))
    }

    /// Inverted dropout with a seeded mask (reproducible, so resumed runs match).
    fn dropout_mask(&self, x: &Tensor) -> Result<Tensor> {
        let p = self.dropout;
        let mut rng = ChaCha8Rng::seed_from_u64(self.state.next_dropout_seed());
        let keep = (1.0 / (1.0 - p)) as f32;
        let mask: Vec<f32> = (0..x.elem_count())
            .map(|_| if rng.random::<f64>() < p { 0.0 } else { keep })
            .collect();
        let m = Tensor::from_vec(mask, x.shape(), x.device())?.to_dtype(x.dtype())?;
        Ok((x * m)?)
    }
}

/// Adds `delta` (if any) to a projection's output.
pub fn add_delta(y: Tensor, delta: Option<Tensor>) -> Result<Tensor> {
    Ok(match delta {
        Some(d) => (y + d)?,
        None => y,
    })
}

/// A projection with an optional adapter: what the layers hold for each adaptable linear.
#[derive(Debug, Clone)]
pub struct Proj {
    pub w: Tensor,
    pub b: Option<Tensor>,
    pub lora: Option<Adapter>,
}

impl Proj {
    pub fn forward(&self, x: &Tensor, grad: bool) -> Result<Tensor> {
        let y = if grad {
            crate::ops::linear(x, &self.w, self.b.as_ref())?
        } else {
            crate::ops::linear_no_grad(x, &self.w, self.b.as_ref())?
        };
        match &self.lora {
            Some(ad) => add_delta(y, ad.delta(x, grad)?),
            None => Ok(y),
        }
    }
}

/// The peft release whose `adapter_config.json` layout we write (and test against).
pub const PEFT_LAYOUT_VERSION: &str = "0.21.2";

/// PEFT's `adapter_config.json`: every key peft 0.21.2 writes, in its order (sorted).
pub fn adapter_config_json(
    cfg: &LoraConfig,
    target_modules: serde_json::Value,
    base_model: Option<&str>,
) -> serde_json::Value {
    // peft writes an integral alpha as an integer; keep files diff-able against its own.
    let alpha = if cfg.alpha.fract() == 0.0 && cfg.alpha.abs() < 1e15 {
        serde_json::json!(cfg.alpha as i64)
    } else {
        serde_json::json!(cfg.alpha)
    };
    serde_json::json!({
        "alora_invocation_tokens": null,
        "alpha_pattern": {},
        "arrow_config": null,
        "auto_mapping": null,
        "base_model_name_or_path": base_model,
        "bias": "none",
        "corda_config": null,
        "ensure_weight_tying": false,
        "eva_config": null,
        "exclude_modules": null,
        "fan_in_fan_out": false,
        "inference_mode": true,
        "init_lora_weights": true,
        "kasa_config": null,
        "layer_replication": null,
        "layers_pattern": null,
        "layers_to_transform": null,
        "loftq_config": {},
        "lora_alpha": alpha,
        "lora_bias": false,
        "lora_dropout": cfg.dropout,
        "lora_ga_config": null,
        "megatron_config": null,
        "megatron_core": "megatron.core",
        "modules_to_save": null,
        "monteclora_config": null,
        "peft_type": "LORA",
        "peft_version": PEFT_LAYOUT_VERSION,
        "qalora_group_size": 16,
        "r": cfg.rank,
        "rank_pattern": {},
        "revision": null,
        "target_modules": target_modules,
        "target_parameters": null,
        "task_type": "CAUSAL_LM",
        "trainable_token_indices": null,
        "use_bdlora": null,
        "use_dora": false,
        "use_qalora": false,
        "use_rslora": cfg.rslora,
        "velora_config": null,
    })
}

/// Reads the parts of a PEFT `adapter_config.json` we can run; anything we cannot (DoRA, bias
/// training, per-module ranks) is an error that says so rather than a silently different model.
pub fn parse_adapter_config(path: &Path) -> Result<(LoraConfig, serde_json::Value)> {
    let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| ModelError::format(path, format!("not valid JSON: {e}")))?;
    let bad = |msg: String| ModelError::format(path, msg);
    let peft_type = v
        .get("peft_type")
        .and_then(|t| t.as_str())
        .unwrap_or("LORA");
    if peft_type != "LORA" {
        return Err(bad(format!(
            "peft_type {peft_type}: only LORA adapters are supported"
        )));
    }
    let r = v
        .get("r")
        .and_then(|r| r.as_u64())
        .ok_or_else(|| bad("no integer `r`".into()))? as usize;
    let alpha = v.get("lora_alpha").and_then(|a| a.as_f64()).unwrap_or(8.0);
    let flag = |k: &str| v.get(k).and_then(|x| x.as_bool()).unwrap_or(false);
    if flag("use_dora") {
        return Err(bad(
            "use_dora = true: DoRA adapters are not supported".into()
        ));
    }
    if flag("fan_in_fan_out") {
        return Err(bad(
            "fan_in_fan_out = true (Conv1D layers) is not supported".into(),
        ));
    }
    if let Some(b) = v.get("bias").and_then(|b| b.as_str()) {
        if b != "none" {
            return Err(bad(format!(
                "bias = \"{b}\": trained biases are not supported"
            )));
        }
    }
    for k in ["rank_pattern", "alpha_pattern"] {
        if v.get(k)
            .and_then(|p| p.as_object())
            .is_some_and(|o| !o.is_empty())
        {
            return Err(bad(format!(
                "{k}: per-module ranks / alphas are not supported"
            )));
        }
    }
    let targets = match v.get("target_modules") {
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    let cfg = LoraConfig {
        rank: r,
        alpha,
        dropout: v
            .get("lora_dropout")
            .and_then(|d| d.as_f64())
            .unwrap_or(0.0),
        targets,
        vision: false,
        rslora: flag("use_rslora"),
        seed: 0,
    };
    Ok((cfg, v))
}

/// Kaiming-uniform `A` (PEFT's `kaiming_uniform_(a=sqrt(5))`: bound `1/sqrt(in)`) and zero `B`.
pub fn init_adapter(
    out_dim: usize,
    in_dim: usize,
    rank: usize,
    rng: &mut ChaCha8Rng,
    dtype: DType,
    device: &candle_core::Device,
) -> Result<(Tensor, Tensor)> {
    let bound = 1.0 / (in_dim as f64).sqrt();
    let a: Vec<f32> = (0..rank * in_dim)
        .map(|_| ((rng.random::<f64>() * 2.0 - 1.0) * bound) as f32)
        .collect();
    let a = Tensor::from_vec(a, (rank, in_dim), device)?.to_dtype(dtype)?;
    let b = Tensor::zeros((out_dim, rank), dtype, device)?;
    Ok((a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peft_list_matching_is_by_dotted_suffix() {
        assert!(module_matches("model.layers.0.self_attn.q_proj", "q_proj"));
        assert!(module_matches(
            "model.layers.0.self_attn.q_proj",
            "self_attn.q_proj"
        ));
        assert!(!module_matches(
            "model.layers.0.self_attn.xq_proj",
            "q_proj"
        ));
        assert!(module_matches(
            "model.layers.11.mlp.up_proj",
            "model.layers.*.mlp.up_proj"
        ));
        assert!(!module_matches(
            "model.layers.11.mlp.up_proj",
            "model.layers.*.mlp.down_proj"
        ));
    }

    #[test]
    fn vision_modules_only_when_asked() {
        let mut c = LoraConfig {
            rank: 4,
            ..Default::default()
        };
        assert!(c.targets_module("model.layers.3.mlp.gate_proj"));
        assert!(!c.targets_module("visual.blocks.0.mlp.gate_proj"));
        c.vision = true;
        assert!(c.targets_module("visual.blocks.0.attn.qkv"));
        assert!(!c.targets_module("visual.merger.mlp.0"));
    }

    #[test]
    fn scaling_follows_peft() {
        let mut c = LoraConfig {
            rank: 4,
            alpha: 8.0,
            ..Default::default()
        };
        assert_eq!(c.scaling(), 2.0);
        c.rslora = true;
        assert_eq!(c.scaling(), 4.0);
    }

    #[test]
    fn bad_settings_name_the_key() {
        let c = LoraConfig {
            rank: 4,
            dropout: 1.0,
            ..Default::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("lora.dropout"));
        let c = LoraConfig {
            rank: 4,
            targets: vec![],
            ..Default::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("lora.targets"));
    }
}
