//! The runtime on real X-rays with a real (tiny) ONNX network written by `tiny_cnn`:
//! loading, refusing mismatched cards and non-ONNX files, batches, int8, heatmaps.

use cxr_core::{ClassSet, ModelCard, load_image};
use cxr_infer::tiny_cnn::TinyCnn;
use cxr_infer::{Batch, Catalog, InferError, Method, Model, ModelSource};
use std::path::{Path, PathBuf};

fn datasets() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    cxr_core::dataset::shared_datasets(&workspace).unwrap_or_else(|e| panic!("real X-rays are needed: {e}"))
}

fn xrays() -> Vec<PathBuf> {
    let d = datasets();
    vec![
        d.join("covid19-radiography/COVID/COVID-1.jpg"),
        d.join("covid19-radiography/Normal/Normal-1.jpg"),
        d.join("chest_xray/test/NORMAL/IM-0001-0001.jpeg"),
    ]
}

fn write(dir: &Path, name: &str, net: TinyCnn) -> PathBuf {
    net.write(dir, name).expect("temp dir is writable")
}

#[test]
fn tiny_model_scores_real_xrays_with_valid_probabilities() {
    let dir = tempfile::tempdir().unwrap();
    let model = Model::load(&write(dir.path(), "tiny", TinyCnn::default())).unwrap();
    let mut session = model.session();
    let scores: Vec<f32> = xrays()
        .iter()
        .map(|p| {
            let pred = session.predict_file(p).unwrap();
            assert_eq!(pred.probabilities.len(), 2);
            assert!((pred.probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            assert!(pred.probabilities.iter().all(|v| (0.0..=1.0).contains(v)));
            pred.probabilities[1]
        })
        .collect();
    assert!(scores.windows(2).any(|w| (w[0] - w[1]).abs() > 1e-4), "different X-rays should get different scores: {scores:?}");
}

#[test]
fn batched_and_single_runs_agree_for_fixed_and_symbolic_plans() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "tiny", TinyCnn::default());
    let card_path = ModelCard::path_for(&path);
    let single = Model::load(&path).unwrap();
    let images: Vec<_> = xrays().iter().map(|p| load_image(p).unwrap()).collect();
    let mut batch_input = Vec::new();
    for img in &images {
        single.preprocess_into(img, &mut batch_input);
    }
    let one_by_one: Vec<f32> = images.iter().map(|img| single.session().predict_image(img).unwrap().probabilities[1]).collect();
    for batch in [Batch::Symbolic, Batch::Fixed(2), Batch::Fixed(1)] {
        let model = Model::load_with_card(&path, &card_path, batch).unwrap();
        let out = model.session().run(&batch_input, images.len()).unwrap();
        assert_eq!(out.predictions.len(), 3);
        for (p, expected) in out.predictions.iter().zip(&one_by_one) {
            assert!((p.probabilities[1] - expected).abs() < 1e-5, "{batch:?}: {} vs {expected}", p.probabilities[1]);
        }
        let (shape, values) = out.feature_map.expect("the tiny net exports its feature map");
        assert_eq!(shape[0], 3, "{batch:?}");
        assert_eq!(values.len(), shape.iter().product::<usize>());
    }
}

#[test]
fn int8_qlinearconv_model_loads_and_tracks_the_fp32_one() {
    let dir = tempfile::tempdir().unwrap();
    let fp32 = Model::load(&write(dir.path(), "fp32", TinyCnn::default())).unwrap();
    let int8 = Model::load(&write(dir.path(), "int8", TinyCnn { int8: true, ..TinyCnn::default() })).unwrap();
    assert_eq!(int8.card.precision, "int8");
    for path in xrays() {
        let a = fp32.session().predict_file(&path).unwrap().probabilities[1];
        let b = int8.session().predict_file(&path).unwrap().probabilities[1];
        assert!((a - b).abs() < 0.05, "{}: fp32 {a} vs int8 {b}", path.display());
    }
}

