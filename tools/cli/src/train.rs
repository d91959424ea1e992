//! `train <data.jsonl> --out <model> [--seed N] [--buckets N] [--json]`: trains the built-in task
//! classifier (`taskrouter::task_model`) on labelled JSONL (`{"text", "label"}`), holding out a
//! seeded 20 % to report accuracy, macro-F1 and the confusion matrix, and to calibrate the
//! probabilities; writes the versioned, checksummed model file. Same data and seed, same bytes.

use crate::rules_cmds::{flag, has, INVALID, OK, USAGE};
use serde_json::{json, Value};
use taskrouter::plan::{Random, SeededRandom};
use taskrouter::task_model::TaskModel;

pub fn train(file: &str, args: &[String]) -> i32 {
    let Some(out) = flag(args, "--out") else {
        eprintln!("taskrouter: train needs --out <model file>");
        return USAGE;
    };
    let seed = flag(args, "--seed")
        .and_then(|s| s.parse().ok())
        .unwrap_or(1u64);
    let buckets = flag(args, "--buckets")
        .and_then(|s| s.parse().ok())
        .unwrap_or(8192u32);
    let Ok(text) = std::fs::read_to_string(file) else {
        eprintln!("taskrouter: cannot read {file}");
        return USAGE;
    };
    let mut rows = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        match serde_json::from_str::<Value>(line) {
            Ok(v) => match (v["text"].as_str(), v["label"].as_str()) {
                (Some(t), Some(l)) => rows.push((t.to_string(), l.to_string())),
                _ => {
                    eprintln!("taskrouter: {file}:{}: needs \"text\" and \"label\"", i + 1);
                    return INVALID;
                }
            },
            Err(e) => {
                eprintln!("taskrouter: {file}:{}: {e}", i + 1);
                return INVALID;
            }
        }
    }
    // A seeded shuffle (Fisher-Yates), then 80 % to train, 20 % held out.
    let rng = SeededRandom::new(seed);
    for i in (1..rows.len()).rev() {
        let j = (rng.next_f64() * (i + 1) as f64) as usize % (i + 1);
        rows.swap(i, j);
    }
    let cut = rows.len() * 4 / 5;
    let (train_rows, held) = rows.split_at(cut);
    let mut model = TaskModel::train(train_rows, buckets);
    model.calibrate(held);
    let labels = model.labels.clone();
    let n = labels.len();
    let mut confusion = vec![vec![0usize; n]; n];
    for (t, l) in held {
        let (Ok(actual), Ok(predicted)) = (
            labels.binary_search(l),
            labels.binary_search(&model.predict(t, "").0.to_string()),
        ) else {
            continue;
        };
        confusion[actual][predicted] += 1;
    }
    let correct: usize = (0..n).map(|k| confusion[k][k]).sum();
    let accuracy = correct as f64 / held.len().max(1) as f64;
    let f1s: Vec<f64> = (0..n)
        .map(|k| {
            let tp = confusion[k][k] as f64;
            let predicted: f64 = (0..n).map(|a| confusion[a][k] as f64).sum();
            let actual: f64 = confusion[k].iter().sum::<usize>() as f64;
            let (p, r) = (tp / predicted.max(1.0), tp / actual.max(1.0));
            if p + r > 0.0 {
                2.0 * p * r / (p + r)
            } else {
                0.0
            }
        })
        .collect();
    let macro_f1 = f1s.iter().sum::<f64>() / n.max(1) as f64;
    let bytes = model.to_bytes();
    if let Err(e) = std::fs::write(out, &bytes) {
        eprintln!("taskrouter: cannot write {out}: {e}");
        return USAGE;
    }
    if has(args, "--json") {
        out!(
            "{}",
            json!({"examples": rows.len(), "train": train_rows.len(), "held_out": held.len(), "accuracy": accuracy,
                              "macro_f1": macro_f1, "labels": labels, "confusion": confusion, "model_bytes": bytes.len()})
        );
    } else {
        out!(
            "{} examples: {} to train, {} held out (seed {seed}); model {} bytes -> {out}",
            rows.len(),
            train_rows.len(),
            held.len(),
            bytes.len()
        );
        out!("held-out accuracy {accuracy:.3}, macro-F1 {macro_f1:.3}\n");
        let w = labels.iter().map(String::len).max().unwrap_or(5);
        out!(
            "{:w$}  {}",
            "actual \\ predicted",
            (0..n).map(|k| format!("{k:>4}")).collect::<String>()
        );
        for (k, row) in confusion.iter().enumerate() {
            out!(
                "{:>2} {:w$}  {}  F1 {:.2}",
                k,
                labels[k],
                row.iter().map(|c| format!("{c:>4}")).collect::<String>(),
                f1s[k]
            );
        }
    }
    OK
}
