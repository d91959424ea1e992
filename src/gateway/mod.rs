//! The request path, wired end to end over the ports: the Workers shell calls `handle` and only
//! adapts what goes in and comes out. Each step lives in its own layer; this file only puts them
//! in order. A chat request:
//! (1) authenticate (`access::auth`), (2) parse the body (`chat::request`), (3) load the rules
//! (`rules::cache`), then the key's limits (`access::admission`), (4) derive facts, classify and
//! decide the attempt plan (`decide`, asking the cascade through `dispatch::cascade` when the task
//! model is unsure), (5) run the plan (`dispatch::fallback`), (6) reply: a streamed answer passes
//! through the watch, a whole one is returned unchanged. Every chat request yields one
//! `RequestRecord`, whatever its outcome, settled here (a stream's when it ends: `settle_stream`).
//! Calls to the Durable Objects that no request waits for are left as `Deferred` work
//! (`isolate`), run after the answer.

use crate::access::admission::{self, Counters, Policy};
use crate::access::auth::{self, KeyRecord};
use crate::chat::request::{
    embedding_texts, parse_chat, parse_embeddings, ChatRequest, Endpoint, METADATA_HEADER,
};
use crate::decide::explain::explain;
use crate::decide::facts::derive;
use crate::decide::plan::plan;
use crate::decide::route::{decide_with, wants_cascade, Decision, Trace};
use crate::dispatch::attempt::Failure;
use crate::dispatch::cascade::{self, Question};
use crate::dispatch::fallback::{self, Attempts, Run};
use crate::error::{ApiError, ErrorCode};
use crate::fronts::{admin, anthropic, models, responses};
use crate::http::{Incoming, Method, Reply, ReplyBody};
use crate::ports::{BodyOf, Clock, Coordinator, PortSet, Secret};
use crate::record::analytics::{RequestOutcome, RequestRecord};
use crate::record::events::Event;
use crate::rules::cache::Loaded;
use crate::rules::{FallbackOn, Rules, Target};
use crate::settings::WhenUnreachable;
use crate::stream::reply::ChatReply;
use serde_json::json;
use std::rc::Rc;

pub use crate::ports::Ports;
pub use crate::settings::Settings;
pub use isolate::{run_deferred, Deferred, State};

mod isolate;

pub const CHAT_PATH: &str = "/v1/chat/completions";
pub const EXPLAIN_PATH: &str = "/v1/router/explain";
pub const MODELS_PATH: &str = "/v1/models";
/// The Anthropic front door (Messages API).
pub const MESSAGES_PATH: &str = "/v1/messages";
/// OpenAI's Responses API front door.
pub const RESPONSES_PATH: &str = "/v1/responses";
pub const HEALTH_PATH: &str = "/healthz";
/// Embeddings, routed by the embedding model named.
pub const EMBEDDINGS_PATH: &str = "/v1/embeddings";

/// A reply, plus what the shell must record after sending it.
#[derive(Debug)]
pub struct Handled<B> {
    pub reply: ChatReply<B>,
    /// The analytics record (chat requests only).
    pub record: Option<RequestRecord>,
    /// Warnings for the log (stale rules, failed attempts). Never prompt text. The request's own
    /// structured line is `record.log_line()`, written by the shell with the data point.
    pub logs: Vec<String>,
    /// Work for after the answer (`run_deferred`).
    pub deferred: Vec<Deferred>,
}

impl<B> Handled<B> {
    fn simple(reply: ChatReply<B>, logs: Vec<String>) -> Self {
        Handled {
            reply,
            record: None,
            logs,
            deferred: Vec::new(),
        }
    }
}

