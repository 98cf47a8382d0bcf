//! The Qwen2.5-VL image processor (transformers' `Qwen2VLImageProcessorPil`), pixel for pixel.
//!
//! Per image: convert to RGB; resize to `smart_resize(h, w)` (both sides multiples of
//! `patch_size * merge_size`, area within `[min_pixels, max_pixels]`) with Pillow's bicubic
//! filter, re-implemented here with Pillow's exact fixed-point arithmetic so the 8-bit result is
//! the same; rescale by `1/255` (in f64, stored as f32, as numpy does), normalise with the CLIP
//! mean / std in f32; repeat the frame `temporal_patch_size` times; cut into
//! `patch_size x patch_size` patches ordered merge window by merge window. One image gives
//! `grid_t * grid_h * grid_w` rows of `channels * temporal_patch_size * patch_size²` values.

use std::path::Path;

use candle_core::{Device, Tensor};
use image::{DynamicImage, RgbImage};
use serde_json::Value;

use crate::error::{ModelError, Result};

/// CLIP's mean / std, the defaults of Qwen2-VL and Qwen2.5-VL.
pub const OPENAI_CLIP_MEAN: [f64; 3] = [0.48145466, 0.4578275, 0.40821073];
pub const OPENAI_CLIP_STD: [f64; 3] = [0.26862954, 0.26130258, 0.27577711];

/// Pillow's resampling filters (the `resample` field of `preprocessor_config.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resample {
    /// `Image.LANCZOS` (1).
    Lanczos,
    /// `Image.BILINEAR` (2).
    Bilinear,
    /// `Image.BICUBIC` (3), the Qwen2-VL default.
    Bicubic,
    /// `Image.BOX` (4).
    Box,
    /// `Image.HAMMING` (5).
    Hamming,
}

impl Resample {
    pub fn from_pil(code: u64) -> Option<Resample> {
        match code {
            1 => Some(Resample::Lanczos),
            2 => Some(Resample::Bilinear),
            3 => Some(Resample::Bicubic),
            4 => Some(Resample::Box),
            5 => Some(Resample::Hamming),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ImageProcessor {
    pub min_pixels: u64,
    pub max_pixels: u64,
    pub patch_size: usize,
    pub merge_size: usize,
    pub temporal_patch_size: usize,
    pub image_mean: [f64; 3],
    pub image_std: [f64; 3],
    pub do_resize: bool,
    pub do_rescale: bool,
    pub do_normalize: bool,
    pub do_convert_rgb: bool,
    pub rescale_factor: f64,
    pub resample: Resample,
}

impl Default for ImageProcessor {
    /// Qwen2.5-VL's processor: min 56*56, max 28*28*1280 pixels, patches 14, merge 2,
    /// temporal 2, CLIP mean / std, bicubic.
    fn default() -> Self {
        ImageProcessor {
            min_pixels: 56 * 56,
            max_pixels: 28 * 28 * 1280,
            patch_size: 14,
            merge_size: 2,
            temporal_patch_size: 2,
            image_mean: OPENAI_CLIP_MEAN,
            image_std: OPENAI_CLIP_STD,
            do_resize: true,
            do_rescale: true,
            do_normalize: true,
            do_convert_rgb: true,
            rescale_factor: 1.0 / 255.0,
            resample: Resample::Bicubic,
        }
    }
}

/// The processor's output for a list of images.
#[derive(Debug, Clone)]
pub struct ProcessedImages {
    /// `(sum of t*h*w over the images, channels * temporal * patch * patch)`, f32.
    pub pixel_values: Tensor,
    /// `[grid_t, grid_h, grid_w]` per image, in patches.
    pub grids: Vec<[usize; 3]>,
}

fn three(v: &Value, key: &str, path: &Path) -> Result<Option<[f64; 3]>> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            let x = n.as_f64().unwrap_or(0.0);
            Ok(Some([x, x, x]))
        }
        Some(Value::Array(a)) if a.len() == 3 && a.iter().all(Value::is_number) => {
            let mut out = [0.0; 3];
            for (o, x) in out.iter_mut().zip(a) {
                *o = x.as_f64().unwrap_or(0.0);
            }
            Ok(Some(out))
        }
        Some(other) => Err(ModelError::format(
            path,
            format!("`{key}` must be a number or 3 numbers, not {other}"),
        )),
    }
}

