//! The training forward: per-token log-probs of given completions, differentiable.
//!
//! Prompts are left-padded and completions right-padded, so every completion starts in the
//! same column and one slice of the logits predicts all of them. Positions are computed over
//! the whole prompt + completion exactly as generation computes them step by step, so these
//! log-probs equal the sampler's for the same tokens (the tests check it).

use candle_core::{DType, Tensor};

use crate::error::{ModelError, Result};
use crate::generate::join_images;
use crate::model::{Batch, ImageInputs, Model};

/// One prompt + completion pair.
#[derive(Debug, Clone)]
pub struct Sequence {
    pub prompt: Vec<u32>,
    pub completion: Vec<u32>,
    pub images: Option<ImageInputs>,
}

pub struct TokenLogprobs {
    /// `(B, C)`: log-prob of each completion token (0 where padded).
    pub logprobs: Tensor,
    /// `(B, C)` f32: 1 for completion tokens, 0 for padding.
    pub mask: Tensor,
    /// `(B, C)` entropy of the predicted distribution (no gradient), when asked for.
    pub entropy: Option<Tensor>,
}

/// Log-probs of each completion token under `model`, at `temperature` (logits / T, as the
/// sampler uses; 0 means 1). `grad` keeps the graph for backward.
pub fn completion_logprobs(
    model: &Model,
    seqs: &[Sequence],
    temperature: f32,
    grad: bool,
    with_entropy: bool,
) -> Result<TokenLogprobs> {
    if seqs.is_empty() {
        return Err(ModelError::invalid("no sequences"));
    }
    if let Some(i) = seqs.iter().position(|s| s.prompt.is_empty()) {
        return Err(ModelError::invalid(format!(
            "sequence {i} has an empty prompt"
        )));
    }
    let p = seqs.iter().map(|s| s.prompt.len()).max().unwrap_or(0);
    let c = seqs
        .iter()
        .map(|s| s.completion.len())
        .max()
        .unwrap_or(0)
        .max(1);
    let pad = model.pad_token_id();
    let b = seqs.len();
    let mut ids = Vec::with_capacity(b);
    let mut mask = Vec::with_capacity(b);
    let mut targets = Vec::with_capacity(b * c);
    let mut tmask = Vec::with_capacity(b * c);
    for s in seqs {
        let lp = p - s.prompt.len();
        let mut row = vec![pad; lp];
        row.extend_from_slice(&s.prompt);
        row.extend_from_slice(&s.completion);
        row.resize(p + c, pad);
        let mut m = vec![0u8; lp];
        m.extend(std::iter::repeat_n(
            1u8,
            s.prompt.len() + s.completion.len(),
        ));
        m.resize(p + c, 0);
        ids.push(row);
        mask.push(m);
        for j in 0..c {
            targets.push(s.completion.get(j).copied().unwrap_or(0));
            tmask.push(if j < s.completion.len() { 1f32 } else { 0f32 });
        }
    }
    let imgs: Vec<&Option<ImageInputs>> = seqs.iter().map(|s| &s.images).collect();
    let batch = Batch {
        ids,
        mask,
        images: join_images(&imgs)?,
    };
    let hidden = model.hidden(&batch, None, None, grad)?;
    // Half-precision models take their log-softmax in f32; f64 (used by gradient checks) stays.
    let logits = model.head(&hidden.narrow(1, p - 1, c)?, grad)?;
    let logits = match logits.dtype() {
        DType::F64 => logits,
        _ => logits.to_dtype(DType::F32)?,
    };
    let t = if temperature > 0.0 { temperature } else { 1.0 } as f64;
    let dev = model.device();
    let v = logits.dim(2)?;
    let flat = logits.reshape((b * c, v))?;
    let targets = Tensor::from_vec(targets, b * c, dev)?;
    let tmask = Tensor::from_vec(tmask, (b, c), dev)?.to_dtype(logits.dtype())?;
    let logprobs = crate::token_logprob::token_logprobs(&flat, &targets, t)?.reshape((b, c))?;
    let logprobs = (logprobs * &tmask)?;
    let entropy = if with_entropy {
        let ent = crate::token_logprob::row_entropy(&flat, t)?.reshape((b, c))?;
        Some((ent * &tmask)?)
    } else {
        None
    };
    Ok(TokenLogprobs {
        logprobs,
        mask: tmask,
        entropy,
    })
}
