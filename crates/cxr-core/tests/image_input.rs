//! X-ray file input: PNG, JPEG and DICOM written here, broken and hostile files, and real
//! images from each dataset collection.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use cxr_core::image::{GreyImage, ImageError, MAX_PIXELS, decode_image, decode_xray, load_image, read_image_file};
use cxr_test_support::datasets;
use dicom_core::value::{DataSetSequence, PixelFragmentSequence};
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::mem::InMemElement;
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use image::{ImageFormat, Luma, Rgb};

const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";
const IMPLICIT_VR_LE: &str = "1.2.840.10008.1.2";
const JPEG_BASELINE: &str = "1.2.840.10008.1.2.4.50";
const JPEG_2000: &str = "1.2.840.10008.1.2.4.90";

fn path(name: &str) -> PathBuf {
    PathBuf::from(format!("synthetic/{name}"))
}

fn encode(img: impl Into<image::DynamicImage>, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.into().write_to(&mut out, format).expect("encoding a test image");
    out.into_inner()
}

/// A 32×16 horizontal ramp 0..=248 (grey).
fn ramp8() -> image::GrayImage {
    image::GrayImage::from_fn(32, 16, |x, _| Luma([(x * 8) as u8]))
}

fn assert_close(actual: &[f32], expected: &[f32], tolerance: f32) {
    assert_eq!(actual.len(), expected.len(), "pixel count");
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert!((a - e).abs() <= tolerance, "pixel {i}: got {a}, expected {e} (±{tolerance})");
    }
}

/// The error of a decode that must fail; a wrongly decoded image is reported by size, not dumped.
fn refused(result: Result<GreyImage, ImageError>) -> ImageError {
    match result {
        Ok(img) => panic!("decoded a {}×{} image that should have been refused", img.width, img.height),
        Err(err) => err,
    }
}

fn assert_in_unit_range(img: &GreyImage, what: &str) {
    assert!(img.pixels.iter().all(|v| (0.0..=1.0).contains(v)), "{what}: values outside [0, 1]");
}

// ---------------------------------------------------------------- PNG and JPEG

#[test]
fn grey_png_is_exact() {
    let ramp = ramp8();
    let img = decode_image(&path("grey.png"), &encode(ramp.clone(), ImageFormat::Png)).unwrap();
    assert_eq!((img.width, img.height), (32, 16));
    assert_eq!(img.to_luma8(), ramp.into_raw());
}

#[test]
fn rgb_copy_of_grey_folds_to_the_same_grey() {
    let ramp = ramp8();
    let rgb = image::RgbImage::from_fn(32, 16, |x, y| {
        let v = ramp.get_pixel(x, y)[0];
        Rgb([v, v, v])
    });
    let from_rgb = decode_image(&path("rgb.png"), &encode(rgb, ImageFormat::Png)).unwrap();
    let from_grey = decode_image(&path("grey.png"), &encode(ramp, ImageFormat::Png)).unwrap();
    assert_close(&from_rgb.pixels, &from_grey.pixels, 1e-5);
}

#[test]
fn sixteen_bit_png_keeps_precision() {
    let values: [u16; 4] = [0, 1, 257, 65535];
    let img16 = image::ImageBuffer::<Luma<u16>, Vec<u16>>::from_fn(4, 1, |x, _| Luma([values[x as usize]]));
    let img = decode_image(&path("16bit.png"), &encode(img16, ImageFormat::Png)).unwrap();
    let expected: Vec<f32> = values.iter().map(|&v| f32::from(v) / 65535.0).collect();
    assert_close(&img.pixels, &expected, 1e-7);
    assert!(img.pixels[1] > 0.0, "1/65535 must survive, not be rounded to 8 bits");
}

#[test]
fn grey_and_rgb_jpeg_decode_close_to_the_original() {
    let ramp = ramp8();
    let expected: Vec<f32> = ramp.as_raw().iter().map(|&v| f32::from(v) / 255.0).collect();
    let grey = decode_image(&path("grey.jpg"), &encode(ramp.clone(), ImageFormat::Jpeg)).unwrap();
    assert_close(&grey.pixels, &expected, 0.05);
    let rgb = image::RgbImage::from_fn(32, 16, |x, y| {
        let v = ramp.get_pixel(x, y)[0];
        Rgb([v, v, v])
    });
    let from_rgb = decode_image(&path("rgb.jpg"), &encode(rgb, ImageFormat::Jpeg)).unwrap();
    assert_close(&from_rgb.pixels, &expected, 0.05);
}

#[test]
fn truncated_png_is_a_decode_error_naming_the_file() {
    let png = encode(ramp8(), ImageFormat::Png);
    for cut in [20, 40, png.len() / 2, png.len() - 13] {
        let err = refused(decode_image(&path("cut.png"), &png[..cut]));
        assert!(matches!(err, ImageError::Decode { .. }), "cut at {cut}: {err}");
        assert!(err.to_string().contains("synthetic/cut.png"), "{err}");
        assert_eq!(err.path(), Path::new("synthetic/cut.png"));
    }
}

#[test]
fn truncated_jpeg_is_a_decode_error() {
    // Large enough that the cut falls in entropy-coded data, not in the headers.
    let noise = image::GrayImage::from_fn(256, 256, |x, y| Luma([((x * 31 + y * 17) ^ (x * y)) as u8]));
    let jpeg = encode(noise, ImageFormat::Jpeg);
    for cut in [10, 200, jpeg.len() / 2, jpeg.len() - 2] {
        let err = refused(decode_image(&path("cut.jpg"), &jpeg[..cut]));
        assert!(matches!(err, ImageError::Decode { .. }), "cut at {cut}: {err}");
        assert!(err.to_string().contains("synthetic/cut.jpg"), "{err}");
    }
}

