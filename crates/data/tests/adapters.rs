//! Each adapter on its fixture (crates/data/fixtures): exact field values, rejects with file,
//! line and reason, and the easy-vqa mapping (on the fixture slice and, when fetched, the real
//! dataset).

use std::path::{Path, PathBuf};

use mixed_r1_data::adapters::{detect_format, read_source, shape_box, spec_for, DataError, Rows};
use mixed_r1_data::normalise::normalise;
use mixed_r1_data::schema::{Answer, Draft, Reject, SourceFormat, SourceSpec, Stage, Task};
use mixed_r1_reward::iou::Frame;
use serde_json::json;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn fx(p: &str) -> PathBuf {
    fixtures().join(p)
}

fn img(p: &str) -> String {
    fx("images").join(p).to_string_lossy().into_owned()
}

fn spec(path: &str, format: SourceFormat) -> SourceSpec {
    spec_for(fx(path), format)
}

fn with_images(mut s: SourceSpec) -> SourceSpec {
    s.image_root = Some(fx("images"));
    s
}

fn split(rows: Rows) -> (Vec<Draft>, Vec<Reject>) {
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for r in rows {
        match r {
            Ok(row) => ok.push(row.item),
            Err(rej) => bad.push(rej),
        }
    }
    (ok, bad)
}

fn text(s: &str) -> Option<Answer> {
    Some(Answer::Text(s.into()))
}

#[test]
fn ours_jsonl() {
    let rows = read_source(&spec("ours.jsonl", SourceFormat::Jsonl)).unwrap();
    // 7 rows; the blank line 4 is not a row but keeps the numbering.
    let lines: Vec<usize> = rows
        .iter()
        .map(|r| r.as_ref().unwrap().origin.line)
        .collect();
    assert_eq!(lines, vec![1, 2, 3, 5, 6, 7, 8]);
    let (d, bad) = split(rows);
    assert!(bad.is_empty());
    assert_eq!(d[0].id.as_deref(), Some("chartqa-17"));
    assert_eq!(d[0].source.as_deref(), Some("chartqa"));
    assert_eq!(
        d[0].images,
        vec![fx("images/3.png").to_string_lossy().into_owned()]
    );
    assert_eq!(d[1].answer, Some(Answer::Json(json!([[26, 37, 58, 63]]))));
    assert_eq!(d[1].frame, Some(Frame::Abs));
    assert_eq!(d[1].image_size, Some([64, 64]));
    assert_eq!(
        d[1].source.as_deref(),
        Some("ours"),
        "missing source = file stem"
    );
    assert_eq!(d[2].choices, vec!["cat", "dog"]);
    assert_eq!(
        d[4].id.as_deref(),
        Some("42"),
        "a numbered id reads as text"
    );
}

#[test]
fn ours_jsonl_normalised() {
    let rows = read_source(&spec("ours.jsonl", SourceFormat::Jsonl)).unwrap();
    let samples: Vec<_> = rows
        .into_iter()
        .map(|r| normalise(r.unwrap(), "ours").unwrap().item)
        .collect();
    let tasks: Vec<Task> = samples.iter().map(|s| s.task).collect();
    assert_eq!(
        tasks,
        vec![
            Task::Chart,
            Task::Grounding,
            Task::Mcq,
            Task::YesNo,
            Task::Numeric,
            Task::Math,
            Task::OpenEnded
        ]
    );
    assert_eq!(samples[3].problem, "Is the sky blue on a clear day?");
    assert_eq!(samples[3].id, "ours-5");
    assert_eq!(samples[3].meta["origin"], "handwritten");
    assert_eq!(samples[4].answer, Answer::Text("132".into()));
    assert_eq!(samples[4].id, "42");
    assert_eq!(samples[5].reward.as_deref(), Some("math"));
    // No placeholder in the problem: one is put before it for the one image.
    assert_eq!(samples[6].problem, "<image>Describe the picture.");
}

