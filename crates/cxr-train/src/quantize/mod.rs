//! Post-training static quantization: an exported fp32 ONNX with its card becomes an int8
//! QOperator ONNX (QLinearConv, MatMulInteger) with a card of its own.
//!
//! Activation ranges come from training images ([`calibrate`]), never from the validation or
//! test splits; the validation split is then scored by both models through `cxr-infer` (the
//! runtime users run), which picks the int8 model's own threshold and records how far its
//! probabilities moved. Needs no libtorch: it works on any model `onnx_graph` wrote.

mod calibrate;
mod rewrite;

pub use calibrate::{Calibration, calibrate};
pub use rewrite::{Range, Ranges, quantize_graph, split_gemm};

use crate::data::{LabeledImage, TrainingData, mix_seed};
use cxr_core::card::{CardError, QuantizationRecord, sha256_hex};
use cxr_core::metrics::{MetricsError, RocCurve};
use cxr_core::{Class, GreyImage, ModelCard, load_image};
use cxr_infer::{Batch, InferError, Model};
use prost::Message;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use tract_onnx::pb;

/// The floor: fewer images give activation ranges that miss the tails of real data.
pub const MIN_CALIBRATION_IMAGES: usize = 200;

/// What the card's `quantization.scheme` says, with the activation calibration and any layers
/// kept in float filled in.
pub fn scheme(options: &QuantizeOptions) -> String {
    let mut scheme = format!(
        "QOperator: uint8 activations (asymmetric, {}), int8 symmetric weights per output channel; \
QLinearConv with int32 bias and fused ReLU/ReLU6; fully connected layers as MatMulInteger with int32 sums \
rescaled to float; pooling averages, residual adds, fully connected biases and the head run in float",
        options.calibration.describe()
    );
    if !options.keep_float.is_empty() {
        scheme += &format!("; kept in float: {}", options.keep_float.join(", "));
    }
    scheme
}

