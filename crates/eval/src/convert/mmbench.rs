//! MMBench TSV (as VLMEvalKit and OpenCompass distribute it): a header row, then one question a
//! row with `index, question, hint, A, B, C, D, [E, ...], answer, category, image, ...`. Images
//! are base64 in the `image` column; to save space a row may instead hold the `index` of an
//! earlier row with the same image (a short number). Empty cells (pandas writes NaN as nothing;
//! some copies say `nan`) mean absent. Fields are quoted CSV-style when they hold a tab, a
//! newline or a quote (`""` inside quotes is one quote).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use mixed_r1_data::{Answer, Draft, Row, Task};
use serde_json::{Map, Value};

use super::{origin, BadRow, ConvertOptions, Drafts};
use crate::base64::base64_decode;
use crate::image_type::image_extension;
use crate::prompt::render_options;

/// Splits TSV text into records: `(line of the record's start, fields)`, or an error for a
/// record with an unterminated quote. Blank lines are skipped.
pub fn parse_tsv(text: &str) -> Vec<(usize, std::result::Result<Vec<String>, String>)> {
    let mut out = Vec::new();
    let mut fields: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut in_quotes = false;
    let mut at_field_start = true;
    let mut line = 1usize;
    let mut start_line = 1usize;
    let mut chars = text.chars().peekable();
    let end_record = |fields: &mut Vec<String>, field: &mut String, out: &mut Vec<_>, at: usize| {
        fields.push(std::mem::take(field));
        let rec = std::mem::take(fields);
        if !(rec.len() == 1 && rec[0].trim().is_empty()) {
            out.push((at, Ok(rec)));
        }
    };
    while let Some(c) = chars.next() {
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                '\n' => {
                    line += 1;
                    field.push('\n');
                }
                c => field.push(c),
            }
            continue;
        }
        match c {
            '"' if at_field_start => {
                in_quotes = true;
                at_field_start = false;
            }
            '\t' => {
                fields.push(std::mem::take(&mut field));
                at_field_start = true;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                end_record(&mut fields, &mut field, &mut out, start_line);
                line += 1;
                start_line = line;
                at_field_start = true;
            }
            c => {
                field.push(c);
                at_field_start = false;
            }
        }
    }
    if in_quotes {
        out.push((start_line, Err("unterminated quoted field".into())));
    } else if !field.is_empty() || !fields.is_empty() {
        end_record(&mut fields, &mut field, &mut out, start_line);
    }
    out
}

fn present(v: Option<&String>) -> Option<&str> {
    v.map(|s| s.trim())
        .filter(|s| !s.is_empty() && *s != "nan" && *s != "NaN")
}

