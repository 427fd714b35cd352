//! `cxr bench`: what a model costs on this machine — load time, first and steady single-image
//! latency, throughput on all cores, peak memory and file size.
//!
//! Each model is measured in its own child process when several are benchmarked, so peak RSS
//! (the kernel's high-water mark, `VmHWM`) belongs to one model only.
//!
//! For latency regressions in a user's CI, `--save FILE` keeps the results and `--baseline FILE`
//! compares against them, exiting 1 when a model got slower than `--max-slowdown`. A shared CI
//! machine runs at different speeds from one job to the next, so absolute times cannot be
//! compared: every single-image run of the model is interleaved with a run of a fixed reference
//! network (a 512 × 512 convolution, `TinyCnn`), and what is compared is the ratio of their
//! medians, which a slower or busier machine changes in both terms alike.

use super::models::catalog;
use anyhow::Context;
use clap::Args;
use cxr_core::GreyImage;
use cxr_infer::{Batch, IntraOpThreads, Model, ModelSource};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Models to measure (path, name or `default`); repeat for several. Default: the embedded
    /// model and every shipped one.
    #[arg(long, short = 'm')]
    pub model: Vec<String>,
    /// Single-image runs for the latency percentiles.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub runs: u32,
    /// Image to feed (default: a synthetic 1024×1024 gradient; CNN latency does not depend on pixel values).
    #[arg(long)]
    pub image: Option<PathBuf>,
    /// Worker threads for the throughput figure (default: all cores).
    #[arg(long, short = 'j')]
    pub jobs: Option<usize>,
    /// Threads each run of the model splits its matrix products over (0: one per core); the
    /// reference network always runs on one. Latencies are then one image on N threads.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub threads_per_image: usize,
    /// Plan batch: `1` (what `cxr score` uses), another size, or `symbolic`. Latencies are per
    /// run of one batch; throughput is per image.
    #[arg(long, default_value = "1", value_parser = parse_batch)]
    pub batch: Batch,
    #[arg(long)]
    pub json: bool,
    /// Write the results (JSON) to FILE, as a baseline for a later `--baseline FILE`.
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
    /// Compare with results saved by `--save`: exit 1 when a model's latency relative to the
    /// reference network grew by more than --max-slowdown.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Largest tolerated slowdown against --baseline, in percent.
    #[arg(long, value_name = "PERCENT", default_value_t = 10.0, requires = "baseline")]
    pub max_slowdown: f64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct BenchResult {
    pub model: String,
    pub precision: String,
    /// Which kernels run its products: `f32`, or `int8` for tract's integer ones. An int8 file runs
    /// as f32 products of its int8 numbers unless `CXR_INT8_KERNELS=integer` (`cxr_infer::int8_float`).
    #[serde(default)]
    pub kernels: String,
    pub sha256: String,
    pub file_size_bytes: u64,
    /// Read, verify, parse and optimise.
    pub load_ms: f64,
    pub first_inference_ms: f64,
    /// Decode-free: resize + normalise of the bench image.
    pub preprocess_ms: f64,
    pub latency_p50_ms: f64,
    pub latency_p95_ms: f64,
    pub throughput_images_per_s: f64,
    pub threads: usize,
    /// Threads inside each run (`--threads-per-image`); 1 in files saved before it existed.
    #[serde(default = "one")]
    pub threads_per_image: usize,
    /// Images per run: the plan's batch (8 for a symbolic plan).
    pub batch: usize,
    pub peak_rss_mb: Option<f64>,
    /// Median latency of the reference network, timed interleaved with the model's runs.
    #[serde(default)]
    pub reference_p50_ms: Option<f64>,
    /// `latency_p50_ms / reference_p50_ms`: the machine-independent figure `--baseline` compares.
    #[serde(default)]
    pub relative_p50: Option<f64>,
}

pub fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let models = if args.model.is_empty() { default_models()? } else { args.model.clone() };
    let results = if models.len() == 1 {
        vec![bench_one(&models[0], &args)?]
    } else {
        models.iter().map(|m| bench_in_child(m, &args)).collect::<anyhow::Result<Vec<_>>>()?
    };
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        print_table(&results);
    }
    if let Some(path) = &args.save {
        std::fs::write(path, serde_json::to_string_pretty(&results)? + "\n")
            .with_context(|| format!("{}: cannot write the results", path.display()))?;
        eprintln!("saved {} results to {}", results.len(), path.display());
    }
    match &args.baseline {
        Some(path) => compare(&results, path, args.max_slowdown),
        None => Ok(ExitCode::SUCCESS),
    }
}

