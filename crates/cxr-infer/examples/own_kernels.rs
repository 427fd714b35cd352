//! Times one model with cxr's own convolution kernels on and off, in one process, the forms
//! alternating so that a busy machine slows all of them alike:
//!
//! `cargo run --release -p cxr-infer --example own_kernels -- MODEL.onnx IMAGE [ROUNDS] [BATCH]`
//!
//! Prints the median time of one run of a plan for BATCH images (default 1; one thread,
//! preprocessing included) and of loading the model, for: the depthwise kernel, the depthwise and
//! 1 × 1 kernels (`cxr_infer::pointwise`, which `cxr` uses for plans of several images), and tract
//! alone.

use cxr_core::ModelCard;
use cxr_infer::{Batch, GraphForm, Model, PointwisePlans};
use std::path::PathBuf;
use std::time::Instant;

const PREDICTIONS_PER_ROUND: usize = 20;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, onnx, image, rest @ ..] = &args[..] else {
        return Err("usage: own_kernels MODEL.onnx IMAGE [ROUNDS] [BATCH]".into());
    };
    let rounds: usize = rest.first().map_or(Ok(5), |r| r.parse())?;
    let batch: usize = rest.get(1).map_or(Ok(1), |b| b.parse())?;
    let onnx = PathBuf::from(onnx);
    let image = cxr_core::load_image(std::path::Path::new(image))?;
    let card_path = ModelCard::path_for(&onnx);
    let bytes = std::fs::read(&onnx)?;
    let default = GraphForm::from_env();
    let forms = [
        ("depthwise only", GraphForm { pointwise: PointwisePlans::None, ..default }),
        ("with 1x1 kernel", GraphForm { pointwise: PointwisePlans::All, ..default }),
        ("tract alone", GraphForm { depthwise: false, pointwise: PointwisePlans::None, ..default }),
    ];
    let (mut predict, mut load) = (vec![vec![]; forms.len()], vec![vec![]; forms.len()]);
    for _ in 0..rounds {
        for (i, (_, form)) in forms.iter().enumerate() {
            let start = Instant::now();
            let model = Model::from_bytes_with(
                ModelCard::load(&card_path)?,
                &card_path,
                &onnx,
                &bytes,
                Batch::Fixed(batch),
                *form,
            )?;
            load[i].push(start.elapsed().as_secs_f64() * 1e3);
            let mut session = model.session();
            let mut one = Vec::with_capacity(model.input_len());
            let mut inputs = Vec::with_capacity(model.input_len() * batch);
            let mut run = || -> Result<(), cxr_infer::InferError> {
                one.clear();
                model.preprocess_into(&image, &mut one);
                inputs.clear();
                (0..batch).for_each(|_| inputs.extend_from_slice(&one));
                session.run(&inputs, batch).map(drop)
            };
            run()?;
            for _ in 0..PREDICTIONS_PER_ROUND {
                let start = Instant::now();
                run()?;
                predict[i].push(start.elapsed().as_secs_f64() * 1e3);
            }
        }
    }
    for (i, (name, _)) in forms.iter().enumerate() {
        println!(
            "{name:15} batch of {batch}: p50 {:6.2} ms   load p50 {:6.1} ms",
            median(&mut predict[i]),
            median(&mut load[i])
        );
    }
    Ok(())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
