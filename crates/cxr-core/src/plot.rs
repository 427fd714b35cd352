//! Pictures of the metrics: ROC curve, reliability diagram, confusion-matrix heatmap, score
//! histogram, within-source forest plot and training curves. Each call writes `BASE.png` (for reports and terminals that show images) and
//! `BASE.svg` (for papers), from one drawing so the two never differ.
//!
//! Text is drawn with DejaVu Sans embedded in the binary: the Raspberry Pis and CI machines this
//! runs on often have no fonts installed, and plotters would otherwise fail or draw no text.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::coord::ranged1d::SegmentValue;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::metrics::{Calibration, ConfusionMatrix, Interval, RocCurve, RocPoint, WithinSource};

/// DejaVu Sans 2.37, Bitstream Vera licence (see `assets/DejaVuSans-LICENSE.txt`).
static DEJAVU_SANS: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

const BLUE: RGBColor = RGBColor(31, 119, 180);
const ORANGE: RGBColor = RGBColor(230, 110, 20);
const GREEN: RGBColor = RGBColor(44, 160, 44);
const RED: RGBColor = RGBColor(214, 39, 40);
const GREY: RGBColor = RGBColor(128, 128, 128);
const SERIES_COLOURS: [RGBColor; 4] = [BLUE, ORANGE, GREEN, RED];

const TITLE_SIZE: u32 = 30;
const AXIS_TITLE_SIZE: u32 = 22;
const LABEL_SIZE: u32 = 18;

/// Why a plot could not be written. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("{path}: cannot draw plot: {reason}")]
    Draw { path: PathBuf, reason: String },
    #[error("{path}: cannot write plot: {source} (check that the folder exists and is writable)")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("{path}: cannot encode PNG: {reason}")]
    Encode { path: PathBuf, reason: String },
    #[error("{path}: nothing to plot: {reason}")]
    NoData { path: PathBuf, reason: String },
}

/// The two files one plot call wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlotFiles {
    pub png: PathBuf,
    pub svg: PathBuf,
}

/// One curve on a ROC plot, e.g. the model on full images and on images with the lungs occluded.
#[derive(Debug, Clone, Copy)]
pub struct RocSeries<'a> {
    pub label: &'a str,
    pub curve: &'a RocCurve,
}

/// One version of the images on a within-source plot (full films, or with the lungs occluded).
#[derive(Debug, Clone, Copy)]
pub struct WithinSourceSeries<'a> {
    pub label: &'a str,
    pub within: &'a WithinSource,
}

