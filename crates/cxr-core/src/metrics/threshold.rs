//! What a model does at one operating point (`score >= threshold` means positive): the four
//! counts and the rates clinicians ask for, each with a Wilson 95% interval.
//!
//! Wilson rather than the textbook `p ± 1.96·√(p(1−p)/n)`: that one collapses to zero width at
//! 0/n and n/n, which is exactly where small COVID test sets put sensitivity.

use serde::Serialize;

use super::{Interval, MetricsError, Z_95, check_scored};

/// `k` successes out of `n` trials with the Wilson score 95% interval; the estimate and
/// interval are absent (not NaN) when `n` is 0.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Proportion {
    pub k: usize,
    pub n: usize,
    #[serde(flatten)]
    pub interval: Option<Interval>,
}

impl Proportion {
    pub fn wilson(k: usize, n: usize) -> Proportion {
        assert!(k <= n, "a proportion cannot have more successes ({k}) than trials ({n})");
        if n == 0 {
            return Proportion { k, n, interval: None };
        }
        let (kf, nf) = (k as f64, n as f64);
        let p = kf / nf;
        let z2 = Z_95 * Z_95;
        let denominator = 1.0 + z2 / nf;
        let centre = (p + z2 / (2.0 * nf)) / denominator;
        let half_width = Z_95 * (p * (1.0 - p) / nf + z2 / (4.0 * nf * nf)).sqrt() / denominator;
        let interval =
            Interval { estimate: p, lower: (centre - half_width).max(0.0), upper: (centre + half_width).min(1.0) };
        Proportion { k, n, interval: Some(interval) }
    }

    /// The point estimate k/n, `None` when n is 0.
    pub fn estimate(&self) -> Option<f64> {
        self.interval.map(|i| i.estimate)
    }
}

/// Counts and rates at one threshold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BinaryMetrics {
    pub threshold: f64,
    pub true_positives: usize,
    pub false_positives: usize,
    pub true_negatives: usize,
    pub false_negatives: usize,
    /// Recall of positives: TP / (TP + FN).
    pub sensitivity: Proportion,
    /// TN / (TN + FP).
    pub specificity: Proportion,
    /// Positive predictive value (precision): TP / (TP + FP). Depends on prevalence, so it
    /// only transfers to a population with the test set's COVID share.
    pub ppv: Proportion,
    /// Negative predictive value: TN / (TN + FN); prevalence-dependent like PPV.
    pub npv: Proportion,
    pub accuracy: Proportion,
}

impl BinaryMetrics {
    /// Works with one class only too (the missing class's rates are absent), so a per-source
    /// table can include all-negative sources.
    pub fn at_threshold(scores: &[f64], positives: &[bool], threshold: f64) -> Result<BinaryMetrics, MetricsError> {
        Self::at_thresholds(scores, positives, &vec![threshold; scores.len()], threshold)
    }

