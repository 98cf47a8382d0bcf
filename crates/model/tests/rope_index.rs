//! Multimodal rotary position ids against transformers 5.23's `get_rope_index`.

use std::path::{Path, PathBuf};

use candle_core::Device;
use mixed_r1_model::config::ModelConfig;
use mixed_r1_model::rope_index::{rope_index, text_positions};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn reference() -> Value {
    let text = std::fs::read_to_string(fixtures().join("reference.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn config() -> ModelConfig {
    ModelConfig::from_file(&fixtures().join("tiny-qwen2_5_vl/config.json")).unwrap()
}

fn rows<T: TryFrom<u64>>(v: &Value) -> Vec<Vec<T>>
where
    T::Error: std::fmt::Debug,
{
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| T::try_from(x.as_u64().unwrap()).unwrap())
                .collect()
        })
        .collect()
}

fn grids(v: &Value) -> Vec<[usize; 3]> {
    rows::<u64>(v)
        .into_iter()
        .map(|g| [g[0] as usize, g[1] as usize, g[2] as usize])
        .collect()
}

fn positions(v: &Value) -> Vec<i64> {
    // [3][B][T]
    v.as_array()
        .unwrap()
        .iter()
        .flat_map(|a| a.as_array().unwrap().iter())
        .flat_map(|b| b.as_array().unwrap().iter())
        .map(|x| x.as_i64().unwrap())
        .collect()
}

fn deltas(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect()
}

#[test]
fn padded_batch_with_an_image_matches_transformers() {
    let r = &reference()["rope_index"];
    let ids: Vec<Vec<u32>> = rows(&r["input_ids"]);
    let mask: Vec<Vec<u8>> = rows(&r["attention_mask"]);
    let idx = rope_index(&ids, &mask, &grids(&r["image_grid_thw"]), &config()).unwrap();
    assert_eq!((idx.batch, idx.len), (2, 20));
    assert_eq!(idx.positions, positions(&r["position_ids"]));
    assert_eq!(idx.deltas, deltas(&r["rope_deltas"]));
    let t = idx.to_tensor(&Device::Cpu).unwrap();
    assert_eq!(t.dims(), [3, 2, 20]);
    let v = t.to_vec3::<f32>().unwrap();
    assert_eq!(v[1][0][10], idx.get(1, 0, 10) as f32);
    assert_eq!(idx.row(1)[0], (0..20).collect::<Vec<i64>>());
}

#[test]
fn single_image_prompt_matches_transformers() {
    let r = &reference()["logits"]["vl_image"];
    let ids: Vec<Vec<u32>> = rows(&r["input_ids"]);
    let mask: Vec<Vec<u8>> = rows(&r["attention_mask"]);
    let idx = rope_index(&ids, &mask, &grids(&r["image_grid_thw"]), &config()).unwrap();
    assert_eq!(idx.positions, positions(&r["position_ids"]));
    assert_eq!(idx.deltas, deltas(&r["rope_deltas"]));
}

#[test]
fn text_only_batches() {
    let mask = vec![vec![1u8; 5], vec![0, 0, 1, 1, 1]];
    let idx = text_positions(&mask);
    assert_eq!(idx.row(0)[2], vec![0, 1, 2, 3, 4]);
    // Masked slots hold 1 (transformers' text fallback); deltas count unmasked tokens.
    assert_eq!(idx.row(1)[0], vec![1, 1, 0, 1, 2]);
    assert_eq!(idx.deltas, vec![0, 0]);
    // The multimodal entry point falls back to it without images.
    let ids = vec![vec![7u32; 5], vec![0, 0, 7, 8, 9]];
    let via = rope_index(&ids, &mask, &[], &config()).unwrap();
    assert_eq!(via, idx);
    // A single real token after padding: the padded 1 is the row's max (transformers' quirk).
    let idx = text_positions(&[vec![0, 0, 1]]);
    assert_eq!(idx.row(0)[1], vec![1, 1, 0]);
    assert_eq!(idx.deltas, vec![1]);
}

#[test]
fn rows_without_images_in_an_image_batch_count_up() {
    let cfg = config();
    let img = cfg.image_token_id.unwrap();
    let (vs, ve) = (
        cfg.vision_start_token_id.unwrap(),
        cfg.vision_end_token_id.unwrap(),
    );
    // Row 0: text, a 2x2-token image (grid 1x4x4), text. Row 1: right-padded text.
    let ids = vec![
        vec![5, vs, img, img, img, img, ve, 6, 7],
        vec![5, 6, 7, 8, 9, 10, 0, 0, 0],
    ];
    let mask = vec![vec![1u8; 9], vec![1, 1, 1, 1, 1, 1, 0, 0, 0]];
    let idx = rope_index(&ids, &mask, &[[1, 4, 4]], &cfg).unwrap();
    assert_eq!(idx.row(0)[0], vec![0, 1, 2, 2, 2, 2, 4, 5, 6]);
    assert_eq!(idx.row(0)[1], vec![0, 1, 2, 2, 3, 3, 4, 5, 6]);
    assert_eq!(idx.row(0)[2], vec![0, 1, 2, 3, 2, 3, 4, 5, 6]);
    assert_eq!(idx.row(1)[1], vec![0, 1, 2, 3, 4, 5, 0, 0, 0]);
    assert_eq!(idx.deltas, vec![7 - 9, 0]);
}

#[test]
fn inconsistent_inputs_are_errors() {
    let cfg = config();
    let img = cfg.image_token_id.unwrap();
    let video = cfg.video_token_id.unwrap();
    let ids = vec![vec![5, img, img, 6]];
    let mask = vec![vec![1u8; 4]];
    // Two image tokens but the grid needs 4.
    let e = rope_index(&ids, &mask, &[[1, 4, 4]], &cfg)
        .unwrap_err()
        .to_string();
    assert!(e.contains("needs 4"), "{e}");
    // Image tokens without a grid.
    assert!(rope_index(&ids, &mask, &[], &cfg).is_err());
    // A grid left over.
    let e = rope_index(&ids, &mask, &[[1, 2, 4], [1, 2, 2]], &cfg)
        .unwrap_err()
        .to_string();
    assert!(e.contains("2 image grids"), "{e}");
    // Video is not supported.
    let e = rope_index(
        &[vec![5, video, 6]],
        &mask[..1]
            .iter()
            .map(|m| m[..3].to_vec())
            .collect::<Vec<_>>(),
        &[],
        &cfg,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("video"), "{e}");
    // Ragged rows.
    assert!(rope_index(&[vec![1, 2], vec![1]], &[vec![1, 1], vec![1]], &[], &cfg).is_err());
}
