//! `cxr train --weights`: any architecture starts from a checkpoint whose tensors fit by name and
//! shape (the classifier head excepted), records it in the model card, and refuses one that does not fit.

mod common;

use common::images;
use cxr_core::Class;
use cxr_test_support::workspace;
use cxr_train::export::export_checkpoint;
use cxr_train::network::Head;
use cxr_train::tch_backend::TchNetwork;
use cxr_train::train::{self, BEST_WEIGHTS, TrainConfig};
use cxr_train::{TrainingData, zoo};
use std::collections::HashMap;
use std::path::Path;
use tch::{Device, Tensor, nn};

/// Eight real X-rays per class: four train, four validate. Enough for one epoch to run end to end.
fn tiny_data() -> TrainingData {
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for (folder, class) in [("COVID", Class::Covid), ("Normal", Class::Normal)] {
        let mut pictures = images(folder, class, 8);
        val.extend(pictures.split_off(4));
        train.extend(pictures);
    }
    TrainingData { train, val, split_seed: None, holdout_sources: vec![] }
}

#[test]
fn a_fitting_checkpoint_is_the_starting_point_and_one_that_does_not_fit_stops_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_data();
    let manifest = Path::new("covid19-radiography (test selection)");
    // A torchvision-style checkpoint: 1000-class head, saved by tch.
    let checkpoint = dir.path().join("resnet18-imagenet-like.safetensors");
    tch::manual_seed(99);
    let source = nn::VarStore::new(Device::Cpu);
    TchNetwork::new(&source.root(), zoo::resnet18(64, Head::Softmax { classes: 1000 })).unwrap();
    source.save(&checkpoint).unwrap();

    let mut config = TrainConfig::new("resnet18");
    config.image_size = Some(64);
    config.epochs = 1;
    config.batch_size = 4;
    // Adam with a zero learning rate leaves the weights where loading put them, so they can be compared.
    config.learning_rate = 0.0;
    config.pretrained = Some(checkpoint.clone());
    let run = dir.path().join("run");
    let state = train::train(&config, &data, manifest, &run, false, &mut |_, _| {}).unwrap();
    let trained: HashMap<String, Tensor> =
        Tensor::read_safetensors(run.join(BEST_WEIGHTS)).unwrap().into_iter().collect();
    let original: HashMap<String, Tensor> = Tensor::read_safetensors(&checkpoint).unwrap().into_iter().collect();
    for name in ["conv1.weight", "layer4.1.conv2.weight", "layer2.0.downsample.1.weight"] {
        assert!(trained[name].equal(&original[name]), "`{name}` did not come from the checkpoint");
    }
    assert_eq!(trained["fc.weight"].size(), [1, 512], "the 1000-class head is replaced by cxr's");
    let card = export_checkpoint(&run, &dir.path().join("resnet18-test.onnx")).unwrap();
    assert_eq!(card.training.unwrap().pretrained, Some(checkpoint.display().to_string()));
    assert_eq!(state.config.pretrained, Some(checkpoint));

    // MobileNetV2's names mean nothing to ResNet-18: the run stops before any epoch, naming tensors.
    let mut config = config.clone();
    let mobilenet = workspace().join(".torch/weights/mobilenet_v2-imagenet.safetensors");
    config.pretrained = Some(mobilenet);
    let err = train::train(&config, &data, manifest, &dir.path().join("bad-run"), false, &mut |_, _| {})
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("mobilenet_v2-imagenet.safetensors") && err.contains("`conv1.weight`") && err.contains("resnet18"),
        "{err}"
    );
}
