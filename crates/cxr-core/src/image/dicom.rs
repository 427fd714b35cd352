//! DICOM radiographs (CR, DX, secondary captures) through `dicom-object` and `dicom-pixeldata`.
//!
//! Grey values follow the DICOM display pipeline so that the model sees what a radiologist
//! sees: stored values → Modality LUT (Rescale Slope/Intercept) → VOI LUT (the first
//! VOI LUT Sequence item, else the first Window Center/Width with its VOI LUT Function,
//! else a min–max stretch of the modality values) → `[0, 1]`, and MONOCHROME1 (white = low)
//! is inverted so that bright always means dense.
//!
//! Only one frame per file is accepted: a multi-frame object (tomosynthesis, cine) is not a
//! single projection radiograph, and silently scoring one of its frames would hide that.
//! Colour objects are refused for the same reason: chest radiographs are monochrome, and a
//! colour DICOM is a screenshot or an annotated secondary capture.

use std::borrow::Cow;
use std::io::Cursor;
use std::path::Path;

use dicom_dictionary_std::tags;
use dicom_object::file::ReadPreamble;
use dicom_object::{DefaultDicomObject, OpenFileOptions, Tag};
use dicom_pixeldata::{DecodedPixelData, PixelDecoder, PixelRepresentation, VoiLutFunction, WindowLevel};
use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};

use super::{GreyImage, ImageError, check_pixel_count};

/// The 4-byte magic that follows the 128-byte preamble of a DICOM Part 10 file.
const MAGIC: &[u8; 4] = b"DICM";
const PREAMBLE_LEN: usize = 128;

/// Transfer syntaxes whose pixel data is a JPEG code stream (baseline, extended, lossless). The
/// decoder reads 8-bit extended and every lossless stream, but refuses 12-bit extended
/// (`SamplePrecision(12)`): such a file is an error naming it (tests/image_input.rs, files written
/// by dcmtk), never a misread image.
const JPEG_TRANSFER_SYNTAXES: [&str; 4] =
    ["1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70"];

/// Where the file meta group starts, if `bytes` look like a DICOM Part 10 file: after the
/// preamble, or at 0 for the (non-conformant but common) files written without one.
pub(super) fn sniff(bytes: &[u8]) -> Option<usize> {
    if bytes.get(PREAMBLE_LEN..PREAMBLE_LEN + MAGIC.len()) == Some(MAGIC) {
        Some(PREAMBLE_LEN)
    } else if bytes.starts_with(MAGIC) {
        Some(0)
    } else {
        None
    }
}

/// Columns, Rows and the bytes their pixels take (all frames), from the header in `bytes`
/// (starting at the file meta group), when the header up to the pixel data lies within them.
pub(super) fn header_pixel_bytes(bytes: &[u8]) -> Option<(u64, u64, u64)> {
    let obj = OpenFileOptions::new()
        .read_preamble(ReadPreamble::Never)
        .read_until(tags::PIXEL_DATA)
        .from_reader(Cursor::new(bytes))
        .ok()?;
    let int = |tag| obj.element_opt(tag).ok().flatten().and_then(|e| e.to_int::<u64>().ok());
    let (rows, columns) = (int(tags::ROWS)?, int(tags::COLUMNS)?);
    let bytes_per_sample = int(tags::BITS_ALLOCATED).unwrap_or(16).div_ceil(8).max(1);
    let samples = int(tags::SAMPLES_PER_PIXEL).unwrap_or(1).max(1);
    let frames = int(tags::NUMBER_OF_FRAMES).unwrap_or(1).max(1);
    let total = [rows, columns, bytes_per_sample, samples, frames].into_iter().try_fold(1u64, u64::checked_mul)?;
    // A multi-frame object is refused at decoding; reading more than one accepted frame is waste.
    Some((columns, rows, total.min(super::MAX_PIXELS * 2)))
}

