//! End-to-end tests of the inference commands (`predict`, `score`, `eval`, `explain`, `models`,
//! `info`, `bench`) on real X-rays from `../shared/datasets`.
//!
//! They use the shipped `models/seed-cnn` (committed with the code; a checkout without it fails
//! here rather than quietly testing something else); the refusal tests use a tiny real ONNX
//! network written by `cxr_infer::tiny_cnn`, since they damage the files.

mod common;

use assert_cmd::Command;
use common::{images, model};
use cxr_core::{ClassSet, ModelCard};
use cxr_infer::Method;
use cxr_infer::tiny_cnn::TinyCnn;
use cxr_test_support::{mann_whitney_auc, workspace};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

fn tiny(dir: &Path, name: &str) -> PathBuf {
    TinyCnn::default().write(dir, name).unwrap()
}

fn cxr(models_dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("cxr").unwrap();
    cmd.env("CXR_MODELS", models_dir).current_dir(models_dir);
    cmd
}

fn read_csv(path: &Path) -> Vec<csv::StringRecord> {
    csv::Reader::from_path(path).unwrap().records().map(Result::unwrap).collect()
}

#[test]
fn predict_prints_class_probability_model_and_notice() {
    let dir = tempfile::tempdir().unwrap();
    let model = model();
    let files = [images("covid19-radiography/COVID", 1), images("covid19-radiography/Normal", 1)].concat();
    let out = cxr(dir.path())
        .arg("predict")
        .arg("--model")
        .arg(&model)
        .args(&files)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("research use only, not for diagnosis"), "{text}");
    assert!(text.contains("P(covid) = "), "{text}");
    assert!(text.contains("COVID-1.jpg") && text.contains("Normal-1.jpg"), "{text}");
    let sha = ModelCard::load(&ModelCard::path_for(&model)).unwrap().sha256;
    assert!(text.contains(&sha[..12]), "names the model's sha256: {text}");

    let out = cxr(dir.path())
        .arg("predict")
        .arg("--json")
        .arg("--model")
        .arg(&model)
        .args(&files)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(json["model"]["sha256"], sha.as_str());
    let predictions = json["predictions"].as_array().unwrap();
    assert_eq!(predictions.len(), 2);
    for p in predictions {
        let p_covid = p["p_covid"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&p_covid), "{p}");
        assert!(["covid", "non-covid", "normal", "pneumonia"].contains(&p["class"].as_str().unwrap()), "{p}");
    }
    assert_eq!(json["notice"], "research use only, not for diagnosis");
}

/// Without `--model`, `cxr predict` runs the model `models/DEFAULT` names, compiled into the
/// binary: the same card and the same probabilities as that model's own file, with no model
/// folder in reach (CXR_MODELS is an empty one). Fails if the default is not embedded, if the
/// embedded bytes are not the shipped file's, or if `cxr models` does not mark it as the default.
#[test]
fn predict_without_a_model_runs_the_one_models_default_names() {
    let name = std::fs::read_to_string(workspace().join("models/DEFAULT")).unwrap();
    let name = name.trim();
    let file = workspace().join(format!("models/{name}.onnx"));
    let dir = tempfile::tempdir().unwrap();
    let files = [images("covid19-radiography/COVID", 2), images("nih-chestxray14-sample/No_findings", 2)].concat();
    let predict = |model: Option<&Path>| -> serde_json::Value {
        let mut cmd = cxr(dir.path());
        cmd.args(["predict", "--json"]);
        if let Some(model) = model {
            cmd.arg("--model").arg(model);
        }
        serde_json::from_slice(&cmd.args(&files).assert().success().get_output().stdout).unwrap()
    };
    let embedded = predict(None);
    let from_file = predict(Some(&file));
    assert_eq!(embedded["model"]["name"], name, "{embedded}");
    assert_eq!(embedded["model"]["sha256"], from_file["model"]["sha256"]);
    assert_eq!(embedded["predictions"], from_file["predictions"]);
    assert_eq!(embedded["predictions"].as_array().map(Vec::len), Some(files.len()), "{embedded}");

    let listed = cxr(dir.path()).arg("models").assert().success().get_output().stdout.clone();
    let listed = String::from_utf8(listed).unwrap();
    let line =
        listed.lines().find(|l| l.contains("(embedded, default)")).unwrap_or_else(|| panic!("no default in: {listed}"));
    assert!(line.split_whitespace().any(|w| w == name), "{listed}");
}

