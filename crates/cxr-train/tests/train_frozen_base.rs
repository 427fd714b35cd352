//! Frozen-base transfer, as the seed trained its MobileNet: MobileNetV2 from the ImageNet weights
//! (scripts/fetch-weights.sh), only the classifier head trained, on backbone features computed
//! once, at 128 px, on 300 real X-rays. The backbone must come out exactly as loaded, the head must
//! learn, a resumed run must reuse the cached features (and an overlapping run compute only what is new), and the exported ONNX (the whole network)
//! must give cxr-infer the numbers libtorch gives.

mod common;

use common::{assert_runtime_matches_libtorch, small_data};
use cxr_core::metrics::roc::RocCurve;
use cxr_core::{Class, ClassSet, ModelCard, load_image};
use cxr_test_support::workspace;
use cxr_train::Balance;
use cxr_train::LabeledImage;
use cxr_train::augment::Augmentation;
use cxr_train::export::export_checkpoint;
use cxr_train::network::Network;
use cxr_train::tch_backend::{TchNetwork, batch_tensor};
use cxr_train::train::{self, BEST_WEIGHTS, LAST_WEIGHTS, TrainConfig};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use tch::{Device, Tensor, nn};

fn imagenet_weights() -> PathBuf {
    workspace().join(".torch/weights/mobilenet_v2-imagenet.safetensors")
}

fn frozen_config() -> TrainConfig {
    let mut config = TrainConfig::new("mobilenet-v2");
    config.image_size = Some(128);
    config.seed = 5;
    config.epochs = 4;
    config.patience = 20;
    config.augmentation = Augmentation::NONE;
    config.pretrained = Some(imagenet_weights());
    config.freeze_base = true;
    config
}

/// The first `n` films of `folder` in Kermany's `chest_xray/train` (children), as `class` of source `chest_xray`.
fn kermany(folder: &str, class: Class, n: usize) -> Vec<LabeledImage> {
    let dir = cxr_test_support::datasets().join("chest_xray/train").join(folder);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    paths.sort();
    paths.truncate(n);
    paths.into_iter().map(|path| LabeledImage { path, class, source: "chest_xray".into() }).collect()
}

/// Every tensor of a safetensors checkpoint, by name.
fn read_weights(path: &Path) -> HashMap<String, Tensor> {
    Tensor::read_safetensors(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).into_iter().collect()
}

/// P(covid) of `images` by `network` with the weights in `weights`, run by libtorch.
fn p_covid(network: &Network, weights: &Path, images: &[&LabeledImage]) -> Vec<f32> {
    let preprocess = cxr_train::zoo::preprocess_for(network);
    let mut input = Vec::new();
    for img in images {
        preprocess.apply_into(&load_image(&img.path).unwrap(), &mut input);
    }
    let mut vs = nn::VarStore::new(Device::Cpu);
    let model = TchNetwork::new(&vs.root(), network.clone()).unwrap();
    vs.load(weights).unwrap();
    Vec::<f32>::try_from(model.probabilities(&batch_tensor(&input, preprocess.shape(images.len()))).flatten(0, -1))
        .unwrap()
}

