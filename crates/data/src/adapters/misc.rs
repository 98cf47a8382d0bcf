//! Dataset-specific layouts: RefCOCO refs, ChartQA, COCO captions and ScienceQA.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::conversation::json_number;
use super::{clip, id_string, parse_json_file, read_text, resolve_image, Ctx, DataError, Rows};
use crate::options::{letter, render_options};
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

/// ChartQA-style JSON: `[{"imgname", "query", "label"}]`; images in `png/` beside the file
/// (ChartQA's layout) when that folder exists, else beside the file.
pub(super) fn read_chartqa(ctx: &Ctx) -> Result<Rows, DataError> {
    let v = ctx.read_json()?;
    let Value::Array(items) = v else {
        return Err(DataError::format(
            &ctx.spec.path,
            "ChartQA data must be a JSON list of {imgname, query, label}",
        ));
    };
    let png = ctx.image_root.join("png");
    let root = ctx.root_or(if png.is_dir() {
        png
    } else {
        ctx.image_root.clone()
    });
    Ok(items
        .iter()
        .enumerate()
        .map(|(i, it)| {
            let line = i + 1;
            let field = |k: &str| match it.get(k) {
                Some(Value::String(s)) => Ok(s.clone()),
                Some(Value::Number(n)) => Ok(n.to_string()),
                _ => Err(ctx.reject(line, format!("missing text field `{k}`"))),
            };
            let imgname = field("imgname")?;
            let query = field("query")?;
            let label = field("label")?;
            let mut meta = Map::new();
            meta.insert("imgname".into(), Value::String(imgname.clone()));
            Ok(ctx.row(
                line,
                Draft {
                    source: Some(ctx.name.clone()),
                    task: Some(Task::Chart.as_str().into()),
                    images: vec![resolve_image(&root, &imgname)],
                    problem: Some(format!("<image>{}", query.trim())),
                    answer: Some(Answer::Text(label)),
                    meta,
                    ..Draft::default()
                },
            ))
        })
        .collect())
}

/// The default caption prompt.
pub const CAPTION_PROMPT: &str = "<image>Describe this image in one sentence.";

/// COCO-captions-style annotations: one open-ended sample per image, the first caption (by
/// annotation order) as the answer and every caption in `meta.captions`; `image_size` from the
/// image entry. Option `prompt`.
pub(super) fn read_coco_captions(ctx: &Ctx) -> Result<Rows, DataError> {
    let path = &ctx.spec.path;
    let v = ctx.read_json()?;
    let (Some(images), Some(anns)) = (
        v.get("images").and_then(Value::as_array),
        v.get("annotations").and_then(Value::as_array),
    ) else {
        return Err(DataError::format(
            path,
            "COCO captions need `images` and `annotations` lists",
        ));
    };
    let mut captions: HashMap<i64, Vec<String>> = HashMap::new();
    for a in anns {
        if let (Some(id), Some(c)) = (
            a.get("image_id").and_then(Value::as_i64),
            a.get("caption").and_then(Value::as_str),
        ) {
            let c = c.trim();
            if !c.is_empty() {
                captions.entry(id).or_default().push(c.to_string());
            }
        }
    }
    let prompt = ctx.opt_str("prompt").unwrap_or(CAPTION_PROMPT);
    Ok(images
        .iter()
        .enumerate()
        .map(|(i, im)| {
            let line = i + 1;
            let id = im
                .get("id")
                .and_then(Value::as_i64)
                .ok_or_else(|| ctx.reject(line, "image entry has no integer `id`"))?;
            let file = im
                .get("file_name")
                .and_then(Value::as_str)
                .ok_or_else(|| ctx.reject(line, format!("image {id} has no `file_name`")))?;
            let caps = captions
                .get(&id)
                .filter(|c| !c.is_empty())
                .ok_or_else(|| ctx.reject(line, format!("image {id} has no caption")))?;
            let dim = |k: &str| im.get(k).and_then(Value::as_u64).unwrap_or(0) as u32;
            let (w, h) = (dim("width"), dim("height"));
            let mut meta = Map::new();
            meta.insert("coco_id".into(), Value::from(id));
            meta.insert(
                "captions".into(),
                Value::Array(caps.iter().cloned().map(Value::String).collect()),
            );
            Ok(ctx.row(
                line,
                Draft {
                    id: Some(format!("{}-{id}", ctx.name)),
                    source: Some(ctx.name.clone()),
                    task: Some(Task::OpenEnded.as_str().into()),
                    images: vec![resolve_image(&ctx.image_root, file)],
                    problem: Some(prompt.to_string()),
                    answer: Some(Answer::Text(caps[0].clone())),
                    image_size: (w > 0 && h > 0).then_some([w, h]),
                    meta,
                    ..Draft::default()
                },
            ))
        })
        .collect())
}

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
