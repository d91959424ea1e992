//! The one error type clients ever see, and the one place that turns it into an HTTP status and an
//! OpenAI-shaped body (`{"error": {"message", "type", "code"}}`).
//!
//! Invariants: every `ErrorCode` has a fixed status, type and stable code string (exhaustive matches,
//! no `_` arm); messages are written by us and never contain upstream bodies or secrets.

use serde_json::json;

/// Every way a request can fail, as a closed set. The `code` strings are a public contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    MissingApiKey,
    InvalidApiKey,
    InvalidJson,
    InvalidRequest,
    UnsupportedParameter,
    InvalidMetadata,
    RequestTooLarge,
    ModelNotFound,
    NotFound,
    MethodNotAllowed,
    RulesMissing,
    RulesInvalid,
    RulesUnavailable,
    KeyStoreUnavailable,
    LimitsUnavailable,
    ProviderKeyMissing,
    UpstreamRateLimited,
    UpstreamRejected,
    ContextLengthExceeded,
    ContentFiltered,
    AdminDisabled,
    VersionConflict,
    RulesRejected,
    KeyExists,
    AnalyticsUnconfigured,
    AnalyticsQueryFailed,
    KeyNotAllowed,
    KeyLimitExceeded,
    UpstreamAuth,
    UpstreamTimeout,
    AllTargetsFailed,
    UpstreamError,
    UpstreamUnreachable,
    Internal,
}

impl ErrorCode {
    /// The HTTP status the client gets.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::MissingApiKey | ErrorCode::InvalidApiKey => 401,
            ErrorCode::AdminDisabled | ErrorCode::KeyNotAllowed => 403,
            ErrorCode::KeyLimitExceeded => 429,
            ErrorCode::VersionConflict | ErrorCode::KeyExists => 409,
            ErrorCode::RulesRejected => 400,
            ErrorCode::AnalyticsUnconfigured => 503,
            ErrorCode::AnalyticsQueryFailed => 502,
            ErrorCode::InvalidJson
            | ErrorCode::InvalidRequest
            | ErrorCode::UnsupportedParameter
            | ErrorCode::InvalidMetadata
            | ErrorCode::UpstreamRejected
            | ErrorCode::ContextLengthExceeded
            | ErrorCode::ContentFiltered => 400,
            ErrorCode::RequestTooLarge => 413,
            ErrorCode::ModelNotFound | ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::RulesMissing
            | ErrorCode::RulesInvalid
            | ErrorCode::RulesUnavailable
            | ErrorCode::KeyStoreUnavailable
            | ErrorCode::LimitsUnavailable => 503,
            ErrorCode::UpstreamRateLimited => 429,
            ErrorCode::UpstreamError
            | ErrorCode::UpstreamUnreachable
            | ErrorCode::UpstreamAuth
            | ErrorCode::AllTargetsFailed => 502,
            ErrorCode::UpstreamTimeout => 504,
            ErrorCode::ProviderKeyMissing | ErrorCode::Internal => 500,
        }
    }

    /// The OpenAI error `type`, which SDKs use to pick an exception class.
    pub fn error_type(self) -> &'static str {
        match self {
            ErrorCode::MissingApiKey | ErrorCode::InvalidApiKey => "authentication_error",
            ErrorCode::AdminDisabled | ErrorCode::KeyNotAllowed => "permission_error",
            ErrorCode::KeyLimitExceeded => "rate_limit_error",
            ErrorCode::VersionConflict | ErrorCode::RulesRejected | ErrorCode::KeyExists => {
                "invalid_request_error"
            }
            ErrorCode::AnalyticsUnconfigured | ErrorCode::AnalyticsQueryFailed => "server_error",
            ErrorCode::InvalidJson
            | ErrorCode::InvalidRequest
            | ErrorCode::UnsupportedParameter
            | ErrorCode::InvalidMetadata
            | ErrorCode::RequestTooLarge
            | ErrorCode::ModelNotFound
            | ErrorCode::NotFound
            | ErrorCode::MethodNotAllowed
            | ErrorCode::UpstreamRejected
            | ErrorCode::ContextLengthExceeded
            | ErrorCode::ContentFiltered => "invalid_request_error",
            ErrorCode::UpstreamRateLimited => "rate_limit_error",
            ErrorCode::RulesMissing
            | ErrorCode::RulesInvalid
            | ErrorCode::RulesUnavailable
            | ErrorCode::KeyStoreUnavailable
            | ErrorCode::LimitsUnavailable
            | ErrorCode::ProviderKeyMissing
            | ErrorCode::UpstreamError
            | ErrorCode::UpstreamUnreachable
            | ErrorCode::UpstreamAuth
            | ErrorCode::UpstreamTimeout
            | ErrorCode::AllTargetsFailed
            | ErrorCode::Internal => "server_error",
        }
    }

    /// The stable, low-cardinality code: in bodies, headers and analytics.
    pub fn code(self) -> &'static str {
        match self {
            ErrorCode::MissingApiKey => "missing_api_key",
            ErrorCode::AdminDisabled => "admin_disabled",
            ErrorCode::KeyNotAllowed => "key_not_allowed",
            ErrorCode::KeyLimitExceeded => "key_limit_exceeded",
            ErrorCode::VersionConflict => "version_conflict",
            ErrorCode::RulesRejected => "rules_rejected",
            ErrorCode::KeyExists => "key_exists",
            ErrorCode::AnalyticsUnconfigured => "analytics_unconfigured",
            ErrorCode::AnalyticsQueryFailed => "analytics_query_failed",
            ErrorCode::InvalidApiKey => "invalid_api_key",
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::UnsupportedParameter => "unsupported_parameter",
            ErrorCode::InvalidMetadata => "invalid_metadata",
            ErrorCode::RequestTooLarge => "request_too_large",
            ErrorCode::ModelNotFound => "model_not_found",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::RulesMissing => "rules_missing",
            ErrorCode::RulesInvalid => "rules_invalid",
            ErrorCode::RulesUnavailable => "rules_unavailable",
            ErrorCode::KeyStoreUnavailable => "key_store_unavailable",
            ErrorCode::LimitsUnavailable => "limits_unavailable",
            ErrorCode::ProviderKeyMissing => "provider_key_missing",
            ErrorCode::UpstreamRateLimited => "upstream_rate_limited",
            ErrorCode::UpstreamRejected => "upstream_rejected_request",
            ErrorCode::ContextLengthExceeded => "context_length_exceeded",
            ErrorCode::ContentFiltered => "content_filtered",
            ErrorCode::UpstreamAuth => "upstream_auth_failed",
            ErrorCode::UpstreamTimeout => "upstream_timeout",
            ErrorCode::AllTargetsFailed => "all_targets_failed",
            ErrorCode::UpstreamError => "upstream_error",
            ErrorCode::UpstreamUnreachable => "upstream_unreachable",
            ErrorCode::Internal => "internal_error",
        }
    }
}

