//! The tensor-op fallbacks that the training forward takes off the CPU equal the fused CPU ops,
//! in value and in gradient: token log-probs, row entropy and the frozen-weight matmul.
//!
//! The fallbacks run on `MIXED_R1_TEST_DEVICE` (default `cpu`; `cuda` / `cuda:N` with a
//! `--features cuda` build on a GPU, as bench/gpu/run.sh does), the fused references on the CPU.

use candle_core::{DType, Device, Tensor, Var};
use mixed_r1_model::frozen_linear::frozen_matmul;
use mixed_r1_model::token_logprob::{
    row_entropy, row_entropy_fallback, token_logprobs, token_logprobs_fallback,
};

fn test_device() -> Device {
    let name = std::env::var("MIXED_R1_TEST_DEVICE").unwrap_or_else(|_| "cpu".into());
    mixed_r1_model::device::parse_device(&name)
        .unwrap_or_else(|e| panic!("MIXED_R1_TEST_DEVICE={name}: {e}"))
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    let a = a
        .to_device(&Device::Cpu)
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap();
    let b = b
        .to_device(&Device::Cpu)
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap();
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f64>()
        .unwrap()
}

/// `n` normal draws of standard deviation `std` from a seeded splitmix64 (candle's CPU device
/// cannot be seeded).
fn randn(n: usize, std: f32, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    let mut uniform = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        ((z >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| {
            let (u1, u2) = (uniform(), uniform());
            ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32 * std
        })
        .collect()
}

fn randn_tensor(shape: (usize, usize), std: f32, seed: u64) -> Tensor {
    Tensor::from_vec(randn(shape.0 * shape.1, std, seed), shape, &Device::Cpu).unwrap()
}

/// Fresh random logits with a vocabulary not a multiple of any SIMD width, and targets that hit
/// the first and last columns.
fn case(rows: usize, vocab: usize, seed: u64) -> (Tensor, Tensor) {
    let cpu = Device::Cpu;
    let logits = randn_tensor((rows, vocab), 4.0, seed);
    let mut t: Vec<u32> = (0..rows as u32)
        .map(|i| (i * 7919) % vocab as u32)
        .collect();
    t[0] = 0;
    t[rows - 1] = vocab as u32 - 1;
    (logits, Tensor::new(t.as_slice(), &cpu).unwrap())
}

#[test]
fn token_logprobs_fallback_equals_fused_in_value_and_gradient() {
    let dev = test_device();
    for (rows, vocab, seed) in [(6, 1003, 1), (17, 4099, 2)] {
        let (logits, targets) = case(rows, vocab, seed);
        let weights = Tensor::new(randn(rows, 1.0, seed + 100), &Device::Cpu).unwrap();
        for temperature in [1.0, 0.7, 1.3] {
            let fused_var = Var::from_tensor(&logits).unwrap();
            let fused = token_logprobs(fused_var.as_tensor(), &targets, temperature).unwrap();
            let g_fused = (&fused * &weights)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();

            let fb_var = Var::from_tensor(&logits.to_device(&dev).unwrap()).unwrap();
            let fb = token_logprobs_fallback(
                fb_var.as_tensor(),
                &targets.to_device(&dev).unwrap(),
                temperature,
            )
            .unwrap();
            assert_eq!(fb.dims(), &[rows]);
            let g_fb = (&fb * &weights.to_device(&dev).unwrap())
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();

            let dv = max_abs_diff(&fused, &fb);
            assert!(dv < 2e-5, "log-probs differ by {dv} (t {temperature})");
            let dg = max_abs_diff(
                g_fused.get(fused_var.as_tensor()).unwrap(),
                g_fb.get(fb_var.as_tensor()).unwrap(),
            );
            assert!(dg < 2e-6, "gradients differ by {dg} (t {temperature})");

            // The public entry point takes the fallback by itself off the CPU.
            if !dev.is_cpu() {
                let auto = token_logprobs(
                    &logits.to_device(&dev).unwrap(),
                    &targets.to_device(&dev).unwrap(),
                    temperature,
                )
                .unwrap();
                assert!(max_abs_diff(&auto, &fused) < 2e-5);
            }
        }
    }
}

#[test]
fn row_entropy_fallback_equals_fused() {
    let dev = test_device();
    let (logits, _) = case(9, 2051, 3);
    for temperature in [1.0, 0.6] {
        let fused = row_entropy(&logits, temperature).unwrap();
        let fb = row_entropy_fallback(&logits.to_device(&dev).unwrap(), temperature).unwrap();
        let d = max_abs_diff(&fused, &fb);
        assert!(d < 1e-4, "entropy differs by {d}");
        let auto = row_entropy(&logits.to_device(&dev).unwrap(), temperature).unwrap();
        assert!(max_abs_diff(&fused, &auto) < 1e-4);
    }
}

/// Half-precision logits (which the fused kernels do not take) go through the fallback in f32.
#[test]
fn bf16_logits_take_the_fallback_and_stay_close() {
    let (logits, targets) = case(5, 777, 4);
    let fused = token_logprobs(&logits, &targets, 1.0).unwrap();
    let half = token_logprobs(&logits.to_dtype(DType::BF16).unwrap(), &targets, 1.0).unwrap();
    assert_eq!(half.dtype(), DType::F32);
    // bf16 keeps 8 bits of mantissa: logits of size ~10 are off by up to ~0.03.
    let d = max_abs_diff(&fused, &half);
    assert!(d < 0.1, "bf16 log-probs differ by {d}");
}

/// The frozen-weight matmul (a custom op on the CPU, candle's matmul elsewhere) gives the
/// product and the input's gradient of a plain matmul on the test device.
#[test]
fn frozen_matmul_on_the_test_device_equals_the_cpu_op() {
    let dev = test_device();
    let x = randn_tensor((11, 64), 1.0, 5);
    let w = randn_tensor((48, 64), 0.1, 6);

    let xv = Var::from_tensor(&x).unwrap();
    let y = frozen_matmul(xv.as_tensor(), &w).unwrap();
    let g = y.sqr().unwrap().sum_all().unwrap().backward().unwrap();

    let xd = Var::from_tensor(&x.to_device(&dev).unwrap()).unwrap();
    let wd = w.to_device(&dev).unwrap();
    let yd = xd.as_tensor().matmul(&wd.t().unwrap()).unwrap();
    let gd = yd.sqr().unwrap().sum_all().unwrap().backward().unwrap();
    let y_auto = frozen_matmul(xd.as_tensor(), &wd).unwrap();

    assert!(max_abs_diff(&y, &yd) < 1e-4);
    assert!(max_abs_diff(&y, &y_auto) < 1e-4);
    let d = max_abs_diff(
        g.get(xv.as_tensor()).unwrap(),
        gd.get(xd.as_tensor()).unwrap(),
    );
    assert!(d < 1e-4, "input gradients differ by {d}");
}
