//! A lung-field step in front of a classifier: a segmenter ([`crate::zoo::lung_unet`]) marks the
//! lungs and everything else is multiplied away before the classifier sees the film.
//!
//! Within one hospital a COVID classifier's best shortcut is what lies outside the lungs: text,
//! borders, devices, the abdomen, the way a department frames its films. Masking the input to the
//! lung field removes most of it. The step is written into the classifier's own graph
//! ([`behind_lung_field`]), so the exported ONNX holds segmenter, mask and classifier, and every
//! consumer (`cxr predict`, `score`, `eval`, the Pi programs, the Python package) runs it without
//! knowing it is there. The segmenter is trained first, on its own ([`crate::segmenter`]), then
//! frozen while the classifier trains behind it.
//!
//! Multiplying a normalised input by the mask sets the masked pixels to the normalisation's zero,
//! the mid grey of the training images, not to black: a constant that carries no information.

use crate::network::{Head, Network, NetworkError, Node, Op};
use crate::zoo::LUNG_FIELD_PREFIX;
use cxr_core::Preprocess;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A trained segmenter's description, beside its weights in the folder `cxr train-lung-field` writes.
pub const RECORD_FILE: &str = "lung-field.json";
/// Its weights, named `lung_field.…`.
pub const WEIGHTS_FILE: &str = "lung-field.safetensors";

