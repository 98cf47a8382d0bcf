//! A matrix product for the few-rows case of decoding: `x (m, k) @ w^T` with `w` stored
//! `(n, k)` and `m` small (one row per sequence in the batch).
//!
//! General GEMM kernels pad such products to their micro-tile height and spend most of a
//! decoding step on it; here each weight row is streamed from memory once and dotted with all
//! `m` input rows while it sits in cache, and the output rows are split across threads. It is
//! inference only (no backward): the training forward never takes this path.

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Inputs with at most this many rows use the kernel.
pub const MAX_ROWS: usize = 16;

struct SmallRowsMatmul;

impl CustomOp2 for SmallRowsMatmul {
    fn name(&self) -> &'static str {
        "small-rows-matmul"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (m, k) = l1.shape().dims2()?;
        let (n, k2) = l2.shape().dims2()?;
        if k != k2 {
            candle_core::bail!("small-rows-matmul: inner dims {k} vs {k2}");
        }
        let (Some((x0, x1)), Some((w0, w1))) = (l1.contiguous_offsets(), l2.contiguous_offsets())
        else {
            candle_core::bail!("small-rows-matmul: inputs must be contiguous");
        };
        let x = &s1.as_slice::<f32>()?[x0..x1];
        let w = &s2.as_slice::<f32>()?[w0..w1];
        let mut out = vec![0f32; m * n];
        // Work on blocks of weight rows; each block writes its own columns of every output
        // row, gathered into a transposed buffer first so blocks never share memory.
        const BLOCK: usize = 64;
        let mut t = vec![0f32; n * m]; // (n, m)
        t.par_chunks_mut(BLOCK * m)
            .enumerate()
            .for_each(|(bi, chunk)| {
                let rows = chunk.len() / m;
                let base = bi * BLOCK;
                dot_block(&w[base * k..(base + rows) * k], x, k, m, chunk);
            });
        for j in 0..n {
            for i in 0..m {
                out[i * n + j] = t[j * m + i];
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((m, n))))
    }
}

/// `out[j * m + i] = dot(w[j], x[i])` for the weight rows of `w` and the `m` rows of `x`.
fn dot_block(w: &[f32], x: &[f32], k: usize, m: usize, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if m >= 4 && std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the features were detected at run time; `w` holds `out.len() / m` rows
            // of `k`, `x` holds `m` rows of `k` (checked by the caller's shapes).
            unsafe { dot_block_avx2(w, x, k, m, out) };
            return;
        }
    }
    for (j, o) in out.chunks_mut(m).enumerate() {
        dot_rows(&w[j * k..(j + 1) * k], x, k, o);
    }
}

/// Tiles of 3 weight rows x 4 input rows: 7 loads feed 12 FMAs (one weight row at a time
/// needs 5 loads for 4), which is what bounds a batch of 8 or 16 rows once the weights
/// stream from memory at full speed.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_block_avx2(w: &[f32], x: &[f32], k: usize, m: usize, out: &mut [f32]) {
    use std::arch::x86_64::*;
    let rows = out.len() / m;
    let chunks = k / 8;
    let mut j = 0;
    while j + 3 <= rows {
        let w0 = w.as_ptr().add(j * k);
        let (w1, w2) = (w0.add(k), w0.add(2 * k));
        let mut i = 0;
        while i + 4 <= m {
            let p = x.as_ptr().add(i * k);
            let mut acc = [[_mm256_setzero_ps(); 4]; 3];
            // The first pass over this triple also asks for the next triple's weights (the
            // same offsets, 3 rows on): the loads below otherwise stall on memory.
            let ahead = if i == 0 && j + 6 <= rows { 3 * k } else { 0 };
            for c in 0..chunks {
                let off = c * 8;
                if ahead != 0 && c % 2 == 0 {
                    _mm_prefetch::<_MM_HINT_T0>(w0.add(off + ahead) as *const i8);
                    _mm_prefetch::<_MM_HINT_T0>(w1.add(off + ahead) as *const i8);
                    _mm_prefetch::<_MM_HINT_T0>(w2.add(off + ahead) as *const i8);
                }
                let wv = [
                    _mm256_loadu_ps(w0.add(off)),
                    _mm256_loadu_ps(w1.add(off)),
                    _mm256_loadu_ps(w2.add(off)),
                ];
                for r in 0..4 {
                    let xv = _mm256_loadu_ps(p.add(r * k + off));
                    for (a, wv) in acc.iter_mut().zip(&wv) {
                        a[r] = _mm256_fmadd_ps(*wv, xv, a[r]);
                    }
                }
            }
            for (t, wt) in [w0, w1, w2].into_iter().enumerate() {
                for r in 0..4 {
                    let mut s = hsum(acc[t][r]);
                    for c in chunks * 8..k {
                        s += *wt.add(c) * *p.add(r * k + c);
                    }
                    out[(j + t) * m + i + r] = s;
                }
            }
            i += 4;
        }
        if i < m {
            for t in 0..3 {
                let wr = &w[(j + t) * k..(j + t + 1) * k];
                dot_rows_avx2(
                    wr,
                    &x[i * k..m * k],
                    k,
                    &mut out[(j + t) * m + i..(j + t + 1) * m],
                );
            }
        }
        j += 3;
    }
    while j < rows {
        dot_rows_avx2(&w[j * k..(j + 1) * k], x, k, &mut out[j * m..(j + 1) * m]);
        j += 1;
    }
}

