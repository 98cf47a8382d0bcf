//! The synthetic generator: deterministic for a seed, every task present, answers exact.

use std::path::{Path, PathBuf};

use indicatif::ProgressBar;
use mixed_r1_data::synth::{self, Stocks, Synth, SynthConfig};
use mixed_r1_data::{Answer, Sample, Task};

fn cfg(count: usize, seed: u64) -> SynthConfig {
    SynthConfig {
        count,
        seed,
        stocks: None,
        scenes: Default::default(),
    }
}

fn read_samples(dir: &Path) -> Vec<Sample> {
    std::fs::read_to_string(dir.join("samples.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn stocks_path() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.cache/assets/mpl-sample-data/Stocks.csv");
    p.exists().then_some(p)
}

#[test]
fn same_seed_same_bytes_whatever_the_threads() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    synth::generate(&cfg(300, 11), a.path(), &ProgressBar::hidden()).unwrap();
    // A one-thread pool schedules scenes differently; the output must not change.
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(|| synth::generate(&cfg(300, 11), b.path(), &ProgressBar::hidden()).unwrap());
    let ja = std::fs::read(a.path().join("samples.jsonl")).unwrap();
    let jb = std::fs::read(b.path().join("samples.jsonl")).unwrap();
    assert_eq!(ja, jb);
    for s in read_samples(a.path()) {
        for img in &s.images {
            assert_eq!(
                std::fs::read(a.path().join(img)).unwrap(),
                std::fs::read(b.path().join(img)).unwrap(),
                "{img}"
            );
        }
    }
    let c = tempfile::tempdir().unwrap();
    synth::generate(&cfg(300, 12), c.path(), &ProgressBar::hidden()).unwrap();
    assert_ne!(ja, std::fs::read(c.path().join("samples.jsonl")).unwrap());
}

#[test]
fn exact_count_every_task_and_valid_images() {
    let dir = tempfile::tempdir().unwrap();
    let summary = synth::generate(&cfg(2000, 3), dir.path(), &ProgressBar::hidden()).unwrap();
    let samples = read_samples(dir.path());
    assert_eq!(samples.len(), 2000);
    assert_eq!(summary.samples, 2000);
    for task in Task::ALL {
        let n = samples.iter().filter(|s| s.task == task).count();
        assert!(n >= 40, "{task}: only {n}");
    }
    let mut ids = std::collections::HashSet::new();
    for s in &samples {
        assert!(ids.insert(s.id.clone()), "duplicate id {}", s.id);
        if let Some(img) = s.images.first() {
            let decoded = image::open(dir.path().join(img)).unwrap();
            assert_eq!(Some([decoded.width(), decoded.height()]), s.image_size);
            assert!(s.problem.starts_with("<image>"));
        }
        match s.task {
            Task::YesNo => assert!(matches!(&s.answer, Answer::Text(a) if a == "yes" || a == "no")),
            Task::Mcq => {
                assert_eq!(s.choices.len(), 4);
                let Answer::Text(letter) = &s.answer else {
                    panic!()
                };
                assert!(["A", "B", "C", "D"].contains(&letter.as_str()));
            }
            Task::Numeric => {
                let Answer::Text(n) = &s.answer else { panic!() };
                n.parse::<i64>().unwrap();
            }
            Task::Grounding => {
                let Answer::Json(boxes) = &s.answer else {
                    panic!()
                };
                let b: Vec<[u32; 4]> = serde_json::from_value(boxes.clone()).unwrap();
                let [w, h] = s.image_size.unwrap();
                assert!(b[0][0] < b[0][2] && b[0][2] <= w && b[0][1] < b[0][3] && b[0][3] <= h);
            }
            _ => {}
        }
    }
}

