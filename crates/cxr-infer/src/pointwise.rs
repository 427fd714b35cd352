//! 1 × 1 convolutions over large planes run by cxr's own kernel instead of tract's.
//!
//! In a depthwise-separable network the 1 × 1 convolutions of the first blocks have few input
//! channels (16–40) and thousands of pixels. tract computes them as matrix products with the
//! pixels as rows, packs the input first, and on an AVX-512 x86 CPU picks a thin 80 × 2 tile for them: in
//! `efficientnet-lite0-three-class`'s profile the first block's expansion (16 → 96 channels on
//! 112 × 112 pixels) costs more than all of its depthwise convolutions together, at a fraction of
//! the throughput tract reaches on the later, deeper 1 × 1 convolutions.
//!
//! [`rewrite`] replaces the 1 × 1 convolutions of a decluttered graph that have at least
//! [`MIN_PIXELS`] pixels (f32, channel-first, no padding or stride, constant weights) by
//! [`PointwiseConv`], together with the clamp after them (`clip`). Its kernel reads
//! the channel-first input as it is, without packing: for each run of `COLS` pixels it keeps
//! `ROWS` output channels × `COLS` pixels of sums in registers while it walks the input
//! channels, each step one load of `COLS` input pixels and one weight per output channel,
//! the weights packed at rewrite time so that they too are read in order. The later 1 × 1
//! convolutions (49–196 pixels, hundreds of channels) stay with tract, whose AVX-512 kernels
//! run them well.
//!
//! The same plain Rust is compiled once more for AVX2 and FMA on x86-64 and picked at run time.
//! Only channel-first products are replaced: on aarch64 tract declutters most of the network to
//! channel-last, where they stay with tract.
//!
//! **Used for batches only** ([`crate::PointwisePlans`]): in a plan for several images tract
//! restores its pixels × images product layout with a `MoveAxis` and an unfused bias `Add`, which
//! this kernel does not need: EfficientNet-Lite0 at batch 8 spends 77 of its 362 ms on those two
//! nodes of its first expansion alone (BENCHMARKS.md's node profile), and with the kernel the batch
//! takes p50 154 against 365 ms on a 2-core AVX-512 EPYC (`cargo run --release -p cxr-infer
//! --example own_kernels -- models/efficientnet-lite0-three-class.onnx IMAGE 3 8`). For one image,
//! on a 2-core AMD EPYC with AVX2 and no
//! AVX-512, tract's `fma_mmm_f32_16x6` computes that first expansion in 1.7 ms plus 0.5 ms of
//! packing against 3.8 ms here (node profile, median of 50 runs), and whole predictions are no
//! faster with it (p50 39.4 against 39.1 ms, `cargo run --release -p cxr-infer --example
//! own_kernels -- models/efficientnet-lite0-three-class.onnx IMAGE 15`). With only 16 input
//! channels each output is a few multiply-adds and one store, so the kernel is bound by writing
//! the 96-channel plane; what would pay is not writing it at all, fusing the expansion into the
//! depthwise convolution that reads it. The 80 × 2 tile above was seen on an AVX-512 Xeon. On a
//! 2-core AMD EPYC with AVX-512, where tract picks a 32 × 6 tile for that expansion (0.62 ms with its
//! clamp), whole predictions are 5 % faster with the kernel (p50 11.5, 11.4 and 11.2 ms against
//! 12.1, 11.9 and 11.8 ms, three runs of the same example with 15, 40 and 40 rounds): too small
//! and too narrowly measured a gain to turn it on for one image on such CPUs only.

use crate::clip::Clip;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::einsum::EinSum;

/// Output channels computed together.
const ROWS: usize = 6;
/// Pixels computed together: two AVX2 registers, so a tile's sums are twelve registers.
const COLS: usize = 16;
/// Planes smaller than this stay with tract (see the module doc).
pub const MIN_PIXELS: usize = 400;

