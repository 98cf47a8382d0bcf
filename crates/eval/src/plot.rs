//! PNG bar charts of shares (0–100 %), drawn with the data engine's canvas and bitmap font (no
//! system fonts, no plotting library): one chart per task (its headline metrics and format rate,
//! overall and per source), an overview across tasks, and a comparison of several runs.

use std::path::Path;

use anyhow::{Context, Result};
use mixed_r1_data::synth::draw::{encode_png, text_width, Canvas};
use mixed_r1_data::Task;

use crate::metrics::{headline, Metrics};
use crate::report::{label, Results};

const INK: [u8; 3] = [30, 30, 30];
const GRID: [u8; 3] = [220, 220, 220];
const SERIES: [[u8; 3]; 6] = [
    [66, 114, 196],
    [221, 132, 82],
    [85, 168, 104],
    [196, 78, 82],
    [129, 114, 178],
    [147, 120, 96],
];

/// A grouped bar chart of values in [0, 1] (drawn as percentages, each bar labelled with its
/// value); `None` leaves a gap marked `n/a`.
pub fn share_bars(title: &str, groups: &[(String, Vec<Option<f64>>)], series: &[String]) -> Canvas {
    let n_series = series.len().max(1);
    let slot_w = (n_series as u32 * 34 + 24).max(
        groups
            .iter()
            .flat_map(|(g, _)| g.split('\n').map(|p| text_width(p, 1) + 12))
            .max()
            .unwrap_or(0),
    );
    let width = (64 + slot_w * groups.len().max(1) as u32 + 16)
        .max(text_width(title, 2) + 24)
        .max(320);
    let height = 312u32;
    let mut c = Canvas::new(width, height, [255, 255, 255]);
    c.text_centred(width as f64 / 2.0, 8, title, 2, INK);
    let (left, right, top, base) = (56.0, width as f64 - 12.0, 44.0, height as f64 - 66.0);
    for k in 0..=4 {
        let y = base - (base - top) * k as f64 / 4.0;
        c.line((left, y), (right, y), 1, if k == 0 { INK } else { GRID });
        let t = format!("{}%", k * 25);
        c.text(
            left as i64 - 6 - text_width(&t, 1) as i64,
            y as i64 - 4,
            &t,
            1,
            INK,
        );
    }
    let slot = (right - left) / groups.len().max(1) as f64;
    let bar_w = ((slot * 0.8) / n_series as f64).clamp(4.0, 40.0);
    for (g, (name, values)) in groups.iter().enumerate() {
        let used = bar_w * values.len() as f64;
        let x0 = left + slot * g as f64 + (slot - used) / 2.0;
        for (s, v) in values.iter().enumerate() {
            let x = x0 + bar_w * s as f64;
            let cx = x + bar_w / 2.0;
            match v {
                Some(v) => {
                    let v = v.clamp(0.0, 1.0);
                    let h = v * (base - top);
                    c.fill_rect(
                        x.round() as i64 + 1,
                        (base - h).round() as i64,
                        (x + bar_w).round() as i64 - 1,
                        base as i64,
                        SERIES[s % SERIES.len()],
                    );
                    let t = format!("{:.0}", 100.0 * v);
                    c.text_centred(cx, (base - h) as i64 - 10, &t, 1, INK);
                }
                None => c.text_centred(cx, base as i64 - 10, "n/a", 1, INK),
            }
        }
        for (k, part) in name.split('\n').enumerate() {
            let y = base as i64 + 8 + 11 * k as i64;
            c.text_centred(left + slot * (g as f64 + 0.5), y, part, 1, INK);
        }
    }
    let mut x = left as i64;
    for (s, name) in series.iter().enumerate() {
        let y = height as i64 - 18;
        c.fill_rect(x, y, x + 10, y + 10, SERIES[s % SERIES.len()]);
        c.text(x + 14, y + 1, name, 1, INK);
        x += 14 + text_width(name, 1) as i64 + 18;
    }
    c
}

/// Writes a canvas as PNG.
pub fn save(c: &Canvas, path: &Path) -> Result<()> {
    let bytes = encode_png(&c.img).with_context(|| format!("cannot encode {}", path.display()))?;
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
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
