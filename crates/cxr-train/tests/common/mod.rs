//! Real X-rays for the training-crate tests.
// Each test binary uses part of these helpers.
#![allow(dead_code)]

use cxr_core::Class;
use cxr_train::data::{LabeledImage, TrainingData};
use std::path::{Path, PathBuf};

pub fn datasets_root() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    cxr_core::dataset::shared_datasets(&workspace).unwrap_or_else(|e| panic!("real X-rays are needed: {e}"))
}

/// The first `n` images of a covid19-radiography class folder, in file-name order.
pub fn images(folder: &str, class: Class, n: usize) -> Vec<LabeledImage> {
    let dir = datasets_root().join("covid19-radiography").join(folder);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    // Normal-63 … Normal-1403 are pediatric Kermany images; start past them so the negatives are adults.
    let skip = if class == Class::Normal { paths.len().saturating_sub(n) } else { 0 };
    paths.into_iter().skip(skip).take(n).map(|path| LabeledImage { path, class }).collect()
}

/// 300 real images (150 COVID, 150 adult normal), 70 % train, 30 % val.
pub fn small_data() -> TrainingData {
    let mut train = Vec::new();
    let mut val = Vec::new();
    for (folder, class) in [("COVID", Class::Covid), ("Normal", Class::Normal)] {
        for (i, img) in images(folder, class, 150).into_iter().enumerate() {
            if i % 10 < 7 { train.push(img) } else { val.push(img) }
        }
    }
    TrainingData { train, val, split_seed: None, holdout_sources: vec![] }
}

