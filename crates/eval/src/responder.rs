//! Where responses come from: the [`Responder`] trait, and [`GivenResponses`], which reads them
//! from a file (the mode that scores fixed responses without generating).
//!
//! The model-backed responder (batched generation with `mixed-r1-model`) implements the same
//! trait; see `model_responder.rs` / `notes/eval.md` for what it must provide.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::json_id::id_text;
use crate::seed::fnv64;

/// One prompt to answer.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalPrompt {
    /// The sample id (unique within a run).
    pub id: String,
    /// The system message of the prompt template, if any.
    pub system: Option<String>,
    /// The rendered user message before the chat template, `<image>` placeholders in place
    /// (one per image, in order).
    pub text: String,
    /// The images, in placeholder order; every one exists (missing ones were skipped before).
    pub images: Vec<PathBuf>,
    /// This sample's seed: a function of the run seed and the id only
    /// ([`crate::seed::sample_seed`]). Sampling must draw from it (and the response index), never
    /// from the batch's composition, so an interrupted and resumed run equals a whole one.
    pub seed: u64,
}

/// One generated (or given) response.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Response {
    pub text: String,
    /// Generated tokens (the model's tokenizer), when the responder knows them.
    pub tokens: Option<usize>,
    /// Generation stopped at the token limit instead of an end-of-sequence token.
    pub truncated: bool,
}

impl Response {
    pub fn new(text: impl Into<String>) -> Response {
        Response {
            text: text.into(),
            ..Default::default()
        }
    }
}

/// A source of responses: a model generating in batches, or a file of given responses.
///
/// Contract:
/// * `respond` returns one entry per prompt, in order. Each holds `n` responses, or none when
///   this responder has no response for that prompt (it is then reported and skipped).
/// * A prompt's responses depend on the prompt, its `seed` and `n` only, never on the other
///   prompts of the batch (left padding with attention masks; sampling from a per-prompt RNG).
///   Resume relies on it.
/// * Greedy decoding when the generation settings' temperature is 0; otherwise sampling.
pub trait Responder {
    /// A short human-readable name for reports (`given:responses.jsonl`, `model:Qwen2.5-VL-3B`).
    fn name(&self) -> String;

    /// What identifies this responder's outputs for the resume fingerprint (a model folder
    /// with its weights' sizes, a responses file with its content hash). Defaults to the name.
    fn fingerprint(&self) -> String {
        self.name()
    }

    /// Answers a batch of prompts, `n` responses each.
    fn respond(&mut self, batch: &[EvalPrompt], n: usize) -> Result<Vec<Vec<Response>>>;

    /// The frame this responder's model writes boxes in, used for predicted boxes when neither
    /// the sample nor the reward config names one (InternVL: `rel1000`). `None`: the gold's.
    fn box_frame(&self) -> Option<mixed_r1_reward::iou::Frame> {
        None
    }

    /// Sets the reward's predicted-box frame (and what reading it needs) to this responder's,
    /// unless the config names a frame.
    fn follow_frame(&self, reward: &mut mixed_r1_reward::RewardConfig) {
        if reward.iou.pred_frame.is_none() {
            reward.iou.pred_frame = self.box_frame();
        }
    }
}

/// A line of a responses file that could not be read.
#[derive(Debug, Clone, PartialEq)]
pub struct BadLine {
    pub line: usize,
    pub reason: String,
}

/// Responses read from a JSONL file, one line per sample:
/// `{"id": ..., "response": "..."}` or `{"id": ..., "responses": ["...", ...]}` for `n > 1`;
/// optional `tokens` (a number, or a list matching `responses`) and `truncated` (a bool, or a
/// list). Ids are strings or numbers. When a sample has more responses than `n`, the first `n`
/// are used; fewer are used as they are (pass@k then counts each sample with its own n).
pub struct GivenResponses {
    path: PathBuf,
    hash: u64,
    by_id: HashMap<String, Vec<Response>>,
    bad: Vec<BadLine>,
    used: usize,
}

