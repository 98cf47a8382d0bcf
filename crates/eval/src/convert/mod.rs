//! Converters from common benchmark layouts into our JSONL (DESIGN.md sample schema):
//!
//! | format | input | samples |
//! |---|---|---|
//! | `chartqa` | ChartQA split JSON `[{"imgname", "query", "label"}]`, images in `png/` beside it | `chart` |
//! | `refcoco` | `refs.json` (the `refer` refs as JSON) + COCO `instances.json` beside it (`images` with sizes, `annotations` with `bbox` = x, y, w, h); images under `--image-root` | `grounding`, one per sentence, boxes `abs` x1, y1, x2, y2 |
//! | `mmbench` | MMBench TSV: `index, question, hint, A, B, C, D, answer, category, image` (base64; a short number refers to another row's image) | `mcq`; images decoded into `<out stem>_images/` |
//! | `scienceqa` | `problems.json` `{pid: {question, choices, answer: index, hint, image, split}}`, images at `images/<split>/<pid>/<image>` | `mcq` |
//! | `pope` | POPE JSON lines `{"question_id", "image", "text", "label"}`; images under `--image-root` (default: beside the file) | `yes_no` |
//!
//! ChartQA, RefCOCO and ScienceQA are read by the data engine's own adapters
//! (`mixed-r1-data`), so `mixed-r1 data` and `mixed-r1 eval convert` agree. Every row then goes
//! through the data engine's `normalise` and the reward crate's answer check, so a converted
//! sample can always be scored. A bad row is reported with its file, line (record number for
//! JSON lists and objects) and reason, and the rest are converted. Image paths in the output are
//! relative to the output file's folder; images that do not exist are counted (eval skips them).

mod mmbench;
mod pope;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use mixed_r1_data::adapters::read_source;
use mixed_r1_data::normalise::normalise;
use mixed_r1_data::validate::check_answer;
use mixed_r1_data::{Draft, Origin, Reject, Row, Sample, SourceFormat, SourceSpec};
use mixed_r1_reward::RewardConfig;
use serde::{Deserialize, Serialize};

use mixed_r1_data::paths::{absolute, relative_to};

pub use mmbench::parse_tsv;

/// A benchmark layout `convert` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BenchFormat {
    Chartqa,
    Refcoco,
    Mmbench,
    Scienceqa,
    Pope,
}

impl BenchFormat {
    pub const ALL: [BenchFormat; 5] = [
        BenchFormat::Chartqa,
        BenchFormat::Refcoco,
        BenchFormat::Mmbench,
        BenchFormat::Scienceqa,
        BenchFormat::Pope,
    ];

    pub fn name(self) -> &'static str {
        match self {
            BenchFormat::Chartqa => "chartqa",
            BenchFormat::Refcoco => "refcoco",
            BenchFormat::Mmbench => "mmbench",
            BenchFormat::Scienceqa => "scienceqa",
            BenchFormat::Pope => "pope",
        }
    }

    pub fn from_name(s: &str) -> Option<BenchFormat> {
        BenchFormat::ALL.into_iter().find(|f| f.name() == s)
    }
}

/// What to convert.
#[derive(Debug, Clone)]
pub struct ConvertOptions {
    pub format: BenchFormat,
    pub input: PathBuf,
    /// The output JSONL file.
    pub out: PathBuf,
    /// The samples' `source` (default: the format's name).
    pub source: Option<String>,
    /// Keep only rows of this split (RefCOCO, ScienceQA, MMBench).
    pub split: Option<String>,
    /// Where image file names are resolved (RefCOCO, POPE; ChartQA and ScienceQA have their own
    /// layout below the input's folder unless this is given).
    pub image_root: Option<PathBuf>,
}

/// A row that could not be converted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BadRow {
    pub file: String,
    pub line: usize,
    pub reason: String,
}

impl std::fmt::Display for BadRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.reason)
    }
}

