//! The hard cases users hit, through the public `Scorer` exactly as the CLI and the trainer use it.

use mixed_r1_reward::{RewardConfig, ScoreResult, Scorer};
use serde_json::json;

fn scorer() -> Scorer {
    Scorer::new(RewardConfig::default()).unwrap()
}

fn wrap(answer: &str) -> String {
    format!("<think>Let me look.</think>\n<answer>{answer}</answer>")
}

/// Accuracy of `answer` (wrapped in the format) for a sample with these extra fields.
fn acc(task: &str, gold: serde_json::Value, answer: &str, extra: serde_json::Value) -> Option<f64> {
    result(task, gold, &wrap(answer), extra).accuracy
}

fn result(
    task: &str,
    gold: serde_json::Value,
    response: &str,
    extra: serde_json::Value,
) -> ScoreResult {
    let mut s = json!({"task": task, "answer": gold, "response": response});
    for (k, v) in extra.as_object().unwrap() {
        s[k] = v.clone();
    }
    scorer().score_json_line(&s.to_string())
}

#[test]
fn letters_inside_words_never_count() {
    let none = json!({});
    assert_eq!(
        acc("mcq", json!("B"), "Both options look wrong", none.clone()),
        Some(0.0)
    );
    assert_eq!(
        acc("mcq", json!("A"), "A cat sits on the mat", none.clone()),
        Some(0.0)
    );
    assert_eq!(
        acc("mcq", json!("C"), "Clearly (C)", none.clone()),
        Some(1.0)
    );
    assert_eq!(acc("mcq", json!("D"), "Definitely D.", none), Some(1.0));
}

#[test]
fn last_answer_wins() {
    let r = "<think>x</think><answer>A</answer><answer>C</answer>";
    assert_eq!(result("mcq", json!("C"), r, json!({})).accuracy, Some(1.0));
    // Two blocks break the format, but the last one is still the answer.
    assert_eq!(result("mcq", json!("C"), r, json!({})).format, Some(0.0));
    assert_eq!(
        acc("mcq", json!("C"), "Initially A. Final answer: C", json!({})),
        Some(1.0)
    );
    assert_eq!(
        acc("numeric", json!("12"), "3 x 4 = 12", json!({})),
        Some(1.0)
    );
    // The answer inside <think> is not the answer.
    let r = "<think><answer>yes</answer></think><answer>no</answer>";
    assert_eq!(
        result("yes_no", json!("no"), r, json!({})).accuracy,
        Some(1.0)
    );
}

#[test]
fn yes_no_words() {
    let n = json!({});
    assert_eq!(
        acc("yes_no", json!("yes"), "my eyes see it", n.clone()),
        Some(0.0)
    );
    assert_eq!(
        acc("yes_no", json!("yes"), "Yes and no", n.clone()),
        Some(0.0)
    );
    assert_eq!(
        acc("yes_no", json!("no"), "Nope, not here", n.clone()),
        Some(0.0)
    );
    assert_eq!(acc("yes_no", json!("no"), "NO.", n.clone()), Some(1.0));
    assert_eq!(acc("yes_no", json!(true), "True", n.clone()), Some(1.0));
    assert_eq!(
        acc("yes_no", json!("yes"), "Ja, yes — definitely", n),
        Some(1.0)
    );
}

#[test]
fn numbers_percent_years_separators_units_zero() {
    let n = json!({});
    assert_eq!(
        acc("numeric", json!("1234567"), "1,234,567", n.clone()),
        Some(1.0)
    );
    assert_eq!(
        acc("numeric", json!("1,234"), "1234.0 km", n.clone()),
        Some(1.0)
    );
    assert_eq!(acc("numeric", json!("12"), "12 cm²", n.clone()), Some(1.0));
    assert_eq!(acc("numeric", json!("€5"), "5 euros", n.clone()), Some(1.0));
    assert_eq!(acc("numeric", json!("0"), "0.0", n.clone()), Some(1.0));
    assert_eq!(acc("numeric", json!("0"), "0.001", n.clone()), Some(0.0));
    assert_eq!(acc("numeric", json!("-3"), "−3", n.clone()), Some(1.0));
    assert_eq!(acc("numeric", json!(42), "42", n.clone()), Some(1.0));
    // Percent: numeric strips it; chart reads it both ways.
    assert_eq!(acc("numeric", json!("50%"), "50", n.clone()), Some(1.0));
    assert_eq!(acc("chart", json!("0.5"), "50%", n.clone()), Some(1.0));
    assert_eq!(acc("chart", json!("50%"), "0.5", n.clone()), Some(1.0));
    assert_eq!(acc("chart", json!("50"), "0.5", n.clone()), Some(0.0));
    // Years are exact in charts, other values within 5%.
    assert_eq!(acc("chart", json!("2019"), "2020", n.clone()), Some(0.0));
    assert_eq!(acc("chart", json!("2019"), "2019", n.clone()), Some(1.0));
    assert_eq!(acc("chart", json!("2000.5"), "2010", n.clone()), Some(1.0));
    assert_eq!(acc("chart", json!("0"), "0", n.clone()), Some(1.0));
    assert_eq!(acc("chart", json!("0"), "0.0001", n), Some(0.0));
}

