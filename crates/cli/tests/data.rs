//! `mixed-r1 data …` as users run it: the real binary synthesises a set, validates and inspects
//! it, builds a dataset from a recipe, and reports a missing input clearly.

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mixed-r1"))
}

fn run(args: &[&str]) -> std::process::Output {
    bin().args(args).output().unwrap()
}

#[test]
fn synth_validate_inspect_build() {
    let dir = tempfile::tempdir().unwrap();
    let synth = dir.path().join("synth");
    let out = run(&[
        "data",
        "synth",
        "--out",
        synth.to_str().unwrap(),
        "--count",
        "300",
        "--seed",
        "3",
        "--quiet",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let samples = synth.join("samples.jsonl");
    let lines = std::fs::read_to_string(&samples).unwrap();
    assert_eq!(lines.lines().count(), 300);

    // Everything the generator writes validates: images exist and decode, answers parse.
    let rejects = dir.path().join("rejects.jsonl");
    let out = run(&[
        "data",
        "validate",
        samples.to_str().unwrap(),
        "--rejects",
        rejects.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let out = run(&["data", "inspect", samples.to_str().unwrap()]);
    assert!(out.status.success());
    let report = String::from_utf8_lossy(&out.stdout);
    for task in ["yes_no", "mcq", "chart", "grounding", "open_ended"] {
        assert!(
            report.contains(task),
            "{task} missing from inspect:\n{report}"
        );
    }

    // A build from a recipe: the synthetic set plus a dirty file, mixed to an exact total.
    let dirty = dir.path().join("dirty.jsonl");
    std::fs::write(
        &dirty,
        "{\"id\": \"ok\", \"task\": \"yes_no\", \"problem\": \"Is it?\", \"answer\": \"yes\"}\n\
         {not json\n\
         {\"id\": \"bad\", \"task\": \"yes_no\", \"problem\": \"Is it?\", \"answer\": \"maybe\"}\n",
    )
    .unwrap();
    let build = dir.path().join("build");
    let recipe = dir.path().join("recipe.toml");
    std::fs::write(
        &recipe,
        format!(
            "[[source]]\nname = \"synth\"\nformat = \"jsonl\"\npath = {:?}\n\n\
             [[source]]\nname = \"dirty\"\nformat = \"jsonl\"\npath = {:?}\n\n\
             [mix]\ntotal = 100\nseed = 1\n[mix.tasks]\nyes_no = 0.5\nmcq = 0.25\nchart = 0.25\n\n\
             [output]\ndir = {:?}\nformats = [\"jsonl\", \"verl\"]\n",
            samples, dirty, build
        ),
    )
    .unwrap();
    let out = run(&[
        "data",
        "build",
        "--recipe",
        recipe.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let train = std::fs::read_to_string(build.join("train.jsonl")).unwrap();
    assert_eq!(train.lines().count(), 100);
    assert!(build.join("train.verl.parquet").exists());
    assert!(build.join("card.md").exists());
    let rejected = std::fs::read_to_string(build.join("rejected.jsonl")).unwrap();
    assert_eq!(rejected.lines().count(), 2, "{rejected}");
    assert!(rejected.contains("dirty.jsonl"));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(build.join("report.json")).unwrap()).unwrap();
    let counts = &report["counts"];
    assert_eq!(counts["input"], 303, "{report}");
    assert_eq!(counts["kept"], 100);
    assert_eq!(counts["rejected"], 2);
    let sum: u64 = [
        "kept",
        "rejected",
        "deduplicated",
        "filtered",
        "not_selected",
    ]
    .iter()
    .map(|k| counts[*k].as_u64().unwrap())
    .sum();
    assert_eq!(sum, 303);
    assert_eq!(report["balanced"], true);
}

#[test]
fn missing_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = dir.path().join("recipe.toml");
    std::fs::write(
        &recipe,
        "[[source]]\nformat = \"jsonl\"\npath = \"/no/such/input.jsonl\"\n[mix]\ntotal = 1\n[mix.tasks]\nyes_no = 1.0\n",
    )
    .unwrap();
    let out = run(&[
        "data",
        "build",
        "--recipe",
        recipe.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/input.jsonl"));
    let out = run(&["data", "inspect", "/no/such/file.jsonl"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/file.jsonl"));
}
