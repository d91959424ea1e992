//! The request path, end to end, over the ports: the Workers shell calls `handle` and only adapts
//! what goes in and comes out. Steps of a chat request (numbered in `chat_steps`):
//! (1) authenticate, (2) parse the body, (3) load the rules, (4) derive facts, classify and decide
//! the attempt plan, (5) call the plan's attempts in order until one succeeds or a failure must not
//! move on, (6) reply: a streamed answer passes through untouched, a whole one is returned unchanged.
//! Every chat request yields one `RequestRecord`, whatever its outcome.

use crate::analytics::RequestRecord;
use crate::attempt::{self, CallPorts, Failure};
use crate::auth::{KeyCache, KeyRecord};
use crate::breaker::{Breakers, Gate};
use crate::cascade::{self, CascadeCache};
use crate::error::{ApiError, ErrorCode};
use crate::explain::explain;
use crate::facts::derive;
use crate::front_anthropic;
use crate::http::{Body, Incoming, Method, Reply, ReplyBody};
use crate::plan::Random;
use crate::ports::{Clock, KvStore, Secrets, SharedCache, Upstream};
use crate::providers::errors::ErrorKind;
use crate::request::{parse_chat, ChatRequest, DEFAULT_MAX_BODY_BYTES, METADATA_HEADER};
use crate::resilience::{next_step, Budget, Next};
use crate::route::{decide_with, wants_cascade, Trace};
use crate::rules::Rules;
use crate::rules_cache::{Loaded, RulesCache};
use crate::task_model::OUT_OF_SCOPE;
use serde_json::json;
use std::rc::Rc;

pub const CHAT_PATH: &str = "/v1/chat/completions";
pub const EXPLAIN_PATH: &str = "/v1/router/explain";
pub const MODELS_PATH: &str = "/v1/models";
/// The Anthropic front door (Messages API).
pub const MESSAGES_PATH: &str = "/v1/messages";
pub const HEALTH_PATH: &str = "/healthz";
/// KV key of the live rules document.
pub const DEFAULT_RULES_KEY: &str = "rules";
pub const DEFAULT_CACHE_TTL_MS: f64 = 30_000.0;

/// Knobs the Worker reads from its vars.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub rules_key: String,
    /// How long rules and key records are trusted before KV is read again.
    pub cache_ttl_ms: f64,
    pub max_body_bytes: usize,
    /// Write one structured log line per request (`REQUEST_LOG` = `off` turns it off).
    pub request_log: bool,
    /// Vars that were set but could not be used: what was rejected and what is used instead.
    pub problems: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            rules_key: DEFAULT_RULES_KEY.into(),
            cache_ttl_ms: DEFAULT_CACHE_TTL_MS,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            request_log: true,
            problems: Vec::new(),
        }
    }
}

/// The largest `MAX_BODY_BYTES` accepted: the platform's own request body limit (100 MB).
pub const MAX_BODY_LIMIT: usize = 100 * 1024 * 1024;

