//! Policy losses, aggregations and KL estimators on fixed (B=2, T=3) tensors, checked against
//! hand computation, plus a finite-difference check of the gradient.
//!
//! Fixture (row 1 has one padding position whose values are deliberately wild):
//! ```text
//! logp = [[-1.0, -0.5, -2.0], [-0.3, -1.2,  0.0]]
//! old  = [[-1.1, -0.9, -1.0], [-0.3, -0.7, -5.0]]
//! mask = [[1, 1, 1], [1, 1, 0]]      A = [1, -2]     eps_low 0.2, eps_high 0.28
//! ratio = exp(logp - old) = [[e^.1 = 1.1051709, e^.4 = 1.4918247, e^-1 = 0.3678794],
//!                            [1, e^-.5 = 0.6065307, (e^5, padding)]]
//! per-token loss max(-A r, -A clip(r)):
//!   (0,0) -1.1051709   in range
//!   (0,1) -1.28        A > 0, r > 1.28: clipped high
//!   (0,2) -0.3678794   A > 0, r small: unclipped (pessimistic side)
//!   (1,0)  2.0         in range
//!   (1,1)  1.6         A < 0, r < 0.8: clipped low (2 * 0.8)
//! sum = 0.8469496 over 5 tokens
//! ```

use candle_core::{Device, Tensor, Var};
use mixed_r1_grpo::loss::{
    aggregate, compute_loss, Aggregation, Gspo, KlEstimator, LossConfig, LossInputs,
    PolicyLossRegistry, Vanilla,
};
use rand::{RngExt, SeedableRng};

const TOL: f64 = 2e-6;

struct Fixture {
    logp: Var,
    old: Tensor,
    refp: Tensor,
    adv: Tensor,
    mask: Tensor,
}

fn fixture() -> Fixture {
    let d = Device::Cpu;
    Fixture {
        logp: Var::from_slice(&[-1.0f32, -0.5, -2.0, -0.3, -1.2, 0.0], (2, 3), &d).unwrap(),
        old: Tensor::from_slice(&[-1.1f32, -0.9, -1.0, -0.3, -0.7, -5.0], (2, 3), &d).unwrap(),
        refp: Tensor::from_slice(&[-1.2f32, -0.5, -1.5, -0.1, -1.0, 0.0], (2, 3), &d).unwrap(),
        adv: Tensor::from_slice(&[1.0f32, -2.0], 2, &d).unwrap(),
        mask: Tensor::from_slice(&[1u8, 1, 1, 1, 1, 0], (2, 3), &d).unwrap(),
    }
}

fn cfg(aggregation: Aggregation) -> LossConfig {
    LossConfig {
        eps_low: 0.2,
        eps_high: 0.28,
        aggregation,
        beta: 0.0,
        ..Default::default()
    }
}

fn inputs(f: &Fixture) -> LossInputs<'_> {
    LossInputs {
        old_logp: Some(&f.old),
        ..LossInputs::new(f.logp.as_tensor(), &f.adv, &f.mask)
    }
}

fn assert_close(got: f64, want: f64, what: &str) {
    assert!(
        (got - want).abs() < TOL * (1.0 + want.abs()),
        "{what}: got {got}, want {want}"
    );
}

fn grad_of(loss: &Tensor, v: &Var) -> Vec<Vec<f32>> {
    loss.backward()
        .unwrap()
        .get(v.as_tensor())
        .unwrap()
        .to_vec2()
        .unwrap()
}

fn assert_grad(got: &[Vec<f32>], want: [[f64; 3]; 2]) {
    for i in 0..2 {
        for t in 0..3 {
            assert_close(got[i][t] as f64, want[i][t], &format!("grad[{i}][{t}]"));
        }
    }
}

