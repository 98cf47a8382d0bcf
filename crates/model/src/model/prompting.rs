//! From a conversation to a [`Prompt`]: the chat template (or the family's hand-written layout),
//! the image processor and the image pads; and the special token ids generation needs (stop,
//! vision placeholders, padding).

use super::{ImageInputs, Model, Prompt};
use crate::config::Arch;
use crate::error::{ModelError, Result};

impl Model {
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
            // The rewards strip the same list from responses (Qwen2-VL .. Qwen3-VL, InternVL,
            // LLaVA-style placeholders); those this vocabulary has as one token are banned.
            for s in mixed_r1_reward::VISION_TOKENS {
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
}
