//! Depthwise convolutions run by cxr's own kernel instead of tract's.
//!
//! Depthwise-separable networks (EfficientNet-Lite0, MobileNetV2) spend about half of their time
//! in tract 0.23 in its `DepthWiseConv`: on x86 and ARM it has no vectorised kernel for the
//! channel-first layout ONNX files use (only wasm has one), and it walks each channel's plane
//! zone by zone, so a 7 × 7 plane of 1,152 channels costs as much as a 14 × 14 plane of 480
//! (about 1 ms each in `efficientnet-lite0-three-class`'s profile, BENCHMARKS.md). At a smaller
//! input the time hardly falls, because the cost is per channel, not per pixel.
//!
//! [`rewrite`] replaces every depthwise `Conv` of a decluttered graph (f32, NCHW, 2-D, no
//! dilation, constant weights) by [`DepthwiseConv`] (NCHW, or CHW once a batch of one is dropped), before tract optimises the rest. Its kernel
//! copies each channel's plane once into a zero-bordered buffer whose columns are split by the
//! stride's phase, so that every tap of every output row reads a contiguous run of the buffer,
//! and computes output rows eight pixels at a time, the eight sums kept in registers across all
//! taps. Rows are padded to a multiple of eight in the buffer, so a 7-pixel row is one block and
//! no row has a scalar tail. The same plain Rust is compiled once more for AVX2 and FMA on x86-64
//! and picked at run time; aarch64's baseline already has NEON.
//!
//! Only channel-first convolutions are replaced. On aarch64 tract's decluttering moves most of
//! EfficientNet-Lite0 to channel-last (`HWC`), where its own depthwise loop runs over contiguous
//! channels; there `cxr` takes only the convolutions left channel-first (the first block's).
//!
//! Sums run in another order than tract's, so outputs differ by float rounding only; the tests
//! check them against tract's own depthwise convolution and on a shipped model's probabilities.
//!
//! Measured side by side (`cxr bench -m FILE --runs 100–200 -j 1` alternated with
//! `CXR_GRAPH_FORM=onnx`, 2-core x86, medians of p50s): `efficientnet-lite0-three-class` 24.0 against
//! 32.8 ms (0.75×), EfficientNet-Lite0 at 160 px 13.3 against 18.9 ms, MobileNetV2 19.8 against
//! 23.5 ms. What is left in those networks is mostly tract's matrix products for the 1 × 1
//! convolutions. The kernel runs on the calling thread, like tract's depthwise convolution.

use crate::clip::Clip;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::cnn::{Conv, KernelFormat};
use tract_onnx::tract_core::ops::nn::DataFormat;

/// Output pixels computed together: one AVX2 register, two NEON registers.
const BLOCK: usize = 8;

/// One depthwise convolution over `[n, channels, h, w]` or, once decluttering has dropped a batch
/// of one, `[channels, h, w]`; its weights and bias are read at rewrite time.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DepthwiseConv {
    channels: usize,
    /// Input height and width.
    input: [usize; 2],
    /// Output height and width.
    output: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
    /// Zero rows above and columns left of the input.
    pad_before: [usize; 2],
    /// `[channels, kernel height × kernel width]`.
    weights: Arc<Tensor>,
    /// `[channels]`.
    bias: Arc<Tensor>,
    /// The clamp applied to each output ([`crate::clip`]).
    clip: Clip,
}

/// Where each tap reads in the phase-split buffer of one channel (see the module doc).
struct Buffer {
    /// Columns of one stride phase.
    phase_width: usize,
    /// Floats per buffer row: `stride × phase_width`.
    row: usize,
    rows: usize,
    /// Blocks of [`BLOCK`] pixels per output row, the last one partial when the row is not a multiple.
    blocks: usize,
}

impl DepthwiseConv {
    fn buffer(&self) -> Buffer {
        let [kh, kw] = self.kernel;
        let [sh, sw] = self.stride;
        let [oh, ow] = self.output;
        let blocks = ow.div_ceil(BLOCK);
        let padded_width = self.pad_before[1] + self.input[1];
        let phase_width = (blocks * BLOCK + (kw - 1) / sw).max(padded_width.div_ceil(sw));
        let rows = ((oh - 1) * sh + kh).max(self.pad_before[0] + self.input[0]);
        Buffer { phase_width, row: sw * phase_width, rows, blocks }
    }

