//! A loaded model: config, named weights, the decoder (and vision tower), the tokenizer.
//!
//! Loads a Hugging Face folder (single or sharded safetensors) or a GGUF file, builds a model
//! from scratch from a config (seeded, std 0.02), runs the forward pass with or without
//! gradients, freezes parts, makes a frozen reference copy, and saves back to a folder that
//! transformers loads.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use crate::config::{Arch, ModelConfig};
use crate::decoder::{Decoder, KvCache};
use crate::error::{ModelError, Result};
use crate::internvl::{InternVlConfig, InternVlVision};
use crate::internvl_processor::InternVlProcessor;
use crate::lora::{LoraConfig, LoraRuntime};
use crate::mixed::MasterWeights;
use crate::params::Params;
use crate::processor::ImageProcessor;
use crate::qwen3_vl::{Qwen3VlVision, Qwen3VlVisionConfig};
use crate::tokenizer::Tokenizer;
use crate::vision::VisionTower;

/// Where and in what precision the weights live.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub dtype: DType,
    pub device: Device,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            dtype: DType::F32,
            device: Device::Cpu,
        }
    }
}

impl LoadOptions {
    /// `cpu` / `cuda` / `cuda:<n>` by name (see [`crate::device::parse_device`]).
    pub fn with_device_name(mut self, name: &str) -> Result<Self> {
        self.device = crate::device::parse_device(name)?;
        Ok(self)
    }

    /// `f32` / `bf16` / `f16` by name, as the CLI flags spell them.
    pub fn with_dtype_name(mut self, name: &str) -> Result<Self> {
        self.dtype = match name {
            "f32" | "float32" => DType::F32,
            "bf16" | "bfloat16" => DType::BF16,
            "f16" | "float16" => DType::F16,
            other => {
                return Err(ModelError::invalid(format!(
                    "dtype `{other}` is not one of f32, bf16, f16"
                )))
            }
        };
        Ok(self)
    }
}

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

pub struct Model {
    pub config: ModelConfig,
    params: Params,
    decoder: Decoder,
    vision: Option<VisionTower>,
    /// InternVL's vision tower and projector (see [`crate::internvl`]).
    internvl: Option<InternVlVision>,
    /// Qwen3-VL's vision tower and DeepStack mergers (see [`crate::qwen3_vl`]).
    qwen3vl: Option<Qwen3VlVision>,
    /// InternVL's tiling image processor (`processor` is Qwen2.5-VL's and Qwen3-VL's).
    pub internvl_processor: Option<InternVlProcessor>,
    pub tokenizer: Option<Tokenizer>,
    pub processor: Option<ImageProcessor>,
    /// The model's own chat template (folder or GGUF); `None` renders the hand-written
    /// layouts of [`crate::chat`] / [`crate::internvl_processor`] instead.
    pub chat_template: Option<crate::chat_template::ChatTemplate>,
    /// `preprocessor_config.json` as read, written back on save.
    preprocessor_json: Option<String>,
    /// Where the model was loaded from, for messages.
    pub source: Option<PathBuf>,
    /// The LoRA adapters, when the model has them (see [`crate::lora`]).
    lora: Option<LoraRuntime>,
    /// f32 masters of the trainable weights of a half-precision model being trained (see
    /// [`crate::mixed`]); `None` in full precision.
    masters: Option<MasterWeights>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("arch", &self.config.arch)
            .field("params", &self.params)
            .field("source", &self.source)
            .finish()
    }
}

/// Every weight of an architecture with its shape and initialiser.
pub fn param_specs(config: &ModelConfig) -> Vec<(String, Vec<usize>, crate::params::Init)> {
    let mut specs = Decoder::param_specs(&config.text);
    if let Some(v) = &config.vision {
        specs.extend(VisionTower::param_specs(v));
    }
    if config.arch == Arch::InternVl {
        // A config without its JSON has no vision section; building the tower reports it.
        if let Ok(c) = InternVlConfig::from_model_config(config) {
            specs.extend(InternVlVision::param_specs(&c));
        }
    }
    if let Some(c) = qwen3_vl_vision_config(config) {
        specs.extend(Qwen3VlVision::param_specs(&c));
    }
    specs
}

/// Qwen3-VL's vision settings, read from the config's JSON.
fn qwen3_vl_vision_config(config: &ModelConfig) -> Option<Qwen3VlVisionConfig> {
    if config.arch != Arch::Qwen3Vl {
        return None;
    }
    Qwen3VlVisionConfig::from_json(config.raw.as_ref()?, Path::new("config.json")).ok()
}

