//! RefCOCO refs (the `refer` layout): one grounding sample per referring sentence.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{Map, Value};

use super::{
    id_string, json_number, parse_json_file, read_text, resolve_image, Ctx, DataError, Rows,
};
use crate::schema::{Answer, Draft, Task};
use mixed_r1_reward::iou::Frame;

/// The default RefCOCO prompt, modelled on VLM-R1's REC question.
pub const REFCOCO_PROMPT: &str =
    "<image>Please provide the bounding box coordinate of the region this sentence describes: {sentence}.";

/// RefCOCO-style refs: one grounding sample per referring sentence, its box the referred COCO
/// annotation's `bbox` (`[x, y, w, h]`) as an absolute `[x1, y1, x2, y2]`, `image_size` from
/// the COCO image entry. The refs file is a JSON list of refs (or an object with `refs` and,
/// optionally, the COCO `images` / `annotations`); otherwise the COCO instances come from option
/// `instances` (default `instances.json` beside the refs file), as in the `refer` layout.
/// Options: `split`, `sentences` (`all` | `first`), `prompt` (with `{sentence}`).
pub(super) fn read_refcoco(ctx: &Ctx) -> Result<Rows, DataError> {
    let path = &ctx.spec.path;
    let v = ctx.read_json()?;
    let (refs, inline) = match v {
        Value::Array(refs) => (refs, None),
        Value::Object(mut o) => match o.remove("refs") {
            Some(Value::Array(refs)) => (refs, Some(Value::Object(o))),
            _ => {
                return Err(DataError::format(
                    path,
                    "RefCOCO refs must be a JSON list or an object with a `refs` list",
                ))
            }
        },
        _ => return Err(DataError::format(path, "RefCOCO refs must be a JSON list")),
    };
    let instances = match inline.filter(|o| o.get("images").is_some()) {
        Some(o) => o,
        None => {
            let name = ctx.opt_str("instances").unwrap_or("instances.json");
            let p = path.parent().unwrap_or(Path::new("")).join(name);
            parse_json_file(&p, &read_text(&p)?)?
        }
    };
    let (images, anns) = coco_index(path, &instances)?;
    let split = ctx.opt_str("split");
    let first_only = ctx.opt_str("sentences") == Some("first");
    let prompt = ctx.opt_str("prompt").unwrap_or(REFCOCO_PROMPT);
    let mut out = Vec::new();
    for (i, r) in refs.iter().enumerate() {
        let line = i + 1;
        if split.is_some() && r.get("split").and_then(Value::as_str) != split {
            continue;
        }
        match refcoco_drafts(ctx, r, &images, &anns, first_only, prompt) {
            Ok(ds) => out.extend(ds.into_iter().map(|d| Ok(ctx.row(line, d)))),
            Err(why) => out.push(Err(ctx.reject(line, why))),
        }
    }
    Ok(out)
}

struct CocoImage {
    file_name: String,
    width: u32,
    height: u32,
}

type CocoImages = HashMap<i64, CocoImage>;

fn coco_index(
    path: &Path,
    inst: &Value,
) -> Result<(CocoImages, HashMap<i64, [f64; 4]>), DataError> {
    let mut images = HashMap::new();
    for im in inst
        .get("images")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (Some(id), Some(file_name)) = (
            im.get("id").and_then(Value::as_i64),
            im.get("file_name").and_then(Value::as_str),
        ) else {
            continue;
        };
        let dim = |k: &str| im.get(k).and_then(Value::as_u64).unwrap_or(0) as u32;
        images.insert(
            id,
            CocoImage {
                file_name: file_name.to_string(),
                width: dim("width"),
                height: dim("height"),
            },
        );
    }
    if images.is_empty() {
        return Err(DataError::format(
            path,
            "COCO instances hold no `images` with id and file_name",
        ));
    }
    let mut anns = HashMap::new();
    for a in inst
        .get("annotations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(id) = a.get("id").and_then(Value::as_i64) else {
            continue;
        };
        if let Some(b) = a.get("bbox").and_then(Value::as_array) {
            let v: Vec<f64> = b.iter().filter_map(Value::as_f64).collect();
            if v.len() == 4 {
                anns.insert(id, [v[0], v[1], v[2], v[3]]);
            }
        }
    }
    Ok((images, anns))
}

fn refcoco_drafts(
    ctx: &Ctx,
    r: &Value,
    images: &CocoImages,
    anns: &HashMap<i64, [f64; 4]>,
    first_only: bool,
    prompt: &str,
) -> Result<Vec<Draft>, String> {
    let get_i = |k: &str| {
        r.get(k)
            .and_then(Value::as_i64)
            .ok_or_else(|| format!("ref has no integer `{k}`"))
    };
    let ref_id = get_i("ref_id")?;
    let ann_id = get_i("ann_id")?;
    let image_id = get_i("image_id")?;
    let image = images
        .get(&image_id)
        .ok_or_else(|| format!("image {image_id} is not in the COCO instances"))?;
    let [x, y, w, h] = *anns
        .get(&ann_id)
        .ok_or_else(|| format!("annotation {ann_id} is not in the COCO instances"))?;
    let sentences = r
        .get("sentences")
        .and_then(Value::as_array)
        .ok_or("ref has no `sentences` list")?;
    let answer = Answer::Json(Value::Array(vec![Value::Array(
        [x, y, x + w, y + h].into_iter().map(json_number).collect(),
    )]));
    let root = ctx.root_or(ctx.image_root.clone());
    let img = resolve_image(&root, &image.file_name);
    let mut meta = Map::new();
    for k in ["ref_id", "ann_id", "image_id", "category_id", "split"] {
        if let Some(v) = r.get(k) {
            meta.insert(k.into(), v.clone());
        }
    }
    let mut out = Vec::new();
    for (k, s) in sentences.iter().enumerate() {
        let text = s
            .get("sent")
            .or_else(|| s.get("raw"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim();
        if text.is_empty() {
            continue;
        }
        let sent_id = s
            .get("sent_id")
            .and_then(id_string)
            .unwrap_or_else(|| k.to_string());
        out.push(Draft {
            id: Some(format!("{}-{ref_id}-{sent_id}", ctx.name)),
            source: Some(ctx.name.clone()),
            task: Some(Task::Grounding.as_str().into()),
            images: vec![img.clone()],
            problem: Some(prompt.replace("{sentence}", text)),
            answer: Some(answer.clone()),
            frame: Some(Frame::Abs),
            image_size: (image.width > 0 && image.height > 0)
                .then_some([image.width, image.height]),
            meta: meta.clone(),
            ..Draft::default()
        });
        if first_only {
            break;
        }
    }
    if out.is_empty() {
        return Err(format!("ref {ref_id} has no sentence"));
    }
    Ok(out)
}
