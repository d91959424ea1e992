//! Fallback: calling a plan's attempts in order until one serves the request or a failure must not
//! move on. Before each call a target may be skipped (its context window is no larger than one
//! that already proved too small, or it is cooling down after repeated failures); after each
//! failure `retry::next_step` decides: retry after a delay, move on, or give up. Every attempt,
//! called or skipped, is kept as a structured `AttemptResult`, from which the gateway derives the
//! client's error message, the `x-router-*` headers and the analytics record.

use crate::chat::request::ChatRequest;
use crate::decide::plan::Attempt;
use crate::dispatch::attempt::{self, Call, Failure, Success};
use crate::dispatch::breaker::{Breakers, Gate};
use crate::dispatch::health::{HealthReport, SharedHealth};
use crate::dispatch::retry::{next_step, Budget, Next};
use crate::error::{ApiError, ErrorCode};
use crate::ports::{BodyOf, Clock, PortSet, Random, Secret};
use crate::providers::errors::ErrorKind;
use crate::record::events::Event;
use crate::rules::{Cooldown, Rules};

/// Why an attempt of the plan was not called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// A context-length failure already happened on a window at least this large.
    ContextWindow { window: u64, floor: u64 },
    /// The target's breaker is open in this isolate.
    CoolingDown,
    /// The target's shared health says it is down (failures seen across the edge).
    Down,
}

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    Served,
    Failed {
        kind: ErrorKind,
        /// The provider's HTTP status, when it answered.
        status: Option<u16>,
    },
    Skipped(Skip),
}

/// One attempt of a plan, as it went.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptResult {
    /// Its place in the plan (a retry keeps the place of the attempt it repeats).
    pub position: usize,
    pub target: String,
    pub provider: String,
    /// The provider's model id.
    pub model: String,
    pub outcome: AttemptOutcome,
    /// Time spent on it (0 for a skip).
    pub ms: f64,
}

impl AttemptResult {
    /// The target's health key (`provider/model id`): its breaker and its shared object.
    pub fn health_key(&self) -> String {
        format!("{}/{}", self.provider, self.model)
    }

    pub fn called(&self) -> bool {
        !matches!(self.outcome, AttemptOutcome::Skipped(_))
    }

    /// One line for an error message: `fast: server_error HTTP 503`, `big: skipped (...)`.
    pub fn describe(&self) -> String {
        match self.outcome {
            AttemptOutcome::Served => format!("{}: served", self.target),
            AttemptOutcome::Failed { kind, status } => {
                let status = status.map(|s| format!(" HTTP {s}")).unwrap_or_default();
                format!("{}: {}{status}", self.target, kind.as_str())
            }
            AttemptOutcome::Skipped(Skip::ContextWindow { window, floor }) => format!(
                "{}: skipped (context window {window} <= {floor})",
                self.target
            ),
            AttemptOutcome::Skipped(Skip::CoolingDown) => format!(
                "{}: skipped (cooling down after repeated failures)",
                self.target
            ),
            AttemptOutcome::Skipped(Skip::Down) => format!(
                "{}: skipped (down after repeated failures across the edge)",
                self.target
            ),
        }
    }
}

/// What the attempts of one request add up to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attempts(pub Vec<AttemptResult>);

impl Attempts {
    /// Provider calls made.
    pub fn calls(&self) -> u32 {
        self.0.iter().filter(|a| a.called()).count() as u32
    }

    /// The last attempt called: the one that served, or the last to fail.
    pub fn last_called(&self) -> Option<&AttemptResult> {
        self.0.iter().rev().find(|a| a.called())
    }

    /// Whether the plan went past its first attempt to the last one called.
    pub fn fallback_used(&self) -> bool {
        self.last_called().is_some_and(|a| a.position > 0)
    }