#[test]
fn vanilla_token_mean_value_grad_and_metrics() {
    let f = fixture();
    let out = compute_loss(&Vanilla, &inputs(&f), &cfg(Aggregation::TokenMean)).unwrap();
    // 0.8469496 / 5
    assert_close(out.metrics.loss, 0.16938993, "loss");
    assert_close(out.metrics.pg_loss, 0.16938993, "pg_loss");
    assert_close(
        out.loss.to_scalar::<f32>().unwrap() as f64,
        0.16938993,
        "tensor",
    );
    let m = &out.metrics;
    assert_close(m.clip_frac_high, 0.2, "clip_frac_high");
    assert_close(m.clip_frac_low, 0.2, "clip_frac_low");
    assert_close(m.clip_frac, 0.4, "clip_frac");
    assert_eq!(m.dual_clip_frac, 0.0);
    // (1.1051709 + 1.4918247 + 0.3678794 + 1 + 0.6065307) / 5; padding (e^5) excluded.
    assert_close(m.ratio_mean, 0.91428114, "ratio_mean");
    assert_close(m.ratio_min, 0.36787944, "ratio_min");
    assert_close(m.ratio_max, 1.4918247, "ratio_max");
    // mean of (r - 1) - ln r: .0051709 + .0918247 + .3678794 + 0 + .1065307 = .5714057
    assert_close(m.approx_kl, 0.11428114, "approx_kl");
    assert_eq!(m.kl, None);
    assert_eq!(m.entropy, None);
    assert_eq!((m.n_tokens, m.n_seqs), (5.0, 2.0));
    // d/dlogp: -A r / 5 where unclipped, 0 where clipped or padding.
    let g = grad_of(&out.loss, &f.logp);
    assert_grad(&g, [[-0.22103418, 0.0, -0.07357589], [0.4, 0.0, 0.0]]);
}

#[test]
fn vanilla_aggregation_modes() {
    let f = fixture();
    // per-row sums: row0 = -2.7530503 (3 tokens), row1 = 3.6 (2 tokens)
    let cases = [
        // mean(-2.7530503/3, 3.6/2)
        (Aggregation::SeqMeanTokenMean, None, 0.44115827),
        // mean(-2.7530503, 3.6)
        (Aggregation::SeqMeanTokenSum, None, 0.42347482),
        // 0.8469496 / (2 * T=3)
        (Aggregation::SeqMeanTokenSumNorm, None, 0.14115827),
        // 0.8469496 / (2 * max_len=4)
        (Aggregation::SeqMeanTokenSumNorm, Some(4), 0.10586871),
    ];
    for (agg, max_len, want) in cases {
        let c = LossConfig {
            max_len,
            ..cfg(agg)
        };
        let out = compute_loss(&Vanilla, &inputs(&f), &c).unwrap();
        assert_close(out.metrics.loss, want, agg.name());
    }
    // seq_mean_token_mean gradient: -A r / (len_i * 2)
    let out = compute_loss(&Vanilla, &inputs(&f), &cfg(Aggregation::SeqMeanTokenMean)).unwrap();
    let g = grad_of(&out.loss, &f.logp);
    assert_grad(&g, [[-0.18419515, 0.0, -0.06131324], [0.5, 0.0, 0.0]]);
}

#[test]
fn global_normalisers_for_grad_accumulation() {
    // Split the batch into its two rows; with global counts the two micro-losses add up to the
    // full-batch loss, for both token and sequence normalisation.
    let f = fixture();
    for agg in [Aggregation::TokenMean, Aggregation::SeqMeanTokenMean] {
        let full = compute_loss(&Vanilla, &inputs(&f), &cfg(agg))
            .unwrap()
            .metrics
            .loss;
        let mut sum = 0.0;
        for row in 0..2 {
            let pick = |t: &Tensor| t.narrow(0, row, 1).unwrap();
            let (lp, old, adv, mask) = (
                pick(f.logp.as_tensor()),
                pick(&f.old),
                pick(&f.adv),
                pick(&f.mask),
            );
            let x = LossInputs {
                old_logp: Some(&old),
                global_tokens: Some(5.0),
                global_seqs: Some(2.0),
                ..LossInputs::new(&lp, &adv, &mask)
            };
            sum += compute_loss(&Vanilla, &x, &cfg(agg)).unwrap().metrics.loss;
        }
        assert_close(sum, full, agg.name());
    }
}

#[test]
fn on_policy_ratio_is_one_but_gradient_is_not_zero() {
    let f = fixture();
    let x = LossInputs::new(f.logp.as_tensor(), &f.adv, &f.mask);
    let out = compute_loss(&Vanilla, &x, &cfg(Aggregation::TokenMean)).unwrap();
    // (3 * -1 + 2 * 2) / 5
    assert_close(out.metrics.loss, 0.2, "loss");
    assert_eq!(out.metrics.clip_frac, 0.0);
    assert_close(out.metrics.ratio_mean, 1.0, "ratio");
    assert_close(out.metrics.approx_kl, 0.0, "approx_kl");
    let g = grad_of(&out.loss, &f.logp);
    assert_grad(&g, [[-0.2, -0.2, -0.2], [0.4, 0.4, 0.0]]);
}

