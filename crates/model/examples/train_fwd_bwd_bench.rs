//! Training forward + backward throughput on a tiny Qwen2.5-VL, for comparison with torch +
//! transformers on the same folder, the same ids and the same pixels
//! (bench/train/fwd_bwd_torch.py; both run by bench/train/fwd_bwd.sh).
//!
//! A batch of B sequences, each a prompt of P tokens holding one 84x56 image (the committed
//! `processor.img_84x56.pixel_values`, grid [1, 4, 6]: 24 patches -> 6 merged image tokens
//! between `<|vision_start|>` and `<|vision_end|>`) and a completion of C tokens. One iteration:
//! `completion_logprobs(.., grad = true)` (vision tower, decoder, the head on the C completion
//! positions only, log-prob of each completion token), loss = -mean, `backward()`. Every weight
//! is trainable (the vision tower too) on both sides.
//!
//! Two steps, so that our process's peak RSS is the measurement's alone:
//!
//! `train_fwd_bwd_bench prepare --config tiny|fixture --dir DIR [--batch 8] [--prompt 64] [--completion 64]`
//!   writes the model folder `DIR/model` (for `fixture`: a copy of
//!   tests/fixtures/tiny-qwen2_5_vl) and `DIR/inputs.json` (ids, image token positions, shapes).
//!
//! `train_fwd_bwd_bench run --dir DIR [--iters 10] [--warmup 2] [--no-guard]`
//!   loads them, times `--iters` iterations after `--warmup`, prints one JSON object (median
//!   seconds per iteration, tokens/s = B * (P + C) / median, peak RSS = VmHWM, the allocator).
//!   It waits for a quiet machine (bench/peers/torch_cpuguard.py's rule) before the first
//!   iteration and after any iteration other processes disturbed.
//!
//! Configs: `tiny` = the project's `tiny-qwen2.5-vl` (mixed_r1_train::tiny::config): text hidden
//! 128, 2 layers, 4 heads, 2 KV heads, head_dim 32, intermediate 256, vocab 151,680 (the Qwen
//! tokenizer's 151,669 rounded up to 64), tied embeddings, mrope [4, 6, 6]; vision depth 2,
//! hidden 64, 2 heads, intermediate 128, out 128, window 56, full attention in block 1.
//! `fixture` = tests/fixtures/tiny-qwen2_5_vl (hidden 64, vocab 512, vision depth 4 hidden 32).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{Device, Tensor};
use mixed_r1_model::config::{Arch, ModelConfig, TextConfig, VisionConfig};
use mixed_r1_model::logprobs::{completion_logprobs, Sequence};
use mixed_r1_model::model::{ImageInputs, LoadOptions, Model};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
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

// ---- CPU guard: bench/peers/torch_cpuguard.py in Rust --------------------------------------

fn machine_cpu() -> f64 {
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
    (g(0) + g(1) + g(2) + g(5) + g(6)) / 100.0
}

fn own_cpu() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = &s[s.rfind(')').map(|i| i + 2).unwrap_or(0)..];
    let f: Vec<f64> = rest
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    (f.get(10).copied().unwrap_or(0.0) + f.get(11).copied().unwrap_or(0.0)) / 100.0
}

/// (wall, own CPU, foreign CPU) seconds since `start`.
struct Meter(Instant, f64, f64);
impl Meter {
    fn start() -> Meter {
        Meter(Instant::now(), machine_cpu(), own_cpu())
    }
    fn stop(&self) -> (f64, f64, f64) {
        let wall = self.0.elapsed().as_secs_f64();
        let own = own_cpu() - self.2;
        (wall, own, (machine_cpu() - self.1 - own).max(0.0))
    }
}

fn wait_quiet() -> f64 {
    let t0 = Instant::now();
    loop {
        let m = Meter::start();
        std::thread::sleep(std::time::Duration::from_secs(1));
        let (wall, _, foreign) = m.stop();
        if foreign / wall < 0.15 || t0.elapsed().as_secs_f64() > 300.0 {
            return t0.elapsed().as_secs_f64();
        }
    }
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        s[n / 2]
    } else {
        0.5 * (s[n / 2 - 1] + s[n / 2])
    }
}

// ---------------------------------------------------------------------------------------------

