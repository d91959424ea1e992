//! Limits and target health shared across isolates, natively: two isolates (two `State`s) serve
//! one key through the whole request path, with the Durable Objects in memory (each object's
//! state kept as the shell's object class keeps it, run through the same pure exchanges), and the
//! deferred work run after each answer as `wait_until` would. A virtual clock stands still unless
//! a test moves it.
#![expect(clippy::unwrap_used, reason = "test doubles fail loudly")]

use futures::executor::block_on;
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use taskrouter::access::admission::LimitDecision;
use taskrouter::access::auth::hash_key;
use taskrouter::gateway::{handle, run_deferred, Handled, Ports, Settings, State};
use taskrouter::http::{Body, Incoming, Method};
use taskrouter::ports::{
    Clock, Coordinator, FetchError, MemoryKv, NoSharedCache, Secret, Secrets, SeededRandom,
    SharedObject, StoreError, Upstream, UpstreamRequest, UpstreamResponse,
};
use taskrouter::record::analytics::RequestRecord;
use taskrouter::settings::WhenUnreachable;

const KEY: &str = "shared-test-key";

struct Clockwork(Cell<f64>);
impl Clock for Clockwork {
    fn now_ms(&self) -> f64 {
        self.0.get()
    }
    async fn sleep(&self, ms: u64) {
        self.0.set(self.0.get() + ms as f64);
    }
}

struct Keys;
impl Secrets for Keys {
    fn get(&self, _name: &str) -> Option<Secret> {
        Some(Secret::new("sk"))
    }
}

/// Answers every call with 10 input and 5 output tokens, except for the models that fail (503).
struct Provider {
    failing: HashSet<String>,
    calls: RefCell<Vec<String>>,
}

impl Upstream for Provider {
    type Body = Vec<u8>;
    async fn send(
        &self,
        request: UpstreamRequest,
        _timeout_ms: u64,
    ) -> Result<UpstreamResponse<Vec<u8>>, FetchError> {
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        let model = body["model"].as_str().unwrap().to_string();
        self.calls.borrow_mut().push(model.clone());
        let (status, body) = match self.failing.contains(&model) {
            true => (503, json!({"error": {"message": "overloaded"}})),
            false => (
                200,
                json!({"id": "x", "object": "chat.completion", "model": model,
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": 10, "completion_tokens": 5}}),
            ),
        };
        Ok(UpstreamResponse {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
        })
    }
    async fn read_all(&self, body: Vec<u8>, _timeout_ms: u64) -> Result<Vec<u8>, FetchError> {
        Ok(body)
    }
    async fn next_chunk(
        &self,
        _body: &mut Vec<u8>,
        _timeout_ms: u64,
    ) -> Result<Option<Vec<u8>>, FetchError> {
        Ok(None)
    }
}

/// An object's pure exchange: its state and a request body in, the new state and the answer out.
type Exchange = fn(Option<&str>, &str, f64) -> Result<(String, String), String>;

/// The Durable Objects, in memory; `down` makes every call fail.
struct Objects<'a> {
    states: RefCell<HashMap<(bool, String), String>>,
    clock: &'a Clockwork,
    down: Cell<bool>,
    calls: Cell<u32>,
    /// Of which to the keys' objects.
    limit_calls: Cell<u32>,
}

impl Coordinator for Objects<'_> {
    fn bound(&self) -> bool {
        true
    }
    async fn call(
        &self,
        object: SharedObject,
        name: &str,
        body: &str,
        _timeout_ms: u64,
    ) -> Result<String, StoreError> {
        self.calls.set(self.calls.get() + 1);
        if object == SharedObject::KeyLimits {
            self.limit_calls.set(self.limit_calls.get() + 1);
        }
        if self.down.get() {
            return Err(StoreError("down".into()));
        }
        let (limits, serve): (bool, Exchange) = match object {
            SharedObject::KeyLimits => (true, taskrouter::access::ledger::serve),
            SharedObject::TargetHealth => (false, taskrouter::dispatch::health::serve),
        };
        let slot = (limits, name.to_string());
        let stored = self.states.borrow().get(&slot).cloned();
        let (state, reply) =
            serve(stored.as_deref(), body, self.clock.now_ms()).map_err(StoreError)?;
        self.states.borrow_mut().insert(slot, state);
        Ok(reply)
    }
}

