//! The training loop: Adam on class-weighted loss or source-balanced draws ([`crate::balance`]),
//! optionally against a source adversary ([`crate::adversary`]), seeded augmentation, validation
//! AUC each epoch, early stopping, best and last checkpoints, and a state file that makes a run
//! resumable.
//!
//! Two transfer modes share that loop. Full fine-tuning (the default) trains every parameter on
//! augmented images. A frozen base (`freeze_base`, the seed's transfer setting) trains only the
//! classifier head ([`Network::head_prefix`]) on backbone outputs computed once per image by
//! [`crate::features`], which makes an epoch cost seconds instead of a backbone pass over every
//! image, at the price of augmentation (see there). With `unfreeze_from` the base is frozen only up
//! to a named layer, and that layer onwards trains on the cached output of the layer before
//! (partial fine-tuning: still no augmentation, but the last blocks adapt to X-rays). A frozen base
//! given an augmentation instead re-runs the frozen layers on every batch's augmented images
//! ([`Examples::FrozenImages`]): a few hundred films overfit a trained block within a few epochs,
//! and augmentation is the usual remedy. Either way the checkpoints hold the whole network, so
//! export is the same.
//!
//! A run directory holds `state.json` (configuration, per-epoch history, best epoch and its
//! threshold), `epochs.csv`, `best.safetensors` and `last.safetensors`, and with a frozen base the
//! feature cache (unless `feature_dir` puts it elsewhere).

use crate::adversary::SourceAdversary;
use crate::augment::Augmentation;
use crate::balance::EpochPlan;
use crate::data::{ImageCache, TrainingData, bar_style, class_counts, mix_seed, target_count};
use crate::features::{self, FeatureKey, FeatureSet};
use crate::lung_field::{LungField, behind_lung_field};
use crate::network::{Head, Network, NodeId};
use crate::pretrained::load_pretrained;
pub use crate::run::{
    BEST_WEIGHTS, BestEpoch, CURVES, DataRecord, EPOCHS_CSV, EpochRecord, FeatureRecord, LAST_WEIGHTS, STATE_FILE,
    TrainConfig, TrainError, TrainState, read_state,
};
use crate::run::{write_epochs_csv, write_state};
use crate::soft_targets::SoftTargets;
use crate::tch_backend::{TchNetwork, apply_head, batch_tensor};
use crate::zoo;
use cxr_core::metrics::roc::RocCurve;
use cxr_core::{ClassSet, Preprocess};
use indicatif::ProgressBar;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Reduction, Tensor};

/// Per-epoch callback, e.g. for printing a line per epoch.
pub type EpochReport<'a> = dyn FnMut(&EpochRecord, &TrainState) + 'a;

