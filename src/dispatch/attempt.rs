//! One provider call of an attempt plan: the key from its secret, the request in the provider's
//! wire format, the call under the attempt's timeout, and the answer judged: a `Failure` (with its
//! normalised kind, status and retry-after) or a reply, where a streamed answer passes through
//! untouched and a whole one is read for its usage.

use crate::chat::request::{ChatRequest, Endpoint};
use crate::chat::usage::Usage;
use crate::decide::plan::Attempt;
use crate::dispatch::retry::{parse_retry_after, Failed};
use crate::error::{ApiError, ErrorCode};
use crate::http::{Reply, ReplyBody};
use crate::ports::{
    BodyOf, Clock, FetchError, PortSet, Secret, Secrets, Upstream, UpstreamResponse,
};
use crate::providers;
use crate::providers::errors::{classify_status, ErrorKind};
use crate::providers::openai_compatible;
use crate::record::events;
use crate::rules::{Price, Provider, Rules};
use crate::stream::reply::{ChatReply, Streamed};
use crate::stream::watch::{First, StreamWatch};

/// Why a call failed: what `retry::next_step` decides on, and what the client is told.
#[derive(Debug)]
pub struct Failure {
    pub error: ApiError,
    pub kind: ErrorKind,
    /// The provider's HTTP status, when it answered.
    pub status: Option<u16>,
    /// The provider's `retry-after` header, passed on to the client with a rate-limit error.
    pub retry_after: Option<String>,
    pub retry_after_ms: Option<u64>,
}

impl Failure {
    fn new(error: ApiError, kind: ErrorKind) -> Failure {
        Failure {
            error,
            kind,
            status: None,
            retry_after: None,
            retry_after_ms: None,
        }
    }

    /// A failure that happened before any provider was involved (the request itself, the rules).
    pub fn local(error: ApiError) -> Failure {
        Failure::new(error, ErrorKind::BadRequest)
    }

    /// What `retry::next_step` reads. Nothing has reached the client while we still decide.
    pub fn failed(&self) -> Failed {
        Failed {
            kind: self.kind,
            status: self.status,
            retry_after_ms: self.retry_after_ms,
            committed: false,
        }
    }
}

impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Self {
        Failure::local(error)
    }
}

/// What a successful call gives back.
pub struct Success<B> {
    pub reply: ChatReply<B>,
    pub usage: Option<Usage>,
    /// Characters of answer text (whole answers), for estimating usage not reported.
    pub answer_chars: u64,
    pub ttfb_ms: f64,
    pub upstream_ms: f64,
}

/// One call: what it is for, and what it may take from the request.
pub struct Call<'a> {
    pub rules: &'a Rules,
    pub attempt: &'a Attempt,
    pub chat: &'a ChatRequest,
    /// The caller's own key, for providers that allow bring-your-own-key.
    pub own_key: Option<&'a Secret>,
    pub timeout_ms: u64,
}

