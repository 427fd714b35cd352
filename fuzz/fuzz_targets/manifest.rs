//! Any bytes as a manifest CSV (`cxr data index` output, read by `score`, `eval`, `train`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(entries) = cxr_core::Manifest::parse_entries(Path::new("fuzz.csv"), bytes) {
        let manifest = cxr_core::Manifest { entries, meta: None };
        let _ = manifest.counts();
        let _ = manifest.duplicate_groups();
        let _ = manifest.leaks();
    }
});
