//! `grpo`: the group-relative advantage of DeepSeekMath / DESIGN.md,
//! `A_i = (r_i - mean(group)) / (std(group) + eps)`, or `r_i - mean` when
//! [`AdvantageConfig::scale_std`] is false.

use super::{group_normalise, to_f32, AdvantageConfig, AdvantageEstimator, AdvantageInput};
use crate::Result;

pub struct Grpo;

impl AdvantageEstimator for Grpo {
    fn name(&self) -> &'static str {
        "grpo"
    }

    fn description(&self) -> &'static str {
        "(r - group mean) / (group std + eps); std scaling off with scale_std = false"
    }

    fn compute(&self, input: &AdvantageInput, cfg: &AdvantageConfig) -> Result<Vec<f32>> {
        Ok(to_f32(group_normalise(
            input.rewards,
            input.groups,
            cfg.scale_std,
            cfg,
        )))
    }
}
