//! Mixed precision: half-precision working weights with f32 master copies for training.
//!
//! With `model.dtype = "bf16"` the forward (rollouts and the training forward) runs on bf16
//! weights and activations, so backward hands back bf16 gradients. Updating bf16 weights in
//! place would lose every update smaller than 2^-8 of the weight (bf16 keeps 8 mantissa bits):
//! an AdamW step of lr 1e-6 on a weight of 0.02 simply vanishes. So, as torch AMP / verl / TRL
//! do, every *trainable* weight also has an f32 master: the optimizer (and its f32 moments)
//! steps the masters, and the bf16 working copy is refreshed from them after each step.
//! Gradients are cast to f32 before they are summed over micro-batches, clipped and applied.
//! Frozen weights (a LoRA base, a frozen vision tower) exist in bf16 only.
//!
//! [`MasterWeights`] pairs each trainable working `Var` with its master; the model holds one
//! when its weights are in half precision and it is being trained (see
//! [`crate::model::Model::enable_master_weights`]).

use std::collections::BTreeMap;

use candle_core::backprop::GradStore;
use candle_core::{DType, Var};

use crate::error::Result;
use crate::params::Params;

/// The f32 masters of a half-precision model's trainable weights.
#[derive(Debug, Clone, Default)]
pub struct MasterWeights {
    /// name -> (working var, in the model's dtype; master var, f32).
    entries: BTreeMap<String, (Var, Var)>,
}

impl MasterWeights {
    /// Masters for the trainable weights of `working`. `source`, when given, holds f32 values
    /// to start the masters from (the weights as loaded, before they were rounded to the working
    /// dtype: a checkpoint's masters); otherwise the working values are widened, which is exact.
    /// Masters already in `keep` are reused, so re-deriving after a freeze keeps their values.
    pub fn build(
        working: &Params,
        source: Option<&Params>,
        keep: Option<&MasterWeights>,
    ) -> Result<MasterWeights> {
        let mut entries = BTreeMap::new();
        for (name, var) in working.trainable() {
            if let Some((_, m)) = keep.and_then(|k| k.entries.get(&name)) {
                entries.insert(name, (var, m.clone()));
                continue;
            }
            let from = match source.and_then(|s| s.var(&name)) {
                Some(s) if s.dtype() == DType::F32 && s.dims() == var.dims() => s.as_tensor(),
                _ => var.as_tensor(),
            };
            // A copy with its own storage: the master must not alias the working weight.
            let m = from.detach().to_dtype(DType::F32)?.copy()?;
            entries.insert(name, (var, Var::from_tensor(&m)?));
        }
        Ok(MasterWeights { entries })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The masters by name: what the optimizer updates.
    pub fn named(&self) -> Vec<(String, Var)> {
        self.entries
            .iter()
            .map(|(n, (_, m))| (n.clone(), m.clone()))
            .collect()
    }

    /// The master of one weight.
    pub fn get(&self, name: &str) -> Option<&Var> {
        self.entries.get(name).map(|(_, m)| m)
    }

    /// Re-keys gradients of the working weights (any float dtype) onto the masters, in f32.
    /// Gradients of tensors that are not trainable weights are dropped.
    pub fn master_grads(&self, grads: &GradStore) -> Result<GradStore> {
        let mut out = GradStore::default();
        for (w, m) in self.entries.values() {
            if let Some(g) = grads.get(w.as_tensor()) {
                out.insert(m.as_tensor(), g.detach().to_dtype(DType::F32)?);
            }
        }
        Ok(out)
    }

    /// Copies every master into its working weight (rounded to the working dtype, to nearest
    /// even as candle's casts do): call after each optimizer step.
    pub fn sync(&self) -> Result<()> {
        for (w, m) in self.entries.values() {
            w.set(&m.as_tensor().to_dtype(w.dtype())?)?;
        }
        Ok(())
    }
}
