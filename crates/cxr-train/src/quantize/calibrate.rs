//! Measures the value range of every tensor of an fp32 graph over calibration images, running
//! the graph with tract (the runtime the int8 model will meet) with every tensor as an output.
//!
//! Min/max lets one outlier value set a tensor's whole uint8 scale: in MobileNetV2's linear
//! bottlenecks and residual sums a handful of extreme values stretch the scale so far that the
//! bulk of the values share a few levels. Percentile calibration clips those tails instead: a
//! second pass over the same images fills a histogram per tensor between the min and max of the
//! first, and the range becomes the central `percentile` % of the values.

use super::QuantizeError;
use super::rewrite::{Range, Ranges};
use cxr_core::{GreyImage, Preprocess};
use rayon::prelude::*;
use tract_onnx::pb;
use tract_onnx::prelude::*;

/// How the observed values of a tensor become its range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Calibration {
    /// Smallest to largest value seen.
    MinMax,
    /// Central `0 < p ≤ 100` percent of the values seen: `(100 − p) / 2` percent is clipped on
    /// each side (the range always keeps zero, see [`Range::uint8_params`]).
    Percentile(f64),
}

impl Calibration {
    /// What the model card records.
    pub fn describe(self) -> String {
        match self {
            Calibration::MinMax => "per-tensor min/max over the calibration images".into(),
            Calibration::Percentile(p) => {
                format!(
                    "per-tensor range holding the central {p} % of values over the calibration images ({HISTOGRAM_BINS}-bin histograms between min and max)"
                )
            }
        }
    }
}

/// Bins per tensor histogram: a bin is 1/2048 of the min–max span, far finer than the 1/255
/// of a uint8 step, so the clipped range is placed well within one quantization step.
const HISTOGRAM_BINS: usize = 2048;

/// The calibrated range of the graph input and of every node output over `images`.
pub fn calibrate(
    model: &pb::ModelProto,
    preprocess: &Preprocess,
    images: &[GreyImage],
    method: Calibration,
) -> Result<Ranges, QuantizeError> {
    let tensors = EveryTensor::new(model, preprocess)?;
    let min_max = tensors.fold(
        images,
        |_| Range::EMPTY,
        |r, values| r.include(values.iter().copied()),
        |a, b| a.include([b.min, b.max]),
    )?;
    let ranges = match method {
        Calibration::MinMax => min_max,
        Calibration::Percentile(p) => {
            let histograms = tensors.fold(images, |i| Histogram::new(min_max[i]), Histogram::add, Histogram::merge)?;
            histograms.iter().map(|h| h.central(p)).collect()
        }
    };
    Ok(tensors.names.into_iter().zip(ranges).collect())
}

/// The fp32 graph as tract runs it, with the input and every node output visible.
struct EveryTensor {
    /// Input name first, then every node output in graph order.
    names: Vec<String>,
    plan: Arc<TypedRunnableModel>,
    preprocess: Preprocess,
}

impl EveryTensor {
    fn new(model: &pb::ModelProto, preprocess: &Preprocess) -> Result<Self, QuantizeError> {
        let graph = model.graph.as_ref().ok_or(QuantizeError::NoGraph)?;
        let input_name = graph.input.first().map(|i| i.name.clone()).ok_or(QuantizeError::NoGraph)?;
        let outputs: Vec<String> = graph.node.iter().flat_map(|n| n.output.iter().cloned()).collect();
        let mut inference = tract_onnx::onnx().model_for_proto_model(model).map_err(tract_err)?;
        inference.set_input_fact(0, f32::fact(preprocess.shape(1)).into()).map_err(tract_err)?;
        let refs: Vec<&str> = outputs.iter().map(String::as_str).collect();
        inference.select_outputs_by_name(&refs).map_err(tract_err)?;
        let plan = inference.into_optimized().map_err(tract_err)?.into_runnable().map_err(tract_err)?;
        let names = std::iter::once(input_name).chain(outputs).collect();
        Ok(EveryTensor { names, plan, preprocess: *preprocess })
    }

