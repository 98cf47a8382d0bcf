//! Scoring one response of one sample with the mixed reward, plus the eval-only measures: the
//! continuous IoU of grounding answers (for Acc@0.5 and mean IoU, whatever IoU mode the reward
//! uses), ROUGE-L of open-ended answers, and whether the response counts as correct for pass@k.

pub use mixed_r1_data::scoring_sample;
use mixed_r1_data::Sample;
use mixed_r1_reward::extract::extract_answer;
use mixed_r1_reward::iou::IouMode;
use mixed_r1_reward::{RewardConfig, RewardKind, Scorer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::responder::Response;
use crate::rouge::rouge_l_max;

/// The IoU a grounding answer needs for Acc@0.5 (and to count as correct for pass@k).
pub const IOU_THRESHOLD: f64 = 0.5;

/// One response and everything measured on it: a line's `responses[i]` in `samples.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredResponse {
    pub text: String,
    /// Generated tokens, as the responder reported them.
    #[serde(default)]
    pub tokens: Option<usize>,
    #[serde(default)]
    pub truncated: bool,
    /// Length in characters (Unicode scalar values).
    pub chars: usize,
    /// The answer the rewards judged (extracted per the reward's format mode and fallback).
    #[serde(default)]
    pub answer: Option<String>,
    #[serde(default)]
    pub reward: Option<f64>,
    #[serde(default)]
    pub format: Option<f64>,
    /// The task's accuracy reward; `None` when the sample's gold cannot be used (see `error`).
    #[serde(default)]
    pub accuracy: Option<f64>,
    /// Grounding: continuous IoU (optimal matching for several boxes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iou: Option<f64>,
    /// Open-ended: ROUGE-L F1 of the answer against the reference(s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rouge_l: Option<f64>,
    /// Counts as solved for pass@k: full accuracy; IoU >= 0.5 for grounding; BMAS at least
    /// the configured threshold for open-ended.
    #[serde(default)]
    pub correct: Option<bool>,
    #[serde(default)]
    pub error: Option<String>,
}

/// The reward scorer and what eval measures beside it. Shared across threads.
pub struct EvalScorer {
    scorer: Scorer,
    /// The same config with continuous IoU and no BMAS table: the IoU measure.
    iou: Scorer,
    open_ended_threshold: f64,
}

impl EvalScorer {
    /// Builds the reward scorer (loading the BMAS table the config names, if any).
    pub fn new(reward: &RewardConfig, open_ended_threshold: f64) -> anyhow::Result<EvalScorer> {
        let scorer = Scorer::new(reward.clone())
            .map_err(|e| anyhow::anyhow!("cannot set up the rewards: {e}"))?;
        EvalScorer::with_scorer(scorer, open_ended_threshold)
    }

    /// Wraps an existing scorer (sharing its BMAS table).
    pub fn with_scorer(scorer: Scorer, open_ended_threshold: f64) -> anyhow::Result<EvalScorer> {
        let mut cfg = scorer.config().clone();
        cfg.iou.mode = IouMode::Continuous;
        let iou = Scorer::with_bmas(cfg, None)
            .map_err(|e| anyhow::anyhow!("cannot set up the rewards: {e}"))?;
        Ok(EvalScorer {
            scorer,
            iou,
            open_ended_threshold,
        })
    }

    pub fn reward_config(&self) -> &RewardConfig {
        self.scorer.config()
    }