impl Settings {
    /// Settings from the Worker's vars (`var` returns a var's text when it is set). A value that
    /// cannot be used is not silently ignored: it lands in `problems`, saying what was rejected
    /// and what is used instead, for the log and `GET /healthz`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Settings {
        let mut s = Settings::default();
        if let Some(v) = var("RULES_KEY") {
            match v.trim() {
                "" => s
                    .problems
                    .push(rejected("RULES_KEY", &v, "is empty", s.rules_key.clone())),
                key => s.rules_key = key.to_string(),
            }
        }
        if let Some(v) = var("CACHE_TTL_SECONDS") {
            match v.trim().parse::<f64>() {
                Ok(secs) if secs.is_finite() && (0.0..=86_400.0).contains(&secs) => {
                    s.cache_ttl_ms = secs * 1000.0;
                }
                _ => s.problems.push(rejected(
                    "CACHE_TTL_SECONDS",
                    &v,
                    "is not a number of seconds from 0 to 86400",
                    format!("{}", s.cache_ttl_ms / 1000.0),
                )),
            }
        }
        if let Some(v) = var("MAX_BODY_BYTES") {
            match v.trim().parse::<usize>() {
                Ok(n) if (1..=MAX_BODY_LIMIT).contains(&n) => s.max_body_bytes = n,
                _ => s.problems.push(rejected(
                    "MAX_BODY_BYTES",
                    &v,
                    "is not a whole number of bytes from 1 to 104857600",
                    s.max_body_bytes.to_string(),
                )),
            }
        }
        if let Some(v) = var("REQUEST_LOG") {
            match v.trim() {
                "off" => s.request_log = false,
                "on" | "" => s.request_log = true,
                _ => s.problems.push(rejected(
                    "REQUEST_LOG",
                    &v,
                    "is neither on nor off",
                    "on".into(),
                )),
            }
        }
        s
    }

    /// The effective settings, for `GET /healthz` (no secrets among them).
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "rules_key": self.rules_key,
            "cache_ttl_seconds": self.cache_ttl_ms / 1000.0,
            "max_body_bytes": self.max_body_bytes,
            "request_log": if self.request_log { "on" } else { "off" },
        })
    }
}

fn rejected(name: &str, value: &str, why: &str, used: String) -> String {
    let shown: String = value.chars().take(64).collect();
    format!("{name} {shown:?} {why}; using {used}")
}

/// What lives in the isolate between requests.
#[derive(Default)]
pub struct State {
    pub rules: RulesCache,
    pub keys: KeyCache,
    pub breakers: Breakers,
    pub limits: crate::limits::Limits,
    /// The classifier cascade's answers by prompt hash.
    pub cascade: CascadeCache,
}

/// The outside world, borrowed for one request.
pub struct Ports<'a, K, S, U, C, R, X> {
    pub kv: &'a K,
    pub secrets: &'a S,
    pub upstream: &'a U,
    pub clock: &'a C,
    pub rng: &'a R,
    /// Shared by the isolates of a location (the Cache API): cascade answers.
    pub cache: &'a X,
}

/// A reply, plus what the shell must record after sending it.
#[derive(Debug)]
pub struct Handled<B> {
    pub reply: Reply<B>,
    /// The analytics record (chat requests only).
    pub record: Option<RequestRecord>,
    /// Warnings for the log (stale rules, failed attempts). Never prompt text. The request's own
    /// structured line is `record.log_line()`, written by the shell with the data point.
    pub logs: Vec<String>,
}

pub async fn handle<K, S, U, C, R, X>(
    state: &State,
    ports: &Ports<'_, K, S, U, C, R, X>,
    settings: &Settings,
    req: Incoming,
) -> Handled<U::Body>
where
    K: KvStore,
    S: Secrets,
    U: Upstream,
    C: Clock,
    R: Random,
    X: SharedCache,
{
    let simple = |reply, logs| Handled {
        reply,
        record: None,
        logs,
    };
    match (req.path.as_str(), &req.method) {
        (HEALTH_PATH, Method::Get) => {
            let mut health = json!({"status": "ok", "settings": settings.to_json()});
            if !settings.problems.is_empty() {
                health["problems"] = json!(settings.problems);
            }
            simple(Reply::json(200, &health), Vec::new())
        }
        (CHAT_PATH, Method::Post) => chat(state, ports, settings, req).await,
        (MESSAGES_PATH, Method::Post) => messages(state, ports, settings, req).await,
        (EXPLAIN_PATH, Method::Post) => {
            let mut logs = Vec::new();
            let reply = match explain_steps(state, ports, settings, &req, &mut logs).await {
                Ok(reply) => reply,
                Err(e) => Reply::error(&e),
            };
            simple(reply, logs)
        }
        (MODELS_PATH, Method::Get) => {
            let mut logs = Vec::new();
            let reply = match models_steps(state, ports, settings, &req, &mut logs).await {
                Ok(reply) => reply,
                Err(e) => Reply::error(&e),
            };
            simple(reply, logs)
        }
        (path, _) if path.starts_with(crate::admin::PREFIX) => {
            let now = ports.clock.now_ms();
            let reply = crate::admin::handle(
                &req,
                ports.kv,
                ports.secrets,
                &state.rules,
                &settings.rules_key,
                now,
            )
            .await
            .unwrap_or_else(|e| Reply::error(&e));
            simple(reply, Vec::new())
        }
        (HEALTH_PATH | CHAT_PATH | EXPLAIN_PATH | MODELS_PATH | MESSAGES_PATH, _) => simple(
            Reply::error(&ApiError::new(
                ErrorCode::MethodNotAllowed,
                format!("{} does not accept this method", req.path),
            )),
            Vec::new(),
        ),
        _ => simple(
            Reply::error(&ApiError::new(
                ErrorCode::NotFound,
                format!("no route for {}", req.path),
            )),
            Vec::new(),
        ),
    }
}

