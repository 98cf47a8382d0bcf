//! `model.dtype = "bf16"` (f32 masters) and `gradient_checkpointing` through the trainers, on a
//! tiny seeded Qwen2 with the real Qwen tokenizer.
//!
//! Tolerance: bf16 keeps 8 mantissa bits, so each weight and activation is off by up to 2^-9
//! (0.2%) relative; over two layers, the head and 5 steps the per-step SFT loss stays within
//! relative 2e-2 of the f32 run's (what TRL / verl users see between their f32 and bf16 runs).
//! GRPO rollouts sample different tokens in bf16, so GRPO is checked for exact resume instead.

mod common;
use common::{copy, sample, tokenizer};

use candle_core::DType;
use indicatif::ProgressBar;
use mixed_r1_data::prompt::PromptTemplate;
use mixed_r1_data::Sample;
use mixed_r1_model::model::{LoadOptions, Model};
use mixed_r1_train::config::TrainConfig;
use mixed_r1_train::prompts::PromptMaker;
use mixed_r1_train::{sft, tiny, Trainer};

fn noisy() -> Vec<Sample> {
    (0..8)
        .map(|i| sample(i, if i % 2 == 0 { "yes" } else { "no" }))
        .collect()
}

fn tiny_f32() -> Model {
    tiny::build("tiny-qwen2", &tokenizer(), 1, &LoadOptions::default()).unwrap()
}

fn run_sft(model: &Model, steps: usize) -> Vec<f64> {
    let mut maker = PromptMaker::new(PromptTemplate::default(), Default::default());
    let cfg = sft::SftConfig {
        steps,
        batch: 8,
        lr: 5e-3,
        ..Default::default()
    };
    sft::train(model, &noisy(), &mut maker, &cfg, &ProgressBar::hidden()).unwrap()
}

#[test]
fn bf16_sft_loss_follows_f32_and_masters_stay_f32() {
    let f32_losses = run_sft(&tiny_f32(), 5);
    let mut model = tiny_f32();
    assert!(model.enable_master_weights(DType::BF16).unwrap());
    model.set_gradient_checkpointing(true);
    let bf16_losses = run_sft(&model, 5);
    for (i, (a, b)) in f32_losses.iter().zip(&bf16_losses).enumerate() {
        let rel = ((a - b) / a).abs();
        assert!(
            rel < 2e-2,
            "step {i}: f32 {a} vs bf16 {b} (relative {rel}); all: {f32_losses:?} {bf16_losses:?}"
        );
    }
    assert!(
        bf16_losses[4] < bf16_losses[0],
        "bf16 SFT did not learn: {bf16_losses:?}"
    );
    assert_eq!(model.dtype(), DType::BF16);
    let masters = model.master_weights().unwrap();
    assert_eq!(masters.len(), model.params().trainable().len());
    for (name, m) in masters.named() {
        assert_eq!(m.dtype(), DType::F32, "{name}");
        // The working copy is the masters rounded to bf16.
        let w = model.params().var(&name).unwrap();
        let want = m.as_tensor().to_dtype(DType::BF16).unwrap();
        let d = (w.as_tensor().to_dtype(DType::F32).unwrap() - want.to_dtype(DType::F32).unwrap())
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert_eq!(d, 0.0, "{name}");
    }
}

fn grpo_cfg(out: &std::path::Path) -> TrainConfig {
    let mut cfg = TrainConfig {
        output_dir: out.to_path_buf(),
        group_size: 8,
        batch_prompts: 2,
        max_completion_len: 16,
        temperature: 1.0,
        beta: 0.04,
        lr: 1e-3,
        warmup_steps: 0,
        weight_decay: 0.0,
        total_steps: 4,
        save_every: 0,
        tensorboard: false,
        gradient_checkpointing: true,
        ..Default::default()
    };
    cfg.model.dtype = "bf16".into();
    cfg
}

fn max_diff(a: &candle_core::Tensor, b: &candle_core::Tensor) -> f32 {
    (a.to_dtype(DType::F32).unwrap() - b.to_dtype(DType::F32).unwrap())
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

#[test]
fn bf16_grpo_with_checkpointing_resumes_exactly_from_its_checkpoint() {
    let policy = tiny_f32();
    // Answers yes or no about equally often: groups with reward variance, so steps update.
    run_sft(&policy, 40);
    let train = noisy();
    let dir = tempfile::tempdir().unwrap();
    let bf16 = LoadOptions::default().with_dtype_name("bf16").unwrap();

    let half = dir.path().join("half");
    let mut a = Trainer::new(
        grpo_cfg(&half),
        copy(&policy),
        train.clone(),
        PromptTemplate::default(),
    )
    .unwrap();
    assert_eq!(a.policy.dtype(), DType::BF16);
    assert!(a.policy.gradient_checkpointing());
    a.train_for(2, |_| {}).unwrap();
    drop(a);
    let ckpt = mixed_r1_grpo::checkpoint::latest_checkpoint(&half)
        .unwrap()
        .unwrap();
    let cfg_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ckpt.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        cfg_json["torch_dtype"], "float32",
        "checkpoints hold the f32 masters"
    );
    let mut b = Trainer::resume(
        grpo_cfg(&half),
        train.clone(),
        PromptTemplate::default(),
        &bf16,
    )
    .unwrap();
    assert_eq!(b.step, 2);
    b.train(|_| {}).unwrap();

    let mut whole = Trainer::new(
        grpo_cfg(&dir.path().join("whole")),
        copy(&policy),
        train.clone(),
        PromptTemplate::default(),
    )
    .unwrap();
    whole.train(|_| {}).unwrap();
    let metric = |t: &Trainer, k: &str| -> Vec<f64> {
        t.records()
            .iter()
            .map(|r| r[k].as_f64().unwrap_or(f64::NAN))
            .collect()
    };
    for k in ["reward/mean", "train/loss", "train/grad_norm"] {
        let (x, y) = (metric(&b, k), metric(&whole, k));
        assert_eq!(format!("{x:?}"), format!("{y:?}"), "{k}");
    }
    // Some step took a real update (steps whose groups all tie are skipped: no gradient).
    assert!(metric(&whole, "train/grad_norm")
        .iter()
        .any(|g| g.is_finite() && *g > 0.0));
    let (mb, mw) = (
        b.policy.master_weights().unwrap(),
        whole.policy.master_weights().unwrap(),
    );
    assert_eq!(mb.len(), mw.len());
    for (name, m) in mw.named() {
        assert_eq!(m.dtype(), DType::F32);
        assert_eq!(
            max_diff(m.as_tensor(), mb.get(&name).unwrap().as_tensor()),
            0.0,
            "{name}"
        );
    }
    for (name, var) in whole.policy.params().all() {
        let other = b.policy.params().var(&name).unwrap();
        assert_eq!(
            max_diff(var.as_tensor(), other.as_tensor()),
            0.0,
            "{name} working copy"
        );
    }
}