/// Straight to stderr: the harness captures `println!`, and the epoch times are the point.
fn log(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

#[test]
fn frozen_mobilenet_v2_trains_only_its_head_on_cached_features_and_exports_the_whole_network() {
    let data = small_data();
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let manifest = Path::new("covid19-radiography (test selection)");
    let mut config = frozen_config();

    let first = train::train(&config, &data, manifest, &run, false, &mut |_, _| {}).unwrap();
    let computed = first.features.clone().expect("a frozen-base run records its features");
    assert!(!computed.reused);
    assert!(
        computed.node.starts_with("flatten"),
        "the pooled, flattened map before dropout and `classifier.1`: {}",
        computed.node
    );
    assert_eq!(computed.dimensions, 1280, "MobileNetV2's pooled features");
    assert!(run.join(&computed.file).is_file());

    // Resuming finds the features on disk instead of decoding and running the backbone again.
    config.epochs = 8;
    let state = train::train(&config, &data, manifest, &run, true, &mut |_, _| {}).unwrap();
    let reused = state.features.clone().unwrap();
    assert!(reused.reused, "the resumed run recomputed its features");
    assert_eq!(reused.file, computed.file);
    assert_eq!(state.history.iter().map(|r| r.epoch).collect::<Vec<_>>(), (1..=8).collect::<Vec<_>>());
    log(&format!(
        "frozen mobilenet-v2 @128 px: features of {} images in {:.1} s ({:.1} ms/image); head epochs on cached features: {}",
        computed.images,
        computed.extraction_seconds,
        1000.0 * computed.extraction_seconds / computed.images as f64,
        state.history.iter().map(|r| format!("{:.3} s", r.seconds)).collect::<Vec<_>>().join(", ")
    ));
    let best = state.best.clone().unwrap();
    assert!(
        best.val_auc > 0.75,
        "validation AUC {} is not clearly above chance; history {:?}",
        best.val_auc,
        state.history
    );

    // A three-class head on the same backbone and images trains on the same cached features when
    // pointed at them: the cache keeps each row's image, not a class set's targets.
    let mut three = frozen_config();
    three.class_set = ClassSet::ThreeClass;
    three.feature_dir = Some(run.clone());
    let three_state =
        train::train(&three, &data, manifest, &dir.path().join("three-class-run"), false, &mut |_, _| {}).unwrap();
    let shared = three_state.features.clone().unwrap();
    assert!(shared.reused && shared.file == computed.file, "the three-class run recomputed its features: {shared:?}");
    assert!(!dir.path().join("three-class-run").join(&computed.file).exists(), "the cache stays in --feature-dir");
    assert_eq!(
        three_state.data.train_class_counts.len(),
        3,
        "three-class targets: {:?}",
        three_state.data.train_class_counts
    );
    assert!(three_state.best.unwrap().val_auc > 0.75, "three-class head on shared features: {:?}", three_state.history);

    // Source balance reaches the loss: with a second source of normal films only, a head trained
    // with every source weighing alike differs from one trained with every class weighing alike,
    // everything else equal, and the run records which it was.
    let mut two_sources = data.clone();
    for (i, img) in two_sources.train.iter_mut().filter(|img| img.class == cxr_core::Class::Normal).enumerate() {
        if i >= 35 {
            img.source = "normals-only".into();
        }
    }
    let head_after = |balance: Balance| {
        let mut config = frozen_config();
        config.feature_dir = Some(run.clone());
        config.epochs = 2;
        config.balance = balance;
        let run_dir = dir.path().join(format!("{balance:?}"));
        let state = train::train(&config, &two_sources, manifest, &run_dir, false, &mut |_, _| {}).unwrap();
        assert!(state.features.unwrap().reused);
        assert_eq!(train::read_state(&run_dir.join(train::STATE_FILE)).unwrap().config.balance, balance);
        read_weights(&run_dir.join(LAST_WEIGHTS))["classifier.1.weight"].shallow_clone()
    };
    let (by_class, by_source) = (head_after(Balance::Classes), head_after(Balance::Sources));
    assert!(!by_class.allclose(&by_source, 1e-6, 1e-6, false), "--balance sources trained the same head");

    // Training against a source predictor: with normal films of a second collection (Kermany's
    // children) in training, a source-balanced head scores them far apart from the first
    // collection's normal films (AUC 0.03 when measured); trained against the adversary it scores
    // the two sources' normal films alike (0.58) and still tells COVID from normal films. A weight
    // of 10 or more, measured too, loses the disease: the weight is a trade, not a free lunch.
    let mut with_children = data.clone();
    let children = kermany("NORMAL", Class::Normal, 90);
    with_children.train.extend(children[..60].iter().cloned());
    with_children.val.extend(children[60..].iter().cloned());
    let source_gap = |balance: Balance, adversary: Option<f64>| {
        let mut config = frozen_config();
        config.feature_dir = Some(run.clone());
        config.epochs = 6;
        config.balance = balance;
        config.source_adversary = adversary;
        let run_dir = dir.path().join(format!("{balance:?}-adversary-{adversary:?}"));
        let state = train::train(&config, &with_children, manifest, &run_dir, false, &mut |_, _| {}).unwrap();
        assert!(state.history.iter().all(|r| r.adversary_loss.is_some() == adversary.is_some()));
        let val: Vec<&LabeledImage> = with_children.val.iter().collect();
        let scores = p_covid(&state.network, &run_dir.join(LAST_WEIGHTS), &val);
        let auc = |positive: &dyn Fn(&LabeledImage) -> Option<bool>| {
            let (scores, labels): (Vec<f64>, Vec<bool>) =
                val.iter().zip(&scores).filter_map(|(img, &p)| positive(img).map(|l| (p as f64, l))).unzip();
            RocCurve::new(&scores, &labels).unwrap().auc
        };
        let source = auc(&|img| (img.class == Class::Normal).then_some(img.source == "chest_xray"));
        let disease = auc(&|img| (img.source != "chest_xray").then_some(img.class == Class::Covid));
        log(&format!(
            "{balance:?}, adversary {adversary:?}: normal films, Kermany against covid19-radiography: AUC {source:.3}; COVID against normal in covid19-radiography: AUC {disease:.3}"
        ));
        ((source - 0.5).abs(), disease)
    };
    let (plain_gap, plain_disease) = source_gap(Balance::Sources, None);
    let (gap, disease) = source_gap(Balance::Sources, Some(1.0));
    assert!(
        gap < plain_gap - 0.2,
        "against the adversary the score tells Kermany's normal films from the others' {gap:.3} from chance, without it {plain_gap:.3}"
    );
    assert!(
        disease > 0.75 && disease > plain_disease - 0.05,
        "against the adversary the head lost the disease: AUC {disease:.3} against {plain_disease:.3}"
    );

    // A run over an overlapping list (as the folds of a cross-validation are) computes only the
    // images the store lacks, and the store then serves both lists whole.
    let mut overlapping = data.clone();
    overlapping.train.truncate(overlapping.train.len() - 30);
    let added = common::images("Normal", cxr_core::Class::Normal, 162).split_off(150);
    overlapping.train.extend(added.iter().cloned());
    let mut other = frozen_config();
    other.feature_dir = Some(run.clone());
    other.epochs = 1;
    let fold =
        train::train(&other, &overlapping, manifest, &dir.path().join("overlap"), false, &mut |_, _| {}).unwrap();
    let record = fold.features.clone().unwrap();
    assert_eq!((record.computed, record.reused, record.file.as_str()), (added.len(), false, computed.file.as_str()));
    assert_eq!(record.images, overlapping.train.len() + overlapping.val.len());
    let again = train::train(&other, &data, manifest, &dir.path().join("again"), false, &mut |_, _| {}).unwrap();
    assert!(again.features.unwrap().reused, "the first list was recomputed after the store grew");

    // Every backbone tensor, BatchNorm statistics included, is the checkpoint's; the head is not its initial value.
    let (trained, original) = (read_weights(&run.join(BEST_WEIGHTS)), read_weights(&imagenet_weights()));
    let head = state.network.head_prefix();
    let mut backbone = 0;
    for spec in state.network.parameters().iter().filter(|p| !p.name.starts_with(&head)) {
        assert!(
            trained[&spec.name].equal(&original[&spec.name].to_kind(trained[&spec.name].kind())),
            "`{}` changed in training",
            spec.name
        );
        backbone += 1;
    }
    assert_eq!(backbone, 260, "all of MobileNetV2 but `classifier.1.weight` and `.bias`");
    tch::manual_seed(config.seed as i64);
    let initial = nn::VarStore::new(Device::Cpu);
    TchNetwork::new(&initial.root(), state.network.clone()).unwrap();
    let initial_head = &initial.variables()["classifier.1.weight"];
    assert!(!trained["classifier.1.weight"].allclose(initial_head, 1e-6, 1e-6, false), "the head did not train");

    // The export is the whole network, and its card says how it was trained.
    let onnx = dir.path().join("mobilenet-v2-frozen.onnx");
    let card = export_checkpoint(&run, &onnx).unwrap();
    let training = card.training.clone().unwrap();
    assert_eq!(training.transfer.as_deref(), Some("frozen base, new head"));
    assert!(card.notes.iter().any(|n| n.contains("backbone features cached")), "{:?}", card.notes);
    assert_eq!(card.parameters, Some(state.network.trainable_parameter_count()));

    assert_runtime_matches_libtorch(&state.network, &run, &onnx, &card, &data);
    assert_eq!(ModelCard::load(&ModelCard::path_for(&onnx)).unwrap(), card);
}

/// Partial fine-tuning: the base frozen up to `features.17`, whose input (block 16's 160-channel
/// map) is cached; `features.17`, `features.18` and the head train, BatchNorm statistics included,
/// and every earlier tensor stays as loaded. The export runs in cxr-infer as in libtorch.
#[test]
fn a_base_frozen_up_to_a_block_trains_that_block_onwards_on_its_cached_input() {
    let data = small_data();
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let mut config = frozen_config();
    config.unfreeze_from = Some("features.17".into());
    let state = train::train(&config, &data, Path::new("m.csv"), &run, false, &mut |_, _| {}).unwrap();
    let features = state.features.clone().unwrap();
    assert_eq!(features.dimensions, 160 * 4 * 4, "block 16's map at 128 px: {features:?}");
    assert!(state.best.clone().unwrap().val_auc > 0.75, "{:?}", state.history);
    assert_only_features_17_onwards_trained(&state.network, &run);

    let onnx = dir.path().join("mobilenet-v2-partial.onnx");
    let card = export_checkpoint(&run, &onnx).unwrap();
    assert!(card.training.clone().unwrap().transfer.unwrap().contains("`features.17` onwards fine-tuned"));
    assert_runtime_matches_libtorch(&state.network, &run, &onnx, &card, &data);
}

/// Every tensor of `network` before `features.17` (BatchNorm statistics included) is as in the
/// ImageNet weights in the best checkpoint of `run`, and `features.17` onwards trained.
fn assert_only_features_17_onwards_trained(network: &Network, run: &Path) {
    let (trained, original) = (read_weights(&run.join(BEST_WEIGHTS)), read_weights(&imagenet_weights()));
    let cut = network.input_of_layer("features.17").unwrap();
    let (mut kept, mut changed) = (0, Vec::new());
    for spec in network.parameters().iter().filter(|p| original.contains_key(&p.name)) {
        let same = trained[&spec.name].equal(&original[&spec.name].to_kind(trained[&spec.name].kind()));
        if network.is_after(&spec.name, cut) {
            if !same {
                changed.push(spec.name.clone());
            }
        } else {
            assert!(same, "`{}` is before the cut but changed", spec.name);
            kept += 1;
        }
    }
    assert_eq!(kept, 260 - 20, "features.0 to features.16 unchanged");
    for layer in ["features.17.conv.0.0.weight", "features.17.conv.1.1.running_var", "features.18.0.weight"] {
        assert!(changed.iter().any(|c| c == layer), "`{layer}` did not train; changed: {changed:?}");
    }
}

/// A frozen base with an augmentation caches nothing: the frozen layers re-run, in inference
/// mode, on every batch's augmented films, so the base still comes out exactly as loaded while
/// the block after the cut learns from films the unaugmented run never saw (its weights differ
/// from that run's at the same seed), and the export runs in cxr-infer as in libtorch.
#[test]
fn a_frozen_base_with_augmentation_reruns_the_base_on_augmented_films() {
    let data = small_data();
    let dir = tempfile::tempdir().unwrap();
    let (plain_run, augmented_run) = (dir.path().join("plain"), dir.path().join("augmented"));
    let mut config = frozen_config();
    config.unfreeze_from = Some("features.17".into());
    config.epochs = 2;
    train::train(&config, &data, Path::new("m.csv"), &plain_run, false, &mut |_, _| {}).unwrap();
    config.augmentation = Augmentation::MILD;
    let state = train::train(&config, &data, Path::new("m.csv"), &augmented_run, false, &mut |_, _| {}).unwrap();
    assert!(state.features.is_none(), "an augmented run cached features: {:?}", state.features);
    assert!(state.best.clone().unwrap().val_auc > 0.7, "{:?}", state.history);
    assert_only_features_17_onwards_trained(&state.network, &augmented_run);

    let (plain, augmented) =
        (read_weights(&plain_run.join(LAST_WEIGHTS)), read_weights(&augmented_run.join(LAST_WEIGHTS)));
    let name = "features.17.conv.0.0.weight";
    assert!(!plain[name].equal(&augmented[name]), "augmentation changed nothing the block learnt");

    let onnx = dir.path().join("mobilenet-v2-augmented.onnx");
    let card = export_checkpoint(&augmented_run, &onnx).unwrap();
    assert!(card.notes.iter().any(|n| n.contains("rotation ±5°")), "{:?}", card.notes);
    assert_runtime_matches_libtorch(&state.network, &augmented_run, &onnx, &card, &data);
}

/// Pretext training (models/recipes/pretext-pretraining.sh): a run starts from another run's
/// checkpoint instead of ImageNet's. The first trains `features.17` onwards with a three-class
/// head; the second, binary, gets that block as the first left it, the base before it still
/// ImageNet's, and a head of its own shape.
#[test]
fn a_run_starts_from_another_runs_trained_block_with_a_head_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let (first_run, second_run) = (dir.path().join("first"), dir.path().join("second"));
    let mut three_class = small_data();
    for (i, img) in kermany("PNEUMONIA", Class::Pneumonia, 60).into_iter().enumerate() {
        if i % 10 < 7 { three_class.train.push(img) } else { three_class.val.push(img) }
    }
    let mut config = frozen_config();
    config.unfreeze_from = Some("features.17".into());
    config.class_set = ClassSet::ThreeClass;
    config.epochs = 2;
    let first = train::train(&config, &three_class, Path::new("m.csv"), &first_run, false, &mut |_, _| {}).unwrap();

    let mut config = frozen_config();
    config.unfreeze_from = Some("features.17".into());
    config.pretrained = Some(first_run.join(BEST_WEIGHTS));
    config.epochs = 1;
    // Adam with a zero learning rate leaves the weights where loading put them.
    config.learning_rate = 0.0;
    let second = train::train(&config, &small_data(), Path::new("m.csv"), &second_run, false, &mut |_, _| {}).unwrap();

    let (imagenet, first_weights, second_weights) = (
        read_weights(&imagenet_weights()),
        read_weights(&first_run.join(BEST_WEIGHTS)),
        read_weights(&second_run.join(BEST_WEIGHTS)),
    );
    let block = "features.17.conv.0.0.weight";
    assert!(!first_weights[block].equal(&imagenet[block]), "the first run did not train `{block}`");
    assert!(second_weights[block].equal(&first_weights[block]), "`{block}` is not the first run's");
    let base = "features.16.conv.0.0.weight";
    assert!(second_weights[base].equal(&imagenet[base].to_kind(second_weights[base].kind())), "`{base}` moved");
    let head = second.network.head_prefix();
    let head_shapes = |w: &HashMap<String, Tensor>| -> Vec<Vec<i64>> {
        let mut names: Vec<&String> = w.keys().filter(|n| n.starts_with(&head)).collect();
        names.sort();
        names.into_iter().map(|n| w[n].size()).collect()
    };
    assert_eq!(first.network.head_prefix(), head);
    let (first_head, second_head) = (head_shapes(&first_weights), head_shapes(&second_weights));
    assert!(!second_head.is_empty() && first_head.len() == second_head.len(), "{first_head:?} {second_head:?}");
    assert!(
        first_head.iter().any(|s| s[0] == 3) && second_head.iter().all(|s| s[0] == 1),
        "{first_head:?} {second_head:?}"
    );
}

#[test]
fn a_frozen_base_without_weights_is_refused_before_any_image_is_read() {
    let mut config = frozen_config();
    config.pretrained = None;
    let dir = tempfile::tempdir().unwrap();
    let err = train::train(&config, &small_data(), Path::new("m.csv"), dir.path(), false, &mut |_, _| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("--freeze-base needs --weights"), "{err}");
    assert!(!dir.path().join(train::STATE_FILE).exists());
}