pub(super) fn decode(path: &Path, bytes: &[u8], meta_start: usize) -> Result<GreyImage, ImageError> {
    let decode_error = |reason: String| ImageError::Decode { path: path.to_owned(), reason };
    let unsupported = |reason: String| ImageError::UnsupportedDicom { path: path.to_owned(), reason };

    check_declared_lengths(&bytes[meta_start..])
        .map_err(|reason| decode_error(format!("not a readable DICOM file: {reason}")))?;
    let obj = OpenFileOptions::new()
        .read_preamble(ReadPreamble::Never)
        .from_reader(Cursor::new(&bytes[meta_start..]))
        .map_err(|e| decode_error(format!("not a readable DICOM file: {}", error_chain(&e))))?;
    let attrs = Attributes { obj: &obj, path };

    if attrs.get(tags::PIXEL_DATA).is_none() {
        let reason =
            if attrs.get(tags::FLOAT_PIXEL_DATA).is_some() || attrs.get(tags::DOUBLE_FLOAT_PIXEL_DATA).is_some() {
                "floating-point pixel data (parametric maps) is not an X-ray image"
            } else {
                "no pixel data (a report, presentation state or other non-image object); export the image itself"
            };
        return Err(unsupported(reason.into()));
    }

    let samples_per_pixel = attrs.int(tags::SAMPLES_PER_PIXEL, "Samples per Pixel")?.unwrap_or(1);
    let photometric = attrs.string(tags::PHOTOMETRIC_INTERPRETATION, "Photometric Interpretation")?;
    let photometric = photometric.as_deref().unwrap_or("MONOCHROME2");
    let inverted = match photometric {
        "MONOCHROME1" => true,
        "MONOCHROME2" => false,
        other => {
            return Err(unsupported(format!(
                "colour image (Photometric Interpretation {other}, {samples_per_pixel} samples per pixel); \
                 chest X-rays must be MONOCHROME1 or MONOCHROME2"
            )));
        }
    };
    if samples_per_pixel != 1 {
        return Err(unsupported(format!("{samples_per_pixel} samples per pixel in a {photometric} image; expected 1")));
    }

    let rows = attrs.int(tags::ROWS, "Rows")?.ok_or_else(|| decode_error("Rows (0028,0010) is missing".into()))?;
    let columns =
        attrs.int(tags::COLUMNS, "Columns")?.ok_or_else(|| decode_error("Columns (0028,0011) is missing".into()))?;
    if rows == 0 || columns == 0 {
        return Err(decode_error(format!("image is {columns}×{rows} pixels")));
    }
    check_pixel_count(path, columns, rows)?;
    let frames = attrs.int(tags::NUMBER_OF_FRAMES, "Number of Frames")?.unwrap_or(1);
    if frames > 1 {
        return Err(unsupported(format!(
            "{frames} frames (a multi-frame object such as tomosynthesis or cine); \
             cxr reads single-frame radiographs only: export the frame to read as its own file"
        )));
    }
    let bits_allocated = attrs.int(tags::BITS_ALLOCATED, "Bits Allocated")?.unwrap_or(0);
    if bits_allocated != 8 && bits_allocated != 16 {
        return Err(unsupported(format!("Bits Allocated is {bits_allocated}; expected 8 or 16")));
    }

    let ts_uid = obj.meta().transfer_syntax().trim_end_matches(['\0', ' ']);
    let ts = TransferSyntaxRegistry.get(ts_uid).ok_or_else(|| {
        unsupported(format!("unknown transfer syntax {ts_uid}; convert it to explicit VR little endian"))
    })?;
    if !ts.can_decode_all() {
        return Err(unsupported(format!(
            "transfer syntax {} ({ts_uid}) cannot be decoded by this build (supported: uncompressed \
             little endian and JPEG); convert it first, e.g. `gdcmconv --raw IN OUT` or `dcmdjpeg IN OUT`",
            ts.name()
        )));
    }
    if JPEG_TRANSFER_SYNTAXES.contains(&ts_uid) {
        check_jpeg_frame_size(path, &obj, columns, rows)?;
    } else if let Some(element) = attrs.get(tags::PIXEL_DATA)
        && element.fragments().is_none()
    {
        check_native_length(path, element, columns * rows * (bits_allocated / 8))?;
    }

    let pixels = obj
        .decode_pixel_data_frame(0)
        .map_err(|e| decode_error(format!("cannot decode {} pixel data: {}", ts.name(), error_chain(&e))))?;
    let modality = modality_values(&pixels).map_err(decode_error)?;
    let mut grey = apply_voi(&pixels, modality).map_err(decode_error)?;
    if inverted {
        grey.iter_mut().for_each(|v| *v = 1.0 - *v);
    }
    Ok(GreyImage::new(columns as u32, rows as u32, grey))
}