/// Trains `config.architecture` on `data` into `run_dir`, resuming from `run_dir/state.json` when asked.
pub fn train(
    config: &TrainConfig,
    data: &TrainingData,
    manifest: &Path,
    run_dir: &Path,
    resume: bool,
    report: &mut EpochReport,
) -> Result<TrainState, TrainError> {
    config.check()?;
    let saved = open_run(config, run_dir, resume)?;
    let Networks { classifier, network, lung_field, preprocess } = build_networks(config)?;
    let device = Device::cuda_if_available();
    tch::manual_seed(config.seed as i64);
    let mut vs = nn::VarStore::new(device);
    let model = TchNetwork::new(&vs.root(), network.clone())?;
    if saved.is_some() {
        let last = run_dir.join(LAST_WEIGHTS);
        vs.load(&last).map_err(|source| TrainError::Checkpoint { path: last, source })?;
    } else {
        if let Some(weights) = &config.pretrained {
            load_pretrained(&vs, &classifier, weights, &classifier.head_prefix())?;
        }
        if let Some(field) = &lung_field {
            load_pretrained(&vs, &field.record.network, &field.weights, "")?;
        }
    }
    let prepared = prepare_examples(config, data, &vs, &model, &preprocess, run_dir, device)?;
    let mut state = match saved {
        Some(mut saved) => {
            saved.config.epochs = config.epochs;
            saved.config.patience = config.patience;
            saved.stopped = None;
            saved.features = prepared.features.clone();
            saved
        }
        None => new_state(config, data, manifest, &network, preprocess, &prepared, device),
    };
    let Prepared { train: train_examples, val: val_examples, .. } = prepared;
    let soft_targets = match &config.soft_targets {
        None => None,
        Some(csv) => {
            let films = train_examples.paths().expect("TrainConfig::check refuses soft targets with cached features");
            let scores = SoftTargets::read(csv)?.for_films(films, csv)?;
            Some(Tensor::from_slice(&scores))
        }
    };

    let mut optimizer = nn::Adam::default().build(&vs, config.learning_rate).expect("Adam builds on any VarStore");
    let mut adversary = config
        .source_adversary
        .and_then(|weight| SourceAdversary::new(train_examples.sources(), weight, config.learning_rate, device));
    let start_epoch = state.history.last().map_or(1, |r| r.epoch + 1);
    for epoch in start_epoch..=config.epochs {
        let started = Instant::now();
        let (train_loss, train_acc, adversary) = train_epoch(
            config,
            epoch,
            &model,
            &train_examples,
            soft_targets.as_ref(),
            &state.preprocess,
            (&mut optimizer, adversary.as_mut()),
            device,
        );
        let val = evaluate(&model, &val_examples, &state.preprocess, config.batch_size, device);
        let positives: Vec<bool> =
            val_examples.targets().iter().map(|&t| t == positive_target(config.class_set)).collect();
        let roc = RocCurve::new(&val.positive_scores, &positives)
            .map_err(|source| TrainError::Metric { metric: "validation ROC", source })?;
        let record = EpochRecord {
            epoch,
            train_loss,
            train_acc,
            val_loss: val.loss,
            val_acc: val.accuracy,
            val_auc: roc.auc,
            seconds: started.elapsed().as_secs_f64(),
            adversary_loss: adversary.map(|(loss, _)| loss),
            adversary_chance: adversary.map(|(_, chance)| chance),
        };
        save_epoch(config, &vs, run_dir, &mut state, record.clone(), &roc)?;
        report(&record, &state);
        if state.stopped.is_some() {
            break;
        }
    }
    // Leave the VarStore's last values in place; `best.safetensors` holds the kept ones.
    vs.freeze();
    Ok(state)
}

/// Creates the run directory and, when resuming, reads its state and checks that the run asked
/// for is the one saved there (only the epoch budget, patience, recipe and feature folder may change).
fn open_run(config: &TrainConfig, run_dir: &Path, resume: bool) -> Result<Option<TrainState>, TrainError> {
    std::fs::create_dir_all(run_dir).map_err(|source| TrainError::Io {
        path: run_dir.to_owned(),
        action: "cannot create run directory",
        source,
    })?;
    let state_path = run_dir.join(STATE_FILE);
    let saved = match (resume, state_path.exists()) {
        (true, false) => return Err(TrainError::NothingToResume { dir: run_dir.to_owned() }),
        (true, true) => read_state(&state_path)?,
        (false, true) => return Err(TrainError::RunExists { dir: run_dir.to_owned() }),
        (false, false) => return Ok(None),
    };
    let comparable =
        |c: &TrainConfig| TrainConfig { epochs: 0, patience: 0, recipe: String::new(), feature_dir: None, ..c.clone() };
    if comparable(&saved.config) != comparable(config) {
        return Err(TrainError::ResumeMismatch {
            dir: run_dir.to_owned(),
            saved: serde_json::to_string(&comparable(&saved.config)).unwrap_or_default(),
            requested: serde_json::to_string(&comparable(config)).unwrap_or_default(),
        });
    }
    Ok(Some(saved))
}

/// The classifier the configuration names, and the network that trains: the classifier itself,
/// or the classifier behind a frozen lung field.
struct Networks {
    classifier: Network,
    network: Network,
    lung_field: Option<LungField>,
    preprocess: Preprocess,
}

fn build_networks(config: &TrainConfig) -> Result<Networks, TrainError> {
    let mut classifier = zoo::build(&config.architecture, config.image_size, config.class_set)?;
    classifier.intensity = config.intensity;
    let preprocess = zoo::preprocess_for(&classifier);
    let lung_field = match &config.lung_field {
        Some(dir) => {
            let field = LungField::load(dir)?;
            field.check_fits(&classifier, &preprocess)?;
            Some(field)
        }
        None => None,
    };
    let network = match &lung_field {
        Some(field) => behind_lung_field(&field.record.network, &classifier)?,
        None => classifier.clone(),
    };
    Ok(Networks { classifier, network, lung_field, preprocess })
}

