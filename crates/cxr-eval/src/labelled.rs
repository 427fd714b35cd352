//! Labelled films: from a manifest (`cxr data index`, its `split` chosen) or from a folder with
//! one sub-folder per class at any depth, where the folders above the class folders name the
//! source (`mydata/hospital-a/covid/…`), so a user's own hospitals are sources too.

use crate::EvalError;
use cxr_core::{Class, Split};
use std::path::{Path, PathBuf};

/// One labelled film.
#[derive(Debug, Clone)]
pub struct Labelled {
    pub path: PathBuf,
    pub label: Class,
    pub source: String,
}

/// What [`labelled_images`] found.
#[derive(Debug)]
pub struct LabelledSet {
    pub items: Vec<Labelled>,
    /// Images under a folder input whose folders name no class, skipped.
    pub unlabelled: usize,
    /// The manifest split read (`None` for a folder).
    pub split: Option<String>,
}

/// Labelled images from a manifest or a folder-per-class tree (see the module doc).
pub fn labelled_images(data: &Path, split: Option<&str>, data_root: Option<&Path>) -> Result<LabelledSet, EvalError> {
    if data.is_dir() {
        if split.is_some() {
            return Err(EvalError::ManifestOnly { what: "a split", path: data.to_owned() });
        }
        if data_root.is_some() {
            return Err(EvalError::ManifestOnly { what: "a data root", path: data.to_owned() });
        }
        let (images, _) = cxr_core::walk::walk_images(data)?;
        let root_name = data
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "data".into());
        let mut items = Vec::new();
        let mut unlabelled = 0;
        for path in images {
            let rel: Vec<String> = path
                .strip_prefix(data)
                .unwrap_or(&path)
                .parent()
                .into_iter()
                .flat_map(|p| p.iter())
                .map(|c| c.to_string_lossy().into_owned())
                .collect();
            // The deepest folder that names a class labels the image; the folders above it name the source.
            match rel.iter().rposition(|c| Class::from_folder_name(c).is_some()) {
                Some(at) => {
                    let label = Class::from_folder_name(&rel[at]).expect("just matched");
                    let source =
                        if at == 0 { root_name.clone() } else { format!("{root_name}/{}", rel[..at].join("/")) };
                    items.push(Labelled { path, label, source });
                }
                None => unlabelled += 1,
            }
        }
        return Ok(LabelledSet { items, unlabelled, split: None });
    }
    let manifest = cxr_core::Manifest::read(data)?;
    let split = split.unwrap_or("test");
    let wanted: Option<Split> = if split == "all" { None } else { Some(split.parse().map_err(EvalError::Split)?) };
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
    Ok(LabelledSet { items, unlabelled: 0, split: Some(split.to_owned()) })
}

/// Keeps the images of the named sources (all when none are named); a name that matches no
/// image is an error, since a typo would otherwise evaluate nothing and say so only as "no images".
pub fn only_sources(items: Vec<Labelled>, sources: &[String], data: &Path) -> Result<Vec<Labelled>, EvalError> {
    if sources.is_empty() {
        return Ok(items);
    }
    for source in sources {
        if !items.iter().any(|i| &i.source == source) {
            let mut known: Vec<&str> = items.iter().map(|i| i.source.as_str()).collect();
            known.sort_unstable();
            known.dedup();
            return Err(EvalError::UnknownSource {
                data: data.to_owned(),
                source_name: source.clone(),
                known: known.join(", "),
            });
        }
    }
    Ok(items.into_iter().filter(|i| sources.contains(&i.source)).collect())
}
