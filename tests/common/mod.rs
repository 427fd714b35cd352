//! What the end-to-end tests of the `cxr` binary share: real X-rays by folder, and the shipped
//! model they run. Where the workspace and the datasets are is `cxr_test_support`'s.
// Each test binary uses part of these helpers.
#![allow(dead_code)]

use cxr_core::ModelCard;
use cxr_test_support::{datasets, workspace};
use std::path::PathBuf;

/// `n` real images of a class folder, in name order.
pub fn images(folder: &str, n: usize) -> Vec<PathBuf> {
    let dir = datasets().join(folder);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files.truncate(n);
    assert_eq!(files.len(), n, "{} has fewer than {n} images", dir.display());
    files
}

/// The shipped seed CNN. A missing file is a failure, not a reason to test the tiny network
/// instead: its scores mean nothing, so the value checks would check nothing.
pub fn model() -> PathBuf {
    let shipped = workspace().join("models/seed-cnn.onnx");
    assert!(
        shipped.is_file() && ModelCard::path_for(&shipped).is_file(),
        "{} and its card are committed with the code and needed here",
        shipped.display()
    );
    shipped
}
