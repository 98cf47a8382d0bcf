//! # mixed-r1-reward
//!
//! Every reward of Mixed-R1, routed by task: the format reward, answer extraction, matching
//! (`yes_no`, `mcq`, `numeric`, `math`), chart relaxed accuracy, box IoU in any coordinate frame,
//! and BMAS for open-ended text over a real token-embedding table.
//!
//! The contract lives in the project's `DESIGN.md`; this crate is its executable form:
//!
//! * every reward returns a value in `[0, 1]`, or a [`Skip`] when the ground truth itself cannot be
//!   used (never 1.0 for an unusable gold);
//! * nothing here holds global mutable state, so a [`Scorer`] can be shared across threads and a
//!   batch is scored in parallel with rayon;
//! * no input string can panic or hang a reward: parsers are linear scanners with depth limits, and
//!   the math evaluator runs under a deadline that it checks itself (no signals).
//!
//! ```
//! use mixed_r1_reward::{RewardConfig, Scorer, ScoringSample};
//!
//! let scorer = Scorer::new(RewardConfig::default()).unwrap();
//! let sample: ScoringSample = serde_json::from_str(
//!     r#"{"task": "yes_no", "answer": "yes",
//!         "response": "<think>The cup is red.</think> <answer>Yes</answer>"}"#,
//! ).unwrap();
//! let result = scorer.score(&sample);
//! assert_eq!(result.reward, Some(1.5)); // accuracy 1.0 + 0.5 * format 1.0
//! ```

pub mod bmas;
pub mod chart;
pub mod config;
pub mod error;
pub mod extract;
pub mod format;
pub mod iou;
pub mod matching;
pub mod math;
pub mod number;
pub mod router;
pub mod sample;
mod text;

pub use config::RewardConfig;
pub use error::RewardError;
pub use router::{RewardKind, Scorer};
pub use sample::{Answer, ScoreResult, ScoringSample};
pub use text::{strip_vision_tokens, VISION_TOKENS};

/// Why a sample's accuracy is not scored: its ground truth (or the sample's metadata) cannot be
/// used. A skipped sample has `accuracy: null` and `reward: null`, never a made-up score.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip(pub String);

impl Skip {
    pub fn new(reason: impl Into<String>) -> Self {
        Skip(reason.into())
    }
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The outcome of one accuracy reward: a score in `[0, 1]`, or a skip.
pub type Accuracy = Result<f64, Skip>;
