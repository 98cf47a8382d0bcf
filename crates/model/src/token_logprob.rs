//! Log-probability of chosen tokens straight from logits, with its own backward.
//!
//! The composed version (`log_softmax` then `gather`) materialises several `(N, vocab)`
//! tensors in the forward pass and more in the backward; with a 150k vocabulary those are
//! hundreds of megabytes per step of pure memory traffic. This op reads the logits once per
//! row (max, log-sum-exp, the target's value) and its backward writes the one gradient tensor
//! it must: `d logp / d logit_v = s * (1[v = target] - softmax(s * logit)_v)` for the inverse
//! temperature `s`. Both passes run row-parallel on the CPU.
//!
//! Off the CPU (CUDA) and for other dtypes than f32 / f64 there is no kernel: the same functions
//! are composed from candle's differentiable tensor ops (`*_fallback`, also callable on the CPU,
//! where tests check they equal the fused ops in value and gradient).

use candle_core::{CpuStorage, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// `log softmax(s * logits)[target]` per row: logits `(N, V)` f32/f64, targets `(N)` u32.
struct TokenLogprob {
    inv_temp: f64,
}

/// Its gradient with respect to the logits, given the upstream gradient `(N)`.
struct TokenLogprobGrad {
    inv_temp: f64,
}

/// Entropy of `softmax(s * logits)` per row (a metric: no backward).
struct RowEntropy {
    inv_temp: f64,
}

fn contiguous<'a, T: candle_core::WithDType>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [T]> {
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&s.as_slice::<T>()?[a..b]),
        None => candle_core::bail!("token-logprob: inputs must be contiguous"),
    }
}

use crate::fastmath::{exp_f32, row_max, row_sum};

#[inline(always)]
fn exp_f64(x: f64) -> f64 {
    x.exp()
}

macro_rules! rows_impl {
    ($fwd:ident, $bwd:ident, $ent:ident, $t:ty, $exp:ident) => {
        /// (max, log-sum-exp) of `s * row`.
        fn $fwd(row: &[$t], s: $t) -> ($t, $t) {
            let max = row.iter().fold(<$t>::NEG_INFINITY, |m, &x| m.max(x * s));
            let sum: $t = row.iter().map(|&x| $exp(x * s - max)).sum();
            (max, max + sum.ln())
        }
        fn $bwd(row: &[$t], out: &mut [$t], target: usize, g: $t, s: $t) {
            let (_, lse) = $fwd(row, s);
            for (o, &x) in out.iter_mut().zip(row) {
                *o = -g * s * $exp(x * s - lse);
            }
            if let Some(o) = out.get_mut(target) {
                *o += g * s;
            }
        }
        fn $ent(row: &[$t], s: $t) -> $t {
            let (_, lse) = $fwd(row, s);
            row.iter()
                .map(|&x| {
                    let lp = x * s - lse;
                    -$exp(lp) * lp
                })
                .sum()
        }
    };
}
rows_impl!(lse_f64, grad_f64, ent_f64, f64, exp_f64);

// The f32 rows (the usual case) in vectorisable form: lane-wise max and sums (f32 lanes within
// blocks, f64 across blocks), the same arithmetic per element as the f64 macro's.

/// (max, log-sum-exp) of `s * row`.
fn lse_f32(row: &[f32], s: f32) -> (f32, f32) {
    // Scaling by s > 0 keeps the order (and rounds the maximum exactly as `x * s` does).
    let max = if s > 0.0 {
        row_max(row) * s
    } else {
        row.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x * s))
    };
    let sum = row_sum(row, |x| exp_f32(x * s - max));
    (max, max + sum.ln() as f32)
}

fn grad_f32(row: &[f32], out: &mut [f32], target: usize, g: f32, s: f32) {
    let (_, lse) = lse_f32(row, s);
    for (o, &x) in out.iter_mut().zip(row) {
        *o = -g * s * exp_f32(x * s - lse);
    }
    if let Some(o) = out.get_mut(target) {
        *o += g * s;
    }
}

fn ent_f32(row: &[f32], s: f32) -> f32 {
    let (_, lse) = lse_f32(row, s);
    row_sum(row, |x| {
        let lp = x * s - lse;
        -exp_f32(lp) * lp
    }) as f32
}

fn dims(l1: &Layout, l2: &Layout) -> Result<(usize, usize)> {
    let (n, v) = l1.shape().dims2()?;
    let n2 = l2.shape().dims1()?;
    if n != n2 {
        candle_core::bail!("token-logprob: {n} rows of logits but {n2} targets");
    }
    Ok((n, v))
}

