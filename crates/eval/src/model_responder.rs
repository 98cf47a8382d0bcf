//! The model-backed [`Responder`]: batched generation with `mixed-r1-model`.
//!
//! Each prompt goes through the model's chat template (the system message of the prompt
//! template, then the user text with its `<image>` markers replaced by the images), is
//! tokenised, and generated in one left-padded batch. Every response row samples from its own
//! seed (the prompt's seed and the response index), so results never depend on batching and an
//! interrupted run resumes exactly.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use anyhow::{Context, Result};
pub use mixed_r1_model::box_frame::{follow_model_frame, model_box_frame};
use mixed_r1_model::generate::{generate, Prompt, SamplingConfig};
use mixed_r1_model::model::{LoadOptions, Model};
use mixed_r1_reward::iou::Frame;
use mixed_r1_reward::RewardConfig;

use crate::config::GenerationSettings;
use crate::responder::{EvalPrompt, Responder, Response};
use crate::seed::response_seed;

pub struct ModelResponder {
    model: Model,
    generation: GenerationSettings,
    path: PathBuf,
}

impl ModelResponder {
    /// Loads a model folder or GGUF file.
    pub fn load(path: &Path, opts: &LoadOptions, generation: GenerationSettings) -> Result<Self> {
        let model = Model::load(path, opts)
            .with_context(|| format!("cannot load the model {}", path.display()))?;
        anyhow::ensure!(
            model.tokenizer.is_some(),
            "{}: the model has no tokenizer.json",
            path.display()
        );
        Ok(ModelResponder {
            model,
            generation,
            path: path.to_path_buf(),
        })
    }

    /// Wraps a model already in memory (the trainer's policy).
    pub fn new(model: Model, generation: GenerationSettings, name: &str) -> Self {
        ModelResponder {
            model,
            generation,
            path: PathBuf::from(name),
        }
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    pub fn into_model(self) -> Model {
        self.model
    }

    fn prompt(&self, p: &EvalPrompt) -> Result<Prompt> {
        let images = if self.model.config.takes_images() {
            p.images
                .iter()
                .map(|f| {
                    image::open(f).with_context(|| format!("cannot decode image {}", f.display()))
                })
                .collect::<Result<Vec<_>>>()?
        } else {
            Vec::new()
        };
        let text = if images.is_empty() {
            p.text.replace("<image>", "")
        } else {
            p.text.clone()
        };
        self.model
            .user_prompt(p.system.as_deref(), &text, &images)
            .with_context(|| format!("sample {}: building the prompt", p.id))
    }
}

impl Responder for ModelResponder {
    fn name(&self) -> String {
        format!("model:{}", self.path.display())
    }

    fn fingerprint(&self) -> String {
        // The path plus the size and modification time of every file in it identify the
        // weights without hashing gigabytes.
        let mut parts = vec![self.path.display().to_string()];
        let files: Vec<PathBuf> = if self.path.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(&self.path)
                .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
                .unwrap_or_default();
            v.sort();
            v
        } else {
            vec![self.path.clone()]
        };
        for f in files {
            if let Ok(m) = f.metadata() {
                let t = m
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                parts.push(format!("{}:{}:{t}", f.display(), m.len()));
            }
        }
        parts.join("|")
    }

    fn box_frame(&self) -> Option<Frame> {
        model_box_frame(self.model.config.arch)
    }

    fn follow_frame(&self, reward: &mut RewardConfig) {
        follow_model_frame(reward, &self.model);
    }

    fn respond(&mut self, batch: &[EvalPrompt], n: usize) -> Result<Vec<Vec<Response>>> {
        let mut prompts = Vec::with_capacity(batch.len() * n);
        for p in batch {
            let base = self.prompt(p)?;
            for k in 0..n {
                prompts.push(Prompt {
                    seed: Some(response_seed(p.seed, k)),
                    ..base.clone()
                });
            }
        }
        let g = &self.generation;
        let cfg = SamplingConfig {
            max_new_tokens: g.max_new_tokens,
            temperature: g.temperature_for(n) as f32,
            top_p: g.top_p as f32,
            top_k: g.top_k,
            seed: 0,
            stop_token_ids: Vec::new(),
            ignore_eos: false,
            banned_token_ids: self.model.vision_token_ids(),
        };
        let gens = generate(&self.model, &prompts, &cfg)?;
        Ok(gens
            .chunks(n.max(1))
            .map(|c| {
                c.iter()
                    .map(|g| Response {
                        text: g.text.clone(),
                        tokens: Some(g.tokens.len()),
                        truncated: !g.stopped,
                    })
                    .collect()
            })
            .collect())
    }
}
