//! A tiny but real convolutional network written straight to ONNX through tract's protobuf
//! types, with its model card.
//!
//! It exists so the runtime, the CLI and their tests can be exercised end to end (load,
//! verify, run, explain, refuse) without a trained model, and it has the graph shape every
//! exporter should follow: `image` → Conv → Relu (`features`, the map CAM reads) →
//! GlobalAveragePool → Flatten → Gemm → Sigmoid/Softmax (`prob`). Its hand-set filters respond
//! to brightness and edges, so different X-rays get different scores; the scores mean nothing.

use crate::onnx_proto::{float_tensor, float_value_info as value_info, int_attr, ints_attr, named_node, raw_tensor};
use cxr_core::card::{ModelIo, sha256_hex};
use cxr_core::preprocess::{Normalize, ResizeMode};
use cxr_core::{ClassSet, ModelCard, Preprocess};
use prost::Message;
use std::path::{Path, PathBuf};
use tract_onnx::pb;
use tract_onnx::pb::tensor_proto::DataType;

/// Conv filters: 4 outputs over 3 identical grey channels, 3×3, stride 2.
const FILTERS: usize = 4;

/// What to write.
#[derive(Debug, Clone, Copy)]
pub struct TinyCnn {
    /// Side of the square input.
    pub size: u32,
    pub class_set: ClassSet,
    /// Write the convolution as QLinearConv (u8 activations, i8 weights), as an int8 export does.
    pub int8: bool,
}

impl Default for TinyCnn {
    fn default() -> Self {
        TinyCnn { size: 64, class_set: ClassSet::Binary, int8: false }
    }
}

impl TinyCnn {
    /// The serialized ONNX model.
    pub fn onnx_bytes(&self) -> Vec<u8> {
        self.model_proto().encode_to_vec()
    }

    /// The card for these bytes, naming `file` as the ONNX file beside it.
    pub fn card(&self, name: &str, file: &str, onnx: &[u8]) -> ModelCard {
        ModelCard {
            name: name.to_owned(),
            architecture: "tiny-cnn".into(),
            precision: if self.int8 { "int8" } else { "fp32" }.into(),
            file: file.to_owned(),
            sha256: sha256_hex(onnx),
            class_set: self.class_set,
            preprocess: Preprocess {
                size: self.size,
                resize: ResizeMode::Stretch,
                channels: 3,
                normalize: Normalize::Unit,
                intensity: Default::default(),
            },
            io: ModelIo { input: "image".into(), probabilities: "prob".into(), feature_map: Some("features".into()) },
            threshold: 0.5,
            threshold_rule: "fixed at 0.5 (untrained test network)".into(),
            parameters: Some((FILTERS * 27 + FILTERS + (FILTERS + 1) * self.classes()) as u64),
            training: None,
            evaluations: vec![],
            notes: vec!["Hand-set weights for testing the runtime; its scores mean nothing.".into()],
            quantization: None,
        }
    }

    /// Writes `DIR/NAME.onnx` and `DIR/NAME.card.json`; returns the ONNX path.
    pub fn write(&self, dir: &Path, name: &str) -> std::io::Result<PathBuf> {
        let onnx = self.onnx_bytes();
        let path = dir.join(format!("{name}.onnx"));
        std::fs::write(&path, &onnx)?;
        let card = self.card(name, &format!("{name}.onnx"), &onnx);
        card.save(&ModelCard::path_for(&path)).map_err(std::io::Error::other)?;
        Ok(path)
    }

    fn classes(&self) -> usize {
        match self.class_set {
            ClassSet::Binary => 1,
            ClassSet::ThreeClass => 3,
        }
    }

