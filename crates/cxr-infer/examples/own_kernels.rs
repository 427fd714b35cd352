//! Times one model with cxr's own convolution kernels on and off, in one process, the forms
//! alternating so that a busy machine slows all of them alike:
//!
//! `cargo run --release -p cxr-infer --example own_kernels -- MODEL.onnx IMAGE [ROUNDS]`
//!
//! Prints the median time of one prediction (one thread, preprocessing included) and of loading
//! the model, for: the default (the depthwise kernel), the default with the 1 × 1 kernel
//! (`cxr_infer::pointwise`, off by default), and tract alone.

use cxr_core::ModelCard;
use cxr_infer::{Batch, GraphForm, Model};
use std::path::PathBuf;
use std::time::Instant;

const PREDICTIONS_PER_ROUND: usize = 20;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, onnx, image, rest @ ..] = &args[..] else {
        return Err("usage: own_kernels MODEL.onnx IMAGE [ROUNDS]".into());
    };
    let rounds: usize = rest.first().map_or(Ok(5), |r| r.parse())?;
    let onnx = PathBuf::from(onnx);
    let image = cxr_core::load_image(std::path::Path::new(image))?;
    let card_path = ModelCard::path_for(&onnx);
    let bytes = std::fs::read(&onnx)?;
    let default = GraphForm::from_env();
    let forms = [
        ("default", default),
        ("with 1x1 kernel", GraphForm { pointwise: true, ..default }),
        ("tract alone", GraphForm { depthwise: false, pointwise: false, ..default }),
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
                Batch::default(),
                *form,
            )?;
            load[i].push(start.elapsed().as_secs_f64() * 1e3);
            let mut session = model.session();
            session.predict_image(&image)?;
            for _ in 0..PREDICTIONS_PER_ROUND {
                let start = Instant::now();
                session.predict_image(&image)?;
                predict[i].push(start.elapsed().as_secs_f64() * 1e3);
            }
        }
    }
    for (i, (name, _)) in forms.iter().enumerate() {
        println!("{name:15} predict p50 {:6.2} ms   load p50 {:6.1} ms", median(&mut predict[i]), median(&mut load[i]));
    }
    Ok(())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
