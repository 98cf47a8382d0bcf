//! A dataset sample → the policy's prompt: the eval crate's [`PromptTemplate`] (so training and
//! evaluation ask the same question), the model's chat template, the sample's images through
//! the image processor. Prompts are built once per sample and cached.

use std::collections::HashMap;

use anyhow::{Context, Result};
use mixed_r1_data::prompt::PromptTemplate;
use mixed_r1_data::Sample;
use mixed_r1_model::generate::Prompt;
use mixed_r1_model::model::Model;
use mixed_r1_reward::RewardConfig;

/// Reads a sample's images (paths as the data engine resolved them).
pub fn load_images(sample: &Sample) -> Result<Vec<image::DynamicImage>> {
    sample
        .images
        .iter()
        .map(|p| {
            image::open(p).with_context(|| format!("sample {}: cannot read image {p}", sample.id))
        })
        .collect()
}

/// Builds (and caches) prompts for samples.
pub struct PromptMaker {
    pub template: PromptTemplate,
    pub reward: RewardConfig,
    cache: HashMap<String, Prompt>,
}

impl PromptMaker {
    pub fn new(template: PromptTemplate, reward: RewardConfig) -> PromptMaker {
        PromptMaker {
            template,
            reward,
            cache: HashMap::new(),
        }
    }

    /// The user message text for a sample (before the chat template).
    pub fn text(&self, sample: &Sample) -> String {
        self.template.render_for(sample, &self.reward)
    }

    /// The tokenised prompt for a sample; images are skipped for text-only models.
    pub fn prompt(&mut self, model: &Model, sample: &Sample) -> Result<Prompt> {
        if let Some(p) = self.cache.get(&sample.id) {
            return Ok(p.clone());
        }
        let text = self.text(sample);
        let images = if model.config.takes_images() {
            load_images(sample)?
        } else {
            Vec::new()
        };
        let text = if images.is_empty() {
            text.replace("<image>", "")
        } else {
            text
        };
        let prompt = model
            .user_prompt(self.template.system.as_deref(), &text, &images)
            .with_context(|| format!("sample {}: building the prompt", sample.id))?;
        self.cache.insert(sample.id.clone(), prompt.clone());
        Ok(prompt)
    }
}
