//! Shared helpers for the model tests: fixture paths and comparisons.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::{Device, Tensor};
use serde_json::Value;

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub fn reference() -> Value {
    let text = std::fs::read_to_string(fixtures().join("reference.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

pub fn tensors() -> HashMap<String, Tensor> {
    candle_core::safetensors::load(fixtures().join("reference.safetensors"), &Device::Cpu).unwrap()
}

pub fn ids2(v: &Value) -> Vec<Vec<u32>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u32)
                .collect()
        })
        .collect()
}

pub fn mask2(v: &Value) -> Vec<Vec<u8>> {
    ids2(v)
        .into_iter()
        .map(|r| r.into_iter().map(|x| x as u8).collect())
        .collect()
}

/// Max |a - b| over the positions where `mask` is 1 (logits `(B, T, V)`).
pub fn max_diff_masked(a: &Tensor, b: &Tensor, mask: &[Vec<u8>]) -> f32 {
    let a = a
        .to_dtype(candle_core::DType::F32)
        .unwrap()
        .to_vec3::<f32>()
        .unwrap();
    let b = b
        .to_dtype(candle_core::DType::F32)
        .unwrap()
        .to_vec3::<f32>()
        .unwrap();
    let mut m = 0f32;
    for (bi, row) in mask.iter().enumerate() {
        for (t, &v) in row.iter().enumerate() {
            if v == 0 {
                continue;
            }
            for (x, y) in a[bi][t].iter().zip(&b[bi][t]) {
                m = m.max((x - y).abs());
            }
        }
    }
    m
}

/// The SmolLM2 GGUF fetched by scripts/fetch-assets.sh, if present.
pub fn smollm2_gguf() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../.cache/assets/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
    p.is_file().then_some(p)
}
