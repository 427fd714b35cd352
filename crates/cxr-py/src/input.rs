//! What Python may pass as an X-ray, and how each becomes the grey image every model reads.
//!
//! A path and an in-memory file go through the CLI's decoder (format sniffed from the bytes,
//! hostile-input limits, DICOM display pipeline). A pixel array is scaled as the decoder scales
//! an 8- or 16-bit grey PNG, then refused on the same grounds as a file (too small, too
//! elongated, blank), so an array of a film scores as the film does.

use cxr_core::image::{MAX_PIXELS, check_xray, decode_xray};
use cxr_core::{GreyImage, ImageError};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use std::path::{Path, PathBuf};

/// One X-ray as Python handed it over (the Python layer normalises its arguments to these).
#[derive(FromPyObject)]
pub enum Input {
    /// The bytes of a PNG, JPEG or DICOM file.
    File(PyBackedBytes),
    /// Grey pixels: `(width, height, bits, bytes)`, row-major, 8 or 16 bits, native byte order.
    Pixels(u32, u32, u8, PyBackedBytes),
    /// A file on disk.
    Path(PathBuf),
}

impl Input {
    /// The name errors give this input: its path, or what kind of object it was.
    pub fn label(&self) -> PathBuf {
        match self {
            Input::Path(path) => path.clone(),
            Input::File(_) => PathBuf::from("<bytes>"),
            Input::Pixels(width, height, bits, _) => PathBuf::from(format!("<array {height}×{width} uint{bits}>")),
        }
    }

    /// Decodes (or scales) the input and checks that it can be a chest film.
    pub fn image(&self) -> Result<GreyImage, ImageError> {
        match self {
            Input::Path(path) => cxr_core::load_image(path),
            Input::File(bytes) => decode_xray(&self.label(), bytes),
            Input::Pixels(width, height, bits, data) => {
                let label = self.label();
                let image = from_pixels(&label, *width, *height, *bits, data)?;
                check_xray(&label, &image)?;
                Ok(image)
            }
        }
    }
}

/// Grey pixels in `[0, 1]`, divided by 255 or 65535 exactly as the decoder treats 8- and 16-bit
/// PNGs (the 16-bit case through the same `image` conversion).
fn from_pixels(label: &Path, width: u32, height: u32, bits: u8, data: &[u8]) -> Result<GreyImage, ImageError> {
    let refuse = |reason: String| ImageError::Decode { path: label.to_owned(), reason };
    let pixels = u64::from(width) * u64::from(height);
    if pixels > MAX_PIXELS {
        return Err(ImageError::TooLarge { path: label.to_owned(), width: width.into(), height: height.into() });
    }
    let expected = pixels * u64::from(bits / 8);
    if data.len() as u64 != expected {
        return Err(refuse(format!(
            "{} bytes of pixel data for {width}×{height} at {bits} bits (expected {expected})",
            data.len()
        )));
    }
    match bits {
        8 => Ok(GreyImage::from_luma8(width, height, data)),
        16 => {
            let samples: Vec<u16> = data.chunks_exact(2).map(|b| u16::from_ne_bytes([b[0], b[1]])).collect();
            let buffer = image::ImageBuffer::<image::Luma<u16>, _>::from_raw(width, height, samples)
                .ok_or_else(|| refuse("pixel buffer does not match its size".into()))?;
            Ok(GreyImage::new(width, height, image::DynamicImage::ImageLuma16(buffer).to_luma32f().into_raw()))
        }
        other => Err(refuse(format!("{other}-bit pixels; only 8- and 16-bit grey images are supported"))),
    }
}

/// Decodes an X-ray as the CLI does: `(width, height, f32 pixels in [0, 1] as bytes)`.
#[pyfunction]
pub fn load_image(py: Python<'_>, input: Input) -> PyResult<(u32, u32, Vec<u8>)> {
    let image = py.detach(|| input.image()).map_err(|e| crate::cxr_error(&e))?;
    Ok((image.width, image.height, crate::f32_bytes(&image.pixels)))
}
