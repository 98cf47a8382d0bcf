//! Atomic training checkpoints: `checkpoint-<step>/` directories plus a `latest` pointer.
//!
//! A checkpoint is first written completely into `checkpoint-<step>.tmp-<pid>/`, every file and
//! the directory are fsynced, and only then is it renamed to `checkpoint-<step>/`; `latest` is
//! replaced the same way (write a temporary file, fsync, rename). A crash at any point therefore
//! leaves either the previous checkpoint or the new one, never a half-written directory that a
//! resume would load. Older checkpoints are pruned only after the new one is in place.
//!
//! Layout of one checkpoint (the model writes Hugging Face files into the same folder, so it
//! loads in `transformers` as is):
//! ```text
//! checkpoint-<step>/
//!   <model files>            written by the caller's closure (config.json, model.safetensors, ...)
//!   optimizer.safetensors    AdamW moments and per-parameter steps (optim::AdamW::save_state)
//!   grpo_state.json          step, RNG state, trainer extras (data cursor, ...)
//!   metrics.jsonl            the per-step metrics so far
//! ```
//! This module knows nothing about the model: weights are written by a closure
//! `FnOnce(&Path) -> Result<(), E>` the model crate supplies.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand_chacha::{ChaCha12Rng, ChaCha20Rng, ChaCha8Rng};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::optim::AdamW;
use crate::{GrpoError, Result};

pub const STATE_FILE: &str = "grpo_state.json";
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
pub const METRICS_FILE: &str = "metrics.jsonl";
pub const LATEST_FILE: &str = "latest";
/// Version of `grpo_state.json`; bumped when its meaning changes.
pub const STATE_VERSION: u32 = 1;

/// The exact position of a ChaCha generator: key (seed), stream and word position. Restoring
/// these reproduces the remaining output bit for bit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RngState {
    /// `chacha8`, `chacha12` or `chacha20`.
    pub algorithm: String,
    /// The 32-byte key as 64 hex digits.
    pub seed: String,
    pub stream: u64,
    /// Word position (a u128), as a decimal string so JSON readers without 128-bit integers
    /// keep it exact.
    pub word_pos: String,
}

macro_rules! rng_state_impl {
    ($from:ident, $to:ident, $ty:ty, $alg:literal) => {
        impl RngState {
            pub fn $from(rng: &$ty) -> RngState {
                RngState {
                    algorithm: $alg.into(),
                    seed: rng.get_seed().iter().map(|b| format!("{b:02x}")).collect(),
                    stream: rng.get_stream(),
                    word_pos: rng.get_word_pos().to_string(),
                }
            }

            pub fn $to(&self) -> Result<$ty> {
                if self.algorithm != $alg {
                    return Err(GrpoError::Input(format!(
                        "RNG state is {}, expected {}",
                        self.algorithm, $alg
                    )));
                }
                let mut rng = <$ty>::from_seed(self.seed_bytes()?);
                rng.set_stream(self.stream);
                rng.set_word_pos(self.word_pos()?);
                Ok(rng)
            }
        }
    };
}

rng_state_impl!(from_chacha8, to_chacha8, ChaCha8Rng, "chacha8");
rng_state_impl!(from_chacha12, to_chacha12, ChaCha12Rng, "chacha12");
rng_state_impl!(from_chacha20, to_chacha20, ChaCha20Rng, "chacha20");

impl RngState {
    fn seed_bytes(&self) -> Result<[u8; 32]> {
        let s = self.seed.as_bytes();
        if s.len() != 64 {
            return Err(GrpoError::Input("RNG seed must be 64 hex digits".into()));
        }
        let mut out = [0u8; 32];
        for (i, o) in out.iter_mut().enumerate() {
            let pair = std::str::from_utf8(&s[2 * i..2 * i + 2]).unwrap_or("zz");
            *o = u8::from_str_radix(pair, 16)
                .map_err(|_| GrpoError::Input("RNG seed must be 64 hex digits".into()))?;
        }
        Ok(out)
    }

    fn word_pos(&self) -> Result<u128> {
        self.word_pos
            .parse()
            .map_err(|_| GrpoError::Input(format!("bad RNG word_pos `{}`", self.word_pos)))
    }
}

/// What the trainer needs besides weights and optimizer to continue exactly where it stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainerState {
    pub version: u32,
    /// Optimizer steps completed.
    pub step: u64,
    pub rng: RngState,
    /// Trainer-specific extras (epoch, data cursor, config hash, ...), opaque here.
    #[serde(default)]
    pub extra: Value,
}

