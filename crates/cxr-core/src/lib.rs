//! `cxr-core`: the parts of cxr that need no ML engine, shared by training (`cxr-train`, libtorch)
//! and inference (`cxr-infer`, tract), so both sides read images, label data and score results
//! in exactly the same way.

pub mod card;
pub mod dataset;
pub mod dedup;
pub mod image;
pub mod label;
pub mod lung_mask;
pub mod manifest;
pub mod metrics;
#[cfg(feature = "plots")]
pub mod plot;
pub mod phash;
pub mod preprocess;
pub mod results;
pub mod split;

pub use card::ModelCard;
pub use image::{GreyImage, ImageError, load_image};
pub use label::{Class, ClassSet};
pub use manifest::{Manifest, ManifestEntry};
pub use metrics::{BinaryMetrics, Calibration, ConfusionMatrix, Interval, MetricsError, RocCurve, SourceBreakdown};
pub use preprocess::Preprocess;
pub use split::Split;
