//! Schedules, gradient norms and clipping, gradient accumulation, and AdamW against
//! `torch.optim.AdamW`'s update computed by hand.

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};
use mixed_r1_grpo::optim::{
    clip_grad_norm, default_no_decay, grad_norm, AdamW, AdamWConfig, GradAccumulator, LrSchedule,
    ScheduleKind,
};

fn sched(kind: ScheduleKind) -> LrSchedule {
    LrSchedule {
        kind,
        lr: 1e-3,
        warmup_steps: 10,
        total_steps: 110,
        min_lr_ratio: 0.1,
    }
}

fn close(a: f64, b: f64, what: &str) {
    assert!(
        (a - b).abs() <= 1e-12 + 1e-9 * b.abs(),
        "{what}: {a} vs {b}"
    );
}

#[test]
fn cosine_schedule_values() {
    let s = sched(ScheduleKind::Cosine);
    // warm-up s / 10; then 0.1 + 0.9 * 0.5 * (1 + cos(pi * (s - 10) / 100)).
    close(s.lr_at(0), 0.0, "step 0");
    close(s.lr_at(5), 5e-4, "step 5");
    close(s.lr_at(10), 1e-3, "end of warm-up");
    // p = 0.25: 0.1 + 0.45 * (1 + 0.7071068) = 0.8681981
    close(s.lr_at(35), 8.681980515339464e-4, "step 35");
    // p = 0.5: 0.1 + 0.45 = 0.55
    close(s.lr_at(60), 5.5e-4, "step 60");
    close(s.lr_at(110), 1e-4, "end");
    close(s.lr_at(500), 1e-4, "past the end stays at min");
}

#[test]
fn constant_and_linear_schedules() {
    let c = sched(ScheduleKind::Constant);
    close(c.lr_at(3), 3e-4, "constant warm-up");
    close(c.lr_at(10), 1e-3, "constant");
    close(c.lr_at(1000), 1e-3, "constant");
    let l = sched(ScheduleKind::Linear);
    // p = 0.5: 0.1 + 0.9 * 0.5
    close(l.lr_at(60), 5.5e-4, "linear mid");
    close(l.lr_at(110), 1e-4, "linear end");
    close(LrSchedule::constant(0.5).lr_at(0), 0.5, "no warm-up");
}

fn store(pairs: &[(&Var, Tensor)]) -> GradStore {
    let mut g = GradStore::default();
    for (v, t) in pairs {
        g.insert(v.as_tensor(), t.clone());
    }
    g
}

#[test]
fn grad_norm_and_clipping() {
    let d = Device::Cpu;
    let a = Var::from_slice(&[0.0f32, 0.0], 2, &d).unwrap();
    let b = Var::from_slice(&[0.0f32], (1, 1), &d).unwrap();
    let unused = Var::from_slice(&[0.0f32], 1, &d).unwrap();
    let vars = vec![a.clone(), b.clone(), unused];
    // grads (3, 4) and (12): norm sqrt(9 + 16 + 144) = 13
    let mk = || {
        store(&[
            (&a, Tensor::from_slice(&[3.0f32, 4.0], 2, &d).unwrap()),
            (&b, Tensor::from_slice(&[12.0f32], (1, 1), &d).unwrap()),
        ])
    };
    let mut g = mk();
    close(grad_norm(&g, &vars).unwrap(), 13.0, "norm");
    // max 20 > 13: untouched, returns the norm.
    close(
        clip_grad_norm(&mut g, &vars, 20.0).unwrap(),
        13.0,
        "pre-clip norm",
    );
    assert_eq!(
        g.get(a.as_tensor()).unwrap().to_vec1::<f32>().unwrap(),
        vec![3.0, 4.0]
    );
    // max 6.5: scaled by 6.5 / (13 + 1e-6) -> (1.5, 2, 6) up to 1e-7.
    let mut g = mk();
    close(
        clip_grad_norm(&mut g, &vars, 6.5).unwrap(),
        13.0,
        "pre-clip norm",
    );
    let ga = g.get(a.as_tensor()).unwrap().to_vec1::<f32>().unwrap();
    let gb = g
        .get(b.as_tensor())
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let coef = 6.5 / (13.0 + 1e-6);
    for (got, want) in ga
        .iter()
        .chain(&gb)
        .zip([3.0 * coef, 4.0 * coef, 12.0 * coef])
    {
        assert!((*got as f64 - want).abs() < 1e-6, "{got} vs {want}");
    }
    // 13 * 6.5 / (13 + 1e-6), in f32 gradients.
    let post = grad_norm(&g, &vars).unwrap();
    assert!((post - 6.4999995).abs() < 1e-6, "post-clip norm {post}");
    // Non-finite norm: reported, nothing scaled.
    let mut g = store(&[(&a, Tensor::from_slice(&[f32::NAN, 1.0], 2, &d).unwrap())]);
    assert!(clip_grad_norm(&mut g, &vars, 1.0).unwrap().is_nan());
    assert_eq!(
        g.get(a.as_tensor()).unwrap().to_vec1::<f32>().unwrap()[1],
        1.0
    );
}

