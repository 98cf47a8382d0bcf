//! `results.json` and `results.md`: what a run measured, per task, per source and overall, how
//! many samples were scored and why any were not, and where the time went.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use mixed_r1_data::Task;
use serde::{Deserialize, Serialize};

use crate::config::EvalConfig;
use crate::data::{DataFile, Skipped};
use crate::metrics::{headline, is_rate, Metrics};

/// Sample counts. `rows = evaluated + invalid + missing_image + duplicate + no_response +
/// remaining`, and `evaluated = scored + not_scored`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub rows: usize,
    pub evaluated: usize,
    pub scored: usize,
    pub not_scored: usize,
    pub invalid: usize,
    pub missing_image: usize,
    pub duplicate: usize,
    pub no_response: usize,
    /// Not evaluated yet (`--limit`, or an interrupted run); 0 when the run is complete.
    pub remaining: usize,
}

/// Where the time went, over every invocation that contributed to the results.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    /// Seconds inside the responder (generation).
    pub generation_s: f64,
    /// Seconds scoring (rewards, IoU, ROUGE-L).
    pub scoring_s: f64,
    /// Wall-clock seconds of the invocations (data loading, generation, scoring, writing).
    pub wall_s: f64,
    pub invocations: usize,
    pub samples_per_s: Option<f64>,
    pub generation_share: Option<f64>,
    pub scoring_share: Option<f64>,
}

/// `results.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    pub version: u32,
    /// Every usable sample has been evaluated.
    pub complete: bool,
    pub responder: String,
    pub data: Vec<DataFile>,
    /// The settings of the run, defaults made explicit.
    pub config: EvalConfig,
    pub counts: Counts,
    pub overall: Metrics,
    pub tasks: BTreeMap<String, Metrics>,
    pub sources: BTreeMap<String, Metrics>,
    /// Per task, per source.
    pub task_sources: BTreeMap<String, BTreeMap<String, Metrics>>,
    /// Why evaluated samples were not scored (the reward's reason), with counts.
    pub not_scored_reasons: BTreeMap<String, usize>,
    /// Every sample that was not evaluated, with file, line and reason.
    pub skipped: Vec<Skipped>,
    pub timing: Timing,
}

pub const RESULTS_VERSION: u32 = 1;

/// A metric value for a table: rates as percentages with one decimal, means with one decimal,
/// counts as integers, `–` when absent.
pub fn cell(name: &str, v: Option<f64>) -> String {
    match v {
        None => "–".into(),
        Some(v) if is_rate(name) => format!("{:.1}", 100.0 * v),
        Some(v) if matches!(name, "samples" | "scored" | "not_scored" | "responses") => {
            format!("{}", v.round() as i64)
        }
        Some(v) if name == "mean_reward" => format!("{v:.3}"),
        Some(v) => format!("{v:.1}"),
    }
}

/// The display label of a metric.
pub fn label(name: &str) -> String {
    match name {
        "accuracy" => "accuracy".into(),
        "relaxed_accuracy" => "relaxed acc".into(),
        "acc@0.5" => "Acc@0.5".into(),
        "mean_iou" => "mIoU".into(),
        "bmas" => "BMAS".into(),
        "rouge_l" => "ROUGE-L".into(),
        "format_rate" => "format".into(),
        "mean_reward" => "reward".into(),
        "mean_tokens" => "tokens".into(),
        "mean_chars" => "chars".into(),
        "truncation_rate" => "truncated".into(),
        "not_scored" => "not scored".into(),
        other => other.to_string(),
    }
}

fn headline_cell(task: Option<Task>, m: &Metrics) -> String {
    let names: Vec<&str> = match task {
        Some(t) => headline(t).to_vec(),
        None => vec!["accuracy"],
    };
    let parts: Vec<String> = names
        .iter()
        .filter_map(|n| {
            m.get(n)
                .map(|v| format!("{} {}", label(n), cell(n, Some(v))))
        })
        .collect();
    if parts.is_empty() {
        "–".into()
    } else {
        parts.join(" · ")
    }
}

fn pass_cell(m: &Metrics) -> String {
    if m.pass_at_k.is_empty() {
        return "–".into();
    }
    m.pass_at_k
        .iter()
        .map(|(k, v)| format!("@{k} {:.1}", 100.0 * v))
        .collect::<Vec<_>>()
        .join(" · ")
}

const TABLE_HEAD: &str = "| samples | scored | headline metric (%) | format % | tokens | chars | truncated % | pass@k (%) |";
const TABLE_RULE: &str = "|---:|---:|---|---:|---:|---:|---:|---|";

fn table_row(name: &str, task: Option<Task>, m: &Metrics) -> String {
    format!(
        "| {name} | {} | {} | {} | {} | {} | {} | {} | {} |",
        m.samples,
        m.scored,
        headline_cell(task, m),
        cell("format_rate", m.format_rate),
        cell("mean_tokens", m.mean_tokens),
        cell("mean_chars", m.mean_chars),
        cell("truncation_rate", m.truncation_rate),
        pass_cell(m)
    )
}

