//! The few pieces of ONNX's protobuf types that the load-time graph rewrites
//! ([`crate::patch_input`], [`crate::int8_float`]) and the class-activation head read and write:
//! node attributes, initializer values, and builders for new nodes and tensors.

use tract_onnx::pb;
use tract_onnx::pb::tensor_proto::DataType;

pub(crate) fn attr<'a>(n: &'a pb::NodeProto, name: &str) -> Option<&'a pb::AttributeProto> {
    n.attribute.iter().find(|a| a.name == name)
}

pub(crate) fn ints(n: &pb::NodeProto, name: &str) -> Option<Vec<i64>> {
    attr(n, name).map(|a| a.ints.clone())
}

pub(crate) fn int(n: &pb::NodeProto, name: &str) -> Option<i64> {
    attr(n, name).map(|a| a.i)
}

pub(crate) fn string(n: &pb::NodeProto, name: &str) -> Option<String> {
    attr(n, name).map(|a| String::from_utf8_lossy(&a.s).into_owned())
}

pub(crate) fn initializer<'a>(graph: &'a pb::GraphProto, name: &str) -> Option<&'a pb::TensorProto> {
    graph.initializer.iter().find(|t| t.name == name)
}

/// A float tensor's values, whether stored as raw little-endian bytes or as `float_data`.
pub(crate) fn float_values(t: &pb::TensorProto) -> Option<Vec<f32>> {
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
pub(crate) fn integer_values(t: &pb::TensorProto) -> Option<Vec<i32>> {
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
pub(crate) fn float_initializer(graph: &pb::GraphProto, name: &str) -> Option<(Vec<usize>, Vec<f32>)> {
    let t = initializer(graph, name)?;
    let values = float_values(t)?;
    let dims: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
    (values.len() == dims.iter().product::<usize>()).then_some((dims, values))
}

pub(crate) fn float_tensor(name: &str, dims: &[i64], values: Vec<f32>) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: DataType::Float as i32,
        float_data: values,
        ..Default::default()
    }
}

pub(crate) fn int_tensor(name: &str, values: &[i64]) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: vec![values.len() as i64],
        data_type: DataType::Int64 as i32,
        int64_data: values.to_vec(),
        ..Default::default()
    }
}

pub(crate) fn ints_attr(name: &str, values: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::Ints as i32,
        ints: values.to_vec(),
        ..Default::default()
    }
}

/// A node named after its first output.
pub(crate) fn node(op: &str, inputs: &[&str], outputs: &[&str], attribute: Vec<pb::AttributeProto>) -> pb::NodeProto {
    pb::NodeProto {
        op_type: op.into(),
        name: outputs[0].into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        attribute,
        ..Default::default()
    }
}

/// The indices of the nodes reading `value`.
pub(crate) fn consumers<'a>(graph: &'a pb::GraphProto, value: &'a str) -> impl Iterator<Item = usize> + 'a {
    graph.node.iter().enumerate().filter(move |(_, n)| n.input.iter().any(|i| i == value)).map(|(at, _)| at)
}

pub(crate) fn is_graph_output(graph: &pb::GraphProto, value: &str) -> bool {
    graph.output.iter().any(|o| o.name == value)
}