#[test]
fn llava_conversations() {
    let rows = read_source(&with_images(spec("llava.json", SourceFormat::Llava))).unwrap();
    let (d, bad) = split(rows);
    assert_eq!(d.len(), 3);
    assert_eq!(d[0].id.as_deref(), Some("000000033471"));
    assert_eq!(d[0].images, vec![img("0.png")]);
    assert_eq!(
        d[0].problem.as_deref(),
        Some("<image>\nWhat shape is shown in the image?")
    );
    assert_eq!(
        d[0].answer,
        text("The image shows a blue rectangle near the bottom right.")
    );
    assert_eq!(d[0].meta["turns"], 4);
    assert_eq!(d[0].source.as_deref(), Some("llava"));
    assert_eq!(
        d[1].problem.as_deref(),
        Some("What color is the circle?\n<image>")
    );
    assert!(d[2].images.is_empty());
    assert_eq!(d[2].answer, text("3"));
    assert_eq!(bad.len(), 1);
    assert_eq!((bad[0].line, bad[0].stage), (4, Stage::Ingest));
    assert_eq!(bad[0].reason, "no human turn followed by a gpt turn");
    assert_eq!(*bad[0].file, fx("llava.json"));

    let mut all = with_images(spec("llava.json", SourceFormat::Llava));
    all.options
        .insert("all_turns".into(), toml::Value::Boolean(true));
    let (d, _) = split(read_source(&all).unwrap());
    assert_eq!(d.len(), 4);
    assert_eq!(d[1].id.as_deref(), Some("000000033471-t2"));
    assert_eq!(d[1].problem.as_deref(), Some("Is it a circle?"));
    assert_eq!(d[1].answer, text("No"));
}

#[test]
fn vlm_r1_methods() {
    let rows = read_source(&with_images(spec("vlmr1.jsonl", SourceFormat::VlmR1))).unwrap();
    let (d, bad) = split(rows);
    assert_eq!(d.len(), 6);
    // iou: REC box text -> JSON boxes, abs frame.
    assert_eq!(d[0].task.as_deref(), Some("grounding"));
    assert_eq!(d[0].id.as_deref(), Some("1"));
    assert_eq!(d[0].answer, Some(Answer::Json(json!([[26, 37, 58, 63]]))));
    assert_eq!(d[0].frame, Some(Frame::Abs));
    assert_eq!(d[0].meta["raw_answer"], "[26, 37, 58, 63]");
    assert_eq!(d[0].meta["accu_reward_method"], "iou");
    // <answer> tags dropped as VLM-R1 does.
    assert_eq!(
        (d[1].task.as_deref(), d[1].answer.clone()),
        (Some("yes_no"), text("yes"))
    );
    assert_eq!(d[2].task.as_deref(), Some("mcq"));
    assert_eq!(d[2].images, vec![img("2.png"), img("3.png")]);
    assert_eq!(
        (d[3].task.as_deref(), d[3].answer.clone()),
        (Some("math"), text("x = 4"))
    );
    assert!(d[3].images.is_empty());
    // od_ap: fenced JSON of {bbox_2d, label}.
    assert_eq!(d[4].task.as_deref(), Some("grounding"));
    assert_eq!(d[4].answer, Some(Answer::Json(json!([[10, 20, 40, 50]]))));
    // default: the task is left to inference.
    assert_eq!(d[5].task, None);
    assert_eq!(d[5].meta["accu_reward_method"], "default");
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].line, 7);
    assert!(
        bad[0].reason.starts_with("invalid JSON"),
        "{}",
        bad[0].reason
    );
}

