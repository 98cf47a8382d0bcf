//! The `[bmas]` section of the reward configuration and how precision and recall combine.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[cfg(doc)]
use super::DEFAULT_TENSORS;

/// How precision and recall are combined.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Aggregate {
    /// `(P + R) / 2`, the paper's bidirectional average.
    #[default]
    Mean,
    /// `2PR / (P + R)`, as in BERTScore's F1; punishes a one-sided match harder.
    F1,
}

/// The `[bmas]` section of the reward configuration.
///
/// `model` is a Hugging Face model folder (tokenizer.json + model.safetensors, or a sharded
/// `model.safetensors.index.json`); `tokenizer` and `embeddings` override its files or stand on
/// their own. `embeddings` may also name a folder or an `index.json`. `tensor` picks the table;
/// by default the names in [`DEFAULT_TENSORS`] are tried.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BmasConfig {
    pub tokenizer: Option<PathBuf>,
    pub embeddings: Option<PathBuf>,
    pub tensor: Option<String>,
    pub model: Option<PathBuf>,
    pub aggregate: Aggregate,
    /// Baseline `b` in `[0, 1)`: scores are rescaled to `(x - b) / (1 - b)`. 0 = none.
    pub baseline: f64,
}
