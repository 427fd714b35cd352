//! End to end, on real X-rays: the service is started on a temp inbox holding images, a
//! corrupt file and an empty one, aborted at the worst moment (row written, image not moved),
//! killed at an arbitrary one, restarted; every image must then appear exactly once in the CSV
//! and exactly once in `done/` or `failed/`.

use cxr_test_support::datasets;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// `n` real X-rays from two collections, COVID and not.
fn xrays(n: usize) -> Vec<PathBuf> {
    let d = datasets();
    let folders = [
        "covid19-radiography/COVID",
        "covid19-radiography/Normal",
        "chest_xray/test/PNEUMONIA",
        "chest_xray/test/NORMAL",
    ];
    let mut all: Vec<Vec<PathBuf>> = folders
        .iter()
        .map(|f| {
            let mut files: Vec<PathBuf> = std::fs::read_dir(d.join(f)).unwrap().map(|e| e.unwrap().path()).collect();
            files.sort();
            files
        })
        .collect();
    (0..n).map(|i| all[i % folders.len()].remove(0)).collect()
}

fn watch(inbox: &Path, settle_ms: u32) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cxr-watch"));
    cmd.arg("--inbox").arg(inbox).args(["--settle-ms", &settle_ms.to_string(), "--poll-ms", "50"]);
    cmd
}

/// The CSV's rows as column → value maps.
fn rows(inbox: &Path) -> Vec<BTreeMap<String, String>> {
    let Ok(mut reader) = csv::Reader::from_path(inbox.join("results.csv")) else { return vec![] };
    let header = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|r| header.iter().zip(r.unwrap().iter()).map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
        .collect()
}

