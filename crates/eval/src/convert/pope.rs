//! POPE (Li et al. 2023, object hallucination): JSON lines (the files are named `.json`) of
//! `{"question_id": 1, "image": "COCO_val2014_000000310196.jpg", "text": "Is there a snowboard
//! in the image?", "label": "yes"}`. The subset (`random`, `popular`, `adversarial`) is read
//! from the file name (`coco_pope_adversarial.json`) into `meta.subset`.

use std::sync::Arc;

use anyhow::{Context, Result};
use mixed_r1_data::adapters::resolve_image;
use mixed_r1_data::{Answer, Draft, Row, Task};
use serde_json::{Map, Value};

use super::{origin, BadRow, ConvertOptions, Drafts};
use crate::json_id::id_text;

pub(super) fn read(opts: &ConvertOptions, source: &str) -> Result<Drafts> {
    let path = &opts.input;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file = Arc::new(path.clone());
    let root = match &opts.image_root {
        Some(r) => r.clone(),
        None => path.parent().map(|p| p.to_path_buf()).unwrap_or_default(),
    };
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let subset = ["adversarial", "popular", "random"]
        .into_iter()
        .find(|s| stem.contains(s));
    let mut out = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let line = i + 1;
        if l.trim().is_empty() {
            continue;
        }
        let row = (|| -> std::result::Result<Draft, String> {
            let v: Value = serde_json::from_str(l).map_err(|e| format!("invalid JSON: {e}"))?;
            let qid = v
                .get("question_id")
                .and_then(id_text)
                .ok_or("no `question_id`")?;
            let image = v
                .get("image")
                .and_then(Value::as_str)
                .filter(|s| !s.trim().is_empty())
                .ok_or("no `image`")?;
            let question = v
                .get("text")
                .and_then(Value::as_str)
                .filter(|s| !s.trim().is_empty())
                .ok_or("no `text` (the question)")?;
            let label = v
                .get("label")
                .and_then(Value::as_str)
                .map(|s| s.trim().to_lowercase())
                .ok_or("no `label`")?;
            if label != "yes" && label != "no" {
                return Err(format!("label {label:?} is not yes or no"));
            }
            let mut meta = Map::new();
            meta.insert("question_id".into(), Value::String(qid.clone()));
            meta.insert("image_file".into(), Value::String(image.to_string()));
            if let Some(s) = subset {
                meta.insert("subset".into(), Value::String(s.into()));
            }
            if let Some(c) = v.get("category").filter(|c| !c.is_null()) {
                meta.insert("category".into(), c.clone());
            }
            let id = match subset {
                Some(s) => format!("{source}-{s}-{qid}"),
                None => format!("{source}-{qid}"),
            };
            Ok(Draft {
                id: Some(id),
                source: Some(source.to_string()),
                task: Some(Task::YesNo.as_str().into()),
                images: vec![resolve_image(&root, image)],
                problem: Some(format!("<image>{}", question.trim())),
                answer: Some(Answer::Text(label)),
                meta,
                ..Draft::default()
            })
        })();
        out.push(match row {
            Ok(d) => Ok(Row {
                item: d,
                origin: origin(&file, line),
            }),
            Err(reason) => Err(BadRow {
                file: path.display().to_string(),
                line,
                reason,
            }),
        });
    }
    Ok(out)
}
