//! int8 quantization on real X-rays: the shipped seed-cnn and an ImageNet MobileNetV2 become
//! QOperator models that tract runs. The seed-cnn's int8 twin is re-scored here, outside
//! `quantize_file`, on validation images the calibration never saw (COVID against adult
//! negatives): its card must report what the two files really do, and the two must rank those
//! images alike (AUC within the README's 0.005) with probabilities close.

mod common;

use common::small_data;
use cxr_core::{ClassSet, ModelCard};
use cxr_infer::Model;
use cxr_test_support::{mann_whitney_auc, workspace};
use cxr_train::export::export_values;
use cxr_train::network::Head;
use cxr_train::pretrained::load_pretrained;
use cxr_train::quantize::{Calibration, QuantizeOptions, calibrate, quantize_file, split_gemm};
use cxr_train::tch_backend::{TchNetwork, batch_tensor, param_values};
use cxr_train::zoo;
use prost::Message;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, nn};
use tract_onnx::pb;

/// A copy of the shipped seed-cnn and its card in `dir` (quantizing writes beside it).
fn shipped_seed_cnn(dir: &Path) -> PathBuf {
    let fp32 = dir.join("seed-cnn.onnx");
    std::fs::copy(workspace().join("models/seed-cnn.onnx"), &fp32).unwrap();
    std::fs::copy(workspace().join("models/seed-cnn.card.json"), ModelCard::path_for(&fp32)).unwrap();
    fp32
}

/// Quantizes `fp32` on the shared small data set; checks the card, the graph form, that
/// cxr-infer loads the result, and that no validation probability moved by more than `max_diff`.
fn quantize_and_check(
    fp32: &Path,
    calibration: Calibration,
    expect_conv: usize,
    expect_matmul: usize,
    max_diff: f64,
) -> ModelCard {
    let data = small_data();
    let out = fp32.with_file_name("q-int8.onnx");
    let options = QuantizeOptions { calibration_images: 200, calibration, ..Default::default() };
    let card = quantize_file(fp32, &data, &out, &options).unwrap();

    assert_eq!(card.precision, "int8");
    assert_eq!(card.name, "q-int8");
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(card.sha256, cxr_core::card::sha256_hex(&bytes));
    let saved = ModelCard::load(&ModelCard::path_for(&out)).unwrap();
    assert_eq!((saved.sha256.as_str(), saved.precision.as_str()), (card.sha256.as_str(), "int8"));
    assert!(saved.quantization.is_some());
    let q = card.quantization.clone().unwrap();
    assert_eq!(q.calibration_images, 200);
    assert_eq!(q.compared_images, data.val.len() as u64, "every validation image was compared");
    assert!(
        q.max_abs_diff <= max_diff,
        "int8 moved a validation probability by {} (mean {})",
        q.max_abs_diff,
        q.mean_abs_diff
    );

    let graph = pb::ModelProto::decode(bytes.as_slice()).unwrap().graph.unwrap();
    let count = |op: &str| graph.node.iter().filter(|n| n.op_type == op).count();
    assert_eq!((count("QLinearConv"), count("MatMulInteger")), (expect_conv, expect_matmul));
    assert_eq!(count("Conv") + count("Gemm") + count("MatMul"), 0, "no float conv or matmul is left");
    // Per-channel conv weights: one scale per output channel.
    let first_conv = graph.node.iter().find(|n| n.op_type == "QLinearConv").unwrap();
    let w_scale = graph.initializer.iter().find(|t| t.name == first_conv.input[4]).unwrap();
    let w = graph.initializer.iter().find(|t| t.name == first_conv.input[3]).unwrap();
    assert_eq!(w_scale.dims, [w.dims[0]]);

    // The runtime users run loads it against its card and runs it.
    let model = Model::load(&out).unwrap();
    let img = cxr_core::load_image(&data.val[0].path).unwrap();
    let p = model.session().predict_image(&img).unwrap();
    assert!(p.probabilities.iter().all(|v| (0.0..=1.0).contains(v)));
    card
}

