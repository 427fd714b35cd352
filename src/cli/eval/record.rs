//! `cxr eval --record NAME`: an evaluation written into the model's card, so the card carries
//! what was measured and CI (`tests/model_accuracy.rs`) can measure it again from the stored split.

use super::{EvalReport, Metrics};
use anyhow::Context;
use cxr_core::ModelCard;
use cxr_core::card::{EvaluationRecord, StoredSplit, WITHIN_SOURCE, WithinSourceRecord};
use cxr_infer::Model;
use std::path::{Path, PathBuf};

/// Cards keep four decimals: more would be noise, and CI compares at that precision.
fn r4(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

/// Writes `report` as the evaluation `name` into the card `model` was loaded from (replacing an
/// evaluation of that name, else appending it, or putting it first if it is the headline) and returns the card's path. The card is re-read
/// from disk and its sha256 must be the evaluated model's, so a card edited meanwhile is neither
/// lost nor mismatched.
pub fn record(
    model: &Model,
    report: &EvalReport,
    name: &str,
    data: &Path,
    sources: &[String],
) -> anyhow::Result<PathBuf> {
    let card_path = &model.card_path;
    anyhow::ensure!(
        card_path.is_file(),
        "--record: {} is the built-in model, whose card is compiled in; evaluate its file (`--model models/NAME.onnx`)",
        card_path.display()
    );
    let mut card = ModelCard::load(card_path)?;
    anyhow::ensure!(
        card.sha256 == report.model.sha256,
        "{}: the card is for sha256 {}, the evaluated model is {}",
        card_path.display(),
        card.sha256,
        report.model.sha256
    );
    let full = &report.full;
    let auc = full
        .auc
        .with_context(|| format!("--record {name}: no AUC to record ({})", full.auc_note.as_deref().unwrap_or("")))?;
    let occluded = report.occluded_center.as_ref();
    let record = EvaluationRecord {
        name: name.to_owned(),
        images: report.data.scored as u64,
        auc: r4(auc.auc),
        auc_ci95: [r4(auc.ci.lower), r4(auc.ci.upper)],
        sensitivity: full.at_threshold.sensitivity.interval.map(|i| r4(i.estimate)),
        specificity: full.at_threshold.specificity.interval.map(|i| r4(i.estimate)),
        auc_occluded_center: occluded.and_then(|o| o.auc).map(|d| r4(d.auc)),
        stored_split: Some(StoredSplit {
            file: relative_to(data, card_path.parent().unwrap_or(Path::new(".")))?,
            split: report.data.split.clone().context("--record needs a manifest split")?,
            sources: sources.to_vec(),
        }),
        within_source: within_source_record(full, occluded),
    };
    match card.evaluations.iter_mut().find(|e| e.name == name) {
        Some(existing) => *existing = record,
        // The headline goes first, where a reader of the JSON looks.
        None if name == WITHIN_SOURCE => card.evaluations.insert(0, record),
        None => card.evaluations.push(record),
    }
    card.save(card_path)?;
    Ok(card_path.clone())
}

fn within_source_record(full: &Metrics, occluded: Option<&Metrics>) -> Option<WithinSourceRecord> {
    let w = full.within_source.as_ref()?;
    Some(WithinSourceRecord {
        auc: r4(w.auc.estimate),
        auc_ci95: [r4(w.auc.lower), r4(w.auc.upper)],
        pairs: w.pairs,
        sources: w.sources.iter().map(|s| format!("{} ({} + {})", s.source, s.positives, s.negatives)).collect(),
        auc_occluded_center: occluded.and_then(|o| o.within_source.as_ref()).map(|o| r4(o.auc.estimate)),
    })
}

/// `path` relative to `base` (both made absolute), with `/` separators, as cards store paths.
fn relative_to(path: &Path, base: &Path) -> anyhow::Result<String> {
    let path = path.canonicalize().with_context(|| format!("{}: cannot resolve", path.display()))?;
    let base = base.canonicalize().with_context(|| format!("{}: cannot resolve", base.display()))?;
    let common = path.components().zip(base.components()).take_while(|(a, b)| a == b).count();
    let ups = base.components().count() - common;
    let parts: Vec<String> = std::iter::repeat_n("..".to_owned(), ups)
        .chain(path.components().skip(common).map(|c| c.as_os_str().to_string_lossy().into_owned()))
        .collect();
    Ok(parts.join("/"))
}
