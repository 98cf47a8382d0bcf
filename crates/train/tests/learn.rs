//! End to end on a tiny Qwen2 with the real Qwen tokenizer: a trivially learnable task where
//! GRPO must raise the reward; resume equals an uninterrupted run; checkpoints load back.

mod common;
use common::{copy, sample, tokenizer};

use indicatif::ProgressBar;
use mixed_r1_data::prompt::PromptTemplate;
use mixed_r1_data::Sample;
use mixed_r1_model::model::{LoadOptions, Model};
use mixed_r1_reward::sample::Answer;
use mixed_r1_train::config::TrainConfig;
use mixed_r1_train::prompts::PromptMaker;
use mixed_r1_train::{sft, tiny, Trainer};

/// The resume check's run: 4 steps.
fn full_cfg(out: &std::path::Path) -> TrainConfig {
    let mut cfg = config(out);
    cfg.total_steps = 4;
    cfg
}

fn config(out: &std::path::Path) -> TrainConfig {
    TrainConfig {
        output_dir: out.to_path_buf(),
        group_size: 8,
        batch_prompts: 2,
        max_completion_len: 24,
        temperature: 1.0,
        beta: 0.0,
        lr: 5e-4,
        warmup_steps: 0,
        weight_decay: 0.0,
        total_steps: 6,
        save_every: 0,
        tensorboard: false,
        ..Default::default()
    }
}

/// A policy that answers "yes" or "no" about equally often: SFT on labels that disagree.
fn warm_policy(train: &[Sample]) -> Model {
    let model = tiny::build("tiny-qwen2", &tokenizer(), 1, &LoadOptions::default()).unwrap();
    let noisy: Vec<Sample> = train
        .iter()
        .enumerate()
        .map(|(i, s)| Sample {
            answer: Answer::Text(if i % 2 == 0 { "yes" } else { "no" }.into()),
            ..s.clone()
        })
        .collect();
    let mut maker = PromptMaker::new(PromptTemplate::default(), Default::default());
    let cfg = sft::SftConfig {
        steps: 40,
        batch: 8,
        lr: 5e-3,
        ..Default::default()
    };
    let losses = sft::train(&model, &noisy, &mut maker, &cfg, &ProgressBar::hidden()).unwrap();
    assert!(
        losses.last().unwrap() < &losses[0],
        "SFT did not lower the loss: {losses:?}"
    );
    model
}

#[test]
fn grpo_raises_the_reward_on_a_learnable_task_and_resumes_exactly() {
    let train: Vec<Sample> = (0..8).map(|i| sample(i, "yes")).collect();
    let policy = warm_policy(&train);
    let dir = tempfile::tempdir().unwrap();

    // Mean reward of 64 sampled answers (8 prompts x 8), seeded: before and after GRPO.
    let measure = |m: &Model| mean_sampled_reward(m, &train);
    let before = measure(&policy);
    let mut cfg = config(&dir.path().join("full"));
    cfg.total_steps = 10;
    cfg.lr = 1e-3;
    let mut t = Trainer::new(cfg, copy(&policy), train.clone(), PromptTemplate::default()).unwrap();
    let mut rewards = Vec::new();
    t.train(|r| rewards.push(r.metrics["reward/mean"])).unwrap();
    let after = measure(&t.policy);
    assert!(
        after > before + 0.1,
        "reward did not rise: {before:.3} -> {after:.3} (per step {rewards:?})"
    );

    // Half, stop, resume, half: the same parameters and metrics.
    let half_dir = dir.path().join("half");
    let mut a = Trainer::new(
        full_cfg(&half_dir),
        copy(&policy),
        train.clone(),
        PromptTemplate::default(),
    )
    .unwrap();
    a.train_for(2, |_| {}).unwrap();
    drop(a);
    let mut b = Trainer::resume(
        full_cfg(&half_dir),
        train.clone(),
        PromptTemplate::default(),
        &LoadOptions::default(),
    )
    .unwrap();
    assert_eq!(b.step, 2);
    b.train(|_| {}).unwrap();
    let mut whole = Trainer::new(
        full_cfg(&dir.path().join("whole")),
        copy(&policy),
        train.clone(),
        PromptTemplate::default(),
    )
    .unwrap();
    whole.train(|_| {}).unwrap();
    let t = whole;
    let reward = |recs: &[serde_json::Value]| -> Vec<f64> {
        recs.iter()
            .map(|r| r["reward/mean"].as_f64().unwrap())
            .collect()
    };
    assert_eq!(reward(b.records()), reward(t.records()));
    for (name, var) in t.policy.params().all() {
        let other = b.policy.params().var(&name).unwrap();
        let d = (var.as_tensor() - other.as_tensor())
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert_eq!(d, 0.0, "{name} differs after resume");
    }

    // The final checkpoint loads back in the model crate with the same weights.
    let ckpt = mixed_r1_grpo::checkpoint::latest_checkpoint(&dir.path().join("whole"))
        .unwrap()
        .unwrap();
    let loaded = Model::load(&ckpt, &LoadOptions::default()).unwrap();
    assert_eq!(loaded.params().len(), t.policy.params().len());
}

