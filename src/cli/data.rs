//! `cxr data index` and `cxr data stats`: build a manifest with leak-free splits from dataset
//! folders, and summarise one (counts, duplicate groups, leakage check).

use anyhow::Context;
use clap::{Args, Subcommand};
use cxr_core::Class;
use cxr_core::dedup::DuplicateCriteria;
use cxr_core::manifest::{IndexConfig, IndexProgress, Manifest, index_datasets};
use cxr_core::split::{Split, SplitConfig};
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum DataCommand {
    /// Index dataset folders into a manifest CSV (+ JSON sidecar) with seeded, stratified splits
    /// grouped by patient and by near-duplicate image across all sources.
    Index(IndexArgs),
    /// Summarise a manifest: images per source × class × split, duplicate groups, leakage check
    /// (exit code 1 when a patient or duplicate group is in two splits).
    Stats(StatsArgs),
    /// Cross-fitting folds inside one source: one manifest per fold, whose `test` split is that
    /// fold's films and whose `train`/`val` hold the source's other films (grouped by patient and
    /// near-duplicate), for an out-of-fold evaluation with `cxr eval --out-of-fold`.
    Folds(FoldsArgs),
}

#[derive(Args)]
pub struct IndexArgs {
    /// Dataset folders: a collection (e.g. `datasets/chest_xray`) or a folder of collections
    /// (e.g. `../shared/datasets`); each layout is recognised automatically.
    #[arg(required = true)]
    roots: Vec<PathBuf>,
    /// Manifest CSV to write; the sidecar goes next to it with a `.json` extension.
    #[arg(long, short)]
    out: PathBuf,
    /// Seed of the split shuffle.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Fraction of each source × class for training.
    #[arg(long, default_value_t = 0.70)]
    train: f64,
    /// Fraction for validation.
    #[arg(long, default_value_t = 0.15)]
    val: f64,
    /// Fraction for testing.
    #[arg(long, default_value_t = 0.15)]
    test: f64,
    /// Put this whole source (a collection folder name, e.g. `hannover-covid`) into the test-only
    /// split `holdout`; copies of its pictures in other sources are marked `excluded`. Repeatable.
    #[arg(long = "holdout-source", value_name = "NAME")]
    holdout_sources: Vec<String>,
    /// Largest perceptual-hash distance (bits of 64) of a near-duplicate candidate.
    #[arg(long, default_value_t = DuplicateCriteria::default().max_distance)]
    max_hash_distance: u32,
    /// Smallest thumbnail correlation that confirms a near-duplicate candidate.
    #[arg(long, default_value_t = DuplicateCriteria::default().min_correlation)]
    min_correlation: f32,
}

#[derive(Args)]
pub struct StatsArgs {
    /// Manifest CSV written by `cxr data index`.
    manifest: PathBuf,
    /// How many duplicate groups to show as examples.
    #[arg(long, default_value_t = 5)]
    examples: usize,
}

#[derive(Args)]
pub struct FoldsArgs {
    /// Manifest CSV written by `cxr data index` (e.g. with the source held out, so that its
    /// copies in other collections are already `excluded`).
    manifest: PathBuf,
    /// The source to cross-fit (a `source` of the manifest, e.g. `covid-chestxray-dataset`).
    #[arg(long)]
    source: String,
    /// Number of folds.
    #[arg(long, default_value_t = 5)]
    folds: usize,
    /// Seed of the fold and train/val shuffles.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Exclude every other source, so each fold model trains on the contrast inside the source alone.
    #[arg(long)]
    only_source: bool,
    /// Folder for `fold-0.csv` … (each with its sidecar).
    #[arg(long, short)]
    out: PathBuf,
}

pub fn run(cmd: DataCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        DataCommand::Index(args) => index(args),
        DataCommand::Stats(args) => stats(args),
        DataCommand::Folds(args) => folds(args),
    }
}

