//! The whole request path natively, over test doubles: a scripted upstream, a virtual clock (sleep
//! advances time instantly), in-memory KV and secrets. Exercises retries, backoff, Retry-After,
//! timeouts, fallback, the deadline, the call cap, the circuit breaker and the final error.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test doubles fail loudly"
)]

use futures::executor::block_on;
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use taskrouter::access::auth::hash_key;
use taskrouter::gateway::{handle, Handled, Ports, Settings, State};
use taskrouter::http::{Body, Incoming, Method, ReplyBody};
use taskrouter::ports::SeededRandom;
use taskrouter::ports::{
    Clock, FetchError, MemoryKv, NoCoordinator, NoSharedCache, Secret, Secrets, Upstream,
    UpstreamRequest, UpstreamResponse,
};

const KEY: &str = "gw-test-key";

struct NoSecrets;
impl Secrets for NoSecrets {
    fn get(&self, name: &str) -> Option<Secret> {
        (name == "KEY").then(|| Secret::new("sk-test"))
    }
}

#[derive(Default)]
struct VirtualClock {
    now: Cell<f64>,
    slept: RefCell<Vec<u64>>,
}
impl Clock for VirtualClock {
    fn now_ms(&self) -> f64 {
        self.now.get()
    }
    async fn sleep(&self, ms: u64) {
        self.slept.borrow_mut().push(ms);
        self.now.set(self.now.get() + ms as f64);
    }
}

/// One scripted answer: a status with headers and body, a hang (times out), or a network error.
#[derive(Clone)]
enum Answer {
    Status(u16, Vec<(&'static str, &'static str)>, &'static str),
    Ok,
    Hang,
    Refused,
}

struct Script<'a> {
    answers: RefCell<HashMap<String, VecDeque<Answer>>>,
    calls: RefCell<Vec<(String, u64)>>,
    clock: &'a VirtualClock,
}

