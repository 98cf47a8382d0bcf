//! `mixed-r1-model`: Qwen2.5-VL, Qwen3-VL, InternVL, Qwen2/Qwen2.5 and Llama on candle.
//!
//! One forward pass serves generation and training: every op it uses has a backward when a
//! gradient is asked for (see [`ops`]), so the log-probs the trainer differentiates are the
//! log-probs the sampler saw. Weights live in [`params::Params`] under Hugging Face names, which
//! is what makes loading and saving checkpoints that transformers reads a matter of file I/O.
//!
//! - [`config`]: `config.json` in the layouts transformers writes.
//! - [`params`]: named weights (`Var`s), freezing, frozen reference copies, safetensors I/O.
//! - [`ops`]: differentiable RMSNorm / softmax / rotary / linear / SwiGLU.
//! - [`decoder`]: the text decoder (GQA, rotary or multimodal rotary, q/k/v bias, KV cache).
//! - [`vision`]: the Qwen2.5-VL vision tower (patch embedding, 2-D rotary, window attention,
//!   patch merger).
//! - [`processor`]: the Qwen2.5-VL image processor (smart resize, normalise, patches, grids).
//! - [`rope_index`]: multimodal rotary position ids, as transformers' `get_rope_index`.
//! - [`chat`]: messages, the hand-written ChatML fallback and `<|image_pad|>` expansion;
//!   [`chat_template`]: the model's own Jinja chat template, rendered as transformers does.
//! - [`internvl`]: InternVL's vision tower (InternViT), pixel shuffle and projector;
//!   [`internvl_processor`]: its dynamic-tiling image processor and `<IMG_CONTEXT>` expansion.
//! - [`qwen3_vl`]: Qwen3-VL's vision tower (learned interpolated position grid, full attention)
//!   and DeepStack mergers; its decoder is [`decoder`] with q/k norms and interleaved M-RoPE.
//! - [`gguf`]: GGUF checkpoints (llama.cpp) dequantised into the same weights.
//! - [`model`]: a loaded model: folder / GGUF / random init, forward, save.
//! - [`frozen_linear`]: `x @ w^T` for a frozen weight, whose backward skips the weight's
//!   gradient (LoRA's base weights).
//! - [`gemv`]: the few-rows matrix product that decoding steps spend their time in.
//! - [`generate`]: batched sampling with a KV cache and per-token log-probs.
//! - [`token_logprob`]: log-probs of chosen tokens from logits, with a memory-light backward.
//! - [`logprobs`]: the training forward: per-token log-probs of given completions.
//! - [`lora`]: LoRA adapters on the projections (PEFT's arithmetic and file layout);
//!   [`adapters`]: adding, saving, loading and merging them on a model.
//! - [`mixed`]: bf16 / f16 working weights with f32 masters for mixed-precision training.
//! - [`box_frame`]: the box frame a model family answers in; the IoU reward set to read it.

pub mod adapters;
pub mod box_frame;
pub mod chat;
pub mod chat_template;
pub mod config;
pub mod decoder;
pub mod device;
pub mod error;
pub mod fastmath;
pub mod frozen_linear;
pub mod gemv;
pub mod generate;
pub mod gguf;
pub mod internvl;
pub mod internvl_config;
pub mod internvl_processor;
pub mod logprobs;
pub mod lora;
pub mod mixed;
pub mod model;
pub mod ops;
pub mod params;
pub mod processor;
pub mod qwen3_vl;
pub mod qwen3_vl_config;
pub mod rope_index;
pub mod token_logprob;
pub mod tokenizer;
pub mod vision;

pub use config::{Arch, ModelConfig, TextConfig, VisionConfig};
pub use error::{ModelError, Result};
pub use lora::LoraConfig;
pub use params::Params;