    /// Folds every tensor's values over all images into one accumulator per tensor, images in
    /// parallel: `init(i)` starts tensor `i`'s, `add` takes one image's values, `merge` joins
    /// the accumulators of two groups of images.
    fn fold<A: Clone + Send + Sync>(
        &self,
        images: &[GreyImage],
        init: impl Fn(usize) -> A + Sync,
        add: impl Fn(&mut A, &[f32]) + Sync,
        merge: impl Fn(&mut A, A) + Sync + Send,
    ) -> Result<Vec<A>, QuantizeError> {
        let empty = || (0..self.names.len()).map(&init).collect::<Vec<A>>();
        let shape = self.preprocess.shape(1);
        images
            .par_iter()
            .try_fold(empty, |mut acc, img| {
                let x = self.preprocess.apply(img);
                add(&mut acc[0], &x);
                let tensor = Tensor::from_shape(&shape, &x).map_err(tract_err)?;
                let outputs = self.plan.run(tvec!(tensor.into_tvalue())).map_err(tract_err)?;
                for (a, out) in acc[1..].iter_mut().zip(outputs) {
                    let view = out.to_plain_array_view::<f32>().map_err(tract_err)?;
                    match view.as_slice() {
                        Some(values) => add(a, values),
                        None => add(a, &view.iter().copied().collect::<Vec<f32>>()),
                    }
                }
                Ok::<_, QuantizeError>(acc)
            })
            .try_reduce(empty, |mut a, b| {
                a.iter_mut().zip(b).for_each(|(x, y)| merge(x, y));
                Ok(a)
            })
    }
}

fn tract_err(e: TractError) -> QuantizeError {
    QuantizeError::Tract(format!("{e:#}"))
}

/// Counts of one tensor's values in equal bins between its calibrated min and max.
#[derive(Debug, Clone)]
struct Histogram {
    range: Range,
    counts: Vec<u64>,
}

impl Histogram {
    fn new(range: Range) -> Self {
        Histogram { range, counts: vec![0; HISTOGRAM_BINS] }
    }

    fn add(&mut self, values: &[f32]) {
        let span = self.range.max - self.range.min;
        if !(span > 0.0 && span.is_finite()) {
            self.counts[0] += values.len() as u64;
            return;
        }
        let per_unit = HISTOGRAM_BINS as f32 / span;
        for &v in values {
            let bin = ((v - self.range.min) * per_unit) as usize;
            self.counts[bin.min(HISTOGRAM_BINS - 1)] += 1;
        }
    }

    fn merge(&mut self, other: Histogram) {
        self.counts.iter_mut().zip(other.counts).for_each(|(a, b)| *a += b);
    }

    /// The range from the lower edge of the bin where the lowest `(100 − p) / 2` % of values end
    /// to the upper edge of the bin where the highest `(100 − p) / 2` % begin.
    fn central(&self, p: f64) -> Range {
        let total: u64 = self.counts.iter().sum();
        let span = self.range.max - self.range.min;
        if total == 0 || !(span > 0.0 && span.is_finite()) {
            return self.range;
        }
        let tail = ((100.0 - p.clamp(0.0, 100.0)) / 200.0 * total as f64).floor() as u64;
        let edge = |bin: usize| self.range.min + span * bin as f32 / HISTOGRAM_BINS as f32;
        let first = first_bin_past(self.counts.iter(), tail);
        let last = HISTOGRAM_BINS - 1 - first_bin_past(self.counts.iter().rev(), tail);
        Range { min: edge(first), max: edge(last + 1).min(self.range.max) }
    }
}

/// Index of the first bin at which the running count exceeds `tail`.
fn first_bin_past<'a>(counts: impl Iterator<Item = &'a u64>, tail: u64) -> usize {
    let mut seen = 0;
    for (i, c) in counts.enumerate() {
        seen += c;
        if seen > tail {
            return i;
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram(values: &[f32]) -> Histogram {
        let mut range = Range::EMPTY;
        range.include(values.iter().copied());
        let mut h = Histogram::new(range);
        h.add(values);
        h
    }

    #[test]
    fn the_full_percentile_is_min_max_and_a_lower_one_clips_a_lone_outlier() {
        let mut values: Vec<f32> = (0..10_000).map(|i| i as f32 / 10_000.0).collect();
        values.push(50.0);
        let h = histogram(&values);
        assert_eq!(h.central(100.0), Range { min: 0.0, max: 50.0 });
        let clipped = h.central(99.9);
        assert!(clipped.min >= 0.0 && clipped.min < 0.01, "{clipped:?}");
        assert!(clipped.max > 0.99 && clipped.max < 1.05, "{clipped:?}");
    }

    #[test]
    fn merged_histograms_count_both_halves() {
        let mut a = histogram(&[0.0, 1.0, 2.0, 3.0]);
        let mut b = Histogram::new(a.range);
        b.add(&[3.0, 3.0]);
        a.merge(b);
        assert_eq!(a.counts.iter().sum::<u64>(), 6);
        assert_eq!(a.counts[HISTOGRAM_BINS - 1], 3);
    }

    #[test]
    fn a_constant_tensor_keeps_its_value() {
        let h = histogram(&[2.0; 10]);
        assert_eq!(h.central(99.0), Range { min: 2.0, max: 2.0 });
    }
}
