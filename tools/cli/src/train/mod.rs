//! `train <data.jsonl> --out <model> [--test <test.jsonl>] [--seed N] [--buckets N] [--hidden N]
//! [--width N] [--optimizer adagrad|sgd] [--epochs N] [--rate R] [--l2 L] [--dropout D]
//! [--compare] [--mistakes FILE] [--oof FILE] [--json]`: trains the built-in task classifier (`taskrouter::task_model`) on labelled JSONL
//! (`{"text", "label", "batch"?}`) and writes the versioned, checksummed model file. Same data
//! and seed, same bytes.
//!
//! The figures are honest ones: grouped cross-validation, where each fold holds out whole
//! writers (a `batch` such as `h3-s2` belongs to writer `h3`; its fold a hash of the name, so
//! adding writers moves no other), so no batch is on both sides;
//! without batches, seeded random folds (and the report says so). The temperature that
//! calibrates the probabilities is fitted on the out-of-fold scores. `--test` scores the final
//! model on a file it never saw; `--compare` adds the table of model families.
//!
//! `corpus <dir> [--check]` (corpus.rs) composes the training and test files from the batches.
//! `classify` shows what a model makes of one prompt; `evaluate` scores it on labelled prompts.
//! `lexicon [--out FILE]` builds the index of the lexicon of task words compiled in, the file the
//! Worker reads (`models/lexicon.trlx`), and says what it holds.

pub mod corpus;
mod eval;
mod nb;

use crate::rules_cmds::{flag, has, INVALID, OK, USAGE};
use eval::{Report, Scored};
use serde_json::{json, Value};
use taskrouter::task_model::features::{features_read, features_unsplit, fnv1a, Concepts};
use taskrouter::task_model::mix;
use taskrouter::task_model::train::{fit, fit_temperature, shuffled, Example, Settings};
use taskrouter::task_model::TaskModel;

/// The default `min_score` of the rules: the threshold coverage and false accepts are read at.
const MIN_SCORE: f64 = 0.5;

struct Row {
    text: String,
    label: String,
    batch: Option<String>,
}

fn read_rows(file: &str) -> Result<Vec<Row>, (i32, String)> {
    let text =
        std::fs::read_to_string(file).map_err(|e| (USAGE, format!("cannot read {file}: {e}")))?;
    let mut rows = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: Value =
            serde_json::from_str(line).map_err(|e| (INVALID, format!("{file}:{}: {e}", i + 1)))?;
        match (v["text"].as_str(), v["label"].as_str()) {
            (Some(t), Some(l)) if !l.is_empty() => rows.push(Row {
                text: t.to_string(),
                label: l.to_string(),
                batch: v["batch"].as_str().map(str::to_string),
            }),
            _ => {
                return Err((
                    INVALID,
                    format!("{file}:{}: needs \"text\" and \"label\"", i + 1),
                ))
            }
        }
    }
    if rows.is_empty() {
        return Err((INVALID, format!("{file}: no examples")));
    }
    Ok(rows)
}

