//! Training against a source predictor: the classifier's score must not tell, among films of one
//! class, which source a film came from.
//!
//! A model that recognises collections scores the non-COVID films of a COVID collection higher
//! than the non-COVID films of other collections: within a class, its score carries the source.
//! A small adversary sees each training film's score and class and guesses its source; the
//! adversary learns to guess well, and the classifier learns, through a gradient-reversal step
//! between them, to make the guess hard. That is adversarial debiasing for equal odds (Zhang,
//! Lemoine & Mitchell, AIES 2018): because the adversary is told the class, it asks for a score that
//! is independent of the source *given* the class, not independent of the class, so a source
//! that holds only one class costs the classifier nothing it needs. It reads the score, not a
//! hidden layer, so it works with every network and transfer mode, the frozen-base head included
//! (Ganin et al.'s domain-adversarial networks put it on the features; a frozen base has none
//! that train), and it is not part of the exported model.

use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Reduction, Tensor};

/// Width of the adversary's one hidden layer: enough to read a shift or a spread of the score per
/// class and source, small enough not to memorise films.
const HIDDEN: i64 = 16;

/// The adversary's learning rate over the classifier's. Its reversed gradient is only as good as
/// its guess: an adversary that learns no faster than the classifier trails it, and pushes the
/// score at random.
const FASTER: f64 = 10.0;

/// The identity forward; backwards, the gradient times `-weight`. What lies before it learns to
/// *increase* the loss after it, by `weight` as much as the layers after it learn to decrease it.
pub fn reverse_gradient(x: &Tensor, weight: f64) -> Tensor {
    let value = x.detach();
    &value + (x - &value) * (-weight)
}

/// The adversary of one training run: its network, optimiser and each training film's source.
pub struct SourceAdversary {
    // Kept alive for the optimiser and the network, which hold its variables.
    _vs: nn::VarStore,
    network: nn::Sequential,
    optimizer: nn::Optimizer,
    weight: f64,
    /// Index of each training example's source (in order of first appearance).
    source_of: Vec<i64>,
}

impl SourceAdversary {
    /// An adversary over the sources of the training examples, or `None` when they hold fewer than
    /// two sources (there is nothing to guess). `learning_rate` is the classifier's.
    pub fn new(sources: &[String], weight: f64, learning_rate: f64, device: Device) -> Option<SourceAdversary> {
        let mut names: Vec<&str> = Vec::new();
        let source_of = sources
            .iter()
            .map(|s| match names.iter().position(|n| n == s) {
                Some(i) => i as i64,
                None => {
                    names.push(s);
                    names.len() as i64 - 1
                }
            })
            .collect();
        if names.len() < 2 {
            return None;
        }
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        // Input: the score, the class (1 for COVID) and their product, so a line per class fits.
        let network = nn::seq()
            .add(nn::linear(&root / "hidden", 3, HIDDEN, Default::default()))
            .add_fn(|x| x.relu())
            .add(nn::linear(&root / "sources", HIDDEN, names.len() as i64, Default::default()));
        let optimizer = nn::Adam::default().build(&vs, FASTER * learning_rate).expect("Adam builds on any VarStore");
        Some(SourceAdversary { _vs: vs, network, optimizer, weight, source_of })
    }

    /// The adversary's weighted cross-entropy on a batch: `score` is each film's COVID logit `[B]`,
    /// `covid` 1.0 for a COVID film and 0.0 otherwise `[B]`, `batch` the examples' indices and
    /// `weights` their loss weights `[B]`. The score reaches it through [`reverse_gradient`].
    pub fn loss(&self, score: &Tensor, covid: &Tensor, batch: &[usize], weights: &Tensor) -> Tensor {
        let s = reverse_gradient(score, self.weight);
        let input = Tensor::stack(&[&s, covid, &(&s * covid)], 1);
        let sources: Vec<i64> = batch.iter().map(|&i| self.source_of[i]).collect();
        let target = Tensor::from_slice(&sources).to_device(score.device());
        let per_film =
            self.network.forward(&input).cross_entropy_loss::<&Tensor>(&target, None, Reduction::None, -100, 0.0);
        (per_film * weights).sum(Kind::Float) / weights.sum(Kind::Float)
    }

    /// The loss of an adversary that knows each film's class and nothing else: the entropy of the
    /// source given the class over the epoch's `order`, each film counted by its `weights` entry
    /// (`covid[i]`: whether example `i` is a COVID film). The adversary's loss near it means the
    /// score says nothing more about the source.
    pub fn chance_loss(&self, covid: &[bool], order: &[usize], weights: &[f32]) -> f64 {
        let sources = self.source_of.iter().max().map_or(0, |&m| m as usize + 1);
        let mut mass = vec![[0.0f64; 2]; sources];
        for &i in order {
            mass[self.source_of[i] as usize][covid[i] as usize] += weights[i] as f64;
        }
        let total: f64 = mass.iter().flatten().sum();
        (0..2)
            .map(|class| {
                let in_class: f64 = mass.iter().map(|m| m[class]).sum();
                mass.iter()
                    .map(|m| m[class])
                    .filter(|&w| w > 0.0)
                    .map(|w| -(w / total) * (w / in_class).ln())
                    .sum::<f64>()
            })
            .sum()
    }

