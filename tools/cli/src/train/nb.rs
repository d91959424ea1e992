//! The previous task model, multinomial naive Bayes, kept to compare against
//! (`taskrouter train --compare`): trained on counts of the same hashed features the logistic
//! regression reads, or on the features the v1 model read (words, word bigrams and character
//! 4-grams of the whole prompt, its first 4,096 characters).

use std::borrow::Borrow;
use taskrouter::task_model::features::fnv1a;
use taskrouter::task_model::train::Example;

pub struct NaiveBayes {
    classes: usize,
    priors: Vec<f32>,
    /// `buckets` rows of one log-likelihood per class.
    logs: Vec<f32>,
}

impl NaiveBayes {
    pub fn fit<E: Borrow<Example>>(examples: &[E], classes: usize, buckets: u32) -> NaiveBayes {
        let b = buckets as usize;
        let mut counts = vec![0f64; b * classes];
        let mut totals = vec![0f64; classes];
        let mut docs = vec![0f64; classes];
        for ex in examples.iter().map(Borrow::borrow) {
            docs[ex.label] += 1.0;
            for (f, v) in &ex.features {
                counts[*f as usize * classes + ex.label] += f64::from(*v);
                totals[ex.label] += f64::from(*v);
            }
        }
        let n: f64 = docs.iter().sum();
        let alpha = 0.1;
        let logs = counts
            .iter()
            .enumerate()
            .map(|(i, c)| ((c + alpha) / (totals[i % classes] + alpha * b as f64)).ln() as f32)
            .collect();
        NaiveBayes {
            classes,
            priors: docs
                .iter()
                .map(|d| ((d + 1.0) / (n + classes as f64)).ln() as f32)
                .collect(),
            logs,
        }
    }

    pub fn logits(&self, features: &[(u32, f32)]) -> Vec<f32> {
        let mut s = self.priors.clone();
        for (f, v) in features {
            let at = *f as usize * self.classes;
            for (x, l) in s.iter_mut().zip(&self.logs[at..at + self.classes]) {
                *x += v * l;
            }
        }
        s
    }
}

/// The v1 model's features of a prompt, as counts.
pub fn v1_features(text: &str, buckets: u32) -> Vec<(u32, f32)> {
    let cut = text.char_indices().nth(4096).map_or(text.len(), |(i, _)| i);
    let lowered = text[..cut].to_lowercase();
    let mut out: Vec<u32> = Vec::new();
    let mut previous: Option<&str> = None;
    for w in lowered
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        out.push(fnv1a(1, &[w.as_bytes()]) % buckets);
        if let Some(p) = previous {
            out.push(fnv1a(2, &[p.as_bytes(), b" ", w.as_bytes()]) % buckets);
        }
        previous = Some(w);
        let chars: Vec<char> = std::iter::once('_')
            .chain(w.chars())
            .chain(std::iter::once('_'))
            .collect();
        for g in chars.windows(4) {
            let s: String = g.iter().collect();
            out.push(fnv1a(3, &[s.as_bytes()]) % buckets);
        }
    }
    out.sort_unstable();
    let mut merged: Vec<(u32, f32)> = Vec::new();
    for f in out {
        match merged.last_mut() {
            Some(last) if last.0 == f => last.1 += 1.0,
            _ => merged.push((f, 1.0)),
        }
    }
    merged
}
