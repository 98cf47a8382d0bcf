//! Ingest throughput: our JSONL read (parallel parse) + normalise + validate (text fields only:
//! answers parsed with the reward crate's parsers, no image opened) + exact dedup (hash set of
//! `exact_dedup_key`), on 2 threads, over 200,000 generated rows of mixed tasks. The figure to
//! reach is 200,000 rows/s.
//!
//!   cargo bench -p mixed-r1-data --bench ingest

use std::collections::HashSet;
use std::fmt::Write as _;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mixed_r1_data::adapters::{read_source, spec_for};
use mixed_r1_data::normalise::{exact_dedup_key, normalise};
use mixed_r1_data::schema::SourceFormat;
use mixed_r1_data::validate::{validate_all, ValidateOptions};
use rayon::prelude::*;

const ROWS: usize = 200_000;

/// Rows like a mixed build's: yes/no, mcq with choices, numbers, LaTeX, chart values, boxes and
/// captions, with tasks given on half of them and inferred on the rest; 2% exact duplicates.
fn corpus() -> String {
    let mut s = String::with_capacity(ROWS * 200);
    for i in 0..ROWS {
        let j = if i % 50 == 49 { i - 1 } else { i }; // a duplicate of the row before
        let task = |t: &str| {
            if j % 2 == 0 {
                format!(r#""task": "{t}", "#)
            } else {
                String::new()
            }
        };
        let line = match j % 7 {
            0 => format!(
                r#"{{"id": "q{i}", {}"problem": "Is the shape in picture {j} a circle?", "answer": "yes"}}"#,
                task("yes_no")
            ),
            1 => format!(
                r#"{{"id": "q{i}", {}"problem": "Which colour is object {j}?\nOptions:\n(A) red\n(B) blue\n(C) green\n(D) teal", "choices": ["red", "blue", "green", "teal"], "answer": "C"}}"#,
                task("mcq")
            ),
            2 => format!(
                r#"{{"id": "q{i}", {}"problem": "A shop sells {j} apples at $2 each. How much money does it take in?", "answer": "{}"}}"#,
                task("numeric"),
                2 * j
            ),
            3 => format!(
                r#"{{"id": "q{i}", {}"problem": "Simplify $\\frac{{{j}}}{{{}}}$.", "answer": "\\frac{{1}}{{2}}"}}"#,
                task("math"),
                2 * j
            ),
            4 => format!(
                r#"{{"id": "q{i}", "source": "chartqa", {}"problem": "What is the value of bar {j}?", "answer": "{}.5"}}"#,
                task("chart"),
                j % 97
            ),
            5 => format!(
                r#"{{"id": "q{i}", {}"problem": "Locate object {j}.", "answer": [[{}, 20, {}, 120]], "frame": "abs", "image_size": [640, 480]}}"#,
                task("grounding"),
                j % 300,
                j % 300 + 100
            ),
            _ => format!(
                r#"{{"id": "q{i}", {}"problem": "Describe scene {j}.", "answer": "A red circle next to a small blue square on a grey table."}}"#,
                task("open_ended")
            ),
        };
        let _ = writeln!(s, "{line}");
    }
    s
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.jsonl");
    std::fs::write(&path, corpus()).unwrap();
    let spec = spec_for(&path, SourceFormat::Jsonl);
    let opts = ValidateOptions::text_only();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();

    let run = || {
        let rows = read_source(&spec).unwrap();
        let normalised: Vec<_> = rows
            .into_par_iter()
            .with_min_len(256)
            .filter_map(|r| r.ok().and_then(|row| normalise(row, "mixed").ok()))
            .collect();
        let (kept, rejected) = validate_all(normalised, &opts);
        let keys: Vec<u64> = kept
            .par_iter()
            .with_min_len(256)
            .map(|r| exact_dedup_key(&r.item))
            .collect();
        let mut seen = HashSet::with_capacity(keys.len());
        let unique = keys.into_iter().filter(|k| seen.insert(*k)).count();
        (unique, rejected.len())
    };
    let (unique, rejected) = pool.install(run);
    assert_eq!(rejected, 0);
    assert_eq!(unique, ROWS - ROWS / 50, "2% exact duplicates");

    let mut g = c.benchmark_group("ingest");
    g.throughput(Throughput::Elements(ROWS as u64));
    g.sample_size(10);
    g.bench_function("jsonl_normalise_validate_dedup_2_threads", |b| {
        b.iter(|| black_box(pool.install(run)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