/// Each model against its row (same name and batch) in the baseline file; exit 1 when any got
/// slower than `max_slowdown` percent, relative to the reference network.
fn compare(results: &[BenchResult], path: &std::path::Path, max_slowdown: f64) -> anyhow::Result<ExitCode> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("{}: cannot read the baseline", path.display()))?;
    let baseline: Vec<BenchResult> =
        serde_json::from_str(&text).with_context(|| format!("{}: not a `cxr bench --save` file", path.display()))?;
    let width = super::column_width("MODEL", results.iter().map(|r| r.model.as_str()));
    outln!("{:<width$} {:>12} {:>12} {:>8}  against {}", "MODEL", "BASELINE ×", "NOW ×", "CHANGE", path.display());
    let mut slower = Vec::new();
    for r in results {
        let base = baseline
            .iter()
            .find(|b| b.model == r.model && b.batch == r.batch && b.threads_per_image == r.threads_per_image);
        let (Some(now), Some(then)) = (r.relative_p50, base.and_then(|b| b.relative_p50)) else {
            outln!(
                "{:<width$} {:>12} {:>12.3} {:>8}  (not in the baseline)",
                r.model,
                "-",
                r.relative_p50.unwrap_or(f64::NAN),
                "-"
            );
            continue;
        };
        let change = (now / then - 1.0) * 100.0;
        let verdict = if change > max_slowdown { "SLOWER" } else { "ok" };
        outln!("{:<width$} {then:>12.3} {now:>12.3} {change:>+7.1}%  {verdict}", r.model);
        if change > max_slowdown {
            slower.push(format!("{} ({change:+.1}%)", r.model));
        }
    }
    outln!("(× = median latency over the reference network's, timed interleaved in the same run)");
    if slower.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("slower than the baseline by more than {max_slowdown}%: {}", slower.join(", "));
        Ok(ExitCode::from(1))
    }
}

/// The embedded model plus every shipped model not identical to it.
fn default_models() -> anyhow::Result<Vec<String>> {
    let catalog = catalog();
    let mut models = Vec::new();
    if catalog.embedded.is_ok() {
        models.push("default".to_owned());
    }
    for m in catalog.shipped() {
        if !m.embedded {
            models.push(m.card_path.display().to_string());
        }
    }
    anyhow::ensure!(
        !models.is_empty(),
        "no models to benchmark: this binary has none embedded and none were found; pass --model PATH"
    );
    Ok(models)
}

