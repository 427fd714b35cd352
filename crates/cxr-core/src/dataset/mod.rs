//! Readers for the public chest X-ray collections, each in its upstream layout.
//!
//! Every reader turns a collection folder into [`Record`]s (one per usable image) plus a
//! [`SkipReport`] naming and counting everything it left out and why — lateral views, CT rows,
//! rows naming missing files, unknown findings — so nothing is dropped silently.
//! [`discover`] recognises which layout a folder has, or, for a folder of collections such as
//! `../shared/datasets`, the layout of each sub-folder.
//!
//! Readers only look at metadata and file names; whether an image actually decodes is checked
//! when it is fingerprinted (see [`crate::manifest::index_datasets`]).

mod coronahack;
mod folder;
mod hannover;
mod ieee8023;
mod kermany;
mod nih;
mod radiography;

pub use kermany::kermany_patient_id;

use crate::label::Class;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// One usable image as its collection describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The file, joined onto the root the user named.
    pub path: PathBuf,
    /// The collection's folder name, e.g. `hannover-covid`.
    pub source: String,
    /// The collection's patient id, or a pseudo id `source:file-stem` where it has none
    /// (so each image is its own patient, which is the only safe assumption).
    pub patient_id: String,
    /// The projection as the metadata states it (`PA`, `AP Supine`…), or `frontal` for
    /// collections documented as frontal-only without per-image views.
    pub view: String,
    pub label: Class,
}

/// Everything a reader left out, by reason, with a count and the first example of each.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkipReport {
    pub reasons: BTreeMap<String, SkipCount>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkipCount {
    pub count: usize,
    pub first: String,
}

impl SkipReport {
    /// Counts one skipped item under `reason`; `item` names it (a file or CSV row).
    pub fn skip(&mut self, reason: impl Into<String>, item: impl fmt::Display) {
        self.reasons
            .entry(reason.into())
            .and_modify(|c| c.count += 1)
            .or_insert_with(|| SkipCount { count: 1, first: item.to_string() });
    }

    pub fn total(&self) -> usize {
        self.reasons.values().map(|c| c.count).sum()
    }

    pub fn count(&self, reason: &str) -> usize {
        self.reasons.get(reason).map_or(0, |c| c.count)
    }

    pub fn is_empty(&self) -> bool {
        self.reasons.is_empty()
    }

    pub fn merge(&mut self, other: SkipReport) {
        for (reason, c) in other.reasons {
            self.reasons.entry(reason).and_modify(|mine| mine.count += c.count).or_insert(c);
        }
    }
}

impl fmt::Display for SkipReport {
    /// One line per reason: `lateral view (L): 44 (first: images/x.jpg)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (reason, c) in &self.reasons {
            writeln!(f, "{reason}: {} (first: {})", c.count, c.first)?;
        }
        Ok(())
    }
}

/// The folder layouts we can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// ieee8023/covid-chestxray-dataset: `metadata.csv` + `images/`.
    Ieee8023,
    /// COVID-19 Radiography Database: `COVID/COVID-N.png`, `Normal/Normal-N.png`, …
    Radiography,
    /// Kermany et al.: `{train,test,val}/{NORMAL,PNEUMONIA}/`.
    Kermany,
    /// Hannover Medical School: `data.csv` + `png/`.
    Hannover,
    /// NIH ChestX-ray14 images in class folders, named `PPPPPPPP_NNN.png`.
    Nih,
    /// Kaggle CoronaHack: `Chest_xray_Corona_Metadata.csv` + `train/`, `test/`.
    CoronaHack,
    /// Any folder whose sub-folders are class names (`covid`, `No_findings`, …).
    FolderPerClass,
}

