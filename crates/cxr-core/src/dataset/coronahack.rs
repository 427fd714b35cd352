//! Kaggle CoronaHack: `Chest_xray_Corona_Metadata.csv` with columns `X_ray_image_name, Label,
//! Dataset_type, Label_1_Virus_category, Label_2_Virus_category`, images in `train/` and `test/`
//! (also found under Kaggle's doubled `Coronahack-Chest-XRay-Dataset/` folders).
//! `Label` is `Normal` or `Pnemonia` (sic); a pneumonia is COVID-19 where
//! `Label_2_Virus_category` says so. `Stress-Smoking` (ARDS) is not an infection and is skipped.
//! Most images are Kermany's, whose file names carry the patient; others get pseudo ids.

use super::{DatasetError, Record, SkipReport, field, kermany_patient_id, open_csv};
use crate::label::Class;
use std::path::{Path, PathBuf};

const METADATA: &str = "Chest_xray_Corona_Metadata.csv";
const COLUMNS: [&str; 5] = ["X_ray_image_name", "Label", "Dataset_type", "Label_1_Virus_category", "Label_2_Virus_category"];

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
    let csv_path = dir.join(METADATA);
    let (mut reader, cols) = open_csv(&csv_path, &COLUMNS)?;
    let [name_col, label_col, type_col, cat1_col, cat2_col] = cols[..] else { unreachable!("one index per column") };
    let mut records = Vec::new();
    let mut row = csv::ByteRecord::new();
    let mut line = 1usize;
    loop {
        match reader.read_byte_record(&mut row) {
            Ok(false) => break,
            Ok(true) => line += 1,
            Err(e) => {
                line += 1;
                skipped.skip("unparseable CSV row", format!("{}:{line}: {e}", csv_path.display()));
                continue;
            }
        }
        let name = field(&row, name_col);
        let item = format!("{}:{line} ({name})", csv_path.display());
        let Some(path) = find_image(dir, &field(&row, type_col), &name).filter(|_| !name.is_empty()) else {
            skipped.skip("image file missing", item);
            continue;
        };
        let label = match row_class(&field(&row, label_col), &field(&row, cat1_col), &field(&row, cat2_col)) {
            Ok(label) => label,
            Err(reason) => {
                skipped.skip(reason, item);
                continue;
            }
        };
        let patient_id = kermany_patient_id(&name).unwrap_or_else(|| {
            format!("{source}:{}", name.rsplit_once('.').map_or(name.as_str(), |(stem, _)| stem))
        });
        records.push(Record { path, source: source.to_owned(), patient_id, view: "frontal".to_owned(), label });
    }
    Ok(records)
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
