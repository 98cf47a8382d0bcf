//! ScienceQA `problems.json`: one mcq sample per problem.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{clip, resolve_image, Ctx, DataError, Rows};
use crate::options::{letter, render_options};
use crate::schema::{Answer, Draft, Task};

/// A JSON object read with its keys in file order (serde_json's map sorts them).
struct Ordered(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Ordered, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, Value>()? {
                    out.push((k, v));
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// ScienceQA `problems.json`: `{"<pid>": {"question", "choices", "answer": <index>, "hint",
/// "image": "image.png" | null, "split", ...}}` -> an mcq sample whose problem shows the hint
/// (as `Context:`), the question and the lettered options, answer the letter. Images at
/// `images/<split>/<pid>/<image>` beside the file (`image_root` replaces `images/`).
/// Option `split`. Record numbers follow the file's order.
pub(super) fn read_scienceqa(ctx: &Ctx) -> Result<Rows, DataError> {
    let path = &ctx.spec.path;
    let text = ctx.read_text()?;
    let Ordered(problems) = serde_json::from_str(&text).map_err(|e| {
        DataError::format(
            path,
            format!("ScienceQA problems must be a JSON object of problems: {e}"),
        )
    })?;
    let root: PathBuf = ctx.root_or(ctx.image_root.join("images"));
    let want_split = ctx.opt_str("split");
    let mut out = Vec::new();
    for (i, (pid, p)) in problems.into_iter().enumerate() {
        let line = i + 1;
        let split = p
            .get("split")
            .and_then(Value::as_str)
            .unwrap_or("train")
            .to_string();
        if want_split.is_some_and(|s| s != split) {
            continue;
        }
        out.push(
            scienceqa_draft(ctx, &root, &pid, &p, &split)
                .map(|d| ctx.row(line, d))
                .map_err(|why| ctx.reject(line, why)),
        );
    }
    Ok(out)
}

fn scienceqa_draft(
    ctx: &Ctx,
    root: &Path,
    pid: &str,
    p: &Value,
    split: &str,
) -> Result<Draft, String> {
    let question = p
        .get("question")
        .and_then(Value::as_str)
        .ok_or("missing text field `question`")?;
    let choices: Vec<String> = p
        .get("choices")
        .and_then(Value::as_array)
        .ok_or("missing list field `choices`")?
        .iter()
        .map(|c| {
            c.as_str()
                .map(|s| s.trim().to_string())
                .ok_or_else(|| format!("choice {} is not text", clip(&c.to_string())))
        })
        .collect::<Result<_, _>>()?;
    let idx = p
        .get("answer")
        .and_then(Value::as_u64)
        .ok_or("`answer` must be the index of the right choice")? as usize;
    if idx >= choices.len() {
        return Err(format!(
            "answer index {idx} is beyond the {} choices",
            choices.len()
        ));
    }
    let image = p
        .get("image")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let hint = p
        .get("hint")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let mut problem = String::new();
    if image.is_some() {
        problem.push_str("<image>");
    }
    if let Some(h) = hint {
        problem.push_str(&format!("Context: {h}\n"));
    }
    problem.push_str(question.trim());
    problem.push('\n');
    problem.push_str(&render_options(&choices));
    let mut meta = Map::new();
    meta.insert("pid".into(), Value::String(pid.to_string()));
    meta.insert("split".into(), Value::String(split.to_string()));
    for k in ["subject", "topic", "category", "skill", "grade"] {
        if let Some(v) = p.get(k).filter(|v| !v.is_null()) {
            meta.insert(k.into(), v.clone());
        }
    }
    Ok(Draft {
        id: Some(format!("{}-{pid}", ctx.name)),
        source: Some(ctx.name.clone()),
        task: Some(Task::Mcq.as_str().into()),
        images: image
            .map(|im| resolve_image(root, &format!("{split}/{pid}/{im}")))
            .into_iter()
            .collect(),
        problem: Some(problem),
        answer: Some(Answer::Text(letter(idx).to_string())),
        choices,
        meta,
        ..Draft::default()
    })
}