/// The value length that means "until a delimiter" (sequences, items, encapsulated pixel data).
const UNDEFINED_LENGTH: u32 = 0xFFFF_FFFF;

/// Checks that no element declares more bytes than the file has left, before `dicom-parser`
/// reads it: the parser reserves each declared length up front, so a 200-byte file claiming a
/// 4 GB element would allocate 4 GB (found by fuzzing, `fuzz/regressions/image_input`).
///
/// Walks the file meta group (always explicit VR little endian), then the data set in its
/// transfer syntax's encoding, into sequences and items; the fragments of encapsulated pixel
/// data are skipped as opaque bytes. Deflated data sets are left to the parser, which refuses them.
fn check_declared_lengths(bytes: &[u8]) -> Result<(), String> {
    let Some(after_magic) = bytes.strip_prefix(MAGIC) else { return Ok(()) };
    let meta_encoding = Encoding { explicit: true, big_endian: false };
    // Where the parser takes the meta group to end: at the first element that ends at or past
    // what File Meta Information Group Length (0002,0000) says, whatever its VR (the parser
    // refuses a meta group that does not start with it, or whose value is not 4 bytes).
    let Some(first) = after_magic.get(..12) else { return Ok(()) };
    let (length, header) = if has_short_length(&first[4..6]) {
        (u32::from(u16::from_le_bytes([first[6], first[7]])), 8)
    } else {
        (u32::from_le_bytes([first[8], first[9], first[10], first[11]]), 12)
    };
    if first[..4] != [0x02, 0x00, 0x00, 0x00] || length != 4 || after_magic.len() < header + 4 {
        return Ok(());
    }
    let group_length = u32::from_le_bytes([
        after_magic[header],
        after_magic[header + 1],
        after_magic[header + 2],
        after_magic[header + 3],
    ]) as usize;
    let meta_len = header + 4 + walk_elements(&after_magic[header + 4..], meta_encoding, Some(group_length))?;
    let meta = &after_magic[..meta_len];
    let encoding = match transfer_syntax_of(meta).as_deref() {
        Some("1.2.840.10008.1.2") => Encoding { explicit: false, big_endian: false },
        Some("1.2.840.10008.1.2.2") => Encoding { explicit: true, big_endian: true },
        Some("1.2.840.10008.1.2.1.99") => return Ok(()),
        _ => Encoding { explicit: true, big_endian: false },
    };
    walk_elements(after_magic.get(meta_len..).unwrap_or_default(), encoding, None).map(drop)
}

#[derive(Clone, Copy)]
struct Encoding {
    explicit: bool,
    big_endian: bool,
}

/// Walks elements from the start of `bytes` (until `stop_at` bytes are passed, when given: the
/// meta group), checking each declared length against the bytes left. Returns where it stopped.
fn walk_elements(bytes: &[u8], encoding: Encoding, stop_at: Option<usize>) -> Result<usize, String> {
    use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry, VirtualVr};
    let u16_at = |at: usize| {
        let b = [bytes[at], bytes[at + 1]];
        if encoding.big_endian { u16::from_be_bytes(b) } else { u16::from_le_bytes(b) }
    };
    let u32_at = |at: usize| {
        let b = [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]];
        if encoding.big_endian { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) }
    };
    let mut pos = 0;
    // Inside encapsulated pixel data, items hold compressed bytes, not elements.
    let mut in_fragments = false;
    while pos + 8 <= bytes.len() {
        if stop_at.is_some_and(|end| pos >= end) {
            break;
        }
        let (tag_group, tag_element) = (u16_at(pos), u16_at(pos + 2));
        let (length, header, vr) = if tag_group == 0xFFFE {
            // Item and delimiters: tag and a 4-byte length, never a VR.
            if tag_element == 0xE0DD {
                in_fragments = false;
            }
            (u32_at(pos + 4), 8, None)
        } else if encoding.explicit {
            let vr = [bytes[pos + 4], bytes[pos + 5]];
            if !has_short_length(&vr) {
                if pos + 12 > bytes.len() {
                    return Err(format!("element ({tag_group:04X},{tag_element:04X}) is cut short"));
                }
                (u32_at(pos + 8), 12, Some(vr))
            } else {
                (u32::from(u16_at(pos + 6)), 8, Some(vr))
            }
        } else {
            let vr = match dicom_dictionary_std::StandardDataDictionary
                .by_tag(Tag(tag_group, tag_element))
                .map(|e| e.vr())
            {
                Some(VirtualVr::Exact(vr)) => Some(vr.to_bytes()),
                _ => None,
            };
            (u32_at(pos + 4), 8, vr)
        };
        let sequence = match vr {
            None => tag_group == 0xFFFE && tag_element == 0xE000 && !in_fragments,
            Some(vr) => &vr == b"SQ",
        };
        // The parser reads whole values of fixed-size types and then skips the declared length:
        // a length that is no multiple of the size would shift every later header.
        let unit = match vr.as_ref() {
            Some(b"AT" | b"FL" | b"OF" | b"OL" | b"SL" | b"UL") => 4,
            Some(b"FD" | b"OD" | b"OV" | b"SV" | b"UV") => 8,
            Some(b"OW" | b"SS" | b"US") => 2,
            _ => 1,
        };
        if length != UNDEFINED_LENGTH && length % unit != 0 {
            return Err(format!(
                "element ({tag_group:04X},{tag_element:04X}) has length {length}, not a multiple of its value size {unit}"
            ));
        }
        pos += header;
        if length == UNDEFINED_LENGTH {
            if (tag_group, tag_element) == (0x7FE0, 0x0010) {
                in_fragments = true;
            }
            continue;
        }
        let left = bytes.len() - pos;
        if length as usize > left {
            return Err(format!(
                "element ({tag_group:04X},{tag_element:04X}) declares {length} bytes but only {left} follow (cut short or corrupt)"
            ));
        }
        if !sequence {
            pos += length as usize;
        }
    }
    Ok(pos.min(bytes.len()))
}

