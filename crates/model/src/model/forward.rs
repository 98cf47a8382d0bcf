//! The forward pass: rotary positions, input embeddings with the image features placed at the
//! image pads, the decoder's hidden states, and logits. One path serves generation and
//! training (`grad` says whether a backward is recorded).

use candle_core::Tensor;

use super::{ids_tensor, Batch, Model};
use crate::decoder::KvCache;
use crate::error::{ModelError, Result};

impl Model {
    /// Rotary positions `(R, B, T)` for a batch: multimodal (R = 3) for Qwen2.5-VL, else the
    /// count of real tokens before each position (R = 1). Also returns, per row, the next
    /// position a generated token takes.
    pub fn positions(&self, batch: &Batch) -> Result<(Tensor, Vec<i64>)> {
        let dev = self.device();
        if self.config.uses_mrope() {
            let grids = batch
                .images
                .as_ref()
                .map(|i| i.grids.clone())
                .unwrap_or_default();
            let ri = crate::rope_index::rope_index(&batch.ids, &batch.mask, &grids, &self.config)?;
            let t = ri.to_tensor(dev)?;
            let next = (0..ri.batch)
                .map(|b| {
                    (0..3)
                        .map(|r| ri.positions[(r * ri.batch + b) * ri.len + ri.len - 1])
                        .max()
                        .unwrap_or(-1)
                        + 1
                })
                .collect();
            return Ok((t, next));
        }
        let (b, len) = (batch.mask.len(), batch.len());
        let mut pos = Vec::with_capacity(b * len);
        let mut next = Vec::with_capacity(b);
        for m in &batch.mask {
            let mut c: i64 = 0;
            for &v in m {
                // Padding positions take 1, as transformers' generate does; they are masked.
                pos.push(if v != 0 { c as f32 } else { 1.0 });
                c += i64::from(v != 0);
            }
            next.push(c);
        }
        Ok((Tensor::from_vec(pos, (1, b, len), dev)?, next))
    }

    /// Input embeddings with image features placed at the `<|image_pad|>` positions.
    pub fn embed(&self, batch: &Batch, grad: bool) -> Result<Tensor> {
        Ok(self.embed_parts(batch, grad)?.0)
    }

    /// [`Model::embed`], and Qwen3-VL's DeepStack features for the first decoder layers.
    fn embed_parts(
        &self,
        batch: &Batch,
        grad: bool,
    ) -> Result<(Tensor, Option<crate::decoder::DeepStack>)> {
        let ids = ids_tensor(&batch.ids, self.device())?;
        let text = self.decoder.embed(&ids)?;
        let Some(images) = &batch.images else {
            return Ok((text, None));
        };
        let image_token = self
            .config
            .image_token_id
            .ok_or_else(|| ModelError::invalid("the config names no image_token_id"))?;
        let mut deepstack = None;
        let feats = if let Some(iv) = &self.internvl {
            iv.forward(&images.pixel_values.to_dtype(self.dtype())?, grad)?
        } else if let Some(qv) = &self.qwen3vl {
            let out = qv.forward(
                &images.pixel_values.to_dtype(self.dtype())?,
                &images.grids,
                grad,
            )?;
            let visual: Vec<Vec<bool>> = batch
                .ids
                .iter()
                .map(|r| r.iter().map(|&id| id == image_token).collect())
                .collect();
            if !out.deepstack.is_empty() {
                deepstack = Some(crate::decoder::DeepStack::new(out.deepstack, &visual)?);
            }
            out.embeds
        } else {
            let vision = self.vision.as_ref().ok_or_else(|| {
                ModelError::invalid("this model has no vision tower; the batch has images")
            })?;
            vision.forward(
                &images.pixel_values.to_dtype(self.dtype())?,
                &images.grids,
                grad,
            )?
        };
        let (n_feat, h) = feats.dims2()?;
        let (b, t, _) = text.dims3()?;
        // Row k of `feats` goes to the k-th image-pad position; every other position picks
        // an appended zero row and keeps its text embedding. index_select keeps this
        // differentiable for both the text embeddings and the vision tower.
        let mut pick = Vec::with_capacity(b * t);
        let mut keep = Vec::with_capacity(b * t);
        let mut k = 0u32;
        for row in &batch.ids {
            for &id in row {
                if id == image_token {
                    pick.push(k);
                    keep.push(0f32);
                    k += 1;
                } else {
                    pick.push(n_feat as u32);
                    keep.push(1f32);
                }
            }
        }
        if k as usize != n_feat {
            return Err(ModelError::invalid(format!(
                "the batch has {k} image-pad tokens but the images give {n_feat} features"
            )));
        }
        let dev = self.device();
        let padded = Tensor::cat(&[&feats, &Tensor::zeros((1, h), feats.dtype(), dev)?], 0)?;
        let placed = padded.index_select(&Tensor::from_vec(pick, b * t, dev)?, 0)?;
        let keep = Tensor::from_vec(keep, (b * t, 1), dev)?.to_dtype(text.dtype())?;
        let merged = text
            .reshape((b * t, h))?
            .broadcast_mul(&keep)?
            .add(&placed)?;
        Ok((merged.reshape((b, t, h))?, deepstack))
    }

    /// Final hidden states `(B, T, H)`. `cache`, when given, holds earlier positions and
    /// receives these; `positions` overrides the computed ones (decoding steps pass theirs).
    pub fn hidden(
        &self,
        batch: &Batch,
        positions: Option<&Tensor>,
        cache: Option<&mut KvCache>,
        grad: bool,
    ) -> Result<Tensor> {
        let (x, deepstack) = self.embed_parts(batch, grad)?;
        let owned;
        let pos = match positions {
            Some(p) => p,
            None => {
                owned = self.positions(batch)?.0;
                &owned
            }
        };
        self.decoder
            .forward_with(&x, pos, &batch.mask, cache, grad, deepstack.as_ref())
    }

    /// Forward with a key mask that also covers cached positions (decoding).
    pub fn hidden_with_keys(
        &self,
        batch: &Batch,
        positions: &Tensor,
        key_valid: &[Vec<u8>],
        cache: Option<&mut KvCache>,
        grad: bool,
    ) -> Result<Tensor> {
        let (x, deepstack) = self.embed_parts(batch, grad)?;
        self.decoder
            .forward_with(&x, positions, key_valid, cache, grad, deepstack.as_ref())
    }

    /// Logits `(B, T, vocab)` for a whole batch.
    pub fn logits(&self, batch: &Batch, grad: bool) -> Result<Tensor> {
        let h = self.hidden(batch, None, None, grad)?;
        self.decoder.logits(&h, grad)
    }

    /// Logits from hidden states (any leading shape).
    pub fn head(&self, hidden: &Tensor, grad: bool) -> Result<Tensor> {
        self.decoder.logits(hidden, grad)
    }
}