#[test]
fn grad_accumulator_sums_micro_batches() {
    // loss = sum(w * x) over two micro-batches equals one pass over both.
    let d = Device::Cpu;
    let w = Var::from_slice(&[0.5f32, -1.0], 2, &d).unwrap();
    let x1 = Tensor::from_slice(&[1.0f32, 2.0], 2, &d).unwrap();
    let x2 = Tensor::from_slice(&[3.0f32, -1.0], 2, &d).unwrap();
    let mut acc = GradAccumulator::new(vec![w.clone()]);
    for x in [&x1, &x2] {
        let loss = w.as_tensor().mul(x).unwrap().sum_all().unwrap();
        acc.add(loss.backward().unwrap()).unwrap();
    }
    assert_eq!(acc.micro_batches(), 2);
    let g = acc.grads();
    assert_eq!(
        g.get(w.as_tensor()).unwrap().to_vec1::<f32>().unwrap(),
        vec![4.0, 1.0]
    );
    acc.reset();
    assert!(acc.grads().get(w.as_tensor()).is_none());
}

/// torch.optim.AdamW(lr=0.1, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01) on θ = (1, -2)
/// with gradients (0.5, -1), (0.1, 0.2), (-0.3, 0.4), computed by hand in f64 with torch's
/// single-tensor update. Step 1 for θ_0:
///   θ = 1 * (1 - 0.1 * 0.01) = 0.999; m = 0.05; v = 0.00025;
///   denom = sqrt(0.00025) / sqrt(1 - 0.999) + 1e-8 = 0.5 + 1e-8;
///   θ -= (0.1 / (1 - 0.9)) * 0.05 / denom = 0.1  ->  0.899000002
const TORCH_THETA: [[f64; 2]; 3] = [
    [0.899000002, -1.898000001],
    [0.8177969063826517, -1.8449993939894944],
    [0.7959078148551253, -1.8297304348131664],
];
const TORCH_M3: [f64; 2] = [0.0195, -0.023];
const TORCH_V3: [f64; 2] = [0.00034949025, 0.001197961];
const GRADS: [[f32; 2]; 3] = [[0.5, -1.0], [0.1, 0.2], [-0.3, 0.4]];

fn adamw_cfg() -> AdamWConfig {
    AdamWConfig {
        lr: 0.1,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.01,
        no_decay: Vec::new(),
    }
}

#[test]
fn adamw_matches_torch_formula() {
    let d = Device::Cpu;
    let theta = Var::from_slice(&[1.0f32, -2.0], 2, &d).unwrap();
    let mut opt = AdamW::new(vec![("w".into(), theta.clone())], adamw_cfg()).unwrap();
    for (step, g) in GRADS.iter().enumerate() {
        let grads = store(&[(&theta, Tensor::from_slice(g, 2, &d).unwrap())]);
        opt.step(&grads).unwrap();
        let got = theta.as_tensor().to_vec1::<f32>().unwrap();
        for j in 0..2 {
            let want = TORCH_THETA[step][j];
            assert!(
                (got[j] as f64 - want).abs() < 2e-6,
                "step {}: θ[{j}] = {}, torch {want}",
                step + 1,
                got[j]
            );
        }
    }
    let (m, v, t) = opt.param_state("w").unwrap();
    assert_eq!(t, 3);
    let (m, v) = (m.to_vec1::<f32>().unwrap(), v.to_vec1::<f32>().unwrap());
    for j in 0..2 {
        assert!((m[j] as f64 - TORCH_M3[j]).abs() < 1e-7, "m {m:?}");
        assert!((v[j] as f64 - TORCH_V3[j]).abs() < 1e-9, "v {v:?}");
    }
    assert_eq!(opt.steps_taken(), 3);
}