#[test]
fn empty_and_unknown_files_are_named() {
    let err = refused(decode_image(&path("empty.png"), &[]));
    assert!(matches!(err, ImageError::Empty { .. }), "{err}");
    assert!(err.to_string().contains("synthetic/empty.png"));

    for bytes in [&b"hello, this is not an image"[..], b"GIF89a\x01\x00\x01\x00", &[0u8; 300]] {
        let err = refused(decode_image(&path("unknown.bin"), bytes));
        assert!(matches!(err, ImageError::UnknownFormat { .. }), "{err}");
        assert!(err.to_string().contains("synthetic/unknown.bin"));
    }
}

#[test]
fn missing_file_is_an_io_error_naming_it() {
    let missing = Path::new("definitely/not/here.png");
    let err = refused(load_image(missing));
    assert!(matches!(err, ImageError::Io { .. }), "{err}");
    assert!(err.to_string().contains("definitely/not/here.png"));
}

#[test]
fn load_image_reads_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ramp.png");
    let ramp = image::GrayImage::from_fn(128, 96, |x, _| Luma([(x * 2) as u8]));
    std::fs::write(&file, encode(ramp, ImageFormat::Png)).unwrap();
    let img = load_image(&file).unwrap();
    assert_eq!((img.width, img.height), (128, 96));
}

// ---------------------------------------------------------------- hostile files on disk

/// `len` bytes on disk that take no space: `head`, then a hole.
fn sparse_file(path: &Path, head: &[u8], len: u64) {
    std::fs::write(path, head).unwrap();
    std::fs::OpenOptions::new().write(true).open(path).unwrap().set_len(len).unwrap();
}

#[test]
fn special_files_are_refused_before_opening_so_nothing_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("p.png");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    // Opening a FIFO for reading blocks until a writer comes: this would hang without the check.
    let err = refused(load_image(&fifo));
    assert!(matches!(err, ImageError::NotAFile { .. }) && err.to_string().contains("p.png: a FIFO"), "{err}");
    let err = refused(load_image(Path::new("/dev/zero")));
    assert!(matches!(err, ImageError::NotAFile { .. }) && err.to_string().contains("/dev/zero: a device"), "{err}");
    let err = refused(load_image(dir.path()));
    assert!(err.to_string().contains("a folder, not a regular file"), "{err}");
}

#[test]
fn huge_files_are_refused_from_their_header_without_reading_them() {
    let dir = tempfile::tempdir().unwrap();
    // A real 128×96 PNG followed by 3 GB of nothing: at most 8 B/px + allowance may be read.
    let png = encode(image::GrayImage::from_fn(128, 96, |x, y| Luma([(x + y) as u8])), ImageFormat::Png);
    let big = dir.path().join("b.png");
    sparse_file(&big, &png, 3 << 30);
    let err = refused(load_image(&big));
    match &err {
        ImageError::FileTooLong { len, cap, .. } => assert!(*len == 3 << 30 && *cap < 20 << 20, "{err}"),
        other => panic!("expected FileTooLong, got {other}"),
    }
    assert!(err.to_string().contains("b.png") && err.to_string().contains("a 128×96 PNG"), "{err}");
    // Not an image at all: refused from the first bytes, whatever follows.
    let junk = dir.path().join("junk.png");
    sparse_file(&junk, b"not an image", 3 << 30);
    assert!(matches!(refused(load_image(&junk)), ImageError::UnknownFormat { .. }));
    // The cap is no obstacle to a real file.
    let small = dir.path().join("ok.png");
    std::fs::write(&small, &png).unwrap();
    assert_eq!(read_image_file(&small).unwrap(), png);
}

#[test]
fn images_that_cannot_be_a_chest_film_are_refused_with_the_reason() {
    let ramp = |w: u32, h: u32| {
        encode(image::GrayImage::from_fn(w, h, |x, y| Luma([((x + y) % 256) as u8])), ImageFormat::Png)
    };
    for (w, h, why) in [
        (1, 1, "under the 64-pixel minimum"),
        (1, 100_000, "under the 64-pixel minimum"),
        (100_000, 1, "under the 64-pixel minimum"),
        (64, 1000, "more elongated than 4:1"),
        (2000, 100, "more elongated than 4:1"),
    ] {
        let err = refused(decode_xray(&path("odd.png"), &ramp(w, h)));
        assert!(matches!(err, ImageError::NotAnXray { .. }), "{w}×{h}: {err}");
        assert!(err.to_string().contains(why) && err.to_string().contains("synthetic/odd.png"), "{w}×{h}: {err}");
    }
    let black = encode(image::GrayImage::new(512, 512), ImageFormat::Png);
    let err = refused(decode_xray(&path("black.png"), &black));
    assert!(err.to_string().contains("same grey value"), "{err}");
    assert!(decode_xray(&path("ok.png"), &ramp(256, 512)).is_ok());
}

/// A real chest X-ray as JPEG bytes, re-encoded at `side`² so the test controls its layout.
fn real_jpeg(side: u32) -> Vec<u8> {
    let file = first_images(&datasets().join("chest_xray"), 1).remove(0);
    let img = load_image(&file).unwrap();
    let grey = image::GrayImage::from_raw(img.width, img.height, img.to_luma8()).unwrap();
    encode(image::imageops::resize(&grey, side, side, image::imageops::FilterType::Triangle), ImageFormat::Jpeg)
}