#[test]
fn boxes_floats_swapped_frames() {
    let size = json!({"image_size": [640, 480]});
    let gold = json!([[100, 100, 200, 200]]);
    assert_eq!(
        acc(
            "grounding",
            gold.clone(),
            "[100.0, 100.0, 200.0, 200.0]",
            size.clone()
        ),
        Some(1.0)
    );
    // An inverted box is invalid and dropped (DESIGN.md); `iou.reorder = true` repairs it.
    assert_eq!(
        acc(
            "grounding",
            gold.clone(),
            "[200, 200, 100, 100]",
            size.clone()
        ),
        Some(0.0)
    );
    let reorder =
        Scorer::new(RewardConfig::from_toml_str("[iou]\nreorder = true").unwrap()).unwrap();
    let line = json!({"task": "grounding", "answer": gold.clone(), "image_size": [640, 480],
                      "response": wrap("[200, 200, 100, 100]")});
    assert_eq!(
        reorder.score_json_line(&line.to_string()).accuracy,
        Some(1.0)
    );
    assert_eq!(
        acc(
            "grounding",
            gold.clone(),
            "[100, 100, 150, 200]",
            size.clone()
        ),
        Some(0.5)
    );
    // Every frame, the same box.
    let frames = [
        ("abs", "[100, 100, 200, 200]"),
        ("rel1", "[0.15625, 0.2083333333, 0.3125, 0.4166666667]"),
        ("rel1000", "[156.25, 208.333333, 312.5, 416.666667]"),
        // 640x480 resizes to 644x476.
        ("abs_resized", "[100.625, 99.1666667, 201.25, 198.333333]"),
    ];
    for (frame, answer) in frames {
        let a = acc(
            "grounding",
            gold.clone(),
            answer,
            json!({"image_size": [640, 480], "pred_frame": frame}),
        )
        .unwrap();
        assert!((a - 1.0).abs() < 1e-6, "{frame}: {a}");
    }
    // Gold in rel1000, prediction in abs.
    let a = acc(
        "grounding",
        json!([[156.25, 208.333333, 312.5, 416.666667]]),
        "[100, 100, 200, 200]",
        json!({"image_size": [640, 480], "frame": "rel1000", "pred_frame": "abs"}),
    )
    .unwrap();
    assert!((a - 1.0).abs() < 1e-6);
    // Without an image size, frames that differ cannot be compared: skip, not 0.
    let r = result(
        "grounding",
        gold.clone(),
        &wrap("[0.1, 0.1, 0.3, 0.4]"),
        json!({"pred_frame": "rel1"}),
    );
    assert_eq!(r.accuracy, None);
    assert!(r.error.unwrap().contains("image_size"));
    // Same frame without a size works.
    assert_eq!(
        acc("grounding", gold, "[100, 100, 200, 200]", json!({})),
        Some(1.0)
    );
    // Out-of-image parts are clamped away.
    assert_eq!(
        acc(
            "grounding",
            json!([[600, 400, 640, 480]]),
            "[600, 400, 700, 500]",
            size
        ),
        Some(1.0)
    );
}

