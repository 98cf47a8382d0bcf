//! A loaded model: config, named weights, the decoder (and vision tower), the tokenizer.
//!
//! Loads a Hugging Face folder (single or sharded safetensors) or a GGUF file, builds a model
//! from scratch from a config (seeded, std 0.02), runs the forward pass with or without
//! gradients, freezes parts, makes a frozen reference copy, and saves back to a folder that
//! transformers loads.
//!
//! This file holds the [`Model`] struct, [`LoadOptions`] and [`param_specs`]; the methods live
//! by what they do, each child adding an `impl Model` block:
//!
//! - `inputs.rs`: what a forward pass takes ([`ImageInputs`], [`Prompt`], [`Batch`],
//!   [`ids_tensor`]).
//! - `load.rs`: building a model from weights, from scratch, from a folder, GGUF or adapter.
//! - `train_state.rs`: what trains and how: f32 masters, gradient checkpointing, freezing, the
//!   frozen reference copy, the LoRA switches.
//! - `prompting.rs`: chat prompts and the special token ids (stop, vision, pad).
//! - `forward.rs`: positions, embeddings with image features, hidden states, logits.
//! - `save.rs`: writing a folder transformers loads.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};

use crate::config::{Arch, ModelConfig};
use crate::decoder::Decoder;
use crate::error::{ModelError, Result};
use crate::internvl::{InternVlConfig, InternVlVision};
use crate::internvl_processor::InternVlProcessor;
use crate::lora::LoraRuntime;
use crate::mixed::MasterWeights;
use crate::params::Params;
use crate::processor::ImageProcessor;
use crate::qwen3_vl::{Qwen3VlVision, Qwen3VlVisionConfig};
use crate::tokenizer::Tokenizer;
use crate::vision::VisionTower;

mod forward;
mod inputs;
mod load;
mod prompting;
mod save;
mod train_state;

pub use inputs::{ids_tensor, Batch, ImageInputs, Prompt};

/// Where and in what precision the weights live.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub dtype: DType,
    pub device: Device,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            dtype: DType::F32,
            device: Device::Cpu,
        }
    }
}

impl LoadOptions {
    /// `cpu` / `cuda` / `cuda:<n>` by name (see [`crate::device::parse_device`]).
    pub fn with_device_name(mut self, name: &str) -> Result<Self> {
        self.device = crate::device::parse_device(name)?;
        Ok(self)
    }

    /// `f32` / `bf16` / `f16` by name, as the CLI flags spell them.
    pub fn with_dtype_name(mut self, name: &str) -> Result<Self> {
        self.dtype = match name {
            "f32" | "float32" => DType::F32,
            "bf16" | "bfloat16" => DType::BF16,
            "f16" | "float16" => DType::F16,
            other => {
                return Err(ModelError::invalid(format!(
                    "dtype `{other}` is not one of f32, bf16, f16"
                )))
            }
        };
        Ok(self)
    }
}

pub struct Model {
    pub config: ModelConfig,
    params: Params,
    decoder: Decoder,
    vision: Option<VisionTower>,
    /// InternVL's vision tower and projector (see [`crate::internvl`]).
    internvl: Option<InternVlVision>,
    /// Qwen3-VL's vision tower and DeepStack mergers (see [`crate::qwen3_vl`]).
    qwen3vl: Option<Qwen3VlVision>,
    /// InternVL's tiling image processor (`processor` is Qwen2.5-VL's and Qwen3-VL's).
    pub internvl_processor: Option<InternVlProcessor>,
    pub tokenizer: Option<Tokenizer>,
    pub processor: Option<ImageProcessor>,
    /// The model's own chat template (folder or GGUF); `None` renders the hand-written
    /// layouts of [`crate::chat`] / [`crate::internvl_processor`] instead.
    pub chat_template: Option<crate::chat_template::ChatTemplate>,
    /// `preprocessor_config.json` as read, written back on save.
    preprocessor_json: Option<String>,
    /// Where the model was loaded from, for messages.
    pub source: Option<PathBuf>,
    /// The LoRA adapters, when the model has them (see [`crate::lora`]).
    lora: Option<LoraRuntime>,
    /// f32 masters of the trainable weights of a half-precision model being trained (see
    /// [`crate::mixed`]); `None` in full precision.
    masters: Option<MasterWeights>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("arch", &self.config.arch)
            .field("params", &self.params)
            .field("source", &self.source)
            .finish()
    }
}

/// Every weight of an architecture with its shape and initialiser.
pub fn param_specs(config: &ModelConfig) -> Vec<(String, Vec<usize>, crate::params::Init)> {
    let mut specs = Decoder::param_specs(&config.text);
    if let Some(v) = &config.vision {
        specs.extend(VisionTower::param_specs(v));
    }
    if config.arch == Arch::InternVl {
        // A config without its JSON has no vision section; building the tower reports it.
        if let Ok(c) = InternVlConfig::from_model_config(config) {
            specs.extend(InternVlVision::param_specs(&c));
        }
    }
    if let Some(c) = qwen3_vl_vision_config(config) {
        specs.extend(Qwen3VlVision::param_specs(&c));
    }
    specs
}

/// Qwen3-VL's vision settings, read from the config's JSON.
fn qwen3_vl_vision_config(config: &ModelConfig) -> Option<Qwen3VlVisionConfig> {
    if config.arch != Arch::Qwen3Vl {
        return None;
    }
    Qwen3VlVisionConfig::from_json(config.raw.as_ref()?, Path::new("config.json")).ok()
}

impl Model {
    pub fn params(&self) -> &Params {
        &self.params
    }

    pub fn dtype(&self) -> DType {
        self.params.dtype
    }

    pub fn device(&self) -> &Device {
        &self.params.device
    }
}

// The defaults below sit here because both `load.rs` (a model built from scratch) and
// `save.rs` (a folder saved without a preprocessor config) need them.

/// The Qwen2.5-VL image processor settings, for models built from scratch.
const DEFAULT_PREPROCESSOR_JSON: &str = r#"{
  "image_processor_type": "Qwen2VLImageProcessor",
  "processor_class": "Qwen2_5_VLProcessor",
  "do_resize": true,
  "do_rescale": true,
  "rescale_factor": 0.00392156862745098,
  "do_normalize": true,
  "do_convert_rgb": true,
  "image_mean": [0.48145466, 0.4578275, 0.40821073],
  "image_std": [0.26862954, 0.26130258, 0.27577711],
  "min_pixels": 3136,
  "max_pixels": 12845056,
  "patch_size": 14,
  "merge_size": 2,
  "temporal_patch_size": 2
}
"#;

/// Qwen3-VL's image processor settings (Qwen/Qwen3-VL-*-Instruct), for models built from
/// scratch: patch 16, merge 2, mean / std 0.5, between 64K and 16M pixels.
const QWEN3_VL_DEFAULT_PREPROCESSOR_JSON: &str = r#"{
  "image_processor_type": "Qwen2VLImageProcessorFast",
  "processor_class": "Qwen3VLProcessor",
  "do_resize": true,
  "do_rescale": true,
  "rescale_factor": 0.00392156862745098,
  "do_normalize": true,
  "do_convert_rgb": true,
  "image_mean": [0.5, 0.5, 0.5],
  "image_std": [0.5, 0.5, 0.5],
  "size": {"shortest_edge": 65536, "longest_edge": 16777216},
  "patch_size": 16,
  "merge_size": 2,
  "temporal_patch_size": 2
}
"#;
