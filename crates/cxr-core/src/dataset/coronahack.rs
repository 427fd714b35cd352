//! Kaggle CoronaHack: `Chest_xray_Corona_Metadata.csv` with columns `X_ray_image_name, Label,
//! Dataset_type, Label_1_Virus_category, Label_2_Virus_category`, images in `train/` and `test/`
//! (also found under Kaggle's doubled `Coronahack-Chest-XRay-Dataset/` folders).
//! `Label` is `Normal` or `Pnemonia` (sic); a pneumonia is COVID-19 where
//! `Label_2_Virus_category` says so. `Stress-Smoking` (ARDS) is not an infection and is skipped.
//! Most images are Kermany's, whose file names carry the patient; others get pseudo ids.

use super::{DatasetError, Record, SkipReport, kermany_patient_id, read_metadata_csv};
use crate::label::Class;
use std::path::{Path, PathBuf};

const METADATA: &str = "Chest_xray_Corona_Metadata.csv";
const COLUMNS: [&str; 5] =
    ["X_ray_image_name", "Label", "Dataset_type", "Label_1_Virus_category", "Label_2_Virus_category"];

pub(super) fn looks_like(dir: &Path) -> bool {
    dir.join(METADATA).is_file()
}

/// Where Kaggle's archive puts the images of one `Dataset_type`.
fn find_image(dir: &Path, dataset_type: &str, name: &str) -> Option<PathBuf> {
    let part = dataset_type.to_ascii_lowercase();
    let nested = dir.join("Coronahack-Chest-XRay-Dataset");
    [
        dir.join(&part).join(name),
        nested.join("Coronahack-Chest-XRay-Dataset").join(&part).join(name),
        nested.join(&part).join(name),
        dir.join(name),
    ]
    .into_iter()
    .find(|p| p.is_file())
}

/// The class of one row, or the reason it has none.
fn row_class(label: &str, category_1: &str, category_2: &str) -> Result<Class, String> {
    match label.to_ascii_lowercase().as_str() {
        "normal" => Ok(Class::Normal),
        "pnemonia" | "pneumonia" => {
            if category_2.eq_ignore_ascii_case("COVID-19") {
                Ok(Class::Covid)
            } else if category_1.eq_ignore_ascii_case("Stress-Smoking") {
                Err(format!("unknown finding `{category_1}` (not an infection)"))
            } else {
                Ok(Class::Pneumonia)
            }
        }
        _ => Err(format!("unknown label `{label}`")),
    }
}

pub(super) fn read(dir: &Path, source: &str, skipped: &mut SkipReport) -> Result<Vec<Record>, DatasetError> {
    read_metadata_csv(&dir.join(METADATA), &COLUMNS, 0, skipped, |fields| {
        let [name, label, dataset_type, category_1, category_2] = fields else { unreachable!("one field per column") };
        let path = find_image(dir, dataset_type, name).filter(|_| !name.is_empty()).ok_or("image file missing")?;
        let label = row_class(label, category_1, category_2)?;
        let patient_id = kermany_patient_id(name)
            .unwrap_or_else(|| format!("{source}:{}", name.rsplit_once('.').map_or(name.as_str(), |(stem, _)| stem)));
        Ok(Record { path, source: source.to_owned(), patient_id, view: "frontal".to_owned(), label })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_follow_the_virus_categories() {
        assert_eq!(row_class("Normal", "", ""), Ok(Class::Normal));
        assert_eq!(row_class("Pnemonia", "Virus", "COVID-19"), Ok(Class::Covid));
        assert_eq!(row_class("Pnemonia", "bacteria", ""), Ok(Class::Pneumonia));
        assert!(row_class("Pnemonia", "Stress-Smoking", "ARDS").is_err());
        assert!(row_class("Cat", "", "").is_err());
    }
}
