//! `mixed-r1 demo`: the whole system on an embedded default, on a laptop CPU in minutes.
//!
//! 1. `data synth` a small mixed set (shapes, charts, math) and hold out a few samples per task;
//! 2. build a tiny Qwen2.5-VL-shaped model (or `--tiny tiny-internvl` / `tiny-qwen2`) from
//!    scratch around the real Qwen tokenizer;
//! 3. SFT it briefly on the answer format; 4. evaluate it on the held-out set;
//! 5. GRPO with the mixed reward; 6. evaluate again; 7. print the before / after table.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use mixed_r1_data::synth::{generate, SynthConfig};
use mixed_r1_data::Sample;
use mixed_r1_eval::model_responder::ModelResponder;
use mixed_r1_eval::prompt::PromptTemplate;
use mixed_r1_eval::run::RunOptions;
use mixed_r1_eval::{EvalConfig, GenerationSettings};
use mixed_r1_grpo::config::TrainConfig;
use mixed_r1_model::model::{LoadOptions, Model};
use mixed_r1_reward::RewardConfig;
use mixed_r1_train::prompts::PromptMaker;
use mixed_r1_train::{sft, tiny, Trainer};

use crate::train_cmd::{bar, default_tokenizer, load_samples, set_key};

#[derive(Args)]
pub struct DemoArgs {
    /// Run a recipe instead of the embedded demo: a real policy, its training and held-out
    /// sets, GRPO / LoRA / reward settings in one TOML file (e.g. recipes/smollm2-text.toml).
    /// Prints the held-out before / after table, greedy and sampled.
    #[arg(long)]
    recipe: Option<PathBuf>,
    /// With --recipe: override a recipe key (`--set total_steps=10 --set lora.rank=8`).
    #[arg(long = "set", value_name = "KEY=VALUE", requires = "recipe")]
    set: Vec<String>,
    /// Output folder: data, checkpoints, evals, plots.
    #[arg(long, default_value = "runs/demo")]
    out: PathBuf,
    /// The Qwen tokenizer (scripts/fetch-assets.sh qwen-tokenizer).
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// The tiny policy built from scratch: tiny-qwen2.5-vl, tiny-internvl or tiny-qwen2.
    #[arg(long, default_value = "tiny-qwen2.5-vl", value_parser = clap::builder::PossibleValuesParser::new(tiny::NAMES))]
    tiny: String,
    /// all-MiniLM-L6-v2 (scripts/fetch-assets.sh minilm) for the open-ended BMAS reward; without
    /// it open-ended answers are not scored.
    #[arg(long, default_value = ".cache/assets/minilm")]
    embeddings: PathBuf,
    /// matplotlib's Stocks.csv for real chart numbers (used when present).
    #[arg(long, default_value = ".cache/assets/mpl-sample-data/Stocks.csv")]
    stocks: PathBuf,
    /// Samples synthesised.
    #[arg(long, default_value_t = 700)]
    samples: usize,
    /// Held-out samples per task.
    #[arg(long, default_value_t = 24)]
    heldout_per_task: usize,
    #[arg(long, default_value_t = 120)]
    sft_steps: usize,
    #[arg(long, default_value_t = 48)]
    grpo_steps: usize,
    /// Responses a prompt in the sampled held-out evaluations.
    #[arg(long, default_value_t = 4)]
    eval_samples: usize,
    /// Override a key of the GRPO config (`mixed-r1 train`'s keys, e.g. `--grpo-set lr=1e-3
    /// --grpo-set temperature=0.8`); repeatable.
    #[arg(long = "grpo-set", value_name = "KEY=VALUE")]
    grpo_set: Vec<String>,
    #[arg(long, default_value_t = 7)]
    seed: u64,
    #[arg(long, short)]
    quiet: bool,
}

fn split(samples: Vec<Sample>, per_task: usize) -> (Vec<Sample>, Vec<Sample>) {
    let mut taken: BTreeMap<&'static str, usize> = BTreeMap::new();
    let (mut train, mut held) = (Vec::new(), Vec::new());
    for s in samples {
        let n = taken.entry(s.task.as_str()).or_default();
        if *n < per_task {
            *n += 1;
            held.push(s);
        } else {
            train.push(s);
        }
    }
    (train, held)
}

