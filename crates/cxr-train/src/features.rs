//! Frozen-base transfer: the backbone's output for every train and val image, computed once.
//!
//! With the backbone frozen its output for an image never changes, so the head can be trained on
//! those outputs instead of running the backbone every epoch: a CPU epoch over ten thousand X-rays
//! takes seconds instead of most of an hour. The price is augmentation: an augmented image has
//! other features, so per-epoch augmentation would force recomputing them, and frozen-base runs
//! train without it (full fine-tuning keeps the seed's augmentation). The backbone runs in
//! inference mode: BatchNorm uses its checkpoint's running statistics, as Keras does for a base
//! with `trainable = False`, so an image's features do not depend on the batch it came in.
//!
//! That is what lets the features be stored per image. The feature folder (the run directory
//! unless `--feature-dir` names another) holds one store per [`FeatureKey`] — the weights file's
//! sha256, the network, the cut and the preprocessing — as `features-<key>.safetensors` with a
//! `.json` index naming each row's file by its contents (sha256 and length). A run reads
//! the rows of its images and computes only the images the store lacks, then adds them: the five
//! folds of a cross-validation over thirteen thousand films decode and run the backbone over them
//! once, not five times, and a resumed run or a three-class head beside a binary one computes
//! nothing. Targets come from the run's own labels, never from the store.
//!
//! A file is known by its bytes, not by its name or modification time: the features are a function
//! of the bytes alone, so a dataset copied, restored from a backup or synced without its times
//! keeps its hour of backbone passes, and a file replaced under the same name is computed again.
//! Hashing thirteen thousand films (a quarter of a gigabyte) takes about a second.

