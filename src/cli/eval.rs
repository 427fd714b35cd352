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
use anyhow::Context;
use clap::Args;
use cxr_core::lung_mask::LungMasks;
use cxr_eval::report::family_name;
use cxr_eval::scoring::ScoreOptions;
use cxr_eval::{
    Comparison, DataSummary, EvalReport, Labelled, Metrics, ModelSummary, OCCLUDED_FRACTION, Scored, labelled_images,
    only_sources, score_all,
};
use cxr_infer::Model;
use indicatif::{ProgressBar, ProgressStyle};
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
    /// Several sets of fold models, one set after the other, are each reported, and every set
    /// after the first is compared with it on the same films (paired AUC difference).
    #[arg(long)]
    pub out_of_fold: bool,
    /// Also score every film with uniform noise of ± LEVELS grey levels (of 255) added to the
    /// model-sized image, and report how far P(covid) moved (mean and largest |ΔP|): how fragile
    /// a model is to changes no reader would see, the yardstick for what quantization moves.
    #[arg(long, value_name = "LEVELS", value_parser = noise_levels)]
    pub noise: Option<f32>,
    /// Also report the models as one ensemble: each film's P(covid) the mean of theirs, decided at
    /// the mean of their thresholds, compared with the first model on the same films. With
    /// `--out-of-fold`, each set's fold-k model joins the others' on fold k's films.
    #[arg(long)]
    pub ensemble: bool,
}

/// `--noise`: a positive number of grey levels, at most 255.
fn noise_levels(text: &str) -> Result<f32, String> {
    match text.parse::<f32>() {
        Ok(v) if v > 0.0 && v <= 255.0 => Ok(v),
        _ => Err(format!("`{text}` is not a number of grey levels in (0, 255], e.g. 0.5 or 2")),
    }
}

