//! How much each training film pulls on the loss, and in which order an epoch sees them.
//!
//! The public COVID-19 collections mostly hold one class each: Kermany's `chest_xray` and the
//! NIH sample have no COVID films, and `covid19-radiography` takes its COVID films from other
//! hospitals than its normal ones. Weighting only by class lets the thousands of films of those
//! collections outvote the few collections that hold both classes, and what they teach is which
//! collection a film came from. [`Balance::Sources`] gives every source the same share of the
//! training, split equally among the classes it holds, so the contrast *inside* a collection counts
//! as much as any collection's look. It cannot remove the look of a one-class source (no balance
//! can: the source alone names its class), only its share; [`crate::adversary`] works on that.
//!
//! Classes are balanced by weighting the loss, over a shuffled pass through every film. Sources
//! are balanced by *drawing* each epoch's films with replacement in proportion to the same kind of
//! weight, each then weighing one: a collection's 60 non-COVID films among ten thousand would
//! otherwise turn up in one batch in five, with a huge weight, and the source adversary, which
//! compares sources inside a batch, would hardly ever see them. Drawn, every batch holds about as
//! many films of each source and class.

use rand::Rng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// How training balances its films: by loss weights per class, or by drawing per source and
/// class (recorded in the run's configuration and described on the card).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Balance {
    /// Every class pulls equally: a film weighs N / (K · n_class).
    #[default]
    Classes,
    /// Every source pulls equally, and inside it every class it holds: a film of class c in source
    /// s is drawn with probability 1 / (S · K_s · n_{s,c}), S sources, K_s classes present in s.
    Sources,
}

/// One epoch's films, in order (a film may appear more than once), and each one's loss weight.
pub struct EpochPlan {
    pub order: Vec<usize>,
    pub weights: Vec<f32>,
}

impl Balance {
    /// The films an epoch trains on and their weights: every film once, shuffled, weighted by class
    /// ([`Balance::Classes`]); or as many films drawn with replacement as there are, in proportion to
    /// [`Balance::weights`], each weighing one ([`Balance::Sources`]).
    pub fn epoch_plan(self, targets: &[usize], sources: &[String], rng: &mut impl Rng) -> EpochPlan {
        let weights = self.weights(targets, sources);
        match self {
            Balance::Classes => {
                let mut order: Vec<usize> = (0..targets.len()).collect();
                order.shuffle(rng);
                EpochPlan { order, weights }
            }
            Balance::Sources => {
                let cumulative: Vec<f64> = weights
                    .iter()
                    .scan(0.0f64, |sum, &w| {
                        *sum += w as f64;
                        Some(*sum)
                    })
                    .collect();
                let total = cumulative.last().copied().unwrap_or(0.0);
                let order = (0..targets.len())
                    .map(|_| {
                        let x = rng.r#gen::<f64>() * total;
                        cumulative.partition_point(|&c| c <= x).min(targets.len() - 1)
                    })
                    .collect();
                EpochPlan { order, weights: vec![1.0; targets.len()] }
            }
        }
    }

