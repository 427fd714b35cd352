//! `cxr score DIR|FILE|MANIFEST|LIST... --out results.csv`: score many images on all cores.
//!
//! Rows are appended and flushed as images finish, so a killed run keeps everything it scored;
//! `--resume` skips the files already scored in the output (matched by canonical path, so
//! `real` and `$PWD/real/` are the same files) and scores its error rows again, so a re-run
//! scores nothing twice and a repaired file is not left failed. The output is locked while a
//! run writes it: a second run on the same file (an overlapping cron job) is refused.
//!
//! `--shard K/N` and `--merge` spread one run over the tasks of a batch scheduler (see `shard`).

mod shard;

use super::models::ModelArg;
use anyhow::{Context, bail};
use clap::Args;
use cxr_core::results::file_identity;
use cxr_core::walk::walk;
use cxr_infer::Model;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
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
    /// Continue an earlier run: keep its scored rows, skip the files they name, and score the
    /// files of its error rows again (their old rows are replaced).
    #[arg(long)]
    pub resume: bool,
    /// Only this split of manifest inputs (train, val, test, holdout).
    #[arg(long)]
    pub split: Option<String>,
    /// Worker threads (default: all cores; at most 4 per core, since each holds a model session).
    #[arg(long, short = 'j')]
    pub jobs: Option<usize>,
    /// Score only shard K of N (K from 0 to N-1, e.g. a Slurm array task id or a Kubernetes job
    /// completion index): a fixed 1/N of the inputs, chosen by a hash of each image's path as
    /// listed under its input, so it does not change when the inputs are listed again, in
    /// another order or from another mount point.
    #[arg(long, value_name = "K/N", conflicts_with = "merge")]
    pub shard: Option<shard::Shard>,
    /// Merge the outputs of `--shard` runs over the same inputs into `--out`, checking that
    /// every input has exactly one row and every row is an input (in input order).
    #[arg(long, value_name = "CSV", num_args = 1.., conflicts_with = "resume")]
    pub merge: Vec<PathBuf>,
    #[command(flatten)]
    pub model: ModelArg,
}

/// Workers per core beyond which `-j` is refused: each worker holds its own session (tensors
/// of a whole network), so `-j 1000` costs gigabytes and gains nothing on a few cores.
const MAX_JOBS_PER_CORE: usize = 4;

/// Exit code 1 when any row failed; the other rows are written regardless.
pub fn run(args: ScoreArgs) -> anyhow::Result<ExitCode> {
    let jobs = worker_count(args.jobs)?;
    let model = args.model.load()?;
    let split = args.split.as_deref().map(str::parse::<cxr_core::Split>).transpose().map_err(anyhow::Error::msg)?;
    let inputs = collect_inputs(&args.inputs, split)?;
    let header = header(&model);
    if !args.merge.is_empty() {
        return shard::merge(&inputs, &args.merge, &args.out, &header, &model);
    }
    let (file, done) = open_output(&args.out, &header, &model, args.resume)?;
    let in_shard = |l: &&Listed| args.shard.is_none_or(|s| s.holds(&l.key));
    let todo: Vec<&PathBuf> =
        inputs.images.iter().filter(in_shard).map(|l| &l.path).filter(|p| !done.contains(&file_identity(p))).collect();
    if let Some(shard) = args.shard {
        eprintln!("shard {shard}: {} of {} images", inputs.images.iter().filter(in_shard).count(), inputs.images.len());
    }
    if !done.is_empty() {
        eprintln!("resuming {}: {} rows already there, {} images to score", args.out.display(), done.len(), todo.len());
    }
    let mut writer = csv::WriterBuilder::new().has_headers(false).from_writer(file);
    // A folder that cannot be listed gets its error row once, from shard 0, so a merge finds one.
    let unreadable: &[(PathBuf, String)] =
        if args.shard.is_none_or(|s| s.index == 0) { &inputs.unreadable } else { &[] };
    let failed = std::sync::atomic::AtomicUsize::new(unreadable.len());
    for (folder, reason) in unreadable {
        eprintln!("error: {}: {reason}", folder.display());
        writer.write_record(score_row(&model, folder, None, None, &format!("{}: {reason}", folder.display())))?;
    }
    writer.flush().with_context(|| format!("{}: cannot write results", args.out.display()))?;
    let writer = Mutex::new(writer);
    let progress = progress_bar(todo.len() as u64);
    let write_error = Mutex::new(None::<anyhow::Error>);
    let started = Instant::now();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(jobs.min(todo.len().max(1))).build()?;
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

/// `-j` checked against the machine: 0 or absent means all cores.
fn worker_count(jobs: Option<usize>) -> anyhow::Result<usize> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    match jobs {
        None | Some(0) => Ok(cores),
        Some(n) if n > cores * MAX_JOBS_PER_CORE => bail!(
            "-j {n}: more workers than {MAX_JOBS_PER_CORE} per core on this machine's {cores} cores; each holds a model \
             session in memory, so use at most -j {}",
            cores * MAX_JOBS_PER_CORE
        ),
        Some(n) => Ok(n),
    }
}

fn header(model: &Model) -> Vec<String> {
    let mut h = vec!["path".to_owned()];
    h.extend(model.class_set().names().iter().map(|n| format!("p_{n}")));
    h.extend(["class", "model_sha256", "error"].map(String::from));
    h
}

