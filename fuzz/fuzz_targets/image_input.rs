//! Any bytes as an X-ray file (PNG, JPEG, DICOM or neither) through the entry point every
//! scorer uses: an error is fine, a panic, hang or unbounded allocation is not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(image) = cxr_core::image::decode_xray(Path::new("fuzz.img"), bytes) {
        assert_eq!(image.pixels.len(), image.width as usize * image.height as usize);
        assert!(image.pixels.iter().all(|v| (0.0..=1.0).contains(v)), "grey values outside [0, 1]");
    }
});
