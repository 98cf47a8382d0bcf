//! BMAS (Bidirectional Max-Average Similarity): the reward for open-ended answers (captions, long
//! answers), computed over a real token-embedding table.
//!
//! The answer is tokenized into `r_1..r_m` and the reference into `g_1..g_n` (no special tokens
//! added, no padding or truncation even when the `tokenizer.json` asks for them). Each token's row
//! of the embedding table `E` is L2-normalised, `S_ij = cos(r_i, g_j)`, and
//!
//! ```text
//! P = mean_i max_j S_ij      (every answer token finds its best match in the reference)
//! R = mean_j max_i S_ij      (every reference token is covered by the answer)
//! BMAS = (P + R) / 2         (or, with `aggregate = "f1"`, 2PR / (P + R) over P, R clamped at 0)
//! ```
//!
//! clamped to `[0, 1]`, then optionally rescaled against a baseline `b`: `(x - b) / (1 - b)`,
//! clamped again. An empty answer scores 0; an empty reference is a [`Skip`].
//!
//! Definitions that the formula leaves open, and our choices:
//! * Two equal token ids have similarity exactly 1, whatever their rows hold. This is what
//!   `cos(x, x)` means, and it makes identical texts score exactly 1.0 (float rounding of a
//!   self-dot-product would otherwise give 0.99999994), including for tokens whose row is zero.
//!   Likewise a final score within 1e-6 of 1 (different tokens with the same direction) is 1:
//!   f32 cosines cannot resolve finer than that.
//! * A row whose norm is 0 or not finite (and an id beyond the table, which validation at load
//!   time rules out for the tokenizer's own ids) is a zero vector: cosine 0 with every other token.
//! * Repeated token ids are scored once and weighted by their count. `max_j` does not depend on
//!   how often a reference token repeats, so this is exactly the per-token formula, only cheaper.
//!
//! Loading reads one tensor from a safetensors file that is memory-mapped; only the header and
//! the rows a text touches are ever read from disk. Rows are converted to f32 and normalised
//! lazily, once, on first use (a per-row [`OnceLock`](std::sync::OnceLock)): a 151k x 3584 Qwen
//! table never gets converted up front, and the cache grows only with the vocabulary the texts
//! actually use.
//! Similarities come from `matrixmultiply::sgemm` over the gathered rows, in tiles of 256 x 256
//! unique tokens, so memory stays bounded for inputs of any length. Per-thread scratch buffers
//! avoid allocations per pair; nothing is global mutable state, and [`Bmas`] is `Send + Sync`.
//!
//! Tokenization costs more than the similarity itself. When the tokenizer.json shows a pipeline
//! that cannot see across white space (BERT/WordPiece style: MiniLM), token ids are memoised per
//! white-space-separated chunk in a bounded, sharded map owned by the scorer, which gives exactly
//! the ids of tokenizing the whole text (tests check this against the tokenizer on random text).
//! Byte-level BPE (Qwen, GPT-2, Llama) is tokenized whole; it has its own word cache.
//!
//! The module's files, one idea each: [`config`] (the `[bmas]` section), `tokenize` (loading the
//! tokenizer and memoising ids per white-space chunk), `similarity` (the tiled max-cosine kernel)
//! and [`table`] (the memory-mapped embedding table).

use std::fmt;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use tokenizers::Tokenizer;

use crate::{Accuracy, RewardError, Skip};

pub mod config;
mod similarity;
pub mod table;
mod tokenize;

pub use config::{Aggregate, BmasConfig};
pub use table::{EmbeddingTable, DEFAULT_TENSORS};
use tokenize::{load_tokenizer, ChunkCache};

/// Precision, recall and the final score of one pair, for inspection and debugging.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BmasParts {
    /// `P = mean_i max_j S_ij` over the answer's tokens (may be negative).
    pub precision: f64,
    /// `R = mean_j max_i S_ij` over the reference's tokens (may be negative).
    pub recall: f64,
    /// The reward: aggregated, clamped to `[0, 1]`, baseline-rescaled.
    pub score: f64,
    pub answer_tokens: usize,
    pub reference_tokens: usize,
}

/// A loaded BMAS scorer: one tokenizer and one embedding table.
pub struct Bmas {
    tokenizer: Tokenizer,
    tokenizer_path: PathBuf,
    /// Present when the tokenizer provably tokenizes each white-space-separated chunk on its
    /// own (see `tokenize::splits_at_whitespace`); then chunk -> ids results are memoised.
    chunk_cache: Option<ChunkCache>,
    table: EmbeddingTable,
    aggregate: Aggregate,
    baseline: f64,
}

impl fmt::Debug for Bmas {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bmas")
            .field("tokenizer", &self.tokenizer_path)
            .field("chunk_cache", &self.chunk_cache.is_some())
            .field("table", &self.table)
            .field("aggregate", &self.aggregate)
            .field("baseline", &self.baseline)
            .finish()
    }
}

