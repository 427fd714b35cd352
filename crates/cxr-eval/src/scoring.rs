//! Scoring labelled films with one or more models, one decode per film.
//!
//! `--occlude-center` repeats each score with the central lung region blacked out. Maguolo &
//! Nanni (Information Fusion 2021) showed COVID classifiers keep a high AUC on such images: the
//! evidence they use lies outside the lungs (borders, text, devices, the source hospital). A model
//! that is really reading the lungs should drop towards chance. With lung masks, the same pass
//! also measures the share of each model's positive evidence that lies inside the lungs.

use crate::{EvalError, Labelled};
use cxr_core::GreyImage;
use cxr_core::lung_mask::{FittedMask, LungMasks, decode_mask};
use cxr_infer::{Model, Prediction, Session};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::path::Path;

/// Fraction of each side blacked out by `--occlude-center`: the central 70 % × 70 % box, which
/// covers both lung fields on a frontal film and leaves the borders, corners and labels.
pub const OCCLUDED_FRACTION: f64 = 0.7;

/// One film's outcome with one model.
#[derive(Debug, Clone)]
pub struct Scored {
    pub item: Labelled,
    /// The threshold of the model that scored it.
    pub threshold: f64,
    /// The prediction on the film, and on the film with its centre blacked out when asked for;
    /// or why the film could not be scored.
    pub result: Result<(Prediction, Option<Prediction>), String>,
    /// With lung masks, on a film that has one: the share of the model's positive evidence
    /// inside the lungs, and the share of the input the lungs cover.
    pub lungs: Option<(f64, f64)>,
    /// With `noise`: how far invisible pixel noise moved P(covid), |ΔP|.
    pub noise_shift: Option<f64>,
}

/// What to measure besides the plain score.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScoreOptions<'a> {
    /// Also score each film with its centre blacked out.
    pub occlude_center: bool,
    /// Measure the evidence inside the lungs on the films these masks cover.
    pub lung_masks: Option<&'a LungMasks>,
    /// Worker threads (`None`: all cores).
    pub jobs: Option<usize>,
    /// Also score each film with uniform noise of ± this many grey levels (of 255) added to the
    /// model-sized image, to see how far noise no reader would notice moves P(covid): the
    /// yardstick for the moves quantization makes.
    pub noise: Option<f32>,
}

/// Scores every film with every model: per model, one outcome per film, in `items` order. Each
/// film is read and decoded once; a film that cannot be read fails for every model. `progress`
/// is called once per film done.
pub fn score_all(
    models: &[Model],
    items: &[Labelled],
    options: ScoreOptions<'_>,
    progress: &(dyn Fn() + Sync),
) -> Result<Vec<Vec<Scored>>, EvalError> {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(options.jobs.unwrap_or(0)).build()?;
    let per_image: Vec<Vec<Scored>> = pool.install(|| {
        items
            .par_iter()
            .map_init(
                || models.iter().map(Model::session).collect::<Vec<_>>(),
                |sessions, item| {
                    let image = cxr_core::load_image(&item.path).map_err(|e| e.to_string());
                    let mask = match (&image, options.lung_masks.and_then(|m| m.mask_of(&item.path))) {
                        (Ok(img), Some(mask)) => Some(decode_mask(mask, &item.path, (img.width, img.height))?),
                        _ => None,
                    };
                    let scored = sessions
                        .iter_mut()
                        .map(|session| {
                            let (result, lungs) = match &image {
                                Ok(img) => {
                                    let lungs = match &mask {
                                        Some(mask) => lung_share(session, img, mask)?,
                                        None => None,
                                    };
                                    (score_one(session, img, &item.path, options), lungs)
                                }
                                Err(e) => (Err(e.clone()), None),
                            };
                            let (result, noise_shift) = match result {
                                Ok((full, occluded, shift)) => (Ok((full, occluded)), shift),
                                Err(e) => (Err(e), None),
                            };
                            Ok(Scored {
                                item: item.clone(),
                                threshold: session.model().card.threshold,
                                result,
                                lungs,
                                noise_shift,
                            })
                        })
                        .collect::<Result<Vec<_>, EvalError>>();
                    progress();
                    scored
                },
            )
            .collect::<Result<_, _>>()
    })?;
    let mut per_model: Vec<Vec<Scored>> = models.iter().map(|_| Vec::with_capacity(items.len())).collect();
    for image in per_image {
        for (model, scored) in per_model.iter_mut().zip(image) {
            model.push(scored);
        }
    }
    Ok(per_model)
}

/// The film's prediction, with its centre blacked out when asked, and |ΔP(covid)| under noise
/// when asked.
fn score_one(
    session: &mut Session<'_>,
    img: &GreyImage,
    path: &Path,
    options: ScoreOptions<'_>,
) -> Result<(Prediction, Option<Prediction>, Option<f64>), String> {
    let fitted = session.model().card.preprocess.fit(img);
    let full = session.predict_fitted(&fitted).map_err(|e| e.to_string())?;
    let shift = match options.noise {
        Some(levels) => {
            let noisy = session.predict_fitted(&with_noise(fitted.clone(), levels, path)).map_err(|e| e.to_string())?;
            Some((noisy.p_covid() as f64 - full.p_covid() as f64).abs())
        }
        None => None,
    };
    let occluded = match options.occlude_center {
        true => Some(session.predict_fitted(&occlude_center(fitted)).map_err(|e| e.to_string())?),
        false => None,
    };
    Ok((full, occluded, shift))
}

/// Uniform noise of ± `levels` grey levels (of 255) on a fitted image, clamped to the image's
/// range; seeded by the film's path, so every model sees the same noise on a film and a rerun
/// gives the same figures.
fn with_noise(mut img: GreyImage, levels: f32, path: &Path) -> GreyImage {
    // FNV-1a: a seed that stays the same across Rust versions, unlike the std hasher.
    let seed = path
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let amplitude = levels / 255.0;
    for v in &mut img.pixels {
        *v = (*v + rng.gen_range(-amplitude..=amplitude)).clamp(0.0, 1.0);
    }
    img
}

/// The share of the model's positive evidence inside the film's lung mask (class activation maps
/// where the model exports its feature map, occlusion otherwise) and the share of the input the
/// lungs cover; `None` when the map has no positive evidence.
fn lung_share(session: &mut Session<'_>, film: &GreyImage, mask: &GreyImage) -> Result<Option<(f64, f64)>, EvalError> {
    let heat = session.explain(film, None)?;
    let lungs = FittedMask::fit(mask, &session.model().card.preprocess);
    Ok(lungs.share_inside(&heat.evidence).map(|share| (share, lungs.area_share())))
}

/// Blacks out the central box of a fitted (model-sized) image; the model sees exactly this
/// (`predict_fitted` does not fit it again).
pub fn occlude_center(mut img: GreyImage) -> GreyImage {
    let (w, h) = (img.width as usize, img.height as usize);
    let margin = |side: usize| ((side as f64 * (1.0 - OCCLUDED_FRACTION) / 2.0).round() as usize).min(side / 2);
    let (mx, my) = (margin(w), margin(h));
    for y in my..h - my {
        img.pixels[y * w + mx..y * w + w - mx].fill(0.0);
    }
    img
}
