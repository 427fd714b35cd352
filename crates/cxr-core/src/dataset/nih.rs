//! NIH ChestX-ray14 images sorted into class folders (`No_findings/`, `Pneumonia/`), named
//! `PPPPPPPP_NNN.png` where the 8-digit prefix is the patient: follow-up films of one patient
//! share it and must stay in one split.

use super::{DatasetError, Record, SkipReport, file_stem, folder, subfolders};
use std::path::Path;

/// The 8-digit patient prefix of an NIH file name (`00000506_013.jpg` → `00000506`).
pub(super) fn nih_patient_prefix(stem: &str) -> Option<&str> {
    let (prefix, rest) = stem.split_once('_')?;
    (prefix.len() == 8 && prefix.bytes().all(|b| b.is_ascii_digit()) && !rest.is_empty()).then_some(prefix)
}

/// Class folders whose files all carry the NIH 8-digit prefix.
pub(super) fn looks_like(dir: &Path) -> bool {
    if !folder::looks_like(dir) {
        return false;
    }
    let mut named = 0usize;
    for sub in subfolders(dir) {
        let Ok(entries) = std::fs::read_dir(&sub) else { continue };
        for entry in entries.flatten().take(20) {
            if nih_patient_prefix(&file_stem(&entry.path())).is_none() {
                return false;
            }
            named += 1;
        }
    }
    named > 0
}

fn patient_id(_source: &str, path: &Path, skipped: &mut SkipReport) -> Option<String> {
    let stem = file_stem(path);
    match nih_patient_prefix(&stem) {
        Some(prefix) => Some(prefix.to_owned()),
        None => {
            skipped.skip("file name without the NIH 8-digit patient prefix", path.display());
            None
        }
    }
}

pub(super) fn read(dir: &Path, source: &str, skipped: &mut SkipReport) -> Result<Vec<Record>, DatasetError> {
    folder::read(dir, source, skipped, patient_id)
}

#[cfg(test)]
mod tests {
    use super::nih_patient_prefix;

    #[test]
    fn prefix_is_the_eight_digit_patient() {
        assert_eq!(nih_patient_prefix("00000506_013"), Some("00000506"));
        assert_eq!(nih_patient_prefix("0000506_013"), None);
        assert_eq!(nih_patient_prefix("COVID-1"), None);
    }
}
