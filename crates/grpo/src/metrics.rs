//! Per-step metrics: a JSON Lines log (one object per optimizer step) and a TensorBoard event
//! file, written by hand so the trainer needs neither protobuf nor a TensorFlow dependency.
//!
//! TensorBoard format (TFRecord framing around `tensorflow.Event` protobufs):
//! ```text
//! record  = u64 len (LE) | u32 masked_crc32c(len bytes) | payload | u32 masked_crc32c(payload)
//! Event   = { wall_time: 1 double, step: 2 int64, file_version: 3 string (first record only),
//!             summary: 5 Summary }
//! Summary = { value: 1 repeated Value }    Value = { tag: 1 string, simple_value: 2 float }
//! masked_crc(c) = ((c >> 15) | (c << 17)) + 0xa282ead8
//! ```
//! [`read_events`] parses the same format back (checking both CRCs), which is what the tests use
//! and what lets `mixed-r1` read its own runs without TensorBoard.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use crate::{GrpoError, Result};

/// Seconds since the Unix epoch, as TensorBoard's `wall_time`.
pub fn wall_time() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

// ---------------------------------------------------------------- JSONL

/// Appends one JSON object per step to a `.jsonl` file, flushed after every line so a crash
/// loses at most the step in flight.
pub struct JsonlWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

impl JsonlWriter {
    /// Creates (truncates) the file.
    pub fn create(path: &Path) -> Result<Self> {
        let f = File::create(path).map_err(|e| GrpoError::io(path, e))?;
        Ok(JsonlWriter {
            path: path.to_path_buf(),
            out: BufWriter::new(f),
        })
    }

    /// Opens for a resumed run: keeps the records with `"step" <= resume_step` (those the
    /// checkpoint covers) and drops later ones, which a crashed run wrote after its last
    /// checkpoint and the resumed run will write again. `None` = keep everything.
    pub fn resume(path: &Path, resume_step: Option<u64>) -> Result<Self> {
        let kept: Vec<String> = if path.exists() {
            read_jsonl(path)?
                .into_iter()
                .filter(
                    |v| match (resume_step, v.get("step").and_then(Value::as_u64)) {
                        (Some(r), Some(s)) => s <= r,
                        _ => true,
                    },
                )
                .map(|v| v.to_string())
                .collect()
        } else {
            Vec::new()
        };
        let mut w = Self::create(path)?;
        for line in kept {
            writeln!(w.out, "{line}").map_err(|e| GrpoError::io(path, e))?;
        }
        w.out.flush().map_err(|e| GrpoError::io(path, e))?;
        Ok(w)
    }

    /// Writes any JSON value as one line.
    pub fn write_value(&mut self, v: &Value) -> Result<()> {
        writeln!(self.out, "{v}").map_err(|e| GrpoError::io(&self.path, e))?;
        self.out.flush().map_err(|e| GrpoError::io(&self.path, e))
    }

