//! PNG line plots of a metric per task over steps (e.g. `reward/<task>`), drawn with the
//! `image` crate and the embedded `font8x8` bitmap font, so a training run leaves readable
//! figures on a machine with no Python, no plotting library and no system fonts.
//!
//! One line per series, a legend on the right, axes with "nice" tick values (1, 2, 5 × 10^k)
//! and labels, and an optional title and axis labels.

use std::path::Path;

use font8x8::UnicodeFonts;
use image::{Rgb, RgbImage};
use serde_json::Value;

use crate::{GrpoError, Result};

/// One line of the plot.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    /// `(x, y)` points; non-finite ones are skipped (they break the line).
    pub points: Vec<(f64, f64)>,
}

/// Figure options.
#[derive(Debug, Clone)]
pub struct PlotOptions {
    pub width: u32,
    pub height: u32,
    pub title: String,
    pub x_label: String,
    pub y_label: String,
}

impl Default for PlotOptions {
    fn default() -> Self {
        PlotOptions {
            width: 900,
            height: 540,
            title: String::new(),
            x_label: "step".into(),
            y_label: String::new(),
        }
    }
}

/// Tableau-10 colours: distinct on white and for common colour-vision deficiencies.
pub const PALETTE: [[u8; 3]; 10] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
];

const WHITE: [u8; 3] = [255, 255, 255];
const BLACK: [u8; 3] = [0, 0, 0];
const GRID: [u8; 3] = [228, 228, 228];

/// Series `<prefix>/<task>` of every task found in JSONL metric records (keys sorted), e.g.
/// `per_task_series(&records, "reward")` for `reward/mcq`, `reward/grounding`, ...; the
/// batch-wide `<prefix>/mean` and `<prefix>/std` are not tasks and are left out.
pub fn per_task_series(records: &[Value], prefix: &str) -> Vec<Series> {
    let head = format!("{prefix}/");
    let mut names = std::collections::BTreeSet::new();
    for r in records {
        if let Some(obj) = r.as_object() {
            for k in obj.keys() {
                if let Some(task) = k.strip_prefix(&head) {
                    if !task.is_empty() && task != "mean" && task != "std" {
                        names.insert(task.to_string());
                    }
                }
            }
        }
    }
    names
        .into_iter()
        .map(|task| Series {
            points: crate::metrics::series(records, &format!("{head}{task}")),
            name: task,
        })
        .collect()
}

/// Tick values covering `[lo, hi]` at a 1/2/5 × 10^k spacing, about `target` of them.
pub fn nice_ticks(lo: f64, hi: f64, target: usize) -> (Vec<f64>, f64) {
    let span = (hi - lo).abs().max(f64::MIN_POSITIVE);
    let raw = span / target.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    let ticks = (first..=last).map(|i| i as f64 * step).collect();
    (ticks, step)
}

/// A tick label with just enough decimals for the spacing (`0.25`, `100`, `1.5e-4`).
pub fn tick_label(v: f64, step: f64) -> String {
    let v = if v.abs() < step * 1e-9 { 0.0 } else { v };
    if step >= 1.0 && v.abs() < 1e7 {
        format!("{v:.0}")
    } else if step >= 1e-4 {
        let decimals = (-step.log10().floor()).max(0.0) as usize + 1;
        let s = format!("{v:.decimals$}");
        // Trim zeros a 1/2/5 spacing does not need ("0.50" -> "0.5").
        let s = s.trim_end_matches('0').trim_end_matches('.').to_string();
        if s == "-0" {
            "0".into()
        } else {
            s
        }
    } else {
        format!("{v:.1e}")
    }
}

struct Canvas {
    img: RgbImage,
}

impl Canvas {
    fn put(&mut self, x: i64, y: i64, c: [u8; 3]) {
        if x >= 0 && y >= 0 && (x as u32) < self.img.width() && (y as u32) < self.img.height() {
            self.img.put_pixel(x as u32, y as u32, Rgb(c));
        }
    }

