//! `vanilla`: token-level PPO-clip as in GRPO / DAPO: `ratio_t = exp(logp_t - old_t)`,
//! loss `max(-A·r, -A·clip(r, 1 - eps_low, 1 + eps_high))` per token (+ optional dual clip).

use super::{ppo_clip, LossConfig, PerToken, PolicyLoss, SurrogateInputs, LOG_RATIO_CLAMP};
use crate::Result;

pub struct Vanilla;

impl PolicyLoss for Vanilla {
    fn name(&self) -> &'static str {
        "vanilla"
    }

    fn description(&self) -> &'static str {
        "token-level PPO-clip, ratio exp(logp - old), asymmetric eps_low / eps_high"
    }

    fn per_token(&self, x: &SurrogateInputs, cfg: &LossConfig) -> Result<PerToken> {
        let log_ratio = x
            .logp
            .sub(&x.old_logp)?
            .clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)?;
        ppo_clip(&log_ratio.exp()?, &x.adv, cfg)
    }
}
