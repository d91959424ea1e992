//! `taskrouter train`: the shipped model is exactly what training on the shipped data makes, the
//! same data and seed give the same bytes, the report has the figures, and bad data is refused
//! with the line that is wrong.
#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn train(data: &str, out: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_taskrouter"))
        .args(["train", data, "--out", out.to_str().unwrap()])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn the_shipped_model_is_reproducible_from_the_shipped_data() {
    let dir = std::env::temp_dir().join(format!("taskrouter-train-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let data = root().join("data/tasks/tasks.jsonl");
    let data = data.to_str().unwrap();
    let (a, b) = (dir.join("a.trcls"), dir.join("b.trcls"));
    let run = train(data, &a, &["--seed", "1"]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report = String::from_utf8_lossy(&run.stdout);
    assert!(report.contains("macro-F1"), "{report}");
    assert!(report.contains("actual \\ predicted"), "{report}");
    assert!(train(data, &b, &["--seed", "1"]).status.success());
    let bytes = std::fs::read(&a).unwrap();
    assert_eq!(
        bytes,
        std::fs::read(&b).unwrap(),
        "same data and seed, same bytes"
    );
    assert_eq!(
        bytes,
        std::fs::read(root().join("models/tasks-v1.trcls")).unwrap(),
        "models/tasks-v1.trcls is stale: retrain with `taskrouter train data/tasks/tasks.jsonl --out models/tasks-v1.trcls --seed 1`"
    );
    let other = dir.join("c.trcls");
    assert!(train(data, &other, &["--seed", "2"]).status.success());
    assert_ne!(
        bytes,
        std::fs::read(&other).unwrap(),
        "the seed picks the split"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_training_data_names_the_line() {
    let dir = std::env::temp_dir().join(format!("taskrouter-train-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("bad.jsonl");
    std::fs::write(
        &data,
        "{\"text\": \"hi\", \"label\": \"faq\"}\n{\"text\": \"no label\"}\n",
    )
    .unwrap();
    let run = train(data.to_str().unwrap(), &dir.join("m.trcls"), &[]);
    assert_eq!(run.status.code(), Some(1));
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("bad.jsonl:2"), "{err}");
    assert!(!dir.join("m.trcls").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}