/// What the epochs train on: decoded images (full fine-tuning), or with a frozen base the cached
/// outputs of the layer before the first trained one.
fn prepare_examples(
    config: &TrainConfig,
    data: &TrainingData,
    vs: &nn::VarStore,
    model: &TchNetwork,
    preprocess: &Preprocess,
    run_dir: &Path,
    device: Device,
) -> Result<Prepared, TrainError> {
    let network = model.network();
    let load_images = || -> Result<(ImageCache, ImageCache, Vec<String>), TrainError> {
        let (train_cache, mut unreadable) =
            ImageCache::load(&data.train, config.class_set, preprocess, "train", &ProgressBar::new(0))?;
        let (val_cache, val_unreadable) =
            ImageCache::load(&data.val, config.class_set, preprocess, "val", &ProgressBar::new(0))?;
        unreadable.extend(val_unreadable);
        Ok((train_cache, val_cache, unreadable.iter().map(|e| e.to_string()).collect()))
    };
    let prepared = if config.freeze_base {
        let cut = match &config.unfreeze_from {
            Some(layer) => network.input_of_layer(layer)?,
            None => network.head_input()?,
        };
        freeze_up_to(vs, network, cut);
        if config.augmentation != Augmentation::NONE {
            let (train, val, unreadable) = load_images()?;
            return Prepared {
                train: Examples::FrozenImages { cache: train, cut },
                val: Examples::FrozenImages { cache: val, cut },
                unreadable,
                features: None,
            }
            .non_empty();
        }
        let key = FeatureKey::new(config, model, cut)?;
        let feature_dir = config.feature_dir.as_deref().unwrap_or(run_dir);
        let cached = features::load_or_extract(model, cut, &key, data, config, feature_dir, device)?;
        Prepared {
            train: Examples::Features { set: cached.train, cut },
            val: Examples::Features { set: cached.val, cut },
            unreadable: cached.unreadable,
            features: Some(cached.record),
        }
    } else {
        let (train, val, unreadable) = load_images()?;
        Prepared { train: Examples::Images(train), val: Examples::Images(val), unreadable, features: None }
    };
    prepared.non_empty()
}

impl Prepared {
    fn non_empty(self) -> Result<Prepared, TrainError> {
        if self.train.is_empty() {
            return Err(TrainError::EmptySplit { split: "train" });
        }
        if self.val.is_empty() {
            return Err(TrainError::EmptySplit { split: "val" });
        }
        Ok(self)
    }
}

/// The state of a fresh run: its configuration, network and what data it trains on.
fn new_state(
    config: &TrainConfig,
    data: &TrainingData,
    manifest: &Path,
    network: &Network,
    preprocess: Preprocess,
    prepared: &Prepared,
    device: Device,
) -> TrainState {
    let targets = target_count(config.class_set);
    TrainState {
        config: config.clone(),
        network: network.clone(),
        preprocess,
        data: DataRecord {
            manifest: manifest.display().to_string(),
            manifest_sha256: std::fs::read(manifest).map(|b| cxr_core::card::sha256_hex(&b)).unwrap_or_default(),
            split_seed: data.split_seed,
            holdout_sources: data.holdout_sources.clone(),
            train_images: prepared.train.len() as u64,
            val_images: prepared.val.len() as u64,
            train_class_counts: class_counts(prepared.train.targets(), targets),
            val_class_counts: class_counts(prepared.val.targets(), targets),
            unreadable: prepared.unreadable.clone(),
        },
        device: format!("{device:?}"),
        history: vec![],
        best: None,
        epochs_since_best: 0,
        stopped: None,
        features: prepared.features.clone(),
    }
}

