//! ieee8023/covid-chestxray-dataset (Cohen et al.): `metadata.csv` + `images/`.
//!
//! Only frontal X-rays are kept (views `PA`, `AP`, `AP Supine`, `AP semi erect`, …): lateral
//! films and CT slices are different pictures that a frontal classifier must never see. Rows
//! are checked in this order and counted under the first reason that applies: not an X-ray,
//! image file missing, not a frontal view, finding without a class, image already used by an
//! earlier row (the CSV lists a few images twice).

use super::{DatasetError, Record, SkipReport, csv_headers, read_metadata_csv};
use crate::label::Class;
use std::collections::HashSet;
use std::path::Path;

const METADATA: &str = "metadata.csv";
const COLUMNS: [&str; 6] = ["patientid", "finding", "view", "modality", "folder", "filename"];

pub(super) fn looks_like(dir: &Path) -> bool {
    let headers = csv_headers(&dir.join(METADATA));
    ["patientid", "finding", "view", "filename"].iter().all(|c| headers.iter().any(|h| h == c))
}

/// The class of an ieee8023 `finding`. Every infectious pneumonia other than COVID-19 is
/// `Pneumonia`; non-infectious findings (ARDS alone, lipoid pneumonia) have no class here.
pub fn finding_class(finding: &str) -> Option<Class> {
    let f = finding.trim().to_ascii_lowercase();
    // "COVID-19, ARDS": COVID-19 causing ARDS is still COVID-19.
    if f.split(',').any(|part| matches!(part.trim(), "covid-19" | "covid19" | "covid")) {
        return Some(Class::Covid);
    }
    if f == "no finding" || f == "normal" {
        return Some(Class::Normal);
    }
    const INFECTIOUS: [&str; 16] = [
        "sars",
        "mers",
        "pneumocystis",
        "streptococcus",
        "staphylococcus",
        "klebsiella",
        "legionella",
        "e.coli",
        "chlamydophila",
        "influenza",
        "varicella",
        "mycoplasma",
        "bacterial",
        "viral",
        "fungal",
        "pneumonia",
    ];
    let is_lipoid = f.contains("lipoid");
    (!is_lipoid && INFECTIOUS.iter().any(|name| f.contains(name))).then_some(Class::Pneumonia)
}

/// Frontal projections: anything starting with PA or AP (`AP Supine`, `AP semi erect`, `AP Erect`).
fn is_frontal(view: &str) -> bool {
    let v = view.trim().to_ascii_uppercase();
    v == "PA" || v == "AP" || v.starts_with("PA ") || v.starts_with("AP ")
}

pub(super) fn read(dir: &Path, source: &str, skipped: &mut SkipReport) -> Result<Vec<Record>, DatasetError> {
    let mut used = HashSet::new();
    read_metadata_csv(&dir.join(METADATA), &COLUMNS, 5, skipped, |fields| {
        let [patient, finding, view, modality, folder, filename] = fields else { unreachable!("one field per column") };
        if !modality.eq_ignore_ascii_case("x-ray") {
            return Err(if modality.eq_ignore_ascii_case("ct") {
                "CT".to_owned()
            } else {
                format!("modality `{modality}`")
            });
        }
        let path = dir.join(if folder.is_empty() { "images" } else { folder.as_str() }).join(filename);
        if filename.is_empty() || !path.is_file() {
            return Err("image file missing".to_owned());
        }
        if !is_frontal(view) {
            return Err(if view.eq_ignore_ascii_case("l") {
                "lateral view (L)".to_owned()
            } else {
                format!("not a frontal view `{view}`")
            });
        }
        let label = finding_class(finding).ok_or_else(|| format!("unknown finding `{finding}`"))?;
        if !used.insert(path.clone()) {
            return Err("image already listed in an earlier row".to_owned());
        }
        let patient_id = if patient.is_empty() { format!("{source}:{filename}") } else { patient.clone() };
        Ok(Record { path, source: source.to_owned(), patient_id, view: view.clone(), label })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_map_to_classes() {
        for (finding, class) in [
            ("COVID-19", Some(Class::Covid)),
            ("COVID-19, ARDS", Some(Class::Covid)),
            ("No Finding", Some(Class::Normal)),
            ("SARS", Some(Class::Pneumonia)),
            ("Pneumocystis", Some(Class::Pneumonia)),
            ("Streptococcus", Some(Class::Pneumonia)),
            ("E.Coli", Some(Class::Pneumonia)),
            ("Mycoplasma Bacterial Pneumonia", Some(Class::Pneumonia)),
            ("Pneumonia", Some(Class::Pneumonia)),
            ("ARDS", None),
            ("Lipoid", None),
            ("", None),
        ] {
            assert_eq!(finding_class(finding), class, "{finding}");
        }
    }

    #[test]
    fn frontal_views_are_pa_and_ap_variants() {
        for v in ["PA", "AP", "AP Supine", "AP semi erect", "ap"] {
            assert!(is_frontal(v), "{v}");
        }
        for v in ["L", "Axial", "Coronal", "APL", ""] {
            assert!(!is_frontal(v), "{v}");
        }
    }
}
