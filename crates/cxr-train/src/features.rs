//! Frozen-base transfer: the backbone's output for every train and val image, computed once.
//!
//! With the backbone frozen its output for an image never changes, so the head can be trained on
//! those outputs instead of running the backbone every epoch: a CPU epoch over ten thousand X-rays
//! takes seconds instead of most of an hour. The price is augmentation: an augmented image has
//! other features, so per-epoch augmentation would force recomputing them, and frozen-base runs
//! train without it (full fine-tuning keeps the seed's augmentation). The backbone runs in
//! inference mode: BatchNorm uses its checkpoint's running statistics, as Keras does for a base
//! with `trainable = False`.
//!
//! The features stay in memory and are saved in the feature folder (the run directory unless
//! `--feature-dir` names another) as `features-<key>.safetensors` (with a `.json` sidecar), where
//! the key hashes everything that decides them: the weights file's sha256, the manifest's sha256,
//! the image list, the network and its preprocessing. A resumed or repeated run with the same key
//! skips decoding and the backbone altogether. The class set is not in the key: the file stores
//! which manifest row each feature row came from, and targets are derived from the rows' labels on
//! loading, so a three-class head trains on the features a binary run computed.

use crate::data::{ImageCache, LabeledImage, TrainingData, bar_style, class_counts, target_of};
use crate::network::NodeId;
use crate::run::{FeatureRecord, TrainConfig, TrainError};
use crate::tch_backend::{TchNetwork, batch_tensor};
use cxr_core::card::sha256_hex;
use cxr_core::{ClassSet, Preprocess};
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// One split's backbone outputs, `[N, …]` on the CPU (`[N, D]` pooled features for a head,
/// `[N, C, H, W]` maps for partial fine-tuning), with the target of each row.
pub struct FeatureSet {
    pub features: Tensor,
    pub targets: Vec<usize>,
}

impl FeatureSet {
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Rows `indices` as one batch on `device`.
    pub fn batch(&self, indices: &[usize], device: Device) -> Tensor {
        let rows: Vec<i64> = indices.iter().map(|&i| i as i64).collect();
        self.features.index_select(0, &Tensor::from_slice(&rows)).to_device(device)
    }

    pub fn counts(&self, targets: usize) -> Vec<usize> {
        class_counts(&self.targets, targets)
    }
}

/// What decides the features; its hash names the cache file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureKey {
    pub weights_sha256: String,
    pub manifest_sha256: String,
    /// sha256 over the train and val paths and classes, so a changed image list (or a test's
    /// hand-made list, which has no manifest file) never reuses stale features.
    pub images_sha256: String,
    pub architecture: String,
    pub input_size: i64,
    /// Name of the node whose output is cached: [`crate::network::Network::head_input`], or with
    /// partial fine-tuning [`crate::network::Network::input_of_layer`].
    pub node: String,
    pub preprocess: Preprocess,
    /// sha256 of the lung-field segmenter's weights, when the network stands behind one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lung_field_sha256: Option<String>,
}

impl FeatureKey {
    pub fn new(
        config: &TrainConfig,
        model: &TchNetwork,
        node: NodeId,
        data: &TrainingData,
        manifest_sha256: &str,
    ) -> Result<FeatureKey, TrainError> {
        let weights = config.pretrained.as_ref().ok_or(TrainError::FreezeWithoutWeights)?;
        let file_sha256 = |path: &Path| {
            std::fs::read(path).map(|bytes| sha256_hex(&bytes)).map_err(|source| TrainError::Io {
                path: path.to_owned(),
                action: "cannot read weights",
                source,
            })
        };
        let lung_field_sha256 = match &config.lung_field {
            Some(dir) => Some(file_sha256(&dir.join(crate::lung_field::WEIGHTS_FILE))?),
            None => None,
        };
        let listing: String = [("train", &data.train), ("val", &data.val)]
            .iter()
            .flat_map(|(split, images)| {
                images.iter().map(move |img| format!("{split}\t{}\t{}\n", img.path.display(), img.class))
            })
            .collect();
        let network = model.network();
        Ok(FeatureKey {
            weights_sha256: file_sha256(weights)?,
            manifest_sha256: manifest_sha256.to_owned(),
            images_sha256: sha256_hex(listing.as_bytes()),
            architecture: network.architecture.clone(),
            input_size: network.input_size,
            node: network.nodes[node].name.clone(),
            preprocess: crate::zoo::preprocess_for(network),
            lung_field_sha256,
        })
    }

