//! Lung masks drawn by people, and how much of a model's evidence falls inside them.
//!
//! A classifier that reads the disease should find its evidence in the lung fields; one that
//! reads the hospital finds it on borders, text, devices and the abdomen. With a mask per film,
//! the share of a heatmap's positive mass inside the lungs says which (compare it with the share
//! of the film the lungs cover: a heatmap spread evenly over the film lands that much inside).
//!
//! Masks come as a CSV (`image,mask,…`: `image` relative to the datasets root, `mask` relative
//! to the CSV's folder), the layout of `shared/annotations/lung-masks-v7/masks.csv`; each mask is
//! a grey PNG at the film's size, lungs bright.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::image::{GreyImage, ImageError, load_image};
use crate::metrics::Interval;
use crate::metrics::Z_95;
use crate::preprocess::{Intensity, Preprocess};

#[derive(Debug, thiserror::Error)]
pub enum LungMaskError {
    #[error("{path}: cannot read the lung-mask list: {source}")]
    Csv { path: PathBuf, source: csv::Error },
    #[error("{path}: the lung-mask list needs `image` and `mask` columns")]
    Columns { path: PathBuf },
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("{mask}: the lung mask is {mask_w}×{mask_h} but its film {film} is {film_w}×{film_h}")]
    Size { mask: PathBuf, film: PathBuf, mask_w: u32, mask_h: u32, film_w: u32, film_h: u32 },
}

/// Which films have a lung mask, by the film's canonical path.
#[derive(Debug, Default)]
pub struct LungMasks {
    by_film: HashMap<PathBuf, PathBuf>,
}

impl LungMasks {
    /// Reads the list; films are resolved against `images_root`, masks against the list's folder.
    /// Films that do not exist under `images_root` are left out (a list may cover more films than
    /// a given copy of the data has).
    pub fn read(list: &Path, images_root: &Path) -> Result<LungMasks, LungMaskError> {
        let csv_error = |source| LungMaskError::Csv { path: list.to_owned(), source };
        let mut reader = csv::Reader::from_path(list).map_err(csv_error)?;
        let headers = reader.headers().map_err(csv_error)?.clone();
        let column = |name: &str| headers.iter().position(|h| h == name);
        let (Some(image), Some(mask)) = (column("image"), column("mask")) else {
            return Err(LungMaskError::Columns { path: list.to_owned() });
        };
        let mask_root = list.parent().unwrap_or(Path::new("."));
        let mut by_film = HashMap::new();
        for record in reader.records() {
            let record = record.map_err(csv_error)?;
            if let Ok(film) = images_root.join(&record[image]).canonicalize() {
                by_film.insert(film, mask_root.join(&record[mask]));
            }
        }
        Ok(LungMasks { by_film })
    }

    pub fn len(&self) -> usize {
        self.by_film.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_film.is_empty()
    }

    /// Every film that has a mask, as (film, mask), in film order.
    pub fn pairs(&self) -> Vec<(&Path, &Path)> {
        let mut pairs: Vec<(&Path, &Path)> = self.by_film.iter().map(|(f, m)| (f.as_path(), m.as_path())).collect();
        pairs.sort();
        pairs
    }

    /// The mask file of `film`, if it has one.
    pub fn mask_of(&self, film: &Path) -> Option<&Path> {
        self.by_film.get(&film.canonicalize().ok()?).map(PathBuf::as_path)
    }
}

/// The mask file of `film` decoded, once for every model that is fitted to it, and checked to
/// have the film's decoded size (a mask drawn on another copy of the film would misplace the lungs).
pub fn decode_mask(mask: &Path, film: &Path, film_size: (u32, u32)) -> Result<GreyImage, LungMaskError> {
    let grey = load_image(mask)?;
    if (grey.width, grey.height) != film_size {
        return Err(LungMaskError::Size {
            mask: mask.to_owned(),
            film: film.to_owned(),
            mask_w: grey.width,
            mask_h: grey.height,
            film_w: film_size.0,
            film_h: film_size.1,
        });
    }
    Ok(grey)
}

/// A lung mask fitted to a model's input: `true` inside the lungs, one value per input pixel.
pub struct FittedMask {
    pub inside: Vec<bool>,
}

impl FittedMask {
    /// Loads the mask of `film` (whose decoded size is `film_size`) and fits it exactly as
    /// `preprocess` fits the film, without the film's intensity remapping.
    pub fn load(
        mask: &Path,
        film: &Path,
        film_size: (u32, u32),
        preprocess: &Preprocess,
    ) -> Result<FittedMask, LungMaskError> {
        Ok(FittedMask::fit(&decode_mask(mask, film, film_size)?, preprocess))
    }

    pub fn fit(mask: &GreyImage, preprocess: &Preprocess) -> FittedMask {
        let geometry = Preprocess { intensity: Intensity::AsIs, ..*preprocess };
        FittedMask { inside: geometry.fit(mask).pixels.iter().map(|&v| v >= 0.5).collect() }
    }

