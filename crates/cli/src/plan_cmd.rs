//! `mixed-r1 plan` (and `mixed-r1 train --dry-run`): the memory plan of a run, from the model's
//! config.json and the run's TOML alone, for five standard scenarios and the configured one.
//! The formulas are in `mixed_r1_train::memory_plan`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use mixed_r1_model::config::ModelConfig;
use mixed_r1_model::lora::LoraConfig;
use mixed_r1_model::model::{LoadOptions, Model};
use mixed_r1_model::tokenizer::Tokenizer;
use mixed_r1_train::config::TrainConfig;
use mixed_r1_train::grpo::lora_config;
use mixed_r1_train::memory_plan::{
    gib, plan, render_table, standard_scenarios, thousands, Plan, Precision, RunShape, Scenario,
    GPU_SIZES_GB, USABLE_FRACTION,
};
use mixed_r1_train::tiny;
use serde_json::json;

use crate::train_cmd::{
    apply_model_flags, build_config, config_with_overrides, default_tokenizer, TrainArgs,
};

#[derive(Args)]
pub struct PlanArgs {
    /// The run's TOML config (as for `mixed-r1 train`); without it, the defaults.
    #[arg(long, conflicts_with = "recipe")]
    config: Option<PathBuf>,
    /// Or a run file (`mixed-r1 demo --config`): its GRPO config (the same as --config).
    #[arg(long)]
    recipe: Option<PathBuf>,
    /// Override any config key: `--set batch_prompts=8 --set grad_accum=64` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// The model: a config.json, a Hugging Face folder (its config.json is read, no weights) or
    /// a .gguf (`model.path`).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Or a named tiny config (`model.tiny`): tiny-qwen2.5-vl, tiny-qwen3-vl, tiny-internvl, tiny-qwen2.
    #[arg(long)]
    tiny: Option<String>,
    /// tokenizer.json of a tiny model (its vocabulary sizes the embeddings).
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// Plan the configured run with gradient checkpointing (also read from the config's
    /// `gradient_checkpointing` key when it has one).
    #[arg(long)]
    gradient_checkpointing: bool,
    /// Merged image tokens per prompt (part of max_prompt_len); sizes the vision tower's
    /// activations when it trains.
    #[arg(long, default_value_t = 0)]
    image_tokens: usize,
    /// One JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

/// What `print_plan` needs beyond the config.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    pub gradient_checkpointing: bool,
    pub image_tokens: usize,
    pub json: bool,
}

pub fn run(a: PlanArgs) -> Result<()> {
    let mut cfg = match &a.recipe {
        Some(r) => recipe_config(r, &a.set)?,
        None => config_with_overrides(a.config.as_deref(), &a.set)?,
    };
    apply_model_flags(&mut cfg.model, &a.model, &a.tiny, &a.tokenizer, &None);
    cfg.validate()?;
    print_plan(
        &cfg,
        &PlanOptions {
            gradient_checkpointing: a.gradient_checkpointing,
            image_tokens: a.image_tokens,
            json: a.json,
        },
    )
}

/// A run file's GRPO config, `--set` applied, relative paths resolved against its folder.
fn recipe_config(path: &Path, set: &[String]) -> Result<TrainConfig> {
    crate::train_cmd::config_with_overrides(Some(path), set)
}

/// The model config a run names, read without loading weights (a GGUF's is read from the
/// file, which dequantises it: GGUF keeps its config in the weights' file).
fn model_config(cfg: &TrainConfig) -> Result<(ModelConfig, String)> {
    match (&cfg.model.path, &cfg.model.tiny) {
        (Some(p), _) => {
            let file = if p.is_dir() {
                let f = p.join("config.json");
                if !f.is_file() {
                    bail!(
                        "{}: no config.json in this folder (an adapter folder? plan its base model)",
                        p.display()
                    );
                }
                f
            } else if p.extension().is_some_and(|e| e == "gguf") {
                let m = Model::load(p, &LoadOptions::default())
                    .with_context(|| format!("cannot read the GGUF {}", p.display()))?;
                return Ok((m.config.clone(), p.display().to_string()));
            } else {
                p.clone()
            };
            if !file.is_file() {
                bail!(
                    "{}: not found (give a config.json, a model folder or a .gguf)",
                    file.display()
                );
            }
            let c = ModelConfig::from_file(&file)?;
            Ok((c, file.display().to_string()))
        }
        (None, Some(name)) => {
            let tok_path = cfg
                .model
                .tokenizer
                .clone()
                .unwrap_or_else(default_tokenizer);
            let tok = Tokenizer::from_file(&tok_path).with_context(|| {
                format!(
                    "a tiny model's vocabulary comes from its tokenizer: cannot read {}",
                    tok_path.display()
                )
            })?;
            Ok((tiny::config(name, &tok)?, name.clone()))
        }
        (None, None) => bail!(
            "no model: pass --model (a config.json, a model folder or a .gguf) or --tiny, \
             or set model.path in the config"
        ),
    }
}

/// Whether the config asks for gradient checkpointing, read by key so that a config of a build
/// without the key still plans.
fn config_checkpointing(cfg: &TrainConfig) -> bool {
    let Ok(v) = toml::Value::try_from(cfg) else {
        return false;
    };
    let flag = |t: Option<&toml::Value>| {
        t.and_then(|t| t.get("gradient_checkpointing"))
            .and_then(toml::Value::as_bool)
    };
    flag(Some(&v)).or(flag(v.get("model"))).unwrap_or(false)
}

