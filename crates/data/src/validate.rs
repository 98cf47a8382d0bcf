//! Validate: a normalised sample is kept only when a trainer can use it. Its images exist and
//! decode (the first image's `[width, height]` is recorded as `image_size`), and its answer
//! parses for its task with the reward crate's **own** parsers, so a kept sample never scores a
//! skip: `yes_no` needs a yes/no polarity, `mcq` an option letter (within its choices) or the
//! text of one choice, `numeric` exactly one number, `math` a parseable expression, `chart` a
//! number or non-empty text, `grounding` boxes with area that lie inside the frame of the image
//! (original pixels for `abs`, the smart-resized image for `abs_resized`, 0..1000 for `rel1000`,
//! 0..1 for `rel1`; one unit of slack for rounding), `open_ended` non-empty text. A `reward`
//! override must name a reward, and the answer must parse for it. Multiple-choice samples need
//! 2 to 26 distinct choices (when they list any).
//!
//! Every failure is a [`Reject`] at [`Stage::Validate`] with the row's file, line, id and a
//! reason; [`validate_all`] checks rows in parallel and keeps their order.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use mixed_r1_reward::chart::chart_accuracy;
use mixed_r1_reward::iou::{gold_boxes, gold_boxes_text, smart_resize, BBox, Frame};
use mixed_r1_reward::matching::{mcq_accuracy, yes_no_polarity};
use mixed_r1_reward::math::math_accuracy;
use mixed_r1_reward::number::gold_number;
use mixed_r1_reward::{RewardConfig, RewardKind};
use rayon::prelude::*;
use serde_json::Value;

use crate::schema::{Answer, Reject, Row, Sample, Stage, Task};

/// What validation checks.
#[derive(Debug, Clone)]
pub struct ValidateOptions {
    /// Decode every image (not just its header) and record the first one's size.
    pub check_images: bool,
    /// Check that image files exist (implied by `check_images`). Off only for text-only checks
    /// of rows whose images live elsewhere.
    pub check_exists: bool,
    /// Folder that relative image paths are resolved against (default: as they are, i.e. the
    /// current folder; adapters already resolve them against their source's root).
    pub image_root: Option<PathBuf>,
    /// The reward settings the answers must parse under (math limits, default box frame,
    /// smart-resize parameters).
    pub reward: RewardConfig,
}

impl Default for ValidateOptions {
    fn default() -> Self {
        ValidateOptions {
            check_images: true,
            check_exists: true,
            image_root: None,
            reward: RewardConfig::default(),
        }
    }
}

impl ValidateOptions {
    /// Text fields only: no file is opened.
    pub fn text_only() -> Self {
        ValidateOptions {
            check_images: false,
            check_exists: false,
            ..ValidateOptions::default()
        }
    }
}

/// Validates one row.
pub fn validate(row: Row<Sample>, opts: &ValidateOptions) -> Result<Row<Sample>, Reject> {
    Validator::new(opts).check(row)
}

/// Validates rows in parallel; kept rows and rejects each stay in input order.
pub fn validate_all(
    rows: Vec<Row<Sample>>,
    opts: &ValidateOptions,
) -> (Vec<Row<Sample>>, Vec<Reject>) {
    let v = Validator::new(opts);
    let results: Vec<Result<Row<Sample>, Reject>> = rows
        .into_par_iter()
        .with_min_len(64)
        .map(|r| v.check(r))
        .collect();
    let mut kept = Vec::with_capacity(results.len());
    let mut rejected = Vec::new();
    for r in results {
        match r {
            Ok(row) => kept.push(row),
            Err(rej) => rejected.push(rej),
        }
    }
    (kept, rejected)
}

/// A validator with a cache of decoded image sizes, so an image shared by many samples (ten
/// questions about one picture) is decoded once. Share it across threads.
pub struct Validator<'a> {
    opts: &'a ValidateOptions,
    sizes: Mutex<HashMap<PathBuf, Result<[u32; 2], String>>>,
}

impl<'a> Validator<'a> {
    pub fn new(opts: &'a ValidateOptions) -> Self {
        Validator {
            opts,
            sizes: Mutex::new(HashMap::new()),
        }
    }

