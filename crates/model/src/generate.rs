//! Batched generation with a KV cache: greedy or sampled (temperature, top-k, top-p), stop
//! tokens, seeded per row, returning token ids, text and the log-prob of every sampled token.
//!
//! Log-probs are taken from the full distribution at the sampling temperature (before top-k /
//! top-p truncation), which is what a policy-gradient trainer compares its own log-probs with.
//! Decoding positions continue from each row's own last position, so they equal the positions
//! the training forward computes for the same prompt + completion.
//!
//! Banned tokens (`banned_token_ids`: the trainer and eval ban the image / video placeholders and
//! vision boundaries, see [`Model::vision_token_ids`]) are never emitted. A draw that lands on
//! one is drawn again from the row with the banned tokens removed (for plain sampling, the
//! distribution conditioned on not drawing them); greedy takes the best allowed token. Like
//! top-k / top-p this is a truncation:
//! the recorded log-probs stay those of the full distribution, which the training forward
//! computes too (they agree exactly), and a draw that never lands on a banned token is the same
//! draw as without the ban.

use candle_core::{DType, IndexOp, Tensor};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::decoder::KvCache;
use crate::error::{ModelError, Result};
use crate::fastmath::{block_sum_exp, exp_f32, row_max, BLOCK};
pub use crate::model::Prompt;
use crate::model::{Batch, ImageInputs, Model};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamplingConfig {
    pub max_new_tokens: usize,
    /// 0 means greedy.
    pub temperature: f32,
    /// 1.0 turns nucleus sampling off.
    pub top_p: f32,
    /// 0 turns top-k off.
    pub top_k: usize,
    pub seed: u64,
    /// Extra stop ids; the model's end-of-turn / end-of-text ids always stop.
    pub stop_token_ids: Vec<u32>,
    /// Generate exactly `max_new_tokens` (benchmarks); stop tokens do not end a sequence.
    pub ignore_eos: bool,
    /// Tokens never emitted (rejected and redrawn; greedy takes the best allowed one).
    pub banned_token_ids: Vec<u32>,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        SamplingConfig {
            max_new_tokens: 256,
            temperature: 0.0,
            top_p: 1.0,
            top_k: 0,
            seed: 0,
            stop_token_ids: Vec::new(),
            ignore_eos: false,
            banned_token_ids: Vec::new(),
        }
    }
}

