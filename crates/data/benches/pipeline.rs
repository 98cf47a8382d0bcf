//! The data engine's figures (a plain bench binary: each figure is one long run, which
//! criterion's repeated sampling would turn into minutes):
//!
//! 1. MinHash near-duplicate detection over 100,000 problems (target: under 10 s);
//! 2. a 45,000-sample build from 200,000 synthetic candidates, images included: synthesis,
//!    ingest, validation (every image decoded), dedup, mix, JSONL + verl + EasyR1 Parquet, card
//!    (target: under 2 minutes).
//!
//!   cargo bench -p mixed-r1-data --bench pipeline            # both
//!   cargo bench -p mixed-r1-data --bench pipeline -- minhash  # one
//!
//! Results are printed and written to `bench/results/data_pipeline.json` at the repository root.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use mixed_r1_data::dedup::{self, DedupConfig};
use mixed_r1_data::pipeline::{self, BuildOptions, Recipe};
use mixed_r1_data::schema::{Origin, Row};
use mixed_r1_data::{Answer, Sample, Task};
use serde_json::json;

fn problems(n: usize, planted_every: usize) -> (Vec<Row<Sample>>, usize) {
    let names = [
        "Ana", "Ben", "Chen", "Dina", "Eli", "Fatima", "Goran", "Hana",
    ];
    let items = [
        "apples", "pencils", "stickers", "marbles", "cards", "stamps",
    ];
    let file = Arc::new(PathBuf::from("bench.jsonl"));
    let mut rows = Vec::with_capacity(n);
    let mut planted = 0;
    let mut i = 0usize;
    while rows.len() < n {
        // `a` is unique per problem, so no two problems share text and answer by accident.
        let (a, b, c) = (100 * i + 3, i % 9 + 2, i % 7 + 2);
        let text = format!(
            "{} has {a} {} in a box. {} buys {b} bags with {c} {} in each bag. How many {} does {} have now?",
            names[i % 8],
            items[i % 6],
            if i % 2 == 0 { "She" } else { "He" },
            items[i % 6],
            items[i % 6],
            names[i % 8]
        );
        let answer = (a + b * c).to_string();
        let mk = |text: String, line: usize| Row {
            item: Sample {
                id: format!("p{line}"),
                source: "bench".into(),
                task: Task::Numeric,
                images: vec![],
                problem: text,
                answer: Answer::Text(answer.clone()),
                choices: vec![],
                frame: None,
                pred_frame: None,
                image_size: None,
                reward: None,
                meta: Default::default(),
            },
            origin: Origin {
                file: file.clone(),
                line,
            },
        };
        rows.push(mk(text.clone(), rows.len() + 1));
        if i % planted_every == 0 && rows.len() < n {
            rows.push(mk(
                text.to_uppercase().replace("now?", "now ?!"),
                rows.len() + 1,
            ));
            planted += 1;
        }
        i += 1;
    }
    (rows, planted)
}

fn minhash() -> serde_json::Value {
    let (rows, planted) = problems(100_000, 100);
    let cfg = DedupConfig::default();
    let start = Instant::now();
    let out = dedup::dedup(rows, &cfg, |_| None);
    let secs = start.elapsed().as_secs_f64();
    println!(
        "minhash near-dup over 100,000 problems: {secs:.2} s ({} planted, {} caught, {} exact), {} threads",
        planted,
        out.near,
        out.exact,
        rayon::current_num_threads()
    );
    json!({"problems": 100_000, "seconds": secs, "planted": planted, "near_found": out.near, "target_seconds": 10.0})
}

fn build(root: &Path) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let stocks = root.join(".cache/assets/mpl-sample-data/Stocks.csv");
    let text = format!(
        r#"
[synth]
out = "synth"
count = 200000
seed = 7
{}

[mix]
total = 45000
seed = 7
[mix.tasks]
yes_no = 0.20
mcq = 0.15
numeric = 0.10
math = 0.10
chart = 0.20
grounding = 0.15
open_ended = 0.10

[output]
dir = "out"
formats = ["jsonl", "verl", "easyr1"]
"#,
        if stocks.is_file() {
            format!("stocks = {:?}", stocks.display().to_string())
        } else {
            String::new()
        }
    );
    std::fs::write(dir.path().join("r.toml"), text).unwrap();
    let recipe = Recipe::load(&dir.path().join("r.toml")).unwrap();
    let start = Instant::now();
    let out = pipeline::build(&recipe, &BuildOptions { quiet: true }).unwrap();
    let secs = start.elapsed().as_secs_f64();
    let r = &out.report;
    println!(
        "45,000 from 200,000 synthetic candidates ({} images): {secs:.1} s; kept {}, deduplicated {}, shortfalls {}",
        r.synth.as_ref().map(|s| s.images).unwrap_or(0),
        r.counts.kept,
        r.counts.deduplicated,
        r.shortfalls.len()
    );
    for (stage, s) in &r.seconds {
        println!("  {stage:<17} {s:>6.1} s");
    }
    json!({"candidates": 200_000, "kept": r.counts.kept, "seconds": secs, "stages": r.seconds,
           "images": r.synth.as_ref().map(|s| s.images), "deduplicated": r.counts.deduplicated,
           "shortfalls": r.shortfalls, "target_seconds": 120.0})
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without it,
    // and a 200,000-candidate build has no place in the test suite (nor should it overwrite the
    // recorded figures).
    if !std::env::args().any(|a| a == "--bench") {
        println!("pipeline bench: run it with `cargo bench -p mixed-r1-data --bench pipeline`");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let want = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    let mut results = serde_json::Map::new();
    if want("minhash") {
        results.insert("minhash_100k".into(), minhash());
    }
    if want("build") {
        results.insert("build_45k_from_200k".into(), build(&root));
    }
    results.insert("threads".into(), json!(rayon::current_num_threads()));
    let out = root.join("bench/results/data_pipeline.json");
    if std::fs::create_dir_all(out.parent().unwrap()).is_ok() {
        let _ = std::fs::write(&out, serde_json::to_string_pretty(&results).unwrap() + "\n");
    }
}
