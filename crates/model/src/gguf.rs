//! GGUF checkpoints (llama.cpp) for Llama-family models, dequantised into the same named
//! weights a Hugging Face folder gives.
//!
//! llama.cpp's converter stores q/k projection rows permuted for its interleaved rotary; this
//! module undoes that permutation so the weights work with the rotate-half rotary that
//! transformers (and our decoder) use.

use std::path::Path;

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::{DType, Device, Tensor};

use crate::config::{Arch, ModelConfig, TextConfig};
use crate::error::{ModelError, Result};
use crate::params::Params;
use crate::tokenizer::Tokenizer;

/// What a GGUF file holds: config, weights, tokenizer and chat template.
pub struct GgufModel {
    pub config: ModelConfig,
    pub params: Params,
    pub tokenizer: Tokenizer,
    pub chat_template: Option<String>,
    /// The named special tokens (`bos_token` -> its text, ...) the chat template renders with,
    /// from the `tokenizer.ggml.*_token_id` metadata.
    pub special_tokens: Vec<(String, String)>,
}

fn meta<'a>(c: &'a Content, key: &str, path: &Path) -> Result<&'a Value> {
    c.metadata
        .get(key)
        .ok_or_else(|| ModelError::format(path, format!("GGUF metadata `{key}` missing")))
}

fn meta_u32(c: &Content, key: &str, path: &Path) -> Result<usize> {
    let v = meta(c, key, path)?;
    v.to_u32()
        .map(|v| v as usize)
        .or_else(|_| v.to_u64().map(|v| v as usize))
        .map_err(|e| ModelError::format(path, format!("GGUF `{key}`: {e}")))
}

fn meta_f32(c: &Content, key: &str) -> Option<f64> {
    c.metadata
        .get(key)
        .and_then(|v| v.to_f32().ok())
        .map(f64::from)
}

fn meta_strings(c: &Content, key: &str, path: &Path) -> Result<Vec<String>> {
    let arr = meta(c, key, path)?
        .to_vec()
        .map_err(|e| ModelError::format(path, format!("GGUF `{key}`: {e}")))?;
    arr.iter()
        .map(|v| {
            v.to_string()
                .cloned()
                .map_err(|e| ModelError::format(path, format!("GGUF `{key}`: {e}")))
        })
        .collect()
}

/// Maps a llama.cpp tensor name to the Hugging Face one.
fn hf_name(name: &str) -> Option<String> {
    match name {
        "token_embd.weight" => return Some("model.embed_tokens.weight".into()),
        "output_norm.weight" => return Some("model.norm.weight".into()),
        "output.weight" => return Some("lm_head.weight".into()),
        _ => {}
    }
    let rest = name.strip_prefix("blk.")?;
    let (layer, tail) = rest.split_once('.')?;
    let hf = match tail {
        "attn_q.weight" => "self_attn.q_proj.weight",
        "attn_k.weight" => "self_attn.k_proj.weight",
        "attn_v.weight" => "self_attn.v_proj.weight",
        "attn_output.weight" => "self_attn.o_proj.weight",
        "attn_q.bias" => "self_attn.q_proj.bias",
        "attn_k.bias" => "self_attn.k_proj.bias",
        "attn_v.bias" => "self_attn.v_proj.bias",
        "ffn_gate.weight" => "mlp.gate_proj.weight",
        "ffn_up.weight" => "mlp.up_proj.weight",
        "ffn_down.weight" => "mlp.down_proj.weight",
        "attn_norm.weight" => "input_layernorm.weight",
        "ffn_norm.weight" => "post_attention_layernorm.weight",
        _ => return None,
    };
    Some(format!("model.layers.{layer}.{hf}"))
}

/// Inverse of llama.cpp's `permute`, which reorders each head's rows from (2, half) to
/// (half, 2): view the rows as (heads, half, 2) and swap the last two back.
fn unpermute(w: &Tensor, heads: usize) -> Result<Tensor> {
    let (rows, cols) = w.dims2()?;
    let half = rows / heads / 2;
    Ok(w.reshape((heads, half, 2, cols))?
        .transpose(1, 2)?
        .reshape((rows, cols))?
        .contiguous()?)
}