/// The project's `tiny-qwen2.5-vl` (mixed_r1_train::tiny::config with the Qwen tokenizer).
fn tiny_config() -> ModelConfig {
    ModelConfig {
        arch: Arch::Qwen25Vl,
        text: TextConfig {
            vocab_size: 151_680,
            hidden_size: 128,
            intermediate_size: 256,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            num_key_value_heads: 2,
            head_dim: 32,
            rms_norm_eps: 1e-6,
            rope_theta: 10_000.0,
            max_position_embeddings: 4096,
            tie_word_embeddings: true,
            qkv_bias: true,
            mrope_section: Some(vec![4, 6, 6]),
            mrope_interleaved: false,
            qk_norm: false,
            bos_token_id: None,
            eos_token_ids: vec![151_645, 151_643],
        },
        vision: Some(VisionConfig {
            depth: 2,
            hidden_size: 64,
            num_heads: 2,
            intermediate_size: 128,
            out_hidden_size: 128,
            patch_size: 14,
            spatial_merge_size: 2,
            temporal_patch_size: 2,
            window_size: 56,
            fullatt_block_indexes: vec![1],
            in_channels: 3,
            rms_norm_eps: 1e-6,
        }),
        image_token_id: Some(151_655),
        video_token_id: Some(151_656),
        vision_start_token_id: Some(151_652),
        vision_end_token_id: Some(151_653),
        raw: None,
    }
}

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn prepare(args: &[String]) -> Res<()> {
    let dir = PathBuf::from(flag(args, "--dir").ok_or("--dir DIR")?);
    let which = flag(args, "--config").unwrap_or_else(|| "tiny".into());
    let b: usize = flag(args, "--batch")
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(8);
    let p: usize = flag(args, "--prompt")
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(64);
    let c: usize = flag(args, "--completion")
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(64);
    let model_dir = dir.join("model");
    let model = match which.as_str() {
        "tiny" => Model::random(tiny_config(), 7, &LoadOptions::default())?,
        "fixture" => Model::load(&fixtures().join("tiny-qwen2_5_vl"), &LoadOptions::default())?,
        other => return Err(format!("unknown config {other} (tiny, fixture)").into()),
    };
    model.save(&model_dir)?;
    let cfg = &model.config;
    let (img, vs, ve) = (
        cfg.image_token_id.ok_or("no image token")?,
        cfg.vision_start_token_id.ok_or("no vision start")?,
        cfg.vision_end_token_id.ok_or("no vision end")?,
    );
    // Ordinary token ids: below every special id of either config.
    let hi = if cfg.text.vocab_size <= 512 {
        500
    } else {
        151_643
    };
    let mut rng = ChaCha8Rng::seed_from_u64(2024);
    let n_img = 6; // grid [1, 4, 6] merged 2x2
    let mut prompts = Vec::new();
    let mut completions = Vec::new();
    for _ in 0..b {
        let before = 8;
        let after = p - before - n_img - 2;
        let mut row: Vec<u32> = (0..before).map(|_| rng.random_range(3..hi)).collect();
        row.push(vs);
        row.extend(std::iter::repeat_n(img, n_img));
        row.push(ve);
        row.extend((0..after).map(|_| rng.random_range(3..hi)));
        prompts.push(row);
        completions.push(
            (0..c)
                .map(|_| rng.random_range(3..hi))
                .collect::<Vec<u32>>(),
        );
    }
    let inputs = json!({
        "config": which,
        "model_dir": model_dir,
        "pixel_values_file": fixtures().join("reference.safetensors"),
        "pixel_values_key": "processor.img_84x56.pixel_values",
        "image_grid_thw": [1, 4, 6],
        "image_token_id": img,
        "video_token_id": cfg.video_token_id,
        "batch": b,
        "prompt_len": p,
        "completion_len": c,
        "prompts": prompts,
        "completions": completions,
    });
    std::fs::write(dir.join("inputs.json"), serde_json::to_string(&inputs)?)?;
    eprintln!(
        "wrote {} and {}",
        model_dir.display(),
        dir.join("inputs.json").display()
    );
    Ok(())
}

fn ids(v: &Value) -> Vec<Vec<u32>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u32)
                .collect()
        })
        .collect()
}

