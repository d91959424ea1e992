//! `taskrouter report` against a local fake of the Analytics Engine SQL API on 127.0.0.1: the
//! queries it sends, the tables and JSON it prints, the PNG it draws, and how it fails.
#![expect(clippy::unwrap_used, reason = "test doubles fail loudly")]

use serde_json::{json, Value};
use std::process::Command;
use std::sync::{Arc, Mutex};

mod common;

const ACCOUNT: &str = "acc123";
const TOKEN: &str = "test-token";

/// The fake's canned answer for a query, chosen by what the query asks for.
fn answer(sql: &str) -> Value {
    let data = if sql.contains("GROUP BY task, model") {
        json!([{"task": "code_generation", "model": "gpt-4o", "requests": 120, "cost_usd": 1.25, "input_tokens": 90000, "output_tokens": 30000},
               {"task": "faq", "model": "llama-3.1-8b-instant", "requests": 900, "cost_usd": 0.0081, "input_tokens": 50000, "output_tokens": 40000}])
    } else if sql.contains("GROUP BY provider") {
        json!([{"provider": "openai", "requests": 120, "fallback_rate": 0.05}])
    } else if sql.contains("GROUP BY outcome") {
        json!([{"outcome": "ok", "requests": 990}, {"outcome": "upstream_rate_limited", "requests": 10}])
    } else if sql.contains("GROUP BY model") {
        json!([{"model": "gpt-4o", "requests": 120, "p50_ms": 820.0, "p90_ms": 1900.0, "p99_ms": 4100.0}])
    } else if sql.contains("GROUP BY caller") {
        json!([{"caller": "team-a", "requests": 700, "cost_usd": 1.0}])
    } else if sql.contains("GROUP BY t, task") {
        json!([{"t": "2026-11-28 10:00:00", "task": "faq", "cost_usd": 0.004, "p95_ms": 700},
               {"t": "2026-11-28 11:00:00", "task": "faq", "cost_usd": 0.0041, "p95_ms": 650},
               {"t": "2026-11-28 10:00:00", "task": "code_generation", "cost_usd": 0.6, "p95_ms": 3900}])
    } else {
        json!([])
    };
    let names: Vec<String> = data
        .as_array()
        .and_then(|a| a.first())
        .and_then(Value::as_object)
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    json!({"meta": names.iter().map(|n| json!({"name": n, "type": "String"})).collect::<Vec<_>>(),
           "data": data, "rows": data.as_array().map_or(0, Vec::len)})
}

/// Serve the fake until the test ends; every query body it receives.
fn fake_api(status: u16) -> (String, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let base = common::serve(Some("application/json"), move |req| {
        let sql = String::from_utf8(req.body).unwrap();
        let ok_path = req.method == "POST"
            && req.path == format!("/client/v4/accounts/{ACCOUNT}/analytics_engine/sql");
        if status != 200 || req.auth != format!("Bearer {TOKEN}") || !ok_path {
            (
                if status != 200 { status } else { 403 },
                r#"{"errors": [{"message": "not allowed"}]}"#.to_string(),
            )
        } else {
            log.lock().unwrap().push(sql.clone());
            (200, answer(&sql).to_string())
        }
    });
    (base, seen)
}

fn run(base: &str, args: &[&str]) -> (i32, String, String) {
    common::run_cli(
        args,
        &[
            ("CLOUDFLARE_ACCOUNT_ID", ACCOUNT),
            ("CLOUDFLARE_API_TOKEN", TOKEN),
            ("CLOUDFLARE_API_BASE", base),
        ],
    )
}

#[test]
fn prints_every_table_from_weighted_queries() {
    let (base, seen) = fake_api(200);
    let (code, out, err) = run(&base, &["report", "--since", "24h"]);
    assert_eq!(code, 0, "{err}");
    for title in [
        "Cost and requests by task and model",
        "Fallback rate by serving provider",
        "Requests by outcome",
        "Latency percentiles by model",
        "Top callers by cost",
    ] {
        assert!(out.contains(title), "{title} missing in:\n{out}");
    }
    assert!(
        out.lines()
            .any(|l| l.contains("code_generation") && l.contains("gpt-4o") && l.contains("1.25")),
        "{out}"
    );
    assert!(out.contains("upstream_rate_limited"), "{out}");
    assert!(
        out.contains("0.01"),
        "the share of rate-limited requests (10 of 1000):\n{out}"
    );
    let queries = seen.lock().unwrap().clone();
    assert_eq!(queries.len(), 5);
    for q in &queries {
        assert!(
            q.contains("FROM taskrouter_requests")
                && q.contains("INTERVAL '24' HOUR")
                && q.contains("_sample_interval"),
            "{q}"
        );
    }
}

#[test]
fn json_output_and_a_png_chart() {
    let (base, seen) = fake_api(200);
    let chart = std::env::temp_dir().join(format!("taskrouter-report-{}.png", std::process::id()));
    let (code, out, err) = run(
        &base,
        &[
            "report",
            "--json",
            "--chart",
            chart.to_str().unwrap(),
            "--dataset",
            "my_ds",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["cost_by_task_model"][0]["cost_usd"], 1.25);
    assert_eq!(v["outcomes"][1]["share"], 0.01);
    let png = std::fs::read(&chart).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(png.len() > 2000);
    std::fs::remove_file(&chart).unwrap();
    let queries = seen.lock().unwrap().clone();
    assert_eq!(queries.len(), 6, "five tables and the chart's query");
    assert!(queries.iter().all(|q| q.contains("FROM my_ds")));
}

#[test]
fn failures_are_reported_with_a_nonzero_exit() {
    let (base, _) = fake_api(401);
    let (code, _, err) = run(&base, &["report"]);
    assert_eq!(code, 1);
    assert!(err.contains("HTTP 401"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_taskrouter"))
        .args(["report"])
        .env_remove("CLOUDFLARE_ACCOUNT_ID")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("CLOUDFLARE_ACCOUNT_ID is not set"));
    let (code, _, err) = run(&base, &["report", "--since", "1'; DROP"]);
    assert_eq!(code, 1);
    assert!(err.contains("--since takes"), "{err}");
}
