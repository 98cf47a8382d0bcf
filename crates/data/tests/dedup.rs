//! Deduplication catches planted near duplicates and never merges distinct samples.

use std::path::PathBuf;
use std::sync::Arc;

use image::{DynamicImage, Rgb, RgbImage};
use mixed_r1_data::dedup::{self, DedupConfig, MinHasher};
use mixed_r1_data::schema::{Origin, Row};
use mixed_r1_data::{Answer, Sample, Stage, Task};

fn row(line: usize, task: Task, problem: &str, answer: &str, images: &[&str]) -> Row<Sample> {
    Row {
        item: Sample {
            id: format!("s{line}"),
            source: "test".into(),
            task,
            images: images.iter().map(|s| s.to_string()).collect(),
            problem: problem.into(),
            answer: Answer::Text(answer.into()),
            choices: vec![],
            frame: None,
            pred_frame: None,
            image_size: None,
            reward: None,
            meta: Default::default(),
        },
        origin: Origin {
            file: Arc::new(PathBuf::from("in.jsonl")),
            line,
        },
    }
}

fn no_images(_: &str) -> Option<dedup::ImageSig> {
    None
}

#[test]
fn lsh_parameters_match_the_threshold() {
    let (b, r) = dedup::lsh_params(0.8, 128);
    assert!(b * r <= 128);
    // The S-curve's midpoint (1/b)^(1/r) sits a little below the threshold.
    let mid = (1.0 / b as f64).powf(1.0 / r as f64);
    assert!((0.6..0.85).contains(&mid), "b={b} r={r} mid={mid}");
}

#[test]
fn minhash_estimates_jaccard() {
    let h = MinHasher::new(256, 5);
    let a = dedup::normalise_text(
        "A train travels at 60 km/h for 3 hours. How far does it travel in total?",
    );
    let b = dedup::normalise_text(
        "A train travels at 60 km/h for 3 hours. How far does it travel in all?",
    );
    let c = dedup::normalise_text("Compute the area of a circle of radius 4 in terms of pi.");
    let j_ab = dedup::estimated_jaccard(&h.signature(&a), &h.signature(&b));
    let j_ac = dedup::estimated_jaccard(&h.signature(&a), &h.signature(&c));
    assert!(j_ab > 0.7, "{j_ab}");
    assert!(j_ac < 0.15, "{j_ac}");
    assert_eq!(
        dedup::estimated_jaccard(&h.signature(&a), &h.signature(&a)),
        1.0
    );
    assert_eq!(
        dedup::normalise_text("<image>How MANY   circles?!"),
        "how many circles"
    );
}

/// 400 distinct word problems with 40 planted near copies (punctuation, case, one word changed):
/// every plant is caught and attributed to its original, and no distinct problem is merged.
#[test]
fn planted_text_near_duplicates_are_caught_and_distinct_ones_kept() {
    let names = ["Ana", "Ben", "Chen", "Dina", "Eli"];
    let items = ["apples", "pencils", "stamps", "shells"];
    let mut rows = Vec::new();
    let mut line = 0;
    for i in 0..400 {
        line += 1;
        let p = format!(
            "{} has {} {} and buys {} more packs of {} each. How many {} are there now?",
            names[i % 5],
            10 + i,
            items[i % 4],
            i % 7 + 2,
            i % 11 + 3,
            items[i % 4]
        );
        rows.push(row(
            line,
            Task::Numeric,
            &p,
            &format!("{}", 10 + i + (i % 7 + 2) * (i % 11 + 3)),
            &[],
        ));
    }
    let mut planted = Vec::new();
    for k in 0..40 {
        let orig = rows[k * 10].item.clone();
        line += 1;
        let p = orig
            .problem
            .to_uppercase()
            .replace("How many", "how MANY,")
            .replace(" now?", " now ?!");
        let a = match &orig.answer {
            Answer::Text(t) => t.clone(),
            _ => unreachable!(),
        };
        rows.push(row(line, Task::Numeric, &p, &a, &[]));
        planted.push((line, k * 10 + 1));
    }
    // Same text as an original but a different answer: a distinct sample.
    line += 1;
    let p0 = rows[5].item.problem.clone();
    rows.push(row(line, Task::Numeric, &p0, "999999", &[]));
    let out = dedup::dedup(rows, &DedupConfig::default(), no_images);
    assert_eq!(
        out.near,
        40,
        "{:?}",
        out.dropped.iter().take(3).collect::<Vec<_>>()
    );
    assert_eq!(out.exact, 0);
    assert_eq!(out.kept.len(), 401);
    for (dup_line, orig_line) in planted {
        let d = out
            .dropped
            .iter()
            .find(|d| d.line == dup_line)
            .expect("plant not caught");
        assert_eq!(d.stage, Stage::Dedup);
        assert!(
            d.reason.contains(&format!("in.jsonl:{orig_line} ")),
            "{}",
            d.reason
        );
    }
}

