//! Writes a zoo network as ONNX with a model card, for latency benchmarks of an architecture
//! before a trained model of it ships (BENCHMARKS.md's mobilenet-v2 rows).
//!
//! Latency does not depend on the weights, so this is an untrained binary head on the ImageNet
//! backbone (`--weights`, from scripts/fetch-weights.sh) or on fresh weights. Its card says so,
//! and its name ends in `-bench`, so it is never mistaken for a model to diagnose with.
//!
//! ```text
//! source .torch/env.sh
//! cargo run --release -p cxr-train --example bench_model -- --arch mobilenet-v2 --out target/bench-models \
//!     --weights .torch/weights/mobilenet_v2-imagenet.safetensors [--image-size 160]
//! ```
//!
//! With `--image-size N` the file is `{arch}-{N}px-bench.onnx`.

use cxr_core::ModelCard;
use cxr_core::card::{ModelIo, RESEARCH_USE_ONLY, sha256_hex};
use cxr_train::onnx_graph::{self, FEATURES_NAME, INPUT_NAME, PROBABILITIES_NAME};
use cxr_train::pretrained::load_pretrained;
use cxr_train::tch_backend::{TchNetwork, param_values};
use cxr_train::zoo;
use std::path::PathBuf;
use tch::nn;

fn main() {
    let (mut arch, mut out, mut weights, mut image_size) =
        ("mobilenet-v2".to_owned(), PathBuf::from("target/bench-models"), None::<PathBuf>, None::<i64>);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--arch" => arch = value,
            "--out" => out = value.into(),
            "--weights" => weights = Some(value.into()),
            "--image-size" => image_size = Some(value.parse().unwrap_or_else(|e| panic!("--image-size {value}: {e}"))),
            other => panic!("unknown argument {other}; see the doc comment of bench_model.rs"),
        }
    }
    let class_set = cxr_core::ClassSet::Binary;
    let network = zoo::build(&arch, image_size, class_set).unwrap_or_else(|e| panic!("{e}"));
    tch::manual_seed(42);
    let vs = nn::VarStore::new(tch::Device::Cpu);
    let model = TchNetwork::new(&vs.root(), network.clone()).unwrap_or_else(|e| panic!("{e}"));
    let backbone = match &weights {
        Some(path) => {
            load_pretrained(&vs, &network, path, &network.head_prefix()).unwrap_or_else(|e| panic!("{e}"));
            format!("ImageNet backbone from {}", path.file_name().unwrap_or_default().to_string_lossy())
        }
        None => "freshly initialised weights".to_owned(),
    };
    std::fs::create_dir_all(&out).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
    let name = match image_size {
        Some(px) => format!("{arch}-{px}px-bench"),
        None => format!("{arch}-bench"),
    };
    let onnx_path = out.join(format!("{name}.onnx"));
    let bytes =
        onnx_graph::write_onnx(model.network(), &param_values(&vs), &onnx_path).unwrap_or_else(|e| panic!("{e}"));
    let card = ModelCard {
        name: name.clone(),
        architecture: arch.clone(),
        precision: "fp32".into(),
        file: format!("{name}.onnx"),
        sha256: sha256_hex(&bytes),
        class_set,
        preprocess: zoo::preprocess_for(&network),
        io: ModelIo {
            input: INPUT_NAME.into(),
            probabilities: PROBABILITIES_NAME.into(),
            feature_map: network.features.map(|_| FEATURES_NAME.to_owned()),
        },
        threshold: 0.5,
        threshold_rule: "none: untrained head, for latency benchmarks only".into(),
        parameters: Some(network.trainable_parameter_count()),
        training: None,
        evaluations: vec![],
        notes: vec![
            RESEARCH_USE_ONLY.to_owned(),
            format!("latency benchmarks only: untrained binary head, {backbone}; its outputs mean nothing"),
        ],
        quantization: None,
    };
    let card_path = ModelCard::path_for(&onnx_path);
    card.save(&card_path).unwrap_or_else(|e| panic!("{e}"));
    println!("{}", onnx_path.display());
    println!("{}", card_path.display());
}
