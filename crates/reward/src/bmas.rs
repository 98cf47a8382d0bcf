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
//! lazily, once, on first use (a per-row [`OnceLock`]): a 151k x 3584 Qwen table never gets
//! converted up front, and the cache grows only with the vocabulary the texts actually use.
//! Similarities come from `matrixmultiply::sgemm` over the gathered rows, in tiles of 256 x 256
//! unique tokens, so memory stays bounded for inputs of any length. Per-thread scratch buffers
//! avoid allocations per pair; nothing is global mutable state, and [`Bmas`] is `Send + Sync`.
//!
//! Tokenization costs more than the similarity itself. When the tokenizer.json shows a pipeline
//! that cannot see across white space (BERT/WordPiece style: MiniLM), token ids are memoised per
//! white-space-separated chunk in a bounded, sharded map owned by the scorer, which gives exactly
//! the ids of tokenizing the whole text (tests check this against the tokenizer on random text).
//! Byte-level BPE (Qwen, GPT-2, Llama) is tokenized whole; it has its own word cache.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::hash::{BuildHasher, RandomState};
use std::path::{Path, PathBuf};
use std::sync::{OnceLock, RwLock};

use memmap2::Mmap;
use rayon::prelude::*;
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};
use tokenizers::Tokenizer;

use crate::{Accuracy, RewardError, Skip};

/// Tensor names tried, in order, when no `tensor` is configured: the input-embedding table under
/// the names common checkpoints use (Qwen2/Llama, Qwen2.5-VL in recent transformers, BERT/MiniLM,
/// GPT-2, a tied `lm_head`, InternLM).
pub const DEFAULT_TENSORS: &[&str] = &[
    "model.embed_tokens.weight",
    "model.language_model.embed_tokens.weight",
    "embeddings.word_embeddings.weight",
    "transformer.wte.weight",
    "lm_head.weight",
    "tok_embeddings.weight",
];

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
    /// own (see [`splits_at_whitespace`]); then chunk -> ids results are memoised.
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
        let Some(cache) = &self.chunk_cache else {
            return self.encode(text);
        };
        let mut ids = Vec::with_capacity(text.len() / 4 + 1);
        for chunk in text.split(CHUNK_SEPARATORS).filter(|c| !c.is_empty()) {
            if chunk.len() > MAX_CACHED_CHUNK {
                ids.extend(self.encode(chunk)?);
                continue;
            }
            let shard = cache.shard(chunk);
            if let Some(hit) = shard.read().unwrap_or_else(|p| p.into_inner()).get(chunk) {
                ids.extend_from_slice(hit);
                continue;
            }
            let fresh = self.encode(chunk)?;
            ids.extend_from_slice(&fresh);
            let mut shard = shard.write().unwrap_or_else(|p| p.into_inner());
            if shard.len() >= CHUNK_CACHE_SHARD_CAPACITY {
                // Crude but bounded: a full shard starts over; frequent words come back at once.
                shard.clear();
            }
            shard.insert(chunk.into(), fresh.into_boxed_slice());
        }
        Ok(ids)
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
        let (precision, recall) = SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            let pr = precision_recall(&self.table, answer, reference, &mut s);
            s.trim();
            pr
        });
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

/// Loads a tokenizer.json with padding and truncation off; also says whether it
/// [`splits_at_whitespace`].
fn load_tokenizer(path: &Path) -> Result<(Tokenizer, bool), RewardError> {
    let bytes = std::fs::read(path).map_err(|e| RewardError::io(path, e))?;
    let mut tokenizer = Tokenizer::from_bytes(&bytes)
        .map_err(|e| RewardError::load(path, format!("not a Hugging Face tokenizer.json: {e}")))?;
    // MiniLM's tokenizer.json pads to 128 and truncates at 128: pads would become tokens and
    // long texts would lose their tail.
    tokenizer.with_padding(None);
    tokenizer
        .with_truncation(None)
        .map_err(|e| RewardError::load(path, format!("cannot disable truncation: {e}")))?;
    let chunkable = serde_json::from_slice::<serde_json::Value>(&bytes)
        .map(|json| splits_at_whitespace(&json))
        .unwrap_or(false);
    Ok((tokenizer, chunkable))
}

// ------------------------------------------------------------------------------------------------
// Chunk memoisation.
//
// Hugging Face tokenization of a ~30-token text costs ~20 us, four times the similarity kernel,
// and most of it is normalisation bookkeeping. For tokenizers whose pipeline cannot see across
// white space, tokenizing "w1 w2 w3" equals concatenating the tokenization of "w1", "w2" and
// "w3", so each chunk's ids can be memoised: words repeat a lot (Zipf) and a hit is a hash
// lookup. Only ASCII space, tab, CR and LF separate chunks: white space under every definition the
// tokenizers library uses, so other Unicode spaces stay inside chunks for the real tokenizer.

