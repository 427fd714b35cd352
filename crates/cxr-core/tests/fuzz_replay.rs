//! Replays the committed fuzz corpus and every input a fuzzer ever crashed on (`fuzz/corpus/`,
//! `fuzz/regressions/`) through the same entry points as the fuzz targets (`fuzz/fuzz_targets/`),
//! on the stable toolchain: what was fixed stays fixed without a nightly fuzz run in CI.
//! Each input must give a result or an error, never a panic.

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    cxr_test_support::workspace().join("fuzz")
}

/// Every file under `fuzz/corpus/TARGET` and `fuzz/regressions/TARGET`.
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for kind in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz_dir().join(kind).join(target)) else { continue };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_file() {
                let bytes = std::fs::read(&path).unwrap();
                files.push((path, bytes));
            }
        }
    }
    files.sort();
    files
}

fn replay(target: &str, min_inputs: usize, run: impl Fn(&Path, &[u8])) {
    let files = inputs(target);
    assert!(files.len() >= min_inputs, "fuzz/corpus/{target}: {} inputs, expected at least {min_inputs}", files.len());
    for (path, bytes) in &files {
        if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(path, bytes))) {
            let what =
                panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()));
            panic!("{}: panicked: {}", path.display(), what.unwrap_or_default());
        }
    }
}

/// The process's peak resident memory in MB (Linux), to see that no input made memory grow.
fn peak_rss_mb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kb| kb / 1024)
}

#[test]
fn image_input_corpus_and_crashes() {
    replay("image_input", 5, |path, bytes| {
        if let Ok(image) = cxr_core::image::decode_xray(path, bytes) {
            assert_eq!(image.pixels.len(), image.width as usize * image.height as usize);
            assert!(image.pixels.iter().all(|v| (0.0..=1.0).contains(v)));
        }
    });
    // Several of these made the DICOM parser allocate and zero gigabytes (docs/fuzzing.md).
    if let Some(peak) = peak_rss_mb() {
        assert!(peak < 512, "replaying the image inputs took {peak} MB resident");
    }
}

#[test]
fn model_card_corpus_and_crashes() {
    replay("model_card", 2, |path, bytes| {
        if let Ok(text) = std::str::from_utf8(bytes) {
            let _ = cxr_core::ModelCard::from_json(path, text);
        }
    });
}

#[test]
fn manifest_corpus_and_crashes() {
    replay("manifest", 1, |path, bytes| {
        if let Ok(entries) = cxr_core::Manifest::parse_entries(path, bytes) {
            let manifest = cxr_core::Manifest { entries, meta: None };
            let _ = (manifest.counts(), manifest.duplicate_groups(), manifest.leaks());
        }
    });
}

#[test]
fn score_resume_corpus_and_crashes() {
    let header: Vec<String> = ["path", "p_covid", "class", "model_sha256", "error"].map(String::from).to_vec();
    replay("score_resume", 2, |path, bytes| {
        let _ = cxr_core::results::read_earlier_run(path, bytes, &header, "ab12", "fuzz-model");
    });
}
