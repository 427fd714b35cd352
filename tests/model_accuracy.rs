//! Every shipped model still is what its card says: the ONNX file has the card's sha256, and
//! `cxr eval` on the committed test split the card names (an evaluation whose `stored_split` is
//! e.g. `{"file": "splits/seed42.csv", "split": "test"}`, paths relative to the datasets root)
//! reaches the recorded AUC within [`TOLERANCE`] on the same number of images.
//!
//! Cards that name the same stored split are scored by one `cxr eval` with a `--model` each (every
//! image decoded once for all of them). Inference, not decoding, is most of this test's time: the
//! 224-px models take ~30 ms an image each, decoding and fitting a few ms.
//!
//! Only the test split is re-scored: it is the contract every card is held to, and a decoder,
//! resize or runtime regression moves it as surely as it moves the cross-source split, which
//! would add a third to CI's longest test for every model shipped. Cards are discovered from
//! `models/*.card.json`, so a newly shipped model is checked without editing this file; a card
//! with no stored test split fails, since its AUC could not be re-checked.
//! The measured AUCs are written to CI's log (bypassing the test harness's capture) and to
//! `model-accuracy.json` under cargo's target tmp folder, next to the latency benchmarks.

use assert_cmd::Command;
use cxr_core::ModelCard;
use cxr_core::card::EvaluationRecord;
use std::io::Write;
use std::path::{Path, PathBuf};

/// How far a re-measured AUC may drift from the card (decoder or resize changes move a few
/// scores; a real regression moves more).
const TOLERANCE: f64 = 0.01;

fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn cards() -> Vec<PathBuf> {
    let dir = workspace().join("models");
    let mut cards: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".card.json"))
        .collect();
    cards.sort();
    cards
}

#[derive(Debug, serde::Serialize)]
struct Measured {
    model: String,
    precision: String,
    evaluation: String,
    split: String,
    images: u64,
    recorded_auc: f64,
    measured_auc: f64,
}

/// One card's evaluation on a stored test split, waiting to be re-scored.
struct Pending {
    card_path: PathBuf,
    card: ModelCard,
    record: EvaluationRecord,
    /// The record's split file, resolved against the card's folder.
    split_file: PathBuf,
}

impl Pending {
    fn split(&self) -> &str {
        &self.record.stored_split.as_ref().expect("only records with a stored split are pending").split
    }
}

/// Runs one `cxr eval` of all `pending` models (which share one stored split); returns
/// (images scored, AUC) for each, in order.
fn re_evaluate(pending: &[&Pending], datasets: &Path) -> Vec<(u64, f64)> {
    let (split_file, split) = (&pending[0].split_file, pending[0].split());
    let report = tempfile::tempdir().unwrap();
    let mut eval = Command::cargo_bin("cxr").unwrap();
    eval.arg("eval").arg("--data").arg(split_file).arg("--data-root").arg(datasets).args(["--split", split, "--json", "--report"]).arg(report.path());
    for p in pending {
        eval.arg("--model").arg(&p.card_path);
    }
    let output = eval.output().unwrap();
    let names: Vec<&str> = pending.iter().map(|p| p.card.name.as_str()).collect();
    assert!(
        output.status.success(),
        "`cxr eval` of {names:?} on {} ({}) failed: {}",
        split_file.display(),
        split,
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).expect("--json prints metrics.json");
    // One model prints its metrics.json, several a list of them.
    let reports = match printed {
        serde_json::Value::Array(reports) => reports,
        one => vec![one],
    };
    assert_eq!(reports.len(), pending.len(), "one report per model");
    pending
        .iter()
        .zip(&reports)
        .map(|(p, metrics)| {
            assert_eq!(metrics["model"]["name"], p.card.name.as_str(), "reports in --model order");
            let images = metrics["data"]["scored"].as_u64().expect("images scored");
            let auc = metrics["full"]["auc"]["auc"].as_f64().unwrap_or_else(|| panic!("{}: no AUC in {}", p.card.name, metrics["full"]));
            (images, auc)
        })
        .collect()
}

