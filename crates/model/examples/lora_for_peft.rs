//! Writes LoRA adapters made by this crate onto the tiny Qwen2 fixture (fresh adapters, then
//! moved off zero the way training moves them) to `OUT/<name>/`, with the logits we compute in
//! `OUT/<name>.expected.json`, for
//! `scripts/fixtures/lora_fixtures.sh verify-adapter BASE OUT/<name> OUT/<name>.expected.json`,
//! which loads the adapter with `peft.PeftModel.from_pretrained` and compares. It also writes
//! the merged folder (`OUT/<name>-merged/`) for `model_fixtures.sh verify-saved`.
//!
//! `cargo run -p mixed-r1-model --release --example lora_for_peft -- OUT`

use std::path::PathBuf;

use candle_core::Tensor;
use mixed_r1_model::lora::LoraConfig;
use mixed_r1_model::model::{Batch, LoadOptions, Model};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(std::env::args().nth(1).ok_or("usage: lora_for_peft OUT")?);
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-qwen2");
    let cases = [
        (
            "all-projections",
            LoraConfig {
                rank: 8,
                alpha: 16.0,
                ..Default::default()
            },
        ),
        (
            "attention-only-rslora",
            LoraConfig {
                rank: 4,
                alpha: 8.0,
                rslora: true,
                targets: vec![
                    "q_proj".into(),
                    "k_proj".into(),
                    "v_proj".into(),
                    "o_proj".into(),
                ],
                ..Default::default()
            },
        ),
        (
            "layer-1-mlp-glob",
            LoraConfig {
                rank: 2,
                alpha: 2.0,
                targets: vec!["model.layers.1.mlp.*".into()],
                ..Default::default()
            },
        ),
    ];
    for (name, cfg) in cases {
        let mut model = Model::load(&base, &LoadOptions::default())?;
        model.add_lora(&LoraConfig { seed: 5, ..cfg })?;
        for (n, var) in model.params().trainable() {
            if n.ends_with(".lora_B.weight") {
                var.set(&Tensor::randn(0f32, 0.05, var.dims(), var.device())?)?;
            }
        }
        let dir = out.join(name);
        model.save_adapter(&dir, Some(&base.display().to_string()))?;
        let ids: Vec<Vec<u32>> = vec![vec![5, 17, 33, 250, 7, 99, 400, 12], vec![8, 9, 10, 11]];
        let batch = Batch::left_padded(&ids, 0);
        let logits = model.logits(&batch, false)?.to_vec3::<f32>()?;
        let positions: Vec<Vec<i64>> = batch
            .mask
            .iter()
            .map(|m| {
                let mut c = 0i64;
                m.iter()
                    .map(|&v| {
                        let p = if v == 1 { c } else { 0 };
                        c += i64::from(v);
                        p
                    })
                    .collect()
            })
            .collect();
        let expected = serde_json::json!({
            "input_ids": batch.ids,
            "attention_mask": batch.mask,
            "position_ids": positions,
            "logits": logits,
        });
        let text = serde_json::to_string(&expected)?;
        std::fs::write(out.join(format!("{name}.expected.json")), &text)?;
        model.merge_lora()?;
        model.save(&out.join(format!("{name}-merged")))?;
        println!("wrote {}", dir.display());
    }
    Ok(())
}