    /// What the attempts tell the targets' shared health (each target's object): every transient
    /// failure, a recovery after failures, and a read of a copy older than `ttl_ms` (of a target
    /// called, or skipped as down).
    pub fn health_reports<'a>(
        &'a self,
        health: &'a SharedHealth,
        policy: Cooldown,
        ttl_ms: f64,
        now_ms: f64,
    ) -> impl Iterator<Item = (String, HealthReport)> + 'a {
        self.0.iter().filter_map(move |a| {
            let transient = match a.outcome {
                AttemptOutcome::Failed { kind, .. } => Some(kind.is_transient()),
                AttemptOutcome::Served => Some(false),
                // Skipped as down: read again once the copy is stale, to see a recovery.
                AttemptOutcome::Skipped(Skip::Down) => None,
                AttemptOutcome::Skipped(Skip::ContextWindow { .. } | Skip::CoolingDown) => {
                    return None
                }
            };
            let target = a.health_key();
            let report = health.after_call(&target, transient, policy, ttl_ms, now_ms)?;
            Some((target, report))
        })
    }

    /// Every attempt that did not serve, in order, for an error message.
    pub fn history(&self) -> String {
        self.0
            .iter()
            .filter(|a| a.outcome != AttemptOutcome::Served)
            .map(AttemptResult::describe)
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn unserved(&self) -> usize {
        self.0
            .iter()
            .filter(|a| a.outcome != AttemptOutcome::Served)
            .count()
    }
}

/// What running a plan needs besides the ports.
pub struct Run<'a> {
    pub rules: &'a Rules,
    pub plan: &'a [Attempt],
    pub chat: &'a ChatRequest,
    pub own_key: Option<&'a Secret>,
    pub breakers: &'a Breakers,
    /// The targets' health shared across the edge, as this isolate last saw it.
    pub health: &'a SharedHealth,
    /// When the request started (its deadline counts from here).
    pub started_ms: f64,
    pub request_id: &'a str,
}

/// Call the plan's attempts in order. The attempts as they went, and the answer or the failure
/// the client gets.
pub async fn run<P: PortSet>(
    ports: &P,
    run: Run<'_>,
    logs: &mut Vec<String>,
) -> (Attempts, Result<Success<BodyOf<P>>, Failure>) {
    let Run {
        rules,
        plan,
        chat,
        own_key,
        breakers,
        health,
        started_ms,
        request_id,
    } = run;
    let defaults = &rules.defaults;
    let clock = ports.clock();
    let mut done = Attempts::default();
    let mut retries = 0u32;
    // After a context-length failure, only larger windows are worth trying.
    let mut window_floor: Option<u64> = None;
    let mut i = 0;
    while let Some(attempt) = plan.get(i) {
        let has_next = i + 1 < plan.len();
        let window = rules
            .models
            .get(&attempt.target)
            .and_then(|m| m.context_window);
        let breaker_key = format!("{}/{}", attempt.provider, attempt.model_id);
        let now = clock.now_ms();
        let skip = match (window_floor, window) {
            (Some(floor), Some(window)) if window <= floor && has_next => {
                Some(Skip::ContextWindow { window, floor })
            }
            _ if retries == 0
                && has_next
                && breakers.gate(&breaker_key, defaults.cooldown, now) == Gate::Open =>
            {
                Some(Skip::CoolingDown)
            }
            _ if retries == 0 && has_next && health.is_down(&breaker_key, now) => Some(Skip::Down),
            _ => None,
        };
        let result = |outcome, ms| AttemptResult {
            position: i,
            target: attempt.target.clone(),
            provider: attempt.provider.clone(),
            model: attempt.model_id.clone(),
            outcome,
            ms,
        };
        if let Some(skip) = skip {
            done.0.push(result(AttemptOutcome::Skipped(skip), 0.0));
            i += 1;
            continue;
        }
        let remaining = (defaults.deadline_ms as f64 - (now - started_ms)).max(1.0) as u64;
        let call = Call {
            rules,
            attempt,
            chat,
            own_key,
            timeout_ms: attempt.timeout_ms.min(remaining),
        };
        let outcome = attempt::call(ports, call, logs).await;
        let done_at = clock.now_ms();
        let failure = match outcome {
            Ok(success) => {
                breakers.record(&breaker_key, defaults.cooldown, false, done_at);
                done.0.push(result(AttemptOutcome::Served, done_at - now));
                return (done, Ok(success));
            }
            Err(failure) => failure,
        };
        let (kind, status) = (failure.kind, failure.status);
        breakers.record(
            &breaker_key,
            defaults.cooldown,
            kind.is_transient(),
            done_at,
        );
        done.0.push(result(
            AttemptOutcome::Failed { kind, status },
            done_at - now,
        ));
        logs.push(
            Event::AttemptFailed {
                request_id,
                attempt: done.calls(),
                target: &attempt.target,
                provider: &attempt.provider,
                kind,
                status,
            }
            .line(),
        );
        let budget = Budget {
            elapsed_ms: done_at - started_ms,
            deadline_ms: defaults.deadline_ms,
            calls_made: done.calls(),
            max_calls: defaults.max_provider_calls,
        };
        let jitter = ports.rng().next_f64();
        match next_step(
            attempt,
            retries,
            has_next,
            &failure.failed(),
            budget,
            jitter,
        ) {
            Next::Retry { delay_ms } => {
                clock.sleep(delay_ms).await;
                retries += 1;
            }
            Next::NextTarget => {
                if kind == ErrorKind::ContextLengthExceeded {
                    window_floor = window_floor.max(window);
                }
                retries = 0;
                i += 1;
            }
            Next::GiveUp => {
                let failure = final_failure(failure, &done);
                return (done, Err(failure));
            }
        }
    }
    let error = ApiError::new(
        ErrorCode::AllTargetsFailed,
        format!("no target could serve the request: {}", done.history()),
    );
    (done, Err(Failure::local(error)))
}

