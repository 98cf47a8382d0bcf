//! The eval a run file describes, in the eval harness's terms: one conversion shared by the
//! demo, recipe runs and `mixed-r1 eval --config RUN_FILE`, so the three score alike.

use mixed_r1_eval::{EvalConfig, GenerationSettings};
use mixed_r1_train::RunFile;

/// `[eval]` (batch size, seed, new-token budget), `[prompt]` and `[reward]` of a run file.
/// Greedy: one response a prompt, temperature left to the harness (0 for one response).
/// Sampled: `[eval] samples` responses a prompt at the run's eval temperature, with the
/// rollouts' top-p / top-k, so "sampled" means what the policy sees in training.
pub fn eval_config(rf: &RunFile, sampled: bool) -> EvalConfig {
    let t = &rf.train;
    let mut generation = GenerationSettings {
        max_new_tokens: rf.eval_max_new_tokens(),
        ..Default::default()
    };
    if sampled {
        generation.temperature = Some(rf.eval_temperature());
        generation.top_p = t.top_p;
        generation.top_k = t.top_k;
    }
    EvalConfig {
        reward: t.reward.clone(),
        batch_size: rf.eval.batch_size.max(1),
        n: if sampled { rf.eval.samples } else { 1 },
        seed: rf.eval.seed.unwrap_or(t.seed),
        prompt: Some(rf.prompt.clone()),
        generation,
        ..Default::default()
    }
}
