//! Grounding: IoU between predicted and gold boxes, in any coordinate frame.
//!
//! Coordinate conventions are the first cause of a grounding reward stuck at 0, so every sample
//! declares them: `frame` for the gold boxes and `pred_frame` for the model's, one of
//!
//! | frame         | meaning                                                                   |
//! |---------------|---------------------------------------------------------------------------|
//! | `abs`         | pixels of the original image                                              |
//! | `abs_resized` | pixels of the Qwen2.5-VL smart-resized image (factor 28, min/max pixels)  |
//! | `rel1000`     | 0..1000 of width and height (Qwen2-VL, InternVL)                          |
//! | `rel1`        | 0..1 of width and height                                                  |
//!
//! Both sides are mapped to original pixels (`image_size: [width, height]`) and clamped to the
//! image; invalid boxes are dropped (DESIGN.md): inverted ones (`x2 < x1` or `y2 < y1`), ones with
//! no area after clamping, and ones with a coordinate or an area that is not finite (`NaN`,
//! `1e400`; `1e308` without an image size to clamp to). `reorder = true` puts an inverted box's
//! corners in order instead of dropping it (the behaviour before; off by default). Several boxes are matched one to
//! one optimally (Hungarian method) and the matched scores summed and divided by
//! `max(#gold, #pred)`, so extra boxes cost as much as missing ones. Per pair the score is the IoU
//! (`continuous`) or `IoU >= threshold` (`threshold`).
//!
//! Anti-hacking: more than `max_boxes` predicted boxes score 0, and so does a predicted box
//! covering more than `max_area_ratio` of the image when no gold box covers half of it.
//! A gold of `[]` is a negative sample: the answer must hold no box.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::number::clip;
use crate::{Accuracy, Skip};

/// A coordinate frame, see the module docs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Frame {
    #[default]
    Abs,
    AbsResized,
    Rel1000,
    Rel1,
}

impl Frame {
    pub const NAMES: &'static [&'static str] = &["abs", "abs_resized", "rel1000", "rel1"];

    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IouMode {
    #[default]
    Continuous,
    Threshold,
}

/// How several predicted boxes are scored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MultiBox {
    /// Optimal one-to-one matching, sum of matched scores / max(#gold, #pred).
    #[default]
    Match,
    /// Only the first predicted box counts, against its best gold box (VLM-R1's REC reward).
    First,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IouConfig {
    pub mode: IouMode,
    pub threshold: f64,
    pub multi_box: MultiBox,
    pub max_boxes: usize,
    pub max_area_ratio: f64,
    /// Frame of gold boxes when a sample does not say.
    pub frame: Frame,
    /// Frame of predicted boxes when a sample does not say; unset means the gold's frame.
    pub pred_frame: Option<Frame>,
    /// Put the corners of an inverted box in order (`[110, 20, 10, 220]` read as
    /// `[10, 20, 110, 220]`) instead of dropping it. Off by default: DESIGN.md drops invalid
    /// boxes, and a reward that repairs them teaches a policy that corner order does not matter.
    pub reorder: bool,
    /// Qwen2.5-VL smart-resize parameters for `abs_resized`.
    pub factor: u32,
    pub min_pixels: u64,
    pub max_pixels: u64,
}

impl Default for IouConfig {
    fn default() -> Self {
        IouConfig {
            mode: IouMode::Continuous,
            threshold: 0.5,
            multi_box: MultiBox::Match,
            max_boxes: 20,
            max_area_ratio: 0.9,
            frame: Frame::Abs,
            pred_frame: None,
            reorder: false,
            factor: 28,
            min_pixels: 3136,
            max_pixels: 12_845_056,
        }
    }
}

/// An axis-aligned box `[x1, y1, x2, y2]`.
pub type BBox = [f64; 4];

/// The per-sample facts the IoU reward needs beyond the texts.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BoxContext {
    pub frame: Option<Frame>,
    pub pred_frame: Option<Frame>,
    /// `[width, height]` of the original image.
    pub image_size: Option<[f64; 2]>,
}

