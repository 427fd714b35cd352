//! Training images: read from a manifest, decoded once, kept in memory at the model's input size,
//! and turned into (optionally augmented) batches.

use crate::augment::Augmentation;
use cxr_core::manifest::{Manifest, ManifestError};
use cxr_core::split::Split;
use cxr_core::{Class, ClassSet, GreyImage, ImageError, Preprocess, load_image};
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// An image file, the class it carries and the source (collection, hospital) it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct LabeledImage {
    pub path: PathBuf,
    pub class: Class,
    pub source: String,
}

/// The train and validation images of a manifest.
#[derive(Debug, Clone)]
pub struct TrainingData {
    pub train: Vec<LabeledImage>,
    pub val: Vec<LabeledImage>,
    /// Seed the manifest's split was made with, when its sidecar says.
    pub split_seed: Option<u64>,
    pub holdout_sources: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(
        "{manifest}: the {split} split has no {class} images; a {class_set:?} model needs every class in train and val (re-index with other sources or split fractions)"
    )]
    MissingClass { manifest: PathBuf, split: &'static str, class: String, class_set: ClassSet },
    #[error("{count} of {total} {split} images could not be read (first: {first}); fix or remove them and re-index")]
    TooManyUnreadable { split: &'static str, count: usize, total: usize, first: ImageError },
}

impl TrainingData {
    /// Reads the `train` and `val` rows of a manifest. Relative paths are taken from the current
    /// directory, else from the manifest's folder.
    pub fn from_manifest(path: &Path, class_set: ClassSet) -> Result<TrainingData, DataError> {
        let manifest = Manifest::read(path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        let resolve = |p: &Path| if p.is_relative() && !p.exists() { base.join(p) } else { p.to_owned() };
        let rows = |split: Split| -> Vec<LabeledImage> {
            manifest
                .entries_in(split)
                .map(|e| LabeledImage { path: resolve(&e.path), class: e.label, source: e.source.clone() })
                .collect()
        };
        let data = TrainingData {
            train: rows(Split::Train),
            val: rows(Split::Val),
            split_seed: manifest.meta.as_ref().map(|m| m.split.seed),
            holdout_sources: manifest.meta.as_ref().map(|m| m.split.holdout_sources.clone()).unwrap_or_default(),
        };
        data.check_classes(path, class_set)?;
        Ok(data)
    }

    /// Every target of `class_set` must occur in both splits, or training and the validation AUC are meaningless.
    pub fn check_classes(&self, manifest: &Path, class_set: ClassSet) -> Result<(), DataError> {
        for (split, images) in [("train", &self.train), ("val", &self.val)] {
            for target in 0..target_count(class_set) {
                if !images.iter().any(|img| target_of(class_set, img.class) == target) {
                    return Err(DataError::MissingClass {
                        manifest: manifest.to_owned(),
                        split,
                        class: class_set.names()[target].to_owned(),
                        class_set,
                    });
                }
            }
        }
        Ok(())
    }
}

/// Number of distinct targets: 2 for binary (non-covid, covid), 3 for three-class.
pub fn target_count(class_set: ClassSet) -> usize {
    class_set.names().len()
}

/// The index of `class` in `class_set.names()`: binary models learn covid = 1 against everything else.
pub fn target_of(class_set: ClassSet, class: Class) -> usize {
    match class_set {
        ClassSet::Binary => usize::from(class == Class::Covid),
        ClassSet::ThreeClass => match class {
            Class::Covid => 0,
            Class::Normal => 1,
            Class::Pneumonia => 2,
        },
    }
}

/// Images decoded once and stored as 8-bit grey at the model's input size (a 256×256 image is 64 KiB,
/// so ten thousand fit in well under a gigabyte), with their targets.
pub struct ImageCache {
    size: u32,
    pixels: Vec<Vec<u8>>,
    pub targets: Vec<usize>,
    pub sources: Vec<String>,
    pub paths: Vec<PathBuf>,
}

impl ImageCache {
    /// Decodes `images` in parallel and fits each to `preprocess`'s size. Unreadable files are left out
    /// and returned, so one bad file does not stop training; more than 1% unreadable is an error.
    pub fn load(
        images: &[LabeledImage],
        class_set: ClassSet,
        preprocess: &Preprocess,
        split: &'static str,
        progress: &ProgressBar,
    ) -> Result<(ImageCache, Vec<ImageError>), DataError> {
        progress.set_length(images.len() as u64);
        progress.set_style(bar_style());
        progress.set_message(format!("decoding {split} images"));
        let decoded: Vec<Result<Vec<u8>, ImageError>> = images
            .par_iter()
            .map(|img| {
                let fitted = load_image(&img.path).map(|grey| preprocess.fit(&grey).to_luma8());
                progress.inc(1);
                fitted
            })
            .collect();
        progress.finish_and_clear();
        let mut cache =
            ImageCache { size: preprocess.size, pixels: vec![], targets: vec![], sources: vec![], paths: vec![] };
        let mut errors = Vec::new();
        for (img, result) in images.iter().zip(decoded) {
            match result {
                Ok(pixels) => {
                    cache.pixels.push(pixels);
                    cache.targets.push(target_of(class_set, img.class));
                    cache.sources.push(img.source.clone());
                    cache.paths.push(img.path.clone());
                }
                Err(err) => errors.push(err),
            }
        }
        if errors.len() * 100 > images.len() {
            let count = errors.len();
            return Err(DataError::TooManyUnreadable {
                split,
                count,
                total: images.len(),
                first: errors.swap_remove(0),
            });
        }
        Ok((cache, errors))
    }

    pub fn len(&self) -> usize {
        self.pixels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pixels.is_empty()
    }

    /// Images per target.
    pub fn counts(&self, targets: usize) -> Vec<usize> {
        class_counts(&self.targets, targets)
    }

    /// The model inputs (CHW, concatenated) for `indices`, built in parallel through the same
    /// `Preprocess::apply` inference uses. With augmentation, image `i` of epoch `epoch` is
    /// transformed with a generator seeded from `(seed, epoch, i)`, so batches are reproducible
    /// whatever the thread count.
    pub fn batch(
        &self,
        indices: &[usize],
        preprocess: &Preprocess,
        augmentation: Option<(&Augmentation, u64, u64)>,
    ) -> Vec<f32> {
        let per_image: Vec<Vec<f32>> = indices
            .par_iter()
            .map(|&i| {
                let grey = GreyImage::from_luma8(self.size, self.size, &self.pixels[i]);
                let grey = match augmentation {
                    Some((aug, seed, epoch)) => {
                        let mut rng = ChaCha8Rng::seed_from_u64(mix_seed(seed, epoch, i as u64));
                        aug.apply(&grey, &mut rng)
                    }
                    None => grey,
                };
                preprocess.apply(&grey)
            })
            .collect();
        per_image.concat()
    }
}

/// How many of `targets` fall on each of the `classes` targets.
pub fn class_counts(targets: &[usize], classes: usize) -> Vec<usize> {
    let mut counts = vec![0; classes];
    for &t in targets {
        counts[t] += 1;
    }
    counts
}

/// A well-spread 64-bit seed from three numbers (SplitMix64 finaliser over their combination).
pub fn mix_seed(seed: u64, a: u64, b: u64) -> u64 {
    let mut z = seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{msg:24} [{bar:30}] {pos}/{len} {elapsed_precise} eta {eta}")
        .expect("the template is valid")
        .progress_chars("=> ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_split_without_covid_images_is_an_error_that_names_the_manifest_and_class() {
        let img = |class| LabeledImage { path: PathBuf::from("x.png"), class, source: "test".into() };
        let data = TrainingData {
            train: vec![img(Class::Covid), img(Class::Normal)],
            val: vec![img(Class::Normal), img(Class::Pneumonia)],
            split_seed: None,
            holdout_sources: vec![],
        };
        let err = data.check_classes(Path::new("m.csv"), ClassSet::Binary).unwrap_err().to_string();
        assert!(err.contains("m.csv") && err.contains("val") && err.contains("covid"), "{err}");
        let three = data.check_classes(Path::new("m.csv"), ClassSet::ThreeClass).unwrap_err().to_string();
        assert!(three.contains("train") && three.contains("pneumonia"), "{three}");
    }

    #[test]
    fn mixed_seeds_differ() {
        assert_ne!(mix_seed(1, 2, 3), mix_seed(1, 3, 2));
        assert_ne!(mix_seed(1, 2, 3), mix_seed(2, 2, 3));
    }
}
