//! The InternVL part of a `config.json` (`InternVLConfig` and its `vision_config`, with
//! transformers' defaults) and InternVL's special tokens. Read when the config is loaded, so a
//! bad vision section is reported then; the vision tower in [`crate::internvl`] is built from it.

use std::path::Path;

use candle_core::Tensor;
use serde_json::Value;

use crate::error::{ModelError, Result};

/// `image_token_id` of InternVLConfig when the config does not name one.
pub const DEFAULT_IMAGE_TOKEN_ID: u32 = 151667;
/// The image placeholder InternVL's chat template writes and the processor expands.
pub const IMG_CONTEXT: &str = "<IMG_CONTEXT>";
pub const IMG_START: &str = "<img>";
pub const IMG_END: &str = "</img>";

/// The normalisation of the encoder layers (`norm_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NormType {
    LayerNorm,
    RmsNorm,
}

/// The activations transformers' `ACT2FN` names that configs use here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    /// `gelu`: exact (erf).
    Gelu,
    /// `gelu_pytorch_tanh` / `gelu_new`: the tanh approximation.
    GeluTanh,
    Relu,
    Silu,
}

impl Act {
    fn parse(name: &str, key: &str, path: &Path) -> Result<Act> {
        Ok(match name {
            "gelu" => Act::Gelu,
            "gelu_pytorch_tanh" | "gelu_new" => Act::GeluTanh,
            "relu" => Act::Relu,
            "silu" | "swish" => Act::Silu,
            other => {
                return Err(ModelError::format(
                    path,
                    format!(
                        "`{key}` `{other}` is not supported (gelu, gelu_pytorch_tanh, gelu_new, \
                         relu, silu are)"
                    ),
                ))
            }
        })
    }

    pub(crate) fn apply(self, x: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Act::Gelu => x.gelu_erf()?,
            Act::GeluTanh => x.gelu()?,
            Act::Relu => x.relu()?,
            Act::Silu => x.silu()?,
        })
    }
}

/// `vision_config` of an InternVL config (InternVLVisionConfig, with its defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct InternVitConfig {
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub attention_bias: bool,
    pub use_qk_norm: bool,
    pub hidden_act: Act,
    pub norm_type: NormType,
    pub layer_norm_eps: f64,
    /// `(height, width)` the position embeddings were trained for.
    pub image_size: [usize; 2],
    pub patch_size: usize,
    pub num_channels: usize,
    pub use_absolute_position_embeddings: bool,
    /// `false` adds a final LayerNorm (`vision_tower.layernorm`).
    pub use_mean_pooling: bool,
    pub layer_scale_init_value: f64,
}

/// The InternVL-specific part of a config: the vision tower, the pixel shuffle, the projector.
#[derive(Debug, Clone, PartialEq)]
pub struct InternVlConfig {
    pub vision: InternVitConfig,
    /// The language model's hidden size (the projector's output).
    pub text_hidden_size: usize,
    /// `1 / downsample_ratio` (2 for the usual 0.5).
    pub shuffle: usize,
    pub projector_hidden_act: Act,
    /// Which hidden state feeds the projector (-1 = the last output).
    pub vision_feature_layer: i64,
    /// `image_seq_length`: `<IMG_CONTEXT>` tokens per tile the processor writes.
    pub image_seq_length: usize,
    pub image_token_id: u32,
}

fn pair(v: Option<&Value>, default: usize, key: &str, path: &Path) -> Result<[usize; 2]> {
    match v {
        None | Some(Value::Null) => Ok([default, default]),
        Some(Value::Number(n)) => {
            let x = n.as_u64().filter(|&x| x > 0).ok_or_else(|| {
                ModelError::format(path, format!("`{key}` must be a positive integer"))
            })? as usize;
            Ok([x, x])
        }
        Some(Value::Array(a)) if a.len() == 2 => {
            let get = |i: usize| {
                a[i].as_u64()
                    .filter(|&x| x > 0)
                    .map(|x| x as usize)
                    .ok_or_else(|| {
                        ModelError::format(path, format!("`{key}` must hold positive integers"))
                    })
            };
            Ok([get(0)?, get(1)?])
        }
        Some(other) => Err(ModelError::format(
            path,
            format!("`{key}` must be an integer or [height, width], not {other}"),
        )),
    }
}

