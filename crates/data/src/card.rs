//! The dataset card: `card.md` (what went in, what came out, and why every other row left) and
//! three bar charts drawn by `mixed-r1-plot` as PNG: rows per task at each stage, answer
//! lengths, and image sizes of the kept samples.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::report::{task_rows, BuildReport};
use crate::schema::{Sample, Task};
use mixed_r1_plot::{count_bars, write_png, Canvas};

/// The card's bar chart of counts, now `mixed_r1_plot::count_bars`.
pub use mixed_r1_plot::count_bars as grouped_bars;

/// Histogram bins `[edges[i], edges[i+1])`, the last one open-ended.
fn histogram(values: &[usize], edges: &[usize]) -> Vec<(String, Vec<usize>)> {
    let mut counts = vec![0usize; edges.len()];
    for &v in values {
        let i = edges.iter().rposition(|&e| v >= e).unwrap_or(0);
        counts[i] += 1;
    }
    edges
        .iter()
        .enumerate()
        .map(|(i, &e)| {
            let label = match edges.get(i + 1) {
                Some(_) => e.to_string(),
                None => format!("{e}+"),
            };
            (label, vec![counts[i]])
        })
        .collect()
}

fn short_task(t: Task) -> &'static str {
    match t {
        Task::YesNo => "yes_no",
        Task::Mcq => "mcq",
        Task::Numeric => "numeric",
        Task::Math => "math",
        Task::Chart => "chart",
        Task::Grounding => "ground",
        Task::OpenEnded => "open",
    }
}

/// Writes `card.md` and its PNGs into `dir`; returns the files written.
pub fn write_card(
    report: &BuildReport,
    samples: &[Sample],
    dir: &Path,
) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut save = |name: &str, c: Canvas| -> std::io::Result<()> {
        let path = dir.join(name);
        write_png(&c.img, &path)?;
        files.push(path);
        Ok(())
    };

    let series: Vec<String> = report.stages.iter().map(|s| s.stage.clone()).collect();
    let groups: Vec<(String, Vec<usize>)> = Task::ALL
        .iter()
        .map(|t| {
            (
                short_task(*t).to_string(),
                report
                    .stages
                    .iter()
                    .map(|s| s.per_task.get(t.as_str()).copied().unwrap_or(0))
                    .collect(),
            )
        })
        .collect();
    save(
        "tasks_per_stage.png",
        count_bars("Rows per task at each stage", &groups, &series, 640, 300),
    )?;

    let lengths: Vec<usize> = samples
        .iter()
        .map(|s| s.answer.text().chars().count())
        .collect();
    let edges = [0, 2, 4, 8, 16, 32, 64, 128];
    save(
        "answer_lengths.png",
        count_bars(
            "Answer length (characters)",
            &histogram(&lengths, &edges),
            &["samples".into()],
            480,
            260,
        ),
    )?;

    let sides: Vec<usize> = samples
        .iter()
        .filter_map(|s| s.image_size.map(|[w, h]| w.max(h) as usize))
        .collect();
    let edges = [0, 64, 128, 192, 256, 384, 512, 1024];
    save(
        "image_sizes.png",
        count_bars(
            "Image size (longest side, px)",
            &histogram(&sides, &edges),
            &["images".into()],
            480,
            260,
        ),
    )?;

    let path = dir.join("card.md");
    std::fs::write(&path, markdown(report, samples, &lengths, sides.len()))?;
    files.push(path);
    Ok(files)
}

