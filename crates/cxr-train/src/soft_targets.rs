//! Distillation: a teacher's P(covid) for each training film, read from the CSV `cxr score -m
//! TEACHER` writes, replaces the film's 0/1 label in the training loss.
//!
//! Why: the model that separates COVID from other findings best inside one collection (ImageNet
//! EfficientNet-Lite0 with its last block trained, docs/within-source.md) is ~30 times over the edge
//! budget, and a network inside the budget trained on the collection's few hundred films learns
//! nothing. A small network can instead learn the teacher's ranking from the teacher's scores of
//! thousands of films, of any collection, whose labels it then never needs. Honest cross-fitting
//! needs a teacher that never saw the student's test films: per fold, that fold's teacher.

use crate::run::TrainError;
use cxr_core::results::file_identity;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The teacher's scores, by film.
#[derive(Debug)]
pub struct SoftTargets {
    by_film: HashMap<PathBuf, f32>,
    /// sha256 of the teacher model(s) named in the file's `model_sha256` column.
    pub teachers: Vec<String>,
}

impl SoftTargets {
    /// Reads `cxr score`'s CSV: its `path` and `p_covid` columns, rows with an `error` left out.
    /// Paths are resolved as `cxr score` wrote them (relative to the directory it ran in), so
    /// they match the manifest's films however either spelled them.
    pub fn read(csv_path: &Path) -> Result<SoftTargets, TrainError> {
        let bad = |reason: String| TrainError::SoftTargets { path: csv_path.to_owned(), reason };
        let mut reader = csv::Reader::from_path(csv_path).map_err(|e| bad(e.to_string()))?;
        let headers = reader.headers().map_err(|e| bad(e.to_string()))?.clone();
        let column = |name: &str| {
            headers.iter().position(|h| h == name).ok_or_else(|| {
                bad(format!("no `{name}` column (expected the CSV of `cxr score -m TEACHER`, with a binary model)"))
            })
        };
        let (path_at, p_at) = (column("path")?, column("p_covid")?);
        let (error_at, model_at) =
            (headers.iter().position(|h| h == "error"), headers.iter().position(|h| h == "model_sha256"));
        let mut by_film = HashMap::new();
        let mut teachers: Vec<String> = Vec::new();
        for (line, row) in reader.records().enumerate() {
            let row = row.map_err(|e| bad(e.to_string()))?;
            if error_at.and_then(|i| row.get(i)).is_some_and(|e| !e.is_empty()) {
                continue;
            }
            let p: f32 = row.get(p_at).unwrap_or("").parse().map_err(|_| {
                bad(format!("row {}: p_covid `{}` is not a number", line + 2, row.get(p_at).unwrap_or("")))
            })?;
            if !(0.0..=1.0).contains(&p) {
                return Err(bad(format!("row {}: p_covid {p} is not a probability", line + 2)));
            }
            if let Some(model) = model_at.and_then(|i| row.get(i)).filter(|m| !m.is_empty())
                && !teachers.iter().any(|t| t == model)
            {
                teachers.push(model.to_owned());
            }
            by_film.insert(file_identity(Path::new(row.get(path_at).unwrap_or(""))), p);
        }
        Ok(SoftTargets { by_film, teachers })
    }

    /// The teacher's score of each of `films`, in order; an error names the first film it did not score.
    pub fn for_films(&self, films: &[PathBuf], csv_path: &Path) -> Result<Vec<f32>, TrainError> {
        films
            .iter()
            .map(|film| {
                self.by_film.get(&file_identity(film)).copied().ok_or_else(|| TrainError::SoftTargets {
                    path: csv_path.to_owned(),
                    reason: format!(
                        "has no score for training film {} (score every film of the train split with the teacher)",
                        film.display()
                    ),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_scores_by_canonical_path_and_names_a_film_it_lacks() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.png"), dir.path().join("b.png"));
        std::fs::write(&a, b"x").unwrap();
        std::fs::write(&b, b"x").unwrap();
        let csv = dir.path().join("scores.csv");
        let spelled = dir.path().join(".").join("a.png");
        std::fs::write(
            &csv,
            format!(
                "path,p_covid,p_non_covid,class,model_sha256,error\n{},0.25,0.75,non_covid,abc,\n{},,,,abc,cannot decode\n",
                spelled.display(),
                b.display()
            ),
        )
        .unwrap();
        let soft = SoftTargets::read(&csv).unwrap();
        assert_eq!(soft.teachers, ["abc"]);
        assert_eq!(soft.for_films(std::slice::from_ref(&a), &csv).unwrap(), [0.25]);
        let err = soft.for_films(&[a, b.clone()], &csv).unwrap_err().to_string();
        assert!(err.contains(&b.display().to_string()) && err.contains("no score"), "{err}");

        std::fs::write(&csv, "path,p_normal\nx.png,0.5\n").unwrap();
        let err = SoftTargets::read(&csv).unwrap_err().to_string();
        assert!(err.contains("no `p_covid` column"), "{err}");
    }
}
