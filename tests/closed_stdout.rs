//! Every command that prints, run with nobody left reading its stdout (`cxr predict --json … | head
//! -1`): it must finish its work and exit with its usual status, quietly, where `println!` used
//! to panic with "failed printing to stdout: Broken pipe". Real X-rays from `../shared/datasets`,
//! the shipped `models/seed-cnn` and the stored `models/splits/within-source-all.csv` manifest.

mod common;

use common::{images, model};
use cxr_test_support::workspace;
use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn cxr(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cxr"));
    cmd.current_dir(dir).env("CXR_MODELS", workspace().join("models"));
    cmd
}

/// Runs `cmd` with its stdout a pipe whose read end is already closed, so its first write fails.
fn with_stdout_closed(mut cmd: Command) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    cmd.stdin(Stdio::null()).stdout(writer).stderr(Stdio::piped()).spawn().unwrap().wait_with_output().unwrap()
}

fn assert_quiet(what: &str, output: &Output, code: i32) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    for sign in ["panicked", "failed printing", "Broken pipe", "stdout"] {
        assert!(!stderr.contains(sign), "{what}: stderr mentions `{sign}`:\n{stderr}");
    }
    assert_eq!(output.status.code(), Some(code), "{what}: {:?}\n{stderr}", output.status);
}

#[test]
fn every_printing_command_exits_quietly_when_stdout_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let films = [images("covid19-radiography/COVID", 3), images("covid19-radiography/Normal", 3)].concat();
    let data = dir.path().join("data");
    for (class, folder) in [("covid", "covid19-radiography/COVID"), ("normal", "covid19-radiography/Normal")] {
        std::fs::create_dir_all(data.join(class)).unwrap();
        for f in images(folder, 4) {
            std::fs::copy(&f, data.join(class).join(f.file_name().unwrap())).unwrap();
        }
    }
    let manifest = workspace().join("models/splits/within-source-all.csv");
    let folds = dir.path().join("folds");
    let report = dir.path().join("report");
    let heatmap = dir.path().join("heat.png");

    let runs: Vec<(&str, Vec<String>)> = vec![
        ("predict", vec!["predict".into()]),
        ("predict --json", vec!["predict".into(), "--json".into()]),
        ("data stats", vec!["data".into(), "stats".into(), manifest.display().to_string()]),
        (
            "data folds",
            vec![
                "data".into(),
                "folds".into(),
                manifest.display().to_string(),
                "--source".into(),
                "covid-chestxray-dataset".into(),
                "--folds".into(),
                "3".into(),
                "--out".into(),
                folds.display().to_string(),
            ],
        ),
        ("models", vec!["models".into()]),
        ("models --json", vec!["models".into(), "--json".into()]),
        ("info", vec!["info".into(), "seed-cnn".into()]),
        ("info --json", vec!["info".into(), "seed-cnn".into(), "--json".into()]),
        (
            "eval",
            vec![
                "eval".into(),
                "--data".into(),
                data.display().to_string(),
                "--report".into(),
                report.display().to_string(),
            ],
        ),
        (
            "explain",
            vec!["explain".into(), films[0].display().to_string(), "--out".into(), heatmap.display().to_string()],
        ),
    ];
    for (what, args) in runs {
        let mut cmd = cxr(dir.path());
        cmd.args(&args);
        match args[0].as_str() {
            "predict" => {
                cmd.arg("--model").arg(model()).args(&films);
            }
            "eval" | "explain" => {
                cmd.arg("--model").arg(model());
            }
            _ => {}
        }
        assert_quiet(what, &with_stdout_closed(cmd), 0);
    }
    // The work behind the output is done all the same: `data folds` prints between its files.
    for fold in 0..3 {
        assert!(folds.join(format!("fold-{fold}.csv")).is_file(), "fold {fold} written");
    }
    assert!(report.join("metrics.json").is_file(), "eval's report written");
    assert!(heatmap.is_file(), "explain's heatmap written");
}

/// `cxr predict --json` on 400 films (about 100 kB of JSON, more than a pipe holds) into a reader
/// that takes one line and leaves, as `| head -1` does.
#[test]
fn predict_json_into_head_exits_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let films = [images("covid19-radiography/COVID", 200), images("covid19-radiography/Normal", 200)].concat();
    let mut child = cxr(dir.path())
        .args(["predict", "--json", "--model"])
        .arg(model())
        .args(&films)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert_eq!(first, "{\n");
    assert_quiet("predict --json | head -1", &child.wait_with_output().unwrap(), 0);
}