    /// Where each tap, row-major, reads in the buffer relative to the first pixel of an output
    /// row's first block.
    fn tap_offsets(&self, geometry: &Buffer) -> Vec<usize> {
        let [kh, kw] = self.kernel;
        let sw = self.stride[1];
        let mut offsets = Vec::with_capacity(kh * kw);
        for ky in 0..kh {
            for kx in 0..kw {
                offsets.push(ky * geometry.row + (kx % sw) * geometry.phase_width + kx / sw);
            }
        }
        offsets
    }

    /// Copies one channel into the buffer, column `j` of the padded plane going to phase
    /// `j % stride`, position `j / stride`.
    #[inline(always)]
    fn fill(&self, geometry: &Buffer, x: &[f32], buffer: &mut [f32]) {
        let [pt, pl] = self.pad_before;
        let sw = self.stride[1];
        let rows = buffer[pt * geometry.row..].chunks_exact_mut(geometry.row);
        for (src, row) in x.chunks_exact(self.input[1]).zip(rows) {
            if sw == 1 {
                row[pl..pl + src.len()].copy_from_slice(src);
                continue;
            }
            if sw == 2 {
                // Pixel `ix` is padded column `pl + ix`: pixels 0, 2, 4… go to phase `pl % 2`
                // from position `pl / 2`, pixels 1, 3, 5… to the other phase from `(pl + 1) / 2`.
                let (lo, hi) = row.split_at_mut(geometry.phase_width);
                let (evens, odds) = if pl % 2 == 0 { (lo, hi) } else { (hi, lo) };
                let (evens, odds) = (&mut evens[pl / 2..], &mut odds[pl.div_ceil(2)..]);
                let pairs = src.chunks_exact(2);
                if let [last] = pairs.remainder() {
                    evens[src.len() / 2] = *last;
                }
                for ((e, o), pair) in evens.iter_mut().zip(odds.iter_mut()).zip(pairs) {
                    (*e, *o) = (pair[0], pair[1]);
                }
                continue;
            }
            for phase in 0..sw {
                // The first padded column of this phase that holds an input pixel.
                let first = pl + (phase + sw - pl % sw) % sw;
                let Some(src) = src.get(first - pl..) else { continue };
                let to = &mut row[phase * geometry.phase_width + first / sw..];
                for (t, &v) in to.iter_mut().zip(src.iter().step_by(sw)) {
                    *t = v;
                }
            }
        }
    }

    /// Every block of [`BLOCK`] output pixels of a plane: where it starts reading in the buffer,
    /// where it writes in the output, and how many of its pixels are real.
    fn blocks(&self, geometry: &Buffer) -> Vec<Block> {
        let ow = self.output[1];
        let step = self.stride[0] * geometry.row;
        (0..self.output[0])
            .flat_map(|oy| {
                (0..geometry.blocks).map(move |b| Block {
                    read: oy * step + b * BLOCK,
                    write: oy * ow + b * BLOCK,
                    len: BLOCK.min(ow - b * BLOCK),
                })
            })
            .collect()
    }
}

impl crate::cpu::FloatKernel for DepthwiseConv {
    /// Computes `n` images: `input` is `[n, channels, h, w]`, `output` `[n, channels, oh, ow]`.
    #[inline(always)]
    fn run_with<const FUSED: bool>(&self, input: &[f32], output: &mut [f32]) {
        let plane_in = self.input[0] * self.input[1];
        let plane_out = self.output[0] * self.output[1];
        let taps = self.kernel[0] * self.kernel[1];
        let geometry = self.buffer();
        let offsets = self.tap_offsets(&geometry);
        let blocks = self.blocks(&geometry);
        // Zeroed once: each plane overwrites the same interior, so the border stays zero.
        let mut buffer = vec![0f32; geometry.rows * geometry.row];
        let weights = self.weights.try_as_plain_ram().and_then(|w| w.as_slice::<f32>()).expect("f32 weights");
        let bias = self.bias.try_as_plain_ram().and_then(|b| b.as_slice::<f32>()).expect("f32 bias");
        let planes = input.chunks_exact(plane_in).zip(output.chunks_exact_mut(plane_out));
        for (plane, (x, y)) in planes.enumerate() {
            let c = plane % self.channels;
            self.fill(&geometry, x, &mut buffer);
            let kernel =
                Kernel { offsets: &offsets, weights: &weights[c * taps..][..taps], bias: bias[c], clip: self.clip };
            plane_blocks::<FUSED>(&blocks, &buffer, &kernel, y);
        }
    }
}

