//! The verl and EasyR1 Parquet source adapter (layouts in [`crate::parquet_io`]).
//!
//! It accepts what these writers write and what verl's and EasyR1's own scripts write
//! (geo3k's embedded images, gsm8k's text-only rows, `extra_info.question` as the clean problem,
//! a `ground_truth` JSON object). Embedded image bytes are written out once, named by content
//! hash, to the folder in option `extract_images` (default `<file stem>_images/` beside the file).

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::{parse_frame, resolve_image, Ctx, DataError, Rows};
use crate::parquet_io::{parquet_columns, read_parquet_rows, Cell};
use crate::schema::{Answer, Draft, SourceFormat};

pub(crate) fn detect_parquet(path: &Path) -> Option<SourceFormat> {
    let cols = parquet_columns(path).ok()?;
    let has = |c: &str| cols.iter().any(|x| x == c);
    if has("prompt") && has("reward_model") {
        Some(SourceFormat::Verl)
    } else if has("problem") {
        Some(SourceFormat::Easyr1)
    } else {
        None
    }
}

/// Writes embedded image bytes out once, named by their content hash.
struct Extractor {
    dir: PathBuf,
    done: HashMap<u64, String>,
}

impl Extractor {
    fn new(ctx: &Ctx) -> Extractor {
        let p = &ctx.spec.path;
        let dir = match ctx.opt_str("extract_images") {
            Some(d) => p.parent().unwrap_or(Path::new("")).join(d),
            None => p.with_file_name(format!("{}_images", super::default_name(p))),
        };
        Extractor {
            dir,
            done: HashMap::new(),
        }
    }

