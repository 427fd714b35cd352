//! A graph form tract runs several times faster, for networks that open with a "patch"
//! convolution: kernel = stride, no padding (the seed CNN's 3×3/3), optionally followed by a ReLU
//! and a non-overlapping max pool.
//!
//! Profiled in tract 0.23 (BENCHMARKS.md), such a model as written spends ~85 % of its time in two
//! kernels: the lazy im2col gather feeding the stride-3 convolution, and the scalar NCHW 2×2/2 max
//! pool. So cxr does not hand tract that opening at all:
//!
//! 1. Preprocessing writes the image already cut into patches (space-to-depth), laid out by pool
//!    phase (position inside the pool window) so that the pool is a max over whole phases, and the
//!    convolution outputs the pool would drop (floor mode) are never computed.
//! 2. The card's normalisation, and the three identical grey planes fed to RGB networks, are
//!    folded into the convolution's weights and bias. Exact, because without padding every
//!    input value is a normalised grey pixel: `Σ_c W_c·(g − m_c)/s_c = (Σ_c W_c/s_c)·g − Σ_c W_c·m_c/s_c`.
//!    One plane instead of three: a third of the arithmetic.
//! 3. The graph is cut after the opening: [`PatchOpening`] computes convolution, pool and ReLU in
//!    one pass (the ReLU after the max: ReLU is monotone, so they commute), and tract runs the rest
//!    from there. An earlier form left the opening to tract as a 1×1 convolution and a `Max` of
//!    phases; `patch_opening`'s docs say why that was still slow.
//!
//! An int8 graph in `int8_float`'s float form opens the same way with quantization around it —
//! `QuantizeLinear` → `DequantizeLinear` → `Conv` → `QuantizeLinear` → `MaxPool` →
//! `DequantizeLinear` — and is cut after the last of these: [`PatchOpening`] puts the input and
//! the output on the same grids ([`Grid`]).
//!
//! The model file and its sha256 are unchanged: the rewrite happens on the decoded graph at load
//! time, and `tests` below check it gives the same probabilities as the graph as written.
//! `CXR_GRAPH_FORM=onnx` turns it off (to measure tract on the file as written).

use crate::onnx_proto::{
    consumers, float_initializer, float_values, initializer, int, integer_values, ints, is_graph_output, string,
};
use crate::patch_opening::{Grid, PatchLayout, PatchOpening};
use cxr_core::Preprocess;
use cxr_core::card::ModelIo;
use tract_onnx::pb;
use tract_onnx::pb::tensor_proto::DataType;

/// Whether the rewrite is wanted (`CXR_GRAPH_FORM=onnx` measures tract on the file as written).
pub fn enabled() -> bool {
    std::env::var_os("CXR_GRAPH_FORM").is_none_or(|v| v != "onnx")
}

