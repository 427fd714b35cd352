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

use std::io::Read;
use std::path::{Path, PathBuf};

/// Largest image we agree to decode. Real chest X-rays are at most ~4k × 4k (16 Mpx);
/// anything bigger is a mistake or a decompression bomb, refused before allocating.
pub const MAX_PIXELS: u64 = 50_000_000;

/// Smallest side of an image we agree to score. The models look at 224–320 px; a chest film
/// scanned or exported below 64 px holds no lung detail, and a 1×1 "image" scores confidently.
pub const MIN_SIDE: u32 = 64;

/// Largest ratio of the long side to the short one. Chest films are near-square (a cropped
/// one is at most about 2:1); a 1×100000 strip stretched to a square input is noise.
pub const MAX_ASPECT: u32 = 4;

/// Bytes read first to recognise the format and read its header, which sets the cap on
/// the rest of the read (see [`read_image_file`]).
const HEAD_LEN: u64 = 64 * 1024;

/// Room a file may take beyond its pixels: metadata chunks, ICC profiles, DICOM headers.
const METADATA_ALLOWANCE: u64 = 16 * 1024 * 1024;

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
    #[error("{path}: {kind}, not a regular file; refusing to read it")]
    NotAFile { path: PathBuf, kind: &'static str },
    #[error("{path}: {len} bytes, more than {what} can take ({cap} bytes); refusing to read it")]
    FileTooLong { path: PathBuf, len: u64, cap: u64, what: String },
    #[error("{path}: {reason}; not a chest film, refusing to score it")]
    NotAnXray { path: PathBuf, reason: String },
}

impl ImageError {
    pub fn path(&self) -> &Path {
        match self {
            ImageError::Io { path, .. }
            | ImageError::Empty { path }
            | ImageError::UnknownFormat { path }
            | ImageError::TooLarge { path, .. }
            | ImageError::Decode { path, .. }
            | ImageError::UnsupportedDicom { path, .. }
            | ImageError::NotAFile { path, .. }
            | ImageError::FileTooLong { path, .. }
            | ImageError::NotAnXray { path, .. } => path,
        }
    }
}

/// Reads and decodes `path` into a grey image, refusing what cannot be a chest film: the one
/// entry point from a file to pixels ([`read_image_file`], then [`decode_xray`]).
pub fn load_image(path: &Path) -> Result<GreyImage, ImageError> {
    let bytes = read_image_file(path)?;
    decode_xray(path, &bytes)
}

/// Decodes an in-memory file as [`decode_image`] does, then refuses images that cannot be a chest
/// film ([`check_xray`]): what every scorer should call on bytes it read itself.
pub fn decode_xray(path: &Path, bytes: &[u8]) -> Result<GreyImage, ImageError> {
    let image = decode_image(path, bytes)?;
    check_xray(path, &image)?;
    Ok(image)
}

/// Refuses images too small, too elongated or too flat to be a chest film: a model scores any
/// input confidently, so a 1×1 pixel or an all-black frame would otherwise get `covid 0.99`.
pub fn check_xray(path: &Path, image: &GreyImage) -> Result<(), ImageError> {
    let refuse = |reason: String| Err(ImageError::NotAnXray { path: path.to_owned(), reason });
    let (short, long) = (image.width.min(image.height), image.width.max(image.height));
    if short < MIN_SIDE {
        return refuse(format!(
            "image is {}×{} pixels, under the {MIN_SIDE}-pixel minimum side",
            image.width, image.height
        ));
    }
    if long > short * MAX_ASPECT {
        return refuse(format!("image is {}×{} pixels, more elongated than {MAX_ASPECT}:1", image.width, image.height));
    }
    let (min, max) =
        image.pixels.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    if max <= min {
        return refuse(format!("every pixel has the same grey value ({min}): a blank or failed export"));
    }
    Ok(())
}