fn bench_in_child(model: &str, args: &BenchArgs) -> anyhow::Result<BenchResult> {
    let exe = std::env::current_exe().context("cannot find the cxr executable to run a benchmark child")?;
    let mut cmd = std::process::Command::new(exe);
    let batch = match args.batch {
        Batch::Fixed(n) => n.to_string(),
        Batch::Symbolic => "symbolic".into(),
    };
    cmd.args(["bench", "--json", "--model", model, "--runs", &args.runs.to_string(), "--batch", &batch]);
    cmd.args(["--threads-per-image", &args.threads_per_image.to_string()]);
    if let Some(image) = &args.image {
        cmd.arg("--image").arg(image);
    }
    if let Some(jobs) = args.jobs {
        cmd.args(["--jobs", &jobs.to_string()]);
    }
    let output = cmd.output().context("cannot run a benchmark child")?;
    anyhow::ensure!(
        output.status.success(),
        "benchmark of {model} failed: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    let mut results: Vec<BenchResult> =
        serde_json::from_slice(&output.stdout).context("benchmark child printed no results")?;
    results.pop().context("benchmark child printed no results")
}

fn bench_one(model_arg: &str, args: &BenchArgs) -> anyhow::Result<BenchResult> {
    let image = match &args.image {
        Some(path) => cxr_core::load_image(path)?,
        None => gradient(1024),
    };
    let started = Instant::now();
    let mut model = catalog().load(&ModelSource::parse(model_arg), args.batch)?;
    let load_ms = ms(started);
    model.set_intra_op_threads(IntraOpThreads::new(args.threads_per_image));

    let started = Instant::now();
    let mut input = Vec::new();
    model.preprocess_into(&image, &mut input);
    let preprocess_ms = ms(started);
    let batch = model.batch_size().unwrap_or(8);
    let input = input.repeat(batch);

    let mut session = model.session();
    let started = Instant::now();
    session.run(&input, batch)?;
    let first_inference_ms = ms(started);

    let reference = reference_network()?;
    let mut reference_session = reference.session();
    let reference_input = vec![0.5f32; reference.input_len()];
    reference_session.run(&reference_input, 1)?;
    let mut latencies = Vec::new();
    let mut reference_latencies = Vec::new();
    for _ in 0..args.runs {
        let started = Instant::now();
        reference_session.run(&reference_input, 1)?;
        reference_latencies.push(ms(started));
        let started = Instant::now();
        session.run(&input, batch)?;
        latencies.push(ms(started));
    }
    latencies.sort_by(f64::total_cmp);
    reference_latencies.sort_by(f64::total_cmp);
    let percentile = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    let reference_p50 = reference_latencies[reference_latencies.len() / 2];

    let (throughput_images_per_s, threads) = throughput(&model, &input, batch, args.jobs)?;
    Ok(BenchResult {
        model: model.card.name.clone(),
        precision: model.card.precision.clone(),
        kernels: if model.card.precision == "int8" && !model.int8_as_float() { "int8" } else { "f32" }.into(),
        sha256: model.card.sha256.clone(),
        file_size_bytes: model.file_size,
        load_ms,
        first_inference_ms,
        preprocess_ms,
        latency_p50_ms: percentile(0.5),
        latency_p95_ms: percentile(0.95),
        throughput_images_per_s,
        threads,
        threads_per_image: model.intra_op_threads().count(),
        batch,
        peak_rss_mb: peak_rss_mb(),
        reference_p50_ms: Some(reference_p50),
        relative_p50: Some(percentile(0.5) / reference_p50),
    })
}

/// The fixed workload every latency is divided by: `TinyCnn` (one 3 × 3 convolution, stride 2)
/// on a 512 × 512 input, about as long as a small model's run, built in memory.
fn reference_network() -> anyhow::Result<Model> {
    let net = cxr_infer::tiny_cnn::TinyCnn { size: 512, ..Default::default() };
    let onnx = net.onnx_bytes();
    let card = net.card("reference", "reference.onnx", &onnx);
    let here = std::path::Path::new("reference.onnx");
    Ok(Model::from_bytes(card, here, here, &onnx, Batch::Fixed(1))?)
}

/// Images per second with one session per worker (as `cxr score` runs), inference only.
fn throughput(model: &Model, input: &[f32], batch: usize, jobs: Option<usize>) -> anyhow::Result<(f64, usize)> {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(jobs.unwrap_or(0)).build()?;
    let threads = pool.current_num_threads();
    let runs = ((threads * 16).max(32) / batch).max(threads);
    let started = Instant::now();
    pool.install(|| {
        (0..runs)
            .into_par_iter()
            .try_for_each_init(|| model.session(), |session, _| session.run(input, batch).map(|_| ()))
    })?;
    Ok(((runs * batch) as f64 / started.elapsed().as_secs_f64(), threads))
}

/// The process's peak resident memory, from `/proc/self/status` (Linux only).
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn gradient(side: u32) -> GreyImage {
    let pixels = (0..side * side).map(|i| ((i % side) + (i / side)) as f32 / (2 * side) as f32).collect();
    GreyImage::new(side, side, pixels)
}

fn one() -> usize {
    1
}

fn ms(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1e3
}

fn print_table(results: &[BenchResult]) {
    let width = super::column_width("MODEL", results.iter().map(|r| r.model.as_str()));
    outln!(
        "{:<width$} {:<6} {:<7} {:>5} {:>7} {:>9} {:>9} {:>9} {:>8} {:>8} {:>8} {:>12} {:>9}",
        "MODEL",
        "PREC",
        "KERNELS",
        "BATCH",
        "THREADS",
        "SIZE MB",
        "LOAD ms",
        "FIRST ms",
        "PRE ms",
        "p50 ms",
        "p95 ms",
        "IMAGES/s",
        "PEAK MB"
    );
    for r in results {
        outln!(
            "{:<width$} {:<6} {:<7} {:>5} {:>7} {:>9.2} {:>9.1} {:>9.1} {:>8.2} {:>8.2} {:>8.2} {:>8.1} ({}t) {:>9}",
            r.model,
            r.precision,
            r.kernels,
            r.batch,
            r.threads_per_image,
            r.file_size_bytes as f64 / 1e6,
            r.load_ms,
            r.first_inference_ms,
            r.preprocess_ms,
            r.latency_p50_ms,
            r.latency_p95_ms,
            r.throughput_images_per_s,
            r.threads,
            r.peak_rss_mb.map_or("-".into(), |m| format!("{m:.1}"))
        );
    }
}

/// `1` (what `cxr score` runs), another fixed size, or `symbolic` (one plan for any batch,
/// measured at 8 images per run).
fn parse_batch(arg: &str) -> Result<Batch, String> {
    match arg {
        "symbolic" | "N" => Ok(Batch::Symbolic),
        n => n
            .parse()
            .ok()
            .filter(|&n| n > 0)
            .map(Batch::Fixed)
            .ok_or_else(|| format!("batch must be a positive number or `symbolic`, not `{n}`")),
    }
}