#[test]
fn garbage_inside_a_jpeg_scan_is_an_error_not_a_grey_band() {
    let mut jpeg = real_jpeg(512);
    let sos = jpeg.windows(2).rposition(|w| w == [0xFF, 0xDA]).unwrap();
    let scan = sos..jpeg.len() - 2;
    // Overwrite 2 kB at 40 % of the scan with a fixed pseudo-random pattern.
    let at = scan.start + (scan.end - scan.start) * 2 / 5;
    let mut x = 0x2545_F491u32;
    for b in &mut jpeg[at..at + 2048] {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    let err = refused(decode_image(&path("garbage.jpg"), &jpeg));
    assert!(err.to_string().contains("synthetic/garbage.jpg: cannot decode image: corrupt JPEG"), "{err}");
}

// ---------------------------------------------------------------- decompression bombs

/// A real PNG header for a 30,000 × 30,000 grey image (900 Mpx) with a few bytes of IDAT:
/// a few hundred bytes that would ask a naive decoder for 900 MB (3.6 GB as f32).
fn png_bomb() -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, 30_000, 30_000);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().unwrap();
        // A valid zlib stream start (stored block header) with far too little data.
        writer.write_chunk(png::chunk::IDAT, &[0x78, 0x01, 0x00, 0x00, 0x80, 0xff, 0x7f, 0, 0, 0, 0]).unwrap();
        // Dropping the writer appends IEND.
    }
    out
}

#[test]
fn png_bomb_is_refused_from_its_header() {
    let bomb = png_bomb();
    assert!(bomb.len() < 1024, "the bomb itself is tiny ({} bytes)", bomb.len());
    let err = refused(decode_image(&path("bomb.png"), &bomb));
    match &err {
        ImageError::TooLarge { width, height, .. } => assert_eq!((*width, *height), (30_000, 30_000)),
        other => panic!("expected TooLarge, got {other}"),
    }
    let message = err.to_string();
    assert!(message.contains("synthetic/bomb.png") && message.contains("900 Mpx"), "{message}");
}

#[test]
fn jpeg_bomb_is_refused_from_its_header() {
    let mut jpeg = encode(ramp8(), ImageFormat::Jpeg);
    // Rewrite the SOF0 frame size to 65,500 × 65,500 (4.3 Gpx).
    let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).expect("baseline JPEG has SOF0");
    jpeg[sof + 5..sof + 9].copy_from_slice(&[0xFF, 0xDC, 0xFF, 0xDC]);
    let err = refused(decode_image(&path("bomb.jpg"), &jpeg));
    assert!(matches!(err, ImageError::TooLarge { width: 65_500, height: 65_500, .. }), "{err}");
}

#[test]
fn the_limit_itself_is_accepted_by_the_check() {
    // 7071 × 7071 = 49,999,041 px ≤ MAX_PIXELS: refused only for being a bad PNG, not for size.
    const { assert!(7071u64 * 7071 <= MAX_PIXELS) };
    let mut header = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut header, 7071, 7071);
        encoder.set_color(png::ColorType::Grayscale);
        let mut writer = encoder.write_header().unwrap();
        writer.write_chunk(png::chunk::IDAT, &[0x78, 0x01]).unwrap();
    }
    let err = refused(decode_image(&path("big.png"), &header));
    assert!(matches!(err, ImageError::Decode { .. }), "{err}");
}

// ---------------------------------------------------------------- DICOM

/// Image attributes of a single-frame monochrome DICOM.
struct Dicom {
    transfer_syntax: &'static str,
    rows: u16,
    columns: u16,
    bits_allocated: u16,
    bits_stored: u16,
    signed: bool,
    photometric: &'static str,
    extra: Vec<InMemElement>,
    pixel_data: Option<InMemElement>,
}

impl Dicom {
    fn new(columns: u16, rows: u16, bits_allocated: u16) -> Self {
        Dicom {
            transfer_syntax: EXPLICIT_VR_LE,
            rows,
            columns,
            bits_allocated,
            bits_stored: bits_allocated,
            signed: false,
            photometric: "MONOCHROME2",
            extra: Vec::new(),
            pixel_data: None,
        }
    }

    fn pixels8(mut self, values: &[u8]) -> Self {
        self.pixel_data = Some(DataElement::new(tags::PIXEL_DATA, VR::OB, PrimitiveValue::U8(values.into())));
        self
    }

    fn pixels16(mut self, values: &[u16]) -> Self {
        self.pixel_data = Some(DataElement::new(tags::PIXEL_DATA, VR::OW, PrimitiveValue::U16(values.into())));
        self
    }

    fn with(mut self, tag: dicom_object::Tag, vr: VR, value: &str) -> Self {
        self.extra.push(DataElement::new(tag, vr, PrimitiveValue::from(value)));
        self
    }

    /// The whole Part 10 file: preamble, "DICM", meta group, data set.
    fn file(self) -> Vec<u8> {
        let mut obj = InMemDicomObject::new_empty();
        let mut put = |tag, vr, value: PrimitiveValue| obj.put(DataElement::new(tag, vr, value));
        // Digital X-Ray Image Storage – For Presentation.
        put(tags::SOP_CLASS_UID, VR::UI, "1.2.840.10008.5.1.4.1.1.1.1".into());
        put(tags::SOP_INSTANCE_UID, VR::UI, "2.25.1234567890".into());
        put(tags::MODALITY, VR::CS, "DX".into());
        put(tags::SAMPLES_PER_PIXEL, VR::US, PrimitiveValue::from(1u16));
        put(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, self.photometric.into());
        put(tags::ROWS, VR::US, PrimitiveValue::from(self.rows));
        put(tags::COLUMNS, VR::US, PrimitiveValue::from(self.columns));
        put(tags::BITS_ALLOCATED, VR::US, PrimitiveValue::from(self.bits_allocated));
        put(tags::BITS_STORED, VR::US, PrimitiveValue::from(self.bits_stored));
        put(tags::HIGH_BIT, VR::US, PrimitiveValue::from(self.bits_stored - 1));
        put(tags::PIXEL_REPRESENTATION, VR::US, PrimitiveValue::from(u16::from(self.signed)));
        for element in self.extra {
            obj.put(element);
        }
        if let Some(pixels) = self.pixel_data {
            obj.put(pixels);
        }
        let file = obj
            .with_meta(FileMetaTableBuilder::new().transfer_syntax(self.transfer_syntax))
            .expect("complete file meta group");
        let mut out = Vec::new();
        file.write_all(&mut out).expect("writing DICOM to memory");
        out
    }
}

