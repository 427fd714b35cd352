//! Hannover Medical School COVID-19 repository: `data.csv` (`patient_id`, `image_id`,
//! `projection`) + `png/{image_id}.png`. Every image is COVID-19 positive.

use super::{DatasetError, Record, SkipReport, csv_headers, read_metadata_csv};
use crate::label::Class;
use std::path::Path;

const METADATA: &str = "data.csv";

pub(super) fn looks_like(dir: &Path) -> bool {
    let headers = csv_headers(&dir.join(METADATA));
    ["patient_id", "image_id", "projection"].iter().all(|c| headers.iter().any(|h| h == c))
}

pub(super) fn read(dir: &Path, source: &str, skipped: &mut SkipReport) -> Result<Vec<Record>, DatasetError> {
    read_metadata_csv(&dir.join(METADATA), &["patient_id", "image_id", "projection"], 1, skipped, |fields| {
        let [patient_id, image_id, projection] = fields else { unreachable!("one field per column") };
        let path = dir.join("png").join(format!("{image_id}.png"));
        if image_id.is_empty() || !path.is_file() {
            return Err("image file missing".to_owned());
        }
        let projection = projection.to_ascii_uppercase();
        if projection != "AP" && projection != "PA" {
            return Err(format!("unknown view `{projection}`"));
        }
        if patient_id.is_empty() {
            return Err("row without patient_id".to_owned());
        }
        Ok(Record {
            path,
            source: source.to_owned(),
            patient_id: patient_id.clone(),
            view: projection,
            label: Class::Covid,
        })
    })
}
