//! The admin API's routes natively, through `gateway::handle` over test doubles: in-memory KV,
//! secrets, a seeded random source and a double of the Analytics Engine SQL API behind the
//! `Upstream` port. Each route: who may call it, bad input and its stable code, and what it does.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test doubles fail loudly"
)]

use futures::executor::block_on;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use taskrouter::access::auth::hash_key;
use taskrouter::gateway::{handle, Handled, Ports, Settings, State};
use taskrouter::http::{Body, Incoming, Method, ReplyBody};
use taskrouter::ports::{
    Clock, FetchError, KvStore, MemoryKv, NoCoordinator, NoSharedCache, Secret, Secrets,
    SeededRandom, Upstream, UpstreamRequest, UpstreamResponse,
};

const ADMIN: &str = "admin-key-for-tests";
const GATEWAY: &str = "gw-key-for-tests";

struct Vault(HashMap<&'static str, &'static str>);
impl Secrets for Vault {
    fn get(&self, name: &str) -> Option<Secret> {
        self.0.get(name).map(|v| Secret::new(*v))
    }
}

struct FixedClock;
impl Clock for FixedClock {
    fn now_ms(&self) -> f64 {
        1_700_000_000_000.0
    }
    async fn sleep(&self, _ms: u64) {}
}

/// The SQL API's double: each call recorded, answered from a queue (a canned success when empty).
#[derive(Default)]
struct SqlApi {
    calls: RefCell<Vec<UpstreamRequest>>,
    answers: RefCell<VecDeque<Result<(u16, String), FetchError>>>,
}

fn canned(sql: &str) -> Value {
    let data = if sql.contains("toStartOfInterval") {
        json!([{"t": "2026-12-02 10:00:00", "task": "faq", "model": "mock-fast", "requests": "4",
                "cost_usd": 0.25, "input_tokens": 40, "output_tokens": 12}])
    } else if sql.contains("blob1 AS task, blob5 AS model") {
        json!([{"task": "faq", "model": "mock-fast", "requests": 4, "cost_usd": 0.25, "input_tokens": 40, "output_tokens": 12},
               {"task": "", "model": "mock-strong", "requests": 1, "cost_usd": 1.0, "input_tokens": 9, "output_tokens": 3}])
    } else if sql.contains("blob6 AS outcome") {
        json!([{"outcome": "ok", "requests": 4}, {"outcome": "upstream_error", "requests": 1}])
    } else if sql.contains("AS fallback_rate") {
        json!([{"provider": "mock", "requests": 4, "fallback_rate": 0.25}])
    } else {
        json!([{"requests": 4, "p50_ms": 100.0, "p95_ms": 250.0}])
    };
    json!({"meta": [], "data": data, "rows": data.as_array().unwrap().len()})
}

impl Upstream for SqlApi {
    type Body = Vec<u8>;
    async fn send(
        &self,
        request: UpstreamRequest,
        _timeout_ms: u64,
    ) -> Result<UpstreamResponse<Vec<u8>>, FetchError> {
        let sql = String::from_utf8(request.body.clone()).unwrap();
        self.calls.borrow_mut().push(request);
        let (status, body) = match self.answers.borrow_mut().pop_front() {
            Some(answer) => answer?,
            None => (200, canned(&sql).to_string()),
        };
        Ok(UpstreamResponse {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.into_bytes(),
        })
    }
    async fn read_all(&self, body: Vec<u8>, _timeout_ms: u64) -> Result<Vec<u8>, FetchError> {
        Ok(body)
    }
    async fn next_chunk(
        &self,
        body: &mut Vec<u8>,
        _timeout_ms: u64,
    ) -> Result<Option<Vec<u8>>, FetchError> {
        Ok((!body.is_empty()).then(|| std::mem::take(body)))
    }
}

