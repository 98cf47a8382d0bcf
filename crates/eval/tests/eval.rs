//! The eval harness on the fixture set (`fixtures/set`, all seven tasks): metrics from fixed
//! responses against numbers worked out by hand, pass@k with four responses a sample, resume
//! after an interruption, refusal to resume with other settings, compare, and every converter on
//! its real-layout fixture.

use std::path::{Path, PathBuf};

use mixed_r1_eval::compare::compare;
use mixed_r1_eval::convert::{convert, BenchFormat, ConvertOptions};
use mixed_r1_eval::data::SkipKind;
use mixed_r1_eval::{
    load_data, run, EvalConfig, GivenResponses, Results, RunOptions, SampleRecord,
};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn set(name: &str) -> PathBuf {
    fixtures().join("set").join(name)
}

/// The default config with the tiny BMAS table of `fixtures/bmas`.
fn config() -> EvalConfig {
    let mut cfg = EvalConfig::default();
    cfg.reward.bmas.model = Some(fixtures().join("bmas"));
    cfg
}

fn opts(out: &Path) -> RunOptions {
    RunOptions {
        data: vec![set("mixed.jsonl")],
        out: out.to_path_buf(),
        charts: true,
        ..Default::default()
    }
}

fn given(name: &str) -> GivenResponses {
    GivenResponses::load(&set(name)).unwrap()
}

fn close(a: Option<f64>, b: f64) -> bool {
    // BMAS runs in f32: 1e-6 absorbs its rounding; everything else is exact to ~1e-15.
    a.is_some_and(|a| (a - b).abs() < 1e-6)
}

macro_rules! assert_close {
    ($got:expr, $want:expr) => {{
        let (g, w): (Option<f64>, f64) = ($got, $want);
        assert!(
            close(g, w),
            "{} = {:?}, expected {}",
            stringify!($got),
            g,
            w
        );
    }};
}

fn run_given(cfg: &EvalConfig, o: &RunOptions, responses: &str) -> Results {
    run(cfg, o, &mut given(responses)).unwrap()
}

