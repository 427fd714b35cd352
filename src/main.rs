//! The `cxr` command line: thin argument parsing over the library crates.
//! Each subcommand lives in its own module under `cli/`.

mod cli;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "cxr",
    version,
    about = "COVID-19 chest X-ray classifier for the edge (research use only, not for diagnosis)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Index datasets into a manifest with leak-free splits, and summarise manifests.
    #[command(subcommand)]
    Data(cli::data::DataCommand),
    /// Classify X-ray images with a model (the embedded one by default).
    Predict(cli::predict::PredictArgs),
    /// Score folders, manifests or lists of images on all cores into a CSV (resumable).
    Score(cli::score::ScoreArgs),
    /// Evaluate a model on labelled images: metrics, plots and an HTML report.
    Eval(cli::eval::EvalArgs),
    /// Draw a heatmap of what drove the model's P(covid) over an X-ray.
    Explain(cli::explain::ExplainArgs),
    /// Measure load time, latency, throughput and memory per model.
    Bench(cli::bench::BenchArgs),
    /// List the shipped models.
    Models(cli::models::ModelsArgs),
    /// Print a model's card.
    Info(cli::models::InfoArgs),
    /// Train a network on a manifest's train split and export the best epoch (libtorch; `train` feature).
    #[cfg(feature = "train")]
    Train(cli::train::TrainArgs),
    /// Train a lung-field segmenter on drawn lung masks, to put in front of a classifier (`cxr train --lung-field`; `train` feature).
    #[cfg(feature = "train")]
    TrainLungField(cli::train::TrainLungFieldArgs),
    /// Export a training checkpoint to ONNX with its model card (`train` feature).
    #[cfg(feature = "train")]
    Export(cli::train::ExportArgs),
    /// Quantize an fp32 model to int8 (QLinearConv, MatMulInteger), calibrated on training images (`train` feature).
    #[cfg(feature = "train")]
    Quantize(cli::train::QuantizeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Data(cmd) => cli::data::run(cmd),
        Command::Predict(args) => cli::predict::run(args),
        Command::Score(args) => cli::score::run(args),
        Command::Eval(args) => cli::eval::run(args),
        Command::Explain(args) => cli::explain::run(args),
        Command::Bench(args) => cli::bench::run(args),
        Command::Models(args) => cli::models::run_models(args),
        Command::Info(args) => cli::models::run_info(args),
        #[cfg(feature = "train")]
        Command::Train(args) => cli::train::run_train(args),
        #[cfg(feature = "train")]
        Command::TrainLungField(args) => cli::train::run_train_lung_field(args),
        #[cfg(feature = "train")]
        Command::Export(args) => cli::train::run_export(args),
        #[cfg(feature = "train")]
        Command::Quantize(args) => cli::train::run_quantize(args),
    };
    cli::stdout::flush();
    match result {
        Ok(_) if cli::stdout::failed() => ExitCode::from(2),
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", cxr_core::error_message(err.as_ref()));
            ExitCode::from(2)
        }
    }
}