/// The writer of a batch: `h3-s2` -> `h3` (a sitting's suffix `-s<digits>` dropped).
fn writer(batch: &str) -> &str {
    match batch.rsplit_once("-s") {
        Some((w, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => w,
        _ => batch,
    }
}

/// What a fold holds out whole: a writer (every sitting of theirs, the default and the stricter)
/// or a batch (one sitting: the writer's other sittings may be in training).
#[derive(Clone, Copy, PartialEq)]
enum Groups {
    Writer,
    Batch,
}

/// Fold of each row, and how the folds were made. A group's fold is a hash of its name, so adding
/// writers leaves every other writer in the fold it was in and rounds of data compare over the
/// same splits; when the hash leaves a fold empty (a handful of groups), the groups' sorted order
/// deals them out instead.
fn folds(rows: &[Row], seed: u64, groups: Groups) -> (Vec<usize>, String) {
    fn group(batch: &str, groups: Groups) -> &str {
        match groups {
            Groups::Writer => writer(batch),
            Groups::Batch => batch,
        }
    }
    let mut names: Vec<&str> = rows
        .iter()
        .filter_map(|r| r.batch.as_deref().map(|b| group(b, groups)))
        .collect();
    names.sort_unstable();
    names.dedup();
    if rows.iter().all(|r| r.batch.is_some()) && names.len() >= 3 {
        let k = names.len().min(10);
        // Each name's fold, computed once: by its hash, or by its place in sorted order.
        let hashed: Vec<usize> = names
            .iter()
            .map(|name| {
                let h = mix(u64::from(fnv1a(0, &[name.as_bytes()])));
                (((h >> 32) * k as u64) >> 32) as usize
            })
            .collect();
        let by_hash = (0..k).all(|f| hashed.contains(&f));
        let of_name: Vec<usize> = if by_hash {
            hashed
        } else {
            (0..names.len()).map(|i| i % k).collect()
        };
        let fold = rows
            .iter()
            .map(|r| {
                let w = r.batch.as_deref().map_or("", |b| group(b, groups));
                of_name[names.binary_search(&w).unwrap_or(0)]
            })
            .collect();
        let dealt = if by_hash {
            "by a hash of the name"
        } else {
            "dealt out in sorted order"
        };
        let how = match groups {
            Groups::Writer => format!(
                "grouped {k}-fold cross-validation: each fold holds out whole writers, {dealt} ({})",
                names.join(", ")
            ),
            Groups::Batch => format!(
                "grouped {k}-fold cross-validation: each fold holds out whole batches, {} of them, {dealt}; a writer's other batches may be in training (--folds writer holds out whole writers)",
                names.len()
            ),
        };
        return (fold, how);
    }
    let mut fold = vec![0; rows.len()];
    for (n, i) in shuffled(rows.len(), seed).into_iter().enumerate() {
        fold[i] = n % 5;
    }
    (fold, "5-fold cross-validation over seeded random folds (NOT grouped: the data has no batch field with 3 or more writers, so the figures may flatter)".into())
}

/// A model trained by one of the families.
enum Trained {
    Task(TaskModel),
    NaiveBayes(nb::NaiveBayes),
}

impl Trained {
    fn logits(&self, features: &[(u32, f32)]) -> Vec<f32> {
        match self {
            Trained::Task(m) => m.logits(features),
            Trained::NaiveBayes(m) => m.logits(features),
        }
    }
}

/// A way to turn text into features and a trained scorer.
#[derive(Clone, Copy, PartialEq)]
enum Family {
    /// The shipped model: one hidden layer, instruction and material apart, with the settings
    /// given (`--hidden 0`: logistic regression).
    Shipped,
    /// The model before: logistic regression over the shipped features, in the same bytes.
    Logistic,
    /// Logistic regression on the whole prompt as one text.
    LogisticUnsplit,
    /// Naive Bayes on the shipped model's features.
    NaiveBayes,
    /// The v1 model: naive Bayes on whole-text words, bigrams and character 4-grams.
    NaiveBayesV1,
}

impl Family {
    fn name(self) -> &'static str {
        match self {
            Family::Shipped => "one hidden layer, instruction and material apart (shipped)",
            Family::Logistic => "logistic regression, instruction and material apart",
            Family::LogisticUnsplit => "logistic regression, whole prompt as one text",
            Family::NaiveBayes => "naive Bayes, same features as shipped",
            Family::NaiveBayesV1 => "naive Bayes, v1 features (the previous model)",
        }
    }
    /// What it reads of a prompt: the shipped family the lexicon's concepts and their pairs too
    /// when its model records them (`Settings::concepts`), the others what they read before there
    /// was a lexicon.
    fn features(self, text: &str, s: &Settings) -> Vec<(u32, f32)> {
        match self {
            Family::Shipped => features_read(text, "", s.buckets, s.concepts()),
            Family::Logistic | Family::NaiveBayes => {
                features_read(text, "", s.buckets, Concepts::No)
            }
            Family::LogisticUnsplit => features_unsplit(text, "", s.buckets),
            Family::NaiveBayesV1 => nb::v1_features(text, s.buckets),
        }
    }
    /// The settings it trains with: the shipped family those given; the others logistic
    /// regression's defaults, with the same seed and buckets.
    fn settings(self, shipped: &Settings) -> Settings {
        if self == Family::Shipped {
            return *shipped;
        }
        let base = Settings::linear();
        Settings {
            seed: shipped.seed,
            buckets: shipped.buckets,
            ..base
        }
    }
    /// Train on `train` (owned or borrowed examples).
    fn fit<E: std::borrow::Borrow<Example>>(
        self,
        train: &[E],
        labels: &[String],
        s: &Settings,
    ) -> Trained {
        match self {
            Family::Shipped | Family::Logistic | Family::LogisticUnsplit => {
                Trained::Task(fit(train, labels.to_vec(), s))
            }
            Family::NaiveBayes | Family::NaiveBayesV1 => {
                Trained::NaiveBayes(nb::NaiveBayes::fit(train, labels.len(), s.buckets))
            }
        }
    }
}

fn examples(rows: &[Row], labels: &[String], family: Family, s: &Settings) -> Vec<Example> {
    rows.iter()
        .map(|r| Example {
            features: family.features(&r.text, s),
            label: labels.binary_search(&r.label).unwrap_or(0),
        })
        .collect()
}

/// Out-of-fold logits of every row.
fn cross_validate(
    exs: &[Example],
    fold: &[usize],
    labels: &[String],
    family: Family,
    s: &Settings,
) -> Vec<(Vec<f32>, usize)> {
    let k = fold.iter().max().map_or(0, |m| m + 1);
    let mut oof: Vec<(Vec<f32>, usize)> = exs.iter().map(|e| (Vec::new(), e.label)).collect();
    for f in 0..k {
        let train: Vec<&Example> = exs
            .iter()
            .zip(fold)
            .filter(|(_, g)| **g != f)
            .map(|(e, _)| e)
            .collect();
        let trained = family.fit(&train, labels, s);
        for (i, e) in exs.iter().enumerate().filter(|(i, _)| fold[*i] == f) {
            oof[i].0 = trained.logits(&e.features);
        }
    }
    oof
}

fn scored<'a>(labels: &'a [String], logits: &[(Vec<f32>, usize)], t: f32) -> Scored<'a> {
    Scored {
        labels,
        rows: logits
            .iter()
            .map(|(l, k)| (TaskModel::softmax(l, t), *k))
            .collect(),
    }
}

