//! A training run's folder and what is kept in it: the run's configuration, its state after each
//! epoch (`state.json`, enough to resume and to export with a full card), the per-epoch CSV and
//! the checkpoints' names, and the errors a run can end with. Training ([`crate::train`]), export
//! ([`crate::export`]) and the feature cache ([`crate::features`]) all read these, so they live
//! apart from each of them.

use crate::augment::Augmentation;
use crate::balance::Balance;
use crate::data::DataError;
use crate::network::{Network, NetworkError};
use cxr_core::preprocess::Intensity;
use cxr_core::{ClassSet, Preprocess};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const STATE_FILE: &str = "state.json";
pub const BEST_WEIGHTS: &str = "best.safetensors";
pub const LAST_WEIGHTS: &str = "last.safetensors";
pub const EPOCHS_CSV: &str = "epochs.csv";
/// Training curves in the run directory (`curves.png`, `curves.svg`), redrawn after every epoch.
pub const CURVES: &str = "curves";

/// Everything that decides what a run computes; recorded in the state and the model card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub architecture: String,
    /// Input side in pixels; `None` uses the architecture's own.
    pub image_size: Option<i64>,
    pub class_set: ClassSet,
    pub epochs: u32,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub seed: u64,
    /// Stop after this many epochs without a better validation AUC.
    pub patience: u32,
    pub augmentation: Augmentation,
    /// The decision threshold is the highest one reaching this sensitivity on validation.
    pub target_sensitivity: f64,
    /// The command that reproduces the run, for the model card.
    pub recipe: String,
    /// Safetensors checkpoint the network starts from (ImageNet weights from
    /// scripts/fetch-weights.sh, or a converted torchvision checkpoint); `None` trains from scratch.
    /// Every tensor but the classifier head must fit by name and shape.
    #[serde(default)]
    pub pretrained: Option<PathBuf>,
    /// Train only the classifier head (or, with `unfreeze_from`, the last layers) and keep the base
    /// as in `pretrained` (needed). Without augmentation the base's outputs are computed once and
    /// cached; with one, the base re-runs on every batch's augmented images.
    #[serde(default)]
    pub freeze_base: bool,
    /// Folder for the frozen-base feature cache; `None` keeps it in the run directory. Runs of one
    /// backbone on one manifest (a binary and a three-class head, say) can share it. Where the
    /// cache lives does not change what a run computes, so it is neither recorded nor compared on
    /// resuming.
    #[serde(skip)]
    pub feature_dir: Option<PathBuf>,
    /// With `freeze_base`, freeze the base only up to this layer (a checkpoint layer name such as
    /// `features.17`): the layer, the ones after it and the head train on the cached output of the
    /// layer before (partial fine-tuning); `None` trains the head alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unfreeze_from: Option<String>,
    /// Grey-level remapping of every image, in training and, through the card, at inference.
    #[serde(default, skip_serializing_if = "is_as_is")]
    pub intensity: Intensity,
    /// A segmenter folder (`cxr train-lung-field`): the network trains and ships behind its lung
    /// field ([`crate::lung_field`]); needs `freeze_base`, which keeps the segmenter frozen too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lung_field: Option<PathBuf>,
    /// How the loss weighs each film: by class (the default) or by source and class.
    #[serde(default, skip_serializing_if = "is_class_balance")]
    pub balance: Balance,
    /// Train against a source predictor ([`crate::adversary`]) with this weight on its reversed
    /// gradient; `None` trains without one. The adversary is not saved: a resumed run starts a new one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_adversary: Option<f64>,
    /// Distillation ([`crate::soft_targets`]): the CSV of a teacher's P(covid) for every training
    /// film (`cxr score -m TEACHER`), which the loss then aims at instead of the films' labels.
    /// Validation, the epoch choice and the threshold still use the labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soft_targets: Option<PathBuf>,
}

fn is_class_balance(b: &Balance) -> bool {
    *b == Balance::Classes
}

fn is_as_is(i: &Intensity) -> bool {
    *i == Intensity::AsIs
}

