//! The tokenizer side of BMAS: loading a tokenizer.json with padding and truncation off, and
//! memoising token ids per white-space-separated chunk when the pipeline allows it.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::path::Path;
use std::sync::RwLock;

use tokenizers::Tokenizer;

use crate::RewardError;

/// Loads a tokenizer.json with padding and truncation off; also says whether it
/// [`splits_at_whitespace`].
pub(super) fn load_tokenizer(path: &Path) -> Result<(Tokenizer, bool), RewardError> {
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

pub(super) struct ChunkCache {
    shards: Box<[RwLock<ChunkMap>]>,
    hasher: RandomState,
}

impl ChunkCache {
    pub(super) fn new() -> Self {
        ChunkCache {
            shards: (0..CHUNK_CACHE_SHARDS).map(|_| RwLock::default()).collect(),
            hasher: RandomState::new(),
        }
    }

    fn shard(&self, chunk: &str) -> &RwLock<ChunkMap> {
        let h = self.hasher.hash_one(chunk) as usize;
        &self.shards[h % CHUNK_CACHE_SHARDS]
    }

    /// The ids of `text`: each chunk's from the cache, or from `encode` (then remembered).
    pub(super) fn token_ids(
        &self,
        text: &str,
        encode: impl Fn(&str) -> Result<Vec<u32>, String>,
    ) -> Result<Vec<u32>, String> {
        let mut ids = Vec::with_capacity(text.len() / 4 + 1);
        for chunk in text.split(CHUNK_SEPARATORS).filter(|c| !c.is_empty()) {
            if chunk.len() > MAX_CACHED_CHUNK {
                ids.extend(encode(chunk)?);
                continue;
            }
            let shard = self.shard(chunk);
            if let Some(hit) = shard.read().unwrap_or_else(|p| p.into_inner()).get(chunk) {
                ids.extend_from_slice(hit);
                continue;
            }
            let fresh = encode(chunk)?;
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
}

/// Whether tokenizing a text equals concatenating the tokenization of its white-space-separated
/// chunks, judged from the tokenizer.json: an allow-list of normalizers that act per character
/// or per combining sequence (white space is never part of one), pre-tokenizers that split at
/// white space and only ever split further, and added tokens without white space in them. The
/// model (WordPiece, BPE, WordLevel, Unigram) then sees the same pre-tokens either way, and with
/// `add_special_tokens = false` the post-processor adds nothing. Byte-level and Metaspace
/// pipelines (GPT-2, Qwen, Llama, T5) keep white space inside tokens and are excluded.
pub(super) fn splits_at_whitespace(json: &serde_json::Value) -> bool {
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
