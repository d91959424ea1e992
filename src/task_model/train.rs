//! Training the task model by stochastic gradient descent over precomputed features (AdaGrad's
//! per-weight steps, or one falling rate), with the weights averaged over the later epochs: one
//! hidden layer of rectified units (what ships, its rows then product-quantised by `codebook`),
//! or multinomial logistic regression (the model before, for comparison); and the temperature
//! that calibrates its probabilities. Deterministic: the same examples and settings give the same
//! bytes.

use super::cells::{Coded, Product};
use super::codebook;
use super::lexicon;
use super::rng::SplitMix;
use super::{rectified_scores, Concepts, Reads, TaskModel, UnitRows};
use std::borrow::Borrow;

/// One labelled prompt: its features (`features`) and its label's index.
pub struct Example {
    pub features: Vec<(u32, f32)>,
    pub label: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// Hash buckets (any count; features are hashed modulo it); the model has four bits per
    /// bucket and hidden unit (per bucket and label without a hidden layer).
    pub buckets: u32,
    /// Units of the hidden layer; 0 for none (logistic regression).
    pub hidden: u32,
    pub epochs: u32,
    /// The learning rate: with AdaGrad the same every epoch; else that of the first epoch, and
    /// epoch `e` uses `rate / (1 + e)`.
    pub rate: f32,
    /// L2 penalty, applied once per epoch.
    pub l2: f32,
    /// Orders the examples in each epoch.
    pub seed: u64,
    /// Share of an example's features left out at each step of training (the rest scaled up to
    /// match), so that no few words carry a label alone: 0 trains on every feature.
    pub dropout: f32,
    /// Per-weight step sizes (AdaGrad: each weight's rate divided by the root of its summed
    /// squared gradients, at a constant `rate`) instead of one falling rate for every weight.
    pub adagrad: bool,
    /// Weights per slice of a hidden layer's row when rows are stored product-quantised (one
    /// byte per slice, `codebook`); 0 stores four bits a weight (file format v4).
    pub width: u32,
}

/// What ships: one hidden layer of 16 units over 95,000 buckets, each row stored as four bytes
/// (slices of four weights, each an index into 256 centroids: 398 KB), trained with AdaGrad at the
/// long schedule and heavy dropout it does best with.
impl Default for Settings {
    fn default() -> Self {
        Settings {
            buckets: 95_000,
            hidden: 16,
            epochs: 30,
            rate: 0.05,
            l2: 0.0,
            seed: 1,
            dropout: 0.55,
            adagrad: true,
            width: 4,
        }
    }
}

impl Settings {
    /// What the L2 penalty leaves of each weight after an epoch at `rate` over `examples`.
    fn decay(&self, rate: f32, examples: usize) -> f32 {
        1.0 - (rate * self.l2 * examples as f32).min(0.5)
    }

    /// What the model these settings train reads of the lexicon's concepts: the concepts and
    /// their pairs with the product-quantised hidden layer (file format v7, which records the
    /// lexicon it was trained with), none with the others.
    pub fn concepts(&self) -> Concepts {
        if self.hidden > 0 && self.width > 0 {
            Concepts::Paired
        } else {
            Concepts::No
        }
    }

    /// The model before: logistic regression (four bits per bucket and label), at 49,152
    /// buckets unless given others.
    pub fn linear() -> Self {
        Settings {
            buckets: 49_152,
            hidden: 0,
            adagrad: false,
            width: 0,
            epochs: 20,
            rate: 2.0,
            l2: 1e-5,
            dropout: 0.4,
            ..Settings::default()
        }
    }
}

/// Keeps each feature with probability `keep`, scaled up by `1 / keep`, into `kept`.
struct Dropout {
    keep: f32,
    threshold: u64,
}

impl Dropout {
    fn new(share: f32) -> Dropout {
        let keep = (1.0 - share).clamp(0.05, 1.0);
        Dropout {
            keep,
            threshold: (f64::from(keep) * u64::MAX as f64) as u64,
        }
    }
    #[inline]
    fn apply<'a>(
        &self,
        features: &'a [(u32, f32)],
        rng: &mut SplitMix,
        kept: &'a mut Vec<(u32, f32)>,
    ) -> &'a [(u32, f32)] {
        if self.keep >= 1.0 {
            return features;
        }
        kept.clear();
        kept.extend(
            features
                .iter()
                .filter(|_| rng.next() <= self.threshold)
                .map(|(b, v)| (*b, v / self.keep)),
        );
        kept
    }
}

