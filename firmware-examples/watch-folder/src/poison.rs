//! The poison-file rule: a file that was being scored when the service died twice in a row is
//! filed under `failed/` instead of being scored a third time.
//!
//! A panic while scoring is caught (`Service::score`), but an out-of-memory kill, a stack
//! overflow or an abort in native code is not: systemd restarts the service, which meets the
//! same file first again and dies again, forever, while the rest of the inbox waits. So before
//! scoring, the file's name and sha256 are written durably to a hidden marker in the inbox with
//! the number of starts that never finished; the marker is removed once scoring returns.

use crate::filing::sync_dir;
use anyhow::Context;
use std::path::{Path, PathBuf};

/// Unfinished starts after which a file is not scored again.
pub const DEATHS_BEFORE_QUARANTINE: u32 = 2;

/// The hidden marker `INBOX/.cxr-watch-scoring`; hidden names are never inbox inputs.
pub struct Attempts {
    marker: PathBuf,
}

impl Attempts {
    pub fn new(inbox: &Path) -> Attempts {
        Attempts { marker: inbox.join(".cxr-watch-scoring") }
    }

    /// Records that scoring `name` with `sha256` starts, and returns how many earlier starts
    /// of the same file never finished (the service died during them).
    pub fn start(&self, name: &str, sha256: &str) -> anyhow::Result<u32> {
        let earlier = std::fs::read_to_string(&self.marker).ok().and_then(|text| {
            let mut lines = text.lines();
            let (n, s, count) = (lines.next()?, lines.next()?, lines.next()?);
            (n == name && s == sha256).then(|| count.parse::<u32>().ok()).flatten()
        });
        let deaths = earlier.unwrap_or(0);
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let mut file = std::fs::File::create(&self.marker)?;
            writeln!(file, "{name}\n{sha256}\n{}", deaths + 1)?;
            file.sync_all()
        };
        write().with_context(|| format!("{}: cannot record the file being scored", self.marker.display()))?;
        sync_dir(self.marker.parent().unwrap_or(Path::new(".")))?;
        Ok(deaths)
    }

    /// Scoring returned: the file did not kill the service.
    pub fn finish(&self) -> anyhow::Result<()> {
        match std::fs::remove_file(&self.marker) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("{}: cannot remove", self.marker.display()))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unfinished_starts_of_the_same_file_are_counted_and_another_file_resets_them() {
        let dir = tempfile::tempdir().unwrap();
        let attempts = Attempts::new(dir.path());
        assert_eq!(attempts.start("a.png", "aa").unwrap(), 0);
        assert_eq!(attempts.start("a.png", "aa").unwrap(), 1, "died once while scoring a.png");
        assert_eq!(attempts.start("a.png", "aa").unwrap(), 2);
        assert_eq!(attempts.start("a.png", "bb").unwrap(), 0, "same name, other content");
        attempts.finish().unwrap();
        assert_eq!(attempts.start("a.png", "bb").unwrap(), 0, "finished: no death recorded");
    }
}
