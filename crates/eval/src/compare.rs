//! `--compare`: several result folders side by side (before vs after training), with each run's
//! difference from the first, as JSON, markdown and a chart.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use mixed_r1_data::Task;
use serde::{Deserialize, Serialize};

use crate::metrics::Metrics;
use crate::plot::{save, share_bars};
use crate::report::{cell, label, Counts};

/// What compare reads of a `results.json` (other fields are ignored, so older and newer
/// result files compare too).
#[derive(Debug, Clone, Deserialize)]
struct ResultsView {
    responder: String,
    #[serde(default)]
    counts: Counts,
    #[serde(default)]
    complete: bool,
    overall: Metrics,
    #[serde(default)]
    tasks: BTreeMap<String, Metrics>,
    #[serde(default)]
    sources: BTreeMap<String, Metrics>,
}

/// One compared run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub dir: String,
    pub responder: String,
    pub scored: usize,
    pub complete: bool,
}

/// One metric of one group across runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// `overall`, `task` or `source`.
    pub scope: String,
    pub group: String,
    pub metric: String,
    /// One value per run (`None`: that run has no such group or metric).
    pub values: Vec<Option<f64>>,
    /// `values[i] - values[0]` (the first entry is always `None`).
    pub deltas: Vec<Option<f64>>,
}

/// `compare.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub runs: Vec<RunInfo>,
    pub rows: Vec<Row>,
}

impl Comparison {
    /// The row of `scope` / `group` / `metric`.
    pub fn row(&self, scope: &str, group: &str, metric: &str) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.scope == scope && r.group == group && r.metric == metric)
    }
}