    fn rect(&mut self, x1: i64, y1: i64, x2: i64, y2: i64, c: [u8; 3]) {
        for y in y1..y2 {
            for x in x1..x2 {
                self.put(x, y, c);
            }
        }
    }

    fn line(&mut self, a: (f64, f64), b: (f64, f64), thickness: i64, c: [u8; 3]) {
        let steps = (b.0 - a.0).abs().max((b.1 - a.1).abs()).ceil().max(1.0) as i64;
        let half = thickness / 2;
        for i in 0..=steps {
            let t = i as f64 / steps as f64;
            let x = (a.0 + (b.0 - a.0) * t).round() as i64;
            let y = (a.1 + (b.1 - a.1) * t).round() as i64;
            for dy in -half..thickness - half {
                for dx in -half..thickness - half {
                    self.put(x + dx, y + dy, c);
                }
            }
        }
    }

    /// Text with its top-left at `(x, y)`; `vertical` draws it rotated 90° counter-clockwise
    /// (reading bottom to top), for the y-axis label.
    fn text(&mut self, x: i64, y: i64, text: &str, scale: i64, c: [u8; 3], vertical: bool) {
        for (i, ch) in text.chars().enumerate() {
            let glyph = font8x8::BASIC_FONTS.get(ch).unwrap_or([0; 8]);
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..8i64 {
                    if bits & (1 << col) == 0 {
                        continue;
                    }
                    for dy in 0..scale {
                        for dx in 0..scale {
                            let (u, v) =
                                ((i as i64 * 8 + col) * scale + dx, row as i64 * scale + dy);
                            if vertical {
                                self.put(x + v, y - u, c);
                            } else {
                                self.put(x + u, y + v, c);
                            }
                        }
                    }
                }
            }
        }
    }
}

fn text_width(text: &str, scale: i64) -> i64 {
    text.chars().count() as i64 * 8 * scale
}

