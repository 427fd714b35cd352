//! Within-source cross-fitting end to end on real films: `cxr data folds` on the stored split of
//! the within-source protocol, then `cxr eval --out-of-fold` with shipped models standing in for
//! fold models. What must hold: no patient or copied picture of a fold's test films reaches its
//! training or validation, every film of the collection is scored exactly once and by its own
//! fold's model, each at that model's threshold, and the pooled AUC is the pair-by-pair one.

use assert_cmd::Command;
use cxr_test_support::{datasets, mann_whitney_auc, workspace};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

const SOURCE: &str = "covid-chestxray-dataset";

fn cxr() -> Command {
    let mut cmd = Command::cargo_bin("cxr").unwrap();
    cmd.current_dir(workspace()).env("CXR_MODELS", workspace().join("models"));
    cmd
}

/// `cxr eval --out-of-fold` on the collection's films of `folds`, reporting into `report`, with
/// `models` in the order given (one per fold, or several sets one after the other).
fn out_of_fold_eval(folds: &Path, report: &Path, models: &[&str]) -> Command {
    let mut eval = cxr();
    eval.args(["eval", "--out-of-fold", "--data"])
        .arg(folds)
        .arg("--data-root")
        .arg(datasets())
        .args(["--source", SOURCE, "--report"])
        .arg(report);
    for m in models {
        eval.args(["-m", m]);
    }
    eval
}

fn metrics_of(report: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(report.join("metrics.json")).unwrap()).unwrap()
}

fn rows(path: &Path) -> Vec<HashMap<String, String>> {
    csv::Reader::from_path(path).unwrap().deserialize().map(Result::unwrap).collect()
}

