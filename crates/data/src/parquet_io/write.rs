//! The verl and EasyR1 Parquet writers: Arrow columns built a row group at a time, then written
//! with one schema for the whole file (layouts in [`crate::parquet_io`]).

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, BinaryArray, Int64Array, ListArray, RecordBatch, StringArray, StructArray,
};
use arrow_buffer::{NullBuffer, OffsetBuffer};
use arrow_schema::{DataType, Field, FieldRef, Fields, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde::Serialize;
use serde_json::{Map, Value};

use super::ParquetOptions;
use crate::error::DataError;
use crate::schema::{Answer, Sample};

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

/// Writes samples as a verl RL Parquet file (layout in [`crate::parquet_io`]).
pub fn write_verl_parquet(
    samples: &[Sample],
    path: &Path,
    opts: &ParquetOptions,
) -> Result<(), DataError> {
    write_parquet(samples, path, opts, verl_batch)
}

/// Writes samples as an EasyR1 Parquet file (layout in [`crate::parquet_io`]).
pub fn write_easyr1_parquet(
    samples: &[Sample],
    path: &Path,
    opts: &ParquetOptions,
) -> Result<(), DataError> {
    write_parquet(samples, path, opts, |c, _, w, img| easyr1_batch(c, w, img))
}
