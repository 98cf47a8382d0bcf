//! Qwen3-VL against transformers' own `Qwen3VLForConditionalGeneration` and the
//! `Qwen2VLImageProcessorPil` its processor uses, on the same tiny random weights (fixtures made by
//! scripts/fixtures/qwen3_vl_fixtures.py with transformers 5.23, f32, eager attention).
//!
//! The tiny config covers what is new in Qwen3-VL: patch 16 (32 px merge unit), a 4x4 learned
//! position grid interpolated to every image's grid, `gelu_pytorch_tanh`, DeepStack from two
//! vision blocks into the first two of three decoder layers, q/k RMSNorm, an explicit head_dim,
//! interleaved M-RoPE whose height / width sections end before the last frequencies.
//!
//! Processor pixel values bit for bit and grids equal; rope index equal; logits within 1e-4 (text,
//! one image, two images, a left-padded batch with two images) on the no-grad and the training
//! paths; greedy ids equal; a gradient on every weight (checked against finite differences in
//! f64), the same gradients under gradient checkpointing; a saved folder that reloads bit-exact
//! and that transformers reads (when its venv is there, as the other parity tests).

mod common;

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use common::*;
use mixed_r1_model::generate::{generate, Prompt, SamplingConfig};
use mixed_r1_model::model::{Batch, ImageInputs, LoadOptions, Model};
use mixed_r1_model::rope_index::rope_index;
use serde_json::Value;

const CASES: [&str; 4] = ["text", "one_image", "two_images", "batch"];
const NAME: &str = "tiny-qwen3-vl";

fn q3_reference() -> Value {
    let text = std::fs::read_to_string(fixtures().join("qwen3_vl_reference.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn q3_tensors() -> HashMap<String, Tensor> {
    candle_core::safetensors::load(
        fixtures().join("qwen3_vl_reference.safetensors"),
        &Device::Cpu,
    )
    .unwrap()
}

fn load(dtype: DType) -> Model {
    let opts = LoadOptions {
        dtype,
        ..Default::default()
    };
    Model::load(&fixtures().join(NAME), &opts).unwrap()
}

fn grid(r: &Value, name: &str) -> [usize; 3] {
    let g = r["grids"][name].as_array().unwrap();
    std::array::from_fn(|i| g[i].as_u64().unwrap() as usize)
}

/// The fixture case as a batch, with transformers' pixel values for its images.
fn case_batch(r: &Value, case: &Value, t: &HashMap<String, Tensor>) -> Batch {
    let names: Vec<&str> = case["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let images = (!names.is_empty()).then(|| {
        let pv: Vec<&Tensor> = names
            .iter()
            .map(|n| &t[&format!("processor.{n}")])
            .collect();
        ImageInputs {
            pixel_values: Tensor::cat(&pv, 0).unwrap(),
            grids: names.iter().map(|n| grid(r, n)).collect(),
        }
    });
    Batch {
        ids: ids2(&case["input_ids"]),
        mask: mask2(&case["attention_mask"]),
        images,
    }
}

#[test]
fn config_reads_the_qwen3_vl_switches() {
    let model = load(DType::F32);
    let c = &model.config;
    assert_eq!(c.arch, mixed_r1_model::config::Arch::Qwen3Vl);
    assert!(c.takes_images() && c.uses_mrope());
    assert!(c.text.qk_norm && c.text.mrope_interleaved && !c.text.qkv_bias);
    assert_eq!(c.text.head_dim, 32);
    assert_eq!(c.text.mrope_section, Some(vec![8, 4, 4]));
    assert_eq!(c.spatial_merge_size(), Some(2));
    let p = model.processor.as_ref().unwrap();
    assert_eq!((p.patch_size, p.merge_size, p.factor()), (16, 2, 32));
    assert_eq!(p.image_mean, [0.5; 3]);
}

#[test]
fn processor_pixel_values_and_grids_match_transformers_exactly() {
    let r = q3_reference();
    let t = q3_tensors();
    let model = load(DType::F32);
    let p = model.processor.as_ref().unwrap();
    let grids = r["grids"].as_object().unwrap();
    assert_eq!(grids.len(), 5);
    for name in grids.keys() {
        let img = image::open(fixtures().join("images").join(name)).unwrap();
        let out = p.process(std::slice::from_ref(&img), &Device::Cpu).unwrap();
        assert_eq!(out.grids, vec![grid(&r, name)], "{name}");
        let want = &t[&format!("processor.{name}")];
        assert_eq!(out.pixel_values.dims(), want.dims(), "{name}");
        let got = out
            .pixel_values
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let want = want.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let differ = got
            .iter()
            .zip(&want)
            .filter(|(a, b)| a.to_bits() != b.to_bits())
            .count();
        assert_eq!(differ, 0, "{name}: {differ} values differ");
    }
}

#[test]
fn rope_index_matches_transformers_exactly() {
    let r = q3_reference();
    let t = q3_tensors();
    let model = load(DType::F32);
    for case in ["one_image", "two_images", "batch"] {
        let c = &r["cases"][case];
        let batch = case_batch(&r, c, &t);
        let grids = batch.images.as_ref().unwrap().grids.clone();
        let ri = rope_index(&batch.ids, &batch.mask, &grids, &model.config).unwrap();
        let want = c["rope_positions"].as_array().unwrap();
        for (axis, rows) in want.iter().enumerate() {
            for (b, row) in rows.as_array().unwrap().iter().enumerate() {
                let got: Vec<i64> = (0..ri.len).map(|i| ri.get(axis, b, i)).collect();
                let want: Vec<i64> = row
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_i64().unwrap())
                    .collect();
                assert_eq!(got, want, "{case} axis {axis} row {b}");
            }
        }
        let deltas: Vec<i64> = c["rope_deltas"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_i64().unwrap())
            .collect();
        assert_eq!(ri.deltas, deltas, "{case}");
    }
}

