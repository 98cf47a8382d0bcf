//! `mixed-r1 data build --recipe recipe.toml`: the whole data engine in one run.
//!
//! ```text
//! [synth] -> ingest ([[source]]) -> normalise -> validate -> dedup -> difficulty -> mix -> write + card
//! ```
//!
//! A recipe (TOML; relative paths are taken from the recipe's folder):
//!
//! ```toml
//! [synth]                  # optional: generate candidates first (reused when unchanged)
//! out = "../.cache/synth/mixed45k"
//! count = 200000
//! seed = 7
//! stocks = "../.cache/assets/mpl-sample-data/Stocks.csv"   # generated numbers if absent
//!
//! [[source]]               # any number; `SourceSpec`
//! format = "easy_vqa"
//! path = "../.cache/assets/easy-vqa"
//!
//! [validate]               # check_images = true, reward_config = "reward.toml"
//! [dedup]                  # DedupConfig
//! [difficulty]             # DifficultyConfig; skipped without `rollouts`
//! [mix]                    # MixConfig; without it every surviving row is kept
//! [output]                 # dir = "build", formats = ["jsonl", "verl", "easyr1"], embed_images, copy_images
//! ```
//!
//! Output folder: the dataset (`train.jsonl`, `train.verl.parquet`, `train.easyr1.parquet`),
//! `images/` (copied images, when `copy_images`), `rejected.jsonl` (ingest / normalise / validate
//! rejects, with file, line and reason), `dropped.jsonl` (dedup / difficulty / mix, with reasons),
//! `report.json` and `card.md` with its histograms.
//!
//! **Counts are conserved**: every input row is kept or leaves at exactly one stage, and
//! `input = kept + rejected + deduplicated + filtered + not_selected` is checked at the end of
//! every build ([`Counts::balanced`]) and recorded in the report.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mixed_r1_reward::RewardConfig;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::adapters::{default_name, read_source, DataError};
use crate::dedup::{self, DedupConfig};
use crate::difficulty::{self, DifficultyConfig, Rollouts};
use crate::mix::{self, MixConfig};
use crate::normalise::normalise;
use crate::parquet_io::{
    write_easyr1_parquet, write_jsonl, write_jsonl_of, write_verl_parquet, ParquetOptions,
};
pub use crate::report::{
    task_rows, BuildReport, Counts, DedupReport, DifficultyReport, SourceReport, StageCounts,
};
use crate::schema::{Reject, Row, Sample, SourceSpec, Stage};
use crate::synth::{self, SceneWeights, SynthConfig, SynthSummary};
use crate::validate::{validate_all, ValidateOptions};

/// Everything that stops a build (a bad row never does: it is rejected and counted).
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot read the recipe {}: {source}", path.display())]
    RecipeRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid recipe {}: {msg}", path.display())]
    Recipe { path: PathBuf, msg: String },
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Synth(#[from] synth::SynthError),
    #[error(transparent)]
    Difficulty(#[from] difficulty::DifficultyError),
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the counts do not add up (a bug): {0}")]
    Unbalanced(String),
}

fn write_err(path: &Path) -> impl FnOnce(std::io::Error) -> BuildError + '_ {
    move |source| BuildError::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// `[synth]` in a recipe: a [`SynthConfig`] plus where to write it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipeSynth {
    pub out: PathBuf,
    pub count: usize,
    #[serde(default)]
    pub seed: u64,
    /// `Stocks.csv`; when the file is missing, charts use generated numbers and the report notes
    /// it, unless `stocks_required`.
    #[serde(default)]
    pub stocks: Option<PathBuf>,
    #[serde(default)]
    pub stocks_required: bool,
    #[serde(default)]
    pub scenes: SceneWeights,
}

/// `[validate]` in a recipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecipeValidate {
    /// Decode every image (else: check they exist).
    pub check_images: bool,
    /// The reward.toml the answers must parse under.
    pub reward_config: Option<PathBuf>,
}