    /// `features-<first 16 hex digits of the key's sha256>`.
    fn file_stem(&self) -> String {
        let json = serde_json::to_string(self).expect("a feature key serialises");
        format!("features-{}", &sha256_hex(json.as_bytes())[..16])
    }
}

/// The sidecar of a feature file: its key in full and what extraction found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct FeatureSidecar {
    key: FeatureKey,
    unreadable: Vec<String>,
    images: usize,
    extraction_seconds: f64,
}

/// Train and val features, the files left out, and how they were obtained.
pub struct CachedFeatures {
    pub train: FeatureSet,
    pub val: FeatureSet,
    pub unreadable: Vec<String>,
    pub record: FeatureRecord,
}

const TRAIN: &str = "train.features";
const TRAIN_ROWS: &str = "train.rows";
const VAL: &str = "val.features";
const VAL_ROWS: &str = "val.rows";

/// The features for `key` from `dir`'s cache when it has them, else computed with `model`'s
/// backbone (up to node `node`, inference mode, no augmentation) and saved there.
pub fn load_or_extract(
    model: &TchNetwork,
    node: NodeId,
    key: &FeatureKey,
    data: &TrainingData,
    config: &TrainConfig,
    dir: &Path,
    device: Device,
) -> Result<CachedFeatures, TrainError> {
    std::fs::create_dir_all(dir).map_err(|source| TrainError::Io {
        path: dir.to_owned(),
        action: "cannot create feature folder",
        source,
    })?;
    let stem = key.file_stem();
    let tensors_path = dir.join(format!("{stem}.safetensors"));
    let sidecar_path = dir.join(format!("{stem}.json"));
    if let Some(cached) = read_cache(&tensors_path, &sidecar_path, key, data, config.class_set) {
        return Ok(cached);
    }
    let started = Instant::now();
    let preprocess = crate::zoo::preprocess_for(model.network());
    let (train_images, mut unreadable) =
        ImageCache::load(&data.train, config.class_set, &preprocess, "train", &ProgressBar::new(0))?;
    let (val_images, val_unreadable) =
        ImageCache::load(&data.val, config.class_set, &preprocess, "val", &ProgressBar::new(0))?;
    unreadable.extend(val_unreadable);
    let (train, train_rows) = extract(model, node, &train_images, &data.train, config, device, "train");
    let (val, val_rows) = extract(model, node, &val_images, &data.val, config, device, "val");
    let unreadable: Vec<String> = unreadable.iter().map(|e| e.to_string()).collect();
    let sidecar = FeatureSidecar {
        key: key.clone(),
        unreadable: unreadable.clone(),
        images: train.len() + val.len(),
        extraction_seconds: started.elapsed().as_secs_f64(),
    };
    let named = [
        (TRAIN, train.features.shallow_clone()),
        (TRAIN_ROWS, train_rows),
        (VAL, val.features.shallow_clone()),
        (VAL_ROWS, val_rows),
    ];
    Tensor::write_safetensors(&named, &tensors_path)
        .map_err(|source| TrainError::Checkpoint { path: tensors_path.clone(), source })?;
    let text = serde_json::to_string_pretty(&sidecar).expect("a feature sidecar serialises");
    std::fs::write(&sidecar_path, text + "\n").map_err(|source| TrainError::Io {
        path: sidecar_path,
        action: "cannot write feature cache sidecar",
        source,
    })?;
    let record = record_for(&tensors_path, key, &train, &sidecar, false);
    Ok(CachedFeatures { train, val, unreadable, record })
}

/// Runs the backbone over every cached image in batches, without gradients; returns the features
/// and, as a tensor to save beside them, the row of `listed` (the split's images) each came from.
fn extract(
    model: &TchNetwork,
    node: NodeId,
    images: &ImageCache,
    listed: &[LabeledImage],
    config: &TrainConfig,
    device: Device,
    split: &str,
) -> (FeatureSet, Tensor) {
    let preprocess = crate::zoo::preprocess_for(model.network());
    let batch_size = config.batch_size;
    let bar = ProgressBar::new(images.len().div_ceil(batch_size) as u64).with_style(bar_style());
    bar.set_message(format!("{split} backbone features"));
    let all: Vec<usize> = (0..images.len()).collect();
    let batches: Vec<Tensor> = tch::no_grad(|| {
        all.chunks(batch_size)
            .map(|batch| {
                let inputs = images.batch(batch, &preprocess, None);
                let xs = batch_tensor(&inputs, preprocess.shape(batch.len())).to_device(device);
                let out = model.forward_to(&xs, node, false).to_device(Device::Cpu).to_kind(Kind::Float);
                bar.inc(1);
                out
            })
            .collect()
    });
    bar.finish_and_clear();
    let rows = rows_kept(listed, &images.paths);
    let set = FeatureSet { features: Tensor::cat(&batches, 0), targets: targets_of(listed, &rows, config.class_set) };
    let rows = Tensor::from_slice(&rows.iter().map(|&r| r as i64).collect::<Vec<_>>());
    (set, rows)
}

