//! Kermany et al. 2018 (Guangzhou pediatric set): `{train,test,val}/{NORMAL,PNEUMONIA}/`.
//! Its own train/test folders are ignored for splitting: they are not grouped by patient and
//! the same child appears in both, so the manifest re-splits everything by patient.
//! File names carry the patient: `person1000_bacteria_2931.jpeg`, `IM-0115-0001.jpeg`,
//! `NORMAL2-IM-0012-0001.jpeg`, and the `…-0001-0002` / `…_N_M` follow-ups of each.

use super::{DatasetError, Record, SkipReport, image_files, subfolders};
use crate::label::Class;
use std::path::Path;

const PARTS: [&str; 3] = ["train", "test", "val"];

/// The patient in a Kermany file name, or `None` for a name of none of the known shapes:
/// `person1000_bacteria_2931` → `person1000`, `IM-0115-0001` → `IM-0115`,
/// `NORMAL2-IM-0012-0001-0002` → `NORMAL2-IM-0012`.
pub fn kermany_patient_id(file_name: &str) -> Option<String> {
    let stem = file_name.rsplit_once('.').map_or(file_name, |(stem, _)| stem);
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = stem.strip_prefix("person") {
        let (number, tail) = rest.split_once('_')?;
        return (digits(number) && !tail.is_empty()).then(|| format!("person{number}"));
    }
    let parts: Vec<&str> = stem.split('-').collect();
    match parts.as_slice() {
        ["IM", patient, rest @ ..] if digits(patient) && !rest.is_empty() && rest.iter().all(|p| digits(p)) => {
            Some(format!("IM-{patient}"))
        }
        [prefix, "IM", patient, rest @ ..]
            if prefix.strip_prefix("NORMAL").is_some_and(digits)
                && digits(patient)
                && !rest.is_empty()
                && rest.iter().all(|p| digits(p)) =>
        {
            Some(format!("{prefix}-IM-{patient}"))
        }
        _ => None,
    }
}

/// A `train` or `test` folder holding `NORMAL` or `PNEUMONIA`.
pub(super) fn looks_like(dir: &Path) -> bool {
    PARTS.iter().any(|part| {
        let part = dir.join(part);
        part.join("NORMAL").is_dir() || part.join("PNEUMONIA").is_dir()
    })
}

pub(super) fn read(dir: &Path, source: &str, skipped: &mut SkipReport) -> Result<Vec<Record>, DatasetError> {
    let mut records = Vec::new();
    for sub in subfolders(dir) {
        let part = sub.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if !PARTS.contains(&part.as_str()) {
            skipped.skip("folder other than train/test/val", sub.display());
            continue;
        }
        for class_dir in subfolders(&sub) {
            let name = class_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let Some(label) = Class::from_folder_name(&name) else {
                skipped.skip(format!("folder `{name}` is not a class name"), class_dir.display());
                continue;
            };
            for path in image_files(&class_dir, skipped)? {
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let Some(patient_id) = kermany_patient_id(&name) else {
                    skipped.skip("file name without a Kermany patient id", path.display());
                    continue;
                };
                records.push(Record { path, source: source.to_owned(), patient_id, view: "frontal".to_owned(), label });
            }
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::kermany_patient_id;

    #[test]
    fn every_name_shape_gives_its_patient() {
        for (name, patient) in [
            ("person1000_bacteria_2931.jpeg", "person1000"),
            ("person1_virus_6.jpeg", "person1"),
            ("person1_virus_11_1.jpeg", "person1"),
            ("IM-0115-0001.jpeg", "IM-0115"),
            ("IM-0011-0001-0001.jpeg", "IM-0011"),
            ("NORMAL2-IM-0012-0001.jpeg", "NORMAL2-IM-0012"),
            ("NORMAL2-IM-0173-0001-0002.jpeg", "NORMAL2-IM-0173"),
        ] {
            assert_eq!(kermany_patient_id(name).as_deref(), Some(patient), "{name}");
        }
        for name in ["COVID-1.jpg", "IM-0115.jpeg", "personX_virus.jpeg", "NORMALX-IM-1-2.jpeg", ".jpeg"] {
            assert_eq!(kermany_patient_id(name), None, "{name}");
        }
    }
}
