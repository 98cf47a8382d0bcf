//! Chart scenes: bar and line charts rendered from numbers, with value labels drawn on the chart,
//! and three questions each (a value, the extreme, and a difference or a count) whose answers are
//! computed from the same numbers the chart shows. Half the charts use real numbers (matplotlib's
//! `Stocks.csv`, one value per year) when the asset is given; the rest, and all without it, use
//! generated numbers.

use image::RgbImage;
use rand::seq::IndexedRandom;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use super::stocks::Stocks;
use super::Question;
use crate::schema::{Answer, Task};
use mixed_r1_plot::{text_width, Canvas};

pub const WIDTH: u32 = 320;
pub const HEIGHT: u32 = 240;

const BAR_COLOURS: [[u8; 3]; 5] = [
    [66, 114, 196],
    [221, 132, 82],
    [85, 168, 104],
    [196, 78, 82],
    [129, 114, 178],
];
const INK: [u8; 3] = [30, 30, 30];

/// A chart's data: labels on the x axis and values held in tenths so that every sum and
/// difference is exact.
struct Data {
    title: String,
    /// What the labels are ("year", "day", ...), used in question text.
    axis: &'static str,
    labels: Vec<String>,
    tenths: Vec<i64>,
    /// Whether the values are shown with one decimal.
    decimal: bool,
    /// The ticker, for real stock data.
    ticker: Option<String>,
}

impl Data {
    fn show(&self, tenths: i64) -> String {
        if self.decimal {
            let sign = if tenths < 0 { "-" } else { "" };
            format!("{sign}{}.{}", tenths.abs() / 10, tenths.abs() % 10)
        } else {
            (tenths / 10).to_string()
        }
    }
}

fn stock_data(rng: &mut ChaCha8Rng, stocks: &Stocks, n: usize) -> Option<Data> {
    let usable: Vec<_> = stocks
        .series
        .iter()
        .filter(|s| s.years.len() >= n)
        .collect();
    let series = usable.choose(rng)?;
    let start = rng.random_range(0..=series.years.len() - n);
    let window = &series.years[start..start + n];
    // Prices under 100 keep one decimal (a 0.4 close rounded to 0 would say nothing).
    let decimal = window.iter().any(|&(_, v)| v < 100.0);
    let tenths = window
        .iter()
        .map(|&(_, v)| {
            if decimal {
                (v * 10.0).round() as i64
            } else {
                v.round() as i64 * 10
            }
        })
        .collect();
    Some(Data {
        title: format!("{} (USD)", series.ticker),
        axis: "year",
        labels: window.iter().map(|(y, _)| y.to_string()).collect(),
        tenths,
        decimal,
        ticker: Some(series.ticker.clone()),
    })
}

fn generated_data(rng: &mut ChaCha8Rng, n: usize) -> Data {
    const TITLES: [&str; 6] = [
        "Sales",
        "Visitors",
        "Rainfall mm",
        "Orders",
        "Downloads",
        "Score",
    ];
    let (axis, labels): (&'static str, Vec<String>) = match rng.random_range(0..3) {
        0 => {
            let start = rng.random_range(1980..2016);
            (
                "year",
                (start..start + n as i32).map(|y| y.to_string()).collect(),
            )
        }
        1 => (
            "day",
            ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"][..n.min(7)]
                .iter()
                .map(|s| s.to_string())
                .collect(),
        ),
        _ => (
            "category",
            [
                "Apple", "Pear", "Plum", "Kiwi", "Lime", "Fig", "Date", "Peach",
            ][..n.min(8)]
                .iter()
                .map(|s| s.to_string())
                .collect(),
        ),
    };
    let decimal = rng.random_bool(0.3);
    let mut tenths: Vec<i64> = Vec::with_capacity(labels.len());
    while tenths.len() < labels.len() {
        let v = if decimal {
            rng.random_range(10..1000)
        } else {
            rng.random_range(1..100) * 10
        };
        if !tenths.contains(&v) {
            tenths.push(v);
        }
    }
    Data {
        title: TITLES.choose(rng).unwrap().to_string(),
        axis,
        labels,
        tenths,
        decimal,
        ticker: None,
    }
}

/// Renders one chart and asks its three questions; returns the image, the questions and whether
/// the numbers were real.
pub fn scene(
    rng: &mut ChaCha8Rng,
    stocks: Option<&Stocks>,
    line: bool,
) -> (RgbImage, Vec<Question>, bool) {
    let n = if line {
        rng.random_range(5..=7)
    } else {
        rng.random_range(4..=6)
    };
    // Half the charts use real numbers when they are there: the stock series allow only a few
    // thousand distinct charts, which dedup would otherwise thin out at 200,000 candidates.
    let real = stocks.filter(|_| rng.random_bool(0.5));
    let data = match real.and_then(|s| stock_data(rng, s, n)) {
        Some(d) => d,
        None => generated_data(rng, n),
    };
    let colour = *BAR_COLOURS.choose(rng).unwrap();
    let img = if line {
        draw_line(&data, colour)
    } else {
        draw_bars(&data, colour)
    };
    let questions = questions(rng, &data, line);
    (img, questions, data.ticker.is_some())
}

/// The scale (2, else 1) at which `text` fits in `room` pixels.
fn fit(text: &str, room: f64) -> u32 {
    if text_width(text, 2) as f64 <= room {
        2
    } else {
        1
    }
}

struct Frame {
    left: f64,
    right: f64,
    top: f64,
    base: f64,
}

const FRAME: Frame = Frame {
    left: 14.0,
    right: WIDTH as f64 - 14.0,
    top: 44.0,
    base: HEIGHT as f64 - 34.0,
};

