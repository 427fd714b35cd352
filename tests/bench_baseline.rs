//! `cxr bench --save` / `--baseline`: a model that got slower is caught, an unchanged one is not.
//!
//! The slower model is the same network on a larger input (320² against 256², 56 % more
//! convolution work), saved under the same name, as a commit that made the shipped model
//! heavier would be. The comparison divides each latency by a reference network's timed in the
//! same run, so the verdicts do not depend on how fast or busy the machine is. (A 27 % heavier
//! model, 288², was flagged in 10 of 10 runs at 10 % on the 2-core development machine while it
//! trained a network, and the unchanged one in none, at most +8.4 %; the limit here leaves room
//! for a busier CI machine.)

use assert_cmd::Command;
use cxr_infer::tiny_cnn::TinyCnn;
use std::path::Path;

fn bench(model: &Path, extra: &[&str]) -> std::process::Output {
    let mut cmd = Command::cargo_bin("cxr").unwrap();
    cmd.args(["bench", "--runs", "300", "-j", "1", "-m"]).arg(model).args(extra);
    cmd.output().unwrap()
}

#[test]
fn an_injected_slowdown_fails_the_baseline_check_and_an_unchanged_model_passes() {
    let dir = tempfile::tempdir().unwrap();
    let (before, after) = (dir.path().join("before"), dir.path().join("after"));
    std::fs::create_dir_all(&before).unwrap();
    std::fs::create_dir_all(&after).unwrap();
    let fast = TinyCnn { size: 256, ..Default::default() }.write(&before, "net").unwrap();
    let slow = TinyCnn { size: 320, ..Default::default() }.write(&after, "net").unwrap();
    let baseline = dir.path().join("baseline.json");
    let saved = bench(&fast, &["--save", baseline.to_str().unwrap()]);
    assert!(saved.status.success(), "{}", String::from_utf8_lossy(&saved.stderr));
    let rows: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&baseline).unwrap()).unwrap();
    assert!(rows[0]["relative_p50"].as_f64().unwrap() > 0.0);

    let same = bench(&fast, &["--baseline", baseline.to_str().unwrap(), "--max-slowdown", "15"]);
    let report = String::from_utf8_lossy(&same.stdout);
    assert_eq!(same.status.code(), Some(0), "an unchanged model was flagged:\n{report}");
    assert!(report.contains(" ok"), "{report}");
    eprintln!("{report}");

    let slower = bench(&slow, &["--baseline", baseline.to_str().unwrap(), "--max-slowdown", "15"]);
    let report = String::from_utf8_lossy(&slower.stdout);
    assert_eq!(slower.status.code(), Some(1), "a 56 % heavier model passed:\n{report}");
    assert!(report.contains("SLOWER"), "{report}");
    eprintln!("{report}");
    assert!(String::from_utf8_lossy(&slower.stderr).contains("net (+"));
}