fn rules(version: u64) -> Value {
    json!({
        "version": version,
        "providers": {"p": {"kind": "openai_compatible", "base_url": "https://p.example/v1", "api_key_secret": "KEY"}},
        "models": {"fast": {"provider": "p", "model": "model-fast"}, "strong": {"provider": "p", "model": "model-strong"}},
        "routes": [{"name": "paid", "when": {"metadata.plan": {"$in": ["pro"]}}, "then": "strong"}],
        "default": "fast"
    })
}

struct World {
    kv: MemoryKv,
    rng: SeededRandom,
    secrets: Vault,
    sql: SqlApi,
    state: State,
    settings: Settings,
}

impl World {
    fn new() -> World {
        let kv = MemoryKv::default();
        kv.insert("rules", &rules(1).to_string());
        kv.insert(
            &format!("gateway-key:{}", hash_key(GATEWAY)),
            r#"{"id": "gw", "name": "tests", "created_at_ms": 1}"#,
        );
        World {
            kv,
            rng: SeededRandom::new(7),
            secrets: Vault(HashMap::from([
                ("ADMIN_KEY", ADMIN),
                ("KEY", "sk-test"),
                ("CLOUDFLARE_ACCOUNT_ID", "acc123"),
                ("CLOUDFLARE_API_TOKEN", "cf-token"),
            ])),
            sql: SqlApi::default(),
            state: State::default(),
            settings: Settings {
                analytics_api_base: "http://127.0.0.1:9/client/v4".into(),
                ..Settings::default()
            },
        }
    }

    fn send(
        &self,
        method: Method,
        target: &str,
        key: Option<&str>,
        body: Option<&str>,
    ) -> Handled<Vec<u8>> {
        self.send_with(method, target, key, body, &[])
    }

    fn send_with(
        &self,
        method: Method,
        target: &str,
        key: Option<&str>,
        body: Option<&str>,
        extra: &[(&str, &str)],
    ) -> Handled<Vec<u8>> {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let mut headers: Vec<(String, String)> = extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if let Some(k) = key {
            headers.push(("authorization".into(), format!("Bearer {k}")));
        }
        let req = Incoming {
            method,
            path: path.into(),
            headers,
            body: Body::Bytes(body.unwrap_or("").as_bytes().to_vec()),
            request_id: "r1".into(),
            colo: None,
            country: None,
            query: query.into(),
        };
        self.run(req)
    }

    /// The gateway's answer to `req`, through this world's ports.
    fn run(&self, req: Incoming) -> Handled<Vec<u8>> {
        let ports = Ports {
            kv: &self.kv,
            secrets: &self.secrets,
            upstream: &self.sql,
            clock: &FixedClock,
            rng: &self.rng,
            cache: &NoSharedCache,
            coordinator: &NoCoordinator,
            model_files: &taskrouter::ports::CompiledIn,
        };
        block_on(handle(&self.state, &ports, &self.settings, req))
    }

    /// An admin request whose body was declared too large to read.
    fn admin_too_large(&self, method: Method, target: &str) -> (u16, Value) {
        let req = Incoming {
            method,
            path: target.into(),
            headers: vec![("authorization".into(), format!("Bearer {ADMIN}"))],
            body: Body::TooLarge { declared: 1 << 30 },
            request_id: "r1".into(),
            colo: None,
            country: None,
            query: String::new(),
        };
        answer(&self.run(req))
    }

    fn admin(&self, method: Method, target: &str, body: Option<&str>) -> (u16, Value) {
        answer(&self.send(method, target, Some(ADMIN), body))
    }
}

