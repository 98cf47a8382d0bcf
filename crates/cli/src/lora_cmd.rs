//! `mixed-r1 lora`: LoRA adapters as PEFT writes them. `merge` folds an adapter folder into
//! its base model and writes a plain Hugging Face folder (what vLLM / transformers serve
//! without peft); `inspect` says what an adapter folder holds.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use mixed_r1_model::model::{LoadOptions, Model};

#[derive(Args)]
pub struct LoraArgs {
    #[command(subcommand)]
    command: LoraCommand,
}

#[derive(Subcommand)]
enum LoraCommand {
    /// Merge an adapter into its base model (W + alpha/r * B A) and save a Hugging Face folder.
    ///
    /// Example: mixed-r1 lora merge --base runs/smollm2/base --adapter runs/smollm2/checkpoint-60 --out merged/
    Merge {
        /// The base model: a Hugging Face folder or .gguf (default: the adapter's
        /// base_model_name_or_path).
        #[arg(long)]
        base: Option<PathBuf>,
        /// The adapter folder (adapter_config.json + adapter_model.safetensors), e.g. a LoRA
        /// run's checkpoint-<step>/.
        #[arg(long)]
        adapter: PathBuf,
        /// Where to write the merged model.
        #[arg(long)]
        out: PathBuf,
        /// Weights' dtype in the merged folder: f32, bf16 or f16.
        #[arg(long, default_value = "f32")]
        dtype: String,
    },
    /// Print an adapter folder's rank, alpha, scaling and adapted modules.
    Inspect {
        /// The adapter folder.
        adapter: PathBuf,
        /// The base model, to check that every tensor fits it.
        #[arg(long)]
        base: Option<PathBuf>,
    },
}

pub fn run(a: LoraArgs) -> Result<()> {
    match a.command {
        LoraCommand::Merge {
            base,
            adapter,
            out,
            dtype,
        } => {
            let opts = LoadOptions::default().with_dtype_name(&dtype)?;
            let mut model = match &base {
                Some(b) => {
                    let mut m = Model::load(b, &opts)
                        .with_context(|| format!("cannot load the base model {}", b.display()))?;
                    m.load_adapter(&adapter).with_context(|| {
                        format!(
                            "cannot put the adapter {} on {}",
                            adapter.display(),
                            b.display()
                        )
                    })?;
                    m
                }
                None => Model::load_with_adapter(&adapter, &opts)
                    .with_context(|| format!("cannot load {}", adapter.display()))?,
            };
            let cfg = model
                .lora()
                .cloned()
                .context("the adapter holds no LoRA tensors")?;
            let n = model.merge_lora()?;
            model
                .save(&out)
                .with_context(|| format!("cannot write {}", out.display()))?;
            println!(
                "merged {n} adapted modules (r = {}, alpha = {}, scaling {}) into {}",
                cfg.rank,
                cfg.alpha,
                cfg.scaling(),
                out.display()
            );
            Ok(())
        }
        LoraCommand::Inspect { adapter, base } => {
            let opts = LoadOptions::default();
            let model = match &base {
                Some(b) => {
                    let mut m = Model::load(b, &opts)
                        .with_context(|| format!("cannot load the base model {}", b.display()))?;
                    m.load_adapter(&adapter)?;
                    m
                }
                None => Model::load_with_adapter(&adapter, &opts)?,
            };
            let cfg = model.lora().cloned().context("no LoRA tensors")?;
            let modules = model.adapted_modules();
            let (total, trainable) = model.params().count();
            println!("adapter:   {}", adapter.display());
            println!(
                "rank {} alpha {} scaling {} dropout {} rslora {}",
                cfg.rank,
                cfg.alpha,
                cfg.scaling(),
                cfg.dropout,
                cfg.rslora
            );
            println!(
                "modules:   {} adapted; {} adapter parameters on a {:.1}M-parameter base",
                modules.len(),
                trainable,
                (total - trainable) as f64 / 1e6
            );
            for m in modules.iter().take(8) {
                println!("  {m}");
            }
            if modules.len() > 8 {
                println!("  ... and {} more", modules.len() - 8);
            }
            Ok(())
        }
    }
}
