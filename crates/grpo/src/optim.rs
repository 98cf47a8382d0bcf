//! Optimisation: learning-rate schedules, global gradient-norm clipping, gradient accumulation,
//! and an AdamW whose state can be checkpointed.
//!
//! candle's own `AdamW` keeps its moments private, so a run could not resume exactly; this one
//! has the same math as `torch.optim.AdamW` (decoupled weight decay, bias correction, the
//! non-fused single-tensor code path, `amsgrad = False`), keeps its moments in f32 whatever the
//! parameter dtype, and saves / loads them as safetensors keyed by parameter name.

use std::collections::HashMap;
use std::path::Path;

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::{GrpoError, Result};

/// Shape of the learning-rate curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleKind {
    /// Linear warm-up, then half a cosine from `lr` down to `lr * min_lr_ratio`.
    #[default]
    Cosine,
    /// Linear warm-up, then constant `lr`.
    Constant,
    /// Linear warm-up, then linear decay to `lr * min_lr_ratio`.
    Linear,
}

/// Learning rate per optimizer step, with the conventions of Hugging Face's
/// `get_cosine_schedule_with_warmup` / verl (which adds `min_lr_ratio`): the factor at step `s`
/// (0-based, the step about to be taken) is `s / warmup` during warm-up (so step 0 has lr 0 when
/// there is warm-up), then `min + (1 - min) * 0.5 * (1 + cos(pi * p))` with
/// `p = (s - warmup) / (total - warmup)`, clamped to `p <= 1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LrSchedule {
    pub kind: ScheduleKind,
    pub lr: f64,
    pub warmup_steps: usize,
    pub total_steps: usize,
    pub min_lr_ratio: f64,
}

impl LrSchedule {
    pub fn constant(lr: f64) -> Self {
        LrSchedule {
            kind: ScheduleKind::Constant,
            lr,
            warmup_steps: 0,
            total_steps: 0,
            min_lr_ratio: 1.0,
        }
    }

    /// The multiplier of `lr` at `step`.
    pub fn factor(&self, step: usize) -> f64 {
        if step < self.warmup_steps {
            return step as f64 / self.warmup_steps.max(1) as f64;
        }
        let min = self.min_lr_ratio;
        let span = self.total_steps.saturating_sub(self.warmup_steps).max(1);
        let p = ((step - self.warmup_steps) as f64 / span as f64).min(1.0);
        match self.kind {
            ScheduleKind::Constant => 1.0,
            ScheduleKind::Cosine => {
                min + (1.0 - min) * 0.5 * (1.0 + (std::f64::consts::PI * p).cos())
            }
            ScheduleKind::Linear => min + (1.0 - min) * (1.0 - p),
        }
    }

    /// The learning rate at `step`.
    pub fn lr_at(&self, step: usize) -> f64 {
        self.lr * self.factor(step)
    }
}

/// Global L2 norm of the gradients of `vars` (vars without a gradient count as zero), summed in
/// f64 on the host so a large model does not lose precision in an f32 accumulator.
pub fn grad_norm(grads: &GradStore, vars: &[Var]) -> Result<f64> {
    let mut sq = 0.0f64;
    for v in vars {
        if let Some(g) = grads.get(v.as_tensor()) {
            if let Some(s) = fused::sum_sq_f32(g) {
                sq += s;
                continue;
            }
            sq += g
                .to_dtype(DType::F32)?
                .sqr()?
                .sum_all()?
                .to_dtype(DType::F64)?
                .to_scalar::<f64>()?;
        }
    }
    Ok(sq.sqrt())
}

/// Scales every gradient of `vars` by `factor` in place (in the store).
pub fn scale_grads(grads: &mut GradStore, vars: &[Var], factor: f64) -> Result<()> {
    for v in vars {
        if let Some(g) = grads.remove(v.as_tensor()) {
            grads.insert(v.as_tensor(), (g * factor)?);
        }
    }
    Ok(())
}