/// Reads the TSV into drafts, writing images into `images_dir`. Returns the drafts and the
/// number of image files written.
pub(super) fn read(
    opts: &ConvertOptions,
    source: &str,
    images_dir: &Path,
) -> Result<(Drafts, usize)> {
    let path = &opts.input;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file = Arc::new(path.clone());
    let fname = path.display().to_string();
    let bad = |line: usize, reason: String| BadRow {
        file: fname.clone(),
        line,
        reason,
    };
    let mut records = parse_tsv(&text).into_iter();
    let header = match records.next() {
        Some((_, Ok(h))) => h,
        Some((line, Err(e))) => anyhow::bail!("{}:{line}: header: {e}", path.display()),
        None => anyhow::bail!(
            "{}: empty file (expected an MMBench TSV header)",
            path.display()
        ),
    };
    let col: HashMap<String, usize> = header
        .iter()
        .enumerate()
        .map(|(i, h)| (h.trim().to_string(), i))
        .collect();
    for need in ["index", "question", "A", "B"] {
        if !col.contains_key(need) {
            anyhow::bail!(
                "{}: the header has no `{need}` column (an MMBench TSV has index, question, hint, \
                 A, B, C, D, answer, category, image)",
                path.display()
            );
        }
    }
    let rows: Vec<(usize, std::result::Result<Vec<String>, String>)> = records.collect();
    // Images by index, for rows that refer to another row's image.
    let img_col = col.get("image").copied();
    let mut image_of: HashMap<String, String> = HashMap::new();
    if let Some(ic) = img_col {
        for (_, r) in &rows {
            if let Ok(f) = r {
                if let (Some(idx), Some(img)) = (present(f.get(col["index"])), present(f.get(ic))) {
                    if !is_reference(img) {
                        image_of.insert(idx.to_string(), img.to_string());
                    }
                }
            }
        }
    }
    let mut written: HashMap<String, PathBuf> = HashMap::new();
    let mut n_written = 0usize;
    let mut out = Vec::new();
    for (line, r) in rows {
        let fields = match r {
            Ok(f) => f,
            Err(e) => {
                out.push(Err(bad(line, e)));
                continue;
            }
        };
        let get = |k: &str| col.get(k).and_then(|&i| present(fields.get(i)));
        let result = (|| -> std::result::Result<Draft, String> {
            let index = get("index").ok_or("no `index`")?.to_string();
            if let Some(want) = &opts.split {
                if get("split").is_some_and(|s| s != want) {
                    return Err(String::new()); // filtered, not bad
                }
            }
            let question = get("question").ok_or("no `question`")?;
            let mut choices = Vec::new();
            for l in 'A'..='Z' {
                match get(&l.to_string()) {
                    Some(c) => choices.push(c.to_string()),
                    None => break,
                }
            }
            if choices.len() < 2 {
                return Err(format!("only {} option(s); need A and B", choices.len()));
            }
            let answer = get("answer")
                .ok_or("no `answer` (MMBench test rows have none; convert the dev split)")?;
            let letter = answer.trim_matches(|c| c == '(' || c == ')' || c == '.');
            let k = (letter.len() == 1)
                .then(|| letter.as_bytes()[0].wrapping_sub(b'A') as usize)
                .filter(|&k| k < choices.len())
                .ok_or_else(|| {
                    format!(
                        "answer {answer:?} is not one of the option letters A-{}",
                        (b'A' + choices.len() as u8 - 1) as char
                    )
                })?;
            let mut images = Vec::new();
            if let Some(img) = img_col.and_then(|ic| present(fields.get(ic))) {
                let key = if is_reference(img) {
                    img.to_string()
                } else {
                    index.clone()
                };
                let p = match written.get(&key) {
                    Some(p) => p.clone(),
                    None => {
                        let b64 = image_of.get(&key).ok_or_else(|| {
                            format!("image refers to row {key}, which has no image")
                        })?;
                        let bytes = base64_decode(b64).ok_or("image is not valid base64")?;
                        let ext = image_extension(&bytes)
                            .ok_or("image is not a PNG, JPEG, GIF, WebP or BMP file")?;
                        std::fs::create_dir_all(images_dir)
                            .map_err(|e| format!("cannot create {}: {e}", images_dir.display()))?;
                        let p = images_dir.join(format!("{key}.{ext}"));
                        std::fs::write(&p, &bytes)
                            .map_err(|e| format!("cannot write {}: {e}", p.display()))?;
                        n_written += 1;
                        written.insert(key, p.clone());
                        p
                    }
                };
                images.push(p.to_string_lossy().into_owned());
            }
            let mut problem = String::new();
            if !images.is_empty() {
                problem.push_str("<image>");
            }
            if let Some(h) = get("hint") {
                problem.push_str(&format!("Hint: {h}\n"));
            }
            problem.push_str(question);
            problem.push('\n');
            problem.push_str(&render_options(&choices));
            let mut meta = Map::new();
            meta.insert("index".into(), Value::String(index.clone()));
            for (k, name) in [
                ("category", "category"),
                ("l2-category", "l2_category"),
                ("split", "split"),
                ("source", "origin"),
            ] {
                if let Some(v) = get(k) {
                    meta.insert(name.into(), Value::String(v.to_string()));
                }
            }
            Ok(Draft {
                id: Some(format!("{source}-{index}")),
                source: Some(source.to_string()),
                task: Some(Task::Mcq.as_str().into()),
                images,
                problem: Some(problem),
                answer: Some(Answer::Text(((b'A' + k as u8) as char).to_string())),
                choices,
                meta,
                ..Draft::default()
            })
        })();
        match result {
            Ok(d) => out.push(Ok(Row {
                item: d,
                origin: origin(&file, line),
            })),
            Err(e) if e.is_empty() => {}
            Err(e) => out.push(Err(bad(line, e))),
        }
    }
    Ok((out, n_written))
}

/// A short all-digit image cell is the index of another row with the same image.
fn is_reference(img: &str) -> bool {
    img.len() <= 64 && !img.is_empty() && img.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsv_quotes_tabs_and_newlines() {
        let t = "a\tb\tc\n1\t\"x\ty\"\t\"he said \"\"hi\"\"\"\r\n2\t\"two\nlines\"\tz\n\n3\t\"open";
        let r = parse_tsv(t);
        assert_eq!(r[0], (1, Ok(vec!["a".into(), "b".into(), "c".into()])));
        assert_eq!(
            r[1],
            (
                2,
                Ok(vec!["1".into(), "x\ty".into(), "he said \"hi\"".into()])
            )
        );
        assert_eq!(
            r[2],
            (3, Ok(vec!["2".into(), "two\nlines".into(), "z".into()]))
        );
        assert_eq!(r[3].0, 6);
        assert!(r[3].1.is_err());
        assert_eq!(r.len(), 4);
        // A quote inside a field (not at its start) is literal.
        assert_eq!(
            parse_tsv("a\"b\tc")[0].1,
            Ok(vec!["a\"b".into(), "c".into()])
        );
    }
}
