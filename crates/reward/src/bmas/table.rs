//! The embedding table: one 2-D tensor of a memory-mapped safetensors file (a single file, a
//! sharded index or a model folder), its rows converted to f32 and L2-normalised lazily, once.

use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};

use crate::RewardError;

/// Tensor names tried, in order, when no `tensor` is configured: the input-embedding table under
/// the names common checkpoints use (Qwen2/Llama, Qwen2.5-VL in recent transformers, BERT/MiniLM,
/// GPT-2, a tied `lm_head`, InternLM).
pub const DEFAULT_TENSORS: &[&str] = &[
    "model.embed_tokens.weight",
    "model.language_model.embed_tokens.weight",
    "embeddings.word_embeddings.weight",
    "transformer.wte.weight",
    "lm_head.weight",
    "tok_embeddings.weight",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Elem {
    F32,
    F16,
    BF16,
    F64,
}

impl Elem {
    fn size(self) -> usize {
        match self {
            Elem::F16 | Elem::BF16 => 2,
            Elem::F32 => 4,
            Elem::F64 => 8,
        }
    }
}

/// One 2-D tensor `[rows, dim]` of a memory-mapped safetensors file, with its rows L2-normalised
/// to f32 lazily and cached.
pub struct EmbeddingTable {
    path: PathBuf,
    tensor: String,
    mmap: Mmap,
    /// Byte offset of the tensor's data in the file.
    start: usize,
    rows: usize,
    dim: usize,
    elem: Elem,
    normalized: Box<[OnceLock<Box<[f32]>>]>,
}

impl fmt::Debug for EmbeddingTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddingTable")
            .field("path", &self.path)
            .field("tensor", &self.tensor)
            .field("shape", &[self.rows, self.dim])
            .field("dtype", &self.elem)
            .finish()
    }
}

impl EmbeddingTable {
    /// Opens a table from a safetensors file, a sharded `*.safetensors.index.json`, or a model
    /// folder. `tensor = None` tries [`DEFAULT_TENSORS`] in order.
    pub fn open(path: impl AsRef<Path>, tensor: Option<&str>) -> Result<Self, RewardError> {
        let path = path.as_ref();
        if path.is_dir() {
            Self::open_model_dir(path, tensor)
        } else if path.extension().is_some_and(|e| e == "json") {
            Self::open_index(path, tensor)
        } else {
            Self::open_file(path, tensor)
        }
    }

    /// A Hugging Face model folder: `model.safetensors`, else `model.safetensors.index.json`.
    pub fn open_model_dir(
        dir: impl AsRef<Path>,
        tensor: Option<&str>,
    ) -> Result<Self, RewardError> {
        let dir = dir.as_ref();
        let single = dir.join("model.safetensors");
        let index = dir.join("model.safetensors.index.json");
        if single.is_file() {
            Self::open_file(&single, tensor)
        } else if index.is_file() {
            Self::open_index(&index, tensor)
        } else if !dir.is_dir() {
            Err(RewardError::io(
                dir,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such model folder"),
            ))
        } else {
            Err(RewardError::load(
                dir,
                "model folder has neither model.safetensors nor model.safetensors.index.json",
            ))
        }
    }

