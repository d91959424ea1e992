//! What happens after an attempt fails, decided by one pure function of the plan position and the
//! failure: retry the same target after a delay, move on to the next target, or give up. The
//! fallback loop only sleeps, calls and moves on as told. Invariants: nothing is retried once a
//! byte has reached the client; no wait runs past the request's total deadline; no more provider
//! calls are made than the Worker may make.

use crate::decide::plan::Attempt;
use crate::providers::errors::ErrorKind;
use crate::rules::FallbackOn;

/// The longest provider-requested wait honoured (as Portkey); longer ones are not waited for.
pub const MAX_RETRY_AFTER_MS: u64 = 60_000;
/// The longest exponential backoff step.
pub const MAX_BACKOFF_MS: u64 = 30_000;

/// What went wrong with one call.
#[derive(Debug, Clone, PartialEq)]
pub struct Failed {
    pub kind: ErrorKind,
    /// The provider's status, when it answered.
    pub status: Option<u16>,
    /// `retry-after-ms` or `retry-after` (seconds or HTTP date), in milliseconds.
    pub retry_after_ms: Option<u64>,
    /// Whether any byte of an answer already reached the client.
    pub committed: bool,
}

/// Where the request stands.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    pub elapsed_ms: f64,
    pub deadline_ms: u64,
    pub calls_made: u32,
    pub max_calls: u32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Next {
    Retry { delay_ms: u64 },
    NextTarget,
    GiveUp,
}

/// Decide what follows a failed call of `attempt`, which has been retried `retries_done` times.
/// `jitter` is a number in [0, 1) that spreads backoffs.
pub fn next_step(
    attempt: &Attempt,
    retries_done: u32,
    has_next: bool,
    failed: &Failed,
    budget: Budget,
    jitter: f64,
) -> Next {
    if failed.committed || budget.calls_made >= budget.max_calls {
        return Next::GiveUp;
    }
    let remaining = budget.deadline_ms as f64 - budget.elapsed_ms;
    if remaining <= 0.0 {
        return Next::GiveUp;
    }
    if retries_done < attempt.retry.attempts && retryable(attempt, failed) {
        if let Some(delay_ms) = retry_delay(attempt, retries_done, failed, jitter) {
            if (delay_ms as f64) < remaining {
                return Next::Retry { delay_ms };
            }
        }
    }
    if has_next && moves_on(&attempt.fallback_on, failed) {
        Next::NextTarget
    } else {
        Next::GiveUp
    }
}

/// Is this failure retried on the same target? Statuses listed in the policy are; so are timeouts
/// and network errors (no status), which are transient by nature.
fn retryable(attempt: &Attempt, failed: &Failed) -> bool {
    match failed.status {
        Some(status) => attempt.retry.on_status.contains(&status),
        None => matches!(failed.kind, ErrorKind::Timeout | ErrorKind::Network),
    }
}

/// The wait before retry number `retries_done + 1`; `None` when the provider asks for longer than
/// we are willing to wait.
fn retry_delay(attempt: &Attempt, retries_done: u32, failed: &Failed, jitter: f64) -> Option<u64> {
    if attempt.retry.respect_retry_after {
        if let Some(ms) = failed.retry_after_ms {
            return (ms <= MAX_RETRY_AFTER_MS).then_some(ms);
        }
    }
    let base = attempt
        .retry
        .backoff_ms
        .saturating_mul(1u64 << retries_done.min(16));
    // Equal jitter: half the step fixed, half random, so retries of many requests spread out.
    let step = base.min(MAX_BACKOFF_MS) as f64;
    Some((step * (0.5 + 0.5 * jitter.clamp(0.0, 1.0))).round() as u64)
}