/// One 1 × 1 convolution over `[n, inputs, pixels…]` or `[inputs, pixels…]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PointwiseConv {
    inputs: usize,
    outputs: usize,
    /// Pixels per plane.
    pixels: usize,
    /// The input's batch axis (of one) is not in the output.
    drops_batch: bool,
    /// `[outputs / ROWS rounded up, inputs, ROWS]`: for each group of [`ROWS`] output channels,
    /// their weights input channel by input channel; zeros past the last output channel.
    weights: Arc<Tensor>,
    /// `[outputs rounded up to ROWS]`.
    bias: Arc<Tensor>,
    clip: Clip,
}

impl PointwiseConv {
    /// `[n?, inputs, h, w]` to `[n?, outputs, h, w]`, less the batch axis if it is dropped.
    fn output_shape<D: DimLike>(&self, input: &[D]) -> TVec<D> {
        let mut shape: TVec<D> = input.into();
        let channel = shape.len() - 3;
        shape[channel] = self.outputs.into();
        if self.drops_batch {
            shape.remove(0);
        }
        shape
    }
}

impl crate::cpu::FloatKernel for PointwiseConv {
    /// Computes `n` images: `input` is `[n, inputs, pixels]`, `output` `[n, outputs, pixels]`.
    #[inline(always)]
    fn run_with<const FUSED: bool>(&self, input: &[f32], output: &mut [f32]) {
        let (k, p) = (self.inputs, self.pixels);
        let weights = self.weights.try_as_plain_ram().and_then(|w| w.as_slice::<f32>()).expect("f32 weights");
        let bias = self.bias.try_as_plain_ram().and_then(|b| b.as_slice::<f32>()).expect("f32 bias");
        // The last, partial run of pixels is copied here, zero-padded to a whole one.
        let mut tail = vec![0f32; k * COLS];
        for (x, y) in input.chunks_exact(k * p).zip(output.chunks_exact_mut(self.outputs * p)) {
            for start in (0..p).step_by(COLS) {
                let len = COLS.min(p - start);
                let (src, stride) = if len == COLS {
                    (&x[start..], p)
                } else {
                    for (ci, row) in tail.chunks_exact_mut(COLS).enumerate() {
                        row[..len].copy_from_slice(&x[ci * p + start..][..len]);
                    }
                    (&tail[..], COLS)
                };
                // Every read of `tile` is at `ci * stride + i`, `ci < k`, `i < COLS`.
                assert!((k - 1) * stride + COLS <= src.len(), "the input holds every read");
                let groups = weights.chunks_exact(k * ROWS).zip(bias.chunks_exact(ROWS));
                for (g, (w, b)) in groups.enumerate() {
                    let acc = tile::<FUSED>(src, stride, w, b);
                    for (r, acc) in acc.iter().enumerate().take(self.outputs - (g * ROWS).min(self.outputs)) {
                        let row = &mut y[(g * ROWS + r) * p + start..][..len];
                        for (y, &v) in row.iter_mut().zip(acc) {
                            *y = self.clip.apply(v);
                        }
                    }
                }
            }
        }
    }
}

/// [`ROWS`] output channels × [`COLS`] pixels: `bias` plus, for every input channel, its
/// weights (`w`, [`ROWS`] per input channel) times its [`COLS`] pixels at `ci * stride` in `src`.
#[inline(always)]
fn tile<const FUSED: bool>(src: &[f32], stride: usize, w: &[f32], bias: &[f32]) -> [[f32; COLS]; ROWS] {
    let mut acc: [[f32; COLS]; ROWS] = std::array::from_fn(|r| [bias[r]; COLS]);
    for (ci, w) in w.chunks_exact(ROWS).enumerate() {
        // SAFETY: `run_with` asserted that the last input channel's pixels end inside `src`.
        let x = unsafe { src.get_unchecked(ci * stride..ci * stride + COLS) };
        for r in 0..ROWS {
            for i in 0..COLS {
                acc[r][i] = if FUSED { w[r].mul_add(x[i], acc[r][i]) } else { acc[r][i] + w[r] * x[i] };
            }
        }
    }
    acc
}

impl Op for PointwiseConv {
    fn name(&self) -> StaticName {
        "CxrPointwiseConv".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!("{} → {} channels, {} pixels, clamp {:?}", self.inputs, self.outputs, self.pixels, self.clip)])
    }

    fn validation(&self) -> Validation {
        Validation::Rounding
    }

    op_as_typed_op!();
}

