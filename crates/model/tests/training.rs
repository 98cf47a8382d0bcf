//! The training forward: gradients reach every trainable weight, agree with finite
//! differences, and the log-probs equal the sampler's; freezing, reference copies and saving.

mod common;

use candle_core::{DType, Tensor};
use common::*;
use mixed_r1_model::generate::{generate, Prompt, SamplingConfig};
use mixed_r1_model::logprobs::{completion_logprobs, Sequence};
use mixed_r1_model::model::{Batch, ImageInputs, LoadOptions, Model};
use mixed_r1_model::params::Params;

fn vl(dtype: DType) -> Model {
    let opts = LoadOptions {
        dtype,
        ..Default::default()
    };
    Model::load(&fixtures().join("tiny-qwen2_5_vl"), &opts).unwrap()
}

fn image() -> ImageInputs {
    ImageInputs {
        pixel_values: tensors()["processor.img_84x56.pixel_values"].clone(),
        grids: vec![[1, 4, 6]],
    }
}

/// One prompt with the 84x56 image (6 merged tokens) and one text-only prompt.
fn sequences() -> Vec<Sequence> {
    let mut with_image = vec![11, 12, 502];
    with_image.extend([500; 6]);
    with_image.extend([503, 13, 14]);
    vec![
        Sequence {
            prompt: with_image,
            completion: vec![40, 41, 42, 43],
            images: Some(image()),
        },
        Sequence {
            prompt: vec![21, 22, 23, 24, 25],
            completion: vec![50, 51],
            images: None,
        },
    ]
}

/// An advantage-weighted log-likelihood: the shape of a policy-gradient loss.
fn loss(model: &Model) -> Tensor {
    let out = completion_logprobs(model, &sequences(), 1.0, true, false).unwrap();
    let adv = Tensor::new(&[[1.0f32], [-0.5]], model.device())
        .unwrap()
        .to_dtype(out.logprobs.dtype())
        .unwrap();
    out.logprobs
        .broadcast_mul(&adv)
        .unwrap()
        .sum_all()
        .unwrap()
        .neg()
        .unwrap()
}

#[test]
fn every_trainable_weight_gets_a_nonzero_gradient() {
    let model = vl(DType::F32);
    let grads = loss(&model).backward().unwrap();
    let trainable = model.params().trainable();
    assert_eq!(trainable.len(), model.params().len());
    let mut missing = Vec::new();
    for (name, var) in &trainable {
        match grads.get(var.as_tensor()) {
            Some(g)
                if g.abs()
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap()
                    > 0.0 => {}
            _ => missing.push(name.clone()),
        }
    }
    assert!(missing.is_empty(), "no gradient for {missing:?}");
}