#[test]
fn exact_duplicates_keep_the_first() {
    let rows = vec![
        row(1, Task::YesNo, "Is it red?", "yes", &[]),
        row(2, Task::YesNo, "Is it red?", "yes", &[]),
        row(3, Task::YesNo, "Is it red?", "no", &[]),
    ];
    let out = dedup::dedup(rows, &DedupConfig::default(), no_images);
    assert_eq!(out.exact, 1);
    assert_eq!(
        out.kept.iter().map(|r| r.origin.line).collect::<Vec<_>>(),
        vec![1, 3]
    );
    assert!(
        out.dropped[0]
            .reason
            .starts_with("exact duplicate of in.jsonl:1"),
        "{}",
        out.dropped[0].reason
    );
}

fn scene(dir: &std::path::Path, name: &str, shape_x: u32, noise: u8) -> String {
    let mut img = RgbImage::from_pixel(160, 160, Rgb([250, 250, 245]));
    for y in 40..90 {
        for x in shape_x..shape_x + 50 {
            let n = ((x * 7 + y * 13) % 3) as u8 * noise;
            img.put_pixel(x, y, Rgb([200 - n, 40 + n, 40]));
        }
    }
    let path = dir.join(name);
    DynamicImage::ImageRgb8(img).save(&path).unwrap();
    path.to_string_lossy().into_owned()
}

/// Same question and answer: merged only when the pictures are near duplicates (a re-encoded,
/// resized, lightly noised copy), never when the shape sits elsewhere.
#[test]
fn images_decide_between_template_twins() {
    let dir = tempfile::tempdir().unwrap();
    let a = scene(dir.path(), "a.png", 20, 0);
    let a_noisy = scene(dir.path(), "a_noisy.png", 20, 3);
    // A resized JPEG copy of a.
    let a_small = dir.path().join("a_small.jpg");
    image::open(&a)
        .unwrap()
        .resize_exact(128, 128, image::imageops::FilterType::Triangle)
        .to_rgb8()
        .save(&a_small)
        .unwrap();
    let a_small = a_small.to_string_lossy().into_owned();
    let b = scene(dir.path(), "b.png", 90, 0);
    let q = "<image>Is there a red square in the image? Answer yes or no.";
    let rows = vec![
        row(1, Task::YesNo, q, "yes", &[&a]),
        row(2, Task::YesNo, q, "yes", &[&a_noisy]),
        row(3, Task::YesNo, q, "yes", &[&a_small]),
        row(4, Task::YesNo, q, "yes", &[&b]),
        row(
            5,
            Task::YesNo,
            "<image>How many squares are there?",
            "1",
            &[&a],
        ),
    ];
    let out = dedup::dedup(rows, &DedupConfig::default(), |p| {
        dedup::image_file_sig(std::path::Path::new(p)).ok()
    });
    let kept: Vec<usize> = out.kept.iter().map(|r| r.origin.line).collect();
    assert_eq!(kept, vec![1, 4, 5], "{:?}", out.dropped);
    assert_eq!(out.near, 2);

    // With image comparison off, images must be the same path to merge.
    let cfg = DedupConfig {
        images: false,
        ..Default::default()
    };
    let rows = vec![
        row(1, Task::YesNo, q, "yes", &[&a]),
        row(2, Task::YesNo, q, "yes", &[&a_noisy]),
    ];
    assert_eq!(dedup::dedup(rows, &cfg, no_images).kept.len(), 2);
}

/// The synthetic generator's templated questions survive dedup almost entirely: only genuinely
/// repeated (question, answer, picture) triples go.
#[test]
fn synthetic_templates_are_not_merged() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = mixed_r1_data::synth::SynthConfig {
        count: 3000,
        seed: 1,
        stocks: None,
        scenes: Default::default(),
    };
    mixed_r1_data::synth::generate(&cfg, dir.path(), &indicatif::ProgressBar::hidden()).unwrap();
    let rows: Vec<Row<Sample>> = std::fs::read_to_string(dir.path().join("samples.jsonl"))
        .unwrap()
        .lines()
        .enumerate()
        .map(|(i, l)| {
            let mut s: Sample = serde_json::from_str(l).unwrap();
            s.images = s
                .images
                .iter()
                .map(|p| dir.path().join(p).to_string_lossy().into_owned())
                .collect();
            Row {
                item: s,
                origin: Origin {
                    file: Arc::new(PathBuf::from("synth.jsonl")),
                    line: i + 1,
                },
            }
        })
        .collect();
    let out = dedup::dedup(rows, &DedupConfig::default(), |p| {
        dedup::image_file_sig(std::path::Path::new(p)).ok()
    });
    let shapes_dropped = out
        .dropped
        .iter()
        .filter(|d| !d.reason.contains("Jaccard") || d.reason.contains("image"))
        .count();
    assert!(out.kept.len() >= 2850, "kept {}", out.kept.len());
    assert!(shapes_dropped <= 150, "{shapes_dropped}");
}