impl Default for RecipeValidate {
    fn default() -> Self {
        RecipeValidate {
            check_images: true,
            reward_config: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputFormat {
    Jsonl,
    Verl,
    Easyr1,
}

/// `[output]` in a recipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecipeOutput {
    pub dir: PathBuf,
    pub formats: Vec<OutputFormat>,
    /// Embed image bytes in the Parquet files.
    pub embed_images: bool,
    /// Copy (hard-link when possible) the kept samples' images into `dir/images/`, so the
    /// output folder stands alone; else the dataset points at the images where they are.
    pub copy_images: bool,
    /// Write `card.md` and its histograms.
    pub card: bool,
    /// File stem of the dataset files.
    pub name: String,
}

impl Default for RecipeOutput {
    fn default() -> Self {
        RecipeOutput {
            dir: PathBuf::from("build"),
            formats: vec![
                OutputFormat::Jsonl,
                OutputFormat::Verl,
                OutputFormat::Easyr1,
            ],
            embed_images: false,
            copy_images: true,
            card: true,
            name: "train".into(),
        }
    }
}

/// A build recipe (see the module documentation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    #[serde(default, rename = "source")]
    pub sources: Vec<SourceSpec>,
    #[serde(default)]
    pub synth: Option<RecipeSynth>,
    #[serde(default)]
    pub validate: RecipeValidate,
    #[serde(default)]
    pub dedup: DedupConfig,
    #[serde(default)]
    pub difficulty: DifficultyConfig,
    #[serde(default)]
    pub mix: Option<MixConfig>,
    #[serde(default)]
    pub output: RecipeOutput,
}

fn rebase(base: &Path, p: &mut PathBuf) {
    if p.is_relative() {
        *p = base.join(&*p);
    }
}

impl Recipe {
    /// Parses recipe text; relative paths are resolved against `base`.
    pub fn parse(text: &str, base: &Path, name: &Path) -> Result<Recipe, BuildError> {
        let bad = |msg: String| BuildError::Recipe {
            path: name.to_path_buf(),
            msg,
        };
        let mut r: Recipe = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        for s in &mut r.sources {
            rebase(base, &mut s.path);
            if let Some(root) = &mut s.image_root {
                rebase(base, root);
            }
        }
        if let Some(s) = &mut r.synth {
            rebase(base, &mut s.out);
            if let Some(p) = &mut s.stocks {
                rebase(base, p);
            }
        }
        for p in [
            r.validate.reward_config.as_mut(),
            r.difficulty.rollouts.as_mut(),
            r.difficulty.reward_config.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            rebase(base, p);
        }
        rebase(base, &mut r.output.dir);
        if r.sources.is_empty() && r.synth.is_none() {
            return Err(bad(
                "no [[source]] and no [synth]: nothing to build from".into()
            ));
        }
        r.dedup.validate().map_err(bad)?;
        r.difficulty.validate().map_err(bad)?;
        if let Some(m) = &r.mix {
            m.validate().map_err(bad)?;
        }
        if r.output.formats.is_empty() {
            return Err(bad("output.formats is empty".into()));
        }
        Ok(r)
    }

    pub fn load(path: &Path) -> Result<Recipe, BuildError> {
        let text = std::fs::read_to_string(path).map_err(|source| BuildError::RecipeRead {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let base = if base.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            base
        };
        // Absolute, so image paths resolved at ingest work from any working folder.
        let base = std::fs::canonicalize(&base).unwrap_or(base);
        Recipe::parse(&text, &base, path)
    }
}

/// How a build reports progress.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// No progress bars.
    pub quiet: bool,
}

impl BuildOptions {
    /// A bar on stderr, hidden when quiet or when stderr is not a terminal.
    pub fn bar(&self, len: u64, msg: &str) -> ProgressBar {
        if self.quiet || !std::io::stderr().is_terminal() {
            return ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden());
        }
        let bar = ProgressBar::new(len);
        bar.set_style(
            ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
                .unwrap()
                .progress_chars("=> "),
        );
        bar.set_message(msg.to_string());
        bar
    }
}

fn stage_counts(stage: &str, rows: &[Row<Sample>]) -> StageCounts {
    let mut c = StageCounts {
        stage: stage.into(),
        rows: rows.len(),
        ..Default::default()
    };
    for r in rows {
        *c.per_task.entry(r.item.task.as_str().into()).or_default() += 1;
        *c.per_source.entry(r.item.source.clone()).or_default() += 1;
    }
    c
}