/// Steps (1) to (3), shared by chat and explain.
async fn admit<K, S, U, C, R, X>(
    state: &State,
    ports: &Ports<'_, K, S, U, C, R, X>,
    settings: &Settings,
    req: &Incoming,
    record: &mut RequestRecord,
    logs: &mut Vec<String>,
) -> Result<(KeyRecord, ChatRequest, Rc<Rules>, Loaded), ApiError>
where
    K: KvStore,
    C: Clock,
{
    let now = ports.clock.now_ms();
    // (1) Authenticate.
    let key = state
        .keys
        .authenticate(req, ports.kv, now, settings.cache_ttl_ms)
        .await?;
    record.key_id = key.id.clone();
    // (2) Parse the body.
    let chat = parse_chat(
        &req.body,
        req.header(METADATA_HEADER),
        settings.max_body_bytes,
    )?;
    record.stream = chat.stream;
    record.prompt_bytes = chat.size;
    // (3) Load the rules.
    let loaded = load_rules(state, ports.kv, settings, now, logs).await?;
    record.rules_version = Some(loaded.rules.version);
    Ok((key, chat, Rc::clone(&loaded.rules), loaded))
}

/// The rules to serve with, saying so in the log when they are the last good ones kept because KV
/// holds something unusable.
async fn load_rules(
    state: &State,
    kv: &impl KvStore,
    settings: &Settings,
    now: f64,
    logs: &mut Vec<String>,
) -> Result<Loaded, ApiError> {
    let loaded = state
        .rules
        .get(kv, &settings.rules_key, now, settings.cache_ttl_ms)
        .await?;
    if let Some(why) = &loaded.stale_because {
        logs.push(
            json!({"event": "rules_stale", "serving_version": loaded.rules.version, "reason": why})
                .to_string(),
        );
    }
    Ok(loaded)
}

/// `GET /v1/models`: what callers may name as `model`, in OpenAI's list shape: `auto`, the tasks
/// of the rules, and their models.
async fn models_steps<K, S, U, C, R, X>(
    state: &State,
    ports: &Ports<'_, K, S, U, C, R, X>,
    settings: &Settings,
    req: &Incoming,
    logs: &mut Vec<String>,
) -> Result<Reply<U::Body>, ApiError>
where
    K: KvStore,
    U: Upstream,
    C: Clock,
{
    let now = ports.clock.now_ms();
    state
        .keys
        .authenticate(req, ports.kv, now, settings.cache_ttl_ms)
        .await?;
    let loaded = load_rules(state, ports.kv, settings, now, logs).await?;
    let rules = &loaded.rules;
    let entry = |id: &str, kind: &str, extra: serde_json::Value| {
        let mut e = json!({"id": id, "object": "model", "created": 0, "owned_by": "taskrouter", "router_kind": kind});
        if let (Some(o), Some(x)) = (e.as_object_mut(), extra.as_object()) {
            o.extend(x.clone());
        }
        e
    };
    let mut data = vec![entry(crate::route::AUTO, "auto", json!({}))];
    data.extend(
        rules
            .classifier
            .task_names()
            .map(|t| entry(t, "task", json!({}))),
    );
    data.extend(rules.models.values().map(|m| {
        entry(&m.name, "model", json!({"provider": m.provider, "provider_model": m.model, "context_window": m.context_window}))
    }));
    let mut reply = Reply::json(200, &json!({"object": "list", "data": data}));
    mark_rules(&mut reply, &loaded);
    Ok(reply)
}

