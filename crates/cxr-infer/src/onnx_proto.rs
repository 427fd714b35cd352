//! Reading and building ONNX's protobuf types: node attributes, initializer values, and builders
//! for nodes, tensors and graph inputs. The one place the project writes protobuf by hand: the
//! load-time graph rewrites ([`crate::patch_input`], [`crate::int8_float`]), the class-activation
//! head, the test fixture [`crate::tiny_cnn`], and in `cxr-train` the ONNX export and int8 rewrite.
//! Tensors are written as raw little-endian bytes, as ONNX's own exporters write them.

use tract_onnx::pb;
use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::tensor_proto::DataType;

pub fn attr<'a>(n: &'a pb::NodeProto, name: &str) -> Option<&'a pb::AttributeProto> {
    n.attribute.iter().find(|a| a.name == name)
}

pub fn ints(n: &pb::NodeProto, name: &str) -> Option<Vec<i64>> {
    attr(n, name).map(|a| a.ints.clone())
}

pub fn int(n: &pb::NodeProto, name: &str) -> Option<i64> {
    attr(n, name).map(|a| a.i)
}

pub fn string(n: &pb::NodeProto, name: &str) -> Option<String> {
    attr(n, name).map(|a| String::from_utf8_lossy(&a.s).into_owned())
}

pub fn initializer<'a>(graph: &'a pb::GraphProto, name: &str) -> Option<&'a pb::TensorProto> {
    graph.initializer.iter().find(|t| t.name == name)
}

/// A float tensor's values, whether stored as raw little-endian bytes or as `float_data`.
pub fn float_values(t: &pb::TensorProto) -> Option<Vec<f32>> {
    if t.data_type != DataType::Float as i32 {
        return None;
    }
    if !t.float_data.is_empty() {
        return Some(t.float_data.clone());
    }
    Some(t.raw_data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
}

/// An `int8`, `uint8` or `int32` tensor's values, raw or in `int32_data` (where ONNX keeps the
/// small integer types when not raw).
pub fn integer_values(t: &pb::TensorProto) -> Option<Vec<i32>> {
    let kind = DataType::try_from(t.data_type).ok()?;
    if t.raw_data.is_empty() {
        return matches!(kind, DataType::Int8 | DataType::Uint8 | DataType::Int32).then(|| t.int32_data.clone());
    }
    let raw = &t.raw_data;
    match kind {
        DataType::Int8 => Some(raw.iter().map(|&b| b as i8 as i32).collect()),
        DataType::Uint8 => Some(raw.iter().map(|&b| b as i32).collect()),
        DataType::Int32 => Some(raw.chunks_exact(4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()),
        _ => None,
    }
}

/// Dims and values of a float initializer, when its value count matches its dims.
pub fn float_initializer(graph: &pb::GraphProto, name: &str) -> Option<(Vec<usize>, Vec<f32>)> {
    let t = initializer(graph, name)?;
    let values = float_values(t)?;
    let dims: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
    (values.len() == dims.iter().product::<usize>()).then_some((dims, values))
}

pub fn raw_tensor(name: &str, data_type: DataType, dims: &[i64], raw_data: Vec<u8>) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: data_type as i32,
        raw_data,
        ..Default::default()
    }
}

pub fn float_tensor(name: &str, dims: &[i64], values: &[f32]) -> pb::TensorProto {
    raw_tensor(name, DataType::Float, dims, values.iter().flat_map(|v| v.to_le_bytes()).collect())
}

/// A 1-D `int64` tensor (shapes, axes).
pub fn int_tensor(name: &str, values: &[i64]) -> pb::TensorProto {
    raw_tensor(name, DataType::Int64, &[values.len() as i64], values.iter().flat_map(|v| v.to_le_bytes()).collect())
}

/// A 1-D `int32` tensor (quantized biases).
pub fn int32_tensor(name: &str, values: &[i32]) -> pb::TensorProto {
    raw_tensor(name, DataType::Int32, &[values.len() as i64], values.iter().flat_map(|v| v.to_le_bytes()).collect())
}

pub fn int_attr(name: &str, i: i64) -> pb::AttributeProto {
    pb::AttributeProto { name: name.into(), r#type: AttributeType::Int as i32, i, ..Default::default() }
}

pub fn ints_attr(name: &str, values: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: AttributeType::Ints as i32,
        ints: values.to_vec(),
        ..Default::default()
    }
}

pub fn float_attr(name: &str, f: f32) -> pb::AttributeProto {
    pb::AttributeProto { name: name.into(), r#type: AttributeType::Float as i32, f, ..Default::default() }
}

pub fn string_attr(name: &str, value: &str) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: AttributeType::String as i32,
        s: value.as_bytes().to_vec(),
        ..Default::default()
    }
}

/// A node named after its first output.
pub fn node(op: &str, inputs: &[&str], outputs: &[&str], attribute: Vec<pb::AttributeProto>) -> pb::NodeProto {
    named_node(outputs[0], op, inputs, outputs, attribute)
}

pub fn named_node(
    name: &str,
    op: &str,
    inputs: &[&str],
    outputs: &[&str],
    attribute: Vec<pb::AttributeProto>,
) -> pb::NodeProto {
    pb::NodeProto {
        op_type: op.into(),
        name: name.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        attribute,
        ..Default::default()
    }
}

/// A float graph input or output; `None` dims are the symbolic batch size `N`.
pub fn float_value_info(name: &str, dims: &[Option<i64>]) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{Dimension, dimension::Value};
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Some(v) => Value::DimValue(*v),
                None => Value::DimParam("N".into()),
            }),
            ..Default::default()
        })
        .collect();
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: DataType::Float as i32,
                shape: Some(pb::TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The indices of the nodes reading `value`.
pub fn consumers<'a>(graph: &'a pb::GraphProto, value: &'a str) -> impl Iterator<Item = usize> + 'a {
    graph.node.iter().enumerate().filter(move |(_, n)| n.input.iter().any(|i| i == value)).map(|(at, _)| at)
}

pub fn is_graph_output(graph: &pb::GraphProto, value: &str) -> bool {
    graph.output.iter().any(|o| o.name == value)
}