/// The graph after its opening and the opening itself, or `None` when the graph does not open
/// with a patch convolution on the card's input, or the card reads a value inside the opening
/// (then it runs as written).
pub fn rewrite(
    proto: &pb::ModelProto,
    io: &ModelIo,
    preprocess: &Preprocess,
) -> Option<(pb::ModelProto, PatchOpening)> {
    let graph = proto.graph.as_ref()?;
    let input = io.input.as_str();
    // An int8 graph's input quantization, in grey units: the layout holds grey pixels and the
    // normalisation is folded below, so every channel must share it.
    let mut input_grid = None;
    let mut conv_input = input;
    let mut dropped = vec![];
    if let Some(quantize_at) = next(graph, &mut conv_input, |n| quantize_grid(graph, n).is_some()) {
        let grid = quantize_grid(graph, &graph.node[quantize_at]).expect("checked");
        dropped.extend([quantize_at, next(graph, &mut conv_input, |n| dequantizes(graph, n, grid))?]);
        let (mean, std) = preprocess.stats(0);
        if (1..preprocess.channels as usize).any(|c| preprocess.stats(c) != (mean, std)) {
            return None;
        }
        input_grid = Some(grid.scaled(mean, std));
    }
    let conv_at = sole_consumer(graph, conv_input)?;
    let conv = &graph.node[conv_at];
    if conv.op_type != "Conv"
        || conv.input.first().map(String::as_str) != Some(conv_input)
        || is_graph_output(graph, &conv.output[0])
    {
        return None;
    }
    let weight = float_initializer(graph, conv.input.get(1)?)?;
    let [m, c, kh, kw] = weight.0[..] else { return None };
    let k = kh;
    let no_pad = ints(conv, "pads").is_none_or(|p| p.iter().all(|&v| v == 0));
    let plain = ints(conv, "dilations").is_none_or(|d| d.iter().all(|&v| v == 1))
        && int(conv, "group").is_none_or(|g| g == 1)
        && string(conv, "auto_pad").is_none_or(|a| a == "NOTSET" || a == "VALID");
    if kh != kw
        || k < 2
        || c != preprocess.channels as usize
        || !no_pad
        || !plain
        || ints(conv, "strides")? != [k as i64, k as i64]
    {
        return None;
    }
    let bias = match conv.input.get(2).filter(|b| !b.is_empty()) {
        Some(name) => float_initializer(graph, name)?.1,
        None => vec![0.0; m],
    };
    let size = preprocess.size as usize;
    let conv_out = (size - k) / k + 1;

    // Right after, each the sole reader of the one before and none a graph output: a ReLU, an
    // int8 output quantization, a max pool with kernel = stride, and the dequantization that
    // closes the quantization.
    dropped.push(conv_at);
    let mut tail = conv.output[0].as_str();
    let relu_at = next(graph, &mut tail, |n| n.op_type == "Relu");
    let output_quantize_at = next(graph, &mut tail, |n| quantize_grid(graph, n).is_some());
    let pool_at = next(graph, &mut tail, is_patch_pool);
    dropped.extend([relu_at, output_quantize_at, pool_at].into_iter().flatten());
    let mut output_grid = None;
    if let Some(quantize_at) = output_quantize_at {
        let grid = quantize_grid(graph, &graph.node[quantize_at]).expect("checked");
        dropped.push(next(graph, &mut tail, |n| dequantizes(graph, n, grid))?);
        output_grid = Some(grid);
    }
    let pool = pool_at.map_or(1, |at| ints(&graph.node[at], "kernel_shape").expect("checked")[0] as usize);
    let layout = PatchLayout { kernel: k, pool, cells: conv_out / pool };
    if layout.cells == 0 {
        return None;
    }

    // Fold normalisation and input planes: W'[o, tap] = Σ_c W[o, c, tap] / s_c, b'[o] = b[o] − Σ_c,tap W·m_c/s_c.
    let taps = k * k;
    let mut folded_w = vec![0.0f32; m * taps];
    let mut folded_b = vec![0.0f32; m];
    for o in 0..m {
        let mut shift = 0.0f64;
        for ch in 0..c {
            let (mean, std) = preprocess.stats(ch);
            for tap in 0..taps {
                let w = weight.1[(o * c + ch) * taps + tap] as f64 / std as f64;
                folded_w[o * taps + tap] += w as f32;
                shift += w * mean as f64;
            }
        }
        folded_b[o] = (bias[o] as f64 - shift) as f32;
    }

    // Cut the graph after the opening: its last value becomes the graph's input, which
    // [`PatchOpening`] computes from the patches. A feature map the card reads must survive.
    let opening_output = tail.to_owned();
    let inside = |name: &str| dropped.iter().any(|&at| graph.node[at].output.iter().any(|o| o == name));
    if is_graph_output(graph, &opening_output) || io.feature_map.as_deref().is_some_and(inside) {
        return None;
    }
    let mut out = proto.clone();
    let g = out.graph.as_mut().expect("has a graph");
    g.node = std::mem::take(&mut g.node)
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !dropped.contains(i))
        .map(|(_, n)| n)
        .collect();
    let graph_input = g.input.iter_mut().find(|i| i.name == input)?;
    graph_input.name = opening_output;
    let opening = PatchOpening {
        layout,
        channels: m,
        weights: folded_w,
        bias: folded_b,
        relu: relu_at.is_some(),
        input_grid,
        output_grid,
    };
    set_dims(graph_input, &opening.output_dims());
    Some((out, opening))
}