#[test]
fn verl_geo3k_and_gsm8k_written_by_pyarrow() {
    let out = tempfile::tempdir().unwrap();
    let mut s = spec("parquet/geo3k_verl.parquet", SourceFormat::Verl);
    s.options.insert(
        "extract_images".into(),
        toml::Value::String(out.path().to_string_lossy().into()),
    );
    let (d, bad) = split(read_source(&s).unwrap());
    assert!(bad.is_empty());
    assert_eq!(d.len(), 2);
    assert_eq!(d[0].source.as_deref(), Some("hiyouga/geometry3k"));
    // The clean question from extra_info, not the prompt with geo3k's instruction.
    assert_eq!(
        d[0].problem.as_deref(),
        Some("<image>Find x. Round to the nearest tenth.")
    );
    assert_eq!(d[0].answer, text("3"));
    assert_eq!(d[0].meta["ability"], "math");
    assert_eq!(d[0].meta["split"], "train");
    assert_eq!(d[1].meta["index"], 1);
    // The embedded PNG is written out, by content hash, byte for byte.
    assert_eq!(d[0].images.len(), 1);
    let extracted = Path::new(&d[0].images[0]);
    assert!(extracted.starts_with(out.path()));
    assert_eq!(extracted.extension().unwrap(), "png");
    assert_eq!(
        std::fs::read(extracted).unwrap(),
        std::fs::read(fx("images/2.png")).unwrap()
    );
    let n = normalise(read_source(&s).unwrap().remove(0).unwrap(), "geo3k")
        .unwrap()
        .item;
    assert_eq!(n.task, Task::Numeric);

    let (d, bad) =
        split(read_source(&spec("parquet/gsm8k_verl.parquet", SourceFormat::Verl)).unwrap());
    assert!(bad.is_empty());
    assert_eq!(d[0].answer, text("72"));
    assert!(d[0]
        .problem
        .as_deref()
        .unwrap()
        .starts_with("Natalia sold clips"));
    assert!(d[0].images.is_empty());
    // gsm8k's extra_info.answer is the worked solution, kept apart from the answer.
    assert!(d[0].meta["solution"].as_str().unwrap().ends_with("#### 72"));
}

#[test]
fn easyr1_written_by_pyarrow() {
    let mut s = spec("parquet/easyr1.parquet", SourceFormat::Easyr1);
    s.options.insert(
        "image_dir".into(),
        toml::Value::String(fx("images").to_string_lossy().into()),
    );
    let (d, bad) = split(read_source(&s).unwrap());
    assert!(bad.is_empty());
    assert_eq!(d.len(), 2);
    assert_eq!(
        d[0].problem.as_deref(),
        Some("<image>What color is the circle?")
    );
    assert_eq!(d[0].answer, text("red"));
    assert_eq!(d[0].images, vec![img("4.png")]);
    assert_eq!(d[1].answer, text("56"));
    assert!(d[1].images.is_empty());
    assert_eq!(d[1].source.as_deref(), Some("easyr1"));
}

#[test]
fn refcoco_refs() {
    let rows = read_source(&with_images(spec(
        "refcoco/refs.json",
        SourceFormat::Refcoco,
    )))
    .unwrap();
    let (d, bad) = split(rows);
    assert_eq!(d.len(), 3, "one sample per sentence");
    assert_eq!(d[0].id.as_deref(), Some("refs-0-0"));
    assert_eq!(d[0].task.as_deref(), Some("grounding"));
    assert_eq!(
        d[0].problem.as_deref(),
        Some("<image>Please provide the bounding box coordinate of the region this sentence describes: blue rectangle.")
    );
    // COCO xywh [26, 37, 32, 26] -> xyxy.
    assert_eq!(d[0].answer, Some(Answer::Json(json!([[26, 37, 58, 63]]))));
    assert_eq!(
        (d[0].frame, d[0].image_size),
        (Some(Frame::Abs), Some([64, 64]))
    );
    assert_eq!(d[0].images, vec![img("0.png")]);
    assert_eq!(d[1].id.as_deref(), Some("refs-0-1"));
    assert_eq!(d[2].answer, Some(Answer::Json(json!([[17, 16, 50, 49]]))));
    assert_eq!(d[2].meta["split"], "val");
    assert_eq!(bad.len(), 1);
    assert_eq!(
        (bad[0].line, bad[0].reason.as_str()),
        (3, "annotation 999 is not in the COCO instances")
    );

    let mut train = with_images(spec("refcoco/refs.json", SourceFormat::Refcoco));
    train
        .options
        .insert("split".into(), toml::Value::String("train".into()));
    train
        .options
        .insert("sentences".into(), toml::Value::String("first".into()));
    let (d, bad) = split(read_source(&train).unwrap());
    assert_eq!((d.len(), bad.len()), (1, 1));
}

