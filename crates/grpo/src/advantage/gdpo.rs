//! `gdpo`: Group reward-Decoupled normalisation Policy Optimisation (Liu et al., 2026). With
//! several rewards (here accuracy and format), normalising their *sum* per group collapses
//! distinct reward combinations onto the same advantage; GDPO normalises each component within
//! the group first (`(c_k - mean_k) / (std_k + eps)`, degenerate groups → 0), sums them with
//! [`AdvantageConfig::component_weights`], then (the paper's second stage, on by default)
//! whitens the sum over the whole batch so its scale does not grow with the number of components.

use super::{
    batch_whiten, group_normalise, to_f32, AdvantageConfig, AdvantageEstimator, AdvantageInput,
};
use crate::{GrpoError, Result};

pub struct Gdpo;

impl AdvantageEstimator for Gdpo {
    fn name(&self) -> &'static str {
        "gdpo"
    }

    fn description(&self) -> &'static str {
        "normalise each reward component per group, weighted sum, then batch whitening"
    }

    fn needs_components(&self) -> bool {
        true
    }

    fn compute(&self, input: &AdvantageInput, cfg: &AdvantageConfig) -> Result<Vec<f32>> {
        let comps = input
            .components
            .ok_or_else(|| GrpoError::Input("gdpo needs per-component rewards".into()))?;
        if comps.is_empty() {
            return Err(GrpoError::Input("gdpo got zero reward components".into()));
        }
        let weights = match &cfg.component_weights {
            Some(w) if w.len() != comps.len() => {
                return Err(GrpoError::Input(format!(
                    "gdpo: {} component weights for {} reward components",
                    w.len(),
                    comps.len()
                )))
            }
            Some(w) => w.clone(),
            None => vec![1.0; comps.len()],
        };
        let mut sum = vec![0.0f64; input.rewards.len()];
        for (c, w) in comps.iter().zip(&weights) {
            for (s, a) in sum
                .iter_mut()
                .zip(group_normalise(c, input.groups, true, cfg))
            {
                *s += w * a;
            }
        }
        if cfg.gdpo_batch_norm {
            sum = batch_whiten(&sum, cfg);
        }
        Ok(to_f32(sum))
    }
}
