//! The COVID-19 Radiography Database (Chowdhury et al., Rahman et al.): `COVID/COVID-N`,
//! `Normal/Normal-N`, `Viral Pneumonia/Viral Pneumonia-N`, `Lung_Opacity/…`. It has no patient
//! ids, so each image gets a pseudo id (`covid19-radiography:COVID-17`); cross-collection copies
//! are caught by the near-duplicate search instead.

use super::{DatasetError, Record, SkipReport, file_stem, folder, subfolders};
use std::path::Path;

/// A class folder whose files are named after it (`COVID/COVID-12.png`).
pub(super) fn looks_like(dir: &Path) -> bool {
    subfolders(dir).iter().any(|sub| {
        let name = sub.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        name.eq_ignore_ascii_case("covid")
            && std::fs::read_dir(sub).is_ok_and(|mut entries| {
                entries.any(|e| e.is_ok_and(|e| file_stem(&e.path()).to_ascii_lowercase().starts_with("covid")))
            })
    })
}

pub(super) fn read(dir: &Path, source: &str, skipped: &mut SkipReport) -> Result<Vec<Record>, DatasetError> {
    folder::read(dir, source, skipped, folder::pseudo_patient_id)
}
