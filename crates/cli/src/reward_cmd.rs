//! `mixed-r1 reward …`: score JSONL files with the mixed reward, and measure its throughput.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use mixed_r1_reward::chart::ChartMode;
use mixed_r1_reward::extract::Fallback;
use mixed_r1_reward::format::FormatMode;
use mixed_r1_reward::iou::{Frame, IouMode};
use mixed_r1_reward::{RewardConfig, ScoreResult, Scorer, ScoringSample};

const REWARD_HELP: &str = "\
TASKS (the sample's `task` picks the accuracy reward; `reward` on a sample overrides it)
  yes_no      yes/no (also true/false) as whole words; both or neither -> 0
  mcq         option letter from `B`, `(B)`, `B.`, `answer is B`, `Option B`, or a choice's text;
              letters inside words never count; several letters -> 0 unless the gold has several
  numeric     last number of the answer vs the gold number, within 1e-6 relative; commas,
              signs, units, currency and percent are handled
  math        LaTeX / plain math equivalence (\\frac, \\sqrt, ^, \\pi, intervals, sets, ...),
              evaluated under a deadline
  chart       ChartQA relaxed accuracy: within 5% (35% == 0.35; years exact; text exact)
  grounding   IoU of predicted vs gold boxes, in any coordinate frame (reward name: iou)
  open_ended  BMAS: bidirectional max-average cosine of token embeddings (reward name: bmas)

SCORE = accuracy_weight * accuracy + format_weight * format   (defaults 1.0 and 0.5)
  A gold answer that cannot be parsed skips the sample: reward and accuracy are null and
  `error` says why. It never scores 1.0.

FORMAT MODES (--format-mode or [format] mode)
  think_answer  <think>...</think> then <answer>...</answer>, nothing else (default)
  answer_only   <answer>...</answer> only
  boxed         a \\boxed{...}; the answer is the last \\boxed{}
  none          no format reward
  The answer is the last <answer>...</answer>; without one, --fallback strict gives accuracy 0,
  lenient takes the last \\boxed{}, else the text after </think>, else the whole response.

