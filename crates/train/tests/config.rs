//! `TrainConfig`: defaults, a full TOML file, unknown keys, and validation messages that name
//! the offending key.

use std::path::PathBuf;

use mixed_r1_grpo::loss::{Aggregation, KlEstimator};
use mixed_r1_grpo::optim::ScheduleKind;
use mixed_r1_train::config::TrainConfig;

#[test]
fn defaults_are_valid_and_round_trip_through_toml() {
    let cfg = TrainConfig::default();
    cfg.validate().unwrap();
    assert_eq!(cfg.group_size, 8);
    assert_eq!(cfg.adv_estimator, "grpo");
    assert_eq!(cfg.kl, KlEstimator::K3);
    let text = cfg.to_toml_string().unwrap();
    let back = TrainConfig::from_toml_str(&text).unwrap();
    assert_eq!(back, cfg);
    // An empty file is the defaults.
    assert_eq!(TrainConfig::from_toml_str("").unwrap(), cfg);
    // Training additionally needs a model and data.
    let e = cfg.validate_for_training().unwrap_err().to_string();
    assert!(e.contains("model"), "{e}");
}

#[test]
fn full_file_parses() {
    let cfg = TrainConfig::from_toml_str(
        r#"
        seed = 7
        group_size = 4
        batch_prompts = 2
        adv_estimator = "gdpo"
        loss = "gspo"
        aggregation = "seq_mean_token_sum_norm"
        eps_low = 0.0003
        eps_high = 0.0004
        dual_clip = 3.0
        beta = 0.0
        kl = "k1"
        mu = 2
        grad_accum = 4
        dynamic_sampling = true
        std_floor = 0.05
        max_refill_rounds = 5
        lr = 2e-6
        lr_schedule = "constant"
        warmup_steps = 0
        max_completion_len = 256

        [model]
        tiny = "qwen2_tiny"
        [data]
        train = "train.jsonl"
        [reward]
        format_weight = 0.25
        [reward.format]
        mode = "boxed"
        "#,
    )
    .unwrap();
    assert_eq!(cfg.aggregation, Aggregation::SeqMeanTokenSumNorm);
    assert_eq!(cfg.lr_schedule, ScheduleKind::Constant);
    assert_eq!(cfg.dual_clip, Some(3.0));
    assert_eq!(cfg.reward.format_weight, 0.25);
    assert!(!cfg.needs_reference());
    let loss = cfg.loss_config();
    assert_eq!(
        (loss.eps_low, loss.eps_high, loss.max_len),
        (0.0003, 0.0004, Some(256))
    );
    // The schedule counts optimizer steps: mu per training step.
    let s = cfg.lr_schedule();
    assert_eq!(s.total_steps, cfg.total_steps * 2);
    cfg.validate_for_training().unwrap();
}

#[test]
fn unknown_keys_are_errors() {
    for text in [
        "bta = 0.0",
        "[model]\npaht = \"x\"",
        "[reward]\nformat_wieght = 1.0",
    ] {
        let e = TrainConfig::from_toml_str(text).unwrap_err().to_string();
        assert!(e.contains("unknown field"), "{text}: {e}");
    }
}

