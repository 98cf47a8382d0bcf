//! Criterion micro-benchmarks of each reward and of a mixed batch.
//! `cargo bench -p mixed-r1-reward --bench rewards`
//! (The side-by-side comparisons with Python peers are the scripts in bench/.)

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mixed_r1_reward::chart::{chart_accuracy, ChartConfig};
use mixed_r1_reward::iou::{iou_accuracy, BoxContext, Frame, IouConfig};
use mixed_r1_reward::matching::{mcq_accuracy, yes_no_accuracy};
use mixed_r1_reward::math::{math_accuracy, MathConfig};
use mixed_r1_reward::number::{numeric_accuracy, NumericConfig};
use mixed_r1_reward::{RewardConfig, Scorer, ScoringSample};
use std::hint::black_box;

const THINK: &str = "The image shows a red shape near the centre of the frame; I compare it with \
    the question carefully and check the colour before I answer, step by step.";

fn mixed_batch(n: usize) -> Vec<ScoringSample> {
    let lines = [
        r#"{"task": "yes_no", "answer": "yes", "response": "<think>T</think>\n<answer>Yes</answer>"}"#,
        r#"{"task": "mcq", "answer": "B", "choices": ["cat", "dog", "fox", "owl"], "response": "<think>T</think>\n<answer>The answer is (B).</answer>"}"#,
        r#"{"task": "numeric", "answer": "1,234", "response": "<think>T</think>\n<answer>$1,234 in total</answer>"}"#,
        r#"{"task": "chart", "answer": "0.35", "response": "<think>T</think>\n<answer>35%</answer>"}"#,
        r#"{"task": "grounding", "answer": [[10, 20, 110, 220]], "frame": "abs", "pred_frame": "abs_resized", "image_size": [640, 480], "response": "<think>T</think>\n<answer>{\"bbox_2d\": [12, 25, 108, 215], \"label\": \"cup\"}</answer>"}"#,
    ];
    (0..n)
        .map(|i| {
            serde_json::from_str(
                &lines[i % lines.len()].replace("<think>T", &format!("<think>{THINK}")),
            )
            .unwrap()
        })
        .collect()
}

fn rewards(c: &mut Criterion) {
    let mut g = c.benchmark_group("reward");
    g.bench_function("yes_no", |b| {
        b.iter(|| yes_no_accuracy(black_box("No, it is green."), black_box("no")))
    });
    g.bench_function("mcq", |b| {
        b.iter(|| mcq_accuracy(black_box("The answer is (B)."), black_box("B"), &[]))
    });
    let nc = NumericConfig::default();
    g.bench_function("numeric", |b| {
        b.iter(|| numeric_accuracy(black_box("$1,234 in total"), black_box("1234"), &nc))
    });
    let cc = ChartConfig::default();
    g.bench_function("chart", |b| {
        b.iter(|| chart_accuracy(black_box("35%"), black_box("0.35"), &cc))
    });
    let ic = IouConfig::default();
    let ctx = BoxContext {
        frame: Some(Frame::Abs),
        pred_frame: Some(Frame::AbsResized),
        image_size: Some([640.0, 480.0]),
    };
    let gold = [[10.0, 20.0, 110.0, 220.0]];
    g.bench_function("iou", |b| {
        b.iter(|| {
            iou_accuracy(
                black_box(r#"{"bbox_2d": [12, 25, 108, 215]}"#),
                &gold,
                &ctx,
                &ic,
            )
        })
    });
    let mc = MathConfig::default();
    g.bench_function("math", |b| {
        b.iter(|| {
            math_accuracy(
                black_box(r"\frac{\sqrt{8}}{2}"),
                black_box(r"\sqrt{2}"),
                &mc,
            )
        })
    });
    g.finish();

    let scorer = Scorer::new(RewardConfig::default()).unwrap();
    let batch = mixed_batch(10_000);
    let mut g = c.benchmark_group("mixed_batch");
    g.throughput(Throughput::Elements(batch.len() as u64));
    g.bench_function("score_batch_10k", |b| {
        b.iter(|| scorer.score_batch(black_box(&batch)))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3));
    targets = rewards
}
criterion_main!(benches);
