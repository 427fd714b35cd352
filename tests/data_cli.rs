//! `cxr data index` and `cxr data stats` end to end, on small copies of the real collections
//! (`../shared/datasets`, or `CXR_DATASETS`) laid out in a temporary folder.

use assert_cmd::Command;
use cxr_test_support::datasets;
use predicates::prelude::*;
use std::path::{Path, PathBuf};

/// The first `n` files of a dataset folder, copied into `to` (created).
fn copy_first(from: &Path, to: &Path, n: usize) -> Vec<String> {
    std::fs::create_dir_all(to).unwrap();
    let mut names: Vec<String> =
        std::fs::read_dir(from).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names.truncate(n);
    for name in &names {
        std::fs::copy(from.join(name), to.join(name)).unwrap();
    }
    names
}

/// Five collections in their upstream layouts, a few dozen images, with one picture copied
/// from chest_xray into covid19-radiography under another name (as upstream did).
fn small_collections(dir: &Path) -> PathBuf {
    let src = datasets();
    let data = dir.join("datasets");
    copy_first(&src.join("chest_xray/train/NORMAL"), &data.join("chest_xray/train/NORMAL"), 8);
    copy_first(&src.join("chest_xray/test/PNEUMONIA"), &data.join("chest_xray/test/PNEUMONIA"), 8);
    copy_first(&src.join("covid19-radiography/COVID"), &data.join("covid19-radiography/COVID"), 8);
    copy_first(&src.join("nih-chestxray14-sample/No_findings"), &data.join("covid19-radiography/Normal"), 0);
    let kermany = copy_first(&src.join("chest_xray/train/NORMAL"), &data.join("scratch"), 1);
    std::fs::rename(data.join("scratch").join(&kermany[0]), data.join("covid19-radiography/Normal/Normal-9999.jpg"))
        .unwrap();
    std::fs::remove_dir(data.join("scratch")).unwrap();
    copy_first(&src.join("nih-chestxray14-sample/No_findings"), &data.join("nih-chestxray14-sample/No_findings"), 5);
    copy_first(&src.join("nih-chestxray14-sample/Pneumonia"), &data.join("nih-chestxray14-sample/Pneumonia"), 5);
    let hannover = data.join("hannover-covid");
    let csv = std::fs::read_to_string(src.join("hannover-covid/data.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().take(7).collect();
    std::fs::create_dir_all(hannover.join("png")).unwrap();
    for row in &rows[1..] {
        let image_id = row.split(',').nth(1).unwrap();
        std::fs::copy(
            src.join(format!("hannover-covid/png/{image_id}.png")),
            hannover.join(format!("png/{image_id}.png")),
        )
        .unwrap();
    }
    std::fs::write(hannover.join("data.csv"), rows.join("\n") + "\n").unwrap();
    data
}

fn cxr() -> Command {
    Command::cargo_bin("cxr").unwrap()
}

#[test]
fn index_then_stats_on_real_images_in_their_layouts() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_collections(dir.path());
    let manifest = dir.path().join("manifest.csv");
    cxr().args(["data", "index"]).arg(&data).arg("--out").arg(&manifest).assert().success().stdout(
        predicate::str::contains("chest_xray (Kermany chest_xray").and(predicate::str::contains("hannover-covid")),
    );

    let csv = std::fs::read_to_string(&manifest).unwrap();
    assert!(
        csv.starts_with("path,source,patient_id,view,label,width,height,phash,dup_group,split_group,split\n"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 1 + 16 + 9 + 10 + 6);
    assert!(Path::new(&dir.path().join("manifest.json")).is_file());

    cxr().args(["data", "stats"]).arg(&manifest).assert().success().stdout(
        predicate::str::contains("leakage check: OK")
            .and(predicate::str::contains("1 across sources"))
            .and(predicate::str::contains("chest_xray ↔ covid19-radiography: 1 groups")),
    );

    // Same seed → byte-identical manifest; holdout → only that source in `holdout`.
    let again = dir.path().join("again.csv");
    cxr().args(["data", "index"]).arg(&data).arg("--out").arg(&again).assert().success();
    assert_eq!(csv, std::fs::read_to_string(&again).unwrap());
    let held = dir.path().join("held.csv");
    cxr()
        .args(["data", "index"])
        .arg(&data)
        .args(["--holdout-source", "hannover-covid", "--out"])
        .arg(&held)
        .assert()
        .success();
    for line in std::fs::read_to_string(&held).unwrap().lines().skip(1) {
        assert_eq!(line.contains(",hannover-covid,"), line.ends_with(",holdout"), "{line}");
    }
    cxr().args(["data", "stats"]).arg(&held).assert().success().stdout(predicate::str::contains("holdout"));

    cxr()
        .args(["data", "index"])
        .arg(&data)
        .args(["--holdout-source", "no-such-source", "--out"])
        .arg(dir.path().join("x.csv"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no-such-source").and(predicate::str::contains("hannover-covid")));
}

#[test]
fn stats_fails_when_a_patient_straddles_two_splits() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_collections(dir.path());
    let manifest = dir.path().join("manifest.csv");
    cxr().args(["data", "index"]).arg(data.join("hannover-covid")).arg("--out").arg(&manifest).assert().success();
    // Move one image of a patient to another split than its siblings.
    let csv = std::fs::read_to_string(&manifest).unwrap();
    let mut lines: Vec<String> = csv.lines().map(str::to_owned).collect();
    let split_of = |l: &str| l.rsplit(',').next().unwrap().to_owned();
    let first = split_of(&lines[1]);
    let other = if first == "train" { "test" } else { "train" };
    let patient = lines[1].split(',').nth(2).unwrap().to_owned();
    let sibling = (2..lines.len()).find(|&i| lines[i].split(',').nth(2) == Some(patient.as_str()));
    let target = sibling.unwrap_or(1);
    let cut = lines[target].rfind(',').unwrap();
    lines[target] = format!("{},{other}", &lines[target][..cut]);
    if sibling.is_none() {
        // A single-image patient cannot straddle; tamper a duplicate row instead.
        let copy = lines[1].clone();
        lines.push(format!("{},{}", &copy[..copy.rfind(',').unwrap()], first));
    }
    std::fs::write(&manifest, lines.join("\n") + "\n").unwrap();
    cxr()
        .args(["data", "stats"])
        .arg(&manifest)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("leakage check: FAILED"));
}

#[test]
fn bad_files_are_warned_about_and_the_rest_indexed() {
    let dir = tempfile::tempdir().unwrap();
    let src = datasets();
    let bad = dir.path().join("mixed");
    copy_first(&src.join("covid19-radiography/COVID"), &bad.join("COVID"), 3);
    copy_first(&src.join("nih-chestxray14-sample/No_findings"), &bad.join("normal"), 3);
    std::fs::write(bad.join("normal/empty.png"), b"").unwrap();
    let jpeg = std::fs::read(src.join("covid19-radiography/COVID/COVID-1.jpg")).unwrap();
    std::fs::write(bad.join("COVID/truncated.jpg"), &jpeg[..jpeg.len() / 3]).unwrap();
    std::fs::write(bad.join("COVID/notes.jpg"), b"not a picture").unwrap();
    std::fs::write(bad.join("normal/readme.txt"), b"text").unwrap();
    let junk = dir.path().join("junk");
    std::fs::create_dir_all(junk.join("stuff")).unwrap();
    let manifest = dir.path().join("m.csv");
    cxr()
        .args(["data", "index"])
        .arg(&bad)
        .arg(&junk)
        .arg("--out")
        .arg(&manifest)
        .assert()
        .code(1)
        .stdout(
            predicate::str::contains("skipped empty image file (0 bytes): 1")
                .and(predicate::str::contains("skipped undecodable or truncated image: 1"))
                .and(predicate::str::contains("skipped not a PNG, JPEG or DICOM file: 1"))
                .and(predicate::str::contains("skipped not an image file name (extension): 1")),
        )
        .stderr(predicate::str::contains("junk").and(predicate::str::contains("not a dataset layout")));
    assert_eq!(std::fs::read_to_string(&manifest).unwrap().lines().count(), 1 + 6);
}
