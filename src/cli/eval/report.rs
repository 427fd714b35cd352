//! The pictures and the single-file HTML report of `cxr eval`. The report inlines every SVG, so
//! it can be mailed or opened on an air-gapped machine with nothing beside it.

use super::{EvalReport, Metrics, OCCLUDED_FRACTION};
use anyhow::Context;
use cxr_core::ModelCard;
use cxr_core::metrics::{Interval, Proportion};
use cxr_core::plot::{self, PlotFiles, RocSeries, WithinSourceSeries};
use std::fmt::Write as _;
use std::path::Path;

/// The plots written for a report, by what they show.
pub struct Plots {
    pub within_source: Option<PlotFiles>,
    pub roc: Option<PlotFiles>,
    pub calibration: PlotFiles,
    pub confusion: PlotFiles,
    pub histogram: PlotFiles,
    pub occluded_histogram: Option<PlotFiles>,
}

pub fn plots(dir: &Path, report: &EvalReport) -> anyhow::Result<Plots> {
    let full = &report.full;
    let name = &report.model.name;
    let mut series = Vec::new();
    if let Some(roc) = &full.roc {
        series.push(RocSeries { label: "full image", curve: roc });
    }
    if let Some(roc) = report.occluded_center.as_ref().and_then(|o| o.roc.as_ref()) {
        series.push(RocSeries { label: "centre occluded", curve: roc });
    }
    let roc = if series.is_empty() {
        None
    } else {
        Some(plot::roc_plot(&dir.join("roc"), &format!("ROC: {name}"), &series, None)?)
    };
    let mut within = Vec::new();
    if let Some(w) = &full.within_source {
        within.push(WithinSourceSeries { label: "full image", within: w });
    }
    if let Some(w) = report.occluded_center.as_ref().and_then(|o| o.within_source.as_ref()) {
        within.push(WithinSourceSeries { label: "centre occluded", within: w });
    }
    let within_source = if within.is_empty() {
        None
    } else {
        Some(plot::within_source_plot(&dir.join("within-source"), &format!("Within-source AUC: {name}"), &within)?)
    };
    let calibration =
        plot::calibration_plot(&dir.join("calibration"), &format!("Calibration: {name}"), &full.calibration)?;
    let confusion = plot::confusion_plot(
        &dir.join("confusion"),
        &format!("Confusion at threshold {}: {name}", report.model.threshold),
        &full.confusion,
    )?;
    let (scores, positives) = score_columns(dir, "p_covid")?;
    let histogram = plot::score_histogram(
        &dir.join("histogram"),
        &format!("P(covid): {name}"),
        &scores,
        &positives,
        report.model.threshold,
        ["non-covid", "covid"],
    )?;
    let occluded_histogram = match &report.occluded_center {
        Some(_) => {
            let (scores, positives) = score_columns(dir, "p_covid_occluded_center")?;
            Some(plot::score_histogram(
                &dir.join("histogram-occluded"),
                &format!("P(covid), centre occluded: {name}"),
                &scores,
                &positives,
                report.model.threshold,
                ["non-covid", "covid"],
            )?)
        }
        None => None,
    };
    Ok(Plots { within_source, roc, calibration, confusion, histogram, occluded_histogram })
}

/// Scores and labels back from predictions.csv, so the histogram shows exactly what was written.
fn score_columns(dir: &Path, column: &str) -> anyhow::Result<(Vec<f64>, Vec<bool>)> {
    let path = dir.join("predictions.csv");
    let mut reader = csv::Reader::from_path(&path).with_context(|| format!("{}: cannot read", path.display()))?;
    let headers = reader.headers()?.clone();
    let col =
        headers.iter().position(|h| h == column).with_context(|| format!("{}: no column {column}", path.display()))?;
    let label = headers.iter().position(|h| h == "label").context("predictions.csv has a label column")?;
    let (mut scores, mut positives) = (Vec::new(), Vec::new());
    for record in reader.records() {
        let record = record?;
        if let Ok(score) = record[col].parse::<f64>() {
            scores.push(score);
            positives.push(&record[label] == "covid");
        }
    }
    Ok((scores, positives))
}

