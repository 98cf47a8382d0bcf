//! Named tiny configurations (Qwen2.5-VL, Qwen3-VL, Qwen2, InternVL) built from scratch (seeded, std 0.02) around a real tokenizer: the
//! demo's and the tests' policies. They have the real architectures' shapes in miniature, so
//! everything that runs on them runs on the real checkpoints.

use std::path::Path;

use anyhow::{bail, Context, Result};
use mixed_r1_model::config::{Arch, ModelConfig, TextConfig, VisionConfig};
use mixed_r1_model::internvl::{IMG_CONTEXT, IMG_END, IMG_START};
use mixed_r1_model::internvl_processor::{preprocessor_json, InternVlProcessor};
use mixed_r1_model::model::{LoadOptions, Model};
use mixed_r1_model::tokenizer::Tokenizer;

/// The names `[model] tiny = "…"` accepts.
pub const NAMES: &[&str] = &[
    "tiny-qwen2.5-vl",
    "tiny-qwen3-vl",
    "tiny-qwen2",
    "tiny-internvl",
];

/// Qwen3-VL's processor for tiny models: at most 128x128 pixels (16 merged vision tokens),
/// patch 16, mean / std 0.5.
pub const TINY_QWEN3_VL_PREPROCESSOR_JSON: &str = r#"{
  "image_processor_type": "Qwen2VLImageProcessorFast",
  "processor_class": "Qwen3VLProcessor",
  "do_resize": true,
  "do_rescale": true,
  "rescale_factor": 0.00392156862745098,
  "do_normalize": true,
  "do_convert_rgb": true,
  "image_mean": [0.5, 0.5, 0.5],
  "image_std": [0.5, 0.5, 0.5],
  "size": {"shortest_edge": 1024, "longest_edge": 16384},
  "patch_size": 16,
  "merge_size": 2,
  "temporal_patch_size": 2
}
"#;

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

/// InternVL's image tokens, in the order InternVL3's tokenizer adds them after Qwen2.5's
/// vocabulary (`<img>` 151665, `</img>` 151666, `<IMG_CONTEXT>` 151667).
const INTERNVL_TOKENS: [&str; 3] = [IMG_START, IMG_END, IMG_CONTEXT];

/// The tokenizer a named tiny model uses: the given one, plus InternVL's image tokens as
/// special added tokens for `tiny-internvl` when it lacks them (a Qwen2.5 tokenizer does).
pub fn tokenizer_for(name: &str, tok: &Tokenizer) -> Result<Tokenizer> {
    if name != "tiny-internvl" || INTERNVL_TOKENS.iter().all(|t| tok.token_id(t).is_some()) {
        return Ok(tok.clone());
    }
    let mut json: serde_json::Value = serde_json::from_str(
        &tok.inner()
            .to_string(false)
            .map_err(|e| anyhow::anyhow!("serialising the tokenizer: {e}"))?,
    )?;
    let added = json
        .get_mut("added_tokens")
        .and_then(serde_json::Value::as_array_mut)
        .context("the tokenizer has no `added_tokens` list")?;
    let mut next = tok.vocab_size() as u32;
    for t in INTERNVL_TOKENS {
        if tok.token_id(t).is_some() {
            continue;
        }
        added.push(
            serde_json::json!({"id": next, "content": t, "single_word": false,
            "lstrip": false, "rstrip": false, "normalized": false, "special": true}),
        );
        next += 1;
    }
    Ok(Tokenizer::from_json(&json.to_string())?)
}

/// `tiny-internvl`'s image processor: 56 px tiles (4 `<IMG_CONTEXT>` each), 1 to 4 of them
/// plus a thumbnail, ImageNet mean / std, bicubic.
pub fn tiny_internvl_processor() -> InternVlProcessor {
    let mut p = InternVlProcessor::new(4);
    p.tile = [56, 56];
    p.max_patches = 4;
    p
}