/// Exit code 1 when any image failed to score (the metrics use the others).
pub fn run(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let models: Vec<Model> =
        args.models.iter().map(|m| ModelArg { model: m.clone() }.load()).collect::<anyhow::Result<_>>()?;
    anyhow::ensure!(
        args.record.is_none() || !args.data.is_dir(),
        "--record needs a manifest (so CI can re-run the evaluation); {} is a folder",
        args.data.display()
    );
    anyhow::ensure!(
        !args.ensemble || args.record.is_none(),
        "--record writes into each model's card; an ensemble has no card of its own"
    );
    let reports = if args.out_of_fold { out_of_fold(&args, &models)? } else { per_model(&args, &models)? };

    if let Some(name) = &args.record {
        for (model, (report, _)) in models.iter().zip(&reports) {
            let card = record::record(model, report, name, &args.data, &args.sources)?;
            eprintln!("recorded `{name}` in {}", card.display());
        }
    }

    if args.json {
        let reports: Vec<&EvalReport> = reports.iter().map(|(r, _)| r).collect();
        outln!(
            "{}",
            if let [one] = reports[..] {
                serde_json::to_string_pretty(one)?
            } else {
                serde_json::to_string_pretty(&reports)?
            }
        );
    } else {
        for (report, html) in &reports {
            print_summary(report, html);
        }
        outln!("{}", cxr_core::card::RESEARCH_USE_ONLY);
    }
    Ok(if reports.iter().any(|(r, _)| r.data.failed > 0) { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// Every model on the same images: one report (and report folder) per model.
fn per_model(args: &EvalArgs, models: &[Model]) -> anyhow::Result<Vec<(EvalReport, PathBuf)>> {
    let set = labelled_images(&args.data, args.split.as_deref(), args.data_root.as_deref())?;
    if set.unlabelled > 0 {
        eprintln!("skipped {} images under {} whose folders name no class", set.unlabelled, args.data.display());
    }
    let items = only_sources(set.items, &args.sources, &args.data)?;
    anyhow::ensure!(
        !items.is_empty(),
        "{}: no labelled images found{}",
        args.data.display(),
        set.split.as_deref().map_or(String::new(), |s| format!(" in split {s}"))
    );
    let names = models.iter().map(|m| m.card.name.clone()).collect();
    let folders = create_report_folders(args, names, "--model")?;
    let masks = lung_masks(args, &args.data)?;
    let per_model_scores = score_with_progress(models, &items, args, masks.as_ref())?;
    let mut reports = Vec::new();
    for (k, ((model, scored), folder)) in models.iter().zip(&per_model_scores).zip(&folders).enumerate() {
        let mut report = EvalReport::assemble(
            model,
            ModelSummary::of(model),
            scored,
            data_summary(args, set.split.clone(), items.len(), set.unlabelled),
        )?;
        if k > 0 {
            report.versus_first = Comparison::of(scored, &per_model_scores[0], &models[0].card.name);
        }
        reports.push((write_report(model, report, scored, folder)?, folder.join("report.html")));
    }
    if args.ensemble {
        let summaries: Vec<ModelSummary> = models.iter().map(ModelSummary::of).collect();
        let data = data_summary(args, set.split.clone(), items.len(), set.unlabelled);
        reports.push(ensemble_report(&models[0], &summaries, &per_model_scores, data, &folders[models.len()])?);
    }
    Ok(reports)
}

/// `--ensemble`'s report folder, beside the members' own.
const ENSEMBLE_FOLDER: &str = "ensemble";

/// The members' scores averaged per film, reported as one more model and compared with the first
/// member, paired. `first` stands in for the ensemble where a report needs a model (its class set,
/// its heatmap method's name, its card in the HTML page).
fn ensemble_report(
    first: &Model,
    summaries: &[ModelSummary],
    scored: &[Vec<Scored>],
    data: DataSummary,
    folder: &Path,
) -> anyhow::Result<(EvalReport, PathBuf)> {
    let members: Vec<&[Scored]> = scored.iter().map(Vec::as_slice).collect();
    let averaged = cxr_eval::ensemble::ensemble(&members);
    let mut report = EvalReport::assemble(first, cxr_eval::ensemble::summary(summaries)?, &averaged, data)?;
    report.versus_first = Comparison::of(&averaged, &scored[0], &summaries[0].name);
    Ok((write_report(first, report, &averaged, folder)?, folder.join("report.html")))
}

/// Cross-fitted models, the k-th scored on `fold-k.csv` of the `--data` folder: one report of the
/// pooled out-of-fold scores, so that every film of the cross-fitted source is scored once, by the
/// one model that did not train on it. Several sets of fold models, one after the other, are
/// scored on the same films (one decode each) and each set after the first is compared with the
/// first, paired: the way to tell whether a lever changed the out-of-fold AUC or the seed did.
fn out_of_fold(args: &EvalArgs, models: &[Model]) -> anyhow::Result<Vec<(EvalReport, PathBuf)>> {
    anyhow::ensure!(
        args.data.is_dir(),
        "--out-of-fold needs --data to be a folder from `cxr data folds`; {} is not a folder",
        args.data.display()
    );
    anyhow::ensure!(
        args.record.is_none(),
        "--record writes into one model's card; out-of-fold scores come from {} models",
        models.len()
    );
    let fold = |k: usize| args.data.join(format!("fold-{k}.csv"));
    let folds = (0..).take_while(|&k| fold(k).is_file()).count();
    anyhow::ensure!(
        folds >= 2 && models.len().is_multiple_of(folds),
        "--out-of-fold needs one --model per fold of {} ({folds} fold manifests), in fold order, or several such sets one after the other; {} given",
        args.data.display(),
        models.len()
    );
    let sets: Vec<&[Model]> = models.chunks(folds).collect();
    let folders =
        create_report_folders(args, sets.iter().map(|set| family_name(set)).collect(), "sets of fold models")?;
    // The fold manifests share a folder, so the masks resolve the same way for every fold.
    let masks = lung_masks(args, &fold(0))?;
    let mut scored: Vec<Vec<Scored>> = vec![Vec::new(); sets.len()];
    let (mut images, mut split) = (0, None);
    for k in 0..folds {
        let manifest = fold(k);
        let set = labelled_images(&manifest, args.split.as_deref(), args.data_root.as_deref())?;
        let items = only_sources(set.items, &args.sources, &manifest)?;
        anyhow::ensure!(
            !items.is_empty(),
            "{}: no labelled images found in split {}",
            manifest.display(),
            set.split.as_deref().unwrap_or("test")
        );
        images += items.len();
        split = set.split;
        let fold_models: Vec<Model> = sets.iter().map(|set| set[k].clone()).collect();
        for (pooled, fold_scores) in
            scored.iter_mut().zip(score_with_progress(&fold_models, &items, args, masks.as_ref())?)
        {
            pooled.extend(fold_scores);
        }
    }
    let mut reports: Vec<(EvalReport, PathBuf)> = Vec::new();
    for ((set, set_scores), folder) in sets.iter().zip(&scored).zip(&folders) {
        let summary = ModelSummary::out_of_fold(set)?;
        let mut report =
            EvalReport::assemble(&set[0], summary, set_scores, data_summary(args, split.clone(), images, 0))?;
        if let Some((first, _)) = reports.first() {
            report.versus_first = Comparison::of(set_scores, &scored[0], &first.model.name);
        }
        reports.push((write_report(&set[0], report, set_scores, folder)?, folder.join("report.html")));
    }
    if args.ensemble {
        let summaries: Vec<ModelSummary> =
            reports.iter().take(sets.len()).map(|(report, _)| report.model.clone()).collect();
        let data = data_summary(args, split, images, 0);
        reports.push(ensemble_report(&sets[0][0], &summaries, &scored, data, &folders[sets.len()])?);
    }
    Ok(reports)
}

/// `score_all` with a progress bar (drawn only on a terminal).
fn score_with_progress(
    models: &[Model],
    items: &[Labelled],
    args: &EvalArgs,
    masks: Option<&LungMasks>,
) -> anyhow::Result<Vec<Vec<Scored>>> {
    let progress = ProgressBar::new(items.len() as u64);
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} images  {per_sec}  eta {eta}").expect("valid template"),
    );
    let options =
        ScoreOptions { occlude_center: args.occlude_center, lung_masks: masks, jobs: args.jobs, noise: args.noise };
    let scored = score_all(models, items, options, &|| progress.inc(1))?;
    progress.finish_and_clear();
    Ok(scored)
}

/// What was evaluated; the counts of scored and failed films are filled in by the report.
fn data_summary(args: &EvalArgs, split: Option<String>, images: usize, unlabelled: usize) -> DataSummary {
    DataSummary {
        input: args.data.display().to_string(),
        split,
        images,
        scored: 0,
        failed: 0,
        unlabelled,
        sources: args.sources.clone(),
        occluded_fraction: args.occlude_center.then_some(OCCLUDED_FRACTION),
        noise_grey_levels: args.noise,
    }
}

/// `--lung-masks`, read with image paths relative to `--data-root` (or the data's own folder).
fn lung_masks(args: &EvalArgs, data: &Path) -> anyhow::Result<Option<LungMasks>> {
    let Some(list) = &args.lung_masks else { return Ok(None) };
    let root = args.data_root.clone().unwrap_or_else(|| {
        if data.is_dir() { data.to_owned() } else { data.parent().unwrap_or(Path::new(".")).to_owned() }
    });
    let masks = LungMasks::read(list, &root)?;
    anyhow::ensure!(
        !masks.is_empty(),
        "{}: none of the films it names is under {}; pass --data-root, the folder its `image` paths are relative to",
        list.display(),
        root.display()
    );
    Ok(Some(masks))
}

/// The report folder itself for one model; for several, a sub-folder per model named after it
/// (with its position appended when two models share a name).
/// The report folders of the models `names` and, with `--ensemble`, of their ensemble, created.
/// `members` names what an ensemble averages, for the message when there are too few.
fn create_report_folders(args: &EvalArgs, mut names: Vec<String>, members: &str) -> anyhow::Result<Vec<PathBuf>> {
    anyhow::ensure!(!args.ensemble || names.len() >= 2, "--ensemble needs two {members} or more");
    if args.ensemble {
        names.push(ENSEMBLE_FOLDER.to_owned());
    }
    let folders = report_folders(&args.report, &names);
    for folder in &folders {
        std::fs::create_dir_all(folder)
            .with_context(|| format!("{}: cannot create the report folder", folder.display()))?;
    }
    Ok(folders)
}

fn report_folders(report: &Path, names: &[String]) -> Vec<PathBuf> {
    if let [_] = names {
        return vec![report.to_owned()];
    }
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            if names.iter().filter(|n| *n == name).count() > 1 {
                report.join(format!("{name}-{}", i + 1))
            } else {
                report.join(name)
            }
        })
        .collect()
}