pub fn html(report: &EvalReport, card: &ModelCard, plots: &Plots) -> anyhow::Result<String> {
    let mut h = String::new();
    let m = &report.model;
    let d = &report.data;
    write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>cxr eval: {name}</title>\n<style>{STYLE}</style></head><body>\n\
         <h1>Evaluation of {name}</h1>\n<p class=\"notice\">Research use only, not for diagnosis.</p>\n",
        name = esc(&m.name)
    )?;
    write!(
        h,
        "<h2>Summary</h2>\n<table class=\"kv\">\
         <tr><th>Data</th><td>{input}{split}: {images} images ({scored} scored, {failed} failed{unlabelled})</td></tr>\
         <tr><th>COVID-positive</th><td>{pos} of {n}</td></tr>",
        input = esc(&d.input),
        split = d.split.as_ref().map_or(String::new(), |s| format!(", split <b>{}</b>", esc(s))),
        images = d.images,
        scored = d.scored,
        failed = d.failed,
        unlabelled = if d.unlabelled > 0 { format!(", {} unlabelled skipped", d.unlabelled) } else { String::new() },
        pos = report.full.positives,
        n = report.full.images,
    )?;
    metric_rows(&mut h, "Full images", &report.full, m.threshold)?;
    if let Some(o) = &report.occluded_center {
        metric_rows(&mut h, &format!("Centre {:.0}% occluded", OCCLUDED_FRACTION * 100.0), o, m.threshold)?;
    }
    h += "</table>\n";

    if let Some(o) = &report.occluded_center {
        let mut drop = match (report.full.auc, o.auc) {
            (Some(a), Some(b)) => format!("AUC {:.3} → {:.3} with the lungs hidden.", a.auc, b.auc),
            _ => String::new(),
        };
        if let (Some(a), Some(b)) = (&report.full.within_source, &o.within_source) {
            drop += &format!(" Within source: {:.3} → {:.3}.", a.auc.estimate, b.auc.estimate);
        }
        write!(
            h,
            "<h2>Shortcut check (Maguolo &amp; Nanni 2021)</h2>\n<p>{drop} The central {:.0}% × {:.0}% of every image was blacked out. \
             A model that reads the lungs should fall towards chance (0.5); an AUC that stays high means the model \
             uses what is outside the lungs — borders, text, devices, the hospital a picture came from.</p>\n",
            OCCLUDED_FRACTION * 100.0,
            OCCLUDED_FRACTION * 100.0
        )?;
    }

    if let Some(a) = &report.attribution {
        write!(
            h,
            "<h2>Evidence inside the lungs</h2>\n<p>On {} films with a lung mask drawn by people, {} of the positive {} evidence \
             (what raised P(covid)) lies inside the lungs, which cover {:.3} of the input: a heatmap spread evenly over the film \
             would score that. A model that reads the disease puts most of its evidence in the lungs.</p>\n",
            a.films,
            interval(&a.share_inside_lungs),
            esc(&a.method),
            a.lung_area_share
        )?;
    }

    h += "<h2>Plots</h2>\n<div class=\"plots\">";
    for files in [
        plots.within_source.as_ref(),
        plots.roc.as_ref(),
        Some(&plots.calibration),
        Some(&plots.confusion),
        Some(&plots.histogram),
        plots.occluded_histogram.as_ref(),
    ]
    .into_iter()
    .flatten()
    {
        let svg = std::fs::read_to_string(&files.svg)
            .with_context(|| format!("{}: cannot read plot", files.svg.display()))?;
        write!(h, "<figure>{}</figure>", strip_xml_prolog(&svg))?;
    }
    h += "</div>\n";

    h += "<h2>Confusion matrix</h2>\n";
    confusion_table(&mut h, &report.full)?;

    h += "<h2>Within source</h2>\n<p>COVID against non-COVID films <em>of the same source</em>: the probability that a COVID film scores above a non-COVID film of its own source, pooled over the sources that have at least two films of each class (weighted by their pairs; 95% CI from the per-source DeLong variances). A model that recognises the hospital rather than the disease scores high over all pairs and near 0.5 here.</p>\n";
    match &report.full.within_source {
        Some(w) => {
            h += "<table><tr><th>source</th><th>COVID</th><th>non-COVID</th><th>weight</th><th>AUC (95% CI)</th></tr>";
            for s in &w.sources {
                write!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.3}</td><td>{}</td></tr>",
                    esc(&s.source),
                    s.positives,
                    s.negatives,
                    s.weight,
                    interval(&s.auc)
                )?;
            }
            writeln!(
                h,
                "<tr><th>pooled</th><th colspan=\"3\">{} pairs</th><th>{}</th></tr></table>",
                w.pairs,
                interval(&w.auc)
            )?;
            for s in &w.left_out {
                writeln!(
                    h,
                    "<p>Left out: {} ({} COVID, {} non-COVID): {}</p>",
                    esc(&s.source),
                    s.positives,
                    s.negatives,
                    esc(&s.reason)
                )?;
            }
        }
        None => writeln!(h, "<p>n/a: {}</p>", esc(report.full.within_source_note.as_deref().unwrap_or("")))?,
    }

    h += "<h2>Per source</h2>\n<p>Sources differ in hospital, patient age and device; a pooled AUC that collapses within sources means the model recognises the source, not the disease (DeGrave et al. 2021).</p>\n";
    h += "<table><tr><th>source</th><th>images</th><th>COVID</th><th>AUC (95% CI)</th><th>sensitivity</th><th>specificity</th></tr>";
    for s in &report.full.per_source {
        write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&s.source),
            s.n,
            s.positives,
            s.auc.map_or("–".into(), |i| i.display(3)),
            proportion(&s.sensitivity),
            proportion(&s.specificity)
        )?;
    }
    h += "</table>\n";

    model_card(&mut h, card)?;
    if !report.failures.is_empty() {
        write!(h, "<h2>Failed images ({})</h2>\n<ul>", report.failures.len())?;
        for f in report.failures.iter().take(50) {
            write!(h, "<li>{}</li>", esc(&f.error))?;
        }
        h += "</ul>\n";
    }
    write!(
        h,
        "<footer>Written by cxr {}. Research use only, not for diagnosis.</footer>\n</body></html>\n",
        env!("CARGO_PKG_VERSION")
    )?;
    Ok(h)
}