/// The sole reader of `tail` when `op` accepts it and `tail` is not a graph output; moves `tail`
/// on to its output.
fn next<'g>(graph: &'g pb::GraphProto, tail: &mut &'g str, op: impl Fn(&pb::NodeProto) -> bool) -> Option<usize> {
    let at = sole_consumer(graph, tail).filter(|&at| op(&graph.node[at]) && !is_graph_output(graph, tail))?;
    *tail = graph.node[at].output[0].as_str();
    Some(at)
}

/// The grid of a `QuantizeLinear` with a constant scalar scale and zero point (uint8 when it has none).
fn quantize_grid(graph: &pb::GraphProto, n: &pb::NodeProto) -> Option<Grid> {
    if n.op_type != "QuantizeLinear" || n.output.len() != 1 {
        return None;
    }
    let (scale, zero, kind) = scale_and_zero(graph, n)?;
    let range = match kind {
        DataType::Uint8 => (0.0, 255.0),
        DataType::Int8 => (-128.0, 127.0),
        _ => return None,
    };
    Some(Grid::new(scale, zero, range))
}

/// Whether `n` is a `DequantizeLinear` from `grid`'s scale and zero point.
fn dequantizes(graph: &pb::GraphProto, n: &pb::NodeProto, grid: Grid) -> bool {
    n.op_type == "DequantizeLinear"
        && scale_and_zero(graph, n).is_some_and(|(scale, zero, _)| scale == grid.step && zero == grid.zero)
}

/// A (de)quantization's scalar scale and zero point, and the zero point's type.
fn scale_and_zero(graph: &pb::GraphProto, n: &pb::NodeProto) -> Option<(f32, f32, DataType)> {
    let [scale] = float_values(initializer(graph, n.input.get(1)?)?)?[..] else { return None };
    match n.input.get(2).filter(|z| !z.is_empty()) {
        Some(name) => {
            let t = initializer(graph, name)?;
            let [zero] = integer_values(t)?[..] else { return None };
            Some((scale, zero as f32, DataType::try_from(t.data_type).ok()?))
        }
        None => Some((scale, 0.0, DataType::Uint8)),
    }
}

/// A `MaxPool` with kernel = stride, no padding, floor mode and one output.
fn is_patch_pool(n: &pb::NodeProto) -> bool {
    let Some(kernel) = ints(n, "kernel_shape") else { return false };
    n.op_type == "MaxPool"
        && n.output.len() == 1
        && kernel.len() == 2
        && kernel[0] == kernel[1]
        && kernel[0] >= 2
        && ints(n, "strides").is_some_and(|s| s == kernel)
        && ints(n, "pads").is_none_or(|p| p.iter().all(|&v| v == 0))
        && ints(n, "dilations").is_none_or(|d| d.iter().all(|&v| v == 1))
        && int(n, "ceil_mode").is_none_or(|c| c == 0)
        && string(n, "auto_pad").is_none_or(|a| a == "NOTSET" || a == "VALID")
}

/// The index of the only node reading `value`, if exactly one does.
fn sole_consumer(graph: &pb::GraphProto, value: &str) -> Option<usize> {
    let mut readers = consumers(graph, value);
    let at = readers.next()?;
    readers.next().is_none().then_some(at)
}

