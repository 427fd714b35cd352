//! Sharded runs for batch schedulers: `cxr score INPUTS --shard K/N --out part-K.csv` in each of
//! N tasks (a Slurm job array, a Kubernetes indexed Job), then `cxr score INPUTS --merge part-*.csv
//! --out all.csv` once.
//!
//! An image's shard comes from a hash of its path as listed under its input, not from its
//! position in the listing: a file added or removed between tasks, or another listing order,
//! moves no other file to another shard, and the tasks need not see the inputs at the same
//! mount point. The merge lists the inputs again and refuses, naming examples, when an input has
//! no row or two rows or a row is not an input, so a lost or repeated task cannot go unnoticed.

use super::Inputs;
use anyhow::{Context, bail};
use cxr_core::results::file_identity;
use cxr_infer::Model;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;

/// Shard `index` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("`{s}` is not a shard K/N with 0 ≤ K < N (e.g. 0/4 … 3/4)");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (u64, u64) = (k.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        if index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// Whether the image listed as `key` belongs to this shard: the first 8 bytes of the key's
    /// sha256, modulo the shard count (fixed forever, unlike a library hasher's seed).
    pub fn holds(&self, key: &str) -> bool {
        let digest = Sha256::digest(key.as_bytes());
        let head = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
        head % self.count == self.index
    }
}

/// Merges shard outputs into `out`: every input exactly once, in input order; error rows kept.
/// Exit code 1 when any row is an error, as for an unsharded run.
pub fn merge(
    inputs: &Inputs,
    shards: &[PathBuf],
    out: &Path,
    header: &[String],
    model: &Model,
) -> anyhow::Result<ExitCode> {
    if std::fs::metadata(out).is_ok_and(|m| m.len() > 0) {
        bail!("{}: already exists; choose another --out for the merged file", out.display());
    }
    let mut rows: HashMap<PathBuf, (csv::StringRecord, &Path)> = HashMap::new();
    let mut twice = Vec::new();
    let mut failed = 0;
    for shard in shards {
        let bytes = std::fs::read(shard).with_context(|| format!("{}: cannot read", shard.display()))?;
        let run = cxr_core::results::read_earlier_run(shard, &bytes, header, &model.card.sha256, &model.card.name)?;
        if run.cut_off {
            bail!(
                "{}: its last line is cut off (the task was killed); finish it with the same command and --resume, then merge",
                shard.display()
            );
        }
        failed += run.failed.len();
        for row in run.scored.into_iter().chain(run.failed) {
            let file = file_identity(Path::new(row.get(0).unwrap_or_default()));
            if let Some((_, first)) = rows.get(&file) {
                twice.push(format!("{} (in {} and {})", file.display(), first.display(), shard.display()));
            } else {
                rows.insert(file, (row, shard));
            }
        }
    }
    // Each input with its identity, resolved once (a path per syscall adds up over an archive).
    let expected: Vec<(&Path, PathBuf)> = inputs
        .unreadable
        .iter()
        .map(|(p, _)| p.as_path())
        .chain(inputs.images.iter().map(|l| l.path.as_path()))
        .map(|p| (p, file_identity(p)))
        .collect();
    let missing: Vec<&Path> = expected.iter().filter(|(_, id)| !rows.contains_key(id)).map(|(p, _)| *p).collect();
    let listed: std::collections::HashSet<&PathBuf> = expected.iter().map(|(_, id)| id).collect();
    let strangers: Vec<&PathBuf> = rows.keys().filter(|p| !listed.contains(*p)).collect();
    let examples = |items: Vec<String>| items.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
    let mut problems = Vec::new();
    if !missing.is_empty() {
        problems.push(format!(
            "{} inputs have no row (a task missing or unfinished?), e.g. {}",
            missing.len(),
            examples(missing.iter().map(|p| p.display().to_string()).collect())
        ));
    }
    if !twice.is_empty() {
        problems.push(format!(
            "{} inputs have two rows (a shard given twice, or shards of different N?), e.g. {}",
            twice.len(),
            examples(twice)
        ));
    }
    if !strangers.is_empty() {
        problems.push(format!(
            "{} rows are not among the inputs (other inputs than the tasks had?), e.g. {}",
            strangers.len(),
            examples(strangers.iter().map(|p| p.display().to_string()).collect())
        ));
    }
    if !problems.is_empty() {
        bail!("cannot merge {} shards into {}: {}", shards.len(), out.display(), problems.join("; "));
    }

    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(header)?;
    for (_, id) in &expected {
        writer.write_record(&rows[id].0)?;
    }
    let text = writer.into_inner().map_err(|e| anyhow::anyhow!("{}", e.error()))?;
    let mut name = out.file_name().unwrap_or_default().to_owned();
    name.push(".merge-tmp");
    let tmp = out.with_file_name(name);
    let cannot = || format!("{}: cannot write", out.display());
    std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(&text).and_then(|()| f.sync_all()))
        .with_context(cannot)?;
    std::fs::rename(&tmp, out).with_context(cannot)?;
    eprintln!(
        "merged {} shards: {} rows ({failed} errors), each input once → {}",
        shards.len(),
        expected.len(),
        out.display()
    );
    Ok(if failed > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_split_keys_evenly_and_disjointly() {
        assert_eq!("2/5".parse::<Shard>(), Ok(Shard { index: 2, count: 5 }));
        for bad in ["5/5", "1", "a/3", "-1/3", "1/0"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        let keys: Vec<String> = (0..4000).map(|i| format!("ward-{}/film-{i}.dcm", i % 7)).collect();
        let shards: Vec<Shard> = (0..4).map(|index| Shard { index, count: 4 }).collect();
        for key in &keys {
            assert_eq!(shards.iter().filter(|s| s.holds(key)).count(), 1, "{key} in exactly one shard");
        }
        for s in &shards {
            let n = keys.iter().filter(|k| s.holds(k)).count();
            assert!((900..=1100).contains(&n), "shard {s} holds {n} of 4000");
        }
    }
}
