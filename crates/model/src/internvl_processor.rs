//! InternVL's image processor (transformers' `GotOcr2ImageProcessorPil` as `InternVLProcessor`
//! calls it) and its image-token expansion, pixel for pixel.
//!
//! Per image: convert to RGB; pick the tile grid `(columns, rows)` with `min_patches <=
//! columns * rows <= max_patches` whose aspect ratio is closest to the image's (on a tie the
//! larger grid wins while the image's area exceeds half the grid's); resize the image to
//! `columns x rows` tiles with Pillow's filter ([`crate::processor::resize_pil`]) and cut it
//! row by row; when that gives more than one tile, append a thumbnail (the whole image resized
//! to one tile). Each tile is rescaled by `1/255` and normalised (ImageNet mean / std in the
//! InternVL checkpoints) channel-first. `InternVLProcessor` always tiles (`crop_to_patches`
//! is its default even though the checkpoints' `preprocessor_config.json` says false), so this
//! processor does too.
//!
//! In the text, each image's `<IMG_CONTEXT>` becomes `<img>` + `<IMG_CONTEXT>` x
//! (`image_seq_length` x tiles) + `</img>` ([`expand_image_tokens`]).

use std::path::Path;

use candle_core::{Device, Tensor};
use image::DynamicImage;
use serde_json::Value;

use crate::error::{ModelError, Result};
use crate::internvl::{IMG_CONTEXT, IMG_END, IMG_START};
use crate::processor::{resize_pil, Resample};

/// ImageNet's mean / std (the InternVL checkpoints' normalisation).
pub const IMAGENET_MEAN: [f64; 3] = [0.485, 0.456, 0.406];
pub const IMAGENET_STD: [f64; 3] = [0.229, 0.224, 0.225];

#[derive(Debug, Clone, PartialEq)]
pub struct InternVlProcessor {
    /// `(height, width)` of a tile (`size`).
    pub tile: [usize; 2],
    pub min_patches: usize,
    pub max_patches: usize,
    pub image_mean: [f64; 3],
    pub image_std: [f64; 3],
    pub do_rescale: bool,
    pub rescale_factor: f64,
    pub do_normalize: bool,
    pub resample: Resample,
    /// `<IMG_CONTEXT>` tokens per tile (the model config's `image_seq_length`).
    pub tokens_per_tile: usize,
}

/// The processor's output for a list of images.
#[derive(Debug, Clone)]
pub struct ProcessedTiles {
    /// `(total tiles, 3, tile height, tile width)`, f32, image after image.
    pub pixel_values: Tensor,
    /// Tiles per image (thumbnail included).
    pub tiles: Vec<usize>,
}

impl InternVlProcessor {
    /// InternVL3's processor for a model whose tiles give `tokens_per_tile` tokens: 448 px
    /// tiles, 1..12 of them, ImageNet mean / std, bicubic.
    pub fn new(tokens_per_tile: usize) -> InternVlProcessor {
        InternVlProcessor {
            tile: [448, 448],
            min_patches: 1,
            max_patches: 12,
            image_mean: IMAGENET_MEAN,
            image_std: IMAGENET_STD,
            do_rescale: true,
            rescale_factor: 1.0 / 255.0,
            do_normalize: true,
            resample: Resample::Bicubic,
            tokens_per_tile,
        }
    }