pub async fn handle<P: PortSet>(
    state: &State,
    ports: &P,
    settings: &Settings,
    req: Incoming,
) -> Handled<BodyOf<P>> {
    let mut logs = Vec::new();
    let reply = match (req.path.as_str(), &req.method) {
        (CHAT_PATH, Method::Post) => {
            return chat(state, ports, settings, req, Endpoint::ChatCompletions, None).await
        }
        (EMBEDDINGS_PATH, Method::Post) => {
            return chat(state, ports, settings, req, Endpoint::Embeddings, None).await
        }
        (MESSAGES_PATH, Method::Post) => return messages(state, ports, settings, req).await,
        (RESPONSES_PATH, Method::Post) => return responses(state, ports, settings, req).await,
        (HEALTH_PATH, Method::Get) => {
            let shared = match ports.coordinator().bound() {
                true => "durable_objects",
                false => "per_isolate",
            };
            let calls = state.object_calls.get();
            let mut health = json!({"status": "ok", "settings": settings.to_json(),
                                    "limits": shared, "object_calls": calls});
            if !settings.problems.is_empty() {
                health["problems"] = json!(settings.problems);
            }
            Ok(Reply::json(200, &health))
        }
        (EXPLAIN_PATH, Method::Post) => {
            explain_steps(state, ports, settings, &req, Caller::Gateway, &mut logs).await
        }
        (admin::EXPLAIN_PATH, Method::Post) => match admin::authorize(&req, ports.secrets()) {
            Ok(()) => explain_steps(state, ports, settings, &req, Caller::Admin, &mut logs).await,
            Err(e) => Err(e),
        },
        (MODELS_PATH, Method::Get) => models_steps(state, ports, settings, &req, &mut logs).await,
        (path, _) if path.starts_with(admin::PREFIX) => {
            let now = ports.clock().now_ms();
            admin::handle(&req, ports, &state.rules, settings, now).await
        }
        (path, _) if path.starts_with(RESPONSES_PATH) && path.len() > RESPONSES_PATH.len() => {
            Err(ApiError::new(
                ErrorCode::NotFound,
                "the router stores no responses: there is nothing to retrieve, cancel or delete (send the whole conversation in `input`)",
            ))
        }
        (
            HEALTH_PATH | CHAT_PATH | EXPLAIN_PATH | MODELS_PATH | MESSAGES_PATH | RESPONSES_PATH
            | EMBEDDINGS_PATH,
            _,
        ) => {
            Err(ApiError::new(
                ErrorCode::MethodNotAllowed,
                format!("{} does not accept this method", req.path),
            ))
        }
        _ => Err(ApiError::new(
            ErrorCode::NotFound,
            format!("no route for {}", req.path),
        )),
    };
    Handled::simple(reply.unwrap_or_else(|e| Reply::error(&e)), logs)
}

/// What steps (1) to (3) give a chat or explain request.
struct Admitted {
    key: KeyRecord,
    chat: ChatRequest,
    rules: Rc<Rules>,
    loaded: Loaded,
}

/// Who is asking: a gateway key's holder, or the admin (`POST /admin/explain`, already
/// authorised by the admin key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Gateway,
    Admin,
}

/// Steps (1) to (3), shared by chat, embeddings and explain.
async fn admit<P: PortSet>(
    state: &State,
    ports: &P,
    settings: &Settings,
    req: &Incoming,
    caller: Caller,
    record: &mut RequestRecord,
    logs: &mut Vec<String>,
) -> Result<Admitted, ApiError> {
    let endpoint = record.endpoint;
    let now = ports.clock().now_ms();
    let key = match caller {
        Caller::Gateway => {
            let ttl = settings.cache_ttl_ms;
            state.keys.authenticate(req, ports.kv(), now, ttl).await?
        }
        Caller::Admin => KeyRecord {
            id: "admin".into(),
            name: "the admin API".into(),
            ..KeyRecord::default()
        },
    };
    record.key_id = key.id.clone();
    let max = settings.max_body_bytes;
    let metadata = req.header(METADATA_HEADER);
    let mut chat = match endpoint {
        Endpoint::Embeddings => parse_embeddings(&req.body, metadata, max)?,
        Endpoint::ChatCompletions | Endpoint::Messages | Endpoint::Responses => {
            parse_chat(&req.body, metadata, max)?
        }
    };
    chat.endpoint = endpoint;
    record.stream = chat.stream;
    record.prompt_bytes = chat.size;
    let loaded = load_rules(state, ports, settings, now, logs).await?;
    record.rules_version = Some(loaded.rules.version);
    Ok(Admitted {
        key,
        chat,
        rules: Rc::clone(&loaded.rules),
        loaded,
    })
}

