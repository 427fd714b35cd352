//! Perceptual fingerprints that recognise the same radiograph after it moved between collections.
//!
//! The public COVID collections copy each other's pictures: a 224×224 RGB PNG becomes an 8-bit
//! grey JPEG, a 2,000 px original is shrunk to 512 px or squashed to 224×224, borders are
//! trimmed by a few pixels. Byte hashes see none of that. What survives is the coarse brightness
//! layout, so the fingerprint is built from a 32×32 box-filtered thumbnail of the whole image,
//! stretched to a square (collections squash rather than crop, so stretching makes a squashed
//! copy and its original line up):
//!
//! * [`Fingerprint::phash`]: the classic DCT pHash, 64 bits, one per low-frequency coefficient
//!   (DC row and column left out) above or below their median. Cheap to compare by Hamming
//!   distance, so it is what near-duplicate *candidates* are searched with.
//! * [`Fingerprint::thumb`]: the 16×16 thumbnail, zero-mean and unit-norm, so a candidate pair
//!   can be *confirmed* by correlation. Chest X-rays all share one layout, and pHash alone puts
//!   many unrelated pediatric films within a few bits of each other; the correlation of the
//!   actual thumbnails separates copies (≥ 0.95) from look-alikes.

use crate::image::GreyImage;

/// Side of the square the image is box-filtered to before the DCT.
const HASH_SIDE: usize = 32;
/// Side of the thumbnail kept for confirmation.
pub const THUMB_SIDE: usize = 16;

/// What near-duplicate search needs to know about one image.
#[derive(Debug, Clone, PartialEq)]
pub struct Fingerprint {
    pub phash: u64,
    /// Zero-mean, unit-norm 16×16 thumbnail, row-major.
    pub thumb: [f32; THUMB_SIDE * THUMB_SIDE],
}

impl Fingerprint {
    pub fn of(image: &GreyImage) -> Fingerprint {
        let small = box_downscale(image, HASH_SIDE);
        let phash = dct_phash(&small);
        let thumb = normalised_thumb(&small);
        Fingerprint { phash, thumb }
    }

    /// Pearson correlation of the two thumbnails, in `[-1, 1]`.
    pub fn correlation(&self, other: &Fingerprint) -> f32 {
        self.thumb.iter().zip(other.thumb.iter()).map(|(a, b)| a * b).sum()
    }
}

/// Number of differing bits.
pub fn hamming(a: u64, b: u64) -> u32 {
    (a ^ b).count_ones()
}

/// `side`×`side` average of the image, each source pixel counted in exactly one output cell.
/// Box averaging (rather than point sampling) makes the result insensitive to JPEG noise and
/// to the resampling filter the collection used.
fn box_downscale(image: &GreyImage, side: usize) -> Vec<f32> {
    let (w, h) = (image.width as usize, image.height as usize);
    let mut out = vec![0.0f32; side * side];
    if w == 0 || h == 0 {
        return out;
    }
    let bounds = |cell: usize, len: usize| {
        let start = cell * len / side;
        let end = ((cell + 1) * len / side).max(start + 1).min(len);
        (start.min(len - 1), end)
    };
    for oy in 0..side {
        let (y0, y1) = bounds(oy, h);
        for ox in 0..side {
            let (x0, x1) = bounds(ox, w);
            let mut sum = 0.0f32;
            for y in y0..y1 {
                let row = &image.pixels[y * w + x0..y * w + x1];
                sum += row.iter().sum::<f32>();
            }
            out[oy * side + ox] = sum / ((y1 - y0) * (x1 - x0)) as f32;
        }
    }
    out
}

