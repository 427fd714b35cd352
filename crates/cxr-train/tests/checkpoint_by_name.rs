//! ResNet-18, DenseNet-121 and VGG-16 have no ImageNet weights here, so a user brings a torchvision
//! checkpoint: a state dict with torchvision's own names and shapes (written out below from
//! torchvision's model definitions) loads by name into the network, and whatever tch saved from one
//! of these networks loads back by name into a fresh one (with a new head where the class count
//! differs), and a misshapen tensor is refused by name.

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
    let wrong = tensors
        .iter_mut()
        .find(|(name, _)| name == tensor)
        .unwrap_or_else(|| panic!("{architecture} has no `{tensor}`"));
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

/// One entry of a torchvision state dict: name and shape.
type Entry = (String, Vec<i64>);

/// torchvision's `nn.BatchNorm2d` entries: two parameters, then the running statistics and the
/// `num_batches_tracked` counter its state dicts also hold.
fn batch_norm(entries: &mut Vec<Entry>, name: &str, channels: i64) {
    for leaf in ["weight", "bias", "running_mean", "running_var"] {
        entries.push((format!("{name}.{leaf}"), vec![channels]));
    }
    entries.push((format!("{name}.num_batches_tracked"), vec![]));
}

fn linear(entries: &mut Vec<Entry>, name: &str, inputs: i64, outputs: i64) {
    entries.push((format!("{name}.weight"), vec![outputs, inputs]));
    entries.push((format!("{name}.bias"), vec![outputs]));
}

/// `torchvision.models.resnet18().state_dict()`, after torchvision/models/resnet.py (`BasicBlock`,
/// layers [2, 2, 2, 2], a `downsample` Sequential of 1×1 conv and BatchNorm where the shape changes).
fn torchvision_resnet18() -> Vec<Entry> {
    let mut e = vec![("conv1.weight".to_owned(), vec![64, 3, 7, 7])];
    batch_norm(&mut e, "bn1", 64);
    let mut inputs = 64;
    for (stage, planes) in [64, 128, 256, 512].into_iter().enumerate() {
        for block in 0..2 {
            let prefix = format!("layer{}.{block}", stage + 1);
            e.push((format!("{prefix}.conv1.weight"), vec![planes, inputs, 3, 3]));
            batch_norm(&mut e, &format!("{prefix}.bn1"), planes);
            e.push((format!("{prefix}.conv2.weight"), vec![planes, planes, 3, 3]));
            batch_norm(&mut e, &format!("{prefix}.bn2"), planes);
            if block == 0 && stage > 0 {
                e.push((format!("{prefix}.downsample.0.weight"), vec![planes, inputs, 1, 1]));
                batch_norm(&mut e, &format!("{prefix}.downsample.1"), planes);
            }
            inputs = planes;
        }
    }
    linear(&mut e, "fc", 512, 1000);
    e
}

/// `torchvision.models.densenet121().state_dict()`, after torchvision/models/densenet.py (growth 32,
/// `bn_size` 4, blocks (6, 12, 24, 16), 64 initial features, transitions halving the channels).
/// (Very old torchvision checkpoints spelt `norm.1` for `norm1`; torchvision renames those on
/// loading, and so must a user converting one.)
fn torchvision_densenet121() -> Vec<Entry> {
    let mut e = vec![("features.conv0.weight".to_owned(), vec![64, 3, 7, 7])];
    batch_norm(&mut e, "features.norm0", 64);
    let mut features = 64;
    for (block, layers) in [6, 12, 24, 16].into_iter().enumerate() {
        for layer in 0..layers {
            let prefix = format!("features.denseblock{}.denselayer{}", block + 1, layer + 1);
            let inputs = features + layer * 32;
            batch_norm(&mut e, &format!("{prefix}.norm1"), inputs);
            e.push((format!("{prefix}.conv1.weight"), vec![128, inputs, 1, 1]));
            batch_norm(&mut e, &format!("{prefix}.norm2"), 128);
            e.push((format!("{prefix}.conv2.weight"), vec![32, 128, 3, 3]));
        }
        features += layers * 32;
        if block < 3 {
            let prefix = format!("features.transition{}", block + 1);
            batch_norm(&mut e, &format!("{prefix}.norm"), features);
            e.push((format!("{prefix}.conv.weight"), vec![features / 2, features, 1, 1]));
            features /= 2;
        }
    }
    batch_norm(&mut e, "features.norm5", features);
    linear(&mut e, "classifier", features, 1000);
    e
}