    /// A sharded checkpoint: the index's `weight_map` names the shard holding the tensor.
    pub fn open_index(index: impl AsRef<Path>, tensor: Option<&str>) -> Result<Self, RewardError> {
        let index = index.as_ref();
        let text = std::fs::read_to_string(index).map_err(|e| RewardError::io(index, e))?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| RewardError::load(index, format!("not a JSON index: {e}")))?;
        let map = json
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| RewardError::load(index, "the index has no \"weight_map\" object"))?;
        let candidates = candidates(tensor);
        let (name, shard) = candidates
            .iter()
            .find_map(|c| map.get(*c).map(|s| (*c, s)))
            .ok_or_else(|| {
                RewardError::load(index, missing_tensor_message(&candidates, map.keys()))
            })?;
        let shard = shard.as_str().ok_or_else(|| {
            RewardError::load(index, format!("weight_map[\"{name}\"] is not a file name"))
        })?;
        let dir = index.parent().unwrap_or(Path::new("."));
        Self::open_file(dir.join(shard), Some(name))
    }

    /// One safetensors file.
    pub fn open_file(path: impl AsRef<Path>, tensor: Option<&str>) -> Result<Self, RewardError> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| RewardError::io(path, e))?;
        // SAFETY: the file is mapped read-only. Changing a checkpoint while it is being scored
        // is outside what we support (as for every mmap-based loader).
        let mmap = unsafe { Mmap::map(&file) }.map_err(|e| RewardError::io(path, e))?;
        let (header_len, metadata) = SafeTensors::read_metadata(&mmap)
            .map_err(|e| RewardError::load(path, format!("not a safetensors file: {e:?}")))?;
        let candidates = candidates(tensor);
        let (name, info) = candidates
            .iter()
            .find_map(|c| metadata.info(c).map(|i| (*c, i)))
            .ok_or_else(|| {
                let names = metadata.tensors();
                RewardError::load(path, missing_tensor_message(&candidates, names.keys()))
            })?;
        let elem = match info.dtype {
            Dtype::F32 => Elem::F32,
            Dtype::F16 => Elem::F16,
            Dtype::BF16 => Elem::BF16,
            Dtype::F64 => Elem::F64,
            other => {
                return Err(RewardError::load(
                    path,
                    format!("tensor `{name}` has dtype {other:?}; BMAS reads F32, F16, BF16, F64"),
                ))
            }
        };
        let (rows, dim) = match info.shape[..] {
            [rows, dim] if rows > 0 && dim > 0 => (rows, dim),
            _ => {
                return Err(RewardError::load(
                    path,
                    format!(
                        "tensor `{name}` has shape {:?}; an embedding table is [vocab, hidden]",
                        info.shape
                    ),
                ))
            }
        };
        // 8 bytes of header length, then the header, then the data.
        let start = 8 + header_len + info.data_offsets.0;
        let bytes = rows
            .checked_mul(dim)
            .and_then(|n| n.checked_mul(elem.size()));
        if bytes != Some(info.data_offsets.1 - info.data_offsets.0) {
            return Err(RewardError::load(
                path,
                format!(
                    "tensor `{name}`: data length does not match shape {:?}",
                    info.shape
                ),
            ));
        }
        let normalized = (0..rows).map(|_| OnceLock::new()).collect();
        Ok(EmbeddingTable {
            path: path.to_path_buf(),
            tensor: name.to_string(),
            mmap,
            start,
            rows,
            dim,
            elem,
            normalized,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn tensor_name(&self) -> &str {
        &self.tensor
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The dtype as safetensors names it ("F32", "F16", "BF16", "F64").
    pub fn dtype(&self) -> &'static str {
        match self.elem {
            Elem::F32 => "F32",
            Elem::F16 => "F16",
            Elem::BF16 => "BF16",
            Elem::F64 => "F64",
        }
    }

    /// Row `id` as f32, L2-normalised (a zero vector when its norm is 0 or not finite);
    /// `None` beyond the table.
    pub fn normalized_row(&self, id: usize) -> Option<&[f32]> {
        let cell = self.normalized.get(id)?;
        Some(cell.get_or_init(|| self.convert_row(id)))
    }

    /// Row `id` as stored, converted to f32 (not normalised).
    pub fn raw_row(&self, id: usize) -> Option<Vec<f32>> {
        (id < self.rows).then(|| self.read_row(id))
    }

    fn read_row(&self, id: usize) -> Vec<f32> {
        let size = self.elem.size();
        let begin = self.start + id * self.dim * size;
        let bytes = &self.mmap[begin..begin + self.dim * size];
        match self.elem {
            Elem::F32 => bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Elem::F16 => bytes
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Elem::BF16 => bytes
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Elem::F64 => bytes
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32)
                .collect(),
        }
    }

    fn convert_row(&self, id: usize) -> Box<[f32]> {
        let mut row = self.read_row(id);
        let norm = row.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt();
        if norm > 0.0 && norm.is_finite() {
            let inv = 1.0 / norm;
            for x in &mut row {
                *x = (*x as f64 * inv) as f32;
            }
        } else {
            row.fill(0.0);
        }
        row.into_boxed_slice()
    }
}

fn candidates(tensor: Option<&str>) -> Vec<&str> {
    match tensor {
        Some(t) => vec![t],
        None => DEFAULT_TENSORS.to_vec(),
    }
}

fn missing_tensor_message<'a>(tried: &[&str], present: impl Iterator<Item = &'a String>) -> String {
    let mut present: Vec<&String> = present.collect();
    present.sort();
    // The embedding-looking names first: they are the likely fix.
    let mut hints: Vec<&String> = present
        .iter()
        .copied()
        .filter(|n| n.contains("emb") || n.contains("wte"))
        .collect();
    let shown = if hints.is_empty() {
        present.iter().take(8).copied().collect()
    } else {
        hints.truncate(8);
        hints
    };
    let shown: Vec<&str> = shown.iter().map(|s| s.as_str()).collect();
    format!(
        "no embedding tensor found: tried {}; the file has {} tensors, e.g. {} \
         (set bmas.tensor / --embedding-tensor)",
        tried
            .iter()
            .map(|t| format!("`{t}`"))
            .collect::<Vec<_>>()
            .join(", "),
        present.len(),
        if shown.is_empty() {
            "none".to_string()
        } else {
            shown.join(", ")
        }
    )
}