/// One channel's taps: where each reads in the buffer, its weight, and what follows the sum.
struct Kernel<'a> {
    offsets: &'a [usize],
    weights: &'a [f32],
    bias: f32,
    clip: Clip,
}

/// One channel's output, [`TILE`] blocks at a time so that as many independent sums are in
/// flight (a 7-pixel row is one block, so small planes tile across rows).
#[inline(always)]
fn plane_blocks<const FUSED: bool>(blocks: &[Block], buffer: &[f32], kernel: &Kernel, y: &mut [f32]) {
    // Every read below is at `block.read + offset + i`, `i < BLOCK`: checked here once, for
    // the last block, the farthest.
    let reach = kernel.offsets.iter().max().copied().unwrap_or(0) + BLOCK;
    assert!(blocks.last().is_none_or(|b| b.read + reach <= buffer.len()), "the buffer holds every tap");
    let mut store = |block: &Block, acc: &[f32; BLOCK]| {
        for (y, &v) in y[block.write..block.write + block.len].iter_mut().zip(acc) {
            *y = kernel.clip.apply(v);
        }
    };
    let mut tiles = blocks.chunks_exact(TILE);
    for tile_blocks in &mut tiles {
        let reads = std::array::from_fn(|g| tile_blocks[g].read);
        let acc = tile::<TILE, FUSED>(buffer, kernel, reads);
        for (block, acc) in tile_blocks.iter().zip(&acc) {
            store(block, acc);
        }
    }
    for block in tiles.remainder() {
        store(block, &tile::<1, FUSED>(buffer, kernel, [block.read])[0]);
    }
}

/// One block of output pixels ([`DepthwiseConv::blocks`]).
struct Block {
    read: usize,
    write: usize,
    len: usize,
}

/// Blocks computed together: eight sums in flight hide the latency of the additions.
const TILE: usize = 8;

/// `G` blocks of one channel, starting at `firsts` in the buffer: the bias plus, for every tap,
/// its weight times the [`BLOCK`] values at the tap's offset.
#[inline(always)]
fn tile<const G: usize, const FUSED: bool>(buffer: &[f32], kernel: &Kernel, firsts: [usize; G]) -> [[f32; BLOCK]; G] {
    let mut acc = [[kernel.bias; BLOCK]; G];
    for (&offset, &w) in kernel.offsets.iter().zip(kernel.weights) {
        for g in 0..G {
            // SAFETY: `plane_blocks` asserted that the farthest block's farthest tap ends inside the buffer.
            let src = unsafe { buffer.get_unchecked(firsts[g] + offset..firsts[g] + offset + BLOCK) };
            for i in 0..BLOCK {
                acc[g][i] = if FUSED { w.mul_add(src[i], acc[g][i]) } else { acc[g][i] + w * src[i] };
            }
        }
    }
    acc
}

impl Op for DepthwiseConv {
    fn name(&self) -> StaticName {
        "CxrDepthwiseConv".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "{} channels, {:?} → {:?}, kernel {:?}, stride {:?}, pad before {:?}, clamp {:?}",
            self.channels, self.input, self.output, self.kernel, self.stride, self.pad_before, self.clip
        )])
    }

    fn validation(&self) -> Validation {
        Validation::Rounding
    }

    op_as_typed_op!();
}

impl EvalOp for DepthwiseConv {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let mut shape: TVec<usize> = input.shape().into();
        let rank = shape.len();
        shape[rank - 2] = self.output[0];
        shape[rank - 1] = self.output[1];
        // SAFETY: every element is written by `run` (each plane's rows, each row's pixels).
        let mut output = unsafe { Tensor::uninitialized::<f32>(&shape)? };
        let input = input.try_as_plain_ram()?;
        crate::cpu::run(self, input.as_slice::<f32>()?, output.try_as_plain_ram_mut()?.as_slice_mut::<f32>()?);
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for DepthwiseConv {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let mut shape = inputs[0].shape.to_tvec();
        let rank = shape.len();
        shape[rank - 2] = self.output[0].into();
        shape[rank - 1] = self.output[1].into();
        Ok(tvec!(f32::fact(shape)))
    }

    fn cost(&self, inputs: &[&TypedFact]) -> TractResult<TVec<(Cost, TDim)>> {
        let points = self.output[0] * self.output[1] * self.channels * self.kernel[0] * self.kernel[1];
        let images = if inputs[0].rank() == 4 { inputs[0].shape[0].clone() } else { 1.into() };
        Ok(tvec!((Cost::FMA(f32::datum_type()), images * points)))
    }

