//! What the workspace's tests share, in one place so that they cannot drift apart: where the
//! checkout and the real X-rays are, and an AUC that does not come from the code under test.
//!
//! A dev-dependency only (never published, never in a shipped binary). It links neither tract
//! nor libtorch, so a test of any crate can use it without building those.

use std::path::{Path, PathBuf};

/// The workspace root, where `models/` and `.torch/` are. Taken from this crate's own place in
/// the checkout at build time, so every crate's tests agree on it whatever folder they run in.
pub fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .and_then(Path::parent)
        .expect("cxr-test-support lies two folders below the workspace root")
}

/// The real X-ray collections: `$CXR_DATASETS`, else `shared/datasets` beside the checkout, as
/// CI lays them out.
///
/// A missing folder panics rather than skipping the test: a test that passes without its
/// images would check nothing.
pub fn datasets() -> PathBuf {
    let root =
        std::env::var_os("CXR_DATASETS").map(PathBuf::from).unwrap_or_else(|| workspace().join("../shared/datasets"));
    assert!(
        root.is_dir(),
        "real X-rays are needed: {} is not there; put the collections there (see their README) or set CXR_DATASETS to their folder",
        root.display()
    );
    root
}

/// The list of human-drawn lung masks. The annotations sit beside the datasets
/// (`shared/annotations` next to `shared/datasets`), so this follows `$CXR_DATASETS` too: a
/// relocated shared folder then holds both.
pub fn lung_masks() -> PathBuf {
    let datasets = datasets();
    let shared = datasets.parent().unwrap_or_else(|| panic!("{}: has no parent folder", datasets.display()));
    shared.join("annotations/lung-masks-v7/masks.csv")
}

/// The share of (positive, negative) pairs the scores order correctly, ties counting half: the
/// AUC by its definition, pair by pair, deliberately independent of `cxr_core::metrics` (the ROC
/// code under test) so that a mistake there cannot cancel out in a comparison.
///
/// Panics without at least one positive and one negative, where the AUC is undefined (rather
/// than returning NaN, which every later comparison would fail with a less clear message).
pub fn mann_whitney_auc(scores: &[f64], positive: &[bool]) -> f64 {
    assert_eq!(scores.len(), positive.len(), "one label per score");
    let (mut pairs, mut right) = (0.0, 0.0);
    for (p, _) in scores.iter().zip(positive).filter(|(_, is)| **is) {
        for (n, _) in scores.iter().zip(positive).filter(|(_, is)| !**is) {
            pairs += 1.0;
            right += if p > n {
                1.0
            } else if p == n {
                0.5
            } else {
                0.0
            };
        }
    }
    assert!(pairs > 0.0, "an AUC needs at least one positive and one negative score");
    right / pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_is_the_root_that_declares_the_workspace() {
        let manifest = std::fs::read_to_string(workspace().join("Cargo.toml")).unwrap();
        assert!(manifest.contains("[workspace]") && manifest.contains("\"crates/cxr-test-support\""));
    }

    #[test]
    fn auc_counts_ordered_pairs_and_half_of_the_ties() {
        let positive = [true, true, false, false];
        assert_eq!(mann_whitney_auc(&[0.9, 0.8, 0.2, 0.1], &positive), 1.0);
        assert_eq!(mann_whitney_auc(&[0.1, 0.2, 0.8, 0.9], &positive), 0.0);
        // Pairs (0.9, 0.5) and (0.9, 0.1) right, (0.5, 0.5) a tie, (0.5, 0.1) right: 3.5 of 4.
        assert_eq!(mann_whitney_auc(&[0.9, 0.5, 0.5, 0.1], &positive), 0.875);
    }

    #[test]
    #[should_panic(expected = "at least one positive and one negative")]
    fn auc_of_one_class_is_refused() {
        mann_whitney_auc(&[0.3, 0.7], &[true, true]);
    }
}
