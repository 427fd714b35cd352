//! Rewrites an fp32 ONNX graph, as `onnx_graph` writes it, into QOperator form.
//!
//! Activations become `uint8` with an affine scale and zero point taken from the calibrated
//! [`Range`] of each tensor; weights become `int8`, symmetric, one scale per output channel.
//! Conv → Relu/Clip pairs fuse into one QLinearConv whose `uint8` output range starts at zero, so
//! the clamp is the saturation itself. Fully connected layers run as `MatMulInteger` (see
//! [`Rewriter::matmul`] for why not `QLinearMatMul`).
//!
//! Ops with an integer form (`QLinearConv`, `MatMulInteger`) and ops that only move or pick values
//! (`MaxPool`, `Flatten`, `Identity`, `Reshape`) run on the `uint8` tensors; every other op (pooling
//! averages, residual `Add`, `Concat`, bias `Add`, the sigmoid/softmax head) runs in float between
//! a `DequantizeLinear` and, when the next integer op needs it, a `QuantizeLinear`. Those
//! conversions are inserted lazily, only where a tensor is needed in the other form.

use super::QuantizeError;
use cxr_infer::onnx_proto::{self, float_tensor, int32_tensor, named_node, raw_tensor};
use std::collections::{HashMap, HashSet};
use tract_onnx::pb;
use tract_onnx::pb::tensor_proto::DataType;

/// Observed value range of one tensor over the calibration images.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    pub min: f32,
    pub max: f32,
}

impl Range {
    pub const EMPTY: Range = Range { min: f32::INFINITY, max: f32::NEG_INFINITY };

    pub fn include(&mut self, values: impl IntoIterator<Item = f32>) {
        for v in values {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
    }

    /// `uint8` scale and zero point covering the range and zero, so that zero (padding, ReLU's
    /// floor) is represented exactly.
    pub fn uint8_params(self) -> (f32, u8) {
        let lo = self.min.min(0.0);
        let hi = self.max.max(0.0);
        let scale = if hi > lo && (hi - lo).is_finite() { (hi - lo) / 255.0 } else { 1.0 };
        let zero = (-lo / scale).round().clamp(0.0, 255.0) as u8;
        (scale, zero)
    }
}

/// Calibrated range of every tensor by name.
pub type Ranges = HashMap<String, Range>;

/// Ops that only move, pick or reshape values: they commute with an affine `uint8` encoding, so
/// they run on the quantized tensor and pass its scale and zero point on.
const TRANSPARENT_OPS: [&str; 4] = ["MaxPool", "Flatten", "Identity", "Reshape"];

/// Replaces each `Gemm(x, W, B, transB=1)` by `MatMul(x, Wᵀ)` then `Add(B)`, so the product
/// before the bias is a tensor of its own: calibration measures its range and quantization maps
/// it onto an integer matmul, which has no bias input.
pub fn split_gemm(model: &pb::ModelProto) -> Result<pb::ModelProto, QuantizeError> {
    let mut model = model.clone();
    let graph = model.graph.as_mut().ok_or(QuantizeError::NoGraph)?;
    let mut transposed = Vec::new();
    let mut nodes = Vec::with_capacity(graph.node.len());
    for node in std::mem::take(&mut graph.node) {
        if node.op_type != "Gemm" {
            nodes.push(node);
            continue;
        }
        let attr = |name: &str| node.attribute.iter().find(|a| a.name == name);
        let trans_b = attr("transB").is_some_and(|a| a.i == 1);
        let plain = attr("transA").is_none_or(|a| a.i == 0)
            && attr("alpha").is_none_or(|a| a.f == 1.0)
            && attr("beta").is_none_or(|a| a.f == 1.0);
        let weight = node.input.get(1).and_then(|w| graph.initializer.iter().find(|t| &t.name == w));
        let (Some(weight), true, true, 3) = (weight, trans_b, plain, node.input.len()) else {
            return Err(QuantizeError::Unsupported {
                node: node.name.clone(),
                reason: "only Gemm(x, W, B) with transB=1 and no alpha/beta/transA is quantized".into(),
            });
        };
        let (rows, cols) = (weight.dims[0] as usize, weight.dims[1] as usize);
        let w = float_values(weight, &node.name)?;
        let mut t = vec![0.0f32; w.len()];
        for r in 0..rows {
            for c in 0..cols {
                t[c * rows + r] = w[r * cols + c];
            }
        }
        let t_name = format!("{}.t", weight.name);
        transposed.push(float_tensor(&t_name, &[cols as i64, rows as i64], &t));
        let product = format!("{}.matmul", node.output[0]);
        nodes.push(named_node(
            &format!("{}/matmul", node.name),
            "MatMul",
            &[&node.input[0], &t_name],
            &[&product],
            vec![],
        ));
        nodes.push(named_node(
            &format!("{}/bias_add", node.name),
            "Add",
            &[&product, &node.input[2]],
            &[&node.output[0]],
            vec![],
        ));
    }
    graph.node = nodes;
    graph.initializer.extend(transposed);
    let used: HashSet<&str> = graph.node.iter().flat_map(|n| n.input.iter().map(String::as_str)).collect();
    let keep: Vec<bool> = graph.initializer.iter().map(|t| used.contains(t.name.as_str())).collect();
    let mut k = keep.iter();
    graph.initializer.retain(|_| *k.next().expect("one flag per initializer"));
    Ok(model)
}

/// A tensor available in `uint8` form: its name and the names of its scale and zero point.
#[derive(Debug, Clone)]
struct Quantized {
    name: String,
    scale: String,
    zero: String,
}

struct Rewriter<'a> {
    ranges: &'a Ranges,
    initializers: HashMap<String, pb::TensorProto>,
    nodes: Vec<pb::NodeProto>,
    new_initializers: Vec<pb::TensorProto>,
    /// Tensors available in float under their own name.
    float: HashSet<String>,
    quantized: HashMap<String, Quantized>,
}