/// `torch.nn.utils.clip_grad_norm_`: if the global norm exceeds `max_norm`, scale all gradients
/// by `max_norm / (norm + 1e-6)`. Returns the norm *before* clipping. A non-finite norm is
/// returned as is and nothing is scaled: the caller should skip the step (an AdamW step on NaN
/// gradients poisons the moments for good).
pub fn clip_grad_norm(grads: &mut GradStore, vars: &[Var], max_norm: f64) -> Result<f64> {
    let norm = grad_norm(grads, vars)?;
    if norm.is_finite() && max_norm > 0.0 {
        let coef = max_norm / (norm + 1e-6);
        if coef < 1.0 {
            scale_grads(grads, vars, coef)?;
        }
    }
    Ok(norm)
}

/// Sums the gradients of `vars` over micro-batches (half-precision ones in f32). A `GradStore`
/// from `backward()` also holds gradients of every intermediate activation; keeping only the
/// vars' gradients here frees those as soon as each micro-batch is folded in.
pub struct GradAccumulator {
    vars: Vec<Var>,
    sums: Vec<Option<Tensor>>,
    micro_batches: usize,
}

impl GradAccumulator {
    pub fn new(vars: Vec<Var>) -> Self {
        let n = vars.len();
        GradAccumulator {
            vars,
            sums: vec![None; n],
            micro_batches: 0,
        }
    }

    /// Adds one micro-batch's gradients (consumes the store to release activation gradients).
    pub fn add(&mut self, grads: GradStore) -> Result<()> {
        for (v, s) in self.vars.iter().zip(self.sums.iter_mut()) {
            if let Some(g) = grads.get(v.as_tensor()) {
                // Half-precision gradients (a bf16 forward) are summed in f32, as AMP does.
                let g = match g.dtype() {
                    DType::BF16 | DType::F16 => g.detach().to_dtype(DType::F32)?,
                    _ => g.detach(),
                };
                *s = Some(match s.take() {
                    Some(acc) => (acc + g)?,
                    None => g,
                });
            }
        }
        self.micro_batches += 1;
        Ok(())
    }

    pub fn micro_batches(&self) -> usize {
        self.micro_batches
    }

    /// A store holding the summed gradients, for [`clip_grad_norm`] and [`AdamW::step`].
    pub fn grads(&self) -> GradStore {
        let mut store = GradStore::default();
        for (v, s) in self.vars.iter().zip(&self.sums) {
            if let Some(g) = s {
                store.insert(v.as_tensor(), g.clone());
            }
        }
        store
    }

    /// Clears the sums for the next optimizer step.
    pub fn reset(&mut self) {
        self.sums.iter_mut().for_each(|s| *s = None);
        self.micro_batches = 0;
    }
}

/// AdamW hyper-parameters (defaults: `torch.optim.AdamW`'s).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdamWConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// Parameters that get no weight decay (see [`excluded_from_decay`]); empty (torch's
    /// `AdamW` default) decays everything. The trainers pass [`DEFAULT_NO_DECAY`].
    pub no_decay: Vec<String>,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 1e-2,
            no_decay: Vec::new(),
        }
    }
}

/// What torch users expect a trainer to leave undecayed: every tensor of rank < 2 (biases and
/// norm gains: `"1d"`) and the embeddings (names containing `embed`).
pub const DEFAULT_NO_DECAY: &[&str] = &["1d", "embed"];

/// [`DEFAULT_NO_DECAY`] as owned strings, for configs.
pub fn default_no_decay() -> Vec<String> {
    DEFAULT_NO_DECAY.iter().map(|s| s.to_string()).collect()
}

/// Whether parameter `name` (shape of `t`) is excluded from weight decay by `patterns`: the
/// pattern `"1d"` matches every tensor of rank < 2, any other pattern a substring of the name.
pub fn excluded_from_decay(patterns: &[String], name: &str, t: &Tensor) -> bool {
    patterns.iter().any(|p| {
        if p == "1d" {
            t.rank() < 2
        } else {
            name.contains(p.as_str())
        }
    })
}

struct Param {
    name: String,
    var: Var,
    /// First and second moments, f32, created lazily at the first step with a gradient
    /// (as torch does), so the state of a never-updated parameter is "absent", not zeros.
    m: Option<Tensor>,
    v: Option<Tensor>,
    /// Steps this parameter has taken (torch keeps `step` per parameter; a parameter that had no
    /// gradient on some step is not advanced, and its bias correction differs).
    step: u64,
    weight_decay: f64,
}