#[test]
fn chartqa_items() {
    let (d, bad) =
        split(read_source(&spec("chartqa/train_augmented.json", SourceFormat::Chartqa)).unwrap());
    assert_eq!(d.len(), 3);
    assert_eq!(d[0].task.as_deref(), Some("chart"));
    assert_eq!(
        d[0].problem.as_deref(),
        Some("<image>What is the value of the highest bar?")
    );
    assert_eq!(d[0].answer, text("82.5"));
    assert_eq!(
        d[0].images,
        vec![fx("chartqa/png/41699051005347.png")
            .to_string_lossy()
            .into_owned()]
    );
    assert_eq!(d[2].answer, text("Germany"));
    assert_eq!(bad.len(), 1);
    assert_eq!(
        (bad[0].line, bad[0].reason.as_str()),
        (4, "missing text field `label`")
    );
}

#[test]
fn coco_captions() {
    let (d, bad) = split(
        read_source(&with_images(spec(
            "coco/captions.json",
            SourceFormat::CocoCaptions,
        )))
        .unwrap(),
    );
    assert_eq!(d.len(), 2);
    assert_eq!(d[0].id.as_deref(), Some("captions-397133"));
    assert_eq!(d[0].task.as_deref(), Some("open_ended"));
    assert_eq!(
        d[0].answer,
        text("A blue rectangle in the lower right of a pale square.")
    );
    assert_eq!(
        d[0].meta["captions"],
        json!([
            "A blue rectangle in the lower right of a pale square.",
            "A small blue box near the corner."
        ])
    );
    assert_eq!(d[0].image_size, Some([64, 64]));
    assert_eq!(
        d[0].problem.as_deref(),
        Some("<image>Describe this image in one sentence.")
    );
    assert_eq!(d[1].images, vec![img("4.png")]);
    assert_eq!(bad.len(), 1);
    assert_eq!(
        (bad[0].line, bad[0].reason.as_str()),
        (3, "image 252219 has no caption")
    );
}

#[test]
fn scienceqa_problems() {
    let (d, bad) =
        split(read_source(&spec("scienceqa/problems.json", SourceFormat::Scienceqa)).unwrap());
    assert_eq!(d.len(), 3);
    // File order, not sorted keys: "1", "2", "10", "11".
    assert_eq!(d[0].id.as_deref(), Some("problems-1"));
    assert_eq!(d[0].answer, text("B"));
    assert_eq!(d[0].choices, vec!["chiasmus", "apostrophe"]);
    assert_eq!(
        d[0].problem.as_deref(),
        Some("Which figure of speech is used in this text?\nSing, O goddess, the anger of Achilles son of Peleus.\nOptions:\n(A) chiasmus\n(B) apostrophe")
    );
    assert!(d[0].images.is_empty());
    assert_eq!(
        d[1].problem.as_deref(),
        Some("<image>Context: Look at the picture.\nWhat shape is shown?\nOptions:\n(A) circle\n(B) triangle\n(C) rectangle")
    );
    assert_eq!(
        d[1].images,
        vec![fx("scienceqa/images/train/2/image.png")
            .to_string_lossy()
            .into_owned()]
    );
    assert_eq!(d[1].meta["subject"], "natural science");
    assert_eq!(d[2].id.as_deref(), Some("problems-10"));
    assert_eq!(bad.len(), 1);
    assert_eq!(
        (bad[0].line, bad[0].reason.as_str()),
        (4, "answer index 5 is beyond the 2 choices")
    );

    let mut val = spec("scienceqa/problems.json", SourceFormat::Scienceqa);
    val.options
        .insert("split".into(), toml::Value::String("val".into()));
    let (d, _) = split(read_source(&val).unwrap());
    assert_eq!(d.len(), 1);
}

