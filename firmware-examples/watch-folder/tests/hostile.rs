//! Files that would take the service down: one too big to read into a Pi's memory, and one
//! that kills the process while it is scored (as an out-of-memory kill does, which no panic
//! handler sees). Each must end in `failed/` with its reason while the other images are scored.

use cxr_test_support::datasets;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn real_xray() -> PathBuf {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(datasets().join("covid19-radiography/COVID")).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files.remove(0)
}

/// One pass over the inbox (`--once`), with extra arguments.
fn watch_once(inbox: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cxr-watch"))
        .arg("--inbox")
        .arg(inbox)
        .args(["--settle-ms", "0", "--poll-ms", "10", "--once"])
        .args(extra)
        .output()
        .unwrap()
}

/// The CSV's rows by file name.
fn rows(inbox: &Path) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_path(inbox.join("results.csv")).unwrap();
    let header = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|r| {
            let row: BTreeMap<String, String> =
                header.iter().zip(r.unwrap().iter()).map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
            (row["file"].clone(), row)
        })
        .collect()
}

#[test]
fn a_huge_file_is_refused_from_its_header_and_filed_as_failed() {
    let inbox = tempfile::tempdir().unwrap();
    let real = real_xray();
    std::fs::copy(&real, inbox.path().join("a.jpg")).unwrap();
    // The real JPEG's header, then a 3 GB hole: reading it whole would need 3 GB of memory.
    let big = inbox.path().join("big.jpg");
    std::fs::copy(&real, &big).unwrap();
    std::fs::OpenOptions::new().write(true).open(&big).unwrap().set_len(3 << 30).unwrap();

    let output = watch_once(inbox.path(), &[]);
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stderr));
    let rows = rows(inbox.path());
    assert_eq!(rows.len(), 2);
    assert!(rows["a.jpg"]["error"].is_empty() && rows["a.jpg"]["moved_to"] == "done/a.jpg");
    let big_row = &rows["big.jpg"];
    assert_eq!(big_row["moved_to"], "failed/big.jpg");
    assert_eq!(big_row["bytes"], (3u64 << 30).to_string());
    assert!(
        big_row["error"].contains("big.jpg: 3221225472 bytes, more than a ")
            && big_row["error"].contains("refusing to read it"),
        "{big_row:?}"
    );
    assert!(inbox.path().join("failed/big.jpg").exists());
}

#[test]
fn a_file_that_killed_the_service_twice_goes_to_failed_instead_of_a_third_try() {
    let inbox = tempfile::tempdir().unwrap();
    let real = real_xray();
    std::fs::copy(&real, inbox.path().join("a-poison.jpg")).unwrap();
    std::fs::copy(&real, inbox.path().join("b-fine.jpg")).unwrap();
    let crash = ["--crash-while-scoring", "a-poison.jpg"];

    // The poison file comes first (name order) and kills the service each time: a restart loop.
    for attempt in 1..=2 {
        let output = watch_once(inbox.path(), &crash);
        assert!(
            output.status.code().is_none(),
            "attempt {attempt}: expected the service to die, got {}",
            output.status
        );
        assert!(inbox.path().join("a-poison.jpg").exists() && inbox.path().join("b-fine.jpg").exists());
    }
    // Third start: the file that killed it twice is filed as failed without scoring, and the rest goes on.
    let output = watch_once(inbox.path(), &crash);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let rows = rows(inbox.path());
    assert_eq!(rows.len(), 2, "{rows:?}");
    let poison = &rows["a-poison.jpg"];
    assert_eq!(poison["moved_to"], "failed/a-poison.jpg");
    assert!(
        poison["error"].contains("a-poison.jpg: the service died 2 times in a row while scoring this file"),
        "{poison:?}"
    );
    assert_eq!(rows["b-fine.jpg"]["moved_to"], "done/b-fine.jpg");
    assert!(inbox.path().join("failed/a-poison.jpg").exists() && inbox.path().join("done/b-fine.jpg").exists());
    assert!(!inbox.path().join(".cxr-watch-scoring").exists(), "the marker is removed once scoring returns");
}
