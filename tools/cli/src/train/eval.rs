//! The figures a trained task model is judged by, from `(probabilities, actual label)` pairs:
//! accuracy, per-label and macro F1, the confusion matrix, expected calibration error, coverage
//! and false accepts at a threshold (`out_of_scope` rows must fall below it), and what a cascade
//! below a threshold would ask.

use serde_json::{json, Value};
use taskrouter::task_model::OUT_OF_SCOPE;

/// The scored rows of one evaluation.
pub struct Scored<'a> {
    pub labels: &'a [String],
    /// Probabilities per label, and the actual label's index.
    pub rows: Vec<(Vec<f32>, usize)>,
}

pub struct Report {
    pub rows: usize,
    pub accuracy: f64,
    pub macro_f1: f64,
    /// Macro-F1 over the tasks alone, on the in-scope rows, choosing among tasks only.
    pub task_macro_f1: f64,
    /// Accuracy and macro-F1 of what a router does at the threshold: the best task when it
    /// reaches it, else `out_of_scope` (the default route).
    pub routed_accuracy: f64,
    pub routed_macro_f1: f64,
    pub f1: Vec<f64>,
    pub confusion: Vec<Vec<usize>>,
    pub ece: f64,
    /// In-scope rows whose best task reaches the threshold.
    pub coverage: f64,
    /// Out-of-scope rows whose best task reaches the threshold (None without such rows).
    pub false_accept: Option<f64>,
    /// Per threshold: share of in-scope rows below it, accuracy above and below, and the share
    /// of out-of-scope rows at or above it (false accepts; None without such rows).
    pub cascade: Vec<(f64, f64, f64, f64, Option<f64>)>,
}

fn argmax(p: &[f32], skip: Option<usize>) -> (usize, f32) {
    let mut best = (usize::MAX, f32::NEG_INFINITY);
    for (k, v) in p.iter().enumerate() {
        if Some(k) != skip && *v > best.1 {
            best = (k, *v);
        }
    }
    best
}

/// What a router does with `p` at `threshold`: the best task (never `oos`) when it reaches the
/// threshold, else `oos` (the default route); the best task when there is no `oos` label.
pub fn routed(p: &[f32], oos: Option<usize>, threshold: f64) -> usize {
    let (task, task_p) = argmax(p, oos);
    match oos {
        Some(o) if f64::from(task_p) < threshold => o,
        _ => task,
    }
}

fn f1s(confusion: &[Vec<usize>], classes: &[usize]) -> Vec<f64> {
    classes
        .iter()
        .map(|&k| {
            let tp = confusion[k][k] as f64;
            let predicted: f64 = confusion.iter().map(|row| row[k] as f64).sum();
            let actual: f64 = confusion[k].iter().sum::<usize>() as f64;
            let (p, r) = (tp / predicted.max(1.0), tp / actual.max(1.0));
            if p + r > 0.0 {
                2.0 * p * r / (p + r)
            } else {
                0.0
            }
        })
        .collect()
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

impl Scored<'_> {
    pub fn report(&self, threshold: f64) -> Report {
        let n = self.labels.len();
        let oos = self.labels.iter().position(|l| l == OUT_OF_SCOPE);
        let mut confusion = vec![vec![0usize; n]; n];
        let mut task_confusion = vec![vec![0usize; n]; n];
        let mut routed = vec![vec![0usize; n]; n];
        let mut bins = [(0f64, 0f64, 0f64); 10];
        let (mut inscope, mut covered, mut outscope, mut accepted) = (0, 0, 0, 0);
        let mut sure: Vec<(f32, bool)> = Vec::new();
        let mut outside: Vec<f32> = Vec::new();
        for (p, actual) in &self.rows {
            let (k, top) = argmax(p, None);
            confusion[*actual][k] += 1;
            let bin = &mut bins[((top * 10.0) as usize).min(9)];
            bin.0 += 1.0;
            bin.1 += f64::from(top);
            bin.2 += f64::from(u8::from(k == *actual));
            let (task, task_p) = argmax(p, oos);
            routed[*actual][self::routed(p, oos, threshold)] += 1;
            if Some(*actual) == oos {
                outscope += 1;
                accepted += usize::from(f64::from(task_p) >= threshold);
                outside.push(task_p);
            } else {
                inscope += 1;
                covered += usize::from(f64::from(task_p) >= threshold);
                task_confusion[*actual][task] += 1;
                sure.push((task_p, task == *actual));
            }
        }
        let total = self.rows.len().max(1) as f64;
        let all: Vec<usize> = (0..n).collect();
        let tasks: Vec<usize> = (0..n).filter(|k| Some(*k) != oos).collect();
        let f1 = f1s(&confusion, &all);
        let cascade = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
            .iter()
            .map(|t| {
                let (below, above): (Vec<_>, Vec<_>) =
                    sure.iter().partition(|(p, _)| f64::from(*p) < *t);
                let acc = |v: &[&(f32, bool)]| {
                    v.iter().filter(|(_, right)| *right).count() as f64 / v.len().max(1) as f64
                };
                let false_accepts = (!outside.is_empty()).then(|| {
                    outside.iter().filter(|p| f64::from(**p) >= *t).count() as f64
                        / outside.len() as f64
                });
                (
                    *t,
                    below.len() as f64 / sure.len().max(1) as f64,
                    acc(&above),
                    acc(&below),
                    false_accepts,
                )
            })
            .collect();
        Report {
            rows: self.rows.len(),
            accuracy: (0..n).map(|k| confusion[k][k]).sum::<usize>() as f64 / total,
            macro_f1: mean(&f1),
            task_macro_f1: mean(&f1s(&task_confusion, &tasks)),
            routed_accuracy: (0..n).map(|k| routed[k][k]).sum::<usize>() as f64 / total,
            routed_macro_f1: mean(&f1s(&routed, &all)),
            f1,
            confusion,
            ece: bins
                .iter()
                .map(|(count, conf, right)| (conf - right).abs() / total * (count / count.max(1.0)))
                .sum(),
            coverage: covered as f64 / f64::from(inscope.max(1)),
            false_accept: (outscope > 0).then(|| accepted as f64 / f64::from(outscope)),
            cascade,
        }
    }
}

