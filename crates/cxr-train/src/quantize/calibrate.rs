//! Measures the value range of every tensor of an fp32 graph over calibration images, running
//! the graph with tract (the runtime the int8 model will meet) with every tensor as an output.

use super::QuantizeError;
use super::rewrite::{Range, Ranges};
use cxr_core::{GreyImage, Preprocess};
use rayon::prelude::*;
use tract_onnx::pb;
use tract_onnx::prelude::*;

/// Min/max of the graph input and of every node output over `images`.
pub fn calibrate(model: &pb::ModelProto, preprocess: &Preprocess, images: &[GreyImage]) -> Result<Ranges, QuantizeError> {
    let graph = model.graph.as_ref().ok_or(QuantizeError::NoGraph)?;
    let input_name = graph.input.first().map(|i| i.name.clone()).ok_or(QuantizeError::NoGraph)?;
    let names: Vec<String> = graph.node.iter().flat_map(|n| n.output.iter().cloned()).collect();
    let tract_err = |e: TractError| QuantizeError::Tract(format!("{e:#}"));
    let mut inference = tract_onnx::onnx().model_for_proto_model(model).map_err(tract_err)?;
    let [n, c, h, w] = preprocess.shape(1);
    inference.set_input_fact(0, f32::fact([n, c, h, w]).into()).map_err(tract_err)?;
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    inference.select_outputs_by_name(&refs).map_err(tract_err)?;
    let plan = inference.into_optimized().map_err(tract_err)?.into_runnable().map_err(tract_err)?;

    let empty = || (Range::EMPTY, vec![Range::EMPTY; names.len()]);
    let (input_range, ranges) = images
        .par_iter()
        .try_fold(empty, |(mut input_range, mut ranges), img| {
            let x = preprocess.apply(img);
            input_range.include(x.iter().copied());
            let tensor = Tensor::from_shape(&[n, c, h, w], &x).map_err(tract_err)?;
            let outputs = plan.run(tvec!(tensor.into_tvalue())).map_err(tract_err)?;
            for (range, out) in ranges.iter_mut().zip(outputs) {
                range.include(out.to_plain_array_view::<f32>().map_err(tract_err)?.iter().copied());
            }
            Ok::<_, QuantizeError>((input_range, ranges))
        })
        .try_reduce(empty, |(mut a_in, mut a), (b_in, b)| {
            merge(&mut a_in, b_in);
            a.iter_mut().zip(b).for_each(|(x, y)| merge(x, y));
            Ok((a_in, a))
        })?;
    let mut all: Ranges = names.into_iter().zip(ranges).collect();
    all.insert(input_name, input_range);
    Ok(all)
}

fn merge(a: &mut Range, b: Range) {
    a.min = a.min.min(b.min);
    a.max = a.max.max(b.max);
}
