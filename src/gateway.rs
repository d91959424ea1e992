//! The request path, end to end, over the ports: the Workers shell calls `handle` and only adapts
//! what goes in and comes out. Steps of a chat request (numbered in `chat`):
//! (1) authenticate, (2) parse the body, (3) load the rules, (4) derive facts and decide the target,
//! (5) build the provider request with its key, (6) call the provider, (7) reply: a streamed answer
//! passes through untouched, a whole one is read for its usage and returned unchanged.
//! Every chat request yields one `RequestRecord`, whatever its outcome.

use crate::analytics::{RequestRecord, Usage};
use crate::auth::KeyCache;
use crate::error::{ApiError, ErrorCode};
use crate::facts::facts;
use crate::http::{Incoming, Method, Reply, ReplyBody};
use crate::ports::{Clock, KvStore, Secrets, Upstream, UpstreamResponse};
use crate::providers::{openai_compatible, ProviderKind};
use crate::request::{parse_chat, DEFAULT_MAX_BODY_BYTES, METADATA_HEADER};
use crate::route::decide;
use crate::rules::Target;
use crate::rules_cache::RulesCache;
use serde_json::json;

pub const CHAT_PATH: &str = "/v1/chat/completions";
pub const HEALTH_PATH: &str = "/healthz";
/// KV key of the live rules document.
pub const DEFAULT_RULES_KEY: &str = "rules";
pub const DEFAULT_CACHE_TTL_MS: f64 = 30_000.0;

/// Knobs the Worker reads from its vars.
#[derive(Debug, Clone)]
pub struct Settings {
    pub rules_key: String,
    /// How long rules and key records are trusted before KV is read again.
    pub cache_ttl_ms: f64,
    pub max_body_bytes: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            rules_key: DEFAULT_RULES_KEY.into(),
            cache_ttl_ms: DEFAULT_CACHE_TTL_MS,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

/// What lives in the isolate between requests.
#[derive(Default)]
pub struct State {
    pub rules: RulesCache,
    pub keys: KeyCache,
}

/// The outside world, borrowed for one request.
pub struct Ports<'a, K, S, U, C> {
    pub kv: &'a K,
    pub secrets: &'a S,
    pub upstream: &'a U,
    pub clock: &'a C,
}

/// A reply, plus what the shell must record after sending it.
#[derive(Debug)]
pub struct Handled<B> {
    pub reply: Reply<B>,
    /// The analytics record (chat requests only).
    pub record: Option<RequestRecord>,
    /// Log lines: the request's structured line and any warnings. Never prompt text.
    pub logs: Vec<String>,
}

pub async fn handle<K, S, U, C>(
    state: &State,
    ports: &Ports<'_, K, S, U, C>,
    settings: &Settings,
    req: Incoming,
) -> Handled<U::Body>
where
    K: KvStore,
    S: Secrets,
    U: Upstream,
    C: Clock,
{
    let simple = |reply| Handled {
        reply,
        record: None,
        logs: Vec::new(),
    };
    match (req.path.as_str(), &req.method) {
        (HEALTH_PATH, Method::Get) => simple(Reply::json(200, &json!({"status": "ok"}))),
        (CHAT_PATH, Method::Post) => chat(state, ports, settings, req).await,
        (HEALTH_PATH | CHAT_PATH, _) => simple(Reply::error(&ApiError::new(
            ErrorCode::MethodNotAllowed,
            format!("{} does not accept this method", req.path),
        ))),
        _ => simple(Reply::error(&ApiError::new(
            ErrorCode::NotFound,
            format!("no route for {}", req.path),
        ))),
    }
}

async fn chat<K, S, U, C>(
    state: &State,
    ports: &Ports<'_, K, S, U, C>,
    settings: &Settings,
    req: Incoming,
) -> Handled<U::Body>
where
    K: KvStore,
    S: Secrets,
    U: Upstream,
    C: Clock,
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
    let mut reply = match chat_steps(
        state,
        ports,
        settings,
        &req,
        started,
        &mut record,
        &mut logs,
    )
    .await
    {
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
    logs.push(record.log_line());
    Handled {
        reply,
        record: Some(record),
        logs,
    }
}

/// Why a chat request failed, with what the client should be told beyond the error body.
struct Failure {
    error: ApiError,
    /// The provider's `retry-after`, passed on with a rate-limit error.
    retry_after: Option<String>,
}

impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Self {
        Failure {
            error,
            retry_after: None,
        }
    }
}