pub fn train(file: &str, args: &[String]) -> i32 {
    let Some(out) = flag(args, "--out") else {
        eprintln!("taskrouter: train needs --out <model file>");
        return USAGE;
    };
    let seed = flag(args, "--seed")
        .and_then(|s| s.parse().ok())
        .unwrap_or(1u64);
    let num = |name: &str| flag(args, name).and_then(|v| v.parse::<f32>().ok());
    // Without a hidden layer (`--hidden 0`), logistic regression's own rate and schedule unless
    // they are given.
    let hidden = num("--hidden").map_or(Settings::default().hidden, |v| v.clamp(0.0, 256.0) as u32);
    let defaults = match hidden {
        0 => Settings::linear(),
        _ => Settings {
            hidden,
            ..Settings::default()
        },
    };
    let adagrad = match flag(args, "--optimizer") {
        None => defaults.adagrad,
        Some("adagrad") => true,
        Some("sgd") => false,
        Some(other) => {
            eprintln!("taskrouter: --optimizer is adagrad or sgd, not {other:?}");
            return USAGE;
        }
    };
    let groups = match flag(args, "--folds") {
        None | Some("writer") => Groups::Writer,
        Some("batch") => Groups::Batch,
        Some(other) => {
            eprintln!("taskrouter: --folds is writer or batch, not {other:?}");
            return USAGE;
        }
    };
    let buckets = flag(args, "--buckets")
        .and_then(|s| s.parse::<u32>().ok())
        .filter(|b| (64..=1 << 20).contains(b))
        .unwrap_or(defaults.buckets);
    let settings = Settings {
        buckets,
        hidden,
        seed,
        epochs: num("--epochs").map_or(defaults.epochs, |v| v.clamp(1.0, 1000.0) as u32),
        rate: num("--rate").filter(|r| *r > 0.0).unwrap_or(defaults.rate),
        l2: num("--l2").filter(|l| *l >= 0.0).unwrap_or(defaults.l2),
        dropout: num("--dropout")
            .filter(|d| (0.0..0.95).contains(d))
            .unwrap_or(defaults.dropout),
        adagrad,
        width: num("--width").map_or(defaults.width, |v| v.clamp(0.0, 256.0) as u32),
    };
    if settings.hidden > 0 && settings.width > 0 && settings.hidden % settings.width != 0 {
        eprintln!(
            "taskrouter: --width {} does not divide the {} hidden units: each row is cut into slices of that many weights (0 stores four bits a weight)",
            settings.width, settings.hidden
        );
        return USAGE;
    }
    let rows = match read_rows(file) {
        Ok(r) => r,
        Err((code, e)) => {
            eprintln!("taskrouter: {e}");
            return code;
        }
    };
    let test = match flag(args, "--test").map(read_rows).transpose() {
        Ok(t) => t,
        Err((code, e)) => {
            eprintln!("taskrouter: {e}");
            return code;
        }
    };
    let mut labels: Vec<String> = rows.iter().map(|r| r.label.clone()).collect();
    labels.sort();
    labels.dedup();
    if let Some(bad) = test
        .iter()
        .flatten()
        .find(|r| labels.binary_search(&r.label).is_err())
    {
        eprintln!(
            "taskrouter: the test file's label \"{}\" is not in the training data",
            bad.label
        );
        return INVALID;
    }
    let (fold, how) = folds(&rows, seed, groups);
    let families: &[Family] = if has(args, "--compare") {
        &[
            Family::NaiveBayesV1,
            Family::NaiveBayes,
            Family::LogisticUnsplit,
            Family::Logistic,
            Family::Shipped,
        ]
    } else {
        &[Family::Shipped]
    };
    let mut table = Vec::new();
    let mut shipped = None;
    for family in families {
        let fs = family.settings(&settings);
        let exs = examples(&rows, &labels, *family, &fs);
        let oof = cross_validate(&exs, &fold, &labels, *family, &fs);
        let t = fit_temperature(&oof);
        let cv = scored(&labels, &oof, t).report(MIN_SCORE);
        if *family == Family::Shipped {
            if let Some(path) = flag(args, "--mistakes") {
                if let Err(code) = write_jsonl(path, mistakes(&rows, &labels, &oof, t)) {
                    return code;
                }
            }
        }
        // Trained on every row; for the shipped family this is the model written, calibrated by
        // the out-of-fold temperature, and its test figures come from it as quantised.
        let trained = family.fit(&exs, &labels, &fs);
        let test_logits: Option<Vec<(Vec<f32>, usize)>> = test.as_ref().map(|test| {
            test.iter()
                .map(|r| {
                    let k = labels.binary_search(&r.label).unwrap_or(0);
                    (trained.logits(&family.features(&r.text, &fs)), k)
                })
                .collect()
        });
        if let (Family::Shipped, Some(path)) = (*family, flag(args, "--oof")) {
            let cv_rows = rows
                .iter()
                .zip(&oof)
                .zip(&fold)
                .map(|((r, o), f)| (r, o, Some(*f)));
            let test_rows = test
                .iter()
                .flatten()
                .zip(test_logits.iter().flatten())
                .map(|(r, o)| (r, o, None));
            if let Err(code) = write_jsonl(
                path,
                probability_lines(&labels, cv_rows.chain(test_rows), t),
            ) {
                return code;
            }
        }
        let test_report = test_logits.map(|logits| scored(&labels, &logits, t).report(MIN_SCORE));
        table.push((
            *family,
            cv.macro_f1,
            cv.coverage,
            cv.false_accept,
            test_report
                .as_ref()
                .map(|r| (r.macro_f1, r.coverage, r.false_accept)),
        ));
        if let (Family::Shipped, Trained::Task(mut model)) = (*family, trained) {
            model.set_temperature(t);
            shipped = Some((model, t, cv, test_report));
        }
    }
    let Some((model, t, cv, test_report)) = shipped else {
        return USAGE;
    };
    let bytes = model.to_bytes();
    if let Err(e) = std::fs::write(out, &bytes) {
        eprintln!("taskrouter: cannot write {out}: {e}");
        return USAGE;
    }
    if has(args, "--json") {
        out!(
            "{}",
            json!({
                "examples": rows.len(), "validation": how, "temperature": t, "model_bytes": bytes.len(),
                "cross_validation": cv.to_json(&labels),
                "test": test_report.as_ref().map(|r| r.to_json(&labels)),
                "comparison": table.iter().map(|(f, f1, cov, fa, test)| json!({
                    "model": f.name(), "cv_macro_f1": f1, "cv_coverage": cov, "cv_false_accept": fa,
                    "test_macro_f1": test.map(|t| t.0), "test_coverage": test.map(|t| t.1), "test_false_accept": test.and_then(|t| t.2),
                })).collect::<Vec<_>>(),
            })
        );
        return OK;
    }
    out!(
        "{} examples, {} labels; {how}; temperature {t:.3}; model {} bytes -> {out}",
        rows.len(),
        labels.len(),
        bytes.len()
    );
    print_report(&cv, "cross-validation (out of fold)", &labels);
    if let Some(r) = &test_report {
        print_report(r, "test file (never trained on)", &labels);
    }
    if table.len() > 1 {
        out!("\nmodel                                                        CV macro-F1  CV coverage  CV false-acc  test macro-F1  test coverage  test false-acc");
        for (f, f1, cov, fa, test) in &table {
            let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
            out!(
                "{:60} {:>11.3}  {:>11.3}  {:>12}  {:>13}  {:>13}  {:>14}",
                f.name(),
                f1,
                cov,
                opt(*fa),
                opt(test.map(|t| t.0)),
                opt(test.map(|t| t.1)),
                opt(test.and_then(|t| t.2))
            );
        }
    }
    OK
}