/// Writes a forest plot of the within-source AUC: one row per source with its AUC and 95%
/// interval, and the pooled figure at the bottom, for each series side by side. Chance (0.5) is
/// drawn as a line, since a model that recognises hospitals, not disease, sits on it.
pub fn within_source_plot(base: &Path, title: &str, series: &[WithinSourceSeries<'_>]) -> Result<PlotFiles, PlotError> {
    let Some(first) = series.first() else {
        return Err(no_data(base, "no within-source AUC to draw"));
    };
    // One row per source, the pooled row, and one row of headroom for the legend.
    let rows = first.within.sources.len() + 2;
    let height = 260 + 70 * rows as u32;
    write_png_and_svg(&WithinSourceFigure { title, series }, base, (1000, height))
}

/// Writes a ROC plot: every series with its AUC (and interval, when known) in the legend, the
/// chance diagonal, and optionally the chosen operating point.
pub fn roc_plot(
    base: &Path,
    title: &str,
    series: &[RocSeries<'_>],
    operating_point: Option<RocPoint>,
) -> Result<PlotFiles, PlotError> {
    if series.is_empty() {
        return Err(no_data(base, "no ROC curves given"));
    }
    write_png_and_svg(&RocFigure { title, series, operating_point }, base, (900, 820))
}

/// Writes a reliability diagram (observed fraction against mean predicted probability per bin)
/// above a bar chart of how many images fall in each bin.
pub fn calibration_plot(base: &Path, title: &str, calibration: &Calibration) -> Result<PlotFiles, PlotError> {
    write_png_and_svg(&CalibrationFigure { title, calibration }, base, (900, 900))
}

/// Writes a confusion-matrix heatmap: colour is the row share (per-class recall on the
/// diagonal), each cell printed with its count and percentage.
pub fn confusion_plot(base: &Path, title: &str, matrix: &ConfusionMatrix) -> Result<PlotFiles, PlotError> {
    if matrix.class_names.is_empty() {
        return Err(no_data(base, "the confusion matrix has no classes"));
    }
    write_png_and_svg(&ConfusionFigure { title, matrix }, base, (900, 820))
}

/// Writes overlaid histograms of the scores of each class with the threshold as a vertical
/// line; `class_names = [negative, positive]`.
pub fn score_histogram(
    base: &Path,
    title: &str,
    scores: &[f64],
    positives: &[bool],
    threshold: f64,
    class_names: [&str; 2],
) -> Result<PlotFiles, PlotError> {
    if scores.len() != positives.len() {
        return Err(no_data(base, &format!("{} scores but {} labels", scores.len(), positives.len())));
    }
    if !scores.iter().any(|s| s.is_finite()) {
        return Err(no_data(base, "no finite scores"));
    }
    write_png_and_svg(&HistogramFigure { title, scores, positives, threshold, class_names }, base, (1000, 700))
}

/// One epoch of a training run, as the training curves show it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochPoint {
    pub epoch: u32,
    pub train_loss: f64,
    pub val_loss: f64,
    pub train_acc: f64,
    pub val_acc: f64,
    pub val_auc: f64,
}

/// Writes training curves: losses on the left, accuracies and validation AUC on the right, with
/// the kept epoch marked, so over- and under-fitting show at a glance.
pub fn training_curves(
    base: &Path,
    title: &str,
    epochs: &[EpochPoint],
    kept_epoch: Option<u32>,
) -> Result<PlotFiles, PlotError> {
    if epochs.is_empty() {
        return Err(no_data(base, "no finished epochs"));
    }
    write_png_and_svg(&CurvesFigure { title, epochs, kept_epoch }, base, (1400, 650))
}

fn no_data(base: &Path, reason: &str) -> PlotError {
    PlotError::NoData { path: base.to_path_buf(), reason: reason.to_string() }
}

/// A picture that can be drawn on any plotters back-end, so PNG and SVG share one drawing.
trait Figure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB>;
}

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn register_font() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        // Every family name plotters may ask for maps to the one embedded face.
        for family in ["sans-serif", "serif", "monospace"] {
            if plotters::style::register_font(family, FontStyle::Normal, DEJAVU_SANS).is_err() {
                panic!("the embedded DejaVu Sans font is not a valid TrueType file");
            }
        }
    });
}

fn with_suffix(base: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(base.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}

fn write_png_and_svg(figure: &impl Figure, base: &Path, (width, height): (u32, u32)) -> Result<PlotFiles, PlotError> {
    register_font();
    let png = with_suffix(base, ".png");
    let svg = with_suffix(base, ".svg");
    let draw_error =
        |path: &Path, e: &dyn std::fmt::Display| PlotError::Draw { path: path.to_path_buf(), reason: e.to_string() };

    let mut pixels = vec![0u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (width, height)).into_drawing_area();
        figure.draw(&root).map_err(|e| draw_error(&png, &e))?;
        root.present().map_err(|e| draw_error(&png, &e))?;
    }
    let mut svg_text = String::new();
    {
        let root = SVGBackend::with_string(&mut svg_text, (width, height)).into_drawing_area();
        figure.draw(&root).map_err(|e| draw_error(&svg, &e))?;
        root.present().map_err(|e| draw_error(&svg, &e))?;
    }
    image::save_buffer_with_format(
        &png,
        &pixels,
        width,
        height,
        image::ExtendedColorType::Rgb8,
        image::ImageFormat::Png,
    )
    .map_err(|e| match e {
        image::ImageError::IoError(source) => PlotError::Write { path: png.clone(), source },
        other => PlotError::Encode { path: png.clone(), reason: other.to_string() },
    })?;
    std::fs::write(&svg, svg_text).map_err(|source| PlotError::Write { path: svg.clone(), source })?;
    Ok(PlotFiles { png, svg })
}

