//! The easy-vqa dataset (PyPI `easy-vqa` 1.0, MIT): 64x64 PNGs of one solid shape on a plain
//! background, and `[question, answer, image_id]` triples with 13 closed-set answers.
//!
//! Input: the dataset folder (`<split>/questions.json`, `<split>/images/<id>.png`, option `split`,
//! default `train`) or one `questions.json` (images in `images/` beside it).
//!
//! Rows, in this order:
//! * **yes/no questions** (`yes` / `no` answers, 74% of them) -> `yes_no`, the question as asked.
//! * **other questions** (a shape or a colour) -> `mcq`. The options are drawn from the answer's
//!   own category, because a distractor from another category ("yes" for "what color is the
//!   shape?") is no distractor at all: all 3 shapes for a shape question; the right colour plus
//!   `choices - 1` (option, default 4) of the other 7 colours for a colour question; shuffled with
//!   a ChaCha8 generator seeded by option `seed` (default 0), so a build is reproducible. The
//!   problem lists the options as `(A) ...`; the answer is the letter. An answer outside the
//!   closed set (`answers.txt`) is rejected.
//! * **derived grounding** (option `grounding`, default true): for each image whose questions
//!   name its shape and its colour, "Locate the `<colour>` `<shape>`." with the shape's tight box in
//!   absolute pixels (`frame = "abs"`, `image_size = [64, 64]`). The box comes from the pixels
//!   ([`shape_box`]); the names come from the questions: an answer that *is* a shape or colour
//!   (with the one colour or shape its question presupposes: "what color is the triangle?"),
//!   or a yes/no question about exactly one shape or colour word whose answer says it is present
//!   (`no`/`not` in the question flips the answer). Images whose questions never name both are
//!   left out; evidence naming two shapes or two colours is a reject.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde_json::{Map, Value};

use super::{json_number, parse_json_file, read_text, Ctx, DataError, Rows};
use crate::options::{letter, render_options};
use crate::schema::{Answer, Draft, Origin, Reject, Row, Stage, Task};
use mixed_r1_reward::iou::Frame;

pub const EASY_VQA_SHAPES: [&str; 3] = ["circle", "rectangle", "triangle"];
pub const EASY_VQA_COLOURS: [&str; 8] = [
    "red", "green", "blue", "yellow", "teal", "brown", "gray", "black",
];

/// Default prompt of the derived grounding samples.
pub const GROUNDING_PROMPT: &str = "<image>Locate the {colour} {shape}.";

/// The tight box `[x1, y1, x2, y2]` (pixel edges: `x2 = last column + 1`) of the pixels that
/// differ from the top-left pixel (the background) by more than `threshold`, summed over R, G
/// and B. `None` when no pixel does.
pub fn shape_box(img: &image::RgbImage, threshold: u32) -> Option<[u32; 4]> {
    let bg = *img.get_pixel(0, 0);
    let (mut x1, mut y1, mut x2, mut y2) = (u32::MAX, u32::MAX, 0, 0);
    for (x, y, p) in img.enumerate_pixels() {
        let d: u32 = (0..3)
            .map(|c| (p[c] as i32 - bg[c] as i32).unsigned_abs())
            .sum();
        if d > threshold {
            x1 = x1.min(x);
            y1 = y1.min(y);
            x2 = x2.max(x + 1);
            y2 = y2.max(y + 1);
        }
    }
    (x1 != u32::MAX).then_some([x1, y1, x2, y2])
}

/// What the questions say about one image.
#[derive(Default)]
struct Names {
    shapes: Vec<&'static str>,
    colours: Vec<&'static str>,
    /// 1-based number of the image's first question.
    first_line: usize,
}

impl Names {
    fn add(list: &mut Vec<&'static str>, w: &'static str) {
        if !list.contains(&w) {
            list.push(w);
        }
    }
}