/// Writes `lines` as JSONL, one value a line; on failure says which file and gives the usage
/// exit code, as every `--mistakes`, `--oof` and `--probabilities` file is a path the user named.
fn write_jsonl(path: &str, lines: impl Iterator<Item = serde_json::Value>) -> Result<(), i32> {
    let mut out = String::new();
    for line in lines {
        out.push_str(&line.to_string());
        out.push('\n');
    }
    std::fs::write(path, out).map_err(|e| {
        eprintln!("taskrouter: cannot write {path}: {e}");
        USAGE
    })
}

/// Every row's calibrated probabilities in the rows' order: `set` is `cv` (out of fold, with its
/// `fold`) or `test` (the model trained on every row), for measuring other scorers beside this
/// one on the same folds.
fn probability_lines<'a>(
    labels: &'a [String],
    rows: impl Iterator<Item = (&'a Row, &'a (Vec<f32>, usize), Option<usize>)> + 'a,
    t: f32,
) -> impl Iterator<Item = serde_json::Value> + 'a {
    rows.map(move |(row, (logits, actual), fold)| {
        let p = TaskModel::softmax(logits, t);
        json!({"set": if fold.is_some() { "cv" } else { "test" }, "fold": fold,
            "batch": row.batch, "label": labels[*actual], "probabilities": probabilities(labels, &p)})
    })
}