impl CustomOp2 for TokenLogprob {
    fn name(&self) -> &'static str {
        "token-logprob"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (n, v) = dims(l1, l2)?;
        let targets = contiguous::<u32>(s2, l2)?;
        if let Some(&bad) = targets.iter().find(|&&t| t as usize >= v) {
            candle_core::bail!("token-logprob: target {bad} outside the vocabulary of {v}");
        }
        let out = match s1 {
            CpuStorage::F32(_) => {
                let x = contiguous::<f32>(s1, l1)?;
                let s = self.inv_temp as f32;
                let o: Vec<f32> = (0..n)
                    .into_par_iter()
                    .map(|i| {
                        let row = &x[i * v..(i + 1) * v];
                        row[targets[i] as usize] * s - lse_f32(row, s).1
                    })
                    .collect();
                CpuStorage::F32(o)
            }
            CpuStorage::F64(_) => {
                let x = contiguous::<f64>(s1, l1)?;
                let s = self.inv_temp;
                let o: Vec<f64> = (0..n)
                    .into_par_iter()
                    .map(|i| {
                        let row = &x[i * v..(i + 1) * v];
                        row[targets[i] as usize] * s - lse_f64(row, s).1
                    })
                    .collect();
                CpuStorage::F64(o)
            }
            _ => candle_core::bail!("token-logprob: logits must be f32 or f64"),
        };
        Ok((out, Shape::from(n)))
    }

    fn bwd(
        &self,
        logits: &Tensor,
        targets: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let g = logits.apply_op3_no_bwd(
            targets,
            &grad_res.contiguous()?,
            &TokenLogprobGrad {
                inv_temp: self.inv_temp,
            },
        )?;
        Ok((Some(g), None))
    }
}

impl CustomOp3 for TokenLogprobGrad {
    fn name(&self) -> &'static str {
        "token-logprob-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (n, v) = dims(l1, l2)?;
        let targets = contiguous::<u32>(s2, l2)?;
        let out = match s1 {
            CpuStorage::F32(_) => {
                let x = contiguous::<f32>(s1, l1)?;
                let g = contiguous::<f32>(s3, l3)?;
                let mut o = vec![0f32; n * v];
                o.par_chunks_mut(v).enumerate().for_each(|(i, out)| {
                    grad_f32(
                        &x[i * v..(i + 1) * v],
                        out,
                        targets[i] as usize,
                        g[i],
                        self.inv_temp as f32,
                    )
                });
                CpuStorage::F32(o)
            }
            CpuStorage::F64(_) => {
                let x = contiguous::<f64>(s1, l1)?;
                let g = contiguous::<f64>(s3, l3)?;
                let mut o = vec![0f64; n * v];
                o.par_chunks_mut(v).enumerate().for_each(|(i, out)| {
                    grad_f64(
                        &x[i * v..(i + 1) * v],
                        out,
                        targets[i] as usize,
                        g[i],
                        self.inv_temp,
                    )
                });
                CpuStorage::F64(o)
            }
            _ => candle_core::bail!("token-logprob: logits must be f32 or f64"),
        };
        Ok((out, Shape::from((n, v))))
    }
}

impl candle_core::CustomOp1 for RowEntropy {
    fn name(&self) -> &'static str {
        "row-entropy"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout) -> Result<(CpuStorage, Shape)> {
        let (n, v) = l1.shape().dims2()?;
        let out = match s1 {
            CpuStorage::F32(_) => {
                let x = contiguous::<f32>(s1, l1)?;
                let s = self.inv_temp as f32;
                CpuStorage::F32(
                    (0..n)
                        .into_par_iter()
                        .map(|i| ent_f32(&x[i * v..(i + 1) * v], s))
                        .collect(),
                )
            }
            CpuStorage::F64(_) => {
                let x = contiguous::<f64>(s1, l1)?;
                CpuStorage::F64(
                    (0..n)
                        .into_par_iter()
                        .map(|i| ent_f64(&x[i * v..(i + 1) * v], self.inv_temp))
                        .collect(),
                )
            }
            _ => candle_core::bail!("row-entropy: logits must be f32 or f64"),
        };
        Ok((out, Shape::from(n)))
    }
}

/// `log softmax(logits / temperature)[target]` for each row of `logits (N, V)`; differentiable
/// with respect to the logits. `targets` is `(N)` u32.
pub fn token_logprobs(logits: &Tensor, targets: &Tensor, temperature: f64) -> Result<Tensor> {
    if !fused_applies(logits) {
        return token_logprobs_fallback(logits, targets, temperature);
    }
    let logits = logits.contiguous()?;
    let targets = targets.contiguous()?;
    logits.apply_op2(
        &targets,
        TokenLogprob {
            inv_temp: 1.0 / temperature,
        },
    )
}