#[test]
fn three_class_model_gives_a_softmax_over_covid_normal_pneumonia() {
    let dir = tempfile::tempdir().unwrap();
    let model = Model::load(&write(dir.path(), "three", TinyCnn { class_set: ClassSet::ThreeClass, ..TinyCnn::default() })).unwrap();
    let pred = model.session().predict_file(&xrays()[0]).unwrap();
    assert_eq!(pred.probabilities.len(), 3);
    assert!((pred.probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    assert!(pred.class_index < 3);
}

#[test]
fn sha256_mismatch_is_refused_naming_model_and_card() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "tiny", TinyCnn::default());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(b"\0");
    std::fs::write(&path, bytes).unwrap();
    let err = Model::load(&path).unwrap_err();
    assert!(matches!(err, InferError::Card(_)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("tiny.onnx") && msg.contains("tiny.card.json") && msg.contains("sha256"), "{msg}");
}

#[test]
fn a_file_that_is_not_onnx_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("photo.onnx");
    std::fs::copy(&xrays()[0], &path).unwrap();
    // A card that matches the bytes, so the sha check passes and the ONNX check is what refuses.
    let bytes = std::fs::read(&path).unwrap();
    TinyCnn::default().card("photo", "photo.onnx", &bytes).save(&ModelCard::path_for(&path)).unwrap();
    let err = Model::load(&path).unwrap_err();
    assert!(matches!(err, InferError::NotOnnx { .. }), "{err:?}");
    assert!(err.to_string().contains("photo.onnx") && err.to_string().contains("not an ONNX model"), "{err}");
}

#[test]
fn a_card_whose_input_size_differs_from_the_graph_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "tiny", TinyCnn::default());
    let card_path = ModelCard::path_for(&path);
    let mut card = ModelCard::load(&card_path).unwrap();
    card.preprocess.size = 128;
    card.save(&card_path).unwrap();
    let err = Model::load(&path).unwrap_err();
    assert!(matches!(err, InferError::InputMismatch { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("64") && msg.contains("128") && msg.contains("tiny.card.json"), "{msg}");
}

#[test]
fn a_card_naming_a_missing_output_or_the_wrong_class_count_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "tiny", TinyCnn::default());
    let card_path = ModelCard::path_for(&path);
    let original = ModelCard::load(&card_path).unwrap();

    let mut card = original.clone();
    card.io.probabilities = "scores".into();
    card.save(&card_path).unwrap();
    let err = Model::load(&path).unwrap_err();
    assert!(matches!(err, InferError::OutputMismatch { .. }) && err.to_string().contains("scores"), "{err}");

    let mut card = original;
    card.class_set = ClassSet::ThreeClass;
    card.save(&card_path).unwrap();
    let err = Model::load(&path).unwrap_err();
    assert!(matches!(err, InferError::OutputMismatch { .. }) && err.to_string().contains("[N, 3]"), "{err}");
}

#[test]
fn heatmaps_cover_the_input_by_cam_and_by_occlusion() {
    let dir = tempfile::tempdir().unwrap();
    let model = Model::load(&write(dir.path(), "tiny", TinyCnn::default())).unwrap();
    assert_eq!(model.default_explain_method(), Method::ClassActivationMap);
    let img = load_image(&xrays()[0]).unwrap();
    let mut session = model.session();
    for method in [Method::ClassActivationMap, Method::Occlusion] {
        let heat = session.explain(&img, Some(method)).unwrap();
        assert_eq!(heat.method, method);
        assert_eq!((heat.width, heat.height), (64, 64));
        assert_eq!(heat.values.len(), 64 * 64);
        assert!(heat.values.iter().all(|v| (0.0..=1.0).contains(v)));
        assert!(heat.values.iter().any(|&v| v > 0.5), "{method:?} map is flat");
        let picture = cxr_infer::explain::overlay(&model.card.preprocess.fit(&img), &heat.image());
        assert_eq!(picture.dimensions(), (64, 64));
    }
}

#[test]
fn catalog_finds_models_by_name_and_says_where_it_looked() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "tiny-a", TinyCnn::default());
    write(dir.path(), "tiny-b", TinyCnn { int8: true, ..TinyCnn::default() });
    let catalog = Catalog { embedded: Err("none in tests".into()), dirs: vec![dir.path().to_owned()] };
    let names: Vec<String> = catalog.shipped().into_iter().map(|m| m.card.name).collect();
    assert_eq!(names, ["tiny-a", "tiny-b"]);
    let model = catalog.load(&ModelSource::Name("tiny-b".into()), Batch::default()).unwrap();
    assert_eq!(model.card.precision, "int8");
    let err = catalog.load(&ModelSource::Name("resnet".into()), Batch::default()).unwrap_err().to_string();
    assert!(err.contains("resnet") && err.contains(&dir.path().display().to_string()), "{err}");
    let err = catalog.load(&ModelSource::Embedded, Batch::default()).unwrap_err().to_string();
    assert!(err.contains("none in tests"), "{err}");
    let by_card = catalog.load(&ModelSource::Path(dir.path().join("tiny-a.card.json")), Batch::default()).unwrap();
    assert_eq!(by_card.card.name, "tiny-a");
}