/// Whether an explicit VR has a 2-byte length. Every other VR, unknown codes included (which
/// the parser reads as UN), has 2 reserved bytes and a 4-byte length.
fn has_short_length(vr: &[u8]) -> bool {
    matches!(
        vr,
        b"AE"
            | b"AS"
            | b"AT"
            | b"CS"
            | b"DA"
            | b"DS"
            | b"DT"
            | b"FL"
            | b"FD"
            | b"IS"
            | b"LO"
            | b"LT"
            | b"PN"
            | b"SH"
            | b"SL"
            | b"SS"
            | b"ST"
            | b"TM"
            | b"UI"
            | b"UL"
            | b"US"
    )
}

/// The Transfer Syntax UID (0002,0010) of a file meta group, read as raw explicit VR LE.
fn transfer_syntax_of(meta: &[u8]) -> Option<String> {
    let mut pos = 0;
    while pos + 8 <= meta.len() {
        let tag = (u16::from_le_bytes([meta[pos], meta[pos + 1]]), u16::from_le_bytes([meta[pos + 2], meta[pos + 3]]));
        let (length, header) = if !has_short_length(&meta[pos + 4..pos + 6]) {
            (u32::from_le_bytes(meta.get(pos + 8..pos + 12)?.try_into().ok()?) as usize, 12)
        } else {
            (usize::from(u16::from_le_bytes([meta[pos + 6], meta[pos + 7]])), 8)
        };
        let value = meta.get(pos + header..pos + header + length)?;
        if tag == (0x0002, 0x0010) {
            return Some(String::from_utf8_lossy(value).trim_end_matches(['\0', ' ']).to_owned());
        }
        pos += header + length;
    }
    None
}

/// A JPEG code stream carries its own size; a mismatch with Rows × Columns means a corrupt
/// file or a decompression bomb that the Rows × Columns check alone would let through.
fn check_jpeg_frame_size(path: &Path, obj: &DefaultDicomObject, columns: u64, rows: u64) -> Result<(), ImageError> {
    let Some(first_fragment) = obj.get(tags::PIXEL_DATA).and_then(|e| e.fragments()).and_then(|f| f.first()) else {
        return Err(ImageError::Decode {
            path: path.to_owned(),
            reason: "JPEG transfer syntax but the pixel data is not encapsulated".into(),
        });
    };
    let header = image::ImageReader::with_format(Cursor::new(first_fragment), image::ImageFormat::Jpeg);
    // Lossless JPEG (SOF3) headers are beyond the `image` crate's parser; jpeg-decoder checks those.
    if let Ok((width, height)) = header.into_dimensions() {
        check_pixel_count(path, width.into(), height.into())?;
        if (u64::from(width), u64::from(height)) != (columns, rows) {
            return Err(ImageError::Decode {
                path: path.to_owned(),
                reason: format!("JPEG frame is {width}×{height} but Rows × Columns say {columns}×{rows}"),
            });
        }
    }
    Ok(())
}