/// The headers that say which rules answered: their version, and `stale` when they are the last
/// good ones kept because KV holds something unusable.
fn mark_rules<B>(reply: &mut Reply<B>, loaded: &Loaded) {
    reply.set_header("x-router-rules-version", loaded.rules.version.to_string());
    if loaded.stale_because.is_some() {
        reply.set_header("x-router-rules-status", "stale");
    }
}

async fn explain_steps<K, S, U, C, R, X>(
    state: &State,
    ports: &Ports<'_, K, S, U, C, R, X>,
    settings: &Settings,
    req: &Incoming,
    logs: &mut Vec<String>,
) -> Result<Reply<U::Body>, ApiError>
where
    K: KvStore,
    U: Upstream,
    C: Clock,
    R: Random,
{
    let mut record = RequestRecord::default();
    let (_, chat, rules, loaded) = admit(state, ports, settings, req, &mut record, logs).await?;
    let body = explain(&rules, &chat, &req.headers, ports.rng)?;
    let mut reply = Reply::json(200, &body);
    mark_rules(&mut reply, &loaded);
    Ok(reply)
}

/// `POST /v1/messages`: the Anthropic front door. The Messages request becomes a chat request,
/// takes the same path (routing, fallback, analytics), and its answer goes back in the Messages
/// API's shape: a message, an Anthropic event stream, or an Anthropic error.
async fn messages<K, S, U, C, R, X>(
    state: &State,
    ports: &Ports<'_, K, S, U, C, R, X>,
    settings: &Settings,
    mut req: Incoming,
) -> Handled<U::Body>
where
    K: KvStore,
    S: Secrets,
    U: Upstream,
    C: Clock,
    R: Random,
    X: SharedCache,
{
    let converted = match &req.body {
        Body::Bytes(b) if b.len() <= settings.max_body_bytes => {
            serde_json::from_slice::<serde_json::Value>(b)
                .map_err(|e| {
                    ApiError::new(
                        ErrorCode::InvalidJson,
                        format!("the request body is not valid JSON: {e}"),
                    )
                })
                .and_then(|v| front_anthropic::request_to_openai(&v))
        }
        // Let the chat path report the size with its usual error.
        Body::Bytes(_) | Body::TooLarge { .. } => Ok(serde_json::Value::Null),
    };
    match converted {
        Ok(serde_json::Value::Null) => {}
        Ok(body) => req.body = Body::Bytes(body.to_string().into_bytes()),
        Err(e) => {
            let mut reply = Reply::<U::Body>::error(&e);
            reply.body = ReplyBody::Bytes(front_anthropic::error_body(&e));
            return Handled {
                reply,
                record: None,
                logs: Vec::new(),
            };
        }
    }
    let mut handled = chat(state, ports, settings, req).await;
    let reply = &mut handled.reply;
    let body = std::mem::replace(&mut reply.body, ReplyBody::Bytes(Vec::new()));
    reply.body = match body {
        ReplyBody::Stream(mut streamed) => {
            streamed.prefix = streamed.watch.serve_anthropic_front(&streamed.prefix);
            ReplyBody::Stream(streamed)
        }
        ReplyBody::Bytes(bytes) => {
            let parsed: serde_json::Value =
                serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
            if reply.status == 200 {
                ReplyBody::Bytes(
                    front_anthropic::response_from_openai(&parsed)
                        .to_string()
                        .into_bytes(),
                )
            } else {
                let code = handled
                    .record
                    .as_ref()
                    .map_or("internal_error", |r| r.outcome.as_str());
                let message = parsed
                    .pointer("/error/message")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("");
                ReplyBody::Bytes(front_anthropic::error_body_for_status(
                    reply.status,
                    code,
                    message,
                ))
            }
        }
    };
    handled
}

