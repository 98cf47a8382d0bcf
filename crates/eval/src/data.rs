//! Eval data: any file the data engine reads (our JSONL, verl / EasyR1 Parquet, and the source
//! layouts `mixed-r1-data` detects), normalised to the sample schema, with every sample that
//! cannot be evaluated reported with its file, line and reason instead of stopping the run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use mixed_r1_data::adapters::{detect_format, read_source, spec_for};
use mixed_r1_data::normalise::normalise;
use mixed_r1_data::{Sample, SourceFormat, Task};
use serde::{Deserialize, Serialize};

use crate::seed::fnv64;
use mixed_r1_data::paths::absolute;

/// A sample to evaluate and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalSample {
    pub sample: Sample,
    pub file: String,
    pub line: usize,
}

/// Why a sample was not evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipKind {
    /// The row could not be read or lacks what the schema requires.
    Invalid,
    /// An image of the sample does not exist (or is not a local file).
    MissingImage,
    /// Its id was already used by an earlier row.
    Duplicate,
    /// The responder had no response for it (given-responses mode).
    NoResponse,
}

impl SkipKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipKind::Invalid => "invalid",
            SkipKind::MissingImage => "missing_image",
            SkipKind::Duplicate => "duplicate",
            SkipKind::NoResponse => "no_response",
        }
    }
}

/// A sample that was reported and skipped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    pub kind: SkipKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub file: String,
    pub line: usize,
    pub reason: String,
}

/// One data file: its path and a hash of its content (for the resume fingerprint).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataFile {
    pub path: String,
    pub format: String,
    pub hash: String,
    pub rows: usize,
}

/// Everything read from the data files.
#[derive(Debug, Clone, Default)]
pub struct EvalData {
    /// Samples to evaluate, in file order (files in the order given).
    pub samples: Vec<EvalSample>,
    /// Rows that cannot be evaluated.
    pub skipped: Vec<Skipped>,
    pub files: Vec<DataFile>,
}

fn format_name(f: SourceFormat) -> String {
    serde_json::to_value(f)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{f:?}"))
}

/// Reads every data file (format detected as `mixed-r1 data` detects it, our JSONL when
/// nothing else fits). A file that cannot be read is an error naming it; a bad row, a sample
/// with a missing image and a repeated id are skipped and reported. Grounding samples without
/// `image_size` get it from their image's header.
pub fn load_data(paths: &[PathBuf]) -> Result<EvalData> {
    let mut out = EvalData::default();
    let mut seen: HashMap<String, (String, usize)> = HashMap::new();
    for path in paths {
        let format = detect_format(path).unwrap_or(SourceFormat::Jsonl);
        let hash = if path.is_file() {
            let bytes = std::fs::read(path)
                .with_context(|| format!("cannot read data {}", path.display()))?;
            fnv64(&bytes)
        } else {
            fnv64(absolute(path).to_string_lossy().as_bytes())
        };
        let spec = spec_for(path.clone(), format);
        let rows =
            read_source(&spec).with_context(|| format!("cannot read data {}", path.display()))?;
        let default_source = mixed_r1_data::adapters::default_name(path);
        let file = path.display().to_string();
        out.files.push(DataFile {
            path: file.clone(),
            format: format_name(format),
            hash: format!("{hash:016x}"),
            rows: rows.len(),
        });
        for row in rows {
            let row = match row.and_then(|r| normalise(r, &default_source)) {
                Ok(r) => r,
                Err(rej) => {
                    out.skipped.push(Skipped {
                        kind: SkipKind::Invalid,
                        id: rej.id.clone(),
                        task: None,
                        source: None,
                        file: rej.file.display().to_string(),
                        line: rej.line,
                        reason: rej.reason.clone(),
                    });
                    continue;
                }
            };
            let line = row.origin.line;
            let mut sample = row.item;
            let skip = |kind, reason: String, s: &Sample| Skipped {
                kind,
                id: Some(s.id.clone()),
                task: Some(s.task.as_str().to_string()),
                source: Some(s.source.clone()),
                file: file.clone(),
                line,
                reason,
            };
            if let Some((f, l)) = seen.get(&sample.id) {
                let why = format!("duplicate id {:?} (first at {f}:{l})", sample.id);
                out.skipped.push(skip(SkipKind::Duplicate, why, &sample));
                continue;
            }
            seen.insert(sample.id.clone(), (file.clone(), line));
            if let Some(why) = missing_image(&sample) {
                out.skipped.push(skip(SkipKind::MissingImage, why, &sample));
                continue;
            }
            if sample.task == Task::Grounding && sample.image_size.is_none() {
                if let Some(first) = sample.images.first() {
                    match image::image_dimensions(first) {
                        Ok((w, h)) => sample.image_size = Some([w, h]),
                        Err(e) => {
                            let why = format!("cannot read image {first}: {e}");
                            out.skipped.push(skip(SkipKind::MissingImage, why, &sample));
                            continue;
                        }
                    }
                }
            }
            out.samples.push(EvalSample {
                sample,
                file: file.clone(),
                line,
            });
        }
    }
    Ok(out)
}

/// Why a sample's images cannot be given to a model, if they cannot.
pub fn missing_image(s: &Sample) -> Option<String> {
    for img in &s.images {
        if img.contains("://") || img.starts_with("data:") {
            return Some(format!("image {img} is not a local file"));
        }
        if !Path::new(img).is_file() {
            return Some(format!("missing image {img}"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_bad_rows_missing_images_and_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("img")).unwrap();
        let png = {
            let img = image::RgbImage::new(30, 20);
            let mut bytes = Vec::new();
            image::DynamicImage::ImageRgb8(img)
                .write_to(
                    &mut std::io::Cursor::new(&mut bytes),
                    image::ImageFormat::Png,
                )
                .unwrap();
            bytes
        };
        std::fs::write(d.join("img/a.png"), png).unwrap();
        let data = d.join("set.jsonl");
        std::fs::write(
            &data,
            "{\"id\": \"g\", \"task\": \"grounding\", \"images\": [\"img/a.png\"], \"problem\": \"<image>Where?\", \"answer\": [[1,2,3,4]]}\n\
             {\"id\": \"m\", \"task\": \"yes_no\", \"images\": [\"img/none.png\"], \"problem\": \"<image>Is it?\", \"answer\": \"yes\"}\n\
             {\"id\": \"g\", \"task\": \"yes_no\", \"problem\": \"Again?\", \"answer\": \"no\"}\n\
             {\"id\": \"x\", \"task\": \"yes_no\"}\n\
             {broken\n",
        )
        .unwrap();
        let got = load_data(std::slice::from_ref(&data)).unwrap();
        assert_eq!(got.samples.len(), 1);
        assert_eq!(got.samples[0].sample.image_size, Some([30, 20]));
        assert_eq!(got.samples[0].line, 1);
        let kinds: Vec<(SkipKind, usize)> = got.skipped.iter().map(|s| (s.kind, s.line)).collect();
        assert!(kinds.contains(&(SkipKind::MissingImage, 2)), "{kinds:?}");
        assert!(kinds.contains(&(SkipKind::Duplicate, 3)), "{kinds:?}");
        assert!(kinds.contains(&(SkipKind::Invalid, 4)), "{kinds:?}");
        assert!(kinds.contains(&(SkipKind::Invalid, 5)), "{kinds:?}");
        assert_eq!(got.files[0].rows, 5);
        assert_eq!(got.files[0].format, "jsonl");
        let e = format!("{:#}", load_data(&[d.join("nope.jsonl")]).unwrap_err());
        assert!(e.contains("nope.jsonl"), "{e}");
    }
}
