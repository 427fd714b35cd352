//! The model card: the JSON that travels beside every ONNX file and says what the model is,
//! how to feed it, how to read its output, what data it saw and how well it did on data it did not.

use crate::label::ClassSet;
use crate::preprocess::Preprocess;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The name of the evaluation that heads a card: COVID against non-COVID films of the same
/// source, on a collection the model never trained on (see `docs/within-source.md`).
pub const WITHIN_SOURCE: &str = "within-source";

/// Printed wherever cxr shows a diagnosis-like result.
pub const RESEARCH_USE_ONLY: &str = "research use only, not for diagnosis";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    /// Short unique name, e.g. `seed-cnn-int8`; what `--model NAME` matches.
    pub name: String,
    /// Network in the zoo (`seed-cnn`, `mobilenet-v2`, …).
    pub architecture: String,
    /// `fp32` or `int8`.
    pub precision: String,
    /// ONNX file name, relative to the card.
    pub file: String,
    /// Lowercase hex sha256 of the ONNX file; a mismatch means card and model were separated.
    pub sha256: String,
    pub class_set: ClassSet,
    pub preprocess: Preprocess,
    pub io: ModelIo,
    /// Decision threshold on P(covid), chosen on the validation split (see `threshold_rule`).
    pub threshold: f64,
    #[serde(default)]
    pub threshold_rule: String,
    #[serde(default)]
    pub parameters: Option<u64>,
    #[serde(default)]
    pub training: Option<TrainingRecord>,
    /// Results on data the model never trained on.
    #[serde(default)]
    pub evaluations: Vec<EvaluationRecord>,
    #[serde(default)]
    pub notes: Vec<String>,
    /// For an int8 model: the fp32 model it was quantized from, and how.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantization: Option<QuantizationRecord>,
}

/// How an int8 model was made from its fp32 parent, and how far its outputs moved on data it
/// was not calibrated on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct QuantizationRecord {
    /// The fp32 ONNX file and its sha256.
    pub from_file: String,
    pub from_sha256: String,
    /// `QOperator` (QLinearConv / QLinearMatMul) and what is integer.
    pub scheme: String,
    /// Number of training images whose activation ranges set the scales, and the seed that drew them.
    pub calibration_images: u64,
    pub calibration_seed: u64,
    /// Validation images both models scored.
    pub compared_images: u64,
    pub val_auc_fp32: f64,
    pub val_auc_int8: f64,
    /// Largest |P_int8 − P_fp32| over those images.
    pub max_abs_diff: f64,
    pub mean_abs_diff: f64,
}

/// Names of the graph's input and outputs, so the runtime never guesses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelIo {
    pub input: String,
    /// Probabilities: `[N, 1]` P(covid) for binary models, `[N, 3]` softmax for three-class ones.
    pub probabilities: String,
    /// Last convolutional feature map `[N, C, h, w]`, exported for class activation maps
    /// (only for networks that global-pool before a linear head).
    #[serde(default)]
    pub feature_map: Option<String>,
}

/// What the model was trained on, enough to reproduce it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct TrainingRecord {
    pub manifest: String,
    #[serde(default)]
    pub manifest_sha256: String,
    pub split_seed: u64,
    pub train_seed: u64,
    #[serde(default)]
    pub holdout_sources: Vec<String>,
    pub train_images: u64,
    pub val_images: u64,
    pub epochs: u32,
    #[serde(default)]
    pub recipe: String,
    #[serde(default)]
    pub transfer: Option<String>,
    #[serde(default)]
    pub pretrained: Option<String>,
}

/// One evaluation summary; the full report lives beside it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct EvaluationRecord {
    /// e.g. `test` (leak-free split) or `cross-source` (held-out sources).
    pub name: String,
    pub images: u64,
    pub auc: f64,
    pub auc_ci95: [f64; 2],
    #[serde(default)]
    pub sensitivity: Option<f64>,
    #[serde(default)]
    pub specificity: Option<f64>,
    #[serde(default)]
    pub auc_occluded_center: Option<f64>,
    /// The committed split this was measured on, so CI can measure it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored_split: Option<StoredSplit>,
    /// COVID against non-COVID films of the same source (see `cxr_core::metrics::within_source`):
    /// the figure a source-recognising model cannot fake. Absent when no source had both classes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_source: Option<WithinSourceRecord>,
}

/// The within-source AUC of one evaluation, as a card keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct WithinSourceRecord {
    pub auc: f64,
    pub auc_ci95: [f64; 2],
    /// Same-source (COVID, non-COVID) pairs it was measured on.
    pub pairs: u64,
    /// The sources pooled, as `name (COVID + non-COVID)`.
    pub sources: Vec<String>,
    /// The same with the central lung region blacked out; near 0.5 when the lungs carry the decision.
    #[serde(default)]
    pub auc_occluded_center: Option<f64>,
}