/// Native pixel data longer than Rows × Columns says (beyond the one byte that pads an odd
/// length) means Rows or Columns are wrong or the file is corrupt: decoding would silently
/// crop the image to the first rows' worth of bytes, i.e. score a different picture.
fn check_native_length(
    path: &Path,
    element: &dicom_object::mem::InMemElement,
    expected: u64,
) -> Result<(), ImageError> {
    let Some(actual) = dicom_core::header::HasLength::length(element).get().map(u64::from) else { return Ok(()) };
    if actual > expected + (expected % 2) {
        return Err(ImageError::Decode {
            path: path.to_owned(),
            reason: format!(
                "pixel data is {actual} bytes but Rows × Columns × Bits Allocated need {expected}; Rows/Columns do not describe this data"
            ),
        });
    }
    Ok(())
}

/// Stored values of frame 0 after the Modality LUT, i.e. in the modality's own units.
fn modality_values(pixels: &DecodedPixelData<'_>) -> Result<Vec<f32>, String> {
    let raw =
        pixels.frame_data(0).map_err(|e| format!("pixel data is shorter than Rows × Columns: {}", error_chain(&e)))?;
    let bits_allocated = pixels.bits_allocated();
    let bits_stored = pixels.bits_stored();
    let high_bit = pixels.high_bit();
    if bits_stored == 0 || bits_stored > bits_allocated || high_bit >= bits_allocated || high_bit + 1 < bits_stored {
        return Err(format!(
            "inconsistent bit layout: Bits Allocated {bits_allocated}, Bits Stored {bits_stored}, High Bit {high_bit}"
        ));
    }
    let signed = pixels.pixel_representation() == PixelRepresentation::Signed;
    let rescale = pixels.rescale().map_err(|e| error_chain(&e))?[0];
    let (slope, intercept) = (rescale.slope as f32, rescale.intercept as f32);
    if !slope.is_finite() || !intercept.is_finite() {
        return Err(format!("Rescale Slope {slope} / Intercept {intercept} is not a number"));
    }
    if slope == 0.0 {
        return Err("Rescale Slope (0028,1053) is 0: every pixel would map to the intercept, a blank image".into());
    }

    // Bits above High Bit may hold overlays; bits below the stored range are padding.
    let shift = u32::from(high_bit + 1 - bits_stored);
    let mask = (1u32 << bits_stored) - 1;
    let sign_bit = 1u32 << (bits_stored - 1);
    let stored_value = |word: u32| -> f32 {
        let v = (word >> shift) & mask;
        if signed && v & sign_bit != 0 { (v as i64 - (1i64 << bits_stored)) as f32 } else { v as f32 }
    };
    let values = match bits_allocated {
        8 => raw.iter().map(|&b| stored_value(u32::from(b)) * slope + intercept).collect(),
        // dicom-pixeldata hands out 16-bit samples in native byte order.
        _ => raw
            .chunks_exact(2)
            .map(|w| stored_value(u32::from(u16::from_ne_bytes([w[0], w[1]]))) * slope + intercept)
            .collect(),
    };
    Ok(values)
}