    pub fn from_file(path: &Path, tokens_per_tile: usize) -> Result<InternVlProcessor> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| ModelError::format(path, format!("not valid JSON: {e}")))?;
        Self::from_json(&v, path, tokens_per_tile)
    }

    /// Reads a `preprocessor_config.json` (GotOcr2ImageProcessor fields); `path` names the file
    /// in errors.
    pub fn from_json(v: &Value, path: &Path, tokens_per_tile: usize) -> Result<InternVlProcessor> {
        if !v.is_object() {
            return Err(ModelError::format(path, "the config is not a JSON object"));
        }
        let mut p = InternVlProcessor::new(tokens_per_tile);
        let uint = |k: &str| v.get(k).and_then(Value::as_u64).map(|x| x as usize);
        match v.get("size") {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                let get = |k: &str| m.get(k).and_then(Value::as_u64).map(|x| x as usize);
                match (get("height"), get("width")) {
                    (Some(h), Some(w)) => p.tile = [h, w],
                    _ => {
                        return Err(ModelError::format(
                            path,
                            "`size` must hold `height` and `width`",
                        ))
                    }
                }
            }
            Some(Value::Number(n)) => {
                let x = n.as_u64().unwrap_or(0) as usize;
                p.tile = [x, x];
            }
            Some(other) => {
                return Err(ModelError::format(
                    path,
                    format!("`size` must be {{height, width}}, not {other}"),
                ))
            }
        }
        if let Some(x) = uint("min_patches") {
            p.min_patches = x;
        }
        if let Some(x) = uint("max_patches") {
            p.max_patches = x;
        }
        let three = |k: &str| -> Result<Option<[f64; 3]>> {
            match v.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) => {
                    let x = n.as_f64().unwrap_or(0.0);
                    Ok(Some([x, x, x]))
                }
                Some(Value::Array(a)) if a.len() == 3 && a.iter().all(Value::is_number) => {
                    Ok(Some([0, 1, 2].map(|i| a[i].as_f64().unwrap_or(0.0))))
                }
                Some(other) => Err(ModelError::format(
                    path,
                    format!("`{k}` must be a number or 3 numbers, not {other}"),
                )),
            }
        };
        if let Some(x) = three("image_mean")? {
            p.image_mean = x;
        }
        if let Some(x) = three("image_std")? {
            p.image_std = x;
        }
        if let Some(x) = v.get("do_rescale").and_then(Value::as_bool) {
            p.do_rescale = x;
        }
        if let Some(x) = v.get("do_normalize").and_then(Value::as_bool) {
            p.do_normalize = x;
        }
        if let Some(x) = v.get("rescale_factor").and_then(Value::as_f64) {
            p.rescale_factor = x;
        }
        if let Some(code) = v.get("resample").and_then(Value::as_u64) {
            p.resample = Resample::from_pil(code).ok_or_else(|| {
                ModelError::format(
                    path,
                    format!("resample {code} is not supported (1, 2, 3, 4, 5 are; 3 = bicubic)"),
                )
            })?;
        }
        if p.tile.contains(&0) {
            return Err(ModelError::format(path, "`size` has a zero side"));
        }
        if p.min_patches == 0 || p.min_patches > p.max_patches {
            return Err(ModelError::format(
                path,
                format!(
                    "min_patches {} / max_patches {} must satisfy 1 <= min <= max",
                    p.min_patches, p.max_patches
                ),
            ));
        }
        if p.image_std.contains(&0.0) {
            return Err(ModelError::format(path, "image_std has a zero"));
        }
        Ok(p)
    }

    /// The `(columns, rows)` tile grid for an image of `(height, width)` (transformers'
    /// `get_optimal_tiled_canvas`).
    pub fn grid_for(&self, height: usize, width: usize) -> (usize, usize) {
        let mut grids = Vec::new();
        for w in 1..=self.max_patches {
            for h in 1..=self.max_patches {
                let n = w * h;
                if n >= self.min_patches && n <= self.max_patches {
                    grids.push((w, h));
                }
            }
        }
        // A stable sort by tile count, as Python's `sorted`.
        grids.sort_by_key(|&(w, h)| w * h);
        let aspect = width as f64 / height as f64;
        let area = (width * height) as f64;
        let tile_area = (self.tile[0] * self.tile[1]) as f64;
        let mut best_diff = f64::INFINITY;
        let mut best = (1, 1);
        for (w, h) in grids {
            let diff = (aspect - w as f64 / h as f64).abs();
            if diff < best_diff {
                best_diff = diff;
                best = (w, h);
            } else if diff == best_diff && area > 0.5 * tile_area * (w * h) as f64 {
                best = (w, h);
            }
        }
        best
    }

    /// How many tiles an image of `(height, width)` becomes (thumbnail included).
    pub fn num_tiles(&self, height: usize, width: usize) -> usize {
        if self.max_patches <= 1 {
            return 1;
        }
        let (c, r) = self.grid_for(height, width);
        if c * r > 1 {
            c * r + 1
        } else {
            1
        }
    }

    /// The channel-first tiles of one image, flattened, and how many there are.
    pub fn process_one(&self, image: &DynamicImage) -> Result<(Vec<f32>, usize)> {
        let rgb = match image {
            DynamicImage::ImageRgb8(rgb) => rgb.clone(),
            other => other.to_rgb8(),
        };
        let (h0, w0) = (rgb.height() as usize, rgb.width() as usize);
        if h0 == 0 || w0 == 0 {
            return Err(ModelError::invalid("an image with no pixels"));
        }
        let [th, tw] = self.tile;
        let mut tiles = Vec::new();
        if self.max_patches > 1 {
            let (cols, rows) = self.grid_for(h0, w0);
            let big = resize_pil(&rgb, (tw * cols) as u32, (th * rows) as u32, self.resample);
            for i in 0..cols * rows {
                let (c, r) = (i % cols, i / cols);
                tiles.push(
                    image::imageops::crop_imm(
                        &big,
                        (c * tw) as u32,
                        (r * th) as u32,
                        tw as u32,
                        th as u32,
                    )
                    .to_image(),
                );
            }
            if tiles.len() != 1 {
                tiles.push(resize_pil(&rgb, tw as u32, th as u32, self.resample));
            }
        } else {
            tiles.push(resize_pil(&rgb, tw as u32, th as u32, self.resample));
        }
        let table = crate::processor::pixel_table(
            self.do_rescale.then_some(self.rescale_factor),
            self.do_normalize
                .then_some((self.image_mean, self.image_std)),
        );
        let plane = th * tw;
        let mut out = vec![0f32; tiles.len() * 3 * plane];
        for (t, tile) in tiles.iter().enumerate() {
            let raw = tile.as_raw();
            let base = t * 3 * plane;
            for i in 0..plane {
                for (c, lut) in table.iter().enumerate() {
                    out[base + c * plane + i] = lut[raw[i * 3 + c] as usize];
                }
            }
        }
        Ok((out, tiles.len()))
    }

    /// Processes a list of images into one `(tiles, 3, h, w)` tensor and the tile counts.
    pub fn process(&self, images: &[DynamicImage], device: &Device) -> Result<ProcessedTiles> {
        if images.is_empty() {
            return Err(ModelError::invalid("process: no image given"));
        }
        let mut all = Vec::new();
        let mut tiles = Vec::with_capacity(images.len());
        for im in images {
            let (v, n) = self.process_one(im)?;
            all.extend_from_slice(&v);
            tiles.push(n);
        }
        let total: usize = tiles.iter().sum();
        let pixel_values = Tensor::from_vec(all, (total, 3, self.tile[0], self.tile[1]), device)?;
        Ok(ProcessedTiles {
            pixel_values,
            tiles,
        })
    }
}