/// Bounds for the shipped seed-cnn's int8 twin on the 90 validation images (45 COVID, 45 adult
/// normal), each a little above what the deterministic run measured: AUC 0.9067 → 0.9047 (ΔAUC
/// 0.0020), largest |ΔP| 0.0123, mean 0.0034. The AUC bound is the README's int8 target; one swapped
/// (COVID, normal) pair moves the AUC by 1/2025 ≈ 0.0005.
const SEED_CNN_MAX_AUC_CHANGE: f64 = 0.005;
const SEED_CNN_MAX_MOVE: f64 = 0.02;
const SEED_CNN_MAX_MEAN_MOVE: f64 = 0.004;

#[test]
fn the_shipped_seed_cnn_in_int8_ranks_unseen_adult_images_like_fp32() {
    let dir = tempfile::tempdir().unwrap();
    let fp32 = shipped_seed_cnn(dir.path());
    let card = quantize_and_check(&fp32, Calibration::MinMax, 2, 2, SEED_CNN_MAX_MOVE);
    assert!(card.threshold_rule.contains("int8"), "the int8 model picks its own threshold: {}", card.threshold_rule);
    let q = card.quantization.unwrap();

    // Both files scored again here, image by image, and the AUCs counted by their definition.
    let data = small_data();
    let (fp32_model, int8_model) =
        (Model::load(&fp32).unwrap(), Model::load(&fp32.with_file_name("q-int8.onnx")).unwrap());
    let at = fp32_model.class_set().index(cxr_core::Class::Covid);
    let (fp32_scores, int8_scores): (Vec<f64>, Vec<f64>) = data
        .val
        .iter()
        .map(|item| {
            let img = cxr_core::load_image(&item.path).unwrap();
            let p = |m: &Model| f64::from(m.session().predict_image(&img).unwrap().probabilities[at]);
            (p(&fp32_model), p(&int8_model))
        })
        .unzip();
    let covid: Vec<bool> = data.val.iter().map(|item| item.class == cxr_core::Class::Covid).collect();
    let (auc_fp32, auc_int8) = (mann_whitney_auc(&fp32_scores, &covid), mann_whitney_auc(&int8_scores, &covid));
    let moves: Vec<f64> = fp32_scores.iter().zip(&int8_scores).map(|(a, b)| (a - b).abs()).collect();
    let (max_move, mean_move) =
        (moves.iter().copied().fold(0.0, f64::max), moves.iter().sum::<f64>() / moves.len() as f64);
    eprintln!(
        "seed-cnn on {} validation images: AUC fp32 {auc_fp32:.4} → int8 {auc_int8:.4}; |ΔP| max {max_move:.4}, mean {mean_move:.5}",
        moves.len()
    );

    assert!(
        (q.val_auc_fp32 - auc_fp32).abs() < 1e-9 && (q.val_auc_int8 - auc_int8).abs() < 1e-9,
        "card AUCs {} / {} are not the files' {auc_fp32} / {auc_int8}",
        q.val_auc_fp32,
        q.val_auc_int8
    );
    assert!(
        (q.max_abs_diff - max_move).abs() < 1e-9 && (q.mean_abs_diff - mean_move).abs() < 1e-9,
        "card moves {} / {} are not the files' {max_move} / {mean_move}",
        q.max_abs_diff,
        q.mean_abs_diff
    );
    assert!((auc_int8 - auc_fp32).abs() <= SEED_CNN_MAX_AUC_CHANGE, "AUC fp32 {auc_fp32} int8 {auc_int8}");
    assert!(
        max_move <= SEED_CNN_MAX_MOVE && mean_move <= SEED_CNN_MAX_MEAN_MOVE,
        "int8 moved P(covid) by up to {max_move} (mean {mean_move})"
    );
}

#[test]
fn an_imagenet_mobilenet_v2_exports_and_quantizes_with_its_residual_adds_in_float() {
    let weights = workspace().join(".torch/weights/mobilenet_v2-imagenet.safetensors");
    assert!(weights.is_file(), "{}: missing; run scripts/fetch-weights.sh first", weights.display());
    tch::manual_seed(7);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = TchNetwork::new(&vs.root(), zoo::mobilenet_v2(224, Head::Sigmoid)).unwrap();
    load_pretrained(&vs, net.network(), &weights, "classifier.").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let fp32 = dir.path().join("mobilenet-v2.onnx");
    export_values(net.network(), &param_values(&vs), &fp32, "ImageNet backbone, untrained head (test)").unwrap();
    // 52 convolutions (stem, 17 blocks, last 1×1) and the classifier. MobileNetV2 is the hard
    // case for per-tensor activation ranges (52 requantized layers; linear bottlenecks with long
    // tails), so it takes percentile ranges; with min/max its largest move on these images was
    // 0.086 (mean 0.025) with this untrained head. This checks the round trip, not the 0.02
    // that seed-cnn meets.
    let card = quantize_and_check(&fp32, Calibration::Percentile(99.99), 52, 1, 0.12);
    let q = card.quantization.unwrap();
    assert!(q.mean_abs_diff <= 0.04, "mean move {}", q.mean_abs_diff);
    assert!(q.scheme.contains("99.99 %"), "the card says how ranges were set: {}", q.scheme);
}

