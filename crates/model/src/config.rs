//! Model configuration read from a Hugging Face `config.json`.
//!
//! transformers has written the same model in more than one layout over time (Qwen2.5-VL's text
//! fields at the top level or under `text_config`; `rope_theta` at the top level or inside
//! `rope_parameters`), so every field is looked up in the nested section first, then at the top.

use std::path::Path;

use serde_json::{json, Map, Value};

use crate::error::{ModelError, Result};

/// The architectures this crate runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// `Qwen2ForCausalLM` (Qwen2 and Qwen2.5 text models).
    Qwen2,
    /// `LlamaForCausalLM` (Llama 2/3 shapes, SmolLM2).
    Llama,
    /// `Qwen2_5_VLForConditionalGeneration`.
    Qwen25Vl,
    /// `InternVLForConditionalGeneration` (InternVL3 / InternVL2.5 in the Hugging Face layout,
    /// with a Qwen2 language model); the vision settings are read by [`crate::internvl`].
    InternVl,
    /// `Qwen3VLForConditionalGeneration` (dense Qwen3-VL); the vision settings are read by
    /// [`crate::qwen3_vl`].
    Qwen3Vl,
}

impl Arch {
    pub fn hf_name(self) -> &'static str {
        match self {
            Arch::Qwen2 => "Qwen2ForCausalLM",
            Arch::Llama => "LlamaForCausalLM",
            Arch::Qwen25Vl => "Qwen2_5_VLForConditionalGeneration",
            Arch::InternVl => "InternVLForConditionalGeneration",
            Arch::Qwen3Vl => "Qwen3VLForConditionalGeneration",
        }
    }
    pub fn model_type(self) -> &'static str {
        match self {
            Arch::Qwen2 => "qwen2",
            Arch::Llama => "llama",
            Arch::Qwen25Vl => "qwen2_5_vl",
            Arch::InternVl => "internvl",
            Arch::Qwen3Vl => "qwen3_vl",
        }
    }
}

/// The decoder: shared by all three architectures.
#[derive(Debug, Clone, PartialEq)]
pub struct TextConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub max_position_embeddings: usize,
    pub tie_word_embeddings: bool,
    /// q/k/v projections carry a bias (always for Qwen2; `attention_bias` for Llama).
    pub qkv_bias: bool,
    /// Multimodal rotary sections (temporal, height, width) in units of half the head dim.
    pub mrope_section: Option<Vec<usize>>,
    /// Qwen3-VL's interleaved M-RoPE: frequency `j` follows the height row when `j % 3 == 1`,
    /// the width row when `j % 3 == 2` (each while `j < 3 * section`), else the temporal row;
    /// Qwen2.5-VL gives each axis one contiguous block instead.
    pub mrope_interleaved: bool,
    /// Qwen3's per-head RMSNorm on queries and keys before the rotary (`q_norm` / `k_norm`).
    pub qk_norm: bool,
    pub bos_token_id: Option<u32>,
    pub eos_token_ids: Vec<u32>,
}

/// The Qwen2.5-VL vision tower.
#[derive(Debug, Clone, PartialEq)]
pub struct VisionConfig {
    pub depth: usize,
    pub hidden_size: usize,
    pub num_heads: usize,
    pub intermediate_size: usize,
    pub out_hidden_size: usize,
    pub patch_size: usize,
    pub spatial_merge_size: usize,
    pub temporal_patch_size: usize,
    pub window_size: usize,
    pub fullatt_block_indexes: Vec<usize>,
    pub in_channels: usize,
    pub rms_norm_eps: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    pub arch: Arch,
    pub text: TextConfig,
    pub vision: Option<VisionConfig>,
    pub image_token_id: Option<u32>,
    pub video_token_id: Option<u32>,
    pub vision_start_token_id: Option<u32>,
    pub vision_end_token_id: Option<u32>,
    /// The JSON this was read from (written back unchanged on save, so no field is lost).
    pub raw: Option<Value>,
}

