//! The results CSV, which is also the service's memory across restarts.
//!
//! Each image gets one row, written and fsynced *before* the image is moved out of the inbox.
//! So after a crash or power cut at any point, an image still in the inbox either has no row
//! (it was not scored yet, or its row never reached the disk: score it) or has a row whose
//! destination does not exist yet (it was scored, the move was lost: finish the move, do not
//! score it again). Rows are matched by file name *and* sha256, so a different image that
//! reuses a name is scored as new. A row cut short by a power cut is dropped on start-up.

use anyhow::{Context, bail};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Column names, in order. `moved_to` is relative to the inbox (`done/x.png`, `failed/y.png`).
pub const HEADER: [&str; 9] =
    ["file", "sha256", "bytes", "p_covid", "class", "model", "moved_to", "scored_at_unix", "error"];

/// One image's outcome. A failed image has no `p_covid`/`class` and a non-empty `error`.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub file: String,
    pub sha256: String,
    pub bytes: u64,
    pub p_covid: Option<f32>,
    pub class: String,
    pub model: String,
    pub moved_to: String,
    pub scored_at_unix: u64,
    pub error: String,
}

impl Row {
    fn fields(&self) -> [String; 9] {
        [
            self.file.clone(),
            self.sha256.clone(),
            self.bytes.to_string(),
            self.p_covid.map_or(String::new(), |p| format!("{p:.6}")),
            self.class.clone(),
            self.model.clone(),
            self.moved_to.clone(),
            self.scored_at_unix.to_string(),
            self.error.clone(),
        ]
    }
}

/// The open results CSV and, per (file name, sha256), where each such image was sent.
pub struct Journal {
    path: PathBuf,
    file: File,
    destinations: HashMap<(String, String), Vec<String>>,
    appended: usize,
}

impl Journal {
    /// Opens `path`, creating it with a header if it is missing or empty, and dropping a last
    /// row that a crash cut short.
    pub fn open(path: &Path) -> anyhow::Result<Journal> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .with_context(|| format!("{}: cannot open results CSV", path.display()))?;
        let text = std::fs::read(path).with_context(|| format!("{}: cannot read results CSV", path.display()))?;
        let complete = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        if complete < text.len() {
            eprintln!(
                "{}: dropping an unfinished last row ({} bytes) left by a crash; its image is still in the inbox and will be scored",
                path.display(),
                text.len() - complete
            );
            file.set_len(complete as u64)
                .with_context(|| format!("{}: cannot truncate unfinished row", path.display()))?;
            file.sync_data().with_context(|| format!("{}: cannot sync", path.display()))?;
        }
        let mut journal = Journal { path: path.to_owned(), file, destinations: HashMap::new(), appended: 0 };
        if complete == 0 {
            journal.write_durably(&HEADER.map(String::from))?;
            if let Some(dir) = path.parent() {
                crate::filing::sync_dir(dir)?;
            }
        } else {
            journal.index(&text[..complete])?;
        }
        Ok(journal)
    }

    fn index(&mut self, text: &[u8]) -> anyhow::Result<()> {
        let mut reader = csv::Reader::from_reader(text);
        let header = reader.headers().with_context(|| format!("{}: cannot parse header", self.path.display()))?;
        if header.iter().ne(HEADER) {
            bail!(
                "{}: not a cxr-watch results file (header {:?}, expected {:?}); move it away or pass another --csv",
                self.path.display(),
                header.iter().collect::<Vec<_>>(),
                HEADER
            );
        }
        for (i, record) in reader.records().enumerate() {
            let record = record.with_context(|| format!("{}: row {} is not valid CSV", self.path.display(), i + 2))?;
            let (file, sha, moved_to) = (&record[0], &record[1], &record[6]);
            self.destinations.entry((file.to_owned(), sha.to_owned())).or_default().push(moved_to.to_owned());
        }
        Ok(())
    }

    /// Where earlier images with this name and content were sent (`done/x.png`, …).
    pub fn destinations(&self, file: &str, sha256: &str) -> &[String] {
        self.destinations.get(&(file.to_owned(), sha256.to_owned())).map_or(&[], Vec::as_slice)
    }

    /// Appends `row` and fsyncs it: when this returns, the row survives a power cut.
    pub fn append(&mut self, row: &Row) -> anyhow::Result<()> {
        self.write_durably(&row.fields())?;
        self.destinations.entry((row.file.clone(), row.sha256.clone())).or_default().push(row.moved_to.clone());
        self.appended += 1;
        Ok(())
    }

    /// Rows appended by this process.
    pub fn appended(&self) -> usize {
        self.appended
    }

    /// Writes one record at the end; on failure (disk full…) cuts the file back to where it
    /// was, so a half-written row never sits in front of the next one.
    fn write_durably(&mut self, fields: &[String]) -> anyhow::Result<()> {
        let mut line = csv::Writer::from_writer(Vec::new());
        line.write_record(fields).expect("writing CSV into memory cannot fail");
        let line = line.into_inner().expect("flushing CSV into memory cannot fail");
        let path = &self.path;
        let end = self.file.seek(SeekFrom::End(0)).with_context(|| format!("{}: cannot seek", path.display()))?;
        let written = self.file.write_all(&line).and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            let _ = self.file.set_len(end);
            return Err(e)
                .with_context(|| format!("{}: cannot append a row (disk full or read-only?)", path.display()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(file: &str, moved_to: &str) -> Row {
        Row {
            file: file.into(),
            sha256: "ab".repeat(32),
            bytes: 3,
            p_covid: Some(0.25),
            class: "non-covid".into(),
            model: "m".into(),
            moved_to: moved_to.into(),
            scored_at_unix: 1,
            error: String::new(),
        }
    }

    #[test]
    fn rows_survive_reopening_and_a_cut_short_row_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.csv");
        let mut journal = Journal::open(&path).unwrap();
        journal.append(&row("a.png", "done/a.png")).unwrap();
        journal.append(&Row { error: "a, \"quoted\"\nerror".into(), ..row("b.png", "failed/b.png") }).unwrap();
        drop(journal);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("c.png,abab");
        std::fs::write(&path, &text).unwrap();

        let journal = Journal::open(&path).unwrap();
        let sha = "ab".repeat(32);
        assert_eq!(journal.destinations("a.png", &sha), ["done/a.png"]);
        assert_eq!(journal.destinations("b.png", &sha), ["failed/b.png"]);
        assert!(journal.destinations("c.png", &sha).is_empty());
        assert!(journal.destinations("a.png", "other").is_empty());
        assert!(std::fs::read_to_string(&path).unwrap().ends_with('\n'));
    }

    #[test]
    fn a_foreign_csv_is_refused_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other.csv");
        std::fs::write(&path, "x,y\n1,2\n").unwrap();
        let err = format!("{:#}", Journal::open(&path).err().unwrap());
        assert!(err.contains("other.csv") && err.contains("not a cxr-watch results file"), "{err}");
    }
}