BOX FRAMES (sample fields `frame` for gold boxes, `pred_frame` for the model's; image_size [w, h])
  abs           pixels of the original image (default)
  abs_resized   pixels of the Qwen2.5-VL smart-resized image (factor 28, min/max pixels)
  rel1000       0..1000 (Qwen2-VL, InternVL)
  rel1          0..1
  Boxes may be written as [x1,y1,x2,y2], {\"bbox_2d\": [...]}, lists of them, ```json fences,
  <box>[[...]]</box>, or (x1,y1),(x2,y2). Several boxes are matched one to one; more than
  max_boxes (20), or a box covering > 90% of the image when no gold box is that large, scores 0.

EXAMPLES
  mixed-r1 reward score --input examples/mixed.jsonl
  mixed-r1 reward score --input rollouts.jsonl --output scores.jsonl --config reward.toml
  echo '{\"task\":\"yes_no\",\"answer\":\"yes\",\"response\":\"<think>.</think><answer>Yes</answer>\"}' \\
      | mixed-r1 reward score --input -
  mixed-r1 reward score --input captions.jsonl --model path/to/Qwen2.5-VL-3B-Instruct
  mixed-r1 reward score --input captions.jsonl --tokenizer tokenizer.json \\
      --embeddings model.safetensors --embedding-tensor embeddings.word_embeddings.weight
  mixed-r1 reward bench --input examples/mixed.jsonl --min-seconds 5";

#[derive(Args)]
#[command(about = "Score responses with the mixed reward", after_long_help = REWARD_HELP)]
pub struct RewardArgs {
    #[command(subcommand)]
    command: RewardCommand,
}

#[derive(Subcommand)]
enum RewardCommand {
    /// Score a JSONL file: one result line per input line, in order.
    ///
    /// Each input line is a sample (DESIGN.md schema) plus "response". Each output line is
    /// {"id", "reward", "format", "accuracy", "task", "error"}. A bad line gets "reward": null and
    /// an "error"; the exit status is 0 unless the input cannot be read. A summary goes to stderr.
    #[command(after_long_help = REWARD_HELP)]
    Score(ScoreArgs),
    /// Measure scoring throughput on a JSONL file (in memory, repeated), printed as JSON.
    #[command(after_long_help = REWARD_HELP)]
    Bench(BenchArgs),
}

#[derive(Args)]
struct ScoreArgs {
    /// Scoring lines (JSONL); `-` reads standard input.
    #[arg(long, short)]
    input: PathBuf,
    /// Where to write results (JSONL); standard output when absent.
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// No progress bar and no summary on stderr.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    reward: RewardOpts,
}

#[derive(Args)]
struct BenchArgs {
    /// Scoring lines (JSONL).
    #[arg(long, short)]
    input: PathBuf,
    /// Keep scoring the whole file until at least this long has passed.
    #[arg(long, default_value_t = 3.0)]
    min_seconds: f64,
    #[command(flatten)]
    reward: RewardOpts,
}

/// Reward options: a config file, and flags that override it.
#[derive(Args)]
pub(crate) struct RewardOpts {
    /// reward.toml with weights, modes, tolerances and BMAS options.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// HF tokenizer.json for BMAS (with --embeddings).
    #[arg(long, requires = "embeddings", conflicts_with = "model")]
    tokenizer: Option<PathBuf>,
    /// safetensors file holding the token-embedding table for BMAS (memory-mapped).
    #[arg(long, requires = "tokenizer", conflicts_with = "model")]
    embeddings: Option<PathBuf>,
    /// Name of the embedding tensor (default: the usual names are tried).
    #[arg(long)]
    embedding_tensor: Option<String>,
    /// Hugging Face model folder whose tokenizer and input embeddings BMAS uses.
    #[arg(long)]
    model: Option<PathBuf>,
    #[arg(long, value_enum)]
    format_mode: Option<FormatModeArg>,
    #[arg(long, value_enum)]
    fallback: Option<FallbackArg>,
    #[arg(long)]
    accuracy_weight: Option<f64>,
    #[arg(long)]
    format_weight: Option<f64>,
    #[arg(long, value_enum)]
    chart_mode: Option<ChartModeArg>,
    #[arg(long, value_enum)]
    iou_mode: Option<IouModeArg>,
    /// Frame of predicted boxes when a sample does not say.
    #[arg(long, value_enum)]
    pred_frame: Option<FrameArg>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatModeArg {
    ThinkAnswer,
    AnswerOnly,
    Boxed,
    None,
}
#[derive(Clone, Copy, ValueEnum)]
enum FallbackArg {
    Strict,
    Lenient,
}
#[derive(Clone, Copy, ValueEnum)]
enum ChartModeArg {
    Binary,
    Partial,
}
#[derive(Clone, Copy, ValueEnum)]
enum IouModeArg {
    Continuous,
    Threshold,
}
#[derive(Clone, Copy, ValueEnum)]
enum FrameArg {
    Abs,
    AbsResized,
    Rel1000,
    Rel1,
}

impl RewardOpts {
    pub(crate) fn scorer(&self) -> Result<Scorer> {
        if let Some(n) = self.threads {
            rayon::ThreadPoolBuilder::new()
                .num_threads(n.max(1))
                .build_global()
                .context("cannot start the worker threads")?;
        }
        let mut cfg = match &self.config {
            Some(p) => RewardConfig::from_file(p)?,
            None => RewardConfig::default(),
        };
        if let Some(m) = self.format_mode {
            cfg.format.mode = match m {
                FormatModeArg::ThinkAnswer => FormatMode::ThinkAnswer,
                FormatModeArg::AnswerOnly => FormatMode::AnswerOnly,
                FormatModeArg::Boxed => FormatMode::Boxed,
                FormatModeArg::None => FormatMode::None,
            };
        }
        if let Some(f) = self.fallback {
            cfg.extract.fallback = match f {
                FallbackArg::Strict => Fallback::Strict,
                FallbackArg::Lenient => Fallback::Lenient,
            };
        }
        if let Some(w) = self.accuracy_weight {
            cfg.accuracy_weight = w;
        }
        if let Some(w) = self.format_weight {
            cfg.format_weight = w;
        }
        if let Some(m) = self.chart_mode {
            cfg.chart.mode = match m {
                ChartModeArg::Binary => ChartMode::Binary,
                ChartModeArg::Partial => ChartMode::Partial,
            };
        }
        if let Some(m) = self.iou_mode {
            cfg.iou.mode = match m {
                IouModeArg::Continuous => IouMode::Continuous,
                IouModeArg::Threshold => IouMode::Threshold,
            };
        }
        if let Some(f) = self.pred_frame {
            cfg.iou.pred_frame = Some(match f {
                FrameArg::Abs => Frame::Abs,
                FrameArg::AbsResized => Frame::AbsResized,
                FrameArg::Rel1000 => Frame::Rel1000,
                FrameArg::Rel1 => Frame::Rel1,
            });
        }
        if self.model.is_some() {
            cfg.bmas.model = self.model.clone();
            cfg.bmas.tokenizer = None;
            cfg.bmas.embeddings = None;
        }
        if self.tokenizer.is_some() {
            cfg.bmas.tokenizer = self.tokenizer.clone();
            cfg.bmas.embeddings = self.embeddings.clone();
            cfg.bmas.model = None;
        }
        if self.embedding_tensor.is_some() {
            cfg.bmas.tensor = self.embedding_tensor.clone();
        }
        Scorer::new(cfg).context("cannot set up the rewards")
    }
}

pub fn run(args: RewardArgs) -> Result<()> {
    match args.command {
        RewardCommand::Score(a) => score(a),
        RewardCommand::Bench(a) => bench(a),
    }
}

fn open_input(path: &Path) -> Result<Box<dyn BufRead>> {
    if path == Path::new("-") {
        return Ok(Box::new(BufReader::new(io::stdin())));
    }
    let f = File::open(path).with_context(|| format!("cannot read input {}", path.display()))?;
    if f.metadata().is_ok_and(|m| m.is_dir()) {
        bail!("cannot read input {}: it is a folder", path.display());
    }
    Ok(Box::new(BufReader::with_capacity(1 << 20, f)))
}

/// Lines are scored this many at a time: parallel within a chunk, written in order.
const CHUNK: usize = 16_384;

fn score(args: ScoreArgs) -> Result<()> {
    let scorer = args.reward.scorer()?;
    let mut input = open_input(&args.input)?;
    let out: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(
            File::create(p).with_context(|| format!("cannot write output {}", p.display()))?,
        ),
        None => Box::new(io::stdout().lock()),
    };
    let mut out = BufWriter::with_capacity(1 << 20, out);
    let progress = progress_bar(&args.input, args.quiet);
    let mut read_bytes = 0u64;
    let mut summary = Summary::default();
    let started = Instant::now();
    let mut line_no = 0usize;
    let mut chunk: Vec<Result<String, String>> = Vec::with_capacity(CHUNK);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = input
            .read_until(b'\n', &mut buf)
            .with_context(|| format!("cannot read input {}", args.input.display()))?;
        read_bytes += n as u64;
        if n > 0 {
            while matches!(buf.last(), Some(b'\n' | b'\r')) {
                buf.pop();
            }
            chunk.push(
                String::from_utf8(std::mem::take(&mut buf))
                    .map_err(|_| "line is not valid UTF-8".to_string()),
            );
        }
        if chunk.len() == CHUNK || (n == 0 && !chunk.is_empty()) {
            let results = score_chunk(&scorer, &chunk);
            for r in &results {
                line_no += 1;
                summary.add(line_no, r);
                serde_json::to_writer(&mut out, r)?;
                out.write_all(b"\n")?;
            }
            chunk.clear();
            progress.set_position(read_bytes);
        }
        if n == 0 {
            break;
        }
    }
    out.flush().context("cannot write output")?;
    progress.finish_and_clear();
    if !args.quiet {
        summary.print(&args.input, started.elapsed());
    }
    Ok(())
}

/// A byte-based progress bar on stderr for a file input; hidden for stdin, `--quiet`, or when
/// stderr is not a terminal (logs and CI stay clean).
fn progress_bar(input: &Path, quiet: bool) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    let len = std::fs::metadata(input).map(|m| m.len()).unwrap_or(0);
    if quiet || len == 0 || !io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "scoring {bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style);
    }
    bar
}