fn decode_dicom(name: &str, file: &[u8]) -> Result<GreyImage, ImageError> {
    decode_image(&path(name), file)
}

#[test]
fn dicom_8bit_monochrome2_is_stretched_min_to_max() {
    let values = [10u8, 60, 110, 210];
    let img = decode_dicom("mono2.dcm", &Dicom::new(2, 2, 8).pixels8(&values).file()).unwrap();
    assert_eq!((img.width, img.height), (2, 2));
    assert_close(&img.pixels, &[0.0, 0.25, 0.5, 1.0], 1e-6);
}

#[test]
fn dicom_implicit_vr_and_no_preamble_are_read() {
    let mut dicom = Dicom::new(2, 2, 8).pixels8(&[0, 85, 170, 255]);
    dicom.transfer_syntax = IMPLICIT_VR_LE;
    let file = dicom.file();
    let expected = [0.0, 1.0 / 3.0, 2.0 / 3.0, 1.0];
    assert_close(&decode_dicom("implicit.dcm", &file).unwrap().pixels, &expected, 1e-6);
    // Some archives strip the 128-byte preamble and start at "DICM".
    assert_close(&decode_dicom("no-preamble.dcm", &file[128..]).unwrap().pixels, &expected, 1e-6);
}

#[test]
fn dicom_16bit_rescale_then_window() {
    // Stored s → modality 2·s − 1000: −1000, 0, 500, 1000, 2000, 3000.
    let stored = [0u16, 500, 750, 1000, 1500, 2000];
    let file = Dicom::new(6, 1, 16)
        .pixels16(&stored)
        .with(tags::RESCALE_SLOPE, VR::DS, "2")
        .with(tags::RESCALE_INTERCEPT, VR::DS, "-1000")
        .with(tags::WINDOW_CENTER, VR::DS, "1000")
        .with(tags::WINDOW_WIDTH, VR::DS, "2000")
        .file();
    let img = decode_dicom("window.dcm", &file).unwrap();
    // DICOM LINEAR window, c = 1000, w = 2000: y = (x − 999.5) / 1999 + 0.5, clamped.
    // x = −1000 → 0; 0 → 0; 500 → 0.250125…; 1000 → 0.500250…; 2000 → 1.00050… → 1; 3000 → 1.
    let expected = [0.0, 0.0, 0.250_125_06, 0.500_250_1, 1.0, 1.0];
    assert_close(&img.pixels, &expected, 1e-5);
}

#[test]
fn dicom_zero_window_width_or_rescale_slope_is_refused_not_drawn_black() {
    let base = || Dicom::new(3, 1, 16).pixels16(&[100, 200, 300]);
    let zero_width = base().with(tags::WINDOW_CENTER, VR::DS, "200").with(tags::WINDOW_WIDTH, VR::DS, "0").file();
    let err = refused(decode_dicom("width0.dcm", &zero_width));
    assert!(
        err.to_string().contains("width0.dcm") && err.to_string().contains("Window Width (0028,1051) is 0"),
        "{err}"
    );
    let zero_slope = base().with(tags::RESCALE_SLOPE, VR::DS, "0").with(tags::RESCALE_INTERCEPT, VR::DS, "0").file();
    let err = refused(decode_dicom("slope0.dcm", &zero_slope));
    assert!(
        err.to_string().contains("slope0.dcm") && err.to_string().contains("Rescale Slope (0028,1053) is 0"),
        "{err}"
    );
}

#[test]
fn dicom_pixel_data_longer_than_rows_times_columns_is_refused_not_cropped() {
    let file = Dicom::new(2, 2, 8).pixels8(&[0, 85, 170, 255, 1, 2, 3, 4]).file();
    let err = refused(decode_dicom("long.dcm", &file));
    assert!(
        err.to_string().contains("long.dcm")
            && err.to_string().contains("pixel data is 8 bytes but Rows × Columns × Bits Allocated need 4"),
        "{err}"
    );
    // One pad byte after an odd length is the standard's, not a mismatch.
    let padded = Dicom::new(3, 1, 8).pixels8(&[0, 128, 255, 0]).file();
    assert!(decode_dicom("padded.dcm", &padded).is_ok());
}

#[test]
fn dicom_window_functions_linear_exact_and_sigmoid() {
    let base = || {
        Dicom::new(3, 1, 16).pixels16(&[100, 200, 300]).with(tags::WINDOW_CENTER, VR::DS, "200").with(
            tags::WINDOW_WIDTH,
            VR::DS,
            "100",
        )
    };
    let exact = decode_dicom("exact.dcm", &base().with(tags::VOILUT_FUNCTION, VR::CS, "LINEAR_EXACT").file()).unwrap();
    // y = (x − 200) / 100 + 0.5, clamped.
    assert_close(&exact.pixels, &[0.0, 0.5, 1.0], 1e-6);
    let sigmoid = decode_dicom("sigmoid.dcm", &base().with(tags::VOILUT_FUNCTION, VR::CS, "SIGMOID").file()).unwrap();
    // y = 1 / (1 + exp(−4 (x − 200) / 100)).
    let expected = [1.0 / (1.0 + 4f32.exp()), 0.5, 1.0 / (1.0 + (-4f32).exp())];
    assert_close(&sigmoid.pixels, &expected, 1e-6);
}

