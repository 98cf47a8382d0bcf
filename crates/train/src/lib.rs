//! `mixed-r1-train`: the training loops that put the model, the mixed reward and the GRPO
//! pieces together. It does not evaluate: the runs that train and then measure (the demo,
//! run-file recipes) live one layer up, in `mixed-r1-recipes`.
//!
//! - [`config`]: `TrainConfig`, every GRPO knob (the run file's `[grpo]` section and the
//!   `[model]` / `[data]` / `[lora]` / `[reward]` it needs), validation, resume comparison.
//! - [`tiny`]: named tiny Qwen2.5-VL / Qwen3-VL / InternVL / Qwen2 configs built from scratch around a real tokenizer.
//! - [`prompts`]: a dataset sample → the policy's prompt (the data crate's template, the model's
//!   chat template, images through the image processor).
//! - [`rollout`]: G completions per prompt, each scored by its task's reward.
//! - [`grpo`]: the GRPO trainer: rollouts, advantages, clipped loss, KL, optimisation passes,
//!   checkpoints with exact resume, metrics and plots.
//! - [`run_file`]: the run file, one TOML file for a whole run (`[data]`, `[model]`, `[lora]`,
//!   `[sft]`, `[grpo]`, `[prompt]`, `[reward]`, `[eval]`), read by every command.
//! - [`sft`]: a supervised warm start on the same data (answers in the expected format).
//! - [`memory_plan`]: parameter counts and the bytes a run needs (weights, gradients, optimizer,
//!   activations, KV cache), from the model's config.json alone.

pub mod config;
pub mod grpo;
pub mod memory_plan;
pub mod prompts;
pub mod rollout;
pub mod run_file;
pub mod sft;
pub mod tiny;

pub use grpo::{StepReport, Trainer};
pub use run_file::RunFile;
