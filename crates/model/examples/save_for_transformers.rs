//! Writes models built from scratch by this crate (random, seeded, config written by us) to
//! `OUT/<name>/` with the logits we compute in `OUT/<name>.expected.json`, for
//! `scripts/fixtures/model_fixtures.sh verify-saved OUT/<name> OUT/<name>.expected.json`,
//! which loads the folder in transformers and compares.
//!
//! `cargo run -p mixed-r1-model --release --example save_for_transformers -- OUT`

use std::path::PathBuf;

use mixed_r1_model::config::ModelConfig;
use mixed_r1_model::model::{Batch, LoadOptions, Model};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or("usage: save_for_transformers OUT")?,
    );
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for name in ["tiny-qwen2", "tiny-qwen2_5_vl"] {
        let mut cfg = ModelConfig::from_file(&fixtures.join(name).join("config.json"))?;
        cfg.raw = None; // write our own config.json, not the fixture's
        let model = Model::random(cfg, 11, &LoadOptions::default())?;
        let dir = out.join(name);
        model.save(&dir)?;
        let ids: Vec<Vec<u32>> = vec![vec![5, 17, 33, 250, 7, 99, 400, 12], vec![8, 9, 10, 11]];
        let batch = Batch::left_padded(&ids, 0);
        let logits = model.logits(&batch, false)?.to_vec3::<f32>()?;
        // Positions as we use them (count of real tokens before each one).
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
        std::fs::write(
            out.join(format!("{name}.expected.json")),
            serde_json::to_string(&expected)?,
        )?;
        println!("wrote {}", dir.display());
    }
    Ok(())
}