#[test]
fn dicom_voi_lut_sequence_wins_over_the_window() {
    // LUT Descriptor: 4 entries, first mapped value 100, 8-bit entries.
    let item = InMemDicomObject::from_element_iter([
        DataElement::new(tags::LUT_DESCRIPTOR, VR::US, PrimitiveValue::U16([4u16, 100, 8][..].into())),
        DataElement::new(tags::LUT_DATA, VR::OW, PrimitiveValue::U16([0u16, 50, 100, 200][..].into())),
    ]);
    let mut dicom = Dicom::new(5, 1, 16)
        .pixels16(&[99, 101, 102, 103, 500])
        .with(tags::WINDOW_CENTER, VR::DS, "0")
        .with(tags::WINDOW_WIDTH, VR::DS, "10");
    dicom.extra.push(DataElement::new(tags::VOILUT_SEQUENCE, VR::SQ, DataSetSequence::from(vec![item])));
    let img = decode_dicom("voi-lut.dcm", &dicom.file()).unwrap();
    // Below the first mapped value → first entry; past the end → last entry; the entries
    // span 8 bits, so 255 is white.
    assert_close(&img.pixels, &[0.0, 50.0 / 255.0, 100.0 / 255.0, 200.0 / 255.0, 200.0 / 255.0], 1e-6);
}

#[test]
fn dicom_12bit_stored_in_16_ignores_the_high_bits() {
    // Bits 12–15 hold overlay/garbage bits that must not leak into the image.
    let stored = [0u16, 1024, 2048, 4095].map(|v| v | 0xF000);
    let mut dicom = Dicom::new(4, 1, 16).pixels16(&stored);
    dicom.bits_stored = 12;
    let img = decode_dicom("12bit.dcm", &dicom.file()).unwrap();
    assert_close(&img.pixels, &[0.0, 1024.0 / 4095.0, 2048.0 / 4095.0, 1.0], 1e-6);
}

#[test]
fn dicom_monochrome1_is_inverted() {
    let mut dicom = Dicom::new(3, 1, 8).pixels8(&[0, 255, 51]);
    dicom.photometric = "MONOCHROME1";
    let img = decode_dicom("mono1.dcm", &dicom.file()).unwrap();
    // Min–max gives 0, 1, 0.2; MONOCHROME1 means low values are white.
    assert_close(&img.pixels, &[1.0, 0.0, 0.8], 1e-6);
}

#[test]
fn dicom_signed_pixels_are_sign_extended() {
    let values: [i16; 3] = [-1000, 0, 1000];
    let mut dicom = Dicom::new(3, 1, 16).pixels16(&values.map(|v| v as u16));
    dicom.signed = true;
    assert_close(&decode_dicom("signed16.dcm", &dicom.file()).unwrap().pixels, &[0.0, 0.5, 1.0], 1e-6);

    // 12 bits stored, signed: 0x800 = −2048, 0xFFF = −1, 0x7FF = 2047.
    let mut dicom = Dicom::new(4, 1, 16).pixels16(&[0x800, 0xFFF, 0, 0x7FF]);
    dicom.signed = true;
    dicom.bits_stored = 12;
    let img = decode_dicom("signed12.dcm", &dicom.file()).unwrap();
    assert_close(&img.pixels, &[0.0, 2047.0 / 4095.0, 2048.0 / 4095.0, 1.0], 1e-6);
}

#[test]
fn dicom_signed_pixels_with_ct_style_window() {
    // Signed modality values with a window centred below zero.
    let values: [i16; 3] = [-600, -300, 0];
    let mut dicom = Dicom::new(3, 1, 16)
        .pixels16(&values.map(|v| v as u16))
        .with(tags::WINDOW_CENTER, VR::DS, "-300")
        .with(tags::WINDOW_WIDTH, VR::DS, "600")
        .with(tags::VOILUT_FUNCTION, VR::CS, "LINEAR_EXACT");
    dicom.signed = true;
    let img = decode_dicom("signed-window.dcm", &dicom.file()).unwrap();
    assert_close(&img.pixels, &[0.0, 0.5, 1.0], 1e-6);
}

#[test]
fn dicom_jpeg_baseline_decodes_like_the_jpeg_itself() {
    let (w, h) = (64u32, 48u32);
    let gradient = image::GrayImage::from_fn(w, h, |x, y| Luma([(x * 3 + y) as u8]));
    let jpeg = encode(gradient.clone(), ImageFormat::Jpeg);
    let mut dicom = Dicom::new(w as u16, h as u16, 8)
        // LINEAR_EXACT with c = 127.5, w = 255 maps x to x / 255: the values of the JPEG itself.
        .with(tags::WINDOW_CENTER, VR::DS, "127.5")
        .with(tags::WINDOW_WIDTH, VR::DS, "255")
        .with(tags::VOILUT_FUNCTION, VR::CS, "LINEAR_EXACT");
    dicom.transfer_syntax = JPEG_BASELINE;
    dicom.pixel_data =
        Some(DataElement::new(tags::PIXEL_DATA, VR::OB, PixelFragmentSequence::new_fragments(vec![jpeg.clone()])));
    let from_dicom = decode_dicom("jpeg-baseline.dcm", &dicom.file()).unwrap();
    assert_eq!((from_dicom.width, from_dicom.height), (w, h));
    let from_jpeg = decode_image(&path("same.jpg"), &jpeg).unwrap();
    // Two JPEG decoders (jpeg-decoder vs zune-jpeg) may differ by an IDCT rounding step.
    assert_close(&from_dicom.pixels, &from_jpeg.pixels, 2.0 / 255.0);
    let original: Vec<f32> = gradient.as_raw().iter().map(|&v| f32::from(v) / 255.0).collect();
    assert_close(&from_dicom.pixels, &original, 0.05);
}

