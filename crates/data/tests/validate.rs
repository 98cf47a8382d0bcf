//! Validation on a dirty fixture full of planted faults: every fault is rejected at the right
//! stage with the right reason, file and line; the good rows are kept; the counts add up.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mixed_r1_data::adapters::{read_source, spec_for};
use mixed_r1_data::normalise::{exact_dedup_key, normalise};
use mixed_r1_data::schema::{Answer, Reject, Row, Sample, SourceFormat, Stage, Task};
use mixed_r1_data::validate::{validate, validate_all, ValidateOptions};

fn fx(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(p)
}

fn run(opts: &ValidateOptions) -> (usize, Vec<Row<Sample>>, Vec<Reject>) {
    let rows = read_source(&spec_for(fx("dirty.jsonl"), SourceFormat::Jsonl)).unwrap();
    let n = rows.len();
    let mut rejects = Vec::new();
    let mut samples = Vec::new();
    for r in rows {
        match r.and_then(|row| normalise(row, "dirty")) {
            Ok(s) => samples.push(s),
            Err(rej) => rejects.push(rej),
        }
    }
    let (kept, mut bad) = validate_all(samples, opts);
    rejects.append(&mut bad);
    (n, kept, rejects)
}

#[test]
fn every_planted_fault_is_rejected_with_its_reason() {
    let (n, kept, rejects) = run(&ValidateOptions::default());
    assert_eq!(n, 30);
    assert_eq!(kept.len() + rejects.len(), n, "counts are conserved");
    let kept_ids: Vec<&str> = kept.iter().map(|r| r.item.id.as_str()).collect();
    assert_eq!(
        kept_ids,
        vec![
            "good-yes",
            "good-mcq",
            "good-box",
            "good-numeric",
            "good-caption",
            "good-chart",
            "good-math"
        ]
    );
    let expected: &[(usize, Stage, &str)] = &[
        (
            2,
            Stage::Ingest,
            "invalid JSON: EOF while parsing an object",
        ),
        (3, Stage::Validate, "image not found: "),
        (4, Stage::Validate, "cannot decode image "),
        (5, Stage::Validate, "cannot decode image "),
        (
            6,
            Stage::Validate,
            "yes_no answer \"maybe\" is not yes or no",
        ),
        (
            7,
            Stage::Validate,
            "numeric: gold answer \"three or four\" holds no number",
        ),
        (
            8,
            Stage::Validate,
            "numeric: gold answer \"3 or 4\" holds several numbers",
        ),
        (9, Stage::Validate, "math: math gold:"),
        (10, Stage::Normalise, "empty answer"),
        (
            11,
            Stage::Validate,
            "box [10, 10, 80, 40] lies outside the 64x64 image",
        ),
        (12, Stage::Validate, "box [30, 30, 20, 40] has no area"),
        (
            13,
            Stage::Validate,
            "grounding: gold answer \"somewhere at the bottom\" holds no box",
        ),
        (
            14,
            Stage::Validate,
            "answer letter E is beyond the 4 choices (A-D)",
        ),
        (
            15,
            Stage::Validate,
            "choices 1 and 2 are the same (\"cat\")",
        ),
        (
            16,
            Stage::Validate,
            "an mcq sample needs at least 2 choices, not 1",
        ),
        (17, Stage::Normalise, "missing problem"),
        (18, Stage::Normalise, "unknown task \"poetry\""),
        (
            19,
            Stage::Normalise,
            "problem has 2 <image> placeholders but the sample has 1 image",
        ),
        (20, Stage::Validate, "unknown reward \"bleu\""),
        (
            21,
            Stage::Validate,
            "image_size [640, 480] does not match the image's [64, 64]",
        ),
        (27, Stage::Normalise, "missing answer"),
        (28, Stage::Ingest, "a row must be a JSON object {...}"),
        (
            30,
            Stage::Validate,
            "box [0, 0, 1200, 500] lies outside the 0..1000 frame",
        ),
    ];
    let by_line: BTreeMap<usize, &Reject> = rejects.iter().map(|r| (r.line, r)).collect();
    assert_eq!(by_line.len(), expected.len(), "{rejects:#?}");
    for (line, stage, reason) in expected {
        let r = by_line
            .get(line)
            .unwrap_or_else(|| panic!("line {line} not rejected"));
        assert_eq!(r.stage, *stage, "line {line}: {}", r.reason);
        assert!(
            r.reason.starts_with(reason),
            "line {line}: {:?} does not start with {reason:?}",
            r.reason
        );
        assert_eq!(*r.file, fx("dirty.jsonl"));
        if r.stage != Stage::Ingest {
            assert!(r.id.is_some(), "line {line} names its sample");
        }
    }
    // The path in the reason is the one that was tried.
    assert!(by_line[&3].reason.ends_with("images/nope.png"));
    assert!(by_line[&4].reason.contains("garbage.png"));
}

