//! Writing the datasets trainers load (verl and EasyR1 Parquet, `write.rs`), and reading any
//! Parquet file as rows of plain cells (`read.rs`). Our JSONL writers live in [`crate::jsonl`]
//! and are re-exported here. The verl / EasyR1 source adapter that turns those rows back into
//! samples is `adapters/parquet.rs`.
//!
//! **verl** (`verl/utils/dataset/rl_dataset.py`, `examples/data_preprocess/geo3k.py`): one row per
//! prompt with
//!
//! | column | type | ours |
//! |---|---|---|
//! | `data_source` | string | the sample's source |
//! | `prompt` | `list<struct<role: string, content: string>>` | `[{"role": "user", "content": problem}]` (an optional system message first, an optional instruction appended as geo3k does); `<image>` placeholders stay in the content, where verl splits them into image entries |
//! | `images` | `list<struct<bytes: binary, path: string>>` when embedded (the Hugging Face `Image` layout verl's `process_image` opens from `bytes`); `list<struct<image: string>>` with a file path otherwise (what `qwen_vl_utils.fetch_image` opens) | the sample's images; the column is left out when no sample has one |
//! | `ability` | string | the task |
//! | `reward_model` | `struct<ground_truth: string, style: string>` | the answer as text (boxes as JSON text), `"rule"` |
//! | `extra_info` | struct | `index`, `split`, `question`, `answer` (as geo3k), and ours: `id`, `source`, `task`, `reward`, `choices` (`list<string>`), `frame`, `pred_frame`, `image_size` (`list<int64>`), `meta` (JSON text). `mixed_r1.verl` routes on these |
//!
//! **EasyR1** (`verl/utils/dataset.py`: `prompt_key` / `answer_key` / `image_key` default
//! `problem` / `answer` / `images`): `problem` (string with `<image>` placeholders), `answer`
//! (string), `images` (`list<string>` of paths, joined with EasyR1's `data.image_dir`; or
//! `list<struct<bytes, path>>` when embedded, which its `process_image` opens from `bytes`), plus
//! `id`, `source`, `task` and `meta` columns EasyR1 passes through. EasyR1 hands the reward
//! function only the `answer`, so by default the answer is a JSON object carrying what the
//! reward needs (`{"task": "grounding", "answer": [[...]], "frame": "abs", "image_size": [...]}`,
//! which `mixed_r1.easyr1_reward` reads); `plain_answers` writes the bare answer text instead.

use std::path::PathBuf;

mod read;
mod write;

pub use crate::jsonl::{write_jsonl, write_jsonl_of};
pub use read::{cell, parquet_columns, read_parquet_rows, Cell, ParquetRow};
pub use write::{answer_object, write_easyr1_parquet, write_verl_parquet};

/// How the Parquet writers lay out images and prompts.
#[derive(Debug, Clone)]
pub struct ParquetOptions {
    /// Embed image bytes in the file (`{bytes, path}` structs) instead of writing paths.
    pub embed_images: bool,
    /// Without embedding: write image paths relative to the output file's folder (portable; set
    /// EasyR1's `data.image_dir` to that folder) instead of absolute paths (what verl opens).
    pub relative_paths: bool,
    /// Folder relative sample image paths are resolved against (default: the current folder).
    pub image_root: Option<PathBuf>,
    /// `extra_info.split` (verl).
    pub split: String,
    /// Appended to the user message after a space, as verl's geo3k script appends its
    /// instruction (verl only; EasyR1 has its own `format_prompt`).
    pub instruction: Option<String>,
    /// A system message before the user message (verl only).
    pub system_prompt: Option<String>,
    /// EasyR1: the bare answer text in `answer` instead of the JSON object.
    pub plain_answers: bool,
    /// Rows per Parquet row group (and per batch held in memory while writing).
    pub row_group_size: usize,
}

impl Default for ParquetOptions {
    fn default() -> Self {
        ParquetOptions {
            embed_images: false,
            relative_paths: false,
            image_root: None,
            split: "train".into(),
            instruction: None,
            system_prompt: None,
            plain_answers: false,
            row_group_size: 1024,
        }
    }
}
