//! The weights that turn a model's last feature map into its output, read from the ONNX file, so
//! that a class activation map (`explain`) costs one forward pass instead of an occlusion sweep.

use crate::onnx_proto::float_values;
use cxr_core::ModelCard;
use tract_onnx::pb;

/// The linear head after global pooling: one weight row per output, `[outputs][channels]`.
#[derive(Debug, Clone)]
pub(crate) struct CamHead {
    pub(crate) weights: Vec<Vec<f32>>,
}

impl CamHead {
    /// Follows the feature map through pooling/reshaping nodes to the first Gemm or MatMul and
    /// reads its float weight initializer. `None` when the graph has another shape (e.g. an int8
    /// head), in which case explanations fall back to occlusion.
    pub(crate) fn from_onnx(proto: &pb::ModelProto, card: &ModelCard) -> Option<CamHead> {
        let graph = proto.graph.as_ref()?;
        let mut tensor = card.io.feature_map.clone()?;
        for _ in 0..8 {
            let consumer = graph.node.iter().find(|n| n.input.first() == Some(&tensor))?;
            match consumer.op_type.as_str() {
                "GlobalAveragePool" | "ReduceMean" | "Flatten" | "Reshape" | "Squeeze" => {
                    tensor = consumer.output.first()?.clone()
                }
                "Gemm" | "MatMul" => {
                    let init = graph.initializer.iter().find(|t| Some(&t.name) == consumer.input.get(1))?;
                    let values = float_values(init)?;
                    let [rows, cols] = init.dims[..] else { return None };
                    let (rows, cols) = (rows as usize, cols as usize);
                    let trans_b =
                        consumer.op_type == "Gemm" && consumer.attribute.iter().any(|a| a.name == "transB" && a.i == 1);
                    let weights = if trans_b {
                        values.chunks(cols).map(<[f32]>::to_vec).collect()
                    } else {
                        (0..cols).map(|k| (0..rows).map(|c| values[c * cols + k]).collect()).collect()
                    };
                    return Some(CamHead { weights });
                }
                _ => return None,
            }
        }
        None
    }
}
