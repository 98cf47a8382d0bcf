//! `mixed-r1 eval …`: run an eval (generate with a model, or score given responses), compare
//! result folders, and convert benchmark layouts into our JSONL.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use mixed_r1_data::Task;
use mixed_r1_eval::convert::{convert, BenchFormat, ConvertOptions};
use mixed_r1_eval::metrics::headline;
use mixed_r1_eval::report::{cell, label};
use mixed_r1_eval::{
    check_model_path, compare, compare_markdown, run, write_comparison, EvalConfig, GivenResponses,
    PromptTemplate, Responder, Results, RunOptions,
};
use mixed_r1_reward::format::FormatMode;
use mixed_r1_reward::RewardConfig;
use mixed_r1_train::RunFile;

const EVAL_HELP: &str = "\
MODES
  mixed-r1 eval --data FILE [--data FILE ...] --out DIR --model MODEL      generate, score, report
  mixed-r1 eval --data FILE --out DIR --responses FILE.jsonl               score given responses
  mixed-r1 eval --compare DIR DIR [DIR ...] [--out DIR]                    side by side, with deltas
  mixed-r1 eval convert --format chartqa|refcoco|mmbench|scienceqa|pope IN --out OUT.jsonl

DATA: our JSONL (DESIGN.md sample schema), verl / EasyR1 Parquet, or any layout `mixed-r1 data`
  detects. A bad row, a sample whose image is missing and a repeated id are reported and skipped.

RESPONSES (--responses): one JSON object a line, {\"id\": ..., \"response\": \"...\"} or
  {\"id\": ..., \"responses\": [\"...\", ...]} for -n > 1; optional \"tokens\" and \"truncated\".

OUTPUT (--out DIR): results.json, results.md, samples.jsonl (every prompt, response and score),
  charts/<task>.png + charts/overview.png, fingerprint.json, runs.jsonl.
  An interrupted run resumes: rerun the same command; finished samples are not redone. A rerun
  with other settings is refused (use another --out, or --overwrite).

METRICS: accuracy (yes_no, mcq, numeric, math), relaxed accuracy (chart), Acc@0.5 and mean IoU
  (grounding), BMAS and ROUGE-L (open_ended), format rate, mean tokens / chars, truncation rate,
  pass@k (unbiased, -n > 1); per task, per source, per task and source, overall.

PROMPT: the trainer's template (think / answer instruction by default; per-task suffixes such
  as the options of an mcq and the box format of grounding). --prompt FILE.toml, --instruction,
  --system, or [prompt] in --config eval.toml.

EXAMPLES
  mixed-r1 eval --data bench.jsonl --out runs/base --responses base_responses.jsonl
  mixed-r1 eval --data chartqa.jsonl --data pope.jsonl --out runs/ckpt --model checkpoints/step-500
  mixed-r1 eval --data bench.jsonl --out runs/pass --model ckpt -n 8 --temperature 0.8
  mixed-r1 eval --compare runs/base runs/ckpt --out runs/compare
  mixed-r1 eval convert --format mmbench MMBench_DEV_EN.tsv --out data/mmbench.jsonl";

#[derive(Args)]
#[command(
    about = "Evaluate a model (or given responses) per task and source; compare runs; convert benchmarks",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_long_help = EVAL_HELP
)]
pub struct EvalArgs {
    #[command(subcommand)]
    command: Option<EvalCommand>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum EvalCommand {
    /// Convert a benchmark layout (ChartQA, RefCOCO, MMBench, ScienceQA, POPE) into our JSONL.
    Convert(ConvertArgs),
}

#[derive(Args)]
struct RunArgs {
    /// Data file; repeat for several.
    #[arg(long = "data", short = 'd', value_name = "FILE")]
    data: Vec<PathBuf>,
    /// Output folder (with --compare: where compare.json / .md / .png go).
    #[arg(long, short)]
    out: Option<PathBuf>,
    /// Model to generate with: a Hugging Face folder (config.json, tokenizer.json, *.safetensors)
    /// or a .gguf file.
    #[arg(long, conflicts_with = "responses")]
    model: Option<PathBuf>,
    /// Score these responses (JSONL) instead of generating.
    #[arg(long, value_name = "FILE")]
    responses: Option<PathBuf>,
    /// Compare result folders side by side; the first is the baseline of the deltas.
    #[arg(long, num_args = 2.., value_name = "DIR",
          conflicts_with_all = ["data", "model", "responses"])]
    compare: Vec<PathBuf>,
    /// A run file (this command uses its [eval] batch_size / max_new_tokens / seed, [prompt],
    /// [reward], and [data] heldout and [model] path when --data / --model are not given;
    /// greedy unless -n / --temperature), or an eval.toml: n, seed, batch_size, [generation],
    /// [prompt], [reward].
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// reward.toml (replaces [reward] of --config).
    #[arg(long, value_name = "FILE")]
    reward_config: Option<PathBuf>,
    /// Prompt template TOML (replaces [prompt] of --config).
    #[arg(long, value_name = "FILE")]
    prompt: Option<PathBuf>,
    /// The output-format instruction of the prompt.
    #[arg(long)]
    instruction: Option<String>,
    /// A system message.
    #[arg(long)]
    system: Option<String>,
    /// Format reward mode (and the default instruction that goes with it).
    #[arg(long, value_parser = ["think_answer", "answer_only", "boxed", "none"])]
    format_mode: Option<String>,
    /// Responses per prompt; > 1 samples (temperature 1.0 unless given) and reports pass@k.
    #[arg(short = 'n', long = "n")]
    n: Option<usize>,
    #[arg(long)]
    seed: Option<u64>,
    /// 0 = greedy.
    #[arg(long)]
    temperature: Option<f64>,
    #[arg(long)]
    top_p: Option<f64>,
    #[arg(long)]
    top_k: Option<usize>,
    #[arg(long)]
    max_new_tokens: Option<usize>,
    /// Prompts per generation batch.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Where the model generates: cpu, cuda, cuda:<n> (cuda needs a --features cuda build).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Evaluate only the first N usable samples (rerun without it to finish).
    #[arg(long)]
    limit: Option<usize>,
    /// Discard an earlier run in --out instead of resuming it.
    #[arg(long)]
    overwrite: bool,
    /// No PNG charts.
    #[arg(long)]
    no_charts: bool,
    /// No progress bar and no summary.
    #[arg(long, short)]
    quiet: bool,
    /// Scoring threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// BMAS: HF tokenizer.json (with --embeddings).
    #[arg(long, requires = "embeddings", conflicts_with = "bmas_model")]
    tokenizer: Option<PathBuf>,
    /// BMAS: safetensors file with the token-embedding table (with --tokenizer).
    #[arg(long, requires = "tokenizer", conflicts_with = "bmas_model")]
    embeddings: Option<PathBuf>,
    /// BMAS: name of the embedding tensor.
    #[arg(long)]
    embedding_tensor: Option<String>,
    /// BMAS: a model folder whose tokenizer and input embeddings to use (default with --model:
    /// the evaluated model's own).
    #[arg(long, value_name = "DIR")]
    bmas_model: Option<PathBuf>,
}

