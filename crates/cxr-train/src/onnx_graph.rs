//! Writes a [`Network`] with its trained values as an ONNX graph (opset 13), using tract's own
//! protobuf types so the file is exactly what the inference side parses.
//!
//! BatchNorm that directly follows a convolution is folded into it (fewer ops, same numbers);
//! dropout disappears. The input is called `image`, the probabilities `prob` and, for networks
//! that declare one, the last feature map `features`.
//!
//! Only the graph: turning a training run into a shippable file with its model card is
//! [`crate::export`]'s, and the int8 rewrite of this graph is [`crate::quantize`]'s.

use crate::network::{Head, Network, NodeId, Op, Shape};
use cxr_infer::onnx_proto::{float_attr, float_tensor, float_value_info, int_attr, ints_attr, string_attr};
use prost::Message;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tract_onnx::pb;

pub const INPUT_NAME: &str = "image";
pub const PROBABILITIES_NAME: &str = "prob";
pub const FEATURES_NAME: &str = "features";
const OPSET: i64 = 13;
/// ONNX IR version 7 goes with opset 13.
const IR_VERSION: i64 = 7;

/// A parameter's shape and values (row-major).
#[derive(Debug, Clone, PartialEq)]
pub struct ParamTensor {
    pub shape: Vec<i64>,
    pub values: Vec<f32>,
}

