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
pub mod phash;
#[cfg(feature = "plots")]
pub mod plot;
pub mod preprocess;
pub mod results;
pub mod split;
pub mod walk;

pub use card::ModelCard;

/// An error and its causes for a person to read, each said once: our errors already quote their
/// cause in their own message (`x.png: cannot read file: No such file…`), which printing the whole
/// chain (anyhow's `{:#}`) would repeat.
pub fn error_message(err: &(dyn std::error::Error + 'static)) -> String {
    let mut message = String::new();
    let mut cause = Some(err);
    while let Some(e) = cause {
        let text = e.to_string();
        if !message.contains(&text) {
            if !message.is_empty() {
                message.push_str(": ");
            }
            message.push_str(&text);
        }
        cause = e.source();
    }
    message
}
pub use image::{GreyImage, ImageError, load_image};
pub use label::{Class, ClassSet};
pub use manifest::{DuplicateSummary, Manifest, ManifestEntry};
pub use metrics::{BinaryMetrics, Calibration, ConfusionMatrix, Interval, MetricsError, RocCurve, SourceBreakdown};
pub use preprocess::Preprocess;
pub use split::Split;