impl Bmas {
    /// Builds the scorer the configuration describes; `None` when neither `model` nor
    /// `embeddings` is configured (BMAS is then unavailable and `open_ended` samples skip).
    pub fn from_config(cfg: &BmasConfig) -> Result<Option<Bmas>, RewardError> {
        if cfg.model.is_none() && cfg.embeddings.is_none() {
            if cfg.tokenizer.is_some() || cfg.tensor.is_some() {
                return Err(RewardError::Config(
                    "bmas.tokenizer / bmas.tensor are set but neither bmas.embeddings nor \
                     bmas.model is: BMAS needs an embedding table"
                        .into(),
                ));
            }
            return Ok(None);
        }
        check_baseline(cfg.baseline)?;
        let tokenizer = match (&cfg.tokenizer, &cfg.model) {
            (Some(t), _) => t.clone(),
            (None, Some(dir)) => dir.join("tokenizer.json"),
            (None, None) => {
                return Err(RewardError::Config(
                    "bmas.embeddings needs bmas.tokenizer (a tokenizer.json) or bmas.model".into(),
                ))
            }
        };
        let table_source = cfg
            .embeddings
            .as_ref()
            .or(cfg.model.as_ref())
            .expect("checked");
        let table = EmbeddingTable::open(table_source, cfg.tensor.as_deref())?;
        let bmas = Bmas::new(&tokenizer, table)?
            .with_aggregate(cfg.aggregate)
            .with_baseline(cfg.baseline)?;
        Ok(Some(bmas))
    }

    /// A tokenizer.json and one tensor of a safetensors file (`None` = try [`DEFAULT_TENSORS`]).
    pub fn from_files(
        tokenizer: impl AsRef<Path>,
        embeddings: impl AsRef<Path>,
        tensor: Option<&str>,
    ) -> Result<Bmas, RewardError> {
        Bmas::new(
            tokenizer.as_ref(),
            EmbeddingTable::open(embeddings.as_ref(), tensor)?,
        )
    }

    /// A Hugging Face model folder: `tokenizer.json` and the input-embedding table from
    /// `model.safetensors` or the shard `model.safetensors.index.json` points to.
    pub fn from_model_dir(
        dir: impl AsRef<Path>,
        tensor: Option<&str>,
    ) -> Result<Bmas, RewardError> {
        let dir = dir.as_ref();
        Bmas::new(
            &dir.join("tokenizer.json"),
            EmbeddingTable::open_model_dir(dir, tensor)?,
        )
    }

    /// A tokenizer file and an already opened table; checks that every token id has a row.
    pub fn new(tokenizer_path: &Path, table: EmbeddingTable) -> Result<Bmas, RewardError> {
        let (tokenizer, chunkable) = load_tokenizer(tokenizer_path)?;
        let vocab = tokenizer.get_vocab_size(true);
        let id_space = tokenizer
            .get_vocab(true)
            .values()
            .map(|&id| id as usize + 1)
            .max()
            .unwrap_or(0)
            .max(vocab);
        if id_space > table.rows() {
            return Err(RewardError::Config(format!(
                "BMAS tokenizer and embedding table do not match: the tokenizer {} has {} token \
                 ids (vocabulary {} with added tokens) but the table `{}` in {} has only {} rows \
                 (shape [{}, {}]); use the tokenizer of the model the table comes from",
                tokenizer_path.display(),
                id_space,
                vocab,
                table.tensor_name(),
                table.path().display(),
                table.rows(),
                table.rows(),
                table.dim(),
            )));
        }
        Ok(Bmas {
            tokenizer,
            tokenizer_path: tokenizer_path.to_path_buf(),
            chunk_cache: chunkable.then(ChunkCache::new),
            table,
            aggregate: Aggregate::Mean,
            baseline: 0.0,
        })
    }

    pub fn with_aggregate(mut self, aggregate: Aggregate) -> Self {
        self.aggregate = aggregate;
        self
    }

    /// Sets the baseline `b` in `[0, 1)` of the rescale `(x - b) / (1 - b)`.
    pub fn with_baseline(mut self, baseline: f64) -> Result<Self, RewardError> {
        check_baseline(baseline)?;
        self.baseline = baseline;
        Ok(self)
    }

    pub fn aggregate(&self) -> Aggregate {
        self.aggregate
    }

    pub fn baseline(&self) -> f64 {
        self.baseline
    }