/// Probabilities by label name.
fn probabilities(labels: &[String], p: &[f32]) -> serde_json::Map<String, serde_json::Value> {
    labels
        .iter()
        .zip(p)
        .map(|(l, v)| (l.clone(), json!(v)))
        .collect()
}

/// The rows the cross-validation got wrong: text, label, predicted, probability.
fn mistakes<'a>(
    rows: &'a [Row],
    labels: &'a [String],
    oof: &'a [(Vec<f32>, usize)],
    t: f32,
) -> impl Iterator<Item = serde_json::Value> + 'a {
    rows.iter()
        .zip(oof)
        .filter_map(move |(row, (logits, actual))| {
            let p = TaskModel::softmax(logits, t);
            let (k, top) = p
                .iter()
                .enumerate()
                .fold((0, 0f32), |b, (k, v)| if *v > b.1 { (k, *v) } else { b });
            (k != *actual).then(|| {
                json!({"text": row.text, "label": labels[*actual], "predicted": labels[k],
                "probability": top, "batch": row.batch})
            })
        })
}

fn print_report(r: &Report, title: &str, labels: &[String]) {
    r.print(title, labels, MIN_SCORE);
}

/// `lexicon [--out FILE]`: the index of the lexicon compiled in (what `models/lexicon.trlx` must
/// hold), written to FILE; what it holds, said either way.
pub fn lexicon(args: &[String]) -> i32 {
    use taskrouter::task_model::lexicon::{self, Lexicon};
    let bytes = match lexicon::shipped_index() {
        Ok(b) => b,
        Err(why) => {
            eprintln!("taskrouter: {why}");
            return INVALID;
        }
    };
    let read = match Lexicon::read(&bytes) {
        Ok(l) => l,
        Err(why) => {
            eprintln!("taskrouter: the index built does not read back: {why}");
            return INVALID;
        }
    };
    let what = format!(
        "{} entries, fingerprint {:08x}, {} bytes",
        read.len(),
        read.fingerprint(),
        bytes.len()
    );
    match flag(args, "--out") {
        Some(out) => match std::fs::write(out, &bytes) {
            Ok(()) => out!("wrote {out}: {what}"),
            Err(e) => {
                eprintln!("taskrouter: cannot write {out}: {e}");
                return USAGE;
            }
        },
        None => out!("the lexicon's index: {what} (--out FILE writes it)"),
    }
    OK
}

