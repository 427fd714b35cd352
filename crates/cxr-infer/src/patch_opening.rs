//! The opening of a patch network — a convolution with kernel = stride and no padding, an
//! optional ReLU, an optional max pool with kernel = stride — computed in one pass before tract
//! runs the rest of the graph (`patch_input` cuts the graph and builds this).
//!
//! Why not leave it to tract: handed this opening as a 1×1 convolution on patches (k = 9 taps)
//! and an elementwise `Max` of the pool phases, tract 0.23 spent 0.66 of the seed CNN's 0.92 ms
//! there (BENCHMARKS.md, node profile). Its matrix-product planner puts the larger dimension on
//! the kernel's long side, so the 64 output channels land on the 2-wide side of a 40×2 kernel,
//! and the four pool phases (1.8 MB of activations, 4× what survives the pool) are stored and read
//! back for the `Max`. Here an 8-pixel block of every tap and phase (288 values) stays in L1 while
//! each channel's taps are multiplied into it, the phases are maxed in registers, and only the
//! pooled value is written, once.
//!
//! The arithmetic is the same sum of products tract does, in a different order, so results match
//! it up to float rounding (checked against the graph as written in `patch_input`'s
//! tests and against a direct convolution below). On x86-64 the inner loop is written in AVX-512
//! or AVX2/FMA intrinsics, the widest the CPU has, picked at run time ([`OpeningKernel`]; on the
//! development machine the AVX-512 one takes 0.12 ms of the seed CNN's 0.41, the AVX2 one 0.27,
//! `cargo bench --bench opening`); elsewhere it is plain Rust the compiler vectorises (aarch64
//! with fused multiply-add, which its baseline has).
//!
//! An int8 graph's opening (in the float form `int8_float` gives it) is the same computation
//! with its values put on quantization grids: the input rounded onto the input's grid, the
//! convolution's output onto its own grid before the pool. Both are [`Grid`]s here, applied to
//! each gathered block of input and, in one pass, to each image's pooled output, so an int8
//! file's opening costs little more than its fp32 twin's.

use cxr_core::GreyImage;

/// How preprocessing lays out one image for a rewritten model: `[k·k, p·p·q, q]`, where plane
/// `ky·k + kx` holds tap (ky, kx) of every patch, and row `phase·q + qy` holds pool phase
/// `phase = py·p + px` of pooled row `qy`. Values are the fitted grey image, not normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatchLayout {
    /// Kernel side = stride of the patch convolution.
    pub kernel: usize,
    /// Pool side = stride of the folded max pool; 1 when no pool was folded.
    pub pool: usize,
    /// Outputs per side after the pool (or after the convolution when `pool` is 1).
    pub cells: usize,
}

impl PatchLayout {
    /// `[n, k·k, p·p·q, q]`.
    pub fn shape(&self, n: usize) -> [usize; 4] {
        let (k, p, q) = (self.kernel, self.pool, self.cells);
        [n, k * k, p * p * q, q]
    }

    /// Values per image.
    #[allow(clippy::len_without_is_empty)] // a layout always has values
    pub fn len(&self) -> usize {
        self.shape(1).iter().product()
    }

    /// Appends `fitted` (the card-sized grey image) in this layout.
    pub fn write(&self, fitted: &GreyImage, out: &mut Vec<f32>) {
        let (k, p, q) = (self.kernel, self.pool, self.cells);
        let width = fitted.width as usize;
        let start = out.len();
        out.resize(start + self.len(), 0.0);
        let planes = out[start..].chunks_exact_mut(p * p * q * q);
        for (tap, plane) in planes.enumerate() {
            let (ky, kx) = (tap / k, tap % k);
            for (row_index, row) in plane.chunks_exact_mut(q).enumerate() {
                let (phase, qy) = (row_index / q, row_index % q);
                let (py, px) = (phase / p, phase % p);
                let source = &fitted.pixels[((qy * p + py) * k + ky) * width..];
                for (qx, value) in row.iter_mut().enumerate() {
                    *value = source[(qx * p + px) * k + kx];
                }
            }
        }
    }
}

