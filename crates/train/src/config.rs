//! `TrainConfig`: every GRPO knob in one TOML file (`train.toml`).
//!
//! Every key has a default and unknown keys are errors (a misspelt `bta = 0.0` must not silently
//! train with the default KL weight). [`TrainConfig::validate`] rejects out-of-range values with a
//! message that names the key. Top-level keys are the algorithm's; `[model]`, `[data]` and
//! `[reward]` (a `mixed_r1_reward::config::RewardConfig`, exactly `reward.toml`'s keys) are
//! sections. Example:
//!
//! ```toml
//! group_size = 8
//! batch_prompts = 16
//! beta = 0.0                # no KL term, no reference model
//! adv_estimator = "dr_grpo"
//! aggregation = "seq_mean_token_sum_norm"
//! eps_high = 0.28           # DAPO clip-higher
//! dynamic_sampling = true
//!
//! [model]
//! path = "models/Qwen2.5-VL-3B-Instruct"
//! [data]
//! train = "data/mixed/train.jsonl"
//! [reward]
//! format_weight = 0.5
//! [reward.format]
//! mode = "think_answer"
//! ```
//!
//! Relative `model.path`, `model.tokenizer`, `data.*` and `reward.bmas.*` paths in a file are
//! taken relative to the file's folder (so a config works from any working directory);
//! `output_dir` is relative to the working directory, like every trainer's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mixed_r1_grpo::advantage::{AdvantageConfig, AdvantageRegistry};
use mixed_r1_grpo::loss::{Aggregation, KlEstimator, LossConfig, PolicyLossRegistry};
use mixed_r1_grpo::optim::{AdamWConfig, LrSchedule, ScheduleKind};
use mixed_r1_grpo::{GrpoError, Result};
use mixed_r1_reward::config::RewardConfig;
use serde::{Deserialize, Serialize};

/// `[model]`: which policy to train. Exactly one of `path` and `tiny`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelSection {
    /// A Hugging Face model folder (config.json, *.safetensors, tokenizer.json) or a `.gguf`.
    pub path: Option<PathBuf>,
    /// A named tiny random-initialised config of the model crate (tests, demos).
    pub tiny: Option<String>,
    /// A tokenizer.json when the model folder has none (e.g. `tiny` or GGUF).
    pub tokenizer: Option<PathBuf>,
    /// `f32`, `bf16` or `f16`. In half precision the forward (rollouts and training) runs on
    /// half-precision weights and activations while the optimizer steps f32 master copies of
    /// the trainable weights; log-probs and the loss are taken in f32; checkpoints hold the f32
    /// masters (`torch_dtype = "float32"`). On a CPU, f32 is faster.
    pub dtype: String,
    /// `cpu` or `cuda` / `cuda:<n>`.
    pub device: String,
}

impl Default for ModelSection {
    fn default() -> Self {
        ModelSection {
            path: None,
            tiny: None,
            tokenizer: None,
            dtype: "f32".into(),
            device: "cpu".into(),
        }
    }
}

/// `[data]`: the training set (JSON Lines of the dataset schema, as `mixed-r1 data` writes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataSection {
    pub train: Option<PathBuf>,
    /// Shuffle prompts each epoch (seeded by `seed`).
    pub shuffle: bool,
}

impl Default for DataSection {
    fn default() -> Self {
        DataSection {
            train: None,
            shuffle: true,
        }
    }
}

/// `[lora]`: low-rank adapters instead of full fine-tuning (`rank = 0`, the default, is off).
/// Only the adapters train; the KL reference is the base model with the adapters switched off;
/// checkpoints hold the adapters in PEFT's layout. Same keys as PEFT's `LoraConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoraSection {
    /// `r` (0 = off).
    pub rank: usize,
    /// `lora_alpha`: updates are scaled by `alpha / rank`.
    pub alpha: f64,
    /// `lora_dropout` on the adapter input while training.
    pub dropout: f64,
    /// `target_modules`: leaf names (`q_proj`) or `*` globs over the dotted module name.
    pub targets: Vec<String>,
    /// Also adapt the vision tower's blocks.
    pub vision: bool,
    /// rsLoRA scaling `alpha / sqrt(rank)`.
    pub rslora: bool,
}