/// A `preprocessor_config.json` for these settings, in the layout of the InternVL `-hf`
/// checkpoints (for models built from scratch).
pub fn preprocessor_json(p: &InternVlProcessor) -> String {
    let resample = match p.resample {
        Resample::Lanczos => 1,
        Resample::Bilinear => 2,
        Resample::Bicubic => 3,
        Resample::Box => 4,
        Resample::Hamming => 5,
    };
    let v = serde_json::json!({
        "image_processor_type": "GotOcr2ImageProcessor",
        "processor_class": "InternVLProcessor",
        "crop_to_patches": false,
        "min_patches": p.min_patches,
        "max_patches": p.max_patches,
        "size": {"height": p.tile[0], "width": p.tile[1]},
        "do_resize": true,
        "do_rescale": p.do_rescale,
        "rescale_factor": p.rescale_factor,
        "do_normalize": p.do_normalize,
        "do_convert_rgb": true,
        "image_mean": p.image_mean,
        "image_std": p.image_std,
        "resample": resample,
    });
    serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
}

/// Replaces the `i`-th `<IMG_CONTEXT>` of `text` by `<img>` + `<IMG_CONTEXT>` x
/// `tokens_per_tile * tiles[i]` + `</img>` (`InternVLProcessor.replace_image_token`). Errors
/// when the text has not one placeholder per image.
pub fn expand_image_tokens(text: &str, tiles: &[usize], tokens_per_tile: usize) -> Result<String> {
    let pieces: Vec<&str> = text.split(IMG_CONTEXT).collect();
    let found = pieces.len() - 1;
    if found != tiles.len() {
        return Err(ModelError::invalid(format!(
            "the text has {found} `{IMG_CONTEXT}` but {} images were given",
            tiles.len()
        )));
    }
    if tokens_per_tile == 0 || tiles.contains(&0) {
        return Err(ModelError::invalid(
            "every image needs at least one tile and one token per tile",
        ));
    }
    let mut out = String::with_capacity(
        text.len() + tiles.iter().sum::<usize>() * tokens_per_tile * IMG_CONTEXT.len(),
    );
    for (i, piece) in pieces.iter().enumerate() {
        out.push_str(piece);
        if let Some(&n) = tiles.get(i) {
            out.push_str(IMG_START);
            for _ in 0..n * tokens_per_tile {
                out.push_str(IMG_CONTEXT);
            }
            out.push_str(IMG_END);
        }
    }
    Ok(out)
}

