//! PNG and JPEG through the `image` crate.

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageFormat, ImageReader, Limits};

use super::{GreyImage, ImageError, MAX_PIXELS, check_pixel_count};

/// Whether `bytes` start like a file this module decodes.
pub(super) fn sniff(bytes: &[u8]) -> Option<ImageFormat> {
    match image::guess_format(bytes) {
        Ok(format @ (ImageFormat::Png | ImageFormat::Jpeg)) => Some(format),
        _ => None,
    }
}

/// Width and height from a file's first bytes, when its header lies within them.
pub(super) fn header_size(head: &[u8], format: ImageFormat) -> Option<(u32, u32)> {
    ImageReader::with_format(Cursor::new(head), format).into_dimensions().ok()
}

pub(super) fn decode(path: &Path, bytes: &[u8], format: ImageFormat) -> Result<GreyImage, ImageError> {
    let decode_error =
        |reason: image::ImageError| ImageError::Decode { path: path.to_owned(), reason: reason.to_string() };
    let reader = || ImageReader::with_format(Cursor::new(bytes), format);

    // The header alone says how much memory the pixels will take: refuse bombs before
    // the decoder allocates anything.
    let (width, height) = reader().into_dimensions().map_err(decode_error)?;
    check_pixel_count(path, width.into(), height.into())?;
    if format == ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        return Err(ImageError::Decode {
            path: path.to_owned(),
            reason: "truncated JPEG: no End Of Image marker after the last scan (file cut short?)".into(),
        });
    }

    if format == ImageFormat::Jpeg {
        if let Some(most) = jpeg_blocks_the_data_can_hold(bytes)
            && most < jpeg_blocks(width, height)
        {
            return Err(ImageError::Decode {
                path: path.to_owned(),
                reason: format!(
                    "corrupt JPEG: its header promises {width}×{height} pixels, more than its {} bytes can encode with its own \
                     Huffman tables (header altered, or pixel data missing)",
                    bytes.len()
                ),
            });
        }
        return decode_jpeg_strictly(path, bytes, width, height);
    }
    // Second guard, in case a decoder ever allocates more than its header promised.
    let mut limits = Limits::default();
    limits.max_image_width = Some(width);
    limits.max_image_height = Some(height);
    // 16-bit RGBA is the widest layout PNG allows: 8 bytes per pixel.
    limits.max_alloc = Some(MAX_PIXELS * 8);
    let mut reader = reader();
    reader.limits(limits);
    let decoded = reader.decode().map_err(|e| ImageError::Decode { path: path.to_owned(), reason: png_reason(&e) })?;
    Ok(into_grey(decoded))
}

/// A PNG decoding error in words: `image` prints the decoder's enum variants
/// (`Corrupt deflate stream. InvalidCodeLengthRepeat`), which tell a user nothing.
fn png_reason(error: &image::ImageError) -> String {
    let text = error.to_string();
    let text = text.strip_prefix("Format error decoding Png: ").unwrap_or(&text);
    if text.starts_with("Corrupt deflate stream") {
        "corrupt PNG: its compressed pixel data (IDAT) is damaged".into()
    } else {
        format!("corrupt PNG: {text}")
    }
}

/// JPEG through zune-jpeg (the decoder `image` uses) in strict mode. `image` runs it leniently:
/// garbage in a scan, or a header promising more rows than the data holds, decodes "fine" with
/// the rest filled grey and only a log line saying so. For medical input such a warning is an
/// error: a half-grey film scores as confidently as a whole one.
fn decode_jpeg_strictly(path: &Path, bytes: &[u8], width: u32, height: u32) -> Result<GreyImage, ImageError> {
    use zune_core::bytestream::ZCursor;
    use zune_core::colorspace::ColorSpace;
    use zune_core::options::DecoderOptions;

    let decode_error =
        |reason: String| ImageError::Decode { path: path.to_owned(), reason: format!("corrupt JPEG: {reason}") };
    let options =
        DecoderOptions::default().set_strict_mode(true).set_max_width(width as usize).set_max_height(height as usize);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    decoder.decode_headers().map_err(|e| decode_error(e.to_string()))?;
    // As `image` asks: grey stays grey, every other layout becomes RGB (folded to grey below).
    let colour = match decoder.input_colorspace() {
        Some(ColorSpace::Luma) => ColorSpace::Luma,
        _ => ColorSpace::RGB,
    };
    decoder.set_options(decoder.options().jpeg_set_out_colorspace(colour));
    let pixels = decoder.decode().map_err(|e| decode_error(e.to_string()))?;
    let decoded = match colour {
        ColorSpace::Luma => image::GrayImage::from_raw(width, height, pixels).map(DynamicImage::ImageLuma8),
        _ => image::RgbImage::from_raw(width, height, pixels).map(DynamicImage::ImageRgb8),
    };
    let decoded = decoded.ok_or_else(|| {
        decode_error(format!("decoder returned fewer pixels than the {width}×{height} header promises"))
    })?;
    Ok(into_grey(decoded))
}

/// zune-jpeg fills a truncated scan with grey and reports success, so a file cut short in a
/// download or copy would silently train the model on grey bands. Such a file lacks the End Of
/// Image marker after its last Start Of Scan; neither marker can occur inside entropy-coded
/// data (0xFF is byte-stuffed there), and an embedded thumbnail's EOI comes before the main scans.
/// The backward scan usually stops within the last few bytes.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    for i in (0..bytes.len().saturating_sub(1)).rev() {
        if bytes[i] == 0xFF {
            match bytes[i + 1] {
                0xD9 => return true,
                0xDA => return false,
                _ => {}
            }
        }
    }
    false
}

