//! Reading an X-ray file (PNG, JPEG or DICOM) into one grey image.
//!
//! Every model sees grey pixels in `[0, 1]` whatever the file held: RGB copies of grey
//! images are folded to grey, 16-bit data keeps its precision as `f32`, DICOM goes through
//! its own display pipeline (Modality LUT, VOI LUT or window, MONOCHROME1
//! inversion; see `image/dicom.rs`). The format is recognised from the bytes, never
//! from the file name, because archives are full of `.dcm` files without extension and
//! JPEGs named `.png`.

mod dicom;
mod raster;

use std::path::{Path, PathBuf};

/// Largest image we agree to decode. Real chest X-rays are at most ~4k × 4k (16 Mpx);
/// anything bigger is a mistake or a decompression bomb, refused before allocating.
pub const MAX_PIXELS: u64 = 50_000_000;

/// A single-channel image, row-major, values in `[0, 1]`.
#[derive(Debug, Clone, PartialEq)]
pub struct GreyImage {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<f32>,
}

impl GreyImage {
    pub fn new(width: u32, height: u32, pixels: Vec<f32>) -> Self {
        assert_eq!(pixels.len(), width as usize * height as usize, "pixel count must match size");
        GreyImage { width, height, pixels }
    }

    #[inline]
    pub fn get(&self, x: u32, y: u32) -> f32 {
        self.pixels[y as usize * self.width as usize + x as usize]
    }

    /// From 8-bit grey pixels.
    pub fn from_luma8(width: u32, height: u32, bytes: &[u8]) -> Self {
        GreyImage::new(width, height, bytes.iter().map(|&b| b as f32 / 255.0).collect())
    }

    /// To 8-bit grey pixels (rounded, clamped).
    pub fn to_luma8(&self) -> Vec<u8> {
        self.pixels.iter().map(|&v| (v.clamp(0.0, 1.0) * 255.0).round() as u8).collect()
    }
}

/// Why a file could not be read as an X-ray. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{path}: cannot read file: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: empty file (0 bytes)")]
    Empty { path: PathBuf },
    #[error("{path}: not a PNG, JPEG or DICOM file")]
    UnknownFormat { path: PathBuf },
    #[error("{path}: {width}×{height} = {} Mpx is larger than the {} Mpx limit; refusing to decode", (*width * *height) / 1_000_000, MAX_PIXELS / 1_000_000)]
    TooLarge { path: PathBuf, width: u64, height: u64 },
    #[error("{path}: cannot decode image: {reason}")]
    Decode { path: PathBuf, reason: String },
    #[error("{path}: unsupported DICOM: {reason}")]
    UnsupportedDicom { path: PathBuf, reason: String },
}

impl ImageError {
    pub fn path(&self) -> &Path {
        match self {
            ImageError::Io { path, .. }
            | ImageError::Empty { path }
            | ImageError::UnknownFormat { path }
            | ImageError::TooLarge { path, .. }
            | ImageError::Decode { path, .. }
            | ImageError::UnsupportedDicom { path, .. } => path,
        }
    }
}

/// Reads and decodes `path` into a grey image.
pub fn load_image(path: &Path) -> Result<GreyImage, ImageError> {
    let bytes = std::fs::read(path).map_err(|source| ImageError::Io { path: path.to_owned(), source })?;
    decode_image(path, &bytes)
}

/// Decodes an in-memory file; `path` is used for messages only.
pub fn decode_image(path: &Path, bytes: &[u8]) -> Result<GreyImage, ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Empty { path: path.to_owned() });
    }
    if let Some(meta_start) = dicom::sniff(bytes) {
        return dicom::decode(path, bytes, meta_start);
    }
    match raster::sniff(bytes) {
        Some(format) => raster::decode(path, bytes, format),
        None => Err(ImageError::UnknownFormat { path: path.to_owned() }),
    }
}

/// Refuses images above [`MAX_PIXELS`]; called with header dimensions, before any pixel buffer exists.
fn check_pixel_count(path: &Path, width: u64, height: u64) -> Result<(), ImageError> {
    if width.saturating_mul(height) > MAX_PIXELS {
        return Err(ImageError::TooLarge { path: path.to_owned(), width, height });
    }
    Ok(())
}
