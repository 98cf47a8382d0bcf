//! LoRA: the adapters' forward against PEFT's own (fixtures made by peft 0.21.2 with
//! scripts/fixtures/lora_fixtures.py), gradients only on adapter tensors and equal to finite
//! differences, adapters off = the base model, save / load in PEFT's layout, merge.

mod common;

use candle_core::{DType, Tensor};
use common::*;
use mixed_r1_model::logprobs::{completion_logprobs, Sequence};
use mixed_r1_model::lora::{is_adapter_tensor, LoraConfig};
use mixed_r1_model::model::{Batch, LoadOptions, Model};

fn lora_dir() -> std::path::PathBuf {
    fixtures().join("lora")
}

fn lora_reference() -> serde_json::Value {
    let text = std::fs::read_to_string(lora_dir().join("reference.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn lora_tensors() -> std::collections::HashMap<String, Tensor> {
    candle_core::safetensors::load(
        lora_dir().join("reference.safetensors"),
        &candle_core::Device::Cpu,
    )
    .unwrap()
}

fn load(name: &str, dtype: DType) -> Model {
    let opts = LoadOptions {
        dtype,
        ..Default::default()
    };
    Model::load(&fixtures().join(name), &opts).unwrap()
}

fn batch() -> Batch {
    let r = lora_reference();
    Batch {
        ids: ids2(&r["input_ids"]),
        mask: mask2(&r["attention_mask"]),
        images: None,
    }
}

fn check(model: &Model, key: &str, tol: f32) {
    let b = batch();
    for grad in [false, true] {
        let ours = model.logits(&b, grad).unwrap();
        let d = max_diff_masked(&ours, &lora_tensors()[key], &b.mask);
        assert!(d <= tol, "{key} (grad path {grad}): max abs diff {d}");
    }
}

#[test]
fn peft_adapter_logits_match_peft() {
    let mut model = load("tiny-qwen2", DType::F32);
    check(&model, "logits_base", 1e-4);
    let n = model.load_adapter(&lora_dir().join("adapter")).unwrap();
    assert_eq!(n, 2 * 7, "two layers x seven projections");
    check(&model, "logits_lora", 1e-4);
    // The adapter visibly changes the model, so the check above is not vacuous.
    let b = batch();
    let d = max_diff_masked(
        &lora_tensors()["logits_lora"],
        &lora_tensors()["logits_base"],
        &b.mask,
    );
    assert!(
        d > 1e-2,
        "the fixture adapter barely changes the logits ({d})"
    );
    // Adapters off: the base model, as peft's disable_adapter().
    model.with_adapters_disabled(|m| check(m, "logits_disabled", 1e-4));
    check(&model, "logits_lora", 1e-4);
}

#[test]
fn peft_rslora_adapter_on_q_and_v_matches_peft() {
    let mut model = load("tiny-qwen2", DType::F32);
    let n = model.load_adapter(&lora_dir().join("adapter-qv")).unwrap();
    assert_eq!(n, 2 * 2);
    let cfg = model.lora().unwrap();
    assert!(cfg.rslora);
    check(&model, "logits_lora_qv", 1e-4);
}

#[test]
fn merged_model_equals_the_adapter_model_and_peft_merge() {
    for (adapter, key) in [
        ("adapter", "logits_merged"),
        ("adapter-qv", "logits_merged_qv"),
    ] {
        let mut model = load("tiny-qwen2", DType::F32);
        model.load_adapter(&lora_dir().join(adapter)).unwrap();
        model.merge_lora().unwrap();
        assert!(model.lora().is_none());
        assert!(!model.params().names().any(is_adapter_tensor));
        check(&model, key, 1e-4);
        // Saved as a plain Hugging Face folder and loaded back: the same logits.
        let dir = tempfile::tempdir().unwrap();
        model.save(dir.path()).unwrap();
        let back = Model::load(dir.path(), &LoadOptions::default()).unwrap();
        check(&back, key, 1e-4);
    }
}

#[test]
fn saved_adapter_has_peft_names_and_loads_back() {
    let mut model = load("tiny-qwen2", DType::F32);
    model.load_adapter(&lora_dir().join("adapter")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    model.save_adapter(dir.path(), Some("tiny-qwen2")).unwrap();
    // Tensor for tensor what peft itself wrote.
    let ours = candle_core::safetensors::load(
        dir.path().join("adapter_model.safetensors"),
        &candle_core::Device::Cpu,
    )
    .unwrap();
    let theirs = candle_core::safetensors::load(
        lora_dir().join("adapter/adapter_model.safetensors"),
        &candle_core::Device::Cpu,
    )
    .unwrap();
    let mut a: Vec<&String> = ours.keys().collect();
    let mut b: Vec<&String> = theirs.keys().collect();
    a.sort();
    b.sort();
    assert_eq!(a, b, "tensor names differ from peft's");
    for (k, t) in &theirs {
        let d = (&ours[k] - t)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert_eq!(d, 0.0, "{k}");
    }
    // The config keys peft reads agree with peft's own file.
    let read = |p: std::path::PathBuf| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    };
    let ours_cfg = read(dir.path().join("adapter_config.json"));
    let theirs_cfg = read(lora_dir().join("adapter/adapter_config.json"));
    // Every key peft writes, with the same value, except how the weights were initialised.
    let (o, t) = (
        ours_cfg.as_object().unwrap(),
        theirs_cfg.as_object().unwrap(),
    );
    let mut ok: Vec<&String> = o.keys().collect();
    let mut tk: Vec<&String> = t.keys().collect();
    ok.sort();
    tk.sort();
    assert_eq!(ok, tk, "adapter_config.json keys differ from peft's");
    for (key, theirs) in t {
        if [
            "init_lora_weights",
            "base_model_name_or_path",
            "target_modules",
        ]
        .contains(&key.as_str())
        {
            continue;
        }
        assert_eq!(&o[key], theirs, "adapter_config.json `{key}`");
    }
    let mut ours_t: Vec<String> =
        serde_json::from_value(ours_cfg["target_modules"].clone()).unwrap();
    let mut theirs_t: Vec<String> =
        serde_json::from_value(theirs_cfg["target_modules"].clone()).unwrap();
    ours_t.sort();
    theirs_t.sort();
    assert_eq!(ours_t, theirs_t);
    // And our loader takes our own file back to the same logits.
    let mut again = load("tiny-qwen2", DType::F32);
    again.load_adapter(dir.path()).unwrap();
    check(&again, "logits_lora", 1e-4);
}

#[test]
fn bad_adapter_folders_are_named_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = load("tiny-qwen2", DType::F32);
    let err = model.load_adapter(dir.path()).unwrap_err().to_string();
    assert!(err.contains("adapter_config.json"), "{err}");
    // An adapter for another model: shapes that do not fit are refused, naming the tensor.
    std::fs::copy(
        lora_dir().join("adapter/adapter_config.json"),
        dir.path().join("adapter_config.json"),
    )
    .unwrap();
    let mut bad = std::collections::HashMap::new();
    bad.insert(
        "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight".to_string(),
        Tensor::zeros((4, 99), DType::F32, &candle_core::Device::Cpu).unwrap(),
    );
    candle_core::safetensors::save(&bad, dir.path().join("adapter_model.safetensors")).unwrap();
    let err = model.load_adapter(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("q_proj.lora_A") && err.contains("shape"),
        "{err}"
    );
    // DoRA is refused rather than run as plain LoRA.
    let mut cfg: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("adapter_config.json")).unwrap(),
    )
    .unwrap();
    cfg["use_dora"] = true.into();
    std::fs::write(dir.path().join("adapter_config.json"), cfg.to_string()).unwrap();
    let err = model.load_adapter(dir.path()).unwrap_err().to_string();
    assert!(err.contains("DoRA"), "{err}");
    // Targets that match nothing say what the modules are called.
    let err = model
        .add_lora(&LoraConfig {
            rank: 2,
            targets: vec!["c_attn".into()],
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("match no module") && err.contains("model.layers.0"),
        "{err}"
    );
}

