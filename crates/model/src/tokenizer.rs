//! Tokenizers: a `tokenizer.json` from a model folder, or one rebuilt from a GGUF file's
//! metadata (llama.cpp stores the BPE vocabulary and merges there).

use std::path::Path;

use serde_json::{json, Value};

use crate::error::{ModelError, Result};

/// A Hugging Face tokenizer plus the ids the generator needs.
#[derive(Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokenizer({} tokens)", self.vocab_size())
    }
}

impl Tokenizer {
    pub fn from_file(path: &Path) -> Result<Tokenizer> {
        let inner = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| ModelError::format(path, format!("not a usable tokenizer.json: {e}")))?;
        Ok(Tokenizer { inner })
    }

    pub fn from_json(json: &str) -> Result<Tokenizer> {
        let inner: tokenizers::Tokenizer = json
            .parse()
            .map_err(|e| ModelError::Tokenizer(format!("{e}")))?;
        Ok(Tokenizer { inner })
    }

    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// Encodes text without adding BOS/EOS: chat templates spell out every special token.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|e| ModelError::Tokenizer(format!("encoding failed: {e}")))?;
        Ok(enc.get_ids().to_vec())
    }

    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        self.inner
            .decode(ids, skip_special)
            .map_err(|e| ModelError::Tokenizer(format!("decoding failed: {e}")))
    }

    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        self.inner
            .save(path, false)
            .map_err(|e| ModelError::format(path, format!("writing tokenizer: {e}")))
    }

    /// Rebuilds a byte-level BPE tokenizer from GGUF fields (`tokenizer.ggml.*`).
    ///
    /// `pre` is `tokenizer.ggml.pre`: `smollm` (and the other digit-splitting ones) put a
    /// `Digits(individual_digits)` step before byte-level splitting, as the original
    /// `tokenizer.json` of those models does.
    pub fn from_bpe_parts(
        tokens: &[String],
        merges: &[String],
        token_types: &[i32],
        pre: Option<&str>,
    ) -> Result<Tokenizer> {
        let vocab: serde_json::Map<String, Value> = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), json!(i)))
            .collect();
        // Control (3) and user-defined (4) tokens are matched whole, never split by BPE.
        let added: Vec<Value> = tokens
            .iter()
            .enumerate()
            .filter(|(i, _)| matches!(token_types.get(*i), Some(3) | Some(4)))
            .map(|(i, t)| {
                json!({"id": i, "content": t, "single_word": false, "lstrip": false,
                       "rstrip": false, "normalized": false,
                       "special": token_types.get(i) == Some(&3)})
            })
            .collect();
        let byte_level = json!({"type": "ByteLevel", "add_prefix_space": false,
                                "trim_offsets": true, "use_regex": true});
        let pre_tokenizer = match pre {
            Some("smollm") | Some("qwen2") | Some("llama-bpe") => json!({
                "type": "Sequence",
                "pretokenizers": [{"type": "Digits", "individual_digits": true}, byte_level]
            }),
            _ => byte_level.clone(),
        };
        let doc = json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": added,
            "normalizer": null,
            "pre_tokenizer": pre_tokenizer,
            "post_processor": {"type": "ByteLevel", "add_prefix_space": true,
                               "trim_offsets": false, "use_regex": true},
            "decoder": {"type": "ByteLevel", "add_prefix_space": true,
                        "trim_offsets": true, "use_regex": true},
            "model": {"type": "BPE", "dropout": null, "unk_token": null,
                      "continuing_subword_prefix": null, "end_of_word_suffix": null,
                      "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                      "vocab": vocab, "merges": merges}
        });
        Tokenizer::from_json(&doc.to_string())
    }
}
