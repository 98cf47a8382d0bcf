//! The mixed reward: a sample's `task` (or its `reward` override) picks the accuracy reward, the
//! format reward is added with weights, and batches are scored in parallel. Image / video
//! placeholder tokens ([`crate::VISION_TOKENS`]) are removed from a response before the format
//! and accuracy rewards read it.

use std::borrow::Cow;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use rayon::prelude::*;

use crate::bmas::Bmas;
use crate::chart::chart_accuracy;
use crate::extract::extract_answer_scanned;
use crate::format::format_score_scanned;
use crate::iou::{gold_boxes, gold_boxes_text, iou_accuracy, BoxContext};
use crate::matching::{mcq_accuracy, yes_no_accuracy};
use crate::math::math_accuracy;
use crate::number::numeric_accuracy;
use crate::sample::{AnswerRef, SampleRef, ScoreResult, ScoringSample};
use crate::text::{is_blank, strip_vision_tokens, ResponseTags};
use crate::{Accuracy, RewardConfig, RewardError, Skip};

/// Task names of the sample schema, in [`RewardKind`] order.
pub const TASKS: [&str; 7] = [
    "yes_no",
    "mcq",
    "numeric",
    "math",
    "chart",
    "grounding",
    "open_ended",
];

/// The accuracy reward families.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RewardKind {
    YesNo,
    Mcq,
    Numeric,
    Math,
    Chart,
    Iou,
    Bmas,
}

impl RewardKind {
    pub const ALL: [RewardKind; 7] = [
        RewardKind::YesNo,
        RewardKind::Mcq,
        RewardKind::Numeric,
        RewardKind::Math,
        RewardKind::Chart,
        RewardKind::Iou,
        RewardKind::Bmas,
    ];

    /// A task name (`grounding`) or a reward name (`iou`).
    pub fn from_name(name: &str) -> Option<RewardKind> {
        Some(match name {
            "yes_no" => RewardKind::YesNo,
            "mcq" => RewardKind::Mcq,
            "numeric" => RewardKind::Numeric,
            "math" => RewardKind::Math,
            "chart" => RewardKind::Chart,
            "grounding" | "iou" => RewardKind::Iou,
            "open_ended" | "bmas" => RewardKind::Bmas,
            _ => return None,
        })
    }

    /// The task this reward serves.
    pub fn task(self) -> &'static str {
        TASKS[self as usize]
    }
}

/// Scores samples with the mixed reward. Immutable after construction: share it freely across
/// threads (`Arc<Scorer>` or `&Scorer`).
pub struct Scorer {
    cfg: RewardConfig,
    bmas: Option<Arc<Bmas>>,
    /// `(accuracy_weight, format_weight)` per task, in [`RewardKind`] order.
    weights: [(f64, f64); 7],
}

impl Scorer {
    /// Validates the config and loads the BMAS table it names, if any.
    pub fn new(cfg: RewardConfig) -> Result<Scorer, RewardError> {
        let bmas = Bmas::from_config(&cfg.bmas)?.map(Arc::new);
        Scorer::with_bmas(cfg, bmas)
    }

    /// Like [`Scorer::new`] with an already loaded BMAS table (shared between scorers).
    pub fn with_bmas(cfg: RewardConfig, bmas: Option<Arc<Bmas>>) -> Result<Scorer, RewardError> {
        cfg.validate()?;
        let mut weights = [(cfg.accuracy_weight, cfg.format_weight); 7];
        for (task, w) in &cfg.tasks {
            if let Some(kind) = RewardKind::from_name(task) {
                let slot = &mut weights[kind as usize];
                slot.0 = w.accuracy_weight.unwrap_or(slot.0);
                slot.1 = w.format_weight.unwrap_or(slot.1);
            }
        }
        Ok(Scorer { cfg, bmas, weights })
    }

    pub fn config(&self) -> &RewardConfig {
        &self.cfg
    }

    pub fn bmas(&self) -> Option<&Arc<Bmas>> {
        self.bmas.as_ref()
    }