impl EvalOp for PointwiseConv {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let shape = self.output_shape(input.shape());
        // SAFETY: every element is written by `run` (each output channel's every pixel).
        let mut output = unsafe { Tensor::uninitialized::<f32>(&shape)? };
        let input = input.try_as_plain_ram()?;
        crate::cpu::run(self, input.as_slice::<f32>()?, output.try_as_plain_ram_mut()?.as_slice_mut::<f32>()?);
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for PointwiseConv {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(f32::fact(self.output_shape(&inputs[0].shape))))
    }

    fn cost(&self, inputs: &[&TypedFact]) -> TractResult<TVec<(Cost, TDim)>> {
        let points = self.pixels * self.inputs * self.outputs;
        let images = if inputs[0].rank() == 4 { inputs[0].shape[0].clone() } else { 1.into() };
        Ok(tvec!((Cost::FMA(f32::datum_type()), images * points)))
    }

    as_op!();
}

/// Replaces every 1 × 1 convolution [`PointwiseConv`] computes (see the module doc), with the
/// bias and clamp after it, and returns how many it replaced.
pub fn rewrite(model: &mut TypedModel) -> TractResult<usize> {
    let mut replaced = 0;
    for id in model.eval_order()? {
        if let Some((op, nodes)) = replacement(model, model.node(id))? {
            crate::clip::replace_through_clip(model, &nodes, |clip| PointwiseConv { clip, ..op })?;
            replaced += 1;
        }
    }
    Ok(replaced)
}

/// The [`PointwiseConv`] for a node (without its clamp) and the nodes it stands for (the
/// product, then its bias if any), if the node is a 1 × 1 convolution this kernel computes.
///
/// tract declutters a 1 × 1 convolution into a product with its weights as a `[O, I]` constant,
/// `EinSum` `IHW,OI->OHW` (`NIHW,OI->NOHW` with a batch axis, `NIHW,OI->OHW` once a batch of one
/// is dropped), then an `Add` of the bias shaped `[O, 1, 1]`; that is what is matched here.
fn replacement(model: &TypedModel, node: &TypedNode) -> TractResult<Option<(PointwiseConv, Vec<usize>)>> {
    let Some(einsum) = node.op_as::<EinSum>() else { return Ok(None) };
    if einsum.q_params.is_some() || einsum.operating_dt != f32::datum_type() || node.inputs.len() != 2 {
        return Ok(None);
    }
    let (input, output) = (model.outlet_fact(node.inputs[0])?, model.outlet_fact(OutletId::new(node.id, 0))?);
    let Some(weights) = &model.outlet_fact(node.inputs[1])?.konst else { return Ok(None) };
    let (rank, out_rank) = (input.rank(), output.rank());
    if input.datum_type != f32::datum_type() || weights.datum_type() != f32::datum_type() || weights.rank() != 2 {
        return Ok(None);
    }
    let (m, k) = (weights.shape()[0], weights.shape()[1]);
    // Input `[n?, I, H, W]`, output `[n?, O, H, W]`; a batch axis is kept, or dropped when it is 1.
    let axes = &einsum.axes;
    let to = |from: (InOut, usize), to: InOut| axes.track_axis(from, to);
    let batch_to_output = || to((InOut::In(0), 0), InOut::Out(0));
    let drops_batch = match (rank, out_rank) {
        (3, 3) => false,
        (4, 4) if batch_to_output()? == Some(0) => false,
        // The batch axis is summed over, which with a batch of one drops it.
        (4, 3) if input.shape[0] == 1.to_dim() && batch_to_output()?.is_none() => true,
        _ => return Ok(None),
    };
    if rank == 4 && to((InOut::In(0), 0), InOut::In(1))?.is_some() {
        return Ok(None);
    }
    let (c, oc) = (rank - 3, out_rank - 3);
    let product = to((InOut::In(0), c), InOut::In(1))? == Some(1)
        && to((InOut::In(0), c), InOut::Out(0))?.is_none()
        && to((InOut::In(1), 0), InOut::Out(0))? == Some(oc)
        && to((InOut::In(1), 0), InOut::In(0))?.is_none()
        && (1..3).all(|i| {
            to((InOut::In(0), c + i), InOut::Out(0)).ok().flatten() == Some(oc + i)
                && to((InOut::In(0), c + i), InOut::In(1)).ok().flatten().is_none()
        })
        && input.shape[c] == k.to_dim()
        && axes.rank(InOut::In(1)) == 2;
    if !product {
        return Ok(None);
    }
    // The batch may be symbolic (`Batch::Symbolic`); the planes may not.
    let (Ok(h), Ok(w)) = (input.shape[c + 1].to_usize(), input.shape[c + 2].to_usize()) else {
        return Ok(None);
    };
    if h * w < MIN_PIXELS {
        return Ok(None);
    }
    let mut nodes = vec![node.id];
    let bias = match bias_after(model, node, m)? {
        Some((add, bias)) => {
            nodes.push(add);
            bias
        }
        None => vec![0f32; m],
    };
    let weights = weights.try_as_plain_ram()?.as_slice::<f32>()?;
    let groups = m.div_ceil(ROWS);
    let mut packed = vec![0f32; groups * k * ROWS];
    let mut padded_bias = vec![0f32; groups * ROWS];
    for co in 0..m {
        let (g, r) = (co / ROWS, co % ROWS);
        for ci in 0..k {
            packed[(g * k + ci) * ROWS + r] = weights[co * k + ci];
        }
        padded_bias[co] = bias[co];
    }
    let op = PointwiseConv {
        inputs: k,
        outputs: m,
        pixels: h * w,
        drops_batch,
        weights: tensor1(&packed).into_arc_tensor(),
        bias: tensor1(&padded_bias).into_arc_tensor(),
        clip: Clip::NONE,
    };
    Ok(Some((op, nodes)))
}