/// `classify [--model FILE] <text | ->`: what the task model makes of one prompt: the most likely
/// labels with their calibrated probabilities, the task a router would take from it at the default
/// `min_score`, and the instruction it read apart from the material.
pub fn classify(text: &str, args: &[String]) -> i32 {
    let text = if text == "-" {
        let mut buf = String::new();
        if std::io::Read::read_to_string(&mut std::io::stdin(), &mut buf).is_err() {
            eprintln!("taskrouter: cannot read the prompt from standard input");
            return USAGE;
        }
        buf
    } else {
        text.to_string()
    };
    let model = match load_model(args) {
        Ok(m) => m,
        Err(code) => return code,
    };
    let p = model.probabilities(&text, "");
    let (task, score) = model.best_task(&p);
    let mut ranked: Vec<(&String, f32)> = model.labels.iter().zip(p.iter().copied()).collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    let parts = taskrouter::task_model::features::split(&text);
    let concepts = if model.reads_concepts() {
        taskrouter::task_model::features::concepts_read(&text)
    } else {
        Vec::new()
    };
    let concepts: Vec<&str> = concepts.iter().map(|(c, _)| *c).collect();
    if has(args, "--json") {
        out!(
            "{}",
            json!({
                "task": (f64::from(score) >= MIN_SCORE).then_some(task), "best_task": task, "score": score,
                "top": ranked.iter().take(3).map(|(l, p)| json!([l, p])).collect::<Vec<_>>(),
                "instruction": parts.instruction, "edges": parts.edges, "concepts": concepts,
            })
        );
        return OK;
    }
    for (label, p) in ranked.iter().take(3) {
        out!("{p:.3}  {label}");
    }
    if f64::from(score) >= MIN_SCORE {
        out!("task: {task} ({score:.3})");
    } else {
        out!("task: none (best task {task} at {score:.3}, below min_score {MIN_SCORE})");
    }
    out!("instruction read: {:?}", parts.instruction);
    if model.reads_concepts() {
        out!(
            "concepts read (data/tasks/lexicon): {}",
            concepts.join(", ")
        );
    }
    OK
}

/// The model `--model FILE` names, or the one the Worker ships; an error is printed, and a
/// warning when the model was trained with another version of the lexicon than this router's.
fn load_model(args: &[String]) -> Result<TaskModel, i32> {
    let model = read_model(args)?;
    if model.trained_with_another_lexicon() {
        eprintln!(
            "taskrouter: warning: the model was trained with another version of the lexicon \
             (data/tasks/lexicon) than this router's; it reads this one's, and may label less \
             well: retrain it"
        );
    }
    Ok(model)
}

fn read_model(args: &[String]) -> Result<TaskModel, i32> {
    match flag(args, "--model") {
        Some(path) => std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|b| TaskModel::from_bytes(&b))
            .map_err(|e| {
                eprintln!("taskrouter: {path}: {e}");
                INVALID
            }),
        None => TaskModel::from_bytes(taskrouter::task_model::BUILTIN).map_err(|e| {
            eprintln!("taskrouter: the bundled model: {e}");
            INVALID
        }),
    }
}