/// Mean reward of 64 sampled answers (8 per prompt), seeded: the same draw before and after.
fn mean_sampled_reward(m: &Model, train: &[Sample]) -> f64 {
    let scorer = mixed_r1_reward::Scorer::new(Default::default()).unwrap();
    let mut maker = PromptMaker::new(PromptTemplate::default(), Default::default());
    let items: Vec<_> = train
        .iter()
        .enumerate()
        .map(|(i, s)| (i, s, maker.prompt(m, s).unwrap()))
        .collect();
    let sampling = mixed_r1_model::generate::SamplingConfig {
        max_new_tokens: 24,
        temperature: 1.0,
        seed: 99,
        ..Default::default()
    };
    let groups = mixed_r1_train::rollout::rollout(m, &scorer, &items, 8, &sampling).unwrap();
    let r: Vec<f32> = groups.iter().flat_map(|g| g.rewards.clone()).collect();
    r.iter().map(|&x| x as f64).sum::<f64>() / r.len() as f64
}

/// The LoRA run's settings: adapters on every projection, the KL to the adapters-off base on.
fn lora_cfg(out: &std::path::Path, steps: usize) -> TrainConfig {
    let mut cfg = config(out);
    cfg.total_steps = steps;
    cfg.lr = 5e-3;
    cfg.beta = 0.04;
    cfg.lora.rank = 8;
    cfg.lora.alpha = 16.0;
    cfg
}

#[test]
fn lora_grpo_raises_the_reward_trains_only_adapters_and_resumes_exactly() {
    let train: Vec<Sample> = (0..8).map(|i| sample(i, "yes")).collect();
    let policy = warm_policy(&train);
    let dir = tempfile::tempdir().unwrap();
    let measure = |m: &Model| mean_sampled_reward(m, &train);
    let before = measure(&policy);
    let run = dir.path().join("lora");
    let mut t = Trainer::new(
        lora_cfg(&run, 8),
        copy(&policy),
        train.clone(),
        PromptTemplate::default(),
    )
    .unwrap();
    // Only adapter tensors are handed to the optimiser.
    let trainable = t.policy.params().trainable();
    assert!(!trainable.is_empty());
    assert!(trainable
        .iter()
        .all(|(n, _)| mixed_r1_model::lora::is_adapter_tensor(n)));
    let mut kls = Vec::new();
    t.train(|r| kls.push(r.metrics.get("train/kl").copied().unwrap_or(f64::NAN)))
        .unwrap();
    let after = measure(&t.policy);
    assert!(
        after > before + 0.1,
        "LoRA GRPO did not raise the reward: {before:.3} -> {after:.3}"
    );
    // The KL to the adapters-off base starts at 0 and moves once the adapters do.
    assert!(kls[0].abs() < 1e-6, "first-step KL {}", kls[0]);
    assert!(kls.iter().any(|k| *k > 0.0), "KL never moved: {kls:?}");
    // Every base weight is bit for bit the starting model's; the adapters moved.
    let mut moved = 0;
    for (name, var) in t.policy.params().all() {
        if mixed_r1_model::lora::is_adapter_tensor(&name) {
            if name.ends_with(".lora_B.weight") {
                let s = var
                    .as_tensor()
                    .abs()
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap();
                moved += usize::from(s > 0.0);
            }
            continue;
        }
        let start = policy.params().var(&name).unwrap();
        let d = (var.as_tensor() - start.as_tensor())
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert_eq!(d, 0.0, "base weight {name} changed under LoRA");
    }
    assert!(moved > 0, "no adapter moved off zero");
    // The checkpoint is a PEFT adapter folder that loads (through base_model_name_or_path)
    // to the trained policy's logits.
    let ckpt = mixed_r1_grpo::checkpoint::latest_checkpoint(&run)
        .unwrap()
        .unwrap();
    assert!(ckpt.join("adapter_config.json").is_file());
    assert!(ckpt.join("adapter_model.safetensors").is_file());
    assert!(!ckpt.join("model.safetensors").exists());
    let loaded = Model::load(&ckpt, &LoadOptions::default()).unwrap();
    let batch = mixed_r1_model::model::Batch::left_padded(&[vec![5, 6, 7, 8]], 0);
    let d = (loaded.logits(&batch, false).unwrap() - t.policy.logits(&batch, false).unwrap())
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(d < 1e-5, "reloaded LoRA checkpoint differs by {d}");

    // Resume: 2 steps, stop, 2 more = 4 uninterrupted steps, adapters and metrics alike.
    let half = dir.path().join("half");
    let mut a = Trainer::new(
        lora_cfg(&half, 4),
        copy(&policy),
        train.clone(),
        PromptTemplate::default(),
    )
    .unwrap();
    a.train_for(2, |_| {}).unwrap();
    drop(a);
    let mut b = Trainer::resume(
        lora_cfg(&half, 4),
        train.clone(),
        PromptTemplate::default(),
        &LoadOptions::default(),
    )
    .unwrap();
    assert_eq!(b.step, 2);
    b.train(|_| {}).unwrap();
    let mut whole = Trainer::new(
        lora_cfg(&dir.path().join("whole-lora"), 4),
        copy(&policy),
        train.clone(),
        PromptTemplate::default(),
    )
    .unwrap();
    whole.train(|_| {}).unwrap();
    let reward = |recs: &[serde_json::Value]| -> Vec<f64> {
        recs.iter()
            .map(|r| r["reward/mean"].as_f64().unwrap())
            .collect()
    };
    assert_eq!(reward(b.records()), reward(whole.records()));
    for (name, var) in whole.policy.params().trainable() {
        let other = b.policy.params().var(&name).unwrap();
        let d = (var.as_tensor() - other.as_tensor())
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert_eq!(d, 0.0, "{name} differs after a LoRA resume");
    }
}
