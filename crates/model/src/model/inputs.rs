//! What a forward pass takes: token ids (padded into a [`Batch`] or one [`Prompt`]) and the
//! images' patches.

use candle_core::{Device, Tensor};

use crate::error::{ModelError, Result};

/// Images for one forward pass: patches of every image in the batch, in order of appearance.
#[derive(Debug, Clone)]
pub struct ImageInputs {
    /// Qwen2.5-VL: `(num_patches, channels * temporal_patch * patch * patch)`; InternVL:
    /// `(tiles, channels, tile height, tile width)`.
    pub pixel_values: Tensor,
    /// `[t, h, w]` in patches, one per image.
    pub grids: Vec<[usize; 3]>,
}

/// One prompt for generation (`generate::generate`): token ids (chat template already applied,
/// image pads expanded) and its images.
#[derive(Debug, Clone)]
pub struct Prompt {
    pub ids: Vec<u32>,
    pub images: Option<ImageInputs>,
    /// This prompt's own sampling seed. When set, its tokens depend on the prompt and this seed
    /// only, never on the rest of the batch; otherwise the row's seed derives from the
    /// config's seed and the row index.
    pub seed: Option<u64>,
}

impl Prompt {
    pub fn text(ids: Vec<u32>) -> Prompt {
        Prompt {
            ids,
            images: None,
            seed: None,
        }
    }
}

/// A padded batch of token ids with its attention mask (1 = token, 0 = padding).
#[derive(Debug, Clone)]
pub struct Batch {
    pub ids: Vec<Vec<u32>>,
    pub mask: Vec<Vec<u8>>,
    pub images: Option<ImageInputs>,
}

impl Batch {
    /// Left-pads sequences to one length (generation and the training forward both do this, so
    /// a completion always starts in the same column).
    pub fn left_padded(seqs: &[Vec<u32>], pad_id: u32) -> Batch {
        let len = seqs.iter().map(Vec::len).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(seqs.len());
        let mut mask = Vec::with_capacity(seqs.len());
        for s in seqs {
            let pad = len - s.len();
            let mut row = vec![pad_id; pad];
            row.extend_from_slice(s);
            let mut m = vec![0u8; pad];
            m.extend(std::iter::repeat_n(1u8, s.len()));
            ids.push(row);
            mask.push(m);
        }
        Batch {
            ids,
            mask,
            images: None,
        }
    }

    pub fn len(&self) -> usize {
        self.ids.first().map(Vec::len).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `(B, T)` u32 ids.
pub fn ids_tensor(ids: &[Vec<u32>], device: &Device) -> Result<Tensor> {
    let b = ids.len();
    let t = ids.first().map(Vec::len).unwrap_or(0);
    if ids.iter().any(|r| r.len() != t) {
        return Err(ModelError::invalid(
            "batch rows differ in length; pad them first",
        ));
    }
    let flat: Vec<u32> = ids.iter().flatten().copied().collect();
    Ok(Tensor::from_vec(flat, (b, t), device)?)
}