/// An error on its way to the client: a code and a message we wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }

    pub fn status(&self) -> u16 {
        self.code.status()
    }

    /// The OpenAI-shaped JSON body.
    pub fn body(&self) -> Vec<u8> {
        json!({
            "error": {
                "message": self.message,
                "type": self.code.error_type(),
                "param": null,
                "code": self.code.code(),
            }
        })
        .to_string()
        .into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [ErrorCode; 34] = [
        ErrorCode::KeyExists,
        ErrorCode::AnalyticsUnconfigured,
        ErrorCode::AnalyticsQueryFailed,
        ErrorCode::UnsupportedParameter,
        ErrorCode::MissingApiKey,
        ErrorCode::LimitsUnavailable,
        ErrorCode::InvalidApiKey,
        ErrorCode::AdminDisabled,
        ErrorCode::VersionConflict,
        ErrorCode::RulesRejected,
        ErrorCode::KeyNotAllowed,
        ErrorCode::KeyLimitExceeded,
        ErrorCode::InvalidJson,
        ErrorCode::InvalidRequest,
        ErrorCode::InvalidMetadata,
        ErrorCode::RequestTooLarge,
        ErrorCode::ModelNotFound,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::RulesMissing,
        ErrorCode::RulesInvalid,
        ErrorCode::RulesUnavailable,
        ErrorCode::KeyStoreUnavailable,
        ErrorCode::ProviderKeyMissing,
        ErrorCode::UpstreamRateLimited,
        ErrorCode::UpstreamRejected,
        ErrorCode::ContextLengthExceeded,
        ErrorCode::ContentFiltered,
        ErrorCode::UpstreamAuth,
        ErrorCode::UpstreamTimeout,
        ErrorCode::AllTargetsFailed,
        ErrorCode::UpstreamError,
        ErrorCode::UpstreamUnreachable,
        ErrorCode::Internal,
    ];

    #[test]
    fn codes_are_unique_and_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for code in ALL {
            let c = code.code();
            assert!(seen.insert(c), "duplicate code {c}");
            assert!(
                c.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_'),
                "{c}"
            );
        }
    }

    #[test]
    fn statuses_match_the_contract() {
        let table = [
            (ErrorCode::MissingApiKey, 401),
            (ErrorCode::InvalidApiKey, 401),
            (ErrorCode::InvalidJson, 400),
            (ErrorCode::RequestTooLarge, 413),
            (ErrorCode::RulesMissing, 503),
            (ErrorCode::RulesInvalid, 503),
            (ErrorCode::UpstreamRateLimited, 429),
            (ErrorCode::UpstreamError, 502),
        ];
        for (code, status) in table {
            assert_eq!(code.status(), status, "{code:?}");
        }
        for code in ALL {
            assert!((400..600).contains(&code.status()));
        }
    }

    #[test]
    fn body_is_openai_shaped() {
        let err = ApiError::new(
            ErrorCode::InvalidJson,
            "body is not JSON: expected value at 1:1",
        );
        let v: serde_json::Value = serde_json::from_slice(&err.body()).unwrap();
        assert_eq!(v["error"]["code"], "invalid_json");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(
            v["error"]["message"],
            "body is not JSON: expected value at 1:1"
        );
        assert!(v["error"]["param"].is_null());
    }
}