/// The legend box every plot uses; the sample line is 30 px, inside the 45 px legend area.
fn draw_legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> DrawResult<DB> {
    chart
        .configure_series_labels()
        .position(position)
        .margin(15)
        .legend_area_size(45)
        .label_font(("sans-serif", LABEL_SIZE))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.3))
        .draw()
}

fn title_font() -> TextStyle<'static> {
    ("sans-serif", TITLE_SIZE).into_font().into()
}

type UnitSquareChart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Grid, 0.1 ticks and the dashed diagonal shared by the ROC and reliability plots: both live on
/// the unit square, where the diagonal is the reference (chance, or perfect calibration).
fn draw_unit_square<DB: DrawingBackend>(
    chart: &mut UnitSquareChart<'_, DB>,
    x_desc: Option<&str>,
    y_desc: &str,
    diagonal: &str,
) -> DrawResult<DB> {
    let mut mesh = chart.configure_mesh();
    if let Some(x_desc) = x_desc {
        mesh.x_desc(x_desc);
    }
    mesh.y_desc(y_desc)
        .axis_desc_style(("sans-serif", AXIS_TITLE_SIZE))
        .label_style(("sans-serif", LABEL_SIZE))
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.08))
        .x_labels(11)
        .y_labels(11)
        .x_label_formatter(&|v| format!("{v:.1}"))
        .y_label_formatter(&|v| format!("{v:.1}"))
        .draw()?;
    chart
        .draw_series(DashedLineSeries::new([(0.0, 0.0), (1.0, 1.0)], 8, 6, GREY.stroke_width(2)))?
        .label(diagonal)
        .legend(|(x, y)| PathElement::new([(x, y), (x + 30, y)], GREY.stroke_width(2)));
    Ok(())
}

struct RocFigure<'a> {
    title: &'a str,
    series: &'a [RocSeries<'a>],
    operating_point: Option<RocPoint>,
}

impl Figure for RocFigure<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(root)
            .caption(self.title, title_font())
            .margin(20)
            .x_label_area_size(60)
            .y_label_area_size(75)
            .build_cartesian_2d(0.0..1.0, 0.0..1.0)?;
        draw_unit_square(
            &mut chart,
            Some("1 − specificity (false positive rate)"),
            "Sensitivity (true positive rate)",
            "chance (AUC 0.5)",
        )?;
        for (i, s) in self.series.iter().enumerate() {
            let colour = SERIES_COLOURS[i % SERIES_COLOURS.len()];
            let auc_text = match s.curve.auc_ci {
                Some(ci) => ci.display(3),
                None => format!("{:.3}", s.curve.auc),
            };
            let label = format!("{}: AUC {auc_text}; {} pos / {} neg", s.label, s.curve.positives, s.curve.negatives);
            chart
                .draw_series(LineSeries::new(s.curve.points.iter().map(|p| (p.fpr, p.tpr)), colour.stroke_width(3)))?
                .label(label)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 30, y)], colour.stroke_width(3)));
        }
        if let Some(op) = self.operating_point {
            let label =
                format!("threshold {:.3}: sensitivity {:.3}, specificity {:.3}", op.threshold, op.tpr, 1.0 - op.fpr);
            chart
                .draw_series([Circle::new((op.fpr, op.tpr), 8, RED.filled())])?
                .label(label)
                .legend(|(x, y)| Circle::new((x + 15, y), 7, RED.filled()));
        }
        draw_legend(&mut chart, SeriesLabelPosition::LowerRight)?;
        Ok(())
    }
}

struct WithinSourceFigure<'a> {
    title: &'a str,
    series: &'a [WithinSourceSeries<'a>],
}