#[test]
fn score_keeps_going_past_corrupt_files_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let model = model();
    let data = dir.path().join("data/nested");
    std::fs::create_dir_all(&data).unwrap();
    let good = images("covid19-radiography/COVID", 3);
    for f in &good {
        std::fs::copy(f, data.join(f.file_name().unwrap())).unwrap();
    }
    std::fs::write(data.join("empty.jpg"), b"").unwrap();
    let jpeg = std::fs::read(&good[0]).unwrap();
    std::fs::write(data.join("truncated.jpg"), &jpeg[..300]).unwrap();
    std::fs::write(data.join("README"), "these are notes, not an image\n").unwrap();
    let out = dir.path().join("results.csv");
    let assert = cxr(dir.path())
        .arg("score")
        .arg(dir.path().join("data"))
        .arg("--out")
        .arg(&out)
        .arg("--model")
        .arg(&model)
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(stderr.contains("3 failed"), "{stderr}");

    let headers = csv::Reader::from_path(&out).unwrap().headers().unwrap().clone();
    assert_eq!(&headers[0], "path");
    assert_eq!(headers.iter().next_back(), Some("error"));
    let rows = read_csv(&out);
    assert_eq!(rows.len(), 6);
    let error_of = |name: &str| rows.iter().find(|r| r[0].ends_with(name)).map(|r| r[r.len() - 1].to_owned()).unwrap();
    assert!(error_of("empty.jpg").contains("empty"), "{}", error_of("empty.jpg"));
    assert!(error_of("truncated.jpg").contains("truncated.jpg"), "{}", error_of("truncated.jpg"));
    assert!(error_of("README").contains("not a PNG, JPEG or DICOM"), "{}", error_of("README"));
    for f in &good {
        let row = rows.iter().find(|r| r[0].ends_with(f.file_name().unwrap().to_str().unwrap())).unwrap();
        assert_eq!(&row[row.len() - 1], "", "{row:?}");
        let p: f64 = row[2].parse().unwrap();
        assert!((0.0..=1.0).contains(&p));
    }
}

#[test]
fn resumed_score_completes_the_set_without_scoring_anything_twice() {
    let dir = tempfile::tempdir().unwrap();
    let model = model();
    let all = images("covid19-radiography/Normal", 6);
    let list = |name: &str, files: &[PathBuf]| {
        let path = dir.path().join(name);
        std::fs::write(&path, files.iter().map(|f| f.display().to_string() + "\n").collect::<String>()).unwrap();
        path
    };
    let first = list("first.txt", &all[..3]);
    let everything = list("all.txt", &all);
    let out = dir.path().join("results.csv");
    cxr(dir.path()).arg("score").arg(&first).arg("-o").arg(&out).arg("--model").arg(&model).assert().success();
    assert_eq!(read_csv(&out).len(), 3);
    // A run killed mid-write leaves a cut-off last line; resuming drops it instead of choking.
    let mut bytes = std::fs::read(&out).unwrap();
    bytes.extend_from_slice(all[3].display().to_string().as_bytes());
    bytes.extend_from_slice(b",0.12");
    std::fs::write(&out, bytes).unwrap();

    let refused =
        cxr(dir.path()).arg("score").arg(&everything).arg("-o").arg(&out).arg("--model").arg(&model).assert().code(2);
    assert!(
        String::from_utf8_lossy(&refused.get_output().stderr).contains("--resume"),
        "an existing output is never overwritten silently"
    );

    let resumed = cxr(dir.path())
        .arg("score")
        .arg(&everything)
        .arg("-o")
        .arg(&out)
        .arg("--resume")
        .arg("--model")
        .arg(&model)
        .assert()
        .success();
    assert!(String::from_utf8_lossy(&resumed.get_output().stderr).contains("3 images to score"));
    let paths: Vec<String> = read_csv(&out).iter().map(|r| r[0].to_owned()).collect();
    assert_eq!(paths.len(), 6, "{paths:?}");
    assert_eq!(paths.iter().collect::<HashSet<_>>().len(), 6, "no path twice: {paths:?}");
    for f in &all {
        assert!(paths.contains(&f.display().to_string()), "{} missing", f.display());
    }
}

