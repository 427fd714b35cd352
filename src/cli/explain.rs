//! `cxr explain FILE --out heat.png`: where in the X-ray the model found its evidence.

use super::models::ModelArg;
use anyhow::Context;
use clap::{Args, ValueEnum};
use cxr_core::card::RESEARCH_USE_ONLY;
use cxr_infer::Method;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// The X-ray (PNG, JPEG or DICOM).
    pub file: PathBuf,
    /// PNG to write: the X-ray at its own resolution with the heatmap over it.
    #[arg(long, short = 'o')]
    pub out: PathBuf,
    /// `cam` needs a model that exports its last feature map (global-pooling networks);
    /// `occlusion` works for any model but runs it once per patch position.
    #[arg(long, value_enum)]
    pub method: Option<MethodArg>,
    #[command(flatten)]
    pub model: ModelArg,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum MethodArg {
    Cam,
    Occlusion,
}

pub fn run(args: ExplainArgs) -> anyhow::Result<ExitCode> {
    // Checked before seconds of occlusion, not after.
    let out_dir = args.out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    anyhow::ensure!(
        out_dir.is_dir(),
        "{}: cannot write the heatmap there: folder {} does not exist",
        args.out.display(),
        out_dir.display()
    );
    let model = args.model.load()?;
    let img = cxr_core::load_image(&args.file)?;
    let method = args.method.map(|m| match m {
        MethodArg::Cam => Method::ClassActivationMap,
        MethodArg::Occlusion => Method::Occlusion,
    });
    if method == Some(Method::ClassActivationMap) && model.default_explain_method() != Method::ClassActivationMap {
        eprintln!(
            "note: {} exports no usable feature map for a class activation map; using occlusion",
            model.card.name
        );
    }
    let heat = model.session().explain(&img, method)?;
    let on_film = model.card.preprocess.to_film(&heat.image(), img.width, img.height);
    let picture = cxr_infer::explain::overlay(&img, &on_film);
    picture.save(&args.out).with_context(|| format!("{}: cannot write the heatmap PNG", args.out.display()))?;
    let names = model.class_set().names();
    outln!(
        "{}: {} P(covid) = {:.3} (model {}, {}); {} heatmap (model input {}×{}, drawn at the film's {}×{}) written to {}",
        args.file.display(),
        names[heat.prediction.class_index],
        heat.prediction.p_covid(),
        model.card.name,
        model.short_sha(),
        heat.method.as_str(),
        heat.width,
        heat.height,
        img.width,
        img.height,
        args.out.display()
    );
    outln!("red = regions that raised P(covid) most; check that they lie inside the lungs. {RESEARCH_USE_ONLY}");
    Ok(ExitCode::SUCCESS)
}