#[test]
fn every_shipped_model_matches_its_card_and_its_recorded_auc() {
    let datasets = cxr_core::dataset::shared_datasets(workspace()).unwrap_or_else(|e| panic!("real X-rays are needed: {e}"));
    let cards = cards();
    assert!(!cards.is_empty(), "no model cards in models/");
    let mut pending = Vec::new();
    let mut problems = Vec::new();
    for card_path in cards {
        let card = ModelCard::load(&card_path).unwrap_or_else(|e| panic!("{e}"));
        let model_path = card_path.parent().unwrap().join(&card.file);
        let bytes = std::fs::read(&model_path).unwrap_or_else(|e| panic!("{}: {e} (named by {})", model_path.display(), card_path.display()));
        if let Err(e) = card.verify(&card_path, &model_path, &bytes) {
            problems.push(e.to_string());
            continue;
        }
        let stored: Vec<EvaluationRecord> =
            card.evaluations.iter().filter(|e| e.stored_split.as_ref().is_some_and(|s| s.split == "test")).cloned().collect();
        if stored.is_empty() {
            problems.push(format!(
                "{}: no evaluation names a stored test split, so its AUC cannot be re-checked; add `stored_split` (e.g. {{\"file\": \"splits/seed42.csv\", \"split\": \"test\"}}) to its test evaluation",
                card_path.display()
            ));
            continue;
        }
        for record in stored {
            let split_file = card_path.parent().unwrap().join(&record.stored_split.as_ref().unwrap().file);
            pending.push(Pending { card_path: card_path.clone(), card: card.clone(), record, split_file });
        }
    }
    // One `cxr eval` per distinct stored split.
    let mut groups: Vec<Vec<&Pending>> = Vec::new();
    for p in &pending {
        match groups.iter_mut().find(|g| g[0].split_file == p.split_file && g[0].split() == p.split()) {
            Some(group) => group.push(p),
            None => groups.push(vec![p]),
        }
    }
    let mut measured = Vec::new();
    for group in &groups {
        for (p, (images, auc)) in group.iter().zip(re_evaluate(group, &datasets)) {
            let (card, record) = (&p.card, &p.record);
            let split = record.stored_split.as_ref().unwrap();
            if (auc - record.auc).abs() > TOLERANCE {
                problems.push(format!("{} `{}`: AUC {auc:.4} on {} ({}), the card records {:.4} (tolerance {TOLERANCE})", card.name, record.name, split.file, split.split, record.auc));
            }
            if images != record.images {
                problems.push(format!("{} `{}`: scored {images} images, the card records {}", card.name, record.name, record.images));
            }
            measured.push(Measured {
                model: card.name.clone(),
                precision: card.precision.clone(),
                evaluation: record.name.clone(),
                split: format!("{} {}", split.file, split.split),
                images,
                recorded_auc: record.auc,
                measured_auc: auc,
            });
        }
    }
    report(&measured);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Writes the table where CI keeps it: straight to stderr (the harness captures only `eprintln!`)
/// and as JSON under the target folder.
fn report(measured: &[Measured]) {
    let mut table = String::from("\nmodel accuracy on stored splits (recorded → measured AUC):\n");
    let width = measured.iter().map(|m| m.model.chars().count()).max().unwrap_or(0);
    for m in measured {
        table += &format!(
            "  {:<width$} {:<5} {:<52} n={:<5} {:.4} → {:.4} ({:+.4})\n",
            m.model,
            m.precision,
            format!("{} [{}]", m.evaluation, m.split),
            m.images,
            m.recorded_auc,
            m.measured_auc,
            m.measured_auc - m.recorded_auc
        );
    }
    let _ = std::io::stderr().write_all(table.as_bytes());
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("model-accuracy.json");
    std::fs::write(&path, serde_json::to_string_pretty(measured).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}
