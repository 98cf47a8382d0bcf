//! PNG line plots of a metric per task over steps (e.g. `reward/<task>`), drawn by
//! `mixed-r1-plot` (the embedded bitmap font, no system fonts, no Python), so a training run
//! leaves readable figures anywhere. The chart itself ([`render`], [`Series`], [`PlotOptions`],
//! the ticks) lives in `mixed-r1-plot` and is re-exported here; this module reads metric
//! records into series.

use std::path::Path;

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