/// LoRA on the language model and the vision tower of the tiny Qwen2.5-VL, with `B` moved off
/// zero so every adapter tensor has a gradient path.
fn vl_with_lora(dtype: DType) -> Model {
    let mut model = load("tiny-qwen2_5_vl", dtype);
    let n = model
        .add_lora(&LoraConfig {
            rank: 2,
            alpha: 4.0,
            vision: true,
            seed: 3,
            ..Default::default()
        })
        .unwrap();
    assert!(n > 0);
    for (name, var) in model.params().trainable() {
        if name.ends_with(".lora_B.weight") {
            let noise = Tensor::randn(0f32, 0.02, var.dims(), var.device())
                .unwrap()
                .to_dtype(dtype)
                .unwrap();
            var.set(&noise).unwrap();
        }
    }
    model
}

fn vl_sequences() -> Vec<Sequence> {
    let mut with_image = vec![11, 12, 502];
    with_image.extend([500; 6]);
    with_image.extend([503, 13, 14]);
    vec![
        Sequence {
            prompt: with_image,
            completion: vec![40, 41, 42, 43],
            images: Some(mixed_r1_model::model::ImageInputs {
                pixel_values: tensors()["processor.img_84x56.pixel_values"].clone(),
                grids: vec![[1, 4, 6]],
            }),
        },
        Sequence {
            prompt: vec![21, 22, 23, 24, 25],
            completion: vec![50, 51],
            images: None,
        },
    ]
}