/// pHash of a 32×32 image: the 8×8 lowest non-DC DCT-II coefficients against their median.
fn dct_phash(small: &[f32]) -> u64 {
    const FREQS: usize = 8;
    let n = HASH_SIDE;
    // cos[(2x+1)uπ / 2n] for u = 1..=8 (the DC term u = 0 carries only overall brightness).
    let mut cos = [[0.0f32; HASH_SIDE]; FREQS];
    for (u, row) in cos.iter_mut().enumerate() {
        for (x, c) in row.iter_mut().enumerate() {
            *c = (((2 * x + 1) * (u + 1)) as f32 * std::f32::consts::PI / (2 * n) as f32).cos();
        }
    }
    // Separable transform: first along rows (x → u), then along columns (y → v).
    let mut along_rows = vec![[0.0f32; FREQS]; n];
    for y in 0..n {
        for u in 0..FREQS {
            along_rows[y][u] = (0..n).map(|x| small[y * n + x] * cos[u][x]).sum();
        }
    }
    let mut coeffs = [0.0f32; FREQS * FREQS];
    for v in 0..FREQS {
        for u in 0..FREQS {
            coeffs[v * FREQS + u] = (0..n).map(|y| along_rows[y][u] * cos[v][y]).sum();
        }
    }
    let mut sorted = coeffs;
    sorted.sort_by(f32::total_cmp);
    let median = (sorted[31] + sorted[32]) / 2.0;
    coeffs.iter().enumerate().fold(0u64, |hash, (i, &c)| if c > median { hash | (1 << i) } else { hash })
}

/// 16×16 average of the 32×32 image, shifted to zero mean and scaled to unit norm
/// (a flat image stays all zeros and so correlates with nothing).
fn normalised_thumb(small: &[f32]) -> [f32; THUMB_SIDE * THUMB_SIDE] {
    let factor = HASH_SIDE / THUMB_SIDE;
    let mut thumb = [0.0f32; THUMB_SIDE * THUMB_SIDE];
    for y in 0..HASH_SIDE {
        for x in 0..HASH_SIDE {
            thumb[(y / factor) * THUMB_SIDE + x / factor] += small[y * HASH_SIDE + x];
        }
    }
    let mean = thumb.iter().sum::<f32>() / thumb.len() as f32;
    thumb.iter_mut().for_each(|v| *v -= mean);
    let norm = thumb.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norm > 1e-3 {
        thumb.iter_mut().for_each(|v| *v /= norm);
    } else {
        // Flat up to rounding: no structure to compare.
        thumb = [0.0; THUMB_SIDE * THUMB_SIDE];
    }
    thumb
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synthetic(width: u32, height: u32) -> GreyImage {
        let pixels = (0..height)
            .flat_map(|y| {
                (0..width).map(move |x| {
                    let (fx, fy) = (x as f32 / width as f32, y as f32 / height as f32);
                    (0.5 + 0.3 * (6.0 * fx).sin() * (4.0 * fy).cos() + 0.2 * fx * fy).clamp(0.0, 1.0)
                })
            })
            .collect();
        GreyImage::new(width, height, pixels)
    }

    fn resized(image: &GreyImage, width: u32, height: u32) -> GreyImage {
        let pixels = (0..height)
            .flat_map(|y| (0..width).map(move |x| image.get(x * image.width / width, y * image.height / height)))
            .collect();
        GreyImage::new(width, height, pixels)
    }

    #[test]
    fn a_resized_copy_keeps_its_fingerprint() {
        let original = synthetic(600, 500);
        let copy = resized(&original, 224, 224);
        let (a, b) = (Fingerprint::of(&original), Fingerprint::of(&copy));
        assert!(hamming(a.phash, b.phash) <= 4, "distance {}", hamming(a.phash, b.phash));
        assert!(a.correlation(&b) > 0.98);
    }

    #[test]
    fn a_different_picture_is_far_away() {
        let a = Fingerprint::of(&synthetic(256, 256));
        let flipped = {
            let s = synthetic(256, 256);
            let pixels = s.pixels.iter().map(|v| 1.0 - v).collect();
            GreyImage::new(256, 256, pixels)
        };
        let b = Fingerprint::of(&flipped);
        assert!(hamming(a.phash, b.phash) > 20);
        assert!(a.correlation(&b) < 0.0);
    }

    #[test]
    fn tiny_and_flat_images_do_not_panic() {
        Fingerprint::of(&GreyImage::new(1, 1, vec![0.5]));
        let flat = Fingerprint::of(&GreyImage::new(40, 3, vec![0.2; 120]));
        assert_eq!(flat.correlation(&flat), 0.0);
    }
}