    /// Scores one response of `sample`.
    pub fn score(&self, sample: &Sample, response: &Response) -> ScoredResponse {
        let ss = scoring_sample(sample, &response.text);
        let result = self.scorer.score(&ss);
        let cfg = self.scorer.config();
        let answer = extract_answer(&response.text, cfg.format.mode, cfg.extract.fallback);
        let kind = Scorer::kind_of(&ss).ok();
        let iou = match kind {
            Some(RewardKind::Iou) => self.iou.accuracy(RewardKind::Iou, answer, &ss).ok(),
            _ => None,
        };
        let rouge_l = match kind {
            Some(RewardKind::Bmas) => {
                let refs = references(sample);
                (!refs.is_empty()).then(|| rouge_l_max(answer.unwrap_or(""), &refs))
            }
            _ => None,
        };
        let correct = result.accuracy.map(|a| match kind {
            Some(RewardKind::Iou) => iou.unwrap_or(0.0) >= IOU_THRESHOLD,
            Some(RewardKind::Bmas) => a >= self.open_ended_threshold,
            _ => a >= 1.0 - 1e-9,
        });
        ScoredResponse {
            chars: response.text.chars().count(),
            text: response.text.clone(),
            tokens: response.tokens,
            truncated: response.truncated,
            answer: answer.map(str::to_string),
            reward: result.reward,
            format: result.format,
            accuracy: result.accuracy,
            iou,
            rouge_l,
            correct,
            error: result.error,
        }
    }
}

/// The references of an open-ended sample for ROUGE-L: every caption in `meta.captions` (COCO
/// captions keep them all there), else the answer. Empty ones are dropped.
pub fn references(s: &Sample) -> Vec<String> {
    let from_meta: Vec<String> = s
        .meta
        .get("captions")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .filter(|c| !c.trim().is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if !from_meta.is_empty() {
        return from_meta;
    }
    let a = s.answer.text().into_owned();
    if a.trim().is_empty() {
        Vec::new()
    } else {
        vec![a]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mixed_r1_data::Task;
    use mixed_r1_reward::Answer;

    fn sample(task: Task, answer: Answer) -> Sample {
        Sample {
            id: "s".into(),
            source: "src".into(),
            task,
            images: vec![],
            problem: "p".into(),
            answer,
            choices: vec![],
            frame: None,
            pred_frame: None,
            image_size: Some([100, 100]),
            reward: None,
            meta: Default::default(),
        }
    }

    #[test]
    fn grounding_iou_is_continuous_whatever_the_reward_mode() {
        let mut cfg = RewardConfig::default();
        cfg.iou.mode = IouMode::Threshold;
        let s = EvalScorer::new(&cfg, 0.5).unwrap();
        let g = sample(
            Task::Grounding,
            Answer::Json(serde_json::json!([[0, 0, 40, 40]])),
        );
        let r = s.score(
            &g,
            &Response::new("<think>.</think><answer>[20, 0, 60, 40]</answer>"),
        );
        // IoU = 800 / 2400; the threshold reward says 0, the IoU measure 1/3.
        assert_eq!(r.accuracy, Some(0.0));
        assert!((r.iou.unwrap() - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(r.correct, Some(false));
        assert_eq!(r.format, Some(1.0));
        assert_eq!(r.answer.as_deref(), Some("[20, 0, 60, 40]"));
        // No answer block: no claim, IoU 0.
        let r = s.score(&g, &Response::new("[0, 0, 40, 40]"));
        assert_eq!((r.accuracy, r.iou), (Some(0.0), Some(0.0)));
    }

    #[test]
    fn open_ended_rouge_without_embeddings() {
        let s = EvalScorer::new(&RewardConfig::default(), 0.5).unwrap();
        let mut o = sample(Task::OpenEnded, Answer::Text("a red circle".into()));
        let r = s.score(
            &o,
            &Response::new("<think></think><answer>red circle</answer>"),
        );
        // BMAS needs a table: skipped, with the reason; ROUGE-L still measured (P 1, R 2/3).
        assert_eq!(r.accuracy, None);
        assert!(r.error.as_deref().unwrap().contains("embedding table"));
        assert!((r.rouge_l.unwrap() - 0.8).abs() < 1e-12);
        assert_eq!(r.correct, None);
        o.meta.insert(
            "captions".into(),
            serde_json::json!(["a blue square", "the red circle"]),
        );
        let r = s.score(&o, &Response::new("<answer>red circle</answer>"));
        assert!((r.rouge_l.unwrap() - 0.8).abs() < 1e-12);
    }
}