use crate::data::{ImageCache, LabeledImage, TrainingData, bar_style, class_counts, target_of};
use crate::network::NodeId;
use crate::run::{FeatureRecord, TrainConfig, TrainError};
use crate::tch_backend::{TchNetwork, batch_tensor};
use cxr_core::card::sha256_hex;
use cxr_core::{ClassSet, Preprocess};
use indicatif::ProgressBar;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// One split's backbone outputs, `[N, …]` on the CPU (`[N, D]` pooled features for a head,
/// `[N, C, H, W]` maps for partial fine-tuning), with the target and source of each row.
pub struct FeatureSet {
    pub features: Tensor,
    pub targets: Vec<usize>,
    pub sources: Vec<String>,
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

/// What decides one image's features; its hash names the store file. Which images a run uses is
/// not part of it: the store keeps every image it has seen, so runs over overlapping image lists
/// (the folds of a cross-validation, a three-class head beside a binary one) share their features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureKey {
    pub weights_sha256: String,
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
    pub fn new(config: &TrainConfig, model: &TchNetwork, node: NodeId) -> Result<FeatureKey, TrainError> {
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
        let network = model.network();
        Ok(FeatureKey {
            weights_sha256: file_sha256(weights)?,
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

/// One image file as the store knows it: the sha256 and length of its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
struct ImageId {
    sha256: String,
    bytes: u64,
}

impl ImageId {
    /// `None` for a file that cannot be read: it is decoded (and fails) in every run.
    fn of(path: &Path) -> Option<ImageId> {
        let bytes = std::fs::read(path).ok()?;
        Some(ImageId { sha256: sha256_hex(&bytes), bytes: bytes.len() as u64 })
    }

    /// The identity of every image of `listed`, hashed in parallel.
    fn of_all(listed: &[LabeledImage]) -> Vec<Option<ImageId>> {
        listed.par_iter().map(|img| ImageId::of(&img.path)).collect()
    }
}

/// The sidecar of a store: its key in full, the image of each feature row, the images that could
/// not be read (with the reason), and the time spent computing all of it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct StoreIndex {
    key: Option<FeatureKey>,
    rows: Vec<ImageId>,
    unreadable: Vec<(ImageId, String)>,
    extraction_seconds: f64,
}

/// Every image's features for one key, row `i` belonging to `index.rows[i]`.
struct FeatureStore {
    index: StoreIndex,
    features: Option<Tensor>,
}

const FEATURES: &str = "features";

impl FeatureStore {
    /// The store at `tensors_path`/`index_path` when both are there, hold `key` and agree on their
    /// row count; an empty one otherwise (a damaged store is recomputed, not trusted).
    fn open(tensors_path: &Path, index_path: &Path, key: &FeatureKey) -> FeatureStore {
        let read = || -> Option<FeatureStore> {
            let index: StoreIndex = serde_json::from_str(&std::fs::read_to_string(index_path).ok()?).ok()?;
            if index.key.as_ref() != Some(key) {
                return None;
            }
            let features = Tensor::read_safetensors(tensors_path).ok()?.into_iter().find(|(n, _)| n == FEATURES)?.1;
            (usize::try_from(*features.size().first()?).ok()? == index.rows.len())
                .then_some(FeatureStore { index, features: Some(features) })
        };
        read().unwrap_or(FeatureStore {
            index: StoreIndex { key: Some(key.clone()), ..StoreIndex::default() },
            features: None,
        })
    }

    /// Writes both files, each through a temporary file and a rename, so an interrupted write
    /// leaves the previous store whole.
    fn save(&self, tensors_path: &Path, index_path: &Path) -> Result<(), TrainError> {
        let temporary = |path: &Path| path.with_extension("partial");
        if let Some(features) = &self.features {
            let partial = temporary(tensors_path);
            Tensor::write_safetensors(&[(FEATURES, features.shallow_clone())], &partial)
                .map_err(|source| TrainError::Checkpoint { path: partial.clone(), source })?;
            rename(&partial, tensors_path)?;
        }
        let partial = temporary(index_path);
        let text = serde_json::to_string(&self.index).expect("a feature store index serialises");
        std::fs::write(&partial, text + "\n").map_err(|source| TrainError::Io {
            path: partial.clone(),
            action: "cannot write feature store index",
            source,
        })?;
        rename(&partial, index_path)
    }

    /// Computes the features of the images of `listed` (identified by `ids`) the store has neither
    /// as a row nor as unreadable, and adds them; returns how many were computed.
    #[allow(clippy::too_many_arguments)]
    fn add_missing(
        &mut self,
        model: &TchNetwork,
        node: NodeId,
        listed: &[LabeledImage],
        ids: &[Option<ImageId>],
        config: &TrainConfig,
        device: Device,
        split: &'static str,
    ) -> Result<usize, TrainError> {
        let known: HashSet<&ImageId> =
            self.index.rows.iter().chain(self.index.unreadable.iter().map(|(id, _)| id)).collect();
        let mut seen = HashSet::new();
        let missing: Vec<(LabeledImage, Option<ImageId>)> = listed
            .iter()
            .zip(ids)
            .map(|(img, id)| (img.clone(), id.clone()))
            .filter(|(_, id)| id.as_ref().is_none_or(|id| !known.contains(id) && seen.insert(id.clone())))
            .collect();
        if missing.is_empty() {
            return Ok(0);
        }
        let started = Instant::now();
        let images: Vec<LabeledImage> = missing.iter().map(|(img, _)| img.clone()).collect();
        let preprocess = crate::zoo::preprocess_for(model.network());
        let (decoded, errors) = ImageCache::load(&images, config.class_set, &preprocess, split, &ProgressBar::new(0))?;
        let kept = rows_kept(&images, &decoded.paths);
        let mut computed = extract(model, node, &decoded, config, device, split);
        let mut errors = errors.into_iter();
        let mut kept_rows = kept.iter().peekable();
        // Rows of `computed` to store: all but those of files that could not be looked at.
        let (mut stored, mut decoded_rows): (Vec<i64>, i64) = (Vec::new(), 0);
        for (row, (_, id)) in missing.into_iter().enumerate() {
            let was_kept = kept_rows.peek() == Some(&&row);
            if was_kept {
                kept_rows.next();
                decoded_rows += 1;
            }
            match (id, was_kept) {
                (Some(id), true) => {
                    stored.push(decoded_rows - 1);
                    self.index.rows.push(id);
                }
                (Some(id), false) => {
                    let reason = errors.next().map(|e| e.to_string()).unwrap_or_default();
                    self.index.unreadable.push((id, reason));
                }
                // A file that could not be looked at before decoding, yet decoded (it appeared in
                // between), has no identity to store its row under: it is left out, and a run
                // that lists it reports it unreadable.
                (None, true) => {}
                (None, false) => {
                    errors.next();
                }
            }
        }
        if (stored.len() as i64) < decoded_rows {
            computed = computed.index_select(0, &Tensor::from_slice(&stored));
        }
        if computed.size()[0] > 0 {
            self.features = Some(match self.features.take() {
                Some(old) => Tensor::cat(&[old, computed], 0),
                None => computed,
            });
        }
        self.index.extraction_seconds += started.elapsed().as_secs_f64();
        Ok(images.len())
    }

    /// The rows of `listed`'s images (identified by `ids`) as a feature set, and the reasons for the
    /// ones that could not be read.
    fn gather(
        &self,
        listed: &[LabeledImage],
        ids: &[Option<ImageId>],
        class_set: ClassSet,
    ) -> (FeatureSet, Vec<String>) {
        let row_of: HashMap<&ImageId, usize> = self.index.rows.iter().enumerate().map(|(row, id)| (id, row)).collect();
        let reason_of: HashMap<&ImageId, &str> =
            self.index.unreadable.iter().map(|(id, reason)| (id, reason.as_str())).collect();
        let mut rows = Vec::new();
        let mut targets = Vec::new();
        let mut sources = Vec::new();
        let mut unreadable = Vec::new();
        for (img, id) in listed.iter().zip(ids) {
            match id.as_ref().and_then(|id| row_of.get(id)) {
                Some(&row) => {
                    rows.push(row as i64);
                    targets.push(target_of(class_set, img.class));
                    sources.push(img.source.clone());
                }
                None => unreadable.push(match id.as_ref().and_then(|id| reason_of.get(id)) {
                    Some(reason) => reason.to_string(),
                    None => format!("{}: cannot be read", img.path.display()),
                }),
            }
        }
        let features = match &self.features {
            Some(all) => all.index_select(0, &Tensor::from_slice(&rows)),
            None => Tensor::zeros([0], (Kind::Float, Device::Cpu)),
        };
        (FeatureSet { features, targets, sources }, unreadable)
    }
}

fn rename(from: &Path, to: &Path) -> Result<(), TrainError> {
    std::fs::rename(from, to).map_err(|source| TrainError::Io {
        path: to.to_owned(),
        action: "cannot replace feature store",
        source,
    })
}

/// Train and val features, the files left out, and how they were obtained.
pub struct CachedFeatures {
    pub train: FeatureSet,
    pub val: FeatureSet,
    pub unreadable: Vec<String>,
    pub record: FeatureRecord,
}

/// The features of `data`'s train and val images: those `dir`'s store for `key` already has are
/// read from it, the others computed with `model`'s backbone (up to node `node`, inference mode,
/// no augmentation) and added to it.
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
    let index_path = dir.join(format!("{stem}.json"));
    let mut store = FeatureStore::open(&tensors_path, &index_path, key);
    let started = Instant::now();
    let (train_ids, val_ids) = (ImageId::of_all(&data.train), ImageId::of_all(&data.val));
    let computed = store.add_missing(model, node, &data.train, &train_ids, config, device, "train")?
        + store.add_missing(model, node, &data.val, &val_ids, config, device, "val")?;
    if computed > 0 {
        store.save(&tensors_path, &index_path)?;
    }
    let (train, mut unreadable) = store.gather(&data.train, &train_ids, config.class_set);
    let (val, val_unreadable) = store.gather(&data.val, &val_ids, config.class_set);
    unreadable.extend(val_unreadable);
    let record = FeatureRecord {
        file: tensors_path.file_name().map(PathBuf::from).unwrap_or_default().display().to_string(),
        node: key.node.clone(),
        dimensions: train.features.size().iter().skip(1).product(),
        images: train.len() + val.len(),
        extraction_seconds: started.elapsed().as_secs_f64(),
        computed,
        reused: computed == 0,
    };
    Ok(CachedFeatures { train, val, unreadable, record })
}

/// Runs the backbone over every decoded image in batches, without gradients; `[N, …]` on the CPU.
fn extract(
    model: &TchNetwork,
    node: NodeId,
    images: &ImageCache,
    config: &TrainConfig,
    device: Device,
    split: &str,
) -> Tensor {
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
    if batches.is_empty() {
        return Tensor::zeros([0], (Kind::Float, Device::Cpu));
    }
    Tensor::cat(&batches, 0)
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

#[cfg(test)]
mod tests {
    use super::*;
    use cxr_core::Class;

    #[test]
    fn rows_skip_the_unreadable_images() {
        let listed: Vec<LabeledImage> = ["a", "b", "c", "d"]
            .iter()
            .map(|p| LabeledImage { path: PathBuf::from(p), class: Class::Covid, source: "s".into() })
            .collect();
        let kept = [PathBuf::from("a"), PathBuf::from("c"), PathBuf::from("d")];
        assert_eq!(rows_kept(&listed, &kept), [0, 2, 3]);
    }

    /// The store finds each listed file's row whatever the list's order or path spelling, gives
    /// targets from the list's labels, reports the unreadable with their reason, does not hand
    /// a replaced file its old features, and knows the same bytes under another name.
    #[test]
    fn a_store_serves_rows_by_contents_and_forgets_replaced_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, bytes: &[u8]| {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            path
        };
        let (a, b, bad, replaced) =
            (file("a.png", b"a"), file("b.png", b"bb"), file("bad.png", b""), file("r.png", b"r"));
        let id = |path: &Path| ImageId::of(path).unwrap();
        let store = FeatureStore {
            index: StoreIndex {
                key: None,
                rows: vec![id(&a), id(&b), id(&replaced)],
                unreadable: vec![(id(&bad), "bad.png: empty file".into())],
                extraction_seconds: 0.0,
            },
            features: Some(Tensor::from_slice(&[10f32, 20., 30.]).view([3, 1])),
        };
        std::fs::write(&replaced, b"a longer replacement").unwrap();
        let listed = [
            (dir.path().join(".").join("b.png"), Class::Pneumonia),
            (bad.clone(), Class::Normal),
            (a.clone(), Class::Covid),
            (replaced.clone(), Class::Covid),
            (dir.path().join("absent.png"), Class::Normal),
        ]
        .map(|(path, class)| LabeledImage { path, class, source: "s".into() });
        let (set, unreadable) = store.gather(&listed, &ImageId::of_all(&listed), ClassSet::ThreeClass);
        assert_eq!(Vec::<f32>::try_from(set.features.view([-1])).unwrap(), [20., 10.]);
        assert_eq!(set.targets, [2, 0]);
        assert_eq!(set.sources, ["s", "s"]);
        assert_eq!(unreadable.len(), 3, "{unreadable:?}");
        assert_eq!(unreadable[0], "bad.png: empty file");
        assert!(unreadable[1].contains("r.png") && unreadable[2].contains("absent.png"), "{unreadable:?}");

        let copy = [LabeledImage { path: file("copy-of-a.png", b"a"), class: Class::Normal, source: "t".into() }];
        let (set, unreadable) = store.gather(&copy, &ImageId::of_all(&copy), ClassSet::ThreeClass);
        assert!(unreadable.is_empty(), "{unreadable:?}");
        assert_eq!(Vec::<f32>::try_from(set.features.view([-1])).unwrap(), [10.]);
        assert_eq!((set.targets, set.sources), (vec![1], vec!["t".to_owned()]));
    }
}