#[derive(Args)]
struct ConvertArgs {
    /// The input's layout.
    #[arg(long, short, value_parser = ["chartqa", "refcoco", "mmbench", "scienceqa", "pope"])]
    format: String,
    /// The input file (ChartQA JSON, RefCOCO refs JSON, MMBench TSV, ScienceQA problems.json,
    /// POPE JSON lines).
    input: PathBuf,
    /// The output JSONL file.
    #[arg(long, short)]
    out: PathBuf,
    /// The samples' source name (default: the format's name).
    #[arg(long)]
    source: Option<String>,
    /// Keep only this split (RefCOCO, ScienceQA, MMBench).
    #[arg(long)]
    split: Option<String>,
    /// Folder image file names are resolved in (RefCOCO: COCO train2014; POPE: COCO val2014).
    #[arg(long, value_name = "DIR")]
    image_root: Option<PathBuf>,
    #[arg(long, short)]
    quiet: bool,
}

pub fn run_cmd(args: EvalArgs) -> Result<()> {
    match args.command {
        Some(EvalCommand::Convert(c)) => convert_cmd(c),
        None if !args.run.compare.is_empty() => compare_cmd(&args.run),
        None => eval_cmd(args.run),
    }
}

fn compare_cmd(a: &RunArgs) -> Result<()> {
    let c = compare(&a.compare)?;
    let md = compare_markdown(&c);
    if let Some(out) = &a.out {
        write_comparison(&c, out)?;
        if !a.quiet {
            eprintln!(
                "wrote {0}/compare.json, {0}/compare.md, {0}/compare.png",
                out.display()
            );
        }
    }
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(md.as_bytes())?;
    Ok(())
}

/// Whether a TOML file is a run file (it has a section only run files have) rather than an
/// eval.toml.
fn is_run_file(path: &Path) -> Result<bool> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let doc: toml::Table =
        toml::from_str(&text).with_context(|| format!("{}: invalid TOML", path.display()))?;
    Ok(["run", "data", "model", "lora", "sft", "grpo", "eval"]
        .iter()
        .any(|k| doc.contains_key(*k)))
}

