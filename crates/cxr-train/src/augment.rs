//! The seed paper's augmentation (Keras `ImageDataGenerator(rotation_range=5, shear_range=0.2,
//! zoom_range=0.3, horizontal_flip=True, brightness_range=[0.2, 1.0], fill_mode="nearest")`),
//! reimplemented on grey images so training needs no Python.
//!
//! Every random draw comes from the generator passed in, so an epoch is reproducible from its seed.

use cxr_core::GreyImage;
use rand::Rng;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Augmentation {
    /// Maximum rotation either way, in degrees.
    pub rotation_degrees: f32,
    /// Maximum shear factor either way (x' = x + s·y). Keras' `shear_range` is documented in
    /// degrees, but 0.2° would do nothing; the seed's intent (and old Keras) is a visible shear,
    /// so it is read as a factor here (±0.2 ≈ ±11°).
    pub shear: f32,
    /// Zoom factors are drawn from `[1 − zoom, 1 + zoom]`, independently for x and y (as Keras does).
    pub zoom: f32,
    pub horizontal_flip: bool,
    /// Brightness factor range, multiplied into every pixel.
    pub brightness: [f32; 2],
}

impl Augmentation {
    /// The augmentation of the write-up this project started from (`SEED.txt`): ±5° rotation,
    /// shear 0.2, zoom 0.3, horizontal flips, brightness 0.2–1.0.
    pub const SEED_PAPER: Augmentation =
        Augmentation { rotation_degrees: 5.0, shear: 0.2, zoom: 0.3, horizontal_flip: true, brightness: [0.2, 1.0] };

    /// A milder variant for films that are already framed alike: ±5° rotation, shear 0.05, zoom
    /// 0.1, no flips (a flipped chest puts the heart on the wrong side), brightness 0.8–1.2.
    pub const MILD: Augmentation =
        Augmentation { rotation_degrees: 5.0, shear: 0.05, zoom: 0.1, horizontal_flip: false, brightness: [0.8, 1.2] };

    /// No change at all (validation, and `--no-augment`).
    pub const NONE: Augmentation =
        Augmentation { rotation_degrees: 0.0, shear: 0.0, zoom: 0.0, horizontal_flip: false, brightness: [1.0, 1.0] };

    /// A randomly transformed copy of `img` (same size). Geometry is an inverse affine map about the
    /// centre with bilinear sampling; coordinates outside the image take the nearest edge pixel.
    pub fn apply<R: Rng>(&self, img: &GreyImage, rng: &mut R) -> GreyImage {
        let mut draw = |half_width: f32| if half_width > 0.0 { rng.gen_range(-half_width..=half_width) } else { 0.0 };
        let theta = draw(self.rotation_degrees).to_radians();
        let shear = draw(self.shear);
        let zoom_x = 1.0 + draw(self.zoom);
        let zoom_y = 1.0 + draw(self.zoom);
        let flip = self.horizontal_flip && rng.gen_bool(0.5);
        let [lo, hi] = self.brightness;
        let brightness = if hi > lo { rng.gen_range(lo..=hi) } else { lo };

        // Output → input coordinates: rotation · shear · zoom (Keras' composition order).
        let (sin, cos) = theta.sin_cos();
        let m = [[cos * zoom_x, (cos * shear - sin) * zoom_y], [sin * zoom_x, (sin * shear + cos) * zoom_y]];
        let (w, h) = (img.width as usize, img.height as usize);
        let (cx, cy) = ((w as f32 - 1.0) / 2.0, (h as f32 - 1.0) / 2.0);
        let identity = theta == 0.0 && shear == 0.0 && zoom_x == 1.0 && zoom_y == 1.0;
        let mut out = Vec::with_capacity(w * h);
        for y in 0..h {
            for x in 0..w {
                let ox = if flip { (w - 1 - x) as f32 } else { x as f32 };
                let value = if identity {
                    img.pixels[y * w + ox as usize]
                } else {
                    let (dx, dy) = (ox - cx, y as f32 - cy);
                    let sx = m[0][0] * dx + m[0][1] * dy + cx;
                    let sy = m[1][0] * dx + m[1][1] * dy + cy;
                    sample_bilinear_clamped(img, sx, sy)
                };
                out.push((value * brightness).clamp(0.0, 1.0));
            }
        }
        GreyImage::new(img.width, img.height, out)
    }
}

/// Bilinear sample at `(x, y)`, clamping coordinates to the image ("nearest" fill).
fn sample_bilinear_clamped(img: &GreyImage, x: f32, y: f32) -> f32 {
    let (w, h) = (img.width as usize, img.height as usize);
    let x = x.clamp(0.0, (w - 1) as f32);
    let y = y.clamp(0.0, (h - 1) as f32);
    let (x0, y0) = (x.floor() as usize, y.floor() as usize);
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let (tx, ty) = (x - x0 as f32, y - y0 as f32);
    let p = |xx: usize, yy: usize| img.pixels[yy * w + xx];
    let top = p(x0, y0) * (1.0 - tx) + p(x1, y0) * tx;
    let bottom = p(x0, y1) * (1.0 - tx) + p(x1, y1) * tx;
    top * (1.0 - ty) + bottom * ty
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn ramp() -> GreyImage {
        GreyImage::new(16, 8, (0..128).map(|i| (i % 16) as f32 / 15.0).collect())
    }

    #[test]
    fn no_augmentation_is_the_identity() {
        let img = ramp();
        let out = Augmentation::NONE.apply(&img, &mut ChaCha8Rng::seed_from_u64(1));
        assert_eq!(out, img);
    }

    #[test]
    fn same_seed_same_image_and_values_stay_in_range() {
        let img = ramp();
        let a = Augmentation::SEED_PAPER.apply(&img, &mut ChaCha8Rng::seed_from_u64(5));
        let b = Augmentation::SEED_PAPER.apply(&img, &mut ChaCha8Rng::seed_from_u64(5));
        let c = Augmentation::SEED_PAPER.apply(&img, &mut ChaCha8Rng::seed_from_u64(6));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.pixels.iter().all(|v| (0.0..=1.0).contains(v)));
    }

    #[test]
    fn flip_only_mirrors_rows() {
        let img = ramp();
        let flip = Augmentation { horizontal_flip: true, ..Augmentation::NONE };
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let flipped = (0..20).map(|_| flip.apply(&img, &mut rng)).find(|o| *o != img).expect("half the draws flip");
        assert_eq!(flipped.get(0, 3), img.get(15, 3));
        assert_eq!(flipped.get(15, 0), img.get(0, 0));
    }
}