impl Model {
    /// Builds a model around weights that are already loaded.
    pub fn from_params(
        config: ModelConfig,
        params: Params,
        tokenizer: Option<Tokenizer>,
    ) -> Result<Model> {
        let decoder = Decoder::new(&config.text, &params)?;
        let vision = match &config.vision {
            Some(v) => Some(VisionTower::new(v, &params)?),
            None => None,
        };
        let qwen3vl =
            match qwen3_vl_vision_config(&config) {
                Some(c) => Some(Qwen3VlVision::new(&c, &params, None)?),
                None if config.arch == Arch::Qwen3Vl => return Err(ModelError::invalid(
                    "a Qwen3-VL config needs its JSON (vision_config) to build the vision tower",
                )),
                None => None,
            };
        let processor = if qwen3vl.is_some() {
            Some(ImageProcessor::from_json(
                &serde_json::from_str(QWEN3_VL_DEFAULT_PREPROCESSOR_JSON)
                    .map_err(|e| ModelError::invalid(format!("preprocessor config: {e}")))?,
                Path::new("preprocessor_config.json"),
            )?)
        } else {
            config.vision.as_ref().map(|_| ImageProcessor::default())
        };
        let (internvl, internvl_processor) = if config.arch == Arch::InternVl {
            let c = InternVlConfig::from_model_config(&config)?;
            let tower = InternVlVision::new(&c, &params)?;
            let mut p = InternVlProcessor::new(c.image_seq_length);
            // The tile the vision config was trained for, until a preprocessor config says.
            p.tile = c.vision.image_size;
            (Some(tower), Some(p))
        } else {
            (None, None)
        };
        Ok(Model {
            config,
            params,
            decoder,
            vision,
            internvl,
            qwen3vl,
            internvl_processor,
            tokenizer,
            processor,
            chat_template: None,
            preprocessor_json: None,
            source: None,
            lora: None,
            masters: None,
        })
    }

    /// A model from scratch: normal(0, 0.02) matrices, unit norms, zero biases, seeded.
    pub fn random(config: ModelConfig, seed: u64, opts: &LoadOptions) -> Result<Model> {
        let params = Params::random(&param_specs(&config), seed, opts.dtype, &opts.device)?;
        Model::from_params(config, params, None)
    }

    /// Loads a Hugging Face model folder, or a `.gguf` file.
    pub fn load(path: &Path, opts: &LoadOptions) -> Result<Model> {
        if path.is_file() && path.extension().is_some_and(|e| e == "gguf") {
            let g = crate::gguf::load(path, opts.dtype, &opts.device)?;
            let mut m = Model::from_params(g.config, g.params, Some(g.tokenizer))?;
            if let Some(t) = &g.chat_template {
                let origin = PathBuf::from(format!("{}:tokenizer.chat_template", path.display()));
                m.chat_template = Some(
                    crate::chat_template::ChatTemplate::new(t, origin)?
                        .with_special_tokens(g.special_tokens.clone()),
                );
            }
            m.source = Some(path.to_path_buf());
            return Ok(m);
        }
        if !path.is_dir() {
            return Err(ModelError::format(
                path,
                "not a model folder (config.json + safetensors) or a .gguf file",
            ));
        }
        if !path.join("config.json").is_file() && path.join(crate::lora::ADAPTER_CONFIG).is_file() {
            return Model::load_with_adapter(path, opts);
        }
        let config = ModelConfig::from_file(&path.join("config.json"))?;
        let files = safetensors_files(path)?;
        let mut params = Params::new(opts.dtype, opts.device.clone());
        let vision = config.vision.is_some() || config.arch == Arch::Qwen3Vl;
        params.load_safetensors(&files, |n| vision || !n.starts_with("visual."))?;
        let tok_path = path.join("tokenizer.json");
        let tokenizer = if tok_path.is_file() {
            Some(Tokenizer::from_file(&tok_path)?)
        } else {
            None
        };
        let mut m = Model::from_params(config, params, tokenizer)?;
        m.chat_template = crate::chat_template::ChatTemplate::from_folder(path)?;
        let pp = path.join("preprocessor_config.json");
        if (m.vision.is_some() || m.qwen3vl.is_some()) && pp.is_file() {
            m.processor = Some(ImageProcessor::from_file(&pp)?);
            m.preprocessor_json = std::fs::read_to_string(&pp).ok();
        }
        if let (Some(p), true) = (&m.internvl_processor, pp.is_file()) {
            m.internvl_processor = Some(InternVlProcessor::from_file(&pp, p.tokens_per_tile)?);
            m.preprocessor_json = std::fs::read_to_string(&pp).ok();
        }
        m.source = Some(path.to_path_buf());
        Ok(m)
    }

