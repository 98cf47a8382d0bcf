//! Rollouts: G completions per prompt from the policy, each scored by its task's reward.

use anyhow::Result;
use mixed_r1_data::scoring_sample;
use mixed_r1_data::Sample;
use mixed_r1_grpo::sampling::RewardGroup;
use mixed_r1_model::generate::{generate, Prompt, SamplingConfig};
use mixed_r1_model::model::Model;
use mixed_r1_reward::Scorer;

/// One scored completion.
#[derive(Debug, Clone)]
pub struct Completion {
    pub tokens: Vec<u32>,
    /// Log-probs under the sampling policy (the "old" log-probs of the clipped objective).
    pub logprobs: Vec<f32>,
    pub text: String,
    /// Ended by a stop token (false: cut at the length limit).
    pub stopped: bool,
    pub format: f32,
    /// `None` when the reward skipped the sample (an unusable gold answer).
    pub accuracy: Option<f32>,
}

/// A prompt and its G scored completions.
#[derive(Debug, Clone)]
pub struct Group {
    /// Index of the sample in the training set.
    pub sample: usize,
    pub task: String,
    pub prompt: Prompt,
    pub completions: Vec<Completion>,
    /// Total reward per completion (skipped ones count 0).
    pub rewards: Vec<f32>,
}

impl RewardGroup for Group {
    fn rewards(&self) -> &[f32] {
        &self.rewards
    }
}

/// Generates `g` completions for each prompt in one batch and scores them.
pub fn rollout(
    model: &Model,
    scorer: &Scorer,
    items: &[(usize, &Sample, Prompt)],
    g: usize,
    sampling: &SamplingConfig,
) -> Result<Vec<Group>> {
    let mut prompts = Vec::with_capacity(items.len() * g);
    for (_, _, p) in items {
        for _ in 0..g {
            prompts.push(Prompt {
                seed: None,
                ..p.clone()
            });
        }
    }
    let gens = generate(model, &prompts, sampling)?;
    let mut out = Vec::with_capacity(items.len());
    for (k, (idx, sample, prompt)) in items.iter().enumerate() {
        let mut completions = Vec::with_capacity(g);
        let mut rewards = Vec::with_capacity(g);
        for gen in &gens[k * g..(k + 1) * g] {
            let r = scorer.score(&scoring_sample(sample, &gen.text));
            rewards.push(r.reward.unwrap_or(0.0) as f32);
            completions.push(Completion {
                tokens: gen.tokens.clone(),
                logprobs: gen.logprobs.clone(),
                text: gen.text.clone(),
                stopped: gen.stopped,
                format: r.format.unwrap_or(0.0) as f32,
                accuracy: r.accuracy.map(|a| a as f32),
            });
        }
        out.push(Group {
            sample: *idx,
            task: sample.task.as_str().to_string(),
            prompt: prompt.clone(),
            completions,
            rewards,
        });
    }
    Ok(out)
}