#[test]
fn dual_clip_caps_negative_advantages() {
    // A = -2, log-ratio 1.5: r = 4.4816891, unclipped loss 8.9633781, eps clip would give 2.56,
    // max = 8.963; the dual clip caps it at -A c = 6 and the gradient is 0.
    let d = Device::Cpu;
    let logp = Var::from_slice(&[0.0f32, 0.0], (1, 2), &d).unwrap();
    let old = Tensor::from_slice(&[-1.5f32, 0.0], (1, 2), &d).unwrap();
    let adv = Tensor::from_slice(&[-2.0f32], 1, &d).unwrap();
    let mask = Tensor::from_slice(&[1.0f32, 1.0], (1, 2), &d).unwrap();
    let x = LossInputs {
        old_logp: Some(&old),
        ..LossInputs::new(logp.as_tensor(), &adv, &mask)
    };
    let c = LossConfig {
        dual_clip: Some(3.0),
        ..cfg(Aggregation::TokenMean)
    };
    let out = compute_loss(&Vanilla, &x, &c).unwrap();
    // (6 + 2) / 2
    assert_close(out.metrics.loss, 4.0, "dual-clipped loss");
    assert_close(out.metrics.dual_clip_frac, 0.5, "dual_clip_frac");
    let g: Vec<Vec<f32>> = out
        .loss
        .backward()
        .unwrap()
        .get(logp.as_tensor())
        .unwrap()
        .to_vec2()
        .unwrap();
    assert_close(g[0][0] as f64, 0.0, "capped token");
    assert_close(g[0][1] as f64, 1.0, "free token: -A r / 2 = 1");
    // Without the dual clip: (8.9633781 + 2) / 2
    let out = compute_loss(&Vanilla, &x, &cfg(Aggregation::TokenMean)).unwrap();
    assert_close(out.metrics.loss, 5.48168907, "no dual clip");
}

#[test]
fn kl_estimators_per_token() {
    // d = ref - logp = [[-0.2, 0, 0.5], [0.2, 0.2, pad]]
    let f = fixture();
    let get = |k: KlEstimator| -> Vec<Vec<f32>> {
        k.per_token(f.logp.as_tensor(), &f.refp)
            .unwrap()
            .to_vec2()
            .unwrap()
    };
    let k1 = get(KlEstimator::K1); // -d
    let k2 = get(KlEstimator::K2); // d^2 / 2
    let k3 = get(KlEstimator::K3); // e^d - d - 1
    let want1: [&[f64]; 2] = [&[0.2, 0.0, -0.5], &[-0.2, -0.2]];
    let want2: [&[f64]; 2] = [&[0.02, 0.0, 0.125], &[0.02, 0.02]];
    let want3: [&[f64]; 2] = [&[0.01873075, 0.0, 0.14872127], &[0.02140276, 0.02140276]];
    for i in 0..2 {
        for t in 0..want1[i].len() {
            assert_close(k1[i][t] as f64, want1[i][t], "k1");
            assert_close(k2[i][t] as f64, want2[i][t], "k2");
            assert_close(k3[i][t] as f64, want3[i][t], "k3");
        }
    }
}