/// Qwen2.5-VL's `smart_resize` as transformers computes it: the `(height, width)` the image
/// processor resizes an image to. Python's `round` rounds half to even, and so does this.
pub fn smart_resize(
    height: f64,
    width: f64,
    factor: u32,
    min_pixels: u64,
    max_pixels: u64,
) -> Result<(u64, u64), String> {
    if !(height >= 1.0 && width >= 1.0 && height.is_finite() && width.is_finite()) {
        return Err(format!("image size {width}x{height} is not a valid size"));
    }
    if height.max(width) / height.min(width) > 200.0 {
        return Err(format!(
            "image size {width}x{height}: aspect ratio over 200 is rejected by Qwen2.5-VL"
        ));
    }
    let f = factor.max(1) as f64;
    let mut h = (height / f).round_ties_even() * f;
    let mut w = (width / f).round_ties_even() * f;
    if h * w > max_pixels as f64 {
        let beta = (height * width / max_pixels as f64).sqrt();
        h = f.max((height / beta / f).floor() * f);
        w = f.max((width / beta / f).floor() * f);
    } else if h * w < min_pixels as f64 {
        let beta = (min_pixels as f64 / (height * width)).sqrt();
        h = (height * beta / f).ceil() * f;
        w = (width * beta / f).ceil() * f;
    }
    Ok((h as u64, w as u64))
}

/// Boxes written in a model's answer, in order: `[x1, y1, x2, y2]` (bare, in JSON such as
/// `{"bbox_2d": [...]}`, in lists, in ```json fences, InternVL's `<box>[[...]]</box>`),
/// `(x1, y1), (x2, y2)` (Qwen's `<|box_start|>…<|box_end|>`) and `(x1, y1, x2, y2)`.
/// Integers or floats.
pub fn parse_boxes(text: &str) -> Vec<BBox> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(off) = memchr::memchr2(b'[', b'(', &b[pos..]) {
        let start = pos + off;
        let parsed = if b[start] == b'[' {
            parse_tuple::<4>(b, start, b'[', b']')
        } else {
            parse_paren_box(b, start)
        };
        match parsed {
            Some((bx, end)) => {
                out.push(bx);
                pos = end;
            }
            None => pos = start + 1,
        }
    }
    out
}

fn parse_paren_box(b: &[u8], start: usize) -> Option<(BBox, usize)> {
    if let Some((bx, end)) = parse_tuple::<4>(b, start, b'(', b')') {
        return Some((bx, end));
    }
    let ([x1, y1], mut i) = parse_tuple::<2>(b, start, b'(', b')')?;
    i = skip_ws(b, i);
    if b.get(i) == Some(&b',') {
        i = skip_ws(b, i + 1);
    }
    let ([x2, y2], end) = parse_tuple::<2>(b, i, b'(', b')')?;
    Some(([x1, y1, x2, y2], end))
}

/// `open n, n, ..., n close` with exactly N numbers.
fn parse_tuple<const N: usize>(
    b: &[u8],
    start: usize,
    open: u8,
    close: u8,
) -> Option<([f64; N], usize)> {
    if b.get(start) != Some(&open) {
        return None;
    }
    let mut vals = [0.0; N];
    let mut i = start + 1;
    for (k, v) in vals.iter_mut().enumerate() {
        i = skip_ws(b, i);
        if k > 0 {
            if b.get(i) != Some(&b',') {
                return None;
            }
            i = skip_ws(b, i + 1);
        }
        let (x, next) = parse_float(b, i)?;
        *v = x;
        i = next;
    }
    i = skip_ws(b, i);
    (b.get(i) == Some(&close)).then_some((vals, i + 1))
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// A JSON-style number at `i`: `-12`, `3.5`, `1e3`.
fn parse_float(b: &[u8], start: usize) -> Option<(f64, usize)> {
    let mut i = start;
    if matches!(b.get(i), Some(b'-' | b'+')) {
        i += 1;
    }
    let digits_from = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let mut had_digits = i > digits_from;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let frac_from = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        had_digits |= i > frac_from;
    }
    if !had_digits {
        return None;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(b.get(j), Some(b'-' | b'+')) {
            j += 1;
        }
        let exp_from = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        if j > exp_from {
            i = j;
        }
    }
    // Only ASCII was consumed, so this slice is valid UTF-8.
    let s = std::str::from_utf8(&b[start..i]).ok()?;
    s.parse::<f64>().ok().map(|v| (v, i))
}

