//! Writing the datasets trainers load (verl and EasyR1 Parquet, our JSONL), and reading any
//! Parquet file as rows of plain cells. The verl / EasyR1 source adapter that turns those rows
//! back into samples is `adapters/parquet.rs`.
//!
//! **verl** (`verl/utils/dataset/rl_dataset.py`, `examples/data_preprocess/geo3k.py`): one row per
//! prompt with
//!
//! | column | type | ours |
//! |---|---|---|
//! | `data_source` | string | the sample's source |
//! | `prompt` | `list<struct<role: string, content: string>>` | `[{"role": "user", "content": problem}]` (an optional system message first, an optional instruction appended as geo3k does); `<image>` placeholders stay in the content, where verl splits them into image entries |
//! | `images` | `list<struct<bytes: binary, path: string>>` when embedded (the Hugging Face `Image` layout verl's `process_image` opens from `bytes`); `list<struct<image: string>>` with a file path otherwise (what `qwen_vl_utils.fetch_image` opens) | the sample's images; the column is left out when no sample has one |
//! | `ability` | string | the task |
//! | `reward_model` | `struct<ground_truth: string, style: string>` | the answer as text (boxes as JSON text), `"rule"` |
//! | `extra_info` | struct | `index`, `split`, `question`, `answer` (as geo3k), and ours: `id`, `source`, `task`, `reward`, `choices` (`list<string>`), `frame`, `pred_frame`, `image_size` (`list<int64>`), `meta` (JSON text). `mixed_r1.verl` routes on these |
//!
//! **EasyR1** (`verl/utils/dataset.py`: `prompt_key` / `answer_key` / `image_key` default
//! `problem` / `answer` / `images`): `problem` (string with `<image>` placeholders), `answer`
//! (string), `images` (`list<string>` of paths, joined with EasyR1's `data.image_dir`; or
//! `list<struct<bytes, path>>` when embedded, which its `process_image` opens from `bytes`), plus
//! `id`, `source`, `task` and `meta` columns EasyR1 passes through. EasyR1 hands the reward
//! function only the `answer`, so by default the answer is a JSON object carrying what the
//! reward needs (`{"task": "grounding", "answer": [[...]], "frame": "abs", "image_size": [...]}`,
//! which `mixed_r1.easyr1_reward` reads); `plain_answers` writes the bare answer text instead.
//!

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{
    Array, ArrayRef, BinaryArray, Int64Array, ListArray, RecordBatch, StringArray, StructArray,
};
use arrow_buffer::{NullBuffer, OffsetBuffer};
use arrow_schema::{DataType, Field, FieldRef, Fields, Schema};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::DataError;
use crate::schema::{Answer, Sample};

/// How the Parquet writers lay out images and prompts.
#[derive(Debug, Clone)]
pub struct ParquetOptions {
    /// Embed image bytes in the file (`{bytes, path}` structs) instead of writing paths.
    pub embed_images: bool,
    /// Without embedding: write image paths relative to the output file's folder (portable; set
    /// EasyR1's `data.image_dir` to that folder) instead of absolute paths (what verl opens).
    pub relative_paths: bool,
    /// Folder relative sample image paths are resolved against (default: the current folder).
    pub image_root: Option<PathBuf>,
    /// `extra_info.split` (verl).
    pub split: String,
    /// Appended to the user message after a space, as verl's geo3k script appends its
    /// instruction (verl only; EasyR1 has its own `format_prompt`).
    pub instruction: Option<String>,
    /// A system message before the user message (verl only).
    pub system_prompt: Option<String>,
    /// EasyR1: the bare answer text in `answer` instead of the JSON object.
    pub plain_answers: bool,
    /// Rows per Parquet row group (and per batch held in memory while writing).
    pub row_group_size: usize,
}

