//! Conversation formats: LLaVA instruction JSON and VLM-R1 JSONL.
//!
//! Both keep a sample as `{"id", "image": str | [str], "conversations": [{"from": "human",
//! "value": "<image>\n..."}, {"from": "gpt", "value": "..."}]}`. The problem is the human turn
//! (its `<image>` placeholders kept), the answer the gpt turn that follows it. VLM-R1 wraps some
//! answers in `<answer>…</answer>`; the tags are dropped, as its `grpo_jsonl.py` does.

use rayon::prelude::*;
use serde_json::{Map, Value};

use super::{clip, id_string, json_error, resolve_image, Ctx, DataError, Rows};
use crate::schema::{Answer, Draft, Task};
use mixed_r1_reward::iou::{gold_boxes, gold_boxes_text, Frame};

pub(super) fn read_llava(ctx: &Ctx) -> Result<Rows, DataError> {
    let v = ctx.read_json()?;
    let Value::Array(items) = v else {
        return Err(DataError::format(
            &ctx.spec.path,
            "LLaVA data must be a JSON array of {id, image, conversations} objects",
        ));
    };
    let all_turns = ctx.opt_bool("all_turns", false);
    let out = items
        .into_par_iter()
        .enumerate()
        .flat_map_iter(|(i, item)| {
            let line = i + 1;
            match conversation_drafts(ctx, item, all_turns) {
                Ok(drafts) => drafts
                    .into_iter()
                    .map(|d| Ok(ctx.row(line, d)))
                    .collect::<Vec<_>>(),
                Err(why) => vec![Err(ctx.reject(line, why))],
            }
        })
        .collect();
    Ok(out)
}

pub(super) fn read_vlm_r1(ctx: &Ctx) -> Result<Rows, DataError> {
    let text = ctx.read_text()?;
    let default_method = ctx.opt_str("reward_method").map(str::to_string);
    let frame = match ctx.opt_str("frame") {
        Some(f) => Some(parse_frame(f).ok_or_else(|| {
            DataError::format(&ctx.spec.path, format!("unknown frame option {f:?}"))
        })?),
        None => None,
    };
    let pred_frame = match ctx.opt_str("pred_frame") {
        Some(f) => Some(parse_frame(f).ok_or_else(|| {
            DataError::format(&ctx.spec.path, format!("unknown pred_frame option {f:?}"))
        })?),
        None => None,
    };
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i + 1, l))
        .collect();
    Ok(lines
        .par_iter()
        .map(|&(line, l)| {
            let item: Value =
                serde_json::from_str(l).map_err(|e| ctx.reject(line, json_error(&e)))?;
            let method = item
                .get("accu_reward_method")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| default_method.clone());
            let mut drafts =
                conversation_drafts(ctx, item, false).map_err(|why| ctx.reject(line, why))?;
            let mut d = drafts.swap_remove(0);
            if let Some(m) = &method {
                d.meta
                    .insert("accu_reward_method".into(), Value::String(m.clone()));
                d.task = vlm_r1_task(m).map(|t| t.as_str().to_string());
            }
            if d.task.as_deref() == Some(Task::Grounding.as_str()) {
                boxes_answer(&mut d);
                d.frame = Some(frame.unwrap_or(Frame::Abs));
                d.pred_frame = pred_frame;
            }
            Ok(ctx.row(line, d))
        })
        .collect())
}

/// The task for a VLM-R1 `accu_reward_method`: `mcq`, `yes_no`, `math` keep their names;
/// the box rewards (`iou`, `rec`, `map`, `od_ap`, `od_ap50`, `odLength`) are grounding; `llm`
/// (an LLM judge of free text) is open_ended; `numeric` is numeric. `default`, `all_match`,
/// `weighted_sum` and unknown methods give `None`: the task is inferred from the answer.
pub fn vlm_r1_task(method: &str) -> Option<Task> {
    Some(match method {
        "mcq" => Task::Mcq,
        "yes_no" => Task::YesNo,
        "math" => Task::Math,
        "numeric" => Task::Numeric,
        "iou" | "rec" | "map" | "od_ap" | "od_ap50" | "odLength" => Task::Grounding,
        "llm" => Task::OpenEnded,
        _ => return None,
    })
}

/// A grounding answer written as text (`[x1, y1, x2, y2]`, ```json [{"bbox_2d": ...}]```)
/// becomes a JSON list of boxes, the schema's shape; the original text is kept in
/// `meta.raw_answer`. An answer with no box is left as it is (validation rejects it).
fn boxes_answer(d: &mut Draft) {
    let boxes = match &d.answer {
        Some(Answer::Text(s)) => {
            // A fenced JSON list of {"bbox_2d", "label"} objects (VLM-R1's OVD data).
            let inner = s
                .trim()
                .trim_start_matches("```json")
                .trim_start_matches("```")
                .trim_end_matches("```")
                .trim();
            match serde_json::from_str::<Value>(inner) {
                Ok(v) => gold_boxes(&v).ok(),
                Err(_) => gold_boxes_text(s).ok(),
            }
        }
        _ => None,
    };
    if let (Some(boxes), Some(Answer::Text(raw))) = (boxes, d.answer.take()) {
        d.meta.insert("raw_answer".into(), Value::String(raw));
        d.answer = Some(Answer::Json(Value::Array(
            boxes
                .iter()
                .map(|b| Value::Array(b.iter().map(|&x| json_number(x)).collect()))
                .collect(),
        )));
    }
}

/// Whole numbers stay integers in JSON (`10`, not `10.0`).
pub(crate) fn json_number(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        Value::from(x as i64)
    } else {
        serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
    }
}

pub(crate) fn parse_frame(name: &str) -> Option<Frame> {
    serde_json::from_value(Value::String(name.to_string())).ok()
}

/// Drafts from one conversation item: its first human/gpt pair, or every pair.
fn conversation_drafts(ctx: &Ctx, item: Value, all_turns: bool) -> Result<Vec<Draft>, String> {
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