/// The LoRA settings the standard LoRA scenarios use: the run's when it has adapters, else
/// rank 16, alpha 32 on every attention and MLP projection.
fn scenario_lora(cfg: &TrainConfig) -> LoraConfig {
    if cfg.uses_lora() {
        return lora_config(cfg);
    }
    LoraConfig {
        rank: 16,
        alpha: 32.0,
        vision: cfg.lora.vision,
        ..LoraConfig::default()
    }
}

/// Prints the plan of `cfg` (table or JSON).
pub fn print_plan(cfg: &TrainConfig, opts: &PlanOptions) -> Result<()> {
    let (model, source) = model_config(cfg)?;
    let run = RunShape::from_config(cfg, opts.image_tokens);
    let lora = scenario_lora(cfg);
    let dtype = Precision::parse(&cfg.model.dtype)
        .with_context(|| format!("model.dtype `{}` is not f32, bf16 or f16", cfg.model.dtype))?;
    let ckpt = opts.gradient_checkpointing || config_checkpointing(cfg);
    let this_run = Scenario {
        name: "this run".into(),
        dtype,
        lora: cfg.uses_lora().then(|| lora_config(cfg)),
        gradient_checkpointing: ckpt,
    };
    let mut scenarios = standard_scenarios(&lora);
    scenarios.push(this_run.clone());
    let plans: Vec<Plan> = scenarios.iter().map(|s| plan(&model, &run, s)).collect();
    let t = &model.text;
    if opts.json {
        let v = json!({
            "model": {
                "source": source,
                "architecture": model.arch.hf_name(),
                "layers": t.num_hidden_layers,
                "hidden_size": t.hidden_size,
                "intermediate_size": t.intermediate_size,
                "attention_heads": t.num_attention_heads,
                "kv_heads": t.num_key_value_heads,
                "head_dim": t.head_dim,
                "vocab_size": t.vocab_size,
                "tie_word_embeddings": t.tie_word_embeddings,
                "vision_depth": model.vision.as_ref().map(|v| v.depth),
            },
            "run": run,
            "sequences_per_step": run.sequences(),
            "micro_batch": run.micro_batch(),
            "micro_batches": run.micro_batches(),
            "scenario_lora": lora,
            "gpu_sizes_gb": GPU_SIZES_GB,
            "usable_fraction": USABLE_FRACTION,
            "plans": plans,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let counts = &plans[3].params;
    println!("model:  {source} ({})", model.arch.hf_name());
    println!(
        "        {} layers, hidden {}, MLP {}, {} heads / {} KV heads x {}, vocab {}, {} head{}",
        t.num_hidden_layers,
        t.hidden_size,
        t.intermediate_size,
        t.num_attention_heads,
        t.num_key_value_heads,
        t.head_dim,
        t.vocab_size,
        if t.tie_word_embeddings {
            "tied"
        } else {
            "untied"
        },
        match &model.vision {
            Some(v) => format!(
                "; vision tower {} blocks x {} (merger -> {})",
                v.depth, v.hidden_size, v.out_hidden_size
            ),
            None => String::new(),
        }
    );
    println!(
        "params: {} (text {} + vision {})",
        thousands(counts.total),
        thousands(counts.text),
        thousands(counts.vision)
    );
    println!(
        "LoRA:   rank {} on {} projections{}: {} trainable ({} text + {} vision){}",
        lora.rank,
        counts.lora_modules,
        if lora.vision { " (vision too)" } else { "" },
        thousands(counts.lora()),
        thousands(counts.lora_text),
        thousands(counts.lora_vision),
        if cfg.uses_lora() {
            ""
        } else {
            " [not this run's: it trains every weight; shown for the LoRA columns]"
        }
    );
    println!(
        "run:    {} prompts x G {} = {} sequences/step of <= {} prompt + {} completion tokens; \
         micro-batch {} ({} micro-batches); beta {}{}; vision {}",
        run.batch_prompts,
        run.group_size,
        run.sequences(),
        run.max_prompt_len,
        run.max_completion_len,
        run.micro_batch(),
        run.micro_batches(),
        run.beta,
        if run.beta > 0.0 {
            " (KL reference)"
        } else {
            " (no reference)"
        },
        if run.freeze_vision {
            "frozen"
        } else {
            "trained"
        }
    );
    println!(
        "this run: {} {}{}",
        dtype.name(),
        if cfg.uses_lora() { "LoRA" } else { "full" },
        if ckpt {
            " + gradient checkpointing"
        } else {
            ""
        }
    );
    println!();
    print!("{}", render_table(&plans));
    println!();
    let last = plans.last().expect("the configured run is planned");
    match last.smallest_gpu() {
        Some(gb) => println!(
            "this run needs {} GiB at its peak: the smallest listed GPU it fits is {gb} GB.",
            gib(last.memory.peak)
        ),
        None => println!(
            "this run needs {} GiB at its peak: more than any listed GPU; lower the micro-batch \
             (grad_accum), the lengths or the group, or use LoRA / bf16 / checkpointing.",
            gib(last.memory.peak)
        ),
    }
    println!(
        "GiB = 2^30 bytes; a GPU fits when the peak is <= {:.0}% of it. Activations assume eager \
         attention (seq^2 per head) and sequences padded to max_prompt_len + \
         max_completion_len; see crates/train/src/memory_plan.rs for every formula.",
        USABLE_FRACTION * 100.0
    );
    Ok(())
}

/// `mixed-r1 train --dry-run`: the memory plan of the run those flags describe, nothing run.
pub fn plan_train(a: &TrainArgs) -> Result<()> {
    let cfg = build_config(a)?;
    cfg.validate()?;
    print_plan(&cfg, &PlanOptions::default())
}
