//! Finding X-ray files in folders, for every command that takes a folder (`score`, `eval`).
//!
//! Archives are messy: symbolic links (sometimes in cycles), unreadable sub-folders, README files
//! and DICOMs without an extension sit beside the images. The walk follows links but lists each
//! real folder once, reports what it cannot list instead of failing, and takes files by name
//! (PNG, JPEG, DICOM or no extension); reading each one is what tells a real image from the rest.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// A folder that could not be listed.
#[derive(Debug, thiserror::Error)]
#[error("{}: {reason}", path.display())]
pub struct WalkError {
    pub path: PathBuf,
    pub reason: String,
}

/// File names treated as images when walking folders: PNG, JPEG, DICOM, and files without an
/// extension (DICOM often has none). Everything else in a folder is reported as skipped.
pub fn looks_like_image(path: &Path) -> bool {
    match path.extension().and_then(|e| e.to_str()) {
        None => true,
        Some(ext) => matches!(ext.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg" | "dcm" | "dicom"),
    }
}

/// What a folder walk found.
#[derive(Debug, Default)]
pub struct Walk {
    /// Files named like images (PNG, JPEG, DICOM or no extension), sorted. Special files
    /// (FIFOs, devices) with such names are listed too: reading one fails with the reason.
    pub images: Vec<PathBuf>,
    /// Other files, sorted.
    pub skipped: Vec<PathBuf>,
    /// Folders (or broken links) that could not be listed or followed, and why.
    pub unreadable: Vec<(PathBuf, String)>,
}

/// Walks `dir` recursively, skipping hidden entries. Symbolic links are followed, but each real
/// folder (device and inode) is listed once, so a link cycle (`ln -s .. up`) neither repeats
/// images nor loops. A folder that cannot be listed is reported, and the walk goes on.
pub fn walk(dir: &Path) -> Walk {
    let mut found = Walk::default();
    let mut visited = HashSet::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        match std::fs::metadata(&d) {
            Ok(meta) if !visited.insert(folder_identity(&d, &meta)) => continue,
            Ok(_) => {}
            Err(e) => {
                found.unreadable.push((d, format!("cannot list folder: {e}")));
                continue;
            }
        }
        let entries = match std::fs::read_dir(&d) {
            Ok(entries) => entries,
            Err(e) => {
                found.unreadable.push((d, format!("cannot list folder: {e}")));
                continue;
            }
        };
        for entry in entries {
            let path = match entry {
                Ok(entry) => entry.path(),
                Err(e) => {
                    found.unreadable.push((d.clone(), format!("cannot list folder: {e}")));
                    break;
                }
            };
            if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.')) {
                continue;
            }
            match std::fs::metadata(&path) {
                Ok(meta) if meta.is_dir() => stack.push(path),
                Ok(_) if looks_like_image(&path) => found.images.push(path),
                Ok(_) => found.skipped.push(path),
                Err(e) => found.unreadable.push((path, format!("cannot follow: {e}"))),
            }
        }
    }
    found.images.sort();
    found.skipped.sort();
    found.unreadable.sort();
    found
}

/// A folder's identity on disk, whatever path reached it.
#[cfg(unix)]
fn folder_identity(_: &Path, meta: &std::fs::Metadata) -> (u64, u64, PathBuf) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino(), PathBuf::new())
}

#[cfg(not(unix))]
fn folder_identity(path: &Path, _: &std::fs::Metadata) -> (u64, u64, PathBuf) {
    (0, 0, std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned()))
}

/// Every image file under `dir`, sorted, skipping hidden entries. Returns the skipped files too.
/// Fails on the first folder that cannot be listed (see [`walk`] to go on past it).
pub fn walk_images(dir: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>), WalkError> {
    let found = walk(dir);
    if let Some((path, reason)) = found.unreadable.first() {
        return Err(WalkError { path: path.clone(), reason: reason.clone() });
    }
    Ok((found.images, found.skipped))
}