pub async fn call<P: PortSet>(
    ports: &P,
    call: Call<'_>,
    logs: &mut Vec<String>,
) -> Result<Success<BodyOf<P>>, Failure> {
    let Call {
        rules,
        attempt,
        chat,
        own_key,
        timeout_ms,
    } = call;
    let provider = rules.providers.get(&attempt.provider).ok_or_else(|| {
        Failure::local(ApiError::new(
            ErrorCode::Internal,
            "validated rules lost a provider",
        ))
    })?;
    let secret = provider_key(provider, own_key, ports.secrets())?;
    // A Responses request goes as it came to a target that speaks the Responses API.
    let passthrough = chat
        .responses_request
        .as_ref()
        .filter(|_| openai_compatible::speaks_responses(provider));
    let key = secret.as_ref();
    let request = match (chat.endpoint, passthrough) {
        (Endpoint::Embeddings, _) => {
            providers::api(provider.kind).build_embeddings(provider, attempt, chat, key)
        }
        (_, Some(original)) => Ok(openai_compatible::responses_request(
            provider,
            attempt,
            original,
            chat.stream,
            key,
        )),
        (Endpoint::ChatCompletions | Endpoint::Messages | Endpoint::Responses, None) => {
            Ok(providers::build_request(provider, attempt, chat, key))
        }
    }
    .map_err(|why| Failure::local(ApiError::new(ErrorCode::InvalidRequest, why)))?;
    let mut request = request;
    let now = ports.clock().now_ms();
    if let Err(error) =
        providers::api(provider.kind).sign(provider, &mut request, secret.as_ref(), now)
    {
        // Like a missing key: another target may be signed for.
        return Err(Failure::new(error, ErrorKind::Auth));
    }
    let clock = ports.clock();
    let sent_at = clock.now_ms();
    let upstream = ports.upstream();
    let sent = match provider.kind.bound() {
        true => {
            upstream
                .run_ai(&attempt.model_id, request.body, timeout_ms)
                .await
        }
        false => upstream.send(request, timeout_ms).await,
    };
    let response = match sent {
        Ok(r) => r,
        Err(e) => return Err(fetch_failure(provider, e, logs)),
    };
    let ttfb_ms = clock.now_ms() - sent_at;
    let left = Left {
        sent_at,
        timeout_ms,
    };
    if !(200..300).contains(&response.status) {
        return Err(refused(ports, provider, response, &left).await);
    }
    if chat.stream && is_event_stream(&response) {
        let price = rules.models.get(&attempt.target).and_then(|m| m.price);
        let watch = match passthrough {
            Some(_) => StreamWatch::for_responses(),
            None => stream_watch(provider, &attempt.model_id, chat, left.sent_at),
        };
        return commit_stream(ports, provider, watch, response.body, &left, price, logs).await;
    }
    let content_type = response
        .header("content-type")
        .unwrap_or("application/json")
        .to_string();
    let bytes = match ports
        .upstream()
        .read_all(response.body, left.ms(clock))
        .await
    {
        Ok(b) => b,
        Err(e) => return Err(fetch_failure(provider, e, logs)),
    };
    let upstream_ms = clock.now_ms() - sent_at;
    let parsed: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|_| broken_answer(&provider.name, "returned a malformed response"))?;
    // Answers come back in OpenAI's shape: unchanged from OpenAI-compatible providers, translated
    // from the others.
    let id = format!("chatcmpl-{}", sent_at as u64);
    let created = (sent_at / 1000.0) as u64;
    let api = providers::api(provider.kind);
    let translated = match chat.endpoint {
        Endpoint::Embeddings => {
            let encoding = chat.body.get("encoding_format").and_then(|e| e.as_str());
            let translated = api
                .embeddings_to_openai(&parsed, &attempt.model_id, encoding)
                .map_err(|why| broken_answer(&provider.name, &format!("returned {why}")))?;
            let answer = translated.as_ref().unwrap_or(&parsed);
            if !answer.get("data").is_some_and(serde_json::Value::is_array) {
                return Err(broken_answer(
                    &provider.name,
                    "returned embeddings without `data`",
                ));
            }
            translated
        }
        Endpoint::ChatCompletions | Endpoint::Messages | Endpoint::Responses => api
            .answer_to_openai(provider, &parsed, &id, created)
            .map_err(|(error, kind)| Failure::new(error, kind))?,
    };
    let (parsed, bytes, content_type) = match translated {
        None => (parsed, bytes, content_type),
        Some(mut openai) => {
            // Kinds whose answers do not name the model: the attempt's model id.
            if openai.get("model").is_some_and(serde_json::Value::is_null) {
                openai["model"] = serde_json::Value::String(attempt.model_id.clone());
            }
            let bytes = openai.to_string().into_bytes();
            (openai, bytes, "application/json".to_string())
        }
    };
    Ok(Success {
        reply: Reply {
            status: 200,
            headers: vec![("content-type".into(), content_type)],
            body: ReplyBody::Bytes(bytes),
        },
        usage: match passthrough {
            Some(_) => parsed.get("usage").and_then(Usage::from_responses),
            None => Usage::from_openai(&parsed),
        },
        answer_chars: crate::chat::usage::answer_chars(&parsed),
        ttfb_ms,
        upstream_ms,
    })
}

/// The watch for a chat stream from this provider: its events translated when they are not
/// OpenAI chunks, the usage chunk kept only when the client asked for it.
fn stream_watch(
    provider: &Provider,
    model_id: &str,
    chat: &ChatRequest,
    sent_at: f64,
) -> StreamWatch {
    let wants_usage = chat
        .body
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(serde_json::Value::as_bool)
        == Some(true);
    let mut watch = StreamWatch::for_provider(
        provider.kind,
        wants_usage,
        &format!("chatcmpl-{}", sent_at as u64),
        (sent_at / 1000.0) as u64,
    );
    watch.set_model(model_id);
    watch
}

/// The time an attempt has left, from when its request was sent.
struct Left {
    sent_at: f64,
    timeout_ms: u64,
}

impl Left {
    fn ms(&self, clock: &impl Clock) -> u64 {
        (self.timeout_ms as f64 - (clock.now_ms() - self.sent_at)).max(1.0) as u64
    }
}

/// The key for a provider: the caller's own where the provider allows it, else its secret.
fn provider_key(
    provider: &Provider,
    own_key: Option<&Secret>,
    secrets: &impl Secrets,
) -> Result<Option<Secret>, Failure> {
    let own = own_key.filter(|_| provider.allow_byok).cloned();
    match (&provider.api_key_secret, own) {
        (_, Some(own)) => Ok(Some(own)),
        (None, None) => Ok(None),
        (Some(name), None) => secrets.get(name).map(Some).ok_or_else(|| {
            // Another target may have its key: this one fails as a configuration problem.
            Failure::new(
                ApiError::new(
                    ErrorCode::ProviderKeyMissing,
                    format!(
                        "provider \"{}\" needs the Worker secret {name}, which is not set",
                        provider.name
                    ),
                ),
                ErrorKind::Auth,
            )
        }),
    }
}

