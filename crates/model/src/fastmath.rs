//! Vectorisable `exp` for the loops over a vocabulary row (soft-max, sampling, log-probs).
//!
//! libm's `exp` is a function call per element, which keeps a 151k-wide row loop scalar; these
//! are plain arithmetic the compiler turns into SIMD.

/// `e^x` for `x <= 0` without a libm call: `x = n ln 2 + r` with `|r| <= ln 2 / 2`, a degree-6
/// polynomial for `e^r` (relative error below 2e-7, the order of f32 rounding) and `2^n` built in
/// the exponent bits. Below -87 the result is 0 (to f32 precision: e^-87 ≈ 1.6e-38).
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    // Round to nearest by adding 1.5·2^23: the sum's low mantissa bits then hold `n` as an
    // integer, so neither `f32::round` (a libm call on baseline x86-64) nor a float-to-int
    // conversion (saturating in Rust, with branches) stands in the way of vectorising.
    const SHIFT: f32 = 12_582_912.0;
    let x = if x < -87.0 { -87.0 } else { x };
    let shifted = x * std::f32::consts::LOG2_E + SHIFT;
    let n = shifted - SHIFT;
    let ni = shifted.to_bits() as i32 - SHIFT.to_bits() as i32;
    let r = x - n * 0.693_145_75 - n * 1.428_606_8e-6;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (0.166_666_67
                    + r * (0.041_666_668 + r * (0.008_333_334 + r * 0.001_388_889)))));
    p * f32::from_bits(((ni + 127) as u32) << 23)
}

/// Lanes of the block sums below: independent accumulators the compiler keeps in one vector
/// register (a single running f32 sum is a dependency chain it may not reorder).
const LANES: usize = 16;

/// Largest value of a row (NaN-free rows; `f32::max` semantics otherwise).
pub fn row_max(row: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = row.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for l in 0..LANES {
            acc[l] = if c[l] > acc[l] { c[l] } else { acc[l] };
        }
    }
    let m = acc.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    tail.iter().copied().fold(m, f32::max)
}

/// `Σ f(x_i)` over a short block, in f32 lanes.
#[inline(always)]
pub fn lane_sum(block: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0f32; LANES];
    let chunks = block.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for l in 0..LANES {
            acc[l] += f(c[l]);
        }
    }
    acc.iter().sum::<f32>() + tail.iter().map(|&x| f(x)).sum::<f32>()
}

/// Block length of the row sums: block sums stay short enough for f32.
pub const BLOCK: usize = 256;

/// `Σ f(x_i)` over a whole row: f32 lanes within blocks of [`BLOCK`], f64 across blocks, so a
/// 151k-wide row keeps f64-like accuracy and still vectorises.
#[inline(always)]
pub fn row_sum(row: &[f32], f: impl Fn(f32) -> f32 + Copy) -> f64 {
    row.chunks(BLOCK).map(|c| lane_sum(c, f) as f64).sum()
}

/// `Σ e^((x_i - max) / t)` over a short block.
#[inline]
pub fn block_sum_exp(block: &[f32], max: f32, t: f32) -> f32 {
    lane_sum(block, |x| exp_f32((x - max) / t))
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
            let got = row_sum(&row, |x| exp_f32((x - max) / t));
            assert!(((got - want) / want).abs() < 1e-6, "{got} vs {want}");
        }
    }
}