#[test]
fn adamw_skips_params_without_grad_and_follows_schedule() {
    let d = Device::Cpu;
    let a = Var::from_slice(&[1.0f32], 1, &d).unwrap();
    let b = Var::from_slice(&[1.0f32], 1, &d).unwrap();
    let mut opt = AdamW::new(
        vec![("a".into(), a.clone()), ("b".into(), b.clone())],
        AdamWConfig {
            weight_decay: 0.0,
            ..adamw_cfg()
        },
    )
    .unwrap()
    .with_schedule(LrSchedule {
        kind: ScheduleKind::Constant,
        lr: 0.1,
        warmup_steps: 2,
        total_steps: 10,
        min_lr_ratio: 1.0,
    });
    // Step 0 of a 2-step warm-up has lr 0: nothing moves, but moments and t advance.
    let g = store(&[(&a, Tensor::from_slice(&[1.0f32], 1, &d).unwrap())]);
    opt.step(&g).unwrap();
    assert_eq!(opt.learning_rate(), 0.0);
    assert_eq!(a.as_tensor().to_vec1::<f32>().unwrap(), vec![1.0]);
    // Step 1: lr 0.05; m = 0.19, v = 0.001999, bias-corrected m̂ = 1, v̂ = 1 -> θ = 1 - 0.05.
    opt.step(&g).unwrap();
    assert!((opt.learning_rate() - 0.05).abs() < 1e-15);
    let got = a.as_tensor().to_vec1::<f32>().unwrap()[0];
    assert!((got - 0.95).abs() < 1e-6, "{got}");
    assert_eq!(b.as_tensor().to_vec1::<f32>().unwrap(), vec![1.0]);
    assert!(opt.param_state("b").is_none(), "no gradient, no state");
    assert_eq!(opt.param_state("a").unwrap().2, 2);
}

#[test]
fn adamw_state_round_trip_resumes_exactly() {
    let d = Device::Cpu;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("opt.safetensors");
    let mk = |init: &[f32]| Var::from_slice(init, 2, &d).unwrap();
    let w1 = mk(&[1.0, -2.0]);
    let frozen1 = mk(&[5.0, 5.0]);
    let params =
        |w: &Var, f: &Var| vec![("w".to_string(), w.clone()), ("f".to_string(), f.clone())];
    let mut opt1 = AdamW::new(params(&w1, &frozen1), adamw_cfg()).unwrap();
    for g in &GRADS[..2] {
        opt1.step(&store(&[(&w1, Tensor::from_slice(g, 2, &d).unwrap())]))
            .unwrap();
    }
    opt1.save_state(&path).unwrap();

    // A fresh optimizer over a copy of the weights, loaded from disk.
    let w2 = mk(&w1.as_tensor().to_vec1::<f32>().unwrap());
    let frozen2 = mk(&[5.0, 5.0]);
    let mut opt2 = AdamW::new(params(&w2, &frozen2), adamw_cfg()).unwrap();
    opt2.load_state(&path).unwrap();
    assert_eq!(opt2.steps_taken(), 2);
    assert!(opt2.param_state("f").is_none());
    let g3 = Tensor::from_slice(&GRADS[2], 2, &d).unwrap();
    opt1.step(&store(&[(&w1, g3.clone())])).unwrap();
    opt2.step(&store(&[(&w2, g3)])).unwrap();
    assert_eq!(
        w1.as_tensor().to_vec1::<f32>().unwrap(),
        w2.as_tensor().to_vec1::<f32>().unwrap(),
        "bit-identical after resume"
    );
    let (m1, v1, t1) = opt1.param_state("w").unwrap();
    let (m2, v2, t2) = opt2.param_state("w").unwrap();
    assert_eq!(m1.to_vec1::<f32>().unwrap(), m2.to_vec1::<f32>().unwrap());
    assert_eq!(v1.to_vec1::<f32>().unwrap(), v2.to_vec1::<f32>().unwrap());
    assert_eq!(t1, t2);

    // A state of a different model does not half-load.
    let other = Var::from_slice(&[0.0f32; 3], 3, &d).unwrap();
    let mut wrong = AdamW::new(vec![("w".into(), other)], adamw_cfg()).unwrap();
    let e = wrong.load_state(&path).err().unwrap();
    assert!(
        e.to_string().contains("unknown key") || e.to_string().contains("shape"),
        "{e}"
    );
    let mut state: HashMap<String, Tensor> = opt1.state_tensors().unwrap();
    state.remove("exp_avg_sq.w");
    let mut opt3 = AdamW::new(params(&mk(&[0.0, 0.0]), &mk(&[0.0, 0.0])), adamw_cfg()).unwrap();
    assert!(opt3.load_state_tensors(&state).is_err());
}