    pub fn check(&self, row: Row<Sample>) -> Result<Row<Sample>, Reject> {
        let Row { mut item, origin } = row;
        let id = item.id.clone();
        let reject = |why: String| {
            let mut r = Reject::new(&origin, Stage::Validate, why);
            r.id = Some(id.clone());
            r
        };
        if let Err(why) = self.check_images(&mut item) {
            return Err(reject(why));
        }
        if let Err(why) = check_answer(&item, &self.opts.reward) {
            return Err(reject(why));
        }
        Ok(Row { item, origin })
    }

    fn check_images(&self, s: &mut Sample) -> Result<(), String> {
        if !(self.opts.check_images || self.opts.check_exists) {
            return Ok(());
        }
        for (i, img) in s.images.iter().enumerate() {
            if img.contains("://") || img.starts_with("data:") {
                return Err(format!("image {img:?} is a URL; fetch it to a file first"));
            }
            let path = match &self.opts.image_root {
                Some(root) if Path::new(img).is_relative() => root.join(img),
                _ => PathBuf::from(img),
            };
            if !path.is_file() {
                return Err(format!("image not found: {}", path.display()));
            }
            if !self.opts.check_images {
                continue;
            }
            let size = self.decoded_size(&path)?;
            if i == 0 {
                match s.image_size {
                    Some(given) if given != size => {
                        return Err(format!(
                            "image_size {given:?} does not match the image's {size:?} ({})",
                            path.display()
                        ))
                    }
                    _ => s.image_size = Some(size),
                }
            }
        }
        Ok(())
    }

    fn decoded_size(&self, path: &Path) -> Result<[u32; 2], String> {
        if let Some(r) = self.sizes.lock().ok().and_then(|m| m.get(path).cloned()) {
            return r;
        }
        let r = decode_size(path);
        if let Ok(mut m) = self.sizes.lock() {
            m.insert(path.to_path_buf(), r.clone());
        }
        r
    }
}

/// Decodes the whole image (a truncated file fails here, not only a bad header).
pub fn decode_size(path: &Path) -> Result<[u32; 2], String> {
    let reader = image::ImageReader::open(path)
        .and_then(|r| r.with_guessed_format())
        .map_err(|e| format!("cannot read image {}: {e}", path.display()))?;
    let img = reader
        .decode()
        .map_err(|e| format!("cannot decode image {}: {e}", path.display()))?;
    Ok([img.width(), img.height()])
}

/// The answer check for the sample's reward (its override, else its task).
pub fn check_answer(s: &Sample, cfg: &RewardConfig) -> Result<(), String> {
    let kind = match &s.reward {
        Some(r) => RewardKind::from_name(r).ok_or_else(|| format!("unknown reward {r:?}"))?,
        None => RewardKind::from_name(s.task.as_str())
            .ok_or_else(|| format!("unknown task {}", s.task))?,
    };
    let what = s.reward.as_deref().unwrap_or(s.task.as_str());
    if kind != RewardKind::Iou {
        let text_ok = match &s.answer {
            Answer::Text(_) => true,
            // Several option letters: ["A", "C"].
            Answer::Json(Value::Array(items)) => {
                kind == RewardKind::Mcq && items.iter().all(Value::is_string)
            }
            Answer::Json(_) => false,
        };
        if !text_ok {
            return Err(format!(
                "a {what} answer must be text, not {}",
                clip(&s.answer.text())
            ));
        }
    }
    if !s.choices.is_empty() || kind == RewardKind::Mcq {
        check_choices(s)?;
    }
    let gold = s.answer.text();
    let skip = |e: mixed_r1_reward::Skip| format!("{what}: {}", e.0);
    match kind {
        RewardKind::YesNo => {
            yes_no_polarity(&gold)
                .ok_or_else(|| format!("yes_no answer {:?} is not yes or no", clip(&gold)))?;
        }
        RewardKind::Mcq => {
            let t = gold
                .trim()
                .trim_start_matches('(')
                .trim_end_matches([')', '.']);
            if t.len() == 1 && t.as_bytes()[0].is_ascii_uppercase() && !s.choices.is_empty() {
                let k = (t.as_bytes()[0] - b'A') as usize;
                if k >= s.choices.len() {
                    return Err(format!(
                        "answer letter {t} is beyond the {} choices (A-{})",
                        s.choices.len(),
                        (b'A' + s.choices.len() as u8 - 1) as char
                    ));
                }
            }
            mcq_accuracy("", &gold, &s.choices).map_err(skip)?;
        }
        RewardKind::Numeric => {
            gold_number(&gold).map_err(skip)?;
        }
        RewardKind::Math => {
            math_accuracy("", &gold, &cfg.math).map_err(skip)?;
        }
        RewardKind::Chart => {
            chart_accuracy("", &gold, &cfg.chart).map_err(skip)?;
        }
        RewardKind::Iou => check_boxes(s, cfg)?,
        RewardKind::Bmas => {
            if gold.trim().is_empty() {
                return Err(format!("{what} answer is empty"));
            }
        }
    }
    Ok(())
}

