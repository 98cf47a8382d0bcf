//! Our JSON Lines writers: samples in the schema's field order, and any serialisable items
//! (rejects, reports). Re-exported from [`crate::parquet_io`], where callers have always found
//! them.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;

use serde::Serialize;

use crate::error::DataError;
use crate::schema::Sample;

/// Writes samples as our JSON Lines, one object a line in the schema's field order.
pub fn write_jsonl(samples: &[Sample], path: &Path) -> Result<(), DataError> {
    write_jsonl_of(samples, path)
}

/// Writes any serialisable items one JSON object a line (rejects, reports).
pub fn write_jsonl_of<T: Serialize>(items: &[T], path: &Path) -> Result<(), DataError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| DataError::write(dir, e))?;
    }
    let werr = |e: std::io::Error| DataError::write(path, e);
    let mut out = BufWriter::new(File::create(path).map_err(werr)?);
    for it in items {
        serde_json::to_writer(&mut out, it).map_err(|e| DataError::write(path, e.into()))?;
        out.write_all(b"\n").map_err(werr)?;
    }
    out.flush().map_err(werr)
}