    /// Clears the adversary's gradients before a batch's backward pass.
    pub fn zero_grad(&mut self) {
        self.optimizer.zero_grad();
    }

    /// Moves the adversary after the batch's backward pass.
    pub fn step(&mut self) {
        self.optimizer.step();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reversal_keeps_the_value_and_flips_and_scales_the_gradient() {
        let x = Tensor::from_slice(&[0.5f32, -2.0, 3.0]).set_requires_grad(true);
        let y = reverse_gradient(&x, 0.3);
        assert!(y.allclose(&x, 0.0, 0.0, false));
        (y * Tensor::from_slice(&[1f32, 2., 3.])).sum(Kind::Float).backward();
        let grad = Vec::<f32>::try_from(x.grad()).unwrap();
        for (g, want) in grad.iter().zip([-0.3f32, -0.6, -0.9]) {
            assert!((g - want).abs() < 1e-6, "{grad:?}");
        }
    }

    #[test]
    fn chance_is_the_entropy_of_the_source_given_the_class() {
        // COVID films from sources a and b alike; non-COVID from a, b, c in 1 : 1 : 2.
        let sources: Vec<String> = ["a", "b", "a", "b", "c", "c"].map(String::from).to_vec();
        let covid = [true, true, false, false, false, false];
        let adversary = SourceAdversary::new(&sources, 1.0, 1e-3, Device::Cpu).unwrap();
        let chance = adversary.chance_loss(&covid, &[0, 1, 2, 3, 4, 5], &[1.0; 6]);
        let want = (2.0 / 6.0) * 2f64.ln() + (4.0 / 6.0) * (0.5 * 2f64.ln() + 2.0 * 0.25 * 4f64.ln());
        assert!((chance - want).abs() < 1e-9, "{chance} against {want}");
        // Weights count like repeats.
        let repeated = adversary.chance_loss(&covid, &[0, 1, 2, 3, 4], &[1.0, 1.0, 1.0, 1.0, 2.0, 0.0]);
        assert!((repeated - want).abs() < 1e-9, "{repeated} against {want}");
    }

    #[test]
    fn one_source_needs_no_adversary() {
        assert!(SourceAdversary::new(&["a".into(), "a".into()], 1.0, 1e-3, Device::Cpu).is_none());
        assert!(SourceAdversary::new(&["a".into(), "b".into()], 1.0, 1e-3, Device::Cpu).is_some());
    }

    /// Alone (the score held fixed), the adversary learns to tell two sources apart when, among
    /// films of one class, their scores differ; the score receives the reversed gradient.
    #[test]
    fn the_adversary_learns_a_source_shift_within_a_class_and_pushes_the_score_against_it() {
        tch::manual_seed(1);
        // Negatives of source 0 score -2, of source 1 score +1; COVID films of both score 2.
        let n = 64;
        let sources: Vec<String> = (0..n).map(|i| if i % 2 == 0 { "a" } else { "b" }.to_owned()).collect();
        let covid: Vec<f32> = (0..n).map(|i| if i % 4 < 2 { 1.0 } else { 0.0 }).collect();
        let scores: Vec<f32> = (0..n)
            .map(|i| {
                if covid[i] == 1.0 {
                    2.0
                } else if i % 2 == 0 {
                    -2.0
                } else {
                    1.0
                }
            })
            .collect();
        let mut adversary = SourceAdversary::new(&sources, 1.0, 1e-3, Device::Cpu).unwrap();
        let batch: Vec<usize> = (0..n).collect();
        let weights = Tensor::ones([n as i64], (Kind::Float, Device::Cpu));
        let covid = Tensor::from_slice(&covid);
        let loss_at = |adversary: &SourceAdversary| {
            let score = Tensor::from_slice(&scores);
            f64::try_from(adversary.loss(&score, &covid, &batch, &weights)).unwrap()
        };
        let before = loss_at(&adversary);
        for _ in 0..300 {
            adversary.zero_grad();
            adversary.loss(&Tensor::from_slice(&scores), &covid, &batch, &weights).backward();
            adversary.step();
        }
        let after = loss_at(&adversary);
        // Chance is ln 2 = 0.69; the negatives (half the films) are separable, the COVID films not.
        assert!(after < 0.45 && after < before - 0.2, "adversary loss {before:.3} -> {after:.3}");

        // The reversed gradient moves the negatives' scores towards each other.
        let score = Tensor::from_slice(&scores).set_requires_grad(true);
        adversary.loss(&score, &covid, &batch, &weights).backward();
        let grad = Vec::<f32>::try_from(score.grad()).unwrap();
        // Gradient descent moves a score by -grad: source a's negatives (at -2) up, b's (at +1) down.
        assert!(grad[2] < 0.0 && grad[3] > 0.0, "negatives' gradients {} (a) and {} (b)", grad[2], grad[3]);
    }
}
