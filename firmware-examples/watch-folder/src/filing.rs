//! Filing an image under `done/` or `failed/` so that the move survives a power cut and never
//! overwrites an earlier image that had the same name.

use anyhow::Context;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::path::{Path, PathBuf};

/// `dir/name` if free, else `dir/stem.1.ext`, `dir/stem.2.ext`, … The service is the only
/// writer of `dir`, so a name free now is still free when the move happens.
pub fn free_name(dir: &Path, name: &OsStr) -> PathBuf {
    let first = dir.join(name);
    if !first.exists() {
        return first;
    }
    let as_path = Path::new(name);
    let stem = as_path.file_stem().unwrap_or(name);
    let ext = as_path.extension();
    (1..)
        .map(|n| {
            let mut candidate = OsString::from(stem);
            candidate.push(format!(".{n}"));
            if let Some(ext) = ext {
                candidate.push(".");
                candidate.push(ext);
            }
            dir.join(candidate)
        })
        .find(|p| !p.exists())
        .expect("some suffix is free")
}

/// Renames `from` to `to` (same filesystem: atomic) and fsyncs both folders, so after a power
/// cut the image is in exactly one of them and the folder listing agrees with the CSV.
pub fn move_durably(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::rename(from, to).with_context(|| format!("{}: cannot move to {}", from.display(), to.display()))?;
    for dir in [to.parent(), from.parent()].into_iter().flatten() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Makes entries created, renamed or removed in `dir` durable (Linux: fsync on the folder).
pub fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    File::open(dir).and_then(|d| d.sync_all()).with_context(|| format!("{}: cannot sync folder", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taken_names_get_a_numbered_suffix_before_the_extension() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert_eq!(free_name(d, OsStr::new("x.png")), d.join("x.png"));
        std::fs::write(d.join("x.png"), b"1").unwrap();
        std::fs::write(d.join("x.1.png"), b"2").unwrap();
        assert_eq!(free_name(d, OsStr::new("x.png")), d.join("x.2.png"));
        std::fs::write(d.join("README"), b"3").unwrap();
        assert_eq!(free_name(d, OsStr::new("README")), d.join("README.1"));
    }

    #[test]
    fn moving_onto_a_missing_folder_names_both_paths() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("a.png");
        std::fs::write(&from, b"x").unwrap();
        let err = format!("{:#}", move_durably(&from, &dir.path().join("nope/a.png")).unwrap_err());
        assert!(err.contains("a.png: cannot move to") && err.contains("nope"), "{err}");
        assert!(from.exists());
    }
}
