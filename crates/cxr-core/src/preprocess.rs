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
}

impl Preprocess {
    /// The seed paper's input: 256×256 RGB, `x/255`.
    pub const SEED: Preprocess =
        Preprocess { size: 256, resize: ResizeMode::Stretch, channels: 3, normalize: Normalize::Unit };

    /// Number of `f32` values one image becomes.
    pub fn len(&self) -> usize {
        (self.channels * self.size * self.size) as usize
    }

    /// The input shape for a batch of `n`: `[n, channels, size, size]`.
    pub fn shape(&self, n: usize) -> [usize; 4] {
        [n, self.channels as usize, self.size as usize, self.size as usize]
    }

    /// Resizes and normalises `img`, appending `channels × size × size` values (CHW) to `out`.
    pub fn apply_into(&self, img: &GreyImage, out: &mut Vec<f32>) {
        let fitted = self.fit(img);
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

    /// The resized grey image, before normalisation (also used to draw heatmaps over).
    pub fn fit(&self, img: &GreyImage) -> GreyImage {
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
                let p = Preprocess { size: 32, resize, channels, normalize: Normalize::Imagenet };
                assert_eq!(p.apply(&ramp(100, 60)).len(), p.len());
                assert_eq!(p.apply(&ramp(7, 9)).len(), p.len());
            }
        }
    }

    #[test]
    fn normalisations_match_their_formulas() {
        let white = GreyImage::new(4, 4, vec![1.0; 16]);
        let unit = Preprocess { size: 4, resize: ResizeMode::Stretch, channels: 1, normalize: Normalize::Unit };
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
        let p = Preprocess { size: 16, resize: ResizeMode::Stretch, channels: 1, normalize: Normalize::Unit };
        for src in [ramp(64, 64), ramp(10, 10), ramp(1000, 40)] {
            let v = p.apply(&src);
            let row = &v[0..16];
            assert!(row.windows(2).all(|w| w[1] >= w[0]), "{row:?}");
            assert!(v.iter().all(|&x| (0.0..=1.0).contains(&x)));
        }
    }

    #[test]
    fn letterbox_pads_with_black_and_keeps_aspect() {
        let p = Preprocess { size: 10, resize: ResizeMode::Letterbox, channels: 1, normalize: Normalize::Unit };
        let wide = GreyImage::new(20, 10, vec![1.0; 200]);
        let out = p.fit(&wide);
        assert_eq!(out.get(5, 0), 0.0, "top rows are padding");
        assert_eq!(out.get(5, 5), 1.0, "centre is image");
    }

    #[test]
    fn preprocess_round_trips_through_json() {
        let p = Preprocess { size: 224, resize: ResizeMode::CenterCrop, channels: 3, normalize: Normalize::Imagenet };
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<Preprocess>(&json).unwrap(), p);
    }
}
