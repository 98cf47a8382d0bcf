//! VLM-R1 JSONL: one conversation item a line (the layout [`super::conversation`] reads) with an
//! `accu_reward_method` that picks the task. VLM-R1 wraps some answers in `<answer>…</answer>`;
//! the tags are dropped, as its `grpo_jsonl.py` does. Grounding answers written as text become
//! JSON boxes.

use rayon::prelude::*;
use serde_json::Value;

use super::conversation::conversation_drafts;
use super::{json_error, json_number, numbered_lines, parse_frame, Ctx, DataError, Rows};
use crate::schema::{Answer, Draft, Task};
use mixed_r1_reward::iou::{gold_boxes, gold_boxes_text, Frame};

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
    let lines = numbered_lines(&text);
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
