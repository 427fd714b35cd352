//! Hannover Medical School COVID-19 repository: `data.csv` (`patient_id`, `image_id`,
//! `projection`) + `png/{image_id}.png`. Every image is COVID-19 positive.

use super::{DatasetError, Record, SkipReport, csv_headers, field, open_csv};
use crate::label::Class;
use std::path::Path;

const METADATA: &str = "data.csv";

pub(super) fn looks_like(dir: &Path) -> bool {
    let headers = csv_headers(&dir.join(METADATA));
    ["patient_id", "image_id", "projection"].iter().all(|c| headers.iter().any(|h| h == c))
}

pub(super) fn read(dir: &Path, source: &str, skipped: &mut SkipReport) -> Result<Vec<Record>, DatasetError> {
    let csv_path = dir.join(METADATA);
    let (mut reader, cols) = open_csv(&csv_path, &["patient_id", "image_id", "projection"])?;
    let [patient_col, image_col, projection_col] = cols[..] else { unreachable!("one index per column") };
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
        let image_id = field(&row, image_col);
        let item = format!("{}:{line} ({image_id})", csv_path.display());
        let path = dir.join("png").join(format!("{image_id}.png"));
        if image_id.is_empty() || !path.is_file() {
            skipped.skip("image file missing", item);
            continue;
        }
        let projection = field(&row, projection_col).to_ascii_uppercase();
        if projection != "AP" && projection != "PA" {
            skipped.skip(format!("unknown view `{projection}`"), item);
            continue;
        }
        let patient_id = field(&row, patient_col);
        if patient_id.is_empty() {
            skipped.skip("row without patient_id", item);
            continue;
        }
        records.push(Record { path, source: source.to_owned(), patient_id, view: projection, label: Class::Covid });
    }
    Ok(records)
}
