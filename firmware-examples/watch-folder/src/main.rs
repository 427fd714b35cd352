//! `cxr-watch`: a Raspberry Pi service that scores every chest X-ray that appears in an inbox
//! folder, appends one row per image to a CSV, and files the image under `done/` or
//! `failed/` (both inside the inbox, so the move is an atomic rename).
//!
//! It is built to be killed at any moment (systemd stop, power cut): nothing is held only in
//! memory, so it needs no shutdown handling. Every image ends up exactly once in the CSV and
//! in `done/` or `failed/`; see `service` for the order of steps that guarantees it.
//! Research use only, not for diagnosis.

mod filing;
mod inbox;
mod journal;
mod poison;
mod service;

use anyhow::{Context, bail};
use clap::Parser;
use inbox::Inbox;
use service::{Outcome, Service};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Scores every chest X-ray (PNG, JPEG, DICOM) dropped into INBOX, exactly once.
/// Research use only, not for diagnosis.
#[derive(Parser, Debug)]
#[command(
    version,
    after_help = "Copy images in under a hidden or .part name and rename them when complete, or rely on --settle-ms."
)]
struct Args {
    /// Folder to watch. `done/` and `failed/` are created inside it.
    #[arg(long)]
    inbox: PathBuf,
    /// Results CSV, appended to [default: INBOX/results.csv].
    #[arg(long)]
    csv: Option<PathBuf>,
    /// Model to use instead of the one compiled in: an .onnx with its .card.json beside it.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Threads each image's inference may split its matrix products over (0: one per core).
    /// Images are scored one at a time, so this is how the service uses a Pi's other cores.
    #[arg(long, default_value_t = 1)]
    threads_per_image: usize,
    /// A file is scored once its size and time have not changed for this long.
    #[arg(long, default_value_t = 2000)]
    settle_ms: u64,
    /// How often the inbox is listed.
    #[arg(long, default_value_t = 500)]
    poll_ms: u64,
    /// Score what is in the inbox, then exit (status 1 if any image failed).
    #[arg(long)]
    once: bool,
    /// Fault injection for tests: abort after this many rows, before moving the image.
    #[arg(long, hide = true)]
    crash_after_rows: Option<usize>,
    /// Fault injection for tests: abort while scoring the file of this name.
    #[arg(long, hide = true)]
    crash_while_scoring: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("cxr-watch: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Returns whether every image was scored (only meaningful with `--once`).
fn run(args: &Args) -> anyhow::Result<bool> {
    if !args.inbox.is_dir() {
        bail!("{}: inbox folder does not exist (create it, or mount the share first)", args.inbox.display());
    }
    for dir in [Service::done_dir(&args.inbox), Service::failed_dir(&args.inbox)] {
        std::fs::create_dir_all(&dir).with_context(|| format!("{}: cannot create folder", dir.display()))?;
    }
    filing::sync_dir(&args.inbox)?;
    let csv = args.csv.clone().unwrap_or_else(|| args.inbox.join("results.csv"));
    let journal = journal::Journal::open(&csv)?;
    let model = cxr_pi_model::load(args.model.as_deref(), args.threads_per_image)?;
    eprintln!(
        "cxr-watch: watching {} with model {} (threshold {:.4}); results in {}; {}",
        args.inbox.display(),
        service::model_label(&model),
        model.card.threshold,
        csv.display(),
        cxr_core::card::RESEARCH_USE_ONLY
    );
    // The CSV may live in the inbox (the default): it is output, never input.
    let csv_in_inbox =
        csv.parent().and_then(|p| std::fs::canonicalize(if p.as_os_str().is_empty() { ".".as_ref() } else { p }).ok())
            == std::fs::canonicalize(&args.inbox).ok();
    let own_files = if csv_in_inbox { vec![args.inbox.join(csv.file_name().expect("a file name"))] } else { vec![] };
    let mut inbox = Inbox::new(&args.inbox, own_files, Duration::from_millis(args.settle_ms));
    let mut service = Service {
        inbox: args.inbox.clone(),
        journal,
        session: model.session(),
        crash_after_rows: args.crash_after_rows,
        attempts: poison::Attempts::new(&args.inbox),
        crash_while_scoring: args.crash_while_scoring.clone(),
    };
    let mut all_ok = true;
    loop {
        match inbox.ready() {
            Ok(ready) => {
                for path in ready {
                    match service.handle(&path) {
                        Outcome::Done | Outcome::Vanished => inbox.forget(&path),
                        Outcome::Failed => {
                            all_ok = false;
                            inbox.forget(&path);
                        }
                        Outcome::RetryLater(why) => {
                            all_ok = false;
                            eprintln!("{why}; trying again in {} s", service::RETRY_DELAY.as_secs());
                            inbox.retry_later(&path, service::RETRY_DELAY);
                        }
                    }
                }
            }
            Err(e) => eprintln!("{}: cannot list inbox: {e}; trying again", args.inbox.display()),
        }
        if args.once && inbox.waiting() == inbox.put_off() {
            return Ok(all_ok);
        }
        std::thread::sleep(Duration::from_millis(args.poll_ms));
    }
}