#[test]
fn decoding_records_image_size() {
    let (_, kept, _) = run(&ValidateOptions::default());
    let get = |id: &str| kept.iter().find(|r| r.item.id == id).unwrap().item.clone();
    assert_eq!(get("good-yes").image_size, Some([64, 64]));
    assert_eq!(get("good-box").image_size, Some([64, 64]));
    assert_eq!(get("good-numeric").image_size, None, "no image, no size");
    // The caption had no placeholder: one was put in front.
    assert_eq!(get("good-caption").problem, "<image>Describe the image.");
}

#[test]
fn text_only_checks_open_no_file() {
    let (n, kept, rejects) = run(&ValidateOptions::text_only());
    assert_eq!(kept.len() + rejects.len(), n);
    let kept_ids: Vec<&str> = kept.iter().map(|r| r.item.id.as_str()).collect();
    // Image faults go unseen; the size claim is not checked against a file either.
    for id in [
        "missing-image",
        "garbage-image",
        "truncated-image",
        "size-mismatch",
    ] {
        assert!(kept_ids.contains(&id), "{id}");
    }
    // Without an image_size, an abs box cannot be checked against the image, but the one
    // with no area still fails.
    assert!(kept_ids.contains(&"box-outside"));
    assert!(!kept_ids.contains(&"box-no-area"));
}

fn sample(task: Task, answer: Answer) -> Sample {
    Sample {
        id: "s".into(),
        source: "t".into(),
        task,
        images: vec![],
        problem: "q".into(),
        answer,
        choices: vec![],
        frame: None,
        pred_frame: None,
        image_size: None,
        reward: None,
        meta: Default::default(),
    }
}

fn check(s: Sample) -> Result<Sample, String> {
    let row = Row {
        item: s,
        origin: mixed_r1_data::schema::Origin {
            file: std::sync::Arc::new(PathBuf::from("x.jsonl")),
            line: 1,
        },
    };
    validate(row, &ValidateOptions::text_only())
        .map(|r| r.item)
        .map_err(|r| r.reason)
}

