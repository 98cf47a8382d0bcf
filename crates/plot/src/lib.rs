//! # mixed-r1-plot
//!
//! The one plotting module of Mixed-R1, at the bottom of the crate graph: the synthetic chart and
//! shape images of the training data (`mixed-r1-data`'s synth), the data card's histograms, the
//! eval reports' share charts and the training curves are all drawn here.
//!
//! * [`canvas`]: an RGB canvas with solid shapes, lines and text in the embedded `font8x8`
//!   bitmap font (scaled by an integer factor), so nothing depends on system fonts and every
//!   image is the same on every machine;
//! * [`line`]: line charts of series over steps (axes with "nice" ticks, legend, labels);
//! * [`bars`]: grouped bar charts of counts or of shares (0-100 %);
//! * [`ticks`]: 1/2/5 x 10^k tick values and their labels;
//! * [`png`]: PNG encoding and writing.
//!
//! The synthetic images are training data: the canvas's drawing must never change a pixel of
//! them (`crates/data/tests/synth_pixels.rs` pins them).

pub mod bars;
pub mod canvas;
pub mod line;
pub mod palette;
pub mod png;
pub mod ticks;

pub use bars::{bar_chart, count_bars, share_bars, BarChart, Scale};
pub use canvas::{text_width, Canvas, PixelBox};
pub use line::{line_chart, PlotOptions, Series};
pub use palette::PALETTE;
pub use png::{encode_png, write_png};
pub use ticks::{nice_ticks, tick_label};