/// The rest of the zoo, randomly initialised at 64 px, quantizes: every convolution and fully
/// connected layer becomes integer (residual adds, concatenations and unfolded BatchNorms stay in
/// float), tract runs the result and scores real images with it.
#[test]
fn every_other_zoo_architecture_quantizes_and_runs_in_tract() {
    for arch in ["efficientnet-lite0", "resnet18", "densenet121", "vgg16"] {
        tch::manual_seed(3);
        let vs = nn::VarStore::new(Device::Cpu);
        let net = TchNetwork::new(&vs.root(), zoo::build(arch, Some(64), ClassSet::Binary).unwrap()).unwrap();
        unit_logits_on_real_images(&vs, &net);
        let dir = tempfile::tempdir().unwrap();
        let fp32 = dir.path().join(format!("{arch}.onnx"));
        export_values(net.network(), &param_values(&vs), &fp32, "random initialisation (test)").unwrap();
        let out = dir.path().join(format!("{arch}-int8.onnx"));
        let options = QuantizeOptions { calibration_images: 200, compare_images: Some(10), ..Default::default() };
        let card = quantize_file(&fp32, &small_data(), &out, &options).unwrap_or_else(|e| panic!("{arch}: {e}"));

        let graph =
            |path: &Path| pb::ModelProto::decode(std::fs::read(path).unwrap().as_slice()).unwrap().graph.unwrap();
        let (before, after) = (graph(&fp32), graph(&out));
        let count = |g: &pb::GraphProto, op: &str| g.node.iter().filter(|n| n.op_type == op).count();
        assert!(count(&before, "Conv") > 0, "{arch}");
        assert_eq!(count(&after, "QLinearConv"), count(&before, "Conv"), "{arch}: every conv is integer");
        assert_eq!(
            count(&after, "MatMulInteger"),
            count(&before, "Gemm"),
            "{arch}: every fully connected layer is integer"
        );
        assert_eq!(count(&after, "Conv") + count(&after, "Gemm") + count(&after, "MatMul"), 0, "{arch}");
        let q = card.quantization.unwrap();
        assert_eq!(q.compared_images, 10, "{arch}: tract scored the validation images with both models");
        eprintln!("{arch}: int8 moved P(covid) by up to {:.4} (mean {:.4})", q.max_abs_diff, q.mean_abs_diff);
        assert!(
            q.max_abs_diff <= MAX_RANDOM_INIT_MOVE,
            "{arch}: int8 moved P(covid) by {} (mean {})",
            q.max_abs_diff,
            q.mean_abs_diff
        );
    }
}

/// Rescales the binary head (the one `[1, k]` weight) so the logits of a few real images have mean
/// 0 and spread 1. Random initialisation can saturate the sigmoid (ResNet18's residual stack, with
/// untrained BatchNorm statistics, gives logits in the thousands), and saturated probabilities
/// would agree whatever int8 did.
fn unit_logits_on_real_images(vs: &nn::VarStore, net: &TchNetwork) {
    let preprocess = zoo::preprocess_for(net.network());
    let images: Vec<f32> = small_data()
        .val
        .iter()
        .step_by(10)
        .flat_map(|item| preprocess.apply(&cxr_core::load_image(&item.path).unwrap()))
        .collect();
    let batch = batch_tensor(&images, preprocess.shape(images.len() / preprocess.shape(1).iter().product::<usize>()));
    let logits = tch::no_grad(|| net.forward(&batch, false).logits);
    let (mean, spread) = (logits.mean(Kind::Float).double_value(&[]), logits.std(true).double_value(&[]));
    assert!(spread > 0.0, "{}: every image gives the same logit", net.network().architecture);
    let variables = vs.variables();
    let (weight_name, weight) =
        variables.iter().find(|(_, t)| t.dim() == 2 && t.size()[0] == 1).expect("a binary head");
    let (mut weight, mut bias) =
        (weight.shallow_clone(), variables[&weight_name.replace("weight", "bias")].shallow_clone());
    tch::no_grad(|| {
        let b = bias.double_value(&[0]);
        weight.copy_(&(&weight / spread));
        let _ = bias.fill_((b - mean) / spread);
    });
}

