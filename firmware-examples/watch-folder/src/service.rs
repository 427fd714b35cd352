//! Handling one settled image: score it once, record it, file it.
//!
//! The order is what makes restarts safe: read and hash → (already recorded? finish the
//! move) → score → append the row and fsync → move and fsync. A crash before the fsync loses
//! only the row, and the image, still in the inbox, is scored again; a crash after it leaves
//! a row whose destination does not exist yet, which the next start completes without scoring.

use crate::filing::{free_name, move_durably};
use crate::journal::{Journal, Row};
use crate::poison::{Attempts, DEATHS_BEFORE_QUARANTINE};
use cxr_core::ImageError;
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
    /// Starts of scoring that never finished, per file (the poison-file rule).
    pub attempts: Attempts,
    /// Fault injection for the poison-file test: abort while scoring a file of this name, as an
    /// out-of-memory kill would (no panic to catch).
    pub crash_while_scoring: Option<String>,
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
        // Bounded: a huge file in the inbox is refused from its header, not read into memory.
        let (bytes, refused) = match cxr_core::image::read_image_file(path) {
            Ok(bytes) => (bytes, None),
            Err(ImageError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Outcome::Vanished;
            }
            Err(ImageError::Io { source, .. }) => {
                return Outcome::RetryLater(format!("{}: cannot read: {source}", path.display()));
            }
            Err(e) => (Vec::new(), Some(e)),
        };
        // A refused file was not read: it is recorded by name, with no sha256 — except an empty
        // one, which was read whole (its sha256 is that of no bytes).
        let read_whole = refused.as_ref().is_none_or(|e| matches!(e, ImageError::Empty { .. }));
        let sha256 = if read_whole { cxr_core::card::sha256_hex(&bytes) } else { String::new() };
        let refused = refused.map(|e| e.to_string());
        let size = std::fs::metadata(path).map_or(bytes.len() as u64, |m| m.len());
        if let Some(recorded) = self.journal.destinations(&name, &sha256).iter().find(|d| !self.inbox.join(d).exists())
        {
            let to = self.inbox.join(recorded);
            eprintln!(
                "{}: already scored before a restart (same name and sha256 in the CSV); finishing its move to {recorded}",
                path.display()
            );
            return match move_durably(path, &to) {
                Ok(()) if recorded.starts_with("failed/") => Outcome::Failed,
                Ok(()) => Outcome::Done,
                Err(e) => Outcome::RetryLater(format!("{e:#}")),
            };
        }

        let model = self.session.model();
        let scored = match refused {
            Some(reason) => Err(reason),
            None => match self.score_once(path, &name, &sha256, &bytes) {
                Ok(scored) => scored,
                Err(why) => return Outcome::RetryLater(why),
            },
        };
        let dir = if scored.is_ok() { Service::done_dir(&self.inbox) } else { Service::failed_dir(&self.inbox) };
        let to = free_name(&dir, path.file_name().expect("checked above"));
        let moved_to = to
            .strip_prefix(&self.inbox)
            .expect("done/ and failed/ are inside the inbox")
            .to_string_lossy()
            .into_owned();
        let (p_covid, class, error) = match &scored {
            Ok(score) => (Some(score.p_covid), score.class.to_owned(), String::new()),
            Err(e) => (None, String::new(), e.clone()),
        };
        let row = Row {
            file: name,
            sha256,
            bytes: size,
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

    /// Scores `bytes` under the poison-file rule: a file that was being scored when the service
    /// died [`DEATHS_BEFORE_QUARANTINE`] times in a row gets an error instead of a third try.
    /// `Err` when the attempt could not be recorded (the file is tried again later).
    fn score_once(
        &mut self,
        path: &Path,
        name: &str,
        sha256: &str,
        bytes: &[u8],
    ) -> Result<Result<cxr_pi_model::Score, String>, String> {
        let deaths = self.attempts.start(name, sha256).map_err(|e| format!("{e:#}"))?;
        let scored = if deaths >= DEATHS_BEFORE_QUARANTINE {
            Err(format!(
                "{}: the service died {deaths} times in a row while scoring this file (killed for memory, or a crash \
                 that no panic handler catches); filed as failed so that it cannot stop the service again",
                path.display()
            ))
        } else {
            if self.crash_while_scoring.as_deref() == Some(name) {
                eprintln!("{}: aborting while scoring (--crash-while-scoring)", path.display());
                std::process::abort();
            }
            self.score(path, bytes)
        };
        self.attempts.finish().map_err(|e| format!("{e:#}"))?;
        Ok(scored)
    }

    /// Scores `bytes`; a panic inside decoding or tract becomes this file's error instead of
    /// taking the service down (a restart would meet the same file and panic again).
    fn score(&mut self, path: &Path, bytes: &[u8]) -> Result<cxr_pi_model::Score, String> {
        let session = &mut self.session;
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cxr_pi_model::score(session, path, bytes)));
        match outcome {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(panic) => {
                // The session's scratch state may be half-updated: start a fresh one.
                self.session = self.session.model().session();
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned());
                Err(format!(
                    "{}: the scorer crashed on this file ({}); filed as failed so the service can go on",
                    path.display(),
                    what.unwrap_or_default()
                ))
            }
        }
    }
}

/// `name@sha256-prefix`: which model scored a row, for the `model` column and the start-up log.
pub fn model_label(model: &Model) -> String {
    format!("{}@{}", model.card.name, model.short_sha())
}