impl Figure for WithinSourceFigure<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        root.fill(&WHITE)?;
        // Rows from the top: each source of the first series, then the pooled figure.
        let first = self.series[0].within;
        let mut names: Vec<String> =
            first.sources.iter().map(|s| format!("{} ({}+{})", s.source, s.positives, s.negatives)).collect();
        names.push(format!("pooled ({} pairs)", first.pairs));
        let rows = names.len() as f64;
        let mut chart = ChartBuilder::on(root)
            .caption(self.title, title_font())
            .margin(20)
            .x_label_area_size(60)
            .y_label_area_size(330)
            .build_cartesian_2d(0.0..1.0, -0.5..rows + 0.5)?;
        let row_name = |v: &f64| {
            let on_a_row = (v - v.round()).abs() < 1e-9 && (0.0..rows).contains(&v.round());
            if on_a_row { names[(rows - 1.0 - v.round()) as usize].clone() } else { String::new() }
        };
        chart
            .configure_mesh()
            .x_desc("AUC, COVID against non-COVID films of the same source (95% CI)")
            .axis_desc_style(("sans-serif", AXIS_TITLE_SIZE))
            .label_style(("sans-serif", LABEL_SIZE))
            .light_line_style(WHITE.mix(0.0))
            .bold_line_style(BLACK.mix(0.08))
            .x_labels(11)
            .y_labels(names.len() + 2)
            .x_label_formatter(&|v| format!("{v:.1}"))
            .y_label_formatter(&row_name)
            .draw()?;
        chart
            .draw_series(DashedLineSeries::new([(0.5, -0.5), (0.5, rows - 0.5)], 8, 6, GREY.stroke_width(2)))?
            .label("chance (0.5)")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 30, y)], GREY.stroke_width(2)));
        let k = self.series.len() as f64;
        for (i, s) in self.series.iter().enumerate() {
            let colour = SERIES_COLOURS[i % SERIES_COLOURS.len()];
            // Series of one row are spread over 0.5 of the row's height.
            let offset = if k > 1.0 { 0.25 - 0.5 * i as f64 / (k - 1.0) } else { 0.0 };
            let mut points: Vec<(f64, Interval, bool)> = Vec::new();
            for (row, name) in first.sources.iter().enumerate() {
                if let Some(own) = s.within.sources.iter().find(|o| o.source == name.source) {
                    points.push((rows - 1.0 - row as f64 + offset, own.auc, false));
                }
            }
            points.push((offset, s.within.auc, true));
            chart.draw_series(
                points
                    .iter()
                    .map(|&(y, ci, _)| PathElement::new([(ci.lower, y), (ci.upper, y)], colour.stroke_width(3))),
            )?;
            chart
                .draw_series(points.iter().map(|&(y, ci, pooled)| {
                    let size = if pooled { 11 } else { 7 };
                    EmptyElement::at((ci.estimate, y)) + Rectangle::new([(-size, -size), (size, size)], colour.filled())
                }))?
                .label(format!("{}: pooled {}", s.label, s.within.auc.display(3)))
                .legend(move |(x, y)| Rectangle::new([(x + 8, y - 7), (x + 22, y + 7)], colour.filled()));
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
        Ok(())
    }
}

struct CalibrationFigure<'a> {
    title: &'a str,
    calibration: &'a Calibration,
}

impl Figure for CalibrationFigure<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        root.fill(&WHITE)?;
        let c = self.calibration;
        let root = root.margin(15, 0, 0, 0).titled(self.title, title_font())?;
        let (top, bottom) = root.split_vertically(root.dim_in_pixel().1 * 7 / 10);

        let mut chart = ChartBuilder::on(&top)
            .margin(20)
            .x_label_area_size(40)
            .y_label_area_size(75)
            .build_cartesian_2d(0.0..1.0, 0.0..1.0)?;
        draw_unit_square(&mut chart, None, "Observed fraction positive", "perfect calibration")?;
        let observed: Vec<(f64, f64)> =
            c.bins.iter().filter_map(|b| Some((b.mean_predicted?, b.observed_fraction?))).collect();
        let label = format!("model: ECE {:.3}, Brier {:.3}, n = {}", c.expected_calibration_error, c.brier_score, c.n);
        chart
            .draw_series(LineSeries::new(observed.iter().copied(), BLUE.stroke_width(3)))?
            .label(label)
            .legend(|(x, y)| PathElement::new([(x, y), (x + 30, y)], BLUE.stroke_width(3)));
        chart.draw_series(observed.iter().map(|&p| Circle::new(p, 6, BLUE.filled())))?;
        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)?;

        let max_count = c.bins.iter().map(|b| b.count).max().unwrap_or(0).max(1);
        let mut counts = ChartBuilder::on(&bottom)
            .margin(20)
            .margin_top(0)
            .x_label_area_size(60)
            .y_label_area_size(75)
            .build_cartesian_2d(0.0..1.0, 0..count_axis_top(max_count))?;
        counts
            .configure_mesh()
            .x_desc("Predicted probability")
            .y_desc("Images")
            .axis_desc_style(("sans-serif", AXIS_TITLE_SIZE))
            .label_style(("sans-serif", LABEL_SIZE))
            .light_line_style(WHITE.mix(0.0))
            .bold_line_style(BLACK.mix(0.08))
            .x_labels(11)
            .y_labels(4)
            .x_label_formatter(&|v| format!("{v:.1}"))
            .draw()?;
        counts.draw_series(c.bins.iter().filter(|b| b.count > 0).map(|b| {
            let gap = (b.upper - b.lower) * 0.05;
            Rectangle::new([(b.lower + gap, 0), (b.upper - gap, b.count as i32)], BLUE.mix(0.6).filled())
        }))?;
        Ok(())
    }
}

