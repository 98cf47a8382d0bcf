//! A recipe: one TOML file that names a policy, its training set, a held-out set, the GRPO and
//! LoRA settings and the reward, and runs the experiment a user wants to see: held-out eval
//! (greedy and sampled) before, GRPO, the same evals after, a per-task before / after table and
//! the training curves as PNG.
//!
//! The file is a [`RunFile`] with `[data] train` and `heldout` (a fixed eval set, relative to
//! the file) and `[eval]` (`samples` responses a prompt in the sampled evals at the GRPO
//! temperature, `max_new_tokens`, `batch_size`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use indicatif::ProgressBar;
use mixed_r1_eval::model_responder::ModelResponder;
use mixed_r1_eval::report::Results;
use mixed_r1_eval::run::RunOptions;
use mixed_r1_eval::EvalConfig;
use mixed_r1_grpo::plot::plot_training_curves;
use mixed_r1_model::model::Model;
use serde::Serialize;
use serde_json::Value;

use mixed_r1_train::run_file::RunFile;
use mixed_r1_train::Trainer;

use crate::eval_config::eval_config;
use crate::samples::load_samples;

/// The four held-out evals of a recipe run.
#[derive(Debug, Clone, Serialize)]
pub struct RecipeReport {
    pub greedy_before: Results,
    pub sampled_before: Results,
    pub greedy_after: Results,
    pub sampled_after: Results,
    pub train_s: f64,
    pub eval_s: f64,
    pub total_s: f64,
    pub steps: u64,
    pub checkpoint: PathBuf,
    pub out: PathBuf,
}

/// The task's headline score: accuracy, or BMAS (open-ended), relaxed accuracy (chart),
/// Acc@0.5 (grounding).
pub fn headline(m: &mixed_r1_eval::Metrics) -> Option<f64> {
    m.accuracy.or(m.bmas).or(m.relaxed_accuracy).or(m.acc_at_05)
}

fn evaluate(
    model: Model,
    cfg: &EvalConfig,
    data: &Path,
    out: &Path,
    progress: bool,
    label: &str,
) -> Result<(Model, Results)> {
    let opts = RunOptions {
        data: vec![data.to_path_buf()],
        out: out.to_path_buf(),
        limit: None,
        overwrite: true,
        progress,
        charts: false,
    };
    let mut r = ModelResponder::new(model, cfg.generation.clone(), label);
    let results = mixed_r1_eval::run::run(cfg, &opts, &mut r)
        .with_context(|| format!("evaluating on {}", data.display()))?;
    Ok((r.into_model(), results))
}

/// Runs a recipe: evals before, GRPO, evals after; writes `summary.md` / `summary.json` and the
/// curves into the run's output folder. `bar` shows the GRPO steps.
pub fn run_recipe(
    recipe: &RunFile,
    policy: Model,
    bar: &ProgressBar,
    progress: bool,
) -> Result<RecipeReport> {
    let t0 = Instant::now();
    let cfg = &recipe.train;
    let out = cfg.output_dir.clone();
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let train_path = cfg.data.train.clone().context("data.train")?;
    recipe.check_recipe()?;
    let heldout = recipe.data.heldout.clone().context("data.heldout")?;
    let samples = load_samples(&train_path, false)?;

    let greedy = eval_config(recipe, false);
    let sampled = eval_config(recipe, true);
    let (policy, greedy_before) = evaluate(
        policy,
        &greedy,
        &heldout,
        &out.join("eval-before"),
        progress,
        "before",
    )?;
    let (policy, sampled_before) = evaluate(
        policy,
        &sampled,
        &heldout,
        &out.join("eval-before-sampled"),
        progress,
        "before",
    )?;
    let eval_before_s = t0.elapsed().as_secs_f64();

    let t1 = Instant::now();
    let mut trainer = Trainer::new(cfg.clone(), policy, samples, recipe.prompt.clone())?;
    recipe.save(&out)?;
    bar.set_length(cfg.total_steps as u64);
    let ckpt = trainer.train(|r| {
        let m = &r.metrics;
        bar.set_message(format!(
            "reward {:.3} acc {:.3} fmt {:.3} {:.0}s/step",
            m.get("reward/mean").copied().unwrap_or(0.0),
            m.get("accuracy/mean").copied().unwrap_or(0.0),
            m.get("format/mean").copied().unwrap_or(0.0),
            m.get("time/step_s").copied().unwrap_or(0.0),
        ));
        bar.inc(1);
    })?;
    bar.finish_and_clear();
    let train_s = t1.elapsed().as_secs_f64();
    plot_training_curves(trainer.records(), &out.join("plots"))?;
    let steps = trainer.step;

    let t2 = Instant::now();
    let policy = trainer.policy;
    let (policy, greedy_after) = evaluate(
        policy,
        &greedy,
        &heldout,
        &out.join("eval-after"),
        progress,
        "after",
    )?;
    let (_, sampled_after) = evaluate(
        policy,
        &sampled,
        &heldout,
        &out.join("eval-after-sampled"),
        progress,
        "after",
    )?;
    let eval_s = eval_before_s + t2.elapsed().as_secs_f64();
    for (a, b, name) in [
        ("eval-before", "eval-after", "compare"),
        (
            "eval-before-sampled",
            "eval-after-sampled",
            "compare-sampled",
        ),
    ] {
        let cmp = mixed_r1_eval::compare(&[out.join(a), out.join(b)])?;
        mixed_r1_eval::write_comparison(&cmp, &out.join(name))?;
    }
    let report = RecipeReport {
        greedy_before,
        sampled_before,
        greedy_after,
        sampled_after,
        train_s,
        eval_s,
        total_s: t0.elapsed().as_secs_f64(),
        steps,
        checkpoint: ckpt,
        out: out.clone(),
    };
    std::fs::write(out.join("summary.md"), summary_markdown(recipe, &report))?;
    std::fs::write(
        out.join("summary.json"),
        serde_json::to_string_pretty(&summary_json(&report))?,
    )?;
    Ok(report)
}