async fn chat_steps<K, S, U, C>(
    state: &State,
    ports: &Ports<'_, K, S, U, C>,
    settings: &Settings,
    req: &Incoming,
    started: f64,
    record: &mut RequestRecord,
    logs: &mut Vec<String>,
) -> Result<Reply<U::Body>, Failure>
where
    K: KvStore,
    S: Secrets,
    U: Upstream,
    C: Clock,
{
    // (1) Authenticate.
    let key = state
        .keys
        .authenticate(req, ports.kv, started, settings.cache_ttl_ms)
        .await?;
    record.key_id = key.id;

    // (2) Parse the body.
    let chat = parse_chat(
        &req.body,
        req.header(METADATA_HEADER),
        settings.max_body_bytes,
    )?;
    record.stream = chat.stream;
    record.prompt_bytes = chat.size;

    // (3) Load the rules.
    let loaded = state
        .rules
        .get(
            ports.kv,
            &settings.rules_key,
            started,
            settings.cache_ttl_ms,
        )
        .await?;
    let rules = loaded.rules;
    record.rules_version = Some(rules.version);
    if let Some(why) = &loaded.stale_because {
        logs.push(
            json!({"event": "rules_stale", "serving_version": rules.version, "reason": why})
                .to_string(),
        );
    }

    // (4) Facts and decision.
    let facts = facts(&chat);
    record.task = facts["task"].as_str().unwrap_or("").to_string();
    let decision = decide(&rules, &chat.model, &facts)?;
    let Target::Model(target) = &decision.target;
    record.rule = decision.rule.clone();
    record.target = target.clone();
    let (model, provider) = rules
        .resolve(target)
        .ok_or_else(|| ApiError::new(ErrorCode::Internal, "validated rules lost a reference"))?;
    record.provider = provider.name.clone();
    record.model = model.model.clone();

    // (5) Provider request, with the key from a Worker secret.
    let secret = match &provider.api_key_secret {
        None => None,
        Some(name) => Some(ports.secrets.get(name).ok_or_else(|| {
            ApiError::new(
                ErrorCode::ProviderKeyMissing,
                format!(
                    "provider \"{}\" needs the Worker secret {name}, which is not set",
                    provider.name
                ),
            )
        })?),
    };
    let upstream_request = match provider.kind {
        ProviderKind::OpenAi | ProviderKind::OpenAiCompatible => {
            openai_compatible::build_request(provider, model, &chat, secret.as_ref())
        }
    };

    // (6) Call the provider.
    record.attempts = 1;
    let sent_at = ports.clock.now_ms();
    let response = ports.upstream.send(upstream_request).await.map_err(|e| {
        logs.push(json!({"event": "upstream_network_error", "provider": provider.name, "detail": format!("{e:?}")}).to_string());
        ApiError::new(
            ErrorCode::UpstreamUnreachable,
            format!("could not reach provider \"{}\"", provider.name),
        )
    })?;
    record.ttfb_ms = ports.clock.now_ms() - sent_at;
    record.upstream_ms = record.ttfb_ms;
    if !(200..300).contains(&response.status) {
        let status = response.status;
        let retry_after = (status == 429)
            .then(|| response.header("retry-after").map(str::to_string))
            .flatten();
        // Drain the body so the connection is released; its text is never shown to the client.
        let _ = ports.upstream.read_all(response.body).await;
        return Err(Failure {
            error: upstream_status_error(&provider.name, status),
            retry_after,
        });
    }

    // (7) Reply.
    let mut reply = if chat.stream && is_event_stream(&response) {
        stream_reply(response)
    } else {
        let content_type = response
            .header("content-type")
            .unwrap_or("application/json")
            .to_string();
        let bytes = ports.upstream.read_all(response.body).await.map_err(|_| {
            ApiError::new(
                ErrorCode::UpstreamUnreachable,
                format!("provider \"{}\" broke off its answer", provider.name),
            )
        })?;
        record.upstream_ms = ports.clock.now_ms() - sent_at;
        let parsed: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| {
            ApiError::new(
                ErrorCode::UpstreamError,
                format!(
                    "provider \"{}\" returned a malformed response",
                    provider.name
                ),
            )
        })?;
        record.usage = Usage::from_openai(&parsed);
        if let (Some(usage), Some(price)) = (record.usage, model.price) {
            record.cost_usd = usage.cost(&price);
        }
        Reply {
            status: 200,
            headers: vec![("content-type".into(), content_type)],
            body: ReplyBody::Bytes(bytes),
        }
    };
    reply.set_header("x-router-rule", decision.rule.clone());
    reply.set_header("x-router-target", target.clone());
    reply.set_header("x-router-provider", provider.name.clone());
    reply.set_header("x-router-model", model.model.clone());
    reply.set_header("x-router-attempts", record.attempts.to_string());
    if let Some(task) = facts["task"].as_str() {
        reply.set_header("x-router-task", task);
    }
    if loaded.stale_because.is_some() {
        reply.set_header("x-router-rules-status", "stale");
    }
    Ok(reply)
}

fn is_event_stream<B>(response: &UpstreamResponse<B>) -> bool {
    response
        .header("content-type")
        .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("text/event-stream"))
}

fn stream_reply<B>(response: UpstreamResponse<B>) -> Reply<B> {
    Reply {
        status: 200,
        headers: vec![
            (
                "content-type".into(),
                "text/event-stream; charset=utf-8".into(),
            ),
            ("cache-control".into(), "no-cache".into()),
        ],
        body: ReplyBody::Stream(response.body),
    }
}

/// A provider's non-2xx status as our error. Upstream bodies are never echoed.
fn upstream_status_error(provider: &str, status: u16) -> ApiError {
    match status {
        429 => ApiError::new(
            ErrorCode::UpstreamRateLimited,
            format!("provider \"{provider}\" is rate limiting requests (HTTP 429)"),
        ),
        400 | 404 | 413 | 422 => ApiError::new(
            ErrorCode::UpstreamRejected,
            format!("provider \"{provider}\" rejected the request as invalid (HTTP {status})"),
        ),
        _ => ApiError::new(
            ErrorCode::UpstreamError,
            format!("provider \"{provider}\" failed (HTTP {status})"),
        ),
    }
}