    /// A PEFT adapter folder: the base model its `base_model_name_or_path` names (as given, or
    /// relative to the adapter folder), with the adapters on top.
    pub fn load_with_adapter(dir: &Path, opts: &LoadOptions) -> Result<Model> {
        let cfg_path = dir.join(crate::lora::ADAPTER_CONFIG);
        let text = std::fs::read_to_string(&cfg_path).map_err(|e| ModelError::io(&cfg_path, e))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| ModelError::format(&cfg_path, format!("not valid JSON: {e}")))?;
        let base = v
            .get("base_model_name_or_path")
            .and_then(|b| b.as_str())
            .ok_or_else(|| {
                ModelError::format(
                    &cfg_path,
                    "no base_model_name_or_path: load the base model and call load_adapter",
                )
            })?;
        let given = PathBuf::from(base);
        let base_path = if given.exists() {
            given
        } else if dir.join(&given).exists() {
            dir.join(&given)
        } else {
            return Err(ModelError::format(
                &cfg_path,
                format!("base_model_name_or_path `{base}` is not a folder or file here (models are not downloaded)"),
            ));
        };
        let mut m = Model::load(&base_path, opts)?;
        m.load_adapter(dir)?;
        m.source = Some(dir.to_path_buf());
        Ok(m)
    }

    /// Replaces the image processor settings (written back on save).
    pub fn set_preprocessor_json(&mut self, json: &str) -> Result<()> {
        let v: serde_json::Value = serde_json::from_str(json)
            .map_err(|e| ModelError::invalid(format!("preprocessor config: {e}")))?;
        if let Some(p) = &self.internvl_processor {
            self.internvl_processor = Some(InternVlProcessor::from_json(
                &v,
                Path::new("preprocessor_config.json"),
                p.tokens_per_tile,
            )?);
        } else {
            self.processor = Some(ImageProcessor::from_json(
                &v,
                Path::new("preprocessor_config.json"),
            )?);
        }
        self.preprocessor_json = Some(json.to_string());
        Ok(())
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    pub fn dtype(&self) -> DType {
        self.params.dtype
    }

    pub fn device(&self) -> &Device {
        &self.params.device
    }

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

    /// The end-of-sequence ids: from the config, plus `<|im_end|>` / `<|endoftext|>` when the
    /// tokenizer has them (chat models stop on the end-of-turn token).
    pub fn stop_token_ids(&self) -> Vec<u32> {
        let mut ids = self.config.text.eos_token_ids.clone();
        if let Some(t) = &self.tokenizer {
            for s in ["<|im_end|>", "<|endoftext|>"] {
                if let Some(id) = t.token_id(s) {
                    if !ids.contains(&id) {
                        ids.push(id);
                    }
                }
            }
        }
        ids
    }

    /// Image / video placeholders and vision boundary tokens this model knows (from its config
    /// and tokenizer): a sampler must never emit them, since a sampled placeholder asks the
    /// next forward for image features that do not exist (verl#7038) and leaks into the text.
    pub fn vision_token_ids(&self) -> Vec<u32> {
        let t = &self.config;
        let mut ids: Vec<u32> = [
            t.image_token_id,
            t.video_token_id,
            t.vision_start_token_id,
            t.vision_end_token_id,
        ]
        .into_iter()
        .flatten()
        .collect();
        if let Some(tok) = &self.tokenizer {
            // Qwen2-VL .. Qwen3-VL, then InternVL's image context and boundaries.
            for s in [
                "<|image_pad|>",
                "<|video_pad|>",
                "<|vision_start|>",
                "<|vision_end|>",
                "<|vision_pad|>",
                "<IMG_CONTEXT>",
                "<img>",
                "</img>",
            ] {
                ids.extend(tok.token_id(s));
            }
        }
        let vocab = self.config.text.vocab_size as u32;
        ids.retain(|&i| i < vocab);
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// The system prompt the model's chat template inserts when a conversation has none.
    pub fn default_system(&self) -> &str {
        use crate::chat::*;
        match self.config.arch {
            Arch::Qwen25Vl => QWEN2_5_VL_DEFAULT_SYSTEM,
            Arch::Qwen2 => QWEN2_5_DEFAULT_SYSTEM,
            Arch::Llama => SMOLLM2_DEFAULT_SYSTEM,
            // InternVL's `-hf` template and Qwen3-VL's insert no system message.
            Arch::InternVl | Arch::Qwen3Vl => "",
        }
    }

    /// The conversation as text: the model's own chat template when it has one (see
    /// [`crate::chat_template`]), else the hand-written layout of its family (InternVL's, or
    /// ChatML with [`Model::default_system`]). Images are left as the template's single
    /// placeholder each; [`Model::chat_prompt`] expands them.
    pub fn render_chat(
        &self,
        messages: &[crate::chat::Message],
        add_generation_prompt: bool,
    ) -> Result<String> {
        if let Some(t) = &self.chat_template {
            return t.render(messages, add_generation_prompt);
        }
        Ok(if self.internvl_processor.is_some() {
            crate::internvl_processor::render_internvl_chat(messages, add_generation_prompt)
        } else if self.config.arch == Arch::Qwen3Vl {
            crate::chat::render_chatml(messages, add_generation_prompt, None)
        } else {
            crate::chat::render_chatml(messages, add_generation_prompt, Some(self.default_system()))
        })
    }

    /// Renders a conversation with the chat template, runs the image processor, expands the
    /// image pads and tokenises: a prompt ready for `generate::generate`.
    pub fn chat_prompt(
        &self,
        messages: &[crate::chat::Message],
        images: &[image::DynamicImage],
    ) -> Result<Prompt> {
        let tok = self
            .tokenizer
            .as_ref()
            .ok_or_else(|| ModelError::invalid("this model has no tokenizer"))?;
        let wanted: usize = messages.iter().map(|m| m.num_images()).sum();
        if wanted != images.len() {
            return Err(ModelError::invalid(format!(
                "the messages hold {wanted} image(s) but {} were given",
                images.len()
            )));
        }
        if let Some(processor) = &self.internvl_processor {
            let mut text = self.render_chat(messages, true)?;
            let mut image_inputs = None;
            if !images.is_empty() {
                let processed = processor.process(images, self.device())?;
                text = crate::internvl_processor::expand_image_tokens(
                    &text,
                    &processed.tiles,
                    processor.tokens_per_tile,
                )?;
                // One [tiles, 1, 1] "grid" per image: join_images concatenates them with the
                // tiles, and the vision forward needs only the pixel values.
                image_inputs = Some(ImageInputs {
                    pixel_values: processed.pixel_values,
                    grids: processed.tiles.iter().map(|&n| [n, 1, 1]).collect(),
                });
            }
            return Ok(Prompt {
                ids: tok.encode(&text)?,
                images: image_inputs,
                seed: None,
            });
        }
        let mut text = self.render_chat(messages, true)?;
        let mut image_inputs = None;
        if !images.is_empty() {
            let processor = self.processor.as_ref().ok_or_else(|| {
                ModelError::invalid("this model takes no images (no vision tower)")
            })?;
            let processed = processor.process(images, self.device())?;
            let counts: Vec<usize> = processed
                .grids
                .iter()
                .map(|g| processor.num_image_tokens(*g))
                .collect();
            text = crate::chat::expand_image_pads(&text, &counts)?;
            image_inputs = Some(ImageInputs {
                pixel_values: processed.pixel_values,
                grids: processed.grids,
            });
        }
        Ok(Prompt {
            ids: tok.encode(&text)?,
            images: image_inputs,
            seed: None,
        })
    }

    /// [`Model::chat_prompt`] for one user turn whose text marks images with `<image>` (as the
    /// data engine writes problems): each marker becomes that image's place; images without a
    /// marker go first. `system` overrides the template's default system prompt.
    pub fn user_prompt(
        &self,
        system: Option<&str>,
        text: &str,
        images: &[image::DynamicImage],
    ) -> Result<Prompt> {
        use crate::chat::{Message, Part};
        let pieces: Vec<&str> = text.split("<image>").collect();
        let markers = pieces.len() - 1;
        let mut parts = Vec::new();
        for _ in markers..images.len() {
            parts.push(Part::Image);
        }
        for (i, piece) in pieces.iter().enumerate() {
            if i > 0 {
                // A marker beyond the number of images is left out rather than invented.
                if i <= images.len() {
                    parts.push(Part::Image);
                }
            }
            if !piece.is_empty() {
                parts.push(Part::Text(piece.to_string()));
            }
        }
        let mut messages = Vec::new();
        if let Some(s) = system {
            messages.push(Message::system(s));
        }
        messages.push(Message {
            role: "user".to_string(),
            parts,
        });
        self.chat_prompt(&messages, images)
    }

    /// The id used to pad batches.
    pub fn pad_token_id(&self) -> u32 {
        self.tokenizer
            .as_ref()
            .and_then(|t| t.token_id("<|endoftext|>"))
            .or_else(|| self.config.text.eos_token_ids.first().copied())
            .unwrap_or(0)
    }

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

    /// Saves a folder transformers loads: `config.json`, `model.safetensors` (original
    /// checkpoint names, tied head omitted), `generation_config.json`, and the tokenizer.
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| ModelError::io(dir, e))?;
        let tied = self.config.text.tie_word_embeddings;
        let skip = |n: &str| (tied && n == "lm_head.weight") || crate::lora::is_adapter_tensor(n);
        // In mixed precision the trainable weights are written as their f32 masters (and the
        // frozen ones widened, exactly), so a checkpoint resumes without rounding: the folder is
        // f32 and says so in `torch_dtype`.
        let masters = self
            .masters
            .as_ref()
            .filter(|m| self.params.names().any(|n| !skip(n) && m.get(n).is_some()));
        let written = if masters.is_some() {
            DType::F32
        } else {
            self.params.dtype
        };
        let mut json = self.config.to_json();
        if let Some(name) = torch_dtype_name(written) {
            if let Some(obj) = json.as_object_mut() {
                obj.insert("torch_dtype".into(), name.into());
                if let Some(tc) = obj.get_mut("text_config").and_then(|t| t.as_object_mut()) {
                    if tc.contains_key("torch_dtype") {
                        tc.insert("torch_dtype".into(), name.into());
                    }
                }
            }
        }
        let config = serde_json::to_string_pretty(&json)
            .map_err(|e| ModelError::invalid(format!("config: {e}")))?;
        write(&dir.join("config.json"), config.as_bytes())?;
        // Adapters are saved on their own (`save_adapter`) or merged first (`merge_lora`).
        // InternVL's language model goes back under `language_model.`, as transformers writes.
        let internvl = self.config.arch == Arch::InternVl;
        let qwen3vl = self.config.arch == Arch::Qwen3Vl;
        let rename = |n: &str| -> String {
            // Qwen3-VL checkpoints use transformers 5's nesting (`model.language_model.*`,
            // `model.visual.*`).
            if qwen3vl {
                if let Some(rest) = n.strip_prefix("model.") {
                    return format!("model.language_model.{rest}");
                }
                if let Some(rest) = n.strip_prefix("visual.") {
                    return format!("model.visual.{rest}");
                }
            }
            if internvl && (n.starts_with("model.") || n.starts_with("lm_head.")) {
                if let Some(rest) = n.strip_prefix("lm_head.") {
                    return format!("language_model.lm_head.{rest}");
                }
                return format!("language_model.{n}");
            }
            n.to_string()
        };
        self.params.save_safetensors_as(
            &dir.join("model.safetensors"),
            skip,
            |n| masters.and_then(|m| m.get(n).map(|v| v.as_tensor().clone())),
            masters.map(|_| DType::F32),
            rename,
        )?;
        let mut gen = serde_json::json!({"do_sample": false});
        if let Some(b) = self.config.text.bos_token_id {
            gen["bos_token_id"] = b.into();
        }
        let eos = self.stop_token_ids();
        if !eos.is_empty() {
            gen["eos_token_id"] = eos.into();
        }
        write(
            &dir.join("generation_config.json"),
            serde_json::to_string_pretty(&gen)
                .unwrap_or_default()
                .as_bytes(),
        )?;
        if let Some(t) = &self.tokenizer {
            t.save(&dir.join("tokenizer.json"))?;
        }
        // The chat template goes with the checkpoint (a trained model keeps its prompt format):
        // `chat_template.jinja`, and the special tokens it renders with, where transformers'
        // tokenizer and our loader both read them.
        if let Some(ct) = &self.chat_template {
            write(&dir.join("chat_template.jinja"), ct.source().as_bytes())?;
            if !ct.special_tokens().is_empty() {
                use crate::chat_template::SPECIAL_TOKEN_NAMES;
                let mut map = serde_json::Map::new();
                let mut extra = serde_json::Map::new();
                for (k, v) in ct.special_tokens() {
                    match SPECIAL_TOKEN_NAMES.contains(&k.as_str()) {
                        true => map.insert(k.clone(), v.clone().into()),
                        false => extra.insert(k.clone(), v.clone().into()),
                    };
                }
                if !extra.is_empty() {
                    map.insert("extra_special_tokens".into(), extra.into());
                }
                let text = serde_json::to_string_pretty(&map).unwrap_or_default();
                write(&dir.join("special_tokens_map.json"), text.as_bytes())?;
            }
        }
        if self.config.vision.is_some() || self.qwen3vl.is_some() {
            let text = match (&self.preprocessor_json, self.qwen3vl.is_some()) {
                (Some(t), _) => t.clone(),
                (None, true) => QWEN3_VL_DEFAULT_PREPROCESSOR_JSON.to_string(),
                (None, false) => DEFAULT_PREPROCESSOR_JSON.to_string(),
            };
            write(&dir.join("preprocessor_config.json"), text.as_bytes())?;
        }
        if let Some(p) = &self.internvl_processor {
            let text = match &self.preprocessor_json {
                Some(t) => t.clone(),
                None => crate::internvl_processor::preprocessor_json(p),
            };
            write(&dir.join("preprocessor_config.json"), text.as_bytes())?;
        }
        Ok(())
    }
}