const CHUNK_SEPARATORS: [char; 4] = [' ', '\t', '\n', '\r'];
const MAX_CACHED_CHUNK: usize = 64;
const CHUNK_CACHE_SHARDS: usize = 16;
const CHUNK_CACHE_SHARD_CAPACITY: usize = 1 << 14;

type ChunkMap = HashMap<Box<str>, Box<[u32]>>;

struct ChunkCache {
    shards: Box<[RwLock<ChunkMap>]>,
    hasher: RandomState,
}

impl ChunkCache {
    fn new() -> Self {
        ChunkCache {
            shards: (0..CHUNK_CACHE_SHARDS).map(|_| RwLock::default()).collect(),
            hasher: RandomState::new(),
        }
    }

    fn shard(&self, chunk: &str) -> &RwLock<ChunkMap> {
        let h = self.hasher.hash_one(chunk) as usize;
        &self.shards[h % CHUNK_CACHE_SHARDS]
    }
}

/// Whether tokenizing a text equals concatenating the tokenization of its white-space-separated
/// chunks, judged from the tokenizer.json: an allow-list of normalizers that act per character
/// or per combining sequence (white space is never part of one), pre-tokenizers that split at
/// white space and only ever split further, and added tokens without white space in them. The
/// model (WordPiece, BPE, WordLevel, Unigram) then sees the same pre-tokens either way, and with
/// `add_special_tokens = false` the post-processor adds nothing. Byte-level and Metaspace
/// pipelines (GPT-2, Qwen, Llama, T5) keep white space inside tokens and are excluded.
fn splits_at_whitespace(json: &serde_json::Value) -> bool {
    fn kind(v: &serde_json::Value) -> Option<&str> {
        v.get("type").and_then(|t| t.as_str())
    }
    fn normalizer_ok(v: &serde_json::Value) -> bool {
        match kind(v) {
            None => v.is_null(),
            Some("Sequence") => v
                .get("normalizers")
                .and_then(|n| n.as_array())
                .is_some_and(|n| n.iter().all(normalizer_ok)),
            Some(t) => matches!(
                t,
                "BertNormalizer" | "Lowercase" | "StripAccents" | "NFC" | "NFD" | "NFKC" | "NFKD"
            ),
        }
    }
    fn splits(t: &str) -> bool {
        matches!(t, "BertPreTokenizer" | "Whitespace" | "WhitespaceSplit")
    }
    fn pre_ok(v: &serde_json::Value) -> bool {
        match kind(v) {
            Some("Sequence") => v
                .get("pretokenizers")
                .and_then(|p| p.as_array())
                .is_some_and(|p| {
                    p.iter().any(|x| kind(x).is_some_and(splits))
                        && p.iter().all(|x| {
                            kind(x)
                                .is_some_and(|t| splits(t) || t == "Punctuation" || t == "Digits")
                        })
                }),
            Some(t) => splits(t),
            None => false,
        }
    }
    let added_ok = match json.get("added_tokens") {
        None => true,
        Some(a) => a.as_array().is_some_and(|a| {
            a.iter().all(|t| {
                t.get("content")
                    .and_then(|c| c.as_str())
                    .is_some_and(|c| !c.chars().any(char::is_whitespace))
            })
        }),
    };
    added_ok
        && normalizer_ok(json.get("normalizer").unwrap_or(&serde_json::Value::Null))
        && json.get("pre_tokenizer").is_some_and(pre_ok)
}

// ------------------------------------------------------------------------------------------------
// The similarity kernel.

/// Rows per tile of the similarity matrix: large enough that a typical pair is one sgemm call,
/// small enough that a 1 MB answer never builds a vocabulary-squared matrix.
const TILE: usize = 256;

/// Per-thread buffers, reused across pairs.
#[derive(Default)]
struct Scratch {
    ids_a: Vec<u32>,
    ids_b: Vec<u32>,
    uniq_a: Vec<(u32, u32)>,
    uniq_b: Vec<(u32, u32)>,
    rows_a: Vec<f32>,
    rows_b: Vec<f32>,
    sims: Vec<f32>,
    max_a: Vec<f32>,
    max_b: Vec<f32>,
}