async fn chat<K, S, U, C, R, X>(
    state: &State,
    ports: &Ports<'_, K, S, U, C, R, X>,
    settings: &Settings,
    req: Incoming,
) -> Handled<U::Body>
where
    K: KvStore,
    S: Secrets,
    U: Upstream,
    C: Clock,
    R: Random,
    X: SharedCache,
{
    let started = ports.clock.now_ms();
    let mut record = RequestRecord {
        key_id: "anonymous".into(),
        request_id: req.request_id.clone(),
        colo: req.colo.clone().unwrap_or_default(),
        country: req.country.clone().unwrap_or_default(),
        ..RequestRecord::default()
    };
    let mut logs = Vec::new();
    let mut reply = match chat_steps(state, ports, settings, &req, &mut record, &mut logs).await {
        Ok(reply) => {
            record.outcome = "ok".into();
            reply
        }
        Err(failure) => {
            record.outcome = failure.error.code.code().into();
            let mut reply = Reply::error(&failure.error);
            if let Some(retry_after) = failure.retry_after {
                reply.set_header("retry-after", retry_after);
            }
            reply
        }
    };
    record.status = reply.status;
    record.total_ms = (ports.clock.now_ms() - started).max(0.0);
    reply.set_header("x-router-request-id", record.request_id.clone());
    if let Some(v) = record.rules_version {
        reply.set_header("x-router-rules-version", v.to_string());
    }
    let named = [
        ("x-router-task", &record.task),
        ("x-router-rule", &record.rule),
        ("x-router-target", &record.target),
        ("x-router-provider", &record.provider),
        ("x-router-model", &record.model),
    ];
    for (name, value) in named {
        if !value.is_empty() {
            reply.set_header(name, value.clone());
        }
    }
    if record.attempts > 0 {
        reply.set_header("x-router-attempts", record.attempts.to_string());
        reply.set_header(
            "x-router-fallback",
            if record.fallback_used { "yes" } else { "no" },
        );
    }
    Handled {
        reply,
        record: Some(record),
        logs,
    }
}