#[test]
fn gradients_agree_with_finite_differences() {
    // f64 end to end so the central difference is accurate.
    let model = vl(DType::F64);
    let grads = loss(&model).backward().unwrap();
    let probes = [
        ("model.layers.0.self_attn.q_proj.weight", vec![3usize, 5]),
        ("model.layers.1.mlp.down_proj.weight", vec![7, 9]),
        ("visual.patch_embed.proj.weight", vec![2, 1, 0, 3, 4]),
        ("visual.blocks.0.attn.qkv.weight", vec![10, 4]),
        ("model.embed_tokens.weight", vec![40, 6]),
    ];
    for (name, idx) in probes {
        let var = model.params().var(name).unwrap().clone();
        let flat_index = {
            let dims = var.dims();
            idx.iter().zip(dims).fold(0, |acc, (i, d)| acc * d + i)
        };
        let analytic = grads
            .get(var.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap()[flat_index];
        let base = var
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        let eps = 1e-5;
        let eval = |delta: f64| {
            let mut v = base.clone();
            v[flat_index] += delta;
            var.set(&Tensor::from_vec(v, var.dims(), model.device()).unwrap())
                .unwrap();
            loss(&model).to_scalar::<f64>().unwrap()
        };
        let numeric = (eval(eps) - eval(-eps)) / (2.0 * eps);
        var.set(&Tensor::from_vec(base, var.dims(), model.device()).unwrap())
            .unwrap();
        let rel = (analytic - numeric).abs() / analytic.abs().max(numeric.abs()).max(1e-8);
        assert!(
            rel < 1e-4,
            "{name}{idx:?}: analytic {analytic:e} vs numeric {numeric:e} (rel {rel:e})"
        );
        assert!(analytic.abs() > 1e-8, "{name}{idx:?}: gradient is zero");
    }
}

#[test]
fn training_logprobs_equal_the_samplers_logprobs() {
    let model = vl(DType::F32);
    let seqs = sequences();
    let prompts: Vec<Prompt> = seqs
        .iter()
        .map(|s| Prompt {
            ids: s.prompt.clone(),
            images: s.images.clone(),
            seed: None,
        })
        .collect();
    let cfg = SamplingConfig {
        max_new_tokens: 6,
        temperature: 0.9,
        top_p: 0.95,
        top_k: 50,
        seed: 7,
        stop_token_ids: vec![],
        ignore_eos: false,
        banned_token_ids: Vec::new(),
    };
    let gens = generate(&model, &prompts, &cfg).unwrap();
    // Seeded: the same call gives the same tokens.
    assert_eq!(gens, generate(&model, &prompts, &cfg).unwrap());
    let replay: Vec<Sequence> = seqs
        .iter()
        .zip(&gens)
        .map(|(s, g)| Sequence {
            prompt: s.prompt.clone(),
            completion: g.tokens.clone(),
            images: s.images.clone(),
        })
        .collect();
    let out = completion_logprobs(&model, &replay, 0.9, false, false).unwrap();
    let lp = out.logprobs.to_vec2::<f32>().unwrap();
    for (row, g) in gens.iter().enumerate() {
        assert!(!g.tokens.is_empty());
        for (j, want) in g.logprobs.iter().enumerate() {
            let d = (lp[row][j] - want).abs();
            assert!(d < 1e-4, "row {row} token {j}: {} vs {want}", lp[row][j]);
        }
    }
}

#[test]
fn frozen_vision_gets_no_gradient_and_reference_copy_is_independent() {
    let mut model = vl(DType::F32);
    let n = model.freeze_vision().unwrap();
    assert!(n > 0);
    let grads = loss(&model).backward().unwrap();
    for (name, var) in model.params().all() {
        let has = grads.get(var.as_tensor()).is_some();
        assert_eq!(has, !name.starts_with("visual."), "{name}");
    }
    let reference = model.reference_copy().unwrap();
    assert!(reference.params().trainable().is_empty());
    let before = loss(&reference).to_scalar::<f32>().unwrap();
    // Changing the policy leaves the reference as it was.
    let var = model.params().var("model.norm.weight").unwrap();
    var.set(&(var.as_tensor() * 2.0).unwrap()).unwrap();
    assert_eq!(loss(&reference).to_scalar::<f32>().unwrap(), before);
    assert_ne!(loss(&model).to_scalar::<f32>().unwrap(), before);
}

#[test]
fn saved_folder_loads_back_with_identical_logits() {
    let model = vl(DType::F32);
    let dir = tempfile::tempdir().unwrap();
    model.save(dir.path()).unwrap();
    for f in [
        "config.json",
        "model.safetensors",
        "generation_config.json",
        "preprocessor_config.json",
    ] {
        assert!(dir.path().join(f).is_file(), "{f} missing");
    }
    let again = Model::load(dir.path(), &LoadOptions::default()).unwrap();
    let mut batch = Batch::left_padded(&[sequences()[0].prompt.clone()], 0);
    batch.images = Some(image());
    let a = model.logits(&batch, false).unwrap();
    let b = again.logits(&batch, false).unwrap();
    assert_eq!(max_diff_masked(&a, &b, &batch.mask), 0.0);
}

#[test]
fn random_models_from_a_config_are_seeded_and_run() {
    let cfg = vl(DType::F32).config.clone();
    let mut cfg = cfg;
    cfg.raw = None;
    let a = Model::random(cfg.clone(), 3, &LoadOptions::default()).unwrap();
    let b = Model::random(cfg.clone(), 3, &LoadOptions::default()).unwrap();
    let c = Model::random(cfg, 4, &LoadOptions::default()).unwrap();
    let seq = sequences();
    let la = completion_logprobs(&a, &seq, 1.0, false, false)
        .unwrap()
        .logprobs;
    let lb = completion_logprobs(&b, &seq, 1.0, false, false)
        .unwrap()
        .logprobs;
    let lc = completion_logprobs(&c, &seq, 1.0, false, false)
        .unwrap()
        .logprobs;
    assert_eq!(la.to_vec2::<f32>().unwrap(), lb.to_vec2::<f32>().unwrap());
    assert_ne!(la.to_vec2::<f32>().unwrap(), lc.to_vec2::<f32>().unwrap());
    // The std-0.02 init: embeddings are small, so nothing saturates.
    let e = a
        .params()
        .var("model.embed_tokens.weight")
        .unwrap()
        .as_tensor()
        .clone();
    let std = e
        .sqr()
        .unwrap()
        .mean_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
        .sqrt();
    assert!((std - 0.02).abs() < 0.002, "embedding std {std}");
    let _ = Params::new(DType::F32, candle_core::Device::Cpu);
}

/// Decoding with the KV cache (prefill, then one token at a time, the cache buffers growing from
/// nothing by doubling) gives the logits of one full forward over the whole sequence.
#[test]
fn kv_cache_decoding_equals_the_full_forward() {
    use mixed_r1_model::decoder::KvCache;
    let model = vl(DType::F32);
    let seqs = vec![
        vec![21u32, 22, 23, 24, 25, 30, 31, 32, 33, 34, 35, 36],
        vec![11u32, 12, 13, 40, 41, 42, 43, 44, 45, 46, 47, 48],
    ];
    let full = Batch::left_padded(&seqs, 0);
    let (pos, _) = model.positions(&full).unwrap();
    let want = model.logits(&full, false).unwrap();
    for reserve in [0, 4, 64] {
        let mut cache = if reserve == 0 {
            KvCache::new()
        } else {
            KvCache::with_capacity(reserve)
        };
        let prefill = 5;
        let part = |from: usize, n: usize| Batch {
            ids: seqs.iter().map(|s| s[from..from + n].to_vec()).collect(),
            mask: vec![vec![1; n]; seqs.len()],
            images: None,
        };
        let mut keys: Vec<Vec<u8>> = vec![vec![1; prefill]; seqs.len()];
        let h = model
            .hidden_with_keys(
                &part(0, prefill),
                &pos.narrow(2, 0, prefill).unwrap(),
                &keys,
                Some(&mut cache),
                false,
            )
            .unwrap();
        let mut got = vec![model.head(&h, false).unwrap()];
        for i in prefill..seqs[0].len() {
            keys.iter_mut().for_each(|k| k.push(1));
            let h = model
                .hidden_with_keys(
                    &part(i, 1),
                    &pos.narrow(2, i, 1).unwrap(),
                    &keys,
                    Some(&mut cache),
                    false,
                )
                .unwrap();
            got.push(model.head(&h, false).unwrap());
        }
        assert_eq!(cache.len(), seqs[0].len());
        let got = Tensor::cat(&got, 1).unwrap();
        let diff = (got - &want)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff < 1e-4, "reserve {reserve}: max diff {diff}");
    }
}