pub(super) fn read_easy_vqa(ctx: &Ctx) -> Result<Rows, DataError> {
    let path = &ctx.spec.path;
    let split = ctx.opt_str("split").unwrap_or("train").to_string();
    let (questions_path, split_dir, data_dir) = if path.is_dir() {
        let d = path.join(&split);
        (d.join("questions.json"), d, path.clone())
    } else {
        let d = path.parent().unwrap_or(Path::new("")).to_path_buf();
        let up = d.parent().map(Path::to_path_buf).unwrap_or_default();
        (path.clone(), d, up)
    };
    let images_dir = ctx.root_or(split_dir.join("images"));
    let v = parse_json_file(&questions_path, &read_text(&questions_path)?)?;
    let Value::Array(items) = v else {
        return Err(DataError::format(
            &questions_path,
            "easy-vqa questions must be a JSON list of [question, answer, image_id]",
        ));
    };
    let closed: Vec<String> = match read_text(&data_dir.join("answers.txt")) {
        Ok(t) => t
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect(),
        Err(_) => EASY_VQA_SHAPES
            .iter()
            .chain(EASY_VQA_COLOURS.iter())
            .chain(["yes", "no"].iter())
            .map(|s| s.to_string())
            .collect(),
    };
    let n_colour_choices = ctx
        .opt_int("choices", 4)
        .clamp(2, EASY_VQA_COLOURS.len() as i64) as usize;
    let mut rng = ChaCha8Rng::seed_from_u64(ctx.opt_int("seed", 0) as u64);
    let file = std::sync::Arc::new(questions_path.clone());
    let origin = |line| Origin {
        file: file.clone(),
        line,
    };
    let img_path = |id: i64| images_dir.join(format!("{id}.png"));

    let mut names: BTreeMap<i64, Names> = BTreeMap::new();
    let mut out: Rows = Vec::with_capacity(items.len() + items.len() / 9);
    for (i, it) in items.iter().enumerate() {
        let line = i + 1;
        let (q, a, id) = match it.as_array().map(Vec::as_slice) {
            Some([Value::String(q), Value::String(a), id]) if id.as_i64().is_some() => {
                (q.trim(), a.trim(), id.as_i64().unwrap_or(0))
            }
            _ => {
                out.push(Err(Reject::new(
                    &origin(line),
                    Stage::Ingest,
                    "row must be [question, answer, image_id]",
                )));
                continue;
            }
        };
        if !closed.iter().any(|c| c == a) {
            out.push(Err(Reject::new(
                &origin(line),
                Stage::Ingest,
                format!(
                    "answer {a:?} is not one of the {} closed-set answers",
                    closed.len()
                ),
            )));
            continue;
        }
        let entry = names.entry(id).or_insert_with(|| Names {
            first_line: line,
            ..Names::default()
        });
        learn_names(entry, q, a);
        let mut meta = Map::new();
        meta.insert("image_id".into(), Value::from(id));
        meta.insert("split".into(), Value::String(split.clone()));
        let mut d = Draft {
            id: Some(format!("{}-{split}-q{line}", ctx.name)),
            source: Some(ctx.name.clone()),
            images: vec![img_path(id).to_string_lossy().into_owned()],
            meta,
            ..Draft::default()
        };
        if a == "yes" || a == "no" {
            d.task = Some(Task::YesNo.as_str().into());
            d.problem = Some(format!("<image>{q}"));
            d.answer = Some(Answer::Text(a.to_string()));
        } else {
            let pool: Vec<&str> = if EASY_VQA_SHAPES.contains(&a) {
                EASY_VQA_SHAPES.to_vec()
            } else {
                let mut others: Vec<&str> = EASY_VQA_COLOURS
                    .iter()
                    .copied()
                    .filter(|c| *c != a)
                    .collect();
                others.shuffle(&mut rng);
                others.truncate(n_colour_choices - 1);
                others.push(a);
                others
            };
            let mut choices: Vec<String> = pool.iter().map(|s| s.to_string()).collect();
            choices.shuffle(&mut rng);
            let k = choices.iter().position(|c| c == a).unwrap_or(0);
            d.task = Some(Task::Mcq.as_str().into());
            d.problem = Some(format!("<image>{q}\n{}", render_options(&choices)));
            d.answer = Some(Answer::Text(letter(k).to_string()));
            d.meta
                .insert("answer_text".into(), Value::String(a.to_string()));
            d.choices = choices;
        }
        out.push(Ok(Row {
            item: d,
            origin: origin(line),
        }));
    }

    if ctx.opt_bool("grounding", true) {
        let prompt = ctx
            .opt_str("grounding_prompt")
            .unwrap_or(GROUNDING_PROMPT)
            .to_string();
        let threshold = ctx.opt_int("threshold", 60).max(0) as u32;
        let named: Vec<(i64, Names)> = names.into_iter().collect();
        let derived: Vec<Option<Result<Row<Draft>, Reject>>> = named
            .par_iter()
            .map(|(id, n)| grounding_row(ctx, &split, *id, n, &img_path(*id), &prompt, threshold))
            .collect();
        out.extend(derived.into_iter().flatten());
    }
    Ok(out)
}