/// The short kind of a reject reason, for grouping: the text before the first `:` (and before
/// " of " for dedup's "exact duplicate of FILE:LINE").
pub fn reason_kind(reason: &str) -> String {
    let head = reason.split(':').next().unwrap_or(reason);
    let head = head.split(" of /").next().unwrap_or(head);
    let head = head.split(" (").next().unwrap_or(head).trim();
    head.chars().take(60).collect()
}

/// What a build produced.
pub struct BuildOutput {
    pub report: BuildReport,
    pub samples: Vec<Sample>,
    pub out_dir: PathBuf,
}

fn stage_name(s: Stage) -> &'static str {
    match s {
        Stage::Ingest => "ingest",
        Stage::Normalise => "normalise",
        Stage::Validate => "validate",
        Stage::Dedup => "dedup",
        Stage::Difficulty => "difficulty",
        Stage::Mix => "mix",
    }
}

/// Generates the `[synth]` candidates unless the folder already holds this exact configuration.
fn run_synth(
    s: &RecipeSynth,
    opts: &BuildOptions,
    notes: &mut Vec<String>,
) -> Result<SynthSummary, BuildError> {
    let mut stocks = s.stocks.clone();
    if let Some(p) = &stocks {
        if !p.is_file() {
            if s.stocks_required {
                return Err(DataError::read(
                    p,
                    std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "no such file (synth.stocks)",
                    ),
                )
                .into());
            }
            notes.push(format!(
                "synth: {} not found; charts use generated numbers (fetch it with scripts/fetch-assets.sh mpl-sample-data)",
                p.display()
            ));
            stocks = None;
        }
    }
    let cfg = SynthConfig {
        count: s.count,
        seed: s.seed,
        stocks,
        scenes: s.scenes,
    };
    if s.out.join("samples.jsonl").is_file()
        && synth::previous_config(&s.out).as_ref() == Some(&cfg)
    {
        let text = std::fs::read_to_string(s.out.join("synth.json"))
            .map_err(|e| DataError::read(&s.out, e))?;
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        notes.push(format!(
            "synth: reused {} (same configuration)",
            s.out.display()
        ));
        return Ok(serde_json::from_value(v["summary"].clone()).unwrap_or_default());
    }
    let bar = opts.bar(0, "synth");
    Ok(synth::generate(&cfg, &s.out, &bar)?)
}

