//! Runs an int8 (QOperator) graph's integer products as float products of the same quantized
//! values, for CPUs where tract's integer kernels are the slow path.
//!
//! On x86-64, tract 0.23's integer matrix kernels widen every int8 to 16 bits; they ran
//! `seed-cnn-int8` ~90× and an int8 `mobilenet-v2-fine-tuned` ~45× slower than the fp32 files
//! (BENCHMARKS.md). What makes a model int8 is its numbers — int8 weights, and activations rounded
//! and saturated onto a uint8 grid after every integer op — not the accumulator that adds them up.
//! So at load time, keeping those numbers:
//!
//! - `QLinearConv(x_q, W_q, b_q)` becomes `DequantizeLinear(x_q)` → `Conv(x, W, b)` →
//!   `QuantizeLinear`, with `W = (W_q − W_zero)·W_scale` and `b = b_q·x_scale·W_scale` computed once
//!   here. The float sum is `x_scale·W_scale` times the integer accumulator up to f32 rounding, and
//!   `QuantizeLinear` rounds and saturates it onto the same uint8 grid (same scale, same zero). An
//!   output differs from the integer kernel's only where that product lies within f32 rounding of a
//!   half step, and then by one step.
//! - `MatMulInteger(x_q, W_q, x_zero)` becomes `MatMul(x_q − x_zero, W_q − W_zero)` in float; the
//!   `Cast` to float that reads it (the only reader `cxr quantize` writes) has nothing left to do.
//!
//! The file and its sha256 are unchanged. `CXR_INT8_KERNELS=integer` runs tract's integer kernels
//! instead (as does `CXR_GRAPH_FORM=onnx`, which turns every load-time rewrite off); the tests below
//! check both forms give the same probabilities.

use crate::onnx_proto::{
    consumers, float_tensor, float_values, initializer, int, integer_values, is_graph_output, node,
};
use std::collections::HashMap;
use tract_onnx::pb;
use tract_onnx::pb::tensor_proto::DataType;

/// Whether int8 graphs run as float products: `CXR_INT8_KERNELS=float|integer`, by default float
/// on every CPU. On x86-64 that is timed (above). On ARM it rests on a proxy, not on a board:
/// counted under qemu-user (BENCHMARKS.md, "ARM: int8 against fp32 by instruction count"), tract's
/// NEON integer kernels and the generic integer ops around them take 2.3–3.2× the instructions of
/// this float form on every Pi setting, Pi 5's dot-product kernels included.
/// `CXR_INT8_KERNELS=integer` runs tract's integer kernels, to time them on a real board.
pub fn wanted() -> bool {
    std::env::var("CXR_INT8_KERNELS").as_deref() != Ok("integer")
}

/// The graph with every `QLinearConv` and `MatMulInteger` in float form, or `None` when it has none
/// or one this rewrite does not recognise (non-constant weights, per-channel activation scales, an
/// integer product read by anything but a `Cast` to float); then the graph runs as written.
pub fn rewrite(proto: &pb::ModelProto) -> Option<pb::ModelProto> {
    let graph = proto.graph.as_ref()?;
    if !graph.node.iter().any(|n| n.op_type == "QLinearConv" || n.op_type == "MatMulInteger") {
        return None;
    }
    let mut out = proto.clone();
    let g = out.graph.as_mut().expect("has a graph");
    let mut rewriter = Rewriter {
        graph,
        initializers: vec![],
        nodes: Vec::with_capacity(graph.node.len()),
        dequantized: HashMap::new(),
    };
    for n in &graph.node {
        match n.op_type.as_str() {
            "QLinearConv" => rewriter.conv(n)?,
            "MatMulInteger" => rewriter.matmul(n)?,
            _ => rewriter.nodes.push(n.clone()),
        }
    }
    let Rewriter { initializers, nodes, .. } = rewriter;
    g.node = nodes;
    g.initializer.extend(initializers);
    g.initializer.push(float_tensor(ONE, &[], &[1.0]));
    // Declared types of the rewritten values would now be wrong (int32 sums are float).
    let float_now: Vec<&str> =
        graph.node.iter().filter(|n| n.op_type == "MatMulInteger").map(|n| n.output[0].as_str()).collect();
    g.value_info.retain(|v| !float_now.contains(&v.name.as_str()));
    Some(out)
}

/// Name of the scalar 1.0 that turns a `DequantizeLinear` into "subtract the zero point".
const ONE: &str = "cxr.int8f.one";