impl Default for LoraSection {
    fn default() -> Self {
        LoraSection {
            rank: 0,
            alpha: 16.0,
            dropout: 0.0,
            targets: mixed_r1_model::lora::DEFAULT_TARGETS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            vision: false,
            rslora: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    // ---- run
    pub seed: u64,
    /// Checkpoints, metrics.jsonl, tb/ and plots go here.
    pub output_dir: PathBuf,
    /// Training steps (one rollout batch each).
    pub total_steps: usize,
    /// Save a checkpoint every this many steps (0 = only at the end).
    pub save_every: usize,
    /// Checkpoints kept on disk (0 = all).
    pub keep_last: usize,
    /// Also write TensorBoard event files.
    pub tensorboard: bool,

    // ---- rollout
    /// G: completions sampled per prompt.
    pub group_size: usize,
    /// Prompts per training step (the batch is `batch_prompts * group_size` completions).
    pub batch_prompts: usize,
    /// Prompt tokens (text + image tokens); longer prompts are skipped.
    pub max_prompt_len: usize,
    /// Completion tokens; also the `max_len` of `seq_mean_token_sum_norm`.
    pub max_completion_len: usize,
    pub temperature: f64,
    /// Nucleus sampling (1 = off).
    pub top_p: f64,
    /// Top-k sampling (0 = off).
    pub top_k: usize,

    // ---- advantages
    /// A name in the advantage registry: grpo, dr_grpo, rloo, gdpo, reinforce_pp,
    /// reinforce_pp_baseline.
    pub adv_estimator: String,
    /// `grpo`: divide by the group std (false = Dr.GRPO-style scaling-free advantages).
    pub scale_std: bool,
    /// Added to the std before dividing.
    pub std_eps: f64,
    /// Bessel-corrected std, as torch.std.
    pub unbiased_std: bool,
    /// `gdpo`: whiten the summed advantages over the batch.
    pub gdpo_batch_norm: bool,
    /// `gdpo`: weights of the reward components in the sum, `[format, accuracy]` (the
    /// trainer's order); empty = all 1.
    pub gdpo_component_weights: Vec<f64>,

    // ---- policy loss
    /// A name in the policy-loss registry: vanilla, gspo.
    pub loss: String,
    pub aggregation: Aggregation,
    pub eps_low: f64,
    pub eps_high: f64,
    /// Dual-clip constant c > 1 for negative advantages (absent = off).
    pub dual_clip: Option<f64>,
    /// KL weight; 0 = no reference model is loaded at all.
    pub beta: f64,
    pub kl: KlEstimator,
    /// μ: optimisation passes over each rollout batch (1 = on-policy, ratio ≡ 1).
    pub mu: usize,
    /// Micro-batches whose gradients are summed per optimizer step.
    pub grad_accum: usize,

    // ---- dynamic sampling (DAPO)
    /// Drop groups whose reward std is below `std_floor` (all-equal groups always) and sample
    /// more prompts until the batch is full.
    pub dynamic_sampling: bool,
    pub std_floor: f64,
    /// Extra generation rounds per step after the first (0 = filter only, never resample); a
    /// batch still short after them trains on what it has. `sampling::Refill::new` takes the
    /// total, `1 + max_refill_rounds`.
    pub max_refill_rounds: usize,

    // ---- optimizer
    pub lr: f64,
    pub lr_schedule: ScheduleKind,
    /// Final lr as a fraction of `lr` (cosine / linear).
    pub min_lr_ratio: f64,
    pub warmup_steps: usize,
    pub weight_decay: f64,
    /// Parameters without weight decay: `"1d"` = every tensor of rank < 2 (biases, norm gains),
    /// any other entry a substring of the parameter name. `[]` decays everything.
    pub weight_decay_exclude: Vec<String>,
    pub adam_beta1: f64,
    pub adam_beta2: f64,
    pub adam_eps: f64,
    /// Global grad-norm clip (0 = off).
    pub max_grad_norm: f64,
    /// Train only the language model (the vision tower stays as loaded).
    pub freeze_vision: bool,
    /// Gradient (activation) checkpointing of the decoder layers, as TRL's / transformers'
    /// `gradient_checkpointing`: the training forward keeps only each layer's input and
    /// backward recomputes the layer; less memory, about one more forward of time.
    pub gradient_checkpointing: bool,

    pub model: ModelSection,
    pub data: DataSection,
    pub lora: LoraSection,
    pub reward: RewardConfig,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            seed: 42,
            output_dir: PathBuf::from("runs/mixed-r1"),
            total_steps: 500,
            save_every: 50,
            keep_last: 3,
            tensorboard: true,
            group_size: 8,
            batch_prompts: 16,
            max_prompt_len: 2048,
            max_completion_len: 1024,
            temperature: 1.0,
            top_p: 1.0,
            top_k: 0,
            adv_estimator: "grpo".into(),
            scale_std: true,
            std_eps: 1e-6,
            unbiased_std: true,
            gdpo_batch_norm: true,
            gdpo_component_weights: Vec::new(),
            loss: "vanilla".into(),
            aggregation: Aggregation::TokenMean,
            eps_low: 0.2,
            eps_high: 0.2,
            dual_clip: None,
            beta: 0.04,
            kl: KlEstimator::K3,
            mu: 1,
            grad_accum: 1,
            dynamic_sampling: false,
            std_floor: 0.0,
            max_refill_rounds: 3,
            lr: 1e-6,
            lr_schedule: ScheduleKind::Cosine,
            min_lr_ratio: 0.1,
            warmup_steps: 10,
            weight_decay: 0.01,
            weight_decay_exclude: mixed_r1_grpo::optim::default_no_decay(),
            adam_beta1: 0.9,
            adam_beta2: 0.999,
            adam_eps: 1e-8,
            max_grad_norm: 1.0,
            freeze_vision: true,
            gradient_checkpointing: false,
            model: ModelSection::default(),
            data: DataSection::default(),
            lora: LoraSection::default(),
            reward: RewardConfig::default(),
        }
    }
}

