//! The sample schema of DESIGN.md, the loose draft adapters produce, and where rows came from.
//!
//! Adapters read many formats into [`Draft`]s (every field optional, nothing judged yet);
//! `normalise` turns a draft into a [`Sample`] (task inferred, required fields checked) or a
//! [`Reject`]. Every row carries its [`Origin`] so a reject names the file and line it came from.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use mixed_r1_reward::iou::Frame;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use mixed_r1_reward::Answer;

/// The task of a sample; it picks the sample's reward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    YesNo,
    Mcq,
    Numeric,
    Math,
    Chart,
    Grounding,
    OpenEnded,
}

impl Task {
    pub const ALL: [Task; 7] = [
        Task::YesNo,
        Task::Mcq,
        Task::Numeric,
        Task::Math,
        Task::Chart,
        Task::Grounding,
        Task::OpenEnded,
    ];

    /// The schema name (`yes_no`, ...), the same as the reward crate's task names.
    pub fn as_str(self) -> &'static str {
        mixed_r1_reward::router::TASKS[self as usize]
    }

    pub fn from_name(name: &str) -> Option<Task> {
        Task::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One training sample (DESIGN.md): `answer` is text, except grounding (a list of boxes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub id: String,
    pub source: String,
    pub task: Task,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
    pub problem: String,
    pub answer: Answer,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame: Option<Frame>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pred_frame: Option<Frame>,
    /// `[width, height]` of the (first) image, recorded by validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_size: Option<[u32; 2]>,
    /// Overrides the reward the task picks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reward: Option<String>,
    /// Anything else worth keeping (source-specific fields, difficulty statistics, ...).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub meta: Map<String, Value>,
}

/// What an adapter read, before anything is judged: every field optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Draft {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub task: Option<String>,
    #[serde(default)]
    pub images: Vec<String>,
    #[serde(default)]
    pub problem: Option<String>,
    #[serde(default)]
    pub answer: Option<Answer>,
    #[serde(default)]
    pub choices: Vec<String>,
    #[serde(default)]
    pub frame: Option<Frame>,
    #[serde(default)]
    pub pred_frame: Option<Frame>,
    #[serde(default)]
    pub image_size: Option<[u32; 2]>,
    #[serde(default)]
    pub reward: Option<String>,
    #[serde(default)]
    pub meta: Map<String, Value>,
}

/// Where a row came from: the input file and the 1-based line (or record number for formats
/// without lines, such as Parquet rows or JSON array items).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Origin {
    pub file: Arc<PathBuf>,
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// A row in flight through the pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Row<T> {
    pub item: T,
    pub origin: Origin,
}

/// The pipeline stages, in order. A row leaves the pipeline at most once, at one stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Ingest,
    Normalise,
    Validate,
    Dedup,
    Difficulty,
    Mix,
}

/// A row that left the pipeline, and why: one line of `rejected.jsonl` (or of the report of
/// deduplicated / filtered rows).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reject {
    pub file: Arc<PathBuf>,
    pub line: usize,
    pub stage: Stage,
    pub reason: String,
    /// The sample id, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

impl Reject {
    pub fn new(origin: &Origin, stage: Stage, reason: impl Into<String>) -> Reject {
        Reject {
            file: origin.file.clone(),
            line: origin.line,
            stage,
            reason: reason.into(),
            id: None,
        }
    }
}

/// The source formats the adapters read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceFormat {
    /// Our JSONL (DESIGN.md schema).
    Jsonl,
    /// LLaVA conversation JSON.
    Llava,
    /// VLM-R1 JSONL (with `accu_reward_method`).
    VlmR1,
    /// verl RL Parquet.
    Verl,
    /// EasyR1 Parquet.
    Easyr1,
    /// RefCOCO-style refs (COCO xywh boxes + image sizes).
    Refcoco,
    /// ChartQA-style JSON.
    Chartqa,
    /// COCO-captions-style annotations.
    CocoCaptions,
    /// ScienceQA-style multiple choice.
    Scienceqa,
    /// The easy-vqa dataset folder (PyPI `easy-vqa`).
    EasyVqa,
}

/// One input of a build: `[[source]]` in a recipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// The `source` name given to its samples (defaults to the file stem).
    #[serde(default)]
    pub name: Option<String>,
    pub format: SourceFormat,
    pub path: PathBuf,
    /// Folder that relative image paths are resolved against (default: the file's folder).
    #[serde(default)]
    pub image_root: Option<PathBuf>,
    /// Format-specific options (e.g. `split = "train"`, `grounding = true` for easy-vqa).
    #[serde(default)]
    pub options: toml::Table,
}

/// The reward crate's view of a sample with one response: what the mixed reward needs to score
/// it (task, gold answer, choices, box frames, image size, per-sample reward overrides). The one
/// conversion used by the difficulty filter, the eval harness and the trainer's rollouts.
pub fn scoring_sample(s: &Sample, response: &str) -> mixed_r1_reward::ScoringSample {
    mixed_r1_reward::ScoringSample {
        id: Some(Value::String(s.id.clone())),
        source: Some(s.source.clone()),
        task: Some(s.task.as_str().to_string()),
        answer: s.answer.clone(),
        choices: s.choices.clone(),
        frame: s.frame,
        pred_frame: s.pred_frame,
        image_size: s.image_size.map(|[w, h]| [w as f64, h as f64]),
        reward: s.reward.clone(),
        response: response.to_string(),
    }
}