fn check_choices(s: &Sample) -> Result<(), String> {
    let n = s.choices.len();
    if s.task == Task::Mcq && n == 1 {
        return Err("an mcq sample needs at least 2 choices, not 1".into());
    }
    if n > 26 {
        return Err(format!("{n} choices: at most 26 (A-Z) can be lettered"));
    }
    for i in 0..n {
        for j in i + 1..n {
            if s.choices[i].eq_ignore_ascii_case(&s.choices[j]) {
                return Err(format!(
                    "choices {} and {} are the same ({:?})",
                    i + 1,
                    j + 1,
                    clip(&s.choices[i])
                ));
            }
        }
    }
    Ok(())
}

fn check_boxes(s: &Sample, cfg: &RewardConfig) -> Result<(), String> {
    let boxes: Vec<BBox> = match &s.answer {
        Answer::Text(t) => gold_boxes_text(t),
        Answer::Json(v) => gold_boxes(v),
    }
    .map_err(|e| format!("grounding: {}", e.0))?;
    let frame = s.frame.unwrap_or(cfg.iou.frame);
    // The extent boxes of this frame must lie in, and the slack allowed for rounding.
    let extent: Option<([f64; 2], f64)> = match frame {
        Frame::Rel1000 => Some(([1000.0, 1000.0], 1.0)),
        Frame::Rel1 => Some(([1.0, 1.0], 0.001)),
        Frame::Abs => s.image_size.map(|[w, h]| ([w as f64, h as f64], 1.0)),
        Frame::AbsResized => match s.image_size {
            Some([w, h]) => {
                let (rh, rw) = smart_resize(
                    h as f64,
                    w as f64,
                    cfg.iou.factor,
                    cfg.iou.min_pixels,
                    cfg.iou.max_pixels,
                )?;
                Some(([rw as f64, rh as f64], 1.0))
            }
            None => return Err("an abs_resized box needs the image_size".into()),
        },
    };
    for b in &boxes {
        let [x1, y1, x2, y2] = *b;
        if !b.iter().all(|v| v.is_finite()) || x2 <= x1 || y2 <= y1 {
            return Err(format!(
                "box {} has no area (needs x1 < x2 and y1 < y2)",
                fmt_box(b)
            ));
        }
        if let Some(([w, h], slack)) = extent {
            if x1 < -slack || y1 < -slack || x2 > w + slack || y2 > h + slack {
                let frame_desc = match frame {
                    Frame::Abs => format!("the {w}x{h} image"),
                    Frame::AbsResized => format!("the {w}x{h} resized image"),
                    Frame::Rel1000 => "the 0..1000 frame".into(),
                    Frame::Rel1 => "the 0..1 frame".into(),
                };
                return Err(format!("box {} lies outside {frame_desc}", fmt_box(b)));
            }
        }
    }
    Ok(())
}

fn fmt_box(b: &BBox) -> String {
    format!("[{}, {}, {}, {}]", b[0], b[1], b[2], b[3])
}

fn clip(s: &str) -> String {
    crate::adapters::clip(s)
}
