//! The lung-field step on real films and real masks: a segmenter trained on human lung masks of
//! `covid-chestxray-dataset` must find the lungs of films it never saw far better than a mask of
//! the average lung field would, and a classifier trained behind it must export as one ONNX graph
//! that tract runs to the numbers libtorch gives.

mod common;

use common::{assert_runtime_matches_libtorch, small_data};
use cxr_core::lung_mask::LungMasks;
use cxr_core::{Class, ClassSet};
use cxr_test_support::{datasets, lung_masks, workspace};
use cxr_train::augment::Augmentation;
use cxr_train::data::{LabeledImage, TrainingData};
use cxr_train::export::export_checkpoint;
use cxr_train::lung_field::LungField;
use cxr_train::segmenter::{SegmenterConfig, masked_films, train_segmenter};
use cxr_train::train::{self, TrainConfig};
use cxr_train::zoo;
use std::path::{Path, PathBuf};

const SIZE: i64 = 128;

fn imagenet_weights() -> PathBuf {
    workspace().join(".torch/weights/mobilenet_v2-imagenet.safetensors")
}

/// The share of pixels a mask of the *average* lung field gets right, as Dice: a segmenter that
/// only learned where lungs usually are would score about this.
fn average_field_dice(films: &[(PathBuf, PathBuf)], preprocess: &cxr_core::Preprocess) -> f64 {
    let masks: Vec<Vec<bool>> = films
        .iter()
        .map(|(film, mask)| {
            let grey = cxr_core::load_image(film).unwrap();
            cxr_core::lung_mask::FittedMask::load(mask, film, (grey.width, grey.height), preprocess).unwrap().inside
        })
        .collect();
    let pixels = masks[0].len();
    let average: Vec<bool> = (0..pixels).map(|i| masks.iter().filter(|m| m[i]).count() * 2 > masks.len()).collect();
    let (mut overlap, mut total) = (0usize, 0usize);
    for mask in &masks {
        overlap += mask.iter().zip(&average).filter(|(a, b)| **a && **b).count();
        total += mask.iter().filter(|&&a| a).count() + average.iter().filter(|&&a| a).count();
    }
    2.0 * overlap as f64 / total as f64
}

#[test]
fn a_segmenter_learns_the_lungs_and_a_classifier_behind_it_exports_as_one_graph() {
    let masks = LungMasks::read(&lung_masks(), &datasets()).unwrap();
    let pairs = masks.pairs();
    assert!(pairs.len() >= 400, "the 427 masks of lung-masks-v7: {}", pairs.len());
    // Disjoint films: 96 to train on, 32 never seen to check on. The segmenter never reads a
    // label, so the class given here is only what TrainingData needs.
    let image = |(film, _): &(&Path, &Path)| LabeledImage {
        path: film.to_path_buf(),
        class: Class::Covid,
        source: "covid-chestxray-dataset".into(),
    };
    let data = TrainingData {
        train: pairs.iter().step_by(4).take(96).map(image).collect(),
        val: pairs.iter().skip(2).step_by(4).take(32).map(image).collect(),
        split_seed: None,
        holdout_sources: vec![],
    };
    let (train, val) = masked_films(&data, &masks, Path::new("test selection"), &lung_masks()).unwrap();
    assert_eq!((train.len(), val.len()), (96, 32));

    let classifier = zoo::build("mobilenet-v2", Some(SIZE), ClassSet::Binary).unwrap();
    let config = SegmenterConfig { classifier, epochs: 12, patience: 12, batch_size: 8, learning_rate: 3e-3, seed: 3 };
    let dir = tempfile::tempdir().unwrap();
    let field_dir = dir.path().join("lung-field");
    let record = train_segmenter(&config, &train, &val, (&lung_masks(), Path::new("test")), &field_dir, &mut |e| {
        eprintln!(
            "lung field epoch {}: loss {:.4}, val Dice {:.4}, {:.1} s",
            e.epoch, e.train_loss, e.val_dice, e.seconds
        )
    })
    .unwrap();
    let baseline = average_field_dice(&val, &record.preprocess);
    eprintln!("validation Dice {:.4} against {baseline:.4} for the average lung field", record.val_dice);
    assert!(
        record.val_dice > 0.85 && record.val_dice > baseline + 0.04,
        "Dice {:.4} on films it never saw; the average lung field scores {baseline:.4}",
        record.val_dice
    );

    // A frozen MobileNetV2 head trained behind it, on films of another collection (no masks needed).
    let films = small_data();
    let mut config = TrainConfig::new("mobilenet-v2");
    config.image_size = Some(SIZE);
    config.epochs = 3;
    config.augmentation = Augmentation::NONE;
    config.pretrained = Some(imagenet_weights());
    config.freeze_base = true;
    config.lung_field = Some(field_dir.clone());
    let run = dir.path().join("run");
    let state = train::train(&config, &films, Path::new("m.csv"), &run, false, &mut |_, _| {}).unwrap();
    assert_eq!(state.network.architecture, "mobilenet-v2+lung-field");
    assert!(state.history.iter().all(|r| r.train_loss.is_finite()), "{:?}", state.history);

    // Trained with a segmenter for another input, or without a frozen base: refused, with the reason.
    let mut wrong = config.clone();
    wrong.image_size = Some(160);
    let err = train::train(&wrong, &films, Path::new("m.csv"), &dir.path().join("wrong"), false, &mut |_, _| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("lung-field.json") && err.contains("--arch"), "{err}");
    let mut unfrozen = config.clone();
    unfrozen.freeze_base = false;
    assert!(unfrozen.check().unwrap_err().to_string().contains("--freeze-base"));

    // The segmenter inside the trained network is the one trained above, unchanged.
    let field = LungField::load(&field_dir).unwrap();
    let trained: std::collections::HashMap<String, tch::Tensor> =
        tch::Tensor::read_safetensors(run.join(train::BEST_WEIGHTS)).unwrap().into_iter().collect();
    for (name, tensor) in tch::Tensor::read_safetensors(&field.weights).unwrap() {
        assert!(trained[&name].equal(&tensor), "`{name}` changed while the classifier trained");
    }

    let onnx = dir.path().join("mobilenet-v2-lung-field.onnx");
    let card = export_checkpoint(&run, &onnx).unwrap();
    assert!(card.architecture.contains("lung-field"), "{}", card.architecture);
    assert_runtime_matches_libtorch(&state.network, &run, &onnx, &card, &films);
}
