//! The error of a whole input or output file (as opposed to one bad row, which is a
//! [`crate::schema::Reject`] and never stops a build).

use std::path::{Path, PathBuf};

/// A failure of a whole input (or output) file, naming it.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read {}: {err}", path.display())]
    Read { path: PathBuf, err: std::io::Error },
    #[error("cannot write {}: {err}", path.display())]
    Write { path: PathBuf, err: std::io::Error },
    /// The file is there but is not what its format says (not JSON, wrong top-level shape, ...).
    #[error("{}: {msg}", path.display())]
    Format { path: PathBuf, msg: String },
    #[error("{}: Parquet: {msg}", path.display())]
    Parquet { path: PathBuf, msg: String },
}

impl DataError {
    pub fn read(path: &Path, err: std::io::Error) -> DataError {
        DataError::Read {
            path: path.to_path_buf(),
            err,
        }
    }

    pub fn write(path: &Path, err: std::io::Error) -> DataError {
        DataError::Write {
            path: path.to_path_buf(),
            err,
        }
    }

    pub fn format(path: &Path, msg: impl Into<String>) -> DataError {
        DataError::Format {
            path: path.to_path_buf(),
            msg: msg.into(),
        }
    }

    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            DataError::Read { path, .. }
            | DataError::Write { path, .. }
            | DataError::Format { path, .. }
            | DataError::Parquet { path, .. } => path,
        }
    }
}
