//! `mixed-r1 data …`: synthesise, build, inspect and validate datasets (the data engine of
//! `crates/data`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use mixed_r1_data::adapters::{default_name, detect_format, read_source};
use mixed_r1_data::normalise::normalise;
use mixed_r1_data::parquet_io::write_jsonl_of;
use mixed_r1_data::pipeline::{self, BuildOptions, Recipe};
use mixed_r1_data::synth::{self, SynthConfig};
use mixed_r1_data::validate::{validate_all, ValidateOptions};
use mixed_r1_data::{SourceFormat, SourceSpec, Stage};

const DATA_HELP: &str = "\
STAGES OF `data build`
  [synth] -> ingest -> normalise -> validate -> dedup -> difficulty -> mix -> write + card
  Every input row is kept or leaves at one stage with file, line and reason:
    input = kept + rejected + deduplicated + filtered + not_selected
  rejected.jsonl: ingest / normalise / validate; dropped.jsonl: dedup / difficulty / mix.

EXAMPLES
  mixed-r1 data synth --out /tmp/synth --count 2000 --seed 7
  mixed-r1 data build --recipe recipes/data/demo.toml
  mixed-r1 data build --recipe recipes/data/mixed45k-shape.toml --out build/mixed45k
  mixed-r1 data inspect build/demo/train.verl.parquet
  mixed-r1 data validate my.jsonl --image-root images/ --rejects my.rejected.jsonl";

#[derive(Args)]
#[command(after_help = DATA_HELP)]
pub struct DataArgs {
    #[command(subcommand)]
    command: DataCommand,
}

#[derive(Subcommand)]
enum DataCommand {
    /// Generate a seeded synthetic mixed set (shapes, charts, grounding, captions, math) with exact answers.
    Synth(SynthArgs),
    /// Build a dataset from a recipe: synth, ingest, normalise, validate, dedup, difficulty, mix, write, card.
    Build(BuildArgs),
    /// Statistics of a dataset file (any supported format): tasks, sources, lengths, rejects.
    Inspect(InspectArgs),
    /// Normalise and validate a file; print a summary and write the rejected rows. Exit status 1 when any row is rejected.
    Validate(ValidateArgs),
}

#[derive(Args)]
struct SynthArgs {
    /// Output folder (samples.jsonl, images/, synth.json).
    #[arg(long)]
    out: PathBuf,
    /// Number of samples (questions) to generate.
    #[arg(long, default_value_t = 10_000)]
    count: usize,
    /// Seed: the same seed gives byte-identical output.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// matplotlib's Stocks.csv for real chart numbers (scripts/fetch-assets.sh mpl-sample-data);
    /// without it charts use generated numbers.
    #[arg(long)]
    stocks: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(Args)]
struct BuildArgs {
    /// The recipe (TOML): [[source]], [synth], [validate], [dedup], [difficulty], [mix], [output].
    #[arg(long)]
    recipe: PathBuf,
    /// Output folder (overrides [output] dir).
    #[arg(long)]
    out: Option<PathBuf>,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
}

#[derive(Args)]
struct InspectArgs {
    /// A dataset file or folder (format detected: jsonl, llava, vlm_r1, verl/easyr1 parquet, easy_vqa folder, ...).
    file: PathBuf,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Jsonl,
    Llava,
    VlmR1,
    Verl,
    Easyr1,
    Refcoco,
    Chartqa,
    CocoCaptions,
    Scienceqa,
    EasyVqa,
}

impl From<Format> for SourceFormat {
    fn from(f: Format) -> SourceFormat {
        match f {
            Format::Jsonl => SourceFormat::Jsonl,
            Format::Llava => SourceFormat::Llava,
            Format::VlmR1 => SourceFormat::VlmR1,
            Format::Verl => SourceFormat::Verl,
            Format::Easyr1 => SourceFormat::Easyr1,
            Format::Refcoco => SourceFormat::Refcoco,
            Format::Chartqa => SourceFormat::Chartqa,
            Format::CocoCaptions => SourceFormat::CocoCaptions,
            Format::Scienceqa => SourceFormat::Scienceqa,
            Format::EasyVqa => SourceFormat::EasyVqa,
        }
    }
}

