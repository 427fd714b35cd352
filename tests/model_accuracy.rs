//! Every shipped model still is what its card says: the ONNX file has the card's sha256, and
//! `cxr eval --occlude-center` on each committed split a card names (an evaluation whose
//! `stored_split` is e.g. `{"file": "splits/seed42.csv", "split": "test"}`, paths relative to the
//! datasets root, optionally limited to some `sources`) gives back every figure the card records
//! for it: the number of images, the AUC, the within-source AUC, the AUCs with the lungs blacked
//! out, and sensitivity and specificity at the card's threshold.
//!
//! The re-measurement is deterministic (the file is pinned by its sha256, the split is fixed), so
//! the tolerances are those of the cards' four-decimal rounding plus float differences between
//! the release build that recorded them and this test build, not of sampling noise: a decoder,
//! resize or runtime change that moves a single prediction across the threshold, or any AUC by
//! more than a few ten-thousandths, fails here.
//!
//! The README's claim that every int8 file is within 0.005 AUC of its fp32 twin is checked on the
//! same re-measured figures: each int8 card names the fp32 file it was quantized from.
//!
//! Cards that name the same stored split are scored by one `cxr eval` with a `--model` each (every
//! image decoded once for all of them). Cards are discovered from `models/*.card.json`, so a newly
//! shipped model is checked without editing this file; a card with no stored test split fails,
//! since its figures could not be re-checked. The measured figures are written to CI's log
//! (bypassing the test harness's capture) and to `model-accuracy.json` under cargo's target tmp
//! folder, next to the latency benchmarks.

use assert_cmd::Command;
use cxr_core::ModelCard;
use cxr_core::card::{EvaluationRecord, StoredSplit, WITHIN_SOURCE};
use cxr_test_support::{datasets, workspace};
use std::io::Write;
use std::path::{Path, PathBuf};

/// How far a re-measured AUC may be from the card's four-decimal figure: the rounding (5e-5)
/// plus float differences between the release and test builds, which move scores by ~1e-7 and
/// an AUC only through exact ties.
const AUC_TOLERANCE: f64 = 2e-4;

/// How far sensitivity or specificity may move: rounding only. The threshold is applied to the
/// same scores, so one film crossing it (≥ 1/ n ≥ 0.0004 on the largest split) is a regression.
const PROPORTION_TOLERANCE: f64 = 1e-4;

/// The README's bound on int8 against fp32, test AUC.
const INT8_AUC_BOUND: f64 = 0.005;

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
    recorded_within_source_auc: Option<f64>,
    measured_within_source_auc: Option<f64>,
}

/// One card's evaluation on a stored split, waiting to be re-scored.
struct Pending {
    card_path: PathBuf,
    card: ModelCard,
    record: EvaluationRecord,
    /// The record's split file, resolved against the card's folder.
    split_file: PathBuf,
}

impl Pending {
    fn stored(&self) -> &StoredSplit {
        self.record.stored_split.as_ref().expect("only records with a stored split are pending")
    }

    fn same_images(&self, other: &Pending) -> bool {
        self.split_file == other.split_file
            && self.stored().split == other.stored().split
            && self.stored().sources == other.stored().sources
    }
}

/// Runs one `cxr eval --occlude-center` of all `pending` models (which share one stored split and
/// source list); returns each model's metrics.json, in order.
fn re_evaluate(pending: &[&Pending], datasets: &Path) -> Vec<serde_json::Value> {
    let (split_file, stored) = (&pending[0].split_file, pending[0].stored());
    let report = tempfile::tempdir().unwrap();
    let mut eval = Command::cargo_bin("cxr").unwrap();
    eval.arg("eval")
        .arg("--data")
        .arg(split_file)
        .arg("--data-root")
        .arg(datasets)
        .args(["--split", &stored.split, "--occlude-center", "--json", "--report"])
        .arg(report.path());
    for source in &stored.sources {
        eval.args(["--source", source]);
    }
    for p in pending {
        eval.arg("--model").arg(&p.card_path);
    }
    let output = eval.output().unwrap();
    let names: Vec<&str> = pending.iter().map(|p| p.card.name.as_str()).collect();
    assert!(
        output.status.success(),
        "`cxr eval` of {names:?} on {} ({} {:?}) failed: {}",
        split_file.display(),
        stored.split,
        stored.sources,
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).expect("--json prints metrics.json");
    // One model prints its metrics.json, several a list of them.
    let reports = match printed {
        serde_json::Value::Array(reports) => reports,
        one => vec![one],
    };
    assert_eq!(reports.len(), pending.len(), "one report per model");
    for (p, metrics) in pending.iter().zip(&reports) {
        assert_eq!(metrics["model"]["name"], p.card.name.as_str(), "reports in --model order");
    }
    reports
}