impl Layout {
    pub fn name(self) -> &'static str {
        match self {
            Layout::Ieee8023 => "ieee8023 metadata.csv",
            Layout::Radiography => "COVID-19 Radiography Database",
            Layout::Kermany => "Kermany chest_xray",
            Layout::Hannover => "Hannover data.csv",
            Layout::Nih => "NIH ChestX-ray14 folders",
            Layout::CoronaHack => "CoronaHack metadata CSV",
            Layout::FolderPerClass => "folder per class",
        }
    }

    /// The layout of `dir`, if it is a collection we can read. Specific layouts are tried
    /// before the generic folder-per-class one, which would otherwise claim the NIH and
    /// Radiography folders too and lose their patient ids.
    pub fn detect(dir: &Path) -> Option<Layout> {
        if ieee8023::looks_like(dir) {
            Some(Layout::Ieee8023)
        } else if hannover::looks_like(dir) {
            Some(Layout::Hannover)
        } else if coronahack::looks_like(dir) {
            Some(Layout::CoronaHack)
        } else if kermany::looks_like(dir) {
            Some(Layout::Kermany)
        } else if nih::looks_like(dir) {
            Some(Layout::Nih)
        } else if radiography::looks_like(dir) {
            Some(Layout::Radiography)
        } else if folder::looks_like(dir) {
            Some(Layout::FolderPerClass)
        } else {
            None
        }
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a collection could not be read at all (as opposed to items skipped inside it).
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("{path}: cannot read: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: cannot parse CSV: {source}")]
    Csv { path: PathBuf, source: csv::Error },
    #[error("{path}: CSV lacks column `{column}`; is this the right metadata file?")]
    MissingColumn { path: PathBuf, column: String },
    #[error(
        "{path}: not a dataset folder we recognise (expected one of: ieee8023 metadata.csv, Hannover data.csv, CoronaHack metadata CSV, Kermany train/test folders, or class-named sub-folders such as COVID/ Normal/ Pneumonia/)"
    )]
    UnknownLayout { path: PathBuf },
}

/// What reading one collection gave.
#[derive(Debug, Clone)]
pub struct Collection {
    pub root: PathBuf,
    pub source: String,
    pub layout: Layout,
    pub records: Vec<Record>,
    pub skipped: SkipReport,
}

/// Reads the collection at `dir` in the given layout; the source name is the folder's name.
pub fn read_collection(dir: &Path, layout: Layout) -> Result<Collection, DatasetError> {
    let source = source_name(dir);
    let mut skipped = SkipReport::default();
    let records = match layout {
        Layout::Ieee8023 => ieee8023::read(dir, &source, &mut skipped)?,
        Layout::Radiography => radiography::read(dir, &source, &mut skipped)?,
        Layout::Kermany => kermany::read(dir, &source, &mut skipped)?,
        Layout::Hannover => hannover::read(dir, &source, &mut skipped)?,
        Layout::Nih => nih::read(dir, &source, &mut skipped)?,
        Layout::CoronaHack => coronahack::read(dir, &source, &mut skipped)?,
        Layout::FolderPerClass => folder::read(dir, &source, &mut skipped, folder::pseudo_patient_id)?,
    };
    Ok(Collection { root: dir.to_owned(), source, layout, records, skipped })
}

/// The collections under the roots the user named.
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    pub collections: Vec<(PathBuf, Layout)>,
    /// Folders that are neither a collection nor contain one, and roots that do not exist.
    pub unrecognised: Vec<PathBuf>,
}

/// Finds the collections in each root: the root itself when its layout is recognised,
/// otherwise each of its sub-folders (a folder of collections such as `../shared/datasets`).
/// Nothing is ignored silently: unrecognised sub-folders are listed in the result.
pub fn discover(roots: &[PathBuf]) -> Discovery {
    let mut found = Discovery::default();
    for root in roots {
        if let Some(layout) = Layout::detect(root) {
            found.collections.push((root.clone(), layout));
            continue;
        }
        let mut subdirs: Vec<PathBuf> = match std::fs::read_dir(root) {
            Ok(entries) => entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect(),
            Err(_) => Vec::new(),
        };
        subdirs.sort();
        let mut any = false;
        for sub in subdirs {
            if is_hidden(&sub) {
                continue;
            }
            match Layout::detect(&sub) {
                Some(layout) => {
                    any = true;
                    found.collections.push((sub, layout));
                }
                None => found.unrecognised.push(sub),
            }
        }
        if !any {
            found.unrecognised.push(root.clone());
        }
    }
    found
}

/// A collection's name: its folder's name (`hannover-covid`), which is what `--holdout-source` takes.
pub fn source_name(dir: &Path) -> String {
    let named = dir.file_name().map(|n| n.to_string_lossy().into_owned());
    match named {
        Some(n) if n != "." && n != ".." => n,
        // `.` or `..`: name it after the folder it resolves to.
        _ => std::fs::canonicalize(dir)
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| dir.display().to_string()),
    }
}