#[test]
fn dicom_jpeg_frame_larger_than_rows_columns_is_refused() {
    let jpeg = encode(ramp8(), ImageFormat::Jpeg); // 32 × 16
    let mut dicom = Dicom::new(8, 8, 8);
    dicom.transfer_syntax = JPEG_BASELINE;
    dicom.pixel_data =
        Some(DataElement::new(tags::PIXEL_DATA, VR::OB, PixelFragmentSequence::new_fragments(vec![jpeg])));
    let err = refused(decode_dicom("jpeg-mismatch.dcm", &dicom.file()));
    assert!(matches!(err, ImageError::Decode { .. }) && err.to_string().contains("32×16"), "{err}");
}

#[test]
fn dicom_without_pixel_data_is_unsupported() {
    let err = refused(decode_dicom("report.dcm", &Dicom::new(2, 2, 8).file()));
    assert!(matches!(err, ImageError::UnsupportedDicom { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("synthetic/report.dcm") && message.contains("no pixel data"), "{message}");
}

#[test]
fn dicom_colour_and_multi_frame_are_unsupported() {
    let mut colour = Dicom::new(1, 1, 8).pixels8(&[1, 2, 3]);
    colour.photometric = "RGB";
    let err = refused(decode_dicom("colour.dcm", &colour.file()));
    assert!(matches!(err, ImageError::UnsupportedDicom { .. }) && err.to_string().contains("colour"), "{err}");

    let frames = Dicom::new(2, 1, 8).pixels8(&[1, 2, 3, 4]).with(tags::NUMBER_OF_FRAMES, VR::IS, "2").file();
    let err = refused(decode_dicom("cine.dcm", &frames));
    assert!(matches!(err, ImageError::UnsupportedDicom { .. }) && err.to_string().contains("2 frames"), "{err}");
}

#[test]
fn dicom_unsupported_transfer_syntax_says_how_to_convert() {
    let mut dicom = Dicom::new(2, 2, 8);
    dicom.transfer_syntax = JPEG_2000;
    dicom.pixel_data = Some(DataElement::new(
        tags::PIXEL_DATA,
        VR::OB,
        PixelFragmentSequence::new_fragments(vec![vec![0xFF, 0x4F, 0xFF, 0x51]]),
    ));
    let err = refused(decode_dicom("j2k.dcm", &dicom.file()));
    assert!(matches!(err, ImageError::UnsupportedDicom { .. }), "{err}");
    assert!(err.to_string().contains("1.2.840.10008.1.2.4.90") && err.to_string().contains("gdcmconv"), "{err}");
}

#[test]
fn dicom_rows_columns_bomb_is_refused_before_decoding() {
    // 30,000 × 30,000 declared, 4 bytes of pixel data.
    let err = refused(decode_dicom("bomb.dcm", &Dicom::new(30_000, 30_000, 16).pixels16(&[1, 2]).file()));
    assert!(matches!(err, ImageError::TooLarge { width: 30_000, height: 30_000, .. }), "{err}");
}

#[test]
fn dicom_short_or_truncated_pixel_data_is_a_decode_error() {
    let err = refused(decode_dicom("short.dcm", &Dicom::new(4, 4, 8).pixels8(&[1, 2, 3, 4]).file()));
    assert!(matches!(err, ImageError::Decode { .. }), "{err}");

    let file = Dicom::new(16, 16, 8).pixels8(&[7; 256]).file();
    for cut in [140, 200, file.len() - 100] {
        let err = refused(decode_dicom("cut.dcm", &file[..cut]));
        assert!(matches!(err, ImageError::Decode { .. }), "cut at {cut}: {err}");
        assert!(err.to_string().contains("synthetic/cut.dcm"), "{err}");
    }
}

// ---------------------------------------------------------------- DICOM written by dcmtk

/// Runs a dcmtk tool (Debian package `dcmtk`, which scripts/test.sh installs); a missing tool
/// fails the test, since the DICOM files below can come from no other writer.
fn dcmtk(tool: &str, args: &[&std::ffi::OsStr]) {
    let out = std::process::Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{tool}: {e}; install dcmtk (apt-get install dcmtk; scripts/test.sh does)"));
    assert!(out.status.success(), "{tool} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// The stored values of an uncompressed DICOM written by dcmtk: its pixel data is its last
/// element, so the values are the file's last `count` little-endian words.
fn dcmtk_raw_values(file: &[u8], count: usize) -> Vec<u16> {
    file[file.len() - 2 * count..].chunks_exact(2).map(|w| u16::from_le_bytes([w[0], w[1]])).collect()
}

/// A real X-ray as an uncompressed DX image of `bits` (8 or 12) written by dcmtk (`dump2dcm`) into
/// `dir/source.dcm`, with a LINEAR_EXACT window that maps a stored value x to x / (2^bits − 1).
/// Returns the stored values.
fn dcmtk_source(dir: &Path, bits: u32) -> Vec<u16> {
    let source = image::open(datasets().join("covid19-radiography/COVID/COVID-1.jpg")).unwrap().to_luma8();
    let (w, h) = source.dimensions();
    // 8 bits as they are, or spread over 12: 0 → 0, 255 → 4095.
    let stored: Vec<u16> = source
        .as_raw()
        .iter()
        .map(|&v| if bits == 8 { u16::from(v) } else { u16::from(v) << 4 | u16::from(v) >> 4 })
        .collect();
    let (allocated, vr, bytes): (u32, &str, Vec<u8>) = if bits == 8 {
        (8, "OB", stored.iter().map(|&v| v as u8).collect())
    } else {
        (16, "OW", stored.iter().flat_map(|v| v.to_le_bytes()).collect())
    };
    std::fs::write(dir.join("pixels.raw"), bytes).unwrap();
    let full_scale = (1u32 << bits) - 1;
    std::fs::write(
        dir.join("source.dump"),
        format!(
            "(0008,0016) UI =DigitalXRayImageStorageForPresentation\n(0008,0018) UI [2.25.42]\n(0008,0060) CS [DX]\n\
             (0028,0002) US 1\n(0028,0004) CS [MONOCHROME2]\n(0028,0010) US {h}\n(0028,0011) US {w}\n\
             (0028,0100) US {allocated}\n(0028,0101) US {bits}\n(0028,0102) US {}\n(0028,0103) US 0\n\
             (0028,1050) DS [{}]\n(0028,1051) DS [{full_scale}]\n(0028,1056) CS [LINEAR_EXACT]\n(7fe0,0010) {vr} =pixels.raw\n",
            bits - 1,
            f64::from(full_scale) / 2.0,
        ),
    )
    .unwrap();
    // dump2dcm reads `=pixels.raw` relative to its working directory.
    let out = std::process::Command::new("dump2dcm")
        .current_dir(dir)
        .args(["--write-xfer-little", "source.dump", "source.dcm"])
        .output()
        .unwrap_or_else(|e| panic!("dump2dcm: {e}; install dcmtk (apt-get install dcmtk; scripts/test.sh does)"));
    assert!(out.status.success(), "dump2dcm: {}", String::from_utf8_lossy(&out.stderr));
    stored
}

/// `dir/source.dcm` re-encoded by `dcmcjpeg FLAGS` into `dir/NAME`; checks the transfer syntax.
fn dcmcjpeg(dir: &Path, flags: &[&str], uid: &str, name: &str) -> PathBuf {
    let encoded = dir.join(name);
    let mut args: Vec<&std::ffi::OsStr> = flags.iter().map(std::ffi::OsStr::new).collect();
    let source = dir.join("source.dcm");
    args.extend([source.as_os_str(), encoded.as_os_str()]);
    dcmtk("dcmcjpeg", &args);
    let bytes = std::fs::read(&encoded).unwrap();
    assert!(bytes.windows(uid.len()).any(|w| w == uid.as_bytes()), "{name} is not in transfer syntax {uid}");
    encoded
}

fn decode_file(file: &Path) -> Result<GreyImage, ImageError> {
    decode_image(file, &std::fs::read(file).unwrap())
}

/// DICOM written by dcmtk, not by this code: a real X-ray as a 12-bit DX image, uncompressed and
/// re-encoded (`dcmcjpeg`) in both JPEG lossless syntaxes (process 14, and its first-order
/// prediction form), decodes to exactly the stored values. 12-bit JPEG extended (process 4) is
/// beyond the JPEG decoder (jpeg-decoder reads 8-bit DCT only): such a file is refused, naming
/// itself, never decoded to something else.
#[test]
fn dicom_12_bit_uncompressed_and_jpeg_lossless_written_by_dcmtk_decode_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let stored = dcmtk_source(dir.path(), 12);
    let source = dir.path().join("source.dcm");
    let bytes = std::fs::read(&source).unwrap();
    assert_eq!(dcmtk_raw_values(&bytes, stored.len()), stored, "dcmtk wrote the values given");
    let exact: Vec<f32> = stored.iter().map(|&v| f32::from(v) / 4095.0).collect();
    assert_close(&decode_file(&source).unwrap().pixels, &exact, 1e-6);
    for (flags, uid, name) in [
        (&["+e1"][..], "1.2.840.10008.1.2.4.70", "lossless-sv1.dcm"),
        (&["+el", "+sv", "1"][..], "1.2.840.10008.1.2.4.57", "lossless.dcm"),
    ] {
        let encoded = dcmcjpeg(dir.path(), flags, uid, name);
        let img = decode_file(&encoded).unwrap_or_else(|e| panic!("{e}"));
        assert_close(&img.pixels, &exact, 1e-6);
    }
    let extended = dcmcjpeg(dir.path(), &["+ee"], "1.2.840.10008.1.2.4.51", "extended-12.dcm");
    let err = refused(decode_file(&extended));
    assert!(err.to_string().contains("extended-12.dcm") && err.to_string().contains("12"), "{err}");
}

/// 8-bit JPEG extended (process 2) and baseline re-encoded by dcmtk from an uncompressed 8-bit
/// DX image of a real X-ray: lossy, so the reference is dcmtk's own decoder (`dcmdjpeg`) on the
/// same file, which ours must match to an IDCT rounding step.
#[test]
fn dicom_8_bit_jpeg_extended_and_baseline_written_by_dcmtk_decode_as_dcmtk_does() {
    let dir = tempfile::tempdir().unwrap();
    let stored = dcmtk_source(dir.path(), 8);
    for (flags, uid, name) in
        [(&["+ee"][..], "1.2.840.10008.1.2.4.51", "extended.dcm"), (&["+eb"][..], JPEG_BASELINE, "baseline.dcm")]
    {
        let encoded = dcmcjpeg(dir.path(), flags, uid, name);
        let img = decode_file(&encoded).unwrap_or_else(|e| panic!("{e}"));
        let reference = dir.path().join(format!("decoded-{name}"));
        dcmtk("dcmdjpeg", &[encoded.as_os_str(), reference.as_os_str()]);
        let bytes = std::fs::read(&reference).unwrap();
        let by_dcmtk: Vec<f32> = bytes[bytes.len() - stored.len()..].iter().map(|&v| f32::from(v) / 255.0).collect();
        assert_close(&img.pixels, &by_dcmtk, 2.0 / 255.0);
        let original: Vec<f32> = stored.iter().map(|&v| f32::from(v) / 255.0).collect();
        let mean_error =
            img.pixels.iter().zip(&original).map(|(a, e)| (a - e).abs()).sum::<f32>() / original.len() as f32;
        assert!(mean_error < 0.01, "{name}: lossy, but {mean_error} from the original on average");
    }
}

/// `img2dcm` wraps a real X-ray's JPEG, untouched, as a JPEG baseline DICOM (another tool's meta
/// group, attributes and encapsulation): it decodes to the JPEG's own grey values.
#[test]
fn dicom_jpeg_baseline_wrapped_by_dcmtk_decodes_like_the_jpeg() {
    let jpeg = datasets().join("covid19-radiography/COVID/COVID-1.jpg");
    let dir = tempfile::tempdir().unwrap();
    let dcm = dir.path().join("wrapped.dcm");
    dcmtk("img2dcm", &[jpeg.as_os_str(), dcm.as_os_str()]);
    let bytes = std::fs::read(&dcm).unwrap();
    assert!(bytes.windows(JPEG_BASELINE.len()).any(|w| w == JPEG_BASELINE.as_bytes()));
    let from_dicom = decode_image(&dcm, &bytes).unwrap();
    let from_jpeg = load_image(&jpeg).unwrap();
    assert_eq!((from_dicom.width, from_dicom.height), (from_jpeg.width, from_jpeg.height));
    // No window in the file: a min–max stretch of the JPEG's values.
    let (lo, hi) = from_jpeg.pixels.iter().fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let stretched: Vec<f32> = from_jpeg.pixels.iter().map(|v| (v - lo) / (hi - lo)).collect();
    // Two JPEG decoders (jpeg-decoder vs zune-jpeg) may differ by an IDCT rounding step.
    assert_close(&from_dicom.pixels, &stretched, 2.0 / 255.0 / (hi - lo));
}

// ---------------------------------------------------------------- real dataset images

/// All PNG and JPEG files under `dir`, sorted by path.
fn images_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        for entry in entries {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| ["png", "jpg", "jpeg"].contains(&e.to_ascii_lowercase().as_str()))
            {
                found.push(p);
            }
        }
    }
    found.sort();
    found
}

