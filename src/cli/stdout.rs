//! Standard output for every subcommand, through the `out!` and `outln!` macros.
//!
//! `println!` panics when stdout is a pipe whose reader has gone (`cxr predict --json … | head -1`).
//! Here the first failed write closes stdout for the rest of the run instead: later output is
//! dropped and the command still finishes its work, so files it writes after printing (the
//! manifests of `data folds`, say) are complete, and it exits with its usual status. A closed
//! pipe is the reader's choice and says nothing; any other failure (a full disk behind `>`) is
//! reported once on stderr and makes the run exit with status 2 ([`failed`]).

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set at the first failed write: nothing more is written.
static CLOSED: AtomicBool = AtomicBool::new(false);
/// Set when that failure was not a closed pipe.
static FAILED: AtomicBool = AtomicBool::new(false);

/// Writes to stdout (line-buffered, as `print!`), unless an earlier write failed.
pub fn write(args: fmt::Arguments<'_>) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let result = io::stdout().lock().write_fmt(args);
    if let Err(e) = result {
        closed_by(&e);
    }
}

/// Flushes what a last `out!` left without a newline, with the same handling of failures.
pub fn flush() {
    if !CLOSED.load(Ordering::Relaxed)
        && let Err(e) = io::stdout().lock().flush()
    {
        closed_by(&e);
    }
}

/// Whether writing to stdout failed for another reason than a closed pipe.
pub fn failed() -> bool {
    FAILED.load(Ordering::Relaxed)
}

fn closed_by(e: &io::Error) {
    if !CLOSED.swap(true, Ordering::Relaxed) && e.kind() != io::ErrorKind::BrokenPipe {
        FAILED.store(true, Ordering::Relaxed);
        eprintln!("error: cannot write to stdout: {e}");
    }
}