#[test]
fn fixed_responses_give_hand_computed_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let r = run_given(&config(), &opts(dir.path()), "responses.jsonl");

    // 21 rows: 1 invalid (line 11), 1 missing image (y3), 1 without a response (n4),
    // 18 evaluated, of which 17 scored (y4's gold "maybe" is not yes/no).
    let c = &r.counts;
    assert_eq!(
        (c.rows, c.evaluated, c.scored, c.not_scored),
        (21, 18, 17, 1)
    );
    assert_eq!(
        (
            c.invalid,
            c.missing_image,
            c.duplicate,
            c.no_response,
            c.remaining
        ),
        (1, 1, 0, 1, 0)
    );
    assert!(r.complete);
    let kinds: Vec<(SkipKind, Option<&str>, usize)> = r
        .skipped
        .iter()
        .map(|s| (s.kind, s.id.as_deref(), s.line))
        .collect();
    assert!(
        kinds.contains(&(SkipKind::MissingImage, Some("y3"), 3)),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&(SkipKind::Invalid, Some("bad"), 11)),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&(SkipKind::NoResponse, Some("n4"), 10)),
        "{kinds:?}"
    );
    assert_eq!(r.not_scored_reasons.values().sum::<usize>(), 1);

    let t = |name: &str| &r.tasks[name];
    // yes_no: y1 right, y2 wrong (and no <think>), y4 not scored; formats 1, 0, 0.
    let yn = t("yes_no");
    assert_eq!((yn.samples, yn.scored, yn.not_scored), (3, 2, 1));
    assert_close!(yn.accuracy, 0.5);
    assert_close!(yn.format_rate, 1.0 / 3.0);
    assert_close!(yn.mean_tokens, 20.0 / 3.0);
    assert_close!(yn.truncation_rate, 0.0);
    // mcq: "(B)" right; "potato" is choice B, gold C.
    assert_close!(t("mcq").accuracy, 0.5);
    assert_close!(t("mcq").format_rate, 1.0);
    assert_close!(t("mcq").mean_tokens, 12.0);
    // numeric: "42 apples" = 42, "1234" = "1,234", n3 truncated without an answer.
    let nu = t("numeric");
    assert_eq!(nu.samples, 3);
    assert_close!(nu.accuracy, 2.0 / 3.0);
    assert_close!(nu.format_rate, 2.0 / 3.0);
    assert_close!(nu.truncation_rate, 1.0 / 3.0);
    assert_close!(nu.mean_tokens, 86.0 / 3.0);
    // math: 0.5 = \frac{1}{2}; 4 != 3 (and no <think>).
    assert_close!(t("math").accuracy, 0.5);
    assert_close!(t("math").format_rate, 0.5);
    // chart: 24 vs 23.5 within 5%; 2018 vs 2019 is a year (exact); "blue" = "Blue".
    let ch = t("chart");
    assert_close!(ch.relaxed_accuracy, 2.0 / 3.0);
    assert_close!(ch.accuracy, 2.0 / 3.0);
    // grounding: IoU 1, 800/2400, 1600/2000.
    let g = t("grounding");
    let ious = [1.0, 1.0 / 3.0, 0.8];
    assert_close!(g.mean_iou, ious.iter().sum::<f64>() / 3.0);
    assert_close!(g.acc_at_05, 2.0 / 3.0);
    assert_close!(g.accuracy, ious.iter().sum::<f64>() / 3.0);
    assert_close!(g.mean_tokens, 80.0 / 3.0);
    // open_ended: BMAS("red circle", "red shape") = 0.9 on the tiny table, identical = 1;
    // ROUGE-L F1 0.5 and 1.
    let o = t("open_ended");
    assert_close!(o.bmas, 0.95);
    assert_close!(o.rouge_l, 0.75);
    assert_close!(o.format_rate, 1.0);
    // No pass@k for one response a sample.
    assert!(o.pass_at_k.is_empty());

    // Overall: 17 accuracies, 14 of 18 well formatted, 1 of 18 truncated.
    let accs = [
        1.0,
        0.0,
        1.0,
        0.0,
        1.0,
        1.0,
        0.0,
        1.0,
        0.0,
        1.0,
        0.0,
        1.0,
        1.0,
        1.0 / 3.0,
        0.8,
        0.9,
        1.0,
    ];
    let all = &r.overall;
    assert_eq!((all.samples, all.scored, all.responses), (18, 17, 18));
    assert_close!(all.accuracy, accs.iter().sum::<f64>() / 17.0);
    assert_close!(all.format_rate, 14.0 / 18.0);
    assert_close!(all.truncation_rate, 1.0 / 18.0);
    // Rewards: accuracy + 0.5 * format over the 17 scored responses.
    let formats_of_scored = 14.0; // y4 (not scored) has format 0
    assert_close!(
        all.mean_reward,
        (accs.iter().sum::<f64>() + 0.5 * formats_of_scored) / 17.0
    );

    // Per source, and per task and source: chart splits into chartqa (c1 right, c2 wrong) and
    // plotqa (c3 right).
    assert_close!(r.sources["chartqa"].relaxed_accuracy, 0.5);
    assert_close!(r.sources["plotqa"].relaxed_accuracy, 1.0);
    assert_close!(r.task_sources["chart"]["chartqa"].accuracy, 0.5);
    assert_eq!(r.sources["gsm"].samples, 3);
    assert_eq!(r.sources.len(), 8);

    // Files: one record per sample sent to the responder (18 + n4), the report, the charts.
    let records = std::fs::read_to_string(dir.path().join("samples.jsonl")).unwrap();
    let records: Vec<SampleRecord> = records
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 19);
    let g2 = records.iter().find(|x| x.id == "g2").unwrap();
    assert!(close(g2.responses[0].iou, 1.0 / 3.0));
    assert!(g2.prompt.contains("bbox_2d") && g2.prompt.contains("<think>"));
    let m1 = records.iter().find(|x| x.id == "m1").unwrap();
    assert!(m1.prompt.contains("(B) cat"), "{}", m1.prompt);
    assert_eq!(m1.responses[0].answer.as_deref(), Some("(B)"));
    let md = std::fs::read_to_string(dir.path().join("results.md")).unwrap();
    assert!(
        md.contains("**18 samples evaluated, 17 scored** (1 not scored)"),
        "{md}"
    );
    assert!(
        md.contains("| grounding | 3 | 3 | Acc@0.5 66.7 · mIoU 71.1 |"),
        "{md}"
    );
    assert!(md.contains("missing image images/missing.png") || md.contains("missing.png"));
    let back: Results =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("results.json")).unwrap())
            .unwrap();
    assert_eq!(back.tasks, r.tasks);
    for task in [
        "yes_no",
        "mcq",
        "numeric",
        "math",
        "chart",
        "grounding",
        "open_ended",
        "overview",
    ] {
        let p = dir.path().join("charts").join(format!("{task}.png"));
        let img = image::open(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert!(img.width() >= 320 && img.height() == 312);
    }
    assert!(r.timing.invocations == 1 && r.timing.samples_per_s.is_some());
}

