//! Building blocks shared by the text decoder and the vision towers.
//!
//! candle's fused kernels (`rms_norm`, `layer_norm`, `softmax_last_dim`, `rope`) record no backward pass, so
//! a graph through them silently loses its gradients. Every function here takes `grad`: when a
//! gradient is needed it composes differentiable primitives, otherwise it may use the fused
//! kernel. Both give the same numbers to float rounding, which the tests check.

use candle_core::{DType, Result, Tensor, D};

/// RMSNorm as in transformers: normalise in f32, scale by `weight`.
pub fn rms_norm(x: &Tensor, weight: &Tensor, eps: f64, grad: bool) -> Result<Tensor> {
    if !grad && x.dtype() == DType::F32 {
        return candle_nn::ops::rms_norm(&x.contiguous()?, weight, eps as f32);
    }
    let dtype = x.dtype();
    // Half precision normalises in f32 (as transformers does); f32 / f64 stay as they are.
    let x32 = match dtype {
        DType::BF16 | DType::F16 => x.to_dtype(DType::F32)?,
        _ => x.clone(),
    };
    let var = x32.sqr()?.mean_keepdim(D::Minus1)?;
    let normed = x32.broadcast_div(&(var + eps)?.sqrt()?)?;
    normed.to_dtype(dtype)?.broadcast_mul(weight)
}

/// LayerNorm as torch's `nn.LayerNorm` over the last dimension: `(x - mean) / sqrt(var + eps)`
/// (biased variance) scaled by `weight` plus `bias`, in the input's dtype (16-bit floats
/// normalise in f32).
pub fn layer_norm(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    eps: f64,
    grad: bool,
) -> Result<Tensor> {
    if !grad && x.dtype() == DType::F32 {
        return candle_nn::ops::layer_norm(&x.contiguous()?, weight, bias, eps as f32);
    }
    let dtype = x.dtype();
    let x32 = match dtype {
        DType::BF16 | DType::F16 => x.to_dtype(DType::F32)?,
        _ => x.clone(),
    };
    let centered = x32.broadcast_sub(&x32.mean_keepdim(D::Minus1)?)?;
    let var = centered.sqr()?.mean_keepdim(D::Minus1)?;
    let normed = centered.broadcast_div(&(var + eps)?.sqrt()?)?;
    normed
        .to_dtype(dtype)?
        .broadcast_mul(weight)?
        .broadcast_add(bias)
}

/// Softmax over the last dimension.
pub fn softmax_last(x: &Tensor, grad: bool) -> Result<Tensor> {
    if grad {
        candle_nn::ops::softmax(x, D::Minus1)
    } else {
        candle_nn::ops::softmax_last_dim(&x.contiguous()?)
    }
}

/// `x @ w^T (+ b)` for `x` of any rank, with `w` stored `(out, in)` as in PyTorch.
pub fn linear(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    let dims = x.dims().to_vec();
    let inner = *dims.last().expect("linear input has a last dimension");
    let rows = x.elem_count() / inner.max(1);
    let x2 = x.reshape((rows, inner))?;
    // A weight that is not a variable is frozen: skip its (discarded) gradient in backward.
    let y = if w.is_variable() {
        x2.matmul(&w.t()?)?
    } else {
        crate::frozen_linear::frozen_matmul(&x2, w)?
    };
    let y = match b {
        Some(b) => y.broadcast_add(b)?,
        None => y,
    };
    let mut out = dims;
    *out.last_mut().expect("non-empty") = w.dim(0)?;
    y.reshape(out)
}

/// [`linear`] for inference: few-row products (decoding) take the streaming kernel in
/// [`crate::gemv`], which records no backward; never use it where a gradient is needed.
pub fn linear_no_grad(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    let dims = x.dims().to_vec();
    let inner = *dims.last().expect("linear input has a last dimension");
    let rows = x.elem_count() / inner.max(1);
    match crate::gemv::small_rows_matmul(&x.reshape((rows, inner))?, w)? {
        Some(y) => {
            let y = match b {
                Some(b) => y.broadcast_add(b)?,
                None => y,
            };
            let mut out = dims;
            *out.last_mut().expect("non-empty") = w.dim(0)?;
            y.reshape(out)
        }
        None => linear(x, w, b),
    }
}

/// `[-x2, x1]` for the two halves of the last dimension (the rotary convention of transformers).
pub fn rotate_half(x: &Tensor) -> Result<Tensor> {
    let d = x.dim(D::Minus1)?;
    let x1 = x.narrow(D::Minus1, 0, d / 2)?;
    let x2 = x.narrow(D::Minus1, d / 2, d - d / 2)?;
    Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)
}

/// `x * cos + rotate_half(x) * sin`, broadcasting `cos`/`sin` over the head dimension.
pub fn apply_rotary(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    x.broadcast_mul(cos)?
        .add(&rotate_half(x)?.broadcast_mul(sin)?)
}

/// SwiGLU MLP: `down(silu(gate(x)) * up(x))`, with optional biases (the vision tower has them).
pub fn swiglu_mlp(
    x: &Tensor,
    gate: (&Tensor, Option<&Tensor>),
    up: (&Tensor, Option<&Tensor>),
    down: (&Tensor, Option<&Tensor>),
) -> Result<Tensor> {
    let g = linear(x, gate.0, gate.1)?.silu()?;
    let u = linear(x, up.0, up.1)?;
    linear(&(g * u)?, down.0, down.1)
}

/// The rotary inverse frequencies `1 / theta^(2i/d)` for `i < d/2`.
pub fn inv_freq(head_dim: usize, theta: f64) -> Vec<f32> {
    (0..head_dim / 2)
        .map(|i| (1.0 / theta.powf((2 * i) as f64 / head_dim as f64)) as f32)
        .collect()
}