#[test]
fn anti_hacking() {
    let size = json!({"image_size": [640, 480]});
    let gold = json!([[100, 100, 200, 200]]);
    // The whole image when the object is small.
    assert_eq!(
        acc("grounding", gold.clone(), "[0, 0, 640, 480]", size.clone()),
        Some(0.0)
    );
    // ...but fine when the gold itself is large.
    assert_eq!(
        acc(
            "grounding",
            json!([[0, 0, 630, 470]]),
            "[0, 0, 640, 480]",
            size.clone()
        )
        .map(|a| a > 0.9),
        Some(true)
    );
    // Spraying boxes: 21 boxes, one of them exact.
    let many: Vec<String> = (0..20)
        .map(|i| format!("[{i}, {i}, {}, {}]", i + 10, i + 10))
        .collect();
    let spray = format!("[100, 100, 200, 200], {}", many.join(", "));
    assert_eq!(
        acc("grounding", gold.clone(), &spray, size.clone()),
        Some(0.0)
    );
    // A few extra boxes dilute the score (one exact of three predicted).
    let a = acc(
        "grounding",
        gold.clone(),
        "[100,100,200,200] [0,0,10,10] [300,300,310,310]",
        size.clone(),
    )
    .unwrap();
    assert!((a - 1.0 / 3.0).abs() < 1e-9);
    // Negative sample: the object is not there.
    assert_eq!(
        acc(
            "grounding",
            json!([]),
            "There is no such object.",
            size.clone()
        ),
        Some(1.0)
    );
    assert_eq!(
        acc("grounding", json!([]), "[1, 2, 30, 40]", size.clone()),
        Some(0.0)
    );
    // A broken response does not solve a negative sample.
    assert_eq!(
        result("grounding", json!([]), "<think>none", size).accuracy,
        Some(0.0)
    );
}

#[test]
fn unclosed_tags_and_formats() {
    let r = result(
        "yes_no",
        json!("yes"),
        "<think>fine</think><answer>yes",
        json!({}),
    );
    assert_eq!(
        (r.format, r.accuracy, r.reward),
        (Some(0.0), Some(0.0), Some(0.0))
    );
    let r = result(
        "yes_no",
        json!("yes"),
        "<think>fine<answer>yes</answer>",
        json!({}),
    );
    assert_eq!((r.format, r.accuracy), (Some(0.0), Some(1.0)));
    let r = result("yes_no", json!("yes"), "", json!({}));
    assert_eq!(
        (r.format, r.accuracy, r.reward),
        (Some(0.0), Some(0.0), Some(0.0))
    );
    let lenient =
        Scorer::new(RewardConfig::from_toml_str("[extract]\nfallback = \"lenient\"").unwrap())
            .unwrap();
    let line =
        json!({"task": "numeric", "answer": "7", "response": "<think>3+4</think> so \\boxed{7}"})
            .to_string();
    assert_eq!(lenient.score_json_line(&line).accuracy, Some(1.0));
    assert_eq!(scorer().score_json_line(&line).accuracy, Some(0.0));
}

#[test]
fn unicode_and_very_long_inputs() {
    let r = result(
        "mcq",
        json!("B"),
        "<think>是的 ünïcödé 🤖</think><answer>答案是 (B)</answer>",
        json!({}),
    );
    assert_eq!((r.format, r.accuracy), (Some(1.0), Some(1.0)));
    let long_think = "lorem ipsum ".repeat(100_000);
    let r = result(
        "yes_no",
        json!("no"),
        &format!("<think>{long_think}</think><answer>No</answer>"),
        json!({}),
    );
    assert_eq!((r.format, r.accuracy), (Some(1.0), Some(1.0)));
    let long_answer = format!("{} 42", "9 ".repeat(200_000));
    assert_eq!(
        acc("numeric", json!("42"), &long_answer, json!({})),
        Some(1.0)
    );
    let many_boxes = "[1,2,3,4] ".repeat(50_000);
    assert_eq!(
        acc("grounding", json!([[1, 2, 3, 4]]), &many_boxes, json!({})),
        Some(0.0)
    );
}

#[test]
fn unusable_gold_skips_never_scores_one() {
    for (task, gold) in [
        ("yes_no", json!("perhaps")),
        ("mcq", json!("banana")),
        ("numeric", json!("N/A")),
        ("numeric", json!("3 or 4")),
        ("chart", json!("")),
        ("grounding", json!("the left one")),
        ("grounding", json!([[5, 5, 5, 5]])),
        ("grounding", json!([[1, 2, 3]])),
        ("open_ended", json!("")),
    ] {
        let r = result(
            task,
            gold.clone(),
            &wrap("yes"),
            json!({"image_size": [10, 10]}),
        );
        assert_eq!((r.reward, r.accuracy), (None, None), "{task} {gold}");
        assert!(r.error.is_some(), "{task} {gold}");
    }
}

#[test]
fn batch_is_parallel_and_ordered() {
    let s = scorer();
    let lines: Vec<String> = (0..5000)
        .map(|i| json!({"id": i, "task": "numeric", "answer": i.to_string(), "response": wrap(&(i % 7).to_string())}).to_string())
        .collect();
    let out = s.score_json_lines(&lines);
    for (i, r) in out.iter().enumerate() {
        assert_eq!(r.id, Some(json!(i)));
        assert_eq!(r.accuracy, Some(if i < 7 { 1.0 } else { 0.0 }));
    }
}
