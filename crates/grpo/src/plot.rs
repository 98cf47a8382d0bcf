//! PNG line plots of a metric per task over steps (e.g. `reward/<task>`), drawn by
//! `mixed-r1-plot` (the embedded bitmap font, no system fonts, no Python), so a training run
//! leaves readable figures anywhere. The chart itself ([`render`], [`Series`], [`PlotOptions`],
//! the ticks) lives in `mixed-r1-plot` and is re-exported here; this module reads metric
//! records into series: one line per task ([`plot_metric_per_task`]) and the reward, entropy and
//! length curves of a run ([`plot_training_curves`]).

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::{GrpoError, Result};

pub use mixed_r1_plot::line_chart as render;
pub use mixed_r1_plot::{nice_ticks, tick_label, PlotOptions, Series, PALETTE};

/// Series `<prefix>/<task>` of every task found in JSONL metric records (keys sorted), e.g.
/// `per_task_series(&records, "reward")` for `reward/mcq`, `reward/grounding`, ...; the
/// batch-wide `<prefix>/mean` and `<prefix>/std` are not tasks and are left out.
pub fn per_task_series(records: &[Value], prefix: &str) -> Vec<Series> {
    let head = format!("{prefix}/");
    let mut names = std::collections::BTreeSet::new();
    for r in records {
        if let Some(obj) = r.as_object() {
            for k in obj.keys() {
                if let Some(task) = k.strip_prefix(&head) {
                    if !task.is_empty() && task != "mean" && task != "std" {
                        names.insert(task.to_string());
                    }
                }
            }
        }
    }
    names
        .into_iter()
        .map(|task| Series {
            points: crate::metrics::series(records, &format!("{head}{task}")),
            name: task,
        })
        .collect()
}

/// Renders and writes a PNG.
pub fn save_png(series: &[Series], opts: &PlotOptions, path: &Path) -> Result<()> {
    mixed_r1_plot::write_png(&render(series, opts), path).map_err(|e| GrpoError::io(path, e))
}

/// Plots `<metric>/<task>` from JSONL metric records into `path`, one line per task.
pub fn plot_metric_per_task(records: &[Value], metric: &str, path: &Path) -> Result<()> {
    let series = per_task_series(records, metric);
    let opts = PlotOptions {
        title: format!("{metric} per task"),
        y_label: metric.to_string(),
        ..Default::default()
    };
    save_png(&series, &opts, path)
}

/// Reward, entropy and response-length curves over steps (what a user watches in TensorBoard),
/// as PNG next to the per-task plots.
pub fn plot_training_curves(records: &[Value], dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| GrpoError::io(dir, e))?;
    let series = |key: &str| -> Series {
        Series {
            name: key.to_string(),
            points: crate::metrics::series(records, key),
        }
    };
    let mut out = Vec::new();
    for (file, title, keys, y) in [
        (
            "reward_curve.png",
            "training reward (mean over rollouts)",
            vec!["reward/mean", "accuracy/mean", "format/mean"],
            "reward",
        ),
        (
            "entropy_curve.png",
            "policy entropy (nats / token)",
            vec!["train/entropy"],
            "entropy",
        ),
        (
            "length_curve.png",
            "response length (tokens)",
            vec!["response/length_mean"],
            "tokens",
        ),
    ] {
        let s: Vec<Series> = keys.iter().map(|k| series(k)).collect();
        let path = dir.join(file);
        save_png(
            &s,
            &PlotOptions {
                title: title.to_string(),
                y_label: y.to_string(),
                ..Default::default()
            },
            &path,
        )?;
        out.push(path);
    }
    Ok(out)
}