/// The first `n` image files (sorted by path) under `dir`.
fn first_images(dir: &Path, n: usize) -> Vec<PathBuf> {
    let mut found = images_under(dir);
    assert!(found.len() >= n, "{}: expected at least {n} images, found {}", dir.display(), found.len());
    found.truncate(n);
    found
}

#[test]
fn real_images_from_every_collection_decode() {
    let root = datasets();
    type SizeCheck = fn(u32, u32) -> bool;
    let collections: [(&str, SizeCheck); 5] = [
        ("covid19-radiography", |w, h| (w, h) == (224, 224)),
        ("chest_xray", |w, h| (w, h) == (224, 224)),
        ("hannover-covid", |w, h| w.max(h) <= 640 && w.min(h) >= 200),
        ("covid-chestxray-dataset/images", |w, h| w.max(h) <= 512 && w.min(h) >= 64),
        ("nih-chestxray14-sample", |w, h| (w, h) == (512, 512)),
    ];
    for (folder, size_ok) in collections {
        for file in first_images(&root.join(folder), 4) {
            let img = load_image(&file).unwrap_or_else(|e| panic!("{e}"));
            assert!(size_ok(img.width, img.height), "{}: unexpected size {}×{}", file.display(), img.width, img.height);
            assert_eq!(img.pixels.len(), (img.width * img.height) as usize);
            assert_in_unit_range(&img, &file.display().to_string());
            let (lo, hi) = img.pixels.iter().fold((1f32, 0f32), |(lo, hi), &v| (lo.min(v), hi.max(v)));
            assert!(hi - lo > 0.2, "{}: nearly flat image ({lo}..{hi})", file.display());
        }
    }
}

