//! The manifest: one CSV row per usable image with its label, fingerprint, groups and split —
//! the single list that training (train/val) and evaluation (test/holdout) read.
//!
//! The CSV stays plain (pandas reads it as is); how it was made — roots, seed, fractions,
//! held-out sources, duplicate criteria, and every skipped item by reason — goes into a JSON
//! sidecar next to it (`manifest.csv` → `manifest.json`).
//!
//! Columns: `path` (joined onto the root the user named), `source`, `patient_id`, `view`,
//! `label`, `width`, `height`, `phash` (16 hex digits), `dup_group` (near-duplicate image
//! cluster, empty when the picture has no copy), `split_group` (patients ∪ duplicates: the unit
//! the split keeps together), `split`.

use crate::dataset::{self, Layout, Record, SkipReport};
use crate::dedup::{DuplicateCriteria, UnionFind, near_duplicate_pairs};
use crate::image::{ImageError, load_image};
use crate::label::Class;
use crate::phash::Fingerprint;
use crate::split::{Split, SplitConfig, SplitError, SplitItem, assign_folds, assign_splits};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// One row of the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestEntry {
    pub path: PathBuf,
    pub source: String,
    pub patient_id: String,
    pub view: String,
    pub label: Class,
    pub width: u32,
    pub height: u32,
    #[serde(with = "hex_u64")]
    pub phash: u64,
    pub dup_group: Option<usize>,
    pub split_group: usize,
    pub split: Split,
}

/// Columns every manifest has, whatever version wrote it.
const MANIFEST_COLUMNS: [&str; 4] = ["path", "source", "label", "split"];

/// How a manifest was made, kept in the JSON sidecar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestMeta {
    pub cxr_version: String,
    pub roots: Vec<PathBuf>,
    pub split: SplitConfig,
    pub duplicates: DuplicateCriteria,
    pub collections: Vec<CollectionReport>,
    /// Folders under the roots that are no collection we can read.
    pub unrecognised: Vec<PathBuf>,
}

/// What indexing made of one collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectionReport {
    pub source: String,
    pub root: PathBuf,
    pub layout: Layout,
    /// Images in the manifest.
    pub indexed: usize,
    /// Everything left out, by reason (metadata problems and undecodable files alike).
    pub skipped: SkipReport,
    /// How many of the skipped were image files that did not decode (also in `skipped`).
    pub unreadable_images: usize,
    /// Set when the collection could not be read at all.
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub entries: Vec<ManifestEntry>,
    /// Absent when the CSV was found without its sidecar.
    pub meta: Option<ManifestMeta>,
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{path}: cannot read or write: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a cxr manifest CSV: {source} (create one with `cxr data index ROOT --out {}`)", path.display())]
    Csv { path: PathBuf, source: csv::Error },
    #[error("{path}: not a cxr manifest CSV: {reason} (create one with `cxr data index ROOT --out {}`)", path.display())]
    NotAManifest { path: PathBuf, reason: String },
    #[error("{path}: cannot write the manifest: {source}")]
    Write { path: PathBuf, source: csv::Error },
    #[error("{path}: cannot parse the manifest sidecar: {source}")]
    Json { path: PathBuf, source: serde_json::Error },
    #[error(transparent)]
    Split(#[from] SplitError),
    #[error("--holdout-source `{name}` is not one of the sources found: {found}")]
    UnknownHoldoutSource { name: String, found: String },
    #[error(
        "no readable collection found under {roots}; expected ieee8023, Radiography, Kermany, Hannover, NIH, CoronaHack or class-per-folder layouts"
    )]
    NothingToIndex { roots: String },
    #[error("no image of source `{0}` in the manifest")]
    NoSuchSource(String),
    #[error("fold {fold} does not exist: folds are numbered 0 to {} of {folds}", folds - 1)]
    NoSuchFold { fold: usize, folds: usize },
}

impl Manifest {
    /// The sidecar of a manifest CSV: same name, `.json`.
    pub fn sidecar_path(csv_path: &Path) -> PathBuf {
        csv_path.with_extension("json")
    }

