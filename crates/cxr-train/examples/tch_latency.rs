//! Forward-pass latency of a zoo network in libtorch (through `tch`) on the CPU: the libtorch
//! column of BENCHMARKS.md, next to tract and onnxruntime on the ONNX exported from the same
//! network description.
//!
//! The network is built by `cxr_train::zoo`, as training builds it (BatchNorm as its own layer,
//! libtorch's eager mode), with fresh weights: latency does not depend on their values. The
//! input is a real X-ray preprocessed by the card recipe (`--image`), or a constant image.
//! `--size` and `--class-set` match a card whose input side or classes differ from the zoo's
//! defaults (`resnet18-scratch` is 96 px, the three-class models have three outputs).
//!
//! ```text
//! source .torch/env.sh
//! cargo run --release -p cxr-train --example tch_latency -- --arch seed-cnn --batch 1 --threads 1 --runs 50
//! ```
//! Prints one JSON object: median, minimum and mean milliseconds per forward pass.

use cxr_train::tch_backend::{TchNetwork, apply_head, batch_tensor};
use cxr_train::zoo;
use std::time::Instant;
use tch::nn;

struct Args {
    arch: String,
    batch: usize,
    /// 0: libtorch's default (all cores).
    threads: i32,
    runs: usize,
    warmup: usize,
    image: Option<std::path::PathBuf>,
    size: Option<i64>,
    class_set: cxr_core::ClassSet,
}

fn parse_args() -> Args {
    let mut args = Args {
        arch: "seed-cnn".into(),
        batch: 1,
        threads: 1,
        runs: 50,
        warmup: 5,
        image: None,
        size: None,
        class_set: cxr_core::ClassSet::Binary,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--arch" => args.arch = value(),
            "--batch" => args.batch = value().parse().expect("--batch N"),
            "--threads" => args.threads = value().parse().expect("--threads N (0: all cores)"),
            "--runs" => args.runs = value().parse().expect("--runs N"),
            "--warmup" => args.warmup = value().parse().expect("--warmup N"),
            "--image" => args.image = Some(value().into()),
            "--size" => args.size = Some(value().parse().expect("--size PIXELS")),
            "--class-set" => args.class_set = value().parse().unwrap_or_else(|e| panic!("--class-set: {e}")),
            other => panic!("unknown argument {other}; see the doc comment of tch_latency.rs"),
        }
    }
    args
}

fn main() {
    let args = parse_args();
    if args.threads > 0 {
        tch::set_num_threads(args.threads);
    }
    let network = zoo::build(&args.arch, args.size, args.class_set).unwrap_or_else(|e| panic!("{e}"));
    let preprocess = zoo::preprocess_for(&network);
    let image = match &args.image {
        Some(path) => preprocess.apply(&cxr_core::load_image(path).unwrap_or_else(|e| panic!("{e}"))),
        None => vec![0.5; preprocess.len()],
    };
    let input = batch_tensor(&image.repeat(args.batch), preprocess.shape(args.batch));
    let head = network.head;
    let vs = nn::VarStore::new(tch::Device::Cpu);
    let model = TchNetwork::new(&vs.root(), network).unwrap_or_else(|e| panic!("{e}"));
    let forward = || tch::no_grad(|| apply_head(head, &model.forward(&input, false).logits));
    for _ in 0..args.warmup {
        let _ = forward();
    }
    let mut ms: Vec<f64> = (0..args.runs.max(1))
        .map(|_| {
            let started = Instant::now();
            let p = forward();
            // Reading the result back is part of what a caller pays.
            let _ = f32::try_from(p.flatten(0, -1).get(0)).expect("a float probability");
            started.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    let json = serde_json::json!({
        "engine": "libtorch (tch)",
        "arch": args.arch,
        "batch": args.batch,
        "threads": tch::get_num_threads(),
        "runs": ms.len(),
        "median_ms": ms[ms.len() / 2],
        "min_ms": ms[0],
        "mean_ms": ms.iter().sum::<f64>() / ms.len() as f64,
    });
    println!("{json}");
}