#[test]
fn folds_keep_patients_apart_and_out_of_fold_scores_each_film_once_at_its_models_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let stored = workspace().join("models/splits/within-source-all.csv");
    let folds = dir.path().join("folds");
    cxr()
        .args(["data", "folds"])
        .arg(&stored)
        .args(["--source", SOURCE, "--folds", "3", "--only-source", "--out"])
        .arg(&folds)
        .assert()
        .success();

    // Every film of the collection is in exactly one fold's test split; within a fold no split
    // group (patient ∪ near-duplicate) is both tested and trained or validated on, and with
    // --only-source nothing of another collection trains.
    let source_films: BTreeSet<String> =
        rows(&stored).into_iter().filter(|r| r["source"] == SOURCE).map(|r| r["path"].clone()).collect();
    assert!(source_films.len() > 500, "the collection has {} films in the stored split", source_films.len());
    let mut tested: BTreeMap<String, usize> = BTreeMap::new();
    for k in 0..3 {
        let fold = rows(&folds.join(format!("fold-{k}.csv")));
        let test_groups: BTreeSet<&str> =
            fold.iter().filter(|r| r["split"] == "test").map(|r| r["split_group"].as_str()).collect();
        for r in &fold {
            match r["split"].as_str() {
                "test" => {
                    assert_eq!(r["source"], SOURCE);
                    *tested.entry(r["path"].clone()).or_default() += 1;
                }
                "train" | "val" => {
                    assert_eq!(r["source"], SOURCE, "--only-source trains on the collection alone");
                    assert!(
                        !test_groups.contains(r["split_group"].as_str()),
                        "fold {k}: {} shares a patient or picture with a test film",
                        r["path"]
                    );
                }
                _ => {}
            }
        }
        let negatives = fold.iter().filter(|r| r["split"] == "test" && r["label"] != "covid").count();
        assert!(
            (25..=38).contains(&negatives),
            "fold {k} tests {negatives} non-COVID films: the classes are not spread evenly"
        );
    }
    assert_eq!(tested.keys().cloned().collect::<BTreeSet<_>>(), source_films);
    assert!(tested.values().all(|&n| n == 1));

    // Three different models, one per fold: every film scored once, by the model of its fold.
    let report = dir.path().join("report");
    let masks = cxr_test_support::lung_masks();
    let models = ["seed-cnn", "resnet18-scratch", "seed-cnn-int8"];
    out_of_fold_eval(&folds, &report, &models).assert().success();
    let metrics = metrics_of(&report);
    let predictions = rows(&report.join("predictions.csv"));
    assert_eq!(predictions.len(), source_films.len());
    assert_eq!(metrics["full"]["images"].as_u64().unwrap() as usize, source_films.len());

    // The human lung masks, read once for all folds, reach every masked film of every fold (but
    // one whose heatmap has no positive evidence at all). ResNet-18's class activation maps keep
    // this quick; the occlusion maps of the others take minutes.
    let with_masks = dir.path().join("with-masks");
    out_of_fold_eval(&folds, &with_masks, &["resnet18-scratch"; 3]).arg("--lung-masks").arg(&masks).assert().success();
    let masked_metrics = metrics_of(&with_masks);
    let masked = rows(&masks).into_iter().filter(|r| source_films.contains(&r["image"])).count();
    let attribution = &masked_metrics["attribution"];
    assert!(masked > 400, "{masked} films of the collection have a mask");
    let films = attribution["films"].as_u64().unwrap() as usize;
    assert!(
        films <= masked && films + 3 >= masked,
        "evidence measured on {films} of {masked} masked films: {attribution}"
    );
    let (share, area) = (
        attribution["share_inside_lungs"]["estimate"].as_f64().unwrap(),
        attribution["lung_area_share"].as_f64().unwrap(),
    );
    assert!((0.0..=1.0).contains(&share) && (0.25..0.5).contains(&area), "{attribution}");

    // Decide each film at its fold model's threshold, count, and compare with the report.
    let thresholds: Vec<f64> = models
        .iter()
        .map(|m| {
            let card: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(workspace().join(format!("models/{m}.card.json"))).unwrap(),
            )
            .unwrap();
            card["threshold"].as_f64().unwrap()
        })
        .collect();
    let fold_of: HashMap<PathBuf, usize> = (0..3)
        .flat_map(|k| {
            rows(&folds.join(format!("fold-{k}.csv")))
                .into_iter()
                .filter(|r| r["split"] == "test")
                .map(move |r| (datasets().join(&r["path"]), k))
        })
        .collect();
    let (mut tp, mut tn) = (0u64, 0u64);
    let scored: Vec<(f64, bool, usize)> = predictions
        .iter()
        .map(|p| (p["p_covid"].parse().unwrap(), p["label"] == "covid", fold_of[Path::new(&p["path"])]))
        .collect();
    for &(p, covid, k) in &scored {
        match (p >= thresholds[k], covid) {
            (true, true) => tp += 1,
            (false, false) => tn += 1,
            _ => {}
        }
    }
    let (scores, covid): (Vec<f64>, Vec<bool>) = scored.iter().map(|&(p, covid, _)| (p, covid)).unzip();
    let positives = covid.iter().filter(|&&c| c).count() as u64;
    let pairs = positives * (covid.len() as u64 - positives);
    let at = &metrics["full"]["at_threshold"];
    assert_eq!(
        (at["true_positives"].as_u64().unwrap(), at["true_negatives"].as_u64().unwrap()),
        (tp, tn),
        "each film is decided at its own fold model's threshold"
    );
    let within = &metrics["full"]["within_source"];
    assert_eq!(within["pairs"].as_u64().unwrap(), pairs);
    assert!((within["auc"]["estimate"].as_f64().unwrap() - mann_whitney_auc(&scores, &covid)).abs() < 1e-12);
    assert!(metrics["model"]["name"].as_str().unwrap().contains("out of fold, 3 folds"));

    // Two sets of fold models, one after the other: each gets its own report, and the second is
    // compared with the first on the same films (the paired AUC difference is the difference of
    // the two pooled AUCs).
    let two_sets = dir.path().join("two-sets");
    let sets = ["resnet18-scratch", "resnet18-scratch", "resnet18-scratch", "seed-cnn", "seed-cnn", "seed-cnn"];
    let out = out_of_fold_eval(&folds, &two_sets, &sets).arg("--json").assert().success().get_output().stdout.clone();
    let reports: Vec<serde_json::Value> = serde_json::from_slice(&out).unwrap();
    assert_eq!(reports.len(), 2);
    assert!(
        two_sets.join("resnet18-scratch/metrics.json").is_file() && two_sets.join("seed-cnn/metrics.json").is_file()
    );
    let versus = &reports[1]["versus_first"];
    assert_eq!(versus["films"].as_u64().unwrap() as usize, source_films.len(), "{versus}");
    let pooled = |r: &serde_json::Value| r["full"]["auc"]["auc"].as_f64().unwrap();
    let difference = versus["auc"]["difference"]["estimate"].as_f64().unwrap();
    assert!((difference - (pooled(&reports[1]) - pooled(&reports[0]))).abs() < 1e-12, "{versus}");
    assert!(reports[1]["model"]["name"].as_str().unwrap().starts_with("seed-cnn (out of fold"));

    // One model fewer than folds, or models of different class sets, are refused.
    let refused = |models: &[&str], message: &str| {
        let mut eval = cxr();
        eval.args(["eval", "--out-of-fold", "--data"]).arg(&folds).arg("--report").arg(dir.path().join("refused"));
        for m in models {
            eval.args(["-m", m]);
        }
        eval.assert().failure().stderr(predicates::str::contains(message));
    };
    refused(&["seed-cnn", "seed-cnn"], "one --model per fold");
    refused(&["seed-cnn", "seed-cnn", "efficientnet-lite0-three-class"], "has other classes than seed-cnn");
}