impl ImageProcessor {
    /// Reads a `preprocessor_config.json`: `min_pixels` / `max_pixels` (the Hub layout) or
    /// `size.shortest_edge` / `size.longest_edge` (newer transformers; `min_pixels` wins when
    /// both are present, as in transformers), and the other fields, each defaulting to
    /// Qwen2.5-VL's value.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
        let value: Value = serde_json::from_str(&text)
            .map_err(|e| ModelError::format(path, format!("not valid JSON: {e}")))?;
        Self::from_json(&value, path)
    }

    /// Parses the JSON of a `preprocessor_config.json`; `path` only names the file in errors.
    pub fn from_json(v: &Value, path: &Path) -> Result<Self> {
        if !v.is_object() {
            return Err(ModelError::format(path, "the config is not a JSON object"));
        }
        let mut p = ImageProcessor::default();
        let uint = |key: &str| v.get(key).and_then(Value::as_u64);
        let boolean = |key: &str| v.get(key).and_then(Value::as_bool);
        if let Some(size) = v.get("size").and_then(Value::as_object) {
            let get = |k: &str| size.get(k).and_then(Value::as_u64);
            if let Some(x) = get("shortest_edge").or_else(|| get("min_pixels")) {
                p.min_pixels = x;
            }
            if let Some(x) = get("longest_edge").or_else(|| get("max_pixels")) {
                p.max_pixels = x;
            }
        }
        if let Some(x) = uint("min_pixels") {
            p.min_pixels = x;
        }
        if let Some(x) = uint("max_pixels") {
            p.max_pixels = x;
        }
        if let Some(x) = uint("patch_size") {
            p.patch_size = x as usize;
        }
        if let Some(x) = uint("merge_size") {
            p.merge_size = x as usize;
        }
        if let Some(x) = uint("temporal_patch_size") {
            p.temporal_patch_size = x as usize;
        }
        if let Some(x) = three(v, "image_mean", path)? {
            p.image_mean = x;
        }
        if let Some(x) = three(v, "image_std", path)? {
            p.image_std = x;
        }
        if let Some(x) = boolean("do_resize") {
            p.do_resize = x;
        }
        if let Some(x) = boolean("do_rescale") {
            p.do_rescale = x;
        }
        if let Some(x) = boolean("do_normalize") {
            p.do_normalize = x;
        }
        if let Some(x) = boolean("do_convert_rgb") {
            p.do_convert_rgb = x;
        }
        if let Some(x) = v.get("rescale_factor").and_then(Value::as_f64) {
            p.rescale_factor = x;
        }
        if let Some(code) = uint("resample") {
            p.resample = Resample::from_pil(code).ok_or_else(|| {
                ModelError::format(
                    path,
                    format!("resample {code} is not supported (1, 2, 3, 4, 5 are; 3 = bicubic)"),
                )
            })?;
        }
        if p.patch_size == 0 || p.merge_size == 0 || p.temporal_patch_size == 0 {
            return Err(ModelError::format(
                path,
                "patch_size, merge_size and temporal_patch_size must be positive",
            ));
        }
        if p.image_std.contains(&0.0) {
            return Err(ModelError::format(path, "image_std has a zero"));
        }
        Ok(p)
    }

    /// `patch_size * merge_size`: both resized sides are multiples of it.
    pub fn factor(&self) -> usize {
        self.patch_size * self.merge_size
    }

    /// The `(height, width)` an image of `(height, width)` is resized to (transformers'
    /// `smart_resize`; the original size when `do_resize` is off).
    pub fn resized_size(&self, height: usize, width: usize) -> Result<(usize, usize)> {
        if !self.do_resize {
            let f = self.factor();
            if height % f != 0 || width % f != 0 {
                return Err(ModelError::invalid(format!(
                    "image {width}x{height}: with do_resize off both sides must be multiples of {f}"
                )));
            }
            return Ok((height, width));
        }
        let (h, w) = mixed_r1_reward::iou::smart_resize(
            height as f64,
            width as f64,
            self.factor() as u32,
            self.min_pixels,
            self.max_pixels,
        )
        .map_err(ModelError::Invalid)?;
        if h == 0 || w == 0 {
            return Err(ModelError::invalid(format!(
                "image {width}x{height} resizes to nothing"
            )));
        }
        Ok((h as usize, w as usize))
    }

    /// The `[t, h, w]` patch grid of an image of `(height, width)`.
    pub fn grid_for(&self, height: usize, width: usize) -> Result<[usize; 3]> {
        let (h, w) = self.resized_size(height, width)?;
        Ok([1, h / self.patch_size, w / self.patch_size])
    }

    /// How many `<|image_pad|>` tokens an image with this grid takes: `t * h * w / merge²`.
    pub fn num_image_tokens(&self, grid: [usize; 3]) -> usize {
        grid[0] * grid[1] * grid[2] / (self.merge_size * self.merge_size)
    }

    /// The flattened patches of one image and its grid (see the module docs for the layout).
    pub fn process_one(&self, image: &DynamicImage) -> Result<(Vec<f32>, [usize; 3])> {
        let rgb = to_rgb(image);
        let (h0, w0) = (rgb.height() as usize, rgb.width() as usize);
        if h0 == 0 || w0 == 0 {
            return Err(ModelError::invalid("an image with no pixels"));
        }
        let (h, w) = self.resized_size(h0, w0)?;
        let rgb = if (h, w) == (h0, w0) {
            rgb
        } else {
            resize_pil(&rgb, w as u32, h as u32, self.resample)
        };
        let table = pixel_table(
            self.do_rescale.then_some(self.rescale_factor),
            self.do_normalize
                .then_some((self.image_mean, self.image_std)),
        );
        let raw = rgb.as_raw();
        let (ps, m, tp) = (self.patch_size, self.merge_size, self.temporal_patch_size);
        let (gh, gw) = (h / ps, w / ps);
        let row_len = 3 * tp * ps * ps;
        let mut out = vec![0f32; gh * gw * row_len];
        let mut r = 0usize;
        for bh in 0..gh / m {
            for bw in 0..gw / m {
                for mh in 0..m {
                    for mw in 0..m {
                        let y0 = (bh * m + mh) * ps;
                        let x0 = (bw * m + mw) * ps;
                        let row = &mut out[r * row_len..(r + 1) * row_len];
                        let mut k = 0usize;
                        for (c, lut) in table.iter().enumerate() {
                            for _t in 0..tp {
                                for py in 0..ps {
                                    let base = ((y0 + py) * w + x0) * 3 + c;
                                    for px in 0..ps {
                                        row[k] = lut[raw[base + px * 3] as usize];
                                        k += 1;
                                    }
                                }
                            }
                        }
                        r += 1;
                    }
                }
            }
        }
        Ok((out, [1, gh, gw]))
    }

    /// Processes a list of images into one `pixel_values` tensor (rows of all images, in order)
    /// and their grids.
    pub fn process(&self, images: &[DynamicImage], device: &Device) -> Result<ProcessedImages> {
        if images.is_empty() {
            return Err(ModelError::invalid("process: no image given"));
        }
        let row_len = 3 * self.temporal_patch_size * self.patch_size * self.patch_size;
        let mut all = Vec::new();
        let mut grids = Vec::with_capacity(images.len());
        for im in images {
            let (v, g) = self.process_one(im)?;
            all.extend_from_slice(&v);
            grids.push(g);
        }
        let rows = all.len() / row_len;
        let pixel_values = Tensor::from_vec(all, (rows, row_len), device)?;
        Ok(ProcessedImages {
            pixel_values,
            grids,
        })
    }
}

