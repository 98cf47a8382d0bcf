//! Property tests: no input panics any reward, scores stay in [0, 1] or skip, and pathological
//! inputs return (the 1 MB cases below would hang or overflow a recursive or backtracking parser).

use mixed_r1_reward::chart::{chart_accuracy, ChartConfig, ChartMode};
use mixed_r1_reward::extract::{extract_answer, Fallback};
use mixed_r1_reward::format::{format_score, FormatMode};
use mixed_r1_reward::iou::{
    gold_boxes_text, iou_accuracy, parse_boxes, BoxContext, Frame, IouConfig,
};
use mixed_r1_reward::matching::{mcq_accuracy, yes_no_accuracy};
use mixed_r1_reward::math::{math_accuracy, MathConfig};
use mixed_r1_reward::number::{numeric_accuracy, NumericConfig};
use mixed_r1_reward::{Accuracy, RewardConfig, Scorer};
use proptest::prelude::*;

fn in_range(a: &Accuracy) -> bool {
    match a {
        Ok(v) => (0.0..=1.0).contains(v),
        Err(_) => true,
    }
}

/// Strings made of the characters that matter to the parsers, plus anything.
fn tricky() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[<>/a-z{}()\\[\\],.%$0-9 \\\\-]{0,80}",
        "(<think>|</think>|<answer>|</answer>|< answer >|\\\\boxed\\{|\\}|\\[|\\]|\\(|\\)|,|[0-9]{1,4}|\\.| |yes|no|[A-E]|%|e|-){0,40}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]

    #[test]
    fn no_reward_panics(pred in tricky(), gold in tricky()) {
        let choices = vec!["cat".to_string(), "dog".to_string()];
        prop_assert!(in_range(&yes_no_accuracy(&pred, &gold)));
        prop_assert!(in_range(&mcq_accuracy(&pred, &gold, &choices)));
        prop_assert!(in_range(&mcq_accuracy(&pred, &gold, &[])));
        prop_assert!(in_range(&numeric_accuracy(&pred, &gold, &NumericConfig::default())));
        prop_assert!(in_range(&chart_accuracy(&pred, &gold, &ChartConfig::default())));
        let partial = ChartConfig { mode: ChartMode::Partial, tolerance_abs: 0.5, ..Default::default() };
        prop_assert!(in_range(&chart_accuracy(&pred, &gold, &partial)));
        prop_assert!(in_range(&math_accuracy(&pred, &gold, &MathConfig::default())));
        for mode in [FormatMode::ThinkAnswer, FormatMode::AnswerOnly, FormatMode::Boxed] {
            let f = format_score(&pred, mode).unwrap();
            prop_assert!(f == 0.0 || f == 1.0);
            let _ = extract_answer(&pred, mode, Fallback::Lenient);
            let _ = extract_answer(&pred, mode, Fallback::Strict);
        }
        if let Ok(golds) = gold_boxes_text(&gold) {
            for frame in [Frame::Abs, Frame::AbsResized, Frame::Rel1000, Frame::Rel1] {
                let ctx = BoxContext { frame: Some(Frame::Abs), pred_frame: Some(frame), image_size: Some([640.0, 480.0]) };
                prop_assert!(in_range(&iou_accuracy(&pred, &golds, &ctx, &IouConfig::default())));
            }
        }
    }

    #[test]
    fn boxes_of_any_numbers(vals in prop::collection::vec(prop_oneof![any::<f64>(), -1e4f64..1e4], 4..40),
                            w in prop_oneof![Just(0.0), 1e-3f64..1e5, Just(f64::NAN), Just(f64::INFINITY)],
                            h in 1e-3f64..1e5) {
        let text: String = vals.chunks(4).map(|c| format!("{:?}", c)).collect::<Vec<_>>().join(" ");
        let golds = parse_boxes(&text);
        let ctx = BoxContext { frame: Some(Frame::Rel1), pred_frame: Some(Frame::AbsResized), image_size: Some([w, h]) };
        prop_assert!(in_range(&iou_accuracy(&text, &golds, &ctx, &IouConfig::default())));
    }

    #[test]
    fn scorer_never_panics_on_lines(line in tricky(), task in prop::sample::select(vec!["yes_no", "mcq", "numeric", "math", "chart", "grounding", "open_ended", "x"])) {
        let scorer = Scorer::new(RewardConfig::default()).unwrap();
        for json in [
            line.clone(),
            serde_json::json!({"task": task, "answer": line, "response": line, "image_size": [64, 64]}).to_string(),
        ] {
            let r = scorer.score_json_line(&json);
            prop_assert!(r.error.is_none() || r.reward.is_none());
            if let Some(a) = r.accuracy { prop_assert!((0.0..=1.0).contains(&a)); }
            if let Some(f) = r.format { prop_assert!(f == 0.0 || f == 1.0); }
        }
    }
}

/// Pathological inputs of 1 MB: each call must return (the suite's own time limit is the bound;
/// the bench scripts measure the time).
#[test]
fn pathological_megabyte_inputs_return() {
    const MB: usize = 1 << 20;
    let inputs = [
        "{".repeat(MB),
        "(".repeat(MB),
        "[".repeat(MB),
        format!("{}{}", "\\frac{".repeat(MB / 6), "}".repeat(MB / 6)),
        "\\boxed{".repeat(MB / 7),
        "<answer>".repeat(MB / 8),
        "< answer".repeat(MB / 8),
        "1,000".repeat(MB / 5),
        "9".repeat(MB),
        "[1,2,3,4".repeat(MB / 8),
        "(1,2),(".repeat(MB / 7),
        "A".repeat(MB),
        "yes ".repeat(MB / 4),
        "é".repeat(MB / 2),
    ];
    let scorer = Scorer::new(RewardConfig::default()).unwrap();
    for s in &inputs {
        let started = std::time::Instant::now();
        for task in ["yes_no", "mcq", "numeric", "math", "chart", "grounding"] {
            let response = format!("<think>x</think><answer>{s}</answer>");
            for (gold, resp) in [
                (s.as_str(), response.as_str()),
                ("1", response.as_str()),
                (s.as_str(), "<answer>1</answer>"),
            ] {
                let line = serde_json::json!({"task": task, "answer": gold, "response": resp, "image_size": [64, 64]});
                let sample = serde_json::from_value(line).unwrap();
                let r = scorer.score(&sample);
                if let Some(a) = r.accuracy {
                    assert!((0.0..=1.0).contains(&a));
                }
            }
        }
        eprintln!(
            "{:>9} bytes starting {:?}: {:?} for 18 calls",
            s.len(),
            &s[..s.char_indices().nth(8).map_or(s.len(), |(i, _)| i)],
            started.elapsed()
        );
    }
}
