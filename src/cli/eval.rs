//! `cxr eval --data DIR|MANIFEST --report OUT`: how good a model is on labelled images, with
//! intervals, calibration, a per-source table, plots and a self-contained HTML report.
//!
//! Repeating `--model` scores several models on the same images in one pass, so a comparison of
//! models is one command with one list of failures: each image is read and decoded once and then
//! fitted to every model's input. The report folder then holds one sub-folder per model, and
//! `--json` prints a list.
//!
//! `--occlude-center` repeats the evaluation with the central lung region blacked out. Maguolo &
//! Nanni (Information Fusion 2021) showed COVID classifiers keep a high AUC on such images: the
//! evidence they use lies outside the lungs (borders, text, devices, the source hospital). A model
//! that is really reading the lungs should drop towards chance.

mod report;

use super::models::ModelArg;
use super::score::walk_images;
use anyhow::Context;
use clap::Args;
use cxr_core::metrics::{BinaryMetrics, Calibration, ConfusionMatrix, DeLong, RocCurve, SourceBreakdown, delong, per_source};
use cxr_core::{Class, ClassSet, GreyImage, Split};
use cxr_infer::{Model, Prediction, Session};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Labelled images: a folder with one sub-folder per class (`covid/`, `normal/`,
    /// `pneumonia/`, `COVID-19`, `NORMAL`, … at any depth), or a manifest CSV from `cxr data index`.
    #[arg(long)]
    pub data: PathBuf,
    /// Manifest split to evaluate (train, val, test, holdout, or `all`). Default: test.
    #[arg(long)]
    pub split: Option<String>,
    /// Folder that a manifest's relative paths are relative to (e.g. `../shared/datasets` for the
    /// stored splits in `models/splits/`). Default: as written if it exists, else the manifest's folder.
    #[arg(long)]
    pub data_root: Option<PathBuf>,
    /// Folder to write metrics.json, predictions.csv, the plots and report.html into (with
    /// several models, into one sub-folder per model, named after it).
    #[arg(long)]
    pub report: PathBuf,
    /// Also print metrics.json to stdout (a JSON list with several models).
    #[arg(long)]
    pub json: bool,
    /// Re-run with the central lung region blacked out (shortcut check) and report both.
    #[arg(long)]
    pub occlude_center: bool,
    /// Worker threads (default: all cores).
    #[arg(long, short = 'j')]
    pub jobs: Option<usize>,
    /// Model to evaluate: a path to an .onnx (card beside it) or .card.json, the name of a shipped
    /// model (see `cxr models`), or `default` for the one built into this binary. Repeat to
    /// evaluate several on the same images, each image decoded once.
    #[arg(long = "model", short = 'm', default_value = "default")]
    pub models: Vec<String>,
}

/// Fraction of each side blacked out by `--occlude-center`: the central 70 % × 70 % box, which
/// covers both lung fields on a frontal film and leaves the borders, corners and labels.
pub const OCCLUDED_FRACTION: f64 = 0.7;

/// One labelled image.
#[derive(Debug, Clone)]
struct Labelled {
    path: PathBuf,
    label: Class,
    source: String,
}

/// One image's outcome.
#[derive(Debug, Clone)]
struct Scored {
    item: Labelled,
    result: Result<(Prediction, Option<Prediction>), String>,
}

/// Everything measured on one version of the images (full or occluded).
#[derive(Debug, Serialize)]
pub struct Metrics {
    pub images: usize,
    pub positives: usize,
    /// AUC of P(covid) for covid vs everything else, DeLong 95% interval.
    pub auc: Option<DeLong>,
    /// Why `auc` is missing (e.g. only one class present).
    pub auc_note: Option<String>,
    pub at_threshold: BinaryMetrics,
    pub confusion: ConfusionMatrix,
    pub calibration: Calibration,
    pub per_source: Vec<SourceBreakdown>,
    #[serde(skip)]
    pub roc: Option<RocCurve>,
}

#[derive(Debug, Serialize)]
pub struct EvalReport {
    pub model: ModelSummary,
    pub data: DataSummary,
    pub full: Metrics,
    pub occluded_center: Option<Metrics>,
    pub failures: Vec<Failure>,
    pub notice: &'static str,
}

#[derive(Debug, Serialize)]
pub struct ModelSummary {
    pub name: String,
    pub architecture: String,
    pub precision: String,
    pub sha256: String,
    pub threshold: f64,
    pub threshold_rule: String,
    pub class_set: ClassSet,
}

