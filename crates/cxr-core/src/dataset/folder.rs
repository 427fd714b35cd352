//! The generic layout: one sub-folder per class, named as the public collections name them
//! (`COVID`, `covid`, `No_findings`, `Viral Pneumonia`…; see [`Class::from_folder_name`]).
//! Shared by the Radiography and NIH readers, which differ only in how they name patients.

use super::{DatasetError, Record, SkipReport, file_stem, image_files, subfolders};
use crate::label::Class;
use std::path::Path;

/// True when at least one sub-folder is a class name and holds files.
pub(super) fn looks_like(dir: &Path) -> bool {
    subfolders(dir).iter().any(|sub| is_class_folder(sub))
}

fn is_class_folder(sub: &Path) -> bool {
    let name = sub.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    Class::from_folder_name(&name).is_some()
        && std::fs::read_dir(sub).is_ok_and(|mut entries| entries.any(|e| e.is_ok_and(|e| e.path().is_file())))
}

/// Without patient ids every image must count as its own patient: `source:file-stem`.
pub(super) fn pseudo_patient_id(source: &str, path: &Path, skipped: &mut SkipReport) -> Option<String> {
    let _ = skipped;
    Some(format!("{source}:{}", file_stem(path)))
}

/// Reads every class folder; `patient_id` may refuse a file (returning `None` after counting why).
pub(super) fn read(
    dir: &Path,
    source: &str,
    skipped: &mut SkipReport,
    patient_id: fn(&str, &Path, &mut SkipReport) -> Option<String>,
) -> Result<Vec<Record>, DatasetError> {
    let mut records = Vec::new();
    for sub in subfolders(dir) {
        let name = sub.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let Some(label) = Class::from_folder_name(&name) else {
            let files = std::fs::read_dir(&sub).map(|e| e.count()).unwrap_or(0);
            for _ in 0..files.max(1) {
                skipped.skip(format!("folder `{name}` is not a class name"), sub.display());
            }
            continue;
        };
        for path in image_files(&sub, skipped)? {
            let Some(patient_id) = patient_id(source, &path, skipped) else { continue };
            records.push(Record { path, source: source.to_owned(), patient_id, view: "frontal".to_owned(), label });
        }
    }
    Ok(records)
}
