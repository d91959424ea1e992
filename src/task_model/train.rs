//! Training the task model: multinomial logistic regression by stochastic gradient descent over
//! precomputed features, with the weights averaged over the later epochs; and the temperature
//! that calibrates its probabilities. Deterministic: the same examples and settings give the same
//! bytes.

use super::TaskModel;
use std::borrow::Borrow;

/// One labelled prompt: its features (`features`) and its label's index.
pub struct Example {
    pub features: Vec<(u32, f32)>,
    pub label: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// Hash buckets (any count; features are hashed modulo it); the model has four bits per
    /// bucket and label.
    pub buckets: u32,
    pub epochs: u32,
    /// The learning rate of the first epoch; epoch `e` uses `rate / (1 + e)`.
    pub rate: f32,
    /// L2 penalty, applied once per epoch.
    pub l2: f32,
    /// Orders the examples in each epoch.
    pub seed: u64,
    /// Share of an example's features left out at each step of training (the rest scaled up to
    /// match), so that no few words carry a label alone: 0 trains on every feature.
    pub dropout: f32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            buckets: 49_152,
            epochs: 20,
            rate: 2.0,
            l2: 1e-5,
            seed: 1,
            dropout: 0.4,
        }
    }
}

/// SplitMix64: a small, fixed generator, so training orders examples the same everywhere.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
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
    let keep = (1.0 - s.dropout).clamp(0.05, 1.0);
    let threshold = (f64::from(keep) * u64::MAX as f64) as u64;
    let mut kept: Vec<(u32, f32)> = Vec::new();
    for epoch in 0..s.epochs {
        let rate = s.rate / (1.0 + epoch as f32);
        for i in shuffled(examples.len(), s.seed.wrapping_add(u64::from(epoch))) {
            let ex = examples[i].borrow();
            let features: &[(u32, f32)] = if keep < 1.0 {
                kept.clear();
                kept.extend(
                    ex.features
                        .iter()
                        .filter(|_| rng.next() <= threshold)
                        .map(|(b, v)| (*b, v / keep)),
                );
                &kept
            } else {
                &ex.features
            };
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
        let decay = 1.0 - (rate * s.l2 * examples.len() as f32).min(0.5);
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

/// Train a model (temperature 1: calibrate it with `fit_temperature` on held-out scores).
pub fn fit<E: Borrow<Example>>(examples: &[E], labels: Vec<String>, s: &Settings) -> TaskModel {
    let weights = fit_weights(examples, labels.len(), s);
    TaskModel::from_weights(labels, s.buckets, weights.bias, &weights.w)
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
