//! `cxr eval --data DIR|MANIFEST --report OUT`: how good a model is on labelled images, with
//! intervals, calibration, a per-source table, plots and a self-contained HTML report.
//!
//! Repeating `--model` scores several models on the same images in one pass, so a comparison of
//! models is one command with one list of failures: each image is read and decoded once and then
//! fitted to every model's input. The report folder then holds one sub-folder per model, and
//! `--json` prints a list.
//!
//! The headline is the within-source AUC: COVID against non-COVID films *of the same source*,
//! pooled over every source that has both classes (`cxr_core::metrics::within_source`). Public
//! collections put their COVID and non-COVID films in different hospitals, so the pooled AUC
//! also rewards recognising the hospital; the within-source one does not. `--source` narrows the
//! images to named sources (e.g. the one collection with both classes), and `--record NAME`
//! writes the result into each model's card, naming the stored split so CI can measure it again.
//!
//! `--occlude-center` repeats the evaluation with the central lung region blacked out. Maguolo &
//! Nanni (Information Fusion 2021) showed COVID classifiers keep a high AUC on such images: the
//! evidence they use lies outside the lungs (borders, text, devices, the source hospital). A model
//! that is really reading the lungs should drop towards chance.

mod record;
mod report;

use super::models::ModelArg;
use super::score::walk_images;
use anyhow::Context;
use clap::Args;
use cxr_core::metrics::{BinaryMetrics, Calibration, ConfusionMatrix, DeLong, RocCurve, SourceBreakdown, WithinSource, delong, per_source_at, within_source};
use cxr_core::lung_mask::{Attribution, FittedMask, LungMasks};
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
    /// Only images of this source (a manifest's `source` column, or for a folder the path of the
    /// folders above the class folders, e.g. `mydata/hospital-a`). Repeat for several.
    #[arg(long = "source")]
    pub sources: Vec<String>,
    /// Record this evaluation under NAME in each model's card (replacing one of that name), with
    /// the manifest split and sources, so `tests/model_accuracy.rs` can measure it again. Needs a
    /// manifest and models loaded from a card file or a shipped name.
    #[arg(long, value_name = "NAME")]
    pub record: Option<String>,
    /// Lung masks (a CSV `image,mask,…`: images relative to `--data-root`, masks to the CSV's
    /// folder, e.g. `../shared/annotations/lung-masks-v7/masks.csv`): for the films that have
    /// one, the share of each model's positive heatmap evidence that lies inside the lungs.
    #[arg(long, value_name = "CSV")]
    pub lung_masks: Option<PathBuf>,
    /// Cross-fitted models: `--data` is a folder from `cxr data folds`, the first `--model` is
    /// scored on `fold-0.csv`'s split, the second on `fold-1.csv`'s, and so on, and the report
    /// pools these out-of-fold scores as one evaluation, each film at its own model's threshold.
    #[arg(long)]
    pub out_of_fold: bool,
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
    /// The threshold of the model that scored it.
    threshold: f64,
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
    /// COVID against non-COVID films of the same source, pooled over sources with both classes.
    pub within_source: Option<WithinSource>,
    /// Why `within_source` is missing (no source with both classes).
    pub within_source_note: Option<String>,
    #[serde(skip)]
    pub roc: Option<RocCurve>,
}