/// The error for a request that failed: the last failure, and with more than one attempt, every
/// attempt in order. Rate limiting stays a 429; failures across targets become
/// `all_targets_failed`; a request the provider found invalid keeps its own code.
fn final_failure(last: Failure, attempts: &Attempts) -> Failure {
    if attempts.unserved() <= 1 {
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
            if attempts.fallback_used() {
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
                attempts.calls(),
                attempts.history()
            ),
        ),
        ..last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(position: usize, target: &str, outcome: AttemptOutcome) -> AttemptResult {
        AttemptResult {
            position,
            target: target.into(),
            provider: "p".into(),
            model: "m".into(),
            outcome,
            ms: 1.0,
        }
    }

    #[test]
    fn attempts_give_the_counts_the_headers_and_the_message() {
        let failed = AttemptOutcome::Failed {
            kind: ErrorKind::ServerError,
            status: Some(503),
        };
        let attempts = Attempts(vec![
            result(0, "a", failed),
            result(0, "a", failed),
            result(
                1,
                "b",
                AttemptOutcome::Skipped(Skip::ContextWindow {
                    window: 8,
                    floor: 16,
                }),
            ),
            result(2, "c", AttemptOutcome::Skipped(Skip::CoolingDown)),
            result(3, "d", AttemptOutcome::Served),
        ]);
        assert_eq!(attempts.calls(), 3);
        assert!(attempts.fallback_used());
        assert_eq!(attempts.last_called().map(|a| a.target.as_str()), Some("d"));
        assert_eq!(
            attempts.history(),
            "a: server_error HTTP 503; a: server_error HTTP 503; b: skipped (context window 8 <= 16); c: skipped (cooling down after repeated failures)"
        );
        let retried_only = Attempts(vec![result(0, "a", failed), result(0, "a", failed)]);
        assert!(!retried_only.fallback_used());
        let last = Failure {
            retry_after: None,
            ..Failure::local(ErrorKind::ServerError.to_error("p", Some(503)))
        };
        let last = Failure {
            kind: ErrorKind::ServerError,
            ..last
        };
        let error = final_failure(last, &retried_only).error;
        assert_eq!(error.code, ErrorCode::UpstreamError);
        assert!(error
            .message
            .ends_with("after 2 attempts: a: server_error HTTP 503; a: server_error HTTP 503"));
    }
}
