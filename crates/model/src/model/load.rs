//! Building a [`Model`]: around loaded weights, from scratch, from a Hugging Face folder
//! (single or sharded safetensors), a GGUF file or a PEFT adapter folder; and replacing its
//! image processor settings after the fact.

use std::path::{Path, PathBuf};

use super::{
    param_specs, qwen3_vl_vision_config, LoadOptions, Model, QWEN3_VL_DEFAULT_PREPROCESSOR_JSON,
};
use crate::config::{Arch, ModelConfig};
use crate::decoder::Decoder;
use crate::error::{ModelError, Result};
use crate::internvl::{InternVlConfig, InternVlVision};
use crate::internvl_processor::InternVlProcessor;
use crate::params::Params;
use crate::processor::ImageProcessor;
use crate::qwen3_vl::Qwen3VlVision;
use crate::tokenizer::Tokenizer;
use crate::vision::VisionTower;

impl Model {
    /// Builds a model around weights that are already loaded.
    pub fn from_params(
        config: ModelConfig,
        params: Params,
        tokenizer: Option<Tokenizer>,
    ) -> Result<Model> {
        let decoder = Decoder::new(&config.text, &params)?;
        let vision = match &config.vision {
            Some(v) => Some(VisionTower::new(v, &params)?),
            None => None,
        };
        let qwen3vl =
            match qwen3_vl_vision_config(&config) {
                Some(c) => Some(Qwen3VlVision::new(&c, &params, None)?),
                None if config.arch == Arch::Qwen3Vl => return Err(ModelError::invalid(
                    "a Qwen3-VL config needs its JSON (vision_config) to build the vision tower",
                )),
                None => None,
            };
        let processor = if qwen3vl.is_some() {
            Some(ImageProcessor::from_json(
                &serde_json::from_str(QWEN3_VL_DEFAULT_PREPROCESSOR_JSON)
                    .map_err(|e| ModelError::invalid(format!("preprocessor config: {e}")))?,
                Path::new("preprocessor_config.json"),
            )?)
        } else {
            config.vision.as_ref().map(|_| ImageProcessor::default())
        };
        let (internvl, internvl_processor) = if config.arch == Arch::InternVl {
            let c = InternVlConfig::from_model_config(&config)?;
            let tower = InternVlVision::new(&c, &params)?;
            let mut p = InternVlProcessor::new(c.image_seq_length);
            // The tile the vision config was trained for, until a preprocessor config says.
            p.tile = c.vision.image_size;
            (Some(tower), Some(p))
        } else {
            (None, None)
        };
        Ok(Model {
            config,
            params,
            decoder,
            vision,
            internvl,
            qwen3vl,
            internvl_processor,
            tokenizer,
            processor,
            chat_template: None,
            preprocessor_json: None,
            source: None,
            lora: None,
            masters: None,
        })
    }

    /// A model from scratch: normal(0, 0.02) matrices, unit norms, zero biases, seeded.
    pub fn random(config: ModelConfig, seed: u64, opts: &LoadOptions) -> Result<Model> {
        let params = Params::random(&param_specs(&config), seed, opts.dtype, &opts.device)?;
        Model::from_params(config, params, None)
    }