/// `results.md`.
pub fn markdown(r: &Results) -> String {
    let mut s = String::new();
    let c = &r.counts;
    let cfg = &r.config;
    let _ = writeln!(s, "# Eval results\n");
    let _ = writeln!(s, "- responder: `{}`", r.responder);
    for f in &r.data {
        let _ = writeln!(s, "- data: `{}` ({} rows, {})", f.path, f.rows, f.format);
    }
    let temp = cfg.generation.temperature.unwrap_or(0.0);
    let _ = writeln!(
        s,
        "- n = {} ({}), seed {}, max_new_tokens {}",
        cfg.n,
        if temp == 0.0 {
            "greedy".to_string()
        } else {
            format!("temperature {temp}, top_p {}", cfg.generation.top_p)
        },
        cfg.seed,
        cfg.generation.max_new_tokens
    );
    let _ = writeln!(
        s,
        "- **{} samples evaluated, {} scored**{}",
        c.evaluated,
        c.scored,
        if c.not_scored > 0 {
            format!(" ({} not scored)", c.not_scored)
        } else {
            String::new()
        }
    );
    let skips: Vec<String> = [
        (c.invalid, "invalid"),
        (c.missing_image, "with a missing image"),
        (c.duplicate, "duplicate ids"),
        (c.no_response, "without a response"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    if !skips.is_empty() {
        let _ = writeln!(s, "- skipped: {}", skips.join(", "));
    }
    if !r.complete {
        let _ = writeln!(
            s,
            "- **incomplete**: {} samples not evaluated yet (rerun the same command to resume)",
            c.remaining
        );
    }
    let t = &r.timing;
    if let Some(sps) = t.samples_per_s {
        let _ = writeln!(
            s,
            "- time: {:.2} s wall, {:.2} samples/s; generation {:.1}%, scoring {:.2}%",
            t.wall_s,
            sps,
            100.0 * t.generation_share.unwrap_or(0.0),
            100.0 * t.scoring_share.unwrap_or(0.0)
        );
    }

    let _ = writeln!(s, "\n## By task\n");
    let _ = writeln!(s, "| task {TABLE_HEAD}\n|---{TABLE_RULE}");
    for task in Task::ALL {
        if let Some(m) = r.tasks.get(task.as_str()) {
            let _ = writeln!(s, "{}", table_row(task.as_str(), Some(task), m));
        }
    }
    let _ = writeln!(s, "{}", table_row("**all**", None, &r.overall));

    let _ = writeln!(s, "\n## By source\n");
    let _ = writeln!(s, "| source {TABLE_HEAD}\n|---{TABLE_RULE}");
    for (name, m) in &r.sources {
        // A source of one task shows that task's headline metrics.
        let tasks: Vec<Task> = Task::ALL
            .into_iter()
            .filter(|t| {
                r.task_sources
                    .get(t.as_str())
                    .is_some_and(|by| by.contains_key(name))
            })
            .collect();
        let task = (tasks.len() == 1).then(|| tasks[0]);
        let _ = writeln!(s, "{}", table_row(name, task, m));
    }

    if r.task_sources.values().any(|m| m.len() > 1) {
        let _ = writeln!(s, "\n## By task and source\n");
        let _ = writeln!(s, "| task / source {TABLE_HEAD}\n|---{TABLE_RULE}");
        for task in Task::ALL {
            if let Some(by) = r.task_sources.get(task.as_str()) {
                for (src, m) in by {
                    let _ = writeln!(
                        s,
                        "{}",
                        table_row(&format!("{} / {src}", task.as_str()), Some(task), m)
                    );
                }
            }
        }
    }

    if !r.not_scored_reasons.is_empty() {
        let _ = writeln!(s, "\n## Not scored\n");
        for (why, n) in &r.not_scored_reasons {
            let _ = writeln!(s, "- {n} × {why}");
        }
    }
    if !r.skipped.is_empty() {
        const SHOWN: usize = 50;
        let _ = writeln!(s, "\n## Skipped samples\n");
        let _ = writeln!(s, "| where | id | why |\n|---|---|---|");
        for k in r.skipped.iter().take(SHOWN) {
            let _ = writeln!(
                s,
                "| {}:{} | {} | {}: {} |",
                k.file,
                k.line,
                k.id.as_deref().unwrap_or("–"),
                k.kind.as_str(),
                k.reason.replace('|', "\\|")
            );
        }
        if r.skipped.len() > SHOWN {
            let _ = writeln!(
                s,
                "\n… and {} more (all in results.json)",
                r.skipped.len() - SHOWN
            );
        }
    }
    let _ = writeln!(
        s,
        "\nMetrics: accuracy = mean accuracy reward; relaxed acc = ChartQA relaxed accuracy; \
         Acc@0.5 = share of grounding answers with IoU ≥ 0.5; mIoU = mean IoU; BMAS and ROUGE-L \
         (F1) for open-ended answers; format = share of well-formatted responses; tokens / chars \
         = mean response length; truncated = share stopped at max_new_tokens; pass@k unbiased \
         (n > 1). Every sample's prompt, responses and scores are in samples.jsonl."
    );
    s
}