#[test]
fn validation_names_the_key() {
    let cases = [
        ("group_size = 1", "group_size"),
        ("group_size = 0", "group_size"),
        ("adv_estimator = \"gae\"", "adv_estimator"),
        ("loss = \"cispo\"", "loss"),
        ("eps_low = 1.5", "eps_low"),
        ("eps_high = -0.1", "eps_high"),
        ("beta = -1.0", "beta"),
        ("dual_clip = 0.5", "dual_clip"),
        ("temperature = 0.0", "temperature"),
        ("top_p = 0.0", "top_p"),
        ("lr = 0.0", "lr"),
        ("min_lr_ratio = 2.0", "min_lr_ratio"),
        ("warmup_steps = 1000\ntotal_steps = 10", "warmup_steps"),
        ("adam_beta2 = 1.0", "adam_beta2"),
        ("adam_eps = 0.0", "adam_eps"),
        ("max_grad_norm = -1.0", "max_grad_norm"),
        ("mu = 0", "mu"),
        ("[model]\npath = \"a\"\ntiny = \"b\"", "model"),
        ("[model]\ndtype = \"f64\"", "model.dtype"),
        ("[model]\ndevice = \"tpu\"", "model.device"),
        ("[reward]\naccuracy_weight = nan", "reward"),
    ];
    for (text, key) in cases {
        let e = TrainConfig::from_toml_str(text).unwrap_err().to_string();
        assert!(e.contains(&format!("{key}:")), "`{text}` -> {e}");
    }
    // 0 extra rounds = filter only.
    TrainConfig::from_toml_str("max_refill_rounds = 0").unwrap();
    // reinforce_pp has no groups, so a group of one is allowed.
    TrainConfig::from_toml_str("group_size = 1\nadv_estimator = \"reinforce_pp\"").unwrap();
}

#[test]
fn file_paths_resolve_against_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("train.toml");
    std::fs::write(
        &path,
        "output_dir = \"runs/x\"\n[model]\npath = \"models/m\"\n[data]\ntrain = \"/abs/t.jsonl\"\n",
    )
    .unwrap();
    let cfg = TrainConfig::from_file(&path).unwrap();
    assert_eq!(cfg.model.path, Some(dir.path().join("models/m")));
    assert_eq!(cfg.data.train, Some(PathBuf::from("/abs/t.jsonl")));
    assert_eq!(
        cfg.output_dir,
        PathBuf::from("runs/x"),
        "output_dir stays CWD-relative"
    );
    std::fs::write(&path, "beta = -2.0\n").unwrap();
    let e = TrainConfig::from_file(&path).unwrap_err().to_string();
    assert!(e.contains("train.toml") && e.contains("beta:"), "{e}");
}

/// Resuming: run length, logging and memory settings may change; anything that changes the
/// maths (lr, the reward, LoRA, the data) is listed as `key: saved -> new`.
#[test]
fn resume_changes_list_only_what_changes_the_run() {
    let saved = TrainConfig::default();
    let mut same = saved.clone();
    same.total_steps = 10_000;
    same.save_every = 7;
    same.gradient_checkpointing = true;
    same.model.device = "cuda:0".into();
    assert!(same.resume_changes(&saved).unwrap().is_empty());

    let mut changed = same.clone();
    changed.lr = 3e-6;
    changed.lora.rank = 8;
    changed.reward.format_weight = 0.25;
    changed.data.train = Some(PathBuf::from("other.jsonl"));
    let diff = changed.resume_changes(&saved).unwrap();
    assert_eq!(diff.len(), 4, "{diff:?}");
    assert!(diff.iter().any(|d| d.starts_with("lr: ")), "{diff:?}");
    assert!(
        diff.iter().any(|d| d.starts_with("lora.rank: 0 -> 8")),
        "{diff:?}"
    );
    assert!(
        diff.iter().any(|d| d.starts_with("reward.format_weight:")),
        "{diff:?}"
    );
    assert!(
        diff.contains(&"data.train: (unset) -> \"other.jsonl\"".to_string()),
        "{diff:?}"
    );
}

#[test]
fn gdpo_component_weights_come_from_the_config() {
    let cfg = TrainConfig::from_toml_str(
        "adv_estimator = \"gdpo\"\ngdpo_component_weights = [0.5, 2.0]\n",
    )
    .unwrap();
    assert_eq!(
        cfg.advantage_config().component_weights,
        Some(vec![0.5, 2.0])
    );
    assert_eq!(
        TrainConfig::default().advantage_config().component_weights,
        None
    );
    let bad = TrainConfig::from_toml_str("gdpo_component_weights = [1.0]\n").unwrap_err();
    assert!(bad.to_string().contains("gdpo_component_weights"), "{bad}");
}
