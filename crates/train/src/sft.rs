//! Supervised warm start: teach a policy the answer format (and some answers) before GRPO.
//!
//! The paper's policies start from instruct checkpoints that already follow the think / answer
//! format; a tiny model built from scratch does not, and GRPO cannot learn from groups whose
//! rewards are all zero. A short SFT on the training set's own answers, written in the format
//! the reward expects, gives it that start.

use anyhow::{Context, Result};
use indicatif::ProgressBar;
use mixed_r1_data::Sample;
use mixed_r1_grpo::optim::{clip_grad_norm, AdamW, AdamWConfig, LrSchedule, ScheduleKind};
use mixed_r1_model::logprobs::{completion_logprobs, Sequence};
use mixed_r1_model::model::Model;
use mixed_r1_reward::iou::Frame;
use mixed_r1_reward::sample::Answer;
use mixed_r1_reward::RewardConfig;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::prompts::PromptMaker;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SftConfig {
    pub steps: usize,
    /// Samples per step.
    pub batch: usize,
    pub lr: f64,
    pub warmup_steps: usize,
    pub weight_decay: f64,
    /// Parameters without weight decay (`TrainConfig::weight_decay_exclude`'s rules).
    pub weight_decay_exclude: Vec<String>,
    pub max_grad_norm: f64,
    pub seed: u64,
}

impl Default for SftConfig {
    fn default() -> Self {
        SftConfig {
            steps: 100,
            batch: 16,
            lr: 3e-3,
            warmup_steps: 5,
            weight_decay: 0.0,
            weight_decay_exclude: mixed_r1_grpo::optim::default_no_decay(),
            max_grad_norm: 1.0,
            seed: 0,
        }
    }
}

/// The answer as text: JSON golds (boxes) are written compactly.
pub fn answer_text(sample: &Sample) -> String {
    match &sample.answer {
        Answer::Text(t) => t.clone(),
        Answer::Json(v) => {
            // One box: `[x1, y1, x2, y2]`, as grounding prompts ask for.
            if let Some(arr) = v.as_array() {
                if arr.len() == 1 && arr[0].is_array() {
                    return arr[0].to_string().replace(',', ", ");
                }
            }
            v.to_string()
        }
    }
}

/// The completion SFT teaches: a short reasoning line and the answer, in think / answer tags.
pub fn target_text(sample: &Sample) -> String {
    target_text_for(sample, &RewardConfig::default())
}

/// [`target_text`] with a grounding gold written in the frame `reward` reads predicted boxes in
/// (the sample's `pred_frame`, else `iou.pred_frame`), so SFT teaches the coordinates the reward
/// scores: InternVL / Qwen3-VL answer in 0-1000, Qwen2.5-VL in resized pixels.
pub fn target_text_for(sample: &Sample, reward: &RewardConfig) -> String {
    let answer = converted_boxes(sample, reward).unwrap_or_else(|| answer_text(sample));
    format!(
        "<think>The question asks about the {}.</think><answer>{}</answer>",
        if sample.images.is_empty() {
            "text"
        } else {
            "image"
        },
        answer
    )
}

/// The gold boxes in the prediction frame, when that differs from the gold's and the image size
/// is known.
fn converted_boxes(sample: &Sample, reward: &RewardConfig) -> Option<String> {
    use mixed_r1_reward::iou::{convert_box, gold_boxes};
    let to = sample.pred_frame.or(reward.iou.pred_frame)?;
    let from = sample.frame.unwrap_or(reward.iou.frame);
    let [w, h] = sample.image_size?;
    if from == to {
        return None;
    }
    let Answer::Json(v) = &sample.answer else {
        return None;
    };
    let boxes = gold_boxes(v).ok()?;
    let size = [f64::from(w), f64::from(h)];
    let out: Vec<Value> = boxes
        .iter()
        .map(|b| convert_box(*b, from, to, size, &reward.iou))
        .collect::<Option<Vec<_>>>()?
        .into_iter()
        .map(|b| {
            Value::Array(
                b.iter()
                    .map(|&x| match to {
                        Frame::Rel1 => Value::from(x),
                        _ => Value::from(x as i64),
                    })
                    .collect(),
            )
        })
        .collect();
    Some(match out.as_slice() {
        [one] => one.to_string().replace(',', ", "),
        _ => Value::Array(out).to_string(),
    })
}

