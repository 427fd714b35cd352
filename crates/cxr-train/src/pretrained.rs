//! Loads ImageNet (or user-supplied torchvision) weights into a network, checking every tensor.
//!
//! Weights come as safetensors converted from PyTorch checkpoints by
//! `scripts/convert-torch-weights.py` (`scripts/fetch-weights.sh` does it for the shipped ones).
//! A silently half-loaded backbone trains to a plausible but worse model, so any missing,
//! unexpected or misshapen tensor is an error; only the classifier head may differ in shape,
//! because cxr replaces the 1000-class ImageNet head with its own.

use crate::network::Network;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::{Tensor, nn};

#[derive(Debug, thiserror::Error)]
pub enum PretrainedError {
    #[error(
        "{path}: weights file not found; run scripts/fetch-weights.sh (or convert your checkpoint with scripts/convert-torch-weights.py)"
    )]
    Missing { path: PathBuf },
    #[error(
        "{path}: not a readable safetensors file ({source}); re-run scripts/fetch-weights.sh or re-convert the checkpoint"
    )]
    Corrupt { path: PathBuf, source: tch::TchError },
    #[error("{path}: does not fit {architecture}: {problems}")]
    Mismatch { path: PathBuf, architecture: String, problems: String },
}

/// What was loaded.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadReport {
    pub loaded: usize,
    /// Head tensors of a different shape (e.g. the 1000-class ImageNet classifier), left as initialised.
    pub replaced_head: Vec<String>,
}

/// Copies the tensors of `path` into `vs` (whose variables were created for `network`).
/// Parameters under `head_prefix` may be missing or shaped differently; everything else must match
/// exactly (all of it when `head_prefix` is empty). `network` may be part of what `vs` holds (a classifier behind a lung field): only its
/// own parameters are loaded.
pub fn load_pretrained(
    vs: &nn::VarStore,
    network: &Network,
    path: &Path,
    head_prefix: &str,
) -> Result<LoadReport, PretrainedError> {
    if !path.is_file() {
        return Err(PretrainedError::Missing { path: path.to_owned() });
    }
    let file: BTreeMap<String, Tensor> = Tensor::read_safetensors(path)
        .map_err(|source| PretrainedError::Corrupt { path: path.to_owned(), source })?
        .into_iter()
        .collect();
    let variables = vs.variables();
    let mut problems = Vec::new();
    let mut replaced_head = Vec::new();
    let mut to_copy = Vec::new();
    for spec in network.parameters() {
        let is_head = !head_prefix.is_empty() && spec.name.starts_with(head_prefix);
        match file.get(&spec.name) {
            None if is_head => replaced_head.push(spec.name.clone()),
            None => problems.push(format!("`{}` {:?} is missing", spec.name, spec.shape)),
            Some(t) if t.size() != spec.shape => {
                if is_head {
                    replaced_head.push(spec.name.clone());
                } else {
                    problems.push(format!(
                        "`{}` has shape {:?}, the network needs {:?}",
                        spec.name,
                        t.size(),
                        spec.shape
                    ));
                }
            }
            Some(t) => to_copy.push((spec.name.clone(), t)),
        }
    }
    let expected: std::collections::BTreeSet<String> = network.parameters().into_iter().map(|p| p.name).collect();
    for name in file.keys().filter(|n| !expected.contains(*n) && !n.ends_with("num_batches_tracked")) {
        problems.push(format!("unexpected tensor `{name}`"));
    }
    if !problems.is_empty() {
        let shown = problems.len().min(8);
        let more =
            if problems.len() > shown { format!(" (and {} more)", problems.len() - shown) } else { String::new() };
        return Err(PretrainedError::Mismatch {
            path: path.to_owned(),
            architecture: network.architecture.clone(),
            problems: problems[..shown].join("; ") + &more,
        });
    }
    tch::no_grad(|| {
        for (name, source) in &to_copy {
            let mut target = variables[name].shallow_clone();
            target.copy_(&source.to_device(target.device()).to_kind(target.kind()));
        }
    });
    Ok(LoadReport { loaded: to_copy.len(), replaced_head })
}
