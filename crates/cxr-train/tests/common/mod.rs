//! Real X-rays for the training-crate tests.
// Each test binary uses part of these helpers.
#![allow(dead_code)]

use cxr_core::{Class, ModelCard, load_image};
use cxr_infer::Model;
use cxr_test_support::datasets;
use cxr_train::data::{LabeledImage, TrainingData};
use cxr_train::tch_backend::{TchNetwork, batch_tensor};
use cxr_train::train::BEST_WEIGHTS;
use std::path::{Path, PathBuf};
use tch::{Device, nn};

/// `n` images of a covid19-radiography class folder by file number (`COVID-7.jpg` → 7): the first
/// `n` COVID images, and the last `n` Normal ones. Normal-63 … Normal-1403 are the pediatric
/// Kermany films (the datasets README); the rest are adult NIH films. Taking negatives from the
/// top of the numbering keeps them adult, so a model cannot separate COVID from "a child's film".
/// (File names sort as text, `Normal-999` after `Normal-5000`: order by number.)
pub fn images(folder: &str, class: Class, n: usize) -> Vec<LabeledImage> {
    let dir = datasets().join("covid19-radiography").join(folder);
    let number = |path: &Path| -> u32 {
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        stem.rsplit_once('-')
            .and_then(|(_, n)| n.parse().ok())
            .unwrap_or_else(|| panic!("{}: not NAME-NUMBER", path.display()))
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort_by_key(|p| number(p));
    if class == Class::Normal {
        paths.reverse();
    }
    paths.truncate(n);
    assert_eq!(paths.len(), n, "{} has fewer than {n} images", dir.display());
    for path in &paths {
        assert!(
            class != Class::Normal || !(63..=1403).contains(&number(path)),
            "{}: a pediatric Kermany film among the adult negatives",
            path.display()
        );
    }
    paths.into_iter().map(|path| LabeledImage { path, class, source: "covid19-radiography".into() }).collect()
}

/// 300 real images (150 COVID, 150 adult normal), 70 % train, 30 % val.
pub fn small_data() -> TrainingData {
    let mut train = Vec::new();
    let mut val = Vec::new();
    for (folder, class) in [("COVID", Class::Covid), ("Normal", Class::Normal)] {
        for (i, img) in images(folder, class, 150).into_iter().enumerate() {
            if i % 10 < 7 { train.push(img) } else { val.push(img) }
        }
    }
    TrainingData { train, val, split_seed: None, holdout_sources: vec![] }
}

/// The exported ONNX, run by cxr-infer, gives the probabilities libtorch gives for the best
/// checkpoint on every ninth validation image.
pub fn assert_runtime_matches_libtorch(
    network: &cxr_train::network::Network,
    run: &Path,
    onnx: &Path,
    card: &ModelCard,
    data: &TrainingData,
) {
    let sample: Vec<&LabeledImage> = data.val.iter().step_by(9).collect();
    let mut input = Vec::new();
    for img in &sample {
        card.preprocess.apply_into(&load_image(&img.path).unwrap(), &mut input);
    }
    let mut vs = nn::VarStore::new(Device::Cpu);
    let model = TchNetwork::new(&vs.root(), network.clone()).unwrap();
    vs.load(run.join(BEST_WEIGHTS)).unwrap();
    let expected = Vec::<f32>::try_from(
        model.probabilities(&batch_tensor(&input, card.preprocess.shape(sample.len()))).flatten(0, -1),
    )
    .unwrap();
    let runtime = Model::load(onnx).unwrap();
    let mut session = runtime.session();
    let mut diff = 0.0f32;
    for (img, p_tch) in sample.iter().zip(&expected) {
        let p_infer = session.predict_file(&img.path).unwrap().p_covid();
        diff = diff.max((p_infer - p_tch).abs());
    }
    assert!(diff <= 1e-4, "cxr-infer and libtorch differ by {diff}");
}