fn run(args: &[String]) -> Res<()> {
    let dir = PathBuf::from(flag(args, "--dir").ok_or("--dir DIR")?);
    let iters: usize = flag(args, "--iters")
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(10);
    let warmup: usize = flag(args, "--warmup")
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(2);
    let guard = !args.iter().any(|a| a == "--no-guard");
    let inputs: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("inputs.json"))?)?;
    let rss_start = peak_rss_mib();
    let t = Instant::now();
    let model = Model::load(
        Path::new(inputs["model_dir"].as_str().unwrap()),
        &LoadOptions::default(),
    )?;
    let load_s = t.elapsed().as_secs_f64();
    let tensors: HashMap<String, Tensor> = candle_core::safetensors::load(
        inputs["pixel_values_file"].as_str().unwrap(),
        &Device::Cpu,
    )?;
    let pv = tensors[inputs["pixel_values_key"].as_str().unwrap()].clone();
    let g = inputs["image_grid_thw"].as_array().unwrap();
    let grid = [0, 1, 2].map(|i| g[i].as_u64().unwrap() as usize);
    let prompts = ids(&inputs["prompts"]);
    let completions = ids(&inputs["completions"]);
    let seqs: Vec<Sequence> = prompts
        .iter()
        .zip(&completions)
        .map(|(p, c)| Sequence {
            prompt: p.clone(),
            completion: c.clone(),
            images: Some(ImageInputs {
                pixel_values: pv.clone(),
                grids: vec![grid],
            }),
        })
        .collect();
    let b = seqs.len();
    let tokens: usize = seqs
        .iter()
        .map(|s| s.prompt.len() + s.completion.len())
        .sum();
    let ctoks: usize = seqs.iter().map(|s| s.completion.len()).sum();
    let (n_params, _) = model.params().count();

    let mut times = Vec::new();
    let mut fwd = Vec::new();
    let mut bwd = Vec::new();
    let mut foreign = Vec::new();
    let mut waited = Vec::new();
    let mut losses = Vec::new();
    // Wait for a quiet machine before the first iteration and after any disturbed one (not
    // before every iteration: idle seconds between iterations would cool caches and let an
    // allocator hand memory back, which a training loop never sees).
    let mut disturbed = true;
    for it in 0..warmup + iters {
        waited.push(if guard && disturbed {
            wait_quiet()
        } else {
            0.0
        });
        let m = Meter::start();
        let t0 = Instant::now();
        let out = completion_logprobs(&model, &seqs, 1.0, true, false)?;
        let loss = (out.logprobs.sum_all()? / (ctoks as f64))?.neg()?;
        let t1 = Instant::now();
        let grads = loss.backward()?;
        drop(grads);
        let t2 = Instant::now();
        let (wall, _, f) = m.stop();
        // /proc/stat counts in 10 ms ticks: ignore less than two of them.
        disturbed = f >= 0.02 && f >= 0.05 * wall;
        let l = loss.to_scalar::<f32>()?;
        eprintln!(
            "iter {it}: {:.4}s (fwd {:.4} bwd {:.4}) loss {l:.5} foreign_cpu {f:.2}s",
            (t2 - t0).as_secs_f64(),
            (t1 - t0).as_secs_f64(),
            (t2 - t1).as_secs_f64()
        );
        times.push((t2 - t0).as_secs_f64());
        fwd.push((t1 - t0).as_secs_f64());
        bwd.push((t2 - t1).as_secs_f64());
        foreign.push(f);
        losses.push(l);
    }
    let s = median(&times[warmup..]);
    let quiet: Vec<f64> = times
        .iter()
        .zip(&foreign)
        .skip(warmup)
        .filter(|(t, f)| **f < 0.02 || **f < 0.05 * **t)
        .map(|(t, _)| *t)
        .collect();
    let res = json!({
        "impl": "mixed-r1 (candle, f32)",
        "config": inputs["config"],
        "threads": std::env::var("RAYON_NUM_THREADS").unwrap_or_default(),
        "allocator": allocator(),
        "batch": b,
        "tokens_per_iter": tokens,
        "completion_tokens_per_iter": ctoks,
        "params": n_params,
        "load_s": load_s,
        "iter_s_all": times,
        "fwd_s_all": fwd,
        "bwd_s_all": bwd,
        "foreign_cpu_s": foreign,
        "guard_wait_s": waited,
        "iter_s_median": s,
        "iter_s_median_quiet": if quiet.is_empty() { None } else { Some(median(&quiet)) },
        "quiet_iters": quiet.len(),
        "fwd_s_median": median(&fwd[warmup..]),
        "bwd_s_median": median(&bwd[warmup..]),
        "tokens_per_s": tokens as f64 / s,
        "loss": losses[0],
        "peak_rss_mib": peak_rss_mib(),
        "rss_mib_at_start": rss_start,
    });
    println!("{}", serde_json::to_string_pretty(&res)?);
    Ok(())
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("prepare") => prepare(&args[1..]),
        Some("run") => run(&args[1..]),
        _ => Err("usage: train_fwd_bwd_bench prepare|run --dir DIR [...]".into()),
    }
}