fn write_jsonl(samples: &[Sample], path: &Path) -> Result<()> {
    mixed_r1_data::parquet_io::write_jsonl(samples, path)
        .with_context(|| format!("writing {}", path.display()))
}

/// How the demo decodes its held-out evaluations.
#[derive(Clone, Copy)]
enum Decoding {
    /// One greedy response a prompt: the policy's most likely answer.
    Greedy,
    /// `n` responses a prompt at the GRPO temperature: the expected reward of the policy as it
    /// samples, the quantity GRPO maximises.
    Sampled { n: usize, temperature: f64 },
}

fn evaluate(
    model: Model,
    reward: &RewardConfig,
    data: &Path,
    out: &Path,
    decoding: Decoding,
    quiet: bool,
) -> Result<(Model, mixed_r1_eval::report::Results)> {
    let (n, temperature) = match decoding {
        Decoding::Greedy => (1, None),
        Decoding::Sampled { n, temperature } => (n, Some(temperature)),
    };
    let cfg = EvalConfig {
        reward: reward.clone(),
        batch_size: 16,
        n,
        generation: GenerationSettings {
            max_new_tokens: 48,
            temperature,
            ..Default::default()
        },
        ..Default::default()
    };
    let opts = RunOptions {
        data: vec![data.to_path_buf()],
        out: out.to_path_buf(),
        limit: None,
        overwrite: true,
        progress: !quiet,
        charts: true,
    };
    let mut r = ModelResponder::new(model, cfg.generation.clone(), "demo-policy");
    let results = mixed_r1_eval::run::run(&cfg, &opts, &mut r)?;
    Ok((r.into_model(), results))
}