/// Compares one re-measured report with the card's record; returns what differs.
fn compare(p: &Pending, metrics: &serde_json::Value, measured: &mut Vec<Measured>) -> Vec<String> {
    let (card, record) = (&p.card, &p.record);
    let at = format!(
        "{} `{}` on {} ({} {:?})",
        card.name,
        record.name,
        p.stored().file,
        p.stored().split,
        p.stored().sources
    );
    let mut problems = Vec::new();
    let mut check =
        |what: &str, recorded: Option<f64>, measured: Option<f64>, tolerance: f64| match (recorded, measured) {
            (Some(r), Some(m)) if (r - m).abs() <= tolerance => {}
            (None, _) => {}
            (r, m) => problems.push(format!("{at}: {what} {m:?}, the card records {r:?} (tolerance {tolerance})")),
        };
    let full = &metrics["full"];
    let occluded = &metrics["occluded_center"];
    let auc = full["auc"]["auc"].as_f64();
    let within = full["within_source"]["auc"]["estimate"].as_f64();
    check("AUC", Some(record.auc), auc, AUC_TOLERANCE);
    check("AUC with the centre occluded", record.auc_occluded_center, occluded["auc"]["auc"].as_f64(), AUC_TOLERANCE);
    check(
        "sensitivity",
        record.sensitivity,
        full["at_threshold"]["sensitivity"]["estimate"].as_f64(),
        PROPORTION_TOLERANCE,
    );
    check(
        "specificity",
        record.specificity,
        full["at_threshold"]["specificity"]["estimate"].as_f64(),
        PROPORTION_TOLERANCE,
    );
    if let Some(w) = &record.within_source {
        check("within-source AUC", Some(w.auc), within, AUC_TOLERANCE);
        check(
            "within-source AUC lower bound",
            Some(w.auc_ci95[0]),
            full["within_source"]["auc"]["lower"].as_f64(),
            AUC_TOLERANCE,
        );
        check(
            "within-source AUC upper bound",
            Some(w.auc_ci95[1]),
            full["within_source"]["auc"]["upper"].as_f64(),
            AUC_TOLERANCE,
        );
        check(
            "within-source AUC with the centre occluded",
            w.auc_occluded_center,
            occluded["within_source"]["auc"]["estimate"].as_f64(),
            AUC_TOLERANCE,
        );
        check("within-source pairs", Some(w.pairs as f64), full["within_source"]["pairs"].as_f64(), 0.0);
    }
    let images = metrics["data"]["scored"].as_u64().expect("images scored");
    if images != record.images {
        problems.push(format!("{at}: scored {images} images, the card records {}", record.images));
    }
    measured.push(Measured {
        model: card.name.clone(),
        precision: card.precision.clone(),
        evaluation: record.name.clone(),
        split: format!("{} {} {}", p.stored().file, p.stored().split, p.stored().sources.join("+")),
        images,
        recorded_auc: record.auc,
        measured_auc: auc.unwrap_or(f64::NAN),
        recorded_within_source_auc: record.within_source.as_ref().map(|w| w.auc),
        measured_within_source_auc: within,
    });
    problems
}

