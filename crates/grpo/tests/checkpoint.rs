//! Checkpoints: atomic directory writes, the `latest` pointer, crash leftovers, pruning, and an
//! exact resume of optimizer and RNG state.

use std::fs;
use std::path::Path;

use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor, Var};
use mixed_r1_grpo::checkpoint::{
    latest_checkpoint, list_checkpoints, load_checkpoint, save_checkpoint, CheckpointData,
    RngState, TrainerState,
};
use mixed_r1_grpo::optim::{AdamW, AdamWConfig};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

fn write_weights(w: &Var) -> impl FnOnce(&Path) -> anyhow::Result<()> + '_ {
    move |dir: &Path| {
        candle_core::safetensors::save(
            &[("w".to_string(), w.as_tensor().clone())]
                .into_iter()
                .collect(),
            dir.join("model.safetensors"),
        )?;
        Ok(())
    }
}

fn step_opt(opt: &mut AdamW, w: &Var, g: [f32; 2]) {
    let mut grads = GradStore::default();
    grads.insert(
        w.as_tensor(),
        Tensor::from_slice(&g, 2, &Device::Cpu).unwrap(),
    );
    opt.step(&grads).unwrap();
}

#[test]
fn rng_state_round_trip() {
    let mut rng = ChaCha8Rng::seed_from_u64(1234);
    for _ in 0..37 {
        let _: u32 = rng.random();
    }
    let state = RngState::from_chacha8(&rng);
    let json = serde_json::to_string(&state).unwrap();
    let back: RngState = serde_json::from_str(&json).unwrap();
    let mut restored = back.to_chacha8().unwrap();
    let a: Vec<u64> = (0..10).map(|_| rng.random()).collect();
    let b: Vec<u64> = (0..10).map(|_| restored.random()).collect();
    assert_eq!(a, b);
    assert!(back.to_chacha20().is_err(), "algorithm is checked");
    let mut r20 = rand_chacha::ChaCha20Rng::seed_from_u64(9);
    let _: u64 = r20.random();
    let mut r20b = RngState::from_chacha20(&r20).to_chacha20().unwrap();
    assert_eq!(r20.random::<u64>(), r20b.random::<u64>());
}

#[test]
fn save_resume_is_exact_and_crash_leftovers_are_ignored() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let d = Device::Cpu;
    let w = Var::from_slice(&[1.0f32, -2.0], 2, &d).unwrap();
    let cfg = AdamWConfig {
        lr: 0.01,
        ..Default::default()
    };
    let mut opt = AdamW::new(vec![("w".into(), w.clone())], cfg.clone()).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut metrics = Vec::new();
    for step in 1..=2u64 {
        let g = [
            rng.random_range(-1.0f32..1.0),
            rng.random_range(-1.0f32..1.0),
        ];
        step_opt(&mut opt, &w, g);
        metrics.push(json!({"step": step, "loss": 0.5 / step as f64}));
        let state = TrainerState::new(step, RngState::from_chacha8(&rng));
        let data = CheckpointData {
            state: &state,
            optimizer: Some(&opt),
            metrics: &metrics,
        };
        let dir = save_checkpoint(root, &data, write_weights(&w), None).unwrap();
        assert_eq!(dir, root.join(format!("checkpoint-{step}")));
    }
    assert_eq!(
        fs::read_to_string(root.join("latest")).unwrap().trim(),
        "checkpoint-2"
    );

    // Simulated crash while writing step 3: a half-written temporary directory.
    let tmp = root.join("checkpoint-3.tmp-999999");
    fs::create_dir(&tmp).unwrap();
    fs::write(tmp.join("model.safetensors"), b"partial").unwrap();
    assert_eq!(
        latest_checkpoint(root).unwrap().unwrap(),
        root.join("checkpoint-2")
    );
    assert_eq!(list_checkpoints(root).unwrap().len(), 2);

    // The run continues in memory to step 3 ...
    let g3 = [
        rng.random_range(-1.0f32..1.0),
        rng.random_range(-1.0f32..1.0),
    ];
    step_opt(&mut opt, &w, g3);
    let after_uninterrupted = w.as_tensor().to_vec1::<f32>().unwrap();

    // ... while a resumed process loads checkpoint-2 into a fresh model and optimizer.
    let dir = latest_checkpoint(root).unwrap().unwrap();
    let saved = candle_core::safetensors::load(dir.join("model.safetensors"), &d).unwrap();
    let w2 = Var::from_tensor(&saved["w"]).unwrap();
    let mut opt2 = AdamW::new(vec![("w".into(), w2.clone())], cfg).unwrap();
    let loaded = load_checkpoint(&dir, Some(&mut opt2)).unwrap();
    assert_eq!(loaded.state.step, 2);
    assert_eq!(loaded.metrics, metrics);
    let mut rng2 = loaded.state.rng.to_chacha8().unwrap();
    let g3b = [
        rng2.random_range(-1.0f32..1.0),
        rng2.random_range(-1.0f32..1.0),
    ];
    assert_eq!(g3, g3b, "RNG resumes at the same position");
    step_opt(&mut opt2, &w2, g3b);
    assert_eq!(
        w2.as_tensor().to_vec1::<f32>().unwrap(),
        after_uninterrupted,
        "resumed step is bit-identical"
    );

    // The resumed run's next save completes step 3 and clears the crashed run's leftover.
    let state = TrainerState::new(3, RngState::from_chacha8(&rng2));
    let data = CheckpointData {
        state: &state,
        optimizer: Some(&opt2),
        metrics: &metrics,
    };
    save_checkpoint(root, &data, write_weights(&w2), None).unwrap();
    assert!(!tmp.exists());
    assert_eq!(
        latest_checkpoint(root).unwrap().unwrap(),
        root.join("checkpoint-3")
    );
}

