//! Seeded, stratified, grouped train/val/test splits, with whole sources held out for
//! cross-source evaluation.
//!
//! * **Grouped**: the unit of assignment is a group (patient ids ∪ near-duplicate images, built
//!   by [`crate::manifest::index_datasets`]); a group never straddles two splits, so no patient
//!   and no copied picture can be both trained on and tested on.
//! * **Stratified**: groups are stratified by (source, class) of their majority, so every
//!   source × class cell is split in the requested fractions and per-source results are
//!   measurable on every split. Within a stratum, groups are shuffled with the seed, then placed
//!   largest first, each into the split furthest below its target count.
//! * **Held-out sources**: every image of a source named in `holdout_sources` goes to
//!   [`Split::Holdout`]. A group that touches a held-out source (the same picture copied into
//!   another collection) must not leak into train or val; its members from other sources are
//!   marked [`Split::Excluded`] rather than added to `holdout`, so that the holdout split holds
//!   only pictures from the held-out sources and stays a clean "unseen hospital" test.
//! * **Reproducible**: the shuffle is a SplitMix64 stream of the seed, implemented here so that
//!   a manifest can be re-created exactly regardless of `rand` versions.

use crate::label::Class;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::str::FromStr;

/// Where an image is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Val,
    Test,
    /// Test-only split of the held-out sources.
    Holdout,
    /// Not used at all: a copy of a held-out picture found in another source.
    Excluded,
}

impl Split {
    pub const ALL: [Split; 5] = [Split::Train, Split::Val, Split::Test, Split::Holdout, Split::Excluded];

    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
            Split::Holdout => "holdout",
            Split::Excluded => "excluded",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Split {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Split::ALL
            .into_iter()
            .find(|split| split.as_str() == s.trim())
            .ok_or_else(|| format!("unknown split `{s}` (expected train, val, test, holdout or excluded)"))
    }
}

/// How to split; recorded in the manifest's sidecar so a split can be re-created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitConfig {
    pub seed: u64,
    pub train: f64,
    pub val: f64,
    pub test: f64,
    /// Source names (collection folder names) used only for testing.
    pub holdout_sources: Vec<String>,
}

