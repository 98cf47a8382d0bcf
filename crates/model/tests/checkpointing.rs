//! Gradient checkpointing and mixed precision on the training forward.
//!
//! Checkpointing recomputes each decoder layer in backward, so every trainable tensor's
//! gradient must equal the plain path's (f32, relative 1e-5: the same ops in the same order,
//! only run twice) — full fine-tuning of Qwen2.5-VL with an image (the vision tower trains and
//! runs unchanged: checkpointing covers the decoder layers), and LoRA with dropout (the recompute
//! must draw the same masks). Mixed precision: bf16 working weights with f32 masters.

mod common;

use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor};
use common::*;
use mixed_r1_model::logprobs::{completion_logprobs, Sequence};
use mixed_r1_model::model::{ImageInputs, LoadOptions, Model};
use mixed_r1_model::LoraConfig;

fn vl() -> Model {
    Model::load(&fixtures().join("tiny-qwen2_5_vl"), &LoadOptions::default()).unwrap()
}

fn sequences() -> Vec<Sequence> {
    let image = ImageInputs {
        pixel_values: tensors()["processor.img_84x56.pixel_values"].clone(),
        grids: vec![[1, 4, 6]],
    };
    let mut with_image = vec![11, 12, 502];
    with_image.extend([500; 6]);
    with_image.extend([503, 13, 14]);
    vec![
        Sequence {
            prompt: with_image,
            completion: vec![40, 41, 42, 43],
            images: Some(image),
        },
        Sequence {
            prompt: vec![21, 22, 23, 24, 25],
            completion: vec![50, 51],
            images: None,
        },
    ]
}

/// A policy-gradient-shaped loss, in f32 whatever the model's dtype.
fn loss(model: &Model) -> Tensor {
    let out = completion_logprobs(model, &sequences(), 1.0, true, false).unwrap();
    assert_eq!(
        out.logprobs.dtype(),
        DType::F32,
        "log-probs are taken in f32"
    );
    let adv = Tensor::new(&[[1.0f32], [-0.5]], model.device()).unwrap();
    out.logprobs
        .broadcast_mul(&adv)
        .unwrap()
        .sum_all()
        .unwrap()
        .neg()
        .unwrap()
}

fn grads(model: &Model, seed: u64) -> (f32, GradStore) {
    model.reseed_lora_dropout(seed);
    let l = loss(model);
    let g = model.backward(&l).unwrap();
    (l.to_scalar::<f32>().unwrap(), g)
}

fn max_rel(a: &Tensor, b: &Tensor) -> f32 {
    let a = a.to_dtype(DType::F32).unwrap();
    let b = b.to_dtype(DType::F32).unwrap();
    let diff = (&a - &b).unwrap().abs().unwrap().max_all().unwrap();
    let scale = b
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    diff.to_scalar::<f32>().unwrap() / scale.max(1e-12)
}

/// Checkpointed vs plain gradients of every trainable tensor.
fn assert_same_grads(model: &mut Model, seed: u64) -> usize {
    model.set_gradient_checkpointing(false);
    let (l_plain, plain) = grads(model, seed);
    model.set_gradient_checkpointing(true);
    assert!(model.gradient_checkpointing());
    let (l_ckpt, ckpt) = grads(model, seed);
    assert!((l_plain - l_ckpt).abs() <= 1e-6 * l_plain.abs().max(1.0));
    let trainable = model.params().trainable();
    assert!(!trainable.is_empty());
    for (name, var) in &trainable {
        let p = plain
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("{name}: no plain gradient"));
        let c = ckpt
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("{name}: no gradient with checkpointing"));
        let r = max_rel(c, p);
        assert!(r < 1e-5, "{name}: relative difference {r}");
    }
    // The side store was emptied by `backward`: nothing leaks into the next step.
    let (_, again) = grads(model, seed);
    for (name, var) in &trainable {
        let r = max_rel(
            again.get(var.as_tensor()).unwrap(),
            ckpt.get(var.as_tensor()).unwrap(),
        );
        assert!(r < 1e-6, "{name}: a second backward differs by {r}");
    }
    trainable.len()
}

