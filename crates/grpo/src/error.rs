//! The crate's error type: one enum so the trainer can report any failure with its cause.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum GrpoError {
    /// A configuration value is invalid; the message names the key.
    #[error("config: {0}")]
    Config(String),
    /// Inputs of inconsistent length or shape (a caller bug, not a data problem).
    #[error("bad input: {0}")]
    Input(String),
    /// An estimator / loss / KL name not in its registry.
    #[error("unknown {kind} `{name}` (expected one of: {known})")]
    UnknownName {
        kind: &'static str,
        name: String,
        known: String,
    },
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("image: {0}")]
    Image(#[from] image::ImageError),
    /// An error from a caller-supplied closure (e.g. the model's weight writer).
    #[error("{0}")]
    External(String),
}

impl GrpoError {
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        GrpoError::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    pub fn format(path: impl AsRef<Path>, message: impl Into<String>) -> Self {
        GrpoError::Format {
            path: path.as_ref().to_path_buf(),
            message: message.into(),
        }
    }

    pub(crate) fn unknown(kind: &'static str, name: &str, known: &[&str]) -> Self {
        GrpoError::UnknownName {
            kind,
            name: name.to_string(),
            known: known.join(", "),
        }
    }
}

pub type Result<T, E = GrpoError> = std::result::Result<T, E>;
