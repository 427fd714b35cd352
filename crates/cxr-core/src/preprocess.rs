//! How a grey X-ray becomes a model's input tensor, described as data.
//!
//! A [`Preprocess`] is stored in every model card, and [`Preprocess::apply`] is the one function
//! both training and inference call, so a model is always fed exactly what it was trained on.

use crate::image::GreyImage;
use serde::{Deserialize, Serialize};

/// How the image is fitted to the square model input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ResizeMode {
    /// Scale both sides to the input size, ignoring aspect ratio (what Keras' `flow_from_directory` does).
    #[default]
    Stretch,
    /// Scale the short side to the input size, then cut the centre square.
    CenterCrop,
    /// Scale the long side to the input size and pad the rest with black.
    Letterbox,
}

/// How pixel values in `[0, 1]` are mapped to model inputs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Normalize {
    /// `x` in `[0, 1]` (the seed's `rescale=1./255`).
    #[default]
    Unit,
    /// `(x·255 − 127) / 128`, as EfficientNet-Lite's TF-Lite checkpoints expect.
    Symmetric,
    /// ImageNet mean/std per channel (torchvision backbones). A grey image uses the
    /// three channels' statistics even when `channels` is 1 (then the mean of them).
    Imagenet,
}

/// How grey levels are remapped after resizing, before normalisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Intensity {
    /// As decoded.
    #[default]
    AsIs,
    /// Histogram equalisation: each pixel becomes the share of the image's pixels at or below
    /// it. Devices and hospitals differ in exposure, contrast curve and processing, and a network
    /// can learn those looks instead of the lungs; equalising gives every film the same (uniform)
    /// grey-level histogram. The map is exactly idempotent (an equalised image equalises to
    /// itself), so fitting an already fitted image stays the identity.
    Equalize,
}

const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// The full recipe from grey image to NCHW input.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Preprocess {
    /// Side of the square input, in pixels.
    pub size: u32,
    #[serde(default)]
    pub resize: ResizeMode,
    /// 1 for grey models, 3 for ImageNet backbones (grey copied to R, G and B).
    pub channels: u32,
    #[serde(default)]
    pub normalize: Normalize,
    /// Grey-level remapping; absent in cards written before it existed (then as decoded).
    #[serde(default, skip_serializing_if = "is_as_is")]
    pub intensity: Intensity,
}

fn is_as_is(i: &Intensity) -> bool {
    *i == Intensity::AsIs
}

impl Preprocess {
    /// The seed paper's input: 256×256 RGB, `x/255`.
    pub const SEED: Preprocess = Preprocess {
        size: 256,
        resize: ResizeMode::Stretch,
        channels: 3,
        normalize: Normalize::Unit,
        intensity: Intensity::AsIs,
    };

    /// Number of `f32` values one image becomes.
    #[allow(clippy::len_without_is_empty)] // an image always becomes values
    pub fn len(&self) -> usize {
        (self.channels * self.size * self.size) as usize
    }

    /// The input shape for a batch of `n`: `[n, channels, size, size]`.
    pub fn shape(&self, n: usize) -> [usize; 4] {
        [n, self.channels as usize, self.size as usize, self.size as usize]
    }

    /// Resizes and normalises `img`, appending `channels × size × size` values (CHW) to `out`.
    pub fn apply_into(&self, img: &GreyImage, out: &mut Vec<f32>) {
        self.normalize_into(&self.fit(img), out);
    }

    /// Normalises an image [`Preprocess::fit`] already made, appending CHW values to `out`. For
    /// inputs changed after fitting (a region blacked out, a patch hidden), which fitting again
    /// would remap: equalisation is idempotent on what it made, not on what was edited since.
    pub fn normalize_into(&self, fitted: &GreyImage, out: &mut Vec<f32>) {
        debug_assert_eq!((fitted.width, fitted.height), (self.size, self.size), "a fitted image");
        let plane = &fitted.pixels;
        for c in 0..self.channels as usize {
            let (mean, std) = self.stats(c);
            out.extend(plane.iter().map(|&x| (x - mean) / std));
        }
    }

