//! `mixed-r1 eval …` as users run it: the real binary scores given responses on the eval
//! crate's fixture set (all seven tasks), resumes, refuses other settings, compares two runs,
//! converts a benchmark, and names the file of a model folder that cannot load.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mixed-r1"))
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../eval/fixtures")
}

fn fx(p: &str) -> String {
    fixtures().join(p).to_str().unwrap().to_string()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn results(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap()
}

fn score_given(out: &Path, responses: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "eval".to_string(),
        "--data".into(),
        fx("set/mixed.jsonl"),
        "--responses".into(),
        responses.to_string(),
        "--out".into(),
        out.to_str().unwrap().into(),
        "--bmas-model".into(),
        fx("bmas"),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    bin().args(&args).output().unwrap()
}

#[test]
fn scores_given_responses_end_to_end_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = score_given(&out, &fx("set/responses.jsonl"), &["--batch-size", "4"]);
    assert!(o.status.success(), "{}", text(&o));
    let log = text(&o);
    assert!(
        log.contains("18 samples evaluated, 17 scored (1 not scored)"),
        "{log}"
    );
    assert!(log.contains("1 missing image"), "{log}");
    assert!(log.contains("responses.jsonl:4: invalid JSON"), "{log}");
    assert!(log.contains("grounding"), "{log}");
    let r = results(&out);
    assert_eq!(r["counts"]["scored"], 17);
    assert_eq!(r["counts"]["rows"], 21);
    assert_eq!(r["tasks"]["chart"]["relaxed_accuracy"], 2.0 / 3.0);
    assert_eq!(r["tasks"]["grounding"]["acc@0.5"], 2.0 / 3.0);
    assert_eq!(r["tasks"]["open_ended"]["rouge_l"], 0.75);
    for f in [
        "results.md",
        "samples.jsonl",
        "charts/overview.png",
        "charts/grounding.png",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }

    // The same command again: nothing to redo, the same metrics, two invocations recorded.
    let o = score_given(&out, &fx("set/responses.jsonl"), &["--quiet"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(o.stderr.is_empty(), "{}", text(&o));
    let again = results(&out);
    assert_eq!(again["tasks"], r["tasks"]);
    assert_eq!(again["timing"]["invocations"], 2);

    // Other settings into the same folder are refused, clearly, with exit status 2.
    let o = score_given(&out, &fx("set/responses.jsonl"), &["--seed", "3"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("differs in: seed"), "{}", text(&o));
}

#[test]
fn open_ended_without_embeddings_is_reported_not_scored() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = run(&[
        "eval",
        "--data",
        &fx("set/mixed.jsonl"),
        "--responses",
        &fx("set/responses.jsonl"),
        "--out",
        out.to_str().unwrap(),
        "--no-charts",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("embedding table"), "{}", text(&o));
    let r = results(&out);
    assert_eq!(r["counts"]["scored"], 15);
    assert_eq!(r["tasks"]["open_ended"]["not_scored"], 2);
    assert_eq!(r["tasks"]["open_ended"]["rouge_l"], 0.75);
    assert!(!out.join("charts").exists());
}

#[test]
fn compare_two_runs() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    assert!(score_given(&a, &fx("set/responses.jsonl"), &["-q"])
        .status
        .success());
    let better = dir.path().join("better.jsonl");
    std::fs::write(
        &better,
        std::fs::read_to_string(fixtures().join("set/responses.jsonl"))
            .unwrap()
            .replace("<answer>2018</answer>", "<answer>2019</answer>"),
    )
    .unwrap();
    assert!(score_given(&b, better.to_str().unwrap(), &["-q"])
        .status
        .success());
    let cmp = dir.path().join("cmp");
    let o = run(&[
        "eval",
        "--compare",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--out",
        cmp.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let md = String::from_utf8_lossy(&o.stdout);
    assert!(
        md.contains("| chart | relaxed acc | 66.7 | 100.0 | +33.3 |"),
        "{md}"
    );
    assert!(cmp.join("compare.json").is_file() && cmp.join("compare.png").is_file());
    let o = run(&["eval", "--compare", a.to_str().unwrap()]);
    assert!(!o.status.success());
}

#[test]
fn convert_mmbench_and_evaluate_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mmbench.jsonl");
    let o = run(&[
        "eval",
        "convert",
        "--format",
        "mmbench",
        &fx("mmbench/mmbench_dev_en.tsv"),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let log = text(&o);
    assert!(log.contains("converted 3 of 5 rows"), "{log}");
    assert!(log.contains("mmbench_dev_en.tsv:5: answer \"E\""), "{log}");
    assert!(log.contains("2 images written"), "{log}");
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 3);
    // The converted file is eval data as it is: answer every question with (A).
    let responses = dir.path().join("r.jsonl");
    std::fs::write(
        &responses,
        (0..3)
            .map(|i| {
                format!("{{\"id\": \"mmbench-{i}\", \"response\": \"<think>.</think><answer>(A)</answer>\"}}\n")
            })
            .collect::<String>(),
    )
    .unwrap();
    let res = dir.path().join("res");
    let o = run(&[
        "eval",
        "--data",
        out.to_str().unwrap(),
        "--responses",
        responses.to_str().unwrap(),
        "--out",
        res.to_str().unwrap(),
        "-q",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    // Gold answers B, A, A.
    assert_eq!(results(&res)["tasks"]["mcq"]["accuracy"], 2.0 / 3.0);

    let o = run(&[
        "eval",
        "convert",
        "--format",
        "pope",
        "/nonexistent.json",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("/nonexistent.json"), "{}", text(&o));
}

#[test]
fn a_model_folder_that_cannot_load_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    std::fs::create_dir(&model).unwrap();
    std::fs::write(model.join("config.json"), "{\"hidden_size\": ").unwrap();
    let o = run(&[
        "eval",
        "--data",
        &fx("set/mixed.jsonl"),
        "--model",
        model.to_str().unwrap(),
        "--out",
        dir.path().join("out").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let log = text(&o);
    assert!(
        log.contains("config.json") && log.contains("not valid JSON"),
        "{log}"
    );
    // Neither --model nor --responses: a clear usage error.
    let o = run(&[
        "eval",
        "--data",
        &fx("set/mixed.jsonl"),
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("--responses"), "{}", text(&o));
}