fn wait_for_rows(inbox: &Path, n: usize, child: &mut Child) {
    let start = Instant::now();
    while rows(inbox).len() < n {
        assert!(child.try_wait().unwrap().is_none(), "the service exited early");
        assert!(start.elapsed() < Duration::from_secs(300), "no {n} rows after 5 minutes");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn every_image_is_scored_and_filed_exactly_once_across_crashes_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path();
    let mut expected = BTreeMap::new();
    for (i, src) in xrays(10).iter().enumerate() {
        let name = format!("{i:02}-{}", src.file_name().unwrap().to_string_lossy());
        expected.insert(name.clone(), std::fs::read(src).unwrap());
        std::fs::copy(src, inbox.join(name)).unwrap();
    }
    let corrupt = b"\x89PNG\r\n\x1a\nthis is not a PNG beyond its signature".to_vec();
    for (name, bytes) in [("corrupt.png", corrupt), ("empty.jpg", vec![])] {
        std::fs::write(inbox.join(name), &bytes).unwrap();
        expected.insert(name.to_owned(), bytes);
    }

    // 1. Abort right after the third row is fsynced, before its image is moved.
    let status = watch(inbox, 100).args(["--once", "--crash-after-rows", "3"]).status().unwrap();
    assert!(!status.success());
    let after_abort = rows(inbox);
    assert_eq!(after_abort.len(), 3);
    assert!(inbox.join(&after_abort[2]["file"]).exists(), "the third image was recorded but not moved");

    // 2. Run as a service and kill it (SIGKILL) as soon as it has written a row of its own.
    let mut service = watch(inbox, 100).spawn().unwrap();
    wait_for_rows(inbox, 4, &mut service);
    service.kill().unwrap();
    service.wait().unwrap();

    // 3. Finish. `--once` exits 1 when an image failed *in that run*; a fast machine may have
    // filed the corrupt and the empty file before the kill landed, so the expected status
    // follows from what the killed service left in the inbox.
    let failing_left = ["corrupt.png", "empty.jpg"].iter().any(|n| inbox.join(n).exists());
    let status = watch(inbox, 100).arg("--once").status().unwrap();
    assert_eq!(
        status.code(),
        Some(if failing_left { 1 } else { 0 }),
        "failing files left for the last run: {failing_left}"
    );

    let rows = rows(inbox);
    let mut names: Vec<&str> = rows.iter().map(|r| r["file"].as_str()).collect();
    names.sort();
    assert_eq!(names, expected.keys().map(String::as_str).collect::<Vec<_>>(), "every file exactly once in the CSV");
    assert_eq!(files_in(inbox), vec!["results.csv"], "nothing left in the inbox");
    let mut filed: Vec<String> =
        files_in(&inbox.join("done")).into_iter().chain(files_in(&inbox.join("failed"))).collect();
    filed.sort();
    assert_eq!(filed, names, "every file exactly once in done/ or failed/");
    for row in &rows {
        let name = &row["file"];
        let filed_bytes = std::fs::read(inbox.join(&row["moved_to"])).unwrap();
        assert_eq!(filed_bytes, expected[name], "{name}: filed content");
        assert_eq!(row["sha256"], cxr_core::card::sha256_hex(&filed_bytes), "{name}");
        if name == "corrupt.png" || name == "empty.jpg" {
            assert!(row["moved_to"].starts_with("failed/"), "{row:?}");
            assert!(row["p_covid"].is_empty() && row["error"].contains(name.as_str()), "error names the file: {row:?}");
        } else {
            assert!(row["moved_to"].starts_with("done/"), "{row:?}");
            let p: f32 = row["p_covid"].parse().unwrap();
            assert!((0.0..=1.0).contains(&p) && !row["class"].is_empty() && row["error"].is_empty(), "{row:?}");
        }
    }
    let by_name = |n: &str| rows.iter().find(|r| r["file"] == n).unwrap().clone();
    assert!(by_name("empty.jpg")["error"].contains("empty file"), "{:?}", by_name("empty.jpg"));
    assert!(by_name("corrupt.png")["error"].contains("cannot decode"), "{:?}", by_name("corrupt.png"));
}

/// A slow copy in three parts, each appended 0.6 settle times after the service logged the last
/// (events, not guesses at how long that takes): the copy lasts longer than the settle time, but
/// no part waits that long, so only a service that restarts its clock on every change scores the
/// whole image. Whether each part really came within the settle time is measured, not assumed:
/// an attempt where the machine stalled longer proves nothing and is run again with a longer
/// settle time, so a slow machine cannot fail the test and a service that scores a partly copied
/// file always does.
#[test]
fn a_file_still_being_copied_in_waits_until_it_is_complete() {
    use std::io::{BufRead, Write};
    let image = std::fs::read(&xrays(1)[0]).unwrap();
    let cuts = [image.len() / 3, 2 * image.len() / 3, image.len()];
    for settle_ms in [1500u32, 6000, 24000, 96000] {
        let settle = Duration::from_millis(settle_ms.into());
        let dir = tempfile::tempdir().unwrap();
        let inbox = dir.path();
        let mut service = watch(inbox, settle_ms).stderr(std::process::Stdio::piped()).spawn().unwrap();
        let (lines, log) = std::sync::mpsc::channel();
        let stderr = service.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        let seen = |len: usize| {
            let wanted = format!("slow.jpg: {len} bytes");
            let deadline = Instant::now() + Duration::from_secs(300);
            while !log
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("the service never logged the part")
                .contains(&wanted)
            {}
        };
        let mut written = Instant::now();
        std::fs::write(inbox.join("slow.jpg"), &image[..cuts[0]]).unwrap();
        let mut in_time = true;
        for part in cuts.windows(2) {
            seen(part[0]);
            std::thread::sleep((written + settle * 3 / 5).saturating_duration_since(Instant::now()));
            std::fs::OpenOptions::new()
                .append(true)
                .open(inbox.join("slow.jpg"))
                .unwrap()
                .write_all(&image[part[0]..part[1]])
                .unwrap();
            in_time &= written.elapsed() < settle;
            written = Instant::now();
        }
        // The same image renamed in whole, as a careful writer does.
        std::fs::write(inbox.join(".whole.jpg.tmp"), &image).unwrap();
        std::fs::rename(inbox.join(".whole.jpg.tmp"), inbox.join("whole.jpg")).unwrap();
        wait_for_rows(inbox, 2, &mut service);
        service.kill().unwrap();
        service.wait().unwrap();
        if !in_time {
            eprintln!("a part came more than {settle_ms} ms after the one before; trying a longer settle time");
            continue;
        }
        let rows = rows(inbox);
        assert!(rows.iter().all(|r| r["error"].is_empty() && r["moved_to"].starts_with("done/")), "{rows:?}");
        assert_eq!(rows[0]["p_covid"], rows[1]["p_covid"], "the slowly copied image was scored whole");
        assert_eq!(rows[0]["sha256"], rows[1]["sha256"]);
        return;
    }
    panic!("the machine never appended a part within even 96 s");
}

#[test]
fn a_name_reused_for_another_image_is_scored_again_and_kept_apart() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path();
    let images = xrays(2);
    for src in [&images[0], &images[1], &images[0]] {
        std::fs::copy(src, inbox.join("scan.jpg")).unwrap();
        assert!(watch(inbox, 0).arg("--once").status().unwrap().success());
    }
    let rows = rows(inbox);
    let moved: Vec<&str> = rows.iter().map(|r| r["moved_to"].as_str()).collect();
    assert_eq!(moved, ["done/scan.jpg", "done/scan.1.jpg", "done/scan.2.jpg"]);
    assert_ne!(rows[0]["sha256"], rows[1]["sha256"]);
    assert_eq!(rows[0]["sha256"], rows[2]["sha256"]);
}