impl GivenResponses {
    /// Reads the file. A missing or unreadable file is an error naming it; a bad line is kept
    /// in [`GivenResponses::bad_lines`] and the rest are read.
    pub fn load(path: &Path) -> Result<GivenResponses> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read responses {}", path.display()))?;
        let mut by_id = HashMap::new();
        let mut bad = Vec::new();
        for (i, l) in text.lines().enumerate() {
            if l.trim().is_empty() {
                continue;
            }
            match parse_line(l) {
                Ok((id, rs)) => {
                    if by_id.insert(id.clone(), rs).is_some() {
                        bad.push(BadLine {
                            line: i + 1,
                            reason: format!("id {id:?} given again (the last one is used)"),
                        });
                    }
                }
                Err(reason) => bad.push(BadLine {
                    line: i + 1,
                    reason,
                }),
            }
        }
        Ok(GivenResponses {
            path: path.to_path_buf(),
            hash: fnv64(text.as_bytes()),
            by_id,
            bad,
            used: 0,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Lines that could not be read (1-based line numbers).
    pub fn bad_lines(&self) -> &[BadLine] {
        &self.bad
    }

    /// How many samples have responses in the file.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// How many prompts were answered from the file so far.
    pub fn used(&self) -> usize {
        self.used
    }

    /// Ids that have responses in the file.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.by_id.keys().map(String::as_str)
    }
}

fn parse_line(l: &str) -> Result<(String, Vec<Response>), String> {
    let v: Value = serde_json::from_str(l).map_err(|e| format!("invalid JSON: {e}"))?;
    let o = v.as_object().ok_or("a line must be a JSON object")?;
    let id = o
        .get("id")
        .and_then(id_text)
        .ok_or("missing `id` (a string or a number)")?;
    let texts: Vec<String> = match (o.get("response"), o.get("responses")) {
        (Some(Value::String(s)), None) => vec![s.clone()],
        (None, Some(Value::Array(a))) => a
            .iter()
            .map(|x| x.as_str().map(str::to_string))
            .collect::<Option<_>>()
            .ok_or("`responses` must be a list of strings")?,
        (Some(_), Some(_)) => return Err("give `response` or `responses`, not both".into()),
        (Some(_), None) => return Err("`response` must be a string".into()),
        (None, Some(_)) => return Err("`responses` must be a list of strings".into()),
        (None, None) => return Err("missing `response` (or `responses`)".into()),
    };
    if texts.is_empty() {
        return Err("`responses` is empty".into());
    }
    let k = texts.len();
    let per =
        |key: &str, f: &dyn Fn(&Value) -> Option<Value>| -> Result<Vec<Option<Value>>, String> {
            match o.get(key) {
                None | Some(Value::Null) => Ok(vec![None; k]),
                Some(Value::Array(a)) if a.len() == k => Ok(a.iter().map(f).collect()),
                Some(Value::Array(a)) => {
                    Err(format!("`{key}` has {} items for {k} responses", a.len()))
                }
                Some(x) => Ok(vec![f(x); k]),
            }
        };
    let tokens = per("tokens", &|x| x.as_u64().map(Value::from))?;
    let truncated = per("truncated", &|x| x.as_bool().map(Value::from))?;
    let responses = texts
        .into_iter()
        .zip(tokens)
        .zip(truncated)
        .map(|((text, t), tr)| Response {
            text,
            tokens: t.and_then(|v| v.as_u64()).map(|v| v as usize),
            truncated: tr.and_then(|v| v.as_bool()).unwrap_or(false),
        })
        .collect();
    Ok((id, responses))
}

impl Responder for GivenResponses {
    fn name(&self) -> String {
        format!("given:{}", self.path.display())
    }

    fn fingerprint(&self) -> String {
        format!("given:{:016x}", self.hash)
    }

