//! `samples.jsonl`: one line per evaluated sample (its prompt, gold, every response and its
//! scores), appended and flushed after each batch. It is the run's memory: a restarted run skips
//! the ids already there, and the final results are computed from this file alone.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use mixed_r1_data::Task;
use mixed_r1_reward::Answer;
use serde::{Deserialize, Serialize};

use crate::score::ScoredResponse;

/// One line of `samples.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleRecord {
    pub id: String,
    pub source: String,
    pub task: Task,
    /// Where the sample came from.
    pub file: String,
    pub line: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// The rendered user prompt (before the chat template).
    pub prompt: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
    /// The gold answer.
    pub answer: Answer,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<String>,
    /// Empty when the responder had no response for this sample (reported as `no_response`).
    pub responses: Vec<ScoredResponse>,
    /// Seconds of generation and of scoring spent on this sample (its batch's time, shared out
    /// evenly).
    pub generate_s: f64,
    pub score_s: f64,
}

/// What an existing `samples.jsonl` held.
#[derive(Debug, Default)]
pub struct Existing {
    pub records: Vec<SampleRecord>,
    /// Bytes of an unfinished last line that were cut off (an interrupted write).
    pub torn_bytes: usize,
}

/// Reads `samples.jsonl` (nothing when it does not exist). An unfinished or unreadable **last**
/// line is the trace of an interrupted write: it is cut off the file and its sample is redone.
/// A bad line anywhere else is an error naming the file and line.
pub fn read_records(path: &Path, repair: bool) -> Result<Existing> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Existing::default()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let mut records = Vec::new();
    let mut good_end = 0usize;
    let mut start = 0usize;
    let mut line_no = 0usize;
    while start < bytes.len() {
        line_no += 1;
        let end = bytes[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|p| start + p);
        let (line, next, complete) = match end {
            Some(e) => (&bytes[start..e], e + 1, true),
            None => (&bytes[start..], bytes.len(), false),
        };
        let is_last = next >= bytes.len();
        if line.iter().all(u8::is_ascii_whitespace) {
            if complete {
                good_end = next;
            }
            start = next;
            continue;
        }
        match serde_json::from_slice::<SampleRecord>(line) {
            Ok(r) if complete => {
                records.push(r);
                good_end = next;
            }
            _ if is_last => break,
            Ok(_) => unreachable!("only the last line can lack its newline"),
            Err(e) => bail!(
                "{}:{line_no}: not a sample record ({e}); the file is damaged, start over with \
                 --overwrite or another --out",
                path.display()
            ),
        }
        start = next;
    }
    let torn_bytes = bytes.len() - good_end;
    if torn_bytes > 0 && repair {
        let f = OpenOptions::new()
            .write(true)
            .open(path)
            .with_context(|| format!("cannot repair {}", path.display()))?;
        f.set_len(good_end as u64)
            .with_context(|| format!("cannot repair {}", path.display()))?;
    }
    Ok(Existing {
        records,
        torn_bytes,
    })
}

/// Appends records to `samples.jsonl`, flushing after each batch.
pub struct RecordWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

impl RecordWriter {
    pub fn append(path: &Path) -> Result<RecordWriter> {
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(RecordWriter {
            path: path.to_path_buf(),
            out: BufWriter::new(f),
        })
    }

    /// Writes a batch of records and flushes them to the file.
    pub fn write_batch(&mut self, records: &[SampleRecord]) -> Result<()> {
        let werr = || format!("cannot write {}", self.path.display());
        for r in records {
            let mut line = serde_json::to_vec(r).with_context(werr)?;
            line.push(b'\n');
            self.out.write_all(&line).with_context(werr)?;
        }
        self.out.flush().with_context(werr)?;
        self.out.get_ref().sync_data().ok();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str) -> SampleRecord {
        SampleRecord {
            id: id.into(),
            source: "s".into(),
            task: Task::YesNo,
            file: "f".into(),
            line: 1,
            system: None,
            prompt: "p".into(),
            images: vec![],
            answer: Answer::Text("yes".into()),
            choices: vec![],
            responses: vec![],
            generate_s: 0.0,
            score_s: 0.0,
        }
    }

    #[test]
    fn torn_last_line_is_cut_and_bad_middle_line_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("samples.jsonl");
        let mut w = RecordWriter::append(&p).unwrap();
        w.write_batch(&[rec("a"), rec("b")]).unwrap();
        drop(w);
        let good = std::fs::read(&p).unwrap();
        let mut torn = good.clone();
        torn.extend_from_slice(b"{\"id\": \"c\", \"sou");
        std::fs::write(&p, &torn).unwrap();
        let got = read_records(&p, true).unwrap();
        assert_eq!(got.records.len(), 2);
        assert_eq!(got.torn_bytes, 16);
        assert_eq!(std::fs::read(&p).unwrap(), good);
        // A complete but unreadable last line is cut as well.
        let mut bad_last = good.clone();
        bad_last.extend_from_slice(b"garbage\n");
        std::fs::write(&p, &bad_last).unwrap();
        assert_eq!(read_records(&p, true).unwrap().records.len(), 2);
        assert_eq!(std::fs::read(&p).unwrap(), good);
        // Damage in the middle is not guessed at.
        let mut bad_mid = b"garbage\n".to_vec();
        bad_mid.extend_from_slice(&good);
        std::fs::write(&p, &bad_mid).unwrap();
        let e = read_records(&p, true).unwrap_err().to_string();
        assert!(e.contains("samples.jsonl:1"), "{e}");
        assert!(read_records(&dir.path().join("none"), true)
            .unwrap()
            .records
            .is_empty());
    }
}