/// Trained values by PyTorch name.
pub type ParamValues = BTreeMap<String, ParamTensor>;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{network}: parameter `{name}` is missing from the trained values (checkpoint of another architecture?)")]
    MissingParameter { network: String, name: String },
    #[error("{network}: parameter `{name}` has shape {actual:?}, the architecture needs {expected:?}")]
    WrongShape { network: String, name: String, expected: Vec<i64>, actual: Vec<i64> },
    #[error(transparent)]
    Network(#[from] crate::network::NetworkError),
    #[error("{path}: cannot write ONNX model: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// Builds the ONNX model for `network` with `values`.
pub fn to_onnx(network: &Network, values: &ParamValues) -> Result<pb::ModelProto, ExportError> {
    let shapes = network.shapes()?;
    for spec in network.parameters() {
        match values.get(&spec.name) {
            None => {
                return Err(ExportError::MissingParameter { network: network.architecture.clone(), name: spec.name });
            }
            Some(t) if t.shape != spec.shape => {
                return Err(ExportError::WrongShape {
                    network: network.architecture.clone(),
                    name: spec.name,
                    expected: spec.shape,
                    actual: t.shape.clone(),
                });
            }
            Some(_) => {}
        }
    }
    let param = |name: String| &values[&name];
    let consumers = network.consumer_counts();
    // A conv is folded with the BatchNorm reading it when that BN is its only reader.
    let folded_bn: Vec<Option<NodeId>> = (0..network.nodes.len())
        .map(|id| {
            if !matches!(network.nodes[id].op, Op::Conv2d { .. }) || consumers[id] != 1 {
                return None;
            }
            network.nodes.iter().position(|n| matches!(n.op, Op::BatchNorm { .. }) && n.inputs == [id])
        })
        .collect();

    let mut onnx_nodes: Vec<pb::NodeProto> = Vec::new();
    let mut initializers: Vec<pb::TensorProto> = Vec::new();
    let mut tensor_names: Vec<String> = Vec::with_capacity(network.nodes.len());
    let features_node = network.features;
    for (id, node) in network.nodes.iter().enumerate() {
        let inputs: Vec<String> = node.inputs.iter().map(|&i| tensor_names[i].clone()).collect();
        let mut out_name = if Some(id) == features_node { FEATURES_NAME.to_owned() } else { node.name.clone() };
        let mut emit = |op_type: &str, inputs: Vec<String>, output: &str, attribute: Vec<pb::AttributeProto>| {
            onnx_nodes.push(pb::NodeProto {
                name: node.name.clone(),
                op_type: op_type.into(),
                input: inputs,
                output: vec![output.to_owned()],
                attribute,
                ..Default::default()
            });
        };
        match &node.op {
            Op::Input => out_name = INPUT_NAME.to_owned(),
            Op::Conv2d { out_channels, kernel, stride, padding, groups, .. } => {
                let weight = param(format!("{}.weight", node.name));
                let bias = values.get(&format!("{}.bias", node.name)).map(|b| b.values.clone());
                let mut w = weight.values.clone();
                let mut b = bias.unwrap_or_else(|| vec![0.0; *out_channels as usize]);
                if let Some(bn_id) = folded_bn[id] {
                    let bn = &network.nodes[bn_id];
                    let Op::BatchNorm { eps, .. } = bn.op else { unreachable!("folded_bn only holds BatchNorm nodes") };
                    fold_batch_norm(&mut w, &mut b, values, &bn.name, eps);
                    if Some(bn_id) == features_node {
                        out_name = FEATURES_NAME.to_owned();
                    } else {
                        out_name = bn.name.clone();
                    }
                }
                let w_name = format!("{}.weight", node.name);
                let b_name = format!("{}.bias", node.name);
                initializers.push(float_tensor(&w_name, &weight.shape, &w));
                initializers.push(float_tensor(&b_name, &[*out_channels], &b));
                emit(
                    "Conv",
                    vec![inputs[0].clone(), w_name, b_name],
                    &out_name,
                    vec![
                        ints_attr("kernel_shape", &[*kernel, *kernel]),
                        ints_attr("strides", &[*stride, *stride]),
                        ints_attr("pads", &[padding.top, padding.left, padding.bottom, padding.right]),
                        ints_attr("dilations", &[1, 1]),
                        int_attr("group", *groups),
                    ],
                );
            }
            Op::BatchNorm { eps, .. } => {
                if folded_bn[node.inputs[0]] == Some(id) {
                    // Already folded into the conv, which wrote its output under this node's name.
                    out_name = tensor_names[node.inputs[0]].clone();
                } else {
                    let names: Vec<String> = ["weight", "bias", "running_mean", "running_var"]
                        .iter()
                        .map(|leaf| {
                            let name = format!("{}.{leaf}", node.name);
                            let t = param(name.clone());
                            initializers.push(float_tensor(&name, &t.shape, &t.values));
                            name
                        })
                        .collect();
                    let mut all = vec![inputs[0].clone()];
                    all.extend(names);
                    emit("BatchNormalization", all, &out_name, vec![float_attr("epsilon", *eps as f32)]);
                }
            }
            Op::Relu => emit("Relu", inputs, &out_name, vec![]),
            Op::Relu6 => {
                let (lo, hi) = (format!("{}.min", node.name), format!("{}.max", node.name));
                initializers.push(float_tensor(&lo, &[], &[0.0]));
                initializers.push(float_tensor(&hi, &[], &[6.0]));
                emit("Clip", vec![inputs[0].clone(), lo, hi], &out_name, vec![]);
            }
            Op::MaxPool { kernel, stride, padding } => emit(
                "MaxPool",
                inputs,
                &out_name,
                vec![
                    ints_attr("kernel_shape", &[*kernel, *kernel]),
                    ints_attr("strides", &[*stride, *stride]),
                    ints_attr("pads", &[*padding; 4]),
                ],
            ),
            Op::AvgPool { kernel, stride } => emit(
                "AveragePool",
                inputs,
                &out_name,
                vec![ints_attr("kernel_shape", &[*kernel, *kernel]), ints_attr("strides", &[*stride, *stride])],
            ),
            Op::Dropout { .. } => {
                if Some(id) == features_node {
                    emit("Identity", inputs, &out_name, vec![]);
                } else {
                    out_name = inputs[0].clone();
                }
            }
            Op::Flatten => emit("Flatten", inputs, &out_name, vec![int_attr("axis", 1)]),
            Op::GlobalAvgPool => emit("GlobalAveragePool", inputs, &out_name, vec![]),
            Op::Linear { out_features, .. } => {
                let weight = param(format!("{}.weight", node.name));
                let w_name = format!("{}.weight", node.name);
                let b_name = format!("{}.bias", node.name);
                initializers.push(float_tensor(&w_name, &weight.shape, &weight.values));
                let bias =
                    values.get(&b_name).map(|b| b.values.clone()).unwrap_or_else(|| vec![0.0; *out_features as usize]);
                initializers.push(float_tensor(&b_name, &[*out_features], &bias));
                emit("Gemm", vec![inputs[0].clone(), w_name, b_name], &out_name, vec![int_attr("transB", 1)]);
            }
            Op::Add => {
                // ONNX Add is binary: chain it.
                let mut acc = inputs[0].clone();
                for (k, rhs) in inputs.iter().enumerate().skip(1) {
                    let out =
                        if k + 1 == inputs.len() { out_name.clone() } else { format!("{}.partial{k}", node.name) };
                    emit("Add", vec![acc, rhs.clone()], &out, vec![]);
                    acc = out;
                }
            }
            Op::Concat => emit("Concat", inputs, &out_name, vec![int_attr("axis", 1)]),
            Op::Sigmoid => emit("Sigmoid", inputs, &out_name, vec![]),
            Op::Mul => emit("Mul", inputs, &out_name, vec![]),
            Op::Upsample { factor } => {
                // PyTorch's `upsample_nearest2d` reads source pixel floor(out / factor): ONNX's
                // asymmetric coordinates with floor rounding. No region of interest ("").
                let scales = format!("{}.scales", node.name);
                let f = *factor as f32;
                initializers.push(float_tensor(&scales, &[4], &[1.0, 1.0, f, f]));
                emit(
                    "Resize",
                    vec![inputs[0].clone(), String::new(), scales],
                    &out_name,
                    vec![
                        string_attr("mode", "nearest"),
                        string_attr("coordinate_transformation_mode", "asymmetric"),
                        string_attr("nearest_mode", "floor"),
                    ],
                );
            }
        }
        tensor_names.push(out_name);
    }

    let head_op = match network.head {
        Head::Sigmoid | Head::Mask => pb::NodeProto {
            name: "head".into(),
            op_type: "Sigmoid".into(),
            input: vec![tensor_names[network.logits].clone()],
            output: vec![PROBABILITIES_NAME.into()],
            ..Default::default()
        },
        Head::Softmax { .. } => pb::NodeProto {
            name: "head".into(),
            op_type: "Softmax".into(),
            input: vec![tensor_names[network.logits].clone()],
            output: vec![PROBABILITIES_NAME.into()],
            attribute: vec![int_attr("axis", 1)],
            ..Default::default()
        },
    };
    onnx_nodes.push(head_op);
    let mut graph = pb::GraphProto {
        name: network.architecture.clone(),
        node: onnx_nodes,
        initializer: initializers,
        ..Default::default()
    };

    graph.input.push(value_info(INPUT_NAME, &shapes[0]));
    graph.output.push(value_info(PROBABILITIES_NAME, &shapes[network.logits]));
    if let Some(f) = features_node {
        graph.output.push(value_info(FEATURES_NAME, &shapes[f]));
    }
    Ok(pb::ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![pb::OperatorSetIdProto { domain: String::new(), version: OPSET }],
        producer_name: "cxr-train".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(graph),
        ..Default::default()
    })
}

