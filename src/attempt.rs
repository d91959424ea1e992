//! One provider call of an attempt plan: the key from its secret, the request in the provider's
//! wire format, the call, and the answer judged: a failure (with its status, when there is one) or
//! a reply, where a streamed answer passes through untouched and a whole one is read for its usage.

use crate::analytics::Usage;
use crate::error::{ApiError, ErrorCode};
use crate::http::{Reply, ReplyBody};
use crate::plan::Attempt;
use crate::ports::{Clock, Secrets, Upstream, UpstreamResponse};
use crate::providers::{openai_compatible, ProviderKind};
use crate::request::ChatRequest;
use crate::rules::{FallbackOn, Rules};

/// Why an attempt failed, with what the client should be told beyond the error body.
#[derive(Debug)]
pub struct Failure {
    pub error: ApiError,
    /// The provider's HTTP status, when it answered.
    pub status: Option<u16>,
    /// The provider's `retry-after`, passed on with a rate-limit error.
    pub retry_after: Option<String>,
}

impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Self {
        Failure {
            error,
            status: None,
            retry_after: None,
        }
    }
}

impl Failure {
    /// Does this failure move a plan on to its next attempt?
    pub fn moves_on(&self, on: &FallbackOn) -> bool {
        let Some(status) = self.status else {
            // Network errors, missing keys, malformed answers: always worth another target.
            return true;
        };
        match on {
            FallbackOn::Default => self.error.code != ErrorCode::UpstreamRejected,
            FallbackOn::AnyFailure => true,
            FallbackOn::Statuses(list) => list.contains(&status),
        }
    }
}

/// What a successful call gives back.
pub struct Success<B> {
    pub reply: Reply<B>,
    pub usage: Option<Usage>,
    pub ttfb_ms: f64,
    pub upstream_ms: f64,
}

pub async fn call<S: Secrets, U: Upstream, C: Clock>(
    rules: &Rules,
    attempt: &Attempt,
    chat: &ChatRequest,
    secrets: &S,
    upstream: &U,
    clock: &C,
    logs: &mut Vec<String>,
) -> Result<Success<U::Body>, Failure> {
    let provider = rules.providers.get(&attempt.provider).ok_or_else(|| {
        Failure::from(ApiError::new(
            ErrorCode::Internal,
            "validated rules lost a provider",
        ))
    })?;
    let secret = match &provider.api_key_secret {
        None => None,
        Some(name) => Some(secrets.get(name).ok_or_else(|| {
            ApiError::new(
                ErrorCode::ProviderKeyMissing,
                format!(
                    "provider \"{}\" needs the Worker secret {name}, which is not set",
                    provider.name
                ),
            )
        })?),
    };
    let request = match provider.kind {
        ProviderKind::OpenAi | ProviderKind::OpenAiCompatible => {
            openai_compatible::build_request(provider, attempt, chat, secret.as_ref())
        }
    };
    let sent_at = clock.now_ms();
    let response = upstream.send(request).await.map_err(|e| {
        logs.push(
            serde_json::json!({"event": "upstream_network_error", "provider": provider.name,
                                     "detail": format!("{e:?}")})
            .to_string(),
        );
        ApiError::new(
            ErrorCode::UpstreamUnreachable,
            format!("could not reach provider \"{}\"", provider.name),
        )
    })?;
    let ttfb_ms = clock.now_ms() - sent_at;
    if !(200..300).contains(&response.status) {
        let status = response.status;
        let retry_after = (status == 429)
            .then(|| response.header("retry-after").map(str::to_string))
            .flatten();
        // Drain the body so the connection is released; its text is never shown to the client.
        let _ = upstream.read_all(response.body).await;
        return Err(Failure {
            error: status_error(&provider.name, status),
            status: Some(status),
            retry_after,
        });
    }
    if chat.stream && is_event_stream(&response) {
        return Ok(Success {
            reply: Reply {
                status: 200,
                headers: vec![
                    (
                        "content-type".into(),
                        "text/event-stream; charset=utf-8".into(),
                    ),
                    ("cache-control".into(), "no-cache".into()),
                ],
                body: ReplyBody::Stream(response.body),
            },
            usage: None,
            ttfb_ms,
            upstream_ms: ttfb_ms,
        });
    }
    let content_type = response
        .header("content-type")
        .unwrap_or("application/json")
        .to_string();
    let bytes = upstream.read_all(response.body).await.map_err(|_| {
        ApiError::new(
            ErrorCode::UpstreamUnreachable,
            format!("provider \"{}\" broke off its answer", provider.name),
        )
    })?;
    let upstream_ms = clock.now_ms() - sent_at;
    let parsed: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| {
        ApiError::new(
            ErrorCode::UpstreamError,
            format!(
                "provider \"{}\" returned a malformed response",
                provider.name
            ),
        )
    })?;
    Ok(Success {
        reply: Reply {
            status: 200,
            headers: vec![("content-type".into(), content_type)],
            body: ReplyBody::Bytes(bytes),
        },
        usage: Usage::from_openai(&parsed),
        ttfb_ms,
        upstream_ms,
    })
}

fn is_event_stream<B>(response: &UpstreamResponse<B>) -> bool {
    response
        .header("content-type")
        .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("text/event-stream"))
}

/// A provider's non-2xx status as our error. Upstream bodies are never echoed.
fn status_error(provider: &str, status: u16) -> ApiError {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: ErrorCode, status: Option<u16>) -> Failure {
        Failure {
            error: ApiError::new(code, "x"),
            status,
            retry_after: None,
        }
    }

    #[test]
    fn which_failures_move_on() {
        use ErrorCode::*;
        let statuses = FallbackOn::Statuses(vec![429, 503]);
        let table = [
            (failure(UpstreamUnreachable, None), [true, true, true]),
            (failure(ProviderKeyMissing, None), [true, true, true]),
            (failure(UpstreamError, Some(500)), [true, true, false]),
            (failure(UpstreamError, Some(503)), [true, true, true]),
            (failure(UpstreamRateLimited, Some(429)), [true, true, true]),
            (failure(UpstreamRejected, Some(400)), [false, true, false]),
            (failure(UpstreamError, Some(401)), [true, true, false]),
        ];
        for (f, [default, any, listed]) in table {
            assert_eq!(f.moves_on(&FallbackOn::Default), default, "{f:?} default");
            assert_eq!(f.moves_on(&FallbackOn::AnyFailure), any, "{f:?} any");
            assert_eq!(f.moves_on(&statuses), listed, "{f:?} statuses");
        }
    }
}