/// A seeded Fisher-Yates shuffle of `0..n`.
pub fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = SplitMix(seed);
    for i in (1..n).rev() {
        let j = (rng.next() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

/// Real-valued weights: `buckets` rows of one weight per label, and a bias per label.
pub struct Weights {
    pub w: Vec<f32>,
    pub bias: Vec<f32>,
}

impl Weights {
    #[inline]
    pub fn logits(&self, features: &[(u32, f32)]) -> Vec<f32> {
        let c = self.bias.len();
        let mut s = self.bias.clone();
        for (b, v) in features {
            let row = &self.w[*b as usize * c..(*b as usize + 1) * c];
            for (x, w) in s.iter_mut().zip(row) {
                *x += v * w;
            }
        }
        s
    }
}

/// Fit real-valued weights for `classes` labels. `examples` may be borrowed (`&[&Example]`), so a
/// fold of a larger set needs no copy.
pub fn fit_weights<E: Borrow<Example>>(examples: &[E], classes: usize, s: &Settings) -> Weights {
    let b = s.buckets as usize;
    let mut cur = Weights {
        w: vec![0f32; b * classes],
        bias: vec![0f32; classes],
    };
    let mut avg = Weights {
        w: vec![0f32; b * classes],
        bias: vec![0f32; classes],
    };
    let mut averaged = 0u32;
    let first_averaged = s.epochs / 2;
    let mut rng = SplitMix(s.seed ^ 0x5eed_d209);
    let dropout = Dropout::new(s.dropout);
    let mut kept: Vec<(u32, f32)> = Vec::new();
    for epoch in 0..s.epochs {
        let rate = s.rate / (1.0 + epoch as f32);
        for i in shuffled(examples.len(), s.seed.wrapping_add(u64::from(epoch))) {
            let ex = examples[i].borrow();
            let features = dropout.apply(&ex.features, &mut rng, &mut kept);
            let p = TaskModel::softmax(&cur.logits(features), 1.0);
            for (k, pk) in p.iter().enumerate() {
                let g = pk - f32::from(u8::from(k == ex.label));
                if g.abs() < 1e-6 {
                    continue;
                }
                cur.bias[k] -= rate * g;
                for (f, v) in features {
                    if let Some(w) = cur.w.get_mut(*f as usize * classes + k) {
                        *w -= rate * g * v;
                    }
                }
            }
        }
        let decay = s.decay(rate, examples.len());
        cur.w.iter_mut().for_each(|w| *w *= decay);
        if epoch >= first_averaged {
            averaged += 1;
            for (a, w) in avg.w.iter_mut().zip(&cur.w) {
                *a += w;
            }
            for (a, w) in avg.bias.iter_mut().zip(&cur.bias) {
                *a += w;
            }
        }
    }
    let n = averaged.max(1) as f32;
    avg.w.iter_mut().for_each(|w| *w /= n);
    avg.bias.iter_mut().for_each(|w| *w /= n);
    avg
}

/// Real-valued weights of a model with a hidden layer: `e`, `buckets` rows of one weight per
/// hidden unit; `b1`, the units' biases; `u`, one row of one weight per class for each unit;
/// `b2`, the classes' biases.
pub struct HiddenWeights {
    pub e: Vec<f32>,
    pub b1: Vec<f32>,
    pub u: Vec<f32>,
    pub b2: Vec<f32>,
}

impl HiddenWeights {
    fn zeros(buckets: usize, h: usize, c: usize) -> HiddenWeights {
        HiddenWeights {
            e: vec![0.0; buckets * h],
            b1: vec![0.0; h],
            u: vec![0.0; h * c],
            b2: vec![0.0; c],
        }
    }
    fn parts_mut(&mut self) -> [&mut Vec<f32>; 4] {
        [&mut self.e, &mut self.b1, &mut self.u, &mut self.b2]
    }
    /// The hidden units' inputs (before rectifying) into `pre`.
    #[inline]
    fn hidden(&self, features: &[(u32, f32)], pre: &mut [f32]) {
        let h = pre.len();
        pre.copy_from_slice(&self.b1);
        for (f, v) in features {
            if let Some(row) = self.e.get(*f as usize * h..(*f as usize + 1) * h) {
                for (x, w) in pre.iter_mut().zip(row) {
                    *x += v * w;
                }
            }
        }
    }
}

/// Fit a model with `s.hidden` rectified units: the features' rows (`e`) summed into the units,
/// the units into the classes' logits. The rows start small and random (with none, no unit would
/// ever activate), the units' output weights at Glorot's scale.
pub fn fit_hidden<E: Borrow<Example>>(
    examples: &[E],
    classes: usize,
    s: &Settings,
) -> HiddenWeights {
    let (b, h, c) = (s.buckets as usize, s.hidden.max(1) as usize, classes);
    let mut rng = SplitMix(s.seed ^ 0x1234_5678);
    let glorot = (6.0 / (h + c) as f32).sqrt();
    let mut cur = HiddenWeights::zeros(b, h, c);
    cur.e.iter_mut().for_each(|w| *w = rng.signed_unit() * 0.05);
    cur.u
        .iter_mut()
        .for_each(|w| *w = rng.signed_unit() * glorot);
    let mut avg = HiddenWeights::zeros(b, h, c);
    let mut averaged = 0u32;
    let dropout = Dropout::new(s.dropout);
    let mut kept: Vec<(u32, f32)> = Vec::new();
    let (mut pre, mut dh) = (vec![0f32; h], vec![0f32; h]);
    let mut sq = s.adagrad.then(|| HiddenWeights::zeros(b, h, c));
    for epoch in 0..s.epochs {
        let rate = if s.adagrad {
            s.rate
        } else {
            s.rate / (1.0 + epoch as f32)
        };
        for i in shuffled(examples.len(), s.seed.wrapping_add(u64::from(epoch))) {
            let ex = examples[i].borrow();
            let features = dropout.apply(&ex.features, &mut rng, &mut kept);
            cur.hidden(features, &mut pre);
            let p = TaskModel::softmax(&rectified_scores(&pre, &cur.u, &cur.b2), 1.0);
            dh.iter_mut().for_each(|d| *d = 0.0);
            for (k, pk) in p.iter().enumerate() {
                let g = pk - f32::from(u8::from(k == ex.label));
                step(
                    &mut cur.b2[k],
                    sq.as_mut().map(|q| &mut q.b2[k]),
                    rate,
                    g,
                    1.0,
                );
                for (j, x) in pre.iter().enumerate() {
                    if *x > 0.0 {
                        dh[j] += g * cur.u[j * c + k];
                        let at = j * c + k;
                        step(
                            &mut cur.u[at],
                            sq.as_mut().map(|q| &mut q.u[at]),
                            rate,
                            g,
                            *x,
                        );
                    }
                }
            }
            for (j, (d, x)) in dh.iter_mut().zip(&pre).enumerate() {
                if *x <= 0.0 {
                    *d = 0.0;
                }
                step(
                    &mut cur.b1[j],
                    sq.as_mut().map(|q| &mut q.b1[j]),
                    rate,
                    *d,
                    1.0,
                );
            }
            for (f, v) in features {
                let at = *f as usize * h;
                let Some(row) = cur.e.get_mut(at..at + h) else {
                    continue;
                };
                match sq.as_mut().and_then(|q| q.e.get_mut(at..at + h)) {
                    Some(sq_row) => adagrad_row(row, sq_row, &dh, rate, *v),
                    None => {
                        for (w, d) in row.iter_mut().zip(&dh) {
                            step(w, None, rate, *v, *d);
                        }
                    }
                }
            }
        }
        if s.l2 > 0.0 {
            let decay = s.decay(rate, examples.len());
            cur.e.iter_mut().for_each(|w| *w *= decay);
        }
        if epoch >= s.epochs / 2 {
            averaged += 1;
            for (a, w) in avg.parts_mut().into_iter().zip(cur.parts_mut()) {
                a.iter_mut().zip(w.iter()).for_each(|(a, w)| *a += w);
            }
        }
    }
    let n = averaged.max(1) as f32;
    for part in avg.parts_mut() {
        part.iter_mut().for_each(|w| *w /= n);
    }
    avg
}

/// One gradient step on `w` against the gradient `a * b`: at `rate` (computed as `rate * a * b`,
/// in that order), or with AdaGrad's per-weight rate when `sq` holds the weight's sum of squared
/// gradients. Inlined: `fit_hidden` is generic, so it is compiled in the crate that calls it,
/// and without this a build without link-time optimisation calls `step` per weight.
#[inline]
fn step(w: &mut f32, sq: Option<&mut f32>, rate: f32, a: f32, b: f32) {
    match sq {
        None => *w -= rate * a * b,
        Some(q) => {
            let g = a * b;
            *q += g * g;
            *w -= rate * g / (q.sqrt() + 1e-8);
        }
    }
}

/// `step` with AdaGrad over a whole row at once (`w[j]` against `a * b[j]`, `sq[j]` its sum of
/// squares): with the sums known to be there, the compiler vectorises the loop, and this is most
/// of training's time.
#[inline]
fn adagrad_row(row: &mut [f32], sq: &mut [f32], b: &[f32], rate: f32, a: f32) {
    for ((w, q), b) in row.iter_mut().zip(sq.iter_mut()).zip(b) {
        step(w, Some(q), rate, a, *b);
    }
}

/// Train a model (temperature 1: calibrate it with `fit_temperature` on held-out scores): with a
/// hidden layer when `s.hidden` is above 0, else logistic regression.
pub fn fit<E: Borrow<Example>>(examples: &[E], labels: Vec<String>, s: &Settings) -> TaskModel {
    if s.hidden > 0 {
        let w = fit_hidden(examples, labels.len(), s);
        let units = w.b1.len();
        let rows = match s.width {
            0 => UnitRows::Coded(Coded::code(units, &w.e)),
            width => {
                // The widest slice up to `width` that cuts a row evenly (the CLI refuses others).
                let width = (1..=(width as usize).min(units))
                    .rev()
                    .find(|w| units % w == 0)
                    .unwrap_or(1);
                let (books, codes) =
                    codebook::fit(&w.e, units, width, &reached(examples, s.buckets));
                UnitRows::Product {
                    rows: Product {
                        width,
                        books,
                        codes,
                    },
                    reads: Reads::Pairs {
                        lexicon: lexicon::fingerprint(),
                    },
                }
            }
        };
        return TaskModel::from_hidden(labels, s.buckets, rows, w.b1, w.u, w.b2);
    }
    let weights = fit_weights(examples, labels.len(), s);
    TaskModel::from_weights(labels, s.buckets, weights.bias, &weights.w)
}

/// Per bucket, how many of `examples` have a feature in it.
fn reached<E: Borrow<Example>>(examples: &[E], buckets: u32) -> Vec<f32> {
    let mut count = vec![0f32; buckets as usize];
    for ex in examples {
        for (b, _) in &ex.borrow().features {
            if let Some(c) = count.get_mut(*b as usize) {
                *c += 1.0;
            }
        }
    }
    count
}

/// The temperature with the lowest negative log-likelihood of `(logits, label)` pairs, on a grid.
pub fn fit_temperature(scored: &[(Vec<f32>, usize)]) -> f32 {
    let mut best = (f32::INFINITY, 1.0f32);
    let mut t = 0.1f32;
    while t <= 50.0 {
        let nll: f32 = scored
            .iter()
            .map(|(s, k)| -TaskModel::softmax(s, t)[*k].max(1e-9).ln())
            .sum();
        if nll < best.0 {
            best = (nll, t);
        }
        t *= 1.05;
    }
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffles_are_seeded_permutations() {
        let a = shuffled(100, 7);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
        assert_eq!(a, shuffled(100, 7));
        assert_ne!(a, shuffled(100, 8));
    }

    #[test]
    fn the_temperature_softens_an_overconfident_scorer() {
        // Always 10 points sure, right half the time: a high temperature fits.
        let scored: Vec<(Vec<f32>, usize)> = (0..100).map(|i| (vec![10.0, 0.0], i % 2)).collect();
        assert!(fit_temperature(&scored) > 5.0);
        let right: Vec<(Vec<f32>, usize)> = (0..100).map(|_| (vec![1.0, 0.0], 0)).collect();
        assert!(fit_temperature(&right) < 0.2);
    }
}
