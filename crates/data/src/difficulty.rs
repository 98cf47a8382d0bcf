//! Difficulty: keep the samples a policy can learn from, judged by its own rollouts.
//!
//! Input: a rollouts file (JSON Lines) with `k` responses per sample, in either layout:
//! `{"id": "s1", "responses": ["...", "..."]}` or one response a line, `{"id": "s1", "response":
//! "..."}` (lines of one id are gathered; both layouts may be mixed). Each response is scored with
//! the mixed reward ([`mixed_r1_reward::Scorer`], in parallel) against the sample's gold answer.
//!
//! Rules (GRPO learns nothing from a group whose rewards are all equal):
//! * **binary tasks** (`yes_no`, `mcq`, `numeric`, `math`, and `chart` unless its reward is in
//!   `partial` mode): a response *passes* when its accuracy >= `pass_threshold` (default 1.0);
//!   `pass_rate` = passes / k. Kept when `0 < pass_rate < 1`, or, with `band = [lo, hi]`, when
//!   `lo <= pass_rate <= hi`.
//! * **continuous tasks** (`grounding` IoU, `open_ended` BMAS, `chart` in `partial` mode): kept when
//!   the population standard deviation of the total reward over the k responses is >=
//!   `std_floor` (default 0.05).
//! * a sample with no rollouts is kept (`missing = "keep"`, the default, counted in the report) or
//!   dropped (`missing = "drop"`); a sample whose gold the reward skips (unusable ground truth) is
//!   dropped, with the reward's reason;
//! * rollout lines that are not valid JSON or lack `id` / `response(s)` are counted and listed
//!   (first 20) in the report, never fatal; a rollouts file that cannot be read is an error.
//!
//! Kept samples carry their statistics in `meta.difficulty` (`k`, `pass_rate`, `reward_mean`,
//! `reward_std`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use mixed_r1_reward::chart::ChartMode;
use mixed_r1_reward::{RewardConfig, Scorer};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::schema::{scoring_sample, Reject, Row, Sample, Stage, Task};

/// `[difficulty]` in a recipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DifficultyConfig {
    /// The rollouts file; the stage is skipped when it is not set.
    pub rollouts: Option<PathBuf>,
    /// A reward.toml for scoring (default: the reward crate's defaults).
    pub reward_config: Option<PathBuf>,
    /// Accuracy at or above which a response passes (binary tasks).
    pub pass_threshold: f64,
    /// Inclusive pass-rate band `[lo, hi]`; default: strictly between 0 and 1.
    pub band: Option<[f64; 2]>,
    /// Minimum reward standard deviation for continuous tasks.
    pub std_floor: f64,
    /// What to do with samples that have no rollouts.
    pub missing: Missing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Missing {
    Keep,
    Drop,
}

impl Default for DifficultyConfig {
    fn default() -> Self {
        DifficultyConfig {
            rollouts: None,
            reward_config: None,
            pass_threshold: 1.0,
            band: None,
            std_floor: 0.05,
            missing: Missing::Keep,
        }
    }
}

impl DifficultyConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.pass_threshold) {
            return Err(format!(
                "difficulty.pass_threshold must be in [0, 1], got {}",
                self.pass_threshold
            ));
        }
        if let Some([lo, hi]) = self.band {
            if !(0.0..=1.0).contains(&lo) || !(0.0..=1.0).contains(&hi) || lo > hi {
                return Err(format!(
                    "difficulty.band must be [lo, hi] with 0 <= lo <= hi <= 1, got [{lo}, {hi}]"
                ));
            }
        }
        if !self.std_floor.is_finite() || self.std_floor < 0.0 {
            return Err(format!(
                "difficulty.std_floor must be >= 0, got {}",
                self.std_floor
            ));
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DifficultyError {
    #[error("cannot read the rollouts file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("reward configuration: {0}")]
    Reward(String),
}

/// Rollouts by sample id, plus the lines that could not be used.
#[derive(Debug, Default, Clone)]
pub struct Rollouts {
    pub by_id: HashMap<String, Vec<String>>,
    pub bad_lines: Vec<String>,
    pub bad_count: usize,
}

fn id_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Rollouts {
    pub fn parse(text: &str, file: &Path) -> Rollouts {
        let mut r = Rollouts::default();
        let bad = |r: &mut Rollouts, line: usize, why: &str| {
            r.bad_count += 1;
            if r.bad_lines.len() < 20 {
                r.bad_lines
                    .push(format!("{}:{line}: {why}", file.display()));
            }
        };
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let v: Value = match serde_json::from_str(line) {
                Ok(v) => v,
                Err(e) => {
                    bad(&mut r, n + 1, &format!("not JSON: {e}"));
                    continue;
                }
            };
            let Some(id) = v.get("id").and_then(id_of) else {
                bad(&mut r, n + 1, "no string or number `id`");
                continue;
            };
            let responses: Vec<String> = match (v.get("responses"), v.get("response")) {
                (Some(Value::Array(items)), _) if items.iter().all(Value::is_string) => items
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect(),
                (None, Some(Value::String(s))) => vec![s.clone()],
                _ => {
                    bad(
                        &mut r,
                        n + 1,
                        "needs `responses` (a list of strings) or `response` (a string)",
                    );
                    continue;
                }
            };
            r.by_id.entry(id).or_default().extend(responses);
        }
        r
    }

    pub fn load(path: &Path) -> Result<Rollouts, DifficultyError> {
        let text = std::fs::read_to_string(path).map_err(|source| DifficultyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Rollouts::parse(&text, path))
    }
}