async fn chat_steps<K, S, U, C, R, X>(
    state: &State,
    ports: &Ports<'_, K, S, U, C, R, X>,
    settings: &Settings,
    req: &Incoming,
    record: &mut RequestRecord,
    logs: &mut Vec<String>,
) -> Result<Reply<U::Body>, Failure>
where
    K: KvStore,
    S: Secrets,
    U: Upstream,
    C: Clock,
    R: Random,
    X: SharedCache,
{
    let started = ports.clock.now_ms();
    let (key, chat, rules, loaded) = admit(state, ports, settings, req, record, logs).await?;
    // The key's own limits (counted in this isolate).
    if let Err(exceeded) = state.limits.admit(&key, started) {
        return Err(Failure {
            retry_after: Some(exceeded.retry_after_s.to_string()),
            ..Failure::local(exceeded.error)
        });
    }

    // (4) Facts, classification, decision.
    let mut derived = derive(&chat, &req.headers);
    record.estimated_prompt_tokens = derived.facts["estimated_tokens"].as_u64().unwrap_or(0);
    let own_key = crate::auth::own_provider_key(req);
    let call_ports = CallPorts {
        own_key: own_key.as_ref(),
        secrets: ports.secrets,
        upstream: ports.upstream,
        clock: ports.clock,
    };
    // Decide; when the built-in model is unsure, ask the cascade model once and decide again with
    // its label (if it answers).
    let mut label: Option<String> = None;
    let decision = loop {
        let decision = decide_with(
            &rules,
            &chat.model,
            &mut derived.facts,
            &derived.texts,
            ports.rng,
            Trace::Off,
            label.as_deref(),
        )?;
        let cascade = match (&label, wants_cascade(&rules, &decision)) {
            (None, Some(cascade)) => cascade,
            _ => break decision,
        };
        label = ask_cascade(
            state,
            ports.cache,
            &rules,
            cascade,
            &derived,
            &call_ports,
            ports.rng,
            record,
            logs,
        )
        .await;
        if label.is_none() {
            break decision;
        }
    };
    record.task = decision.classification.task.clone().unwrap_or_default();
    record.task_source = decision.classification.source.to_string();
    record.classifier_score = decision.classification.score;
    record.rule = decision.rule.clone();
    key.permits(&decision.rule, decision.classification.task.as_deref())?;

    if !decision.skipped.is_empty() {
        logs.push(json!({"event": "targets_skipped", "request_id": record.request_id, "skipped": decision.skipped}).to_string());
    }

    // (5) The attempts, in order, as `resilience::next_step` directs.
    let defaults = &rules.defaults;
    let plan = &decision.plan;
    let mut history: Vec<String> = Vec::new();
    let mut retries = 0u32;
    // After a context-length failure, only larger windows are worth trying.
    let mut window_floor: Option<u64> = None;
    let mut i = 0;
    while i < plan.len() {
        let attempt = &plan[i];
        let window = rules
            .models
            .get(&attempt.target)
            .and_then(|m| m.context_window);
        let has_next = i + 1 < plan.len();
        if let (Some(floor), Some(w)) = (window_floor, window) {
            if w <= floor && has_next {
                history.push(format!(
                    "{}: skipped (context window {w} <= {floor})",
                    attempt.target
                ));
                i += 1;
                continue;
            }
        }
        let breaker_key = format!("{}/{}", attempt.provider, attempt.model_id);
        let now = ports.clock.now_ms();
        if retries == 0
            && has_next
            && state.breakers.gate(&breaker_key, defaults.cooldown, now) == Gate::Open
        {
            history.push(format!(
                "{}: skipped (cooling down after repeated failures)",
                attempt.target
            ));
            i += 1;
            continue;
        }
        let elapsed = now - started;
        let remaining = (defaults.deadline_ms as f64 - elapsed).max(1.0) as u64;
        record.attempts += 1;
        record.fallback_used = i > 0;
        record.target = attempt.target.clone();
        record.provider = attempt.provider.clone();
        record.model = attempt.model_id.clone();
        let result = attempt::call(
            &rules,
            attempt,
            &chat,
            &call_ports,
            attempt.timeout_ms.min(remaining),
            logs,
        )
        .await;
        let done_at = ports.clock.now_ms();
        match result {
            Ok(success) => {
                state
                    .breakers
                    .record(&breaker_key, defaults.cooldown, false, done_at);
                record.ttfb_ms = success.ttfb_ms;
                record.upstream_ms += success.upstream_ms;
                if matches!(success.reply.body, ReplyBody::Bytes(_)) {
                    let price = rules.models.get(&attempt.target).and_then(|m| m.price);
                    record.settle_usage(success.usage, success.answer_chars, price);
                    state
                        .limits
                        .add_spend(&record.key_id, record.cost_usd, done_at);
                }
                // (6) Reply; `chat` adds the router's headers from the record.
                let mut reply = success.reply;
                if loaded.stale_because.is_some() {
                    reply.set_header("x-router-rules-status", "stale");
                }
                return Ok(reply);
            }
            Err(failure) => {
                state.breakers.record(
                    &breaker_key,
                    defaults.cooldown,
                    failure.kind.is_transient(),
                    done_at,
                );
                let status = failure
                    .status
                    .map(|s| format!(" HTTP {s}"))
                    .unwrap_or_default();
                history.push(format!(
                    "{}: {}{status}",
                    attempt.target,
                    failure.kind.as_str()
                ));
                logs.push(
                    json!({"event": "attempt_failed", "request_id": record.request_id, "attempt": record.attempts,
                           "target": attempt.target, "provider": attempt.provider,
                           "kind": failure.kind.as_str(), "status": failure.status})
                    .to_string(),
                );
                let budget = Budget {
                    elapsed_ms: done_at - started,
                    deadline_ms: defaults.deadline_ms,
                    calls_made: record.attempts,
                    max_calls: defaults.max_provider_calls,
                };
                match next_step(
                    attempt,
                    retries,
                    has_next,
                    &failure.failed(),
                    budget,
                    ports.rng.next_f64(),
                ) {
                    Next::Retry { delay_ms } => {
                        ports.clock.sleep(delay_ms).await;
                        retries += 1;
                    }
                    Next::NextTarget => {
                        if failure.kind == ErrorKind::ContextLengthExceeded {
                            window_floor = window_floor.max(window);
                        }
                        retries = 0;
                        i += 1;
                    }
                    Next::GiveUp => return Err(final_failure(failure, &history, record)),
                }
            }
        }
    }
    Err(Failure::local(ApiError::new(
        ErrorCode::AllTargetsFailed,
        format!("no target could serve the request: {}", history.join("; ")),
    )))
}