fn err(key: &str, msg: impl std::fmt::Display) -> GrpoError {
    GrpoError::Config(format!("{key}: {msg}"))
}

impl TrainConfig {
    /// Parses TOML text and validates it.
    pub fn from_toml_str(text: &str) -> Result<Self> {
        let cfg: TrainConfig =
            toml::from_str(text).map_err(|e| GrpoError::Config(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads and validates a file; relative input paths are resolved against its folder.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| GrpoError::io(path, e))?;
        let mut cfg: TrainConfig = toml::from_str(&text)
            .map_err(|e| GrpoError::Config(format!("{}: {e}", path.display())))?;
        if let Some(dir) = path.parent() {
            cfg.resolve_paths(dir);
        }
        cfg.validate()
            .map_err(|e| GrpoError::Config(format!("{}: {e}", path.display())))?;
        Ok(cfg)
    }

    /// Makes relative input paths relative to `dir`.
    pub fn resolve_paths(&mut self, dir: &Path) {
        let b = &mut self.reward.bmas;
        for p in [
            &mut self.model.path,
            &mut self.model.tokenizer,
            &mut self.data.train,
            &mut b.tokenizer,
            &mut b.embeddings,
            &mut b.model,
        ]
        .into_iter()
        .flatten()
        {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        }
    }

    /// The TOML text of this config (every key, defaults included): what a run saves next to
    /// its checkpoints so it can be reproduced.
    pub fn to_toml_string(&self) -> Result<String> {
        toml::to_string_pretty(self).map_err(|e| GrpoError::Config(e.to_string()))
    }

    /// Keys a resumed run may change freely: how long it runs and where it logs, and memory
    /// / placement settings that leave the maths alone. Every other key changes the run.
    pub const RESUME_FREE_KEYS: &'static [&'static str] = &[
        "total_steps",
        "save_every",
        "keep_last",
        "tensorboard",
        "output_dir",
        "gradient_checkpointing",
        "model.device",
    ];

    /// The differences between a run's saved config (`saved`, as its `train.toml` holds it)
    /// and this one that would change the resumed run, one `key: saved -> new` line each
    /// (empty when resuming is safe). Input paths count as equal when they name the same file.
    pub fn resume_changes(&self, saved: &TrainConfig) -> Result<Vec<String>> {
        let flat = |c: &TrainConfig| -> Result<BTreeMap<String, toml::Value>> {
            let table = toml::Table::try_from(c).map_err(|e| GrpoError::Config(e.to_string()))?;
            let mut out = BTreeMap::new();
            flatten_toml("", &toml::Value::Table(table), &mut out);
            Ok(out)
        };
        let (old, new) = (flat(saved)?, flat(self)?);
        let same_file = |a: &toml::Value, b: &toml::Value| match (a.as_str(), b.as_str()) {
            (Some(a), Some(b)) => {
                match (Path::new(a).canonicalize(), Path::new(b).canonicalize()) {
                    (Ok(a), Ok(b)) => a == b,
                    _ => false,
                }
            }
            _ => false,
        };
        let keys: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
        let show = |v: Option<&toml::Value>| v.map_or("(unset)".to_string(), |v| v.to_string());
        Ok(keys
            .into_iter()
            .filter(|k| !Self::RESUME_FREE_KEYS.contains(&k.as_str()))
            .filter(|k| match (old.get(*k), new.get(*k)) {
                (Some(a), Some(b)) => a != b && !same_file(a, b),
                (a, b) => a != b,
            })
            .map(|k| format!("{k}: {} -> {}", show(old.get(k)), show(new.get(k))))
            .collect())
    }

