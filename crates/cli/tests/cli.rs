//! The `mixed-r1 reward` command line as users run it: the real binary, real files.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mixed-r1"))
}

fn repo(path: &str) -> String {
    format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"))
}

fn run_with_stdin(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = bin()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn results(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn scores_the_example_file_line_for_line() {
    let input = repo("examples/mixed.jsonl");
    let out = bin()
        .args(["reward", "score", "--input", &input])
        .output()
        .unwrap();
    assert!(out.status.success());
    let n_lines = std::fs::read_to_string(&input).unwrap().lines().count();
    let res = results(&out);
    assert_eq!(res.len(), n_lines);
    assert_eq!(res[0]["id"], "vqa-1");
    assert_eq!(res[0]["reward"], 1.5);
    // The malformed lines at the end still have their own output lines, with errors.
    let last = &res[n_lines - 1];
    assert!(last["reward"].is_null());
    assert!(last["error"].as_str().unwrap().contains("invalid JSON"));
    assert!(res[n_lines - 2]["error"]
        .as_str()
        .unwrap()
        .contains("response"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("{n_lines} lines")), "{stderr}");
    assert!(stderr.contains("grounding"), "{stderr}");
}

#[test]
fn stdin_output_file_and_bad_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("scores.jsonl");
    let mut input = Vec::new();
    input.extend_from_slice(b"{\"task\":\"yes_no\",\"answer\":\"yes\",\"response\":\"<think>.</think><answer>Yes</answer>\"}\n");
    input.extend_from_slice(b"\xff\xfe not utf-8\n");
    input.extend_from_slice(b"\n");
    input.extend_from_slice(
        b"{\"task\":\"numeric\",\"answer\":\"3\",\"response\":\"<answer>3</answer>\"}",
    );
    let out = run_with_stdin(
        &[
            "reward",
            "score",
            "--input",
            "-",
            "--output",
            out_path.to_str().unwrap(),
        ],
        &input,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&out_path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["reward"], 1.5);
    assert!(lines[1]["error"].as_str().unwrap().contains("UTF-8"));
    assert!(lines[2]["error"].as_str().unwrap().contains("empty"));
    assert_eq!(lines[3]["accuracy"], 1.0);
    assert_eq!(lines[3]["format"], 0.0);
}

#[test]
fn flags_override_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("reward.toml");
    std::fs::write(
        &cfg,
        "format_weight = 0.0\n[format]\nmode = \"answer_only\"\n",
    )
    .unwrap();
    let line = b"{\"task\":\"yes_no\",\"answer\":\"yes\",\"response\":\"<answer>yes</answer>\"}\n";
    let out = run_with_stdin(
        &[
            "reward",
            "score",
            "-i",
            "-",
            "--config",
            cfg.to_str().unwrap(),
        ],
        line,
    );
    assert_eq!(results(&out)[0]["reward"], 1.0);
    let out = run_with_stdin(
        &[
            "reward",
            "score",
            "-i",
            "-",
            "--config",
            cfg.to_str().unwrap(),
            "--format-weight",
            "0.25",
        ],
        line,
    );
    assert_eq!(results(&out)[0]["reward"], 1.25);
    let out = run_with_stdin(
        &["reward", "score", "-i", "-", "--format-mode", "none"],
        line,
    );
    assert!(results(&out)[0]["format"].is_null());
}

