//! Grouped bar charts: one group of bars per label, one bar per series, a legend along the
//! bottom. Two scales: counts (grid lines at thirds of the largest count, as the data card's
//! histograms use) and shares in `[0, 1]` drawn as percentages with each bar labelled (the eval
//! reports).

use crate::canvas::{text_width, Canvas};
use crate::palette::{BARS, BAR_GRID, INK, WHITE};

/// What the bar heights are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// Counts: the axis runs to the largest value, with three grid lines labelled with counts.
    Counts,
    /// Shares in `[0, 1]` (clamped), drawn 0-100 % with grid lines every 25 % and each bar
    /// labelled with its percentage; a missing value is marked `n/a`.
    Shares,
}

/// A grouped bar chart: `groups[g].1[s]` is series `s` in group `g`; a group's label may have
/// several lines (`\n`).
#[derive(Debug, Clone, Copy)]
pub struct BarChart<'a> {
    pub title: &'a str,
    pub groups: &'a [(String, Vec<Option<f64>>)],
    pub series: &'a [String],
    pub scale: Scale,
    /// `(width, height)`; `None`: wide enough for the groups and the title, 312 pixels high.
    pub size: Option<(u32, u32)>,
}

/// Draws a bar chart.
pub fn bar_chart(chart: &BarChart<'_>) -> Canvas {
    let BarChart {
        title,
        groups,
        series,
        scale,
        size,
    } = *chart;
    let n_series = series.len().max(1);
    let label_lines = groups
        .iter()
        .map(|(g, _)| g.split('\n').count())
        .max()
        .unwrap_or(1)
        .max(1);
    let (width, height) = size.unwrap_or_else(|| {
        let slot_w = (n_series as u32 * 34 + 24).max(
            groups
                .iter()
                .flat_map(|(g, _)| g.split('\n').map(|p| text_width(p, 1) + 12))
                .max()
                .unwrap_or(0),
        );
        let width = (64 + slot_w * groups.len().max(1) as u32 + 16)
            .max(text_width(title, 2) + 24)
            .max(320);
        (width, 312)
    });
    let mut c = Canvas::new(width, height, WHITE);
    let title_scale = if text_width(title, 2) + 8 <= width {
        2
    } else {
        1
    };
    c.text_centred(width as f64 / 2.0, 8, title, title_scale, INK);
    let (left, right, top) = (56.0, width as f64 - 12.0, 44.0);
    // Room below the axis: the group labels, then the legend.
    let base = height as f64 - (34 + 11 * label_lines) as f64;

    // Grid lines with their values, so bar heights can be read.
    let max = match scale {
        Scale::Shares => 1.0,
        Scale::Counts => groups
            .iter()
            .flat_map(|g| g.1.iter().flatten().copied())
            .fold(0.0, f64::max)
            .max(1.0),
    };
    let grid: Vec<(f64, String)> = match scale {
        Scale::Shares => (1..=4)
            .map(|k| (k as f64 / 4.0, format!("{}%", k * 25)))
            .collect(),
        Scale::Counts => (1..=3)
            .map(|k| (k as f64 / 3.0, compact((max * k as f64 / 3.0).round())))
            .collect(),
    };
    if scale == Scale::Shares {
        c.text(
            left as i64 - 6 - text_width("0%", 1) as i64,
            base as i64 - 4,
            "0%",
            1,
            INK,
        );
    }
    for (frac, label) in &grid {
        let y = base - (base - top) * frac;
        c.line((left, y), (right, y), 1, BAR_GRID);
        c.text(
            left as i64 - 6 - text_width(label, 1) as i64,
            y as i64 - 4,
            label,
            1,
            INK,
        );
    }
    c.line((left, base), (right, base), 1, INK);

    let slot = (right - left) / groups.len().max(1) as f64;
    let bar_w = ((slot * 0.8) / n_series as f64).clamp(1.0, 40.0);
    // A pixel of white between neighbouring bars when they are wide enough to spare it.
    let inset = i64::from(bar_w >= 4.0);
    for (g, (name, values)) in groups.iter().enumerate() {
        let used = bar_w * values.len() as f64;
        let x0 = left + slot * g as f64 + (slot - used) / 2.0;
        for (s, v) in values.iter().enumerate() {
            let x = x0 + bar_w * s as f64;
            let cx = x + bar_w / 2.0;
            match v {
                Some(v) => {
                    let v = v.clamp(0.0, max);
                    let h = v / max * (base - top);
                    c.fill_rect(
                        x.round() as i64 + inset,
                        (base - h).round() as i64,
                        (x + bar_w).round() as i64 - inset,
                        base as i64,
                        BARS[s % BARS.len()],
                    );
                    if scale == Scale::Shares {
                        let t = format!("{:.0}", 100.0 * v);
                        c.text_centred(cx, (base - h) as i64 - 10, &t, 1, INK);
                    }
                }
                None => c.text_centred(cx, base as i64 - 10, "n/a", 1, INK),
            }
        }
        for (k, part) in name.split('\n').enumerate() {
            let y = base as i64 + 8 + 11 * k as i64;
            c.text_centred(left + slot * (g as f64 + 0.5), y, part, 1, INK);
        }
    }

    // Legend along the bottom.
    let mut x = left as i64;
    for (s, name) in series.iter().enumerate() {
        let y = height as i64 - 18;
        c.fill_rect(x, y, x + 10, y + 10, BARS[s % BARS.len()]);
        c.text(x + 14, y + 1, name, 1, INK);
        x += 14 + text_width(name, 1) as i64 + 18;
    }
    c
}

/// A bar chart of counts (`groups[g].1[s]`: series `s` in group `g`), `width` x `height`.
pub fn count_bars(
    title: &str,
    groups: &[(String, Vec<usize>)],
    series: &[String],
    width: u32,
    height: u32,
) -> Canvas {
    let groups: Vec<(String, Vec<Option<f64>>)> = groups
        .iter()
        .map(|(g, v)| (g.clone(), v.iter().map(|&n| Some(n as f64)).collect()))
        .collect();
    bar_chart(&BarChart {
        title,
        groups: &groups,
        series,
        scale: Scale::Counts,
        size: Some((width, height)),
    })
}

/// A bar chart of shares in `[0, 1]`, drawn as labelled percentages, sized for its groups;
/// `None` leaves a gap marked `n/a`.
pub fn share_bars(title: &str, groups: &[(String, Vec<Option<f64>>)], series: &[String]) -> Canvas {
    bar_chart(&BarChart {
        title,
        groups,
        series,
        scale: Scale::Shares,
        size: None,
    })
}

/// `12345` -> `12k`: grid labels stay narrow.
fn compact(v: f64) -> String {
    let v = v.max(0.0) as usize;
    if v >= 10_000 {
        format!("{}k", v / 1000)
    } else {
        v.to_string()
    }
}
