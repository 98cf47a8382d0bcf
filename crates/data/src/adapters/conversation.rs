//! The conversation item LLaVA ([`super::llava`]) and VLM-R1 ([`super::vlm_r1`]) share:
//! `{"id", "image": str | [str], "conversations": [{"from": "human", "value": "<image>\n..."},
//! {"from": "gpt", "value": "..."}]}`. The problem is the human turn (its `<image>` placeholders
//! kept), the answer the gpt turn that follows it, with `<answer>…</answer>` tags dropped.

use serde_json::{Map, Value};

use super::{clip, id_string, resolve_image, Ctx};
use crate::schema::{Answer, Draft};

/// Drafts from one conversation item: its first human/gpt pair, or every pair.
pub(super) fn conversation_drafts(
    ctx: &Ctx,
    item: Value,
    all_turns: bool,
) -> Result<Vec<Draft>, String> {
    let Value::Object(mut obj) = item else {
        return Err("an item must be a JSON object".into());
    };
    let id = obj.remove("id").as_ref().and_then(id_string);
    let images = match obj.remove("image") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![resolve_image(&ctx.image_root, &s)],
        Some(Value::Array(list)) => list
            .iter()
            .map(|v| {
                v.as_str()
                    .map(|s| resolve_image(&ctx.image_root, s))
                    .ok_or_else(|| {
                        format!("`image` list holds a non-string {}", clip(&v.to_string()))
                    })
            })
            .collect::<Result<_, _>>()?,
        Some(v) => {
            return Err(format!(
                "`image` must be a string or a list, not {}",
                clip(&v.to_string())
            ))
        }
    };
    let turns = match obj.remove("conversations") {
        Some(Value::Array(t)) => t,
        Some(_) => return Err("`conversations` must be a list of {from, value} turns".into()),
        None => return Err("missing field `conversations`".into()),
    };
    let pairs = turn_pairs(&turns)?;
    let n_pairs = pairs.len();
    let mut meta: Map<String, Value> = obj;
    meta.insert("turns".into(), Value::from(turns.len()));
    let take = if all_turns { n_pairs } else { 1 };
    Ok(pairs
        .into_iter()
        .take(take)
        .enumerate()
        .map(|(k, (q, a))| Draft {
            id: match (&id, all_turns && n_pairs > 1) {
                (Some(id), true) => Some(format!("{id}-t{}", k + 1)),
                (Some(id), false) => Some(id.clone()),
                (None, _) => None,
            },
            source: Some(ctx.name.clone()),
            images: images.clone(),
            problem: Some(q),
            answer: Some(Answer::Text(a)),
            meta: meta.clone(),
            ..Draft::default()
        })
        .collect())
}

/// (human, gpt) pairs in order; a turn's `from` is `human`/`user` or `gpt`/`assistant`.
fn turn_pairs(turns: &[Value]) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut pending: Option<String> = None;
    for (i, t) in turns.iter().enumerate() {
        let from = t
            .get("from")
            .or_else(|| t.get("role"))
            .and_then(Value::as_str);
        let value = match t.get("value").or_else(|| t.get("content")) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err(format!("turn {} has no text `value`", i + 1)),
        };
        match from {
            Some("human" | "user") => pending = Some(value),
            Some("gpt" | "assistant") => {
                if let Some(q) = pending.take() {
                    out.push((q, strip_answer_tags(&value)));
                }
            }
            Some("system") => {}
            other => {
                return Err(format!(
                    "turn {} has unknown `from` {:?}",
                    i + 1,
                    other.unwrap_or("(none)")
                ))
            }
        }
    }
    if out.is_empty() {
        return Err("no human turn followed by a gpt turn".into());
    }
    Ok(out)
}

fn strip_answer_tags(s: &str) -> String {
    s.replace("<answer>", "")
        .replace("</answer>", "")
        .trim()
        .to_string()
}