/// A run really killed (SIGKILL, at whatever point it had reached) and then resumed ends with
/// every image once, the killed run's rows kept as they were, and every value what an
/// uninterrupted run writes.
#[test]
fn score_killed_mid_run_resumes_to_the_rows_of_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let model = model();
    // Enough images that one thread is still busy when the first rows appear.
    let all = images("covid19-radiography/Normal", 400);
    let list = dir.path().join("all.txt");
    std::fs::write(&list, all.iter().map(|f| f.display().to_string() + "\n").collect::<String>()).unwrap();
    let score = |out: &Path| {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("cxr"));
        cmd.env("CXR_MODELS", dir.path())
            .current_dir(dir.path())
            .arg("score")
            .arg(&list)
            .arg("-o")
            .arg(out)
            .args(["-j", "1", "--model"])
            .arg(&model);
        cmd
    };
    let killed = dir.path().join("killed.csv");
    let mut child = score(&killed).stderr(std::process::Stdio::null()).spawn().unwrap();
    let rows_in =
        |path: &Path| std::fs::read(path).map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count().saturating_sub(1));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while rows_in(&killed) < 5 {
        assert!(child.try_wait().unwrap().is_none(), "the run ended before it could be killed");
        assert!(std::time::Instant::now() < deadline, "no rows written within 120 s");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), None, "killed by the signal, not finished: {status}");
    let before = std::fs::read_to_string(&killed).unwrap();
    // Whole lines the killed run wrote (a line cut by the kill is not one of them).
    let kept: Vec<&str> = before.split_inclusive('\n').filter(|l| l.ends_with('\n')).skip(1).collect();
    assert!(kept.len() >= 5 && kept.len() < all.len(), "{} rows before the kill", kept.len());

    let resumed = cxr(dir.path())
        .arg("score")
        .arg(&list)
        .arg("-o")
        .arg(&killed)
        .arg("--resume")
        .arg("--model")
        .arg(&model)
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&resumed.get_output().stderr).into_owned();
    assert!(stderr.contains(&format!("{} images to score", all.len() - kept.len())), "{stderr}");
    let after = std::fs::read_to_string(&killed).unwrap();
    let after_rows: Vec<&str> = after.lines().skip(1).collect();
    assert_eq!(
        after_rows[..kept.len()],
        kept.iter().map(|l| l.trim_end_matches('\n')).collect::<Vec<_>>()[..],
        "the killed run's rows are kept as written"
    );

    let whole = dir.path().join("whole.csv");
    let finished = score(&whole).output().unwrap();
    assert!(finished.status.success(), "the uninterrupted run: {}", String::from_utf8_lossy(&finished.stderr));
    let by_path = |path: &Path| {
        let rows = read_csv(path);
        let map: std::collections::BTreeMap<String, csv::StringRecord> =
            rows.iter().map(|r| (r[0].to_owned(), r.clone())).collect();
        assert_eq!(map.len(), rows.len(), "{}: a path scored twice", path.display());
        map
    };
    let (resumed, whole) = (by_path(&killed), by_path(&whole));
    assert_eq!(resumed.len(), all.len());
    assert_eq!(resumed, whole, "killed + resumed differs from one uninterrupted run");
}

