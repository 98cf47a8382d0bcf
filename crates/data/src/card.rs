//! The dataset card: `card.md` (what went in, what came out, and why every other row left) and
//! three histograms drawn as PNG with the embedded bitmap font: rows per task at each stage,
//! answer lengths, and image sizes of the kept samples.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::report::{task_rows, BuildReport};
use crate::schema::{Sample, Task};
use crate::synth::draw::{encode_png, text_width, Canvas};

const INK: [u8; 3] = [30, 30, 30];
const GRID: [u8; 3] = [215, 215, 215];
const SERIES: [[u8; 3]; 6] = [
    [66, 114, 196],
    [221, 132, 82],
    [85, 168, 104],
    [196, 78, 82],
    [129, 114, 178],
    [147, 120, 96],
];

/// A bar chart of groups of series: `groups[g].1[s]` is series `s` in group `g`.
pub fn grouped_bars(
    title: &str,
    groups: &[(String, Vec<usize>)],
    series: &[String],
    width: u32,
    height: u32,
) -> Canvas {
    let mut c = Canvas::new(width, height, [255, 255, 255]);
    c.text_centred(
        width as f64 / 2.0,
        6,
        title,
        if text_width(title, 2) < width - 8 {
            2
        } else {
            1
        },
        INK,
    );
    let (left, right, top, base) = (48.0, width as f64 - 8.0, 40.0, height as f64 - 40.0);
    let max = groups
        .iter()
        .flat_map(|g| g.1.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    // Three grid lines with their values, so bar heights can be read.
    for k in 1..=3 {
        let v = max * k as f64 / 3.0;
        let y = base - (base - top) * k as f64 / 3.0;
        c.line((left, y), (right, y), 1, GRID);
        let label = compact(v.round() as usize);
        c.text(
            left as i64 - 4 - text_width(&label, 1) as i64,
            y as i64 - 4,
            &label,
            1,
            INK,
        );
    }
    c.line((left, base), (right, base), 1, INK);
    let slot = (right - left) / groups.len().max(1) as f64;
    let n = series.len().max(1) as f64;
    let bar_w = (slot * 0.8 / n).max(1.0);
    for (g, (label, values)) in groups.iter().enumerate() {
        let x0 = left + slot * g as f64 + slot * 0.1;
        for (s, &v) in values.iter().enumerate() {
            let h = v as f64 / max * (base - top);
            let x = x0 + bar_w * s as f64;
            c.fill_rect(
                x.round() as i64,
                (base - h).round() as i64,
                (x + bar_w).round() as i64 - 1,
                base as i64,
                SERIES[s % SERIES.len()],
            );
        }
        let cx = left + slot * (g as f64 + 0.5);
        c.text_centred(cx, base as i64 + 6, label, 1, INK);
    }
    // Legend along the bottom.
    let mut x = left as i64;
    for (s, name) in series.iter().enumerate() {
        c.fill_rect(
            x,
            height as i64 - 18,
            x + 8,
            height as i64 - 10,
            SERIES[s % SERIES.len()],
        );
        c.text(x + 11, height as i64 - 18, name, 1, INK);
        x += 11 + text_width(name, 1) as i64 + 14;
    }
    c
}

fn compact(v: usize) -> String {
    if v >= 10_000 {
        format!("{}k", v / 1000)
    } else {
        v.to_string()
    }
}

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
        let png = encode_png(&c.img).map_err(std::io::Error::other)?;
        std::fs::write(&path, png)?;
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
        grouped_bars("Rows per task at each stage", &groups, &series, 640, 300),
    )?;

    let lengths: Vec<usize> = samples
        .iter()
        .map(|s| s.answer.text().chars().count())
        .collect();
    let edges = [0, 2, 4, 8, 16, 32, 64, 128];
    save(
        "answer_lengths.png",
        grouped_bars(
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
        grouped_bars(
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