fn draw_axes(canvas: &mut Canvas, data: &Data) {
    let s = fit(&data.title, WIDTH as f64 - 8.0);
    canvas.text_centred(WIDTH as f64 / 2.0, 8, &data.title, s, INK);
    canvas.line((FRAME.left, FRAME.base), (FRAME.right, FRAME.base), 2, INK);
}

fn draw_labels(canvas: &mut Canvas, data: &Data, centres: &[f64], slot: f64) {
    for (label, &cx) in data.labels.iter().zip(centres) {
        let s = fit(label, slot - 2.0);
        canvas.text_centred(cx, FRAME.base as i64 + 8, label, s, INK);
    }
}

fn draw_bars(data: &Data, colour: [u8; 3]) -> RgbImage {
    let mut canvas = Canvas::new(WIDTH, HEIGHT, [255, 255, 255]);
    draw_axes(&mut canvas, data);
    let n = data.tenths.len() as f64;
    let slot = (FRAME.right - FRAME.left) / n;
    let max = *data.tenths.iter().max().unwrap() as f64;
    // Leave room above the tallest bar for its value label.
    let room = FRAME.base - FRAME.top - 20.0;
    let mut centres = Vec::new();
    for (i, &v) in data.tenths.iter().enumerate() {
        let cx = FRAME.left + slot * (i as f64 + 0.5);
        centres.push(cx);
        let h = (v as f64 / max * room).max(1.0);
        let top = FRAME.base - h;
        canvas.fill_rect(
            (cx - slot * 0.3).round() as i64,
            top.round() as i64,
            (cx + slot * 0.3).round() as i64,
            FRAME.base as i64,
            colour,
        );
        let label = data.show(v);
        let s = fit(&label, slot - 2.0);
        canvas.text_centred(cx, top as i64 - 4 - 8 * s as i64, &label, s, INK);
    }
    draw_labels(&mut canvas, data, &centres, slot);
    canvas.img
}

fn draw_line(data: &Data, colour: [u8; 3]) -> RgbImage {
    let mut canvas = Canvas::new(WIDTH, HEIGHT, [255, 255, 255]);
    draw_axes(&mut canvas, data);
    let n = data.tenths.len() as f64;
    let slot = (FRAME.right - FRAME.left) / n;
    let max = *data.tenths.iter().max().unwrap() as f64;
    let min = *data.tenths.iter().min().unwrap() as f64;
    let span = (max - min).max(1.0);
    let (low, high) = (FRAME.base - 12.0, FRAME.top + 16.0);
    let points: Vec<(f64, f64)> = data
        .tenths
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            (
                FRAME.left + slot * (i as f64 + 0.5),
                low - (v as f64 - min) / span * (low - high),
            )
        })
        .collect();
    for pair in points.windows(2) {
        canvas.line(pair[0], pair[1], 2, colour);
    }
    for (&(x, y), &v) in points.iter().zip(&data.tenths) {
        canvas.fill_rect(
            x as i64 - 3,
            y as i64 - 3,
            x as i64 + 4,
            y as i64 + 4,
            colour,
        );
        // Value labels at 1x: line charts put labels close together.
        canvas.text_centred(x, y as i64 - 14, &data.show(v), 1, INK);
    }
    let centres: Vec<f64> = points.iter().map(|p| p.0).collect();
    draw_labels(&mut canvas, data, &centres, slot);
    canvas.img
}

fn chart_q(template: &str, problem: String, answer: String) -> Question {
    Question {
        task: Task::Chart,
        template: template.to_string(),
        problem,
        answer: Answer::Text(answer),
        choices: Vec::new(),
        grounding: None,
    }
}

fn questions(rng: &mut ChaCha8Rng, data: &Data, line: bool) -> Vec<Question> {
    let kind = if line { "line chart" } else { "bar chart" };
    let of = data
        .ticker
        .as_deref()
        .map(|t| format!(" of {t}"))
        .unwrap_or_default();
    let mut out = Vec::with_capacity(3);

    let i = rng.random_range(0..data.labels.len());
    out.push(chart_q(
        "chart.value",
        format!(
            "<image>According to the {kind}, what is the value{of} for {} {}?",
            data.axis, data.labels[i]
        ),
        data.show(data.tenths[i]),
    ));

    let max = *data.tenths.iter().max().unwrap();
    let min = *data.tenths.iter().min().unwrap();
    let count_of = |v: i64| data.tenths.iter().filter(|&&t| t == v).count();
    let (word, target) = if count_of(max) == 1 && (count_of(min) > 1 || rng.random_bool(0.5)) {
        ("highest", max)
    } else if count_of(min) == 1 {
        ("lowest", min)
    } else {
        ("highest", max)
    };
    let at = data.tenths.iter().position(|&t| t == target).unwrap();
    out.push(chart_q(
        "chart.extreme",
        format!(
            "<image>In the {kind}, which {} has the {word} value?",
            data.axis
        ),
        data.labels[at].clone(),
    ));

    if line {
        // A threshold between shown values, so no point sits on it.
        let mut sorted = data.tenths.clone();
        sorted.sort_unstable();
        sorted.dedup();
        let k = rng.random_range(0..sorted.len());
        let threshold = sorted[k];
        let above = data.tenths.iter().filter(|&&t| t > threshold).count();
        out.push(chart_q(
            "chart.count_above",
            format!(
                "<image>In the {kind}, how many {} have a value above {}?",
                plural(data.axis),
                data.show(threshold)
            ),
            above.to_string(),
        ));
    } else {
        out.push(chart_q(
            "chart.range",
            format!("<image>In the {kind}, what is the difference between the highest and the lowest values?"),
            data.show(max - min),
        ));
    }
    out
}

fn plural(axis: &str) -> &'static str {
    match axis {
        "year" => "years",
        "day" => "days",
        _ => "categories",
    }
}
