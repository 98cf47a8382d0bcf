//! InternVL against transformers' own `InternVLForConditionalGeneration` and
//! `GotOcr2ImageProcessorPil` on the same tiny random weights (fixtures made by
//! scripts/fixtures/internvl_fixtures.py with transformers 5.23, f32, eager attention), for both
//! variants: `tiny-internvl` (LayerNorm, q/k/v bias, untied head) and `tiny-internvl-qknorm`
//! (RMSNorm, qk-norm, a final LayerNorm, `vision_feature_layer` -2, tied head, 84 px tiles on
//! 56 px position embeddings, so interpolated).
//!
//! Processor tiles bit for bit, `<IMG_CONTEXT>` expansion equal to the fixture's ids, logits
//! within 1e-4 (text, one tile, several tiles, a left-padded batch), greedy ids equal, a
//! gradient on every weight the forward uses (checked against finite differences in f64), and
//! a saved folder that reloads (and that transformers reads, when its venv is there).

mod common;

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use common::*;
use mixed_r1_model::generate::{generate, Prompt, SamplingConfig};
use mixed_r1_model::internvl::InternVlConfig;
use mixed_r1_model::internvl_processor::{expand_image_tokens, InternVlProcessor};
use mixed_r1_model::model::{Batch, ImageInputs, LoadOptions, Model};
use mixed_r1_model::tokenizer::Tokenizer;
use serde_json::Value;

const VARIANTS: [&str; 2] = ["tiny-internvl", "tiny-internvl-qknorm"];
const CASES: [&str; 4] = ["text", "one_image", "several_tiles", "batch"];

fn iv_reference() -> Value {
    let text = std::fs::read_to_string(fixtures().join("internvl_reference.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn iv_tensors() -> HashMap<String, Tensor> {
    candle_core::safetensors::load(
        fixtures().join("internvl_reference.safetensors"),
        &Device::Cpu,
    )
    .unwrap()
}

fn load(variant: &str, dtype: DType) -> Model {
    let opts = LoadOptions {
        dtype,
        ..Default::default()
    };
    Model::load(&fixtures().join(variant), &opts).unwrap()
}

/// The fixture case as a batch: its left-padded ids and mask, and the processor pixel values
/// transformers computed for its images, one `[tiles, 1, 1]` grid per image.
fn case_batch(variant: &str, case: &Value, t: &HashMap<String, Tensor>, tiles: &Value) -> Batch {
    let names: Vec<&str> = case["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let images = (!names.is_empty()).then(|| {
        let pv: Vec<&Tensor> = names
            .iter()
            .map(|n| &t[&format!("{variant}.processor.{n}")])
            .collect();
        ImageInputs {
            pixel_values: Tensor::cat(&pv, 0).unwrap(),
            grids: names
                .iter()
                .map(|n| [tiles[*n].as_u64().unwrap() as usize, 1, 1])
                .collect(),
        }
    });
    Batch {
        ids: ids2(&case["input_ids"]),
        mask: mask2(&case["attention_mask"]),
        images,
    }
}

#[test]
fn processor_tiles_and_pixel_values_match_transformers_exactly() {
    let r = iv_reference();
    let t = iv_tensors();
    for variant in VARIANTS {
        let entry = &r["variants"][variant];
        let model = load(variant, DType::F32);
        let p = model.internvl_processor.as_ref().unwrap();
        // The folder's preprocessor_config.json is what the model uses.
        let from_file = InternVlProcessor::from_file(
            &fixtures().join(variant).join("preprocessor_config.json"),
            p.tokens_per_tile,
        )
        .unwrap();
        assert_eq!(p, &from_file);
        let tiles = entry["tiles"].as_object().unwrap();
        assert_eq!(tiles.len(), 5);
        for (name, want_tiles) in tiles {
            let img = image::open(fixtures().join("images").join(name)).unwrap();
            let (h, w) = (img.height() as usize, img.width() as usize);
            let out = p.process(std::slice::from_ref(&img), &Device::Cpu).unwrap();
            let want_tiles = want_tiles.as_u64().unwrap() as usize;
            assert_eq!(out.tiles, vec![want_tiles], "{variant}/{name}");
            assert_eq!(p.num_tiles(h, w), want_tiles, "{variant}/{name}");
            let want = &t[&format!("{variant}.processor.{name}")];
            assert_eq!(out.pixel_values.dims(), want.dims(), "{variant}/{name}");
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
            assert_eq!(differ, 0, "{variant}/{name}: {differ} values differ");
        }
    }
}

/// A word-level tokenizer over the tiny vocabulary (`t<id>` for ids below 500) with InternVL's
/// three image tokens as added special tokens at the fixture's ids.
fn tiny_tokenizer(ids: &Value) -> Tokenizer {
    let vocab: serde_json::Map<String, Value> = (0..500)
        .map(|i| (format!("t{i}"), Value::from(i)))
        .collect();
    let added: Vec<Value> = [
        ("<IMG_CONTEXT>", "img_context"),
        ("<img>", "img_start"),
        ("</img>", "img_end"),
    ]
    .iter()
    .map(|(content, key)| {
        serde_json::json!({"id": ids[*key], "content": content, "single_word": false,
            "lstrip": false, "rstrip": false, "normalized": false, "special": true})
    })
    .collect();
    let json = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": added,
        "normalizer": null, "pre_tokenizer": {"type": "WhitespaceSplit"},
        "post_processor": null, "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "t0"},
    });
    Tokenizer::from_json(&json.to_string()).unwrap()
}