/// Gold boxes from a sample's `answer`: a box, a list of boxes, `{"bbox_2d": [...]}` objects, or
/// a string holding any of the syntaxes of [`parse_boxes`]. `[]` is a negative sample.
pub fn gold_boxes(answer: &Value) -> Result<Vec<BBox>, Skip> {
    let bad = || {
        Skip::new(format!(
            "gold answer {} is not a box or a list of boxes",
            clip(&answer.to_string())
        ))
    };
    match answer {
        Value::String(s) => gold_boxes_text(s),
        Value::Array(items) if items.is_empty() => Ok(Vec::new()),
        Value::Array(items) if items.iter().all(Value::is_number) => {
            json_box(answer).map(|b| vec![b]).ok_or_else(bad)
        }
        Value::Array(items) => items.iter().map(|v| json_box(v).ok_or_else(bad)).collect(),
        Value::Object(_) => json_box(answer).map(|b| vec![b]).ok_or_else(bad),
        _ => Err(bad()),
    }
}

/// Gold boxes written as text, e.g. `"[10, 20, 30, 40]"` or `"[]"`.
pub fn gold_boxes_text(s: &str) -> Result<Vec<BBox>, Skip> {
    let boxes = parse_boxes(s);
    if boxes.is_empty() && s.trim() != "[]" {
        return Err(Skip::new(format!("gold answer {:?} holds no box", clip(s))));
    }
    Ok(boxes)
}

fn json_box(v: &Value) -> Option<BBox> {
    match v {
        Value::Array(a) if a.len() == 4 => {
            let mut out = [0.0; 4];
            for (o, x) in out.iter_mut().zip(a) {
                *o = x.as_f64()?;
            }
            Some(out)
        }
        Value::Object(m) => ["bbox_2d", "bbox", "box"]
            .iter()
            .find_map(|k| m.get(*k))
            .and_then(json_box),
        _ => None,
    }
}

/// Where boxes of a frame land: a scale to original pixels and the image extent to clamp to.
#[derive(Debug, Clone, Copy)]
struct Mapping {
    sx: f64,
    sy: f64,
    /// `[width, height]` of the target space, when known.
    extent: Option<[f64; 2]>,
}

fn mapping(frame: Frame, [w, h]: [f64; 2], cfg: &IouConfig) -> Result<Mapping, String> {
    let (sx, sy) = match frame {
        Frame::Abs => (1.0, 1.0),
        Frame::Rel1 => (w, h),
        Frame::Rel1000 => (w / 1000.0, h / 1000.0),
        Frame::AbsResized => {
            let (rh, rw) = smart_resize(h, w, cfg.factor, cfg.min_pixels, cfg.max_pixels)?;
            (w / rw as f64, h / rh as f64)
        }
    };
    Ok(Mapping {
        sx,
        sy,
        extent: Some([w, h]),
    })
}