    /// Scores one sample. Never panics: a bug caught here becomes the sample's `error`.
    pub fn score(&self, sample: &ScoringSample) -> ScoreResult {
        let mut result = self.score_ref(&sample.borrowed());
        result.id = sample.id.clone();
        result
    }

    /// Scores a borrowed sample (no copy of its text); the result has no `id`. Never panics:
    /// a bug caught here becomes the sample's `error`.
    pub fn score_ref(&self, sample: &SampleRef<'_>) -> ScoreResult {
        catch_unwind(AssertUnwindSafe(|| self.score_inner(sample)))
            .unwrap_or_else(|_| ScoreResult::failed("internal error while scoring (a bug)"))
    }

    /// Scores a batch in parallel; results are in input order.
    pub fn score_batch(&self, samples: &[ScoringSample]) -> Vec<ScoreResult> {
        samples.par_iter().map(|s| self.score(s)).collect()
    }

    /// Parses one JSON line and scores it; a bad line gets a result with `error` set.
    pub fn score_json_line(&self, line: &str) -> ScoreResult {
        if is_blank(line) {
            return ScoreResult::failed("empty line");
        }
        match serde_json::from_str::<ScoringSample>(line) {
            Ok(sample) => self.score(&sample),
            Err(e) => ScoreResult::failed(describe_json_error(&e)),
        }
    }

    /// [`Scorer::score_json_line`] over many lines in parallel, in order.
    pub fn score_json_lines<S: AsRef<str> + Sync>(&self, lines: &[S]) -> Vec<ScoreResult> {
        lines
            .par_iter()
            .map(|l| self.score_json_line(l.as_ref()))
            .collect()
    }

    /// The reward a sample asks for: its `reward` override, else its `task`.
    pub fn kind_of(sample: &ScoringSample) -> Result<RewardKind, String> {
        Self::kind_of_ref(&sample.borrowed())
    }

    /// [`Scorer::kind_of`] of a borrowed sample.
    pub fn kind_of_ref(sample: &SampleRef<'_>) -> Result<RewardKind, String> {
        let (field, name) = match (sample.reward, sample.task) {
            (Some(r), _) => ("reward", r),
            (None, Some(t)) => ("task", t),
            (None, None) => return Err("missing field `task` (or `reward`)".into()),
        };
        RewardKind::from_name(name).ok_or_else(|| {
            format!(
                "unknown {field} `{name}` (expected one of {}{})",
                TASKS.join(", "),
                if field == "reward" { ", iou, bmas" } else { "" }
            )
        })
    }

    fn score_inner(&self, sample: &SampleRef<'_>) -> ScoreResult {
        let kind = match Self::kind_of_ref(sample) {
            Ok(k) => k,
            Err(e) => {
                let mut r = ScoreResult::failed(e);
                r.task = sample.task.map(|t| Cow::Owned(t.to_owned()));
                return r;
            }
        };
        let task_kind = sample.task.and_then(RewardKind::from_name).unwrap_or(kind);
        let (acc_w, fmt_w) = self.weights[task_kind as usize];
        let mode = self.cfg.format.mode;
        // Placeholder tokens a policy sampled (or a decoder kept) are not part of the answer.
        let response = strip_vision_tokens(sample.response);
        let response = response.as_ref();
        let tags = ResponseTags::scan(response);
        let format = format_score_scanned(response, &tags, mode);
        let answer = extract_answer_scanned(response, &tags, mode, self.cfg.extract.fallback);
        let accuracy = self.accuracy_ref(kind, answer, sample);
        let (accuracy, reward, error) = match accuracy {
            Ok(a) => {
                let a = if a.is_finite() {
                    a.clamp(0.0, 1.0)
                } else {
                    0.0
                };
                (
                    Some(a),
                    Some(acc_w * a + fmt_w * format.unwrap_or(0.0)),
                    None,
                )
            }
            Err(Skip(why)) => (None, None, Some(why)),
        };
        ScoreResult {
            id: None,
            reward,
            format,
            accuracy,
            // The task is known here (it routed), so its static name is the same text.
            task: Some(match sample.task {
                Some(t) if RewardKind::from_name(t).is_none() => Cow::Owned(t.to_owned()),
                _ => Cow::Borrowed(task_kind.task()),
            }),
            error,
        }
    }