/// InternVL's chat layout (the `-hf` checkpoints' template): ChatML with no default system
/// prompt and each image part written `<IMG_CONTEXT>\n`. The fallback when the model folder
/// has no template of its own.
pub fn render_internvl_chat(
    messages: &[crate::chat::Message],
    add_generation_prompt: bool,
) -> String {
    use crate::chat::{Part, IM_END, IM_START};
    let mut out = String::new();
    for m in messages {
        out.push_str(IM_START);
        out.push_str(&m.role);
        out.push('\n');
        for part in &m.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Image => {
                    out.push_str(IMG_CONTEXT);
                    out.push('\n');
                }
            }
        }
        out.push_str(IM_END);
        out.push('\n');
    }
    if add_generation_prompt {
        out.push_str(IM_START);
        out.push_str("assistant\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion_wraps_each_image() {
        let s = expand_image_tokens("a<IMG_CONTEXT>b<IMG_CONTEXT>", &[1, 3], 2).unwrap();
        let want = format!(
            "a<img>{}</img>b<img>{}</img>",
            IMG_CONTEXT.repeat(2),
            IMG_CONTEXT.repeat(6)
        );
        assert_eq!(s, want);
        assert!(expand_image_tokens("no image", &[1], 2).is_err());
    }

    #[test]
    fn grid_follows_aspect_ratio_and_ties() {
        let mut p = InternVlProcessor::new(256);
        p.max_patches = 6;
        p.tile = [56, 56];
        assert_eq!(p.grid_for(200, 300), (3, 2));
        assert_eq!(p.grid_for(56, 56), (1, 1));
        // 30x40 (w x h): (1, 1) and (1, 2) tie at 0.25; (2, 3) is closer.
        assert_eq!(p.grid_for(40, 30), (2, 3));
        assert_eq!(p.num_tiles(56, 56), 1);
        assert_eq!(p.num_tiles(200, 300), 7);
    }
}
