//! Colours shared by the charts.

/// Tableau-10 colours, for lines: distinct on white and for common colour-vision deficiencies.
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

/// Muted colours for bars (seaborn's "deep" palette).
pub const BARS: [[u8; 3]; 6] = [
    [66, 114, 196],
    [221, 132, 82],
    [85, 168, 104],
    [196, 78, 82],
    [129, 114, 178],
    [147, 120, 96],
];

pub const WHITE: [u8; 3] = [255, 255, 255];
pub const BLACK: [u8; 3] = [0, 0, 0];
/// Text and axes of the bar charts.
pub const INK: [u8; 3] = [30, 30, 30];
/// Grid lines of the bar charts.
pub const BAR_GRID: [u8; 3] = [220, 220, 220];
/// Grid lines of the line charts.
pub const LINE_GRID: [u8; 3] = [228, 228, 228];
