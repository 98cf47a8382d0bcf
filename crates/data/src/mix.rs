//! Mix: pick a training set of an exact size and task / source make-up from the candidates.
//!
//! ```toml
//! [mix]
//! total = 45000
//! seed = 7
//! [mix.tasks]             # shares of `total`; must sum to 1
//! yes_no = 0.20
//! mcq = 0.20
//! ...
//! [mix.sources]           # optional: how each task's quota splits across sources
//! easy-vqa = 0.5
//! synth-shapes = 0.5
//! ```
//!
//! Rules:
//! * Task quotas are `total * share`, rounded by the largest-remainder method (ties to the task
//!   listed first in [`Task::ALL`]), so they sum to `total` exactly. Tasks not listed get no quota.
//! * With `[mix.sources]`, each task's quota is split the same way across the listed sources that
//!   **offer that task** (have at least one candidate of it), their shares renormalised over those
//!   sources. Without it, each task draws from all its candidates, whatever their source.
//! * Within a cell (task, or task x source), candidates are shuffled with a ChaCha8 stream seeded
//!   by `seed` (one stream per cell, so cells do not disturb each other) and the first `quota` are
//!   taken.
//! * A cell with fewer candidates than its quota takes them all and records a **shortfall**; the
//!   gap is never filled from another task or source, so the output is smaller than `total` by the
//!   sum of the shortfalls, and the report and card say so.
//! * The selected samples are shuffled (seeded) so that tasks are interleaved in the output.

use std::collections::BTreeMap;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::schema::{Reject, Row, Sample, Stage, Task};

/// `[mix]` in a recipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixConfig {
    pub total: usize,
    #[serde(default)]
    pub seed: u64,
    /// Task name -> share of `total`.
    pub tasks: BTreeMap<String, f64>,
    /// Source name -> share within each task (optional).
    #[serde(default)]
    pub sources: BTreeMap<String, f64>,
    /// Shuffle the selected samples (default true).
    #[serde(default = "yes")]
    pub shuffle: bool,
}

fn yes() -> bool {
    true
}

impl MixConfig {
    /// Checks names and shares: tasks must be schema task names, shares finite and >= 0, task
    /// shares summing to 1 (within 1e-6), source shares to a positive sum.
    pub fn validate(&self) -> Result<(), String> {
        for (name, &share) in self.tasks.iter().chain(&self.sources) {
            if !share.is_finite() || share < 0.0 {
                return Err(format!(
                    "mix share of {name:?} must be a finite number >= 0, got {share}"
                ));
            }
        }
        for name in self.tasks.keys() {
            if Task::from_name(name).is_none() {
                let names: Vec<&str> = Task::ALL.iter().map(|t| t.as_str()).collect();
                return Err(format!(
                    "mix.tasks: unknown task {name:?} (tasks: {})",
                    names.join(", ")
                ));
            }
        }
        let sum: f64 = self.tasks.values().sum();
        if (sum - 1.0).abs() > 1e-6 {
            return Err(format!("mix.tasks shares must sum to 1, they sum to {sum}"));
        }
        if !self.sources.is_empty() && self.sources.values().sum::<f64>() <= 0.0 {
            return Err("mix.sources shares must have a positive sum".into());
        }
        Ok(())
    }

    fn task_shares(&self) -> Vec<(Task, f64)> {
        Task::ALL
            .into_iter()
            .filter_map(|t| self.tasks.get(t.as_str()).map(|&s| (t, s)))
            .collect()
    }
}

/// Splits `total` in proportion to `shares` (any positive sum) by the largest-remainder method;
/// ties go to the earlier entry. The parts sum to `total` exactly (zero when all shares are zero).
pub fn largest_remainder(total: usize, shares: &[f64]) -> Vec<usize> {
    let sum: f64 = shares.iter().sum();
    if shares.is_empty() || sum <= 0.0 {
        return vec![0; shares.len()];
    }
    let exact: Vec<f64> = shares.iter().map(|s| total as f64 * s / sum).collect();
    let mut parts: Vec<usize> = exact.iter().map(|e| e.floor() as usize).collect();
    let assigned: usize = parts.iter().sum();
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by(|&a, &b| {
        let (fa, fb) = (exact[a] - exact[a].floor(), exact[b] - exact[b].floor());
        fb.partial_cmp(&fa)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.cmp(&b))
    });
    for &i in order.iter().take(total.saturating_sub(assigned)) {
        parts[i] += 1;
    }
    parts
}

/// A cell that could not be filled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shortfall {
    pub task: String,
    /// The source, when `[mix.sources]` split the task.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub wanted: usize,
    pub available: usize,
}