/// The rules to serve with, saying so in the log when they are the last good ones kept because KV
/// holds something unusable.
async fn load_rules(
    state: &State,
    ports: &impl PortSet,
    settings: &Settings,
    now: f64,
    logs: &mut Vec<String>,
) -> Result<Loaded, ApiError> {
    let loaded = state
        .rules
        .get(
            ports.kv(),
            ports.model_files(),
            &settings.rules_key,
            now,
            settings.cache_ttl_ms,
        )
        .await?;
    if let Some(reason) = &loaded.stale_because {
        let serving_version = loaded.rules.version;
        logs.push(
            Event::RulesStale {
                serving_version,
                reason,
            }
            .line(),
        );
    }
    Ok(loaded)
}

/// The headers that say which rules answered: their version, and `stale` when they are the last
/// good ones kept because KV holds something unusable.
fn mark_rules<S>(reply: &mut Reply<S>, loaded: &Loaded) {
    reply.set_header("x-router-rules-version", loaded.rules.version.to_string());
    if loaded.stale_because.is_some() {
        reply.set_header("x-router-rules-status", "stale");
    }
}

/// `GET /v1/models`: what callers may name as `model`, in OpenAI's list shape: `auto`, the tasks
/// of the rules, and their models.
async fn models_steps<P: PortSet>(
    state: &State,
    ports: &P,
    settings: &Settings,
    req: &Incoming,
    logs: &mut Vec<String>,
) -> Result<ChatReply<BodyOf<P>>, ApiError> {
    let now = ports.clock().now_ms();
    let ttl = settings.cache_ttl_ms;
    state.keys.authenticate(req, ports.kv(), now, ttl).await?;
    let loaded = load_rules(state, ports, settings, now, logs).await?;
    let mut reply = Reply::json(200, &models::list(&loaded.rules));
    mark_rules(&mut reply, &loaded);
    Ok(reply)
}

/// `POST /v1/router/explain` (and `POST /admin/explain`, the same for the admin key): the
/// decision without the call.
async fn explain_steps<P: PortSet>(
    state: &State,
    ports: &P,
    settings: &Settings,
    req: &Incoming,
    caller: Caller,
    logs: &mut Vec<String>,
) -> Result<ChatReply<BodyOf<P>>, ApiError> {
    let mut record = RequestRecord::default();
    let admitted = admit(state, ports, settings, req, caller, &mut record, logs).await?;
    let body = explain(&admitted.rules, &admitted.chat, &req.headers, ports.rng())?;
    let mut reply = Reply::json(200, &body);
    mark_rules(&mut reply, &admitted.loaded);
    Ok(reply)
}

/// `POST /v1/messages`: the Anthropic front door. The Messages request becomes a chat request,
/// takes the same path (routing, fallback, analytics), and its answer goes back in the Messages
/// API's shape.
async fn messages<P: PortSet>(
    state: &State,
    ports: &P,
    settings: &Settings,
    mut req: Incoming,
) -> Handled<BodyOf<P>> {
    if let Err(reply) = anthropic::into_chat(&mut req, settings.max_body_bytes) {
        return Handled::simple(reply, Vec::new());
    }
    let mut handled = chat(state, ports, settings, req, Endpoint::Messages, None).await;
    let code = handled
        .record
        .as_ref()
        .map_or("internal_error", |r| r.outcome.as_str());
    anthropic::reply_from_chat(&mut handled.reply, code);
    handled
}

/// `POST /v1/responses`: the Responses API front door. The request becomes a chat request, takes
/// the same path, and its answer goes back as a Response (errors keep chat's shape, which is the
/// Responses API's too).
async fn responses<P: PortSet>(
    state: &State,
    ports: &P,
    settings: &Settings,
    mut req: Incoming,
) -> Handled<BodyOf<P>> {
    let mut echo = match responses::into_chat(&mut req, settings.max_body_bytes) {
        Ok(echo) => echo,
        Err(reply) => return Handled::simple(reply, Vec::new()),
    };
    let original = Some(std::mem::take(&mut echo.original));
    let mut handled = chat(state, ports, settings, req, Endpoint::Responses, original).await;
    responses::reply_from_chat(&mut handled.reply, echo);
    handled
}