    /// One weight per film, from its target and its source; the weights sum to the number of films.
    pub fn weights(self, targets: &[usize], sources: &[String]) -> Vec<f32> {
        assert_eq!(targets.len(), sources.len(), "one source per film");
        let total = targets.len() as f64;
        match self {
            Balance::Classes => {
                let mut per_class: HashMap<usize, usize> = HashMap::new();
                for &t in targets {
                    *per_class.entry(t).or_default() += 1;
                }
                let classes = per_class.len() as f64;
                targets.iter().map(|t| (total / (classes * per_class[t] as f64)) as f32).collect()
            }
            Balance::Sources => {
                let mut per_cell: HashMap<(&str, usize), usize> = HashMap::new();
                for (s, &t) in sources.iter().zip(targets) {
                    *per_cell.entry((s.as_str(), t)).or_default() += 1;
                }
                let mut classes_in: HashMap<&str, usize> = HashMap::new();
                for (s, _) in per_cell.keys() {
                    *classes_in.entry(s).or_default() += 1;
                }
                let source_count = classes_in.len() as f64;
                sources
                    .iter()
                    .zip(targets)
                    .map(|(s, &t)| {
                        let cell = per_cell[&(s.as_str(), t)] as f64;
                        (total / (source_count * classes_in[s.as_str()] as f64 * cell)) as f32
                    })
                    .collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum_where(weights: &[f32], keep: impl Fn(usize) -> bool) -> f64 {
        weights.iter().enumerate().filter(|(i, _)| keep(*i)).map(|(_, &w)| w as f64).sum()
    }

    /// A two-class source of 30 films (24 COVID, 6 not), a one-class source of 100 negatives and a
    /// two-class source of 70 (20 COVID, 50 not): the shape of the `all` training sets.
    fn films() -> (Vec<usize>, Vec<String>) {
        let mut targets = Vec::new();
        let mut sources = Vec::new();
        for (source, covid, other) in [("small", 24, 6), ("negatives-only", 0, 100), ("big", 20, 50)] {
            for i in 0..covid + other {
                targets.push(if i < covid { 0 } else { 1 });
                sources.push(source.to_owned());
            }
        }
        (targets, sources)
    }

    #[test]
    fn class_balance_weighs_each_class_equally_and_sums_to_the_film_count() {
        let (targets, sources) = films();
        let w = Balance::Classes.weights(&targets, &sources);
        let covid = sum_where(&w, |i| targets[i] == 0);
        let other = sum_where(&w, |i| targets[i] == 1);
        assert!((covid - other).abs() < 1e-3, "{covid} vs {other}");
        assert!((covid + other - targets.len() as f64).abs() < 1e-3);
    }

    #[test]
    fn source_balance_weighs_each_source_and_each_class_inside_it_equally() {
        let (targets, sources) = films();
        let w = Balance::Sources.weights(&targets, &sources);
        let n = targets.len() as f64;
        for source in ["small", "negatives-only", "big"] {
            let total = sum_where(&w, |i| sources[i] == source);
            assert!((total - n / 3.0).abs() < 1e-3, "{source}: {total}");
        }
        for source in ["small", "big"] {
            let covid = sum_where(&w, |i| sources[i] == source && targets[i] == 0);
            let other = sum_where(&w, |i| sources[i] == source && targets[i] == 1);
            assert!((covid - other).abs() < 1e-3, "{source}: {covid} vs {other}");
        }
        // The 24 COVID films of the small source weigh what the 20 of the big one do.
        let small = sum_where(&w, |i| sources[i] == "small" && targets[i] == 0);
        let big = sum_where(&w, |i| sources[i] == "big" && targets[i] == 0);
        assert!((small - big).abs() < 1e-3);
    }

    #[test]
    fn a_source_balanced_epoch_draws_each_source_and_each_class_inside_it_alike() {
        use rand::SeedableRng;
        let (targets, sources) = films();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let mut drawn: HashMap<(&str, usize), usize> = HashMap::new();
        let epochs = 200;
        for _ in 0..epochs {
            let plan = Balance::Sources.epoch_plan(&targets, &sources, &mut rng);
            assert_eq!(plan.order.len(), targets.len());
            assert!(plan.weights.iter().all(|&w| w == 1.0));
            for &i in &plan.order {
                *drawn.entry((sources[i].as_str(), targets[i])).or_default() += 1;
            }
        }
        let share = |cell| drawn.get(&cell).copied().unwrap_or(0) as f64 / (epochs * targets.len()) as f64;
        for (cell, want) in [
            (("small", 0), 1.0 / 6.0),
            (("small", 1), 1.0 / 6.0),
            (("negatives-only", 1), 1.0 / 3.0),
            (("big", 0), 1.0 / 6.0),
            (("big", 1), 1.0 / 6.0),
        ] {
            assert!((share(cell) - want).abs() < 0.01, "{cell:?}: {} against {want}", share(cell));
        }
        // A class-balanced epoch is every film once.
        let mut plan = Balance::Classes.epoch_plan(&targets, &sources, &mut rng);
        plan.order.sort();
        assert_eq!(plan.order, (0..targets.len()).collect::<Vec<_>>());
    }

    #[test]
    fn with_one_source_both_balances_agree() {
        let (targets, _) = films();
        let one = vec!["only".to_owned(); targets.len()];
        assert_eq!(Balance::Classes.weights(&targets, &one), Balance::Sources.weights(&targets, &one));
    }
}
