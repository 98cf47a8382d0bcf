//! PNG encoding and writing.

use std::path::Path;

use image::RgbImage;

/// Encodes an RGB image as PNG with fast compression (flat synthetic images compress well even
/// so, and 200,000-candidate builds are dominated by encoding otherwise).
pub fn encode_png(img: &RgbImage) -> Result<Vec<u8>, image::ImageError> {
    use image::codecs::png::{CompressionType, FilterType, PngEncoder};
    use image::ImageEncoder;
    let mut out = Vec::with_capacity(img.as_raw().len() / 8);
    PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Sub).write_image(
        img.as_raw(),
        img.width(),
        img.height(),
        image::ExtendedColorType::Rgb8,
    )?;
    Ok(out)
}

/// Encodes `img` ([`encode_png`]) and writes it to `path`.
pub fn write_png(img: &RgbImage, path: &Path) -> std::io::Result<()> {
    let bytes = encode_png(img).map_err(std::io::Error::other)?;
    std::fs::write(path, bytes)
}
