//! GRPO step throughput on CPU, on the shape of TRL's GRPOTrainer peer bench
//! (bench/peers/trl_grpo_bench.py): a tiny random Qwen2 (hidden 128, 4 layers, 4 heads, 2 KV
//! heads, head_dim 32, intermediate 512, vocab 151,669 = the real Qwen tokenizer's, tied
//! embeddings, std 0.02, rope_theta 1e6, f32), 1 prompt per step x G = 8 completions of exactly
//! 64 tokens (`ignore_eos`, TRL's worst case, which a random model always hits), temperature 1,
//! TRL's three rewards (format + answer + ASCII fraction), GRPO advantages, the clipped
//! objective with `beta` (0 = no reference model; > 0 = a frozen `reference_copy` and the k3 KL),
//! one optimisation pass (mu = 1), global grad-norm clip 1.0, AdamW (lr 1e-6, no weight decay:
//! TRL's default).
//!
//! The step is composed from the library pieces exactly as `mixed_r1_train::Trainer::optimise`
//! does (`generate` -> rewards -> advantages -> `completion_logprobs(grad)` -> loss ->
//! backward -> clip -> AdamW), so that generation can ignore EOS for a fixed-shape comparison.
//!
//! It measures the foreign CPU time during each step as bench/peers/torch_cpuguard.py does, and
//! waits until the machine is quiet (other processes using < 0.15 core over 1 s) before the
//! first step and again after any step that other processes disturbed (`--no-guard` turns the
//! waiting off). Waiting only then, not before every step, keeps idle seconds out of the loop:
//! an allocator that returns memory to the OS after a delay would otherwise do so during every
//! wait. Prints one JSON object (median over `--steps` steps after `--warmup`, the median of
//! the quiet ones, per-phase medians, peak RSS = VmHWM, and which allocator the process runs:
//! the bench scripts preload mimalloc, the allocator of the `mixed-r1` binary, for some runs).
//!
//! `--lora-rank R` (default 0 = full fine-tuning) adds PEFT-style LoRA adapters first
//! (`Model::add_lora`: rank R, alpha `--lora-alpha` (default 2R), dropout 0, targets q, k, v, o,
//! gate, up, down), so that only the adapters train (the optimiser is built over
//! `params().trainable()`); with `beta > 0` the reference is then the same model with its
//! adapters off (`with_adapters_disabled`), not a copy: what TRL does with a `peft_config`
//! (bench/train/grpo_lora_vs_trl.sh).
//!
//! `cargo run -p mixed-r1-train --release --example grpo_step_bench -- \
//!     [--tokenizer .cache/assets/qwen-tokenizer/tokenizer.json] [--beta 0.04] [--steps 10] \
//!     [--warmup 2] [--no-guard] [--lora-rank 16 [--lora-alpha 32]] [--out FILE]`

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::Tensor;
use mixed_r1_grpo::advantage::{AdvantageConfig, AdvantageInput, AdvantageRegistry, Groups};
use mixed_r1_grpo::loss::{Aggregation, KlEstimator, LossConfig, LossInputs, PolicyLossRegistry};
use mixed_r1_grpo::optim::{clip_grad_norm, AdamW, AdamWConfig};
use mixed_r1_model::chat::{render_chatml, Message};
use mixed_r1_model::config::{Arch, ModelConfig, TextConfig};
use mixed_r1_model::generate::{generate, Prompt, SamplingConfig};
use mixed_r1_model::logprobs::{completion_logprobs, Sequence};
use mixed_r1_model::lora::LoraConfig;
use mixed_r1_model::model::{LoadOptions, Model};
use mixed_r1_model::tokenizer::Tokenizer;
use serde_json::json;

const G: usize = 8;
const COMPLETION: usize = 64;
const SYSTEM: &str = "Think inside <think></think>, then give the answer inside <answer></answer>.";

// ---------------------------------------------------------------------------------------------
// CPU guard (bench/peers/torch_cpuguard.py in Rust)
// ---------------------------------------------------------------------------------------------

fn clk_tck() -> f64 {
    100.0 // USER_HZ on Linux
}