/// `torchvision.models.vgg16().state_dict()`, after torchvision/models/vgg.py (configuration "D";
/// `features` numbers every module, ReLUs and pools included; `classifier` is Linear, ReLU,
/// Dropout, Linear, ReLU, Dropout, Linear on the 512×7×7 pooled map).
fn torchvision_vgg16() -> Vec<Entry> {
    let mut e = Vec::new();
    let (mut index, mut inputs) = (0, 3);
    for stage in [vec![64, 64], vec![128, 128], vec![256, 256, 256], vec![512, 512, 512], vec![512, 512, 512]] {
        for channels in stage {
            e.push((format!("features.{index}.weight"), vec![channels, inputs, 3, 3]));
            e.push((format!("features.{index}.bias"), vec![channels]));
            (index, inputs) = (index + 2, channels);
        }
        index += 1;
    }
    linear(&mut e, "classifier.0", 512 * 7 * 7, 4096);
    linear(&mut e, "classifier.3", 4096, 4096);
    linear(&mut e, "classifier.6", 4096, 1000);
    e
}

/// A checkpoint shaped and named exactly as torchvision saves these three networks loads into ours
/// at 224 px with every tensor but the new head, each to the variable of its name. The name lists
/// are checked against torchvision's published parameter counts (its model documentation:
/// 11,689,512, 7,978,856 and 138,357,544) and state-dict lengths, so they are torchvision's and not
/// a copy of our own naming.
#[test]
fn torchvision_state_dicts_load_by_their_own_names() {
    for (build, entries, parameters, state_dict_len) in [
        (zoo::resnet18 as fn(i64, Head) -> Network, torchvision_resnet18(), 11_689_512, 122),
        (zoo::densenet121, torchvision_densenet121(), 7_978_856, 727),
        (zoo::vgg16, torchvision_vgg16(), 138_357_544, 32),
    ] {
        let is_parameter = |name: &str| {
            !name.ends_with("running_mean") && !name.ends_with("running_var") && !name.ends_with("num_batches_tracked")
        };
        let count: i64 =
            entries.iter().filter(|(n, _)| is_parameter(n)).map(|(_, shape)| shape.iter().product::<i64>()).sum();
        assert_eq!((count, entries.len()), (parameters, state_dict_len), "the list is not torchvision's");

        // Each tensor a constant of its own (its index), so a tensor landing under another name shows.
        let value = |i: usize| i as f64 / 1024.0;
        let tensors: Vec<(String, Tensor)> = entries
            .iter()
            .enumerate()
            .map(|(i, (name, shape))| {
                let tensor = if name.ends_with("num_batches_tracked") {
                    Tensor::from(i as i64)
                } else {
                    Tensor::full(shape.as_slice(), value(i), (Kind::Float, Device::Cpu))
                };
                (name.clone(), tensor)
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let checkpoint = dir.path().join("torchvision.safetensors");
        Tensor::write_safetensors(&tensors, &checkpoint).unwrap();
        drop(tensors);

        let vs = nn::VarStore::new(Device::Cpu);
        let net = TchNetwork::new(&vs.root(), build(224, Head::Sigmoid)).unwrap();
        let architecture = net.network().architecture.clone();
        let head = net.network().head_prefix();
        let report =
            load_pretrained(&vs, net.network(), &checkpoint, &head).unwrap_or_else(|e| panic!("{architecture}: {e}"));
        assert_eq!(report.replaced_head, [format!("{head}weight"), format!("{head}bias")], "{architecture}");
        let variables = vs.variables();
        let loaded: Vec<&String> = entries
            .iter()
            .map(|(n, _)| n)
            .filter(|n| !n.ends_with("num_batches_tracked") && !n.starts_with(&head))
            .collect();
        assert_eq!(report.loaded, loaded.len(), "{architecture}");
        assert_eq!(variables.len(), loaded.len() + 2, "{architecture}: tensors torchvision does not have");
        for (i, (name, _)) in entries.iter().enumerate().filter(|(_, (n, _))| loaded.contains(&n)) {
            let v = &variables[name];
            assert!(v.equal(&v.full_like(value(i))), "{architecture}: `{name}` did not get torchvision's tensor {i}");
        }
    }
}
