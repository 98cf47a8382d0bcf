//! What trains and how: f32 master weights for mixed precision, gradient checkpointing,
//! freezing, the frozen reference copy, and switching the LoRA adapters. Every change to which
//! weights train rebuilds the layers, so they track the right `Var`s.

use candle_core::{DType, Tensor};

use super::Model;
use crate::decoder::Decoder;
use crate::error::Result;
use crate::internvl::InternVlVision;
use crate::lora::{LoraConfig, LoraRuntime};
use crate::mixed::MasterWeights;
use crate::params::Params;
use crate::qwen3_vl::Qwen3VlVision;
use crate::vision::VisionTower;

impl Model {
    /// Rebuilds the layers after freezing changed which weights are tracked.
    fn rebuild(&mut self) -> Result<()> {
        let checkpointing = self.decoder.gradient_checkpointing();
        self.decoder = Decoder::with_lora(&self.config.text, &self.params, self.lora.as_ref())?;
        self.decoder.set_gradient_checkpointing(checkpointing);
        if let Some(v) = &self.config.vision {
            self.vision = Some(VisionTower::with_lora(v, &self.params, self.lora.as_ref())?);
        }
        if let Some(t) = &self.internvl {
            let c = t.config().clone();
            self.internvl = Some(InternVlVision::new(&c, &self.params)?);
        }
        if let Some(t) = &self.qwen3vl {
            let c = t.config().clone();
            self.qwen3vl = Some(Qwen3VlVision::new(&c, &self.params, self.lora.as_ref())?);
        }
        // What trains may have changed: masters follow (kept for weights still trainable).
        if let Some(old) = self.masters.take() {
            self.masters = Some(MasterWeights::build(&self.params, None, Some(&old))?);
        }
        Ok(())
    }

    /// Mixed precision for training: the working weights become `dtype` (bf16 / f16) and every
    /// trainable weight gets an f32 master (see [`crate::mixed`]). Weights loaded in f32 start
    /// their masters from those f32 values (a checkpoint resumes exactly); weights already in
    /// `dtype` are widened. Frozen weights are only kept in `dtype`. A full-precision `dtype`
    /// does nothing. Returns whether masters are in use.
    pub fn enable_master_weights(&mut self, dtype: DType) -> Result<bool> {
        if !matches!(dtype, DType::BF16 | DType::F16) {
            return Ok(false);
        }
        let masters = if self.params.dtype == dtype {
            MasterWeights::build(&self.params, None, self.masters.as_ref())?
        } else {
            let working = self.params.to_dtype(dtype)?;
            let m = MasterWeights::build(&working, Some(&self.params), None)?;
            self.params = working;
            m
        };
        self.masters = Some(masters);
        self.rebuild()?;
        Ok(true)
    }

    /// The f32 masters, when the model trains in mixed precision.
    pub fn master_weights(&self) -> Option<&MasterWeights> {
        self.masters.as_ref()
    }

    /// The weights an optimizer should update: the f32 masters in mixed precision, else the
    /// trainable weights themselves.
    pub fn optimizer_params(&self) -> Vec<(String, candle_core::Var)> {
        match &self.masters {
            Some(m) => m.named(),
            None => self.params.trainable(),
        }
    }

    /// Gradients keyed for [`Model::optimizer_params`]: re-keyed onto the masters (in f32) in
    /// mixed precision, unchanged otherwise.
    pub fn optimizer_grads(
        &self,
        grads: candle_core::backprop::GradStore,
    ) -> Result<candle_core::backprop::GradStore> {
        match &self.masters {
            Some(m) => m.master_grads(&grads),
            None => Ok(grads),
        }
    }

    /// After an optimizer step: refreshes the working weights from the masters (a no-op in
    /// full precision, where the optimizer updated the weights themselves).
    pub fn sync_master_weights(&self) -> Result<()> {
        match &self.masters {
            Some(m) => m.sync(),
            None => Ok(()),
        }
    }

