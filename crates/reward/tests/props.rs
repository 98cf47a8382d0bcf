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

/// The option letters and the words that join them in hedges.
fn hedge_phrase() -> impl Strategy<Value = (u8, u8, String)> {
    (0u8..5, 1u8..5, 0usize..14).prop_map(|(a, d, form)| {
        let (x, y) = (b'A' + a, b'A' + (a + d) % 5);
        let (x, y) = (x as char, y as char);
        let text = match form {
            0 => format!("{x} or {y}"),
            1 => format!("{x}/{y}"),
            2 => format!("{x}, {y}"),
            3 => format!("either {x} or {y}"),
            4 => format!("({x})({y})"),
            5 => format!("{x} and {y}"),
            6 => format!("The answer is {x} or {y}."),
            7 => format!("({x}) or ({y})"),
            8 => format!("Option {x} or {y}"),
            9 => format!("{x} (or {y})"),
            10 => format!("**{x}** or **{y}**"),
            11 => format!("The answer is {x}, or maybe {y}"),
            12 => format!("I think {x}, but {y} is also possible"),
            _ => format!("both {x} and {y}"),
        };
        (x as u8, y as u8, text)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    /// No hedge between two different letters earns a single-letter gold, whichever letter
    /// the gold is, with or without choices, inside the trained format or not.
    #[test]
    fn mcq_hedges_never_score(
        (x, y, text) in hedge_phrase(),
        gold_is_first in any::<bool>(),
        with_choices in any::<bool>(),
        wrapped in any::<bool>(),
    ) {
        let gold = (if gold_is_first { x } else { y } as char).to_string();
        let choices: Vec<String> = if with_choices {
            ["cat", "dog", "red fox", "owl", "horse"].iter().map(|s| s.to_string()).collect()
        } else {
            Vec::new()
        };
        prop_assert_eq!(mcq_accuracy(&text, &gold, &choices), Ok(0.0), "{}", text);
        let scorer = Scorer::new(RewardConfig::default()).unwrap();
        let response = if wrapped { format!("<think>hmm</think><answer>{text}</answer>") } else { format!("<answer>{text}</answer>") };
        let line = serde_json::json!({"task": "mcq", "answer": gold, "choices": choices, "response": response});
        prop_assert_eq!(scorer.score_json_line(&line.to_string()).accuracy, Some(0.0));
    }

    /// A range or alternatives of two numbers never matches either number; a sequence that ends
    /// in the gold does.
    #[test]
    fn numeric_ranges_never_score(
        a in -1000i64..1000,
        d in 1i64..500,
        form in 0usize..10,
        chart in any::<bool>(),
    ) {
        let b = a + d;
        let text = match form {
            0 => format!("{a} or {b}"),
            1 => format!("between {a} and {b}"),
            2 => format!("{a} to {b}"),
            3 => format!("either {a} or {b}"),
            4 => format!("{a} cm or {b} cm"),
            5 => format!("x = {a} or x = {b}"),
            6 => format!("from {a} to {b}"),
            7 => format!("${a} or ${b}"),
            8 => format!("({a}) or ({b})"),
            _ => format!("{a}, or maybe {b}"),
        };
        for gold in [a, b] {
            let g = gold.to_string();
            let acc = if chart {
                chart_accuracy(&text, &g, &ChartConfig::default())
            } else {
                numeric_accuracy(&text, &g, &NumericConfig::default())
            };
            prop_assert_eq!(acc, Ok(0.0), "{} vs {}", text, g);
        }
        if a >= 0 {
            // A dash between non-negative numbers is a range too.
            prop_assert_eq!(numeric_accuracy(&format!("{a}-{b}"), &b.to_string(), &NumericConfig::default()), Ok(0.0));
        }
        let committed = format!("first {a}, then {b}");
        prop_assert_eq!(numeric_accuracy(&committed, &b.to_string(), &NumericConfig::default()), Ok(1.0));
    }

    /// Vision placeholder tokens anywhere in a response never change its score.
    #[test]
    fn vision_tokens_never_change_a_score(
        line in tricky(),
        task in prop::sample::select(vec!["yes_no", "mcq", "numeric", "math", "chart", "grounding"]),
        seed in any::<u64>(),
    ) {
        const TOKENS: [&str; 7] = ["<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<image>", "<IMG_CONTEXT>"];
        let scorer = Scorer::new(RewardConfig::default()).unwrap();
        let mut noisy = String::new();
        let mut state = seed;
        for ch in line.chars() {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            if state >> 61 == 0 {
                noisy.push_str(TOKENS[(state >> 32) as usize % TOKENS.len()]);
            }
            noisy.push(ch);
        }
        let sample = |response: &str| serde_json::json!({"task": task, "answer": line, "response": response, "image_size": [64, 64]}).to_string();
        let (clean, dirty) = (scorer.score_json_line(&sample(&line)), scorer.score_json_line(&sample(&noisy)));
        prop_assert_eq!((clean.format, clean.accuracy), (dirty.format, dirty.accuracy));
        let (a, b) = (mixed_r1_reward::strip_vision_tokens(&noisy), mixed_r1_reward::strip_vision_tokens(&line));
        prop_assert_eq!(a.as_ref(), b.as_ref());
    }

    /// Inverted or empty boxes never score by default, whatever their numbers; with `reorder`
    /// an inverted copy of a box scores as the box does.
    #[test]
    fn inverted_boxes_are_dropped(x1 in 0u32..600, y1 in 0u32..440, w in 1u32..40, h in 1u32..40, flip in 0usize..3) {
        let (x2, y2) = (x1 + w, y1 + h);
        let gold = [[x1 as f64, y1 as f64, x2 as f64, y2 as f64]];
        let pred = match flip {
            0 => format!("[{x2}, {y1}, {x1}, {y2}]"),
            1 => format!("[{x1}, {y2}, {x2}, {y1}]"),
            _ => format!("[{x2}, {y2}, {x1}, {y1}]"),
        };
        let ctx = BoxContext { image_size: Some([640.0, 480.0]), ..Default::default() };
        prop_assert_eq!(iou_accuracy(&pred, &gold, &ctx, &IouConfig::default()), Ok(0.0));
        let reorder = IouConfig { reorder: true, ..Default::default() };
        prop_assert_eq!(iou_accuracy(&pred, &gold, &ctx, &reorder), Ok(1.0));
        let flat = format!("[{x1}, {y1}, {x1}, {y2}]");
        prop_assert_eq!(iou_accuracy(&flat, &gold, &ctx, &reorder), Ok(0.0));
    }
}
