//! Multimodal rotary position ids (M-RoPE), as transformers' `Qwen2_5_VLModel.get_rope_index`.
//!
//! Qwen2.5-VL rotates every query/key with three position ids (temporal, height, width). Text
//! tokens use the same id on all three axes and count up by one; the `<|image_pad|>` tokens of one
//! image (one run of consecutive image tokens, `t * h * w / merge²` of them) get their grid
//! coordinates offset by the position where the image starts, and the text after an image
//! continues from `start + max(h, w) / merge`. Padding (attention mask 0) is skipped: positions
//! are laid out over the unmasked tokens only, and masked slots hold 0.
//!
//! `deltas[b]` is `max position + 1 - (number of unmasked tokens of row b)`: a token decoded
//! after the prompt, with `n` unmasked tokens before it, sits at position `n + deltas[b]` on all
//! three axes (transformers 5.x convention; 4.x subtracted the padded length instead).

use candle_core::{Device, Tensor};

use crate::config::ModelConfig;
use crate::error::{ModelError, Result};

/// Position ids for a batch: `positions[axis][b][t]` flattened row-major, axis 0 = temporal,
/// 1 = height, 2 = width.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RopeIndex {
    pub batch: usize,
    pub len: usize,
    /// `[3][batch][len]`, row-major.
    pub positions: Vec<i64>,
    /// One per row: see the module docs.
    pub deltas: Vec<i64>,
}

impl RopeIndex {
    /// The position of token `t` of row `b` on `axis` (0 temporal, 1 height, 2 width).
    pub fn get(&self, axis: usize, b: usize, t: usize) -> i64 {
        self.positions[(axis * self.batch + b) * self.len + t]
    }

    /// `(3, batch, len)` f32, the layout the decoder's multimodal rotary takes.
    pub fn to_tensor(&self, device: &Device) -> Result<Tensor> {
        let data: Vec<f32> = self.positions.iter().map(|&p| p as f32).collect();
        Ok(Tensor::from_vec(data, (3, self.batch, self.len), device)?)
    }

    /// The three axes of one row, `[axis][t]`.
    pub fn row(&self, b: usize) -> [Vec<i64>; 3] {
        std::array::from_fn(|axis| (0..self.len).map(|t| self.get(axis, b, t)).collect())
    }
}

fn check_mask(input_ids: &[Vec<u32>], attention_mask: &[Vec<u8>]) -> Result<usize> {
    if input_ids.len() != attention_mask.len() {
        return Err(ModelError::invalid(format!(
            "rope_index: {} rows of input ids but {} rows of attention mask",
            input_ids.len(),
            attention_mask.len()
        )));
    }
    let len = input_ids.first().map_or(0, Vec::len);
    for (b, (ids, mask)) in input_ids.iter().zip(attention_mask).enumerate() {
        if ids.len() != len || mask.len() != len {
            return Err(ModelError::invalid(format!(
                "rope_index: row {b} has {} ids and {} mask values; every row must have {len}",
                ids.len(),
                mask.len()
            )));
        }
    }
    Ok(len)
}

/// Positions of a text-only batch, as transformers' fallback when there is no image: the
/// cumulative sum of the mask minus one on all three axes, masked slots 1, and
/// `deltas[b] = max over row b (masked slots included) + 1 - number of unmasked tokens`.
pub fn text_positions(attention_mask: &[Vec<u8>]) -> RopeIndex {
    let batch = attention_mask.len();
    let len = attention_mask.iter().map(Vec::len).max().unwrap_or(0);
    let mut row_pos = vec![0i64; batch * len];
    let mut deltas = Vec::with_capacity(batch);
    for (b, mask) in attention_mask.iter().enumerate() {
        let mut count = 0i64;
        let mut max = i64::MIN;
        for t in 0..len {
            let on = mask.get(t).copied().unwrap_or(0) != 0;
            let p = if on {
                count += 1;
                count - 1
            } else {
                1
            };
            row_pos[b * len + t] = p;
            max = max.max(p);
        }
        deltas.push(if len == 0 { 0 } else { max + 1 - count });
    }
    let mut positions = Vec::with_capacity(3 * batch * len);
    for _ in 0..3 {
        positions.extend_from_slice(&row_pos);
    }
    RopeIndex {
        batch,
        len,
        positions,
        deltas,
    }
}

