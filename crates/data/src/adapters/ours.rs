//! Our JSON Lines (DESIGN.md schema), parsed in parallel: it is the format the engine writes and
//! the one large inputs come in, so it is the fast path.

use std::path::Path;

use rayon::prelude::*;

use super::{json_error, numbered_lines, resolve_image, Ctx, DataError, Rows};
use crate::schema::{Draft, Origin, Reject, Row, Stage};

pub(super) fn read_jsonl(ctx: &Ctx) -> Result<Rows, DataError> {
    let text = ctx.read_text()?;
    Ok(parse_jsonl_text(
        &text,
        &ctx.origin(0),
        &ctx.name,
        &ctx.image_root,
    ))
}

/// Fills what a line left out: the source name, and image paths resolved against the root.
fn finish(d: &mut Draft, source: &str, root: &Path) {
    if d.source.as_deref().is_none_or(|s| s.trim().is_empty()) {
        d.source = Some(source.to_string());
    }
    for img in &mut d.images {
        *img = resolve_image(root, img);
    }
}

/// Parses JSON Lines text already in memory (the same rules as a `jsonl` source file): rows are
/// named `file:line`, sources default to `source`, images resolve against `image_root`.
pub fn parse_jsonl_text(text: &str, origin_file: &Origin, source: &str, image_root: &Path) -> Rows {
    let lines = numbered_lines(text);
    lines
        .par_iter()
        .with_min_len(256)
        .map(|&(line, l)| {
            let origin = Origin {
                file: origin_file.file.clone(),
                line,
            };
            // serde reads a struct from a JSON array too (fields by position): not a row.
            if !l.trim_start().starts_with('{') {
                return Err(Reject::new(
                    &origin,
                    Stage::Ingest,
                    "a row must be a JSON object {...}",
                ));
            }
            match serde_json::from_str::<Draft>(l).or_else(|e| numeric_id(l).ok_or(e)) {
                Ok(mut d) => {
                    finish(&mut d, source, image_root);
                    Ok(Row { item: d, origin })
                }
                Err(e) => Err(Reject::new(&origin, Stage::Ingest, json_error(&e))),
            }
        })
        .collect()
}

/// A line whose `id` is a number (`"id": 42`) reads with the id as text: the schema's ids are
/// strings, but numbered ids are common and unambiguous. Tried only after the fast path failed.
fn numeric_id(l: &str) -> Option<Draft> {
    let mut v: serde_json::Value = serde_json::from_str(l).ok()?;
    let id = v.get_mut("id")?;
    if !id.is_number() {
        return None;
    }
    *id = serde_json::Value::String(id.to_string());
    serde_json::from_value(v).ok()
}
