//! ResNet-18, DenseNet-121 and VGG-16 have no ImageNet weights here, so a user brings a torchvision
//! checkpoint: whatever tch saved from one of these networks loads back by name into a fresh one
//! (with a new head where the class count differs), and a misshapen tensor is refused by name.

use cxr_train::network::{Head, Network};
use cxr_train::pretrained::load_pretrained;
use cxr_train::tch_backend::TchNetwork;
use cxr_train::zoo;
use tch::{Device, Kind, Tensor, nn};

/// Small inputs keep the test quick; names and shapes (bar VGG's first classifier layer, which
/// depends on the input size) are those of the 224-px networks.
const SIZE: i64 = 64;

/// Saves a 1000-class network (as a torchvision ImageNet checkpoint would be) with `vs.save`,
/// loads it into a fresh binary one, and checks every backbone tensor arrived; then corrupts
/// `tensor`'s shape and checks the loader names it.
fn round_trip(build: fn(i64, Head) -> Network, tensor: &str) {
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = dir.path().join("imagenet.safetensors");
    tch::manual_seed(1);
    let source_vs = nn::VarStore::new(Device::Cpu);
    let source = TchNetwork::new(&source_vs.root(), build(SIZE, Head::Softmax { classes: 1000 })).unwrap();
    source_vs.save(&checkpoint).unwrap();

    tch::manual_seed(2);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = TchNetwork::new(&vs.root(), build(SIZE, Head::Sigmoid)).unwrap();
    let architecture = &net.network().architecture;
    let head = net.network().head_prefix();
    let report = load_pretrained(&vs, net.network(), &checkpoint, &head).unwrap();
    assert_eq!(report.loaded, net.network().parameters().len() - 2, "{architecture}");
    assert_eq!(report.replaced_head, [format!("{head}weight"), format!("{head}bias")], "{architecture}");
    let saved = source_vs.variables();
    for (name, value) in vs.variables() {
        let same = value.equal(&saved[&name]);
        assert_eq!(same, !name.starts_with(&head), "{architecture}: `{name}` loaded {same}");
    }
    assert_eq!(source.network().parameters().len(), net.network().parameters().len());

    let mut tensors: Vec<(String, Tensor)> = Tensor::read_safetensors(&checkpoint).unwrap();
    let wrong = tensors.iter_mut().find(|(name, _)| name == tensor).unwrap_or_else(|| panic!("{architecture} has no `{tensor}`"));
    let mut shape = wrong.1.size();
    shape[0] += 1;
    wrong.1 = Tensor::zeros(shape.as_slice(), (Kind::Float, Device::Cpu));
    let bad = dir.path().join("bad.safetensors");
    Tensor::write_safetensors(&tensors, &bad).unwrap();
    let err = load_pretrained(&vs, net.network(), &bad, &head).unwrap_err().to_string();
    assert!(err.contains(tensor) && err.contains(&format!("{shape:?}")) && err.contains("bad.safetensors"), "{err}");
}

#[test]
fn resnet18_checkpoint_loads_by_name_and_a_misshapen_one_is_refused() {
    round_trip(zoo::resnet18, "layer3.0.downsample.0.weight");
}

#[test]
fn densenet121_checkpoint_loads_by_name_and_a_misshapen_one_is_refused() {
    round_trip(zoo::densenet121, "features.denseblock3.denselayer7.norm1.running_var");
}

#[test]
fn vgg16_checkpoint_loads_by_name_and_a_misshapen_one_is_refused() {
    round_trip(zoo::vgg16, "features.17.weight");
}
