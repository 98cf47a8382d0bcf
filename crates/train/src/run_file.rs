//! The run file: one TOML file holds a whole run, read by `mixed-r1 train`, `sft`, `eval` and
//! `demo` alike (each command uses the sections it needs and ignores the others).
//!
//! ```toml
//! [run]      # out: the run's folder (the demo's data, SFT model, evals; GRPO in <out>/grpo)
//! [data]     # train / heldout JSONL, or synth = { count, seed, stocks } + heldout_per_task,
//!            # recipe = a data-engine recipe (`mixed-r1 data build --recipe`) that builds train
//! [model]    # path | tiny, tokenizer, dtype, device
//! [lora]     # rank (0 = full fine-tuning), alpha, dropout, targets, vision, rslora
//! [sft]      # steps (0 = no SFT), batch, lr, warmup_steps, weight_decay, max_grad_norm, seed
//! [grpo]     # every GRPO key (`seed`, `output_dir`, `total_steps`, ...), directly or grouped:
//! [grpo.rollout]    # group_size, batch_prompts, max_completion_len, temperature, ...
//! [grpo.advantage]  # adv_estimator, scale_std, gdpo_component_weights, ...
//! [grpo.loss]       # loss, aggregation, eps_low, eps_high, dual_clip, mu, grad_accum, ...
//! [grpo.optim]      # lr, lr_schedule, warmup_steps, weight_decay, max_grad_norm, ...
//! [grpo.kl]         # beta, kl (`loss` and `kl` are keys too: a table of that name is the group)
//! [prompt]   # the prompt template (default: the one of reward.format.mode)
//! [reward]   # exactly reward.toml's keys
//! [eval]     # samples, temperature, max_new_tokens, batch_size, seed, charts
//! ```
//!
//! Top-level keys outside these sections are `[grpo]` keys, so a flat `train.toml` (as a run
//! saves next to its checkpoints) is a run file too, and `--set lr=1e-3` = `--set grpo.lr=1e-3`.
//! Unknown keys are errors that name the key and the file. Relative input paths are taken
//! relative to the file's folder (the embedded demo's: `recipes/`, i.e. the working directory's
//! `recipes/`, resolved lexically so a fresh folder works); `grpo.output_dir` and `run.out`
//! relative to the working directory.

use std::path::{Component, Path, PathBuf};

use crate::config::{DataSection, TrainConfig};
use anyhow::{Context, Result};
use mixed_r1_data::prompt::PromptTemplate;
use mixed_r1_data::synth::SynthConfig;
use serde::{Deserialize, Serialize};

use crate::sft::SftConfig;

/// The demo run (`recipes/demo.toml`), embedded so `mixed-r1 demo` works from any folder.
pub const DEMO_RUN: &str = include_str!("../../../recipes/demo.toml");

/// The sections a run file may have.
pub const SECTIONS: &[&str] = &[
    "run", "data", "model", "lora", "sft", "grpo", "prompt", "reward", "eval",
];

/// `[grpo]` sub-tables that only group keys (their keys are `[grpo]`'s own).
pub const GRPO_GROUPS: &[&str] = &["rollout", "advantage", "loss", "optim", "kl"];

/// `[run]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunSection {
    /// The run's folder (demo: data, SFT model, evals, grpo/).
    pub out: Option<PathBuf>,
}

/// `[data]`: where the samples come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataRun {
    /// The training set (JSONL / Parquet of the dataset schema).
    pub train: Option<PathBuf>,
    /// Shuffle prompts each epoch.
    pub shuffle: bool,
    /// A fixed held-out set for the before / after evals.
    pub heldout: Option<PathBuf>,
    /// The data-engine recipe that builds `train` (`mixed-r1 data build --recipe`).
    pub recipe: Option<PathBuf>,
    /// Synthesise the samples instead (`mixed-r1 data synth`'s settings).
    pub synth: Option<SynthConfig>,
    /// With `synth`: the first this many samples of each task are held out.
    pub heldout_per_task: usize,
}

impl Default for DataRun {
    fn default() -> Self {
        DataRun {
            train: None,
            shuffle: true,
            heldout: None,
            recipe: None,
            synth: None,
            heldout_per_task: 24,
        }
    }
}