/// Serialises the model for `network` and writes it to `path`; returns the bytes written.
pub fn write_onnx(network: &Network, values: &ParamValues, path: &Path) -> Result<Vec<u8>, ExportError> {
    let bytes = to_onnx(network, values)?.encode_to_vec();
    std::fs::write(path, &bytes).map_err(|source| ExportError::Io { path: path.to_owned(), source })?;
    Ok(bytes)
}

/// `conv(x)·γ/√(σ²+ε) + β − μ·γ/√(σ²+ε)`, merged into the conv's weight and bias, per output channel.
fn fold_batch_norm(weight: &mut [f32], bias: &mut [f32], values: &ParamValues, bn: &str, eps: f64) {
    let get = |leaf: &str| &values[&format!("{bn}.{leaf}")].values;
    let (gamma, beta, mean, var) = (get("weight"), get("bias"), get("running_mean"), get("running_var"));
    let per_channel = weight.len() / bias.len();
    for c in 0..bias.len() {
        let scale = (gamma[c] as f64 / (var[c] as f64 + eps).sqrt()) as f32;
        for w in &mut weight[c * per_channel..(c + 1) * per_channel] {
            *w *= scale;
        }
        bias[c] = (bias[c] - mean[c]) * scale + beta[c];
    }
}

/// A float tensor with a symbolic batch dimension `N`.
pub(crate) fn value_info(name: &str, shape: &Shape) -> pb::ValueInfoProto {
    let dims: Vec<Option<i64>> = match *shape {
        Shape::Map { channels, height, width } => vec![None, Some(channels), Some(height), Some(width)],
        Shape::Vector(n) => vec![None, Some(n)],
    };
    float_value_info(name, &dims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::Head;
    use crate::zoo::seed_cnn;

    fn zeros_for(network: &Network) -> ParamValues {
        network
            .parameters()
            .into_iter()
            .map(|p| {
                let n = p.shape.iter().product::<i64>() as usize;
                (p.name, ParamTensor { shape: p.shape, values: vec![0.0; n] })
            })
            .collect()
    }

    #[test]
    fn a_missing_or_misshapen_parameter_is_named() {
        let net = seed_cnn(256, Head::Sigmoid);
        let mut values = zeros_for(&net);
        assert!(to_onnx(&net, &values).is_ok());
        values.get_mut("fc1.weight").unwrap().shape = vec![256, 1000];
        let err = to_onnx(&net, &values).unwrap_err().to_string();
        assert!(err.contains("fc1.weight") && err.contains("1568"), "{err}");
        values.remove("conv2.bias");
        let err = to_onnx(&net, &values).unwrap_err().to_string();
        assert!(err.contains("conv2.bias") && err.contains("missing"), "{err}");
    }

    #[test]
    fn graph_has_named_input_and_output_and_no_dropout() {
        let net = seed_cnn(256, Head::Sigmoid);
        let model = to_onnx(&net, &zeros_for(&net)).unwrap();
        let graph = model.graph.unwrap();
        assert_eq!(graph.input[0].name, INPUT_NAME);
        assert_eq!(graph.output[0].name, PROBABILITIES_NAME);
        let ops: Vec<&str> = graph.node.iter().map(|n| n.op_type.as_str()).collect();
        assert_eq!(
            ops,
            ["Conv", "Relu", "MaxPool", "Conv", "Relu", "MaxPool", "Flatten", "Gemm", "Relu", "Gemm", "Sigmoid"]
        );
    }
}
