//! `cxr models`, `cxr info MODEL`, and the `--model` option every inference command shares.

use anyhow::Context;
use clap::Args;
use cxr_infer::{Batch, Catalog, Model, ModelSource, ShippedModel};
use std::path::PathBuf;
use std::process::ExitCode;

include!(concat!(env!("OUT_DIR"), "/embedded_model.rs"));

/// Which model to run.
#[derive(Args, Debug, Clone)]
pub struct ModelArg {
    /// Model to use: a path to an .onnx (card beside it) or .card.json, the name of a shipped
    /// model (see `cxr models`), or `default` for the one built into this binary.
    #[arg(long, short = 'm', default_value = "default")]
    pub model: String,
}

impl ModelArg {
    pub fn source(&self) -> ModelSource {
        ModelSource::parse(&self.model)
    }

    /// Loads and optimises the model (one-image plan).
    pub fn load(&self) -> anyhow::Result<Model> {
        Ok(catalog().load(&self.source(), Batch::default())?)
    }
}

/// The embedded model plus the folders searched for shipped models, in order:
/// `$CXR_MODELS`, `./models`, and `models/` beside the executable.
pub fn catalog() -> Catalog {
    let mut dirs = Vec::new();
    if let Some(dir) = std::env::var_os("CXR_MODELS") {
        dirs.push(PathBuf::from(dir));
    }
    dirs.push(PathBuf::from("models"));
    if let Some(exe_dir) = std::env::current_exe().ok().and_then(|p| p.parent().map(|d| d.join("models"))) {
        dirs.push(exe_dir);
    }
    Catalog { embedded: EMBEDDED_MODEL.map_err(str::to_owned), dirs }
}