#[test]
fn easy_vqa_fixture_slice() {
    let (d, bad) = split(read_source(&spec("easy-vqa", SourceFormat::EasyVqa)).unwrap());
    assert!(bad.is_empty(), "{bad:?}");
    // 52 questions of images 0-4, then one derived box per image.
    assert_eq!(d.len(), 52 + 5);
    let q0 = &d[0];
    assert_eq!(q0.id.as_deref(), Some("easy-vqa-train-q1"));
    assert_eq!(q0.task.as_deref(), Some("mcq"));
    assert_eq!(q0.choices.len(), 3, "shape questions offer the 3 shapes");
    assert_eq!(q0.meta["answer_text"], "rectangle");
    let letter = q0.answer.as_ref().unwrap().text().into_owned();
    let k = (letter.as_bytes()[0] - b'A') as usize;
    assert_eq!(q0.choices[k], "rectangle");
    assert!(q0
        .problem
        .as_deref()
        .unwrap()
        .starts_with("<image>what is the blue shape?\nOptions:\n(A) "));
    let colour = &d[1];
    assert_eq!(colour.choices.len(), 4);
    assert!(colour.choices.contains(&"blue".to_string()));
    let yes = &d[2];
    assert_eq!(
        (yes.task.as_deref(), yes.answer.clone()),
        (Some("yes_no"), text("yes"))
    );
    assert_eq!(
        yes.problem.as_deref(),
        Some("<image>does the image contain a rectangle?")
    );
    assert_eq!(
        yes.images,
        vec![fx("easy-vqa/train/images/0.png")
            .to_string_lossy()
            .into_owned()]
    );

    let boxes: Vec<_> = d[52..]
        .iter()
        .map(|g| (g.problem.clone().unwrap(), g.answer.clone().unwrap()))
        .collect();
    // Boxes from the pixels (assets.md: img0 (26,37)-(57,62), img4 (17,16)-(49,48) inclusive).
    assert_eq!(
        boxes[0],
        (
            "<image>Locate the blue rectangle.".into(),
            Answer::Json(json!([[26, 37, 58, 63]]))
        )
    );
    assert_eq!(boxes[1].0, "<image>Locate the blue triangle.");
    assert_eq!(boxes[2].0, "<image>Locate the red triangle.");
    assert_eq!(boxes[3].0, "<image>Locate the brown rectangle.");
    assert_eq!(
        boxes[4],
        (
            "<image>Locate the red circle.".into(),
            Answer::Json(json!([[17, 16, 50, 49]]))
        )
    );
    assert_eq!(d[56].image_size, Some([64, 64]));
    assert_eq!(d[56].frame, Some(Frame::Abs));

    // Seeded: the same options every time; another seed, other orders.
    let again = split(read_source(&spec("easy-vqa", SourceFormat::EasyVqa)).unwrap()).0;
    assert_eq!(again, d);
    let mut s = spec("easy-vqa", SourceFormat::EasyVqa);
    s.options.insert("seed".into(), toml::Value::Integer(7));
    s.options
        .insert("grounding".into(), toml::Value::Boolean(false));
    let other = split(read_source(&s).unwrap()).0;
    assert_eq!(other.len(), 52);
    assert!(other.iter().zip(&d).any(|(a, b)| a.choices != b.choices));
}

#[test]
fn shape_box_thresholds_against_the_background() {
    let mut im = image::RgbImage::from_pixel(10, 8, image::Rgb([200, 200, 200]));
    for (x, y) in [(3, 2), (6, 5), (4, 4)] {
        im.put_pixel(x, y, image::Rgb([10, 20, 200]));
    }
    // Differences of 60 or less are background noise.
    im.put_pixel(9, 7, image::Rgb([180, 180, 180]));
    assert_eq!(shape_box(&im, 60), Some([3, 2, 7, 6]));
    assert_eq!(shape_box(&image::RgbImage::new(4, 4), 60), None);
}