/// Draws the series into an image.
pub fn render(series: &[Series], opts: &PlotOptions) -> RgbImage {
    let (w, h) = (opts.width.max(200) as i64, opts.height.max(150) as i64);
    let mut cv = Canvas {
        img: RgbImage::from_pixel(w as u32, h as u32, Rgb(WHITE)),
    };
    let finite = |p: &&(f64, f64)| p.0.is_finite() && p.1.is_finite();
    let all: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|s| s.points.iter().filter(finite).copied())
        .collect();
    let (mut x0, mut x1, mut y0, mut y1) = if all.is_empty() {
        (0.0, 1.0, 0.0, 1.0)
    } else {
        all.iter().fold(
            (
                f64::INFINITY,
                f64::NEG_INFINITY,
                f64::INFINITY,
                f64::NEG_INFINITY,
            ),
            |(a, b, c, d), &(x, y)| (a.min(x), b.max(x), c.min(y), d.max(y)),
        )
    };
    if x1 - x0 <= 0.0 {
        (x0, x1) = (x0 - 0.5, x1 + 0.5);
    }
    if y1 - y0 <= 0.0 {
        let pad = if y0 == 0.0 { 0.5 } else { y0.abs() * 0.1 };
        (y0, y1) = (y0 - pad, y1 + pad);
    }
    // A little headroom so lines do not sit on the frame.
    let pad = (y1 - y0) * 0.05;
    (y0, y1) = (y0 - pad, y1 + pad);

    let (yticks, ystep) = nice_ticks(y0, y1, 6);
    let (xticks, xstep) = nice_ticks(x0, x1, 8);
    let ylabels: Vec<String> = yticks.iter().map(|v| tick_label(*v, ystep)).collect();
    let ylabel_w = ylabels.iter().map(|l| text_width(l, 1)).max().unwrap_or(0);

    let legend_w = series
        .iter()
        .map(|s| text_width(&s.name, 1))
        .max()
        .unwrap_or(0)
        + 40;
    let left = 20 + if opts.y_label.is_empty() { 0 } else { 16 } + ylabel_w + 8;
    let right = w - legend_w - 20;
    let top = if opts.title.is_empty() { 20 } else { 44 };
    let bottom = h - if opts.x_label.is_empty() { 30 } else { 50 };
    let px = |x: f64| left as f64 + (x - x0) / (x1 - x0) * (right - left) as f64;
    let py = |y: f64| bottom as f64 - (y - y0) / (y1 - y0) * (bottom - top) as f64;

    // Grid and ticks.
    for (v, label) in yticks.iter().zip(&ylabels) {
        let y = py(*v).round() as i64;
        cv.rect(left, y, right, y + 1, GRID);
        cv.rect(left - 5, y, left, y + 1, BLACK);
        cv.text(
            left - 8 - text_width(label, 1),
            y - 4,
            label,
            1,
            BLACK,
            false,
        );
    }
    for v in &xticks {
        let x = px(*v).round() as i64;
        cv.rect(x, top, x + 1, bottom, GRID);
        cv.rect(x, bottom, x + 1, bottom + 5, BLACK);
        let label = tick_label(*v, xstep);
        cv.text(
            x - text_width(&label, 1) / 2,
            bottom + 9,
            &label,
            1,
            BLACK,
            false,
        );
    }
    // Frame.
    cv.rect(left, top, right + 1, top + 1, BLACK);
    cv.rect(left, bottom, right + 1, bottom + 1, BLACK);
    cv.rect(left, top, left + 1, bottom + 1, BLACK);
    cv.rect(right, top, right + 1, bottom + 1, BLACK);

    // Lines (and a dot per point, so a one-point series is visible).
    for (i, s) in series.iter().enumerate() {
        let c = PALETTE[i % PALETTE.len()];
        let mut prev: Option<(f64, f64)> = None;
        for p in &s.points {
            if !(p.0.is_finite() && p.1.is_finite()) {
                prev = None;
                continue;
            }
            let q = (px(p.0), py(p.1));
            if let Some(a) = prev {
                cv.line(a, q, 2, c);
            }
            cv.rect(
                q.0 as i64 - 1,
                q.1 as i64 - 1,
                q.0 as i64 + 2,
                q.1 as i64 + 2,
                c,
            );
            prev = Some(q);
        }
    }

    // Legend.
    for (i, s) in series.iter().enumerate() {
        let c = PALETTE[i % PALETTE.len()];
        let y = top + 8 + i as i64 * 16;
        cv.rect(right + 14, y + 3, right + 34, y + 5, c);
        cv.text(right + 40, y, &s.name, 1, BLACK, false);
    }

    // Title and axis labels.
    if !opts.title.is_empty() {
        let tw = text_width(&opts.title, 2);
        cv.text(
            (left + right) / 2 - tw / 2,
            12,
            &opts.title,
            2,
            BLACK,
            false,
        );
    }
    if !opts.x_label.is_empty() {
        let tw = text_width(&opts.x_label, 1);
        cv.text(
            (left + right) / 2 - tw / 2,
            bottom + 28,
            &opts.x_label,
            1,
            BLACK,
            false,
        );
    }
    if !opts.y_label.is_empty() {
        let tw = text_width(&opts.y_label, 1);
        cv.text(
            12,
            (top + bottom) / 2 + tw / 2,
            &opts.y_label,
            1,
            BLACK,
            true,
        );
    }
    cv.img
}

/// Renders and writes a PNG.
pub fn save_png(series: &[Series], opts: &PlotOptions, path: &Path) -> Result<()> {
    let img = render(series, opts);
    img.save_with_format(path, image::ImageFormat::Png)
        .map_err(|e| match e {
            image::ImageError::IoError(io) => GrpoError::io(path, io),
            other => GrpoError::Image(other),
        })
}

/// Plots `<metric>/<task>` from JSONL metric records into `path`, one line per task.
pub fn plot_metric_per_task(records: &[Value], metric: &str, path: &Path) -> Result<()> {
    let series = per_task_series(records, metric);
    let opts = PlotOptions {
        title: format!("{metric} per task"),
        y_label: metric.to_string(),
        ..Default::default()
    };
    save_png(&series, &opts, path)
}