fn load(dir: &Path) -> Result<ResultsView> {
    let p = if dir.is_dir() {
        dir.join("results.json")
    } else {
        dir.to_path_buf()
    };
    let text =
        std::fs::read_to_string(&p).with_context(|| format!("cannot read {}", p.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not an eval results file", p.display()))
}

fn rows_for(scope: &str, group: &str, ms: &[Option<&Metrics>], out: &mut Vec<Row>) {
    let mut names: Vec<String> = Vec::new();
    for m in ms.iter().flatten() {
        for n in m.names() {
            if !names.contains(&n) {
                names.push(n);
            }
        }
    }
    for metric in names {
        let values: Vec<Option<f64>> = ms.iter().map(|m| m.and_then(|m| m.get(&metric))).collect();
        let deltas = values
            .iter()
            .enumerate()
            .map(|(i, v)| match (i, v, values[0]) {
                (0, _, _) => None,
                (_, Some(v), Some(b)) => Some(v - b),
                _ => None,
            })
            .collect();
        out.push(Row {
            scope: scope.into(),
            group: group.into(),
            metric,
            values,
            deltas,
        });
    }
}

/// Compares result folders (or `results.json` files); the first is the baseline.
pub fn compare(dirs: &[PathBuf]) -> Result<Comparison> {
    if dirs.len() < 2 {
        bail!("--compare needs at least two result folders");
    }
    let views: Vec<ResultsView> = dirs.iter().map(|d| load(d)).collect::<Result<_>>()?;
    let mut rows = Vec::new();
    let overall: Vec<Option<&Metrics>> = views.iter().map(|v| Some(&v.overall)).collect();
    rows_for("overall", "all", &overall, &mut rows);
    let mut task_names: Vec<String> = Task::ALL
        .iter()
        .map(|t| t.as_str().to_string())
        .filter(|t| views.iter().any(|v| v.tasks.contains_key(t)))
        .collect();
    for v in &views {
        for t in v.tasks.keys() {
            if !task_names.contains(t) {
                task_names.push(t.clone());
            }
        }
    }
    for t in &task_names {
        let ms: Vec<Option<&Metrics>> = views.iter().map(|v| v.tasks.get(t)).collect();
        rows_for("task", t, &ms, &mut rows);
    }
    let mut source_names: Vec<&String> = views.iter().flat_map(|v| v.sources.keys()).collect();
    source_names.sort();
    source_names.dedup();
    for s in source_names {
        let ms: Vec<Option<&Metrics>> = views.iter().map(|v| v.sources.get(s)).collect();
        rows_for("source", s, &ms, &mut rows);
    }
    Ok(Comparison {
        runs: dirs
            .iter()
            .zip(&views)
            .map(|(d, v)| RunInfo {
                dir: d.display().to_string(),
                responder: v.responder.clone(),
                scored: v.counts.scored,
                complete: v.complete,
            })
            .collect(),
        rows,
    })
}

fn run_letter(i: usize) -> String {
    if i < 26 {
        ((b'A' + i as u8) as char).to_string()
    } else {
        format!("R{}", i + 1)
    }
}

fn delta_cell(metric: &str, d: Option<f64>) -> String {
    match d {
        None => "–".into(),
        Some(d) => {
            let c = cell(metric, Some(d.abs()));
            let sign = if d > 0.0 {
                "+"
            } else if d < 0.0 {
                "−"
            } else {
                "±"
            };
            format!("{sign}{c}")
        }
    }
}

/// The comparison as markdown tables: runs named A, B, …, each Δ against A. Rates in %.
pub fn compare_markdown(c: &Comparison) -> String {
    let mut s = String::from("# Eval comparison\n\n");
    for (i, r) in c.runs.iter().enumerate() {
        let _ = writeln!(
            s,
            "- **{}**: `{}` — `{}`, {} samples scored{}",
            run_letter(i),
            r.dir,
            r.responder,
            r.scored,
            if r.complete { "" } else { " (incomplete)" }
        );
    }
    let scored: Vec<usize> = c.runs.iter().map(|r| r.scored).collect();
    if scored.iter().any(|&x| x != scored[0]) {
        let _ = writeln!(
            s,
            "\n**Note:** the runs scored different numbers of samples; compare with care."
        );
    }
    let _ = writeln!(
        s,
        "\nRates are percentages and their Δ percentage points; tokens and chars are mean \
         lengths, reward the mean total reward."
    );
    let n = c.runs.len();
    let mut head = String::from("| group | metric |");
    let mut rule = String::from("|---|---|");
    for i in 0..n {
        head.push_str(&format!(" {} |", run_letter(i)));
        rule.push_str("---:|");
    }
    for i in 1..n {
        head.push_str(&format!(" Δ {}−A |", run_letter(i)));
        rule.push_str("---:|");
    }
    for (scope, title) in [
        ("overall", "Overall"),
        ("task", "By task"),
        ("source", "By source"),
    ] {
        let rows: Vec<&Row> = c.rows.iter().filter(|r| r.scope == scope).collect();
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(s, "\n## {title}\n\n{head}\n{rule}");
        for r in rows {
            if matches!(r.metric.as_str(), "responses" | "not_scored") {
                continue;
            }
            let mut line = format!("| {} | {} |", r.group, label(&r.metric));
            for v in &r.values {
                line.push_str(&format!(" {} |", cell(&r.metric, *v)));
            }
            for d in r.deltas.iter().skip(1) {
                line.push_str(&format!(" {} |", delta_cell(&r.metric, *d)));
            }
            let _ = writeln!(s, "{line}");
        }
    }
    s
}

/// A chart of each task's headline metric per run.
pub fn compare_chart(c: &Comparison, path: &Path) -> Result<()> {
    let mut groups = Vec::new();
    for task in Task::ALL {
        let name = task.as_str();
        let per_run: Vec<Option<f64>> = (0..c.runs.len())
            .map(|i| {
                crate::metrics::headline(task)
                    .iter()
                    .find_map(|m| c.row("task", name, m).and_then(|r| r.values[i]))
            })
            .collect();
        if per_run.iter().any(Option::is_some) {
            groups.push((name.to_string(), per_run));
        }
    }
    let series: Vec<String> = (0..c.runs.len()).map(run_letter).collect();
    save(
        &share_bars("headline metric per task", &groups, &series),
        path,
    )
}

/// Writes `compare.json`, `compare.md` and `compare.png` into `out`.
pub fn write_comparison(c: &Comparison, out: &Path) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let p = out.join("compare.json");
    std::fs::write(&p, serde_json::to_string_pretty(c)? + "\n")
        .with_context(|| format!("cannot write {}", p.display()))?;
    let p = out.join("compare.md");
    std::fs::write(&p, compare_markdown(c))
        .with_context(|| format!("cannot write {}", p.display()))?;
    compare_chart(c, &out.join("compare.png"))
}