struct ConfusionFigure<'a> {
    title: &'a str,
    matrix: &'a ConfusionMatrix,
}

impl Figure for ConfusionFigure<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        root.fill(&WHITE)?;
        let m = self.matrix;
        let k = m.class_names.len() as i32;
        // Row 0 (the first true class) at the top, as in every textbook.
        let row_of = |truth: usize| k - 1 - truth as i32;
        let names = &m.class_names;
        let mut chart = ChartBuilder::on(root)
            .caption(self.title, title_font())
            .margin(20)
            .x_label_area_size(70)
            .y_label_area_size(140)
            .build_cartesian_2d((0..k - 1).into_segmented(), (0..k - 1).into_segmented())?;
        let x_name = |v: &SegmentValue<i32>| match v {
            SegmentValue::CenterOf(i) if (0..k).contains(i) => names[*i as usize].clone(),
            _ => String::new(),
        };
        let y_name = |v: &SegmentValue<i32>| match v {
            SegmentValue::CenterOf(i) if (0..k).contains(i) => names[(k - 1 - *i) as usize].clone(),
            _ => String::new(),
        };
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("Predicted class (cells: count and % of the true class)")
            .y_desc("True class")
            .axis_desc_style(("sans-serif", AXIS_TITLE_SIZE))
            .label_style(("sans-serif", AXIS_TITLE_SIZE))
            .x_labels(k as usize)
            .y_labels(k as usize)
            .x_label_formatter(&x_name)
            .y_label_formatter(&y_name)
            .draw()?;
        for (truth, row) in m.counts.iter().enumerate() {
            let shares = m.row_normalised[truth].as_deref();
            for (predicted, &count) in row.iter().enumerate() {
                let share = shares.map_or(0.0, |s| s[predicted]);
                let (x, y) = (predicted as i32, row_of(truth));
                chart.draw_series([Rectangle::new(
                    [
                        (SegmentValue::Exact(x), SegmentValue::Exact(y)),
                        (SegmentValue::Exact(x + 1), SegmentValue::Exact(y + 1)),
                    ],
                    blues(share).filled(),
                )])?;
                let ink = if share > 0.55 { &WHITE } else { &BLACK };
                let centre = Pos::new(HPos::Center, VPos::Center);
                let big = TextStyle::from(("sans-serif", 36).into_font()).color(ink).pos(centre);
                let small = TextStyle::from(("sans-serif", 18).into_font()).color(ink).pos(centre);
                let (px, py) = chart.backend_coord(&(SegmentValue::CenterOf(x), SegmentValue::CenterOf(y)));
                root.draw(&Text::new(count.to_string(), (px, py - 14), big))?;
                let detail = match shares {
                    Some(_) => format!("{:.1}%", share * 100.0),
                    None => "no samples".to_string(),
                };
                root.draw(&Text::new(detail, (px, py + 20), small))?;
            }
        }
        Ok(())
    }
}

/// Top of an image-count axis: room above the tallest bar for the legend, whole numbers only.
fn count_axis_top(max_count: usize) -> i32 {
    (max_count as f64 * 1.15).ceil().max(1.0) as i32 + 1
}

/// White → dark blue for a share in [0, 1].
fn blues(share: f64) -> RGBColor {
    let t = share.clamp(0.0, 1.0);
    let lerp = |from: f64, to: f64| (from + (to - from) * t).round() as u8;
    RGBColor(lerp(247.0, 8.0), lerp(251.0, 48.0), lerp(255.0, 107.0))
}