/// A quantization grid of an int8 graph: `QuantizeLinear` then `DequantizeLinear` with the same
/// scale and zero point, which round a value to the nearest grid point and saturate it at the
/// grid's ends (the uint8 grid's lower end is what makes a fused ReLU). Rounding is as tract
/// does it: times the reciprocal of the step, ties to even.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Grid {
    /// The value grid point `zero` stands for: 0 on a graph's own values; the normalisation
    /// mean for an input grid applied to grey pixels (`patch_input` folds the normalisation).
    pub origin: f32,
    /// The value between two grid points.
    pub step: f32,
    /// `1 / step`, as tract multiplies by it.
    pub per_step: f32,
    /// The zero point, and the lowest and highest grid points (0 and 255 for uint8).
    pub zero: f32,
    pub lowest: f32,
    pub highest: f32,
}

impl Grid {
    /// The grid of a `QuantizeLinear` with this scale and zero point, on values of its type's range.
    pub fn new(scale: f32, zero: f32, (lowest, highest): (f32, f32)) -> Grid {
        Grid { origin: 0.0, step: scale, per_step: scale.recip(), zero, lowest, highest }
    }

    /// The same grid seen from values `mean + std·x` rather than `x`.
    pub fn scaled(self, mean: f32, std: f32) -> Grid {
        let step = self.step * std;
        Grid { origin: mean, step, per_step: step.recip(), ..self }
    }

    /// `v` on the grid.
    ///
    /// Saturated first (the bounds are whole steps, so that commutes with rounding), then rounded
    /// by adding and removing 1.5·2²³, which leaves no fraction bits and so rounds to nearest,
    /// ties to even, for any |u| < 2²². Plain adds, multiplies, min and max vectorise on every
    /// target. (A first form, with `round_ties_even` and `clamp`, applied as each block was
    /// stored, made the int8 opening 0.6 ms slower than the fp32 one; this one, in passes of
    /// its own over the gathered block and the output, about 0.06.)
    #[inline(always)]
    pub fn snap(&self, v: f32) -> f32 {
        const ROUNDER: f32 = 12_582_912.0;
        let u = ((v - self.origin) * self.per_step).max(self.lowest - self.zero).min(self.highest - self.zero);
        let rounded = (u + ROUNDER) - ROUNDER;
        self.origin + rounded * self.step
    }
}

/// Which inner loop computes the opening. [`PatchOpening::run`] takes the widest the CPU has;
/// the others stay callable through [`PatchOpening::run_on`] so tests check every form this
/// machine can run, not only the one it would pick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpeningKernel {
    /// Plain Rust without fused multiply-add or run-time CPU dispatch: what every target runs.
    Portable,
    /// Plain Rust with fused multiply-add, which aarch64's baseline has; NEON by the compiler.
    #[cfg(target_arch = "aarch64")]
    PortableFused,
    /// AVX2 and FMA intrinsics, 8 output pixels and 2 channels at a time.
    #[cfg(target_arch = "x86_64")]
    Avx2Fma,
    /// AVX-512 intrinsics, 16 output pixels and 4 channels at a time: twice the lanes of AVX2
    /// and, with 32 registers, twice the channels, so each loaded block of pixels feeds 16
    /// multiply-adds instead of 8.
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl OpeningKernel {
    /// Every kernel of this target, narrowest first.
    const ALL: &[OpeningKernel] = &[
        OpeningKernel::Portable,
        #[cfg(target_arch = "aarch64")]
        OpeningKernel::PortableFused,
        #[cfg(target_arch = "x86_64")]
        OpeningKernel::Avx2Fma,
        #[cfg(target_arch = "x86_64")]
        OpeningKernel::Avx512,
    ];

    /// Whether this CPU has the features the kernel needs ([`crate::cpu`]).
    fn runs_here(self) -> bool {
        match self {
            OpeningKernel::Portable => true,
            #[cfg(target_arch = "aarch64")]
            OpeningKernel::PortableFused => true,
            #[cfg(target_arch = "x86_64")]
            OpeningKernel::Avx2Fma => crate::cpu::has_avx2_fma(),
            #[cfg(target_arch = "x86_64")]
            OpeningKernel::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
        }
    }

    /// Every kernel this CPU can run, narrowest first.
    pub fn available() -> Vec<OpeningKernel> {
        Self::ALL.iter().copied().filter(|k| k.runs_here()).collect()
    }

    /// The widest kernel this CPU can run: the one [`PatchOpening::run`] uses.
    pub fn best() -> OpeningKernel {
        Self::ALL.iter().copied().rev().find(|k| k.runs_here()).unwrap_or(OpeningKernel::Portable)
    }
}