impl InternVlConfig {
    /// Reads the InternVL fields of a whole `config.json` (defaults as transformers' classes,
    /// since transformers leaves default values out when it saves); `path` names the file in
    /// errors.
    pub fn from_json(top: &Value, path: &Path) -> Result<InternVlConfig> {
        let empty = serde_json::Map::new();
        let v = top
            .get("vision_config")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let t = top
            .get("text_config")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let uint = |m: &serde_json::Map<String, Value>, k: &str, d: usize| -> Result<usize> {
            match m.get(k) {
                None | Some(Value::Null) => Ok(d),
                Some(x) => x.as_u64().map(|x| x as usize).ok_or_else(|| {
                    ModelError::format(path, format!("`{k}` must be a non-negative integer"))
                }),
            }
        };
        let boolean = |k: &str, d: bool| v.get(k).and_then(Value::as_bool).unwrap_or(d);
        let norm_type = match v
            .get("norm_type")
            .and_then(Value::as_str)
            .unwrap_or("layer_norm")
        {
            "layer_norm" => NormType::LayerNorm,
            "rms_norm" => NormType::RmsNorm,
            other => {
                return Err(ModelError::format(
                    path,
                    format!("vision_config.norm_type `{other}` is not layer_norm or rms_norm"),
                ))
            }
        };
        let patch = pair(v.get("patch_size"), 14, "vision_config.patch_size", path)?;
        if patch[0] != patch[1] {
            return Err(ModelError::format(
                path,
                format!("vision_config.patch_size {patch:?} is not square"),
            ));
        }
        let vision = InternVitConfig {
            hidden_size: uint(v, "hidden_size", 1024)?,
            num_hidden_layers: uint(v, "num_hidden_layers", 24)?,
            num_attention_heads: uint(v, "num_attention_heads", 16)?,
            intermediate_size: uint(v, "intermediate_size", 4096)?,
            attention_bias: boolean("attention_bias", false),
            use_qk_norm: boolean("use_qk_norm", false),
            hidden_act: Act::parse(
                v.get("hidden_act")
                    .and_then(Value::as_str)
                    .unwrap_or("gelu"),
                "vision_config.hidden_act",
                path,
            )?,
            norm_type,
            layer_norm_eps: v
                .get("layer_norm_eps")
                .and_then(Value::as_f64)
                .unwrap_or(1e-6),
            image_size: pair(v.get("image_size"), 448, "vision_config.image_size", path)?,
            patch_size: patch[0],
            num_channels: uint(v, "num_channels", 3)?,
            use_absolute_position_embeddings: boolean("use_absolute_position_embeddings", true),
            use_mean_pooling: boolean("use_mean_pooling", true),
            layer_scale_init_value: v
                .get("layer_scale_init_value")
                .and_then(Value::as_f64)
                .unwrap_or(0.1),
        };
        let c = &vision;
        if c.num_attention_heads == 0 || c.hidden_size % c.num_attention_heads != 0 {
            return Err(ModelError::format(
                path,
                format!(
                    "vision_config.hidden_size {} is not a multiple of num_attention_heads {}",
                    c.hidden_size, c.num_attention_heads
                ),
            ));
        }
        if c.image_size[0] % c.patch_size != 0 || c.image_size[1] % c.patch_size != 0 {
            return Err(ModelError::format(
                path,
                format!(
                    "vision_config.image_size {:?} is not a multiple of patch_size {}",
                    c.image_size, c.patch_size
                ),
            ));
        }
        let ratio = top
            .get("downsample_ratio")
            .and_then(Value::as_f64)
            .unwrap_or(0.5);
        let shuffle = (1.0 / ratio).round();
        if !(ratio > 0.0 && shuffle >= 1.0 && (shuffle * ratio - 1.0).abs() < 1e-9) {
            return Err(ModelError::format(
                path,
                format!("downsample_ratio {ratio} is not 1/k for an integer k"),
            ));
        }
        let feature_layer = match top.get("vision_feature_layer") {
            None | Some(Value::Null) => -1,
            Some(Value::Number(n)) if n.as_i64().is_some() => n.as_i64().unwrap_or(-1),
            Some(other) => {
                return Err(ModelError::format(
                    path,
                    format!("vision_feature_layer {other} is not supported (one integer is)"),
                ))
            }
        };
        let layers = c.num_hidden_layers as i64;
        if feature_layer < -(layers + 1) || feature_layer > layers {
            return Err(ModelError::format(
                path,
                format!(
                    "vision_feature_layer {feature_layer} is outside the {} hidden states",
                    layers + 1
                ),
            ));
        }
        match top
            .get("vision_feature_select_strategy")
            .and_then(Value::as_str)
            .unwrap_or("default")
        {
            "default" => {}
            other => {
                return Err(ModelError::format(
                    path,
                    format!(
                        "vision_feature_select_strategy `{other}` is not supported (default is: \
                         the [CLS] feature is dropped before the pixel shuffle)"
                    ),
                ))
            }
        }
        let text_hidden_size = t
            .get("hidden_size")
            .or_else(|| top.get("hidden_size"))
            .and_then(Value::as_u64)
            .ok_or_else(|| ModelError::format(path, "`text_config.hidden_size` missing"))?
            as usize;
        Ok(InternVlConfig {
            vision,
            text_hidden_size,
            shuffle: shuffle as usize,
            projector_hidden_act: Act::parse(
                top.get("projector_hidden_act")
                    .and_then(Value::as_str)
                    .unwrap_or("gelu"),
                "projector_hidden_act",
                path,
            )?,
            vision_feature_layer: feature_layer,
            image_seq_length: uint(top.as_object().unwrap_or(&empty), "image_seq_length", 256)?,
            image_token_id: top
                .get("image_token_id")
                .and_then(Value::as_u64)
                .map(|x| x as u32)
                .unwrap_or(DEFAULT_IMAGE_TOKEN_ID),
        })
    }

    /// `<IMG_CONTEXT>` tokens one `tile x tile` tile gives: `(tile / patch / k)²`.
    pub fn tokens_per_tile(&self, tile: [usize; 2]) -> usize {
        let p = self.vision.patch_size * self.shuffle;
        (tile[0] / p) * (tile[1] / p)
    }

    /// Width of a feature after the pixel shuffle (the projector's input).
    pub fn shuffled_width(&self) -> usize {
        self.vision.hidden_size * self.shuffle * self.shuffle
    }
}
