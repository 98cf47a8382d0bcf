//! Qwen3-VL's vision settings, read from the `vision_config` of its `config.json` (apart from
//! the model so that the config reader can check them without depending on the tower).

use std::path::Path;

use serde_json::Value;

use crate::error::{ModelError, Result};

/// The `vision_config` of a Qwen3-VL `config.json` (transformers' defaults where a key is absent).
#[derive(Debug, Clone, PartialEq)]
pub struct Qwen3VlVisionConfig {
    pub depth: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_heads: usize,
    pub in_channels: usize,
    pub patch_size: usize,
    pub spatial_merge_size: usize,
    pub temporal_patch_size: usize,
    pub out_hidden_size: usize,
    pub num_position_embeddings: usize,
    pub deepstack_visual_indexes: Vec<usize>,
    /// `gelu_pytorch_tanh` (the released models) or the exact `gelu`.
    pub tanh_gelu: bool,
    pub rope_theta: f64,
}

impl Qwen3VlVisionConfig {
    /// Reads `vision_config` from a whole Qwen3-VL config; `path` names the file in errors.
    pub fn from_json(config: &Value, path: &Path) -> Result<Qwen3VlVisionConfig> {
        let v = config
            .get("vision_config")
            .and_then(Value::as_object)
            .ok_or_else(|| ModelError::format(path, "`vision_config` missing"))?;
        let uint = |k: &str, d: usize| -> Result<usize> {
            match v.get(k) {
                None | Some(Value::Null) => Ok(d),
                Some(x) => x.as_u64().map(|x| x as usize).ok_or_else(|| {
                    ModelError::format(path, format!("vision_config.{k} is not an integer"))
                }),
            }
        };
        let act = v
            .get("hidden_act")
            .and_then(Value::as_str)
            .unwrap_or("gelu_pytorch_tanh");
        let tanh_gelu = match act {
            "gelu_pytorch_tanh" | "gelu_new" | "gelu_fast" => true,
            "gelu" => false,
            other => {
                return Err(ModelError::format(
                    path,
                    format!("vision_config.hidden_act `{other}` is not supported (gelu_pytorch_tanh and gelu are)"),
                ))
            }
        };
        let deepstack = match v.get("deepstack_visual_indexes") {
            None | Some(Value::Null) => vec![8, 16, 24],
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| x.as_u64().map(|x| x as usize))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    ModelError::format(
                        path,
                        "vision_config.deepstack_visual_indexes holds a non-integer",
                    )
                })?,
            Some(_) => {
                return Err(ModelError::format(
                    path,
                    "vision_config.deepstack_visual_indexes is not a list",
                ))
            }
        };
        let rope_theta = v
            .get("rope_parameters")
            .and_then(|r| r.get("rope_theta"))
            .and_then(Value::as_f64)
            .unwrap_or(10_000.0);
        let c = Qwen3VlVisionConfig {
            depth: uint("depth", 27)?,
            hidden_size: uint("hidden_size", 1152)?,
            intermediate_size: uint("intermediate_size", 4304)?,
            num_heads: uint("num_heads", 16)?,
            in_channels: uint("in_channels", 3)?,
            patch_size: uint("patch_size", 16)?,
            spatial_merge_size: uint("spatial_merge_size", 2)?,
            temporal_patch_size: uint("temporal_patch_size", 2)?,
            out_hidden_size: uint("out_hidden_size", 3584)?,
            num_position_embeddings: uint("num_position_embeddings", 2304)?,
            deepstack_visual_indexes: deepstack,
            tanh_gelu,
            rope_theta,
        };
        c.validate().map_err(|m| ModelError::format(path, m))?;
        Ok(c)
    }

    pub(crate) fn validate(&self) -> std::result::Result<(), String> {
        if self.num_heads == 0 || self.hidden_size % self.num_heads != 0 {
            return Err(format!(
                "vision hidden_size {} is not a multiple of num_heads {}",
                self.hidden_size, self.num_heads
            ));
        }
        if (self.hidden_size / self.num_heads) % 4 != 0 {
            return Err(format!(
                "vision head_dim {} must be a multiple of 4 for the 2-D rotary",
                self.hidden_size / self.num_heads
            ));
        }
        let side = self.grid_side();
        if side * side != self.num_position_embeddings || side == 0 {
            return Err(format!(
                "num_position_embeddings {} is not a square",
                self.num_position_embeddings
            ));
        }
        if let Some(i) = self
            .deepstack_visual_indexes
            .iter()
            .find(|&&i| i >= self.depth)
        {
            return Err(format!(
                "deepstack_visual_indexes names block {i} of a {}-block tower",
                self.depth
            ));
        }
        if self.patch_size == 0 || self.spatial_merge_size == 0 || self.temporal_patch_size == 0 {
            return Err(
                "patch_size, spatial_merge_size and temporal_patch_size must be positive".into(),
            );
        }
        Ok(())
    }

    /// Side of the learned position grid.
    pub fn grid_side(&self) -> usize {
        (self.num_position_embeddings as f64).sqrt().round() as usize
    }
}