/// `[eval]`: the held-out evaluations (greedy: one temperature-0 answer a prompt; sampled:
/// `samples` answers a prompt at `temperature`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvalSection {
    /// Responses a prompt in the sampled evals.
    pub samples: usize,
    /// Temperature of the sampled evals (0 = grpo.temperature).
    pub temperature: f64,
    /// New tokens (0 = grpo.max_completion_len).
    pub max_new_tokens: usize,
    pub batch_size: usize,
    /// Sampling seed (absent = grpo.seed).
    pub seed: Option<u64>,
    /// Draw the per-task charts of each eval.
    pub charts: bool,
}

impl Default for EvalSection {
    fn default() -> Self {
        EvalSection {
            samples: 4,
            temperature: 0.0,
            max_new_tokens: 0,
            batch_size: 40,
            seed: None,
            charts: false,
        }
    }
}

/// A parsed run file.
#[derive(Debug, Clone)]
pub struct RunFile {
    /// The file (`None`: the embedded demo run).
    pub path: Option<PathBuf>,
    pub run: RunSection,
    pub data: DataRun,
    /// `[grpo]`, `[model]`, `[lora]`, `[reward]` and `data.train` / `data.shuffle`.
    pub train: TrainConfig,
    pub sft: SftConfig,
    pub prompt: PromptTemplate,
    pub eval: EvalSection,
    /// The document as read, overrides applied (saved next to a run, compared on resume).
    pub doc: toml::Table,
}

/// Parses `KEY=VALUE` (`--set`): the value as TOML, else as a string.
pub fn parse_set(kv: &str) -> Result<(String, toml::Value)> {
    let (k, raw) = kv
        .split_once('=')
        .with_context(|| format!("--set {kv}: expected KEY=VALUE"))?;
    let v = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|t| t.get("v").cloned())
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    Ok((k.trim().to_string(), v))
}

/// Sets `a.b.c = value` in a TOML document, creating sections on the way.
pub fn set_dotted(doc: &mut toml::Table, key: &str, value: toml::Value) -> Result<()> {
    let parts: Vec<&str> = key.trim().split('.').collect();
    let mut table = doc;
    for p in &parts[..parts.len() - 1] {
        table = table
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(Default::default()))
            .as_table_mut()
            .with_context(|| format!("`{p}` is not a section"))?;
    }
    table.insert(parts[parts.len() - 1].to_string(), value);
    Ok(())
}

/// A `--set` key in run-file terms: keys outside the run file's sections are `[grpo]` keys
/// (`--set lr=1e-3` = `--set grpo.lr=1e-3`, as `train --set` always took them).
pub fn run_key(key: &str) -> String {
    let first = key.trim().split('.').next().unwrap_or("");
    if SECTIONS.contains(&first) {
        key.trim().to_string()
    } else {
        format!("grpo.{}", key.trim())
    }
}

/// `dir/p` with `.` and `..` removed lexically (so `recipes/../.cache` works without `recipes/`).
pub fn join_lexical(dir: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        return p.to_path_buf();
    }
    let mut out = PathBuf::new();
    for c in dir.join(p).components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if matches!(out.components().next_back(), Some(Component::Normal(_))) {
                    out.pop();
                } else {
                    out.push("..");
                }
            }
            c => out.push(c),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

fn resolve(dir: &Path, p: &mut Option<PathBuf>) {
    if let Some(x) = p {
        *x = join_lexical(dir, x);
    }
}