/// The Qwen2.5-VL image processor settings, for models built from scratch.
const DEFAULT_PREPROCESSOR_JSON: &str = r#"{
  "image_processor_type": "Qwen2VLImageProcessor",
  "processor_class": "Qwen2_5_VLProcessor",
  "do_resize": true,
  "do_rescale": true,
  "rescale_factor": 0.00392156862745098,
  "do_normalize": true,
  "do_convert_rgb": true,
  "image_mean": [0.48145466, 0.4578275, 0.40821073],
  "image_std": [0.26862954, 0.26130258, 0.27577711],
  "min_pixels": 3136,
  "max_pixels": 12845056,
  "patch_size": 14,
  "merge_size": 2,
  "temporal_patch_size": 2
}
"#;

/// Qwen3-VL's image processor settings (Qwen/Qwen3-VL-*-Instruct), for models built from
/// scratch: patch 16, merge 2, mean / std 0.5, between 64K and 16M pixels.
const QWEN3_VL_DEFAULT_PREPROCESSOR_JSON: &str = r#"{
  "image_processor_type": "Qwen2VLImageProcessorFast",
  "processor_class": "Qwen3VLProcessor",
  "do_resize": true,
  "do_rescale": true,
  "rescale_factor": 0.00392156862745098,
  "do_normalize": true,
  "do_convert_rgb": true,
  "image_mean": [0.5, 0.5, 0.5],
  "image_std": [0.5, 0.5, 0.5],
  "size": {"shortest_edge": 65536, "longest_edge": 16777216},
  "patch_size": 16,
  "merge_size": 2,
  "temporal_patch_size": 2
}
"#;