/// `out[i] = dot(w_row, x[i])` for every row `i` of `x` (`m = out.len()` rows of length `k`).
fn dot_rows(w_row: &[f32], x: &[f32], k: usize, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the features were detected at run time; slices are bounds-checked by
            // construction (x has out.len() rows of k values, w_row has k values).
            unsafe { dot_rows_avx2(w_row, x, k, out) };
            return;
        }
    }
    for (i, o) in out.iter_mut().enumerate() {
        let xr = &x[i * k..(i + 1) * k];
        *o = dot_portable(w_row, xr);
    }
}

fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let chunks = a.len() / 8;
    for c in 0..chunks {
        for l in 0..8 {
            acc[l] += a[c * 8 + l] * b[c * 8 + l];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for i in chunks * 8..a.len() {
        s += a[i] * b[i];
    }
    s
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_rows_avx2(w_row: &[f32], x: &[f32], k: usize, out: &mut [f32]) {
    use std::arch::x86_64::*;
    let m = out.len();
    let chunks = k / 8;
    let wp = w_row.as_ptr();
    let mut i = 0;
    // Four input rows at a time: one weight load feeds four FMAs.
    while i + 4 <= m {
        let (p0, p1, p2, p3) = (
            x.as_ptr().add(i * k),
            x.as_ptr().add((i + 1) * k),
            x.as_ptr().add((i + 2) * k),
            x.as_ptr().add((i + 3) * k),
        );
        let (mut a0, mut a1, mut a2, mut a3) = (
            _mm256_setzero_ps(),
            _mm256_setzero_ps(),
            _mm256_setzero_ps(),
            _mm256_setzero_ps(),
        );
        for c in 0..chunks {
            let wv = _mm256_loadu_ps(wp.add(c * 8));
            a0 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(p0.add(c * 8)), a0);
            a1 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(p1.add(c * 8)), a1);
            a2 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(p2.add(c * 8)), a2);
            a3 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(p3.add(c * 8)), a3);
        }
        let mut sums = [hsum(a0), hsum(a1), hsum(a2), hsum(a3)];
        for c in chunks * 8..k {
            let wv = *wp.add(c);
            sums[0] += wv * *p0.add(c);
            sums[1] += wv * *p1.add(c);
            sums[2] += wv * *p2.add(c);
            sums[3] += wv * *p3.add(c);
        }
        out[i..i + 4].copy_from_slice(&sums);
        i += 4;
    }
    while i < m {
        let p = x.as_ptr().add(i * k);
        let (mut a, mut b) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut c = 0;
        while c + 2 <= chunks {
            a = _mm256_fmadd_ps(
                _mm256_loadu_ps(wp.add(c * 8)),
                _mm256_loadu_ps(p.add(c * 8)),
                a,
            );
            b = _mm256_fmadd_ps(
                _mm256_loadu_ps(wp.add(c * 8 + 8)),
                _mm256_loadu_ps(p.add(c * 8 + 8)),
                b,
            );
            c += 2;
        }
        if c < chunks {
            a = _mm256_fmadd_ps(
                _mm256_loadu_ps(wp.add(c * 8)),
                _mm256_loadu_ps(p.add(c * 8)),
                a,
            );
        }
        let mut s = hsum(_mm256_add_ps(a, b));
        for c in chunks * 8..k {
            s += *wp.add(c) * *p.add(c);
        }
        out[i] = s;
        i += 1;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn hsum(v: std::arch::x86_64::__m256) -> f32 {
    use std::arch::x86_64::*;
    let hi = _mm256_extractf128_ps(v, 1);
    let lo = _mm256_castps256_ps128(v);
    let s = _mm_add_ps(hi, lo);
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    _mm_cvtss_f32(s)
}

/// `x (m, k) @ w^T` for `w (n, k)`, when the fast path applies (f32, CPU, `m <= MAX_ROWS`);
/// `None` otherwise.
pub fn small_rows_matmul(x: &Tensor, w: &Tensor) -> Result<Option<Tensor>> {
    let (m, _) = x.dims2()?;
    if m > MAX_ROWS
        || !x.device().is_cpu()
        || x.dtype() != candle_core::DType::F32
        || w.dtype() != candle_core::DType::F32
    {
        return Ok(None);
    }
    let x = x.contiguous()?;
    let w = w.contiguous()?;
    Ok(Some(x.apply_op2_no_bwd(&w, &SmallRowsMatmul)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Every row count up to `MAX_ROWS` (the 3x4 tiles, their remainders in both directions and
    /// the one-row path) and inner sizes with and without a tail equal a plain f64 product.
    #[test]
    fn equals_the_plain_product() {
        let d = Device::Cpu;
        for (n, k) in [(7, 64), (131, 37), (200, 576)] {
            let w: Vec<f32> = (0..n * k).map(|i| ((i as f32) * 0.71).sin()).collect();
            for m in 1..=MAX_ROWS {
                let x: Vec<f32> = (0..m * k).map(|i| ((i as f32) * 0.37).cos()).collect();
                let xt = Tensor::from_slice(&x, (m, k), &d).unwrap();
                let wt = Tensor::from_slice(&w, (n, k), &d).unwrap();
                let got = small_rows_matmul(&xt, &wt).unwrap().unwrap();
                let got = got.to_vec2::<f32>().unwrap();
                for i in 0..m {
                    for j in 0..n {
                        let want: f64 = (0..k)
                            .map(|c| x[i * k + c] as f64 * w[j * k + c] as f64)
                            .sum();
                        let err = (got[i][j] as f64 - want).abs();
                        assert!(err < 1e-4 * (1.0 + want.abs()), "m {m} n {n} k {k}: {err}");
                    }
                }
            }
        }
    }
}