/// Reads a Llama-architecture GGUF file into f32 (or `dtype`) weights.
pub fn load(path: &Path, dtype: DType, device: &Device) -> Result<GgufModel> {
    let mut file = std::fs::File::open(path).map_err(|e| ModelError::io(path, e))?;
    let content = Content::read(&mut file)
        .map_err(|e| ModelError::format(path, format!("not a GGUF file: {e}")))?;
    let arch = meta(&content, "general.architecture", path)?
        .to_string()
        .map_err(|e| ModelError::format(path, format!("{e}")))?
        .clone();
    if arch != "llama" {
        return Err(ModelError::format(
            path,
            format!("GGUF architecture `{arch}` is not supported (llama is)"),
        ));
    }
    let k = |s: &str| format!("{arch}.{s}");
    let tokens = meta_strings(&content, "tokenizer.ggml.tokens", path)?;
    let hidden = meta_u32(&content, &k("embedding_length"), path)?;
    let heads = meta_u32(&content, &k("attention.head_count"), path)?;
    let kv_heads = meta_u32(&content, &k("attention.head_count_kv"), path).unwrap_or(heads);
    let has_output = content.tensor_infos.contains_key("output.weight");
    let has_bias = content.tensor_infos.contains_key("blk.0.attn_q.bias");
    let eos = meta_u32(&content, "tokenizer.ggml.eos_token_id", path).ok();
    let text = TextConfig {
        vocab_size: tokens.len(),
        hidden_size: hidden,
        intermediate_size: meta_u32(&content, &k("feed_forward_length"), path)?,
        num_hidden_layers: meta_u32(&content, &k("block_count"), path)?,
        num_attention_heads: heads,
        num_key_value_heads: kv_heads,
        head_dim: meta_u32(&content, &k("rope.dimension_count"), path)
            .unwrap_or(hidden / heads.max(1)),
        rms_norm_eps: meta_f32(&content, &k("attention.layer_norm_rms_epsilon")).unwrap_or(1e-5),
        rope_theta: meta_f32(&content, &k("rope.freq_base")).unwrap_or(10_000.0),
        max_position_embeddings: meta_u32(&content, &k("context_length"), path).unwrap_or(2048),
        tie_word_embeddings: !has_output,
        qkv_bias: has_bias,
        mrope_section: None,
        mrope_interleaved: false,
        qk_norm: false,
        bos_token_id: meta_u32(&content, "tokenizer.ggml.bos_token_id", path)
            .ok()
            .map(|v| v as u32),
        eos_token_ids: eos.map(|v| vec![v as u32]).unwrap_or_default(),
    };
    let config = ModelConfig {
        arch: Arch::Llama,
        text,
        vision: None,
        image_token_id: None,
        video_token_id: None,
        vision_start_token_id: None,
        vision_end_token_id: None,
        raw: None,
    };

    let mut params = Params::new(dtype, device.clone());
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    for name in names {
        let Some(hf) = hf_name(name) else {
            continue; // rope_freqs and other derived tensors: recomputed, not stored.
        };
        let q = content
            .tensor(&mut file, name, &Device::Cpu)
            .map_err(|e| ModelError::format(path, format!("tensor `{name}`: {e}")))?;
        let mut t = q.dequantize(&Device::Cpu)?.to_dtype(DType::F32)?;
        if hf.ends_with("q_proj.weight") {
            t = unpermute(&t, heads)?;
        } else if hf.ends_with("k_proj.weight") {
            t = unpermute(&t, kv_heads)?;
        }
        params.insert(&hf, &t)?;
    }

    let merges = meta_strings(&content, "tokenizer.ggml.merges", path)?;
    let types: Vec<i32> = match content.metadata.get("tokenizer.ggml.token_type") {
        Some(v) => v
            .to_vec()
            .map_err(|e| ModelError::format(path, format!("{e}")))?
            .iter()
            .map(|x| x.to_i32().unwrap_or(1))
            .collect(),
        None => Vec::new(),
    };
    let pre = content
        .metadata
        .get("tokenizer.ggml.pre")
        .and_then(|v| v.to_string().ok())
        .cloned();
    let tokenizer = Tokenizer::from_bpe_parts(&tokens, &merges, &types, pre.as_deref())?;
    let chat_template = content
        .metadata
        .get("tokenizer.chat_template")
        .and_then(|v| v.to_string().ok())
        .cloned();
    // The names transformers' GGUF loader gives these ids (note GGUF's "seperator" spelling).
    let mut special_tokens = Vec::new();
    for (name, key) in [
        ("bos_token", "tokenizer.ggml.bos_token_id"),
        ("eos_token", "tokenizer.ggml.eos_token_id"),
        ("unk_token", "tokenizer.ggml.unknown_token_id"),
        ("sep_token", "tokenizer.ggml.seperator_token_id"),
        ("pad_token", "tokenizer.ggml.padding_token_id"),
        ("cls_token", "tokenizer.ggml.cls_token_id"),
        ("mask_token", "tokenizer.ggml.mask_token_id"),
    ] {
        if let Some(t) = meta_u32(&content, key, path)
            .ok()
            .and_then(|id| tokens.get(id))
        {
            special_tokens.push((name.to_string(), t.clone()));
        }
    }
    Ok(GgufModel {
        config,
        params,
        tokenizer,
        chat_template,
        special_tokens,
    })
}