fn learn_names(n: &mut Names, q: &str, a: &str) {
    let find = |w: &str, set: &[&'static str]| set.iter().copied().find(|s| *s == w);
    let words: Vec<&str> = q
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| !w.is_empty())
        .collect();
    let shapes: Vec<_> = words
        .iter()
        .filter_map(|w| find(w, &EASY_VQA_SHAPES))
        .collect();
    let colours: Vec<_> = words
        .iter()
        .filter_map(|w| find(w, &EASY_VQA_COLOURS))
        .collect();
    if let Some(s) = find(a, &EASY_VQA_SHAPES) {
        // "what is the red shape?" -> circle: the question presupposes the colour too.
        Names::add(&mut n.shapes, s);
        if let [c] = colours[..] {
            Names::add(&mut n.colours, c);
        }
    } else if let Some(c) = find(a, &EASY_VQA_COLOURS) {
        // "what color is the triangle?" -> blue: and the shape.
        Names::add(&mut n.colours, c);
        if let [s] = shapes[..] {
            Names::add(&mut n.shapes, s);
        }
    } else {
        let negated = words.iter().any(|w| *w == "not" || *w == "no");
        if (a == "yes") == negated {
            return; // says absent: no evidence of what is there
        }
        if let [s] = shapes[..] {
            Names::add(&mut n.shapes, s);
        }
        if let [c] = colours[..] {
            Names::add(&mut n.colours, c);
        }
    }
}

fn grounding_row(
    ctx: &Ctx,
    split: &str,
    id: i64,
    n: &Names,
    img: &PathBuf,
    prompt: &str,
    threshold: u32,
) -> Option<Result<Row<Draft>, Reject>> {
    let origin = Origin {
        file: std::sync::Arc::new(img.clone()),
        line: 1,
    };
    let reject = |why: String| Some(Err(Reject::new(&origin, Stage::Ingest, why)));
    if n.shapes.len() > 1 || n.colours.len() > 1 {
        return reject(format!(
            "image {id}: its questions name shapes {:?} and colours {:?}",
            n.shapes, n.colours
        ));
    }
    let (Some(shape), Some(colour)) = (n.shapes.first(), n.colours.first()) else {
        return None;
    };
    let rgb = match image::open(img) {
        Ok(im) => im.to_rgb8(),
        Err(e) => return reject(format!("image {id}: cannot decode {}: {e}", img.display())),
    };
    let Some(bx) = shape_box(&rgb, threshold) else {
        return reject(format!("image {id}: no pixel differs from the background"));
    };
    let mut meta = Map::new();
    meta.insert("image_id".into(), Value::from(id));
    meta.insert("split".into(), Value::String(split.to_string()));
    meta.insert("derived".into(), Value::String("shape_box".into()));
    meta.insert("question_line".into(), Value::from(n.first_line));
    Some(Ok(Row {
        item: Draft {
            id: Some(format!("{}-{split}-box{id}", ctx.name)),
            source: Some(ctx.name.clone()),
            task: Some(Task::Grounding.as_str().into()),
            images: vec![img.to_string_lossy().into_owned()],
            problem: Some(prompt.replace("{colour}", colour).replace("{shape}", shape)),
            answer: Some(Answer::Json(Value::Array(vec![Value::Array(
                bx.iter().map(|&v| json_number(v as f64)).collect(),
            )]))),
            frame: Some(Frame::Abs),
            image_size: Some([rgb.width(), rgb.height()]),
            meta,
            ..Draft::default()
        },
        origin,
    }))
}