#[test]
fn checkpointed_gradients_equal_the_plain_ones_full_finetune_with_image() {
    let mut model = vl();
    let n = assert_same_grads(&mut model, 0);
    assert_eq!(
        n,
        model.params().len(),
        "vision tower and decoder all train"
    );
}

#[test]
fn checkpointed_gradients_equal_the_plain_ones_with_lora_and_dropout() {
    let mut model = vl();
    model
        .add_lora(&LoraConfig {
            rank: 4,
            dropout: 0.1,
            seed: 3,
            ..Default::default()
        })
        .unwrap();
    // B starts at zero, which would make A's gradient zero: give B values first.
    for (name, var) in model.params().trainable() {
        if name.ends_with("lora_B.weight") {
            let t = Tensor::randn(0f32, 0.02, var.dims(), var.device()).unwrap();
            var.set(&t).unwrap();
        }
    }
    let n = assert_same_grads(&mut model, 42);
    assert!(
        n > 0
            && model
                .params()
                .trainable()
                .iter()
                .all(|(n, _)| n.contains("lora_"))
    );
}

#[test]
fn bf16_keeps_f32_masters_and_saves_them() {
    let f32_model = vl();
    let l32 = loss(&f32_model).to_scalar::<f32>().unwrap();
    let mut model = vl();
    assert!(model.enable_master_weights(DType::BF16).unwrap());
    assert_eq!(model.dtype(), DType::BF16);
    let masters = model.master_weights().unwrap();
    assert_eq!(masters.len(), model.params().trainable().len());
    for (name, m) in masters.named() {
        assert_eq!(m.dtype(), DType::F32, "{name}");
        // Started from the f32 weights as loaded, not from their bf16 rounding.
        let src = f32_model.params().var(&name).unwrap();
        assert_eq!(max_rel(m.as_tensor(), src.as_tensor()), 0.0, "{name}");
    }
    // The bf16 forward's loss is the f32 one within bf16 rounding (8-bit mantissa).
    model.set_gradient_checkpointing(true);
    let l16 = loss(&model);
    let rel = ((l16.to_scalar::<f32>().unwrap() - l32) / l32).abs();
    assert!(rel < 2e-2, "bf16 loss off by {rel}");
    // Gradients arrive in bf16 and are re-keyed onto the masters in f32.
    let g = model
        .optimizer_grads(model.backward(&l16).unwrap())
        .unwrap();
    for (name, m) in model.optimizer_params() {
        let gm = g
            .get(m.as_tensor())
            .unwrap_or_else(|| panic!("{name}: no master gradient"));
        assert_eq!(gm.dtype(), DType::F32);
        assert_eq!(gm.dims(), m.dims());
    }
    // Saved as the f32 masters (torch_dtype float32): reloading in f32 gives them bit for bit.
    let dir = tempfile::tempdir().unwrap();
    model.save(dir.path()).unwrap();
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("config.json")).unwrap())
            .unwrap();
    assert_eq!(cfg["torch_dtype"], "float32");
    let back = Model::load(dir.path(), &LoadOptions::default()).unwrap();
    assert_eq!(back.dtype(), DType::F32);
    for (name, m) in model.master_weights().unwrap().named() {
        let t = back.params().var(&name).unwrap();
        assert_eq!(max_rel(t.as_tensor(), m.as_tensor()), 0.0, "{name}");
    }
    // A master step reaches the bf16 working copy only through `sync_master_weights`.
    let (name, m) = &model.optimizer_params()[0];
    m.set(&(m.as_tensor() + 1.0).unwrap()).unwrap();
    model.sync_master_weights().unwrap();
    let w = model.params().var(name).unwrap();
    let want = m.as_tensor().to_dtype(DType::BF16).unwrap();
    assert_eq!(max_rel(w.as_tensor(), &want), 0.0);
}
