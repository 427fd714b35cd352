//! MobileNetV2's ImageNet weights load by name into the zoo's network, and bad weight files fail loudly.

use cxr_test_support::workspace;
use cxr_train::network::Head;
use cxr_train::pretrained::load_pretrained;
use cxr_train::tch_backend::TchNetwork;
use cxr_train::zoo;
use std::path::PathBuf;
use tch::{Device, Kind, Tensor, nn};

fn imagenet_weights() -> PathBuf {
    let path = workspace().join(".torch/weights/mobilenet_v2-imagenet.safetensors");
    assert!(path.is_file(), "{}: missing; run scripts/fetch-weights.sh first", path.display());
    path
}

#[test]
fn imagenet_backbone_loads_completely_and_only_the_new_head_is_replaced() {
    let weights = imagenet_weights();
    let file: std::collections::HashMap<String, Tensor> =
        Tensor::read_safetensors(&weights).unwrap().into_iter().collect();

    // With the original 1000-class head everything loads, and the network is torchvision's.
    let vs = nn::VarStore::new(Device::Cpu);
    let imagenet = TchNetwork::new(&vs.root(), zoo::mobilenet_v2(224, Head::Softmax { classes: 1000 })).unwrap();
    let report = load_pretrained(&vs, imagenet.network(), &weights, "classifier.").unwrap();
    assert_eq!(report.loaded, 262);
    assert!(report.replaced_head.is_empty());
    for (name, value) in vs.variables() {
        assert!(value.equal(&file[&name]), "{name} differs from the file");
    }
    let probs = imagenet.probabilities(&Tensor::zeros([1, 3, 224, 224], (Kind::Float, Device::Cpu)));
    assert_eq!(probs.size(), [1, 1000]);
    assert!((f64::try_from(probs.sum(Kind::Double)).unwrap() - 1.0).abs() < 1e-4);

    // With cxr's binary head, the backbone loads and the ImageNet classifier is replaced.
    let vs = nn::VarStore::new(Device::Cpu);
    let binary = TchNetwork::new(&vs.root(), zoo::mobilenet_v2(224, Head::Sigmoid)).unwrap();
    let report = load_pretrained(&vs, binary.network(), &weights, "classifier.").unwrap();
    assert_eq!(report.loaded, 260);
    assert_eq!(report.replaced_head, ["classifier.1.weight", "classifier.1.bias"]);
    assert!(vs.variables()["features.18.1.running_var"].equal(&file["features.18.1.running_var"]));
}

#[test]
fn a_misshapen_missing_or_corrupt_weights_file_is_refused_with_the_tensor_named() {
    let dir = tempfile::tempdir().unwrap();
    let vs = nn::VarStore::new(Device::Cpu);
    let net = TchNetwork::new(&vs.root(), zoo::mobilenet_v2(224, Head::Sigmoid)).unwrap();

    let missing = dir.path().join("absent.safetensors");
    let err = load_pretrained(&vs, net.network(), &missing, "classifier.").unwrap_err().to_string();
    assert!(err.contains("absent.safetensors") && err.contains("fetch-weights.sh"), "{err}");

    let corrupt = dir.path().join("corrupt.safetensors");
    std::fs::write(&corrupt, b"not safetensors at all").unwrap();
    let err = load_pretrained(&vs, net.network(), &corrupt, "classifier.").unwrap_err().to_string();
    assert!(err.contains("corrupt.safetensors"), "{err}");

    let mut tensors: Vec<(String, Tensor)> = Tensor::read_safetensors(imagenet_weights()).unwrap();
    for (name, t) in tensors.iter_mut() {
        if name == "features.3.conv.1.0.weight" {
            *t = Tensor::zeros([144, 2, 3, 3], (Kind::Float, Device::Cpu));
        }
    }
    tensors.retain(|(name, _)| name != "features.0.1.bias");
    let bad = dir.path().join("bad.safetensors");
    Tensor::write_safetensors(&tensors, &bad).unwrap();
    let err = load_pretrained(&vs, net.network(), &bad, "classifier.").unwrap_err().to_string();
    assert!(err.contains("features.3.conv.1.0.weight") && err.contains("features.0.1.bias"), "{err}");
}
