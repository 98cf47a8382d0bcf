//! The demo run (`mixed-r1 demo`, `recipes/demo.toml`): the whole system on a laptop CPU.
//!
//! 1. synthesise a small mixed set (`[data.synth]`) and hold out `heldout_per_task` a task;
//! 2. build the tiny policy of `[model] tiny` from scratch around the real tokenizer;
//! 3. SFT it on the answer format (`[sft]`); 4. evaluate it on the held-out set, greedy and
//!    sampled (`[eval]`); 5. GRPO with the mixed reward (`[grpo]`, `[reward]`); 6. evaluate
//!    again; 7. the before / after table ([`table`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use indicatif::ProgressBar;
use mixed_r1_data::synth::{generate, SynthConfig};
use mixed_r1_data::Sample;
use mixed_r1_eval::model_responder::ModelResponder;
use mixed_r1_eval::report::Results;
use mixed_r1_eval::run::RunOptions;
use mixed_r1_model::model::{LoadOptions, Model};
use mixed_r1_reward::RewardConfig;

use mixed_r1_train::prompts::PromptMaker;
use mixed_r1_train::run_file::RunFile;
use mixed_r1_train::{sft, tiny, Trainer};

use crate::eval_config::eval_config;
use crate::samples::load_samples;

/// How a library run reports progress: progress bars and lines of text.
pub struct Progress<'a> {
    /// A progress bar of `len` steps labelled `what` (hidden when quiet).
    pub bar: &'a dyn Fn(u64, &str) -> ProgressBar,
    /// A line for the user.
    pub say: &'a dyn Fn(&str),
    /// Eval progress bars.
    pub quiet: bool,
}

/// What a demo run measured and wrote.
#[derive(Debug, Clone)]
pub struct DemoReport {
    pub greedy_before: Results,
    pub sampled_before: Results,
    pub greedy_after: Results,
    pub sampled_after: Results,
    /// Responses a prompt and temperature of the sampled evals.
    pub eval_samples: usize,
    pub temperature: f64,
    pub checkpoint: PathBuf,
    pub out: PathBuf,
    pub grpo_dir: PathBuf,
    pub total_s: f64,
}