impl TrainerState {
    pub fn new(step: u64, rng: RngState) -> Self {
        TrainerState {
            version: STATE_VERSION,
            step,
            rng,
            extra: Value::Null,
        }
    }
}

/// A checkpoint as read back.
#[derive(Debug, Clone)]
pub struct LoadedCheckpoint {
    pub dir: PathBuf,
    pub state: TrainerState,
    /// The metric records saved with it.
    pub metrics: Vec<Value>,
}

/// The directory name of a step's checkpoint.
pub fn checkpoint_name(step: u64) -> String {
    format!("checkpoint-{step}")
}

fn parse_step(name: &str) -> Option<u64> {
    name.strip_prefix("checkpoint-")?.parse().ok()
}

fn io<T>(path: &Path, r: std::io::Result<T>) -> Result<T> {
    r.map_err(|e| GrpoError::io(path, e))
}

/// fsyncs a file or directory (directories: so the entries created in them are durable).
fn sync_path(path: &Path) -> Result<()> {
    io(path, File::open(path).and_then(|f| f.sync_all()))
}

fn sync_tree(dir: &Path) -> Result<()> {
    for entry in io(dir, fs::read_dir(dir))? {
        let entry = io(dir, entry)?;
        let p = entry.path();
        if io(&p, entry.file_type())?.is_dir() {
            sync_tree(&p)?;
        } else {
            sync_path(&p)?;
        }
    }
    sync_path(dir)
}

/// Writes `bytes` to `path` atomically (temporary file in the same directory, fsync, rename,
/// fsync the directory).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| GrpoError::Input(format!("{} has no file name", path.display())))?
        .to_string_lossy()
        .to_string();
    let tmp = dir.join(format!("{name}.tmp-{}", std::process::id()));
    {
        let mut f = io(&tmp, File::create(&tmp))?;
        io(&tmp, f.write_all(bytes))?;
        io(&tmp, f.sync_all())?;
    }
    io(path, fs::rename(&tmp, path))?;
    sync_path(dir)
}

/// Everything a checkpoint holds besides the model weights.
pub struct CheckpointData<'a> {
    pub state: &'a TrainerState,
    pub optimizer: Option<&'a AdamW>,
    pub metrics: &'a [Value],
}

/// Saves `checkpoint-<state.step>/` under `root` atomically, points `latest` at it, then keeps
/// only the newest `keep_last` checkpoints (`None` = keep all; the new one is never removed).
/// `write_model(dir)` writes the weights into the (temporary) checkpoint directory.
pub fn save_checkpoint<E: std::fmt::Display>(
    root: &Path,
    data: &CheckpointData,
    write_model: impl FnOnce(&Path) -> std::result::Result<(), E>,
    keep_last: Option<usize>,
) -> Result<PathBuf> {
    io(root, fs::create_dir_all(root))?;
    let name = checkpoint_name(data.state.step);
    let pid = std::process::id();
    let final_dir = root.join(&name);
    let tmp = root.join(format!("{name}.tmp-{pid}"));
    if tmp.exists() {
        io(&tmp, fs::remove_dir_all(&tmp))?;
    }
    io(&tmp, fs::create_dir(&tmp))?;
    if let Err(e) = fill_checkpoint(&tmp, data, write_model) {
        // Best effort: a failed save must not leave gigabytes of partial weights behind.
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }

    // Re-saving a step that exists: move the old one aside first (rename cannot replace a
    // non-empty directory), and delete it only once the new one is in place.
    let old = root.join(format!("{name}.old-{pid}"));
    let replaced = final_dir.exists();
    if replaced {
        io(&final_dir, fs::rename(&final_dir, &old))?;
    }
    io(&final_dir, fs::rename(&tmp, &final_dir))?;
    sync_path(root)?;
    write_atomic(&root.join(LATEST_FILE), format!("{name}\n").as_bytes())?;
    if replaced {
        io(&old, fs::remove_dir_all(&old))?;
    }
    remove_stale_tmp(root)?;
    if let Some(keep) = keep_last {
        prune(root, keep.max(1), data.state.step)?;
    }
    Ok(final_dir)
}