    as_op!();
}

/// The [`DepthwiseConv`] for a node, if it is a depthwise convolution this kernel computes.
fn replacement(model: &TypedModel, node: &TypedNode) -> TractResult<Option<DepthwiseConv>> {
    let Some(conv) = node.op_as::<Conv>() else { return Ok(None) };
    let spec = &conv.pool_spec;
    let channels = conv.group;
    // With a batch of one, decluttering drops the batch axis: NCHW becomes CHW.
    let rank = match spec.data_format {
        DataFormat::NCHW => 4,
        DataFormat::CHW => 3,
        _ => return Ok(None),
    };
    let plain = conv.q_params.is_none()
        && model.outlet_fact(node.inputs[0])?.rank() == rank
        && channels > 1
        && spec.input_channels == channels
        && spec.output_channels == channels
        && conv.kernel_fmt == KernelFormat::OIHW
        && spec.kernel_shape.len() == 2
        && spec.dilations.as_ref().is_none_or(|d| d.iter().all(|&d| d == 1))
        && node.inputs.len() == 3;
    if !plain {
        return Ok(None);
    }
    let input = model.outlet_fact(node.inputs[0])?;
    // The batch may be symbolic (`Batch::Symbolic`); the planes may not.
    let (Ok(h), Ok(w)) = (input.shape[rank - 2].to_usize(), input.shape[rank - 1].to_usize()) else {
        return Ok(None);
    };
    let (Some(weights), Some(bias)) =
        (&model.outlet_fact(node.inputs[1])?.konst, &model.outlet_fact(node.inputs[2])?.konst)
    else {
        return Ok(None);
    };
    let [kh, kw] = [spec.kernel_shape[0], spec.kernel_shape[1]];
    if input.datum_type != f32::datum_type()
        || weights.datum_type() != f32::datum_type()
        || weights.shape() != [channels, 1, kh, kw]
        || bias.datum_type() != f32::datum_type()
        || !(bias.len() == 1 || bias.len() == channels)
    {
        return Ok(None);
    }
    let padding = spec.computed_padding(&[h, w]);
    let strides = spec.strides();
    let bias = if bias.len() == 1 {
        tensor1(&vec![bias.try_as_plain_ram()?.as_slice::<f32>()?[0]; channels])
    } else {
        bias.clone().into_tensor().into_shape(&[channels])?
    };
    Ok(Some(DepthwiseConv {
        channels,
        input: [h, w],
        output: [padding[0].convoluted, padding[1].convoluted],
        kernel: [kh, kw],
        stride: [strides[0], strides[1]],
        pad_before: [padding[0].pad_before, padding[1].pad_before],
        weights: weights.clone().into_tensor().into_shape(&[channels, kh * kw])?.into_arc_tensor(),
        bias: bias.into_arc_tensor(),
        clip: Clip::NONE,
    }))
}

