//! `cxr train`, `cxr export` and `cxr quantize` (built with `--features train`, which links libtorch).

use anyhow::Context;
use clap::builder::PossibleValuesParser;
use clap::{Args, ValueEnum};
use cxr_core::ClassSet;
use cxr_core::preprocess::Intensity;
use cxr_train::quantize::{Calibration, QuantizeOptions, quantize_file};
use cxr_train::train::{EPOCHS_CSV, TrainConfig};
use cxr_train::{Augmentation, Balance, TrainingData, export_checkpoint, segmenter};
use std::path::PathBuf;
use std::process::ExitCode;

/// `--intensity`, as `cxr_core::preprocess::Intensity` spells it in cards.
#[derive(Clone, Copy, ValueEnum)]
pub enum IntensityArg {
    AsIs,
    Equalize,
}

impl From<IntensityArg> for Intensity {
    fn from(arg: IntensityArg) -> Intensity {
        match arg {
            IntensityArg::AsIs => Intensity::AsIs,
            IntensityArg::Equalize => Intensity::Equalize,
        }
    }
}

/// `--augment`: which of `cxr_train::Augmentation`'s settings each epoch draws from.
#[derive(Clone, Copy, ValueEnum, PartialEq)]
pub enum AugmentArg {
    /// The seed write-up's: ±5° rotation, shear 0.2, zoom 0.3, horizontal flips, brightness 0.2–1.0.
    Seed,
    /// ±5° rotation, shear 0.05, zoom 0.1, no flips, brightness 0.8–1.2.
    Mild,
    None,
}

impl AugmentArg {
    fn augmentation(self) -> Augmentation {
        match self {
            AugmentArg::Seed => Augmentation::SEED_PAPER,
            AugmentArg::Mild => Augmentation::MILD,
            AugmentArg::None => Augmentation::NONE,
        }
    }
}

/// `--balance`, as `cxr_train::Balance` records it.
#[derive(Clone, Copy, ValueEnum)]
pub enum BalanceArg {
    Classes,
    Sources,
}