    pub fn write(&self, csv_path: &Path) -> Result<(), ManifestError> {
        let csv_err = |source| ManifestError::Write { path: csv_path.to_owned(), source };
        let file = std::fs::File::create(csv_path)
            .map_err(|source| ManifestError::Io { path: csv_path.to_owned(), source })?;
        let mut writer = csv::Writer::from_writer(file);
        for entry in &self.entries {
            writer.serialize(entry).map_err(csv_err)?;
        }
        writer.flush().map_err(|source| ManifestError::Io { path: csv_path.to_owned(), source })?;
        if let Some(meta) = &self.meta {
            let sidecar = Self::sidecar_path(csv_path);
            let json = serde_json::to_string_pretty(meta)
                .map_err(|source| ManifestError::Json { path: sidecar.clone(), source })?;
            std::fs::write(&sidecar, json + "\n").map_err(|source| ManifestError::Io { path: sidecar, source })?;
        }
        Ok(())
    }

    /// Reads a manifest CSV and, when present, its sidecar.
    pub fn read(csv_path: &Path) -> Result<Manifest, ManifestError> {
        let bytes =
            std::fs::read(csv_path).map_err(|source| ManifestError::Io { path: csv_path.to_owned(), source })?;
        let entries = Self::parse_entries(csv_path, &bytes)?;
        let sidecar = Self::sidecar_path(csv_path);
        let meta = match std::fs::read_to_string(&sidecar) {
            Ok(text) => {
                Some(serde_json::from_str(&text).map_err(|source| ManifestError::Json { path: sidecar, source })?)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => return Err(ManifestError::Io { path: sidecar, source }),
        };
        Ok(Manifest { entries, meta })
    }

    /// Parses manifest CSV text; `csv_path` is used for messages only. An empty file, or one
    /// whose first line lacks the manifest's columns (a binary file, another CSV), is refused
    /// rather than read as a manifest of no images.
    pub fn parse_entries(csv_path: &Path, bytes: &[u8]) -> Result<Vec<ManifestEntry>, ManifestError> {
        let not_a_manifest = |reason: String| ManifestError::NotAManifest { path: csv_path.to_owned(), reason };
        if bytes.is_empty() {
            return Err(not_a_manifest("empty file (0 bytes)".into()));
        }
        let csv_err = |source| ManifestError::Csv { path: csv_path.to_owned(), source };
        let mut reader = csv::Reader::from_reader(bytes);
        let headers = reader.headers().map_err(csv_err)?;
        let missing: Vec<&str> = MANIFEST_COLUMNS.into_iter().filter(|c| !headers.iter().any(|h| h == *c)).collect();
        if !missing.is_empty() {
            return Err(not_a_manifest(format!("its first line lacks the column(s) {}", missing.join(", "))));
        }
        reader.deserialize().collect::<Result<Vec<ManifestEntry>, _>>().map_err(csv_err)
    }

    /// Assigns every entry's split anew from its `split_group` (see [`crate::split`]), e.g. to try
    /// another seed or holdout without fingerprinting again; the sidecar records the new config.
    pub fn resplit(&mut self, config: &SplitConfig) -> Result<(), SplitError> {
        let items: Vec<SplitItem> = self
            .entries
            .iter()
            .map(|e| SplitItem { group: e.split_group, source: &e.source, label: e.label })
            .collect();
        let splits = assign_splits(&items, config)?;
        for (entry, split) in self.entries.iter_mut().zip(splits) {
            entry.split = split;
        }
        if let Some(meta) = &mut self.meta {
            meta.split = config.clone();
        }
        Ok(())
    }

    /// Fold `fold` of a cross-fitting of `source` (see [`crate::split::assign_folds`]): that
    /// fold's films become `test`; the source's other films are split into `train` and `val`
    /// (85 : 15, grouped and stratified); copies of a test film in other sources become
    /// `excluded`, copies of the others follow them into `train` or `val`. Other sources keep their splits, or are all `excluded` with `only_source`, so
    /// a model can be trained on the contrast inside one collection alone.
    pub fn cross_fit(
        &self,
        source: &str,
        folds: usize,
        fold: usize,
        seed: u64,
        only_source: bool,
    ) -> Result<Manifest, ManifestError> {
        let items: Vec<SplitItem> = self
            .entries
            .iter()
            .map(|e| SplitItem { group: e.split_group, source: &e.source, label: e.label })
            .collect();
        let assigned = assign_folds(&items, source, folds, seed)?;
        if assigned.iter().all(Option::is_none) {
            return Err(ManifestError::NoSuchSource(source.to_owned()));
        }
        if fold >= folds {
            return Err(ManifestError::NoSuchFold { fold, folds });
        }
        let rest: Vec<SplitItem> =
            items.iter().zip(&assigned).filter(|(_, f)| f.is_some_and(|f| f != fold)).map(|(i, _)| *i).collect();
        let config = SplitConfig { seed, train: 0.85, val: 0.15, test: 0.0, holdout_sources: Vec::new() };
        let mut rest_splits = assign_splits(&rest, &config)?.into_iter();
        let mut manifest = self.clone();
        // The split of each group with films of the source, for their copies in other sources.
        let mut of_group: HashMap<usize, Split> = HashMap::new();
        for (entry, f) in manifest.entries.iter_mut().zip(&assigned) {
            if let Some(f) = f {
                entry.split =
                    if *f == fold { Split::Test } else { rest_splits.next().expect("one split per remaining film") };
                of_group.insert(entry.split_group, entry.split);
            }
        }
        for (entry, f) in manifest.entries.iter_mut().zip(&assigned) {
            if f.is_none() {
                entry.split = match of_group.get(&entry.split_group) {
                    _ if only_source => Split::Excluded,
                    Some(Split::Test) => Split::Excluded,
                    Some(split) => *split,
                    None => entry.split,
                };
            }
        }
        Ok(manifest)
    }

    pub fn entries_in(&self, split: Split) -> impl Iterator<Item = &ManifestEntry> {
        self.entries.iter().filter(move |e| e.split == split)
    }

    /// Image counts per (source, class, split).
    pub fn counts(&self) -> BTreeMap<(String, Class, Split), usize> {
        let mut counts = BTreeMap::new();
        for e in &self.entries {
            *counts.entry((e.source.clone(), e.label, e.split)).or_default() += 1;
        }
        counts
    }

    /// The near-duplicate clusters, largest first, as indices into `entries`.
    pub fn duplicate_groups(&self) -> Vec<Vec<usize>> {
        let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (i, e) in self.entries.iter().enumerate() {
            if let Some(g) = e.dup_group {
                groups.entry(g).or_default().push(i);
            }
        }
        let mut groups: Vec<Vec<usize>> = groups.into_values().collect();
        groups.sort_by_key(|g| std::cmp::Reverse(g.len()));
        groups
    }

    /// How the near-duplicate clusters fall across sources and labels: what `cxr data stats`
    /// reports, because a cluster spanning two collections is one picture counted twice and one
    /// with two labels is a labelling conflict.
    pub fn duplicate_summary(&self) -> DuplicateSummary {
        let groups = self.duplicate_groups();
        let distinct = |group: &[usize], key: &dyn Fn(&ManifestEntry) -> String| {
            group.iter().map(|&i| key(&self.entries[i])).collect::<BTreeSet<_>>().len()
        };
        let mut source_pairs: BTreeMap<(String, String), usize> = BTreeMap::new();
        for group in &groups {
            let sources: Vec<&str> =
                group.iter().map(|&i| self.entries[i].source.as_str()).collect::<BTreeSet<_>>().into_iter().collect();
            for (k, a) in sources.iter().enumerate() {
                for b in &sources[k + 1..] {
                    *source_pairs.entry((a.to_string(), b.to_string())).or_default() += 1;
                }
            }
        }
        let cross_source: Vec<bool> = groups.iter().map(|g| distinct(g, &|e| e.source.clone()) > 1).collect();
        DuplicateSummary {
            images: groups.iter().map(Vec::len).sum(),
            cross_source: cross_source.iter().filter(|&&c| c).count(),
            conflicting_labels: groups.iter().filter(|g| distinct(g, &|e| e.label.to_string()) > 1).count(),
            source_pairs,
            // Cross-source clusters first, as the most telling examples; largest first within each.
            groups: groups
                .iter()
                .zip(&cross_source)
                .filter(|(_, c)| **c)
                .map(|(g, _)| g.clone())
                .chain(groups.iter().zip(&cross_source).filter(|(_, c)| !**c).map(|(g, _)| g.clone()))
                .collect(),
        }
    }

    /// Every patient, duplicate cluster or split group found in more than one of
    /// train / val / test / holdout (`excluded` images are used nowhere, so they cannot leak).
    pub fn leaks(&self) -> Vec<Leak> {
        let mut seen: BTreeMap<(LeakKind, String), BTreeSet<Split>> = BTreeMap::new();
        for e in self.entries.iter().filter(|e| e.split != Split::Excluded) {
            let mut add = |kind, key: String| {
                seen.entry((kind, key)).or_default().insert(e.split);
            };
            add(LeakKind::Patient, format!("{} / {}", e.source, e.patient_id));
            add(LeakKind::SplitGroup, e.split_group.to_string());
            if let Some(g) = e.dup_group {
                add(LeakKind::DuplicateGroup, g.to_string());
            }
        }
        seen.into_iter()
            .filter(|(_, splits)| splits.len() > 1)
            .map(|((kind, key), splits)| Leak { kind, key, splits: splits.into_iter().collect() })
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LeakKind {
    Patient,
    DuplicateGroup,
    SplitGroup,
}

/// One thing found in two or more splits.
#[derive(Debug, Clone, PartialEq)]
pub struct Leak {
    pub kind: LeakKind,
    pub key: String,
    pub splits: Vec<Split>,
}

impl std::fmt::Display for Leak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.kind {
            LeakKind::Patient => "patient",
            LeakKind::DuplicateGroup => "duplicate group",
            LeakKind::SplitGroup => "split group",
        };
        let splits: Vec<&str> = self.splits.iter().map(|s| s.as_str()).collect();
        write!(f, "{what} {} is in {}", self.key, splits.join(" and "))
    }
}

/// How to index.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IndexConfig {
    pub split: SplitConfig,
    pub duplicates: DuplicateCriteria,
}