/// 8 × 8 blocks of the full-resolution (first) component of a `width` × `height` JPEG.
fn jpeg_blocks(width: u32, height: u32) -> u64 {
    u64::from(width.div_ceil(8)) * u64::from(height.div_ceil(8))
}

/// An upper bound on the full-resolution blocks `bytes` can encode, from the file's own Huffman
/// tables: every block of every scan codes at least a DC difference (and, in a sequential JPEG,
/// an AC code), each at least as long as the table's shortest code. zune-jpeg decodes past the
/// end of the data by feeding zeros, so a header that promises 7000 × 7000 pixels over a 512 × 512
/// film decodes "fine" into a mostly made-up picture; this bound catches such a header without
/// decoding. `None` when the headers cannot be walked (the decoder then reports why).
fn jpeg_blocks_the_data_can_hold(bytes: &[u8]) -> Option<u64> {
    let (mut at, mut sequential, mut shortest) = (2usize, true, [u8::MAX; 2]);
    while at + 4 <= bytes.len() {
        if bytes[at] != 0xFF {
            return None;
        }
        let marker = bytes[at + 1];
        let length = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
        let segment = bytes.get(at + 4..at + 2 + length)?;
        match marker {
            0xC2 | 0xC6 | 0xCA | 0xCE => sequential = false,
            0xC4 => {
                // DHT: one or more tables, each a class/id byte, 16 code-length counts, symbols.
                let mut t = 0;
                while t + 17 <= segment.len() {
                    let class = usize::from(segment[t] >> 4).min(1);
                    let counts = &segment[t + 1..t + 17];
                    if let Some(first) = counts.iter().position(|&c| c > 0) {
                        shortest[class] = shortest[class].min(first as u8 + 1);
                    }
                    t += 17 + counts.iter().map(|&c| usize::from(c)).sum::<usize>();
                }
            }
            0xDA => break,
            _ => {}
        }
        at += 2 + length;
    }
    if shortest[0] == u8::MAX {
        return None;
    }
    let bits_per_block = u64::from(shortest[0]) + if sequential { u64::from(shortest[1].min(16)) } else { 0 };
    Some(bytes.len() as u64 * 8 / bits_per_block)
}

/// Folds colour to grey with Rec. 709 luma weights, which leave R = G = B copies of grey unchanged.
fn into_grey(decoded: DynamicImage) -> GreyImage {
    let (width, height) = (decoded.width(), decoded.height());
    let pixels = match decoded {
        // The common case in the datasets: skip the generic converter.
        DynamicImage::ImageLuma8(grey) => grey.into_raw().into_iter().map(|v| f32::from(v) / 255.0).collect(),
        other => other.to_luma32f().into_raw(),
    };
    GreyImage::new(width, height, pixels)
}

#[cfg(test)]
mod tests {
    use super::{jpeg_blocks, jpeg_blocks_the_data_can_hold, jpeg_is_complete};

    const SOI: [u8; 2] = [0xFF, 0xD8];
    const SOS: [u8; 2] = [0xFF, 0xDA];
    const EOI: [u8; 2] = [0xFF, 0xD9];

    #[test]
    fn complete_when_eoi_follows_the_last_scan_even_with_trailing_bytes() {
        let file = [&SOI[..], &SOS, &[0x12, 0xFF, 0x00, 0x34], &EOI, &[0, 0, 0]].concat();
        assert!(jpeg_is_complete(&file));
    }

    #[test]
    fn a_thumbnail_eoi_does_not_hide_a_truncated_main_image() {
        // APP1 with an embedded thumbnail (its own SOS … EOI), then the main scan, cut short.
        let thumbnail = [&SOI[..], &SOS, &[1, 2, 3], &EOI].concat();
        let file = [&SOI[..], &[0xFF, 0xE1, 0, 10], &thumbnail, &SOS, &[0x55; 16]].concat();
        assert!(!jpeg_is_complete(&file));
        assert!(!jpeg_is_complete(&[]));
        assert!(!jpeg_is_complete(&[0xFF]));
    }

    /// A real film's own header fits its data; the same bytes under a header promising
    /// 7000 × 7000 pixels do not.
    #[test]
    fn a_header_promising_more_pixels_than_the_data_holds_is_caught() {
        let folder = cxr_test_support::datasets().join("nih-chestxray14-sample/No_findings");
        let mut names: Vec<_> = std::fs::read_dir(&folder).unwrap().map(|e| e.unwrap().path()).collect();
        names.sort();
        for path in &names[..20] {
            let mut bytes = std::fs::read(path).unwrap();
            let most = jpeg_blocks_the_data_can_hold(&bytes).unwrap();
            assert!(most >= jpeg_blocks(512, 512), "{}: {most} blocks", path.display());
            let sof = bytes.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
            bytes[sof + 5..sof + 9].copy_from_slice(&[0x1B, 0x58, 0x1B, 0x58]); // 7000 × 7000
            let err = crate::image::decode_image(path, &bytes).unwrap_err().to_string();
            assert!(err.contains("promises 7000×7000 pixels"), "{err}");
        }
    }
}