impl Default for ParquetOptions {
    fn default() -> Self {
        ParquetOptions {
            embed_images: false,
            relative_paths: false,
            image_root: None,
            split: "train".into(),
            instruction: None,
            system_prompt: None,
            plain_answers: false,
            row_group_size: 1024,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Writing

fn utf8_field(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}

fn list_of(item: DataType) -> DataType {
    DataType::List(Arc::new(Field::new("item", item, true)))
}

fn image_struct_fields(embed: bool) -> Fields {
    if embed {
        Fields::from(vec![
            Field::new("bytes", DataType::Binary, true),
            utf8_field("path", true),
        ])
    } else {
        Fields::from(vec![utf8_field("image", true)])
    }
}

fn strings<I, S>(it: I) -> ArrayRef
where
    I: IntoIterator<Item = Option<S>>,
    S: AsRef<str>,
{
    Arc::new(StringArray::from_iter(it))
}

/// A list column from per-row lengths (None: a null list) and the flattened values.
fn list_col(item: DataType, lengths: &[Option<usize>], values: ArrayRef) -> ArrayRef {
    let nulls = lengths
        .iter()
        .any(Option::is_none)
        .then(|| NullBuffer::from_iter(lengths.iter().map(Option::is_some)));
    let offsets = OffsetBuffer::from_lengths(lengths.iter().map(|l| l.unwrap_or(0)));
    Arc::new(ListArray::new(
        Arc::new(Field::new("item", item, true)),
        offsets,
        values,
        nulls,
    ))
}

fn struct_col(fields: Vec<(Field, ArrayRef)>) -> ArrayRef {
    let (fs, arrays): (Vec<FieldRef>, Vec<ArrayRef>) =
        fields.into_iter().map(|(f, a)| (Arc::new(f), a)).unzip();
    Arc::new(StructArray::new(Fields::from(fs), arrays, None))
}

/// Where an image is read from, and the text written for it.
struct ImageWriter<'a> {
    opts: &'a ParquetOptions,
    out_dir: PathBuf,
}

impl ImageWriter<'_> {
    fn source_path(&self, p: &str) -> PathBuf {
        match &self.opts.image_root {
            Some(root) if Path::new(p).is_relative() => root.join(p),
            _ => PathBuf::from(p),
        }
    }

    fn bytes(&self, p: &str) -> Result<Vec<u8>, DataError> {
        let path = self.source_path(p);
        fs::read(&path).map_err(|e| DataError::read(&path, e))
    }

    /// The path text written for an image that is not embedded.
    fn path_text(&self, p: &str) -> String {
        if p.contains("://") {
            return p.to_string();
        }
        let abs = crate::paths::absolute(&self.source_path(p));
        if self.opts.relative_paths {
            crate::paths::relative_to(&abs, &self.out_dir)
                .to_string_lossy()
                .into_owned()
        } else {
            abs.to_string_lossy().into_owned()
        }
    }

    fn file_name(p: &str) -> String {
        Path::new(p)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// The images column for a chunk: `list<struct<bytes, path>>` (embedded),
/// `list<struct<image>>` (verl paths) or `list<string>` (EasyR1 paths).
fn images_col(
    chunk: &[Sample],
    w: &ImageWriter,
    easyr1: bool,
) -> Result<(Field, ArrayRef), DataError> {
    let lengths: Vec<Option<usize>> = chunk.iter().map(|s| Some(s.images.len())).collect();
    let all: Vec<&String> = chunk.iter().flat_map(|s| &s.images).collect();
    if w.opts.embed_images {
        let mut bytes = Vec::with_capacity(all.len());
        for p in &all {
            bytes.push(Some(w.bytes(p)?));
        }
        let fields = image_struct_fields(true);
        let values = Arc::new(StructArray::new(
            fields.clone(),
            vec![
                Arc::new(BinaryArray::from_iter(bytes)) as ArrayRef,
                strings(all.iter().map(|p| Some(ImageWriter::file_name(p)))),
            ],
            None,
        ));
        let dt = DataType::Struct(fields);
        return Ok((
            Field::new("images", list_of(dt.clone()), true),
            list_col(dt, &lengths, values),
        ));
    }
    let paths = strings(all.iter().map(|p| Some(w.path_text(p))));
    if easyr1 {
        Ok((
            Field::new("images", list_of(DataType::Utf8), true),
            list_col(DataType::Utf8, &lengths, paths),
        ))
    } else {
        let fields = image_struct_fields(false);
        let values = Arc::new(StructArray::new(fields.clone(), vec![paths], None));
        let dt = DataType::Struct(fields);
        Ok((
            Field::new("images", list_of(dt.clone()), true),
            list_col(dt, &lengths, values),
        ))
    }
}

fn json_text<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn frame_name(f: Option<mixed_r1_reward::iou::Frame>) -> Option<&'static str> {
    f.map(|f| f.name())
}

fn verl_batch(
    chunk: &[Sample],
    start: usize,
    w: &ImageWriter,
    with_images: bool,
) -> Result<RecordBatch, DataError> {
    let opts = w.opts;
    let mut cols: Vec<(Field, ArrayRef)> = Vec::new();
    cols.push((
        utf8_field("data_source", true),
        strings(chunk.iter().map(|s| Some(&s.source))),
    ));

    // prompt: list<struct<role, content>>
    let msg_fields = Fields::from(vec![utf8_field("role", true), utf8_field("content", true)]);
    let (mut roles, mut contents, mut lengths) = (Vec::new(), Vec::new(), Vec::new());
    for s in chunk {
        let mut n = 0;
        if let Some(sys) = &opts.system_prompt {
            roles.push("system".to_string());
            contents.push(sys.clone());
            n += 1;
        }
        roles.push("user".to_string());
        contents.push(match &opts.instruction {
            Some(i) => format!("{} {}", s.problem, i),
            None => s.problem.clone(),
        });
        lengths.push(Some(n + 1));
    }
    let msgs = Arc::new(StructArray::new(
        msg_fields.clone(),
        vec![
            strings(roles.into_iter().map(Some)),
            strings(contents.into_iter().map(Some)),
        ],
        None,
    ));
    let msg_dt = DataType::Struct(msg_fields);
    cols.push((
        Field::new("prompt", list_of(msg_dt.clone()), true),
        list_col(msg_dt, &lengths, msgs),
    ));

    if with_images {
        cols.push(images_col(chunk, w, false)?);
    }
    cols.push((
        utf8_field("ability", true),
        strings(chunk.iter().map(|s| Some(s.task.as_str()))),
    ));
    cols.push(reward_model_col(chunk));
    cols.push(extra_info_col(chunk, start, &opts.split));
    batch(cols)
}

fn reward_model_col(chunk: &[Sample]) -> (Field, ArrayRef) {
    let fields = vec![
        (
            utf8_field("ground_truth", true),
            strings(chunk.iter().map(|s| Some(s.answer.text()))),
        ),
        (
            utf8_field("style", true),
            strings(chunk.iter().map(|_| Some("rule"))),
        ),
    ];
    let arr = struct_col(fields);
    (
        Field::new("reward_model", arr.data_type().clone(), true),
        arr,
    )
}

fn extra_info_col(chunk: &[Sample], start: usize, split: &str) -> (Field, ArrayRef) {
    let n_choices: Vec<Option<usize>> = chunk.iter().map(|s| Some(s.choices.len())).collect();
    let choices = strings(chunk.iter().flat_map(|s| s.choices.iter().map(Some)));
    let sizes: Vec<Option<usize>> = chunk.iter().map(|s| s.image_size.map(|_| 2)).collect();
    let size_vals: ArrayRef = Arc::new(Int64Array::from_iter_values(
        chunk
            .iter()
            .filter_map(|s| s.image_size)
            .flat_map(|[w, h]| [w as i64, h as i64]),
    ));
    let fields = vec![
        (
            Field::new("index", DataType::Int64, true),
            Arc::new(Int64Array::from_iter_values(
                (0..chunk.len()).map(|i| (start + i) as i64),
            )) as ArrayRef,
        ),
        (
            utf8_field("split", true),
            strings(chunk.iter().map(|_| Some(split))),
        ),
        (
            utf8_field("id", true),
            strings(chunk.iter().map(|s| Some(&s.id))),
        ),
        (
            utf8_field("source", true),
            strings(chunk.iter().map(|s| Some(&s.source))),
        ),
        (
            utf8_field("task", true),
            strings(chunk.iter().map(|s| Some(s.task.as_str()))),
        ),
        (
            utf8_field("reward", true),
            strings(chunk.iter().map(|s| s.reward.as_deref())),
        ),
        (
            utf8_field("question", true),
            strings(chunk.iter().map(|s| Some(&s.problem))),
        ),
        (
            utf8_field("answer", true),
            strings(chunk.iter().map(|s| Some(s.answer.text()))),
        ),
        (
            Field::new("choices", list_of(DataType::Utf8), true),
            list_col(DataType::Utf8, &n_choices, choices),
        ),
        (
            utf8_field("frame", true),
            strings(chunk.iter().map(|s| frame_name(s.frame))),
        ),
        (
            utf8_field("pred_frame", true),
            strings(chunk.iter().map(|s| frame_name(s.pred_frame))),
        ),
        (
            Field::new("image_size", list_of(DataType::Int64), true),
            list_col(DataType::Int64, &sizes, size_vals),
        ),
        (
            utf8_field("meta", true),
            strings(chunk.iter().map(|s| Some(json_text(&s.meta)))),
        ),
    ];
    let arr = struct_col(fields);
    (Field::new("extra_info", arr.data_type().clone(), true), arr)
}

fn batch(cols: Vec<(Field, ArrayRef)>) -> Result<RecordBatch, DataError> {
    let (fields, arrays): (Vec<Field>, Vec<ArrayRef>) = cols.into_iter().unzip();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).map_err(|e| DataError::Parquet {
        path: PathBuf::new(),
        msg: e.to_string(),
    })
}

/// The JSON object EasyR1's `answer` column carries: what the reward needs to score.
pub fn answer_object(s: &Sample) -> Value {
    let mut o = Map::new();
    o.insert("task".into(), Value::String(s.task.as_str().into()));
    o.insert(
        "answer".into(),
        match &s.answer {
            Answer::Text(t) => Value::String(t.clone()),
            Answer::Json(v) => v.clone(),
        },
    );
    if !s.choices.is_empty() {
        o.insert("choices".into(), Value::from(s.choices.clone()));
    }
    if let Some(f) = s.frame {
        o.insert("frame".into(), Value::String(f.name().into()));
    }
    if let Some(f) = s.pred_frame {
        o.insert("pred_frame".into(), Value::String(f.name().into()));
    }
    if let Some([w, h]) = s.image_size {
        o.insert("image_size".into(), Value::from(vec![w, h]));
    }
    if let Some(r) = &s.reward {
        o.insert("reward".into(), Value::String(r.clone()));
    }
    Value::Object(o)
}

fn easyr1_batch(
    chunk: &[Sample],
    w: &ImageWriter,
    with_images: bool,
) -> Result<RecordBatch, DataError> {
    let mut cols: Vec<(Field, ArrayRef)> = vec![
        (
            utf8_field("problem", true),
            strings(chunk.iter().map(|s| Some(&s.problem))),
        ),
        (
            utf8_field("answer", true),
            strings(chunk.iter().map(|s| {
                Some(if w.opts.plain_answers {
                    s.answer.text().into_owned()
                } else {
                    answer_object(s).to_string()
                })
            })),
        ),
    ];
    if with_images {
        cols.push(images_col(chunk, w, true)?);
    }
    cols.push((
        utf8_field("id", true),
        strings(chunk.iter().map(|s| Some(&s.id))),
    ));
    cols.push((
        utf8_field("source", true),
        strings(chunk.iter().map(|s| Some(&s.source))),
    ));
    cols.push((
        utf8_field("task", true),
        strings(chunk.iter().map(|s| Some(s.task.as_str()))),
    ));
    cols.push((
        utf8_field("meta", true),
        strings(chunk.iter().map(|s| Some(json_text(&s.meta)))),
    ));
    batch(cols)
}

fn write_parquet(
    samples: &[Sample],
    path: &Path,
    opts: &ParquetOptions,
    make: impl Fn(&[Sample], usize, &ImageWriter, bool) -> Result<RecordBatch, DataError>,
) -> Result<(), DataError> {
    let with_path = |e: DataError| match e {
        DataError::Parquet { path: p, msg } if p.as_os_str().is_empty() => DataError::Parquet {
            path: path.to_path_buf(),
            msg,
        },
        other => other,
    };
    let pq = |e: parquet::errors::ParquetError| DataError::Parquet {
        path: path.to_path_buf(),
        msg: e.to_string(),
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| DataError::write(dir, e))?;
    }
    let w = ImageWriter {
        opts,
        out_dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
    };
    // One schema for the whole file: the images column exists when any sample has an image.
    let with_images = samples.iter().any(|s| !s.images.is_empty());
    let size = opts.row_group_size.max(1);
    let first = make(&samples[..samples.len().min(size)], 0, &w, with_images).map_err(with_path)?;
    let file = File::create(path).map_err(|e| DataError::write(path, e))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut writer = ArrowWriter::try_new(file, first.schema(), Some(props)).map_err(pq)?;
    writer.write(&first).map_err(pq)?;
    let mut start = first.num_rows();
    while start < samples.len() {
        let chunk = &samples[start..samples.len().min(start + size)];
        let b = make(chunk, start, &w, with_images).map_err(with_path)?;
        writer.write(&b).map_err(pq)?;
        start += chunk.len();
    }
    writer.close().map_err(pq)?;
    Ok(())
}