/// `dir/data/{covid,normal}/`: six real X-rays of each class.
fn labelled_folder(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    for (class, folder) in [("covid", "covid19-radiography/COVID"), ("normal", "covid19-radiography/Normal")] {
        let target = data.join(class);
        std::fs::create_dir_all(&target).unwrap();
        for f in images(folder, 6) {
            std::fs::copy(&f, target.join(f.file_name().unwrap())).unwrap();
        }
    }
    data
}

#[test]
fn eval_on_a_folder_per_class_writes_metrics_plots_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let model = model();
    let data = labelled_folder(dir.path());
    let report = dir.path().join("report");
    cxr(dir.path())
        .args(["eval", "--data"])
        .arg(&data)
        .arg("--report")
        .arg(&report)
        .arg("--occlude-center")
        .arg("--model")
        .arg(&model)
        .assert()
        .success();
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics["full"]["images"], 12);
    assert_eq!(metrics["full"]["positives"], 6);
    assert!(
        metrics["full"]["at_threshold"]["sensitivity"]["lower"].is_number(),
        "sensitivity has a CI: {}",
        metrics["full"]["at_threshold"]
    );

    // Every score is the model's own (`cxr predict`, a separate path through the code), and the
    // AUCs and the sensitivity are what the scores written give when counted here.
    let rows = read_csv(&report.join("predictions.csv"));
    assert_eq!(rows.len(), 12);
    let paths: Vec<&str> = rows.iter().map(|r| &r[0]).collect();
    let predicted = cxr(dir.path())
        .args(["predict", "--json", "--model"])
        .arg(&model)
        .args(&paths)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let predicted: serde_json::Value = serde_json::from_slice(&predicted).unwrap();
    let score = |row: &csv::StringRecord, column: usize| -> f64 { row[column].parse().unwrap() };
    for (row, p) in rows.iter().zip(predicted["predictions"].as_array().unwrap()) {
        assert!((score(row, 3) - p["p_covid"].as_f64().unwrap()).abs() <= 5e-7, "{row:?} vs predict's {p}");
    }
    let covid: Vec<bool> = rows.iter().map(|r| &r[2] == "covid").collect();
    for (metrics, column) in [(&metrics["full"], 3), (&metrics["occluded_center"], 5)] {
        let scores: Vec<f64> = rows.iter().map(|r| score(r, column)).collect();
        let auc = metrics["auc"]["auc"].as_f64().unwrap();
        assert!((auc - mann_whitney_auc(&scores, &covid)).abs() < 1e-9, "column {column}: AUC {auc}");
    }
    let threshold = ModelCard::load(&ModelCard::path_for(&model)).unwrap().threshold;
    let detected = rows.iter().filter(|r| &r[2] == "covid" && score(r, 3) >= threshold).count();
    assert_eq!(metrics["full"]["at_threshold"]["sensitivity"]["k"], detected, "COVID images at P(covid) ≥ {threshold}");
    for plot in ["roc", "calibration", "confusion", "histogram"] {
        for ext in ["png", "svg"] {
            assert!(report.join(format!("{plot}.{ext}")).is_file(), "{plot}.{ext}");
        }
    }
    let html = std::fs::read_to_string(report.join("report.html")).unwrap();
    assert!(
        html.contains("<svg") && html.contains("AUC") && html.contains("Research use only"),
        "self-contained report"
    );
    assert!(html.contains("Shortcut check") && html.contains("Per source"));
    assert!(!html.contains("src=\""), "no external files referenced");
}