    /// Resizes and normalises `img` into a new CHW vector.
    pub fn apply(&self, img: &GreyImage) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.len());
        self.apply_into(img, &mut out);
        out
    }

    /// The resized (and, if asked, equalised) grey image, before normalisation (also used to draw
    /// heatmaps over).
    pub fn fit(&self, img: &GreyImage) -> GreyImage {
        let fitted = self.resize(img);
        match self.intensity {
            Intensity::AsIs => fitted,
            Intensity::Equalize => equalize(fitted),
        }
    }

    /// Undoes `fit`'s geometry: maps a `size × size` picture over the model input (a heatmap)
    /// back onto the `width × height` film it was fitted from, so it can be drawn over the film at
    /// the film's own resolution. Film regions the model never saw (cut by a centre crop) are 0.
    pub fn to_film(&self, fitted: &GreyImage, width: u32, height: u32) -> GreyImage {
        let s = self.size as f32;
        match self.resize {
            ResizeMode::Stretch => resize_bilinear(fitted, 0.0, 0.0, s, s, width, height),
            ResizeMode::CenterCrop => {
                let side = width.min(height);
                let square = resize_bilinear(fitted, 0.0, 0.0, s, s, side, side);
                let (ox, oy) = ((width - side) / 2, (height - side) / 2);
                let mut out = GreyImage::new(width, height, vec![0.0; (width * height) as usize]);
                for y in 0..side {
                    let start = ((y + oy) * width + ox) as usize;
                    out.pixels[start..start + side as usize]
                        .copy_from_slice(&square.pixels[(y * side) as usize..((y + 1) * side) as usize]);
                }
                out
            }
            ResizeMode::Letterbox => {
                let scale = s / width.max(height) as f32;
                let (w, h) = (width as f32 * scale, height as f32 * scale);
                resize_bilinear(fitted, (s - w) / 2.0, (s - h) / 2.0, w, h, width, height)
            }
        }
    }

    fn resize(&self, img: &GreyImage) -> GreyImage {
        let s = self.size;
        match self.resize {
            ResizeMode::Stretch => resize_bilinear(img, 0.0, 0.0, img.width as f32, img.height as f32, s, s),
            ResizeMode::CenterCrop => {
                let side = img.width.min(img.height) as f32;
                let x0 = (img.width as f32 - side) / 2.0;
                let y0 = (img.height as f32 - side) / 2.0;
                resize_bilinear(img, x0, y0, side, side, s, s)
            }
            ResizeMode::Letterbox => {
                let scale = s as f32 / img.width.max(img.height) as f32;
                let w = ((img.width as f32 * scale).round() as u32).clamp(1, s);
                let h = ((img.height as f32 * scale).round() as u32).clamp(1, s);
                let inner = resize_bilinear(img, 0.0, 0.0, img.width as f32, img.height as f32, w, h);
                let mut out = GreyImage::new(s, s, vec![0.0; (s * s) as usize]);
                let (ox, oy) = ((s - w) / 2, (s - h) / 2);
                for y in 0..h {
                    let src = &inner.pixels[(y * w) as usize..((y + 1) * w) as usize];
                    let start = ((y + oy) * s + ox) as usize;
                    out.pixels[start..start + w as usize].copy_from_slice(src);
                }
                out
            }
        }
    }

    /// (mean, std) in `[0, 1]` units for channel `c`: input = (grey − mean) / std. Public so a
    /// runtime can fold the normalisation into a model's first layer.
    pub fn stats(&self, c: usize) -> (f32, f32) {
        match self.normalize {
            Normalize::Unit => (0.0, 1.0),
            Normalize::Symmetric => (127.0 / 255.0, 128.0 / 255.0),
            Normalize::Imagenet if self.channels == 1 => {
                (IMAGENET_MEAN.iter().sum::<f32>() / 3.0, IMAGENET_STD.iter().sum::<f32>() / 3.0)
            }
            Normalize::Imagenet => (IMAGENET_MEAN[c], IMAGENET_STD[c]),
        }
    }
}

/// Histogram equalisation by ranks: a pixel of value `v` becomes (pixels ≤ v) / pixels.
fn equalize(mut img: GreyImage) -> GreyImage {
    let mut sorted = img.pixels.clone();
    sorted.sort_unstable_by(f32::total_cmp);
    let n = sorted.len() as f32;
    for p in &mut img.pixels {
        let at_or_below = sorted.partition_point(|&x| x <= *p);
        *p = at_or_below as f32 / n;
    }
    img
}

