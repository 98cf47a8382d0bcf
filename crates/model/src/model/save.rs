//! Saving a [`Model`] as a folder transformers loads: config, weights under their checkpoint
//! names, generation config, tokenizer, chat template and image processor settings.

use std::path::Path;

use candle_core::DType;

use super::{Model, DEFAULT_PREPROCESSOR_JSON, QWEN3_VL_DEFAULT_PREPROCESSOR_JSON};
use crate::config::Arch;
use crate::error::{ModelError, Result};

impl Model {
    /// Saves a folder transformers loads: `config.json`, `model.safetensors` (original
    /// checkpoint names, tied head omitted), `generation_config.json`, and the tokenizer.
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| ModelError::io(dir, e))?;
        let tied = self.config.text.tie_word_embeddings;
        let skip = |n: &str| (tied && n == "lm_head.weight") || crate::lora::is_adapter_tensor(n);
        // In mixed precision the trainable weights are written as their f32 masters (and the
        // frozen ones widened, exactly), so a checkpoint resumes without rounding: the folder is
        // f32 and says so in `torch_dtype`.
        let masters = self
            .masters
            .as_ref()
            .filter(|m| self.params.names().any(|n| !skip(n) && m.get(n).is_some()));
        let written = if masters.is_some() {
            DType::F32
        } else {
            self.params.dtype
        };
        let mut json = self.config.to_json();
        if let Some(name) = torch_dtype_name(written) {
            if let Some(obj) = json.as_object_mut() {
                obj.insert("torch_dtype".into(), name.into());
                if let Some(tc) = obj.get_mut("text_config").and_then(|t| t.as_object_mut()) {
                    if tc.contains_key("torch_dtype") {
                        tc.insert("torch_dtype".into(), name.into());
                    }
                }
            }
        }
        let config = serde_json::to_string_pretty(&json)
            .map_err(|e| ModelError::invalid(format!("config: {e}")))?;
        write(&dir.join("config.json"), config.as_bytes())?;
        // Adapters are saved on their own (`save_adapter`) or merged first (`merge_lora`).
        // InternVL's language model goes back under `language_model.`, as transformers writes.
        let internvl = self.config.arch == Arch::InternVl;
        let qwen3vl = self.config.arch == Arch::Qwen3Vl;
        let rename = |n: &str| -> String {
            // Qwen3-VL checkpoints use transformers 5's nesting (`model.language_model.*`,
            // `model.visual.*`).
            if qwen3vl {
                if let Some(rest) = n.strip_prefix("model.") {
                    return format!("model.language_model.{rest}");
                }
                if let Some(rest) = n.strip_prefix("visual.") {
                    return format!("model.visual.{rest}");
                }
            }
            if internvl && (n.starts_with("model.") || n.starts_with("lm_head.")) {
                if let Some(rest) = n.strip_prefix("lm_head.") {
                    return format!("language_model.lm_head.{rest}");
                }
                return format!("language_model.{n}");
            }
            n.to_string()
        };
        self.params.save_safetensors_as(
            &dir.join("model.safetensors"),
            skip,
            |n| masters.and_then(|m| m.get(n).map(|v| v.as_tensor().clone())),
            masters.map(|_| DType::F32),
            rename,
        )?;
        let mut gen = serde_json::json!({"do_sample": false});
        if let Some(b) = self.config.text.bos_token_id {
            gen["bos_token_id"] = b.into();
        }
        let eos = self.stop_token_ids();
        if !eos.is_empty() {
            gen["eos_token_id"] = eos.into();
        }
        write(
            &dir.join("generation_config.json"),
            serde_json::to_string_pretty(&gen)
                .unwrap_or_default()
                .as_bytes(),
        )?;
        if let Some(t) = &self.tokenizer {
            t.save(&dir.join("tokenizer.json"))?;
        }
        // The chat template goes with the checkpoint (a trained model keeps its prompt format):
        // `chat_template.jinja`, and the special tokens it renders with, where transformers'
        // tokenizer and our loader both read them.
        if let Some(ct) = &self.chat_template {
            write(&dir.join("chat_template.jinja"), ct.source().as_bytes())?;
            if !ct.special_tokens().is_empty() {
                use crate::chat_template::SPECIAL_TOKEN_NAMES;
                let mut map = serde_json::Map::new();
                let mut extra = serde_json::Map::new();
                for (k, v) in ct.special_tokens() {
                    match SPECIAL_TOKEN_NAMES.contains(&k.as_str()) {
                        true => map.insert(k.clone(), v.clone().into()),
                        false => extra.insert(k.clone(), v.clone().into()),
                    };
                }
                if !extra.is_empty() {
                    map.insert("extra_special_tokens".into(), extra.into());
                }
                let text = serde_json::to_string_pretty(&map).unwrap_or_default();
                write(&dir.join("special_tokens_map.json"), text.as_bytes())?;
            }
        }
        if self.config.vision.is_some() || self.qwen3vl.is_some() {
            let text = match (&self.preprocessor_json, self.qwen3vl.is_some()) {
                (Some(t), _) => t.clone(),
                (None, true) => QWEN3_VL_DEFAULT_PREPROCESSOR_JSON.to_string(),
                (None, false) => DEFAULT_PREPROCESSOR_JSON.to_string(),
            };
            write(&dir.join("preprocessor_config.json"), text.as_bytes())?;
        }
        if let Some(p) = &self.internvl_processor {
            let text = match &self.preprocessor_json {
                Some(t) => t.clone(),
                None => crate::internvl_processor::preprocessor_json(p),
            };
            write(&dir.join("preprocessor_config.json"), text.as_bytes())?;
        }
        Ok(())
    }
}

/// transformers' name of a dtype, for `torch_dtype`.
fn torch_dtype_name(dtype: DType) -> Option<&'static str> {
    match dtype {
        DType::F32 => Some("float32"),
        DType::BF16 => Some("bfloat16"),
        DType::F16 => Some("float16"),
        DType::F64 => Some("float64"),
        _ => None,
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|e| ModelError::io(path, e))
}