/// The grounding box is the exact extent of the named shape's pixels: every pixel of the
/// shape's colour lies inside it, and each of its four edges touches that colour.
#[test]
fn grounding_boxes_are_tight() {
    let synth = Synth::new(cfg(3000, 5)).unwrap();
    let colours = mixed_r1_data::synth::COLOURS;
    let mut checked = 0;
    for i in 0..synth.scenes() {
        let scene = synth.scene(i);
        let Some((_, img)) = &scene.image else {
            continue;
        };
        for s in scene.samples.iter().filter(|s| s.task == Task::Grounding) {
            let (name, rgb) = colours
                .iter()
                .find(|(n, _)| s.problem.contains(&format!(" {n} ")))
                .unwrap();
            // Only shapes whose colour is unique in the scene can be checked by colour alone.
            let same_colour = scene
                .samples
                .iter()
                .find(|t| t.meta["template"] == "shapes.caption")
                .unwrap();
            let Answer::Text(caption) = &same_colour.answer else {
                panic!()
            };
            if caption.matches(&format!(" {name} ")).count() != 1 {
                continue;
            }
            let Answer::Json(v) = &s.answer else { panic!() };
            let b: Vec<[u32; 4]> = serde_json::from_value(v.clone()).unwrap();
            let [x1, y1, x2, y2] = b[0];
            let (mut mx1, mut my1, mut mx2, mut my2) = (u32::MAX, u32::MAX, 0, 0);
            for (x, y, p) in img.enumerate_pixels() {
                if p.0 == *rgb {
                    mx1 = mx1.min(x);
                    my1 = my1.min(y);
                    mx2 = mx2.max(x + 1);
                    my2 = my2.max(y + 1);
                }
            }
            assert_eq!([mx1, my1, mx2, my2], [x1, y1, x2, y2], "{}", s.id);
            checked += 1;
        }
    }
    assert!(checked > 100, "{checked}");
}

#[test]
fn math_answers_follow_from_the_text() {
    let synth = Synth::new(cfg(4000, 9)).unwrap();
    let mut seen = 0;
    for i in 0..synth.scenes() {
        for s in synth.scene(i).samples {
            if s.meta["template"] == "math.distance" {
                // "A train travels at V km/h for T hours ..."
                let nums: Vec<i64> = s
                    .problem
                    .split(|c: char| !c.is_ascii_digit())
                    .filter(|t| !t.is_empty())
                    .map(|t| t.parse().unwrap())
                    .collect();
                assert_eq!(s.answer, Answer::Text((nums[0] * nums[1]).to_string()));
                seen += 1;
            }
        }
    }
    assert!(seen > 10);
}

#[test]
fn real_stock_numbers_when_the_asset_is_there() {
    let Some(path) = stocks_path() else {
        // CI fetches every asset first, so there a missing one is a failure, not a skip.
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "Stocks.csv missing under CI=true (scripts/fetch-assets.sh mpl-sample-data)"
        );
        eprintln!("skipped: Stocks.csv not fetched (scripts/fetch-assets.sh mpl-sample-data)");
        return;
    };
    let stocks = Stocks::load(&path).unwrap();
    assert_eq!(stocks.series.len(), 10);
    let ibm = stocks.series.iter().find(|s| s.ticker == "IBM").unwrap();
    assert_eq!(ibm.years[0].0, 1990);
    assert!((ibm.years[0].1 - 10.970438003540039).abs() < 1e-9);
    let mut c = cfg(600, 4);
    c.stocks = Some(path);
    let dir = tempfile::tempdir().unwrap();
    let summary = synth::generate(&c, dir.path(), &ProgressBar::hidden()).unwrap();
    assert!(summary.real_chart_numbers);
    assert!(summary.per_source["synth-stocks"] > 50);
    assert!(summary.per_source["synth-chart"] > 50);
    // A value question about IBM in 1990 must answer the CSV's first close of 1990.
    for s in read_samples(dir.path()) {
        if s.meta["template"] == "chart.value" && s.problem.contains(" of IBM for year 1990") {
            assert_eq!(s.answer, Answer::Text("11.0".into()));
        }
    }
}

#[test]
fn stocks_parse_errors_name_the_row() {
    let err = Stocks::parse("Date,A\n1990-01-01,1\n19x0-02-01,2\n").unwrap_err();
    assert!(err.contains("data row 2"), "{err}");
    assert!(Stocks::parse("").is_err());
}
