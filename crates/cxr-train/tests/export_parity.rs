//! The exported ONNX, run by tract, gives the same probabilities as the libtorch module it came from.

use cxr_train::network::{Head, Network, NetworkBuilder, Op, Padding};
use cxr_train::onnx_graph::{self, FEATURES_NAME, PROBABILITIES_NAME};
use cxr_train::tch_backend::{TchNetwork, param_values};
use cxr_train::zoo;
use tch::{Kind, Tensor, nn};
use tract_onnx::prelude::*;

/// Runs the ONNX bytes in tract on `input` (`[n, c, h, w]`), returning every output as f32 values.
fn run_tract(bytes: &[u8], input: &Tensor) -> Vec<Vec<f32>> {
    let shape: Vec<usize> = input.size().iter().map(|&d| d as usize).collect();
    let values = Vec::<f32>::try_from(input.flatten(0, -1)).unwrap();
    let model = tract_onnx::onnx()
        .model_for_read(&mut &bytes[..])
        .unwrap()
        .with_input_fact(0, f32::fact(&shape).into())
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let input = tract_ndarray::ArrayD::from_shape_vec(shape, values).unwrap();
    let outputs = model.run(tvec!(tract_onnx::prelude::Tensor::from(input).into_tvalue())).unwrap();
    outputs.iter().map(|o| o.to_plain_array_view::<f32>().unwrap().iter().copied().collect()).collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// libtorch's random generator is process-wide and tests run on parallel threads: without this,
/// another test's draws would interleave with ours and `seed` would not fix the numbers.
static LIBTORCH_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Exports `network` with its (random or trained) values and compares tract with tch on a random batch.
fn assert_parity(network: Network, seed: i64) {
    let _rng = LIBTORCH_RNG.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    tch::manual_seed(seed);
    let vs = nn::VarStore::new(tch::Device::Cpu);
    let model = TchNetwork::new(&vs.root(), network.clone()).unwrap();
    // Move BatchNorm statistics away from identity so folding is really exercised; in name order,
    // since `variables()` is a HashMap whose order (and so the draws) would change run to run.
    let mut variables: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    variables.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, mut t) in variables {
        tch::no_grad(|| {
            if name.ends_with("running_mean") || name.ends_with("bias") {
                t.copy_(&(Tensor::randn(t.size(), (Kind::Float, t.device())) * 0.1));
            } else if name.ends_with("running_var") {
                t.copy_(&(Tensor::rand(t.size(), (Kind::Float, t.device())) + 0.5));
            }
        });
    }
    let size = network.input_size;
    let input = Tensor::rand([2, network.input_channels, size, size], (Kind::Float, tch::Device::Cpu));
    let expected_prob = Vec::<f32>::try_from(model.probabilities(&input).flatten(0, -1)).unwrap();
    let bytes = onnx_graph::to_onnx(&network, &param_values(&vs)).unwrap();
    let bytes = prost::Message::encode_to_vec(&bytes);
    let outputs = run_tract(&bytes, &input);
    // Saturated probabilities (all 0 or 1) would agree whatever the graph computes.
    assert!(
        expected_prob.iter().any(|p| (1e-3..=1.0 - 1e-3).contains(p)),
        "{}: probabilities {expected_prob:?} are saturated; the comparison would prove nothing",
        network.architecture
    );
    let diff = max_abs_diff(&outputs[0], &expected_prob);
    assert!(diff <= 1e-4, "{}: `{PROBABILITIES_NAME}` differs by {diff}", network.architecture);
    if network.features.is_some() {
        let features = tch::no_grad(|| model.forward(&input, false).features.unwrap());
        let expected = Vec::<f32>::try_from(features.flatten(0, -1)).unwrap();
        // Feature maps are unbounded activations after dozens of layers: compare relative to their scale.
        let scale = expected.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        let diff = max_abs_diff(&outputs[1], &expected);
        assert!(diff <= 1e-4 * scale, "{}: `{FEATURES_NAME}` differs by {diff} (scale {scale})", network.architecture);
    }
}

#[test]
fn seed_cnn_export_matches_libtorch() {
    assert_parity(zoo::seed_cnn(256, Head::Sigmoid), 7);
}

/// Every op the zoo uses, in one small graph: BN folded and unfolded, depthwise and grouped convs,
/// asymmetric ("SAME") padding, ReLU6, residual add, concat, average and global pooling, a
/// softmax head and a feature-map output.
#[test]
fn every_op_exports_with_the_same_numbers() {
    let mut b = NetworkBuilder::new("all-ops", 3, 33);
    let same_pad = Padding { top: 0, left: 0, bottom: 1, right: 1 };
    let x = b.conv("stem.0", NetworkBuilder::INPUT, 8, 3, 2, same_pad, 1, false);
    let x = b.batch_norm("stem.1", x, 1e-3);
    let x = b.op(Op::Relu6, &[x]);
    let dw = b.conv("block.dw", x, 8, 3, 1, Padding::same(1), 8, false);
    let dw = b.batch_norm("block.dw_bn", dw, 1e-5);
    let dw = b.op(Op::Relu, &[dw]);
    let res = b.op(Op::Add, &[x, dw]);
    let unfolded = b.batch_norm("lonely_bn", res, 1e-5);
    let grouped = b.conv("grouped", unfolded, 16, 1, 1, Padding::NONE, 2, true);
    let cat = b.op(Op::Concat, &[unfolded, grouped]);
    let pooled = b.op(Op::AvgPool { kernel: 2, stride: 2 }, &[cat]);
    let pooled = b.op(Op::MaxPool { kernel: 3, stride: 1, padding: 1 }, &[pooled]);
    let features = b.op(Op::Dropout { p: 0.2 }, &[pooled]);
    let gap = b.op(Op::GlobalAvgPool, &[features]);
    let flat = b.op(Op::Flatten, &[gap]);
    let logits = b.linear("classifier", flat, 3);
    let network = b.finish(logits, Some(features), Head::Softmax { classes: 3 });
    assert_parity(network, 11);
}

#[test]
fn mobilenet_v2_export_matches_libtorch() {
    assert_parity(zoo::mobilenet_v2(96, Head::Sigmoid), 5);
}

/// TF-"SAME" padding, asymmetric at every stride-2 conv on the even maps of a 64-px input.
#[test]
fn efficientnet_lite0_export_matches_libtorch() {
    assert_parity(zoo::efficientnet_lite0(64, Head::Sigmoid), 13);
}

#[test]
fn resnet18_export_matches_libtorch() {
    assert_parity(zoo::resnet18(64, Head::Softmax { classes: 3 }), 17);
}

/// Pre-activation BatchNorms on concatenations stay unfolded; the rest fold.
#[test]
fn densenet121_export_matches_libtorch() {
    assert_parity(zoo::densenet121(64, Head::Sigmoid), 19);
}

#[test]
fn vgg16_export_matches_libtorch() {
    assert_parity(zoo::vgg16(64, Head::Sigmoid), 23);
}