/// Writes samples as a verl RL Parquet file (layout in the module docs).
pub fn write_verl_parquet(
    samples: &[Sample],
    path: &Path,
    opts: &ParquetOptions,
) -> Result<(), DataError> {
    write_parquet(samples, path, opts, verl_batch)
}

/// Writes samples as an EasyR1 Parquet file (layout in the module docs).
pub fn write_easyr1_parquet(
    samples: &[Sample],
    path: &Path,
    opts: &ParquetOptions,
) -> Result<(), DataError> {
    write_parquet(samples, path, opts, |c, _, w, img| easyr1_batch(c, w, img))
}

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

// ---------------------------------------------------------------------------------------------
// Reading

/// A Parquet cell as plain data.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Cell>),
    Struct(Vec<(String, Cell)>),
}

impl Cell {
    pub fn get(&self, key: &str) -> Option<&Cell> {
        match self {
            Cell::Struct(fields) => fields
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v)
                .filter(|v| **v != Cell::Null),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Cell::Str(s) => Some(s),
            _ => None,
        }
    }

    /// As JSON; bytes become their length (`{"bytes": n}`), they are never copied into text.
    pub fn to_json(&self) -> Value {
        match self {
            Cell::Null => Value::Null,
            Cell::Bool(b) => Value::Bool(*b),
            Cell::Int(i) => Value::from(*i),
            Cell::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Cell::Str(s) => Value::String(s.clone()),
            Cell::Bytes(b) => serde_json::json!({ "bytes": b.len() }),
            Cell::List(l) => Value::Array(l.iter().map(Cell::to_json).collect()),
            Cell::Struct(f) => {
                Value::Object(f.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
        }
    }
}

macro_rules! prim {
    ($a:expr, $i:expr, $t:ty, $variant:ident, $conv:ty) => {
        Cell::$variant($a.as_primitive::<$t>().value($i) as $conv)
    };
}

/// Cell `i` of an Arrow array.
pub fn cell(a: &dyn Array, i: usize) -> Cell {
    if a.is_null(i) {
        return Cell::Null;
    }
    match a.data_type() {
        DataType::Boolean => Cell::Bool(a.as_boolean().value(i)),
        DataType::Int8 => prim!(a, i, Int8Type, Int, i64),
        DataType::Int16 => prim!(a, i, Int16Type, Int, i64),
        DataType::Int32 => prim!(a, i, Int32Type, Int, i64),
        DataType::Int64 => prim!(a, i, Int64Type, Int, i64),
        DataType::UInt8 => prim!(a, i, UInt8Type, Int, i64),
        DataType::UInt16 => prim!(a, i, UInt16Type, Int, i64),
        DataType::UInt32 => prim!(a, i, UInt32Type, Int, i64),
        DataType::UInt64 => prim!(a, i, UInt64Type, Int, i64),
        DataType::Float32 => prim!(a, i, Float32Type, Float, f64),
        DataType::Float64 => prim!(a, i, Float64Type, Float, f64),
        DataType::Utf8 => Cell::Str(a.as_string::<i32>().value(i).to_string()),
        DataType::LargeUtf8 => Cell::Str(a.as_string::<i64>().value(i).to_string()),
        DataType::Utf8View => Cell::Str(a.as_string_view().value(i).to_string()),
        DataType::Binary => Cell::Bytes(a.as_binary::<i32>().value(i).to_vec()),
        DataType::LargeBinary => Cell::Bytes(a.as_binary::<i64>().value(i).to_vec()),
        DataType::BinaryView => Cell::Bytes(a.as_binary_view().value(i).to_vec()),
        DataType::List(_) => list_cells(a.as_list::<i32>().value(i).as_ref()),
        DataType::LargeList(_) => list_cells(a.as_list::<i64>().value(i).as_ref()),
        DataType::FixedSizeList(_, _) => list_cells(a.as_fixed_size_list().value(i).as_ref()),
        DataType::Struct(fields) => {
            let s = a.as_struct();
            Cell::Struct(
                fields
                    .iter()
                    .zip(s.columns())
                    .map(|(f, c)| (f.name().clone(), cell(c.as_ref(), i)))
                    .collect(),
            )
        }
        _ => Cell::Null,
    }
}

fn list_cells(a: &dyn Array) -> Cell {
    Cell::List((0..a.len()).map(|j| cell(a, j)).collect())
}

/// A Parquet row: its 1-based number and its cells by column name.
pub type ParquetRow = (usize, Vec<(String, Cell)>);

/// Every row of a Parquet file as named cells, with its 1-based row number.
pub fn read_parquet_rows(path: &Path) -> Result<Vec<ParquetRow>, DataError> {
    let pq = |e: parquet::errors::ParquetError| DataError::Parquet {
        path: path.to_path_buf(),
        msg: e.to_string(),
    };
    let file = File::open(path).map_err(|e| DataError::read(path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(pq)?
        .build()
        .map_err(pq)?;
    let mut out = Vec::new();
    for b in reader {
        let b = b.map_err(|e| DataError::Parquet {
            path: path.to_path_buf(),
            msg: e.to_string(),
        })?;
        let names: Vec<String> = b
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        for i in 0..b.num_rows() {
            let row = names
                .iter()
                .zip(b.columns())
                .map(|(n, c)| (n.clone(), cell(c.as_ref(), i)))
                .collect();
            out.push((out.len() + 1, row));
        }
    }
    Ok(out)
}

/// The column names of a Parquet file.
pub fn parquet_columns(path: &Path) -> Result<Vec<String>, DataError> {
    let file = File::open(path).map_err(|e| DataError::read(path, e))?;
    let b = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| DataError::Parquet {
        path: path.to_path_buf(),
        msg: e.to_string(),
    })?;
    Ok(b.schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect())
}