/// Several `--model`s share one decode of each image; each model's scores must be exactly those
/// of its own single-model run, a file that cannot be decoded fails for every model, and every
/// report is still written. Each model after the first is compared with it on the same films
/// (paired AUC difference, |ΔP(covid)|), and `--noise` moves scores the same way in every run.
#[test]
fn eval_of_several_models_gives_each_the_scores_of_its_own_run() {
    let dir = tempfile::tempdir().unwrap();
    let models = [model(), tiny(dir.path(), "second")];
    let data = labelled_folder(dir.path());
    std::fs::write(data.join("covid").join("empty.png"), b"").unwrap();
    let eval = |report: &Path, models: &[PathBuf]| {
        let mut cmd = cxr(dir.path());
        cmd.args(["eval", "--json", "--occlude-center", "--noise", "2", "--data"])
            .arg(&data)
            .arg("--report")
            .arg(report);
        for m in models {
            cmd.arg("--model").arg(m);
        }
        let out = cmd.assert().code(1).get_output().stdout.clone();
        serde_json::from_slice::<serde_json::Value>(&out).unwrap()
    };
    let together = eval(&dir.path().join("together"), &models);
    let reports = together.as_array().expect("a list with several models");
    assert_eq!(reports.len(), 2);
    for (i, m) in models.iter().enumerate() {
        let name = ModelCard::load(&ModelCard::path_for(m)).unwrap().name;
        assert_eq!(reports[i]["model"]["name"], name.as_str(), "reports in --model order");
        assert_eq!(reports[i]["data"]["failed"], 1, "the empty file fails for {name}");
        assert!(reports[i]["failures"][0]["path"].as_str().unwrap().ends_with("empty.png"));
        let alone = eval(&dir.path().join(format!("alone-{i}")), std::slice::from_ref(m));
        assert_eq!(alone["full"]["auc"], reports[i]["full"]["auc"], "{name}");
        let together_csv = read_csv(&dir.path().join("together").join(&name).join("predictions.csv"));
        let alone_csv = read_csv(&dir.path().join(format!("alone-{i}")).join("predictions.csv"));
        assert_eq!(together_csv, alone_csv, "{name}: same scores, full and occluded, as its own run");
        assert!(dir.path().join("together").join(&name).join("report.html").is_file());
        let noise = &reports[i]["noise"];
        assert_eq!(noise["shift"]["films"], 12, "{noise}");
        assert!(noise["shift"]["mean"].as_f64().unwrap() > 0.0, "±2 grey levels moved nothing: {noise}");
        assert_eq!(&alone["noise"], noise, "{name}: the same noise on every run");
    }
    assert!(reports[0].get("versus_first").is_none(), "the first model is the baseline");
    let versus = &reports[1]["versus_first"];
    let names: Vec<String> = models.iter().map(|m| ModelCard::load(&ModelCard::path_for(m)).unwrap().name).collect();
    assert_eq!(versus["baseline"], names[0].as_str());
    assert_eq!(versus["films"], 12, "the films both scored");
    let auc = |r: &serde_json::Value| r["full"]["auc"]["auc"].as_f64().unwrap();
    let difference = versus["auc"]["difference"]["estimate"].as_f64().unwrap();
    assert!((difference - (auc(&reports[1]) - auc(&reports[0]))).abs() < 1e-12, "{versus}");
    let p_covid = |name: &str| -> Vec<f64> {
        read_csv(&dir.path().join("together").join(name).join("predictions.csv"))
            .iter()
            .filter_map(|r| r[3].parse().ok())
            .collect()
    };
    let largest = p_covid(&names[1]).iter().zip(p_covid(&names[0])).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!((versus["p_covid_shift"]["largest"].as_f64().unwrap() - largest).abs() < 1e-6, "{versus} vs {largest}");

    // --ensemble: one more report, whose P(covid) per film is the mean of the members' and whose
    // threshold is the mean of theirs, compared with the first member.
    let mut cmd = cxr(dir.path());
    cmd.args(["eval", "--json", "--ensemble", "--data"]).arg(&data).arg("--report").arg(dir.path().join("ensemble"));
    for m in &models {
        cmd.arg("--model").arg(m);
    }
    let out = cmd.assert().code(1).get_output().stdout.clone();
    let reports: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let ensemble = &reports.as_array().unwrap()[2];
    assert_eq!(ensemble["model"]["name"], format!("ensemble of {} + {}", names[0], names[1]).as_str());
    assert_eq!(ensemble["data"]["failed"], 1, "the empty file fails for the ensemble too");
    let mean_threshold =
        (reports[0]["model"]["threshold"].as_f64().unwrap() + reports[1]["model"]["threshold"].as_f64().unwrap()) / 2.0;
    assert!((ensemble["model"]["threshold"].as_f64().unwrap() - mean_threshold).abs() < 1e-12, "{ensemble}");
    assert_eq!(ensemble["versus_first"]["baseline"], names[0].as_str());
    let averaged: Vec<f64> = read_csv(&dir.path().join("ensemble").join("ensemble").join("predictions.csv"))
        .iter()
        .filter_map(|r| r[3].parse().ok())
        .collect();
    assert_eq!(averaged.len(), 12);
    for ((e, a), b) in averaged.iter().zip(p_covid(&names[0])).zip(p_covid(&names[1])) {
        assert!((e - (a + b) / 2.0).abs() < 2e-6, "ensemble {e}, members {a} and {b}");
    }
    let versus_ensemble = ensemble["versus_first"]["p_covid_shift"]["largest"].as_f64().unwrap();
    assert!(versus_ensemble > 0.0 && versus_ensemble <= largest / 2.0 + 1e-6, "{versus_ensemble} vs {largest}");
}