    pub fn table(&self) -> &EmbeddingTable {
        &self.table
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The token ids BMAS compares: no special tokens added, no padding, no truncation.
    /// Exactly `tokenizer().encode(text, false)`'s ids, memoised per white-space chunk when the
    /// tokenizer allows it.
    pub fn token_ids(&self, text: &str) -> Result<Vec<u32>, String> {
        match &self.chunk_cache {
            Some(cache) => cache.token_ids(text, |chunk| self.encode(chunk)),
            None => self.encode(text),
        }
    }

    /// Whether token ids are memoised per white-space chunk (true for BERT-style tokenizers,
    /// false for byte-level BPE such as Qwen's, whose pre-tokens carry their leading space).
    pub fn uses_chunk_cache(&self) -> bool {
        self.chunk_cache.is_some()
    }

    fn encode(&self, text: &str) -> Result<Vec<u32>, String> {
        self.tokenizer
            .encode_fast(text, false)
            .map(|enc| enc.get_ids().to_vec())
            .map_err(|e| e.to_string())
    }

    /// The BMAS reward of `answer` against `reference`.
    pub fn score(&self, answer: &str, reference: &str) -> Accuracy {
        self.parts(answer, reference).map(|p| p.score)
    }

    /// Precision, recall and score of one pair.
    pub fn parts(&self, answer: &str, reference: &str) -> Result<BmasParts, Skip> {
        let reference = self.reference_ids(reference)?;
        Ok(self.parts_with_reference(answer, &reference))
    }

    /// BMAS over token ids the caller already has (e.g. the policy's sampled ids): the same
    /// formula without tokenization. Ids beyond the table count as zero rows.
    pub fn score_ids(&self, answer: &[u32], reference: &[u32]) -> Accuracy {
        self.parts_ids(answer, reference).map(|p| p.score)
    }

    pub fn parts_ids(&self, answer: &[u32], reference: &[u32]) -> Result<BmasParts, Skip> {
        if reference.is_empty() {
            return Err(Skip::new("BMAS: the reference has no tokens"));
        }
        Ok(self.parts_of(answer, reference))
    }

    /// Scores many pairs in parallel (rayon), in input order.
    pub fn score_pairs(&self, pairs: &[(&str, &str)]) -> Vec<Accuracy> {
        pairs.par_iter().map(|(a, r)| self.score(a, r)).collect()
    }

    /// Scores a group of answers against one reference (a GRPO group): the reference is
    /// tokenized once.
    pub fn score_group(&self, answers: &[&str], reference: &str) -> Vec<Accuracy> {
        match self.reference_ids(reference) {
            Ok(ids) => answers
                .par_iter()
                .map(|a| Ok(self.parts_with_reference(a, &ids).score))
                .collect(),
            Err(skip) => vec![Err(skip); answers.len()],
        }
    }

    fn reference_ids(&self, reference: &str) -> Result<Vec<u32>, Skip> {
        let ids = self
            .token_ids(reference)
            .map_err(|e| Skip(format!("BMAS: cannot tokenize the reference: {e}")))?;
        if ids.is_empty() {
            return Err(Skip::new("BMAS: the reference has no tokens"));
        }
        Ok(ids)
    }

    fn parts_with_reference(&self, answer: &str, reference: &[u32]) -> BmasParts {
        // An answer the tokenizer rejects cannot match anything; it scores like an empty one.
        let answer = self.token_ids(answer).unwrap_or_default();
        self.parts_of(&answer, reference)
    }

    fn parts_of(&self, answer: &[u32], reference: &[u32]) -> BmasParts {
        if answer.is_empty() {
            return BmasParts {
                precision: 0.0,
                recall: 0.0,
                score: 0.0,
                answer_tokens: 0,
                reference_tokens: reference.len(),
            };
        }
        let (precision, recall) = similarity::precision_recall(&self.table, answer, reference);
        BmasParts {
            precision,
            recall,
            score: self.finish(precision, recall),
            answer_tokens: answer.len(),
            reference_tokens: reference.len(),
        }
    }

    fn finish(&self, p: f64, r: f64) -> f64 {
        let x = match self.aggregate {
            Aggregate::Mean => (p + r) / 2.0,
            Aggregate::F1 => {
                let (p, r) = (p.max(0.0), r.max(0.0));
                if p + r > 0.0 {
                    2.0 * p * r / (p + r)
                } else {
                    0.0
                }
            }
        };
        // Cosines are f32: two different tokens with the same direction give 0.99999994. A
        // score this close to 1 is a perfect match as far as the arithmetic can tell.
        let x = if x >= 1.0 - PERFECT_TOLERANCE {
            1.0
        } else {
            clamp01(x)
        };
        if self.baseline > 0.0 {
            clamp01((x - self.baseline) / (1.0 - self.baseline))
        } else {
            x
        }
    }
}

/// Distance from 1 below which a score counts as exactly 1 (a few f32 ulps of a cosine).
const PERFECT_TOLERANCE: f64 = 1e-6;

fn clamp01(x: f64) -> f64 {
    if x.is_nan() {
        0.0
    } else {
        x.clamp(0.0, 1.0)
    }
}

fn check_baseline(b: f64) -> Result<(), RewardError> {
    if (0.0..1.0).contains(&b) {
        Ok(())
    } else {
        Err(RewardError::Config(format!(
            "bmas.baseline must be in [0, 1), got {b}"
        )))
    }
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn check<T: Send + Sync>() {}
    check::<Bmas>();
    check::<EmbeddingTable>();
}
