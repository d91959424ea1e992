//! The built-in task classifier: multinomial naive Bayes over hashed features of the prompt (word
//! unigrams and bigrams, and character 4-grams, of the last user message, with the system prompt
//! in separate hash spaces), with probabilities calibrated by a temperature fitted on held-out data.
//! Trained by `taskrouter train`, stored as a compact, versioned, checksummed file; a default model
//! is bundled in the Worker. Runs in the wasm, no network.
//!
//! File format v1: `TRCLS` magic, version (u16 LE), classes and buckets (u32 LE), temperature
//! (f32), labels (u16 length + UTF-8 each), per class the prior (f32) and the quantisation offset
//! and step (f32, f32) then `buckets` u8 log-likelihood codes; then the SHA-256 of all of it.

use sha2::{Digest, Sha256};

const MAGIC: &[u8; 5] = b"TRCLS";
const VERSION: u16 = 1;
/// Text read per prompt part; enough to know the task, and bounds the cost of an 8 KB prompt.
const MAX_CHARS: usize = 4096;

#[derive(Debug, Clone, PartialEq)]
pub struct TaskModel {
    pub labels: Vec<String>,
    buckets: u32,
    temperature: f32,
    priors: Vec<f32>,
    /// Per class: offset and step to decode the u8 codes into log-likelihoods.
    scale: Vec<(f32, f32)>,
    codes: Vec<u8>,
}

/// FNV-1a over several byte slices, as if joined, seeded by the feature space.
fn fnv1a(salt: u32, parts: &[&[u8]]) -> u32 {
    let mut h: u32 = 0x811c_9dc5 ^ salt.wrapping_mul(0x0100_0193);
    for part in parts {
        for b in *part {
            h ^= u32::from(*b);
            h = h.wrapping_mul(0x0100_0193);
        }
    }
    h
}

/// The hashed features of a prompt (user message, then system prompt in its own hash spaces),
/// as bucket indexes (repeats count).
pub fn features(user: &str, system: &str, buckets: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut chars: Vec<char> = Vec::new();
    for (text, salt) in [(user, 0u32), (system, 8u32)] {
        let cut = text
            .char_indices()
            .nth(MAX_CHARS)
            .map_or(text.len(), |(i, _)| i);
        let lowered = text[..cut].to_lowercase();
        let mut previous: Option<&str> = None;
        for w in lowered
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
        {
            out.push(fnv1a(salt + 1, &[w.as_bytes()]) % buckets);
            if let Some(p) = previous {
                out.push(fnv1a(salt + 2, &[p.as_bytes(), b" ", w.as_bytes()]) % buckets);
            }
            previous = Some(w);
            // Character 4-grams of `_word_`, hashed without building strings.
            chars.clear();
            chars.push('_');
            chars.extend(w.chars());
            chars.push('_');
            for g in chars.windows(4) {
                let mut buf = [0u8; 16];
                let mut n = 0;
                for c in g {
                    n += c.encode_utf8(&mut buf[n..]).len();
                }
                out.push(fnv1a(salt + 3, &[&buf[..n]]) % buckets);
            }
        }
    }
    out
}

impl TaskModel {
    /// Train on `(text, label)` examples (text = the user message). Deterministic.
    pub fn train(examples: &[(String, String)], buckets: u32) -> TaskModel {
        let mut labels: Vec<String> = examples.iter().map(|(_, l)| l.clone()).collect();
        labels.sort();
        labels.dedup();
        let c = labels.len();
        let b = buckets as usize;
        let mut counts = vec![0f64; c * b];
        let mut totals = vec![0f64; c];
        let mut docs = vec![0f64; c];
        for (text, label) in examples {
            let Ok(k) = labels.binary_search(label) else {
                continue;
            };
            docs[k] += 1.0;
            for f in features(text, "", buckets) {
                counts[k * b + f as usize] += 1.0;
                totals[k] += 1.0;
            }
        }
        let n: f64 = docs.iter().sum();
        let alpha = 0.1;
        let mut priors = Vec::with_capacity(c);
        let mut scale = Vec::with_capacity(c);
        let mut codes = Vec::with_capacity(c * b);
        for k in 0..c {
            priors.push(((docs[k] + 1.0) / (n + c as f64)).ln() as f32);
            let logs: Vec<f64> = (0..b)
                .map(|f| ((counts[k * b + f] + alpha) / (totals[k] + alpha * b as f64)).ln())
                .collect();
            let lo = logs.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let step = ((hi - lo) / 255.0).max(1e-9);
            scale.push((lo as f32, step as f32));
            codes.extend(
                logs.iter()
                    .map(|l| ((l - lo) / step).round().clamp(0.0, 255.0) as u8),
            );
        }
        TaskModel {
            labels,
            buckets,
            temperature: 1.0,
            priors,
            scale,
            codes,
        }
    }