/// Busy CPU seconds of the whole machine (user + nice + system + irq + softirq) and steal.
fn machine_cpu() -> (f64, f64) {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<f64> = s
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let g = |i: usize| v.get(i).copied().unwrap_or(0.0);
    (
        (g(0) + g(1) + g(2) + g(5) + g(6)) / clk_tck(),
        g(7) / clk_tck(),
    )
}

/// CPU seconds of this process (all threads).
fn own_cpu() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = &s[s.rfind(')').map(|i| i + 2).unwrap_or(0)..];
    let f: Vec<f64> = rest
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // after ')' the fields start at field 3 (state, not a number, so filtered out): utime is
    // field 14, stime 15 -> indices 10, 11 of the numeric ones.
    (f.get(10).copied().unwrap_or(0.0) + f.get(11).copied().unwrap_or(0.0)) / clk_tck()
}

struct Meter {
    t0: Instant,
    m0: f64,
    s0: f64,
    o0: f64,
}

impl Meter {
    fn start() -> Meter {
        let (m0, s0) = machine_cpu();
        Meter {
            t0: Instant::now(),
            m0,
            s0,
            o0: own_cpu(),
        }
    }
    fn stop(&self) -> serde_json::Value {
        let wall = self.t0.elapsed().as_secs_f64();
        let (m1, s1) = machine_cpu();
        let own = own_cpu() - self.o0;
        json!({"wall_s": wall, "own_cpu_s": own,
               "foreign_cpu_s": (m1 - self.m0 - own).max(0.0), "steal_s": s1 - self.s0})
    }
}

/// Waits until other processes use < 0.15 core over a 1 s window (at most 300 s).
fn wait_quiet() -> f64 {
    let t0 = Instant::now();
    loop {
        let m = Meter::start();
        std::thread::sleep(std::time::Duration::from_secs(1));
        let r = m.stop();
        let foreign = r["foreign_cpu_s"].as_f64().unwrap() / r["wall_s"].as_f64().unwrap();
        if foreign < 0.15 || t0.elapsed().as_secs_f64() > 300.0 {
            return t0.elapsed().as_secs_f64();
        }
    }
}

/// `mimalloc` when a mimalloc library is mapped into the process (LD_PRELOAD), else `glibc`.
fn allocator() -> String {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    if maps.contains("mimalloc") {
        match std::env::var("MIMALLOC_PURGE_DELAY") {
            Ok(v) => format!("mimalloc (MIMALLOC_PURGE_DELAY={v})"),
            Err(_) => "mimalloc (default options)".to_string(),
        }
    } else {
        "glibc malloc".to_string()
    }
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
            })
        })
        .unwrap_or(0.0)
        / 1024.0
}

// ---------------------------------------------------------------------------------------------
// TRL bench's rewards, same definitions
// ---------------------------------------------------------------------------------------------

/// `^\s*<think>.*?</think>\s*<answer>.*?</answer>\s*$` (DOTALL), with the regex's backtracking:
/// some `</think>` is followed (after white space) by `<answer>`, and the text ends with
/// `</answer>` after that.
fn format_reward(text: &str) -> f32 {
    let s = text.trim();
    let Some(body) = s.strip_prefix("<think>") else {
        return 0.0;
    };
    if !s.ends_with("</answer>") {
        return 0.0;
    }
    let mut from = 0;
    while let Some(i) = body[from..].find("</think>") {
        let after = &body[from + i + "</think>".len()..];
        if let Some(r) = after.trim_start().strip_prefix("<answer>") {
            // r is a suffix of s, which ends with </answer>: it must hold that closing tag.
            if r.len() >= "</answer>".len() {
                return 1.0;
            }
        }
        from += i + 1;
    }
    0.0
}

/// 1 if the text of the first `<answer>...</answer>` (stripped) equals the solution.
fn answer_reward(text: &str, solution: &str) -> f32 {
    if let Some(i) = text.find("<answer>") {
        let rest = &text[i + "<answer>".len()..];
        if let Some(j) = rest.find("</answer>") {
            return f32::from(rest[..j].trim() == solution);
        }
    }
    0.0
}