/// The real dataset, when `scripts/fetch-assets.sh easy-vqa` has put it in .cache/assets.
#[test]
fn easy_vqa_real_dataset() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache/assets/easy-vqa");
    if !root.join("train/questions.json").is_file() {
        // CI fetches every asset first, so there a missing one is a failure, not a skip.
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "easy-vqa missing under CI=true (scripts/fetch-assets.sh easy-vqa)"
        );
        eprintln!("easy-vqa not fetched (scripts/fetch-assets.sh easy-vqa): skipped");
        return;
    }
    let s = spec_for(&root, SourceFormat::EasyVqa);
    let (d, bad) = split(read_source(&s).unwrap());
    assert!(bad.is_empty(), "{:?}", &bad[..bad.len().min(3)]);
    let count = |t: &str| d.iter().filter(|x| x.task.as_deref() == Some(t)).count();
    assert_eq!(count("yes_no"), 28_407);
    assert_eq!(count("mcq"), 38_575 - 28_407);
    assert_eq!(count("grounding"), 3_542);
    for g in d.iter().filter(|x| x.task.as_deref() == Some("grounding")) {
        let Some(Answer::Json(v)) = &g.answer else {
            panic!()
        };
        let b: Vec<f64> = v[0]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert!(
            b[0] < b[2] && b[1] < b[3] && b[2] <= 64.0 && b[3] <= 64.0,
            "{b:?}"
        );
    }
}

#[test]
fn detect_formats() {
    let cases = [
        ("ours.jsonl", Some(SourceFormat::Jsonl)),
        ("llava.json", Some(SourceFormat::Llava)),
        ("vlmr1.jsonl", Some(SourceFormat::VlmR1)),
        ("parquet/geo3k_verl.parquet", Some(SourceFormat::Verl)),
        ("parquet/gsm8k_verl.parquet", Some(SourceFormat::Verl)),
        ("parquet/easyr1.parquet", Some(SourceFormat::Easyr1)),
        ("refcoco/refs.json", Some(SourceFormat::Refcoco)),
        ("refcoco/instances.json", None),
        ("chartqa/train_augmented.json", Some(SourceFormat::Chartqa)),
        ("coco/captions.json", Some(SourceFormat::CocoCaptions)),
        ("scienceqa/problems.json", Some(SourceFormat::Scienceqa)),
        ("easy-vqa", Some(SourceFormat::EasyVqa)),
        ("easy-vqa/train/questions.json", Some(SourceFormat::EasyVqa)),
        ("images/0.png", None),
    ];
    for (p, want) in cases {
        assert_eq!(detect_format(&fx(p)), want, "{p}");
    }
}

#[test]
fn missing_or_broken_files_name_the_file() {
    let e = read_source(&spec("nope.jsonl", SourceFormat::Jsonl)).unwrap_err();
    assert!(matches!(e, DataError::Read { .. }));
    assert_eq!(e.path(), fx("nope.jsonl"));
    assert!(e.to_string().contains("nope.jsonl"), "{e}");
    // A JSON-array format given a JSON Lines file.
    let e = read_source(&spec("ours.jsonl", SourceFormat::Llava)).unwrap_err();
    assert!(matches!(e, DataError::Format { .. }), "{e}");
    assert!(e.to_string().contains("ours.jsonl"));
    // Not Parquet at all.
    let e = read_source(&spec("llava.json", SourceFormat::Verl)).unwrap_err();
    assert!(matches!(e, DataError::Parquet { .. }), "{e}");
    // RefCOCO without its instances.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fx("refcoco/refs.json"), dir.path().join("refs.json")).unwrap();
    let e = read_source(&spec_for(
        dir.path().join("refs.json"),
        SourceFormat::Refcoco,
    ))
    .unwrap_err();
    assert_eq!(e.path(), dir.path().join("instances.json"));
}