struct Edge<'a> {
    kv: MemoryKv,
    provider: Provider,
    objects: Objects<'a>,
    clock: &'a Clockwork,
    isolates: [State; 2],
    settings: Settings,
}

impl<'a> Edge<'a> {
    fn new(clock: &'a Clockwork, key: Value, rules: Value, failing: &[&str]) -> Edge<'a> {
        let kv = MemoryKv::default();
        kv.insert("rules", &rules.to_string());
        kv.insert(&format!("gateway-key:{}", hash_key(KEY)), &key.to_string());
        Edge {
            kv,
            provider: Provider {
                failing: failing.iter().map(ToString::to_string).collect(),
                calls: RefCell::new(Vec::new()),
            },
            objects: Objects {
                states: RefCell::new(HashMap::new()),
                clock,
                down: Cell::new(false),
                calls: Cell::new(0),
                limit_calls: Cell::new(0),
            },
            clock,
            isolates: [State::new("a".into()), State::new("b".into())],
            settings: Settings::default(),
        }
    }

    /// One request through isolate `i`, then its deferred work.
    fn request(&self, i: usize) -> (u16, RequestRecord) {
        let ports = Ports {
            kv: &self.kv,
            secrets: &Keys,
            upstream: &self.provider,
            clock: self.clock,
            rng: &SeededRandom::new(3),
            cache: &NoSharedCache,
            coordinator: &self.objects,
            model_files: &taskrouter::ports::CompiledIn,
        };
        let req = Incoming {
            method: Method::Post,
            path: "/v1/chat/completions".into(),
            headers: vec![("authorization".into(), format!("Bearer {KEY}"))],
            body: Body::Bytes(
                json!({"model": "auto", "messages": [{"role": "user", "content": "hi"}]})
                    .to_string()
                    .into_bytes(),
            ),
            request_id: "r".into(),
            colo: None,
            country: None,
            query: String::new(),
        };
        let state = &self.isolates[i];
        let Handled {
            reply,
            record,
            deferred,
            ..
        } = block_on(handle(state, &ports, &self.settings, req));
        block_on(run_deferred(state, &ports, &self.settings, deferred));
        (reply.status, record.unwrap())
    }
}

fn rules(default: Value) -> Value {
    json!({
        "version": 1,
        "providers": {"p": {"kind": "openai_compatible", "base_url": "https://p.example/v1", "api_key_secret": "KEY"}},
        "models": {"a": {"provider": "p", "model": "model-a", "price_per_mtok": {"input": 10, "output": 30}},
                   "b": {"provider": "p", "model": "model-b", "price_per_mtok": {"input": 10, "output": 30}}},
        "default": default,
        "defaults": {"cooldown": {"after_failures": 2, "cooldown_ms": 60000}}
    })
}

#[test]
fn a_per_minute_cap_holds_across_two_isolates() {
    let clock = Clockwork(Cell::new(10.0 * 60_000.0 + 1_000.0));
    let key = json!({"id": "busy", "requests_per_minute": 40});
    let edge = Edge::new(&clock, key, rules(json!("a")), &[]);
    let (mut served, mut calls) = (0, 0);
    for n in 0..120 {
        let (status, record) = edge.request(n % 2);
        served += u32::from(status == 200);
        calls += record.object_calls;
        if status == 429 {
            assert_eq!(record.limits, Some(LimitDecision::Limited));
        }
    }
    // Within one minute the object grants no more than the limit.
    assert_eq!(served, 40);
    assert_eq!(calls, edge.objects.calls.get());
    // Leases of 4 renewed at half: about one object call per two requests served, and no call
    // at all for refusals once both isolates know.
    assert!(
        calls <= 40 / 2 + 6,
        "{calls} object calls for {served} requests"
    );
    // The next minute serves again.
    clock.0.set(clock.0.get() + 60_000.0);
    assert_eq!(edge.request(0).0, 200);
}

#[test]
fn a_spend_cap_holds_across_two_isolates_within_what_is_in_flight() {
    let clock = Clockwork(Cell::new(1_000.0));
    // Each answer costs 10 x 10 + 5 x 30 = 250 micro-dollars.
    let cap = 0.002;
    let key = json!({"id": "capped", "spend_usd_per_day": cap});
    let edge = Edge::new(&clock, key, rules(json!("a")), &[]);
    let mut spent = 0.0;
    for n in 0..40 {
        let (status, record) = edge.request(n % 2);
        if status == 200 {
            spent += record.cost_usd;
        } else {
            assert_eq!(status, 429);
        }
    }
    // Requests here are sequential: at most one in flight per isolate when its slice runs out.
    assert!(spent >= cap - 1e-12, "{spent}");
    assert!(spent <= cap + 2.0 * 0.00025 + 1e-12, "{spent}");
}

#[test]
fn an_unreachable_object_fails_open_or_closed_as_set() {
    let clock = Clockwork(Cell::new(1_000.0));
    let key = json!({"id": "capped", "spend_usd_per_day": 1.0, "requests_per_minute": 100});
    let mut edge = Edge::new(&clock, key, rules(json!("a")), &[]);
    edge.objects.down.set(true);
    // By default a spend limit fails closed.
    let (status, record) = edge.request(0);
    assert_eq!(status, 503);
    assert_eq!(record.outcome.as_str(), "limits_unavailable");
    assert_eq!(record.limits, Some(LimitDecision::UnreachableClosed));
    // Open: served, counted in the isolate, without waiting for the object again so soon.
    edge.settings.spend_limit_unreachable = WhenUnreachable::Open;
    let calls = edge.objects.limit_calls.get();
    let (status, record) = edge.request(0);
    assert_eq!(status, 200);
    assert_eq!(record.limits, Some(LimitDecision::UnreachableOpen));
    assert_eq!(
        edge.objects.limit_calls.get(),
        calls,
        "not asked again within seconds"
    );
    // A request limit set to fail closed refuses too.
    edge.settings.rate_limit_unreachable = WhenUnreachable::Closed;
    assert_eq!(edge.request(1).0, 503);
    // Back up, and a few seconds later: leases again.
    edge.objects.down.set(false);
    clock.0.set(clock.0.get() + 6_000.0);
    let (status, record) = edge.request(1);
    assert_eq!((status, record.limits), (200, Some(LimitDecision::Renewed)));
    let (status, record) = edge.request(1);
    assert_eq!((status, record.limits), (200, Some(LimitDecision::Lease)));
}

#[test]
fn a_target_down_in_one_isolate_is_skipped_by_the_other() {
    let clock = Clockwork(Cell::new(1_000.0));
    let key = json!({"id": "plain"});
    let edge = Edge::new(
        &clock,
        key,
        rules(json!({"fallback": ["a", "b"]})),
        &["model-a"],
    );
    // Isolate 0 finds `a` failing twice: the object marks it down.
    for _ in 0..2 {
        let (status, record) = edge.request(0);
        assert_eq!((status, record.target.as_str()), (200, "b"));
    }
    // Isolate 1 has not failed on `a` yet; its first request still tries it (and reads the
    // object afterwards), its second skips it.
    let (_, first) = edge.request(1);
    assert_eq!(first.attempts, 2);
    let calls_before = edge.provider.calls.borrow().len();
    let (status, second) = edge.request(1);
    assert_eq!(
        (status, second.attempts, second.target.as_str()),
        (200, 1, "b")
    );
    assert_eq!(edge.provider.calls.borrow().len(), calls_before + 1);
    assert!(second.fallback_used);
}