/// Multimodal position ids for a batch, exactly as transformers' `get_rope_index` with
/// `mm_token_type_ids` marking the image tokens. `image_grids` are the `[t, h, w]` patch grids
/// of every image of the batch, in order (row 0's images first), as the processor returns them.
///
/// When the batch has no image token and no grid this is [`text_positions`] (transformers'
/// text fallback). Video tokens are not supported and give an error, as do image runs whose
/// length does not match their grid and grids left over after the last image.
pub fn rope_index(
    input_ids: &[Vec<u32>],
    attention_mask: &[Vec<u8>],
    image_grids: &[[usize; 3]],
    cfg: &ModelConfig,
) -> Result<RopeIndex> {
    let len = check_mask(input_ids, attention_mask)?;
    let batch = input_ids.len();
    let image_token = cfg.image_token_id;
    let has_image_tokens = image_token.is_some_and(|id| {
        input_ids
            .iter()
            .zip(attention_mask)
            .any(|(ids, m)| ids.iter().zip(m).any(|(&t, &on)| on != 0 && t == id))
    });
    if let Some(video) = cfg.video_token_id {
        let found = input_ids
            .iter()
            .zip(attention_mask)
            .any(|(ids, m)| ids.iter().zip(m).any(|(&t, &on)| on != 0 && t == video));
        if found {
            return Err(ModelError::invalid(format!(
                "rope_index: the input holds video tokens (id {video}); video is not supported"
            )));
        }
    }
    if image_grids.is_empty() {
        if has_image_tokens {
            return Err(ModelError::invalid(
                "rope_index: the input holds image tokens but no image grid was given",
            ));
        }
        let mut idx = text_positions(attention_mask);
        idx.len = len;
        return Ok(idx);
    }
    let image_token = image_token.ok_or_else(|| {
        ModelError::invalid("rope_index: image grids given but the config has no image_token_id")
    })?;
    let merge = cfg.spatial_merge_size().ok_or_else(|| {
        ModelError::invalid("rope_index: image grids given but the model has no vision tower")
    })?;
    for g in image_grids {
        if g[0] == 0 || g[1] % merge != 0 || g[2] % merge != 0 || g[1] == 0 || g[2] == 0 {
            return Err(ModelError::invalid(format!(
                "rope_index: image grid {g:?} is not a non-empty multiple of the merge size {merge}"
            )));
        }
    }

    let mut positions = vec![0i64; 3 * batch * len];
    let mut deltas = Vec::with_capacity(batch);
    let mut next_grid = 0usize;
    for b in 0..batch {
        // The unmasked tokens of this row, and where they sit.
        let slots: Vec<usize> = (0..len).filter(|&t| attention_mask[b][t] != 0).collect();
        let tokens: Vec<u32> = slots.iter().map(|&t| input_ids[b][t]).collect();
        let mut row: [Vec<i64>; 3] = Default::default();
        let mut current = 0i64;
        let mut i = 0usize;
        while i < tokens.len() {
            let is_image = tokens[i] == image_token;
            let mut j = i;
            while j < tokens.len() && (tokens[j] == image_token) == is_image {
                j += 1;
            }
            let run = j - i;
            if !is_image {
                for k in 0..run as i64 {
                    for axis in row.iter_mut() {
                        axis.push(current + k);
                    }
                }
                current += run as i64;
            } else {
                let g = *image_grids.get(next_grid).ok_or_else(|| {
                    ModelError::invalid(format!(
                        "rope_index: row {b} has more images than the {} grids given",
                        image_grids.len()
                    ))
                })?;
                next_grid += 1;
                let (gt, gh, gw) = (g[0], g[1] / merge, g[2] / merge);
                if run != gt * gh * gw {
                    return Err(ModelError::invalid(format!(
                        "rope_index: row {b} has a run of {run} image tokens but image {} with \
                         grid {g:?} needs {}",
                        next_grid - 1,
                        gt * gh * gw
                    )));
                }
                for ti in 0..gt as i64 {
                    for hi in 0..gh as i64 {
                        for wi in 0..gw as i64 {
                            row[0].push(current + ti);
                            row[1].push(current + hi);
                            row[2].push(current + wi);
                        }
                    }
                }
                current += (gh.max(gw)) as i64;
            }
            i = j;
        }
        let max = row
            .iter()
            .flat_map(|a| a.iter().copied())
            .max()
            .unwrap_or(-1);
        deltas.push(if tokens.is_empty() {
            0
        } else {
            max + 1 - tokens.len() as i64
        });
        for (axis, vals) in row.iter().enumerate() {
            for (&slot, &p) in slots.iter().zip(vals) {
                positions[(axis * batch + b) * len + slot] = p;
            }
        }
    }
    if next_grid != image_grids.len() {
        return Err(ModelError::invalid(format!(
            "rope_index: {} image grids given but the input holds {} images",
            image_grids.len(),
            next_grid
        )));
    }
    Ok(RopeIndex {
        batch,
        len,
        positions,
        deltas,
    })
}
