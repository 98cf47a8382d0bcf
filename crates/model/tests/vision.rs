//! The vision tower against transformers (tiny random Qwen2.5-VL, float32, eager attention),
//! its gradients, and a finite-difference check in f64.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor, Var};
use mixed_r1_model::config::{ModelConfig, VisionConfig};
use mixed_r1_model::params::Params;
use mixed_r1_model::vision::{window_index, VisionTower};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn reference() -> Value {
    let text = std::fs::read_to_string(fixtures().join("reference.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn tensors() -> HashMap<String, Tensor> {
    candle_core::safetensors::load(fixtures().join("reference.safetensors"), &Device::Cpu).unwrap()
}

fn vision_config() -> VisionConfig {
    ModelConfig::from_file(&fixtures().join("tiny-qwen2_5_vl/config.json"))
        .unwrap()
        .vision
        .unwrap()
}

fn params(dtype: DType) -> Params {
    let mut p = Params::new(DType::F32, Device::Cpu);
    p.load_safetensors(
        &[fixtures().join("tiny-qwen2_5_vl/model.safetensors")],
        |n| n.starts_with("visual."),
    )
    .unwrap();
    if dtype == DType::F32 {
        p
    } else {
        p.to_dtype(dtype).unwrap()
    }
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    (a.to_dtype(DType::F32).unwrap() - b.to_dtype(DType::F32).unwrap())
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

fn grid_84x56() -> [usize; 3] {
    let r = reference();
    let g = &r["logits"]["vl_image"]["image_grid_thw"][0];
    [0, 1, 2].map(|i| g[i].as_u64().unwrap() as usize)
}

#[test]
fn param_specs_match_the_checkpoint() {
    let r = reference();
    let keys = r["models"]["tiny-qwen2_5_vl"]["safetensors_keys"]
        .as_object()
        .unwrap();
    let want: Vec<(String, Vec<usize>)> = keys
        .iter()
        .filter(|(k, _)| k.starts_with("visual.") || k.starts_with("model.visual."))
        .map(|(k, v)| {
            let name = mixed_r1_model::params::canonical_name(k);
            let shape = v
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as usize)
                .collect();
            (name, shape)
        })
        .collect();
    let mut got: Vec<(String, Vec<usize>)> = VisionTower::param_specs(&vision_config())
        .into_iter()
        .map(|(n, s, _)| (n, s))
        .collect();
    let mut want = want;
    got.sort();
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn window_index_matches_transformers() {
    let r = reference();
    let v = &r["logits"]["vl_image"];
    let cfg = vision_config();
    let wi = window_index(
        &[grid_84x56()],
        cfg.spatial_merge_size,
        cfg.window_size,
        cfg.patch_size,
    );
    let want: Vec<usize> = v["window_index"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect();
    let want_cu: Vec<usize> = v["cu_window_seqlens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect();
    assert_eq!(wi.window_index, want);
    assert_eq!(wi.cu_window_seqlens, want_cu);
    // Qwen2.5-VL's real window (112 px = 4x4 merge units) on a 12x18 patch grid (6x9 units):
    // windows of 4x4, 4x4, 4x1, then 2x4, 2x4, 2x1 units; every unit exactly once.
    let wi = window_index(&[[1, 12, 18]], 2, 112, 14);
    let sizes: Vec<usize> = wi
        .cu_window_seqlens
        .windows(2)
        .map(|w| (w[1] - w[0]) / 4)
        .collect();
    assert_eq!(sizes, vec![16, 16, 4, 8, 8, 2]);
    let mut sorted = wi.window_index.clone();
    sorted.sort();
    assert_eq!(sorted, (0..54).collect::<Vec<_>>());
    assert_eq!(&wi.window_index[..5], &[0, 1, 2, 3, 9]);
}

#[test]
fn tower_matches_transformers() {
    let t = tensors();
    let tower = VisionTower::new(&vision_config(), &params(DType::F32)).unwrap();
    let pv = &t["vl_image.pixel_values"];
    assert_eq!(
        max_abs_diff(pv, &t["processor.img_84x56.pixel_values"]),
        0.0
    );
    let grids = [grid_84x56()];
    let trace = tower.forward_traced(pv, &grids, false).unwrap();
    let checks = [
        (
            "patch_embed",
            &trace.patch_embeds,
            &t["vl_image.patch_embed"],
        ),
        (
            "block 0 (windowed)",
            &trace.blocks[0],
            &t["vl_image.vision_block0"],
        ),
        (
            "last block (full)",
            trace.blocks.last().unwrap(),
            &t["vl_image.vision_block_last"],
        ),
        ("merged output", &trace.embeds, &t["vl_image.image_embeds"]),
    ];
    for (what, got, want) in checks {
        let d = max_abs_diff(got, want);
        eprintln!("{what}: max abs diff {d:e}");
        assert!(d <= 1e-4, "{what}: max abs diff {d}");
    }
    // forward == forward_traced's output; grad=true computes the same numbers.
    let plain = tower.forward(pv, &grids, false).unwrap();
    assert_eq!(max_abs_diff(&plain, &trace.embeds), 0.0);
    let tracked = tower.forward(pv, &grids, true).unwrap();
    let d = max_abs_diff(&tracked, &plain);
    assert!(d <= 1e-5, "grad path differs from the fused path by {d}");
    assert_eq!(tower.num_tokens(&grids), 6);
}

#[test]
fn images_in_a_batch_do_not_see_each_other() {
    let t = tensors();
    let tower = VisionTower::new(&vision_config(), &params(DType::F32)).unwrap();
    let a = &t["processor.img_84x56.pixel_values"];
    let b = &t["processor.img_300x200.pixel_values"];
    let c = &t["processor.img_30x40.pixel_values"];
    let (ga, gb, gc) = ([1, 4, 6], [1, 12, 18], [1, 6, 4]);
    let both = tower
        .forward(&Tensor::cat(&[a, b, c], 0).unwrap(), &[ga, gb, gc], false)
        .unwrap();
    let oa = tower.forward(a, &[ga], false).unwrap();
    let ob = tower.forward(b, &[gb], false).unwrap();
    let oc = tower.forward(c, &[gc], false).unwrap();
    assert_eq!(both.dims(), [6 + 54 + 6, 64]);
    let cat = Tensor::cat(&[&oa, &ob, &oc], 0).unwrap();
    let d = max_abs_diff(&both, &cat);
    assert!(d <= 1e-5, "batched vs alone: {d}");
    // The first image's tokens equal the reference whatever follows it.
    let d = max_abs_diff(&both.narrow(0, 0, 6).unwrap(), &t["vl_image.image_embeds"]);
    assert!(d <= 1e-4, "{d}");
}

#[test]
fn bad_inputs_are_errors() {
    let t = tensors();
    let tower = VisionTower::new(&vision_config(), &params(DType::F32)).unwrap();
    let pv = &t["vl_image.pixel_values"];
    assert!(tower.forward(pv, &[[1, 4, 4]], false).is_err());
    assert!(tower.forward(pv, &[[1, 3, 8]], false).is_err());
    assert!(tower.forward(pv, &[], false).is_err());
    // A missing weight is named.
    let mut p = Params::new(DType::F32, Device::Cpu);
    p.insert(
        "visual.patch_embed.proj.weight",
        &Tensor::zeros((32, 3, 2, 14, 14), DType::F32, &Device::Cpu).unwrap(),
    )
    .unwrap();
    let e = VisionTower::new(&vision_config(), &p)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("visual.blocks.0.norm1.weight"), "{e}");
}

#[test]
fn random_tower_runs() {
    let cfg = vision_config();
    let specs = VisionTower::param_specs(&cfg);
    let p = Params::random(&specs, 7, DType::F32, &Device::Cpu).unwrap();
    let tower = VisionTower::new(&cfg, &p).unwrap();
    let pv = Tensor::randn(0f32, 1.0, (16 + 24, 1176), &Device::Cpu).unwrap();
    let out = tower.forward(&pv, &[[1, 4, 4], [1, 4, 6]], false).unwrap();
    assert_eq!(out.dims(), [10, cfg.out_hidden_size]);
    let finite = out.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert!(finite.iter().all(|v| v.is_finite()));
}

#[test]
fn every_weight_gets_a_gradient() {
    let t = tensors();
    let p = params(DType::F32);
    let tower = VisionTower::new(&vision_config(), &p).unwrap();
    // Two images, so windowed and full attention both mix several segments.
    let pv = Tensor::cat(
        &[
            &t["processor.img_84x56.pixel_values"],
            &t["processor.img_100x75.pixel_values"],
        ],
        0,
    )
    .unwrap();
    let out = tower.forward(&pv, &[[1, 4, 6], [1, 6, 8]], true).unwrap();
    let loss = out.sqr().unwrap().sum_all().unwrap();
    let grads = loss.backward().unwrap();
    let mut n = 0;
    for (name, var) in p.all() {
        let g = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("{name}: no gradient"));
        assert_eq!(g.dims(), var.dims(), "{name}");
        let m = g
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(m > 0.0 && m.is_finite(), "{name}: max |grad| = {m}");
        n += 1;
    }
    assert_eq!(n, VisionTower::param_specs(&vision_config()).len());
    // Frozen weights get none.
    let mut frozen = p.clone();
    frozen.freeze_prefix("visual.blocks.0.");
    let tower = VisionTower::new(&vision_config(), &frozen).unwrap();
    let loss = tower
        .forward(&pv, &[[1, 4, 6], [1, 6, 8]], true)
        .unwrap()
        .sqr()
        .unwrap()
        .sum_all()
        .unwrap();
    let grads = loss.backward().unwrap();
    let var = frozen.var("visual.blocks.0.attn.qkv.weight").unwrap();
    assert!(grads.get(var.as_tensor()).is_none());
    let var = frozen.var("visual.blocks.1.attn.qkv.weight").unwrap();
    assert!(grads.get(var.as_tensor()).is_some());
}

fn set_element(var: &Var, index: usize, value: f64) {
    let shape = var.dims().to_vec();
    let mut v = var
        .as_tensor()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap();
    v[index] = value;
    var.set(&Tensor::from_vec(v, shape, &Device::Cpu).unwrap())
        .unwrap();
}

#[test]
fn gradients_agree_with_finite_differences_in_f64() {
    let t = tensors();
    let p = params(DType::F64);
    let cfg = vision_config();
    let tower = VisionTower::new(&cfg, &p).unwrap();
    let pv = t["processor.img_100x75.pixel_values"]
        .to_dtype(DType::F64)
        .unwrap();
    let grids = [[1, 6, 8]];
    let loss_of = |grad: bool| {
        tower
            .forward(&pv, &grids, grad)
            .unwrap()
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
    };
    let loss = loss_of(true);
    let grads = loss.backward().unwrap();
    for name in [
        "visual.patch_embed.proj.weight",
        "visual.blocks.0.attn.qkv.weight",
        "visual.blocks.1.attn.qkv.weight",
    ] {
        let var = p.var(name).unwrap();
        let g = grads
            .get(var.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        // The element with the largest gradient (a clear signal, far above f64 round-off)...
        let mut picks = vec![
            g.iter()
                .enumerate()
                .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
                .unwrap()
                .0,
        ];
        if name.contains("qkv") {
            // and the largest among the key rows (rows hidden..2*hidden), through the rotary
            let e = cfg.hidden_size;
            let k = (e * e..2 * e * e)
                .max_by(|&a, &b| g[a].abs().total_cmp(&g[b].abs()))
                .unwrap();
            picks.push(k);
        }
        for idx in picks {
            let orig = var
                .as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f64>()
                .unwrap()[idx];
            let h = 1e-4;
            set_element(var, idx, orig + h);
            let up = loss_of(false).to_scalar::<f64>().unwrap();
            set_element(var, idx, orig - h);
            let down = loss_of(false).to_scalar::<f64>().unwrap();
            set_element(var, idx, orig);
            let fd = (up - down) / (2.0 * h);
            let rel = (fd - g[idx]).abs() / fd.abs().max(g[idx].abs()).max(1e-12);
            eprintln!(
                "{name}[{idx}]: analytic {:e}, finite difference {fd:e}, rel {rel:e}",
                g[idx]
            );
            assert!(rel < 1e-3, "{name}[{idx}]: analytic {} vs fd {fd}", g[idx]);
        }
    }
}

#[test]
fn bf16_tower_runs_close_to_f32() {
    let t = tensors();
    let pv = &t["vl_image.pixel_values"];
    let grids = [grid_84x56()];
    let tower = VisionTower::new(&vision_config(), &params(DType::BF16)).unwrap();
    assert_eq!(tower.dtype(), DType::BF16);
    let out = tower.forward(pv, &grids, false).unwrap();
    assert_eq!(out.dtype(), DType::BF16);
    let want = &t["vl_image.image_embeds"];
    let scale = want
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    let d = max_abs_diff(&out, want);
    eprintln!("bf16 vs transformers f32: max abs diff {d:e} (max |ref| {scale})");
    assert!(d <= 0.02 * scale, "{d}");
    // And it trains: the graph has a backward in bf16 too.
    let loss = tower
        .forward(pv, &grids, true)
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap()
        .sqr()
        .unwrap()
        .sum_all()
        .unwrap();
    assert!(loss.backward().is_ok());
}