#[test]
fn every_shipped_model_matches_its_card_and_every_recorded_figure() {
    let datasets = datasets();
    let cards = cards();
    assert!(!cards.is_empty(), "no model cards in models/");
    let mut pending = Vec::new();
    let mut problems = Vec::new();
    for card_path in cards {
        let card = ModelCard::load(&card_path).unwrap_or_else(|e| panic!("{e}"));
        let model_path = card_path.parent().unwrap().join(&card.file);
        let bytes = std::fs::read(&model_path)
            .unwrap_or_else(|e| panic!("{}: {e} (named by {})", model_path.display(), card_path.display()));
        if let Err(e) = card.verify(&card_path, &model_path, &bytes) {
            problems.push(e.to_string());
            continue;
        }
        if !card.evaluations.iter().any(|e| e.name == "test" && e.stored_split.is_some()) {
            problems.push(format!(
                "{}: no `test` evaluation names a stored split, so its AUC cannot be re-checked; add `stored_split` (e.g. {{\"file\": \"splits/seed42.csv\", \"split\": \"test\"}}) to it",
                card_path.display()
            ));
        }
        if !card
            .evaluations
            .iter()
            .any(|e| e.name == WITHIN_SOURCE && e.within_source.is_some() && e.stored_split.is_some())
        {
            problems.push(format!("{}: no `{WITHIN_SOURCE}` evaluation on a stored split; record one (`cxr eval --source … --record {WITHIN_SOURCE}`)", card_path.display()));
        }
        for record in card.evaluations.iter().filter(|e| e.stored_split.is_some()).cloned() {
            let split_file = card_path.parent().unwrap().join(&record.stored_split.as_ref().unwrap().file);
            pending.push(Pending { card_path: card_path.clone(), card: card.clone(), record, split_file });
        }
    }
    // One `cxr eval` per distinct stored split and source list.
    let mut groups: Vec<Vec<&Pending>> = Vec::new();
    for p in &pending {
        match groups.iter_mut().find(|g| g[0].same_images(p)) {
            Some(group) => group.push(p),
            None => groups.push(vec![p]),
        }
    }
    let mut measured = Vec::new();
    for group in &groups {
        for (p, metrics) in group.iter().zip(re_evaluate(group, &datasets)) {
            problems.extend(compare(p, &metrics, &mut measured));
        }
    }
    problems.extend(int8_twins_within_bound(&pending, &measured));
    report(&measured);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Each int8 model's re-measured test AUC against its fp32 parent's, where both are shipped.
fn int8_twins_within_bound(pending: &[Pending], measured: &[Measured]) -> Vec<String> {
    let test_auc =
        |name: &str| measured.iter().find(|m| m.model == name && m.evaluation == "test").map(|m| m.measured_auc);
    let mut problems = Vec::new();
    let mut pairs = 0;
    for p in pending.iter().filter(|p| p.record.name == "test") {
        let Some(q) = &p.card.quantization else { continue };
        let Some(parent) = pending.iter().find(|f| f.record.name == "test" && f.card.file == q.from_file) else {
            continue;
        };
        let (Some(int8), Some(fp32)) = (test_auc(&p.card.name), test_auc(&parent.card.name)) else { continue };
        pairs += 1;
        if (int8 - fp32).abs() > INT8_AUC_BOUND {
            problems.push(format!("{}: test AUC {int8:.4} is {:.4} from its fp32 parent {} ({fp32:.4}); the README promises at most {INT8_AUC_BOUND}", p.card.name, (int8 - fp32).abs(), parent.card.name));
        }
    }
    let int8_cards = pending.iter().filter(|p| p.record.name == "test" && p.card.quantization.is_some()).count();
    if pairs != int8_cards {
        problems.push(format!("{pairs} of {int8_cards} int8 models have their fp32 parent shipped beside them; ship the parent or drop the int8 file"));
    }
    problems
}

/// Writes the table where CI keeps it: straight to stderr (the harness captures only `eprintln!`)
/// and as JSON under the target folder.
fn report(measured: &[Measured]) {
    let mut table = String::from(
        "\nmodel accuracy on stored splits (recorded → measured; within-source AUC first where recorded):\n",
    );
    let width = measured.iter().map(|m| m.model.chars().count()).max().unwrap_or(0);
    for m in measured {
        let within = match (m.recorded_within_source_auc, m.measured_within_source_auc) {
            (Some(r), Some(w)) => format!("within {r:.4} → {w:.4}; "),
            _ => String::new(),
        };
        table += &format!(
            "  {:<width$} {:<5} {:<60} n={:<5} {within}AUC {:.4} → {:.4} ({:+.4})\n",
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
    std::fs::write(&path, serde_json::to_string_pretty(measured).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}