impl From<BalanceArg> for Balance {
    fn from(arg: BalanceArg) -> Balance {
        match arg {
            BalanceArg::Classes => Balance::Classes,
            BalanceArg::Sources => Balance::Sources,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Classes {
    /// COVID against everything else (sigmoid output).
    Binary,
    /// COVID, normal, pneumonia (softmax output).
    ThreeClass,
}

/// `--arch`'s values, taken from the zoo so that the help and the check cannot drift from what
/// `zoo::build` accepts: a wrong name is refused, with the list, before any data is read.
fn architecture() -> PossibleValuesParser {
    PossibleValuesParser::new(cxr_train::zoo::ARCHITECTURES)
}

#[derive(Args)]
pub struct TrainArgs {
    /// Network to train.
    #[arg(long, default_value = "seed-cnn", value_parser = architecture())]
    arch: String,
    /// Safetensors checkpoint to start from, for any architecture: ImageNet weights from
    /// scripts/fetch-weights.sh (mobilenet-v2, efficientnet-lite0) or a torchvision checkpoint
    /// converted with scripts/convert-torch-weights.py. Every tensor except the classifier head
    /// must match by name and shape. Without it the network trains from scratch.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Transfer with a frozen base (the seed's setting): train only the classifier head, keeping
    /// every other tensor as in --weights (required). The backbone runs once over the train and
    /// val images and the head trains on its cached outputs (saved in the run directory for
    /// --resume), so an epoch takes seconds; there is no augmentation, since augmented images would
    /// need their features recomputed every epoch. Without it the whole network fine-tunes.
    #[arg(long)]
    freeze_base: bool,
    /// Folder for --freeze-base's cached backbone features (default: the run directory). Point runs
    /// of the same backbone and manifest at one folder to compute the features once: a binary and a
    /// three-class head share them.
    #[arg(long)]
    feature_dir: Option<PathBuf>,
    /// Partial fine-tuning: with --freeze-base, freeze the base only up to LAYER (a name from the
    /// checkpoint, e.g. `features.17` for mobilenet-v2, `_blocks.15` for efficientnet-lite0) and
    /// train LAYER, the layers after it and the head on the cached output of the layer before.
    #[arg(long, value_name = "LAYER", requires = "freeze_base")]
    unfreeze_from: Option<String>,
    /// Manifest CSV from `cxr data index`; its `train` split trains, its `val` split picks the epoch and threshold.
    #[arg(long)]
    manifest: PathBuf,
    /// Folder for the exported model: `<name>.onnx` and `<name>.card.json`.
    #[arg(long)]
    out: PathBuf,
    /// Model name (file stem and card name); defaults to the architecture.
    #[arg(long)]
    name: Option<String>,
    /// Folder for checkpoints, `state.json` and `epochs.csv`; defaults to `<out>/<name>-run`.
    #[arg(long)]
    run_dir: Option<PathBuf>,
    #[arg(long, default_value_t = 30)]
    epochs: u32,
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Seed of initialisation, shuffling, dropout and augmentation.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Stop after this many epochs without a better validation AUC.
    #[arg(long, default_value_t = 5)]
    patience: u32,
    /// Input side in pixels (default: the architecture's own, 256 for seed-cnn).
    #[arg(long)]
    image_size: Option<i64>,
    #[arg(long, value_enum, default_value = "binary")]
    classes: Classes,
    /// Train without augmentation (the same as `--augment none`).
    #[arg(long, conflicts_with = "augment")]
    no_augment: bool,
    /// Augmentation drawn afresh every epoch: `seed` (the default without --freeze-base), `mild`,
    /// or `none` (the default with --freeze-base, whose cached features cannot be augmented). With
    /// --freeze-base and an augmentation the frozen layers re-run on every batch's augmented
    /// images instead of being cached: an epoch then costs a forward pass of the base per film.
    #[arg(long, value_enum)]
    augment: Option<AugmentArg>,
    /// Grey-level remapping of every image before the network (recorded in the card, so
    /// inference does the same): `equalize` gives each film a uniform histogram, removing the
    /// exposure and contrast curve of the device that took it.
    #[arg(long, value_enum, default_value = "as-is")]
    intensity: IntensityArg,
    /// Put a lung field in front of the network: a segmenter folder from `cxr train-lung-field`
    /// (trained for the same --arch). Everything outside the lungs it finds is set to mid grey
    /// before the network sees the film, in training and in the exported model alike. Needs
    /// --freeze-base; the segmenter stays frozen.
    #[arg(long, value_name = "DIR", requires = "freeze_base")]
    lung_field: Option<PathBuf>,
    /// How the training films are balanced. `classes`: every film once per epoch, the loss
    /// weighted so that every class pulls equally. `sources`: each epoch draws its films with
    /// replacement so that every source (the manifest's `source` column) turns up alike, and inside
    /// each source every class it holds, so a collection that holds both classes is not outvoted
    /// by large collections of one class, whose films mostly teach which collection a film came from.
    #[arg(long, value_enum, default_value = "classes")]
    balance: BalanceArg,
    /// Train against a source predictor with this weight (1 is a usual start): a small adversary
    /// guesses each training film's source from its score and class, and the classifier is pushed,
    /// through a reversed gradient, to make the guess hard, so that among films of one class the
    /// score does not say where a film was taken. Needs training films of two sources or more;
    /// the adversary is not part of the exported model.
    #[arg(long, value_name = "WEIGHT")]
    source_adversary: Option<f64>,
    /// Distil: the CSV `cxr score -m TEACHER` wrote for every training film. The loss aims at the
    /// teacher's P(covid) instead of each film's label, so a small network can learn a large one's
    /// ranking from many films; validation, the epoch choice and the threshold still use the labels.
    #[arg(long, value_name = "CSV")]
    soft_targets: Option<PathBuf>,
    /// Continue the run in the run directory from its last epoch.
    #[arg(long)]
    resume: bool,
}

#[derive(Args)]
pub struct TrainLungFieldArgs {
    /// Lung masks drawn by people: a CSV `image,mask,…` (`image` relative to --data-root, `mask`
    /// relative to the CSV), as `shared/annotations/lung-masks-v7/masks.csv`.
    #[arg(long)]
    masks: PathBuf,
    /// The folder the masks' `image` column is relative to.
    #[arg(long)]
    data_root: PathBuf,
    /// Manifest whose `train` films (with a mask) train the segmenter and whose `val` films pick
    /// its epoch. Test films never reach it: with a fold of `cxr data folds`, the fold's own.
    #[arg(long)]
    manifest: PathBuf,
    /// The classifier it will stand in front of (its input is the segmenter's).
    #[arg(long, default_value = "efficientnet-lite0", value_parser = architecture())]
    arch: String,
    /// The classifier's input side (default: the architecture's own); a multiple of 32.
    #[arg(long)]
    image_size: Option<i64>,
    /// The classifier's grey-level remapping, if it uses one.
    #[arg(long, value_enum, default_value = "as-is")]
    intensity: IntensityArg,
    /// Folder to write `lung-field.json` and `lung-field.safetensors` into.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 40)]
    epochs: u32,
    /// Stop after this many epochs without a better validation Dice.
    #[arg(long, default_value_t = 8)]
    patience: u32,
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

#[derive(Args)]
pub struct ExportArgs {
    /// A training run directory (its best checkpoint is used) or a `.safetensors` file beside a `state.json`.
    checkpoint: PathBuf,
    /// ONNX file to write; the model card goes beside it (`x.onnx` → `x.card.json`).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
pub struct QuantizeArgs {
    /// The fp32 ONNX model (its card beside it).
    model: PathBuf,
    /// Manifest whose `train` split calibrates the activation ranges and whose `val` split
    /// compares int8 with fp32 and picks the int8 threshold.
    #[arg(long)]
    manifest: PathBuf,
    /// int8 ONNX file to write (default: `<model>-int8.onnx` beside the model); the card goes beside it.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Training images used for calibration (at least 200).
    #[arg(long, default_value_t = 256)]
    calibration_images: usize,
    /// Seed of the draw of calibration images.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Activation ranges: `min-max`, or `percentile:P` to keep the central P % of the calibration
    /// values (e.g. `percentile:99.99`), clipping outliers that would stretch a uint8 scale. Deep
    /// networks gain from clipping (MobileNetV2: mean validation move 0.029 against 0.042 with
    /// min/max), small ones lose (seed-cnn: 0.011 against 0.0008): compare both on your model.
    #[arg(long, default_value = "min-max", value_parser = parse_calibration)]
    calibration: Calibration,
    /// Compare int8 with fp32 on at most this many validation images (drawn with the seed) instead of all.
    #[arg(long)]
    compare_images: Option<usize>,
    /// Keep this Conv or MatMul node in float (its ONNX node name; repeat for several).
    #[arg(long = "keep-float", value_name = "NODE")]
    keep_float: Vec<String>,
}

fn parse_calibration(s: &str) -> Result<Calibration, String> {
    match s.split_once(':') {
        None if s == "min-max" => Ok(Calibration::MinMax),
        Some(("percentile", p)) => match p.parse::<f64>() {
            Ok(p) if p > 0.0 && p <= 100.0 => Ok(Calibration::Percentile(p)),
            _ => Err(format!("`{p}`: a percentile is a number in (0, 100]")),
        },
        _ => Err(format!("`{s}`: expected `min-max` or `percentile:P`")),
    }
}

pub fn run_train(args: TrainArgs) -> anyhow::Result<ExitCode> {
    cxr_train::device::load_cuda_backend();
    let name = args.name.clone().unwrap_or_else(|| args.arch.clone());
    let run_dir = args.run_dir.clone().unwrap_or_else(|| args.out.join(format!("{name}-run")));
    let class_set = match args.classes {
        Classes::Binary => ClassSet::Binary,
        Classes::ThreeClass => ClassSet::ThreeClass,
    };
    let config = TrainConfig {
        architecture: args.arch.clone(),
        image_size: args.image_size,
        class_set,
        epochs: args.epochs,
        batch_size: args.batch_size,
        learning_rate: args.lr,
        seed: args.seed,
        patience: args.patience,
        augmentation: augment_arg(&args).augmentation(),
        target_sensitivity: 0.95,
        recipe: recipe(&args, &name),
        pretrained: args.weights.clone(),
        freeze_base: args.freeze_base,
        feature_dir: args.feature_dir.clone(),
        unfreeze_from: args.unfreeze_from.clone(),
        intensity: args.intensity.into(),
        lung_field: args.lung_field.clone(),
        balance: args.balance.into(),
        source_adversary: args.source_adversary,
        soft_targets: args.soft_targets.clone(),
    };
    config.check()?;
    let data = TrainingData::from_manifest(&args.manifest, class_set)?;
    eprintln!(
        "training {} ({}) on {} train / {} val images from {} ({}), run directory {}",
        args.arch,
        match (&args.weights, args.freeze_base) {
            (None, _) => "from scratch".to_owned(),
            (Some(w), true) => match &args.unfreeze_from {
                None => format!("head only, frozen base from {}", w.display()),
                Some(layer) => format!("{layer} onwards, base frozen up to it from {}", w.display()),
            },
            (Some(w), false) => format!("fine-tuning from {}", w.display()),
        },
        data.train.len(),
        data.val.len(),
        args.manifest.display(),
        cxr_train::device::describe(),
        run_dir.display()
    );
    let state = cxr_train::train(&config, &data, &args.manifest, &run_dir, args.resume, &mut |r, state| {
        let best = state.best.as_ref().map_or(0, |b| b.epoch);
        eprintln!(
            "epoch {:>3}: train loss {:.4} acc {:.3}{} | val loss {:.4} acc {:.3} AUC {:.4} | {:.1} s{}",
            r.epoch,
            r.train_loss,
            r.train_acc,
            match (r.adversary_loss, r.adversary_chance) {
                (Some(loss), Some(chance)) => format!(" | source adversary loss {loss:.4} (chance {chance:.4})"),
                _ => String::new(),
            },
            r.val_loss,
            r.val_acc,
            r.val_auc,
            r.seconds,
            if best == r.epoch { " (best)" } else { "" }
        );
    })?;
    if let Some(features) = &state.features {
        eprintln!(
            "backbone features: {} ({} values per image, {} images): {} computed, the rest read from the store, in {:.1} s",
            args.feature_dir.as_ref().unwrap_or(&run_dir).join(&features.file).display(),
            features.dimensions,
            features.images,
            features.computed,
            features.extraction_seconds,
        );
    }
    for unreadable in &state.data.unreadable {
        eprintln!("warning: left out: {unreadable}");
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("{}: cannot create output folder", args.out.display()))?;
    let onnx = args.out.join(format!("{name}.onnx"));
    let card = export_checkpoint(&run_dir, &onnx)?;
    eprintln!(
        "{}: {}; per-epoch metrics in {}",
        state.stopped.as_deref().unwrap_or("stopped"),
        card.notes.get(1).map(String::as_str).unwrap_or_default(),
        run_dir.join(EPOCHS_CSV).display()
    );
    outln!("{}", onnx.display());
    outln!("{}", cxr_core::ModelCard::path_for(&onnx).display());
    Ok(ExitCode::SUCCESS)
}

pub fn run_train_lung_field(args: TrainLungFieldArgs) -> anyhow::Result<ExitCode> {
    cxr_train::device::load_cuda_backend();
    let mut classifier = cxr_train::zoo::build(&args.arch, args.image_size, ClassSet::Binary)?;
    classifier.intensity = args.intensity.into();
    let masks = cxr_core::lung_mask::LungMasks::read(&args.masks, &args.data_root)?;
    let data = TrainingData::from_manifest(&args.manifest, ClassSet::Binary)?;
    let (train, val) = segmenter::masked_films(&data, &masks, &args.manifest, &args.masks)?;
    eprintln!(
        "training a lung field for {} on {} train / {} val masked films of {} ({})",
        args.arch,
        train.len(),
        val.len(),
        args.manifest.display(),
        cxr_train::device::describe()
    );
    let config = segmenter::SegmenterConfig {
        classifier,
        epochs: args.epochs,
        patience: args.patience,
        batch_size: args.batch_size,
        learning_rate: args.lr,
        seed: args.seed,
    };
    let record =
        segmenter::train_segmenter(&config, &train, &val, (&args.masks, &args.manifest), &args.out, &mut |e| {
            eprintln!(
                "epoch {:>3}: train loss {:.4} | val Dice {:.4} | {:.1} s",
                e.epoch, e.train_loss, e.val_dice, e.seconds
            )
        })?;
    eprintln!("kept epoch {} (validation Dice {:.4})", record.best_epoch, record.val_dice);
    outln!("{}", args.out.display());
    Ok(ExitCode::SUCCESS)
}

pub fn run_export(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let card = export_checkpoint(&args.checkpoint, &args.out)?;
    outln!("{}", args.out.display());
    outln!("{}", cxr_core::ModelCard::path_for(&args.out).display());
    eprintln!("{} ({}, threshold {:.4}: {})", card.name, card.architecture, card.threshold, card.threshold_rule);
    Ok(ExitCode::SUCCESS)
}

/// The command line that reproduces this run, for the model card.
/// The augmentation asked for, or the mode's default.
fn augment_arg(args: &TrainArgs) -> AugmentArg {
    match args.augment {
        Some(augment) => augment,
        None if args.no_augment || args.freeze_base => AugmentArg::None,
        None => AugmentArg::Seed,
    }
}

fn recipe(args: &TrainArgs, name: &str) -> String {
    let mut cmd = format!(
        "cxr train --arch {} --manifest {} --out {} --name {name} --epochs {} --batch-size {} --lr {} --seed {} --patience {}",
        args.arch,
        args.manifest.display(),
        args.out.display(),
        args.epochs,
        args.batch_size,
        args.lr,
        args.seed,
        args.patience
    );
    if let Some(weights) = &args.weights {
        cmd += &format!(" --weights {}", weights.display());
    }
    if let Some(size) = args.image_size {
        cmd += &format!(" --image-size {size}");
    }
    if matches!(args.classes, Classes::ThreeClass) {
        cmd += " --classes three-class";
    }
    if matches!(args.intensity, IntensityArg::Equalize) {
        cmd += " --intensity equalize";
    }
    if matches!(args.balance, BalanceArg::Sources) {
        cmd += " --balance sources";
    }
    if let Some(csv) = &args.soft_targets {
        cmd += &format!(" --soft-targets {}", csv.display());
    }
    if let Some(weight) = args.source_adversary {
        cmd += &format!(" --source-adversary {weight}");
    }
    if args.freeze_base {
        cmd += " --freeze-base";
        if let Some(layer) = &args.unfreeze_from {
            cmd += &format!(" --unfreeze-from {layer}");
        }
        if let Some(dir) = &args.lung_field {
            cmd += &format!(" --lung-field {}", dir.display());
        }
    }
    // Spelled out only where it differs from the mode's default.
    let default = if args.freeze_base { AugmentArg::None } else { AugmentArg::Seed };
    let augment = augment_arg(args);
    if augment != default {
        cmd += &format!(" --augment {}", augment.to_possible_value().expect("no variant is skipped").get_name());
    }
    cmd
}

pub fn run_quantize(args: QuantizeArgs) -> anyhow::Result<ExitCode> {
    let out = args.out.clone().unwrap_or_else(|| {
        let stem = args.model.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        args.model.with_file_name(format!("{stem}-int8.onnx"))
    });
    let card = cxr_core::ModelCard::load(&cxr_core::ModelCard::path_for(&args.model))?;
    let data = TrainingData::from_manifest(&args.manifest, card.class_set)?;
    let options = QuantizeOptions {
        calibration_images: args.calibration_images,
        seed: args.seed,
        calibration: args.calibration,
        compare_images: args.compare_images,
        keep_float: args.keep_float.clone(),
        ..Default::default()
    };
    eprintln!(
        "quantizing {} with {} of {} training images; comparing on {} validation images",
        args.model.display(),
        args.calibration_images,
        data.train.len(),
        args.compare_images.map_or(data.val.len(), |n| n.min(data.val.len()))
    );
    let int8 = quantize_file(&args.model, &data, &out, &options)?;
    let q = int8.quantization.as_ref().expect("quantize_file records how it quantized");
    eprintln!(
        "validation AUC fp32 {:.4} → int8 {:.4}; |ΔP(covid)| max {:.4}, mean {:.4} over {} images; int8 threshold {:.4}",
        q.val_auc_fp32, q.val_auc_int8, q.max_abs_diff, q.mean_abs_diff, q.compared_images, int8.threshold
    );
    outln!("{}", out.display());
    outln!("{}", cxr_core::ModelCard::path_for(&out).display());
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::TrainArgs;
    use clap::{CommandFactory, Parser};

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        train: TrainArgs,
    }

    #[test]
    fn arch_accepts_every_zoo_architecture_and_refuses_others_with_the_list() {
        for name in cxr_train::zoo::ARCHITECTURES {
            let cli = Cli::try_parse_from(["train", "--arch", name, "--manifest", "m.csv", "--out", "o"]).unwrap();
            assert_eq!(cli.train.arch, *name);
        }
        let refused =
            Cli::try_parse_from(["train", "--arch", "resnet50", "--manifest", "m.csv", "--out", "o"]).err().unwrap();
        assert_eq!(refused.kind(), clap::error::ErrorKind::InvalidValue);
        let message = refused.to_string();
        let help = Cli::command().render_long_help().to_string();
        for name in cxr_train::zoo::ARCHITECTURES {
            assert!(message.contains(name), "{message}");
            assert!(help.contains(name), "{help}");
        }
    }
}
