//! A GRPO-shaped optimisation step with LoRA against the same step with every weight trained,
//! on the same model and batch: `completion_logprobs(grad)` -> advantage-weighted loss ->
//! backward -> grad clip -> AdamW. One configuration per process, so the peak RSS (VmHWM) is
//! that configuration's alone; bench/train/lora_vs_full.sh runs both and prints the ratio.
//!
//! `cargo run -p mixed-r1-train --release --example lora_step_bench -- --model PATH \
//!     [--rank 16] [--seqs 8] [--prompt 64] [--completion 48] [--iters 3] [--warmup 1] \
//!     [--rollouts N]`
//! (`--rank 0` = full fine-tuning). `--rollouts N` (default 0) also times the rollout of the
//! same batch after the steps: `generate` of `--completion` tokens (temperature 1,
//! `ignore_eos`) for each of the `--seqs` prompts, one untimed warm-up and then N timed
//! (adapters unmerged, as the trainer samples). `peak_rss_mb` is taken after the steps, before
//! any rollout; `peak_rss_mb_with_rollout` at the end. Prints one JSON object.

use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::Tensor;
use mixed_r1_grpo::optim::{clip_grad_norm, AdamW, AdamWConfig};
use mixed_r1_model::generate::{generate, Prompt, SamplingConfig};
use mixed_r1_model::logprobs::{completion_logprobs, Sequence};
use mixed_r1_model::lora::LoraConfig;
use mixed_r1_model::model::{LoadOptions, Model};
use rand::{RngExt, SeedableRng};

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn vm_hwm_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
            })
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let model_path: String = arg(&args, "--model", String::new());
    anyhow::ensure!(!model_path.is_empty(), "--model PATH is required");
    let rank: usize = arg(&args, "--rank", 16);
    let seqs: usize = arg(&args, "--seqs", 8);
    let prompt: usize = arg(&args, "--prompt", 64);
    let completion: usize = arg(&args, "--completion", 48);
    let iters: usize = arg(&args, "--iters", 3);
    let warmup: usize = arg(&args, "--warmup", 1);
    let rollouts: usize = arg(&args, "--rollouts", 0);
    let mut model = Model::load(std::path::Path::new(&model_path), &LoadOptions::default())
        .with_context(|| format!("loading {model_path}"))?;
    if rank > 0 {
        model.add_lora(&LoraConfig {
            rank,
            alpha: 2.0 * rank as f64,
            ..Default::default()
        })?;
    }
    let (total, trainable) = model.params().count();
    let vocab = model.config.text.vocab_size as u32;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let batch: Vec<Sequence> = (0..seqs)
        .map(|_| Sequence {
            prompt: (0..prompt).map(|_| rng.random_range(10..vocab)).collect(),
            completion: (0..completion)
                .map(|_| rng.random_range(10..vocab))
                .collect(),
            images: None,
        })
        .collect();
    let adv: Vec<f32> = (0..seqs)
        .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
        .collect();
    let mut opt = AdamW::new(
        model.params().trainable(),
        AdamWConfig {
            lr: 1e-5,
            weight_decay: 0.0,
            ..Default::default()
        },
    )?;
    let vars = opt.vars();
    let (mut fwd, mut bwd, mut upd) = (Vec::new(), Vec::new(), Vec::new());
    for it in 0..warmup + iters {
        let t0 = Instant::now();
        let out = completion_logprobs(&model, &batch, 1.0, true, false)?;
        let a = Tensor::from_slice(&adv, (seqs, 1), model.device())?;
        let loss = out.logprobs.broadcast_mul(&a)?.sum_all()?.neg()?;
        let loss = (loss / (seqs * completion) as f64)?;
        let t1 = Instant::now();
        let mut grads = loss.backward()?;
        let t2 = Instant::now();
        clip_grad_norm(&mut grads, &vars, 1.0)?;
        opt.step(&grads)?;
        let t3 = Instant::now();
        if it >= warmup {
            fwd.push((t1 - t0).as_secs_f64());
            bwd.push((t2 - t1).as_secs_f64());
            upd.push((t3 - t2).as_secs_f64());
        }
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    let step_all: Vec<f64> = (0..fwd.len()).map(|i| fwd[i] + bwd[i] + upd[i]).collect();
    let (f, b, u) = (med(&mut fwd), med(&mut bwd), med(&mut upd));
    let tokens = seqs * (prompt + completion);
    let peak_step = vm_hwm_mb();
    let mut gen_s = Vec::new();
    if rollouts > 0 {
        let prompts: Vec<Prompt> = batch
            .iter()
            .map(|s| Prompt::text(s.prompt.clone()))
            .collect();
        for r in 0..=rollouts {
            let sampling = SamplingConfig {
                max_new_tokens: completion,
                temperature: 1.0,
                top_p: 1.0,
                top_k: 0,
                seed: 7 + r as u64,
                stop_token_ids: Vec::new(),
                ignore_eos: true,
                banned_token_ids: Vec::new(),
            };
            let t = Instant::now();
            let gens = generate(&model, &prompts, &sampling)?;
            let dt = t.elapsed().as_secs_f64();
            anyhow::ensure!(gens.iter().all(|g| g.tokens.len() == completion));
            if r > 0 {
                gen_s.push(dt);
            }
        }
    }
    let rollout_s = if gen_s.is_empty() {
        None
    } else {
        Some(med(&mut gen_s))
    };
    println!(
        "{}",
        serde_json::json!({
            "model": model_path, "lora_rank": rank, "params_total": total, "params_trainable": trainable,
            "seqs": seqs, "prompt": prompt, "completion": completion, "iters": iters,
            "step_s": f + b + u, "step_s_all": step_all, "forward_s": f, "backward_s": b, "optimizer_s": u,
            "tokens_per_s": tokens as f64 / (f + b + u), "peak_rss_mb": peak_step,
            "rollouts": rollouts, "rollout_s": rollout_s, "rollout_s_all": gen_s,
            "rollout_tokens_per_s": rollout_s.map(|g| (seqs * completion) as f64 / g),
            "peak_rss_mb_with_rollout": vm_hwm_mb(),
        })
    );
    Ok(())
}