    fn raw_scores(&self, user: &str, system: &str) -> Vec<f32> {
        let b = self.buckets as usize;
        let feats = features(user, system, self.buckets);
        (0..self.labels.len())
            .map(|k| {
                let (lo, step) = self.scale[k];
                let row = &self.codes[k * b..(k + 1) * b];
                let sum: u32 = feats.iter().map(|f| u32::from(row[*f as usize])).sum();
                self.priors[k] + feats.len() as f32 * lo + sum as f32 * step
            })
            .collect()
    }

    fn softmax(scores: &[f32], temperature: f32) -> Vec<f32> {
        let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let exps: Vec<f32> = scores
            .iter()
            .map(|s| ((s - max) / temperature).exp())
            .collect();
        let sum: f32 = exps.iter().sum();
        exps.iter().map(|e| e / sum).collect()
    }

    /// Calibrated probability per label, in `labels` order.
    pub fn probabilities(&self, user: &str, system: &str) -> Vec<f32> {
        Self::softmax(&self.raw_scores(user, system), self.temperature)
    }

    /// The most likely label and its probability.
    pub fn predict(&self, user: &str, system: &str) -> (&str, f32) {
        let p = self.probabilities(user, system);
        let (k, best) =
            p.iter().enumerate().fold(
                (0, 0.0f32),
                |acc, (i, v)| if *v > acc.1 { (i, *v) } else { acc },
            );
        (self.labels.get(k).map_or("", String::as_str), best)
    }

    /// Fit the temperature on held-out examples (lowest negative log-likelihood on a grid).
    pub fn calibrate(&mut self, held_out: &[(String, String)]) {
        let scored: Vec<(Vec<f32>, usize)> = held_out
            .iter()
            .filter_map(|(t, l)| Some((self.raw_scores(t, ""), self.labels.binary_search(l).ok()?)))
            .collect();
        if scored.is_empty() {
            return;
        }
        let mut best = (f32::INFINITY, 1.0f32);
        let mut t = 0.25f32;
        while t <= 256.0 {
            let nll: f32 = scored
                .iter()
                .map(|(s, k)| -Self::softmax(s, t)[*k].max(1e-9).ln())
                .sum();
            if nll < best.0 {
                best = (nll, t);
            }
            t *= 1.1;
        }
        self.temperature = best.1;
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(self.labels.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.buckets.to_le_bytes());
        out.extend_from_slice(&self.temperature.to_le_bytes());
        for l in &self.labels {
            out.extend_from_slice(&(l.len() as u16).to_le_bytes());
            out.extend_from_slice(l.as_bytes());
        }
        let b = self.buckets as usize;
        for k in 0..self.labels.len() {
            out.extend_from_slice(&self.priors[k].to_le_bytes());
            out.extend_from_slice(&self.scale[k].0.to_le_bytes());
            out.extend_from_slice(&self.scale[k].1.to_le_bytes());
            out.extend_from_slice(&self.codes[k * b..(k + 1) * b]);
        }
        let sum = Sha256::digest(&out);
        out.extend_from_slice(&sum);
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<TaskModel, String> {
        if bytes.len() < 32 + 19 {
            return Err("not a task model (too short)".into());
        }
        let (body, sum) = bytes.split_at(bytes.len() - 32);
        if Sha256::digest(body).as_slice() != sum {
            return Err("the task model's checksum does not match: the file is damaged".into());
        }
        let mut r = Reader { b: body, i: 0 };
        if r.take(5)? != MAGIC {
            return Err("not a task model (bad magic)".into());
        }
        let version = u16::from_le_bytes(r.array()?);
        if version != VERSION {
            return Err(format!(
                "task model version {version} is not supported (this router reads {VERSION})"
            ));
        }
        let classes = u32::from_le_bytes(r.array()?) as usize;
        let buckets = u32::from_le_bytes(r.array()?);
        let temperature = f32::from_le_bytes(r.array()?);
        if classes == 0 || buckets == 0 || classes > 1000 || buckets > 1 << 24 {
            return Err("the task model's sizes are out of range".into());
        }
        let mut labels = Vec::with_capacity(classes);
        for _ in 0..classes {
            let len = u16::from_le_bytes(r.array()?) as usize;
            labels.push(
                String::from_utf8(r.take(len)?.to_vec()).map_err(|_| "a label is not UTF-8")?,
            );
        }
        let (mut priors, mut scale, mut codes) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..classes {
            priors.push(f32::from_le_bytes(r.array()?));
            scale.push((
                f32::from_le_bytes(r.array()?),
                f32::from_le_bytes(r.array()?),
            ));
            codes.extend_from_slice(r.take(buckets as usize)?);
        }
        if r.i != body.len() {
            return Err("the task model has trailing bytes".into());
        }
        Ok(TaskModel {
            labels,
            buckets,
            temperature,
            priors,
            scale,
            codes,
        })
    }
}

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let s = self
            .b
            .get(self.i..self.i + n)
            .ok_or("the task model is truncated")?;
        self.i += n;
        Ok(s)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
}