    /// Loads a Hugging Face model folder, or a `.gguf` file.
    pub fn load(path: &Path, opts: &LoadOptions) -> Result<Model> {
        if path.is_file() && path.extension().is_some_and(|e| e == "gguf") {
            let g = crate::gguf::load(path, opts.dtype, &opts.device)?;
            let mut m = Model::from_params(g.config, g.params, Some(g.tokenizer))?;
            if let Some(t) = &g.chat_template {
                let origin = PathBuf::from(format!("{}:tokenizer.chat_template", path.display()));
                m.chat_template = Some(
                    crate::chat_template::ChatTemplate::new(t, origin)?
                        .with_special_tokens(g.special_tokens.clone()),
                );
            }
            m.source = Some(path.to_path_buf());
            return Ok(m);
        }
        if !path.is_dir() {
            return Err(ModelError::format(
                path,
                "not a model folder (config.json + safetensors) or a .gguf file",
            ));
        }
        if !path.join("config.json").is_file() && path.join(crate::lora::ADAPTER_CONFIG).is_file() {
            return Model::load_with_adapter(path, opts);
        }
        let config = ModelConfig::from_file(&path.join("config.json"))?;
        let files = safetensors_files(path)?;
        let mut params = Params::new(opts.dtype, opts.device.clone());
        let vision = config.vision.is_some() || config.arch == Arch::Qwen3Vl;
        params.load_safetensors(&files, |n| vision || !n.starts_with("visual."))?;
        let tok_path = path.join("tokenizer.json");
        let tokenizer = if tok_path.is_file() {
            Some(Tokenizer::from_file(&tok_path)?)
        } else {
            None
        };
        let mut m = Model::from_params(config, params, tokenizer)?;
        m.chat_template = crate::chat_template::ChatTemplate::from_folder(path)?;
        let pp = path.join("preprocessor_config.json");
        if (m.vision.is_some() || m.qwen3vl.is_some()) && pp.is_file() {
            m.processor = Some(ImageProcessor::from_file(&pp)?);
            m.preprocessor_json = std::fs::read_to_string(&pp).ok();
        }
        if let (Some(p), true) = (&m.internvl_processor, pp.is_file()) {
            m.internvl_processor = Some(InternVlProcessor::from_file(&pp, p.tokens_per_tile)?);
            m.preprocessor_json = std::fs::read_to_string(&pp).ok();
        }
        m.source = Some(path.to_path_buf());
        Ok(m)
    }

    /// A PEFT adapter folder: the base model its `base_model_name_or_path` names (as given, or
    /// relative to the adapter folder), with the adapters on top.
    pub fn load_with_adapter(dir: &Path, opts: &LoadOptions) -> Result<Model> {
        let cfg_path = dir.join(crate::lora::ADAPTER_CONFIG);
        let text = std::fs::read_to_string(&cfg_path).map_err(|e| ModelError::io(&cfg_path, e))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| ModelError::format(&cfg_path, format!("not valid JSON: {e}")))?;
        let base = v
            .get("base_model_name_or_path")
            .and_then(|b| b.as_str())
            .ok_or_else(|| {
                ModelError::format(
                    &cfg_path,
                    "no base_model_name_or_path: load the base model and call load_adapter",
                )
            })?;
        let given = PathBuf::from(base);
        let base_path = if given.exists() {
            given
        } else if dir.join(&given).exists() {
            dir.join(&given)
        } else {
            return Err(ModelError::format(
                &cfg_path,
                format!("base_model_name_or_path `{base}` is not a folder or file here (models are not downloaded)"),
            ));
        };
        let mut m = Model::load(&base_path, opts)?;
        m.load_adapter(dir)?;
        m.source = Some(dir.to_path_buf());
        Ok(m)
    }

    /// Replaces the image processor settings (written back on save).
    pub fn set_preprocessor_json(&mut self, json: &str) -> Result<()> {
        let v: serde_json::Value = serde_json::from_str(json)
            .map_err(|e| ModelError::invalid(format!("preprocessor config: {e}")))?;
        if let Some(p) = &self.internvl_processor {
            self.internvl_processor = Some(InternVlProcessor::from_json(
                &v,
                Path::new("preprocessor_config.json"),
                p.tokens_per_tile,
            )?);
        } else {
            self.processor = Some(ImageProcessor::from_json(
                &v,
                Path::new("preprocessor_config.json"),
            )?);
        }
        self.preprocessor_json = Some(json.to_string());
        Ok(())
    }
}

/// The safetensors files of a folder: the shards an index names, or `model.safetensors`.
fn safetensors_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let index = dir.join("model.safetensors.index.json");
    if index.is_file() {
        let text = std::fs::read_to_string(&index).map_err(|e| ModelError::io(&index, e))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| ModelError::format(&index, format!("not valid JSON: {e}")))?;
        let map = v
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| ModelError::format(&index, "no `weight_map` object"))?;
        let mut files: Vec<String> = map
            .values()
            .filter_map(|f| f.as_str().map(str::to_string))
            .collect();
        files.sort();
        files.dedup();
        let files: Vec<PathBuf> = files.into_iter().map(|f| dir.join(f)).collect();
        if let Some(missing) = files.iter().find(|f| !f.is_file()) {
            return Err(ModelError::format(
                &index,
                format!("names shard {} which does not exist", missing.display()),
            ));
        }
        return Ok(files);
    }
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    Err(ModelError::format(
        dir,
        "no model.safetensors or model.safetensors.index.json in this folder",
    ))
}