fn metric_rows(h: &mut String, label: &str, m: &Metrics, threshold: f64) -> std::fmt::Result {
    let auc = m.auc.map_or_else(|| format!("n/a: {}", esc(m.auc_note.as_deref().unwrap_or(""))), |d| interval(&d.ci));
    let within = m.within_source.as_ref().map_or_else(
        || format!("n/a: {}", esc(m.within_source_note.as_deref().unwrap_or(""))),
        |w| format!("{} ({} pairs)", interval(&w.auc), w.pairs),
    );
    let t = &m.at_threshold;
    write!(
        h,
        "<tr class=\"group\"><th colspan=\"2\">{label}</th></tr>\
         <tr><th>Within-source AUC</th><td>{within}</td></tr>\
         <tr><th>AUC over all pairs (DeLong)</th><td>{auc}</td></tr>\
         <tr><th>Sensitivity at P(covid) ≥ {threshold}</th><td>{} ({}/{})</td></tr>\
         <tr><th>Specificity at P(covid) ≥ {threshold}</th><td>{} ({}/{})</td></tr>\
         <tr><th>Accuracy</th><td>{}</td></tr>\
         <tr><th>Calibration</th><td>ECE {:.3}, Brier {:.3}</td></tr>",
        proportion(&t.sensitivity),
        t.sensitivity.k,
        t.sensitivity.n,
        proportion(&t.specificity),
        t.specificity.k,
        t.specificity.n,
        proportion(&t.accuracy),
        m.calibration.expected_calibration_error,
        m.calibration.brier_score
    )
}