    /// Accuracy of the extracted answer (`None`: the response has none). The gold is checked
    /// even then, so an unusable gold always skips instead of scoring 0.
    pub fn accuracy(
        &self,
        kind: RewardKind,
        answer: Option<&str>,
        sample: &ScoringSample,
    ) -> Accuracy {
        self.accuracy_ref(kind, answer, &sample.borrowed())
    }

    /// [`Scorer::accuracy`] of a borrowed sample.
    pub fn accuracy_ref(
        &self,
        kind: RewardKind,
        answer: Option<&str>,
        sample: &SampleRef<'_>,
    ) -> Accuracy {
        let cfg = &self.cfg;
        let pred = answer.unwrap_or("");
        let gold = || sample.answer.text();
        match kind {
            RewardKind::YesNo => yes_no_accuracy(pred, &gold()),
            RewardKind::Mcq => mcq_accuracy(pred, &gold(), sample.choices),
            RewardKind::Numeric => numeric_accuracy(pred, &gold(), &cfg.numeric),
            RewardKind::Math => math_accuracy(pred, &gold(), &cfg.math),
            RewardKind::Chart => chart_accuracy(pred, &gold(), &cfg.chart),
            RewardKind::Iou => {
                let golds = match sample.answer {
                    AnswerRef::Text(s) => gold_boxes_text(s)?,
                    AnswerRef::Json(v) => gold_boxes(v)?,
                };
                let ctx = BoxContext {
                    frame: sample.frame,
                    pred_frame: sample.pred_frame,
                    image_size: sample.image_size,
                };
                let score = iou_accuracy(pred, &golds, &ctx, &cfg.iou)?;
                // No answer is no claim: a negative sample is not solved by a broken response.
                Ok(if answer.is_none() { 0.0 } else { score })
            }
            RewardKind::Bmas => {
                let reference = gold();
                if is_blank(&reference) {
                    return Err(Skip::new("empty reference answer"));
                }
                let Some(bmas) = &self.bmas else {
                    return Err(Skip::new(
                        "open_ended needs an embedding table: set [bmas] model, or tokenizer and \
                         embeddings (CLI: --model DIR, or --tokenizer and --embeddings)",
                    ));
                };
                if is_blank(pred) {
                    return Ok(0.0);
                }
                bmas.score(pred, &reference)
            }
        }
    }
}