/// Bilinear resampling of the source window `(x0, y0, w, h)` to `out_w × out_h`, with pixel
/// centres aligned (as PIL and OpenCV do). When shrinking by more than 2× it averages a box
/// first, so thin structures are not aliased away.
fn resize_bilinear(img: &GreyImage, x0: f32, y0: f32, w: f32, h: f32, out_w: u32, out_h: u32) -> GreyImage {
    let (src_w, src_h) = (img.width as usize, img.height as usize);
    let sx = w / out_w as f32;
    let sy = h / out_h as f32;
    if sx >= 2.0 || sy >= 2.0 {
        return resize_box(img, x0, y0, w, h, out_w, out_h);
    }
    let mut out = Vec::with_capacity((out_w * out_h) as usize);
    for oy in 0..out_h {
        let fy = (y0 + (oy as f32 + 0.5) * sy - 0.5).clamp(0.0, (src_h - 1) as f32);
        let y_lo = fy.floor() as usize;
        let y_hi = (y_lo + 1).min(src_h - 1);
        let ty = fy - y_lo as f32;
        for ox in 0..out_w {
            let fx = (x0 + (ox as f32 + 0.5) * sx - 0.5).clamp(0.0, (src_w - 1) as f32);
            let x_lo = fx.floor() as usize;
            let x_hi = (x_lo + 1).min(src_w - 1);
            let tx = fx - x_lo as f32;
            let p = |x: usize, y: usize| img.pixels[y * src_w + x];
            let top = p(x_lo, y_lo) * (1.0 - tx) + p(x_hi, y_lo) * tx;
            let bottom = p(x_lo, y_hi) * (1.0 - tx) + p(x_hi, y_hi) * tx;
            out.push(top * (1.0 - ty) + bottom * ty);
        }
    }
    GreyImage::new(out_w, out_h, out)
}