impl std::fmt::Display for Shortfall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.task)?;
        if let Some(source) = &self.source {
            write!(f, " from {source}")?;
        }
        write!(
            f,
            " wanted {}, only {} available",
            self.wanted, self.available
        )
    }
}

/// One cell of the mix plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    pub task: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub quota: usize,
    pub available: usize,
    pub selected: usize,
}

#[derive(Debug, Default)]
pub struct MixOutcome {
    pub selected: Vec<Row<Sample>>,
    /// Candidates not selected, at [`Stage::Mix`].
    pub not_selected: Vec<Reject>,
    pub cells: Vec<Cell>,
    pub shortfalls: Vec<Shortfall>,
}

/// Applies the recipe to `candidates` (in input order). `cfg` must have passed
/// [`MixConfig::validate`].
pub fn mix(candidates: Vec<Row<Sample>>, cfg: &MixConfig) -> MixOutcome {
    let task_shares = cfg.task_shares();
    let quotas = largest_remainder(
        cfg.total,
        &task_shares.iter().map(|t| t.1).collect::<Vec<_>>(),
    );
    let mut by_task: BTreeMap<Task, Vec<usize>> = BTreeMap::new();
    for (i, row) in candidates.iter().enumerate() {
        by_task.entry(row.item.task).or_default().push(i);
    }
    let mut chosen = vec![false; candidates.len()];
    let mut why: Vec<String> = vec![String::new(); candidates.len()];
    let mut out = MixOutcome::default();
    let mut cell_no = 0u64;

    for ((task, _), &quota) in task_shares.iter().zip(&quotas) {
        let pool = by_task.remove(task).unwrap_or_default();
        // The cells of this task: one, or one per listed source offering it.
        let cells: Vec<(Option<String>, Vec<usize>, usize)> = if cfg.sources.is_empty() {
            vec![(None, pool, quota)]
        } else {
            let offering: Vec<(&String, f64)> = cfg
                .sources
                .iter()
                .filter(|(name, _)| pool.iter().any(|&i| &candidates[i].item.source == *name))
                .map(|(n, &s)| (n, s))
                .collect();
            let split = largest_remainder(quota, &offering.iter().map(|o| o.1).collect::<Vec<_>>());
            let mut cells: Vec<(Option<String>, Vec<usize>, usize)> = offering
                .iter()
                .zip(split)
                .map(|((name, _), q)| {
                    let members = pool
                        .iter()
                        .copied()
                        .filter(|&i| &candidates[i].item.source == *name)
                        .collect();
                    (Some((*name).clone()), members, q)
                })
                .collect();
            if offering.iter().all(|o| o.1 == 0.0) && quota > 0 {
                // No listed source offers this task: the whole quota is a shortfall.
                cells = vec![(None, Vec::new(), quota)];
            }
            for &i in &pool {
                if !cfg.sources.contains_key(&candidates[i].item.source) {
                    why[i] = format!(
                        "not selected by mix: source {:?} has no share in mix.sources",
                        candidates[i].item.source
                    );
                }
            }
            cells
        };
        for (source, mut members, quota) in cells {
            let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
            rng.set_stream(cell_no);
            cell_no += 1;
            members.shuffle(&mut rng);
            let take = quota.min(members.len());
            for &i in &members[..take] {
                chosen[i] = true;
            }
            let label = match &source {
                Some(s) => format!("{task} from {s}"),
                None => task.to_string(),
            };
            for &i in &members[take..] {
                why[i] = format!(
                    "not selected by mix: {label} quota {quota} of {} candidates",
                    members.len()
                );
            }
            if members.len() < quota {
                out.shortfalls.push(Shortfall {
                    task: task.to_string(),
                    source: source.clone(),
                    wanted: quota,
                    available: members.len(),
                });
            }
            out.cells.push(Cell {
                task: task.to_string(),
                source,
                quota,
                available: members.len(),
                selected: take,
            });
        }
    }
    for (task, rest) in by_task {
        for i in rest {
            why[i] = format!("not selected by mix: task {task} has no share in mix.tasks");
        }
    }

    for ((row, picked), reason) in candidates.into_iter().zip(chosen).zip(why) {
        if picked {
            out.selected.push(row);
        } else {
            let mut r = Reject::new(&row.origin, Stage::Mix, reason);
            r.id = Some(row.item.id);
            out.not_selected.push(r);
        }
    }
    if cfg.shuffle {
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        rng.set_stream(u64::MAX);
        out.selected.shuffle(&mut rng);
    }
    out
}
