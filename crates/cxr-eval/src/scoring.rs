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
use rayon::prelude::*;

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
                                    (score_one(session, img, options.occlude_center).map_err(|e| e.to_string()), lungs)
                                }
                                Err(e) => (Err(e.clone()), None),
                            };
                            Ok(Scored { item: item.clone(), threshold: session.model().card.threshold, result, lungs })
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

fn score_one(
    session: &mut Session<'_>,
    img: &GreyImage,
    occlude: bool,
) -> Result<(Prediction, Option<Prediction>), cxr_infer::InferError> {
    let fitted = session.model().card.preprocess.fit(img);
    let full = session.predict_fitted(&fitted)?;
    let occluded = if occlude { Some(session.predict_fitted(&occlude_center(fitted))?) } else { None };
    Ok((full, occluded))
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