#[derive(Args, Debug)]
pub struct ModelsArgs {
    /// Print the list as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Lists the shipped models: name, architecture, precision, size, then the within-source AUC
/// (COVID against non-COVID films of one source) and its lungs-occluded twin before the
/// leak-free test AUC, since the test AUC also rewards recognising the source.
pub fn run_models(args: ModelsArgs) -> anyhow::Result<ExitCode> {
    let catalog = catalog();
    let models = catalog.shipped();
    if args.json {
        let rows: Vec<serde_json::Value> = models.iter().map(model_json).collect();
        outln!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    if let Err(reason) = &catalog.embedded {
        eprintln!("note: this binary has no embedded model ({reason})");
    }
    if models.is_empty() {
        let dirs: Vec<String> = catalog.dirs.iter().map(|d| d.display().to_string()).collect();
        outln!("no models found in {} (set CXR_MODELS to a folder of *.card.json + *.onnx)", dirs.join(", "));
        return Ok(ExitCode::SUCCESS);
    }
    let width = super::column_width("NAME", models.iter().map(|m| m.card.name.as_str()));
    outln!(
        "{:<width$} {:<18} {:<11} {:<9} {:>9}  {:<21} {:<8} {:<21}",
        "NAME",
        "ARCHITECTURE",
        "CLASSES",
        "PRECISION",
        "SIZE",
        "WITHIN-SOURCE AUC",
        "OCCLUDED",
        "TEST AUC"
    );
    for m in &models {
        let size = m.file_size.map_or("missing".into(), human_size);
        let within = m.card.headline().and_then(|e| e.within_source.as_ref());
        let within_auc =
            within.map_or("-".into(), |w| format!("{:.3} ({:.3}–{:.3})", w.auc, w.auc_ci95[0], w.auc_ci95[1]));
        let occluded = within.and_then(|w| w.auc_occluded_center).map_or("-".into(), |a| format!("{a:.3}"));
        let auc = test_auc(m).map_or("-".into(), |(auc, ci)| format!("{auc:.3} ({:.3}–{:.3})", ci[0], ci[1]));
        let marker = if m.embedded { "(embedded, default)" } else { "" };
        // As `cxr train --classes` spells them.
        let classes = match m.card.class_set {
            cxr_core::ClassSet::Binary => "binary",
            cxr_core::ClassSet::ThreeClass => "three-class",
        };
        outln!(
            "{:<width$} {:<18} {:<11} {:<9} {:>9}  {:<21} {:<8} {:<21} {marker}",
            m.card.name,
            m.card.architecture,
            classes,
            m.card.precision,
            size,
            within_auc,
            occluded,
            auc
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn human_size(bytes: u64) -> String {
    if bytes < 1_000_000 { format!("{:.1} kB", bytes as f64 / 1e3) } else { format!("{:.2} MB", bytes as f64 / 1e6) }
}

/// The card's leak-free `test` evaluation.
fn test_auc(m: &ShippedModel) -> Option<(f64, [f64; 2])> {
    let e = m.card.evaluations.iter().find(|e| e.name == "test")?;
    Some((e.auc, e.auc_ci95))
}

fn model_json(m: &ShippedModel) -> serde_json::Value {
    serde_json::json!({
        "name": m.card.name,
        "architecture": m.card.architecture,
        "precision": m.card.precision,
        "file_size": m.file_size,
        "card": m.card_path.display().to_string(),
        "sha256": m.card.sha256,
        "embedded": m.embedded,
        "evaluations": m.card.evaluations,
    })
}

/// What is wrong with a card's model file, if anything: missing, unreadable, or not the file
/// the card's sha256 describes. A card printed without this would look like a usable model.
fn file_problem(found: &ShippedModel) -> Option<String> {
    if found.embedded && found.card_path.starts_with("<embedded>") {
        return None;
    }
    let model_path = found.card_path.parent().unwrap_or(std::path::Path::new(".")).join(&found.card.file);
    match std::fs::read(&model_path) {
        Ok(bytes) => found.card.verify(&found.card_path, &model_path, &bytes).err().map(|e| e.to_string()),
        Err(e) => Some(format!("{}: cannot read the model file: {e}", model_path.display())),
    }
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// A path to an .onnx or .card.json, a shipped model's name, or `default`.
    #[arg(default_value = "default")]
    pub model: String,
    /// Print the card itself as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Prints a model card.
pub fn run_info(args: InfoArgs) -> anyhow::Result<ExitCode> {
    let found = catalog()
        .card(&ModelSource::parse(&args.model))
        .with_context(|| format!("cannot find model `{}`", args.model))?;
    let card = &found.card;
    if let Some(problem) = file_problem(&found) {
        eprintln!("warning: {problem}; this model will not load");
    }
    if args.json {
        outln!("{}", serde_json::to_string_pretty(card)?);
        return Ok(ExitCode::SUCCESS);
    }
    outln!("name:          {}{}", card.name, if found.embedded { " (embedded in this binary)" } else { "" });
    outln!("card:          {}", found.card_path.display());
    outln!("architecture:  {}", card.architecture);
    outln!("precision:     {}", card.precision);
    outln!("file:          {} ({})", card.file, found.file_size.map_or("missing".into(), |s| format!("{s} bytes")));
    outln!("sha256:        {}", card.sha256);
    if let Some(p) = card.parameters {
        outln!("parameters:    {p}");
    }
    outln!("classes:       {}", card.class_names().join(", "));
    let p = &card.preprocess;
    outln!(
        "input:         `{}` N×{}×{}×{}, resize {:?}, normalize {:?}",
        card.io.input,
        p.channels,
        p.size,
        p.size,
        p.resize,
        p.normalize
    );
    outln!(
        "outputs:       probabilities `{}`{}",
        card.io.probabilities,
        card.io.feature_map.as_ref().map_or(String::new(), |f| format!(", feature map `{f}`"))
    );
    outln!(
        "threshold:     {} {}",
        card.threshold,
        if card.threshold_rule.is_empty() { String::new() } else { format!("({})", card.threshold_rule) }
    );
    if let Some(t) = &card.training {
        outln!(
            "training:      {} train / {} val images, {} epochs, split seed {}, train seed {}{}",
            t.train_images,
            t.val_images,
            t.epochs,
            t.split_seed,
            t.train_seed,
            if t.holdout_sources.is_empty() {
                String::new()
            } else {
                format!(", held-out sources: {}", t.holdout_sources.join(", "))
            }
        );
    }
    // The headline first: the within-source figure a source-recognising model cannot fake.
    let headline = card.headline();
    for e in headline.into_iter().chain(card.evaluations.iter().filter(|e| Some(*e) != headline)) {
        let mut line = format!("evaluation:    {} ({} images): ", e.name, e.images);
        if let Some(w) = &e.within_source {
            line += &format!(
                "within-source AUC {:.3} (95% CI {:.3}–{:.3}) over {}",
                w.auc,
                w.auc_ci95[0],
                w.auc_ci95[1],
                w.sources.join(", ")
            );
            if let Some(a) = w.auc_occluded_center {
                line += &format!(", {a:.3} with centre occluded");
            }
            line += "; ";
        }
        line += &format!("AUC {:.3} (95% CI {:.3}–{:.3})", e.auc, e.auc_ci95[0], e.auc_ci95[1]);
        if let (Some(se), Some(sp)) = (e.sensitivity, e.specificity) {
            line += &format!(", sensitivity {se:.3}, specificity {sp:.3}");
        }
        if let Some(a) = e.auc_occluded_center {
            line += &format!(", AUC with centre occluded {a:.3}");
        }
        outln!("{line}");
    }
    for note in &card.notes {
        outln!("note:          {note}");
    }
    outln!("{}", cxr_core::card::RESEARCH_USE_ONLY);
    Ok(ExitCode::SUCCESS)
}
