//! Line charts of series over steps (e.g. `reward/<task>` per step): one line per series (and
//! a dot per point), a legend on the right, axes with "nice" tick values (1, 2, 5 × 10^k) and
//! labels, and an optional title and axis labels.

use image::RgbImage;

use crate::canvas::Canvas;
use crate::palette::{BLACK, LINE_GRID, PALETTE, WHITE};
use crate::ticks::{nice_ticks, tick_label};

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

/// `text_width` in the signed pixel coordinates the layout below computes in.
fn text_width(text: &str, scale: i64) -> i64 {
    crate::canvas::text_width(text, scale as u32) as i64
}

/// Draws the series into an image.
pub fn line_chart(series: &[Series], opts: &PlotOptions) -> RgbImage {
    let (w, h) = (opts.width.max(200) as i64, opts.height.max(150) as i64);
    let mut cv = Canvas::new(w as u32, h as u32, WHITE);
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
        cv.fill_rect(left, y, right, y + 1, LINE_GRID);
        cv.fill_rect(left - 5, y, left, y + 1, BLACK);
        cv.text(left - 8 - text_width(label, 1), y - 4, label, 1, BLACK);
    }
    for v in &xticks {
        let x = px(*v).round() as i64;
        cv.fill_rect(x, top, x + 1, bottom, LINE_GRID);
        cv.fill_rect(x, bottom, x + 1, bottom + 5, BLACK);
        let label = tick_label(*v, xstep);
        cv.text(x - text_width(&label, 1) / 2, bottom + 9, &label, 1, BLACK);
    }
    // Frame.
    cv.fill_rect(left, top, right + 1, top + 1, BLACK);
    cv.fill_rect(left, bottom, right + 1, bottom + 1, BLACK);
    cv.fill_rect(left, top, left + 1, bottom + 1, BLACK);
    cv.fill_rect(right, top, right + 1, bottom + 1, BLACK);

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
            cv.fill_rect(
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
        cv.fill_rect(right + 14, y + 3, right + 34, y + 5, c);
        cv.text(right + 40, y, &s.name, 1, BLACK);
    }

    // Title and axis labels.
    if !opts.title.is_empty() {
        let tw = text_width(&opts.title, 2);
        cv.text((left + right) / 2 - tw / 2, 12, &opts.title, 2, BLACK);
    }
    if !opts.x_label.is_empty() {
        let tw = text_width(&opts.x_label, 1);
        cv.text(
            (left + right) / 2 - tw / 2,
            bottom + 28,
            &opts.x_label,
            1,
            BLACK,
        );
    }
    if !opts.y_label.is_empty() {
        let tw = text_width(&opts.y_label, 1);
        cv.text_up(12, (top + bottom) / 2 + tw / 2, &opts.y_label, 1, BLACK);
    }
    cv.img
}