/// Quantizes `model`, which must have been through [`split_gemm`] (as the calibration was).
/// Conv and MatMul nodes named in `keep_float` stay in float (mixed precision), for layers whose
/// int8 error costs more than their speed-up is worth.
pub fn quantize_graph(
    model: &pb::ModelProto,
    ranges: &Ranges,
    keep_float: &HashSet<String>,
) -> Result<pb::ModelProto, QuantizeError> {
    let graph = model.graph.as_ref().ok_or(QuantizeError::NoGraph)?;
    let mut rw = Rewriter {
        ranges,
        initializers: graph.initializer.iter().map(|t| (t.name.clone(), t.clone())).collect(),
        nodes: Vec::new(),
        new_initializers: Vec::new(),
        float: graph.input.iter().map(|i| i.name.clone()).collect(),
        quantized: HashMap::new(),
    };
    let outputs: HashSet<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
    let mut readers: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, node) in graph.node.iter().enumerate() {
        for input in &node.input {
            readers.entry(input.as_str()).or_default().push(i);
        }
    }
    let mut fused = vec![false; graph.node.len()];
    for (i, node) in graph.node.iter().enumerate() {
        if fused[i] {
            continue;
        }
        match node.op_type.as_str() {
            _ if keep_float.contains(&node.name) => rw.float_op(node)?,
            "Conv" => {
                // Fuse a lone following Relu or Clip(0, ·): its output range starts at zero.
                let out = &node.output[0];
                let activation = match readers.get(out.as_str()).map(Vec::as_slice) {
                    Some(&[j]) if !outputs.contains(out.as_str()) && rw.clamps_at_zero(&graph.node[j]) => Some(j),
                    _ => None,
                };
                let y = match activation {
                    Some(j) => {
                        fused[j] = true;
                        graph.node[j].output[0].clone()
                    }
                    None => out.clone(),
                };
                rw.conv(node, &y)?;
            }
            "MatMul" => rw.matmul(node)?,
            op if TRANSPARENT_OPS.contains(&op)
                && !rw.float.contains(&node.input[0])
                && rw.quantized.contains_key(&node.input[0]) =>
            {
                rw.transparent(node)
            }
            _ => rw.float_op(node)?,
        }
    }
    for output in &graph.output {
        rw.float(&output.name)?;
    }
    let mut out_graph = graph.clone();
    let used: HashSet<&str> = rw.nodes.iter().flat_map(|n| n.input.iter().map(String::as_str)).collect();
    let mut initializers: Vec<pb::TensorProto> =
        graph.initializer.iter().filter(|t| used.contains(t.name.as_str())).cloned().collect();
    initializers.extend(rw.new_initializers.iter().cloned());
    out_graph.node = rw.nodes;
    out_graph.initializer = initializers;
    out_graph.value_info.clear();
    Ok(pb::ModelProto { graph: Some(out_graph), ..model.clone() })
}

