//! Policy losses on `(B, T)` per-token log-prob tensors, behind a name registry, plus the
//! aggregation modes, KL estimators and the detached metrics a trainer logs.
//!
//! The pieces the literature varies independently are independent here:
//! - the *per-token surrogate* ([`PolicyLoss`]: `vanilla` PPO-clip with asymmetric
//!   `eps_low` / `eps_high` and optional dual clip; `gspo`, the sequence-level ratio);
//! - the *aggregation* of token losses into one number ([`Aggregation`]: DAPO's `token_mean`,
//!   GRPO's `seq_mean_token_mean`, Dr.GRPO's `seq_mean_token_sum_norm`, and `seq_mean_token_sum`);
//! - the *KL penalty* to a frozen reference ([`KlEstimator`] `k1`, `k2`, `k3`, weighted by
//!   `beta`; `beta = 0` needs no reference forward at all).
//!
//! Only differentiable candle ops are used (`exp`, `clamp`, `where_cond`, sums and products), so
//! gradients reach the caller's `logp`. Everything is computed in f32 whatever the input dtype,
//! because a bf16 `exp(logp - old)` is too coarse for a ratio that must be compared with
//! `1 ± 0.2`. Metrics are computed on the host from detached values.
//!
//! The loss is `agg(pg) + beta * agg(kl)` with `pg` the per-token surrogate and `kl` the
//! per-token KL estimate; the KL term is added only when `beta > 0`.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use candle_core::{DType, Tensor, D};
use serde::{Deserialize, Serialize};

use crate::{GrpoError, Result};

mod gspo;
mod vanilla;

pub use gspo::Gspo;
pub use vanilla::Vanilla;

/// Log-ratios are clamped to this magnitude before `exp` so one wild token cannot overflow f32
/// (verl clamps at 20 too); far outside any ratio the clip would let through.
pub const LOG_RATIO_CLAMP: f64 = 20.0;

/// How per-token losses become one scalar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    /// `sum(L·M) / sum(M)` over the whole batch: every token weighs the same (DAPO).
    #[default]
    TokenMean,
    /// Mean over sequences of each sequence's token mean (original GRPO): short answers' tokens
    /// weigh more.
    SeqMeanTokenMean,
    /// Mean over sequences of each sequence's token sum.
    SeqMeanTokenSum,
    /// Dr.GRPO: `sum(L·M) / (n_seqs · max_len)`, a constant normaliser, so no length bias;
    /// `max_len` is [`LossConfig::max_len`] (the max completion length), else `T`.
    SeqMeanTokenSumNorm,
}

impl Aggregation {
    pub const NAMES: &'static [&'static str] = &[
        "token_mean",
        "seq_mean_token_mean",
        "seq_mean_token_sum",
        "seq_mean_token_sum_norm",
    ];

    pub fn name(self) -> &'static str {
        match self {
            Aggregation::TokenMean => "token_mean",
            Aggregation::SeqMeanTokenMean => "seq_mean_token_mean",
            Aggregation::SeqMeanTokenSum => "seq_mean_token_sum",
            Aggregation::SeqMeanTokenSumNorm => "seq_mean_token_sum_norm",
        }
    }
}

impl FromStr for Aggregation {
    type Err = GrpoError;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "token_mean" => Aggregation::TokenMean,
            "seq_mean_token_mean" => Aggregation::SeqMeanTokenMean,
            "seq_mean_token_sum" => Aggregation::SeqMeanTokenSum,
            "seq_mean_token_sum_norm" => Aggregation::SeqMeanTokenSumNorm,
            _ => return Err(GrpoError::unknown("aggregation", s, Self::NAMES)),
        })
    }
}