#[test]
fn pass_at_k_with_four_responses() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config();
    cfg.n = 4;
    let r = run_given(&cfg, &opts(dir.path()), "responses_n4.jsonl");
    assert_eq!(r.config.generation.temperature, Some(1.0));
    // Only y1, m1, g1 have responses; the other usable samples are reported as without one.
    assert_eq!((r.counts.evaluated, r.counts.scored), (3, 3));
    assert_eq!(r.counts.no_response, 16);
    assert_eq!(r.overall.responses, 12);
    // y1: yes, no, yes (unformatted but right), maybe -> 2 of 4; m1: 0 of 4; g1: IoU 1,
    // 900/2300, 0 (no area), 0.8 -> 2 of 4 at IoU >= 0.5.
    let p = &r.overall.pass_at_k;
    assert_eq!(p.keys().copied().collect::<Vec<_>>(), vec![1, 2, 4]);
    assert!((p[&1] - 1.0 / 3.0).abs() < 1e-12);
    assert!((p[&2] - 5.0 / 9.0).abs() < 1e-12);
    assert!((p[&4] - 2.0 / 3.0).abs() < 1e-12);
    assert!((r.tasks["yes_no"].pass_at_k[&2] - 5.0 / 6.0).abs() < 1e-12);
    assert_eq!(r.tasks["mcq"].pass_at_k[&4], 0.0);
    let g = &r.tasks["grounding"];
    assert_close!(g.acc_at_05, 0.5);
    assert_close!(g.mean_iou, (1.0 + 900.0 / 2300.0 + 0.0 + 0.8) / 4.0);
    assert_close!(r.tasks["yes_no"].accuracy, 0.5);
    assert_close!(r.tasks["yes_no"].format_rate, 0.75);
    let md = std::fs::read_to_string(dir.path().join("results.md")).unwrap();
    assert!(md.contains("@2 55.6"), "{md}");
}

/// Results without what legitimately differs between invocations (timing, batch size).
fn metrics_json(r: &Results) -> serde_json::Value {
    let mut v = serde_json::to_value(r).unwrap();
    v.as_object_mut().unwrap().remove("timing");
    v["config"].as_object_mut().unwrap().remove("batch_size");
    v
}