/// With unit-spread logits these random networks moved by up to 0.04 (vgg16, resnet18) to 0.16
/// (efficientnet-lite0) on 10 images: the bound catches a broken graph (a lost bias, a wrong
/// scale), not a subtle loss, which the trained models' tests above check.
const MAX_RANDOM_INIT_MOVE: f64 = 0.25;

#[test]
fn a_layer_kept_in_float_stays_a_float_conv_and_the_card_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let fp32 = shipped_seed_cnn(dir.path());
    let out = dir.path().join("mixed.onnx");
    let options = QuantizeOptions {
        calibration_images: 200,
        keep_float: vec!["conv1".into()],
        compare_images: Some(30),
        ..Default::default()
    };
    let card = quantize_file(&fp32, &small_data(), &out, &options).unwrap();
    let graph = pb::ModelProto::decode(std::fs::read(&out).unwrap().as_slice()).unwrap().graph.unwrap();
    let op_of = |name: &str| graph.node.iter().find(|n| n.name == name).map(|n| n.op_type.clone());
    assert_eq!((op_of("conv1").as_deref(), op_of("conv2").as_deref()), (Some("Conv"), Some("QLinearConv")));
    let q = card.quantization.unwrap();
    assert!(q.scheme.ends_with("kept in float: conv1"), "{}", q.scheme);
    assert!(q.max_abs_diff <= 0.02, "{}", q.max_abs_diff);

    let misspelt = QuantizeOptions { keep_float: vec!["conv_1".into()], ..options };
    let err = quantize_file(&fp32, &small_data(), &out, &misspelt).unwrap_err().to_string();
    assert!(err.contains("conv_1") && err.contains("seed-cnn.onnx"), "{err}");
}

#[test]
fn percentile_ranges_clip_the_tails_that_min_max_keeps_on_real_activations() {
    let bytes = std::fs::read(workspace().join("models/seed-cnn.onnx")).unwrap();
    let model = split_gemm(&pb::ModelProto::decode(bytes.as_slice()).unwrap()).unwrap();
    let card = ModelCard::load(&workspace().join("models/seed-cnn.card.json")).unwrap();
    let images: Vec<_> =
        small_data().train.iter().take(40).map(|item| cxr_core::load_image(&item.path).unwrap()).collect();
    let min_max = calibrate(&model, &card.preprocess, &images, Calibration::MinMax).unwrap();
    let central = calibrate(&model, &card.preprocess, &images, Calibration::Percentile(99.0)).unwrap();
    assert_eq!(min_max.len(), central.len());
    let mut narrower = 0;
    for (name, full) in &min_max {
        let clipped = central[name];
        assert!(clipped.min >= full.min && clipped.max <= full.max, "{name}: {clipped:?} is outside min/max {full:?}");
        if clipped.max - clipped.min < 0.9 * (full.max - full.min) {
            narrower += 1;
        }
    }
    // Every tensor of this model has a long tail somewhere: the image, both convolutions' outputs,
    // the dense layers.
    assert!(narrower * 2 > min_max.len(), "only {narrower} of {} ranges were clipped", min_max.len());
}

#[test]
fn a_model_that_is_already_int8_or_too_little_calibration_data_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fp32 = shipped_seed_cnn(dir.path());
    let mut data = small_data();
    data.train.truncate(150);
    let err =
        quantize_file(&fp32, &data, &dir.path().join("x.onnx"), &QuantizeOptions::default()).unwrap_err().to_string();
    assert!(err.contains("150") && err.contains("200"), "{err}");

    let mut card = ModelCard::load(&ModelCard::path_for(&fp32)).unwrap();
    card.precision = "int8".into();
    card.save(&ModelCard::path_for(&fp32)).unwrap();
    let err = quantize_file(&fp32, &small_data(), &dir.path().join("x.onnx"), &QuantizeOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("int8") && err.contains("fp32"), "{err}");
}
