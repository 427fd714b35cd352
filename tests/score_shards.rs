//! `cxr score --shard K/N` and `--merge` end to end on real X-rays with the shipped seed CNN:
//! the shards split the inputs disjointly and completely (for every shard count from 1 to 8), a
//! shard does not change when its task names the inputs by another path, the merge equals an
//! unsharded run row for row, and a lost or repeated shard is refused.

use assert_cmd::Command;
use cxr_test_support::{datasets, workspace};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn cxr(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("cxr").unwrap();
    cmd.current_dir(dir).env("CXR_MODELS", workspace().join("models"));
    cmd
}

/// Rows of a score CSV by canonical path (relative paths are under the CSV's folder, where the
/// runs that wrote them worked): (p_covid, error).
fn rows(path: &Path) -> BTreeMap<PathBuf, (String, String)> {
    let base = path.parent().unwrap();
    let mut reader = csv::Reader::from_path(path).unwrap();
    let mut rows = BTreeMap::new();
    for r in reader.records() {
        let r = r.unwrap();
        let file = std::fs::canonicalize(base.join(&r[0])).unwrap();
        assert!(
            rows.insert(file, (r[1].to_owned(), r[r.len() - 1].to_owned())).is_none(),
            "{} twice in {}",
            &r[0],
            path.display()
        );
    }
    rows
}

#[test]
fn shards_cover_every_image_once_and_merge_to_the_unsharded_run() {
    let datasets = datasets();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    for (from, to, n) in
        [("covid19-radiography/COVID", "ward-a", 25), ("nih-chestxray14-sample/No_findings", "ward-b/2020", 25)]
    {
        std::fs::create_dir_all(data.join(to)).unwrap();
        let mut names: Vec<_> =
            std::fs::read_dir(datasets.join(from)).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        for name in &names[..n] {
            std::fs::copy(datasets.join(from).join(name), data.join(to).join(name)).unwrap();
        }
    }
    std::fs::write(data.join("ward-b/empty.png"), b"").unwrap();

    cxr(dir.path()).args(["score", "ward-a", "ward-b", "--out", "full.csv"]).assert().code(1);
    let full = rows(&dir.path().join("full.csv"));
    assert_eq!(full.len(), 51);

    // Task 1 runs elsewhere and names the folders by their absolute paths: same shard.
    let elsewhere = tempfile::tempdir().unwrap();
    let mut union = BTreeSet::new();
    let mut parts = Vec::new();
    for k in 0..3 {
        let part = dir.path().join(format!("part-{k}.csv"));
        let (cwd, inputs) = if k == 1 {
            (elsewhere.path(), [data.join("ward-a"), data.join("ward-b")])
        } else {
            (dir.path(), ["ward-a".into(), "ward-b".into()])
        };
        cxr(cwd)
            .arg("score")
            .args(inputs)
            .args(["--shard", &format!("{k}/3"), "--out"])
            .arg(&part)
            .assert()
            .code(predicates::ord::le(1));
        let shard = rows(&part);
        assert!((8..=30).contains(&shard.len()), "shard {k} holds {} of 51", shard.len());
        for (file, row) in &shard {
            assert!(union.insert(file.clone()), "{} in two shards", file.display());
            assert_eq!(row, &full[file], "{}: the shard scored it differently", file.display());
        }
        parts.push(part);
    }
    assert_eq!(union, full.keys().cloned().collect());
    let again = dir.path().join("part-1-again.csv");
    cxr(dir.path())
        .args(["score", "ward-b", "ward-a", "--shard", "1/3", "--out"])
        .arg(&again)
        .assert()
        .code(predicates::ord::le(1));
    assert_eq!(
        rows(&again).keys().collect::<Vec<_>>(),
        rows(&parts[1]).keys().collect::<Vec<_>>(),
        "listing the inputs in another order moved files between shards"
    );

    // The merge holds every input once, the 0-byte file as its error row, and exits 1 for it.
    let merge = |shards: &[&PathBuf], out: &str| {
        let mut cmd = cxr(dir.path());
        cmd.args(["score", "ward-a", "ward-b", "--out", out, "--merge"]).args(shards);
        cmd.assert()
    };
    merge(&[&parts[0], &parts[1], &parts[2]], "merged.csv").code(1);
    assert_eq!(rows(&dir.path().join("merged.csv")), full);
    assert!(full.iter().any(|(f, (_, e))| f.ends_with("empty.png") && !e.is_empty()));

    // Every shard count from 1 to 8 merges back to the unsharded run, row for row.
    for n in 1..=8 {
        let shards: Vec<PathBuf> = (0..n).map(|k| dir.path().join(format!("n{n}-{k}.csv"))).collect();
        for (k, part) in shards.iter().enumerate() {
            cxr(dir.path())
                .args(["score", "ward-a", "ward-b", "--shard", &format!("{k}/{n}"), "--out"])
                .arg(part)
                .assert()
                .code(predicates::ord::le(1));
        }
        merge(&shards.iter().collect::<Vec<_>>(), &format!("merged-{n}.csv")).code(1);
        assert_eq!(rows(&dir.path().join(format!("merged-{n}.csv"))), full, "{n} shards");
    }

    merge(&[&parts[0], &parts[2]], "lost.csv").failure().stderr(predicates::str::contains("have no row"));
    merge(&[&parts[0], &parts[1], &parts[2], &parts[2]], "twice.csv")
        .failure()
        .stderr(predicates::str::contains("have two rows"));
    assert!(!dir.path().join("lost.csv").exists() && !dir.path().join("twice.csv").exists());
    merge(&[&parts[0], &parts[1], &parts[2]], "merged.csv")
        .failure()
        .stderr(predicates::str::contains("already exists"));
}