/// Sets the non-batch dims of a declared input, keeping its batch dim as declared.
fn set_dims(value: &mut pb::ValueInfoProto, dims: &[usize]) {
    use pb::tensor_shape_proto::{Dimension, dimension::Value};
    let Some(pb::type_proto::Value::TensorType(t)) = value.r#type.as_mut().and_then(|t| t.value.as_mut()) else {
        return;
    };
    let Some(shape) = t.shape.as_mut() else { return };
    shape.dim.truncate(1);
    shape.dim.extend(dims.iter().map(|&d| Dimension { value: Some(Value::DimValue(d as i64)), ..Default::default() }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Batch, Model};
    use cxr_core::GreyImage;
    use cxr_test_support::{datasets, workspace};

    #[test]
    fn layout_puts_each_tap_and_pool_phase_where_the_1x1_conv_and_max_expect_it() {
        // 12×12 image whose pixel value encodes its (x, y); kernel 3, pool 2 → 2 cells per side.
        let img = GreyImage::new(12, 12, (0..144).map(|i| i as f32).collect());
        let layout = PatchLayout { kernel: 3, pool: 2, cells: 2 };
        let mut out = vec![-1.0];
        layout.write(&img, &mut out);
        assert_eq!(out.len(), 1 + 9 * 4 * 2 * 2);
        let at = |tap: usize, phase: usize, qy: usize, qx: usize| out[1 + tap * 16 + (phase * 2 + qy) * 2 + qx];
        // Tap (1, 2) of phase (py 1, px 0) of cell (qy 1, qx 1): pixel y = (1·2+1)·3+1 = 10, x = (1·2+0)·3+2 = 8.
        assert_eq!(at(5, 2, 1, 1), (10 * 12 + 8) as f32);
        assert_eq!(at(0, 0, 0, 0), 0.0);
    }

    /// The shipped seed CNN (patch conv 3×3/3 → ReLU → max pool 2×2) gives the same
    /// probabilities on real X-rays rewritten as written.
    #[test]
    fn rewritten_seed_cnn_scores_real_xrays_like_the_graph_as_written() {
        // Committed with the code: a missing file fails the test instead of passing it unrun.
        let model_path = workspace().join("models/seed-cnn.onnx");
        assert!(model_path.is_file(), "{} is needed here", model_path.display());
        let bytes = std::fs::read(&model_path).unwrap();
        let card_path = cxr_core::ModelCard::path_for(&model_path);
        let card = cxr_core::ModelCard::load(&card_path).unwrap();
        let proto: pb::ModelProto = prost::Message::decode(&bytes[..]).unwrap();
        let (cut, opening) = rewrite(&proto, &card.io, &card.preprocess).expect("the seed CNN opens with a patch conv");
        assert_eq!(opening.layout, PatchLayout { kernel: 3, pool: 2, cells: 42 });
        assert_eq!((opening.channels, opening.relu), (64, true));
        let ops =
            |p: &pb::ModelProto| p.graph.as_ref().unwrap().node.iter().map(|n| n.op_type.clone()).collect::<Vec<_>>();
        let (before, after) = (ops(&proto), ops(&cut));
        assert_eq!(&before[..3], ["Conv", "Relu", "MaxPool"], "the file's opening");
        assert_eq!(after, before[3..], "the cut graph is the file's, less its opening");

        let rewritten = Model::from_bytes(card.clone(), &card_path, &model_path, &bytes, Batch::Fixed(2)).unwrap();
        assert!(rewritten.patch_layout().is_some());
        let as_written = Model::from_bytes_as_written(card, &card_path, &model_path, &bytes, Batch::Fixed(2)).unwrap();
        let images = xrays();
        let (a, b) = (p_covid(&rewritten, &images), p_covid(&as_written, &images));
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() <= 1e-5, "rewritten {a:?} vs as written {b:?}");
        }
    }

    /// The int8 seed CNN in float form opens with the same patch convolution inside its input's
    /// and its output's quantization; cut after them, it scores like the uncut float form and
    /// like tract's integer kernels.
    #[test]
    fn rewritten_seed_cnn_int8_keeps_its_quantization_grids() {
        use crate::model::GraphForm;
        let model_path = workspace().join("models/seed-cnn-int8.onnx");
        let bytes = std::fs::read(&model_path).unwrap();
        let card_path = cxr_core::ModelCard::path_for(&model_path);
        let card = cxr_core::ModelCard::load(&card_path).unwrap();
        let proto: pb::ModelProto = prost::Message::decode(&bytes[..]).unwrap();
        let float_form = crate::int8_float::rewrite(&proto).expect("seed-cnn-int8 has integer ops");
        let (cut, opening) = rewrite(&float_form, &card.io, &card.preprocess).expect("a patch conv inside grids");
        assert_eq!(opening.layout, PatchLayout { kernel: 3, pool: 2, cells: 42 });
        let (input_grid, output_grid) = (opening.input_grid.unwrap(), opening.output_grid.unwrap());
        assert_eq!((input_grid.lowest, input_grid.highest, output_grid.lowest), (0.0, 255.0, 0.0));
        let ops =
            |p: &pb::ModelProto| p.graph.as_ref().unwrap().node.iter().map(|n| n.op_type.clone()).collect::<Vec<_>>();
        let (before, after) = (ops(&float_form), ops(&cut));
        let opening_ops =
            ["QuantizeLinear", "DequantizeLinear", "Conv", "QuantizeLinear", "MaxPool", "DequantizeLinear"];
        assert_eq!(&before[..6], opening_ops, "the float form's opening");
        assert_eq!(after, before[6..], "the cut graph is the float form's, less its opening");

        let with = |patch_input, int8_as_float| {
            let form = GraphForm { patch_input, int8_as_float, ..GraphForm::AS_WRITTEN };
            Model::from_bytes_with(card.clone(), &card_path, &model_path, &bytes, Batch::Fixed(2), form).unwrap()
        };
        let (cut, uncut, integer) = (with(true, true), with(false, true), with(false, false));
        assert!(cut.patch_opening().is_some_and(|o| o.output_grid.is_some()));
        let images = xrays();
        let (a, b, c) = (p_covid(&cut, &images), p_covid(&uncut, &images), p_covid(&integer, &images));
        for i in 0..images.len() {
            assert!((a[i] - b[i]).abs() < 2e-3, "film {i}: cut {a:?}, uncut float form {b:?}");
            assert!((a[i] - c[i]).abs() < 2e-3, "film {i}: cut {a:?}, integer kernels {c:?}");
        }
    }

    /// A card that reads a value inside the opening (a feature map for heatmaps) keeps the
    /// graph as written: cut, that value would not exist.
    #[test]
    fn a_feature_map_inside_the_opening_keeps_the_graph_whole() {
        let model_path = workspace().join("models/seed-cnn.onnx");
        let proto: pb::ModelProto = prost::Message::decode(&std::fs::read(&model_path).unwrap()[..]).unwrap();
        let mut card = cxr_core::ModelCard::load(&cxr_core::ModelCard::path_for(&model_path)).unwrap();
        for (feature_map, cut) in [("relu_2", false), ("maxpool_3", false), ("relu_6", true)] {
            card.io.feature_map = Some(feature_map.into());
            assert_eq!(rewrite(&proto, &card.io, &card.preprocess).is_some(), cut, "feature map {feature_map}");
        }
    }

    fn xrays() -> Vec<GreyImage> {
        let datasets = datasets();
        ["covid19-radiography/COVID/COVID-1.jpg", "hannover-covid/png/006f3a8a.png"]
            .iter()
            .map(|p| cxr_core::load_image(&datasets.join(p)).unwrap())
            .collect()
    }

    /// P(covid) of every image, run as one batch.
    fn p_covid(m: &Model, images: &[GreyImage]) -> Vec<f32> {
        let mut input = Vec::new();
        for img in images {
            m.preprocess_into(img, &mut input);
        }
        m.session().run(&input, images.len()).unwrap().predictions.into_iter().map(|p| p.p_covid()).collect()
    }
}
