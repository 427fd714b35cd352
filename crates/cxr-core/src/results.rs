//! Reading back the CSV `cxr score` writes (path, one probability per class, class, model
//! sha256, error), so that `--resume` continues a run instead of starting over and shards of one
//! run can be merged.
//!
//! The file is input like any other: a run killed mid-line, a file from another model or a
//! text that is no score output at all must be refused or repaired, never half-trusted.

use std::path::{Path, PathBuf};

/// The file a row of `cxr score`'s output is about: its canonical path, so that `a/x.png`,
/// `./a/x.png` and a link to it are one file when a run is resumed, shards are merged or a
/// teacher's scores are matched to training films. A path that cannot be resolved (the file is
/// gone) stands for itself.
pub fn file_identity(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}

/// Why an earlier output cannot be resumed. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    #[error("{path}: not a `cxr score` output (no CSV header): {source}")]
    NoHeader { path: PathBuf, source: csv::Error },
    #[error("{path}: columns {found:?} do not match this model's {expected:?}; score into another --out")]
    Columns { path: PathBuf, found: Vec<String>, expected: Vec<String> },
    #[error("{path}: malformed row: {source}")]
    Row { path: PathBuf, source: csv::Error },
    #[error("{path}: holds scores from model sha256 {found}, not {expected} ({model}); resuming would mix models")]
    OtherModel { path: PathBuf, found: String, expected: String, model: String },
}

/// An earlier run's rows, as `--resume` uses them.
#[derive(Debug, Default, PartialEq)]
pub struct EarlierRun {
    /// Rows with a score, in file order: their files are not scored again.
    pub scored: Vec<csv::StringRecord>,
    /// Rows with an error: `--resume` leaves them out, so their files are scored again and end
    /// with one row; a merge of shards keeps them.
    pub failed: Vec<csv::StringRecord>,
    /// A last line cut off by a kill (no newline): left out, its file is scored again.
    pub cut_off: bool,
}

/// Parses `bytes`, an earlier output of a run with columns `header` by the model `sha256`
/// (called `model`); `path` names the file in messages. The last column is the error.
pub fn read_earlier_run(
    path: &Path,
    bytes: &[u8],
    header: &[String],
    sha256: &str,
    model: &str,
) -> Result<EarlierRun, ResumeError> {
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(&bytes[..complete]);
    let found: Vec<String> = reader
        .headers()
        .map_err(|source| ResumeError::NoHeader { path: path.to_owned(), source })?
        .iter()
        .map(str::to_owned)
        .collect();
    if found != header {
        return Err(ResumeError::Columns { path: path.to_owned(), found, expected: header.to_vec() });
    }
    let sha_column = header.iter().position(|h| h == "model_sha256");
    let error_column = header.len().saturating_sub(1);
    let mut run = EarlierRun { cut_off: complete < bytes.len(), ..EarlierRun::default() };
    for record in reader.records() {
        let record = record.map_err(|source| ResumeError::Row { path: path.to_owned(), source })?;
        if let Some(found) = sha_column.and_then(|c| record.get(c))
            && found != sha256
        {
            return Err(ResumeError::OtherModel {
                path: path.to_owned(),
                found: found.to_owned(),
                expected: sha256.to_owned(),
                model: model.to_owned(),
            });
        }
        if record.get(error_column).is_some_and(|e| !e.is_empty()) {
            run.failed.push(record);
        } else {
            run.scored.push(record);
        }
    }
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Vec<String> {
        ["path", "p_covid", "class", "model_sha256", "error"].map(String::from).to_vec()
    }

    #[test]
    fn error_rows_and_a_cut_off_line_are_left_out() {
        let text = "path,p_covid,class,model_sha256,error\na.png,0.9,covid,ab,\nb.png,,,ab,b.png: corrupt\nc.png,0.1";
        let run = read_earlier_run(Path::new("o.csv"), text.as_bytes(), &header(), "ab", "m").unwrap();
        assert_eq!(run.scored.len(), 1);
        assert_eq!(run.scored[0].get(0), Some("a.png"));
        assert_eq!((run.failed.len(), run.cut_off), (1, true));
        assert_eq!(run.failed[0].get(0), Some("b.png"));
    }

    #[test]
    fn another_model_or_other_columns_are_refused_naming_the_file() {
        let other = "path,p_covid,class,model_sha256,error\na.png,0.9,covid,cd,\n";
        let err = read_earlier_run(Path::new("o.csv"), other.as_bytes(), &header(), "ab", "m").unwrap_err();
        assert!(matches!(err, ResumeError::OtherModel { .. }) && err.to_string().contains("o.csv"), "{err}");
        let err = read_earlier_run(Path::new("o.csv"), b"\x00\xff\x12binary\n", &header(), "ab", "m").unwrap_err();
        assert!(err.to_string().starts_with("o.csv: "), "{err}");
    }
}