/// What a segmenter folder records: enough to rebuild it, to check that it fits a classifier, and
/// to say on a card how good it was and on which films it learned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmenterRecord {
    pub network: Network,
    /// The input it was trained on, which must be the classifier's (it sees the classifier's input).
    pub preprocess: Preprocess,
    /// The lung-mask list and the manifest whose `train` and `val` films it learned from.
    pub masks: String,
    pub manifest: String,
    pub train_films: usize,
    pub val_films: usize,
    pub best_epoch: u32,
    /// Dice overlap of its thresholded mask with the drawn one, over the validation films.
    pub val_dice: f64,
    pub epochs: Vec<SegmenterEpoch>,
    /// sha256 of the weights file, so a classifier's feature cache and card can name them.
    pub weights_sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmenterEpoch {
    pub epoch: u32,
    pub train_loss: f64,
    pub val_dice: f64,
    pub seconds: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum LungFieldError {
    #[error("{path}: not a lung-field folder ({source}); make one with `cxr train-lung-field`")]
    Unreadable { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a lung-field record: {source}")]
    Corrupt { path: PathBuf, source: serde_json::Error },
    #[error(
        "{path}: the lung field was trained on {segmenter:?} input, but {classifier} takes {wanted:?}; train it with `--arch {classifier}`"
    )]
    InputMismatch { path: PathBuf, segmenter: Box<Preprocess>, classifier: String, wanted: Box<Preprocess> },
    #[error(transparent)]
    Network(#[from] NetworkError),
}

/// A segmenter folder: its record and where its weights are.
pub struct LungField {
    pub record: SegmenterRecord,
    /// Where the record was read from, for messages.
    pub record_path: PathBuf,
    pub weights: PathBuf,
}

impl LungField {
    pub fn load(dir: &Path) -> Result<LungField, LungFieldError> {
        let path = dir.join(RECORD_FILE);
        let text = std::fs::read_to_string(&path)
            .map_err(|source| LungFieldError::Unreadable { path: path.clone(), source })?;
        let record =
            serde_json::from_str(&text).map_err(|source| LungFieldError::Corrupt { path: path.clone(), source })?;
        Ok(LungField { record, record_path: path, weights: dir.join(WEIGHTS_FILE) })
    }

    /// Refuses a classifier whose input preprocessing differs from the one the segmenter learned on.
    pub fn check_fits(&self, classifier: &Network, wanted: &Preprocess) -> Result<(), LungFieldError> {
        if self.record.preprocess != *wanted {
            return Err(LungFieldError::InputMismatch {
                path: self.record_path.clone(),
                segmenter: Box::new(self.record.preprocess),
                classifier: classifier.architecture.clone(),
                wanted: Box::new(*wanted),
            });
        }
        Ok(())
    }
}

/// One network: `segmenter` marks the lungs of the input, its sigmoid multiplies the input, and
/// `classifier` runs on the product. The classifier's layer names are kept, so its pretrained
/// checkpoint and its partial fine-tuning cuts (`_blocks.15`) still apply; the segmenter's are
/// already under [`LUNG_FIELD_PREFIX`].
pub fn behind_lung_field(segmenter: &Network, classifier: &Network) -> Result<Network, NetworkError> {
    let invalid = |problem: String| NetworkError::Invalid {
        network: classifier.architecture.clone(),
        node: LUNG_FIELD_PREFIX.into(),
        problem,
    };
    if segmenter.head != Head::Mask {
        return Err(invalid(format!("{} is not a segmenter", segmenter.architecture)));
    }
    if (segmenter.input_channels, segmenter.input_size) != (classifier.input_channels, classifier.input_size) {
        return Err(invalid(format!(
            "the segmenter takes {}×{s}×{s}, the classifier {}×{c}×{c}",
            segmenter.input_channels,
            classifier.input_channels,
            s = segmenter.input_size,
            c = classifier.input_size
        )));
    }
    let mut nodes = segmenter.nodes.clone();
    nodes.push(Node { name: format!("{LUNG_FIELD_PREFIX}.mask"), op: Op::Sigmoid, inputs: vec![segmenter.logits] });
    nodes.push(Node { name: format!("{LUNG_FIELD_PREFIX}.apply"), op: Op::Mul, inputs: vec![0, nodes.len() - 1] });
    let masked = nodes.len() - 1;
    // The classifier's input becomes the masked image; its other nodes move up behind the segmenter.
    let moved = |id: usize| if id == 0 { masked } else { masked + id };
    nodes.extend(classifier.nodes.iter().skip(1).map(|node| Node {
        name: node.name.clone(),
        op: node.op.clone(),
        inputs: node.inputs.iter().map(|&i| moved(i)).collect(),
    }));
    let network = Network {
        architecture: format!("{}+lung-field", classifier.architecture),
        nodes,
        logits: moved(classifier.logits),
        features: classifier.features.map(moved),
        ..classifier.clone()
    };
    network.shapes()?;
    Ok(network)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zoo;
    use cxr_core::ClassSet;

    #[test]
    fn the_classifier_reads_the_masked_input_and_keeps_its_layer_names_and_cuts() {
        let classifier = zoo::build("efficientnet-lite0", None, ClassSet::Binary).unwrap();
        let segmenter = zoo::lung_unet(3, 224).unwrap();
        let joined = behind_lung_field(&segmenter, &classifier).unwrap();
        assert_eq!(joined.base_architecture(), "efficientnet-lite0");
        assert_eq!(joined.parameters().len(), classifier.parameters().len() + segmenter.parameters().len());
        let apply = joined.nodes.iter().position(|n| n.name == "lung_field.apply").unwrap();
        let stem = joined.nodes.iter().position(|n| n.name == "_conv_stem").unwrap();
        assert_eq!(joined.nodes[stem].inputs, vec![apply], "the classifier's first layer reads the masked image");
        assert_eq!(joined.nodes[apply].inputs[0], 0, "the mask multiplies the input itself");
        // Partial fine-tuning still finds its cut, after the lung field: the segmenter stays frozen.
        let cut = joined.input_of_layer("_blocks.15").unwrap();
        assert!(cut > apply);
        assert!(!joined.is_after("lung_field.down0.0.weight", cut));
        assert_eq!(joined.nodes[joined.features.unwrap()].name, classifier.nodes[classifier.features.unwrap()].name);
    }

    #[test]
    fn a_segmenter_for_another_input_size_or_a_classifier_in_its_place_is_refused() {
        let classifier = zoo::build("efficientnet-lite0", None, ClassSet::Binary).unwrap();
        let small = zoo::lung_unet(3, 128).unwrap();
        assert!(behind_lung_field(&small, &classifier).unwrap_err().to_string().contains("128"));
        assert!(behind_lung_field(&classifier, &classifier).unwrap_err().to_string().contains("not a segmenter"));
        assert!(zoo::lung_unet(3, 100).is_err());
    }
}
