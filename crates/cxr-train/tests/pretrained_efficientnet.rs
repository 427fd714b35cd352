//! EfficientNet-Lite0's ImageNet weights load by name into the zoo's network and compute what the
//! original checkpoint computes; a misshapen weights file is refused with the tensor named.

use cxr_test_support::workspace;
use cxr_train::network::Head;
use cxr_train::pretrained::load_pretrained;
use cxr_train::tch_backend::TchNetwork;
use cxr_train::zoo;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor, nn};

const SIZE: i64 = 224;

fn imagenet_weights() -> PathBuf {
    let path = workspace().join(".torch/weights/efficientnet_lite0-imagenet.safetensors");
    assert!(path.is_file(), "{}: missing; run scripts/fetch-weights.sh first", path.display());
    path
}

/// The input of tests/fixtures/efficientnet_lite0_reference.py: `((7c + 3h + 5w) mod 17) / 8 − 1`,
/// exact in f32, so both sides feed the network the same numbers.
fn fixed_input() -> Tensor {
    let mut values = Vec::with_capacity((3 * SIZE * SIZE) as usize);
    for c in 0..3 {
        for h in 0..SIZE {
            for w in 0..SIZE {
                values.push(((7 * c + 3 * h + 5 * w) % 17) as f32 / 8.0 - 1.0);
            }
        }
    }
    Tensor::from_slice(&values).reshape([1, 3, SIZE, SIZE])
}

/// Logits the reference script computed in float64 from the wheel's original `.pth`.
fn reference_logits() -> (Vec<f32>, Vec<i64>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/efficientnet_lite0_logits.json");
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let logits = json["logits"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
    let top5 = json["top5"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
    (logits, top5)
}

#[test]
fn imagenet_weights_load_completely_and_reproduce_the_original_checkpoints_logits() {
    let weights = imagenet_weights();
    let vs = nn::VarStore::new(Device::Cpu);
    let imagenet = TchNetwork::new(&vs.root(), zoo::efficientnet_lite0(SIZE, Head::Softmax { classes: 1000 })).unwrap();
    let report = load_pretrained(&vs, imagenet.network(), &weights, &imagenet.network().head_prefix()).unwrap();
    assert_eq!(report.loaded, 247);
    assert!(report.replaced_head.is_empty());

    let logits = tch::no_grad(|| imagenet.forward(&fixed_input(), false).logits);
    let logits = Vec::<f32>::try_from(logits.flatten(0, -1)).unwrap();
    let (expected, expected_top5) = reference_logits();
    let diff = logits.iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    // float32 here against float64 there (the fixture keeps 6 decimals): a few 1e-6 apart.
    assert!(diff <= 1e-4, "ImageNet logits differ from the reference by {diff}");
    let mut order: Vec<i64> = (0..1000).collect();
    order.sort_by(|&a, &b| logits[b as usize].total_cmp(&logits[a as usize]));
    assert_eq!(order[..5], expected_top5[..]);
}

#[test]
fn binary_head_replaces_only_the_imagenet_classifier() {
    let weights = imagenet_weights();
    let file: std::collections::HashMap<String, Tensor> =
        Tensor::read_safetensors(&weights).unwrap().into_iter().collect();
    let vs = nn::VarStore::new(Device::Cpu);
    let binary = TchNetwork::new(&vs.root(), zoo::efficientnet_lite0(SIZE, Head::Sigmoid)).unwrap();
    let report = load_pretrained(&vs, binary.network(), &weights, &binary.network().head_prefix()).unwrap();
    assert_eq!(report.loaded, 245);
    assert_eq!(report.replaced_head, ["_fc.weight", "_fc.bias"]);
    for (name, value) in vs.variables() {
        if !name.starts_with("_fc.") {
            assert!(value.equal(&file[&name]), "{name} differs from the file");
        }
    }
}

#[test]
fn a_misshapen_tensor_is_refused_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let vs = nn::VarStore::new(Device::Cpu);
    let net = TchNetwork::new(&vs.root(), zoo::efficientnet_lite0(SIZE, Head::Sigmoid)).unwrap();
    let mut tensors: Vec<(String, Tensor)> = Tensor::read_safetensors(imagenet_weights()).unwrap();
    for (name, t) in tensors.iter_mut() {
        if name == "_blocks.3._depthwise_conv.weight" {
            // A 3×3 kernel where stage 3 has 5×5 ones: a checkpoint of another stage layout.
            *t = Tensor::zeros([144, 1, 3, 3], (Kind::Float, Device::Cpu));
        }
    }
    let bad = dir.path().join("bad.safetensors");
    Tensor::write_safetensors(&tensors, &bad).unwrap();
    let err = load_pretrained(&vs, net.network(), &bad, &net.network().head_prefix()).unwrap_err().to_string();
    assert!(err.contains("_blocks.3._depthwise_conv.weight") && err.contains("[144, 1, 5, 5]"), "{err}");
}