/// RGB 8-bit, as PIL's `convert("RGB")`: alpha is dropped, grey is replicated.
fn to_rgb(image: &DynamicImage) -> RgbImage {
    match image {
        DynamicImage::ImageRgb8(rgb) => rgb.clone(),
        other => other.to_rgb8(),
    }
}

// --------------------------------------------------------------------------------------------
// Pillow's resampling (src/libImaging/Resample.c), 8 bits per channel
// --------------------------------------------------------------------------------------------

const PRECISION_BITS: u32 = 32 - 8 - 2;

fn bicubic_filter(x: f64) -> f64 {
    let a = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * a
    } else {
        0.0
    }
}

fn bilinear_filter(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 {
        1.0 - x
    } else {
        0.0
    }
}

fn box_filter(x: f64) -> f64 {
    if x > -0.5 && x <= 0.5 {
        1.0
    } else {
        0.0
    }
}

fn hamming_filter(x: f64) -> f64 {
    let x = x.abs();
    if x == 0.0 {
        1.0
    } else if x >= 1.0 {
        0.0
    } else {
        let x = x * std::f64::consts::PI;
        // Pillow writes the constants as C floats.
        x.sin() / x * (0.54f32 as f64 + 0.46f32 as f64 * x.cos())
    }
}

fn sinc_filter(x: f64) -> f64 {
    if x == 0.0 {
        1.0
    } else {
        let x = x * std::f64::consts::PI;
        x.sin() / x
    }
}