impl SamplingConfig {
    pub fn greedy(max_new_tokens: usize) -> Self {
        SamplingConfig {
            max_new_tokens,
            ..Default::default()
        }
    }
    pub fn validate(&self) -> Result<()> {
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return Err(ModelError::invalid("temperature must be >= 0"));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(ModelError::invalid("top_p must be in (0, 1]"));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generation {
    pub prompt_len: usize,
    /// Generated ids, including the stop token when one ended the sequence.
    pub tokens: Vec<u32>,
    /// Log-prob of each generated token.
    pub logprobs: Vec<f32>,
    /// Decoded text without special tokens.
    pub text: String,
    /// True when a stop token ended the sequence, false when `max_new_tokens` did.
    pub stopped: bool,
}

/// Picks a token from one row of logits, never one of `cfg.banned_token_ids`; returns it with its
/// log-prob under the full distribution.
pub fn sample_row(logits: &[f32], cfg: &SamplingConfig, rng: &mut ChaCha8Rng) -> (u32, f32) {
    let banned = &cfg.banned_token_ids;
    let first = sample_any(logits, cfg, rng);
    if banned.is_empty() || !banned.contains(&first.0) {
        return first;
    }
    // Rare: draw again from the row with the banned tokens removed (for plain sampling, exactly
    // the distribution conditioned on not drawing them). The copy costs one pass over the row.
    let mut masked = logits.to_vec();
    for &b in banned {
        if let Some(l) = masked.get_mut(b as usize) {
            *l = f32::NEG_INFINITY;
        }
    }
    if masked.iter().all(|l| *l == f32::NEG_INFINITY) {
        // Every token banned: a configuration error the caller sees in the text; do not loop.
        return first;
    }
    let (mut tok, _) = sample_any(&masked, cfg, rng);
    if banned.contains(&tok) {
        // The fast exp floors at e^-87, so a removed token keeps a weight the draw can land on
        // only through rounding at the row's end: take the best allowed token then.
        tok = (0..masked.len())
            .filter(|i| !banned.contains(&(*i as u32)))
            .max_by(|&a, &b| masked[a].total_cmp(&masked[b]).then(b.cmp(&a)))
            .unwrap_or(tok as usize) as u32;
    }
    (tok, logprob_of(logits, cfg, tok as usize))
}

/// Log-prob of token `i` under the full distribution at the sampling temperature.
fn logprob_of(logits: &[f32], cfg: &SamplingConfig, i: usize) -> f32 {
    let t = if cfg.temperature > 0.0 {
        cfg.temperature
    } else {
        1.0
    };
    let max = row_max(logits);
    let total: f64 = logits
        .chunks(BLOCK)
        .map(|c| block_sum_exp(c, max, t) as f64)
        .sum();
    (logits[i] - max) / t - total.ln() as f32
}

/// [`sample_row`] without the ban.
fn sample_any(logits: &[f32], cfg: &SamplingConfig, rng: &mut ChaCha8Rng) -> (u32, f32) {
    let t = if cfg.temperature > 0.0 {
        cfg.temperature
    } else {
        1.0
    };
    let max = row_max(logits);
    // Unnormalised weights summed per block of the vocabulary: the total gives the log-sum-exp,
    // and the plain sampler below walks the blocks instead of recomputing them.
    let blocks: Vec<f64> = logits
        .chunks(BLOCK)
        .map(|c| block_sum_exp(c, max, t) as f64)
        .collect();
    let total: f64 = blocks.iter().sum();
    let lse = total.ln() as f32;
    let logprob = |i: usize| (logits[i] - max) / t - lse;
    if cfg.temperature == 0.0 {
        let mut best = 0;
        for (i, &l) in logits.iter().enumerate() {
            if l > logits[best] {
                best = i;
            }
        }
        return (best as u32, logprob(best));
    }
    let plain = (cfg.top_k == 0 || cfg.top_k >= logits.len()) && cfg.top_p >= 1.0;
    if plain {
        // The whole vocabulary: walk the block sums, then the weights of the block the uniform
        // draw lands in, without building a candidate list.
        let mut u = rng.random::<f64>() * total;
        let mut pick = logits.len() - 1;
        for (block, (chunk, &w)) in logits.chunks(BLOCK).zip(&blocks).enumerate() {
            if u >= w {
                u -= w;
                continue;
            }
            pick = block * BLOCK + chunk.len() - 1;
            for (k, &l) in chunk.iter().enumerate() {
                let w = exp_f32((l - max) / t) as f64;
                if u < w {
                    pick = block * BLOCK + k;
                    break;
                }
                u -= w;
            }
            break;
        }
        return (pick as u32, logprob(pick));
    }
    let mut cand: Vec<usize> = (0..logits.len()).collect();
    if cfg.top_k > 0 && cfg.top_k < cand.len() {
        cand.select_nth_unstable_by(cfg.top_k - 1, |&a, &b| logits[b].total_cmp(&logits[a]));
        cand.truncate(cfg.top_k);
    }
    if cfg.top_p < 1.0 {
        cand.sort_unstable_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
        let probs: Vec<f64> = cand.iter().map(|&i| exp_f32(logprob(i)) as f64).collect();
        let total: f64 = probs.iter().sum();
        let mut acc = 0.0;
        let mut keep = cand.len();
        for (k, p) in probs.iter().enumerate() {
            acc += p / total;
            if acc >= cfg.top_p as f64 {
                keep = k + 1;
                break;
            }
        }
        cand.truncate(keep);
    }
    let weights: Vec<f64> = cand.iter().map(|&i| exp_f32(logprob(i)) as f64).collect();
    let total: f64 = weights.iter().sum();
    let mut u = rng.random::<f64>() * total;
    let mut pick = cand[cand.len() - 1];
    for (&i, w) in cand.iter().zip(&weights) {
        if u < *w {
            pick = i;
            break;
        }
        u -= w;
    }
    (pick as u32, logprob(pick))
}

/// The seed of row `row`: independent streams, so a row's tokens do not depend on its batch.
pub fn row_seed(seed: u64, row: usize) -> u64 {
    seed ^ (row as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Concatenates the images of several prompts in order.
pub fn join_images(prompts: &[&Option<ImageInputs>]) -> Result<Option<ImageInputs>> {
    let with: Vec<&ImageInputs> = prompts.iter().filter_map(|p| p.as_ref()).collect();
    if with.is_empty() {
        return Ok(None);
    }
    let pv: Vec<&Tensor> = with.iter().map(|i| &i.pixel_values).collect();
    Ok(Some(ImageInputs {
        pixel_values: Tensor::cat(&pv, 0)?,
        grids: with.iter().flat_map(|i| i.grids.iter().copied()).collect(),
    }))
}

/// Generates a completion for every prompt, in one batch.
pub fn generate(
    model: &Model,
    prompts: &[Prompt],
    cfg: &SamplingConfig,
) -> Result<Vec<Generation>> {
    cfg.validate()?;
    if prompts.is_empty() {
        return Ok(Vec::new());
    }
    if let Some(i) = prompts.iter().position(|p| p.ids.is_empty()) {
        return Err(ModelError::invalid(format!("prompt {i} has no tokens")));
    }
    let b = prompts.len();
    let pad = model.pad_token_id();
    let mut stops = model.stop_token_ids();
    stops.extend(cfg.stop_token_ids.iter().copied());
    if cfg.ignore_eos {
        stops.clear();
    }
    let seqs: Vec<Vec<u32>> = prompts.iter().map(|p| p.ids.clone()).collect();
    let mut batch = Batch::left_padded(&seqs, pad);
    let imgs: Vec<&Option<ImageInputs>> = prompts.iter().map(|p| &p.images).collect();
    batch.images = join_images(&imgs)?;
    let (positions, mut next_pos) = model.positions(&batch)?;
    let rows = positions.dim(0)?;
    let mut key_valid = batch.mask.clone();
    let len = batch.len();
    let mut cache = KvCache::with_capacity(len + cfg.max_new_tokens);
    let hidden = model.hidden_with_keys(&batch, &positions, &key_valid, Some(&mut cache), false)?;
    let mut logits = last_logits(model, &hidden.narrow(1, len - 1, 1)?)?;

    let mut rngs: Vec<ChaCha8Rng> = prompts
        .iter()
        .enumerate()
        .map(|(r, p)| ChaCha8Rng::seed_from_u64(p.seed.unwrap_or_else(|| row_seed(cfg.seed, r))))
        .collect();
    let mut out: Vec<Generation> = prompts
        .iter()
        .map(|p| Generation {
            prompt_len: p.ids.len(),
            tokens: Vec::new(),
            logprobs: Vec::new(),
            text: String::new(),
            stopped: false,
        })
        .collect();
    for step in 0..cfg.max_new_tokens {
        // Rows sample independently (each has its own generator), so in parallel.
        let picks: Vec<Option<(u32, f32)>> = out
            .par_iter()
            .zip(rngs.par_iter_mut())
            .zip(logits.par_iter())
            .map(|((g, rng), row)| (!g.stopped).then(|| sample_row(row, cfg, rng)))
            .collect();
        let mut next = Vec::with_capacity(b);
        for (g, pick) in out.iter_mut().zip(picks) {
            let Some((tok, lp)) = pick else {
                next.push(pad);
                continue;
            };
            g.tokens.push(tok);
            g.logprobs.push(lp);
            if stops.contains(&tok) {
                g.stopped = true;
            }
            next.push(tok);
        }
        if out.iter().all(|g| g.stopped) || step + 1 == cfg.max_new_tokens {
            break;
        }
        for (r, kv) in key_valid.iter_mut().enumerate() {
            kv.push(u8::from(!out[r].stopped || next[r] != pad));
        }
        let pos: Vec<f32> = (0..rows)
            .flat_map(|_| next_pos.iter().map(|&p| p as f32))
            .collect();
        let pos = Tensor::from_vec(pos, (rows, b, 1), model.device())?;
        for p in next_pos.iter_mut() {
            *p += 1;
        }
        let step_batch = Batch {
            ids: next.iter().map(|&t| vec![t]).collect(),
            mask: vec![vec![1]; b],
            images: None,
        };
        let hidden =
            model.hidden_with_keys(&step_batch, &pos, &key_valid, Some(&mut cache), false)?;
        logits = last_logits(model, &hidden)?;
    }
    if let Some(tok) = &model.tokenizer {
        for g in &mut out {
            let body: &[u32] = if g.stopped {
                &g.tokens[..g.tokens.len() - 1]
            } else {
                &g.tokens
            };
            g.text = tok.decode(body, true)?;
        }
    }
    Ok(out)
}

/// `(B, 1, H)` hidden → per-row f32 logits.
fn last_logits(model: &Model, hidden: &Tensor) -> Result<Vec<Vec<f32>>> {
    let l = model
        .head(hidden, false)?
        .i((.., 0, ..))?
        .to_dtype(DType::F32)?;
    Ok(l.to_vec2::<f32>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_banned_favourite_is_never_drawn_and_keeps_the_full_log_prob() {
        let mut logits = vec![0.0f32; 300];
        logits[7] = 12.0; // ~99.5% of the mass
        logits[9] = 1.0;
        let cfg = SamplingConfig {
            temperature: 1.0,
            banned_token_ids: vec![7],
            ..Default::default()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut nine = 0;
        for _ in 0..500 {
            let (tok, lp) = sample_row(&logits, &cfg, &mut rng);
            assert_ne!(tok, 7);
            assert!((lp - logprob_of(&logits, &cfg, tok as usize)).abs() < 1e-6);
            nine += usize::from(tok == 9);
        }
        // Conditioned on not 7, token 9 has e / (e + 298) ~ 0.9%; far from dominant.
        assert!(nine < 40, "{nine}");
        let greedy = SamplingConfig {
            temperature: 0.0,
            ..cfg.clone()
        };
        assert_eq!(sample_row(&logits, &greedy, &mut rng).0, 9);
        // All mass banned but one token: that token.
        let mut spike = vec![-1e4f32; 4];
        spike[0] = 0.0;
        let only = SamplingConfig {
            temperature: 1.0,
            banned_token_ids: vec![0, 1, 2],
            ..Default::default()
        };
        assert_eq!(sample_row(&spike, &only, &mut rng).0, 3);
    }
}