/// Positions in `listed` of the images in `kept`, which is `listed` in order with the unreadable
/// images left out.
fn rows_kept(listed: &[LabeledImage], kept: &[PathBuf]) -> Vec<usize> {
    let mut kept = kept.iter().peekable();
    listed
        .iter()
        .enumerate()
        .filter_map(|(row, img)| if kept.peek() == Some(&&img.path) { kept.next().map(|_| row) } else { None })
        .collect()
}

fn targets_of(listed: &[LabeledImage], rows: &[usize], class_set: ClassSet) -> Vec<usize> {
    rows.iter().map(|&row| target_of(class_set, listed[row].class)).collect()
}

/// The cached features when both files are there, the sidecar's key is `key` and the rows fit
/// `data`; `None` (compute afresh) otherwise, including for a damaged file. Caches written before
/// rows were stored hold targets instead; their rows are the split's images in order when no image
/// was unreadable, and they are recomputed otherwise.
fn read_cache(
    tensors_path: &Path,
    sidecar_path: &Path,
    key: &FeatureKey,
    data: &TrainingData,
    class_set: ClassSet,
) -> Option<CachedFeatures> {
    let sidecar: FeatureSidecar = serde_json::from_str(&std::fs::read_to_string(sidecar_path).ok()?).ok()?;
    if &sidecar.key != key {
        return None;
    }
    let mut tensors: std::collections::HashMap<String, Tensor> =
        Tensor::read_safetensors(tensors_path).ok()?.into_iter().collect();
    let mut set = |features: &str, rows: &str, listed: &[LabeledImage]| -> Option<FeatureSet> {
        let features = tensors.remove(features)?;
        let count = usize::try_from(*features.size().first()?).ok()?;
        let rows: Vec<usize> = match tensors.remove(rows) {
            Some(rows) => {
                Vec::<i64>::try_from(rows).ok()?.into_iter().map(|r| usize::try_from(r).ok()).collect::<Option<_>>()?
            }
            None if sidecar.unreadable.is_empty() => (0..count).collect(),
            None => return None,
        };
        if rows.len() != count || rows.iter().any(|&r| r >= listed.len()) {
            return None;
        }
        Some(FeatureSet { targets: targets_of(listed, &rows, class_set), features })
    };
    let train = set(TRAIN, TRAIN_ROWS, &data.train)?;
    let val = set(VAL, VAL_ROWS, &data.val)?;
    let record = record_for(tensors_path, key, &train, &sidecar, true);
    Some(CachedFeatures { train, val, unreadable: sidecar.unreadable, record })
}

fn record_for(
    tensors_path: &Path,
    key: &FeatureKey,
    train: &FeatureSet,
    sidecar: &FeatureSidecar,
    reused: bool,
) -> FeatureRecord {
    let file: PathBuf = tensors_path.file_name().map(PathBuf::from).unwrap_or_default();
    FeatureRecord {
        file: file.display().to_string(),
        node: key.node.clone(),
        dimensions: train.features.size().iter().skip(1).product(),
        images: sidecar.images,
        extraction_seconds: sidecar.extraction_seconds,
        reused,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cxr_core::Class;

    #[test]
    fn rows_skip_the_unreadable_images_and_targets_follow_the_class_set() {
        let listed: Vec<LabeledImage> =
            [("a", Class::Covid), ("b", Class::Pneumonia), ("c", Class::Normal), ("d", Class::Pneumonia)]
                .iter()
                .map(|&(p, class)| LabeledImage { path: PathBuf::from(p), class })
                .collect();
        let kept = [PathBuf::from("a"), PathBuf::from("c"), PathBuf::from("d")];
        let rows = rows_kept(&listed, &kept);
        assert_eq!(rows, [0, 2, 3]);
        assert_eq!(targets_of(&listed, &rows, ClassSet::Binary), [1, 0, 0]);
        assert_eq!(targets_of(&listed, &rows, ClassSet::ThreeClass), [0, 1, 2]);
    }
}