#[test]
fn logits_match_transformers_for_every_case_and_both_paths() {
    let r = q3_reference();
    let t = q3_tensors();
    let model = load(DType::F32);
    for case in CASES {
        let batch = case_batch(&r, &r["cases"][case], &t);
        let want = &t[&format!("{case}.logits")];
        for grad in [false, true] {
            let ours = model.logits(&batch, grad).unwrap();
            assert_eq!(ours.dims(), want.dims(), "{case}");
            let d = max_diff_masked(&ours, want, &batch.mask);
            assert!(d <= 1e-4, "{case} grad={grad}: max abs diff {d}");
        }
    }
}

#[test]
fn greedy_generation_matches_transformers() {
    let r = q3_reference();
    let t = q3_tensors();
    let model = load(DType::F32);
    let vision_start = r["ids"]["vision_start"].as_u64().unwrap() as u32;
    for case in ["text", "one_image", "batch"] {
        let c = &r["cases"][case];
        let batch = case_batch(&r, c, &t);
        let images = batch.images.as_ref();
        let (mut next_image, mut patch_offset) = (0usize, 0usize);
        let prompts: Vec<Prompt> = batch
            .ids
            .iter()
            .zip(&batch.mask)
            .map(|(row, m)| {
                let ids: Vec<u32> = row
                    .iter()
                    .zip(m)
                    .filter(|(_, &v)| v == 1)
                    .map(|(&i, _)| i)
                    .collect();
                let n = ids.iter().filter(|&&i| i == vision_start).count();
                let imgs = (n > 0).then(|| {
                    let im = images.unwrap();
                    let grids = im.grids[next_image..next_image + n].to_vec();
                    let k: usize = grids.iter().map(|g| g[0] * g[1] * g[2]).sum();
                    let pv = im.pixel_values.narrow(0, patch_offset, k).unwrap();
                    next_image += n;
                    patch_offset += k;
                    ImageInputs {
                        pixel_values: pv,
                        grids,
                    }
                });
                Prompt {
                    ids,
                    images: imgs,
                    seed: None,
                }
            })
            .collect();
        let out = generate(&model, &prompts, &SamplingConfig::greedy(8)).unwrap();
        let got: Vec<Vec<u32>> = out.iter().map(|g| g.tokens.clone()).collect();
        assert_eq!(got, ids2(&c["greedy_new_ids"]), "{case}");
    }
}

fn grad_norms(model: &Model, batch: &Batch) -> Vec<(String, Vec<f64>)> {
    let loss = weighted_sum(model, batch);
    let grads = model.backward(&loss).unwrap();
    model
        .params()
        .trainable()
        .into_iter()
        .map(|(name, var)| {
            let g = grads
                .get(var.as_tensor())
                .map(|g| g.flatten_all().unwrap().to_vec1::<f64>().unwrap())
                .unwrap_or_default();
            (name, g)
        })
        .collect()
}

