//! The image processor against transformers' `Qwen2VLImageProcessorPil` (fixtures made by
//! scripts/fixtures/model_fixtures.py): grids and pixel values, bit for bit.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use image::{DynamicImage, RgbImage, RgbaImage};
use mixed_r1_model::processor::{resize_pil, ImageProcessor, Resample};
use serde_json::{json, Value};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn reference() -> Value {
    let text = std::fs::read_to_string(fixtures().join("reference.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn tensors() -> std::collections::HashMap<String, Tensor> {
    candle_core::safetensors::load(fixtures().join("reference.safetensors"), &Device::Cpu).unwrap()
}

fn processor() -> ImageProcessor {
    ImageProcessor::from_file(&fixtures().join("tiny-qwen2_5_vl/preprocessor_config.json")).unwrap()
}

#[test]
fn pixel_values_and_grids_match_transformers_exactly() {
    let r = reference();
    let t = tensors();
    let p = processor();
    let images = r["processor"]["images"].as_object().unwrap();
    assert_eq!(images.len(), 5);
    for (stem, info) in images {
        let img = image::open(fixtures().join(info["file"].as_str().unwrap())).unwrap();
        let out = p.process(&[img], &Device::Cpu).unwrap();
        let want_grid: Vec<usize> = info["image_grid_thw"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(
            out.grids,
            vec![[want_grid[0], want_grid[1], want_grid[2]]],
            "{stem}"
        );
        assert_eq!(
            p.num_image_tokens(out.grids[0]),
            info["num_image_tokens"].as_u64().unwrap() as usize
        );
        let want = t[&format!("processor.{stem}.pixel_values")]
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(
            out.pixel_values.dims(),
            t[&format!("processor.{stem}.pixel_values")].dims()
        );
        let got = out
            .pixel_values
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let max_diff = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        let mismatches = got
            .iter()
            .zip(&want)
            .filter(|(a, b)| a.to_bits() != b.to_bits())
            .count();
        assert_eq!(
            mismatches,
            0,
            "{stem}: {mismatches} of {} values differ, max abs diff {max_diff}",
            want.len()
        );
    }
}

#[test]
fn several_images_are_concatenated_in_order() {
    let p = processor();
    let a = image::open(fixtures().join("images/img_56x56.png")).unwrap();
    let b = image::open(fixtures().join("images/img_100x75.png")).unwrap();
    let both = p.process(&[a.clone(), b.clone()], &Device::Cpu).unwrap();
    let pa = p.process(&[a], &Device::Cpu).unwrap();
    let pb = p.process(&[b], &Device::Cpu).unwrap();
    assert_eq!(both.grids, vec![pa.grids[0], pb.grids[0]]);
    let cat = Tensor::cat(&[&pa.pixel_values, &pb.pixel_values], 0).unwrap();
    let diff = (both.pixel_values - cat)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap();
    assert_eq!(diff.to_scalar::<f32>().unwrap(), 0.0);
}

#[test]
fn config_layouts() {
    let path = Path::new("preprocessor_config.json");
    // The Hub layout of Qwen2.5-VL: only min/max_pixels.
    let hub = json!({"min_pixels": 3136, "max_pixels": 12845056, "patch_size": 14,
                     "temporal_patch_size": 2, "merge_size": 2,
                     "image_mean": [0.48145466, 0.4578275, 0.40821073],
                     "image_std": [0.26862954, 0.26130258, 0.27577711],
                     "image_processor_type": "Qwen2VLImageProcessor"});
    let p = ImageProcessor::from_json(&hub, path).unwrap();
    let d = ImageProcessor::default();
    assert_eq!(p.min_pixels, d.min_pixels);
    assert_eq!(p.max_pixels, 12845056);
    assert_eq!(d.max_pixels, 28 * 28 * 1280);
    assert_eq!(p.image_mean, d.image_mean);
    // The newer layout: only `size`.
    let newer = json!({"size": {"shortest_edge": 1000, "longest_edge": 2000}});
    let p = ImageProcessor::from_json(&newer, path).unwrap();
    assert_eq!((p.min_pixels, p.max_pixels), (1000, 2000));
    // min_pixels wins over size, as in transformers.
    let both = json!({"size": {"shortest_edge": 1000, "longest_edge": 2000}, "min_pixels": 5});
    let p = ImageProcessor::from_json(&both, path).unwrap();
    assert_eq!((p.min_pixels, p.max_pixels), (5, 2000));
    // Scalar mean / std.
    let scalar = json!({"image_mean": 0.5, "image_std": 0.5, "resample": 2});
    let p = ImageProcessor::from_json(&scalar, path).unwrap();
    assert_eq!(p.image_mean, [0.5; 3]);
    assert_eq!(p.resample, Resample::Bilinear);
    // Bad values are errors naming the field.
    let bad = json!({"image_mean": "x"});
    let e = ImageProcessor::from_json(&bad, path)
        .unwrap_err()
        .to_string();
    assert!(e.contains("image_mean"), "{e}");
    let bad = json!({"resample": 0});
    assert!(ImageProcessor::from_json(&bad, path).is_err());
}

#[test]
fn grids_and_token_counts() {
    let p = ImageProcessor::default();
    // 640x480 -> 476x644 (Qwen2.5-VL's smart resize), 34x46 patches, 391 tokens.
    assert_eq!(p.resized_size(480, 640).unwrap(), (476, 644));
    let g = p.grid_for(480, 640).unwrap();
    assert_eq!(g, [1, 34, 46]);
    assert_eq!(p.num_image_tokens(g), 34 * 46 / 4);
    // Small images are scaled up to min_pixels.
    assert_eq!(p.resized_size(10, 10).unwrap(), (56, 56));
    // Extreme aspect ratios are refused.
    assert!(p.resized_size(10, 3000).is_err());
}

#[test]
fn resize_keeps_same_size_images_and_is_exact_on_constant_images() {
    let img = RgbImage::from_fn(37, 23, |x, y| image::Rgb([x as u8 * 5, y as u8 * 7, 200]));
    assert_eq!(resize_pil(&img, 37, 23, Resample::Bicubic), img);
    // A constant image stays constant at any size (weights are normalised).
    let flat = RgbImage::from_pixel(97, 41, image::Rgb([13, 128, 250]));
    for (w, h) in [(28, 56), (200, 90), (97, 14), (5, 41)] {
        let out = resize_pil(&flat, w, h, Resample::Bicubic);
        assert_eq!(out.dimensions(), (w, h));
        assert!(out.pixels().all(|p| p.0 == [13, 128, 250]), "{w}x{h}");
    }
}

#[test]
fn alpha_and_grey_images_are_converted_to_rgb() {
    let p = ImageProcessor::default();
    let rgba = RgbaImage::from_fn(56, 56, |x, y| image::Rgba([x as u8, y as u8, 7, 3]));
    let rgb = RgbImage::from_fn(56, 56, |x, y| image::Rgb([x as u8, y as u8, 7]));
    let a = p
        .process(&[DynamicImage::ImageRgba8(rgba)], &Device::Cpu)
        .unwrap();
    let b = p
        .process(&[DynamicImage::ImageRgb8(rgb)], &Device::Cpu)
        .unwrap();
    let diff = (a.pixel_values - b.pixel_values)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap();
    assert_eq!(diff.to_scalar::<f32>().unwrap(), 0.0);
    let grey = image::GrayImage::from_pixel(60, 60, image::Luma([90]));
    let out = p
        .process(&[DynamicImage::ImageLuma8(grey)], &Device::Cpu)
        .unwrap();
    assert_eq!(out.grids, vec![[1, 4, 4]]);
}

/// FNV-1a over the bytes.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}

/// Pillow 13.0.0's `Image.resize` of a 23x31 noise image (an LCG, below), recorded as FNV-1a
/// hashes of the output bytes: downscales that run the vertical pass first (25x12, 23x8) or the
/// horizontal pass first (10x29, 7x31), an upscale (40x50), and three filters. Generated with
/// `np.array(Image.fromarray(a).resize((w, h), filter))` in the fixtures' venv.
#[test]
fn resize_matches_pillow_on_noise() {
    let (w, h) = (23u32, 31u32);
    let mut s: u64 = 12345;
    let mut raw = Vec::with_capacity((w * h * 3) as usize);
    for _ in 0..w * h * 3 {
        s = (s * 1103515245 + 12345) % (1 << 31);
        raw.push(((s >> 16) & 255) as u8);
    }
    let img = RgbImage::from_raw(w, h, raw).unwrap();
    let cases: [(u32, u32, Resample, u64); 15] = [
        (25, 12, Resample::Bicubic, 0x5322af8659686010),
        (25, 12, Resample::Bilinear, 0x6c1e1e4e31dcd7eb),
        (25, 12, Resample::Lanczos, 0xed238abb6ea5c21d),
        (10, 29, Resample::Bicubic, 0xc72537415873bc37),
        (10, 29, Resample::Bilinear, 0x9474ad01cd5551af),
        (10, 29, Resample::Lanczos, 0xbe9325f50608e302),
        (40, 50, Resample::Bicubic, 0xe1cc7819ea7f399a),
        (40, 50, Resample::Bilinear, 0x3a86065677371114),
        (40, 50, Resample::Lanczos, 0xe26d118bc8eaa60a),
        (23, 8, Resample::Bicubic, 0xebebc03594e00126),
        (23, 8, Resample::Bilinear, 0x0a411e6711019c4b),
        (23, 8, Resample::Lanczos, 0x708b539720319d7e),
        (7, 31, Resample::Bicubic, 0x706c26a5de6d762e),
        (7, 31, Resample::Bilinear, 0x5c0b2cfaf294c3b9),
        (7, 31, Resample::Lanczos, 0x8815923800728a6a),
    ];
    for (ow, oh, filter, want) in cases {
        let out = resize_pil(&img, ow, oh, filter);
        assert_eq!(out.dimensions(), (ow, oh));
        assert_eq!(fnv1a(out.as_raw()), want, "{w}x{h} -> {ow}x{oh} {filter:?}");
    }
    let out = resize_pil(&img, 25, 12, Resample::Bicubic);
    assert_eq!(out.get_pixel(0, 0).0, [141, 89, 114]);
    assert_eq!(out.get_pixel(24, 11).0, [113, 163, 133]);
}