/// Area-averaging downscale: each output pixel is the mean of the source pixels it covers.
fn resize_box(img: &GreyImage, x0: f32, y0: f32, w: f32, h: f32, out_w: u32, out_h: u32) -> GreyImage {
    let src_w = img.width as usize;
    let sx = w / out_w as f32;
    let sy = h / out_h as f32;
    let mut out = Vec::with_capacity((out_w * out_h) as usize);
    for oy in 0..out_h {
        let ya = (y0 + oy as f32 * sy).floor() as usize;
        let yb = ((y0 + (oy + 1) as f32 * sy).ceil() as usize).clamp(ya + 1, img.height as usize);
        for ox in 0..out_w {
            let xa = (x0 + ox as f32 * sx).floor() as usize;
            let xb = ((x0 + (ox + 1) as f32 * sx).ceil() as usize).clamp(xa + 1, img.width as usize);
            let mut sum = 0.0f32;
            for y in ya..yb {
                sum += img.pixels[y * src_w + xa..y * src_w + xb].iter().sum::<f32>();
            }
            out.push(sum / ((yb - ya) * (xb - xa)) as f32);
        }
    }
    GreyImage::new(out_w, out_h, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(w: u32, h: u32) -> GreyImage {
        GreyImage::new(w, h, (0..w * h).map(|i| (i % w) as f32 / (w - 1) as f32).collect())
    }

    #[test]
    fn output_has_the_declared_shape_for_every_mode() {
        for resize in [ResizeMode::Stretch, ResizeMode::CenterCrop, ResizeMode::Letterbox] {
            for channels in [1, 3] {
                let p = Preprocess {
                    size: 32,
                    resize,
                    channels,
                    normalize: Normalize::Imagenet,
                    intensity: Intensity::AsIs,
                };
                assert_eq!(p.apply(&ramp(100, 60)).len(), p.len());
                assert_eq!(p.apply(&ramp(7, 9)).len(), p.len());
            }
        }
    }

    #[test]
    fn normalisations_match_their_formulas() {
        let white = GreyImage::new(4, 4, vec![1.0; 16]);
        let unit = Preprocess {
            size: 4,
            resize: ResizeMode::Stretch,
            channels: 1,
            normalize: Normalize::Unit,
            intensity: Intensity::AsIs,
        };
        assert!(unit.apply(&white).iter().all(|&v| (v - 1.0).abs() < 1e-6));
        let sym = Preprocess { normalize: Normalize::Symmetric, ..unit };
        assert!(sym.apply(&white).iter().all(|&v| (v - 1.0).abs() < 1e-6), "(255-127)/128 = 1");
        let net = Preprocess { normalize: Normalize::Imagenet, channels: 3, ..unit };
        let v = net.apply(&white);
        assert!((v[0] - (1.0 - 0.485) / 0.229).abs() < 1e-5);
        assert!((v[16] - (1.0 - 0.456) / 0.224).abs() < 1e-5);
        assert!((v[32] - (1.0 - 0.406) / 0.225).abs() < 1e-5);
    }

    #[test]
    fn stretch_keeps_a_horizontal_ramp_monotonic_and_in_range() {
        let p = Preprocess {
            size: 16,
            resize: ResizeMode::Stretch,
            channels: 1,
            normalize: Normalize::Unit,
            intensity: Intensity::AsIs,
        };
        for src in [ramp(64, 64), ramp(10, 10), ramp(1000, 40)] {
            let v = p.apply(&src);
            let row = &v[0..16];
            assert!(row.windows(2).all(|w| w[1] >= w[0]), "{row:?}");
            assert!(v.iter().all(|&x| (0.0..=1.0).contains(&x)));
        }
    }

    #[test]
    fn letterbox_pads_with_black_and_keeps_aspect() {
        let p = Preprocess {
            size: 10,
            resize: ResizeMode::Letterbox,
            channels: 1,
            normalize: Normalize::Unit,
            intensity: Intensity::AsIs,
        };
        let wide = GreyImage::new(20, 10, vec![1.0; 200]);
        let out = p.fit(&wide);
        assert_eq!(out.get(5, 0), 0.0, "top rows are padding");
        assert_eq!(out.get(5, 5), 1.0, "centre is image");
    }

    #[test]
    fn equalisation_flattens_the_histogram_keeps_the_order_and_is_idempotent() {
        // A dark, low-contrast film: values crowded in [0.1, 0.3].
        let dark = GreyImage::new(16, 16, (0..256).map(|i| 0.1 + 0.2 * ((i * 7919) % 256) as f32 / 255.0).collect());
        let p = Preprocess {
            size: 16,
            resize: ResizeMode::Stretch,
            channels: 1,
            normalize: Normalize::Unit,
            intensity: Intensity::Equalize,
        };
        let once = p.fit(&dark);
        let (lo, hi) = once.pixels.iter().fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        assert_eq!((lo, hi), (1.0 / 256.0, 1.0), "256 distinct values spread over the whole range");
        for (a, b) in dark.pixels.iter().zip(&dark.pixels[1..]) {
            let (ea, eb) = (
                once.pixels[dark.pixels.iter().position(|x| x == a).unwrap()],
                once.pixels[dark.pixels.iter().position(|x| x == b).unwrap()],
            );
            assert_eq!(a < b, ea < eb, "order of grey levels is kept");
        }
        assert_eq!(p.fit(&once), once, "equalising an equalised image changes nothing");
        // A brighter copy of the same film equalises to the same image: exposure is gone.
        let bright = GreyImage::new(16, 16, dark.pixels.iter().map(|v| v * 2.5 + 0.1).collect());
        assert_eq!(p.fit(&bright), once);
    }

    #[test]
    fn to_film_puts_a_fitted_picture_back_where_the_film_was() {
        // A wide film whose right half is bright, fitted and mapped back in every mode.
        let film = GreyImage::new(40, 20, (0..800).map(|i| if i % 40 >= 20 { 1.0 } else { 0.0 }).collect());
        for resize in [ResizeMode::Stretch, ResizeMode::CenterCrop, ResizeMode::Letterbox] {
            let p =
                Preprocess { size: 16, resize, channels: 1, normalize: Normalize::Unit, intensity: Intensity::AsIs };
            let back = p.to_film(&p.fit(&film), 40, 20);
            assert_eq!((back.width, back.height), (40, 20));
            assert!(back.get(25, 10) > 0.9, "{resize:?}: the bright half stays right");
            assert!(back.get(14, 10) < 0.1, "{resize:?}: the dark half stays left");
            let unseen = resize == ResizeMode::CenterCrop;
            assert_eq!(back.get(36, 10) > 0.9, !unseen, "{resize:?}: the crop never saw the film's right edge");
            assert!(back.get(3, 10) < 0.1, "{resize:?}");
        }
    }

    #[test]
    fn cards_without_intensity_read_as_is_and_as_is_is_not_written() {
        let p: Preprocess =
            serde_json::from_str(r#"{"size": 96, "resize": "stretch", "channels": 3, "normalize": "imagenet"}"#)
                .unwrap();
        assert_eq!(p.intensity, Intensity::AsIs);
        assert!(!serde_json::to_string(&p).unwrap().contains("intensity"), "old cards stay byte-identical");
        let eq = Preprocess { intensity: Intensity::Equalize, ..p };
        assert!(serde_json::to_string(&eq).unwrap().contains(r#""intensity":"equalize""#));
    }

    #[test]
    fn preprocess_round_trips_through_json() {
        let p = Preprocess {
            size: 224,
            resize: ResizeMode::CenterCrop,
            channels: 3,
            normalize: Normalize::Imagenet,
            intensity: Intensity::AsIs,
        };
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<Preprocess>(&json).unwrap(), p);
    }
}
