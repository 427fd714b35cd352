//! Metrics per data source (hospital, collection, scanner).
//!
//! Public COVID X-ray sets mix sources, and models learn to recognise the source rather than
//! the disease (DeGrave et al., 2021). A high pooled AUC that collapses inside each source is
//! the signature of that shortcut, so reports show both.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{BinaryMetrics, Interval, MetricsError, Proportion, check_scored, delong};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceBreakdown {
    pub source: String,
    pub n: usize,
    pub positives: usize,
    /// AUC with its DeLong interval; `None` unless the source has at least two positives and
    /// two negatives (an all-COVID source has no within-source AUC).
    pub auc: Option<Interval>,
    pub sensitivity: Proportion,
    pub specificity: Proportion,
}

/// Scores and labels per source name.
pub(super) type BySource<'a> = BTreeMap<&'a str, (Vec<f64>, Vec<bool>)>;

/// `(source, score, is_positive)` rows as (scores, labels) per source, sorted by name, after the
/// checks every score-based metric makes.
pub(super) fn by_source<S: AsRef<str>>(rows: &[(S, f64, bool)]) -> Result<BySource<'_>, MetricsError> {
    let scores: Vec<f64> = rows.iter().map(|r| r.1).collect();
    let positives: Vec<bool> = rows.iter().map(|r| r.2).collect();
    check_scored(&scores, &positives)?;
    let mut by_source: BTreeMap<&str, (Vec<f64>, Vec<bool>)> = BTreeMap::new();
    for (source, score, positive) in rows {
        let entry = by_source.entry(source.as_ref()).or_default();
        entry.0.push(*score);
        entry.1.push(*positive);
    }
    Ok(by_source)
}

/// One entry per distinct source, sorted by name, from `(source, score, is_positive)` rows.
pub fn per_source<S: AsRef<str>>(
    rows: &[(S, f64, bool)],
    threshold: f64,
) -> Result<Vec<SourceBreakdown>, MetricsError> {
    let rows: Vec<(&str, f64, bool, f64)> =
        rows.iter().map(|(s, score, p)| (s.as_ref(), *score, *p, threshold)).collect();
    per_source_at(&rows)
}

/// [`per_source`] with each row decided at its own threshold `(source, score, is_positive,
/// threshold)`, for out-of-fold scores of cross-fitted models.
pub fn per_source_at<S: AsRef<str>>(rows: &[(S, f64, bool, f64)]) -> Result<Vec<SourceBreakdown>, MetricsError> {
    let plain: Vec<(&str, f64, bool)> = rows.iter().map(|r| (r.0.as_ref(), r.1, r.2)).collect();
    let by_source = by_source(&plain)?;
    by_source
        .into_iter()
        .map(|(source, (scores, positives))| {
            let thresholds: Vec<f64> = rows.iter().filter(|r| r.0.as_ref() == source).map(|r| r.3).collect();
            let at_threshold = BinaryMetrics::at_thresholds(&scores, &positives, &thresholds, thresholds[0])?;
            Ok(SourceBreakdown {
                source: source.to_string(),
                n: scores.len(),
                positives: at_threshold.sensitivity.n,
                auc: delong(&scores, &positives).ok().map(|d| d.ci),
                sensitivity: at_threshold.sensitivity,
                specificity: at_threshold.specificity,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_by_source_and_handles_single_class_sources() {
        let rows = vec![
            ("hospital-b", 0.9, true),
            ("hospital-a", 0.8, true),
            ("hospital-a", 0.7, true),
            ("hospital-a", 0.6, false),
            ("hospital-a", 0.2, false),
            ("hospital-b", 0.3, true),
            ("pediatric", 0.1, false),
        ];
        let table = per_source(&rows, 0.5).unwrap();
        let names: Vec<&str> = table.iter().map(|s| s.source.as_str()).collect();
        assert_eq!(names, ["hospital-a", "hospital-b", "pediatric"]);

        let a = &table[0];
        assert_eq!((a.n, a.positives), (4, 2));
        assert_eq!(a.auc.unwrap().estimate, 1.0);
        assert_eq!((a.sensitivity.k, a.sensitivity.n), (2, 2));
        assert_eq!((a.specificity.k, a.specificity.n), (1, 2));

        let b = &table[1];
        assert_eq!(b.auc, None, "only positives: no within-source AUC");
        assert_eq!((b.sensitivity.k, b.sensitivity.n), (1, 2));
        assert_eq!(b.specificity.interval, None);

        let json = serde_json::to_string(&table).unwrap();
        assert!(json.contains(r#""auc":null"#));
    }

    #[test]
    fn rejects_non_finite_scores() {
        let rows = vec![("a".to_string(), f64::NAN, true)];
        assert!(matches!(per_source(&rows, 0.5), Err(MetricsError::NonFiniteScore { index: 0, .. })));
        let empty: Vec<(String, f64, bool)> = vec![];
        assert_eq!(per_source(&empty, 0.5), Err(MetricsError::Empty));
    }
}