/// Told about fingerprinting progress, so the CLI can draw a bar without this crate drawing one.
pub trait IndexProgress: Sync {
    fn start(&self, _images: usize) {}
    fn advance(&self) {}
    fn finish(&self) {}
}

/// No progress reporting.
impl IndexProgress for () {}

/// Reads every collection under `roots`, fingerprints every image (in parallel), groups
/// near-duplicates across all sources with patients, and splits.
///
/// A collection that cannot be read is reported in its [`CollectionReport::error`] and the
/// others are still indexed; undecodable images are counted in their collection's skip report.
pub fn index_datasets(
    roots: &[PathBuf],
    config: &IndexConfig,
    progress: &dyn IndexProgress,
) -> Result<Manifest, ManifestError> {
    config.split.validate()?;
    let discovery = dataset::discover(roots);
    let mut reports = Vec::new();
    let mut records: Vec<Record> = Vec::new();
    for (root, layout) in &discovery.collections {
        match dataset::read_collection(root, *layout) {
            Ok(collection) => {
                reports.push(CollectionReport {
                    source: collection.source.clone(),
                    root: root.clone(),
                    layout: *layout,
                    indexed: 0,
                    skipped: collection.skipped,
                    unreadable_images: 0,
                    error: None,
                });
                records.extend(collection.records);
            }
            Err(e) => reports.push(CollectionReport {
                source: dataset::source_name(root),
                root: root.clone(),
                layout: *layout,
                indexed: 0,
                skipped: SkipReport::default(),
                unreadable_images: 0,
                error: Some(e.to_string()),
            }),
        }
    }
    if discovery.collections.is_empty() {
        let roots = roots.iter().map(|r| r.display().to_string()).collect::<Vec<_>>().join(", ");
        return Err(ManifestError::NothingToIndex { roots });
    }
    // A misspelt holdout would silently train on the source meant to be unseen.
    for name in &config.split.holdout_sources {
        if !reports.iter().any(|r| &r.source == name) {
            let found = reports.iter().map(|r| r.source.as_str()).collect::<Vec<_>>().join(", ");
            return Err(ManifestError::UnknownHoldoutSource { name: name.clone(), found });
        }
    }

    progress.start(records.len());
    let fingerprints: Vec<Result<(Fingerprint, u32, u32), ImageError>> = records
        .par_iter()
        .map(|record| {
            let result = load_image(&record.path).map(|image| (Fingerprint::of(&image), image.width, image.height));
            progress.advance();
            result
        })
        .collect();
    progress.finish();

    let report_of: HashMap<String, usize> = reports.iter().enumerate().map(|(i, r)| (r.source.clone(), i)).collect();
    let mut usable = Vec::with_capacity(records.len());
    for (record, result) in records.into_iter().zip(fingerprints) {
        match result {
            Ok(fp) => usable.push((record, fp)),
            Err(error) => {
                let report = &mut reports[report_of[&record.source]];
                report.skipped.skip(image_error_reason(&error), error);
                report.unreadable_images += 1;
            }
        }
    }
    for (record, _) in &usable {
        reports[report_of[&record.source]].indexed += 1;
    }

    let prints: Vec<Fingerprint> = usable.iter().map(|(_, (fp, _, _))| fp.clone()).collect();
    let pairs = near_duplicate_pairs(&prints, config.duplicates);

    let mut duplicates = UnionFind::new(usable.len());
    let mut groups = UnionFind::new(usable.len());
    for &(a, b) in &pairs {
        duplicates.union(a, b);
        groups.union(a, b);
    }
    let mut first_of_patient: HashMap<(&str, &str), usize> = HashMap::new();
    for (i, (record, _)) in usable.iter().enumerate() {
        let first = *first_of_patient.entry((record.source.as_str(), record.patient_id.as_str())).or_insert(i);
        groups.union(first, i);
    }
    let dup_groups = dense_nontrivial_ids(duplicates.component_ids());
    let split_groups = groups.component_ids();

    let entries = usable
        .into_iter()
        .zip(dup_groups)
        .zip(split_groups)
        .map(|(((record, (fp, width, height)), dup_group), split_group)| ManifestEntry {
            path: record.path,
            source: record.source,
            patient_id: record.patient_id,
            view: record.view,
            label: record.label,
            width,
            height,
            phash: fp.phash,
            dup_group,
            split_group,
            split: Split::Excluded,
        })
        .collect();
    let meta = ManifestMeta {
        cxr_version: env!("CARGO_PKG_VERSION").to_owned(),
        roots: roots.to_vec(),
        split: config.split.clone(),
        duplicates: config.duplicates,
        collections: reports,
        unrecognised: discovery.unrecognised,
    };
    let mut manifest = Manifest { entries, meta: Some(meta) };
    manifest.resplit(&config.split)?;
    Ok(manifest)
}