/// Ask the cascade model for the request's label: from the isolate's cache when this prompt was
/// asked before, else with one call (no retries, the cascade's own timeout). `None` when the call
/// fails, its answer is not one of the labels, or it says `out_of_scope` (when the model has that
/// label, the cascade may answer it too); the request is then routed without a task from it.
#[expect(
    clippy::too_many_arguments,
    reason = "one step of chat_steps, given what it needs"
)]
async fn ask_cascade<S: Secrets, U: Upstream, C: Clock>(
    state: &State,
    shared: &impl SharedCache,
    rules: &Rules,
    cascade: &crate::rules::Cascade,
    derived: &crate::facts::Derived,
    ports: &CallPorts<'_, S, U, C>,
    rng: &dyn Random,
    record: &mut RequestRecord,
    logs: &mut Vec<String>,
) -> Option<String> {
    let labels = &rules.task_model.as_ref()?.model.labels;
    let task = |label: String| (label != OUT_OF_SCOPE).then_some(label);
    let key = cascade::prompt_key(&derived.texts);
    if let Some(label) = state.cascade.get(key) {
        record.cascade = "cached".into();
        return task(label);
    }
    let shared_key = cascade::shared_key(key);
    if let Some(label) = shared
        .get_text(&shared_key)
        .await
        .filter(|l| labels.contains(l))
    {
        state.cascade.put(key, label.clone());
        record.cascade = "cached".into();
        return task(label);
    }
    let target = crate::rules::Target::Model {
        model: cascade.model.clone(),
        settings: crate::rules::Settings::default(),
    };
    let attempt = crate::plan::plan(rules, &target, &derived.facts, rng, "classifier.cascade")
        .into_iter()
        .next()?;
    let question = cascade::question(&cascade.model, labels, &derived.texts);
    let started = ports.clock.now_ms();
    let result = attempt::call(rules, &attempt, &question, ports, cascade.timeout_ms, logs).await;
    record.cascade_ms = (ports.clock.now_ms() - started).max(0.0);
    match result {
        Ok(success) => {
            let price = rules.models.get(&cascade.model).and_then(|m| m.price);
            if let (Some(usage), Some(price)) = (success.usage, price) {
                record.cascade_cost_usd = usage.cost(&price);
                // The caller's key pays for the question too.
                state.limits.add_spend(
                    &record.key_id,
                    record.cascade_cost_usd,
                    ports.clock.now_ms(),
                );
            }
            let label = match &success.reply.body {
                ReplyBody::Bytes(bytes) => cascade::read_answer(bytes, labels),
                ReplyBody::Stream(_) => None,
            };
            match label {
                Some(label) => {
                    record.cascade = "answered".into();
                    state.cascade.put(key, label.clone());
                    shared
                        .put_text(&shared_key, &label, cascade::SHARED_TTL_S)
                        .await;
                    task(label)
                }
                None => {
                    record.cascade = "unreadable".into();
                    logs.push(json!({"event": "cascade_unreadable", "request_id": record.request_id, "target": cascade.model}).to_string());
                    None
                }
            }
        }
        Err(failure) => {
            record.cascade = "failed".into();
            logs.push(json!({"event": "cascade_failed", "request_id": record.request_id, "target": cascade.model,
                             "kind": failure.kind.as_str(), "status": failure.status}).to_string());
            None
        }
    }
}

