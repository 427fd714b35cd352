//! Every shipped model still is what its card says: the ONNX file has the card's sha256, and
//! `cxr eval` on the committed test split the card names (an evaluation whose `stored_split` is
//! e.g. `{"file": "splits/seed42.csv", "split": "test"}`, paths relative to the datasets root)
//! reaches the recorded AUC within [`TOLERANCE`] on the same number of images.
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

/// Runs `cxr eval` on the evaluation's stored split; returns (images scored, AUC).
fn re_evaluate(card_path: &Path, record: &EvaluationRecord, datasets: &Path) -> (u64, f64) {
    let stored = record.stored_split.as_ref().expect("caller checked");
    let split_file = card_path.parent().unwrap().join(&stored.file);
    let report = tempfile::tempdir().unwrap();
    let output = Command::cargo_bin("cxr")
        .unwrap()
        .arg("eval")
        .arg("--model")
        .arg(card_path)
        .arg("--data")
        .arg(&split_file)
        .arg("--data-root")
        .arg(datasets)
        .args(["--split", &stored.split, "--json", "--report"])
        .arg(report.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}: `cxr eval` on {} ({}) failed: {}",
        card_path.display(),
        split_file.display(),
        stored.split,
        String::from_utf8_lossy(&output.stderr)
    );
    let metrics: serde_json::Value = serde_json::from_slice(&output.stdout).expect("--json prints metrics.json");
    let images = metrics["data"]["scored"].as_u64().expect("images scored");
    let auc = metrics["full"]["auc"]["auc"].as_f64().unwrap_or_else(|| panic!("no AUC in {}", metrics["full"]));
    (images, auc)
}

#[test]
fn every_shipped_model_matches_its_card_and_its_recorded_auc() {
    let datasets = cxr_core::dataset::shared_datasets(workspace()).unwrap_or_else(|e| panic!("real X-rays are needed: {e}"));
    let cards = cards();
    assert!(!cards.is_empty(), "no model cards in models/");
    let mut measured = Vec::new();
    let mut problems = Vec::new();
    for card_path in &cards {
        let card = ModelCard::load(card_path).unwrap_or_else(|e| panic!("{e}"));
        let model_path = card_path.parent().unwrap().join(&card.file);
        let bytes = std::fs::read(&model_path).unwrap_or_else(|e| panic!("{}: {e} (named by {})", model_path.display(), card_path.display()));
        if let Err(e) = card.verify(card_path, &model_path, &bytes) {
            problems.push(e.to_string());
            continue;
        }
        let stored: Vec<&EvaluationRecord> =
            card.evaluations.iter().filter(|e| e.stored_split.as_ref().is_some_and(|s| s.split == "test")).collect();
        if stored.is_empty() {
            problems.push(format!(
                "{}: no evaluation names a stored test split, so its AUC cannot be re-checked; add `stored_split` (e.g. {{\"file\": \"splits/seed42.csv\", \"split\": \"test\"}}) to its test evaluation",
                card_path.display()
            ));
            continue;
        }
        for record in stored {
            let (images, auc) = re_evaluate(card_path, record, &datasets);
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