    fn extract(&mut self, bytes: &[u8]) -> Result<String, String> {
        let h = mixed_r1_stable_hash::fnv64(bytes);
        if let Some(p) = self.done.get(&h) {
            return Ok(p.clone());
        }
        let ext = match image::guess_format(bytes) {
            Ok(f) => f.extensions_str().first().copied().unwrap_or("img"),
            Err(_) => "img",
        };
        let path = self.dir.join(format!("{h:016x}.{ext}"));
        if !path.is_file() {
            fs::create_dir_all(&self.dir)
                .map_err(|e| format!("cannot create {}: {e}", self.dir.display()))?;
            fs::write(&path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        let s = path.to_string_lossy().into_owned();
        self.done.insert(h, s.clone());
        Ok(s)
    }
}

/// An image entry of any layout: a path string, `{bytes, path}`, `{image}` / `{path}`.
fn image_path(c: &Cell, root: &Path, ex: &mut Extractor) -> Result<String, String> {
    match c {
        Cell::Str(s) => Ok(resolve_image(root, s.trim_start_matches("file://"))),
        Cell::Bytes(b) => ex.extract(b),
        Cell::Struct(_) => {
            if let Some(Cell::Bytes(b)) = c.get("bytes") {
                return ex.extract(b);
            }
            match c
                .get("image")
                .or_else(|| c.get("path"))
                .and_then(Cell::as_str)
            {
                Some(p) => Ok(resolve_image(root, p.trim_start_matches("file://"))),
                None => Err("an image entry has neither bytes nor a path".into()),
            }
        }
        _ => Err("an image entry is neither a path nor {bytes, path}".into()),
    }
}

fn images_of(c: Option<&Cell>, root: &Path, ex: &mut Extractor) -> Result<Vec<String>, String> {
    match c {
        None | Some(Cell::Null) => Ok(Vec::new()),
        Some(Cell::List(items)) => items.iter().map(|i| image_path(i, root, ex)).collect(),
        Some(other) => image_path(other, root, ex).map(|p| vec![p]),
    }
}

/// Fields of a ground truth that is a JSON object with an `answer` (ours and `mixed_r1`'s
/// convention), applied to the draft; otherwise the text is the answer.
fn apply_ground_truth(d: &mut Draft, gt: &Cell) -> Result<(), String> {
    match gt {
        Cell::Str(s) => {
            let t = s.trim();
            if t.starts_with('{') {
                if let Ok(Value::Object(o)) = serde_json::from_str::<Value>(t) {
                    if o.contains_key("answer") {
                        return apply_fields(d, &o);
                    }
                }
            }
            d.answer = Some(Answer::Text(s.clone()));
        }
        Cell::Int(i) => d.answer = Some(Answer::Text(i.to_string())),
        Cell::Float(f) => d.answer = Some(Answer::Text(f.to_string())),
        Cell::Bool(b) => d.answer = Some(Answer::Text(if *b { "yes" } else { "no" }.into())),
        Cell::Null => {}
        other => d.answer = Some(Answer::Json(other.to_json())),
    }
    Ok(())
}

/// Sample fields from a JSON object (a ground-truth object, our `extra_info`).
fn apply_fields(d: &mut Draft, o: &Map<String, Value>) -> Result<(), String> {
    for (k, v) in o {
        if v.is_null() {
            continue;
        }
        match k.as_str() {
            "answer" => {
                d.answer = Some(
                    serde_json::from_value(v.clone()).map_err(|e| format!("bad answer: {e}"))?,
                );
            }
            "task" => d.task = v.as_str().map(str::to_string),
            "reward" => d.reward = v.as_str().map(str::to_string),
            "id" => d.id = super::id_string(v),
            "source" => d.source = v.as_str().map(str::to_string),
            "choices" => {
                d.choices =
                    serde_json::from_value(v.clone()).map_err(|e| format!("bad choices: {e}"))?;
            }
            "frame" | "pred_frame" => {
                let name = v.as_str().unwrap_or("");
                let f = parse_frame(name).ok_or_else(|| format!("unknown {k} {name:?}"))?;
                if k == "frame" {
                    d.frame = Some(f);
                } else {
                    d.pred_frame = Some(f);
                }
            }
            "image_size" => {
                d.image_size = Some(
                    serde_json::from_value(v.clone())
                        .map_err(|e| format!("bad image_size: {e}"))?,
                );
            }
            "meta" => match v {
                Value::Object(m) => d.meta.extend(m.clone()),
                Value::String(s) if !s.trim().is_empty() => {
                    match serde_json::from_str::<Value>(s) {
                        Ok(Value::Object(m)) => d.meta.extend(m),
                        _ => {
                            d.meta.insert("meta".into(), v.clone());
                        }
                    }
                }
                _ => {}
            },
            _ => {
                d.meta.insert(k.clone(), v.clone());
            }
        }
    }
    Ok(())
}

/// A grounding answer that arrived as JSON text (a string column holds one type) is the JSON
/// list of boxes again.
fn boxes_as_json(d: &mut Draft) {
    if d.task.as_deref() != Some(crate::schema::Task::Grounding.as_str()) {
        return;
    }
    if let Some(Answer::Text(t)) = &d.answer {
        if let Ok(v @ Value::Array(_)) = serde_json::from_str::<Value>(t.trim()) {
            d.answer = Some(Answer::Json(v));
        }
    }
}

pub(crate) fn read_verl_parquet_with(ctx: &Ctx) -> Result<Rows, DataError> {
    let path = &ctx.spec.path;
    let rows = read_parquet_rows(path)?;
    if let Some((_, first)) = rows.first() {
        if !first.iter().any(|(k, _)| k == "prompt") {
            return Err(DataError::format(
                path,
                "a verl Parquet file needs a `prompt` column",
            ));
        }
    }
    let mut ex = Extractor::new(ctx);
    Ok(rows
        .into_iter()
        .map(|(line, cols)| {
            verl_draft(ctx, cols, &mut ex)
                .map(|d| ctx.row(line, d))
                .map_err(|why| ctx.reject(line, why))
        })
        .collect())
}

fn verl_draft(ctx: &Ctx, cols: Vec<(String, Cell)>, ex: &mut Extractor) -> Result<Draft, String> {
    let row = Cell::Struct(cols);
    let mut d = Draft {
        source: row
            .get("data_source")
            .and_then(Cell::as_str)
            .map(str::to_string)
            .or_else(|| Some(ctx.name.clone())),
        ..Draft::default()
    };
    let Some(Cell::List(msgs)) = row.get("prompt") else {
        return Err("`prompt` is not a list of messages".into());
    };
    let mut user = None;
    for m in msgs {
        match (m.get("role").and_then(Cell::as_str), m.get("content")) {
            (Some("user"), Some(Cell::Str(c))) => user = Some(c.clone()),
            (Some("system"), Some(Cell::Str(c))) => {
                d.meta
                    .insert("system_prompt".into(), Value::String(c.clone()));
            }
            _ => {}
        }
    }
    let Some(user) = user else {
        return Err("`prompt` has no user message with text content".into());
    };
    let gt = row
        .get("reward_model")
        .and_then(|r| r.get("ground_truth"))
        .ok_or("missing `reward_model.ground_truth`")?;
    apply_ground_truth(&mut d, gt)?;
    let mut question = None;
    // Our writer's extra_info carries `meta`; its index, split and ability are bookkeeping of
    // the write, not facts about the sample, so they do not pile up in meta on a round trip.
    let ours = matches!(row.get("extra_info"), Some(Cell::Struct(e)) if e.iter().any(|(k, _)| k == "meta"));
    if let Some(Cell::Struct(extra)) = row.get("extra_info") {
        let mut o = Map::new();
        for (k, v) in extra {
            match k.as_str() {
                "index" | "split" if ours => {}
                // geo3k keeps the clean problem here (the prompt has the instruction appended).
                "question" => question = v.as_str().map(str::to_string),
                // gsm8k keeps the worked solution here; the ground truth is the answer.
                "answer" if d.answer.is_some() => {
                    if v.as_str()
                        != Some(
                            d.answer
                                .as_ref()
                                .map(|a| a.text().into_owned())
                                .unwrap_or_default()
                                .as_str(),
                        )
                    {
                        o.insert("solution".into(), v.to_json());
                    }
                }
                _ => {
                    o.insert(k.clone(), v.to_json());
                }
            }
        }
        // An empty choices list or a null frame says nothing.
        o.retain(|k, v| {
            !(v.is_null() || (k == "choices" && v.as_array().is_some_and(Vec::is_empty)))
        });
        apply_fields(&mut d, &o)?;
    }
    if d.task.is_none() {
        // verl routes rewards by data_source; when it names a task, that is the task.
        if let Some(src) = d
            .source
            .as_deref()
            .filter(|s| crate::schema::Task::from_name(s).is_some())
        {
            d.task = Some(src.to_string());
        }
    }
    if let Some(a) = row.get("ability").and_then(Cell::as_str).filter(|_| !ours) {
        d.meta
            .entry("ability")
            .or_insert_with(|| Value::String(a.to_string()));
    }
    boxes_as_json(&mut d);
    d.problem = Some(question.filter(|q| !q.trim().is_empty()).unwrap_or(user));
    d.images = images_of(row.get("images"), &ctx.image_root, ex)?;
    Ok(d)
}

pub(crate) fn read_easyr1_parquet_with(ctx: &Ctx) -> Result<Rows, DataError> {
    let path = &ctx.spec.path;
    let prompt_key = ctx.opt_str("prompt_key").unwrap_or("problem").to_string();
    let answer_key = ctx.opt_str("answer_key").unwrap_or("answer").to_string();
    let image_key = ctx.opt_str("image_key").unwrap_or("images").to_string();
    let rows = read_parquet_rows(path)?;
    if let Some((_, first)) = rows.first() {
        for k in [&prompt_key, &answer_key] {
            if !first.iter().any(|(c, _)| c == k) {
                return Err(DataError::format(
                    path,
                    format!("an EasyR1 Parquet file needs a `{k}` column"),
                ));
            }
        }
    }
    // EasyR1's `data.image_dir`: relative image paths are joined to it.
    let root = match ctx.opt_str("image_dir") {
        Some(d) => ctx.root_or(PathBuf::from(d)),
        None => ctx.image_root.clone(),
    };
    let mut ex = Extractor::new(ctx);
    Ok(rows
        .into_iter()
        .map(|(line, cols)| {
            let mut d = Draft {
                source: Some(ctx.name.clone()),
                ..Draft::default()
            };
            let mut o = Map::new();
            let mut answer = None;
            for (k, v) in cols {
                if k == prompt_key {
                    d.problem = v.as_str().map(str::to_string);
                } else if k == answer_key {
                    answer = Some(v);
                } else if k == image_key {
                    d.images =
                        images_of(Some(&v), &root, &mut ex).map_err(|why| ctx.reject(line, why))?;
                } else if v != Cell::Null {
                    o.insert(k, v.to_json());
                }
            }
            if let Some(a) = &answer {
                apply_ground_truth(&mut d, a).map_err(|why| ctx.reject(line, why))?;
            }
            apply_fields(&mut d, &o).map_err(|why| ctx.reject(line, why))?;
            boxes_as_json(&mut d);
            Ok(ctx.row(line, d))
        })
        .collect())
}

/// Reads a verl Parquet file with the default options (source name = file stem).
pub fn read_verl_parquet(path: &Path) -> Result<Rows, DataError> {
    super::read_source(&super::spec_for(path, SourceFormat::Verl))
}

/// Reads an EasyR1 Parquet file with the default options (source name = file stem).
pub fn read_easyr1_parquet(path: &Path) -> Result<Rows, DataError> {
    super::read_source(&super::spec_for(path, SourceFormat::Easyr1))
}