/// Component ids renumbered 0.. over components with two or more members; singletons get `None`.
fn dense_nontrivial_ids(ids: Vec<usize>) -> Vec<Option<usize>> {
    let mut sizes: HashMap<usize, usize> = HashMap::new();
    for &id in &ids {
        *sizes.entry(id).or_default() += 1;
    }
    let mut renumbered: HashMap<usize, usize> = HashMap::new();
    ids.into_iter()
        .map(|id| {
            (sizes[&id] > 1).then(|| {
                let next = renumbered.len();
                *renumbered.entry(id).or_insert(next)
            })
        })
        .collect()
}

/// The skip-report reason for an image that did not decode.
fn image_error_reason(error: &ImageError) -> &'static str {
    #[allow(unreachable_patterns)]
    match error {
        ImageError::Empty { .. } => "empty image file (0 bytes)",
        ImageError::UnknownFormat { .. } => "not a PNG, JPEG or DICOM file",
        ImageError::Decode { .. } => "undecodable or truncated image",
        ImageError::TooLarge { .. } => "image over the pixel limit",
        ImageError::Io { .. } => "cannot read image file",
        ImageError::UnsupportedDicom { .. } => "unsupported DICOM",
        _ => "unreadable image",
    }
}

/// The perceptual hash as 16 hex digits, so it survives spreadsheets and pandas (which would
/// turn a 64-bit integer into a lossy float).
mod hex_u64 {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(value: &u64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format!("{value:016x}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
        let text = String::deserialize(deserializer)?;
        u64::from_str_radix(text.trim(), 16)
            .map_err(|e| D::Error::custom(format!("phash `{text}` is not 16 hex digits: {e}")))
    }
}

/// The near-duplicate clusters of a manifest, summarised ([`Manifest::duplicate_summary`]).
#[derive(Debug, Clone, PartialEq)]
pub struct DuplicateSummary {
    /// Every cluster as indices into the entries, those spanning several sources first.
    pub groups: Vec<Vec<usize>>,
    /// Images in any cluster.
    pub images: usize,
    /// Clusters with images from more than one source.
    pub cross_source: usize,
    /// Clusters whose images carry more than one label.
    pub conflicting_labels: usize,
    /// For each pair of sources, how many clusters span both.
    pub source_pairs: BTreeMap<(String, String), usize>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, source: &str, label: Class, group: usize, split: Split) -> ManifestEntry {
        ManifestEntry {
            path: path.into(),
            source: source.into(),
            patient_id: format!("{source}-{group}"),
            view: "frontal".into(),
            label,
            width: 1,
            height: 1,
            phash: 0,
            dup_group: None,
            split_group: group,
            split,
        }
    }

