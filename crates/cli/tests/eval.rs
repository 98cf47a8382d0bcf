//! `mixed-r1 eval …` as users run it: the real binary scores given responses on the eval
//! crate's fixture set (all seven tasks), resumes, refuses other settings, compares two runs,
//! converts a benchmark, names the file of a model folder that cannot load, and takes its
//! settings from a run file (`--config`), with flags overriding it.

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

fn json_file(p: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

#[test]
fn eval_reads_a_run_file_and_flags_override_it() {
    let dir = tempfile::tempdir().unwrap();
    // A run file whose [data] heldout is the fixture set (no --data below), with non-default
    // [eval] seed / max_new_tokens, [prompt] instruction and [reward.chart] tolerance: 1% fails
    // the fixture's c1 (gold 23.5, answer 24), which the default 5% accepts.
    let run_toml = format!(
        "[data]\nheldout = '{}'\n\n[eval]\nseed = 7\nmax_new_tokens = 77\nbatch_size = 3\n\n\
         [prompt]\ninstruction = \"From the run file: answer in the tags.\"\n\n\
         [reward.chart]\ntolerance = 0.01\n",
        fx("set/mixed.jsonl")
    );
    let rf = dir.path().join("run.toml");
    std::fs::write(&rf, &run_toml).unwrap();
    let eval = |rf: &Path, out: &Path, extra: &[&str]| {
        let mut args = vec![
            "eval".to_string(),
            "--config".into(),
            rf.to_str().unwrap().into(),
            "--responses".into(),
            fx("set/responses.jsonl"),
            "--out".into(),
            out.to_str().unwrap().into(),
            "--no-charts".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        bin().args(&args).output().unwrap()
    };

    let out = dir.path().join("file");
    let o = eval(&rf, &out, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let r = results(&out);
    assert_eq!(r["counts"]["rows"], 21, "the data of [data] heldout");
    assert_eq!(r["counts"]["evaluated"], 18);
    assert_eq!(r["tasks"]["chart"]["relaxed_accuracy"], 1.0 / 3.0);
    let fp = json_file(&out.join("fingerprint.json"));
    assert_eq!(fp["seed"], 7);
    assert_eq!(fp["generation"]["max_new_tokens"], 77);
    assert_eq!(fp["generation"]["temperature"], 0.0);
    assert_eq!(
        fp["prompt"]["instruction"],
        "From the run file: answer in the tags."
    );
    assert_eq!(fp["reward"]["chart"]["tolerance"], 0.01);
    let samples = std::fs::read_to_string(out.join("samples.jsonl")).unwrap();
    let first: serde_json::Value = serde_json::from_str(samples.lines().next().unwrap()).unwrap();
    assert!(
        first["prompt"]
            .as_str()
            .unwrap()
            .ends_with("\nFrom the run file: answer in the tags."),
        "{first}"
    );

    // Flags win over the file; what no flag sets still comes from it.
    let reward_toml = dir.path().join("reward.toml");
    std::fs::write(&reward_toml, "[chart]\ntolerance = 0.05\n").unwrap();
    let out = dir.path().join("flags");
    let o = eval(
        &rf,
        &out,
        &[
            "--seed",
            "3",
            "--instruction",
            "From the flag.",
            "--reward-config",
            reward_toml.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let r = results(&out);
    assert_eq!(r["tasks"]["chart"]["relaxed_accuracy"], 2.0 / 3.0);
    let fp = json_file(&out.join("fingerprint.json"));
    assert_eq!(fp["seed"], 3);
    assert_eq!(fp["prompt"]["instruction"], "From the flag.");
    assert_eq!(fp["reward"]["chart"]["tolerance"], 0.05);
    assert_eq!(
        fp["generation"]["max_new_tokens"], 77,
        "[eval] still applies"
    );
    let samples = std::fs::read_to_string(out.join("samples.jsonl")).unwrap();
    assert!(samples.contains("From the flag."));
    assert!(!samples.contains("From the run file"));

    // An unknown key, in [eval] or in [reward], is an error naming the key and the file, and
    // nothing is evaluated.
    for (from, to, key) in [
        ("seed = 7", "sed = 7", "sed"),
        ("tolerance = 0.01", "tolerence = 0.01", "tolerence"),
    ] {
        let bad = dir.path().join(format!("bad-{key}.toml"));
        std::fs::write(&bad, run_toml.replace(from, to)).unwrap();
        let out = dir.path().join(format!("bad-{key}"));
        let o = eval(&bad, &out, &[]);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(&format!("unknown field `{key}`")), "{err}");
        assert!(err.contains(bad.to_str().unwrap()), "{err}");
        assert!(!out.exists(), "nothing evaluated into {}", out.display());
    }
}
