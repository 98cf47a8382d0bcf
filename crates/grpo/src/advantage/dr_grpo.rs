//! `dr_grpo`: Dr.GRPO (Liu et al., 2025) drops the std division, which biases updates towards
//! too-easy and too-hard prompts: `A_i = r_i - mean(group)`, whatever `scale_std` says.

use super::{group_normalise, to_f32, AdvantageConfig, AdvantageEstimator, AdvantageInput};
use crate::Result;

pub struct DrGrpo;

impl AdvantageEstimator for DrGrpo {
    fn name(&self) -> &'static str {
        "dr_grpo"
    }

    fn description(&self) -> &'static str {
        "r - group mean (no std scaling)"
    }

    fn compute(&self, input: &AdvantageInput, cfg: &AdvantageConfig) -> Result<Vec<f32>> {
        Ok(to_f32(group_normalise(
            input.rewards,
            input.groups,
            false,
            cfg,
        )))
    }
}