fn lanczos_filter(x: f64) -> f64 {
    if (-3.0..3.0).contains(&x) {
        sinc_filter(x) * sinc_filter(x / 3.0)
    } else {
        0.0
    }
}

fn filter_of(r: Resample) -> (fn(f64) -> f64, f64) {
    match r {
        Resample::Bicubic => (bicubic_filter, 2.0),
        Resample::Bilinear => (bilinear_filter, 1.0),
        Resample::Box => (box_filter, 0.5),
        Resample::Hamming => (hamming_filter, 1.0),
        Resample::Lanczos => (lanczos_filter, 3.0),
    }
}

/// Per output pixel: the first input pixel, the number of taps, and fixed-point weights.
struct Coeffs {
    ksize: usize,
    bounds: Vec<(usize, usize)>,
    weights: Vec<i32>,
}

fn precompute_coeffs(in_size: usize, out_size: usize, resample: Resample) -> Coeffs {
    let (filter, filter_support) = filter_of(resample);
    // box = (0, 0, in_size, in_size) as C floats
    let in0 = 0f32;
    let in1 = in_size as f32;
    let scale = (in1 - in0) as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filter_support * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let mut bounds = Vec::with_capacity(out_size);
    let mut weights = vec![0i32; out_size * ksize];
    let mut k = vec![0f64; ksize];
    for xx in 0..out_size {
        let center = in0 as f64 + (xx as f64 + 0.5) * scale;
        let ss = 1.0 / filterscale;
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
        let n = xmax.saturating_sub(xmin);
        let mut ww = 0.0;
        for (x, kx) in k.iter_mut().enumerate().take(n) {
            let w = filter(((x + xmin) as f64 - center + 0.5) * ss);
            *kx = w;
            ww += w;
        }
        for (x, kx) in k.iter_mut().enumerate().take(n) {
            if ww != 0.0 {
                *kx /= ww;
            }
            let v = *kx * (1u32 << PRECISION_BITS) as f64;
            weights[xx * ksize + x] = if v < 0.0 {
                (v - 0.5) as i32
            } else {
                (v + 0.5) as i32
            };
        }
        bounds.push((xmin, n));
    }
    Coeffs {
        ksize,
        bounds,
        weights,
    }
}

