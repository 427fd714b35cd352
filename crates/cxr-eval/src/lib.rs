//! `cxr-eval`: how good a model is on labelled films, as a library, so that `cxr eval`, the
//! accuracy tests and a user's own program measure the same thing the same way.
//!
//! The pieces, in the order an evaluation runs them:
//! - [`labelled`]: labelled films from a manifest or a folder-per-class tree, narrowed to sources;
//! - [`scoring`]: every film scored by every model with one decode per film, optionally again
//!   with the lungs blacked out, and the share of each model's evidence inside human lung masks;
//! - [`ensemble`]: several models' scores averaged per film, as one more model to report;
//! - [`report`]: the metrics of one model's scores (within-source AUC first), or of cross-fitted
//!   models' pooled out-of-fold scores.
//!
//! Writing files and printing are the caller's: `cxr eval` writes `metrics.json`, the plots and
//! an HTML page from an [`EvalReport`].

pub mod ensemble;
pub mod labelled;
pub mod report;
pub mod scoring;

pub use labelled::{Labelled, LabelledSet, labelled_images, only_sources};
pub use report::{Comparison, DataSummary, EvalReport, Failure, Metrics, ModelSummary, NoiseShift, Shift};
pub use scoring::{OCCLUDED_FRACTION, ScoreOptions, Scored, occlude_center, score_all};

use std::path::PathBuf;

/// Why an evaluation cannot run. Every variant names what it is about.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(transparent)]
    Manifest(#[from] cxr_core::manifest::ManifestError),
    #[error(transparent)]
    Folder(#[from] cxr_core::walk::WalkError),
    #[error(transparent)]
    Metrics(#[from] cxr_core::MetricsError),
    #[error(transparent)]
    Infer(#[from] cxr_infer::InferError),
    #[error(transparent)]
    Masks(#[from] cxr_core::lung_mask::LungMaskError),
    #[error("cannot start worker threads: {0}")]
    Threads(#[from] rayon::ThreadPoolBuildError),
    #[error("{0}")]
    Split(String),
    #[error("{what} applies to manifests; {} is a folder", path.display())]
    ManifestOnly { what: &'static str, path: PathBuf },
    #[error("{}: no image of source `{source_name}` (sources there: {known})", data.display())]
    UnknownSource { data: PathBuf, source_name: String, known: String },
    #[error("{model}: every image failed to score; first error: {first}")]
    AllFailed { model: String, first: String },
    #[error("out-of-fold scores pool one kind of model: {model} has other classes than {first}")]
    MixedClassSets { model: String, first: String },
}
