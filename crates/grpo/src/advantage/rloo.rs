//! `rloo`: REINFORCE leave-one-out (Ahmadian et al., 2024): each sample's baseline is the mean
//! of the *other* members of its group, `A_i = r_i - (sum_j r_j - r_i) / (n - 1)`, which is
//! unbiased because the baseline does not depend on the sample itself.

use super::{to_f32, AdvantageConfig, AdvantageEstimator, AdvantageInput};
use crate::Result;

pub struct Rloo;

impl AdvantageEstimator for Rloo {
    fn name(&self) -> &'static str {
        "rloo"
    }

    fn description(&self) -> &'static str {
        "r - mean of the other group members (leave-one-out baseline)"
    }

    fn compute(&self, input: &AdvantageInput, _cfg: &AdvantageConfig) -> Result<Vec<f32>> {
        let r = input.rewards;
        let mut out = vec![0.0f64; r.len()];
        for g in input.groups.iter() {
            // One member: no other sample to form a baseline from.
            if g.len() < 2 || super::all_equal(r, g) {
                continue;
            }
            let sum: f64 = g.iter().map(|&i| r[i] as f64).sum();
            let others = (g.len() - 1) as f64;
            for &i in g {
                out[i] = r[i] as f64 - (sum - r[i] as f64) / others;
            }
        }
        Ok(to_f32(out))
    }
}