impl Rewriter<'_> {
    fn range(&self, tensor: &str) -> Result<Range, QuantizeError> {
        self.ranges.get(tensor).copied().ok_or_else(|| QuantizeError::NoRange(tensor.to_owned()))
    }

    fn initializer(&self, name: &str, node: &pb::NodeProto) -> Result<&pb::TensorProto, QuantizeError> {
        self.initializers.get(name).ok_or_else(|| QuantizeError::Unsupported {
            node: node.name.clone(),
            reason: format!("`{name}` is not a constant; only constant weights are quantized"),
        })
    }

    /// True for `Relu` and for `Clip` whose lower bound is a constant 0 (ReLU6).
    fn clamps_at_zero(&self, node: &pb::NodeProto) -> bool {
        match node.op_type.as_str() {
            "Relu" => true,
            "Clip" => node
                .input
                .get(1)
                .and_then(|min| self.initializers.get(min))
                .and_then(|t| float_values(t, &node.name).ok())
                .is_some_and(|v| v == [0.0]),
            _ => false,
        }
    }

    /// Scale and zero-point initializers for `tensor` from its calibrated range.
    fn quantization_of(&mut self, tensor: &str) -> Result<Quantized, QuantizeError> {
        let (scale, zero) = self.range(tensor)?.uint8_params();
        let q = Quantized {
            name: format!("{tensor}.q"),
            scale: format!("{tensor}.scale"),
            zero: format!("{tensor}.zero_point"),
        };
        self.new_initializers.push(float_tensor(&q.scale, &[], &[scale]));
        self.new_initializers.push(raw_tensor(&q.zero, DataType::Uint8, &[], vec![zero]));
        Ok(q)
    }

    /// The `uint8` form of `tensor`, quantizing it here if it only exists in float.
    fn quantized(&mut self, tensor: &str) -> Result<Quantized, QuantizeError> {
        if let Some(q) = self.quantized.get(tensor) {
            return Ok(q.clone());
        }
        let q = self.quantization_of(tensor)?;
        self.nodes.push(named_node(
            &format!("{tensor}/quantize"),
            "QuantizeLinear",
            &[tensor, &q.scale, &q.zero],
            &[&q.name],
            vec![],
        ));
        self.quantized.insert(tensor.to_owned(), q.clone());
        Ok(q)
    }

    /// The float form of `tensor` (under its own name), dequantizing it here if needed.
    fn float(&mut self, tensor: &str) -> Result<String, QuantizeError> {
        if self.float.contains(tensor) || self.initializers.contains_key(tensor) {
            return Ok(tensor.to_owned());
        }
        let q = self.quantized.get(tensor).cloned().ok_or_else(|| QuantizeError::NoRange(tensor.to_owned()))?;
        self.nodes.push(named_node(
            &format!("{tensor}/dequantize"),
            "DequantizeLinear",
            &[&q.name, &q.scale, &q.zero],
            &[tensor],
            vec![],
        ));
        self.float.insert(tensor.to_owned());
        Ok(tensor.to_owned())
    }

    /// `Conv(x, W, B)` → `QLinearConv` writing the `uint8` form of `y` (the conv's own output, or
    /// the output of the activation fused into it).
    fn conv(&mut self, node: &pb::NodeProto, y: &str) -> Result<(), QuantizeError> {
        let x = self.quantized(&node.input[0])?;
        let weight = self.initializer(&node.input[1], node)?.clone();
        let w = float_values(&weight, &node.name)?;
        let out_channels = weight.dims[0] as usize;
        let bias = match node.input.get(2) {
            Some(b) => float_values(self.initializer(b, node)?, &node.name)?,
            None => vec![0.0; out_channels],
        };
        let x_scale = self.range(&node.input[0])?.uint8_params().0;
        let per_channel = w.len() / out_channels;
        let mut w_scales = Vec::with_capacity(out_channels);
        let mut w_q = Vec::with_capacity(w.len());
        for c in 0..out_channels {
            // A channel whose folded weights are all but zero (BatchNorm of a dead channel) would
            // get so fine a weight scale that its bias overflows int32 and is lost: coarsen the
            // scale until the bias fits. Its weights then round to ~0, as they nearly are.
            let min_scale = bias[c].abs() / (x_scale * MAX_INT32_BIAS);
            let (scale, q) = symmetric_int8(&w[c * per_channel..(c + 1) * per_channel], min_scale);
            w_scales.push(scale);
            w_q.extend(q);
        }
        let b_q: Vec<i32> = bias.iter().zip(&w_scales).map(|(b, ws)| (b / (x_scale * ws)).round() as i32).collect();
        let out = self.quantization_of(y)?;
        let base = &weight.name;
        let names =
            [format!("{base}.q"), format!("{base}.scale"), format!("{base}.zero_point"), format!("{base}.bias_q")];
        self.new_initializers.push(raw_tensor(&names[0], DataType::Int8, &weight.dims, w_q));
        self.new_initializers.push(float_tensor(&names[1], &[out_channels as i64], &w_scales));
        self.new_initializers.push(raw_tensor(
            &names[2],
            DataType::Int8,
            &[out_channels as i64],
            vec![0; out_channels],
        ));
        self.new_initializers.push(int32_tensor(&names[3], &b_q));
        let inputs = [&x.name, &x.scale, &x.zero, &names[0], &names[1], &names[2], &out.scale, &out.zero, &names[3]];
        self.nodes.push(named_node(
            &node.name,
            "QLinearConv",
            &inputs.map(String::as_str),
            &[&out.name],
            node.attribute.clone(),
        ));
        self.quantized.insert(y.to_owned(), out);
        Ok(())
    }

    /// `MatMul(x, W)` with constant `W` → `MatMulInteger` on the `uint8` input and `int8` weights
    /// (one scale per output column), its `int32` sums rescaled to float.
    ///
    /// Not `QLinearMatMul`: it requantizes its output to 8 bits, and the last fully connected
    /// layer writes the logits, whose 8-bit rounding moved seed-cnn's P(covid) by up to 0.03 on
    /// validation images. The float rescale after `MatMulInteger` also gives each output column
    /// its own weight scale, which a fully connected layer's uneven columns need.
    fn matmul(&mut self, node: &pb::NodeProto) -> Result<(), QuantizeError> {
        let x = self.quantized(&node.input[0])?;
        let x_scale = self.range(&node.input[0])?.uint8_params().0;
        let weight = self.initializer(&node.input[1], node)?.clone();
        let w = float_values(&weight, &node.name)?;
        let (rows, cols) = (weight.dims[0] as usize, weight.dims[1] as usize);
        let mut w_q = vec![0u8; w.len()];
        let mut rescale = Vec::with_capacity(cols);
        for c in 0..cols {
            let column: Vec<f32> = (0..rows).map(|r| w[r * cols + c]).collect();
            let (scale, q) = symmetric_int8(&column, 0.0);
            for (r, v) in q.into_iter().enumerate() {
                w_q[r * cols + c] = v;
            }
            rescale.push(x_scale * scale);
        }
        let y = &node.output[0];
        let base = &weight.name;
        let (w_name, rescale_name) = (format!("{base}.q"), format!("{base}.rescale"));
        self.new_initializers.push(raw_tensor(&w_name, DataType::Int8, &weight.dims, w_q));
        self.new_initializers.push(float_tensor(&rescale_name, &[cols as i64], &rescale));
        let (sums, acc) = (format!("{y}.int32"), format!("{y}.acc"));
        self.nodes.push(named_node(&node.name, "MatMulInteger", &[&x.name, &w_name, &x.zero], &[&sums], vec![]));
        let to_float = pb::AttributeProto {
            name: "to".into(),
            r#type: pb::attribute_proto::AttributeType::Int as i32,
            i: DataType::Float as i64,
            ..Default::default()
        };
        self.nodes.push(named_node(&format!("{}/cast", node.name), "Cast", &[&sums], &[&acc], vec![to_float]));
        self.nodes.push(named_node(&format!("{}/rescale", node.name), "Mul", &[&acc, &rescale_name], &[y], vec![]));
        self.float.insert(y.clone());
        Ok(())
    }

    /// The op unchanged on the `uint8` tensor; the output keeps the input's scale and zero point.
    fn transparent(&mut self, node: &pb::NodeProto) {
        let x = self.quantized[&node.input[0]].clone();
        let y = &node.output[0];
        let out = Quantized { name: format!("{y}.q"), ..x.clone() };
        let mut inputs: Vec<&str> = vec![&x.name];
        inputs.extend(node.input[1..].iter().map(String::as_str));
        self.nodes.push(named_node(&node.name, &node.op_type, &inputs, &[&out.name], node.attribute.clone()));
        self.quantized.insert(y.clone(), out);
    }

    /// The op unchanged, in float.
    fn float_op(&mut self, node: &pb::NodeProto) -> Result<(), QuantizeError> {
        let mut copy = node.clone();
        for input in &mut copy.input {
            if !input.is_empty() {
                *input = self.float(input)?;
            }
        }
        self.float.extend(node.output.iter().cloned());
        self.nodes.push(copy);
        Ok(())
    }
}