/// `bx` written in frame `from` rewritten in frame `to` for an image of `[width, height]`
/// original pixels (the frames of [`Frame`]; `abs_resized` with `cfg`'s smart-resize
/// parameters), through original pixels. Pixel and 0-1000 frames come out rounded to integers
/// (what a model writes), `rel1` to 4 decimals. `None` when the size is unusable.
pub fn convert_box(
    bx: BBox,
    from: Frame,
    to: Frame,
    image_size: [f64; 2],
    cfg: &IouConfig,
) -> Option<BBox> {
    if from == to {
        return Some(bx);
    }
    let a = mapping(from, image_size, cfg).ok()?;
    let b = mapping(to, image_size, cfg).ok()?;
    let round = |v: f64| match to {
        Frame::Rel1 => (v * 1e4).round() / 1e4,
        _ => v.round(),
    };
    let [x1, y1, x2, y2] = bx;
    Some([
        round(x1 * a.sx / b.sx),
        round(y1 * a.sy / b.sy),
        round(x2 * a.sx / b.sx),
        round(y2 * a.sy / b.sy),
    ])
}

/// Without an image size both sides must share a frame; the comparison then happens in it.
fn same_frame_mapping(frame: Frame) -> Mapping {
    let extent = match frame {
        Frame::Rel1 => Some([1.0, 1.0]),
        Frame::Rel1000 => Some([1000.0, 1000.0]),
        Frame::Abs | Frame::AbsResized => None,
    };
    Mapping {
        sx: 1.0,
        sy: 1.0,
        extent,
    }
}

fn valid_size(size: Option<[f64; 2]>) -> Result<Option<[f64; 2]>, Skip> {
    match size {
        Some([w, h]) if !(w.is_finite() && h.is_finite() && w > 0.0 && h > 0.0) => Err(Skip::new(
            format!("image_size [{w}, {h}] is not a positive [width, height]"),
        )),
        s => Ok(s),
    }
}

/// Maps a box to the common space and clamps it to the image. Dropped (`None`): a box with a
/// coordinate that is not finite, an inverted box (`x2 < x1` or `y2 < y1`; with `reorder` its
/// corners are put in order instead), and a box with no area, or an infinite one, after clamping
/// (`[0, 0, 1e308, 1e308]` without an image size to clamp to).
fn place(bx: BBox, m: Mapping, reorder: bool) -> Option<BBox> {
    if !bx.iter().all(|v| v.is_finite()) {
        return None;
    }
    let [mut x1, mut y1, mut x2, mut y2] = bx;
    if reorder {
        (x1, x2) = (x1.min(x2), x1.max(x2));
        (y1, y2) = (y1.min(y2), y1.max(y2));
    }
    let (mut x1, mut x2) = (x1 * m.sx, x2 * m.sx);
    let (mut y1, mut y2) = (y1 * m.sy, y2 * m.sy);
    if let Some([w, h]) = m.extent {
        x1 = x1.clamp(0.0, w);
        x2 = x2.clamp(0.0, w);
        y1 = y1.clamp(0.0, h);
        y2 = y2.clamp(0.0, h);
    }
    let b = [x1, y1, x2, y2];
    (x2 > x1 && y2 > y1 && area(&b).is_finite()).then_some(b)
}

fn area(b: &BBox) -> f64 {
    (b[2] - b[0]) * (b[3] - b[1])
}

/// Intersection over union of two valid boxes.
pub fn iou(a: &BBox, b: &BBox) -> f64 {
    let iw = a[2].min(b[2]) - a[0].max(b[0]);
    let ih = a[3].min(b[3]) - a[1].max(b[1]);
    if iw <= 0.0 || ih <= 0.0 {
        return 0.0;
    }
    let inter = iw * ih;
    let union = area(a) + area(b) - inter;
    if union <= 0.0 {
        0.0
    } else {
        (inter / union).clamp(0.0, 1.0)
    }
}