fn folds(args: FoldsArgs) -> anyhow::Result<ExitCode> {
    let manifest = Manifest::read(&args.manifest)?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("{}: cannot create the folder", args.out.display()))?;
    for fold in 0..args.folds {
        let cross = manifest
            .cross_fit(&args.source, args.folds, fold, args.seed, args.only_source)
            .with_context(|| args.manifest.display().to_string())?;
        let path = args.out.join(format!("fold-{fold}.csv"));
        cross.write(&path)?;
        let count = |split: Split| cross.entries.iter().filter(|e| e.source == args.source && e.split == split).count();
        let trained = cross.entries.iter().filter(|e| e.split == Split::Train).count();
        outln!(
            "{}: {} films of {} to test, {} train and {} val of it, {trained} train images in all",
            path.display(),
            count(Split::Test),
            args.source,
            count(Split::Train),
            count(Split::Val)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// An indicatif bar on a terminal; nothing when stderr is piped.
struct Bar(Option<ProgressBar>);

impl IndexProgress for Bar {
    fn start(&self, images: usize) {
        if let Some(bar) = &self.0 {
            bar.set_length(images as u64);
        }
    }
    fn advance(&self) {
        if let Some(bar) = &self.0 {
            bar.inc(1);
        }
    }
    fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

fn index(args: IndexArgs) -> anyhow::Result<ExitCode> {
    // Checked before minutes of fingerprinting, not after.
    for root in &args.roots {
        anyhow::ensure!(
            root.is_dir(),
            "{}: {}",
            root.display(),
            if root.exists() { "not a folder" } else { "no such folder" }
        );
    }
    let out_dir = args.out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    anyhow::ensure!(
        out_dir.is_dir(),
        "{}: cannot write the manifest there: folder {} does not exist",
        args.out.display(),
        out_dir.display()
    );
    let config = IndexConfig {
        split: SplitConfig {
            seed: args.seed,
            train: args.train,
            val: args.val,
            test: args.test,
            holdout_sources: args.holdout_sources,
        },
        duplicates: DuplicateCriteria { max_distance: args.max_hash_distance, min_correlation: args.min_correlation },
    };
    let bar = Bar(std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("fingerprinting {bar:40} {pos}/{len} images ({per_sec}, {eta} left)")
                .expect("static progress template"),
        );
        bar
    }));
    let manifest = index_datasets(&args.roots, &config, &bar)?;
    manifest.write(&args.out).with_context(|| format!("writing the manifest to {}", args.out.display()))?;

    let meta = manifest.meta.as_ref().expect("index_datasets records how it indexed");
    let mut problems = 0usize;
    for report in &meta.collections {
        outln!("{} ({}, {}): {} images indexed", report.source, report.layout, report.root.display(), report.indexed);
        if let Some(error) = &report.error {
            problems += 1;
            eprintln!("  error: {error}");
        }
        for (reason, count) in &report.skipped.reasons {
            outln!("  skipped {reason}: {} (first: {})", count.count, count.first);
        }
        problems += report.unreadable_images;
    }
    for folder in &meta.unrecognised {
        problems += 1;
        eprintln!("warning: {}: not a dataset layout cxr recognises; nothing indexed from it", folder.display());
    }
    let groups = manifest.duplicate_groups();
    outln!(
        "{} images, {} near-duplicate groups ({} images in them); splits by seed {}{}",
        manifest.entries.len(),
        groups.len(),
        groups.iter().map(Vec::len).sum::<usize>(),
        meta.split.seed,
        holdout_note(&meta.split.holdout_sources),
    );
    outln!("wrote {} and {}", args.out.display(), Manifest::sidecar_path(&args.out).display());
    if problems > 0 {
        eprintln!(
            "warning: {problems} unreadable images, collections or folders (listed above); the manifest holds the rest"
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn holdout_note(holdouts: &[String]) -> String {
    if holdouts.is_empty() {
        String::new()
    } else {
        format!(", held out: {} (their copies in other sources are `excluded`, used nowhere)", holdouts.join(", "))
    }
}

fn stats(args: StatsArgs) -> anyhow::Result<ExitCode> {
    let manifest = Manifest::read(&args.manifest)?;
    anyhow::ensure!(!manifest.entries.is_empty(), "{}: the manifest holds no images", args.manifest.display());
    let counts = manifest.counts();
    let sources: BTreeSet<&str> = manifest.entries.iter().map(|e| e.source.as_str()).collect();
    let used_splits: Vec<Split> =
        Split::ALL.into_iter().filter(|s| manifest.entries.iter().any(|e| e.split == *s)).collect();

    outln!("{}: {} images from {} sources", args.manifest.display(), manifest.entries.len(), sources.len());
    match &manifest.meta {
        Some(meta) => outln!(
            "seed {}, fractions train {} / val {} / test {}{}",
            meta.split.seed,
            meta.split.train,
            meta.split.val,
            meta.split.test,
            holdout_note(&meta.split.holdout_sources)
        ),
        None => outln!(
            "(no sidecar {} found: seed and skip reports unknown)",
            Manifest::sidecar_path(&args.manifest).display()
        ),
    }
    outln!();

    let source_width = sources.iter().map(|s| s.len()).max().unwrap_or(6).max(6);
    out!("{:<source_width$}  {:<9}", "source", "class");
    for split in &used_splits {
        out!(" {:>8}", split.as_str());
    }
    outln!(" {:>8}", "total");
    let mut split_totals = vec![0usize; used_splits.len()];
    for source in &sources {
        for class in Class::ALL {
            let row: Vec<usize> = used_splits
                .iter()
                .map(|&s| counts.get(&(source.to_string(), class, s)).copied().unwrap_or(0))
                .collect();
            if row.iter().all(|&c| c == 0) {
                continue;
            }
            out!("{source:<source_width$}  {:<9}", class.as_str());
            for (i, c) in row.iter().enumerate() {
                split_totals[i] += c;
                out!(" {c:>8}");
            }
            outln!(" {:>8}", row.iter().sum::<usize>());
        }
    }
    out!("{:<source_width$}  {:<9}", "all", "");
    for c in &split_totals {
        out!(" {c:>8}");
    }
    outln!(" {:>8}", manifest.entries.len());
    outln!();

    let duplicates = manifest.duplicate_summary();
    outln!(
        "near-duplicate groups: {} ({} images), {} across sources, {} with conflicting labels",
        duplicates.groups.len(),
        duplicates.images,
        duplicates.cross_source,
        duplicates.conflicting_labels
    );
    for ((a, b), n) in &duplicates.source_pairs {
        outln!("  {a} ↔ {b}: {n} groups");
    }
    for g in duplicates.groups.iter().take(args.examples) {
        outln!("  group {} ({} images):", manifest.entries[g[0]].dup_group.unwrap_or_default(), g.len());
        for &i in g.iter().take(4) {
            let e = &manifest.entries[i];
            outln!("    {} [{} {}, {}]", e.path.display(), e.source, e.label, e.split);
        }
        if g.len() > 4 {
            outln!("    … and {} more", g.len() - 4);
        }
    }
    outln!();

    let leaks = manifest.leaks();
    if leaks.is_empty() {
        outln!("leakage check: OK — no patient, duplicate group or split group is in two of train/val/test/holdout");
        Ok(ExitCode::SUCCESS)
    } else {
        outln!("leakage check: FAILED — {} leaks:", leaks.len());
        for leak in leaks.iter().take(20) {
            outln!("  {leak}");
        }
        Ok(ExitCode::from(1))
    }
}