/// One pass over the training examples in a seeded order, each weighted as `config.balance`
/// says, against the source adversary when there is one; returns the classifier's mean loss and
/// accuracy, and the adversary's mean loss with its chance level. With `soft_targets` (one per
/// example) the loss aims at those instead of the labels; accuracy is still against the labels.
#[allow(clippy::too_many_arguments)]
fn train_epoch(
    config: &TrainConfig,
    epoch: u32,
    model: &TchNetwork,
    examples: &Examples,
    soft_targets: Option<&Tensor>,
    preprocess: &Preprocess,
    (optimizer, mut adversary): (&mut nn::Optimizer, Option<&mut SourceAdversary>),
    device: Device,
) -> (f64, f64, Option<(f64, f64)>) {
    let head = model.network().head;
    let mut adversary_sum = 0.0f64;
    let mut rng = ChaCha8Rng::seed_from_u64(mix_seed(config.seed, epoch as u64, u64::MAX));
    let EpochPlan { order, weights } = config.balance.epoch_plan(examples.targets(), examples.sources(), &mut rng);
    let film_weights = Tensor::from_slice(&weights);
    // Dropout draws from libtorch's generator; reseeding per epoch keeps resumed runs identical.
    tch::manual_seed(mix_seed(config.seed, epoch as u64, 0) as i64);
    let bar = ProgressBar::new(order.len().div_ceil(config.batch_size) as u64).with_style(bar_style());
    bar.set_message(format!("epoch {epoch}/{}", config.epochs));
    let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0usize, 0usize);
    for batch in order.chunks(config.batch_size) {
        let augmentation = Some((&config.augmentation, config.seed, epoch as u64));
        let logits = examples.logits(model, batch, preprocess, augmentation, device, true);
        let ys = examples.batch_targets(batch, device);
        let rows = Tensor::from_slice(&batch_rows(batch));
        let weights = film_weights.index_select(0, &rows).to_device(device);
        let aims =
            soft_targets.map_or_else(|| ys.shallow_clone(), |soft| soft.index_select(0, &rows).to_device(device));
        let loss = weighted_loss(head, &logits, &aims, &weights);
        match adversary.as_deref_mut() {
            None => optimizer.backward_step(&loss),
            Some(adversary) => {
                let covid = ys.eq(positive_target(config.class_set) as i64).to_kind(Kind::Float);
                let adversary_loss = adversary.loss(&covid_score(head, &logits), &covid, batch, &weights);
                adversary_sum += f64::try_from(&adversary_loss).unwrap_or(f64::NAN) * batch.len() as f64;
                let total = &loss + adversary_loss;
                optimizer.zero_grad();
                adversary.zero_grad();
                total.backward();
                optimizer.step();
                adversary.step();
            }
        }
        loss_sum += f64::try_from(&loss).unwrap_or(f64::NAN) * batch.len() as f64;
        correct += count_correct(head, &logits, &ys);
        seen += batch.len();
        bar.inc(1);
        bar.set_message(format!("epoch {epoch}/{} loss {:.4}", config.epochs, loss_sum / seen as f64));
    }
    bar.finish_and_clear();
    let adversary = adversary.map(|adversary| {
        let covid: Vec<bool> = examples.targets().iter().map(|&t| t == positive_target(config.class_set)).collect();
        (adversary_sum / seen as f64, adversary.chance_loss(&covid, &order, &weights))
    });
    (loss_sum / seen as f64, correct as f64 / seen as f64, adversary)
}

/// Saves the last weights, keeps the best epoch's (and its threshold for the target sensitivity
/// on validation), decides whether to stop, and writes the state, the epoch table and the curves.
fn save_epoch(
    config: &TrainConfig,
    vs: &nn::VarStore,
    run_dir: &Path,
    state: &mut TrainState,
    record: EpochRecord,
    roc: &RocCurve,
) -> Result<(), TrainError> {
    let epoch = record.epoch;
    vs.save(run_dir.join(LAST_WEIGHTS))
        .map_err(|source| TrainError::Checkpoint { path: run_dir.join(LAST_WEIGHTS), source })?;
    if state.best.as_ref().is_none_or(|b| record.val_auc > b.val_auc) {
        let point = roc
            .threshold_for_sensitivity(config.target_sensitivity)
            .map_err(|source| TrainError::Metric { metric: "threshold", source })?;
        state.best = Some(BestEpoch {
            epoch,
            val_auc: record.val_auc,
            threshold: point.threshold,
            val_sensitivity: point.tpr,
            val_specificity: 1.0 - point.fpr,
        });
        state.epochs_since_best = 0;
        let best = run_dir.join(BEST_WEIGHTS);
        vs.save(&best).map_err(|source| TrainError::Checkpoint { path: best, source })?;
    } else {
        state.epochs_since_best += 1;
    }
    state.history.push(record);
    if state.epochs_since_best >= config.patience {
        state.stopped = Some(format!("early stop: no better validation AUC for {} epochs", config.patience));
    } else if epoch == config.epochs {
        state.stopped = Some(format!("reached {} epochs", config.epochs));
    }
    write_epochs_csv(&run_dir.join(EPOCHS_CSV), &state.history)?;
    write_state(&run_dir.join(STATE_FILE), state)?;
    // Curves to watch while a long run goes on; a plot that fails must not stop training.
    if let Err(err) = crate::export::write_training_curves(state, &run_dir.join(CURVES)) {
        eprintln!("warning: {err}");
    }
    Ok(())
}

