//! A tiny raster canvas: solid shapes, lines and bitmap text on an RGB image.
//!
//! Every chart of the project is drawn on it, including the synthetic training images, whose
//! pixels must never change (`crates/data/tests/synth_pixels.rs`).
//!
//! Shapes are drawn without anti-aliasing on purpose: every pixel is either the shape's colour or
//! untouched, so the box a draw call returns is the exact extent of the shape's pixels and a
//! grounding answer derived from it is exact. Text uses the embedded `font8x8` bitmap font, scaled
//! by an integer factor, so nothing depends on system fonts.

use font8x8::UnicodeFonts;
use image::{Rgb, RgbImage};

/// A box in pixel edges: it covers the pixels `x1..x2` by `y1..y2` (right and bottom exclusive),
/// which is the convention of `[x1, y1, x2, y2]` boxes in `abs` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelBox {
    pub x1: u32,
    pub y1: u32,
    pub x2: u32,
    pub y2: u32,
}

impl PixelBox {
    pub fn to_vec(self) -> [u32; 4] {
        [self.x1, self.y1, self.x2, self.y2]
    }

    pub fn centre(self) -> (f64, f64) {
        (
            (self.x1 + self.x2) as f64 / 2.0,
            (self.y1 + self.y2) as f64 / 2.0,
        )
    }

    /// True when the two boxes, each grown by `margin` pixels, overlap.
    pub fn overlaps(self, other: PixelBox, margin: u32) -> bool {
        self.x1 < other.x2 + margin
            && other.x1 < self.x2 + margin
            && self.y1 < other.y2 + margin
            && other.y1 < self.y2 + margin
    }
}

/// Tracks the extent of the pixels a draw call set.
struct Extent {
    min_x: u32,
    min_y: u32,
    max_x: u32,
    max_y: u32,
    any: bool,
}

impl Extent {
    fn new() -> Self {
        Extent {
            min_x: u32::MAX,
            min_y: u32::MAX,
            max_x: 0,
            max_y: 0,
            any: false,
        }
    }

    fn add(&mut self, x: u32, y: u32) {
        self.min_x = self.min_x.min(x);
        self.min_y = self.min_y.min(y);
        self.max_x = self.max_x.max(x);
        self.max_y = self.max_y.max(y);
        self.any = true;
    }

    fn finish(self) -> Option<PixelBox> {
        self.any.then(|| PixelBox {
            x1: self.min_x,
            y1: self.min_y,
            x2: self.max_x + 1,
            y2: self.max_y + 1,
        })
    }
}

/// An RGB image to draw on; `img` is the result.
pub struct Canvas {
    pub img: RgbImage,
}

impl Canvas {
    pub fn new(width: u32, height: u32, background: [u8; 3]) -> Canvas {
        Canvas {
            img: RgbImage::from_pixel(width, height, Rgb(background)),
        }
    }

    pub fn width(&self) -> u32 {
        self.img.width()
    }

    pub fn height(&self) -> u32 {
        self.img.height()
    }

    #[inline]
    fn put(&mut self, x: i64, y: i64, colour: [u8; 3]) -> bool {
        if x >= 0 && y >= 0 && (x as u32) < self.img.width() && (y as u32) < self.img.height() {
            self.img.put_pixel(x as u32, y as u32, Rgb(colour));
            true
        } else {
            false
        }
    }

    /// Fills the pixels `x1..x2` by `y1..y2` (clipped to the canvas).
    pub fn fill_rect(
        &mut self,
        x1: i64,
        y1: i64,
        x2: i64,
        y2: i64,
        colour: [u8; 3],
    ) -> Option<PixelBox> {
        let mut ext = Extent::new();
        for y in y1.max(0)..y2.min(self.height() as i64) {
            for x in x1.max(0)..x2.min(self.width() as i64) {
                if self.put(x, y, colour) {
                    ext.add(x as u32, y as u32);
                }
            }
        }
        ext.finish()
    }

    /// Fills the pixels whose centres lie within `r` of `(cx, cy)`.
    pub fn fill_circle(&mut self, cx: f64, cy: f64, r: f64, colour: [u8; 3]) -> Option<PixelBox> {
        let mut ext = Extent::new();
        let (y0, y1) = ((cy - r).floor() as i64, (cy + r).ceil() as i64);
        let (x0, x1) = ((cx - r).floor() as i64, (cx + r).ceil() as i64);
        for y in y0..=y1 {
            for x in x0..=x1 {
                let (dx, dy) = (x as f64 + 0.5 - cx, y as f64 + 0.5 - cy);
                if dx * dx + dy * dy <= r * r && self.put(x, y, colour) {
                    ext.add(x as u32, y as u32);
                }
            }
        }
        ext.finish()
    }