    /// Share of the input the lungs cover.
    pub fn area_share(&self) -> f64 {
        self.inside.iter().filter(|&&i| i).count() as f64 / self.inside.len().max(1) as f64
    }

    /// Share of the positive part of `evidence` (one signed value per input pixel: what raised
    /// P(covid)) that lies inside the lungs; `None` when nothing raised it.
    pub fn share_inside(&self, evidence: &[f32]) -> Option<f64> {
        assert_eq!(evidence.len(), self.inside.len(), "evidence and mask must cover the same input");
        let (mut inside, mut total) = (0.0f64, 0.0f64);
        for (&e, &lung) in evidence.iter().zip(&self.inside) {
            if e > 0.0 {
                total += e as f64;
                if lung {
                    inside += e as f64;
                }
            }
        }
        (total > 0.0).then(|| inside / total)
    }
}

/// How much of a model's positive evidence lies inside the lungs, over the films with a mask.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attribution {
    /// `class-activation-map` or `occlusion`.
    pub method: String,
    /// Films with a mask and some positive evidence.
    pub films: usize,
    /// Mean share of positive evidence inside the lungs, with a normal 95% interval of the mean.
    pub share_inside_lungs: Interval,
    /// Mean share of the input the lungs cover: what an evenly spread heatmap would score.
    pub lung_area_share: f64,
}

impl Attribution {
    /// From per-film (share of evidence inside, share of area inside) pairs; `None` without films.
    pub fn from_films(method: &str, films: &[(f64, f64)]) -> Option<Attribution> {
        if films.is_empty() {
            return None;
        }
        let n = films.len() as f64;
        let mean = films.iter().map(|f| f.0).sum::<f64>() / n;
        let sd = if films.len() > 1 {
            (films.iter().map(|f| (f.0 - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
        } else {
            0.0
        };
        let half = Z_95 * sd / n.sqrt();
        Some(Attribution {
            method: method.to_owned(),
            films: films.len(),
            share_inside_lungs: Interval {
                estimate: mean,
                lower: (mean - half).max(0.0),
                upper: (mean + half).min(1.0),
            },
            lung_area_share: films.iter().map(|f| f.1).sum::<f64>() / n,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preprocess::{Normalize, ResizeMode};

    #[test]
    fn evidence_inside_the_mask_counts_only_its_positive_part() {
        // A 4×4 input whose left half is lung.
        let mask = GreyImage::new(4, 4, (0..16).map(|i| if i % 4 < 2 { 1.0 } else { 0.0 }).collect());
        let p = Preprocess {
            size: 4,
            resize: ResizeMode::Stretch,
            channels: 1,
            normalize: Normalize::Unit,
            intensity: Intensity::Equalize,
        };
        let fitted = FittedMask::fit(&mask, &p);
        assert_eq!(fitted.area_share(), 0.5, "the film's equalisation does not touch the mask");
        // 3 units of positive evidence in the lungs, 1 outside; negative evidence is ignored.
        let mut evidence = vec![0.0f32; 16];
        evidence[0] = 2.0;
        evidence[5] = 1.0;
        evidence[3] = 1.0;
        evidence[7] = -5.0;
        assert_eq!(fitted.share_inside(&evidence), Some(0.75));
        assert_eq!(fitted.share_inside(&[-1.0; 16]), None);
    }

    #[test]
    fn mean_share_has_an_interval_around_it() {
        let a = Attribution::from_films("cam", &[(0.2, 0.3), (0.4, 0.3), (0.6, 0.3)]).unwrap();
        assert!((a.share_inside_lungs.estimate - 0.4).abs() < 1e-12);
        assert!(a.share_inside_lungs.lower < 0.4 && a.share_inside_lungs.upper > 0.4);
        assert!((a.lung_area_share - 0.3).abs() < 1e-12);
        assert!(Attribution::from_films("cam", &[]).is_none());
    }

    #[test]
    fn the_shipped_mask_list_reads_and_finds_its_films() {
        let root = cxr_test_support::datasets();
        let masks = LungMasks::read(&cxr_test_support::lung_masks(), &root).unwrap();
        assert_eq!(masks.len(), 427, "every mask's film is in the shared copy");
        let film = root.join("covid-chestxray-dataset/images/0a7faa2a.jpg");
        let mask = masks.mask_of(&film).expect("listed");
        let grey = load_image(&film).unwrap();
        let p = Preprocess { size: 96, ..Preprocess::SEED };
        let fitted = FittedMask::load(mask, &film, (grey.width, grey.height), &p).unwrap();
        let area = fitted.area_share();
        assert!((0.15..0.6).contains(&area), "two lungs cover a fifth to a half of a frontal film, not {area}");
    }
}
