//! Our forward pass against transformers' own outputs on the same weights (fixtures made by
//! scripts/fixtures/model_fixtures.py with transformers 5.23): logits within 1e-4 in f32.

mod common;

use candle_core::Tensor;
use common::*;
use mixed_r1_model::model::{Batch, ImageInputs, LoadOptions, Model};

fn load(name: &str) -> Model {
    Model::load(&fixtures().join(name), &LoadOptions::default()).unwrap()
}

/// The text-only parity tests run on `MIXED_R1_TEST_DEVICE` (default `cpu`; `cuda:0` with a
/// `--features cuda` build on a GPU, as bench/gpu/run.sh does), against the same fixtures.
fn load_on_test_device(name: &str) -> Model {
    let device = std::env::var("MIXED_R1_TEST_DEVICE").unwrap_or_else(|_| "cpu".into());
    let opts = LoadOptions::default()
        .with_device_name(&device)
        .unwrap_or_else(|e| panic!("MIXED_R1_TEST_DEVICE={device}: {e}"));
    Model::load(&fixtures().join(name), &opts).unwrap()
}

#[test]
fn tiny_qwen2_logits_match_transformers_with_left_padding() {
    let r = reference();
    let case = &r["logits"]["qwen2"];
    let model = load_on_test_device("tiny-qwen2");
    let batch = Batch {
        ids: ids2(&case["input_ids"]),
        mask: mask2(&case["attention_mask"]),
        images: None,
    };
    let ours = model.logits(&batch, false).unwrap();
    let theirs = &tensors()["qwen2.logits"];
    let d = max_diff_masked(&ours, theirs, &batch.mask);
    assert!(d <= 1e-4, "max abs diff {d}");
    // The differentiable path gives the same numbers.
    let ours_grad = model.logits(&batch, true).unwrap();
    let d = max_diff_masked(&ours_grad, theirs, &batch.mask);
    assert!(d <= 1e-4, "grad path max abs diff {d}");
}

#[test]
fn tiny_qwen2_5_vl_text_logits_match_transformers() {
    let r = reference();
    let case = &r["logits"]["vl_text"];
    let model = load_on_test_device("tiny-qwen2_5_vl");
    let batch = Batch {
        ids: ids2(&case["input_ids"]),
        mask: mask2(&case["attention_mask"]),
        images: None,
    };
    let ours = model.logits(&batch, false).unwrap();
    let d = max_diff_masked(&ours, &tensors()["vl_text.logits"], &batch.mask);
    assert!(d <= 1e-4, "max abs diff {d}");
}

fn image_batch(case: &serde_json::Value, pixels: &Tensor) -> Batch {
    let grids = case["image_grid_thw"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let g: Vec<usize> = g
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as usize)
                .collect();
            [g[0], g[1], g[2]]
        })
        .collect();
    Batch {
        ids: ids2(&case["input_ids"]),
        mask: mask2(&case["attention_mask"]),
        images: Some(ImageInputs {
            pixel_values: pixels.clone(),
            grids,
        }),
    }
}

#[test]
fn tiny_qwen2_5_vl_image_logits_match_transformers() {
    let r = reference();
    let t = tensors();
    let case = &r["logits"]["vl_image"];
    let model = load("tiny-qwen2_5_vl");
    let batch = image_batch(case, &t["vl_image.pixel_values"]);
    for grad in [false, true] {
        let ours = model.logits(&batch, grad).unwrap();
        let d = max_diff_masked(&ours, &t["vl_image.logits"], &batch.mask);
        assert!(d <= 1e-4, "grad={grad}: max abs diff {d}");
    }
}

#[test]
fn tiny_qwen2_5_vl_padded_batch_with_image_matches_transformers() {
    let r = reference();
    let t = tensors();
    let case = &r["rope_index"];
    let model = load("tiny-qwen2_5_vl");
    let batch = image_batch(case, &t["processor.img_84x56.pixel_values"]);
    let ours = model.logits(&batch, false).unwrap();
    let d = max_diff_masked(&ours, &t["vl_batch.logits"], &batch.mask);
    assert!(d <= 1e-4, "max abs diff {d}");
}
