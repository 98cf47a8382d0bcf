//! `eval.toml`: what an eval run is (responses per prompt, seed, generation settings, prompt
//! template, reward config). Every key has a default; unknown keys are errors.
//!
//! ```toml
//! n = 1                      # responses per prompt; > 1 samples them and reports pass@k
//! seed = 0
//! batch_size = 8
//! open_ended_threshold = 0.5 # BMAS an open-ended response needs to count as solved (pass@k)
//! [generation]
//! max_new_tokens = 1024
//! temperature = 0.0          # default: 0 (greedy) for n = 1, 1.0 for n > 1
//! top_p = 1.0
//! top_k = 0                  # 0 = off
//! [prompt]                   # the trainer's template (crate::prompt); default follows [reward.format]
//! instruction = "..."
//! [reward]                   # reward.toml's keys
//! format_weight = 0.5
//! ```

use std::path::Path;

use anyhow::{bail, Context, Result};
use mixed_r1_reward::RewardConfig;
use serde::{Deserialize, Serialize};

use crate::prompt::PromptTemplate;

/// Decoding settings handed to the model-backed responder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GenerationSettings {
    pub max_new_tokens: usize,
    /// `None`: 0 (greedy) for one response a prompt, 1.0 when sampling several.
    pub temperature: Option<f64>,
    pub top_p: f64,
    /// 0 = no top-k cut.
    pub top_k: usize,
}

impl Default for GenerationSettings {
    fn default() -> Self {
        GenerationSettings {
            max_new_tokens: 1024,
            temperature: None,
            top_p: 1.0,
            top_k: 0,
        }
    }
}

impl GenerationSettings {
    /// The temperature used for `n` responses a prompt.
    pub fn temperature_for(&self, n: usize) -> f64 {
        self.temperature.unwrap_or(if n > 1 { 1.0 } else { 0.0 })
    }

    /// Greedy decoding (temperature 0).
    pub fn greedy(&self, n: usize) -> bool {
        self.temperature_for(n) == 0.0
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvalConfig {
    /// Responses per prompt.
    pub n: usize,
    pub seed: u64,
    /// Prompts per `respond` call.
    pub batch_size: usize,
    /// BMAS an open-ended response needs to count as solved for pass@k.
    pub open_ended_threshold: f64,
    pub generation: GenerationSettings,
    /// `None`: [`PromptTemplate::for_format`] of the reward's format mode.
    pub prompt: Option<PromptTemplate>,
    pub reward: RewardConfig,
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig {
            n: 1,
            seed: 0,
            batch_size: 8,
            open_ended_threshold: 0.5,
            generation: GenerationSettings::default(),
            prompt: None,
            reward: RewardConfig::default(),
        }
    }
}

impl EvalConfig {
    pub fn from_toml_str(text: &str) -> Result<EvalConfig> {
        let cfg: EvalConfig = toml::from_str(text).context("invalid eval config")?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads `eval.toml`; relative BMAS paths in `[reward.bmas]` are taken relative to the
    /// file's folder (as `reward.toml` does).
    pub fn from_file(path: &Path) -> Result<EvalConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read eval config {}", path.display()))?;
        let mut cfg: EvalConfig =
            toml::from_str(&text).with_context(|| format!("eval config {}", path.display()))?;
        if let Some(dir) = path.parent() {
            let b = &mut cfg.reward.bmas;
            for p in [&mut b.tokenizer, &mut b.embeddings, &mut b.model]
                .into_iter()
                .flatten()
            {
                if p.is_relative() {
                    *p = dir.join(&*p);
                }
            }
        }
        cfg.validate()
            .with_context(|| format!("eval config {}", path.display()))?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<()> {
        if self.n == 0 {
            bail!("n must be at least 1");
        }
        if self.batch_size == 0 {
            bail!("batch_size must be at least 1");
        }
        if !(0.0..=1.0).contains(&self.open_ended_threshold) {
            bail!(
                "open_ended_threshold must be in [0, 1], got {}",
                self.open_ended_threshold
            );
        }
        let g = &self.generation;
        if g.max_new_tokens == 0 {
            bail!("generation.max_new_tokens must be at least 1");
        }
        if let Some(t) = g.temperature {
            if !(t.is_finite() && t >= 0.0) {
                bail!("generation.temperature must be >= 0, got {t}");
            }
            if t == 0.0 && self.n > 1 {
                bail!(
                    "n = {} responses a prompt with temperature 0 would repeat one greedy answer; \
                     set a temperature > 0 (or leave it unset for 1.0)",
                    self.n
                );
            }
        }
        if !(g.top_p > 0.0 && g.top_p <= 1.0) {
            bail!("generation.top_p must be in (0, 1], got {}", g.top_p);
        }
        if let Some(p) = &self.prompt {
            p.check().map_err(|e| anyhow::anyhow!("prompt: {e}"))?;
        }
        self.reward.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(())
    }

    /// The prompt template in effect.
    pub fn prompt_template(&self) -> PromptTemplate {
        self.prompt
            .clone()
            .unwrap_or_else(|| PromptTemplate::for_format(self.reward.format.mode))
    }

    /// The config with every default made explicit (prompt template, temperature): what the
    /// run records and fingerprints.
    pub fn resolved(&self) -> EvalConfig {
        let mut c = self.clone();
        c.prompt = Some(self.prompt_template());
        c.generation.temperature = Some(self.generation.temperature_for(self.n));
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mixed_r1_reward::format::FormatMode;

    #[test]
    fn defaults_and_validation() {
        let c = EvalConfig::from_toml_str("n = 4\n[reward.format]\nmode = \"boxed\"\n").unwrap();
        let r = c.resolved();
        assert_eq!(r.generation.temperature, Some(1.0));
        assert_eq!(
            r.prompt.unwrap(),
            PromptTemplate::for_format(FormatMode::Boxed)
        );
        assert!(EvalConfig::default().generation.greedy(1));
        for bad in [
            "n = 0",
            "batch_size = 0",
            "n = 2\n[generation]\ntemperature = 0.0",
            "[generation]\ntop_p = 0.0",
            "[reward]\nformt_weight = 1",
            "nn = 1",
            "open_ended_threshold = 2.0",
            "[prompt]\ntemplate = \"x\"",
        ] {
            assert!(EvalConfig::from_toml_str(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bmas_paths_are_relative_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("eval.toml");
        std::fs::write(&p, "[reward.bmas]\nmodel = \"emb\"\n").unwrap();
        let c = EvalConfig::from_file(&p).unwrap();
        assert_eq!(c.reward.bmas.model.unwrap(), dir.path().join("emb"));
    }
}