#[test]
fn pointer_lagging_behind_and_pruning() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let rng = ChaCha8Rng::seed_from_u64(0);
    let no_model = |_: &Path| -> Result<(), String> { Ok(()) };
    for step in [10u64, 20, 30] {
        let state = TrainerState::new(step, RngState::from_chacha8(&rng));
        let data = CheckpointData {
            state: &state,
            optimizer: None,
            metrics: &[],
        };
        save_checkpoint(root, &data, no_model, Some(2)).unwrap();
    }
    let steps: Vec<u64> = list_checkpoints(root)
        .unwrap()
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(steps, vec![20, 30], "keep_last = 2");
    // Crash between the directory rename and the pointer update: the pointer still names 20
    // but 30 is complete; resume takes the newest complete one.
    fs::write(root.join("latest"), "checkpoint-20\n").unwrap();
    assert_eq!(
        latest_checkpoint(root).unwrap().unwrap(),
        root.join("checkpoint-30")
    );
    // A dangling or garbage pointer falls back to scanning.
    fs::write(root.join("latest"), "checkpoint-99\n").unwrap();
    assert_eq!(
        latest_checkpoint(root).unwrap().unwrap(),
        root.join("checkpoint-30")
    );
    // Re-saving an existing step replaces it.
    let state = TrainerState::new(30, RngState::from_chacha8(&rng));
    let mut st2 = state.clone();
    st2.extra = json!({"epoch": 2});
    let data = CheckpointData {
        state: &st2,
        optimizer: None,
        metrics: &[],
    };
    save_checkpoint(root, &data, no_model, None).unwrap();
    let loaded = load_checkpoint(&root.join("checkpoint-30"), None).unwrap();
    assert_eq!(loaded.state.extra, json!({"epoch": 2}));
    assert!(fs::read_dir(root).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .contains(".old-")));
    // An empty root has no checkpoint.
    let empty = tempfile::tempdir().unwrap();
    assert!(latest_checkpoint(empty.path()).unwrap().is_none());
}

#[test]
fn failing_model_writer_leaves_previous_checkpoint() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let rng = ChaCha8Rng::seed_from_u64(0);
    let ok = |_: &Path| -> Result<(), String> { Ok(()) };
    let state = TrainerState::new(1, RngState::from_chacha8(&rng));
    let data = CheckpointData {
        state: &state,
        optimizer: None,
        metrics: &[],
    };
    save_checkpoint(root, &data, ok, None).unwrap();
    let state2 = TrainerState::new(2, RngState::from_chacha8(&rng));
    let data2 = CheckpointData {
        state: &state2,
        optimizer: None,
        metrics: &[],
    };
    let fail = |_: &Path| -> Result<(), String> { Err("disk full".into()) };
    let e = save_checkpoint(root, &data2, fail, None).unwrap_err();
    assert!(e.to_string().contains("disk full"), "{e}");
    assert_eq!(
        latest_checkpoint(root).unwrap().unwrap(),
        root.join("checkpoint-1")
    );
    assert!(!root.join("checkpoint-2").exists());
    assert_eq!(
        fs::read_dir(root).unwrap().count(),
        2,
        "only checkpoint-1 and latest: the failed save cleaned up its temporary folder"
    );
}
