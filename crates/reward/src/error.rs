//! Errors of loading and configuration. Scoring itself never fails: a bad sample becomes a
//! [`crate::Skip`] or an `error` field in its result, never an `Err` that stops a batch.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RewardError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file was read but its content is not what we need (bad TOML, missing tensor, ...).
    #[error("{path}: {message}")]
    Load { path: PathBuf, message: String },
    /// A configuration value is out of range or inconsistent.
    #[error("invalid configuration: {0}")]
    Config(String),
}

impl RewardError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        RewardError::Io {
            path: path.into(),
            source,
        }
    }

    pub fn load(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        RewardError::Load {
            path: path.into(),
            message: message.into(),
        }
    }
}