/// Target index whose probability is "positive" for the AUC and threshold: covid.
fn positive_target(class_set: ClassSet) -> usize {
    crate::data::target_of(class_set, cxr_core::Class::Covid)
}

/// Each film's COVID score `[B]` as the adversary reads it: the sigmoid head's logit, or the
/// log-probability of COVID of a softmax head.
fn covid_score(head: Head, logits: &Tensor) -> Tensor {
    match head {
        Head::Sigmoid => logits.squeeze_dim(1),
        Head::Softmax { .. } => logits.log_softmax(1, Kind::Float).select(1, 0),
        Head::Mask => unreachable!("segmenters train in crate::segmenter, not as classifiers"),
    }
}

fn batch_rows(batch: &[usize]) -> Vec<i64> {
    batch.iter().map(|&i| i as i64).collect()
}

/// The loss of a batch, each film weighted by `weights` (one per film): Σ wᵢ·lossᵢ / Σ wᵢ.
fn weighted_loss(head: Head, logits: &Tensor, targets: &Tensor, weights: &Tensor) -> Tensor {
    let per_film = match head {
        Head::Sigmoid => logits.squeeze_dim(1).binary_cross_entropy_with_logits::<&Tensor>(
            &targets.to_kind(Kind::Float),
            None,
            None,
            Reduction::None,
        ),
        Head::Mask => unreachable!("segmenters train in crate::segmenter, not as classifiers"),
        Head::Softmax { .. } => logits.cross_entropy_loss::<&Tensor>(targets, None, Reduction::None, -100, 0.0),
    };
    (per_film * weights).sum(Kind::Float) / weights.sum(Kind::Float)
}

fn count_correct(head: Head, logits: &Tensor, targets: &Tensor) -> usize {
    let predicted = match head {
        Head::Sigmoid => logits.squeeze_dim(1).gt(0.0).to_kind(Kind::Int64),
        Head::Softmax { .. } => logits.argmax(1, false),
        Head::Mask => unreachable!("segmenters train in crate::segmenter, not as classifiers"),
    };
    i64::try_from(predicted.eq_tensor(targets).sum(Kind::Int64)).unwrap_or(0) as usize
}

/// Validation results in inference mode.
pub struct Evaluation {
    /// Unweighted mean loss.
    pub loss: f64,
    /// At threshold 0.5 (binary) or argmax.
    pub accuracy: f64,
    /// P(covid) per image, in cache order.
    pub positive_scores: Vec<f64>,
}

/// Runs `model` over every example in inference mode, without augmentation.
pub fn evaluate(
    model: &TchNetwork,
    examples: &Examples,
    preprocess: &Preprocess,
    batch_size: usize,
    device: Device,
) -> Evaluation {
    let head = model.network().head;
    // P(covid) is output 0 both of a sigmoid head and of a three-class softmax head.
    let positive = 0;
    let (mut loss_sum, mut correct) = (0.0f64, 0usize);
    let mut scores = Vec::with_capacity(examples.len());
    let all: Vec<usize> = (0..examples.len()).collect();
    tch::no_grad(|| {
        for batch in all.chunks(batch_size) {
            let logits = examples.logits(model, batch, preprocess, None, device, false);
            let ys = examples.batch_targets(batch, device);
            let ones = Tensor::ones([batch.len() as i64], (Kind::Float, device));
            let loss = weighted_loss(head, &logits, &ys, &ones);
            loss_sum += f64::try_from(&loss).unwrap_or(f64::NAN) * batch.len() as f64;
            correct += count_correct(head, &logits, &ys);
            let probs = apply_head(head, &logits).select(1, positive).to_device(Device::Cpu).to_kind(Kind::Double);
            scores.extend(Vec::<f64>::try_from(probs).expect("a CPU double tensor converts"));
        }
    });
    Evaluation {
        loss: loss_sum / examples.len() as f64,
        accuracy: correct as f64 / examples.len() as f64,
        positive_scores: scores,
    }
}

