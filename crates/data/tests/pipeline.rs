//! `data build` end to end: a dirty input full of planted faults, counts conserved, files
//! written; a synthetic build honouring its recipe to the count.

use std::path::Path;

use image::{Rgb, RgbImage};
use mixed_r1_data::pipeline::{self, BuildError, BuildOptions, Recipe};
use serde_json::{json, Value};

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn png(path: &Path, x: u32, colour: [u8; 3]) {
    let mut img = RgbImage::from_pixel(96, 96, Rgb([250, 250, 250]));
    for yy in 30..60 {
        for xx in x..x + 30 {
            img.put_pixel(xx, yy, Rgb(colour));
        }
    }
    img.save(path).unwrap();
}

/// 30 good rows, then one planted fault of each kind, exact and near duplicates, and
/// difficulty rollouts; every row is accounted for.
#[test]
fn dirty_input_counts_are_conserved() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("img")).unwrap();
    for i in 0..10 {
        png(&d.join(format!("img/{i}.png")), 5 + i * 6, [200, 30, 30]);
    }
    std::fs::write(
        d.join("img/broken.png"),
        b"\x89PNG\r\n\x1a\nthis is not a png",
    )
    .unwrap();
    let mut rows: Vec<String> = Vec::new();
    for i in 0..10 {
        rows.push(json!({"id": format!("yn{i}"), "task": "yes_no", "images": [format!("img/{i}.png")],
            "problem": "<image>Is there a red square?", "answer": if i % 2 == 0 {"yes"} else {"no"}}).to_string());
        rows.push(json!({"id": format!("n{i}"), "task": "numeric", "problem": format!("What is {i} plus {}?", i * 3 + 1),
            "answer": format!("{}", i + i * 3 + 1)}).to_string());
        rows.push(json!({"id": format!("m{i}"), "task": "mcq", "images": [format!("img/{i}.png")],
            "problem": format!("<image>Which colour is shape {i}?\n(A) red\n(B) blue"), "choices": ["red", "blue"], "answer": "A"}).to_string());
    }
    let good = rows.len();
    // Planted faults: malformed JSON, missing image, undecodable image, answers that do not
    // parse for their task, no problem, a box outside its image.
    rows.push("{\"id\": \"bad-json\", \"problem\": ".into());
    rows.push(json!({"id": "no-image", "task": "yes_no", "images": ["img/missing.png"], "problem": "<image>Red?", "answer": "yes"}).to_string());
    rows.push(json!({"id": "broken-image", "task": "yes_no", "images": ["img/broken.png"], "problem": "<image>Red?", "answer": "yes"}).to_string());
    rows.push(
        json!({"id": "bad-number", "task": "numeric", "problem": "How many?", "answer": "several"})
            .to_string(),
    );
    rows.push(
        json!({"id": "bad-yesno", "task": "yes_no", "problem": "Is it?", "answer": "perhaps"})
            .to_string(),
    );
    rows.push(json!({"id": "no-problem", "task": "yes_no", "answer": "yes"}).to_string());
    rows.push(json!({"id": "bad-box", "task": "grounding", "images": ["img/0.png"], "problem": "<image>Locate it.",
        "answer": [[10, 10, 500, 500]], "frame": "abs"}).to_string());
    let faults = rows.len() - good;
    // Duplicates: two exact copies and two near copies (case and punctuation changed).
    rows.push(rows[1].clone());
    rows.push(rows[4].clone());
    rows.push(
        json!({"id": "near1", "task": "numeric", "problem": "WHAT is 2 plus 7 ?!", "answer": "9"})
            .to_string(),
    );
    rows.push(json!({"id": "near2", "task": "yes_no", "images": ["img/0.png"], "problem": "<image>is there a RED square", "answer": "yes"}).to_string());
    std::fs::write(d.join("dirty.jsonl"), rows.join("\n") + "\n").unwrap();

    // Rollouts: n0 always solved (filtered), n1 half solved (kept), the rest have none (kept).
    let ok = "<think>t</think><answer>1</answer>";
    let r_n1_good = "<think>t</think><answer>5</answer>";
    let roll = [
        json!({"id": "n0", "responses": [ok, ok, ok, ok]}),
        json!({"id": "n1", "responses": [r_n1_good, ok, r_n1_good, ok]}),
    ];
    std::fs::write(
        d.join("rollouts.jsonl"),
        roll.iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .unwrap();

    let recipe_text = r#"
[[source]]
name = "dirty"
format = "jsonl"
path = "dirty.jsonl"

[difficulty]
rollouts = "rollouts.jsonl"

[mix]
total = 20
seed = 1
[mix.tasks]
yes_no = 0.5
numeric = 0.25
mcq = 0.25

[output]
dir = "out"
"#;
    std::fs::write(d.join("recipe.toml"), recipe_text).unwrap();
    let recipe = Recipe::load(&d.join("recipe.toml")).unwrap();
    let out = pipeline::build(&recipe, &BuildOptions { quiet: true }).unwrap();
    let c = out.report.counts;
    assert_eq!(c.input, good + faults + 4);
    assert_eq!(c.rejected, faults, "{:?}", out.report.reasons);
    assert_eq!(c.deduplicated, 4);
    assert_eq!(c.filtered, 1);
    // 10 yes_no, 9 numeric (after difficulty), 10 mcq candidates; quotas 10 / 5 / 5.
    assert_eq!(c.kept, 20);
    assert_eq!(c.not_selected, 9 + 10 - 10);
    assert!(out.report.balanced);
    assert_eq!(
        c.input,
        c.kept + c.rejected + c.deduplicated + c.filtered + c.not_selected
    );

    let o = d.join("out");
    let rejected = lines(&o.join("rejected.jsonl"));
    assert_eq!(rejected.len(), faults);
    for r in &rejected {
        assert!(r["file"].as_str().unwrap().ends_with("dirty.jsonl"));
        assert!(r["line"].as_u64().unwrap() as usize > good, "{r}");
        assert!(!r["reason"].as_str().unwrap().is_empty());
    }
    let reason_of = |line: usize| {
        rejected
            .iter()
            .find(|r| r["line"] == line)
            .map(|r| r["reason"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert!(
        reason_of(good + 2).contains("missing.png"),
        "{}",
        reason_of(good + 2)
    );
    assert!(
        reason_of(good + 3).contains("broken.png"),
        "{}",
        reason_of(good + 3)
    );
    let dropped = lines(&o.join("dropped.jsonl"));
    assert_eq!(dropped.len(), c.deduplicated + c.filtered + c.not_selected);
    let exact: Vec<&Value> = dropped
        .iter()
        .filter(|r| {
            r["reason"]
                .as_str()
                .unwrap()
                .starts_with("exact duplicate of")
        })
        .collect();
    assert_eq!(exact.len(), 2);
    assert!(
        exact[0]["reason"]
            .as_str()
            .unwrap()
            .contains("dirty.jsonl:2 "),
        "{}",
        exact[0]
    );
    assert!(dropped
        .iter()
        .any(|r| r["id"] == "near1" && r["reason"].as_str().unwrap().contains("dirty.jsonl:8 ")));
    assert!(dropped
        .iter()
        .any(|r| r["id"] == "near2" && r["reason"].as_str().unwrap().contains("dirty.jsonl:1 ")));
    assert!(dropped
        .iter()
        .any(|r| r["id"] == "n0" && r["stage"] == "difficulty"));

    let train = lines(&o.join("train.jsonl"));
    assert_eq!(train.len(), 20);
    for s in &train {
        for img in s["images"].as_array().into_iter().flatten() {
            assert!(o.join(img.as_str().unwrap()).is_file(), "{img}");
        }
    }
    assert!(o.join("train.verl.parquet").is_file() && o.join("train.easyr1.parquet").is_file());
    let card = std::fs::read_to_string(o.join("card.md")).unwrap();
    assert!(
        card.contains(&format!(
            "| {} | 20 | {} | 4 | 1 | 9 | yes |",
            c.input, faults
        )),
        "{card}"
    );
    assert!(card.contains("image not found"));
    for png in [
        "tasks_per_stage.png",
        "answer_lengths.png",
        "image_sizes.png",
    ] {
        let img = image::open(o.join(png)).unwrap();
        assert!(img.width() >= 400);
    }
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(o.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["balanced"], true);
    assert_eq!(report["counts"]["kept"], 20);
}

#[test]
fn a_missing_input_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("r.toml"),
        "[[source]]\nformat = \"jsonl\"\npath = \"nowhere/absent.jsonl\"\n[output]\ndir = \"o\"\n",
    )
    .unwrap();
    let recipe = Recipe::load(&dir.path().join("r.toml")).unwrap();
    let err = pipeline::build(&recipe, &BuildOptions { quiet: true })
        .err()
        .unwrap();
    assert!(matches!(err, BuildError::Data(_)));
    assert!(err.to_string().contains("absent.jsonl"), "{err}");

    let err = Recipe::load(&dir.path().join("no-recipe.toml"))
        .err()
        .unwrap();
    assert!(err.to_string().contains("no-recipe.toml"), "{err}");
    std::fs::write(
        dir.path().join("bad.toml"),
        "[mix]\ntotal = 10\n[mix.tasks]\nyes_no = 0.4\n[synth]\nout='s'\ncount=5\n",
    )
    .unwrap();
    let err = Recipe::load(&dir.path().join("bad.toml")).err().unwrap();
    assert!(err.to_string().contains("sum to 1"), "{err}");
}

/// Synthetic candidates through the whole pipeline; the mix hits every quota exactly.
#[test]
fn synthetic_build_honours_the_recipe_to_the_count() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"
[synth]
out = "synth"
count = 4000
seed = 5

[mix]
total = 1000
seed = 2
[mix.tasks]
yes_no = 0.2
mcq = 0.15
numeric = 0.1
math = 0.1
chart = 0.2
grounding = 0.15
open_ended = 0.1

[output]
dir = "out"
formats = ["jsonl"]
"#;
    std::fs::write(dir.path().join("r.toml"), text).unwrap();
    let recipe = Recipe::load(&dir.path().join("r.toml")).unwrap();
    let out = pipeline::build(&recipe, &BuildOptions { quiet: true }).unwrap();
    assert!(
        out.report.shortfalls.is_empty(),
        "{:?}",
        out.report.shortfalls
    );
    assert_eq!(out.samples.len(), 1000);
    let want = [
        ("yes_no", 200),
        ("mcq", 150),
        ("numeric", 100),
        ("math", 100),
        ("chart", 200),
        ("grounding", 150),
        ("open_ended", 100),
    ];
    let last = out.report.stages.last().unwrap();
    for (task, n) in want {
        assert_eq!(last.per_task[task], n, "{task}");
    }
    assert!(out.report.balanced);
    assert_eq!(out.report.counts.input, 4000);
    // A second build reuses the synthetic folder and gives the same dataset.
    let again = pipeline::build(&recipe, &BuildOptions { quiet: true }).unwrap();
    assert!(again.report.notes.iter().any(|n| n.contains("reused")));
    assert_eq!(
        out.samples.iter().map(|s| &s.id).collect::<Vec<_>>(),
        again.samples.iter().map(|s| &s.id).collect::<Vec<_>>()
    );
}
