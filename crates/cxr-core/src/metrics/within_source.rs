//! Within-source AUC: does the model tell COVID from non-COVID films *of the same source*?
//!
//! In public COVID X-ray collections the positives and the negatives mostly come from different
//! hospitals, ages and devices, so a pooled AUC rewards a model that recognises where a film was
//! taken (DeGrave et al., Nature Machine Intelligence 2021). Comparing only pairs of films from
//! one source takes that shortcut away: the within-source AUC is the probability that a COVID
//! film scores above a non-COVID film of the same source, ties counting one half, pooled over
//! every source that has both classes.
//!
//! Pooled over sources, it is the per-source AUCs weighted by their number of pairs
//! (`positives × negatives`). Sources are independent samples, so its variance is the sum of the
//! per-source DeLong variances times the squared weights, which gives a normal 95% interval like
//! [`delong`]'s. A source needs two films of each class for its DeLong variance; one with both
//! classes but fewer is listed with the reason and left out of the pooled figure, so the estimate
//! and its interval always describe the same pairs.

use serde::Serialize;

use super::{Interval, MetricsError, Z_95, delong};

/// The pooled within-source AUC and what it is made of.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WithinSource {
    /// Pooled AUC with its 95% interval (clipped to [0, 1]).
    pub auc: Interval,
    pub standard_error: f64,
    /// Same-source (COVID, non-COVID) pairs behind the pooled figure.
    pub pairs: u64,
    /// The sources that entered the pooled figure, sorted by name.
    pub sources: Vec<SourceAuc>,
    /// Sources with both classes that could not enter it, and why.
    pub left_out: Vec<LeftOutSource>,
}

/// One source's share of the pooled within-source AUC.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceAuc {
    pub source: String,
    pub positives: usize,
    pub negatives: usize,
    /// The source's own AUC with its DeLong interval.
    pub auc: Interval,
    /// Its weight in the pooled figure: its pairs over all pairs.
    pub weight: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeftOutSource {
    pub source: String,
    pub positives: usize,
    pub negatives: usize,
    pub reason: String,
}

/// Why there is no within-source AUC.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WithinSourceError {
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    /// `too_few` lists the sources with both classes but fewer than two of one, as
    /// `name (positives + negatives)`.
    #[error(
        "no source has at least two COVID and two non-COVID films, so no within-source AUC: \
         evaluate on a collection or hospital that has both classes{too_few}"
    )]
    NoSourceWithBothClasses { too_few: String },
}

