//! Whether a score of 0.8 means "positive 80% of the time": reliability bins, expected
//! calibration error (ECE) and the Brier score.
//!
//! Networks trained on small, augmented COVID sets are typically over-confident; a user choosing
//! a threshold or reading a probability needs to see that before trusting it.

use serde::Serialize;

use super::{MetricsError, check_scored};

/// One equal-width bin `[lower, upper)` (the last bin includes 1.0).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ReliabilityBin {
    pub lower: f64,
    pub upper: f64,
    pub count: usize,
    /// Mean predicted probability in the bin; `None` for an empty bin.
    pub mean_predicted: Option<f64>,
    /// Share of the bin's samples that are truly positive; `None` for an empty bin.
    pub observed_fraction: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Calibration {
    pub n: usize,
    pub bins: Vec<ReliabilityBin>,
    /// Σ (count/n)·|observed − predicted| over bins: 0 is perfectly calibrated.
    pub expected_calibration_error: f64,
    /// Mean squared error of the probability against the 0/1 label: 0 is perfect, 0.25 is a
    /// constant 0.5.
    pub brier_score: f64,
}

impl Calibration {
    /// `probabilities` must lie in [0, 1]; `bins` is the number of equal-width bins (10 is usual).
    pub fn new(probabilities: &[f64], positives: &[bool], bins: usize) -> Result<Calibration, MetricsError> {
        check_scored(probabilities, positives)?;
        if let Some((index, &value)) = probabilities.iter().enumerate().find(|(_, p)| !(0.0..=1.0).contains(*p)) {
            return Err(MetricsError::ScoreNotProbability { index, value });
        }
        if bins == 0 {
            return Err(MetricsError::OutOfRange {
                name: "calibration bins",
                value: 0.0,
                expected: "at least 1 (10 is usual)",
            });
        }
        let mut count = vec![0usize; bins];
        let mut sum_predicted = vec![0.0f64; bins];
        let mut sum_positive = vec![0usize; bins];
        for (&p, &positive) in probabilities.iter().zip(positives) {
            let b = ((p * bins as f64) as usize).min(bins - 1);
            count[b] += 1;
            sum_predicted[b] += p;
            sum_positive[b] += positive as usize;
        }
        let n = probabilities.len();
        let bins: Vec<ReliabilityBin> = (0..bins)
            .map(|b| ReliabilityBin {
                lower: b as f64 / bins as f64,
                upper: (b + 1) as f64 / bins as f64,
                count: count[b],
                mean_predicted: (count[b] > 0).then(|| sum_predicted[b] / count[b] as f64),
                observed_fraction: (count[b] > 0).then(|| sum_positive[b] as f64 / count[b] as f64),
            })
            .collect();
        let expected_calibration_error = bins
            .iter()
            .filter_map(|bin| Some(bin.count as f64 / n as f64 * (bin.observed_fraction? - bin.mean_predicted?).abs()))
            .sum();
        let brier_score =
            probabilities.iter().zip(positives).map(|(&p, &y)| (p - y as u8 as f64).powi(2)).sum::<f64>() / n as f64;
        Ok(Calibration { n, bins, expected_calibration_error, brier_score })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ece_and_brier_on_a_constructed_example() {
        // Bin [0, .5): 0.1, 0.3 with labels N, P → mean 0.2, observed 0.5, gap 0.3.
        // Bin [.5, 1]: 0.6, 0.8, 1.0, 0.8 with labels P, P, P, N → mean 0.8, observed 0.75, gap 0.05.
        // ECE = 2/6·0.3 + 4/6·0.05 = 0.1 + 0.0333… = 0.1333…
        let probs = [0.1, 0.3, 0.6, 0.8, 1.0, 0.8];
        let labels = [false, true, true, true, true, false];
        let c = Calibration::new(&probs, &labels, 2).unwrap();
        assert_eq!(c.bins[0].count, 2);
        assert_eq!(c.bins[1].count, 4, "1.0 falls in the last bin");
        assert!((c.bins[0].mean_predicted.unwrap() - 0.2).abs() < 1e-12);
        assert_eq!(c.bins[1].observed_fraction, Some(0.75));
        assert!((c.expected_calibration_error - (0.1 + 0.2 / 6.0)).abs() < 1e-12, "{}", c.expected_calibration_error);
        // Brier: .01 + .49 + .16 + .04 + 0 + .64 = 1.34 / 6
        assert!((c.brier_score - 1.34 / 6.0).abs() < 1e-12);
    }

    #[test]
    fn perfectly_calibrated_has_zero_ece_and_empty_bins_are_none() {
        let c = Calibration::new(&[0.0, 0.0, 1.0, 1.0], &[false, false, true, true], 10).unwrap();
        assert_eq!(c.expected_calibration_error, 0.0);
        assert_eq!(c.brier_score, 0.0);
        assert_eq!(c.bins[5].mean_predicted, None);
        assert_eq!(c.bins.len(), 10);
    }

    #[test]
    fn rejects_scores_that_are_not_probabilities() {
        assert!(matches!(
            Calibration::new(&[0.5, 1.5], &[true, false], 10),
            Err(MetricsError::ScoreNotProbability { index: 1, .. })
        ));
        assert!(Calibration::new(&[0.5], &[true], 0).is_err());
    }
}