    fn model_proto(&self) -> pb::ModelProto {
        let (conv_nodes, mut initializer) = if self.int8 { quantized_conv() } else { float_conv() };
        let classes = self.classes();
        let head: [[f32; FILTERS]; 3] = [[6.0, 3.0, 3.0, -6.0], [-3.0, -1.0, 2.0, 3.0], [-2.0, 2.0, -1.0, 1.0]];
        let weights: Vec<f32> = head[..classes].iter().flatten().copied().collect();
        initializer.push(float_tensor("head.weight", &[classes as i64, FILTERS as i64], &weights));
        initializer.push(float_tensor("head.bias", &[classes as i64], &[-0.5, 0.2, 0.1][..classes]));
        let mut nodes = conv_nodes;
        nodes.push(node("Relu", &["conv"], &["features"], vec![]));
        nodes.push(node("GlobalAveragePool", &["features"], &["pooled"], vec![]));
        nodes.push(node("Flatten", &["pooled"], &["flat"], vec![int_attr("axis", 1)]));
        nodes.push(node("Gemm", &["flat", "head.weight", "head.bias"], &["logits"], vec![int_attr("transB", 1)]));
        nodes.push(match self.class_set {
            ClassSet::Binary => node("Sigmoid", &["logits"], &["prob"], vec![]),
            ClassSet::ThreeClass => node("Softmax", &["logits"], &["prob"], vec![int_attr("axis", 1)]),
        });
        let s = self.size as i64;
        let half = (s + 1) / 2;
        pb::ModelProto {
            ir_version: 8,
            opset_import: vec![pb::OperatorSetIdProto { domain: String::new(), version: 13 }],
            producer_name: "cxr-infer tiny_cnn".into(),
            graph: Some(pb::GraphProto {
                name: "tiny-cnn".into(),
                node: nodes,
                initializer,
                input: vec![value_info("image", &[None, Some(3), Some(s), Some(s)])],
                output: vec![
                    value_info("prob", &[None, Some(classes as i64)]),
                    value_info("features", &[None, Some(FILTERS as i64), Some(half), Some(half)]),
                ],
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

/// Brightness, its negative, and horizontal and vertical edges, each over the 3 channels.
fn conv_weights() -> (Vec<f32>, [f32; FILTERS]) {
    let mean = [1.0f32 / 27.0; 9];
    let sobel_x = [-1.0, 0.0, 1.0, -2.0, 0.0, 2.0, -1.0, 0.0, 1.0].map(|v: f32| v / 12.0);
    let sobel_y = [-1.0, -2.0, -1.0, 0.0, 0.0, 0.0, 1.0, 2.0, 1.0].map(|v: f32| v / 12.0);
    let dark = mean.map(|v| -v);
    let mut w = Vec::with_capacity(FILTERS * 27);
    for kernel in [mean, sobel_x, sobel_y, dark] {
        for _channel in 0..3 {
            w.extend_from_slice(&kernel);
        }
    }
    (w, [-0.4, 0.0, 0.0, 0.7])
}

fn conv_attrs() -> Vec<pb::AttributeProto> {
    vec![ints_attr("kernel_shape", &[3, 3]), ints_attr("strides", &[2, 2]), ints_attr("pads", &[1, 1, 1, 1])]
}

fn float_conv() -> (Vec<pb::NodeProto>, Vec<pb::TensorProto>) {
    let (w, b) = conv_weights();
    let init = vec![
        float_tensor("conv.weight", &[FILTERS as i64, 3, 3, 3], &w),
        float_tensor("conv.bias", &[FILTERS as i64], &b),
    ];
    (vec![node("Conv", &["image", "conv.weight", "conv.bias"], &["conv"], conv_attrs())], init)
}

/// QuantizeLinear → QLinearConv → DequantizeLinear, with the scales an int8 exporter would pick.
fn quantized_conv() -> (Vec<pb::NodeProto>, Vec<pb::TensorProto>) {
    let (w, b) = conv_weights();
    let x_scale = 1.0f32 / 255.0;
    let w_scale = w.iter().fold(0.0f32, |m, v| m.max(v.abs())) / 127.0;
    let y_scale = 4.0f32 / 255.0;
    let wq: Vec<u8> = w.iter().map(|v| ((v / w_scale).round().clamp(-127.0, 127.0) as i8) as u8).collect();
    let bias: Vec<i32> = b.iter().map(|v| (v / (x_scale * w_scale)).round() as i32).collect();
    let init = vec![
        float_tensor("x.scale", &[], &[x_scale]),
        raw_tensor("x.zero", DataType::Uint8, &[], vec![0]),
        raw_tensor("conv.weight_q", DataType::Int8, &[FILTERS as i64, 3, 3, 3], wq),
        float_tensor("conv.weight_scale", &[], &[w_scale]),
        raw_tensor("conv.weight_zero", DataType::Int8, &[], vec![0]),
        float_tensor("y.scale", &[], &[y_scale]),
        raw_tensor("y.zero", DataType::Uint8, &[], vec![128]),
        raw_tensor(
            "conv.bias_q",
            DataType::Int32,
            &[FILTERS as i64],
            bias.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ),
    ];
    let nodes = vec![
        node("QuantizeLinear", &["image", "x.scale", "x.zero"], &["image_q"], vec![]),
        node(
            "QLinearConv",
            &[
                "image_q",
                "x.scale",
                "x.zero",
                "conv.weight_q",
                "conv.weight_scale",
                "conv.weight_zero",
                "y.scale",
                "y.zero",
                "conv.bias_q",
            ],
            &["conv_q"],
            conv_attrs(),
        ),
        node("DequantizeLinear", &["conv_q", "y.scale", "y.zero"], &["conv"], vec![]),
    ];
    (nodes, init)
}

/// A node named `{op}_{first output}`: unlike [`crate::onnx_proto::node`]'s output-named nodes,
/// these names never collide with the nodes the load-time rewrites add, which this fixture
/// exists to exercise.
fn node(op: &str, inputs: &[&str], outputs: &[&str], attribute: Vec<pb::AttributeProto>) -> pb::NodeProto {
    named_node(&format!("{op}_{}", outputs[0]), op, inputs, outputs, attribute)
}