impl RunFile {
    /// Reads a run file; `overrides` are `(dotted key, TOML value)` pairs applied before parsing
    /// (keys as [`run_key`] reads them).
    pub fn from_file(path: &Path, overrides: &[(String, toml::Value)]) -> Result<RunFile> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the run file {}", path.display()))?;
        Self::parse(
            &text,
            Some(path),
            path.parent().unwrap_or(Path::new(".")),
            overrides,
        )
    }

    /// The embedded demo run (`recipes/demo.toml`); its paths relative to `recipes/`.
    pub fn demo(overrides: &[(String, toml::Value)]) -> Result<RunFile> {
        Self::parse(DEMO_RUN, None, Path::new("recipes"), overrides)
    }

    /// No file: every default, then the overrides.
    pub fn defaults(overrides: &[(String, toml::Value)]) -> Result<RunFile> {
        Self::parse("", None, Path::new("."), overrides)
    }

    /// A file name for messages.
    pub fn name(&self) -> String {
        self.path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "recipes/demo.toml (embedded)".into())
    }

    /// Parses run-file text; relative input paths are taken from `dir`.
    pub fn parse(
        text: &str,
        path: Option<&Path>,
        dir: &Path,
        overrides: &[(String, toml::Value)],
    ) -> Result<RunFile> {
        let name = path
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "recipes/demo.toml (embedded)".into());
        let mut doc: toml::Table =
            toml::from_str(text).with_context(|| format!("{name}: invalid TOML"))?;
        for (key, value) in overrides {
            let key = run_key(key);
            set_dotted(&mut doc, &key, value.clone())
                .with_context(|| format!("--set {key}: {name}"))?;
        }
        // Top-level keys outside the sections are `[grpo]`'s (so a flat `train.toml`, as
        // earlier versions and a run's saved `train.toml` have it, is a run file too).
        let loose: Vec<String> = doc
            .keys()
            .filter(|k| !SECTIONS.contains(&k.as_str()))
            .cloned()
            .collect();
        for k in loose {
            let v = doc.remove(&k).expect("listed");
            let grpo = doc
                .entry("grpo")
                .or_insert_with(|| toml::Value::Table(Default::default()))
                .as_table_mut()
                .with_context(|| format!("{name}: `grpo` must be a section ([grpo])"))?;
            anyhow::ensure!(
                !grpo.contains_key(&k),
                "{name}: `{k}` is set both at the top level and in [grpo]"
            );
            grpo.insert(k, v);
        }
        for (k, v) in &doc {
            anyhow::ensure!(v.is_table(), "{name}: `{k}` must be a section ([{k}])");
        }
        let section = |k: &str| -> toml::Table {
            doc.get(k)
                .and_then(|v| v.as_table())
                .cloned()
                .unwrap_or_default()
        };
        fn parse_section<T: serde::de::DeserializeOwned>(
            name: &str,
            key: &str,
            t: toml::Table,
        ) -> Result<T> {
            toml::Value::Table(t)
                .try_into()
                .map_err(|e| anyhow::anyhow!("{name}: [{key}]: {e}"))
        }
        let run: RunSection = parse_section(&name, "run", section("run"))?;
        let mut data: DataRun = parse_section(&name, "data", section("data"))?;
        let sft: SftConfig = parse_section(&name, "sft", section("sft"))?;
        let eval: EvalSection = parse_section(&name, "eval", section("eval"))?;

        // [grpo] with its groups flattened, plus the sections TrainConfig holds.
        let mut grpo = section("grpo");
        for g in GRPO_GROUPS {
            // `loss` and `kl` are also keys (`loss = "vanilla"`, `kl = "k3"`): only a table is a
            // group.
            if grpo.get(*g).is_some_and(toml::Value::is_table) {
                let v = grpo.remove(*g).expect("checked");
                let t = v.as_table().expect("checked");
                for (k, v) in t {
                    anyhow::ensure!(
                        !grpo.contains_key(k),
                        "{name}: grpo.{g}.{k}: `{k}` is set twice in [grpo]"
                    );
                    grpo.insert(k.clone(), v.clone());
                }
            }
        }
        for k in ["model", "data", "lora", "reward"] {
            anyhow::ensure!(
                !grpo.contains_key(k),
                "{name}: unknown key `grpo.{k}` ([{k}] is a section of its own)"
            );
        }
        for k in ["model", "lora", "reward"] {
            if let Some(v) = doc.get(k) {
                grpo.insert(k.to_string(), v.clone());
            }
        }
        let mut ds = toml::Table::new();
        if let Some(t) = &data.train {
            ds.insert("train".into(), toml::Value::try_from(t)?);
        }
        ds.insert("shuffle".into(), toml::Value::Boolean(data.shuffle));
        grpo.insert("data".into(), toml::Value::Table(ds));
        let mut train: TrainConfig = toml::Value::Table(grpo)
            .try_into()
            .map_err(|e| anyhow::anyhow!("{name}: [grpo] / [model] / [lora] / [reward]: {e}"))?;

        // Input paths from the file's folder.
        {
            let b = &mut train.reward.bmas;
            for p in [
                &mut train.model.path,
                &mut train.model.tokenizer,
                &mut b.tokenizer,
                &mut b.embeddings,
                &mut b.model,
            ] {
                resolve(dir, p);
            }
        }
        for p in [&mut data.train, &mut data.heldout, &mut data.recipe] {
            resolve(dir, p);
        }
        if let Some(s) = &mut data.synth {
            resolve(dir, &mut s.stocks);
        }
        train.data = DataSection {
            train: data.train.clone(),
            shuffle: data.shuffle,
        };

        let prompt = match doc.get("prompt") {
            Some(toml::Value::Table(t)) => {
                let mut base =
                    toml::Table::try_from(PromptTemplate::for_format(train.reward.format.mode))?;
                for (k, v) in t {
                    base.insert(k.clone(), v.clone());
                }
                parse_section(&name, "prompt", base)?
            }
            _ => PromptTemplate::for_format(train.reward.format.mode),
        };
        train
            .validate()
            .map_err(|e| anyhow::anyhow!("{name}: [grpo]: {e}"))?;
        Ok(RunFile {
            path: path.map(Path::to_path_buf),
            run,
            data,
            train,
            sft,
            prompt,
            eval,
            doc,
        })
    }

    /// The resolved run as TOML (every section, defaults included): what a run saves.
    pub fn to_toml_string(&self) -> Result<String> {
        let mut doc = toml::Table::new();
        let train = toml::Table::try_from(&self.train)?;
        let mut grpo = train.clone();
        for k in ["model", "data", "lora", "reward"] {
            grpo.remove(k);
        }
        doc.insert("run".into(), toml::Value::try_from(&self.run)?);
        doc.insert("data".into(), toml::Value::try_from(&self.data)?);
        for k in ["model", "lora"] {
            if let Some(v) = train.get(k) {
                doc.insert(k.into(), v.clone());
            }
        }
        doc.insert("sft".into(), toml::Value::try_from(&self.sft)?);
        doc.insert("grpo".into(), toml::Value::Table(grpo));
        doc.insert("prompt".into(), toml::Value::try_from(&self.prompt)?);
        if let Some(v) = train.get("reward") {
            doc.insert("reward".into(), v.clone());
        }
        doc.insert("eval".into(), toml::Value::try_from(&self.eval)?);
        Ok(toml::to_string(&doc)?)
    }

    /// What changes a resumed GRPO run between a saved run file (`run.toml` of the run) and this
    /// one: the GRPO config's run-changing keys (as [`TrainConfig::resume_changes`]) and the
    /// prompt; one `key: saved -> new` line each.
    pub fn resume_changes(&self, saved: &RunFile) -> Result<Vec<String>> {
        let mut out = self
            .train
            .resume_changes(&saved.train)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if self.prompt != saved.prompt {
            let a = toml::Table::try_from(&saved.prompt)?;
            let b = toml::Table::try_from(&self.prompt)?;
            for k in a.keys().chain(b.keys()) {
                if a.get(k) != b.get(k)
                    && !out.iter().any(|l| l.starts_with(&format!("prompt.{k}:")))
                {
                    let show = |v: Option<&toml::Value>| {
                        v.map_or("(unset)".to_string(), |v| v.to_string())
                    };
                    out.push(format!(
                        "prompt.{k}: {} -> {}",
                        show(a.get(k)),
                        show(b.get(k))
                    ));
                }
            }
        }
        Ok(out)
    }

    /// Writes the resolved run file into `dir` as `run.toml`.
    pub fn save(&self, dir: &Path) -> Result<PathBuf> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let p = dir.join("run.toml");
        std::fs::write(&p, self.to_toml_string()?)
            .with_context(|| format!("writing {}", p.display()))?;
        Ok(p)
    }

    /// The sampled evals' temperature.
    pub fn eval_temperature(&self) -> f64 {
        if self.eval.temperature > 0.0 {
            self.eval.temperature
        } else {
            self.train.temperature
        }
    }

    /// The evals' new-token budget.
    pub fn eval_max_new_tokens(&self) -> usize {
        if self.eval.max_new_tokens > 0 {
            self.eval.max_new_tokens
        } else {
            self.train.max_completion_len
        }
    }

    /// Checks what a recipe run (evals before and after GRPO on a fixed held-out set) needs.
    pub fn check_recipe(&self) -> Result<()> {
        let name = self.name();
        self.train
            .validate_for_training()
            .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        anyhow::ensure!(
            self.data.heldout.is_some(),
            "{name}: [data] heldout: missing (the fixed held-out set the before / after evals use)"
        );
        anyhow::ensure!(
            self.eval.samples >= 1,
            "{name}: [eval] samples: must be >= 1"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipes() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../recipes")
    }

    #[test]
    fn every_shipped_run_file_parses() {
        let mut n = 0;
        for e in std::fs::read_dir(recipes()).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "toml") {
                let r = RunFile::from_file(&p, &[]).unwrap_or_else(|e| panic!("{e:#}"));
                assert!(
                    r.train.model.path.is_some() || r.train.model.tiny.is_some(),
                    "{}: no [model]",
                    p.display()
                );
                n += 1;
            }
        }
        assert!(n >= 4, "{n} run files");
    }

    #[test]
    fn the_embedded_demo_is_the_shipped_file() {
        let shipped = std::fs::read_to_string(recipes().join("demo.toml")).unwrap();
        assert_eq!(shipped, DEMO_RUN);
        let r = RunFile::demo(&[]).unwrap();
        assert_eq!(r.train.model.tiny.as_deref(), Some("tiny-qwen2.5-vl"));
        assert_eq!(
            r.train.reward.bmas.model.as_deref(),
            Some(Path::new(".cache/assets/minilm"))
        );
        assert!(r.data.synth.is_some());
        assert_eq!(r.sft.steps, 120);
        assert_eq!(r.train.total_steps, 48);
    }

    #[test]
    fn groups_overrides_and_unknown_keys() {
        let text = "[grpo.rollout]\ngroup_size = 4\n[grpo.optim]\nlr = 1e-3\n[model]\ntiny = \"tiny-qwen2\"\n";
        let r = RunFile::parse(
            text,
            Some(Path::new("x/run.toml")),
            Path::new("x"),
            &[
                ("batch_prompts".into(), toml::Value::Integer(3)),
                ("sft.steps".into(), toml::Value::Integer(5)),
            ],
        )
        .unwrap();
        assert_eq!(r.train.group_size, 4);
        assert_eq!(r.train.batch_prompts, 3);
        assert_eq!(r.train.lr, 1e-3);
        assert_eq!(r.sft.steps, 5);
        for (bad, key) in [
            ("[grpo]\nbta = 0.0\n", "bta"),
            ("[lora]\nrnak = 4\n", "rnak"),
            ("[eval]\nsampels = 4\n", "sampels"),
            ("[data]\ntrian = \"a\"\n", "trian"),
            ("not_a_key = 4\n", "not_a_key"),
            ("[eval]\nsampels = 4\n[grpo]\nlr = 1.0\n", "sampels"),
            ("[sft]\nstep = 4\n", "step"),
        ] {
            let err = RunFile::parse(bad, Some(Path::new("x/run.toml")), Path::new("x"), &[])
                .unwrap_err();
            let err = format!("{err:#}");
            assert!(err.contains(key) && err.contains("x/run.toml"), "{err}");
        }
    }

    #[test]
    fn lexical_join() {
        assert_eq!(
            join_lexical(Path::new("recipes"), Path::new("../.cache/a")),
            PathBuf::from(".cache/a")
        );
        assert_eq!(
            join_lexical(Path::new("/r/recipes"), Path::new("data/x.jsonl")),
            PathBuf::from("/r/recipes/data/x.jsonl")
        );
    }

    #[test]
    fn the_saved_run_file_reads_back_the_same() {
        let r = RunFile::demo(&[]).unwrap();
        let text = r.to_toml_string().unwrap();
        let back = RunFile::parse(&text, None, Path::new("."), &[]).unwrap();
        assert!(back.resume_changes(&r).unwrap().is_empty());
        let changed = RunFile::parse(
            &text,
            None,
            Path::new("."),
            &[("prompt.instruction".into(), toml::Value::String("x".into()))],
        )
        .unwrap();
        let ch = changed.resume_changes(&r).unwrap();
        assert!(
            ch.iter().any(|l| l.starts_with("prompt.instruction")),
            "{ch:?}"
        );
    }
}
