//! Handling one settled image: score it once, record it, file it.
//!
//! The order is what makes restarts safe: read and hash → (already recorded? finish the
//! move) → score → append the row and fsync → move and fsync. A crash before the fsync loses
//! only the row, and the image, still in the inbox, is scored again; a crash after it leaves
//! a row whose destination does not exist yet, which the next start completes without scoring.

use crate::filing::{free_name, move_durably};
use crate::journal::{Journal, Row};
use cxr_infer::{Model, Session};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How long a file that could not be read or moved is left alone before the next try.
pub const RETRY_DELAY: Duration = Duration::from_secs(60);

/// What happened to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Scored (or found scored before a restart) and filed under `done/`.
    Done,
    /// Undecodable, empty or failed to run: an error row, filed under `failed/`.
    Failed,
    /// Gone before it could be read (someone removed it).
    Vanished,
    /// Could not be read, recorded or moved now; try again later. The message names the file.
    RetryLater(String),
}

pub struct Service<'m> {
    pub inbox: PathBuf,
    pub journal: Journal,
    pub session: Session<'m>,
    /// Fault injection for the restart test: abort right after this many rows are fsynced,
    /// before the image is moved, i.e. at the worst moment for a power cut.
    pub crash_after_rows: Option<usize>,
}

impl<'m> Service<'m> {
    pub fn done_dir(inbox: &Path) -> PathBuf {
        inbox.join("done")
    }

    pub fn failed_dir(inbox: &Path) -> PathBuf {
        inbox.join("failed")
    }

    pub fn handle(&mut self, path: &Path) -> Outcome {
        let name = path.file_name().expect("inbox entries have names").to_string_lossy().into_owned();
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Outcome::Vanished,
            Err(e) => return Outcome::RetryLater(format!("{}: cannot read: {e}", path.display())),
        };
        let sha256 = cxr_core::card::sha256_hex(&bytes);
        if let Some(recorded) = self.journal.destinations(&name, &sha256).iter().find(|d| !self.inbox.join(d).exists()) {
            let to = self.inbox.join(recorded);
            eprintln!("{}: already scored before a restart (same name and sha256 in the CSV); finishing its move to {recorded}", path.display());
            return match move_durably(path, &to) {
                Ok(()) if recorded.starts_with("failed/") => Outcome::Failed,
                Ok(()) => Outcome::Done,
                Err(e) => Outcome::RetryLater(format!("{e:#}")),
            };
        }

        let model = self.session.model();
        let scored = self.score(path, &bytes);
        let dir = if scored.is_ok() { Service::done_dir(&self.inbox) } else { Service::failed_dir(&self.inbox) };
        let to = free_name(&dir, path.file_name().expect("checked above"));
        let moved_to = to.strip_prefix(&self.inbox).expect("done/ and failed/ are inside the inbox").to_string_lossy().into_owned();
        let (p_covid, class, error) = match &scored {
            Ok(score) => (Some(score.p_covid), score.class.to_owned(), String::new()),
            Err(e) => (None, String::new(), e.clone()),
        };
        let row = Row {
            file: name,
            sha256,
            bytes: bytes.len() as u64,
            p_covid,
            class,
            model: model_label(model),
            moved_to: moved_to.clone(),
            scored_at_unix: SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
            error,
        };
        if let Err(e) = self.journal.append(&row) {
            return Outcome::RetryLater(format!("{e:#}"));
        }
        if self.crash_after_rows == Some(self.journal.appended()) {
            eprintln!("{}: row recorded; aborting before the move (--crash-after-rows)", path.display());
            std::process::abort();
        }
        if let Err(e) = move_durably(path, &to) {
            // The row is on disk: the next try finds it and only moves the file.
            return Outcome::RetryLater(format!("{e:#}"));
        }
        match scored {
            Ok(score) => {
                eprintln!("{}: p_covid={:.6} class={} → {moved_to}", path.display(), score.p_covid, score.class);
                Outcome::Done
            }
            Err(e) => {
                eprintln!("{e} → {moved_to}");
                Outcome::Failed
            }
        }
    }

    /// Scores `bytes`; a panic inside decoding or tract becomes this file's error instead of
    /// taking the service down (a restart would meet the same file and panic again).
    fn score(&mut self, path: &Path, bytes: &[u8]) -> Result<cxr_pi_model::Score, String> {
        let session = &mut self.session;
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cxr_pi_model::score(session, path, bytes)));
        match outcome {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(panic) => {
                // The session's scratch state may be half-updated: start a fresh one.
                self.session = self.session.model().session();
                let what = panic.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panic.downcast_ref::<String>().cloned());
                Err(format!("{}: the scorer crashed on this file ({}); filed as failed so the service can go on", path.display(), what.unwrap_or_default()))
            }
        }
    }
}

/// `name@sha256-prefix`: which model scored a row, for the `model` column and the start-up log.
pub fn model_label(model: &Model) -> String {
    format!("{}@{}", model.card.name, model.short_sha())
}