#[test]
fn kl_term_with_beta() {
    let f = fixture();
    let x = LossInputs {
        ref_logp: Some(&f.refp),
        ..inputs(&f)
    };
    let c = LossConfig {
        beta: 0.1,
        kl: KlEstimator::K3,
        ..cfg(Aggregation::TokenMean)
    };
    let out = compute_loss(&Vanilla, &x, &c).unwrap();
    // k3 token mean = (0.0187308 + 0 + 0.1487213 + 2 * 0.0214028) / 5 = 0.0420515
    assert_close(out.metrics.kl.unwrap(), 0.04205151, "kl metric");
    assert_close(out.metrics.pg_loss, 0.16938993, "pg");
    assert_close(out.metrics.loss, 0.17359508, "pg + 0.1 kl");
    // grad = pg grad + 0.1 * (1 - e^d) / 5
    let g = grad_of(&out.loss, &f.logp);
    assert_grad(
        &g,
        [
            [-0.2174088, 0.0, -0.08655031],
            [0.39557194, -0.00442806, 0.0],
        ],
    );
    // k1 with beta: kl metric = mean(-d) = -0.14
    let c1 = LossConfig {
        kl: KlEstimator::K1,
        ..c.clone()
    };
    let out = compute_loss(&Vanilla, &x, &c1).unwrap();
    assert_close(out.metrics.kl.unwrap(), -0.14, "k1 metric");
    assert_close(out.metrics.loss, 0.16938993 - 0.014, "pg + 0.1 k1");

    // beta = 0 with a reference: the KL is reported but not in the loss.
    let c0 = LossConfig { beta: 0.0, ..c };
    let out = compute_loss(&Vanilla, &x, &c0).unwrap();
    assert_close(out.metrics.loss, 0.16938993, "beta 0");
    assert!(out.metrics.kl.is_some());

    // beta > 0 without a reference is an error.
    let c2 = LossConfig {
        beta: 0.1,
        ..cfg(Aggregation::TokenMean)
    };
    let e = compute_loss(&Vanilla, &inputs(&f), &c2).err().unwrap();
    assert!(e.to_string().contains("ref_logp"), "{e}");
}

#[test]
fn gspo_sequence_ratio() {
    // row 0: mean log-ratio (0.1 + 0.4 - 1.0) / 3 = -1/6 -> s = 0.8464817, A = 1, in range:
    //        loss -0.8464817 on each token;
    // row 1: (0 - 0.5) / 2 = -0.25 -> s = 0.7788008 < 0.8, A = -2: clipped, loss 1.6 per token.
    let f = fixture();
    let out = compute_loss(&Gspo, &inputs(&f), &cfg(Aggregation::SeqMeanTokenMean)).unwrap();
    assert_close(out.metrics.loss, (-0.84648172 + 1.6) / 2.0, "gspo loss");
    assert_close(out.metrics.clip_frac_low, 0.4, "row 1's two tokens clipped");
    assert_close(out.metrics.clip_frac_high, 0.0, "no high clip");
    assert_close(
        out.metrics.ratio_mean,
        (3.0 * 0.84648172 + 2.0 * 0.77880078) / 5.0,
        "token-weighted ratio mean",
    );
    // Gradient = the sequence-level objective's: -A s / (|y| * B) on row 0, 0 on the clipped row.
    let g = grad_of(&out.loss, &f.logp);
    let r0 = -0.84648172 / 6.0;
    assert_grad(&g, [[r0, r0, r0], [0.0, 0.0, 0.0]]);
    // Token-mean aggregation weighs tokens: (3 * -0.8464817 + 2 * 1.6) / 5
    let out = compute_loss(&Gspo, &inputs(&f), &cfg(Aggregation::TokenMean)).unwrap();
    assert_close(
        out.metrics.loss,
        (3.0 * -0.84648172 + 3.2) / 5.0,
        "gspo token mean",
    );
}

#[test]
fn entropy_metric_and_registry() {
    let f = fixture();
    let ent =
        Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0, 5.0, 100.0], (2, 3), &Device::Cpu).unwrap();
    let x = LossInputs {
        entropy: Some(&ent),
        ..inputs(&f)
    };
    let reg = PolicyLossRegistry::builtin();
    assert_eq!(reg.names(), mixed_r1_grpo::loss::BUILTIN.to_vec());
    let out = reg
        .compute("vanilla", &x, &cfg(Aggregation::TokenMean))
        .unwrap();
    // (1 + 2 + 3 + 4 + 5) / 5; the padded 100 is excluded
    assert_close(out.metrics.entropy.unwrap(), 3.0, "entropy");
    let e = reg.get("cispo").err().unwrap();
    assert!(e.to_string().contains("gspo, vanilla"), "{e}");
    assert_eq!(
        "seq_mean_token_sum_norm".parse::<Aggregation>().unwrap(),
        Aggregation::SeqMeanTokenSumNorm
    );
    assert_eq!("k3".parse::<KlEstimator>().unwrap(), KlEstimator::K3);
    assert!("k4".parse::<KlEstimator>().is_err());
}

