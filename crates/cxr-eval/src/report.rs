//! The metrics of scored films, assembled into the report `cxr eval` writes as `metrics.json`.
//!
//! The headline is the within-source AUC: COVID against non-COVID films *of the same source*,
//! pooled over every source that has both classes (`cxr_core::metrics::within_source`). Public
//! collections put their COVID and non-COVID films in different hospitals, so the pooled AUC
//! also rewards recognising the hospital; the within-source one does not.

use crate::{EvalError, Scored};
use cxr_core::lung_mask::Attribution;
use cxr_core::metrics::{
    BinaryMetrics, Calibration, ConfusionMatrix, DeLong, PairedAuc, RocCurve, SourceBreakdown, WithinSource, delong,
    paired_auc, per_source_at, within_source,
};
use cxr_core::{Class, ClassSet};
use cxr_infer::{Model, Prediction};
use serde::Serialize;

/// Everything measured on one version of the images (full or occluded).
#[derive(Debug, Serialize)]
pub struct Metrics {
    pub images: usize,
    pub positives: usize,
    /// AUC of P(covid) for covid vs everything else, DeLong 95% interval.
    pub auc: Option<DeLong>,
    /// Why `auc` is missing (e.g. only one class present).
    pub auc_note: Option<String>,
    pub at_threshold: BinaryMetrics,
    pub confusion: ConfusionMatrix,
    pub calibration: Calibration,
    pub per_source: Vec<SourceBreakdown>,
    /// COVID against non-COVID films of the same source, pooled over sources with both classes.
    pub within_source: Option<WithinSource>,
    /// Why `within_source` is missing (no source with both classes).
    pub within_source_note: Option<String>,
    #[serde(skip)]
    pub roc: Option<RocCurve>,
}

#[derive(Debug, Serialize)]
pub struct EvalReport {
    pub model: ModelSummary,
    pub data: DataSummary,
    pub full: Metrics,
    pub occluded_center: Option<Metrics>,
    /// Share of positive heatmap evidence inside the lungs, on films with a lung mask.
    pub attribution: Option<Attribution>,
    /// How far invisible pixel noise moved P(covid) (`--noise`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub noise: Option<NoiseShift>,
    /// This model against the first model evaluated with it, on the same films.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub versus_first: Option<Comparison>,
    pub failures: Vec<Failure>,
    pub notice: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelSummary {
    pub name: String,
    pub architecture: String,
    pub precision: String,
    pub sha256: String,
    pub threshold: f64,
    pub threshold_rule: String,
    pub class_set: ClassSet,
}

#[derive(Debug, Clone, Serialize)]
pub struct DataSummary {
    pub input: String,
    pub split: Option<String>,
    pub images: usize,
    pub scored: usize,
    pub failed: usize,
    /// Images whose folder names no class (folder inputs only).
    pub unlabelled: usize,
    /// The sources the images were limited to (`--source`); empty for all.
    pub sources: Vec<String>,
    pub occluded_fraction: Option<f64>,
    /// `--noise`, in grey levels of 255.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub noise_grey_levels: Option<f32>,
}

/// How far P(covid) moved between two scorings of the same films: |ΔP| over the films.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Shift {
    pub films: usize,
    pub mean: f64,
    pub largest: f64,
}

impl Shift {
    fn of(shifts: impl IntoIterator<Item = f64>) -> Option<Shift> {
        let shifts: Vec<f64> = shifts.into_iter().collect();
        (!shifts.is_empty()).then(|| Shift {
            films: shifts.len(),
            mean: shifts.iter().sum::<f64>() / shifts.len() as f64,
            largest: shifts.iter().copied().fold(0.0, f64::max),
        })
    }
}

/// `--noise`: uniform noise of ± `grey_levels` (of 255) on the model-sized image.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct NoiseShift {
    pub grey_levels: f32,
    pub shift: Shift,
}

/// A model against a baseline scored on the same films (the first `--model` of `cxr eval`): the
/// AUC difference with DeLong's paired interval, which is much narrower than two separate
/// intervals suggest, and how far single probabilities moved. What an int8 file is judged by
/// against its fp32 twin, and a lever against the model without it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub baseline: String,
    pub films: usize,
    pub auc: Option<PairedAuc>,
    /// Why `auc` is missing (too few films of a class).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auc_note: Option<String>,
    pub occluded_center_auc: Option<PairedAuc>,
    pub p_covid_shift: Shift,
}

