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
use mixed_r1_reward::sample::Answer;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

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
    format!(
        "<think>The question asks about the {}.</think><answer>{}</answer>",
        if sample.images.is_empty() {
            "text"
        } else {
            "image"
        },
        answer_text(sample)
    )
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
            let mut completion = tok.encode(&target_text(s))?;
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