impl fmt::Display for Aggregation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Per-token estimators of KL(π_θ || π_ref) from samples of π_θ, with `d = ref - logp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum KlEstimator {
    /// `-d = logp - ref`: unbiased, high variance, can be negative.
    K1,
    /// `d² / 2`: biased, low variance.
    K2,
    /// `exp(d) - d - 1`: unbiased, non-negative, low variance (GRPO's choice; verl `low_var_kl`
    /// without its ±10 clamp).
    #[default]
    K3,
}

impl KlEstimator {
    pub const NAMES: &'static [&'static str] = &["k1", "k2", "k3"];

    pub fn name(self) -> &'static str {
        match self {
            KlEstimator::K1 => "k1",
            KlEstimator::K2 => "k2",
            KlEstimator::K3 => "k3",
        }
    }

    /// The per-token estimate, differentiable w.r.t. `logp` (`ref_logp` is treated as constant).
    pub fn per_token(self, logp: &Tensor, ref_logp: &Tensor) -> Result<Tensor> {
        let d = ref_logp.detach().sub(logp)?;
        Ok(match self {
            KlEstimator::K1 => d.neg()?,
            KlEstimator::K2 => (d.sqr()? * 0.5)?,
            KlEstimator::K3 => {
                let d = d.clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)?;
                ((d.exp()? - &d)? - 1.0)?
            }
        })
    }
}

impl FromStr for KlEstimator {
    type Err = GrpoError;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "k1" => KlEstimator::K1,
            "k2" => KlEstimator::K2,
            "k3" | "low_var_kl" => KlEstimator::K3,
            _ => return Err(GrpoError::unknown("KL estimator", s, Self::NAMES)),
        })
    }
}

impl fmt::Display for KlEstimator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Loss hyper-parameters (the `TrainConfig` keys of the same names).
#[derive(Debug, Clone, PartialEq)]
pub struct LossConfig {
    /// Lower clip: the ratio is clipped at `1 - eps_low`.
    pub eps_low: f64,
    /// Upper clip: the ratio is clipped at `1 + eps_high` (DAPO's clip-higher when > eps_low).
    pub eps_high: f64,
    /// Dual clip (Ye et al., 2020): for negative advantages the loss is capped at `-A · c`;
    /// `None` disables it. Must be > 1.
    pub dual_clip: Option<f64>,
    pub aggregation: Aggregation,
    /// Normaliser of `seq_mean_token_sum_norm`; `None` = the tensors' `T`.
    pub max_len: Option<usize>,
    /// KL weight; 0 = no KL term (and no reference log-probs needed).
    pub beta: f64,
    pub kl: KlEstimator,
}

impl Default for LossConfig {
    fn default() -> Self {
        LossConfig {
            eps_low: 0.2,
            eps_high: 0.28,
            dual_clip: None,
            aggregation: Aggregation::TokenMean,
            max_len: None,
            beta: 0.0,
            kl: KlEstimator::K3,
        }
    }
}

/// The tensors of one (micro-)batch. `B` sequences of `T` completion positions, right-padded.
#[derive(Debug, Clone, Copy)]
pub struct LossInputs<'a> {
    /// `(B, T)` log-probs of the sampled tokens under the current policy, with grad.
    pub logp: &'a Tensor,
    /// `(B, T)` log-probs under the policy that sampled (constant). `None` = `logp.detach()`,
    /// the on-policy case (`mu = 1`), where the ratio is 1 but its gradient is not 0.
    pub old_logp: Option<&'a Tensor>,
    /// `(B, T)` log-probs under the frozen reference; needed only when `beta > 0`.
    pub ref_logp: Option<&'a Tensor>,
    /// `(B,)` one advantage per sequence.
    pub advantages: &'a Tensor,
    /// `(B, T)` 1 for completion tokens, 0 for padding (any numeric dtype).
    pub mask: &'a Tensor,
    /// `(B, T)` optional token entropies, only for the `entropy` metric.
    pub entropy: Option<&'a Tensor>,
    /// Global normalisers for gradient accumulation: when a batch is split into micro-batches,
    /// pass the whole batch's token count / sequence count here so the micro-batch losses sum
    /// to the full-batch loss. `None` = this micro-batch's own counts.
    pub global_tokens: Option<f64>,
    pub global_seqs: Option<f64>,
}

impl<'a> LossInputs<'a> {
    pub fn new(logp: &'a Tensor, advantages: &'a Tensor, mask: &'a Tensor) -> Self {
        LossInputs {
            logp,
            old_logp: None,
            ref_logp: None,
            advantages,
            mask,
            entropy: None,
            global_tokens: None,
            global_seqs: None,
        }
    }
}

/// Detached statistics of one loss evaluation (token-weighted over `mask`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LossMetrics {
    /// The total loss value.
    pub loss: f64,
    /// The aggregated policy-gradient term.
    pub pg_loss: f64,
    /// Masked token mean of the KL estimate to the reference (when a reference was given).
    pub kl: Option<f64>,
    /// Fraction of tokens where the clip was active (`clip_frac_low + clip_frac_high`).
    pub clip_frac: f64,
    /// Tokens with `A < 0` and `ratio < 1 - eps_low` (clipped from below).
    pub clip_frac_low: f64,
    /// Tokens with `A > 0` and `ratio > 1 + eps_high` (clipped from above).
    pub clip_frac_high: f64,
    /// Tokens with `A < 0` capped by the dual clip.
    pub dual_clip_frac: f64,
    /// k3 estimate of KL(π_old || π_θ): mean of `(r - 1) - log r`; 0 when on-policy.
    pub approx_kl: f64,
    pub ratio_mean: f64,
    pub ratio_min: f64,
    pub ratio_max: f64,
    /// Masked token mean of the given entropies.
    pub entropy: Option<f64>,
    pub n_tokens: f64,
    pub n_seqs: f64,
}

/// What a surrogate returns: the `(B, T)` per-token loss and the `(B, T)` ratio it clipped
/// (detached; for GSPO the sequence ratio broadcast over tokens).
pub struct PerToken {
    pub loss: Tensor,
    pub ratio: Tensor,
    /// `(B, T)` u8: clipped from below / above / by the dual clip.
    pub clipped_low: Tensor,
    pub clipped_high: Tensor,
    pub dual_clipped: Tensor,
}

/// The f32 tensors a surrogate works on, already checked for shape.
pub struct SurrogateInputs {
    pub logp: Tensor,
    pub old_logp: Tensor,
    /// `(B, T)`, the advantage broadcast over tokens.
    pub adv: Tensor,
    /// `(B, T)` f32 0/1.
    pub mask: Tensor,
}

/// A per-token policy-gradient surrogate.
pub trait PolicyLoss: Send + Sync {
    fn name(&self) -> &'static str;
    fn description(&self) -> &'static str;
    fn per_token(&self, x: &SurrogateInputs, cfg: &LossConfig) -> Result<PerToken>;
}

/// The loss and its detached metrics.
pub struct LossOutput {
    /// Scalar (rank 0) f32 tensor; call `.backward()` on it.
    pub loss: Tensor,
    pub metrics: LossMetrics,
}

/// Name → policy loss.
#[derive(Clone)]
pub struct PolicyLossRegistry {
    map: BTreeMap<String, Arc<dyn PolicyLoss>>,
}

/// Names of the built-in policy losses.
pub const BUILTIN: &[&str] = &["gspo", "vanilla"];

impl PolicyLossRegistry {
    pub fn empty() -> Self {
        PolicyLossRegistry {
            map: BTreeMap::new(),
        }
    }

    pub fn builtin() -> Self {
        let mut r = Self::empty();
        r.register(Arc::new(Vanilla));
        r.register(Arc::new(Gspo));
        r
    }

    pub fn register(&mut self, loss: Arc<dyn PolicyLoss>) {
        self.map.insert(loss.name().to_string(), loss);
    }

    pub fn get(&self, name: &str) -> Result<Arc<dyn PolicyLoss>> {
        self.map
            .get(name)
            .cloned()
            .ok_or_else(|| GrpoError::unknown("policy loss", name, &self.names()))
    }

    pub fn names(&self) -> Vec<&str> {
        self.map.keys().map(|s| s.as_str()).collect()
    }

    /// Evaluates the named loss; see [`compute_loss`].
    pub fn compute(&self, name: &str, inputs: &LossInputs, cfg: &LossConfig) -> Result<LossOutput> {
        compute_loss(self.get(name)?.as_ref(), inputs, cfg)
    }
}

fn check_shape(name: &str, t: &Tensor, dims: &[usize]) -> Result<()> {
    if t.dims() != dims {
        return Err(GrpoError::Input(format!(
            "{name} has shape {:?}, expected {dims:?}",
            t.dims()
        )));
    }
    Ok(())
}

/// Validates the config values a loss relies on.
pub fn validate_config(cfg: &LossConfig) -> Result<()> {
    let bad = |m: String| Err(GrpoError::Config(m));
    if !(cfg.eps_low.is_finite() && (0.0..1.0).contains(&cfg.eps_low)) {
        return bad(format!("eps_low must be in [0, 1), got {}", cfg.eps_low));
    }
    if !(cfg.eps_high.is_finite() && cfg.eps_high >= 0.0) {
        return bad(format!("eps_high must be >= 0, got {}", cfg.eps_high));
    }
    if let Some(c) = cfg.dual_clip {
        if !(c.is_finite() && c > 1.0) {
            return bad(format!("dual_clip must be > 1, got {c}"));
        }
    }
    if !(cfg.beta.is_finite() && cfg.beta >= 0.0) {
        return bad(format!("beta must be >= 0, got {}", cfg.beta));
    }
    if cfg.max_len == Some(0) {
        return bad("max_len must be > 0".into());
    }
    Ok(())
}

/// Masked aggregation of a `(B, T)` per-token tensor into a scalar, differentiable.
/// `mask` is f32 0/1. `n_tokens` / `n_seqs` are the normalisers (this batch's or global).
pub fn aggregate(
    per_token: &Tensor,
    mask: &Tensor,
    mode: Aggregation,
    n_tokens: f64,
    n_seqs: f64,
    max_len: usize,
) -> Result<Tensor> {
    let masked = per_token.mul(mask)?;
    // Empty batches aggregate to 0 rather than NaN: a micro-batch of padding contributes nothing.
    let safe = |x: f64| if x > 0.0 { x } else { 1.0 };
    Ok(match mode {
        Aggregation::TokenMean => (masked.sum_all()? / safe(n_tokens))?,
        Aggregation::SeqMeanTokenMean => {
            let lens = mask.sum(D::Minus1)?.clamp(1.0, f64::INFINITY)?;
            (masked.sum(D::Minus1)?.div(&lens)?.sum_all()? / safe(n_seqs))?
        }
        Aggregation::SeqMeanTokenSum => (masked.sum_all()? / safe(n_seqs))?,
        Aggregation::SeqMeanTokenSumNorm => (masked.sum_all()? / (safe(n_seqs) * max_len as f64))?,
    })
}

/// Evaluates a policy loss: shape checks, f32 conversion, surrogate, aggregation, KL, metrics.
pub fn compute_loss(
    surrogate: &dyn PolicyLoss,
    inputs: &LossInputs,
    cfg: &LossConfig,
) -> Result<LossOutput> {
    validate_config(cfg)?;
    let dims = inputs.logp.dims().to_vec();
    if dims.len() != 2 {
        return Err(GrpoError::Input(format!(
            "logp must be (B, T), got shape {dims:?}"
        )));
    }
    let (b, t) = (dims[0], dims[1]);
    check_shape("mask", inputs.mask, &dims)?;
    check_shape("advantages", inputs.advantages, &[b])?;
    if let Some(o) = inputs.old_logp {
        check_shape("old_logp", o, &dims)?;
    }
    if let Some(r) = inputs.ref_logp {
        check_shape("ref_logp", r, &dims)?;
    }
    if let Some(e) = inputs.entropy {
        check_shape("entropy", e, &dims)?;
    }
    if cfg.beta > 0.0 && inputs.ref_logp.is_none() {
        return Err(GrpoError::Input(
            "beta > 0 needs ref_logp (the reference policy's log-probs)".into(),
        ));
    }

    let logp = inputs.logp.to_dtype(DType::F32)?;
    let old_logp = match inputs.old_logp {
        Some(o) => o.to_dtype(DType::F32)?.detach(),
        None => logp.detach(),
    };
    let mask = inputs.mask.to_dtype(DType::F32)?.detach();
    let adv = inputs
        .advantages
        .to_dtype(DType::F32)?
        .detach()
        .unsqueeze(1)?
        .broadcast_as((b, t))?
        .contiguous()?;

    let mask_host: Vec<Vec<f32>> = mask.to_vec2()?;
    let local_tokens: f64 = mask_host.iter().flatten().map(|&m| m as f64).sum();
    let local_seqs = mask_host
        .iter()
        .filter(|row| row.iter().any(|&m| m > 0.0))
        .count() as f64;
    let n_tokens = inputs.global_tokens.unwrap_or(local_tokens);
    let n_seqs = inputs.global_seqs.unwrap_or(local_seqs);
    let max_len = cfg.max_len.unwrap_or(t);

    let x = SurrogateInputs {
        logp: logp.clone(),
        old_logp: old_logp.clone(),
        adv,
        mask: mask.clone(),
    };
    let pt = surrogate.per_token(&x, cfg)?;
    let pg = aggregate(&pt.loss, &mask, cfg.aggregation, n_tokens, n_seqs, max_len)?;

    let kl_tok = match inputs.ref_logp {
        Some(r) => Some(cfg.kl.per_token(&logp, &r.to_dtype(DType::F32)?)?),
        None => None,
    };
    let loss = match (&kl_tok, cfg.beta > 0.0) {
        (Some(k), true) => {
            let kl = aggregate(k, &mask, cfg.aggregation, n_tokens, n_seqs, max_len)?;
            (&pg + (kl * cfg.beta)?)?
        }
        _ => pg.clone(),
    };

    // Metrics, token-weighted over this micro-batch's own mask.
    let masked_mean = |v: &Tensor| -> Result<f64> {
        let rows: Vec<Vec<f32>> = v.to_dtype(DType::F32)?.to_vec2()?;
        let mut s = 0.0f64;
        for (r, m) in rows.iter().zip(&mask_host) {
            for (x, w) in r.iter().zip(m) {
                s += *x as f64 * *w as f64;
            }
        }
        Ok(if local_tokens > 0.0 {
            s / local_tokens
        } else {
            0.0
        })
    };
    let ratio = pt.ratio.detach();
    let ratio_host: Vec<Vec<f32>> = ratio.to_vec2()?;
    let (mut rmin, mut rmax) = (f64::INFINITY, f64::NEG_INFINITY);
    for (r, m) in ratio_host.iter().zip(&mask_host) {
        for (x, w) in r.iter().zip(m) {
            if *w > 0.0 {
                rmin = rmin.min(*x as f64);
                rmax = rmax.max(*x as f64);
            }
        }
    }
    if local_tokens == 0.0 {
        (rmin, rmax) = (1.0, 1.0);
    }
    let log_r = logp.detach().sub(&old_logp)?;
    let k3_old = ((log_r.clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)?.exp()? - 1.0)? - &log_r)?;
    let clip_low = masked_mean(&pt.clipped_low)?;
    let clip_high = masked_mean(&pt.clipped_high)?;
    let metrics = LossMetrics {
        loss: loss.to_scalar::<f32>()? as f64,
        pg_loss: pg.to_scalar::<f32>()? as f64,
        kl: match &kl_tok {
            Some(k) => Some(masked_mean(&k.detach())?),
            None => None,
        },
        clip_frac: clip_low + clip_high,
        clip_frac_low: clip_low,
        clip_frac_high: clip_high,
        dual_clip_frac: masked_mean(&pt.dual_clipped)?,
        approx_kl: masked_mean(&k3_old)?,
        ratio_mean: if local_tokens > 0.0 {
            masked_mean(&ratio)?
        } else {
            1.0
        },
        ratio_min: rmin,
        ratio_max: rmax,
        entropy: match inputs.entropy {
            Some(e) => Some(masked_mean(&e.detach())?),
            None => None,
        },
        n_tokens: local_tokens,
        n_seqs: local_seqs,
    };
    Ok(LossOutput { loss, metrics })
}

/// Shared PPO clipping of a ratio tensor: `max(-A·r, -A·clip(r, 1-eps_low, 1+eps_high))`, then
/// the dual clip for `A < 0`. Written with explicit `where_cond` selections (not `maximum`, whose
/// backward splits ties 50/50) so the gradient is exactly the textbook one: `-A·∂r` where the
/// clip is inactive, 0 where it is active.
pub(crate) fn ppo_clip(ratio: &Tensor, adv: &Tensor, cfg: &LossConfig) -> Result<PerToken> {
    let neg_adv = adv.neg()?;
    let unclipped = neg_adv.mul(ratio)?;
    let clipped_ratio = ratio.clamp(1.0 - cfg.eps_low, 1.0 + cfg.eps_high)?;
    let clipped = neg_adv.mul(&clipped_ratio)?;
    // Clipping is active exactly where the clipped surrogate is the larger (pessimistic) one.
    let use_clipped = clipped.gt(&unclipped)?;
    let mut loss = use_clipped.where_cond(&clipped.detach(), &unclipped)?;
    let rd = ratio.detach();
    let a_pos = adv.gt(0.0)?;
    let a_neg = adv.lt(0.0)?;
    let clipped_high = use_clipped.mul(&a_pos)?;
    let clipped_low = use_clipped.mul(&a_neg)?;
    let dual_clipped = match cfg.dual_clip {
        Some(c) => {
            let cap = (&neg_adv * c)?;
            let dual = loss.gt(&cap)?.mul(&a_neg)?;
            loss = dual.where_cond(&cap.detach(), &loss)?;
            dual
        }
        None => rd.zeros_like()?.to_dtype(DType::U8)?,
    };
    Ok(PerToken {
        loss,
        ratio: rd,
        clipped_low,
        clipped_high,
        dual_clipped,
    })
}
