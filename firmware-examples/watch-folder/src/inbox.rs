//! Deciding which files in the inbox are complete images ready to score.
//!
//! Polling with std, no inotify: a Pi scoring a few images a minute gains nothing from events,
//! and polling also works on network and USB mounts where inotify does not. A file is ready
//! once its size and modification time have not changed for the settle time, so an image
//! still being copied in (scp, a Samba share) is not read half-written. Writers that can
//! should copy to a hidden or `.part` name and rename: such names are never picked up.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// Names that tools use while a file is still being written.
const IN_PROGRESS_SUFFIXES: [&str; 6] = [".part", ".partial", ".tmp", ".crdownload", ".filepart", "~"];

/// What a file looked like when last polled, and since when.
struct Seen {
    len: u64,
    modified: Option<SystemTime>,
    unchanged_since: Instant,
    /// Not before this instant (after a failure to read or move it).
    retry_at: Option<Instant>,
}

pub struct Inbox {
    dir: PathBuf,
    /// Files the service itself writes there (the results CSV), never inputs.
    own_files: Vec<PathBuf>,
    settle: Duration,
    seen: HashMap<PathBuf, Seen>,
}

impl Inbox {
    pub fn new(dir: &Path, own_files: Vec<PathBuf>, settle: Duration) -> Inbox {
        Inbox { dir: dir.to_owned(), own_files, settle, seen: HashMap::new() }
    }

    /// Files unchanged for the settle time, by name. Sub-folders (`done/`, `failed/`), hidden
    /// files and in-progress names are skipped.
    pub fn ready(&mut self) -> std::io::Result<Vec<PathBuf>> {
        self.ready_at(Instant::now())
    }

    /// [`Inbox::ready`] as of `now`, so the settle rule can be tested by stepping a clock.
    fn ready_at(&mut self, now: Instant) -> std::io::Result<Vec<PathBuf>> {
        let mut present = HashSet::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            let path = entry.path();
            if !is_candidate_name(&entry.file_name().to_string_lossy()) || self.own_files.contains(&path) {
                continue;
            }
            // Follows no symlink: only plain files that live here can be moved atomically.
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            let (len, modified) = (meta.len(), meta.modified().ok());
            if self.seen.get(&path).is_none_or(|seen| seen.len != len || seen.modified != modified) {
                // The log says when the settle clock (re)starts, e.g. for a copy still under way.
                eprintln!("{}: {len} bytes; scored once unchanged for {} ms", path.display(), self.settle.as_millis());
                self.seen.insert(path.clone(), Seen { len, modified, unchanged_since: now, retry_at: None });
            }
            present.insert(path);
        }
        self.seen.retain(|path, _| present.contains(path));
        let mut ready: Vec<PathBuf> = present
            .into_iter()
            .filter(|p| {
                let seen = &self.seen[p];
                now.duration_since(seen.unchanged_since) >= self.settle && seen.retry_at.is_none_or(|t| now >= t)
            })
            .collect();
        ready.sort();
        Ok(ready)
    }

    /// Files seen and not yet handled, whether settled or not.
    pub fn waiting(&self) -> usize {
        self.seen.len()
    }

    /// Files put off by [`Inbox::retry_later`] and not yet due again.
    pub fn put_off(&self) -> usize {
        let now = Instant::now();
        self.seen.values().filter(|s| s.retry_at.is_some_and(|t| now < t)).count()
    }

    /// Skips `path` for `delay` (it could not be read or moved; maybe a permission a person
    /// will fix). Other files go on meanwhile.
    pub fn retry_later(&mut self, path: &Path, delay: Duration) {
        if let Some(seen) = self.seen.get_mut(path) {
            seen.retry_at = Some(Instant::now() + delay);
        }
    }

    /// `path` has left the inbox.
    pub fn forget(&mut self, path: &Path) {
        self.seen.remove(path);
    }
}

/// Hidden files and names of files still being written are not inputs.
fn is_candidate_name(name: &str) -> bool {
    !name.starts_with('.') && !IN_PROGRESS_SUFFIXES.iter().any(|s| name.ends_with(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On a stepped clock (no sleeps, so a stalled machine cannot change the outcome): a file is
    /// ready exactly one settle time after its last change, not a moment before.
    #[test]
    fn a_file_is_ready_only_after_it_stops_changing() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("results.csv");
        std::fs::write(&csv, b"own").unwrap();
        std::fs::create_dir(dir.path().join("done")).unwrap();
        let settle = Duration::from_millis(300);
        let mut inbox = Inbox::new(dir.path(), vec![csv], settle);
        let a = dir.path().join("a.png");
        std::fs::write(&a, b"half").unwrap();
        std::fs::write(dir.path().join(".b.png.XYZ"), b"rsync temp").unwrap();
        std::fs::write(dir.path().join("c.png.part"), b"in progress").unwrap();
        let start = Instant::now();
        assert!(inbox.ready_at(start).unwrap().is_empty());
        let grew = start + settle / 2;
        std::fs::write(&a, b"half and the rest").unwrap();
        assert!(inbox.ready_at(grew).unwrap().is_empty(), "it just grew");
        assert!(
            inbox.ready_at(start + settle).unwrap().is_empty(),
            "a settle time after it appeared, but it grew since"
        );
        assert!(inbox.ready_at(grew + settle - Duration::from_millis(1)).unwrap().is_empty(), "not yet settled");
        assert_eq!(inbox.ready_at(grew + settle).unwrap(), vec![a.clone()]);
        assert_eq!(inbox.waiting(), 1, "hidden and in-progress names are not inputs");
        inbox.retry_later(&a, Duration::from_secs(60));
        assert!(inbox.ready_at(grew + settle * 2).unwrap().is_empty());
        assert_eq!(inbox.put_off(), 1);
        std::fs::remove_file(&a).unwrap();
        inbox.ready_at(grew + settle * 2).unwrap();
        assert_eq!(inbox.waiting(), 0);
    }
}
