//! Source adapters: every input format of the data engine read into [`Draft`] rows.
//!
//! One entry point, [`read_source`], reads a whole [`SourceSpec`]. Each row comes back as
//! `Ok(Row<Draft>)` or, when that one row is malformed, as `Err(Reject)` at [`Stage::Ingest`]
//! naming the file, the line (or 1-based record number for JSON arrays, JSON objects and Parquet
//! rows) and the reason; the other rows are still read. A file that cannot be read or parsed at
//! all is a [`DataError`] naming it.
//!
//! Image paths are resolved here, once: a relative path is joined to the source's `image_root`
//! (default: the folder of the input file; each format may pick a more specific default, listed
//! below), so a draft's `images` can be opened as they are. Absolute paths and URLs are kept.
//!
//! | format | input | rows |
//! |---|---|---|
//! | `jsonl` | our JSON Lines (DESIGN.md schema) | one per line |
//! | `llava` | LLaVA conversation JSON: `[{"id", "image", "conversations": [{"from": "human", ...}, {"from": "gpt", ...}]}]` | the first human/gpt pair of each item (`all_turns = true`: every pair) |
//! | `vlm_r1` | VLM-R1 JSONL: `{"id", "image": str or list, "conversations", "accu_reward_method"}` | one per line; the method picks the task (see [`vlm_r1_task`]) |
//! | `verl` / `easyr1` | Parquet written by verl's preprocess scripts, EasyR1 datasets, or our writers | one per Parquet row ([`crate::parquet_io`]) |
//! | `refcoco` | refs JSON (`[{"ref_id", "ann_id", "image_id", "split", "sentences": [{"sent"}]}]`) + COCO `instances.json` beside it (option `instances`) | one grounding sample per sentence (`sentences = "first"`: per ref) |
//! | `chartqa` | `[{"imgname", "query", "label"}]`, images in `png/` beside the file | one chart sample per item |
//! | `coco_captions` | `{"images": [...], "annotations": [{"image_id", "caption"}]}` | one open-ended sample per image: first caption is the answer, all in `meta.captions` |
//! | `scienceqa` | `problems.json`: `{"pid": {"question", "choices", "answer": index, "hint", "image", "split"}}`, images at `images/<split>/<pid>/<image>` | one mcq sample per problem |
//! | `easy_vqa` | the easy-vqa folder (`<split>/questions.json` + `<split>/images/<id>.png`) | yes/no, mcq and derived grounding samples (see `read_easy_vqa` in `adapters/easyvqa.rs`) |
//!
//! Options (`[source.options]` in a recipe) common to several formats: `split` (keep only rows of
//! that split), `prompt` (a template for formats without a question text).

mod chartqa;
mod coco_captions;
mod conversation;
mod easyvqa;
mod llava;
mod ours;
mod parquet;
mod refcoco;
mod scienceqa;
mod vlm_r1;

pub use parquet::{read_easyr1_parquet, read_verl_parquet};

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mixed_r1_reward::iou::Frame;
use serde_json::Value;

use crate::schema::{Draft, Origin, Reject, Row, SourceFormat, SourceSpec, Stage};

pub use easyvqa::{shape_box, EASY_VQA_COLOURS, EASY_VQA_SHAPES};
pub use vlm_r1::vlm_r1_task;

/// Rows of one source: a draft, or the reason that row could not be read.
pub type Rows = Vec<Result<Row<Draft>, Reject>>;

pub use crate::error::DataError;

/// Reads every row of a source. See the module docs for the formats.
pub fn read_source(spec: &SourceSpec) -> Result<Rows, DataError> {
    let ctx = Ctx::new(spec)?;
    match spec.format {
        SourceFormat::Jsonl => ours::read_jsonl(&ctx),
        SourceFormat::Llava => llava::read_llava(&ctx),
        SourceFormat::VlmR1 => vlm_r1::read_vlm_r1(&ctx),
        SourceFormat::Verl => parquet::read_verl_parquet_with(&ctx),
        SourceFormat::Easyr1 => parquet::read_easyr1_parquet_with(&ctx),
        SourceFormat::Refcoco => refcoco::read_refcoco(&ctx),
        SourceFormat::Chartqa => chartqa::read_chartqa(&ctx),
        SourceFormat::CocoCaptions => coco_captions::read_coco_captions(&ctx),
        SourceFormat::Scienceqa => scienceqa::read_scienceqa(&ctx),
        SourceFormat::EasyVqa => easyvqa::read_easy_vqa(&ctx),
    }
}