fn fetch_failure(provider: &Provider, e: FetchError, logs: &mut Vec<String>) -> Failure {
    let kind = match &e {
        FetchError::Timeout => ErrorKind::Timeout,
        FetchError::Network(detail) => {
            logs.push(events::upstream_network_error(&provider.name, detail));
            ErrorKind::Network
        }
        // Like a missing key: another target may be reachable.
        FetchError::NotBound(why) => {
            let message = format!("provider \"{}\" cannot be called: {why}", provider.name);
            let error = ApiError::new(ErrorCode::ProviderKeyMissing, message);
            return Failure::new(error, ErrorKind::Auth);
        }
    };
    Failure::new(kind.to_error(&provider.name, None), kind)
}

/// A provider's non-2xx answer as a failure: its kind told apart from the body (read, and the
/// connection released, but never shown to the client), with its `retry-after`.
async fn refused<P: PortSet>(
    ports: &P,
    provider: &Provider,
    response: UpstreamResponse<BodyOf<P>>,
    left: &Left,
) -> Failure {
    let clock = ports.clock();
    let status = response.status;
    let retry_after = response.header("retry-after").map(str::to_string);
    let retry_after_ms = parse_retry_after(
        response.header("retry-after-ms"),
        retry_after.as_deref(),
        clock.now_ms(),
    );
    let body = ports
        .upstream()
        .read_all(response.body, left.ms(clock))
        .await
        .unwrap_or_default();
    let kind = classify_status(status, &body);
    Failure {
        error: kind.to_error(&provider.name, Some(status)),
        kind,
        status: Some(status),
        retry_after: (kind == ErrorKind::RateLimited)
            .then_some(retry_after)
            .flatten(),
        retry_after_ms,
    }
}

/// Read a streamed answer up to its first real event before committing to it: an error inside
/// the 200 stream, or an end before any content, is a failed attempt the plan can still recover
/// from. Once committed, the rest passes through the watch in the shell.
async fn commit_stream<P: PortSet>(
    ports: &P,
    provider: &Provider,
    mut watch: StreamWatch,
    mut body: BodyOf<P>,
    left: &Left,
    price: Option<Price>,
    logs: &mut Vec<String>,
) -> Result<Success<BodyOf<P>>, Failure> {
    let clock = ports.clock();
    let mut prefix = Vec::new();
    loop {
        match ports.upstream().next_chunk(&mut body, left.ms(clock)).await {
            Ok(Some(bytes)) => prefix.extend(watch.on_chunk(&bytes)),
            Ok(None) => {
                return Err(broken_answer(
                    &provider.name,
                    "closed its stream before any content",
                ))
            }
            Err(e) => return Err(fetch_failure(provider, e, logs)),
        }
        match watch.first() {
            None => continue,
            Some(First::Content) => break,
            Some(First::Error(kind)) => {
                return Err(Failure::new(kind.to_error(&provider.name, None), kind))
            }
            Some(First::Empty) => {
                return Err(broken_answer(
                    &provider.name,
                    "ended its stream without any content",
                ))
            }
        }
    }
    let first_event_ms = clock.now_ms() - left.sent_at;
    Ok(Success {
        reply: Reply {
            status: 200,
            headers: vec![
                (
                    "content-type".into(),
                    "text/event-stream; charset=utf-8".into(),
                ),
                ("cache-control".into(), "no-cache".into()),
            ],
            body: ReplyBody::Stream(Box::new(Streamed {
                prefix,
                body,
                watch,
                idle_timeout_ms: left.timeout_ms,
                price,
            })),
        },
        usage: None,
        answer_chars: 0,
        ttfb_ms: first_event_ms,
        upstream_ms: first_event_ms,
    })
}

/// A provider answered, but with nothing usable (`what` it did): a server error, so the plan
/// moves on.
fn broken_answer(provider: &str, what: &str) -> Failure {
    Failure::new(
        ApiError::new(
            ErrorCode::UpstreamError,
            format!("provider \"{provider}\" {what}"),
        ),
        ErrorKind::ServerError,
    )
}

fn is_event_stream<B>(response: &UpstreamResponse<B>) -> bool {
    response
        .header("content-type")
        .map(str::to_ascii_lowercase)
        .is_some_and(|ct| {
            ct.starts_with("text/event-stream")
                || ct.starts_with("application/vnd.amazon.eventstream")
        })
}
