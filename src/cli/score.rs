//! `cxr score DIR|FILE|MANIFEST|LIST... --out results.csv`: score many images on all cores.
//!
//! Rows are appended and flushed as images finish, so a killed run keeps everything it scored;
//! `--resume` skips the paths already in the output, so a re-run scores nothing twice.

use super::models::ModelArg;
use anyhow::{Context, bail};
use clap::Args;
use cxr_infer::Model;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct ScoreArgs {
    /// Folders (searched recursively), image files, manifests (`.csv` from `cxr data index`)
    /// or lists (`.txt`, one path per line, relative to the list).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Output CSV: path, one probability column per class, class, model sha256, error.
    #[arg(long, short = 'o')]
    pub out: PathBuf,
    /// Continue an earlier run: keep its rows and skip the paths it already holds.
    #[arg(long)]
    pub resume: bool,
    /// Only this split of manifest inputs (train, val, test, holdout).
    #[arg(long)]
    pub split: Option<String>,
    /// Worker threads (default: all cores).
    #[arg(long, short = 'j')]
    pub jobs: Option<usize>,
    #[command(flatten)]
    pub model: ModelArg,
}

/// Exit code 1 when any row failed; the other rows are written regardless.
pub fn run(args: ScoreArgs) -> anyhow::Result<ExitCode> {
    let model = args.model.load()?;
    let split = args.split.as_deref().map(str::parse::<cxr_core::Split>).transpose().map_err(anyhow::Error::msg)?;
    let images = collect_images(&args.inputs, split)?;
    let header = header(&model);
    let done = prepare_output(&args.out, &header, &model, args.resume)?;
    let todo: Vec<&PathBuf> = images.iter().filter(|p| !done.contains(&p.display().to_string())).collect();
    if !done.is_empty() {
        eprintln!("resuming {}: {} rows already there, {} images to score", args.out.display(), done.len(), todo.len());
    }
    let file = std::fs::OpenOptions::new().create(true).append(true).open(&args.out).with_context(|| format!("{}: cannot open for writing", args.out.display()))?;
    let mut writer = csv::WriterBuilder::new().has_headers(false).from_writer(file);
    if done.is_empty() && std::fs::metadata(&args.out)?.len() == 0 {
        writer.write_record(&header)?;
        writer.flush()?;
    }
    let writer = Mutex::new(writer);
    let progress = progress_bar(todo.len() as u64);
    let failed = std::sync::atomic::AtomicUsize::new(0);
    let write_error = Mutex::new(None::<anyhow::Error>);
    let started = Instant::now();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(args.jobs.unwrap_or(0)).build()?;
    pool.install(|| {
        todo.par_iter().for_each_init(
            || model.session(),
            |session, path| {
                let row = match session.predict_file(path) {
                    Ok(p) => score_row(&model, path, Some(&p.probabilities), Some(p.class_index), ""),
                    Err(e) => {
                        failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        score_row(&model, path, None, None, &e.to_string())
                    }
                };
                let mut w = writer.lock().expect("a writer thread panicked");
                if let Err(e) = w.write_record(&row).map_err(anyhow::Error::from).and_then(|()| Ok(w.flush()?)) {
                    write_error.lock().expect("poisoned").get_or_insert(e);
                }
                progress.inc(1);
            },
        )
    });
    progress.finish_and_clear();
    if let Some(e) = write_error.into_inner().expect("poisoned") {
        return Err(e.context(format!("{}: cannot write results", args.out.display())));
    }
    let failed = failed.into_inner();
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "scored {} images ({failed} failed) in {secs:.1} s ({:.1} images/s, {} threads) with {} (sha256 {}) → {}",
        todo.len(),
        todo.len() as f64 / secs.max(1e-9),
        pool.current_num_threads(),
        model.card.name,
        model.short_sha(),
        args.out.display()
    );
    Ok(if failed > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn header(model: &Model) -> Vec<String> {
    let mut h = vec!["path".to_owned()];
    h.extend(model.class_set().names().iter().map(|n| format!("p_{n}")));
    h.extend(["class", "model_sha256", "error"].map(String::from));
    h
}

fn score_row(model: &Model, path: &Path, probabilities: Option<&[f32]>, class: Option<usize>, error: &str) -> Vec<String> {
    let names = model.class_set().names();
    let mut row = vec![path.display().to_string()];
    match probabilities {
        Some(p) => row.extend(p.iter().map(|v| format!("{v:.6}"))),
        None => row.extend(names.iter().map(|_| String::new())),
    }
    row.push(class.map_or(String::new(), |c| names[c].to_owned()));
    row.push(model.card.sha256.clone());
    row.push(error.replace(['\n', '\r'], " "));
    row
}

/// Makes `out` ready to append to and returns the paths it already holds.
///
/// Refuses to overwrite an existing non-empty file without `--resume`, and to resume a file
/// written with different columns or another model. A last line cut off by a kill is dropped
/// (its image is scored again).
fn prepare_output(out: &Path, header: &[String], model: &Model, resume: bool) -> anyhow::Result<HashSet<String>> {
    let Ok(bytes) = std::fs::read(out) else { return Ok(HashSet::new()) };
    if bytes.is_empty() {
        return Ok(HashSet::new());
    }
    if !resume {
        bail!("{}: already exists; pass --resume to continue it, or choose another --out", out.display());
    }
    if let Some(last_newline) = bytes.iter().rposition(|&b| b == b'\n')
        && last_newline + 1 < bytes.len()
    {
        let file = std::fs::OpenOptions::new().write(true).open(out)?;
        file.set_len(last_newline as u64 + 1).with_context(|| format!("{}: cannot drop the cut-off last line", out.display()))?;
    }
    let mut reader = csv::Reader::from_path(out).with_context(|| format!("{}: cannot read", out.display()))?;
    let found: Vec<String> = reader.headers()?.iter().map(str::to_owned).collect();
    if found != header {
        bail!("{}: columns {:?} do not match this model's {:?}; score into another --out", out.display(), found, header);
    }
    let sha_column = header.iter().position(|h| h == "model_sha256").expect("header has it");
    let mut done = HashSet::new();
    for record in reader.records() {
        let record = record.with_context(|| format!("{}: malformed row", out.display()))?;
        if let Some(sha) = record.get(sha_column)
            && sha != model.card.sha256
        {
            bail!("{}: holds scores from model sha256 {sha}, not {} ({}); resuming would mix models", out.display(), model.card.sha256, model.card.name);
        }
        done.insert(record.get(0).unwrap_or_default().to_owned());
    }
    Ok(done)
}

fn progress_bar(len: u64) -> ProgressBar {
    // indicatif draws to stderr only when it is a terminal, so piped runs stay quiet.
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} images  {per_sec}  eta {eta}").expect("valid template"),
    );
    bar
}