fn markdown(r: &BuildReport, samples: &[Sample], lengths: &[usize], with_images: usize) -> String {
    let mut m = String::new();
    let c = &r.counts;
    let _ = writeln!(m, "# Dataset card\n");
    let _ = writeln!(
        m,
        "**{} samples** kept from {} input rows. Every row is accounted for:\n",
        c.kept, c.input
    );
    let _ = writeln!(m, "| input | kept | rejected | deduplicated | filtered (difficulty) | not selected (mix) | balanced |");
    let _ = writeln!(m, "|---:|---:|---:|---:|---:|---:|:---:|");
    let _ = writeln!(
        m,
        "| {} | {} | {} | {} | {} | {} | {} |\n",
        c.input,
        c.kept,
        c.rejected,
        c.deduplicated,
        c.filtered,
        c.not_selected,
        if r.balanced { "yes" } else { "**NO**" }
    );
    let _ = writeln!(m, "`{}`\n", r.identity);

    let _ = writeln!(m, "## Sources\n\n| source | format | rows | rejected at ingest | path |\n|---|---|---:|---:|---|");
    for s in &r.sources {
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} | `{}` |",
            s.name,
            s.format,
            s.rows,
            s.rejected_at_ingest,
            s.path.display()
        );
    }

    let _ = writeln!(
        m,
        "\n## Rows per task at each stage\n\n![tasks per stage](tasks_per_stage.png)\n"
    );
    let _ = write!(m, "| task |");
    for s in &r.stages {
        let _ = write!(m, " {} |", s.stage);
    }
    let _ = write!(m, "\n|---|");
    for _ in &r.stages {
        let _ = write!(m, "---:|");
    }
    let _ = writeln!(m);
    for t in Task::ALL {
        let _ = write!(m, "| {t} |");
        for s in &r.stages {
            let _ = write!(m, " {} |", s.per_task.get(t.as_str()).copied().unwrap_or(0));
        }
        let _ = writeln!(m);
    }
    let _ = write!(m, "| **all** |");
    for s in &r.stages {
        let _ = write!(m, " **{}** |", s.rows);
    }
    let _ = writeln!(m);

    let mut all_sources: Vec<&String> = r.stages.iter().flat_map(|s| s.per_source.keys()).collect();
    all_sources.sort();
    all_sources.dedup();
    let _ = write!(m, "\n## Rows per source at each stage\n\n| source |");
    for s in &r.stages {
        let _ = write!(m, " {} |", s.stage);
    }
    let _ = write!(m, "\n|---|");
    for _ in &r.stages {
        let _ = write!(m, "---:|");
    }
    let _ = writeln!(m);
    for src in all_sources {
        let _ = write!(m, "| {src} |");
        for s in &r.stages {
            let _ = write!(m, " {} |", s.per_source.get(src).copied().unwrap_or(0));
        }
        let _ = writeln!(m);
    }

    let _ = writeln!(
        m,
        "\n## Why rows left\n\n| stage | reason | rows |\n|---|---|---:|"
    );
    for (stage, reasons) in &r.reasons {
        let mut sorted: Vec<(&String, &usize)> = reasons.iter().collect();
        sorted.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (reason, n) in sorted {
            let _ = writeln!(m, "| {stage} | {} | {n} |", reason.replace('|', "\\|"));
        }
    }
    let _ = writeln!(
        m,
        "\nRow by row: `rejected.jsonl` (ingest, normalise, validate) and `dropped.jsonl` (dedup, difficulty, mix), each line with file, line, stage and reason."
    );

    let _ = writeln!(
        m,
        "\n## Deduplication\n\nexact duplicates: {}; near duplicates: {} (MinHash LSH, {} bands x {} rows; same task, answer and perceptually equal images required); images that could not be hashed: {}.",
        r.dedup.exact, r.dedup.near, r.dedup.lsh_bands, r.dedup.lsh_rows, r.dedup.unhashed_images
    );
    if let Some(d) = &r.difficulty {
        let _ = writeln!(
            m,
            "\n## Difficulty\n\nrollouts: `{}`; samples with rollouts: {}; filtered: {}; kept without rollouts: {}; unusable rollout lines: {}.",
            d.rollouts.display(),
            d.samples_with_rollouts,
            d.filtered,
            d.kept_without_rollouts,
            d.bad_rollout_lines
        );
    }
    if !r.mix_cells.is_empty() {
        let _ = writeln!(m, "\n## Mix\n\n| task | source | quota | available | selected |\n|---|---|---:|---:|---:|");
        for cell in &r.mix_cells {
            let _ = writeln!(
                m,
                "| {} | {} | {} | {} | {} |",
                cell.task,
                cell.source.as_deref().unwrap_or("any"),
                cell.quota,
                cell.available,
                cell.selected
            );
        }
        if r.shortfalls.is_empty() {
            let _ = writeln!(m, "\nEvery quota was met.");
        } else {
            let _ = writeln!(
                m,
                "\n**Shortfalls** (never filled from other tasks or sources):\n"
            );
            for s in &r.shortfalls {
                let _ = writeln!(m, "- {s}");
            }
        }
    }

    let mut by_task: BTreeMap<&str, usize> = BTreeMap::new();
    for s in samples {
        *by_task.entry(s.task.as_str()).or_default() += 1;
    }
    let _ = writeln!(m, "\n## The kept samples\n");
    for (t, n) in task_rows(&by_task.iter().map(|(k, v)| (k.to_string(), *v)).collect()) {
        if n > 0 {
            let pct = 100.0 * n as f64 / samples.len().max(1) as f64;
            let _ = writeln!(m, "- {t}: {n} ({pct:.1}%)");
        }
    }
    let mut sorted = lengths.to_vec();
    sorted.sort_unstable();
    if !sorted.is_empty() {
        let _ = writeln!(
            m,
            "\nAnswer length in characters: median {}, max {}.\n\n![answer lengths](answer_lengths.png)",
            sorted[sorted.len() / 2],
            sorted[sorted.len() - 1]
        );
    }
    let _ = writeln!(
        m,
        "\nSamples with images: {with_images}.\n\n![image sizes](image_sizes.png)"
    );
    if !r.notes.is_empty() {
        let _ = writeln!(m, "\n## Notes\n");
        for n in &r.notes {
            let _ = writeln!(m, "- {n}");
        }
    }
    m
}