    /// Rejects values no run can work with; the error names the key.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("total_steps", self.total_steps),
            ("group_size", self.group_size),
            ("batch_prompts", self.batch_prompts),
            ("max_prompt_len", self.max_prompt_len),
            ("max_completion_len", self.max_completion_len),
            ("mu", self.mu),
            ("grad_accum", self.grad_accum),
        ];
        for (k, v) in positive {
            if v == 0 {
                return Err(err(k, "must be >= 1, got 0"));
            }
        }
        let adv = AdvantageRegistry::builtin();
        let group_based = self.adv_estimator != "reinforce_pp";
        if self.group_size < 2 && group_based {
            return Err(err(
                "group_size",
                format!(
                    "must be >= 2 for `{}` (a group of one has no baseline), got {}",
                    self.adv_estimator, self.group_size
                ),
            ));
        }
        adv.get(&self.adv_estimator)
            .map_err(|e| err("adv_estimator", e))?;
        let w = &self.gdpo_component_weights;
        if !w.is_empty() && w.len() != 2 {
            return Err(err(
                "gdpo_component_weights",
                format!(
                    "{} weights for 2 reward components [format, accuracy]",
                    w.len()
                ),
            ));
        }
        if w.iter().any(|x| !x.is_finite() || *x < 0.0) {
            return Err(err(
                "gdpo_component_weights",
                "weights must be finite and >= 0",
            ));
        }
        PolicyLossRegistry::builtin()
            .get(&self.loss)
            .map_err(|e| err("loss", e))?;

        let finite_min = |k: &str, v: f64, min: f64, strict: bool| -> Result<()> {
            let ok = v.is_finite() && if strict { v > min } else { v >= min };
            if ok {
                Ok(())
            } else {
                Err(err(
                    k,
                    format!("must be {} {min}, got {v}", if strict { ">" } else { ">=" }),
                ))
            }
        };
        finite_min("temperature", self.temperature, 0.0, true)?;
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(err(
                "top_p",
                format!("must be in (0, 1], got {}", self.top_p),
            ));
        }
        finite_min("std_eps", self.std_eps, 0.0, false)?;
        if !(self.eps_low.is_finite() && (0.0..1.0).contains(&self.eps_low)) {
            return Err(err(
                "eps_low",
                format!("must be in [0, 1), got {}", self.eps_low),
            ));
        }
        finite_min("eps_high", self.eps_high, 0.0, false)?;
        if let Some(c) = self.dual_clip {
            finite_min("dual_clip", c, 1.0, true)?;
        }
        finite_min("beta", self.beta, 0.0, false)?;
        finite_min("std_floor", self.std_floor, 0.0, false)?;
        finite_min("lr", self.lr, 0.0, true)?;
        if !(self.min_lr_ratio.is_finite() && (0.0..=1.0).contains(&self.min_lr_ratio)) {
            return Err(err(
                "min_lr_ratio",
                format!("must be in [0, 1], got {}", self.min_lr_ratio),
            ));
        }
        if self.warmup_steps > self.total_steps {
            return Err(err(
                "warmup_steps",
                format!(
                    "({}) exceeds total_steps ({})",
                    self.warmup_steps, self.total_steps
                ),
            ));
        }
        finite_min("weight_decay", self.weight_decay, 0.0, false)?;
        for (k, v) in [
            ("adam_beta1", self.adam_beta1),
            ("adam_beta2", self.adam_beta2),
        ] {
            if !(v.is_finite() && (0.0..1.0).contains(&v)) {
                return Err(err(k, format!("must be in [0, 1), got {v}")));
            }
        }
        finite_min("adam_eps", self.adam_eps, 0.0, true)?;
        finite_min("max_grad_norm", self.max_grad_norm, 0.0, false)?;
        if self.output_dir.as_os_str().is_empty() {
            return Err(err("output_dir", "must not be empty"));
        }

        let m = &self.model;
        match (&m.path, &m.tiny) {
            (Some(_), Some(_)) => {
                return Err(err("model", "set either `path` or `tiny`, not both"))
            }
            (None, Some(t)) if t.trim().is_empty() => {
                return Err(err("model.tiny", "must not be empty"))
            }
            _ => {}
        }
        if !["f32", "bf16", "f16"].contains(&m.dtype.as_str()) {
            return Err(err(
                "model.dtype",
                format!("must be f32, bf16 or f16, got `{}`", m.dtype),
            ));
        }
        let dev_ok = m.device == "cpu"
            || m.device == "cuda"
            || m.device
                .strip_prefix("cuda:")
                .is_some_and(|n| n.parse::<usize>().is_ok());
        if !dev_ok {
            return Err(err(
                "model.device",
                format!("must be cpu, cuda or cuda:<n>, got `{}`", m.device),
            ));
        }
        let l = &self.lora;
        if l.rank > 0 {
            finite_min("lora.alpha", l.alpha, 0.0, true)?;
            if !(l.dropout.is_finite() && (0.0..1.0).contains(&l.dropout)) {
                return Err(err(
                    "lora.dropout",
                    format!("must be in [0, 1), got {}", l.dropout),
                ));
            }
            if l.targets.is_empty() || l.targets.iter().any(|t| t.trim().is_empty()) {
                return Err(err("lora.targets", "needs at least one module name"));
            }
        }
        self.reward.validate().map_err(|e| err("reward", e))?;
        Ok(())
    }

    /// True when the run trains LoRA adapters rather than every weight.
    pub fn uses_lora(&self) -> bool {
        self.lora.rank > 0
    }

    /// Like [`validate`](Self::validate), plus: a model and a training set are given (what
    /// `mixed-r1 train` needs; tests of pieces don't).
    pub fn validate_for_training(&self) -> Result<()> {
        self.validate()?;
        if self.model.path.is_none() && self.model.tiny.is_none() {
            return Err(err("model", "set `path` (a model folder) or `tiny`"));
        }
        if self.data.train.is_none() {
            return Err(err("data.train", "missing (a JSONL training set)"));
        }
        Ok(())
    }

    pub fn advantage_config(&self) -> AdvantageConfig {
        AdvantageConfig {
            scale_std: self.scale_std,
            eps: self.std_eps,
            unbiased_std: self.unbiased_std,
            gdpo_batch_norm: self.gdpo_batch_norm,
            component_weights: (!self.gdpo_component_weights.is_empty())
                .then(|| self.gdpo_component_weights.clone()),
        }
    }

    pub fn loss_config(&self) -> LossConfig {
        LossConfig {
            eps_low: self.eps_low,
            eps_high: self.eps_high,
            dual_clip: self.dual_clip,
            aggregation: self.aggregation,
            max_len: Some(self.max_completion_len),
            beta: self.beta,
            kl: self.kl,
        }
    }

    pub fn adamw_config(&self) -> AdamWConfig {
        AdamWConfig {
            lr: self.lr,
            beta1: self.adam_beta1,
            beta2: self.adam_beta2,
            eps: self.adam_eps,
            weight_decay: self.weight_decay,
            no_decay: self.weight_decay_exclude.clone(),
        }
    }

    /// The schedule over optimizer steps: `mu` optimizer steps per training step.
    pub fn lr_schedule(&self) -> LrSchedule {
        LrSchedule {
            kind: self.lr_schedule,
            lr: self.lr,
            warmup_steps: self.warmup_steps * self.mu,
            total_steps: self.total_steps * self.mu,
            min_lr_ratio: self.min_lr_ratio,
        }
    }

    /// True when the reference model is needed (KL term on).
    pub fn needs_reference(&self) -> bool {
        self.beta > 0.0
    }
}

/// `table.key.sub = v` → `"key.sub" -> v`, arrays kept whole.
fn flatten_toml(prefix: &str, v: &toml::Value, out: &mut BTreeMap<String, toml::Value>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten_toml(&key, v, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.clone());
        }
    }
}