/// The first `per_task` samples of each task are held out.
pub fn split(samples: Vec<Sample>, per_task: usize) -> (Vec<Sample>, Vec<Sample>) {
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

fn evaluate(
    model: Model,
    rf: &RunFile,
    reward: &RewardConfig,
    data: &Path,
    out: &Path,
    sampled: bool,
    quiet: bool,
) -> Result<(Model, Results)> {
    let mut cfg = eval_config(rf, sampled);
    cfg.reward = reward.clone();
    let opts = RunOptions {
        data: vec![data.to_path_buf()],
        out: out.to_path_buf(),
        limit: None,
        overwrite: true,
        progress: !quiet,
        charts: rf.eval.charts,
    };
    let mut r = ModelResponder::new(model, cfg.generation.clone(), "demo-policy");
    let results = mixed_r1_eval::run::run(&cfg, &opts, &mut r)?;
    Ok((r.into_model(), results))
}

/// Runs the demo of a run file with `[data.synth]` and `[model] tiny`: synth, tiny model, SFT,
/// evals, GRPO, evals. Writes everything under `run.out` (GRPO in `<out>/grpo`).
pub fn run_demo(rf: &RunFile, p: &Progress) -> Result<DemoReport> {
    let t0 = Instant::now();
    let name = rf.name();
    let out = rf
        .run
        .out
        .clone()
        .with_context(|| format!("{name}: [run] out: missing (the demo's folder)"))?;
    // Absolute, so the image paths written into train.jsonl / heldout.jsonl stay valid from
    // wherever those files are read.
    let out = std::path::absolute(&out).with_context(|| format!("bad out {}", out.display()))?;
    let synth = rf
        .data
        .synth
        .clone()
        .with_context(|| format!("{name}: the demo synthesises its data: set [data.synth]"))?;
    let tiny_name = rf
        .train
        .model
        .tiny
        .clone()
        .with_context(|| format!("{name}: the demo builds a tiny model: set model.tiny"))?;
    let tokenizer = rf
        .train
        .model
        .tokenizer
        .clone()
        .unwrap_or_else(|| PathBuf::from(".cache/assets/qwen-tokenizer/tokenizer.json"));
    anyhow::ensure!(
        tokenizer.is_file(),
        "{} missing: run `bash scripts/fetch-assets.sh qwen-tokenizer` (scripts/demo.sh does)",
        tokenizer.display()
    );
    std::fs::create_dir_all(&out)?;
    let mut cfg = rf.train.clone();
    let mut reward = cfg.reward.clone();
    if let Some(m) = reward.bmas.model.clone() {
        if !m.is_dir() {
            (p.say)(&format!(
                "note: {} missing, open-ended answers are not scored (scripts/fetch-assets.sh minilm)",
                m.display()
            ));
            reward.bmas.model = None;
        }
    }
    cfg.reward = reward.clone();
    cfg.output_dir = out.join("grpo");
    cfg.data.train = Some(out.join("train.jsonl"));
    cfg.validate()?;

    // 1. Data.
    let data_dir = out.join("data");
    let synth = SynthConfig {
        stocks: synth.stocks.filter(|s| s.is_file()),
        ..synth
    };
    let pb = (p.bar)(synth.count as u64, "synth");
    generate(&synth, &data_dir, &pb).context("synthesising the demo data")?;
    let all = load_samples(&data_dir.join("samples.jsonl"), p.quiet)?;
    let (train, held) = split(all, rf.data.heldout_per_task);
    let train_path = cfg.data.train.clone().context("the demo sets data.train")?;
    let held_path = out.join("heldout.jsonl");
    write_jsonl(&train, &train_path)?;
    write_jsonl(&held, &held_path)?;
    (p.say)(&format!(
        "data: {} train / {} held-out samples in {}",
        train.len(),
        held.len(),
        out.display()
    ));

    // 2-3. Tiny model, SFT.
    let opts = LoadOptions::default()
        .with_dtype_name(&cfg.model.dtype)?
        .with_device_name(&cfg.model.device)?;
    let model = tiny::build(&tiny_name, &tokenizer, cfg.seed, &opts)?;
    // Boxes are read in the frame the policy writes (InternVL: rel1000) in SFT prompts, evals and
    // GRPO alike.
    mixed_r1_eval::model_responder::follow_model_frame(&mut reward, &model);
    let (total, _) = model.params().count();
    (p.say)(&format!(
        "model: {}, {:.1}M parameters",
        tiny_name,
        total as f64 / 1e6
    ));
    // The policy is asked for the format the reward scores ([prompt] follows reward.format.mode).
    let mut maker = PromptMaker::new(rf.prompt.clone(), reward.clone());
    if rf.sft.steps > 0 {
        let pb = (p.bar)(rf.sft.steps as u64, "sft  ");
        let losses = sft::train(&model, &train, &mut maker, &rf.sft, &pb)?;
        pb.finish_and_clear();
        (p.say)(&format!(
            "sft: loss {:.3} -> {:.3} in {} steps",
            losses.first().copied().unwrap_or(0.0),
            losses.last().copied().unwrap_or(0.0),
            losses.len()
        ));
    }
    model.save(&out.join("sft-model"))?;

    // 4. Eval before GRPO.
    let before_dir = out.join("eval-sft");
    let (model, greedy_before) =
        evaluate(model, rf, &reward, &held_path, &before_dir, false, p.quiet)?;
    let before_s_dir = out.join("eval-sft-sampled");
    let (model, sampled_before) =
        evaluate(model, rf, &reward, &held_path, &before_s_dir, true, p.quiet)?;

    // 5. GRPO.
    let _ = std::fs::remove_dir_all(&cfg.output_dir);
    let mut trainer = Trainer::new(cfg.clone(), model, train, rf.prompt.clone())?;
    rf.save(&cfg.output_dir)?;
    let pb = (p.bar)(cfg.total_steps as u64, "grpo ");
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
    let after_dir = out.join("eval-grpo");
    let policy = trainer.policy;
    let (policy, greedy_after) =
        evaluate(policy, rf, &reward, &held_path, &after_dir, false, p.quiet)?;
    let after_s_dir = out.join("eval-grpo-sampled");
    let (_, sampled_after) =
        evaluate(policy, rf, &reward, &held_path, &after_s_dir, true, p.quiet)?;

    // 7. Comparisons.
    let cmp = mixed_r1_eval::compare(&[before_dir, after_dir])?;
    mixed_r1_eval::write_comparison(&cmp, &out.join("compare"))?;
    let cmp = mixed_r1_eval::compare(&[before_s_dir, after_s_dir])?;
    mixed_r1_eval::write_comparison(&cmp, &out.join("compare-sampled"))?;
    Ok(DemoReport {
        greedy_before,
        sampled_before,
        greedy_after,
        sampled_after,
        eval_samples: rf.eval.samples,
        temperature: rf.eval_temperature(),
        checkpoint: ckpt,
        grpo_dir: cfg.output_dir.clone(),
        out,
        total_s: t0.elapsed().as_secs_f64(),
    })
}

/// The before / after table (held-out mean reward per task, sampled and greedy) and the line
/// under it, as the demo prints them.
pub fn table(r: &DemoReport) -> String {
    let mean = |r: &Results, task: Option<&str>| -> f64 {
        match task {
            Some(t) => r.tasks.get(t).and_then(|m| m.mean_reward),
            None => r.overall.mean_reward,
        }
        .unwrap_or(0.0)
    };
    let mut s = format!(
        "\nheld-out mean reward per task, SFT start -> after GRPO; sampled = {} responses a prompt \
         at temperature {} (the policy GRPO trains), greedy = its single most likely answer:\n\n",
        r.eval_samples, r.temperature
    );
    s.push_str("| task | prompts | sampled: SFT | GRPO | delta | greedy: SFT | GRPO | delta |\n");
    s.push_str("|---|---:|---:|---:|---:|---:|---:|---:|\n");
    let mut rows: Vec<(String, Option<&str>, usize)> = r
        .greedy_before
        .tasks
        .iter()
        .map(|(t, m)| (t.clone(), Some(t.as_str()), m.samples))
        .collect();
    rows.push(("all".into(), None, r.greedy_before.overall.samples));
    let (mut up, mut tasks) = (0, 0);
    for (name, task, n) in &rows {
        let (sb, sa) = (
            mean(&r.sampled_before, *task),
            mean(&r.sampled_after, *task),
        );
        let (gb, ga) = (mean(&r.greedy_before, *task), mean(&r.greedy_after, *task));
        if task.is_some() {
            tasks += 1;
            up += usize::from(sa > sb);
        }
        s.push_str(&format!(
            "| {name} | {n} | {sb:.3} | {sa:.3} | {:+.3} | {gb:.3} | {ga:.3} | {:+.3} |\n",
            sa - sb,
            ga - gb
        ));
    }
    s.push_str(&format!(
        "\nGRPO raised the sampled reward on {up} of {tasks} tasks.\n"
    ));
    s
}