fn get<'a>(sections: &[&'a Map<String, Value>], key: &str) -> Option<&'a Value> {
    sections
        .iter()
        .find_map(|s| s.get(key).filter(|v| !v.is_null()))
}

fn req_usize(sections: &[&Map<String, Value>], key: &str, path: &Path) -> Result<usize> {
    get(sections, key)
        .and_then(Value::as_u64)
        .map(|v| v as usize)
        .ok_or_else(|| ModelError::format(path, format!("`{key}` missing or not an integer")))
}

fn opt_usize(sections: &[&Map<String, Value>], key: &str) -> Option<usize> {
    get(sections, key)
        .and_then(Value::as_u64)
        .map(|v| v as usize)
}

fn ids(v: Option<&Value>) -> Vec<u32> {
    match v {
        Some(Value::Number(n)) => n.as_u64().map(|x| vec![x as u32]).unwrap_or_default(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_u64())
            .map(|x| x as u32)
            .collect(),
        _ => Vec::new(),
    }
}

impl ModelConfig {
    /// Whether the model takes images (a Qwen2.5-VL vision tower, InternVL's or Qwen3-VL's).
    pub fn takes_images(&self) -> bool {
        self.vision.is_some() || matches!(self.arch, Arch::InternVl | Arch::Qwen3Vl)
    }

    /// Whether positions are multimodal (M-RoPE: temporal, height, width rows).
    pub fn uses_mrope(&self) -> bool {
        matches!(self.arch, Arch::Qwen25Vl | Arch::Qwen3Vl)
    }

    /// How many patches per side one image token merges (Qwen2.5-VL / Qwen3-VL).
    pub fn spatial_merge_size(&self) -> Option<usize> {
        if let Some(v) = &self.vision {
            return Some(v.spatial_merge_size);
        }
        if self.arch == Arch::Qwen3Vl {
            let v = self.raw.as_ref()?.get("vision_config")?;
            return Some(
                v.get("spatial_merge_size")
                    .and_then(Value::as_u64)
                    .unwrap_or(2) as usize,
            );
        }
        None
    }