impl Upstream for Script<'_> {
    type Body = Vec<u8>;
    async fn send(
        &self,
        request: UpstreamRequest,
        timeout_ms: u64,
    ) -> Result<UpstreamResponse<Vec<u8>>, FetchError> {
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        let model = body["model"].as_str().unwrap().to_string();
        self.calls.borrow_mut().push((model.clone(), timeout_ms));
        let answer = self
            .answers
            .borrow_mut()
            .get_mut(&model)
            .and_then(VecDeque::pop_front)
            .unwrap_or(Answer::Ok);
        self.clock.now.set(self.clock.now.get() + 10.0);
        match answer {
            Answer::Ok => Ok(UpstreamResponse {
                status: 200,
                headers: vec![("content-type".into(), "application/json".into())],
                body: json!({"id": "x", "object": "chat.completion", "model": model,
                             "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
                             "usage": {"prompt_tokens": 10, "completion_tokens": 5}})
                .to_string()
                .into_bytes(),
            }),
            Answer::Status(status, headers, body) => Ok(UpstreamResponse {
                status,
                headers: headers.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                body: body.as_bytes().to_vec(),
            }),
            Answer::Hang => {
                self.clock.now.set(self.clock.now.get() + timeout_ms as f64);
                Err(FetchError::Timeout)
            }
            Answer::Refused => Err(FetchError::Network("connection refused".into())),
        }
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

fn rules(default: Value, defaults: Value) -> String {
    json!({
        "version": 1,
        "providers": {"p": {"kind": "openai_compatible", "base_url": "https://p.example/v1", "api_key_secret": "KEY"},
                      "nokey": {"kind": "openai_compatible", "base_url": "https://n.example/v1", "api_key_secret": "MISSING"}},
        "models": {"a": {"provider": "p", "model": "model-a", "context_window": 8000},
                   "b": {"provider": "p", "model": "model-b", "context_window": 100000},
                   "c": {"provider": "p", "model": "model-c"},
                   "k": {"provider": "nokey", "model": "model-k"}},
        "default": default,
        "defaults": defaults
    })
    .to_string()
}

struct World {
    kv: MemoryKv,
    clock: VirtualClock,
    state: State,
}

impl World {
    fn new(rules: String) -> World {
        let kv = MemoryKv::default();
        kv.insert("rules", &rules);
        kv.insert(&format!("gateway-key:{}", hash_key(KEY)), r#"{"id": "t"}"#);
        World {
            kv,
            clock: VirtualClock::default(),
            state: State::default(),
        }
    }

    /// Send one chat request with the scripted answers; the calls made, the handled result.
    fn run(
        &self,
        answers: &[(&str, Vec<Answer>)],
        body: Value,
    ) -> (Vec<(String, u64)>, Handled<Vec<u8>>) {
        let script = Script {
            answers: RefCell::new(
                answers
                    .iter()
                    .map(|(m, a)| (m.to_string(), a.iter().cloned().collect()))
                    .collect(),
            ),
            calls: RefCell::new(Vec::new()),
            clock: &self.clock,
        };
        let rng = SeededRandom::new(5);
        let ports = Ports {
            kv: &self.kv,
            secrets: &NoSecrets,
            upstream: &script,
            clock: &self.clock,
            rng: &rng,
            cache: &NoSharedCache,
            coordinator: &NoCoordinator,
            model_files: &taskrouter::ports::CompiledIn,
        };
        let req = Incoming {
            method: Method::Post,
            path: "/v1/chat/completions".into(),
            headers: vec![("authorization".into(), format!("Bearer {KEY}"))],
            body: Body::Bytes(body.to_string().into_bytes()),
            request_id: "r1".into(),
            colo: None,
            country: None,
            query: String::new(),
        };
        let handled = block_on(handle(&self.state, &ports, &Settings::default(), req));
        let calls = script.calls.into_inner();
        (calls, handled)
    }
}

fn chat() -> Value {
    json!({"model": "auto", "messages": [{"role": "user", "content": "hello"}]})
}

fn error_of(h: &Handled<Vec<u8>>) -> Value {
    match &h.reply.body {
        ReplyBody::Bytes(b) => serde_json::from_slice(b).unwrap(),
        ReplyBody::Stream(_) => panic!("expected an error body"),
    }
}

fn models(calls: &[(String, u64)]) -> Vec<&str> {
    calls.iter().map(|(m, _)| m.as_str()).collect()
}

const E500: &str = r#"{"error": {"message": "secret upstream detail", "type": "server_error"}}"#;

#[test]
fn retries_with_backoff_then_succeeds() {
    let w = World::new(rules(
        json!("a"),
        json!({"retry": {"attempts": 2, "backoff_ms": 100}}),
    ));
    let (calls, h) = w.run(
        &[(
            "model-a",
            vec![
                Answer::Status(500, vec![], E500),
                Answer::Status(502, vec![], ""),
            ],
        )],
        chat(),
    );
    assert_eq!(h.reply.status, 200);
    assert_eq!(models(&calls), ["model-a"; 3]);
    let slept = w.clock.slept.borrow().clone();
    assert_eq!(slept.len(), 2);
    assert!(
        (50..=100).contains(&slept[0]) && (100..=200).contains(&slept[1]),
        "{slept:?}"
    );
    let record = h.record.unwrap();
    assert_eq!(
        (
            record.attempts,
            record.fallback_used,
            record.outcome.as_str()
        ),
        (3, false, "ok")
    );
    assert_eq!(h.reply.header("x-router-attempts"), Some("3"));
}

#[test]
fn retry_after_is_honoured() {
    let w = World::new(rules(json!("a"), json!({"retry": {"attempts": 1}})));
    let (calls, h) = w.run(
        &[(
            "model-a",
            vec![Answer::Status(429, vec![("retry-after", "2")], "{}")],
        )],
        chat(),
    );
    assert_eq!(h.reply.status, 200);
    assert_eq!(calls.len(), 2);
    assert_eq!(*w.clock.slept.borrow(), [2000]);
    let w = World::new(rules(json!("a"), json!({"retry": {"attempts": 1}})));
    let (_, _) = w.run(
        &[(
            "model-a",
            vec![Answer::Status(429, vec![("retry-after-ms", "350")], "{}")],
        )],
        chat(),
    );
    assert_eq!(*w.clock.slept.borrow(), [350]);
}

#[test]
fn timeouts_and_refused_connections_fall_back() {
    let w = World::new(rules(
        json!({"fallback": [{"model": "a", "timeout_ms": 700}, "b", "c"]}),
        json!({}),
    ));
    let (calls, h) = w.run(
        &[
            ("model-a", vec![Answer::Hang]),
            ("model-b", vec![Answer::Refused]),
        ],
        chat(),
    );
    assert_eq!(h.reply.status, 200);
    assert_eq!(models(&calls), ["model-a", "model-b", "model-c"]);
    assert_eq!(calls[0].1, 700, "the attempt's own timeout");
    let r = h.record.unwrap();
    assert_eq!(
        (r.attempts, r.fallback_used, r.target.as_str()),
        (3, true, "c")
    );
    assert_eq!(h.reply.header("x-router-fallback"), Some("yes"));
}

#[test]
fn a_bad_request_does_not_fall_back() {
    let w = World::new(rules(
        json!({"fallback": ["a", "b"]}),
        json!({"retry": {"attempts": 2}}),
    ));
    let (calls, h) = w.run(
        &[(
            "model-a",
            vec![Answer::Status(
                400,
                vec![],
                r#"{"error": {"message": "bad param"}}"#,
            )],
        )],
        chat(),
    );
    assert_eq!(h.reply.status, 400);
    assert_eq!(error_of(&h)["error"]["code"], "upstream_rejected_request");
    assert_eq!(calls.len(), 1);
}

#[test]
fn context_length_moves_to_a_larger_window() {
    let w = World::new(rules(
        json!({"fallback": ["a", {"model": "a", "override": {"temperature": 0}}, "b"]}),
        json!({}),
    ));
    let ctx = r#"{"error": {"code": "context_length_exceeded", "message": "too long"}}"#;
    let (calls, h) = w.run(
        &[("model-a", vec![Answer::Status(400, vec![], ctx)])],
        chat(),
    );
    assert_eq!(h.reply.status, 200);
    assert_eq!(
        models(&calls),
        ["model-a", "model-b"],
        "the second model-a attempt has the same window: skipped"
    );
}

#[test]
fn oversize_prompts_skip_small_windows_before_any_call() {
    let w = World::new(rules(json!({"fallback": ["a", "b"]}), json!({})));
    let long = json!({"model": "auto", "max_tokens": 1000, "messages": [{"role": "user", "content": "x".repeat(40_000)}]});
    let (calls, h) = w.run(&[], long);
    assert_eq!(h.reply.status, 200);
    assert_eq!(models(&calls), ["model-b"]);
    assert!(h
        .logs
        .iter()
        .any(|l| l.contains("targets_skipped") && l.contains("context window 8000")));
    let w = World::new(rules(json!("a"), json!({})));
    let (calls, h) = w.run(
        &[],
        json!({"model": "auto", "messages": [{"role": "user", "content": "x".repeat(40_000)}]}),
    );
    assert_eq!((calls.len(), h.reply.status), (0, 400));
    assert_eq!(error_of(&h)["error"]["code"], "context_length_exceeded");
}

#[test]
fn every_target_failing_lists_each_attempt_without_upstream_bodies() {
    let w = World::new(rules(json!({"fallback": ["a", "b"]}), json!({})));
    let (calls, h) = w.run(
        &[
            ("model-a", vec![Answer::Status(500, vec![], E500)]),
            ("model-b", vec![Answer::Status(503, vec![], E500)]),
        ],
        chat(),
    );
    assert_eq!(calls.len(), 2);
    assert_eq!(h.reply.status, 502);
    let e = error_of(&h);
    assert_eq!(e["error"]["code"], "all_targets_failed");
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("a: server_error HTTP 500; b: overloaded HTTP 503"),
        "{msg}"
    );
    assert!(!msg.contains("secret upstream detail"));
    // The last failure a rate limit: 429, with the provider's retry-after.
    let w = World::new(rules(json!({"fallback": ["a", "b"]}), json!({})));
    let (_, h) = w.run(
        &[
            ("model-a", vec![Answer::Status(500, vec![], "")]),
            (
                "model-b",
                vec![Answer::Status(429, vec![("retry-after", "30")], "")],
            ),
        ],
        chat(),
    );
    assert_eq!(h.reply.status, 429);
    assert_eq!(h.reply.header("retry-after"), Some("30"));
}

#[test]
fn a_missing_provider_key_fails_that_target_only() {
    let w = World::new(rules(json!({"fallback": ["k", "a"]}), json!({})));
    let (calls, h) = w.run(&[], chat());
    assert_eq!(h.reply.status, 200);
    assert_eq!(
        models(&calls),
        ["model-a"],
        "the keyless target was never called"
    );
    let w = World::new(rules(json!("k"), json!({})));
    let (_, h) = w.run(&[], chat());
    assert_eq!(error_of(&h)["error"]["code"], "provider_key_missing");
}

#[test]
fn the_deadline_bounds_every_wait() {
    let w = World::new(rules(
        json!({"fallback": ["a", "b"]}),
        json!({"timeout_ms": 1000, "deadline_ms": 1500, "retry": {"attempts": 3, "backoff_ms": 400}}),
    ));
    let (calls, h) = w.run(
        &[
            ("model-a", vec![Answer::Hang, Answer::Hang]),
            ("model-b", vec![Answer::Hang]),
        ],
        chat(),
    );
    // a: times out at 1000 (+10); a retry would wait ~300-400 then time out again: 1000+400 < 1500 so it
    // retries once with the remaining ~90 ms as its timeout; then the budget is spent.
    assert!(
        w.clock.now.get() <= 1500.0 + 20.0,
        "ran past the deadline: {}",
        w.clock.now.get()
    );
    assert!(calls.iter().all(|(_, t)| *t <= 1000));
    assert!(
        calls.iter().skip(1).all(|(_, t)| *t < 1000),
        "later calls get what is left: {calls:?}"
    );
    assert_eq!(h.reply.status, 504);
}

#[test]
fn the_call_cap_is_respected() {
    let w = World::new(rules(
        json!({"fallback": ["a", "b", "c"]}),
        json!({"max_provider_calls": 2, "retry": {"attempts": 5, "backoff_ms": 1}}),
    ));
    let (calls, h) = w.run(
        &[
            ("model-a", vec![Answer::Status(500, vec![], ""); 9]),
            ("model-b", vec![Answer::Status(500, vec![], ""); 9]),
        ],
        chat(),
    );
    assert_eq!(calls.len(), 2);
    assert_eq!(h.reply.status, 502);
}

#[test]
fn a_failing_target_cools_down_then_is_probed() {
    let w = World::new(rules(
        json!({"fallback": ["a", "b"]}),
        json!({"cooldown": {"after_failures": 2, "cooldown_ms": 10000}}),
    ));
    let fail = || vec![Answer::Status(500, vec![], "")];
    for _ in 0..2 {
        let (calls, _) = w.run(&[("model-a", fail())], chat());
        assert_eq!(models(&calls), ["model-a", "model-b"]);
    }
    let (calls, h) = w.run(&[("model-a", fail())], chat());
    assert_eq!(models(&calls), ["model-b"], "a is cooling down");
    assert_eq!(h.reply.status, 200);
    w.clock.now.set(w.clock.now.get() + 10_001.0);
    let (calls, _) = w.run(&[], chat());
    assert_eq!(
        models(&calls),
        ["model-a"],
        "after the cooldown one probe goes through, and succeeds"
    );
    let (calls, _) = w.run(&[], chat());
    assert_eq!(models(&calls), ["model-a"]);
}