    /// Fills the pixels whose centres lie inside the triangle (either winding).
    pub fn fill_triangle(&mut self, p: [(f64, f64); 3], colour: [u8; 3]) -> Option<PixelBox> {
        let edge = |a: (f64, f64), b: (f64, f64), x: f64, y: f64| {
            (b.0 - a.0) * (y - a.1) - (b.1 - a.1) * (x - a.0)
        };
        let min_x = p.iter().map(|q| q.0).fold(f64::INFINITY, f64::min).floor() as i64;
        let max_x = p
            .iter()
            .map(|q| q.0)
            .fold(f64::NEG_INFINITY, f64::max)
            .ceil() as i64;
        let min_y = p.iter().map(|q| q.1).fold(f64::INFINITY, f64::min).floor() as i64;
        let max_y = p
            .iter()
            .map(|q| q.1)
            .fold(f64::NEG_INFINITY, f64::max)
            .ceil() as i64;
        let mut ext = Extent::new();
        for y in min_y..=max_y {
            for x in min_x..=max_x {
                let (px, py) = (x as f64 + 0.5, y as f64 + 0.5);
                let e0 = edge(p[0], p[1], px, py);
                let e1 = edge(p[1], p[2], px, py);
                let e2 = edge(p[2], p[0], px, py);
                let inside =
                    (e0 >= 0.0 && e1 >= 0.0 && e2 >= 0.0) || (e0 <= 0.0 && e1 <= 0.0 && e2 <= 0.0);
                if inside && self.put(x, y, colour) {
                    ext.add(x as u32, y as u32);
                }
            }
        }
        ext.finish()
    }

    /// A line `thickness` pixels wide (square brush), by stepping along the longer axis.
    pub fn line(&mut self, a: (f64, f64), b: (f64, f64), thickness: u32, colour: [u8; 3]) {
        let steps = (b.0 - a.0).abs().max((b.1 - a.1).abs()).ceil().max(1.0) as i64;
        let half = thickness as i64 / 2;
        for i in 0..=steps {
            let t = i as f64 / steps as f64;
            let x = (a.0 + (b.0 - a.0) * t).round() as i64;
            let y = (a.1 + (b.1 - a.1) * t).round() as i64;
            for dy in -half..(thickness as i64 - half) {
                for dx in -half..(thickness as i64 - half) {
                    self.put(x + dx, y + dy, colour);
                }
            }
        }
    }

    /// Draws `text` with its top-left corner at `(x, y)`, each font pixel `scale` x `scale`.
    /// Characters the font lacks are drawn as blanks.
    pub fn text(&mut self, x: i64, y: i64, text: &str, scale: u32, colour: [u8; 3]) {
        glyph_pixels(text, scale, |u, v| {
            self.put(x + u, y + v, colour);
        });
    }

    /// Draws `text` rotated 90° counter-clockwise (reading bottom to top, as a y-axis label),
    /// starting at `(x, y)`: the glyphs' tops face left, the text runs upwards from `y`.
    pub fn text_up(&mut self, x: i64, y: i64, text: &str, scale: u32, colour: [u8; 3]) {
        glyph_pixels(text, scale, |u, v| {
            self.put(x + v, y - u, colour);
        });
    }

    /// Draws `text` centred horizontally on `cx`.
    pub fn text_centred(&mut self, cx: f64, y: i64, text: &str, scale: u32, colour: [u8; 3]) {
        let w = text_width(text, scale) as f64;
        self.text((cx - w / 2.0).round() as i64, y, text, scale, colour);
    }
}

/// Calls `f(u, v)` for every set pixel of `text` laid out left to right at `scale`, with `(u, v)`
/// the offset from the text's top-left corner.
fn glyph_pixels(text: &str, scale: u32, mut f: impl FnMut(i64, i64)) {
    let s = scale as i64;
    for (i, ch) in text.chars().enumerate() {
        let Some(glyph) = font8x8::BASIC_FONTS.get(ch) else {
            continue;
        };
        let ox = i as i64 * 8 * s;
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..8 {
                if bits & (1 << col) != 0 {
                    for dy in 0..s {
                        for dx in 0..s {
                            f(ox + col * s + dx, row as i64 * s + dy);
                        }
                    }
                }
            }
        }
    }
}

/// Width in pixels of `text` drawn at `scale`.
pub fn text_width(text: &str, scale: u32) -> u32 {
    text.chars().count() as u32 * 8 * scale
}
