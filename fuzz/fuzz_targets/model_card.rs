//! Any text as a model card (the JSON beside every ONNX file).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(text) = std::str::from_utf8(bytes)
        && let Ok(card) = cxr_core::ModelCard::from_json(Path::new("fuzz.card.json"), text)
    {
        let _ = card.class_names();
        let _ = card.verify(Path::new("fuzz.card.json"), Path::new("fuzz.onnx"), bytes);
    }
});