/// Maps modality values into `[0, 1]` with the object's own VOI transform.
fn apply_voi(pixels: &DecodedPixelData<'_>, mut values: Vec<f32>) -> Result<Vec<f32>, String> {
    if let Some(lut) = pixels.voi_lut_sequence().map_err(|e| error_chain(&e))?.and_then(|luts| luts.first())
        && !lut.data.is_empty()
    {
        // Some devices declare 16-bit entries for a LUT that spans 12 bits; normalising by the
        // declared depth would leave the image nearly black, so use the depth the data spans.
        let max_entry = lut.data.iter().copied().max().unwrap_or(0);
        let used_bits = u16::BITS - max_entry.leading_zeros();
        let bits = if used_bits == 0 { u32::from(lut.bits_stored.max(1)) } else { used_bits };
        let full_scale = ((1u64 << bits) - 1) as f32;
        let last = lut.data.len() - 1;
        let first_mapped = lut.min_pixel_value as f32;
        for v in &mut values {
            let index = (v.round() - first_mapped).clamp(0.0, last as f32) as usize;
            *v = (f32::from(lut.data[index]) / full_scale).min(1.0);
        }
        return Ok(values);
    }

    if let Some(window) = pixels.window().map_err(|e| error_chain(&e))?.and_then(|w| w.first()).copied() {
        let function = pixels
            .voi_lut_function()
            .map_err(|e| error_chain(&e))?
            .and_then(|f| f.first())
            .copied()
            .unwrap_or_default();
        if !window.center.is_finite() || !window.width.is_finite() {
            return Err(format!("Window Center {} / Width {} is not a number", window.center, window.width));
        }
        // PS3.3 C.11.2.1.2: Window Width ≥ 1 for LINEAR, > 0 otherwise. A zero width turns the
        // film into a black-and-white threshold image.
        let minimum = if function == VoiLutFunction::Linear { 1.0 } else { f64::MIN_POSITIVE };
        if window.width < minimum {
            return Err(format!(
                "Window Width (0028,1051) is {}, invalid for VOI LUT Function {function:?} (needs ≥ {})",
                window.width,
                if function == VoiLutFunction::Linear { "1" } else { "a positive value" }
            ));
        }
        let window_fn = window_function(function, window);
        values.iter_mut().for_each(|v| *v = window_fn(*v));
        return Ok(values);
    }

    let (min, max) = values.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let range = max - min;
    if range > 0.0 {
        values.iter_mut().for_each(|v| *v = (*v - min) / range);
    } else {
        values.iter_mut().for_each(|v| *v = 0.0);
    }
    Ok(values)
}

/// The VOI LUT functions of DICOM PS3.3 C.11.2.1.2 and C.11.2.1.3, with output range `[0, 1]`.
fn window_function(function: VoiLutFunction, window: WindowLevel) -> impl Fn(f32) -> f32 {
    let center = window.center as f32;
    let width = window.width as f32;
    move |x: f32| match function {
        // LINEAR is defined on width − 1 and needs width ≥ 1; narrower windows (float-scaled
        // data) are what LINEAR_EXACT is for.
        VoiLutFunction::Linear if width >= 1.0 => {
            if width == 1.0 {
                if x <= center - 0.5 { 0.0 } else { 1.0 }
            } else {
                ((x - (center - 0.5)) / (width - 1.0) + 0.5).clamp(0.0, 1.0)
            }
        }
        VoiLutFunction::Linear | VoiLutFunction::LinearExact => {
            if width <= 0.0 {
                if x <= center { 0.0 } else { 1.0 }
            } else {
                ((x - center) / width + 0.5).clamp(0.0, 1.0)
            }
        }
        VoiLutFunction::Sigmoid => 1.0 / (1.0 + (-4.0 * (x - center) / width.max(f32::MIN_POSITIVE)).exp()),
    }
}

/// Reads the few header attributes needed before touching pixel data.
struct Attributes<'a> {
    obj: &'a DefaultDicomObject,
    path: &'a Path,
}

impl Attributes<'_> {
    fn get(&self, tag: Tag) -> Option<&dicom_object::mem::InMemElement> {
        self.obj.element_opt(tag).ok().flatten()
    }

    fn bad_value(&self, name: &str, tag: Tag, reason: impl std::fmt::Display) -> ImageError {
        ImageError::Decode { path: self.path.to_owned(), reason: format!("{name} {tag}: {reason}") }
    }

    fn int(&self, tag: Tag, name: &str) -> Result<Option<u64>, ImageError> {
        match self.get(tag) {
            None => Ok(None),
            Some(e) if dicom_core::header::HasLength::is_empty(e) => Ok(None),
            Some(e) => e.to_int::<u64>().map(Some).map_err(|err| self.bad_value(name, tag, err)),
        }
    }

    fn string(&self, tag: Tag, name: &str) -> Result<Option<String>, ImageError> {
        match self.get(tag) {
            None => Ok(None),
            Some(e) => e
                .to_str()
                .map(|s: Cow<'_, str>| Some(s.trim_matches(|c: char| c == '\0' || c.is_whitespace()).to_owned()))
                .map_err(|err| self.bad_value(name, tag, err)),
        }
    }
}

/// The message of an error and of its causes: the DICOM crates keep the useful part in the source.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}