/// One row per task (and `all`): headline score greedy and sampled, before and after.
pub fn table_rows(r: &RecipeReport) -> Vec<(String, usize, [Option<f64>; 4])> {
    let mut rows = Vec::new();
    let get = |res: &Results, task: Option<&str>| -> Option<f64> {
        match task {
            Some(t) => res.tasks.get(t).and_then(headline),
            None => headline(&res.overall),
        }
    };
    let mut names: Vec<(String, Option<String>, usize)> = r
        .greedy_before
        .tasks
        .iter()
        .map(|(t, m)| (t.clone(), Some(t.clone()), m.samples))
        .collect();
    names.push(("all".into(), None, r.greedy_before.overall.samples));
    for (name, task, n) in names {
        let t = task.as_deref();
        rows.push((
            name,
            n,
            [
                get(&r.greedy_before, t),
                get(&r.greedy_after, t),
                get(&r.sampled_before, t),
                get(&r.sampled_after, t),
            ],
        ));
    }
    rows
}

fn pct(v: Option<f64>) -> String {
    v.map(|x| format!("{:.1}", 100.0 * x))
        .unwrap_or_else(|| "–".into())
}

fn delta(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) => format!("{:+.1}", 100.0 * (b - a)),
        _ => "–".into(),
    }
}

/// The before / after table in Markdown (scores in percent; open-ended is mean BMAS x 100).
pub fn summary_markdown(recipe: &RunFile, r: &RecipeReport) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "# {}\n\nheld-out score per task (accuracy %, open-ended: mean BMAS x 100); greedy = one \
         temperature-0 answer a prompt, sampled = mean over {} responses at temperature {}\n\n",
        recipe.name(),
        recipe.eval.samples,
        recipe.eval_temperature()
    ));
    s.push_str("| task | prompts | greedy before | greedy after | delta | sampled before | sampled after | delta |\n");
    s.push_str("|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for (name, n, [gb, ga, sb, sa]) in table_rows(r) {
        s.push_str(&format!(
            "| {name} | {n} | {} | {} | **{}** | {} | {} | **{}** |\n",
            pct(gb),
            pct(ga),
            delta(gb, ga),
            pct(sb),
            pct(sa),
            delta(sb, sa)
        ));
    }
    s.push_str(&format!(
        "\n{} GRPO steps in {:.0} s; evals {:.0} s; total {:.0} s. Checkpoint: {}\n",
        r.steps,
        r.train_s,
        r.eval_s,
        r.total_s,
        r.checkpoint.display()
    ));
    s
}

fn summary_json(r: &RecipeReport) -> Value {
    let mut tasks = BTreeMap::new();
    for (name, n, [gb, ga, sb, sa]) in table_rows(r) {
        tasks.insert(
            name,
            serde_json::json!({"prompts": n, "greedy_before": gb, "greedy_after": ga,
                               "sampled_before": sb, "sampled_after": sa}),
        );
    }
    serde_json::json!({
        "tasks": tasks, "steps": r.steps, "train_s": r.train_s, "eval_s": r.eval_s,
        "total_s": r.total_s, "checkpoint": r.checkpoint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mixed_r1_data::prompt::PromptTemplate;
    use std::path::PathBuf;

    fn shipped() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../recipes/smollm2-text.toml")
    }

    #[test]
    fn the_shipped_recipe_parses_with_paths_from_its_folder() {
        let r = RunFile::from_file(&shipped(), &[]).unwrap();
        r.check_recipe().unwrap();
        assert!(r.train.uses_lora());
        assert_eq!(r.train.lora.rank, 16);
        let held = r.data.heldout.as_ref().unwrap();
        assert!(
            held.ends_with("data/smollm2-text/heldout.jsonl"),
            "{held:?}"
        );
        assert!(held.is_file(), "{held:?}");
        assert!(r.train.data.train.as_ref().unwrap().is_file());
        // The prompt asks for the format the reward scores.
        assert_eq!(
            r.prompt,
            PromptTemplate::for_format(r.train.reward.format.mode)
        );
    }

    #[test]
    fn overrides_apply_and_unknown_keys_name_the_key_and_file() {
        let r = RunFile::from_file(
            &shipped(),
            &[
                ("total_steps".into(), toml::Value::Integer(3)),
                ("lora.rank".into(), toml::Value::Integer(4)),
                ("eval.samples".into(), toml::Value::Integer(1)),
            ],
        )
        .unwrap();
        assert_eq!(r.train.total_steps, 3);
        assert_eq!(r.train.lora.rank, 4);
        assert_eq!(r.eval.samples, 1);
        let err = RunFile::from_file(&shipped(), &[("lora.rnak".into(), toml::Value::Integer(4))])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("rnak") && err.contains("smollm2-text.toml"),
            "{err}"
        );
        let err = RunFile::from_file(
            &shipped(),
            &[("data.heldot".into(), toml::Value::Integer(4))],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("heldot"), "{err}");
    }
}