/// The statistics of one sample's rollouts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub k: usize,
    pub pass_rate: f64,
    pub reward_mean: f64,
    pub reward_std: f64,
    pub continuous: bool,
}

#[derive(Debug, Default)]
pub struct DifficultyOutcome {
    pub kept: Vec<Row<Sample>>,
    /// Filtered rows at [`Stage::Difficulty`].
    pub filtered: Vec<Reject>,
    /// Samples kept without rollouts.
    pub kept_without_rollouts: usize,
    pub bad_rollout_lines: Vec<String>,
    pub bad_rollout_count: usize,
}

/// Whether `task` is judged by reward spread rather than pass rate under `reward`.
pub fn is_continuous(task: Task, reward: &RewardConfig) -> bool {
    match task {
        Task::Grounding | Task::OpenEnded => true,
        Task::Chart => reward.chart.mode == ChartMode::Partial,
        _ => false,
    }
}

/// Scores every sample's rollouts and applies the rules of the module documentation.
pub fn filter(
    rows: Vec<Row<Sample>>,
    rollouts: &Rollouts,
    cfg: &DifficultyConfig,
    scorer: &Scorer,
) -> DifficultyOutcome {
    let verdicts: Vec<Result<Option<Stats>, String>> = rows
        .par_iter()
        .map(|row| judge(&row.item, rollouts.by_id.get(&row.item.id), cfg, scorer))
        .collect();
    let mut out = DifficultyOutcome {
        bad_rollout_lines: rollouts.bad_lines.clone(),
        bad_rollout_count: rollouts.bad_count,
        ..Default::default()
    };
    for (mut row, verdict) in rows.into_iter().zip(verdicts) {
        match verdict {
            Ok(None) => {
                out.kept_without_rollouts += 1;
                out.kept.push(row);
            }
            Ok(Some(stats)) => {
                row.item.meta.insert(
                    "difficulty".into(),
                    json!({"k": stats.k, "pass_rate": stats.pass_rate,
                           "reward_mean": stats.reward_mean, "reward_std": stats.reward_std}),
                );
                out.kept.push(row);
            }
            Err(reason) => {
                let mut r = Reject::new(&row.origin, Stage::Difficulty, reason);
                r.id = Some(row.item.id);
                out.filtered.push(r);
            }
        }
    }
    out
}

/// `Ok(None)`: kept without rollouts; `Ok(Some)`: kept with statistics; `Err`: filtered, why.
pub fn judge(
    s: &Sample,
    responses: Option<&Vec<String>>,
    cfg: &DifficultyConfig,
    scorer: &Scorer,
) -> Result<Option<Stats>, String> {
    let responses = match responses {
        Some(r) if !r.is_empty() => r,
        _ => {
            return match cfg.missing {
                Missing::Keep => Ok(None),
                Missing::Drop => Err("no rollouts for this sample".into()),
            }
        }
    };
    let mut accuracies = Vec::with_capacity(responses.len());
    let mut rewards = Vec::with_capacity(responses.len());
    for resp in responses {
        let result = scorer.score(&scoring_sample(s, resp));
        match (result.accuracy, result.reward) {
            (Some(a), Some(r)) => {
                accuracies.push(a);
                rewards.push(r);
            }
            _ => {
                return Err(format!(
                    "the reward skips this sample: {}",
                    result.error.unwrap_or_else(|| "no accuracy".into())
                ))
            }
        }
    }
    let k = responses.len();
    let passes = accuracies
        .iter()
        .filter(|&&a| a >= cfg.pass_threshold)
        .count();
    let pass_rate = passes as f64 / k as f64;
    let mean = rewards.iter().sum::<f64>() / k as f64;
    let std = (rewards.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / k as f64).sqrt();
    let continuous = is_continuous(s.task, scorer.config());
    let stats = Stats {
        k,
        pass_rate,
        reward_mean: mean,
        reward_std: std,
        continuous,
    };
    if continuous {
        if std >= cfg.std_floor {
            Ok(Some(stats))
        } else {
            Err(format!(
                "reward std {std:.3} over {k} rollouts is below the floor {}",
                cfg.std_floor
            ))
        }
    } else {
        let inside = match cfg.band {
            Some([lo, hi]) => lo <= pass_rate && pass_rate <= hi,
            None => pass_rate > 0.0 && pass_rate < 1.0,
        };
        if inside {
            Ok(Some(stats))
        } else {
            let band = match cfg.band {
                Some([lo, hi]) => format!("[{lo}, {hi}]"),
                None => "(0, 1)".into(),
            };
            let label = if pass_rate == 0.0 {
                "too hard"
            } else if pass_rate == 1.0 {
                "too easy"
            } else {
                "outside the band"
            };
            Err(format!("{label}: pass rate {passes}/{k} outside {band}"))
        }
    }
}

/// A scorer from an optional reward.toml.
pub fn scorer_for(cfg: &DifficultyConfig) -> Result<Scorer, DifficultyError> {
    let reward = match &cfg.reward_config {
        Some(p) => {
            RewardConfig::from_file(p).map_err(|e| DifficultyError::Reward(e.to_string()))?
        }
        None => RewardConfig::default(),
    };
    Scorer::new(reward).map_err(|e| DifficultyError::Reward(e.to_string()))
}