impl TrainConfig {
    /// The seed paper's settings for `architecture`: Adam 1e-3, batch 32, its augmentation.
    pub fn new(architecture: &str) -> TrainConfig {
        TrainConfig {
            architecture: architecture.to_owned(),
            image_size: None,
            class_set: ClassSet::Binary,
            epochs: 30,
            batch_size: 32,
            learning_rate: 1e-3,
            seed: 42,
            patience: 5,
            augmentation: Augmentation::SEED_PAPER,
            target_sensitivity: 0.95,
            recipe: String::new(),
            pretrained: None,
            freeze_base: false,
            feature_dir: None,
            unfreeze_from: None,
            intensity: Intensity::AsIs,
            lung_field: None,
            balance: Balance::Classes,
            source_adversary: None,
            soft_targets: None,
        }
    }

    /// Refuses settings that cannot train, before any data is read.
    pub fn check(&self) -> Result<(), TrainError> {
        if self.freeze_base && self.pretrained.is_none() {
            return Err(TrainError::FreezeWithoutWeights);
        }
        if self.unfreeze_from.is_some() && !self.freeze_base {
            return Err(TrainError::UnfreezeWithoutFreeze);
        }
        if self.lung_field.is_some() && !self.freeze_base {
            return Err(TrainError::LungFieldWithoutFreeze);
        }
        if let Some(weight) = self.source_adversary
            && !(weight.is_finite() && weight > 0.0)
        {
            return Err(TrainError::AdversaryWeight { weight });
        }
        if let Some(path) = &self.soft_targets {
            let reason = if self.class_set != ClassSet::Binary {
                Some("soft targets are one P(covid) per film, so they train a binary network only")
            } else if self.freeze_base && self.augmentation == Augmentation::NONE {
                Some(
                    "cached backbone features do not keep their films' paths; add an augmentation (--augment) or train the whole network",
                )
            } else {
                None
            };
            if let Some(reason) = reason {
                return Err(TrainError::SoftTargets { path: path.clone(), reason: reason.to_owned() });
            }
        }
        Ok(())
    }

    /// How the card describes the transfer: `None` for a network trained from scratch.
    pub fn transfer(&self) -> Option<String> {
        self.pretrained.as_ref().map(|_| match (self.freeze_base, &self.unfreeze_from) {
            (true, None) => "frozen base, new head".to_owned(),
            (true, Some(layer)) => format!("base frozen up to `{layer}`, `{layer}` onwards fine-tuned, new head"),
            (false, _) => "full fine-tuning".to_owned(),
        })
    }
}

/// One line of `epochs.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: u32,
    pub train_loss: f64,
    pub train_acc: f64,
    pub val_loss: f64,
    pub val_acc: f64,
    pub val_auc: f64,
    pub seconds: f64,
    /// The source adversary's mean loss over the epoch (cross-entropy of its guess of each film's
    /// source): when it stops falling, the score no longer tells the sources apart any better.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adversary_loss: Option<f64>,
    /// What the adversary would lose knowing each film's class alone
    /// ([`crate::adversary::SourceAdversary::chance_loss`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adversary_chance: Option<f64>,
}

/// The epoch whose weights are kept, with the operating point chosen on validation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BestEpoch {
    pub epoch: u32,
    pub val_auc: f64,
    pub threshold: f64,
    pub val_sensitivity: f64,
    pub val_specificity: f64,
}

/// Where the data came from, for the model card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct DataRecord {
    pub manifest: String,
    pub manifest_sha256: String,
    pub split_seed: Option<u64>,
    pub holdout_sources: Vec<String>,
    pub train_images: u64,
    pub val_images: u64,
    pub train_class_counts: Vec<usize>,
    pub val_class_counts: Vec<usize>,
    /// Files that could not be decoded and were left out.
    pub unreadable: Vec<String>,
}

