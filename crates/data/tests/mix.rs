//! The mix honours the recipe to the count and reports shortfalls instead of filling them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use mixed_r1_data::mix::{self, largest_remainder, MixConfig};
use mixed_r1_data::schema::{Origin, Row};
use mixed_r1_data::{Answer, Sample, Task};

fn candidates(per: &[(Task, &str, usize)]) -> Vec<Row<Sample>> {
    let mut out = Vec::new();
    for &(task, source, n) in per {
        for _ in 0..n {
            let line = out.len() + 1;
            out.push(Row {
                item: Sample {
                    id: format!("{source}-{line}"),
                    source: source.into(),
                    task,
                    images: vec![],
                    problem: format!("q{line}"),
                    answer: Answer::Text("yes".into()),
                    choices: vec![],
                    frame: None,
                    pred_frame: None,
                    image_size: None,
                    reward: None,
                    meta: Default::default(),
                },
                origin: Origin {
                    file: Arc::new(PathBuf::from("c.jsonl")),
                    line,
                },
            });
        }
    }
    out
}

fn shares(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

fn count(rows: &[Row<Sample>], task: Task) -> usize {
    rows.iter().filter(|r| r.item.task == task).count()
}

#[test]
fn largest_remainder_is_exact() {
    assert_eq!(largest_remainder(10, &[1.0, 1.0, 1.0]), vec![4, 3, 3]);
    assert_eq!(
        largest_remainder(45000, &[0.2, 0.15, 0.1, 0.1, 0.2, 0.15, 0.1])
            .iter()
            .sum::<usize>(),
        45000
    );
    assert_eq!(largest_remainder(7, &[0.5, 0.25, 0.25]), vec![3, 2, 2]);
    assert_eq!(largest_remainder(5, &[0.0, 0.0]), vec![0, 0]);
}

#[test]
fn recipe_is_honoured_to_the_count() {
    let rows = candidates(&[
        (Task::YesNo, "a", 500),
        (Task::Mcq, "a", 300),
        (Task::Chart, "b", 400),
        (Task::Math, "b", 100),
    ]);
    let cfg = MixConfig {
        total: 777,
        seed: 3,
        tasks: shares(&[("yes_no", 0.4), ("mcq", 0.3), ("chart", 0.3)]),
        sources: Default::default(),
        shuffle: true,
    };
    cfg.validate().unwrap();
    let out = mix::mix(rows, &cfg);
    assert_eq!(out.selected.len(), 777);
    // 0.4 * 777 = 310.8, 0.3 * 777 = 233.1 twice: remainders .8 > .1 = .1 -> 311, 233, 233.
    assert_eq!(count(&out.selected, Task::YesNo), 311);
    assert_eq!(count(&out.selected, Task::Mcq), 233);
    assert_eq!(count(&out.selected, Task::Chart), 233);
    assert_eq!(count(&out.selected, Task::Math), 0);
    assert!(out.shortfalls.is_empty());
    assert_eq!(out.selected.len() + out.not_selected.len(), 1300);
    assert!(
        out.not_selected
            .iter()
            .filter(|r| r.reason.contains("task math has no share"))
            .count()
            == 100
    );

    // Same seed, same pick; another seed, another pick.
    let again = mix::mix(
        candidates(&[
            (Task::YesNo, "a", 500),
            (Task::Mcq, "a", 300),
            (Task::Chart, "b", 400),
            (Task::Math, "b", 100),
        ]),
        &cfg,
    );
    let ids = |o: &mix::MixOutcome| {
        o.selected
            .iter()
            .map(|r| r.item.id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&out), ids(&again));
    let other = mix::mix(
        candidates(&[
            (Task::YesNo, "a", 500),
            (Task::Mcq, "a", 300),
            (Task::Chart, "b", 400),
            (Task::Math, "b", 100),
        ]),
        &MixConfig {
            seed: 4,
            ..cfg.clone()
        },
    );
    assert_ne!(ids(&out), ids(&other));
}

#[test]
fn shortfalls_are_reported_never_filled() {
    let rows = candidates(&[(Task::YesNo, "a", 1000), (Task::Grounding, "a", 50)]);
    let cfg = MixConfig {
        total: 400,
        seed: 1,
        tasks: shares(&[("yes_no", 0.5), ("grounding", 0.5)]),
        sources: Default::default(),
        shuffle: false,
    };
    let out = mix::mix(rows, &cfg);
    assert_eq!(count(&out.selected, Task::YesNo), 200);
    assert_eq!(count(&out.selected, Task::Grounding), 50);
    assert_eq!(out.selected.len(), 250);
    assert_eq!(out.shortfalls.len(), 1);
    assert_eq!(
        (
            out.shortfalls[0].task.as_str(),
            out.shortfalls[0].wanted,
            out.shortfalls[0].available
        ),
        ("grounding", 200, 50)
    );
}

#[test]
fn source_shares_split_each_task() {
    let rows = candidates(&[
        (Task::YesNo, "easy", 300),
        (Task::YesNo, "synth", 300),
        (Task::Chart, "synth", 300),
        (Task::YesNo, "other", 50),
    ]);
    let cfg = MixConfig {
        total: 300,
        seed: 9,
        tasks: shares(&[("yes_no", 0.5), ("chart", 0.5)]),
        sources: shares(&[("easy", 0.3), ("synth", 0.7)]),
        shuffle: true,
    };
    let out = mix::mix(rows, &cfg);
    let n = |task: Task, src: &str| {
        out.selected
            .iter()
            .filter(|r| r.item.task == task && r.item.source == src)
            .count()
    };
    assert_eq!(n(Task::YesNo, "easy"), 45);
    assert_eq!(n(Task::YesNo, "synth"), 105);
    // Only synth offers charts: its share covers the whole chart quota.
    assert_eq!(n(Task::Chart, "synth"), 150);
    assert_eq!(n(Task::YesNo, "other"), 0);
    assert_eq!(out.selected.len(), 300);
}

#[test]
fn bad_shares_are_rejected() {
    let mut cfg = MixConfig {
        total: 10,
        seed: 0,
        tasks: shares(&[("yes_no", 0.5)]),
        sources: Default::default(),
        shuffle: true,
    };
    assert!(cfg.validate().unwrap_err().contains("sum to 1"));
    cfg.tasks = shares(&[("yesno", 1.0)]);
    assert!(cfg.validate().unwrap_err().contains("unknown task"));
}