/// serde_json's message names the field and column; make the common cases read plainly.
fn describe_json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof => format!("invalid JSON: {e}"),
        Category::Data => format!("bad sample: {e}"),
        Category::Io => format!("cannot read line: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scorer() -> Scorer {
        Scorer::new(RewardConfig::default()).unwrap()
    }

    fn line(s: &Scorer, json: &str) -> ScoreResult {
        s.score_json_line(json)
    }

    #[test]
    fn routes_and_weights() {
        let s = scorer();
        let r = line(
            &s,
            r#"{"id": 7, "task": "mcq", "answer": "B", "response": "<think>x</think><answer>(B)</answer>"}"#,
        );
        assert_eq!(
            (r.reward, r.format, r.accuracy),
            (Some(1.5), Some(1.0), Some(1.0))
        );
        assert_eq!(r.id, Some(serde_json::json!(7)));
        assert_eq!(r.task.as_deref(), Some("mcq"));
        // Correct but badly formatted: accuracy counts, format does not.
        let r = line(
            &s,
            r#"{"task": "yes_no", "answer": "no", "response": "<answer>No</answer>"}"#,
        );
        assert_eq!(
            (r.reward, r.format, r.accuracy),
            (Some(1.0), Some(0.0), Some(1.0))
        );
    }

    #[test]
    fn skip_never_scores() {
        let s = scorer();
        for json in [
            r#"{"task": "yes_no", "answer": "maybe", "response": "<think></think><answer>yes</answer>"}"#,
            r#"{"task": "yes_no", "answer": "maybe", "response": "no tags at all"}"#,
            r#"{"task": "grounding", "answer": "somewhere", "response": "<think></think><answer>[1,2,3,4]</answer>"}"#,
            r#"{"task": "open_ended", "answer": "  ", "response": "<think></think><answer>a cat</answer>"}"#,
        ] {
            let r = line(&s, json);
            assert_eq!((r.reward, r.accuracy), (None, None), "{json}");
            assert!(r.error.is_some());
            assert!(r.format.is_some(), "{json}");
        }
    }

    #[test]
    fn override_and_bad_lines() {
        let s = scorer();
        let r = line(
            &s,
            r#"{"task": "numeric", "reward": "chart", "answer": "100", "response": "<think></think><answer>103</answer>"}"#,
        );
        assert_eq!(r.accuracy, Some(1.0));
        assert_eq!(r.task.as_deref(), Some("numeric"));
        let e = |json: &str| line(&s, json).error.unwrap();
        assert!(e("{not json").contains("invalid JSON"));
        assert!(e(r#"{"task": "mcq", "answer": "B"}"#).contains("response"));
        assert!(e(r#"{"task": "mcq", "response": ""}"#).contains("answer"));
        assert!(e(r#"{"task": "poetry", "answer": "B", "response": ""}"#).contains("unknown task"));
        assert!(e(r#"{"answer": "B", "response": ""}"#).contains("task"));
        assert!(
            e(r#"{"task": "grounding", "frame": "pixels", "answer": [], "response": ""}"#)
                .contains("unknown variant")
        );
        assert!(e("").contains("empty"));
        assert!(e(
            r#"{"task": "open_ended", "answer": "a cat", "response": "<answer>a cat</answer>"}"#
        )
        .contains("embedding table"));
    }

    #[test]
    fn borrowed_samples_score_the_same() {
        let s = scorer();
        for json in [
            r#"{"id": 1, "task": "mcq", "answer": "B", "choices": ["cat", "dog"], "response": "<think></think><answer>dog</answer>"}"#,
            r#"{"task": "grounding", "answer": [[0, 0, 10, 10]], "image_size": [100, 100], "response": "<answer>[0,0,10,5]</answer>"}"#,
            r#"{"task": "mcq", "answer": ["A", "C"], "response": "<answer>A and C</answer>"}"#,
            r#"{"task": "poetry", "answer": "B", "response": ""}"#,
        ] {
            let sample: ScoringSample = serde_json::from_str(json).unwrap();
            let mut owned = s.score(&sample);
            let borrowed = s.score_ref(&sample.borrowed());
            assert_eq!(borrowed.id, None);
            owned.id = None;
            assert_eq!(owned, borrowed, "{json}");
            assert_eq!(
                Scorer::kind_of(&sample),
                Scorer::kind_of_ref(&sample.borrowed())
            );
        }
        // Text borrowed from anywhere, not only from a ScoringSample.
        let (task, answer, response) = (String::from("yes_no"), "yes", "<answer>Yes</answer>");
        let r = s.score_ref(&SampleRef {
            task: Some(&task),
            reward: None,
            answer: AnswerRef::Text(answer),
            choices: &[],
            frame: None,
            pred_frame: None,
            image_size: None,
            response,
        });
        assert_eq!((r.accuracy, r.format), (Some(1.0), Some(0.0)));
    }

    #[test]
    fn per_task_weights() {
        let cfg = RewardConfig::from_toml_str(
            "[tasks.chart]\naccuracy_weight = 2.0\nformat_weight = 0.0",
        )
        .unwrap();
        let s = Scorer::new(cfg).unwrap();
        let r = line(
            &s,
            r#"{"task": "chart", "answer": "5", "response": "<think></think><answer>5</answer>"}"#,
        );
        assert_eq!(r.reward, Some(2.0));
    }
}
