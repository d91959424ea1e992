//! `validate`, `explain` and `schema` as scripts use them: exit codes, messages with paths, JSON.
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

use serde_json::{json, Value};
#[allow(dead_code, reason = "these tests need no fake API server")]
mod common;

fn run(args: &[&str]) -> (i32, String, String) {
    common::run_cli(args, &[])
}

fn temp(name: &str, content: &str) -> String {
    let p = std::env::temp_dir().join(format!("taskrouter-cli-{}-{name}", std::process::id()));
    std::fs::write(&p, content).unwrap();
    p.to_string_lossy().into_owned()
}

const DEFAULT_RULES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../rules/default.json");

#[test]
fn validate_exit_codes_and_paths() {
    let (code, out, _) = run(&["validate", DEFAULT_RULES]);
    assert_eq!(code, 0);
    assert!(out.contains("valid (version 1"), "{out}");
    let bad = temp("bad.json", &json!({"version": 1, "providers": {}, "models": {"m": {"provider": "x", "model": "y"}}, "default": "nope"}).to_string());
    let (code, _, err) = run(&["validate", &bad]);
    assert_eq!(code, 1);
    assert!(
        err.contains("models.m.provider: unknown provider \"x\""),
        "{err}"
    );
    assert!(err.contains("default: unknown model \"nope\""), "{err}");
    // The offending line, underlined, and no colour codes when not writing to a terminal.
    assert!(err.contains(".json:1:") && err.contains("^^^^^^"), "{err}");
    assert!(!err.contains('\x1b'), "{err}");
    let (code, out, _) = run(&["validate", &bad, "--json"]);
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["valid"], false);
    assert!(v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["path"] == "default"));
    let (code, _, err) = run(&["validate", "/nonexistent/rules.json"]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot read"));
    assert_eq!(run(&["frobnicate"]).0, 2);
}

#[test]
fn explain_matches_the_endpoint() {
    let req = temp(
        "req.json",
        &json!({"model": "auto", "messages": [{"role": "user", "content": "hi"}]}).to_string(),
    );
    let (code, out, err) = run(&[
        "explain",
        DEFAULT_RULES,
        &req,
        "--metadata",
        r#"{"plan": "pro"}"#,
    ]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["object"], "router.explanation");
    assert_eq!(v["rule"], "paid-plans");
    assert_eq!(v["plan"][0]["model_id"], "mock-strong");
    let (_, out, _) = run(&["explain", DEFAULT_RULES, &req]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["rule"], "default");
    let paid = v["routes_checked"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["route"] == "paid-plans")
        .unwrap();
    assert_eq!(
        paid["failed"][0],
        "metadata.plan $in [\"pro\",\"team\"] (value: missing)"
    );
}

#[test]
fn schema_is_the_published_one() {
    let (code, out, _) = run(&["schema"]);
    assert_eq!(code, 0);
    let published = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/rules.schema.json"
    ))
    .unwrap();
    assert_eq!(out.trim_end(), published.trim_end());
}
