//! `push`, `pull`, `diff`, `history` and `rollback` against a local fake of the Cloudflare KV API
//! on 127.0.0.1: the versioned layout written, every refusal, and the same state the Worker reads.
#![expect(clippy::unwrap_used, reason = "test doubles fail loudly")]

use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

mod common;

const PREFIX: &str = "/client/v4/accounts/acc1/storage/kv/namespaces/ns1/values/";

fn decode(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() + 1 {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// A field of a `multipart/form-data` body (the API's write with metadata).
fn form_field(body: &str, name: &str) -> Option<String> {
    let boundary = body.lines().next()?.trim_end();
    let head = format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n");
    let start = body.find(&head)? + head.len();
    let end = body[start..].find(&format!("\r\n{boundary}"))? + start;
    Some(body[start..end].to_string())
}

type Metadata = Arc<Mutex<HashMap<String, serde_json::Value>>>;

/// A fake KV namespace behind the REST API's value routes.
fn fake_kv() -> (String, Arc<Mutex<HashMap<String, String>>>) {
    let (base, store, _) = fake_kv_with_metadata();
    (base, store)
}

/// The fake, and the metadata written with each key.
fn fake_kv_with_metadata() -> (String, Arc<Mutex<HashMap<String, String>>>, Metadata) {
    let store: Arc<Mutex<HashMap<String, String>>> = Arc::new(Mutex::new(HashMap::new()));
    let metadata: Metadata = Arc::new(Mutex::new(HashMap::new()));
    let kv = Arc::clone(&store);
    let meta = Arc::clone(&metadata);
    let base = common::serve(None, move |req| {
        let common::FakeRequest {
            method,
            path,
            auth,
            body,
        } = req;
        let list_prefix = "/client/v4/accounts/acc1/storage/kv/namespaces/ns1/keys?prefix=";
        match (auth == "Bearer kv-token", path.strip_prefix(PREFIX)) {
            (false, _) => (403, json!({"success": false, "errors": [{"code": 10000, "message": "Authentication error"}]}).to_string()),
            (true, None) if method == "GET" && path.starts_with(list_prefix) => {
                let prefix = decode(&path[list_prefix.len()..]);
                let mut names: Vec<String> = kv.lock().unwrap().keys().filter(|k| k.starts_with(&prefix)).cloned().collect();
                names.sort();
                let meta = meta.lock().unwrap();
                let result: Vec<serde_json::Value> = names
                    .iter()
                    .map(|n| match meta.get(n) {
                        Some(m) => json!({"name": n, "metadata": m}),
                        None => json!({"name": n}),
                    })
                    .collect();
                (200, json!({"success": true, "result": result, "result_info": {"count": result.len(), "cursor": ""}}).to_string())
            }
            (true, None) => (404, "{}".to_string()),
            (true, Some(key)) => {
                let key = decode(key);
                let mut map = kv.lock().unwrap();
                match method.as_str() {
                    "GET" => match map.get(&key) {
                        Some(v) => (200, v.clone()),
                        None => (404, json!({"success": false, "errors": [{"code": 10009, "message": "get: 'key not found'"}]}).to_string()),
                    },
                    "PUT" => {
                        let body = String::from_utf8(body).unwrap();
                        match (form_field(&body, "value"), form_field(&body, "metadata")) {
                            (Some(value), Some(m)) if body.starts_with("--") => {
                                meta.lock().unwrap().insert(key.clone(), serde_json::from_str(&m).unwrap());
                                map.insert(key, value);
                            }
                            _ => {
                                meta.lock().unwrap().remove(&key);
                                map.insert(key, body);
                            }
                        }
                        (200, json!({"success": true, "errors": [], "messages": [], "result": {}}).to_string())
                    }
                    _ => (405, "{}".to_string()),
                }
            }
        }
    });
    (base, store, metadata)
}

fn run(base: &str, args: &[&str], token: &str) -> (i32, String, String) {
    common::run_cli(
        args,
        &[
            ("CLOUDFLARE_ACCOUNT_ID", "acc1"),
            ("KV_NAMESPACE_ID", "ns1"),
            ("CLOUDFLARE_API_TOKEN", token),
            ("CLOUDFLARE_API_BASE", base),
        ],
    )
}

fn rules_file(name: &str, version: u64, default: &str) -> String {
    let doc = json!({"version": version,
        "providers": {"p": {"kind": "openai", "base_url": "https://api.openai.com/v1", "api_key_secret": "OPENAI_API_KEY"}},
        "models": {"fast": {"provider": "p", "model": "gpt-4o-mini"}, "strong": {"provider": "p", "model": "gpt-4o"}},
        "default": default});
    let p = std::env::temp_dir().join(format!(
        "taskrouter-versions-{}-{name}.json",
        std::process::id()
    ));
    std::fs::write(&p, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    p.to_string_lossy().into_owned()
}

#[test]
fn push_pull_diff_history_rollback() {
    let (base, store) = fake_kv();
    let t = "kv-token";
    let v1 = rules_file("v1", 1, "fast");
    let (code, out, err) = run(&base, &["push", &v1], t);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("pushed version 1"));
    assert_eq!(
        store.lock().unwrap().get("rules:live").map(String::as_str),
        Some("1")
    );
    assert!(store.lock().unwrap().contains_key("rules:v:1"));

    // The same version again, an invalid document, and a bad token are all refused.
    let (code, _, err) = run(&base, &["push", &v1], t);
    assert_eq!(code, 1);
    assert!(err.contains("version_conflict"), "{err}");
    let bad = rules_file("bad", 5, "nope");
    let (code, _, err) = run(&base, &["push", &bad], t);
    assert_eq!(code, 1);
    assert!(err.contains("default: unknown model \"nope\""), "{err}");
    assert!(
        !store.lock().unwrap().contains_key("rules:v:5"),
        "an invalid document is never stored"
    );
    let (code, _, err) = run(&base, &["push", &v1], "wrong");
    assert_eq!(code, 1);
    assert!(err.contains("HTTP 403"), "{err}");

    let v2 = rules_file("v2", 2, "strong");
    let (code, out, _) = run(&base, &["diff", &v2], t);
    assert_eq!(code, 1, "differences exit 1");
    assert!(
        out.contains("-   \"default\": \"fast\"") && out.contains("+   \"default\": \"strong\""),
        "{out}"
    );
    assert_eq!(run(&base, &["push", &v2], t).0, 0);
    let (code, out, _) = run(&base, &["diff", &v2], t);
    assert_eq!((code, out.contains("is the live version")), (0, true));
    let (_, pulled, _) = run(&base, &["pull"], t);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&pulled).unwrap()["version"],
        2
    );

    let (code, out, _) = run(&base, &["rollback"], t);
    assert_eq!(code, 0);
    assert!(out.contains("version 1 is live again (was 2)"), "{out}");
    assert_eq!(
        store.lock().unwrap().get("rules:live").map(String::as_str),
        Some("1")
    );
    assert_eq!(run(&base, &["rollback", "--version", "7"], t).0, 1);
    let (_, out, _) = run(&base, &["history"], t);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[0].starts_with("push      v1")
            && lines[2].starts_with("rollback  v1")
            && lines[2].ends_with("(from v2)"),
        "{out}"
    );
}

