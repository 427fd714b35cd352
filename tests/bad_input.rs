//! The bad-input corpus: hostile and unlucky input to the release commands, one table, each
//! case with its exact outcome (a score, an error naming the file and the cause, or a
//! refusal). Every command runs under a time limit, so a hang fails the case instead of CI.
//!
//! Files are crafted here from real X-rays in `../shared/datasets`; nothing is committed.
//! What the whole table guarantees: no hang, no unbounded read (special and huge files are
//! refused before reading), no silent wrong score (corrupt or degenerate images are refused),
//! and in `score` outputs no duplicate and no lost row.

use assert_cmd::Command;
use cxr_core::{GreyImage, ModelCard};
use cxr_infer::tiny_cnn::TinyCnn;
use cxr_test_support::{datasets, workspace};
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Longest any case may take; the slowest honest case (a few images on a debug build) takes
/// seconds, so reaching this means a hang.
const TIME_LIMIT: Duration = Duration::from_secs(120);

/// The `cxr` under test: this build's, or `CXR_BIN` (e.g. a release binary, or an older build to
/// see which cases it fails).
fn cxr_bin() -> PathBuf {
    std::env::var_os("CXR_BIN").map_or_else(|| assert_cmd::cargo::cargo_bin("cxr"), PathBuf::from)
}

/// The `n`-th real image (name order) of a dataset folder.
fn real(folder: &str, n: usize) -> PathBuf {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(datasets().join(folder)).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files.swap_remove(n)
}

fn real_jpeg(n: usize) -> PathBuf {
    real("covid19-radiography/COVID", n)
}

fn real_png() -> PathBuf {
    let mut pngs: Vec<PathBuf> = std::fs::read_dir(datasets().join("hannover-covid/png"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    pngs.sort();
    pngs.remove(0)
}

fn decoded(path: &Path) -> GreyImage {
    cxr_core::load_image(path).unwrap()
}

fn copy(from: &Path, dir: &Path, name: &str) -> PathBuf {
    let to = dir.join(name);
    std::fs::copy(from, &to).unwrap();
    to
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let to = dir.join(name);
    std::fs::write(&to, bytes).unwrap();
    to
}

fn encode(img: impl Into<image::DynamicImage>, format: image::ImageFormat) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.into().write_to(&mut out, format).unwrap();
    out.into_inner()
}

fn luma8(img: &GreyImage) -> image::GrayImage {
    image::GrayImage::from_raw(img.width, img.height, img.to_luma8()).unwrap()
}

/// `head` then a hole up to `len` bytes: a huge file that takes no disk space.
fn sparse(dir: &Path, name: &str, head: &[u8], len: u64) -> PathBuf {
    let path = write(dir, name, head);
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(len).unwrap();
    path
}

fn fifo(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    assert!(std::process::Command::new("mkfifo").arg(&path).status().unwrap().success());
    path
}

/// A real X-ray as a single-frame 8-bit MONOCHROME2 DICOM (explicit VR little endian), with
/// `tweak` applied to the data set before writing.
fn dicom(img: &GreyImage, tweak: impl FnOnce(&mut InMemDicomObject)) -> Vec<u8> {
    let mut obj = InMemDicomObject::new_empty();
    let mut put = |tag, vr, value: PrimitiveValue| obj.put(DataElement::new(tag, vr, value));
    put(tags::SOP_CLASS_UID, VR::UI, "1.2.840.10008.5.1.4.1.1.1.1".into());
    put(tags::SOP_INSTANCE_UID, VR::UI, "2.25.987654321".into());
    put(tags::MODALITY, VR::CS, "DX".into());
    put(tags::SAMPLES_PER_PIXEL, VR::US, PrimitiveValue::from(1u16));
    put(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2".into());
    put(tags::ROWS, VR::US, PrimitiveValue::from(img.height as u16));
    put(tags::COLUMNS, VR::US, PrimitiveValue::from(img.width as u16));
    put(tags::BITS_ALLOCATED, VR::US, PrimitiveValue::from(8u16));
    put(tags::BITS_STORED, VR::US, PrimitiveValue::from(8u16));
    put(tags::HIGH_BIT, VR::US, PrimitiveValue::from(7u16));
    put(tags::PIXEL_REPRESENTATION, VR::US, PrimitiveValue::from(0u16));
    put(tags::PIXEL_DATA, VR::OB, PrimitiveValue::U8(img.to_luma8().into()));
    tweak(&mut obj);
    let file = obj.with_meta(FileMetaTableBuilder::new().transfer_syntax("1.2.840.10008.1.2.1")).unwrap();
    let mut out = Vec::new();
    file.write_all(&mut out).unwrap();
    out
}

fn set(obj: &mut InMemDicomObject, tag: dicom_object::Tag, vr: VR, value: PrimitiveValue) {
    obj.put(DataElement::new(tag, vr, value));
}

fn real_dicom(tweak: impl FnOnce(&mut InMemDicomObject)) -> Vec<u8> {
    dicom(&decoded(&real_jpeg(0)), tweak)
}

fn jpeg_sof(jpeg: &[u8]) -> usize {
    jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).expect("baseline JPEG has SOF0")
}

/// A real X-ray re-encoded as a 512×512 baseline JPEG.
fn jpeg_512() -> Vec<u8> {
    let img = luma8(&decoded(&real_jpeg(1)));
    encode(image::imageops::resize(&img, 512, 512, image::imageops::FilterType::Triangle), image::ImageFormat::Jpeg)
}

/// The shipped seed CNN when present, else a tiny real network.
fn model(dir: &Path) -> PathBuf {
    let shipped = workspace().join("models/seed-cnn.onnx");
    if shipped.is_file() && ModelCard::path_for(&shipped).is_file() {
        return shipped;
    }
    TinyCnn::default().write(dir, "tiny").unwrap()
}

/// What a case sets up: the command's arguments, and anything that must live while it runs.
struct Setup {
    args: Vec<OsString>,
    /// Held open (e.g. locked) for the duration of the command.
    hold: Option<File>,
    /// Run as an unprivileged user (file permissions do not stop root).
    unprivileged: bool,
}

fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(items: I) -> Setup {
    Setup { args: items.into_iter().map(Into::into).collect(), hold: None, unprivileged: false }
}

fn predict(file: &Path) -> Setup {
    args([OsString::from("predict"), file.into()])
}

fn score(inputs: &[&Path], out: &Path, extra: &[&str]) -> Setup {
    let mut a: Vec<OsString> = vec!["score".into()];
    a.extend(inputs.iter().map(OsString::from));
    a.extend(["--out".into(), out.into()]);
    a.extend(extra.iter().map(OsString::from));
    args(a)
}

/// The exact outcome of a case.
enum Expect {
    /// Exit 0, and `predict` printed a probability for the file.
    Scored,
    /// This exit code, and stderr holds each of these texts (the file's name and the cause).
    Refused { code: i32, says: &'static [&'static str] },
    /// `score` wrote `out.csv` in the case folder: exit code, scored rows, error rows (each
    /// error holding its text), and no file twice.
    Rows { code: i32, scored: usize, errors: &'static [&'static str] },
}

