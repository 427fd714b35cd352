//! Several models as one: each film's probabilities the mean of theirs.
//!
//! Averaging is the cheapest ensemble and the one a Pi can run (one more network per film, no
//! extra training), and it answers a question the within-source evaluation raises: models
//! trained the same way with another seed rank the films alike but move a single film's
//! P(covid) by 0.13 on average (docs/within-source.md), so part of each score is the seed's
//! noise, which a mean of seeds cancels. Whether that buys AUC is for `cxr eval --ensemble`
//! to measure against the first member, paired, on the same films.

use crate::report::ModelSummary;
use crate::{EvalError, Scored};
use cxr_infer::Prediction;

/// The ensemble's outcome per film, from the members' outcomes over the same films in the same
/// order (as [`crate::score_all`] returns them). A film any member could not score fails for
/// the ensemble with that member's reason.
///
/// - P of each class (full and lungs-blacked-out) is the members' mean; the decided class is
///   the most probable one.
/// - The threshold is the members' mean on that film (with cross-fitted members, the mean of
///   the thresholds of the fold models that scored it).
/// - The evidence inside the lungs is the members' mean share: the share of the sum of their
///   heatmaps when each is scaled to the same total, i.e. each member's evidence weighs the same.
/// - The noise shift is not an ensemble's: it is left out.
pub fn ensemble(members: &[&[Scored]]) -> Vec<Scored> {
    let films = members.first().map_or(0, |m| m.len());
    assert!(members.iter().all(|m| m.len() == films), "every member scores the same films");
    (0..films)
        .map(|i| {
            let outcomes: Vec<&Scored> = members.iter().map(|m| &m[i]).collect();
            let n = outcomes.len() as f64;
            let result = outcomes
                .iter()
                .map(|s| s.result.as_ref().map_err(Clone::clone))
                .collect::<Result<Vec<_>, String>>()
                .map(|results| {
                    let full: Vec<&Prediction> = results.iter().map(|(p, _)| p).collect();
                    let occluded: Option<Vec<&Prediction>> = results.iter().map(|(_, o)| o.as_ref()).collect();
                    (mean(&full), occluded.map(|o| mean(&o)))
                });
            let lungs: Option<Vec<(f64, f64)>> = outcomes.iter().map(|s| s.lungs).collect();
            Scored {
                item: outcomes[0].item.clone(),
                threshold: outcomes.iter().map(|s| s.threshold).sum::<f64>() / n,
                result,
                lungs: lungs.map(|l| (l.iter().map(|s| s.0).sum::<f64>() / n, l[0].1)),
                noise_shift: None,
            }
        })
        .collect()
}

/// The mean of predictions of one class set.
fn mean(predictions: &[&Prediction]) -> Prediction {
    let classes = predictions[0].probabilities.len();
    let probabilities: Vec<f32> = (0..classes)
        .map(|c| predictions.iter().map(|p| p.probabilities[c]).sum::<f32>() / predictions.len() as f32)
        .collect();
    let class_index = (0..classes).max_by(|&a, &b| probabilities[a].total_cmp(&probabilities[b])).unwrap_or(0);
    Prediction { probabilities, class_index, covid_index: predictions[0].covid_index }
}

/// The ensemble's summary: named after every member (a model given twice is named twice, as it
/// counts twice), every member's sha256, the mean of the members' thresholds. Architectures and
/// precisions are named once each.
pub fn summary(members: &[ModelSummary]) -> Result<ModelSummary, EvalError> {
    let first = &members[0];
    if let Some(other) = members.iter().find(|m| m.class_set != first.class_set) {
        return Err(EvalError::MixedClassSets { model: other.name.clone(), first: first.name.clone() });
    }
    let every = |field: fn(&ModelSummary) -> &str, separator: &str| {
        members.iter().map(field).collect::<Vec<_>>().join(separator)
    };
    let distinct = |field: fn(&ModelSummary) -> &str| {
        let mut parts: Vec<&str> = Vec::new();
        for part in members.iter().map(field) {
            if !parts.contains(&part) {
                parts.push(part);
            }
        }
        parts.join(" + ")
    };
    Ok(ModelSummary {
        name: format!("ensemble of {}", every(|m| &m.name, " + ")),
        architecture: distinct(|m| &m.architecture),
        precision: distinct(|m| &m.precision),
        sha256: every(|m| &m.sha256, " "),
        threshold: members.iter().map(|m| m.threshold).sum::<f64>() / members.len() as f64,
        threshold_rule: format!(
            "P(covid) the mean of the members', each film decided at the mean of the thresholds of the models that scored it (out of fold: its fold's model of every member), the mean of the members' shown thresholds shown; the first member's: {}",
            first.threshold_rule
        ),
        class_set: first.class_set,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Labelled;
    use cxr_core::Class;

    fn scored(p: f32, threshold: f64, lungs: Option<(f64, f64)>) -> Scored {
        let prediction = Prediction { probabilities: vec![1.0 - p, p], class_index: 0, covid_index: 1 };
        Scored {
            item: Labelled { path: "a.png".into(), source: "s".into(), label: Class::Covid },
            threshold,
            result: Ok((prediction.clone(), Some(prediction))),
            lungs,
            noise_shift: Some(0.1),
        }
    }

    #[test]
    fn averages_probabilities_thresholds_and_lung_shares_and_fails_where_a_member_failed() {
        let a = vec![scored(0.2, 0.3, Some((0.4, 0.37))), scored(0.9, 0.3, None)];
        let mut b = vec![scored(0.6, 0.5, Some((0.8, 0.37))), scored(0.1, 0.5, None)];
        b[1].result = Err("cannot decode".into());
        let both = ensemble(&[&a, &b]);
        let (full, occluded) = both[0].result.as_ref().unwrap();
        assert!((full.p_covid() - 0.4).abs() < 1e-6 && (occluded.as_ref().unwrap().p_covid() - 0.4).abs() < 1e-6);
        assert_eq!(full.class_index, 0, "0.6 against 0.4: non-covid is the more probable");
        assert!((both[0].threshold - 0.4).abs() < 1e-12);
        let (share, area) = both[0].lungs.unwrap();
        assert!((share - 0.6).abs() < 1e-12 && area == 0.37);
        assert_eq!(both[0].noise_shift, None);
        assert_eq!(both[1].result.as_ref().unwrap_err(), "cannot decode");
    }

    #[test]
    fn a_summary_names_every_member_and_each_architecture_once() {
        let member = |name: &str, architecture: &str, threshold: f64| ModelSummary {
            name: name.into(),
            architecture: architecture.into(),
            precision: "fp32".into(),
            sha256: format!("{name}-sha"),
            threshold,
            threshold_rule: "rule".into(),
            class_set: cxr_core::ClassSet::Binary,
        };
        let members = [member("a", "cnn", 0.2), member("b", "resnet", 0.4), member("a", "cnn", 0.3)];
        let s = summary(&members).unwrap();
        assert_eq!(s.name, "ensemble of a + b + a");
        assert_eq!(s.architecture, "cnn + resnet");
        assert_eq!(s.precision, "fp32");
        assert_eq!(s.sha256, "a-sha b-sha a-sha");
        assert!((s.threshold - 0.3).abs() < 1e-12);
    }
}