/// The folded opening of a patch network, ready to run on inputs in its [`PatchLayout`].
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOpening {
    pub layout: PatchLayout,
    /// Output channels of the convolution.
    pub channels: usize,
    /// `[channels, kernel²]`: per channel, one weight per tap, with the card's normalisation and
    /// the input planes already folded in (`patch_input`).
    pub weights: Vec<f32>,
    /// `[channels]`, likewise folded.
    pub bias: Vec<f32>,
    /// Whether a ReLU follows the convolution (applied after the pool's max: they commute).
    pub relu: bool,
    /// The grid input values are put on before the convolution (an int8 graph's input
    /// quantization), in the grey units the layout holds.
    pub input_grid: Option<Grid>,
    /// The grid the convolution's output is put on (an int8 graph's output quantization), after
    /// bias and ReLU; like the ReLU it commutes with the pool's max.
    pub output_grid: Option<Grid>,
}

impl PatchOpening {
    /// `[channels, cells, cells]`: what the rest of the graph takes per image.
    pub fn output_dims(&self) -> [usize; 3] {
        [self.channels, self.layout.cells, self.layout.cells]
    }

    /// Values written per image.
    pub fn output_len(&self) -> usize {
        self.output_dims().iter().product()
    }

    /// Runs every image in `input` (concatenated, each [`PatchLayout::len`] values) into `out`
    /// (each [`PatchOpening::output_len`] values, NCHW), with [`OpeningKernel::best`].
    pub fn run(&self, input: &[f32], out: &mut [f32]) {
        self.run_on(OpeningKernel::best(), input, out)
    }