/// AdamW with inspectable, checkpointable state. `step` sets the learning rate from the
/// schedule (when one is attached) before updating, so the optimizer and schedule cannot drift.
pub struct AdamW {
    params: Vec<Param>,
    cfg: AdamWConfig,
    schedule: Option<LrSchedule>,
    lr: f64,
    /// Number of `step` calls so far (the schedule's step index for the next call).
    steps_taken: u64,
}

impl AdamW {
    /// Named parameters (names are the checkpoint keys; they must be unique). Non-float vars are
    /// rejected rather than silently skipped.
    pub fn new(params: Vec<(String, Var)>, cfg: AdamWConfig) -> Result<Self> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::with_capacity(params.len());
        for (name, var) in params {
            if !var.dtype().is_float() {
                return Err(GrpoError::Input(format!(
                    "parameter `{name}` has non-float dtype {:?}",
                    var.dtype()
                )));
            }
            if !seen.insert(name.clone()) {
                return Err(GrpoError::Input(format!(
                    "duplicate parameter name `{name}`"
                )));
            }
            let weight_decay = if excluded_from_decay(&cfg.no_decay, &name, var.as_tensor()) {
                0.0
            } else {
                cfg.weight_decay
            };
            out.push(Param {
                name,
                var,
                m: None,
                v: None,
                step: 0,
                weight_decay,
            });
        }
        Ok(AdamW {
            params: out,
            lr: cfg.lr,
            cfg,
            schedule: None,
            steps_taken: 0,
        })
    }

    /// Attaches a schedule; from then on `step` uses `schedule.lr_at(steps_taken)`.
    pub fn with_schedule(mut self, schedule: LrSchedule) -> Self {
        self.lr = schedule.lr_at(self.steps_taken as usize);
        self.schedule = Some(schedule);
        self
    }

    /// Turns weight decay off for further parameters matching `pred`.
    pub fn exclude_from_weight_decay(&mut self, pred: impl Fn(&str, &Tensor) -> bool) {
        for p in &mut self.params {
            if pred(&p.name, p.var.as_tensor()) {
                p.weight_decay = 0.0;
            }
        }
    }

    pub fn config(&self) -> &AdamWConfig {
        &self.cfg
    }

    /// The learning rate the next (or last, if no schedule) step uses.
    pub fn learning_rate(&self) -> f64 {
        self.lr
    }

    /// Sets the learning rate; a schedule, if attached, overrides it at the next step.
    pub fn set_learning_rate(&mut self, lr: f64) {
        self.lr = lr;
    }

    pub fn steps_taken(&self) -> u64 {
        self.steps_taken
    }

    pub fn vars(&self) -> Vec<Var> {
        self.params.iter().map(|p| p.var.clone()).collect()
    }

    pub fn names(&self) -> Vec<&str> {
        self.params.iter().map(|p| p.name.as_str()).collect()
    }

    /// One AdamW update, `torch.optim.AdamW` (single-tensor path) step for step:
    /// ```text
    /// t += 1
    /// θ *= 1 - lr·λ
    /// m = lerp(m, g, 1 - β1)            (= β1·m + (1 - β1)·g)
    /// v = β2·v + (1 - β2)·g²
    /// θ -= (lr / (1 - β1^t)) · m / (sqrt(v) / sqrt(1 - β2^t) + eps)
    /// ```
    /// Parameters without a gradient in `grads` are left alone (their `t` does not advance).
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        if let Some(s) = &self.schedule {
            self.lr = s.lr_at(self.steps_taken as usize);
        }
        let lr = self.lr;
        let (b1, b2, eps) = (self.cfg.beta1, self.cfg.beta2, self.cfg.eps);
        for p in &mut self.params {
            let Some(g) = grads.get(p.var.as_tensor()) else {
                continue;
            };
            if g.dims() != p.var.dims() {
                return Err(GrpoError::Input(format!(
                    "gradient of `{}` has shape {:?}, parameter {:?}",
                    p.name,
                    g.dims(),
                    p.var.dims()
                )));
            }
            p.step += 1;
            let t = p.step as i32;
            let bc1 = 1.0 - b1.powi(t);
            let bc2_sqrt = (1.0 - b2.powi(t)).sqrt();
            let step_size = lr / bc1;
            let theta = p.var.as_tensor();
            if fused::applies(theta, g) {
                // Three in-place passes, no allocation after the first step: the tensor-op
                // formula below allocates about a dozen parameter-sized temporaries, which for
                // a 151k-token embedding costs more than the backward of the head.
                let m = match &p.m {
                    Some(m) => m.clone(),
                    None => theta.zeros_like()?,
                };
                let v = match &p.v {
                    Some(v) => v.clone(),
                    None => theta.zeros_like()?,
                };
                m.inplace_op2(
                    g,
                    &fused::Moment::First {
                        weight: (1.0 - b1) as f32,
                    },
                )?;
                v.inplace_op2(
                    g,
                    &fused::Moment::Second {
                        beta2: b2 as f32,
                        one_minus_beta2: (1.0 - b2) as f32,
                    },
                )?;
                theta.inplace_op3(
                    &m,
                    &v,
                    &fused::Apply {
                        decay: (1.0 - lr * p.weight_decay) as f32,
                        step_size: step_size as f32,
                        bc2_sqrt: bc2_sqrt as f32,
                        eps: eps as f32,
                    },
                )?;
                p.m = Some(m);
                p.v = Some(v);
                continue;
            }
            let g = g.detach().to_dtype(DType::F32)?;
            let m = match &p.m {
                Some(m) => m.clone(),
                None => g.zeros_like()?,
            };
            let v = match &p.v {
                Some(v) => v.clone(),
                None => g.zeros_like()?,
            };
            let theta = theta.detach().to_dtype(DType::F32)?;
            let theta = (theta * (1.0 - lr * p.weight_decay))?;
            let m = (&m + ((&g - &m)? * (1.0 - b1))?)?;
            let v = ((&v * b2)? + (g.sqr()? * (1.0 - b2))?)?;
            let denom = ((v.sqrt()? / bc2_sqrt)? + eps)?;
            let theta = (theta - (m.div(&denom)? * step_size)?)?;
            p.var.set(&theta.to_dtype(p.var.dtype())?)?;
            p.m = Some(m);
            p.v = Some(v);
        }
        self.steps_taken += 1;
        Ok(())
    }

    /// The state as named tensors: `exp_avg.<name>`, `exp_avg_sq.<name>` (f32) and
    /// `step.<name>` (i64, shape `[1]`) for every parameter that has state, plus
    /// `__steps_taken__` (i64 `[1]`).
    pub fn state_tensors(&self) -> Result<HashMap<String, Tensor>> {
        let mut out = HashMap::new();
        let cpu = Device::Cpu;
        for p in &self.params {
            if let (Some(m), Some(v)) = (&p.m, &p.v) {
                out.insert(format!("exp_avg.{}", p.name), m.to_device(&cpu)?);
                out.insert(format!("exp_avg_sq.{}", p.name), v.to_device(&cpu)?);
                out.insert(
                    format!("step.{}", p.name),
                    Tensor::new(&[p.step as i64], &cpu)?,
                );
            }
        }
        out.insert(
            "__steps_taken__".to_string(),
            Tensor::new(&[self.steps_taken as i64], &cpu)?,
        );
        Ok(out)
    }

    /// Restores the state from [`state_tensors`](Self::state_tensors)' map. Every parameter's
    /// state must be present or absent together, with matching shapes; unknown keys are errors
    /// (a checkpoint of a different model must not half-load).
    pub fn load_state_tensors(&mut self, state: &HashMap<String, Tensor>) -> Result<()> {
        let bad = |m: String| Err(GrpoError::Input(format!("optimizer state: {m}")));
        let scalar = |t: &Tensor| -> Result<u64> {
            let v: Vec<i64> = t.flatten_all()?.to_dtype(DType::I64)?.to_vec1()?;
            match v.as_slice() {
                [x] if *x >= 0 => Ok(*x as u64),
                _ => Err(GrpoError::Input(format!(
                    "optimizer state: bad step tensor {v:?}"
                ))),
            }
        };
        let known: std::collections::HashSet<String> = self
            .params
            .iter()
            .flat_map(|p| ["exp_avg", "exp_avg_sq", "step"].map(|k| format!("{k}.{}", p.name)))
            .chain(std::iter::once("__steps_taken__".to_string()))
            .collect();
        if let Some(k) = state.keys().find(|k| !known.contains(*k)) {
            return bad(format!("unknown key `{k}`"));
        }
        let Some(steps_taken) = state.get("__steps_taken__") else {
            return bad("missing `__steps_taken__`".into());
        };
        let steps_taken = scalar(steps_taken)?;
        let mut new_state = Vec::with_capacity(self.params.len());
        for p in &self.params {
            let m = state.get(&format!("exp_avg.{}", p.name));
            let v = state.get(&format!("exp_avg_sq.{}", p.name));
            let s = state.get(&format!("step.{}", p.name));
            match (m, v, s) {
                (None, None, None) => new_state.push((None, None, 0)),
                (Some(m), Some(v), Some(s)) => {
                    for (what, t) in [("exp_avg", m), ("exp_avg_sq", v)] {
                        if t.dims() != p.var.dims() {
                            return bad(format!(
                                "{what}.{} has shape {:?}, parameter {:?}",
                                p.name,
                                t.dims(),
                                p.var.dims()
                            ));
                        }
                    }
                    let dev = p.var.device();
                    new_state.push((
                        Some(m.to_dtype(DType::F32)?.to_device(dev)?),
                        Some(v.to_dtype(DType::F32)?.to_device(dev)?),
                        scalar(s)?,
                    ));
                }
                _ => return bad(format!("incomplete state for `{}`", p.name)),
            }
        }
        for (p, (m, v, s)) in self.params.iter_mut().zip(new_state) {
            p.m = m;
            p.v = v;
            p.step = s;
        }
        self.steps_taken = steps_taken;
        if let Some(s) = &self.schedule {
            self.lr = s.lr_at(self.steps_taken as usize);
        }
        Ok(())
    }

    /// Writes the state to a safetensors file.
    pub fn save_state(&self, path: &Path) -> Result<()> {
        candle_core::safetensors::save(&self.state_tensors()?, path)?;
        Ok(())
    }

    /// Reads the state from a safetensors file written by [`save_state`](Self::save_state).
    pub fn load_state(&mut self, path: &Path) -> Result<()> {
        let state = candle_core::safetensors::load(path, &Device::Cpu)
            .map_err(|e| GrpoError::format(path, e.to_string()))?;
        self.load_state_tensors(&state)
    }

    /// First moment, second moment and step count of one parameter (None before its first step).
    pub fn param_state(&self, name: &str) -> Option<(&Tensor, &Tensor, u64)> {
        let p = self.params.iter().find(|p| p.name == name)?;
        Some((p.m.as_ref()?, p.v.as_ref()?, p.step))
    }
}

