//! PNG bar charts of shares (0–100 %), drawn by `mixed-r1-plot` ([`share_bars`]; no system
//! fonts, no plotting library): one chart per task (its headline metrics and format rate,
//! overall and per source), an overview across tasks, and a comparison of several runs.

use std::path::Path;

use anyhow::{Context, Result};
use mixed_r1_data::Task;
use mixed_r1_plot::{write_png, Canvas};

use crate::metrics::{headline, Metrics};
use crate::report::{label, Results};

pub use mixed_r1_plot::share_bars;

/// Writes a canvas as PNG.
pub fn save(c: &Canvas, path: &Path) -> Result<()> {
    write_png(&c.img, path).with_context(|| format!("cannot write {}", path.display()))
}

/// The metrics a task's chart shows: its headline metrics and the format rate.
fn task_series(task: Task) -> Vec<&'static str> {
    let mut s = headline(task).to_vec();
    s.push("format_rate");
    s
}

/// The single headline number of a task (BMAS, or ROUGE-L without an embedding table).
pub fn headline_value(task: Task, m: &Metrics) -> Option<f64> {
    headline(task).iter().find_map(|n| m.get(n))
}

/// One chart per task (`<task>.png`) and `overview.png`, into `dir`. Returns the files written.
pub fn write_charts(r: &Results, dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut written = Vec::new();
    let mut overview = Vec::new();
    for task in Task::ALL {
        let Some(m) = r.tasks.get(task.as_str()) else {
            continue;
        };
        let names = task_series(task);
        let by = r.task_sources.get(task.as_str());
        // One source: name it; several: "all" and then each source.
        let first = match by.filter(|b| b.len() == 1).and_then(|b| b.keys().next()) {
            Some(src) => src.clone(),
            None => "all".to_string(),
        };
        let mut groups = vec![(first, names.iter().map(|n| m.get(n)).collect::<Vec<_>>())];
        if let Some(by) = by.filter(|b| b.len() > 1) {
            for (src, sm) in by {
                groups.push((src.clone(), names.iter().map(|n| sm.get(n)).collect()));
            }
        }
        let title = format!("{} ({} scored of {})", task.as_str(), m.scored, m.samples);
        let series: Vec<String> = names.iter().map(|n| label(n)).collect();
        let path = dir.join(format!("{}.png", task.as_str()));
        save(&share_bars(&title, &groups, &series), &path)?;
        written.push(path);
        let head = headline(task)
            .iter()
            .find(|n| m.get(n).is_some())
            .map(|n| label(n))
            .unwrap_or_default();
        overview.push((
            format!("{}\n{head}", task.as_str()),
            vec![headline_value(task, m), m.format_rate],
        ));
    }
    let series = vec![
        "headline metric (named under each task)".to_string(),
        "format".to_string(),
    ];
    let title = format!("all tasks ({} samples scored)", r.counts.scored);
    let path = dir.join("overview.png");
    save(&share_bars(&title, &overview, &series), &path)?;
    written.push(path);
    Ok(written)
}