/// `--config` when it is a run file.
fn run_file_arg(a: &RunArgs) -> Result<Option<RunFile>> {
    match &a.config {
        Some(p) if is_run_file(p)? => Ok(Some(RunFile::from_file(p, &[])?)),
        _ => Ok(None),
    }
}

fn build_config(a: &RunArgs) -> Result<EvalConfig> {
    let mut cfg = match (&a.config, run_file_arg(a)?) {
        (_, Some(rf)) => mixed_r1_recipes::eval_config(&rf, false),
        (Some(p), None) => EvalConfig::from_file(p)?,
        (None, None) => EvalConfig::default(),
    };
    if let Some(p) = &a.reward_config {
        cfg.reward = RewardConfig::from_file(p).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    if let Some(m) = &a.format_mode {
        cfg.reward.format.mode = serde_json::from_value::<FormatMode>(m.as_str().into())
            .with_context(|| format!("format mode {m}"))?;
    }
    if let Some(p) = &a.prompt {
        cfg.prompt = Some(PromptTemplate::from_file(p)?);
    }
    if a.instruction.is_some() || a.system.is_some() {
        let mut t = cfg.prompt_template();
        if let Some(i) = &a.instruction {
            t.instruction = i.clone();
        }
        if let Some(s) = &a.system {
            t.system = Some(s.clone());
        }
        cfg.prompt = Some(t);
    }
    if let Some(n) = a.n {
        cfg.n = n;
    }
    if let Some(s) = a.seed {
        cfg.seed = s;
    }
    let g = &mut cfg.generation;
    if a.temperature.is_some() {
        g.temperature = a.temperature;
    }
    if let Some(p) = a.top_p {
        g.top_p = p;
    }
    if let Some(k) = a.top_k {
        g.top_k = k;
    }
    if let Some(m) = a.max_new_tokens {
        g.max_new_tokens = m;
    }
    if let Some(b) = a.batch_size {
        cfg.batch_size = b;
    }
    let b = &mut cfg.reward.bmas;
    if let Some(m) = &a.bmas_model {
        b.model = Some(m.clone());
        b.tokenizer = None;
        b.embeddings = None;
    } else if a.tokenizer.is_some() {
        b.tokenizer = a.tokenizer.clone();
        b.embeddings = a.embeddings.clone();
        b.model = None;
    } else if b.model.is_none() && b.tokenizer.is_none() {
        // BMAS over the evaluated model's own input embeddings (DESIGN.md).
        if let Some(m) = a.model.as_ref().filter(|m| m.is_dir()) {
            b.model = Some(m.clone());
        }
    }
    if a.embedding_tensor.is_some() {
        b.tensor = a.embedding_tensor.clone();
    }
    cfg.validate()?;
    Ok(cfg)
}

/// The model-backed responder. It arrives with the model crate: it must load `path` (naming the
/// file that fails), apply the chat template, and generate `n` responses a prompt in batches as
/// `mixed_r1_eval::Responder` documents (see notes/eval.md).
fn model_responder(path: &Path, cfg: &EvalConfig, device: &str) -> Result<Box<dyn Responder>> {
    check_model_path(path)?;
    let opts = mixed_r1_model::model::LoadOptions::default().with_device_name(device)?;
    let r =
        mixed_r1_eval::model_responder::ModelResponder::load(path, &opts, cfg.generation.clone())?;
    Ok(Box::new(r))
}

fn eval_cmd(mut a: RunArgs) -> Result<()> {
    // A run file fills in what the flags leave out: its held-out set and its policy.
    if let Some(rf) = run_file_arg(&a)? {
        if a.data.is_empty() {
            a.data.extend(rf.data.heldout.clone());
        }
        if a.model.is_none() && a.responses.is_none() {
            a.model = rf.train.model.path.clone();
        }
    }
    if a.data.is_empty() {
        bail!("give the data to evaluate with --data FILE (or --compare DIR DIR ...)");
    }
    let Some(out) = a.out.clone() else {
        bail!("give an output folder with --out DIR");
    };
    if let Some(n) = a.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .build_global()
            .context("cannot start the worker threads")?;
    }
    let cfg = build_config(&a)?;
    let mut responder: Box<dyn Responder> = match (&a.model, &a.responses) {
        (Some(m), None) => model_responder(m, &cfg, &a.device)?,
        (None, Some(r)) => {
            let g = GivenResponses::load(r)?;
            if !a.quiet {
                for b in g.bad_lines().iter().take(5) {
                    eprintln!("warning: {}:{}: {}", r.display(), b.line, b.reason);
                }
                if g.bad_lines().len() > 5 {
                    eprintln!(
                        "warning: … {} more bad lines in {}",
                        g.bad_lines().len() - 5,
                        r.display()
                    );
                }
            }
            Box::new(g)
        }
        _ => bail!("give --model MODEL to generate, or --responses FILE to score given responses"),
    };
    let opts = RunOptions {
        data: a.data.clone(),
        out: out.clone(),
        limit: a.limit,
        overwrite: a.overwrite,
        progress: !a.quiet,
        charts: !a.no_charts,
    };
    let results = run(&cfg, &opts, responder.as_mut())?;
    if !a.quiet {
        print_summary(&results, &out);
    }
    Ok(())
}