/// File names treated as images when walking folders: PNG, JPEG, DICOM, and files without an
/// extension (DICOM often has none). Everything else in a folder is reported as skipped.
fn looks_like_image(path: &Path) -> bool {
    match path.extension().and_then(|e| e.to_str()) {
        None => true,
        Some(ext) => matches!(ext.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg" | "dcm" | "dicom"),
    }
}

/// Every image file under `dir`, sorted, skipping hidden entries. Returns the skipped files too.
pub fn walk_images(dir: &Path) -> anyhow::Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let (mut images, mut skipped) = (Vec::new(), Vec::new());
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).with_context(|| format!("{}: cannot list folder", d.display()))?;
        for entry in entries {
            let path = entry.with_context(|| format!("{}: cannot list folder", d.display()))?.path();
            if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.')) {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else if looks_like_image(&path) {
                images.push(path);
            } else {
                skipped.push(path);
            }
        }
    }
    images.sort();
    skipped.sort();
    Ok((images, skipped))
}

/// Expands the command line into image paths, in order, without repeats.
fn collect_images(inputs: &[PathBuf], split: Option<cxr_core::Split>) -> anyhow::Result<Vec<PathBuf>> {
    let mut images = Vec::new();
    let mut skipped = Vec::new();
    for input in inputs {
        let ext = input.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        if input.is_dir() {
            let (found, skip) = walk_images(input)?;
            images.extend(found);
            skipped.extend(skip);
        } else if ext.as_deref() == Some("csv") {
            let manifest = cxr_core::Manifest::read(input)?;
            let base = input.parent().unwrap_or(Path::new("."));
            images.extend(
                manifest.entries.iter().filter(|e| split.is_none_or(|s| e.split == s)).map(|e| resolve_listed(base, &e.path)),
            );
        } else if ext.as_deref() == Some("txt") {
            let text = std::fs::read_to_string(input).with_context(|| format!("{}: cannot read list", input.display()))?;
            let base = input.parent().unwrap_or(Path::new("."));
            images.extend(
                text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(|l| resolve_listed(base, Path::new(l))),
            );
        } else if input.exists() {
            images.push(input.clone());
        } else {
            bail!("{}: no such file or folder", input.display());
        }
    }
    if !skipped.is_empty() {
        eprintln!("skipped {} files that are not PNG, JPEG or DICOM (e.g. {})", skipped.len(), skipped[0].display());
    }
    let mut seen = HashSet::new();
    images.retain(|p| seen.insert(p.clone()));
    Ok(images)
}

/// A path from a list or manifest: as written when it exists (manifests store paths joined onto
/// the data root), else relative to the list's folder.
fn resolve_listed(base: &Path, listed: &Path) -> PathBuf {
    if listed.is_absolute() || listed.exists() { listed.to_owned() } else { base.join(listed) }
}