#[inline]
fn clip8(ss: i32) -> u8 {
    (ss >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Resizes an RGB image exactly as Pillow's `Image.resize((width, height), resample)` does for
/// 8-bit images (Pillow 13): two separable passes, each a convolution with the filter stretched
/// by the downscale factor, with 22-bit fixed-point weights and rounding / clipping to 8 bits
/// after each pass. The vertical pass runs first when the height shrinks by more than twice as
/// many pixels as the width does (Pillow's speed rule, which changes the rounding), else the
/// horizontal pass runs first (restricted to the rows the vertical pass reads).
pub fn resize_pil(src: &RgbImage, width: u32, height: u32, resample: Resample) -> RgbImage {
    let (in_w, in_h) = (src.width() as usize, src.height() as usize);
    let (out_w, out_h) = (width as usize, height as usize);
    if (in_w, in_h) == (out_w, out_h) {
        return src.clone();
    }
    let need_h = out_w != in_w;
    let need_v = out_h != in_h;
    let dh = in_h as i64 - out_h as i64;
    let dw = in_w as i64 - out_w as i64;
    let horizontal_first = !(dh > 0 && dh > dw * 2);
    let raw = src.as_raw();
    let out = if horizontal_first {
        let mut vert = precompute_coeffs(in_h, out_h, resample);
        let (buf, w) = if need_h {
            let first = vert.bounds[0].0;
            let last = vert.bounds[out_h - 1].0 + vert.bounds[out_h - 1].1;
            for b in vert.bounds.iter_mut() {
                b.0 -= first;
            }
            let horiz = precompute_coeffs(in_w, out_w, resample);
            (
                horizontal_pass(raw, in_w, first, last - first, &horiz),
                out_w,
            )
        } else {
            (raw.clone(), in_w)
        };
        if need_v {
            vertical_pass(&buf, w, &vert)
        } else {
            buf
        }
    } else {
        // Here the height shrinks, so there is a vertical pass.
        let vert = precompute_coeffs(in_h, out_h, resample);
        let buf = vertical_pass(raw, in_w, &vert);
        if need_h {
            let horiz = precompute_coeffs(in_w, out_w, resample);
            horizontal_pass(&buf, in_w, 0, out_h, &horiz)
        } else {
            buf
        }
    };
    RgbImage::from_raw(out_w as u32, out_h as u32, out).expect("buffer matches the size")
}

/// Rows `first..first + rows` of an RGB buffer `in_w` wide, resampled horizontally.
fn horizontal_pass(raw: &[u8], in_w: usize, first: usize, rows: usize, c: &Coeffs) -> Vec<u8> {
    let out_w = c.bounds.len();
    let half = 1i32 << (PRECISION_BITS - 1);
    let mut out = vec![0u8; rows * out_w * 3];
    for yy in 0..rows {
        let line = &raw[(yy + first) * in_w * 3..(yy + first + 1) * in_w * 3];
        for (xx, &(xmin, n)) in c.bounds.iter().enumerate() {
            let k = &c.weights[xx * c.ksize..xx * c.ksize + n];
            let mut ss = [half; 3];
            for (x, &kx) in k.iter().enumerate() {
                let p = &line[(x + xmin) * 3..(x + xmin) * 3 + 3];
                ss[0] += p[0] as i32 * kx;
                ss[1] += p[1] as i32 * kx;
                ss[2] += p[2] as i32 * kx;
            }
            let o = (yy * out_w + xx) * 3;
            out[o] = clip8(ss[0]);
            out[o + 1] = clip8(ss[1]);
            out[o + 2] = clip8(ss[2]);
        }
    }
    out
}

/// An RGB buffer `w` wide, resampled vertically to `c.bounds.len()` rows.
fn vertical_pass(raw: &[u8], w: usize, c: &Coeffs) -> Vec<u8> {
    let out_h = c.bounds.len();
    let half = 1i32 << (PRECISION_BITS - 1);
    let mut out = vec![0u8; out_h * w * 3];
    for (yy, &(ymin, n)) in c.bounds.iter().enumerate() {
        let k = &c.weights[yy * c.ksize..yy * c.ksize + n];
        for xx in 0..w {
            let mut ss = [half; 3];
            for (y, &ky) in k.iter().enumerate() {
                let o = ((y + ymin) * w + xx) * 3;
                ss[0] += raw[o] as i32 * ky;
                ss[1] += raw[o + 1] as i32 * ky;
                ss[2] += raw[o + 2] as i32 * ky;
            }
            let o = (yy * w + xx) * 3;
            out[o] = clip8(ss[0]);
            out[o + 1] = clip8(ss[1]);
            out[o + 2] = clip8(ss[2]);
        }
    }
    out
}

/// The value of each 8-bit channel level after rescaling and normalising, per channel, with
/// numpy's arithmetic as the Hugging Face processors do it: rescale in f64 then round to f32,
/// normalise in f32. Processors look pixels up in it instead of recomputing.
pub(crate) fn pixel_table(
    rescale: Option<f64>,
    normalize: Option<([f64; 3], [f64; 3])>,
) -> [[f32; 256]; 3] {
    let mut table = [[0f32; 256]; 3];
    for (c, row) in table.iter_mut().enumerate() {
        for (p, out) in row.iter_mut().enumerate() {
            let mut v = match rescale {
                Some(f) => (p as f64 * f) as f32,
                None => p as f32,
            };
            if let Some((mean, std)) = normalize {
                v = (v - mean[c] as f32) / std[c] as f32;
            }
            *out = v;
        }
    }
    table
}