/// The AdamW update and the gradient norm as single passes over f32 CPU buffers, in place and
/// split over the rayon pool. The arithmetic is the tensor-op formula's, element by element, in
/// the same order (so both paths give the same bits up to f32 rounding of the scalars).
mod fused {
    use candle_core::{CpuStorage, DType, Device, InplaceOp2, InplaceOp3, Layout, Storage, Tensor};
    use rayon::prelude::*;

    /// Elements per rayon task: small tensors (norm gains, biases) stay on one thread.
    const CHUNK: usize = 1 << 15;

    /// The fused path needs f32 parameters and gradients, contiguous, on the CPU.
    pub fn applies(theta: &Tensor, g: &Tensor) -> bool {
        matches!(theta.device(), Device::Cpu)
            && theta.dtype() == DType::F32
            && g.dtype() == DType::F32
            && theta.is_contiguous()
            && g.is_contiguous()
            && matches!(g.device(), Device::Cpu)
    }

    /// Sum of squares in f64 (per chunk in f32, as `sqr().sum_all()` would, then in f64), or
    /// None when the tensor is not a contiguous f32 CPU tensor.
    pub fn sum_sq_f32(g: &Tensor) -> Option<f64> {
        if g.dtype() != DType::F32 || !matches!(g.device(), Device::Cpu) {
            return None;
        }
        let (storage, layout) = g.storage_and_layout();
        let Storage::Cpu(CpuStorage::F32(data)) = &*storage else {
            return None;
        };
        let (start, end) = layout.contiguous_offsets()?;
        // Chunk sums in parallel, added up in chunk order: rayon's own `sum` adds in an order
        // that depends on work stealing, and a resumed run must see the same norm to the bit.
        let chunks: Vec<f64> = data[start..end]
            .par_chunks(CHUNK)
            .map(|c| c.iter().map(|x| x * x).sum::<f32>() as f64)
            .collect();
        Some(chunks.iter().sum())
    }