/// The within-source AUC of `(source, score, is_positive)` rows.
pub fn within_source<S: AsRef<str>>(rows: &[(S, f64, bool)]) -> Result<WithinSource, WithinSourceError> {
    let by_source = super::breakdown::by_source(rows)?;

    let mut entered = Vec::new();
    let mut left_out = Vec::new();
    for (source, (scores, positives)) in by_source {
        let p = positives.iter().filter(|&&x| x).count();
        let n = positives.len() - p;
        if p == 0 || n == 0 {
            continue; // a one-class source has no within-source pairs
        }
        match delong(&scores, &positives) {
            Ok(d) => entered.push((source, p, n, d)),
            Err(e) => left_out.push(LeftOutSource {
                source: source.to_string(),
                positives: p,
                negatives: n,
                reason: e.to_string(),
            }),
        }
    }
    if entered.is_empty() {
        let named: Vec<String> =
            left_out.iter().map(|s| format!("{} ({} + {})", s.source, s.positives, s.negatives)).collect();
        let too_few = if named.is_empty() { String::new() } else { format!(" (too few: {})", named.join(", ")) };
        return Err(WithinSourceError::NoSourceWithBothClasses { too_few });
    }

    let pairs: u64 = entered.iter().map(|(_, p, n, _)| (p * n) as u64).sum();
    let weight = |p: usize, n: usize| (p * n) as f64 / pairs as f64;
    let estimate: f64 = entered.iter().map(|(_, p, n, d)| weight(*p, *n) * d.auc).sum();
    let variance: f64 = entered.iter().map(|(_, p, n, d)| weight(*p, *n).powi(2) * d.variance).sum();
    let standard_error = variance.sqrt();
    Ok(WithinSource {
        auc: Interval {
            estimate,
            lower: (estimate - Z_95 * standard_error).max(0.0),
            upper: (estimate + Z_95 * standard_error).min(1.0),
        },
        standard_error,
        pairs,
        sources: entered
            .into_iter()
            .map(|(source, p, n, d)| SourceAuc {
                source: source.to_string(),
                positives: p,
                negatives: n,
                auc: d.ci,
                weight: weight(p, n),
            })
            .collect(),
        left_out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, pair by pair: the fast pooled figure must equal it.
    fn by_pairs(rows: &[(&str, f64, bool)]) -> f64 {
        let (mut wins, mut pairs) = (0.0, 0.0);
        for a in rows.iter().filter(|r| r.2) {
            for b in rows.iter().filter(|r| !r.2 && r.0 == a.0) {
                pairs += 1.0;
                wins += if a.1 > b.1 {
                    1.0
                } else if a.1 == b.1 {
                    0.5
                } else {
                    0.0
                };
            }
        }
        wins / pairs
    }

    #[test]
    fn a_source_shortcut_scores_high_pooled_and_at_chance_within() {
        // Hospital a's films all score 0.8–0.9 and hospital b's 0.1–0.2, whatever their class:
        // a source detector, not a disease detector.
        // Hospital a is mostly COVID, b mostly not, and within each the scores barely rank them.
        let rows = [
            ("a", 0.9, true),
            ("a", 0.85, true),
            ("a", 0.82, true),
            ("a", 0.88, true),
            ("a", 0.83, true),
            ("a", 0.81, true),
            ("a", 0.84, false),
            ("a", 0.86, false),
            ("b", 0.2, true),
            ("b", 0.12, true),
            ("b", 0.1, false),
            ("b", 0.15, false),
            ("b", 0.18, false),
            ("b", 0.13, false),
            ("b", 0.16, false),
            ("b", 0.11, false),
            ("c", 0.5, false), // one class only: no pairs
        ];
        let w = within_source(&rows).unwrap();
        assert!((w.auc.estimate - by_pairs(&rows)).abs() < 1e-12);
        // a: 6 positives × 2 negatives, b: 2 × 6; twelve pairs each; 5 and 8 of them ranked right
        assert_eq!(w.pairs, 24);
        assert!((w.auc.estimate - 13.0 / 24.0).abs() < 1e-12);
        assert_eq!(w.sources.iter().map(|s| s.source.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(w.sources[0].weight, 0.5);
        assert!(w.auc.lower < w.auc.estimate && w.auc.estimate < w.auc.upper);
        // The pooled AUC over all films is far higher than the within-source one.
        let scores: Vec<f64> = rows.iter().map(|r| r.1).collect();
        let labels: Vec<bool> = rows.iter().map(|r| r.2).collect();
        let pooled = crate::metrics::auc(&scores, &labels).unwrap();
        assert!(pooled > w.auc.estimate + 0.2, "pooled {pooled} vs within {}", w.auc.estimate);
    }

    #[test]
    fn pooled_equals_the_pairwise_definition_and_the_single_source_delong() {
        let rows: Vec<(&str, f64, bool)> = (0..40)
            .map(|i| {
                let source = if i % 3 == 0 { "x" } else { "y" };
                let positive = i % 2 == 0;
                let score = ((i * 37 % 17) as f64 / 17.0) + if positive { 0.2 } else { 0.0 };
                (source, score, positive)
            })
            .collect();
        let w = within_source(&rows).unwrap();
        assert!((w.auc.estimate - by_pairs(&rows)).abs() < 1e-12);

        // With one source the within-source AUC is that source's AUC and DeLong interval.
        let only_y: Vec<_> = rows.iter().filter(|r| r.0 == "y").copied().collect();
        let w = within_source(&only_y).unwrap();
        let scores: Vec<f64> = only_y.iter().map(|r| r.1).collect();
        let labels: Vec<bool> = only_y.iter().map(|r| r.2).collect();
        let d = delong(&scores, &labels).unwrap();
        assert_eq!(w.auc, d.ci);
        assert!((w.standard_error - d.standard_error).abs() < 1e-15);
    }

    #[test]
    fn sources_too_small_for_an_interval_are_left_out_and_said_so() {
        let rows = [
            ("big", 0.9, true),
            ("big", 0.7, true),
            ("big", 0.2, false),
            ("big", 0.4, false),
            ("tiny", 0.1, true),
            ("tiny", 0.3, false),
        ];
        let w = within_source(&rows).unwrap();
        assert_eq!(w.sources.len(), 1);
        assert_eq!(w.auc.estimate, 1.0);
        assert_eq!(w.left_out.len(), 1);
        assert_eq!((w.left_out[0].source.as_str(), w.left_out[0].positives, w.left_out[0].negatives), ("tiny", 1, 1));

        let err = within_source(&[("tiny", 0.1, true), ("tiny", 0.3, false), ("covid-only", 0.9, true)]).unwrap_err();
        assert!(err.to_string().contains("tiny (1 + 1)"), "{err}");
    }
}