    fn respond(&mut self, batch: &[EvalPrompt], n: usize) -> Result<Vec<Vec<Response>>> {
        Ok(batch
            .iter()
            .map(|p| match self.by_id.get(&p.id) {
                Some(rs) => {
                    self.used += 1;
                    rs.iter().take(n.max(1)).cloned().collect()
                }
                None => Vec::new(),
            })
            .collect())
    }
}

/// Checks that `path` looks like a loadable model before any work starts, naming the file that
/// is wrong: a `.gguf` file, or a Hugging Face folder with a valid `config.json`, a
/// `tokenizer.json` and safetensors weights (a single file or an index whose shards exist).
pub fn check_model_path(path: &Path) -> Result<()> {
    if !path.exists() {
        bail!("model {} does not exist", path.display());
    }
    if path.is_file() {
        if path.extension().and_then(|e| e.to_str()) == Some("gguf") {
            return Ok(());
        }
        bail!(
            "model {} is a file but not a .gguf file; give a Hugging Face model folder or a .gguf file",
            path.display()
        );
    }
    let adapter = path.join("adapter_config.json");
    if !path.join("config.json").is_file() && adapter.is_file() {
        // A PEFT LoRA folder: the model crate loads its base_model_name_or_path under it.
        let text = std::fs::read_to_string(&adapter)
            .with_context(|| format!("cannot read {}", adapter.display()))?;
        let v: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not valid JSON", adapter.display()))?;
        if v.get("base_model_name_or_path")
            .and_then(Value::as_str)
            .is_none()
        {
            bail!(
                "{} names no base_model_name_or_path: merge it first (mixed-r1 lora merge --base ...)",
                adapter.display()
            );
        }
        return Ok(());
    }
    let config = path.join("config.json");
    let text = std::fs::read_to_string(&config)
        .with_context(|| format!("cannot read {}", config.display()))?;
    serde_json::from_str::<Value>(&text)
        .with_context(|| format!("{} is not valid JSON", config.display()))?;
    let tokenizer = path.join("tokenizer.json");
    if !tokenizer.is_file() {
        bail!("model folder lacks {}", tokenizer.display());
    }
    let index = path.join("model.safetensors.index.json");
    if index.is_file() {
        let text = std::fs::read_to_string(&index)
            .with_context(|| format!("cannot read {}", index.display()))?;
        let v: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not valid JSON", index.display()))?;
        let map = v
            .get("weight_map")
            .and_then(Value::as_object)
            .with_context(|| format!("{} has no `weight_map`", index.display()))?;
        let mut shards: Vec<&str> = map.values().filter_map(Value::as_str).collect();
        shards.sort_unstable();
        shards.dedup();
        for s in shards {
            let p = path.join(s);
            if !p.is_file() {
                bail!(
                    "{} names the shard {}, which is missing",
                    index.display(),
                    p.display()
                );
            }
        }
        return Ok(());
    }
    let any_weights = std::fs::read_dir(path)
        .with_context(|| format!("cannot read model folder {}", path.display()))?
        .filter_map(|e| e.ok())
        .any(|e| e.path().extension().and_then(|x| x.to_str()) == Some("safetensors"));
    if !any_weights {
        bail!(
            "model folder {} holds no *.safetensors weights (expected model.safetensors or \
             model.safetensors.index.json)",
            path.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompt(id: &str) -> EvalPrompt {
        EvalPrompt {
            id: id.into(),
            system: None,
            text: String::new(),
            images: vec![],
            seed: 0,
        }
    }

    #[test]
    fn reads_single_and_multiple_responses() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.jsonl");
        std::fs::write(
            &p,
            "{\"id\": \"a\", \"response\": \"x\", \"tokens\": 3, \"truncated\": true}\n\
             {\"id\": 7, \"responses\": [\"p\", \"q\", \"r\"], \"tokens\": [1, 2, 3]}\n\
             \n\
             {not json\n\
             {\"id\": \"b\"}\n\
             {\"id\": \"c\", \"responses\": [\"p\"], \"tokens\": [1, 2]}\n",
        )
        .unwrap();
        let mut g = GivenResponses::load(&p).unwrap();
        assert_eq!(g.len(), 2);
        let lines: Vec<usize> = g.bad_lines().iter().map(|b| b.line).collect();
        assert_eq!(lines, vec![4, 5, 6]);
        assert!(g.bad_lines()[1].reason.contains("missing `response`"));
        let out = g
            .respond(&[prompt("a"), prompt("7"), prompt("zz")], 2)
            .unwrap();
        assert_eq!(
            out[0],
            vec![Response {
                text: "x".into(),
                tokens: Some(3),
                truncated: true
            }]
        );
        assert_eq!(out[1].len(), 2);
        assert_eq!(out[1][1].tokens, Some(2));
        assert!(out[2].is_empty());
        assert_eq!(g.used(), 2);
        assert!(g.fingerprint().starts_with("given:"));
    }

    #[test]
    fn model_check_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let e = check_model_path(&d.join("nope")).unwrap_err().to_string();
        assert!(e.contains("nope"), "{e}");
        let e = format!("{:#}", check_model_path(d).unwrap_err());
        assert!(e.contains("config.json"), "{e}");
        std::fs::write(d.join("config.json"), "{broken").unwrap();
        let e = format!("{:#}", check_model_path(d).unwrap_err());
        assert!(
            e.contains("config.json") && e.contains("not valid JSON"),
            "{e}"
        );
        std::fs::write(d.join("config.json"), "{}").unwrap();
        let e = format!("{:#}", check_model_path(d).unwrap_err());
        assert!(e.contains("tokenizer.json"), "{e}");
        std::fs::write(d.join("tokenizer.json"), "{}").unwrap();
        let e = format!("{:#}", check_model_path(d).unwrap_err());
        assert!(e.contains("safetensors"), "{e}");
        std::fs::write(
            d.join("model.safetensors.index.json"),
            r#"{"weight_map": {"a": "model-1.safetensors"}}"#,
        )
        .unwrap();
        let e = format!("{:#}", check_model_path(d).unwrap_err());
        assert!(e.contains("model-1.safetensors"), "{e}");
        std::fs::write(d.join("model-1.safetensors"), "").unwrap();
        check_model_path(d).unwrap();
    }
}