/// `POST /v1/chat/completions` (and the front doors served as chat, and `POST /v1/embeddings`):
/// the request's steps, its record, and the router's headers.
async fn chat<P: PortSet>(
    state: &State,
    ports: &P,
    settings: &Settings,
    req: Incoming,
    endpoint: Endpoint,
    responses_request: Option<serde_json::Map<String, serde_json::Value>>,
) -> Handled<BodyOf<P>> {
    let started = ports.clock().now_ms();
    let mut record = RequestRecord {
        key_id: "anonymous".into(),
        request_id: req.request_id.clone(),
        colo: req.colo.clone().unwrap_or_default(),
        country: req.country.clone().unwrap_or_default(),
        endpoint,
        ..RequestRecord::default()
    };
    let mut logs = Vec::new();
    let mut deferred = Vec::new();
    let (rec, lg, df) = (&mut record, &mut logs, &mut deferred);
    let steps = chat_steps(state, ports, settings, &req, responses_request, rec, lg, df);
    let mut reply = match steps.await {
        Ok(reply) => reply,
        Err(failure) => {
            record.outcome = RequestOutcome::Error(failure.error.code);
            let mut reply = Reply::error(&failure.error);
            if let Some(retry_after) = failure.retry_after {
                reply.set_header("retry-after", retry_after);
            }
            reply
        }
    };
    record.status = reply.status;
    record.total_ms = (ports.clock().now_ms() - started).max(0.0);
    for (name, value) in record.router_headers() {
        reply.set_header(name, value);
    }
    // One renewal per key is enough, however many steps asked for it.
    let mut seen = Vec::new();
    deferred.retain(|d| match d {
        Deferred::Lease { key_id } if seen.contains(key_id) => false,
        Deferred::Lease { key_id } => {
            seen.push(key_id.clone());
            true
        }
        Deferred::Health { .. } => true,
    });
    record.object_calls += deferred.len() as u32;
    Handled {
        reply,
        record: Some(record),
        logs,
        deferred,
    }
}

/// Steps (1) to (6) of a chat request; an embeddings request skips the decision (4) for the
/// embedding model it names (`embeddings_plan`).
#[expect(
    clippy::too_many_arguments,
    reason = "the request's steps, given what they need"
)]
async fn chat_steps<P: PortSet>(
    state: &State,
    ports: &P,
    settings: &Settings,
    req: &Incoming,
    responses_request: Option<serde_json::Map<String, serde_json::Value>>,
    record: &mut RequestRecord,
    logs: &mut Vec<String>,
    deferred: &mut Vec<Deferred>,
) -> Result<ChatReply<BodyOf<P>>, Failure> {
    let started = ports.clock().now_ms();
    let admitted = admit(state, ports, settings, req, Caller::Gateway, record, logs).await?;
    let Admitted {
        key,
        mut chat,
        rules,
        loaded,
    } = admitted;
    chat.responses_request = responses_request.map(|mut r| {
        // Routing input, not for providers (as in a chat request).
        r.remove("metadata");
        r
    });
    admit_limits(state, ports, settings, &key, record, deferred).await?;
    let own_key = auth::own_provider_key(req);
    let plan = match chat.endpoint {
        Endpoint::Embeddings => embeddings_plan(&rules, &key, &chat, ports.rng(), record)?,
        Endpoint::ChatCompletions | Endpoint::Messages | Endpoint::Responses => {
            let own = own_key.as_ref();
            let decision = decide(state, ports, &rules, &chat, req, own, record, logs).await?;
            if record.cascade_cost_usd > 0.0 {
                let now = ports.clock().now_ms();
                deferred.extend(state.add_spend(&key.id, record.cascade_cost_usd, now));
            }
            key.permits(&decision.rule, decision.classification.task.as_deref())?;
            decision.plan
        }
    };
    let called = Called {
        rules: &rules,
        chat: &chat,
        own_key: own_key.as_ref(),
        started_ms: started,
    };
    let mut reply = call_plan(
        state, ports, settings, called, &plan, record, logs, deferred,
    )
    .await?;
    if loaded.stale_because.is_some() {
        reply.set_header("x-router-rules-status", "stale");
    }
    Ok(reply)
}

