//! verl and EasyR1 Parquet written by our writers, read back by real pyarrow (a pinned venv made
//! by scripts/py-venv.sh) and checked against what those trainers' loaders expect
//! (tests/pyarrow_check.py); and read back by our own adapters, round trip.

use std::path::{Path, PathBuf};
use std::process::Command;

use mixed_r1_data::adapters::{read_source, spec_for};
use mixed_r1_data::normalise::normalise;
use mixed_r1_data::parquet_io::{
    write_easyr1_parquet, write_jsonl, write_verl_parquet, ParquetOptions,
};
use mixed_r1_data::schema::{Answer, Sample, SourceFormat, Task};
use mixed_r1_reward::iou::Frame;
use serde_json::json;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn img(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/images")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn samples() -> Vec<Sample> {
    let base = Sample {
        id: String::new(),
        source: "mix".into(),
        task: Task::YesNo,
        images: vec![],
        problem: String::new(),
        answer: Answer::Text(String::new()),
        choices: vec![],
        frame: None,
        pred_frame: None,
        image_size: None,
        reward: None,
        meta: Default::default(),
    };
    let mut meta = serde_json::Map::new();
    meta.insert("difficulty".into(), json!({"pass_rate": 0.25}));
    vec![
        Sample {
            id: "yn-1".into(),
            source: "easy-vqa".into(),
            images: vec![img("0.png")],
            problem: "<image>Is there a rectangle?".into(),
            answer: Answer::Text("yes".into()),
            image_size: Some([64, 64]),
            ..base.clone()
        },
        Sample {
            id: "box-1".into(),
            task: Task::Grounding,
            images: vec![img("4.png")],
            problem: "<image>Locate the red circle.".into(),
            answer: Answer::Json(json!([[17, 16, 50, 49]])),
            frame: Some(Frame::Abs),
            pred_frame: Some(Frame::AbsResized),
            image_size: Some([64, 64]),
            ..base.clone()
        },
        Sample {
            id: "mcq-1".into(),
            task: Task::Mcq,
            problem: "Which animal barks?\nOptions:\n(A) cat\n(B) dog".into(),
            answer: Answer::Text("B".into()),
            choices: vec!["cat".into(), "dog".into()],
            meta,
            ..base.clone()
        },
        Sample {
            id: "num-1".into(),
            source: "gsm".into(),
            task: Task::Numeric,
            problem: "What is 6 * 7?".into(),
            answer: Answer::Text("42".into()),
            reward: Some("chart".into()),
            ..base.clone()
        },
        Sample {
            id: "cmp-1".into(),
            task: Task::OpenEnded,
            images: vec![img("2.png"), img("3.png")],
            problem: "<image><image>How do the two shapes differ?".into(),
            answer: Answer::Text(
                "The first is a red triangle, the second a brown rectangle.".into(),
            ),
            ..base
        },
    ]
}

fn python() -> String {
    let out = Command::new("bash")
        .arg(root().join("scripts/py-venv.sh"))
        .output()
        .expect("run scripts/py-venv.sh");
    assert!(
        out.status.success(),
        "py-venv.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn pyarrow_reads_what_verl_and_easyr1_expect() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = samples();
    let embed = ParquetOptions {
        embed_images: true,
        ..ParquetOptions::default()
    };
    let paths = ParquetOptions::default();
    let relative = ParquetOptions {
        relative_paths: true,
        ..ParquetOptions::default()
    };
    write_verl_parquet(&s, &d.join("verl_embed.parquet"), &embed).unwrap();
    write_verl_parquet(&s, &d.join("verl_paths.parquet"), &paths).unwrap();
    write_easyr1_parquet(&s, &d.join("easyr1_paths.parquet"), &relative).unwrap();
    write_easyr1_parquet(&s, &d.join("easyr1_embed.parquet"), &embed).unwrap();
    write_jsonl(&s, &d.join("expected.jsonl")).unwrap();
    let out = Command::new(python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pyarrow_check.py"))
        .arg(d)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/images"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pyarrow check failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("checks passed"), "{stdout}");
    eprintln!("{stdout}");
}

/// Our writers' output read back by our adapters is the same samples (embedded images come back
/// as extracted files with the same bytes).
#[test]
fn round_trip_through_our_readers() {
    let dir = tempfile::tempdir().unwrap();
    let s = samples();
    for (file, format, opts) in [
        ("v.parquet", SourceFormat::Verl, ParquetOptions::default()),
        ("e.parquet", SourceFormat::Easyr1, ParquetOptions::default()),
        (
            "ve.parquet",
            SourceFormat::Verl,
            ParquetOptions {
                embed_images: true,
                ..ParquetOptions::default()
            },
        ),
        ("o.jsonl", SourceFormat::Jsonl, ParquetOptions::default()),
    ] {
        let path = dir.path().join(file);
        match format {
            SourceFormat::Verl => write_verl_parquet(&s, &path, &opts).unwrap(),
            SourceFormat::Easyr1 => write_easyr1_parquet(&s, &path, &opts).unwrap(),
            _ => write_jsonl(&s, &path).unwrap(),
        }
        let back: Vec<Sample> = read_source(&spec_for(&path, format))
            .unwrap()
            .into_iter()
            .map(|r| normalise(r.unwrap(), "x").unwrap().item)
            .collect();
        assert_eq!(back.len(), s.len());
        for (b, want) in back.iter().zip(&s) {
            let mut b = b.clone();
            if opts.embed_images {
                for (got, orig) in b.images.iter().zip(&want.images) {
                    assert_eq!(
                        std::fs::read(got).unwrap(),
                        std::fs::read(orig).unwrap(),
                        "{file}"
                    );
                }
                b.images = want.images.clone();
            }
            assert_eq!(&b, want, "{file}");
        }
    }
}

#[test]
fn text_only_datasets_have_no_images_column() {
    let dir = tempfile::tempdir().unwrap();
    let s: Vec<Sample> = samples()
        .into_iter()
        .filter(|s| s.images.is_empty())
        .collect();
    let p = dir.path().join("t.parquet");
    write_verl_parquet(&s, &p, &ParquetOptions::default()).unwrap();
    let cols = mixed_r1_data::parquet_io::parquet_columns(&p).unwrap();
    assert_eq!(
        cols,
        vec![
            "data_source",
            "prompt",
            "ability",
            "reward_model",
            "extra_info"
        ]
    );
    // A missing image is an error naming the image.
    let mut bad = samples();
    bad[0].images = vec!["/nonexistent/x.png".into()];
    let e = write_verl_parquet(
        &bad,
        &dir.path().join("b.parquet"),
        &ParquetOptions {
            embed_images: true,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(e.path(), Path::new("/nonexistent/x.png"));
}