#[test]
fn resume_after_interruption_equals_a_single_run() {
    let whole = tempfile::tempdir().unwrap();
    let single = run_given(&config(), &opts(whole.path()), "responses.jsonl");

    let parts = tempfile::tempdir().unwrap();
    let mut cfg = config();
    cfg.batch_size = 3;
    let mut o = opts(parts.path());
    // "Interrupted" after 7 samples: results of a partial run say so.
    o.limit = Some(7);
    let partial = run_given(&cfg, &o, "responses.jsonl");
    assert!(!partial.complete);
    assert_eq!(partial.counts.remaining, 12);
    assert_eq!(partial.counts.evaluated, 7);
    let md = std::fs::read_to_string(parts.path().join("results.md")).unwrap();
    assert!(md.contains("**incomplete**"), "{md}");
    // ... and the process died while writing the next batch: a torn line at the end.
    let samples = parts.path().join("samples.jsonl");
    let mut bytes = std::fs::read(&samples).unwrap();
    bytes.extend_from_slice(b"{\"id\": \"c1\", \"source\": \"chartqa\", \"task\": \"ch");
    std::fs::write(&samples, bytes).unwrap();

    // Resumed with another batch size: the same results as the uninterrupted run.
    cfg.batch_size = 5;
    o.limit = None;
    let mut responder = given("responses.jsonl");
    let resumed = run(&cfg, &o, &mut responder).unwrap();
    assert_eq!(
        responder.used(),
        18 - 7,
        "only the remaining samples are asked for"
    );
    assert_eq!(metrics_json(&resumed), metrics_json(&single));
    assert_eq!(resumed.timing.invocations, 2);
    let ids = |p: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_to_string(p.join("samples.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<SampleRecord>(l).unwrap().id)
            .collect();
        v.sort();
        v
    };
    assert_eq!(ids(parts.path()), ids(whole.path()));

    // A rerun of a finished run asks for nothing and changes nothing.
    let mut responder = given("responses.jsonl");
    let again = run(&cfg, &o, &mut responder).unwrap();
    assert_eq!(responder.used(), 0);
    assert_eq!(metrics_json(&again), metrics_json(&single));
}

#[test]
fn resume_with_other_settings_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts(dir.path());
    run_given(&config(), &o, "responses.jsonl");
    let mut cfg = config();
    cfg.seed = 7;
    cfg.reward.format_weight = 0.25;
    let e = run(&cfg, &o, &mut given("responses.jsonl"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("differs in: seed, reward"), "{e}");
    assert!(e.contains("--overwrite"), "{e}");
    // Other responses are another responder.
    let e = run(&config(), &o, &mut given("responses_n4.jsonl"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("responder"), "{e}");
    // --overwrite starts over.
    let mut o2 = o.clone();
    o2.overwrite = true;
    let r = run(&cfg, &o2, &mut given("responses.jsonl")).unwrap();
    assert_eq!(r.config.reward.format_weight, 0.25);
    assert_eq!(r.timing.invocations, 1);
}

#[test]
fn compare_shows_deltas_against_the_first_run() {
    let before = tempfile::tempdir().unwrap();
    run_given(&config(), &opts(before.path()), "responses.jsonl");
    // "After training": y2 now answers no with a think block, a2 answers 3.
    let better = before.path().join("better.jsonl");
    let text = std::fs::read_to_string(set("responses.jsonl"))
        .unwrap()
        .replace(
            r#"{"id": "y2", "response": "<answer>yes</answer>""#,
            r#"{"id": "y2", "response": "<think>No green.</think><answer>no</answer>""#,
        )
        .replace(
            r#"{"id": "a2", "response": "<answer>4</answer>""#,
            r#"{"id": "a2", "response": "<think>x = 3</think><answer>3</answer>""#,
        );
    std::fs::write(&better, text).unwrap();
    let after = tempfile::tempdir().unwrap();
    run(
        &config(),
        &opts(after.path()),
        &mut GivenResponses::load(&better).unwrap(),
    )
    .unwrap();

    let c = compare(&[before.path().to_path_buf(), after.path().to_path_buf()]).unwrap();
    assert_eq!(c.runs.len(), 2);
    let d = |scope: &str, group: &str, metric: &str| {
        let row = c.row(scope, group, metric).unwrap();
        assert_eq!(row.deltas[0], None);
        row.deltas[1].unwrap()
    };
    assert!((d("task", "yes_no", "accuracy") - 0.5).abs() < 1e-12);
    assert!((d("task", "yes_no", "format_rate") - 1.0 / 3.0).abs() < 1e-12);
    assert!((d("task", "math", "accuracy") - 0.5).abs() < 1e-12);
    assert_eq!(d("task", "chart", "relaxed_accuracy"), 0.0);
    assert!((d("overall", "all", "accuracy") - 2.0 / 17.0).abs() < 1e-12);
    assert!((d("source", "pope", "accuracy") - 0.5).abs() < 1e-12);
    let row = c.row("task", "grounding", "acc@0.5").unwrap();
    assert_eq!(row.values, vec![Some(2.0 / 3.0), Some(2.0 / 3.0)]);

    let out = tempfile::tempdir().unwrap();
    mixed_r1_eval::write_comparison(&c, out.path()).unwrap();
    let md = std::fs::read_to_string(out.path().join("compare.md")).unwrap();
    assert!(
        md.contains("| yes_no | accuracy | 50.0 | 100.0 | +50.0 |"),
        "{md}"
    );
    assert!(
        md.contains("| chart | relaxed acc | 66.7 | 66.7 | ±0.0 |"),
        "{md}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("compare.json")).unwrap())
            .unwrap();
    assert_eq!(json["runs"].as_array().unwrap().len(), 2);
    assert!(image::open(out.path().join("compare.png")).is_ok());
    assert!(compare(&[before.path().to_path_buf()]).is_err());
    let e = compare(&[before.path().to_path_buf(), out.path().join("nope")])
        .unwrap_err()
        .to_string();
    assert!(e.contains("nope"), "{e}");
}

fn convert_fixture(
    format: BenchFormat,
    input: &str,
    split: Option<&str>,
    image_root: Option<&str>,
    out: &Path,
) -> mixed_r1_eval::ConvertReport {
    convert(&ConvertOptions {
        format,
        input: fixtures().join(input),
        out: out.to_path_buf(),
        source: None,
        split: split.map(str::to_string),
        image_root: image_root.map(|r| fixtures().join(r)),
    })
    .unwrap()
}

fn read_jsonl(p: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn converters_read_each_benchmark_layout() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("converted");

    // ChartQA: 3 good rows (one image absent), row 4 lacks its label.
    let out = d.join("chartqa.jsonl");
    let r = convert_fixture(
        BenchFormat::Chartqa,
        "chartqa/test_human.json",
        None,
        None,
        &out,
    );
    assert_eq!((r.rows, r.written, r.missing_images), (4, 3, 1));
    assert_eq!(r.bad.len(), 1);
    assert_eq!(r.bad[0].line, 4);
    assert!(r.bad[0].reason.contains("label"), "{:?}", r.bad);
    assert!(r.bad[0].file.ends_with("test_human.json"));
    let rows = read_jsonl(&out);
    assert_eq!(rows[0]["task"], "chart");
    assert_eq!(rows[0]["source"], "chartqa");
    assert_eq!(rows[0]["answer"], "23.5");
    assert_eq!(rows[0]["problem"], "<image>What was the value in 2019?");
    // Image paths are relative to the output file and lead to the image.
    let img = rows[0]["images"][0].as_str().unwrap();
    assert!(Path::new(img).is_relative(), "{img}");
    assert!(d.join(img).is_file(), "{img}");

    // RefCOCO, split val: ref 0 has two sentences, ref 1 one, ref 2 names a missing annotation.
    let out = d.join("refcoco.jsonl");
    let r = convert_fixture(
        BenchFormat::Refcoco,
        "refcoco/refs.json",
        Some("val"),
        Some("refcoco/train2014"),
        &out,
    );
    assert_eq!((r.written, r.bad.len(), r.missing_images), (3, 1, 0));
    assert_eq!(r.bad[0].line, 3);
    assert!(r.bad[0].reason.contains("999"), "{:?}", r.bad);
    let rows = read_jsonl(&out);
    // bbox [5, 10, 40, 40] (x, y, w, h) -> [5, 10, 45, 50]; image size from instances.json.
    assert_eq!(rows[0]["answer"], serde_json::json!([[5, 10, 45, 50]]));
    assert_eq!(rows[0]["image_size"], serde_json::json!([100, 80]));
    assert_eq!(rows[0]["frame"], "abs");
    assert!(rows[1]["problem"].as_str().unwrap().contains("left square"));
    assert_eq!(rows[2]["answer"], serde_json::json!([[60, 20, 90, 50]]));

    // MMBench: rows 0-2 good (row 1 reuses row 0's image; row 2 has quoted fields and a tab);
    // row 3 answers E with four options; row 4 (test split) has no answer.
    let out = d.join("mmbench.jsonl");
    let r = convert_fixture(
        BenchFormat::Mmbench,
        "mmbench/mmbench_dev_en.tsv",
        None,
        None,
        &out,
    );
    assert_eq!(
        (r.rows, r.written, r.images_written, r.missing_images),
        (5, 3, 2, 0)
    );
    let bad: Vec<usize> = r.bad.iter().map(|b| b.line).collect();
    assert_eq!(bad, vec![5, 6]);
    assert!(r.bad[0].reason.contains("\"E\""), "{:?}", r.bad);
    assert!(r.bad[1].reason.contains("no `answer`"), "{:?}", r.bad);
    let rows = read_jsonl(&out);
    assert_eq!(rows[0]["id"], "mmbench-0");
    assert_eq!(rows[0]["answer"], "B");
    assert_eq!(
        rows[0]["choices"],
        serde_json::json!(["circle", "square", "triangle", "star"])
    );
    assert_eq!(rows[1]["choices"], serde_json::json!(["red", "blue"]));
    assert_eq!(rows[1]["images"], rows[0]["images"]);
    assert!(rows[1]["problem"]
        .as_str()
        .unwrap()
        .starts_with("<image>Hint: The image shows one shape.\nWhat colour"));
    assert!(rows[2]["problem"]
        .as_str()
        .unwrap()
        .contains("Which part is \"largest\"?\tLook closely."));
    assert!(!rows[2]["problem"].as_str().unwrap().contains("Hint"));
    assert_eq!(rows[2]["meta"]["category"], "spatial_relationship");
    let png = d.join(rows[0]["images"][0].as_str().unwrap());
    assert!(
        png.starts_with(d.join("mmbench_images")),
        "{}",
        png.display()
    );
    assert_eq!(image::open(&png).unwrap().width(), 32);

    // ScienceQA, split test: pid 5 (with image) and 12 good, 20 answers index 5 of 2 choices.
    let out = d.join("scienceqa.jsonl");
    let r = convert_fixture(
        BenchFormat::Scienceqa,
        "scienceqa/problems.json",
        Some("test"),
        None,
        &out,
    );
    assert_eq!((r.written, r.bad.len(), r.missing_images), (2, 1, 0));
    assert_eq!(r.bad[0].line, 3);
    let rows = read_jsonl(&out);
    assert_eq!(rows[0]["answer"], "A");
    assert_eq!(rows[1]["answer"], "B");
    assert!(rows[0]["problem"]
        .as_str()
        .unwrap()
        .contains("(A) West Virginia"));
    assert!(d.join(rows[0]["images"][0].as_str().unwrap()).is_file());

    // POPE: two good lines; "maybe" and a line without an image are bad.
    let out = d.join("pope.jsonl");
    let r = convert_fixture(
        BenchFormat::Pope,
        "pope/coco_pope_adversarial.json",
        None,
        Some("pope/val2014"),
        &out,
    );
    assert_eq!((r.rows, r.written, r.missing_images), (4, 2, 0));
    let bad: Vec<(usize, bool)> = r
        .bad
        .iter()
        .map(|b| {
            (
                b.line,
                b.reason.contains("maybe") || b.reason.contains("image"),
            )
        })
        .collect();
    assert_eq!(bad, vec![(3, true), (4, true)]);
    let rows = read_jsonl(&out);
    assert_eq!(rows[0]["id"], "pope-adversarial-1");
    assert_eq!(rows[0]["task"], "yes_no");
    assert_eq!(rows[1]["answer"], "no");
    assert_eq!(rows[0]["meta"]["subset"], "adversarial");

    // Everything converted loads as eval data (only ChartQA's absent image is skipped).
    let files: Vec<PathBuf> = ["chartqa", "refcoco", "mmbench", "scienceqa", "pope"]
        .iter()
        .map(|n| d.join(format!("{n}.jsonl")))
        .collect();
    let data = load_data(&files).unwrap();
    assert_eq!(data.samples.len(), 2 + 3 + 3 + 2 + 2);
    assert_eq!(data.skipped.len(), 1);
    assert_eq!(data.skipped[0].kind, SkipKind::MissingImage);
}