/// Fraction of ASCII characters.
fn ascii_reward(text: &str) -> f32 {
    let n = text.chars().count();
    text.chars().filter(|c| c.is_ascii()).count() as f32 / n.max(1) as f32
}

// ---------------------------------------------------------------------------------------------

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return f64::NAN;
    }
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        0.5 * (s[n / 2 - 1] + s[n / 2])
    }
}

struct Args {
    tokenizer: PathBuf,
    beta: f64,
    steps: usize,
    warmup: usize,
    guard: bool,
    lora_rank: usize,
    lora_alpha: Option<f64>,
    out: Option<PathBuf>,
}

fn args() -> Result<Args> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut a = Args {
        tokenizer: root.join(".cache/assets/qwen-tokenizer/tokenizer.json"),
        beta: 0.0,
        steps: 10,
        warmup: 2,
        guard: true,
        lora_rank: 0,
        lora_alpha: None,
        out: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut val = || it.next().with_context(|| format!("{k} needs a value"));
        match k.as_str() {
            "--tokenizer" => a.tokenizer = PathBuf::from(val()?),
            "--beta" => a.beta = val()?.parse()?,
            "--steps" => a.steps = val()?.parse()?,
            "--warmup" => a.warmup = val()?.parse()?,
            "--no-guard" => a.guard = false,
            "--lora-rank" => a.lora_rank = val()?.parse()?,
            "--lora-alpha" => a.lora_alpha = Some(val()?.parse()?),
            "--out" => a.out = Some(PathBuf::from(val()?)),
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    Ok(a)
}

fn main() -> Result<()> {
    let a = args()?;
    let tok = Tokenizer::from_file(&a.tokenizer)?;
    let vocab = tok.vocab_size();
    let id = |s: &str| tok.token_id(s).with_context(|| format!("no {s} token"));
    let cfg = ModelConfig {
        arch: Arch::Qwen2,
        text: TextConfig {
            vocab_size: vocab,
            hidden_size: 128,
            intermediate_size: 512,
            num_hidden_layers: 4,
            num_attention_heads: 4,
            num_key_value_heads: 2,
            head_dim: 32,
            rms_norm_eps: 1e-6,
            rope_theta: 1_000_000.0,
            max_position_embeddings: 2048,
            tie_word_embeddings: true,
            qkv_bias: true,
            mrope_section: None,
            mrope_interleaved: false,
            qk_norm: false,
            bos_token_id: Some(id("<|endoftext|>")?),
            eos_token_ids: vec![id("<|im_end|>")?],
        },
        vision: None,
        image_token_id: None,
        video_token_id: None,
        vision_start_token_id: None,
        vision_end_token_id: None,
        raw: None,
    };
    let mut policy = Model::random(cfg, 1234, &LoadOptions::default())?;
    policy.tokenizer = Some(tok.clone());
    let lora = (a.lora_rank > 0).then(|| LoraConfig {
        rank: a.lora_rank,
        alpha: a.lora_alpha.unwrap_or(2.0 * a.lora_rank as f64),
        dropout: 0.0,
        ..Default::default()
    });
    let lora_modules = match &lora {
        Some(l) => policy.add_lora(l)?,
        None => 0,
    };
    let (n_params, n_trainable) = policy.params().count();
    // With LoRA the KL reference is the policy with its adapters off (no second copy).
    let reference = if a.beta > 0.0 && lora.is_none() {
        Some(policy.reference_copy()?)
    } else {
        None
    };
    let mut opt = AdamW::new(
        policy.params().trainable(),
        AdamWConfig {
            lr: 1e-6,
            weight_decay: 0.0,
            ..Default::default()
        },
    )?;
    let vars = opt.vars();
    let advantages = AdvantageRegistry::builtin();
    let adv_cfg = AdvantageConfig::default();
    let losses = PolicyLossRegistry::builtin();
    let loss_cfg = LossConfig {
        eps_low: 0.2,
        eps_high: 0.2,
        dual_clip: None,
        // TRL loss_type "grpo": mean over sequences of each sequence's token mean.
        aggregation: Aggregation::SeqMeanTokenMean,
        max_len: Some(COMPLETION),
        beta: a.beta,
        kl: KlEstimator::K3,
    };

    // TRL's dataset: 64 rows "What is a + b?", the system prompt, rendered with ChatML.
    let rows: Vec<(Vec<u32>, String)> = (0..64)
        .map(|i| {
            let (x, y) = (3 + (i * 7) % 41, 5 + (i * 13) % 37);
            let text = render_chatml(
                &[
                    Message::system(SYSTEM),
                    Message::user(&format!("What is {x} + {y}?")),
                ],
                true,
                None,
            );
            Ok((tok.encode(&text)?, (x + y).to_string()))
        })
        .collect::<Result<_>>()?;
    let plens: Vec<usize> = rows.iter().map(|r| r.0.len()).collect();
    let dev = policy.device().clone();

    let total = a.warmup + a.steps;
    let mut step_s = Vec::new();
    let mut meters = Vec::new();
    let mut waited = Vec::new();
    let mut phases: std::collections::BTreeMap<&str, Vec<f64>> = Default::default();
    let mut rss_after = Vec::new();
    let mut first_tokens = Vec::new();
    let mut rewards_log = Vec::new();
    let mut disturbed = true;
    for step in 0..total {
        waited.push(if a.guard && disturbed {
            wait_quiet()
        } else {
            0.0
        });
        let meter = Meter::start();
        let t0 = Instant::now();
        let (ids, solution) = &rows[step % rows.len()];
        let prompts = vec![Prompt::text(ids.clone()); G];
        let sampling = SamplingConfig {
            max_new_tokens: COMPLETION,
            temperature: 1.0,
            top_p: 1.0,
            top_k: 0,
            seed: 42 ^ (step as u64 * 1000).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            stop_token_ids: Vec::new(),
            ignore_eos: true,
            banned_token_ids: Vec::new(),
        };
        let gens = generate(&policy, &prompts, &sampling)?;
        anyhow::ensure!(gens.iter().all(|g| g.tokens.len() == COMPLETION));
        let t_gen = t0.elapsed().as_secs_f64();

        let t = Instant::now();
        let rewards: Vec<f32> = gens
            .iter()
            .map(|g| {
                format_reward(&g.text) + answer_reward(&g.text, solution) + ascii_reward(&g.text)
            })
            .collect();
        let groups = Groups::uniform(1, G);
        let adv = advantages.compute("grpo", &AdvantageInput::new(&rewards, &groups), &adv_cfg)?;
        let t_reward = t.elapsed().as_secs_f64();

        let seqs: Vec<Sequence> = gens
            .iter()
            .map(|g| Sequence {
                prompt: ids.clone(),
                completion: g.tokens.clone(),
                images: None,
            })
            .collect();
        let t = Instant::now();
        let ref_t = match &reference {
            Some(r) => Some(completion_logprobs(r, &seqs, 1.0, false, false)?.logprobs),
            None if a.beta > 0.0 => Some(
                policy
                    .with_adapters_disabled(|base| {
                        completion_logprobs(base, &seqs, 1.0, false, false)
                    })?
                    .logprobs,
            ),
            None => None,
        };
        let t_ref = t.elapsed().as_secs_f64();

        let t = Instant::now();
        let out = completion_logprobs(&policy, &seqs, 1.0, true, true)?;
        let c = out.logprobs.dim(1)?;
        let old: Vec<f32> = gens
            .iter()
            .flat_map(|g| g.logprobs.iter().copied().take(c))
            .collect();
        let old_t = Tensor::from_vec(old, (G, c), &dev)?;
        let adv_t = Tensor::from_slice(&adv, G, &dev)?;
        let mut inputs = LossInputs::new(&out.logprobs, &adv_t, &out.mask);
        inputs.old_logp = Some(&old_t);
        inputs.ref_logp = ref_t.as_ref();
        inputs.entropy = out.entropy.as_ref();
        let lo = losses.compute("vanilla", &inputs, &loss_cfg)?;
        let t_fwd = t.elapsed().as_secs_f64();

        let t = Instant::now();
        let mut grads = lo.loss.backward()?;
        let t_bwd = t.elapsed().as_secs_f64();

        let t = Instant::now();
        let norm = clip_grad_norm(&mut grads, &vars, 1.0)?;
        opt.step(&grads)?;
        drop(grads);
        let t_opt = t.elapsed().as_secs_f64();

        let dt = t0.elapsed().as_secs_f64();
        let m = meter.stop();
        eprintln!(
            "step {step}: {dt:.3}s (gen {t_gen:.3} ref {t_ref:.3} fwd+loss {t_fwd:.3} bwd {t_bwd:.3} opt {t_opt:.3})  \
             loss {:.4} kl {:?} grad_norm {norm:.3}  foreign_cpu={:.2}s  rss_max={:.0}MiB",
            lo.metrics.loss,
            lo.metrics.kl,
            m["foreign_cpu_s"].as_f64().unwrap(),
            peak_rss_mib()
        );
        disturbed = m["foreign_cpu_s"].as_f64().unwrap() >= 0.05 * dt;
        step_s.push(dt);
        meters.push(m);
        rss_after.push(peak_rss_mib());
        for (k, v) in [
            ("generate", t_gen),
            ("reward_advantage", t_reward),
            ("reference_logprobs", t_ref),
            ("policy_forward_loss", t_fwd),
            ("backward", t_bwd),
            ("clip_adamw", t_opt),
        ] {
            phases.entry(k).or_default().push(v);
        }
        if step == 0 {
            first_tokens = gens[0].tokens[..16].to_vec();
        }
        rewards_log.push(rewards);
    }
    let steady = &step_s[a.warmup..];
    let quiet: Vec<f64> = step_s
        .iter()
        .zip(&meters)
        .skip(a.warmup)
        .filter(|(_, m)| {
            m["foreign_cpu_s"].as_f64().unwrap() < 0.05 * m["wall_s"].as_f64().unwrap()
        })
        .map(|(s, _)| *s)
        .collect();
    let res = json!({
        "impl": "mixed-r1 (candle, f32): generate(ignore_eos) + completion_logprobs + vanilla loss + AdamW",
        "beta": a.beta,
        "threads": std::env::var("RAYON_NUM_THREADS").unwrap_or_default(),
        "allocator": allocator(),
        "group_size": G,
        "prompts_per_step": 1,
        "completion_tokens": COMPLETION,
        "prompt_tokens_min_max": [plens.iter().min(), plens.iter().max()],
        "vocab_size": vocab,
        "params": n_params,
        "params_trainable": n_trainable,
        "lora": lora.as_ref().map(|l| json!({"rank": l.rank, "alpha": l.alpha, "dropout": l.dropout,
            "targets": l.targets, "modules": lora_modules, "reference": if a.beta > 0.0 { "adapters off" } else { "none" }})),
        "steps": total,
        "warmup_steps_excluded": a.warmup,
        "step_s_all": step_s,
        "step_s_median_after_warmup": median(steady),
        "step_s_mean_after_warmup": steady.iter().sum::<f64>() / steady.len().max(1) as f64,
        "quiet_steps_after_warmup": quiet.len(),
        "step_s_median_quiet": if quiet.is_empty() { None } else { Some(median(&quiet)) },
        "step_cpu_meter": meters,
        "guard_wait_s": waited,
        "phase_s_median_after_warmup": phases.iter()
            .map(|(k, v)| (k.to_string(), json!(median(&v[a.warmup..]))))
            .collect::<serde_json::Map<_, _>>(),
        "peak_rss_mib": peak_rss_mib(),
        "peak_rss_mib_after_each_step": rss_after,
        "first_completion_first16": first_tokens,
        "rewards": rewards_log,
    });
    let text = serde_json::to_string_pretty(&res)?;
    if let Some(p) = &a.out {
        std::fs::write(p, &text)?;
    }
    println!("{text}");
    Ok(())
}