impl From<Reject> for BadRow {
    fn from(r: Reject) -> BadRow {
        BadRow {
            file: r.file.display().to_string(),
            line: r.line,
            reason: r.reason,
        }
    }
}

/// What a conversion did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConvertReport {
    /// Rows read: `written + bad.len()`.
    pub rows: usize,
    pub written: usize,
    pub bad: Vec<BadRow>,
    /// Samples whose image file does not exist (written all the same; eval skips them).
    pub missing_images: usize,
    /// Image files decoded and written (MMBench).
    pub images_written: usize,
    pub per_task: BTreeMap<String, usize>,
}

/// Drafts read from an input, or the rows that could not be read.
pub(crate) type Drafts = Vec<std::result::Result<Row<Draft>, BadRow>>;

pub(crate) fn origin(file: &Arc<PathBuf>, line: usize) -> Origin {
    Origin {
        file: file.clone(),
        line,
    }
}

/// Converts one input file; see the module docs.
pub fn convert(opts: &ConvertOptions) -> Result<ConvertReport> {
    let source = opts
        .source
        .clone()
        .unwrap_or_else(|| opts.format.name().to_string());
    let out_dir = match opts.out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    let mut report = ConvertReport::default();
    let drafts: Drafts = match opts.format {
        BenchFormat::Chartqa | BenchFormat::Refcoco | BenchFormat::Scienceqa => {
            let format = match opts.format {
                BenchFormat::Chartqa => SourceFormat::Chartqa,
                BenchFormat::Refcoco => SourceFormat::Refcoco,
                _ => SourceFormat::Scienceqa,
            };
            let mut options = toml::Table::new();
            if let Some(s) = &opts.split {
                options.insert("split".into(), toml::Value::String(s.clone()));
            }
            let spec = SourceSpec {
                name: Some(source.clone()),
                format,
                path: opts.input.clone(),
                image_root: opts.image_root.clone(),
                options,
            };
            read_source(&spec)
                .with_context(|| format!("cannot convert {}", opts.input.display()))?
                .into_iter()
                .map(|r| r.map_err(BadRow::from))
                .collect()
        }
        BenchFormat::Mmbench => {
            let stem = opts
                .out
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "mmbench".into());
            let images = out_dir.join(format!("{stem}_images"));
            let (drafts, written) = mmbench::read(opts, &source, &images)?;
            report.images_written = written;
            drafts
        }
        BenchFormat::Pope => pope::read(opts, &source)?,
    };
    let cfg = RewardConfig::default();
    let mut samples: Vec<Sample> = Vec::new();
    for d in drafts {
        report.rows += 1;
        let row = match d {
            Ok(r) => r,
            Err(b) => {
                report.bad.push(b);
                continue;
            }
        };
        let row = match normalise(row, &source) {
            Ok(r) => r,
            Err(rej) => {
                report.bad.push(rej.into());
                continue;
            }
        };
        if let Err(why) = check_answer(&row.item, &cfg) {
            report.bad.push(BadRow {
                file: row.origin.file.display().to_string(),
                line: row.origin.line,
                reason: why,
            });
            continue;
        }
        let mut s = row.item;
        let mut missing = false;
        for img in &mut s.images {
            if img.contains("://") || img.starts_with("data:") {
                missing = true;
                continue;
            }
            let abs = absolute(Path::new(img.as_str()));
            missing |= !abs.is_file();
            *img = relative_to(&abs, &out_dir).to_string_lossy().into_owned();
        }
        report.missing_images += missing as usize;
        *report
            .per_task
            .entry(s.task.as_str().to_string())
            .or_default() += 1;
        samples.push(s);
    }
    let werr = || format!("cannot write {}", opts.out.display());
    let mut out = BufWriter::new(File::create(&opts.out).with_context(werr)?);
    for s in &samples {
        serde_json::to_writer(&mut out, s).with_context(werr)?;
        out.write_all(b"\n").with_context(werr)?;
    }
    out.flush().with_context(werr)?;
    report.written = samples.len();
    Ok(report)
}