impl Report {
    pub fn to_json(&self, labels: &[String]) -> Value {
        json!({
            "rows": self.rows, "accuracy": self.accuracy, "macro_f1": self.macro_f1,
            "task_macro_f1": self.task_macro_f1, "routed_accuracy": self.routed_accuracy,
            "routed_macro_f1": self.routed_macro_f1, "ece": self.ece, "coverage": self.coverage,
            "false_accept": self.false_accept, "labels": labels, "f1": self.f1,
            "confusion": self.confusion,
            "thresholds": self.cascade.iter().map(|(t, below, above_acc, below_acc, fa)| json!({
                "threshold": t, "share_below": below, "accuracy_above": above_acc, "accuracy_below": below_acc,
                "false_accept": fa,
            })).collect::<Vec<_>>(),
        })
    }

    /// The figures, the confusion matrix with per-label F1, and the cascade table, as text.
    pub fn print(&self, title: &str, labels: &[String], threshold: f64) {
        out!("\n{title}: {} prompts", self.rows);
        out!(
            "  accuracy {:.3}, macro-F1 {:.3} (15 labels), tasks-only macro-F1 {:.3}, ECE {:.3}",
            self.accuracy,
            self.macro_f1,
            self.task_macro_f1,
            self.ece
        );
        let fa = self
            .false_accept
            .map_or("n/a (no out_of_scope rows)".to_string(), |f| {
                format!("{f:.3}")
            });
        out!(
            "  at min_score {threshold}: coverage {:.3} of in-scope prompts, out-of-scope false accepts {fa}",
            self.coverage
        );
        out!(
            "  routed at {threshold} (below it counts as out_of_scope): accuracy {:.3}, macro-F1 {:.3}",
            self.routed_accuracy,
            self.routed_macro_f1
        );
        let w = labels.iter().map(String::len).max().unwrap_or(5);
        let most = self.confusion.iter().flatten().max().copied().unwrap_or(0);
        let cell = most.to_string().len().max(3) + 1;
        out!(
            "  {:>w$}     {}",
            "actual \\ predicted",
            (0..labels.len())
                .map(|k| format!("{k:>cell$}"))
                .collect::<String>()
        );
        for (k, row) in self.confusion.iter().enumerate() {
            out!(
                "  {:>2} {:w$}  {}  F1 {:.2}",
                k,
                labels[k],
                row.iter()
                    .map(|c| format!("{c:>cell$}"))
                    .collect::<String>(),
                self.f1[k]
            );
        }
        out!("  threshold  in-scope below it  accuracy at/above  accuracy below  out-of-scope at/above");
        for (t, below, above, under, fa) in &self.cascade {
            let fa = fa.map_or("-".to_string(), |f| format!("{f:.3}"));
            out!("  {t:>9.1}  {below:>17.3}  {above:>17.3}  {under:>14.3}  {fa:>21}");
        }
    }
}
