//! Advantage estimators over rewards grouped by prompt, behind a name registry.
//!
//! GRPO-family trainers sample G completions per prompt and turn each completion's reward into an
//! advantage relative to its group. Which baseline and which scaling is a research choice, so,
//! like verl's `register_adv_est`, estimators live in a registry keyed by name and the config
//! picks one. A new estimator is one file under `advantage/` implementing
//! [`AdvantageEstimator`], plus one line in [`AdvantageRegistry::builtin`] (or a runtime
//! [`AdvantageRegistry::register`] call).
//!
//! Conventions shared by every estimator (and why):
//! - statistics are computed in f64 and returned as f32, so a group of 64 equal f32 rewards cannot
//!   produce a rounding-noise advantage;
//! - a group whose members all have the same reward gets exactly 0 (no relative signal; dividing
//!   rounding noise by `std + eps` would otherwise turn it into large random advantages);
//! - a single-member group gets 0: with no peers there is no baseline (verl instead uses mean 0,
//!   std 1, i.e. the raw reward, which silently changes the objective for that prompt);
//! - std is the unbiased (Bessel) std by default, as `torch.std` in TRL and verl, and
//!   [`AdvantageConfig::unbiased_std`] switches to the population std.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{GrpoError, Result};

mod dr_grpo;
mod gdpo;
mod grpo;
mod reinforce_pp;
mod rloo;

pub use dr_grpo::DrGrpo;
pub use gdpo::Gdpo;
pub use grpo::Grpo;
pub use reinforce_pp::{ReinforcePp, ReinforcePpBaseline};
pub use rloo::Rloo;

/// Which samples belong to which prompt: a list of groups, each a list of sample indices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Groups {
    members: Vec<Vec<usize>>,
    n_samples: usize,
}

impl Groups {
    /// Groups from one id per sample (any hashable id, e.g. the prompt's uid); groups keep the
    /// order of first appearance and members need not be contiguous.
    pub fn from_ids<T: Eq + Hash>(ids: &[T]) -> Groups {
        let mut index: HashMap<&T, usize> = HashMap::new();
        let mut members: Vec<Vec<usize>> = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let g = *index.entry(id).or_insert_with(|| {
                members.push(Vec::new());
                members.len() - 1
            });
            members[g].push(i);
        }
        Groups {
            members,
            n_samples: ids.len(),
        }
    }

    /// Contiguous groups: the first `sizes[0]` samples, then the next `sizes[1]`, ...
    pub fn from_sizes(sizes: &[usize]) -> Groups {
        let mut start = 0;
        let members = sizes
            .iter()
            .map(|&s| {
                let g: Vec<usize> = (start..start + s).collect();
                start += s;
                g
            })
            .collect();
        Groups {
            members,
            n_samples: start,
        }
    }

    /// `n_groups` contiguous groups of `group_size` each (the usual rollout layout).
    pub fn uniform(n_groups: usize, group_size: usize) -> Groups {
        Groups::from_sizes(&vec![group_size; n_groups])
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Total number of samples the groups index into.
    pub fn n_samples(&self) -> usize {
        self.n_samples
    }

    pub fn iter(&self) -> impl Iterator<Item = &[usize]> {
        self.members.iter().map(|g| g.as_slice())
    }

    pub fn group(&self, g: usize) -> &[usize] {
        &self.members[g]
    }
}

/// Knobs shared by the estimators; each reads only the ones it documents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdvantageConfig {
    /// `grpo`: divide by the group std (false = Dr.GRPO's `scale_rewards = false`).
    pub scale_std: bool,
    /// Added to the std before dividing (TRL / verl use 1e-6 for GRPO).
    pub eps: f64,
    /// Bessel-corrected std (n - 1), as `torch.std`; false = population std (n).
    pub unbiased_std: bool,
    /// `gdpo`: normalise the summed advantage over the whole batch afterwards (the paper's
    /// second stage, which keeps the scale independent of the number of reward components).
    pub gdpo_batch_norm: bool,
    /// `gdpo`: weight of each reward component in the sum (default all 1).
    pub component_weights: Option<Vec<f64>>,
}