fn score_chunk(scorer: &Scorer, chunk: &[Result<String, String>]) -> Vec<ScoreResult> {
    use rayon::prelude::*;
    chunk
        .par_iter()
        .map(|l| match l {
            Ok(line) => scorer.score_json_line(line),
            Err(e) => ScoreResult::failed(e.clone()),
        })
        .collect()
}

/// Counts for the closing summary on stderr.
#[derive(Default)]
struct Summary {
    lines: usize,
    scored: usize,
    skipped: usize,
    errors: usize,
    first_errors: Vec<(usize, String)>,
    /// task -> (count, reward sum, accuracy sum, format sum, format count)
    per_task: BTreeMap<String, (usize, f64, f64, f64, usize)>,
}

impl Summary {
    fn add(&mut self, line: usize, r: &ScoreResult) {
        self.lines += 1;
        match (r.accuracy, &r.error) {
            (Some(acc), _) => {
                self.scored += 1;
                let t = self
                    .per_task
                    .entry(r.task.as_deref().unwrap_or_default().to_string())
                    .or_default();
                t.0 += 1;
                t.1 += r.reward.unwrap_or(0.0);
                t.2 += acc;
                if let Some(f) = r.format {
                    t.3 += f;
                    t.4 += 1;
                }
            }
            // A parsed sample whose gold could not be used still has its format scored.
            (None, Some(e)) if r.format.is_some() => {
                self.skipped += 1;
                if self.first_errors.len() < 5 {
                    self.first_errors.push((line, format!("skipped: {e}")));
                }
            }
            (None, e) => {
                self.errors += 1;
                if self.first_errors.len() < 5 {
                    self.first_errors
                        .push((line, e.clone().unwrap_or_else(|| "unknown error".into())));
                }
            }
        }
    }