/// Does this failure move a plan on to its next target?
pub fn moves_on(on: &FallbackOn, failed: &Failed) -> bool {
    let Some(status) = failed.status else {
        // Timeouts, network errors, missing keys, malformed answers: another target may do better.
        return true;
    };
    match on {
        // Not a request another provider would reject too.
        FallbackOn::Default => failed.kind != ErrorKind::BadRequest,
        FallbackOn::AnyFailure => true,
        FallbackOn::Statuses(list) => list.contains(&status),
    }
}

/// Parse `retry-after-ms`, else `retry-after` (delta seconds, or an HTTP date relative to `now_ms`).
pub fn parse_retry_after(
    retry_after_ms: Option<&str>,
    retry_after: Option<&str>,
    now_ms: f64,
) -> Option<u64> {
    if let Some(ms) = retry_after_ms
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v >= 0.0)
    {
        return Some(ms.round() as u64);
    }
    let v = retry_after?.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| (secs * 1000.0).round() as u64);
    }
    let at = http_date_ms(v)?;
    Some((at - now_ms).max(0.0).round() as u64)
}

/// Milliseconds since the epoch of an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn http_date_ms(v: &str) -> Option<f64> {
    let mut parts = v.split_whitespace();
    let _weekday = parts.next()?;
    let day: i64 = parts.next()?.parse().ok()?;
    let month_name = parts.next()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == month_name)? as i64
        + 1;
    let year: i64 = parts.next()?.parse().ok()?;
    let mut hms = parts.next()?.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    if parts.next()? != "GMT" {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + h * 3600 + m * 60 + s) * 1000) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{builtin_retry, RetryPolicy};
    use serde_json::Map;

    fn attempt(retries: u32, on: FallbackOn) -> Attempt {
        Attempt {
            target: "t".into(),
            provider: "p".into(),
            model_id: "m".into(),
            overrides: Map::new(),
            retry: RetryPolicy {
                attempts: retries,
                backoff_ms: 100,
                ..builtin_retry()
            },
            timeout_ms: 1000,
            fallback_on: on,
            why: "test".into(),
        }
    }

    fn failed(kind: ErrorKind, status: Option<u16>) -> Failed {
        Failed {
            kind,
            status,
            retry_after_ms: None,
            committed: false,
        }
    }

    const BUDGET: Budget = Budget {
        elapsed_ms: 0.0,
        deadline_ms: 60_000,
        calls_made: 1,
        max_calls: 50,
    };

    #[test]
    fn the_decision_table() {
        use ErrorKind::*;
        use Next::*;
        let a2 = attempt(2, FallbackOn::Default);
        let a0 = attempt(0, FallbackOn::Default);
        let listed = attempt(0, FallbackOn::Statuses(vec![503]));
        let any = attempt(0, FallbackOn::AnyFailure);
        // (attempt, retries done, has next, failure) -> next
        let table: Vec<(&Attempt, u32, bool, Failed, Next)> = vec![
            (
                &a2,
                0,
                true,
                failed(ServerError, Some(500)),
                Retry { delay_ms: 75 },
            ),
            (
                &a2,
                1,
                true,
                failed(ServerError, Some(500)),
                Retry { delay_ms: 150 },
            ),
            (&a2, 2, true, failed(ServerError, Some(500)), NextTarget),
            (&a2, 2, false, failed(ServerError, Some(500)), GiveUp),
            (&a2, 0, true, failed(Timeout, None), Retry { delay_ms: 75 }),
            (&a2, 0, true, failed(Network, None), Retry { delay_ms: 75 }),
            (&a2, 0, true, failed(BadRequest, Some(400)), GiveUp),
            (
                &a2,
                0,
                true,
                failed(ContextLengthExceeded, Some(400)),
                NextTarget,
            ),
            (&a2, 0, true, failed(Auth, Some(401)), NextTarget),
            (&a0, 0, true, failed(RateLimited, Some(429)), NextTarget),
            (&a0, 0, true, failed(Overloaded, Some(503)), NextTarget),
            (&listed, 0, true, failed(ServerError, Some(500)), GiveUp),
            (&listed, 0, true, failed(Overloaded, Some(503)), NextTarget),
            (&listed, 0, true, failed(Timeout, None), NextTarget),
            (&any, 0, true, failed(BadRequest, Some(400)), NextTarget),
        ];
        for (a, done, has_next, f, want) in table {
            assert_eq!(
                next_step(a, done, has_next, &f, BUDGET, 0.5),
                want,
                "{done} {has_next} {f:?}"
            );
        }
    }

    #[test]
    fn never_after_bytes_reached_the_client_nor_past_the_budget() {
        let a = attempt(3, FallbackOn::AnyFailure);
        let mut f = failed(ErrorKind::Network, None);
        f.committed = true;
        assert_eq!(next_step(&a, 0, true, &f, BUDGET, 0.5), Next::GiveUp);
        let f = failed(ErrorKind::ServerError, Some(500));
        let late = Budget {
            elapsed_ms: 60_000.0,
            ..BUDGET
        };
        assert_eq!(next_step(&a, 0, true, &f, late, 0.5), Next::GiveUp);
        let nearly = Budget {
            elapsed_ms: 59_950.0,
            ..BUDGET
        };
        assert_eq!(
            next_step(&a, 0, true, &f, nearly, 0.5),
            Next::NextTarget,
            "a retry would outlive the deadline"
        );
        let spent = Budget {
            calls_made: 50,
            ..BUDGET
        };
        assert_eq!(next_step(&a, 0, true, &f, spent, 0.5), Next::GiveUp);
    }

    #[test]
    fn retry_after_is_honoured_up_to_a_cap() {
        let a = attempt(2, FallbackOn::Default);
        let mut f = failed(ErrorKind::RateLimited, Some(429));
        f.retry_after_ms = Some(2_000);
        assert_eq!(
            next_step(&a, 0, true, &f, BUDGET, 0.9),
            Next::Retry { delay_ms: 2_000 }
        );
        f.retry_after_ms = Some(90_000);
        assert_eq!(
            next_step(&a, 0, true, &f, BUDGET, 0.9),
            Next::NextTarget,
            "too long a wait: move on"
        );
        let mut ignore = attempt(2, FallbackOn::Default);
        ignore.retry.respect_retry_after = false;
        assert_eq!(
            next_step(&ignore, 0, true, &f, BUDGET, 0.0),
            Next::Retry { delay_ms: 50 }
        );
    }

    #[test]
    fn backoff_doubles_with_jitter_and_a_cap() {
        let a = attempt(5, FallbackOn::Default);
        let f = failed(ErrorKind::ServerError, Some(502));
        let delays: Vec<Next> = (0..5)
            .map(|i| next_step(&a, i, true, &f, BUDGET, 1.0))
            .collect();
        assert_eq!(
            delays,
            [100, 200, 400, 800, 1600]
                .map(|d| Next::Retry { delay_ms: d })
                .to_vec()
        );
        let mut slow = attempt(5, FallbackOn::Default);
        slow.retry.backoff_ms = 40_000;
        assert_eq!(
            next_step(&slow, 0, true, &f, BUDGET, 1.0),
            Next::Retry {
                delay_ms: MAX_BACKOFF_MS
            }
        );
    }

    #[test]
    fn retry_after_forms() {
        let now = http_date_ms("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(now, 784_111_777_000.0);
        let table = [
            (Some("1500"), Some("9"), Some(1500)),
            (None, Some("3"), Some(3000)),
            (None, Some("0.5"), Some(500)),
            (None, Some("Sun, 06 Nov 1994 08:49:47 GMT"), Some(10_000)),
            (None, Some("Sun, 06 Nov 1994 08:49:27 GMT"), Some(0)),
            (Some("bogus"), Some("2"), Some(2000)),
            (None, Some("later"), None),
            (None, None, None),
        ];
        for (ms, ra, want) in table {
            assert_eq!(parse_retry_after(ms, ra, now), want, "{ms:?} {ra:?}");
        }
    }
}