/// Writes metrics.json, predictions.csv, the plots and report.html of `report` into `folder`.
fn write_report(model: &Model, report: EvalReport, scored: &[Scored], folder: &Path) -> anyhow::Result<EvalReport> {
    let metrics_path = folder.join("metrics.json");
    std::fs::write(&metrics_path, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("{}: cannot write", metrics_path.display()))?;
    write_predictions(&folder.join("predictions.csv"), model, scored)?;
    let plots = report::plots(folder, &report)?;
    let html_path = folder.join("report.html");
    std::fs::write(&html_path, report::html(&report, &model.card, &plots)?)
        .with_context(|| format!("{}: cannot write", html_path.display()))?;
    Ok(report)
}

fn write_predictions(path: &Path, model: &Model, scored: &[Scored]) -> anyhow::Result<()> {
    let names = model.class_set().names();
    let mut w = csv::Writer::from_path(path).with_context(|| format!("{}: cannot write", path.display()))?;
    w.write_record(["path", "source", "label", "p_covid", "class", "p_covid_occluded_center", "error"])?;
    for s in scored {
        let (p, class, occluded, error) = match &s.result {
            Ok((p, o)) => (
                format!("{:.6}", p.p_covid()),
                names[p.class_index].to_owned(),
                o.as_ref().map_or(String::new(), |o| format!("{:.6}", o.p_covid())),
                String::new(),
            ),
            Err(e) => (String::new(), String::new(), String::new(), e.clone()),
        };
        w.write_record([
            s.item.path.display().to_string(),
            s.item.source.clone(),
            s.item.label.to_string(),
            p,
            class,
            occluded,
            error,
        ])?;
    }
    w.flush()?;
    Ok(())
}

