//! Heatmaps showing which part of an X-ray drove P(covid), so a user can see whether the model
//! looks at the lungs or at a hospital's text markers and borders.
//!
//! Two methods, no gradients needed (tract has none):
//! - **Class activation map** (Zhou et al. 2016) for networks that global-average-pool a last
//!   feature map into a linear head: because pooling and the head are linear, the covid logit
//!   is exactly the spatial mean of `Σ_c w_c · F_c(x, y)`, so that sum *is* each location's
//!   contribution. The head weights are read from the ONNX initializers; one forward pass.
//! - **Occlusion sensitivity** (Zeiler & Fergus 2014) for everything else: slide a grey patch
//!   over the image and record how much P(covid) drops. Model-agnostic, costs one batched run
//!   per patch position.

use crate::model::{InferError, Model, Prediction, Session};
use cxr_core::{Class, GreyImage};

/// How a heatmap was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    ClassActivationMap,
    Occlusion,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::ClassActivationMap => "class-activation-map",
            Method::Occlusion => "occlusion",
        }
    }
}

/// Per-pixel relevance in `[0, 1]` over the model's input (the fitted image).
#[derive(Debug, Clone)]
pub struct Heatmap {
    pub method: Method,
    pub width: u32,
    pub height: u32,
    /// Min–max scaled to `[0, 1]`, for drawing.
    pub values: Vec<f32>,
    /// The same before scaling, signed, so that "what raised P(covid)" is its positive part: the
    /// class-activation map in logit units, or how much P(covid) fell when a patch was hidden.
    /// Scaling alone cannot say where evidence changes sign.
    pub evidence: Vec<f32>,
    pub prediction: Prediction,
}

impl Heatmap {
    /// The scaled values as an image over the model input.
    pub fn image(&self) -> GreyImage {
        GreyImage::new(self.width, self.height, self.values.clone())
    }
}

impl Model {
    /// The method [`Session::explain`] uses for this model when none is asked for.
    pub fn default_explain_method(&self) -> Method {
        if self.cam_head.is_some() { Method::ClassActivationMap } else { Method::Occlusion }
    }
}

