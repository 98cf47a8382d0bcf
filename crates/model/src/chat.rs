//! ChatML rendering, as the Qwen2.5-VL (and Qwen2 / SmolLM2) chat templates write it, and the
//! expansion of each image's `<|image_pad|>` into as many pads as the vision tower gives tokens.
//!
//! The Qwen2.5-VL template (`chat_template.json` of `Qwen/Qwen2.5-VL-*-Instruct`):
//!
//! ```text
//! <|im_start|>system\nYou are a helpful assistant.<|im_end|>\n   (only when the first message
//!                                                                  is not a system message)
//! <|im_start|>{role}\n{parts}<|im_end|>\n                          (every message)
//! <|im_start|>assistant\n                                          (add_generation_prompt)
//! ```
//!
//! where the parts of a message are concatenated with nothing between them, text as is and an
//! image as `<|vision_start|><|image_pad|><|vision_end|>`. SmolLM2-Instruct's template has the
//! same shape with another default system prompt; Qwen2.5 text models use yet another.

use crate::error::{ModelError, Result};

/// The system prompt Qwen2.5-VL's template inserts when the conversation has none.
pub const QWEN2_5_VL_DEFAULT_SYSTEM: &str = "You are a helpful assistant.";
/// The system prompt Qwen2.5 (text) instruct templates insert when the conversation has none.
pub const QWEN2_5_DEFAULT_SYSTEM: &str =
    "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";
/// The system prompt SmolLM2-Instruct's template inserts when the conversation has none.
pub const SMOLLM2_DEFAULT_SYSTEM: &str =
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face";

pub const IM_START: &str = "<|im_start|>";
pub const IM_END: &str = "<|im_end|>";
pub const VISION_START: &str = "<|vision_start|>";
pub const VISION_END: &str = "<|vision_end|>";
pub const IMAGE_PAD: &str = "<|image_pad|>";
/// What one image part renders as, before [`expand_image_pads`].
pub const IMAGE_PLACEHOLDER: &str = "<|vision_start|><|image_pad|><|vision_end|>";

/// One piece of a message's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Text(String),
    Image,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub role: String,
    pub parts: Vec<Part>,
}

impl Message {
    /// A message with one text part.
    pub fn text(role: &str, text: &str) -> Message {
        Message {
            role: role.to_string(),
            parts: vec![Part::Text(text.to_string())],
        }
    }
    pub fn system(text: &str) -> Message {
        Message::text("system", text)
    }
    pub fn user(text: &str) -> Message {
        Message::text("user", text)
    }
    pub fn assistant(text: &str) -> Message {
        Message::text("assistant", text)
    }
    /// A user message with `images` image parts first, then the text (the usual VQA prompt).
    pub fn user_with_images(images: usize, text: &str) -> Message {
        let mut parts = vec![Part::Image; images];
        parts.push(Part::Text(text.to_string()));
        Message {
            role: "user".to_string(),
            parts,
        }
    }
    /// How many image parts the message has.
    pub fn num_images(&self) -> usize {
        self.parts
            .iter()
            .filter(|p| matches!(p, Part::Image))
            .count()
    }
}

/// Renders a conversation as ChatML. `default_system` is inserted as a system message when the
/// first message is not one (`Some(QWEN2_5_VL_DEFAULT_SYSTEM)` for Qwen2.5-VL, `None` for no
/// default). With `add_generation_prompt` the text ends with `<|im_start|>assistant\n`.
pub fn render_chatml(
    messages: &[Message],
    add_generation_prompt: bool,
    default_system: Option<&str>,
) -> String {
    let mut out = String::new();
    for (i, m) in messages.iter().enumerate() {
        if i == 0 && m.role != "system" {
            if let Some(sys) = default_system {
                out.push_str(IM_START);
                out.push_str("system\n");
                out.push_str(sys);
                out.push_str(IM_END);
                out.push('\n');
            }
        }
        out.push_str(IM_START);
        out.push_str(&m.role);
        out.push('\n');
        for part in &m.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Image => out.push_str(IMAGE_PLACEHOLDER),
            }
        }
        out.push_str(IM_END);
        out.push('\n');
    }
    if add_generation_prompt {
        out.push_str(IM_START);
        out.push_str("assistant\n");
    }
    out
}

/// Replaces the `i`-th `<|image_pad|>` of `text` by `tokens_per_image[i]` pads, as the
/// Qwen2.5-VL processor does before tokenising. Errors when the number of pads in the text is
/// not the number of images, or an image has no token.
pub fn expand_image_pads(text: &str, tokens_per_image: &[usize]) -> Result<String> {
    let pieces: Vec<&str> = text.split(IMAGE_PAD).collect();
    let found = pieces.len() - 1;
    if found != tokens_per_image.len() {
        return Err(ModelError::invalid(format!(
            "the text has {found} `{IMAGE_PAD}` but {} images were given",
            tokens_per_image.len()
        )));
    }
    if let Some(i) = tokens_per_image.iter().position(|&n| n == 0) {
        return Err(ModelError::invalid(format!(
            "image {i} has 0 tokens; every image needs at least one `{IMAGE_PAD}`"
        )));
    }
    let extra: usize = tokens_per_image
        .iter()
        .map(|n| (n - 1) * IMAGE_PAD.len())
        .sum();
    let mut out = String::with_capacity(text.len() + extra);
    for (i, piece) in pieces.iter().enumerate() {
        out.push_str(piece);
        if let Some(&n) = tokens_per_image.get(i) {
            for _ in 0..n {
                out.push_str(IMAGE_PAD);
            }
        }
    }
    Ok(out)
}