#[derive(Debug, Serialize)]
pub struct EvalReport {
    pub model: ModelSummary,
    pub data: DataSummary,
    pub full: Metrics,
    pub occluded_center: Option<Metrics>,
    /// Share of positive heatmap evidence inside the lungs, on films with a lung mask.
    pub attribution: Option<Attribution>,
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
    /// The sources the images were limited to (`--source`); empty for all.
    pub sources: Vec<String>,
    pub occluded_fraction: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct Failure {
    pub path: String,
    pub error: String,
}

impl ModelSummary {
    fn of(model: &Model) -> ModelSummary {
        ModelSummary {
            name: model.card.name.clone(),
            architecture: model.card.architecture.clone(),
            precision: model.card.precision.clone(),
            sha256: model.card.sha256.clone(),
            threshold: model.card.threshold,
            threshold_rule: model.card.threshold_rule.clone(),
            class_set: model.class_set(),
        }
    }
}

/// Exit code 1 when any image failed to score (the metrics use the others).
pub fn run(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let models: Vec<Model> = args.models.iter().map(|m| ModelArg { model: m.clone() }.load()).collect::<anyhow::Result<_>>()?;
    anyhow::ensure!(args.record.is_none() || !args.data.is_dir(), "--record needs a manifest (so CI can re-run the evaluation); {} is a folder", args.data.display());
    let reports = if args.out_of_fold { out_of_fold(&args, &models)? } else { per_model(&args, &models)? };

    if let Some(name) = &args.record {
        for (model, (report, _)) in models.iter().zip(&reports) {
            let card = record::record(model, report, name, &args.data, &args.sources)?;
            eprintln!("recorded `{name}` in {}", card.display());
        }
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

/// Every model on the same images: one report (and report folder) per model.
fn per_model(args: &EvalArgs, models: &[Model]) -> anyhow::Result<Vec<(EvalReport, PathBuf)>> {
    let folders = report_folders(&args.report, models);
    let (items, unlabelled, split) = labelled_images(&args.data, args.split.as_deref(), args.data_root.as_deref())?;
    let items = only_sources(items, &args.sources, &args.data)?;
    anyhow::ensure!(!items.is_empty(), "{}: no labelled images found{}", args.data.display(), split.as_deref().map_or(String::new(), |s| format!(" in split {s}")));
    for folder in &folders {
        std::fs::create_dir_all(folder).with_context(|| format!("{}: cannot create the report folder", folder.display()))?;
    }

    let scored = score_all(models, &items, args.occlude_center, args.jobs)?;
    let masks = lung_masks(args, &args.data)?;
    let data = |ok: usize, failed: usize| data_summary(args, split.clone(), items.len(), unlabelled, ok, failed);
    let mut reports = Vec::new();
    for ((model, scored), folder) in models.iter().zip(&scored).zip(&folders) {
        let attribution = match &masks {
            Some(masks) => Attribution::from_films(model.default_explain_method().as_str(), &lung_evidence(model, &items, masks, args.jobs)?),
            None => None,
        };
        reports.push((write_report(model, ModelSummary::of(model), scored, attribution, folder, &data)?, folder.join("report.html")));
    }
    Ok(reports)
}

/// Cross-fitted models, the k-th scored on `fold-k.csv` of the `--data` folder: one report of the
/// pooled out-of-fold scores, so that every film of the cross-fitted source is scored once, by the
/// one model that did not train on it.
fn out_of_fold(args: &EvalArgs, models: &[Model]) -> anyhow::Result<Vec<(EvalReport, PathBuf)>> {
    anyhow::ensure!(args.data.is_dir(), "--out-of-fold needs --data to be a folder from `cxr data folds`; {} is not a folder", args.data.display());
    anyhow::ensure!(args.record.is_none(), "--record writes into one model's card; out-of-fold scores come from {} models", models.len());
    let fold = |k: usize| args.data.join(format!("fold-{k}.csv"));
    anyhow::ensure!(models.len() >= 2 && !fold(models.len()).exists(), "--out-of-fold needs one --model per fold of {}, in fold order; {} given", args.data.display(), models.len());
    let class_set = models[0].class_set();
    if let Some(other) = models.iter().find(|m| m.class_set() != class_set) {
        anyhow::bail!("--out-of-fold pools the scores of one kind of model: {} has other classes than {}", other.card.name, models[0].card.name);
    }
    let (mut scored, mut films, mut images, mut split) = (Vec::new(), Vec::new(), 0, None);
    for (k, model) in models.iter().enumerate() {
        let manifest = fold(k);
        anyhow::ensure!(manifest.is_file(), "{}: missing; --out-of-fold needs one fold manifest per --model", manifest.display());
        let (items, _, fold_split) = labelled_images(&manifest, args.split.as_deref(), args.data_root.as_deref())?;
        let items = only_sources(items, &args.sources, &manifest)?;
        anyhow::ensure!(!items.is_empty(), "{}: no labelled images found in split {}", manifest.display(), fold_split.as_deref().unwrap_or("test"));
        images += items.len();
        split = fold_split;
        scored.extend(score_all(std::slice::from_ref(model), &items, args.occlude_center, args.jobs)?.remove(0));
        if let Some(masks) = lung_masks(args, &manifest)? {
            films.extend(lung_evidence(model, &items, &masks, args.jobs)?);
        }
    }
    let mut summary = ModelSummary::of(&models[0]);
    let mut thresholds: Vec<f64> = models.iter().map(|m| m.card.threshold).collect();
    thresholds.sort_by(f64::total_cmp);
    summary.name = format!("{} (out of fold, {} folds)", family_name(models), models.len());
    summary.sha256 = models.iter().map(|m| m.card.sha256.as_str()).collect::<Vec<_>>().join(" ");
    summary.threshold = thresholds[thresholds.len() / 2];
    summary.threshold_rule = format!("each film at the threshold of the fold model that scored it (median shown): {}", models[0].card.threshold_rule);
    let attribution = Attribution::from_films(models[0].default_explain_method().as_str(), &films);
    std::fs::create_dir_all(&args.report).with_context(|| format!("{}: cannot create the report folder", args.report.display()))?;
    let data = |ok: usize, failed: usize| data_summary(args, split.clone(), images, 0, ok, failed);
    Ok(vec![(write_report(&models[0], summary, &scored, attribution, &args.report, &data)?, args.report.join("report.html"))])
}

/// What the fold models' names share (`resnet18-cv-fold-0`, `…-fold-1` → `resnet18-cv`).
fn family_name(models: &[Model]) -> String {
    let names: Vec<&str> = models.iter().map(|m| m.card.name.as_str()).collect();
    let common = names.iter().skip(1).fold(names[0].len(), |n, name| names[0].bytes().zip(name.bytes()).take(n).take_while(|(a, b)| a == b).count());
    let stem = names[0][..common].trim_end_matches(|c: char| c.is_ascii_digit()).trim_end_matches("fold").trim_end_matches(['-', '_']);
    if stem.is_empty() { names[0].to_owned() } else { stem.to_owned() }
}

fn data_summary(args: &EvalArgs, split: Option<String>, images: usize, unlabelled: usize, scored: usize, failed: usize) -> DataSummary {
    DataSummary {
        input: args.data.display().to_string(),
        split,
        images,
        scored,
        failed,
        unlabelled,
        sources: args.sources.clone(),
        occluded_fraction: args.occlude_center.then_some(OCCLUDED_FRACTION),
    }
}

/// `--lung-masks`, read with image paths relative to `--data-root` (or the data's own folder).
fn lung_masks(args: &EvalArgs, data: &Path) -> anyhow::Result<Option<LungMasks>> {
    let Some(list) = &args.lung_masks else { return Ok(None) };
    let root = args.data_root.clone().unwrap_or_else(|| if data.is_dir() { data.to_owned() } else { data.parent().unwrap_or(Path::new(".")).to_owned() });
    let masks = LungMasks::read(list, &root)?;
    anyhow::ensure!(!masks.is_empty(), "{}: none of the films it names is under {}; pass --data-root, the folder its `image` paths are relative to", list.display(), root.display());
    Ok(Some(masks))
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
fn write_report(model: &Model, summary: ModelSummary, scored: &[Scored], attribution: Option<Attribution>, folder: &Path, data: &dyn Fn(usize, usize) -> DataSummary) -> anyhow::Result<EvalReport> {
    let ok: Vec<(&Scored, &Prediction, Option<&Prediction>)> = scored.iter().filter_map(|s| s.result.as_ref().ok().map(|(p, o)| (s, p, o.as_ref()))).collect();
    let failures: Vec<Failure> = scored
        .iter()
        .filter_map(|s| s.result.as_ref().err().map(|e| Failure { path: s.item.path.display().to_string(), error: e.clone() }))
        .collect();
    anyhow::ensure!(!ok.is_empty(), "{}: every image failed to score; first error: {}", summary.name, failures[0].error);

    let full = metrics(model, &ok.iter().map(|(s, p, _)| (*s, *p)).collect::<Vec<_>>(), summary.threshold)?;
    let occluded = if ok[0].2.is_some() {
        Some(metrics(model, &ok.iter().map(|(s, _, o)| (*s, o.expect("occluded run"))).collect::<Vec<_>>(), summary.threshold)?)
    } else {
        None
    };
    let report = EvalReport {
        model: summary,
        data: data(ok.len(), failures.len()),
        full,
        occluded_center: occluded,
        attribution,
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

/// Keeps the images of the named sources (all when none are named); a name that matches no
/// image is an error, since a typo would otherwise evaluate nothing and say so only as "no images".
fn only_sources(items: Vec<Labelled>, sources: &[String], data: &Path) -> anyhow::Result<Vec<Labelled>> {
    if sources.is_empty() {
        return Ok(items);
    }
    for source in sources {
        if !items.iter().any(|i| &i.source == source) {
            let mut known: Vec<&str> = items.iter().map(|i| i.source.as_str()).collect();
            known.sort_unstable();
            known.dedup();
            anyhow::bail!("{}: no image of source `{source}` (sources there: {})", data.display(), known.join(", "));
        }
    }
    Ok(items.into_iter().filter(|i| sources.contains(&i.source)).collect())
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
                            Scored { item: item.clone(), threshold: session.model().card.threshold, result }
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
    let full = session.predict_fitted(&fitted)?;
    let occluded = if occlude { Some(session.predict_fitted(&occlude_center(fitted))?) } else { None };
    Ok((full, occluded))
}

/// Per film with a lung mask among `items`: the share of `model`'s positive evidence inside the
/// lungs and the share of the input the lungs cover (class activation maps where the model
/// exports its feature map, occlusion otherwise). Films that cannot be read are failures of the
/// scoring pass already and are left out here.
fn lung_evidence(model: &Model, items: &[Labelled], masks: &LungMasks, jobs: Option<usize>) -> anyhow::Result<Vec<(f64, f64)>> {
    let masked: Vec<(&Labelled, &Path)> = items.iter().filter_map(|i| masks.mask_of(&i.path).map(|m| (i, m))).collect();
    if masked.is_empty() {
        eprintln!("{}: none of these images has a lung mask", model.card.name);
    }
    let pool = rayon::ThreadPoolBuilder::new().num_threads(jobs.unwrap_or(0)).build()?;
    let films: Vec<anyhow::Result<Option<(f64, f64)>>> = pool.install(|| {
        masked
            .par_iter()
            .map_init(
                || model.session(),
                |session, (item, mask)| {
                    let Ok(film) = cxr_core::load_image(&item.path) else { return Ok(None) };
                    let heat = session.explain(&film, None)?;
                    let lungs = FittedMask::load(mask, &item.path, (film.width, film.height), &model.card.preprocess)?;
                    Ok(lungs.share_inside(&heat.evidence).map(|share| (share, lungs.area_share())))
                },
            )
            .collect()
    });
    Ok(films.into_iter().collect::<anyhow::Result<Vec<_>>>()?.into_iter().flatten().collect())
}

/// Blacks out the central box of a fitted (model-sized) image; the model sees exactly this
/// (`predict_fitted` does not fit it again).
fn occlude_center(mut img: GreyImage) -> GreyImage {
    let (w, h) = (img.width as usize, img.height as usize);
    let margin = |side: usize| ((side as f64 * (1.0 - OCCLUDED_FRACTION) / 2.0).round() as usize).min(side / 2);
    let (mx, my) = (margin(w), margin(h));
    for y in my..h - my {
        img.pixels[y * w + mx..y * w + w - mx].fill(0.0);
    }
    img
}

/// Metrics of scored images, each decided at the threshold of the model that scored it (one
/// model's, or each fold model's for out-of-fold scores); `reported` is the threshold shown.
fn metrics(model: &Model, rows: &[(&Scored, &Prediction)], reported: f64) -> anyhow::Result<Metrics> {
    let class_set = model.class_set();
    let covid = class_set.index(Class::Covid);
    let scores: Vec<f64> = rows.iter().map(|(_, p)| p.probabilities[covid] as f64).collect();
    let positives: Vec<bool> = rows.iter().map(|(s, _)| s.item.label == Class::Covid).collect();
    let thresholds: Vec<f64> = rows.iter().map(|(s, _)| s.threshold).collect();
    let (auc, auc_note) = match delong(&scores, &positives) {
        Ok(d) => (Some(d), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let truth: Vec<usize> = rows.iter().map(|(s, _)| class_set.index(s.item.label)).collect();
    let predicted: Vec<usize> = rows.iter().map(|(_, p)| p.class_index).collect();
    let by_source: Vec<(&str, f64, bool)> = rows.iter().zip(&scores).map(|((s, _), &score)| (s.item.source.as_str(), score, s.item.label == Class::Covid)).collect();
    let decided: Vec<(&str, f64, bool, f64)> = by_source.iter().zip(&thresholds).map(|(&(s, score, p), &t)| (s, score, p, t)).collect();
    let (within, within_note) = match within_source(&by_source) {
        Ok(w) => (Some(w), None),
        Err(e) => (None, Some(e.to_string())),
    };
    Ok(Metrics {
        images: rows.len(),
        positives: positives.iter().filter(|&&p| p).count(),
        auc,
        auc_note,
        at_threshold: BinaryMetrics::at_thresholds(&scores, &positives, &thresholds, reported)?,
        confusion: ConfusionMatrix::from_indices(class_set.names(), &truth, &predicted)?,
        calibration: Calibration::new(&scores, &positives, 10)?,
        per_source: per_source_at(&decided)?,
        within_source: within,
        within_source_note: within_note,
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
        let within = match &m.within_source {
            Some(w) => format!("{} over {} same-source pairs ({})", w.auc.display(3), w.pairs, w.sources.iter().map(|s| s.source.as_str()).collect::<Vec<_>>().join(", ")),
            None => format!("n/a ({})", m.within_source_note.as_deref().unwrap_or("")),
        };
        let auc = m.auc.map_or_else(|| format!("n/a ({})", m.auc_note.as_deref().unwrap_or("")), |d| d.ci.display(3));
        let se = m.at_threshold.sensitivity.interval.map_or("n/a".into(), |i| i.display(3));
        let sp = m.at_threshold.specificity.interval.map_or("n/a".into(), |i| i.display(3));
        println!("{label}: within-source AUC {within}");
        println!("{:width$}  AUC over all pairs {auc}", "", width = label.len());
        println!("{:width$}  sensitivity {se}, specificity {sp} at P(covid) ≥ {:.3}, ECE {:.3}", "", report.model.threshold, m.calibration.expected_calibration_error, width = label.len());
    };
    println!(
        "{} on {} ({} images, {} COVID, {} failed)",
        report.model.name, report.data.input, report.full.images, report.full.positives, report.data.failed
    );
    line("full images", &report.full);
    if let Some(o) = &report.occluded_center {
        line("centre occluded", o);
    }
    if let Some(a) = &report.attribution {
        println!(
            "evidence inside the lungs: {} of the positive {} evidence on {} masked films (the lungs cover {:.3} of the input)",
            a.share_inside_lungs.display(3),
            a.method,
            a.films,
            a.lung_area_share
        );
    }
    println!("report: {}", html.display());
}