/// `--recipe`: evals before, GRPO, evals after, the table.
fn run_recipe(a: &DemoArgs, path: &Path) -> Result<()> {
    let overrides = a
        .set
        .iter()
        .map(|kv| {
            let (k, raw) = kv
                .split_once('=')
                .with_context(|| format!("--set {kv}: expected KEY=VALUE"))?;
            let v = toml::from_str::<toml::Table>(&format!("v = {raw}"))
                .ok()
                .and_then(|t| t.get("v").cloned())
                .unwrap_or_else(|| toml::Value::String(raw.to_string()));
            Ok((k.trim().to_string(), v))
        })
        .collect::<Result<Vec<_>>>()?;
    let recipe = mixed_r1_train::recipe::Recipe::from_file(path, &overrides)?;
    let cfg = &recipe.train;
    let policy = crate::train_cmd::load_policy(cfg)?;
    let (total, _) = policy.params().count();
    println!(
        "recipe {}: {:.1}M-parameter policy from {}, {} GRPO steps of {} prompts x {}{}",
        path.display(),
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
    let report = mixed_r1_train::recipe::run_recipe(&recipe, policy, &pb, !a.quiet)?;
    println!();
    print!(
        "{}",
        mixed_r1_train::recipe::summary_markdown(&recipe, &report)
    );
    println!(
        "\nsummary: {}\nplots:   {}",
        report.out.join("summary.md").display(),
        report.out.join("plots").display()
    );
    Ok(())
}

pub fn run(mut a: DemoArgs) -> Result<()> {
    if let Some(path) = a.recipe.clone() {
        return run_recipe(&a, &path);
    }
    let t0 = Instant::now();
    // Absolute, so the image paths written into train.jsonl / heldout.jsonl stay valid from
    // wherever those files are read.
    a.out =
        std::path::absolute(&a.out).with_context(|| format!("bad --out {}", a.out.display()))?;
    let tokenizer = a.tokenizer.clone().unwrap_or_else(default_tokenizer);
    anyhow::ensure!(
        tokenizer.is_file(),
        "{} missing: run `bash scripts/fetch-assets.sh qwen-tokenizer` (scripts/demo.sh does)",
        tokenizer.display()
    );
    std::fs::create_dir_all(&a.out)?;
    let mut reward = RewardConfig::default();
    if a.embeddings.is_dir() {
        reward.bmas.model = Some(a.embeddings.clone());
    } else {
        println!(
            "note: {} missing, open-ended answers are not scored (scripts/fetch-assets.sh minilm)",
            a.embeddings.display()
        );
    }

    // The GRPO config first, so a bad --grpo-set fails before any work.
    let mut cfg = TrainConfig {
        seed: a.seed,
        output_dir: a.out.join("grpo"),
        total_steps: a.grpo_steps,
        save_every: 0,
        keep_last: 1,
        group_size: 8,
        batch_prompts: 8,
        max_completion_len: 40,
        reward: reward.clone(),
        temperature: 1.0,
        beta: 0.0,
        lr: 2e-4,
        warmup_steps: 2,
        weight_decay: 0.0,
        freeze_vision: false,
        ..Default::default()
    };
    cfg.data.train = Some(a.out.join("train.jsonl"));
    if !a.grpo_set.is_empty() {
        let mut doc = toml::Table::try_from(&cfg).context("demo GRPO config")?;
        for kv in &a.grpo_set {
            set_key(&mut doc, kv)?;
        }
        cfg = toml::Value::Table(doc)
            .try_into()
            .map_err(|e| anyhow::anyhow!("--grpo-set: {e}"))?;
        cfg.validate()?;
        // SFT and the evals score with the reward GRPO trains on (`--grpo-set reward.…`).
        reward = cfg.reward.clone();
    }

    // 1. Data.
    let data_dir = a.out.join("data");
    let synth = SynthConfig {
        count: a.samples,
        seed: a.seed,
        stocks: a.stocks.is_file().then(|| a.stocks.clone()),
        scenes: Default::default(),
    };
    let pb = bar(a.samples as u64, a.quiet, "synth");
    generate(&synth, &data_dir, &pb).context("synthesising the demo data")?;
    let all = load_samples(&data_dir.join("samples.jsonl"), a.quiet)?;
    let (train, held) = split(all, a.heldout_per_task);
    let train_path = cfg.data.train.clone().context("the demo sets data.train")?;
    let held_path = a.out.join("heldout.jsonl");
    write_jsonl(&train, &train_path)?;
    write_jsonl(&held, &held_path)?;
    println!(
        "data: {} train / {} held-out samples in {}",
        train.len(),
        held.len(),
        a.out.display()
    );

    // 2-3. Tiny model, SFT.
    let opts = LoadOptions::default();
    let model = tiny::build(&a.tiny, &tokenizer, a.seed, &opts)?;
    // Boxes are read in the frame the policy writes (InternVL: rel1000) in SFT prompts, evals and
    // GRPO alike.
    mixed_r1_eval::model_responder::follow_model_frame(&mut reward, &model);
    let (total, _) = model.params().count();
    println!("model: {}, {:.1}M parameters", a.tiny, total as f64 / 1e6);
    // The policy is asked for the format the reward scores.
    let mut maker = PromptMaker::new(
        PromptTemplate::for_format(reward.format.mode),
        reward.clone(),
    );
    let sc = sft::SftConfig {
        steps: a.sft_steps,
        batch: 16,
        lr: 3e-3,
        seed: a.seed,
        ..Default::default()
    };
    let pb = bar(a.sft_steps as u64, a.quiet, "sft  ");
    let losses = sft::train(&model, &train, &mut maker, &sc, &pb)?;
    pb.finish_and_clear();
    println!(
        "sft: loss {:.3} -> {:.3} in {} steps",
        losses.first().copied().unwrap_or(0.0),
        losses.last().copied().unwrap_or(0.0),
        losses.len()
    );
    let sft_dir = a.out.join("sft-model");
    model.save(&sft_dir)?;

    // 4. Eval before GRPO.
    let sampled = Decoding::Sampled {
        n: a.eval_samples,
        temperature: cfg.temperature,
    };
    let before_dir = a.out.join("eval-sft");
    let (model, before) = evaluate(
        model,
        &reward,
        &held_path,
        &before_dir,
        Decoding::Greedy,
        a.quiet,
    )?;
    let before_s_dir = a.out.join("eval-sft-sampled");
    let (model, before_s) = evaluate(model, &reward, &held_path, &before_s_dir, sampled, a.quiet)?;

    // 5. GRPO.
    let _ = std::fs::remove_dir_all(&cfg.output_dir);
    let mut trainer = Trainer::new(
        cfg.clone(),
        model,
        train,
        PromptTemplate::for_format(cfg.reward.format.mode),
    )?;
    let pb = bar(a.grpo_steps as u64, a.quiet, "grpo ");
    let ckpt = trainer.train(|r| {
        let m = &r.metrics;
        pb.set_message(format!(
            "reward {:.3} acc {:.3} fmt {:.3}",
            m.get("reward/mean").copied().unwrap_or(0.0),
            m.get("accuracy/mean").copied().unwrap_or(0.0),
            m.get("format/mean").copied().unwrap_or(0.0)
        ));
        pb.inc(1);
    })?;
    pb.finish_and_clear();

    // 6. Eval after.
    let after_dir = a.out.join("eval-grpo");
    let policy = std::mem::replace(&mut trainer.policy, Model::load(&sft_dir, &opts)?);
    let (policy, after) = evaluate(
        policy,
        &reward,
        &held_path,
        &after_dir,
        Decoding::Greedy,
        a.quiet,
    )?;
    let after_s_dir = a.out.join("eval-grpo-sampled");
    let (_, after_s) = evaluate(policy, &reward, &held_path, &after_s_dir, sampled, a.quiet)?;

    // 7. Report.
    let cmp = mixed_r1_eval::compare(&[before_dir.clone(), after_dir.clone()])?;
    mixed_r1_eval::write_comparison(&cmp, &a.out.join("compare"))?;
    let cmp = mixed_r1_eval::compare(&[before_s_dir.clone(), after_s_dir.clone()])?;
    mixed_r1_eval::write_comparison(&cmp, &a.out.join("compare-sampled"))?;
    let mean = |r: &mixed_r1_eval::report::Results, task: Option<&str>| -> f64 {
        match task {
            Some(t) => r.tasks.get(t).and_then(|m| m.mean_reward),
            None => r.overall.mean_reward,
        }
        .unwrap_or(0.0)
    };
    println!(
        "\nheld-out mean reward per task, SFT start -> after GRPO; sampled = {} responses a prompt \
         at temperature {} (the policy GRPO trains), greedy = its single most likely answer:\n",
        a.eval_samples, cfg.temperature
    );
    println!("| task | prompts | sampled: SFT | GRPO | delta | greedy: SFT | GRPO | delta |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut rows: Vec<(String, Option<&str>, usize)> = before
        .tasks
        .iter()
        .map(|(t, m)| (t.clone(), Some(t.as_str()), m.samples))
        .collect();
    rows.push(("all".into(), None, before.overall.samples));
    let (mut up, mut tasks) = (0, 0);
    for (name, task, n) in &rows {
        let (sb, sa) = (mean(&before_s, *task), mean(&after_s, *task));
        let (gb, ga) = (mean(&before, *task), mean(&after, *task));
        if task.is_some() {
            tasks += 1;
            up += usize::from(sa > sb);
        }
        println!(
            "| {name} | {n} | {sb:.3} | {sa:.3} | {:+.3} | {gb:.3} | {ga:.3} | {:+.3} |",
            sa - sb,
            ga - gb
        );
    }
    println!("\nGRPO raised the sampled reward on {up} of {tasks} tasks.");
    println!("\ncheckpoint:  {}", ckpt.display());
    println!("plots:       {}", cfg.output_dir.join("plots").display());
    println!(
        "evals:       {} (greedy), {} (sampled), and the same for eval-grpo",
        before_dir.display(),
        before_s_dir.display()
    );
    println!(
        "comparison:  {} and {}",
        a.out.join("compare-sampled/compare.md").display(),
        a.out.join("compare/compare.md").display()
    );
    println!("total time:  {:.0} s", t0.elapsed().as_secs_f64());
    Ok(())
}