    /// A collection with both classes, and another source holding a copy of one of its films.
    fn manifest() -> Manifest {
        let mut entries: Vec<ManifestEntry> = (0..60)
            .map(|i| {
                entry(
                    &format!("a/{i}.png"),
                    "a",
                    if i % 4 == 0 { Class::Normal } else { Class::Covid },
                    i / 2,
                    Split::Holdout,
                )
            })
            .collect();
        entries.push(entry("b/copy-of-a0.png", "b", Class::Covid, 0, Split::Train));
        entries.extend((0..10).map(|i| {
            entry(&format!("b/{i}.png"), "b", Class::Normal, 100 + i, if i < 7 { Split::Train } else { Split::Val })
        }));
        Manifest { entries, meta: None }
    }

    #[test]
    fn cross_fit_tests_one_fold_and_trains_on_the_rest_without_leaks() {
        let m = manifest();
        let mut tested = 0;
        for fold in 0..3 {
            let cross = m.cross_fit("a", 3, fold, 42, false).unwrap();
            assert!(cross.leaks().is_empty(), "fold {fold}: {:?}", cross.leaks());
            let a: Vec<&ManifestEntry> = cross.entries.iter().filter(|e| e.source == "a").collect();
            assert!(a.iter().all(|e| matches!(e.split, Split::Test | Split::Train | Split::Val)));
            tested += a.iter().filter(|e| e.split == Split::Test).count();
            let copy = &cross.entries[60];
            let a0 = &cross.entries[0];
            match a0.split {
                Split::Test => assert_eq!(copy.split, Split::Excluded, "a copy of a test film is used nowhere"),
                split => assert_eq!(copy.split, split, "a copy follows its original into train or val"),
            }
            assert!(
                cross.entries[61..].iter().all(|e| matches!(e.split, Split::Train | Split::Val)),
                "other sources keep their splits"
            );
            let only = m.cross_fit("a", 3, fold, 42, true).unwrap();
            assert!(only.entries.iter().filter(|e| e.source == "b").all(|e| e.split == Split::Excluded));
        }
        assert_eq!(tested, 60, "every film is tested in exactly one fold");
        assert!(matches!(m.cross_fit("c", 3, 0, 42, false), Err(ManifestError::NoSuchSource(_))));
        assert!(matches!(m.cross_fit("a", 3, 3, 42, false), Err(ManifestError::NoSuchFold { fold: 3, folds: 3 })));
    }

    #[test]
    fn duplicate_summary_counts_clusters_across_sources_and_labels() {
        let mut m = manifest();
        // Cluster 1: a/3 and a COVID film of b (labels agree); cluster 2: a/1 and a/4 of one
        // source with two labels; cluster 3: a/5, a/6 and b/0 (two sources, two labels).
        let clusters = [
            ("a/3.png", 1),
            ("b/copy-of-a0.png", 1),
            ("a/1.png", 2),
            ("a/4.png", 2),
            ("a/5.png", 3),
            ("a/6.png", 3),
            ("b/0.png", 3),
        ];
        for (path, group) in clusters {
            m.entries.iter_mut().find(|e| e.path == Path::new(path)).unwrap().dup_group = Some(group);
        }
        let summary = m.duplicate_summary();
        assert_eq!((summary.groups.len(), summary.images), (3, 7));
        assert_eq!((summary.cross_source, summary.conflicting_labels), (2, 2));
        assert_eq!(summary.source_pairs, BTreeMap::from([(("a".to_string(), "b".to_string()), 2)]));
        assert_eq!(
            summary.groups.iter().map(Vec::len).collect::<Vec<_>>(),
            [3, 2, 2],
            "cross-source first, largest first"
        );
    }
}