/// A split kept in the repository (e.g. `splits/seed42.csv`, split `test`): a manifest whose paths
/// are relative to the datasets root, so anyone with the datasets can re-run an evaluation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct StoredSplit {
    /// Manifest CSV, relative to the card's folder.
    pub file: String,
    /// Which of its splits (`test`, `holdout`).
    pub split: String,
    /// Only the images of these sources (all when empty), e.g. one collection that has both
    /// classes, for a within-source evaluation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CardError {
    #[error("{path}: cannot read model card: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a valid model card: {source}")]
    Json { path: PathBuf, source: serde_json::Error },
    #[error(
        "{model}: sha256 is {actual} but its card {card} says {expected}; the model file and card do not belong together (put the model's own card beside it, or fix the card)"
    )]
    Sha256Mismatch { model: PathBuf, card: PathBuf, expected: String, actual: String },
}

impl ModelCard {
    pub fn load(path: &Path) -> Result<ModelCard, CardError> {
        let text = std::fs::read_to_string(path).map_err(|source| CardError::Io { path: path.to_owned(), source })?;
        ModelCard::from_json(path, &text)
    }

    /// Parses card JSON; `path` is used for messages only.
    pub fn from_json(path: &Path, text: &str) -> Result<ModelCard, CardError> {
        serde_json::from_str(text).map_err(|source| CardError::Json { path: path.to_owned(), source })
    }

    pub fn save(&self, path: &Path) -> Result<(), CardError> {
        let text = serde_json::to_string_pretty(self).expect("a card always serialises");
        std::fs::write(path, text + "\n").map_err(|source| CardError::Io { path: path.to_owned(), source })
    }

    /// The card's path for a model file: `model.onnx` → `model.card.json`.
    pub fn path_for(model: &Path) -> PathBuf {
        model.with_extension("card.json")
    }

    /// Checks that `model_bytes` (read from `model_path`) are the file this card describes.
    pub fn verify(&self, card_path: &Path, model_path: &Path, model_bytes: &[u8]) -> Result<(), CardError> {
        let actual = sha256_hex(model_bytes);
        if actual != self.sha256.to_ascii_lowercase() {
            return Err(CardError::Sha256Mismatch {
                model: model_path.to_owned(),
                card: card_path.to_owned(),
                expected: self.sha256.clone(),
                actual,
            });
        }
        Ok(())
    }

    /// The evaluation a user should read first: the one named [`WITHIN_SOURCE`] (COVID against
    /// non-COVID films of one held-out collection), else the first with a within-source figure,
    /// else the leak-free `test` one, else the first.
    pub fn headline(&self) -> Option<&EvaluationRecord> {
        let e = &self.evaluations;
        e.iter()
            .find(|e| e.name == WITHIN_SOURCE && e.within_source.is_some())
            .or_else(|| e.iter().find(|e| e.within_source.is_some()))
            .or_else(|| e.iter().find(|e| e.name == "test"))
            .or(e.first())
    }

    /// Output names in the model's output order.
    pub fn class_names(&self) -> &'static [&'static str] {
        self.class_set.names()
    }
}

/// Lowercase hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(sha: &str) -> ModelCard {
        ModelCard {
            name: "t".into(),
            architecture: "seed-cnn".into(),
            precision: "fp32".into(),
            file: "t.onnx".into(),
            sha256: sha.into(),
            class_set: ClassSet::Binary,
            preprocess: Preprocess::SEED,
            io: ModelIo { input: "image".into(), probabilities: "prob".into(), feature_map: None },
            threshold: 0.5,
            threshold_rule: String::new(),
            parameters: Some(422_177),
            training: None,
            evaluations: vec![],
            notes: vec![],
            quantization: None,
        }
    }

    #[test]
    fn verify_accepts_the_right_bytes_and_names_both_files_otherwise() {
        let bytes = b"onnx bytes";
        let c = card(&sha256_hex(bytes));
        assert!(c.verify(Path::new("t.card.json"), Path::new("t.onnx"), bytes).is_ok());
        let err = c.verify(Path::new("t.card.json"), Path::new("t.onnx"), b"other").unwrap_err().to_string();
        assert!(err.contains("t.onnx") && err.contains("t.card.json"), "{err}");
    }

    #[test]
    fn card_round_trips_through_json() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.card.json");
        let c = card("ab");
        c.save(&path).unwrap();
        assert_eq!(ModelCard::load(&path).unwrap(), c);
        assert_eq!(ModelCard::path_for(Path::new("x/m.onnx")), Path::new("x/m.card.json"));
    }
}