    fn slices<'a>(
        dst: &'a mut CpuStorage,
        dst_l: &Layout,
        src: &'a CpuStorage,
        src_l: &Layout,
    ) -> candle_core::Result<(&'a mut [f32], &'a [f32])> {
        let (CpuStorage::F32(d), CpuStorage::F32(s)) = (dst, src) else {
            candle_core::bail!("fused AdamW: f32 tensors expected");
        };
        let (Some((d0, d1)), Some((s0, s1))) =
            (dst_l.contiguous_offsets(), src_l.contiguous_offsets())
        else {
            candle_core::bail!("fused AdamW: contiguous tensors expected");
        };
        if d1 - d0 != s1 - s0 {
            candle_core::bail!("fused AdamW: {} elements vs {}", d1 - d0, s1 - s0);
        }
        Ok((&mut d[d0..d1], &s[s0..s1]))
    }

    /// A moment update from the gradient, in place.
    pub enum Moment {
        /// `m += (g - m) * weight` (torch's `lerp`).
        First { weight: f32 },
        /// `v = v * beta2 + g² * one_minus_beta2`, with `1 - beta2` computed in f64 (from an
        /// f32 beta2 it would be off by 1e-5 relative).
        Second { beta2: f32, one_minus_beta2: f32 },
    }

    impl InplaceOp2 for Moment {
        fn name(&self) -> &'static str {
            "adamw-moment"
        }

        fn cpu_fwd(
            &self,
            dst: &mut CpuStorage,
            dst_l: &Layout,
            g: &CpuStorage,
            g_l: &Layout,
        ) -> candle_core::Result<()> {
            let (x, g) = slices(dst, dst_l, g, g_l)?;
            let chunks = x.par_chunks_mut(CHUNK).zip(g.par_chunks(CHUNK));
            match *self {
                Moment::First { weight } => chunks.for_each(|(m, g)| {
                    m.iter_mut()
                        .zip(g)
                        .for_each(|(m, g)| *m += (g - *m) * weight)
                }),
                Moment::Second {
                    beta2,
                    one_minus_beta2,
                } => chunks.for_each(|(v, g)| {
                    v.iter_mut()
                        .zip(g)
                        .for_each(|(v, g)| *v = *v * beta2 + g * g * one_minus_beta2)
                }),
            }
            Ok(())
        }
    }

    /// `θ = θ·decay - m / (sqrt(v) / bc2_sqrt + eps) · step_size`.
    pub struct Apply {
        pub decay: f32,
        pub step_size: f32,
        pub bc2_sqrt: f32,
        pub eps: f32,
    }

    impl InplaceOp3 for Apply {
        fn name(&self) -> &'static str {
            "adamw-apply"
        }

        fn cpu_fwd(
            &self,
            dst: &mut CpuStorage,
            dst_l: &Layout,
            m: &CpuStorage,
            m_l: &Layout,
            v: &CpuStorage,
            v_l: &Layout,
        ) -> candle_core::Result<()> {
            let (theta, m) = slices(dst, dst_l, m, m_l)?;
            let CpuStorage::F32(v) = v else {
                candle_core::bail!("fused AdamW: f32 tensors expected");
            };
            let Some((v0, v1)) = v_l.contiguous_offsets() else {
                candle_core::bail!("fused AdamW: contiguous tensors expected");
            };
            let v = &v[v0..v1];
            if v.len() != theta.len() {
                candle_core::bail!("fused AdamW: {} elements vs {}", theta.len(), v.len());
            }
            let Apply {
                decay,
                step_size,
                bc2_sqrt,
                eps,
            } = *self;
            theta
                .par_chunks_mut(CHUNK)
                .zip(m.par_chunks(CHUNK).zip(v.par_chunks(CHUNK)))
                .for_each(|(t, (m, v))| {
                    for ((t, m), v) in t.iter_mut().zip(m).zip(v) {
                        *t = *t * decay - m / (v.sqrt() / bc2_sqrt + eps) * step_size;
                    }
                });
            Ok(())
        }
    }
}
