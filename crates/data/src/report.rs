//! What a build reports (`report.json`): the counts that must add up, each source, the rows
//! after each stage, and what dedup, difficulty and mixing did. The pipeline fills it; the card
//! and the CLI read it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::mix::{Cell, Shortfall};
use crate::schema::Task;
use crate::synth::SynthSummary;

/// Rows and their make-up after a stage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StageCounts {
    pub stage: String,
    pub rows: usize,
    pub per_task: BTreeMap<String, usize>,
    pub per_source: BTreeMap<String, usize>,
}

/// The identity every build checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub input: usize,
    /// Ingest + normalise + validate rejects (`rejected.jsonl`).
    pub rejected: usize,
    pub deduplicated: usize,
    /// Difficulty filter.
    pub filtered: usize,
    pub not_selected: usize,
    pub kept: usize,
}

impl Counts {
    /// `input = kept + rejected + deduplicated + filtered + not_selected`.
    pub fn balanced(&self) -> bool {
        self.input
            == self.kept + self.rejected + self.deduplicated + self.filtered + self.not_selected
    }
}

/// One input of the build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceReport {
    pub name: String,
    pub path: PathBuf,
    pub format: String,
    pub rows: usize,
    pub rejected_at_ingest: usize,
}

/// `report.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildReport {
    pub identity: String,
    pub counts: Counts,
    pub balanced: bool,
    pub rejected_by_stage: BTreeMap<String, usize>,
    /// Stage -> reason kind -> rows.
    pub reasons: BTreeMap<String, BTreeMap<String, usize>>,
    pub sources: Vec<SourceReport>,
    /// Rows after each stage, per task and source.
    pub stages: Vec<StageCounts>,
    pub dedup: DedupReport,
    pub difficulty: Option<DifficultyReport>,
    pub mix_cells: Vec<Cell>,
    pub shortfalls: Vec<Shortfall>,
    pub synth: Option<SynthSummary>,
    pub notes: Vec<String>,
    pub files: Vec<PathBuf>,
    /// Seconds per stage.
    pub seconds: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DedupReport {
    pub exact: usize,
    pub near: usize,
    pub unhashed_images: usize,
    pub lsh_bands: usize,
    pub lsh_rows: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DifficultyReport {
    pub rollouts: PathBuf,
    pub samples_with_rollouts: usize,
    pub kept_without_rollouts: usize,
    pub filtered: usize,
    pub bad_rollout_lines: usize,
    pub bad_rollout_examples: Vec<String>,
}

/// Tasks in schema order with their counts (zeros included), for tables.
pub fn task_rows(c: &BTreeMap<String, usize>) -> Vec<(Task, usize)> {
    Task::ALL
        .iter()
        .map(|t| (*t, c.get(t.as_str()).copied().unwrap_or(0)))
        .collect()
}