fn confusion_table(h: &mut String, m: &Metrics) -> std::fmt::Result {
    let c = &m.confusion;
    h.push_str("<table><tr><th>truth \\ predicted</th>");
    for name in &c.class_names {
        write!(h, "<th>{}</th>", esc(name))?;
    }
    h.push_str("</tr>");
    for (name, row) in c.class_names.iter().zip(&c.counts) {
        write!(h, "<tr><th>{}</th>", esc(name))?;
        for count in row {
            write!(h, "<td>{count}</td>")?;
        }
        h.push_str("</tr>");
    }
    h.push_str("</table>\n");
    Ok(())
}

fn model_card(h: &mut String, card: &ModelCard) -> std::fmt::Result {
    let p = &card.preprocess;
    write!(
        h,
        "<h2>Model card</h2>\n<table class=\"kv\">\
         <tr><th>Name</th><td>{}</td></tr><tr><th>Architecture</th><td>{}</td></tr><tr><th>Precision</th><td>{}</td></tr>\
         <tr><th>sha256</th><td><code>{}</code></td></tr><tr><th>Parameters</th><td>{}</td></tr>\
         <tr><th>Classes</th><td>{}</td></tr><tr><th>Input</th><td>{}×{}×{}, {:?}, {:?}</td></tr>\
         <tr><th>Threshold</th><td>{} {}</td></tr>",
        esc(&card.name),
        esc(&card.architecture),
        esc(&card.precision),
        esc(&card.sha256),
        card.parameters.map_or("–".into(), |n| n.to_string()),
        card.class_names().join(", "),
        p.channels,
        p.size,
        p.size,
        p.resize,
        p.normalize,
        card.threshold,
        esc(&card.threshold_rule)
    )?;
    if let Some(t) = &card.training {
        write!(
            h,
            "<tr><th>Training</th><td>{} train / {} val images, {} epochs, split seed {}, train seed {}{}</td></tr>",
            t.train_images,
            t.val_images,
            t.epochs,
            t.split_seed,
            t.train_seed,
            if t.holdout_sources.is_empty() {
                String::new()
            } else {
                format!(", held-out sources: {}", esc(&t.holdout_sources.join(", ")))
            }
        )?;
    }
    for e in &card.evaluations {
        let within = e.within_source.as_ref().map_or(String::new(), |w| {
            format!("within-source AUC {:.3} ({:.3}–{:.3}), ", w.auc, w.auc_ci95[0], w.auc_ci95[1])
        });
        write!(
            h,
            "<tr><th>Card: {}</th><td>{} images, {within}AUC {:.3} ({:.3}–{:.3})</td></tr>",
            esc(&e.name),
            e.images,
            e.auc,
            e.auc_ci95[0],
            e.auc_ci95[1]
        )?;
    }
    for note in &card.notes {
        write!(h, "<tr><th>Note</th><td>{}</td></tr>", esc(note))?;
    }
    h.push_str("</table>\n");
    Ok(())
}

fn interval(i: &Interval) -> String {
    i.display(3)
}

fn proportion(p: &Proportion) -> String {
    p.interval.map_or("–".into(), |i| interval(&i))
}

fn strip_xml_prolog(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(at) => &svg[at..],
        None => svg,
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}\
h1{margin-bottom:0}.notice{color:#a00;font-weight:bold}table{border-collapse:collapse;margin:1em 0}\
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}table.kv th{background:#f4f4f4}\
tr.group th{background:#dde;}.plots{display:flex;flex-wrap:wrap;gap:1em}figure{margin:0;width:520px}\
figure svg{width:100%;height:auto}footer{margin-top:2em;color:#666;font-size:90%}";