/// transformers' name of a dtype, for `torch_dtype`.
fn torch_dtype_name(dtype: DType) -> Option<&'static str> {
    match dtype {
        DType::F32 => Some("float32"),
        DType::BF16 => Some("bfloat16"),
        DType::F16 => Some("float16"),
        DType::F64 => Some("float64"),
        _ => None,
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|e| ModelError::io(path, e))
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

/// The safetensors files of a folder: the shards an index names, or `model.safetensors`.
fn safetensors_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let index = dir.join("model.safetensors.index.json");
    if index.is_file() {
        let text = std::fs::read_to_string(&index).map_err(|e| ModelError::io(&index, e))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| ModelError::format(&index, format!("not valid JSON: {e}")))?;
        let map = v
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| ModelError::format(&index, "no `weight_map` object"))?;
        let mut files: Vec<String> = map
            .values()
            .filter_map(|f| f.as_str().map(str::to_string))
            .collect();
        files.sort();
        files.dedup();
        let files: Vec<PathBuf> = files.into_iter().map(|f| dir.join(f)).collect();
        if let Some(missing) = files.iter().find(|f| !f.is_file()) {
            return Err(ModelError::format(
                &index,
                format!("names shard {} which does not exist", missing.display()),
            ));
        }
        return Ok(files);
    }
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    Err(ModelError::format(
        dir,
        "no model.safetensors or model.safetensors.index.json in this folder",
    ))
}
