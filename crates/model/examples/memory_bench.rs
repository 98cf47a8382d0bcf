//! Peak memory and step time of the training forward + backward under gradient checkpointing
//! and bf16 mixed precision (bench/train/checkpointing.sh runs it four ways under
//! `/usr/bin/time -v` and reads the peak RSS).
//!
//! `memory_bench --model PATH [--dtype f32|bf16] [--checkpointing] [--batch 2] [--prompt 256]
//!   [--completion 256] [--iters 3]`
//!
//! One iteration: `completion_logprobs(.., grad = true)` on `batch` sequences of `prompt` +
//! `completion` seeded random token ids, loss = -mean completion log-prob, `Model::backward`,
//! the gradients re-keyed onto the f32 masters (bf16) and the masters copied back into the
//! working weights (what a trainer step does besides AdamW). Every weight trains. Prints one
//! JSON object: median seconds per iteration, the loss of the first iteration, the settings.

use std::path::PathBuf;
use std::time::Instant;

use candle_core::DType;
use mixed_r1_model::logprobs::{completion_logprobs, Sequence};
use mixed_r1_model::model::{LoadOptions, Model};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn main() -> anyhow::Result<()> {
    let mut model_path: Option<PathBuf> = None;
    let (mut dtype, mut ckpt) = ("f32".to_string(), false);
    let (mut batch, mut prompt, mut completion, mut iters) = (2usize, 256usize, 256usize, 3usize);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || {
            args.next()
                .ok_or_else(|| anyhow::anyhow!("{a} needs a value"))
        };
        match a.as_str() {
            "--model" => model_path = Some(PathBuf::from(val()?)),
            "--dtype" => dtype = val()?,
            "--checkpointing" => ckpt = true,
            "--batch" => batch = val()?.parse()?,
            "--prompt" => prompt = val()?.parse()?,
            "--completion" => completion = val()?.parse()?,
            "--iters" => iters = val()?.parse()?,
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    let path = model_path.ok_or_else(|| anyhow::anyhow!("--model PATH is required"))?;
    let working = LoadOptions::default().with_dtype_name(&dtype)?.dtype;
    // Loaded in f32: in bf16 the f32 weights become the masters and a bf16 copy the working set.
    let mut model = Model::load(&path, &LoadOptions::default())?;
    model.enable_master_weights(working)?;
    model.set_gradient_checkpointing(ckpt);
    let vocab = model.config.text.vocab_size as u32;
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut ids = |n: usize| -> Vec<u32> { (0..n).map(|_| rng.random_range(1..vocab)).collect() };
    let seqs: Vec<Sequence> = (0..batch)
        .map(|_| Sequence {
            prompt: ids(prompt),
            completion: ids(completion),
            images: None,
        })
        .collect();
    let mut times = Vec::new();
    let mut first_loss = None;
    for _ in 0..iters {
        let t0 = Instant::now();
        let out = completion_logprobs(&model, &seqs, 1.0, true, false)?;
        let n = out
            .mask
            .sum_all()?
            .to_dtype(DType::F32)?
            .to_scalar::<f32>()?;
        let loss = (out.logprobs.sum_all()?.neg()? / n as f64)?;
        let grads = model.optimizer_grads(model.backward(&loss)?)?;
        drop(grads);
        model.sync_master_weights()?;
        times.push(t0.elapsed().as_secs_f64());
        first_loss.get_or_insert(loss.to_scalar::<f32>()?);
    }
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| a.total_cmp(b));
    println!(
        "{}",
        serde_json::json!({
            "model": path.display().to_string(),
            "dtype": dtype,
            "checkpointing": ckpt,
            "batch": batch, "prompt": prompt, "completion": completion,
            "iter_s_median": sorted[sorted.len() / 2],
            "iter_s_all": times,
            "loss_first_iter": first_loss,
        })
    );
    Ok(())
}