impl Default for AdvantageConfig {
    fn default() -> Self {
        AdvantageConfig {
            scale_std: true,
            eps: 1e-6,
            unbiased_std: true,
            gdpo_batch_norm: true,
            component_weights: None,
        }
    }
}

/// What an estimator sees.
#[derive(Debug, Clone, Copy)]
pub struct AdvantageInput<'a> {
    /// The scalar reward of each sample.
    pub rewards: &'a [f32],
    /// Per-component rewards, `components[k][i]` = component k of sample i (e.g. accuracy and
    /// format); only estimators with [`AdvantageEstimator::needs_components`] read them.
    pub components: Option<&'a [Vec<f32>]>,
    pub groups: &'a Groups,
}

impl<'a> AdvantageInput<'a> {
    pub fn new(rewards: &'a [f32], groups: &'a Groups) -> Self {
        AdvantageInput {
            rewards,
            components: None,
            groups,
        }
    }

    pub fn with_components(mut self, components: &'a [Vec<f32>]) -> Self {
        self.components = Some(components);
        self
    }

    /// Checks lengths, finiteness and that every sample is in exactly one group.
    pub fn validate(&self) -> Result<()> {
        let n = self.rewards.len();
        if self.groups.n_samples() != n {
            return Err(GrpoError::Input(format!(
                "groups cover {} samples but there are {n} rewards",
                self.groups.n_samples()
            )));
        }
        let mut seen = vec![false; n];
        for g in self.groups.iter() {
            for &i in g {
                if i >= n || std::mem::replace(&mut seen[i], true) {
                    return Err(GrpoError::Input(format!(
                        "sample index {i} is out of range or in two groups"
                    )));
                }
            }
        }
        if let Some(i) = seen.iter().position(|s| !s) {
            return Err(GrpoError::Input(format!("sample {i} is in no group")));
        }
        check_finite("reward", self.rewards)?;
        if let Some(comps) = self.components {
            for (k, c) in comps.iter().enumerate() {
                if c.len() != n {
                    return Err(GrpoError::Input(format!(
                        "reward component {k} has {} values, expected {n}",
                        c.len()
                    )));
                }
                check_finite("reward component", c)?;
            }
        }
        Ok(())
    }
}

fn check_finite(what: &str, v: &[f32]) -> Result<()> {
    match v.iter().position(|x| !x.is_finite()) {
        Some(i) => Err(GrpoError::Input(format!(
            "{what} of sample {i} is {} (skipped samples must be dropped or given a reward \
             before computing advantages)",
            v[i]
        ))),
        None => Ok(()),
    }
}

/// An advantage estimator: rewards of grouped samples in, one advantage per sample out.
pub trait AdvantageEstimator: Send + Sync {
    /// The registry name.
    fn name(&self) -> &'static str;
    /// One line for `--help` and the notes.
    fn description(&self) -> &'static str;
    /// True when the estimator reads [`AdvantageInput::components`].
    fn needs_components(&self) -> bool {
        false
    }
    /// Advantages in sample order. Callers go through [`AdvantageRegistry::compute`], which
    /// validates the input first.
    fn compute(&self, input: &AdvantageInput, cfg: &AdvantageConfig) -> Result<Vec<f32>>;
}

/// Name → estimator.
#[derive(Clone)]
pub struct AdvantageRegistry {
    map: BTreeMap<String, Arc<dyn AdvantageEstimator>>,
}

impl AdvantageRegistry {
    /// An empty registry (for tests of custom estimators).
    pub fn empty() -> Self {
        AdvantageRegistry {
            map: BTreeMap::new(),
        }
    }

    /// Every built-in estimator.
    pub fn builtin() -> Self {
        let mut r = Self::empty();
        r.register(Arc::new(Grpo));
        r.register(Arc::new(DrGrpo));
        r.register(Arc::new(Rloo));
        r.register(Arc::new(Gdpo));
        r.register(Arc::new(ReinforcePp));
        r.register(Arc::new(ReinforcePpBaseline));
        r
    }

