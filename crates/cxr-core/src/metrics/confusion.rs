//! Confusion matrices for binary and N-class models: rows are the true class, columns the
//! predicted class.

use serde::Serialize;

use super::{MetricsError, check_scored};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfusionMatrix {
    pub class_names: Vec<String>,
    /// `counts[truth][predicted]`.
    pub counts: Vec<Vec<usize>>,
    /// Each row divided by its total, so the diagonal is per-class recall; `None` for a class
    /// with no true samples (rather than a row of NaN).
    pub row_normalised: Vec<Option<Vec<f64>>>,
}

impl ConfusionMatrix {
    /// From true and predicted class indices into `class_names`.
    pub fn from_indices<S: AsRef<str>>(
        class_names: &[S],
        truth: &[usize],
        predicted: &[usize],
    ) -> Result<ConfusionMatrix, MetricsError> {
        if truth.len() != predicted.len() {
            return Err(MetricsError::LengthMismatch { scores: predicted.len(), labels: truth.len() });
        }
        let classes = class_names.len();
        let mut counts = vec![vec![0usize; classes]; classes];
        for (index, (&t, &p)) in truth.iter().zip(predicted).enumerate() {
            if let Some(class) = [t, p].into_iter().find(|&c| c >= classes) {
                return Err(MetricsError::ClassOutOfRange { index, class, classes });
            }
            counts[t][p] += 1;
        }
        let row_normalised = counts
            .iter()
            .map(|row| {
                let total: usize = row.iter().sum();
                (total > 0).then(|| row.iter().map(|&c| c as f64 / total as f64).collect())
            })
            .collect();
        Ok(ConfusionMatrix {
            class_names: class_names.iter().map(|s| s.as_ref().to_string()).collect(),
            counts,
            row_normalised,
        })
    }

    /// A 2×2 matrix from scores at a threshold (`score >= threshold` is positive), with
    /// `class_names = [negative, positive]` in that order, like `ClassSet::Binary.names()`.
    pub fn binary<S: AsRef<str>>(
        scores: &[f64],
        positives: &[bool],
        threshold: f64,
        class_names: &[S; 2],
    ) -> Result<ConfusionMatrix, MetricsError> {
        check_scored(scores, positives)?;
        let truth: Vec<usize> = positives.iter().map(|&p| p as usize).collect();
        let predicted: Vec<usize> = scores.iter().map(|&s| (s >= threshold) as usize).collect();
        ConfusionMatrix::from_indices(class_names, &truth, &predicted)
    }

    pub fn total(&self) -> usize {
        self.counts.iter().flatten().sum()
    }

    /// Share of samples on the diagonal; `None` for an empty matrix.
    pub fn accuracy(&self) -> Option<f64> {
        let total = self.total();
        let correct: usize = (0..self.counts.len()).map(|i| self.counts[i][i]).sum();
        (total > 0).then(|| correct as f64 / total as f64)
    }
}

/// Index of the largest value in a probability row (the first among equal maxima); NaN entries
/// are skipped, and `None` means the row is empty or all NaN.
pub fn argmax<T: PartialOrd + Copy>(row: &[T]) -> Option<usize> {
    let mut best: Option<(usize, T)> = None;
    for (i, &v) in row.iter().enumerate() {
        #[allow(clippy::eq_op)] // v != v is the generic NaN test
        let is_nan = v != v;
        if is_nan {
            continue;
        }
        if best.is_none_or(|(_, b)| v > b) {
            best = Some((i, v));
        }
    }
    best.map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_class_counts_and_rows() {
        let names = ["covid", "normal", "pneumonia"];
        let truth = [0, 0, 0, 1, 1, 2, 2, 2, 2];
        let pred = [0, 0, 2, 1, 0, 2, 2, 1, 2];
        let m = ConfusionMatrix::from_indices(&names, &truth, &pred).unwrap();
        assert_eq!(m.counts, vec![vec![2, 0, 1], vec![1, 1, 0], vec![0, 1, 3]]);
        assert_eq!(m.row_normalised[1], Some(vec![0.5, 0.5, 0.0]));
        assert_eq!(m.total(), 9);
        assert_eq!(m.accuracy(), Some(6.0 / 9.0));
    }

    #[test]
    fn empty_class_row_is_none() {
        let m = ConfusionMatrix::from_indices(&["a", "b"], &[0, 0], &[0, 1]).unwrap();
        assert_eq!(m.row_normalised[1], None);
        assert!(serde_json::to_string(&m).unwrap().contains("null"));
    }

    #[test]
    fn binary_from_threshold() {
        let m =
            ConfusionMatrix::binary(&[0.9, 0.4, 0.6, 0.1], &[true, true, false, false], 0.5, &["non-covid", "covid"])
                .unwrap();
        // truth non-covid: 0.6 → covid (FP), 0.1 → non-covid (TN); truth covid: 0.9 TP, 0.4 FN.
        assert_eq!(m.counts, vec![vec![1, 1], vec![1, 1]]);
        assert_eq!(m.class_names, vec!["non-covid", "covid"]);
    }

    #[test]
    fn bad_indices_are_errors() {
        assert_eq!(
            ConfusionMatrix::from_indices(&["a", "b"], &[0, 1], &[0, 2]),
            Err(MetricsError::ClassOutOfRange { index: 1, class: 2, classes: 2 })
        );
        assert!(ConfusionMatrix::from_indices(&["a"], &[0], &[]).is_err());
    }

    #[test]
    fn argmax_of_probability_rows() {
        assert_eq!(argmax(&[0.1f32, 0.7, 0.2]), Some(1));
        assert_eq!(argmax(&[0.5f64, 0.5]), Some(0));
        assert_eq!(argmax(&[f32::NAN, 0.2, 0.1]), Some(1));
        assert_eq!(argmax::<f32>(&[]), None);
        assert_eq!(argmax(&[f64::NAN]), None);
    }
}