#[test]
fn shape_errors_and_empty_masks() {
    let f = fixture();
    let bad_adv = Tensor::from_slice(&[1.0f32, 2.0, 3.0], 3, &Device::Cpu).unwrap();
    let x = LossInputs {
        advantages: &bad_adv,
        ..inputs(&f)
    };
    let e = compute_loss(&Vanilla, &x, &cfg(Aggregation::TokenMean))
        .err()
        .unwrap();
    assert!(e.to_string().contains("advantages"), "{e}");
    // An all-padding micro-batch aggregates to 0, not NaN.
    let zero = Tensor::zeros((2, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
    for agg in [
        Aggregation::TokenMean,
        Aggregation::SeqMeanTokenMean,
        Aggregation::SeqMeanTokenSum,
        Aggregation::SeqMeanTokenSumNorm,
    ] {
        let x = LossInputs {
            mask: &zero,
            ..inputs(&f)
        };
        let out = compute_loss(&Vanilla, &x, &cfg(agg)).unwrap();
        assert_eq!(out.metrics.loss, 0.0, "{agg}");
        let a = aggregate(&zero, &zero, agg, 0.0, 0.0, 3).unwrap();
        assert_eq!(a.to_scalar::<f32>().unwrap(), 0.0);
    }
}

/// Central finite differences of the vanilla loss w.r.t. each logp entry on a random batch,
/// against candle's backward. Ratios are kept away from the clip boundaries so the loss is smooth
/// within ±h.
#[test]
fn vanilla_gradient_matches_finite_differences() {
    let (b, t) = (3usize, 5usize);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let c = LossConfig {
        eps_low: 0.2,
        eps_high: 0.28,
        dual_clip: Some(3.0),
        beta: 0.05,
        kl: KlEstimator::K3,
        ..cfg(Aggregation::SeqMeanTokenMean)
    };
    let near_boundary = |lr: f32| {
        let r = lr.exp();
        [0.8f32, 1.28].iter().any(|e| (r - e).abs() < 0.05)
    };
    let mut logp = vec![0f32; b * t];
    let mut old = vec![0f32; b * t];
    let mut refp = vec![0f32; b * t];
    for i in 0..b * t {
        logp[i] = rng.random_range(-3.0f32..-0.1);
        loop {
            let delta = rng.random_range(-0.6f32..0.6);
            if !near_boundary(delta) {
                old[i] = logp[i] - delta;
                break;
            }
        }
        refp[i] = logp[i] + rng.random_range(-0.3f32..0.3);
    }
    let adv = [0.9f32, -1.3, 0.4];
    let mask: Vec<f32> = (0..b * t)
        .map(|i| if i % t >= t - (i / t) { 0.0 } else { 1.0 })
        .collect(); // row 0 full, row 1 one pad, row 2 two pads
    let d = Device::Cpu;
    let old_t = Tensor::from_slice(&old, (b, t), &d).unwrap();
    let ref_t = Tensor::from_slice(&refp, (b, t), &d).unwrap();
    let adv_t = Tensor::from_slice(&adv, b, &d).unwrap();
    let mask_t = Tensor::from_slice(&mask, (b, t), &d).unwrap();
    let loss_at = |lp: &[f32]| -> (Tensor, Var) {
        let v = Var::from_slice(lp, (b, t), &d).unwrap();
        let x = LossInputs {
            old_logp: Some(&old_t),
            ref_logp: Some(&ref_t),
            ..LossInputs::new(v.as_tensor(), &adv_t, &mask_t)
        };
        (compute_loss(&Vanilla, &x, &c).unwrap().loss, v)
    };
    let (loss, v) = loss_at(&logp);
    let grad: Vec<f32> = loss
        .backward()
        .unwrap()
        .get(v.as_tensor())
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let h = 1e-2f32;
    let mut checked_nonzero = 0;
    for i in 0..b * t {
        let mut plus = logp.clone();
        plus[i] += h;
        let mut minus = logp.clone();
        minus[i] -= h;
        let lp = loss_at(&plus).0.to_scalar::<f32>().unwrap() as f64;
        let lm = loss_at(&minus).0.to_scalar::<f32>().unwrap() as f64;
        let fd = (lp - lm) / (2.0 * h as f64);
        assert!(
            (fd - grad[i] as f64).abs() < 1e-3,
            "entry {i}: finite difference {fd}, backward {}",
            grad[i]
        );
        if grad[i].abs() > 1e-3 {
            checked_nonzero += 1;
        }
    }
    // The check must have exercised real gradients, not only clipped / padded zeros.
    assert!(
        checked_nonzero >= 6,
        "only {checked_nonzero} non-zero gradients"
    );
}
