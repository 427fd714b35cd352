//! `cxr-minimal` as a user runs it, on real X-rays: from a path and from stdin with the
//! embedded model, with `--model`, and on bad input, where the error must name the file.

use cxr_test_support::{datasets, workspace};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn xray() -> PathBuf {
    datasets().join("covid19-radiography/COVID/COVID-1.jpg")
}

fn minimal(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cxr-minimal"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    pipe.write_all(stdin.unwrap_or_default()).unwrap();
    drop(pipe);
    child.wait_with_output().unwrap()
}

/// `p_covid=… class=… threshold=… model=…` → (p_covid, class, model).
fn parse(out: &Output) -> (f32, String, String) {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let line = String::from_utf8(out.stdout.clone()).unwrap();
    let field = |key: &str| {
        line.split_whitespace()
            .find_map(|f| f.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in {line}"))
            .to_owned()
    };
    (field("p_covid=").parse().unwrap(), field("class="), field("model="))
}

#[test]
fn scores_a_real_xray_from_a_path_or_stdin_with_the_embedded_model() {
    let path = xray();
    let from_path = parse(&minimal(&[path.to_str().unwrap()], None));
    let from_stdin = parse(&minimal(&["-"], Some(&std::fs::read(&path).unwrap())));
    assert_eq!(from_path, from_stdin);
    assert!((0.0..=1.0).contains(&from_path.0));
    assert!(["covid", "non-covid"].contains(&from_path.1.as_str()), "{from_path:?}");
    assert_eq!(from_path.2, cxr_pi_model::EMBEDDED.unwrap().card().unwrap().name);
}

#[test]
fn model_flag_loads_another_model_with_its_card() {
    let int8 = workspace().join("models/seed-cnn-int8.onnx");
    let (p, _, model) = parse(&minimal(&["--model", int8.to_str().unwrap(), xray().to_str().unwrap()], None));
    assert_eq!(model, "seed-cnn-int8");
    assert!((0.0..=1.0).contains(&p));
}

/// Splitting the model's products over threads (a Pi's 4 cores) changes nothing in the answer;
/// a count that is not a number is a usage error, not a crash.
#[test]
fn threads_per_image_gives_the_single_thread_answer() {
    let path = xray();
    let (p1, class1, model1) = parse(&minimal(&[path.to_str().unwrap()], None));
    for n in ["2", "0"] {
        let (p, class, model) = parse(&minimal(&["--threads-per-image", n, path.to_str().unwrap()], None));
        assert!((p - p1).abs() <= 1e-6, "{n} threads: {p} against {p1}");
        assert_eq!((class, model), (class1.clone(), model1.clone()));
    }
    let out = minimal(&["--threads-per-image", "many", path.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--threads-per-image: not a number: many"));
}

#[test]
fn bad_input_fails_with_the_file_and_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.png");
    std::fs::write(&empty, b"").unwrap();
    let missing = dir.path().join("missing.png");
    for (args, stdin, expected) in [
        (vec![empty.to_str().unwrap()], None, "empty.png: empty file"),
        (vec![missing.to_str().unwrap()], None, "missing.png: cannot read file: No such file"),
        (vec!["-"], Some(&b"GIF89a not supported"[..]), "<stdin>: not a PNG, JPEG or DICOM file"),
        (vec!["--model", missing.to_str().unwrap(), "-"], Some(&b""[..]), "missing.png: cannot read model"),
    ] {
        let out = minimal(&args, stdin);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty() && stderr.contains(expected), "{args:?}: {stderr}");
    }
    let out = minimal(&["a.png", "b.png"], None);
    assert_eq!(out.status.code(), Some(2), "two images are a usage error");
}