impl Scratch {
    /// Gives back what one huge input grew, so a thread does not keep megabytes for ever.
    fn trim(&mut self) {
        const KEEP: usize = 1 << 16;
        fn cap<T>(v: &mut Vec<T>) {
            if v.capacity() > KEEP {
                v.clear();
                v.shrink_to(KEEP);
            }
        }
        cap(&mut self.ids_a);
        cap(&mut self.ids_b);
        cap(&mut self.uniq_a);
        cap(&mut self.uniq_b);
        cap(&mut self.max_a);
        cap(&mut self.max_b);
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Sorted unique ids with their counts.
fn unique_counts(ids: &[u32], sorted: &mut Vec<u32>, out: &mut Vec<(u32, u32)>) {
    sorted.clear();
    sorted.extend_from_slice(ids);
    sorted.sort_unstable();
    out.clear();
    for &id in sorted.iter() {
        match out.last_mut() {
            Some((last, count)) if *last == id => *count += 1,
            _ => out.push((id, 1)),
        }
    }
}

fn gather(table: &EmbeddingTable, ids: &[(u32, u32)], out: &mut Vec<f32>) {
    let dim = table.dim();
    out.clear();
    out.reserve(ids.len() * dim);
    for &(id, _) in ids {
        match table.normalized_row(id as usize) {
            Some(row) => out.extend_from_slice(row),
            None => out.resize(out.len() + dim, 0.0),
        }
    }
}

fn precision_recall(
    table: &EmbeddingTable,
    answer: &[u32],
    reference: &[u32],
    s: &mut Scratch,
) -> (f64, f64) {
    let Scratch {
        ids_a,
        ids_b,
        uniq_a,
        uniq_b,
        rows_a,
        rows_b,
        sims,
        max_a,
        max_b,
    } = s;
    unique_counts(answer, ids_a, uniq_a);
    unique_counts(reference, ids_b, uniq_b);
    let dim = table.dim();
    max_a.clear();
    max_a.resize(uniq_a.len(), f32::NEG_INFINITY);
    max_b.clear();
    max_b.resize(uniq_b.len(), f32::NEG_INFINITY);

    let single_b_tile = uniq_b.len() <= TILE;
    if single_b_tile {
        gather(table, uniq_b, rows_b);
    }
    for a0 in (0..uniq_a.len()).step_by(TILE) {
        let a_ids = &uniq_a[a0..(a0 + TILE).min(uniq_a.len())];
        gather(table, a_ids, rows_a);
        for b0 in (0..uniq_b.len()).step_by(TILE) {
            let b_ids = &uniq_b[b0..(b0 + TILE).min(uniq_b.len())];
            if !single_b_tile {
                gather(table, b_ids, rows_b);
            }
            let (m, n) = (a_ids.len(), b_ids.len());
            sims.clear();
            sims.resize(m * n, 0.0);
            if dim > 0 {
                // SAFETY: rows_a is m x dim and rows_b is n x dim, both row-major and
                // contiguous; sims is m x n row-major. Strides below describe exactly these
                // buffers (rows_b read as its transpose, dim x n), so every access is in bounds.
                unsafe {
                    matrixmultiply::sgemm(
                        m,
                        dim,
                        n,
                        1.0,
                        rows_a.as_ptr(),
                        dim as isize,
                        1,
                        rows_b.as_ptr(),
                        1,
                        dim as isize,
                        0.0,
                        sims.as_mut_ptr(),
                        n as isize,
                        1,
                    );
                }
            }
            // Equal ids are a perfect match by definition (see the module docs). Both id lists
            // are sorted, so one merge pass finds every equal pair.
            let (mut i, mut j) = (0, 0);
            while i < m && j < n {
                match a_ids[i].0.cmp(&b_ids[j].0) {
                    std::cmp::Ordering::Less => i += 1,
                    std::cmp::Ordering::Greater => j += 1,
                    std::cmp::Ordering::Equal => {
                        sims[i * n + j] = 1.0;
                        i += 1;
                        j += 1;
                    }
                }
            }
            let max_a = &mut max_a[a0..a0 + m];
            let max_b = &mut max_b[b0..b0 + n];
            for (row, best_a) in sims.chunks_exact(n).zip(max_a.iter_mut()) {
                for (&v, best_b) in row.iter().zip(max_b.iter_mut()) {
                    if v > *best_a {
                        *best_a = v;
                    }
                    if v > *best_b {
                        *best_b = v;
                    }
                }
            }
        }
    }
    let weighted_mean = |uniq: &[(u32, u32)], best: &[f32], total: usize| -> f64 {
        let sum: f64 = uniq
            .iter()
            .zip(best)
            .map(|(&(_, count), &b)| count as f64 * b as f64)
            .sum();
        sum / total as f64
    };
    (
        weighted_mean(uniq_a, max_a, answer.len()),
        weighted_mean(uniq_b, max_b, reference.len()),
    )
}

// ------------------------------------------------------------------------------------------------
// The embedding table.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Elem {
    F32,
    F16,
    BF16,
    F64,
}

impl Elem {
    fn size(self) -> usize {
        match self {
            Elem::F16 | Elem::BF16 => 2,
            Elem::F32 => 4,
            Elem::F64 => 8,
        }
    }
}

/// One 2-D tensor `[rows, dim]` of a memory-mapped safetensors file, with its rows L2-normalised
/// to f32 lazily and cached.
pub struct EmbeddingTable {
    path: PathBuf,
    tensor: String,
    mmap: Mmap,
    /// Byte offset of the tensor's data in the file.
    start: usize,
    rows: usize,
    dim: usize,
    elem: Elem,
    normalized: Box<[OnceLock<Box<[f32]>>]>,
}

impl fmt::Debug for EmbeddingTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddingTable")
            .field("path", &self.path)
            .field("tensor", &self.tensor)
            .field("shape", &[self.rows, self.dim])
            .field("dtype", &self.elem)
            .finish()
    }
}