fn score_row(
    model: &Model,
    path: &Path,
    probabilities: Option<&[f32]>,
    class: Option<usize>,
    error: &str,
) -> Vec<String> {
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

/// Opens `out` for appending under an exclusive advisory lock, held until the run ends, and
/// returns it with the files it already holds scores for (by [`file_identity`]).
///
/// Refuses to overwrite an existing non-empty file without `--resume`, to write a file another
/// run holds, and to resume a file written with different columns or another model. With
/// `--resume`, the file is rewritten without its error rows (their files are scored again) and
/// without a last line cut off by a kill, so every file ends up with exactly one row.
fn open_output(out: &Path, header: &[String], model: &Model, resume: bool) -> anyhow::Result<(File, HashSet<PathBuf>)> {
    let cannot = |what: &str| format!("{}: cannot {what}", out.display());
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(out)
        .with_context(|| cannot("open for writing"))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            bail!(
                "{}: another `cxr score` is writing to it (it holds the file's lock); wait for it to finish, or choose another --out",
                out.display()
            )
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(anyhow::Error::new(e).context(cannot("lock"))),
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).with_context(|| cannot("read"))?;
    let mut done = HashSet::new();
    if bytes.is_empty() {
        {
            let mut writer = csv::Writer::from_writer(&file);
            writer.write_record(header)?;
            writer.flush().with_context(|| cannot("write"))?;
        }
        return Ok((file, done));
    }
    if !resume {
        bail!("{}: already exists; pass --resume to continue it, or choose another --out", out.display());
    }
    let earlier = cxr_core::results::read_earlier_run(out, &bytes, header, &model.card.sha256, &model.card.name)?;
    if !earlier.failed.is_empty() || earlier.cut_off {
        if !earlier.failed.is_empty() {
            eprintln!("resuming {}: scoring the files of its {} error rows again", out.display(), earlier.failed.len());
        }
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.write_record(header)?;
        for row in &earlier.scored {
            writer.write_record(row)?;
        }
        let text = writer.into_inner().map_err(|e| anyhow::anyhow!("{}", e.error()))?;
        file = replace_locked(out, &text)?;
    }
    done.extend(earlier.scored.iter().map(|row| file_identity(Path::new(row.get(0).unwrap_or_default()))));
    file.seek(SeekFrom::End(0))?;
    Ok((file, done))
}

/// Replaces `out` by `text` so that a kill at any moment leaves either the old file or the new
/// one: written beside it, locked, synced, then renamed over it. The new file is locked before
/// it takes the name, so no other run can open it unlocked in between.
fn replace_locked(out: &Path, text: &[u8]) -> anyhow::Result<File> {
    let mut name = out.file_name().unwrap_or_default().to_owned();
    name.push(".resume-tmp");
    let tmp = out.with_file_name(name);
    let cannot = || format!("{}: cannot rewrite {} without its error rows", tmp.display(), out.display());
    let mut file = File::create(&tmp).with_context(cannot)?;
    file.try_lock().map_err(|e| anyhow::anyhow!("{e}")).with_context(cannot)?;
    file.write_all(text).and_then(|()| file.sync_all()).with_context(cannot)?;
    std::fs::rename(&tmp, out).with_context(cannot)?;
    Ok(file)
}

fn progress_bar(len: u64) -> ProgressBar {
    // indicatif draws to stderr only when it is a terminal, so piped runs stay quiet.
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} images  {per_sec}  eta {eta}").expect("valid template"),
    );
    bar
}

/// One image of the command line.
struct Listed {
    path: PathBuf,
    /// Its path as listed under its input (relative to the folder it was found in, as written in
    /// a list or manifest, or as given), which picks its shard.
    key: String,
}

/// The command line expanded into image paths.
struct Inputs {
    /// In order, each file once (by [`file_identity`]).
    images: Vec<Listed>,
    /// Folders that could not be listed: one error row each.
    unreadable: Vec<(PathBuf, String)>,
}

/// Expands the command line into image paths, in order, without repeats.
fn collect_inputs(inputs: &[PathBuf], split: Option<cxr_core::Split>) -> anyhow::Result<Inputs> {
    let mut images = Vec::new();
    let mut skipped = Vec::new();
    let mut unreadable = Vec::new();
    for input in inputs {
        let ext = input.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        let listed = |path: PathBuf, key: &Path| Listed { key: key.to_string_lossy().into_owned(), path };
        if input.is_dir() {
            let found = walk(input);
            images.extend(found.images.into_iter().map(|p| {
                let key = p.strip_prefix(input).unwrap_or(&p).to_owned();
                listed(p, &key)
            }));
            skipped.extend(found.skipped);
            unreadable.extend(found.unreadable);
        } else if ext.as_deref() == Some("csv") {
            let manifest = cxr_core::Manifest::read(input)?;
            let base = input.parent().unwrap_or(Path::new("."));
            images.extend(
                manifest
                    .entries
                    .iter()
                    .filter(|e| split.is_none_or(|s| e.split == s))
                    .map(|e| listed(resolve_listed(base, &e.path), &e.path)),
            );
        } else if ext.as_deref() == Some("txt") {
            let text =
                std::fs::read_to_string(input).with_context(|| format!("{}: cannot read list", input.display()))?;
            let base = input.parent().unwrap_or(Path::new("."));
            images.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(|l| listed(resolve_listed(base, Path::new(l)), Path::new(l))),
            );
        } else if input.exists() || input.symlink_metadata().is_ok() {
            images.push(listed(input.clone(), input));
        } else {
            bail!("{}: no such file or folder", input.display());
        }
    }
    if !skipped.is_empty() {
        eprintln!("skipped {} files that are not PNG, JPEG or DICOM (e.g. {})", skipped.len(), skipped[0].display());
    }
    let mut seen = HashSet::new();
    images.retain(|l| seen.insert(file_identity(&l.path)));
    Ok(Inputs { images, unreadable })
}

/// A path from a list or manifest: as written when it exists (manifests store paths joined onto
/// the data root), else relative to the list's folder.
fn resolve_listed(base: &Path, listed: &Path) -> PathBuf {
    if listed.is_absolute() || listed.exists() { listed.to_owned() } else { base.join(listed) }
}
