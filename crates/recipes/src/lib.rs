//! `mixed-r1-recipes`: whole runs that train a policy and measure it, built from the training
//! loops (`mixed-r1-train`) and the eval harness (`mixed-r1-eval`). This is the one crate that
//! depends on both, so training never depends on evaluation and evaluation never on training.
//!
//! - [`demo`]: the demo run (`recipes/demo.toml`): synth, tiny model, SFT, evals, GRPO, evals,
//!   the before / after table.
//! - [`recipe`]: a run file with a real policy and a fixed held-out set: evals before, GRPO
//!   (full or LoRA), evals after, the per-task table and the training curves.
//! - [`eval_config`]: the eval a run file describes (greedy or sampled), for all three.
//! - [`samples`]: reading a run's training set (JSONL / Parquet), bad rows reported and skipped.

pub mod demo;
pub mod eval_config;
pub mod recipe;
pub mod samples;

pub use demo::{run_demo, DemoReport, Progress};
pub use eval_config::eval_config;
pub use samples::load_samples;