struct Rewriter<'a> {
    graph: &'a pb::GraphProto,
    initializers: Vec<pb::TensorProto>,
    nodes: Vec<pb::NodeProto>,
    /// Float form already made of (quantized value, scale, zero point), so a tensor read by
    /// several integer ops is converted once.
    dequantized: HashMap<(String, String, String), String>,
}

impl Rewriter<'_> {
    /// `QLinearConv(x, x_scale, x_zero, W, W_scale, W_zero, y_scale, y_zero[, B])`.
    fn conv(&mut self, n: &pb::NodeProto) -> Option<()> {
        let input = |i: usize| n.input.get(i).map(String::as_str).filter(|s| !s.is_empty());
        let (weight, w_scale, w_zero) = (self.ints(input(3)?)?, self.floats(input(4)?)?, self.ints(input(5)?)?);
        let x_scale = self.floats(input(1)?)?;
        let [x_scale] = x_scale[..] else { return None };
        let out_channels = *initializer(self.graph, input(3)?)?.dims.first()? as usize;
        if out_channels == 0 || weight.len() % out_channels != 0 {
            return None;
        }
        let per_channel =
            |values: &[f32], c: usize| if values.len() == 1 { Some(values[0]) } else { values.get(c).copied() };
        let w_zero: Vec<f32> = w_zero.iter().map(|&z| z as f32).collect();
        let taps = weight.len() / out_channels;
        let mut w = Vec::with_capacity(weight.len());
        for (c, row) in weight.chunks_exact(taps).enumerate() {
            let (scale, zero) = (per_channel(&w_scale, c)?, per_channel(&w_zero, c)?);
            w.extend(row.iter().map(|&q| (q as f32 - zero) * scale));
        }
        let bias = match input(8) {
            Some(name) => {
                let b = self.ints(name)?;
                if b.len() != out_channels {
                    return None;
                }
                b.iter()
                    .enumerate()
                    .map(|(c, &q)| Some(q as f32 * x_scale * per_channel(&w_scale, c)?))
                    .collect::<Option<Vec<f32>>>()?
            }
            None => vec![0.0; out_channels],
        };
        let y = &n.output[0];
        let p = |s: &str| format!("cxr.int8f.{y}.{s}");
        let dims = initializer(self.graph, input(3)?)?.dims.clone();
        self.initializers.push(float_tensor(&p("weight"), &dims, &w));
        self.initializers.push(float_tensor(&p("bias"), &[out_channels as i64], &bias));
        let x = self.dequantize(input(0)?, input(1)?, input(2))?;
        let mut conv = node("Conv", &[&x, &p("weight"), &p("bias")], &[&p("sum")], n.attribute.clone());
        conv.name = n.name.clone();
        self.nodes.push(conv);
        let mut quantize = vec![p("sum"), input(6)?.to_owned()];
        quantize.extend(input(7).map(str::to_owned));
        let quantize: Vec<&str> = quantize.iter().map(String::as_str).collect();
        self.nodes.push(node("QuantizeLinear", &quantize, &[y], vec![]));
        Some(())
    }

    /// `MatMulInteger(A, B[, A_zero[, B_zero]])` with constant `B`, read only by `Cast`s to float.
    fn matmul(&mut self, n: &pb::NodeProto) -> Option<()> {
        let input = |i: usize| n.input.get(i).map(String::as_str).filter(|s| !s.is_empty());
        let y = &n.output[0];
        let casts_to_float = |at: usize| {
            let reader = &self.graph.node[at];
            reader.op_type == "Cast" && int(reader, "to") == Some(DataType::Float as i64)
        };
        if is_graph_output(self.graph, y) || !consumers(self.graph, y).all(casts_to_float) {
            return None;
        }
        let b = initializer(self.graph, input(1)?)?;
        let &[rows, cols] = &b.dims[..] else { return None };
        let b_zero = match input(3) {
            Some(name) => self.ints(name)?,
            None => vec![0],
        };
        let values = self.ints(input(1)?)?;
        if values.len() != (rows * cols) as usize || (b_zero.len() != 1 && b_zero.len() != cols as usize) {
            return None;
        }
        let w: Vec<f32> = values
            .iter()
            .enumerate()
            .map(|(i, &q)| (q - b_zero[if b_zero.len() == 1 { 0 } else { i % cols as usize }]) as f32)
            .collect();
        let weight = format!("cxr.int8f.{y}.weight");
        self.initializers.push(float_tensor(&weight, &b.dims, &w));
        let a = self.dequantize(input(0)?, ONE, input(2))?;
        let mut matmul = node("MatMul", &[&a, &weight], &[y], vec![]);
        matmul.name = n.name.clone();
        self.nodes.push(matmul);
        Some(())
    }

    /// The float value `(q − zero)·scale` of a quantized tensor, made once per (tensor, scale, zero).
    fn dequantize(&mut self, q: &str, scale: &str, zero: Option<&str>) -> Option<String> {
        if scale != ONE && self.floats(scale)?.len() != 1 {
            return None;
        }
        let key = (q.to_owned(), scale.to_owned(), zero.unwrap_or_default().to_owned());
        if let Some(name) = self.dequantized.get(&key) {
            return Some(name.clone());
        }
        let name = format!("cxr.int8f.{q}.{}", if scale == ONE { "centred" } else { "dequantized" });
        let mut inputs = vec![q, scale];
        inputs.extend(zero);
        self.nodes.push(node("DequantizeLinear", &inputs, &[&name], vec![]));
        self.dequantized.insert(key, name.clone());
        Some(name)
    }

    fn floats(&self, name: &str) -> Option<Vec<f32>> {
        float_values(initializer(self.graph, name)?)
    }

    fn ints(&self, name: &str) -> Option<Vec<i32>> {
        integer_values(initializer(self.graph, name)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Batch, Model};
    use cxr_core::GreyImage;
    use cxr_test_support::{datasets, workspace};

    /// `seed-cnn-int8` (two QLinearConv, two MatMulInteger) scored both ways on real chest X-rays.
    #[test]
    fn float_form_of_seed_cnn_int8_gives_the_integer_kernels_probabilities() {
        let path = workspace().join("models/seed-cnn-int8.onnx");
        let bytes = std::fs::read(&path).unwrap();
        let card_path = cxr_core::ModelCard::path_for(&path);
        let card = cxr_core::ModelCard::load(&card_path).unwrap();
        let proto = <pb::ModelProto as prost::Message>::decode(&bytes[..]).unwrap();
        let rewritten = rewrite(&proto).expect("seed-cnn-int8 has integer ops this rewrite knows");
        let ops =
            |p: &pb::ModelProto, op: &str| p.graph.as_ref().unwrap().node.iter().filter(|n| n.op_type == op).count();
        assert_eq!((ops(&proto, "QLinearConv"), ops(&proto, "MatMulInteger")), (2, 2));
        assert_eq!((ops(&rewritten, "QLinearConv"), ops(&rewritten, "MatMulInteger")), (0, 0));
        assert_eq!(ops(&rewritten, "Conv") + ops(&rewritten, "MatMul"), 4);

        let integer = Model::from_bytes_as_written(card.clone(), &card_path, &path, &bytes, Batch::Fixed(1)).unwrap();
        let form = crate::GraphForm { int8_as_float: true, ..crate::GraphForm::AS_WRITTEN };
        let float = Model::from_bytes_with(card, &card_path, &path, &bytes, Batch::Fixed(1), form).unwrap();
        assert!(float.int8_as_float() && !integer.int8_as_float());
        let fp32 = Model::load(&workspace().join("models/seed-cnn.onnx")).unwrap();
        let datasets = datasets();
        let images = [
            "covid19-radiography/COVID/COVID-1.jpg",
            "covid19-radiography/Normal/Normal-10.jpg",
            "chest_xray/test/NORMAL/IM-0001-0001.jpeg",
            "covid-chestxray-dataset/images/000001-12.jpg",
            "hannover-covid/png/006f3a8a.png",
            "nih-chestxray14-sample/Pneumonia/00000061_012.jpg",
        ];
        let covid = |m: &Model, img: &GreyImage| {
            let p = m.session().predict_image(img).unwrap();
            p.p_covid()
        };
        let (mut largest, mut moved) = (0.0f32, 0.0f32);
        for path in images {
            let img = cxr_core::load_image(&datasets.join(path)).unwrap();
            let (a, b, c) = (covid(&integer, &img), covid(&float, &img), covid(&fp32, &img));
            assert!((a - b).abs() < 2e-3, "{path}: integer kernels {a}, float form {b}");
            largest = largest.max((a - b).abs());
            moved = moved.max((a - c).abs());
        }
        // Still the int8 model, not the fp32 one: quantization moved P(covid) by more than the forms differ.
        assert!(moved > largest, "int8 vs fp32 {moved}, float form vs integer kernels {largest}");
    }

    #[test]
    fn graphs_without_integer_ops_are_left_alone() {
        let bytes = std::fs::read(workspace().join("models/seed-cnn.onnx")).unwrap();
        let proto = <pb::ModelProto as prost::Message>::decode(&bytes[..]).unwrap();
        assert!(rewrite(&proto).is_none());
    }
}
