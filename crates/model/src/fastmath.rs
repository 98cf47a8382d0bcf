//! Vectorisable `exp` for the loops over a vocabulary row (soft-max, sampling, log-probs).
//!
//! libm's `exp` is a function call per element, which keeps a 151k-wide row loop scalar; these
//! are plain arithmetic the compiler turns into SIMD.

/// `e^x` for `x <= 0` without a libm call: `x = n ln 2 + r` with `|r| <= ln 2 / 2`, a degree-6
/// polynomial for `e^r` (relative error below 2e-7, the order of f32 rounding) and `2^n` built in
/// the exponent bits. Below -87 the result is 0 (to f32 precision: e^-87 ≈ 1.6e-38).
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    // Round to nearest by adding and subtracting 1.5·2^23: `f32::round` is a libm call on
    // baseline x86-64 (no SSE4.1 `roundss`), which would stop the loop vectorising.
    const SHIFT: f32 = 12_582_912.0;
    let x = x.max(-87.0);
    let n = (x * std::f32::consts::LOG2_E + SHIFT) - SHIFT;
    let r = x - n * 0.693_145_75 - n * 1.428_606_8e-6;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (0.166_666_67
                    + r * (0.041_666_668 + r * (0.008_333_334 + r * 0.001_388_889)))));
    p * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// `Σ e^((x_i - max) / t)` over a row, in f64 (summed in f32 over short blocks, which
/// vectorise, then in f64 across blocks, so a 151k-wide row keeps f64-like accuracy).
pub fn sum_exp_scaled(row: &[f32], max: f32, t: f32) -> f64 {
    row.chunks(256)
        .map(|c| c.iter().map(|&l| exp_f32((l - max) / t)).sum::<f32>() as f64)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_libm_to_f32_rounding() {
        let mut worst = 0f64;
        let mut x = -90.0f32;
        while x <= 0.0 {
            let want = (x as f64).exp();
            let got = exp_f32(x) as f64;
            if want > 1e-37 {
                worst = worst.max(((got - want) / want).abs());
            }
            x += 0.001;
        }
        assert!(worst < 5e-7, "relative error {worst:e}");
        assert_eq!(exp_f32(0.0), 1.0);
        assert_eq!(exp_f32(-1000.0), exp_f32(-87.0));
    }

    #[test]
    fn row_sum_is_accurate() {
        let row: Vec<f32> = (0..151_669)
            .map(|i| ((i as f32) * 0.013).sin() * 9.0)
            .collect();
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        for t in [1.0f32, 0.7] {
            let want: f64 = row.iter().map(|&l| (((l - max) / t) as f64).exp()).sum();
            let got = sum_exp_scaled(&row, max, t);
            assert!(((got - want) / want).abs() < 1e-6, "{got} vs {want}");
        }
    }
}