/// A spec for `path` read as `format` with the defaults (source name = file stem).
pub fn spec_for(path: impl Into<PathBuf>, format: SourceFormat) -> SourceSpec {
    SourceSpec {
        name: None,
        format,
        path: path.into(),
        image_root: None,
        options: toml::Table::new(),
    }
}

/// Guesses a file's format from its extension and a look at its content: a folder holding
/// `train/questions.json` or `test/questions.json` is easy-vqa; `.parquet` with `prompt` and
/// `reward_model` columns is verl, with a `problem` column EasyR1; `.jsonl` lines with
/// `conversations` are VLM-R1, others ours; `.json` is told apart by its keys (LLaVA
/// `conversations`, ChartQA `imgname`/`query`/`label`, RefCOCO refs `sentences` + `ann_id`, COCO
/// captions `annotations` with `caption`, ScienceQA objects with `choices`, easy-vqa's
/// `[question, answer, image_id]` triples). `None` when nothing fits.
pub fn detect_format(path: &Path) -> Option<SourceFormat> {
    if path.is_dir() {
        return ["train", "test"]
            .iter()
            .any(|s| path.join(s).join("questions.json").is_file())
            .then_some(SourceFormat::EasyVqa);
    }
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "parquet" => parquet::detect_parquet(path),
        "jsonl" | "ndjson" => {
            let text = fs::read_to_string(path).ok()?;
            let first = text.lines().find(|l| !l.trim().is_empty())?;
            let v: Value = serde_json::from_str(first).ok()?;
            let obj = v.as_object()?;
            if obj.contains_key("conversations") {
                Some(SourceFormat::VlmR1)
            } else if obj.contains_key("problem") || obj.contains_key("answer") {
                Some(SourceFormat::Jsonl)
            } else {
                None
            }
        }
        "json" => {
            let text = fs::read_to_string(path).ok()?;
            let v: Value = serde_json::from_str(&text).ok()?;
            detect_json(&v)
        }
        _ => None,
    }
}

fn detect_json(v: &Value) -> Option<SourceFormat> {
    match v {
        Value::Array(items) => {
            let first = items.first()?;
            if let Some(triple) = first.as_array() {
                return (triple.len() == 3 && triple[0].is_string())
                    .then_some(SourceFormat::EasyVqa);
            }
            let o = first.as_object()?;
            if o.contains_key("conversations") {
                Some(SourceFormat::Llava)
            } else if o.contains_key("imgname") && o.contains_key("query") {
                Some(SourceFormat::Chartqa)
            } else if o.contains_key("sentences") && o.contains_key("ann_id") {
                Some(SourceFormat::Refcoco)
            } else {
                None
            }
        }
        Value::Object(o) => {
            if o.contains_key("refs") {
                return Some(SourceFormat::Refcoco);
            }
            if let Some(anns) = o.get("annotations").and_then(Value::as_array) {
                if anns.first().is_some_and(|a| a.get("caption").is_some()) {
                    return Some(SourceFormat::CocoCaptions);
                }
                return None;
            }
            let first = o.values().next()?.as_object()?;
            (first.contains_key("question") && first.contains_key("choices"))
                .then_some(SourceFormat::Scienceqa)
        }
        _ => None,
    }
}

/// What every adapter needs: the spec, the source name, the file as rows name it, and where
/// relative image paths point.
pub(crate) struct Ctx<'a> {
    pub spec: &'a SourceSpec,
    pub name: String,
    pub file: Arc<PathBuf>,
    pub image_root: PathBuf,
}