#[test]
fn image_token_expansion_gives_the_fixture_ids() {
    let r = iv_reference();
    let tok = tiny_tokenizer(&r["ids"]);
    for variant in VARIANTS {
        let entry = &r["variants"][variant];
        let model = load(variant, DType::F32);
        let cfg = InternVlConfig::from_model_config(&model.config).unwrap();
        let p = model.internvl_processor.as_ref().unwrap();
        // image_seq_length agrees with what a tile of the processor's size gives.
        let per_tile = entry["tokens_per_tile"].as_u64().unwrap() as usize;
        assert_eq!(cfg.image_seq_length, per_tile);
        assert_eq!(cfg.tokens_per_tile(p.tile), per_tile);
        assert_eq!(p.tokens_per_tile, per_tile);
        let tiles = |names: &[&str]| -> Vec<usize> {
            names
                .iter()
                .map(|n| {
                    let img = image::open(fixtures().join("images").join(n)).unwrap();
                    p.num_tiles(img.height() as usize, img.width() as usize)
                })
                .collect()
        };
        // The prompts of scripts/fixtures/internvl_fixtures.py `cases`, one placeholder per image.
        let texts: [(&str, Vec<&str>, Vec<&str>); 4] = [
            ("text", vec!["t1 t5 t6 t7 t8 t9 t10 t11 t12 t13"], vec![]),
            (
                "one_image",
                vec!["t1 t11 t12 <IMG_CONTEXT> t13 t14 t15"],
                vec!["img_56x56.png"],
            ),
            (
                "several_tiles",
                vec!["t1 t21 <IMG_CONTEXT> t22 t23 t24 t25"],
                vec!["img_300x200.png"],
            ),
            (
                "batch",
                vec![
                    "t1 t31 t32 <IMG_CONTEXT> t33",
                    "t1 t41 t42 t43 t44 t45",
                    "t1 t51 <IMG_CONTEXT> t52 t53 t54 t55 t56",
                ],
                vec!["img_30x40.png", "img_84x56.png"],
            ),
        ];
        for (case, rows, images) in texts {
            let want = ids2(&entry["cases"][case]["input_ids"]);
            let mut counts = tiles(&images).into_iter();
            let mut ours = Vec::new();
            for row in rows {
                let n = row.matches("<IMG_CONTEXT>").count();
                let mine: Vec<usize> = counts.by_ref().take(n).collect();
                let text = expand_image_tokens(row, &mine, p.tokens_per_tile).unwrap();
                ours.push(tok.encode(&text).unwrap());
            }
            let batch = Batch::left_padded(&ours, r["ids"]["pad"].as_u64().unwrap() as u32);
            assert_eq!(batch.ids, want, "{variant}/{case}");
            assert_eq!(
                batch.mask,
                mask2(&entry["cases"][case]["attention_mask"]),
                "{variant}/{case}"
            );
        }
    }
}

#[test]
fn logits_match_transformers_for_every_case_and_both_paths() {
    let r = iv_reference();
    let t = iv_tensors();
    for variant in VARIANTS {
        let entry = &r["variants"][variant];
        let model = load(variant, DType::F32);
        for case in CASES {
            let batch = case_batch(variant, &entry["cases"][case], &t, &entry["tiles"]);
            let want = &t[&format!("{variant}.{case}.logits")];
            for grad in [false, true] {
                let ours = model.logits(&batch, grad).unwrap();
                assert_eq!(ours.dims(), want.dims(), "{variant}/{case}");
                let d = max_diff_masked(&ours, want, &batch.mask);
                assert!(d <= 1e-4, "{variant}/{case} grad={grad}: max abs diff {d}");
            }
        }
    }
}