/// IoU accuracy of the boxes in `pred` against `gold` (already parsed with [`gold_boxes`]).
pub fn iou_accuracy(pred: &str, gold: &[BBox], ctx: &BoxContext, cfg: &IouConfig) -> Accuracy {
    let gold_frame = ctx.frame.unwrap_or(cfg.frame);
    let pred_frame = ctx.pred_frame.or(cfg.pred_frame).unwrap_or(gold_frame);
    let size = valid_size(ctx.image_size)?;
    let (gm, pm) = match size {
        Some(wh) => (
            mapping(gold_frame, wh, cfg).map_err(Skip)?,
            mapping(pred_frame, wh, cfg).map_err(Skip)?,
        ),
        None if gold_frame == pred_frame => {
            let m = same_frame_mapping(gold_frame);
            (m, m)
        }
        None => {
            return Err(Skip::new(format!(
                "image_size is needed to compare boxes in frame {} with boxes in frame {}",
                pred_frame.name(),
                gold_frame.name()
            )))
        }
    };
    let golds: Vec<BBox> = gold
        .iter()
        .filter_map(|b| place(*b, gm, cfg.reorder))
        .collect();
    if golds.is_empty() && !gold.is_empty() {
        return Err(Skip::new(
            "no gold box is a valid box inside the image (inverted, empty or not finite)",
        ));
    }
    let raw = parse_boxes(pred);
    if raw.len() > cfg.max_boxes {
        return Ok(0.0);
    }
    let preds: Vec<BBox> = raw
        .into_iter()
        .filter_map(|b| place(b, pm, cfg.reorder))
        .collect();
    if golds.is_empty() {
        return Ok(if preds.is_empty() { 1.0 } else { 0.0 });
    }
    if preds.is_empty() {
        return Ok(0.0);
    }
    if let Some([w, h]) = gm.extent {
        let image = w * h;
        let gold_is_large = golds.iter().any(|g| area(g) >= 0.5 * image);
        if !gold_is_large && preds.iter().any(|p| area(p) > cfg.max_area_ratio * image) {
            return Ok(0.0);
        }
    }
    let pair = |p: &BBox, g: &BBox| {
        let v = iou(p, g);
        match cfg.mode {
            IouMode::Continuous => v,
            IouMode::Threshold => {
                if v >= cfg.threshold {
                    1.0
                } else {
                    0.0
                }
            }
        }
    };
    let score = match cfg.multi_box {
        MultiBox::First => golds.iter().map(|g| pair(&preds[0], g)).fold(0.0, f64::max),
        MultiBox::Match => {
            let total = if golds.len() == 1 && preds.len() == 1 {
                pair(&preds[0], &golds[0])
            } else {
                let w: Vec<Vec<f64>> = preds
                    .iter()
                    .map(|p| golds.iter().map(|g| pair(p, g)).collect())
                    .collect();
                max_weight_matching(&w)
            };
            total / golds.len().max(preds.len()) as f64
        }
    };
    Ok(score.clamp(0.0, 1.0))
}

