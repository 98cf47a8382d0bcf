//! Shared helpers for the model tests: fixture paths and comparisons.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use mixed_r1_model::model::{Batch, Model};
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

/// `sum(logits * w)` over the real positions, `w` a fixed pseudo-random pattern: every weight
/// that reaches the logits gets a gradient.
pub fn weighted_sum(model: &Model, batch: &Batch) -> Tensor {
    let logits = model.logits(batch, true).unwrap();
    let (b, s, v) = logits.dims3().unwrap();
    let mut w = Vec::with_capacity(b * s * v);
    let mut x: u64 = 0x9e3779b97f4a7c15;
    for bi in 0..b {
        for ti in 0..s {
            for _ in 0..v {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let keep = f64::from(batch.mask[bi][ti]);
                w.push(keep * ((x >> 11) as f64 / (1u64 << 53) as f64 - 0.5));
            }
        }
    }
    let w = Tensor::from_vec(w, (b, s, v), &Device::Cpu)
        .unwrap()
        .to_dtype(logits.dtype())
        .unwrap();
    (logits * w).unwrap().sum_all().unwrap()
}

/// Central differences of [`weighted_sum`] on single f64 scalars `(tensor name, flat index)`
/// against the analytic gradient of the same loss: relative error below 1e-5 each. `what` names
/// the model in a failure.
pub fn check_finite_differences(model: &Model, batch: &Batch, picks: &[(&str, usize)], what: &str) {
    let grads = model.backward(&weighted_sum(model, batch)).unwrap();
    let trainable = model.params().trainable();
    let by_name: HashMap<&str, &candle_core::Var> =
        trainable.iter().map(|(n, v)| (n.as_str(), v)).collect();
    for &(name, idx) in picks {
        let var = by_name[name];
        let analytic = grads.get(var.as_tensor()).unwrap();
        let analytic = analytic.flatten_all().unwrap().to_vec1::<f64>().unwrap()[idx];
        let orig = var.as_tensor().copy().unwrap();
        let shape = orig.dims().to_vec();
        let base = orig.flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let eps = 1e-5;
        let at = |delta: f64| -> f64 {
            let mut v = base.clone();
            v[idx] += delta;
            var.set(&Tensor::from_vec(v, shape.as_slice(), &Device::Cpu).unwrap())
                .unwrap();
            weighted_sum(model, batch).to_scalar::<f64>().unwrap()
        };
        let numeric = (at(eps) - at(-eps)) / (2.0 * eps);
        var.set(&orig).unwrap();
        let err = (numeric - analytic).abs() / analytic.abs().max(1e-6);
        assert!(
            err < 1e-5,
            "{what}: {name}[{idx}] analytic {analytic} vs numeric {numeric}"
        );
    }
}

/// The torch venv of the fixture scripts (`.cache/venv-torch` or `MIXED_R1_TORCH_VENV`), if made.
pub fn torch_venv() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let venv = std::env::var_os("MIXED_R1_TORCH_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".cache/venv-torch"));
    venv.join("bin/python").is_file().then_some(venv)
}

/// Runs `scripts/fixtures/SCRIPT verify-saved DIR ARGS` (transformers loads a folder we saved and
/// compares its logits with the fixture's) and asserts it passed.
pub fn verify_saved(script: &str, dir: &Path, args: &[&str], venv: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scripts/fixtures")
        .join(script);
    let out = std::process::Command::new("bash")
        .arg(&script)
        .arg("verify-saved")
        .arg(dir)
        .args(args)
        .env("MIXED_R1_TORCH_VENV", venv)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{script:?} {args:?}: verify-saved failed:\n{text}"
    );
    assert!(text.contains("-> OK"), "{text}");
}