fn print_summary(r: &Results, out: &Path) {
    let mut e = std::io::stderr().lock();
    let c = &r.counts;
    let _ = writeln!(
        e,
        "{} samples evaluated, {} scored{}; skipped: {} invalid, {} missing image, {} duplicate, {} without a response{}",
        c.evaluated,
        c.scored,
        if c.not_scored > 0 {
            format!(" ({} not scored)", c.not_scored)
        } else {
            String::new()
        },
        c.invalid,
        c.missing_image,
        c.duplicate,
        c.no_response,
        if r.complete {
            String::new()
        } else {
            format!("; {} remaining (rerun to resume)", c.remaining)
        }
    );
    let _ = writeln!(
        e,
        "{:<11} {:>7} {:>7}  {:<28} {:>7}",
        "task", "samples", "scored", "headline", "format"
    );
    for task in Task::ALL {
        let Some(m) = r.tasks.get(task.as_str()) else {
            continue;
        };
        let head: Vec<String> = headline(task)
            .iter()
            .filter_map(|n| {
                m.get(n)
                    .map(|v| format!("{} {}", label(n), cell(n, Some(v))))
            })
            .collect();
        let _ = writeln!(
            e,
            "{:<11} {:>7} {:>7}  {:<28} {:>7}",
            task.as_str(),
            m.samples,
            m.scored,
            if head.is_empty() {
                "–".to_string()
            } else {
                head.join(", ")
            },
            cell("format_rate", m.format_rate)
        );
    }
    for (why, n) in &r.not_scored_reasons {
        let _ = writeln!(e, "not scored: {n} × {why}");
    }
    let t = &r.timing;
    if let Some(sps) = t.samples_per_s {
        let _ = writeln!(
            e,
            "{:.2} samples/s over {:.2} s; generation {:.1}%, scoring {:.2}%",
            sps,
            t.wall_s,
            100.0 * t.generation_share.unwrap_or(0.0),
            100.0 * t.scoring_share.unwrap_or(0.0)
        );
    }
    let _ = writeln!(e, "results: {}", out.join("results.md").display());
}

fn convert_cmd(a: ConvertArgs) -> Result<()> {
    let format = BenchFormat::from_name(&a.format)
        .with_context(|| format!("unknown format {}", a.format))?;
    let report = convert(&ConvertOptions {
        format,
        input: a.input.clone(),
        out: a.out.clone(),
        source: a.source,
        split: a.split,
        image_root: a.image_root,
    })?;
    if !a.quiet {
        let mut e = std::io::stderr().lock();
        for b in report.bad.iter().take(20) {
            let _ = writeln!(e, "bad row: {b}");
        }
        if report.bad.len() > 20 {
            let _ = writeln!(e, "… and {} more bad rows", report.bad.len() - 20);
        }
        let tasks: Vec<String> = report
            .per_task
            .iter()
            .map(|(t, n)| format!("{n} {t}"))
            .collect();
        let _ = writeln!(
            e,
            "converted {} of {} rows from {} ({} bad) into {}: {}{}{}",
            report.written,
            report.rows,
            a.input.display(),
            report.bad.len(),
            a.out.display(),
            if tasks.is_empty() {
                "nothing".into()
            } else {
                tasks.join(", ")
            },
            if report.images_written > 0 {
                format!("; {} images written", report.images_written)
            } else {
                String::new()
            },
            if report.missing_images > 0 {
                format!(
                    "; {} samples name a missing image (eval will skip them)",
                    report.missing_images
                )
            } else {
                String::new()
            }
        );
    }
    if report.written == 0 && !report.bad.is_empty() {
        bail!(
            "no row of {} could be converted ({} bad)",
            a.input.display(),
            report.bad.len()
        );
    }
    Ok(())
}
