//! Writes a synthetic run's metrics the way the trainer does: `metrics.jsonl`, a TensorBoard
//! event file under `tb/`, and `reward_per_task.png`. Used to check the hand-written event
//! format against TensorBoard itself and to look at the plot.
//!
//! `cargo run -p mixed-r1-grpo --release --example metrics_demo -- <out-dir>`

use std::collections::BTreeMap;
use std::path::PathBuf;

use mixed_r1_grpo::metrics::{read_jsonl, MetricsLogger};
use mixed_r1_grpo::plot::plot_metric_per_task;

fn main() -> mixed_r1_grpo::Result<()> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "metrics-demo".into()),
    );
    let mut log = MetricsLogger::open(&out, None, true)?;
    for step in 1..=50u64 {
        let x = step as f64;
        let mut m = BTreeMap::new();
        m.insert("reward/mcq".into(), 0.3 + 0.6 * (1.0 - (-x / 10.0).exp()));
        m.insert("reward/grounding".into(), 0.1 + 0.01 * x);
        m.insert("reward/open_ended".into(), 0.5 + 0.1 * (x / 3.0).sin());
        m.insert("loss".into(), 1.0 / x);
        log.log(step, &m)?;
    }
    let tb = log.tb.as_ref().map(|t| t.path().to_path_buf());
    drop(log);
    let records = read_jsonl(&out.join("metrics.jsonl"))?;
    plot_metric_per_task(&records, "reward", &out.join("reward_per_task.png"))?;
    println!("wrote {} and {:?}", out.display(), tb);
    Ok(())
}