/// `explain` writes, to the file named, the overlay of exactly the heatmap the library makes by the
/// method asked for: the seed CNN exports no feature map, so it gets occlusion by default; the tiny
/// network has a pooled linear head, so `--method cam` and `--method occlusion` give it two
/// different maps. (Whether the maps themselves are right is checked in cxr-infer's tests against
/// a second implementation.)
#[test]
fn explain_writes_the_heatmap_of_the_method_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = tiny(dir.path(), "tiny");
    let image = &images("covid19-radiography/COVID", 1)[0];
    let img = cxr_core::load_image(image).unwrap();
    let runs = [
        (model(), None, Method::Occlusion),
        (tiny.clone(), Some("cam"), Method::ClassActivationMap),
        (tiny, Some("occlusion"), Method::Occlusion),
    ];
    let mut written = Vec::new();
    for (i, (model_path, flag, method)) in runs.iter().enumerate() {
        let out = dir.path().join(format!("heat-{i}.png"));
        let mut cmd = cxr(dir.path());
        cmd.arg("explain").arg(image).arg("--out").arg(&out).arg("--model").arg(model_path);
        if let Some(flag) = flag {
            cmd.args(["--method", flag]);
        }
        let stdout = String::from_utf8(cmd.assert().success().get_output().stdout.clone()).unwrap();
        assert!(stdout.contains(&format!("{} heatmap", method.as_str())), "{}: {stdout}", model_path.display());

        let model = cxr_infer::Model::load(model_path).unwrap();
        let heat = model.session().explain(&img, Some(*method)).unwrap();
        assert_eq!(heat.method, *method);
        // Drawn over the film at the film's own resolution.
        let expected =
            cxr_infer::explain::overlay(&img, &model.card.preprocess.to_film(&heat.image(), img.width, img.height));
        let png = image::open(&out).unwrap().to_rgb8();
        assert_eq!(png.dimensions(), (img.width, img.height));
        assert!(png == expected, "{}: {out:?} is not the overlay of its {method:?} map", model_path.display());
        written.push(png);
    }
    assert!(written[1] != written[2], "CAM and occlusion maps of the tiny network are the same picture");
}

#[test]
fn a_model_whose_card_sha256_does_not_match_is_refused_naming_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny(dir.path(), "tiny");
    let mut bytes = std::fs::read(&model).unwrap();
    bytes.push(0);
    std::fs::write(&model, bytes).unwrap();
    let image = &images("covid19-radiography/COVID", 1)[0];
    let assert = cxr(dir.path()).arg("predict").arg(image).arg("--model").arg(&model).assert().code(2);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(stderr.contains("sha256") && stderr.contains("tiny.onnx") && stderr.contains("tiny.card.json"), "{stderr}");
}