fn is_hidden(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

/// Extensions of files we try to decode. DICOM files often have none, so that counts too.
fn has_image_extension(path: &Path) -> bool {
    match path.extension() {
        None => true,
        Some(ext) => {
            let ext = ext.to_string_lossy().to_ascii_lowercase();
            matches!(ext.as_str(), "png" | "jpg" | "jpeg" | "dcm" | "dicom")
        }
    }
}

/// The files directly inside `dir`, sorted, with non-image and hidden files counted as skipped.
fn image_files(dir: &Path, skipped: &mut SkipReport) -> Result<Vec<PathBuf>, DatasetError> {
    let entries = std::fs::read_dir(dir).map_err(|source| DatasetError::Io { path: dir.to_owned(), source })?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(|source| DatasetError::Io { path: dir.to_owned(), source })?.path();
        if path.is_dir() {
            skipped.skip("sub-folder inside a class folder", path.display());
        } else if is_hidden(&path) {
            skipped.skip("hidden file", path.display());
        } else if !has_image_extension(&path) {
            skipped.skip("not an image file name (extension)", path.display());
        } else {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Sub-folders of `dir`, sorted.
fn subfolders(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).filter(|p| p.is_dir() && !is_hidden(p)).collect())
        .unwrap_or_default();
    dirs.sort();
    dirs
}

fn file_stem(path: &Path) -> String {
    path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Opens a CSV and maps the header names the reader needs to column indices.
fn open_csv(path: &Path, columns: &[&str]) -> Result<(csv::Reader<std::fs::File>, Vec<usize>), DatasetError> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .map_err(|source| DatasetError::Csv { path: path.to_owned(), source })?;
    let headers = reader.byte_headers().map_err(|source| DatasetError::Csv { path: path.to_owned(), source })?.clone();
    let indices = columns
        .iter()
        .map(|&column| {
            headers
                .iter()
                .position(|h| String::from_utf8_lossy(h).trim() == column)
                .ok_or_else(|| DatasetError::MissingColumn { path: path.to_owned(), column: column.to_owned() })
        })
        .collect::<Result<_, _>>()?;
    Ok((reader, indices))
}

/// Reads a metadata CSV row by row. Rows that do not parse are counted as skipped; every other
/// row's `columns` fields go to `to_record`, and its `Err(reason)` is counted under that reason
/// with the row's place (`file:line (fields[name_field])`), so no row is ever dropped silently.
fn read_metadata_csv(
    csv_path: &Path,
    columns: &[&str],
    name_field: usize,
    skipped: &mut SkipReport,
    mut to_record: impl FnMut(&[String]) -> Result<Record, String>,
) -> Result<Vec<Record>, DatasetError> {
    let (mut reader, cols) = open_csv(csv_path, columns)?;
    let mut records = Vec::new();
    let mut row = csv::ByteRecord::new();
    // Line 1 is the header.
    let mut line = 1usize;
    loop {
        line += 1;
        match reader.read_byte_record(&mut row) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                skipped.skip("unparseable CSV row", format!("{}:{line}: {e}", csv_path.display()));
                continue;
            }
        }
        let fields: Vec<String> = cols.iter().map(|&c| field(&row, c)).collect();
        match to_record(&fields) {
            Ok(record) => records.push(record),
            Err(reason) => skipped.skip(reason, format!("{}:{line} ({})", csv_path.display(), fields[name_field])),
        }
    }
    Ok(records)
}

/// The header names of a CSV, or nothing when it cannot be read (used for layout detection).
fn csv_headers(path: &Path) -> Vec<String> {
    csv::ReaderBuilder::new()
        .from_path(path)
        .ok()
        .and_then(|mut r| r.byte_headers().ok().cloned())
        .map(|h| h.iter().map(|c| String::from_utf8_lossy(c).trim().to_owned()).collect())
        .unwrap_or_default()
}

/// The field at `index`, trimmed; metadata files are not always UTF-8 (ieee8023's notes are
/// Latin-1), and only the fields we use need to be readable.
fn field(row: &csv::ByteRecord, index: usize) -> String {
    row.get(index).map(|b| String::from_utf8_lossy(b).trim().to_owned()).unwrap_or_default()
}