#[test]
fn keys_are_created_hashed_listed_and_revoked() {
    let (base, store, metadata) = fake_kv_with_metadata();
    let t = "kv-token";
    let (code, out, err) = run(
        &base,
        &[
            "keys",
            "create",
            "--name",
            "Team A",
            "--id",
            "team-a",
            "--routes",
            "default,paid",
            "--rpm",
            "60",
            "--json",
        ],
        t,
    );
    assert_eq!(code, 0, "{err}");
    let created: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let key = created["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("tr_") && key.len() == 51, "{key}");
    let hash: String = {
        use sha2::Digest;
        sha2::Sha256::digest(key.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let stored = store
        .lock()
        .unwrap()
        .get(&format!("gateway-key:{hash}"))
        .cloned()
        .unwrap();
    assert!(!stored.contains(&key), "only the hash is stored");
    let record: serde_json::Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(record["id"], "team-a");
    // The record is the key's metadata too, and the id index names it, as the Worker keeps them.
    let at = format!("gateway-key:{hash}");
    assert_eq!(metadata.lock().unwrap()[&at]["record"], record);
    assert_eq!(
        store.lock().unwrap().get("gateway-key-id:team-a"),
        Some(&at)
    );
    assert!(store
        .lock()
        .unwrap()
        .contains_key(&format!("gateway-key-id:team-a:{hash}")));
    assert_eq!(record["allowed_routes"], json!(["default", "paid"]));
    assert_eq!(record["requests_per_minute"], 60);
    assert_eq!(
        run(
            &base,
            &["keys", "create", "--name", "again", "--id", "team-a"],
            t
        )
        .0,
        1,
        "ids are unique"
    );

    let (_, out, _) = run(&base, &["keys", "list"], t);
    assert!(
        out.contains("team-a") && out.contains("active") && out.contains("routes=default,paid"),
        "{out}"
    );
    assert!(!out.contains(&key));
    // A second record with the id, as a create racing the first could leave: both are revoked.
    store.lock().unwrap().extend([
        (
            "gateway-key:0000".to_string(),
            r#"{"id": "team-a", "name": "twin"}"#.to_string(),
        ),
        (
            "gateway-key-id:team-a:0000".to_string(),
            "gateway-key:0000".to_string(),
        ),
    ]);
    let (code, out, _) = run(&base, &["keys", "revoke", "team-a"], t);
    assert_eq!(code, 0);
    assert!(out.contains("revoked team-a (2 records)"), "{out}");
    assert!(store.lock().unwrap()["gateway-key:0000"].contains(r#""revoked":true"#));
    let record: serde_json::Value = serde_json::from_str(
        store
            .lock()
            .unwrap()
            .get(&format!("gateway-key:{hash}"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(record["revoked"], true);
    assert_eq!(run(&base, &["keys", "revoke", "nobody"], t).0, 1);
}