/// The error for a request that failed: the last failure, and with more than one call, every
/// attempt in order. Rate limiting stays a 429; failures across targets become
/// `all_targets_failed`; a request the provider found invalid keeps its own code.
fn final_failure(last: Failure, history: &[String], record: &RequestRecord) -> Failure {
    if history.len() <= 1 {
        return last;
    }
    let code = match last.kind {
        ErrorKind::RateLimited => ErrorCode::UpstreamRateLimited,
        ErrorKind::BadRequest
        | ErrorKind::ContextLengthExceeded
        | ErrorKind::ContentFiltered
        | ErrorKind::NotFound => last.error.code,
        ErrorKind::Auth
        | ErrorKind::Permission
        | ErrorKind::ServerError
        | ErrorKind::Overloaded
        | ErrorKind::Timeout
        | ErrorKind::Network => {
            if record.fallback_used {
                ErrorCode::AllTargetsFailed
            } else {
                last.error.code
            }
        }
    };
    Failure {
        error: ApiError::new(
            code,
            format!(
                "{} after {} attempts: {}",
                last.error.message,
                record.attempts,
                history.join("; ")
            ),
        ),
        ..last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vars_that_cannot_be_used_are_reported_with_what_is_used_instead() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            Settings::from_vars(move |name| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.to_string())
            })
        };
        assert_eq!(vars(&[]), Settings::default());
        let good = vars(&[
            ("CACHE_TTL_SECONDS", "5"),
            ("MAX_BODY_BYTES", "2048"),
            ("REQUEST_LOG", "off"),
            ("RULES_KEY", "rules-v2"),
        ]);
        assert!(good.problems.is_empty(), "{:?}", good.problems);
        assert_eq!(
            (good.cache_ttl_ms, good.max_body_bytes, good.request_log),
            (5000.0, 2048, false)
        );
        let bad = vars(&[
            ("CACHE_TTL_SECONDS", "soon"),
            ("MAX_BODY_BYTES", "1MB"),
            ("REQUEST_LOG", "quiet"),
            ("RULES_KEY", " "),
        ]);
        assert_eq!(
            (
                bad.cache_ttl_ms,
                bad.max_body_bytes,
                bad.request_log,
                bad.rules_key.as_str()
            ),
            (DEFAULT_CACHE_TTL_MS, DEFAULT_MAX_BODY_BYTES, true, "rules")
        );
        assert_eq!(
            bad.problems,
            [
                "RULES_KEY \" \" is empty; using rules",
                "CACHE_TTL_SECONDS \"soon\" is not a number of seconds from 0 to 86400; using 30",
                "MAX_BODY_BYTES \"1MB\" is not a whole number of bytes from 1 to 104857600; using 1048576",
                "REQUEST_LOG \"quiet\" is neither on nor off; using on",
            ]
        );
        assert_eq!(
            bad.to_json(),
            json!({"rules_key": "rules", "cache_ttl_seconds": 30.0, "max_body_bytes": 1_048_576, "request_log": "on"})
        );
        let negative = vars(&[("CACHE_TTL_SECONDS", "-1"), ("MAX_BODY_BYTES", "0")]);
        assert_eq!(negative.problems.len(), 2);
    }
}