struct HistogramFigure<'a> {
    title: &'a str,
    scores: &'a [f64],
    positives: &'a [bool],
    threshold: f64,
    class_names: [&'a str; 2],
}

impl Figure for HistogramFigure<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        root.fill(&WHITE)?;
        const BINS: usize = 25;
        let finite = || self.scores.iter().copied().filter(|s| s.is_finite());
        let (mut lo, mut hi) = (finite().fold(f64::INFINITY, f64::min), finite().fold(f64::NEG_INFINITY, f64::max));
        // Probabilities get the full [0, 1] axis so plots of different models compare at a glance.
        if lo >= 0.0 && hi <= 1.0 {
            (lo, hi) = (0.0, 1.0);
        }
        if self.threshold.is_finite() {
            (lo, hi) = (lo.min(self.threshold), hi.max(self.threshold));
        }
        if hi - lo < 1e-9 {
            (lo, hi) = (lo - 0.5, hi + 0.5);
        }
        let width = (hi - lo) / BINS as f64;
        let mut counts = [[0usize; BINS]; 2];
        for (&s, &positive) in self.scores.iter().zip(self.positives).filter(|(s, _)| s.is_finite()) {
            let bin = (((s - lo) / width) as usize).min(BINS - 1);
            counts[positive as usize][bin] += 1;
        }
        let max_count = counts.iter().flatten().copied().max().unwrap_or(0).max(1);
        // Extra headroom: the legend sits at the top centre.
        let y_top = count_axis_top(max_count) * 5 / 4;
        let mut chart = ChartBuilder::on(root)
            .caption(self.title, title_font())
            .margin(20)
            .x_label_area_size(60)
            .y_label_area_size(80)
            .build_cartesian_2d(lo..hi, 0..y_top)?;
        chart
            .configure_mesh()
            .x_desc("Score")
            .y_desc("Images")
            .axis_desc_style(("sans-serif", AXIS_TITLE_SIZE))
            .label_style(("sans-serif", LABEL_SIZE))
            .light_line_style(WHITE.mix(0.0))
            .bold_line_style(BLACK.mix(0.08))
            .draw()?;
        for (class, colour) in [(0usize, BLUE), (1, ORANGE)] {
            let n: usize = counts[class].iter().sum();
            let label = format!("{} (n = {n})", self.class_names[class]);
            chart
                .draw_series(counts[class].iter().enumerate().filter(|(_, c)| **c > 0).map(|(b, &c)| {
                    let x0 = lo + b as f64 * width;
                    Rectangle::new([(x0, 0), (x0 + width, c as i32)], colour.mix(0.5).filled())
                }))?
                .label(label)
                .legend(move |(x, y)| Rectangle::new([(x, y - 7), (x + 25, y + 7)], colour.mix(0.5).filled()));
        }
        if self.threshold.is_finite() {
            let t = self.threshold;
            chart
                .draw_series(DashedLineSeries::new([(t, 0), (t, y_top)], 10, 6, RED.stroke_width(3)))?
                .label(format!("threshold {t:.3}"))
                .legend(|(x, y)| PathElement::new([(x, y), (x + 25, y)], RED.stroke_width(3)));
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperMiddle)?;
        Ok(())
    }
}

struct CurvesFigure<'a> {
    title: &'a str,
    epochs: &'a [EpochPoint],
    kept_epoch: Option<u32>,
}