impl EmbeddingTable {
    /// Opens a table from a safetensors file, a sharded `*.safetensors.index.json`, or a model
    /// folder. `tensor = None` tries [`DEFAULT_TENSORS`] in order.
    pub fn open(path: impl AsRef<Path>, tensor: Option<&str>) -> Result<Self, RewardError> {
        let path = path.as_ref();
        if path.is_dir() {
            Self::open_model_dir(path, tensor)
        } else if path.extension().is_some_and(|e| e == "json") {
            Self::open_index(path, tensor)
        } else {
            Self::open_file(path, tensor)
        }
    }

    /// A Hugging Face model folder: `model.safetensors`, else `model.safetensors.index.json`.
    pub fn open_model_dir(
        dir: impl AsRef<Path>,
        tensor: Option<&str>,
    ) -> Result<Self, RewardError> {
        let dir = dir.as_ref();
        let single = dir.join("model.safetensors");
        let index = dir.join("model.safetensors.index.json");
        if single.is_file() {
            Self::open_file(&single, tensor)
        } else if index.is_file() {
            Self::open_index(&index, tensor)
        } else if !dir.is_dir() {
            Err(RewardError::io(
                dir,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such model folder"),
            ))
        } else {
            Err(RewardError::load(
                dir,
                "model folder has neither model.safetensors nor model.safetensors.index.json",
            ))
        }
    }

