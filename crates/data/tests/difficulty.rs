//! The difficulty filter on a hand-made rollouts file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mixed_r1_data::difficulty::{self, DifficultyConfig, Missing, Rollouts};
use mixed_r1_data::schema::{Origin, Row};
use mixed_r1_data::{Answer, Sample, Task};
use mixed_r1_reward::{RewardConfig, Scorer};
use serde_json::json;

fn sample(id: &str, task: Task, answer: Answer) -> Row<Sample> {
    Row {
        item: Sample {
            id: id.into(),
            source: "t".into(),
            task,
            images: vec![],
            problem: "q".into(),
            answer,
            choices: vec![],
            frame: (task == Task::Grounding).then_some(mixed_r1_reward::iou::Frame::Abs),
            pred_frame: None,
            image_size: (task == Task::Grounding).then_some([100, 100]),
            reward: None,
            meta: Default::default(),
        },
        origin: Origin {
            file: Arc::new(PathBuf::from("d.jsonl")),
            line: id[1..].parse().unwrap(),
        },
    }
}

fn r(ans: &str) -> String {
    format!("<think>thinking</think> <answer>{ans}</answer>")
}

const ROLLOUTS: &str = r#"{"id": "s1", "responses": ["<think>a</think><answer>yes</answer>", "<think>a</think><answer>yes</answer>", "<think>a</think><answer>yes</answer>", "<think>a</think><answer>yes</answer>"]}
{"id": "s2", "responses": ["<think>a</think><answer>no</answer>", "<think>a</think><answer>no</answer>", "<think>a</think><answer>no</answer>", "<think>a</think><answer>no</answer>"]}
{"id": "s3", "response": "<think>a</think><answer>12</answer>"}
{"id": "s3", "response": "<think>a</think><answer>13</answer>"}
{"id": "s3", "response": "<think>a</think><answer>12</answer>"}
{"id": "s3", "response": "<think>a</think><answer>7</answer>"}
not json at all
{"id": "s4", "responses": ["<think>a</think><answer>[10, 10, 50, 50]</answer>", "<think>a</think><answer>[10, 10, 50, 50]</answer>"]}
{"id": "s5", "responses": ["<think>a</think><answer>[10, 10, 50, 50]</answer>", "<think>a</think><answer>[60, 60, 90, 90]</answer>"]}
{"responses": ["no id"]}
"#;

fn rows() -> Vec<Row<Sample>> {
    vec![
        sample("s1", Task::YesNo, Answer::Text("yes".into())), // 4/4: too easy
        sample("s2", Task::YesNo, Answer::Text("yes".into())), // 0/4: too hard
        sample("s3", Task::Numeric, Answer::Text("12".into())), // 2/4: kept
        sample(
            "s4",
            Task::Grounding,
            Answer::Json(json!([[10, 10, 50, 50]])),
        ), // std 0: dropped
        sample(
            "s5",
            Task::Grounding,
            Answer::Json(json!([[10, 10, 50, 50]])),
        ), // std 0.5: kept
        sample("s6", Task::YesNo, Answer::Text("no".into())),  // no rollouts
    ]
}

#[test]
fn hand_made_rollouts_file() {
    let rollouts = Rollouts::parse(ROLLOUTS, Path::new("roll.jsonl"));
    assert_eq!(rollouts.by_id["s3"].len(), 4);
    assert_eq!(rollouts.bad_count, 2);
    assert!(
        rollouts.bad_lines[0].starts_with("roll.jsonl:7: not JSON"),
        "{:?}",
        rollouts.bad_lines
    );
    let scorer = Scorer::new(RewardConfig::default()).unwrap();
    let out = difficulty::filter(rows(), &rollouts, &DifficultyConfig::default(), &scorer);
    let kept: Vec<&str> = out.kept.iter().map(|r| r.item.id.as_str()).collect();
    assert_eq!(kept, vec!["s3", "s5", "s6"]);
    assert_eq!(out.kept_without_rollouts, 1);
    let s3 = &out.kept[0].item.meta["difficulty"];
    assert_eq!(s3["pass_rate"], 0.5);
    assert_eq!(s3["k"], 4);
    let reasons: Vec<(&str, &str)> = out
        .filtered
        .iter()
        .map(|r| (r.id.as_deref().unwrap(), r.reason.as_str()))
        .collect();
    assert!(
        reasons[0].0 == "s1" && reasons[0].1.starts_with("too easy: pass rate 4/4"),
        "{reasons:?}"
    );
    assert!(
        reasons[1].0 == "s2" && reasons[1].1.starts_with("too hard: pass rate 0/4"),
        "{reasons:?}"
    );
    assert!(
        reasons[2].0 == "s4" && reasons[2].1.contains("below the floor"),
        "{reasons:?}"
    );
    assert_eq!(out.kept.len() + out.filtered.len(), 6);
}

#[test]
fn band_and_missing_policy() {
    let rollouts = Rollouts::parse(ROLLOUTS, Path::new("roll.jsonl"));
    let scorer = Scorer::new(RewardConfig::default()).unwrap();
    // A band that admits the always-solved sample but not the half-solved one.
    let cfg = DifficultyConfig {
        band: Some([0.75, 1.0]),
        missing: Missing::Drop,
        ..Default::default()
    };
    let out = difficulty::filter(rows(), &rollouts, &cfg, &scorer);
    let kept: Vec<&str> = out.kept.iter().map(|r| r.item.id.as_str()).collect();
    assert_eq!(kept, vec!["s1", "s5"]);
    assert!(out
        .filtered
        .iter()
        .any(|r| r.id.as_deref() == Some("s6") && r.reason.contains("no rollouts")));
    // A lower pass threshold has no effect on 0/1 accuracies, but a std floor of 0.6 drops s5.
    let cfg = DifficultyConfig {
        std_floor: 0.6,
        ..Default::default()
    };
    let out = difficulty::filter(rows(), &rollouts, &cfg, &scorer);
    assert!(!out.kept.iter().any(|r| r.item.id == "s5"));
    let _ = r("x");
}