/// Writes the weights and the trainer files into `dir` and fsyncs them.
fn fill_checkpoint<E: std::fmt::Display>(
    dir: &Path,
    data: &CheckpointData,
    write_model: impl FnOnce(&Path) -> std::result::Result<(), E>,
) -> Result<()> {
    write_model(dir).map_err(|e| GrpoError::External(format!("writing model weights: {e}")))?;
    if let Some(opt) = data.optimizer {
        opt.save_state(&dir.join(OPTIMIZER_FILE))?;
    }
    let state_json = serde_json::to_vec_pretty(data.state)?;
    io(dir, fs::write(dir.join(STATE_FILE), state_json))?;
    let mut metrics = Vec::new();
    for m in data.metrics {
        serde_json::to_writer(&mut metrics, m)?;
        metrics.push(b'\n');
    }
    io(dir, fs::write(dir.join(METRICS_FILE), metrics))?;
    sync_tree(dir)
}

/// Removes `checkpoint-*.tmp-<pid>` / `.old-<pid>` folders other processes left when they
/// crashed mid-save (ours are gone by now). One run writes to one output directory at a time.
fn remove_stale_tmp(root: &Path) -> Result<()> {
    for entry in io(root, fs::read_dir(root))? {
        let entry = io(root, entry)?;
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with("checkpoint-") && (name.contains(".tmp-") || name.contains(".old-")) {
            let p = entry.path();
            if p.is_dir() {
                io(&p, fs::remove_dir_all(&p))?;
            }
        }
    }
    Ok(())
}

/// Completed checkpoints under `root`, oldest first, as `(step, dir)`.
pub fn list_checkpoints(root: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    if !root.exists() {
        return Ok(out);
    }
    for entry in io(root, fs::read_dir(root))? {
        let entry = io(root, entry)?;
        let name = entry.file_name().to_string_lossy().to_string();
        // Temporary (`.tmp-<pid>`) and moved-aside (`.old-<pid>`) folders fail to parse here.
        if let Some(step) = parse_step(&name) {
            if entry.path().join(STATE_FILE).is_file() {
                out.push((step, entry.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

fn prune(root: &Path, keep: usize, current: u64) -> Result<()> {
    let all = list_checkpoints(root)?;
    let n = all.len();
    for (step, dir) in all.into_iter().take(n.saturating_sub(keep)) {
        if step != current {
            io(&dir, fs::remove_dir_all(&dir))?;
        }
    }
    Ok(())
}

/// The checkpoint to resume from: the one `latest` names if it is complete, else the newest
/// complete `checkpoint-<step>/` (e.g. a crash between the directory rename and the pointer
/// update). `None` when there is none.
pub fn latest_checkpoint(root: &Path) -> Result<Option<PathBuf>> {
    let pointer = root.join(LATEST_FILE);
    if let Ok(text) = fs::read_to_string(&pointer) {
        let name = text.trim();
        if parse_step(name).is_some() {
            let dir = root.join(name);
            if dir.join(STATE_FILE).is_file() {
                let newest = list_checkpoints(root)?.pop();
                // Prefer a newer complete checkpoint the pointer has not caught up with.
                return Ok(Some(match newest {
                    Some((s, d)) if Some(s) > parse_step(name) => d,
                    _ => dir,
                }));
            }
        }
    }
    Ok(list_checkpoints(root)?.pop().map(|(_, d)| d))
}

/// Reads a checkpoint directory; when `optimizer` is given, restores its state too.
pub fn load_checkpoint(dir: &Path, optimizer: Option<&mut AdamW>) -> Result<LoadedCheckpoint> {
    let state_path = dir.join(STATE_FILE);
    let text = io(&state_path, fs::read_to_string(&state_path))?;
    let state: TrainerState =
        serde_json::from_str(&text).map_err(|e| GrpoError::format(&state_path, e.to_string()))?;
    if state.version != STATE_VERSION {
        return Err(GrpoError::format(
            &state_path,
            format!(
                "state version {} (this build reads {STATE_VERSION})",
                state.version
            ),
        ));
    }
    if let Some(opt) = optimizer {
        opt.load_state(&dir.join(OPTIMIZER_FILE))?;
    }
    let metrics_path = dir.join(METRICS_FILE);
    let metrics = if metrics_path.exists() {
        crate::metrics::read_jsonl(&metrics_path)?
    } else {
        Vec::new()
    };
    Ok(LoadedCheckpoint {
        dir: dir.to_path_buf(),
        state,
        metrics,
    })
}