#[test]
fn a_file_that_is_not_onnx_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let image = &images("covid19-radiography/COVID", 1)[0];
    let fake = dir.path().join("fake.onnx");
    std::fs::copy(image, &fake).unwrap();
    let bytes = std::fs::read(&fake).unwrap();
    TinyCnn::default().card("fake", "fake.onnx", &bytes).save(&ModelCard::path_for(&fake)).unwrap();
    let assert = cxr(dir.path()).arg("predict").arg(image).arg("--model").arg(&fake).assert().code(2);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(stderr.contains("fake.onnx") && stderr.contains("not an ONNX model"), "{stderr}");
}

#[test]
fn models_lists_cards_info_prints_one_and_bench_measures_it() {
    let dir = tempfile::tempdir().unwrap();
    tiny(dir.path(), "tiny-a");
    TinyCnn { int8: true, ..TinyCnn::default() }.write(dir.path(), "tiny-b").unwrap();
    TinyCnn { class_set: ClassSet::ThreeClass, ..TinyCnn::default() }
        .write(dir.path(), "tiny-three-class-with-a-long-name")
        .unwrap();
    let out = cxr(dir.path()).arg("models").assert().success().get_output().stdout.clone();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("tiny-a") && text.contains("tiny-b") && text.contains("int8"), "{text}");
    // One column per field however long a name is, and the class set shown.
    let architecture_at: Vec<usize> =
        text.lines().filter(|l| l.starts_with("tiny")).map(|l| l.find("tiny-cnn").unwrap()).collect();
    assert!(architecture_at.len() == 3 && architecture_at.iter().all(|&c| c == architecture_at[0]), "{text}");
    assert!(text.lines().any(|l| l.starts_with("tiny-three-class") && l.contains("three-class")), "{text}");
    assert!(text.lines().any(|l| l.starts_with("tiny-a ") && l.contains("binary")), "{text}");

    let out = cxr(dir.path()).args(["info", "tiny-b"]).assert().success().get_output().stdout.clone();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("tiny-cnn") && text.contains("sha256") && text.contains("threshold"), "{text}");

    let out = cxr(dir.path())
        .args(["bench", "--json", "--runs", "3", "--model", "tiny-a", "--model", "tiny-b"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let results: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let results = results.as_array().unwrap();
    assert_eq!(results.len(), 2);
    // The int8 model runs as f32 products unless told otherwise, and says so.
    assert_eq!(
        (results[0]["kernels"].as_str(), results[1]["kernels"].as_str()),
        (Some("f32"), Some("f32")),
        "{results:?}"
    );
    let out = cxr(dir.path())
        .env("CXR_INT8_KERNELS", "integer")
        .args(["bench", "--json", "--runs", "1", "--model", "tiny-b"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let integer: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(integer[0]["kernels"], "int8", "{integer}");
    // One image on two threads (latency), and images on all cores (throughput) with that model.
    let out = cxr(dir.path())
        .args(["bench", "--json", "--runs", "3", "--model", "tiny-a", "--threads-per-image", "2", "--jobs", "2"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let threaded: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(threaded[0]["threads_per_image"], 2, "{threaded}");
    assert!(threaded[0]["throughput_images_per_s"].as_f64().is_some_and(|v| v > 0.0), "{threaded}");
    for r in results {
        for field in [
            "load_ms",
            "first_inference_ms",
            "latency_p50_ms",
            "latency_p95_ms",
            "throughput_images_per_s",
            "file_size_bytes",
        ] {
            assert!(r[field].as_f64().is_some_and(|v| v > 0.0), "{field}: {r}");
        }
    }
    // The table keeps its columns under their headers with a name longer than any default width.
    let out = cxr(dir.path())
        .args(["bench", "--runs", "2", "--model", "tiny-a", "--model", "tiny-three-class-with-a-long-name"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    let precision_at: Vec<usize> = text.lines().map(|l| l.find("PREC").or_else(|| l.find("fp32")).unwrap()).collect();
    assert!(precision_at.len() == 3 && precision_at.iter().all(|&c| c == precision_at[0]), "{text}");
}