/// Runs a recipe.
pub fn build(recipe: &Recipe, opts: &BuildOptions) -> Result<BuildOutput, BuildError> {
    let mut report = BuildReport {
        identity: "input = kept + rejected + deduplicated + filtered + not_selected".into(),
        ..Default::default()
    };
    let mut timer = Instant::now();
    let mut lap = |report: &mut BuildReport, name: &str| {
        report
            .seconds
            .insert(name.into(), timer.elapsed().as_secs_f64());
        timer = Instant::now();
    };

    // Synthesis, then the synthetic folder is one more source.
    let mut sources = recipe.sources.clone();
    if let Some(s) = &recipe.synth {
        report.synth = Some(run_synth(s, opts, &mut report.notes)?);
        sources.insert(
            0,
            SourceSpec {
                name: None,
                format: crate::schema::SourceFormat::Jsonl,
                path: s.out.join("samples.jsonl"),
                image_root: None,
                options: Default::default(),
            },
        );
        lap(&mut report, "synth");
    }

    // Ingest + normalise. A source that cannot be read at all stops the build, naming it.
    let mut rejected: Vec<Reject> = Vec::new();
    let mut rows: Vec<Row<Sample>> = Vec::new();
    let bar = opts.bar(sources.len() as u64, "ingest");
    for spec in &sources {
        let name = spec
            .name
            .clone()
            .unwrap_or_else(|| default_name(&spec.path));
        let read = read_source(spec)?;
        report.counts.input += read.len();
        let mut src = SourceReport {
            name: name.clone(),
            path: spec.path.clone(),
            format: format!("{:?}", spec.format),
            rows: read.len(),
            rejected_at_ingest: 0,
        };
        let normalised: Vec<Result<Row<Sample>, Reject>> = read
            .into_par_iter()
            .with_min_len(256)
            .map(|r| r.and_then(|row| normalise(row, &name)))
            .collect();
        for r in normalised {
            match r {
                Ok(row) => rows.push(row),
                Err(rej) => {
                    if rej.stage == Stage::Ingest {
                        src.rejected_at_ingest += 1;
                    }
                    rejected.push(rej);
                }
            }
        }
        report.sources.push(src);
        bar.inc(1);
    }
    bar.finish_and_clear();
    report.stages.push(stage_counts("normalised", &rows));
    lap(&mut report, "ingest_normalise");

    // Validate.
    let mut vopts = ValidateOptions {
        check_images: recipe.validate.check_images,
        ..Default::default()
    };
    if let Some(p) = &recipe.validate.reward_config {
        vopts.reward = RewardConfig::from_file(p).map_err(|e| BuildError::Recipe {
            path: p.clone(),
            msg: e.to_string(),
        })?;
    }
    let bar = opts.bar(rows.len() as u64, "validate");
    bar.set_position(0);
    let (valid, bad) = validate_all(rows, &vopts);
    bar.finish_and_clear();
    rejected.extend(bad);
    report.stages.push(stage_counts("validated", &valid));
    lap(&mut report, "validate");

    // Dedup.
    let bar = opts.bar(0, "dedup");
    bar.set_message("dedup");
    let d = dedup::dedup(valid, &recipe.dedup, |p| {
        dedup::image_file_sig(Path::new(p)).ok()
    });
    bar.finish_and_clear();
    let (bands, rows_per_band) = dedup::lsh_params(recipe.dedup.threshold, recipe.dedup.num_perm);
    report.dedup = DedupReport {
        exact: d.exact,
        near: d.near,
        unhashed_images: d.unhashed_images,
        lsh_bands: bands,
        lsh_rows: rows_per_band,
    };
    let mut dropped: Vec<Reject> = d.dropped;
    report.counts.deduplicated = dropped.len();
    let mut rows = d.kept;
    report.stages.push(stage_counts("deduplicated", &rows));
    lap(&mut report, "dedup");

    // Difficulty.
    if let Some(path) = &recipe.difficulty.rollouts {
        let rollouts = Rollouts::load(path)?;
        let scorer = difficulty::scorer_for(&recipe.difficulty)?;
        let with = rows
            .iter()
            .filter(|r| rollouts.by_id.contains_key(&r.item.id))
            .count();
        let out = difficulty::filter(rows, &rollouts, &recipe.difficulty, &scorer);
        report.difficulty = Some(DifficultyReport {
            rollouts: path.clone(),
            samples_with_rollouts: with,
            kept_without_rollouts: out.kept_without_rollouts,
            filtered: out.filtered.len(),
            bad_rollout_lines: out.bad_rollout_count,
            bad_rollout_examples: out.bad_rollout_lines,
        });
        report.counts.filtered = out.filtered.len();
        dropped.extend(out.filtered);
        rows = out.kept;
        report.stages.push(stage_counts("difficulty", &rows));
        lap(&mut report, "difficulty");
    }

    // Mix.
    if let Some(m) = &recipe.mix {
        let out = mix::mix(rows, m);
        report.counts.not_selected = out.not_selected.len();
        dropped.extend(out.not_selected);
        report.mix_cells = out.cells;
        report.shortfalls = out.shortfalls;
        rows = out.selected;
        report.stages.push(stage_counts("mixed", &rows));
        lap(&mut report, "mix");
    }

    report.counts.rejected = rejected.len();
    report.counts.kept = rows.len();
    report.balanced = report.counts.balanced();
    for r in rejected.iter().chain(&dropped) {
        let stage = stage_name(r.stage).to_string();
        *report.rejected_by_stage.entry(stage.clone()).or_default() += 1;
        *report
            .reasons
            .entry(stage)
            .or_default()
            .entry(reason_kind(&r.reason))
            .or_default() += 1;
    }
    if !report.balanced {
        return Err(BuildError::Unbalanced(format!("{:?}", report.counts)));
    }

    // Write.
    let out_dir = recipe.output.dir.clone();
    std::fs::create_dir_all(&out_dir).map_err(write_err(&out_dir))?;
    let mut samples: Vec<Sample> = rows.into_iter().map(|r| r.item).collect();
    if recipe.output.copy_images {
        copy_images(&mut samples, &out_dir, opts)?;
    }
    let name = &recipe.output.name;
    let popts = ParquetOptions {
        embed_images: recipe.output.embed_images,
        relative_paths: false,
        image_root: Some(out_dir.clone()),
        ..Default::default()
    };
    for f in &recipe.output.formats {
        let path = match f {
            OutputFormat::Jsonl => out_dir.join(format!("{name}.jsonl")),
            OutputFormat::Verl => out_dir.join(format!("{name}.verl.parquet")),
            OutputFormat::Easyr1 => out_dir.join(format!("{name}.easyr1.parquet")),
        };
        match f {
            OutputFormat::Jsonl => write_jsonl(&samples, &path)?,
            OutputFormat::Verl => write_verl_parquet(&samples, &path, &popts)?,
            OutputFormat::Easyr1 => write_easyr1_parquet(&samples, &path, &popts)?,
        }
        report.files.push(path);
    }
    let rej_path = out_dir.join("rejected.jsonl");
    write_jsonl_of(&rejected, &rej_path)?;
    let drop_path = out_dir.join("dropped.jsonl");
    write_jsonl_of(&dropped, &drop_path)?;
    report.files.push(rej_path);
    report.files.push(drop_path);
    lap(&mut report, "write");
    if recipe.output.card {
        let files =
            crate::card::write_card(&report, &samples, &out_dir).map_err(write_err(&out_dir))?;
        report.files.extend(files);
        lap(&mut report, "card");
    }
    let report_path = out_dir.join("report.json");
    report.files.push(report_path.clone());
    std::fs::write(
        &report_path,
        serde_json::to_string_pretty(&report).unwrap() + "\n",
    )
    .map_err(write_err(&report_path))?;
    Ok(BuildOutput {
        report,
        samples,
        out_dir,
    })
}