impl Comparison {
    /// `scored` against `baseline`, both in the same film order, on the films both scored;
    /// `None` when no film was scored by both.
    pub fn of(scored: &[Scored], baseline: &[Scored], baseline_name: &str) -> Option<Comparison> {
        type Outcome = (Prediction, Option<Prediction>);
        let both: Vec<(&Scored, &Outcome, &Outcome)> = scored
            .iter()
            .zip(baseline)
            .filter_map(|(s, b)| Some((s, s.result.as_ref().ok()?, b.result.as_ref().ok()?)))
            .collect();
        let positives: Vec<bool> = both.iter().map(|(s, _, _)| s.item.label == Class::Covid).collect();
        let p = |prediction: &Prediction| prediction.p_covid() as f64;
        let full: (Vec<f64>, Vec<f64>) = both.iter().map(|(_, a, b)| (p(&a.0), p(&b.0))).unzip();
        let auc = paired_auc(&full.0, &full.1, &positives);
        let occluded: Option<(Vec<f64>, Vec<f64>)> =
            both.iter().map(|(_, a, b)| Some((p(a.1.as_ref()?), p(b.1.as_ref()?)))).collect();
        Some(Comparison {
            baseline: baseline_name.to_owned(),
            films: both.len(),
            auc_note: auc.as_ref().err().map(ToString::to_string),
            auc: auc.ok(),
            occluded_center_auc: occluded.and_then(|(a, b)| paired_auc(&a, &b, &positives).ok()),
            p_covid_shift: Shift::of(full.0.iter().zip(&full.1).map(|(a, b)| (a - b).abs()))?,
        })
    }
}

#[derive(Debug, Serialize)]
pub struct Failure {
    pub path: String,
    pub error: String,
}

impl EvalReport {
    /// The report of one model's scores (or of fold models' pooled scores, with `summary` from
    /// [`ModelSummary::out_of_fold`]); `model` gives the class set. Fails only when no film scored.
    pub fn assemble(
        model: &Model,
        summary: ModelSummary,
        scored: &[Scored],
        data: DataSummary,
    ) -> Result<EvalReport, EvalError> {
        let ok: Vec<(&Scored, &Prediction, Option<&Prediction>)> =
            scored.iter().filter_map(|s| s.result.as_ref().ok().map(|(p, o)| (s, p, o.as_ref()))).collect();
        let failures: Vec<Failure> = scored
            .iter()
            .filter_map(|s| {
                s.result.as_ref().err().map(|e| Failure { path: s.item.path.display().to_string(), error: e.clone() })
            })
            .collect();
        if ok.is_empty() {
            return Err(EvalError::AllFailed {
                model: summary.name,
                first: failures.first().map_or("no images".into(), |f| f.error.clone()),
            });
        }
        let full = metrics(model, &ok.iter().map(|(s, p, _)| (*s, *p)).collect::<Vec<_>>(), summary.threshold)?;
        let occluded = if ok[0].2.is_some() {
            Some(metrics(
                model,
                &ok.iter().map(|(s, _, o)| (*s, o.expect("occluded run"))).collect::<Vec<_>>(),
                summary.threshold,
            )?)
        } else {
            None
        };
        let films: Vec<(f64, f64)> = scored.iter().filter_map(|s| s.lungs).collect();
        Ok(EvalReport {
            model: summary,
            data: DataSummary { scored: ok.len(), failed: failures.len(), ..data.clone() },
            full,
            occluded_center: occluded,
            attribution: Attribution::from_films(model.default_explain_method().as_str(), &films),
            noise: data.noise_grey_levels.and_then(|grey_levels| {
                Some(NoiseShift { grey_levels, shift: Shift::of(scored.iter().filter_map(|s| s.noise_shift))? })
            }),
            versus_first: None,
            failures,
            notice: cxr_core::card::RESEARCH_USE_ONLY,
        })
    }
}