impl<'a> Ctx<'a> {
    fn new(spec: &'a SourceSpec) -> Result<Ctx<'a>, DataError> {
        let path = &spec.path;
        if !path.exists() {
            return Err(DataError::read(
                path,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or folder"),
            ));
        }
        let name = spec.name.clone().unwrap_or_else(|| default_name(path));
        let image_root = match &spec.image_root {
            Some(r) => r.clone(),
            None if path.is_dir() => path.clone(),
            None => path.parent().map(Path::to_path_buf).unwrap_or_default(),
        };
        Ok(Ctx {
            spec,
            name,
            file: Arc::new(path.clone()),
            image_root,
        })
    }

    /// The folder images are resolved against: the spec's `image_root`, else `fallback`.
    pub fn root_or(&self, fallback: PathBuf) -> PathBuf {
        match &self.spec.image_root {
            Some(r) => r.clone(),
            None => fallback,
        }
    }

    pub fn origin(&self, line: usize) -> Origin {
        Origin {
            file: self.file.clone(),
            line,
        }
    }

    pub fn reject(&self, line: usize, reason: impl Into<String>) -> Reject {
        Reject::new(&self.origin(line), Stage::Ingest, reason)
    }

    pub fn row(&self, line: usize, item: Draft) -> Row<Draft> {
        Row {
            item,
            origin: self.origin(line),
        }
    }

    pub fn opt_str(&self, key: &str) -> Option<&str> {
        self.spec.options.get(key).and_then(toml::Value::as_str)
    }

    pub fn opt_bool(&self, key: &str, default: bool) -> bool {
        self.spec
            .options
            .get(key)
            .and_then(toml::Value::as_bool)
            .unwrap_or(default)
    }

    pub fn opt_int(&self, key: &str, default: i64) -> i64 {
        self.spec
            .options
            .get(key)
            .and_then(toml::Value::as_integer)
            .unwrap_or(default)
    }

    pub fn read_text(&self) -> Result<String, DataError> {
        read_text(&self.spec.path)
    }

    pub fn read_json(&self) -> Result<Value, DataError> {
        parse_json_file(&self.spec.path, &self.read_text()?)
    }
}

pub(crate) fn read_text(path: &Path) -> Result<String, DataError> {
    fs::read_to_string(path).map_err(|e| DataError::read(path, e))
}

pub(crate) fn parse_json_file(path: &Path, text: &str) -> Result<Value, DataError> {
    serde_json::from_str(text).map_err(|e| DataError::format(path, format!("invalid JSON: {e}")))
}

/// The source name for a path: its file stem (`chartqa_train.json` -> `chartqa_train`), or the
/// folder's name.
pub fn default_name(path: &Path) -> String {
    let stem = if path.is_dir() {
        path.file_name()
    } else {
        path.file_stem()
    };
    stem.map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "source".to_string())
}

/// `p` joined to `root` unless it is absolute or a URL.
pub fn resolve_image(root: &Path, p: &str) -> String {
    let p = p.trim();
    if p.is_empty()
        || p.contains("://")
        || p.starts_with("data:")
        || Path::new(p).is_absolute()
        || root.as_os_str().is_empty()
    {
        return p.to_string();
    }
    root.join(p).to_string_lossy().into_owned()
}

/// A JSON value as an id string: strings as they are, numbers as written.
pub fn id_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Short text of a JSON value for reject reasons.
pub fn clip(s: &str) -> String {
    const MAX: usize = 80;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(MAX).collect();
        out.push('…');
        out
    }
}

/// serde_json's message, worded for a reject reason.
pub(crate) fn json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof => format!("invalid JSON: {e}"),
        Category::Data => format!("bad row: {e}"),
        Category::Io => format!("cannot read row: {e}"),
    }
}

/// The non-blank lines of JSON Lines text with their 1-based numbers: blank lines are not rows,
/// but they keep their numbers so every reject points at its line.
pub(crate) fn numbered_lines(text: &str) -> Vec<(usize, &str)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i + 1, l))
        .collect()
}

/// Whole numbers stay integers in JSON (`10`, not `10.0`).
pub(crate) fn json_number(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        Value::from(x as i64)
    } else {
        serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
    }
}

/// A box frame by the name the schema writes it under (`frame`, `pred_frame`).
pub(crate) fn parse_frame(name: &str) -> Option<Frame> {
    serde_json::from_value(Value::String(name.to_string())).ok()
}