#[derive(Debug, Serialize)]
pub struct DataSummary {
    pub input: String,
    pub split: Option<String>,
    pub images: usize,
    pub scored: usize,
    pub failed: usize,
    /// Images whose folder names no class (folder inputs only).
    pub unlabelled: usize,
    pub occluded_fraction: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct Failure {
    pub path: String,
    pub error: String,
}

/// Exit code 1 when any image failed to score (the metrics use the others).
pub fn run(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let models: Vec<Model> = args.models.iter().map(|m| ModelArg { model: m.clone() }.load()).collect::<anyhow::Result<_>>()?;
    let folders = report_folders(&args.report, &models);
    let (items, unlabelled, split) = labelled_images(&args.data, args.split.as_deref(), args.data_root.as_deref())?;
    anyhow::ensure!(!items.is_empty(), "{}: no labelled images found{}", args.data.display(), split.as_deref().map_or(String::new(), |s| format!(" in split {s}")));
    for folder in &folders {
        std::fs::create_dir_all(folder).with_context(|| format!("{}: cannot create the report folder", folder.display()))?;
    }

    let scored = score_all(&models, &items, args.occlude_center, args.jobs)?;
    let data = |ok: usize, failed: usize| DataSummary {
        input: args.data.display().to_string(),
        split: split.clone(),
        images: items.len(),
        scored: ok,
        failed,
        unlabelled,
        occluded_fraction: args.occlude_center.then_some(OCCLUDED_FRACTION),
    };
    let mut reports = Vec::new();
    for ((model, scored), folder) in models.iter().zip(&scored).zip(&folders) {
        reports.push((write_report(model, scored, folder, &data)?, folder.join("report.html")));
    }

    if args.json {
        let reports: Vec<&EvalReport> = reports.iter().map(|(r, _)| r).collect();
        println!("{}", if let [one] = reports[..] { serde_json::to_string_pretty(one)? } else { serde_json::to_string_pretty(&reports)? });
    } else {
        for (report, html) in &reports {
            print_summary(report, html);
        }
        println!("{}", cxr_core::card::RESEARCH_USE_ONLY);
    }
    Ok(if reports.iter().any(|(r, _)| r.data.failed > 0) { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// The report folder itself for one model; for several, a sub-folder per model named after it
/// (with its position appended when two models share a name).
fn report_folders(report: &Path, models: &[Model]) -> Vec<PathBuf> {
    if let [_] = models {
        return vec![report.to_owned()];
    }
    let names: Vec<&str> = models.iter().map(|m| m.card.name.as_str()).collect();
    names
        .iter()
        .enumerate()
        .map(|(i, name)| if names.iter().filter(|n| *n == name).count() > 1 { report.join(format!("{name}-{}", i + 1)) } else { report.join(name) })
        .collect()
}

/// Computes one model's metrics from its scores and writes metrics.json, predictions.csv, the
/// plots and report.html into `folder`.
fn write_report(model: &Model, scored: &[Scored], folder: &Path, data: &dyn Fn(usize, usize) -> DataSummary) -> anyhow::Result<EvalReport> {
    let ok: Vec<(&Labelled, &Prediction, Option<&Prediction>)> =
        scored.iter().filter_map(|s| s.result.as_ref().ok().map(|(p, o)| (&s.item, p, o.as_ref()))).collect();
    let failures: Vec<Failure> = scored
        .iter()
        .filter_map(|s| s.result.as_ref().err().map(|e| Failure { path: s.item.path.display().to_string(), error: e.clone() }))
        .collect();
    anyhow::ensure!(!ok.is_empty(), "{}: every image failed to score; first error: {}", model.card.name, failures[0].error);

    let full = metrics(model, &ok.iter().map(|(i, p, _)| (*i, *p)).collect::<Vec<_>>())?;
    let occluded = if ok[0].2.is_some() {
        Some(metrics(model, &ok.iter().map(|(i, _, o)| (*i, o.expect("occluded run"))).collect::<Vec<_>>())?)
    } else {
        None
    };
    let report = EvalReport {
        model: ModelSummary {
            name: model.card.name.clone(),
            architecture: model.card.architecture.clone(),
            precision: model.card.precision.clone(),
            sha256: model.card.sha256.clone(),
            threshold: model.card.threshold,
            threshold_rule: model.card.threshold_rule.clone(),
            class_set: model.class_set(),
        },
        data: data(ok.len(), failures.len()),
        full,
        occluded_center: occluded,
        failures,
        notice: cxr_core::card::RESEARCH_USE_ONLY,
    };

    let metrics_path = folder.join("metrics.json");
    std::fs::write(&metrics_path, serde_json::to_string_pretty(&report)?).with_context(|| format!("{}: cannot write", metrics_path.display()))?;
    write_predictions(&folder.join("predictions.csv"), model, scored)?;
    let plots = report::plots(folder, &report)?;
    let html_path = folder.join("report.html");
    std::fs::write(&html_path, report::html(&report, &model.card, &plots)?).with_context(|| format!("{}: cannot write", html_path.display()))?;
    Ok(report)
}

/// Labelled images from a manifest or a folder-per-class tree, the number of unlabelled images
/// skipped, and the split used.
fn labelled_images(data: &Path, split: Option<&str>, data_root: Option<&Path>) -> anyhow::Result<(Vec<Labelled>, usize, Option<String>)> {
    if data.is_dir() {
        anyhow::ensure!(split.is_none(), "--split applies to manifests; {} is a folder", data.display());
        anyhow::ensure!(data_root.is_none(), "--data-root applies to manifests; {} is a folder", data.display());
        let (images, _) = walk_images(data)?;
        let root_name = data.canonicalize().ok().and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned())).unwrap_or_else(|| "data".into());
        let mut items = Vec::new();
        let mut unlabelled = 0;
        for path in images {
            let rel: Vec<String> = path.strip_prefix(data).unwrap_or(&path).parent().into_iter().flat_map(|p| p.iter()).map(|c| c.to_string_lossy().into_owned()).collect();
            // The deepest folder that names a class labels the image; the folders above it name the source.
            match rel.iter().rposition(|c| Class::from_folder_name(c).is_some()) {
                Some(at) => {
                    let label = Class::from_folder_name(&rel[at]).expect("just matched");
                    let source = if at == 0 { root_name.clone() } else { format!("{root_name}/{}", rel[..at].join("/")) };
                    items.push(Labelled { path, label, source });
                }
                None => unlabelled += 1,
            }
        }
        if unlabelled > 0 {
            eprintln!("skipped {unlabelled} images under {} whose folders name no class", data.display());
        }
        return Ok((items, unlabelled, None));
    }
    let manifest = cxr_core::Manifest::read(data)?;
    let split = split.unwrap_or("test");
    let wanted: Option<Split> = if split == "all" { None } else { Some(split.parse().map_err(anyhow::Error::msg)?) };
    let base = data.parent().unwrap_or(Path::new("."));
    let items = manifest
        .entries
        .iter()
        .filter(|e| wanted.is_none_or(|s| e.split == s))
        .map(|e| Labelled {
            path: match data_root {
                Some(root) if e.path.is_relative() => root.join(&e.path),
                _ if e.path.is_absolute() || e.path.exists() => e.path.clone(),
                _ => base.join(&e.path),
            },
            label: e.label,
            source: e.source.clone(),
        })
        .collect();
    Ok((items, 0, Some(split.to_owned())))
}

/// Scores every image with every model: per model, one outcome per image, in `items` order.
/// Each image is read and decoded once; a file that cannot be read fails for every model.
fn score_all(models: &[Model], items: &[Labelled], occlude: bool, jobs: Option<usize>) -> anyhow::Result<Vec<Vec<Scored>>> {
    let progress = ProgressBar::new(items.len() as u64);
    progress.set_style(ProgressStyle::with_template("{bar:40} {pos}/{len} images  {per_sec}  eta {eta}").expect("valid template"));
    let pool = rayon::ThreadPoolBuilder::new().num_threads(jobs.unwrap_or(0)).build()?;
    let per_image: Vec<Vec<Scored>> = pool.install(|| {
        items
            .par_iter()
            .map_init(
                || models.iter().map(Model::session).collect::<Vec<_>>(),
                |sessions, item| {
                    let image = cxr_core::load_image(&item.path).map_err(|e| e.to_string());
                    let scored = sessions
                        .iter_mut()
                        .map(|session| {
                            let result = match &image {
                                Ok(img) => score_one(session, img, occlude).map_err(|e| e.to_string()),
                                Err(e) => Err(e.clone()),
                            };
                            Scored { item: item.clone(), result }
                        })
                        .collect();
                    progress.inc(1);
                    scored
                },
            )
            .collect()
    });
    progress.finish_and_clear();
    let mut per_model: Vec<Vec<Scored>> = models.iter().map(|_| Vec::with_capacity(items.len())).collect();
    for image in per_image {
        for (model, scored) in per_model.iter_mut().zip(image) {
            model.push(scored);
        }
    }
    Ok(per_model)
}

fn score_one(session: &mut Session<'_>, img: &GreyImage, occlude: bool) -> Result<(Prediction, Option<Prediction>), cxr_infer::InferError> {
    let fitted = session.model().card.preprocess.fit(img);
    let full = session.predict_image(&fitted)?;
    let occluded = if occlude { Some(session.predict_image(&occlude_center(fitted))?) } else { None };
    Ok((full, occluded))
}

/// Blacks out the central box of a fitted (model-sized) image. Preprocessing a model-sized image
/// again is the identity, so the model sees exactly this.
fn occlude_center(mut img: GreyImage) -> GreyImage {
    let (w, h) = (img.width as usize, img.height as usize);
    let margin = |side: usize| ((side as f64 * (1.0 - OCCLUDED_FRACTION) / 2.0).round() as usize).min(side / 2);
    let (mx, my) = (margin(w), margin(h));
    for y in my..h - my {
        img.pixels[y * w + mx..y * w + w - mx].fill(0.0);
    }
    img
}

fn metrics(model: &Model, rows: &[(&Labelled, &Prediction)]) -> anyhow::Result<Metrics> {
    let class_set = model.class_set();
    let covid = class_set.index(Class::Covid);
    let scores: Vec<f64> = rows.iter().map(|(_, p)| p.probabilities[covid] as f64).collect();
    let positives: Vec<bool> = rows.iter().map(|(i, _)| i.label == Class::Covid).collect();
    let threshold = model.card.threshold;
    let (auc, auc_note) = match delong(&scores, &positives) {
        Ok(d) => (Some(d), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let truth: Vec<usize> = rows.iter().map(|(i, _)| class_set.index(i.label)).collect();
    let predicted: Vec<usize> = rows.iter().map(|(_, p)| p.class_index).collect();
    let by_source: Vec<(&str, f64, bool)> = rows.iter().zip(&scores).map(|((i, _), &s)| (i.source.as_str(), s, i.label == Class::Covid)).collect();
    Ok(Metrics {
        images: rows.len(),
        positives: positives.iter().filter(|&&p| p).count(),
        auc,
        auc_note,
        at_threshold: BinaryMetrics::at_threshold(&scores, &positives, threshold)?,
        confusion: ConfusionMatrix::from_indices(class_set.names(), &truth, &predicted)?,
        calibration: Calibration::new(&scores, &positives, 10)?,
        per_source: per_source(&by_source, threshold)?,
        roc: RocCurve::new(&scores, &positives).ok(),
    })
}

fn write_predictions(path: &Path, model: &Model, scored: &[Scored]) -> anyhow::Result<()> {
    let covid = model.class_set().index(Class::Covid);
    let names = model.class_set().names();
    let mut w = csv::Writer::from_path(path).with_context(|| format!("{}: cannot write", path.display()))?;
    w.write_record(["path", "source", "label", "p_covid", "class", "p_covid_occluded_center", "error"])?;
    for s in scored {
        let (p, class, occluded, error) = match &s.result {
            Ok((p, o)) => (format!("{:.6}", p.probabilities[covid]), names[p.class_index].to_owned(), o.as_ref().map_or(String::new(), |o| format!("{:.6}", o.probabilities[covid])), String::new()),
            Err(e) => (String::new(), String::new(), String::new(), e.clone()),
        };
        w.write_record([s.item.path.display().to_string(), s.item.source.clone(), s.item.label.to_string(), p, class, occluded, error])?;
    }
    w.flush()?;
    Ok(())
}

fn print_summary(report: &EvalReport, html: &Path) {
    let line = |label: &str, m: &Metrics| {
        let auc = m.auc.map_or_else(|| format!("n/a ({})", m.auc_note.as_deref().unwrap_or("")), |d| d.ci.display(3));
        let se = m.at_threshold.sensitivity.interval.map_or("n/a".into(), |i| i.display(3));
        let sp = m.at_threshold.specificity.interval.map_or("n/a".into(), |i| i.display(3));
        println!("{label}: AUC {auc}");
        println!("{:width$}  sensitivity {se}, specificity {sp} at P(covid) ≥ {}, ECE {:.3}", "", report.model.threshold, m.calibration.expected_calibration_error, width = label.len());
    };
    println!(
        "{} on {} ({} images, {} COVID, {} failed)",
        report.model.name, report.data.input, report.full.images, report.full.positives, report.data.failed
    );
    line("full images", &report.full);
    if let Some(o) = &report.occluded_center {
        line("centre occluded", o);
    }
    println!("report: {}", html.display());
}
