//! Reading a training set for a run: JSONL or Parquet through the eval harness's loader, so a
//! run trains on exactly the rows an eval of the same file would score.

use std::path::Path;

use anyhow::Result;
use mixed_r1_data::Sample;

/// The samples of a JSONL / Parquet file; bad rows and missing images are skipped and, unless
/// `quiet`, reported with their file and line (the first five, and how many in all).
pub fn load_samples(path: &Path, quiet: bool) -> Result<Vec<Sample>> {
    let data = mixed_r1_eval::load_data(&[path.to_path_buf()])?;
    if !data.skipped.is_empty() && !quiet {
        eprintln!(
            "warning: {} rows of {} skipped:",
            data.skipped.len(),
            path.display()
        );
        for s in data.skipped.iter().take(5) {
            eprintln!("  {}:{}: {}", s.file, s.line, s.reason);
        }
    }
    Ok(data.samples.into_iter().map(|s| s.sample).collect())
}