#[derive(Args)]
struct ValidateArgs {
    /// The file (or easy-vqa folder) to check.
    file: PathBuf,
    /// Its format (default: detected from the name and content).
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Folder relative image paths are resolved against (default: the file's folder).
    #[arg(long)]
    image_root: Option<PathBuf>,
    /// Where to write the rejected rows (JSON Lines with file, line, stage, reason).
    #[arg(long, default_value = "rejected.jsonl")]
    rejects: PathBuf,
    /// Only check that images exist, without decoding them.
    #[arg(long)]
    no_decode: bool,
}

pub fn run(args: DataArgs) -> Result<()> {
    match args.command {
        DataCommand::Synth(a) => run_synth(a),
        DataCommand::Build(a) => run_build(a),
        DataCommand::Inspect(a) => {
            let report = mixed_r1_data::inspect::inspect(&a.file)?;
            print!("{report}");
            Ok(())
        }
        DataCommand::Validate(a) => run_validate(a),
    }
}

fn run_synth(a: SynthArgs) -> Result<()> {
    let cfg = SynthConfig {
        count: a.count,
        seed: a.seed,
        stocks: a.stocks,
        scenes: Default::default(),
    };
    let start = Instant::now();
    let bar = BuildOptions { quiet: a.quiet }.bar(0, "synth");
    let summary = synth::generate(&cfg, &a.out, &bar)?;
    eprintln!(
        "wrote {} samples and {} images to {} in {:.1} s (chart numbers: {})",
        summary.samples,
        summary.images,
        a.out.display(),
        start.elapsed().as_secs_f64(),
        if summary.real_chart_numbers {
            "Stocks.csv"
        } else {
            "generated"
        }
    );
    for (task, n) in &summary.per_task {
        eprintln!("  {task:<11} {n}");
    }
    Ok(())
}

fn run_build(a: BuildArgs) -> Result<()> {
    let mut recipe = Recipe::load(&a.recipe)?;
    if let Some(out) = a.out {
        recipe.output.dir = out;
    }
    let start = Instant::now();
    let out = pipeline::build(&recipe, &BuildOptions { quiet: a.quiet })?;
    let r = &out.report;
    let c = &r.counts;
    eprintln!(
        "built {} in {:.1} s",
        out.out_dir.display(),
        start.elapsed().as_secs_f64()
    );
    eprintln!(
        "input {} = kept {} + rejected {} + deduplicated {} + filtered {} + not selected {}",
        c.input, c.kept, c.rejected, c.deduplicated, c.filtered, c.not_selected
    );
    for (stage, reasons) in &r.reasons {
        for (reason, n) in reasons {
            eprintln!("  {stage:<10} {n:>8}  {reason}");
        }
    }
    for s in &r.shortfalls {
        eprintln!("shortfall: {s} (not filled from elsewhere)");
    }
    for n in &r.notes {
        eprintln!("note: {n}");
    }
    for f in &r.files {
        eprintln!("  {}", f.display());
    }
    Ok(())
}

fn run_validate(a: ValidateArgs) -> Result<()> {
    let format: SourceFormat = match a.format {
        Some(f) => f.into(),
        None => detect_format(&a.file).with_context(|| {
            format!(
                "cannot tell the format of {}; pass --format",
                a.file.display()
            )
        })?,
    };
    let spec = SourceSpec {
        name: None,
        format,
        path: a.file.clone(),
        image_root: a.image_root.clone(),
        options: Default::default(),
    };
    let rows = read_source(&spec)?;
    let total = rows.len();
    let name = default_name(&a.file);
    let mut rejects = Vec::new();
    let mut ok = Vec::new();
    for r in rows {
        match r.and_then(|row| normalise(row, &name)) {
            Ok(row) => ok.push(row),
            Err(rej) => rejects.push(rej),
        }
    }
    let opts = ValidateOptions {
        check_images: !a.no_decode,
        ..Default::default()
    };
    let (valid, bad) = validate_all(ok, &opts);
    rejects.extend(bad);
    rejects.sort_by(|x, y| (&x.file, x.line).cmp(&(&y.file, y.line)));
    write_jsonl_of(&rejects, &a.rejects)?;
    let mut per_task: BTreeMap<String, usize> = BTreeMap::new();
    for r in &valid {
        *per_task.entry(r.item.task.to_string()).or_default() += 1;
    }
    let mut per_stage: BTreeMap<Stage, usize> = BTreeMap::new();
    for r in &rejects {
        *per_stage.entry(r.stage).or_default() += 1;
    }
    println!(
        "{} ({format:?}): {total} rows, {} valid, {} rejected",
        a.file.display(),
        valid.len(),
        rejects.len()
    );
    for (t, n) in &per_task {
        println!("  {t:<11} {n}");
    }
    for (s, n) in &per_stage {
        println!("  rejected at {s:?}: {n}");
    }
    for r in rejects.iter().take(10) {
        println!(
            "  {}:{}: {:?}: {}",
            r.file.display(),
            r.line,
            r.stage,
            r.reason
        );
    }
    println!("rejects written to {}", a.rejects.display());
    if !rejects.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}