impl Figure for CurvesFigure<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        root.fill(&WHITE)?;
        let root = root.titled(self.title, title_font())?;
        let (left, right) = root.split_horizontally(700);
        let last = self.epochs.iter().map(|e| e.epoch).max().unwrap_or(1).max(2) as f64;
        let x_range = 1.0..last;
        let max_loss =
            self.epochs.iter().flat_map(|e| [e.train_loss, e.val_loss]).filter(|v| v.is_finite()).fold(0.0, f64::max);
        type Pick = fn(&EpochPoint) -> f64;
        type Panel<'a, DB> = (&'a DrawingArea<DB, Shift>, &'a str, f64, Vec<(&'a str, RGBColor, Pick)>);
        let panels: [Panel<DB>; 2] = [
            (
                &left,
                "Loss",
                (max_loss * 1.1).max(1e-3),
                vec![("train loss", BLUE, |e| e.train_loss), ("validation loss", ORANGE, |e| e.val_loss)],
            ),
            (
                &right,
                "Accuracy / AUC",
                1.0,
                vec![
                    ("train accuracy", BLUE, |e| e.train_acc),
                    ("validation accuracy", ORANGE, |e| e.val_acc),
                    ("validation AUC", GREEN, |e| e.val_auc),
                ],
            ),
        ];
        for (area, y_desc, y_top, series) in panels {
            let mut chart = ChartBuilder::on(area)
                .margin(20)
                .x_label_area_size(55)
                .y_label_area_size(70)
                .build_cartesian_2d(x_range.clone(), 0.0..y_top)?;
            chart
                .configure_mesh()
                .x_desc("Epoch")
                .y_desc(y_desc)
                .axis_desc_style(("sans-serif", AXIS_TITLE_SIZE))
                .label_style(("sans-serif", LABEL_SIZE))
                .light_line_style(WHITE.mix(0.0))
                .bold_line_style(BLACK.mix(0.08))
                .x_labels((last as usize).min(20))
                // Epochs are whole numbers: label only the ticks that fall on one.
                .x_label_formatter(&|v| if (v - v.round()).abs() < 1e-6 { format!("{v:.0}") } else { String::new() })
                .draw()?;
            if let Some(kept) = self.kept_epoch {
                let x = kept as f64;
                chart
                    .draw_series(DashedLineSeries::new([(x, 0.0), (x, y_top)], 8, 6, GREY.stroke_width(2)))?
                    .label(format!("kept epoch {kept}"))
                    .legend(|(x, y)| PathElement::new([(x, y), (x + 30, y)], GREY.stroke_width(2)));
            }
            for (label, colour, pick) in series {
                let points: Vec<(f64, f64)> =
                    self.epochs.iter().map(|e| (e.epoch as f64, pick(e))).filter(|(_, v)| v.is_finite()).collect();
                chart
                    .draw_series(LineSeries::new(points.iter().copied(), colour.stroke_width(3)))?
                    .label(label)
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 30, y)], colour.stroke_width(3)));
                chart.draw_series(points.iter().map(|&p| Circle::new(p, 5, colour.filled())))?;
            }
            draw_legend(&mut chart, SeriesLabelPosition::LowerRight)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Calibration, ConfusionMatrix, RocCurve};

    fn assert_valid_pair(files: &PlotFiles, expect_width: u32) {
        let img = image::open(&files.png).unwrap_or_else(|e| panic!("{}: {e}", files.png.display()));
        assert_eq!(img.width(), expect_width);
        // A blank or text-less picture would be nearly one colour; a drawn plot has many.
        let rgb = img.to_rgb8();
        let dark = rgb.pixels().filter(|p| p.0.iter().all(|&c| c < 80)).count();
        assert!(dark > 500, "{}: only {dark} dark pixels, text or axes missing", files.png.display());
        let svg = std::fs::read_to_string(&files.svg).unwrap();
        assert!(svg.contains("<svg"), "{}", files.svg.display());
        assert!(svg.contains("<text"), "{}: no text", files.svg.display());
    }

    fn example_scores() -> (Vec<f64>, Vec<bool>) {
        // 60 samples, scores spread so that positives tend higher, with some overlap.
        let scores: Vec<f64> = (0..60).map(|i| ((i * 37) % 60) as f64 / 59.0).collect();
        let positives: Vec<bool> =
            scores.iter().enumerate().map(|(i, &s)| s + if i % 5 == 0 { -0.4 } else { 0.1 } > 0.5).collect();
        (scores, positives)
    }

    #[test]
    fn within_source_forest_plot_names_every_source_once() {
        let dir = tempfile::tempdir().unwrap();
        let rows: Vec<(&str, f64, bool)> = (0..60)
            .map(|i| (if i % 2 == 0 { "hospital-a" } else { "hospital-b" }, (i * 37 % 23) as f64 / 23.0, i % 3 != 0))
            .collect();
        let within = crate::metrics::within_source(&rows).unwrap();
        let files = within_source_plot(
            &dir.path().join("within-source"),
            "Within-source AUC",
            &[
                WithinSourceSeries { label: "full image", within: &within },
                WithinSourceSeries { label: "centre occluded", within: &within },
            ],
        )
        .unwrap();
        assert_valid_pair(&files, 1000);
        let svg = std::fs::read_to_string(&files.svg).unwrap();
        for name in ["hospital-a (", "hospital-b (", "pooled ("] {
            assert_eq!(svg.matches(name).count(), 1, "{name} labels exactly one row");
        }
        assert!(within_source_plot(&dir.path().join("none"), "none", &[]).is_err());
    }

    #[test]
    fn writes_all_four_plots_as_png_and_svg() {
        let dir = tempfile::tempdir().unwrap();
        let (scores, positives) = example_scores();
        let roc = RocCurve::new(&scores, &positives).unwrap();
        let flipped: Vec<f64> = scores.iter().enumerate().map(|(i, s)| (s + (i % 7) as f64 * 0.13) % 1.0).collect();
        let occluded = RocCurve::new(&flipped, &positives).unwrap();
        let op = roc.threshold_for_sensitivity(0.9).unwrap();
        let files = roc_plot(
            &dir.path().join("roc"),
            "ROC: COVID vs non-COVID",
            &[RocSeries { label: "full image", curve: &roc }, RocSeries { label: "lungs occluded", curve: &occluded }],
            Some(op),
        )
        .unwrap();
        assert_eq!(files.png, dir.path().join("roc.png"));
        assert_valid_pair(&files, 900);

        let calibration = Calibration::new(&scores, &positives, 10).unwrap();
        assert_valid_pair(
            &calibration_plot(&dir.path().join("calibration"), "Calibration", &calibration).unwrap(),
            900,
        );

        let matrix = ConfusionMatrix::from_indices(
            &["covid", "normal", "pneumonia"],
            &[0, 0, 0, 1, 1, 1, 1, 2, 2, 2],
            &[0, 0, 2, 1, 1, 1, 0, 2, 2, 1],
        )
        .unwrap();
        assert_valid_pair(&confusion_plot(&dir.path().join("confusion"), "Confusion matrix", &matrix).unwrap(), 900);

        let hist =
            score_histogram(&dir.path().join("scores"), "Scores", &scores, &positives, 0.5, ["non-covid", "covid"]);
        assert_valid_pair(&hist.unwrap(), 1000);
    }

    #[test]
    fn small_matrices_and_unbounded_scores_draw() {
        let dir = tempfile::tempdir().unwrap();
        let binary =
            ConfusionMatrix::binary(&[0.9, 0.2, 0.7], &[true, false, false], 0.5, &["non-covid", "covid"]).unwrap();
        assert_valid_pair(&confusion_plot(&dir.path().join("binary"), "Binary", &binary).unwrap(), 900);
        let single = ConfusionMatrix::from_indices(&["covid"], &[0, 0], &[0, 0]).unwrap();
        assert_valid_pair(&confusion_plot(&dir.path().join("single"), "One class", &single).unwrap(), 900);
        // Logits, not probabilities, with a threshold outside the data and a NaN that is skipped.
        let logits = [-3.0, -1.5, 0.2, 2.5, f64::NAN];
        let hist = score_histogram(
            &dir.path().join("logits"),
            "Logits",
            &logits,
            &[false, false, true, true, true],
            4.0,
            ["neg", "pos"],
        );
        assert_valid_pair(&hist.unwrap(), 1000);
        let constant = score_histogram(
            &dir.path().join("constant"),
            "Constant",
            &[0.5; 3],
            &[true, false, true],
            f64::NAN,
            ["neg", "pos"],
        );
        assert_valid_pair(&constant.unwrap(), 1000);
    }

    #[test]
    fn unwritable_folder_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("missing-folder").join("roc");
        let (scores, positives) = example_scores();
        let roc = RocCurve::new(&scores, &positives).unwrap();
        let err = roc_plot(&base, "ROC", &[RocSeries { label: "m", curve: &roc }], None).unwrap_err();
        assert!(matches!(err, PlotError::Write { .. }), "{err}");
        assert!(err.to_string().contains("missing-folder"), "{err}");
        assert!(roc_plot(&base, "ROC", &[], None).is_err());
    }
}