/// `evaluate <labelled.jsonl> [--model FILE] [--mistakes FILE] [--probabilities FILE] [--json]`: a trained model (the
/// shipped one unless `--model` names another) on labelled prompts of the operator's own
/// (`{"text", "label"}` a line), with the figures `train` gives for its test file: accuracy,
/// macro-F1, per-label F1 and the confusion matrix, calibration, coverage and out-of-scope false
/// accepts at the default `min_score`, what routing at that threshold gets right, and the
/// cascade table. `--mistakes` writes the prompts routed to another label than theirs;
/// `--probabilities` every prompt's label and probabilities, in the file's order.
pub fn evaluate(file: &str, args: &[String]) -> i32 {
    let model = match load_model(args) {
        Ok(m) => m,
        Err(code) => return code,
    };
    let rows = match read_rows(file) {
        Ok(r) => r,
        Err((code, e)) => {
            eprintln!("taskrouter: {e}");
            return code;
        }
    };
    let mut scored_rows = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let Some(k) = model.labels.iter().position(|l| *l == row.label) else {
            eprintln!(
                "taskrouter: {file}: example {}: the label \"{}\" is not one of the model's ({})",
                i + 1,
                row.label,
                model.labels.join(", ")
            );
            return INVALID;
        };
        scored_rows.push((model.probabilities(&row.text, ""), k));
    }
    let scored = Scored {
        labels: &model.labels,
        rows: scored_rows,
    };
    let report = scored.report(MIN_SCORE);
    if let Some(path) = flag(args, "--probabilities") {
        let lines = scored.rows.iter().map(|(p, k)| {
            json!({"label": model.labels[*k], "probabilities": probabilities(&model.labels, p)})
        });
        if let Err(code) = write_jsonl(path, lines) {
            return code;
        }
    }
    if let Some(path) = flag(args, "--mistakes") {
        let oos = model
            .labels
            .iter()
            .position(|l| l == taskrouter::task_model::OUT_OF_SCOPE);
        let lines = rows
            .iter()
            .zip(&scored.rows)
            .filter_map(|(row, (p, actual))| {
                let (task, score) = model.best_task(p);
                let routed = &model.labels[eval::routed(p, oos, MIN_SCORE)];
                (*routed != model.labels[*actual]).then(|| {
                    json!({"text": row.text, "label": row.label, "routed": routed,
                    "best_task": task, "score": score})
                })
            });
        if let Err(code) = write_jsonl(path, lines) {
            return code;
        }
    }
    if has(args, "--json") {
        out!("{}", report.to_json(&model.labels));
    } else {
        print_report(&report, file, &model.labels);
    }
    OK
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(writers: &[String]) -> Vec<Row> {
        writers
            .iter()
            .flat_map(|w| {
                ["s1", "s2"].map(|s| Row {
                    text: "x".into(),
                    label: "faq".into(),
                    batch: Some(format!("{w}-{s}")),
                })
            })
            .collect()
    }

    fn used(folds: &[usize]) -> Vec<usize> {
        let mut f = folds.to_vec();
        f.sort_unstable();
        f.dedup();
        f
    }

    #[test]
    fn adding_writers_leaves_every_other_writer_in_its_fold() {
        let mut names: Vec<String> = (1..=60).map(|i| format!("h{i}")).collect();
        let (before, how) = folds(&rows(&names), 1, Groups::Writer);
        assert!(how.contains("by a hash of the name"), "{how}");
        assert_eq!(used(&before), (0..10).collect::<Vec<_>>());
        assert!(
            before.chunks(2).all(|w| w[0] == w[1]),
            "a writer's sittings split"
        );
        names.extend(["h7b".to_string(), "a0".to_string(), "h61".to_string()]);
        let (after, _) = folds(&rows(&names), 1, Groups::Writer);
        assert_eq!(after[..before.len()], before[..]);
        let (by_batch, how) = folds(&rows(&names), 1, Groups::Batch);
        assert!(how.contains("whole batches, 126 of them"), "{how}");
        assert_eq!(used(&by_batch), (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn a_handful_of_writers_still_fills_every_fold() {
        for n in 3..=12 {
            let names: Vec<String> = (0..n).map(|i| format!("w{i}")).collect();
            let (f, _) = folds(&rows(&names), 1, Groups::Writer);
            assert_eq!(used(&f), (0..n.min(10)).collect::<Vec<_>>(), "{n} writers");
        }
    }
}