    /// A sharded checkpoint: the index's `weight_map` names the shard holding the tensor.
    pub fn open_index(index: impl AsRef<Path>, tensor: Option<&str>) -> Result<Self, RewardError> {
        let index = index.as_ref();
        let text = std::fs::read_to_string(index).map_err(|e| RewardError::io(index, e))?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| RewardError::load(index, format!("not a JSON index: {e}")))?;
        let map = json
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| RewardError::load(index, "the index has no \"weight_map\" object"))?;
        let candidates = candidates(tensor);
        let (name, shard) = candidates
            .iter()
            .find_map(|c| map.get(*c).map(|s| (*c, s)))
            .ok_or_else(|| {
                RewardError::load(index, missing_tensor_message(&candidates, map.keys()))
            })?;
        let shard = shard.as_str().ok_or_else(|| {
            RewardError::load(index, format!("weight_map[\"{name}\"] is not a file name"))
        })?;
        let dir = index.parent().unwrap_or(Path::new("."));
        Self::open_file(dir.join(shard), Some(name))
    }

    /// One safetensors file.
    pub fn open_file(path: impl AsRef<Path>, tensor: Option<&str>) -> Result<Self, RewardError> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| RewardError::io(path, e))?;
        // SAFETY: the file is mapped read-only. Changing a checkpoint while it is being scored
        // is outside what we support (as for every mmap-based loader).
        let mmap = unsafe { Mmap::map(&file) }.map_err(|e| RewardError::io(path, e))?;
        let (header_len, metadata) = SafeTensors::read_metadata(&mmap)
            .map_err(|e| RewardError::load(path, format!("not a safetensors file: {e:?}")))?;
        let candidates = candidates(tensor);
        let (name, info) = candidates
            .iter()
            .find_map(|c| metadata.info(c).map(|i| (*c, i)))
            .ok_or_else(|| {
                let names = metadata.tensors();
                RewardError::load(path, missing_tensor_message(&candidates, names.keys()))
            })?;
        let elem = match info.dtype {
            Dtype::F32 => Elem::F32,
            Dtype::F16 => Elem::F16,
            Dtype::BF16 => Elem::BF16,
            Dtype::F64 => Elem::F64,
            other => {
                return Err(RewardError::load(
                    path,
                    format!("tensor `{name}` has dtype {other:?}; BMAS reads F32, F16, BF16, F64"),
                ))
            }
        };
        let (rows, dim) = match info.shape[..] {
            [rows, dim] if rows > 0 && dim > 0 => (rows, dim),
            _ => {
                return Err(RewardError::load(
                    path,
                    format!(
                        "tensor `{name}` has shape {:?}; an embedding table is [vocab, hidden]",
                        info.shape
                    ),
                ))
            }
        };
        // 8 bytes of header length, then the header, then the data.
        let start = 8 + header_len + info.data_offsets.0;
        let bytes = rows
            .checked_mul(dim)
            .and_then(|n| n.checked_mul(elem.size()));
        if bytes != Some(info.data_offsets.1 - info.data_offsets.0) {
            return Err(RewardError::load(
                path,
                format!(
                    "tensor `{name}`: data length does not match shape {:?}",
                    info.shape
                ),
            ));
        }
        let normalized = (0..rows).map(|_| OnceLock::new()).collect();
        Ok(EmbeddingTable {
            path: path.to_path_buf(),
            tensor: name.to_string(),
            mmap,
            start,
            rows,
            dim,
            elem,
            normalized,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn tensor_name(&self) -> &str {
        &self.tensor
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The dtype as safetensors names it ("F32", "F16", "BF16", "F64").
    pub fn dtype(&self) -> &'static str {
        match self.elem {
            Elem::F32 => "F32",
            Elem::F16 => "F16",
            Elem::BF16 => "BF16",
            Elem::F64 => "F64",
        }
    }

    /// Row `id` as f32, L2-normalised (a zero vector when its norm is 0 or not finite);
    /// `None` beyond the table.
    pub fn normalized_row(&self, id: usize) -> Option<&[f32]> {
        let cell = self.normalized.get(id)?;
        Some(cell.get_or_init(|| self.convert_row(id)))
    }

    /// Row `id` as stored, converted to f32 (not normalised).
    pub fn raw_row(&self, id: usize) -> Option<Vec<f32>> {
        (id < self.rows).then(|| self.read_row(id))
    }

    fn read_row(&self, id: usize) -> Vec<f32> {
        let size = self.elem.size();
        let begin = self.start + id * self.dim * size;
        let bytes = &self.mmap[begin..begin + self.dim * size];
        match self.elem {
            Elem::F32 => bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Elem::F16 => bytes
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Elem::BF16 => bytes
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Elem::F64 => bytes
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32)
                .collect(),
        }
    }

    fn convert_row(&self, id: usize) -> Box<[f32]> {
        let mut row = self.read_row(id);
        let norm = row.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt();
        if norm > 0.0 && norm.is_finite() {
            let inv = 1.0 / norm;
            for x in &mut row {
                *x = (*x as f64 * inv) as f32;
            }
        } else {
            row.fill(0.0);
        }
        row.into_boxed_slice()
    }
}

fn candidates(tensor: Option<&str>) -> Vec<&str> {
    match tensor {
        Some(t) => vec![t],
        None => DEFAULT_TENSORS.to_vec(),
    }
}

fn missing_tensor_message<'a>(tried: &[&str], present: impl Iterator<Item = &'a String>) -> String {
    let mut present: Vec<&String> = present.collect();
    present.sort();
    // The embedding-looking names first: they are the likely fix.
    let mut hints: Vec<&String> = present
        .iter()
        .copied()
        .filter(|n| n.contains("emb") || n.contains("wte"))
        .collect();
    let shown = if hints.is_empty() {
        present.iter().take(8).copied().collect()
    } else {
        hints.truncate(8);
        hints
    };
    let shown: Vec<&str> = shown.iter().map(|s| s.as_str()).collect();
    format!(
        "no embedding tensor found: tried {}; the file has {} tensors, e.g. {} \
         (set bmas.tensor / --embedding-tensor)",
        tried
            .iter()
            .map(|t| format!("`{t}`"))
            .collect::<Vec<_>>()
            .join(", "),
        present.len(),
        if shown.is_empty() {
            "none".to_string()
        } else {
            shown.join(", ")
        }
    )
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn check<T: Send + Sync>() {}
    check::<Bmas>();
    check::<EmbeddingTable>();
}
