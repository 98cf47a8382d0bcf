//! The model-independent half of the Mixed-R1 GRPO trainer.
//!
//! Everything here works on plain numbers or on candle tensors the model crate hands over, so
//! the trainer loop (which owns the model, the rollouts and the reward calls) composes these
//! pieces without any of them knowing what a model is:
//!
//! - [`advantage`]: registry of advantage estimators over rewards grouped by prompt
//!   (`grpo`, `dr_grpo`, `rloo`, `gdpo`, `reinforce_pp`, `reinforce_pp_baseline`).
//! - [`loss`]: registry of policy losses on `(B, T)` log-prob tensors (`vanilla` PPO-clip,
//!   `gspo`), aggregation modes, KL estimators (`k1`, `k2`, `k3`) and detached metrics.
//! - [`sampling`]: DAPO-style dynamic sampling (drop zero-variance groups, refill the batch).
//! - [`optim`]: learning-rate schedules, global grad-norm clipping, gradient accumulation and an
//!   AdamW whose state can be checkpointed.
//! - [`metrics`]: JSONL metrics and a hand-written TensorBoard event-file writer (and reader).
//! - [`plot`]: PNG line plots of a metric per task over steps.
//! - [`checkpoint`]: atomic `checkpoint-<step>/` directories with a `latest` pointer, trainer
//!   state (step, optimizer moments, RNG, metrics) and a caller-supplied weight writer.

pub mod advantage;
pub mod checkpoint;
pub mod error;
pub mod loss;
pub mod metrics;
pub mod optim;
pub mod plot;
pub mod sampling;

pub use error::{GrpoError, Result};
