//! `x @ w^T` for a frozen `w` whose backward computes only the input's gradient.
//!
//! candle's matmul backward always computes both operands' gradients, even for a detached
//! weight that nothing will read: with LoRA (every base weight frozen) that is a third of the
//! backward's arithmetic spent on weight gradients that are thrown away. This op records the
//! product as a custom op of `x` alone, so backward does `grad @ w` and nothing else. The
//! numbers are candle's own matmul (the forward calls it); only the recorded graph differs.

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor};

struct FrozenRhs {
    /// `(out, in)`, detached.
    w: Tensor,
}

fn input_tensor(s: &CpuStorage, l: &Layout) -> Result<Tensor> {
    let (start, end) = l
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg("frozen_linear: input must be contiguous".into()))?;
    let shape = l.shape().clone();
    Ok(match s {
        CpuStorage::F32(v) => Tensor::from_slice(&v[start..end], shape, &candle_core::Device::Cpu)?,
        CpuStorage::F64(v) => Tensor::from_slice(&v[start..end], shape, &candle_core::Device::Cpu)?,
        CpuStorage::BF16(v) => {
            Tensor::from_slice(&v[start..end], shape, &candle_core::Device::Cpu)?
        }
        CpuStorage::F16(v) => Tensor::from_slice(&v[start..end], shape, &candle_core::Device::Cpu)?,
        _ => candle_core::bail!("frozen_linear: unsupported input dtype"),
    })
}

impl CustomOp1 for FrozenRhs {
    fn name(&self) -> &'static str {
        "frozen-linear"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = input_tensor(s, l)?;
        let y = x.matmul(&self.w.t()?)?.contiguous()?;
        let shape = y.shape().clone();
        let out = match y.dtype() {
            DType::F32 => CpuStorage::F32(y.flatten_all()?.to_vec1::<f32>()?),
            DType::F64 => CpuStorage::F64(y.flatten_all()?.to_vec1::<f64>()?),
            DType::BF16 => CpuStorage::BF16(y.flatten_all()?.to_vec1::<half::bf16>()?),
            DType::F16 => CpuStorage::F16(y.flatten_all()?.to_vec1::<half::f16>()?),
            d => candle_core::bail!("frozen_linear: unsupported dtype {d:?}"),
        };
        Ok((out, shape))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(grad.matmul(&self.w)?))
    }
}

/// `x (rows, in) @ w^T` with `w (out, in)` frozen: differentiable in `x` only. Off the CPU
/// (no kernel here) it is candle's matmul, which gives the same gradient for `x`.
pub fn frozen_matmul(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    if !x.device().is_cpu() {
        return x.matmul(&w.detach().t()?);
    }
    x.contiguous()?.apply_op1(FrozenRhs { w: w.detach() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn same_values_and_input_gradient_as_matmul_and_no_weight_gradient() {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0f64, 1.0, (5, 7), &dev).unwrap()).unwrap();
        let w = Tensor::randn(0f64, 1.0, (3, 7), &dev).unwrap();
        let ours = frozen_matmul(x.as_tensor(), &w).unwrap();
        let theirs = x.as_tensor().matmul(&w.t().unwrap()).unwrap();
        let d = (&ours - &theirs)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        assert!(d < 1e-12);
        let g1 = ours.sqr().unwrap().sum_all().unwrap().backward().unwrap();
        let g2 = theirs.sqr().unwrap().sum_all().unwrap().backward().unwrap();
        let (a, b) = (
            g1.get(x.as_tensor()).unwrap(),
            g2.get(x.as_tensor()).unwrap(),
        );
        let d = (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        assert!(d < 1e-12);
    }
}