impl Default for SplitConfig {
    fn default() -> Self {
        SplitConfig { seed: 42, train: 0.70, val: 0.15, test: 0.15, holdout_sources: Vec::new() }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SplitError {
    #[error("split fractions train {train} + val {val} + test {test} must be non-negative and sum to 1")]
    BadFractions { train: f64, val: f64, test: f64 },
    #[error("cross-fitting needs at least 2 folds, not {0}")]
    TooFewFolds(usize),
}

impl SplitConfig {
    pub fn validate(&self) -> Result<(), SplitError> {
        let fractions = [self.train, self.val, self.test];
        let sum: f64 = fractions.iter().sum();
        if fractions.iter().any(|f| !f.is_finite() || *f < 0.0) || (sum - 1.0).abs() > 1e-6 {
            return Err(SplitError::BadFractions { train: self.train, val: self.val, test: self.test });
        }
        Ok(())
    }
}

/// What the splitter needs to know about one image.
#[derive(Debug, Clone, Copy)]
pub struct SplitItem<'a> {
    /// Images with the same group must share a split.
    pub group: usize,
    pub source: &'a str,
    pub label: Class,
}

/// The split of every item, in item order.
pub fn assign_splits(items: &[SplitItem<'_>], config: &SplitConfig) -> Result<Vec<Split>, SplitError> {
    config.validate()?;
    let held_out: HashSet<&str> = config.holdout_sources.iter().map(String::as_str).collect();
    let mut members: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        members.entry(item.group).or_default().push(i);
    }

    let mut splits = vec![Split::Excluded; items.len()];
    // Stratum (source, class) → groups in it, in group order before the shuffle.
    let mut strata: BTreeMap<(&str, Class), Vec<&Vec<usize>>> = BTreeMap::new();
    for group in members.values() {
        if group.iter().any(|&i| held_out.contains(items[i].source)) {
            for &i in group {
                splits[i] = if held_out.contains(items[i].source) { Split::Holdout } else { Split::Excluded };
            }
            continue;
        }
        strata.entry(majority(group.iter().map(|&i| (items[i].source, items[i].label)))).or_default().push(group);
    }

    let mut rng = SplitMix64(config.seed);
    let fractions = [(Split::Train, config.train), (Split::Val, config.val), (Split::Test, config.test)];
    for groups in strata.values_mut() {
        rng.shuffle(groups);
        groups.sort_by_key(|g| std::cmp::Reverse(g.len()));
        let total: usize = groups.iter().map(|g| g.len()).sum();
        let mut placed = [0usize; 3];
        for group in groups.iter() {
            let (slot, _) = fractions
                .iter()
                .enumerate()
                .map(|(slot, (_, fraction))| (slot, fraction * total as f64 - placed[slot] as f64))
                .fold((0, f64::NEG_INFINITY), |best, cand| if cand.1 > best.1 { cand } else { best });
            placed[slot] += group.len();
            for &i in group.iter() {
                splits[i] = fractions[slot].0;
            }
        }
    }
    Ok(splits)
}

/// Cross-fitting folds for the items of one source: a fold index in `0..folds` per item, in
/// item order, `None` for items of other sources. Grouped and stratified as [`assign_splits`] is
/// (a group never straddles two folds; each class is spread evenly), so that a model tested on
/// fold `k` never trained on a patient or a copied picture of it.
///
/// This is how a collection's own non-COVID films can both train and test a model without a
/// test image reaching training: train one model per fold on the other folds, score each film
/// with the model that did not see it, and pool the out-of-fold scores.
pub fn assign_folds(
    items: &[SplitItem<'_>],
    source: &str,
    folds: usize,
    seed: u64,
) -> Result<Vec<Option<usize>>, SplitError> {
    if folds < 2 {
        return Err(SplitError::TooFewFolds(folds));
    }
    let mut members: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, item) in items.iter().enumerate().filter(|(_, item)| item.source == source) {
        members.entry(item.group).or_default().push(i);
    }
    let mut strata: BTreeMap<Class, Vec<&Vec<usize>>> = BTreeMap::new();
    for group in members.values() {
        strata.entry(majority(group.iter().map(|&i| items[i].label))).or_default().push(group);
    }
    let mut assigned = vec![None; items.len()];
    let mut rng = SplitMix64(seed);
    // Fold sizes carry over from one class to the next, so the folds also end up equal in size.
    let mut placed = vec![0usize; folds];
    for groups in strata.values_mut() {
        rng.shuffle(groups);
        groups.sort_by_key(|g| std::cmp::Reverse(g.len()));
        let mut in_class = vec![0usize; folds];
        for group in groups.iter() {
            let fold = (0..folds).min_by_key(|&f| (in_class[f], placed[f], f)).expect("at least two folds");
            in_class[fold] += group.len();
            placed[fold] += group.len();
            for &i in group.iter() {
                assigned[i] = Some(fold);
            }
        }
    }
    Ok(assigned)
}

/// The most frequent value; ties go to the smallest, so the result is order-independent.
fn majority<T: Ord + Copy>(values: impl Iterator<Item = T>) -> T {
    let mut counts: BTreeMap<T, usize> = BTreeMap::new();
    for v in values {
        *counts.entry(v).or_default() += 1;
    }
    let best = counts.values().copied().max().unwrap_or(0);
    *counts.iter().find(|(_, c)| **c == best).map(|(v, _)| v).expect("majority of an empty group")
}

/// SplitMix64 (Steele et al. 2014): tiny, fast and fixed forever, unlike a library RNG's stream.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(n: usize) -> Vec<SplitItem<'static>> {
        (0..n)
            .map(|i| SplitItem {
                group: i / 3,
                source: if i % 10 == 0 { "b" } else { "a" },
                label: if i % 2 == 0 { Class::Covid } else { Class::Normal },
            })
            .collect()
    }

    #[test]
    fn groups_stay_together_and_fractions_are_close() {
        let items = items(3000);
        let splits = assign_splits(&items, &SplitConfig::default()).unwrap();
        let mut by_group: BTreeMap<usize, HashSet<Split>> = BTreeMap::new();
        for (item, split) in items.iter().zip(&splits) {
            by_group.entry(item.group).or_default().insert(*split);
        }
        assert!(by_group.values().all(|s| s.len() == 1));
        let train = splits.iter().filter(|&&s| s == Split::Train).count() as f64 / 3000.0;
        assert!((train - 0.70).abs() < 0.02, "{train}");
    }

    #[test]
    fn seed_decides_the_split() {
        let items = items(600);
        let config = SplitConfig::default();
        let a = assign_splits(&items, &config).unwrap();
        assert_eq!(a, assign_splits(&items, &config).unwrap());
        let other = SplitConfig { seed: 7, ..config };
        assert_ne!(a, assign_splits(&items, &other).unwrap());
    }

    #[test]
    fn held_out_sources_and_their_copies_never_reach_training() {
        let items = items(300);
        let config = SplitConfig { holdout_sources: vec!["b".into()], ..SplitConfig::default() };
        let splits = assign_splits(&items, &config).unwrap();
        for (item, split) in items.iter().zip(&splits) {
            if item.source == "b" {
                assert_eq!(*split, Split::Holdout);
            } else if items.iter().any(|o| o.group == item.group && o.source == "b") {
                assert_eq!(*split, Split::Excluded);
            } else {
                assert!(matches!(split, Split::Train | Split::Val | Split::Test));
            }
        }
    }

    #[test]
    fn bad_fractions_are_refused() {
        let config = SplitConfig { train: 0.8, ..SplitConfig::default() };
        assert!(assign_splits(&[], &config).is_err());
    }

    #[test]
    fn folds_keep_groups_together_and_spread_each_class() {
        let items = items(600);
        let folds = assign_folds(&items, "a", 5, 42).unwrap();
        for (item, fold) in items.iter().zip(&folds) {
            assert_eq!(fold.is_some(), item.source == "a", "only the named source gets folds");
            let mut same_group = items.iter().zip(&folds).filter(|(o, _)| o.group == item.group && o.source == "a");
            assert!(
                item.source != "a" || same_group.all(|(_, f)| f == fold),
                "group {} straddles two folds",
                item.group
            );
        }
        for class in [Class::Covid, Class::Normal] {
            let per_fold: Vec<usize> = (0..5)
                .map(|k| items.iter().zip(&folds).filter(|(i, f)| i.label == class && **f == Some(k)).count())
                .collect();
            let (min, max) = (per_fold.iter().min().unwrap(), per_fold.iter().max().unwrap());
            assert!(max - min <= 3, "{class:?} per fold {per_fold:?}");
        }
        assert_eq!(folds, assign_folds(&items, "a", 5, 42).unwrap());
        assert_ne!(folds, assign_folds(&items, "a", 5, 7).unwrap());
        assert_eq!(assign_folds(&items, "a", 1, 42), Err(SplitError::TooFewFolds(1)));
    }
}