    /// Gradient (activation) checkpointing of the decoder layers for every later training
    /// forward: layer activations are recomputed in backward instead of kept (see
    /// [`crate::decoder`]). Gradients must then be taken with [`Model::backward`].
    pub fn set_gradient_checkpointing(&mut self, on: bool) {
        self.decoder.set_gradient_checkpointing(on);
    }

    pub fn gradient_checkpointing(&self) -> bool {
        self.decoder.gradient_checkpointing()
    }

    /// `loss.backward()`, plus the gradients of the checkpointed decoder layers (computed while
    /// backward recomputed them). Use this rather than `loss.backward()` on a model's loss.
    pub fn backward(&self, loss: &Tensor) -> Result<candle_core::backprop::GradStore> {
        let mut grads = loss.backward()?;
        if let Some(extra) = self.decoder.take_checkpoint_grads() {
            grads.extend(extra)?;
        }
        Ok(grads)
    }

    /// Freezes every weight whose name starts with one of `prefixes`; returns how many.
    pub fn freeze(&mut self, prefixes: &[&str]) -> Result<usize> {
        let n = prefixes.iter().map(|p| self.params.freeze_prefix(p)).sum();
        self.rebuild()?;
        Ok(n)
    }

    /// Freezes the vision tower (the paper trains the language model only); for InternVL the
    /// projector too (Qwen2.5-VL's merger is part of its tower).
    pub fn freeze_vision(&mut self) -> Result<usize> {
        self.freeze(&["visual.", "vision_tower.", "multi_modal_projector."])
    }

    pub fn unfreeze_all(&mut self) -> Result<()> {
        self.params.unfreeze_all();
        self.rebuild()
    }

    /// A frozen deep copy: the reference policy for the KL term.
    pub fn reference_copy(&self) -> Result<Model> {
        let params = self.params.frozen_copy()?;
        let mut m = Model::from_params(self.config.clone(), params, self.tokenizer.clone())?;
        m.processor = self.processor.clone();
        m.internvl_processor = self.internvl_processor.clone();
        m.chat_template = self.chat_template.clone();
        m.preprocessor_json = self.preprocessor_json.clone();
        m.source = self.source.clone();
        Ok(m)
    }

    /// Mutable access to the weights for callers that rebuild the layers afterwards.
    pub(crate) fn params_mut(&mut self) -> &mut Params {
        &mut self.params
    }

    pub(crate) fn set_lora(&mut self, lora: Option<LoraRuntime>) -> Result<()> {
        self.lora = lora;
        self.rebuild()
    }

    pub(crate) fn lora_runtime(&self) -> Option<&LoraRuntime> {
        self.lora.as_ref()
    }

    /// The LoRA settings, when the model has adapters.
    pub fn lora(&self) -> Option<&LoraConfig> {
        self.lora.as_ref().map(|l| &l.config)
    }

    /// Turns the adapters on or off for every later forward pass (off = the base model, the
    /// KL reference). A model without adapters ignores this.
    pub fn set_adapters_enabled(&self, on: bool) {
        if let Some(l) = &self.lora {
            l.state.set_enabled(on);
        }
    }

    /// Runs `f` with the adapters off, switching them back on afterwards (also on error).
    pub fn with_adapters_disabled<R>(&self, f: impl FnOnce(&Model) -> R) -> R {
        struct Restore<'a>(&'a Model);
        impl Drop for Restore<'_> {
            fn drop(&mut self) {
                self.0.set_adapters_enabled(true);
            }
        }
        self.set_adapters_enabled(false);
        let _restore = Restore(self);
        f(self)
    }

    /// Restarts the LoRA dropout masks from `seed`.
    pub fn reseed_lora_dropout(&self, seed: u64) {
        if let Some(l) = &self.lora {
            l.state.reseed_dropout(seed);
        }
    }
}