/// `tiny-internvl`: the InternVL3 layout (InternViT with LayerNorm, q/k/v bias and layer-scale;
/// pixel shuffle 0.5; the MLP projector; a Qwen2 language model) in miniature, as the
/// `config.json` transformers writes for `InternVLForConditionalGeneration`.
fn internvl_config(tok: &Tokenizer) -> Result<ModelConfig> {
    let vocab = tok.vocab_size().div_ceil(64) * 64;
    let eos = [id(tok, "<|im_end|>")?, id(tok, "<|endoftext|>")?];
    let v = serde_json::json!({
        "architectures": ["InternVLForConditionalGeneration"],
        "model_type": "internvl",
        "downsample_ratio": 0.5,
        "image_seq_length": tiny_internvl_processor().tokens_per_tile,
        "image_token_id": id(tok, IMG_CONTEXT)?,
        "projector_hidden_act": "gelu",
        "vision_feature_layer": -1,
        "vision_feature_select_strategy": "default",
        "tie_word_embeddings": true,
        "torch_dtype": "float32",
        "text_config": {
            "model_type": "qwen2",
            "vocab_size": vocab,
            "hidden_size": 128,
            "intermediate_size": 256,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "rms_norm_eps": 1e-6,
            "rope_theta": 10000.0,
            "max_position_embeddings": 4096,
            "hidden_act": "silu",
            "tie_word_embeddings": true,
            "use_sliding_window": false,
            "eos_token_id": eos,
        },
        "vision_config": {
            "model_type": "internvl_vision",
            "hidden_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "intermediate_size": 128,
            "attention_bias": true,
            "use_qk_norm": false,
            "norm_type": "layer_norm",
            "layer_norm_eps": 1e-6,
            "image_size": [56, 56],
            "patch_size": [14, 14],
            "num_channels": 3,
            "hidden_act": "gelu",
            "use_mean_pooling": true,
            "layer_scale_init_value": 0.1,
            "use_absolute_position_embeddings": true,
        },
    });
    Ok(ModelConfig::from_json(
        &v,
        Path::new("tiny-internvl/config.json"),
    )?)
}

/// `tiny-qwen3-vl`: Qwen3-VL's layout in miniature (q/k norms, interleaved M-RoPE, a learned
/// 8x8 position grid, DeepStack from the first vision block into the first decoder layer,
/// tied head as the 2B / 4B checkpoints), written as the JSON transformers reads.
fn qwen3_vl_config(tok: &Tokenizer) -> Result<ModelConfig> {
    let vocab = tok.vocab_size().div_ceil(64) * 64;
    let eos = vec![id(tok, "<|im_end|>")?, id(tok, "<|endoftext|>")?];
    let v = serde_json::json!({
        "architectures": ["Qwen3VLForConditionalGeneration"],
        "model_type": "qwen3_vl",
        "image_token_id": id(tok, "<|image_pad|>")?,
        "video_token_id": id(tok, "<|video_pad|>")?,
        "vision_start_token_id": id(tok, "<|vision_start|>")?,
        "vision_end_token_id": id(tok, "<|vision_end|>")?,
        "tie_word_embeddings": true,
        "torch_dtype": "float32",
        "text_config": {
            "model_type": "qwen3_vl_text",
            "vocab_size": vocab,
            "hidden_size": 128,
            "intermediate_size": 256,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "head_dim": 32,
            "hidden_act": "silu",
            "max_position_embeddings": 4096,
            "rms_norm_eps": 1e-6,
            "attention_bias": false,
            "tie_word_embeddings": true,
            "eos_token_id": eos,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 10000.0,
                "mrope_section": [6, 5, 5],
                "mrope_interleaved": true,
            },
        },
        "vision_config": {
            "model_type": "qwen3_vl_vision",
            "depth": 2,
            "hidden_size": 64,
            "hidden_act": "gelu_pytorch_tanh",
            "intermediate_size": 128,
            "num_heads": 2,
            "in_channels": 3,
            "patch_size": 16,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "out_hidden_size": 128,
            "num_position_embeddings": 64,
            "deepstack_visual_indexes": [0],
        },
    });
    Ok(ModelConfig::from_json(
        &v,
        Path::new("tiny-qwen3-vl/config.json"),
    )?)
}

/// The config of a named tiny model for this tokenizer.
pub fn config(name: &str, tok: &Tokenizer) -> Result<ModelConfig> {
    if name == "tiny-internvl" {
        return internvl_config(&tokenizer_for(name, tok)?);
    }
    if name == "tiny-qwen3-vl" {
        return qwen3_vl_config(tok);
    }
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
        mrope_interleaved: false,
        qk_norm: false,
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
    let tok = tokenizer_for(name, &Tokenizer::from_file(tokenizer)?)?;
    let cfg = config(name, &tok)?;
    let arch = cfg.arch;
    let mut model = Model::random(cfg, seed, opts)?;
    model.tokenizer = Some(tok);
    match arch {
        Arch::Qwen25Vl => model.set_preprocessor_json(TINY_PREPROCESSOR_JSON)?,
        Arch::Qwen3Vl => model.set_preprocessor_json(TINY_QWEN3_VL_PREPROCESSOR_JSON)?,
        Arch::InternVl => {
            model.set_preprocessor_json(&preprocessor_json(&tiny_internvl_processor()))?
        }
        Arch::Qwen2 | Arch::Llama => {}
    }
    Ok(model)
}