#[test]
fn adamw_rejects_duplicate_names() {
    let v = Var::from_slice(&[0.0f32], 1, &Device::Cpu).unwrap();
    assert!(AdamW::new(
        vec![("x".into(), v.clone()), ("x".into(), v)],
        AdamWConfig::default()
    )
    .is_err());
}

/// The fused in-place path (f32 on the CPU) and the tensor-op path (any other dtype, here f64)
/// take the same steps, including a strided gradient (which the fused path must not take).
#[test]
fn adamw_fused_and_tensor_paths_agree() {
    let d = Device::Cpu;
    let init: Vec<f32> = (0..300).map(|i| ((i as f32) * 0.37).sin()).collect();
    let t32 = Var::from_slice(&init, (20, 15), &d).unwrap();
    let t64 = Var::from_tensor(&t32.as_tensor().to_dtype(DType::F64).unwrap()).unwrap();
    let mut o32 = AdamW::new(vec![("w".into(), t32.clone())], adamw_cfg()).unwrap();
    let mut o64 = AdamW::new(vec![("w".into(), t64.clone())], adamw_cfg()).unwrap();
    for step in 0..4 {
        let g: Vec<f32> = (0..300)
            .map(|i| ((i * (step + 3)) as f32 * 0.11).cos())
            .collect();
        let mut g32 = Tensor::from_slice(&g, (15, 20), &d).unwrap().t().unwrap();
        if step % 2 == 0 {
            g32 = g32.contiguous().unwrap();
        }
        let g64 = g32.to_dtype(DType::F64).unwrap();
        o32.step(&store(&[(&t32, g32)])).unwrap();
        o64.step(&store(&[(&t64, g64)])).unwrap();
        let a = t32
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let b = t64
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        for (x, y) in a.iter().zip(&b) {
            assert!((*x as f64 - y).abs() < 1e-5, "step {step}: {x} vs {y}");
        }
    }
}

/// With a zero gradient AdamW's update is decay alone (θ ← θ·(1 − lr·wd)), so which parameters
/// moved shows which were decayed: by default not biases / norm gains (rank < 2) nor embeddings.
#[test]
fn default_weight_decay_spares_biases_norms_and_embeddings() {
    let d = Device::Cpu;
    let named = [
        ("model.layers.0.mlp.up_proj.weight", vec![2, 2]),
        ("model.layers.0.self_attn.q_proj.bias", vec![2]),
        ("model.layers.0.input_layernorm.weight", vec![2]),
        ("model.embed_tokens.weight", vec![2, 2]),
        ("model.layers.0.self_attn.q_proj.lora_A.weight", vec![1, 2]),
    ];
    let run = |no_decay: Vec<String>| -> Vec<f32> {
        let vars: Vec<(String, Var)> = named
            .iter()
            .map(|(n, shape)| {
                (
                    n.to_string(),
                    Var::ones(shape.as_slice(), DType::F32, &d).unwrap(),
                )
            })
            .collect();
        let mut opt = AdamW::new(
            vars.clone(),
            AdamWConfig {
                lr: 0.1,
                weight_decay: 0.5,
                no_decay,
                ..adamw_cfg()
            },
        )
        .unwrap();
        let grads: Vec<(&Var, Tensor)> = vars
            .iter()
            .map(|(_, v)| (v, v.as_tensor().zeros_like().unwrap()))
            .collect();
        opt.step(&store(&grads)).unwrap();
        vars.iter()
            .map(|(_, v)| {
                v.as_tensor()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap()[0]
            })
            .collect()
    };
    let decayed = 1.0 - 0.1 * 0.5;
    assert_eq!(
        run(default_no_decay()),
        vec![decayed, 1.0, 1.0, 1.0, decayed]
    );
    // `[]` is torch's AdamW: everything decays.
    assert_eq!(run(Vec::new()), vec![decayed; 5]);
}
