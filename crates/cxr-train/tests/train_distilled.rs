//! Distillation (`cxr train --soft-targets`) on real X-rays. Its own test binary: libtorch's
//! random generator is global to the process, so two seeded trainings running side by side as tests
//! of one binary would draw from each other's sequence and stop being reproducible.

mod common;

use common::small_data;
use cxr_train::export::export_checkpoint;
use cxr_train::train::{self, TrainConfig};
use std::path::Path;

/// Distillation (`soft_targets`): the loss follows the teacher's scores, not the labels. A
/// "teacher" that scores every COVID film 0 and every normal film 1 makes the seeded run that
/// learns COVID in `train_seed_cnn.rs` (validation AUC 0.696 after 5 epochs) learn the opposite, so its validation
/// AUC against the labels falls well below chance; a run that ignored the scores would not.
#[test]
fn seed_cnn_learns_what_soft_targets_say_rather_than_the_labels() {
    let data = small_data();
    let dir = tempfile::tempdir().unwrap();
    let scores = dir.path().join("teacher.csv");
    let mut csv = String::from("path,p_non-covid,p_covid,class,model_sha256,error\n");
    for film in &data.train {
        let p = if film.class == cxr_core::Class::Covid { 0.0 } else { 1.0 };
        csv += &format!("{},{},{p},x,teacher,\n", film.path.display(), 1.0 - p);
    }
    std::fs::write(&scores, csv).unwrap();
    let mut config = TrainConfig::new("seed-cnn");
    config.seed = 3;
    config.epochs = 5;
    config.patience = 10;
    config.soft_targets = Some(scores.clone());
    let run = dir.path().join("run");
    let state = train::train(&config, &data, Path::new("m.csv"), &run, false, &mut |_, _| {}).unwrap();
    let last = state.history.last().unwrap().val_auc;
    assert!(last < 0.4, "validation AUC {last} after training on inverted scores; history {:?}", state.history);
    let card = export_checkpoint(&run, &dir.path().join("student.onnx")).unwrap();
    assert!(card.notes.iter().any(|n| n.starts_with("distilled") && n.contains("teacher.csv")), "{:?}", card.notes);

    // A film the teacher did not score is named, before any epoch runs.
    std::fs::write(&scores, "path,p_covid\n").unwrap();
    let err = train::train(&config, &data, Path::new("m.csv"), &dir.path().join("run2"), false, &mut |_, _| {})
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no score for training film") && err.contains(&data.train[0].path.display().to_string()),
        "{err}"
    );
}
