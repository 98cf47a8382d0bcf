//! COCO-captions-style annotations: one open-ended sample per image.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::{resolve_image, Ctx, DataError, Rows};
use crate::schema::{Answer, Draft, Task};

/// The default caption prompt.
pub const CAPTION_PROMPT: &str = "<image>Describe this image in one sentence.";

/// COCO-captions-style annotations: one open-ended sample per image, the first caption (by
/// annotation order) as the answer and every caption in `meta.captions`; `image_size` from the
/// image entry. Option `prompt`.
pub(super) fn read_coco_captions(ctx: &Ctx) -> Result<Rows, DataError> {
    let path = &ctx.spec.path;
    let v = ctx.read_json()?;
    let (Some(images), Some(anns)) = (
        v.get("images").and_then(Value::as_array),
        v.get("annotations").and_then(Value::as_array),
    ) else {
        return Err(DataError::format(
            path,
            "COCO captions need `images` and `annotations` lists",
        ));
    };
    let mut captions: HashMap<i64, Vec<String>> = HashMap::new();
    for a in anns {
        if let (Some(id), Some(c)) = (
            a.get("image_id").and_then(Value::as_i64),
            a.get("caption").and_then(Value::as_str),
        ) {
            let c = c.trim();
            if !c.is_empty() {
                captions.entry(id).or_default().push(c.to_string());
            }
        }
    }
    let prompt = ctx.opt_str("prompt").unwrap_or(CAPTION_PROMPT);
    Ok(images
        .iter()
        .enumerate()
        .map(|(i, im)| {
            let line = i + 1;
            let id = im
                .get("id")
                .and_then(Value::as_i64)
                .ok_or_else(|| ctx.reject(line, "image entry has no integer `id`"))?;
            let file = im
                .get("file_name")
                .and_then(Value::as_str)
                .ok_or_else(|| ctx.reject(line, format!("image {id} has no `file_name`")))?;
            let caps = captions
                .get(&id)
                .filter(|c| !c.is_empty())
                .ok_or_else(|| ctx.reject(line, format!("image {id} has no caption")))?;
            let dim = |k: &str| im.get(k).and_then(Value::as_u64).unwrap_or(0) as u32;
            let (w, h) = (dim("width"), dim("height"));
            let mut meta = Map::new();
            meta.insert("coco_id".into(), Value::from(id));
            meta.insert(
                "captions".into(),
                Value::Array(caps.iter().cloned().map(Value::String).collect()),
            );
            Ok(ctx.row(
                line,
                Draft {
                    id: Some(format!("{}-{id}", ctx.name)),
                    source: Some(ctx.name.clone()),
                    task: Some(Task::OpenEnded.as_str().into()),
                    images: vec![resolve_image(&ctx.image_root, file)],
                    problem: Some(prompt.to_string()),
                    answer: Some(Answer::Text(caps[0].clone())),
                    image_size: (w > 0 && h > 0).then_some([w, h]),
                    meta,
                    ..Draft::default()
                },
            ))
        })
        .collect())
}