    /// Writes `{"step": step, "wall_time": ..., <metrics>}`. Non-finite values become `null`
    /// (JSON has no NaN), which readers treat as missing.
    pub fn log(&mut self, step: u64, metrics: &BTreeMap<String, f64>) -> Result<()> {
        self.write_value(&step_record(step, wall_time(), metrics))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The JSON object [`JsonlWriter::log`] writes.
pub fn step_record(step: u64, wall_time: f64, metrics: &BTreeMap<String, f64>) -> Value {
    let mut m = Map::new();
    m.insert("step".into(), Value::from(step));
    m.insert("wall_time".into(), Value::from(wall_time));
    for (k, v) in metrics {
        m.insert(k.clone(), Value::from(*v));
    }
    Value::Object(m)
}

/// Reads a JSON Lines file (blank lines skipped; a bad line is an error naming its number).
pub fn read_jsonl(path: &Path) -> Result<Vec<Value>> {
    let f = File::open(path).map_err(|e| GrpoError::io(path, e))?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(f).lines().enumerate() {
        let line = line.map_err(|e| GrpoError::io(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(&line)
            .map_err(|e| GrpoError::format(path, format!("line {}: {e}", i + 1)))?;
        out.push(v);
    }
    Ok(out)
}

/// `(step, value)` pairs of one metric across records (records without it are skipped).
pub fn series(records: &[Value], key: &str) -> Vec<(f64, f64)> {
    records
        .iter()
        .filter_map(|r| Some((r.get("step")?.as_f64()?, r.get(key)?.as_f64()?)))
        .collect()
}

// ---------------------------------------------------------------- CRC32C

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), table-driven.
pub fn crc32c(data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, e) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    (c >> 1) ^ 0x82F6_3B78
                } else {
                    c >> 1
                };
            }
            *e = c;
        }
        t
    });
    let mut crc = !0u32;
    for &b in data {
        crc = table[((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

/// TFRecord's masked CRC (so a CRC stored inside CRC'd data does not confuse the check).
pub fn masked_crc32c(data: &[u8]) -> u32 {
    let c = crc32c(data);
    // ((c >> 15) | (c << 17)) + 0xa282ead8, as TFRecord specifies it.
    c.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// Frames one payload as a TFRecord.
pub fn tfrecord(payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(payload.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&masked_crc32c(payload).to_le_bytes());
    out
}

// ---------------------------------------------------------------- protobuf

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_key(out: &mut Vec<u8>, field: u32, wire: u8) {
    put_varint(out, ((field as u64) << 3) | wire as u64);
}

fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_key(out, field, 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// One TensorBoard event (the subset we write: scalars).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub wall_time: f64,
    pub step: i64,
    pub file_version: Option<String>,
    /// `(tag, simple_value)` pairs of the summary.
    pub scalars: Vec<(String, f32)>,
}

impl Event {
    /// Protobuf encoding of `tensorflow.Event`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_key(&mut out, 1, 1);
        out.extend_from_slice(&self.wall_time.to_le_bytes());
        if self.step != 0 {
            put_key(&mut out, 2, 0);
            put_varint(&mut out, self.step as u64);
        }
        if let Some(v) = &self.file_version {
            put_bytes(&mut out, 3, v.as_bytes());
        }
        if !self.scalars.is_empty() {
            let mut summary = Vec::new();
            for (tag, value) in &self.scalars {
                let mut val = Vec::new();
                put_bytes(&mut val, 1, tag.as_bytes());
                put_key(&mut val, 2, 5);
                val.extend_from_slice(&value.to_le_bytes());
                put_bytes(&mut summary, 1, &val);
            }
            put_bytes(&mut out, 5, &summary);
        }
        out
    }

    /// Parses a `tensorflow.Event` (unknown fields skipped).
    pub fn decode(buf: &[u8]) -> std::result::Result<Event, String> {
        let mut ev = Event {
            wall_time: 0.0,
            step: 0,
            file_version: None,
            scalars: Vec::new(),
        };
        for (field, val) in ProtoFields::new(buf) {
            match (field?, val) {
                (1, Wire::Fixed64(b)) => ev.wall_time = f64::from_le_bytes(b),
                (2, Wire::Varint(v)) => ev.step = v as i64,
                (3, Wire::Bytes(b)) => {
                    ev.file_version =
                        Some(String::from_utf8(b.to_vec()).map_err(|e| e.to_string())?)
                }
                (5, Wire::Bytes(summary)) => {
                    for (f, v) in ProtoFields::new(summary) {
                        if let (1, Wire::Bytes(value)) = (f?, v) {
                            let mut tag = String::new();
                            let mut simple = None;
                            for (f2, v2) in ProtoFields::new(value) {
                                match (f2?, v2) {
                                    (1, Wire::Bytes(t)) => {
                                        tag = String::from_utf8(t.to_vec())
                                            .map_err(|e| e.to_string())?
                                    }
                                    (2, Wire::Fixed32(b)) => simple = Some(f32::from_le_bytes(b)),
                                    _ => {}
                                }
                            }
                            if let Some(s) = simple {
                                ev.scalars.push((tag, s));
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(ev)
    }
}

enum Wire<'a> {
    Varint(u64),
    Fixed64([u8; 8]),
    Bytes(&'a [u8]),
    Fixed32([u8; 4]),
    Invalid,
}

/// Iterator over `(field number, value)` of a protobuf message; a malformed message yields one
/// `Err` and stops.
struct ProtoFields<'a> {
    buf: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> ProtoFields<'a> {
    fn new(buf: &'a [u8]) -> Self {
        ProtoFields {
            buf,
            pos: 0,
            failed: false,
        }
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos)?;
            self.pos += 1;
            v |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    fn field(&mut self) -> Option<(u32, Wire<'a>)> {
        let key = self.varint()?;
        let field = (key >> 3) as u32;
        let wire = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => Wire::Fixed64(self.take(8)?.try_into().ok()?),
            2 => {
                let n = self.varint()? as usize;
                Wire::Bytes(self.take(n)?)
            }
            5 => Wire::Fixed32(self.take(4)?.try_into().ok()?),
            _ => return None,
        };
        Some((field, wire))
    }
}

impl<'a> Iterator for ProtoFields<'a> {
    type Item = (std::result::Result<u32, String>, Wire<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.buf.len() {
            return None;
        }
        match self.field() {
            Some((f, w)) => Some((Ok(f), w)),
            None => {
                self.failed = true;
                Some((
                    Err(format!("malformed protobuf at byte {}", self.pos)),
                    Wire::Invalid,
                ))
            }
        }
    }
}

// ---------------------------------------------------------------- TensorBoard

/// This machine's host name for the event-file name (no libc: the kernel exposes it as a file).
fn host_name() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let clean: String = raw
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    if clean.is_empty() {
        "localhost".into()
    } else {
        clean
    }
}

/// Writes scalars to `<dir>/events.out.tfevents.<secs>.<host>`, flushed after each event so
/// TensorBoard can follow a live run.
pub struct TbWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

impl TbWriter {
    /// Creates the directory if needed and a new event file with its `file_version` record.
    pub fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| GrpoError::io(dir, e))?;
        let now = wall_time();
        let mut name = format!("events.out.tfevents.{}.{}", now as u64, host_name());
        // Two writers in one second (tests, quick restarts) must not share a file.
        let mut n = 0;
        while dir.join(&name).exists() {
            n += 1;
            name = format!("events.out.tfevents.{}.{}.{n}", now as u64, host_name());
        }
        let path = dir.join(name);
        let f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| GrpoError::io(&path, e))?;
        let mut w = TbWriter {
            path,
            out: BufWriter::new(f),
        };
        w.write_event(&Event {
            wall_time: now,
            step: 0,
            file_version: Some("brain.Event:2".into()),
            scalars: Vec::new(),
        })?;
        Ok(w)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn write_event(&mut self, ev: &Event) -> Result<()> {
        self.out
            .write_all(&tfrecord(&ev.encode()))
            .and_then(|_| self.out.flush())
            .map_err(|e| GrpoError::io(&self.path, e))
    }

    /// One event holding every finite metric of a step (TensorBoard cannot plot NaN usefully;
    /// those are left out rather than drawn as gaps of unknown cause).
    pub fn log(&mut self, step: u64, metrics: &BTreeMap<String, f64>) -> Result<()> {
        let scalars = metrics
            .iter()
            .filter(|(_, v)| v.is_finite())
            .map(|(k, v)| (k.clone(), *v as f32))
            .collect();
        self.write_event(&Event {
            wall_time: wall_time(),
            step: step as i64,
            file_version: None,
            scalars,
        })
    }

    pub fn add_scalar(&mut self, tag: &str, value: f32, step: u64) -> Result<()> {
        self.write_event(&Event {
            wall_time: wall_time(),
            step: step as i64,
            file_version: None,
            scalars: vec![(tag.to_string(), value)],
        })
    }
}

/// Reads every event of a TFRecord event file, checking both CRCs of every record.
pub fn read_events(path: &Path) -> Result<Vec<Event>> {
    let data = std::fs::read(path).map_err(|e| GrpoError::io(path, e))?;
    let bad = |pos: usize, m: &str| GrpoError::format(path, format!("record at byte {pos}: {m}"));
    let mut pos = 0;
    let mut out = Vec::new();
    while pos < data.len() {
        let header = data
            .get(pos..pos + 12)
            .ok_or_else(|| bad(pos, "truncated header"))?;
        let len_bytes = &header[..8];
        let len = u64::from_le_bytes(len_bytes.try_into().unwrap()) as usize;
        let len_crc = u32::from_le_bytes(header[8..12].try_into().unwrap());
        if masked_crc32c(len_bytes) != len_crc {
            return Err(bad(pos, "length CRC mismatch"));
        }
        let body = pos + 12;
        let payload = data
            .get(body..body + len)
            .ok_or_else(|| bad(pos, "truncated payload"))?;
        let crc = data
            .get(body + len..body + len + 4)
            .ok_or_else(|| bad(pos, "truncated payload CRC"))?;
        if masked_crc32c(payload) != u32::from_le_bytes(crc.try_into().unwrap()) {
            return Err(bad(pos, "payload CRC mismatch"));
        }
        out.push(Event::decode(payload).map_err(|m| bad(pos, &m))?);
        pos = body + len + 4;
    }
    Ok(out)
}

/// JSONL and TensorBoard together: what the trainer calls once per step.
pub struct MetricsLogger {
    pub jsonl: JsonlWriter,
    pub tb: Option<TbWriter>,
}

impl MetricsLogger {
    /// `<dir>/metrics.jsonl` (resumed at `resume_step` when given) and, when `tensorboard`,
    /// a new event file in `<dir>/tb/`.
    pub fn open(dir: &Path, resume_step: Option<u64>, tensorboard: bool) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| GrpoError::io(dir, e))?;
        let jsonl_path = dir.join("metrics.jsonl");
        let jsonl = match resume_step {
            Some(_) => JsonlWriter::resume(&jsonl_path, resume_step)?,
            None => JsonlWriter::create(&jsonl_path)?,
        };
        let tb = if tensorboard {
            Some(TbWriter::create(&dir.join("tb"))?)
        } else {
            None
        };
        Ok(MetricsLogger { jsonl, tb })
    }

    pub fn log(&mut self, step: u64, metrics: &BTreeMap<String, f64>) -> Result<()> {
        self.jsonl.log(step, metrics)?;
        if let Some(tb) = &mut self.tb {
            tb.log(step, metrics)?;
        }
        Ok(())
    }
}