/// The attempts of an embeddings request: the embedding model named, then its fallbacks (same
/// dimensions, validated), with the rules' default retries and timeouts. The record names the
/// route `embeddings`; keys limited to some routes or tasks may embed when their list names
/// `embeddings`.
fn embeddings_plan(
    rules: &Rules,
    key: &KeyRecord,
    chat: &ChatRequest,
    rng: &dyn crate::ports::Random,
    record: &mut RequestRecord,
) -> Result<Vec<crate::decide::plan::Attempt>, ApiError> {
    let plan = embedding_attempts(rules, &chat.model, rng)?;
    record.rule = EMBEDDINGS.into();
    key.permits(EMBEDDINGS, Some(EMBEDDINGS))?;
    let chars: usize = embedding_texts(&chat.body)
        .iter()
        .map(|t| t.chars().count())
        .sum();
    record.estimated_prompt_tokens = chars.div_ceil(4) as u64;
    Ok(plan)
}

/// What the plan's calls are for.
struct Called<'a> {
    rules: &'a Rules,
    chat: &'a ChatRequest,
    own_key: Option<&'a Secret>,
    /// When the request started (its deadline counts from here).
    started_ms: f64,
}

/// Steps (5) and (6): call the plan (`dispatch::fallback`), note what the attempts did in the
/// record, report them to the targets' shared health, and settle a whole answer's usage and
/// spend (a stream's are settled when it ends).
#[expect(
    clippy::too_many_arguments,
    reason = "one step of the request, given what it needs"
)]
async fn call_plan<P: PortSet>(
    state: &State,
    ports: &P,
    settings: &Settings,
    called: Called<'_>,
    plan: &[crate::decide::plan::Attempt],
    record: &mut RequestRecord,
    logs: &mut Vec<String>,
    deferred: &mut Vec<Deferred>,
) -> Result<ChatReply<BodyOf<P>>, Failure> {
    let rules = called.rules;
    let request_id = record.request_id.clone();
    let run = Run {
        rules,
        plan,
        chat: called.chat,
        own_key: called.own_key,
        breakers: &state.breakers,
        health: &state.health,
        started_ms: called.started_ms,
        request_id: &request_id,
    };
    let (attempts, result) = fallback::run(ports, run, logs).await;
    note_attempts(record, &attempts);
    if ports.coordinator().bound() {
        let (policy, ttl) = (rules.defaults.cooldown, settings.health_ttl_ms);
        let now = ports.clock().now_ms();
        let reports = attempts.health_reports(&state.health, policy, ttl, now);
        deferred.extend(reports.map(|(target, report)| Deferred::Health { target, report }));
    }
    let success = result?;
    record.ttfb_ms = success.ttfb_ms;
    record.upstream_ms = success.upstream_ms;
    if matches!(success.reply.body, ReplyBody::Bytes(_)) {
        let price = rules.models.get(&record.target).and_then(|m| m.price);
        record.settle_usage(success.usage, success.answer_chars, price);
        let now = ports.clock().now_ms();
        deferred.extend(state.add_spend(&record.key_id, record.cost_usd, now));
    }
    Ok(success.reply)
}

/// The route name embeddings requests are recorded under (and keys' lists must name).
const EMBEDDINGS: &str = "embeddings";

/// The attempts for an embeddings request: the embedding model named, then its fallbacks.
fn embedding_attempts(
    rules: &Rules,
    model: &str,
    rng: &dyn crate::ports::Random,
) -> Result<Vec<crate::decide::plan::Attempt>, ApiError> {
    let Some(embeddings) = rules.models.get(model).and_then(|m| m.embeddings.as_ref()) else {
        let names: Vec<&str> = rules.embedding_models().map(|m| m.name.as_str()).collect();
        let known = match names.is_empty() {
            true => {
                "the rules have no embedding models (docs/rules.md#embedding-models)".to_string()
            }
            false => format!("use one of: {}", names.join(", ")),
        };
        let what = match rules.models.contains_key(model) {
            true => "is a chat model, not an embedding model",
            false => "is not an embedding model of the rules",
        };
        return Err(ApiError::new(
            ErrorCode::ModelNotFound,
            format!("model \"{model}\" {what}; {known}"),
        ));
    };
    let one = |name: &str| Target::Model {
        model: name.to_string(),
        settings: Default::default(),
    };
    let targets = std::iter::once(model)
        .chain(embeddings.fallback.iter().map(String::as_str))
        .map(one)
        .collect();
    let target = Target::Fallback {
        targets,
        on: FallbackOn::Default,
        settings: Default::default(),
    };
    Ok(plan(
        rules,
        &target,
        &serde_json::Value::Null,
        rng,
        EMBEDDINGS,
    ))
}