/// Replaces every depthwise convolution of a decluttered graph that [`DepthwiseConv`] computes,
/// and returns how many it replaced. Run it between `into_decluttered` and `into_optimized`: after
/// decluttering, batch norms are already folded into the weights it reads.
pub fn rewrite(model: &mut TypedModel) -> TractResult<usize> {
    let mut replaced = 0;
    for id in model.eval_order()? {
        let node = model.node(id);
        if let Some(op) = replacement(model, node)? {
            crate::clip::replace_through_clip(model, &[id], |clip| DepthwiseConv { clip, ..op })?;
            replaced += 1;
        }
    }
    Ok(replaced)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_data::noise;
    use tract_onnx::tract_core::ops::cnn::{PaddingSpec, PoolSpec};

    /// A one-node graph: a depthwise `Conv` as tract builds it from ONNX, on `[n, c, h, w]`.
    fn depthwise_graph(
        [n, c, h, w]: [usize; 4],
        kernel: usize,
        stride: usize,
        (before, after): ([usize; 2], [usize; 2]),
        seed: u32,
    ) -> TypedModel {
        let mut model = TypedModel::default();
        let x = model.add_source("x", f32::fact([n, c, h, w])).unwrap();
        let weights = Tensor::from_shape(&[c, 1, kernel, kernel], &noise(c * kernel * kernel, seed)).unwrap();
        let bias = tensor1(&noise(c, seed + 1));
        let weights = model.add_const("w", weights).unwrap();
        let bias = model.add_const("b", bias).unwrap();
        let conv = Conv {
            pool_spec: PoolSpec {
                data_format: DataFormat::NCHW,
                kernel_shape: tvec![kernel, kernel],
                padding: PaddingSpec::Explicit(before[..].into(), after[..].into()),
                dilations: None,
                strides: Some(tvec![stride, stride]),
                input_channels: c,
                output_channels: c,
            },
            kernel_fmt: KernelFormat::OIHW,
            group: c,
            q_params: None,
        };
        let y = model.wire_node("conv", conv, &[x, weights, bias]).unwrap();
        model.select_output_outlets(&y).unwrap();
        model
    }

    #[test]
    fn matches_tracts_depthwise_convolution_for_every_geometry_of_the_shipped_networks() {
        // EfficientNet-Lite0's TF-"SAME" padding puts the odd pixel after; MobileNetV2 pads
        // evenly; a valid convolution pads nothing. Widths cover one partial block, whole
        // blocks, and several blocks with a tail.
        let cases = [
            ([2, 3, 7, 7], 3, 1, ([1, 1], [1, 1])),
            ([1, 5, 7, 7], 5, 1, ([2, 2], [2, 2])),
            ([1, 4, 14, 14], 5, 2, ([1, 1], [2, 2])),
            ([1, 4, 15, 13], 3, 2, ([0, 0], [1, 1])),
            ([1, 3, 28, 28], 3, 2, ([0, 0], [1, 1])),
            ([2, 2, 56, 41], 5, 1, ([2, 2], [2, 2])),
            ([1, 6, 20, 19], 3, 1, ([0, 0], [0, 0])),
            ([1, 2, 23, 37], 3, 2, ([1, 1], [1, 1])),
        ];
        for (seed, (shape, kernel, stride, padding)) in cases.into_iter().enumerate() {
            let model = depthwise_graph(shape, kernel, stride, padding, seed as u32);
            let input = Tensor::from_shape(&shape, &noise(shape.iter().product(), 100 + seed as u32)).unwrap();
            let tracts = model.clone().into_optimized().unwrap().into_runnable().unwrap();
            let expected = tracts.run(tvec!(input.clone().into())).unwrap().remove(0);
            let mut ours = model.into_decluttered().unwrap();
            assert_eq!(rewrite(&mut ours).unwrap(), 1, "{shape:?} k{kernel} s{stride} is rewritten");
            let ours = ours.into_optimized().unwrap();
            assert!(ours.nodes().iter().any(|n| n.op_is::<DepthwiseConv>()), "the optimiser keeps cxr's op");
            let got = ours.into_runnable().unwrap().run(tvec!(input.into())).unwrap().remove(0);
            assert_eq!(got.shape(), expected.shape(), "{shape:?} k{kernel} s{stride}");
            let (got, expected) = (got.try_as_plain_ram().unwrap(), expected.try_as_plain_ram().unwrap());
            let (got, expected) = (got.as_slice::<f32>().unwrap(), expected.as_slice::<f32>().unwrap());
            for (i, (g, e)) in got.iter().zip(expected).enumerate() {
                assert!((g - e).abs() <= 1e-5, "{shape:?} k{kernel} s{stride}: element {i} is {g}, tract says {e}");
            }
        }
    }

    #[test]
    fn leaves_ordinary_and_grouped_convolutions_to_tract() {
        let mut model = TypedModel::default();
        let x = model.add_source("x", f32::fact([1, 4, 8, 8])).unwrap();
        let weights = model.add_const("w", Tensor::zero::<f32>(&[4, 2, 3, 3]).unwrap()).unwrap();
        let bias = model.add_const("b", Tensor::zero::<f32>(&[4]).unwrap()).unwrap();
        let grouped = Conv {
            pool_spec: PoolSpec {
                data_format: DataFormat::NCHW,
                kernel_shape: tvec![3, 3],
                padding: PaddingSpec::Valid,
                dilations: None,
                strides: None,
                input_channels: 4,
                output_channels: 4,
            },
            kernel_fmt: KernelFormat::OIHW,
            group: 2,
            q_params: None,
        };
        let y = model.wire_node("conv", grouped, &[x, weights, bias]).unwrap();
        model.select_output_outlets(&y).unwrap();
        let mut model = model.into_decluttered().unwrap();
        assert_eq!(rewrite(&mut model).unwrap(), 0);
    }
}
