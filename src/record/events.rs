//! The log lines a request may write besides its own record (`RequestRecord::log_line`), as one
//! closed set of named events: each serialises to one JSON line with its name in `event`. Never
//! prompt or answer text.

use crate::decide::route::Skipped;
use crate::providers::errors::ErrorKind;
use serde::Serialize;

#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event<'a> {
    /// KV holds rules that cannot be used: the last good ones serve.
    RulesStale {
        serving_version: u64,
        reason: &'a str,
    },
    /// Targets the decision left out (context window too small for the prompt).
    TargetsSkipped {
        request_id: &'a str,
        skipped: &'a [Skipped],
    },
    /// One provider call failed (the plan may go on).
    AttemptFailed {
        request_id: &'a str,
        attempt: u32,
        target: &'a str,
        provider: &'a str,
        kind: ErrorKind,
        status: Option<u16>,
    },
    /// The network under a provider call failed (the runtime's own words).
    UpstreamNetworkError { provider: &'a str, detail: &'a str },
    /// The cascade model answered something that is not one of the labels.
    CascadeUnreadable {
        request_id: &'a str,
        target: &'a str,
    },
    /// The cascade call failed: the request is routed without its label.
    CascadeFailed {
        request_id: &'a str,
        target: &'a str,
        kind: ErrorKind,
        status: Option<u16>,
    },
}

impl Event<'_> {
    /// The event as one JSON log line.
    pub fn line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The line for a network failure under a provider call.
pub fn upstream_network_error(provider: &str, detail: &str) -> String {
    Event::UpstreamNetworkError { provider, detail }.line()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_one_json_line_named_first() {
        let line = Event::AttemptFailed {
            request_id: "r1",
            attempt: 2,
            target: "fast",
            provider: "openai",
            kind: ErrorKind::ServerError,
            status: Some(503),
        }
        .line();
        assert_eq!(
            line,
            r#"{"event":"attempt_failed","request_id":"r1","attempt":2,"target":"fast","provider":"openai","kind":"server_error","status":503}"#
        );
        assert_eq!(
            Event::RulesStale {
                serving_version: 3,
                reason: "bad"
            }
            .line(),
            r#"{"event":"rules_stale","serving_version":3,"reason":"bad"}"#
        );
    }
}