/// Step (4): facts, classification and the decision; when the built-in model is unsure, the
/// cascade model is asked once and the decision made again with its label (if it answers).
#[expect(
    clippy::too_many_arguments,
    reason = "one step of chat_steps, given what it needs"
)]
async fn decide<P: PortSet>(
    state: &State,
    ports: &P,
    rules: &Rules,
    chat: &ChatRequest,
    req: &Incoming,
    own_key: Option<&Secret>,
    record: &mut RequestRecord,
    logs: &mut Vec<String>,
) -> Result<Decision, ApiError> {
    let mut derived = derive(chat, &req.headers);
    record.estimated_prompt_tokens = derived.facts["estimated_tokens"].as_u64().unwrap_or(0);
    let mut label: Option<String> = None;
    let decision = loop {
        let decision = decide_with(
            rules,
            &chat.model,
            &mut derived.facts,
            &derived.texts,
            ports.rng(),
            Trace::Off,
            label.as_deref(),
        )?;
        let cascade = match (&label, wants_cascade(rules, &decision)) {
            (None, Some(cascade)) => cascade,
            _ => break decision,
        };
        let question = Question {
            rules,
            cascade,
            derived: &derived,
            own_key,
            request_id: &record.request_id,
        };
        let asked = cascade::ask(ports, &state.cascade, question, logs).await;
        record.cascade = asked.outcome;
        record.cascade_ms = asked.ms;
        record.cascade_cost_usd = asked.cost_usd;
        label = asked.task;
        if label.is_none() {
            break decision;
        }
    };
    record.task = decision.classification.task.clone().unwrap_or_default();
    record.task_source = Some(decision.classification.source);
    record.classifier_score = decision.classification.score;
    record.rule = decision.rule.clone();
    if !decision.skipped.is_empty() {
        let request_id = &record.request_id;
        let skipped = &decision.skipped;
        logs.push(
            Event::TargetsSkipped {
                request_id,
                skipped,
            }
            .line(),
        );
    }
    Ok(decision)
}

/// What the attempts say in the record (and so in the headers and the data point).
fn note_attempts(record: &mut RequestRecord, attempts: &Attempts) {
    record.attempts = attempts.calls();
    record.fallback_used = attempts.fallback_used();
    if let Some(last) = attempts.last_called() {
        record.target = last.target.clone();
        record.provider = last.provider.clone();
        record.model = last.model.clone();
    }
}

/// The key's limits (`access::admission`), with the decision in the record and a background
/// renewal when the lease runs low.
async fn admit_limits<P: PortSet>(
    state: &State,
    ports: &P,
    settings: &Settings,
    key: &KeyRecord,
    record: &mut RequestRecord,
    deferred: &mut Vec<Deferred>,
) -> Result<(), Failure> {
    let counters = Counters {
        limits: &state.limits,
        leases: &state.leases,
        coordinator: ports.coordinator(),
        clock: ports.clock(),
    };
    let policy = Policy {
        lease_fraction: settings.lease_fraction,
        requests_closed: settings.rate_limit_unreachable == WhenUnreachable::Closed,
        spend_closed: settings.spend_limit_unreachable == WhenUnreachable::Closed,
        timeout_ms: settings.object_timeout_ms,
    };
    let admission = admission::admit(counters, key, policy).await;
    record.limits = admission.decision;
    record.object_calls += admission.object_calls;
    state.count_object_calls(admission.object_calls);
    if admission.renew {
        deferred.push(Deferred::Lease {
            key_id: key.id.clone(),
        });
    }
    admission.result.map_err(|e| Failure {
        retry_after: Some(e.retry_after_s.to_string()),
        ..Failure::local(e.error)
    })
}