#[test]
fn training_forward_reaches_every_weight_and_agrees_with_finite_differences() {
    let r = q3_reference();
    let t = q3_tensors();
    // f64, so the finite differences are exact enough to compare closely.
    let mut model = load(DType::F64);
    let batch = case_batch(&r, &r["cases"]["batch"], &t);
    let plain = grad_norms(&model, &batch);
    assert!(plain.len() > 60, "{}", plain.len());
    for (name, g) in &plain {
        let norm: f64 = g.iter().map(|x| x * x).sum();
        assert!(norm > 0.0 && norm.is_finite(), "no gradient on {name}");
    }
    // Gradient checkpointing: the DeepStack layers run plainly, the rest are recomputed; the
    // gradients are the same.
    model.set_gradient_checkpointing(true);
    let ckpt = grad_norms(&model, &batch);
    model.set_gradient_checkpointing(false);
    for ((name, a), (_, b)) in plain.iter().zip(&ckpt) {
        assert_eq!(a.len(), b.len(), "{name}");
        let worst = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs() / x.abs().max(1e-8))
            .fold(0.0f64, f64::max);
        assert!(
            worst < 1e-6,
            "{name}: checkpointed gradient differs by {worst}"
        );
    }
    // Central differences on single scalars of what is new in Qwen3-VL.
    check_finite_differences(
        &model,
        &batch,
        &[
            ("visual.pos_embed.weight", 37),
            ("visual.deepstack_merger_list.1.linear_fc2.weight", 91),
            ("visual.deepstack_merger_list.0.norm.weight", 5),
            ("visual.patch_embed.proj.bias", 3),
            ("model.layers.0.self_attn.q_norm.weight", 7),
            ("model.layers.2.self_attn.k_norm.weight", 30),
        ],
        "qwen3-vl",
    );
}

#[test]
fn saved_folder_reloads_and_transformers_reads_it() {
    let r = q3_reference();
    let t = q3_tensors();
    let model = load(DType::F32);
    let dir = tempfile::tempdir().unwrap();
    model.save(dir.path()).unwrap();
    // transformers 5's layout for Qwen3-VL.
    let names =
        candle_core::safetensors::load(dir.path().join("model.safetensors"), &Device::Cpu).unwrap();
    for key in [
        "model.language_model.embed_tokens.weight",
        "model.language_model.layers.0.self_attn.q_norm.weight",
        "model.visual.pos_embed.weight",
        "model.visual.deepstack_merger_list.1.linear_fc2.bias",
        "lm_head.weight",
    ] {
        assert!(names.contains_key(key), "{key} not saved");
    }
    assert!(dir.path().join("preprocessor_config.json").is_file());
    let back = Model::load(dir.path(), &LoadOptions::default()).unwrap();
    assert_eq!(back.processor, model.processor);
    let batch = case_batch(&r, &r["cases"]["batch"], &t);
    let a = model.logits(&batch, false).unwrap();
    let b = back.logits(&batch, false).unwrap();
    assert_eq!(max_diff_masked(&a, &b, &batch.mask), 0.0);

    let Some(venv) = torch_venv() else {
        // The torch venv is a developer tool (scripts/fixtures); CI checks the Rust side only.
        eprintln!("not running transformers on the saved folder: no torch venv");
        return;
    };
    verify_saved("qwen3_vl_fixtures.sh", dir.path(), &[], &venv);
}

#[test]
fn lora_adapts_decoder_and_vision_tower_and_trains() {
    use mixed_r1_model::lora::LoraConfig;
    let r = q3_reference();
    let t = q3_tensors();
    let mut model = load(DType::F32);
    let n = model
        .add_lora(&LoraConfig {
            rank: 4,
            vision: true,
            ..Default::default()
        })
        .unwrap();
    let modules = model.adapted_modules();
    assert_eq!(n, modules.len());
    for m in [
        "model.layers.0.self_attn.q_proj",
        "visual.blocks.0.attn.qkv",
        "visual.blocks.2.mlp.linear_fc1",
        "visual.blocks.2.mlp.linear_fc2",
    ] {
        assert!(
            modules.iter().any(|x| x == m),
            "{m} not adapted: {modules:?}"
        );
    }
    // Fresh adapters (B = 0) leave the logits as they were.
    let batch = case_batch(&r, &r["cases"]["batch"], &t);
    let want = &t["batch.logits"];
    let d = max_diff_masked(&model.logits(&batch, true).unwrap(), want, &batch.mask);
    assert!(d <= 1e-4, "{d}");
    // Every B matrix (the only nonzero gradient at B = 0) of every adapted module is reached.
    let loss = weighted_sum(&model, &batch);
    let grads = model.backward(&loss).unwrap();
    let trainable = model.params().trainable();
    let bs: Vec<_> = trainable
        .iter()
        .filter(|(n, _)| n.contains("lora_B"))
        .collect();
    assert_eq!(bs.len(), modules.len());
    for (name, var) in bs {
        let g = grads.get(var.as_tensor()).expect(name);
        let norm = g
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(norm > 0.0, "no gradient on {name}");
    }
    // The adapter saves in PEFT's layout under transformers' module names.
    let dir = tempfile::tempdir().unwrap();
    model.save_adapter(dir.path(), None).unwrap();
    let saved =
        candle_core::safetensors::load(dir.path().join("adapter_model.safetensors"), &Device::Cpu)
            .unwrap();
    assert!(saved.keys().any(
        |k| k.starts_with("base_model.model.model.language_model.layers.0.self_attn.q_proj.lora_A")
    ));
    assert!(saved
        .keys()
        .any(|k| k.starts_with("base_model.model.model.visual.blocks.0.attn.qkv.lora_B")));
}
