//! Named tiny configurations built from scratch (seeded, std 0.02) around a real tokenizer: the
//! demo's and the tests' policies. They have the real architectures' shapes in miniature, so
//! everything that runs on them runs on the real checkpoints.

use std::path::Path;

use anyhow::{bail, Context, Result};
use mixed_r1_model::config::{Arch, ModelConfig, TextConfig, VisionConfig};
use mixed_r1_model::model::{LoadOptions, Model};
use mixed_r1_model::tokenizer::Tokenizer;

/// The names `[model] tiny = "…"` accepts.
pub const NAMES: &[&str] = &["tiny-qwen2.5-vl", "tiny-qwen2"];

/// Small images for tiny models: at most 112x112 pixels (16 merged vision tokens).
pub const TINY_PREPROCESSOR_JSON: &str = r#"{
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
  "max_pixels": 12544,
  "patch_size": 14,
  "merge_size": 2,
  "temporal_patch_size": 2
}
"#;

fn id(tok: &Tokenizer, s: &str) -> Result<u32> {
    tok.token_id(s)
        .with_context(|| format!("the tokenizer has no `{s}` token (a Qwen tokenizer is needed)"))
}

/// The config of a named tiny model for this tokenizer.
pub fn config(name: &str, tok: &Tokenizer) -> Result<ModelConfig> {
    // Round the embedding table up to a multiple of 64, as Qwen checkpoints do.
    let vocab = tok.vocab_size().div_ceil(64) * 64;
    let eos = vec![id(tok, "<|im_end|>")?, id(tok, "<|endoftext|>")?];
    let text = |mrope: Option<Vec<usize>>| TextConfig {
        vocab_size: vocab,
        hidden_size: 128,
        intermediate_size: 256,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        head_dim: 32,
        rms_norm_eps: 1e-6,
        rope_theta: 10_000.0,
        max_position_embeddings: 4096,
        tie_word_embeddings: true,
        qkv_bias: true,
        mrope_section: mrope,
        bos_token_id: None,
        eos_token_ids: eos.clone(),
    };
    Ok(match name {
        "tiny-qwen2.5-vl" => ModelConfig {
            arch: Arch::Qwen25Vl,
            text: text(Some(vec![4, 6, 6])),
            vision: Some(VisionConfig {
                depth: 2,
                hidden_size: 64,
                num_heads: 2,
                intermediate_size: 128,
                out_hidden_size: 128,
                patch_size: 14,
                spatial_merge_size: 2,
                temporal_patch_size: 2,
                window_size: 56,
                fullatt_block_indexes: vec![1],
                in_channels: 3,
                rms_norm_eps: 1e-6,
            }),
            image_token_id: Some(id(tok, "<|image_pad|>")?),
            video_token_id: Some(id(tok, "<|video_pad|>")?),
            vision_start_token_id: Some(id(tok, "<|vision_start|>")?),
            vision_end_token_id: Some(id(tok, "<|vision_end|>")?),
            raw: None,
        },
        "tiny-qwen2" => ModelConfig {
            arch: Arch::Qwen2,
            text: text(None),
            vision: None,
            image_token_id: None,
            video_token_id: None,
            vision_start_token_id: None,
            vision_end_token_id: None,
            raw: None,
        },
        other => bail!("unknown tiny model `{other}` (known: {})", NAMES.join(", ")),
    })
}

/// Builds a named tiny model from scratch with `tokenizer.json`.
pub fn build(name: &str, tokenizer: &Path, seed: u64, opts: &LoadOptions) -> Result<Model> {
    let tok = Tokenizer::from_file(tokenizer)?;
    let cfg = config(name, &tok)?;
    let vision = cfg.vision.is_some();
    let mut model = Model::random(cfg, seed, opts)?;
    model.tokenizer = Some(tok);
    if vision {
        model.set_preprocessor_json(TINY_PREPROCESSOR_JSON)?;
    }
    Ok(model)
}