struct Case {
    name: &'static str,
    setup: fn(&Path, &Path) -> Setup,
    expect: Expect,
}

fn cxr() -> Command {
    Command::new(cxr_bin())
}

/// Runs `cxr` with `model` on `args`, waiting for it; used by setups that need an earlier run.
fn run_score(dir: &Path, model: &Path, setup: Setup) -> std::process::Output {
    cxr()
        .current_dir(dir)
        .arg(&setup.args[0])
        .arg("-m")
        .arg(model)
        .args(&setup.args[1..])
        .timeout(TIME_LIMIT)
        .output()
        .unwrap()
}

fn cases() -> Vec<Case> {
    use Expect::*;
    vec![
        // ---------------------------------------------------------- files that must score
        Case { name: "real JPEG", setup: |d, _| predict(&copy(&real_jpeg(0), d, "x.jpg")), expect: Scored },
        Case { name: "real PNG", setup: |d, _| predict(&copy(&real_png(), d, "x.png")), expect: Scored },
        Case {
            name: "real X-ray as DICOM",
            setup: |d, _| predict(&write(d, "x.dcm", &real_dicom(|_| {}))),
            expect: Scored,
        },
        Case {
            name: "DICOM without extension",
            setup: |d, _| predict(&write(d, "IM0001", &real_dicom(|_| {}))),
            expect: Scored,
        },
        Case {
            name: "JPEG named .png",
            setup: |d, _| predict(&copy(&real_jpeg(0), d, "mislabelled.png")),
            expect: Scored,
        },
        Case {
            name: "PNG named .dcm",
            setup: |d, _| predict(&copy(&real_png(), d, "mislabelled.dcm")),
            expect: Scored,
        },
        Case {
            name: "16-bit PNG",
            setup: |d, _| {
                let img = decoded(&real_jpeg(0));
                let wide = image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::from_fn(img.width, img.height, |x, y| {
                    image::Luma([(img.get(x, y) * 65535.0) as u16])
                });
                predict(&write(d, "x16.png", &encode(wide, image::ImageFormat::Png)))
            },
            expect: Scored,
        },
        Case {
            name: "RGB copy of a grey X-ray",
            setup: |d, _| {
                predict(&write(
                    d,
                    "rgb.png",
                    &encode(
                        image::DynamicImage::ImageLuma8(luma8(&decoded(&real_jpeg(0)))).to_rgb8(),
                        image::ImageFormat::Png,
                    ),
                ))
            },
            expect: Scored,
        },
        Case {
            name: "symlink to a real image",
            setup: |d, _| {
                let link = d.join("link.jpg");
                std::os::unix::fs::symlink(copy(&real_jpeg(0), d, "target.jpg"), &link).unwrap();
                predict(&link)
            },
            expect: Scored,
        },
        // ---------------------------------------------------------- unreadable or not images
        Case {
            name: "0-byte file",
            setup: |d, _| predict(&write(d, "empty.png", b"")),
            expect: Refused { code: 1, says: &["empty.png: empty file (0 bytes)"] },
        },
        Case {
            name: "missing file",
            setup: |d, _| predict(&d.join("missing.png")),
            expect: Refused { code: 1, says: &["missing.png: cannot read file: No such file"] },
        },
        Case {
            name: "dangling symlink",
            setup: |d, _| {
                let link = d.join("dangling.png");
                std::os::unix::fs::symlink(d.join("gone.png"), &link).unwrap();
                predict(&link)
            },
            expect: Refused { code: 1, says: &["dangling.png: cannot read file: No such file"] },
        },
        Case {
            name: "text named .png",
            setup: |d, _| predict(&write(d, "text.png", b"hello, this is not an image\n")),
            expect: Refused { code: 1, says: &["text.png: not a PNG, JPEG or DICOM file"] },
        },
        Case {
            name: "GIF",
            setup: |d, _| predict(&write(d, "anim.gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;")),
            expect: Refused { code: 1, says: &["anim.gif: not a PNG, JPEG or DICOM file"] },
        },
        Case {
            name: "truncated PNG",
            setup: |d, _| {
                let png = std::fs::read(real_png()).unwrap();
                predict(&write(d, "cut.png", &png[..png.len() / 2]))
            },
            expect: Refused { code: 1, says: &["cut.png: cannot decode image"] },
        },
        Case {
            name: "truncated JPEG",
            setup: |d, _| {
                let jpeg = std::fs::read(real_jpeg(0)).unwrap();
                predict(&write(d, "cut.jpg", &jpeg[..jpeg.len() * 2 / 3]))
            },
            expect: Refused { code: 1, says: &["cut.jpg: cannot decode image: truncated JPEG"] },
        },
        Case {
            name: "PNG with a damaged chunk",
            setup: |d, _| {
                let mut png = encode(luma8(&decoded(&real_jpeg(0))), image::ImageFormat::Png);
                let idat = png.windows(4).position(|w| w == b"IDAT").unwrap();
                png[idat + 20..idat + 60].fill(0xA5);
                predict(&write(d, "crc.png", &png))
            },
            // A readable cause, not a Rust debug struct.
            expect: Refused {
                code: 1,
                says: &["crc.png: cannot decode image: corrupt PNG: its compressed pixel data (IDAT) is damaged"],
            },
        },
        // ---------------------------------------------------------- size, special files (defects 2, 3)
        Case {
            name: "/dev/zero",
            setup: |_, _| predict(Path::new("/dev/zero")),
            expect: Refused { code: 1, says: &["/dev/zero: a device, not a regular file"] },
        },
        Case {
            name: "FIFO named .png",
            setup: |d, _| predict(&fifo(d, "p.png")),
            expect: Refused { code: 1, says: &["p.png: a FIFO (named pipe), not a regular file"] },
        },
        Case {
            name: "folder given as a file",
            setup: |d, _| predict(d),
            expect: Refused { code: 1, says: &["a folder, not a regular file"] },
        },
        Case {
            name: "3 GB sparse file after a real PNG header",
            setup: |d, _| predict(&sparse(d, "big.png", &std::fs::read(real_png()).unwrap(), 3 << 30)),
            expect: Refused {
                code: 1,
                says: &["big.png: 3221225472 bytes, more than a ", "PNG can take", "refusing to read it"],
            },
        },
        Case {
            name: "3 GB sparse file that is no image",
            setup: |d, _| predict(&sparse(d, "b.png", b"\0\0\0\0", 3 << 30)),
            expect: Refused { code: 1, says: &["b.png: not a PNG, JPEG or DICOM file"] },
        },
        Case {
            name: "PNG header of 30000² (bomb)",
            setup: |d, _| {
                let mut png = encode(image::GrayImage::new(1, 1), image::ImageFormat::Png);
                // IHDR width and height at bytes 16..24; fix its CRC so only the size is wrong.
                png[16..24].copy_from_slice(&[0, 0, 0x75, 0x30, 0, 0, 0x75, 0x30]);
                let crc = crc32(&png[12..29]);
                png[29..33].copy_from_slice(&crc.to_be_bytes());
                predict(&write(d, "bomb.png", &png))
            },
            expect: Refused { code: 1, says: &["bomb.png: 30000×30000 = 900 Mpx is larger than the 50 Mpx limit"] },
        },
        Case {
            name: "JPEG header of 65500² (bomb)",
            setup: |d, _| {
                let mut jpeg = jpeg_512();
                let sof = jpeg_sof(&jpeg);
                jpeg[sof + 5..sof + 9].copy_from_slice(&[0xFF, 0xDC, 0xFF, 0xDC]);
                predict(&write(d, "bomb.jpg", &jpeg))
            },
            expect: Refused { code: 1, says: &["bomb.jpg: 65500×65500", "larger than the 50 Mpx limit"] },
        },
        // ---------------------------------------------------------- corrupt JPEG (defect 8)
        Case {
            name: "garbage inside a JPEG scan",
            setup: |d, _| {
                let mut jpeg = jpeg_512();
                let sos = jpeg.windows(2).rposition(|w| w == [0xFF, 0xDA]).unwrap();
                let at = sos + (jpeg.len() - sos) * 2 / 5;
                let mut x = 0x9E37_79B9u32;
                for b in &mut jpeg[at..at + 2048] {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    *b = x as u8;
                }
                predict(&write(d, "garbage.jpg", &jpeg))
            },
            expect: Refused { code: 1, says: &["garbage.jpg: cannot decode image: corrupt JPEG"] },
        },
        Case {
            name: "JPEG header promising 7000² over 512² of data",
            setup: |d, _| {
                let mut jpeg = jpeg_512();
                let sof = jpeg_sof(&jpeg);
                jpeg[sof + 5..sof + 9].copy_from_slice(&[0x1B, 0x58, 0x1B, 0x58]);
                predict(&write(d, "liar.jpg", &jpeg))
            },
            expect: Refused {
                code: 1,
                says: &["liar.jpg: cannot decode image: corrupt JPEG: its header promises 7000×7000 pixels"],
            },
        },
        // ---------------------------------------------------------- DICOM (defect 9 and older checks)
        Case {
            name: "DICOM Window Width 0",
            setup: |d, _| {
                predict(&write(
                    d,
                    "w0.dcm",
                    &real_dicom(|o| {
                        set(o, tags::WINDOW_CENTER, VR::DS, "128".into());
                        set(o, tags::WINDOW_WIDTH, VR::DS, "0".into());
                    }),
                ))
            },
            expect: Refused { code: 1, says: &["w0.dcm: cannot decode image: Window Width (0028,1051) is 0"] },
        },
        Case {
            name: "DICOM Rescale Slope 0",
            setup: |d, _| {
                predict(&write(
                    d,
                    "s0.dcm",
                    &real_dicom(|o| {
                        set(o, tags::RESCALE_SLOPE, VR::DS, "0".into());
                        set(o, tags::RESCALE_INTERCEPT, VR::DS, "0".into());
                    }),
                ))
            },
            expect: Refused { code: 1, says: &["s0.dcm: cannot decode image: Rescale Slope (0028,1053) is 0"] },
        },
        Case {
            name: "DICOM pixel data longer than Rows × Columns",
            setup: |d, _| {
                predict(&write(
                    d,
                    "long.dcm",
                    &real_dicom(|o| {
                        let rows = o.element(tags::ROWS).unwrap().to_int::<u16>().unwrap();
                        set(o, tags::ROWS, VR::US, PrimitiveValue::from(rows / 2));
                    }),
                ))
            },
            expect: Refused {
                code: 1,
                says: &["long.dcm: cannot decode image: pixel data is", "Rows/Columns do not describe this data"],
            },
        },
        Case {
            name: "DICOM pixel data shorter than Rows × Columns",
            setup: |d, _| {
                predict(&write(
                    d,
                    "shortpx.dcm",
                    &real_dicom(|o| {
                        let rows = o.element(tags::ROWS).unwrap().to_int::<u16>().unwrap();
                        set(o, tags::ROWS, VR::US, PrimitiveValue::from(rows * 2));
                    }),
                ))
            },
            expect: Refused { code: 1, says: &["shortpx.dcm: cannot decode image"] },
        },
        Case {
            name: "DICOM without pixel data",
            setup: |d, _| {
                predict(&write(
                    d,
                    "report.dcm",
                    &real_dicom(|o| {
                        o.remove_element(tags::PIXEL_DATA);
                    }),
                ))
            },
            expect: Refused { code: 1, says: &["report.dcm: unsupported DICOM: no pixel data"] },
        },
        Case {
            name: "multi-frame DICOM",
            setup: |d, _| {
                predict(&write(d, "cine.dcm", &real_dicom(|o| set(o, tags::NUMBER_OF_FRAMES, VR::IS, "2".into()))))
            },
            expect: Refused { code: 1, says: &["cine.dcm: unsupported DICOM: 2 frames"] },
        },
        Case {
            name: "colour DICOM",
            setup: |d, _| {
                predict(&write(
                    d,
                    "rgb.dcm",
                    &real_dicom(|o| set(o, tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "RGB".into())),
                ))
            },
            expect: Refused { code: 1, says: &["rgb.dcm: unsupported DICOM: colour image"] },
        },
        Case {
            name: "DICOM magic then garbage",
            setup: |d, _| {
                let mut bytes = vec![0u8; 128];
                bytes.extend_from_slice(b"DICM");
                bytes.extend((0..4000u32).map(|i| (i * 7919 % 251) as u8));
                predict(&write(d, "junk.dcm", &bytes))
            },
            expect: Refused { code: 1, says: &["junk.dcm: cannot decode image: not a readable DICOM file"] },
        },
        // ---------------------------------------------------------- degenerate images (defect 10)
        Case {
            name: "1×1 image",
            setup: |d, _| {
                predict(&write(
                    d,
                    "dot.png",
                    &encode(image::GrayImage::from_pixel(1, 1, image::Luma([200])), image::ImageFormat::Png),
                ))
            },
            expect: Refused { code: 1, says: &["dot.png: image is 1×1 pixels, under the 64-pixel minimum side"] },
        },
        Case {
            name: "1×100000 image",
            setup: |d, _| {
                predict(&write(
                    d,
                    "tall.png",
                    &encode(
                        image::GrayImage::from_fn(1, 100_000, |_, y| image::Luma([y as u8])),
                        image::ImageFormat::Png,
                    ),
                ))
            },
            expect: Refused { code: 1, says: &["tall.png: image is 1×100000 pixels"] },
        },
        Case {
            name: "100000×1 image",
            setup: |d, _| {
                predict(&write(
                    d,
                    "wide.png",
                    &encode(
                        image::GrayImage::from_fn(100_000, 1, |x, _| image::Luma([x as u8])),
                        image::ImageFormat::Png,
                    ),
                ))
            },
            expect: Refused { code: 1, says: &["wide.png: image is 100000×1 pixels"] },
        },
        Case {
            name: "X-ray squeezed to 2000×100",
            setup: |d, _| {
                let img = luma8(&decoded(&real_jpeg(0)));
                predict(&write(
                    d,
                    "strip.png",
                    &encode(
                        image::imageops::resize(&img, 2000, 100, image::imageops::FilterType::Triangle),
                        image::ImageFormat::Png,
                    ),
                ))
            },
            expect: Refused { code: 1, says: &["strip.png: image is 2000×100 pixels, more elongated than 4:1"] },
        },
        Case {
            name: "all-black 512² image",
            setup: |d, _| {
                predict(&write(d, "black.png", &encode(image::GrayImage::new(512, 512), image::ImageFormat::Png)))
            },
            expect: Refused { code: 1, says: &["black.png: every pixel has the same grey value"] },
        },
        // ---------------------------------------------------------- folders (defects 1, 3, 7)
        Case {
            name: "symlink cycle in a folder",
            setup: |d, _| {
                let c = d.join("c");
                std::fs::create_dir_all(c.join("s")).unwrap();
                copy(&real_jpeg(0), &c.join("s"), "X.jpg");
                std::os::unix::fs::symlink("..", c.join("s/up")).unwrap();
                std::os::unix::fs::symlink(&c, c.join("self")).unwrap();
                score(&[&c], &d.join("out.csv"), &[])
            },
            expect: Rows { code: 0, scored: 1, errors: &[] },
        },
        Case {
            name: "FIFO inside a folder",
            setup: |d, _| {
                let f = d.join("f");
                std::fs::create_dir(&f).unwrap();
                copy(&real_jpeg(0), &f, "x.jpg");
                fifo(&f, "p.png");
                score(&[&f], &d.join("out.csv"), &[])
            },
            expect: Rows { code: 1, scored: 1, errors: &["p.png: a FIFO (named pipe), not a regular file"] },
        },
        Case {
            name: "unreadable sub-folder",
            setup: |d, _| {
                let f = d.join("f");
                std::fs::create_dir_all(f.join("sub")).unwrap();
                copy(&real_jpeg(0), &f, "x.jpg");
                copy(&real_jpeg(1), &f.join("sub"), "y.jpg");
                // Open to the unprivileged user the case may run as; only `sub` is closed.
                for dir in [d, &f] {
                    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
                }
                std::fs::set_permissions(f.join("sub"), std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
                let mut setup = score(&[&f], &d.join("out.csv"), &[]);
                setup.unprivileged = true;
                setup
            },
            expect: Rows { code: 1, scored: 1, errors: &["sub: cannot list folder: Permission denied"] },
        },
        Case {
            name: "same images through a folder and a link to it",
            setup: |d, _| {
                let f = d.join("f");
                std::fs::create_dir(&f).unwrap();
                copy(&real_jpeg(0), &f, "x.jpg");
                copy(&real_jpeg(1), &f, "y.jpg");
                std::os::unix::fs::symlink(&f, d.join("g")).unwrap();
                score(&[&f, &d.join("g")], &d.join("out.csv"), &[])
            },
            expect: Rows { code: 0, scored: 2, errors: &[] },
        },
        // ---------------------------------------------------------- score --resume (defects 4, 5, 6)
        Case {
            name: "resume while another run holds the output",
            setup: |d, model| {
                let f = d.join("f");
                std::fs::create_dir(&f).unwrap();
                copy(&real_jpeg(0), &f, "x.jpg");
                let out = d.join("out.csv");
                assert!(run_score(d, model, score(&[&f], &out, &[])).status.success());
                let held = File::options().read(true).write(true).open(&out).unwrap();
                held.try_lock().unwrap();
                let mut setup = score(&[&f], &out, &["--resume"]);
                setup.hold = Some(held);
                setup
            },
            expect: Refused { code: 2, says: &["out.csv: another `cxr score` is writing to it"] },
        },
        Case {
            name: "resume after a kill, by the absolute path with a slash",
            setup: |d, model| {
                let f = d.join("real");
                std::fs::create_dir(&f).unwrap();
                for n in 0..4 {
                    copy(&real_jpeg(n), &f, &format!("{n}.jpg"));
                }
                let out = d.join("out.csv");
                assert!(run_score(d, model, score(&[Path::new("real")], &out, &[])).status.success());
                // As a kill leaves it: two rows, the third cut off mid-line.
                let text = std::fs::read_to_string(&out).unwrap();
                let lines: Vec<&str> = text.lines().collect();
                std::fs::write(&out, format!("{}\n{}\n{}\n{}", lines[0], lines[1], lines[2], &lines[3][..10])).unwrap();
                let mut slash = f.canonicalize().unwrap().into_os_string();
                slash.push("/");
                score(&[Path::new(&slash)], &out, &["--resume"])
            },
            expect: Rows { code: 0, scored: 4, errors: &[] },
        },
        Case {
            name: "resume retries a repaired file",
            setup: |d, model| {
                let f = d.join("f");
                std::fs::create_dir(&f).unwrap();
                copy(&real_jpeg(0), &f, "x.jpg");
                let broken = write(&f, "y.jpg", b"");
                let out = d.join("out.csv");
                assert_eq!(run_score(d, model, score(&[&f], &out, &[])).status.code(), Some(1));
                std::fs::copy(real_jpeg(1), broken).unwrap();
                score(&[&f], &out, &["--resume"])
            },
            expect: Rows { code: 0, scored: 2, errors: &[] },
        },
        Case {
            name: "resume keeps failing on a file still broken",
            setup: |d, model| {
                let f = d.join("f");
                std::fs::create_dir(&f).unwrap();
                copy(&real_jpeg(0), &f, "x.jpg");
                write(&f, "y.jpg", b"");
                let out = d.join("out.csv");
                assert_eq!(run_score(d, model, score(&[&f], &out, &[])).status.code(), Some(1));
                score(&[&f], &out, &["--resume"])
            },
            expect: Rows { code: 1, scored: 1, errors: &["y.jpg: empty file (0 bytes)"] },
        },
        Case {
            name: "existing output without --resume",
            setup: |d, _| {
                write(d, "out.csv", b"path,p_covid,class,model_sha256,error\n");
                score(&[&copy(&real_jpeg(0), d, "x.jpg")], &d.join("out.csv"), &[])
            },
            expect: Refused { code: 2, says: &["out.csv: already exists; pass --resume"] },
        },
        Case {
            name: "resume of a binary file",
            setup: |d, _| {
                write(d, "out.csv", &[0xFF, 0xFE, 0, 1, 2, 3, b'\n', 0x80, 0x81]);
                score(&[&copy(&real_jpeg(0), d, "x.jpg")], &d.join("out.csv"), &["--resume"])
            },
            expect: Refused { code: 2, says: &["out.csv: "] },
        },
        Case {
            name: "-j 1000",
            setup: |d, _| score(&[&copy(&real_jpeg(0), d, "x.jpg")], &d.join("out.csv"), &["-j", "1000"]),
            expect: Refused { code: 2, says: &["-j 1000: more workers than 4 per core"] },
        },
        // ---------------------------------------------------------- messages (defects 11, 12, 13)
        Case {
            name: "cause said once",
            setup: |d, _| {
                args([
                    OsString::from("explain"),
                    d.join("nothere.png").into(),
                    "--out".into(),
                    d.join("heat.png").into(),
                ])
            },
            expect: Refused {
                code: 2,
                says: &["nothere.png: cannot read file: No such file or directory (os error 2)\n"],
            },
        },
        Case {
            name: "-m nonexistent.onnx",
            setup: |d, _| {
                args([
                    OsString::from("predict"),
                    "-m".into(),
                    d.join("nonexistent.onnx").into(),
                    d.join("x.png").into(),
                ])
            },
            expect: Refused { code: 2, says: &["nonexistent.onnx: cannot read model: No such file"] },
        },
        Case {
            name: "-m a file that is not ONNX",
            setup: |d, _| {
                let onnx = write(d, "fake.onnx", b"not a model");
                let mut card: serde_json::Value = serde_json::from_str(
                    &std::fs::read_to_string(workspace().join("models/seed-cnn.card.json")).unwrap(),
                )
                .unwrap();
                card["file"] = "fake.onnx".into();
                card["sha256"] = cxr_core::card::sha256_hex(b"not a model").into();
                write(d, "fake.card.json", card.to_string().as_bytes());
                args([OsString::from("predict"), "-m".into(), onnx.into(), d.join("x.png").into()])
            },
            expect: Refused { code: 2, says: &["fake.onnx: not an ONNX model", "in builds with the `train` feature"] },
        },
        Case {
            name: "data index of a missing folder",
            setup: |d, _| {
                args([
                    OsString::from("data"),
                    "index".into(),
                    d.join("nonexistent").into(),
                    "--out".into(),
                    d.join("m.csv").into(),
                ])
            },
            expect: Refused { code: 2, says: &["nonexistent: no such folder"] },
        },
        Case {
            name: "data index into a missing folder",
            setup: |d, _| {
                args([
                    OsString::from("data"),
                    "index".into(),
                    datasets().join("hannover-covid").into(),
                    "--out".into(),
                    d.join("nonexistent/x.csv").into(),
                ])
            },
            expect: Refused { code: 2, says: &["x.csv: cannot write the manifest there: folder", "does not exist"] },
        },
        Case {
            name: "data stats of an empty file",
            setup: |d, _| args([OsString::from("data"), "stats".into(), write(d, "empty.csv", b"").into()]),
            expect: Refused { code: 2, says: &["empty.csv: not a cxr manifest CSV: empty file"] },
        },
        Case {
            name: "data stats of a binary file",
            setup: |d, _| {
                args([
                    OsString::from("data"),
                    "stats".into(),
                    write(d, "bin.csv", &[0x89, b'P', b'N', b'G', 0, 0, 1, 2, b'\n', 7]).into(),
                ])
            },
            expect: Refused { code: 2, says: &["bin.csv: not a cxr manifest CSV"] },
        },
        Case {
            name: "explain into a missing folder fails before computing",
            setup: |d, _| {
                args([
                    OsString::from("explain"),
                    copy(&real_jpeg(0), d, "x.jpg").into(),
                    "--out".into(),
                    d.join("nonexistent/x.png").into(),
                ])
            },
            expect: Refused { code: 2, says: &["x.png: cannot write the heatmap there: folder"] },
        },
        Case {
            name: "bench --runs 0",
            setup: |_, _| args(["bench", "--runs", "0"]),
            expect: Refused { code: 2, says: &["--runs"] },
        },
        Case {
            name: "info of a card whose model fails its sha256",
            setup: |d, _| {
                let card = d.join("t.card.json");
                std::fs::copy(workspace().join("models/seed-cnn.card.json"), &card).unwrap();
                let file = serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(&card).unwrap()).unwrap()
                    ["file"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                write(d, &file, b"tampered");
                args([OsString::from("info"), card.into()])
            },
            expect: Refused { code: 0, says: &["warning: ", "sha256 is", "this model will not load"] },
        },
    ]
}

/// The bitwise CRC-32 of PNG chunks.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// Whether this process can read a folder with mode 000 (root can): then the case runs as nobody.
fn permissions_bind_us(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_err()
}

fn check(case: &Case, dir: &Path, model: &Path) -> Result<(), String> {
    let setup = (case.setup)(dir, model);
    let mut cmd = if setup.unprivileged && !permissions_bind_us(&dir.join("f/sub")) {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(cxr_bin());
        cmd
    } else {
        cxr()
    };
    // The model goes after the subcommand; `bench`, `info` and `data` take none.
    let needs_model = matches!(setup.args[0].to_str(), Some("predict" | "score" | "explain"));
    cmd.current_dir(dir).arg(&setup.args[0]);
    if needs_model && !setup.args.iter().any(|a| a == "-m") {
        cmd.arg("-m").arg(model);
    }
    if setup.args[0] == "bench" {
        cmd.arg("-m").arg(model);
    }
    let output = cmd.args(&setup.args[1..]).timeout(TIME_LIMIT).output().map_err(|e| e.to_string())?;
    drop(setup.hold);
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    let code = output
        .status
        .code()
        .ok_or_else(|| format!("killed ({}): a hang past {TIME_LIMIT:?}?\n{stderr}", output.status))?;
    let fail = |what: String| Err(format!("{what}\nexit {code}\nstdout: {stdout}\nstderr: {stderr}"));
    match &case.expect {
        Expect::Scored => {
            if code != 0 || !stdout.contains("P(covid) = ") {
                return fail("expected a score".into());
            }
        }
        Expect::Refused { code: expected, says } => {
            if code != *expected {
                return fail(format!("expected exit {expected}"));
            }
            if stdout.contains("P(covid) = ") {
                return fail("scored what should be refused".into());
            }
            let all = format!("{stderr}{stdout}");
            if let Some(missing) = says.iter().find(|s| !all.contains(*s)) {
                return fail(format!("expected the output to say {missing:?}"));
            }
            // No Rust debug structs in messages.
            if stderr.contains(" { ") || stderr.contains("Inner") {
                return fail("a debug struct in the message".into());
            }
        }
        Expect::Rows { code: expected, scored, errors } => {
            if code != *expected {
                return fail(format!("expected exit {expected}"));
            }
            let rows: Vec<csv::StringRecord> = csv::Reader::from_path(dir.join("out.csv"))
                .map_err(|e| e.to_string())?
                .records()
                .map(Result::unwrap)
                .collect();
            let mut seen = HashSet::new();
            for row in &rows {
                let file = std::fs::canonicalize(dir.join(&row[0])).unwrap_or_else(|_| PathBuf::from(&row[0]));
                if !seen.insert(file) {
                    return fail(format!("{} has two rows", &row[0]));
                }
            }
            let error_texts: Vec<&str> = rows.iter().map(|r| &r[r.len() - 1]).filter(|e| !e.is_empty()).collect();
            let ok = rows.len() - error_texts.len();
            if ok != *scored || error_texts.len() != errors.len() {
                return fail(format!(
                    "expected {scored} scored and {} error rows, got {ok} and {error_texts:?}",
                    errors.len()
                ));
            }
            if let Some(missing) = errors.iter().find(|e| !error_texts.iter().any(|t| t.contains(*e))) {
                return fail(format!("no error row says {missing:?}: {error_texts:?}"));
            }
        }
    }
    Ok(())
}

#[test]
fn every_bad_input_has_its_exact_outcome() {
    let models = tempfile::tempdir().unwrap();
    let model = model(models.path());
    let cases = cases();
    assert!(cases.len() >= 40, "the corpus has {} cases", cases.len());
    // `CXR_BAD_INPUT_CASE=text`: only the cases whose name holds it; `CXR_BAD_INPUT_SKIP=a,b`:
    // all but those (e.g. the unbounded reads, when running an older build).
    let only = std::env::var("CXR_BAD_INPUT_CASE").ok();
    let skip = std::env::var("CXR_BAD_INPUT_SKIP").unwrap_or_default();
    let skipped = |name: &str| skip.split(',').any(|s| !s.is_empty() && name.contains(s));
    let mut failures = Vec::new();
    for case in cases.iter().filter(|c| only.as_deref().is_none_or(|o| c.name.contains(o)) && !skipped(c.name)) {
        let dir = tempfile::tempdir().unwrap();
        if let Err(why) = check(case, dir.path(), &model) {
            failures.push(format!("--- {}: {why}", case.name));
        }
        // A folder left at mode 000 would stop the temp dir's removal.
        let _ = std::fs::set_permissions(dir.path().join("f/sub"), std::os::unix::fs::PermissionsExt::from_mode(0o755));
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}