impl Session<'_> {
    /// A heatmap of P(covid) evidence over `img` as the model sees it ([`cxr_core::Preprocess::fit`]).
    /// Asking for a class activation map on a model without a usable head falls back to occlusion.
    pub fn explain(&mut self, img: &GreyImage, method: Option<Method>) -> Result<Heatmap, InferError> {
        let model = self.model();
        let fitted = model.card.preprocess.fit(img);
        let method = match (method, &model.cam_head) {
            (Some(Method::ClassActivationMap), None) | (None, None) => Method::Occlusion,
            (Some(m), _) => m,
            (None, Some(_)) => Method::ClassActivationMap,
        };
        match method {
            Method::ClassActivationMap => self.class_activation_map(&fitted),
            Method::Occlusion => self.occlusion(&fitted),
        }
    }

    fn class_activation_map(&mut self, fitted: &GreyImage) -> Result<Heatmap, InferError> {
        let model = self.model();
        let head = model.cam_head.clone().expect("explain checked the head");
        let mut input = Vec::with_capacity(model.input_len());
        model.fitted_into(fitted, &mut input);
        let out = self.run(&input, 1)?;
        let prediction = out.predictions[0].clone();
        let Some((shape, values)) = out.feature_map else {
            return Err(InferError::Run {
                path: model.model_path.clone(),
                reason: "the feature map output is missing".into(),
            });
        };
        let (channels, h, w) = (shape[1], shape[2], shape[3]);
        // Binary heads have one row (the covid logit); three-class heads one per class.
        let row = if head.weights.len() == 1 { 0 } else { model.class_set().index(Class::Covid) };
        let weights = &head.weights[row];
        if weights.len() != channels {
            return Err(InferError::Run {
                path: model.model_path.clone(),
                reason: format!("head has {} weights per output, the feature map {channels} channels", weights.len()),
            });
        }
        let mut cam = vec![0.0f32; h * w];
        for (c, weight) in weights.iter().enumerate() {
            for (acc, v) in cam.iter_mut().zip(&values[c * h * w..(c + 1) * h * w]) {
                *acc += weight * v;
            }
        }
        let evidence = upsample(&cam, w, h, fitted.width, fitted.height);
        let values = normalise(evidence.clone());
        Ok(Heatmap {
            method: Method::ClassActivationMap,
            width: fitted.width,
            height: fitted.height,
            values,
            evidence,
            prediction,
        })
    }

    /// Occludes `patch × patch` squares with mid-grey at half-patch strides, in batches.
    fn occlusion(&mut self, fitted: &GreyImage) -> Result<Heatmap, InferError> {
        let model = self.model();
        let (w, h) = (fitted.width as usize, fitted.height as usize);
        let patch = (w.min(h) / 8).max(1);
        let stride = (patch / 2).max(1);
        let prediction = self.predict_fitted(fitted)?;
        let base = prediction.p_covid();
        let positions: Vec<(usize, usize)> = (0..=h.saturating_sub(patch))
            .step_by(stride)
            .flat_map(|y| (0..=w.saturating_sub(patch)).step_by(stride).map(move |x| (x, y)))
            .collect();
        let mut drop_sum = vec![0.0f32; w * h];
        let mut cover = vec![0u32; w * h];
        const BATCH: usize = 16;
        let mut input = Vec::with_capacity(BATCH * model.input_len());
        for chunk in positions.chunks(BATCH) {
            input.clear();
            for &(x0, y0) in chunk {
                let mut occluded = fitted.clone();
                for y in y0..y0 + patch {
                    occluded.pixels[y * w + x0..y * w + x0 + patch].fill(0.5);
                }
                model.fitted_into(&occluded, &mut input);
            }
            let out = self.run(&input, chunk.len())?;
            for (&(x0, y0), p) in chunk.iter().zip(&out.predictions) {
                let drop = base - p.p_covid();
                for y in y0..y0 + patch {
                    for x in x0..x0 + patch {
                        drop_sum[y * w + x] += drop;
                        cover[y * w + x] += 1;
                    }
                }
            }
        }
        let mean: Vec<f32> =
            drop_sum.iter().zip(&cover).map(|(s, &n)| if n == 0 { 0.0 } else { s / n as f32 }).collect();
        Ok(Heatmap {
            method: Method::Occlusion,
            width: fitted.width,
            height: fitted.height,
            values: normalise(mean.clone()),
            evidence: mean,
            prediction,
        })
    }
}

/// Min–max scaling to `[0, 1]`; a flat map becomes all zeros.
fn normalise(mut values: Vec<f32>) -> Vec<f32> {
    let (lo, hi) = values.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let range = hi - lo;
    for v in &mut values {
        *v = if range > 0.0 { (*v - lo) / range } else { 0.0 };
    }
    values
}

/// Bilinear upsampling of a `w × h` grid to the (always square) fitted image, reusing the
/// preprocessing's resampler so heatmap and image are aligned the same way.
fn upsample(values: &[f32], w: usize, h: usize, out_w: u32, out_h: u32) -> Vec<f32> {
    debug_assert_eq!(out_w, out_h, "fitted images are square");
    let grid = GreyImage::new(w as u32, h as u32, values.to_vec());
    let stretch = cxr_core::Preprocess { size: out_w, ..cxr_core::Preprocess::SEED };
    stretch.fit(&grid).pixels
}

/// The X-ray in grey with the heatmap (values in `[0, 1]`, same size) blended over it in a
/// blue→red colour map; cold regions stay nearly transparent so the anatomy remains readable.
pub fn overlay(xray: &GreyImage, heat: &GreyImage) -> image::RgbImage {
    assert_eq!((xray.width, xray.height), (heat.width, heat.height), "heatmap must match the X-ray");
    image::RgbImage::from_fn(xray.width, xray.height, |x, y| {
        let i = (y * xray.width + x) as usize;
        let grey = xray.pixels[i].clamp(0.0, 1.0);
        let v = heat.pixels[i].clamp(0.0, 1.0);
        let colour = jet(v);
        let alpha = 0.15 + 0.45 * v;
        image::Rgb(colour.map(|c| ((grey * (1.0 - alpha) + c * alpha) * 255.0).round() as u8))
    })
}

/// The classic "jet" colour map: blue, cyan, yellow, red.
fn jet(v: f32) -> [f32; 3] {
    let channel = |centre: f32| (1.5 - (4.0 * v - centre).abs()).clamp(0.0, 1.0);
    [channel(3.0), channel(2.0), channel(1.0)]
}
