//! Greedy generation and training forward + backward of `tiny-qwen3-vl` (the demo's Qwen3-VL
//! policy: a 2-block vision tower with a learned 8x8 position grid and DeepStack, a 2 x 128
//! decoder with q/k norms and interleaved M-RoPE, the real Qwen tokenizer's 151k vocabulary), one
//! 300 x 200 px image and a question.
//!
//! Generation: exactly N new tokens, batch 1 and batch 4. Training: the log-probs of those N
//! tokens after the prompt for a batch of 4, every weight trainable, `-mean(logprob)` and its
//! backward. The model is built from a seed and saved as a transformers folder under OUT/model;
//! the prompt's ids, pixel values, grid and the completion go to OUT/inputs.safetensors, so the
//! peer (bench/peers/qwen3_vl_bench.py) runs the same weights on the same inputs. Prints one JSON
//! object. Run by bench/model/qwen3_vl_bench.sh.
//!
//! `cargo run -p mixed-r1-train --release --example qwen3_vl_bench -- TOKENIZER OUT [N] [R]`

use std::path::PathBuf;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use mixed_r1_model::chat::Message;
use mixed_r1_model::generate::{generate, SamplingConfig};
use mixed_r1_model::logprobs::{completion_logprobs, Sequence};
use mixed_r1_model::model::LoadOptions;
use mixed_r1_train::tiny;

/// A deterministic picture with structure at every scale.
fn picture(w: u32, h: u32) -> image::DynamicImage {
    image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            (x * 255 / w) as u8,
            (y * 255 / h) as u8,
            (((x / 7) ^ (y / 5)) * 37 % 256) as u8,
        ])
    }))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: qwen3_vl_bench TOKENIZER OUT [N] [R]";
    let tokenizer = PathBuf::from(args.next().ok_or(usage)?);
    let out = PathBuf::from(args.next().ok_or(usage)?);
    let n: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(64);
    let repeats: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(3);

    let model = tiny::build("tiny-qwen3-vl", &tokenizer, 0, &LoadOptions::default())?;
    std::fs::create_dir_all(&out)?;
    model.save(&out.join("model"))?;
    let prompt = model.chat_prompt(
        &[
            Message::system("You are a helpful assistant."),
            Message::user_with_images(1, "How many red squares are in the picture?"),
        ],
        &[picture(300, 200)],
    )?;
    let images = prompt.images.clone().ok_or("the prompt lost its image")?;

    let cfg = SamplingConfig {
        ignore_eos: true,
        ..SamplingConfig::greedy(n)
    };
    let mut results = serde_json::Map::new();
    let mut completion = Vec::new();
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
        for _ in 0..repeats {
            let t = Instant::now();
            let g = generate(&model, &prompts, &cfg)?;
            times.push(t.elapsed().as_secs_f64());
            assert!(g.iter().all(|g| g.tokens.len() == n));
            completion = g[0].tokens.clone();
        }
        let m = median(times.clone());
        results.insert(
            format!("generate_batch{batch}"),
            serde_json::json!({
                "seconds": m,
                "tokens_per_s": (batch * n) as f64 / m,
                "runs": times,
                "first16": &completion[..completion.len().min(16)],
            }),
        );
    }

    // Training step: forward + backward over 4 x (prompt + N), every weight trainable.
    let seqs: Vec<Sequence> = (0..4)
        .map(|_| Sequence {
            prompt: prompt.ids.clone(),
            completion: completion.clone(),
            images: Some(images.clone()),
        })
        .collect();
    let step = || -> Result<(f64, f64), Box<dyn std::error::Error>> {
        let t = Instant::now();
        let lp = completion_logprobs(&model, &seqs, 1.0, true, false)?;
        let loss = ((lp.logprobs * &lp.mask)?.sum_all()?
            / lp.mask.sum_all()?.to_scalar::<f32>()? as f64)?
            .neg()?;
        let grads = model.backward(&loss)?;
        let secs = t.elapsed().as_secs_f64();
        assert!(grads.get_ids().count() > 0);
        Ok((secs, f64::from(loss.to_scalar::<f32>()?)))
    };
    let (_, loss) = step()?;
    let mut times = Vec::new();
    for _ in 0..repeats {
        times.push(step()?.0);
    }
    results.insert(
        "train_fwd_bwd_batch4".into(),
        serde_json::json!({
            "seconds": median(times.clone()),
            "runs": times,
            "tokens": 4 * (prompt.ids.len() + n),
            "loss": loss,
        }),
    );

    let ids: Vec<i64> = prompt.ids.iter().map(|&i| i as i64).collect();
    let comp: Vec<i64> = completion.iter().map(|&i| i as i64).collect();
    let grid: Vec<i64> = images.grids[0].iter().map(|&g| g as i64).collect();
    candle_core::safetensors::save(
        &std::collections::HashMap::from([
            (
                "input_ids".to_string(),
                Tensor::from_vec(ids, (1, prompt.ids.len()), &Device::Cpu)?,
            ),
            (
                "completion".to_string(),
                Tensor::from_vec(comp, (1, completion.len()), &Device::Cpu)?,
            ),
            (
                "image_grid_thw".to_string(),
                Tensor::from_vec(grid, (1, 3), &Device::Cpu)?,
            ),
            (
                "pixel_values".to_string(),
                images.pixel_values.to_dtype(DType::F32)?,
            ),
        ]),
        out.join("inputs.safetensors"),
    )?;
    let (total, _) = model.params().count();
    let report = serde_json::json!({
        "impl": "mixed-r1 (candle, f32)",
        "parameters": total,
        "prompt_tokens": prompt.ids.len(),
        "image_grid": images.grids[0],
        "new_tokens": n,
        "threads": std::env::var("RAYON_NUM_THREADS").unwrap_or_default(),
        "results": results,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