impl ModelSummary {
    pub fn of(model: &Model) -> ModelSummary {
        ModelSummary {
            name: model.card.name.clone(),
            architecture: model.card.architecture.clone(),
            precision: model.card.precision.clone(),
            sha256: model.card.sha256.clone(),
            threshold: model.card.threshold,
            threshold_rule: model.card.threshold_rule.clone(),
            class_set: model.class_set(),
        }
    }

    /// Cross-fitted models, one per fold, as one: named after what their names share, with every
    /// sha256 and the median threshold (each film is still decided at its own model's).
    pub fn out_of_fold(models: &[Model]) -> Result<ModelSummary, EvalError> {
        let first = &models[0];
        if let Some(other) = models.iter().find(|m| m.class_set() != first.class_set()) {
            return Err(EvalError::MixedClassSets { model: other.card.name.clone(), first: first.card.name.clone() });
        }
        let mut thresholds: Vec<f64> = models.iter().map(|m| m.card.threshold).collect();
        thresholds.sort_by(f64::total_cmp);
        Ok(ModelSummary {
            name: format!("{} (out of fold, {} folds)", family_name(models), models.len()),
            sha256: models.iter().map(|m| m.card.sha256.as_str()).collect::<Vec<_>>().join(" "),
            threshold: thresholds[thresholds.len() / 2],
            threshold_rule: format!(
                "each film at the threshold of the fold model that scored it (median shown): {}",
                first.card.threshold_rule
            ),
            ..ModelSummary::of(first)
        })
    }
}

/// What the fold models' names share (`resnet18-cv-fold-0`, `…-fold-1` → `resnet18-cv`).
pub fn family_name(models: &[Model]) -> String {
    let names: Vec<&str> = models.iter().map(|m| m.card.name.as_str()).collect();
    let common = names
        .iter()
        .skip(1)
        .fold(names[0].len(), |n, name| names[0].bytes().zip(name.bytes()).take(n).take_while(|(a, b)| a == b).count());
    let stem = names[0][..common]
        .trim_end_matches(|c: char| c.is_ascii_digit())
        .trim_end_matches("fold")
        .trim_end_matches(['-', '_']);
    if stem.is_empty() { names[0].to_owned() } else { stem.to_owned() }
}

/// Metrics of scored images, each decided at the threshold of the model that scored it (one
/// model's, or each fold model's for out-of-fold scores); `reported` is the threshold shown.
fn metrics(model: &Model, rows: &[(&Scored, &Prediction)], reported: f64) -> Result<Metrics, EvalError> {
    let class_set = model.class_set();
    let scores: Vec<f64> = rows.iter().map(|(_, p)| p.p_covid() as f64).collect();
    let positives: Vec<bool> = rows.iter().map(|(s, _)| s.item.label == Class::Covid).collect();
    let thresholds: Vec<f64> = rows.iter().map(|(s, _)| s.threshold).collect();
    let (auc, auc_note) = match delong(&scores, &positives) {
        Ok(d) => (Some(d), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let truth: Vec<usize> = rows.iter().map(|(s, _)| class_set.index(s.item.label)).collect();
    let predicted: Vec<usize> = rows.iter().map(|(_, p)| p.class_index).collect();
    let by_source: Vec<(&str, f64, bool)> = rows
        .iter()
        .zip(&scores)
        .map(|((s, _), &score)| (s.item.source.as_str(), score, s.item.label == Class::Covid))
        .collect();
    let decided: Vec<(&str, f64, bool, f64)> =
        by_source.iter().zip(&thresholds).map(|(&(s, score, p), &t)| (s, score, p, t)).collect();
    let (within, within_note) = match within_source(&by_source) {
        Ok(w) => (Some(w), None),
        Err(e) => (None, Some(e.to_string())),
    };
    Ok(Metrics {
        images: rows.len(),
        positives: positives.iter().filter(|&&p| p).count(),
        auc,
        auc_note,
        at_threshold: BinaryMetrics::at_thresholds(&scores, &positives, &thresholds, reported)?,
        confusion: ConfusionMatrix::from_indices(class_set.names(), &truth, &predicted)?,
        calibration: Calibration::new(&scores, &positives, 10)?,
        per_source: per_source_at(&decided)?,
        within_source: within,
        within_source_note: within_note,
        roc: RocCurve::new(&scores, &positives).ok(),
    })
}