#[test]
fn clear_errors_for_unreadable_inputs() {
    let out = bin()
        .args(["reward", "score", "--input", "/no/such/file.jsonl"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/no/such/file.jsonl"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("reward.toml");
    std::fs::write(&cfg, "[chart]\ntolerence = 0.1\n").unwrap();
    let out = bin()
        .args([
            "reward",
            "score",
            "--input",
            &repo("examples/mixed.jsonl"),
            "--config",
            cfg.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("reward.toml") && err.contains("tolerence"),
        "{err}"
    );

    let out = bin()
        .args([
            "reward",
            "score",
            "--input",
            &repo("examples/mixed.jsonl"),
            "--model",
            "/no/such/model",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/model"));
}

#[test]
fn help_documents_tasks_modes_and_frames() {
    let out = bin().args(["reward", "score", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for word in [
        "yes_no",
        "open_ended",
        "think_answer",
        "boxed",
        "abs_resized",
        "rel1000",
        "EXAMPLES",
        "--embeddings",
    ] {
        assert!(help.contains(word), "missing {word} in help");
    }
}

#[test]
fn bench_reports_throughput() {
    let out = bin()
        .args([
            "reward",
            "bench",
            "--input",
            &repo("examples/mixed.jsonl"),
            "--min-seconds",
            "0.05",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["samples_per_s"].as_f64().unwrap() > 0.0);
    assert_eq!(v["unparsed_lines"], 2);
}

/// Garbage of every kind: one output line per input line, in order, exit status 0, no panic and
/// no hang (the suite's time limit is the bound; this runs in well under a second).
#[test]
fn garbage_gets_one_line_each() {
    let mut input: Vec<Vec<u8>> = vec![
        b"{not json".to_vec(),
        b"".to_vec(),
        b"[]".to_vec(),
        b"\xff\xfe\x00 bytes".to_vec(),
        b"{\"task\": \"grounding\", \"answer\": [[NaN, 0, 1, 2]], \"response\": \"x\"}".to_vec(),
        b"{\"task\": \"numeric\", \"answer\": 1e400, \"response\": \"1\"}".to_vec(),
        b"{\"task\": \"grounding\", \"answer\": [[0, 0, 1e308, 1e308]], \"response\": \"<answer>[0, 0, 1e308, 1e308]</answer>\"}".to_vec(),
        b"{\"task\": \"grounding\", \"answer\": [[0, 0, 10, 10]], \"image_size\": [64, 64], \"response\": \"<answer>[nan, 0, 10, 10] [0, 0, 1e400, 10] [10, 10, 0, 0]</answer>\"}".to_vec(),
        b"{\"task\": \"mcq\", \"answer\": \"A\", \"response\": \"<answer>The answer is A or C</answer>\"}\r".to_vec(),
    ];
    let deep_answer = format!(
        "{{\"task\": \"mcq\", \"answer\": {}{}, \"response\": \"A\"}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let deep_ignored = format!(
        "{{\"task\": \"mcq\", \"answer\": \"A\", \"meta\": {}{}, \"response\": \"<answer>A</answer>\"}}",
        "[".repeat(1_000_000),
        "]".repeat(1_000_000)
    );
    let latex = serde_json::json!({"task": "math", "answer": "1/2",
        "response": format!("<answer>{}{}</answer>", "\\frac{".repeat(100_000), "}".repeat(100_000))});
    let huge = serde_json::json!({"task": "yes_no", "answer": "no",
        "response": format!("<think>{}</think><answer>No</answer>", "lorem ipsum ".repeat(700_000))});
    let pads = serde_json::json!({"task": "yes_no", "answer": "yes",
        "response": format!("<think>.</think>{}<answer>yes</answer>", "<|image_pad|>".repeat(500_000))});
    for line in [
        deep_answer,
        deep_ignored,
        latex.to_string(),
        huge.to_string(),
        pads.to_string(),
    ] {
        input.push(line.into_bytes());
    }
    // The last line has no newline.
    let mut bytes = input.join(&b'\n');
    bytes.extend_from_slice(
        b"\n{\"task\": \"yes_no\", \"answer\": \"yes\", \"response\": \"<answer>yes</answer>\"}",
    );
    let started = std::time::Instant::now();
    let out = run_with_stdin(&["reward", "score", "--input", "-", "--quiet"], &bytes);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    let res = results(&out);
    assert_eq!(res.len(), input.len() + 1);
    let acc = |i: usize| res[i]["accuracy"].clone();
    for i in [0, 1, 2, 3, 5] {
        assert!(
            res[i]["reward"].is_null() && res[i]["error"].is_string(),
            "{i}: {}",
            res[i]
        );
    }
    assert!(
        res[4]["error"].as_str().unwrap().contains("invalid JSON"),
        "{}",
        res[4]
    );
    // A 1e308 box has an infinite area without an image size: no valid gold, a skip.
    assert!(acc(6).is_null(), "{}", res[6]);
    assert_eq!(acc(7), 0.0);
    assert_eq!(acc(8), 0.0);
    assert!(
        res[9]["error"]
            .as_str()
            .unwrap()
            .contains("recursion limit"),
        "{}",
        res[9]
    );
    assert_eq!(acc(10), 1.0);
    assert_eq!(acc(11), 0.0);
    assert_eq!(
        (acc(12), res[12]["format"].clone()),
        (1.0.into(), 1.0.into())
    );
    assert_eq!(
        (acc(13), res[13]["format"].clone()),
        (1.0.into(), 1.0.into())
    );
    assert_eq!(acc(14), 1.0);
}
