//! Provider failures normalised into one closed set of kinds, which retry, fallback and analytics
//! use, and the error the client sees for each. Upstream bodies are read only to tell kinds apart
//! (a 400 that is really "context too long", a 403 that is a content filter); they are never
//! echoed to the client.

use crate::error::{ApiError, ErrorCode};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    RateLimited,
    ContextLengthExceeded,
    /// The provider refused our key for it (a configuration problem, not the caller's).
    Auth,
    Permission,
    NotFound,
    BadRequest,
    ContentFiltered,
    ServerError,
    Overloaded,
    Timeout,
    Network,
}

impl serde::Serialize for ErrorKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::ContextLengthExceeded => "context_length_exceeded",
            ErrorKind::Auth => "auth",
            ErrorKind::Permission => "permission",
            ErrorKind::NotFound => "not_found",
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::ContentFiltered => "content_filtered",
            ErrorKind::ServerError => "server_error",
            ErrorKind::Overloaded => "overloaded",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Network => "network",
        }
    }

    /// Transient kinds: worth retrying the same target and worth a circuit breaker's attention.
    pub fn is_transient(self) -> bool {
        match self {
            ErrorKind::RateLimited
            | ErrorKind::ServerError
            | ErrorKind::Overloaded
            | ErrorKind::Timeout
            | ErrorKind::Network => true,
            ErrorKind::ContextLengthExceeded
            | ErrorKind::Auth
            | ErrorKind::Permission
            | ErrorKind::NotFound
            | ErrorKind::BadRequest
            | ErrorKind::ContentFiltered => false,
        }
    }

    /// The client's error for this kind.
    pub fn to_error(self, provider: &str, status: Option<u16>) -> ApiError {
        let http = status.map(|s| format!(" (HTTP {s})")).unwrap_or_default();
        let (code, what) = match self {
            ErrorKind::RateLimited => (ErrorCode::UpstreamRateLimited, "is rate limiting requests"),
            ErrorKind::ContextLengthExceeded => (
                ErrorCode::ContextLengthExceeded,
                "cannot fit the prompt in its context window",
            ),
            ErrorKind::Auth | ErrorKind::Permission => {
                (ErrorCode::UpstreamAuth, "refused the router's credentials")
            }
            ErrorKind::NotFound | ErrorKind::BadRequest => (
                ErrorCode::UpstreamRejected,
                "rejected the request as invalid",
            ),
            ErrorKind::ContentFiltered => (ErrorCode::ContentFiltered, "refused the content"),
            ErrorKind::ServerError | ErrorKind::Overloaded => (ErrorCode::UpstreamError, "failed"),
            ErrorKind::Timeout => (ErrorCode::UpstreamTimeout, "did not answer in time"),
            ErrorKind::Network => (ErrorCode::UpstreamUnreachable, "could not be reached"),
        };
        ApiError::new(code, format!("provider \"{provider}\" {what}{http}"))
    }
}

/// The kind of a non-2xx answer from an OpenAI-compatible provider.
pub fn classify_status(status: u16, body: &[u8]) -> ErrorKind {
    let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let err = parsed.get("error").unwrap_or(&parsed);
    let code = err.get("code").and_then(Value::as_str).unwrap_or("");
    let kind = err.get("type").and_then(Value::as_str).unwrap_or("");
    let message = err
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_ascii_lowercase();
    let says = |needle: &str| code == needle || kind == needle;
    if says("context_length_exceeded")
        || message.contains("maximum context length")
        || message.contains("context window")
        || message.contains("prompt is too long")
        || message.contains("exceeds the maximum number of tokens")
        || message.contains("input is too long")
    {
        return ErrorKind::ContextLengthExceeded;
    }
    if says("content_filter") || says("content_policy_violation") {
        return ErrorKind::ContentFiltered;
    }
    match status {
        429 => ErrorKind::RateLimited,
        401 => ErrorKind::Auth,
        403 => ErrorKind::Permission,
        404 => ErrorKind::NotFound,
        408 => ErrorKind::Timeout,
        503 | 529 => ErrorKind::Overloaded,
        400..=499 => ErrorKind::BadRequest,
        _ => ErrorKind::ServerError,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_bodies() {
        let ctx = br#"{"error": {"message": "This model's maximum context length is 8192 tokens", "type": "invalid_request_error", "code": "context_length_exceeded"}}"#;
        let filtered = br#"{"error": {"message": "blocked", "code": "content_filter"}}"#;
        let table: [(u16, &[u8], ErrorKind); 12] = [
            (429, b"{}", ErrorKind::RateLimited),
            (400, ctx, ErrorKind::ContextLengthExceeded),
            (
                400,
                br#"{"error": {"message": "Prompt is too long: 210000 tokens"}}"#,
                ErrorKind::ContextLengthExceeded,
            ),
            (400, filtered, ErrorKind::ContentFiltered),
            (400, b"not json", ErrorKind::BadRequest),
            (422, b"{}", ErrorKind::BadRequest),
            (401, b"{}", ErrorKind::Auth),
            (403, b"{}", ErrorKind::Permission),
            (404, b"{}", ErrorKind::NotFound),
            (503, b"{}", ErrorKind::Overloaded),
            (529, b"{}", ErrorKind::Overloaded),
            (500, b"", ErrorKind::ServerError),
        ];
        for (status, body, want) in table {
            assert_eq!(
                classify_status(status, body),
                want,
                "{status} {}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn client_errors_never_carry_upstream_text() {
        let e = ErrorKind::RateLimited.to_error("groq", Some(429));
        assert_eq!(
            (e.code, e.message.as_str()),
            (
                ErrorCode::UpstreamRateLimited,
                "provider \"groq\" is rate limiting requests (HTTP 429)"
            )
        );
        assert_eq!(ErrorKind::Timeout.to_error("p", None).status(), 504);
        assert_eq!(
            ErrorKind::ContextLengthExceeded
                .to_error("p", Some(400))
                .status(),
            400
        );
        assert_eq!(ErrorKind::Auth.to_error("p", Some(401)).status(), 502);
    }
}