/// `state.json`: enough to resume a run and to export its best checkpoint with a full card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    pub config: TrainConfig,
    pub network: Network,
    pub preprocess: Preprocess,
    pub data: DataRecord,
    pub device: String,
    pub history: Vec<EpochRecord>,
    pub best: Option<BestEpoch>,
    pub epochs_since_best: u32,
    /// Why the run ended (`epochs`, `early stop`), `None` while it can go on.
    pub stopped: Option<String>,
    /// With a frozen base: where the backbone features came from.
    #[serde(default)]
    pub features: Option<FeatureRecord>,
}

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Network(#[from] NetworkError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error("{path}: {action}: {source}")]
    Io { path: PathBuf, action: &'static str, source: std::io::Error },
    #[error("{path}: not a training state file: {source}")]
    State { path: PathBuf, source: serde_json::Error },
    #[error(
        "{path}: {source} (the checkpoint does not match the architecture in state.json; was it copied from another run?)"
    )]
    Checkpoint { path: PathBuf, source: tch::TchError },
    #[error("{dir} already holds a training run; pass --resume to continue it or choose another output directory")]
    RunExists { dir: PathBuf },
    #[error("{dir}: nothing to resume ({STATE_FILE} missing); start without --resume")]
    NothingToResume { dir: PathBuf },
    #[error("{dir}: cannot resume: the run was made with {saved}, this command asks for {requested}")]
    ResumeMismatch { dir: PathBuf, saved: String, requested: String },
    #[error(transparent)]
    Pretrained(#[from] crate::pretrained::PretrainedError),
    #[error("{split} split is empty after leaving out unreadable images")]
    EmptySplit { split: &'static str },
    #[error("{metric}: {source}")]
    Metric { metric: &'static str, source: cxr_core::metrics::MetricsError },
    #[error("{path}: cannot write epoch CSV: {source}")]
    Csv { path: PathBuf, source: csv::Error },
    #[error("soft targets {path}: {reason}")]
    SoftTargets { path: PathBuf, reason: String },
    #[error(
        "--freeze-base needs --weights: a frozen, randomly initialised backbone gives random features; pass ImageNet weights (scripts/fetch-weights.sh gives .torch/weights/mobilenet_v2-imagenet.safetensors) or drop --freeze-base to train the whole network"
    )]
    FreezeWithoutWeights,
    #[error(
        "--unfreeze-from says where a frozen base stops, so it needs --freeze-base (without it every layer trains)"
    )]
    UnfreezeWithoutFreeze,
    #[error(
        "--lung-field puts a frozen segmenter in front of the network, so it needs --freeze-base (and --weights): full fine-tuning would train the segmenter's BatchNorm statistics too"
    )]
    LungFieldWithoutFreeze,
    #[error("--source-adversary {weight}: the weight of the reversed gradient must be a positive number")]
    AdversaryWeight { weight: f64 },
    #[error(transparent)]
    LungField(#[from] crate::lung_field::LungFieldError),
}

/// How a run got its features, for the state file and the model card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureRecord {
    /// The cache file, in the run directory.
    pub file: String,
    /// Name of the node whose output was cached.
    pub node: String,
    pub dimensions: i64,
    pub images: usize,
    /// Reading the store, decoding and the backbone, in this invocation.
    pub extraction_seconds: f64,
    /// Images this invocation computed and added to the store (the others were read from it).
    #[serde(default)]
    pub computed: usize,
    /// True when every image was read from the store.
    pub reused: bool,
}

pub fn read_state(path: &Path) -> Result<TrainState, TrainError> {
    let text = std::fs::read_to_string(path).map_err(|source| TrainError::Io {
        path: path.to_owned(),
        action: "cannot read training state",
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| TrainError::State { path: path.to_owned(), source })
}

pub(crate) fn write_state(path: &Path, state: &TrainState) -> Result<(), TrainError> {
    let text = serde_json::to_string_pretty(state).expect("training state always serialises");
    std::fs::write(path, text + "\n").map_err(|source| TrainError::Io {
        path: path.to_owned(),
        action: "cannot write training state",
        source,
    })
}

pub(crate) fn write_epochs_csv(path: &Path, history: &[EpochRecord]) -> Result<(), TrainError> {
    let csv_err = |source| TrainError::Csv { path: path.to_owned(), source };
    let mut writer = csv::Writer::from_path(path).map_err(csv_err)?;
    for record in history {
        writer.serialize(record).map_err(csv_err)?;
    }
    writer.flush().map_err(|source| TrainError::Io { path: path.to_owned(), action: "cannot write epoch CSV", source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_adversary_needs_a_positive_weight() {
        let mut config = TrainConfig::new("seed-cnn");
        for weight in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            config.source_adversary = Some(weight);
            let err = config.check().unwrap_err().to_string();
            assert!(err.contains("--source-adversary") && err.contains("positive"), "{err}");
        }
        config.source_adversary = Some(1.0);
        config.check().unwrap();
    }
}