    /// [`PatchOpening::run`] with a chosen kernel. Panics if this CPU cannot run it.
    pub fn run_on(&self, kernel: OpeningKernel, input: &[f32], out: &mut [f32]) {
        match kernel {
            OpeningKernel::Portable => self.run_with::<Portable<Separate>, 8>(input, out),
            #[cfg(target_arch = "aarch64")]
            OpeningKernel::PortableFused => self.run_with::<Portable<Fused>, 8>(input, out),
            #[cfg(target_arch = "x86_64")]
            OpeningKernel::Avx2Fma => {
                assert!(kernel.runs_here(), "this CPU lacks AVX2 or FMA");
                // SAFETY: the CPU has both features, checked just above.
                unsafe { self.run_avx2_fma(input, out) }
            }
            #[cfg(target_arch = "x86_64")]
            OpeningKernel::Avx512 => {
                assert!(kernel.runs_here(), "this CPU lacks AVX-512");
                // SAFETY: the CPU has AVX-512F, checked just above.
                unsafe { self.run_avx512(input, out) }
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run_avx2_fma(&self, input: &[f32], out: &mut [f32]) {
        self.run_with::<Avx2Fma, 8>(input, out)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn run_avx512(&self, input: &[f32], out: &mut [f32]) {
        self.run_with::<Avx512, 16>(input, out)
    }

    #[inline(always)]
    fn run_with<K: BlockKernel<L>, const L: usize>(&self, input: &[f32], out: &mut [f32]) {
        let images = input.len() / self.layout.len();
        assert_eq!(images * self.layout.len(), input.len(), "input must hold whole images");
        assert_eq!(out.len(), images * self.output_len(), "out must hold one output per image");
        assert_eq!(self.weights.len(), self.channels * self.layout.kernel * self.layout.kernel);
        assert_eq!(self.bias.len(), self.channels);
        // Four phases at a time (a 2×2 pool) keep independent sums in flight, enough to hide
        // the multiply-add latency; other pools go one phase at a time.
        if (self.layout.pool * self.layout.pool).is_multiple_of(4) {
            self.run_phases::<K, L, 4>(input, out)
        } else {
            self.run_phases::<K, L, 1>(input, out)
        }
    }

    #[inline(always)]
    fn run_phases<K: BlockKernel<L>, const L: usize, const PH: usize>(&self, input: &[f32], out: &mut [f32]) {
        let PatchLayout { kernel, pool, cells } = self.layout;
        let (taps, phases, pixels) = (kernel * kernel, pool * pool, cells * cells);
        // Every tap of every phase for one block of output pixels, zero-padded past the last pixel.
        let mut block = vec![[0.0f32; L]; phases * taps];
        let mut maxima = [[0.0f32; L]; MAX_GROUP];
        for (image, pooled) in input.chunks_exact(self.layout.len()).zip(out.chunks_exact_mut(self.output_len())) {
            for start in (0..pixels).step_by(L) {
                let width = L.min(pixels - start);
                let block_rows = block.chunks_exact_mut(taps).enumerate();
                let rows =
                    block_rows.flat_map(|(phase, row)| row.iter_mut().enumerate().map(move |(t, l)| (phase, t, l)));
                for (phase, tap, lanes) in rows {
                    let from = tap * phases * pixels + phase * pixels + start;
                    if width == L {
                        *lanes = image[from..from + L].try_into().expect("L values");
                    } else {
                        *lanes = [0.0; L];
                        lanes[..width].copy_from_slice(&image[from..from + width]);
                    }
                }
                if let Some(grid) = &self.input_grid {
                    for v in block.as_flattened_mut() {
                        *v = grid.snap(*v);
                    }
                }
                let mut channel = 0;
                while channel < self.channels {
                    let group = K::GROUP.min(self.channels - channel);
                    let weights = &self.weights[channel * taps..(channel + group) * taps];
                    // SAFETY: K's features were checked before `run_on` chose it; `weights`
                    // holds `group`·taps values and `maxima` has room for `group` ≤ MAX_GROUP.
                    unsafe { K::max_of_phases::<PH>(&block, taps, weights, &mut maxima[..group]) };
                    for (c, sums) in maxima[..group].iter().enumerate() {
                        let bias = self.bias[channel + c];
                        let mut values = *sums;
                        for v in &mut values {
                            *v += bias;
                        }
                        if self.relu {
                            for v in &mut values {
                                *v = if *v > 0.0 { *v } else { 0.0 };
                            }
                        }
                        let at = (channel + c) * pixels + start;
                        if width == L {
                            // A constant length: one vector store rather than a call to memcpy.
                            pooled[at..at + L].copy_from_slice(&values);
                        } else {
                            pooled[at..at + width].copy_from_slice(&values[..width]);
                        }
                    }
                    channel += group;
                }
            }
            // One pass over the image's output: a plain loop over memory vectorises where the
            // per-block store above did not.
            if let Some(grid) = &self.output_grid {
                for v in pooled.iter_mut() {
                    *v = grid.snap(*v);
                }
            }
        }
    }
}

/// The most channels any kernel computes together.
const MAX_GROUP: usize = 4;

/// The inner loop: for up to `GROUP` channels, the max over every pool phase of the dot product
/// of the channel's tap weights with one block of `L` output pixels (before bias and ReLU).
trait BlockKernel<const L: usize> {
    /// Channels computed together: their sums must all fit in registers beside the pixels.
    const GROUP: usize;

    /// `block`: `[phase][tap]` lanes; `weights`: `maxima.len() × taps`, with `maxima.len()`
    /// from 1 to `GROUP`. Unsafe because an implementation may need CPU features its caller checked.
    unsafe fn max_of_phases<const PH: usize>(block: &[[f32; L]], taps: usize, weights: &[f32], maxima: &mut [[f32; L]]);
}

/// Plain Rust on arrays of lanes, vectorised by the compiler as the target allows. One channel
/// at a time: SSE2's and NEON's 16 128-bit registers cannot hold more sums.
struct Portable<M>(std::marker::PhantomData<M>);

impl<M: MulAdd> BlockKernel<8> for Portable<M> {
    const GROUP: usize = 1;

    #[inline(always)]
    unsafe fn max_of_phases<const PH: usize>(
        block: &[[f32; 8]],
        taps: usize,
        weights: &[f32],
        maxima: &mut [[f32; 8]],
    ) {
        let best = &mut maxima[0];
        *best = [f32::NEG_INFINITY; 8];
        for group in block.chunks_exact(PH * taps) {
            let mut sums = [[0.0f32; 8]; PH];
            for (tap, &w) in weights[..taps].iter().enumerate() {
                for (ph, sum) in sums.iter_mut().enumerate() {
                    let x = &group[ph * taps + tap];
                    for i in 0..8 {
                        sum[i] = M::mul_add(x[i], w, sum[i]);
                    }
                }
            }
            for sum in &sums {
                for i in 0..8 {
                    best[i] = if sum[i] > best[i] { sum[i] } else { best[i] };
                }
            }
        }
    }
}

/// Calls `$kernel::<CH, PH>` for the number of channels asked, a constant in each arm so the
/// sums stay in registers.
#[cfg(target_arch = "x86_64")]
macro_rules! by_channel_count {
    ($kernel:ident, $block:expr, $taps:expr, $weights:expr, $maxima:expr) => {
        match $maxima.len() {
            1 => $kernel::<1, PH>($block, $taps, $weights, $maxima),
            2 => $kernel::<2, PH>($block, $taps, $weights, $maxima),
            3 => $kernel::<3, PH>($block, $taps, $weights, $maxima),
            4 => $kernel::<4, PH>($block, $taps, $weights, $maxima),
            n => unreachable!("{n} channels at once"),
        }
    };
}

/// AVX2 registers and fused multiply-add, written out: the compiler's own vectorisation of the
/// portable loop kept to 128-bit halves and did the multiplies and adds apart. (That was one of
/// three reasons a first version of this opening took ~1 ms; the others were a memcpy call per
/// block and an integer division per tap. BENCHMARKS.md's node profile times this one.)
#[cfg(target_arch = "x86_64")]
struct Avx2Fma;

#[cfg(target_arch = "x86_64")]
impl BlockKernel<8> for Avx2Fma {
    /// 2 channels × 4 phases = 8 sums, plus 4 pixel registers, of AVX2's 16.
    const GROUP: usize = 2;

    #[inline(always)]
    unsafe fn max_of_phases<const PH: usize>(
        block: &[[f32; 8]],
        taps: usize,
        weights: &[f32],
        maxima: &mut [[f32; 8]],
    ) {
        // SAFETY: the caller checked AVX2 and FMA; every load and store is of a whole [f32; 8].
        unsafe { by_channel_count!(max_of_phases_avx2, block, taps, weights, maxima) }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
fn max_of_phases_avx2<const CH: usize, const PH: usize>(
    block: &[[f32; 8]],
    taps: usize,
    weights: &[f32],
    maxima: &mut [[f32; 8]],
) {
    use std::arch::x86_64::*;
    let weights: &[f32] = &weights[..CH * taps];
    let mut best = [_mm256_set1_ps(f32::NEG_INFINITY); CH];
    for group in block.chunks_exact(PH * taps) {
        let mut sums = [[_mm256_setzero_ps(); PH]; CH];
        for tap in 0..taps {
            let mut x = [_mm256_setzero_ps(); PH];
            for (ph, x) in x.iter_mut().enumerate() {
                // SAFETY: a [f32; 8] is 8 readable floats; loadu needs no alignment.
                *x = unsafe { _mm256_loadu_ps(group[ph * taps + tap].as_ptr()) };
            }
            for (c, channel_sums) in sums.iter_mut().enumerate() {
                let w = _mm256_set1_ps(weights[c * taps + tap]);
                for (sum, &x) in channel_sums.iter_mut().zip(&x) {
                    *sum = _mm256_fmadd_ps(x, w, *sum);
                }
            }
        }
        for (b, channel_sums) in best.iter_mut().zip(&sums) {
            for &sum in channel_sums {
                *b = _mm256_max_ps(*b, sum);
            }
        }
    }
    for (o, b) in maxima[..CH].iter_mut().zip(best) {
        // SAFETY: a [f32; 8] is 8 writable floats.
        unsafe { _mm256_storeu_ps(o.as_mut_ptr(), b) };
    }
}

/// AVX-512: the AVX2 loop on 16 lanes and 4 channels (16 sums and 4 pixel registers of 32);
/// the weight broadcasts fold into the multiply-adds as memory operands.
#[cfg(target_arch = "x86_64")]
struct Avx512;

#[cfg(target_arch = "x86_64")]
impl BlockKernel<16> for Avx512 {
    const GROUP: usize = 4;

    #[inline(always)]
    unsafe fn max_of_phases<const PH: usize>(
        block: &[[f32; 16]],
        taps: usize,
        weights: &[f32],
        maxima: &mut [[f32; 16]],
    ) {
        // SAFETY: the caller checked AVX-512F; every load and store is of a whole [f32; 16].
        unsafe { by_channel_count!(max_of_phases_avx512, block, taps, weights, maxima) }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
fn max_of_phases_avx512<const CH: usize, const PH: usize>(
    block: &[[f32; 16]],
    taps: usize,
    weights: &[f32],
    maxima: &mut [[f32; 16]],
) {
    use std::arch::x86_64::*;
    let weights: &[f32] = &weights[..CH * taps];
    let mut best = [_mm512_set1_ps(f32::NEG_INFINITY); CH];
    for group in block.chunks_exact(PH * taps) {
        let mut sums = [[_mm512_setzero_ps(); PH]; CH];
        for tap in 0..taps {
            let mut x = [_mm512_setzero_ps(); PH];
            for (ph, x) in x.iter_mut().enumerate() {
                // SAFETY: a [f32; 16] is 16 readable floats; loadu needs no alignment.
                *x = unsafe { _mm512_loadu_ps(group[ph * taps + tap].as_ptr()) };
            }
            for (c, channel_sums) in sums.iter_mut().enumerate() {
                let w = _mm512_set1_ps(weights[c * taps + tap]);
                for (sum, &x) in channel_sums.iter_mut().zip(&x) {
                    *sum = _mm512_fmadd_ps(x, w, *sum);
                }
            }
        }
        for (b, channel_sums) in best.iter_mut().zip(&sums) {
            for &sum in channel_sums {
                *b = _mm512_max_ps(*b, sum);
            }
        }
    }
    for (o, b) in maxima[..CH].iter_mut().zip(best) {
        // SAFETY: a [f32; 16] is 16 writable floats.
        unsafe { _mm512_storeu_ps(o.as_mut_ptr(), b) };
    }
}

/// `a·b + c`, fused (one rounding, one instruction where the CPU has it) or as two operations.
trait MulAdd {
    fn mul_add(a: f32, b: f32, c: f32) -> f32;
}

/// Only where FMA is in the baseline: elsewhere `f32::mul_add` is a slow library call.
#[cfg(target_arch = "aarch64")]
struct Fused;

#[cfg(target_arch = "aarch64")]
impl MulAdd for Fused {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}

struct Separate;

impl MulAdd for Separate {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator, so the test needs no dependency and fails the same way twice.
    fn values(seed: u64, n: usize) -> Vec<f32> {
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// The opening computed the plain way, from the image itself, in the order a graph writes
    /// it: input grid, convolution, ReLU, output grid, max pool.
    fn direct(opening: &PatchOpening, img: &GreyImage) -> Vec<f32> {
        let on = |grid: Option<Grid>, v: f32| grid.map_or(v, |g| g.snap(v));
        let PatchLayout { kernel: k, pool: p, cells: q } = opening.layout;
        let width = img.width as usize;
        let mut out = Vec::new();
        for c in 0..opening.channels {
            for qy in 0..q {
                for qx in 0..q {
                    let mut best = f32::NEG_INFINITY;
                    for py in 0..p {
                        for px in 0..p {
                            let (y, x) = (qy * p + py, qx * p + px);
                            let mut sum = opening.bias[c] as f64;
                            for ky in 0..k {
                                for kx in 0..k {
                                    let pixel = on(opening.input_grid, img.pixels[(y * k + ky) * width + x * k + kx]);
                                    sum += opening.weights[c * k * k + ky * k + kx] as f64 * pixel as f64;
                                }
                            }
                            let value = if opening.relu { (sum as f32).max(0.0) } else { sum as f32 };
                            best = best.max(on(opening.output_grid, value));
                        }
                    }
                    out.push(best);
                }
            }
        }
        out
    }

    /// Two images per run; cells chosen so that the pixel count is not a multiple of the block
    /// (the zero-padded tail), with and without a pool, a ReLU and int8 grids.
    #[test]
    fn opening_matches_a_direct_convolution_relu_and_pool_in_every_form() {
        // An int8 input grid seen through a normalisation, and a uint8 output grid that saturates
        // at both ends (the data's sums reach about ±3).
        let in_grid = Grid::new(0.02, 3.0, (-128.0, 127.0)).scaled(0.2, 0.8);
        let out_grid = Grid::new(0.01, 0.0, (0.0, 255.0));
        let plain = [(3, 2, 5, true), (3, 1, 7, false), (2, 3, 3, true), (4, 2, 4, false)].map(|f| (f, None));
        for ((kernel, pool, cells, relu), grids) in
            plain.into_iter().chain([((3, 2, 5, false), Some((in_grid, out_grid)))])
        {
            let layout = PatchLayout { kernel, pool, cells };
            let channels = 7;
            let opening = PatchOpening {
                layout,
                channels,
                weights: values(1, channels * kernel * kernel),
                bias: values(2, channels),
                relu,
                input_grid: grids.map(|g| g.0),
                output_grid: grids.map(|g| g.1),
            };
            // Images a little larger than the opening reads, as floor-mode pooling allows.
            let side = (cells * pool * kernel + 1) as u32;
            let images: Vec<GreyImage> =
                (0..2).map(|i| GreyImage::new(side, side, values(10 + i, (side * side) as usize))).collect();
            let mut input = Vec::new();
            for img in &images {
                layout.write(img, &mut input);
            }
            let expected: Vec<f32> = images.iter().flat_map(|img| direct(&opening, img)).collect();
            let mut dispatched = vec![f32::NAN; expected.len()];
            opening.run(&input, &mut dispatched);
            let kernels = OpeningKernel::available();
            assert!(kernels.contains(&OpeningKernel::best()));
            for kernel in kernels {
                let mut got = vec![f32::NAN; expected.len()];
                opening.run_on(kernel, &input, &mut got);
                let form = format!("{kernel:?}");
                // On a grid, a sum within float rounding of a half step may land one step away.
                let mut off_by_a_step = 0;
                for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
                    if grids.is_some() && ((g - e).abs() - out_grid.step).abs() <= 1e-5 {
                        off_by_a_step += 1;
                        continue;
                    }
                    assert!((g - e).abs() <= 1e-5, "{form}, {layout:?} relu {relu}: value {i} is {g}, expected {e}");
                }
                assert!(off_by_a_step <= 1, "{form}: {off_by_a_step} values a grid step away");
            }
            if grids.is_some() {
                let highest = out_grid.snap(f32::MAX);
                assert!(
                    dispatched.contains(&0.0) && dispatched.contains(&highest),
                    "both ends of the grid are reached"
                );
                assert!(dispatched.iter().all(|v| (v / out_grid.step - (v / out_grid.step).round()).abs() < 1e-3));
            } else if relu {
                assert!(dispatched.contains(&0.0), "the data should make the ReLU clip something");
            } else {
                assert!(dispatched.iter().any(|&v| v < 0.0), "without a ReLU some outputs are negative");
            }
        }
    }
}