    fn print(&self, input: &Path, elapsed: Duration) {
        let mut e = io::stderr().lock();
        let secs = elapsed.as_secs_f64().max(1e-9);
        let _ = writeln!(
            e,
            "{}: {} lines, {} scored, {} skipped (unusable gold), {} errors, in {:.2}s ({:.0} lines/s)",
            input.display(),
            self.lines,
            self.scored,
            self.skipped,
            self.errors,
            secs,
            self.lines as f64 / secs
        );
        if !self.per_task.is_empty() {
            let _ = writeln!(
                e,
                "  {:<12} {:>8} {:>8} {:>9} {:>7}",
                "task", "scored", "reward", "accuracy", "format"
            );
            for (task, (n, r, a, f, fc)) in &self.per_task {
                let n_f = *n as f64;
                let fmt = if *fc > 0 {
                    format!("{:.3}", f / *fc as f64)
                } else {
                    "-".into()
                };
                let _ = writeln!(
                    e,
                    "  {:<12} {:>8} {:>8.3} {:>9.3} {:>7}",
                    task,
                    n,
                    r / n_f,
                    a / n_f,
                    fmt
                );
            }
        }
        for (line, msg) in &self.first_errors {
            let _ = writeln!(e, "  line {line}: {msg}");
        }
        let shown = self.first_errors.len();
        if self.skipped + self.errors > shown {
            let _ = writeln!(
                e,
                "  ... and {} more (see the \"error\" field of each output line)",
                self.skipped + self.errors - shown
            );
        }
    }
}

fn bench(args: BenchArgs) -> Result<()> {
    let scorer = args.reward.scorer()?;
    let mut text = String::new();
    open_input(&args.input)?
        .read_to_string(&mut text)
        .with_context(|| format!("cannot read input {}", args.input.display()))?;
    let mut samples = Vec::new();
    let mut bad = 0usize;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str::<ScoringSample>(line) {
            Ok(s) => samples.push(s),
            Err(_) => bad += 1,
        }
    }
    if samples.is_empty() {
        bail!(
            "{}: no valid scoring lines to benchmark",
            args.input.display()
        );
    }
    // One untimed pass warms caches (BMAS rows, page faults of the embedding table).
    let first = scorer.score_batch(&samples);
    let started = Instant::now();
    let mut repeats = 0usize;
    while repeats == 0 || started.elapsed().as_secs_f64() < args.min_seconds {
        let r = scorer.score_batch(&samples);
        std::hint::black_box(&r);
        repeats += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    let scored: Vec<f64> = first.iter().filter_map(|r| r.reward).collect();
    let report = serde_json::json!({
        "input": args.input.display().to_string(),
        "samples": samples.len(),
        "unparsed_lines": bad,
        "repeats": repeats,
        "seconds": secs,
        "samples_per_s": (samples.len() * repeats) as f64 / secs,
        "threads": rayon::current_num_threads(),
        "scored": scored.len(),
        "mean_reward": if scored.is_empty() { None } else { Some(scored.iter().sum::<f64>() / scored.len() as f64) },
    });
    println!("{report}");
    Ok(())
}
