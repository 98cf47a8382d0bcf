//! Greedy generation throughput of `tiny-internvl` (the demo's InternVL policy: InternViT 2 x 64,
//! pixel shuffle, MLP projector, Qwen2 2 x 128 with the real Qwen tokenizer's 151k vocabulary),
//! one image of 300 x 200 px (the tiny processor's 2 x 2 grid of 56 px tiles plus the thumbnail:
//! 5 tiles, 20 `<IMG_CONTEXT>` tokens) and a question, exactly N new tokens, batch 1 and batch 4.
//!
//! The model is built from a seed and saved as a transformers folder under OUT/model; the
//! prompt's ids and pixel values go to OUT/inputs.safetensors, so the peer
//! (bench/peers/internvl_generate_bench.py) runs the same weights on the same inputs. Prints one
//! JSON object. Run by bench/model/internvl_generate_bench.sh.
//!
//! `cargo run -p mixed-r1-train --release --example internvl_generate_bench -- TOKENIZER OUT [N] [R]`

use std::path::PathBuf;
use std::time::Instant;

use candle_core::{DType, Tensor};
use mixed_r1_model::chat::Message;
use mixed_r1_model::generate::{generate, SamplingConfig};
use mixed_r1_model::model::LoadOptions;
use mixed_r1_train::tiny;

/// A deterministic picture with structure at every scale (so tiles differ).
fn picture(w: u32, h: u32) -> image::DynamicImage {
    image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            (x * 255 / w) as u8,
            (y * 255 / h) as u8,
            (((x / 7) ^ (y / 5)) * 37 % 256) as u8,
        ])
    }))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: internvl_generate_bench TOKENIZER OUT [N] [R]";
    let tokenizer = PathBuf::from(args.next().ok_or(usage)?);
    let out = PathBuf::from(args.next().ok_or(usage)?);
    let n: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(64);
    let repeats: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(3);

    let model = tiny::build("tiny-internvl", &tokenizer, 0, &LoadOptions::default())?;
    std::fs::create_dir_all(&out)?;
    model.save(&out.join("model"))?;
    let prompt = model.chat_prompt(
        &[
            Message::system("You are a helpful assistant."),
            Message::user_with_images(1, "How many red squares are in the picture?"),
        ],
        &[picture(300, 200)],
    )?;
    let images = prompt.images.as_ref().ok_or("the prompt lost its image")?;
    let ids: Vec<i64> = prompt.ids.iter().map(|&i| i as i64).collect();
    let ids_t = Tensor::from_vec(ids, (1, prompt.ids.len()), &candle_core::Device::Cpu)?;
    candle_core::safetensors::save(
        &std::collections::HashMap::from([
            ("input_ids".to_string(), ids_t),
            (
                "pixel_values".to_string(),
                images.pixel_values.to_dtype(DType::F32)?,
            ),
        ]),
        out.join("inputs.safetensors"),
    )?;

    let cfg = SamplingConfig {
        ignore_eos: true,
        ..SamplingConfig::greedy(n)
    };
    let mut results = serde_json::Map::new();
    for batch in [1usize, 4] {
        let prompts = vec![prompt.clone(); batch];
        generate(
            &model,
            &prompts,
            &SamplingConfig {
                ignore_eos: true,
                ..SamplingConfig::greedy(4)
            },
        )?;
        let mut times = Vec::new();
        let mut first = Vec::new();
        for _ in 0..repeats {
            let t = Instant::now();
            let g = generate(&model, &prompts, &cfg)?;
            times.push(t.elapsed().as_secs_f64());
            assert!(g.iter().all(|g| g.tokens.len() == n));
            first = g[0].tokens.clone();
        }
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        results.insert(
            format!("batch{batch}"),
            serde_json::json!({
                "seconds": median,
                "tokens_per_s": (batch * n) as f64 / median,
                "runs": times,
                "first16": &first[..first.len().min(16)],
            }),
        );
    }
    let (total, _) = model.params().count();
    let report = serde_json::json!({
        "impl": "mixed-r1 (candle, f32)",
        "parameters": total,
        "prompt_tokens": prompt.ids.len(),
        "tiles": images.pixel_values.dim(0)?,
        "new_tokens": n,
        "threads": std::env::var("RAYON_NUM_THREADS").unwrap_or_default(),
        "results": results,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