/// One split's examples, as the transfer mode needs them.
pub enum Examples {
    /// Decoded images, run through the whole network (full fine-tuning, training from scratch).
    Images(ImageCache),
    /// Outputs of node `cut` computed once (frozen base), run through the nodes after it alone.
    Features { set: FeatureSet, cut: NodeId },
    /// Decoded images run through the frozen nodes up to `cut` in every batch (inference mode, no
    /// gradient), then through the trained nodes after it: a frozen base that can still augment,
    /// at the price of a forward pass of the base per image per epoch.
    FrozenImages { cache: ImageCache, cut: NodeId },
}

impl Examples {
    pub fn len(&self) -> usize {
        self.targets().len()
    }

    pub fn is_empty(&self) -> bool {
        self.targets().is_empty()
    }

    pub fn targets(&self) -> &[usize] {
        match self {
            Examples::Images(cache) | Examples::FrozenImages { cache, .. } => &cache.targets,
            Examples::Features { set, .. } => &set.targets,
        }
    }

    /// The source of every example, for [`crate::balance::Balance::Sources`].
    pub fn sources(&self) -> &[String] {
        match self {
            Examples::Images(cache) | Examples::FrozenImages { cache, .. } => &cache.sources,
            Examples::Features { set, .. } => &set.sources,
        }
    }

    /// Each example's film, where the examples are images (cached features do not keep them).
    pub fn paths(&self) -> Option<&[PathBuf]> {
        match self {
            Examples::Images(cache) | Examples::FrozenImages { cache, .. } => Some(&cache.paths),
            Examples::Features { .. } => None,
        }
    }

    fn batch_targets(&self, indices: &[usize], device: Device) -> Tensor {
        let ys: Vec<i64> = indices.iter().map(|&i| self.targets()[i] as i64).collect();
        Tensor::from_slice(&ys).to_device(device)
    }

    /// The logits of examples `indices`; `train` switches dropout on (and, for images, BatchNorm to
    /// batch statistics; a frozen base stays in inference mode). `augmentation` applies to images
    /// only: cached features were computed without it.
    fn logits(
        &self,
        model: &TchNetwork,
        indices: &[usize],
        preprocess: &Preprocess,
        augmentation: Option<(&Augmentation, u64, u64)>,
        device: Device,
        train: bool,
    ) -> Tensor {
        let images = |cache: &ImageCache| {
            let inputs = cache.batch(indices, preprocess, augmentation);
            batch_tensor(&inputs, preprocess.shape(indices.len())).to_device(device)
        };
        match self {
            Examples::Images(cache) => model.forward(&images(cache), train).logits,
            Examples::Features { set, cut } => model.forward_from(*cut, &set.batch(indices, device), train),
            Examples::FrozenImages { cache, cut } => {
                let frozen = tch::no_grad(|| model.forward_to(&images(cache), *cut, false));
                model.forward_from(*cut, &frozen, train)
            }
        }
    }
}

/// The train and val examples of a run, the files left out, and (frozen base) how the features were obtained.
struct Prepared {
    train: Examples,
    val: Examples,
    unreadable: Vec<String>,
    features: Option<FeatureRecord>,
}

/// Stops gradients into every parameter outside the head, so Adam leaves the backbone as loaded.
/// Stops gradients for every variable of the nodes up to `cut`; the nodes after it train.
fn freeze_up_to(vs: &nn::VarStore, network: &Network, cut: NodeId) {
    for (name, tensor) in vs.variables() {
        if !network.is_after(&name, cut) {
            // Returns the same tensor, flag changed; the VarStore keeps its own handle to it.
            let _ = tensor.set_requires_grad(false);
        }
    }
}