#[derive(Debug, thiserror::Error)]
pub enum QuantizeError {
    #[error("the ONNX model has no graph or no input")]
    NoGraph,
    #[error("node `{node}`: {reason}")]
    Unsupported { node: String, reason: String },
    #[error("no calibrated range for tensor `{0}`")]
    NoRange(String),
    #[error("tract: {0}")]
    Tract(String),
    #[error("{path}: {reason}")]
    Input { path: PathBuf, reason: String },
    #[error(
        "only {found} readable training images for calibration (asked for {wanted}); at least {MIN_CALIBRATION_IMAGES} are needed: index more data"
    )]
    TooFewImages { found: usize, wanted: usize },
    #[error("{path}: cannot write: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Infer(#[from] InferError),
    #[error(transparent)]
    Card(#[from] CardError),
    #[error("validation comparison: {0}")]
    Metric(#[from] MetricsError),
}

#[derive(Debug, Clone)]
pub struct QuantizeOptions {
    /// Training images whose activation ranges set the scales.
    pub calibration_images: usize,
    /// Seed of the draw of calibration images.
    pub seed: u64,
    /// How activation ranges are read off the calibration images.
    pub calibration: Calibration,
    /// Conv and MatMul nodes (ONNX node names; a fully connected layer's is `<gemm>/matmul`)
    /// that stay in float.
    pub keep_float: Vec<String>,
    /// The int8 threshold is the highest reaching this sensitivity on validation, as for fp32.
    pub target_sensitivity: f64,
    /// Score at most this many validation images for the comparison (all when `None`).
    pub compare_images: Option<usize>,
}

impl Default for QuantizeOptions {
    fn default() -> Self {
        QuantizeOptions {
            calibration_images: 256,
            seed: 42,
            calibration: Calibration::MinMax,
            keep_float: Vec::new(),
            target_sensitivity: 0.95,
            compare_images: None,
        }
    }
}

/// Quantizes `fp32` (with its card beside it), calibrating on `data.train` and comparing on
/// `data.val`; writes `out` and its card; returns the card.
pub fn quantize_file(
    fp32: &Path,
    data: &TrainingData,
    out: &Path,
    options: &QuantizeOptions,
) -> Result<ModelCard, QuantizeError> {
    let fp32_model = Model::load(fp32)?;
    let fp32_card = fp32_model.card.clone();
    if fp32_card.precision != "fp32" {
        return Err(QuantizeError::Input {
            path: fp32.to_owned(),
            reason: format!("is a {} model; quantize its fp32 parent", fp32_card.precision),
        });
    }
    let bytes = std::fs::read(fp32).map_err(|source| QuantizeError::Io { path: fp32.to_owned(), source })?;
    let proto = pb::ModelProto::decode(bytes.as_slice())
        .map_err(|e| QuantizeError::Input { path: fp32.to_owned(), reason: format!("not an ONNX model: {e}") })?;
    let split = split_gemm(&proto)?;
    let keep_float: std::collections::HashSet<String> = options.keep_float.iter().cloned().collect();
    if let Some(missing) =
        keep_float.iter().find(|name| !split.graph.iter().flat_map(|g| &g.node).any(|n| &n.name == *name))
    {
        return Err(QuantizeError::Input {
            path: fp32.to_owned(),
            reason: format!("has no node `{missing}` to keep in float"),
        });
    }

    let images = calibration_images(&data.train, options)?;
    let ranges = calibrate(&split, &fp32_card.preprocess, &images, options.calibration)?;
    let int8_bytes = quantize_graph(&split, &ranges, &keep_float)?.encode_to_vec();
    std::fs::write(out, &int8_bytes).map_err(|source| QuantizeError::Io { path: out.to_owned(), source })?;

    let mut card = fp32_card.clone();
    card.name = out.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    card.file = out.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    card.precision = "int8".into();
    card.sha256 = sha256_hex(&int8_bytes);
    card.evaluations.clear();
    let card_path = ModelCard::path_for(out);
    let int8_model = Model::from_bytes(card.clone(), &card_path, out, &int8_bytes, Batch::default())?;

    let mut val = data.val.clone();
    if let Some(n) = options.compare_images {
        val.shuffle(&mut ChaCha8Rng::seed_from_u64(mix_seed(options.seed, 2, 0)));
        val.truncate(n);
    }
    let compared = compare(&fp32_model, &int8_model, &val);
    let positives: Vec<bool> = compared.iter().map(|c| c.class == Class::Covid).collect();
    let (fp32_scores, int8_scores): (Vec<f64>, Vec<f64>) = compared.iter().map(|c| (c.fp32, c.int8)).unzip();
    let fp32_roc = RocCurve::new(&fp32_scores, &positives)?;
    let int8_roc = RocCurve::new(&int8_scores, &positives)?;
    let point = int8_roc.threshold_for_sensitivity(options.target_sensitivity)?;
    let diffs: Vec<f64> = compared.iter().map(|c| (c.int8 - c.fp32).abs()).collect();
    card.threshold = point.threshold;
    card.threshold_rule = format!(
        "highest threshold with sensitivity >= {} on the validation split, scored by this int8 model ({} images: sensitivity {:.3}, specificity {:.3})",
        options.target_sensitivity,
        compared.len(),
        point.tpr,
        1.0 - point.fpr
    );
    card.notes.push(format!(
        "int8 post-training quantization of {} by `cxr quantize` (see `quantization`); the training record is the fp32 model's",
        fp32_card.file
    ));
    card.quantization = Some(QuantizationRecord {
        from_file: fp32_card.file.clone(),
        from_sha256: fp32_card.sha256.clone(),
        scheme: scheme(options),
        calibration_images: images.len() as u64,
        calibration_seed: options.seed,
        compared_images: compared.len() as u64,
        val_auc_fp32: fp32_roc.auc,
        val_auc_int8: int8_roc.auc,
        max_abs_diff: diffs.iter().copied().fold(0.0, f64::max),
        mean_abs_diff: diffs.iter().sum::<f64>() / diffs.len().max(1) as f64,
    });
    card.save(&card_path)?;
    Ok(card)
}

/// `options.calibration_images` readable training images, drawn with the seed.
fn calibration_images(train: &[LabeledImage], options: &QuantizeOptions) -> Result<Vec<GreyImage>, QuantizeError> {
    let wanted = options.calibration_images.max(MIN_CALIBRATION_IMAGES);
    let mut order: Vec<&LabeledImage> = train.iter().collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(mix_seed(options.seed, 1, 0)));
    let mut images = Vec::with_capacity(wanted);
    // Unreadable images are skipped; draw further down the shuffled list until enough decode.
    for chunk in order.chunks(wanted) {
        let need = wanted - images.len();
        images.extend(
            chunk.par_iter().filter_map(|item| load_image(&item.path).ok()).collect::<Vec<_>>().into_iter().take(need),
        );
        if images.len() == wanted {
            break;
        }
    }
    if images.len() < MIN_CALIBRATION_IMAGES {
        return Err(QuantizeError::TooFewImages { found: images.len(), wanted });
    }
    Ok(images)
}

/// P(covid) of both models on one image.
struct Compared {
    class: Class,
    fp32: f64,
    int8: f64,
}

/// Scores every readable image with both models (unreadable ones are left out of the comparison).
fn compare(fp32: &Model, int8: &Model, images: &[LabeledImage]) -> Vec<Compared> {
    images
        .par_iter()
        .map_init(
            || (fp32.session(), int8.session()),
            |(a, b), item| {
                let img = load_image(&item.path).ok()?;
                let p = a.predict_image(&img).ok()?.p_covid() as f64;
                let q = b.predict_image(&img).ok()?.p_covid() as f64;
                Some(Compared { class: item.class, fp32: p, int8: q })
            },
        )
        .flatten()
        .collect()
}