fn answer(h: &Handled<Vec<u8>>) -> (u16, Value) {
    match &h.reply.body {
        ReplyBody::Bytes(b) => (h.reply.status, serde_json::from_slice(b).unwrap()),
        ReplyBody::Stream(_) => panic!("expected a whole body"),
    }
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

#[test]
fn every_new_route_is_the_admins_alone() {
    let w = World::new();
    let routes = [
        (Method::Get, "/admin/rules/versions/1"),
        (Method::Post, "/admin/rules/validate"),
        (Method::Post, "/admin/explain"),
        (Method::Get, "/admin/keys"),
        (Method::Post, "/admin/keys"),
        (Method::Delete, "/admin/keys/gw"),
        (Method::Get, "/admin/traffic"),
    ];
    for (method, path) in &routes {
        let (s, v) = answer(&w.send(method.clone(), path, None, Some("{}")));
        assert_eq!((s, code(&v)), (401, "missing_api_key"), "{path}");
        let (s, v) = answer(&w.send(method.clone(), path, Some(GATEWAY), Some("{}")));
        assert_eq!(
            (s, code(&v)),
            (401, "invalid_api_key"),
            "{path}: a gateway key"
        );
    }
    assert!(w.sql.calls.borrow().is_empty());
    let mut off = World::new();
    off.secrets.0.remove("ADMIN_KEY");
    for (method, path) in routes {
        let (s, v) = answer(&off.send(method, path, Some(ADMIN), Some("{}")));
        assert_eq!((s, code(&v)), (403, "admin_disabled"), "{path}");
    }
}

#[test]
fn stored_versions_are_read_back() {
    let w = World::new();
    for v in [2, 3] {
        let (s, _) = w.admin(Method::Put, "/admin/rules", Some(&rules(v).to_string()));
        assert_eq!(s, 200);
    }
    let (s, v) = w.admin(Method::Get, "/admin/rules/versions/2", None);
    assert_eq!(s, 200);
    assert_eq!(v["version"], 2);
    assert_eq!(v["live"], false);
    assert_eq!(v["rules"], rules(2));
    let (_, v) = w.admin(Method::Get, "/admin/rules/versions/3", None);
    assert_eq!(v["live"], true);
    let (s, v) = w.admin(Method::Get, "/admin/rules/versions/9", None);
    assert_eq!((s, code(&v)), (404, "not_found"));
    let (s, v) = w.admin(Method::Get, "/admin/rules/versions/two", None);
    assert_eq!((s, code(&v)), (400, "invalid_request"));
    let (s, v) = w.admin(Method::Put, "/admin/rules/versions/2", None);
    assert_eq!((s, code(&v)), (405, "method_not_allowed"));
}

#[test]
fn validation_answers_and_stores_nothing() {
    let w = World::new();
    let (s, v) = w.admin(
        Method::Post,
        "/admin/rules/validate",
        Some(&rules(5).to_string()),
    );
    assert_eq!(s, 200);
    assert_eq!(v, json!({"valid": true, "version": 5}));
    let mut bad = rules(6);
    bad["default"] = json!("nope");
    bad["extra"] = json!(1);
    let (s, v) = w.admin(
        Method::Post,
        "/admin/rules/validate",
        Some(&bad.to_string()),
    );
    assert_eq!(s, 200);
    assert_eq!(v["valid"], false);
    let mut paths: Vec<&str> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    paths.sort();
    assert_eq!(paths, ["default", "extra"]);
    assert!(v["errors"][0]["message"].as_str().unwrap().len() > 3);
    let (s, v) = w.admin_too_large(Method::Post, "/admin/rules/validate");
    assert_eq!((s, code(&v)), (413, "request_too_large"));
    let (s, v) = w.admin(Method::Post, "/admin/rules/validate", Some("{not json"));
    assert_eq!(s, 200);
    assert_eq!(v["valid"], false);
    assert_eq!(v["errors"].as_array().unwrap().len(), 1);
    for key in ["rules:v:5", "rules:v:6", "rules:live", "rules:history"] {
        assert_eq!(block_on(w.kv.get_text(key)).unwrap(), None, "{key}");
    }
}

#[test]
fn admin_explain_is_the_gateways_explain() {
    let w = World::new();
    let body =
        json!({"model": "auto", "messages": [{"role": "user", "content": "hello"}]}).to_string();
    let meta = [("x-router-metadata", r#"{"plan": "pro"}"#)];
    let gateway = w.send_with(
        Method::Post,
        "/v1/router/explain",
        Some(GATEWAY),
        Some(&body),
        &meta,
    );
    let admin = w.send_with(
        Method::Post,
        "/admin/explain",
        Some(ADMIN),
        Some(&body),
        &meta,
    );
    let (gs, gv) = answer(&gateway);
    let (s, v) = answer(&admin);
    assert_eq!((gs, s), (200, 200));
    assert_eq!(v, gv);
    assert_eq!(v["rule"], "paid", "the metadata header is read");
    assert_eq!(
        admin.reply.header("x-router-rules-version"),
        gateway.reply.header("x-router-rules-version")
    );
    let (s, v) = w.admin(Method::Post, "/admin/explain", Some("{"));
    assert_eq!((s, code(&v)), (400, "invalid_json"));
    let (s, v) = w.admin(Method::Get, "/admin/explain", None);
    assert_eq!((s, code(&v)), (405, "method_not_allowed"));
    assert!(w.sql.calls.borrow().is_empty(), "no provider is called");
}

#[test]
fn keys_are_made_listed_and_revoked() {
    let w = World::new();
    let (s, v) = w.admin(
        Method::Post,
        "/admin/keys",
        Some(r#"{"name": "Team A", "id": "team-a", "allowed_routes": ["paid"], "requests_per_minute": 60, "spend_usd_per_day": 2.5}"#),
    );
    assert_eq!(s, 201, "{v}");
    let key = v["key"].as_str().unwrap();
    assert!(key.starts_with("tr_") && key.len() == 51, "{key}");
    assert!(key[3..].bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(v["record"]["id"], "team-a");
    assert_eq!(v["record"]["requests_per_minute"], 60);
    assert_eq!(v["record"]["created_at_ms"], 1_700_000_000_000.0);
    let stored = block_on(w.kv.get_text(&format!("gateway-key:{}", hash_key(key))))
        .unwrap()
        .unwrap();
    assert!(!stored.contains(key));
    // The new key opens the gateway.
    let body =
        json!({"model": "auto", "messages": [{"role": "user", "content": "hi"}]}).to_string();
    let (s, _) = answer(&w.send(Method::Post, "/v1/router/explain", Some(key), Some(&body)));
    assert_eq!(s, 200);

    let (s, v) = w.admin(Method::Post, "/admin/keys", Some(r#"{"name": "B"}"#));
    assert_eq!(s, 201);
    let second = v["record"]["id"].as_str().unwrap().to_string();
    assert!(second.starts_with("key-"));

    let (s, v) = w.admin(Method::Get, "/admin/keys", None);
    assert_eq!(s, 200);
    let ids: Vec<&str> = v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["gw", second.as_str(), "team-a"],
        "by creation time, then id"
    );
    let listed = v.to_string();
    assert!(!listed.contains(key) && !listed.contains(&hash_key(key)) && !listed.contains("tr_"));

    for (body, field) in [
        (r#"{}"#, "`name`"),
        (r#"{"name": 5}"#, "`name`"),
        (
            r#"{"name": "x", "requests_per_minute": -1}"#,
            "`requests_per_minute`",
        ),
        (
            r#"{"name": "x", "spend_usd_per_day": "lots"}"#,
            "`spend_usd_per_day`",
        ),
        (
            r#"{"name": "x", "allowed_tasks": "faq"}"#,
            "`allowed_tasks`",
        ),
        (r#"{"name": "x", "id": "has space"}"#, "`id`"),
        (r#"{"name": "x", "colour": "red"}"#, "`colour`"),
        (r#"["name"]"#, "JSON object"),
    ] {
        let (s, v) = w.admin(Method::Post, "/admin/keys", Some(body));
        assert_eq!((s, code(&v)), (400, "invalid_request"), "{body}");
        let m = v["error"]["message"].as_str().unwrap();
        assert!(m.contains(field), "{body}: {m}");
    }
    let (s, v) = w.admin(Method::Post, "/admin/keys", Some("{"));
    assert_eq!((s, code(&v)), (400, "invalid_json"));
    let (s, v) = w.admin(
        Method::Post,
        "/admin/keys",
        Some(r#"{"name": "again", "id": "team-a"}"#),
    );
    assert_eq!((s, code(&v)), (409, "key_exists"));

    let (s, v) = w.admin(Method::Delete, "/admin/keys/team-a", None);
    assert_eq!((s, v), (200, json!({"revoked": "team-a"})));
    let stored = block_on(w.kv.get_text(&format!("gateway-key:{}", hash_key(key))))
        .unwrap()
        .unwrap();
    assert!(serde_json::from_str::<Value>(&stored).unwrap()["revoked"] == true);
    let fresh = World {
        kv: w.kv,
        ..World::new()
    };
    let (s, v) = answer(&fresh.send(Method::Post, "/v1/router/explain", Some(key), Some(&body)));
    assert_eq!((s, code(&v)), (401, "invalid_api_key"), "revoked");
    let (s, v) = fresh.admin(Method::Delete, "/admin/keys/nobody", None);
    assert_eq!((s, code(&v)), (404, "not_found"));
}

#[test]
fn traffic_runs_the_shared_queries_and_shapes_them() {
    let w = World::new();
    let (s, v) = w.admin(Method::Get, "/admin/traffic", None);
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["since"], "24h");
    assert_eq!(v["bucket"], "15m");
    assert_eq!(v["over_time"][0]["t"], "2026-12-02 10:00:00");
    assert_eq!(v["over_time"][0]["requests"], 4);
    assert_eq!(
        v["by_task"][0]["task"], "",
        "most costly first; no task is a task too"
    );
    assert_eq!(
        v["by_task"][1],
        json!({"task": "faq", "requests": 4, "cost_usd": 0.25, "input_tokens": 40, "output_tokens": 12})
    );
    assert_eq!(v["by_model"][0]["model"], "mock-strong");
    assert_eq!(v["outcomes"][1]["share"], 0.2);
    assert_eq!(v["fallback_rate"], 0.25);
    assert_eq!(v["latency"], json!({"p50_ms": 100.0, "p95_ms": 250.0}));
    let calls = w.sql.calls.borrow().clone();
    assert_eq!(calls.len(), 5);
    for c in &calls {
        assert_eq!(
            c.url,
            "http://127.0.0.1:9/client/v4/accounts/acc123/analytics_engine/sql"
        );
        assert!(c
            .headers
            .contains(&("authorization".into(), "Bearer cf-token".into())));
        let sql = String::from_utf8(c.body.clone()).unwrap();
        assert!(
            sql.contains("_sample_interval") && sql.contains("FROM taskrouter_requests"),
            "{sql}"
        );
        assert!(
            sql.contains("INTERVAL '24' HOUR") && !sql.contains('{'),
            "{sql}"
        );
    }
    w.sql.calls.borrow_mut().clear();
    let (s, v) = w.admin(Method::Get, "/admin/traffic?since=7d", None);
    assert_eq!((s, &v["bucket"]), (200, &json!("1h")));
    let first = String::from_utf8(w.sql.calls.borrow()[0].body.clone()).unwrap();
    assert!(
        first.contains("INTERVAL '7' DAY") && first.contains("INTERVAL '1' HOUR"),
        "{first}"
    );
}

#[test]
fn traffic_errors_have_their_codes() {
    let w = World::new();
    for bad in ["7w", "x", "1'%3B%20DROP", ""] {
        let (s, v) = w.admin(Method::Get, &format!("/admin/traffic?since={bad}"), None);
        assert_eq!((s, code(&v)), (400, "invalid_request"), "{bad}");
    }
    assert!(w.sql.calls.borrow().is_empty());

    w.sql.answers.borrow_mut().push_back(Ok((
        400,
        r#"{"errors": [{"message": "unknown table"}]}"#.into(),
    )));
    let (s, v) = w.admin(Method::Get, "/admin/traffic", None);
    assert_eq!((s, code(&v)), (502, "analytics_query_failed"));
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .ends_with("HTTP 400: unknown table"),
        "{v}"
    );
    w.sql
        .answers
        .borrow_mut()
        .push_back(Err(FetchError::Network("refused".into())));
    let (s, v) = w.admin(Method::Get, "/admin/traffic", None);
    assert_eq!((s, code(&v)), (502, "analytics_query_failed"));

    let mut bare = World::new();
    bare.secrets.0.remove("CLOUDFLARE_API_TOKEN");
    bare.secrets.0.remove("CLOUDFLARE_ACCOUNT_ID");
    let (s, v) = bare.admin(Method::Get, "/admin/traffic", None);
    assert_eq!((s, code(&v)), (503, "analytics_unconfigured"));
    let m = v["error"]["message"].as_str().unwrap();
    assert!(
        m.contains("CLOUDFLARE_ACCOUNT_ID") && m.contains("CLOUDFLARE_API_TOKEN"),
        "{m}"
    );
    assert!(bare.sql.calls.borrow().is_empty());
}

fn live(w: &World) -> Option<String> {
    block_on(w.kv.get_text("rules:live")).unwrap()
}

#[test]
fn rollback_bodies_are_checked() {
    let w = World::new();
    for v in [2, 3, 4] {
        let (s, _) = w.admin(Method::Put, "/admin/rules", Some(&rules(v).to_string()));
        assert_eq!(s, 200);
    }
    for body in [
        r#"{"version": "3"}"#,
        r#"{"version": 3.5}"#,
        r#"{"version": -1}"#,
        r#"{"version": 0}"#,
        r#"{"version": null}"#,
        r#"[3]"#,
        r#""3""#,
        r#"{"version": 3, "force": true}"#,
        r#"{"to": 3}"#,
    ] {
        let (s, v) = w.admin(Method::Post, "/admin/rules/rollback", Some(body));
        assert_eq!((s, code(&v)), (400, "invalid_request"), "{body}");
        let m = v["error"]["message"].as_str().unwrap();
        assert!(m.contains("version") || m.contains("object"), "{body}: {m}");
        assert_eq!(live(&w).as_deref(), Some("4"), "{body} changed nothing");
    }
    let (s, v) = w.admin(Method::Post, "/admin/rules/rollback", Some("{"));
    assert_eq!((s, code(&v)), (400, "invalid_json"));
    let (s, v) = w.admin_too_large(Method::Post, "/admin/rules/rollback");
    assert_eq!((s, code(&v)), (413, "request_too_large"));
    assert_eq!(live(&w).as_deref(), Some("4"));

    let (s, v) = w.admin(Method::Post, "/admin/rules/rollback", Some("{}"));
    assert_eq!((s, v), (200, json!({"live_version": 3, "previous": 4})));
    let (s, v) = w.admin(Method::Post, "/admin/rules/rollback", None);
    assert_eq!((s, v), (200, json!({"live_version": 2, "previous": 3})));
    let (s, v) = w.admin(
        Method::Post,
        "/admin/rules/rollback",
        Some(r#"{"version": 4}"#),
    );
    assert_eq!((s, v), (200, json!({"live_version": 4, "previous": 2})));
}

fn record_at(w: &World, at: &str) -> Value {
    serde_json::from_str(&block_on(w.kv.get_text(at)).unwrap().unwrap()).unwrap()
}

#[test]
fn one_delete_revokes_every_record_with_the_id() {
    let w = World::new();
    // Two records with one id, as two creates at the same moment (or older versions) leave them.
    let (a, b) = ("gateway-key:aaaa", "gateway-key:bbbb");
    w.kv.insert(a, r#"{"id": "twin", "name": "first"}"#);
    w.kv.insert(b, r#"{"id": "twin", "name": "second"}"#);
    let (s, v) = w.admin(Method::Delete, "/admin/keys/twin", None);
    assert_eq!((s, v), (200, json!({"revoked": "twin"})));
    assert_eq!(record_at(&w, a)["revoked"], true);
    assert_eq!(record_at(&w, b)["revoked"], true);
    let other = record_at(&w, &format!("gateway-key:{}", hash_key(GATEWAY)));
    assert_ne!(other["revoked"], true, "another id is left alone");
    let (s, _) = w.admin(Method::Delete, "/admin/keys/twin", None);
    assert_eq!(s, 200, "revoked already: the records exist");
}

#[test]
fn a_key_is_revoked_through_the_index_before_the_listing_shows_it() {
    let w = World::new();
    let (s, made) = w.admin(
        Method::Post,
        "/admin/keys",
        Some(r#"{"name": "fresh", "id": "fresh"}"#),
    );
    assert_eq!(s, 201);
    let key = made["key"].as_str().unwrap();
    let at = format!("gateway-key:{}", hash_key(key));
    // KV's listing lags behind writes: neither the record nor its entry is listed yet.
    w.kv.hide_from_list(&at);
    w.kv.hide_from_list(&format!("gateway-key-id:fresh:{}", hash_key(key)));
    let (s, v) = w.admin(Method::Get, "/admin/keys", None);
    assert_eq!(s, 200);
    assert!(!v.to_string().contains("fresh"));
    let (s, v) = w.admin(
        Method::Post,
        "/admin/keys",
        Some(r#"{"name": "again", "id": "fresh"}"#),
    );
    assert_eq!((s, code(&v)), (409, "key_exists"), "the index holds the id");
    let (s, v) = w.admin(Method::Delete, "/admin/keys/fresh", None);
    assert_eq!((s, v), (200, json!({"revoked": "fresh"})));
    assert_eq!(record_at(&w, &at)["revoked"], true);
}

#[test]
fn an_id_in_the_index_is_taken() {
    let w = World::new();
    // A record only the index names (as a create elsewhere a moment ago leaves it).
    w.kv.insert("gateway-key:cccc", r#"{"id": "taken", "name": "c"}"#);
    w.kv.hide_from_list("gateway-key:cccc");
    w.kv.insert("gateway-key-id:taken", "gateway-key:cccc");
    let (s, v) = w.admin(
        Method::Post,
        "/admin/keys",
        Some(r#"{"name": "again", "id": "taken"}"#),
    );
    assert_eq!((s, code(&v)), (409, "key_exists"));
    // An index naming a record that is gone does not hold the id.
    w.kv.insert("gateway-key-id:gone", "gateway-key:dddd");
    let (s, v) = w.admin(
        Method::Post,
        "/admin/keys",
        Some(r#"{"name": "new", "id": "gone"}"#),
    );
    assert_eq!(s, 201, "{v}");
}

#[test]
fn the_key_list_reads_metadata_not_each_record() {
    let w = World::new();
    for n in 0..5 {
        let (s, _) = w.admin(
            Method::Post,
            "/admin/keys",
            Some(&format!(r#"{{"name": "k{n}", "id": "k{n}"}}"#)),
        );
        assert_eq!(s, 201);
    }
    let before = w.kv.reads();
    let (s, v) = w.admin(Method::Get, "/admin/keys", None);
    assert_eq!(s, 200);
    assert_eq!(v["keys"].as_array().unwrap().len(), 6);
    assert_eq!(
        (v["unread"].clone(), v["truncated"].clone()),
        (json!(0), json!(false))
    );
    assert_eq!(
        w.kv.reads() - before,
        1,
        "one read: the seeded record, written without metadata"
    );
    // Records without metadata past the cap are counted, not read.
    for n in 0..250 {
        w.kv.insert(
            &format!("gateway-key:old{n:04}"),
            &format!(r#"{{"id": "old{n}", "name": "old"}}"#),
        );
    }
    let before = w.kv.reads();
    let (s, v) = w.admin(Method::Get, "/admin/keys", None);
    assert_eq!(s, 200);
    assert_eq!(w.kv.reads() - before, 200);
    assert_eq!(v["unread"], 51);
    assert_eq!(v["keys"].as_array().unwrap().len(), 5 + 200);
}