/// One scale for all of `values`, `max |v| / 127`, and the values rounded to it.
/// Largest magnitude a QLinearConv's int32 bias gets: 2²⁴ leaves the int32 accumulator room for
/// the products (255 × 127 × 1,280 inputs is under 2²⁶) without overflowing.
const MAX_INT32_BIAS: f32 = (1 << 24) as f32;

/// Symmetric int8 values with the largest magnitude at ±127, and their scale (at least `min_scale`).
fn symmetric_int8(values: &[f32], min_scale: f32) -> (f32, Vec<u8>) {
    let max = values.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
    let scale = scale.max(min_scale);
    (scale, values.iter().map(|v| ((v / scale).round().clamp(-127.0, 127.0) as i8) as u8).collect())
}

/// A float initializer's values, or why it cannot be quantized.
pub(crate) fn float_values(t: &pb::TensorProto, node: &str) -> Result<Vec<f32>, QuantizeError> {
    onnx_proto::float_values(t).ok_or_else(|| QuantizeError::Unsupported {
        node: node.to_owned(),
        reason: format!("`{}` is not a float tensor", t.name),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uint8_params_cover_zero_and_the_range() {
        let (scale, zero) = Range { min: 0.0, max: 2.55 }.uint8_params();
        assert!((scale - 0.01).abs() < 1e-7 && zero == 0);
        let (scale, zero) = Range { min: -1.0, max: 1.0 }.uint8_params();
        assert!((scale - 2.0 / 255.0).abs() < 1e-7);
        // −1 + zero·scale, the value zero decodes to, is within half a step of 0 (127.5 rounds either way in f32).
        assert!((zero as f32 * scale - 1.0).abs() <= scale / 2.0, "zero point {zero}");
        // A range away from zero still includes zero, so padding stays exact.
        let (_, zero) = Range { min: 3.0, max: 5.0 }.uint8_params();
        assert_eq!(zero, 0);
        // A constant-zero tensor gets a usable scale.
        assert_eq!(Range { min: 0.0, max: 0.0 }.uint8_params(), (1.0, 0));
    }

    #[test]
    fn symmetric_int8_keeps_the_largest_magnitude_exact() {
        let (scale, q) = symmetric_int8(&[0.5, -1.27, 0.0], 0.0);
        assert!((scale - 0.01).abs() < 1e-7);
        assert_eq!(q.iter().map(|&b| b as i8).collect::<Vec<_>>(), [50, -127, 0]);
    }

    /// A one-Conv float graph: input `x` of `x_dims` (`[1, c, h, w]`), weights `w` of `w_dims`, bias `b`, output `y`.
    fn single_conv(
        x_dims: &[i64],
        w_dims: &[i64],
        w: &[f32],
        b: &[f32],
        attributes: Vec<pb::AttributeProto>,
    ) -> pb::ModelProto {
        let x_shape = crate::network::Shape::Map { channels: x_dims[1], height: x_dims[2], width: x_dims[3] };
        let graph = pb::GraphProto {
            node: vec![named_node("conv", "Conv", &["x", "w", "b"], &["y"], attributes)],
            initializer: vec![float_tensor("w", w_dims, w), float_tensor("b", &[b.len() as i64], b)],
            input: vec![crate::onnx_graph::value_info("x", &x_shape)],
            output: vec![pb::ValueInfoProto { name: "y".into(), ..Default::default() }],
            ..Default::default()
        };
        pb::ModelProto {
            graph: Some(graph),
            ir_version: 7,
            opset_import: vec![pb::OperatorSetIdProto { domain: String::new(), version: 13 }],
            ..Default::default()
        }
    }

    /// Quantizes `model` with the given ranges of `x` and `y` and runs the int8 graph in tract.
    fn run_int8(
        model: &pb::ModelProto,
        x_range: Range,
        y_range: Range,
        x_dims: &[usize],
        x: &[f32],
    ) -> tract_onnx::prelude::Tensor {
        use tract_onnx::prelude::*;
        let ranges: Ranges = [("x".to_owned(), x_range), ("y".to_owned(), y_range)].into_iter().collect();
        let int8 = quantize_graph(model, &ranges, &HashSet::new()).unwrap();
        let mut inference = tract_onnx::onnx().model_for_proto_model(&int8).unwrap();
        inference.set_input_fact(0, f32::fact(x_dims).into()).unwrap();
        let plan = inference.into_optimized().unwrap().into_runnable().unwrap();
        let x = Tensor::from_shape(x_dims, x).unwrap();
        plan.run(tvec!(x.into_tvalue())).unwrap().remove(0).into_tensor()
    }

    /// A 1×1 conv of one input channel into two: a live channel, and a dead one (weight 1e-9)
    /// whose output is all bias, as BatchNorm folding leaves in EfficientNet-Lite0.
    #[test]
    fn a_dead_channel_keeps_its_bias_through_int8() {
        let model = single_conv(&[1, 1, 2, 2], &[2, 1, 1, 1], &[0.5, 1e-9], &[0.1, 3.0], vec![]);
        let range = Range { min: 0.0, max: 4.0 };
        let y = run_int8(&model, range, range, &[1, 1, 2, 2], &[0.0, 1.0, 2.0, 4.0]);
        let y = y.to_plain_array_view::<f32>().unwrap();
        let step = 4.0 / 255.0;
        for (i, x) in [0.0f32, 1.0, 2.0, 4.0].into_iter().enumerate() {
            let live = y[[0, 0, i / 2, i % 2]];
            assert!((live - (0.5 * x + 0.1)).abs() <= step, "live channel at x = {x}: {live}");
            let dead = y[[0, 1, i / 2, i % 2]];
            assert!((dead - 3.0).abs() <= step, "the dead channel lost its bias: {dead}");
        }
    }

    /// Zero padding means the real value 0, which for an input whose range straddles zero (a
    /// normalised image) is the zero point, not the byte 0.
    #[test]
    fn padding_of_a_signed_input_is_real_zero() {
        let pads = pb::AttributeProto {
            name: "pads".into(),
            r#type: pb::attribute_proto::AttributeType::Ints as i32,
            ints: vec![1, 1, 1, 1],
            ..Default::default()
        };
        let model = single_conv(&[1, 1, 3, 3], &[1, 1, 3, 3], &[1.0; 9], &[0.0], vec![pads]);
        let y =
            run_int8(&model, Range { min: -2.0, max: 2.0 }, Range { min: 0.0, max: 10.0 }, &[1, 1, 3, 3], &[1.0; 9]);
        let y = y.to_plain_array_view::<f32>().unwrap();
        // Sums of the ones inside the padded 3×3 window: 4 at corners, 6 at edges, 9 in the middle (clipped to 10 by y's range).
        let expected = [[4.0, 6.0, 4.0], [6.0, 9.0, 6.0], [4.0, 6.0, 4.0]];
        for r in 0..3 {
            for c in 0..3 {
                assert!(
                    (y[[0, 0, r, c]] - expected[r][c]).abs() <= 0.1,
                    "({r}, {c}): {} (expected {})",
                    y[[0, 0, r, c]],
                    expected[r][c]
                );
            }
        }
    }

    /// A depthwise 3×3 conv (one group per channel, as in MobileNetV2 and EfficientNet-Lite0) with
    /// weight scales 1,000× apart per channel matches float within a few output steps.
    #[test]
    fn a_depthwise_conv_with_uneven_channels_matches_float() {
        let int = |name: &str, v: Vec<i64>| pb::AttributeProto {
            name: name.into(),
            r#type: pb::attribute_proto::AttributeType::Ints as i32,
            ints: v,
            ..Default::default()
        };
        let group = pb::AttributeProto {
            name: "group".into(),
            r#type: pb::attribute_proto::AttributeType::Int as i32,
            i: 3,
            ..Default::default()
        };
        let gains = [0.001f32, 0.1, 1.0];
        let w: Vec<f32> = gains.iter().flat_map(|g| (0..9).map(move |k| g * (k as f32 - 4.0) / 4.0)).collect();
        let b = [0.5f32, -0.2, 0.1];
        let model = single_conv(&[1, 3, 4, 4], &[3, 1, 3, 3], &w, &b, vec![group, int("pads", vec![1, 1, 1, 1])]);
        let x: Vec<f32> = (0..48).map(|i| ((i * 7) % 13) as f32 / 13.0 * 6.0).collect();
        // Float reference, and the output's range for the calibration.
        let mut reference = [0.0f32; 48];
        for c in 0..3 {
            for r in 0..4i64 {
                for col in 0..4i64 {
                    let mut acc = b[c];
                    for (k, (dr, dc)) in (-1..=1).flat_map(|dr| (-1..=1).map(move |dc| (dr, dc))).enumerate() {
                        let (rr, cc) = (r + dr, col + dc);
                        if (0..4).contains(&rr) && (0..4).contains(&cc) {
                            acc += w[c * 9 + k] * x[c * 16 + (rr * 4 + cc) as usize];
                        }
                    }
                    reference[c * 16 + (r * 4 + col) as usize] = acc;
                }
            }
        }
        let mut y_range = Range::EMPTY;
        y_range.include(reference.iter().copied());
        let y = run_int8(&model, Range { min: 0.0, max: 6.0 }, y_range, &[1, 3, 4, 4], &x);
        let y: Vec<f32> = y.to_plain_array_view::<f32>().unwrap().iter().copied().collect();
        let (y_step, x_step) = (y_range.uint8_params().0, 6.0 / 255.0);
        for c in 0..3 {
            // Each input is off by up to half an input step; nine of them, weighted, plus output rounding.
            let tolerance = y_step + 9.0 * gains[c] * x_step / 2.0;
            for i in 0..16 {
                let (got, want) = (y[c * 16 + i], reference[c * 16 + i]);
                assert!((got - want).abs() <= tolerance, "channel {c} pixel {i}: int8 {got}, float {want}");
            }
        }
    }

    #[test]
    fn a_minimum_scale_coarsens_near_zero_weights() {
        let (scale, q) = symmetric_int8(&[1e-9, -2e-9], 0.5);
        assert_eq!(scale, 0.5);
        assert_eq!(q, [0, 0]);
    }
}