/// The default model, trained from data/tasks/tasks.jsonl and bundled in the Worker.
pub const BUILTIN: &[u8] = include_bytes!("../models/tasks-v1.trcls");

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> Vec<(String, String)> {
        let rows = [
            ("translate this into French please", "translation"),
            ("how do you say hello in Spanish", "translation"),
            ("translate the email to German", "translation"),
            ("what is 12 times 7", "reasoning"),
            ("solve for x: 3x + 2 = 11", "reasoning"),
            ("calculate the interest on 100 at 5%", "reasoning"),
        ];
        rows.iter()
            .map(|(t, l)| (t.to_string(), l.to_string()))
            .collect()
    }

    #[test]
    fn features_are_hashed_bounded_and_spaced_apart() {
        let f = features("Hello world", "", 1024);
        assert!(f.iter().all(|x| *x < 1024));
        assert_eq!(
            f.len(),
            2 + 1 + 4 + 4,
            "2 words, 1 bigram, 4 + 4 char 4-grams of _hello_ and _world_"
        );
        assert_ne!(
            features("x", "", 1 << 20),
            features("", "x", 1 << 20),
            "system text has its own space"
        );
        assert_eq!(features("HELLO", "", 64), features("hello", "", 64));
        let long = "word ".repeat(5000);
        assert!(
            features(&long, "", 64).len() <= 4096 / 5 * 6 + 10,
            "the text read is bounded"
        );
    }

    #[test]
    fn trains_predicts_and_round_trips() {
        let mut m = TaskModel::train(&data(), 4096);
        m.calibrate(&data());
        assert_eq!(
            m.predict("please translate to Italian", "").0,
            "translation"
        );
        assert_eq!(m.predict("what is 3 times 9", "").0, "reasoning");
        let p = m.probabilities("anything", "");
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-4);
        let bytes = m.to_bytes();
        assert_eq!(TaskModel::from_bytes(&bytes).unwrap(), m);
        assert_eq!(
            TaskModel::train(&data(), 4096).to_bytes(),
            TaskModel::train(&data(), 4096).to_bytes(),
            "deterministic"
        );
        let mut damaged = bytes.clone();
        damaged[20] ^= 1;
        assert!(TaskModel::from_bytes(&damaged)
            .unwrap_err()
            .contains("checksum"));
        assert!(TaskModel::from_bytes(b"nope").is_err());
    }

    #[test]
    fn the_builtin_model_loads_and_knows_the_tasks() {
        let m = TaskModel::from_bytes(BUILTIN).unwrap();
        assert_eq!(m.labels.len(), 14);
        assert!(
            BUILTIN.len() < 300 * 1024,
            "model budget: {} bytes",
            BUILTIN.len()
        );
        for (text, want) in [
            ("Translate this into Japanese: 'Your order has shipped.'", "translation"),
            ("Write a Python function that parses a CSV file and returns the rows.", "code_generation"),
            ("I was charged twice for my subscription this month, please refund me.", "billing"),
            ("What is 17 times 23?", "reasoning"),
            ("Summarise the following meeting notes in three bullet points: we agreed to ship in May.", "summarisation"),
        ] {
            assert_eq!(m.predict(text, "").0, want, "{text}");
        }
    }

    #[test]
    fn calibrated_probabilities_are_sane() {
        let m = TaskModel::from_bytes(BUILTIN).unwrap();
        assert!(m.temperature > 0.0 && m.temperature.is_finite());
        // Expected calibration error over the shipped data (10 bins of top probability): the
        // model's confidence tracks how often it is right.
        let rows: Vec<serde_json::Value> = include_str!("../data/tasks/tasks.jsonl")
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let mut bins = [(0f64, 0f64, 0f64); 10];
        for r in &rows {
            let (label, p) = m.predict(r["text"].as_str().unwrap(), "");
            let bin = &mut bins[((p * 10.0) as usize).min(9)];
            bin.0 += 1.0;
            bin.1 += f64::from(p);
            bin.2 += f64::from(u8::from(label == r["label"].as_str().unwrap()));
        }
        let ece: f64 = bins
            .iter()
            .map(|(n, conf, right)| (conf - right).abs() / rows.len() as f64 * (n / n.max(1.0)))
            .sum();
        assert!(ece < 0.1, "expected calibration error {ece:.3}: {bins:?}");
        // A prompt with nothing to go on is not labelled with confidence.
        let (_, p) = m.predict("ok", "");
        assert!(p < 0.9, "{p}");
        let p = m.probabilities("", "");
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-4);
    }
}