/// Reads a file for decoding without trusting it: refuses anything but a regular file before
/// opening it (a FIFO would block forever, `/dev/zero` never ends), recognises the format from
/// the first [`HEAD_LEN`] bytes, and reads the rest only up to what the header's image can
/// take ([`max_file_len`]), so a huge or growing file costs at most that much memory.
pub fn read_image_file(path: &Path) -> Result<Vec<u8>, ImageError> {
    let io = |source| ImageError::Io { path: path.to_owned(), source };
    let meta = std::fs::metadata(path).map_err(io)?;
    check_regular(path, &meta)?;
    let file = open_nonblocking(path).map_err(io)?;
    // The path may have been swapped for a FIFO or device between the two looks.
    check_regular(path, &file.metadata().map_err(io)?)?;
    let len = meta.len();
    if len == 0 {
        return Err(ImageError::Empty { path: path.to_owned() });
    }
    let mut reader = std::io::BufReader::new(file);
    let mut bytes = Vec::with_capacity(len.min(HEAD_LEN) as usize);
    (&mut reader).take(HEAD_LEN).read_to_end(&mut bytes).map_err(io)?;
    if bytes.is_empty() {
        return Err(ImageError::Empty { path: path.to_owned() });
    }
    let (cap, what) = max_file_len(path, &bytes)?;
    let too_long = |len| ImageError::FileTooLong { path: path.to_owned(), len, cap, what: what.clone() };
    if len > cap {
        return Err(too_long(len));
    }
    bytes.reserve((len - bytes.len() as u64) as usize);
    // One byte past the cap tells a file that grew since `metadata` from one that fits.
    reader.take(cap + 1 - bytes.len() as u64).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > cap {
        return Err(too_long(bytes.len() as u64));
    }
    Ok(bytes)
}

fn check_regular(path: &Path, meta: &std::fs::Metadata) -> Result<(), ImageError> {
    let file_type = meta.file_type();
    if file_type.is_file() {
        return Ok(());
    }
    let kind = if file_type.is_dir() { "a folder" } else { special_file_kind(&file_type) };
    Err(ImageError::NotAFile { path: path.to_owned(), kind })
}

#[cfg(unix)]
fn special_file_kind(file_type: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_fifo() {
        "a FIFO (named pipe)"
    } else if file_type.is_char_device() || file_type.is_block_device() {
        "a device"
    } else if file_type.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
}

#[cfg(not(unix))]
fn special_file_kind(_: &std::fs::FileType) -> &'static str {
    "a special file"
}

/// Opens for reading without blocking on a FIFO that replaced the file after the type check.
#[cfg(unix)]
fn open_nonblocking(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    // O_NONBLOCK on Linux and the BSDs; it does not change reads of a regular file.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    const O_NONBLOCK: i32 = 0o4000;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    const O_NONBLOCK: i32 = 0x4;
    std::fs::OpenOptions::new().read(true).custom_flags(O_NONBLOCK).open(path)
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::open(path)
}

/// The most bytes a file of this format may hold for the image its header describes, and what
/// that is in words. PNG stores at most 8 bytes a pixel (16-bit RGBA) and deflate adds under
/// 0.1 %; JPEG of 3 components even at quality 100 stays under 2 bytes a component; DICOM
/// pixels are Rows × Columns × Bits Allocated. Each also gets [`METADATA_ALLOWANCE`].
fn max_file_len(path: &Path, head: &[u8]) -> Result<(u64, String), ImageError> {
    if let Some(meta_start) = dicom::sniff(head) {
        let (pixel_bytes, what) = match dicom::header_pixel_bytes(&head[meta_start..]) {
            Some((columns, rows, bytes)) => (bytes, format!("a {columns}×{rows} DICOM")),
            // The header runs past the first bytes read: the largest single frame accepted.
            None => (MAX_PIXELS * 2, format!("a DICOM of at most {} Mpx", MAX_PIXELS / 1_000_000)),
        };
        return Ok((pixel_bytes + METADATA_ALLOWANCE, what));
    }
    let Some(format) = raster::sniff(head) else { return Err(ImageError::UnknownFormat { path: path.to_owned() }) };
    let (name, bytes_per_pixel) = match format {
        ::image::ImageFormat::Png => ("PNG", 8),
        _ => ("JPEG", 6),
    };
    let (pixels, what) = match raster::header_size(head, format) {
        Some((width, height)) => {
            check_pixel_count(path, width.into(), height.into())?;
            (u64::from(width) * u64::from(height), format!("a {width}×{height} {name}"))
        }
        // A JPEG whose frame header lies beyond many metadata segments.
        None => (MAX_PIXELS, format!("a {name} of at most {} Mpx", MAX_PIXELS / 1_000_000)),
    };
    let pixel_bytes = pixels * bytes_per_pixel;
    Ok((pixel_bytes + pixel_bytes / 512 + METADATA_ALLOWANCE, what))
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
