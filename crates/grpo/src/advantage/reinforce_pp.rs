//! `reinforce_pp` / `reinforce_pp_baseline`: REINFORCE++ (Hu, 2025) for outcome rewards.
//! `reinforce_pp` whitens the rewards over the whole batch (no per-prompt baseline, so it also
//! works with one sample per prompt); `reinforce_pp_baseline` first subtracts the group mean, then
//! whitens over the batch. verl whitens over tokens (longer answers weigh more); we whiten over
//! sequences, which is the same when every completion has one advantage.

use super::{
    batch_whiten, group_normalise, to_f32, AdvantageConfig, AdvantageEstimator, AdvantageInput,
};
use crate::Result;

pub struct ReinforcePp;

impl AdvantageEstimator for ReinforcePp {
    fn name(&self) -> &'static str {
        "reinforce_pp"
    }

    fn description(&self) -> &'static str {
        "(r - batch mean) / (batch std + eps); groups ignored"
    }

    fn compute(&self, input: &AdvantageInput, cfg: &AdvantageConfig) -> Result<Vec<f32>> {
        let r: Vec<f64> = input.rewards.iter().map(|&x| x as f64).collect();
        Ok(to_f32(batch_whiten(&r, cfg)))
    }
}

pub struct ReinforcePpBaseline;

impl AdvantageEstimator for ReinforcePpBaseline {
    fn name(&self) -> &'static str {
        "reinforce_pp_baseline"
    }

    fn description(&self) -> &'static str {
        "r - group mean, then whitened over the batch"
    }

    fn compute(&self, input: &AdvantageInput, cfg: &AdvantageConfig) -> Result<Vec<f32>> {
        let centred = group_normalise(input.rewards, input.groups, false, cfg);
        Ok(to_f32(batch_whiten(&centred, cfg)))
    }
}