fn print_summary(report: &EvalReport, html: &Path) {
    let line = |label: &str, m: &Metrics| {
        let within = match &m.within_source {
            Some(w) => format!(
                "{} over {} same-source pairs ({})",
                w.auc.display(3),
                w.pairs,
                w.sources.iter().map(|s| s.source.as_str()).collect::<Vec<_>>().join(", ")
            ),
            None => format!("n/a ({})", m.within_source_note.as_deref().unwrap_or("")),
        };
        let auc = m.auc.map_or_else(|| format!("n/a ({})", m.auc_note.as_deref().unwrap_or("")), |d| d.ci.display(3));
        let se = m.at_threshold.sensitivity.interval.map_or("n/a".into(), |i| i.display(3));
        let sp = m.at_threshold.specificity.interval.map_or("n/a".into(), |i| i.display(3));
        outln!("{label}: within-source AUC {within}");
        outln!("{:width$}  AUC over all pairs {auc}", "", width = label.len());
        outln!(
            "{:width$}  sensitivity {se}, specificity {sp} at P(covid) ≥ {:.3}, ECE {:.3}",
            "",
            report.model.threshold,
            m.calibration.expected_calibration_error,
            width = label.len()
        );
    };
    outln!(
        "{} on {} ({} images, {} COVID, {} failed)",
        report.model.name,
        report.data.input,
        report.full.images,
        report.full.positives,
        report.data.failed
    );
    line("full images", &report.full);
    if let Some(o) = &report.occluded_center {
        line("centre occluded", o);
    }
    if let Some(a) = &report.attribution {
        outln!(
            "evidence inside the lungs: {} of the positive {} evidence on {} masked films (the lungs cover {:.3} of the input)",
            a.share_inside_lungs.display(3),
            a.method,
            a.films,
            a.lung_area_share
        );
    }
    if let Some(n) = &report.noise {
        outln!(
            "noise of ±{} grey levels moved P(covid) by {:.4} on average, at most {:.3} ({} films)",
            n.grey_levels,
            n.shift.mean,
            n.shift.largest,
            n.shift.films
        );
    }
    if let Some(c) = &report.versus_first {
        let difference = |p: &Option<cxr_core::metrics::PairedAuc>| {
            p.map_or("n/a".into(), |p| {
                format!(
                    "{:+.4} (95% CI {:+.4} to {:+.4})",
                    p.difference.estimate, p.difference.lower, p.difference.upper
                )
            })
        };
        outln!(
            "against {} on the same {} films: AUC {} (paired DeLong){}; P(covid) moved by {:.4} on average, at most {:.3}",
            c.baseline,
            c.films,
            difference(&c.auc),
            c.occluded_center_auc
                .map_or(String::new(), |_| format!(", centre occluded {}", difference(&c.occluded_center_auc))),
            c.p_covid_shift.mean,
            c.p_covid_shift.largest
        );
    }
    outln!("report: {}", html.display());
}