    /// Each score decided at its own threshold, e.g. out-of-fold scores of cross-fitted models,
    /// each at its model's threshold; `reported` is the single figure to show for them.
    pub fn at_thresholds(
        scores: &[f64],
        positives: &[bool],
        thresholds: &[f64],
        reported: f64,
    ) -> Result<BinaryMetrics, MetricsError> {
        check_scored(scores, positives)?;
        if thresholds.len() != scores.len() {
            return Err(MetricsError::LengthMismatch { scores: scores.len(), labels: thresholds.len() });
        }
        if let Some(&threshold) = thresholds.iter().find(|t| t.is_nan()) {
            return Err(MetricsError::OutOfRange {
                name: "threshold",
                value: threshold,
                expected: "a number (scores >= threshold count as positive)",
            });
        }
        let (mut tp, mut fp, mut tn, mut fn_) = (0, 0, 0, 0);
        for ((&score, &positive), &threshold) in scores.iter().zip(positives).zip(thresholds) {
            match (score >= threshold, positive) {
                (true, true) => tp += 1,
                (true, false) => fp += 1,
                (false, false) => tn += 1,
                (false, true) => fn_ += 1,
            }
        }
        Ok(BinaryMetrics {
            threshold: reported,
            true_positives: tp,
            false_positives: fp,
            true_negatives: tn,
            false_negatives: fn_,
            sensitivity: Proportion::wilson(tp, tp + fn_),
            specificity: Proportion::wilson(tn, tn + fp),
            ppv: Proportion::wilson(tp, tp + fp),
            npv: Proportion::wilson(tn, tn + fn_),
            accuracy: Proportion::wilson(tp + tn, scores.len()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn wilson_8_of_10() {
        // Newcombe (1998), Wilson score interval for 8/10: 0.4902–0.9433.
        let i = Proportion::wilson(8, 10).interval.unwrap();
        assert_eq!(i.estimate, 0.8);
        assert!(close(i.lower, 0.4902, 5e-5) && close(i.upper, 0.9433, 5e-5), "{i:?}");
    }

    #[test]
    fn wilson_edges_stay_in_unit_interval() {
        let zero = Proportion::wilson(0, 20).interval.unwrap();
        assert_eq!(zero.lower, 0.0);
        assert!(close(zero.upper, 0.1611, 5e-5), "{zero:?}"); // 0/20 → [0, 0.161]
        let all = Proportion::wilson(20, 20).interval.unwrap();
        assert_eq!(all.upper, 1.0);
        assert!(close(all.lower, 0.8389, 5e-5), "{all:?}");
        let none = Proportion::wilson(0, 0);
        assert_eq!(none.estimate(), None);
        assert_eq!(serde_json::to_string(&none).unwrap(), r#"{"k":0,"n":0}"#);
    }

    #[test]
    fn counts_at_threshold_include_ties() {
        let scores = [0.9, 0.5, 0.5, 0.2, 0.7, 0.1];
        let labels = [true, true, false, true, false, false];
        let m = BinaryMetrics::at_threshold(&scores, &labels, 0.5).unwrap();
        // >= 0.5: 0.9 P, 0.5 P, 0.5 N, 0.7 N → TP 2, FP 2; below: 0.2 P (FN), 0.1 N (TN).
        assert_eq!((m.true_positives, m.false_positives, m.true_negatives, m.false_negatives), (2, 2, 1, 1));
        assert_eq!((m.sensitivity.k, m.sensitivity.n), (2, 3));
        assert_eq!((m.specificity.k, m.specificity.n), (1, 3));
        assert_eq!((m.ppv.k, m.ppv.n), (2, 4));
        assert_eq!((m.npv.k, m.npv.n), (1, 2));
        assert_eq!((m.accuracy.k, m.accuracy.n), (3, 6));
        let json = serde_json::to_value(m).unwrap();
        assert_eq!(json["sensitivity"]["k"], 2);
        assert!(json["sensitivity"]["lower"].is_number());
    }

    #[test]
    fn one_class_leaves_other_rates_absent() {
        let m = BinaryMetrics::at_threshold(&[0.2, 0.8], &[false, false], 0.5).unwrap();
        assert_eq!(m.sensitivity.interval, None);
        assert_eq!(m.specificity.estimate(), Some(0.5));
        assert!(BinaryMetrics::at_threshold(&[0.2], &[false], f64::NAN).is_err());
    }

    #[test]
    fn each_score_at_its_own_threshold() {
        // Two cross-fitted models: the first calls 0.6 positive at 0.5, the second needs 0.7.
        let scores = [0.6, 0.6, 0.4, 0.6];
        let labels = [true, false, false, true];
        let m = BinaryMetrics::at_thresholds(&scores, &labels, &[0.5, 0.7, 0.5, 0.7], 0.6).unwrap();
        assert_eq!((m.true_positives, m.false_negatives, m.true_negatives, m.false_positives), (1, 1, 2, 0));
        assert_eq!(m.threshold, 0.6);
        assert_eq!(
            BinaryMetrics::at_thresholds(&scores, &labels, &[0.5; 4], 0.5).unwrap(),
            BinaryMetrics::at_threshold(&scores, &labels, 0.5).unwrap()
        );
        assert!(BinaryMetrics::at_thresholds(&scores, &labels, &[0.5; 3], 0.5).is_err());
    }
}
