//! The clamp after a convolution (ReLU6 in MobileNet and EfficientNet-Lite), taken into cxr's
//! own convolution kernels ([`crate::depthwise`], [`crate::pointwise`]) so that they apply it as
//! they store each output instead of tract running it as one more pass over the tensor. tract
//! fuses it into its own matrix products the same way; an op tract does not know would
//! otherwise lose that.

use std::hash::{Hash, Hasher};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::binary::TypedBinOp;

/// `min(max(v, low), high)`; [`Clip::NONE`] leaves every value as it is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clip {
    pub low: f32,
    pub high: f32,
}

// Bounds come from the graph's constants, never NaN, so equality is an equivalence.
impl Eq for Clip {}

impl Hash for Clip {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.low.to_bits().hash(state);
        self.high.to_bits().hash(state);
    }
}

impl Clip {
    pub const NONE: Clip = Clip { low: f32::NEG_INFINITY, high: f32::INFINITY };

    #[inline(always)]
    pub fn apply(self, v: f32) -> f32 {
        v.max(self.low).min(self.high)
    }
}

/// The clamp that follows `node` in a decluttered graph, as tract declutters ONNX's `Clip` and
/// `Relu`: a `Max` with a constant, a `Min` with a constant, or the one then the other. Also the
/// nodes it spans, so that the clamp's last output can stand for the node's. A node whose output
/// goes anywhere else as well (another op, a model output such as a CAM feature map) is followed
/// by no clamp.
fn following(model: &TypedModel, node: usize) -> TractResult<(Clip, Vec<usize>)> {
    let mut clip = Clip::NONE;
    let mut chain = vec![];
    let mut last = node;
    let shape = model.outlet_fact(OutletId::new(node, 0))?.shape.clone();
    while !model.outputs.contains(&OutletId::new(last, 0)) {
        let Some(next) = model.single_succ(last)? else { break };
        let Some(bin) = next.op_as::<TypedBinOp>() else { break };
        let [a, b] = next.inputs[..] else { break };
        let bound = if a.node == last { b } else { a };
        let fact = model.outlet_fact(bound)?;
        let out = model.outlet_fact(OutletId::new(next.id, 0))?;
        let Some(value) = fact.uniform.as_ref().filter(|_| fact.konst.is_some()) else { break };
        if out.shape != shape || out.datum_type != f32::datum_type() || value.datum_type() != f32::datum_type() {
            break;
        }
        let value = value.try_as_plain_ram()?.as_slice::<f32>()?[0];
        match bin.0.name() {
            "Max" if clip == Clip::NONE => clip.low = value,
            "Min" if clip.high == f32::INFINITY => clip.high = value,
            _ => break,
        }
        chain.push(next.id);
        last = next.id;
    }
    Ok((clip, chain))
}

/// Replaces `nodes`, a chain whose first node reads the model input it keeps (its first input;
/// the weights are in `op`) and whose every other node reads the one before, and the clamp
/// after the chain's last node, by the op `op` builds for that clamp.
pub fn replace_through_clip<O: TypedOp>(
    model: &mut TypedModel,
    nodes: &[usize],
    op: impl FnOnce(Clip) -> O,
) -> TractResult<()> {
    let (first, end) = (nodes[0], nodes[nodes.len() - 1]);
    let (clip, chain) = following(model, end)?;
    let mut patch = TypedModelPatch::default();
    let input = patch.tap_model(model, model.node(first).inputs[0])?;
    let wire = patch.wire_node(&model.node(end).name, op(clip), &[input])?[0];
    let last = chain.last().copied().unwrap_or(end);
    patch.shunt_outside(model, OutletId::new(last, 0), wire)?;
    for &id in nodes.iter().chain(&chain) {
        patch.obliterate(id)?;
    }
    patch.apply(model)
}