/// Copies (hard-links when the file system allows) every image the samples use into
/// `out/images/<source>/`, named by a hash of the original path plus its file name so two
/// sources' `1.png` never collide, and rewrites the samples' paths relative to `out`.
fn copy_images(samples: &mut [Sample], out: &Path, opts: &BuildOptions) -> Result<(), BuildError> {
    let mut plan: BTreeMap<String, String> = BTreeMap::new();
    for s in samples.iter() {
        for p in &s.images {
            plan.entry(p.clone()).or_insert_with(|| {
                let file = Path::new(p)
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let safe: String = s
                    .source
                    .chars()
                    .map(|c| {
                        if c.is_alphanumeric() || c == '-' || c == '_' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
                format!(
                    "images/{safe}/{:016x}_{file}",
                    mixed_r1_stable_hash::fnv64(p.as_bytes())
                )
            });
        }
    }
    let bar = opts.bar(plan.len() as u64, "images");
    let jobs: Vec<(&String, &String)> = plan.iter().collect();
    let results: Vec<Result<(), BuildError>> = jobs
        .par_iter()
        .map(|(from, to)| {
            let dest = out.join(to);
            if let Some(dir) = dest.parent() {
                std::fs::create_dir_all(dir).map_err(write_err(dir))?;
            }
            let _ = std::fs::remove_file(&dest);
            if std::fs::hard_link(from.as_str(), &dest).is_err() {
                std::fs::copy(from.as_str(), &dest).map_err(write_err(&dest))?;
            }
            bar.inc(1);
            Ok(())
        })
        .collect();
    bar.finish_and_clear();
    results.into_iter().collect::<Result<Vec<()>, _>>()?;
    for s in samples.iter_mut() {
        for p in s.images.iter_mut() {
            *p = plan[p.as_str()].clone();
        }
    }
    Ok(())
}

/// `Arc<PathBuf>` helper for tests building rows by hand.
pub fn origin(file: &str, line: usize) -> crate::schema::Origin {
    crate::schema::Origin {
        file: Arc::new(PathBuf::from(file)),
        line,
    }
}