#[test]
fn answers_parse_with_the_reward_parsers() {
    let t = |s: &str| Answer::Text(s.into());
    assert!(check(sample(Task::YesNo, t("True"))).is_ok());
    assert!(check(sample(Task::Numeric, t("$1,200"))).is_ok());
    assert!(check(sample(Task::Math, t("\\frac{\\sqrt{2}}{2}"))).is_ok());
    assert!(check(sample(Task::Chart, t("Germany"))).is_ok());
    assert!(check(sample(Task::OpenEnded, t("a cat"))).is_ok());
    assert!(check(sample(
        Task::Numeric,
        Answer::Json(serde_json::json!({"x": 1}))
    ))
    .unwrap_err()
    .contains("must be text"));
    // Several letters of an mcq.
    let mut m = sample(Task::Mcq, Answer::Json(serde_json::json!(["A", "C"])));
    m.choices = vec!["a".into(), "b".into(), "c".into()];
    assert!(check(m.clone()).is_ok());
    // The text of a choice is an answer too.
    m.answer = t("b");
    assert!(check(m).is_ok());
    // Grounding frames.
    let mut g = sample(
        Task::Grounding,
        Answer::Json(serde_json::json!([[0.1, 0.2, 0.5, 0.9]])),
    );
    g.frame = Some(mixed_r1_reward::iou::Frame::Rel1);
    assert!(check(g.clone()).is_ok());
    g.answer = Answer::Json(serde_json::json!([[0.1, 0.2, 1.5, 0.9]]));
    assert_eq!(
        check(g).unwrap_err(),
        "box [0.1, 0.2, 1.5, 0.9] lies outside the 0..1 frame"
    );
    let mut r = sample(
        Task::Grounding,
        Answer::Json(serde_json::json!([[10, 10, 600, 400]])),
    );
    r.frame = Some(mixed_r1_reward::iou::Frame::AbsResized);
    r.image_size = Some([640, 480]);
    // 640x480 smart-resizes to 644x476: a box at y = 400 is inside, one at 480 is not.
    assert!(check(r.clone()).is_ok());
    r.answer = Answer::Json(serde_json::json!([[10, 10, 600, 480]]));
    assert!(check(r)
        .unwrap_err()
        .contains("outside the 644x476 resized image"));
    // A reward override is checked with its own parser.
    let mut o = sample(Task::Numeric, t("about 35%"));
    o.reward = Some("chart".into());
    assert!(check(o).is_ok());
    // A negative grounding sample (no box) is allowed.
    assert!(check(sample(Task::Grounding, Answer::Json(serde_json::json!([])))).is_ok());
}

#[test]
fn exact_dedup_key_normalises_text() {
    let a = sample(Task::OpenEnded, Answer::Text("A  red Circle".into()));
    let mut b = a.clone();
    b.problem = "  Q ".into();
    b.answer = Answer::Text("a red circle".into());
    assert_eq!(exact_dedup_key(&a), exact_dedup_key(&b));
    let mut c = a.clone();
    c.images = vec!["x.png".into()];
    assert_ne!(exact_dedup_key(&a), exact_dedup_key(&c));
    // Field boundaries count: ("q", "ab") is not ("qa", "b").
    let mut d = a.clone();
    d.problem = "qa".into();
    d.answer = Answer::Text("red circle".into());
    let mut e = a.clone();
    e.answer = Answer::Text("a red circle".into());
    assert_ne!(exact_dedup_key(&d), exact_dedup_key(&e));
    // Stable across runs and platforms: FNV-1a of "q\xffa red circle\xff\xff", pinned.
    const PINNED: &str = "1bb9688ab08a468f";
    assert_eq!(format!("{:016x}", exact_dedup_key(&a)), PINNED);
}

#[test]
fn inspect_reports_counts_and_problems() {
    let r = mixed_r1_data::inspect::inspect(&fx("dirty.jsonl")).unwrap();
    assert_eq!(r.format, SourceFormat::Jsonl);
    assert_eq!(r.rows, 30);
    // Images are checked for existence only: the undecodable and the mis-sized ones pass here,
    // and so does the abs box with no image_size to check it against.
    assert_eq!(r.valid, 11);
    assert_eq!(r.rejected[&Stage::Ingest], 2);
    assert_eq!(r.rejected[&Stage::Normalise], 5);
    assert_eq!(r.rejected[&Stage::Validate], 12);
    assert_eq!(r.per_task["yes_no"], 4);
    assert_eq!(r.images_per_sample[&1], 8);
    assert_eq!(r.examples[0].line, 2);
    let table = r.to_string();
    assert!(
        table.contains("rows        30   valid        11   rejected        19"),
        "{table}"
    );
    assert!(table.contains("dirty.jsonl:2  invalid JSON"), "{table}");
}