/// Trains `model` in place; returns the loss of every step. Mixed precision and gradient
/// checkpointing follow the model ([`Model::enable_master_weights`],
/// [`Model::set_gradient_checkpointing`]).
pub fn train(
    model: &Model,
    samples: &[Sample],
    maker: &mut PromptMaker,
    cfg: &SftConfig,
    progress: &ProgressBar,
) -> Result<Vec<f64>> {
    anyhow::ensure!(!samples.is_empty(), "SFT needs at least one sample");
    let tok = model.tokenizer.as_ref().context("SFT needs a tokenizer")?;
    let end = model.stop_token_ids().first().copied();
    let schedule = LrSchedule {
        kind: ScheduleKind::Cosine,
        lr: cfg.lr,
        warmup_steps: cfg.warmup_steps,
        total_steps: cfg.steps,
        min_lr_ratio: 0.1,
    };
    // A model with f32 masters (`Model::enable_master_weights`) trains them in mixed precision.
    let mut opt = AdamW::new(
        model.optimizer_params(),
        AdamWConfig {
            lr: cfg.lr,
            weight_decay: cfg.weight_decay,
            no_decay: cfg.weight_decay_exclude.clone(),
            ..Default::default()
        },
    )?
    .with_schedule(schedule);
    let vars = opt.vars();
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut order: Vec<usize> = (0..samples.len()).collect();
    order.shuffle(&mut rng);
    let mut cursor = 0;
    let mut losses = Vec::with_capacity(cfg.steps);
    progress.set_length(cfg.steps as u64);
    for _ in 0..cfg.steps {
        let mut seqs = Vec::with_capacity(cfg.batch);
        for _ in 0..cfg.batch {
            if cursor == order.len() {
                order.shuffle(&mut rng);
                cursor = 0;
            }
            let s = &samples[order[cursor]];
            cursor += 1;
            let prompt = maker.prompt(model, s)?;
            let mut completion = tok.encode(&target_text_for(s, &maker.reward))?;
            completion.extend(end);
            seqs.push(Sequence {
                prompt: prompt.ids,
                completion,
                images: prompt.images,
            });
        }
        let out = completion_logprobs(model, &seqs, 1.0, true, false)?;
        let n = out
            .mask
            .sum_all()?
            .to_dtype(candle_core::DType::F64)?
            .to_scalar::<f64>()?;
        let loss = (out.logprobs.sum_all()?.neg()? / n.max(1.0))?;
        let mut grads = model.optimizer_grads(model.backward(&loss)?)?;
        clip_grad_norm(&mut grads, &vars, cfg.max_grad_norm)?;
        opt.step(&grads)?;
        model.sync_master_weights()?;
        let l = loss.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?;
        losses.push(l);
        progress.set_message(format!("loss {l:.3}"));
        progress.inc(1);
    }
    Ok(losses)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mixed_r1_data::Task;

    fn grounding(frame: Option<Frame>) -> Sample {
        Sample {
            id: "g".into(),
            source: "test".into(),
            task: Task::Grounding,
            images: vec!["img.png".into()],
            problem: "<image>Where is the circle?".into(),
            answer: Answer::Json(serde_json::json!([[64, 48, 320, 240]])),
            choices: vec![],
            frame,
            pred_frame: None,
            image_size: Some([640, 480]),
            reward: None,
            meta: Default::default(),
        }
    }

    #[test]
    fn sft_targets_write_the_gold_box_in_the_frame_the_reward_reads() {
        let plain = target_text(&grounding(None));
        assert!(
            plain.contains("<answer>[64, 48, 320, 240]</answer>"),
            "{plain}"
        );
        let mut reward = RewardConfig::default();
        reward.iou.pred_frame = Some(Frame::Rel1000);
        let t = target_text_for(&grounding(Some(Frame::Abs)), &reward);
        assert!(t.contains("<answer>[100, 100, 500, 500]</answer>"), "{t}");
        // The sample's own pred_frame wins over the config's.
        let mut s = grounding(None);
        s.pred_frame = Some(Frame::Abs);
        assert!(target_text_for(&s, &reward).contains("[64, 48, 320, 240]"));
        // No image size: nothing to convert with, the gold is written as it is.
        let mut s = grounding(None);
        s.image_size = None;
        assert!(target_text_for(&s, &reward).contains("[64, 48, 320, 240]"));
    }
}
