//! `gspo`: Group Sequence Policy Optimisation (Zheng et al., 2025). The importance ratio is
//! per *sequence*, the geometric mean of token ratios, `s_i = exp(mean_t(logp - old))`, and it
//! is clipped per sequence (GSPO's clip ranges are ~1e-4, not 0.2: set eps_low / eps_high).
//!
//! Written in the "GSPO-token" form verl uses: per token
//! `log s_{i,t} = sg(log s_i) + logp_t - sg(logp_t)`, whose value is `log s_i` on every token
//! and whose gradient w.r.t. `logp_t` is `s_i`. With `seq_mean_token_mean` aggregation this is
//! exactly the paper's sequence-level objective (`∂ s_i / ∂ logp_t = s_i / |y_i|`), and the
//! other aggregation modes still apply.

use super::{ppo_clip, LossConfig, PerToken, PolicyLoss, SurrogateInputs, LOG_RATIO_CLAMP};
use crate::Result;
use candle_core::D;

pub struct Gspo;

impl PolicyLoss for Gspo {
    fn name(&self) -> &'static str {
        "gspo"
    }

    fn description(&self) -> &'static str {
        "sequence-level ratio exp(mean token log-ratio), clipped per sequence"
    }

    fn per_token(&self, x: &SurrogateInputs, cfg: &LossConfig) -> Result<PerToken> {
        let lens = x.mask.sum(D::Minus1)?.clamp(1.0, f64::INFINITY)?;
        let seq_log_ratio = x
            .logp
            .sub(&x.old_logp)?
            .mul(&x.mask)?
            .sum(D::Minus1)?
            .div(&lens)?
            .detach();
        let log_s = x
            .logp
            .sub(&x.logp.detach())?
            .broadcast_add(&seq_log_ratio.unsqueeze(1)?)?
            .clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)?;
        ppo_clip(&log_s.exp()?, &x.adv, cfg)
    }
}