#[test]
fn greedy_generation_matches_transformers() {
    let r = iv_reference();
    let t = iv_tensors();
    let pad = r["ids"]["pad"].as_u64().unwrap() as u32;
    for variant in VARIANTS {
        let entry = &r["variants"][variant];
        let model = load(variant, DType::F32);
        for case in ["several_tiles", "batch"] {
            let c = &entry["cases"][case];
            let batch = case_batch(variant, c, &t, &entry["tiles"]);
            // One prompt per row, unpadded, with its own images (in order).
            let images = batch.images.as_ref();
            let mut next_image = 0usize;
            let mut tile_offset = 0usize;
            let img_ctx = r["ids"]["img_context"].as_u64().unwrap() as u32;
            let img_start = r["ids"]["img_start"].as_u64().unwrap() as u32;
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
                    assert!(!ids.contains(&pad) || pad == img_ctx);
                    let n = ids.iter().filter(|&&i| i == img_start).count();
                    let imgs = (n > 0).then(|| {
                        let im = images.unwrap();
                        let grids = im.grids[next_image..next_image + n].to_vec();
                        let k: usize = grids.iter().map(|g| g[0]).sum();
                        let pv = im.pixel_values.narrow(0, tile_offset, k).unwrap();
                        next_image += n;
                        tile_offset += k;
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
            assert_eq!(got, ids2(&c["greedy_new_ids"]), "{variant}/{case}");
        }
    }
}

/// Weights the forward does not use: with `vision_feature_layer` -2 the last encoder layer and
/// the final LayerNorm only feed hidden states transformers never reads.
fn unused(variant: &str, name: &str) -> bool {
    variant == "tiny-internvl-qknorm"
        && (name.starts_with("vision_tower.encoder.layer.2.")
            || name.starts_with("vision_tower.layernorm."))
}

#[test]
fn training_forward_reaches_every_weight_and_agrees_with_finite_differences() {
    let r = iv_reference();
    let t = iv_tensors();
    for variant in VARIANTS {
        let entry = &r["variants"][variant];
        // f64, so the finite differences are exact enough to compare closely.
        let model = load(variant, DType::F64);
        let batch = case_batch(variant, &entry["cases"]["batch"], &t, &entry["tiles"]);
        let loss = weighted_sum(&model, &batch);
        let grads = model.backward(&loss).unwrap();
        let trainable = model.params().trainable();
        assert!(trainable.len() > 50, "{variant}: {}", trainable.len());
        let mut reached = 0;
        for (name, var) in &trainable {
            let g = grads.get(var.as_tensor());
            let norm = g
                .map(|g| {
                    g.sqr()
                        .unwrap()
                        .sum_all()
                        .unwrap()
                        .to_scalar::<f64>()
                        .unwrap()
                })
                .unwrap_or(0.0);
            if unused(variant, name) {
                assert_eq!(norm, 0.0, "{variant}: {name} is unused but has a gradient");
            } else {
                assert!(
                    norm > 0.0 && norm.is_finite(),
                    "{variant}: no gradient on {name}"
                );
                reached += 1;
            }
        }
        assert!(reached > 50);
        // Central differences on single scalars of the vision side (the part new here).
        let mut picks = vec![
            ("vision_tower.encoder.layer.0.lambda_1", 3usize),
            ("multi_modal_projector.linear_1.weight", 17),
            ("vision_tower.embeddings.position_embeddings", 40),
        ];
        if variant == "tiny-internvl-qknorm" {
            picks.push(("vision_tower.encoder.layer.1.attention.q_norm.weight", 5));
        }
        check_finite_differences(&model, &batch, &picks, variant);
    }
}

#[test]
fn saved_folder_reloads_and_transformers_reads_it() {
    let r = iv_reference();
    let t = iv_tensors();
    for variant in VARIANTS {
        let entry = &r["variants"][variant];
        let model = load(variant, DType::F32);
        let dir = tempfile::tempdir().unwrap();
        model.save(dir.path()).unwrap();
        // transformers' file layout: the language model under `language_model.`, no tied head.
        let names =
            candle_core::safetensors::load(dir.path().join("model.safetensors"), &Device::Cpu)
                .unwrap();
        assert!(names.contains_key("language_model.model.embed_tokens.weight"));
        assert!(names.contains_key("vision_tower.embeddings.cls_token"));
        assert!(names.contains_key("multi_modal_projector.linear_2.bias"));
        assert_eq!(
            names.contains_key("language_model.lm_head.weight"),
            variant == "tiny-internvl"
        );
        assert!(dir.path().join("preprocessor_config.json").is_file());
        let back = Model::load(dir.path(), &LoadOptions::default()).unwrap();
        assert_eq!(back.internvl_processor, model.internvl_processor);
        let batch = case_batch(variant, &entry["cases"]["batch"], &t, &entry["tiles"]);
        let a = model.logits(&batch, false).unwrap();
        let b = back.logits(&batch, false).unwrap();
        assert_eq!(max_diff_masked(&a, &b, &batch.mask), 0.0, "{variant}");

        let Some(venv) = torch_venv() else {
            eprintln!("skipping transformers' check of the saved {variant}: no torch venv");
            continue;
        };
        verify_saved(
            "internvl_fixtures.sh",
            dir.path(),
            &["--variant", variant],
            &venv,
        );
    }
}
