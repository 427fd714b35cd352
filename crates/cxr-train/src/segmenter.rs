//! Trains the lung-field segmenter ([`crate::zoo::lung_unet`]) on lung masks drawn by people.
//!
//! Which films it may learn from is a manifest's business, not the segmenter's: it takes the films
//! of the manifest's `train` and `val` splits that have a mask, and never reads a label. With a
//! cross-fitting fold's manifest (`cxr data folds`) the fold's test films therefore never reach
//! it, which is the masks' leak rule. Loss: per-pixel binary cross-entropy plus one minus the soft
//! Dice overlap (the lungs cover about a third of a film, so Dice keeps the small side honest);
//! the epoch kept is the one with the best validation Dice.

use crate::data::{TrainingData, bar_style, mix_seed};
use crate::lung_field::{RECORD_FILE, SegmenterEpoch, SegmenterRecord, WEIGHTS_FILE};
use crate::tch_backend::{TchNetwork, batch_tensor};
use crate::zoo;
use cxr_core::card::sha256_hex;
use cxr_core::lung_mask::{FittedMask, LungMaskError, LungMasks};
use cxr_core::{Preprocess, load_image};
use indicatif::ProgressBar;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Reduction, Tensor};

/// How to train a segmenter.
#[derive(Debug, Clone)]
pub struct SegmenterConfig {
    /// The classifier it will stand in front of: its input (size, channels, normalisation,
    /// intensity) is the segmenter's.
    pub classifier: crate::Network,
    pub epochs: u32,
    pub patience: u32,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub seed: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SegmenterError {
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    #[error(transparent)]
    Masks(#[from] LungMaskError),
    #[error(transparent)]
    Network(#[from] crate::NetworkError),
    #[error(
        "{manifest}: its {split} split has {count} films with a lung mask in {masks}; the segmenter needs at least {needed}"
    )]
    TooFew { manifest: PathBuf, masks: PathBuf, split: &'static str, count: usize, needed: usize },
    #[error("{path}: {action}: {source}")]
    Io { path: PathBuf, action: &'static str, source: std::io::Error },
    #[error("{path}: cannot save the segmenter's weights: {source}")]
    Save { path: PathBuf, source: tch::TchError },
}

/// Films (model inputs) and their fitted masks, one split.
struct MaskedFilms {
    inputs: Vec<f32>,
    masks: Vec<f32>,
    count: usize,
}

impl MaskedFilms {
    fn load(pairs: &[MaskedFilm], preprocess: &Preprocess) -> Result<MaskedFilms, LungMaskError> {
        let loaded: Vec<(Vec<f32>, Vec<f32>)> = pairs
            .par_iter()
            .map(|(film, mask)| {
                let grey = load_image(film)?;
                let fitted = FittedMask::load(mask, film, (grey.width, grey.height), preprocess)?;
                Ok((preprocess.apply(&grey), fitted.inside.iter().map(|&i| if i { 1.0 } else { 0.0 }).collect()))
            })
            .collect::<Result<_, LungMaskError>>()?;
        let count = loaded.len();
        let (inputs, masks): (Vec<Vec<f32>>, Vec<Vec<f32>>) = loaded.into_iter().unzip();
        Ok(MaskedFilms { inputs: inputs.concat(), masks: masks.concat(), count })
    }

    /// `[n, c, s, s]` inputs and `[n, 1, s, s]` masks for `indices`.
    fn batch(&self, indices: &[usize], preprocess: &Preprocess) -> (Tensor, Tensor) {
        let (c, s) = (preprocess.channels as usize, preprocess.size as usize);
        let (input_len, mask_len) = (c * s * s, s * s);
        let inputs: Vec<f32> =
            indices.iter().flat_map(|&i| &self.inputs[i * input_len..(i + 1) * input_len]).copied().collect();
        let masks: Vec<f32> =
            indices.iter().flat_map(|&i| &self.masks[i * mask_len..(i + 1) * mask_len]).copied().collect();
        (batch_tensor(&inputs, [indices.len(), c, s, s]), batch_tensor(&masks, [indices.len(), 1, s, s]))
    }
}

/// A film and its drawn lung mask.
pub type MaskedFilm = (PathBuf, PathBuf);

/// The films of `data`'s train and val splits that `masks` has a mask for, as (film, mask) pairs;
/// `manifest` names where `data` came from in the error for too few.
pub fn masked_films(
    data: &TrainingData,
    masks: &LungMasks,
    manifest: &Path,
    masks_list: &Path,
) -> Result<(Vec<MaskedFilm>, Vec<MaskedFilm>), SegmenterError> {
    let pick = |images: &[crate::LabeledImage]| -> Vec<MaskedFilm> {
        images.iter().filter_map(|img| Some((img.path.clone(), masks.mask_of(&img.path)?.to_owned()))).collect()
    };
    let (train, val) = (pick(&data.train), pick(&data.val));
    for (split, films, needed) in [("train", &train, 16), ("val", &val, 4)] {
        if films.len() < needed {
            return Err(SegmenterError::TooFew {
                manifest: manifest.to_owned(),
                masks: masks_list.to_owned(),
                split,
                count: films.len(),
                needed,
            });
        }
    }
    Ok((train, val))
}

/// Trains a segmenter on `train`, keeps the epoch with the best Dice on `val`, and writes its
/// record and weights into `out` (see [`crate::lung_field::LungField::load`]).
pub fn train_segmenter(
    config: &SegmenterConfig,
    train: &[MaskedFilm],
    val: &[MaskedFilm],
    sources: (&Path, &Path),
    out: &Path,
    report: &mut dyn FnMut(&SegmenterEpoch),
) -> Result<SegmenterRecord, SegmenterError> {
    let io = |path: &Path, action: &'static str| {
        let path = path.to_owned();
        move |source| SegmenterError::Io { path, action, source }
    };
    std::fs::create_dir_all(out).map_err(io(out, "cannot create the folder"))?;
    let preprocess = zoo::preprocess_for(&config.classifier);
    let network = zoo::lung_unet(config.classifier.input_channels, config.classifier.input_size)?;
    let train_films = MaskedFilms::load(train, &preprocess)?;
    let val_films = MaskedFilms::load(val, &preprocess)?;

    let device = Device::cuda_if_available();
    tch::manual_seed(config.seed as i64);
    let vs = nn::VarStore::new(device);
    let model = TchNetwork::new(&vs.root(), network.clone())?;
    let mut optimizer = nn::Adam::default().build(&vs, config.learning_rate).expect("Adam builds on any VarStore");
    let weights = out.join(WEIGHTS_FILE);
    let (mut history, mut best): (Vec<SegmenterEpoch>, Option<(u32, f64)>) = (Vec::new(), None);
    for epoch in 1..=config.epochs {
        let started = Instant::now();
        let mut rng = ChaCha8Rng::seed_from_u64(mix_seed(config.seed, epoch as u64, 7));
        let mut order: Vec<usize> = (0..train_films.count).collect();
        order.shuffle(&mut rng);
        let bar = ProgressBar::new(order.len().div_ceil(config.batch_size) as u64).with_style(bar_style());
        bar.set_message(format!("lung field, epoch {epoch}"));
        let mut loss_sum = 0.0;
        for batch in order.chunks(config.batch_size) {
            let (mut x, mut y) = train_films.batch(batch, &preprocess);
            // Lungs are near mirror images; flipping also hides which side the heart is on.
            if rng.gen_bool(0.5) {
                (x, y) = (x.flip([3]), y.flip([3]));
            }
            let logits = model.forward(&x.to_device(device), true).logits;
            let loss = mask_loss(&logits, &y.to_device(device));
            optimizer.backward_step(&loss);
            loss_sum += f64::try_from(&loss).unwrap_or(f64::NAN) * batch.len() as f64;
            bar.inc(1);
        }
        bar.finish_and_clear();
        let val_dice = dice(&model, &val_films, &preprocess, config.batch_size, device);
        let record = SegmenterEpoch {
            epoch,
            train_loss: loss_sum / train_films.count as f64,
            val_dice,
            seconds: started.elapsed().as_secs_f64(),
        };
        report(&record);
        history.push(record);
        if best.is_none_or(|(_, dice)| val_dice > dice) {
            best = Some((epoch, val_dice));
            vs.save(&weights).map_err(|source| SegmenterError::Save { path: weights.clone(), source })?;
        } else if best.is_some_and(|(at, _)| epoch - at >= config.patience) {
            break;
        }
    }
    let (best_epoch, val_dice) = best.expect("at least one epoch runs");
    let bytes = std::fs::read(&weights).map_err(io(&weights, "cannot read back the weights"))?;
    let record = SegmenterRecord {
        network,
        preprocess,
        masks: sources.0.display().to_string(),
        manifest: sources.1.display().to_string(),
        train_films: train_films.count,
        val_films: val_films.count,
        best_epoch,
        val_dice,
        epochs: history,
        weights_sha256: sha256_hex(&bytes),
    };
    let json = serde_json::to_string_pretty(&record).expect("a segmenter record serialises");
    let path = out.join(RECORD_FILE);
    std::fs::write(&path, json).map_err(io(&path, "cannot write"))?;
    Ok(record)
}

/// Binary cross-entropy per pixel plus `1 − soft Dice` per film, both averaged.
fn mask_loss(logits: &Tensor, masks: &Tensor) -> Tensor {
    let bce = logits.binary_cross_entropy_with_logits::<&Tensor>(masks, None, None, Reduction::Mean);
    let p = logits.sigmoid();
    let dims: &[i64] = &[1, 2, 3];
    let overlap = (&p * masks).sum_dim_intlist(dims, false, Kind::Float);
    let total = p.sum_dim_intlist(dims, false, Kind::Float) + masks.sum_dim_intlist(dims, false, Kind::Float);
    let soft_dice = (overlap * 2.0 + 1.0) / (total + 1.0);
    bce + (soft_dice.neg() + 1.0).mean(Kind::Float)
}

/// Dice of the mask thresholded at P = 0.5 against the drawn one, pooled over every pixel of `films`.
fn dice(model: &TchNetwork, films: &MaskedFilms, preprocess: &Preprocess, batch_size: usize, device: Device) -> f64 {
    let (mut overlap, mut total) = (0.0, 0.0);
    let indices: Vec<usize> = (0..films.count).collect();
    tch::no_grad(|| {
        for batch in indices.chunks(batch_size) {
            let (x, y) = films.batch(batch, preprocess);
            let predicted = model.forward(&x.to_device(device), false).logits.gt(0.0).to_kind(Kind::Float);
            let y = y.to_device(device);
            overlap += f64::try_from((&predicted * &y).sum(Kind::Float)).unwrap_or(0.0);
            total += f64::try_from(predicted.sum(Kind::Float) + y.sum(Kind::Float)).unwrap_or(0.0);
        }
    });
    if total == 0.0 { 0.0 } else { 2.0 * overlap / total }
}
