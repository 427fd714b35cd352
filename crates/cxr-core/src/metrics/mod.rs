//! How good a model is, with the uncertainty stated: ROC/AUC with DeLong or bootstrap intervals,
//! operating-point metrics with Wilson intervals, confusion matrices, calibration and a
//! per-source breakdown.
//!
//! Test sets for COVID-19 X-rays are small (often under 100 positives), so every headline number
//! carries a 95% interval: a sensitivity of 0.95 from 20 positives and one from 2,000 are not the
//! same claim. Every result type is `Serialize` so it can go into `metrics.json` unchanged.
//!
//! Inputs are parallel slices: `scores[i]` is the model's score for sample `i` (higher means
//! more likely positive) and `positives[i]` says whether sample `i` truly is positive.

pub mod breakdown;
pub mod calibration;
pub mod confusion;
pub mod roc;
pub mod threshold;
pub mod within_source;

pub use breakdown::{SourceBreakdown, per_source, per_source_at};
pub use calibration::{Calibration, ReliabilityBin};
pub use confusion::{ConfusionMatrix, argmax};
pub use roc::{DeLong, PairedAuc, RocCurve, RocPoint, auc, auc_bootstrap_ci, delong, paired_auc};
pub use threshold::{BinaryMetrics, Proportion};
pub use within_source::{LeftOutSource, SourceAuc, WithinSource, WithinSourceError, within_source};

use serde::Serialize;

/// The two-sided 95% normal quantile, used by the Wilson and DeLong intervals.
pub const Z_95: f64 = 1.959_963_984_540_054;

/// A point estimate with a 95% interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    pub estimate: f64,
    pub lower: f64,
    pub upper: f64,
}

impl Interval {
    /// Formats as `0.912 (95% CI 0.871–0.944)`, the way papers report it.
    pub fn display(&self, decimals: usize) -> String {
        format!("{:.d$} (95% CI {:.d$}–{:.d$})", self.estimate, self.lower, self.upper, d = decimals)
    }
}

/// Why a metric could not be computed. The inputs are in memory, so messages name the
/// offending sample or count and say what to change.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricsError {
    #[error("{scores} scores but {labels} labels: every sample needs exactly one score and one label")]
    LengthMismatch { scores: usize, labels: usize },
    #[error("no samples: metrics need at least one scored sample")]
    Empty,
    #[error("sample {index} has score {value}: scores must be finite numbers (check the model output for NaN)")]
    NonFiniteScore { index: usize, value: f64 },
    #[error(
        "sample {index} has score {value}: calibration needs probabilities in [0, 1] \
         (apply the sigmoid/softmax before calibrating)"
    )]
    ScoreNotProbability { index: usize, value: f64 },
    #[error(
        "only one class present ({positives} positive, {negatives} negative): ROC/AUC needs at \
         least one positive and one negative sample"
    )]
    SingleClass { positives: usize, negatives: usize },
    #[error(
        "{positives} positive and {negatives} negative samples: the DeLong interval needs at least \
         two of each (use a larger test set)"
    )]
    TooFewForInterval { positives: usize, negatives: usize },
    #[error("{name} = {value} is out of range: {expected}")]
    OutOfRange { name: &'static str, value: f64, expected: &'static str },
    #[error("sample {index} has class index {class}, but there are only {classes} class names")]
    ClassOutOfRange { index: usize, class: usize, classes: usize },
}

/// Checks the shared preconditions of every score-based metric: same length, not empty,
/// finite scores.
fn check_scored(scores: &[f64], positives: &[bool]) -> Result<(), MetricsError> {
    if scores.len() != positives.len() {
        return Err(MetricsError::LengthMismatch { scores: scores.len(), labels: positives.len() });
    }
    if scores.is_empty() {
        return Err(MetricsError::Empty);
    }
    if let Some((index, &value)) = scores.iter().enumerate().find(|(_, s)| !s.is_finite()) {
        return Err(MetricsError::NonFiniteScore { index, value });
    }
    Ok(())
}

/// Positives and negatives in the labels.
fn class_counts(positives: &[bool]) -> (usize, usize) {
    let p = positives.iter().filter(|&&p| p).count();
    (p, positives.len() - p)
}

/// What every ranking metric needs: valid scores and at least one case of each class.
/// Returns (positives, negatives).
fn check_ranked(scores: &[f64], positives: &[bool]) -> Result<(usize, usize), MetricsError> {
    check_scored(scores, positives)?;
    let (p, n) = class_counts(positives);
    if p == 0 || n == 0 {
        return Err(MetricsError::SingleClass { positives: p, negatives: n });
    }
    Ok((p, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_displays_like_a_paper() {
        let i = Interval { estimate: 0.91234, lower: 0.871, upper: 0.9444 };
        assert_eq!(i.display(3), "0.912 (95% CI 0.871–0.944)");
    }

    #[test]
    fn shared_checks_reject_bad_input() {
        assert_eq!(check_scored(&[0.1], &[true, false]), Err(MetricsError::LengthMismatch { scores: 1, labels: 2 }));
        assert_eq!(check_scored(&[], &[]), Err(MetricsError::Empty));
        assert!(matches!(
            check_scored(&[0.1, f64::NAN], &[true, false]),
            Err(MetricsError::NonFiniteScore { index: 1, .. })
        ));
    }
}
