//! The sample schema of DESIGN.md as the rewards read it, and the result object they write.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::iou::Frame;

/// One line of a scoring file: a sample of the dataset schema plus the model's `response`.
/// Fields the rewards do not use (`images`, `problem`, `meta`, anything else) are accepted and
/// ignored, so a dataset line with a `response` added scores as it is.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct ScoringSample {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// `yes_no`, `mcq`, `numeric`, `math`, `chart`, `grounding` or `open_ended`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    pub answer: Answer,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame: Option<Frame>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pred_frame: Option<Frame>,
    /// `[width, height]` of the original image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_size: Option<[f64; 2]>,
    /// Overrides the reward that `task` picks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reward: Option<String>,
    pub response: String,
}

/// A gold answer: text for every task but grounding, whose boxes are JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Answer {
    Text(String),
    Json(Value),
}

impl Default for Answer {
    fn default() -> Self {
        Answer::Text(String::new())
    }
}

impl Answer {
    /// The answer as text: numbers and booleans as written, a list of strings joined with
    /// `, ` (several MCQ letters), anything else as JSON.
    pub fn text(&self) -> Cow<'_, str> {
        self.borrowed().text()
    }

    /// The same answer, borrowed.
    pub fn borrowed(&self) -> AnswerRef<'_> {
        match self {
            Answer::Text(s) => AnswerRef::Text(s),
            Answer::Json(v) => AnswerRef::Json(v),
        }
    }
}

/// A gold [`Answer`] borrowed from wherever it lives (a [`ScoringSample`], a Python `str`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AnswerRef<'a> {
    Text(&'a str),
    Json(&'a Value),
}

impl<'a> AnswerRef<'a> {
    /// See [`Answer::text`].
    pub fn text(self) -> Cow<'a, str> {
        match self {
            AnswerRef::Text(s) => s.into(),
            AnswerRef::Json(Value::Array(items)) if items.iter().all(Value::is_string) => items
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
                .into(),
            AnswerRef::Json(v) => v.to_string().into(),
        }
    }
}

/// A [`ScoringSample`] with every field borrowed: what the scorer actually reads. Callers that
/// hold the text elsewhere (the Python wheel borrows it from the caller's `str` objects) score
/// it with [`Scorer::score_ref`](crate::Scorer::score_ref) without copying anything; an owned
/// sample scores through [`ScoringSample::borrowed`], so both take the same path.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleRef<'a> {
    pub task: Option<&'a str>,
    pub reward: Option<&'a str>,
    pub answer: AnswerRef<'a>,
    pub choices: &'a [String],
    pub frame: Option<Frame>,
    pub pred_frame: Option<Frame>,
    pub image_size: Option<[f64; 2]>,
    pub response: &'a str,
}

impl ScoringSample {
    /// The sample's fields, borrowed (`id` and `source` are not read by the rewards).
    pub fn borrowed(&self) -> SampleRef<'_> {
        SampleRef {
            task: self.task.as_deref(),
            reward: self.reward.as_deref(),
            answer: self.answer.borrowed(),
            choices: &self.choices,
            frame: self.frame,
            pred_frame: self.pred_frame,
            image_size: self.image_size,
            response: &self.response,
        }
    }
}

impl<'de> Deserialize<'de> for Answer {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) => Ok(Answer::Text(s)),
            Value::Number(n) => Ok(Answer::Text(n.to_string())),
            Value::Bool(b) => Ok(Answer::Text(if b { "yes" } else { "no" }.into())),
            Value::Null => Err(serde::de::Error::custom("`answer` is null")),
            v => Ok(Answer::Json(v)),
        }
    }
}

/// The scored sample (DESIGN.md): `reward` = accuracy_weight * accuracy + format_weight * format,
/// null when accuracy is skipped or the line could not be scored; `error` says why.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScoreResult {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Value>,
    pub reward: Option<f64>,
    pub format: Option<f64>,
    pub accuracy: Option<f64>,
    /// Borrowed for the known task names, so scoring allocates nothing for it.
    pub task: Option<Cow<'static, str>>,
    pub error: Option<String>,
}

impl ScoreResult {
    /// A result for a line that could not be scored at all.
    pub fn failed(error: impl Into<String>) -> Self {
        ScoreResult {
            error: Some(error.into()),
            ..Default::default()
        }
    }
}