    pub fn from_file(path: &Path) -> Result<ModelConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
        let value: Value = serde_json::from_str(&text)
            .map_err(|e| ModelError::format(path, format!("not valid JSON: {e}")))?;
        Self::from_json(&value, path)
    }

    /// Parses a config; `path` only names the file in errors.
    pub fn from_json(value: &Value, path: &Path) -> Result<ModelConfig> {
        let top = value
            .as_object()
            .ok_or_else(|| ModelError::format(path, "the config is not a JSON object"))?;
        let arch_name = top
            .get("architectures")
            .and_then(|a| a.get(0))
            .and_then(Value::as_str)
            .or_else(|| top.get("model_type").and_then(Value::as_str))
            .unwrap_or("");
        let arch = match arch_name {
            "Qwen2ForCausalLM" | "qwen2" => Arch::Qwen2,
            "LlamaForCausalLM" | "llama" => Arch::Llama,
            "Qwen2_5_VLForConditionalGeneration" | "qwen2_5_vl" => Arch::Qwen25Vl,
            "InternVLForConditionalGeneration" | "internvl" => Arch::InternVl,
            "Qwen3VLForConditionalGeneration" | "qwen3_vl" => Arch::Qwen3Vl,
            other => {
                return Err(ModelError::format(
                    path,
                    format!(
                        "architecture `{other}` is not supported (Qwen2ForCausalLM, \
                         LlamaForCausalLM, Qwen2_5_VLForConditionalGeneration, \
                         InternVLForConditionalGeneration, Qwen3VLForConditionalGeneration are)"
                    ),
                ))
            }
        };
        let empty = Map::new();
        let text_section = top
            .get("text_config")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        if arch == Arch::InternVl {
            let text_type = text_section
                .get("model_type")
                .and_then(Value::as_str)
                .unwrap_or("qwen2");
            if text_type != "qwen2" {
                return Err(ModelError::format(
                    path,
                    format!(
                        "InternVL with a `{text_type}` language model is not supported (qwen2 is)"
                    ),
                ));
            }
        }
        let sections = [text_section, top];
        let rope_params: Vec<&Map<String, Value>> = ["rope_parameters", "rope_scaling"]
            .iter()
            .filter_map(|k| get(&sections, k).and_then(Value::as_object))
            .collect();
        if let Some(kind) = rope_params
            .iter()
            .find_map(|m| m.get("rope_type").or_else(|| m.get("type")))
            .and_then(Value::as_str)
        {
            if !matches!(kind, "default" | "mrope") {
                return Err(ModelError::format(
                    path,
                    format!("rope type `{kind}` is not supported (default and mrope are)"),
                ));
            }
        }
        let rope_theta = get(&sections, "rope_theta")
            .or_else(|| rope_params.iter().find_map(|m| m.get("rope_theta")))
            .and_then(Value::as_f64)
            // Qwen3VLTextConfig's default_theta; the others default to 10,000.
            .unwrap_or(if arch == Arch::Qwen3Vl {
                500_000.0
            } else {
                10_000.0
            });
        let mrope_section = rope_params
            .iter()
            .find_map(|m| m.get("mrope_section"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_u64)
                    .map(|x| x as usize)
                    .collect::<Vec<_>>()
            });
        let hidden_size = req_usize(&sections, "hidden_size", path)?;
        let num_attention_heads = req_usize(&sections, "num_attention_heads", path)?;
        let head_dim =
            opt_usize(&sections, "head_dim").unwrap_or(hidden_size / num_attention_heads.max(1));
        let qkv_bias = match arch {
            Arch::Qwen2 | Arch::Qwen25Vl | Arch::InternVl => true,
            Arch::Llama | Arch::Qwen3Vl => get(&sections, "attention_bias")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        };
        if arch == Arch::Llama
            && get(&sections, "mlp_bias")
                .and_then(Value::as_bool)
                .unwrap_or(false)
        {
            return Err(ModelError::format(
                path,
                "`mlp_bias: true` is not supported",
            ));
        }
        let text = TextConfig {
            vocab_size: req_usize(&sections, "vocab_size", path)?,
            hidden_size,
            intermediate_size: req_usize(&sections, "intermediate_size", path)?,
            num_hidden_layers: req_usize(&sections, "num_hidden_layers", path)?,
            num_attention_heads,
            num_key_value_heads: opt_usize(&sections, "num_key_value_heads")
                .unwrap_or(num_attention_heads),
            head_dim,
            rms_norm_eps: get(&sections, "rms_norm_eps")
                .and_then(Value::as_f64)
                .unwrap_or(1e-6),
            rope_theta,
            max_position_embeddings: opt_usize(&sections, "max_position_embeddings")
                .unwrap_or(32_768),
            // The top-level flag wins for VL models: it is the one transformers reads to tie.
            tie_word_embeddings: top
                .get("tie_word_embeddings")
                .or_else(|| text_section.get("tie_word_embeddings"))
                .and_then(Value::as_bool)
                // InternVLConfig ties by default, and transformers leaves defaults out on save.
                .unwrap_or(arch == Arch::InternVl),
            qkv_bias,
            mrope_section: match arch {
                Arch::Qwen25Vl => mrope_section,
                // transformers' Qwen3-VL default when the config names none.
                Arch::Qwen3Vl => mrope_section.or(Some(vec![24, 20, 20])),
                _ => None,
            },
            // Qwen3VLTextRotaryEmbedding always interleaves (the config's flag is not read).
            mrope_interleaved: arch == Arch::Qwen3Vl,
            qk_norm: arch == Arch::Qwen3Vl,
            bos_token_id: get(&sections, "bos_token_id")
                .and_then(Value::as_u64)
                .map(|x| x as u32),
            eos_token_ids: ids(get(&sections, "eos_token_id")),
        };
        text.validate(path)?;
        let vision = if arch == Arch::Qwen25Vl {
            let v = top
                .get("vision_config")
                .and_then(Value::as_object)
                .ok_or_else(|| ModelError::format(path, "`vision_config` missing"))?;
            let vs = [v];
            Some(VisionConfig {
                depth: req_usize(&vs, "depth", path)?,
                hidden_size: req_usize(&vs, "hidden_size", path)?,
                num_heads: req_usize(&vs, "num_heads", path)?,
                intermediate_size: req_usize(&vs, "intermediate_size", path)?,
                out_hidden_size: opt_usize(&vs, "out_hidden_size").unwrap_or(hidden_size),
                patch_size: opt_usize(&vs, "patch_size").unwrap_or(14),
                spatial_merge_size: opt_usize(&vs, "spatial_merge_size").unwrap_or(2),
                temporal_patch_size: opt_usize(&vs, "temporal_patch_size").unwrap_or(2),
                window_size: opt_usize(&vs, "window_size").unwrap_or(112),
                fullatt_block_indexes: ids(v.get("fullatt_block_indexes"))
                    .into_iter()
                    .map(|x| x as usize)
                    .collect(),
                in_channels: opt_usize(&vs, "in_chans")
                    .or_else(|| opt_usize(&vs, "in_channels"))
                    .unwrap_or(3),
                rms_norm_eps: 1e-6,
            })
        } else {
            None
        };
        if arch == Arch::InternVl {
            // Checked here so a bad vision section is reported when the config is read.
            crate::internvl_config::InternVlConfig::from_json(value, path)?;
        }
        if arch == Arch::Qwen3Vl {
            crate::qwen3_vl_config::Qwen3VlVisionConfig::from_json(value, path)?;
        }
        let tok = |k: &str| get(&sections, k).and_then(Value::as_u64).map(|x| x as u32);
        Ok(ModelConfig {
            arch,
            text,
            vision,
            image_token_id: tok("image_token_id").or(if arch == Arch::InternVl {
                Some(crate::internvl_config::DEFAULT_IMAGE_TOKEN_ID)
            } else {
                None
            }),
            video_token_id: tok("video_token_id"),
            vision_start_token_id: tok("vision_start_token_id"),
            vision_end_token_id: tok("vision_end_token_id"),
            raw: Some(value.clone()),
        })
    }

    /// The JSON to save next to the weights: the original file when there was one, else a
    /// config in the layout transformers writes.
    pub fn to_json(&self) -> Value {
        if let Some(raw) = &self.raw {
            return raw.clone();
        }
        let t = &self.text;
        let mut text = json!({
            "vocab_size": t.vocab_size,
            "hidden_size": t.hidden_size,
            "intermediate_size": t.intermediate_size,
            "num_hidden_layers": t.num_hidden_layers,
            "num_attention_heads": t.num_attention_heads,
            "num_key_value_heads": t.num_key_value_heads,
            "head_dim": t.head_dim,
            "rms_norm_eps": t.rms_norm_eps,
            "rope_theta": t.rope_theta,
            "max_position_embeddings": t.max_position_embeddings,
            "tie_word_embeddings": t.tie_word_embeddings,
            "hidden_act": "silu",
            "initializer_range": 0.02,
            "use_cache": true,
            "attention_dropout": 0.0,
            "torch_dtype": "float32",
        });
        if let Some(b) = t.bos_token_id {
            text["bos_token_id"] = json!(b);
        }
        if !t.eos_token_ids.is_empty() {
            text["eos_token_id"] = if t.eos_token_ids.len() == 1 {
                json!(t.eos_token_ids[0])
            } else {
                json!(t.eos_token_ids)
            };
        }
        match self.arch {
            Arch::InternVl => {
                // Only reached for a config built in code without its JSON: the vision section
                // lives in `raw` (see `crate::internvl`), so only the text part can be written.
                text["model_type"] = json!("qwen2");
                json!({
                    "architectures": [self.arch.hf_name()],
                    "model_type": "internvl",
                    "text_config": text,
                    "image_token_id": self.image_token_id,
                    "tie_word_embeddings": t.tie_word_embeddings,
                })
            }
            Arch::Qwen3Vl => {
                // Only reached for a config built in code without its JSON (the vision section
                // lives in `raw`, see `crate::qwen3_vl`): the text part is what can be written.
                let mrope = t.mrope_section.clone().unwrap_or_default();
                text["model_type"] = json!("qwen3_vl_text");
                text["attention_bias"] = json!(t.qkv_bias);
                text["rope_parameters"] = json!({
                    "rope_type": "default",
                    "rope_theta": t.rope_theta,
                    "mrope_section": mrope,
                    "mrope_interleaved": true,
                });
                json!({
                    "architectures": [self.arch.hf_name()],
                    "model_type": "qwen3_vl",
                    "text_config": text,
                    "image_token_id": self.image_token_id,
                    "video_token_id": self.video_token_id,
                    "vision_start_token_id": self.vision_start_token_id,
                    "vision_end_token_id": self.vision_end_token_id,
                    "tie_word_embeddings": t.tie_word_embeddings,
                })
            }
            Arch::Qwen2 | Arch::Llama => {
                text["architectures"] = json!([self.arch.hf_name()]);
                text["model_type"] = json!(self.arch.model_type());
                if self.arch == Arch::Llama {
                    text["attention_bias"] = json!(t.qkv_bias);
                    text["mlp_bias"] = json!(false);
                }
                text
            }
            Arch::Qwen25Vl => {
                let mrope = t.mrope_section.clone().unwrap_or_default();
                text["rope_scaling"] =
                    json!({"type": "mrope", "rope_type": "default", "mrope_section": mrope});
                text["model_type"] = json!("qwen2_5_vl_text");
                let v = self
                    .vision
                    .as_ref()
                    .expect("a VL config has a vision tower");
                let mut out = text.clone();
                out["architectures"] = json!([self.arch.hf_name()]);
                out["model_type"] = json!("qwen2_5_vl");
                out["text_config"] = text;
                out["vision_config"] = json!({
                    "model_type": "qwen2_5_vl",
                    "depth": v.depth,
                    "hidden_size": v.hidden_size,
                    "num_heads": v.num_heads,
                    "intermediate_size": v.intermediate_size,
                    "out_hidden_size": v.out_hidden_size,
                    "patch_size": v.patch_size,
                    "spatial_merge_size": v.spatial_merge_size,
                    "temporal_patch_size": v.temporal_patch_size,
                    "window_size": v.window_size,
                    "fullatt_block_indexes": v.fullatt_block_indexes,
                    "in_chans": v.in_channels,
                    "in_channels": v.in_channels,
                    "hidden_act": "silu",
                    "tokens_per_second": 2,
                    "initializer_range": 0.02,
                });
                for (k, id) in [
                    ("image_token_id", self.image_token_id),
                    ("video_token_id", self.video_token_id),
                    ("vision_start_token_id", self.vision_start_token_id),
                    ("vision_end_token_id", self.vision_end_token_id),
                ] {
                    if let Some(id) = id {
                        out[k] = json!(id);
                    }
                }
                out
            }
        }
    }
}

impl TextConfig {
    fn validate(&self, path: &Path) -> Result<()> {
        let bad = |msg: String| Err(ModelError::format(path, msg));
        if self.num_key_value_heads == 0 || self.num_attention_heads % self.num_key_value_heads != 0
        {
            return bad(format!(
                "num_attention_heads {} is not a multiple of num_key_value_heads {}",
                self.num_attention_heads, self.num_key_value_heads
            ));
        }
        if self.head_dim % 2 != 0 {
            return bad(format!(
                "head_dim {} is odd; rotary needs it even",
                self.head_dim
            ));
        }
        if let Some(s) = &self.mrope_section {
            if s.len() != 3 || s.iter().sum::<usize>() != self.head_dim / 2 {
                return bad(format!(
                    "mrope_section {s:?} must have 3 parts summing to head_dim/2 = {}",
                    self.head_dim / 2
                ));
            }
        }
        Ok(())
    }
}