    /// Adds (or replaces) an estimator under its own name.
    pub fn register(&mut self, est: Arc<dyn AdvantageEstimator>) {
        self.map.insert(est.name().to_string(), est);
    }

    pub fn get(&self, name: &str) -> Result<Arc<dyn AdvantageEstimator>> {
        self.map
            .get(name)
            .cloned()
            .ok_or_else(|| GrpoError::unknown("advantage estimator", name, &self.names()))
    }

    pub fn names(&self) -> Vec<&str> {
        self.map.keys().map(|s| s.as_str()).collect()
    }

    /// Validates the input, then runs the named estimator.
    pub fn compute(
        &self,
        name: &str,
        input: &AdvantageInput,
        cfg: &AdvantageConfig,
    ) -> Result<Vec<f32>> {
        let est = self.get(name)?;
        input.validate()?;
        if est.needs_components() && input.components.is_none() {
            return Err(GrpoError::Input(format!(
                "advantage estimator `{name}` needs per-component rewards"
            )));
        }
        est.compute(input, cfg)
    }
}

/// Names of the built-in estimators.
pub const BUILTIN: &[&str] = &[
    "dr_grpo",
    "gdpo",
    "grpo",
    "reinforce_pp",
    "reinforce_pp_baseline",
    "rloo",
];

/// Runs a built-in estimator by name.
pub fn compute_advantages(
    name: &str,
    input: &AdvantageInput,
    cfg: &AdvantageConfig,
) -> Result<Vec<f32>> {
    AdvantageRegistry::builtin().compute(name, input, cfg)
}

/// Mean and std of `values[idx]` in f64.
pub fn group_stats(values: &[f32], idx: &[usize], unbiased: bool) -> (f64, f64) {
    let n = idx.len();
    if n == 0 {
        return (0.0, 0.0);
    }
    let mean = idx.iter().map(|&i| values[i] as f64).sum::<f64>() / n as f64;
    let dof = if unbiased { n.saturating_sub(1) } else { n };
    let var = if dof == 0 {
        0.0
    } else {
        idx.iter()
            .map(|&i| (values[i] as f64 - mean).powi(2))
            .sum::<f64>()
            / dof as f64
    };
    (mean, var.sqrt())
}

/// True when every `values[idx]` is identical (or there are fewer than two).
pub fn all_equal(values: &[f32], idx: &[usize]) -> bool {
    idx.windows(2).all(|w| values[w[0]] == values[w[1]])
}

/// Per-group normalisation used by `grpo` and `gdpo`: `(r - mean) / (std + eps)` or, without
/// scaling, `r - mean`; degenerate groups (one member, all equal) get 0.
pub(crate) fn group_normalise(
    values: &[f32],
    groups: &Groups,
    scale_std: bool,
    cfg: &AdvantageConfig,
) -> Vec<f64> {
    let mut out = vec![0.0f64; values.len()];
    for g in groups.iter() {
        if g.len() < 2 || all_equal(values, g) {
            continue;
        }
        let (mean, std) = group_stats(values, g, cfg.unbiased_std);
        for &i in g {
            let centred = values[i] as f64 - mean;
            out[i] = if scale_std {
                centred / (std + cfg.eps)
            } else {
                centred
            };
        }
    }
    out
}

/// Whitening over the whole batch: `(x - mean) / (std + eps)`; all-equal input gives 0.
pub(crate) fn batch_whiten(x: &[f64], cfg: &AdvantageConfig) -> Vec<f64> {
    let n = x.len();
    if n < 2 || x.windows(2).all(|w| w[0] == w[1]) {
        return vec![0.0; n];
    }
    let mean = x.iter().sum::<f64>() / n as f64;
    let dof = if cfg.unbiased_std { n - 1 } else { n };
    let std = (x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / dof as f64).sqrt();
    x.iter().map(|v| (v - mean) / (std + cfg.eps)).collect()
}

pub(crate) fn to_f32(x: Vec<f64>) -> Vec<f32> {
    x.into_iter().map(|v| v as f32).collect()
}
