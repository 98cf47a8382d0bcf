//! `data inspect`: what a dataset file holds, before anything is built from it. The file is read
//! with its adapter (format detected, or given), every row normalised and validated (image files
//! checked for existence by default, not decoded), and the report counts samples per task and
//! per source, answer lengths, images per sample, and the problems found with examples.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::adapters::{default_name, detect_format, read_source, spec_for, DataError};
use crate::normalise::normalise;
use crate::schema::{Reject, SourceFormat, Stage};
use crate::validate::{validate_all, ValidateOptions};

/// How many rejects are quoted in a report.
pub const EXAMPLES: usize = 8;

/// Summary statistics of a length distribution.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LengthStats {
    pub min: usize,
    pub median: usize,
    pub mean: f64,
    pub max: usize,
}

impl LengthStats {
    fn of(mut v: Vec<usize>) -> LengthStats {
        if v.is_empty() {
            return LengthStats::default();
        }
        v.sort_unstable();
        LengthStats {
            min: v[0],
            median: v[v.len() / 2],
            mean: v.iter().sum::<usize>() as f64 / v.len() as f64,
            max: v[v.len() - 1],
        }
    }
}

/// What [`inspect`] found.
#[derive(Debug, Clone)]
pub struct InspectReport {
    pub path: PathBuf,
    pub format: SourceFormat,
    /// Rows read (good and bad).
    pub rows: usize,
    /// Rows that normalise and validate.
    pub valid: usize,
    pub per_task: BTreeMap<String, usize>,
    pub per_source: BTreeMap<String, usize>,
    /// Answer length in characters (text answers; boxes as their JSON text), valid rows.
    pub answer_chars: LengthStats,
    /// Problem length in characters, valid rows.
    pub problem_chars: LengthStats,
    /// Number of samples with 0, 1, 2, ... images (valid rows).
    pub images_per_sample: BTreeMap<usize, usize>,
    /// Rejected rows per stage.
    pub rejected: BTreeMap<Stage, usize>,
    /// The first [`EXAMPLES`] rejects.
    pub examples: Vec<Reject>,
}

/// Inspects a file whose format is detected ([`detect_format`]), checking that images exist.
pub fn inspect(path: &Path) -> Result<InspectReport, DataError> {
    let format = detect_format(path).ok_or_else(|| {
        DataError::format(path, "cannot tell the format; name it (jsonl, llava, vlm_r1, verl, easyr1, refcoco, chartqa, coco_captions, scienceqa, easy_vqa)")
    })?;
    let opts = ValidateOptions {
        check_images: false,
        check_exists: true,
        ..ValidateOptions::default()
    };
    inspect_with(path, format, &opts)
}

/// Inspects a file read as `format`, validated with `opts`.
pub fn inspect_with(
    path: &Path,
    format: SourceFormat,
    opts: &ValidateOptions,
) -> Result<InspectReport, DataError> {
    let spec = spec_for(path, format);
    let rows = read_source(&spec)?;
    let n = rows.len();
    let source = default_name(path);
    let mut rejects = Vec::new();
    let mut normalised = Vec::with_capacity(n);
    for r in rows {
        match r.and_then(|row| normalise(row, &source)) {
            Ok(row) => normalised.push(row),
            Err(rej) => rejects.push(rej),
        }
    }
    let (kept, mut bad) = validate_all(normalised, opts);
    rejects.append(&mut bad);
    rejects.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    let mut report = InspectReport {
        path: path.to_path_buf(),
        format,
        rows: n,
        valid: kept.len(),
        per_task: BTreeMap::new(),
        per_source: BTreeMap::new(),
        answer_chars: LengthStats::default(),
        problem_chars: LengthStats::default(),
        images_per_sample: BTreeMap::new(),
        rejected: BTreeMap::new(),
        examples: rejects.iter().take(EXAMPLES).cloned().collect(),
    };
    for r in &rejects {
        *report.rejected.entry(r.stage).or_default() += 1;
    }
    let mut answers = Vec::with_capacity(kept.len());
    let mut problems = Vec::with_capacity(kept.len());
    for row in &kept {
        let s = &row.item;
        *report.per_task.entry(s.task.to_string()).or_default() += 1;
        *report.per_source.entry(s.source.clone()).or_default() += 1;
        *report.images_per_sample.entry(s.images.len()).or_default() += 1;
        answers.push(s.answer.text().chars().count());
        problems.push(s.problem.chars().count());
    }
    report.answer_chars = LengthStats::of(answers);
    report.problem_chars = LengthStats::of(problems);
    Ok(report)
}

impl fmt::Display for InspectReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = |k: usize| {
            if self.valid == 0 {
                0.0
            } else {
                100.0 * k as f64 / self.valid as f64
            }
        };
        writeln!(f, "{} ({:?})", self.path.display(), self.format)?;
        writeln!(
            f,
            "rows {:>9}   valid {:>9}   rejected {:>9}",
            self.rows,
            self.valid,
            self.rows - self.valid
        )?;
        writeln!(f)?;
        writeln!(f, "{:<16} {:>9} {:>7}", "task", "samples", "share")?;
        for (t, k) in &self.per_task {
            writeln!(f, "{:<16} {:>9} {:>6.1}%", t, k, pct(*k))?;
        }
        writeln!(f)?;
        writeln!(f, "{:<24} {:>9} {:>7}", "source", "samples", "share")?;
        for (s, k) in &self.per_source {
            writeln!(f, "{:<24} {:>9} {:>6.1}%", s, k, pct(*k))?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "{:<16} {:>7} {:>7} {:>9} {:>7}",
            "length (chars)", "min", "median", "mean", "max"
        )?;
        for (name, s) in [
            ("problem", self.problem_chars),
            ("answer", self.answer_chars),
        ] {
            writeln!(
                f,
                "{:<16} {:>7} {:>7} {:>9.1} {:>7}",
                name, s.min, s.median, s.mean, s.max
            )?;
        }
        writeln!(f)?;
        writeln!(f, "{:<16} {:>9}", "images/sample", "samples")?;
        for (n, k) in &self.images_per_sample {
            writeln!(f, "{:<16} {:>9}", n, k)?;
        }
        if !self.rejected.is_empty() {
            writeln!(f)?;
            writeln!(f, "{:<16} {:>9}", "rejected at", "rows")?;
            for (stage, k) in &self.rejected {
                writeln!(f, "{:<16} {:>9}", format!("{stage:?}").to_lowercase(), k)?;
            }
            writeln!(f)?;
            writeln!(f, "problems (first {}):", self.examples.len())?;
            for r in &self.examples {
                writeln!(f, "  {}:{}  {}", r.file.display(), r.line, r.reason)?;
            }
        }
        Ok(())
    }
}
