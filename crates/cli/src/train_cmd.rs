//! `mixed-r1 train` (GRPO with the mixed reward) and `mixed-r1 sft` (supervised warm start).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use mixed_r1_data::Sample;
use mixed_r1_eval::prompt::PromptTemplate;
use mixed_r1_grpo::config::TrainConfig;
use mixed_r1_model::model::{LoadOptions, Model};
use mixed_r1_train::prompts::PromptMaker;
use mixed_r1_train::{sft, tiny, Trainer};

#[derive(Args)]
pub struct TrainArgs {
    /// The run's TOML config (every key of it; see README "Training"). Without it, defaults.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Override any config key: `--set group_size=4 --set reward.format_weight=0.5` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Policy: a Hugging Face folder or .gguf (`model.path`).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Policy: a named tiny config built from scratch (`model.tiny`): tiny-qwen2.5-vl,
    /// tiny-internvl, tiny-qwen2.
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
    /// Continue from the latest checkpoint in the output folder. A config that differs from the
    /// run's saved train.toml in keys that change the run (anything but total_steps, save_every,
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

/// Parses `KEY=VALUE` as a TOML value (falling back to a string) and sets it in `doc`.
pub(crate) fn set_key(doc: &mut toml::Table, kv: &str) -> Result<()> {
    let (key, raw) = kv
        .split_once('=')
        .with_context(|| format!("--set {kv}: expected KEY=VALUE"))?;
    let value: toml::Value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|t| t.get("v").cloned())
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    let parts: Vec<&str> = key.trim().split('.').collect();
    let mut table = doc;
    for p in &parts[..parts.len() - 1] {
        table = table
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(Default::default()))
            .as_table_mut()
            .with_context(|| format!("--set {kv}: `{p}` is not a section"))?;
    }
    table.insert(parts[parts.len() - 1].to_string(), value);
    Ok(())
}

/// The config file (paths relative to it), `--set` overrides and the named flags, validated.
pub fn load_config(a: &TrainArgs) -> Result<TrainConfig> {
    let cfg = build_config(a)?;
    cfg.validate_for_training()?;
    Ok(cfg)
}

/// A config file (relative paths resolved against its folder) with `--set` overrides applied,
/// not yet validated (`mixed-r1 plan` needs no training set).
pub(crate) fn config_with_overrides(config: Option<&Path>, set: &[String]) -> Result<TrainConfig> {
    let mut doc: toml::Table = match config {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read {}", p.display()))?;
            toml::from_str(&text).with_context(|| format!("{}: invalid TOML", p.display()))?
        }
        None => toml::Table::new(),
    };
    for kv in set {
        set_key(&mut doc, kv)?;
    }
    let mut cfg: TrainConfig = toml::Value::Table(doc).try_into().map_err(|e| {
        anyhow::anyhow!(
            "{}: {e}",
            config
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "config".into())
        )
    })?;
    if let Some(dir) = config.and_then(Path::parent) {
        cfg.resolve_paths(dir);
    }
    Ok(cfg)
}

/// [`config_with_overrides`] plus the named flags (`--model`, `--data`, ...), not validated.
/// The run config of these flags alone (no resume), for `train --dry-run`'s memory plan.
pub fn build_config(a: &TrainArgs) -> Result<TrainConfig> {
    let mut cfg = config_with_overrides(a.config.as_deref(), &a.set)?;
    if let Some(m) = &a.model {
        cfg.model.path = Some(m.clone());
        cfg.model.tiny = None;
    }
    if let Some(t) = &a.tiny {
        cfg.model.tiny = Some(t.clone());
        cfg.model.path = None;
    }
    if let Some(t) = &a.tokenizer {
        cfg.model.tokenizer = Some(t.clone());
    }
    if let Some(d) = &a.device {
        cfg.model.device = d.clone();
    }
    if let Some(d) = &a.data {
        cfg.data.train = Some(d.clone());
    }
    if let Some(o) = &a.out {
        cfg.output_dir = o.clone();
    }
    if let Some(s) = a.steps {
        cfg.total_steps = s;
    }
    Ok(cfg)
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
    let data = mixed_r1_eval::load_data(&[path.to_path_buf()])?;
    if !data.skipped.is_empty() && !quiet {
        eprintln!(
            "warning: {} rows of {} skipped:",
            data.skipped.len(),
            path.display()
        );
        for s in data.skipped.iter().take(5) {
            eprintln!("  {}:{}: {}", s.file, s.line, s.reason);
        }
    }
    Ok(data.samples.into_iter().map(|s| s.sample).collect())
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
    let mut written = mixed_r1_train::recipe::plot_curves(&records, &dir)?;
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
    let cfg = load_config(&a)?;
    let data = cfg
        .data
        .train
        .clone()
        .context("no training data: set data.train (--data)")?;
    let samples = load_samples(&data, a.quiet)?;
    // The policy is asked for the format the reward scores.
    let template = PromptTemplate::for_format(cfg.reward.format.mode);
    let mut trainer = if a.resume {
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
    /// Start from a Hugging Face folder or .gguf.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Or from a named tiny config: tiny-qwen2.5-vl, tiny-internvl, tiny-qwen2.
    #[arg(long)]
    tiny: Option<String>,
    /// tokenizer.json for a tiny model.
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// Where to train: cpu, cuda, cuda:<n> (cuda needs a --features cuda build).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Training data (JSONL / Parquet from `mixed-r1 data`).
    #[arg(long)]
    data: PathBuf,
    /// Where to save the trained model (a Hugging Face folder).
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 100)]
    steps: usize,
    #[arg(long, default_value_t = 16)]
    batch: usize,
    #[arg(long, default_value_t = 3e-3)]
    lr: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long, short)]
    quiet: bool,
}

pub fn run_sft(a: SftArgs) -> Result<()> {
    let mut cfg = TrainConfig::default();
    cfg.model.path = a.model.clone();
    cfg.model.tiny = a.tiny.clone();
    cfg.model.tokenizer = a.tokenizer.clone();
    cfg.model.device = a.device.clone();
    cfg.seed = a.seed;
    let model = load_policy(&cfg)?;
    let samples = load_samples(&a.data, a.quiet)?;
    let mut maker = PromptMaker::new(PromptTemplate::default(), Default::default());
    let sc = sft::SftConfig {
        steps: a.steps,
        batch: a.batch,
        lr: a.lr,
        seed: a.seed,
        ..Default::default()
    };
    let pb = bar(a.steps as u64, a.quiet, "sft ");
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