/// Rollouts never emit image / video placeholders or vision boundaries (issue 17): banned
/// tokens are redrawn, greedy skips them, and the recorded log-probs still equal the training
/// forward's (the ban is a truncation, like top-k).
#[test]
fn banned_tokens_are_never_sampled_and_logprobs_still_match_training() {
    let model = vl(DType::F32);
    let vision = model.vision_token_ids();
    for id in [
        model.config.image_token_id,
        model.config.vision_start_token_id,
    ] {
        assert!(vision.contains(&id.unwrap()), "{vision:?}");
    }
    let seqs = sequences();
    let prompts: Vec<Prompt> = seqs
        .iter()
        .map(|s| Prompt {
            ids: s.prompt.clone(),
            images: s.images.clone(),
            seed: None,
        })
        .collect();
    let mut cfg = SamplingConfig {
        max_new_tokens: 16,
        temperature: 1.0,
        seed: 3,
        ignore_eos: true,
        ..Default::default()
    };
    // Ban what this policy likes most: every token a free run and a greedy run emit.
    let free = generate(&model, &prompts, &cfg).unwrap();
    let greedy_free = generate(&model, &prompts, &SamplingConfig::greedy(16)).unwrap();
    let mut banned = vision.clone();
    for g in free.iter().chain(&greedy_free) {
        banned.extend(&g.tokens);
    }
    banned.sort_unstable();
    banned.dedup();
    cfg.banned_token_ids = banned.clone();
    for cfg in [
        cfg.clone(),
        SamplingConfig {
            temperature: 0.0,
            ..cfg.clone()
        },
        SamplingConfig {
            top_k: 20,
            top_p: 0.9,
            ..cfg.clone()
        },
    ] {
        let gens = generate(&model, &prompts, &cfg).unwrap();
        let replay: Vec<Sequence> = seqs
            .iter()
            .zip(&gens)
            .map(|(s, g)| Sequence {
                prompt: s.prompt.clone(),
                completion: g.tokens.clone(),
                images: s.images.clone(),
            })
            .collect();
        let t = if cfg.temperature > 0.0 {
            cfg.temperature
        } else {
            1.0
        };
        let lp = completion_logprobs(&model, &replay, t, false, false)
            .unwrap()
            .logprobs
            .to_vec2::<f32>()
            .unwrap();
        for (row, g) in gens.iter().enumerate() {
            assert_eq!(g.tokens.len(), 16);
            for (j, tok) in g.tokens.iter().enumerate() {
                assert!(!banned.contains(tok), "row {row} sampled banned {tok}");
                let d = (lp[row][j] - g.logprobs[j]).abs();
                assert!(
                    d < 1e-4,
                    "row {row} token {j}: {} vs {}",
                    lp[row][j],
                    g.logprobs[j]
                );
            }
        }
    }
}