fn pg_loss(model: &Model) -> Tensor {
    let out = completion_logprobs(model, &vl_sequences(), 1.0, true, false).unwrap();
    let adv = Tensor::new(&[[1.0f32], [-0.5]], model.device())
        .unwrap()
        .to_dtype(out.logprobs.dtype())
        .unwrap();
    out.logprobs
        .broadcast_mul(&adv)
        .unwrap()
        .sum_all()
        .unwrap()
        .neg()
        .unwrap()
}

#[test]
fn only_adapters_train_and_each_gets_a_gradient() {
    let model = vl_with_lora(DType::F32);
    let trainable = model.params().trainable();
    assert!(trainable.iter().all(|(n, _)| is_adapter_tensor(n)));
    let names: Vec<&String> = trainable.iter().map(|(n, _)| n).collect();
    assert!(names
        .iter()
        .any(|n| n.starts_with("visual.blocks.0.attn.qkv")));
    assert!(names
        .iter()
        .any(|n| n.starts_with("model.layers.1.mlp.down_proj")));
    let grads = pg_loss(&model).backward().unwrap();
    let mut missing = Vec::new();
    for (name, var) in &trainable {
        let sum = grads.get(var.as_tensor()).map(|g| {
            g.abs()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
        });
        if !sum.is_some_and(|s| s > 0.0) {
            missing.push(name.clone());
        }
    }
    assert!(missing.is_empty(), "no gradient for {missing:?}");
    // No frozen base weight is differentiated at all.
    for (name, var) in model.params().all() {
        if !is_adapter_tensor(&name) {
            assert!(
                grads.get(var.as_tensor()).is_none(),
                "{name} got a gradient"
            );
        }
    }
}

#[test]
fn adapter_gradients_agree_with_finite_differences() {
    let model = vl_with_lora(DType::F64);
    let grads = pg_loss(&model).backward().unwrap();
    let probes = [
        ("model.layers.0.self_attn.q_proj.lora_A.weight", 1usize),
        ("model.layers.1.mlp.down_proj.lora_B.weight", 5),
        ("visual.blocks.0.attn.qkv.lora_A.weight", 3),
        ("visual.blocks.0.mlp.up_proj.lora_B.weight", 2),
    ];
    for (name, i) in probes {
        let var = model.params().var(name).unwrap().clone();
        let analytic = grads
            .get(var.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap()[i];
        let base = var
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        let eval = |delta: f64| {
            let mut v = base.clone();
            v[i] += delta;
            var.set(&Tensor::from_vec(v, var.dims(), model.device()).unwrap())
                .unwrap();
            pg_loss(&model).to_scalar::<f64>().unwrap()
        };
        let eps = 1e-5;
        let numeric = (eval(eps) - eval(-eps)) / (2.0 * eps);
        var.set(&Tensor::from_vec(base, var.dims(), model.device()).unwrap())
            .unwrap();
        let rel = (analytic - numeric).abs() / analytic.abs().max(numeric.abs()).max(1e-12);
        assert!(
            rel < 1e-4,
            "{name}[{i}]: analytic {analytic:e} numeric {numeric:e}"
        );
        assert!(analytic.abs() > 1e-10, "{name}[{i}]: zero gradient");
    }
}

#[test]
fn fresh_adapters_leave_the_model_unchanged_and_off_means_base() {
    let base = load("tiny-qwen2_5_vl", DType::F32);
    let mut model = load("tiny-qwen2_5_vl", DType::F32);
    model
        .add_lora(&LoraConfig {
            rank: 4,
            ..Default::default()
        })
        .unwrap();
    let seqs = vl_sequences();
    let want = completion_logprobs(&base, &seqs, 1.0, false, false)
        .unwrap()
        .logprobs;
    let got = completion_logprobs(&model, &seqs, 1.0, false, false)
        .unwrap()
        .logprobs;
    let d = (&want - &got)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(d < 1e-6, "B = 0 must not change the model ({d})");
    // Move the adapters; with them off the model is exactly the base again.
    let vl = vl_with_lora(DType::F32);
    let on = completion_logprobs(&vl, &seqs, 1.0, false, false)
        .unwrap()
        .logprobs;
    let off = vl
        .with_adapters_disabled(|m| completion_logprobs(m, &seqs, 1.0, false, false))
        .unwrap()
        .logprobs;
    let d_on = (&want - &on)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    let d_off = (&want - &off)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(d_on > 1e-5, "the moved adapters change the log-probs");
    assert_eq!(d_off, 0.0, "adapters off must be the base model exactly");
    // The adapters come back on after the closure.
    let again = completion_logprobs(&vl, &seqs, 1.0, false, false)
        .unwrap()
        .logprobs;
    let d = (&on - &again)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert_eq!(d, 0.0);
}