/// Decode throughput over real dataset images; prints, asserts nothing about time, and fails
/// only if an image does not decode.
/// `cargo test --release -p cxr-core --test image_input -- --ignored --nocapture decode_throughput`
/// (`CXR_DECODE_SAMPLE` = images per collection, default 100; `all` for every image).
#[test]
#[ignore = "measurement, run by hand in release mode"]
fn decode_throughput() {
    let root = datasets();
    let per_collection = match std::env::var("CXR_DECODE_SAMPLE").as_deref() {
        Ok("all") => usize::MAX,
        Ok(n) => n.parse().expect("CXR_DECODE_SAMPLE: a number or `all`"),
        Err(_) => 100,
    };
    let mut files = Vec::new();
    for folder in [
        "covid19-radiography",
        "chest_xray",
        "hannover-covid",
        "covid-chestxray-dataset/images",
        "nih-chestxray14-sample",
    ] {
        files.extend(images_under(&root.join(folder)).into_iter().take(per_collection));
    }
    // Read first so that the number is decode time, not disk time.
    let bytes: Vec<(PathBuf, Vec<u8>)> = files
        .into_iter()
        .map(|f| {
            let b = std::fs::read(&f).unwrap();
            (f, b)
        })
        .collect();
    let start = std::time::Instant::now();
    let mut pixels = 0usize;
    let mut failures = Vec::new();
    for (file, data) in &bytes {
        match decode_image(file, data) {
            Ok(img) => pixels += img.pixels.len(),
            Err(e) => failures.push(e.to_string()),
        }
    }
    let elapsed = start.elapsed();
    println!(
        "decoded {} images ({:.1} Mpx) in {:.3} s: {:.2} ms/image on one thread; {} failed",
        bytes.len(),
        pixels as f64 / 1e6,
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e3 / bytes.len() as f64,
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