/// The largest sum of weights over one-to-one pairs of rows and columns (Hungarian method with
/// potentials, O(n²m)). Weights are in [0, 1].
pub fn max_weight_matching(w: &[Vec<f64>]) -> f64 {
    let rows = w.len();
    let cols = w.first().map_or(0, Vec::len);
    if rows == 0 || cols == 0 {
        return 0.0;
    }
    // The method needs rows <= cols; transpose otherwise.
    if rows > cols {
        let t: Vec<Vec<f64>> = (0..cols)
            .map(|j| (0..rows).map(|i| w[i][j]).collect())
            .collect();
        return max_weight_matching(&t);
    }
    let (n, m) = (rows, cols);
    let cost = |i: usize, j: usize| -w[i - 1][j - 1];
    let mut u = vec![0.0f64; n + 1];
    let mut v = vec![0.0f64; m + 1];
    let mut p = vec![0usize; m + 1]; // p[j]: row matched to column j (0 = none)
    let mut way = vec![0usize; m + 1];
    for i in 1..=n {
        p[0] = i;
        let mut j0 = 0usize;
        let mut minv = vec![f64::INFINITY; m + 1];
        let mut used = vec![false; m + 1];
        loop {
            used[j0] = true;
            let i0 = p[j0];
            let mut delta = f64::INFINITY;
            let mut j1 = 0usize;
            for j in 1..=m {
                if used[j] {
                    continue;
                }
                let cur = cost(i0, j) - u[i0] - v[j];
                if cur < minv[j] {
                    minv[j] = cur;
                    way[j] = j0;
                }
                if minv[j] < delta {
                    delta = minv[j];
                    j1 = j;
                }
            }
            if j1 == 0 {
                break; // unreachable with finite weights; guards against NaN
            }
            for j in 0..=m {
                if used[j] {
                    u[p[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
            if p[j0] == 0 {
                break;
            }
        }
        while j0 != 0 {
            let j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
        }
    }
    (1..=m)
        .filter(|&j| p[j] != 0)
        .map(|j| w[p[j] - 1][j - 1])
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn convert_box_maps_between_frames_and_scores_full_marks() {
        let cfg = IouConfig::default();
        let size = [640.0, 480.0];
        let gold = [64.0, 48.0, 320.0, 240.0];
        assert_eq!(
            convert_box(gold, Frame::Abs, Frame::Rel1000, size, &cfg),
            Some([100.0, 100.0, 500.0, 500.0])
        );
        assert_eq!(
            convert_box(gold, Frame::Abs, Frame::Rel1, size, &cfg),
            Some([0.1, 0.1, 0.5, 0.5])
        );
        // A small budget forces a real resize: 640x480 -> 112x84 at factor 28, 12,544 pixels.
        let small = IouConfig {
            max_pixels: 12_544,
            ..IouConfig::default()
        };
        let r = convert_box(gold, Frame::Abs, Frame::AbsResized, size, &small).unwrap();
        let (rh, rw) = smart_resize(480.0, 640.0, 28, 3136, 12_544).unwrap();
        assert_eq!(
            r,
            [
                (64.0 * rw as f64 / 640.0).round(),
                (48.0 * rh as f64 / 480.0).round(),
                (320.0 * rw as f64 / 640.0).round(),
                (240.0 * rh as f64 / 480.0).round()
            ]
        );
        // A converted gold, written by the policy in its frame, scores (near) full IoU.
        for (frame, c) in [(Frame::Rel1000, &cfg), (Frame::AbsResized, &small)] {
            let b = convert_box(gold, Frame::Abs, frame, size, c).unwrap();
            let ctx = BoxContext {
                frame: Some(Frame::Abs),
                pred_frame: Some(frame),
                image_size: Some(size),
            };
            let pred = format!("[{}, {}, {}, {}]", b[0], b[1], b[2], b[3]);
            let acc = iou_accuracy(&pred, &[gold], &ctx, c);
            assert!(matches!(acc, Ok(x) if x > 0.9), "{frame:?}: {acc:?}");
        }
        assert_eq!(
            convert_box(gold, Frame::Abs, Frame::Abs, size, &cfg),
            Some(gold)
        );
    }

    #[test]
    fn smart_resize_matches_transformers_examples() {
        let d = IouConfig::default();
        let r = |h, w| smart_resize(h, w, d.factor, d.min_pixels, d.max_pixels).unwrap();
        assert_eq!(r(480.0, 640.0), (476, 644));
        assert_eq!(r(28.0, 28.0), (56, 56));
        assert_eq!(r(1080.0, 1920.0), (1092, 1932));
        assert!(smart_resize(1.0, 500.0, 28, 3136, 12845056).is_err());
    }

    #[test]
    fn matching_is_optimal() {
        // Greedy would take 0.9 and then 0.0; the optimum is 0.8 + 0.8.
        let w = vec![vec![0.9, 0.8], vec![0.8, 0.0]];
        assert!((max_weight_matching(&w) - 1.6).abs() < 1e-12);
        let w = vec![vec![0.1], vec![0.7], vec![0.3]];
        assert!((max_weight_matching(&w) - 0.7).abs() < 1e-12);
    }

    #[test]
    fn box_syntaxes() {
        let want = vec![[10.0, 20.0, 30.0, 40.0]];
        for s in [
            "[10, 20, 30, 40]",
            r#"{"bbox_2d": [10, 20, 30, 40], "label": "cup"}"#,
            "```json\n[{\"bbox_2d\": [10.0, 20.0, 30.0, 40.0]}]\n```",
            "<box>[[10, 20, 30, 40]]</box>",
            "<|box_start|>(10,20),(30,40)<|box_end|>",
            "(10, 20, 30, 40)",
            "the box is [ 10 ,20, 30,40 ]!",
        ] {
            assert_eq!(parse_boxes(s), want, "{s}");
        }
        assert_eq!(
            parse_boxes("[1, 2, 3] (1, 2) [a, b, c, d]"),
            Vec::<BBox>::new()
        );
        assert_eq!(parse_boxes("[[1,2,3,4],[5,6,7,8]]").len(), 2);
    }

    #[test]
    fn invalid_boxes_are_dropped_unless_reorder() {
        let gold = [[10.0, 20.0, 110.0, 220.0]];
        let ctx = BoxContext {
            image_size: Some([640.0, 480.0]),
            ..Default::default()
        };
        let d = IouConfig::default();
        let r = IouConfig {
            reorder: true,
            ..Default::default()
        };
        let acc = |p: &str, cfg: &IouConfig| iou_accuracy(p, &gold, &ctx, cfg).unwrap();
        // Inverted in x, in y, in both: dropped by default, repaired with `reorder`.
        for p in [
            "[110, 20, 10, 220]",
            "[10, 220, 110, 20]",
            "[110, 220, 10, 20]",
        ] {
            assert_eq!(acc(p, &d), 0.0, "{p}");
            assert_eq!(acc(p, &r), 1.0, "{p}");
        }
        // Zero area, in any mode.
        for p in [
            "[10, 20, 10, 220]",
            "[10, 20, 110, 20]",
            "[700, 20, 800, 220]",
        ] {
            assert_eq!(acc(p, &d), 0.0, "{p}");
            assert_eq!(acc(p, &r), 0.0, "{p}");
        }
        // A dropped box still counts as a predicted box for nothing: the valid one is matched.
        assert_eq!(acc("[10, 20, 110, 220] [110, 20, 10, 220]", &d), 1.0);
        // An inverted gold is unusable: the sample skips.
        assert!(iou_accuracy("[1, 1, 5, 5]", &[[5.0, 5.0, 1.0, 1.0]], &ctx, &d).is_err());
        assert!(iou_accuracy("[1, 1, 5, 5]", &[[5.0, 5.0, 1.0, 1.0]], &ctx, &r).is_ok());
    }

    #[test]
    fn huge_and_non_finite_boxes() {
        let d = IouConfig::default();
        // No image size: nothing to clamp to, so an infinite area is invalid, never NaN.
        let none = BoxContext::default();
        let gold = [[0.0, 0.0, 10.0, 10.0]];
        for p in [
            "[0, 0, 1e308, 1e308]",
            "[-1e308, -1e308, 1e308, 1e308]",
            "[0, 0, 1e400, 10]",
            "[0, 0, 10, 10.5e999]",
        ] {
            assert_eq!(iou_accuracy(p, &gold, &none, &d), Ok(0.0), "{p}");
        }
        assert!(iou_accuracy("[0,0,10,10]", &[[0.0, 0.0, 1e308, 1e308]], &none, &d).is_err());
        // With an image size a huge box clamps to the whole image: the anti-hacking rule.
        let sized = BoxContext {
            image_size: Some([640.0, 480.0]),
            ..Default::default()
        };
        assert_eq!(
            iou_accuracy("[0, 0, 1e308, 1e308]", &gold, &sized, &d),
            Ok(0.0)
        );
        let big_gold = [[0.0, 0.0, 640.0, 480.0]];
        assert_eq!(
            iou_accuracy("[-1e308, -1e308, 1e308, 1e308]", &big_gold, &sized, &d),
            Ok(1.0)
        );
    }
}
