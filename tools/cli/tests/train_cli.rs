//! `taskrouter train`, `corpus`, `classify` and `lexicon`: the shipped model is exactly what training on the
//! shipped data makes; the corpus files are what the hand-written batches make, without
//! near-duplicates and with every label's share; the report has the honest figures; bad data is
//! refused with the line that is wrong.
#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_taskrouter"))
        .args(args)
        .output()
        .unwrap()
}

fn train(data: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "train",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    cli(&args)
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("taskrouter-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn stdout(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn the_shipped_model_is_reproducible_from_the_shipped_data() {
    let dir = temp_dir("train");
    let model = dir.join("m.trcls");
    let report = stdout(&train(
        &root().join("data/tasks/tasks.jsonl"),
        &model,
        &["--seed", "1"],
    ));
    assert!(
        report.contains("grouped") && report.contains("whole writers"),
        "{report}"
    );
    assert!(
        report.contains("macro-F1") && report.contains("ECE"),
        "{report}"
    );
    assert!(
        report.contains("coverage") && report.contains("false accepts"),
        "{report}"
    );
    assert!(report.contains("threshold  in-scope below it"), "{report}");
    assert!(
        std::fs::read(&model).unwrap() == std::fs::read(root().join("models/tasks-v2.trcls")).unwrap(),
        "models/tasks-v2.trcls is stale: retrain with `taskrouter train data/tasks/tasks.jsonl --out models/tasks-v2.trcls --seed 1`"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn lexicon_writes_the_index_the_worker_reads() {
    let dir = temp_dir("lexicon");
    let out = dir.join("lexicon.trlx");
    let said = stdout(&cli(&["lexicon", "--out", out.to_str().unwrap()]));
    assert!(
        said.starts_with("wrote ") && said.contains(" entries, fingerprint "),
        "{said}"
    );
    assert!(
        std::fs::read(&out).unwrap() == std::fs::read(root().join("models/lexicon.trlx")).unwrap(),
        "models/lexicon.trlx is stale: `taskrouter lexicon --out models/lexicon.trlx`"
    );
    // Without --out it only says what the index holds.
    let said = stdout(&cli(&["lexicon"]));
    assert!(said.contains("--out FILE writes it"), "{said}");
    let refused = cli(&[
        "lexicon",
        "--out",
        dir.join("no/such/dir/x").to_str().unwrap(),
    ]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("cannot write"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_corpus_files_are_what_the_batches_make_and_keep_their_rules() {
    let data = root().join("data/tasks");
    let run = cli(&["corpus", data.to_str().unwrap(), "--check"]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
}

/// A small corpus: `lines` as written, and one material of each kind per split.
fn small_corpus(dir: &Path, lines: &[(&str, &str, &str)]) {
    std::fs::create_dir_all(dir.join("batches")).unwrap();
    std::fs::create_dir_all(dir.join("materials")).unwrap();
    let mut text = String::new();
    for (batch, label, t) in lines {
        let line = serde_json::json!({"text": t, "label": label, "batch": batch, "lang": "en"});
        text.push_str(&format!("{line}\n"));
    }
    std::fs::write(dir.join("batches/a.jsonl"), text).unwrap();
    for split in ["train", "test"] {
        let m = serde_json::json!({"id": format!("{split}-1"), "kind": "prose", "lang": "en",
            "text": format!("A {split} article about canals and their long history of trade.")});
        std::fs::write(
            dir.join(format!("materials/{split}-x.jsonl")),
            format!("{m}\n"),
        )
        .unwrap();
    }
}

#[test]
fn corpus_composes_and_refuses_near_duplicates_and_thin_labels() {
    let dir = temp_dir("corpus");
    small_corpus(
        &dir,
        &[
            (
                "w1-s1",
                "summarisation",
                "tl;dr of this please\n\n{{paste:prose}}",
            ),
            (
                "w1-s1",
                "translation",
                "put this in French for me: {{paste:prose}}",
            ),
            (
                "w2-s1",
                "translation",
                "please put this in French for me now: {{paste:prose}}",
            ),
            (
                "w3-s1",
                "out_of_scope",
                "lol look what my uncle sent me\n\n{{paste:prose}}",
            ),
            ("test-t1-s1", "faq", "what are your opening hours on Sunday"),
        ],
    );
    // Prompts written apart to judge the model: composed into nothing, but one that repeats a
    // written line, or has a label the corpus lacks, is refused.
    std::fs::create_dir_all(dir.join("outside")).unwrap();
    std::fs::write(
        dir.join("outside/mine.jsonl"),
        concat!(
            "{\"text\": \"what are your opening hours on Sunday?\", \"label\": \"faq\", \"lang\": \"en\"}\n",
            "{\"text\": \"hello there\", \"label\": \"greeting\", \"lang\": \"en\"}\n",
            "{\"text\": \"sum up the minutes below in two lines\", \"label\": \"summarisation\", \"lang\": \"en\"}\n",
        ),
    )
    .unwrap();
    let run = cli(&["corpus", dir.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{err}");
    assert!(
        err.contains("near-duplicates") && err.contains("a.jsonl:2 and a.jsonl:3"),
        "{err}"
    );
    assert!(err.contains("and mine.jsonl:1"), "{err}");
    assert!(
        err.contains("mine.jsonl:2: unknown label \"greeting\""),
        "{err}"
    );
    assert!(!err.contains("mine.jsonl:3"), "{err}");
    assert!(err.contains("fewer than 400"), "{err}");
    let composed = std::fs::read_to_string(dir.join("tasks.jsonl")).unwrap();
    let first: serde_json::Value = serde_json::from_str(composed.lines().next().unwrap()).unwrap();
    assert_eq!(
        first["text"],
        "tl;dr of this please\n\nA train article about canals and their long history of trade."
    );
    // The first of every three placeholders takes only the start of its material (this one is
    // short already: all of it).
    assert_eq!(first["material"], "train-1#short");
    // An out-of-scope line with a placeholder comes twice: with another material, whole, then
    // as the other lines do (the fourth placeholder: the start of its material).
    let uncle: Vec<serde_json::Value> = composed
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v["label"] == "out_of_scope")
        .collect();
    assert_eq!(uncle.len(), 2, "{composed}");
    assert_eq!(uncle[0]["material"], "train-1");
    assert_eq!(uncle[1]["material"], "train-1#short");
    let test = std::fs::read_to_string(dir.join("test.jsonl")).unwrap();
    assert_eq!(test.lines().count(), 1, "test batches make test.jsonl");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn training_is_seeded_and_reports_grouped_test_and_comparison_figures() {
    let dir = temp_dir("train-small");
    // Every 12th line of the shipped data: all labels, all writers, quick to train.
    let data = dir.join("small.jsonl");
    let all = std::fs::read_to_string(root().join("data/tasks/tasks.jsonl")).unwrap();
    let small: String = all.lines().step_by(12).map(|l| format!("{l}\n")).collect();
    std::fs::write(&data, small).unwrap();
    let test = root().join("data/tasks/test.jsonl");
    let (a, b, c) = (dir.join("a"), dir.join("b"), dir.join("c"));
    let mistakes = dir.join("mistakes.jsonl");
    let oof = dir.join("oof.jsonl");
    let report = stdout(&train(
        &data,
        &a,
        &[
            "--test",
            test.to_str().unwrap(),
            "--compare",
            "--mistakes",
            mistakes.to_str().unwrap(),
            "--oof",
            oof.to_str().unwrap(),
        ],
    ));
    assert!(
        report.contains("grouped") && report.contains("whole writers"),
        "{report}"
    );
    assert!(
        report.contains("test file (never trained on): 1400 prompts"),
        "{report}"
    );
    for family in [
        "naive Bayes, v1 features",
        "logistic regression, whole prompt",
        "(shipped)",
    ] {
        assert!(report.contains(family), "{report}");
    }
    let wrong = std::fs::read_to_string(&mistakes).unwrap();
    let first: serde_json::Value = serde_json::from_str(wrong.lines().next().unwrap()).unwrap();
    assert_ne!(first["label"], first["predicted"]);
    // --oof: every training row out of fold, in order, with its fold; then the test's rows.
    let oof = std::fs::read_to_string(&oof).unwrap();
    let lines: Vec<serde_json::Value> = oof
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let rows = std::fs::read_to_string(&data).unwrap();
    let rows: Vec<serde_json::Value> = rows
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), rows.len() + 1400);
    for (line, row) in lines.iter().zip(&rows) {
        assert_eq!(
            (&line["set"], &line["label"], &line["batch"]),
            (&"cv".into(), &row["label"], &row["batch"])
        );
        assert!(line["fold"].as_u64().unwrap() < 10, "{line}");
    }
    let wrong_rows = lines[..rows.len()]
        .iter()
        .filter(|l| {
            let p = l["probabilities"].as_object().unwrap();
            let sum: f64 = p.values().map(|v| v.as_f64().unwrap()).sum();
            assert!((sum - 1.0).abs() < 1e-3 && p.len() == 15, "{l}");
            let best = p
                .iter()
                .max_by(|a, b| a.1.as_f64().partial_cmp(&b.1.as_f64()).unwrap())
                .unwrap()
                .0;
            l["label"].as_str() != Some(best.as_str())
        })
        .count();
    assert_eq!(
        wrong_rows,
        wrong.lines().count(),
        "the mistakes are the rows --oof gets wrong"
    );
    assert!(lines[rows.len()..]
        .iter()
        .all(|l| l["set"] == "test" && l["fold"].is_null()));
    stdout(&train(&data, &b, &[]));
    stdout(&train(&data, &c, &["--epochs", "3"]));
    assert!(
        std::fs::read(&a).unwrap() != std::fs::read(&c).unwrap(),
        "--epochs is read"
    );
    // Folds that hold out batches (sittings) rather than writers, as a flag; writers by default.
    let report = stdout(&train(&data, &c, &["--epochs", "3", "--folds", "batch"]));
    assert!(
        report.contains("holds out whole batches") && !report.contains("whole writers ("),
        "{report}"
    );
    assert!(report.contains("macro-F1"), "{report}");
    // The model before: four bits a weight (format v4), one falling rate; the default is v7.
    stdout(&train(&data, &c, &["--width", "0", "--optimizer", "sgd"]));
    let version = |p: &Path| {
        let b = std::fs::read(p).unwrap();
        u16::from_le_bytes([b[5], b[6]])
    };
    assert_eq!((version(&a), version(&c)), (7, 4));
    stdout(&train(&data, &c, &["--seed", "2"]));
    let bytes = std::fs::read(&a).unwrap();
    assert_eq!(
        bytes,
        std::fs::read(&b).unwrap(),
        "same data and seed, same bytes"
    );
    assert_ne!(
        bytes,
        std::fs::read(&c).unwrap(),
        "the seed orders the examples"
    );
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&train(&data, &b, &["--json"]))).unwrap();
    let cv = &json["cross_validation"];
    assert!(cv["macro_f1"].as_f64().unwrap() > 0.3, "{cv}");
    assert!(cv["ece"].as_f64().unwrap() < 0.2, "{cv}");
    assert_eq!(cv["thresholds"].as_array().unwrap().len(), 7);
    // Classify with the model just trained: labels with probabilities, the instruction it read.
    let out = stdout(&cli(&[
        "classify",
        "translate this into German please\n\nThe canal opened in 1820.",
        "--model",
        a.to_str().unwrap(),
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["instruction"][0], "translate this into German please");
    // The lexicon's concepts it read in the instruction ("translate", "German").
    let concepts: Vec<&str> = v["concepts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c.as_str())
        .collect();
    assert!(
        concepts.contains(&"translate") && concepts.contains(&"language_name"),
        "{concepts:?}"
    );
    assert_eq!(v["top"].as_array().unwrap().len(), 3);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_training_data_names_the_line() {
    let dir = temp_dir("train-bad");
    let data = dir.join("bad.jsonl");
    std::fs::write(
        &data,
        "{\"text\": \"hi\", \"label\": \"faq\"}\n{\"text\": \"no label\"}\n",
    )
    .unwrap();
    let run = train(&data, &dir.join("m.trcls"), &[]);
    assert_eq!(run.status.code(), Some(1));
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("bad.jsonl:2"), "{err}");
    assert!(!dir.join("m.trcls").exists());
    // A test file with a label the training data lacks is refused before training.
    let good = dir.join("good.jsonl");
    std::fs::write(&good, "{\"text\": \"hi\", \"label\": \"faq\"}\n{\"text\": \"sum it up\", \"label\": \"summarisation\"}\n").unwrap();
    let test = dir.join("test.jsonl");
    std::fs::write(
        &test,
        "{\"text\": \"bonjour\", \"label\": \"translation\"}\n",
    )
    .unwrap();
    let run = train(
        &good,
        &dir.join("m.trcls"),
        &["--test", test.to_str().unwrap()],
    );
    assert_eq!(run.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&run.stderr)
        .contains("\"translation\" is not in the training data"));
    // An optimiser it does not know is a usage error, not a silent default.
    let run = train(&good, &dir.join("m.trcls"), &["--optimizer", "adam"]);
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("adagrad or sgd, not \"adam\""));
    let run = train(&good, &dir.join("m.trcls"), &["--folds", "sitting"]);
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("writer or batch, not \"sitting\""));
    // Slices must cut the hidden layer's rows evenly, or the file could not be read back.
    let run = train(&good, &dir.join("m.trcls"), &["--width", "3"]);
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("--width 3 does not divide the 16"));
    assert!(!dir.join("m.trcls").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn evaluate_scores_the_shipped_model_on_labelled_prompts() {
    let dir = temp_dir("evaluate");
    let data = dir.join("mine.jsonl");
    // Two prompts the shipped model gets right, one it cannot (an empty prompt labelled as a
    // task falls below min_score): the figures and the mistakes file must say so.
    std::fs::write(
        &data,
        concat!(
            "{\"text\": \"translate into German please: the meeting moved to Friday\", \"label\": \"translation\"}\n",
            "{\"text\": \"hey how are you doing today\", \"label\": \"out_of_scope\"}\n",
            "{\"text\": \"\", \"label\": \"billing\"}\n",
        ),
    )
    .unwrap();
    let mistakes = dir.join("wrong.jsonl");
    let probabilities = dir.join("p.jsonl");
    let out = stdout(&cli(&[
        "evaluate",
        data.to_str().unwrap(),
        "--mistakes",
        mistakes.to_str().unwrap(),
        "--probabilities",
        probabilities.to_str().unwrap(),
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["rows"], 3, "{v}");
    let routed = v["routed_accuracy"].as_f64().unwrap();
    assert!((routed - 2.0 / 3.0).abs() < 1e-9, "{v}");
    assert_eq!(v["false_accept"], 0.0, "{v}");
    assert_eq!(v["labels"].as_array().unwrap().len(), 15);
    let wrong = std::fs::read_to_string(&mistakes).unwrap();
    assert_eq!(wrong.lines().count(), 1, "{wrong}");
    let line: serde_json::Value = serde_json::from_str(wrong.trim()).unwrap();
    assert_eq!(line["label"], "billing");
    assert_eq!(line["routed"], "out_of_scope");
    // --probabilities: each prompt's label and the model's probabilities, in the file's order.
    let p = std::fs::read_to_string(&probabilities).unwrap();
    let p: Vec<serde_json::Value> = p
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(p.len(), 3);
    assert_eq!(p[0]["label"], "translation");
    assert!(
        p[0]["probabilities"]["translation"].as_f64().unwrap() > 0.5,
        "{}",
        p[0]
    );
    assert_eq!(p[2]["probabilities"].as_object().unwrap().len(), 15);
    // The text report has the same figures.
    let text = stdout(&cli(&["evaluate", data.to_str().unwrap()]));
    assert!(text.contains("routed at 0.5"), "{text}");
    assert!(text.contains("3 prompts"), "{text}");
    // A label the model does not have is refused, naming it and the example.
    std::fs::write(&data, "{\"text\": \"hola\", \"label\": \"greeting\"}\n").unwrap();
    let run = cli(&["evaluate", data.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(1));
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        err.contains("example 1") && err.contains("\"greeting\""),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
