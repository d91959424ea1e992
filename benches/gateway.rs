//! One whole chat request through the core on the host, as the Worker runs it after reading the
//! body: parse, key check, rules (cached), facts, classification, routing, the provider request,
//! the answer read and passed on, and the analytics record with its data point and log line. The
//! ports are in-memory doubles (the provider answers at once), so this is the core's share of a
//! request's CPU; the rest of the Worker's cost is the runtime's (docs/performance.md).
#![expect(
    clippy::panic,
    reason = "a benchmark whose setup fails must stop loudly"
)]

use criterion::{criterion_group, criterion_main, Criterion};
use futures::executor::block_on;
use serde_json::json;
use std::hint::black_box;
use taskrouter::access::auth::hash_key;
use taskrouter::gateway::{handle, Ports, Settings, State};
use taskrouter::http::{Body, Incoming, Method};
use taskrouter::ports::SeededRandom;
use taskrouter::ports::{
    Clock, FetchError, MemoryKv, NoCoordinator, NoSharedCache, Secret, Secrets, Upstream,
    UpstreamRequest, UpstreamResponse,
};

#[allow(dead_code, reason = "each benchmark uses part of the shared workload")]
mod workload;

const KEY: &str = "bench-key";

struct AnySecret;
impl Secrets for AnySecret {
    fn get(&self, _name: &str) -> Option<Secret> {
        Some(Secret::new("sk-bench"))
    }
}

struct FixedClock;
impl Clock for FixedClock {
    fn now_ms(&self) -> f64 {
        1.7e12
    }
    async fn sleep(&self, _ms: u64) {}
}

/// A provider that answers every call with the same completion, as the mock does.
struct Answering;
impl Upstream for Answering {
    type Body = Vec<u8>;
    async fn send(
        &self,
        request: UpstreamRequest,
        _timeout_ms: u64,
    ) -> Result<UpstreamResponse<Vec<u8>>, FetchError> {
        black_box(&request.body);
        Ok(UpstreamResponse {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "f",
                         "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello! How can I help?"}, "finish_reason": "stop"}],
                         "usage": {"prompt_tokens": 2100, "completion_tokens": 7, "total_tokens": 2107}})
            .to_string()
            .into_bytes(),
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

fn bench(c: &mut Criterion) {
    let kv = MemoryKv::default();
    kv.insert("rules", &workload::big_rules());
    kv.insert(&format!("gateway-key:{}", hash_key(KEY)), r#"{"id": "t"}"#);
    let state = State::default();
    let rng = SeededRandom::new(1);
    let ports = Ports {
        kv: &kv,
        secrets: &AnySecret,
        upstream: &Answering,
        clock: &FixedClock,
        rng: &rng,
        cache: &NoSharedCache,
        coordinator: &NoCoordinator,
        model_files: &taskrouter::ports::CompiledIn,
    };
    let settings = Settings::default();
    for (name, prompt) in [
        ("small", "hello there".to_string()),
        ("8 KB", workload::prose_8k()),
    ] {
        let body = json!({"model": "auto", "messages": [{"role": "user", "content": prompt}],
                          "metadata": {"tier": "tier3"}})
        .to_string()
        .into_bytes();
        let request = || Incoming {
            method: Method::Post,
            path: "/v1/chat/completions".into(),
            headers: vec![
                ("authorization".into(), format!("Bearer {KEY}")),
                ("content-type".into(), "application/json".into()),
            ],
            body: Body::Bytes(body.clone()),
            request_id: "0123456789abcdef".into(),
            colo: None,
            country: None,
            query: String::new(),
        };
        // The first request loads and compiles the rules; the benchmark is the cached path.
        let first = block_on(handle(&state, &ports, &settings, request()));
        if first.reply.status != 200 {
            panic!("{name}: status {}", first.reply.status);
        }
        c.bench_function(
            &format!("whole request in the core, {name} prompt, 100 routes, 2000 keywords"),
            |b| {
                b.iter(|| {
                    let handled = block_on(handle(&state, &ports, &settings, request()));
                    let record = handled.record.map(|r| (r.data_point(), r.log_line()));
                    black_box((handled.reply, record))
                })
            },
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