/// Entropy of `softmax(logits / temperature)` per row of `(N, V)`; no gradient.
pub fn row_entropy(logits: &Tensor, temperature: f64) -> Result<Tensor> {
    if !fused_applies(logits) {
        return row_entropy_fallback(logits, temperature);
    }
    logits.detach().contiguous()?.apply_op1_no_bwd(&RowEntropy {
        inv_temp: 1.0 / temperature,
    })
}

/// The CPU kernels take f32 / f64 logits in CPU memory.
fn fused_applies(logits: &Tensor) -> bool {
    logits.device().is_cpu() && matches!(logits.dtype(), DType::F32 | DType::F64)
}

/// `s * logits - logsumexp(s * logits)` per row, from differentiable tensor ops; half-precision
/// logits are upcast to f32 first (the sum over a 150k vocabulary needs it).
fn log_softmax_composed(logits: &Tensor, temperature: f64) -> Result<Tensor> {
    let logits = match logits.dtype() {
        DType::F32 | DType::F64 => logits.clone(),
        _ => logits.to_dtype(DType::F32)?,
    };
    let scaled = logits.affine(1.0 / temperature, 0.0)?;
    // The row maximum only shifts the exponent for range; its gradient contribution cancels, so
    // it is taken detached (as the fused op's backward does implicitly).
    let max = scaled.detach().max_keepdim(1)?;
    let shifted = scaled.broadcast_sub(&max)?;
    let lse = shifted.exp()?.sum_keepdim(1)?.log()?;
    shifted.broadcast_sub(&lse)
}

/// [`token_logprobs`] from candle's differentiable ops: the path off the CPU, on any device.
/// Half-precision logits give f32 log-probabilities.
pub fn token_logprobs_fallback(
    logits: &Tensor,
    targets: &Tensor,
    temperature: f64,
) -> Result<Tensor> {
    let (n, _) = logits.dims2()?;
    let n2 = targets.dims1()?;
    if n != n2 {
        candle_core::bail!("token-logprob: {n} rows of logits but {n2} targets");
    }
    let targets = targets.to_dtype(DType::U32)?.contiguous()?.unsqueeze(1)?;
    log_softmax_composed(logits, temperature)?
        .gather(&targets, 1)?
        .squeeze(1)
}

/// [`row_entropy`] from candle's tensor ops (no gradient), on any device.
pub fn row_entropy_fallback(logits: &Tensor, temperature: f64) -> Result<Tensor> {
    let lp = log_softmax_composed(&logits.detach(), temperature)?;
    (lp.exp()? * &lp)?.sum(1)?.neg()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_equals_log_softmax_gather_and_its_gradient() {
        let dev = candle_core::Device::Cpu;
        let logits = Tensor::randn(0f32, 3.0, (5, 1000), &dev).unwrap();
        let targets = Tensor::new(&[0u32, 999, 17, 500, 3], &dev).unwrap();
        for t in [1.0, 0.7] {
            let var = candle_core::Var::from_tensor(&logits).unwrap();
            let ours = token_logprobs(var.as_tensor(), &targets, t).unwrap();
            let scaled = (var.as_tensor() / t).unwrap();
            let reference = candle_nn::ops::log_softmax(&scaled, 1)
                .unwrap()
                .gather(&targets.unsqueeze(1).unwrap(), 1)
                .unwrap()
                .squeeze(1)
                .unwrap();
            let d = (&ours - &reference)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap();
            assert!(d.to_scalar::<f32>().unwrap() < 1e-5);
            let w = Tensor::new(&[1f32, -2.0, 0.5, 3.0, -1.0], &dev).unwrap();
            let g1 = (ours * &w).unwrap().sum_all().unwrap().backward().unwrap();
            let g2 = (reference * &w)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let a = g1.get(var.as_tensor()).unwrap();
            let b = g2.get(var.as_tensor()).unwrap();
            let d = (a - b).unwrap().abs().unwrap().max_all().unwrap();
            assert!(d.to_scalar::<f32>().unwrap() < 1e-5, "gradient differs");
            let ent = row_entropy(var.as_tensor(), t)
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            let p = candle_nn::ops::softmax(&scaled, 1).unwrap();
            let want = (p.clone() * p.log().unwrap())
                .unwrap()
                .sum(1)
                .unwrap()
                .neg()
                .unwrap();
            for (x, y) in ent.iter().zip(want.to_vec1::<f32>().unwrap()) {
                assert!((x - y).abs() < 1e-4);
            }
        }
    }
}