/// The `Add` of a per-channel (or single) constant bias that alone reads `node`'s product, and
/// that bias, one value per output channel.
fn bias_after(model: &TypedModel, node: &TypedNode, m: usize) -> TractResult<Option<(usize, Vec<f32>)>> {
    let out = OutletId::new(node.id, 0);
    if model.outputs.contains(&out) {
        return Ok(None);
    }
    let Some(add) = model.single_succ(node.id)? else { return Ok(None) };
    let is_add = add.op_as::<TypedBinOp>().is_some_and(|bin| bin.0.name() == "Add");
    let [a, b] = add.inputs[..] else { return Ok(None) };
    let other = if a == out { b } else { a };
    let fact = model.outlet_fact(other)?;
    let Some(bias) = fact.konst.as_ref().filter(|_| is_add) else { return Ok(None) };
    let shape = model.outlet_fact(out)?.shape.clone();
    let per_channel = bias.len() == m && bias.rank() >= 3 && bias.shape()[bias.rank() - 3] == m;
    if bias.datum_type() != f32::datum_type()
        || !(bias.len() == 1 || per_channel)
        || bias.rank() > shape.len()
        || model.outlet_fact(OutletId::new(add.id, 0))?.shape != shape
    {
        return Ok(None);
    }
    let values = bias.try_as_plain_ram()?.as_slice::<f32>()?;
    Ok(Some((add.id, if values.len() == 1 { vec![values[0]; m] } else { values.to_vec() })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_onnx::tract_core::ops::cnn::{Conv, KernelFormat, PaddingSpec, PoolSpec};
    use tract_onnx::tract_core::ops::math;
    use tract_onnx::tract_core::ops::nn::DataFormat;

    /// A 1 × 1 convolution as tract builds it from ONNX, on `[n, k, h, w]` (or `[k, h, w]` when
    /// `n` is None), optionally followed by ReLU6 as tract declutters ONNX's `Clip(0, 6)`,
    /// decluttered as `Model` declutters a graph before cxr's rewrites.
    fn pointwise_graph(n: Option<usize>, [k, m, h, w]: [usize; 4], relu6: bool, seed: u32) -> TypedModel {
        let mut model = TypedModel::default();
        let (shape, format): (Vec<usize>, _) = match n {
            Some(n) => (vec![n, k, h, w], DataFormat::NCHW),
            None => (vec![k, h, w], DataFormat::CHW),
        };
        let x = model.add_source("x", f32::fact(&shape)).unwrap();
        let weights = Tensor::from_shape(&[m, k, 1, 1], &noise(m * k, seed)).unwrap();
        let weights = model.add_const("w", weights).unwrap();
        let bias = model.add_const("b", tensor1(&noise(m, seed + 1))).unwrap();
        let conv = Conv {
            pool_spec: PoolSpec {
                data_format: format,
                kernel_shape: tvec![1, 1],
                padding: PaddingSpec::Valid,
                dilations: None,
                strides: None,
                input_channels: k,
                output_channels: m,
            },
            kernel_fmt: KernelFormat::OIHW,
            group: 1,
            q_params: None,
        };
        let mut y = model.wire_node("conv", conv, &[x, weights, bias]).unwrap();
        if relu6 {
            let rank = shape.len();
            let zero = model.add_const("zero", tensor0(0f32).broadcast_into_rank(rank).unwrap()).unwrap();
            let six = model.add_const("six", tensor0(6f32).broadcast_into_rank(rank).unwrap()).unwrap();
            y = model.wire_node("relu6.max", math::max(), &[y[0], zero]).unwrap();
            y = model.wire_node("relu6.min", math::min(), &[y[0], six]).unwrap();
        }
        model.select_output_outlets(&y).unwrap();
        model.into_decluttered().unwrap()
    }

    /// Deterministic values in [-2, 2): large enough that ReLU6 clamps at both ends.
    fn noise(len: usize, seed: u32) -> Vec<f32> {
        crate::test_data::noise(len, seed).into_iter().map(|v| 2.0 * v).collect()
    }

    fn run(model: TypedModel, input: &Tensor) -> Vec<f32> {
        let plan = model.into_runnable().unwrap();
        let out = plan.run(tvec!(input.clone().into())).unwrap();
        out[0].try_as_plain_ram().unwrap().as_slice::<f32>().unwrap().to_vec()
    }

    /// Every geometry of EfficientNet-Lite0's first blocks and odd ones (channels not a multiple
    /// of the tile, planes not a multiple of its width, a batch of three) give tract's outputs,
    /// and the bias and ReLU6 are taken into the op.
    #[test]
    fn pointwise_convolutions_match_tracts() {
        let cases = [
            (None, [16, 96, 20, 20], true),
            (None, [24, 144, 28, 28], true),
            (None, [96, 24, 21, 23], false),
            (None, [7, 13, 19, 29], true),
            (Some(1), [32, 16, 20, 25], false),
            (Some(3), [5, 11, 20, 21], true),
        ];
        for (seed, (n, dims, relu6)) in cases.into_iter().enumerate() {
            let shape: Vec<usize> = n.into_iter().chain([dims[0], dims[2], dims[3]]).collect();
            let input = Tensor::from_shape(&shape, &noise(shape.iter().product(), 100 + seed as u32)).unwrap();
            let want = run(pointwise_graph(n, dims, relu6, seed as u32).into_optimized().unwrap(), &input);
            let mut ours = pointwise_graph(n, dims, relu6, seed as u32);
            assert_eq!(rewrite(&mut ours).unwrap(), 1, "{dims:?}");
            let ops: Vec<String> =
                ours.eval_order().unwrap().iter().map(|&id| ours.node(id).op.name().into()).collect();
            let taken = ["EinSum", "Add", "Max", "Min"];
            assert!(!ops.iter().any(|op| taken.contains(&op.as_str())), "product, bias, ReLU6 in the op: {ops:?}");
            let got = run(ours.into_optimized().unwrap(), &input);
            assert_eq!(got.len(), want.len());
            let worst = got.iter().zip(&want).map(|(g, w)| (g - w).abs()).fold(0f32, f32::max);
            assert!(worst < 1e-4, "{dims:?}: off by {worst}");
            if relu6 {
                assert!(got.iter().all(|&v| (0.0..=6.0).contains(&v)));
            }
        }
    }

    /// Small planes are left to tract.
    #[test]
    fn other_convolutions_stay_with_tract() {
        let mut small = pointwise_graph(None, [16, 96, 7, 7], false, 1);
        assert_eq!(rewrite(&mut small).unwrap(), 0);
    }
}
