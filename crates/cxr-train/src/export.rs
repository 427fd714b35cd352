//! From a training run's checkpoint to a shippable pair: the ONNX file and its model card. The
//! graph itself is written by [`crate::onnx_graph`].

use crate::network::{Head, Network};
use crate::onnx_graph::{self, ExportError, FEATURES_NAME, INPUT_NAME, PROBABILITIES_NAME, ParamValues};
use crate::run::{BEST_WEIGHTS, STATE_FILE, TrainError, TrainState, read_state};
use crate::tch_backend::{TchNetwork, param_values};
use crate::zoo;
use cxr_core::card::{CardError, ModelIo, RESEARCH_USE_ONLY, TrainingRecord, sha256_hex};
use cxr_core::plot::{EpochPoint, PlotError, PlotFiles, training_curves};
use cxr_core::{ClassSet, ModelCard, Preprocess};
use std::path::{Path, PathBuf};
use tch::{Device, nn};

#[derive(Debug, thiserror::Error)]
pub enum ExportCheckpointError {
    #[error(
        "{0}: no checkpoint there (expected a run directory with {STATE_FILE} and {BEST_WEIGHTS}, or a .safetensors file beside {STATE_FILE})"
    )]
    NotACheckpoint(PathBuf),
    #[error("{0}: the run has no best epoch yet (no epoch finished); train at least one epoch")]
    NoBestEpoch(PathBuf),
    #[error(transparent)]
    Train(#[from] TrainError),
    #[error(transparent)]
    Export(#[from] ExportError),
    #[error(transparent)]
    Card(#[from] CardError),
    #[error(transparent)]
    Plot(#[from] PlotError),
}

/// The weights file and state file that `checkpoint` (a run directory or a `.safetensors` file) names.
pub fn resolve_checkpoint(checkpoint: &Path) -> Result<(PathBuf, PathBuf), ExportCheckpointError> {
    let (weights, dir) = if checkpoint.is_dir() {
        (checkpoint.join(BEST_WEIGHTS), checkpoint.to_owned())
    } else {
        (checkpoint.to_owned(), checkpoint.parent().unwrap_or(Path::new(".")).to_owned())
    };
    let state = dir.join(STATE_FILE);
    if !weights.is_file() || !state.is_file() {
        return Err(ExportCheckpointError::NotACheckpoint(checkpoint.to_owned()));
    }
    Ok((weights, state))
}

/// Writes `onnx_path` and its card (`x.onnx` → `x.card.json`) from a checkpoint; the card's name
/// is the ONNX file's stem.
pub fn export_checkpoint(checkpoint: &Path, onnx_path: &Path) -> Result<ModelCard, ExportCheckpointError> {
    let (weights, state_path) = resolve_checkpoint(checkpoint)?;
    let state = read_state(&state_path)?;
    let best = state.best.clone().ok_or_else(|| ExportCheckpointError::NoBestEpoch(checkpoint.to_owned()))?;
    let mut vs = nn::VarStore::new(Device::Cpu);
    let model = TchNetwork::new(&vs.root(), state.network.clone()).map_err(TrainError::from)?;
    vs.load(&weights).map_err(|source| TrainError::Checkpoint { path: weights.clone(), source })?;
    let bytes = onnx_graph::write_onnx(model.network(), &param_values(&vs), onnx_path)?;
    let card = card_for(&state, &best, onnx_path, &bytes);
    card.save(&ModelCard::path_for(onnx_path))?;
    write_training_curves(&state, &curves_base(onnx_path))?;
    Ok(card)
}

/// Where the training curves of `x.onnx` go: `x.curves.png` and `x.curves.svg`.
pub fn curves_base(onnx_path: &Path) -> PathBuf {
    onnx_path.with_extension("curves")
}

/// Plots the run's per-epoch losses, accuracies and validation AUC.
pub fn write_training_curves(state: &TrainState, base: &Path) -> Result<PlotFiles, ExportCheckpointError> {
    let points: Vec<EpochPoint> = state
        .history
        .iter()
        .map(|r| EpochPoint {
            epoch: r.epoch,
            train_loss: r.train_loss,
            val_loss: r.val_loss,
            train_acc: r.train_acc,
            val_acc: r.val_acc,
            val_auc: r.val_auc,
        })
        .collect();
    let title = format!("{} training ({} epochs)", state.network.architecture, points.len());
    Ok(training_curves(base, &title, &points, state.best.as_ref().map(|b| b.epoch))?)
}

/// Writes `onnx_path` and its card for `network` with `values` that no training run produced
/// (an ImageNet backbone with a fresh head, a network straight from initialisation): for
/// benchmarks and round-trip tests. The card says so, and its threshold is 0.5.
pub fn export_values(
    network: &Network,
    values: &ParamValues,
    onnx_path: &Path,
    note: &str,
) -> Result<ModelCard, ExportCheckpointError> {
    let bytes = onnx_graph::write_onnx(network, values, onnx_path)?;
    let class_set = match network.head {
        Head::Sigmoid => ClassSet::Binary,
        Head::Softmax { .. } => ClassSet::ThreeClass,
        Head::Mask => unreachable!("a segmenter is no classifier and gets no model card"),
    };
    let mut card = base_card(network, zoo::preprocess_for(network), class_set, onnx_path, &bytes);
    card.threshold = 0.5;
    card.threshold_rule = "fixed at 0.5: not trained by cxr".into();
    card.notes = vec![RESEARCH_USE_ONLY.to_owned(), note.to_owned()];
    card.save(&ModelCard::path_for(onnx_path))?;
    Ok(card)
}

/// What every card of an exported `network` says, before training details.
fn base_card(
    network: &Network,
    preprocess: Preprocess,
    class_set: ClassSet,
    onnx_path: &Path,
    bytes: &[u8],
) -> ModelCard {
    ModelCard {
        name: onnx_path.file_stem().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default(),
        architecture: network.architecture.clone(),
        precision: "fp32".into(),
        file: onnx_path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default(),
        sha256: sha256_hex(bytes),
        class_set,
        preprocess,
        io: ModelIo {
            input: INPUT_NAME.into(),
            probabilities: PROBABILITIES_NAME.into(),
            feature_map: network.features.map(|_| FEATURES_NAME.to_owned()),
        },
        threshold: 0.5,
        threshold_rule: String::new(),
        parameters: Some(network.trainable_parameter_count()),
        training: None,
        evaluations: vec![],
        notes: vec![],
        quantization: None,
    }
}

fn card_for(state: &TrainState, best: &crate::run::BestEpoch, onnx_path: &Path, bytes: &[u8]) -> ModelCard {
    let config = &state.config;
    let epochs_trained = state.history.last().map_or(0, |r| r.epoch);
    let aug = &config.augmentation;
    ModelCard {
        threshold: best.threshold,
        threshold_rule: format!(
            "highest threshold with sensitivity >= {} on the validation split (epoch {}: sensitivity {:.3}, specificity {:.3})",
            config.target_sensitivity, best.epoch, best.val_sensitivity, best.val_specificity
        ),
        training: Some(TrainingRecord {
            manifest: state.data.manifest.clone(),
            manifest_sha256: state.data.manifest_sha256.clone(),
            split_seed: state.data.split_seed.unwrap_or_default(),
            train_seed: config.seed,
            holdout_sources: state.data.holdout_sources.clone(),
            train_images: state.data.train_images,
            val_images: state.data.val_images,
            epochs: epochs_trained,
            recipe: config.recipe.clone(),
            transfer: config.transfer(),
            pretrained: config.pretrained.as_ref().map(|p| p.display().to_string()),
        }),
        notes: vec![
            RESEARCH_USE_ONLY.to_owned(),
            format!(
                "weights of epoch {} of {epochs_trained} (best validation AUC {:.4}; the validation split chose the epoch and threshold, so it is not an unbiased test)",
                best.epoch, best.val_auc
            ),
            format!(
                "trained with Adam lr {} batch {} on {} ({}), {} loss, augmentation: rotation ±{}°, shear ±{}, zoom ±{}, horizontal flip {}, brightness {:?}",
                config.learning_rate,
                config.batch_size,
                state.device,
                state.stopped.as_deref().unwrap_or("unfinished"),
                match config.balance {
                    crate::Balance::Classes => "class-weighted",
                    crate::Balance::Sources => "films drawn with replacement so that every source, and every class inside it, turns up alike, unweighted",
                },
                aug.rotation_degrees,
                aug.shear,
                aug.zoom,
                aug.horizontal_flip,
                aug.brightness
            ),
            match &config.pretrained {
                Some(weights) if config.freeze_base => match &config.unfreeze_from {
                    None => format!(
                        "frozen base: every tensor but the classifier head (`{}`) is as in {}, BatchNorm included; only the head was trained",
                        state.network.head_prefix(),
                        weights.display()
                    ),
                    Some(layer) => format!(
                        "base frozen up to `{layer}`: every tensor before it is as in {}, BatchNorm included; `{layer}`, the layers after it and the new head were trained (BatchNorm statistics of those layers re-estimated)",
                        weights.display()
                    ),
                },
                // load_pretrained keeps a head of the network's shape (a checkpoint of the same network) and
                // starts a head of another shape (ImageNet's 1,000 classes) afresh.
                Some(weights) => format!(
                    "started from the weights in {} (every tensor of the network's names and shapes; a classifier head of another shape, such as ImageNet's, starts afresh); every layer trained",
                    weights.display()
                ),
                None => "trained from scratch: no pretrained weights".to_owned(),
            },
        ]
        .into_iter()
        .chain(config.soft_targets.as_ref().map(|csv| {
            format!(
                "distilled: the training loss aimed at the P(covid) a teacher model gave each training film ({}, from `cxr score -m TEACHER`) instead of the film's label; validation, the epoch and the threshold used the labels",
                csv.display()
            )
        }))
        .chain(config.source_adversary.map(|weight| {
            format!(
                "trained against a source predictor (weight {weight}): an adversary guessed each training film's source from its score and class, and the classifier was trained, through a reversed gradient, to make that guess hard"
            )
        }))
        .chain(state.features.as_ref().map(|f| {
            format!(
                "backbone features cached: the output of `{}` ({} values) was computed once per image, in inference mode and without augmentation (per-epoch augmentation would force recomputing it), and the layers after it trained on it; of the {} images' features, {} were computed for this run and the others read from the store {} ({:.0} s in all)",
                f.node, f.dimensions, f.images, f.computed, f.file, f.extraction_seconds
            )
        }))
        .collect(),
        ..base_card(&state.network, state.preprocess, config.class_set, onnx_path, bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_without_a_run_is_not_a_checkpoint_and_the_message_says_what_is_expected() {
        let dir = tempfile::tempdir().unwrap();
        let err = export_checkpoint(dir.path(), &dir.path().join("m.onnx")).unwrap_err().to_string();
        assert!(err.contains(STATE_FILE) && err.contains(BEST_WEIGHTS), "{err}");
    }
}
