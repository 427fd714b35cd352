//! `cxr predict FILE...`: classify a few X-rays and say how sure the model is.

use super::models::ModelArg;
use clap::Args;
use cxr_core::card::RESEARCH_USE_ONLY;
use cxr_infer::{IntraOpThreads, Model, Prediction};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct PredictArgs {
    /// X-ray images (PNG, JPEG or DICOM).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub model: ModelArg,
    /// One JSON document on stdout instead of text.
    #[arg(long)]
    pub json: bool,
    /// Threads each image's inference splits its matrix products over (0: one per core). The
    /// images are scored one after another; to score many, `cxr score` spreads them over cores.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub threads_per_image: usize,
}

/// Exit code 1 when any file could not be classified (the others are still printed).
pub fn run(args: PredictArgs) -> anyhow::Result<ExitCode> {
    let mut model = args.model.load()?;
    model.set_intra_op_threads(IntraOpThreads::new(args.threads_per_image));
    let mut session = model.session();
    let results: Vec<(PathBuf, Result<Prediction, String>)> =
        args.files.iter().map(|f| (f.clone(), session.predict_file(f).map_err(|e| e.to_string()))).collect();
    let failed = results.iter().any(|(_, r)| r.is_err());
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&json_report(&model, &results))?);
    } else {
        print_text(&model, &results);
    }
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn print_text(model: &Model, results: &[(PathBuf, Result<Prediction, String>)]) {
    let names = model.class_set().names();
    outln!(
        "model {} ({}, {}, sha256 {}), threshold P(covid) ≥ {:.3}",
        model.card.name,
        model.card.architecture,
        model.card.precision,
        model.short_sha(),
        model.card.threshold
    );
    for (path, result) in results {
        match result {
            Ok(p) => {
                let mut line = format!("{}: {}  P(covid) = {:.3}", path.display(), names[p.class_index], p.p_covid());
                if names.len() > 2 {
                    let all: Vec<String> =
                        names.iter().zip(&p.probabilities).map(|(n, v)| format!("{n} {v:.3}")).collect();
                    line += &format!("  ({})", all.join(", "));
                }
                outln!("{line}");
            }
            Err(e) => eprintln!("error: {e}"),
        }
    }
    outln!("{RESEARCH_USE_ONLY}");
}

fn json_report(model: &Model, results: &[(PathBuf, Result<Prediction, String>)]) -> serde_json::Value {
    let names = model.class_set().names();
    let rows: Vec<serde_json::Value> = results
        .iter()
        .map(|(path, result)| match result {
            Ok(p) => serde_json::json!({
                "path": path.display().to_string(),
                "class": names[p.class_index],
                "p_covid": p.p_covid(),
                "probabilities": names.iter().zip(&p.probabilities).map(|(n, v)| (n.to_string(), serde_json::json!(v))).collect::<serde_json::Map<_, _>>(),
            }),
            Err(e) => serde_json::json!({ "path": path.display().to_string(), "error": e }),
        })
        .collect();
    serde_json::json!({
        "model": { "name": model.card.name, "architecture": model.card.architecture, "precision": model.card.precision, "sha256": model.card.sha256 },
        "threshold": model.card.threshold,
        "predictions": rows,
        "notice": RESEARCH_USE_ONLY,
    })
}
